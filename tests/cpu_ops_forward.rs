//! Forward semantics of the CPU ops against naive loops, the running-stat and eval paths of batch
//! norm, and the f32 path against the f64 one.

mod cpu_support;

use cpu_support::{assert_close, to_f32, Rng};
use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::{dropout_uniform, Backend, BnEpilogue, BnGeom, ConvGeom, GraphGeom};

/// f64 results against a naive f64 loop: only summation order differs.
const F64_TOL: f64 = 1e-13;
/// f32 results against the f64 ones.
const F32_TOL: f64 = 1e-5;

fn widen(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| f64::from(v)).collect()
}

/// `y[n,o,t,v] = b[o] + Σ_i Σ_k w[o,i,k]·x[n,i,t·stride+k-pad,v]`, six nested loops.
fn conv_reference(g: &ConvGeom, x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
    let t_out = g.t_out();
    let mut y = vec![0.0; g.y_len()];
    for n in 0..g.n {
        for o in 0..g.c_out {
            for t in 0..t_out {
                for v in 0..g.v {
                    let mut acc = b[o];
                    for i in 0..g.c_in {
                        for k in 0..g.kt {
                            let ti = (t * g.stride + k) as isize - g.pad as isize;
                            if ti >= 0 && (ti as usize) < g.t_in {
                                let xi = ((n * g.c_in + i) * g.t_in + ti as usize) * g.v + v;
                                acc += w[(o * g.c_in + i) * g.kt + k] * x[xi];
                            }
                        }
                    }
                    y[((n * g.c_out + o) * t_out + t) * g.v + v] = acc;
                }
            }
        }
    }
    y
}

#[test]
fn conv_matches_nested_loops_in_f64_and_f32() {
    let geoms = [(9, 4, 1), (9, 4, 2), (1, 0, 1), (1, 0, 2), (3, 0, 1)].map(|(kt, pad, stride)| ConvGeom {
        n: 3,
        c_in: 3,
        c_out: 5,
        t_in: 11,
        v: 4,
        kt,
        pad,
        stride,
    });
    let mut rng = Rng::new(21);
    for g in geoms {
        let (x, w, b) = (rng.vec(g.x_len()), rng.vec(g.w_len()), rng.vec(g.c_out));
        let want = conv_reference(&g, &x, &w, &b);
        let mut y = vec![f64::NAN; g.y_len()];
        CpuBackend::<f64>::new().conv_t_forward(&g, &x, &w, Some(&b), &mut y);
        assert_close(&format!("conv f64 {g:?}"), &y, &want, F64_TOL);

        let mut y32 = vec![f32::NAN; g.y_len()];
        let (x32, w32, b32) = (to_f32(&x), to_f32(&w), to_f32(&b));
        CpuBackend::<f32>::new().conv_t_forward(&g, &x32, &w32, Some(&b32), &mut y32);
        assert_close(&format!("conv f32 {g:?}"), &widen(&y32), &want, F32_TOL);

        let mut y_no_bias = vec![f64::NAN; g.y_len()];
        CpuBackend::<f64>::new().conv_t_forward(&g, &x, &w, None, &mut y_no_bias);
        let zero_bias = conv_reference(&g, &x, &w, &vec![0.0; g.c_out]);
        assert_close(&format!("conv without bias {g:?}"), &y_no_bias, &zero_bias, F64_TOL);
    }
}

#[test]
fn graph_matches_nested_loops() {
    let g = GraphGeom {
        n: 2,
        k: 3,
        c: 4,
        t: 5,
        v: 6,
    };
    let mut rng = Rng::new(22);
    let (z, a) = (rng.vec(g.z_len()), rng.vec(g.a_len()));
    let mut want = vec![0.0; g.y_len()];
    for n in 0..g.n {
        for c in 0..g.c {
            for t in 0..g.t {
                for w in 0..g.v {
                    let mut acc = 0.0;
                    for k in 0..g.k {
                        for v in 0..g.v {
                            let zi = (((n * g.k + k) * g.c + c) * g.t + t) * g.v + v;
                            acc += z[zi] * a[(k * g.v + v) * g.v + w];
                        }
                    }
                    want[((n * g.c + c) * g.t + t) * g.v + w] = acc;
                }
            }
        }
    }
    let mut y = vec![f64::NAN; g.y_len()];
    CpuBackend::<f64>::new().graph_forward(&g, &z, &a, &mut y);
    assert_close("graph f64", &y, &want, F64_TOL);
    let mut y32 = vec![f32::NAN; g.y_len()];
    CpuBackend::<f32>::new().graph_forward(&g, &to_f32(&z), &to_f32(&a), &mut y32);
    assert_close("graph f32", &widen(&y32), &want, F32_TOL);
}

/// Per-channel mean and biased variance of `x: [n, c, s]`, two-pass.
fn channel_stats(g: &BnGeom, x: &[f64]) -> Vec<(f64, f64)> {
    let m = (g.n * g.s) as f64;
    (0..g.c)
        .map(|ch| {
            let values = || (0..g.n).flat_map(move |n| (0..g.s).map(move |s| (n, s)));
            let at = |(n, s): (usize, usize)| x[(n * g.c + ch) * g.s + s];
            let mean = values().map(at).sum::<f64>() / m;
            let var = values().map(|i| (at(i) - mean).powi(2)).sum::<f64>() / m;
            (mean, var)
        })
        .collect()
}

#[test]
fn batch_norm_train_normalises_and_updates_running_stats() {
    let g = BnGeom {
        n: 4,
        c: 3,
        s: 6,
        eps: 1e-5,
        momentum: 0.1,
    };
    let mut rng = Rng::new(23);
    let x: Vec<f64> = rng.vec(g.len()).iter().map(|v| 3.0 * v + 1.0).collect();
    let (gamma, beta) = (rng.vec(g.c), rng.vec(g.c));
    let (rm0, rv0) = (rng.vec(g.c), rng.vec(g.c).iter().map(|v| 1.5 + v).collect::<Vec<_>>());
    let stats = channel_stats(&g, &x);
    let m = (g.n * g.s) as f64;

    let want_y: Vec<f64> = (0..g.len())
        .map(|i| {
            let ch = (i / g.s) % g.c;
            let (mean, var) = stats[ch];
            (x[i] - mean) / (var + g.eps).sqrt() * gamma[ch] + beta[ch]
        })
        .collect();
    let want_mean: Vec<f64> = stats.iter().map(|s| s.0).collect();
    let want_invstd: Vec<f64> = stats.iter().map(|s| 1.0 / (s.1 + g.eps).sqrt()).collect();
    let want_rm: Vec<f64> = (0..g.c).map(|ch| 0.9 * rm0[ch] + 0.1 * stats[ch].0).collect();
    let want_rv: Vec<f64> = (0..g.c)
        .map(|ch| 0.9 * rv0[ch] + 0.1 * stats[ch].1 * m / (m - 1.0))
        .collect();

    let be = CpuBackend::<f64>::new();
    let (mut rm, mut rv) = (rm0.clone(), rv0.clone());
    let mut y = vec![f64::NAN; g.len()];
    let (mut mean, mut invstd) = (vec![f64::NAN; g.c], vec![f64::NAN; g.c]);
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
    assert_close("bn y", &y, &want_y, F64_TOL);
    assert_close("bn save_mean", &mean, &want_mean, F64_TOL);
    assert_close("bn save_invstd", &invstd, &want_invstd, F64_TOL);
    assert_close("bn running_mean", &rm, &want_rm, F64_TOL);
    assert_close("bn running_var (unbiased)", &rv, &want_rv, F64_TOL);

    let be32 = CpuBackend::<f32>::new();
    let (mut rm32, mut rv32) = (to_f32(&rm0), to_f32(&rv0));
    let mut y32 = vec![f32::NAN; g.len()];
    let (mut mean32, mut invstd32) = (vec![f32::NAN; g.c], vec![f32::NAN; g.c]);
    let (x32, gamma32, beta32) = (to_f32(&x), to_f32(&gamma), to_f32(&beta));
    be32.batch_norm_train(
        &g,
        &x32,
        None,
        BnEpilogue::none(),
        &gamma32,
        &beta32,
        &mut rm32,
        &mut rv32,
        &mut y32,
        &mut mean32,
        &mut invstd32,
    );
    assert_close("bn f32 y", &widen(&y32), &want_y, F32_TOL);
    assert_close("bn f32 running_var", &widen(&rv32), &want_rv, F32_TOL);
}

#[test]
fn batch_norm_eval_uses_running_stats() {
    let g = BnGeom {
        n: 2,
        c: 3,
        s: 5,
        eps: 1e-5,
        momentum: 0.1,
    };
    let mut rng = Rng::new(24);
    let (x, gamma, beta, rm) = (rng.vec(g.len()), rng.vec(g.c), rng.vec(g.c), rng.vec(g.c));
    let rv: Vec<f64> = rng.vec(g.c).iter().map(|v| 1.2 + v).collect();
    let want: Vec<f64> = (0..g.len())
        .map(|i| {
            let ch = (i / g.s) % g.c;
            (x[i] - rm[ch]) / (rv[ch] + g.eps).sqrt() * gamma[ch] + beta[ch]
        })
        .collect();
    let mut y = vec![f64::NAN; g.len()];
    CpuBackend::<f64>::new().batch_norm_eval(&g, &x, BnEpilogue::none(), &gamma, &beta, &rm, &rv, &mut y);
    assert_close("bn eval", &y, &want, F64_TOL);
}

#[test]
fn mean_pool_matches_loops() {
    let (n, persons, c, s) = (2, 3, 4, 5);
    let mut rng = Rng::new(25);
    let x = rng.vec(n * persons * c * s);
    let mut want = vec![0.0; n * c];
    for (i, w) in want.iter_mut().enumerate() {
        let (sample, ch) = (i / c, i % c);
        for m in 0..persons {
            for j in 0..s {
                *w += x[((sample * persons + m) * c + ch) * s + j];
            }
        }
        *w /= (persons * s) as f64;
    }
    let mut y = vec![f64::NAN; n * c];
    CpuBackend::<f64>::new().mean_pool_forward(n, persons, c, s, &x, &mut y);
    assert_close("mean pool", &y, &want, F64_TOL);
}

#[test]
fn cross_entropy_matches_direct_formula() {
    let (n, classes, smoothing) = (3, 5, 0.2);
    let mut rng = Rng::new(26);
    // Large logits exercise the max subtraction.
    let logits: Vec<f64> = rng.vec(n * classes).iter().map(|v| 400.0 + 5.0 * v).collect();
    let labels = [4u32, 0, 2];
    let mut want = 0.0;
    for (row, &label) in logits.chunks(classes).zip(&labels) {
        let max = row.iter().cloned().fold(f64::MIN, f64::max);
        let lse = row.iter().map(|z| (z - max).exp()).sum::<f64>().ln() + max;
        let nll = lse - row[label as usize];
        let uniform = row.iter().map(|z| lse - z).sum::<f64>() / classes as f64;
        want += (1.0 - smoothing) * nll + smoothing * uniform;
    }
    want /= n as f64;
    let (mut loss, mut dlogits) = (vec![f64::NAN], vec![f64::NAN; n * classes]);
    let labels_buf = labels.to_vec();
    CpuBackend::<f64>::new().cross_entropy(n, classes, &logits, &labels_buf, smoothing, &mut loss, &mut dlogits);
    assert_close("cross entropy loss", &loss, &[want], F64_TOL);
    for row in dlogits.chunks(classes) {
        let sum: f64 = row.iter().sum();
        assert!(sum.abs() < 1e-15, "softmax minus target rows sum to zero, got {sum}");
    }
}

#[test]
fn permute_matches_index_mapping() {
    let dims = [2, 3, 4, 5, 1, 3];
    let perm = [5, 2, 0, 4, 3, 1];
    let len: usize = dims.iter().product();
    let x: Vec<f64> = (0..len).map(|i| i as f64).collect();
    let mut y = vec![f64::NAN; len];
    CpuBackend::<f64>::new().permute(&x, &dims, &perm, &mut y);
    let y_dims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
    for (flat, &got) in y.iter().enumerate() {
        // Unravel the y index, map each y axis back to its x axis, ravel in x.
        let mut rest = flat;
        let mut x_idx = [0usize; 6];
        for j in (0..6).rev() {
            x_idx[perm[j]] = rest % y_dims[j];
            rest /= y_dims[j];
        }
        let x_flat = x_idx.iter().zip(&dims).fold(0, |acc, (&i, &d)| acc * d + i);
        assert_eq!(got, x[x_flat], "permute at y index {flat}");
    }
}

#[test]
fn dropout_keeps_and_scales_by_the_shared_uniform() {
    let (p, seed) = (0.25, 1234);
    let x: Vec<f64> = (0..100_000).map(|i| 1.0 + i as f64 * 1e-6).collect();
    let mut y = x.clone();
    CpuBackend::<f64>::new().dropout(&mut y, p, seed);
    let mut kept = 0usize;
    for (i, (&yi, &xi)) in y.iter().zip(&x).enumerate() {
        if f64::from(dropout_uniform(seed, i as u64)) >= p {
            kept += 1;
            assert_eq!(yi, xi * (1.0 / (1.0 - p)), "kept element {i} scaled by 1/(1-p)");
        } else {
            assert_eq!(yi, 0.0, "dropped element {i}");
        }
    }
    let rate = kept as f64 / x.len() as f64;
    assert!((rate - 0.75).abs() < 0.01, "keep rate {rate} far from 1 - p");
}

#[test]
fn elementwise_ops() {
    let be = CpuBackend::<f64>::new();
    let mut rng = Rng::new(27);
    // Longer than one parallel chunk, with a ragged tail.
    let len = 40_001;
    let (a, b, c) = (rng.vec(len), rng.vec(len), rng.vec(len));

    let mut acc = c.clone();
    be.add_assign(&mut acc, &a);
    let want: Vec<f64> = c.iter().zip(&a).map(|(c, a)| c + a).collect();
    assert_eq!(acc, want, "add_assign");

    let mut y = vec![f64::NAN; len];
    be.mul(&a, &b, &mut y);
    let prod: Vec<f64> = a.iter().zip(&b).map(|(a, b)| a * b).collect();
    assert_eq!(y, prod, "mul");

    let mut acc = c.clone();
    be.mul_acc(&a, &b, &mut acc);
    let want: Vec<f64> = c.iter().zip(&prod).map(|(c, p)| c + p).collect();
    assert_eq!(acc, want, "mul_acc");

    let mut x = a.clone();
    be.scale(&mut x, -0.375);
    let want: Vec<f64> = a.iter().map(|v| v * -0.375).collect();
    assert_eq!(x, want, "scale");

    let mut x = a.clone();
    be.relu_forward(&mut x);
    let want: Vec<f64> = a.iter().map(|&v| v.max(0.0)).collect();
    assert_eq!(x, want, "relu");
    let mut dy = b.clone();
    be.relu_backward(&x, &mut dy);
    let want: Vec<f64> = b.iter().zip(&x).map(|(&d, &y)| if y > 0.0 { d } else { 0.0 }).collect();
    assert_eq!(dy, want, "relu backward");
}
