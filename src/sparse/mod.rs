//! Sparse ST-GCNs as the paper studies them: the sparse generator (learned masks, see
//! [`crate::layers::WeightMask`]) and its schedule, lottery tickets by magnitude pruning and
//! rewinding, the multi-level sparsity assembly's configuration, parameter and FLOP accounting,
//! N:M masks, channel compaction into a smaller dense model, and the sweep over all of them.

pub mod accounting;
pub mod assembly;
pub mod compact;
pub mod lottery;
pub mod schedule;
pub mod semi_structured;
pub mod sweep;

pub use assembly::AssemblyConfig;
pub use schedule::SparsitySchedule;
