//! Helpers of the driver tests, which call the exported functions as a C program does.

// Each test file uses some of these.
#![allow(dead_code)]

use std::ptr::null_mut;

use cudarc::driver::sys::{CUcontext, CUdeviceptr, CUresult, CUstream};
use ptx_emulator::driver::*;

/// Fails the test unless the call succeeded.
#[track_caller]
pub fn ok(result: CUresult) {
    assert_eq!(result, CUresult::CUDA_SUCCESS);
}

/// The primary context, retained and current on the calling thread until dropped.
pub struct Primary {
    pub ctx: CUcontext,
}

impl Primary {
    pub fn open() -> Self {
        let mut ctx = null_mut();
        // SAFETY: plain driver calls with a valid out-parameter.
        unsafe {
            ok(cuInit(0));
            ok(cuDevicePrimaryCtxRetain(&mut ctx, 0));
            ok(cuCtxSetCurrent(ctx));
        }
        Self { ctx }
    }
}

impl Drop for Primary {
    fn drop(&mut self) {
        // SAFETY: releases the retain of `open`.
        let _ = unsafe { cuDevicePrimaryCtxRelease_v2(0) };
    }
}

/// A context of the test's own, current on the calling thread until dropped: for tests that leave
/// a sticky error, which must not reach the primary context other tests share.
pub struct Own {
    pub ctx: CUcontext,
}

impl Own {
    pub fn create() -> Self {
        let mut ctx = null_mut();
        // SAFETY: plain driver calls with a valid out-parameter.
        unsafe {
            ok(cuInit(0));
            ok(cuCtxCreate_v4(&mut ctx, null_mut(), 0, 0));
        }
        Self { ctx }
    }
}

impl Drop for Own {
    fn drop(&mut self) {
        // SAFETY: destroys the context of `create`.
        let _ = unsafe { cuCtxDestroy_v2(self.ctx) };
    }
}

/// A new non-blocking stream of the current context.
pub fn stream() -> CUstream {
    let mut stream = null_mut();
    // SAFETY: a valid out-parameter.
    ok(unsafe { cuStreamCreate(&mut stream, 1) });
    stream
}

/// `bytes` of device memory.
pub fn alloc(bytes: usize) -> CUdeviceptr {
    let mut ptr = 0;
    // SAFETY: a valid out-parameter.
    ok(unsafe { cuMemAlloc_v2(&mut ptr, bytes) });
    ptr
}

/// `n` bytes of device memory at `ptr`.
pub fn read(ptr: CUdeviceptr, n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    // SAFETY: the buffer holds n bytes.
    ok(unsafe { cuMemcpyDtoH_v2(bytes.as_mut_ptr().cast(), ptr, n) });
    bytes
}

/// `bytes` to device memory at `ptr`.
pub fn write(ptr: CUdeviceptr, bytes: &[u8]) {
    // SAFETY: the slice holds bytes.len() bytes.
    ok(unsafe { cuMemcpyHtoD_v2(ptr, bytes.as_ptr().cast(), bytes.len()) });
}
