//! Where the CPU's CSR conv beats its im2col + GEMM conv (`CpuBackend::CSR_MAX_DENSITY`): forward
//! and input gradient of the 9x1 temporal conv (C → C) and the graph unit's 1x1 conv (C → 3C) at
//! ST-GCN shapes (f32, 8 person-sequences, V = 25, the three stages (C, T) = (64, 100), (128, 50),
//! (256, 25)), dense on `W ⊙ M` and CSR at densities 0.3, 0.1, 0.05 and 0.01. Throughput in dense
//! multiply-adds, so the variants compare directly.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::{Backend, ConvGeom};

const BATCH: usize = 8;
const JOINTS: usize = 25;
const STAGES: [(usize, usize); 3] = [(64, 100), (128, 50), (256, 25)];
const DENSITIES: [f64; 4] = [0.3, 0.1, 0.05, 0.01];

/// Deterministic, varied values in [-1, 1).
fn data(len: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 7919) % 2003) as f32 / 1001.5 - 1.0).collect()
}

/// A deterministic mask keeping about `density` of `len` weights, spread over the whole weight.
fn mask(len: usize, density: f64) -> Vec<f32> {
    (0..len)
        .map(|i| {
            let u = (i.wrapping_mul(2_654_435_761) % 1_000_003) as f64 / 1_000_003.0;
            if u < density {
                1.0
            } else {
                0.0
            }
        })
        .collect()
}

fn bench_conv(c: &mut Criterion, name: &str, geom: impl Fn(usize, usize) -> ConvGeom) {
    let be = CpuBackend::<f32>::new();
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.warm_up_time(std::time::Duration::from_secs(1));
    group.measurement_time(std::time::Duration::from_secs(2));
    for (ch, t) in STAGES {
        let g = geom(ch, t);
        let (x, w, b, dy) = (data(g.x_len()), data(g.w_len()), data(g.c_out), data(g.y_len()));
        let (mut y, mut dx) = (vec![0f32; g.y_len()], vec![0f32; g.x_len()]);
        let id = format!("c{ch}_t{t}");
        group.throughput(Throughput::Elements(g.macs()));
        group.bench_function(BenchmarkId::new("dense_forward", &id), |bench| {
            bench.iter(|| be.conv_t_forward(&g, &x, &w, Some(&b), &mut y))
        });
        group.bench_function(BenchmarkId::new("dense_backward_input", &id), |bench| {
            bench.iter(|| be.conv_t_backward_input(&g, &dy, &w, &mut dx))
        });
        for density in DENSITIES {
            let sw = be.sparse_weight(&w, &mask(g.w_len(), density), g.c_out, g.c_in, g.kt);
            group.bench_function(BenchmarkId::new(format!("csr_{density}_forward"), &id), |bench| {
                bench.iter(|| be.conv_t_forward_sparse(&g, &x, &sw, Some(&b), &mut y))
            });
            group.bench_function(
                BenchmarkId::new(format!("csr_{density}_backward_input"), &id),
                |bench| bench.iter(|| be.conv_t_backward_input_sparse(&g, &dy, &sw, &mut dx)),
            );
        }
    }
    group.finish();
}

fn temporal_conv(c: &mut Criterion) {
    bench_conv(c, "sparse_conv_t_kt9", |ch, t| ConvGeom {
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

fn pointwise_conv(c: &mut Criterion) {
    bench_conv(c, "sparse_conv_t_kt1", |ch, t| ConvGeom {
        n: BATCH,
        c_in: ch,
        c_out: 3 * ch,
        t_in: t,
        v: JOINTS,
        kt: 1,
        pad: 0,
        stride: 1,
    });
}

criterion_group!(benches, temporal_conv, pointwise_conv);
criterion_main!(benches);
