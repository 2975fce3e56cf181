//! PYSKL's `GCNHead`: mean over frames and joints, mean over persons, dropout, linear classifier.

use super::{held, join, Conv, Entry, Module};
use crate::backend::Backend;
use crate::model::init::InitRng;

pub struct ClassifierHead<B: Backend> {
    pub channels: usize,
    pub classes: usize,
    pub dropout: f64,
    pub fc: Conv<B>,
    /// The classifier input of the last forward: `[n, channels]`.
    pooled: Option<B::Buf>,
    dropout_seed: u64,
}

impl<B: Backend> ClassifierHead<B> {
    pub fn new(be: &B, channels: usize, classes: usize, dropout: f64, rng: &mut InitRng) -> Self {
        Self {
            channels,
            classes,
            dropout,
            fc: Conv::linear(be, channels, classes, 0.01, rng),
            pooled: None,
            dropout_seed: 0,
        }
    }

    /// The pooled features of the last forward, `[n, channels]` (before dropout).
    pub fn pooled(&self) -> Option<&B::Buf> {
        self.pooled.as_ref()
    }

    /// x: `[n·persons, channels, s]` (s = T·V) → logits `[n, classes]`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &mut self,
        be: &B,
        x: &B::Buf,
        n: usize,
        persons: usize,
        s: usize,
        train: bool,
        seed: u64,
    ) -> B::Buf {
        let mut pooled = be.activation(n * self.channels);
        be.mean_pool_forward(n, persons, self.channels, s, x, &mut pooled);
        let logits = if train && self.dropout > 0.0 {
            let mut dropped = be.activation(n * self.channels);
            be.copy(&pooled, &mut dropped);
            be.dropout(&mut dropped, self.dropout, seed);
            self.fc.forward(be, &dropped, n, 1, 1)
        } else {
            self.fc.forward(be, &pooled, n, 1, 1)
        };
        self.pooled = Some(pooled);
        self.dropout_seed = seed;
        logits
    }

    /// Values the last forward keeps for the backward: the pooled features.
    pub fn saved_for_backward(&self, be: &B) -> usize {
        held(be, self.pooled.as_ref())
    }

    /// dlogits: `[n, classes]` → dx: `[n·persons, channels, s]`.
    pub fn backward(&mut self, be: &B, dlogits: &B::Buf, n: usize, persons: usize, s: usize) -> B::Buf {
        let pooled = self
            .pooled
            .as_ref()
            .expect("ClassifierHead::backward without a forward");
        let mut dpooled = if self.dropout > 0.0 {
            let mut dropped = be.activation(n * self.channels);
            be.copy(pooled, &mut dropped);
            be.dropout(&mut dropped, self.dropout, self.dropout_seed);
            self.fc.backward(be, &dropped, dlogits, n, 1, 1, None)
        } else {
            self.fc.backward(be, pooled, dlogits, n, 1, 1, None)
        };
        if self.dropout > 0.0 {
            be.dropout(&mut dpooled, self.dropout, self.dropout_seed);
        }
        let mut dx = be.activation(n * persons * self.channels * s);
        be.mean_pool_backward(n, persons, self.channels, s, &dpooled, &mut dx);
        dx
    }
}

impl<B: Backend> Module<B> for ClassifierHead<B> {
    fn entries<'a>(&'a mut self, prefix: &str, out: &mut Vec<Entry<'a, B>>) {
        self.fc.entries(&join(prefix, "fc_cls"), out);
    }
}
