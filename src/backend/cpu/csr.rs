//! CSR conv weights on the CPU: the conversion from a mask, the value refresh, and the forward and
//! input gradient as sums over the kept entries.
//!
//! Every output element starts at the bias (or 0) and adds `value·input` for the entries of its CSR
//! row in CSR order, each product and sum rounded separately: the GPU kernels do exactly the same,
//! so both backends agree bit for bit. Parallel over samples.

use rayon::prelude::*;

use crate::backend::sparse::{Csr, CsrWeight};
use crate::backend::{ConvGeom, Scalar};

/// The CSR matrix with `rows` rows of the entries `(r, a, k)` (`a < others`, `k < kt`) whose mask
/// is non-zero, `index(r, a, k)` being the entry's position in `w`; columns `a·kt + k` ascending.
fn build<T: Scalar>(
    w: &[T],
    mask: &[T],
    rows: usize,
    others: usize,
    kt: usize,
    index: impl Fn(usize, usize, usize) -> usize,
) -> Csr<T> {
    let mut csr = Csr {
        row_ptr: Vec::with_capacity(rows + 1),
        col: Vec::new(),
        src: Vec::new(),
        values: Vec::new(),
    };
    csr.row_ptr.push(0);
    for r in 0..rows {
        for a in 0..others {
            for k in 0..kt {
                let idx = index(r, a, k);
                if mask[idx] != T::zero() {
                    csr.col.push((a * kt + k) as u32);
                    csr.src.push(idx as u32);
                    csr.values.push(w[idx]);
                }
            }
        }
        csr.row_ptr.push(csr.col.len() as u32);
    }
    csr
}

/// The entries of `w` (`[c_out, c_in, kt]`) where `mask` (same shape) is non-zero, in both CSR forms.
pub fn from_mask<T: Scalar>(w: &[T], mask: &[T], c_out: usize, c_in: usize, kt: usize) -> CsrWeight<T> {
    let len = c_out * c_in * kt;
    assert_eq!(w.len(), len, "sparse_weight: w length for [{c_out}, {c_in}, {kt}]");
    assert_eq!(
        mask.len(),
        len,
        "sparse_weight: mask length for [{c_out}, {c_in}, {kt}]"
    );
    assert!(
        len < u32::MAX as usize,
        "sparse_weight: {len} weights exceed u32 indices"
    );
    let k_len = c_in * kt;
    CsrWeight {
        c_out,
        c_in,
        kt,
        by_output: build(w, mask, c_out, c_in, kt, |o, i, k| o * k_len + i * kt + k),
        by_input: build(w, mask, c_in, c_out, kt, |i, o, k| o * k_len + i * kt + k),
    }
}

/// Re-reads the kept values from a new `w`, keeping the pattern (a weight update under a fixed mask).
pub fn update_values<T: Scalar>(sw: &mut CsrWeight<T>, w: &[T]) {
    assert_eq!(w.len(), sw.c_out * sw.c_in * sw.kt, "sparse_weight_update: w length");
    for csr in [&mut sw.by_output, &mut sw.by_input] {
        for (v, &s) in csr.values.iter_mut().zip(&csr.src) {
            *v = w[s as usize];
        }
    }
}

fn check(g: &ConvGeom, sw: &CsrWeight<impl Scalar>, x_len: usize, y_len: usize) {
    assert!(
        g.stride >= 1 && g.t_in + 2 * g.pad >= g.kt,
        "sparse conv: invalid geometry {g:?}"
    );
    assert!(
        (sw.c_out, sw.c_in, sw.kt) == (g.c_out, g.c_in, g.kt),
        "sparse conv: weight [{}, {}, {}] for {g:?}",
        sw.c_out,
        sw.c_in,
        sw.kt
    );
    assert_eq!(x_len, g.x_len(), "sparse conv: x length for {g:?}");
    assert_eq!(y_len, g.y_len(), "sparse conv: y length for {g:?}");
}

/// The output frames `t` whose input frame `t·stride + k − pad` lies in `[0, t_in)`.
fn valid_frames(g: &ConvGeom, k: usize) -> std::ops::Range<usize> {
    let lo = g.pad.saturating_sub(k).div_ceil(g.stride);
    let hi = (g.t_in + g.pad).saturating_sub(k).div_ceil(g.stride).min(g.t_out());
    lo..hi.max(lo)
}

/// `acc[e] += a·x[e]`, each product and sum rounded separately.
fn axpy<T: Scalar>(acc: &mut [T], a: T, x: &[T]) {
    for (acc, &xv) in acc.iter_mut().zip(x) {
        *acc += a * xv;
    }
}

/// `out[t, :] += a·inp[t·stride + k − pad, :]` over the valid output frames `t` (rows of `v`
/// values): the contribution of one tap. `out` holds `t_out` rows, `inp` `t_in` rows; with
/// `reverse`, the roles swap (`out[t·stride + k − pad, :] += a·inp[t, :]`, the input gradient).
fn add_tap<T: Scalar>(g: &ConvGeom, k: usize, a: T, inp: &[T], out: &mut [T], reverse: bool) {
    let v = g.v;
    let frames = valid_frames(g, k);
    if frames.is_empty() {
        return;
    }
    if g.stride == 1 {
        // one contiguous run of frames on both sides
        let shifted = (frames.start + k - g.pad) * v..(frames.end + k - g.pad) * v;
        let direct = frames.start * v..frames.end * v;
        match reverse {
            false => axpy(&mut out[direct], a, &inp[shifted]),
            true => axpy(&mut out[shifted], a, &inp[direct]),
        }
        return;
    }
    for t in frames {
        let s = t * g.stride + k - g.pad;
        match reverse {
            false => axpy(&mut out[t * v..(t + 1) * v], a, &inp[s * v..(s + 1) * v]),
            true => axpy(&mut out[s * v..(s + 1) * v], a, &inp[t * v..(t + 1) * v]),
        }
    }
}

/// `y[n,o,t,v] = b[o] + Σ_(i,k) w[o,i,k]·x[n,i,t·stride+k−pad,v]` over the kept `(i, k)` of row `o`.
pub fn forward<T: Scalar>(g: &ConvGeom, x: &[T], sw: &CsrWeight<T>, b: Option<&[T]>, y: &mut [T]) {
    check(g, sw, x.len(), y.len());
    let (t_out, v, kt) = (g.t_out(), g.v, g.kt);
    let csr = &sw.by_output;
    y.par_chunks_mut((g.c_out * t_out * v).max(1))
        .zip(x.par_chunks((g.c_in * g.t_in * v).max(1)))
        .for_each(|(yn, xn)| {
            for (o, yo) in yn.chunks_mut((t_out * v).max(1)).enumerate() {
                yo.fill(b.map_or(T::zero(), |b| b[o]));
                for e in csr.row_ptr[o] as usize..csr.row_ptr[o + 1] as usize {
                    let (i, k) = (csr.col[e] as usize / kt, csr.col[e] as usize % kt);
                    let xi = &xn[i * g.t_in * v..(i + 1) * g.t_in * v];
                    add_tap(g, k, csr.values[e], xi, yo, false);
                }
            }
        });
}

/// `dx[n,i,s,v] = Σ_(o,k) w[o,i,k]·dy[n,o,t,v]` with `s = t·stride + k − pad`, over the kept `(o, k)`
/// of row `i` of the CSR over input channels (dx overwritten).
pub fn backward_input<T: Scalar>(g: &ConvGeom, dy: &[T], sw: &CsrWeight<T>, dx: &mut [T]) {
    check(g, sw, dx.len(), dy.len());
    let (t_out, v, kt) = (g.t_out(), g.v, g.kt);
    let csr = &sw.by_input;
    dx.par_chunks_mut((g.c_in * g.t_in * v).max(1))
        .zip(dy.par_chunks((g.c_out * t_out * v).max(1)))
        .for_each(|(dxn, dyn_)| {
            for (i, dxi) in dxn.chunks_mut((g.t_in * v).max(1)).enumerate() {
                dxi.fill(T::zero());
                for e in csr.row_ptr[i] as usize..csr.row_ptr[i + 1] as usize {
                    let (o, k) = (csr.col[e] as usize / kt, csr.col[e] as usize % kt);
                    let dyo = &dyn_[o * t_out * v..(o + 1) * t_out * v];
                    add_tap(g, k, csr.values[e], dyo, dxi, true);
                }
            }
        });
}
