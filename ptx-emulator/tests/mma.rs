//! Warp-level mma against a naive matrix product. Matrices are scattered into fragments through
//! the ISA's layouts written here per element ("element (row, col) lives in lane L, register R,
//! half H"), a formulation independent of the implementation's per-lane loops.

use ptx_emulator::exec::mma::*;
use ptx_emulator::exec::numerics::CANONICAL_NAN_F32;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// An f32 of random sign and fraction, exponent within 2^±12 (so that sums round).
    fn f32(&mut self) -> f32 {
        let bits = (self.next() as u32 & 0x807f_ffff) | ((127 - 12 + self.below(25) as u32) << 23);
        match self.below(16) {
            0 => 0.0,
            _ => f32::from_bits(bits),
        }
    }
}

/// The accumulation rule: from C, in f64, ascending k, rounded once to f32 (NaN canonical).
fn naive(a: &[Vec<f32>], b: &[Vec<f32>], c: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let k = b.len();
    (0..16)
        .map(|i| {
            (0..8)
                .map(|j| {
                    let mut acc = c[i][j] as f64;
                    for kk in 0..k {
                        acc += a[i][kk] as f64 * b[kk][j] as f64;
                    }
                    let d = acc as f32;
                    if d.is_nan() {
                        f32::from_bits(CANONICAL_NAN_F32)
                    } else {
                        d
                    }
                })
                .collect()
        })
        .collect()
}

/// C/D (16×8, `.f32`, Figures 77/83): element (r, n) is in lane `4·(r%8) + n/2`, register
/// `2·(r/8) + n%2`.
fn c_place(r: usize, n: usize) -> (usize, usize) {
    (4 * (r % 8) + n / 2, 2 * (r / 8) + n % 2)
}

fn scatter_c(c: &[Vec<f32>]) -> [[f32; 4]; 32] {
    let mut f = [[0f32; 4]; 32];
    for (r, row) in c.iter().enumerate() {
        for (n, &x) in row.iter().enumerate() {
            let (lane, reg) = c_place(r, n);
            f[lane][reg] = x;
        }
    }
    f
}

fn gather_d(d: &[[f32; 4]; 32]) -> Vec<Vec<f32>> {
    (0..16)
        .map(|r| {
            (0..8)
                .map(|n| {
                    let (lane, reg) = c_place(r, n);
                    d[lane][reg]
                })
                .collect()
        })
        .collect()
}

fn rand_matrix(rng: &mut Rng, rows: usize, cols: usize, f: impl Fn(&mut Rng) -> f32) -> Vec<Vec<f32>> {
    (0..rows).map(|_| (0..cols).map(|_| f(rng)).collect()).collect()
}

fn assert_bits_eq(got: &[Vec<f32>], want: &[Vec<f32>], what: &str) {
    for r in 0..16 {
        for n in 0..8 {
            assert_eq!(
                got[r][n].to_bits(),
                want[r][n].to_bits(),
                "{what}: D[{r}][{n}] {} vs {}",
                got[r][n],
                want[r][n]
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// m16n8k8 .tf32 (9.7.14.5.7)
// ---------------------------------------------------------------------------------------------

/// A (16×8 `.tf32`, Figure 72): element (r, k) is in lane `4·(r%8) + k%4`, register
/// `r/8 + 2·(k/4)`.
fn scatter_a_tf32(a: &[Vec<u32>]) -> [[u32; 4]; 32] {
    let mut f = [[0u32; 4]; 32];
    for r in 0..16 {
        for k in 0..8 {
            f[4 * (r % 8) + k % 4][r / 8 + 2 * (k / 4)] = a[r][k];
        }
    }
    f
}

/// B (8×8 `.tf32`, Figure 75): element (k, n) is in lane `4·n + k%4`, register `k/4`.
fn scatter_b_tf32(b: &[Vec<u32>]) -> [[u32; 2]; 32] {
    let mut f = [[0u32; 2]; 32];
    for k in 0..8 {
        for n in 0..8 {
            f[4 * n + k % 4][k / 4] = b[k][n];
        }
    }
    f
}

fn tf32_value(bits: u32) -> f32 {
    f32::from_bits(bits & 0xffff_e000)
}

fn run_tf32(a: &[Vec<u32>], b: &[Vec<u32>], c: &[Vec<f32>]) -> Vec<Vec<f32>> {
    gather_d(&mma_m16n8k8_tf32(&scatter_a_tf32(a), &scatter_b_tf32(b), &scatter_c(c)))
}

fn to_values(m: &[Vec<u32>], f: impl Fn(u32) -> f32) -> Vec<Vec<f32>> {
    m.iter().map(|row| row.iter().map(|&x| f(x)).collect()).collect()
}

#[test]
fn m16n8k8_tf32_matches_naive_product() {
    let mut rng = Rng(11);
    for _ in 0..300 {
        let a: Vec<Vec<u32>> = (0..16)
            .map(|_| (0..8).map(|_| rng.f32().to_bits() & 0xffff_e000).collect())
            .collect();
        let b: Vec<Vec<u32>> = (0..8)
            .map(|_| (0..8).map(|_| rng.f32().to_bits() & 0xffff_e000).collect())
            .collect();
        let c = rand_matrix(&mut rng, 16, 8, |r| r.f32());
        let want = naive(&to_values(&a, tf32_value), &to_values(&b, tf32_value), &c);
        assert_bits_eq(&run_tf32(&a, &b, &c), &want, "tf32");
    }
}

#[test]
fn tf32_low_13_bits_are_ignored() {
    let mut rng = Rng(12);
    for _ in 0..100 {
        let a: Vec<Vec<u32>> = (0..16).map(|_| (0..8).map(|_| rng.f32().to_bits()).collect()).collect();
        let b: Vec<Vec<u32>> = (0..8).map(|_| (0..8).map(|_| rng.f32().to_bits()).collect()).collect();
        let c = rand_matrix(&mut rng, 16, 8, |r| r.f32());
        let clean = |m: &[Vec<u32>]| -> Vec<Vec<u32>> {
            m.iter().map(|r| r.iter().map(|x| x & 0xffff_e000).collect()).collect()
        };
        let junk = |m: &[Vec<u32>], rng: &mut Rng| -> Vec<Vec<u32>> {
            m.iter()
                .map(|r| {
                    r.iter()
                        .map(|x| (x & 0xffff_e000) | (rng.next() as u32 & 0x1fff))
                        .collect()
                })
                .collect()
        };
        let want = run_tf32(&clean(&a), &clean(&b), &c);
        assert_bits_eq(
            &run_tf32(&junk(&a, &mut rng), &junk(&b, &mut rng), &c),
            &want,
            "tf32 junk",
        );
        assert_bits_eq(
            &want,
            &naive(&to_values(&a, tf32_value), &to_values(&b, tf32_value), &c),
            "tf32 clean",
        );
    }
    // 1 + 2^-11 is not a tf32 value: it reads as 1.
    let mut a = vec![vec![0u32; 8]; 16];
    let mut b = vec![vec![0u32; 8]; 8];
    a[3][5] = (1.0f32 + 2f32.powi(-11)).to_bits();
    b[5][6] = (1.0f32 + 2f32.powi(-12)).to_bits();
    let d = run_tf32(&a, &b, &vec![vec![0.0; 8]; 16]);
    assert_eq!(d[3][6], 1.0);
}

#[test]
fn accumulation_order_is_ascending_k_from_c_in_f64() {
    // C = 1, then +2^60, then -2^60: in f64, 1 + 2^60 rounds to 2^60, so D = 0 (summing the
    // products first would give 1).
    let mut a = vec![vec![0u32; 8]; 16];
    let mut b = vec![vec![0u32; 8]; 8];
    let mut c = vec![vec![0f32; 8]; 16];
    a[0][0] = 2f32.powi(30).to_bits();
    a[0][1] = (-(2f32.powi(30))).to_bits();
    b[0][0] = 2f32.powi(30).to_bits();
    b[1][0] = 2f32.powi(30).to_bits();
    c[0][0] = 1.0;
    // D[1][1] = 2^-30 + 1 + 2^-30: exact in f64, and in f32.
    c[1][1] = 2f32.powi(-30);
    a[1][2] = 1f32.to_bits();
    b[2][1] = 1f32.to_bits();
    a[1][3] = 2f32.powi(-30).to_bits();
    b[3][1] = 1f32.to_bits();
    let d = run_tf32(&a, &b, &c);
    assert_eq!(d[0][0], 0.0);
    assert_eq!(d[1][1], 1.0 + 2f32.powi(-29));
}

#[test]
fn nan_and_infinity_propagate() {
    let mut a = vec![vec![0u32; 8]; 16];
    let mut b = vec![vec![0u32; 8]; 8];
    let mut c = vec![vec![1f32; 8]; 16];
    a[2][4] = f32::INFINITY.to_bits();
    b[4][1] = 2f32.to_bits();
    b[4][2] = 0f32.to_bits(); // inf · 0 = NaN
    c[5][7] = f32::NAN;
    let d = run_tf32(&a, &b, &c);
    assert_eq!(d[2][1], f32::INFINITY);
    assert_eq!(d[2][2].to_bits(), CANONICAL_NAN_F32);
    assert_eq!(d[5][7].to_bits(), CANONICAL_NAN_F32);
    assert_eq!(d[2][0].to_bits(), CANONICAL_NAN_F32); // inf · 0
    assert_eq!(d[3][0], 1.0);
}

// ---------------------------------------------------------------------------------------------
// m16n8k16 .bf16 (9.7.14.5.8)
// ---------------------------------------------------------------------------------------------

/// A (16×16 `.bf16`, Figure 79): element (r, k) is in lane `4·(r%8) + (k%8)/2`, register
/// `r/8 + 2·(k/8)`, half `k%2` (half 0 = bits 15:0).
fn scatter_a_bf16(a: &[Vec<u16>]) -> [[u32; 4]; 32] {
    let mut f = [[0u32; 4]; 32];
    for r in 0..16 {
        for k in 0..16 {
            f[4 * (r % 8) + (k % 8) / 2][r / 8 + 2 * (k / 8)] |= (a[r][k] as u32) << (16 * (k % 2));
        }
    }
    f
}

/// B (K×8 `.bf16`, Figures 81 and 121): element (k, n) is in lane `4·n + (k%8)/2`, register
/// `k/8`, half `k%2`.
fn scatter_b_bf16<const R: usize>(b: &[Vec<u16>]) -> [[u32; R]; 32] {
    let mut f = [[0u32; R]; 32];
    for (k, row) in b.iter().enumerate() {
        for (n, &x) in row.iter().enumerate() {
            f[4 * n + (k % 8) / 2][k / 8] |= (x as u32) << (16 * (k % 2));
        }
    }
    f
}

fn bf16_value(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

fn rand_bf16(rng: &mut Rng) -> u16 {
    (rng.f32().to_bits() >> 16) as u16
}

fn bf16_values(m: &[Vec<u16>]) -> Vec<Vec<f32>> {
    m.iter().map(|r| r.iter().map(|&h| bf16_value(h)).collect()).collect()
}

#[test]
fn m16n8k16_bf16_matches_naive_product() {
    let mut rng = Rng(13);
    for _ in 0..300 {
        let a: Vec<Vec<u16>> = (0..16)
            .map(|_| (0..16).map(|_| rand_bf16(&mut rng)).collect())
            .collect();
        let b: Vec<Vec<u16>> = (0..16).map(|_| (0..8).map(|_| rand_bf16(&mut rng)).collect()).collect();
        let c = rand_matrix(&mut rng, 16, 8, |r| r.f32());
        let d = mma_m16n8k16_bf16(&scatter_a_bf16(&a), &scatter_b_bf16::<2>(&b), &scatter_c(&c));
        assert_bits_eq(&gather_d(&d), &naive(&bf16_values(&a), &bf16_values(&b), &c), "bf16");
    }
}

#[test]
fn bf16_packing_low_half_is_the_lower_element() {
    // Lane 0, A register 0 = 0x4000_3f80: a0 = 1.0 (bits 15:0) at (0, 0), a1 = 2.0 at (0, 1).
    let mut a = [[0u32; 4]; 32];
    a[0][0] = 0x4000_3f80;
    // B = identity on rows 0, 1: (0, 0) is lane 0 register 0 low half; (1, 1) lane 4 register 0
    // high half.
    let mut b = [[0u32; 2]; 32];
    b[0][0] = 0x0000_3f80;
    b[4][0] = 0x3f80_0000;
    let d = mma_m16n8k16_bf16(&a, &b, &[[0.0; 4]; 32]);
    // D[0][0] is lane 0 register 0, D[0][1] lane 0 register 1.
    assert_eq!(d[0], [1.0, 2.0, 0.0, 0.0]);
    assert!(d[1..].iter().all(|r| *r == [0.0; 4]));
}

// ---------------------------------------------------------------------------------------------
// mma.sp::ordered_metadata m16n8k32 .bf16 (9.7.14.6)
// ---------------------------------------------------------------------------------------------

/// A 2:4-sparse 16×32 A: its dense values and, per (row, chunk), the two kept positions.
struct Sparse {
    dense: Vec<Vec<u16>>,
    kept: Vec<Vec<(usize, usize)>>,
}

fn rand_sparse(rng: &mut Rng) -> Sparse {
    const PAIRS: [(usize, usize); 6] = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)];
    let mut dense = vec![vec![0u16; 32]; 16];
    let mut kept = vec![vec![(0, 0); 8]; 16];
    for r in 0..16 {
        for ch in 0..8 {
            let (i0, i1) = PAIRS[rng.below(6) as usize];
            kept[r][ch] = (i0, i1);
            dense[r][4 * ch + i0] = rand_bf16(rng);
            dense[r][4 * ch + i1] = rand_bf16(rng);
        }
    }
    Sparse { dense, kept }
}

/// The sparse A fragments (Figure 120: the chunk at columns 4c.. of row r is in lane
/// `4·(r%8) + c%4`, register `r/8 + 2·(c/4)`, its first nonzero in bits 15:0) and the metadata
/// for `selector` (Figure 122: lane `4·(r%8) + 2·selector + c/4`, bits `16·(r/8) + 4·(c%4)`,
/// nibble `i1 << 2 | i0`). Lanes that give no metadata hold `junk`.
fn scatter_sparse(s: &Sparse, selector: usize, junk: u32) -> ([[u32; 4]; 32], [u32; 32]) {
    let mut a = [[0u32; 4]; 32];
    let mut e = [junk; 32];
    for (lane, meta) in e.iter_mut().enumerate() {
        if lane % 4 / 2 == selector {
            *meta = 0;
        }
    }
    for r in 0..16 {
        for ch in 0..8 {
            let (i0, i1) = s.kept[r][ch];
            let lo = s.dense[r][4 * ch + i0] as u32;
            let hi = s.dense[r][4 * ch + i1] as u32;
            a[4 * (r % 8) + ch % 4][r / 8 + 2 * (ch / 4)] = hi << 16 | lo;
            e[4 * (r % 8) + 2 * selector + ch / 4] |= ((i1 << 2 | i0) as u32) << (16 * (r / 8) + 4 * (ch % 4));
        }
    }
    (a, e)
}

#[test]
fn sparse_m16n8k32_matches_dense_product() {
    let mut rng = Rng(14);
    for trial in 0..300 {
        let s = rand_sparse(&mut rng);
        let b: Vec<Vec<u16>> = (0..32).map(|_| (0..8).map(|_| rand_bf16(&mut rng)).collect()).collect();
        let c = rand_matrix(&mut rng, 16, 8, |r| r.f32());
        let selector = trial % 2;
        // Lanes that give no metadata hold values that would be invalid, and are ignored.
        let (a, e) = scatter_sparse(&s, selector, 0x5555_5555);
        let d = mma_sp_m16n8k32_bf16(&a, &scatter_b_bf16::<4>(&b), &scatter_c(&c), &e, selector as u32).unwrap();
        let want = naive(&bf16_values(&s.dense), &bf16_values(&b), &c);
        assert_bits_eq(&gather_d(&d), &want, "sparse bf16");
    }
}

#[test]
fn sparse_rejects_bad_selector_and_metadata() {
    let mut rng = Rng(15);
    let s = rand_sparse(&mut rng);
    let b = [[0u32; 4]; 32];
    let c = [[0f32; 4]; 32];
    let (a, e) = scatter_sparse(&s, 0, 0);
    assert!(mma_sp_m16n8k32_bf16(&a, &b, &c, &e, 0).is_ok());
    for sel in [2, 3, 0xffff_ffff] {
        let err = mma_sp_m16n8k32_bf16(&a, &b, &c, &e, sel).unwrap_err();
        assert_eq!(err, MmaError::SparsitySelector(sel));
        assert!(err.to_string().contains("selector"));
    }
    // Equal or decreasing index pairs in a lane the selector names (here lane 9 = group 2, T1:
    // row 2 bits 15:0 / row 10 bits 31:16, chunks 4..7).
    for bad in [
        0b0000u32, 0b0101, 0b1010, 0b1111, 0b0001, 0b0010, 0b0011, 0b0110, 0b0111, 0b1011,
    ] {
        for nibble in [0u32, 3, 4, 7] {
            let mut e2 = e;
            e2[9] = (e2[9] & !(0xf << (4 * nibble))) | bad << (4 * nibble);
            let err = mma_sp_m16n8k32_bf16(&a, &b, &c, &e2, 0).unwrap_err();
            assert_eq!(
                err,
                MmaError::Metadata {
                    lane: 9,
                    nibble,
                    value: bad
                },
                "{bad:#06b} at {nibble}"
            );
            assert!(err.to_string().contains("ordered_metadata"));
        }
    }
    // The same metadata in a lane the selector does not name is ignored.
    let mut e3 = e;
    e3[10] = 0;
    assert!(mma_sp_m16n8k32_bf16(&a, &b, &c, &e3, 0).is_ok());
    // ...but read with selector 1 (threads T2, T3), that lane's metadata is checked.
    let (a1, e1) = scatter_sparse(&s, 1, 0);
    let mut e4 = e1;
    e4[10] &= !0xf;
    assert_eq!(
        mma_sp_m16n8k32_bf16(&a1, &b, &c, &e4, 1).unwrap_err(),
        MmaError::Metadata {
            lane: 10,
            nibble: 0,
            value: 0
        }
    );
}
