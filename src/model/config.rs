//! The ST-GCN configuration: every knob of PYSKL's `STGCN` + `GCNHead` that changes the network.

use serde::{Deserialize, Serialize};

use super::graph::{GraphMode, Layout};
use crate::{Error, Result};

/// How each block's graph convolution uses its adjacency (PYSKL's `gcn_adaptive`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Adaptive {
    /// Fixed buffer `A`.
    None,
    /// `A` itself is a learned parameter, initialised to the graph.
    Init,
    /// Buffer `A` plus a learned offset `PA ~ U(-1e-6, 1e-6)`: uses `A + PA`.
    Offset,
    /// Buffer `A` times a learned edge importance `PA = 1`: uses `A ⊙ PA` (ST-GCN's default).
    Importance,
}

/// Normalisation of the raw input (PYSKL's `data_bn_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataBnType {
    /// BatchNorm1d over V·C channels, persons folded into the batch.
    #[serde(rename = "VC")]
    Vc,
    /// BatchNorm1d over M·V·C channels.
    #[serde(rename = "MVC")]
    Mvc,
    /// No input normalisation.
    #[serde(rename = "none")]
    None,
}

/// Which scores share one sparsity threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdScope {
    /// One threshold over every backbone score (the reference's ST-GCN setting).
    Global,
    /// One threshold per block.
    PerBlock,
}

/// Learned sparsity masks on every backbone conv weight (the sparse generator).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SparseSpec {
    pub scope: ThresholdScope,
    /// Reproduce the reference code's quirk: residual convs always use the threshold 0
    /// (`M = 1[S ≥ 0]`) while their scores still count in the pool. Off by default.
    pub residual_quirk: bool,
}

impl Default for SparseSpec {
    fn default() -> Self {
        Self {
            scope: ThresholdScope::Global,
            residual_quirk: false,
        }
    }
}

/// The widths of one block after channel compaction: `mid` channels between the graph unit and the
/// temporal conv, `out` channels leaving the block (shared with the block's residual path).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockWidths {
    pub mid: usize,
    pub out: usize,
}

/// An ST-GCN model: backbone (`STGCN`) and head (`GCNHead`). Defaults are PYSKL's ST-GCN for NTU-60.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StgcnConfig {
    pub layout: Layout,
    pub graph_mode: GraphMode,
    pub adaptive: Adaptive,
    pub in_channels: usize,
    pub base_channels: usize,
    pub ch_ratio: f64,
    pub num_stages: usize,
    /// 1-based stages where the channel count is multiplied by `ch_ratio`.
    pub inflate_stages: Vec<usize>,
    /// 1-based stages with temporal stride 2.
    pub down_stages: Vec<usize>,
    pub num_person: usize,
    pub num_classes: usize,
    pub data_bn: DataBnType,
    pub tcn_kernel: usize,
    /// Dropout after each temporal conv's BN (not in block 0), PYSKL's `tcn_dropout`.
    pub tcn_dropout: f64,
    /// Dropout before the classifier.
    pub head_dropout: f64,
    /// Seed of the random graph mode (ignored by the others).
    pub graph_seed: u64,
    /// Every BatchNorm's epsilon and running-stat momentum (PyTorch: 1e-5, 0.1).
    pub bn_eps: f64,
    pub bn_momentum: f64,
    /// Learned weight masks on the backbone convs; `None` for a dense model.
    pub sparse: Option<SparseSpec>,
    /// Per-block widths of a channel-compacted model, one entry per block; `None` uses the widths
    /// that `base_channels` and `ch_ratio` give. The block structure (strides, which residuals are
    /// convs) always comes from the nominal widths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub widths: Option<Vec<BlockWidths>>,
}

impl Default for StgcnConfig {
    fn default() -> Self {
        Self {
            layout: Layout::NtuRgbd,
            graph_mode: GraphMode::StgcnSpatial,
            adaptive: Adaptive::Importance,
            in_channels: 3,
            base_channels: 64,
            ch_ratio: 2.0,
            num_stages: 10,
            inflate_stages: vec![5, 8],
            down_stages: vec![5, 8],
            num_person: 2,
            num_classes: 60,
            data_bn: DataBnType::Vc,
            tcn_kernel: 9,
            tcn_dropout: 0.0,
            head_dropout: 0.0,
            graph_seed: 0,
            bn_eps: 1e-5,
            bn_momentum: 0.1,
            sparse: None,
            widths: None,
        }
    }
}

/// One ST-GCN block as the backbone builds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockPlan {
    pub c_in: usize,
    /// Channels between the graph unit and the temporal conv (`c_out` unless compacted).
    pub c_mid: usize,
    pub c_out: usize,
    pub stride: usize,
    pub residual: ResidualKind,
    /// Whether this block's temporal unit applies `tcn_dropout` (every block but the first stage).
    pub tcn_dropout: bool,
}

/// The residual branch of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResidualKind {
    None,
    Identity,
    /// 1x1 conv with temporal stride, then BN.
    Conv,
}

impl StgcnConfig {
    /// Checks the configuration; `clip_len` is the number of input frames.
    pub fn validate(&self, clip_len: usize) -> Result<()> {
        let positive = [
            ("in_channels", self.in_channels),
            ("base_channels", self.base_channels),
            ("num_stages", self.num_stages),
            ("num_person", self.num_person),
            ("num_classes", self.num_classes),
            ("tcn_kernel", self.tcn_kernel),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(Error::config(format!("{name} must be at least 1")));
            }
        }
        if self.tcn_kernel % 2 == 0 {
            return Err(Error::config(format!(
                "tcn_kernel must be odd, got {}",
                self.tcn_kernel
            )));
        }
        if !(self.ch_ratio.is_finite() && self.ch_ratio > 0.0) {
            return Err(Error::config(format!(
                "ch_ratio must be positive, got {}",
                self.ch_ratio
            )));
        }
        for (name, stages) in [
            ("inflate_stages", &self.inflate_stages),
            ("down_stages", &self.down_stages),
        ] {
            if let Some(&s) = stages.iter().find(|&&s| s < 2 || s > self.num_stages) {
                return Err(Error::config(format!(
                    "{name} contains stage {s}, outside 2..={} (stage 1 never changes shape)",
                    self.num_stages
                )));
            }
        }
        if !(self.bn_eps > 0.0 && (0.0..=1.0).contains(&self.bn_momentum)) {
            return Err(Error::config(format!(
                "bn_eps must be positive and bn_momentum in [0, 1], got {} and {}",
                self.bn_eps, self.bn_momentum
            )));
        }
        for (name, p) in [("tcn_dropout", self.tcn_dropout), ("head_dropout", self.head_dropout)] {
            if !(0.0..1.0).contains(&p) {
                return Err(Error::config(format!("{name} must be in [0, 1), got {p}")));
            }
        }
        self.check_widths()?;
        let downs = self.down_stages.len() as u32;
        if clip_len == 0 || clip_len < (1usize << downs) {
            return Err(Error::config(format!(
                "clip length {clip_len} is too short for {downs} temporal down-sampling stages (needs at least {})",
                1usize << downs
            )));
        }
        Ok(())
    }

    /// Checks `widths` against the nominal block structure: one entry per block, no zero width, and
    /// equal widths across every identity residual.
    fn check_widths(&self) -> Result<()> {
        let Some(widths) = &self.widths else { return Ok(()) };
        let nominal = self.nominal_blocks();
        if widths.len() != nominal.len() {
            return Err(Error::config(format!(
                "widths has {} entries but the model has {} blocks",
                widths.len(),
                nominal.len()
            )));
        }
        let mut c_in = self.in_channels;
        for (i, (w, b)) in widths.iter().zip(&nominal).enumerate() {
            if w.mid == 0 || w.out == 0 {
                return Err(Error::config(format!(
                    "widths of block {i} must be at least 1, got {w:?}"
                )));
            }
            if b.residual == ResidualKind::Identity && w.out != c_in {
                return Err(Error::config(format!(
                    "block {i} has an identity residual, so its output width {} must equal its input width {c_in}",
                    w.out
                )));
            }
            c_in = w.out;
        }
        Ok(())
    }

    /// The blocks in order, with PYSKL's naming: `backbone.gcn.<i>`; `widths`, when set, replaces the
    /// channel counts (validated by [`Self::validate`]).
    pub fn blocks(&self) -> Vec<BlockPlan> {
        let mut plan = self.nominal_blocks();
        if let Some(widths) = &self.widths {
            let mut c_in = self.in_channels;
            for (b, w) in plan.iter_mut().zip(widths) {
                (b.c_in, b.c_mid, b.c_out) = (c_in, w.mid, w.out);
                c_in = w.out;
            }
        }
        plan
    }

    /// The blocks as `base_channels` and `ch_ratio` define them.
    fn nominal_blocks(&self) -> Vec<BlockPlan> {
        let mut plan = Vec::new();
        if self.in_channels != self.base_channels {
            plan.push(BlockPlan {
                c_in: self.in_channels,
                c_mid: self.base_channels,
                c_out: self.base_channels,
                stride: 1,
                residual: ResidualKind::None,
                tcn_dropout: false,
            });
        }
        let mut c_in = self.base_channels;
        let mut inflate_times = 0i32;
        for i in 2..=self.num_stages {
            let stride = if self.down_stages.contains(&i) { 2 } else { 1 };
            if self.inflate_stages.contains(&i) {
                inflate_times += 1;
            }
            let c_out = (self.base_channels as f64 * self.ch_ratio.powi(inflate_times) + 1e-4) as usize;
            let residual = if c_in == c_out && stride == 1 {
                ResidualKind::Identity
            } else {
                ResidualKind::Conv
            };
            plan.push(BlockPlan {
                c_in,
                c_mid: c_out,
                c_out,
                stride,
                residual,
                tcn_dropout: true,
            });
            c_in = c_out;
        }
        plan
    }

    /// Channels of the last block (the head's input).
    pub fn out_channels(&self) -> usize {
        self.blocks().last().map_or(self.in_channels, |b| b.c_out)
    }

    /// Frames after the backbone for `clip_len` input frames.
    pub fn out_frames(&self, clip_len: usize) -> usize {
        self.blocks().iter().fold(clip_len, |t, b| t.div_ceil(b.stride))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_plan_is_pyskl_stgcn() {
        let plan = StgcnConfig::default().blocks();
        let channels: Vec<_> = plan.iter().map(|b| b.c_out).collect();
        assert_eq!(channels, [64, 64, 64, 64, 128, 128, 128, 256, 256, 256]);
        let strides: Vec<_> = plan.iter().map(|b| b.stride).collect();
        assert_eq!(strides, [1, 1, 1, 1, 2, 1, 1, 2, 1, 1]);
        assert_eq!(plan[0].residual, ResidualKind::None);
        assert_eq!(plan[1].residual, ResidualKind::Identity);
        assert_eq!(plan[4].residual, ResidualKind::Conv);
        assert_eq!(StgcnConfig::default().out_frames(100), 25);
        assert_eq!(StgcnConfig::default().out_frames(16), 4);
    }

    #[test]
    fn widths_replace_the_channel_counts_but_not_the_structure() {
        let widths = |w: &[(usize, usize)]| Some(w.iter().map(|&(mid, out)| BlockWidths { mid, out }).collect());
        let tiny = StgcnConfig {
            base_channels: 4,
            num_stages: 3,
            inflate_stages: vec![3],
            down_stages: vec![3],
            ..Default::default()
        };
        // 3 -> 4 (none), 4 -> 4 (identity), 4 -> 8 (conv, stride 2); compacted to equal widths,
        // block 2 keeps its conv residual
        let cfg = StgcnConfig {
            widths: widths(&[(2, 3), (1, 3), (5, 3)]),
            ..tiny.clone()
        };
        cfg.validate(16).unwrap();
        let plan = cfg.blocks();
        let shapes: Vec<_> = plan.iter().map(|b| (b.c_in, b.c_mid, b.c_out, b.residual)).collect();
        assert_eq!(
            shapes,
            [
                (3, 2, 3, ResidualKind::None),
                (3, 1, 3, ResidualKind::Identity),
                (3, 5, 3, ResidualKind::Conv)
            ]
        );
        assert_eq!(cfg.out_channels(), 3);
        let err = |w: &[(usize, usize)]| {
            StgcnConfig {
                widths: widths(w),
                ..tiny.clone()
            }
            .validate(16)
            .unwrap_err()
            .to_string()
        };
        assert!(err(&[(2, 3), (1, 3)]).contains("widths has 2 entries but the model has 3 blocks"));
        assert!(err(&[(2, 3), (1, 2), (5, 3)]).contains("block 1 has an identity residual"));
        assert!(err(&[(2, 3), (0, 3), (5, 3)]).contains("widths of block 1 must be at least 1"));
    }

    #[test]
    fn rejects_bad_configs() {
        let bad = StgcnConfig {
            base_channels: 0,
            ..Default::default()
        };
        assert!(bad
            .validate(100)
            .unwrap_err()
            .to_string()
            .contains("base_channels must be at least 1"));
        let err = StgcnConfig::default().validate(3).unwrap_err().to_string();
        assert!(err.contains("clip length 3 is too short"), "{err}");
        let bad = StgcnConfig {
            down_stages: vec![11],
            ..Default::default()
        };
        assert!(bad
            .validate(100)
            .unwrap_err()
            .to_string()
            .contains("down_stages contains stage 11"));
    }
}
