//! Launcher of the axis-permutation kernel (`cuda/permute.cu`), between the buffers' storages: f32
//! to f32, bf16 to bf16, or across (the data batch norm's f32 output into the backbone's first bf16
//! activation, and that activation's gradient back).

use cudarc::driver::{DeviceRepr, PushKernelArg};

use super::buffer::{Act, ActMut};
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
pub fn permute(dev: &CudaDevice, x: Act<'_>, dims: &[usize], perm: &[usize], y: ActMut<'_>) -> Result<()> {
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
    let name = match (x, &y) {
        (Act::F32(_), ActMut::F32(_)) => "permute_f32",
        (Act::F32(_), ActMut::Bf16(_)) => "permute_f32_to_bf16act",
        (Act::Bf16(_), ActMut::Bf16(_)) => "permute_f32_bf16act",
        (Act::Bf16(_), ActMut::F32(_)) => "permute_bf16act_to_f32",
    };
    let len = y.len();
    let n = len as u64;
    let f = dev.function("permute", name)?;
    dev.launch(&f, name, flat_launch(len), |b| {
        x.push(b);
        b.arg(&g);
        y.push(b);
        b.arg(&n);
    })
}
