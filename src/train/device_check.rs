//! A check of a device backend before a command trusts it: the `tiny` model's training steps and
//! evaluation forward on the device against the CPU backend computing in the same arithmetic, from
//! the same weights and batches. A kernel that computes wrongly on this GPU, driver or build then
//! stops the command with what differed, instead of training on wrong numbers.
//!
//! Tolerance: the GPU's f32 sums run in other orders than the CPU's, so the two drift apart a
//! little each step: 1e-3 relative over a few steps at lr 0.1 (the golden README's allowance for
//! PyTorch's own f32 runs), plus 4u for operands rounded to TF32 or bf16 and for bf16-stored
//! activations, where a sum differing in its last f32 bit can round to the neighbouring value (u the
//! larger unit roundoff). A wrong kernel misses it by orders of magnitude.

use super::step::train_step;
use super::TrainConfig;
use crate::backend::cpu::CpuBackend;
use crate::backend::Backend;
use crate::layers::params_of;
use crate::model::init::InitRng;
use crate::model::Stgcn;
use crate::optim::Sgd;
use crate::{Error, Result};

/// `[batch, persons, frames, joints, channels]` of the check's batches.
const DIMS: [usize; 5] = [4, 2, 16, 25, 3];
const STEPS: usize = 3;

/// The `tiny` preset's model and optimizer on `be`, from fixed seeds.
fn setup<B: Backend>(be: &B) -> Result<(Stgcn<B>, Sgd<B>)> {
    let cfg = TrainConfig::preset("tiny")?;
    let mut model = Stgcn::new(be, cfg.model.clone(), 5)?;
    let lens: Vec<usize> = params_of(&mut model).into_iter().map(|(_, p)| p.len()).collect();
    let sgd = Sgd::new(be, cfg.sgd(), cfg.schedule(100), cfg.max_grad_norm, &lens);
    Ok((model, sgd))
}

/// What a backend computes from the check's inputs: the loss of each training step, then the
/// evaluation logits.
fn outcome<B: Backend<Elem = f32>>(be: &B) -> Result<(Vec<f64>, Vec<f32>)> {
    let (mut model, mut sgd) = setup(be)?;
    let classes = model.config.num_classes;
    let mut rng = InitRng::new(9);
    let mut batch = || {
        let x: Vec<f32> = (0..DIMS.iter().product()).map(|_| rng.normal() as f32).collect();
        let labels: Vec<u32> = (0..DIMS[0] as u32).map(|i| i % classes as u32).collect();
        (be.upload(&x), be.upload_idx(&labels))
    };
    let mut losses = Vec::new();
    for _ in 0..STEPS {
        let (x, labels) = batch();
        losses.push(train_step(be, &mut model, &mut sgd, &x, &labels, DIMS, 0.0, 0)?.loss);
    }
    let (x, _) = batch();
    let logits = model.forward(be, &x, DIMS, false, 0)?;
    let logits = be.download(&logits);
    be.check()?;
    Ok((losses, logits))
}

/// `Ok` if `be` computes the check's steps as the CPU backend does in its arithmetic (within the
/// module's tolerance), else an error that names the first value that differs.
pub fn check_device<B: Backend<Elem = f32>>(be: &B) -> Result<()> {
    let u = be.conv_math().unit_roundoff().max(be.storage().unit_roundoff());
    let reference = CpuBackend::<f32>::with_precision(be.conv_math(), be.storage());
    check_against(be, &reference, 1e-3 + 4.0 * u)
}

/// `check_device` against the CPU backend `cpu` with a relative `tolerance`.
fn check_against<B: Backend<Elem = f32>>(be: &B, cpu: &CpuBackend<f32>, tolerance: f64) -> Result<()> {
    let (want_losses, want_logits) = outcome(cpu)?;
    let (losses, logits) = outcome(be)?;
    let scale = want_logits.iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
    // a NaN is never within
    let within = |got: f64, want: f64, scale: f64| (got - want).abs() <= tolerance * want.abs().max(scale);
    let failure = |what: String, got: f64, want: f64| {
        Error::Cuda(format!(
            "{} fails its check against the CPU: {what} is {got} where the CPU gives {want} \
             (allowed: {tolerance:e} relative); run with --backend cpu",
            be.describe()
        ))
    };
    for (step, (&got, &want)) in losses.iter().zip(&want_losses).enumerate() {
        if !within(got, want, 0.0) {
            return Err(failure(format!("the loss of training step {step}"), got, want));
        }
    }
    for (i, (&got, &want)) in logits.iter().zip(&want_logits).enumerate() {
        if !within(f64::from(got), f64::from(want), scale) {
            return Err(failure(format!("evaluation logit {i}"), got.into(), want.into()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ConvMath;

    #[test]
    fn the_cpu_passes_its_own_check() {
        for math in ConvMath::ALL {
            check_device(&CpuBackend::<f32>::with_conv_math(math)).expect("the CPU against itself");
        }
        let mixed = CpuBackend::<f32>::with_precision(ConvMath::Bf16, crate::backend::Storage::Bf16);
        check_device(&mixed).expect("bf16 mixed precision against itself");
    }

    /// A backend that computes otherwise than its reference (here convs rounding to bf16 against
    /// an f32 CPU, with f32's allowance) fails, naming the value that differs.
    #[test]
    fn a_backend_computing_otherwise_fails_naming_the_value() {
        let f32_cpu = CpuBackend::<f32>::new();
        let wrong = CpuBackend::<f32>::with_conv_math(ConvMath::Bf16);
        let e = check_against(&wrong, &f32_cpu, 1e-3).expect_err("bf16 convs are not f32 ones");
        let text = e.to_string();
        assert!(
            text.contains("fails its check against the CPU") && text.contains("where the CPU gives"),
            "{text}"
        );
    }
}
