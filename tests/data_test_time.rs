//! Test-time averaging of per-clip softmax scores.

use leangcn::data::transforms::test_time::average_clip_probabilities;

#[test]
fn mean_of_per_clip_softmax() {
    // Clip 0: softmax([0, ln 3]) = [0.25, 0.75]; clip 1: softmax([1000, 1000]) = [0.5, 0.5]
    // (the row max is subtracted, so large logits do not overflow).
    let logits = [0.0, 3f32.ln(), 1000.0, 1000.0];
    let p = average_clip_probabilities(&logits, 2);
    assert!((p[0] - 0.375).abs() < 1e-7 && (p[1] - 0.625).abs() < 1e-7, "{p:?}");
}
