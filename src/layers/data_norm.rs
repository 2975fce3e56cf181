//! The input stage of ST-GCN: BatchNorm1d over the joint coordinates ('VC': V·C channels, persons in
//! the batch; 'MVC': M·V·C channels), and the move from the data layout `[N, M, T, V, C]` to the
//! network layout `[N·M, C, T, V]`.
//!
//! It runs in f32 whatever the activation storage, as PyTorch's bf16 autocast leaves it (the data
//! BN is fed the f32 input batch): raw coordinates in metres would be rounded in steps of 1.6 cm
//! at 3 m by bf16, so the storage's rounding starts at its output, the backbone's first
//! activation, once the BN has centred and scaled them.

use super::{held, BatchNorm, Entry, Module};
use crate::backend::{Backend, BnEpilogue};
use crate::model::{DataBnType, StgcnConfig};

/// `[N, M, T, V, C]` → `[N, M, V, C, T]`, the layout whose `(V·C, T)` view the data BN normalises;
/// the same permutation takes `[N, M, V, C, T]` to the network's `[N, M, C, T, V]`.
const TO_CHANNELS_TIME: [usize; 5] = [0, 1, 3, 4, 2];
/// The inverse of `TO_CHANNELS_TIME`.
const FROM_CHANNELS_TIME: [usize; 5] = [0, 1, 4, 2, 3];

pub struct DataNorm<B: Backend> {
    pub kind: DataBnType,
    pub bn: Option<BatchNorm<B>>,
    /// The BN input of the last forward, `[N, M, V, C, T]`.
    bn_in: Option<B::Buf>,
}

/// Batch dimensions `[N, M, T, V, C]`.
pub type DataDims = [usize; 5];

impl<B: Backend> DataNorm<B> {
    pub fn new(be: &B, cfg: &StgcnConfig) -> Self {
        let joints = cfg.layout.num_joints();
        let bn_channels = match cfg.data_bn {
            DataBnType::Vc => Some(joints * cfg.in_channels),
            DataBnType::Mvc => Some(cfg.num_person * joints * cfg.in_channels),
            DataBnType::None => None,
        };
        Self {
            kind: cfg.data_bn,
            bn: bn_channels.map(|c| BatchNorm::new(be, c, cfg.bn_eps, cfg.bn_momentum)),
            bn_in: None,
        }
    }

    /// BN geometry (n, s) for a batch: 'VC' folds persons into the batch, 'MVC' into the channels.
    fn bn_batch(&self, [n, m, t, _, _]: DataDims) -> (usize, usize) {
        match self.kind {
            DataBnType::Mvc => (n, t),
            _ => (n * m, t),
        }
    }

    /// x: `[N, M, T, V, C]` → `[N·M, C, T, V]`.
    pub fn forward(&mut self, be: &B, x: &B::Buf, dims: DataDims, train: bool) -> B::Buf {
        let [n, m, t, v, c] = dims;
        let (bn_n, bn_s) = self.bn_batch(dims);
        let (vct, normed) = be.with_f32_activations(|| {
            let mut vct = be.activation(be.buf_len(x));
            be.permute(x, &dims, &TO_CHANNELS_TIME, &mut vct);
            let normed = match &mut self.bn {
                Some(bn) => bn.forward(be, &vct, None, bn_n, bn_s, train, BnEpilogue::none()),
                None => {
                    let mut out = be.activation(be.buf_len(x));
                    be.copy(&vct, &mut out);
                    out
                }
            };
            (vct, normed)
        });
        // the first activation in the storage
        let mut y = be.activation(be.buf_len(x));
        be.permute(&normed, &[n, m, v, c, t], &TO_CHANNELS_TIME, &mut y);
        self.bn_in = Some(vct);
        y
    }

    /// Values the last forward keeps for the backward: the BN input and statistics.
    pub fn saved_for_backward(&self, be: &B) -> usize {
        held(be, self.bn_in.as_ref()) + self.bn.as_ref().map_or(0, |bn| bn.saved_for_backward(be))
    }

    /// dy: `[N·M, C, T, V]` → dx: `[N, M, T, V, C]`; accumulates the BN's gradients.
    pub fn backward(&mut self, be: &B, dy: &B::Buf, dims: DataDims) -> B::Buf {
        let [n, m, t, v, c] = dims;
        let bn_in = self.bn_in.take().expect("DataNorm::backward without a forward");
        let (bn_n, bn_s) = self.bn_batch(dims);
        be.with_f32_activations(|| {
            let mut dnormed = be.activation(be.buf_len(dy));
            be.permute(dy, &[n, m, c, t, v], &FROM_CHANNELS_TIME, &mut dnormed);
            let dvct = match &mut self.bn {
                Some(bn) => bn.backward(be, &bn_in, &dnormed, None, bn_n, bn_s),
                None => dnormed,
            };
            let mut dx = be.activation(be.buf_len(dy));
            be.permute(&dvct, &[n, m, v, c, t], &FROM_CHANNELS_TIME, &mut dx);
            dx
        })
    }
}

impl<B: Backend> Module<B> for DataNorm<B> {
    fn entries<'a>(&'a mut self, prefix: &str, out: &mut Vec<Entry<'a, B>>) {
        if let Some(bn) = &mut self.bn {
            bn.entries(prefix, out);
        }
    }
}
