//! Device buffers as the backend hands them to layers.

use cudarc::driver::{CudaSlice, DeviceRepr};

/// `len` elements of `T` in device memory. A zero-length buffer holds no allocation (the driver
/// refuses empty ones), and neither does one whose allocation failed: the backend records that
/// failure and skips every later op until the caller checks (`Backend::check`).
pub struct GpuBuf<T: DeviceRepr> {
    slice: Option<CudaSlice<T>>,
    len: usize,
}

impl<T: DeviceRepr> GpuBuf<T> {
    pub(super) fn new(slice: Option<CudaSlice<T>>, len: usize) -> Self {
        Self { slice, len }
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
