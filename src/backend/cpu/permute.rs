//! Axis permutation of a contiguous tensor.

use crate::backend::Scalar;

/// `y = x.permute(perm)`, contiguous; `dims` is the shape of x.
pub fn permute<T: Scalar>(x: &[T], dims: &[usize], perm: &[usize], y: &mut [T]) {
    let rank = dims.len();
    assert!(
        rank <= 6 && perm.len() == rank,
        "permute: rank {rank}, permutation {perm:?}"
    );
    assert_eq!(x.len(), dims.iter().product::<usize>(), "permute: input length");
    assert_eq!(y.len(), x.len(), "permute: output length");
    let mut in_strides = vec![1usize; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        in_strides[i] = in_strides[i + 1] * dims[i + 1];
    }
    // walk the output in order; `strides[d]` is the input stride of output axis d
    let out_dims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
    let strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let mut idx = vec![0usize; rank];
    let mut src = 0usize;
    for out in y.iter_mut() {
        *out = x[src];
        for d in (0..rank).rev() {
            idx[d] += 1;
            src += strides[d];
            if idx[d] < out_dims[d] {
                break;
            }
            src -= strides[d] * out_dims[d];
            idx[d] = 0;
        }
    }
}
