//! Launchers of the graph-aggregation kernels (`cuda/graph_aggregate.cu`).

use cudarc::driver::CudaSlice;

use super::device::CudaDevice;
use crate::backend::GraphGeom;
use crate::{Error, Result};

/// See `Backend::graph_forward`. z: `[n, k, c, t, v]`, a: `[k, v, w]`, y: `[n, c, t, w]`.
pub fn forward(
    _dev: &CudaDevice,
    _g: &GraphGeom,
    _z: &CudaSlice<f32>,
    _a: &CudaSlice<f32>,
    _y: &mut CudaSlice<f32>,
) -> Result<()> {
    Err(Error::Cuda("graph forward: PLACEHOLDER".into()))
}

/// See `Backend::graph_backward`: dz overwritten, `da +=`.
pub fn backward(
    _dev: &CudaDevice,
    _g: &GraphGeom,
    _z: &CudaSlice<f32>,
    _a: &CudaSlice<f32>,
    _dy: &CudaSlice<f32>,
    _dz: &mut CudaSlice<f32>,
    _da: &mut CudaSlice<f32>,
) -> Result<()> {
    Err(Error::Cuda("graph backward: PLACEHOLDER".into()))
}
