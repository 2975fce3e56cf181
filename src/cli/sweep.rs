//! `leangcn sweep --preset tiny --sparsity 0,0.6,0.8,0.95,0.99 [--assemble] [--lottery R] --out DIR`

use std::path::PathBuf;

use clap::Args;

use crate::backend::select::{run_on, BackendChoice, BackendTask};
use crate::backend::Backend;
use crate::sparse::sweep::{run_sweep, SweepOptions, SweepRow};
use crate::train::datasets::open_datasets;
use crate::train::TrainConfig;
use crate::{Error, Result};

#[derive(Args, Debug)]
pub struct SweepArgs {
    #[arg(long, default_value = "tiny")]
    preset: String,
    /// Sparsities to train (0 is the dense model).
    #[arg(long, value_delimiter = ',', default_value = "0,0.6,0.8,0.95,0.99")]
    sparsity: Vec<f64>,
    /// Also train lottery tickets with this many rounds of magnitude pruning each.
    #[arg(long)]
    lottery: Option<usize>,
    /// Also train the multi-level sparsity assembly: one expert per nonzero sparsity, features
    /// averaged into a shared head plus one auxiliary head per expert, gradient clipped to a global
    /// norm of 45 unless `max_grad_norm` is set.
    #[arg(long)]
    assemble: bool,
    /// Dense warm-up of the assembly's experts, as a fraction of the epochs (the reference: 0.8).
    #[arg(long, default_value_t = crate::sparse::assembly::REFERENCE_WARMUP_FRACTION)]
    assemble_warmup_fraction: f64,
    #[arg(long)]
    epochs: Option<usize>,
    /// Dense warm-up of the sparse generator, as a fraction of the epochs (the reference: 0.6).
    #[arg(long, default_value_t = 0.6)]
    warmup_fraction: f64,
    #[arg(long, default_value = "runs/sweep")]
    out: PathBuf,
    #[arg(long, default_value = "auto")]
    backend: String,
    /// An annotation file instead of the built-in data.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Any configuration key, TOML syntax (as for `train`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    #[arg(long)]
    quiet: bool,
}

struct Sweep(SweepOptions);

impl BackendTask for Sweep {
    type Output = Vec<SweepRow>;
    fn run<B: Backend>(mut self, be: &B) -> Result<Vec<SweepRow>> {
        let data = open_datasets(&mut self.0.base)?;
        run_sweep(be, &self.0, data)
    }
}

pub fn run(args: SweepArgs) -> Result<()> {
    let mut base = TrainConfig::from_toml_with_overrides(&format!("preset = \"{}\"", args.preset), &args.set)?;
    base.epochs = args.epochs.unwrap_or(base.epochs);
    base.data.path = args.data.clone();
    base.validate()?;
    let precision = base.precision.clone();
    let opts = SweepOptions {
        base,
        sparsities: args.sparsity.clone(),
        lottery_rounds: args.lottery,
        warmup_fraction: args.warmup_fraction,
        assemble: args.assemble,
        assemble_warmup_fraction: args.assemble_warmup_fraction,
        out: args.out.clone(),
        quiet: args.quiet,
    };
    let rows = run_on(args.backend.parse::<BackendChoice>()?, &precision, Sweep(opts))?;
    println!(
        "{}",
        std::fs::read_to_string(args.out.join("sweep.md")).map_err(|e| Error::io(args.out.join("sweep.md"), e))?
    );
    println!(
        "{} configurations; table, per-layer densities and plot in {}",
        rows.len(),
        args.out.display()
    );
    Ok(())
}
