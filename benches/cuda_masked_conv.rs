//! Forward time of a masked conv on the GPU at ST-GCN shapes (64 person-sequences, V = 25): the
//! 9x1 temporal conv at the three stages (C, T) = (64, 100), (128, 50), (256, 25) and the graph
//! unit's 1x1 conv C → 3C, each as the dense f32 kernel on `W ⊙ M`, the dense bf16 tensor-core
//! kernel (the baseline of the 2:4 kernel, same operand precision), the CSR kernel at densities
//! 0.5, 0.1 and 0.01, and the 2:4 tensor-core kernel (density 0.5, bf16 operands). Device time of
//! back-to-back launches between two CUDA events; throughput in dense multiply-adds, so the
//! variants compare directly. Without a GPU it prints why and exits.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use cudarc::driver::sys::CUevent_flags;
use leangcn::backend::cuda::CudaBackend;
use leangcn::backend::{Backend, ConvGeom, ConvMath};
use leangcn::model::init::InitRng;

const BATCH: usize = 64;
const JOINTS: usize = 25;
const STAGES: [(usize, usize); 3] = [(64, 100), (128, 50), (256, 25)];
const CSR_DENSITIES: [f64; 3] = [0.5, 0.1, 0.01];

fn shapes() -> Vec<(String, ConvGeom)> {
    let mut out = Vec::new();
    for (c, t) in STAGES {
        let geom = |c_out, kt| ConvGeom {
            n: BATCH,
            c_in: c,
            c_out,
            t_in: t,
            v: JOINTS,
            kt,
            pad: (kt - 1) / 2,
            stride: 1,
        };
        out.push((format!("kt9_c{c}_t{t}"), geom(c, 9)));
        out.push((format!("kt1_c{c}to{}_t{t}", 3 * c), geom(3 * c, 1)));
    }
    out
}

/// Device time of `iters` back-to-back calls of `op`, between two events on the backend's stream.
fn device_time(be: &CudaBackend, iters: u64, mut op: impl FnMut()) -> Duration {
    let dev = be.device();
    let event = || {
        dev.ctx
            .new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
            .expect("creating a timing event")
    };
    let (start, stop) = (event(), event());
    start.record(&dev.stream).expect("recording the start event");
    for _ in 0..iters {
        op();
    }
    stop.record(&dev.stream).expect("recording the stop event");
    let ms = start.elapsed_ms(&stop).expect("timing the launches");
    Duration::from_secs_f64(f64::from(ms) * 1e-3)
}

/// Runs `op` once and reports whether the backend accepted it (a variant whose kernel fails is
/// reported and left out, not timed).
fn runs(be: &CudaBackend, what: &str, op: &mut impl FnMut()) -> bool {
    op();
    be.synchronize();
    match be.check() {
        Ok(()) => true,
        Err(e) => {
            println!("{what}: not timed: {e}");
            false
        }
    }
}

fn sparse_forward(c: &mut Criterion) {
    let be = match CudaBackend::open(0) {
        Ok(be) => be,
        Err(e) => {
            println!("skipped: {e}");
            return;
        }
    };
    // the dense bf16 baseline: a backend of its own, whose conv GEMMs round to bf16
    let dense_bf16 = CudaBackend::open_with(0, ConvMath::Bf16)
        .map_err(|e| println!("dense bf16: not timed: {e}"))
        .ok();
    let mut rng = InitRng::new(7);
    let mut group = c.benchmark_group("cuda_sparse_forward");
    group.sample_size(20);
    for (name, g) in shapes() {
        let host = |rng: &mut InitRng, len| -> Vec<f32> { (0..len).map(|_| rng.normal() as f32).collect() };
        let (x, w, b) = (
            be.upload(&host(&mut rng, g.x_len())),
            host(&mut rng, g.w_len()),
            host(&mut rng, g.c_out),
        );
        let (gw, gb) = (be.upload(&w), be.upload(&b));
        let mut y = be.zeros(g.y_len());
        group.throughput(Throughput::Elements(g.macs()));

        let mut dense = || be.conv_t_forward(&g, &x, &gw, Some(&gb), &mut y);
        if runs(&be, &format!("dense {name}"), &mut dense) {
            group.bench_function(BenchmarkId::new("dense", &name), |bench| {
                bench.iter_custom(|iters| device_time(&be, iters, &mut dense))
            });
        }
        if let Some(be16) = &dense_bf16 {
            let (x16, w16, b16) = (be16.upload(&be.download(&x)), be16.upload(&w), be16.upload(&b));
            let mut y16 = be16.zeros(g.y_len());
            let mut dense16 = || be16.conv_t_forward(&g, &x16, &w16, Some(&b16), &mut y16);
            if runs(be16, &format!("dense bf16 {name}"), &mut dense16) {
                group.bench_function(BenchmarkId::new("dense_bf16", &name), |bench| {
                    bench.iter_custom(|iters| device_time(be16, iters, &mut dense16))
                });
            }
        }
        for density in CSR_DENSITIES {
            let mask: Vec<f32> = (0..g.w_len())
                .map(|_| if rng.uniform() < density { 1.0 } else { 0.0 })
                .collect();
            let sw = be.sparse_weight(&gw, &be.upload(&mask), g.c_out, g.c_in, g.kt);
            let mut csr = || be.conv_t_forward_sparse(&g, &x, &sw, Some(&gb), &mut y);
            if runs(&be, &format!("csr {density} {name}"), &mut csr) {
                group.bench_function(BenchmarkId::new(format!("csr_{density}"), &name), |bench| {
                    bench.iter_custom(|iters| device_time(&be, iters, &mut csr))
                });
            }
        }
        let mut mask = be.zeros(g.w_len());
        be.prune_2_4(&gw, g.c_out, g.c_in, g.kt, &mut mask);
        match be.pack_2_4(&gw, &mask, g.c_out, g.c_in, g.kt) {
            Ok(packed) => {
                let mut semi = || be.conv_t_forward_2_4(&g, &x, &packed, Some(&gb), &mut y);
                if runs(&be, &format!("2:4 {name}"), &mut semi) {
                    group.bench_function(BenchmarkId::new("2of4", &name), |bench| {
                        bench.iter_custom(|iters| device_time(&be, iters, &mut semi))
                    });
                }
            }
            Err(e) => println!("2:4 {name}: not timed: {e}"),
        }
    }
    group.finish();
}

criterion_group!(benches, sparse_forward);
criterion_main!(benches);
