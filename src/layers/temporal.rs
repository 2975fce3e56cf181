//! PYSKL's `unit_tcn`: a `kt x 1` temporal conv with padding (kt-1)/2 and a stride, BatchNorm2d and
//! dropout. With kt = 1 it is the strided residual branch of a block.

use super::batch_norm::apply_epilogue;
use super::{held, join, BatchNorm, Conv, Entry, Module};
use crate::backend::{Backend, BnEpilogue};
use crate::model::init::InitRng;
use crate::model::StgcnConfig;

pub struct TemporalUnit<B: Backend> {
    pub conv: Conv<B>,
    pub bn: BatchNorm<B>,
    pub dropout: f64,
    v: usize,
    /// Conv output (the BN input) of the last forward: `[n, c_out, t_out, v]`.
    conv_out: Option<B::Buf>,
    /// Seed of the last forward's dropout mask.
    dropout_seed: u64,
}

impl<B: Backend> TemporalUnit<B> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        be: &B,
        c_in: usize,
        c_out: usize,
        kt: usize,
        stride: usize,
        v: usize,
        dropout: f64,
        cfg: &StgcnConfig,
        rng: &mut InitRng,
    ) -> Self {
        Self {
            conv: Conv::conv2d(be, c_in, c_out, kt, stride, rng),
            bn: BatchNorm::new(be, c_out, cfg.bn_eps, cfg.bn_momentum),
            dropout,
            v,
            conv_out: None,
            dropout_seed: 0,
        }
    }

    pub fn t_out(&self, t_in: usize) -> usize {
        self.conv.geom(1, t_in, self.v).t_out()
    }

    /// x: `[n, c_in, t_in, v]` → `epilogue(dropout(bn(conv(x))))`: `[n, c_out, t_out, v]`. `seed`
    /// draws the dropout mask (training only). Without dropout the epilogue runs in the BN's pass;
    /// in evaluation the conv, the BN and the epilogue are one op.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &mut self,
        be: &B,
        x: &B::Buf,
        n: usize,
        t_in: usize,
        train: bool,
        seed: u64,
        epilogue: BnEpilogue<'_, B::Buf>,
    ) -> B::Buf {
        self.dropout_seed = seed;
        if !train {
            // the conv applies the batch norm and the epilogue to its outputs: none is stored twice
            self.conv_out = None;
            let bn = self.bn.fused_eval();
            return self.conv.forward_bn_eval(be, x, n, t_in, self.v, bn, epilogue);
        }
        // training normalises with the batch statistics, which the conv gathers from its output tiles
        let (u, stats) = self.conv.forward_with_stats(be, x, n, t_in, self.v);
        let s = self.t_out(t_in) * self.v;
        let y = if self.dropout > 0.0 {
            let mut y = self.bn.forward(be, &u, stats.as_ref(), n, s, true, BnEpilogue::none());
            be.dropout(&mut y, self.dropout, seed);
            apply_epilogue(be, epilogue, &mut y);
            y
        } else {
            self.bn.forward(be, &u, stats.as_ref(), n, s, true, epilogue)
        };
        self.conv_out = Some(u);
        y
    }

    /// Values the last forward keeps for the backward: the conv output and the BN statistics (the
    /// unit's output is its caller's).
    pub fn saved_for_backward(&self, be: &B) -> usize {
        held(be, self.conv_out.as_ref()) + self.bn.saved_for_backward(be)
    }

    /// Accumulates the conv and BN gradients and returns dx, given `dy`, the gradient of the
    /// output, or, with `relu_output`, of a ReLU that followed it (whose output that is): the BN
    /// backward then masks `dy` itself (the mask commutes with the dropout's, element by element).
    pub fn backward(
        &mut self,
        be: &B,
        x: &B::Buf,
        dy: &B::Buf,
        relu_output: Option<&B::Buf>,
        n: usize,
        t_in: usize,
    ) -> B::Buf {
        let u = self.conv_out.take().expect("TemporalUnit::backward without a forward");
        let s = self.t_out(t_in) * self.v;
        let du = if self.dropout > 0.0 {
            let mut dropped = be.activation(be.buf_len(dy));
            be.copy(dy, &mut dropped);
            be.dropout(&mut dropped, self.dropout, self.dropout_seed);
            self.bn.backward(be, &u, &dropped, relu_output, n, s)
        } else {
            self.bn.backward(be, &u, dy, relu_output, n, s)
        };
        self.conv.backward(be, x, &du, n, t_in, self.v, None)
    }
}

impl<B: Backend> Module<B> for TemporalUnit<B> {
    fn entries<'a>(&'a mut self, prefix: &str, out: &mut Vec<Entry<'a, B>>) {
        self.conv.entries(&join(prefix, "conv"), out);
        self.bn.entries(&join(prefix, "bn"), out);
    }
}
