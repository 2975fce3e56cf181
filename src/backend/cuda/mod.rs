//! The CUDA backend: our kernels from `cuda/`, compiled to PTX by build.rs and loaded through the
//! driver API (cudarc, dynamically loaded, so nothing CUDA is needed to build or start the binary).
//! [`CudaBackend`] implements every op of the `Backend` trait; each op family has its launchers in
//! a file of its own, beside the `.cu` file of the same family.

mod backend;
mod batch_norm;
mod buffer;
mod conv;
pub mod device;
mod elementwise;
mod fast_div;
mod graph;
pub mod kernels;
mod launch;
mod loss;
mod optim;
mod permute;
mod pool;
pub mod probe;
mod select;
mod sparse;

pub use backend::CudaBackend;
pub use batch_norm::PartialMoments;
pub use buffer::{DeviceBuf, GpuBuf};
pub use device::CudaDevice;
pub use sparse::{GpuCsrWeight, GpuPacked24Weight};
