//! What a trained (sparse) model keeps, counted two ways, and what it costs:
//!
//! - masked weights only: the maskable conv weights (graph 1x1, temporal, residual 1x1 of every
//!   backbone) that the masks keep, against one dense backbone's; the paper's count, by which an
//!   assembly at 0.6/0.8/0.95/0.99 keeps Σ_h (1 − s_h) = 66%;
//! - all parameters: the kept masked weights plus every unmasked parameter (conv biases, BN,
//!   adjacency, data BN, every head), against one dense single model's.
//!
//! Scores are training state and never count. Effective MACs scale each conv's dense MACs by its
//! mask density; the prediction path counts (an assembly's auxiliary heads are not run to predict).

use serde::Serialize;

use super::lottery::layer_densities;
use crate::backend::Backend;
use crate::bench::count::ModelCost;
use crate::layers::{Entry, Module};
use crate::model::Recognizer;

/// Parameter counts of a model and of the dense single model of the same configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ParamCount {
    /// Maskable conv weights the masks keep, over every backbone.
    pub kept_masked: usize,
    /// Maskable conv weights of the model, over every backbone.
    pub maskable: usize,
    /// Kept masked weights plus every unmasked parameter.
    pub kept_params: usize,
    /// Every parameter (pruned weights included, scores excluded).
    pub total_params: usize,
    /// Maskable conv weights of one dense backbone.
    pub dense_maskable: usize,
    /// Every parameter of one dense single model (one backbone, one head).
    pub dense_params: usize,
}

impl ParamCount {
    /// Kept masked weights over one dense backbone's maskable weights (the paper's fraction).
    pub fn masked_fraction(&self) -> f64 {
        self.kept_masked as f64 / self.dense_maskable.max(1) as f64
    }

    /// Kept parameters (all of them) over the dense single model's.
    pub fn params_fraction(&self) -> f64 {
        self.kept_params as f64 / self.dense_params.max(1) as f64
    }
}

/// Parameters and cost of a trained model, with its masks as they are now.
pub struct Measured {
    pub params: ParamCount,
    /// Forward MACs per sample with pruned weights skipped, and with none pruned.
    pub effective_macs: u64,
    pub dense_macs: u64,
    /// `(conv name, weights, density)` of every maskable conv of every backbone.
    pub densities: Vec<(String, usize, f64)>,
}

/// Parameter elements of a module's state, scores excluded.
fn param_elements<B: Backend>(m: &mut dyn Module<B>) -> usize {
    let mut entries = Vec::new();
    m.entries("", &mut entries);
    entries
        .iter()
        .filter_map(|e| match e {
            Entry::Param(name, p) if !name.ends_with("weight_score") => Some(p.len()),
            _ => None,
        })
        .sum()
}

/// Counts the parameters of `model` both ways (see the module documentation).
pub fn count_params<B: Backend>(be: &B, model: &mut dyn Recognizer<B>) -> ParamCount {
    let densities = layer_densities(be, model);
    let maskable: usize = densities.iter().map(|d| d.1).sum();
    let kept_masked: usize = densities.iter().map(|(_, n, d)| (*n as f64 * d).round() as usize).sum();
    let total_params = param_elements(model);
    let cfg = model.config().clone();
    let backbones = model.backbones_mut();
    let experts = backbones.len().max(1);
    let one_backbone = backbones.into_iter().next().map_or(0, |(_, b)| param_elements(b));
    let head = cfg.out_channels() * cfg.num_classes + cfg.num_classes;
    ParamCount {
        kept_masked,
        maskable,
        kept_params: total_params - maskable + kept_masked,
        total_params,
        dense_maskable: maskable / experts,
        dense_params: one_backbone + head,
    }
}

/// Measures a model: parameters both ways, effective and dense MACs of a prediction, densities.
pub fn measure<B: Backend>(be: &B, model: &mut dyn Recognizer<B>, clip_len: usize) -> Measured {
    let params = count_params(be, model);
    let densities = layer_densities(be, model);
    let cfg = model.config().clone();
    let experts = model.backbones_mut().len() as u64;
    let single_cost = ModelCost::of(&cfg, clip_len);
    // the forward MACs of each maskable conv of one backbone, in `named_convs_mut` order: every
    // layer between the data stage and the head holds one (graph 1x1, temporal, residual 1x1)
    let layers = &single_cost.layers;
    let macs: Vec<u64> = layers[1..layers.len() - 1].iter().map(|l| l.conv_macs).collect();
    let conv_dense: u64 = macs.iter().sum();
    // every expert runs the same convs; one head (the fused one) predicts
    let conv_effective: f64 = macs.iter().cycle().zip(&densities).map(|(m, d)| *m as f64 * d.2).sum();
    let single = single_cost.macs();
    let head = (cfg.out_channels() * cfg.num_classes) as u64;
    let backbone_other = single - head - conv_dense;
    Measured {
        params,
        effective_macs: experts * backbone_other + conv_effective.round() as u64 + head,
        dense_macs: experts * (single - head) + head,
        densities,
    }
}
