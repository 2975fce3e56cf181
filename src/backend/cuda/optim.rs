//! Launchers of the optimizer kernels (`cuda/sgd.cu`, `cuda/cosine_lr.cu`).

use cudarc::driver::{CudaSlice, DevicePtr, DevicePtrMut, DeviceRepr, LaunchConfig, PushKernelArg};

use super::device::CudaDevice;
use super::launch::optional_arg;
use crate::backend::{CosineSchedule, SgdHyper};
use crate::{Error, Result};

/// `struct SgdTensor` of sgd.cu: device pointers and length of one parameter.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct SgdTensorRepr {
    param: u64,
    grad: u64,
    momentum: u64,
    len: u64,
}
// SAFETY: plain old data with the layout of the kernel's struct.
unsafe impl DeviceRepr for SgdTensorRepr {}

/// `struct SgdHyper` of sgd.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct SgdHyperRepr {
    momentum: f32,
    dampening_keep: f32,
    weight_decay: f32,
    nesterov: i32,
    first_step: i32,
    use_momentum: i32,
}
// SAFETY: as above.
unsafe impl DeviceRepr for SgdHyperRepr {}

/// `struct CosineSchedule` of cosine_lr.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct CosineScheduleRepr {
    base_lr: f64,
    min_lr: f64,
    warmup_start_lr: f64,
    total: u64,
    warmup: u64,
    steps_per_index: u64,
}
// SAFETY: as above.
unsafe impl DeviceRepr for CosineScheduleRepr {}

const THREADS: u32 = 256;

fn launch_err(kernel: &str, e: cudarc::driver::DriverError) -> Error {
    Error::Cuda(format!("launching {kernel}: {e:?}"))
}

/// One parameter's (value, gradient, momentum) buffers.
pub type SgdTriple<'a> = (&'a mut CudaSlice<f32>, &'a CudaSlice<f32>, &'a mut CudaSlice<f32>);

/// The device address of the kernel's tensor table for `tensors` (cached by the device).
fn table(dev: &CudaDevice, tensors: &mut [SgdTriple<'_>]) -> Result<u64> {
    let s = &dev.stream;
    let mut rows = Vec::with_capacity(tensors.len());
    for (p, g, m) in tensors.iter_mut() {
        let len = p.len() as u64;
        let (param, _a) = p.device_ptr_mut(s);
        let (grad, _b) = g.device_ptr(s);
        let (momentum, _c) = m.device_ptr_mut(s);
        rows.push(SgdTensorRepr {
            param,
            grad,
            momentum,
            len,
        });
    }
    dev.table(&rows)
}

/// One fused SGD step over every tensor (PyTorch's semantics, see `Backend::sgd_step`).
#[allow(clippy::too_many_arguments)]
pub fn sgd_step(
    dev: &CudaDevice,
    tensors: &mut [SgdTriple<'_>],
    hyper: &SgdHyper,
    lr: &CudaSlice<f32>,
    scale: Option<&CudaSlice<f32>>,
    first_step: bool,
) -> Result<()> {
    let longest = tensors.iter().map(|(p, _, _)| p.len()).max().unwrap_or(0);
    if longest == 0 {
        return Ok(());
    }
    let count = tensors.len() as u32;
    let tensors = table(dev, tensors)?;
    let h = SgdHyperRepr {
        momentum: hyper.momentum as f32,
        dampening_keep: (1.0 - hyper.dampening) as f32,
        weight_decay: hyper.weight_decay as f32,
        nesterov: hyper.nesterov as i32,
        first_step: first_step as i32,
        use_momentum: (hyper.momentum != 0.0) as i32,
    };
    let f = dev.function("sgd", "sgd_multi_tensor_update_f32")?;
    let cfg = LaunchConfig {
        grid_dim: ((longest as u32).div_ceil(THREADS).clamp(1, 1024), count, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    };
    let mut b = dev.stream.launch_builder(&f);
    b.arg(&tensors).arg(&h).arg(lr);
    optional_arg(&mut b, scale);
    // SAFETY: the table holds live buffers of the stated lengths; the signature matches sgd.cu.
    unsafe { b.launch(cfg) }.map_err(|e| launch_err("sgd_multi_tensor_update_f32", e))?;
    Ok(())
}

/// `out[0] = Σ_i Σ_j grads[i][j]²`, deterministic (fixed per-block partials, one summing block).
pub fn sum_squares(dev: &CudaDevice, grads: &[&CudaSlice<f32>], out: &mut CudaSlice<f32>) -> Result<()> {
    let s = &dev.stream;
    let mut rows = Vec::with_capacity(grads.len());
    for g in grads {
        let (grad, _sync) = g.device_ptr(s);
        rows.push(SgdTensorRepr {
            param: 0,
            grad,
            momentum: 0,
            len: g.len() as u64,
        });
    }
    let tensors = dev.table(&rows)?;
    let blocks = 64u32;
    let mut partials = s
        .alloc_zeros::<f32>(blocks as usize * grads.len().max(1))
        .map_err(|e| Error::Cuda(format!("{e:?}")))?;
    let f = dev.function("sgd", "grad_sum_squares_partial_f32")?;
    let cfg = LaunchConfig {
        grid_dim: (blocks, grads.len() as u32, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: table of live buffers; partials sized gridDim.x · gridDim.y.
    unsafe { s.launch_builder(&f).arg(&tensors).arg(&mut partials).launch(cfg) }
        .map_err(|e| launch_err("grad_sum_squares_partial_f32", e))?;
    let n = partials.len() as u64;
    let f = dev.function("sgd", "sum_partials_f32")?;
    let cfg = LaunchConfig {
        grid_dim: (1, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: n partials, out has one element.
    unsafe { s.launch_builder(&f).arg(&partials).arg(&n).arg(out).launch(cfg) }
        .map_err(|e| launch_err("sum_partials_f32", e))?;
    Ok(())
}

/// `scale[0] = min(1, max_norm/(sqrt(sq_norm[0]) + 1e-6))`.
pub fn clip_scale(dev: &CudaDevice, sq_norm: &CudaSlice<f32>, max_norm: f64, scale: &mut CudaSlice<f32>) -> Result<()> {
    let f = dev.function("sgd", "clip_scale_from_sq_norm_f32")?;
    let max_norm = max_norm as f32;
    // SAFETY: one-element buffers; signature as in sgd.cu.
    unsafe {
        dev.stream
            .launch_builder(&f)
            .arg(sq_norm)
            .arg(&max_norm)
            .arg(scale)
            .launch(LaunchConfig::for_num_elems(1))
    }
    .map_err(|e| launch_err("clip_scale_from_sq_norm_f32", e))?;
    Ok(())
}

/// `lr[0]` = the schedule's learning rate at the device step counter `step[0]`.
pub fn cosine_lr(
    dev: &CudaDevice,
    sched: &CosineSchedule,
    step: &CudaSlice<u32>,
    lr: &mut CudaSlice<f32>,
) -> Result<()> {
    let s = CosineScheduleRepr {
        base_lr: sched.base_lr,
        min_lr: sched.min_lr,
        warmup_start_lr: sched.warmup_start_lr,
        total: sched.total,
        warmup: sched.warmup,
        steps_per_index: sched.steps_per_index,
    };
    let f = dev.function("cosine_lr", "cosine_lr_from_step")?;
    // SAFETY: one-element buffers; the struct matches cosine_lr.cu.
    unsafe {
        dev.stream
            .launch_builder(&f)
            .arg(&s)
            .arg(step)
            .arg(lr)
            .launch(LaunchConfig::for_num_elems(1))
    }
    .map_err(|e| launch_err("cosine_lr_from_step", e))?;
    Ok(())
}

/// `step[0] += 1` on the device.
pub fn increment_step(dev: &CudaDevice, step: &mut CudaSlice<u32>) -> Result<()> {
    let f = dev.function("cosine_lr", "increment_step")?;
    // SAFETY: one-element buffer.
    unsafe {
        dev.stream
            .launch_builder(&f)
            .arg(step)
            .launch(LaunchConfig::for_num_elems(1))
    }
    .map_err(|e| launch_err("increment_step", e))?;
    Ok(())
}
