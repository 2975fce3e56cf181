//! Mean pooling over (T·V) and persons: x `[n·persons, c, s]` → y `[n, c]`, as PyTorch computes it
//! (the mean over s per person, then the mean over persons).

use crate::backend::Scalar;

pub fn forward<T: Scalar>(n: usize, persons: usize, c: usize, s: usize, x: &[T], y: &mut [T]) {
    assert_eq!(x.len(), n * persons * c * s, "mean_pool: x length");
    assert_eq!(y.len(), n * c, "mean_pool: y length");
    for i in 0..n {
        for ch in 0..c {
            let per_person: f64 = (0..persons)
                .map(|m| {
                    let start = ((i * persons + m) * c + ch) * s;
                    x[start..start + s].iter().map(|v| v.as_f64()).sum::<f64>() / s as f64
                })
                .sum();
            y[i * c + ch] = T::of(per_person / persons as f64);
        }
    }
}

pub fn backward<T: Scalar>(n: usize, persons: usize, c: usize, s: usize, dy: &[T], dx: &mut [T]) {
    assert_eq!(dx.len(), n * persons * c * s, "mean_pool: dx length");
    assert_eq!(dy.len(), n * c, "mean_pool: dy length");
    let inv = 1.0 / (persons * s) as f64;
    for (row, d) in dx.chunks_mut(s).enumerate() {
        let (sample, ch) = (row / (persons * c), row % c);
        d.fill(T::of(dy[sample * c + ch].as_f64() * inv));
    }
}
