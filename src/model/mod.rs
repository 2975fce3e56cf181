//! ST-GCN as PYSKL defines it, built from the graph-layer API, and the skeleton graphs it runs on: the
//! backbone on its own, the single-model recogniser and the multi-level sparsity assembly.

pub mod assembly;
pub mod backbone;
pub mod config;
pub mod graph;
pub mod init;
pub mod layer_clock;
pub mod recognizer;
pub mod stgcn;

pub use assembly::Assembly;
pub use backbone::Backbone;
pub use config::{Adaptive, BlockWidths, DataBnType, SparseSpec, StgcnConfig, ThresholdScope};
pub use graph::{Adjacency, GraphMode, Layout};
pub use recognizer::{Objective, Recognizer};
pub use stgcn::Stgcn;
