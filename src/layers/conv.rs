//! A convolution over time with a `kt x 1` kernel: the 9x1 temporal conv, the 1x1 convs and (with
//! one frame and one joint) the linear classifier.

use super::conv_sparse::{ConvFormat, FixedMaskWeight};
use super::{join, Buffer, Entry, Module, Param};
use crate::backend::{Backend, BnEpilogue, BnEval, BnGeom, ConvGeom, GradAdd};
use crate::model::init::InitRng;

/// A 0/1 mask on a conv weight: the forward uses `W ⊙ M`.
pub enum WeightMask<B: Backend> {
    /// `M = 1[S ≥ τ]` from a learned score tensor `S` of the weight's shape (the sparse generator).
    /// Backward is the straight-through estimator: `dW = G ⊙ M`, `dS = G ⊙ W`.
    Learned { score: Param<B>, mask: Buffer<B> },
    /// A mask set from outside (lottery tickets, pruned checkpoints): `dW = G ⊙ M`.
    Fixed { mask: Buffer<B> },
}

impl<B: Backend> WeightMask<B> {
    pub fn mask(&self) -> &Buffer<B> {
        match self {
            WeightMask::Learned { mask, .. } | WeightMask::Fixed { mask } => mask,
        }
    }
    pub fn mask_mut(&mut self) -> &mut Buffer<B> {
        match self {
            WeightMask::Learned { mask, .. } | WeightMask::Fixed { mask } => mask,
        }
    }
}

pub struct Conv<B: Backend> {
    pub c_in: usize,
    pub c_out: usize,
    pub kt: usize,
    pub pad: usize,
    pub stride: usize,
    /// `[c_out, c_in, kt, 1]` (Conv2d) or `[c_out, c_in]` (Linear); memory layout `[c_out, c_in, kt]`.
    pub weight: Param<B>,
    pub bias: Option<Param<B>>,
    pub mask: Option<WeightMask<B>>,
    /// `W ⊙ M` of the last forward when masked (and computed densely).
    masked_weight: Option<B::Buf>,
    /// The compressed weight of a fixed mask, when the last forward computed from it.
    fixed: Option<FixedMaskWeight<B>>,
}

impl<B: Backend> Conv<B> {
    /// A Conv2d with a `kt x 1` kernel, `pad` frames of zero padding, temporal `stride` and a bias,
    /// initialised as PyTorch does: weight and bias ~ U(±1/sqrt(c_in·kt)).
    pub fn conv2d(be: &B, c_in: usize, c_out: usize, kt: usize, stride: usize, rng: &mut InitRng) -> Self {
        let bound = 1.0 / ((c_in * kt) as f64).sqrt();
        let weight = Param::new(be, &[c_out, c_in, kt, 1], &rng.uniform_vec(c_out * c_in * kt, bound));
        let bias = Param::new(be, &[c_out], &rng.uniform_vec(c_out, bound));
        Self {
            c_in,
            c_out,
            kt,
            pad: (kt - 1) / 2,
            stride,
            weight,
            bias: Some(bias),
            mask: None,
            masked_weight: None,
            fixed: None,
        }
    }

    /// A Linear layer `y = x Wᵀ + b` with mmcv's `normal_init(std)`: W ~ N(0, std²), b = 0.
    pub fn linear(be: &B, c_in: usize, c_out: usize, std: f64, rng: &mut InitRng) -> Self {
        let weight = Param::new(be, &[c_out, c_in], &rng.normal_vec(c_out * c_in, std));
        let bias = Param::new(be, &[c_out], &vec![0.0; c_out]);
        Self {
            c_in,
            c_out,
            kt: 1,
            pad: 0,
            stride: 1,
            weight,
            bias: Some(bias),
            mask: None,
            masked_weight: None,
            fixed: None,
        }
    }

    /// Adds a learned score tensor (mask all ones until the first threshold), initialised as the
    /// reference sparse code does: `S ~ U(±sqrt(6/fan_in))` (kaiming-uniform for ReLU).
    pub fn add_learned_mask(&mut self, be: &B, rng: &mut InitRng) {
        let n = self.weight.len();
        let bound = (6.0 / (self.c_in * self.kt) as f64).sqrt();
        let score = Param::new(be, &self.weight.shape, &rng.uniform_vec(n, bound));
        let mask = Buffer::new(be, &self.weight.shape, &vec![1.0; n]);
        self.mask = Some(WeightMask::Learned { score, mask });
    }

    /// Fixes the weight mask to `mask` (0/1 values of the weight's shape).
    pub fn set_fixed_mask(&mut self, be: &B, mask: &[f64]) {
        self.mask = Some(WeightMask::Fixed {
            mask: Buffer::new(be, &self.weight.shape, mask),
        });
    }

    /// The score tensor of a learned mask.
    pub fn score(&self) -> Option<&Param<B>> {
        match &self.mask {
            Some(WeightMask::Learned { score, .. }) => Some(score),
            _ => None,
        }
    }

    /// Recomputes a learned mask as `1[S ≥ tau[0]]`.
    pub fn apply_threshold(&mut self, be: &B, tau: &B::Buf) {
        if let Some(WeightMask::Learned { score, mask }) = &mut self.mask {
            be.threshold_mask(&score.value, tau, &mut mask.value);
            mask.mark_changed();
        }
    }

    /// Recomputes `W ⊙ M` when masked.
    fn refresh_masked_weight(&mut self, be: &B) {
        if let Some(m) = &self.mask {
            let w = self.masked_weight.get_or_insert_with(|| be.zeros(self.weight.len()));
            be.mul(&self.weight.value, &m.mask().value, w);
        }
    }

    /// The weight the conv computes with: `W ⊙ M` (as of the last forward) when masked, else `W`.
    fn weight_in_use(&self) -> &B::Buf {
        match (&self.mask, &self.masked_weight) {
            (Some(_), Some(w)) => w,
            _ => &self.weight.value,
        }
    }

    /// Builds the compressed weight of a changed fixed mask now. The forward does it too, but a
    /// step being recorded into a graph cannot (a conversion reads its entry count back), so the
    /// trainer calls this before recording.
    pub fn prepare_fixed_mask(&mut self, be: &B) {
        if let Some(WeightMask::Fixed { mask }) = &self.mask {
            let dims = [self.c_out, self.c_in, self.kt];
            FixedMaskWeight::refresh(&mut self.fixed, be, &self.weight.value, mask, dims);
        }
    }

    /// How the last forward computed (and the input gradient will): from CSR or densely.
    pub fn format(&self) -> ConvFormat {
        match self.csr() {
            Some(_) => ConvFormat::Csr,
            None => ConvFormat::Dense,
        }
    }

    pub fn geom(&self, n: usize, t_in: usize, v: usize) -> ConvGeom {
        ConvGeom {
            n,
            c_in: self.c_in,
            c_out: self.c_out,
            t_in,
            v,
            kt: self.kt,
            pad: self.pad,
            stride: self.stride,
        }
    }

    /// x: `[n, c_in, t_in, v]` → y: `[n, c_out, t_out, v]`.
    pub fn forward(&mut self, be: &B, x: &B::Buf, n: usize, t_in: usize, v: usize) -> B::Buf {
        self.forward_gathering(be, x, n, t_in, v, false).0
    }

    /// `forward`, and the batch statistics of y for the batch norm that follows, when the conv
    /// computes densely (the CSR kernels do not gather them: `None`, and the batch norm makes its
    /// own pass).
    pub fn forward_with_stats(
        &mut self,
        be: &B,
        x: &B::Buf,
        n: usize,
        t_in: usize,
        v: usize,
    ) -> (B::Buf, Option<B::BnStats>) {
        self.forward_gathering(be, x, n, t_in, v, true)
    }

    /// `epilogue(bn_eval(forward(x)))` in one op when the conv computes densely (its output is
    /// never stored); from CSR, the sparse forward and then the batch norm.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_bn_eval(
        &mut self,
        be: &B,
        x: &B::Buf,
        n: usize,
        t_in: usize,
        v: usize,
        bn: BnEval<'_, B::Buf>,
        epilogue: BnEpilogue<'_, B::Buf>,
    ) -> B::Buf {
        let g = self.geom(n, t_in, v);
        let mut y = be.activation(g.y_len());
        self.refresh_weight(be);
        let bias = self.bias.as_ref().map(|b| &b.value);
        if let Some(csr) = self.csr() {
            let mut u = be.activation(g.y_len());
            be.conv_t_forward_sparse(&g, x, csr, bias, &mut u);
            let bg = BnGeom {
                n,
                c: self.c_out,
                s: g.t_out() * v,
                eps: bn.eps,
                momentum: 0.0, // evaluation does not update the running statistics
            };
            let (gamma, beta, mean, var) = (bn.gamma, bn.beta, bn.running_mean, bn.running_var);
            be.batch_norm_eval(&bg, &u, epilogue, gamma, beta, mean, var, &mut y);
        } else {
            be.conv_t_forward_bn_eval(&g, x, self.weight_in_use(), bias, bn, epilogue, &mut y);
        }
        y
    }

    /// Brings the weight the forward computes with up to date: a fixed mask's compressed weight
    /// when the policy picks CSR (see `conv_sparse`; then [`Self::csr`] is it), else `W ⊙ M` (when
    /// masked) for the dense kernels.
    fn refresh_weight(&mut self, be: &B) {
        if let Some(WeightMask::Fixed { mask }) = &self.mask {
            let dims = [self.c_out, self.c_in, self.kt];
            if FixedMaskWeight::refresh(&mut self.fixed, be, &self.weight.value, mask, dims).is_some() {
                return;
            }
        } else {
            self.fixed = None;
        }
        self.refresh_masked_weight(be);
    }

    /// The CSR weight the last forward computed from, if the policy chose CSR for its fixed mask.
    fn csr(&self) -> Option<&B::SparseWeight> {
        self.fixed.as_ref().and_then(FixedMaskWeight::csr)
    }

    fn forward_gathering(
        &mut self,
        be: &B,
        x: &B::Buf,
        n: usize,
        t_in: usize,
        v: usize,
        gather_stats: bool,
    ) -> (B::Buf, Option<B::BnStats>) {
        let g = self.geom(n, t_in, v);
        let mut y = be.activation(g.y_len());
        self.refresh_weight(be);
        let b = self.bias.as_ref().map(|b| &b.value);
        let stats = match self.csr() {
            Some(csr) => {
                be.conv_t_forward_sparse(&g, x, csr, b, &mut y);
                None
            }
            None if gather_stats => be.conv_t_forward_with_stats(&g, x, self.weight_in_use(), b, &mut y),
            None => {
                be.conv_t_forward(&g, x, self.weight_in_use(), b, &mut y);
                None
            }
        };
        (y, stats)
    }

    /// Accumulates the weight and bias gradients and returns dx (`[n, c_in, t_in, v]`), plus `add`
    /// when given (added as dx is written; see [`GradAdd`]).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &mut self,
        be: &B,
        x: &B::Buf,
        dy: &B::Buf,
        n: usize,
        t_in: usize,
        v: usize,
        add: Option<GradAdd<'_, B::Buf>>,
    ) -> B::Buf {
        self.backward_params(be, x, dy, n, t_in, v);
        self.backward_input(be, dy, n, t_in, v, add)
    }

    /// Accumulates the weight and bias gradients only (for the first layer, whose input needs none).
    pub fn backward_params(&mut self, be: &B, x: &B::Buf, dy: &B::Buf, n: usize, t_in: usize, v: usize) {
        let g = self.geom(n, t_in, v);
        let db = self.bias.as_mut().map(|b| &mut b.grad);
        match &mut self.mask {
            None => be.conv_t_backward_weight(&g, x, dy, &mut self.weight.grad, db),
            Some(m) => {
                // G = dL/d(W ⊙ M), then the straight-through estimator
                let mut grad_eff = be.zeros(self.weight.len());
                be.conv_t_backward_weight(&g, x, dy, &mut grad_eff, db);
                be.mul_acc(&grad_eff, &m.mask().value, &mut self.weight.grad);
                if let WeightMask::Learned { score, .. } = m {
                    be.mul_acc(&grad_eff, &self.weight.value, &mut score.grad);
                }
            }
        }
    }

    /// dx (`[n, c_in, t_in, v]`) from dy, with the weight of the last forward (CSR or dense), plus
    /// `add` when given: in the pass that writes dx when dense, after it from CSR.
    pub fn backward_input(
        &self,
        be: &B,
        dy: &B::Buf,
        n: usize,
        t_in: usize,
        v: usize,
        add: Option<GradAdd<'_, B::Buf>>,
    ) -> B::Buf {
        let g = self.geom(n, t_in, v);
        let mut dx = be.activation(g.x_len());
        match (self.csr(), add) {
            (Some(csr), add) => {
                be.conv_t_backward_input_sparse(&g, dy, csr, &mut dx);
                if let Some(add) = add {
                    add.add_to(be, &mut dx);
                }
            }
            (None, Some(add)) => be.conv_t_backward_input_add(&g, dy, self.weight_in_use(), add, &mut dx),
            (None, None) => be.conv_t_backward_input(&g, dy, self.weight_in_use(), &mut dx),
        }
        dx
    }
}

impl<B: Backend> Module<B> for Conv<B> {
    fn entries<'a>(&'a mut self, prefix: &str, out: &mut Vec<Entry<'a, B>>) {
        out.push(Entry::Param(join(prefix, "weight"), &mut self.weight));
        if let Some(b) = &mut self.bias {
            out.push(Entry::Param(join(prefix, "bias"), b));
        }
        match &mut self.mask {
            None => {}
            Some(WeightMask::Learned { score, mask }) => {
                out.push(Entry::Param(join(prefix, "weight_score"), score));
                out.push(Entry::Buffer(join(prefix, "weight_mask"), mask));
            }
            Some(WeightMask::Fixed { mask }) => out.push(Entry::Buffer(join(prefix, "weight_mask"), mask)),
        }
    }
}
