//! The ST-GCN recogniser: data BN, the backbone of ST-GCN blocks and the GCN head, with PyTorch's
//! `state_dict` names (`backbone.data_bn.*`, `backbone.gcn.<i>.*`, `cls_head.fc_cls.*`).

use super::config::{StgcnConfig, ThresholdScope};
use super::graph::Adjacency;
use super::init::InitRng;
use crate::backend::Backend;
use crate::layers::{join, ClassifierHead, DataNorm, Entry, Module, StgcnBlock};
use crate::{Error, Result};

pub use crate::layers::DataDims;

pub struct Stgcn<B: Backend> {
    pub config: StgcnConfig,
    pub data_norm: DataNorm<B>,
    pub blocks: Vec<StgcnBlock<B>>,
    pub head: ClassifierHead<B>,
    /// Activations of the last forward: `acts[0]` is the data stage's output, `acts[i + 1]` block i's.
    acts: Vec<B::Buf>,
    /// Input frames of each block in the last forward.
    frames: Vec<usize>,
    dims: Option<DataDims>,
    /// Current sparsity of the learned masks (0 = dense) and the device scalars of the thresholds.
    sparsity: f64,
    tau: B::Buf,
    zero: B::Buf,
}

impl<B: Backend> Stgcn<B> {
    /// Builds the model with PyTorch's default initialisation drawn from `seed`.
    pub fn new(be: &B, config: StgcnConfig, seed: u64) -> Result<Self> {
        config.validate(1usize << config.down_stages.len())?;
        let graph = Adjacency::build(config.layout, config.graph_mode, config.graph_seed);
        let mut rng = InitRng::new(seed);
        let data_norm = DataNorm::new(be, &config);
        let mut blocks: Vec<StgcnBlock<B>> = config
            .blocks()
            .into_iter()
            .map(|plan| StgcnBlock::new(be, plan, &graph, &config, &mut rng))
            .collect();
        let head = ClassifierHead::new(
            be,
            config.out_channels(),
            config.num_classes,
            config.head_dropout,
            &mut rng,
        );
        if config.sparse.is_some() {
            // scores from a stream of their own, so a sparse model's weights equal the dense model's
            let mut score_rng = InitRng::new(seed ^ 0x5C0E_5C0E);
            for block in &mut blocks {
                for (conv, _) in block.convs_mut() {
                    conv.add_learned_mask(be, &mut score_rng);
                }
            }
        }
        Ok(Self {
            config,
            data_norm,
            blocks,
            head,
            acts: Vec::new(),
            frames: Vec::new(),
            dims: None,
            sparsity: 0.0,
            tau: be.zeros(1),
            zero: be.zeros(1),
        })
    }

    /// Checks that a batch `[N, M, T, V, C]` fits this model.
    pub fn check_input(&self, dims: DataDims) -> Result<()> {
        let [n, m, t, v, c] = dims;
        let cfg = &self.config;
        if n == 0 || m == 0 {
            return Err(Error::config(format!("empty batch: {n} samples of {m} persons")));
        }
        if v != cfg.layout.num_joints() {
            return Err(Error::config(format!(
                "input has {v} joints but layout {} has {}",
                cfg.layout,
                cfg.layout.num_joints()
            )));
        }
        if c != cfg.in_channels {
            return Err(Error::config(format!(
                "input has {c} channels, the model expects {}",
                cfg.in_channels
            )));
        }
        if cfg.data_bn == crate::model::DataBnType::Mvc && m != cfg.num_person {
            return Err(Error::config(format!(
                "data BN 'MVC' was built for {} persons, input has {m}",
                cfg.num_person
            )));
        }
        cfg.validate(t)
    }

    /// Sets the sparsity of the learned masks (from the next forward on); 0 keeps every weight.
    pub fn set_sparsity(&mut self, sparsity: f64) {
        self.sparsity = sparsity;
    }

    pub fn sparsity(&self) -> f64 {
        self.sparsity
    }

    /// Recomputes the learned masks from the current scores: `τ` is the k-th smallest score of each
    /// pool (the whole backbone or one block) with `k = 1 + round_half_even(s·(n−1))`, `M = 1[S ≥ τ]`.
    pub fn update_masks(&mut self, be: &B) {
        let Some(spec) = self.config.sparse else { return };
        let pools: Vec<Vec<usize>> = match spec.scope {
            ThresholdScope::Global => vec![(0..self.blocks.len()).collect()],
            ThresholdScope::PerBlock => (0..self.blocks.len()).map(|b| vec![b]).collect(),
        };
        for pool in pools {
            let scores: Vec<&B::Buf> = pool
                .iter()
                .flat_map(|&b| self.blocks[b].convs_ref())
                .filter_map(|conv| conv.score().map(|s| &s.value))
                .collect();
            let n: usize = scores.iter().map(|s| be.buf_len(s)).sum();
            if n == 0 {
                continue;
            }
            let k = 1 + (self.sparsity * (n - 1) as f64).round_ties_even() as usize;
            be.kth_smallest(&scores, k.min(n), &mut self.tau);
            for &b in &pool {
                for (conv, is_residual) in self.blocks[b].convs_mut() {
                    let tau = if is_residual && spec.residual_quirk {
                        &self.zero
                    } else {
                        &self.tau
                    };
                    conv.apply_threshold(be, tau);
                }
            }
        }
    }

    /// Builds the compressed weights of the fixed masks that changed since the last forward (see
    /// `Conv::prepare_fixed_mask`), so that a step recorded into a graph finds them ready.
    pub fn prepare_fixed_masks(&mut self, be: &B) {
        for block in &mut self.blocks {
            for (conv, _) in block.convs_mut() {
                conv.prepare_fixed_mask(be);
            }
        }
    }

    /// x: `[N, M, T, V, C]` → logits `[N, classes]`. `seed` draws the dropout masks of this pass.
    pub fn forward(&mut self, be: &B, x: &B::Buf, dims: DataDims, train: bool, seed: u64) -> Result<B::Buf> {
        self.check_input(dims)?;
        self.update_masks(be);
        let [n, m, t, v, _] = dims;
        let nm = n * m;
        self.acts.clear();
        self.frames.clear();
        self.acts.push(self.data_norm.forward(be, x, dims, train));
        let mut t_cur = t;
        for (i, block) in self.blocks.iter_mut().enumerate() {
            let y = block.forward(
                be,
                &self.acts[i],
                nm,
                t_cur,
                train,
                seed ^ (i as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D),
            );
            self.frames.push(t_cur);
            t_cur = block.t_out(t_cur);
            self.acts.push(y);
        }
        let last = self.acts.last().expect("data stage output");
        let logits = self.head.forward(be, last, n, m, t_cur * v, train, seed);
        self.dims = Some(dims);
        Ok(logits)
    }

    /// Backward of the last forward from dL/dlogits; accumulates every parameter gradient and returns
    /// dL/dx (`[N, M, T, V, C]`).
    pub fn backward(&mut self, be: &B, dlogits: &B::Buf) -> B::Buf {
        let dims = self.dims.take().expect("Stgcn::backward without a forward");
        let [n, m, _, v, _] = dims;
        let nm = n * m;
        let t_last = self
            .blocks
            .last()
            .map_or(dims[2], |b| b.t_out(*self.frames.last().unwrap_or(&dims[2])));
        let mut dy = self.head.backward(be, dlogits, n, m, t_last * v);
        for i in (0..self.blocks.len()).rev() {
            dy = self.blocks[i].backward(be, &self.acts[i], &self.acts[i + 1], dy, nm, self.frames[i]);
        }
        self.acts.clear();
        self.data_norm.backward(be, &dy, dims)
    }

    /// Values the last forward keeps for the backward, per layer in [`crate::bench::count::ModelCost`]
    /// order: the data stage (with its output), per block the graph unit, the temporal unit (with the
    /// block's output) and the residual conv when there is one, and the head.
    pub fn saved_for_backward(&self, be: &B) -> Vec<usize> {
        let held = |i: usize| self.acts.get(i).map_or(0, |a| be.buf_len(a));
        let mut saved = vec![self.data_norm.saved_for_backward(be) + held(0)];
        for (i, block) in self.blocks.iter().enumerate() {
            let mut units = block.saved_for_backward(be);
            units[1] += held(i + 1);
            saved.extend(units);
        }
        saved.push(self.head.saved_for_backward(be));
        saved
    }

    /// The data stage's output (`i = 0`) or block `i - 1`'s output of the last forward.
    pub fn activation(&self, i: usize) -> Option<&B::Buf> {
        self.acts.get(i)
    }

    /// Sets every parameter gradient to zero.
    pub fn zero_grad(&mut self, be: &B) {
        for (_, p) in crate::layers::params_of(self) {
            be.fill(&mut p.grad, 0.0);
        }
    }
}

impl<B: Backend> Module<B> for Stgcn<B> {
    fn entries<'a>(&'a mut self, prefix: &str, out: &mut Vec<Entry<'a, B>>) {
        let backbone = join(prefix, "backbone");
        self.data_norm.entries(&join(&backbone, "data_bn"), out);
        for (i, block) in self.blocks.iter_mut().enumerate() {
            block.entries(&join(&backbone, &format!("gcn.{i}")), out);
        }
        self.head.entries(&join(prefix, "cls_head"), out);
    }
}
