//! What the launchers of the reduction kernels share: argument checks with clear errors, the
//! rows × columns launch shape (`FOR_ROWS`/`FOR_COLS` of `cuda/reduce.cuh`), warp-per-item
//! launches, and uninitialised device workspaces.

use cudarc::driver::{CudaSlice, DeviceRepr, LaunchArgs, LaunchConfig, PushKernelArg};

use super::buffer::Act;
use super::device::{driver_err, CudaDevice};
use crate::{Error, Result};

/// Threads per block of every launch here (a multiple of the warp size, as reduce.cuh requires).
pub const THREADS: u32 = 256;

/// `Ok` if buffer `what` of `op` has the `want` elements its geometry needs.
pub fn expect_len(op: &str, what: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Error::Cuda(format!(
            "{op}: {what} has {got} elements, the geometry needs {want}"
        )))
    }
}

/// `value` as a kernel's 32-bit size, if it is positive and at most `limit`.
pub fn size_u32(op: &str, what: &str, value: usize, limit: u32) -> Result<u32> {
    match u32::try_from(value) {
        Ok(v) if v > 0 && v <= limit => Ok(v),
        _ if value == 0 => Err(Error::Cuda(format!("{op}: {what} is 0"))),
        _ => Err(Error::Cuda(format!(
            "{op}: {what} = {value} is beyond the kernel's limit of {limit}"
        ))),
    }
}

/// Rows × columns: blocks along y take rows, threads along x the columns of a row.
pub fn rows_launch(rows: u32, cols: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (cols.div_ceil(THREADS).clamp(1, 64), rows.clamp(1, 65_535), 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// One warp per item (warp-uniform grid-stride loops over `items`).
pub fn warp_per_item_launch(items: u32) -> LaunchConfig {
    let warps_per_block = THREADS / 32;
    LaunchConfig {
        grid_dim: (items.div_ceil(warps_per_block).clamp(1, 4096), 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// A workspace of `len` elements, freed in stream order when dropped.
///
/// # Safety
/// The memory is uninitialised: the caller's kernels must write every element before any reads it.
pub unsafe fn workspace<T: DeviceRepr>(dev: &CudaDevice, what: &str, len: usize) -> Result<CudaSlice<T>> {
    // SAFETY: forwarded to the caller.
    unsafe { dev.stream.alloc::<T>(len) }.map_err(|e| driver_err(&format!("allocating the {what} workspace"), e))
}

/// Null, the kernels' "none" for an optional input pointer.
const NULL: u64 = 0;

/// Pushes `buf`'s device pointer, or null: a kernel's optional input (a bias, a residual, a scale,
/// batch-norm coefficients).
pub fn optional_arg<'a, T: DeviceRepr>(b: &mut LaunchArgs<'a>, buf: Option<&'a CudaSlice<T>>) {
    match buf {
        Some(buf) => b.arg(buf),
        None => b.arg(&NULL),
    };
}

/// Pushes `buf`'s device pointer, or null: a kernel's optional output (gathered statistics).
pub fn optional_arg_mut<'a, T: DeviceRepr>(b: &mut LaunchArgs<'a>, buf: Option<&'a mut CudaSlice<T>>) {
    match buf {
        Some(buf) => b.arg(buf),
        None => b.arg(&NULL),
    };
}

/// Pushes an optional activation's device pointer, or null (a residual, a ReLU mask).
pub fn optional_act<'a>(b: &mut LaunchArgs<'a>, x: Option<Act<'a>>) {
    match x {
        Some(x) => x.push(b),
        None => {
            b.arg(&NULL);
        }
    }
}
