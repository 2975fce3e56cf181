//! Choosing a backend at run time: the CPU in f32 or f64, or the GPU, with a clear message when the
//! GPU cannot be used.

use std::str::FromStr;

use super::cpu::CpuBackend;
use super::cuda::CudaBackend;
use super::Backend;
use crate::{Error, Result};

/// The backend a user asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendChoice {
    /// The GPU when one is usable, else the CPU (saying why).
    Auto,
    Cpu,
    Cuda,
}

impl FromStr for BackendChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(BackendChoice::Auto),
            "cpu" => Ok(BackendChoice::Cpu),
            "cuda" | "gpu" => Ok(BackendChoice::Cuda),
            other => Err(Error::config(format!(
                "unknown backend '{other}' (expected auto, cpu or cuda)"
            ))),
        }
    }
}

/// Work that runs on whichever backend is chosen.
pub trait BackendTask {
    type Output;
    fn run<B: Backend>(self, be: &B) -> Result<Self::Output>;
}

/// Runs `task` on the chosen backend in the given precision (`f32` or `f64`). The GPU computes in
/// f32; `auto` with f64 asked for runs on the CPU.
pub fn run_on<T: BackendTask>(choice: BackendChoice, precision: &str, task: T) -> Result<T::Output> {
    if !matches!(precision, "f32" | "f64") {
        return Err(Error::config(format!(
            "precision must be f32 or f64, got '{precision}'"
        )));
    }
    match choice {
        BackendChoice::Cuda if precision == "f64" => {
            return Err(Error::config(
                "the CUDA backend computes in f32; use --precision f32 or --backend cpu",
            ))
        }
        BackendChoice::Cuda => return task.run(&CudaBackend::open(0)?),
        BackendChoice::Auto if precision == "f32" => match CudaBackend::open(0) {
            Ok(gpu) => return task.run(&gpu),
            Err(e) => eprintln!("using the CPU: {e}"),
        },
        BackendChoice::Auto => eprintln!("using the CPU: f64 runs on the CPU only"),
        BackendChoice::Cpu => {}
    }
    match precision {
        "f32" => task.run(&CpuBackend::<f32>::new()),
        _ => task.run(&CpuBackend::<f64>::new()),
    }
}
