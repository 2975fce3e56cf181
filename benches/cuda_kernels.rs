//! GPU time of the convolution-over-time kernels at ST-GCN's shapes (batch 128 x 2 persons = 256
//! sequences, V = 25): the 9x1 temporal convs of the three stages and the two strided ones, the 1x1
//! graph convs (C → 3C, the first one from the 3 input channels) and the strided residual 1x1 convs;
//! each forward, input gradient, weight + bias gradient, and the forward that also gathers the next
//! batch norm's statistics (its cost over the plain forward), through the `Backend` trait, in f32
//! (CUDA cores), and in TF32 and bf16 on the tensor cores (`--precision tf32`, `bf16`): ids
//! `forward/f32/<shape>`, `forward/bf16/<shape>`, ….
//!
//! Device time from CUDA events around `iters` back-to-back calls (launch latency hidden; the
//! weight gradient's workspace allocations from the stream's pool included). Throughput is in
//! FLOP/s: criterion's "elements" are floating-point operations, 2 per multiply-add of the
//! convolution (the same count for all three ops). Without a GPU it prints "skipped: <reason>".
//!
//! Then a roofline table: per kernel the median time, the achieved TFLOP/s, the GB/s of its least
//! traffic (every operand read once, every output written once, in f32: what a kernel must move),
//! its arithmetic intensity, and the fraction of the roofline min(peak, intensity × bandwidth)
//! reached. The bandwidth ceiling is measured here (a device-to-device copy of 1 GiB); the compute
//! peaks are the H100/H200 SXM datasheet's dense figures (FP32 66.9, TF32 494.7, bf16 989.4
//! TFLOP/s), used only on those GPUs; elsewhere the table omits the fraction.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use leangcn::backend::cuda::CudaBackend;
use leangcn::backend::{Backend, ConvMath};
use leangcn::bench::floor::datasheet_peaks;

mod gpu_timing;

use gpu_timing::{copy_bandwidth, data, events, shapes, Samples};

fn conv(c: &mut Criterion) {
    let mut group = c.benchmark_group("cuda_conv");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    let mut rows = Vec::new();
    let mut bandwidth = None;
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
        let bandwidth = *bandwidth.get_or_insert_with(|| copy_bandwidth(&be, &events));
        let peak = datasheet_peaks(&be.describe()).map(|p| p.of(math));
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
            let samples: [Samples; 4] = Default::default();
            group.bench_function(id("forward"), |bench| {
                bench.iter_custom(|iters| {
                    samples[0].time(&be, &events, iters, || be.conv_t_forward(&g, &x, &w, Some(&b), &mut y))
                })
            });
            group.bench_function(id("forward_with_stats"), |bench| {
                bench.iter_custom(|iters| {
                    samples[3].time(&be, &events, iters, || {
                        be.conv_t_forward_with_stats(&g, &x, &w, Some(&b), &mut y);
                    })
                })
            });
            group.bench_function(id("backward_input"), |bench| {
                bench.iter_custom(|iters| {
                    samples[1].time(&be, &events, iters, || be.conv_t_backward_input(&g, &dy, &w, &mut dx))
                })
            });
            group.bench_function(id("backward_weight"), |bench| {
                bench.iter_custom(|iters| {
                    samples[2].time(&be, &events, iters, || {
                        be.conv_t_backward_weight(&g, &x, &dy, &mut dw, Some(&mut db))
                    })
                })
            });
            // least traffic in f32 values: forward x, w, b → y; input gradient dy, w → dx;
            // weight gradient x, dy, dw, db → dw, db
            let (xs, ws, ys, bs) = (g.x_len(), g.w_len(), g.y_len(), g.c_out);
            // (the forward gathering the batch statistics moves the same, plus its partial moments:
            // 24 bytes per output channel and 128-column tile, under 5% of y; not counted here)
            let forward = xs + ws + bs + ys;
            let values = [forward, ys + ws + xs, xs + ys + 2 * (ws + bs), forward];
            for ((op, s), values) in ["forward", "backward_input", "backward_weight", "forward_with_stats"]
                .iter()
                .zip(&samples)
                .zip(values)
            {
                rows.push(roofline_row(
                    &name,
                    op,
                    math,
                    s.median_ms(),
                    2 * g.macs(),
                    4 * values,
                    bandwidth,
                    peak,
                ));
            }
        }
    }
    group.finish();
    if let Some(bw) = bandwidth {
        println!("\nroofline: measured device copy bandwidth {:.0} GB/s\n", bw / 1e9);
        println!("| kernel | op | math | ms | TFLOP/s | GB/s (least traffic) | FLOP/B | % of roofline |");
        println!("|---|---|---|---:|---:|---:|---:|---:|");
        for r in rows {
            println!("{r}");
        }
    }
}

/// One roofline table row.
#[allow(clippy::too_many_arguments)]
fn roofline_row(
    shape: &str,
    op: &str,
    math: ConvMath,
    ms: f64,
    flop: u64,
    bytes: usize,
    bandwidth: f64,
    peak: Option<f64>,
) -> String {
    let (secs, intensity) = (ms * 1e-3, flop as f64 / bytes as f64);
    let achieved = flop as f64 / secs;
    let fraction = peak.map_or("—".to_string(), |p| {
        format!("{:.0}%", 100.0 * achieved / p.min(intensity * bandwidth))
    });
    format!(
        "| {shape} | {op} | {math} | {ms:.3} | {:.1} | {:.0} | {intensity:.0} | {fraction} |",
        achieved / 1e12,
        bytes as f64 / secs / 1e9
    )
}

criterion_group!(benches, conv);
criterion_main!(benches);
