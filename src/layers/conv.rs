//! A convolution over time with a `kt x 1` kernel: the 9x1 temporal conv, the 1x1 convs and (with
//! one frame and one joint) the linear classifier.

use super::{join, Entry, Module, Param};
use crate::backend::{Backend, ConvGeom};
use crate::model::init::InitRng;

pub struct Conv<B: Backend> {
    pub c_in: usize,
    pub c_out: usize,
    pub kt: usize,
    pub pad: usize,
    pub stride: usize,
    /// `[c_out, c_in, kt, 1]` (Conv2d) or `[c_out, c_in]` (Linear); memory layout `[c_out, c_in, kt]`.
    pub weight: Param<B>,
    pub bias: Option<Param<B>>,
}

impl<B: Backend> Conv<B> {
    /// A Conv2d with a `kt x 1` kernel, `pad` frames of zero padding, temporal `stride` and a bias,
    /// initialised as PyTorch does: weight and bias ~ U(±1/sqrt(c_in·kt)).
    pub fn conv2d(
        be: &B,
        c_in: usize,
        c_out: usize,
        kt: usize,
        stride: usize,
        rng: &mut InitRng,
    ) -> Self {
        let bound = 1.0 / ((c_in * kt) as f64).sqrt();
        let weight = Param::new(
            be,
            &[c_out, c_in, kt, 1],
            &rng.uniform_vec(c_out * c_in * kt, bound),
        );
        let bias = Param::new(be, &[c_out], &rng.uniform_vec(c_out, bound));
        Self {
            c_in,
            c_out,
            kt,
            pad: (kt - 1) / 2,
            stride,
            weight,
            bias: Some(bias),
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
    pub fn forward(&self, be: &B, x: &B::Buf, n: usize, t_in: usize, v: usize) -> B::Buf {
        let g = self.geom(n, t_in, v);
        let mut y = be.zeros(g.y_len());
        be.conv_t_forward(
            &g,
            x,
            &self.weight.value,
            self.bias.as_ref().map(|b| &b.value),
            &mut y,
        );
        y
    }

    /// Accumulates the weight and bias gradients and returns dx (`[n, c_in, t_in, v]`).
    pub fn backward(
        &mut self,
        be: &B,
        x: &B::Buf,
        dy: &B::Buf,
        n: usize,
        t_in: usize,
        v: usize,
    ) -> B::Buf {
        self.backward_params(be, x, dy, n, t_in, v);
        self.backward_input(be, dy, n, t_in, v)
    }

    /// Accumulates the weight and bias gradients only (for the first layer, whose input needs none).
    pub fn backward_params(
        &mut self,
        be: &B,
        x: &B::Buf,
        dy: &B::Buf,
        n: usize,
        t_in: usize,
        v: usize,
    ) {
        let g = self.geom(n, t_in, v);
        be.conv_t_backward_weight(
            &g,
            x,
            dy,
            &mut self.weight.grad,
            self.bias.as_mut().map(|b| &mut b.grad),
        );
    }

    pub fn backward_input(&self, be: &B, dy: &B::Buf, n: usize, t_in: usize, v: usize) -> B::Buf {
        let g = self.geom(n, t_in, v);
        let mut dx = be.zeros(g.x_len());
        be.conv_t_backward_input(&g, dy, &self.weight.value, &mut dx);
        dx
    }
}

impl<B: Backend> Module<B> for Conv<B> {
    fn entries<'a>(&'a mut self, prefix: &str, out: &mut Vec<Entry<'a, B>>) {
        out.push(Entry::Param(join(prefix, "weight"), &mut self.weight));
        if let Some(b) = &mut self.bias {
            out.push(Entry::Param(join(prefix, "bias"), b));
        }
    }
}
