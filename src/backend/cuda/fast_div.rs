//! Division by a run-time invariant divisor as a multiply-high and shifts (Granlund & Montgomery,
//! "Division by invariant integers using multiplication", 1994, fig. 4.1): the host computes the
//! constants once per launch, the kernels divide with `div_fast` (`cuda/temporal_conv.cu`).

use cudarc::driver::DeviceRepr;

/// `struct FastDiv` of temporal_conv.cu: `q = (t + ((n − t) >> s1)) >> s2` with `t = mulhi(n, m)`
/// equals `n / d` for every `n < 2³²`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FastDiv {
    m: u32,
    s1: u32,
    s2: u32,
}
// SAFETY: plain old data with the layout of the kernel's struct.
unsafe impl DeviceRepr for FastDiv {}

impl FastDiv {
    /// The constants for divisor `d`; `d = 0` is a caller's bug (the launchers validate shapes first).
    pub fn new(d: u32) -> Self {
        assert!(d >= 1, "FastDiv needs a divisor of at least 1");
        // l = ceil(log2 d), m = floor(2^32·(2^l − d)/d) + 1 (< 2^32 because 2^l < 2d)
        let l = 32 - (d - 1).leading_zeros();
        let m = ((1u64 << 32) * ((1u64 << l) - d as u64) / d as u64 + 1) as u32;
        Self {
            m,
            s1: l.min(1),
            s2: l.saturating_sub(1),
        }
    }

    /// What the kernels compute, for checking the constants here.
    #[cfg(test)]
    fn div(&self, n: u32) -> u32 {
        let t = ((n as u64 * self.m as u64) >> 32) as u32;
        (t + ((n - t) >> self.s1)) >> self.s2
    }
}

#[cfg(test)]
mod tests {
    use super::FastDiv;

    #[test]
    fn quotients_are_exact() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng as u32
        };
        let divisors = (1..=3000u32).chain([
            25 * 100,
            25 * 50,
            65_535,
            65_537,
            1 << 20,
            (1 << 31) - 1,
            1 << 31,
            u32::MAX,
        ]);
        for d in divisors {
            let f = FastDiv::new(d);
            let edges = [0, 1, d - 1, d, d.wrapping_add(1), (1 << 31) - 1, u32::MAX, u32::MAX - 1];
            for n in edges.into_iter().chain((0..200).map(|_| next())) {
                assert_eq!(f.div(n), n / d, "{n} / {d}");
                if let Some(below) = (n / d).checked_mul(d).and_then(|q| q.checked_sub(1)) {
                    assert_eq!(f.div(below), below / d, "{below} / {d}");
                }
            }
        }
    }
}
