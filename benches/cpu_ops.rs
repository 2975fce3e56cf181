//! Throughput of the main CPU ops at ST-GCN shapes (f32, 8 person-sequences, V = 25):
//! the 9x1 temporal conv and the 1x1 conv (forward, input and weight gradients), graph
//! aggregation and training-mode batch norm, at the three stages (C, T) = (64, 100), (128, 50),
//! (256, 25). Conv and graph throughput is counted in multiply-adds, batch norm in elements.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::{Backend, BnEpilogue, BnGeom, ConvGeom, GraphGeom};

const BATCH: usize = 8;
const JOINTS: usize = 25;
const SUBSETS: usize = 3;
const STAGES: [(usize, usize); 3] = [(64, 100), (128, 50), (256, 25)];

/// Deterministic, varied values in [-1, 1).
fn data(len: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 7919) % 2003) as f32 / 1001.5 - 1.0).collect()
}

fn bench_conv(c: &mut Criterion, name: &str, geom: impl Fn(usize, usize) -> ConvGeom) {
    let be = CpuBackend::<f32>::new();
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    for (ch, t) in STAGES {
        let g = geom(ch, t);
        let (x, w, b, dy) = (data(g.x_len()), data(g.w_len()), data(g.c_out), data(g.y_len()));
        let (mut y, mut dx) = (vec![0f32; g.y_len()], vec![0f32; g.x_len()]);
        let (mut dw, mut db) = (vec![0f32; g.w_len()], vec![0f32; g.c_out]);
        let id = format!("c{ch}_t{t}");
        group.throughput(Throughput::Elements(g.macs()));
        group.bench_function(BenchmarkId::new("forward", &id), |bench| {
            bench.iter(|| be.conv_t_forward(&g, &x, &w, Some(&b), &mut y))
        });
        group.bench_function(BenchmarkId::new("backward_input", &id), |bench| {
            bench.iter(|| be.conv_t_backward_input(&g, &dy, &w, &mut dx))
        });
        group.bench_function(BenchmarkId::new("backward_weight", &id), |bench| {
            bench.iter(|| be.conv_t_backward_weight(&g, &x, &dy, &mut dw, Some(&mut db)))
        });
    }
    group.finish();
}

/// The temporal conv of a block: C → C, 9x1, padding 4.
fn temporal_conv(c: &mut Criterion) {
    bench_conv(c, "conv_t_kt9", |ch, t| ConvGeom {
        n: BATCH,
        c_in: ch,
        c_out: ch,
        t_in: t,
        v: JOINTS,
        kt: 9,
        pad: 4,
        stride: 1,
    });
}

/// The 1x1 conv of the graph convolution: C → K·C.
fn pointwise_conv(c: &mut Criterion) {
    bench_conv(c, "conv_t_kt1", |ch, t| ConvGeom {
        n: BATCH,
        c_in: ch,
        c_out: SUBSETS * ch,
        t_in: t,
        v: JOINTS,
        kt: 1,
        pad: 0,
        stride: 1,
    });
}

fn graph(c: &mut Criterion) {
    let be = CpuBackend::<f32>::new();
    let mut group = c.benchmark_group("graph");
    group.sample_size(10);
    for (ch, t) in STAGES {
        let g = GraphGeom {
            n: BATCH,
            k: SUBSETS,
            c: ch,
            t,
            v: JOINTS,
        };
        let (z, a, dy) = (data(g.z_len()), data(g.a_len()), data(g.y_len()));
        let (mut y, mut dz, mut da) = (vec![0f32; g.y_len()], vec![0f32; g.z_len()], vec![0f32; g.a_len()]);
        let id = format!("c{ch}_t{t}");
        group.throughput(Throughput::Elements((g.z_len() * JOINTS) as u64));
        group.bench_function(BenchmarkId::new("forward", &id), |bench| {
            bench.iter(|| be.graph_forward(&g, &z, &a, &mut y))
        });
        group.bench_function(BenchmarkId::new("backward", &id), |bench| {
            bench.iter(|| be.graph_backward(&g, &z, &a, &dy, &mut dz, &mut da))
        });
    }
    group.finish();
}

fn batch_norm(c: &mut Criterion) {
    let be = CpuBackend::<f32>::new();
    let mut group = c.benchmark_group("batch_norm");
    group.sample_size(10);
    for (ch, t) in STAGES {
        let g = BnGeom {
            n: BATCH,
            c: ch,
            s: t * JOINTS,
            eps: 1e-5,
            momentum: 0.1,
        };
        let (x, dy, gamma, beta) = (data(g.len()), data(g.len()), data(ch), data(ch));
        let (mut rm, mut rv) = (vec![0f32; ch], vec![1f32; ch]);
        let (mut y, mut dx) = (vec![0f32; g.len()], vec![0f32; g.len()]);
        let (mut mean, mut invstd) = (vec![0f32; ch], vec![0f32; ch]);
        let (mut dgamma, mut dbeta) = (vec![0f32; ch], vec![0f32; ch]);
        let id = format!("c{ch}_t{t}");
        group.throughput(Throughput::Elements(g.len() as u64));
        group.bench_function(BenchmarkId::new("train", &id), |bench| {
            bench.iter(|| {
                be.batch_norm_train(
                    &g,
                    &x,
                    None,
                    BnEpilogue::none(),
                    &gamma,
                    &beta,
                    &mut rm,
                    &mut rv,
                    &mut y,
                    &mut mean,
                    &mut invstd,
                )
            })
        });
        group.bench_function(BenchmarkId::new("backward", &id), |bench| {
            bench.iter(|| {
                be.batch_norm_backward(
                    &g,
                    &x,
                    &dy,
                    None,
                    &gamma,
                    &mean,
                    &invstd,
                    &mut dx,
                    &mut dgamma,
                    &mut dbeta,
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, temporal_conv, pointwise_conv, graph, batch_norm);
criterion_main!(benches);
