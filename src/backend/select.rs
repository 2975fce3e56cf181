//! Choosing a backend at run time: the CPU in f32 or f64, or the GPU in f32 or with TF32
//! tensor-core convolutions, with a clear message when the GPU cannot be used.

use std::str::FromStr;

use super::cpu::CpuBackend;
use super::cuda::CudaBackend;
use super::{Backend, ConvMath};
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

/// The precisions `--precision` accepts.
pub const PRECISIONS: [&str; 3] = ["f32", "f64", "tf32"];

/// Work that runs on whichever backend is chosen.
pub trait BackendTask {
    type Output;
    fn run<B: Backend>(self, be: &B) -> Result<Self::Output>;
}

/// Runs `task` on the chosen backend in the given precision: `f32`, `f64` (the CPU only; `auto`
/// runs it there), or `tf32` (the GPU only: f32 with the convolution GEMMs on TF32 tensor cores;
/// refused on the CPU rather than silently computed in f32, so that a tf32 result is always one).
pub fn run_on<T: BackendTask>(choice: BackendChoice, precision: &str, task: T) -> Result<T::Output> {
    if !PRECISIONS.contains(&precision) {
        return Err(Error::config(format!(
            "precision must be f32, f64 or tf32, got '{precision}'"
        )));
    }
    match (choice, precision) {
        (BackendChoice::Cuda, "f64") => Err(Error::config(
            "the CUDA backend computes in f32; use --precision f32 or --backend cpu",
        )),
        (BackendChoice::Cpu, "tf32") => Err(Error::config(
            "tf32 runs the convolutions on a GPU's tensor cores; use --backend cuda, or --precision f32 on the CPU",
        )),
        (BackendChoice::Cuda | BackendChoice::Auto, "tf32") => CudaBackend::open_with(0, ConvMath::Tf32)
            .map_err(|e| Error::config(format!("tf32 needs the GPU, which cannot be used: {e}")))
            .and_then(|gpu| task.run(&gpu)),
        (BackendChoice::Cuda, _) => task.run(&CudaBackend::open(0)?),
        (BackendChoice::Auto, "f32") => match CudaBackend::open(0) {
            Ok(gpu) => task.run(&gpu),
            Err(e) => {
                eprintln!("using the CPU: {e}");
                task.run(&CpuBackend::<f32>::new())
            }
        },
        (BackendChoice::Auto, _) => {
            eprintln!("using the CPU: f64 runs on the CPU only");
            task.run(&CpuBackend::<f64>::new())
        }
        (BackendChoice::Cpu, "f32") => task.run(&CpuBackend::<f32>::new()),
        (BackendChoice::Cpu, _) => task.run(&CpuBackend::<f64>::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Describe;
    impl BackendTask for Describe {
        type Output = String;
        fn run<B: Backend>(self, be: &B) -> Result<String> {
            Ok(be.describe())
        }
    }

    #[test]
    fn tf32_on_the_cpu_is_refused() {
        let e = run_on(BackendChoice::Cpu, "tf32", Describe).expect_err("tf32 on the CPU");
        assert!(e.to_string().contains("tensor cores"), "{e}");
        let e = run_on(BackendChoice::Cpu, "bf16", Describe).expect_err("an unknown precision");
        assert!(e.to_string().contains("f32, f64 or tf32"), "{e}");
    }
}
