//! Device buffers as the backend hands them to layers, and what happens to them while a step is
//! being captured into a CUDA graph.

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use cudarc::driver::{CudaSlice, DeviceRepr};

/// Whether the backend's stream is recording a graph now.
static CAPTURING: AtomicBool = AtomicBool::new(false);
/// Buffers allocated before a capture and dropped during it: a free inside a capture becomes a
/// graph node, which may only free the graph's own allocations, so these wait until it ends.
static DEFERRED_FREES: Mutex<Vec<Box<dyn Any + Send>>> = Mutex::new(Vec::new());

pub(super) fn set_capturing(on: bool) {
    CAPTURING.store(on, Ordering::SeqCst);
    if !on {
        // dropped outside the capture: ordinary stream-ordered frees
        DEFERRED_FREES.lock().expect("deferred frees lock").clear();
    }
}

/// `len` elements of `T` in device memory. A zero-length buffer holds no allocation (the driver
/// refuses empty ones), and neither does one whose allocation failed: the backend records that
/// failure and skips every later op until the caller checks (`Backend::check`).
pub struct GpuBuf<T: DeviceRepr + 'static> {
    slice: Option<CudaSlice<T>>,
    len: usize,
    /// Allocated while a graph was being captured (the graph owns the memory).
    in_graph: bool,
}

impl<T: DeviceRepr + 'static> GpuBuf<T> {
    pub(super) fn new(slice: Option<CudaSlice<T>>, len: usize) -> Self {
        Self {
            slice,
            len,
            in_graph: CAPTURING.load(Ordering::SeqCst),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The device memory, `None` for an empty or unallocated buffer.
    pub fn slice(&self) -> Option<&CudaSlice<T>> {
        self.slice.as_ref()
    }

    pub fn slice_mut(&mut self) -> Option<&mut CudaSlice<T>> {
        self.slice.as_mut()
    }
}

impl<T: DeviceRepr + 'static> Drop for GpuBuf<T> {
    fn drop(&mut self) {
        if let Some(slice) = self.slice.take() {
            if !self.in_graph && CAPTURING.load(Ordering::SeqCst) {
                DEFERRED_FREES
                    .lock()
                    .expect("deferred frees lock")
                    .push(Box::new(slice));
            }
        }
    }
}
