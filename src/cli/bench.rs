//! `leangcn bench [--backend cpu] [--preset stgcn] [--batch 16] [--clip-len 100] [--precision f32|f64|tf32]`

use clap::Args;

use crate::backend::select::{run_on, BackendChoice, BackendTask};
use crate::backend::Backend;
use crate::bench::count::ModelCost;
use crate::bench::{measure, Throughput};
use crate::model::StgcnConfig;
use crate::train::TrainConfig;
use crate::Result;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[arg(long, default_value = "cpu")]
    backend: String,
    /// Model preset (`stgcn` or `tiny`).
    #[arg(long, default_value = "stgcn")]
    preset: String,
    #[arg(long, default_value_t = 16)]
    batch: usize,
    #[arg(long)]
    clip_len: Option<usize>,
    #[arg(long)]
    classes: Option<usize>,
    /// `f32`, `f64` (CPU) or `tf32` (CUDA: the convolutions on TF32 tensor cores).
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
}

struct Bench {
    model: StgcnConfig,
    batch: usize,
    clip_len: usize,
    warmup: usize,
    iters: usize,
}

impl BackendTask for Bench {
    type Output = Throughput;
    fn run<B: Backend>(self, be: &B) -> Result<Throughput> {
        measure(be, &self.model, self.batch, self.clip_len, self.warmup, self.iters)
    }
}

pub fn run(args: BenchArgs) -> Result<()> {
    let preset = TrainConfig::preset(&args.preset)?;
    let mut model = preset.model;
    if let Some(classes) = args.classes {
        model.num_classes = classes;
    }
    let clip_len = args.clip_len.unwrap_or(preset.clip_len);
    model.validate(clip_len)?;
    if args.count_only {
        let cost = ModelCost::of(&model, clip_len);
        if args.json {
            println!("{}", serde_json::to_string(&cost).expect("counts serialise"));
        } else {
            println!("{cost}");
        }
        return Ok(());
    }
    let task = Bench {
        model,
        batch: args.batch,
        clip_len,
        warmup: args.warmup,
        iters: args.iters.max(1),
    };
    let choice: BackendChoice = args.backend.parse()?;
    let result = run_on(choice, &args.precision, task)?;
    if args.json {
        println!("{}", serde_json::to_string(&result).expect("throughput serialises"));
    } else {
        println!("{result}");
    }
    Ok(())
}
