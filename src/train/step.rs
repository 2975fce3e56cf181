//! One training step and one evaluation pass, independent of where the data comes from.

use crate::backend::{Backend, Scalar};
use crate::layers::{params_of, Entry};
use crate::model::recognizer::{zero_grad, Objective};
use crate::model::stgcn::DataDims;
use crate::model::Recognizer;
use crate::nvtx;
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
    let out = step_ops(be, model, sgd, x, labels, dims, label_smoothing, seed)?;
    step_output(be, &out)
}

/// The device work of a step, with no read-back: what a step graph records.
#[allow(clippy::too_many_arguments)]
fn step_ops<B: Backend>(
    be: &B,
    model: &mut dyn Recognizer<B>,
    sgd: &mut Sgd<B>,
    x: &B::Buf,
    labels: &B::IdxBuf,
    dims: DataDims,
    label_smoothing: f64,
    seed: u64,
) -> Result<Objective<B>> {
    let _step = nvtx::range(|| "train_step".into());
    zero_grad(be, model);
    let out = model.objective(be, x, labels, dims, label_smoothing, seed)?;
    {
        let _r = nvtx::range(|| "optimizer".into());
        let mut params: Vec<_> = params_of(model).into_iter().map(|(_, p)| p).collect();
        sgd.step(be, &mut params);
    }
    Ok(out)
}

/// Checks the step's ops and reads its loss and logits back.
fn step_output<B: Backend>(be: &B, out: &Objective<B>) -> Result<StepOutput> {
    be.check()?;
    Ok(StepOutput {
        loss: be.download(&out.loss)[0].as_f64(),
        logits: be.download(&out.logits).into_iter().map(Scalar::as_f64).collect(),
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
    /// The batch the graph reads: each step's clips and labels are copied in before it runs, so
    /// the caller's buffers may change from step to step.
    inputs: (B::Buf, B::IdxBuf),
    /// The loss and logits buffers the graph writes (allocated during recording, valid from replay
    /// to replay).
    out: Objective<B>,
}

/// Copies a step's clips and labels into the buffers a recorded graph reads.
fn copy_in<B: Backend>(be: &B, x: &B::Buf, labels: &B::IdxBuf, inputs: &mut (B::Buf, B::IdxBuf)) {
    be.copy(x, &mut inputs.0);
    be.copy_idx(labels, &mut inputs.1);
}

impl<B: Backend> StepGraph<B> {
    pub fn new(model: &dyn Recognizer<B>) -> Self {
        let cfg = model.config();
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
        model: &mut dyn Recognizer<B>,
        sgd: &mut Sgd<B>,
        x: &B::Buf,
        labels: &B::IdxBuf,
        dims: DataDims,
        label_smoothing: f64,
        seed: u64,
    ) -> Result<StepOutput> {
        let graphed = self.eager_reason.is_none() && sgd.steps_taken() > 0;
        let record = match &mut self.recorded {
            Some(r) if graphed && r.dims == dims => {
                let _r = nvtx::range(|| "train_step (graph replay)".into());
                copy_in(be, x, labels, &mut r.inputs);
                be.replay(&r.graph);
                sgd.count_replayed_step();
                count_replayed_batch(model);
                return step_output(be, &r.out);
            }
            // an odd batch (an epoch's last) runs eagerly, keeping the graph of the usual one
            Some(_) => false,
            None => {
                graphed && {
                    // compressed weights of changed fixed masks are built now: a recording cannot read back
                    for (_, backbone) in model.backbones_mut() {
                        backbone.prepare_fixed_masks(be);
                    }
                    true
                }
            }
        };
        // the graph's own input buffers, filled before the recording starts
        let inputs = record.then(|| {
            let mut inputs = (be.zeros(be.buf_len(x)), be.upload_idx(&vec![0; dims[0]]));
            copy_in(be, x, labels, &mut inputs);
            inputs
        });
        let Some(inputs) = inputs.filter(|_| be.begin_capture()) else {
            be.check()?;
            return train_step(be, model, sgd, x, labels, dims, label_smoothing, seed);
        };
        let recorded = step_ops(be, model, sgd, &inputs.0, &inputs.1, dims, label_smoothing, seed);
        let graph = be.end_capture();
        let out = recorded?;
        be.check()?;
        let Some(graph) = graph else {
            return Err(crate::Error::Cuda(
                "recording the training step produced no graph".into(),
            ));
        };
        // recording ran nothing: this step's work is the first replay
        be.replay(&graph);
        let host = step_output(be, &out)?;
        self.recorded = Some(Recorded {
            graph,
            dims,
            inputs,
            out,
        });
        Ok(host)
    }
}

/// Advances every `num_batches_tracked` counter as a training-mode forward would have.
fn count_replayed_batch<B: Backend>(model: &mut dyn Recognizer<B>) {
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

/// Evaluation-mode prediction logits for one batch (an assembly's: its fused head).
pub fn eval_logits<B: Backend>(be: &B, model: &mut dyn Recognizer<B>, x: &B::Buf, dims: DataDims) -> Result<Vec<f64>> {
    let logits = model.logits(be, x, dims, false, 0)?;
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
