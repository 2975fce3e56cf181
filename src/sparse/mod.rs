//! Sparse ST-GCNs as the paper studies them: the sparse generator (learned masks, see
//! [`crate::layers::WeightMask`]) and its schedule, lottery tickets by magnitude pruning and
//! rewinding, the multi-level sparsity assembly, N:M masks, and channel compaction into a smaller
//! dense model.

pub mod compact;
pub mod lottery;
pub mod schedule;
pub mod semi_structured;
pub mod sweep;

pub use schedule::SparsitySchedule;
