//! `PysklDataset`: splits, modalities, train/val/test sampling, the `.skeleton` cache, `inspect`.

use std::path::PathBuf;

use leangcn::data::pyskl_dataset::{
    convert_skeleton_dir, inspect, PipelineMode, PysklDataset, SKELETON_CACHE, TEST_CLIPS,
};
use leangcn::data::transforms::numpy_random::NumpyRandomState;
use leangcn::data::transforms::uniform_sample::{uniform_sample, SampleMode};
use leangcn::data::ClipDataset;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name)
}

#[test]
fn splits_modalities_and_clip_shapes() {
    let p = fixture("ntu_p2_f16_C.pkl");
    let ds = PysklDataset::open(&p, "xsub_train", "j,b", 8, PipelineMode::Train).unwrap();
    assert_eq!(ds.len(), 2);
    assert_eq!(ds.num_classes(), 3);
    let shape = ds.clip_shape();
    assert_eq!(
        (shape.persons, shape.frames, shape.joints, shape.channels),
        (2, 8, 25, 6)
    );
    let mut a = vec![0f32; shape.len()];
    let mut b = vec![1f32; shape.len()];
    assert_eq!(ds.load_clip(1, 7, &mut a).unwrap(), 2);
    ds.load_clip(1, 7, &mut b).unwrap();
    assert_eq!(a, b, "same (index, seed) gives the same clip");
    assert!(a.iter().any(|&x| x != 0.0));

    let test = PysklDataset::open(&p, "xsub_val", "bm", 4, PipelineMode::Test).unwrap();
    assert_eq!(test.len(), TEST_CLIPS);
    let err = PysklDataset::open(&p, "train", "j", 8, PipelineMode::Train)
        .err()
        .unwrap();
    assert!(err.to_string().contains("unknown split 'train'"), "{err}");
    let err = PysklDataset::open(&p, "xsub_val", "jb", 8, PipelineMode::Train)
        .err()
        .unwrap();
    assert!(err.to_string().contains("unknown modality 'jb'"), "{err}");
    let mut ds = ds;
    let err = ds.set_num_classes(2).unwrap_err().to_string();
    assert!(
        err.contains("S002C003P003R002A003") && err.contains("label") && err.contains("2 is out of range"),
        "{err}"
    );
}

#[test]
fn test_mode_items_are_the_clips_of_the_seeded_sampler() {
    let p = fixture("ntu_p4_f32_C.pkl");
    let ds = PysklDataset::open(&p, "xsub_val", "j", 4, PipelineMode::Test).unwrap();
    let feats = ds.features(0);
    let inds = uniform_sample(
        feats.shape[1],
        4,
        TEST_CLIPS,
        SampleMode::Test,
        &mut NumpyRandomState::new(0),
    );
    let shape = ds.clip_shape();
    for clip in 0..TEST_CLIPS {
        let mut out = vec![0f32; shape.len()];
        ds.load_clip(clip, 123, &mut out).unwrap();
        // Person 0, frame i of the clip = feature frame inds[clip * 4 + i]; person 1 is zero-padded.
        for i in 0..4 {
            let src = feats.index(0, inds[clip * 4 + i], 0, 0);
            let want: Vec<f32> = feats.data[src..src + 75].iter().map(|&x| x as f32).collect();
            assert_eq!(&out[i * 75..(i + 1) * 75], &want[..], "clip {clip} frame {i}");
        }
        assert!(out[4 * 75..].iter().all(|&x| x == 0.0));
    }
}

#[test]
fn two_d_file_uses_prenormalize_2d_with_the_score_channel() {
    let ds = PysklDataset::open(&fixture("coco_p2.pkl"), "train", "j", 4, PipelineMode::Val).unwrap();
    let shape = ds.clip_shape();
    assert_eq!((shape.joints, shape.channels), (17, 3));
    let f = ds.features(0);
    // img_shape (720, 1280): x' = (x − 640) / 640; joint 1 of frame 0 has score 0.25 > 0.01.
    let x = ((-100.0 + 3.0) / 16.0) * 40.0 + 500.0;
    assert_eq!(f.data[f.index(0, 0, 1, 0)], ((x - 640.0f32) / 640.0) as f64);
    assert_eq!(f.data[f.index(0, 0, 1, 2)], 0.25);
    // Joint 0 has score 0 → x = y = 0.
    assert_eq!(&f.data[..2], &[0.0, 0.0]);
}

#[test]
fn skeleton_directory_is_cached_and_inspected() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture("ntu_skeletons")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let first = PysklDataset::open(dir.path(), "xview_val", "j", 10, PipelineMode::Val).unwrap();
    assert!(dir.path().join(SKELETON_CACHE).exists());
    let second = PysklDataset::open(dir.path(), "xview_val", "j", 10, PipelineMode::Val).unwrap();
    assert_eq!(first.samples(), second.samples());

    let out = dir.path().join("converted.pkl");
    convert_skeleton_dir(dir.path(), &out).unwrap();
    let text = inspect(&out).unwrap();
    for part in [
        "2 samples",
        "split xsub_train: 1",
        "split xview_val: 1",
        "25 joints (nturgb+d) × 3 channels, float16",
        "persons: {1: 1, 2: 1}",
    ] {
        assert!(text.contains(part), "{part:?} not in\n{text}");
    }
    let text = inspect(&fixture("ntu_skeletons")).unwrap();
    assert!(
        text.contains("skipped: 1 listed as missing, 1 without bodies"),
        "{text}"
    );
}
