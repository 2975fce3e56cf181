//! GPU time of the convolution-over-time kernels at ST-GCN's shapes (batch 128 x 2 persons = 256
//! sequences, V = 25): the 9x1 temporal convs of the three stages and the two strided ones, the 1x1
//! graph convs (C → 3C, the first one from the 3 input channels) and the strided residual 1x1 convs;
//! each forward, input gradient, weight + bias gradient, and the forward that also gathers the next
//! batch norm's statistics (its cost over the plain forward), through the `Backend` trait, in f32
//! (CUDA cores), in TF32 and bf16 on the tensor cores (`--precision tf32`, `bf16`), and in bf16
//! with bf16-stored activations (`bf16-mixed`): ids `forward/f32/<shape>`,
//! `forward/bf16-mixed/<shape>`, ….
//!
//! Device time from CUDA events around `iters` back-to-back calls (launch latency hidden; the
//! weight gradient's workspace allocations from the stream's pool included). Throughput is in
//! FLOP/s: criterion's "elements" are floating-point operations, 2 per multiply-add of the
//! convolution (the same count for all three ops). Without a GPU it prints "skipped: <reason>".
//!
//! Then a roofline table: per kernel the median time, the achieved TFLOP/s, the GB/s of its least
//! traffic (every operand read once, every output written once, activations in their storage and
//! weights in f32: what a kernel must move),
//! its arithmetic intensity, and the fraction of the roofline min(peak, intensity × bandwidth)
//! reached. The bandwidth ceiling is measured here (a device-to-device copy of 1 GiB); the compute
//! peaks are the H100/H200 SXM datasheet's dense figures (FP32 66.9, TF32 494.7, bf16 989.4
//! TFLOP/s), used only on those GPUs; elsewhere the table omits the fraction.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use leangcn::backend::cuda::CudaBackend;
use leangcn::backend::select::device_precisions;
use leangcn::backend::Backend;
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
    for (precision, math, storage) in device_precisions() {
        let be = match CudaBackend::open_with_precision(0, math, storage) {
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
                be.upload_activation(&data(g.x_len())),
                be.upload(&data(g.w_len())),
                be.upload(&data(g.c_out)),
                be.upload_activation(&data(g.y_len())),
            );
            let (mut y, mut dx) = (be.activation(g.y_len()), be.activation(g.x_len()));
            let (mut dw, mut db) = (be.zeros(g.w_len()), be.zeros(g.c_out));
            be.check().expect("allocating the benchmark's buffers");
            let id = |op: &str| BenchmarkId::new(format!("{op}/{precision}"), &name);
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
            // least traffic: forward x, w, b → y; input gradient dy, w → dx; weight gradient
            // x, dy, dw, db → dw, db; activations (x, y, dy, dx) in their storage, the rest f32
            let act = storage.bytes();
            let (xs, ws, ys, bs) = (act * g.x_len(), 4 * g.w_len(), act * g.y_len(), 4 * g.c_out);
            // (the forward gathering the batch statistics moves the same, plus its partial moments:
            // 24 bytes per output channel and 128-column tile, under 5% of y; not counted here)
            let forward = xs + ws + bs + ys;
            let bytes = [forward, ys + ws + xs, xs + ys + 2 * (ws + bs), forward];
            for ((op, s), bytes) in ["forward", "backward_input", "backward_weight", "forward_with_stats"]
                .iter()
                .zip(&samples)
                .zip(bytes)
            {
                rows.push(roofline_row(
                    &name,
                    op,
                    precision,
                    s.median_ms(),
                    2 * g.macs(),
                    bytes,
                    bandwidth,
                    peak,
                ));
            }
        }
    }
    group.finish();
    if let Some(bw) = bandwidth {
        println!("\nroofline: measured device copy bandwidth {:.0} GB/s\n", bw / 1e9);
        println!("| kernel | op | precision | ms | TFLOP/s | GB/s (least traffic) | FLOP/B | % of roofline |");
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
    precision: &str,
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
        "| {shape} | {op} | {precision} | {ms:.3} | {:.1} | {:.0} | {intensity:.0} | {fraction} |",
        achieved / 1e12,
        bytes as f64 / secs / 1e9
    )
}

criterion_group!(benches, conv);
criterion_main!(benches);
