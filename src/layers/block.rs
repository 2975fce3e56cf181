//! PYSKL's `STGCNBlock`: `relu(tcn(gcn(x)) + residual(x))`.

use super::batch_norm::apply_epilogue;
use super::{held, join, Conv, Entry, GraphConv, Module, TemporalUnit};
use crate::backend::{Backend, BnEpilogue, GradAdd};
use crate::model::config::{BlockPlan, ResidualKind};
use crate::model::init::InitRng;
use crate::model::{Adjacency, StgcnConfig};

enum Residual<B: Backend> {
    None,
    Identity,
    Conv(Box<TemporalUnit<B>>),
}

pub struct StgcnBlock<B: Backend> {
    pub plan: BlockPlan,
    pub gcn: GraphConv<B>,
    pub tcn: TemporalUnit<B>,
    residual: Residual<B>,
    v: usize,
    /// The graph unit's output of the last forward (the temporal unit's input): `[n, c_mid, t_in, v]`.
    gcn_out: Option<B::Buf>,
    /// When set, the last forward's temporal-unit output is kept in `tcn_out` for inspection.
    pub record: bool,
    pub tcn_out: Option<B::Buf>,
}

impl<B: Backend> StgcnBlock<B> {
    pub fn new(be: &B, plan: BlockPlan, graph: &Adjacency, cfg: &StgcnConfig, rng: &mut InitRng) -> Self {
        let v = graph.v;
        let gcn = GraphConv::new(be, plan.c_in, plan.c_mid, graph, cfg, rng);
        let dropout = if plan.tcn_dropout { cfg.tcn_dropout } else { 0.0 };
        let tcn = TemporalUnit::new(
            be,
            plan.c_mid,
            plan.c_out,
            cfg.tcn_kernel,
            plan.stride,
            v,
            dropout,
            cfg,
            rng,
        );
        let residual = match plan.residual {
            ResidualKind::None => Residual::None,
            ResidualKind::Identity => Residual::Identity,
            ResidualKind::Conv => Residual::Conv(Box::new(TemporalUnit::new(
                be,
                plan.c_in,
                plan.c_out,
                1,
                plan.stride,
                v,
                0.0,
                cfg,
                rng,
            ))),
        };
        Self {
            plan,
            gcn,
            tcn,
            residual,
            v,
            gcn_out: None,
            record: false,
            tcn_out: None,
        }
    }

    pub fn t_out(&self, t_in: usize) -> usize {
        self.tcn.t_out(t_in)
    }

    /// The graph unit's output of the last forward, `[n, c_mid, t_in, v]`.
    pub fn gcn_output(&self) -> Option<&B::Buf> {
        self.gcn_out.as_ref()
    }

    /// x: `[n, c_in, t_in, v]` → y: `[n, c_out, t_out, v]`. The residual is computed first, so the
    /// temporal unit's BN adds it and applies the ReLU in its own pass (the residual unit has no
    /// dropout, so the order draws no different mask); when recording, they run after the copy.
    pub fn forward(&mut self, be: &B, x: &B::Buf, n: usize, t_in: usize, train: bool, seed: u64) -> B::Buf {
        let h = self.gcn.forward(be, x, n, t_in, train);
        let conv_residual = match &mut self.residual {
            Residual::Conv(unit) => Some(unit.forward(be, x, n, t_in, train, seed, BnEpilogue::none())),
            Residual::None | Residual::Identity => None,
        };
        let residual = match self.residual {
            Residual::None => None,
            Residual::Identity => Some(x),
            Residual::Conv(_) => conv_residual.as_ref(),
        };
        let tail = BnEpilogue { residual, relu: true };
        let y = if self.record {
            let mut y = self.tcn.forward(be, &h, n, t_in, train, seed, BnEpilogue::none());
            let mut kept = be.activation(be.buf_len(&y));
            be.copy(&y, &mut kept);
            self.tcn_out = Some(kept);
            apply_epilogue(be, tail, &mut y);
            y
        } else {
            self.tcn.forward(be, &h, n, t_in, train, seed, tail)
        };
        self.gcn_out = Some(h);
        y
    }

    /// Backward given the forward's input `x` and output `y`; returns dx. The tail's ReLU backward
    /// is the mask of the temporal (and residual) unit's BN backward; only the identity residual
    /// needs the masked gradient itself, which the graph unit's conv adds as it writes dx.
    pub fn backward(&mut self, be: &B, x: &B::Buf, y: &B::Buf, dy: B::Buf, n: usize, t_in: usize) -> B::Buf {
        let h = self.gcn_out.take().expect("StgcnBlock::backward without a forward");
        let residual_dx = match &mut self.residual {
            Residual::Conv(unit) => Some(unit.backward(be, x, &dy, Some(y), n, t_in)),
            Residual::None | Residual::Identity => None,
        };
        let dh = self.tcn.backward(be, &h, &dy, Some(y), n, t_in);
        // the residual's share of dx is added as the graph unit's conv writes dx; the identity
        // residual's share is the block's ReLU-masked dy
        let add = match (&self.residual, &residual_dx) {
            (Residual::Identity, _) => Some(GradAdd {
                grad: &dy,
                relu_output: Some(y),
            }),
            (_, Some(r)) => Some(GradAdd {
                grad: r,
                relu_output: None,
            }),
            _ => None,
        };
        self.gcn.backward(be, x, &h, dh, n, t_in, add)
    }

    /// Values the last forward keeps for the backward, per unit in [`Self::convs_ref`] order: the
    /// graph unit (with its output, the temporal conv's input), the temporal unit and, when a conv,
    /// the residual unit. The block's own output is its caller's.
    pub fn saved_for_backward(&self, be: &B) -> Vec<usize> {
        let mut saved = vec![
            self.gcn.saved_for_backward(be) + held(be, self.gcn_out.as_ref()),
            self.tcn.saved_for_backward(be),
        ];
        if let Residual::Conv(unit) = &self.residual {
            saved.push(unit.saved_for_backward(be));
        }
        saved
    }

    pub fn num_joints(&self) -> usize {
        self.v
    }

    /// The block's maskable convs, read-only, in the order of [`Self::convs_mut`].
    pub fn convs_ref(&self) -> Vec<&Conv<B>> {
        let mut convs = vec![&self.gcn.conv, &self.tcn.conv];
        if let Residual::Conv(unit) = &self.residual {
            convs.push(&unit.conv);
        }
        convs
    }

    /// The block's maskable convs: the graph unit's 1x1 conv, the temporal conv and, when present,
    /// the residual 1x1 conv (flagged `true`).
    pub fn convs_mut(&mut self) -> Vec<(&mut Conv<B>, bool)> {
        let mut convs = vec![(&mut self.gcn.conv, false), (&mut self.tcn.conv, false)];
        if let Residual::Conv(unit) = &mut self.residual {
            convs.push((&mut unit.conv, true));
        }
        convs
    }
}

impl<B: Backend> Module<B> for StgcnBlock<B> {
    fn entries<'a>(&'a mut self, prefix: &str, out: &mut Vec<Entry<'a, B>>) {
        self.gcn.entries(&join(prefix, "gcn"), out);
        self.tcn.entries(&join(prefix, "tcn"), out);
        if let Residual::Conv(unit) = &mut self.residual {
            unit.entries(&join(prefix, "residual"), out);
        }
    }
}
