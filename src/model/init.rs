//! Parameter initialisation with PyTorch's default distributions, from our own seeded generator
//! (so a model is reproducible from its seed on every platform; the values are not PyTorch's).

/// A small seeded generator: SplitMix64 for the bits, Box-Muller for normals.
#[derive(Clone, Debug)]
pub struct InitRng {
    state: u64,
    spare_normal: Option<f64>,
}

impl InitRng {
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed ^ 0x005E_ED0F_1EA6_C0DE,
            spare_normal: None,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (2.0 * std::f64::consts::PI * u2).sin_cos();
        self.spare_normal = Some(r * s);
        r * c
    }

    /// `len` values from U(-bound, bound): PyTorch's default Conv2d/Linear weight and bias init uses
    /// `bound = 1/sqrt(fan_in)` (kaiming_uniform with a = √5 gives the same bound for weights).
    pub fn uniform_vec(&mut self, len: usize, bound: f64) -> Vec<f64> {
        (0..len).map(|_| (2.0 * self.uniform() - 1.0) * bound).collect()
    }

    /// `len` values from N(0, std²).
    pub fn normal_vec(&mut self, len: usize, std: f64) -> Vec<f64> {
        (0..len).map(|_| self.normal() * std).collect()
    }
}
