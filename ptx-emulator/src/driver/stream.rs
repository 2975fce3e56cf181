//! Streams, the operations they run, and stream capture.
//!
//! An operation enqueued on a stream runs before the call returns, unless the stream captures:
//! then it is recorded, in order, into the capture, which `cuStreamEndCapture` turns into a graph.

use std::cell::Cell;
use std::ffi::{c_int, c_uint, c_ulonglong, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::ThreadId;

use cudarc::driver::sys::{
    cuuint64_t, CUcontext, CUdevice, CUevent, CUevent_wait_flags, CUgraph, CUgraphEdgeData, CUgraphNode, CUresult,
    CUstream, CUstreamCaptureMode, CUstreamCaptureStatus, CUstream_flags,
};

use super::context::{current, current_checked, Context, GREATEST_PRIORITY, LEAST_PRIORITY};
use super::event::{event, Event, Recorded};
use super::graph::{self, GraphAllocation};
use super::launch::{run_kernel, KernelLaunch};
use super::memory::{run_copy, run_set, Place};
use super::{api, from_ptr, lock, put, put_optional, to_ptr, warn, CuResult, Handles};

/// One unit of stream work, run at once or recorded by a capture (a graph's node).
pub(crate) enum Op {
    Kernel(KernelLaunch),
    Copy {
        dst: Place,
        src: Place,
        len: usize,
    },
    /// `count` elements of the low `width` bytes of `value`.
    Set {
        dst: u64,
        value: u32,
        width: usize,
        count: usize,
    },
    Alloc(Arc<GraphAllocation>),
    Free(Arc<GraphAllocation>),
    Host {
        func: unsafe extern "C" fn(*mut c_void),
        data: usize,
    },
    RecordEvent(Arc<Event>),
}

impl Op {
    /// Runs the operation for `ctx`; `caller` names the API call in messages. An error is an
    /// operation that could not be carried out (an address no longer allocated); a kernel fault is
    /// not an error here but the context's sticky error.
    pub(crate) fn run(&self, caller: &str, ctx: &Context) -> CuResult {
        match self {
            Op::Kernel(launch) => {
                run_kernel(ctx, launch);
                Ok(())
            }
            &Op::Copy { dst, src, len } => run_copy(caller, dst, src, len),
            &Op::Set {
                dst,
                value,
                width,
                count,
            } => run_set(caller, dst, value, width, count),
            Op::Alloc(allocation) => allocation.allocate(),
            Op::Free(allocation) => allocation.free(caller),
            &Op::Host { func, data } => {
                // SAFETY: the caller of cuLaunchHostFunc passed the function and its argument.
                unsafe { func(data as *mut c_void) };
                Ok(())
            }
            Op::RecordEvent(event) => {
                event.record_now();
                Ok(())
            }
        }
    }
}

/// One stream. The default stream (the null handle, `CU_STREAM_LEGACY`, `CU_STREAM_PER_THREAD`)
/// has handle 0 and is made afresh for the current context at each use; it never captures.
pub(crate) struct Stream {
    pub handle: u64,
    pub ctx: Arc<Context>,
    flags: c_uint,
    priority: c_int,
    capture: Mutex<Option<Arc<Capture>>>,
}

impl Stream {
    /// The capture the stream takes part in, if any.
    pub(crate) fn capture(&self) -> Option<Arc<Capture>> {
        lock(&self.capture).clone()
    }

    fn is_default(&self) -> bool {
        self.handle == 0
    }
}

static STREAMS: Handles<Stream> = Handles::new(2);

/// The handles of the current context's default stream.
const DEFAULT_STREAMS: [u64; 3] = [0, 1, 2];

/// The stream behind a handle, whatever the state of its context (for calls that release).
pub(crate) fn lookup(handle: CUstream) -> CuResult<Arc<Stream>> {
    let handle = from_ptr(handle);
    if DEFAULT_STREAMS.contains(&handle) {
        return Ok(Arc::new(Stream {
            handle: 0,
            ctx: current()?,
            flags: CUstream_flags::CU_STREAM_DEFAULT as c_uint,
            priority: LEAST_PRIORITY,
            capture: Mutex::new(None),
        }));
    }
    STREAMS.get(handle)
}

/// The stream behind a handle, if calls may use its context.
pub(crate) fn stream(handle: CUstream) -> CuResult<Arc<Stream>> {
    let stream = lookup(handle)?;
    stream.ctx.check()?;
    Ok(stream)
}

/// Runs `op` on `stream` now, or records it if the stream captures.
pub(crate) fn submit(caller: &str, stream: &Stream, op: Op) -> CuResult {
    match stream.capture() {
        Some(capture) => capture.record(op),
        None => op.run(caller, &stream.ctx),
    }
}

/// A capture in progress: the operations recorded so far, in the order they were enqueued.
pub(crate) struct Capture {
    id: u64,
    /// The stream that began the capture and must end it.
    origin: u64,
    mode: CUstreamCaptureMode,
    thread: ThreadId,
    state: Mutex<CaptureState>,
}

struct CaptureState {
    ops: Vec<Op>,
    invalidated: bool,
    ended: bool,
    /// Every stream taking part, the origin included.
    streams: Vec<Weak<Stream>>,
}

impl Capture {
    pub(crate) fn record(&self, op: Op) -> CuResult {
        let mut state = lock(&self.state);
        if state.invalidated {
            return Err(CUresult::CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
        }
        state.ops.push(op);
        Ok(())
    }

    /// Marks the capture failed: ending it gives no graph.
    pub(crate) fn invalidate(&self) {
        lock(&self.state).invalidated = true;
    }

    /// Whether the capture has not ended yet.
    pub(crate) fn is_active(&self) -> bool {
        !lock(&self.state).ended
    }

    fn status(&self) -> CUstreamCaptureStatus {
        if lock(&self.state).invalidated {
            CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_INVALIDATED
        } else {
            CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_ACTIVE
        }
    }

    /// Makes `stream` take part (it waited on an event recorded in the capture).
    fn join(self: &Arc<Self>, stream: &Arc<Stream>) {
        lock(&self.state).streams.push(Arc::downgrade(stream));
        *lock(&stream.capture) = Some(self.clone());
    }

    /// Ends the capture: its streams stop capturing; its operations, unless it was invalidated.
    fn finish(&self) -> Option<Vec<Op>> {
        let (ops, streams) = {
            let mut state = lock(&self.state);
            state.ended = true;
            let ops = std::mem::take(&mut state.ops);
            ((!state.invalidated).then_some(ops), std::mem::take(&mut state.streams))
        };
        for stream in streams.iter().filter_map(Weak::upgrade) {
            let mut capture = lock(&stream.capture);
            if capture.as_ref().is_some_and(|c| c.id == self.id) {
                *capture = None;
            }
        }
        ops
    }
}

/// Fails a call that must not be made on a capturing stream: the capture is invalidated.
fn refuse_if_capturing(stream: &Stream) -> CuResult {
    match stream.capture() {
        Some(capture) => {
            capture.invalidate();
            Err(CUresult::CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED)
        }
        None => Ok(()),
    }
}

/// A new stream of the current context.
fn create(flags: c_uint, priority: c_int) -> CuResult<u64> {
    let ctx = current_checked()?;
    if flags & !(CUstream_flags::CU_STREAM_NON_BLOCKING as c_uint) != 0 {
        return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
    }
    Ok(STREAMS.insert_with(|handle| Stream {
        handle,
        ctx,
        flags,
        priority: priority.clamp(GREATEST_PRIORITY, LEAST_PRIORITY),
        capture: Mutex::new(None),
    }))
}

#[no_mangle]
pub unsafe extern "C" fn cuStreamCreate(phStream: *mut CUstream, Flags: c_uint) -> CUresult {
    api("cuStreamCreate", || {
        if phStream.is_null() {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        let handle = create(Flags, LEAST_PRIORITY)?;
        // SAFETY: phStream is the caller's out-parameter (checked not null above).
        unsafe { put(phStream, to_ptr(handle)) }
    })
}

/// Priorities are clamped to the device's range, as the driver does; they change no order here.
#[no_mangle]
pub unsafe extern "C" fn cuStreamCreateWithPriority(
    phStream: *mut CUstream,
    flags: c_uint,
    priority: c_int,
) -> CUresult {
    api("cuStreamCreateWithPriority", || {
        if phStream.is_null() {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        let handle = create(flags, priority)?;
        // SAFETY: phStream is the caller's out-parameter (checked not null above).
        unsafe { put(phStream, to_ptr(handle)) }
    })
}

/// Destroys a stream; a capture it takes part in is invalidated.
#[no_mangle]
pub unsafe extern "C" fn cuStreamDestroy_v2(hStream: CUstream) -> CUresult {
    api("cuStreamDestroy_v2", || {
        if DEFAULT_STREAMS.contains(&from_ptr(hStream)) {
            return Err(CUresult::CUDA_ERROR_INVALID_HANDLE);
        }
        let stream = STREAMS.remove(from_ptr(hStream))?;
        if let Some(capture) = lock(&stream.capture).take() {
            capture.invalidate();
        }
        stream.ctx.sticky()
    })
}

/// The stream's work is done when it is enqueued: this only reports a kernel fault.
#[no_mangle]
pub unsafe extern "C" fn cuStreamSynchronize(hStream: CUstream) -> CUresult {
    api("cuStreamSynchronize", || refuse_if_capturing(&*stream(hStream)?))
}

/// Always complete (or a kernel fault's code).
#[no_mangle]
pub unsafe extern "C" fn cuStreamQuery(hStream: CUstream) -> CUresult {
    api("cuStreamQuery", || refuse_if_capturing(&*stream(hStream)?))
}

/// Work is done when enqueued, so a wait orders nothing; it matters to captures: waiting on an
/// event recorded in a capture makes the stream join it, and a capturing stream may not wait on
/// work outside its capture (unless the wait is `CU_EVENT_WAIT_EXTERNAL`).
#[no_mangle]
pub unsafe extern "C" fn cuStreamWaitEvent(hStream: CUstream, hEvent: CUevent, Flags: c_uint) -> CUresult {
    api("cuStreamWaitEvent", || {
        let stream = stream(hStream)?;
        let event = event(hEvent)?;
        let external = CUevent_wait_flags::CU_EVENT_WAIT_EXTERNAL as c_uint;
        if Flags & !external != 0 {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        match (stream.capture(), event.recorded()) {
            (Some(ours), Recorded::InCapture(theirs)) if ours.id == theirs.id => Ok(()),
            (Some(_), Recorded::InCapture(_)) => Err(CUresult::CUDA_ERROR_STREAM_CAPTURE_MERGE),
            (Some(ours), Recorded::At(_)) if Flags & external == 0 => {
                ours.invalidate();
                Err(CUresult::CUDA_ERROR_STREAM_CAPTURE_ISOLATION)
            }
            (None, Recorded::InCapture(theirs)) => {
                if stream.is_default() {
                    return Err(CUresult::CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
                }
                theirs.join(&stream);
                Ok(())
            }
            _ => Ok(()),
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuStreamGetFlags(hStream: CUstream, flags: *mut c_uint) -> CUresult {
    api("cuStreamGetFlags", || {
        let stream = stream(hStream)?;
        // SAFETY: flags is the caller's out-parameter.
        unsafe { put(flags, stream.flags) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuStreamGetPriority(hStream: CUstream, priority: *mut c_int) -> CUresult {
    api("cuStreamGetPriority", || {
        let stream = stream(hStream)?;
        // SAFETY: priority is the caller's out-parameter.
        unsafe { put(priority, stream.priority) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuStreamGetCtx(hStream: CUstream, pctx: *mut CUcontext) -> CUresult {
    api("cuStreamGetCtx", || {
        let stream = stream(hStream)?;
        // SAFETY: pctx is the caller's out-parameter.
        unsafe { put(pctx, to_ptr(stream.ctx.handle)) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuStreamGetDevice(hStream: CUstream, device: *mut CUdevice) -> CUresult {
    api("cuStreamGetDevice", || {
        stream(hStream)?;
        // SAFETY: device is the caller's out-parameter.
        unsafe { put(device, 0) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuStreamGetId(hStream: CUstream, streamId: *mut c_ulonglong) -> CUresult {
    api("cuStreamGetId", || {
        let stream = stream(hStream)?;
        // SAFETY: streamId is the caller's out-parameter.
        unsafe { put(streamId, stream.handle & 0xffff_ffff_ffff) }
    })
}

/// Capture ids, as `cuStreamGetCaptureInfo_v3` reports them.
static NEXT_CAPTURE: AtomicU64 = AtomicU64::new(1);

/// A `CUstreamCaptureMode` from its C value.
fn capture_mode(value: u32) -> CuResult<CUstreamCaptureMode> {
    use CUstreamCaptureMode::*;
    [
        CU_STREAM_CAPTURE_MODE_GLOBAL,
        CU_STREAM_CAPTURE_MODE_THREAD_LOCAL,
        CU_STREAM_CAPTURE_MODE_RELAXED,
    ]
    .into_iter()
    .find(|m| *m as u32 == value)
    .ok_or(CUresult::CUDA_ERROR_INVALID_VALUE)
}

/// Begins a capture on a stream of our own (the default stream cannot capture). The modes are
/// accepted and not told apart, except that a capture in a mode other than relaxed must end on
/// the thread that began it.
#[no_mangle]
pub unsafe extern "C" fn cuStreamBeginCapture_v2(hStream: CUstream, mode: u32) -> CUresult {
    api("cuStreamBeginCapture_v2", || {
        let stream = stream(hStream)?;
        let mode = capture_mode(mode)?;
        if stream.is_default() {
            return Err(CUresult::CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
        }
        let mut capture = lock(&stream.capture);
        if capture.is_some() {
            return Err(CUresult::CUDA_ERROR_ILLEGAL_STATE);
        }
        *capture = Some(Arc::new(Capture {
            id: NEXT_CAPTURE.fetch_add(1, Ordering::Relaxed),
            origin: stream.handle,
            mode,
            thread: std::thread::current().id(),
            state: Mutex::new(CaptureState {
                ops: Vec::new(),
                invalidated: false,
                ended: false,
                streams: vec![Arc::downgrade(&stream)],
            }),
        }));
        Ok(())
    })
}

/// Ends the capture begun on this stream and returns its graph (null and
/// `CUDA_ERROR_STREAM_CAPTURE_INVALIDATED` if it was invalidated).
#[no_mangle]
pub unsafe extern "C" fn cuStreamEndCapture(hStream: CUstream, phGraph: *mut CUgraph) -> CUresult {
    api("cuStreamEndCapture", || {
        let stream = stream(hStream)?;
        if phGraph.is_null() {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        let capture = stream.capture().ok_or(CUresult::CUDA_ERROR_ILLEGAL_STATE)?;
        if capture.origin != stream.handle {
            capture.invalidate();
            return Err(CUresult::CUDA_ERROR_STREAM_CAPTURE_UNMATCHED);
        }
        let relaxed = CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED;
        if capture.mode != relaxed && capture.thread != std::thread::current().id() {
            return Err(CUresult::CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD);
        }
        let graph = capture.finish().map(|ops| graph::create(stream.ctx.clone(), ops));
        // SAFETY: phGraph is the caller's out-parameter (checked not null above).
        unsafe { put(phGraph, graph.map_or(std::ptr::null_mut(), to_ptr)) }?;
        graph.map(|_| ()).ok_or(CUresult::CUDA_ERROR_STREAM_CAPTURE_INVALIDATED)
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuStreamIsCapturing(hStream: CUstream, captureStatus: *mut CUstreamCaptureStatus) -> CUresult {
    api("cuStreamIsCapturing", || {
        let stream = stream(hStream)?;
        let status = stream
            .capture()
            .map_or(CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_NONE, |c| c.status());
        // SAFETY: captureStatus is the caller's out-parameter.
        unsafe { put(captureStatus, status) }
    })
}

/// The capture status and id. The graph being built and its dependency frontier exist only once
/// the capture ends here, so asking for them during a capture is `CUDA_ERROR_NOT_SUPPORTED`.
#[no_mangle]
pub unsafe extern "C" fn cuStreamGetCaptureInfo_v3(
    hStream: CUstream,
    captureStatus_out: *mut CUstreamCaptureStatus,
    id_out: *mut cuuint64_t,
    graph_out: *mut CUgraph,
    dependencies_out: *mut *const CUgraphNode,
    edgeData_out: *mut *const CUgraphEdgeData,
    numDependencies_out: *mut usize,
) -> CUresult {
    api("cuStreamGetCaptureInfo_v3", || {
        let stream = stream(hStream)?;
        let capture = stream.capture();
        let wants_graph = !graph_out.is_null() || !dependencies_out.is_null() || !edgeData_out.is_null();
        if capture.is_some() && wants_graph {
            warn("cuStreamGetCaptureInfo_v3: the graph and dependencies of a capture in progress are not available");
            return Err(CUresult::CUDA_ERROR_NOT_SUPPORTED);
        }
        let status = capture
            .as_ref()
            .map_or(CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_NONE, |c| c.status());
        // SAFETY: captureStatus_out is the caller's out-parameter, the others optional ones.
        unsafe {
            put(captureStatus_out, status)?;
            if let Some(capture) = &capture {
                put_optional(id_out, capture.id)?;
            }
            put_optional(numDependencies_out, 0)
        }
    })
}

thread_local! {
    /// This thread's capture interaction mode (`cuThreadExchangeStreamCaptureMode`).
    static CAPTURE_MODE: Cell<CUstreamCaptureMode> =
        const { Cell::new(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_GLOBAL) };
}

/// Swaps the thread's capture mode; modes are not told apart, so it only keeps the value.
#[no_mangle]
pub unsafe extern "C" fn cuThreadExchangeStreamCaptureMode(mode: *mut CUstreamCaptureMode) -> CUresult {
    api("cuThreadExchangeStreamCaptureMode", || {
        if mode.is_null() {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        // SAFETY: mode points to the caller's mode (not null, checked above), read as its C value.
        let new = capture_mode(unsafe { mode.cast::<u32>().read() })?;
        // SAFETY: mode is the caller's in/out parameter.
        unsafe { put(mode, CAPTURE_MODE.replace(new)) }
    })
}
