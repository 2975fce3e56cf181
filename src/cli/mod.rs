//! The `leangcn` command line: `train`, `eval`, `bench`, `check-golden`, `data`, `kernels`.

mod bench;
mod check_golden;
mod data;
mod eval;
mod prune;
mod sweep;
mod train;

use clap::{Parser, Subcommand};

use crate::Result;

#[derive(Parser, Debug)]
#[command(
    name = "leangcn",
    version,
    about = "Exact, instrumented ST-GCN training on CPU and GPU"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train an ST-GCN (default: the `tiny` preset on the built-in synthetic dataset).
    Train(train::TrainArgs),
    /// Evaluate a checkpoint on its validation data.
    Eval(eval::EvalArgs),
    /// Count and measure a model per layer (parameters, FLOPs, saved activations, times), or sweep
    /// sparsity kinds, batch sizes and clip lengths.
    Bench(bench::BenchArgs),
    /// Check the engine against a golden-vector file computed by PyTorch.
    CheckGolden(check_golden::CheckGoldenArgs),
    /// Train dense and sparse models over sparsity levels and tabulate accuracy against parameters.
    Sweep(sweep::SweepArgs),
    /// Apply a final sparsity mask to a checkpoint, or compact its channels, and write the result.
    Prune(prune::PruneArgs),
    /// Inspect or convert skeleton datasets.
    Data(data::DataArgs),
    /// Print the embedded CUDA kernels and their ptxas resource report.
    Kernels,
}

/// Parses the command line and runs it; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let result: Result<i32> = match cli.command {
        Command::Train(args) => train::run(args).map(|_| 0),
        Command::Eval(args) => eval::run(args).map(|_| 0),
        Command::Bench(args) => bench::run(args).map(|_| 0),
        Command::CheckGolden(args) => check_golden::run(args),
        Command::Prune(args) => prune::run(args).map(|_| 0),
        Command::Sweep(args) => sweep::run(args).map(|_| 0),
        Command::Data(args) => data::run(args).map(|_| 0),
        Command::Kernels => {
            println!("{}", crate::backend::cuda::kernels::kernel_report());
            Ok(0)
        }
    };
    match result {
        Ok(code) => code,
        Err(crate::Error::Interrupted) => 130,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
