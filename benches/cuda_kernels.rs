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
use leangcn::backend::cuda::CudaBackend;
use leangcn::backend::{Backend, ConvMath};

mod conv_shapes;

use conv_shapes::{data, device_time, events, shapes};

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
        let events = events(&be);
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
