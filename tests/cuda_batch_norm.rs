//! The batch-norm kernels against the CPU backend on fresh random data: outputs poisoned with NaN,
//! dgamma/dbeta starting from non-zero values, odd sizes, BatchNorm1d (s = t) and BatchNorm2d
//! (s = t·v) shapes, data far from zero, a repeatability check and the launchers' errors; the
//! fused epilogue (residual add, ReLU) and the backward's ReLU mask against the same kernels
//! followed (preceded) by the separate element-wise ops. Without a GPU each test prints why it
//! was skipped.
//!
//! Tolerances. Both backends reduce in double with the same formulas and round once to f32; only
//! the order of the double sums differs (and the GPU's variance comes from per-block shifted
//! one-pass sums merged pairwise, where the CPU makes two passes), so the double results agree to
//! ~1e-14 relative and:
//! - per-channel outputs (save_mean, save_invstd, running stats) and dx are within one f32
//!   rounding: rtol ε; atol 1e-12 for values that cancel to ~0 (the double noise is far below);
//! - y = x·scale + shift: rtol ε, atol 1e-7 (one rounding at the outputs' unit scale; with data at
//!   1e6 the double noise in x·scale + shift is ~1e-8 absolute);
//! - eval uses no reduction at all: bit for bit;
//! - dgamma/dbeta: the sums rounded to f32 may differ by one rounding of the sum, then the f32 add
//!   rounds once more: |gpu − cpu| ≤ ε·(Σ|terms| + |dgamma|), checked with 2 units of that;
//! - fused against unfused on the GPU: the same roundings in the same order, bit for bit.

mod gpu_support;

use gpu_support::{assert_bits, assert_close, assert_close_to_magnitude, failure, fetch, gpu, normal, poisoned};
use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::cuda::{CudaBackend, DeviceBuf};
use leangcn::backend::{Backend, BnEpilogue, BnGeom};
use leangcn::model::init::InitRng;

const EPS32: f32 = f32::EPSILON;

fn geom(n: usize, c: usize, s: usize) -> BnGeom {
    BnGeom {
        n,
        c,
        s,
        eps: 1e-5,
        momentum: 0.1,
    }
}

/// (geometry, offset of the data from zero)
fn cases() -> Vec<(BnGeom, f32)> {
    vec![
        (geom(3, 5, 7), 0.0),
        (geom(1, 1, 1), 0.0),      // one element: zero variance
        (geom(2, 3, 3001), 0.0),   // segments of one sample split unevenly
        (geom(16, 75, 100), 0.0),  // BatchNorm1d over the input: s = t, c = V·C
        (geom(16, 64, 2500), 0.0), // BatchNorm2d at ST-GCN's first blocks: s = t·v
        (geom(4, 3, 1000), 1.0e6), // |mean| ≫ std: E[x²] − E[x]² would lose the variance
    ]
}

/// Σ|terms| of the dgamma and dbeta sums of each channel, plus |result|: Σ_{n,s} |dy·x̂| + |dgamma|
/// and Σ_{n,s} |dy| + |dbeta| (x̂ from the saved statistics).
fn gradient_magnitudes(
    g: &BnGeom,
    x: &[f32],
    dy: &[f32],
    stats: (&[f32], &[f32]),
    want: (&[f32], &[f32]),
) -> (Vec<f32>, Vec<f32>) {
    let (mean, invstd) = stats;
    let (mut m_gamma, mut m_beta) = (vec![0.0f64; g.c], vec![0.0f64; g.c]);
    for i in 0..g.len() {
        let ch = (i / g.s) % g.c;
        let xhat = (f64::from(x[i]) - f64::from(mean[ch])) * f64::from(invstd[ch]);
        m_gamma[ch] += (f64::from(dy[i]) * xhat).abs();
        m_beta[ch] += f64::from(dy[i]).abs();
    }
    let finish = |m: Vec<f64>, w: &[f32]| m.iter().zip(w).map(|(&m, &w)| m as f32 + w.abs()).collect();
    (finish(m_gamma, want.0), finish(m_beta, want.1))
}

#[test]
fn batch_norm_matches_the_cpu() {
    let Some(be) = gpu("batch_norm_matches_the_cpu") else {
        return;
    };
    let cpu = CpuBackend::<f32>::new();
    let mut rng = InitRng::new(41);
    for (g, offset) in cases() {
        let what = |name: &str| format!("{name} {g:?} offset {offset}");
        let x: Vec<f32> = normal(&mut rng, g.len()).iter().map(|v| v + offset).collect();
        let (gamma, beta) = (normal(&mut rng, g.c), normal(&mut rng, g.c));
        let rm_init = normal(&mut rng, g.c);
        let rv_init: Vec<f32> = normal(&mut rng, g.c).iter().map(|v| 1.0 + 0.5 * v.abs()).collect();
        let (gx, ggamma, gbeta) = (be.upload(&x), be.upload(&gamma), be.upload(&beta));

        // training forward
        let (mut rm, mut rv) = (be.upload(&rm_init), be.upload(&rv_init));
        let (mut y, mut mean, mut invstd) = (poisoned(&be, g.len()), poisoned(&be, g.c), poisoned(&be, g.c));
        be.batch_norm_train(
            &g,
            &gx,
            None,
            BnEpilogue::none(),
            &ggamma,
            &gbeta,
            &mut rm,
            &mut rv,
            &mut y,
            &mut mean,
            &mut invstd,
        );
        let (mut want_rm, mut want_rv) = (rm_init.clone(), rv_init.clone());
        let (mut want_y, mut want_mean, mut want_invstd) = (vec![0.0; g.len()], vec![0.0; g.c], vec![0.0; g.c]);
        cpu.batch_norm_train(
            &g,
            &x,
            None,
            BnEpilogue::none(),
            &gamma,
            &beta,
            &mut want_rm,
            &mut want_rv,
            &mut want_y,
            &mut want_mean,
            &mut want_invstd,
        );
        assert_close(&what("y"), &fetch(&be, &y), &want_y, EPS32, 1e-7);
        assert_close(&what("save_mean"), &fetch(&be, &mean), &want_mean, EPS32, 1e-12);
        assert_close(&what("save_invstd"), &fetch(&be, &invstd), &want_invstd, EPS32, 1e-12);
        assert_close(&what("running_mean"), &fetch(&be, &rm), &want_rm, EPS32, 1e-12);
        assert_close(&what("running_var"), &fetch(&be, &rv), &want_rv, EPS32, 1e-12);

        // evaluation with the CPU's running statistics on both sides
        let mut y_eval = poisoned(&be, g.len());
        be.batch_norm_eval(
            &g,
            &gx,
            BnEpilogue::none(),
            &ggamma,
            &gbeta,
            &be.upload(&want_rm),
            &be.upload(&want_rv),
            &mut y_eval,
        );
        let mut want_eval = vec![0.0; g.len()];
        cpu.batch_norm_eval(
            &g,
            &x,
            BnEpilogue::none(),
            &gamma,
            &beta,
            &want_rm,
            &want_rv,
            &mut want_eval,
        );
        assert_bits(&what("eval y"), &fetch(&be, &y_eval), &want_eval);

        // backward from the CPU's saved statistics on both sides
        let dy = normal(&mut rng, g.len());
        let (dgamma_init, dbeta_init) = (normal(&mut rng, g.c), normal(&mut rng, g.c));
        let mut dx = poisoned(&be, g.len());
        let (mut dgamma, mut dbeta) = (be.upload(&dgamma_init), be.upload(&dbeta_init));
        be.batch_norm_backward(
            &g,
            &gx,
            &be.upload(&dy),
            None,
            &ggamma,
            &be.upload(&want_mean),
            &be.upload(&want_invstd),
            &mut dx,
            &mut dgamma,
            &mut dbeta,
        );
        let mut want_dx = vec![0.0; g.len()];
        let (mut want_dgamma, mut want_dbeta) = (dgamma_init.clone(), dbeta_init.clone());
        cpu.batch_norm_backward(
            &g,
            &x,
            &dy,
            None,
            &gamma,
            &want_mean,
            &want_invstd,
            &mut want_dx,
            &mut want_dgamma,
            &mut want_dbeta,
        );
        assert_close(&what("dx"), &fetch(&be, &dx), &want_dx, EPS32, 1e-12);
        let (m_gamma, m_beta) =
            gradient_magnitudes(&g, &x, &dy, (&want_mean, &want_invstd), (&want_dgamma, &want_dbeta));
        assert_close_to_magnitude(&what("dgamma"), &fetch(&be, &dgamma), &want_dgamma, &m_gamma, 2.0);
        assert_close_to_magnitude(&what("dbeta"), &fetch(&be, &dbeta), &want_dbeta, &m_beta, 2.0);
    }
}

/// The four epilogues: (residual, relu).
const EPILOGUES: [(bool, bool); 4] = [(false, false), (false, true), (true, false), (true, true)];

/// `y` after the separate epilogue ops: `+= residual`, then the ReLU.
fn unfused_epilogue(be: &CudaBackend, residual: Option<&DeviceBuf>, relu: bool, y: &mut DeviceBuf) {
    if let Some(r) = residual {
        be.add_assign(y, r);
    }
    if relu {
        be.relu_forward(y);
    }
}

#[test]
fn batch_norm_epilogue_and_relu_mask_equal_the_unfused_ops() {
    let Some(be) = gpu("batch_norm_epilogue_and_relu_mask_equal_the_unfused_ops") else {
        return;
    };
    let cpu = CpuBackend::<f32>::new();
    let mut rng = InitRng::new(43);
    for (g, offset) in cases() {
        let x: Vec<f32> = normal(&mut rng, g.len()).iter().map(|v| v + offset).collect();
        let (gamma, beta) = (normal(&mut rng, g.c), normal(&mut rng, g.c));
        let rv_init: Vec<f32> = normal(&mut rng, g.c).iter().map(|v| 1.0 + 0.5 * v.abs()).collect();
        let residual = normal(&mut rng, g.len());
        let (gx, ggamma, gbeta, gres) = (be.upload(&x), be.upload(&gamma), be.upload(&beta), be.upload(&residual));
        for (with_residual, relu) in EPILOGUES {
            let what = |name: &str| format!("{name} {g:?} offset {offset} residual {with_residual} relu {relu}");
            let (res, cpu_res) = (with_residual.then_some(&gres), with_residual.then_some(&residual));
            let epilogue = BnEpilogue { residual: res, relu };

            // training: fused against the plain kernel then the separate ops
            let train = |epi: BnEpilogue<'_, DeviceBuf>| {
                let (mut rm, mut rv) = (be.zeros(g.c), be.upload(&rv_init));
                let (mut y, mut mean, mut invstd) = (poisoned(&be, g.len()), poisoned(&be, g.c), poisoned(&be, g.c));
                be.batch_norm_train(
                    &g,
                    &gx,
                    None,
                    epi,
                    &ggamma,
                    &gbeta,
                    &mut rm,
                    &mut rv,
                    &mut y,
                    &mut mean,
                    &mut invstd,
                );
                (y, [rm, rv, mean, invstd])
            };
            let (fused, fused_stats) = train(epilogue);
            let (mut plain, plain_stats) = train(BnEpilogue::none());
            unfused_epilogue(&be, res, relu, &mut plain);
            assert_bits(&what("train y"), &fetch(&be, &fused), &fetch(&be, &plain));
            for (name, (a, b)) in ["running_mean", "running_var", "save_mean", "save_invstd"]
                .iter()
                .zip(fused_stats.iter().zip(&plain_stats))
            {
                assert_bits(&what(name), &fetch(&be, a), &fetch(&be, b));
            }

            // evaluation: bit for bit with the CPU's fused epilogue (no reduction)
            let rm = normal(&mut rng, g.c);
            let mut y_eval = poisoned(&be, g.len());
            let (grm, grv) = (be.upload(&rm), be.upload(&rv_init));
            be.batch_norm_eval(&g, &gx, epilogue, &ggamma, &gbeta, &grm, &grv, &mut y_eval);
            let mut want_eval = vec![0.0; g.len()];
            let cpu_epilogue = BnEpilogue {
                residual: cpu_res,
                relu,
            };
            cpu.batch_norm_eval(&g, &x, cpu_epilogue, &gamma, &beta, &rm, &rv_init, &mut want_eval);
            assert_bits(&what("eval y"), &fetch(&be, &y_eval), &want_eval);
        }

        // backward through a ReLU whose output has zeros (masked) and a NaN-free rest
        let relu_y: Vec<f32> = normal(&mut rng, g.len()).iter().map(|v| v.max(0.0)).collect();
        let dy = normal(&mut rng, g.len());
        let (mut mean, mut invstd) = (vec![0.0; g.c], vec![0.0; g.c]);
        let (mut rm, mut rv, mut y) = (vec![0.0; g.c], rv_init.clone(), vec![0.0; g.len()]);
        let none = BnEpilogue::none();
        cpu.batch_norm_train(
            &g,
            &x,
            None,
            none,
            &gamma,
            &beta,
            &mut rm,
            &mut rv,
            &mut y,
            &mut mean,
            &mut invstd,
        );
        let (gy, gdy, gmean, ginvstd) = (be.upload(&relu_y), be.upload(&dy), be.upload(&mean), be.upload(&invstd));
        let backward = |dy: &DeviceBuf, relu_output: Option<&DeviceBuf>| {
            let (mut dx, mut dgamma, mut dbeta) = (poisoned(&be, g.len()), be.upload(&gamma), be.upload(&beta));
            be.batch_norm_backward(
                &g,
                &gx,
                dy,
                relu_output,
                &ggamma,
                &gmean,
                &ginvstd,
                &mut dx,
                &mut dgamma,
                &mut dbeta,
            );
            [dx, dgamma, dbeta].map(|b| fetch(&be, &b))
        };
        let fused = backward(&gdy, Some(&gy));
        let mut masked = be.upload(&dy);
        be.relu_backward(&gy, &mut masked);
        let unfused = backward(&masked, None);
        assert_bits("dy after the fused mask", &fetch(&be, &gdy), &dy);
        for (name, (a, b)) in ["dx", "dgamma", "dbeta"].iter().zip(fused.iter().zip(&unfused)) {
            assert_bits(&format!("masked backward {name} {g:?} offset {offset}"), a, b);
        }
        let mut want_dx = vec![0.0; g.len()];
        let (mut want_dgamma, mut want_dbeta) = (gamma.clone(), beta.clone());
        cpu.batch_norm_backward(
            &g,
            &x,
            &dy,
            Some(&relu_y),
            &gamma,
            &mean,
            &invstd,
            &mut want_dx,
            &mut want_dgamma,
            &mut want_dbeta,
        );
        let what = |name: &str| format!("masked backward {name} against the CPU {g:?} offset {offset}");
        assert_close(&what("dx"), &fused[0], &want_dx, EPS32, 1e-12);
        let mut host_masked = dy.clone();
        cpu.relu_backward(&relu_y, &mut host_masked);
        let (m_gamma, m_beta) =
            gradient_magnitudes(&g, &x, &host_masked, (&mean, &invstd), (&want_dgamma, &want_dbeta));
        assert_close_to_magnitude(&what("dgamma"), &fused[1], &want_dgamma, &m_gamma, 2.0);
        assert_close_to_magnitude(&what("dbeta"), &fused[2], &want_dbeta, &m_beta, 2.0);
    }
}

#[test]
fn batch_norm_is_repeatable() {
    let Some(be) = gpu("batch_norm_is_repeatable") else {
        return;
    };
    let mut rng = InitRng::new(42);
    let g = geom(16, 64, 2500);
    let (x, dy) = (
        be.upload(&normal(&mut rng, g.len())),
        be.upload(&normal(&mut rng, g.len())),
    );
    let (gamma, beta) = (be.upload(&normal(&mut rng, g.c)), be.upload(&normal(&mut rng, g.c)));
    let run = || {
        let (mut rm, mut rv) = (be.zeros(g.c), be.upload(&vec![1.0; g.c]));
        let (mut y, mut mean, mut invstd) = (poisoned(&be, g.len()), poisoned(&be, g.c), poisoned(&be, g.c));
        be.batch_norm_train(
            &g,
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
        );
        let (mut dx, mut dgamma, mut dbeta) = (poisoned(&be, g.len()), be.zeros(g.c), be.zeros(g.c));
        be.batch_norm_backward(
            &g,
            &x,
            &dy,
            None,
            &gamma,
            &mean,
            &invstd,
            &mut dx,
            &mut dgamma,
            &mut dbeta,
        );
        [&y, &mean, &invstd, &rm, &rv, &dx, &dgamma, &dbeta].map(|b| fetch(&be, b))
    };
    let (first, second) = (run(), run());
    for (name, (a, b)) in [
        "y",
        "save_mean",
        "save_invstd",
        "running_mean",
        "running_var",
        "dx",
        "dgamma",
        "dbeta",
    ]
    .iter()
    .zip(first.iter().zip(&second))
    {
        assert_bits(&format!("{name}, second run"), b, a);
    }
}

#[test]
fn batch_norm_launchers_reject_bad_buffers() {
    let Some(be) = gpu("batch_norm_launchers_reject_bad_buffers") else {
        return;
    };
    let g = geom(2, 3, 4);
    let (x, gamma, beta) = (be.zeros(g.len()), be.zeros(g.c), be.zeros(g.c + 1));
    let (mut rm, mut rv, mut y, mut mean, mut invstd) = (
        be.zeros(g.c),
        be.zeros(g.c),
        be.zeros(g.len()),
        be.zeros(g.c),
        be.zeros(g.c),
    );
    be.batch_norm_train(
        &g,
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
    );
    let e = failure(&be);
    assert!(
        e.contains("batch_norm train") && e.contains("beta has 4 elements"),
        "{e}"
    );

    let mut short_dx = be.zeros(g.len() - 1);
    let (mut dgamma, mut dbeta) = (be.zeros(g.c), be.zeros(g.c));
    be.batch_norm_backward(
        &g,
        &x,
        &x,
        None,
        &gamma,
        &mean,
        &invstd,
        &mut short_dx,
        &mut dgamma,
        &mut dbeta,
    );
    let e = failure(&be);
    assert!(e.contains("batch_norm backward") && e.contains("dx has"), "{e}");

    let short = be.zeros(g.len() - 1);
    let epilogue = BnEpilogue {
        residual: Some(&short),
        relu: true,
    };
    let (grm, grv) = (be.zeros(g.c), be.zeros(g.c));
    be.batch_norm_eval(&g, &x, epilogue, &gamma, &gamma, &grm, &grv, &mut y);
    let e = failure(&be);
    assert!(e.contains("batch_norm eval") && e.contains("residual has"), "{e}");

    let mut dx = be.zeros(g.len());
    be.batch_norm_backward(
        &g,
        &x,
        &x,
        Some(&short),
        &gamma,
        &mean,
        &invstd,
        &mut dx,
        &mut dgamma,
        &mut dbeta,
    );
    let e = failure(&be);
    assert!(
        e.contains("batch_norm backward") && e.contains("relu_output has"),
        "{e}"
    );
}
