//! The CUDA driver API as cudarc 0.19 calls it, exported under the driver's symbol names.
