//! Samples per second of the full NTU 3D training pipeline: an annotation file read once, then per
//! clip PreNormalize3D, GenSkeFeat (joint), UniformSample (clip length 100), PoseDecode and
//! FormatGCNInput on the loader's worker threads, batched by 128.
//!
//! The file is made at bench time by our protocol-4 writer: 2,000 NTU-like samples of 60 to 299
//! frames, one or two persons, float16 keypoints of smoothly moving joints.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use leangcn::data::annotation::{Annotation, AnnotationFile};
use leangcn::data::loader::BatchLoader;
use leangcn::data::pickle::DTypeKind;
use leangcn::data::pyskl_dataset::{PipelineMode, PysklDataset};
use leangcn::data::{ClipDataset, Sequence};
use leangcn::model::init::InitRng;

const SAMPLES: usize = 2000;

fn make_file(path: &std::path::Path) {
    let mut rng = InitRng::new(7);
    let annotations: Vec<Annotation> = (0..SAMPLES)
        .map(|i| {
            let persons = 1 + (i % 3 == 0) as usize;
            let frames = 60 + (rng.next_u64() % 240) as usize;
            let mut keypoint = Vec::with_capacity(persons * frames * 75);
            for p in 0..persons {
                let base: Vec<f64> = (0..75).map(|k| (k as f64 * 0.37).sin() * 0.5 + p as f64).collect();
                for t in 0..frames {
                    for (k, b) in base.iter().enumerate() {
                        keypoint.push((b + 0.1 * (t as f64 * 0.05 + k as f64).sin() + 0.01 * rng.normal()) as f32);
                    }
                }
            }
            Annotation {
                sequence: Sequence {
                    frame_dir: format!("S001C001P{:03}R001A{:03}", i % 40 + 1, i % 60 + 1),
                    label: (i % 60) as u32,
                    shape: [persons, frames, 25, 3],
                    keypoint,
                },
                keypoint_dtype: DTypeKind::F16,
                keypoint_score: None,
                img_shape: None,
                original_shape: None,
                total_frames: frames,
            }
        })
        .collect();
    let names = annotations.iter().map(|a| a.sequence.frame_dir.clone()).collect();
    AnnotationFile {
        path: path.to_path_buf(),
        splits: vec![("xsub_train".into(), names)],
        annotations,
    }
    .write_pickle(path)
    .unwrap();
}

fn pipeline(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ntu_like.pkl");
    make_file(&path);
    let data: Arc<dyn ClipDataset> =
        Arc::new(PysklDataset::open(&path, "xsub_train", "j", 100, PipelineMode::Train).unwrap());
    let loader = BatchLoader::new(data.clone(), 128, true, false, 0, 0);
    let mut group = c.benchmark_group("ntu3d_train_pipeline_clip100");
    group.sample_size(10);
    group.throughput(Throughput::Elements(data.len() as u64));
    let mut epoch = 0;
    group.bench_function("epoch_of_2000_samples", |b| {
        b.iter(|| {
            epoch += 1;
            loader.epoch(epoch, 0).map(|batch| batch.unwrap().n).sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
