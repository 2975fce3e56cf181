//! Helpers shared by the GPU tests: the backend or a printed reason to skip, fresh random data,
//! poisoned (NaN) output buffers, and element-wise tolerance checks against the CPU backend.

#![allow(dead_code)] // each test crate uses a different subset

use leangcn::backend::cuda::{CudaBackend, DeviceBuf};
use leangcn::backend::{Backend, ConvMath};
use leangcn::model::init::InitRng;

/// The CUDA backend, or `None` after printing why `test` is skipped (no driver, no device, a build
/// without kernels). A skipped test says so on stdout (`cargo test -- --nocapture` shows it).
pub fn gpu(test: &str) -> Option<CudaBackend> {
    gpu_with(test, ConvMath::F32)
}

/// `gpu` with the convolutions in `conv_math`.
pub fn gpu_with(test: &str, conv_math: ConvMath) -> Option<CudaBackend> {
    match CudaBackend::open_with(0, conv_math) {
        Ok(be) => Some(be),
        Err(e) => {
            println!("skipped {test}: {e}");
            None
        }
    }
}

/// Whether `be` is the PTX emulator (`scripts/emulator`): tests of whole training steps use
/// smaller batches there (an emulated step takes seconds), while kernel tests keep their shapes and
/// every edge case.
pub fn emulated(be: &CudaBackend) -> bool {
    be.device().is_emulated()
}

/// Standard normal values.
pub fn normal(rng: &mut InitRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.normal() as f32).collect()
}

/// A device buffer of `len` NaNs: an output the kernel must overwrite entirely.
pub fn poisoned(be: &CudaBackend, len: usize) -> DeviceBuf {
    be.upload(&vec![f32::NAN; len])
}

/// Downloads after checking that no op failed.
pub fn fetch(be: &CudaBackend, buf: &DeviceBuf) -> Vec<f32> {
    let host = be.download(buf);
    be.check().expect("a CUDA op failed");
    host
}

/// Every element within `atol + rtol·|want|` (llm.c's rule) and finite.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], rtol: f32, atol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let mut worst: Option<(usize, f32)> = None;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(g.is_finite(), "{what}: element {i} is {g} (want {w})");
        let excess = (g - w).abs() - (atol + rtol * w.abs());
        if excess > 0.0 && worst.is_none_or(|(_, e)| excess > e) {
            worst = Some((i, excess));
        }
    }
    if let Some((i, _)) = worst {
        panic!(
            "{what}: element {i} is {} but the CPU gives {} (tolerance {atol:e} + {rtol:e}·|want|)",
            got[i], want[i]
        );
    }
}

/// Bit-for-bit equality (for ops whose roundings are the same on both backends).
pub fn assert_bits(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a.to_bits() != b.to_bits()) {
        panic!("{what}: element {i} is {} but the CPU gives {}", got[i], want[i]);
    }
}

/// Every element within `units`·ε·`magnitude[i]` of `want` (ε = f32::EPSILON) and finite, where
/// `magnitude[i]` is Σ|terms| of element i's sum (the same op on |inputs|): the rounding error of
/// a sum scales with its terms, not with its result, which may cancel to nearly 0.
pub fn assert_close_to_magnitude(what: &str, got: &[f32], want: &[f32], magnitude: &[f32], units: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    assert_eq!(got.len(), magnitude.len(), "{what}: magnitude length");
    for (i, ((&g, &w), &m)) in got.iter().zip(want).zip(magnitude).enumerate() {
        assert!(g.is_finite(), "{what}: element {i} is {g} (want {w})");
        let limit = units * f32::EPSILON * m;
        assert!(
            (g - w).abs() <= limit,
            "{what}: element {i} is {g} but the CPU gives {w} (tolerance {units}·ε·{m} = {limit:e})"
        );
    }
}

/// |x| element-wise.
pub fn abs(x: &[f32]) -> Vec<f32> {
    x.iter().map(|v| v.abs()).collect()
}

/// The first failure the backend recorded, as text (panics if every op succeeded).
pub fn failure(be: &CudaBackend) -> String {
    match be.check() {
        Ok(()) => panic!("the op was expected to fail"),
        Err(e) => e.to_string(),
    }
}
