//! The driver's device, contexts, error names and unimplemented functions, called as a C program
//! calls them.

mod driver_common;

use std::ffi::{c_char, c_int, c_uint, CStr};
use std::ptr::null_mut;

use cudarc::driver::sys::{CUcontext, CUdevice_attribute as A, CUfunc_cache, CUlimit, CUresult};
use driver_common::{ok, Own, Primary};
use ptx_emulator::driver::*;

fn attribute(a: A) -> c_int {
    let mut value = -7;
    // SAFETY: a valid out-parameter.
    ok(unsafe { cuDeviceGetAttribute(&mut value, a as u32, 0) });
    value
}

#[test]
fn the_device_is_one_h100_named_as_the_emulator() {
    // SAFETY: every pointer passed is to a local.
    unsafe {
        ok(cuInit(0));
        let mut count = 0;
        ok(cuDeviceGetCount(&mut count));
        assert_eq!(count, 1);
        let mut dev = -1;
        ok(cuDeviceGet(&mut dev, 0));
        assert_eq!(dev, 0);
        assert_eq!(cuDeviceGet(&mut dev, 1), CUresult::CUDA_ERROR_INVALID_DEVICE);

        let mut name = [0 as c_char; 128];
        ok(cuDeviceGetName(name.as_mut_ptr(), name.len() as c_int, 0));
        let name = CStr::from_ptr(name.as_ptr()).to_str().unwrap();
        assert!(name.contains("emulator") && name.contains("H100"), "{name}");
        let mut short = [1 as c_char; 5];
        ok(cuDeviceGetName(short.as_mut_ptr(), 5, 0));
        assert_eq!(CStr::from_ptr(short.as_ptr()).to_bytes(), &name.as_bytes()[..4]);

        let mut version = 0;
        ok(cuDriverGetVersion(&mut version));
        assert_eq!(version, 13000);
        let mut total = 0;
        ok(cuDeviceTotalMem_v2(&mut total, 0));
        assert_eq!(total, 80 << 30);
        let (mut major, mut minor) = (0, -1);
        ok(cuDeviceComputeCapability(&mut major, &mut minor, 0));
        assert_eq!((major, minor), (9, 0));
        let mut uuid = std::mem::zeroed();
        ok(cuDeviceGetUuid_v2(&mut uuid, 0));
        let mut again = std::mem::zeroed();
        ok(cuDeviceGetUuid_v2(&mut again, 0));
        assert_eq!(uuid.bytes, again.bytes);
        let mut can = 0;
        assert_eq!(
            cuDeviceCanAccessPeer(&mut can, 0, 0),
            CUresult::CUDA_ERROR_INVALID_DEVICE
        );
    }
}

#[test]
fn attributes_are_an_h100s() {
    // SAFETY: cuInit takes no pointer.
    ok(unsafe { cuInit(0) });
    let expected = [
        (A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 9),
        (A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 0),
        (A::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 132),
        (A::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, 228 << 10),
        (A::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, 227 << 10),
        (A::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, 48 << 10),
        (A::CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR, 65536),
        (A::CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK, 65536),
        (A::CU_DEVICE_ATTRIBUTE_WARP_SIZE, 32),
        (A::CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 1024),
        (A::CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR, 2048),
        (A::CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR, 32),
        (A::CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X, 1024),
        (A::CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y, 1024),
        (A::CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z, 64),
        (A::CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, i32::MAX),
        (A::CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, 65535),
        (A::CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z, 65535),
        (A::CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED, 1),
        (A::CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING, 1),
        (A::CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS, 0),
        (A::CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY, 0),
        (A::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, 50 << 20),
        (A::CU_DEVICE_ATTRIBUTE_CLOCK_RATE, 1_980_000),
        (A::CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE, 2_619_000),
        (A::CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH, 5120),
        (A::CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY, 65536),
        (A::CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK, 1024),
        (A::CU_DEVICE_ATTRIBUTE_STREAM_PRIORITIES_SUPPORTED, 1),
        (A::CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH, 0),
        (A::CU_DEVICE_ATTRIBUTE_INTEGRATED, 0),
    ];
    for (a, value) in expected {
        assert_eq!(attribute(a), value, "{a:?}");
    }
    let mut value = 0;
    for outside in [0, A::CU_DEVICE_ATTRIBUTE_MAX as u32, 100_000] {
        // SAFETY: a valid out-parameter.
        let result = unsafe { cuDeviceGetAttribute(&mut value, outside, 0) };
        assert_eq!(result, CUresult::CUDA_ERROR_INVALID_VALUE);
    }
    // SAFETY: a valid out-parameter.
    let result = unsafe { cuDeviceGetAttribute(&mut value, A::CU_DEVICE_ATTRIBUTE_WARP_SIZE as u32, 3) };
    assert_eq!(result, CUresult::CUDA_ERROR_INVALID_DEVICE);
}

#[test]
fn the_primary_context_is_retained_released_and_current() {
    // SAFETY: every pointer passed is to a local.
    unsafe {
        let primary = Primary::open();
        let mut again: CUcontext = null_mut();
        ok(cuDevicePrimaryCtxRetain(&mut again, 0));
        assert_eq!(again, primary.ctx);
        let (mut flags, mut active) = (7, 0);
        ok(cuDevicePrimaryCtxGetState(0, &mut flags, &mut active));
        assert_eq!(active, 1);
        ok(cuDevicePrimaryCtxRelease_v2(0));

        let mut current = null_mut();
        ok(cuCtxGetCurrent(&mut current));
        assert_eq!(current, primary.ctx);
        let mut dev = -1;
        ok(cuCtxGetDevice(&mut dev));
        assert_eq!(dev, 0);
        let mut version: c_uint = 0;
        ok(cuCtxGetApiVersion(primary.ctx, &mut version));
        assert_eq!(version, 3020);
        ok(cuCtxSynchronize());
        assert_eq!(cuCtxDestroy_v2(primary.ctx), CUresult::CUDA_ERROR_INVALID_CONTEXT);
    }
}

#[test]
fn created_contexts_stack_and_end() {
    // SAFETY: every pointer passed is to a local.
    unsafe {
        let primary = Primary::open();
        let own = Own::create();
        assert_ne!(own.ctx, primary.ctx);
        let mut current = null_mut();
        ok(cuCtxGetCurrent(&mut current));
        assert_eq!(current, own.ctx, "a created context becomes current");
        let mut popped = null_mut();
        ok(cuCtxPopCurrent_v2(&mut popped));
        assert_eq!(popped, own.ctx);
        ok(cuCtxGetCurrent(&mut current));
        assert_eq!(current, primary.ctx);
        ok(cuCtxPushCurrent_v2(own.ctx));
        let (mut id_own, mut id_primary) = (0, 0);
        ok(cuCtxGetId(own.ctx, &mut id_own));
        ok(cuCtxGetId(primary.ctx, &mut id_primary));
        assert_ne!(id_own, id_primary);

        let ended = own.ctx;
        drop(own);
        let mut version = 0;
        assert_eq!(
            cuCtxGetApiVersion(ended, &mut version),
            CUresult::CUDA_ERROR_INVALID_CONTEXT
        );
        assert_eq!(cuCtxPushCurrent_v2(ended), CUresult::CUDA_ERROR_INVALID_CONTEXT);
        ok(cuCtxGetCurrent(&mut current));
        assert_eq!(current, primary.ctx, "destroying a context pops it");
    }
}

#[test]
fn a_thread_without_a_context_is_refused() {
    // SAFETY: every pointer passed is to a local.
    unsafe {
        ok(cuInit(0));
        let mut current = 1 as CUcontext;
        ok(cuCtxGetCurrent(&mut current));
        assert!(current.is_null());
        let mut ptr = 0;
        assert_eq!(cuMemAlloc_v2(&mut ptr, 64), CUresult::CUDA_ERROR_INVALID_CONTEXT);
        assert_eq!(cuCtxSynchronize(), CUresult::CUDA_ERROR_INVALID_CONTEXT);
    }
}

#[test]
fn limits_cache_configs_flags_and_priorities() {
    // SAFETY: every pointer passed is to a local.
    unsafe {
        let _own = Own::create();
        let mut value = 0;
        ok(cuCtxGetLimit(&mut value, CUlimit::CU_LIMIT_STACK_SIZE as u32));
        assert_eq!(value, 1024);
        ok(cuCtxSetLimit(CUlimit::CU_LIMIT_MALLOC_HEAP_SIZE as u32, 1 << 26));
        ok(cuCtxGetLimit(&mut value, CUlimit::CU_LIMIT_MALLOC_HEAP_SIZE as u32));
        assert_eq!(value, 1 << 26);
        let unsupported = CUlimit::CU_LIMIT_SHMEM_SIZE as u32;
        assert_eq!(
            cuCtxGetLimit(&mut value, unsupported),
            CUresult::CUDA_ERROR_UNSUPPORTED_LIMIT
        );
        assert_eq!(cuCtxSetLimit(99, 1), CUresult::CUDA_ERROR_INVALID_VALUE);

        let mut config = CUfunc_cache::CU_FUNC_CACHE_PREFER_L1;
        ok(cuCtxGetCacheConfig(&mut config));
        assert_eq!(config, CUfunc_cache::CU_FUNC_CACHE_PREFER_NONE);
        ok(cuCtxSetCacheConfig(CUfunc_cache::CU_FUNC_CACHE_PREFER_SHARED as u32));
        ok(cuCtxGetCacheConfig(&mut config));
        assert_eq!(config, CUfunc_cache::CU_FUNC_CACHE_PREFER_SHARED);
        assert_eq!(cuCtxSetCacheConfig(4), CUresult::CUDA_ERROR_INVALID_VALUE);

        let mut flags = 99;
        ok(cuCtxGetFlags(&mut flags));
        assert_eq!(flags, 0);
        ok(cuCtxSetFlags(4));
        ok(cuCtxGetFlags(&mut flags));
        assert_eq!(flags, 4);
        assert_eq!(cuCtxSetFlags(1 << 20), CUresult::CUDA_ERROR_INVALID_VALUE);

        let (mut least, mut greatest) = (9, 9);
        ok(cuCtxGetStreamPriorityRange(&mut least, &mut greatest));
        assert_eq!((least, greatest), (0, -5));
    }
}

#[test]
fn every_error_has_its_name_and_a_description() {
    let mut known = 0;
    for code in 0..1000u32 {
        let (mut name, mut text) = (std::ptr::null(), std::ptr::null());
        // SAFETY: valid out-parameters.
        let (n, s) = unsafe { (cuGetErrorName(code, &mut name), cuGetErrorString(code, &mut text)) };
        assert_eq!(n, s);
        if n != CUresult::CUDA_SUCCESS {
            assert_eq!(n, CUresult::CUDA_ERROR_INVALID_VALUE);
            assert!(name.is_null() && text.is_null());
            continue;
        }
        known += 1;
        // SAFETY: the driver returned static NUL-terminated strings.
        let (name, text) = unsafe { (CStr::from_ptr(name), CStr::from_ptr(text)) };
        assert!(name.to_str().unwrap().starts_with("CUDA_"), "{name:?}");
        assert!(!text.to_bytes().is_empty());
    }
    assert_eq!(known, 101, "CUDA 13.0 has 101 result codes");
    let mut name = std::ptr::null();
    // SAFETY: a valid out-parameter; the name is a static string.
    let name = unsafe {
        ok(cuGetErrorName(CUresult::CUDA_ERROR_ILLEGAL_ADDRESS as u32, &mut name));
        CStr::from_ptr(name)
    };
    assert_eq!(
        name.to_str().unwrap(),
        format!("{:?}", CUresult::CUDA_ERROR_ILLEGAL_ADDRESS)
    );
}

#[test]
fn unimplemented_functions_say_so() {
    // SAFETY: the stubs take no parameters and touch nothing.
    unsafe {
        assert_eq!(cuArrayCreate_v2(), CUresult::CUDA_ERROR_NOT_SUPPORTED);
        assert_eq!(cuArrayCreate_v2(), CUresult::CUDA_ERROR_NOT_SUPPORTED);
        assert_eq!(cuMemAllocManaged(), CUresult::CUDA_ERROR_NOT_SUPPORTED);
        assert_eq!(cuLaunchKernelEx(), CUresult::CUDA_ERROR_NOT_SUPPORTED);
    }
}
