//! N:M semi-structured masks (2:4 for sparse tensor cores): in every group of M consecutive weights
//! along a conv's reduction axis (a weight row `[c_in·kt]` of `[c_out, c_in, kt]`) the N of largest
//! magnitude are kept. A trailing group shorter than M keeps min(N, its length) — the group padded
//! with zeros, as a kernel would pad it (block 0's 3-input graph conv keeps 2 of 3).

use crate::backend::{Backend, Scalar};
use crate::model::Stgcn;
use crate::{Error, Result};

/// Masks every backbone conv to N of every M consecutive weights (on top of any fixed mask; masked
/// weights count as magnitude 0) and returns the backbone conv sparsity afterwards.
pub fn prune_n_of_m<B: Backend>(be: &B, model: &mut Stgcn<B>, n: usize, m: usize) -> Result<f64> {
    if n == 0 || n > m {
        return Err(Error::config(format!("an N:M mask needs 1 <= N <= M, got {n}:{m}")));
    }
    for block in &mut model.backbone.blocks {
        for (conv, _) in block.convs_mut() {
            if matches!(conv.mask, Some(crate::layers::WeightMask::Learned { .. })) {
                return Err(Error::config(
                    "an N:M mask replaces fixed masks only: bake the learned mask first (leangcn prune --sparsity)",
                ));
            }
            let w: Vec<f64> = be
                .download(&conv.weight.value)
                .into_iter()
                .map(Scalar::as_f64)
                .collect();
            let old: Vec<f64> = match &conv.mask {
                Some(mask) => be
                    .download(&mask.mask().value)
                    .into_iter()
                    .map(Scalar::as_f64)
                    .collect(),
                None => vec![1.0; w.len()],
            };
            let row = conv.c_in * conv.kt;
            let mut mask = vec![0.0; w.len()];
            for (r, out) in mask.chunks_mut(row).enumerate() {
                for (g, group) in out.chunks_mut(m).enumerate() {
                    let start = r * row + g * m;
                    let magnitude = |i: usize| (w[start + i] * old[start + i]).abs();
                    let mut order: Vec<usize> = (0..group.len()).collect();
                    // largest first, ties to the earlier weight
                    order.sort_by(|&a, &b| magnitude(b).total_cmp(&magnitude(a)).then(a.cmp(&b)));
                    for &i in order.iter().take(n) {
                        group[i] = old[start + i];
                    }
                }
            }
            conv.set_fixed_mask(be, &mask);
        }
    }
    Ok(super::lottery::sparsity_of(be, model))
}
