//! Parameter, multiply-add and activation counts of an ST-GCN, per layer, from its configuration
//! alone (nothing is allocated or run). MACs count the convolutions, the dense graph aggregation and
//! the classifier, per sample with all its persons, as PyTorch's FLOP counter does (FLOPs = 2·MACs).

use std::fmt;

use serde::Serialize;

use crate::model::config::ResidualKind;
use crate::model::{Adaptive, DataBnType, StgcnConfig};

/// One layer's cost.
#[derive(Clone, Debug, Serialize)]
pub struct LayerCost {
    pub name: String,
    pub params: u64,
    /// Forward multiply-adds per sample.
    pub macs: u64,
    /// Output values per sample (all persons).
    pub activations: u64,
}

/// The whole model's cost at one clip length.
#[derive(Clone, Debug, Serialize)]
pub struct ModelCost {
    pub clip_len: usize,
    pub persons: usize,
    pub layers: Vec<LayerCost>,
}

impl ModelCost {
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
        layers.push(LayerCost {
            name: "backbone.data_bn".into(),
            params: 2 * data_bn_channels,
            macs: 0,
            activations: m * clip_len as u64 * v * c_in,
        });
        let mut t = clip_len as u64;
        let kt = cfg.tcn_kernel as u64;
        let adjacency_params = match cfg.adaptive {
            Adaptive::None => 0,
            _ => k * v * v,
        };
        for (i, b) in cfg.blocks().iter().enumerate() {
            let (ci, co, s) = (b.c_in as u64, b.c_out as u64, b.stride as u64);
            let t_out = t.div_ceil(s);
            let prefix = format!("backbone.gcn.{i}");
            layers.push(LayerCost {
                name: format!("{prefix}.gcn"),
                params: ci * k * co + k * co + adjacency_params + 2 * co,
                macs: m * t * v * ci * k * co + m * k * co * t * v * v,
                activations: m * co * t * v,
            });
            layers.push(LayerCost {
                name: format!("{prefix}.tcn"),
                params: kt * co * co + co + 2 * co,
                macs: m * t_out * v * co * kt * co,
                activations: m * co * t_out * v,
            });
            if b.residual == ResidualKind::Conv {
                layers.push(LayerCost {
                    name: format!("{prefix}.residual"),
                    params: ci * co + co + 2 * co,
                    macs: m * t_out * v * ci * co,
                    activations: m * co * t_out * v,
                });
            }
            t = t_out;
        }
        let c_last = cfg.out_channels() as u64;
        let classes = cfg.num_classes as u64;
        layers.push(LayerCost {
            name: "cls_head.fc_cls".into(),
            params: c_last * classes + classes,
            macs: c_last * classes,
            activations: classes,
        });
        Self {
            clip_len,
            persons: cfg.num_person,
            layers,
        }
    }

    pub fn params(&self) -> u64 {
        self.layers.iter().map(|l| l.params).sum()
    }

    pub fn macs(&self) -> u64 {
        self.layers.iter().map(|l| l.macs).sum()
    }

    pub fn activations(&self) -> u64 {
        self.layers.iter().map(|l| l.activations).sum()
    }
}

impl fmt::Display for ModelCost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| layer | params | forward MMAC / sample | activations / sample |\n|---|---:|---:|---:|"
        )?;
        for l in &self.layers {
            writeln!(
                f,
                "| {} | {} | {:.1} | {} |",
                l.name,
                l.params,
                l.macs as f64 / 1e6,
                l.activations
            )?;
        }
        write!(
            f,
            "| **total** (clip {}, {} persons) | **{}** | **{:.1}** ({:.2} GFLOP) | {} |",
            self.clip_len,
            self.persons,
            self.params(),
            self.macs() as f64 / 1e6,
            2.0 * self.macs() as f64 / 1e9,
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
