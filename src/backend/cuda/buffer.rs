//! Device buffers as the backend hands them to layers, and what happens to them while a step is
//! being captured into a CUDA graph.

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use cudarc::driver::{CudaSlice, DeviceRepr, LaunchArgs, PushKernelArg};

use crate::backend::Storage;
use crate::{Error, Result};

/// Whether a backend's stream is recording a graph now, and the buffers allocated before the
/// recording and dropped during it: a free inside a capture becomes a graph node, which may only
/// free the graph's own allocations, so these wait until it ends. One per device (backends in
/// other threads record on their own streams).
#[derive(Default)]
pub struct CaptureState {
    active: AtomicBool,
    deferred: Mutex<Vec<Box<dyn Any + Send>>>,
}

impl CaptureState {
    pub(super) fn set_capturing(&self, on: bool) {
        self.active.store(on, Ordering::SeqCst);
        if !on {
            // dropped outside the capture: ordinary stream-ordered frees
            self.deferred.lock().expect("deferred frees lock").clear();
        }
    }

    fn capturing(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }
}

/// `len` elements of `T` in device memory. A zero-length buffer holds no allocation (the driver
/// refuses empty ones), and neither does one whose allocation failed: the backend records that
/// failure and skips every later op until the caller checks (`Backend::check`).
pub struct GpuBuf<T: DeviceRepr + 'static> {
    slice: Option<CudaSlice<T>>,
    len: usize,
    /// The capture state of the device that allocated it.
    capture: Option<Arc<CaptureState>>,
    /// Allocated while a graph was being captured (the graph owns the memory).
    in_graph: bool,
}

impl<T: DeviceRepr + 'static> GpuBuf<T> {
    /// `slice`, allocated now by the device whose capture state is `capture`.
    pub(super) fn new(slice: CudaSlice<T>, len: usize, capture: &Arc<CaptureState>) -> Self {
        Self {
            slice: Some(slice),
            len,
            in_graph: capture.capturing(),
            capture: Some(capture.clone()),
        }
    }

    /// A buffer of `len` elements that holds no allocation: empty, or whose allocation failed.
    pub(super) fn unallocated(len: usize) -> Self {
        Self {
            slice: None,
            len,
            capture: None,
            in_graph: false,
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
        if let (Some(slice), Some(capture)) = (self.slice.take(), &self.capture) {
            if !self.in_graph && capture.capturing() {
                capture
                    .deferred
                    .lock()
                    .expect("deferred frees lock")
                    .push(Box::new(slice));
            }
        }
    }
}

/// A buffer of the CUDA backend as layers see it (`Backend::Buf`): f32 values (parameters, their
/// gradients, statistics, and activations in f32 storage), or an activation stored in bf16 (the
/// bits of `len` bf16 values). Every op checks its arguments' element types by their roles.
pub enum DeviceBuf {
    F32(GpuBuf<f32>),
    Bf16(GpuBuf<u16>),
}

impl DeviceBuf {
    pub fn len(&self) -> usize {
        match self {
            DeviceBuf::F32(b) => b.len(),
            DeviceBuf::Bf16(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How the buffer stores its values.
    pub fn storage(&self) -> Storage {
        match self {
            DeviceBuf::F32(_) => Storage::F32,
            DeviceBuf::Bf16(_) => Storage::Bf16,
        }
    }

    /// The f32 device memory of a parameter, a gradient of one or a statistic (or of an f32
    /// activation), or an error for a bf16 buffer or one without memory.
    pub fn f32(&self) -> Result<&CudaSlice<f32>> {
        match self {
            DeviceBuf::F32(b) => memory(b),
            DeviceBuf::Bf16(b) => Err(not_f32(b.len())),
        }
    }

    pub fn f32_mut(&mut self) -> Result<&mut CudaSlice<f32>> {
        match self {
            DeviceBuf::F32(b) => memory_mut(b),
            DeviceBuf::Bf16(b) => Err(not_f32(b.len())),
        }
    }

    /// The device memory of an activation, in whichever storage it has.
    pub fn act(&self) -> Result<Act<'_>> {
        Ok(match self {
            DeviceBuf::F32(b) => Act::F32(memory(b)?),
            DeviceBuf::Bf16(b) => Act::Bf16(memory(b)?),
        })
    }

    pub fn act_mut(&mut self) -> Result<ActMut<'_>> {
        Ok(match self {
            DeviceBuf::F32(b) => ActMut::F32(memory_mut(b)?),
            DeviceBuf::Bf16(b) => ActMut::Bf16(memory_mut(b)?),
        })
    }
}

fn not_f32(len: usize) -> Error {
    Error::Cuda(format!(
        "an op that takes f32 values (a parameter, a gradient, a statistic, or an op without bf16 kernels) got a bf16 activation of {len} values"
    ))
}

/// The device memory of `b`, or an error if it has none (an empty or failed buffer where data is needed).
pub fn memory<T: DeviceRepr + 'static>(b: &GpuBuf<T>) -> Result<&CudaSlice<T>> {
    b.slice()
        .ok_or_else(|| Error::Cuda(format!("an op read an unallocated buffer of {} elements", b.len())))
}

pub fn memory_mut<T: DeviceRepr + 'static>(b: &mut GpuBuf<T>) -> Result<&mut CudaSlice<T>> {
    let len = b.len();
    b.slice_mut()
        .ok_or_else(|| Error::Cuda(format!("an op wrote an unallocated buffer of {len} elements")))
}

/// An activation's device memory as a kernel takes it: f32 values, or the bits of bf16 values.
#[derive(Clone, Copy)]
pub enum Act<'a> {
    F32(&'a CudaSlice<f32>),
    Bf16(&'a CudaSlice<u16>),
}

/// An activation a kernel writes.
pub enum ActMut<'a> {
    F32(&'a mut CudaSlice<f32>),
    Bf16(&'a mut CudaSlice<u16>),
}

impl<'a> Act<'a> {
    pub fn len(&self) -> usize {
        match self {
            Act::F32(s) => s.len(),
            Act::Bf16(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn storage(&self) -> Storage {
        match self {
            Act::F32(_) => Storage::F32,
            Act::Bf16(_) => Storage::Bf16,
        }
    }

    /// Pushes the device pointer as a kernel argument.
    pub fn push(self, b: &mut LaunchArgs<'a>) {
        match self {
            Act::F32(s) => b.arg(s),
            Act::Bf16(s) => b.arg(s),
        };
    }
}

impl<'a> ActMut<'a> {
    /// The same memory, borrowed again (for one of several launches that write it).
    pub fn reborrow(&mut self) -> ActMut<'_> {
        match self {
            ActMut::F32(s) => ActMut::F32(s),
            ActMut::Bf16(s) => ActMut::Bf16(s),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            ActMut::F32(s) => s.len(),
            ActMut::Bf16(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn storage(&self) -> Storage {
        match self {
            ActMut::F32(_) => Storage::F32,
            ActMut::Bf16(_) => Storage::Bf16,
        }
    }

    /// Pushes the device pointer as a kernel argument.
    pub fn push(self, b: &mut LaunchArgs<'a>) {
        match self {
            ActMut::F32(s) => b.arg(s),
            ActMut::Bf16(s) => b.arg(s),
        };
    }
}

/// `name` when the activations are f32, its bf16-activation twin (`<name>_bf16act`, see
/// cuda/activation.cuh) when they are bf16.
#[macro_export]
#[doc(hidden)]
macro_rules! act_kernel {
    ($storage:expr, $name:literal) => {
        match $storage {
            $crate::backend::Storage::F32 => $name,
            $crate::backend::Storage::Bf16 => concat!($name, "_bf16act"),
        }
    };
}

/// The one storage of every activation an op takes, or an error naming the op: an op computes in
/// one activation type (a layer that allocated an activation with `zeros` instead of `activation`
/// shows here). Takes the storages by value (an array, chained with optional ones), so a launch
/// allocates nothing for the check.
pub fn one_storage<I>(op: &str, storages: I) -> Result<Storage>
where
    I: IntoIterator<Item = Storage> + Clone,
{
    let mut all = storages.clone().into_iter();
    let first = all.next().unwrap_or_default();
    if all.all(|s| s == first) {
        Ok(first)
    } else {
        let listed: Vec<Storage> = storages.into_iter().collect();
        Err(Error::Cuda(format!(
            "{op}: its activations mix f32 and bf16 buffers ({listed:?})"
        )))
    }
}

/// A batch-norm epilogue over activations (`BnEpilogue` as a kernel takes it).
#[derive(Clone, Copy)]
pub struct ActEpilogue<'a> {
    pub residual: Option<Act<'a>>,
    pub relu: bool,
}

impl ActEpilogue<'_> {
    pub fn none() -> Self {
        Self {
            residual: None,
            relu: false,
        }
    }
}
