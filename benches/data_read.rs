//! Reading speed of PYSKL annotation pickles (MB/s and samples/s).
//!
//! The file is made at bench time by our own protocol-4 writer: 1000 NTU-like samples, 2 persons,
//! 100 frames, 25 joints, float16 keypoints (~30 MB), the layout of `ntu60_3danno.pkl` re-dumped
//! at protocol 4. PYSKL's own files are protocol 2, whose latin-1 payloads need a decoding pass;
//! this bench does not cover that case.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use leangcn::data::annotation::{Annotation, AnnotationFile};
use leangcn::data::pickle::DTypeKind;
use leangcn::data::Sequence;

const SAMPLES: usize = 1000;
const SHAPE: [usize; 4] = [2, 100, 25, 3];

fn make_file(path: &std::path::Path) {
    let len: usize = SHAPE.iter().product();
    let annotations = (0..SAMPLES)
        .map(|i| Annotation {
            sequence: Sequence {
                frame_dir: format!("S001C001P{:03}R001A{:03}", i / 60 + 1, i % 60 + 1),
                label: (i % 60) as u32,
                shape: SHAPE,
                keypoint: (0..len).map(|k| ((k * 7 + i) % 1000) as f32 / 256.0).collect(),
            },
            keypoint_dtype: DTypeKind::F16,
            keypoint_score: None,
            img_shape: None,
            original_shape: None,
            total_frames: SHAPE[1],
        })
        .collect::<Vec<_>>();
    let names = annotations.iter().map(|a| a.sequence.frame_dir.clone()).collect();
    let file = AnnotationFile {
        path: path.to_path_buf(),
        splits: vec![("xsub_train".into(), names)],
        annotations,
    };
    file.write_pickle(path).unwrap();
}

fn read(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ntu_like_p4.pkl");
    make_file(&path);
    let bytes = std::fs::metadata(&path).unwrap().len();
    let mut group = c.benchmark_group("read_annotations_p4_f16");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("bytes", |b| {
        b.iter(|| AnnotationFile::read(&path).unwrap().annotations.len())
    });
    group.throughput(Throughput::Elements(SAMPLES as u64));
    group.bench_function("samples", |b| {
        b.iter(|| AnnotationFile::read(&path).unwrap().annotations.len())
    });
    group.finish();
}

criterion_group!(benches, read);
criterion_main!(benches);
