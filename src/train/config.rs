//! The training configuration: presets, TOML files and command-line overrides.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::{CosineSchedule, SgdHyper};
use crate::model::StgcnConfig;
use crate::sparse::{AssemblyConfig, SparsitySchedule};
use crate::{Error, Result};

/// Where training clips come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// An annotation file or `.skeleton` folder; `None` selects the built-in synthetic dataset.
    pub path: Option<PathBuf>,
    /// Benchmark split of a real dataset (`xsub`, `xview`, `xset`, ...).
    pub split: String,
    /// Modality: `j`, `b`, `jm` or `bm`.
    pub modality: String,
    /// Synthetic dataset: training samples per class (validation uses a quarter of it); its class
    /// count is the model's `num_classes`.
    pub synthetic_samples_per_class: usize,
    /// Worker threads that prepare clips (0: one per core).
    pub workers: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            path: None,
            split: "xsub".into(),
            modality: "j".into(),
            synthetic_samples_per_class: 200,
            workers: 0,
        }
    }
}

/// Everything a training run needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub model: StgcnConfig,
    pub data: DataConfig,
    pub epochs: usize,
    pub batch_size: usize,
    pub clip_len: usize,
    pub lr: f64,
    pub min_lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    /// Cosine schedule stepped every iteration (PYSKL) rather than every epoch.
    pub lr_per_iteration: bool,
    pub warmup_epochs: usize,
    pub max_grad_norm: Option<f64>,
    pub label_smoothing: f64,
    pub seed: u64,
    /// `f32`, `f64` (the exact reference path, CPU only), `tf32` or `bf16` (f32 with the conv GEMMs'
    /// operands rounded to TF32 or bf16: tensor cores on the GPU, their exact emulation on the CPU),
    /// or `bf16-mixed` (bf16 operands and bf16-stored activations and gradients; CPU only for now).
    pub precision: String,
    /// Save a checkpoint every this many iterations as well as at each epoch's end (0: epochs only).
    pub checkpoint_every: usize,
    /// Checkpoints kept in the run directory.
    pub keep_checkpoints: usize,
    /// Learned-mask sparsity over epochs (the sparse generator; needs `model.sparse`). Evaluation
    /// always uses the target, as the reference does.
    pub sparsity: Option<SparsitySchedule>,
    /// Train the multi-level sparsity assembly instead of one model: one backbone per expert, each
    /// with its own sparsity schedule (needs `model.sparse`; replaces `sparsity`).
    pub assembly: Option<AssemblyConfig>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self::preset("stgcn").expect("the stgcn preset exists")
    }
}

/// The presets `leangcn train --preset NAME` knows.
pub const PRESETS: [&str; 2] = ["tiny", "stgcn"];

impl TrainConfig {
    /// `tiny`: a small ST-GCN on the built-in data, the CPU default (minutes on 2 cores).
    /// `stgcn`: the paper's recipe: PYSKL ST-GCN, SGD 0.1, momentum 0.9, Nesterov, wd 5e-4, cosine,
    /// 100 epochs, batch 128, clip length 100.
    pub fn preset(name: &str) -> Result<Self> {
        let stgcn = TrainConfig {
            model: StgcnConfig::default(),
            data: DataConfig::default(),
            epochs: 100,
            batch_size: 128,
            clip_len: 100,
            lr: 0.1,
            min_lr: 0.0,
            momentum: 0.9,
            dampening: 0.0,
            weight_decay: 5e-4,
            nesterov: true,
            lr_per_iteration: true,
            warmup_epochs: 0,
            max_grad_norm: None,
            label_smoothing: 0.0,
            seed: 0,
            precision: "f32".into(),
            checkpoint_every: 0,
            keep_checkpoints: 2,
            sparsity: None,
            assembly: None,
        };
        match name {
            "stgcn" => Ok(stgcn),
            "tiny" => Ok(TrainConfig {
                model: StgcnConfig {
                    base_channels: 16,
                    num_stages: 6,
                    inflate_stages: vec![3, 5],
                    down_stages: vec![3, 5],
                    num_classes: 12,
                    ..StgcnConfig::default()
                },
                data: DataConfig {
                    synthetic_samples_per_class: 100,
                    ..DataConfig::default()
                },
                epochs: 16,
                batch_size: 32,
                clip_len: 32,
                ..stgcn
            }),
            other => Err(Error::config(format!(
                "unknown preset '{other}' (known: {})",
                PRESETS.join(", ")
            ))),
        }
    }

    /// Reads a TOML file: a full or partial configuration; `preset = "NAME"` at the top selects the
    /// base the file's keys override (default `stgcn`).
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml_str(&text).map_err(|e| Error::format(path, e.to_string()))
    }

    pub fn from_toml_str(text: &str) -> Result<Self> {
        Self::from_toml_with_overrides(text, &[])
    }

    /// As [`Self::from_toml_str`], then `KEY=VALUE` overrides in TOML syntax (dotted keys reach into
    /// tables: `model.base_channels=32`), which win over the text.
    pub fn from_toml_with_overrides(text: &str, overrides: &[String]) -> Result<Self> {
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| Error::config(e.to_string()))?;
        for kv in overrides {
            let (key, value) = kv
                .split_once('=')
                .ok_or_else(|| Error::config(format!("--set expects KEY=VALUE, got '{kv}'")))?;
            let over: toml::Table = format!("{} = {}", key.trim(), value.trim())
                .parse()
                .map_err(|e: toml::de::Error| Error::config(format!("--set {kv}: {e}")))?;
            merge(&mut table, over);
        }
        let base = match table.remove("preset") {
            Some(toml::Value::String(name)) => Self::preset(&name)?,
            Some(other) => return Err(Error::config(format!("preset must be a string, got {other}"))),
            None => Self::default(),
        };
        let mut merged = toml::Table::try_from(&base).map_err(|e| Error::config(e.to_string()))?;
        merge(&mut merged, table);
        let cfg: TrainConfig = toml::Value::Table(merged)
            .try_into()
            .map_err(|e: toml::de::Error| Error::config(e.to_string()))?;
        Ok(cfg)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a training config serialises")
    }

    /// Checks everything that can be checked before data is read.
    pub fn validate(&self) -> Result<()> {
        self.model.validate(self.clip_len)?;
        if self.epochs == 0 || self.batch_size == 0 {
            return Err(Error::config("epochs and batch_size must be at least 1"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::config(format!("lr must be positive, got {}", self.lr)));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return Err(Error::config(format!(
                "label_smoothing must be in [0, 1), got {}",
                self.label_smoothing
            )));
        }
        crate::backend::select::parse_precision(&self.precision)?;
        match (&self.sparsity, &self.model.sparse) {
            (Some(s), Some(_)) if !(0.0..1.0).contains(&s.target) => {
                return Err(Error::config(format!(
                    "sparsity target must be in [0, 1), got {}",
                    s.target
                )));
            }
            (Some(_), None) => {
                return Err(Error::config(
                    "a sparsity schedule needs learned masks: set [model.sparse] (e.g. scope = \"global\")",
                ));
            }
            _ => {}
        }
        if let Some(assembly) = &self.assembly {
            assembly.validate()?;
            if self.model.sparse.is_none() {
                return Err(Error::config(
                    "an assembly's experts need learned masks: set [model.sparse] (e.g. scope = \"global\")",
                ));
            }
            if self.sparsity.is_some() {
                return Err(Error::config(
                    "an assembly's experts carry their own schedules in assembly.experts: remove [sparsity]",
                ));
            }
        }
        if let Some(norm) = self.max_grad_norm {
            if norm.is_nan() || norm <= 0.0 {
                return Err(Error::config(format!("max_grad_norm must be positive, got {norm}")));
            }
        }
        Ok(())
    }

    /// The sparsity schedule of each backbone: one per assembly expert, or the single model's.
    pub fn backbone_schedules(&self) -> Vec<SparsitySchedule> {
        match &self.assembly {
            Some(a) => a.experts.clone(),
            None => self.sparsity.into_iter().collect(),
        }
    }

    pub fn sgd(&self) -> SgdHyper {
        SgdHyper {
            momentum: self.momentum,
            dampening: self.dampening,
            weight_decay: self.weight_decay,
            nesterov: self.nesterov,
        }
    }

    /// The cosine schedule for `iters_per_epoch` iterations per epoch.
    pub fn schedule(&self, iters_per_epoch: usize) -> CosineSchedule {
        let per = if self.lr_per_iteration {
            iters_per_epoch as u64
        } else {
            1
        };
        CosineSchedule {
            base_lr: self.lr,
            min_lr: self.min_lr,
            total: self.epochs as u64 * per,
            warmup: self.warmup_epochs as u64 * per,
            warmup_start_lr: 0.0,
            steps_per_index: if self.lr_per_iteration {
                1
            } else {
                iters_per_epoch as u64
            },
        }
    }
}

/// Recursively overrides `base` with `over`.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::BlockWidths;

    #[test]
    fn presets_are_valid() {
        for name in PRESETS {
            TrainConfig::preset(name).unwrap().validate().unwrap();
        }
    }

    #[test]
    fn toml_overrides_a_preset() {
        let cfg = TrainConfig::from_toml_str("preset = \"tiny\"\nepochs = 3\n[model]\nbase_channels = 8\n").unwrap();
        assert_eq!(cfg.epochs, 3);
        assert_eq!(cfg.model.base_channels, 8);
        assert_eq!(cfg.clip_len, TrainConfig::preset("tiny").unwrap().clip_len);
        let round_trip = TrainConfig::from_toml_str(&cfg.to_toml()).unwrap();
        assert_eq!(round_trip, cfg);
    }

    #[test]
    fn compacted_widths_survive_toml() {
        let mut cfg = TrainConfig::preset("tiny").unwrap();
        let widths: Vec<BlockWidths> = cfg
            .model
            .blocks()
            .iter()
            .map(|b| BlockWidths {
                mid: b.c_mid / 2,
                out: b.c_out / 2,
            })
            .collect();
        cfg.model.widths = Some(widths);
        cfg.validate().unwrap();
        assert_eq!(TrainConfig::from_toml_str(&cfg.to_toml()).unwrap(), cfg);
    }

    #[test]
    fn assembly_from_toml_and_its_errors() {
        let text = "preset = \"tiny\"\n[model.sparse]\n[assembly]\nexperts = [{ target = 0.6, warmup_epochs = 2 }, { target = 0.9 }]\n";
        let cfg = TrainConfig::from_toml_str(text).unwrap();
        cfg.validate().unwrap();
        let schedules = cfg.backbone_schedules();
        assert_eq!(schedules.len(), 2);
        assert_eq!((schedules[0].target, schedules[0].warmup_epochs), (0.6, 2));
        assert_eq!((schedules[1].target, schedules[1].warmup_epochs), (0.9, 0));
        assert_eq!(TrainConfig::from_toml_str(&cfg.to_toml()).unwrap(), cfg);
        let dense =
            TrainConfig::from_toml_str("preset = \"tiny\"\n[assembly]\nexperts = [{ target = 0.6 }]\n").unwrap();
        let err = dense.validate().unwrap_err().to_string();
        assert!(err.contains("need learned masks"), "{err}");
        let bad = TrainConfig::from_toml_str(&text.replace("0.9", "1.5")).unwrap();
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("assembly.experts[1].target"), "{err}");
    }

    #[test]
    fn toml_errors_name_the_problem() {
        let err = TrainConfig::from_toml_str("epochz = 3").unwrap_err().to_string();
        assert!(err.contains("epochz"), "{err}");
        let err = TrainConfig::from_toml_str("[model]\nlayout = \"kinect\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("kinect"), "{err}");
    }
}
