//! The training configuration of the multi-level sparsity assembly ([`crate::model::Assembly`]):
//! one sparsity schedule per expert. The reference trains four experts at 0.6, 0.8, 0.95 and 0.99,
//! all dense for the first 80 of 100 epochs and then at their targets, with the gradient clipped to
//! a global norm of 45 (`max_grad_norm` of the training configuration).

use serde::{Deserialize, Serialize};

use super::SparsitySchedule;
use crate::{Error, Result};

/// The reference configuration's expert sparsities.
pub const REFERENCE_LEVELS: [f64; 4] = [0.6, 0.8, 0.95, 0.99];
/// The reference configuration's gradient clipping (global L2 norm over every parameter).
pub const REFERENCE_MAX_GRAD_NORM: f64 = 45.0;
/// The reference configuration's dense warm-up, as a fraction of the epochs (80 of 100).
pub const REFERENCE_WARMUP_FRACTION: f64 = 0.8;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssemblyConfig {
    /// One schedule per expert: expert h thresholds its own scores at `experts[h]`'s sparsity.
    pub experts: Vec<SparsitySchedule>,
}

impl AssemblyConfig {
    /// One expert per target, each dense for `warmup_epochs` and then at its target (a jump).
    pub fn levels(targets: &[f64], warmup_epochs: usize) -> Self {
        Self {
            experts: targets
                .iter()
                .map(|&target| SparsitySchedule {
                    target,
                    warmup_epochs,
                    ramp: false,
                })
                .collect(),
        }
    }

    /// The experts' target sparsities.
    pub fn targets(&self) -> Vec<f64> {
        self.experts.iter().map(|e| e.target).collect()
    }

    pub fn validate(&self) -> Result<()> {
        if self.experts.is_empty() {
            return Err(Error::config(
                "assembly.experts is empty: an assembly needs at least one expert",
            ));
        }
        if let Some((h, e)) = self
            .experts
            .iter()
            .enumerate()
            .find(|(_, e)| !(0.0..1.0).contains(&e.target))
        {
            return Err(Error::config(format!(
                "assembly.experts[{h}].target must be in [0, 1), got {}",
                e.target
            )));
        }
        Ok(())
    }
}
