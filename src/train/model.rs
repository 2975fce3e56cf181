//! The model a training configuration describes (one ST-GCN, or the multi-level sparsity assembly),
//! and the sparsity each of its backbones uses at a given point of training.

use super::TrainConfig;
use crate::backend::Backend;
use crate::model::{Assembly, Recognizer, Stgcn};
use crate::Result;

/// A fresh model of `cfg`, initialised from `cfg.seed`.
pub fn build_model<'b, B: Backend>(be: &'b B, cfg: &TrainConfig) -> Result<Box<dyn Recognizer<B> + 'b>> {
    Ok(match &cfg.assembly {
        Some(a) => Box::new(Assembly::new(be, cfg.model.clone(), a.experts.len(), cfg.seed)?),
        None => Box::new(Stgcn::new(be, cfg.model.clone(), cfg.seed)?),
    })
}

/// Sets each backbone's mask sparsity: its schedule at 0-based training `epoch`, or its target for
/// evaluation (`None`), as the reference always evaluates at the target.
pub fn set_sparsities<B: Backend>(model: &mut dyn Recognizer<B>, cfg: &TrainConfig, epoch: Option<usize>) {
    for ((_, backbone), schedule) in model.backbones_mut().into_iter().zip(cfg.backbone_schedules()) {
        backbone.set_sparsity(epoch.map_or(schedule.target, |e| schedule.at_epoch(e, cfg.epochs)));
    }
}
