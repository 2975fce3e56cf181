//! Events. Work runs when it is enqueued, so an event is complete as soon as it is recorded, and
//! its time is the host's clock when it was recorded: `cuEventElapsedTime_v2` gives the host time
//! the emulation took between two records, not a GPU's time.

use std::ffi::c_uint;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cudarc::driver::sys::{CUevent, CUevent_flags, CUevent_record_flags, CUresult, CUstream};

use super::context::{current_checked, Context};
use super::stream::{stream, Capture, Op};
use super::{api, from_ptr, lock, put, to_ptr, CuResult, Handles};

/// What an event was last recorded as.
#[derive(Clone)]
pub(crate) enum Recorded {
    Never,
    /// At this time, outside any capture.
    At(Instant),
    /// In this capture, still going on: a point in the graph being built.
    InCapture(Arc<Capture>),
}

pub(crate) struct Event {
    pub ctx: Arc<Context>,
    flags: c_uint,
    recorded: Mutex<Recorded>,
}

impl Event {
    /// What the event was last recorded as; a record in a capture that has ended counts as none.
    pub(crate) fn recorded(&self) -> Recorded {
        match &*lock(&self.recorded) {
            Recorded::InCapture(capture) if !capture.is_active() => Recorded::Never,
            recorded => recorded.clone(),
        }
    }

    pub(crate) fn record_now(&self) {
        *lock(&self.recorded) = Recorded::At(Instant::now());
    }

    fn timed(&self) -> bool {
        self.flags & CUevent_flags::CU_EVENT_DISABLE_TIMING as c_uint == 0
    }
}

static EVENTS: Handles<Event> = Handles::new(3);

/// The event behind a handle, if calls may use its context.
pub(crate) fn event(handle: CUevent) -> CuResult<Arc<Event>> {
    let event = EVENTS.get(from_ptr(handle))?;
    event.ctx.check()?;
    Ok(event)
}

/// Fails a wait for, or query of, an event recorded in a capture going on: that invalidates it.
fn refuse_if_captured(event: &Event) -> CuResult {
    match event.recorded() {
        Recorded::InCapture(capture) => {
            capture.invalidate();
            Err(CUresult::CUDA_ERROR_CAPTURED_EVENT)
        }
        _ => Ok(()),
    }
}

#[no_mangle]
pub unsafe extern "C" fn cuEventCreate(phEvent: *mut CUevent, Flags: c_uint) -> CUresult {
    api("cuEventCreate", || {
        let ctx = current_checked()?;
        let known = CUevent_flags::CU_EVENT_BLOCKING_SYNC as c_uint
            | CUevent_flags::CU_EVENT_DISABLE_TIMING as c_uint
            | CUevent_flags::CU_EVENT_INTERPROCESS as c_uint;
        if Flags & !known != 0 || phEvent.is_null() {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        let handle = EVENTS.insert(Event {
            ctx,
            flags: Flags,
            recorded: Mutex::new(Recorded::Never),
        });
        // SAFETY: phEvent is the caller's out-parameter (checked not null above).
        unsafe { put(phEvent, to_ptr(handle)) }
    })
}

fn record(hEvent: CUevent, hStream: CUstream, flags: c_uint) -> CuResult {
    let event = event(hEvent)?;
    let stream = stream(hStream)?;
    if event.ctx.handle != stream.ctx.handle {
        return Err(CUresult::CUDA_ERROR_INVALID_HANDLE);
    }
    let external = CUevent_record_flags::CU_EVENT_RECORD_EXTERNAL as c_uint;
    if flags & !external != 0 {
        return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
    }
    match stream.capture() {
        // an external record is a node of the graph: the event is recorded when a launch reaches it
        Some(capture) if flags & external != 0 => capture.record(Op::RecordEvent(event)),
        Some(capture) => {
            *lock(&event.recorded) = Recorded::InCapture(capture);
            Ok(())
        }
        None => {
            event.record_now();
            Ok(())
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn cuEventRecord(hEvent: CUevent, hStream: CUstream) -> CUresult {
    api("cuEventRecord", || record(hEvent, hStream, 0))
}

#[no_mangle]
pub unsafe extern "C" fn cuEventRecordWithFlags(hEvent: CUevent, hStream: CUstream, flags: c_uint) -> CUresult {
    api("cuEventRecordWithFlags", || record(hEvent, hStream, flags))
}

/// Complete once recorded (work runs when enqueued); reports a kernel fault.
#[no_mangle]
pub unsafe extern "C" fn cuEventQuery(hEvent: CUevent) -> CUresult {
    api("cuEventQuery", || refuse_if_captured(&*event(hEvent)?))
}

#[no_mangle]
pub unsafe extern "C" fn cuEventSynchronize(hEvent: CUevent) -> CUresult {
    api("cuEventSynchronize", || refuse_if_captured(&*event(hEvent)?))
}

/// Milliseconds of host time between the records of `hStart` and `hEnd` (negative if `hEnd` was
/// recorded first). Both must have been recorded, outside a capture, and have timing enabled.
#[no_mangle]
pub unsafe extern "C" fn cuEventElapsedTime_v2(pMilliseconds: *mut f32, hStart: CUevent, hEnd: CUevent) -> CUresult {
    api("cuEventElapsedTime_v2", || {
        let (start, end) = (event(hStart)?, event(hEnd)?);
        if !start.timed() || !end.timed() {
            return Err(CUresult::CUDA_ERROR_INVALID_HANDLE);
        }
        let (Recorded::At(t0), Recorded::At(t1)) = (start.recorded(), end.recorded()) else {
            return Err(CUresult::CUDA_ERROR_INVALID_HANDLE);
        };
        let ms = if t1 >= t0 {
            (t1 - t0).as_secs_f64() * 1e3
        } else {
            -(t0 - t1).as_secs_f64() * 1e3
        };
        // SAFETY: pMilliseconds is the caller's out-parameter.
        unsafe { put(pMilliseconds, ms as f32) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuEventDestroy_v2(hEvent: CUevent) -> CUresult {
    api("cuEventDestroy_v2", || EVENTS.remove(from_ptr(hEvent))?.ctx.sticky())
}
