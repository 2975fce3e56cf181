//! What both targets do with a file that reads: open every split as a dataset, in training and in
//! test mode with all four feature streams, and load every clip. A clip that loads must be finite.

use std::collections::BTreeSet;

use leangcn::data::annotation::AnnotationFile;
use leangcn::data::pyskl_dataset::{PipelineMode, PysklDataset};
use leangcn::data::ClipDataset;

/// Short enough that sequences both shorter and longer than a clip occur.
const CLIP_LEN: usize = 4;

pub fn load_every_clip(file: &AnnotationFile) {
    let splits: BTreeSet<&str> = file.splits.iter().map(|(name, _)| name.as_str()).collect();
    for split in splits {
        for mode in [PipelineMode::Train, PipelineMode::Test] {
            let Ok(data) = PysklDataset::from_annotations(file.clone(), split, "j,b,jm,bm", CLIP_LEN, mode) else {
                continue;
            };
            // clip: [M, T, V, C] f32
            let mut clip = vec![0f32; data.clip_shape().len()];
            for i in 0..data.len() {
                if data.load_clip(i, 7, &mut clip).is_ok() {
                    assert!(
                        clip.iter().all(|x| x.is_finite()),
                        "split {split}: item {i} loads with a non-finite value"
                    );
                }
            }
        }
    }
}
