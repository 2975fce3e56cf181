//! The batch-norm epilogue (`y = relu?(bn(x) + residual?)`) and the backward's ReLU mask on the
//! CPU equal the unfused sequence (the plain BN, then `add_assign` and `relu_forward`; or
//! `relu_backward`, then the plain BN backward) bit for bit, in f32 and in f64, training and
//! evaluation, on random data with several shapes (BatchNorm1d s = t, BatchNorm2d s = t·v); and a
//! model whose blocks take the fused tail equals the same model with every block recording its
//! temporal output (which takes the unfused tail). The identity residual's fused gradient
//! (`relu_backward_add`) equals `relu_backward` of a copy added with `add_assign`. The batch
//! statistics the conv and graph forwards gather give the training-mode BN exactly what its own
//! pass gives, and statistics of another activation are refused; the evaluation-mode BN they apply
//! in their epilogue equals the forward followed by `batch_norm_eval`; and the conv input gradient
//! with a (ReLU-masked) gradient added equals it followed by `relu_backward_add` (`add_assign`).

mod cpu_support;

use cpu_support::Rng;
use leangcn::backend::cpu::{ChannelMoments, CpuBackend};
use leangcn::backend::{Backend, BnEpilogue, BnEval, BnGeom, ConvGeom, GradAdd, GraphGeom, Scalar};
use leangcn::layers::params_of;
use leangcn::model::{Stgcn, StgcnConfig};

fn geom(n: usize, c: usize, s: usize) -> BnGeom {
    BnGeom {
        n,
        c,
        s,
        eps: 1e-5,
        momentum: 0.1,
    }
}

fn shapes() -> [BnGeom; 4] {
    [geom(1, 1, 1), geom(3, 5, 7), geom(2, 4, 300), geom(8, 16, 25 * 12)]
}

/// Random values in [-1, 1) (about half negative, so the ReLU masks about half), as `T`.
fn random<T: Scalar>(rng: &mut Rng, len: usize) -> Vec<T> {
    rng.vec(len).into_iter().map(T::of).collect()
}

fn assert_bits<T: Scalar>(what: &str, got: &[T], want: &[T]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let differs = |(a, b): (&T, &T)| a.as_f64().to_bits() != b.as_f64().to_bits();
    if let Some(i) = got.iter().zip(want).position(differs) {
        panic!("{what}: element {i} is {} but the unfused ops give {}", got[i], want[i]);
    }
}

/// The unfused epilogue: `y += residual`, then `y = max(y, 0)`, each as its own op.
fn unfused<T: Scalar>(be: &CpuBackend<T>, residual: Option<&Vec<T>>, relu: bool, y: &mut Vec<T>) {
    if let Some(r) = residual {
        be.add_assign(y, r);
    }
    if relu {
        be.relu_forward(y);
    }
}

fn forward_equals_unfused<T: Scalar>(seed: u64) {
    let be = CpuBackend::<T>::new();
    let mut rng = Rng::new(seed);
    for g in shapes() {
        // gamma of both signs and beta shift the outputs around zero; x away from zero in mean
        let x: Vec<T> = rng.vec(g.len()).into_iter().map(|v| T::of(3.0 * v + 0.25)).collect();
        let (gamma, beta) = (random::<T>(&mut rng, g.c), random::<T>(&mut rng, g.c));
        let residual = random::<T>(&mut rng, g.len());
        let rm: Vec<T> = random(&mut rng, g.c);
        let rv: Vec<T> = rng.vec(g.c).into_iter().map(|v| T::of(1.0 + 0.5 * v.abs())).collect();
        for (with_residual, relu) in [(false, false), (false, true), (true, false), (true, true)] {
            let what = |name: &str| format!("{} {name} {g:?} residual {with_residual} relu {relu}", T::NAME);
            let res = with_residual.then_some(&residual);
            let epilogue = BnEpilogue { residual: res, relu };

            let train = |epi: BnEpilogue<'_, Vec<T>>| {
                let (mut rm, mut rv) = (rm.clone(), rv.clone());
                let mut y = vec![T::nan(); g.len()];
                let (mut mean, mut invstd) = (vec![T::nan(); g.c], vec![T::nan(); g.c]);
                be.batch_norm_train(
                    &g,
                    &x,
                    None,
                    epi,
                    &gamma,
                    &beta,
                    &mut rm,
                    &mut rv,
                    &mut y,
                    &mut mean,
                    &mut invstd,
                );
                (y, [rm, rv, mean, invstd])
            };
            let (fused, fused_stats) = train(epilogue);
            let (mut want, want_stats) = train(BnEpilogue::none());
            unfused(&be, res, relu, &mut want);
            assert_bits(&what("train y"), &fused, &want);
            for (name, (a, b)) in ["running_mean", "running_var", "save_mean", "save_invstd"]
                .iter()
                .zip(fused_stats.iter().zip(&want_stats))
            {
                assert_bits(&what(name), a, b);
            }
            if relu && g.len() >= 100 {
                assert!(
                    fused.iter().any(|v| *v == T::zero()),
                    "{}: the ReLU masked nothing",
                    what("train y")
                );
            }

            let mut fused = vec![T::nan(); g.len()];
            be.batch_norm_eval(&g, &x, epilogue, &gamma, &beta, &rm, &rv, &mut fused);
            let mut want = vec![T::nan(); g.len()];
            be.batch_norm_eval(&g, &x, BnEpilogue::none(), &gamma, &beta, &rm, &rv, &mut want);
            unfused(&be, res, relu, &mut want);
            assert_bits(&what("eval y"), &fused, &want);
        }
    }
}

fn backward_mask_equals_relu_backward<T: Scalar>(seed: u64) {
    let be = CpuBackend::<T>::new();
    let mut rng = Rng::new(seed);
    for g in shapes() {
        let what = |name: &str| format!("{} masked backward {name} {g:?}", T::NAME);
        let x: Vec<T> = random(&mut rng, g.len());
        let (gamma, beta, residual) = (
            random::<T>(&mut rng, g.c),
            random::<T>(&mut rng, g.c),
            random(&mut rng, g.len()),
        );
        let (mut rm, mut rv) = (vec![T::zero(); g.c], vec![T::one(); g.c]);
        let (mut y, mut mean, mut invstd) = (vec![T::nan(); g.len()], vec![T::nan(); g.c], vec![T::nan(); g.c]);
        // the block tail's forward: the ReLU output after a residual add
        let epilogue = BnEpilogue {
            residual: Some(&residual),
            relu: true,
        };
        be.batch_norm_train(
            &g,
            &x,
            None,
            epilogue,
            &gamma,
            &beta,
            &mut rm,
            &mut rv,
            &mut y,
            &mut mean,
            &mut invstd,
        );
        let dy: Vec<T> = random(&mut rng, g.len());
        let (dgamma0, dbeta0) = (random::<T>(&mut rng, g.c), random::<T>(&mut rng, g.c));
        let backward = |dy: &Vec<T>, relu_output: Option<&Vec<T>>| {
            let mut dx = vec![T::nan(); g.len()];
            let (mut dgamma, mut dbeta) = (dgamma0.clone(), dbeta0.clone());
            be.batch_norm_backward(
                &g,
                &x,
                dy,
                relu_output,
                &gamma,
                &mean,
                &invstd,
                &mut dx,
                &mut dgamma,
                &mut dbeta,
            );
            [dx, dgamma, dbeta]
        };
        let fused = backward(&dy, Some(&y));
        let mut masked = dy.clone();
        be.relu_backward(&y, &mut masked);
        assert!(g.len() < 100 || masked != dy, "{}: the ReLU masked nothing", what("dy"));
        let want = backward(&masked, None);
        for (name, (a, b)) in ["dx", "dgamma", "dbeta"].iter().zip(fused.iter().zip(&want)) {
            assert_bits(&what(name), a, b);
        }
    }
}

#[test]
fn forward_epilogue_equals_the_unfused_ops_f64() {
    forward_equals_unfused::<f64>(71);
}

#[test]
fn forward_epilogue_equals_the_unfused_ops_f32() {
    forward_equals_unfused::<f32>(72);
}

#[test]
fn backward_relu_mask_equals_relu_backward_f64() {
    backward_mask_equals_relu_backward::<f64>(73);
}

#[test]
fn backward_relu_mask_equals_relu_backward_f32() {
    backward_mask_equals_relu_backward::<f32>(74);
}

fn relu_backward_add_equals_the_unfused_ops<T: Scalar>(seed: u64) {
    let be = CpuBackend::<T>::new();
    let mut rng = Rng::new(seed);
    for len in [1, 7, 4096 + 3] {
        let (y, dy, acc): (Vec<T>, Vec<T>, Vec<T>) =
            (random(&mut rng, len), random(&mut rng, len), random(&mut rng, len));
        let mut masked = dy.clone();
        be.relu_backward(&y, &mut masked);
        let mut want = acc.clone();
        be.add_assign(&mut want, &masked);
        let mut got = acc;
        be.relu_backward_add(&y, &dy, &mut got);
        assert_bits(&format!("{} relu_backward_add, {len} values", T::NAME), &got, &want);
    }
}

#[test]
fn relu_backward_add_equals_the_unfused_ops_f64() {
    relu_backward_add_equals_the_unfused_ops::<f64>(76);
}

#[test]
fn relu_backward_add_equals_the_unfused_ops_f32() {
    relu_backward_add_equals_the_unfused_ops::<f32>(77);
}

/// The training logits, dx and every parameter gradient of one step, then the evaluation logits,
/// of a small model with identity and conv residuals, with every block recording its temporal
/// output (the unfused tail) or none (the fused one). With `tcn_dropout` the temporal units drop
/// out between their BN and the tail.
fn one_step<T: Scalar>(recording: bool, tcn_dropout: f64) -> Vec<Vec<T>> {
    let be = CpuBackend::<T>::new();
    let cfg = StgcnConfig {
        in_channels: 3,
        base_channels: 4,
        num_stages: 4,
        inflate_stages: vec![3],
        down_stages: vec![3],
        num_classes: 5,
        tcn_dropout,
        ..StgcnConfig::default()
    };
    let dims = [2, cfg.num_person, 8, cfg.layout.num_joints(), cfg.in_channels];
    let mut model = Stgcn::new(&be, cfg, 3).unwrap();
    for block in &mut model.backbone.blocks {
        block.record = recording;
    }
    let mut rng = Rng::new(75);
    let x: Vec<T> = random(&mut rng, dims.iter().product());
    model.zero_grad(&be);
    let logits = model.forward(&be, &x, dims, true, 9).unwrap();
    let dlogits: Vec<T> = random(&mut rng, logits.len());
    let dx = model.backward(&be, &dlogits);
    let mut out = vec![logits, dx];
    out.extend(params_of(&mut model).into_iter().map(|(_, p)| p.grad.clone()));
    out.push(model.forward(&be, &x, dims, false, 0).unwrap());
    out
}

fn fused_tail_equals_the_recording_path<T: Scalar>() {
    for tcn_dropout in [0.0, 0.3] {
        let (fused, unfused) = (one_step::<T>(false, tcn_dropout), one_step::<T>(true, tcn_dropout));
        assert_eq!(fused.len(), unfused.len());
        for (i, (a, b)) in fused.iter().zip(&unfused).enumerate() {
            assert_bits(
                &format!("{} model output {i}, tcn_dropout {tcn_dropout}", T::NAME),
                a,
                b,
            );
        }
    }
}

#[test]
fn block_fused_tail_equals_the_recording_path_f64() {
    fused_tail_equals_the_recording_path::<f64>();
}

#[test]
fn block_fused_tail_equals_the_recording_path_f32() {
    fused_tail_equals_the_recording_path::<f32>();
}

/// The training-mode BN of `x` given `stats` (or making its own pass), with γ, β and the running
/// mean from `params` (the running variance 1.5): y, save_mean, save_invstd, the running statistics.
fn batch_norm_outputs<T: Scalar>(
    be: &CpuBackend<T>,
    g: &BnGeom,
    x: &Vec<T>,
    stats: Option<&ChannelMoments>,
    params: &[Vec<T>; 3],
) -> [Vec<T>; 5] {
    let [gamma, beta, running_mean] = params;
    let (mut rm, mut rv) = (running_mean.clone(), vec![T::of(1.5); g.c]);
    let (mut y, mut mean, mut invstd) = (be.zeros(g.len()), be.zeros(g.c), be.zeros(g.c));
    be.batch_norm_train(
        g,
        x,
        stats,
        BnEpilogue::none(),
        gamma,
        beta,
        &mut rm,
        &mut rv,
        &mut y,
        &mut mean,
        &mut invstd,
    );
    [y, mean, invstd, rm, rv]
}

fn bn_params<T: Scalar>(rng: &mut Rng, c: usize) -> [Vec<T>; 3] {
    [random(rng, c), random(rng, c), random(rng, c)]
}

/// The statistics the conv and graph forwards gather give the BN exactly what its own pass does.
fn gathered_statistics_equal_the_own_pass<T: Scalar>(seed: u64) {
    let be = CpuBackend::<T>::new();
    let mut rng = Rng::new(seed);
    let conv = ConvGeom {
        n: 3,
        c_in: 4,
        c_out: 6,
        t_in: 11,
        v: 5,
        kt: 9,
        pad: 4,
        stride: 2,
    };
    let (x, w, b) = (
        random::<T>(&mut rng, conv.x_len()),
        random::<T>(&mut rng, conv.w_len()),
        random::<T>(&mut rng, conv.c_out),
    );
    let mut y = be.zeros(conv.y_len());
    let stats = be
        .conv_t_forward_with_stats(&conv, &x, &w, Some(&b), &mut y)
        .expect("cpu statistics");
    let mut plain = be.zeros(conv.y_len());
    be.conv_t_forward(&conv, &x, &w, Some(&b), &mut plain);
    assert_bits(&format!("{} conv y", T::NAME), &y, &plain);
    let bn = geom(conv.n, conv.c_out, conv.t_out() * conv.v);
    let params = bn_params(&mut rng, bn.c);
    let outputs = |stats| batch_norm_outputs(&be, &bn, &y, stats, &params);
    for (got, want) in outputs(Some(&stats)).iter().zip(&outputs(None)) {
        assert_bits(&format!("{} BN after the conv", T::NAME), got, want);
    }

    let graph = GraphGeom {
        n: 2,
        k: 3,
        c: 4,
        t: 7,
        v: 5,
    };
    let (z, a) = (
        random::<T>(&mut rng, graph.z_len()),
        random::<T>(&mut rng, graph.a_len()),
    );
    let mut y = be.zeros(graph.y_len());
    let stats = be
        .graph_forward_with_stats(&graph, &z, &a, &mut y)
        .expect("cpu statistics");
    let bn = geom(graph.n, graph.c, graph.t * graph.v);
    let params = bn_params(&mut rng, bn.c);
    let outputs = |stats| batch_norm_outputs(&be, &bn, &y, stats, &params);
    for (got, want) in outputs(Some(&stats)).iter().zip(&outputs(None)) {
        assert_bits(&format!("{} BN after the graph aggregation", T::NAME), got, want);
    }
}

#[test]
fn gathered_statistics_equal_the_own_pass_f64() {
    gathered_statistics_equal_the_own_pass::<f64>(78);
}

#[test]
fn gathered_statistics_equal_the_own_pass_f32() {
    gathered_statistics_equal_the_own_pass::<f32>(79);
}

#[test]
#[should_panic(expected = "statistics of 6 channels")]
fn statistics_of_another_activation_are_refused() {
    let be = CpuBackend::<f64>::new();
    let g = geom(2, 6, 10);
    let x = vec![0.5; g.len()];
    let wrong = geom(2, 6, 11);
    let stats = be.graph_forward_with_stats(
        &GraphGeom {
            n: 2,
            k: 1,
            c: 6,
            t: 11,
            v: 1,
        },
        &vec![1.0; 2 * 6 * 11],
        &vec![1.0],
        &mut be.zeros(wrong.len()),
    );
    batch_norm_outputs(&be, &g, &x, stats.as_ref(), &bn_params(&mut Rng::new(1), g.c));
}

/// The evaluation-mode BN applied by the conv and graph forwards equals the forward, then
/// `batch_norm_eval`, for every epilogue.
fn evaluation_bn_in_the_producer_equals_the_two_ops<T: Scalar>(seed: u64) {
    let be = CpuBackend::<T>::new();
    let mut rng = Rng::new(seed);
    let conv = ConvGeom {
        n: 2,
        c_in: 3,
        c_out: 5,
        t_in: 9,
        v: 4,
        kt: 9,
        pad: 4,
        stride: 1,
    };
    let graph = GraphGeom {
        n: 2,
        k: 3,
        c: 5,
        t: 9,
        v: 4,
    };
    let (x, w, b) = (
        random::<T>(&mut rng, conv.x_len()),
        random::<T>(&mut rng, conv.w_len()),
        random::<T>(&mut rng, conv.c_out),
    );
    let (z, a) = (
        random::<T>(&mut rng, graph.z_len()),
        random::<T>(&mut rng, graph.a_len()),
    );
    let [gamma, beta, running_mean] = bn_params::<T>(&mut rng, 5);
    let running_var: Vec<T> = rng.vec(5).into_iter().map(|v| T::of(1.0 + v.abs())).collect();
    let bn = BnEval {
        gamma: &gamma,
        beta: &beta,
        running_mean: &running_mean,
        running_var: &running_var,
        eps: 1e-5,
    };
    let residual = random::<T>(&mut rng, conv.y_len());
    let g = geom(2, 5, 9 * 4);
    for relu in [false, true] {
        for residual in [None, Some(&residual)] {
            let epilogue = BnEpilogue { residual, relu };
            let two_ops = |u: &Vec<T>| {
                let mut y = be.zeros(g.len());
                be.batch_norm_eval(&g, u, epilogue, &gamma, &beta, &running_mean, &running_var, &mut y);
                y
            };
            let what = format!("{}, residual {}, relu {relu}", T::NAME, residual.is_some());
            let (mut u, mut y) = (be.zeros(g.len()), be.zeros(g.len()));
            be.conv_t_forward(&conv, &x, &w, Some(&b), &mut u);
            be.conv_t_forward_bn_eval(&conv, &x, &w, Some(&b), bn, epilogue, &mut y);
            assert_bits(&format!("conv {what}"), &y, &two_ops(&u));
            be.graph_forward(&graph, &z, &a, &mut u);
            be.graph_forward_bn_eval(&graph, &z, &a, bn, epilogue, &mut y);
            assert_bits(&format!("graph {what}"), &y, &two_ops(&u));
        }
    }
}

#[test]
fn evaluation_bn_in_the_producer_equals_the_two_ops_f64() {
    evaluation_bn_in_the_producer_equals_the_two_ops::<f64>(80);
}

#[test]
fn evaluation_bn_in_the_producer_equals_the_two_ops_f32() {
    evaluation_bn_in_the_producer_equals_the_two_ops::<f32>(81);
}

fn input_gradient_add_equals_the_two_ops<T: Scalar>(seed: u64) {
    let be = CpuBackend::<T>::new();
    let mut rng = Rng::new(seed);
    let g = ConvGeom {
        n: 2,
        c_in: 3,
        c_out: 5,
        t_in: 10,
        v: 3,
        kt: 9,
        pad: 4,
        stride: 2,
    };
    let (dy, w) = (random::<T>(&mut rng, g.y_len()), random::<T>(&mut rng, g.w_len()));
    let (grad, relu_y) = (random::<T>(&mut rng, g.x_len()), random::<T>(&mut rng, g.x_len()));
    for relu_output in [None, Some(&relu_y)] {
        let mut want = be.zeros(g.x_len());
        be.conv_t_backward_input(&g, &dy, &w, &mut want);
        match relu_output {
            Some(y) => be.relu_backward_add(y, &grad, &mut want),
            None => be.add_assign(&mut want, &grad),
        }
        let mut dx = be.zeros(g.x_len());
        be.conv_t_backward_input_add(
            &g,
            &dy,
            &w,
            GradAdd {
                grad: &grad,
                relu_output,
            },
            &mut dx,
        );
        assert_bits(&format!("{} masked {}", T::NAME, relu_output.is_some()), &dx, &want);
    }
}

#[test]
fn input_gradient_add_equals_the_two_ops_f64() {
    input_gradient_add_equals_the_two_ops::<f64>(82);
}

#[test]
fn input_gradient_add_equals_the_two_ops_f32() {
    input_gradient_add_equals_the_two_ops::<f32>(83);
}
