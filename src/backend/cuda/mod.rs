//! The CUDA backend: our kernels from `cuda/`, compiled to PTX by build.rs and loaded through the
//! driver API (cudarc, dynamically loaded, so nothing CUDA is needed to build or start the binary).
