//! GPU time of every kernel of the training step other than the convolutions (those are
//! benches/cuda_kernels.rs), at ST-GCN's shapes for batch 128 x 2 persons (256 sequences, V = 25)
//! at the three stages (C, T) = (64, 100), (128, 50), (256, 25): graph aggregation forward and
//! backward (the forward also gathering the next batch norm's statistics, or applying an
//! evaluation-mode batch norm and ReLU to its outputs), batch norm train / eval /
//! backward (plain, given gathered statistics, and with the block's residual add and ReLU fused in:
//! each pair shows what the fusion saves against the separate passes below), ReLU forward
//! and backward, the residual add, the identity residual's masked gradient add, dropout; then the stage-independent ones: the input permute, pooling, the loss, and one fused
//! SGD step over the 3.1M parameters of ST-GCN in their 90-odd tensors.
//!
//! The ops on activations run twice: with f32 activations (`<op>/f32`) and with bf16 ones
//! (`<op>/bf16-mixed`, the `_bf16act` kernels), side by side.
//!
//! These kernels are memory-bound, so throughput is in bytes: criterion's "bytes" are each op's
//! least traffic (every operand read once, every output written once, activations in their
//! storage, parameters and statistics in f32). After the criterion
//! runs, a table gives each op's GB/s and its fraction of the device-to-device copy bandwidth
//! measured here, the ceiling of a streaming kernel. Without a GPU it prints why and stops.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::cuda::{CudaBackend, DeviceBuf};
use leangcn::backend::{Backend, BnEpilogue, BnEval, BnGeom, ConvMath, GraphGeom, SgdHyper, Storage};
use leangcn::layers::params_of;
use leangcn::model::{Stgcn, StgcnConfig};

mod gpu_timing;

use gpu_timing::{copy_bandwidth, data, events, Samples, JOINTS, SEQUENCES, SUBSETS};

const STAGES: [(usize, usize); 3] = [(64, 100), (128, 50), (256, 25)];
const BATCH: usize = SEQUENCES / 2;
const CLASSES: usize = 60;

/// Benchmarks ops with criterion and keeps each one's median time and least traffic for the table.
struct Timer<'a> {
    be: &'a CudaBackend,
    events: (cudarc::driver::CudaEvent, cudarc::driver::CudaEvent),
    rows: Vec<(String, f64, u64)>,
}

impl Timer<'_> {
    fn bench(
        &mut self,
        group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
        op: &str,
        shape: &str,
        bytes: u64,
        mut f: impl FnMut(),
    ) {
        let samples = Samples::default();
        group.throughput(Throughput::Bytes(bytes));
        group.bench_function(BenchmarkId::new(op, shape), |bench| {
            bench.iter_custom(|iters| samples.time(self.be, &self.events, iters, &mut f))
        });
        self.be.check().expect("a benchmarked op failed");
        self.rows.push((format!("{op} | {shape}"), samples.median_ms(), bytes));
    }
}

fn up(be: &CudaBackend, len: usize) -> DeviceBuf {
    be.upload(&data(len))
}

/// An activation of random values, in the backend's storage.
fn act(be: &CudaBackend, len: usize) -> DeviceBuf {
    be.upload_activation(&data(len))
}

fn ops(c: &mut Criterion) {
    // activations in f32 and in bf16 (`bf16-mixed`); the convs' arithmetic plays no part here
    let open = |storage| CudaBackend::open_with_precision(0, ConvMath::Bf16, storage);
    let (be, mixed) = match (open(Storage::F32), open(Storage::Bf16)) {
        (Ok(be), Ok(mixed)) => (be, mixed),
        (Err(e), _) | (_, Err(e)) => {
            println!("skipped: {e}");
            return;
        }
    };
    println!("{}", be.describe());
    let mut group = c.benchmark_group("cuda_ops");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1));
    let mut rows = Vec::new();
    for be in [&be, &mixed] {
        let mut timer = Timer {
            be,
            events: events(be),
            rows: Vec::new(),
        };
        activation_ops(&mut timer, &mut group);
        rows.append(&mut timer.rows);
    }
    let events = events(&be);
    let bandwidth = copy_bandwidth(&be, &events);
    let mut timer = Timer { be: &be, events, rows };
    let f = 4u64; // bytes per f32 value

    // the input [N, M, T, V, C] → the data stage's [N, M, V, C, T] (f32 in every storage)
    let dims = [BATCH, 2, 100, JOINTS, 3];
    let input_len: usize = dims.iter().product();
    let (x, mut y) = (up(&be, input_len), be.zeros(input_len));
    timer.bench(&mut group, "permute", "input_t100", f * 2 * input_len as u64, || {
        be.permute(&x, &dims, &[0, 1, 3, 4, 2], &mut y)
    });

    // one SGD step over ST-GCN's parameters, tensor by tensor as the trainer holds them
    let cpu = CpuBackend::<f32>::new();
    let mut model = Stgcn::new(&cpu, StgcnConfig::default(), 0).expect("the default ST-GCN");
    let lens: Vec<usize> = params_of(&mut model).into_iter().map(|(_, p)| p.len()).collect();
    let total: usize = lens.iter().sum();
    let mut params: Vec<DeviceBuf> = lens.iter().map(|&l| up(&be, l)).collect();
    let grads: Vec<DeviceBuf> = lens.iter().map(|&l| up(&be, l)).collect();
    let mut momentum: Vec<DeviceBuf> = lens.iter().map(|&l| be.zeros(l)).collect();
    let lr = be.upload(&[0.1]);
    let hyper = SgdHyper {
        momentum: 0.9,
        dampening: 0.0,
        weight_decay: 5e-4,
        nesterov: true,
    };
    // reads parameter, gradient, momentum; writes parameter, momentum
    timer.bench(
        &mut group,
        "sgd_step",
        &format!("{}_tensors_{total}_values", lens.len()),
        f * 5 * total as u64,
        || {
            let mut p: Vec<&mut DeviceBuf> = params.iter_mut().collect();
            let g: Vec<&DeviceBuf> = grads.iter().collect();
            let mut m: Vec<&mut DeviceBuf> = momentum.iter_mut().collect();
            be.sgd_step(&mut p, &g, &mut m, &hyper, &lr, None, false)
        },
    );
    group.finish();

    println!("\nmeasured device copy bandwidth {:.0} GB/s\n", bandwidth / 1e9);
    println!("| op | shape | ms | GB/s (least traffic) | % of copy bandwidth |\n|---|---|---:|---:|---:|");
    for (what, ms, bytes) in timer.rows {
        let rate = bytes as f64 / (ms * 1e-3);
        println!(
            "| {what} | {ms:.3} | {:.0} | {:.0}% |",
            rate / 1e9,
            100.0 * rate / bandwidth
        );
    }
}

/// The ops on activations at the three stages, and pooling and the loss, with activations in the
/// storage of the timer's backend (bf16: half their bytes; parameters and statistics stay f32).
/// Each op's name carries the storage.
fn activation_ops(timer: &mut Timer<'_>, group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let be = timer.be;
    let storage = be.storage();
    let f = storage.bytes() as u64; // bytes per activation value
    let p = 4u64; // bytes per f32 parameter value
    let name = |op: &str| format!("{op}/{}", if storage == Storage::Bf16 { "bf16-mixed" } else { "f32" });
    for (c_mid, t) in STAGES {
        let shape = format!("c{c_mid}_t{t}");
        let g = GraphGeom {
            n: SEQUENCES,
            k: SUBSETS,
            c: c_mid,
            t,
            v: JOINTS,
        };
        let (z, a, dy) = (act(be, g.z_len()), up(be, g.a_len()), act(be, g.y_len()));
        let (mut y, mut dz, mut da) = (be.activation(g.y_len()), be.activation(g.z_len()), be.zeros(g.a_len()));
        let (zl, yl, al) = (g.z_len() as u64, g.y_len() as u64, g.a_len() as u64);
        timer.bench(group, &name("graph_forward"), &shape, f * (zl + yl) + p * al, || {
            be.graph_forward(&g, &z, &a, &mut y)
        });
        // the same traffic: the batch statistics come from the outputs as they are written (the
        // second pass reads them back from L2), into 24 bytes of partial moments per (n, c)
        let mut gathered = None;
        timer.bench(
            group,
            &name("graph_forward_with_stats"),
            &shape,
            f * (zl + yl) + p * al,
            || gathered = be.graph_forward_with_stats(&g, &z, &a, &mut y),
        );
        timer.bench(
            group,
            &name("graph_backward"),
            &shape,
            f * (2 * zl + yl) + p * 3 * al,
            || be.graph_backward(&g, &z, &a, &dy, &mut dz, &mut da),
        );

        let bn = BnGeom {
            n: SEQUENCES,
            c: c_mid,
            s: t * JOINTS,
            eps: 1e-5,
            momentum: 0.1,
        };
        let len = bn.len() as u64;
        let (x, dy) = (act(be, bn.len()), act(be, bn.len()));
        let (gamma, beta) = (up(be, c_mid), up(be, c_mid));
        let (mut rm, mut rv) = (be.zeros(c_mid), be.zeros(c_mid));
        be.fill(&mut rv, 1.0);
        let (mut y, mut dx) = (be.activation(bn.len()), be.activation(bn.len()));
        let (mut mean, mut invstd) = (be.zeros(c_mid), be.zeros(c_mid));
        let (mut dgamma, mut dbeta) = (be.zeros(c_mid), be.zeros(c_mid));
        let residual = act(be, bn.len());
        let block_tail = BnEpilogue {
            residual: Some(&residual),
            relu: true,
        };
        // train: statistics read x once, the normalisation reads it again and writes y (and reads
        // the residual when the block's tail is fused in)
        timer.bench(group, &name("batch_norm_train"), &shape, f * 3 * len, || {
            be.batch_norm_train(
                &bn,
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
        });
        // given the statistics gathered by the graph forward (same [n, c, t·v] shape): no
        // statistics pass, the normalisation reads x and writes y
        if let Some(stats) = &gathered {
            timer.bench(
                group,
                &name("batch_norm_train_gathered_stats"),
                &shape,
                f * 2 * len,
                || {
                    be.batch_norm_train(
                        &bn,
                        &x,
                        Some(stats),
                        BnEpilogue::none(),
                        &gamma,
                        &beta,
                        &mut rm,
                        &mut rv,
                        &mut y,
                        &mut mean,
                        &mut invstd,
                    )
                },
            );
        }
        timer.bench(
            group,
            &name("batch_norm_train_residual_relu"),
            &shape,
            f * 4 * len,
            || {
                be.batch_norm_train(
                    &bn,
                    &x,
                    None,
                    block_tail,
                    &gamma,
                    &beta,
                    &mut rm,
                    &mut rv,
                    &mut y,
                    &mut mean,
                    &mut invstd,
                )
            },
        );
        timer.bench(group, &name("batch_norm_eval"), &shape, f * 2 * len, || {
            be.batch_norm_eval(&bn, &x, BnEpilogue::none(), &gamma, &beta, &rm, &rv, &mut y)
        });
        // evaluation: the graph forward applies the BN and the ReLU to its outputs, against
        // graph_forward + batch_norm_eval above (the aggregation's output is never stored)
        let bn_eval = BnEval {
            gamma: &gamma,
            beta: &beta,
            running_mean: &rm,
            running_var: &rv,
            eps: bn.eps,
        };
        timer.bench(
            group,
            &name("graph_forward_bn_eval_relu"),
            &shape,
            f * (zl + yl) + p * al,
            || be.graph_forward_bn_eval(&g, &z, &a, bn_eval, BnEpilogue::relu(), &mut y),
        );
        // backward: the reductions read x and dy, the input gradient reads them again and writes dx
        // (and the ReLU mask reads the forward's output in both passes when fused in)
        timer.bench(group, &name("batch_norm_backward"), &shape, f * 5 * len, || {
            be.batch_norm_backward(
                &bn,
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
        });
        timer.bench(
            group,
            &name("batch_norm_backward_relu_mask"),
            &shape,
            f * 7 * len,
            || {
                be.batch_norm_backward(
                    &bn,
                    &x,
                    &dy,
                    Some(&residual),
                    &gamma,
                    &mean,
                    &invstd,
                    &mut dx,
                    &mut dgamma,
                    &mut dbeta,
                )
            },
        );
        timer.bench(group, &name("relu_forward"), &shape, f * 2 * len, || {
            be.relu_forward(&mut y)
        });
        timer.bench(group, &name("relu_backward"), &shape, f * 3 * len, || {
            be.relu_backward(&x, &mut dx)
        });
        timer.bench(group, &name("add_assign"), &shape, f * 3 * len, || {
            be.add_assign(&mut y, &x)
        });
        timer.bench(group, &name("dropout"), &shape, f * 2 * len, || {
            be.dropout(&mut y, 0.5, 7)
        });
    }

    // pooling of the last stage [N·M, 256, 25·25] → [N, 256], and its backward
    let (c, s) = (256, 25 * JOINTS);
    let (x, dpooled) = (act(be, SEQUENCES * c * s), act(be, BATCH * c));
    let (mut pooled, mut dx) = (be.activation(BATCH * c), be.activation(SEQUENCES * c * s));
    let pool_bytes = f * (SEQUENCES * c * s + BATCH * c) as u64;
    timer.bench(group, &name("mean_pool_forward"), "c256_t25", pool_bytes, || {
        be.mean_pool_forward(BATCH, 2, c, s, &x, &mut pooled)
    });
    timer.bench(group, &name("mean_pool_backward"), "c256_t25", pool_bytes, || {
        be.mean_pool_backward(BATCH, 2, c, s, &dpooled, &mut dx)
    });

    let logits = act(be, BATCH * CLASSES);
    let labels = be.upload_idx(&(0..BATCH as u32).map(|i| i % CLASSES as u32).collect::<Vec<_>>());
    let (mut loss, mut dlogits) = (be.zeros(1), be.activation(BATCH * CLASSES));
    timer.bench(
        group,
        &name("cross_entropy"),
        "n128_classes60",
        f * 2 * (BATCH * CLASSES) as u64,
        || be.cross_entropy(BATCH, CLASSES, &logits, &labels, 0.1, &mut loss, &mut dlogits),
    );
}

criterion_group!(benches, ops);
criterion_main!(benches);
