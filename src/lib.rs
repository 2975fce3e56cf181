//! leangcn: exact, instrumented training of spatial-temporal graph convolution networks (ST-GCN) on
//! human skeletons, with a CPU reference backend and hand-written CUDA kernels.
//!
//! The architecture, bottom up:
//! - [`backend`]: the [`backend::Backend`] trait of every op (forward and backward), the CPU backend
//!   (rayon + GEMM, generic over f32/f64) and the CUDA backend (our kernels from `cuda/`, loaded as PTX).
//! - [`layers`]: the graph-layer API (conv, graph conv, BN, blocks) with named parameters.
//! - [`model`]: skeleton graphs and ST-GCN exactly as PYSKL defines it.
//! - [`optim`]: SGD and the cosine schedule with PyTorch's semantics.
//! - [`data`]: the built-in synthetic dataset, batch loading.
//! - [`train`]: the trainer, checkpoints, metrics; [`golden`]: parity with PyTorch's vectors.
//! - [`sparse`]: learned masks, lottery tickets, N:M masks and channel compaction.
//! - [`bench`](mod@bench): parameter and FLOP counts, the per-layer measurement of a built model, the
//!   throughput sweep over sparsity kinds.

pub mod backend;
pub mod bench;
pub mod cli;
pub mod data;
pub mod error;
pub mod golden;
pub mod layers;
pub mod model;
pub mod nvtx;
pub mod optim;
pub mod sparse;
pub mod train;

pub use error::{Error, Result};
