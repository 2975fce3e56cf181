//! `PreNormalize3D` and `PreNormalize2D` (`pyskl/datasets/pipelines/pose_related.py`).

use half::f16;

use super::Skeleton;
use crate::data::pickle::DTypeKind;

/// The result of [`pre_normalize_3d`].
#[derive(Clone, Debug, PartialEq)]
pub struct PreNormalized3D {
    /// `[M, T_new, V, 3]` float64.
    pub skeleton: Skeleton,
    /// The subtracted centre (person 0, first kept frame, joint 1 for 25 joints, else the last
    /// joint), in the stored precision; `None` when the input was all zeros and returned as is, or
    /// when no frame was kept.
    pub body_center: Option<[f64; 3]>,
}

/// Rounds `x` to the stored dtype's precision.
fn round_to(kind: DTypeKind, x: f64) -> f64 {
    match kind {
        DTypeKind::F16 => f16::from_f32(x as f32).to_f64(),
        DTypeKind::F32 => x as f32 as f64,
        _ => x,
    }
}

/// The frames PreNormalize3D keeps and the order of persons: the frames where person 0 is not all
/// zero (`np.isclose(x, 0)`: |x| <= 1e-8), or person 1's, swapped to slot 0, if it has more.
/// `None` for an all-zero input, which PreNormalize3D returns as is. The frame list is empty when
/// no frame of person 0 or 1 has a coordinate beyond 1e-8 (PYSKL fails on such a sample).
pub fn frames_kept_3d(keypoint: &[f32], shape: [usize; 4]) -> Option<(Vec<usize>, Vec<usize>)> {
    let [m, t, v, c] = shape;
    if keypoint.iter().all(|&x| x == 0.0) {
        return None;
    }
    let frame_has_person = |p: usize, f: usize| {
        let s = (p * t + f) * v * c;
        keypoint[s..s + v * c].iter().any(|&x| (x as f64).abs() > 1e-8)
    };
    let index0: Vec<usize> = (0..t).filter(|&f| frame_has_person(0, f)).collect();
    Some(if m == 2 {
        let index1: Vec<usize> = (0..t).filter(|&f| frame_has_person(1, f)).collect();
        if index0.len() < index1.len() {
            (index1, vec![1, 0])
        } else {
            (index0, vec![0, 1])
        }
    } else {
        (index0, (0..m).collect())
    })
}

/// `PreNormalize3D(zaxis=[0, 1], xaxis=[8, 4], align_spine=True, align_center=True)`.
///
/// `keypoint`: `[M, T, V, 3]` values of the stored dtype `dtype` (exact in f32 for f16/f32).
/// Keeps the frames of [`frames_kept_3d`]; centres in the stored dtype's arithmetic; then rotates
/// the spine to +z and the shoulders to +x in f64. A sample with no kept frame gives `[M, 0, V, 3]`.
pub fn pre_normalize_3d(keypoint: &[f32], shape: [usize; 4], dtype: DTypeKind) -> PreNormalized3D {
    let [m, _, v, c] = shape;
    assert_eq!(c, 3, "pre_normalize_3d needs 3 channels");
    let input = Skeleton {
        shape,
        data: keypoint.iter().map(|&x| x as f64).collect(),
        is_f32: false,
    };
    let Some((frames, persons)) = frames_kept_3d(keypoint, shape) else {
        return PreNormalized3D {
            skeleton: input,
            body_center: None,
        };
    };
    if frames.is_empty() {
        return PreNormalized3D {
            skeleton: Skeleton::zeros([m, 0, v, 3], false),
            body_center: None,
        };
    }
    let t_new = frames.len();
    let mut skel = Skeleton::zeros([m, t_new, v, 3], false);
    for (pi, &p) in persons.iter().enumerate() {
        for (fi, &f) in frames.iter().enumerate() {
            for j in 0..v {
                for ch in 0..3 {
                    let dst = skel.index(pi, fi, j, ch);
                    skel.data[dst] = input.data[input.index(p, f, j, ch)];
                }
            }
        }
    }
    // Centre: (skel - c) * mask, each op in the stored dtype (NumPy's f16 ops round an f32 result).
    let centre_joint = if v == 25 { 1 } else { v - 1 };
    let s = skel.index(0, 0, centre_joint, 0);
    let centre = [skel.data[s], skel.data[s + 1], skel.data[s + 2]];
    for point in skel.data.chunks_exact_mut(3) {
        let present = point.iter().any(|&x| x != 0.0);
        for (x, &cc) in point.iter_mut().zip(&centre) {
            let diff = if dtype == DTypeKind::F16 {
                (*x as f32 - cc as f32) as f64
            } else {
                *x - cc
            };
            *x = if present { round_to(dtype, diff) } else { 0.0 };
        }
    }
    // Spine (joint 0 → 1) to +z on the centred values, still of the stored dtype; the rotated
    // skeleton is f64, so the shoulders (joint 8 − joint 4) go to +x in f64.
    align_bone(&mut skel, 0, 1, [0.0, 0.0, 1.0], dtype);
    align_bone(&mut skel, 4, 8, [1.0, 0.0, 0.0], DTypeKind::F64);
    PreNormalized3D {
        skeleton: skel,
        body_center: Some(centre),
    }
}

/// Rotates every point so that `joint[to] − joint[from]` of person 0, frame 0 points along
/// `target` (`np.einsum('abcd,kd->abck', skel, R)`). `dtype` is the precision NumPy computes the
/// bone and its unit vector in (the skeleton's dtype before the first rotation, f64 after).
fn align_bone(skel: &mut Skeleton, from: usize, to: usize, target: [f64; 3], dtype: DTypeKind) {
    let a = skel.index(0, 0, from, 0);
    let b = skel.index(0, 0, to, 0);
    let bone = [0, 1, 2].map(|k| round_to(dtype, skel.data[b + k] - skel.data[a + k]));
    let axis = cross(bone, target);
    let angle = angle_between(bone, target, dtype);
    let r = rotation_matrix(axis, angle);
    for p in skel.data.chunks_exact_mut(3) {
        let x = [p[0], p[1], p[2]];
        for (k, out) in p.iter_mut().enumerate() {
            *out = x[0] * r[k][0] + x[1] * r[k][1] + x[2] * r[k][2];
        }
    }
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn l1(a: [f64; 3]) -> f64 {
    a.iter().map(|x| x.abs()).sum()
}

fn norm(a: [f64; 3]) -> f64 {
    (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt()
}

/// `angle_between(v1, v2)` of PYSKL: `arccos(clip(unit(v1)·unit(v2)))`, where `unit(v1)` is
/// computed in `v1`'s dtype (`np.linalg.norm` and the division of a float16/float32 array stay in
/// that type; NumPy's float16 dot accumulates in float32) and `v2` is a float64 axis.
fn angle_between(v1: [f64; 3], v2: [f64; 3], dtype: DTypeKind) -> f64 {
    if l1(v1) < 1e-6 || l1(v2) < 1e-6 {
        return 0.0;
    }
    let u1 = match dtype {
        DTypeKind::F16 | DTypeKind::F32 => {
            let sq = v1.iter().fold(0.0f32, |acc, &x| acc + (x as f32) * (x as f32));
            let n1 = round_to(dtype, (round_to(dtype, sq as f64) as f32).sqrt() as f64);
            v1.map(|x| round_to(dtype, (x as f32 / n1 as f32) as f64))
        }
        _ => {
            let n1 = norm(v1);
            v1.map(|x| x / n1)
        }
    };
    let n2 = norm(v2);
    let u2 = v2.map(|x| x / n2);
    let dot = u1[0] * u2[0] + u1[1] * u2[1] + u1[2] * u2[2];
    dot.clamp(-1.0, 1.0).acos()
}

/// The Euler–Rodrigues rotation by `theta` about `axis`; identity for a null axis or angle.
pub fn rotation_matrix(axis: [f64; 3], theta: f64) -> [[f64; 3]; 3] {
    if l1(axis) < 1e-6 || theta.abs() < 1e-6 {
        return [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    }
    let n = (axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2]).sqrt();
    let a = (theta / 2.0).cos();
    let s = (theta / 2.0).sin();
    let [b, c, d] = axis.map(|x| -(x / n) * s);
    let (aa, bb, cc, dd) = (a * a, b * b, c * c, d * d);
    let (bc, ad, ac, ab, bd, cd) = (b * c, a * d, a * c, a * b, b * d, c * d);
    [
        [aa + bb - cc - dd, 2.0 * (bc + ad), 2.0 * (bd - ac)],
        [2.0 * (bc - ad), aa + cc - bb - dd, 2.0 * (cd + ab)],
        [2.0 * (bd + ac), 2.0 * (cd - ab), aa + dd - bb - cc],
    ]
}

/// `PreNormalize2D(img_shape=(1080, 1920), threshold=0.01, mode='fix')`, `img_shape` overridden
/// by the annotation's `(h, w)`.
///
/// `keypoint`: `[M, T, V, 2]`; `score`: `[M, T, V]` if present. Returns `[M, T, V, 3]` float32
/// (`[M, T, V, 2]` without scores): x and y mapped to [-1, 1] in f32 arithmetic, and zeroed where
/// the score is ≤ 0.01.
pub fn pre_normalize_2d(
    keypoint: &[f32],
    shape: [usize; 4],
    score: Option<&[f32]>,
    img_shape: Option<(u32, u32)>,
) -> Skeleton {
    let [m, t, v, c] = shape;
    assert_eq!(c, 2, "pre_normalize_2d needs 2 channels");
    let (h, w) = img_shape.unwrap_or((1080, 1920));
    let (hw, hh) = ((w as f64 / 2.0) as f32, (h as f64 / 2.0) as f32);
    let out_c = if score.is_some() { 3 } else { 2 };
    let mut out = Skeleton::zeros([m, t, v, out_c], true);
    for p in 0..m * t * v {
        let s = score.map(|s| s[p]);
        let masked = s.is_some_and(|s| s <= 0.01);
        let x = (keypoint[2 * p] - hw) / hw;
        let y = (keypoint[2 * p + 1] - hh) / hh;
        let o = &mut out.data[p * out_c..(p + 1) * out_c];
        o[0] = if masked { 0.0 } else { x as f64 };
        o[1] = if masked { 0.0 } else { y as f64 };
        if let Some(s) = s {
            o[2] = s as f64;
        }
    }
    out
}
