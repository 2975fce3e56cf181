//! The sparsity schedule of the sparse generator: dense during warm-up, then the target (a one-shot
//! jump, as the reference configs use), or optionally a linear ramp to the target by mid-training.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SparsitySchedule {
    /// Target sparsity in [0, 1): the fraction of masked weights.
    pub target: f64,
    /// Dense epochs before the masks take effect.
    pub warmup_epochs: usize,
    /// After warm-up, ramp linearly `s(e) = target·e/(epochs/2)` until mid-training (the reference's
    /// optional `sparse_decay`), instead of jumping to the target.
    pub ramp: bool,
}

impl Default for SparsitySchedule {
    fn default() -> Self {
        Self {
            target: 0.0,
            warmup_epochs: 0,
            ramp: false,
        }
    }
}

impl SparsitySchedule {
    /// The sparsity of 0-based training epoch `epoch` of `epochs`.
    pub fn at_epoch(&self, epoch: usize, epochs: usize) -> f64 {
        if epoch < self.warmup_epochs {
            return 0.0;
        }
        let half = epochs as f64 / 2.0;
        if self.ramp && (epoch as f64) < half {
            self.target * epoch as f64 / half
        } else {
            self.target
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_jump_or_ramp() {
        let jump = SparsitySchedule {
            target: 0.9,
            warmup_epochs: 3,
            ramp: false,
        };
        let s: Vec<f64> = (0..6).map(|e| jump.at_epoch(e, 10)).collect();
        assert_eq!(s, [0.0, 0.0, 0.0, 0.9, 0.9, 0.9]);
        let ramp = SparsitySchedule { ramp: true, ..jump };
        assert_eq!(ramp.at_epoch(2, 10), 0.0);
        assert!((ramp.at_epoch(4, 10) - 0.9 * 4.0 / 5.0).abs() < 1e-15);
        assert_eq!(ramp.at_epoch(5, 10), 0.9);
    }
}
