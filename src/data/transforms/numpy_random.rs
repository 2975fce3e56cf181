//! NumPy's legacy `RandomState` (MT19937) for the draws PYSKL's samplers make, bit for bit:
//! `seed(int)`, `random_sample`, `randint` (masked rejection) and `permutation` /
//! `choice(replace=False)`.

const N: usize = 624;
const M: usize = 397;

/// The legacy MT19937 generator with NumPy's draw methods.
#[derive(Clone)]
pub struct NumpyRandomState {
    key: [u32; N],
    pos: usize,
}

impl NumpyRandomState {
    /// `np.random.seed(seed)` for an integer seed (`init_genrand`).
    pub fn new(seed: u32) -> NumpyRandomState {
        let mut key = [0u32; N];
        let mut s = seed;
        for (i, k) in key.iter_mut().enumerate() {
            *k = s;
            s = 1812433253u32.wrapping_mul(s ^ (s >> 30)).wrapping_add(i as u32 + 1);
        }
        NumpyRandomState { key, pos: N }
    }

    fn generate(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        const MATRIX_A: u32 = 0x9908_b0df;
        for i in 0..N {
            let y = (self.key[i] & UPPER) | (self.key[(i + 1) % N] & LOWER);
            let mag = if y & 1 == 1 { MATRIX_A } else { 0 };
            self.key[i] = self.key[(i + M) % N] ^ (y >> 1) ^ mag;
        }
        self.pos = 0;
    }

    /// `genrand_int32`.
    pub fn next_u32(&mut self) -> u32 {
        if self.pos == N {
            self.generate();
        }
        let mut y = self.key[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `random_sample()` / `rand()`: 53-bit uniform in [0, 1).
    pub fn random_sample(&mut self) -> f64 {
        let a = (self.next_u32() >> 5) as f64;
        let b = (self.next_u32() >> 6) as f64;
        (a * 67108864.0 + b) / 9007199254740992.0
    }

    /// A uniform integer in `[0, max]` by masked rejection (`random_interval` and
    /// `buffered_bounded_masked_uint32`, which agree for 32-bit ranges). `max == 0` draws nothing.
    pub fn interval(&mut self, max: u32) -> u32 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        for shift in [1, 2, 4, 8, 16] {
            mask |= mask >> shift;
        }
        loop {
            let v = self.next_u32() & mask;
            if v <= max {
                return v;
            }
        }
    }

    /// `randint(low, high)`: uniform in `[low, high)`; `high > low` is required.
    pub fn randint(&mut self, low: i64, high: i64) -> i64 {
        assert!(high > low, "randint: empty range");
        let range = u32::try_from(high - 1 - low).expect("randint range fits in 32 bits");
        low + self.interval(range) as i64
    }

    /// `permutation(n)`: Fisher–Yates over `arange(n)` from the end, as legacy `shuffle` does.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut a: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.interval(i as u32) as usize;
            a.swap(i, j);
        }
        a
    }

    /// `choice(n, k, replace=False)` without probabilities: `permutation(n)[:k]`.
    pub fn choice_without_replacement(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut p = self.permutation(n);
        p.truncate(k);
        p
    }
}
