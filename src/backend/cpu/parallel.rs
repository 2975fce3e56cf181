//! Deterministic parallel reductions: work is split into a number of groups that depends only on the
//! problem size, partial results are combined in group order, so the bits of a result never depend on
//! the thread count or on rayon's scheduling.

use rayon::prelude::*;

/// Upper bound on the groups a reduction over samples is split into.
const MAX_GROUPS: usize = 16;

/// Splits `0..n` into at most [`MAX_GROUPS`] contiguous ranges (a function of `n` only).
pub fn groups(n: usize) -> Vec<std::ops::Range<usize>> {
    let count = n.clamp(1, MAX_GROUPS);
    let size = n.div_ceil(count).max(1);
    (0..n).step_by(size).map(|s| s..(s + size).min(n)).collect()
}

/// Computes one partial of length `len` per group of samples in parallel (`partial(range, out)`
/// accumulates into a zeroed `out`), then adds them into `acc` in group order.
pub fn reduce_over_samples<T, F>(n: usize, len: usize, acc: &mut [T], partial: F)
where
    T: crate::backend::Scalar,
    F: Fn(std::ops::Range<usize>, &mut [T]) + Sync,
{
    let partials: Vec<Vec<T>> = groups(n)
        .into_par_iter()
        .map(|range| {
            let mut out = vec![T::zero(); len];
            partial(range, &mut out);
            out
        })
        .collect();
    for p in partials {
        for (a, v) in acc.iter_mut().zip(p) {
            *a += v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_cover_the_range_once() {
        for n in [0, 1, 5, 16, 17, 100] {
            let g = groups(n);
            let covered: Vec<usize> = g.iter().flat_map(|r| r.clone()).collect();
            assert_eq!(covered, (0..n).collect::<Vec<_>>());
            assert!(g.len() <= MAX_GROUPS);
        }
    }
}
