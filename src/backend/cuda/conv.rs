//! Launchers of the convolution-over-time kernels (`cuda/temporal_conv.cu`).

use cudarc::driver::CudaSlice;

use super::device::CudaDevice;
use crate::backend::ConvGeom;
use crate::{Error, Result};

/// See `Backend::conv_t_forward`. x: `[n, c_in, t_in, v]`, w: `[c_out, c_in, kt]`, b: `[c_out]`,
/// y: `[n, c_out, t_out, v]`.
pub fn forward(
    _dev: &CudaDevice,
    _g: &ConvGeom,
    _x: &CudaSlice<f32>,
    _w: &CudaSlice<f32>,
    _b: Option<&CudaSlice<f32>>,
    _y: &mut CudaSlice<f32>,
) -> Result<()> {
    Err(Error::Cuda("conv forward: PLACEHOLDER".into()))
}

/// See `Backend::conv_t_backward_input`: dx (overwritten) from dy.
pub fn backward_input(
    _dev: &CudaDevice,
    _g: &ConvGeom,
    _dy: &CudaSlice<f32>,
    _w: &CudaSlice<f32>,
    _dx: &mut CudaSlice<f32>,
) -> Result<()> {
    Err(Error::Cuda("conv backward_input: PLACEHOLDER".into()))
}

/// See `Backend::conv_t_backward_weight`: `dw += ∂L/∂w`, `db += Σ dy`.
pub fn backward_weight(
    _dev: &CudaDevice,
    _g: &ConvGeom,
    _x: &CudaSlice<f32>,
    _dy: &CudaSlice<f32>,
    _dw: &mut CudaSlice<f32>,
    _db: Option<&mut CudaSlice<f32>>,
) -> Result<()> {
    Err(Error::Cuda("conv backward_weight: PLACEHOLDER".into()))
}
