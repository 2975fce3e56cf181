//! How activations and their gradients are stored between ops: f32, or bf16 (mixed precision,
//! as PyTorch's bf16 autocast stores them) with f32 master weights, f32 batch statistics and f32
//! optimizer state.
//!
//! A bf16-stored tensor is one whose every value was rounded to bf16 (nearest even) when it was
//! written; the op that reads it computes in f32 from those values. So a backend emulates bf16
//! storage exactly by computing an op as in f32 storage and rounding each value it stores into an
//! activation, and a device backend that stores bf16 in memory computes the same values up to the
//! order of its sums. What is an activation: every tensor a layer passes on (conv, aggregation,
//! batch-norm, pooling and classifier outputs) and every gradient of one; what is not: the input
//! batch as uploaded, the parameters, their gradients and momenta, batch-norm statistics, the loss.

use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use super::Scalar;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Storage {
    /// 4 bytes a value: activations are exact f32 results.
    #[default]
    F32,
    /// 2 bytes a value: every stored activation and gradient rounded to bf16.
    Bf16,
}

impl Storage {
    /// Bytes of one stored activation value.
    pub fn bytes(self) -> usize {
        match self {
            Storage::F32 => 4,
            Storage::Bf16 => 2,
        }
    }

    /// Unit roundoff of a stored value (half an ulp at 1): 0 for f32 (the reference rounds as the
    /// op does), 2⁻⁸ for bf16.
    pub fn unit_roundoff(self) -> f64 {
        match self {
            Storage::F32 => 0.0,
            Storage::Bf16 => 2f64.powi(-8),
        }
    }

    /// `v` as this storage keeps it: each value rounded to bf16 (nearest even, NaN and infinities
    /// kept), or unchanged in f32 storage. In parallel: an activation is millions of values.
    pub fn round_in_place<T: Scalar>(self, v: &mut [T]) {
        if self == Storage::Bf16 {
            v.par_iter_mut()
                .with_min_len(1 << 14)
                .for_each(|x| *x = round_to_bf16(*x));
        }
    }
}

/// Whether a backend is inside a region whose activations stay f32 whatever its storage
/// ([`super::Backend::with_f32_activations`]). A clone starts outside any region.
#[derive(Debug, Default)]
pub struct F32Region(AtomicBool);

impl F32Region {
    pub fn active(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Runs `f` inside the region, and leaves it as it was after (also when `f` unwinds).
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Restore<'a>(&'a AtomicBool, bool);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.0.store(self.1, Ordering::SeqCst);
            }
        }
        let _restore = Restore(&self.0, self.0.swap(true, Ordering::SeqCst));
        f()
    }
}

impl Clone for F32Region {
    fn clone(&self) -> Self {
        Self::default()
    }
}

/// `x` rounded to bf16 through f32 (the f64 backend's values are first rounded to f32, as a
/// device would compute them).
pub fn round_to_bf16<T: Scalar>(x: T) -> T {
    T::of(half::bf16::from_f32(x.as_f64() as f32).to_f32() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_storage_rounds_every_value_and_f32_keeps_it() {
        let ulp = 2f32.powi(-7);
        let mut v = vec![
            1.0 + ulp / 2.0,
            1.0 + 1.5 * ulp,
            -3.0,
            f32::INFINITY,
            1.0 + f32::EPSILON,
        ];
        let kept = v.clone();
        Storage::F32.round_in_place(&mut v);
        assert_eq!(v, kept);
        Storage::Bf16.round_in_place(&mut v);
        assert_eq!(v, [1.0, 1.0 + 2.0 * ulp, -3.0, f32::INFINITY, 1.0]);
        let mut nan = [f64::NAN];
        Storage::Bf16.round_in_place(&mut nan);
        assert!(nan[0].is_nan());
        assert_eq!((Storage::F32.bytes(), Storage::Bf16.bytes()), (4, 2));
    }
}
