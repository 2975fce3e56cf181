//! Before `cuInit` the driver refuses everything but the calls that need no initialisation (this
//! file's only test, so that no other test initialises the driver first).

use std::ffi::c_int;

use cudarc::driver::sys::CUresult;
use ptx_emulator::driver::*;

#[test]
fn calls_before_cuinit_are_refused() {
    // SAFETY: every pointer passed is to a local.
    unsafe {
        let mut count: c_int = 0;
        assert_eq!(cuDeviceGetCount(&mut count), CUresult::CUDA_ERROR_NOT_INITIALIZED);
        let mut ptr = 0;
        assert_eq!(cuMemAlloc_v2(&mut ptr, 256), CUresult::CUDA_ERROR_NOT_INITIALIZED);
        let mut version = 0;
        assert_eq!(cuDriverGetVersion(&mut version), CUresult::CUDA_SUCCESS);
        let mut name = std::ptr::null();
        assert_eq!(cuGetErrorName(3, &mut name), CUresult::CUDA_SUCCESS);
        assert_eq!(cuInit(1), CUresult::CUDA_ERROR_INVALID_VALUE);
        assert_eq!(cuInit(0), CUresult::CUDA_SUCCESS);
        assert_eq!(cuDeviceGetCount(&mut count), CUresult::CUDA_SUCCESS);
        assert_eq!(count, 1);
    }
}
