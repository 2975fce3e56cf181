//! Our conv forward kernels beside cuBLAS at the same GEMM shapes: the ratio the f32 GEMM target is
//! stated in. For each conv of ST-GCN at batch 128 x 2 persons (benches/gpu_timing), the forward is
//! per sequence `y_n [c_out, t_out·v] = w [c_out, c_in·kt] · col_n [c_in·kt, t_out·v]`; cuBLAS runs
//! exactly that product as one strided-batched GEMM over the 256 sequences, on an im2col matrix
//! materialised beforehand (its construction is not timed: cuBLAS gets the GEMM alone, ours also
//! gathers the im2col operand on the fly). Two arithmetics, each against its cuBLAS counterpart:
//! f32 (CUDA cores; cuBLAS's default math) and TF32 (tensor cores; `CUBLAS_TF32_TENSOR_OP_MATH`).
//!
//! Device time from CUDA events around back-to-back calls, in criterion (ids `ours/<math>/<shape>`
//! and `cublas/<math>/<shape>`), then a Markdown table of the median time per call and the ratio of
//! throughputs (cuBLAS time / our time: ≥ 1 means ours is faster). cuBLAS is opened at run time
//! (libcublas.so.13 on the library path, e.g. the one in PyTorch's `nvidia` wheels); without it or
//! without a GPU this prints why and measures nothing. cuBLAS is a baseline here only: the
//! training path never calls it.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use cudarc::cublas::sys::{cublasMath_t, cublasOperation_t, cublasSetMathMode};
use cudarc::cublas::{CudaBlas, Gemm, GemmConfig, StridedBatchedConfig};
use leangcn::backend::cuda::CudaBackend;
use leangcn::backend::{Backend, ConvMath};

mod gpu_timing;

use gpu_timing::{data, events, shapes, Samples};

fn cublas_baseline(c: &mut Criterion) {
    // SAFETY: only probes whether the library can be opened
    if !unsafe { cudarc::cublas::sys::is_culib_present() } {
        println!("skipped: no cuBLAS library (libcublas.so.13) on the library path");
        return;
    }
    let mut group = c.benchmark_group("cublas_baseline");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1));
    let mut table = vec![
        "| shape | math | GEMM (m x n x k, batch) | ours ms | cuBLAS ms | ours / cuBLAS throughput |".to_string(),
        "|---|---|---|---:|---:|---:|".to_string(),
    ];
    for math in [ConvMath::F32, ConvMath::Tf32] {
        let be = match CudaBackend::open_with(0, math) {
            Ok(be) => be,
            Err(e) => {
                println!("skipped: {e}");
                return;
            }
        };
        let blas = CudaBlas::new(be.device().stream.clone()).expect("creating a cuBLAS handle");
        let mode = match math {
            ConvMath::Tf32 => cublasMath_t::CUBLAS_TF32_TENSOR_OP_MATH,
            _ => cublasMath_t::CUBLAS_DEFAULT_MATH,
        };
        // SAFETY: a valid handle and a math mode of the enum
        unsafe { cublasSetMathMode(*blas.handle(), mode) }
            .result()
            .expect("setting cuBLAS's math mode");
        println!("{}", be.describe());
        let events = events(&be);
        for (name, g) in shapes() {
            let (depth, cols) = (g.c_in * g.kt, g.t_out() * g.v);
            let (x, w, b) = (
                be.upload(&data(g.x_len())),
                be.upload(&data(g.w_len())),
                be.upload(&data(g.c_out)),
            );
            let col = be.upload(&data(g.n * depth * cols));
            let (mut y, mut y_blas) = (be.zeros(g.y_len()), be.zeros(g.y_len()));
            be.check().expect("allocating the benchmark's buffers");
            // column-major view: y_nᵀ [cols x c_out] = col_nᵀ [cols x depth] · wᵀ [depth x c_out]
            let cfg = StridedBatchedConfig {
                gemm: GemmConfig {
                    transa: cublasOperation_t::CUBLAS_OP_N,
                    transb: cublasOperation_t::CUBLAS_OP_N,
                    m: cols as i32,
                    n: g.c_out as i32,
                    k: depth as i32,
                    alpha: 1.0f32,
                    lda: cols as i32,
                    ldb: depth as i32,
                    beta: 0.0,
                    ldc: cols as i32,
                },
                batch_size: g.n as i32,
                stride_a: (depth * cols) as i64,
                stride_b: 0,
                stride_c: (g.c_out * cols) as i64,
            };
            let (ours, theirs) = (Samples::default(), Samples::default());
            group.throughput(Throughput::Elements(2 * g.macs()));
            group.bench_function(BenchmarkId::new(format!("ours/{math}"), &name), |bench| {
                bench.iter_custom(|iters| {
                    ours.time(&be, &events, iters, || be.conv_t_forward(&g, &x, &w, Some(&b), &mut y))
                })
            });
            let (col_s, w_s) = (col.f32().expect("col"), w.f32().expect("w"));
            let y_s = y_blas.f32_mut().expect("y");
            group.bench_function(BenchmarkId::new(format!("cublas/{math}"), &name), |bench| {
                bench.iter_custom(|iters| {
                    theirs.time(&be, &events, iters, || {
                        // SAFETY: the three buffers hold exactly the views cfg describes
                        unsafe { blas.gemm_strided_batched(cfg, col_s, w_s, y_s) }.expect("cuBLAS GEMM");
                    })
                })
            });
            let (ours, theirs) = (ours.median_ms(), theirs.median_ms());
            table.push(format!(
                "| {name} | {math} | {} x {cols} x {depth}, {} | {ours:.3} | {theirs:.3} | {:.2} |",
                g.c_out,
                g.n,
                theirs / ours
            ));
        }
    }
    group.finish();
    println!("\n{}", table.join("\n"));
}

criterion_group!(benches, cublas_baseline);
criterion_main!(benches);
