//! Launchers of the element-wise kernels (`cuda/elementwise.cu`). Lengths are checked by the
//! backend; every kernel is a grid-stride loop over `n` elements. The ops on activations run in
//! the buffers' storage (f32, or bf16 through the kernels' `_bf16act` twins); `mul`, `mul_acc` and
//! `abs` serve parameters only, in f32.

use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};

use super::buffer::{one_storage, Act, ActMut};
use super::device::CudaDevice;
use crate::act_kernel;
use crate::Result;

const MODULE: &str = "elementwise";

/// A grid-stride launch over `n` elements: 256 threads a block, at most 4096 blocks.
pub fn flat_launch(n: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: ((n as u64).div_ceil(256).clamp(1, 4096) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// `x = value` (rounded to x's storage).
pub fn fill(dev: &CudaDevice, x: ActMut<'_>, value: f32) -> Result<()> {
    let (len, name) = (x.len(), act_kernel!(x.storage(), "fill_f32"));
    let n = len as u64;
    let f = dev.function(MODULE, name)?;
    dev.launch(&f, name, flat_launch(len), |b| {
        x.push(b);
        b.arg(&value).arg(&n);
    })
}

/// `acc += x`, both in one storage.
pub fn add_assign(dev: &CudaDevice, acc: ActMut<'_>, x: Act<'_>) -> Result<()> {
    let storage = one_storage("add_assign", [acc.storage(), x.storage()])?;
    let (len, name) = (acc.len(), act_kernel!(storage, "add_assign_f32"));
    let n = len as u64;
    let f = dev.function(MODULE, name)?;
    dev.launch(&f, name, flat_launch(len), |b| {
        acc.push(b);
        x.push(b);
        b.arg(&n);
    })
}

pub fn mul(dev: &CudaDevice, a: &CudaSlice<f32>, b: &CudaSlice<f32>, y: &mut CudaSlice<f32>) -> Result<()> {
    let n = y.len() as u64;
    let f = dev.function(MODULE, "mul_f32")?;
    dev.launch(&f, "mul_f32", flat_launch(y.len()), |l| {
        l.arg(a).arg(b).arg(y).arg(&n);
    })
}

pub fn mul_acc(dev: &CudaDevice, a: &CudaSlice<f32>, b: &CudaSlice<f32>, acc: &mut CudaSlice<f32>) -> Result<()> {
    let n = acc.len() as u64;
    let f = dev.function(MODULE, "mul_acc_f32")?;
    dev.launch(&f, "mul_acc_f32", flat_launch(acc.len()), |l| {
        l.arg(a).arg(b).arg(acc).arg(&n);
    })
}

/// `x *= s`.
pub fn scale(dev: &CudaDevice, x: ActMut<'_>, s: f32) -> Result<()> {
    let (len, name) = (x.len(), act_kernel!(x.storage(), "scale_f32"));
    let n = len as u64;
    let f = dev.function(MODULE, name)?;
    dev.launch(&f, name, flat_launch(len), |b| {
        x.push(b);
        b.arg(&s).arg(&n);
    })
}

pub fn relu_forward(dev: &CudaDevice, x: ActMut<'_>) -> Result<()> {
    let (len, name) = (x.len(), act_kernel!(x.storage(), "relu_forward_f32"));
    let n = len as u64;
    let f = dev.function(MODULE, name)?;
    dev.launch(&f, name, flat_launch(len), |b| {
        x.push(b);
        b.arg(&n);
    })
}

pub fn relu_backward(dev: &CudaDevice, y: Act<'_>, dy: ActMut<'_>) -> Result<()> {
    let storage = one_storage("relu_backward", [y.storage(), dy.storage()])?;
    let (len, name) = (dy.len(), act_kernel!(storage, "relu_backward_f32"));
    let n = len as u64;
    let f = dev.function(MODULE, name)?;
    dev.launch(&f, name, flat_launch(len), |b| {
        y.push(b);
        dy.push(b);
        b.arg(&n);
    })
}

pub fn relu_backward_add(dev: &CudaDevice, y: Act<'_>, dy: Act<'_>, acc: ActMut<'_>) -> Result<()> {
    let storage = one_storage("relu_backward_add", [y.storage(), dy.storage(), acc.storage()])?;
    let (len, name) = (acc.len(), act_kernel!(storage, "relu_backward_add_f32"));
    let n = len as u64;
    let f = dev.function(MODULE, name)?;
    dev.launch(&f, name, flat_launch(len), |b| {
        y.push(b);
        dy.push(b);
        acc.push(b);
        b.arg(&n);
    })
}

/// Inverted dropout with the shared counter-based uniform (`backend::dropout_uniform`); the
/// keep scale is rounded to f32 on the host exactly as the CPU backend rounds it.
pub fn dropout(dev: &CudaDevice, x: ActMut<'_>, p: f64, seed: u64) -> Result<()> {
    if p <= 0.0 {
        return Ok(());
    }
    let (len, name) = (x.len(), act_kernel!(x.storage(), "dropout_f32"));
    let n = len as u64;
    let keep_scale = (1.0 / (1.0 - p)) as f32;
    let p = p as f32;
    let f = dev.function(MODULE, name)?;
    dev.launch(&f, name, flat_launch(len), |b| {
        x.push(b);
        b.arg(&p).arg(&keep_scale).arg(&seed).arg(&n);
    })
}

pub fn abs(dev: &CudaDevice, x: &CudaSlice<f32>, y: &mut CudaSlice<f32>) -> Result<()> {
    let n = y.len() as u64;
    let f = dev.function(MODULE, "abs_f32")?;
    dev.launch(&f, "abs_f32", flat_launch(y.len()), |b| {
        b.arg(x).arg(y).arg(&n);
    })
}
