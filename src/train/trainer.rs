//! The training loop: epochs over the loader, evaluation, metrics, checkpoints and resume.
//!
//! Everything that decides a run's numbers (shuffling, augmentation, dropout, initialisation) is
//! seeded from the configuration and the position in the run, and the CPU backend's reductions have
//! a fixed order, so a run resumed from a checkpoint ends with the same weights as one never stopped.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::checkpoint::{CheckpointDir, NamedTensor, TensorData};
use super::config::TrainConfig;
use super::metrics::{topk_correct, EpochMetrics, MetricsLog};
use super::model::{build_model, set_sparsities};
use super::progress::EpochProgress;
use super::step::{cross_entropy_host, eval_logits, BatchBuffers, StepGraph};
use crate::backend::select::precision_of;
use crate::backend::{Backend, Scalar};
use crate::data::loader::BatchLoader;
use crate::data::ClipDataset;
use crate::layers::{load_state, params_of, Entry};
use crate::model::Recognizer;
use crate::nvtx;
use crate::optim::Sgd;
use crate::{Error, Result};

/// Where a run is, as saved in every checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunState {
    pub config: TrainConfig,
    /// The epoch to run next and the batch within it to start from.
    pub epoch: usize,
    pub batch: usize,
    /// Optimizer steps taken.
    pub step: u64,
    /// The loss and accuracy accumulated so far in the current epoch.
    pub epoch_loss_sum: f64,
    pub epoch_correct: u64,
    pub epoch_samples: u64,
    pub epoch_seconds: f64,
    pub last_finite_loss: f64,
    /// What the run computes in, as `--precision` names it (`bf16`: f32 tensors, bf16 conv operands).
    pub precision: String,
}

/// How to run (not part of the model's numbers).
pub struct RunOptions {
    pub run_dir: PathBuf,
    pub resume: bool,
    /// Stop after this many optimizer steps (for tests and profiling), saving a checkpoint first.
    pub max_steps: Option<u64>,
    pub quiet: bool,
    /// Start from this model state (weights, buffers and fixed masks, e.g. a rewound lottery
    /// ticket) instead of a fresh initialisation.
    pub init_state: Option<Vec<NamedTensor>>,
    /// Optimizer steps inside the profiler's capture range (`--profile-steps A..B`).
    pub profile_steps: Option<crate::nvtx::ProfileSteps>,
}

/// What a finished run reports.
#[derive(Clone, Debug)]
pub struct Summary {
    pub metrics: Vec<EpochMetrics>,
    pub final_checkpoint: PathBuf,
}

/// The model's state (weights, buffers, every expert's scores and masks) and the optimizer's
/// momentum as named tensors.
pub fn export_state<B: Backend>(be: &B, model: &mut dyn Recognizer<B>, sgd: &mut Sgd<B>) -> Vec<NamedTensor> {
    let to_data = |buf: &B::Buf| {
        let host = be.download(buf);
        if B::Elem::NAME == "f64" {
            TensorData::F64(host.iter().map(|x| x.as_f64()).collect())
        } else {
            TensorData::F32(host.iter().map(|x| x.as_f64() as f32).collect())
        }
    };
    let mut tensors = Vec::new();
    let mut names = Vec::new();
    let mut entries = Vec::new();
    model.entries("", &mut entries);
    for entry in entries {
        match entry {
            Entry::Param(name, p) => {
                tensors.push(NamedTensor::new(&name, &p.shape, to_data(&p.value)));
                names.push((name, p.shape.clone()));
            }
            Entry::Buffer(name, b) => tensors.push(NamedTensor::new(&name, &b.shape, to_data(&b.value))),
            Entry::Counter(name, c) => tensors.push(NamedTensor::new(&name, &[], TensorData::I64(vec![*c]))),
        }
    }
    for ((name, shape), buf) in names.iter().zip(sgd.momentum_buffers().iter()) {
        tensors.push(NamedTensor::new(
            &format!("optimizer.momentum.{name}"),
            shape,
            to_data(buf),
        ));
    }
    tensors
}

/// Loads a model's state (and, when given, the optimizer's momentum) from named tensors.
pub fn import_state<B: Backend>(
    be: &B,
    tensors: &[NamedTensor],
    model: &mut dyn Recognizer<B>,
    sgd: Option<&mut Sgd<B>>,
    origin: &Path,
) -> Result<()> {
    let find = |name: &str, len: usize| -> Result<Vec<f64>> {
        let t = tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| Error::format(origin, format!("missing tensor '{name}'")))?;
        let values = t.data.to_f64();
        if values.len() != len {
            return Err(Error::format(
                origin,
                format!("tensor '{name}' has shape {:?}, expected {len} values", t.shape),
            ));
        }
        Ok(values)
    };
    load_state(be, model, find)?;
    if let Some(sgd) = sgd {
        let names: Vec<(String, usize)> = params_of(model).into_iter().map(|(n, p)| (n, p.len())).collect();
        for ((name, len), buf) in names.iter().zip(sgd.momentum_buffers().iter_mut()) {
            let host: Vec<B::Elem> = find(&format!("optimizer.momentum.{name}"), *len)?
                .into_iter()
                .map(B::Elem::of)
                .collect();
            *buf = be.upload(&host);
        }
    }
    Ok(())
}

/// Top-1/top-5 accuracy and loss of `model`'s prediction (an assembly's fused head) on a dataset,
/// in evaluation mode.
pub fn evaluate<B: Backend>(
    be: &B,
    model: &mut dyn Recognizer<B>,
    data: Arc<dyn ClipDataset>,
    batch_size: usize,
    workers: usize,
) -> Result<(f64, f64, f64)> {
    let loader = BatchLoader::new(data.clone(), batch_size, false, false, 0, workers);
    let classes = model.config().num_classes;
    let (mut loss, mut top1, mut top5, mut seen) = (0.0, 0usize, 0usize, 0usize);
    let mut inputs = BatchBuffers::default();
    for batch in loader.epoch(0, 0) {
        let batch = batch?;
        let logits = eval_logits(be, model, inputs.upload(be, &batch).0, batch.dims())?;
        loss += cross_entropy_host(&logits, &batch.labels, classes) * batch.n as f64;
        top1 += topk_correct(&logits, classes, &batch.labels, 1);
        top5 += topk_correct(&logits, classes, &batch.labels, 5.min(classes));
        seen += batch.n;
    }
    let seen_f = seen.max(1) as f64;
    Ok((loss / seen_f, top1 as f64 / seen_f, top5 as f64 / seen_f))
}

/// An out-of-memory error with the batch size that fits the device, estimated from what a sample
/// keeps for the backward (`ModelCost`'s activations: outputs, their gradients and the copies
/// BN and ReLU keep, about three f32 values per activation) and what the parameters need (value,
/// gradient, momentum and mask score: four f32 each), within 90% of the device's memory.
pub fn with_batch_hint(e: Error, cfg: &TrainConfig) -> Error {
    let Error::DeviceMemory {
        requested_mib,
        free_mib,
        total_mib,
        ..
    } = e
    else {
        return e;
    };
    let cost = crate::bench::count::ModelCost::of(&cfg.model, cfg.clip_len);
    let per_sample = (cost.activations() * 3 * 4).max(1);
    let params = cost.params() * 4 * 4;
    let usable = (total_mib as u64 * (1 << 20)) * 9 / 10;
    let fits = usable.saturating_sub(params) / per_sample;
    let hint = format!(
        "; batch {} needs about {} MiB of activations (estimated), a batch of about {} fits: use --batch-size {}",
        cfg.batch_size,
        (per_sample * cfg.batch_size as u64) >> 20,
        fits,
        fits.max(1)
    );
    Error::DeviceMemory {
        requested_mib,
        free_mib,
        total_mib,
        hint,
    }
}

/// Trains `cfg` on `be`, writing metrics, plots and checkpoints into `opts.run_dir`.
pub fn train<B: Backend>(
    be: &B,
    cfg: &TrainConfig,
    train_data: Arc<dyn ClipDataset>,
    val_data: Arc<dyn ClipDataset>,
    opts: &RunOptions,
) -> Result<Summary> {
    cfg.validate()?;
    let shape = train_data.clip_shape();
    if shape.frames != cfg.clip_len {
        return Err(Error::config(format!(
            "dataset clips have {} frames, config says {}",
            shape.frames, cfg.clip_len
        )));
    }
    let workers = cfg.data.workers;
    let loader = BatchLoader::new(train_data.clone(), cfg.batch_size, true, true, cfg.seed, workers);
    let iters = loader.batches_per_epoch();
    if iters == 0 {
        return Err(Error::config(format!(
            "the training set has {} samples, fewer than one batch of {}",
            train_data.len(),
            cfg.batch_size
        )));
    }
    let mut model = build_model(be, cfg)?;
    let model = model.as_mut();
    if let Some(init) = &opts.init_state {
        crate::sparse::lottery::attach_fixed_masks(be, model, init);
        import_state(be, init, model, None, &opts.run_dir)?;
    }
    let lens: Vec<usize> = params_of(model).into_iter().map(|(_, p)| p.len()).collect();
    let mut sgd = Sgd::new(be, cfg.sgd(), cfg.schedule(iters), cfg.max_grad_norm, &lens);
    let ckpts = CheckpointDir::new(&opts.run_dir.join("checkpoints"), cfg.keep_checkpoints.max(1))?;
    let metrics_path = opts.run_dir.join("metrics.jsonl");

    let mut state = RunState {
        config: cfg.clone(),
        epoch: 0,
        batch: 0,
        step: 0,
        epoch_loss_sum: 0.0,
        epoch_correct: 0,
        epoch_samples: 0,
        epoch_seconds: 0.0,
        last_finite_loss: f64::NAN,
        precision: precision_of(be).to_string(),
    };
    if opts.resume {
        if let Some(path) = ckpts.latest()? {
            let (tensors, json) = super::checkpoint::load_checkpoint(&path)?;
            let saved: RunState =
                serde_json::from_value(json).map_err(|e| Error::format(&path, format!("checkpoint state: {e}")))?;
            // before the configuration (which names the requested precision too), so that the
            // error says what differs
            if saved.precision != state.precision {
                return Err(Error::config(format!(
                    "{} was written by a {} run, and this run computes in {}; resume with --precision {}",
                    path.display(),
                    saved.precision,
                    state.precision,
                    saved.precision
                )));
            }
            if saved.config != *cfg {
                return Err(Error::config(format!(
                    "{} was written with a different configuration; resume with the same settings (see {}.json)",
                    path.display(),
                    path.display()
                )));
            }
            import_state(be, &tensors, model, Some(&mut sgd), &path)?;
            sgd.set_steps_taken(be, saved.step);
            state = saved;
            if !opts.quiet {
                eprintln!(
                    "resuming from {} (epoch {}, batch {})",
                    path.display(),
                    state.epoch + 1,
                    state.batch
                );
            }
        } else if !opts.quiet {
            eprintln!("no checkpoint in {}: starting a new run", opts.run_dir.display());
        }
    }
    let mut metrics_log = MetricsLog::open(&metrics_path, state.epoch)?;
    let interrupted = super::interrupt::install();
    let classes = cfg.model.num_classes;
    let mut inputs = BatchBuffers::default();
    let mut step_graph = StepGraph::new(model);
    if let (true, Some(why), false) = (B::ON_DEVICE, step_graph.eager_reason(), opts.quiet) {
        eprintln!("training steps run without a step graph: {why}");
    }
    let mut final_checkpoint = ckpts.latest()?.unwrap_or_default();

    while state.epoch < cfg.epochs {
        let epoch = state.epoch;
        set_sparsities(model, cfg, Some(epoch));
        // the masks' threshold ranks are part of a recorded step
        step_graph.invalidate();
        let mut progress = EpochProgress::new(epoch, cfg.epochs, iters, opts.quiet);
        let started = Instant::now();
        let seconds_before = state.epoch_seconds;
        for batch in loader.epoch(epoch, state.batch) {
            let batch = batch?;
            if let Some(p) = &opts.profile_steps {
                p.at_step(state.step);
            }
            let lr = sgd.next_lr();
            let (x, labels) = {
                let _r = nvtx::range(|| "data/upload".into());
                inputs.upload(be, &batch)
            };
            let out = step_graph
                .step(
                    be,
                    model,
                    &mut sgd,
                    x,
                    labels,
                    batch.dims(),
                    cfg.label_smoothing,
                    step_seed(cfg.seed, state.step),
                )
                .map_err(|e| with_batch_hint(e, cfg))?;
            if !out.loss.is_finite() {
                return Err(Error::NonFiniteLoss {
                    step: state.step,
                    loss: out.loss,
                    last_finite: state.last_finite_loss,
                    hint: "lower the learning rate (--lr), enable gradient clipping (max_grad_norm) or check the input data for extreme values".into(),
                });
            }
            state.last_finite_loss = out.loss;
            state.step += 1;
            state.batch += 1;
            state.epoch_loss_sum += out.loss * batch.n as f64;
            state.epoch_correct += topk_correct(&out.logits, classes, &batch.labels, 1) as u64;
            state.epoch_samples += batch.n as u64;
            state.epoch_seconds = seconds_before + started.elapsed().as_secs_f64();
            progress.update(
                state.batch,
                out.loss,
                lr,
                state.epoch_samples as f64 / state.epoch_seconds.max(1e-9),
            );

            let stop_here = opts.max_steps.is_some_and(|m| state.step >= m);
            let periodic = cfg.checkpoint_every > 0 && state.step % cfg.checkpoint_every as u64 == 0;
            if periodic || stop_here || interrupted.load(Ordering::SeqCst) {
                final_checkpoint = save(be, &ckpts, model, &mut sgd, &state)?;
            }
            if interrupted.load(Ordering::SeqCst) {
                progress.finish();
                eprintln!(
                    "interrupted: state saved to {}; continue with --resume",
                    final_checkpoint.display()
                );
                return Err(Error::Interrupted);
            }
            if stop_here {
                progress.finish();
                return Ok(Summary {
                    metrics: metrics_log.history().to_vec(),
                    final_checkpoint,
                });
            }
        }
        progress.finish();
        set_sparsities(model, cfg, None);
        let (val_loss, val_top1, val_top5) = evaluate(be, model, val_data.clone(), cfg.batch_size, workers)?;
        let samples = state.epoch_samples.max(1) as f64;
        let m = EpochMetrics {
            epoch: epoch + 1,
            iterations: state.step,
            train_loss: state.epoch_loss_sum / samples,
            train_top1: state.epoch_correct as f64 / samples,
            val_loss,
            val_top1,
            val_top5,
            lr: sgd.next_lr(),
            samples_per_sec: samples / state.epoch_seconds.max(1e-9),
            seconds: state.epoch_seconds,
        };
        if !opts.quiet {
            eprintln!("{}", m.summary_line(cfg.epochs));
        }
        metrics_log.append(&m)?;
        super::plot::plot_training_curves(metrics_log.history(), &opts.run_dir.join("curves.svg"))?;
        state.epoch += 1;
        state.batch = 0;
        state.epoch_loss_sum = 0.0;
        state.epoch_correct = 0;
        state.epoch_samples = 0;
        state.epoch_seconds = 0.0;
        final_checkpoint = save(be, &ckpts, model, &mut sgd, &state)?;
    }
    Ok(Summary {
        metrics: metrics_log.history().to_vec(),
        final_checkpoint,
    })
}

fn save<B: Backend>(
    be: &B,
    ckpts: &CheckpointDir,
    model: &mut dyn Recognizer<B>,
    sgd: &mut Sgd<B>,
    state: &RunState,
) -> Result<PathBuf> {
    let tensors = export_state(be, model, sgd);
    let json = serde_json::to_value(state).expect("run state serialises");
    ckpts.save(&format!("e{:03}-s{:07}", state.epoch, state.step), &tensors, &json)
}

/// The dropout seed of optimizer step `step`.
fn step_seed(seed: u64, step: u64) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ step.wrapping_mul(0xD1B5_4A32_D192_ED03)
}
