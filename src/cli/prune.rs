//! `leangcn prune CHECKPOINT [--sparsity S] [--channels F --criterion l1|l2|bn] [-o OUT]`: applies a
//! final mask and writes the pruned model.
//! With `--sparsity`, a sparse-generator checkpoint keeps the weights whose scores pass the threshold
//! at `S`, a dense (or lottery) checkpoint is pruned by global weight magnitude to `S`; a
//! sparse-generator checkpoint without `--sparsity` keeps its training target. Pruned weights are
//! zeroed and the masks are stored as fixed masks, which `eval` and `train` (as a start state) apply.
//! With `--channels`, every free channel group then keeps the fraction `F` of its channels by the
//! criterion and the model is compacted: a smaller dense model whose widths the checkpoint's
//! configuration records.

use std::path::PathBuf;

use clap::Args;

use crate::backend::select::{run_on, BackendChoice, BackendTask};
use crate::backend::Backend;
use crate::bench::count::ModelCost;
use crate::model::Stgcn;
use crate::optim::Sgd;
use crate::sparse::compact::{compact, plan_by_criterion, ChannelCriterion};
use crate::sparse::lottery::{attach_fixed_masks, prune_by_magnitude, sparsity_of, PruneScope};
use crate::train::checkpoint::{load_checkpoint, save_checkpoint, NamedTensor};
use crate::train::trainer::{export_state, import_state, RunState};
use crate::{Error, Result};

#[derive(Args, Debug)]
pub struct PruneArgs {
    checkpoint: PathBuf,
    /// Fraction of the backbone conv weights to remove.
    #[arg(long)]
    sparsity: Option<f64>,
    /// Fraction of the channels of every free group (internal and residual-stream channels) to keep,
    /// compacting the model.
    #[arg(long)]
    channels: Option<f64>,
    /// Channel criterion: `l1` or `l2` norm of the producing weights, or `bn` (|gamma|).
    #[arg(long, default_value = "l1")]
    criterion: String,
    /// Output file (default: `<checkpoint>.pruned-<sparsity>.safetensors`, `.channels-<F>` for
    /// compaction).
    #[arg(short, long)]
    out: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    backend: String,
}

struct Prune {
    checkpoint: PathBuf,
    state: RunState,
    tensors: Vec<NamedTensor>,
    sparsity: Option<f64>,
    channels: Option<(f64, ChannelCriterion)>,
}

/// The pruned model's state, its run state, its backbone conv sparsity and its kept and stored
/// parameters.
type Pruned = (Vec<NamedTensor>, RunState, f64, u64, u64);

impl BackendTask for Prune {
    type Output = Pruned;
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
            let target = state.config.sparsity.map_or(0.0, |s| s.target);
            model.set_sparsity(self.sparsity.unwrap_or(target));
            model.update_masks(be);
        } else if let Some(sparsity) = self.sparsity {
            let current = sparsity_of(be, &mut model);
            if sparsity > current {
                prune_by_magnitude(
                    be,
                    &mut model,
                    (sparsity - current) / (1.0 - current),
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
        state.config.model.sparse = None;
        state.config.sparsity = None;
        model.config.sparse = None;
        if let Some((fraction, criterion)) = self.channels {
            let plan = plan_by_criterion(be, &mut model, criterion, fraction)?;
            model = compact(be, &mut model, &plan)?;
            state.config.model = model.config.clone();
        }
        let achieved = sparsity_of(be, &mut model);
        let cost = ModelCost::of_model(be, &model, state.config.clip_len);
        let mut no_optimizer = Sgd::new(be, state.config.sgd(), state.config.schedule(1), None, &[]);
        Ok((
            export_state(be, &mut model, &mut no_optimizer),
            state,
            achieved,
            cost.kept_params(),
            cost.params(),
        ))
    }
}

pub fn run(args: PruneArgs) -> Result<()> {
    if let Some(s) = args.sparsity.filter(|s| !(0.0..1.0).contains(s)) {
        return Err(Error::config(format!("--sparsity must be in [0, 1), got {s}")));
    }
    if let Some(f) = args.channels.filter(|f| !(*f > 0.0 && *f <= 1.0)) {
        return Err(Error::config(format!("--channels must be in (0, 1], got {f}")));
    }
    if args.sparsity.is_none() && args.channels.is_none() {
        return Err(Error::config("prune needs --sparsity, --channels or both"));
    }
    let criterion: ChannelCriterion = args.criterion.parse()?;
    let (tensors, json) = load_checkpoint(&args.checkpoint)?;
    let state: RunState = serde_json::from_value(json)
        .map_err(|e| Error::format(&args.checkpoint, format!("not a leangcn training checkpoint: {e}")))?;
    let precision = state.precision.clone();
    let out = args.out.clone().unwrap_or_else(|| {
        let mut p = args.checkpoint.clone().into_os_string();
        if let Some(s) = args.sparsity {
            p.push(format!(".pruned-{s}"));
        }
        if let Some(f) = args.channels {
            p.push(format!(".channels-{f}"));
        }
        p.push(".safetensors");
        PathBuf::from(p)
    });
    let task = Prune {
        checkpoint: args.checkpoint.clone(),
        state,
        tensors,
        sparsity: args.sparsity,
        channels: args.channels.map(|f| (f, criterion)),
    };
    let (pruned, state, achieved, kept, stored) = run_on(args.backend.parse::<BackendChoice>()?, &precision, task)?;
    save_checkpoint(
        &out,
        &pruned,
        &serde_json::to_value(&state).expect("run state serialises"),
    )?;
    let widths = match &state.config.model.widths {
        Some(w) => {
            let w: Vec<String> = w.iter().map(|b| format!("{}/{}", b.mid, b.out)).collect();
            format!("; block widths (internal/output) {}", w.join(" "))
        }
        None => String::new(),
    };
    println!(
        "{}: backbone conv sparsity {:.4}; {kept} of {stored} parameters kept{widths}; written to {}",
        args.checkpoint.display(),
        achieved,
        out.display()
    );
    Ok(())
}
