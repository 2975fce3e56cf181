//! Softmax cross-entropy with label smoothing, averaged over the batch (computed in f64).

use crate::backend::Scalar;

pub fn cross_entropy<T: Scalar>(
    n: usize,
    classes: usize,
    logits: &[T],
    labels: &[u32],
    smoothing: f64,
    loss: &mut [T],
    dlogits: &mut [T],
) {
    assert_eq!(logits.len(), n * classes, "cross_entropy: logits length");
    assert_eq!(dlogits.len(), n * classes, "cross_entropy: dlogits length");
    assert_eq!(labels.len(), n, "cross_entropy: labels length");
    let off = smoothing / classes as f64;
    let on = 1.0 - smoothing + off;
    let mut total = 0.0;
    for (i, (row, drow)) in logits.chunks(classes).zip(dlogits.chunks_mut(classes)).enumerate() {
        let label = labels[i] as usize;
        assert!(label < classes, "cross_entropy: label {label} outside 0..{classes}");
        let max = row.iter().map(|v| v.as_f64()).fold(f64::NEG_INFINITY, f64::max);
        let sum_exp: f64 = row.iter().map(|v| (v.as_f64() - max).exp()).sum();
        let log_z = max + sum_exp.ln();
        for (j, (&z, d)) in row.iter().zip(drow.iter_mut()).enumerate() {
            let target = if j == label { on } else { off };
            total -= target * (z.as_f64() - log_z);
            let p = (z.as_f64() - max).exp() / sum_exp;
            *d = T::of((p - target) / n as f64);
        }
    }
    loss[0] = T::of(total / n as f64);
}
