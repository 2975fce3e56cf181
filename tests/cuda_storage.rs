//! The GPU in bf16 mixed precision (`--precision bf16-mixed`: bf16 conv operands, activations and
//! their gradients stored in bf16) against the CPU's exact emulation of it, on fresh random data
//! into poisoned (NaN) outputs: every kernel with a bf16-activation twin (`_bf16act`, see
//! cuda/activation.cuh), through the same `Backend` calls a training step makes; the data batch
//! norm, which stays f32 and hands the backbone its first bf16 activation; and three training
//! steps of the `tiny` model (the device check).
//!
//! Each op runs on identical inputs on both backends; a fused op (statistics gathered by their
//! producer, an epilogue's batch norm or residual) is checked against its separate ops on the same
//! backend, bit for bit or, for gathered statistics, to their merge order. Chaining one backend's
//! outputs into its next op would not do: a bf16 output may differ by an ulp between the backends
//! (below), and a later op (a batch norm's scale, a ReLU's mask) amplifies that.
//!
//! Tolerance: the two compute each value in f32 from the same bf16 inputs, in other summation
//! orders, then round it to bf16; where the f32 values straddle a rounding boundary they land one
//! bf16 ulp apart (2⁻⁷ of the value at most), so rtol 2⁻⁷, with atol 1e-5 of the tensor's largest
//! value for sums that cancel. Parameter gradients (dw, db, da, dgamma, dbeta) are f32 sums of
//! products of the same bf16 values: rtol 1e-4 + atol 1e-5 of the largest. A buffer of the wrong
//! storage for its role is refused, naming the op.
//!
//! Without a GPU each test prints why it was skipped.

mod gpu_support;

use gpu_support::{assert_bits, assert_close, failure, normal};
use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::cuda::CudaBackend;
use leangcn::backend::{Backend, BnEpilogue, BnEval, BnGeom, ConvGeom, ConvMath, GradAdd, GraphGeom, Storage};
use leangcn::layers::{params_of, DataNorm};
use leangcn::model::init::InitRng;
use leangcn::model::StgcnConfig;
use leangcn::train::device_check::check_device;

/// One bf16 ulp relative: where the GPU's and the CPU's f32 values round to neighbouring bf16s.
const BF16_ULP: f32 = 1.0 / 128.0;

fn gpu_mixed(test: &str) -> Option<CudaBackend> {
    match CudaBackend::open_with_precision(0, ConvMath::Bf16, Storage::Bf16) {
        Ok(be) => Some(be),
        Err(e) => {
            println!("skipped {test}: {e}");
            None
        }
    }
}

fn cpu_mixed() -> CpuBackend<f32> {
    CpuBackend::with_precision(ConvMath::Bf16, Storage::Bf16)
}

/// A named output of an op and whether it is an activation (bf16) or a parameter gradient (f32).
struct Output {
    name: String,
    values: Vec<f32>,
    activation: bool,
}

fn compare(gpu: Vec<Output>, cpu: Vec<Output>) {
    assert_eq!(gpu.len(), cpu.len());
    for (g, c) in gpu.iter().zip(&cpu) {
        let scale = c.values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let rtol = if g.activation { BF16_ULP } else { 1e-4 };
        assert_close(&g.name, &g.values, &c.values, rtol, 1e-5 * scale);
        if g.activation {
            let stored = |v: &f32| half::bf16::from_f32(*v).to_f32() == *v;
            assert!(g.values.iter().all(stored), "{}: not all bf16 values", g.name);
        }
    }
}

/// An output activation of `len` values, poisoned: the op must overwrite all of it.
fn poisoned<B: Backend<Elem = f32>>(be: &B, len: usize) -> B::Buf {
    be.upload_activation(&vec![f32::NAN; len])
}

fn out<B: Backend<Elem = f32>>(be: &B, name: &str, buf: &B::Buf, activation: bool) -> Output {
    let values = be.download(buf);
    be.check().expect("an op failed");
    Output {
        name: name.into(),
        values,
        activation,
    }
}

fn conv_geoms() -> [ConvGeom; 3] {
    let g = |c_in, c_out, t_in, kt, pad, stride| ConvGeom {
        n: 3,
        c_in,
        c_out,
        t_in,
        v: 25,
        kt,
        pad,
        stride,
    };
    [g(3, 64, 20, 9, 4, 1), g(64, 128, 20, 9, 4, 2), g(64, 192, 20, 1, 0, 1)]
}

/// A backend's outputs of `batch_norm_train` over `y`, from gathered statistics or its own pass.
fn bn_train<B: Backend<Elem = f32>>(
    be: &B,
    bn: &BnGeom,
    y: &B::Buf,
    stats: Option<&B::BnStats>,
    epilogue: BnEpilogue<'_, B::Buf>,
    (gamma, beta): (&B::Buf, &B::Buf),
) -> [Vec<f32>; 3] {
    let (mut rm, mut rv) = (be.zeros(bn.c), be.zeros(bn.c));
    be.fill(&mut rv, 1.0);
    let (mut normed, mut mean, mut invstd) = (poisoned(be, bn.n * bn.c * bn.s), be.zeros(bn.c), be.zeros(bn.c));
    be.batch_norm_train(
        bn,
        y,
        stats,
        epilogue,
        gamma,
        beta,
        &mut rm,
        &mut rv,
        &mut normed,
        &mut mean,
        &mut invstd,
    );
    [&normed, &mean, &invstd].map(|b| out(be, "", b, false).values)
}

/// On one backend: the batch norm from the statistics a producer gathered from its own stored
/// output gives what the batch norm's own statistics pass over that output gives. (Across
/// backends the producers' outputs may differ by a bf16 ulp where their f32 values straddle a
/// rounding boundary, which a later op amplifies; so a fusion is checked against its separate ops
/// on the same backend, and each op against the CPU on identical inputs.)
fn check_gathered_statistics<B: Backend<Elem = f32>>(
    be: &B,
    what: &str,
    bn: &BnGeom,
    y: &B::Buf,
    stats: Option<&B::BnStats>,
    epilogue: BnEpilogue<'_, B::Buf>,
    affine: (&B::Buf, &B::Buf),
) {
    let [normed, mean, invstd] = bn_train(be, bn, y, stats, epilogue, affine);
    let [normed_own, mean_own, invstd_own] = bn_train(be, bn, y, None, epilogue, affine);
    // the statistics are f64 moments rounded to f32: a merge order apart at most
    assert_close(&format!("{what}: gathered mean"), &mean, &mean_own, 1e-6, 1e-7);
    assert_close(&format!("{what}: gathered invstd"), &invstd, &invstd_own, 1e-6, 0.0);
    assert_close(
        &format!("{what}: bn from gathered statistics"),
        &normed,
        &normed_own,
        BF16_ULP,
        1e-6,
    );
}

/// Running statistics for an evaluation-mode batch norm: means ~ N(0, 1), variances in [0.5, 2.5).
fn running_stats<B: Backend<Elem = f32>>(be: &B, rng: &mut InitRng, c: usize) -> (B::Buf, B::Buf) {
    let mean = be.upload(&normal(rng, c));
    let var: Vec<f32> = (0..c).map(|_| 0.5 + 2.0 * rng.uniform() as f32).collect();
    (mean, be.upload(&var))
}

/// The conv ops of a training step and their fusions on `be`, from the same host inputs.
fn conv_ops<B: Backend<Elem = f32>>(be: &B, g: &ConvGeom, seed: u64) -> Vec<Output> {
    let mut rng = InitRng::new(seed);
    let x = be.upload_activation(&normal(&mut rng, g.x_len()));
    let w = be.upload(&normal(&mut rng, g.w_len()));
    let b = be.upload(&normal(&mut rng, g.c_out));
    let dy = be.upload_activation(&normal(&mut rng, g.y_len()));
    let grad = be.upload_activation(&normal(&mut rng, g.x_len()));
    let relu_output = be.upload_activation(&normal(&mut rng, g.x_len()));
    let mut outputs = Vec::new();

    let mut y = poisoned(be, g.y_len());
    let stats = be.conv_t_forward_with_stats(g, &x, &w, Some(&b), &mut y);
    outputs.push(out(be, "conv y", &y, true));
    let bn = BnGeom {
        n: g.n,
        c: g.c_out,
        s: g.t_out() * g.v,
        eps: 1e-5,
        momentum: 0.1,
    };
    let (gamma, beta) = (
        be.upload(&normal(&mut rng, g.c_out)),
        be.upload(&normal(&mut rng, g.c_out)),
    );
    check_gathered_statistics(be, "conv", &bn, &y, stats.as_ref(), BnEpilogue::relu(), (&gamma, &beta));
    // the evaluation-mode batch norm in the conv's epilogue: the same bits as the conv, then
    // batch_norm_eval
    let (rm, rv) = running_stats(be, &mut rng, g.c_out);
    let eval = BnEval {
        gamma: &gamma,
        beta: &beta,
        running_mean: &rm,
        running_var: &rv,
        eps: 1e-5,
    };
    let residual = be.upload_activation(&normal(&mut rng, g.y_len()));
    let epilogue = BnEpilogue {
        residual: Some(&residual),
        relu: true,
    };
    let mut fused = poisoned(be, g.y_len());
    be.conv_t_forward_bn_eval(g, &x, &w, Some(&b), eval, epilogue, &mut fused);
    let mut u = poisoned(be, g.y_len());
    be.conv_t_forward(g, &x, &w, Some(&b), &mut u);
    let mut two = poisoned(be, g.y_len());
    be.batch_norm_eval(&bn, &u, epilogue, &gamma, &beta, &rm, &rv, &mut two);
    assert_bits(
        "conv + eval bn against the conv, then batch_norm_eval",
        &out(be, "", &fused, true).values,
        &out(be, "", &two, true).values,
    );

    let mut dx = poisoned(be, g.x_len());
    be.conv_t_backward_input(g, &dy, &w, &mut dx);
    outputs.push(out(be, "conv dx", &dx, true));
    // the input gradient with a residual's added: the same bits as the conv's, then the add
    let dx_values = out(be, "", &dx, true).values;
    for masked in [false, true] {
        let add = GradAdd {
            grad: &grad,
            relu_output: masked.then_some(&relu_output),
        };
        let mut dx_add = poisoned(be, g.x_len());
        be.conv_t_backward_input_add(g, &dy, &w, add, &mut dx_add);
        let mut two = be.upload_activation(&dx_values);
        match masked {
            true => be.relu_backward_add(&relu_output, &grad, &mut two),
            false => be.add_assign(&mut two, &grad),
        }
        be.round_to_storage(&mut two);
        assert_bits(
            &format!("conv dx + add (masked: {masked}) against the conv's dx, then the add"),
            &out(be, "", &dx_add, true).values,
            &out(be, "", &two, true).values,
        );
    }
    let (mut dw, mut db) = (be.zeros(g.w_len()), be.zeros(g.c_out));
    be.conv_t_backward_weight(g, &x, &dy, &mut dw, Some(&mut db));
    outputs.push(out(be, "conv dw", &dw, false));
    outputs.push(out(be, "conv db", &db, false));
    outputs
}

#[test]
fn conv_ops_in_bf16_storage_match_the_cpu() {
    let Some(gpu) = gpu_mixed("conv_ops_in_bf16_storage_match_the_cpu") else {
        return;
    };
    for (i, g) in conv_geoms().iter().enumerate() {
        compare(
            conv_ops(&gpu, g, 10 + i as u64),
            conv_ops(&cpu_mixed(), g, 10 + i as u64),
        );
    }
}

/// The graph aggregation's forward (gathering statistics, and with the evaluation batch norm) and
/// backward, and the batch norm's training, evaluation and backward passes, each on fresh inputs.
fn graph_and_norm_ops<B: Backend<Elem = f32>>(be: &B, seed: u64) -> Vec<Output> {
    let mut rng = InitRng::new(seed);
    let g = GraphGeom {
        n: 4,
        k: 3,
        c: 16,
        t: 20,
        v: 25,
    };
    let z = be.upload_activation(&normal(&mut rng, g.z_len()));
    let a = be.upload(&normal(&mut rng, g.a_len()));
    let dy = be.upload_activation(&normal(&mut rng, g.y_len()));
    let bn = BnGeom {
        n: g.n,
        c: g.c,
        s: g.t * g.v,
        eps: 1e-5,
        momentum: 0.1,
    };
    let (gamma, beta) = (be.upload(&normal(&mut rng, g.c)), be.upload(&normal(&mut rng, g.c)));
    let residual = be.upload_activation(&normal(&mut rng, g.y_len()));
    let epilogue = BnEpilogue {
        residual: Some(&residual),
        relu: true,
    };
    let mut outputs = Vec::new();

    let mut y = poisoned(be, g.y_len());
    let stats = be.graph_forward_with_stats(&g, &z, &a, &mut y);
    outputs.push(out(be, "graph y", &y, true));
    check_gathered_statistics(be, "graph", &bn, &y, stats.as_ref(), epilogue, (&gamma, &beta));

    // the batch norm's passes on an input of their own
    let x = be.upload_activation(&normal(&mut rng, g.y_len()));
    let (mut rm, mut rv) = (be.zeros(g.c), be.zeros(g.c));
    be.fill(&mut rv, 1.0);
    let (mut normed, mut mean, mut invstd) = (poisoned(be, g.y_len()), be.zeros(g.c), be.zeros(g.c));
    be.batch_norm_train(
        &bn,
        &x,
        None,
        epilogue,
        &gamma,
        &beta,
        &mut rm,
        &mut rv,
        &mut normed,
        &mut mean,
        &mut invstd,
    );
    outputs.push(out(be, "bn train", &normed, true));
    outputs.push(out(be, "bn mean", &mean, false));
    outputs.push(out(be, "bn invstd", &invstd, false));
    outputs.push(out(be, "bn running mean", &rm, false));
    outputs.push(out(be, "bn running var", &rv, false));

    let (rm, rv) = running_stats(be, &mut rng, g.c);
    let mut y_eval = poisoned(be, g.y_len());
    be.batch_norm_eval(&bn, &x, epilogue, &gamma, &beta, &rm, &rv, &mut y_eval);
    outputs.push(out(be, "bn eval", &y_eval, true));
    // the evaluation batch norm in the aggregation's epilogue: the same bits as the two ops
    let eval = BnEval {
        gamma: &gamma,
        beta: &beta,
        running_mean: &rm,
        running_var: &rv,
        eps: 1e-5,
    };
    let mut fused = poisoned(be, g.y_len());
    be.graph_forward_bn_eval(&g, &z, &a, eval, epilogue, &mut fused);
    let mut two = poisoned(be, g.y_len());
    be.batch_norm_eval(&bn, &y, epilogue, &gamma, &beta, &rm, &rv, &mut two);
    assert_bits(
        "graph + eval bn against the aggregation, then batch_norm_eval",
        &out(be, "", &fused, true).values,
        &out(be, "", &two, true).values,
    );

    // the backward from saved statistics and a ReLU output of its own
    let save_mean = be.upload(&normal(&mut rng, g.c));
    let save_invstd = be.upload(&(0..g.c).map(|_| 0.5 + rng.uniform() as f32).collect::<Vec<_>>());
    let relu_output = be.upload_activation(
        &normal(&mut rng, g.y_len())
            .iter()
            .map(|v| v.max(0.0))
            .collect::<Vec<_>>(),
    );
    let (mut dx, mut dgamma, mut dbeta) = (poisoned(be, g.y_len()), be.zeros(g.c), be.zeros(g.c));
    be.batch_norm_backward(
        &bn,
        &x,
        &dy,
        Some(&relu_output),
        &gamma,
        &save_mean,
        &save_invstd,
        &mut dx,
        &mut dgamma,
        &mut dbeta,
    );
    outputs.push(out(be, "bn dx", &dx, true));
    outputs.push(out(be, "bn dgamma", &dgamma, false));
    outputs.push(out(be, "bn dbeta", &dbeta, false));

    let (mut dz, mut da) = (poisoned(be, g.z_len()), be.zeros(g.a_len()));
    be.graph_backward(&g, &z, &a, &dy, &mut dz, &mut da);
    outputs.push(out(be, "graph dz", &dz, true));
    outputs.push(out(be, "graph da", &da, false));
    outputs
}

#[test]
fn graph_and_batch_norm_ops_in_bf16_storage_match_the_cpu() {
    let Some(gpu) = gpu_mixed("graph_and_batch_norm_ops_in_bf16_storage_match_the_cpu") else {
        return;
    };
    compare(graph_and_norm_ops(&gpu, 20), graph_and_norm_ops(&cpu_mixed(), 20));
}

/// Layout, pooling, loss and the element-wise ops on activations.
fn other_ops<B: Backend<Elem = f32>>(be: &B, seed: u64) -> Vec<Output> {
    let mut rng = InitRng::new(seed);
    let (n, persons, c, s, classes) = (6, 2, 32, 75, 10);
    let len = n * persons * c * s;
    let mut outputs = Vec::new();
    // the input batch as uploaded (f32) into an activation, and an activation permuted
    let raw = be.upload(&normal(&mut rng, len));
    let mut permuted = poisoned(be, len);
    be.permute(&raw, &[n, persons, c, s], &[0, 1, 3, 2], &mut permuted);
    outputs.push(out(be, "permute of the f32 input", &permuted, true));
    let mut back = poisoned(be, len);
    be.permute(&permuted, &[n, persons, s, c], &[0, 1, 3, 2], &mut back);
    outputs.push(out(be, "permute of an activation", &back, true));

    let x = be.upload_activation(&normal(&mut rng, len));
    let mut pooled = poisoned(be, n * c);
    be.mean_pool_forward(n, persons, c, s, &x, &mut pooled);
    outputs.push(out(be, "mean pool", &pooled, true));
    let dpooled = be.upload_activation(&normal(&mut rng, n * c));
    let mut dx = poisoned(be, len);
    be.mean_pool_backward(n, persons, c, s, &dpooled, &mut dx);
    outputs.push(out(be, "mean pool dx", &dx, true));

    let logits = be.upload_activation(&normal(&mut rng, n * classes));
    let labels = be.upload_idx(&(0..n as u32).map(|i| (3 * i) % classes as u32).collect::<Vec<_>>());
    let (mut loss, mut dlogits) = (be.zeros(1), poisoned(be, n * classes));
    be.cross_entropy(n, classes, &logits, &labels, 0.1, &mut loss, &mut dlogits);
    outputs.push(out(be, "cross-entropy loss", &loss, false));
    outputs.push(out(be, "cross-entropy dlogits", &dlogits, true));

    let y = be.upload_activation(&normal(&mut rng, len));
    let mut acc = be.upload_activation(&normal(&mut rng, len));
    // add_assign, scale and fill serve parameters too: the caller rounds an activation they wrote (a
    // no-op where the buffer itself stores bf16)
    be.add_assign(&mut acc, &x);
    be.round_to_storage(&mut acc);
    outputs.push(out(be, "add_assign", &acc, true));
    be.relu_backward_add(&y, &x, &mut acc);
    outputs.push(out(be, "relu_backward_add", &acc, true));
    be.scale(&mut acc, 0.3);
    be.round_to_storage(&mut acc);
    outputs.push(out(be, "scale", &acc, true));
    let mut relu = be.upload_activation(&normal(&mut rng, len));
    be.relu_forward(&mut relu);
    outputs.push(out(be, "relu_forward", &relu, true));
    let mut masked = be.upload_activation(&normal(&mut rng, len));
    be.relu_backward(&y, &mut masked);
    outputs.push(out(be, "relu_backward", &masked, true));
    be.dropout(&mut masked, 0.3, 42);
    outputs.push(out(be, "dropout", &masked, true));
    let mut filled = poisoned(be, len);
    be.fill(&mut filled, 0.1);
    be.round_to_storage(&mut filled);
    outputs.push(out(be, "fill", &filled, true));
    outputs
}

#[test]
fn layout_pooling_loss_and_element_wise_ops_in_bf16_storage_match_the_cpu() {
    let Some(gpu) = gpu_mixed("layout_pooling_loss_and_element_wise_ops_in_bf16_storage_match_the_cpu") else {
        return;
    };
    compare(other_ops(&gpu, 30), other_ops(&cpu_mixed(), 30));
}

/// The data batch norm's forward and backward: f32 inside, its output a bf16 activation.
fn data_norm_ops<B: Backend<Elem = f32>>(be: &B, seed: u64) -> Vec<Output> {
    let mut rng = InitRng::new(seed);
    let cfg = StgcnConfig::default();
    let dims = [4, cfg.num_person, 30, cfg.layout.num_joints(), cfg.in_channels];
    let len: usize = dims.iter().product();
    let x = be.upload(&normal(&mut rng, len).iter().map(|v| 1.5 + 0.3 * v).collect::<Vec<_>>());
    let dy = be.upload_activation(&normal(&mut rng, len));
    let mut norm = DataNorm::new(be, &cfg);
    let y = norm.forward(be, &x, dims, true);
    let mut outputs = vec![out(be, "data norm output", &y, true)];
    let dx = norm.backward(be, &dy, dims);
    outputs.push(out(be, "data norm input gradient", &dx, false));
    for (name, p) in params_of(&mut norm) {
        outputs.push(out(be, &format!("data norm {name} gradient"), &p.grad, false));
    }
    outputs
}

#[test]
fn the_data_batch_norm_in_f32_matches_the_cpu() {
    let Some(gpu) = gpu_mixed("the_data_batch_norm_in_f32_matches_the_cpu") else {
        return;
    };
    compare(data_norm_ops(&gpu, 40), data_norm_ops(&cpu_mixed(), 40));
}

#[test]
fn tiny_model_steps_in_bf16_mixed_precision_track_the_cpu() {
    let Some(gpu) = gpu_mixed("tiny_model_steps_in_bf16_mixed_precision_track_the_cpu") else {
        return;
    };
    check_device(&gpu).expect("three training steps and an evaluation as on the CPU");
}

#[test]
fn an_f32_buffer_where_a_bf16_activation_belongs_is_refused_naming_the_op() {
    let Some(gpu) = gpu_mixed("an_f32_buffer_where_a_bf16_activation_belongs_is_refused_naming_the_op") else {
        return;
    };
    let g = conv_geoms()[2];
    let x = gpu.upload(&vec![0.5; g.x_len()]);
    let w = gpu.upload(&vec![0.5; g.w_len()]);
    let mut y = gpu.activation(g.y_len());
    gpu.conv_t_forward(&g, &x, &w, None, &mut y);
    let e = failure(&gpu);
    assert!(e.contains("conv forward") && e.contains("mix f32 and bf16"), "{e}");
    // a bf16 activation where an f32 parameter belongs
    let w_bf16 = gpu.upload_activation(&vec![0.5; g.w_len()]);
    let x_bf16 = gpu.upload_activation(&vec![0.5; g.x_len()]);
    gpu.conv_t_forward(&g, &x_bf16, &w_bf16, None, &mut y);
    let e = failure(&gpu);
    assert!(e.contains("got a bf16 activation"), "{e}");
}
