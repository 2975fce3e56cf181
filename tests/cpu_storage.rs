//! bf16 activation storage on the CPU (`--precision bf16-mixed`), the reference a device that
//! stores activations in bf16 is tested against: every op that writes an activation stores exactly
//! the f32-storage result rounded to bf16 (nearest even), from inputs that are bf16 values; what is
//! not an activation (parameter gradients, batch statistics, running statistics, the loss) is the
//! f32-storage result bit for bit, unrounded. The fused ops keep their contracts in bf16 storage:
//! gathered statistics are those of the stored output, the evaluation-mode epilogue equals the two
//! ops in sequence, the added input gradient equals the input gradient then the add. The data
//! batch norm runs in f32 (as autocast leaves it): its output is the f32 one rounded once, its
//! input and parameter gradients those of f32 storage.

mod cpu_support;

use cpu_support::Rng;
use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::{Backend, BnEpilogue, BnEval, BnGeom, ConvGeom, ConvMath, GradAdd, GraphGeom, Storage};
use leangcn::layers::{params_of, DataNorm};
use leangcn::model::StgcnConfig;

/// bf16 mixed precision, and the same conv arithmetic with f32 storage.
fn backends() -> (CpuBackend<f32>, CpuBackend<f32>) {
    (
        CpuBackend::with_precision(ConvMath::Bf16, Storage::Bf16),
        CpuBackend::with_conv_math(ConvMath::Bf16),
    )
}

fn bf16(x: f32) -> f32 {
    half::bf16::from_f32(x).to_f32()
}

/// Random values in [-1, 1), each a bf16 value (an activation as bf16 storage holds it).
fn activation(rng: &mut Rng, len: usize) -> Vec<f32> {
    rng.vec(len).into_iter().map(|x| bf16(x as f32)).collect()
}

/// Random f32 values in [-1, 1) (parameters: f32 in every storage).
fn parameter(rng: &mut Rng, len: usize) -> Vec<f32> {
    rng.vec(len).into_iter().map(|x| x as f32).collect()
}

fn assert_bits(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a.to_bits() != b.to_bits()) {
        panic!("{what}: element {i} is {} but should be {}", got[i], want[i]);
    }
}

/// `stored` is `f32_result` rounded to bf16, element by element, and rounding changed some of it
/// (so the comparison is not vacuous).
fn assert_stored(what: &str, stored: &[f32], f32_result: &[f32]) {
    let rounded: Vec<f32> = f32_result.iter().map(|&x| bf16(x)).collect();
    assert_bits(what, stored, &rounded);
    assert!(
        f32_result.iter().any(|&x| bf16(x) != x),
        "{what}: the f32 result was already bf16, so nothing was tested"
    );
}

/// An unrounded output: the f32-storage result bit for bit, and not all bf16 values.
fn assert_unrounded(what: &str, got: &[f32], f32_result: &[f32]) {
    assert_bits(what, got, f32_result);
    assert!(got.iter().any(|&x| bf16(x) != x), "{what} was rounded to bf16");
}

fn conv_geoms() -> [ConvGeom; 3] {
    let g = |c_in, c_out, t_in, kt, pad, stride| ConvGeom {
        n: 2,
        c_in,
        c_out,
        t_in,
        v: 5,
        kt,
        pad,
        stride,
    };
    [g(6, 8, 12, 9, 4, 1), g(8, 16, 12, 9, 4, 2), g(6, 24, 10, 1, 0, 1)]
}

#[test]
fn conv_outputs_and_input_gradients_are_stored_rounded_and_weight_gradients_are_not() {
    let (mixed, wide) = backends();
    let mut rng = Rng::new(1);
    for g in conv_geoms() {
        let x = activation(&mut rng, g.x_len());
        let w = parameter(&mut rng, g.w_len());
        let b = parameter(&mut rng, g.c_out);
        let dy = activation(&mut rng, g.y_len());
        let run = |be: &CpuBackend<f32>| {
            let mut y = be.zeros(g.y_len());
            be.conv_t_forward(&g, &x, &w, Some(&b), &mut y);
            let mut dx = be.zeros(g.x_len());
            be.conv_t_backward_input(&g, &dy, &w, &mut dx);
            let (mut dw, mut db) = (be.zeros(g.w_len()), be.zeros(g.c_out));
            be.conv_t_backward_weight(&g, &x, &dy, &mut dw, Some(&mut db));
            (y, dx, dw, db)
        };
        let (y, dx, dw, db) = run(&mixed);
        let (y32, dx32, dw32, db32) = run(&wide);
        assert_stored(&format!("conv y {g:?}"), &y, &y32);
        assert_stored(&format!("conv dx {g:?}"), &dx, &dx32);
        assert_unrounded(&format!("conv dw {g:?}"), &dw, &dw32);
        assert_unrounded(&format!("conv db {g:?}"), &db, &db32);
    }
}

#[test]
fn an_added_input_gradient_is_the_stored_input_gradient_then_the_stored_sum() {
    let (mixed, _) = backends();
    let mut rng = Rng::new(2);
    for g in conv_geoms() {
        let w = parameter(&mut rng, g.w_len());
        let dy = activation(&mut rng, g.y_len());
        let grad = activation(&mut rng, g.x_len());
        let relu_output = activation(&mut rng, g.x_len());
        for masked in [false, true] {
            let add = GradAdd {
                grad: &grad,
                relu_output: masked.then_some(&relu_output),
            };
            let mut fused = mixed.zeros(g.x_len());
            mixed.conv_t_backward_input_add(&g, &dy, &w, add, &mut fused);
            let mut dx = mixed.zeros(g.x_len());
            mixed.conv_t_backward_input(&g, &dy, &w, &mut dx);
            let sum: Vec<f32> = dx
                .iter()
                .zip(&grad)
                .zip(&relu_output)
                .map(|((&d, &a), &y)| d + if masked && y <= 0.0 { 0.0 } else { a })
                .collect();
            assert_stored(&format!("dx + add (masked: {masked}) {g:?}"), &fused, &sum);
        }
    }
}

#[test]
fn graph_outputs_and_input_gradients_are_stored_rounded_and_adjacency_gradients_are_not() {
    let (mixed, wide) = backends();
    let mut rng = Rng::new(3);
    let g = GraphGeom {
        n: 2,
        k: 3,
        c: 4,
        t: 6,
        v: 7,
    };
    let z = activation(&mut rng, g.z_len());
    let a = parameter(&mut rng, g.a_len());
    let dy = activation(&mut rng, g.y_len());
    let run = |be: &CpuBackend<f32>| {
        let mut y = be.zeros(g.y_len());
        be.graph_forward(&g, &z, &a, &mut y);
        let (mut dz, mut da) = (be.zeros(g.z_len()), be.zeros(g.a_len()));
        be.graph_backward(&g, &z, &a, &dy, &mut dz, &mut da);
        (y, dz, da)
    };
    let (y, dz, da) = run(&mixed);
    let (y32, dz32, da32) = run(&wide);
    assert_stored("graph y", &y, &y32);
    assert_stored("graph dz", &dz, &dz32);
    assert_unrounded("graph da", &da, &da32);
}

#[test]
fn batch_norm_outputs_are_stored_rounded_and_its_statistics_and_parameter_gradients_are_not() {
    let (mixed, wide) = backends();
    let mut rng = Rng::new(4);
    let g = BnGeom {
        n: 3,
        c: 5,
        s: 40,
        eps: 1e-5,
        momentum: 0.1,
    };
    let len = g.n * g.c * g.s;
    let x = activation(&mut rng, len);
    let residual = activation(&mut rng, len);
    let dy = activation(&mut rng, len);
    let (gamma, beta) = (parameter(&mut rng, g.c), parameter(&mut rng, g.c));
    let run = |be: &CpuBackend<f32>| {
        let epilogue = BnEpilogue {
            residual: Some(&residual),
            relu: true,
        };
        let (mut running_mean, mut running_var) = (be.zeros(g.c), be.zeros(g.c));
        be.fill(&mut running_var, 1.0);
        let (mut y, mut mean, mut invstd) = (be.zeros(len), be.zeros(g.c), be.zeros(g.c));
        be.batch_norm_train(
            &g,
            &x,
            None,
            epilogue,
            &gamma,
            &beta,
            &mut running_mean,
            &mut running_var,
            &mut y,
            &mut mean,
            &mut invstd,
        );
        let mut y_eval = be.zeros(len);
        be.batch_norm_eval(
            &g,
            &x,
            epilogue,
            &gamma,
            &beta,
            &running_mean,
            &running_var,
            &mut y_eval,
        );
        let (mut dx, mut dgamma, mut dbeta) = (be.zeros(len), be.zeros(g.c), be.zeros(g.c));
        be.batch_norm_backward(
            &g,
            &x,
            &dy,
            Some(&y),
            &gamma,
            &mean,
            &invstd,
            &mut dx,
            &mut dgamma,
            &mut dbeta,
        );
        [y, y_eval, dx, mean, invstd, running_mean, running_var, dgamma, dbeta]
    };
    let [y, y_eval, dx, stats @ ..] = run(&mixed);
    let [y32, y_eval32, _, stats32 @ ..] = run(&wide);
    assert_stored("bn train y", &y, &y32);
    assert_stored("bn eval y", &y_eval, &y_eval32);
    for (i, (got, want)) in stats.iter().zip(&stats32).enumerate() {
        assert_unrounded(&format!("bn statistic or parameter gradient {i}"), got, want);
    }
    // the backward reads the stored y for its ReLU mask; its dx from the same inputs in f32 storage
    let (mut dx32, mut dgamma, mut dbeta) = (wide.zeros(len), wide.zeros(g.c), wide.zeros(g.c));
    wide.batch_norm_backward(
        &g,
        &x,
        &dy,
        Some(&y),
        &gamma,
        &stats[0],
        &stats[1],
        &mut dx32,
        &mut dgamma,
        &mut dbeta,
    );
    assert_stored("bn dx", &dx, &dx32);
}

#[test]
fn gathered_statistics_are_those_of_the_stored_output() {
    let (mixed, _) = backends();
    let mut rng = Rng::new(5);
    let g = conv_geoms()[0];
    let x = activation(&mut rng, g.x_len());
    let w = parameter(&mut rng, g.w_len());
    let bn = BnGeom {
        n: g.n,
        c: g.c_out,
        s: g.t_out() * g.v,
        eps: 1e-5,
        momentum: 0.1,
    };
    let (gamma, beta) = (parameter(&mut rng, g.c_out), parameter(&mut rng, g.c_out));
    let mut y = mixed.zeros(g.y_len());
    let stats = mixed
        .conv_t_forward_with_stats(&g, &x, &w, None, &mut y)
        .expect("the CPU gathers them");
    let normalise = |stats| {
        let (mut rm, mut rv) = (mixed.zeros(g.c_out), mixed.zeros(g.c_out));
        let (mut out, mut mean, mut invstd) = (mixed.zeros(g.y_len()), mixed.zeros(g.c_out), mixed.zeros(g.c_out));
        mixed.batch_norm_train(
            &bn,
            &y,
            stats,
            BnEpilogue::relu(),
            &gamma,
            &beta,
            &mut rm,
            &mut rv,
            &mut out,
            &mut mean,
            &mut invstd,
        );
        [out, mean, invstd, rm, rv]
    };
    for (i, (gathered, own)) in normalise(Some(&stats)).iter().zip(&normalise(None)).enumerate() {
        assert_bits(&format!("bn output {i} from gathered statistics"), gathered, own);
    }
}

#[test]
fn the_evaluation_epilogue_equals_the_two_stored_ops_in_sequence() {
    let (mixed, _) = backends();
    let mut rng = Rng::new(6);
    let g = conv_geoms()[1];
    let x = activation(&mut rng, g.x_len());
    let w = parameter(&mut rng, g.w_len());
    let c = g.c_out;
    let (gamma, beta, mean) = (parameter(&mut rng, c), parameter(&mut rng, c), parameter(&mut rng, c));
    let var: Vec<f32> = parameter(&mut rng, c).iter().map(|v| v.abs() + 0.5).collect();
    let residual = activation(&mut rng, g.y_len());
    let epilogue = BnEpilogue {
        residual: Some(&residual),
        relu: true,
    };
    let bn = BnEval {
        gamma: &gamma,
        beta: &beta,
        running_mean: &mean,
        running_var: &var,
        eps: 1e-5,
    };
    let mut fused = mixed.zeros(g.y_len());
    mixed.conv_t_forward_bn_eval(&g, &x, &w, None, bn, epilogue, &mut fused);
    let mut u = mixed.zeros(g.y_len());
    mixed.conv_t_forward(&g, &x, &w, None, &mut u);
    let geom = BnGeom {
        n: g.n,
        c,
        s: g.t_out() * g.v,
        eps: 1e-5,
        momentum: 0.0,
    };
    let mut y = mixed.zeros(g.y_len());
    mixed.batch_norm_eval(&geom, &u, epilogue, &gamma, &beta, &mean, &var, &mut y);
    assert_bits("conv + eval bn", &fused, &y);
}

#[test]
fn pooling_loss_dropout_and_layout_store_activations_rounded_and_the_loss_unrounded() {
    let (mixed, wide) = backends();
    let mut rng = Rng::new(7);
    let (n, persons, c, s, classes) = (3, 2, 6, 20, 5);
    let x = activation(&mut rng, n * persons * c * s);
    let dy = activation(&mut rng, n * c);
    let logits = activation(&mut rng, n * classes);
    let labels = vec![0u32, 3, 4];
    let run = |be: &CpuBackend<f32>| {
        let mut pooled = be.zeros(n * c);
        be.mean_pool_forward(n, persons, c, s, &x, &mut pooled);
        let mut dx = be.zeros(x.len());
        be.mean_pool_backward(n, persons, c, s, &dy, &mut dx);
        let (mut loss, mut dlogits) = (be.zeros(1), be.zeros(n * classes));
        be.cross_entropy(
            n,
            classes,
            &logits,
            &be.upload_idx(&labels),
            0.1,
            &mut loss,
            &mut dlogits,
        );
        let mut dropped = x.clone();
        be.dropout(&mut dropped, 0.3, 11);
        let mut permuted = be.zeros(x.len());
        be.permute(&x, &[n, persons, c, s], &[0, 2, 1, 3], &mut permuted);
        (pooled, dx, dlogits, dropped, permuted, loss)
    };
    let (pooled, dx, dlogits, dropped, permuted, loss) = run(&mixed);
    let (pooled32, dx32, dlogits32, dropped32, permuted32, loss32) = run(&wide);
    assert_stored("mean pool", &pooled, &pooled32);
    assert_stored("mean pool dx", &dx, &dx32);
    assert_stored("cross-entropy dlogits", &dlogits, &dlogits32);
    assert_stored("dropout", &dropped, &dropped32);
    // a permute moves stored values: bf16 in, the same bf16 out
    assert_bits("permute", &permuted, &permuted32);
    assert_unrounded("loss", &loss, &loss32);
    // the input batch, permuted as uploaded (f32), is rounded where it is stored
    let raw = parameter(&mut rng, x.len());
    let mut stored = mixed.zeros(x.len());
    mixed.permute(&raw, &[n, persons, c, s], &[0, 2, 1, 3], &mut stored);
    let mut exact = wide.zeros(x.len());
    wide.permute(&raw, &[n, persons, c, s], &[0, 2, 1, 3], &mut exact);
    assert_stored("the permuted input", &stored, &exact);
}

#[test]
fn sparse_convs_store_their_activations_rounded() {
    let (mixed, wide) = backends();
    let mut rng = Rng::new(8);
    let g = conv_geoms()[0];
    let x = activation(&mut rng, g.x_len());
    let dy = activation(&mut rng, g.y_len());
    let w = parameter(&mut rng, g.w_len());
    let mask: Vec<f32> = rng.vec(g.w_len()).iter().map(|&u| f32::from(u > 0.4)).collect();
    let run = |be: &CpuBackend<f32>| {
        let csr = be.sparse_weight(&w, &mask, g.c_out, g.c_in, g.kt);
        let (mut y, mut dx) = (be.zeros(g.y_len()), be.zeros(g.x_len()));
        be.conv_t_forward_sparse(&g, &x, &csr, None, &mut y);
        be.conv_t_backward_input_sparse(&g, &dy, &csr, &mut dx);
        let mut mask24 = be.zeros(g.w_len());
        be.prune_2_4(&w, g.c_out, g.c_in, g.kt, &mut mask24);
        let packed = be.pack_2_4(&w, &mask24, g.c_out, g.c_in, g.kt).unwrap();
        let (mut y24, mut dx24) = (be.zeros(g.y_len()), be.zeros(g.x_len()));
        be.conv_t_forward_2_4(&g, &x, &packed, None, &mut y24);
        be.conv_t_backward_input_2_4(&g, &dy, &packed, &mut dx24);
        [y, dx, y24, dx24]
    };
    let names = ["csr y", "csr dx", "2:4 y", "2:4 dx"];
    for ((name, got), want) in names.iter().zip(run(&mixed)).zip(run(&wide)) {
        assert_stored(name, &got, &want);
    }
}

#[test]
fn the_data_batch_norm_runs_in_f32_and_its_output_is_stored_once() {
    let (mixed, wide) = backends();
    let mut rng = Rng::new(9);
    let cfg = StgcnConfig::default();
    let dims = [3, cfg.num_person, 12, cfg.layout.num_joints(), cfg.in_channels];
    let len: usize = dims.iter().product();
    // raw coordinates a metre or two off the origin, as f32 (their low bits matter)
    let x: Vec<f32> = rng.vec(len).iter().map(|&u| (1.5 + 0.3 * u) as f32).collect();
    let dy = activation(&mut rng, len);
    let run = |be: &CpuBackend<f32>| {
        let mut norm = DataNorm::new(be, &cfg);
        let y = norm.forward(be, &x, dims, true);
        let dx = norm.backward(be, &dy, dims);
        let grads: Vec<Vec<f32>> = params_of(&mut norm).into_iter().map(|(_, p)| p.grad.clone()).collect();
        (y, dx, grads)
    };
    let (y, dx, grads) = run(&mixed);
    let (y32, dx32, grads32) = run(&wide);
    assert_stored("data norm output", &y, &y32);
    assert_unrounded("data norm input gradient", &dx, &dx32);
    for (i, (g, g32)) in grads.iter().zip(&grads32).enumerate() {
        assert_unrounded(&format!("data norm parameter gradient {i}"), g, g32);
    }
    // and inside such a region no op rounds
    let mut v = parameter(&mut rng, 64);
    let kept = v.clone();
    mixed.with_f32_activations(|| mixed.dropout(&mut v, 0.0, 1));
    mixed.with_f32_activations(|| mixed.round_to_storage(&mut v));
    assert_bits("inside the f32 region", &v, &kept);
    mixed.round_to_storage(&mut v);
    assert!(v.iter().all(|&x| bf16(x) == x), "the region ended");
}
