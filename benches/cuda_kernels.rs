//! GPU time of the convolution-over-time kernels at ST-GCN's shapes (batch 128 x 2 persons = 256
//! sequences, V = 25): the 9x1 temporal convs of the three stages and the two strided ones, the 1x1
//! graph convs (C → 3C, the first one from the 3 input channels) and the strided residual 1x1 convs;
//! each forward, input gradient and weight + bias gradient, through the `Backend` trait, in f32
//! (CUDA cores), and in TF32 and bf16 on the tensor cores (`--precision tf32`, `bf16`): ids
//! `forward/f32/<shape>`, `forward/bf16/<shape>`, ….
//!
//! Device time from CUDA events around `iters` back-to-back calls (launch latency hidden; the
//! weight gradient's workspace allocations from the stream's pool included). Throughput is in
//! FLOP/s: criterion's "elements" are floating-point operations, 2 per multiply-add of the
//! convolution (the same count for all three ops). Without a GPU it prints "skipped: <reason>".

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::CudaEvent;
use leangcn::backend::cuda::CudaBackend;
use leangcn::backend::{Backend, ConvGeom, ConvMath};

const SEQUENCES: usize = 256;
const JOINTS: usize = 25;
const SUBSETS: usize = 3;

fn geom(c_in: usize, c_out: usize, t_in: usize, kt: usize, stride: usize) -> ConvGeom {
    ConvGeom {
        n: SEQUENCES,
        c_in,
        c_out,
        t_in,
        v: JOINTS,
        kt,
        pad: (kt - 1) / 2,
        stride,
    }
}

/// (name, geometry) of every distinct conv of the network.
fn shapes() -> Vec<(String, ConvGeom)> {
    let mut shapes = Vec::new();
    for (c_in, c_out, t_in, stride) in [
        (64, 64, 100, 1),
        (64, 128, 100, 2),
        (128, 128, 50, 1),
        (128, 256, 50, 2),
        (256, 256, 25, 1),
    ] {
        shapes.push((
            format!("temporal_9x1_c{c_in}-{c_out}_t{t_in}_s{stride}"),
            geom(c_in, c_out, t_in, 9, stride),
        ));
    }
    for (c, t) in [(3, 100), (64, 100), (128, 50), (256, 25)] {
        let c_out = SUBSETS * if c == 3 { 64 } else { c };
        shapes.push((format!("graph_1x1_c{c}-{c_out}_t{t}"), geom(c, c_out, t, 1, 1)));
    }
    for (c_in, t_in) in [(64, 100), (128, 50)] {
        shapes.push((
            format!("residual_1x1_c{c_in}-{}_t{t_in}_s2", 2 * c_in),
            geom(c_in, 2 * c_in, t_in, 1, 2),
        ));
    }
    shapes
}

/// Deterministic, varied values in [-1, 1).
fn data(len: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 7919) % 2003) as f32 / 1001.5 - 1.0).collect()
}

/// Device time of `iters` calls of `op`, between two events on the backend's stream.
fn device_time(be: &CudaBackend, events: &(CudaEvent, CudaEvent), iters: u64, mut op: impl FnMut()) -> Duration {
    let stream = &be.device().stream;
    events.0.record(stream).expect("recording the start event");
    for _ in 0..iters {
        op();
    }
    events.1.record(stream).expect("recording the stop event");
    let ms = events.0.elapsed_ms(&events.1).expect("reading the event timer");
    be.check().expect("a conv op failed");
    Duration::from_secs_f64(ms as f64 * 1e-3)
}

fn conv(c: &mut Criterion) {
    let mut group = c.benchmark_group("cuda_conv");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    for math in ConvMath::ALL {
        let be = match CudaBackend::open_with(0, math) {
            Ok(be) => be,
            Err(e) => {
                println!("skipped: {e}");
                return;
            }
        };
        println!("{}", be.describe());
        let ctx = &be.device().ctx;
        let new_event = || {
            ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
                .expect("creating a timing event")
        };
        let events = (new_event(), new_event());
        for (name, g) in shapes() {
            let (x, w, b, dy) = (
                be.upload(&data(g.x_len())),
                be.upload(&data(g.w_len())),
                be.upload(&data(g.c_out)),
                be.upload(&data(g.y_len())),
            );
            let (mut y, mut dx) = (be.zeros(g.y_len()), be.zeros(g.x_len()));
            let (mut dw, mut db) = (be.zeros(g.w_len()), be.zeros(g.c_out));
            be.check().expect("allocating the benchmark's buffers");
            let id = |op: &str| BenchmarkId::new(format!("{op}/{math}"), &name);
            group.throughput(Throughput::Elements(2 * g.macs()));
            group.bench_function(id("forward"), |bench| {
                bench.iter_custom(|iters| {
                    device_time(&be, &events, iters, || be.conv_t_forward(&g, &x, &w, Some(&b), &mut y))
                })
            });
            group.bench_function(id("backward_input"), |bench| {
                bench.iter_custom(|iters| {
                    device_time(&be, &events, iters, || be.conv_t_backward_input(&g, &dy, &w, &mut dx))
                })
            });
            group.bench_function(id("backward_weight"), |bench| {
                bench.iter_custom(|iters| {
                    device_time(&be, &events, iters, || {
                        be.conv_t_backward_weight(&g, &x, &dy, &mut dw, Some(&mut db))
                    })
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, conv);
criterion_main!(benches);
