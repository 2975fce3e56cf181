//! Measurement: parameter and FLOP counts per layer ([`count`]), and forward and training-step
//! samples per second on any backend, on random input of a given batch size and clip length.

pub mod count;

use std::time::Instant;

use serde::Serialize;

use crate::backend::{Backend, Scalar};
use crate::layers::params_of;
use crate::model::{Stgcn, StgcnConfig};
use crate::optim::Sgd;
use crate::train::step::train_step;
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
}

/// Times `iters` forward passes and `iters` full training steps (forward, loss, backward, SGD)
/// after `warmup` untimed steps.
pub fn measure<B: Backend>(
    be: &B,
    model_cfg: &StgcnConfig,
    batch: usize,
    clip_len: usize,
    warmup: usize,
    iters: usize,
) -> Result<Throughput> {
    let mut model = Stgcn::new(be, model_cfg.clone(), 0)?;
    let dims = [
        batch,
        model_cfg.num_person,
        clip_len,
        model_cfg.layout.num_joints(),
        model_cfg.in_channels,
    ];
    model.check_input(dims)?;
    let mut rng = crate::model::init::InitRng::new(1);
    let x: Vec<B::Elem> = (0..dims.iter().product()).map(|_| B::Elem::of(rng.normal())).collect();
    let x = be.upload(&x);
    let labels: Vec<u32> = (0..batch).map(|i| (i % model_cfg.num_classes) as u32).collect();
    let labels = be.upload_idx(&labels);
    let train_cfg = TrainConfig::default();
    let lens: Vec<usize> = params_of(&mut model).into_iter().map(|(_, p)| p.len()).collect();
    let mut sgd = Sgd::new(be, train_cfg.sgd(), train_cfg.schedule(1_000_000), None, &lens);

    for _ in 0..warmup {
        train_step(be, &mut model, &mut sgd, &x, &labels, dims, 0.0, 0)?;
    }
    be.synchronize();
    let t0 = Instant::now();
    for _ in 0..iters {
        model.forward(be, &x, dims, true, 0)?;
    }
    be.synchronize();
    let forward_seconds = t0.elapsed().as_secs_f64() / iters as f64;
    let t0 = Instant::now();
    for _ in 0..iters {
        train_step(be, &mut model, &mut sgd, &x, &labels, dims, 0.0, 0)?;
    }
    be.synchronize();
    let step_seconds = t0.elapsed().as_secs_f64() / iters as f64;
    Ok(Throughput {
        backend: be.describe(),
        batch,
        clip_len,
        persons: model_cfg.num_person,
        iterations: iters,
        forward_seconds,
        step_seconds,
        forward_samples_per_sec: batch as f64 / forward_seconds,
        step_samples_per_sec: batch as f64 / step_seconds,
    })
}

impl std::fmt::Display for Throughput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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
        )
    }
}
