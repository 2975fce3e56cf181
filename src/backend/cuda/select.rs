//! Launchers of the sparsity-threshold kernels (`cuda/sparsity_threshold.cu`): the k-th smallest
//! score of a pool by radix select, all on the device, and masks from it.

use cudarc::driver::{CudaSlice, DevicePtr, DeviceRepr, LaunchConfig, PushKernelArg};

use super::device::CudaDevice;
use crate::{Error, Result};

/// `struct ScoreSegment` of the kernel file.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct ScoreSegmentRepr {
    data: u64,
    len: u64,
}
// SAFETY: plain old data with the kernel struct's layout.
unsafe impl DeviceRepr for ScoreSegmentRepr {}

const MODULE: &str = "sparsity_threshold";

fn err(what: &str, e: cudarc::driver::DriverError) -> Error {
    Error::Cuda(format!("{what}: {e:?}"))
}

/// `tau[0]` = the k-th smallest (1-based) value over the concatenation of `pool`.
pub fn kth_smallest(dev: &CudaDevice, pool: &[&CudaSlice<f32>], k: usize, tau: &mut CudaSlice<f32>) -> Result<()> {
    let total: usize = pool.iter().map(|b| b.len()).sum();
    if k == 0 || k > total || k > u32::MAX as usize {
        return Err(Error::Cuda(format!("kth_smallest: k = {k} outside 1..={total}")));
    }
    let s = &dev.stream;
    let mut rows = Vec::with_capacity(pool.len());
    for b in pool {
        let (data, _sync) = b.device_ptr(s);
        rows.push(ScoreSegmentRepr {
            data,
            len: b.len() as u64,
        });
    }
    let segments = dev.table(&rows)?;
    // state: prefix, prefix_mask, rank, pad
    let mut state = s
        .alloc_zeros::<u32>(4)
        .map_err(|e| err("allocating the select state", e))?;
    let mut histogram = s
        .alloc_zeros::<u32>(256)
        .map_err(|e| err("allocating the histogram", e))?;
    let one_block = LaunchConfig {
        grid_dim: (1, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    let k = k as u32;
    let init = dev.function(MODULE, "radix_select_init")?;
    // SAFETY: state has 4 u32 (the kernel struct), histogram 256.
    unsafe {
        s.launch_builder(&init)
            .arg(&mut state)
            .arg(&mut histogram)
            .arg(&k)
            .launch(one_block)
    }
    .map_err(|e| err("radix_select_init", e))?;
    let hist = dev.function(MODULE, "radix_select_histogram")?;
    let pick = dev.function(MODULE, "radix_select_pick_digit")?;
    let blocks = (total as u32).div_ceil(256).clamp(1, 512);
    let spread = LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    let num_segments = pool.len() as i32;
    for shift in [24i32, 16, 8, 0] {
        // SAFETY: the segment table points at live buffers of the stated lengths.
        unsafe {
            s.launch_builder(&hist)
                .arg(&segments)
                .arg(&num_segments)
                .arg(&state)
                .arg(&mut histogram)
                .arg(&shift)
                .launch(spread)
        }
        .map_err(|e| err("radix_select_histogram", e))?;
        // SAFETY: one block of 256 threads over the 256-bin histogram.
        unsafe {
            s.launch_builder(&pick)
                .arg(&mut state)
                .arg(&mut histogram)
                .arg(&shift)
                .arg(&mut *tau)
                .launch(one_block)
        }
        .map_err(|e| err("radix_select_pick_digit", e))?;
    }
    Ok(())
}

/// `mask = 1[score >= tau[0]]`.
pub fn threshold_mask(
    dev: &CudaDevice,
    score: &CudaSlice<f32>,
    tau: &CudaSlice<f32>,
    mask: &mut CudaSlice<f32>,
) -> Result<()> {
    if score.len() != mask.len() {
        return Err(Error::Cuda("threshold_mask: score and mask lengths differ".into()));
    }
    let f = dev.function(MODULE, "threshold_mask_f32")?;
    let n = score.len() as u64;
    let cfg = LaunchConfig {
        grid_dim: ((n as u32).div_ceil(256).clamp(1, 1024), 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: n elements in score and mask, tau has one.
    unsafe {
        dev.stream
            .launch_builder(&f)
            .arg(score)
            .arg(tau)
            .arg(mask)
            .arg(&n)
            .launch(cfg)
    }
    .map_err(|e| err("threshold_mask_f32", e))?;
    Ok(())
}
