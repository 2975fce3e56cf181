//! `leangcn eval CHECKPOINT`: top-1/top-5 of a checkpoint on its run's validation data.

use std::path::PathBuf;

use clap::Args;

use crate::backend::select::{run_on, BackendChoice, BackendTask};
use crate::backend::Backend;
use crate::model::Stgcn;
use crate::train::checkpoint::load_checkpoint;
use crate::train::datasets::open_datasets;
use crate::train::trainer::{evaluate, import_state, RunState};
use crate::{Error, Result};

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A checkpoint file written by `leangcn train`.
    checkpoint: PathBuf,
    #[arg(long, default_value = "auto")]
    backend: String,
    /// Evaluate on this annotation file instead of the run's own data.
    #[arg(long)]
    data: Option<PathBuf>,
}

struct Eval {
    checkpoint: PathBuf,
    state: RunState,
    tensors: Vec<crate::train::checkpoint::NamedTensor>,
}

impl BackendTask for Eval {
    type Output = (f64, f64, f64);
    fn run<B: Backend>(self, be: &B) -> Result<(f64, f64, f64)> {
        let cfg = &self.state.config;
        let (_, val) = open_datasets(cfg)?;
        let mut model = Stgcn::new(be, cfg.model.clone(), cfg.seed)?;
        import_state(be, &self.tensors, &mut model, None, &self.checkpoint)?;
        evaluate(be, &mut model, val, cfg.batch_size, cfg.data.workers)
    }
}

pub fn run(args: EvalArgs) -> Result<()> {
    let (tensors, json) = load_checkpoint(&args.checkpoint)?;
    let mut state: RunState = serde_json::from_value(json)
        .map_err(|e| Error::format(&args.checkpoint, format!("not a leangcn training checkpoint: {e}")))?;
    if let Some(data) = args.data {
        state.config.data.path = Some(data);
    }
    let precision = state.precision.clone();
    let choice: BackendChoice = args.backend.parse()?;
    let (loss, top1, top5) = run_on(
        choice,
        &precision,
        Eval {
            checkpoint: args.checkpoint.clone(),
            state,
            tensors,
        },
    )?;
    println!(
        "{}: validation loss {loss:.4}, top-1 {:.2}%, top-5 {:.2}%",
        args.checkpoint.display(),
        100.0 * top1,
        100.0 * top5
    );
    Ok(())
}
