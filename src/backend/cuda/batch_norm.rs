//! Launchers of the batch-normalisation kernels (`cuda/batch_norm.cu`).

use cudarc::driver::CudaSlice;

use super::device::CudaDevice;
use crate::backend::BnGeom;
use crate::{Error, Result};

/// See `Backend::batch_norm_train`. x, y: `[n, c, s]`; the rest `[c]`.
#[allow(clippy::too_many_arguments)]
pub fn train(
    _dev: &CudaDevice,
    _g: &BnGeom,
    _x: &CudaSlice<f32>,
    _gamma: &CudaSlice<f32>,
    _beta: &CudaSlice<f32>,
    _running_mean: &mut CudaSlice<f32>,
    _running_var: &mut CudaSlice<f32>,
    _y: &mut CudaSlice<f32>,
    _save_mean: &mut CudaSlice<f32>,
    _save_invstd: &mut CudaSlice<f32>,
) -> Result<()> {
    Err(Error::Cuda("batch_norm train: PLACEHOLDER".into()))
}

/// See `Backend::batch_norm_eval`.
#[allow(clippy::too_many_arguments)]
pub fn eval(
    _dev: &CudaDevice,
    _g: &BnGeom,
    _x: &CudaSlice<f32>,
    _gamma: &CudaSlice<f32>,
    _beta: &CudaSlice<f32>,
    _running_mean: &CudaSlice<f32>,
    _running_var: &CudaSlice<f32>,
    _y: &mut CudaSlice<f32>,
) -> Result<()> {
    Err(Error::Cuda("batch_norm eval: PLACEHOLDER".into()))
}

/// See `Backend::batch_norm_backward`: dx overwritten, `dgamma +=`, `dbeta +=`.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    _dev: &CudaDevice,
    _g: &BnGeom,
    _x: &CudaSlice<f32>,
    _dy: &CudaSlice<f32>,
    _gamma: &CudaSlice<f32>,
    _save_mean: &CudaSlice<f32>,
    _save_invstd: &CudaSlice<f32>,
    _dx: &mut CudaSlice<f32>,
    _dgamma: &mut CudaSlice<f32>,
    _dbeta: &mut CudaSlice<f32>,
) -> Result<()> {
    Err(Error::Cuda("batch_norm backward: PLACEHOLDER".into()))
}
