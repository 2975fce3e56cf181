//! Opening the training and validation datasets a configuration names.

use std::sync::Arc;

use super::TrainConfig;
use crate::data::pyskl_dataset::{PipelineMode, PysklDataset, TEST_CLIPS};
use crate::data::synthetic::{SyntheticConfig, SyntheticDataset};
use crate::data::ClipDataset;
use crate::model::Layout;
use crate::{Error, Result};

pub type Datasets = (Arc<dyn ClipDataset>, Arc<dyn ClipDataset>);

/// The validation split of `cfg` in PYSKL's test pipeline ([`TEST_CLIPS`] clips per sample, consecutive
/// items), with its clips per sample; the synthetic data has one clip per sample.
pub fn open_test_split(cfg: &TrainConfig) -> Result<(Arc<dyn ClipDataset>, usize)> {
    match &cfg.data.path {
        None => {
            let mut cfg = cfg.clone();
            let (_, val) = open_datasets(&mut cfg)?;
            Ok((val, 1))
        }
        Some(path) => {
            let split = if cfg.data.split.is_empty() {
                "val".to_string()
            } else {
                format!("{}_val", cfg.data.split)
            };
            let mut test = PysklDataset::open(path, &split, &cfg.data.modality, cfg.clip_len, PipelineMode::Test)?;
            test.set_num_classes(cfg.model.num_classes)?;
            let shape = test.clip_shape();
            let layout = cfg.model.layout;
            if shape.joints != layout.num_joints() || shape.channels != cfg.model.in_channels {
                return Err(Error::Sample {
                    path: path.clone(),
                    sample: test.samples()[0].sequence.frame_dir.clone(),
                    field: "keypoint".into(),
                    detail: format!(
                        "{} joints × {} input channels (modality {}), but the model takes the {} layout \
                         ({} joints) × {} channels",
                        shape.joints,
                        shape.channels,
                        cfg.data.modality,
                        layout.name(),
                        layout.num_joints(),
                        cfg.model.in_channels
                    ),
                });
            }
            Ok((Arc::new(test), TEST_CLIPS))
        }
    }
}

/// The built-in dataset a configuration trains on (its validation set is `.validation()`).
pub fn synthetic_config(cfg: &TrainConfig) -> SyntheticConfig {
    SyntheticConfig {
        seed: cfg.seed,
        classes: cfg.model.num_classes,
        samples_per_class: cfg.data.synthetic_samples_per_class,
        frames: cfg.clip_len,
        persons: cfg.model.num_person,
        ..SyntheticConfig::default()
    }
}

/// The (training, validation) datasets of `cfg`: the built-in synthetic data unless a path is set.
/// A real dataset decides the model's layout and input channels, and raises its class count to the
/// data's when that is larger; `cfg.model` is updated accordingly.
pub fn open_datasets(cfg: &mut TrainConfig) -> Result<Datasets> {
    let Some(path) = cfg.data.path.clone() else {
        let base = synthetic_config(cfg);
        let train = SyntheticDataset::new(base.clone())?;
        let val = SyntheticDataset::new(base.validation())?;
        return Ok((Arc::new(train), Arc::new(val)));
    };
    let split = |part: &str| {
        if cfg.data.split.is_empty() {
            part.to_string()
        } else {
            format!("{}_{part}", cfg.data.split)
        }
    };
    let mut train = PysklDataset::open(
        &path,
        &split("train"),
        &cfg.data.modality,
        cfg.clip_len,
        PipelineMode::Train,
    )?;
    let mut val = PysklDataset::open(
        &path,
        &split("val"),
        &cfg.data.modality,
        cfg.clip_len,
        PipelineMode::Val,
    )?;
    let classes = cfg.model.num_classes.max(train.num_classes()).max(val.num_classes());
    train.set_num_classes(classes)?;
    val.set_num_classes(classes)?;
    let shape = train.clip_shape();
    cfg.model.layout = Layout::from_num_joints(shape.joints)
        .ok_or_else(|| Error::format(&path, format!("{} joints match no known layout", shape.joints)))?;
    cfg.model.in_channels = shape.channels;
    cfg.model.num_person = shape.persons;
    cfg.model.num_classes = classes;
    Ok((Arc::new(train), Arc::new(val)))
}
