//! `leangcn prune CHECKPOINT --sparsity S [-o OUT]`: applies a final mask and writes the pruned model.
//! A sparse-generator checkpoint keeps the weights whose scores pass the threshold at `S`; a dense
//! (or lottery) checkpoint is pruned by global weight magnitude to `S`. Pruned weights are zeroed
//! and the masks are stored as fixed masks, which `eval` and `train` (as a start state) apply.

use std::path::PathBuf;

use clap::Args;

use crate::backend::select::{run_on, BackendChoice, BackendTask};
use crate::backend::Backend;
use crate::model::Stgcn;
use crate::optim::Sgd;
use crate::sparse::lottery::{attach_fixed_masks, prune_by_magnitude, sparsity_of, PruneScope};
use crate::train::checkpoint::{load_checkpoint, save_checkpoint, NamedTensor};
use crate::train::trainer::{export_state, import_state, RunState};
use crate::{Error, Result};

#[derive(Args, Debug)]
pub struct PruneArgs {
    checkpoint: PathBuf,
    /// Fraction of the backbone conv weights to remove.
    #[arg(long)]
    sparsity: f64,
    /// Output file (default: `<checkpoint>.pruned-<sparsity>.safetensors`).
    #[arg(short, long)]
    out: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    backend: String,
}

struct Prune {
    checkpoint: PathBuf,
    state: RunState,
    tensors: Vec<NamedTensor>,
    sparsity: f64,
}

impl BackendTask for Prune {
    type Output = (Vec<NamedTensor>, RunState, f64);
    fn run<B: Backend>(self, be: &B) -> Result<Self::Output> {
        let mut state = self.state;
        if state.config.assembly.is_some() {
            return Err(Error::format(
                &self.checkpoint,
                "is an assembly checkpoint: its experts keep the masks of their own sparsities; prune single models only",
            ));
        }
        let mut model = Stgcn::new(be, state.config.model.clone(), state.config.seed)?;
        attach_fixed_masks(be, &mut model, &self.tensors);
        import_state(be, &self.tensors, &mut model, None, &self.checkpoint)?;
        if state.config.model.sparse.is_some() {
            model.set_sparsity(self.sparsity);
            model.update_masks(be);
        } else {
            let current = sparsity_of(be, &mut model);
            if self.sparsity > current {
                prune_by_magnitude(
                    be,
                    &mut model,
                    (self.sparsity - current) / (1.0 - current),
                    PruneScope::Global,
                );
            }
        }
        // bake the masks into the weights and keep them as fixed masks (scores are training state)
        for block in &mut model.backbone.blocks {
            for (conv, _) in block.convs_mut() {
                let Some(mask) = conv.mask.as_ref().map(|m| be.download(&m.mask().value)) else {
                    continue;
                };
                let mut masked = be.zeros(conv.weight.len());
                be.mul(&conv.weight.value, &be.upload(&mask), &mut masked);
                conv.weight.value = masked;
                let mask: Vec<f64> = mask.into_iter().map(crate::backend::Scalar::as_f64).collect();
                conv.mask = None;
                conv.set_fixed_mask(be, &mask);
            }
        }
        let achieved = sparsity_of(be, &mut model);
        state.config.model.sparse = None;
        state.config.sparsity = None;
        let mut no_optimizer = Sgd::new(be, state.config.sgd(), state.config.schedule(1), None, &[]);
        Ok((export_state(be, &mut model, &mut no_optimizer), state, achieved))
    }
}

pub fn run(args: PruneArgs) -> Result<()> {
    if !(0.0..1.0).contains(&args.sparsity) {
        return Err(Error::config(format!(
            "--sparsity must be in [0, 1), got {}",
            args.sparsity
        )));
    }
    let (tensors, json) = load_checkpoint(&args.checkpoint)?;
    let state: RunState = serde_json::from_value(json)
        .map_err(|e| Error::format(&args.checkpoint, format!("not a leangcn training checkpoint: {e}")))?;
    let precision = state.precision.clone();
    let out = args.out.clone().unwrap_or_else(|| {
        let mut p = args.checkpoint.clone().into_os_string();
        p.push(format!(".pruned-{}.safetensors", args.sparsity));
        PathBuf::from(p)
    });
    let task = Prune {
        checkpoint: args.checkpoint.clone(),
        state,
        tensors,
        sparsity: args.sparsity,
    };
    let (pruned, state, achieved) = run_on(args.backend.parse::<BackendChoice>()?, &precision, task)?;
    save_checkpoint(
        &out,
        &pruned,
        &serde_json::to_value(&state).expect("run state serialises"),
    )?;
    println!(
        "{}: backbone conv sparsity {:.4}; written to {}",
        args.checkpoint.display(),
        achieved,
        out.display()
    );
    Ok(())
}
