//! The optimizer: SGD with PyTorch's semantics and a cosine learning-rate schedule, both evaluated by
//! the backend (on the GPU: from a device step counter, so a captured step needs no host update).

use crate::backend::{Backend, CosineSchedule, SgdHyper};
use crate::layers::Param;

/// SGD over a fixed, ordered list of parameters, with optional global-norm gradient clipping.
pub struct Sgd<B: Backend> {
    pub hyper: SgdHyper,
    pub schedule: CosineSchedule,
    /// Clip the global gradient norm to this value (`torch.nn.utils.clip_grad_norm_`).
    pub max_grad_norm: Option<f64>,
    /// One momentum buffer per parameter, in the parameters' order.
    momentum: Vec<B::Buf>,
    /// Optimizer steps taken (on the device).
    step: B::IdxBuf,
    /// Host mirror of `step` (the host issues every step, so it never needs a read-back).
    steps_taken: u64,
    lr: B::Buf,
    sq_norm: B::Buf,
    clip: B::Buf,
}

impl<B: Backend> Sgd<B> {
    pub fn new(
        be: &B,
        hyper: SgdHyper,
        schedule: CosineSchedule,
        max_grad_norm: Option<f64>,
        param_lens: &[usize],
    ) -> Self {
        Self {
            hyper,
            schedule,
            max_grad_norm,
            momentum: param_lens.iter().map(|&n| be.zeros(n)).collect(),
            step: be.upload_idx(&[0]),
            steps_taken: 0,
            lr: be.zeros(1),
            sq_norm: be.zeros(1),
            clip: be.zeros(1),
        }
    }

    /// Optimizer steps taken so far.
    pub fn steps_taken(&self) -> u64 {
        self.steps_taken
    }

    /// The learning rate the next step will use (host-side evaluation of the same schedule).
    pub fn next_lr(&self) -> f64 {
        self.schedule.lr_at(self.steps_taken)
    }

    /// One update of `params` (in the order given at construction) from their gradients.
    pub fn step(&mut self, be: &B, params: &mut [&mut Param<B>]) {
        assert_eq!(
            params.len(),
            self.momentum.len(),
            "SGD built for a different parameter list"
        );
        be.cosine_lr(&self.schedule, &self.step, &mut self.lr);
        let mut values = Vec::with_capacity(params.len());
        let mut grads = Vec::with_capacity(params.len());
        for p in params.iter_mut() {
            let Param { value, grad, .. } = &mut **p;
            values.push(value);
            grads.push(&*grad);
        }
        let scale = match self.max_grad_norm {
            Some(max_norm) => {
                be.sum_squares(&grads, &mut self.sq_norm);
                be.clip_scale(&self.sq_norm, max_norm, &mut self.clip);
                Some(&self.clip)
            }
            None => None,
        };
        let mut momentum: Vec<&mut B::Buf> = self.momentum.iter_mut().collect();
        be.sgd_step(
            &mut values,
            &grads,
            &mut momentum,
            &self.hyper,
            &self.lr,
            scale,
            self.steps_taken == 0,
        );
        be.increment_step(&mut self.step);
        self.steps_taken += 1;
    }

    /// Counts a step that a replayed graph took on the device (the graph advanced the device
    /// counter; this keeps the host's mirror in step).
    pub fn count_replayed_step(&mut self) {
        self.steps_taken += 1;
    }

    /// The momentum buffers, in parameter order (for checkpoints).
    pub fn momentum_buffers(&mut self) -> &mut [B::Buf] {
        &mut self.momentum
    }

    /// Restores the step counter (after loading momentum buffers from a checkpoint).
    pub fn set_steps_taken(&mut self, be: &B, steps: u64) {
        self.steps_taken = steps;
        self.step = be.upload_idx(&[steps as u32]);
    }
}
