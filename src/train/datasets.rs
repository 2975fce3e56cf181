//! Opening the training and validation datasets a configuration names.

use std::sync::Arc;

use super::TrainConfig;
use crate::data::synthetic::{SyntheticConfig, SyntheticDataset};
use crate::data::ClipDataset;
use crate::{Error, Result};

/// The (training, validation) datasets of `cfg`: the built-in synthetic data unless a path is set.
pub fn open_datasets(cfg: &TrainConfig) -> Result<(Arc<dyn ClipDataset>, Arc<dyn ClipDataset>)> {
    match &cfg.data.path {
        None => {
            let base = SyntheticConfig {
                seed: cfg.seed,
                classes: cfg.model.num_classes,
                samples_per_class: cfg.data.synthetic_samples_per_class,
                frames: cfg.clip_len,
                persons: cfg.model.num_person,
                ..SyntheticConfig::default()
            };
            let train = SyntheticDataset::new(base.clone())?;
            let val = SyntheticDataset::new(base.validation())?;
            Ok((Arc::new(train), Arc::new(val)))
        }
        Some(path) => Err(Error::config(format!(
            "{}: reading real datasets is not wired into the trainer in this build",
            path.display()
        ))),
    }
}
