//! Finite-difference gradient checks in f64 for every CPU op with a backward. Each check uses the
//! scalar objective `L = Σ r ⊙ y` with a fixed random `r`, so `dy = r`; central differences with
//! step 1e-6 must agree to 1e-7 relative (to the largest gradient entry).
//!
//! The analytic gradients are taken with activation gradients poisoned with NaN (they must be
//! overwritten) and parameter gradients pre-filled with `PRIOR` (they must be accumulated onto).

mod cpu_support;

use cpu_support::{assert_gradient, dot, Rng};
use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::{Backend, BnEpilogue, BnGeom, ConvGeom, GraphGeom};

/// What parameter gradients hold before a backward; the backward must add to it.
const PRIOR: f64 = 0.25;

fn backend() -> CpuBackend<f64> {
    CpuBackend::new()
}

/// The accumulated gradient minus the prior content.
fn added(grad: &[f64]) -> Vec<f64> {
    grad.iter().map(|g| g - PRIOR).collect()
}

fn check_conv(g: ConvGeom, with_bias: bool, seed: u64) {
    let be = backend();
    let mut rng = Rng::new(seed);
    let mut inputs = vec![rng.vec(g.x_len()), rng.vec(g.w_len()), rng.vec(g.c_out)];
    let r = rng.vec(g.y_len());
    let loss = |inp: &[Vec<f64>]| {
        let mut y = vec![f64::NAN; g.y_len()];
        be.conv_t_forward(&g, &inp[0], &inp[1], with_bias.then_some(&inp[2]), &mut y);
        dot(&r, &y)
    };

    let mut dx = vec![f64::NAN; g.x_len()];
    be.conv_t_backward_input(&g, &r, &inputs[1], &mut dx);
    let mut dw = vec![PRIOR; g.w_len()];
    let mut db = vec![PRIOR; g.c_out];
    be.conv_t_backward_weight(&g, &inputs[0], &r, &mut dw, with_bias.then_some(&mut db));

    assert_gradient(&format!("conv dx {g:?}"), &mut inputs, 0, &dx, loss);
    assert_gradient(&format!("conv dw {g:?}"), &mut inputs, 1, &added(&dw), loss);
    if with_bias {
        assert_gradient(&format!("conv db {g:?}"), &mut inputs, 2, &added(&db), loss);
    } else {
        assert!(db.iter().all(|&d| d == PRIOR), "db touched without a bias");
    }
}

fn conv_geom(n: usize, kt: usize, pad: usize, stride: usize) -> ConvGeom {
    ConvGeom {
        n,
        c_in: 3,
        c_out: 5,
        t_in: 7,
        v: 4,
        kt,
        pad,
        stride,
    }
}

#[test]
fn conv_temporal_kernel_stride_1() {
    check_conv(conv_geom(9, 9, 4, 1), true, 1);
}

#[test]
fn conv_temporal_kernel_stride_2() {
    check_conv(conv_geom(2, 9, 4, 2), true, 2);
}

#[test]
fn conv_temporal_kernel_without_bias() {
    check_conv(conv_geom(2, 3, 1, 1), false, 3);
}

#[test]
fn conv_pointwise_stride_1() {
    check_conv(conv_geom(3, 1, 0, 1), true, 4);
}

#[test]
fn conv_pointwise_stride_2() {
    check_conv(conv_geom(3, 1, 0, 2), true, 5);
}

#[test]
fn conv_as_linear_layer() {
    let g = ConvGeom {
        n: 3,
        c_in: 6,
        c_out: 5,
        t_in: 1,
        v: 1,
        kt: 1,
        pad: 0,
        stride: 1,
    };
    check_conv(g, true, 6);
}

#[test]
fn graph_aggregation() {
    let be = backend();
    let g = GraphGeom {
        n: 3,
        k: 3,
        c: 5,
        t: 3,
        v: 7,
    };
    let mut rng = Rng::new(7);
    let mut inputs = vec![rng.vec(g.z_len()), rng.vec(g.a_len())];
    let r = rng.vec(g.y_len());
    let loss = |inp: &[Vec<f64>]| {
        let mut y = vec![f64::NAN; g.y_len()];
        be.graph_forward(&g, &inp[0], &inp[1], &mut y);
        dot(&r, &y)
    };
    let mut dz = vec![f64::NAN; g.z_len()];
    let mut da = vec![PRIOR; g.a_len()];
    be.graph_backward(&g, &inputs[0], &inputs[1], &r, &mut dz, &mut da);
    assert_gradient("graph dz", &mut inputs, 0, &dz, loss);
    assert_gradient("graph da", &mut inputs, 1, &added(&da), loss);
}

#[test]
fn batch_norm_training_mode() {
    let be = backend();
    let g = BnGeom {
        n: 3,
        c: 4,
        s: 5,
        eps: 1e-5,
        momentum: 0.1,
    };
    let mut rng = Rng::new(8);
    let x: Vec<f64> = rng.vec(g.len()).iter().map(|v| 2.0 * v + 0.5).collect();
    let gamma: Vec<f64> = rng.vec(g.c).iter().map(|v| 1.0 + 0.5 * v).collect();
    let mut inputs = vec![x, gamma, rng.vec(g.c)];
    let r = rng.vec(g.len());
    let forward = |inp: &[Vec<f64>]| {
        let (mut rm, mut rv) = (vec![0.0; g.c], vec![1.0; g.c]);
        let mut y = vec![f64::NAN; g.len()];
        let (mut mean, mut invstd) = (vec![f64::NAN; g.c], vec![f64::NAN; g.c]);
        let (x, gamma, beta) = (&inp[0], &inp[1], &inp[2]);
        be.batch_norm_train(
            &g,
            x,
            None,
            BnEpilogue::none(),
            gamma,
            beta,
            &mut rm,
            &mut rv,
            &mut y,
            &mut mean,
            &mut invstd,
        );
        (y, mean, invstd)
    };
    let loss = |inp: &[Vec<f64>]| dot(&r, &forward(inp).0);

    let (_, mean, invstd) = forward(&inputs);
    let mut dx = vec![f64::NAN; g.len()];
    let (mut dgamma, mut dbeta) = (vec![PRIOR; g.c], vec![PRIOR; g.c]);
    be.batch_norm_backward(
        &g,
        &inputs[0],
        &r,
        None,
        &inputs[1],
        &mean,
        &invstd,
        &mut dx,
        &mut dgamma,
        &mut dbeta,
    );
    assert_gradient("bn dx", &mut inputs, 0, &dx, loss);
    assert_gradient("bn dgamma", &mut inputs, 1, &added(&dgamma), loss);
    assert_gradient("bn dbeta", &mut inputs, 2, &added(&dbeta), loss);
}

#[test]
fn relu() {
    let be = backend();
    let mut rng = Rng::new(9);
    let mut inputs = vec![rng.vec_away_from_zero(50, 0.01)];
    let r = rng.vec(50);
    let loss = |inp: &[Vec<f64>]| {
        let mut y = inp[0].clone();
        be.relu_forward(&mut y);
        dot(&r, &y)
    };
    let mut y = inputs[0].clone();
    be.relu_forward(&mut y);
    let mut dy = r.clone();
    be.relu_backward(&y, &mut dy);
    assert_gradient("relu", &mut inputs, 0, &dy, loss);
}

#[test]
fn mean_pool() {
    let be = backend();
    let (n, persons, c, s) = (3, 2, 4, 5);
    let mut rng = Rng::new(10);
    let mut inputs = vec![rng.vec(n * persons * c * s)];
    let r = rng.vec(n * c);
    let loss = |inp: &[Vec<f64>]| {
        let mut y = vec![f64::NAN; n * c];
        be.mean_pool_forward(n, persons, c, s, &inp[0], &mut y);
        dot(&r, &y)
    };
    let mut dx = vec![f64::NAN; n * persons * c * s];
    be.mean_pool_backward(n, persons, c, s, &r, &mut dx);
    assert_gradient("mean pool", &mut inputs, 0, &dx, loss);
}

fn check_cross_entropy(smoothing: f64, seed: u64) {
    let be = backend();
    let (n, classes) = (4, 7);
    let mut rng = Rng::new(seed);
    let mut inputs = vec![rng.vec(n * classes).iter().map(|v| 3.0 * v).collect()];
    let labels: Vec<u32> = (0..n).map(|_| rng.below(classes as u32)).collect();
    let run = |inp: &[Vec<f64>]| {
        let (mut loss, mut dlogits) = (vec![f64::NAN], vec![f64::NAN; n * classes]);
        be.cross_entropy(n, classes, &inp[0], &labels, smoothing, &mut loss, &mut dlogits);
        (loss[0], dlogits)
    };
    let (_, dlogits) = run(&inputs);
    let what = format!("cross entropy, smoothing {smoothing}");
    assert_gradient(&what, &mut inputs, 0, &dlogits, |inp| run(inp).0);
}

#[test]
fn cross_entropy_plain() {
    check_cross_entropy(0.0, 11);
}

#[test]
fn cross_entropy_label_smoothing() {
    check_cross_entropy(0.1, 12);
}

#[test]
fn permute_backward_is_the_inverse_permute() {
    let be = backend();
    let dims = [2, 3, 4, 5];
    let perm = [0, 3, 1, 2];
    let y_dims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
    let mut inverse = [0; 4];
    for (j, &p) in perm.iter().enumerate() {
        inverse[p] = j;
    }
    let len = dims.iter().product();
    let mut rng = Rng::new(13);
    let mut inputs = vec![rng.vec(len)];
    let r = rng.vec(len);
    let loss = |inp: &[Vec<f64>]| {
        let mut y = vec![f64::NAN; len];
        be.permute(&inp[0], &dims, &perm, &mut y);
        dot(&r, &y)
    };
    let mut dx = vec![f64::NAN; len];
    be.permute(&r, &y_dims, &inverse, &mut dx);
    assert_gradient("permute", &mut inputs, 0, &dx, loss);
}

#[test]
fn dropout_backward_is_the_same_op() {
    let be = backend();
    let (p, seed) = (0.3, 99);
    let mut rng = Rng::new(14);
    let mut inputs = vec![rng.vec(64)];
    let r = rng.vec(64);
    let loss = |inp: &[Vec<f64>]| {
        let mut y = inp[0].clone();
        be.dropout(&mut y, p, seed);
        dot(&r, &y)
    };
    let mut dx = r.clone();
    be.dropout(&mut dx, p, seed);
    assert_gradient("dropout", &mut inputs, 0, &dx, loss);
}
