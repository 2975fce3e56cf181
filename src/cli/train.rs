//! `leangcn train [--preset tiny|stgcn] [--config FILE] [overrides] [--resume]`

use std::path::PathBuf;

use clap::Args;

use crate::backend::select::{run_on, BackendChoice, BackendTask};
use crate::backend::Backend;
use crate::train::datasets::open_datasets;
use crate::train::{train, RunOptions, Summary, TrainConfig};
use crate::{Error, Result};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Base configuration: `tiny` (small model, built-in data, minutes on a CPU) or `stgcn` (the
    /// paper's recipe).
    #[arg(long, default_value = "tiny")]
    preset: String,
    /// A TOML configuration file (its keys override the preset it names, or `stgcn`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Run directory: metrics.jsonl, curves.svg, config.toml and checkpoints/.
    #[arg(long, default_value = "runs/latest")]
    run_dir: PathBuf,
    /// Continue from the last checkpoint in the run directory.
    #[arg(long)]
    resume: bool,
    /// `auto` (GPU if usable, else CPU), `cpu` or `cuda`.
    #[arg(long, default_value = "auto")]
    backend: String,
    /// An annotation file (PYSKL pickle) or NTU `.skeleton` folder instead of the built-in data.
    #[arg(long)]
    data: Option<PathBuf>,
    #[arg(long)]
    split: Option<String>,
    #[arg(long)]
    modality: Option<String>,
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    batch_size: Option<usize>,
    #[arg(long)]
    clip_len: Option<usize>,
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    seed: Option<u64>,
    /// `f32`, `f64` for the exact reference path (CPU), or `tf32` / `bf16`: f32 with the conv
    /// GEMMs' operands rounded to TF32 / bf16 (tensor cores on the GPU, exactly emulated on the CPU).
    #[arg(long)]
    precision: Option<String>,
    /// Any other key, TOML syntax: `--set model.base_channels=32 --set max_grad_norm=5.0`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Stop after this many optimizer steps (a checkpoint is saved).
    #[arg(long)]
    max_steps: Option<u64>,
    /// Print only errors and the final summary.
    #[arg(long)]
    quiet: bool,
    /// Optimizer steps A..B (0-based, B exclusive) inside the profiler's capture range, for
    /// `nsys --capture-range=cudaProfilerApi` and `ncu --profile-from-start off` (see docs/PROFILING.md).
    #[arg(long, value_name = "A..B")]
    profile_steps: Option<crate::nvtx::ProfileSteps>,
}

/// Builds the configuration: preset or file, then `--set` keys, then the named flags.
fn config_from(args: &TrainArgs) -> Result<TrainConfig> {
    let toml_text = match &args.config {
        Some(path) => std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?,
        None => format!("preset = \"{}\"\n", args.preset),
    };
    let mut cfg = TrainConfig::from_toml_with_overrides(&toml_text, &args.set)?;
    if let Some(p) = &args.data {
        cfg.data.path = Some(p.clone());
    }
    if let Some(s) = &args.split {
        cfg.data.split = s.clone();
    }
    if let Some(m) = &args.modality {
        cfg.data.modality = m.clone();
    }
    cfg.epochs = args.epochs.unwrap_or(cfg.epochs);
    cfg.batch_size = args.batch_size.unwrap_or(cfg.batch_size);
    cfg.clip_len = args.clip_len.unwrap_or(cfg.clip_len);
    cfg.lr = args.lr.unwrap_or(cfg.lr);
    cfg.seed = args.seed.unwrap_or(cfg.seed);
    if let Some(p) = &args.precision {
        cfg.precision = p.clone();
    }
    cfg.validate()?;
    Ok(cfg)
}

struct Train {
    cfg: TrainConfig,
    opts: RunOptions,
}

impl BackendTask for Train {
    type Output = Summary;
    fn run<B: Backend>(mut self, be: &B) -> Result<Summary> {
        let (train_data, val_data) = open_datasets(&mut self.cfg)?;
        if !self.opts.quiet {
            eprintln!(
                "training on {}: {} training / {} validation clips, {} classes, run directory {}",
                be.describe(),
                train_data.len(),
                val_data.len(),
                self.cfg.model.num_classes,
                self.opts.run_dir.display()
            );
        }
        train(be, &self.cfg, train_data, val_data, &self.opts)
    }
}

pub fn run(args: TrainArgs) -> Result<()> {
    let cfg = config_from(&args)?;
    std::fs::create_dir_all(&args.run_dir).map_err(|e| Error::io(&args.run_dir, e))?;
    let config_path = args.run_dir.join("config.toml");
    std::fs::write(&config_path, cfg.to_toml()).map_err(|e| Error::io(&config_path, e))?;
    let choice: BackendChoice = args.backend.parse()?;
    let precision = cfg.precision.clone();
    let task = Train {
        cfg,
        opts: RunOptions {
            run_dir: args.run_dir.clone(),
            resume: args.resume,
            max_steps: args.max_steps,
            quiet: args.quiet,
            init_state: None,
            profile_steps: args.profile_steps,
        },
    };
    let summary = run_on(choice, &precision, task)?;
    match summary.metrics.last() {
        Some(m) => println!(
            "done: epoch {}, validation top-1 {:.2}%, top-5 {:.2}%; checkpoint {}",
            m.epoch,
            100.0 * m.val_top1,
            100.0 * m.val_top5,
            summary.final_checkpoint.display()
        ),
        None => println!(
            "stopped before the first epoch ended; checkpoint {}",
            summary.final_checkpoint.display()
        ),
    }
    Ok(())
}
