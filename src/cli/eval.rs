//! `leangcn eval CHECKPOINT [CHECKPOINT...] [--weights 2,2,1,1]`: top-1/top-5 of one checkpoint, or
//! of several streams (joint, bone, joint motion, bone motion) fused as PYSKL reports them, on the
//! validation split in PYSKL's test pipeline (10 clips per sample, softmax averaged). An assembly
//! checkpoint predicts with its fused head only.

use std::path::PathBuf;

use clap::Args;

use crate::backend::select::{run_on, BackendChoice, BackendTask};
use crate::backend::Backend;
use crate::sparse::lottery::attach_fixed_masks;
use crate::train::checkpoint::{load_checkpoint, NamedTensor};
use crate::train::datasets::open_test_split;
use crate::train::fusion::{clip_averaged_scores, fuse_streams, top1_top5};
use crate::train::model::{build_model, set_sparsities};
use crate::train::trainer::{import_state, RunState};
use crate::{Error, Result};

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Checkpoints written by `leangcn train`; several are fused as streams.
    #[arg(required = true)]
    checkpoints: Vec<PathBuf>,
    /// Stream weights, one per checkpoint (PYSKL's 4-stream fusion is 2,2,1,1); default all 1.
    #[arg(long, value_delimiter = ',')]
    weights: Vec<f64>,
    #[arg(long, default_value = "auto")]
    backend: String,
    /// Evaluate on this annotation file instead of each run's own data.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Compute in this precision (`f32`, `f64`, `tf32`, `bf16` or `bf16-mixed`, as for `train`) instead of each
    /// checkpoint's own.
    #[arg(long)]
    precision: Option<String>,
}

struct Stream {
    checkpoint: PathBuf,
    state: RunState,
    tensors: Vec<NamedTensor>,
}

/// Clip-averaged validation scores of one stream.
struct Score(Stream);

impl BackendTask for Score {
    type Output = (Vec<f64>, Vec<u32>, usize);
    fn run<B: Backend>(self, be: &B) -> Result<Self::Output> {
        let Stream {
            checkpoint,
            state,
            tensors,
        } = self.0;
        let cfg = &state.config;
        let (data, clips) = open_test_split(cfg)?;
        let mut model = build_model(be, cfg)?;
        attach_fixed_masks(be, model.as_mut(), &tensors);
        import_state(be, &tensors, model.as_mut(), None, &checkpoint)?;
        set_sparsities(model.as_mut(), cfg, None);
        let (scores, labels) = clip_averaged_scores(be, model.as_mut(), data, clips, cfg.batch_size)?;
        Ok((scores, labels, cfg.model.num_classes))
    }
}

pub fn run(args: EvalArgs) -> Result<()> {
    let weights = if args.weights.is_empty() {
        vec![1.0; args.checkpoints.len()]
    } else {
        args.weights.clone()
    };
    if weights.len() != args.checkpoints.len() {
        return Err(Error::config(format!(
            "{} weights for {} checkpoints",
            weights.len(),
            args.checkpoints.len()
        )));
    }
    let choice: BackendChoice = args.backend.parse()?;
    let mut streams = Vec::new();
    let mut reference: Option<(Vec<u32>, usize)> = None;
    for path in &args.checkpoints {
        let (tensors, json) = load_checkpoint(path)?;
        let mut state: RunState = serde_json::from_value(json)
            .map_err(|e| Error::format(path, format!("not a leangcn training checkpoint: {e}")))?;
        if let Some(data) = &args.data {
            state.config.data.path = Some(data.clone());
        }
        let precision = args.precision.clone().unwrap_or_else(|| state.precision.clone());
        let stream = Stream {
            checkpoint: path.clone(),
            state,
            tensors,
        };
        let (scores, labels, classes) = run_on(choice, &precision, Score(stream))?;
        let (top1, top5) = top1_top5(&scores, classes, &labels);
        println!(
            "{}: top-1 {:.2}%, top-5 {:.2}% ({} samples)",
            path.display(),
            100.0 * top1,
            100.0 * top5,
            labels.len()
        );
        match &reference {
            Some((l, c)) if *l != labels || *c != classes => {
                return Err(Error::format(
                    path,
                    "evaluates other samples or classes than the first checkpoint: streams cannot be fused",
                ));
            }
            None => reference = Some((labels, classes)),
            _ => {}
        }
        streams.push(scores);
    }
    if streams.len() > 1 {
        let (labels, classes) = reference.expect("at least one stream");
        let fused = fuse_streams(&streams, &weights)?;
        let (top1, top5) = top1_top5(&fused, classes, &labels);
        let w: Vec<String> = weights.iter().map(|w| w.to_string()).collect();
        println!(
            "fused {} streams ({}): top-1 {:.2}%, top-5 {:.2}%",
            streams.len(),
            w.join(":"),
            100.0 * top1,
            100.0 * top5
        );
    }
    Ok(())
}
