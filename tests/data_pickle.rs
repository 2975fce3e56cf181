//! Reading PYSKL annotation pickles: every protocol, dtype and order, and every bad input.

use std::path::PathBuf;

use leangcn::data::annotation::AnnotationFile;
use leangcn::data::pickle::DTypeKind;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name)
}

/// The fixture formula (scripts/make_fixtures.py), exact in f16.
fn value(m: usize, t: usize, v: usize, c: usize) -> f32 {
    (((m * 31 + t * 7 + v * 3 + c) % 200) as f32 - 100.0) / 16.0
}

fn expected(shape: [usize; 4]) -> Vec<f32> {
    let [nm, nt, nv, nc] = shape;
    let mut out = Vec::new();
    for m in 0..nm {
        for t in 0..nt {
            for v in 0..nv {
                for c in 0..nc {
                    out.push(value(m, t, v, c));
                }
            }
        }
    }
    out
}

#[test]
fn every_protocol_dtype_and_order_decodes_exactly() {
    let mut names: Vec<String> = Vec::new();
    for p in [2, 4, 5] {
        for d in ["f16", "f32", "f64"] {
            for o in ["C", "F"] {
                names.push(format!("ntu_p{p}_{d}_{o}.pkl"));
            }
        }
    }
    names.push("ntu_p2_f16_C_other_numpy.pkl".into());
    for name in names {
        let file = AnnotationFile::read(&fixture(&name)).unwrap();
        let kind = if name.contains("f16") {
            DTypeKind::F16
        } else if name.contains("f32") {
            DTypeKind::F32
        } else {
            DTypeKind::F64
        };
        let shapes = [[2, 5, 25, 3], [1, 7, 25, 3], [2, 3, 25, 3]];
        assert_eq!(file.annotations.len(), 3, "{name}");
        for (i, a) in file.annotations.iter().enumerate() {
            assert_eq!(a.keypoint_dtype, kind, "{name}");
            assert_eq!(a.sequence.shape, shapes[i], "{name}");
            assert_eq!(a.sequence.label, i as u32, "{name}");
            assert_eq!(a.total_frames, shapes[i][1], "{name}");
            // Exact: every value is a multiple of 1/16.
            assert_eq!(a.sequence.keypoint, expected(shapes[i]), "{name} sample {i}");
        }
        assert_eq!(file.split_indices("xsub_train").unwrap(), vec![0, 2], "{name}");
        assert_eq!(file.split_indices("xsub_val").unwrap(), vec![1], "{name}");
    }
}

#[test]
fn two_d_file_with_scores_and_shapes() {
    let file = AnnotationFile::read(&fixture("coco_p2.pkl")).unwrap();
    let a = &file.annotations[0];
    assert_eq!(a.sequence.frame_dir, "gym_0001");
    assert_eq!(a.sequence.label, 98);
    assert_eq!(a.sequence.shape, [1, 4, 17, 2]);
    assert_eq!(a.img_shape, Some((720, 1280)));
    assert_eq!(a.original_shape, Some((720, 1280)));
    let scores = a.keypoint_score.as_ref().unwrap();
    let want: Vec<f32> = (0..68).map(|i| (i % 5) as f32 / 4.0).collect();
    assert_eq!(scores, &want);
    assert_eq!(a.sequence.keypoint[2], value(0, 0, 1, 0) * 40.0 + 500.0);
    assert!(file.split_indices("val").unwrap().is_empty());
}

fn error_of(name: &str) -> String {
    AnnotationFile::read(&fixture(name)).unwrap_err().to_string()
}

fn assert_contains(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} lacks {p:?}");
    }
}

/// Every bad file fails with a message naming the file and, for a bad sample, the sample
/// (frame_dir, or `#index` when there is none) and the field.
#[test]
fn bad_inputs_are_named() {
    let sample = "sample S001C002P002R001A002";
    let cases: &[(&str, &[&str])] = &[
        ("bad_truncated.pkl", &["truncated", "at offset"]),
        ("bad_not_pickle.pkl", &["does not start with a pickle"]),
        (
            "bad_list.pkl",
            &["not a PYSKL annotation file", "the pickle holds a list"],
        ),
        ("bad_global.pkl", &["`posix.system`", "not part of an annotation"]),
        ("bad_no_split.pkl", &["not a PYSKL annotation file", "no 'split' key"]),
        ("bad_not_dict.pkl", &["sample #1: annotation: is a str, not a dict"]),
        ("bad_joints.pkl", &[sample, ": keypoint: 19 joints; expected 25"]),
        (
            "bad_nan.pkl",
            &[sample, ": keypoint: NaN at person 0, frame 4, joint 10, channel 1"],
        ),
        (
            "bad_inf.pkl",
            &[sample, ": keypoint: -inf at person 0, frame 2, joint 3, channel 0"],
        ),
        (
            "bad_score_nan.pkl",
            &["sample gym_0001: keypoint_score: NaN at person 0, frame 1, joint 2"],
        ),
        (
            "bad_empty.pkl",
            &[sample, ": keypoint: empty sequence (shape [1, 0, 25, 3])"],
        ),
        (
            "bad_no_person.pkl",
            &[sample, ": keypoint: empty sequence (shape [0, 7, 25, 3])"],
        ),
        ("bad_label.pkl", &[sample, ": label: -3 is out of range"]),
        ("bad_label_type.pkl", &[sample, ": label: is a str, not an int"]),
        (
            "bad_label_huge.pkl",
            &[sample, ": label: 4000000000 is out of range (0..65536)"],
        ),
        (
            "bad_img_shape.pkl",
            &["sample gym_0001: img_shape: is not an (h, w) pair of positive ints"],
        ),
        ("does_not_exist.pkl", &["No such file"]),
    ];
    for (name, parts) in cases {
        let msg = error_of(name);
        assert_contains(&msg, &[&format!("{name}: ")]);
        assert_contains(&msg, parts);
    }
}

#[test]
fn unknown_split_lists_the_available_ones() {
    let file = AnnotationFile::read(&fixture("ntu_p4_f32_C.pkl")).unwrap();
    let msg = file.split_indices("xview_train").unwrap_err().to_string();
    assert_contains(
        &msg,
        &[
            "ntu_p4_f32_C.pkl: ",
            "unknown split 'xview_train'",
            "xsub_train",
            "xsub_val",
        ],
    );
}
