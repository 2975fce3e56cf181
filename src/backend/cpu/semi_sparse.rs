//! 2:4 semi-structured sparsity on the CPU: the pruning rule, the packing for `mma.sp`, and the
//! reference forward and input gradient. The reference computes what the GPU's bf16 tensor-core
//! path computes: the kept weights and the activations (x, or dy for the input gradient) rounded to
//! bf16, products and sums in the backend's precision; only the order of the sums differs.

use super::conv;
use crate::backend::sparse::{f32_to_bf16, nibble, not_2_4_error, padded_columns, Packed24Weight};
use crate::backend::{ConvGeom, ConvMath, Scalar};
use crate::Result;

/// Positions (within a group of `a.len()` ≤ 4 magnitudes) that 2:4 pruning keeps: all of a group
/// of at most 2; otherwise the largest and then the largest of the rest, scanning in ascending
/// position and replacing only on a strictly larger value (ties keep the lower position). The
/// GPU kernel applies the same comparisons, so both keep the same weights.
fn kept_positions<T: Scalar>(a: &[T]) -> [bool; 4] {
    let mut keep = [false; 4];
    if a.len() <= 2 {
        keep[..a.len()].fill(true);
        return keep;
    }
    let mut first = 0;
    for e in 1..a.len() {
        if a[e] > a[first] {
            first = e;
        }
    }
    let mut second = usize::from(first == 0);
    for e in 0..a.len() {
        if e != first && a[e] > a[second] {
            second = e;
        }
    }
    keep[first] = true;
    keep[second] = true;
    keep
}

/// `mask` (`[c_out, c_in·kt]`, overwritten with 0/1): for each output channel, every group of 4
/// consecutive weights along `c_in·kt` keeps its 2 largest magnitudes; a last group of 1–3 weights
/// (when `c_in·kt % 4 ≠ 0`) counts as padded with zeros, so it keeps its 2 largest (all of 1 or 2).
pub fn prune_2_4<T: Scalar>(w: &[T], c_out: usize, c_in: usize, kt: usize, mask: &mut [T]) {
    let k_len = c_in * kt;
    assert_eq!(
        w.len(),
        c_out * k_len,
        "prune_2_4: w length for [{c_out}, {c_in}, {kt}]"
    );
    assert_eq!(mask.len(), w.len(), "prune_2_4: mask length");
    for (wr, mr) in w.chunks(k_len.max(1)).zip(mask.chunks_mut(k_len.max(1))) {
        for (wg, mg) in wr.chunks(4).zip(mr.chunks_mut(4)) {
            let mags: Vec<T> = wg.iter().map(|v| v.abs()).collect();
            for (m, keep) in mg.iter_mut().zip(kept_positions(&mags)) {
                *m = if keep { T::one() } else { T::zero() };
            }
        }
    }
}

/// The two stored positions of a group from its kept positions (at most 2, ascending): the kept
/// ones, completed by unused positions so the two are distinct and ascending (a metadata nibble
/// with equal positions is invalid for `mma.sp`).
fn stored_positions(kept: &[u32]) -> (u32, u32) {
    match *kept {
        [a, b] => (a, b),
        [0] => (0, 1),
        [a] => (0, a),
        _ => (0, 1),
    }
}

/// Packs the weights `mask` keeps (non-zero) into the 2:4 layout of [`Packed24Weight`], rounding
/// them to bf16; fails on the first group (in row-major order) that keeps more than 2 of 4.
pub fn pack<T: Scalar>(w: &[T], mask: &[T], c_out: usize, c_in: usize, kt: usize) -> Result<Packed24Weight> {
    let k_len = c_in * kt;
    assert_eq!(w.len(), c_out * k_len, "pack_2_4: w length for [{c_out}, {c_in}, {kt}]");
    assert_eq!(mask.len(), w.len(), "pack_2_4: mask length");
    let k_padded = padded_columns(c_in, kt);
    let mut values = vec![0u16; c_out * k_padded / 2];
    let mut meta = vec![0u16; c_out * k_padded / 16];
    for o in 0..c_out {
        for g in 0..k_padded / 4 {
            let kept: Vec<u32> = (0..4)
                .filter(|&e| 4 * g + e < k_len && mask[o * k_len + 4 * g + e] != T::zero())
                .map(|e| e as u32)
                .collect();
            if kept.len() > 2 {
                return Err(not_2_4_error(o, g));
            }
            let (first, second) = stored_positions(&kept);
            for (slot, pos) in [(0, first), (1, second)] {
                if kept.contains(&pos) {
                    let value = w[o * k_len + 4 * g + pos as usize].as_f64() as f32;
                    values[o * k_padded / 2 + 2 * g + slot] = f32_to_bf16(value);
                }
            }
            meta[o * k_padded / 16 + g / 4] |= nibble(first, second) << (4 * (g % 4));
        }
    }
    Ok(Packed24Weight {
        c_out,
        c_in,
        kt,
        k_padded,
        values,
        meta,
    })
}

/// The packed weight as a dense `[c_out, c_in, kt]` weight of this backend's type.
fn dense_weight<T: Scalar>(p: &Packed24Weight, g: &ConvGeom) -> Vec<T> {
    assert!(
        (p.c_out, p.c_in, p.kt) == (g.c_out, g.c_in, g.kt),
        "2:4 conv: weight [{}, {}, {}] for {g:?}",
        p.c_out,
        p.c_in,
        p.kt
    );
    p.to_dense().into_iter().map(|v| T::of(f64::from(v))).collect()
}

/// The dense conv of bf16(x) with the packed (bf16) weights, plus the bias in full precision.
pub fn forward<T: Scalar>(g: &ConvGeom, x: &[T], p: &Packed24Weight, b: Option<&[T]>, y: &mut [T]) {
    conv::forward(g, &conv::rounded_operand(ConvMath::Bf16, x), &dense_weight(p, g), b, y)
}

/// The dense input gradient of bf16(dy) with the packed (bf16) weights (dx overwritten).
pub fn backward_input<T: Scalar>(g: &ConvGeom, dy: &[T], p: &Packed24Weight, dx: &mut [T]) {
    conv::backward_input(g, &conv::rounded_operand(ConvMath::Bf16, dy), &dense_weight(p, g), dx)
}
