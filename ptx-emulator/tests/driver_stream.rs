//! Streams, events and host functions, called as a C program calls them.

mod driver_common;

use std::ffi::{c_int, c_uint, c_void};
use std::ptr::null_mut;

use cudarc::driver::sys::{CUevent, CUevent_flags, CUresult, CUstream};
use driver_common::{ok, stream, Own, Primary};
use ptx_emulator::driver::*;

fn event(flags: CUevent_flags) -> CUevent {
    let mut event = null_mut();
    // SAFETY: a valid out-parameter.
    ok(unsafe { cuEventCreate(&mut event, flags as c_uint) });
    event
}

#[test]
fn streams_report_what_they_were_made_with() {
    let primary = Primary::open();
    // SAFETY: valid out-parameters and the streams made here.
    unsafe {
        let mut s = null_mut();
        ok(cuStreamCreateWithPriority(&mut s, 1, -100));
        let (mut flags, mut priority) = (9, 9);
        ok(cuStreamGetFlags(s, &mut flags));
        ok(cuStreamGetPriority(s, &mut priority));
        assert_eq!(
            (flags, priority),
            (1, -5),
            "priorities are clamped to the device's range"
        );
        let mut ctx = null_mut();
        ok(cuStreamGetCtx(s, &mut ctx));
        assert_eq!(ctx, primary.ctx);
        let (mut dev, mut id, mut other_id) = (7, 0, 0);
        ok(cuStreamGetDevice(s, &mut dev));
        assert_eq!(dev, 0);
        let t = stream();
        ok(cuStreamGetId(s, &mut id));
        ok(cuStreamGetId(t, &mut other_id));
        assert_ne!(id, other_id);
        ok(cuStreamQuery(s));
        ok(cuStreamSynchronize(s));
        ok(cuStreamSynchronize(null_mut()));
        assert_eq!(cuStreamCreate(&mut s, 4), CUresult::CUDA_ERROR_INVALID_VALUE);

        ok(cuStreamDestroy_v2(t));
        assert_eq!(cuStreamDestroy_v2(t), CUresult::CUDA_ERROR_INVALID_HANDLE);
        assert_eq!(cuStreamQuery(t), CUresult::CUDA_ERROR_INVALID_HANDLE);
        assert_eq!(cuStreamDestroy_v2(null_mut()), CUresult::CUDA_ERROR_INVALID_HANDLE);
        let e = event(CUevent_flags::CU_EVENT_DEFAULT);
        assert_eq!(
            cuStreamQuery(e.cast()),
            CUresult::CUDA_ERROR_INVALID_HANDLE,
            "an event is no stream"
        );
        ok(cuEventDestroy_v2(e));
        ok(cuStreamDestroy_v2(s));
    }
}

#[test]
fn events_time_what_runs_between_them() {
    let _ctx = Primary::open();
    let s = stream();
    let (start, end) = (
        event(CUevent_flags::CU_EVENT_DEFAULT),
        event(CUevent_flags::CU_EVENT_BLOCKING_SYNC),
    );
    let mut ms = -1.0f32;
    // SAFETY: valid out-parameters and the events and streams made here.
    unsafe {
        assert_eq!(
            cuEventElapsedTime_v2(&mut ms, start, end),
            CUresult::CUDA_ERROR_INVALID_HANDLE,
            "unrecorded"
        );
        ok(cuEventQuery(start));
        ok(cuEventRecord(start, s));
        let a = driver_common::alloc(1 << 20);
        ok(cuMemsetD32Async(a, 7, 1 << 18, s));
        ok(cuEventRecordWithFlags(end, s, 0));
        ok(cuEventSynchronize(end));
        ok(cuEventQuery(end));
        ok(cuEventElapsedTime_v2(&mut ms, start, end));
        assert!(ms >= 0.0, "{ms}");
        ok(cuEventElapsedTime_v2(&mut ms, end, start));
        assert!(ms <= 0.0, "{ms}");
        ok(cuStreamWaitEvent(null_mut(), end, 0));
        ok(cuStreamWaitEvent(s, end, 0));
        assert_eq!(cuStreamWaitEvent(s, end, 8), CUresult::CUDA_ERROR_INVALID_VALUE);

        let untimed = event(CUevent_flags::CU_EVENT_DISABLE_TIMING);
        ok(cuEventRecord(untimed, s));
        assert_eq!(
            cuEventElapsedTime_v2(&mut ms, start, untimed),
            CUresult::CUDA_ERROR_INVALID_HANDLE
        );
        assert_eq!(cuEventCreate(&mut null_mut(), 16), CUresult::CUDA_ERROR_INVALID_VALUE);
        for e in [start, end, untimed] {
            ok(cuEventDestroy_v2(e));
        }
        assert_eq!(cuEventQuery(start), CUresult::CUDA_ERROR_INVALID_HANDLE);
        ok(cuMemFree_v2(a));
    }
}

#[test]
fn an_event_of_another_context_is_refused() {
    let _primary = Primary::open();
    let s = stream();
    let _own = Own::create();
    let e = event(CUevent_flags::CU_EVENT_DEFAULT);
    // SAFETY: the event and stream made here.
    assert_eq!(unsafe { cuEventRecord(e, s) }, CUresult::CUDA_ERROR_INVALID_HANDLE);
}

unsafe extern "C" fn add_one(data: *mut c_void) {
    // SAFETY: the tests pass a pointer to a live c_int.
    unsafe { *data.cast::<c_int>() += 1 };
}

#[test]
fn host_functions_run_when_enqueued() {
    let _ctx = Primary::open();
    let mut count: c_int = 0;
    // SAFETY: add_one gets a pointer to count, which outlives the calls.
    unsafe {
        ok(cuLaunchHostFunc(
            stream(),
            Some(add_one),
            (&mut count as *mut c_int).cast(),
        ));
        ok(cuLaunchHostFunc(
            null_mut(),
            Some(add_one),
            (&mut count as *mut c_int).cast(),
        ));
        assert_eq!(
            cuLaunchHostFunc(stream(), None, null_mut()),
            CUresult::CUDA_ERROR_INVALID_VALUE
        );
    }
    assert_eq!(count, 2);
}

#[test]
fn legacy_and_per_thread_handles_name_the_default_stream() {
    let _ctx = Primary::open();
    for handle in [null_mut(), 1 as CUstream, 2 as CUstream] {
        let mut flags = 9;
        // SAFETY: valid out-parameters.
        unsafe {
            ok(cuStreamGetFlags(handle, &mut flags));
            ok(cuStreamSynchronize(handle));
        }
        assert_eq!(flags, 0);
    }
}
