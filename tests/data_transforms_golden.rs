//! The transforms against PYSKL's own outputs (`pipe.*` in the golden file).
//!
//! Tolerances: frame indices and the f16 body centre exact; f64 outputs (PreNormalize3D, joint and
//! joint-motion features) within 1e-12 of the max; f32 outputs within 1e-6 of the max (one f32
//! rounding of an f64 value that may differ by an ulp in the einsum's summation order).

use std::collections::HashMap;

use half::f16;
use leangcn::data::pickle::DTypeKind;
use leangcn::data::transforms::format_gcn_input::format_gcn_input;
use leangcn::data::transforms::layout::Layout;
use leangcn::data::transforms::numpy_random::NumpyRandomState;
use leangcn::data::transforms::prenormalize::{pre_normalize_2d, pre_normalize_3d};
use leangcn::data::transforms::random_rot::{rotation_2d, rotation_3d};
use leangcn::data::transforms::skeleton_features::{skeleton_features, Feature};
use leangcn::data::transforms::uniform_sample::{uniform_sample, SampleMode};
use safetensors::{Dtype, SafeTensors};

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/golden/stgcn_ntu_small.safetensors"
);

struct Tensor {
    shape: Vec<usize>,
    values: Vec<f64>,
}

/// The `pipe.*` tensors as f64, or `None` (after printing why) when the golden file is absent.
fn golden() -> Option<HashMap<String, Tensor>> {
    let bytes = match std::fs::read(GOLDEN) {
        Ok(b) => b,
        Err(e) => {
            println!("skipped: golden file {GOLDEN} not readable ({e})");
            return None;
        }
    };
    let st = SafeTensors::deserialize(&bytes).expect("golden file parses");
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        if !name.starts_with("pipe.") {
            continue;
        }
        let d = view.data();
        let values: Vec<f64> = match view.dtype() {
            Dtype::F64 => d
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            Dtype::F32 => d
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            Dtype::F16 => d
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f64())
                .collect(),
            Dtype::I64 => d
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            other => panic!("unexpected dtype {other:?} for {name}"),
        };
        out.insert(
            name,
            Tensor {
                shape: view.shape().to_vec(),
                values,
            },
        );
    }
    Some(out)
}

fn assert_close(name: &str, got: &[f64], want: &Tensor, rel: f64) {
    assert_eq!(got.len(), want.values.len(), "{name}: length");
    let max = want
        .values
        .iter()
        .fold(0.0f64, |a, b| a.max(b.abs()))
        .max(f64::MIN_POSITIVE);
    let err = got
        .iter()
        .zip(&want.values)
        .fold(0.0f64, |a, (g, w)| a.max((g - w).abs()));
    assert!(err <= rel * max, "{name}: max error {err:e} > {rel:e} × max {max}");
}

fn ints(t: &Tensor) -> Vec<usize> {
    t.values.iter().map(|&v| v as usize).collect()
}

fn shape4(t: &Tensor) -> [usize; 4] {
    t.shape.clone().try_into().unwrap()
}

#[test]
fn test_mode_indices_match_numpy_for_every_length() {
    let Some(g) = golden() else { return };
    let mut checked = 0;
    for (name, t) in &g {
        let Some(rest) = name.strip_prefix("pipe.test_inds.T") else {
            continue;
        };
        // T<T>.clip<L>.nc<n>
        let parts: Vec<&str> = rest.split('.').collect();
        let total: usize = parts[0].parse().unwrap();
        let clip: usize = parts[1].trim_start_matches("clip").parse().unwrap();
        let nc: usize = parts[2].trim_start_matches("nc").parse().unwrap();
        let mut unused = NumpyRandomState::new(0);
        let inds = uniform_sample(total, clip, nc, SampleMode::Test, &mut unused);
        assert_eq!(inds, ints(t), "{name}");
        checked += 1;
    }
    assert_eq!(checked, 42, "14 lengths × 3 settings");
}

#[test]
fn ntu_pipeline_matches_pyskl() {
    let Some(g) = golden() else { return };
    for case in ["a", "b"] {
        let p = |s: &str| format!("pipe.ntu_{case}.{s}");
        let raw = &g[&p("raw_keypoint_f16")];
        let kp: Vec<f32> = raw.values.iter().map(|&x| x as f32).collect();
        let pre = pre_normalize_3d(&kp, shape4(raw), DTypeKind::F16);
        let t_new = pre.skeleton.shape[1];
        assert_eq!(t_new as f64, g[&p("prenorm_total_frames")].values[0], "case {case}");
        assert_eq!(
            pre.body_center.unwrap().to_vec(),
            g[&p("body_center_f16")].values,
            "case {case}"
        );
        assert_close(&p("prenorm"), &pre.skeleton.data, &g[&p("prenorm")], 1e-12);

        let layout = Layout::NtuRgbD;
        let feats: [(&str, &[Feature], f64); 5] = [
            ("feat_j", &[Feature::Joint], 1e-12),
            ("feat_b", &[Feature::Bone], 1e-6),
            ("feat_jm", &[Feature::JointMotion], 1e-12),
            ("feat_bm", &[Feature::BoneMotion], 1e-6),
            ("feat_j_b_concat", &[Feature::Joint, Feature::Bone], 1e-6),
        ];
        for (name, f, tol) in feats {
            let out = skeleton_features(&pre.skeleton, layout, f);
            assert_close(&p(name), &out.data, &g[&p(name)], tol);
        }

        for (mode, nc) in [("val", 1), ("test", 10)] {
            let mut unused = NumpyRandomState::new(0);
            let inds = uniform_sample(t_new, 100, nc, SampleMode::Test, &mut unused);
            assert_eq!(inds, ints(&g[&p(&format!("{mode}_frame_inds"))]), "case {case} {mode}");
            let mut out = vec![0.0f32; nc * 2 * 100 * 25 * 3];
            format_gcn_input(&pre.skeleton, &inds, nc, 2, &mut out);
            let got: Vec<f64> = out.iter().map(|&x| x as f64).collect();
            assert_close(
                &p(&format!("{mode}_gcn_input")),
                &got,
                &g[&p(&format!("{mode}_gcn_input"))],
                1e-6,
            );
        }
    }
}

#[test]
fn one_person_is_padded_with_a_zero_person() {
    let Some(g) = golden() else { return };
    let input = &g["pipe.m1_pad.input_f32"];
    let skel = leangcn::data::transforms::Skeleton {
        shape: shape4(input),
        data: input.values.clone(),
        is_f32: true,
    };
    let mut unused = NumpyRandomState::new(0);
    let inds = uniform_sample(skel.shape[1], 16, 2, SampleMode::Test, &mut unused);
    assert_eq!(inds, ints(&g["pipe.m1_pad.frame_inds"]));
    let mut out = vec![0.0f32; 2 * 2 * 16 * 25 * 3];
    format_gcn_input(&skel, &inds, 2, 2, &mut out);
    let got: Vec<f64> = out.iter().map(|&x| x as f64).collect();
    assert_close("pipe.m1_pad.gcn_input", &got, &g["pipe.m1_pad.gcn_input"], 0.0);
}

#[test]
fn coco_2d_pipeline_matches_pyskl() {
    let Some(g) = golden() else { return };
    let raw = &g["pipe.coco.raw_keypoint_f16"];
    let kp: Vec<f32> = raw.values.iter().map(|&x| x as f32).collect();
    let score: Vec<f32> = g["pipe.coco.raw_score_f16"].values.iter().map(|&x| x as f32).collect();
    let pre = pre_normalize_2d(&kp, shape4(raw), Some(&score), None);
    assert_close("pipe.coco.prenorm2d", &pre.data, &g["pipe.coco.prenorm2d"], 0.0);
    for (name, f) in [
        ("feat_j", Feature::Joint),
        ("feat_b", Feature::Bone),
        ("feat_jm", Feature::JointMotion),
        ("feat_bm", Feature::BoneMotion),
    ] {
        let out = skeleton_features(&pre, Layout::Coco, &[f]);
        let name = format!("pipe.coco.{name}");
        assert_close(&name, &out.data, &g[&name], 0.0);
    }
}

#[test]
fn rotation_matrices_match_pyskl() {
    let Some(g) = golden() else { return };
    let th = &g["pipe.randomrot.theta3d"].values;
    let r = rotation_3d([th[0], th[1], th[2]]);
    let got: Vec<f64> = r.iter().flatten().copied().collect();
    assert_close("pipe.randomrot.rot3d", &got, &g["pipe.randomrot.rot3d"], 1e-15);
    let r2 = rotation_2d(0.17);
    let got: Vec<f64> = r2.iter().flatten().copied().collect();
    assert_close(
        "pipe.randomrot.rot2d_theta0.17",
        &got,
        &g["pipe.randomrot.rot2d_theta0.17"],
        1e-15,
    );
}
