//! Launcher of the axis-permutation kernel (`cuda/permute.cu`).

use cudarc::driver::{CudaSlice, DeviceRepr, PushKernelArg};

use super::device::CudaDevice;
use super::elementwise::flat_launch;
use crate::{Error, Result};

const MAX_RANK: usize = 6;

/// `struct PermuteGeom` of permute.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct PermuteGeomRepr {
    out_dims: [u64; MAX_RANK],
    in_strides: [u64; MAX_RANK],
    rank: i32,
}
// SAFETY: plain old data with the layout of the kernel's struct.
unsafe impl DeviceRepr for PermuteGeomRepr {}

/// `y = x.permute(perm)` made contiguous; `dims` is the shape of x.
pub fn permute(
    dev: &CudaDevice,
    x: &CudaSlice<f32>,
    dims: &[usize],
    perm: &[usize],
    y: &mut CudaSlice<f32>,
) -> Result<()> {
    let rank = dims.len();
    let mut sorted = perm.to_vec();
    sorted.sort_unstable();
    if rank > MAX_RANK || perm.len() != rank || sorted.iter().enumerate().any(|(i, &p)| i != p) {
        return Err(Error::Cuda(format!(
            "permute: {perm:?} is not a permutation of {rank} axes (at most {MAX_RANK})"
        )));
    }
    if x.len() != dims.iter().product::<usize>() {
        return Err(Error::Cuda(format!(
            "permute: input of {} elements, shape {dims:?}",
            x.len()
        )));
    }
    let mut in_strides = [0u64; MAX_RANK];
    let mut stride = 1u64;
    for d in (0..rank).rev() {
        in_strides[d] = stride;
        stride *= dims[d] as u64;
    }
    let mut g = PermuteGeomRepr {
        out_dims: [1; MAX_RANK],
        in_strides: [0; MAX_RANK],
        rank: rank as i32,
    };
    for (d, &p) in perm.iter().enumerate() {
        g.out_dims[d] = dims[p] as u64;
        g.in_strides[d] = in_strides[p];
    }
    let n = y.len() as u64;
    let f = dev.function("permute", "permute_f32")?;
    dev.launch(&f, "permute_f32", flat_launch(y.len()), |b| {
        b.arg(x).arg(&g).arg(y).arg(&n);
    })
}
