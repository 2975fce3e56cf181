//! Parity with PyTorch: reading files of the `stgcn-golden/1` format (tensors computed by the PYSKL
//! code in PyTorch, with their configuration in the `stgcn_golden` metadata key) and checking a
//! backend against them.

mod check;
mod file;

pub use check::{check_golden, Report, Row, Status};
pub use file::{GoldenConfig, GoldenFile};
