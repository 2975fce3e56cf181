//! One training step and one evaluation pass, independent of where the data comes from.

use crate::backend::{Backend, Scalar};
use crate::layers::params_of;
use crate::model::stgcn::DataDims;
use crate::model::Stgcn;
use crate::nvtx;
use crate::optim::Sgd;
use crate::Result;

/// What a training step leaves on the host.
pub struct StepOutput {
    pub loss: f64,
    /// Logits `[n, classes]` (for running accuracy).
    pub logits: Vec<f64>,
}

/// Buffers reused across steps for the loss and its gradient.
pub struct LossBuffers<B: Backend> {
    loss: B::Buf,
    dlogits: B::Buf,
}

impl<B: Backend> LossBuffers<B> {
    pub fn new(be: &B) -> Self {
        Self {
            loss: be.zeros(1),
            dlogits: be.zeros(0),
        }
    }
}

/// Forward, loss, backward and an optimizer step on one batch. `seed` draws this step's dropout.
#[allow(clippy::too_many_arguments)]
pub fn train_step<B: Backend>(
    be: &B,
    model: &mut Stgcn<B>,
    sgd: &mut Sgd<B>,
    bufs: &mut LossBuffers<B>,
    x: &B::Buf,
    labels: &B::IdxBuf,
    dims: DataDims,
    label_smoothing: f64,
    seed: u64,
) -> Result<StepOutput> {
    let n = dims[0];
    let classes = model.config.num_classes;
    let _step = nvtx::range(|| "train_step".into());
    model.zero_grad(be);
    let logits = {
        let _r = nvtx::range(|| "forward".into());
        model.forward(be, x, dims, true, seed)?
    };
    if be.buf_len(&bufs.dlogits) != n * classes {
        bufs.dlogits = be.zeros(n * classes);
    }
    be.cross_entropy(
        n,
        classes,
        &logits,
        labels,
        label_smoothing,
        &mut bufs.loss,
        &mut bufs.dlogits,
    );
    {
        let _r = nvtx::range(|| "backward".into());
        model.backward(be, &bufs.dlogits);
    }
    {
        let _r = nvtx::range(|| "optimizer".into());
        let mut params: Vec<_> = params_of(model).into_iter().map(|(_, p)| p).collect();
        sgd.step(be, &mut params);
    }
    be.check()?;
    Ok(StepOutput {
        loss: be.download(&bufs.loss)[0].as_f64(),
        logits: be.download(&logits).into_iter().map(Scalar::as_f64).collect(),
    })
}

/// A batch's clips `[N, M, T, V, C]` and labels `[N]` on the backend, in device buffers reused from
/// step to step (through pinned memory on a GPU); reallocated only when the batch's size changes.
pub struct BatchBuffers<B: Backend> {
    host: Vec<B::Elem>,
    x: Option<B::Buf>,
    /// The label buffer and its length.
    labels: Option<(B::IdxBuf, usize)>,
}

impl<B: Backend> Default for BatchBuffers<B> {
    fn default() -> Self {
        Self {
            host: Vec::new(),
            x: None,
            labels: None,
        }
    }
}

impl<B: Backend> BatchBuffers<B> {
    /// Copies `batch` to the device; returns its clips and labels there.
    pub fn upload(&mut self, be: &B, batch: &crate::data::loader::Batch) -> (&B::Buf, &B::IdxBuf) {
        self.host.clear();
        self.host.extend(batch.x.iter().map(|&v| B::Elem::of(v as f64)));
        let x = match self.x.take() {
            Some(buf) if be.buf_len(&buf) == self.host.len() => buf,
            _ => be.zeros(self.host.len()),
        };
        let x = self.x.insert(x);
        be.upload_into(&self.host, x);
        let n = batch.labels.len();
        let labels = match self.labels.take() {
            Some((buf, len)) if len == n => buf,
            _ => be.upload_idx(&vec![0; n]),
        };
        let (labels, _) = self.labels.insert((labels, n));
        be.upload_idx_into(&batch.labels, labels);
        (x, labels)
    }
}

/// Evaluation-mode logits for one batch.
pub fn eval_logits<B: Backend>(be: &B, model: &mut Stgcn<B>, x: &B::Buf, dims: DataDims) -> Result<Vec<f64>> {
    let logits = model.forward(be, x, dims, false, 0)?;
    be.check()?;
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
