//! The graph-layer API: small layers with named parameters, explicit forward and backward, and no
//! knowledge of the backend that runs them.
//!
//! Every layer caches in its forward what its backward needs (besides its input, which the caller
//! passes to `backward` again), accumulates its parameter gradients, and returns the input gradient.
//! Parameters and buffers are reachable by their PyTorch `state_dict` names through [`Module`].

mod batch_norm;
mod block;
mod conv;
pub mod conv_sparse;
mod data_norm;
mod graph_conv;
mod head;
mod temporal;

pub use batch_norm::BatchNorm;
pub use block::StgcnBlock;
pub use conv::{Conv, WeightMask};
pub use data_norm::DataDims;
pub use data_norm::DataNorm;
pub use graph_conv::GraphConv;
pub use head::ClassifierHead;
pub use temporal::TemporalUnit;

use crate::backend::{Backend, Scalar};

/// A learnable tensor with its gradient.
pub struct Param<B: Backend> {
    pub shape: Vec<usize>,
    pub value: B::Buf,
    pub grad: B::Buf,
}

impl<B: Backend> Param<B> {
    /// A parameter with the given values (in f64, converted to the backend's element type).
    pub fn new(be: &B, shape: &[usize], values: &[f64]) -> Self {
        assert_eq!(shape.iter().product::<usize>(), values.len(), "parameter shape");
        let host: Vec<B::Elem> = values.iter().map(|&v| B::Elem::of(v)).collect();
        Self {
            shape: shape.to_vec(),
            value: be.upload(&host),
            grad: be.zeros(values.len()),
        }
    }

    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A non-learned tensor that is part of the model state (BN running statistics, a fixed adjacency).
pub struct Buffer<B: Backend> {
    pub shape: Vec<usize>,
    /// Written in place only together with [`Buffer::mark_changed`]; replaced through
    /// [`Buffer::replace`].
    pub value: B::Buf,
    /// A number unique to the current content, so that what is derived from it (a compressed
    /// weight from a mask) can tell whether it is out of date.
    version: u64,
}

/// Source of buffer versions: unique over the process, so a buffer made anew never repeats the
/// version of the one it replaces.
static NEXT_VERSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn next_version() -> u64 {
    NEXT_VERSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl<B: Backend> Buffer<B> {
    pub fn new(be: &B, shape: &[usize], values: &[f64]) -> Self {
        assert_eq!(shape.iter().product::<usize>(), values.len(), "buffer shape");
        let host: Vec<B::Elem> = values.iter().map(|&v| B::Elem::of(v)).collect();
        Self {
            shape: shape.to_vec(),
            value: be.upload(&host),
            version: next_version(),
        }
    }

    /// Replaces the content.
    pub fn replace(&mut self, value: B::Buf) {
        self.value = value;
        self.version = next_version();
    }

    /// Records that `value` was written in place.
    pub fn mark_changed(&mut self) {
        self.version = next_version();
    }

    /// Changes whenever the content does (through `new`, `replace` or `mark_changed`).
    pub fn version(&self) -> u64 {
        self.version
    }
}

/// One named piece of model state.
pub enum Entry<'a, B: Backend> {
    Param(String, &'a mut Param<B>),
    Buffer(String, &'a mut Buffer<B>),
    /// An integer counter (`num_batches_tracked`).
    Counter(String, &'a mut i64),
}

impl<B: Backend> Entry<'_, B> {
    pub fn name(&self) -> &str {
        match self {
            Entry::Param(n, _) | Entry::Buffer(n, _) | Entry::Counter(n, _) => n,
        }
    }
}

/// Anything with named state.
pub trait Module<B: Backend> {
    /// Appends this module's parameters, buffers and counters, named `prefix.<name>`, in a fixed order.
    fn entries<'a>(&'a mut self, prefix: &str, out: &mut Vec<Entry<'a, B>>);
}

/// Values in an optional cached buffer (0 when empty).
fn held<B: Backend>(be: &B, buf: Option<&B::Buf>) -> usize {
    buf.map_or(0, |b| be.buf_len(b))
}

/// `prefix.name`, or `name` when the prefix is empty.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// The learnable parameters of a module, in `entries` order.
pub fn params_of<B: Backend>(m: &mut dyn Module<B>) -> Vec<(String, &mut Param<B>)> {
    let mut entries = Vec::new();
    m.entries("", &mut entries);
    entries
        .into_iter()
        .filter_map(|e| match e {
            Entry::Param(n, p) => Some((n, p)),
            _ => None,
        })
        .collect()
}

/// Loads every parameter, buffer and counter of `m` from `lookup(name, element_count)` (values in
/// f64, converted to the backend's type). Fails on the first missing or mis-shaped tensor.
pub fn load_state<B: Backend>(
    be: &B,
    m: &mut dyn Module<B>,
    mut lookup: impl FnMut(&str, usize) -> crate::Result<Vec<f64>>,
) -> crate::Result<()> {
    let mut entries = Vec::new();
    m.entries("", &mut entries);
    for entry in entries {
        match entry {
            Entry::Param(name, p) => {
                let host: Vec<B::Elem> = lookup(&name, p.len())?.into_iter().map(B::Elem::of).collect();
                p.value = be.upload(&host);
            }
            Entry::Buffer(name, b) => {
                let len = b.shape.iter().product();
                let host: Vec<B::Elem> = lookup(&name, len)?.into_iter().map(B::Elem::of).collect();
                b.replace(be.upload(&host));
            }
            Entry::Counter(name, c) => *c = lookup(&name, 1)?[0] as i64,
        }
    }
    Ok(())
}
