//! Stream capture into graphs and their replay: copies, sets, host functions, events, and memory a
//! graph allocates (its fixed address, frees inside and outside the graph, auto-free on relaunch).

mod driver_common;

use std::ffi::{c_int, c_void};
use std::ptr::null_mut;

use cudarc::driver::sys::{
    CUdeviceptr, CUevent_flags, CUevent_record_flags, CUevent_wait_flags, CUgraph, CUgraphExec,
    CUgraphInstantiate_flags as Flags, CUresult, CUstream, CUstreamCaptureMode as Mode,
    CUstreamCaptureStatus as Status, CU_MEMHOSTALLOC_PORTABLE,
};
use driver_common::{alloc, ok, read, stream, write, Own, Primary};
use ptx_emulator::driver::*;

const INVALID: CUresult = CUresult::CUDA_ERROR_INVALID_VALUE;
const AUTO_FREE: u64 = Flags::CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH.0 as u64;

fn begin(s: CUstream, mode: Mode) {
    // SAFETY: a stream of the test's.
    ok(unsafe { cuStreamBeginCapture_v2(s, mode as u32) });
}

fn end(s: CUstream) -> CUgraph {
    let mut graph = null_mut();
    // SAFETY: a valid out-parameter.
    ok(unsafe { cuStreamEndCapture(s, &mut graph) });
    assert!(!graph.is_null());
    graph
}

fn instantiate(graph: CUgraph, flags: u64) -> CUgraphExec {
    let mut exec = null_mut();
    // SAFETY: a valid out-parameter.
    ok(unsafe { cuGraphInstantiateWithFlags(&mut exec, graph, flags) });
    exec
}

fn status(s: CUstream) -> Status {
    let mut status = Status::CU_STREAM_CAPTURE_STATUS_INVALIDATED;
    // SAFETY: a valid out-parameter.
    ok(unsafe { cuStreamIsCapturing(s, &mut status) });
    status
}

/// `bytes` of page-locked host memory (leaked: the tests are short).
fn page_locked(bytes: usize) -> &'static mut [u8] {
    let mut p: *mut c_void = null_mut();
    // SAFETY: the driver returns `bytes` of zeroed host memory that is never freed.
    unsafe {
        ok(cuMemHostAlloc(&mut p, bytes, CU_MEMHOSTALLOC_PORTABLE));
        std::slice::from_raw_parts_mut(p.cast(), bytes)
    }
}

fn destroy(exec: CUgraphExec, graph: CUgraph) {
    // SAFETY: handles of the test's.
    unsafe {
        ok(cuGraphExecDestroy(exec));
        ok(cuGraphDestroy(graph));
    }
}

#[test]
fn a_capture_records_copies_and_sets_and_a_launch_replays_them() {
    let _ctx = Primary::open();
    let s = stream();
    let a = alloc(16);
    let host = page_locked(4);
    host.copy_from_slice(&[1, 2, 3, 4]);
    begin(s, Mode::CU_STREAM_CAPTURE_MODE_GLOBAL);
    assert_eq!(status(s), Status::CU_STREAM_CAPTURE_STATUS_ACTIVE);
    // SAFETY: the page-locked buffer holds 4 bytes; the allocation 16.
    unsafe {
        ok(cuMemsetD32Async(a, 0x05050505, 4, s));
        ok(cuMemcpyHtoDAsync_v2(a + 4, host.as_ptr().cast(), 4, s));
    }
    assert_eq!(read(a, 16), [0; 16], "recorded, not run");
    let graph = end(s);
    assert_eq!(status(s), Status::CU_STREAM_CAPTURE_STATUS_NONE);
    let exec = instantiate(graph, 0);
    // SAFETY: handles of the test's.
    ok(unsafe { cuGraphUpload(exec, s) });
    ok(unsafe { cuGraphLaunch(exec, s) });
    assert_eq!(read(a, 16), [5, 5, 5, 5, 1, 2, 3, 4, 5, 5, 5, 5, 5, 5, 5, 5]);
    host.copy_from_slice(&[9, 8, 7, 6]);
    // SAFETY: handles of the test's.
    ok(unsafe { cuGraphLaunch(exec, s) });
    assert_eq!(
        read(a + 4, 4),
        [9, 8, 7, 6],
        "a copy reads the host memory when replayed"
    );
    destroy(exec, graph);
    // SAFETY: handles of the test's.
    unsafe {
        assert_eq!(cuGraphLaunch(exec, s), CUresult::CUDA_ERROR_INVALID_HANDLE);
        assert_eq!(cuGraphDestroy(graph), CUresult::CUDA_ERROR_INVALID_HANDLE);
    }
}

#[test]
fn copying_pageable_memory_invalidates_a_capture() {
    let _ctx = Primary::open();
    let s = stream();
    let a = alloc(8);
    let pageable = [1u8; 8];
    begin(s, Mode::CU_STREAM_CAPTURE_MODE_RELAXED);
    // SAFETY: the buffer holds 8 bytes.
    unsafe {
        let result = cuMemcpyHtoDAsync_v2(a, pageable.as_ptr().cast(), 8, s);
        assert_eq!(result, CUresult::CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
        assert_eq!(status(s), Status::CU_STREAM_CAPTURE_STATUS_INVALIDATED);
        assert_eq!(
            cuMemsetD8Async(a, 0, 8, s),
            CUresult::CUDA_ERROR_STREAM_CAPTURE_INVALIDATED
        );
        let mut graph = 1 as CUgraph;
        assert_eq!(
            cuStreamEndCapture(s, &mut graph),
            CUresult::CUDA_ERROR_STREAM_CAPTURE_INVALIDATED
        );
        assert!(graph.is_null());
        ok(cuMemcpyHtoDAsync_v2(a, pageable.as_ptr().cast(), 8, s));
    }
    assert_eq!(read(a, 8), [1; 8], "the stream runs again once the capture ended");
}

#[test]
fn what_a_capture_refuses() {
    let _ctx = Primary::open();
    let s = stream();
    // SAFETY: handles and out-parameters of the test's.
    unsafe {
        let default = cuStreamBeginCapture_v2(null_mut(), 0);
        assert_eq!(default, CUresult::CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
        let mut graph = null_mut();
        assert_eq!(cuStreamEndCapture(s, &mut graph), CUresult::CUDA_ERROR_ILLEGAL_STATE);
        assert_eq!(cuStreamBeginCapture_v2(s, 3), INVALID);

        begin(s, Mode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
        assert_eq!(cuStreamBeginCapture_v2(s, 0), CUresult::CUDA_ERROR_ILLEGAL_STATE);
        let a = alloc(4);
        assert_eq!(cuMemFreeAsync(a, s), INVALID, "a capture frees only graph memory");
        let (mut status, mut id) = (Status::CU_STREAM_CAPTURE_STATUS_NONE, 0);
        let mut count = 9;
        let info = cuStreamGetCaptureInfo_v3(s, &mut status, &mut id, null_mut(), null_mut(), null_mut(), &mut count);
        ok(info);
        assert_eq!((status, count), (Status::CU_STREAM_CAPTURE_STATUS_ACTIVE, 0));
        assert_ne!(id, 0);
        let info = cuStreamGetCaptureInfo_v3(
            s,
            &mut status,
            null_mut(),
            &mut graph,
            null_mut(),
            null_mut(),
            null_mut(),
        );
        assert_eq!(info, CUresult::CUDA_ERROR_NOT_SUPPORTED);
        let s_addr = s as usize;
        let other = std::thread::spawn(move || {
            let _ctx = Primary::open();
            let mut graph = null_mut();
            cuStreamEndCapture(s_addr as CUstream, &mut graph)
        });
        assert_eq!(other.join().unwrap(), CUresult::CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD);
        assert_eq!(cuStreamSynchronize(s), CUresult::CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
        assert_eq!(
            cuStreamEndCapture(s, &mut graph),
            CUresult::CUDA_ERROR_STREAM_CAPTURE_INVALIDATED
        );
        ok(cuStreamSynchronize(s));
    }
}

#[test]
fn graph_memory_keeps_its_address_and_is_freed_on_relaunch() {
    let _ctx = Primary::open();
    let s = stream();
    begin(s, Mode::CU_STREAM_CAPTURE_MODE_RELAXED);
    let mut p: CUdeviceptr = 0;
    // SAFETY: valid out-parameters; p is the capture's allocation.
    unsafe {
        ok(cuMemAllocAsync(&mut p, 64, s));
        ok(cuMemsetD8Async(p, 9, 64, s));
    }
    let graph = end(s);
    let mut byte = [0u8; 1];
    // SAFETY: a host buffer of 1 byte; p is what is being tested.
    let read_p = |byte: &mut [u8; 1]| unsafe { cuMemcpyDtoH_v2(byte.as_mut_ptr().cast(), p, 1) };
    assert_eq!(read_p(&mut byte), INVALID, "not allocated before a launch");

    let exec = instantiate(graph, AUTO_FREE);
    // SAFETY: handles of the test's.
    ok(unsafe { cuGraphLaunch(exec, s) });
    assert_eq!(read(p, 64), [9; 64]);
    write(p, &[1; 64]);
    // SAFETY: handles of the test's.
    ok(unsafe { cuGraphLaunch(exec, s) });
    assert_eq!(read(p, 64), [9; 64], "allocated again, at the same address");

    // SAFETY: p is allocated by the graph's last launch.
    unsafe {
        ok(cuMemFree_v2(p));
        assert_eq!(read_p(&mut byte), INVALID, "freed");
        assert_eq!(cuMemFree_v2(p), INVALID, "freed twice");
        ok(cuGraphLaunch(exec, s));
    }
    assert_eq!(read(p, 1), [9]);
    destroy(exec, graph);
    assert_eq!(read(p, 1), [9], "memory still allocated outlives its graph");
    // SAFETY: p is now an ordinary allocation.
    ok(unsafe { cuMemFree_v2(p) });
    assert_eq!(read_p(&mut byte), INVALID);
}

#[test]
fn relaunching_with_memory_still_allocated_needs_auto_free() {
    let _ctx = Primary::open();
    let s = stream();
    begin(s, Mode::CU_STREAM_CAPTURE_MODE_GLOBAL);
    let mut p: CUdeviceptr = 0;
    // SAFETY: a valid out-parameter.
    ok(unsafe { cuMemAllocAsync(&mut p, 32, s) });
    let graph = end(s);
    let exec = instantiate(graph, 0);
    // SAFETY: handles of the test's.
    unsafe {
        let mut second = null_mut();
        assert_eq!(
            cuGraphInstantiateWithFlags(&mut second, graph, 0),
            INVALID,
            "one instantiation at a time"
        );
        ok(cuGraphLaunch(exec, s));
        assert_eq!(cuGraphLaunch(exec, s), INVALID, "its memory is still allocated");
        ok(cuMemFreeAsync(p, s));
        ok(cuGraphLaunch(exec, s));
        ok(cuMemFreeAsync(p, s));
        ok(cuGraphExecDestroy(exec));
        let again = instantiate(graph, AUTO_FREE);
        ok(cuGraphLaunch(again, s));
        ok(cuGraphLaunch(again, s));
        destroy(again, graph);
        ok(cuMemFree_v2(p));
    }
}

#[test]
fn memory_allocated_and_freed_in_a_graph() {
    let _ctx = Primary::open();
    let s = stream();
    let out = alloc(16);
    begin(s, Mode::CU_STREAM_CAPTURE_MODE_GLOBAL);
    let mut p: CUdeviceptr = 0;
    // SAFETY: valid out-parameters and the capture's allocation.
    unsafe {
        ok(cuMemAllocAsync(&mut p, 16, s));
        ok(cuMemsetD16Async(p, 0x0102, 8, s));
        ok(cuMemcpyDtoDAsync_v2(out, p, 16, s));
        ok(cuMemFreeAsync(p, s));
    }
    let graph = end(s);
    let exec = instantiate(graph, 0);
    for _ in 0..3 {
        // SAFETY: handles of the test's.
        ok(unsafe { cuGraphLaunch(exec, s) });
        assert_eq!(read(out, 4), [2, 1, 2, 1]);
    }
    // SAFETY: p is the graph's, freed by the graph.
    assert_eq!(unsafe { cuMemFree_v2(p) }, INVALID);
    destroy(exec, graph);
}

#[test]
fn instantiation_flags() {
    let _ctx = Primary::open();
    let s = stream();
    begin(s, Mode::CU_STREAM_CAPTURE_MODE_RELAXED);
    let graph = end(s);
    let device_launch = Flags::CUDA_GRAPH_INSTANTIATE_FLAG_DEVICE_LAUNCH.0 as u64;
    let upload = Flags::CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD.0 as u64;
    let priority = Flags::CUDA_GRAPH_INSTANTIATE_FLAG_USE_NODE_PRIORITY.0 as u64;
    let mut exec = null_mut();
    // SAFETY: valid out-parameters and handles of the test's.
    unsafe {
        for refused in [AUTO_FREE | device_launch, upload, 1 << 40] {
            assert_eq!(
                cuGraphInstantiateWithFlags(&mut exec, graph, refused),
                INVALID,
                "{refused}"
            );
        }
        for flags in [0, AUTO_FREE | priority, device_launch] {
            let exec = instantiate(graph, flags);
            ok(cuGraphLaunch(exec, s));
            ok(cuGraphExecDestroy(exec));
        }
        ok(cuGraphDestroy(graph));
    }
}

unsafe extern "C" fn add_one(data: *mut c_void) {
    // SAFETY: the test passes a pointer to a live c_int.
    unsafe { *data.cast::<c_int>() += 1 };
}

#[test]
fn host_functions_and_external_event_records_replay() {
    let _ctx = Primary::open();
    let s = stream();
    let mut count: c_int = 0;
    let (mut start, mut stop) = (null_mut(), null_mut());
    let external = CUevent_record_flags::CU_EVENT_RECORD_EXTERNAL as u32;
    // SAFETY: add_one gets a pointer to count, which outlives the graph; valid out-parameters.
    unsafe {
        ok(cuEventCreate(&mut start, CUevent_flags::CU_EVENT_DEFAULT as u32));
        ok(cuEventCreate(&mut stop, CUevent_flags::CU_EVENT_DEFAULT as u32));
        begin(s, Mode::CU_STREAM_CAPTURE_MODE_GLOBAL);
        ok(cuEventRecordWithFlags(start, s, external));
        ok(cuLaunchHostFunc(s, Some(add_one), (&mut count as *mut c_int).cast()));
        ok(cuEventRecordWithFlags(stop, s, external));
        let graph = end(s);
        assert_eq!(count, 0);
        let mut ms = 0.0;
        assert_eq!(
            cuEventElapsedTime_v2(&mut ms, start, stop),
            CUresult::CUDA_ERROR_INVALID_HANDLE
        );
        let exec = instantiate(graph, 0);
        ok(cuGraphLaunch(exec, s));
        ok(cuGraphLaunch(exec, s));
        assert_eq!(count, 2);
        ok(cuEventElapsedTime_v2(&mut ms, start, stop));
        assert!(ms >= 0.0);
        destroy(exec, graph);
    }
}

#[test]
fn events_fork_and_join_captures() {
    let _ctx = Primary::open();
    let (s, t) = (stream(), stream());
    let a = alloc(8);
    let (mut fork, mut join, mut outside) = (null_mut(), null_mut(), null_mut());
    let flags = CUevent_flags::CU_EVENT_DISABLE_TIMING as u32;
    // SAFETY: valid out-parameters and handles of the test's.
    unsafe {
        ok(cuEventCreate(&mut fork, flags));
        ok(cuEventCreate(&mut join, flags));
        ok(cuEventCreate(&mut outside, flags));
        ok(cuEventRecord(outside, s));
        begin(s, Mode::CU_STREAM_CAPTURE_MODE_GLOBAL);
        ok(cuStreamWaitEvent(
            s,
            outside,
            CUevent_wait_flags::CU_EVENT_WAIT_EXTERNAL as u32,
        ));
        ok(cuEventRecord(fork, s));
        assert_eq!(cuEventQuery(fork), CUresult::CUDA_ERROR_CAPTURED_EVENT);
        assert_eq!(status(s), Status::CU_STREAM_CAPTURE_STATUS_INVALIDATED);
        let mut graph = null_mut();
        assert_eq!(
            cuStreamEndCapture(s, &mut graph),
            CUresult::CUDA_ERROR_STREAM_CAPTURE_INVALIDATED
        );

        begin(s, Mode::CU_STREAM_CAPTURE_MODE_GLOBAL);
        assert_eq!(
            cuStreamWaitEvent(s, outside, 0),
            CUresult::CUDA_ERROR_STREAM_CAPTURE_ISOLATION
        );
        assert_eq!(
            cuStreamEndCapture(s, &mut graph),
            CUresult::CUDA_ERROR_STREAM_CAPTURE_INVALIDATED
        );

        begin(s, Mode::CU_STREAM_CAPTURE_MODE_GLOBAL);
        ok(cuMemsetD8Async(a, 1, 4, s));
        ok(cuEventRecord(fork, s));
        ok(cuStreamWaitEvent(t, fork, 0));
        assert_eq!(
            status(t),
            Status::CU_STREAM_CAPTURE_STATUS_ACTIVE,
            "t joined the capture"
        );
        ok(cuMemsetD8Async(a + 4, 2, 4, t));
        assert_eq!(
            cuStreamEndCapture(t, &mut graph),
            CUresult::CUDA_ERROR_STREAM_CAPTURE_UNMATCHED
        );
        ok(cuEventRecord(join, t));
        ok(cuStreamWaitEvent(s, join, 0));
        assert_eq!(
            cuStreamEndCapture(s, &mut graph),
            CUresult::CUDA_ERROR_STREAM_CAPTURE_INVALIDATED
        );
        assert_eq!(status(t), Status::CU_STREAM_CAPTURE_STATUS_NONE);

        begin(s, Mode::CU_STREAM_CAPTURE_MODE_GLOBAL);
        ok(cuMemsetD8Async(a, 1, 4, s));
        ok(cuEventRecord(fork, s));
        ok(cuStreamWaitEvent(t, fork, 0));
        ok(cuMemsetD8Async(a + 4, 2, 4, t));
        ok(cuEventRecord(join, t));
        ok(cuStreamWaitEvent(s, join, 0));
        let graph = end(s);
        assert_eq!(status(t), Status::CU_STREAM_CAPTURE_STATUS_NONE);
        assert_eq!(read(a, 8), [0; 8]);
        let exec = instantiate(graph, 0);
        ok(cuGraphLaunch(exec, s));
        assert_eq!(read(a, 8), [1, 1, 1, 1, 2, 2, 2, 2]);
        destroy(exec, graph);
        ok(cuEventQuery(fork));
    }
}

#[test]
fn a_failed_replay_leaves_a_sticky_error() {
    let _own = Own::create();
    let s = stream();
    let (a, b) = (alloc(8), alloc(8));
    begin(s, Mode::CU_STREAM_CAPTURE_MODE_GLOBAL);
    // SAFETY: live allocations of 8 bytes.
    ok(unsafe { cuMemcpyDtoDAsync_v2(b, a, 8, s) });
    let graph = end(s);
    let exec = instantiate(graph, 0);
    // SAFETY: a is freed before the launch that copies from it, which is what is being tested.
    unsafe {
        ok(cuMemFree_v2(a));
        ok(cuGraphLaunch(exec, s));
        let illegal = CUresult::CUDA_ERROR_ILLEGAL_ADDRESS;
        assert_eq!(cuCtxSynchronize(), illegal);
        assert_eq!(cuStreamSynchronize(s), illegal);
        let mut p = 0;
        assert_eq!(cuMemAlloc_v2(&mut p, 8), illegal);
        assert_eq!(cuMemFree_v2(b), illegal, "a free still frees, and reports the error");
        assert_eq!(cuGraphExecDestroy(exec), illegal);
        assert_eq!(cuGraphDestroy(graph), illegal);
    }
}
