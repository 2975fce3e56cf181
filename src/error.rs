//! The crate's error type: every failure a user can cause says what was wrong and where.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An invalid model, training or benchmark configuration.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A file that could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file whose content is not what it should be (truncated, foreign, mis-shaped tensors).
    #[error("{}: {detail}", path.display())]
    Format { path: PathBuf, detail: String },
    /// A bad sample in a dataset: the file, the sample (frame_dir or index), the field, what is wrong.
    #[error("{}: sample {sample}: {field}: {detail}", path.display())]
    Sample {
        path: PathBuf,
        sample: String,
        field: String,
        detail: String,
    },
    /// Training diverged.
    #[error("loss is {loss} at step {step} (last finite loss {last_finite}); {hint}")]
    NonFiniteLoss {
        step: u64,
        loss: f64,
        last_finite: f64,
        hint: String,
    },
    /// The GPU's memory ran out; `hint` says which batch size fits, where that is known.
    #[error("out of device memory allocating {requested_mib} MiB ({free_mib} MiB free of {total_mib} MiB){hint}")]
    DeviceMemory {
        requested_mib: usize,
        free_mib: usize,
        total_mib: usize,
        hint: String,
    },
    /// The CUDA backend cannot be used (no driver, no device, no kernels, a driver error).
    #[error("CUDA: {0}")]
    Cuda(String),
    /// The user interrupted the run (the state was saved first).
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub fn format(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            detail: detail.into(),
        }
    }
    pub fn config(detail: impl Into<String>) -> Self {
        Error::Config(detail.into())
    }
}
