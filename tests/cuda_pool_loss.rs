//! The mean-pooling and cross-entropy kernels against the CPU backend on fresh random data with
//! outputs poisoned with NaN: odd sizes, the ST-GCN head (16 clips of 2 persons, 256 channels,
//! 25×25 positions; 60 and 120 classes), label smoothing 0 and 0.1, an out-of-range label, a
//! repeatability check and the launchers' errors. Without a GPU each test prints why it was skipped.
//!
//! Tolerances. Both backends compute in double with the same formulas and round once to f32; the
//! order of the double sums differs, and the GPU's exp/log may differ from the host's by an ulp of
//! double, so results agree to one f32 rounding: rtol ε. atol 1e-12 covers values that cancel to
//! ~0 (a mean of mixed signs, p − target), where the double noise is ~1e-16. The pooling backward
//! does the same single multiply on both sides: bit for bit.

mod gpu_support;

use gpu_support::{assert_bits, assert_close, failure, fetch, gpu, normal, poisoned};
use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::Backend;
use leangcn::model::init::InitRng;

const EPS32: f32 = f32::EPSILON;

#[test]
fn mean_pool_matches_the_cpu() {
    let Some(be) = gpu("mean_pool_matches_the_cpu") else {
        return;
    };
    let cpu = CpuBackend::<f32>::new();
    let mut rng = InitRng::new(51);
    for (n, persons, c, s) in [(3, 2, 5, 7), (4, 1, 33, 1), (2, 3, 1, 100), (16, 2, 256, 625)] {
        let what = format!("n {n}, persons {persons}, c {c}, s {s}");
        let x = normal(&mut rng, n * persons * c * s);
        let mut y = poisoned(&be, n * c);
        be.mean_pool_forward(n, persons, c, s, &be.upload(&x), &mut y);
        let mut want_y = vec![0.0; n * c];
        cpu.mean_pool_forward(n, persons, c, s, &x, &mut want_y);
        assert_close(&format!("pooled {what}"), &fetch(&be, &y), &want_y, EPS32, 1e-12);

        let dy = normal(&mut rng, n * c);
        let mut dx = poisoned(&be, x.len());
        be.mean_pool_backward(n, persons, c, s, &be.upload(&dy), &mut dx);
        let mut want_dx = vec![0.0; x.len()];
        cpu.mean_pool_backward(n, persons, c, s, &dy, &mut want_dx);
        assert_bits(&format!("pool dx {what}"), &fetch(&be, &dx), &want_dx);
    }
}

/// Logits of spread 3 (confident and unconfident rows) and labels in range.
fn batch(rng: &mut InitRng, n: usize, classes: usize) -> (Vec<f32>, Vec<u32>) {
    let logits = normal(rng, n * classes).iter().map(|v| 3.0 * v).collect();
    let labels = (0..n).map(|_| (rng.next_u64() % classes as u64) as u32).collect();
    (logits, labels)
}

#[test]
fn cross_entropy_matches_the_cpu() {
    let Some(be) = gpu("cross_entropy_matches_the_cpu") else {
        return;
    };
    let cpu = CpuBackend::<f32>::new();
    let mut rng = InitRng::new(52);
    for (n, classes) in [(1, 1), (5, 7), (16, 60), (300, 120)] {
        for smoothing in [0.0, 0.1] {
            let what = format!("n {n}, classes {classes}, smoothing {smoothing}");
            let (logits, labels) = batch(&mut rng, n, classes);
            let (mut loss, mut dlogits) = (poisoned(&be, 1), poisoned(&be, n * classes));
            let glabels = be.upload_idx(&labels);
            be.cross_entropy(
                n,
                classes,
                &be.upload(&logits),
                &glabels,
                smoothing,
                &mut loss,
                &mut dlogits,
            );
            let (mut want_loss, mut want_d) = (vec![0.0], vec![0.0; n * classes]);
            cpu.cross_entropy(n, classes, &logits, &labels, smoothing, &mut want_loss, &mut want_d);
            assert_close(&format!("loss {what}"), &fetch(&be, &loss), &want_loss, EPS32, 1e-12);
            assert_close(&format!("dlogits {what}"), &fetch(&be, &dlogits), &want_d, EPS32, 1e-12);
        }
    }
}

#[test]
fn an_out_of_range_label_gives_a_nan_loss_and_reads_nothing_outside() {
    let Some(be) = gpu("an_out_of_range_label_gives_a_nan_loss_and_reads_nothing_outside") else {
        return;
    };
    let mut rng = InitRng::new(53);
    let (n, classes) = (9, 40);
    let (logits, mut labels) = batch(&mut rng, n, classes);
    labels[4] = classes as u32;
    let (mut loss, mut dlogits) = (poisoned(&be, 1), poisoned(&be, n * classes));
    be.cross_entropy(
        n,
        classes,
        &be.upload(&logits),
        &be.upload_idx(&labels),
        0.1,
        &mut loss,
        &mut dlogits,
    );
    assert!(
        fetch(&be, &loss)[0].is_nan(),
        "the loss of a batch with a bad label is NaN"
    );
    let d = fetch(&be, &dlogits);
    for (row, grads) in d.chunks(classes).enumerate() {
        if row == 4 {
            assert!(
                grads.iter().all(|g| g.is_nan()),
                "row {row}: the bad row's gradients are NaN"
            );
        } else {
            assert!(
                grads.iter().all(|g| g.is_finite()),
                "row {row}: the other rows are unaffected"
            );
        }
    }
}

#[test]
fn pooling_and_loss_are_repeatable() {
    let Some(be) = gpu("pooling_and_loss_are_repeatable") else {
        return;
    };
    let mut rng = InitRng::new(54);
    let (n, persons, c, s, classes) = (16, 2, 256, 625, 120);
    let x = be.upload(&normal(&mut rng, n * persons * c * s));
    let (logits, labels) = batch(&mut rng, n, classes);
    let (logits, labels) = (be.upload(&logits), be.upload_idx(&labels));
    let run = || {
        let mut y = poisoned(&be, n * c);
        be.mean_pool_forward(n, persons, c, s, &x, &mut y);
        let (mut loss, mut dlogits) = (poisoned(&be, 1), poisoned(&be, n * classes));
        be.cross_entropy(n, classes, &logits, &labels, 0.1, &mut loss, &mut dlogits);
        [&y, &loss, &dlogits].map(|b| fetch(&be, b))
    };
    let (first, second) = (run(), run());
    for (name, (a, b)) in ["pooled", "loss", "dlogits"].iter().zip(first.iter().zip(&second)) {
        assert_bits(&format!("{name}, second run"), b, a);
    }
}

#[test]
fn pool_and_loss_launchers_reject_bad_buffers() {
    let Some(be) = gpu("pool_and_loss_launchers_reject_bad_buffers") else {
        return;
    };
    let (x, mut short_y) = (be.zeros(2 * 3 * 4 * 5), be.zeros(2 * 4 - 1));
    be.mean_pool_forward(2, 3, 4, 5, &x, &mut short_y);
    let e = failure(&be);
    assert!(e.contains("mean_pool forward") && e.contains("y has"), "{e}");

    let (logits, labels) = (be.zeros(6 * 10), be.upload_idx(&[0; 5]));
    let (mut loss, mut dlogits) = (be.zeros(1), be.zeros(6 * 10));
    be.cross_entropy(6, 10, &logits, &labels, 0.0, &mut loss, &mut dlogits);
    let e = failure(&be);
    assert!(
        e.contains("cross_entropy") && e.contains("labels has 5 elements"),
        "{e}"
    );
}
