//! Sparse ST-GCNs as the paper studies them: the sparse generator (learned masks, see
//! [`crate::layers::WeightMask`]) and its schedule, lottery tickets by magnitude pruning and
//! rewinding, and the multi-level sparsity assembly.

pub mod lottery;
pub mod schedule;
pub mod sweep;

pub use schedule::SparsitySchedule;
