//! A PTX emulator behind the CUDA driver API: built as a cdylib and found as `libcuda.so` before
//! the real driver, it runs the PTX that nvcc emits on the CPU, so every GPU test, the trainer and
//! the kernel benches run on a machine without a GPU, with every memory access and every
//! shared-memory exchange checked.
//!
//! - [`ptx`]: the PTX text → a syntax tree (no meaning attached).
//! - [`exec`]: the syntax tree → decoded kernels (anything not implemented is an error at module
//!   load), and their execution: a grid of blocks spread over the host's cores, each warp's 32
//!   lanes in lockstep per decoded instruction, with the checks of compute-sanitizer's memcheck,
//!   racecheck and initcheck.
//! - [`memory`]: device memory (allocations, host copies) and the per-byte state the checks need.
//! - [`driver`]: the driver API functions cudarc calls, under their exported names.

pub mod driver;
pub mod exec;
pub mod memory;
pub mod ptx;
