//! Launchers of the element-wise kernels (`cuda/elementwise.cu`). Lengths are checked by the
//! backend; every kernel is a grid-stride loop over `n` elements.

use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};

use super::device::CudaDevice;
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

pub fn fill(dev: &CudaDevice, x: &mut CudaSlice<f32>, value: f32) -> Result<()> {
    let n = x.len() as u64;
    let f = dev.function(MODULE, "fill_f32")?;
    dev.launch(&f, "fill_f32", flat_launch(x.len()), |b| {
        b.arg(x).arg(&value).arg(&n);
    })
}

pub fn add_assign(dev: &CudaDevice, acc: &mut CudaSlice<f32>, x: &CudaSlice<f32>) -> Result<()> {
    let n = acc.len() as u64;
    let f = dev.function(MODULE, "add_assign_f32")?;
    dev.launch(&f, "add_assign_f32", flat_launch(acc.len()), |b| {
        b.arg(acc).arg(x).arg(&n);
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

pub fn scale(dev: &CudaDevice, x: &mut CudaSlice<f32>, s: f32) -> Result<()> {
    let n = x.len() as u64;
    let f = dev.function(MODULE, "scale_f32")?;
    dev.launch(&f, "scale_f32", flat_launch(x.len()), |b| {
        b.arg(x).arg(&s).arg(&n);
    })
}

pub fn relu_forward(dev: &CudaDevice, x: &mut CudaSlice<f32>) -> Result<()> {
    let n = x.len() as u64;
    let f = dev.function(MODULE, "relu_forward_f32")?;
    dev.launch(&f, "relu_forward_f32", flat_launch(x.len()), |b| {
        b.arg(x).arg(&n);
    })
}

pub fn relu_backward(dev: &CudaDevice, y: &CudaSlice<f32>, dy: &mut CudaSlice<f32>) -> Result<()> {
    let n = dy.len() as u64;
    let f = dev.function(MODULE, "relu_backward_f32")?;
    dev.launch(&f, "relu_backward_f32", flat_launch(dy.len()), |b| {
        b.arg(y).arg(dy).arg(&n);
    })
}

pub fn relu_backward_add(
    dev: &CudaDevice,
    y: &CudaSlice<f32>,
    dy: &CudaSlice<f32>,
    acc: &mut CudaSlice<f32>,
) -> Result<()> {
    let n = acc.len() as u64;
    let f = dev.function(MODULE, "relu_backward_add_f32")?;
    dev.launch(&f, "relu_backward_add_f32", flat_launch(acc.len()), |b| {
        b.arg(y).arg(dy).arg(acc).arg(&n);
    })
}

/// Inverted dropout with the shared counter-based uniform (`backend::dropout_uniform`); the
/// keep scale is rounded to f32 on the host exactly as the CPU backend rounds it.
pub fn dropout(dev: &CudaDevice, x: &mut CudaSlice<f32>, p: f64, seed: u64) -> Result<()> {
    if p <= 0.0 {
        return Ok(());
    }
    let n = x.len() as u64;
    let keep_scale = (1.0 / (1.0 - p)) as f32;
    let p = p as f32;
    let f = dev.function(MODULE, "dropout_f32")?;
    dev.launch(&f, "dropout_f32", flat_launch(x.len()), |b| {
        b.arg(x).arg(&p).arg(&keep_scale).arg(&seed).arg(&n);
    })
}

pub fn abs(dev: &CudaDevice, x: &CudaSlice<f32>, y: &mut CudaSlice<f32>) -> Result<()> {
    let n = y.len() as u64;
    let f = dev.function(MODULE, "abs_f32")?;
    dev.launch(&f, "abs_f32", flat_launch(y.len()), |b| {
        b.arg(x).arg(y).arg(&n);
    })
}
