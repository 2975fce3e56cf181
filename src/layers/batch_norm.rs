//! Batch normalisation over `[n, c, s]` (BatchNorm1d with s = T, BatchNorm2d with s = T·V), with
//! PyTorch's defaults: eps 1e-5, momentum 0.1, affine, running statistics.

use super::{join, Buffer, Entry, Module, Param};
use crate::backend::{Backend, BnEpilogue, BnEval, BnGeom};

pub struct BatchNorm<B: Backend> {
    pub channels: usize,
    pub eps: f64,
    pub momentum: f64,
    pub weight: Param<B>,
    pub bias: Param<B>,
    pub running_mean: Buffer<B>,
    pub running_var: Buffer<B>,
    pub num_batches_tracked: i64,
    /// Batch statistics of the last training forward: (mean, 1/sqrt(var + eps)), each `[c]`.
    saved: Option<(B::Buf, B::Buf)>,
}

impl<B: Backend> BatchNorm<B> {
    pub fn new(be: &B, channels: usize, eps: f64, momentum: f64) -> Self {
        Self {
            channels,
            eps,
            momentum,
            weight: Param::new(be, &[channels], &vec![1.0; channels]),
            bias: Param::new(be, &[channels], &vec![0.0; channels]),
            running_mean: Buffer::new(be, &[channels], &vec![0.0; channels]),
            running_var: Buffer::new(be, &[channels], &vec![1.0; channels]),
            num_batches_tracked: 0,
            saved: None,
        }
    }

    fn geom(&self, n: usize, s: usize) -> BnGeom {
        BnGeom {
            n,
            c: self.channels,
            s,
            eps: self.eps,
            momentum: self.momentum,
        }
    }

    /// x: `[n, c, s]` → y = `epilogue(bn(x))`: `[n, c, s]`. Training mode uses batch statistics and
    /// updates the running ones; evaluation mode uses the running statistics. `stats` are x's batch
    /// statistics when the op that wrote x gathered them (training mode only reads them).
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &mut self,
        be: &B,
        x: &B::Buf,
        stats: Option<&B::BnStats>,
        n: usize,
        s: usize,
        train: bool,
        epilogue: BnEpilogue<'_, B::Buf>,
    ) -> B::Buf {
        let g = self.geom(n, s);
        let mut y = be.activation(g.len());
        if train {
            let mut mean = be.zeros(self.channels);
            let mut invstd = be.zeros(self.channels);
            be.batch_norm_train(
                &g,
                x,
                stats,
                epilogue,
                &self.weight.value,
                &self.bias.value,
                &mut self.running_mean.value,
                &mut self.running_var.value,
                &mut y,
                &mut mean,
                &mut invstd,
            );
            self.num_batches_tracked += 1;
            self.saved = Some((mean, invstd));
        } else {
            be.batch_norm_eval(
                &g,
                x,
                epilogue,
                &self.weight.value,
                &self.bias.value,
                &self.running_mean.value,
                &self.running_var.value,
                &mut y,
            );
            self.saved = None;
        }
        y
    }

    /// The parameters of an evaluation-mode forward that the op producing the input applies in its
    /// epilogue (`conv_t_forward_bn_eval`, `graph_forward_bn_eval`): this forward then is that
    /// op's, so, as `forward` in evaluation mode, it drops the last training forward's statistics.
    pub fn fused_eval(&mut self) -> BnEval<'_, B::Buf> {
        self.saved = None;
        BnEval {
            gamma: &self.weight.value,
            beta: &self.bias.value,
            running_mean: &self.running_mean.value,
            running_var: &self.running_var.value,
            eps: self.eps,
        }
    }

    /// Values the last training forward keeps for the backward (the batch statistics).
    pub fn saved_for_backward(&self, be: &B) -> usize {
        self.saved.as_ref().map_or(0, |(m, s)| be.buf_len(m) + be.buf_len(s))
    }

    /// Backward of the last training forward (whose input was `x`): accumulates dγ, dβ, returns dx.
    /// `relu_output` is that forward's output when its epilogue had the ReLU: `dy` (the gradient
    /// of that output) is then masked by it on the fly.
    pub fn backward(
        &mut self,
        be: &B,
        x: &B::Buf,
        dy: &B::Buf,
        relu_output: Option<&B::Buf>,
        n: usize,
        s: usize,
    ) -> B::Buf {
        let g = self.geom(n, s);
        let (mean, invstd) = self
            .saved
            .as_ref()
            .expect("BatchNorm::backward without a training forward");
        let mut dx = be.activation(g.len());
        be.batch_norm_backward(
            &g,
            x,
            dy,
            relu_output,
            &self.weight.value,
            mean,
            invstd,
            &mut dx,
            &mut self.weight.grad,
            &mut self.bias.grad,
        );
        dx
    }
}

/// `y = epilogue(y)` in separate passes (`add_assign`, `relu_forward`): for an output that is
/// changed between the BN and its epilogue (dropout) or kept before it.
pub fn apply_epilogue<B: Backend>(be: &B, epilogue: BnEpilogue<'_, B::Buf>, y: &mut B::Buf) {
    if let Some(r) = epilogue.residual {
        be.add_assign(y, r);
        be.round_to_storage(y);
    }
    if epilogue.relu {
        be.relu_forward(y);
    }
}

impl<B: Backend> Module<B> for BatchNorm<B> {
    fn entries<'a>(&'a mut self, prefix: &str, out: &mut Vec<Entry<'a, B>>) {
        out.push(Entry::Param(join(prefix, "weight"), &mut self.weight));
        out.push(Entry::Param(join(prefix, "bias"), &mut self.bias));
        out.push(Entry::Buffer(join(prefix, "running_mean"), &mut self.running_mean));
        out.push(Entry::Buffer(join(prefix, "running_var"), &mut self.running_var));
        out.push(Entry::Counter(
            join(prefix, "num_batches_tracked"),
            &mut self.num_batches_tracked,
        ));
    }
}
