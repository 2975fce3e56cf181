//! The CUDA backend: our kernels from `cuda/`, compiled to PTX by build.rs and loaded through the
//! driver API (cudarc, dynamically loaded, so nothing CUDA is needed to build or start the binary).
//!
//! This build has the device plumbing and the optimizer, schedule and sparsity-threshold kernels
//! with their launchers; the forward and backward ops of the `Backend` trait on the GPU are not
//! implemented yet, so training runs on the CPU backend.

pub mod device;
pub mod kernels;
pub mod optim;
pub mod probe;
pub mod select;

pub use device::CudaDevice;
