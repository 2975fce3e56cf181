//! ST-GCN as PYSKL defines it, built from the graph-layer API, and the skeleton graphs it runs on.

pub mod config;
pub mod graph;
pub mod init;
pub mod stgcn;

pub use config::{Adaptive, BlockWidths, DataBnType, SparseSpec, StgcnConfig, ThresholdScope};
pub use graph::{Adjacency, GraphMode, Layout};
pub use stgcn::Stgcn;
