//! Batch normalisation over `[n, c, s]`: statistics per channel over (n, s), accumulated in f64 in a
//! fixed order (one channel per task), PyTorch's running-stat update with the unbiased variance.

use rayon::prelude::*;

use crate::backend::epilogue::{relu, relu_grad};
use crate::backend::{BnEpilogue, BnEval, BnGeom, Scalar};

/// Σ over (n, s) of `f(x)` for channel `ch` of `x: [n, c, s]`, in f64.
fn channel_sum<T: Scalar>((n, c, s): (usize, usize, usize), x: &[T], ch: usize, f: impl Fn(f64) -> f64) -> f64 {
    (0..n)
        .map(|n| {
            x[(n * c + ch) * s..(n * c + ch + 1) * s]
                .iter()
                .map(|&v| f(v.as_f64()))
                .sum::<f64>()
        })
        .sum()
}

/// `y[n, ch, :] = epilogue(x[n, ch, :]·scale[ch] + shift[ch])`, parallel over samples: the affine
/// rounded to `T`, then `+= residual` and the ReLU in `T`, the operations of `add_assign` and
/// `relu_forward` in their order, so the result equals the unfused sequence bit for bit.
fn affine<T: Scalar>(g: &BnGeom, x: &[T], scale: &[f64], shift: &[f64], epilogue: BnEpilogue<'_, [T]>, y: &mut [T]) {
    let sample = g.c * g.s;
    if let Some(r) = epilogue.residual {
        assert_eq!(r.len(), g.len(), "batch_norm: residual length for {g:?}");
    }
    y.par_chunks_mut(sample)
        .zip(x.par_chunks(sample))
        .enumerate()
        .for_each(|(n, (yn, xn))| {
            let rn = epilogue.residual.map(|r| &r[n * sample..(n + 1) * sample]);
            for ch in 0..g.c {
                let (a, b) = (scale[ch], shift[ch]);
                let cols = ch * g.s..(ch + 1) * g.s;
                let rc = rn.map(|r| &r[cols.clone()]);
                for (j, (y, &x)) in yn[cols.clone()].iter_mut().zip(&xn[cols.clone()]).enumerate() {
                    let mut v = T::of(x.as_f64() * a + b);
                    if let Some(r) = rc {
                        v += r[j];
                    }
                    if epilogue.relu {
                        v = relu(v);
                    }
                    *y = v;
                }
            }
        });
}

/// The batch statistics of every channel of `x: [n, c, s]`: the mean, then the biased variance as
/// the mean square about it (two passes, f64, one channel per task). What `train` normalises with,
/// whether it computes them itself or is given them by the op that produced `x`.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelMoments {
    /// Values per channel: n·s.
    pub count: usize,
    /// `(mean, biased variance)` of each channel.
    pub per_channel: Vec<(f64, f64)>,
}

/// The moments of `x: [n, c, s]` given as `(n, c, s)`.
pub fn moments<T: Scalar>(shape: (usize, usize, usize), x: &[T]) -> ChannelMoments {
    let (n, c, s) = shape;
    assert_eq!(
        x.len(),
        n * c * s,
        "batch_norm: statistics of {x_len} values as [{n}, {c}, {s}]",
        x_len = x.len()
    );
    let count = n * s;
    let per_channel = (0..c)
        .into_par_iter()
        .map(|ch| {
            let mean = channel_sum(shape, x, ch, |v| v) / count as f64;
            let var = channel_sum(shape, x, ch, |v| (v - mean) * (v - mean)) / count as f64;
            (mean, var)
        })
        .collect();
    ChannelMoments { count, per_channel }
}

fn check<T>(g: &BnGeom, x: &[T], params: &[&[T]]) {
    assert_eq!(x.len(), g.len(), "batch_norm: input length for {g:?}");
    assert!(
        params.iter().all(|p| p.len() == g.c),
        "batch_norm: per-channel length for {g:?}"
    );
}

#[allow(clippy::too_many_arguments)]
pub fn train<T: Scalar>(
    g: &BnGeom,
    x: &[T],
    stats: Option<&ChannelMoments>,
    epilogue: BnEpilogue<'_, [T]>,
    gamma: &[T],
    beta: &[T],
    running_mean: &mut [T],
    running_var: &mut [T],
    y: &mut [T],
    save_mean: &mut [T],
    save_invstd: &mut [T],
) {
    check(g, x, &[gamma, beta, running_mean, running_var, save_mean, save_invstd]);
    let computed;
    let stats = match stats {
        Some(given) => {
            assert!(
                given.count == g.n * g.s && given.per_channel.len() == g.c,
                "batch_norm: statistics of {} channels of {} values for {g:?}",
                given.per_channel.len(),
                given.count
            );
            given
        }
        None => {
            computed = moments((g.n, g.c, g.s), x);
            &computed
        }
    };
    let count = (g.n * g.s) as f64;
    let mut scale = vec![0.0; g.c];
    let mut shift = vec![0.0; g.c];
    for (ch, &(mean, var)) in stats.per_channel.iter().enumerate() {
        let invstd = 1.0 / (var + g.eps).sqrt();
        scale[ch] = invstd * gamma[ch].as_f64();
        shift[ch] = beta[ch].as_f64() - mean * scale[ch];
        save_mean[ch] = T::of(mean);
        save_invstd[ch] = T::of(invstd);
        let unbiased = if count > 1.0 { var * count / (count - 1.0) } else { var };
        running_mean[ch] = T::of((1.0 - g.momentum) * running_mean[ch].as_f64() + g.momentum * mean);
        running_var[ch] = T::of((1.0 - g.momentum) * running_var[ch].as_f64() + g.momentum * unbiased);
    }
    affine(g, x, &scale, &shift, epilogue, y);
}

#[allow(clippy::too_many_arguments)]
pub fn eval<T: Scalar>(
    g: &BnGeom,
    x: &[T],
    epilogue: BnEpilogue<'_, [T]>,
    gamma: &[T],
    beta: &[T],
    running_mean: &[T],
    running_var: &[T],
    y: &mut [T],
) {
    check(g, x, &[gamma, beta, running_mean, running_var]);
    let scale: Vec<f64> = (0..g.c)
        .map(|ch| gamma[ch].as_f64() / (running_var[ch].as_f64() + g.eps).sqrt())
        .collect();
    let shift: Vec<f64> = (0..g.c)
        .map(|ch| beta[ch].as_f64() - running_mean[ch].as_f64() * scale[ch])
        .collect();
    affine(g, x, &scale, &shift, epilogue, y);
}

/// `eval` with the batch norm's tensors bundled.
pub fn eval_with<T: Scalar>(
    g: &BnGeom,
    x: &[T],
    bn: BnEval<'_, Vec<T>>,
    epilogue: BnEpilogue<'_, Vec<T>>,
    y: &mut [T],
) {
    eval(
        g,
        x,
        epilogue.map(Vec::as_slice),
        bn.gamma,
        bn.beta,
        bn.running_mean,
        bn.running_var,
        y,
    )
}

#[allow(clippy::too_many_arguments)]
pub fn backward<T: Scalar>(
    g: &BnGeom,
    x: &[T],
    dy: &[T],
    relu_output: Option<&[T]>,
    gamma: &[T],
    save_mean: &[T],
    save_invstd: &[T],
    dx: &mut [T],
    dgamma: &mut [T],
    dbeta: &mut [T],
) {
    check(g, x, &[gamma, save_mean, save_invstd, dgamma, dbeta]);
    assert_eq!(dy.len(), g.len(), "batch_norm: dy length");
    assert_eq!(dx.len(), g.len(), "batch_norm: dx length");
    if let Some(y) = relu_output {
        assert_eq!(y.len(), g.len(), "batch_norm: relu_output length");
    }
    // dy masked by the ReLU that followed the forward, element by element as relu_backward
    let dy_at = |i: usize| relu_output.map_or(dy[i], |y| relu_grad(y[i], dy[i])).as_f64();
    let count = (g.n * g.s) as f64;
    // per channel: Σ dy and Σ dy·x̂
    let sums: Vec<(f64, f64)> = (0..g.c)
        .into_par_iter()
        .map(|ch| {
            let (mean, invstd) = (save_mean[ch].as_f64(), save_invstd[ch].as_f64());
            let (mut sum_dy, mut sum_dy_xhat) = (0.0, 0.0);
            for n in 0..g.n {
                let base = (n * g.c + ch) * g.s;
                for (j, &v) in x[base..base + g.s].iter().enumerate() {
                    let d = dy_at(base + j);
                    sum_dy += d;
                    sum_dy_xhat += d * (v.as_f64() - mean) * invstd;
                }
            }
            (sum_dy, sum_dy_xhat)
        })
        .collect();
    for (ch, &(sum_dy, sum_dy_xhat)) in sums.iter().enumerate() {
        dgamma[ch] += T::of(sum_dy_xhat);
        dbeta[ch] += T::of(sum_dy);
    }
    // dx = γ·invstd/m · (m·dy − Σdy − x̂·Σ(dy·x̂))
    dx.par_chunks_mut(g.c * g.s).enumerate().for_each(|(n, dxn)| {
        for ch in 0..g.c {
            let (mean, invstd) = (save_mean[ch].as_f64(), save_invstd[ch].as_f64());
            let (sum_dy, sum_dy_xhat) = sums[ch];
            let k = gamma[ch].as_f64() * invstd / count;
            let base = (n * g.c + ch) * g.s;
            for (j, d) in dxn[ch * g.s..(ch + 1) * g.s].iter_mut().enumerate() {
                let xhat = (x[base + j].as_f64() - mean) * invstd;
                *d = T::of(k * (count * dy_at(base + j) - sum_dy - xhat * sum_dy_xhat));
            }
        }
    });
}
