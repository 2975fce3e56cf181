//! The compressed weight a conv with a fixed mask (a pruned checkpoint, a lottery ticket) computes
//! its forward and input gradient with, and the policy that picks it over the dense kernels: CSR
//! when the mask keeps at most `Backend::CSR_MAX_DENSITY` of the weights.
//!
//! The CSR pattern is built from the mask (on the device, for a device backend) only when the mask
//! changes, which the mask buffer's version tells, and before a training step is recorded into a
//! graph (`Stgcn::prepare_fixed_masks`: a conversion reads back its entry count, which a recording
//! cannot); each forward re-reads the kept values from the current weight (a gather of the kept
//! entries, cheap next to the conv), so training under a fixed mask stays exact. The weight gradient stays dense: the straight-through estimator needs it at
//! every position.

use super::Buffer;
use crate::backend::Backend;

/// How a masked conv computes its forward and input gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvFormat {
    /// The dense kernels on `W ⊙ M`.
    Dense,
    /// The CSR kernels on the kept entries.
    Csr,
}

/// The format for a fixed mask keeping `density` of the weights on a backend whose CSR kernels beat
/// its dense ones up to `csr_max_density` (`Backend::CSR_MAX_DENSITY`).
pub fn choose_format(density: f64, csr_max_density: f64) -> ConvFormat {
    if density <= csr_max_density {
        ConvFormat::Csr
    } else {
        ConvFormat::Dense
    }
}

/// What a conv keeps for its current fixed mask.
pub(super) struct FixedMaskWeight<B: Backend> {
    /// The version of the mask it was derived from.
    mask_version: u64,
    /// The CSR weight, or `None` when the policy chose the dense kernels.
    csr: Option<B::SparseWeight>,
}

impl<B: Backend> FixedMaskWeight<B> {
    /// The CSR weight to compute with for `mask` (rebuilt if the mask changed since `cached` was
    /// made), its values refreshed from `w`; `None` when the dense kernels are the better choice.
    /// `w`, `mask`: `[c_out, c_in, kt]`.
    pub(super) fn refresh<'a>(
        cached: &'a mut Option<Self>,
        be: &B,
        w: &B::Buf,
        mask: &Buffer<B>,
        [c_out, c_in, kt]: [usize; 3],
    ) -> Option<&'a B::SparseWeight> {
        if cached.as_ref().is_some_and(|c| c.mask_version == mask.version()) {
            let csr = cached.as_mut()?.csr.as_mut()?;
            be.sparse_weight_update(csr, w);
            return Some(csr);
        }
        let csr = be.sparse_weight(w, &mask.value, c_out, c_in, kt);
        let density = be.sparse_weight_nnz(&csr) as f64 / (c_out * c_in * kt).max(1) as f64;
        let entry = cached.insert(Self {
            mask_version: mask.version(),
            csr: (choose_format(density, B::CSR_MAX_DENSITY) == ConvFormat::Csr).then_some(csr),
        });
        entry.csr.as_ref()
    }

    /// The CSR weight of the last [`FixedMaskWeight::refresh`], if it chose CSR.
    pub(super) fn csr(&self) -> Option<&B::SparseWeight> {
        self.csr.as_ref()
    }
}
