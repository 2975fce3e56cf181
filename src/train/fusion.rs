//! Test-time scores and multi-stream fusion as PYSKL reports them: per sample, the softmax of each
//! clip averaged over clips; streams (j, b, jm, bm) combined by a weighted sum of those scores.

use std::sync::Arc;

use super::metrics::topk_correct;
use super::step::{eval_logits, BatchBuffers};
use crate::backend::Backend;
use crate::data::loader::BatchLoader;
use crate::data::ClipDataset;
use crate::model::Recognizer;
use crate::{Error, Result};

/// Clip-averaged class probabilities `[samples, classes]` and the labels, for a dataset whose
/// consecutive groups of `clips` items are the clips of one sample.
pub fn clip_averaged_scores<B: Backend>(
    be: &B,
    model: &mut dyn Recognizer<B>,
    data: Arc<dyn ClipDataset>,
    clips: usize,
    batch_size: usize,
) -> Result<(Vec<f64>, Vec<u32>)> {
    let classes = model.config().num_classes;
    // whole samples per batch, so a sample's clips never straddle two batches
    let batch = (batch_size / clips).max(1) * clips;
    let loader = BatchLoader::new(data, batch, false, false, 0, 0);
    let (mut scores, mut labels) = (Vec::new(), Vec::new());
    let mut inputs = BatchBuffers::default();
    for b in loader.epoch(0, 0) {
        let b = b?;
        let logits = eval_logits(be, model, inputs.upload(be, &b).0, b.dims())?;
        for (sample, rows) in logits.chunks(clips * classes).enumerate() {
            let mut mean = vec![0.0; classes];
            for row in rows.chunks(classes) {
                let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = row.iter().map(|z| (z - max).exp()).sum();
                for (m, z) in mean.iter_mut().zip(row) {
                    *m += (z - max).exp() / sum / clips as f64;
                }
            }
            scores.extend(mean);
            labels.push(b.labels[sample * clips]);
        }
    }
    Ok((scores, labels))
}

/// `Σ_s w_s · scores_s`, every stream `[samples, classes]` over the same samples.
pub fn fuse_streams(streams: &[Vec<f64>], weights: &[f64]) -> Result<Vec<f64>> {
    let first = streams.first().ok_or_else(|| Error::config("no streams to fuse"))?;
    if streams.len() != weights.len() || streams.iter().any(|s| s.len() != first.len()) {
        return Err(Error::config(format!(
            "{} streams with {} weights, or streams of different sizes",
            streams.len(),
            weights.len()
        )));
    }
    Ok((0..first.len())
        .map(|i| streams.iter().zip(weights).map(|(s, w)| w * s[i]).sum())
        .collect())
}

/// Top-1 and top-5 accuracy of scores `[samples, classes]`.
pub fn top1_top5(scores: &[f64], classes: usize, labels: &[u32]) -> (f64, f64) {
    let n = labels.len().max(1) as f64;
    (
        topk_correct(scores, classes, labels, 1) as f64 / n,
        topk_correct(scores, classes, labels, 5.min(classes)) as f64 / n,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_sum_of_streams() {
        let fused = fuse_streams(&[vec![0.2, 0.8], vec![0.6, 0.4]], &[2.0, 1.0]).unwrap();
        assert!((fused[0] - 1.0).abs() < 1e-15 && (fused[1] - 2.0).abs() < 1e-15);
        assert!(fuse_streams(&[vec![0.2]], &[1.0, 2.0]).is_err());
        assert_eq!(top1_top5(&fused, 2, &[1]), (1.0, 1.0));
    }
}
