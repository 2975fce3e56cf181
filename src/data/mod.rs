//! Skeleton data: the in-memory sequence model, datasets that turn sequences into training clips,
//! the built-in synthetic dataset, and the batch loader.
//!
//! Layouts: a sequence's `keypoint` is `[M, T, V, C]` f32 (person, frame, joint, channel), as in
//! PYSKL's annotation files; a clip handed to the network is `[M, T, V, C]` with M and T fixed by the
//! dataset; a batch is `[N, M, T, V, C]`.

pub mod annotation;
pub mod loader;
pub mod ntu_skeleton;
pub mod ntu_splits;
pub mod pickle;
pub mod pyskl_dataset;
pub mod synthetic;
pub mod transforms;

use crate::Result;

/// One skeleton sequence as stored in an annotation file.
#[derive(Clone, Debug, PartialEq)]
pub struct Sequence {
    /// Sample name, e.g. `S001C001P001R001A001`.
    pub frame_dir: String,
    pub label: u32,
    /// `[persons, frames, joints, channels]`.
    pub shape: [usize; 4],
    /// `[M, T, V, C]` row-major.
    pub keypoint: Vec<f32>,
}

/// The fixed shape of every clip of a dataset: `[persons, frames, joints, channels]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClipShape {
    pub persons: usize,
    pub frames: usize,
    pub joints: usize,
    pub channels: usize,
}

impl ClipShape {
    pub fn len(&self) -> usize {
        self.persons * self.frames * self.joints * self.channels
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A source of fixed-shape training or evaluation clips.
pub trait ClipDataset: Send + Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn num_classes(&self) -> usize;
    fn clip_shape(&self) -> ClipShape;
    /// Writes clip `index` into `out` (`clip_shape().len()` values, `[M, T, V, C]`) and returns its
    /// label. `seed` drives any random augmentation or frame sampling: the same (index, seed) gives
    /// the same clip on every run and thread.
    fn load_clip(&self, index: usize, seed: u64, out: &mut [f32]) -> Result<u32>;
}
