//! Measurement: parameter and FLOP counts per layer ([`count`]), forward and training-step time on
//! any backend ([`time_model`]) against the step's floor on a known device ([`floor`]), the
//! per-layer report of a built model ([`report`]) and the sweep
//! over sparsity kinds, batch sizes and clip lengths behind `leangcn bench --sweep` ([`sweep`]).

pub mod count;
pub mod floor;
pub mod report;
pub mod sweep;

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::backend::{Backend, Scalar};
use crate::layers::{params_of, DataDims};
use crate::model::layer_clock::{LayerClock, LayerTime};
use crate::model::{Stgcn, StgcnConfig};
use crate::optim::Sgd;
use crate::train::step::{train_step, StepGraph};
use crate::train::trainer::{export_state, import_state};
use crate::train::TrainConfig;
use crate::Result;

/// One measurement.
#[derive(Clone, Debug, Serialize)]
pub struct Throughput {
    pub backend: String,
    pub batch: usize,
    pub clip_len: usize,
    pub persons: usize,
    pub iterations: usize,
    /// Mean seconds per forward pass (training mode) and per training step.
    pub forward_seconds: f64,
    pub step_seconds: f64,
    pub forward_samples_per_sec: f64,
    pub step_samples_per_sec: f64,
    /// Mean seconds per training step replayed from its recorded graph (device backends; what
    /// replay saves is `step_seconds - graph_step_seconds`).
    pub graph_step_seconds: Option<f64>,
    /// Mean forward and backward seconds of each layer (the data stage, each block, the head)
    /// over `iterations` training steps that wait for the backend at every layer boundary
    /// ([`LayerClock`]); empty unless asked for.
    pub layer_times: Vec<LayerTime>,
    /// The step's floor on a device with known peak rates ([`floor`]; `None` elsewhere).
    pub floor: Option<floor::StepFloor>,
    /// The device is the PTX emulator: the times are the CPU's emulation of the kernels, not a
    /// GPU's, and are not reported as throughput.
    pub emulated: bool,
}

impl Throughput {
    /// The step time set against the floor: the graph-replayed step's where there is one.
    pub fn best_step_seconds(&self) -> f64 {
        self.graph_step_seconds.unwrap_or(self.step_seconds)
    }
}

/// How often [`time_model`] runs what it times.
#[derive(Clone, Copy, Debug)]
pub struct Repeats {
    /// Untimed training steps first (allocations, caches, lazy module loads).
    pub warmup: usize,
    /// Timed passes of each kind (at least 1).
    pub iters: usize,
    /// Also time each layer, over `iters` more training steps.
    pub per_layer: bool,
}

/// Random input `[batch, persons, clip_len, joints, channels]` ~ N(0, 1) and cycling labels.
fn random_batch<B: Backend>(be: &B, cfg: &StgcnConfig, batch: usize, clip_len: usize) -> (B::Buf, B::IdxBuf, DataDims) {
    let dims = [
        batch,
        cfg.num_person,
        clip_len,
        cfg.layout.num_joints(),
        cfg.in_channels,
    ];
    let mut rng = crate::model::init::InitRng::new(1);
    let x: Vec<B::Elem> = (0..dims.iter().product()).map(|_| B::Elem::of(rng.normal())).collect();
    let labels: Vec<u32> = (0..batch).map(|i| (i % cfg.num_classes) as u32).collect();
    (be.upload(&x), be.upload_idx(&labels), dims)
}

/// Times `iters` forward passes (training mode) and `iters` full training steps (forward, loss,
/// backward, SGD with the default recipe) on random input, after `warmup` untimed steps; on a
/// device backend also `iters` graph-replayed steps, and with `per_layer` `iters` clocked steps.
/// `after_forward` sees the model right after one untimed training forward (its activations
/// still held for the backward). The model's state (weights, BN statistics, masks) is restored
/// afterwards, so measuring leaves it as it was.
pub fn time_model<B: Backend>(
    be: &B,
    model: &mut Stgcn<B>,
    batch: usize,
    clip_len: usize,
    repeats: Repeats,
    after_forward: impl FnOnce(&Stgcn<B>),
) -> Result<Throughput> {
    let (warmup, iters) = (repeats.warmup, repeats.iters.max(1));
    let (x, labels, dims) = random_batch(be, &model.config, batch, clip_len);
    model.check_input(dims)?;
    let train_cfg = TrainConfig::default();
    let mut no_optimizer = Sgd::new(be, train_cfg.sgd(), train_cfg.schedule(1), None, &[]);
    let saved_state = export_state(be, model, &mut no_optimizer);
    let lens: Vec<usize> = params_of(model).into_iter().map(|(_, p)| p.len()).collect();
    let mut sgd = Sgd::new(be, train_cfg.sgd(), train_cfg.schedule(1_000_000), None, &lens);

    for _ in 0..warmup {
        train_step(be, model, &mut sgd, &x, &labels, dims, 0.0, 0)?;
    }
    model.forward(be, &x, dims, true, 0)?;
    after_forward(model);
    be.synchronize();
    let t0 = Instant::now();
    for _ in 0..iters {
        model.forward(be, &x, dims, true, 0)?;
    }
    be.synchronize();
    let forward_seconds = t0.elapsed().as_secs_f64() / iters as f64;
    let t0 = Instant::now();
    for _ in 0..iters {
        train_step(be, model, &mut sgd, &x, &labels, dims, 0.0, 0)?;
    }
    be.synchronize();
    let step_seconds = t0.elapsed().as_secs_f64() / iters as f64;
    let mut graph = StepGraph::new(model);
    let graph_step_seconds = if graph.eager_reason().is_none() {
        // the first call records the graph (and runs it once)
        graph.step(be, model, &mut sgd, &x, &labels, dims, 0.0, 0)?;
        be.synchronize();
        let t0 = Instant::now();
        for _ in 0..iters {
            graph.step(be, model, &mut sgd, &x, &labels, dims, 0.0, 0)?;
        }
        be.synchronize();
        Some(t0.elapsed().as_secs_f64() / iters as f64)
    } else {
        None
    };
    let mut layer_times = Vec::new();
    if repeats.per_layer {
        model.backbone.clock = Some(LayerClock::default());
        let clocked: Result<()> =
            (0..iters).try_for_each(|_| train_step(be, model, &mut sgd, &x, &labels, dims, 0.0, 0).map(|_| ()));
        layer_times = model.backbone.clock.take().map_or_else(Vec::new, |c| c.mean(iters));
        clocked?;
    }
    import_state(be, &saved_state, model, None, Path::new("the measured model"))?;
    let emulated = crate::backend::cuda::device::is_emulated(&be.describe());
    let peaks = floor::datasheet_peaks(&be.describe()).filter(|_| !emulated);
    let floor = peaks.map(|peaks| {
        let bandwidth = floor::copy_bandwidth(be);
        floor::StepFloor::new(
            &model.config,
            clip_len,
            batch,
            be.conv_math(),
            be.storage(),
            peaks,
            bandwidth,
        )
    });
    Ok(Throughput {
        backend: be.describe(),
        batch,
        clip_len,
        persons: model.config.num_person,
        iterations: iters,
        forward_seconds,
        step_seconds,
        forward_samples_per_sec: batch as f64 / forward_seconds,
        step_samples_per_sec: batch as f64 / step_seconds,
        graph_step_seconds,
        layer_times,
        floor,
        emulated,
    })
}

impl std::fmt::Display for Throughput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.emulated {
            return write!(
                f,
                "{}: batch {} x {} persons, clip {}: {} iterations ran on the PTX emulator, whose times are the CPU's emulation of the kernels, not GPU times: no throughput is reported",
                self.backend, self.batch, self.persons, self.clip_len, self.iterations
            );
        }
        write!(
            f,
            "{}: batch {} x {} persons, clip {}: forward {:.1} samples/s ({:.1} ms), training step {:.1} samples/s ({:.1} ms), {} iterations",
            self.backend,
            self.batch,
            self.persons,
            self.clip_len,
            self.forward_samples_per_sec,
            self.forward_seconds * 1e3,
            self.step_samples_per_sec,
            self.step_seconds * 1e3,
            self.iterations,
        )?;
        if let Some(g) = self.graph_step_seconds {
            write!(
                f,
                "; step graph replay {:.1} samples/s ({:.1} ms, {:.2}x the eager step)",
                self.batch as f64 / g,
                g * 1e3,
                self.step_seconds / g
            )?;
        }
        if let Some(floor) = &self.floor {
            let step = self.best_step_seconds();
            write!(
                f,
                "\n{floor}; the step takes {:.2} ms, {:.0}% of the floor's speed",
                step * 1e3,
                100.0 * floor.seconds() / step
            )?;
        }
        Ok(())
    }
}
