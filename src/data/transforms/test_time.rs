//! Test-time averaging over clips (`RecognizerGCN` with `average_clips='prob'`).

/// Softmax of each clip's logits, averaged over clips: `logits` is `[num_clips, classes]`,
/// the result `[classes]`. Each softmax subtracts its row max first.
pub fn average_clip_probabilities(logits: &[f32], num_clips: usize) -> Vec<f32> {
    assert!(
        num_clips > 0 && logits.len() % num_clips == 0,
        "logits must be [num_clips, classes]"
    );
    let classes = logits.len() / num_clips;
    let mut mean = vec![0.0f64; classes];
    for row in logits.chunks_exact(classes) {
        let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let exp: Vec<f64> = row.iter().map(|&x| (x as f64 - max).exp()).collect();
        let sum: f64 = exp.iter().sum();
        for (m, e) in mean.iter_mut().zip(&exp) {
            *m += e / sum;
        }
    }
    mean.iter().map(|&m| (m / num_clips as f64) as f32).collect()
}
