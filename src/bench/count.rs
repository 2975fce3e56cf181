//! Parameter, multiply-add and activation counts of an ST-GCN, per layer: from its configuration
//! alone ([`ModelCost::of`], nothing allocated or run), or from a built model with its masks
//! ([`ModelCost::of_model`]: kept weights counted from the mask buffers).
//!
//! MACs count the convolutions, the dense graph aggregation (over all V×V joint pairs, as PyTorch's
//! einsum computes it) and the classifier, per sample with all its persons, as PyTorch's FLOP
//! counter does (FLOPs = 2·MACs). BN, ReLU, the residual add and pooling are not counted (under
//! 0.5% of the total). For PYSKL's ST-GCN (NTU-60, 2 persons) this gives 5,697,615,360 MACs at 100
//! frames: mmaction2's published "5.7G FLOPs" is this MAC count.
//!
//! Effective MACs skip masked-out weights: a conv whose mask keeps a fraction d of its weights costs
//! d times its dense MACs (every weight of a conv is used equally often), the graph aggregation and
//! everything unmasked stay dense.

use std::fmt;

use serde::Serialize;

use crate::backend::{Backend, Scalar};
use crate::layers::Conv;
use crate::model::config::ResidualKind;
use crate::model::{Adaptive, DataBnType, Stgcn, StgcnConfig};

/// One layer's cost.
#[derive(Clone, Debug, Serialize)]
pub struct LayerCost {
    pub name: String,
    /// Stored parameters: weights, biases, BN affine and edge importance (mask scores excluded).
    pub params: u64,
    /// Parameters left when masked-out weights are dropped.
    pub kept_params: u64,
    /// Weights of the layer's conv, the part of `params` a mask can thin (0 for the data BN).
    pub conv_weights: u64,
    /// Forward multiply-adds per sample, dense.
    pub macs: u64,
    /// The conv's share of `macs`.
    pub conv_macs: u64,
    /// Forward multiply-adds per sample with masked-out weights skipped.
    pub effective_macs: u64,
    /// Output values per sample (all persons).
    pub activations: u64,
}

impl LayerCost {
    /// A dense layer: every weight kept.
    fn dense(name: String, params: u64, conv_weights: u64, macs: u64, conv_macs: u64, activations: u64) -> Self {
        Self {
            name,
            params,
            kept_params: params,
            conv_weights,
            macs,
            conv_macs,
            effective_macs: macs,
            activations,
        }
    }

    /// Sets the number of the conv's weights its mask keeps, updating the kept parameters and the
    /// effective MACs.
    pub fn set_kept_weights(&mut self, kept: u64) {
        let kept = kept.min(self.conv_weights);
        self.kept_params = self.params - (self.conv_weights - kept);
        let conv_effective = if self.conv_weights == 0 {
            0
        } else {
            let w = self.conv_weights as u128;
            ((self.conv_macs as u128 * kept as u128 + w / 2) / w) as u64
        };
        self.effective_macs = self.macs - self.conv_macs + conv_effective;
    }
}

/// The whole model's cost at one clip length.
#[derive(Clone, Debug, Serialize)]
pub struct ModelCost {
    pub clip_len: usize,
    pub persons: usize,
    pub layers: Vec<LayerCost>,
}

impl ModelCost {
    /// The dense cost of the model `cfg` describes. Layers: `backbone.data_bn`, then per block
    /// `backbone.gcn.<i>.gcn`, `.tcn` and (when a conv) `.residual`, then `cls_head.fc_cls`.
    pub fn of(cfg: &StgcnConfig, clip_len: usize) -> Self {
        let v = cfg.layout.num_joints() as u64;
        let m = cfg.num_person as u64;
        let k = 3u64;
        let mut layers = Vec::new();
        let c_in = cfg.in_channels as u64;
        let data_bn_channels = match cfg.data_bn {
            DataBnType::Vc => v * c_in,
            DataBnType::Mvc => m * v * c_in,
            DataBnType::None => 0,
        };
        layers.push(LayerCost::dense(
            "backbone.data_bn".into(),
            2 * data_bn_channels,
            0,
            0,
            0,
            m * clip_len as u64 * v * c_in,
        ));
        let mut t = clip_len as u64;
        let kt = cfg.tcn_kernel as u64;
        let adjacency_params = match cfg.adaptive {
            Adaptive::None => 0,
            _ => k * v * v,
        };
        for (i, b) in cfg.blocks().iter().enumerate() {
            let (ci, cm, co, s) = (b.c_in as u64, b.c_mid as u64, b.c_out as u64, b.stride as u64);
            let t_out = t.div_ceil(s);
            let prefix = format!("backbone.gcn.{i}");
            // 1x1 conv to k·c_mid channels, then the aggregation over k subsets of V×V
            let conv_macs = m * t * v * ci * k * cm;
            layers.push(LayerCost::dense(
                format!("{prefix}.gcn"),
                ci * k * cm + k * cm + adjacency_params + 2 * cm,
                ci * k * cm,
                conv_macs + m * k * cm * t * v * v,
                conv_macs,
                m * cm * t * v,
            ));
            let conv_macs = m * t_out * v * cm * kt * co;
            layers.push(LayerCost::dense(
                format!("{prefix}.tcn"),
                kt * cm * co + co + 2 * co,
                kt * cm * co,
                conv_macs,
                conv_macs,
                m * co * t_out * v,
            ));
            if b.residual == ResidualKind::Conv {
                let conv_macs = m * t_out * v * ci * co;
                layers.push(LayerCost::dense(
                    format!("{prefix}.residual"),
                    ci * co + co + 2 * co,
                    ci * co,
                    conv_macs,
                    conv_macs,
                    m * co * t_out * v,
                ));
            }
            t = t_out;
        }
        let c_last = cfg.out_channels() as u64;
        let classes = cfg.num_classes as u64;
        layers.push(LayerCost::dense(
            "cls_head.fc_cls".into(),
            c_last * classes + classes,
            c_last * classes,
            c_last * classes,
            c_last * classes,
            classes,
        ));
        Self {
            clip_len,
            persons: cfg.num_person,
            layers,
        }
    }

    /// The cost of a built model with the masks it holds now (a learned mask as of its last
    /// threshold: call `update_masks` first).
    pub fn of_model<B: Backend>(be: &B, model: &Stgcn<B>, clip_len: usize) -> Self {
        let mut cost = Self::of(&model.config, clip_len);
        let convs: Vec<&Conv<B>> = model
            .backbone
            .blocks
            .iter()
            .flat_map(|b| b.convs_ref())
            .chain([&model.head.fc])
            .collect();
        // every layer after the data BN holds exactly one conv, in this order
        debug_assert_eq!(convs.len() + 1, cost.layers.len());
        for (layer, conv) in cost.layers[1..].iter_mut().zip(convs) {
            layer.set_kept_weights(kept_weights(be, conv));
        }
        cost
    }

    pub fn params(&self) -> u64 {
        self.layers.iter().map(|l| l.params).sum()
    }

    pub fn kept_params(&self) -> u64 {
        self.layers.iter().map(|l| l.kept_params).sum()
    }

    pub fn macs(&self) -> u64 {
        self.layers.iter().map(|l| l.macs).sum()
    }

    pub fn effective_macs(&self) -> u64 {
        self.layers.iter().map(|l| l.effective_macs).sum()
    }

    pub fn activations(&self) -> u64 {
        self.layers.iter().map(|l| l.activations).sum()
    }
}

/// Weights of a conv that its mask keeps (all of them without a mask).
pub fn kept_weights<B: Backend>(be: &B, conv: &Conv<B>) -> u64 {
    match &conv.mask {
        None => conv.weight.len() as u64,
        Some(m) => be
            .download(&m.mask().value)
            .iter()
            .filter(|v| v.as_f64() != 0.0)
            .count() as u64,
    }
}

impl fmt::Display for ModelCost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| layer | params | kept params | dense MMAC / sample | effective MMAC / sample | activations / sample |\n|---|---:|---:|---:|---:|---:|"
        )?;
        for l in &self.layers {
            writeln!(
                f,
                "| {} | {} | {} | {:.1} | {:.1} | {} |",
                l.name,
                l.params,
                l.kept_params,
                l.macs as f64 / 1e6,
                l.effective_macs as f64 / 1e6,
                l.activations
            )?;
        }
        write!(
            f,
            "| **total** (clip {}, {} persons) | **{}** | **{}** | **{:.1}** ({:.2} GFLOP) | **{:.1}** ({:.2} GFLOP) | {} |",
            self.clip_len,
            self.persons,
            self.params(),
            self.kept_params(),
            self.macs() as f64 / 1e6,
            2.0 * self.macs() as f64 / 1e9,
            self.effective_macs() as f64 / 1e6,
            2.0 * self.effective_macs() as f64 / 1e9,
            self.activations()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_pyskl_counts() {
        let cfg = StgcnConfig::default();
        let cost = ModelCost::of(&cfg, 100);
        assert_eq!(cost.params(), 3_098_832);
        assert_eq!(cost.macs(), 5_697_615_360);
        assert_eq!(ModelCost::of(&cfg, 64).macs(), 3_646_479_360);
        let ntu120 = StgcnConfig {
            num_classes: 120,
            ..StgcnConfig::default()
        };
        assert_eq!(ModelCost::of(&ntu120, 100).params(), 3_114_252);
        let coco = StgcnConfig {
            layout: crate::model::Layout::Coco,
            ..StgcnConfig::default()
        };
        assert_eq!(ModelCost::of(&coco, 100).params(), 3_088_704);
    }
}
