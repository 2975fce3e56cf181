//! The one emulated device: initialisation, its identity and its attributes, which are an H100
//! SXM5's (compute capability 9.0, 132 SMs) except where the emulator lacks the feature an
//! attribute announces (managed memory, host memory mapped into kernels, clusters, tensor maps,
//! inter-process and external handles, virtual memory management): those report 0.

use std::ffi::{c_char, c_int};

use cudarc::driver::sys::{CUdevice, CUdevice_attribute as A, CUresult, CUuuid};

use super::{api, guard, put, set_initialised, CuResult};
use crate::memory::DEVICE_MEMORY_BYTES;

/// The driver API version reported (CUDA 13.0).
pub(crate) const DRIVER_VERSION: c_int = 13000;

/// What `cuDeviceGetName` reports: the device is the emulator, with an H100's attributes.
const NAME: &str = "leangcn PTX emulator (H100 attributes, sm_90)";

/// A fixed UUID, so that tools that key on it see the same device every run.
const UUID: [u8; 16] = *b"ptx-emulator\x00\x00\x00\x90";

/// The H100's execution limits, which launches and occupancy queries are checked against.
pub(crate) const SM_COUNT: u32 = 132;
pub(crate) const WARP_SIZE: u32 = 32;
pub(crate) const MAX_THREADS_PER_BLOCK: u32 = 1024;
pub(crate) const MAX_BLOCK_DIM: [u32; 3] = [1024, 1024, 64];
pub(crate) const MAX_GRID_DIM: [u32; 3] = [i32::MAX as u32, 65535, 65535];
pub(crate) const MAX_THREADS_PER_SM: u32 = 2048;
pub(crate) const MAX_BLOCKS_PER_SM: u32 = 32;
pub(crate) const REGISTERS_PER_SM: u32 = 65536;
/// Shared memory a block may use without opting in (`CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES`).
pub(crate) const SHARED_PER_BLOCK: u32 = 48 << 10;
/// Shared memory a block may opt in to (227 KiB).
pub(crate) const SHARED_PER_BLOCK_OPTIN: u32 = 227 << 10;
pub(crate) const SHARED_PER_SM: u32 = 228 << 10;
/// Shared memory the system reserves for each resident block.
pub(crate) const SHARED_RESERVED_PER_BLOCK: u32 = 1 << 10;

/// The attributes an H100 SXM5 80GB reports (NVIDIA's published values); any attribute not listed
/// reports 0.
#[rustfmt::skip]
const ATTRIBUTES: &[(A, c_int)] = &[
    (A::CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, MAX_THREADS_PER_BLOCK as c_int),
    (A::CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X, MAX_BLOCK_DIM[0] as c_int),
    (A::CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y, MAX_BLOCK_DIM[1] as c_int),
    (A::CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z, MAX_BLOCK_DIM[2] as c_int),
    (A::CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, MAX_GRID_DIM[0] as c_int),
    (A::CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, MAX_GRID_DIM[1] as c_int),
    (A::CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z, MAX_GRID_DIM[2] as c_int),
    (A::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, SHARED_PER_BLOCK as c_int),
    (A::CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY, 65536),
    (A::CU_DEVICE_ATTRIBUTE_WARP_SIZE, WARP_SIZE as c_int),
    (A::CU_DEVICE_ATTRIBUTE_MAX_PITCH, i32::MAX),
    (A::CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK, REGISTERS_PER_SM as c_int),
    // kHz: the 1980 MHz boost clock
    (A::CU_DEVICE_ATTRIBUTE_CLOCK_RATE, 1_980_000),
    (A::CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT, 512),
    (A::CU_DEVICE_ATTRIBUTE_GPU_OVERLAP, 1),
    (A::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, SM_COUNT as c_int),
    (A::CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT, 0),
    (A::CU_DEVICE_ATTRIBUTE_INTEGRATED, 0),
    (A::CU_DEVICE_ATTRIBUTE_COMPUTE_MODE, 0),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_WIDTH, 131072),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_WIDTH, 131072),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_HEIGHT, 65536),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_WIDTH, 16384),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_HEIGHT, 16384),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_DEPTH, 16384),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LAYERED_WIDTH, 32768),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LAYERED_HEIGHT, 32768),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LAYERED_LAYERS, 2048),
    (A::CU_DEVICE_ATTRIBUTE_SURFACE_ALIGNMENT, 512),
    (A::CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS, 1),
    (A::CU_DEVICE_ATTRIBUTE_ECC_ENABLED, 1),
    (A::CU_DEVICE_ATTRIBUTE_TCC_DRIVER, 0),
    // kHz: HBM3 at 2619 MHz on a 5120-bit bus
    (A::CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE, 2_619_000),
    (A::CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH, 5120),
    (A::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, 50 << 20),
    (A::CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR, MAX_THREADS_PER_SM as c_int),
    (A::CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT, 3),
    (A::CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING, 1),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_LAYERED_WIDTH, 32768),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_LAYERED_LAYERS, 2048),
    (A::CU_DEVICE_ATTRIBUTE_CAN_TEX2D_GATHER, 1),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_GATHER_WIDTH, 32768),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_GATHER_HEIGHT, 32768),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_WIDTH_ALTERNATE, 8192),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_HEIGHT_ALTERNATE, 8192),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE3D_DEPTH_ALTERNATE, 32768),
    (A::CU_DEVICE_ATTRIBUTE_TEXTURE_PITCH_ALIGNMENT, 32),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURECUBEMAP_WIDTH, 32768),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURECUBEMAP_LAYERED_WIDTH, 32768),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURECUBEMAP_LAYERED_LAYERS, 2046),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE1D_WIDTH, 32768),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE2D_WIDTH, 131072),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE2D_HEIGHT, 65536),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE3D_WIDTH, 16384),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE3D_HEIGHT, 16384),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE3D_DEPTH, 16384),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE1D_LAYERED_WIDTH, 32768),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE1D_LAYERED_LAYERS, 2048),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE2D_LAYERED_WIDTH, 32768),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE2D_LAYERED_HEIGHT, 32768),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACE2D_LAYERED_LAYERS, 2048),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACECUBEMAP_WIDTH, 32768),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACECUBEMAP_LAYERED_WIDTH, 32768),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_SURFACECUBEMAP_LAYERED_LAYERS, 2046),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_LINEAR_WIDTH, 1 << 28),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LINEAR_WIDTH, 131072),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LINEAR_HEIGHT, 65000),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_LINEAR_PITCH, 2_097_120),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_MIPMAPPED_WIDTH, 32768),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE2D_MIPMAPPED_HEIGHT, 32768),
    (A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 9),
    (A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 0),
    (A::CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_MIPMAPPED_WIDTH, 32768),
    (A::CU_DEVICE_ATTRIBUTE_STREAM_PRIORITIES_SUPPORTED, 1),
    (A::CU_DEVICE_ATTRIBUTE_GLOBAL_L1_CACHE_SUPPORTED, 1),
    (A::CU_DEVICE_ATTRIBUTE_LOCAL_L1_CACHE_SUPPORTED, 1),
    (A::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, SHARED_PER_SM as c_int),
    (A::CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR, REGISTERS_PER_SM as c_int),
    (A::CU_DEVICE_ATTRIBUTE_MULTI_GPU_BOARD, 0),
    (A::CU_DEVICE_ATTRIBUTE_SINGLE_TO_DOUBLE_PRECISION_PERF_RATIO, 2),
    (A::CU_DEVICE_ATTRIBUTE_COMPUTE_PREEMPTION_SUPPORTED, 1),
    (A::CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH, 1),
    (A::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, SHARED_PER_BLOCK_OPTIN as c_int),
    (A::CU_DEVICE_ATTRIBUTE_HOST_REGISTER_SUPPORTED, 1),
    (A::CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR, MAX_BLOCKS_PER_SM as c_int),
    (A::CU_DEVICE_ATTRIBUTE_MAX_ACCESS_POLICY_WINDOW_SIZE, 134_213_632),
    (A::CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK, SHARED_RESERVED_PER_BLOCK as c_int),
    (A::CU_DEVICE_ATTRIBUTE_READ_ONLY_HOST_REGISTER_SUPPORTED, 1),
    (A::CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED, 1),
    (A::CU_DEVICE_ATTRIBUTE_MEM_SYNC_DOMAIN_COUNT, 4),
    (A::CU_DEVICE_ATTRIBUTE_UNIFIED_FUNCTION_POINTERS, 1),
    (A::CU_DEVICE_ATTRIBUTE_NUMA_ID, -1),
];

/// The value of the attribute whose C value is `attrib`; `None` outside the enum.
pub(crate) fn attribute(attrib: u32) -> Option<c_int> {
    if attrib == 0 || attrib >= A::CU_DEVICE_ATTRIBUTE_MAX as u32 {
        return None;
    }
    Some(
        ATTRIBUTES
            .iter()
            .find(|(a, _)| *a as u32 == attrib)
            .map_or(0, |&(_, v)| v),
    )
}

/// Checks a device ordinal: only device 0 exists.
pub(crate) fn check_device(dev: CUdevice) -> CuResult {
    if dev == 0 {
        Ok(())
    } else {
        Err(CUresult::CUDA_ERROR_INVALID_DEVICE)
    }
}

#[no_mangle]
pub unsafe extern "C" fn cuInit(Flags: u32) -> CUresult {
    guard("cuInit", || {
        if Flags != 0 {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        set_initialised();
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuDriverGetVersion(driverVersion: *mut c_int) -> CUresult {
    // SAFETY: driverVersion is the caller's out-parameter.
    guard("cuDriverGetVersion", || unsafe { put(driverVersion, DRIVER_VERSION) })
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetCount(count: *mut c_int) -> CUresult {
    // SAFETY: count is the caller's out-parameter.
    api("cuDeviceGetCount", || unsafe { put(count, 1) })
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGet(device: *mut CUdevice, ordinal: c_int) -> CUresult {
    api("cuDeviceGet", || {
        check_device(ordinal)?;
        // SAFETY: device is the caller's out-parameter.
        unsafe { put(device, ordinal) }
    })
}

/// Writes the device's name, truncated to `len - 1` bytes and NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetName(name: *mut c_char, len: c_int, dev: CUdevice) -> CUresult {
    api("cuDeviceGetName", || {
        check_device(dev)?;
        if name.is_null() || len <= 0 {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        let n = NAME.len().min(len as usize - 1);
        // SAFETY: the caller's buffer holds `len` bytes, and n + 1 <= len.
        unsafe {
            std::ptr::copy_nonoverlapping(NAME.as_ptr(), name.cast::<u8>(), n);
            name.add(n).write(0);
        }
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetUuid_v2(uuid: *mut CUuuid, dev: CUdevice) -> CUresult {
    api("cuDeviceGetUuid_v2", || {
        check_device(dev)?;
        let bytes = UUID.map(|b| b as c_char);
        // SAFETY: uuid is the caller's out-parameter.
        unsafe { put(uuid, CUuuid { bytes }) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceTotalMem_v2(bytes: *mut usize, dev: CUdevice) -> CUresult {
    api("cuDeviceTotalMem_v2", || {
        check_device(dev)?;
        // SAFETY: bytes is the caller's out-parameter.
        unsafe { put(bytes, DEVICE_MEMORY_BYTES as usize) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetAttribute(pi: *mut c_int, attrib: u32, dev: CUdevice) -> CUresult {
    api("cuDeviceGetAttribute", || {
        check_device(dev)?;
        let value = attribute(attrib).ok_or(CUresult::CUDA_ERROR_INVALID_VALUE)?;
        // SAFETY: pi is the caller's out-parameter.
        unsafe { put(pi, value) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceComputeCapability(major: *mut c_int, minor: *mut c_int, dev: CUdevice) -> CUresult {
    api("cuDeviceComputeCapability", || {
        check_device(dev)?;
        // SAFETY: major and minor are the caller's out-parameters.
        unsafe {
            put(major, 9)?;
            put(minor, 0)
        }
    })
}

/// There is one device, and a device is not its own peer: every pair is an invalid device.
#[no_mangle]
pub unsafe extern "C" fn cuDeviceCanAccessPeer(
    _canAccessPeer: *mut c_int,
    dev: CUdevice,
    peerDev: CUdevice,
) -> CUresult {
    api("cuDeviceCanAccessPeer", || {
        check_device(dev)?;
        check_device(peerDev)?;
        Err(CUresult::CUDA_ERROR_INVALID_DEVICE)
    })
}

/// No profiler attaches to the emulator: starting and stopping its capture range does nothing.
#[no_mangle]
pub unsafe extern "C" fn cuProfilerStart() -> CUresult {
    api("cuProfilerStart", || Ok(()))
}

#[no_mangle]
pub unsafe extern "C" fn cuProfilerStop() -> CUresult {
    api("cuProfilerStop", || Ok(()))
}
