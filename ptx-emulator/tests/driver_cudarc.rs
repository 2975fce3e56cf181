//! The built library as cudarc finds it: each test runs itself again in a child process whose
//! `LD_LIBRARY_PATH` leads cudarc's `dlopen("libcuda.so")` to the `libptx_emulator.so` built with
//! the tests, and there checks that every symbol cudarc's safe API (and this project) looks up is exported, or
//! drives the emulator through cudarc's safe API.

use std::path::PathBuf;
use std::process::Command;

/// Set in the child process.
const CHILD: &str = "PTX_EMULATOR_DRIVER_TEST_CHILD";

/// The driver functions cudarc 0.19.10's safe API calls for CUDA 13.0, and those this project
/// calls directly (`cuDeviceGetDefaultMemPool`, `cuMemPoolSetAttribute`).
const CUDARC_SYMBOLS: &[&str] = &[
    "cuCtxCreate_v4",
    "cuCtxDestroy_v2",
    "cuCtxGetCacheConfig",
    "cuCtxGetCurrent",
    "cuCtxGetLimit",
    "cuCtxGetStreamPriorityRange",
    "cuCtxSetCacheConfig",
    "cuCtxSetCurrent",
    "cuCtxSetFlags",
    "cuCtxSetLimit",
    "cuCtxSynchronize",
    "cuDestroyExternalMemory",
    "cuDeviceGet",
    "cuDeviceGetAttribute",
    "cuDeviceGetCount",
    "cuDeviceGetDefaultMemPool",
    "cuDeviceGetMemPool",
    "cuDeviceGetName",
    "cuDeviceGetUuid_v2",
    "cuDevicePrimaryCtxRelease_v2",
    "cuDevicePrimaryCtxRetain",
    "cuDeviceSetMemPool",
    "cuDeviceTotalMem_v2",
    "cuEventCreate",
    "cuEventDestroy_v2",
    "cuEventElapsedTime_v2",
    "cuEventQuery",
    "cuEventRecord",
    "cuEventSynchronize",
    "cuExternalMemoryGetMappedBuffer",
    "cuFuncGetAttribute",
    "cuFuncSetAttribute",
    "cuFuncSetCacheConfig",
    "cuGetErrorName",
    "cuGetErrorString",
    "cuGraphDestroy",
    "cuGraphExecDestroy",
    "cuGraphInstantiateWithFlags",
    "cuGraphLaunch",
    "cuGraphUpload",
    "cuImportExternalMemory",
    "cuInit",
    "cuLaunchCooperativeKernel",
    "cuLaunchHostFunc",
    "cuLaunchKernel",
    "cuMemAdvise_v2",
    "cuMemAllocAsync",
    "cuMemAllocFromPoolAsync",
    "cuMemAllocManaged",
    "cuMemAlloc_v2",
    "cuMemFreeAsync",
    "cuMemFreeHost",
    "cuMemFree_v2",
    "cuMemGetInfo_v2",
    "cuMemHostAlloc",
    "cuMemPoolCreate",
    "cuMemPoolDestroy",
    "cuMemPoolGetAttribute",
    "cuMemPoolSetAttribute",
    "cuMemPoolTrimTo",
    "cuMemPrefetchAsync_v2",
    "cuMemcpyDtoDAsync_v2",
    "cuMemcpyDtoD_v2",
    "cuMemcpyDtoHAsync_v2",
    "cuMemcpyDtoH_v2",
    "cuMemcpyHtoDAsync_v2",
    "cuMemcpyHtoD_v2",
    "cuMemcpyPeerAsync",
    "cuMemsetD8Async",
    "cuMemsetD8_v2",
    "cuModuleGetFunction",
    "cuModuleGetGlobal_v2",
    "cuModuleLoad",
    "cuModuleLoadData",
    "cuModuleUnload",
    "cuOccupancyAvailableDynamicSMemPerBlock",
    "cuOccupancyMaxActiveBlocksPerMultiprocessor",
    "cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags",
    "cuOccupancyMaxActiveClusters",
    "cuOccupancyMaxPotentialBlockSize",
    "cuOccupancyMaxPotentialBlockSizeWithFlags",
    "cuOccupancyMaxPotentialClusterSize",
    "cuProfilerStart",
    "cuProfilerStop",
    "cuStreamAttachMemAsync",
    "cuStreamBeginCapture_v2",
    "cuStreamCreate",
    "cuStreamCreateWithPriority",
    "cuStreamDestroy_v2",
    "cuStreamEndCapture",
    "cuStreamIsCapturing",
    "cuStreamSynchronize",
    "cuStreamWaitEvent",
];

/// Runs the test `name` in a child process that finds the built library as `libcuda.so`.
fn run_in_child(name: &str) {
    let exe = std::env::current_exe().expect("the test executable");
    // cargo builds the library for the tests beside them, in target/<profile>/deps
    let library = exe.with_file_name("libptx_emulator.so");
    assert!(library.exists(), "{} is not built", library.display());
    let dir: PathBuf = std::env::temp_dir().join(format!("ptx-emulator-driver-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("libcuda.so");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&library, &link).unwrap();
    let output = Command::new(&exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("LD_LIBRARY_PATH", &dir)
        .output()
        .expect("running the child");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "the child failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("1 passed"),
        "the child ran no test"
    );
}

#[test]
fn the_library_exports_what_cudarc_looks_up() {
    if std::env::var_os(CHILD).is_none() {
        return run_in_child("the_library_exports_what_cudarc_looks_up");
    }
    // SAFETY: cudarc loads the library (the emulator's, by LD_LIBRARY_PATH) once.
    let library = unsafe { cudarc::driver::sys::culib() };
    let missing: Vec<_> = CUDARC_SYMBOLS
        .iter()
        // SAFETY: only looks the symbol up; it is not called.
        .filter(|name| unsafe { library.get::<unsafe extern "C" fn()>(name.as_bytes()) }.is_err())
        .collect();
    assert!(missing.is_empty(), "not exported: {missing:?}");
}

#[test]
fn cudarc_runs_on_the_emulator() {
    if std::env::var_os(CHILD).is_none() {
        return run_in_child("cudarc_runs_on_the_emulator");
    }
    use cudarc::driver::sys::{self, CUevent_flags, CUgraphInstantiate_flags, CUstreamCaptureMode};
    use cudarc::driver::CudaContext;

    let ctx = CudaContext::new(0).unwrap();
    assert!(ctx.name().unwrap().contains("emulator"));
    assert_eq!(ctx.compute_capability().unwrap(), (9, 0));
    assert!(ctx.has_async_alloc());
    let (free, total) = ctx.mem_get_info().unwrap();
    assert!(free <= total && total == 80 << 30);

    // cudarc's default: buffers tracked by events, on the default stream
    let stream = ctx.default_stream();
    let a = stream.clone_htod(&[1u32, 2, 3, 4]).unwrap();
    let mut b = stream.alloc_zeros::<u32>(4).unwrap();
    stream.memcpy_dtod(&a, &mut b).unwrap();
    assert_eq!(stream.clone_dtoh(&b).unwrap(), [1, 2, 3, 4]);
    drop((a, b));

    // as the project uses it: no event tracking, streams of its own, the pool keeping freed memory
    // SAFETY: no buffer made before this call is used afterwards.
    unsafe { ctx.disable_event_tracking() };
    let stream = ctx.new_stream().unwrap();
    let side = ctx.new_stream().unwrap();
    let mut pool = std::ptr::null_mut();
    let mut threshold = u64::MAX;
    // SAFETY: plain driver calls with valid out-parameters and a value of the attribute's type.
    unsafe {
        sys::cuDeviceGetDefaultMemPool(&mut pool, ctx.cu_device())
            .result()
            .unwrap();
        let attr = sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD;
        sys::cuMemPoolSetAttribute(pool, attr, (&mut threshold as *mut u64).cast())
            .result()
            .unwrap();
    }

    // SAFETY: page-locked memory of plain values, written before it is read.
    let mut pinned = unsafe { ctx.alloc_pinned::<u32>(4) }.unwrap();
    pinned.as_mut_slice().unwrap().copy_from_slice(&[5, 6, 7, 8]);
    let mut a = stream.alloc_zeros::<u32>(4).unwrap();
    stream.memcpy_htod(&pinned, &mut a).unwrap();
    let table = side.clone_htod(&[9u32; 4]).unwrap();
    side.synchronize().unwrap();

    let events = (
        ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT)).unwrap(),
        ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT)).unwrap(),
    );
    events.0.record(&stream).unwrap();
    stream
        .begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED)
        .unwrap();
    let mut b = stream.alloc_zeros::<u32>(4).unwrap();
    stream.memcpy_dtod(&a, &mut b).unwrap();
    let mut c = stream.alloc_zeros::<u32>(4).unwrap();
    stream.memcpy_dtod(&table, &mut c).unwrap();
    drop(c);
    let flags = CUgraphInstantiate_flags::CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH;
    let graph = stream.end_capture(flags).unwrap().expect("a graph");
    for _ in 0..3 {
        graph.launch().unwrap();
        assert_eq!(stream.clone_dtoh(&b).unwrap(), [5, 6, 7, 8]);
    }
    events.1.record(&stream).unwrap();
    assert!(events.0.elapsed_ms(&events.1).unwrap() >= 0.0);
    stream.synchronize().unwrap();
    drop(b);
    drop(graph);
    cudarc::driver::profiler_start().unwrap();
    cudarc::driver::profiler_stop().unwrap();
    ctx.synchronize().unwrap();
}
