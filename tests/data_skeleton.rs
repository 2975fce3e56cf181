//! NTU `.skeleton` files: parsing, PYSKL's body selection, splits, missing samples, the cache.

use std::path::PathBuf;

use half::f16;
use leangcn::data::annotation::AnnotationFile;
use leangcn::data::ntu_skeleton::{parse_skeleton, read_skeleton_dir, read_skeleton_file, skeleton_annotation};
use leangcn::data::ntu_splits::{parse_missing_list, Benchmark, NtuName};
use leangcn::data::pickle::DTypeKind;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name)
}

/// The fixture's joint formula (scripts/make_fixtures.py), rounded to f16 as stored.
fn joint(t: f64, amp: f64, base: f64, j: usize) -> [f32; 3] {
    let p = [
        base + 0.01 * j as f64 + amp * t.sin(),
        0.05 * j as f64 - 0.6,
        3.0 + 0.001 * j as f64,
    ];
    // The file holds 6 decimals.
    p.map(|x| f16::from_f32(format!("{x:.6}").parse::<f32>().unwrap()).to_f32())
}

#[test]
fn names_and_splits() {
    let n = NtuName::parse("S018C002P045R001A061").unwrap();
    assert_eq!(
        (n.setup, n.camera, n.performer, n.replication, n.action),
        (18, 2, 45, 1, 61)
    );
    assert_eq!(n.label(), Some(60));
    assert_eq!(NtuName::parse("S018C002P045R001A000").unwrap().label(), None);
    assert!(NtuName::parse("S018C002P045R001A06").is_none());
    assert!(NtuName::parse("X018C002P045R001A061").is_none());
    assert!(Benchmark::Ntu120XSub.is_train(&n));
    assert!(!Benchmark::Ntu60XSub.is_train(&n));
    assert!(Benchmark::Ntu120XSet.is_train(&n));
    assert!(Benchmark::Ntu60XView.is_train(&n));
    let v = NtuName::parse("S017C001P040R002A060").unwrap();
    assert!(!Benchmark::Ntu60XView.is_train(&v));
    assert!(!Benchmark::Ntu120XSet.is_train(&v));
    let list = "header line\nanother\n\nS001C002P005R002A008\r\nS001C002P006R001A008";
    assert_eq!(
        parse_missing_list(list),
        vec!["S001C002P005R002A008", "S001C002P006R001A008"]
    );
}

#[test]
fn two_bodies_sorted_by_motion_and_noisy_body_dropped() {
    let a = read_skeleton_file(&fixture("ntu_skeletons/S001C001P001R001A001.skeleton"))
        .unwrap()
        .unwrap();
    assert_eq!(a.keypoint_dtype, DTypeKind::F16);
    assert_eq!(a.sequence.label, 0);
    // 20 frames minus the empty frame 3; two persons, the noisy one dropped.
    assert_eq!(a.sequence.shape, [2, 19, 25, 3]);
    assert_eq!(a.total_frames, 19);
    let kp = &a.sequence.keypoint;
    let at = |m: usize, t: usize, j: usize| {
        let o = ((m * 19 + t) * 25 + j) * 3;
        [kp[o], kp[o + 1], kp[o + 2]]
    };
    // Person 0 is the large-motion body (file frames 5..19 → timeline 4..18).
    assert_eq!(at(0, 0, 7), [0.0; 3]);
    assert_eq!(at(0, 4, 7), joint(5.0, 0.3, -0.4, 7));
    assert_eq!(at(0, 18, 24), joint(19.0, 0.3, -0.4, 24));
    // Person 1 is the small-motion body over all 19 frames.
    assert_eq!(at(1, 0, 0), joint(0.0, 0.01, 0.2, 0));
    assert_eq!(at(1, 3, 5), joint(4.0, 0.01, 0.2, 5));
}

#[test]
fn short_body_dropped_and_empty_frames_skipped() {
    let a = read_skeleton_file(&fixture("ntu_skeletons/S001C002P003R002A002.skeleton"))
        .unwrap()
        .unwrap();
    assert_eq!(a.sequence.shape, [1, 15, 25, 3]);
    assert_eq!(&a.sequence.keypoint[..3], &joint(0.0, 0.05, 0.1, 0));
    assert!(
        read_skeleton_file(&fixture("ntu_skeletons/S001C003P002R001A003.skeleton"))
            .unwrap()
            .is_none()
    );
}

#[test]
fn directory_with_splits_missing_list_and_cache_round_trip() {
    let (file, report) = read_skeleton_dir(&fixture("ntu_skeletons")).unwrap();
    assert_eq!(report.listed_missing, 1);
    assert_eq!(report.without_bodies, vec!["S001C003P002R001A003"]);
    let warning = report.warning(&fixture("ntu_skeletons")).unwrap();
    assert!(
        warning
            .contains("ntu_skeletons: skipped 2 samples: 1 listed as missing, 1 without bodies (S001C003P002R001A003)"),
        "{warning}"
    );
    let names: Vec<&str> = file.annotations.iter().map(|a| a.sequence.frame_dir.as_str()).collect();
    assert_eq!(names, ["S001C001P001R001A001", "S001C002P003R002A002"]);
    let split = |n: &str| file.split_indices(n).unwrap();
    assert_eq!(split("xsub_train"), vec![0]);
    assert_eq!(split("xsub_val"), vec![1]);
    assert_eq!(split("xview_train"), vec![1]);
    assert_eq!(split("xview_val"), vec![0]);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ntu.pkl");
    file.write_pickle(&out).unwrap();
    let back = AnnotationFile::read(&out).unwrap();
    assert_eq!(back.splits, file.splits);
    assert_eq!(back.annotations, file.annotations);
}

#[test]
fn malformed_skeleton_files_are_named() {
    let p = fixture("ntu_bad/S001C001P001R001A001.skeleton");
    let err = read_skeleton_file(&p).unwrap_err().to_string();
    assert!(
        err.contains("S001C001P001R001A001.skeleton") && err.contains("truncated"),
        "{err}"
    );
    let p = PathBuf::from("x.skeleton");
    let err = parse_skeleton(&p, "1\n1\n5 0 1 1 1 1 0 0.1 0.2 2\n24\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("x.skeleton: frame 0 body 0: 24 joints"), "{err}");
    let err = parse_skeleton(&p, "1\nabc\n").unwrap_err().to_string();
    assert!(err.contains("x.skeleton: frame 0 body count: 'abc'"), "{err}");
    let err = read_skeleton_dir(&fixture("ntu_bad")).unwrap_err().to_string();
    assert!(err.contains("truncated"), "{err}");
}

/// A one-body, `frames`-frame file in the official layout; joint `j`, channel `c` of frame `f`
/// is `value(f, j, c)`.
fn skeleton_text(frames: usize, value: impl Fn(usize, usize, usize) -> String) -> String {
    let mut s = format!("{frames}\n");
    for f in 0..frames {
        s.push_str("1\n1 0 1 1 1 1 0 0.1 0.2 2\n25\n");
        for j in 0..25 {
            let xyz: Vec<String> = (0..3).map(|c| value(f, j, c)).collect();
            s.push_str(&format!("{} 250 200 960 540 0.5 0.1 0.2 0.3 2\n", xyz.join(" ")));
        }
    }
    s
}

fn plain(f: usize, j: usize, c: usize) -> String {
    format!("{:.3}", 0.01 * (f + j + c) as f64)
}

/// Bad `.skeleton` content fails naming the file (the sample) and the field; an empty file is
/// skipped (counted by `read_skeleton_dir`).
#[test]
fn bad_skeleton_values_are_named() {
    let path = PathBuf::from("S001C001P001R001A001.skeleton");
    let err_of = |path: &PathBuf, text: &[u8]| skeleton_annotation(path, text).unwrap_err().to_string();
    let good = skeleton_text(2, plain);
    assert_eq!(
        skeleton_annotation(&path, good.as_bytes())
            .unwrap()
            .unwrap()
            .sequence
            .shape,
        [1, 2, 25, 3]
    );

    let nan = skeleton_text(2, |f, j, c| {
        if (f, j, c) == (1, 3, 1) {
            "nan".into()
        } else {
            plain(f, j, c)
        }
    });
    let err = err_of(&path, nan.as_bytes());
    assert!(
        err.contains("S001C001P001R001A001.skeleton: frame 1 body 0 joint 3 channel 1: 'nan' is not a finite float32"),
        "{err}"
    );
    let inf = skeleton_text(2, |f, j, c| {
        if (f, j, c) == (0, 7, 2) {
            "1e39".into()
        } else {
            plain(f, j, c)
        }
    });
    let err = err_of(&path, inf.as_bytes());
    assert!(
        err.contains("S001C001P001R001A001.skeleton: frame 0 body 0 joint 7 channel 2: '1e39' is not a finite"),
        "{err}"
    );
    // Finite in float32 but beyond float16, in which the annotation is stored.
    let big = skeleton_text(2, |f, j, c| {
        if (f, j, c) == (0, 0, 0) {
            "70000".into()
        } else {
            plain(f, j, c)
        }
    });
    let err = err_of(&path, big.as_bytes());
    assert!(
        err.contains("S001C001P001R001A001.skeleton: sample S001C001P001R001A001: keypoint: value 70000")
            && err.contains("overflows float16"),
        "{err}"
    );
    let a000 = PathBuf::from("S001C001P001R001A000.skeleton");
    let err = err_of(&a000, good.as_bytes());
    assert!(
        err.contains("S001C001P001R001A000.skeleton: sample S001C001P001R001A000: label: action A000 is out of range"),
        "{err}"
    );
    let err = err_of(&PathBuf::from("video_12.skeleton"), good.as_bytes());
    assert!(
        err.contains("video_12.skeleton: file name is not an NTU sample name"),
        "{err}"
    );
    let err = err_of(&path, b"1\n\xff\n");
    assert!(
        err.contains("S001C001P001R001A001.skeleton: not a text file: invalid UTF-8 at byte 2"),
        "{err}"
    );
    let truncated = &good[..good.len() / 2];
    let err = err_of(&path, truncated.as_bytes());
    assert!(
        err.contains("S001C001P001R001A001.skeleton: truncated: expected"),
        "{err}"
    );
    // No frame, or frames without bodies: no sample, as PYSKL skips it.
    assert!(skeleton_annotation(&path, b"0\n").unwrap().is_none());
    assert!(skeleton_annotation(&path, b"2\n0\n0\n").unwrap().is_none());
}
