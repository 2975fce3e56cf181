//! Launchers of the mean-pooling kernels (`cuda/mean_pool.cu`).

use cudarc::driver::CudaSlice;

use super::device::CudaDevice;
use crate::{Error, Result};

/// See `Backend::mean_pool_forward`. x: `[n·persons, c, s]`, y: `[n, c]`.
pub fn forward(
    _dev: &CudaDevice,
    _n: usize,
    _persons: usize,
    _c: usize,
    _s: usize,
    _x: &CudaSlice<f32>,
    _y: &mut CudaSlice<f32>,
) -> Result<()> {
    Err(Error::Cuda("mean_pool forward: PLACEHOLDER".into()))
}

/// See `Backend::mean_pool_backward`: dx overwritten.
pub fn backward(
    _dev: &CudaDevice,
    _n: usize,
    _persons: usize,
    _c: usize,
    _s: usize,
    _dy: &CudaSlice<f32>,
    _dx: &mut CudaSlice<f32>,
) -> Result<()> {
    Err(Error::Cuda("mean_pool backward: PLACEHOLDER".into()))
}
