//! What the trainer, evaluation and the sweep need of a model: a single ST-GCN ([`super::Stgcn`]) or
//! the multi-level sparsity assembly ([`super::Assembly`]), both over the `Backend` trait only.

use super::backbone::Backbone;
use super::config::StgcnConfig;
use crate::backend::Backend;
use crate::layers::{params_of, DataDims, Module};
use crate::Result;

/// The training loss of one batch and the logits used for prediction.
pub struct Objective<B: Backend> {
    /// `[1]`: the loss that was back-propagated.
    pub loss: B::Buf,
    /// `[N, classes]`: the prediction (an assembly: its fused head).
    pub logits: B::Buf,
}

pub trait Recognizer<B: Backend>: Module<B> {
    /// The configuration of each backbone (and the class count of every head).
    fn config(&self) -> &StgcnConfig;

    /// The backbones with their `state_dict` prefixes (`backbone` for a single model).
    fn backbones_mut(&mut self) -> Vec<(String, &mut Backbone<B>)>;

    /// x: `[N, M, T, V, C]` → prediction logits `[N, classes]`. `seed` draws the dropout masks.
    fn logits(&mut self, be: &B, x: &B::Buf, dims: DataDims, train: bool, seed: u64) -> Result<B::Buf>;

    /// Training-mode forward, the training loss against `labels` (`[N]`) with `label_smoothing`,
    /// and its backward, accumulating every parameter gradient.
    fn objective(
        &mut self,
        be: &B,
        x: &B::Buf,
        labels: &B::IdxBuf,
        dims: DataDims,
        label_smoothing: f64,
        seed: u64,
    ) -> Result<Objective<B>>;
}

/// Sets every parameter gradient of `m` to zero.
pub fn zero_grad<B: Backend>(be: &B, m: &mut dyn Module<B>) {
    for (_, p) in params_of(m) {
        be.fill(&mut p.grad, 0.0);
    }
}

/// Softmax cross-entropy of `logits` (`[n, classes]`): returns the mean loss `[1]` and dL/dlogits.
pub fn cross_entropy<B: Backend>(
    be: &B,
    logits: &B::Buf,
    labels: &B::IdxBuf,
    n: usize,
    classes: usize,
    label_smoothing: f64,
) -> (B::Buf, B::Buf) {
    let (mut loss, mut dlogits) = (be.zeros(1), be.activation(n * classes));
    be.cross_entropy(n, classes, logits, labels, label_smoothing, &mut loss, &mut dlogits);
    (loss, dlogits)
}
