//! Kernel launches (checked against the H100's limits as the driver checks them), host functions,
//! and occupancy queries.

use std::ffi::{c_int, c_uint, c_void};
use std::sync::Arc;

use cudarc::driver::sys::{CUfunction, CUhostFn, CUoccupancyB2DSize, CUresult, CUstream};

use super::context::Context;
use super::device::{
    MAX_BLOCKS_PER_SM, MAX_BLOCK_DIM, MAX_GRID_DIM, MAX_THREADS_PER_BLOCK, MAX_THREADS_PER_SM, REGISTERS_PER_SM,
    SHARED_PER_BLOCK_OPTIN, SHARED_PER_SM, SHARED_RESERVED_PER_BLOCK, SM_COUNT, WARP_SIZE,
};
use super::errors::fault_code;
use super::module::{function, Function, REGISTERS_PER_THREAD};
use super::stream::{stream, submit, Op};
use super::{api, device_memory, exec_options, put, warn, CuResult};
use crate::exec::{self, LaunchConfig};

/// A launch as enqueued: the kernel, its shape, and its parameters packed as the kernel lays them
/// out (copied when enqueued, so a graph replays the values of its capture).
pub(crate) struct KernelLaunch {
    function: Arc<Function>,
    config: LaunchConfig,
    params: Box<[u8]>,
}

/// Runs a launch on `ctx`: a fault is reported on stderr and becomes the context's sticky error.
pub(crate) fn run_kernel(ctx: &Context, launch: &KernelLaunch) {
    let kernel = &launch.function.kernel;
    let started = std::time::Instant::now();
    match exec::launch(kernel, &launch.config, &launch.params, device_memory(), exec_options()) {
        Ok(stats) if log_launches() => {
            let seconds = started.elapsed().as_secs_f64();
            warn(&format!(
                "launch {} grid {:?} block {:?}: {} warp and {} thread instructions in {:.3} ms ({:.0} M thread instructions/s)",
                kernel.name,
                launch.config.grid,
                launch.config.block,
                stats.warp_instructions,
                stats.lane_instructions,
                seconds * 1e3,
                stats.lane_instructions as f64 / seconds / 1e6
            ));
        }
        Ok(_) => {}
        Err(fault) => {
            warn(&fault.to_string());
            ctx.fail(fault_code(fault.kind));
        }
    }
}

/// `PTX_EMULATOR_LOG=launches`: every launch is reported with what it executed and how fast.
fn log_launches() -> bool {
    static LOG: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LOG.get_or_init(|| std::env::var("PTX_EMULATOR_LOG").is_ok_and(|v| v.split(',').any(|w| w == "launches")))
}

/// Checks a launch's shape and shared memory as the driver does (`CUDA_ERROR_INVALID_VALUE`).
fn check_shape(f: &Function, config: &LaunchConfig) -> CuResult {
    let name = &f.kernel.name;
    let refuse = |why: String| {
        warn(&format!("cuLaunchKernel: {name}: {why}"));
        Err(CUresult::CUDA_ERROR_INVALID_VALUE)
    };
    let (grid, block) = (config.grid, config.block);
    if (0..3).any(|i| grid[i] == 0 || grid[i] > MAX_GRID_DIM[i]) {
        return refuse(format!("grid {grid:?} is outside 1..={MAX_GRID_DIM:?}"));
    }
    if (0..3).any(|i| block[i] == 0 || block[i] > MAX_BLOCK_DIM[i]) {
        return refuse(format!("block {block:?} is outside 1..={MAX_BLOCK_DIM:?}"));
    }
    let threads = block.iter().product::<u32>();
    let max_threads = f.kernel.max_threads_per_block.min(MAX_THREADS_PER_BLOCK);
    if threads > max_threads {
        return refuse(format!("{threads} threads per block, more than its {max_threads}"));
    }
    let dynamic = config.dynamic_shared_bytes;
    if dynamic > f.max_dynamic_shared() {
        return refuse(format!(
            "{dynamic} bytes of dynamic shared memory, more than the {} allowed (raise it with \
             cuFuncSetAttribute(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES))",
            f.max_dynamic_shared()
        ));
    }
    let shared = u64::from(f.kernel.static_shared_bytes) + u64::from(dynamic);
    if shared > u64::from(SHARED_PER_BLOCK_OPTIN) {
        return refuse(format!(
            "{shared} bytes of shared memory, more than a block's {SHARED_PER_BLOCK_OPTIN}"
        ));
    }
    Ok(())
}

/// Packs the kernel's parameters from `kernelParams` (one pointer to each parameter's value).
///
/// # Safety
/// `kernelParams` is null or holds one valid pointer per kernel parameter, each to a value of the
/// parameter's size.
unsafe fn pack_params(f: &Function, kernelParams: *mut *mut c_void) -> CuResult<Box<[u8]>> {
    let kernel = &f.kernel;
    let mut packed = vec![0u8; kernel.param_bytes].into_boxed_slice();
    if kernel.params.is_empty() {
        return Ok(packed);
    }
    if kernelParams.is_null() {
        warn(&format!(
            "cuLaunchKernel: {} takes parameters and kernelParams is null",
            kernel.name
        ));
        return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
    }
    for (i, slot) in kernel.params.iter().enumerate() {
        // SAFETY: the caller passed one pointer per parameter.
        let value = unsafe { kernelParams.add(i).read() };
        if value.is_null() {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        let dst = &mut packed[slot.offset..slot.offset + slot.size];
        // SAFETY: the caller's pointer is to a value of the parameter's size.
        unsafe { std::ptr::copy_nonoverlapping(value.cast::<u8>(), dst.as_mut_ptr(), slot.size) };
    }
    Ok(packed)
}

/// Blocks of `f` that fit on one SM at once with `block_size` threads and `dynamic_shared` bytes
/// of dynamic shared memory: limited by threads, blocks, registers and shared memory.
fn blocks_per_sm(f: &Function, block_size: u32, dynamic_shared: usize) -> u32 {
    if block_size == 0 || block_size > f.kernel.max_threads_per_block.min(MAX_THREADS_PER_BLOCK) {
        return 0;
    }
    let shared = u64::from(f.kernel.static_shared_bytes) + dynamic_shared as u64;
    if shared > u64::from(SHARED_PER_BLOCK_OPTIN) {
        return 0;
    }
    let warps = block_size.div_ceil(WARP_SIZE);
    let by_threads = MAX_THREADS_PER_SM / (warps * WARP_SIZE);
    let by_registers = REGISTERS_PER_SM / (warps * WARP_SIZE * REGISTERS_PER_THREAD);
    let by_shared = u64::from(SHARED_PER_SM) / (shared + u64::from(SHARED_RESERVED_PER_BLOCK));
    MAX_BLOCKS_PER_SM
        .min(by_threads)
        .min(by_registers)
        .min(by_shared as u32)
}

/// Enqueues a launch of `hfunc` on `hStream`; a cooperative launch must fit on the device at once.
///
/// # Safety
/// As [`pack_params`].
#[allow(clippy::too_many_arguments)]
unsafe fn launch(
    hfunc: CUfunction,
    grid: [c_uint; 3],
    block: [c_uint; 3],
    sharedMemBytes: c_uint,
    hStream: CUstream,
    kernelParams: *mut *mut c_void,
    cooperative: bool,
) -> CuResult {
    let f = function(hfunc)?;
    let stream = stream(hStream)?;
    if f.ctx.handle != stream.ctx.handle {
        warn(&format!(
            "cuLaunchKernel: {} belongs to another context than the stream",
            f.kernel.name
        ));
        return Err(CUresult::CUDA_ERROR_INVALID_HANDLE);
    }
    let config = LaunchConfig {
        grid,
        block,
        dynamic_shared_bytes: sharedMemBytes,
    };
    check_shape(&f, &config)?;
    if cooperative {
        let blocks: u64 = grid.iter().map(|&g| u64::from(g)).product();
        let resident = blocks_per_sm(&f, block.iter().product(), sharedMemBytes as usize) * SM_COUNT;
        if blocks > u64::from(resident) {
            return Err(CUresult::CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE);
        }
    }
    // SAFETY: the caller's contract.
    let params = unsafe { pack_params(&f, kernelParams) }?;
    let op = Op::Kernel(KernelLaunch {
        function: f,
        config,
        params,
    });
    submit("cuLaunchKernel", &stream, op)
}

/// Launches a kernel: it runs to completion before the call returns (or is recorded by a capture).
/// A fault in it is reported on stderr and becomes the context's sticky error; the launch itself
/// succeeds. The `extra` parameter buffer is not supported.
#[no_mangle]
pub unsafe extern "C" fn cuLaunchKernel(
    f: CUfunction,
    gridDimX: c_uint,
    gridDimY: c_uint,
    gridDimZ: c_uint,
    blockDimX: c_uint,
    blockDimY: c_uint,
    blockDimZ: c_uint,
    sharedMemBytes: c_uint,
    hStream: CUstream,
    kernelParams: *mut *mut c_void,
    extra: *mut *mut c_void,
) -> CUresult {
    api("cuLaunchKernel", || {
        if !extra.is_null() {
            warn("cuLaunchKernel: parameters passed through `extra` are not implemented; use kernelParams");
            return Err(CUresult::CUDA_ERROR_NOT_SUPPORTED);
        }
        let (grid, block) = ([gridDimX, gridDimY, gridDimZ], [blockDimX, blockDimY, blockDimZ]);
        // SAFETY: kernelParams is the caller's parameter array.
        unsafe { launch(f, grid, block, sharedMemBytes, hStream, kernelParams, false) }
    })
}

/// As `cuLaunchKernel`, refusing a grid that could not be resident on the H100 all at once.
#[no_mangle]
pub unsafe extern "C" fn cuLaunchCooperativeKernel(
    f: CUfunction,
    gridDimX: c_uint,
    gridDimY: c_uint,
    gridDimZ: c_uint,
    blockDimX: c_uint,
    blockDimY: c_uint,
    blockDimZ: c_uint,
    sharedMemBytes: c_uint,
    hStream: CUstream,
    kernelParams: *mut *mut c_void,
) -> CUresult {
    api("cuLaunchCooperativeKernel", || {
        let (grid, block) = ([gridDimX, gridDimY, gridDimZ], [blockDimX, blockDimY, blockDimZ]);
        // SAFETY: kernelParams is the caller's parameter array.
        unsafe { launch(f, grid, block, sharedMemBytes, hStream, kernelParams, true) }
    })
}

/// Calls `fn_(userData)` before returning (or records the call in a capture).
#[no_mangle]
pub unsafe extern "C" fn cuLaunchHostFunc(hStream: CUstream, fn_: CUhostFn, userData: *mut c_void) -> CUresult {
    api("cuLaunchHostFunc", || {
        let stream = stream(hStream)?;
        let func = fn_.ok_or(CUresult::CUDA_ERROR_INVALID_VALUE)?;
        submit(
            "cuLaunchHostFunc",
            &stream,
            Op::Host {
                func,
                data: userData as usize,
            },
        )
    })
}

/// Blocks of `func` resident per SM, for the occupancy calls.
fn occupancy(func: CUfunction, blockSize: c_int, dynamicSMemSize: usize) -> CuResult<c_int> {
    let f = function(func)?;
    f.ctx.check()?;
    let block = u32::try_from(blockSize).map_err(|_| CUresult::CUDA_ERROR_INVALID_VALUE)?;
    Ok(blocks_per_sm(&f, block, dynamicSMemSize) as c_int)
}

#[no_mangle]
pub unsafe extern "C" fn cuOccupancyMaxActiveBlocksPerMultiprocessor(
    numBlocks: *mut c_int,
    func: CUfunction,
    blockSize: c_int,
    dynamicSMemSize: usize,
) -> CUresult {
    api("cuOccupancyMaxActiveBlocksPerMultiprocessor", || {
        let blocks = occupancy(func, blockSize, dynamicSMemSize)?;
        // SAFETY: numBlocks is the caller's out-parameter.
        unsafe { put(numBlocks, blocks) }
    })
}

/// As without flags: there is no caching preference to override.
#[no_mangle]
pub unsafe extern "C" fn cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(
    numBlocks: *mut c_int,
    func: CUfunction,
    blockSize: c_int,
    dynamicSMemSize: usize,
    flags: c_uint,
) -> CUresult {
    api("cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags", || {
        if flags > 1 {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        let blocks = occupancy(func, blockSize, dynamicSMemSize)?;
        // SAFETY: numBlocks is the caller's out-parameter.
        unsafe { put(numBlocks, blocks) }
    })
}

/// The block size with the most threads resident per SM (the largest such), and the grid that
/// fills the device with it: `(min grid size, block size)`.
///
/// # Safety
/// `blockSizeToDynamicSMemSize`, if given, may be called with any block size.
unsafe fn potential_block_size(
    func: CUfunction,
    blockSizeToDynamicSMemSize: CUoccupancyB2DSize,
    dynamicSMemSize: usize,
    blockSizeLimit: c_int,
) -> CuResult<(c_int, c_int)> {
    let f = function(func)?;
    f.ctx.check()?;
    let mut limit = f.kernel.max_threads_per_block.min(MAX_THREADS_PER_BLOCK);
    if blockSizeLimit > 0 {
        limit = limit.min(blockSizeLimit as u32);
    }
    let candidates = std::iter::once(limit).chain((1..=limit / WARP_SIZE).rev().map(|w| w * WARP_SIZE));
    let (mut best_threads, mut best_block, mut best_blocks) = (0, 0, 0);
    for block in candidates {
        let dynamic = match blockSizeToDynamicSMemSize {
            // SAFETY: the caller's contract.
            Some(callback) => unsafe { callback(block as c_int) },
            None => dynamicSMemSize,
        };
        let blocks = blocks_per_sm(&f, block, dynamic);
        if blocks * block > best_threads {
            (best_threads, best_block, best_blocks) = (blocks * block, block, blocks);
        }
    }
    Ok(((best_blocks * SM_COUNT) as c_int, best_block as c_int))
}

/// Writes the result of [`potential_block_size`] to the caller's out-parameters.
///
/// # Safety
/// Both pointers are null or valid for writes.
unsafe fn put_block_size(minGridSize: *mut c_int, blockSize: *mut c_int, (grid, block): (c_int, c_int)) -> CuResult {
    // SAFETY: the caller's contract.
    unsafe {
        put(minGridSize, grid)?;
        put(blockSize, block)
    }
}

#[no_mangle]
pub unsafe extern "C" fn cuOccupancyMaxPotentialBlockSize(
    minGridSize: *mut c_int,
    blockSize: *mut c_int,
    func: CUfunction,
    blockSizeToDynamicSMemSize: CUoccupancyB2DSize,
    dynamicSMemSize: usize,
    blockSizeLimit: c_int,
) -> CUresult {
    api("cuOccupancyMaxPotentialBlockSize", || {
        // SAFETY: the caller's callback and out-parameters.
        unsafe {
            let size = potential_block_size(func, blockSizeToDynamicSMemSize, dynamicSMemSize, blockSizeLimit)?;
            put_block_size(minGridSize, blockSize, size)
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuOccupancyMaxPotentialBlockSizeWithFlags(
    minGridSize: *mut c_int,
    blockSize: *mut c_int,
    func: CUfunction,
    blockSizeToDynamicSMemSize: CUoccupancyB2DSize,
    dynamicSMemSize: usize,
    blockSizeLimit: c_int,
    flags: c_uint,
) -> CUresult {
    api("cuOccupancyMaxPotentialBlockSizeWithFlags", || {
        if flags > 1 {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        // SAFETY: the caller's callback and out-parameters.
        unsafe {
            let size = potential_block_size(func, blockSizeToDynamicSMemSize, dynamicSMemSize, blockSizeLimit)?;
            put_block_size(minGridSize, blockSize, size)
        }
    })
}

/// The dynamic shared memory each of `numBlocks` blocks of `blockSize` threads may use with all of
/// them resident on one SM.
#[no_mangle]
pub unsafe extern "C" fn cuOccupancyAvailableDynamicSMemPerBlock(
    dynamicSmemSize: *mut usize,
    func: CUfunction,
    numBlocks: c_int,
    blockSize: c_int,
) -> CUresult {
    api("cuOccupancyAvailableDynamicSMemPerBlock", || {
        let f = function(func)?;
        f.ctx.check()?;
        let (blocks, block) = match (u32::try_from(numBlocks), u32::try_from(blockSize)) {
            (Ok(n), Ok(b)) if n > 0 => (n, b),
            _ => return Err(CUresult::CUDA_ERROR_INVALID_VALUE),
        };
        let available = if blocks_per_sm(&f, block, 0) < blocks {
            0
        } else {
            let per_block = (SHARED_PER_SM / blocks).saturating_sub(SHARED_RESERVED_PER_BLOCK);
            per_block
                .min(SHARED_PER_BLOCK_OPTIN)
                .saturating_sub(f.kernel.static_shared_bytes)
        };
        // SAFETY: dynamicSmemSize is the caller's out-parameter.
        unsafe { put(dynamicSmemSize, available as usize) }
    })
}
