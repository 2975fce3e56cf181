//! Choosing a backend at run time: the CPU in f32 or f64, or the GPU, with a clear message when the
//! GPU cannot be used.

use std::str::FromStr;

use super::cpu::CpuBackend;
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

/// Runs `task` on the chosen backend in the given precision (`f32` or `f64`).
pub fn run_on<T: BackendTask>(choice: BackendChoice, precision: &str, task: T) -> Result<T::Output> {
    let use_cpu = match choice {
        BackendChoice::Cpu => true,
        BackendChoice::Cuda => return Err(Error::Cuda(cuda_unavailable_reason())),
        BackendChoice::Auto => {
            eprintln!("using the CPU: {}", cuda_unavailable_reason());
            true
        }
    };
    debug_assert!(use_cpu);
    match precision {
        "f32" => task.run(&CpuBackend::<f32>::new()),
        "f64" => task.run(&CpuBackend::<f64>::new()),
        other => Err(Error::config(format!("precision must be f32 or f64, got '{other}'"))),
    }
}

/// Why the GPU cannot run training in this build or on this machine.
fn cuda_unavailable_reason() -> String {
    match super::cuda::probe::probe_gpu() {
        Err(reason) => format!("no usable GPU ({reason})"),
        Ok(_) => "a GPU is present, but this build's CUDA backend does not implement the training ops yet".into(),
    }
}
