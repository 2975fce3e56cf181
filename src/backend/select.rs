//! Choosing a backend at run time: the CPU or the GPU, in f64 (the CPU only), f32, f32 with the
//! convolution GEMMs' operands rounded to TF32 or bf16 (tensor cores on the GPU, their exact
//! emulation on the CPU), or bf16 mixed precision (bf16 operands and bf16-stored activations), with
//! a clear message when the GPU cannot be used, or computes otherwise than the CPU (its check
//! before any command uses it).

use std::str::FromStr;

use super::cpu::CpuBackend;
use super::cuda::CudaBackend;
use super::{Backend, ConvMath, Scalar, Storage};
use crate::train::device_check::check_device;
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

/// The precisions `--precision` accepts: `f64`; f32 storage with one of the conv maths (`f32`,
/// `tf32`, `bf16`); and `bf16-mixed`: bf16 conv operands with bf16-stored activations and
/// gradients, f32 master weights, batch statistics and optimizer state (PyTorch's bf16 autocast).
pub const PRECISIONS: [&str; 5] = ["f32", "f64", "tf32", "bf16", "bf16-mixed"];

/// The name of bf16 mixed precision.
const BF16_MIXED: &str = "bf16-mixed";

/// The conv math and activation storage of an f32-element precision, `None` for `f64`, or an
/// error that lists every precision.
pub fn parse_precision(precision: &str) -> Result<Option<(ConvMath, Storage)>> {
    match (precision, ConvMath::from_name(precision)) {
        ("f64", _) => Ok(None),
        (BF16_MIXED, _) => Ok(Some((ConvMath::Bf16, Storage::Bf16))),
        (_, Some(math)) => Ok(Some((math, Storage::F32))),
        _ => Err(Error::config(format!(
            "precision must be one of {}, got '{precision}'",
            PRECISIONS.join(", ")
        ))),
    }
}

/// Every precision a GPU computes in, as (name, conv math, activation storage): `PRECISIONS` but
/// `f64`, in their order.
pub fn device_precisions() -> impl Iterator<Item = (&'static str, ConvMath, Storage)> + Clone {
    PRECISIONS.into_iter().filter_map(|name| {
        parse_precision(name)
            .ok()
            .flatten()
            .map(|(math, storage)| (name, math, storage))
    })
}

/// The precision `be` computes in, as `--precision` names it: `bf16-mixed` when it stores
/// activations in bf16, the conv math when it rounds (`tf32`, `bf16`: f32 elements with rounded
/// conv operands), else the element type.
pub fn precision_of<B: Backend>(be: &B) -> &'static str {
    match (be.storage(), be.conv_math()) {
        (Storage::Bf16, _) => BF16_MIXED,
        (Storage::F32, ConvMath::F32) => B::Elem::NAME,
        (Storage::F32, math) => math.name(),
    }
}

/// Work that runs on whichever backend is chosen.
pub trait BackendTask {
    type Output;
    fn run<B: Backend>(self, be: &B) -> Result<Self::Output>;
}

/// Runs `task` on the chosen backend in the given precision: `f64` (the CPU only; `auto` runs it
/// there), `f32`, `tf32`, `bf16` (f32 with the conv GEMMs' operands rounded: the tensor cores on
/// the GPU, their exact emulation on the CPU) or `bf16-mixed` (bf16-stored activations as well).
/// `auto` takes the GPU when it can open it in that precision, it is not the PTX emulator, and it
/// passes its check against the CPU; else it says why and takes the CPU.
pub fn run_on<T: BackendTask>(choice: BackendChoice, precision: &str, task: T) -> Result<T::Output> {
    let Some((math, storage)) = parse_precision(precision)? else {
        return match choice {
            BackendChoice::Cuda => Err(Error::config(
                "the CUDA backend computes in f32; use --precision f32, tf32 or bf16, or --backend cpu",
            )),
            BackendChoice::Auto => {
                eprintln!("using the CPU: f64 runs on the CPU only");
                task.run(&CpuBackend::<f64>::new())
            }
            BackendChoice::Cpu => task.run(&CpuBackend::<f64>::new()),
        };
    };
    let cpu = || CpuBackend::<f32>::with_precision(math, storage);
    match choice {
        BackendChoice::Cuda => task.run(&checked_gpu(math, storage, true)?),
        BackendChoice::Auto => match checked_gpu(math, storage, false) {
            Ok(gpu) => task.run(&gpu),
            Err(e) => {
                eprintln!("using the CPU: {e}");
                task.run(&cpu())
            }
        },
        BackendChoice::Cpu => task.run(&cpu()),
    }
}

/// GPU 0 in `math` with activations in `storage`, once it has passed [`check_device`] (a few
/// training steps of the `tiny` model against the CPU), unless `LEANGCN_SKIP_DEVICE_CHECK=1` says
/// to trust it unchecked. The check runs once a process for each precision (`eval` opens the GPU
/// for every stream). The PTX emulator is taken only when asked for (`emulated_ok`): it is slower
/// than the CPU backend.
fn checked_gpu(math: ConvMath, storage: Storage, emulated_ok: bool) -> Result<CudaBackend> {
    static PASSED: std::sync::Mutex<Vec<(ConvMath, Storage)>> = std::sync::Mutex::new(Vec::new());
    let gpu = CudaBackend::open_with_precision(0, math, storage)?;
    if !emulated_ok && gpu.device().is_emulated() {
        return Err(Error::Cuda(format!(
            "the CUDA device is the PTX emulator ({}), slower than the CPU backend; --backend cuda runs on it",
            gpu.device().describe()
        )));
    }
    let mut passed = PASSED.lock().expect("device check lock");
    if !passed.contains(&(math, storage)) && std::env::var("LEANGCN_SKIP_DEVICE_CHECK").as_deref() != Ok("1") {
        check_device(&gpu)?;
        passed.push((math, storage));
    }
    Ok(gpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a task sees of its backend: the precision it computes in and its description.
    struct Describe;
    impl BackendTask for Describe {
        type Output = (&'static str, String);
        fn run<B: Backend>(self, be: &B) -> Result<Self::Output> {
            Ok((precision_of(be), be.describe()))
        }
    }

    #[test]
    fn every_precision_runs_as_itself_on_the_cpu_and_on_auto() {
        // `auto` takes the GPU where it opens in that precision, else the CPU: the same precision
        for choice in [BackendChoice::Cpu, BackendChoice::Auto] {
            for precision in PRECISIONS {
                let (ran, describe) = run_on(choice, precision, Describe).expect(precision);
                assert_eq!(ran, precision, "{describe}");
            }
        }
        let (_, describe) = run_on(BackendChoice::Cpu, "bf16", Describe).unwrap();
        assert!(
            describe.contains("cpu f32") && describe.contains("bf16-rounded conv operands"),
            "{describe}"
        );
        assert!(!describe.contains("bf16-stored activations"), "{describe}");
        let (_, describe) = run_on(BackendChoice::Cpu, "bf16-mixed", Describe).unwrap();
        assert!(
            describe.contains("bf16-rounded conv operands") && describe.contains("bf16-stored activations"),
            "{describe}"
        );
    }

    #[test]
    fn an_unknown_precision_is_refused_naming_all_of_them() {
        let e = run_on(BackendChoice::Cpu, "fp16", Describe).expect_err("an unknown precision");
        assert!(
            e.to_string().contains("f32, f64, tf32, bf16, bf16-mixed, got 'fp16'"),
            "{e}"
        );
        let e = run_on(BackendChoice::Cuda, "f64", Describe).expect_err("f64 on the GPU");
        assert!(e.to_string().contains("--backend cpu"), "{e}");
    }
}
