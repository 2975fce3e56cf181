//! `leangcn check-golden FILE [--precision f64|f32|tf32|bf16|bf16-mixed] [--backend cpu|cuda]`

use std::path::PathBuf;

use clap::Args;

use crate::backend::select::{run_on, BackendChoice, BackendTask};
use crate::backend::Backend;
use crate::golden::{check_golden, GoldenFile, Report};
use crate::Result;

#[derive(Args, Debug)]
pub struct CheckGoldenArgs {
    /// A golden-vector file (safetensors with `stgcn_golden` metadata).
    file: PathBuf,
    /// f64 follows PyTorch's float64 run through every step; f32 is checked to step 2; tf32 and
    /// bf16 (rounded conv operands, on the GPU's tensor cores or the CPU's emulation) likewise, with
    /// tolerances derived from their unit roundoff.
    #[arg(long, default_value = "f64")]
    precision: String,
    #[arg(long, default_value = "cpu")]
    backend: String,
}

struct Check(GoldenFile);

impl BackendTask for Check {
    type Output = Report;
    fn run<B: Backend>(self, be: &B) -> Result<Report> {
        check_golden(be, &self.0)
    }
}

pub fn run(args: CheckGoldenArgs) -> Result<i32> {
    let file = GoldenFile::open(&args.file)?;
    let choice: BackendChoice = args.backend.parse()?;
    let report = run_on(choice, &args.precision, Check(file))?;
    println!("{report}");
    Ok(if report.passed() { 0 } else { 1 })
}
