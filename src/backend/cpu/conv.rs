//! Convolution over time with a `kt x 1` kernel, as im2col + GEMM per sample.
//!
//! x: `[n, c_in, t_in, v]`, w: `[c_out, c_in, kt]`, y: `[n, c_out, t_out, v]`. The column matrix of one
//! sample is `col[(i·kt + k), (t·v + j)] = x[i, t·stride + k − pad, j]` (0 outside the clip), so that
//! `y_n = w · col_n`; a 1x1 conv with stride 1 uses x_n itself.

use rayon::prelude::*;

use super::parallel::reduce_over_samples;
use crate::backend::{ConvGeom, ConvMath, Scalar};

/// `v` with every element rounded as a GEMM operand in `math` ([`ConvMath::round`]), or `v`
/// itself in f32 math. In parallel: an activation is millions of values, rounded for every op.
pub fn rounded_operand<T: Scalar>(math: ConvMath, v: &[T]) -> std::borrow::Cow<'_, [T]> {
    match math {
        ConvMath::F32 => std::borrow::Cow::Borrowed(v),
        m => std::borrow::Cow::Owned(
            v.par_iter()
                .with_min_len(1 << 14)
                .map(|&x| T::of(m.round(x.as_f64() as f32) as f64))
                .collect(),
        ),
    }
}

fn is_pointwise(g: &ConvGeom) -> bool {
    g.kt == 1 && g.stride == 1 && g.pad == 0
}

fn check(g: &ConvGeom, x_len: usize, w_len: usize, y_len: usize) {
    assert!(
        g.stride >= 1 && g.t_in + 2 * g.pad >= g.kt,
        "conv: invalid geometry {g:?}"
    );
    assert_eq!(x_len, g.x_len(), "conv: x length for {g:?}");
    assert_eq!(w_len, g.w_len(), "conv: w length for {g:?}");
    assert_eq!(y_len, g.y_len(), "conv: y length for {g:?}");
}

/// Fills the column matrix `[c_in·kt, t_out·v]` of one sample.
fn im2col<T: Scalar>(g: &ConvGeom, x: &[T], col: &mut [T]) {
    let (t_out, v) = (g.t_out(), g.v);
    for i in 0..g.c_in {
        let xi = &x[i * g.t_in * v..(i + 1) * g.t_in * v];
        for k in 0..g.kt {
            let row = &mut col[(i * g.kt + k) * t_out * v..(i * g.kt + k + 1) * t_out * v];
            for t in 0..t_out {
                let src = (t * g.stride + k) as isize - g.pad as isize;
                let dst = &mut row[t * v..(t + 1) * v];
                if src >= 0 && (src as usize) < g.t_in {
                    dst.copy_from_slice(&xi[src as usize * v..(src as usize + 1) * v]);
                } else {
                    dst.fill(T::zero());
                }
            }
        }
    }
}

/// Adds the column-matrix gradient of one sample back onto `dx` (`[c_in, t_in, v]`, zeroed first).
fn col2im<T: Scalar>(g: &ConvGeom, col: &[T], dx: &mut [T]) {
    let (t_out, v) = (g.t_out(), g.v);
    dx.fill(T::zero());
    for i in 0..g.c_in {
        let dxi = &mut dx[i * g.t_in * v..(i + 1) * g.t_in * v];
        for k in 0..g.kt {
            let row = &col[(i * g.kt + k) * t_out * v..(i * g.kt + k + 1) * t_out * v];
            for t in 0..t_out {
                let src = (t * g.stride + k) as isize - g.pad as isize;
                if src >= 0 && (src as usize) < g.t_in {
                    let d = &mut dxi[src as usize * v..(src as usize + 1) * v];
                    for (d, &c) in d.iter_mut().zip(&row[t * v..(t + 1) * v]) {
                        *d += c;
                    }
                }
            }
        }
    }
}

pub fn forward<T: Scalar>(g: &ConvGeom, x: &[T], w: &[T], b: Option<&[T]>, y: &mut [T]) {
    check(g, x.len(), w.len(), y.len());
    let (x_per, y_per) = (g.c_in * g.t_in * g.v, g.c_out * g.t_out() * g.v);
    let cols = g.t_out() * g.v;
    let depth = g.c_in * g.kt;
    y.par_chunks_mut(y_per.max(1))
        .zip(x.par_chunks(x_per.max(1)))
        .for_each(|(yn, xn)| {
            let beta = match b {
                Some(b) => {
                    for (o, row) in yn.chunks_mut(cols).enumerate() {
                        row.fill(b[o]);
                    }
                    T::one()
                }
                None => T::zero(),
            };
            let col_owned;
            let col: &[T] = if is_pointwise(g) {
                xn
            } else {
                let mut c = vec![T::zero(); depth * cols];
                im2col(g, xn, &mut c);
                col_owned = c;
                &col_owned
            };
            T::gemm(
                g.c_out,
                depth,
                cols,
                T::one(),
                w,
                (depth as isize, 1),
                col,
                (cols as isize, 1),
                beta,
                yn,
                (cols as isize, 1),
            );
        });
}

pub fn backward_input<T: Scalar>(g: &ConvGeom, dy: &[T], w: &[T], dx: &mut [T]) {
    check(g, dx.len(), w.len(), dy.len());
    let (x_per, y_per) = (g.c_in * g.t_in * g.v, g.c_out * g.t_out() * g.v);
    let cols = g.t_out() * g.v;
    let depth = g.c_in * g.kt;
    dx.par_chunks_mut(x_per.max(1))
        .zip(dy.par_chunks(y_per.max(1)))
        .for_each(|(dxn, dyn_)| {
            // dcol = wᵀ · dy_n : [c_in·kt, t_out·v]
            if is_pointwise(g) {
                T::gemm(
                    depth,
                    g.c_out,
                    cols,
                    T::one(),
                    w,
                    (1, depth as isize),
                    dyn_,
                    (cols as isize, 1),
                    T::zero(),
                    dxn,
                    (cols as isize, 1),
                );
            } else {
                let mut dcol = vec![T::zero(); depth * cols];
                T::gemm(
                    depth,
                    g.c_out,
                    cols,
                    T::one(),
                    w,
                    (1, depth as isize),
                    dyn_,
                    (cols as isize, 1),
                    T::zero(),
                    &mut dcol,
                    (cols as isize, 1),
                );
                col2im(g, &dcol, dxn);
            }
        });
}

/// `dw += ∂L/∂w` (the bias gradient is [`backward_bias`]).
pub fn backward_weight<T: Scalar>(g: &ConvGeom, x: &[T], dy: &[T], dw: &mut [T]) {
    check(g, x.len(), dw.len(), dy.len());
    let (x_per, y_per) = (g.c_in * g.t_in * g.v, g.c_out * g.t_out() * g.v);
    let cols = g.t_out() * g.v;
    let depth = g.c_in * g.kt;
    // dw += Σ_n dy_n · col_nᵀ
    reduce_over_samples(g.n, dw.len(), dw, |range, acc| {
        let mut col = if is_pointwise(g) {
            Vec::new()
        } else {
            vec![T::zero(); depth * cols]
        };
        for n in range {
            let xn = &x[n * x_per..(n + 1) * x_per];
            let colv: &[T] = if is_pointwise(g) {
                xn
            } else {
                im2col(g, xn, &mut col);
                &col
            };
            let dyn_ = &dy[n * y_per..(n + 1) * y_per];
            T::gemm(
                g.c_out,
                cols,
                depth,
                T::one(),
                dyn_,
                (cols as isize, 1),
                colv,
                (1, cols as isize),
                T::one(),
                acc,
                (depth as isize, 1),
            );
        }
    });
}

/// `db[o] += Σ_n Σ_(t,v) dy[n, o, t, v]`, accumulated in f64 per channel.
pub fn backward_bias<T: Scalar>(g: &ConvGeom, dy: &[T], db: &mut [T]) {
    assert_eq!(dy.len(), g.y_len(), "conv: dy length for {g:?}");
    assert_eq!(db.len(), g.c_out, "conv: db length for {g:?}");
    let (y_per, cols) = (g.c_out * g.t_out() * g.v, g.t_out() * g.v);
    let sums: Vec<f64> = (0..g.c_out)
        .into_par_iter()
        .map(|o| {
            (0..g.n)
                .map(|n| {
                    dy[n * y_per + o * cols..n * y_per + (o + 1) * cols]
                        .iter()
                        .map(|v| v.as_f64())
                        .sum::<f64>()
                })
                .sum()
        })
        .collect();
    for (b, s) in db.iter_mut().zip(sums) {
        *b += T::of(s);
    }
}
