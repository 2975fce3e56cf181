//! One training step and one evaluation pass, independent of where the data comes from.

use crate::backend::{Backend, Scalar};
use crate::layers::{params_of, Entry, Module};
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
    let logits = step_ops(be, model, sgd, bufs, x, labels, dims, label_smoothing, seed)?;
    step_output(be, bufs, &logits)
}

/// The device work of a step, with no read-back: what a step graph records. Returns the logits.
#[allow(clippy::too_many_arguments)]
fn step_ops<B: Backend>(
    be: &B,
    model: &mut Stgcn<B>,
    sgd: &mut Sgd<B>,
    bufs: &mut LossBuffers<B>,
    x: &B::Buf,
    labels: &B::IdxBuf,
    dims: DataDims,
    label_smoothing: f64,
    seed: u64,
) -> Result<B::Buf> {
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
    Ok(logits)
}

/// Checks the step's ops and reads its loss and logits back.
fn step_output<B: Backend>(be: &B, bufs: &LossBuffers<B>, logits: &B::Buf) -> Result<StepOutput> {
    be.check()?;
    Ok(StepOutput {
        loss: be.download(&bufs.loss)[0].as_f64(),
        logits: be.download(logits).into_iter().map(Scalar::as_f64).collect(),
    })
}

/// The training step recorded once as a graph and replayed (on the GPU): one launch per step
/// instead of hundreds, and nothing in the step waits for the host. Everything a step reads is
/// already on the device (inputs in reused buffers, the learning rate from a device step counter);
/// what the host keeps (the optimizer's step count, BN's `num_batches_tracked`) is advanced here
/// on each replay. A step with other batch dimensions runs eagerly; `invalidate` (at an epoch
/// start, when the sparsity may change) makes the next step record anew. Steps run eagerly where
/// the backend has no graphs, before the first optimizer step (which initialises the momentum),
/// with dropout (its mask is drawn from a per-step seed, which a graph would freeze), or with
/// `LEANGCN_CUDA_GRAPH=0`.
pub struct StepGraph<B: Backend> {
    recorded: Option<Recorded<B>>,
    /// Why steps run eagerly, when they always will.
    eager_reason: Option<String>,
}

struct Recorded<B: Backend> {
    graph: B::Graph,
    dims: DataDims,
    /// The logits buffer the graph writes (allocated during recording, valid from replay to replay).
    logits: B::Buf,
}

impl<B: Backend> StepGraph<B> {
    pub fn new(model: &Stgcn<B>) -> Self {
        let cfg = &model.config;
        let eager_reason = if !B::ON_DEVICE {
            Some("this backend has no graphs".to_string())
        } else if std::env::var("LEANGCN_CUDA_GRAPH").is_ok_and(|v| v == "0") {
            Some("LEANGCN_CUDA_GRAPH=0".to_string())
        } else if cfg.tcn_dropout > 0.0 || cfg.head_dropout > 0.0 {
            Some("dropout draws a new mask every step".to_string())
        } else {
            None
        };
        Self {
            recorded: None,
            eager_reason,
        }
    }

    /// Why steps run eagerly, if they always will.
    pub fn eager_reason(&self) -> Option<&str> {
        self.eager_reason.as_deref()
    }

    /// Whether the next step with `dims` replays a recorded graph.
    pub fn is_recorded_for(&self, dims: DataDims) -> bool {
        self.recorded.as_ref().is_some_and(|r| r.dims == dims)
    }

    /// Forgets the recorded step: the next one records anew.
    pub fn invalidate(&mut self) {
        self.recorded = None;
    }

    /// One training step, as `train_step` computes it: replayed, recorded and run, or eager.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
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
        let graphed = self.eager_reason.is_none() && sgd.steps_taken() > 0;
        let record = match &self.recorded {
            Some(r) if graphed && r.dims == dims => {
                let _r = nvtx::range(|| "train_step (graph replay)".into());
                be.replay(&r.graph);
                sgd.count_replayed_step();
                count_replayed_batch(model);
                return step_output(be, bufs, &r.logits);
            }
            // an odd batch (an epoch's last) runs eagerly, keeping the graph of the usual one
            Some(_) => false,
            None => {
                graphed && {
                    // compressed weights of changed fixed masks are built now: a recording cannot read back
                    model.prepare_fixed_masks(be);
                    be.begin_capture()
                }
            }
        };
        if !record {
            be.check()?;
            return train_step(be, model, sgd, bufs, x, labels, dims, label_smoothing, seed);
        }
        let recorded = step_ops(be, model, sgd, bufs, x, labels, dims, label_smoothing, seed);
        let graph = be.end_capture();
        let logits = recorded?;
        be.check()?;
        let Some(graph) = graph else {
            return Err(crate::Error::Cuda(
                "recording the training step produced no graph".into(),
            ));
        };
        // recording ran nothing: this step's work is the first replay
        be.replay(&graph);
        let out = step_output(be, bufs, &logits)?;
        self.recorded = Some(Recorded { graph, dims, logits });
        Ok(out)
    }
}

/// Advances every `num_batches_tracked` counter as a training-mode forward would have.
fn count_replayed_batch<B: Backend>(model: &mut Stgcn<B>) {
    let mut entries = Vec::new();
    model.entries("", &mut entries);
    for entry in entries {
        if let Entry::Counter(_, count) = entry {
            *count += 1;
        }
    }
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
