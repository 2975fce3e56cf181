//! Exact selection for sparsity thresholds: the k-th smallest score of a pool, and masks from it.

use crate::backend::Scalar;

pub fn kth_smallest<T: Scalar>(bufs: &[&Vec<T>], k: usize, out: &mut [T]) {
    let mut pool: Vec<T> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
    assert!(
        k >= 1 && k <= pool.len(),
        "kth_smallest: k = {k} outside 1..={}",
        pool.len()
    );
    let (_, kth, _) = pool.select_nth_unstable_by(k - 1, |a, b| a.as_f64().total_cmp(&b.as_f64()));
    out[0] = *kth;
}

pub fn threshold_mask<T: Scalar>(score: &[T], tau: &[T], mask: &mut [T]) {
    assert_eq!(score.len(), mask.len(), "threshold_mask: length mismatch");
    let tau = tau[0];
    for (m, &s) in mask.iter_mut().zip(score) {
        *m = if s >= tau { T::one() } else { T::zero() };
    }
}
