//! PYSKL's `STGCN` backbone on its own: the data BN and the ST-GCN blocks, with the thresholds of
//! the learned masks. [`super::Stgcn`] puts one classifier head on it; [`super::Assembly`] averages
//! the features of several.

use super::config::{StgcnConfig, ThresholdScope};
use super::graph::Adjacency;
use super::init::InitRng;
use super::layer_clock::{timed, LayerClock, Pass};
use crate::backend::Backend;
use crate::layers::{join, Conv, DataDims, DataNorm, Entry, Module, StgcnBlock};
use crate::{Error, Result};

pub struct Backbone<B: Backend> {
    pub config: StgcnConfig,
    pub data_norm: DataNorm<B>,
    pub blocks: Vec<StgcnBlock<B>>,
    /// Activations of the last forward: `acts[0]` is the data stage's output, `acts[i + 1]` block i's.
    acts: Vec<B::Buf>,
    /// Input frames of each block in the last forward.
    frames: Vec<usize>,
    dims: Option<DataDims>,
    /// Frames after the last block in the last forward.
    t_out: usize,
    /// Current sparsity of the learned masks (0 = dense) and the device scalars of the thresholds.
    sparsity: f64,
    tau: B::Buf,
    zero: B::Buf,
    /// When set, every pass times its layers (the data stage and each block) into it.
    pub clock: Option<LayerClock>,
}

impl<B: Backend> Backbone<B> {
    /// Builds the compressed weights of the fixed masks that changed since the last forward (see
    /// `Conv::prepare_fixed_mask`), so that a step recorded into a graph finds them ready.
    pub fn prepare_fixed_masks(&mut self, be: &B) {
        for block in &mut self.blocks {
            for (conv, _) in block.convs_mut() {
                conv.prepare_fixed_mask(be);
            }
        }
    }

    /// Builds the blocks from `rng` (PyTorch's default initialisation) and, for a sparse config, the
    /// learned scores from a stream of their own seeded by `score_seed` (so a sparse backbone's
    /// weights equal the dense one's).
    pub fn new(be: &B, config: &StgcnConfig, rng: &mut InitRng, score_seed: u64) -> Result<Self> {
        config.validate(1usize << config.down_stages.len())?;
        let graph = Adjacency::build(config.layout, config.graph_mode, config.graph_seed);
        let data_norm = DataNorm::new(be, config);
        let mut blocks: Vec<StgcnBlock<B>> = config
            .blocks()
            .into_iter()
            .map(|plan| StgcnBlock::new(be, plan, &graph, config, rng))
            .collect();
        if config.sparse.is_some() {
            let mut score_rng = InitRng::new(score_seed);
            for block in &mut blocks {
                for (conv, _) in block.convs_mut() {
                    conv.add_learned_mask(be, &mut score_rng);
                }
            }
        }
        Ok(Self {
            config: config.clone(),
            data_norm,
            blocks,
            acts: Vec::new(),
            frames: Vec::new(),
            dims: None,
            t_out: 0,
            sparsity: 0.0,
            tau: be.zeros(1),
            zero: be.zeros(1),
            clock: None,
        })
    }

    /// Checks that a batch `[N, M, T, V, C]` fits this backbone.
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

    /// x: `[N, M, T, V, C]` → features `[N·M, C_out, T', V]` (the last block's output, then in
    /// [`Self::features`]). Recomputes the learned masks first. `seed` draws the dropout masks.
    pub fn forward(&mut self, be: &B, x: &B::Buf, dims: DataDims, train: bool, seed: u64) -> Result<()> {
        self.check_input(dims)?;
        self.update_masks(be);
        let [n, m, t, _, _] = dims;
        let nm = n * m;
        self.acts.clear();
        self.frames.clear();
        let data_out = timed(&mut self.clock, be, "backbone.data_bn", Pass::Forward, || {
            self.data_norm.forward(be, x, dims, train)
        });
        self.acts.push(data_out);
        let mut t_cur = t;
        for (i, block) in self.blocks.iter_mut().enumerate() {
            let y = timed(&mut self.clock, be, &format!("backbone.gcn.{i}"), Pass::Forward, || {
                block.forward(
                    be,
                    &self.acts[i],
                    nm,
                    t_cur,
                    train,
                    seed ^ (i as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D),
                )
            });
            self.frames.push(t_cur);
            t_cur = block.t_out(t_cur);
            self.acts.push(y);
        }
        self.t_out = t_cur;
        self.dims = Some(dims);
        Ok(())
    }

    /// The features of the last forward, `[N·M, C_out, T', V]` (until its backward).
    pub fn features(&self) -> &B::Buf {
        self.acts.last().expect("Backbone::features without a forward")
    }

    /// The batch dimensions of the last forward (until its backward).
    pub fn last_dims(&self) -> Option<DataDims> {
        self.dims
    }

    /// `T'·V`: the spatio-temporal size of each feature map of the last forward.
    pub fn feature_size(&self) -> usize {
        self.t_out * self.config.layout.num_joints()
    }

    /// Backward of the last forward from dL/dfeatures (`[N·M, C_out, T', V]`); accumulates every
    /// parameter gradient and returns dL/dx (`[N, M, T, V, C]`).
    pub fn backward(&mut self, be: &B, dfeatures: B::Buf) -> B::Buf {
        let dims = self.dims.take().expect("Backbone::backward without a forward");
        let nm = dims[0] * dims[1];
        let mut dy = dfeatures;
        for i in (0..self.blocks.len()).rev() {
            let (block, frames) = (&mut self.blocks[i], self.frames[i]);
            let (x, y) = (&self.acts[i], &self.acts[i + 1]);
            dy = timed(
                &mut self.clock,
                be,
                &format!("backbone.gcn.{i}"),
                Pass::Backward,
                || block.backward(be, x, y, dy, nm, frames),
            );
        }
        self.acts.clear();
        timed(&mut self.clock, be, "backbone.data_bn", Pass::Backward, || {
            self.data_norm.backward(be, &dy, dims)
        })
    }

    /// The data stage's output (`i = 0`) or block `i - 1`'s output of the last forward.
    pub fn activation(&self, i: usize) -> Option<&B::Buf> {
        self.acts.get(i)
    }

    /// The maskable convs (graph 1x1, temporal, residual 1x1) with their names relative to the
    /// backbone (`gcn.<i>.gcn.conv`, `gcn.<i>.tcn.conv`, `gcn.<i>.residual.conv`), in a fixed order.
    pub fn named_convs_mut(&mut self) -> Vec<(String, &mut Conv<B>)> {
        let names = ["gcn.conv", "tcn.conv", "residual.conv"];
        let mut out = Vec::new();
        for (i, block) in self.blocks.iter_mut().enumerate() {
            for ((conv, _), name) in block.convs_mut().into_iter().zip(names) {
                out.push((format!("gcn.{i}.{name}"), conv));
            }
        }
        out
    }
}

impl<B: Backend> Module<B> for Backbone<B> {
    fn entries<'a>(&'a mut self, prefix: &str, out: &mut Vec<Entry<'a, B>>) {
        self.data_norm.entries(&join(prefix, "data_bn"), out);
        for (i, block) in self.blocks.iter_mut().enumerate() {
            block.entries(&join(prefix, &format!("gcn.{i}")), out);
        }
    }
}
