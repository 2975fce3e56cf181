//! `leangcn bench [--backend cpu] [--preset stgcn] [--batch 16] [--clip-len 100] [--precision f32|f64|tf32|bf16|bf16-mixed]`:
//! the per-layer report (parameters, FLOPs, saved activations) and the forward and training-step
//! throughput; `--count-only` prints the parameter and FLOP table without running anything;
//! `--sweep` measures sparse and compacted variants over batch sizes and clip lengths and writes
//! tables and plots.

use std::path::PathBuf;

use clap::Args;

use crate::backend::select::{run_on, BackendChoice, BackendTask};
use crate::backend::{Backend, Storage};
use crate::bench::count::ModelCost;
use crate::bench::floor;
use crate::bench::report::{measure_model, ModelReport};
use crate::bench::sweep::{run_bench_sweep, BenchRow, BenchSweepOptions, SparsityKind};
use crate::bench::Repeats;
use crate::model::{Stgcn, StgcnConfig};
use crate::train::TrainConfig;
use crate::{Error, Result};

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[arg(long, default_value = "cpu")]
    backend: String,
    /// Model preset (`stgcn` or `tiny`).
    #[arg(long, default_value = "stgcn")]
    preset: String,
    /// Batch sizes (samples), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "16")]
    batch: Vec<usize>,
    /// Clip lengths (frames), comma-separated; default the preset's.
    #[arg(long, value_delimiter = ',')]
    clip_len: Vec<usize>,
    #[arg(long)]
    classes: Option<usize>,
    /// `f32`, `f64` (CPU), `tf32` or `bf16` (the conv GEMMs' operands rounded: tensor cores on the
    /// GPU, their exact emulation on the CPU), or `bf16-mixed` (bf16 operands and bf16-stored
    /// activations and gradients; CPU only for now).
    #[arg(long, default_value = "f32")]
    precision: String,
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    #[arg(long, default_value_t = 5)]
    iters: usize,
    /// Print the result as one JSON line.
    #[arg(long)]
    json: bool,
    /// Print the per-layer parameter and FLOP table of the model and exit, running nothing.
    #[arg(long)]
    count_only: bool,
    /// Measure the dense model and its sparse variants over every batch size and clip length.
    #[arg(long)]
    sweep: bool,
    /// Sweep: sparsity levels of the unstructured and channel kinds (0 is the dense model).
    #[arg(long, value_delimiter = ',', default_value = "0,0.5,0.9,0.99")]
    sparsity: Vec<f64>,
    /// Sweep: `unstructured` (global magnitude mask), `channel` (compaction to 1 - level of the
    /// channels), `2:4` (2 of every 4 input weights, level 0.5).
    #[arg(long, value_delimiter = ',', default_value = "unstructured,channel,2:4")]
    kinds: Vec<String>,
    /// Sweep: channel criterion, `l1`, `l2` or `bn`.
    #[arg(long, default_value = "l1")]
    criterion: String,
    /// Sweep: output directory for bench.md, bench.csv, bench.json and the plots.
    #[arg(long, default_value = "runs/bench")]
    out: PathBuf,
    #[arg(long)]
    quiet: bool,
}

/// The per-layer report of the dense model at every batch size and clip length.
struct Report {
    model: StgcnConfig,
    batches: Vec<usize>,
    clip_lens: Vec<usize>,
    warmup: usize,
    iters: usize,
}

impl BackendTask for Report {
    type Output = Vec<ModelReport>;
    fn run<B: Backend>(self, be: &B) -> Result<Vec<ModelReport>> {
        let mut model = Stgcn::new(be, self.model, 0)?;
        let mut reports = Vec::new();
        for &batch in &self.batches {
            for &clip_len in &self.clip_lens {
                let repeats = Repeats {
                    warmup: self.warmup,
                    iters: self.iters,
                    per_layer: true,
                };
                reports.push(measure_model(be, &mut model, batch, clip_len, repeats)?);
            }
        }
        Ok(reports)
    }
}

struct Sweep(BenchSweepOptions);

impl BackendTask for Sweep {
    type Output = Vec<BenchRow>;
    fn run<B: Backend>(self, be: &B) -> Result<Vec<BenchRow>> {
        if crate::backend::cuda::device::is_emulated(&be.describe()) {
            return Err(Error::config(
                "the sweep compares throughputs, and the CUDA device is the PTX emulator, whose times are not a GPU's; run it on a GPU or with --backend cpu",
            ));
        }
        run_bench_sweep(be, &self.0)
    }
}

pub fn run(args: BenchArgs) -> Result<()> {
    let preset = TrainConfig::preset(&args.preset)?;
    let mut model = preset.model;
    if let Some(classes) = args.classes {
        model.num_classes = classes;
    }
    let clip_lens = if args.clip_len.is_empty() {
        vec![preset.clip_len]
    } else {
        args.clip_len.clone()
    };
    for &t in &clip_lens {
        model.validate(t)?;
    }
    if args.batch.contains(&0) {
        return Err(Error::config("--batch sizes must be at least 1"));
    }
    if args.count_only {
        for &t in &clip_lens {
            let cost = ModelCost::of(&model, t);
            if args.json {
                println!("{}", serde_json::to_string(&cost).expect("counts serialise"));
            } else {
                println!("{cost}");
                // what a training step asks of a device: its FLOPs and its least traffic
                for &batch in &args.batch {
                    let (conv, aggregation) = floor::step_flop(&cost, batch);
                    println!(
                        "training step at batch {batch}: {:.3} TFLOP ({:.3} of convs, {:.3} of graph aggregation), {:.2} GB of least traffic with f32 activations, {:.2} GB with bf16",
                        (conv + aggregation) / 1e12,
                        conv / 1e12,
                        aggregation / 1e12,
                        floor::step_bytes(&model, t, batch, Storage::F32) / 1e9,
                        floor::step_bytes(&model, t, batch, Storage::Bf16) / 1e9
                    );
                }
            }
        }
        return Ok(());
    }
    let choice: BackendChoice = args.backend.parse()?;
    if args.sweep {
        let kinds = args
            .kinds
            .iter()
            .map(|k| k.parse::<SparsityKind>())
            .collect::<Result<Vec<_>>>()?;
        let opts = BenchSweepOptions {
            model,
            sparsities: args.sparsity.clone(),
            kinds,
            batches: args.batch.clone(),
            clip_lens,
            criterion: args.criterion.parse()?,
            warmup: args.warmup,
            iters: args.iters,
            out: args.out.clone(),
            quiet: args.quiet,
        };
        let rows = run_on(choice, &args.precision, Sweep(opts))?;
        let table = args.out.join("bench.md");
        println!("{}", std::fs::read_to_string(&table).map_err(|e| Error::io(&table, e))?);
        println!(
            "{} measurements; table, per-layer JSON and plots in {}",
            rows.len(),
            args.out.display()
        );
        return Ok(());
    }
    let task = Report {
        model,
        batches: args.batch.clone(),
        clip_lens,
        warmup: args.warmup,
        iters: args.iters,
    };
    for report in run_on(choice, &args.precision, task)? {
        if args.json {
            println!("{}", serde_json::to_string(&report).expect("reports serialise"));
        } else {
            println!("{report}\n");
        }
    }
    Ok(())
}
