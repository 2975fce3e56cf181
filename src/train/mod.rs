//! The trainer: configuration, the training step, the loop with evaluation, metrics, plots,
//! checkpoints and resume.

pub mod checkpoint;
pub mod config;
pub mod datasets;
pub mod device_check;
pub mod fusion;
pub mod interrupt;
pub mod metrics;
pub mod model;
pub mod plot;
pub mod progress;
pub mod step;
pub mod trainer;

pub use config::{DataConfig, TrainConfig, PRESETS};
pub use trainer::{train, RunOptions, Summary};
