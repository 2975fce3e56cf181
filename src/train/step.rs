//! One training step and one evaluation pass, independent of where the data comes from.

use crate::backend::{Backend, Scalar};
use crate::layers::params_of;
use crate::model::recognizer::zero_grad;
use crate::model::stgcn::DataDims;
use crate::model::Recognizer;
use crate::optim::Sgd;
use crate::Result;

/// What a training step leaves on the host.
pub struct StepOutput {
    pub loss: f64,
    /// Logits `[n, classes]` (for running accuracy).
    pub logits: Vec<f64>,
}

/// Forward, loss, backward and an optimizer step on one batch. `seed` draws this step's dropout.
#[allow(clippy::too_many_arguments)]
pub fn train_step<B: Backend>(
    be: &B,
    model: &mut dyn Recognizer<B>,
    sgd: &mut Sgd<B>,
    x: &B::Buf,
    labels: &B::IdxBuf,
    dims: DataDims,
    label_smoothing: f64,
    seed: u64,
) -> Result<StepOutput> {
    zero_grad(be, model);
    let out = model.objective(be, x, labels, dims, label_smoothing, seed)?;
    let mut params: Vec<_> = params_of(model).into_iter().map(|(_, p)| p).collect();
    sgd.step(be, &mut params);
    Ok(StepOutput {
        loss: be.download(&out.loss)[0].as_f64(),
        logits: be.download(&out.logits).into_iter().map(Scalar::as_f64).collect(),
    })
}

/// A batch's clips `[N, M, T, V, C]` on the backend, in its element type.
pub fn upload_batch<B: Backend>(be: &B, batch: &crate::data::loader::Batch) -> B::Buf {
    let x: Vec<B::Elem> = batch.x.iter().map(|&v| B::Elem::of(v as f64)).collect();
    be.upload(&x)
}

/// Evaluation-mode prediction logits for one batch (an assembly's: its fused head).
pub fn eval_logits<B: Backend>(be: &B, model: &mut dyn Recognizer<B>, x: &B::Buf, dims: DataDims) -> Result<Vec<f64>> {
    let logits = model.logits(be, x, dims, false, 0)?;
    Ok(be.download(&logits).into_iter().map(Scalar::as_f64).collect())
}

/// Mean softmax cross-entropy of host logits `[n, classes]` (for validation loss).
pub fn cross_entropy_host(logits: &[f64], labels: &[u32], classes: usize) -> f64 {
    let n = labels.len();
    let total: f64 = logits
        .chunks(classes)
        .zip(labels)
        .map(|(row, &l)| {
            let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + row.iter().map(|&z| (z - max).exp()).sum::<f64>().ln();
            lse - row[l as usize]
        })
        .sum();
    total / n as f64
}
