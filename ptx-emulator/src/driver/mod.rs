//! The CUDA driver API as cudarc 0.19 calls it, exported under the driver's symbol names.
//!
//! # Execution model
//! One emulated device (an H100's attributes, see `device`). Every operation enqueued on a stream
//! (kernel launch, copy, set, stream-ordered allocation or free, host function) runs to completion
//! on the calling thread before the call returns: a legal schedule of the streams' semantics, so
//! synchronising, querying and waiting never block and never report work still pending. Kernels run
//! through [`crate::exec::launch`], which spreads a grid's blocks over the host's cores.
//!
//! # Capture model
//! While a stream captures (`cuStreamBeginCapture_v2`, any mode), what is enqueued on it is recorded
//! instead of run, in order, with a kernel's parameter bytes copied when it is enqueued. Another
//! stream joins the capture by waiting on an event recorded in it. `cuStreamEndCapture` turns the
//! record into a graph; launching an instantiation of it replays the operations in order. Memory a
//! capture allocates gets its address at once and keeps it for the life of the graph, as on a GPU:
//! it is reserved but inaccessible until a launch reaches the allocation, and again once a free in
//! the graph (or `cuMemFree`/`cuMemFreeAsync`, or the next launch of an instantiation made with
//! `CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH`) releases it. As on a GPU, destroying a graph
//! or its instantiation does not free memory still allocated by it. The capture modes are not told
//! apart: no call made outside the capture is refused because of it.
//!
//! # Error model
//! A kernel fault prints its description to stderr (prefixed `ptx-emulator: `) and makes the
//! context's error sticky, as an illegal address does on a GPU: the launch itself succeeds and every
//! later call on that context returns the fault's code (`CUDA_ERROR_ILLEGAL_ADDRESS` out of bounds,
//! `CUDA_ERROR_MISALIGNED_ADDRESS` misaligned, `CUDA_ERROR_LAUNCH_FAILED` otherwise) until the
//! context is destroyed (the primary context: released by all its users, or reset). Calls that only
//! release something (frees, destroys) still release it and then return the sticky code.
//!
//! # Handles
//! Contexts, streams, events, modules, functions, graphs, executable graphs and memory pools are
//! numbers handed out once each (a tag for the kind in the top bits, a serial number below), looked
//! up in a table per kind: a destroyed handle, or one of another kind, is `CUDA_ERROR_INVALID_HANDLE`.
//!
//! Enum-typed input parameters are taken as the `u32` of their C ABI (cudarc's enums are
//! `#[repr(u32)]`), so that a value outside the enum is `CUDA_ERROR_INVALID_VALUE`, not undefined
//! behaviour.

// The safety contract of every exported function is the CUDA driver API's: each pointer a caller
// passes must be valid for what that function's documentation says it reads or writes.
#![allow(clippy::missing_safety_doc)]
// The exported functions and their parameters carry the driver's C names.
#![allow(non_snake_case)]
#![warn(unsafe_op_in_unsafe_fn)]

mod context;
mod device;
mod errors;
mod event;
mod graph;
mod launch;
mod memory;
mod module;
mod stream;
mod unsupported;

pub use context::*;
pub use device::*;
pub use errors::*;
pub use event::*;
pub use graph::*;
pub use launch::*;
pub use memory::*;
pub use module::*;
pub use stream::*;
pub use unsupported::*;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError, RwLock};

use cudarc::driver::sys::CUresult;

use crate::exec::ExecOptions;
use crate::memory::DeviceMemory;

/// A driver call's outcome before it becomes a `CUresult`.
pub(crate) type CuResult<T = ()> = Result<T, CUresult>;

/// Set by `cuInit`; before it every other call is `CUDA_ERROR_NOT_INITIALIZED`, as on a GPU.
static INITIALISED: AtomicBool = AtomicBool::new(false);

static MEMORY: LazyLock<DeviceMemory> = LazyLock::new(DeviceMemory::new);
static OPTIONS: LazyLock<ExecOptions> = LazyLock::new(ExecOptions::from_env);

/// The emulated device's memory.
pub(crate) fn device_memory() -> &'static DeviceMemory {
    &MEMORY
}

/// How launches run, read from the environment once.
pub(crate) fn exec_options() -> &'static ExecOptions {
    &OPTIONS
}

/// Runs the body of the exported function `name` once `cuInit` has been called.
pub(crate) fn api(name: &'static str, body: impl FnOnce() -> CuResult) -> CUresult {
    if !INITIALISED.load(Ordering::Acquire) {
        return CUresult::CUDA_ERROR_NOT_INITIALIZED;
    }
    guard(name, body)
}

/// Runs the body of the exported function `name`. A panic (an emulator bug) must not unwind into
/// the C caller: it is reported and becomes `CUDA_ERROR_UNKNOWN`.
pub(crate) fn guard(name: &'static str, body: impl FnOnce() -> CuResult) -> CUresult {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => CUresult::CUDA_SUCCESS,
        Ok(Err(code)) => code,
        Err(_) => {
            warn(&format!(
                "{name} panicked (an emulator bug, reported above); it returns CUDA_ERROR_UNKNOWN"
            ));
            CUresult::CUDA_ERROR_UNKNOWN
        }
    }
}

/// Marks the driver initialised (`cuInit`).
pub(crate) fn set_initialised() {
    INITIALISED.store(true, Ordering::Release);
}

/// A message to the user on stderr, prefixed so it is told apart from the program's own output.
pub(crate) fn warn(message: &str) {
    eprintln!("ptx-emulator: {message}");
}

/// Locks `mutex`, carrying on past a panic of another holder: every critical section leaves its
/// data consistent, and a panic is already reported as `CUDA_ERROR_UNKNOWN`.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Writes `value` to the caller's out-parameter `ptr`; null is `CUDA_ERROR_INVALID_VALUE`.
///
/// # Safety
/// `ptr` is null or valid for writing a `T`.
pub(crate) unsafe fn put<T>(ptr: *mut T, value: T) -> CuResult {
    if ptr.is_null() {
        return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
    }
    // SAFETY: not null, and valid for writes by the caller's contract.
    unsafe { ptr.write(value) };
    Ok(())
}

/// Writes `value` to an optional out-parameter (null: not wanted).
///
/// # Safety
/// As [`put`].
pub(crate) unsafe fn put_optional<T>(ptr: *mut T, value: T) -> CuResult {
    if ptr.is_null() {
        return Ok(());
    }
    // SAFETY: the caller's contract, as for `put`.
    unsafe { put(ptr, value) }
}

/// Live objects of one kind by handle. Handles are never reused: a tag in bits 48.. says the kind,
/// a serial number below it the object.
pub(crate) struct Handles<T> {
    tag: u64,
    next: AtomicU64,
    live: RwLock<BTreeMap<u64, Arc<T>>>,
}

impl<T> Handles<T> {
    pub(crate) const fn new(tag: u8) -> Self {
        Self {
            tag: (tag as u64) << 48,
            next: AtomicU64::new(1),
            live: RwLock::new(BTreeMap::new()),
        }
    }

    /// Registers the object `make` builds from its handle, and returns the handle.
    pub(crate) fn insert_with(&self, make: impl FnOnce(u64) -> T) -> u64 {
        let handle = self.tag | self.next.fetch_add(1, Ordering::Relaxed);
        let value = Arc::new(make(handle));
        self.live
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(handle, value);
        handle
    }

    pub(crate) fn insert(&self, value: T) -> u64 {
        self.insert_with(|_| value)
    }

    /// The live object behind `handle`.
    pub(crate) fn get(&self, handle: u64) -> CuResult<Arc<T>> {
        self.live
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&handle)
            .cloned()
            .ok_or(CUresult::CUDA_ERROR_INVALID_HANDLE)
    }

    /// Unregisters `handle`, returning its object.
    pub(crate) fn remove(&self, handle: u64) -> CuResult<Arc<T>> {
        self.live
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&handle)
            .ok_or(CUresult::CUDA_ERROR_INVALID_HANDLE)
    }
}

/// A handle as the C pointer type the API passes it as.
pub(crate) fn to_ptr<P>(handle: u64) -> *mut P {
    handle as usize as *mut P
}

/// The handle a C pointer-typed parameter carries.
pub(crate) fn from_ptr<P>(ptr: *mut P) -> u64 {
    ptr as usize as u64
}
