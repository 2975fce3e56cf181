//! The ST-GCN recogniser: the backbone (data BN and ST-GCN blocks) and the GCN head, with PyTorch's
//! `state_dict` names (`backbone.data_bn.*`, `backbone.gcn.<i>.*`, `cls_head.fc_cls.*`).

use super::backbone::Backbone;
use super::config::StgcnConfig;
use super::init::InitRng;
use super::layer_clock::{timed, Pass};
use super::recognizer::{cross_entropy, Objective, Recognizer};
use crate::backend::Backend;
use crate::layers::{join, ClassifierHead, Entry, Module};
use crate::nvtx;
use crate::Result;

pub use crate::layers::DataDims;

/// Seed of the learned scores' stream, derived from the model seed.
pub(crate) fn score_seed(seed: u64) -> u64 {
    seed ^ 0x5C0E_5C0E
}

pub struct Stgcn<B: Backend> {
    pub config: StgcnConfig,
    pub backbone: Backbone<B>,
    pub head: ClassifierHead<B>,
}

impl<B: Backend> Stgcn<B> {
    /// Builds the model with PyTorch's default initialisation drawn from `seed`.
    pub fn new(be: &B, config: StgcnConfig, seed: u64) -> Result<Self> {
        let mut rng = InitRng::new(seed);
        let backbone = Backbone::new(be, &config, &mut rng, score_seed(seed))?;
        let head = ClassifierHead::new(
            be,
            config.out_channels(),
            config.num_classes,
            config.head_dropout,
            &mut rng,
        );
        Ok(Self { config, backbone, head })
    }

    /// Checks that a batch `[N, M, T, V, C]` fits this model.
    pub fn check_input(&self, dims: DataDims) -> Result<()> {
        self.backbone.check_input(dims)
    }

    /// Sets the sparsity of the learned masks (from the next forward on); 0 keeps every weight.
    pub fn set_sparsity(&mut self, sparsity: f64) {
        self.backbone.set_sparsity(sparsity);
    }

    pub fn sparsity(&self) -> f64 {
        self.backbone.sparsity()
    }

    /// Recomputes the learned masks from the current scores (see [`Backbone::update_masks`]).
    pub fn update_masks(&mut self, be: &B) {
        self.backbone.update_masks(be);
    }

    /// x: `[N, M, T, V, C]` → logits `[N, classes]`. `seed` draws the dropout masks of this pass.
    pub fn forward(&mut self, be: &B, x: &B::Buf, dims: DataDims, train: bool, seed: u64) -> Result<B::Buf> {
        self.backbone.forward(be, x, dims, train, seed)?;
        let [n, m, ..] = dims;
        let s = self.backbone.feature_size();
        // the clock is lent out: the features borrow the whole backbone
        let mut clock = self.backbone.clock.take();
        let (head, features) = (&mut self.head, self.backbone.features());
        let logits = timed(&mut clock, be, "cls_head", Pass::Forward, || {
            head.forward(be, features, n, m, s, train, seed)
        });
        self.backbone.clock = clock;
        Ok(logits)
    }

    /// Backward of the last forward from dL/dlogits; accumulates every parameter gradient and returns
    /// dL/dx (`[N, M, T, V, C]`).
    pub fn backward(&mut self, be: &B, dlogits: &B::Buf) -> B::Buf {
        let [n, m, ..] = self.backbone.last_dims().expect("Stgcn::backward without a forward");
        let (head, s) = (&mut self.head, self.backbone.feature_size());
        let dfeatures = timed(&mut self.backbone.clock, be, "cls_head", Pass::Backward, || {
            head.backward(be, dlogits, n, m, s)
        });
        self.backbone.backward(be, dfeatures)
    }

    /// Values the last forward keeps for the backward, per layer in [`crate::bench::count::ModelCost`]
    /// order: the data stage (with its output), per block the graph unit, the temporal unit (with the
    /// block's output) and the residual conv when there is one, and the head.
    pub fn saved_for_backward(&self, be: &B) -> Vec<usize> {
        let held = |i: usize| self.backbone.activation(i).map_or(0, |a| be.buf_len(a));
        let mut saved = vec![self.backbone.data_norm.saved_for_backward(be) + held(0)];
        for (i, block) in self.backbone.blocks.iter().enumerate() {
            let mut units = block.saved_for_backward(be);
            units[1] += held(i + 1);
            saved.extend(units);
        }
        saved.push(self.head.saved_for_backward(be));
        saved
    }

    /// The data stage's output (`i = 0`) or block `i - 1`'s output of the last forward.
    pub fn activation(&self, i: usize) -> Option<&B::Buf> {
        self.backbone.activation(i)
    }

    /// Sets every parameter gradient to zero.
    pub fn zero_grad(&mut self, be: &B) {
        super::recognizer::zero_grad(be, self);
    }
}

impl<B: Backend> Module<B> for Stgcn<B> {
    fn entries<'a>(&'a mut self, prefix: &str, out: &mut Vec<Entry<'a, B>>) {
        self.backbone.entries(&join(prefix, "backbone"), out);
        self.head.entries(&join(prefix, "cls_head"), out);
    }
}

impl<B: Backend> Recognizer<B> for Stgcn<B> {
    fn config(&self) -> &StgcnConfig {
        &self.config
    }

    fn backbones_mut(&mut self) -> Vec<(String, &mut Backbone<B>)> {
        vec![("backbone".to_string(), &mut self.backbone)]
    }

    fn logits(&mut self, be: &B, x: &B::Buf, dims: DataDims, train: bool, seed: u64) -> Result<B::Buf> {
        self.forward(be, x, dims, train, seed)
    }

    fn objective(
        &mut self,
        be: &B,
        x: &B::Buf,
        labels: &B::IdxBuf,
        dims: DataDims,
        label_smoothing: f64,
        seed: u64,
    ) -> Result<Objective<B>> {
        let logits = {
            let _r = nvtx::range(|| "forward".into());
            self.forward(be, x, dims, true, seed)?
        };
        let (loss, dlogits) = cross_entropy(be, &logits, labels, dims[0], self.config.num_classes, label_smoothing);
        {
            let _r = nvtx::range(|| "backward".into());
            self.backward(be, &dlogits);
        }
        Ok(Objective { loss, logits })
    }
}
