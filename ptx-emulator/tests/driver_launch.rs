//! Modules, functions and launches, called as a C program calls them. The tests that load PTX need
//! the executor (`exec::load_module` and `exec::launch`).

mod driver_common;

use std::ffi::{c_int, c_uint, c_void, CString};
use std::ptr::null_mut;

use cudarc::driver::sys::{
    CUfunction, CUfunction_attribute as F, CUjit_option, CUmodule, CUresult, CUstreamCaptureMode as Mode,
};
use driver_common::{alloc, ok, read, stream, write, Own, Primary};
use ptx_emulator::driver::*;

const INVALID: CUresult = CUresult::CUDA_ERROR_INVALID_VALUE;

/// `add_one(p, n)`: `p[i] += 1` for `i < n`; `poke(p, i)`: `p[i] = 1` unchecked; `tile`: 1 KiB of
/// static shared memory and at most 128 threads; and a global `counter`.
const PTX: &str = r#"
.version 8.0
.target sm_90
.address_size 64

.global .align 4 .u32 counter;

.visible .entry add_one(
    .param .u64 add_one_param_0,
    .param .u32 add_one_param_1
)
{
    .reg .pred %p<2>;
    .reg .b32 %r<8>;
    .reg .b64 %rd<5>;

    ld.param.u64 %rd1, [add_one_param_0];
    ld.param.u32 %r2, [add_one_param_1];
    mov.u32 %r3, %ctaid.x;
    mov.u32 %r4, %ntid.x;
    mov.u32 %r5, %tid.x;
    mad.lo.s32 %r1, %r3, %r4, %r5;
    setp.ge.u32 %p1, %r1, %r2;
    @%p1 bra $L__BB0_2;
    cvta.to.global.u64 %rd2, %rd1;
    mul.wide.u32 %rd3, %r1, 4;
    add.s64 %rd4, %rd2, %rd3;
    ld.global.u32 %r6, [%rd4];
    add.s32 %r7, %r6, 1;
    st.global.u32 [%rd4], %r7;
$L__BB0_2:
    ret;
}

.visible .entry poke(
    .param .u64 poke_param_0,
    .param .u64 poke_param_1
)
{
    .reg .b32 %r<2>;
    .reg .b64 %rd<5>;

    ld.param.u64 %rd1, [poke_param_0];
    ld.param.u64 %rd2, [poke_param_1];
    cvta.to.global.u64 %rd3, %rd1;
    shl.b64 %rd4, %rd2, 2;
    add.s64 %rd3, %rd3, %rd4;
    mov.u32 %r1, 1;
    st.global.u32 [%rd3], %r1;
    ret;
}

.visible .entry tile()
.maxntid 128, 1, 1
{
    .shared .align 4 .b8 scratch[1024];
    ret;
}
"#;

fn load() -> CUmodule {
    let text = CString::new(PTX).unwrap();
    let mut module = null_mut();
    // SAFETY: a NUL-terminated image and a valid out-parameter.
    ok(unsafe { cuModuleLoadData(&mut module, text.as_ptr().cast()) });
    module
}

fn function(module: CUmodule, name: &str) -> CUfunction {
    let name = CString::new(name).unwrap();
    let mut f = null_mut();
    // SAFETY: a NUL-terminated name and a valid out-parameter.
    ok(unsafe { cuModuleGetFunction(&mut f, module, name.as_ptr()) });
    f
}

fn attribute(f: CUfunction, a: F) -> c_int {
    let mut value = -1;
    // SAFETY: a valid out-parameter.
    ok(unsafe { cuFuncGetAttribute(&mut value, a as u32, f) });
    value
}

/// Launches `f` with the parameter values `params` points to.
///
/// # Safety
/// `params` points to one value of each of `f`'s parameters.
unsafe fn launch(f: CUfunction, grid: u32, block: u32, shared: u32, params: &mut [*mut c_void]) -> CUresult {
    // SAFETY: the caller's contract.
    unsafe {
        cuLaunchKernel(
            f,
            grid,
            1,
            1,
            block,
            1,
            1,
            shared,
            null_mut(),
            params.as_mut_ptr(),
            null_mut(),
        )
    }
}

#[test]
fn binary_images_are_refused() {
    let _ctx = Primary::open();
    let mut module = null_mut();
    let cubin = b"\x7fELF\x02\x01\x01\x00";
    let fatbin = [0x50u8, 0xed, 0x55, 0xba, 1, 0];
    let latin1 = b"\xff\xfe.version\0";
    // SAFETY: NUL-terminated images and valid out-parameters.
    unsafe {
        assert_eq!(
            cuModuleLoadData(&mut module, cubin.as_ptr().cast()),
            CUresult::CUDA_ERROR_NOT_SUPPORTED
        );
        assert_eq!(
            cuModuleLoadData(&mut module, fatbin.as_ptr().cast()),
            CUresult::CUDA_ERROR_NOT_SUPPORTED
        );
        assert_eq!(
            cuModuleLoadData(&mut module, latin1.as_ptr().cast()),
            CUresult::CUDA_ERROR_INVALID_IMAGE
        );
        assert_eq!(cuModuleLoadData(&mut module, std::ptr::null()), INVALID);
        let missing = CString::new("/nonexistent/kernels.ptx").unwrap();
        assert_eq!(
            cuModuleLoad(&mut module, missing.as_ptr()),
            CUresult::CUDA_ERROR_FILE_NOT_FOUND
        );
    }
}

#[test]
fn bad_functions_and_extra_parameters_are_refused() {
    let _ctx = Primary::open();
    let bogus = 12345 as CUfunction;
    let mut value = 0;
    let mut extra = [null_mut::<c_void>()];
    // SAFETY: the handles are what is being tested; the rest are valid pointers.
    unsafe {
        assert_eq!(
            cuFuncGetAttribute(&mut value, 0, bogus),
            CUresult::CUDA_ERROR_INVALID_HANDLE
        );
        assert_eq!(launch(bogus, 1, 1, 0, &mut []), CUresult::CUDA_ERROR_INVALID_HANDLE);
        let with_extra = cuLaunchKernel(bogus, 1, 1, 1, 1, 1, 1, 0, null_mut(), null_mut(), extra.as_mut_ptr());
        assert_eq!(with_extra, CUresult::CUDA_ERROR_NOT_SUPPORTED);
        assert_eq!(cuModuleUnload(7 as CUmodule), CUresult::CUDA_ERROR_INVALID_HANDLE);
    }
}

#[test]
fn kernels_load_report_their_attributes_and_run() {
    let _ctx = Primary::open();
    let module = load();
    let (add_one, tile) = (function(module, "add_one"), function(module, "tile"));
    assert_eq!(attribute(add_one, F::CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK), 1024);
    assert_eq!(attribute(tile, F::CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK), 128);
    assert_eq!(attribute(tile, F::CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES), 1024);
    assert_eq!(attribute(add_one, F::CU_FUNC_ATTRIBUTE_NUM_REGS), 32);
    assert_eq!(attribute(add_one, F::CU_FUNC_ATTRIBUTE_PTX_VERSION), 90);
    assert_eq!(attribute(add_one, F::CU_FUNC_ATTRIBUTE_BINARY_VERSION), 90);
    assert_eq!(
        attribute(add_one, F::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES),
        48 << 10
    );
    assert_eq!(
        attribute(tile, F::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES),
        (48 << 10) - 1024
    );

    let n = 1000u32;
    let data = alloc(4 * n as usize);
    let values: Vec<u8> = (0..n).flat_map(|i| i.to_le_bytes()).collect();
    write(data, &values);
    let (mut ptr, mut count) = (data, n);
    let mut params = [(&mut ptr as *mut u64).cast(), (&mut count as *mut u32).cast()];
    // SAFETY: params point to add_one's (u64, u32) parameters.
    ok(unsafe { launch(add_one, 4, 256, 0, &mut params) });
    let expected: Vec<u8> = (0..n).flat_map(|i| (i + 1).to_le_bytes()).collect();
    assert_eq!(read(data, 4 * n as usize), expected);

    let name = CString::new("counter").unwrap();
    let (mut global, mut bytes) = (0, 0);
    // SAFETY: valid out-parameters and NUL-terminated names.
    unsafe {
        ok(cuModuleGetGlobal_v2(&mut global, &mut bytes, module, name.as_ptr()));
        assert_eq!(bytes, 4);
        write(global, &7u32.to_le_bytes());
        assert_eq!(read(global, 4), 7u32.to_le_bytes());
        let mut f = null_mut();
        let missing = CString::new("missing").unwrap();
        assert_eq!(
            cuModuleGetFunction(&mut f, module, missing.as_ptr()),
            CUresult::CUDA_ERROR_NOT_FOUND
        );
        let mut name = std::ptr::null();
        ok(cuFuncGetName(&mut name, add_one));
        assert_eq!(std::ffi::CStr::from_ptr(name).to_str().unwrap(), "add_one");
        ok(cuModuleUnload(module));
        let mut value = 0;
        assert_eq!(
            cuFuncGetAttribute(&mut value, 0, add_one),
            CUresult::CUDA_ERROR_INVALID_HANDLE
        );
        ok(cuMemFree_v2(data));
    }
}

#[test]
fn launches_are_checked_against_the_h100s_limits() {
    let _ctx = Primary::open();
    let module = load();
    let (add_one, tile) = (function(module, "add_one"), function(module, "tile"));
    let data = alloc(4);
    write(data, &[0; 4]);
    let (mut ptr, mut count) = (data, 1u32);
    let mut params = [(&mut ptr as *mut u64).cast(), (&mut count as *mut u32).cast()];
    let dynamic = F::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES as u32;
    // SAFETY: params point to add_one's parameters; tile takes none.
    unsafe {
        assert_eq!(launch(add_one, 1, 1025, 0, &mut params), INVALID);
        assert_eq!(launch(add_one, 0, 32, 0, &mut params), INVALID);
        assert_eq!(launch(tile, 1, 256, 0, &mut []), INVALID, "more than its .maxntid");
        ok(launch(tile, 1, 128, 0, &mut []));
        let grid_y = cuLaunchKernel(
            add_one,
            1,
            65536,
            1,
            32,
            1,
            1,
            0,
            null_mut(),
            params.as_mut_ptr(),
            null_mut(),
        );
        assert_eq!(grid_y, INVALID);
        assert_eq!(
            launch(add_one, 1, 32, 64 << 10, &mut params),
            INVALID,
            "above 48 KiB without opting in"
        );
        ok(cuFuncSetAttribute(add_one, dynamic, 64 << 10));
        ok(launch(add_one, 1, 32, 64 << 10, &mut params));
        assert_eq!(launch(add_one, 1, 32, (64 << 10) + 4, &mut params), INVALID);
        assert_eq!(cuFuncSetAttribute(add_one, dynamic, 228 << 10), INVALID);
        assert_eq!(
            cuFuncSetAttribute(tile, dynamic, 227 << 10),
            INVALID,
            "with its static 1 KiB"
        );
        assert_eq!(
            cuFuncSetAttribute(add_one, F::CU_FUNC_ATTRIBUTE_NUM_REGS as u32, 8),
            INVALID
        );
        let missing = cuLaunchKernel(add_one, 1, 1, 1, 32, 1, 1, 0, null_mut(), null_mut(), null_mut());
        assert_eq!(missing, INVALID, "parameters missing");
        ok(cuModuleUnload(module));
    }
}

#[test]
fn occupancy_follows_threads_registers_and_shared_memory() {
    let _ctx = Primary::open();
    let module = load();
    let (add_one, tile) = (function(module, "add_one"), function(module, "tile"));
    let (mut blocks, mut grid, mut block) = (0, 0, 0);
    let mut available = 0;
    // SAFETY: valid out-parameters.
    unsafe {
        ok(cuOccupancyMaxActiveBlocksPerMultiprocessor(
            &mut blocks,
            add_one,
            256,
            0,
        ));
        assert_eq!(blocks, 8);
        ok(cuOccupancyMaxActiveBlocksPerMultiprocessor(&mut blocks, add_one, 32, 0));
        assert_eq!(blocks, 32);
        ok(cuOccupancyMaxActiveBlocksPerMultiprocessor(
            &mut blocks,
            add_one,
            64,
            100 << 10,
        ));
        assert_eq!(blocks, 2, "228 KiB hold two blocks of 100 KiB and their reserve");
        ok(cuOccupancyMaxPotentialBlockSize(
            &mut grid, &mut block, add_one, None, 0, 0,
        ));
        assert_eq!((grid, block), (264, 1024));
        ok(cuOccupancyMaxPotentialBlockSizeWithFlags(
            &mut grid, &mut block, tile, None, 0, 0, 0,
        ));
        assert_eq!(block, 128);
        ok(cuOccupancyAvailableDynamicSMemPerBlock(&mut available, tile, 2, 128));
        assert_eq!(available, (114 << 10) - 1024 - 1024);
        ok(cuModuleUnload(module));
    }
}

#[test]
fn a_fault_is_reported_and_sticks_to_its_context() {
    let _own = Own::create();
    let module = load();
    let poke = function(module, "poke");
    let data = alloc(16);
    let (mut ptr, mut index) = (data, 4u64);
    let mut params = [(&mut ptr as *mut u64).cast(), (&mut index as *mut u64).cast()];
    // SAFETY: params point to poke's (u64, u64) parameters; index 4 is past the allocation.
    unsafe {
        ok(launch(poke, 1, 1, 0, &mut params));
        assert_eq!(cuCtxSynchronize(), CUresult::CUDA_ERROR_ILLEGAL_ADDRESS);
        let mut p = 0;
        assert_eq!(cuMemAlloc_v2(&mut p, 4), CUresult::CUDA_ERROR_ILLEGAL_ADDRESS);
        *params[1].cast::<u64>() = 0;
        assert_eq!(launch(poke, 1, 1, 0, &mut params), CUresult::CUDA_ERROR_ILLEGAL_ADDRESS);
    }
}

#[test]
fn a_graph_replays_launches_with_their_captured_parameters() {
    let _ctx = Primary::open();
    let module = load();
    let add_one = function(module, "add_one");
    let s = stream();
    let data = alloc(16);
    write(data, &[0; 16]);
    let (mut ptr, mut count) = (data, 2u32);
    let mut params = [(&mut ptr as *mut u64).cast(), (&mut count as *mut u32).cast()];
    let (mut graph, mut exec) = (null_mut(), null_mut());
    // SAFETY: params point to add_one's parameters; valid out-parameters.
    unsafe {
        ok(cuStreamBeginCapture_v2(s, Mode::CU_STREAM_CAPTURE_MODE_GLOBAL as u32));
        let launched = cuLaunchKernel(add_one, 1, 1, 1, 32, 1, 1, 0, s, params.as_mut_ptr(), null_mut());
        ok(launched);
        ok(cuStreamEndCapture(s, &mut graph));
        *params[1].cast::<u32>() = 4;
        ok(cuGraphInstantiateWithFlags(&mut exec, graph, 0));
        ok(cuGraphLaunch(exec, s));
        ok(cuGraphLaunch(exec, s));
    }
    let words: Vec<u32> = read(data, 16)
        .chunks(4)
        .map(|w| u32::from_le_bytes(w.try_into().unwrap()))
        .collect();
    assert_eq!(words, [2, 2, 0, 0], "the launch's n is the one captured");
}

#[test]
fn a_load_error_fills_the_error_log() {
    let _ctx = Primary::open();
    let text = CString::new(".version 8.0\n.target sm_90\n.address_size 64\n.visible .entry k() { bogus; }\n").unwrap();
    let mut log = vec![0u8; 512];
    let mut options = [
        CUjit_option::CU_JIT_ERROR_LOG_BUFFER,
        CUjit_option::CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
    ];
    let mut values: [*mut c_void; 2] = [log.as_mut_ptr().cast(), log.len() as *mut c_void];
    let mut module = null_mut();
    // SAFETY: two options with their values; the log buffer holds 512 bytes.
    let result = unsafe {
        cuModuleLoadDataEx(
            &mut module,
            text.as_ptr().cast(),
            options.len() as c_uint,
            options.as_mut_ptr(),
            values.as_mut_ptr(),
        )
    };
    assert_eq!(result, CUresult::CUDA_ERROR_INVALID_PTX);
    let message = std::ffi::CStr::from_bytes_until_nul(&log).unwrap().to_str().unwrap();
    assert!(message.contains("PTX line"), "{message}");
}
