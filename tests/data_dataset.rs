//! `PysklDataset`: splits, modalities, train/val/test sampling, the `.skeleton` cache, `inspect`.

use std::path::PathBuf;

use leangcn::data::pyskl_dataset::{
    convert_skeleton_dir, inspect, PipelineMode, PysklDataset, SKELETON_CACHE, TEST_CLIPS,
};
use leangcn::data::transforms::numpy_random::NumpyRandomState;
use leangcn::data::transforms::uniform_sample::{uniform_sample, SampleMode};
use leangcn::data::ClipDataset;
use leangcn::model::Layout;
use leangcn::train::datasets::open_test_split;
use leangcn::train::TrainConfig;

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
        .unwrap()
        .to_string();
    assert!(
        err.contains("ntu_p2_f16_C.pkl: unknown split 'train'; the file has [\"xsub_train\", \"xsub_val\"]"),
        "{err}"
    );
    let err = PysklDataset::open(&p, "xsub_val", "jb", 8, PipelineMode::Train)
        .err()
        .unwrap();
    assert!(err.to_string().contains("unknown modality 'jb'"), "{err}");
    let mut ds = ds;
    let err = ds.set_num_classes(2).unwrap_err().to_string();
    assert!(
        err.contains("ntu_p2_f16_C.pkl: sample S002C003P003R002A003: label: 2 is out of range for 2 classes"),
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
    // Read through the cache, so the cache file is named.
    let err = PysklDataset::open(dir.path(), "xsub", "j", 10, PipelineMode::Val)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains(&format!(
            "{}: unknown split 'xsub'",
            dir.path().join(SKELETON_CACHE).display()
        )) && err.contains("\"xsub_train\", \"xsub_val\", \"xview_train\", \"xview_val\""),
        "{err}"
    );

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

fn open_error(name: &str, split: &str) -> String {
    PysklDataset::open(&fixture(name), split, "j", 8, PipelineMode::Train)
        .err()
        .unwrap()
        .to_string()
}

/// Samples that read but cannot go through the pipeline fail when the split is opened, naming the
/// file, the sample and the field.
#[test]
fn unusable_samples_are_named_on_open() {
    let err = open_error("bad_mixed_joints.pkl", "xsub_train");
    assert!(
        err.contains(
            "bad_mixed_joints.pkl: sample S002C003P003R002A003: keypoint: 18 joints × 3 channels, but the \
             split's first sample has 25 × 3 (nturgb+d layout)"
        ),
        "{err}"
    );
    let err = open_error("bad_near_zero.pkl", "xsub_val");
    assert!(
        err.contains("bad_near_zero.pkl: sample S001C002P002R001A002: keypoint: no frame where person 0 or 1"),
        "{err}"
    );
    let err = open_error("bad_no_score.pkl", "train");
    assert!(
        err.contains("bad_no_score.pkl: sample gym_0001: keypoint_score: missing: 2D keypoints need scores"),
        "{err}"
    );
    let err = open_error("coco_p2.pkl", "val");
    assert!(err.contains("coco_p2.pkl: split 'val' has no samples"), "{err}");
}

/// Finite coordinates whose float16 centring overflows: the clip fails instead of reaching training.
#[test]
fn overflowing_pre_processing_is_an_error_not_nan() {
    let ds = PysklDataset::open(&fixture("bad_overflow.pkl"), "xsub_val", "j", 8, PipelineMode::Train).unwrap();
    let mut out = vec![0f32; ds.clip_shape().len()];
    let err = ds.load_clip(0, 0, &mut out).unwrap_err().to_string();
    assert!(
        err.contains("bad_overflow.pkl: sample S001C002P002R001A002: keypoint: pre-processing overflows to")
            && err.contains("coordinates up to 6e4 are too large for float16 arithmetic"),
        "{err}"
    );
}

/// Evaluating a model on data of another layout fails naming the data file and a sample.
#[test]
fn test_split_of_another_layout_is_refused() {
    let mut cfg = TrainConfig::preset("tiny").unwrap();
    cfg.data.path = Some(fixture("ntu_p4_f32_C.pkl"));
    cfg.data.split = "xsub".into();
    cfg.model.num_classes = 60;
    cfg.model.layout = Layout::Coco;
    let err = open_test_split(&cfg).err().unwrap().to_string();
    assert!(
        err.contains(
            "ntu_p4_f32_C.pkl: sample S001C002P002R001A002: keypoint: 25 joints × 3 input channels \
             (modality j), but the model takes the coco layout (17 joints) × 3 channels"
        ),
        "{err}"
    );
    cfg.model.layout = Layout::NtuRgbd;
    assert!(open_test_split(&cfg).is_ok());
}
