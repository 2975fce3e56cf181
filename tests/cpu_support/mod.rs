//! Helpers shared by the CPU backend tests: a seeded random source, tolerance checks and a
//! central-difference gradient check.

#![allow(dead_code)] // each test crate uses a different subset

/// SplitMix64: a small seeded generator, so the tests need no extra dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
    pub fn vec(&mut self, len: usize) -> Vec<f64> {
        (0..len).map(|_| self.uniform()).collect()
    }
    /// Uniform in [-1, 1) but at least `gap` away from zero (for ReLU's kink).
    pub fn vec_away_from_zero(&mut self, len: usize, gap: f64) -> Vec<f64> {
        (0..len)
            .map(|_| {
                let u = self.uniform();
                u.signum() * (gap + (1.0 - gap) * u.abs())
            })
            .collect()
    }
    pub fn below(&mut self, bound: u32) -> u32 {
        (self.next_u64() % u64::from(bound)) as u32
    }
}

pub fn to_f32(x: &[f64]) -> Vec<f32> {
    x.iter().map(|&v| v as f32).collect()
}

/// `max|a - b| / max|b|` (the golden-vector convention); 0 for two all-zero tensors.
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "compared tensors differ in length");
    let diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    let scale = b.iter().map(|y| y.abs()).fold(0.0, f64::max);
    if diff == 0.0 {
        0.0
    } else {
        diff / scale
    }
}

pub fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    let err = rel_err(got, want);
    assert!(err <= tol, "{what}: relative error {err:e} exceeds {tol:e}");
    assert!(got.iter().all(|v| v.is_finite()), "{what}: non-finite output");
}

/// `Σ r ⊙ y`
pub fn dot(r: &[f64], y: &[f64]) -> f64 {
    assert_eq!(r.len(), y.len());
    r.iter().zip(y).map(|(a, b)| a * b).sum()
}

/// Step of the central differences.
pub const FD_STEP: f64 = 1e-6;
/// Relative tolerance of a finite-difference gradient check.
pub const FD_TOL: f64 = 1e-7;

/// Checks `analytic` against central differences of `loss` with respect to `inputs[which]`.
pub fn assert_gradient(
    what: &str,
    inputs: &mut [Vec<f64>],
    which: usize,
    analytic: &[f64],
    loss: impl Fn(&[Vec<f64>]) -> f64,
) {
    assert_eq!(inputs[which].len(), analytic.len(), "{what}: gradient length");
    let mut numeric = vec![0.0; analytic.len()];
    for (i, num) in numeric.iter_mut().enumerate() {
        let orig = inputs[which][i];
        inputs[which][i] = orig + FD_STEP;
        let plus = loss(inputs);
        inputs[which][i] = orig - FD_STEP;
        let minus = loss(inputs);
        inputs[which][i] = orig;
        *num = (plus - minus) / (2.0 * FD_STEP);
    }
    assert!(
        analytic.iter().any(|&g| g != 0.0),
        "{what}: the analytic gradient is all zero, the check would be vacuous"
    );
    assert_close(what, analytic, &numeric, FD_TOL);
}
