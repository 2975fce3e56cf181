//! Known answers for the scalar instruction semantics, written from the PTX ISA text, and the
//! directed rounding modes checked against an exact reference on edge cases and random inputs.

use std::cmp::Ordering;

use ptx_emulator::exec::numerics::*;

// ---------------------------------------------------------------------------------------------
// Test helpers: a random generator and an exact reference
// ---------------------------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A signed big integer: magnitude in little-endian 64-bit limbs, no high zero limbs.
#[derive(Clone, Debug)]
struct Big {
    neg: bool,
    mag: Vec<u64>,
}

fn trim(v: &mut Vec<u64>) {
    while v.last() == Some(&0) {
        v.pop();
    }
}

fn cmp_mag(a: &[u64], b: &[u64]) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.iter().rev().cmp(b.iter().rev()))
}

fn add_mag(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(a.len().max(b.len()) + 1);
    let mut carry = 0u128;
    for i in 0..a.len().max(b.len()) {
        let s = *a.get(i).unwrap_or(&0) as u128 + *b.get(i).unwrap_or(&0) as u128 + carry;
        out.push(s as u64);
        carry = s >> 64;
    }
    out.push(carry as u64);
    trim(&mut out);
    out
}

/// `a - b` for `a >= b`.
fn sub_mag(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(a.len());
    let mut borrow = 0i128;
    for (i, &x) in a.iter().enumerate() {
        let mut d = x as i128 - *b.get(i).unwrap_or(&0) as i128 - borrow;
        borrow = 0;
        if d < 0 {
            d += 1 << 64;
            borrow = 1;
        }
        out.push(d as u64);
    }
    trim(&mut out);
    out
}

impl Big {
    /// `±m · 2^shift`.
    fn term(neg: bool, m: u128, shift: u32) -> Big {
        let mut mag = vec![0u64; (shift / 64) as usize];
        let s = shift % 64;
        let lo = m << s;
        let hi = if s == 0 { 0 } else { m >> (128 - s) };
        mag.extend([lo as u64, (lo >> 64) as u64, hi as u64]);
        trim(&mut mag);
        Big { neg, mag }
    }
    fn add(self, o: Big) -> Big {
        if self.neg == o.neg {
            return Big {
                neg: self.neg,
                mag: add_mag(&self.mag, &o.mag),
            };
        }
        match cmp_mag(&self.mag, &o.mag) {
            Ordering::Less => Big {
                neg: o.neg,
                mag: sub_mag(&o.mag, &self.mag),
            },
            _ => Big {
                neg: self.neg,
                mag: sub_mag(&self.mag, &o.mag),
            },
        }
    }
    fn sign(&self) -> Ordering {
        if self.mag.is_empty() {
            Ordering::Equal
        } else if self.neg {
            Ordering::Less
        } else {
            Ordering::Greater
        }
    }
}

/// A finite float as `±m · 2^e` (exact).
fn parts(x: f64) -> (bool, u128, i32) {
    let b = x.to_bits();
    let e = ((b >> 52) & 0x7ff) as i32;
    let m = b & ((1 << 52) - 1);
    let neg = b >> 63 == 1;
    if e == 0 {
        (neg, m as u128, -1074)
    } else {
        (neg, (m | 1 << 52) as u128, e - 1075)
    }
}

/// A product of two finite floats as a term.
fn prod(x: f64, y: f64) -> (bool, u128, i32) {
    let (n1, m1, e1) = parts(x);
    let (n2, m2, e2) = parts(y);
    (n1 ^ n2, m1 * m2, e1 + e2)
}

fn neg((n, m, e): (bool, u128, i32)) -> (bool, u128, i32) {
    (!n, m, e)
}

/// The sign of the exact sum of terms.
fn sign_of(terms: &[(bool, u128, i32)]) -> Ordering {
    let base = terms.iter().map(|t| t.2).min().unwrap();
    terms
        .iter()
        .fold(
            Big {
                neg: false,
                mag: vec![],
            },
            |acc, &(n, m, e)| acc.add(Big::term(n, m, (e - base) as u32)),
        )
        .sign()
}

/// A float type under test.
trait Tf: Copy + PartialEq + std::fmt::Debug {
    const MAX: Self;
    const INF: Self;
    fn to64(self) -> f64;
    fn up(self) -> Self;
    fn down(self) -> Self;
    fn neg_(self) -> Self;
    fn bits(self) -> u64;
    fn zero(neg: bool) -> Self;
}

impl Tf for f32 {
    const MAX: f32 = f32::MAX;
    const INF: f32 = f32::INFINITY;
    fn to64(self) -> f64 {
        self as f64
    }
    fn up(self) -> f32 {
        self.next_up()
    }
    fn down(self) -> f32 {
        self.next_down()
    }
    fn neg_(self) -> f32 {
        -self
    }
    fn bits(self) -> u64 {
        self.to_bits() as u64
    }
    fn zero(neg: bool) -> f32 {
        if neg {
            -0.0
        } else {
            0.0
        }
    }
}

impl Tf for f64 {
    const MAX: f64 = f64::MAX;
    const INF: f64 = f64::INFINITY;
    fn to64(self) -> f64 {
        self
    }
    fn up(self) -> f64 {
        self.next_up()
    }
    fn down(self) -> f64 {
        self.next_down()
    }
    fn neg_(self) -> f64 {
        -self
    }
    fn bits(self) -> u64 {
        self.to_bits()
    }
    fn zero(neg: bool) -> f64 {
        if neg {
            -0.0
        } else {
            0.0
        }
    }
}

/// The correctly rounded result under `mode` of an exact value `x`, from the host's
/// round-to-nearest result `rn` of the same operation and `sign(x - rn)` (`None` when `rn`
/// overflowed). Zero results take their sign from `rn`, except `zero_rm` (the sign of an exact
/// zero sum under `.rm`).
fn reference<T: Tf>(rn: T, diff: Option<Ordering>, mode: Rounding, zero_rm: Option<bool>) -> T {
    let x_neg = rn.to64().is_sign_negative();
    let Some(diff) = diff else {
        // Overflow: |x| beyond the largest finite value.
        let (max, inf) = if x_neg {
            (T::MAX.neg_(), T::INF.neg_())
        } else {
            (T::MAX, T::INF)
        };
        return match mode {
            Rounding::Rn | Rounding::Rna => inf,
            Rounding::Rz => max,
            Rounding::Rp => {
                if x_neg {
                    max
                } else {
                    inf
                }
            }
            Rounding::Rm => {
                if x_neg {
                    inf
                } else {
                    max
                }
            }
        };
    };
    if diff == Ordering::Equal && rn.to64() == 0.0 {
        if let (Rounding::Rm, Some(z)) = (mode, zero_rm) {
            return T::zero(z);
        }
        return rn;
    }
    let up = if diff == Ordering::Greater { rn.up() } else { rn };
    let down = if diff == Ordering::Less { rn.down() } else { rn };
    match mode {
        Rounding::Rn | Rounding::Rna => rn,
        Rounding::Rp => up,
        Rounding::Rm => down,
        Rounding::Rz => {
            if x_neg {
                up
            } else {
                down
            }
        }
    }
}

fn same<T: Tf>(got: T, want: T) -> bool {
    got.bits() == want.bits() || (got.to64().is_nan() && want.to64().is_nan())
}

/// Random finite floats of every exponent, and pairs built for cancellation and near-overflow.
fn rand_f64(rng: &mut Rng) -> f64 {
    loop {
        let x = match rng.below(4) {
            0 => f64::from_bits(rng.next()),
            // Moderate exponents, where most arithmetic happens.
            1 => f64::from_bits((rng.next() & 0x800f_ffff_ffff_ffff) | ((1023 - 40 + rng.below(80)) << 52)),
            // Tiny and huge exponents.
            2 => f64::from_bits((rng.next() & 0x800f_ffff_ffff_ffff) | (rng.below(60) << 52)),
            _ => f64::from_bits((rng.next() & 0x800f_ffff_ffff_ffff) | ((2046 - rng.below(60)) << 52)),
        };
        if x.is_finite() {
            return x;
        }
    }
}

fn rand_f32(rng: &mut Rng) -> f32 {
    loop {
        let x = match rng.below(4) {
            0 => f32::from_bits(rng.next() as u32),
            1 => f32::from_bits((rng.next() as u32 & 0x807f_ffff) | ((127 - 20 + rng.below(40) as u32) << 23)),
            2 => f32::from_bits((rng.next() as u32 & 0x807f_ffff) | ((rng.below(30) as u32) << 23)),
            _ => f32::from_bits((rng.next() as u32 & 0x807f_ffff) | ((254 - rng.below(30) as u32) << 23)),
        };
        if x.is_finite() {
            return x;
        }
    }
}

/// A value close to `-x` (for cancellation) or to `x`.
fn near_f64(rng: &mut Rng, x: f64) -> f64 {
    let k = rng.below(20);
    let y = f64::from_bits(x.to_bits() ^ rng.below(1 << k));
    if rng.below(2) == 0 {
        -y
    } else {
        y
    }
}

fn near_f32(rng: &mut Rng, x: f32) -> f32 {
    let k = rng.below(12);
    let y = f32::from_bits(x.to_bits() ^ rng.below(1 << k) as u32);
    if rng.below(2) == 0 {
        -y
    } else {
        y
    }
}

const DIRECTED: [Rounding; 3] = [Rounding::Rz, Rounding::Rm, Rounding::Rp];

/// Checks `op` on all modes against the reference for one operation: `rn` is the host's
/// round-to-nearest result, `diff(r)` the sign of `x - r` for a finite `r`.
fn check<T: Tf>(
    what: &str,
    inputs: &[T],
    op: impl Fn(Rounding) -> T,
    rn: T,
    diff: impl Fn(f64) -> Ordering,
    zero_rm: Option<bool>,
) {
    if rn.to64().is_nan() {
        return;
    }
    if !inputs.iter().all(|x| x.to64().is_finite()) {
        // An infinite operand gives an exact result (infinity, a zero): every mode gives it.
        for mode in DIRECTED {
            assert!(same(op(mode), rn), "{what} {inputs:?} {mode:?}");
        }
        return;
    }
    let d = if rn.to64().is_infinite() {
        None
    } else {
        Some(diff(rn.to64()))
    };
    assert!(same(op(Rounding::Rn), rn), "{what} {inputs:?} Rn");
    for mode in DIRECTED {
        let want = reference(rn, d, mode, zero_rm);
        let got = op(mode);
        assert!(
            same(got, want),
            "{what} {inputs:?} {mode:?}: got {got:?} ({:#x}), want {want:?}",
            got.bits()
        );
    }
}

/// The sign of an exact zero sum `p + q` under `.rm`: -0 unless both are +0.
fn rm_zero(p_neg: bool, q_neg: bool, p_zero: bool, q_zero: bool) -> bool {
    !p_zero || !q_zero || p_neg || q_neg
}

fn check_all_f64(a: f64, b: f64, c: f64) {
    let (pa, pb, pc) = (parts(a), parts(b), parts(c));
    check(
        "add.f64",
        &[a, b],
        |m| add_f64(a, b, m),
        a + b,
        |r| sign_of(&[pa, pb, neg(parts(r))]),
        Some(rm_zero(a.is_sign_negative(), b.is_sign_negative(), a == 0.0, b == 0.0)),
    );
    check(
        "sub.f64",
        &[a, b],
        |m| sub_f64(a, b, m),
        a - b,
        |r| sign_of(&[pa, neg(pb), neg(parts(r))]),
        Some(rm_zero(a.is_sign_negative(), !b.is_sign_negative(), a == 0.0, b == 0.0)),
    );
    check(
        "mul.f64",
        &[a, b],
        |m| mul_f64(a, b, m),
        a * b,
        |r| sign_of(&[prod(a, b), neg(parts(r))]),
        None,
    );
    let p_neg = a.is_sign_negative() ^ b.is_sign_negative();
    check(
        "fma.f64",
        &[a, b, c],
        |m| fma_f64(a, b, c, m),
        a.mul_add(b, c),
        |r| sign_of(&[prod(a, b), pc, neg(parts(r))]),
        Some(rm_zero(p_neg, c.is_sign_negative(), a == 0.0 || b == 0.0, c == 0.0)),
    );
    if b != 0.0 {
        check(
            "div.f64",
            &[a, b],
            |m| div_f64(a, b, m),
            a / b,
            |r| {
                let s = sign_of(&[pa, neg(prod(r, b))]);
                if b < 0.0 {
                    s.reverse()
                } else {
                    s
                }
            },
            None,
        );
        check(
            "rcp.f64",
            &[b],
            |m| rcp_f64(b, m),
            1.0 / b,
            |r| {
                let s = sign_of(&[(false, 1, 0), neg(prod(r, b))]);
                if b < 0.0 {
                    s.reverse()
                } else {
                    s
                }
            },
            None,
        );
    }
    let s = a.abs();
    check(
        "sqrt.f64",
        &[s],
        |m| sqrt_f64(s, m),
        s.sqrt(),
        |r| sign_of(&[parts(s), neg(prod(r, r))]),
        None,
    );
}

fn check_all_f32(a: f32, b: f32, c: f32) {
    let (a6, b6, c6) = (a as f64, b as f64, c as f64);
    let (pa, pb, pc) = (parts(a6), parts(b6), parts(c6));
    check(
        "add.f32",
        &[a, b],
        |m| add_f32(a, b, m, false, false),
        a + b,
        |r| sign_of(&[pa, pb, neg(parts(r))]),
        Some(rm_zero(a.is_sign_negative(), b.is_sign_negative(), a == 0.0, b == 0.0)),
    );
    check(
        "sub.f32",
        &[a, b],
        |m| sub_f32(a, b, m, false, false),
        a - b,
        |r| sign_of(&[pa, neg(pb), neg(parts(r))]),
        Some(rm_zero(a.is_sign_negative(), !b.is_sign_negative(), a == 0.0, b == 0.0)),
    );
    check(
        "mul.f32",
        &[a, b],
        |m| mul_f32(a, b, m, false, false),
        a * b,
        |r| sign_of(&[prod(a6, b6), neg(parts(r))]),
        None,
    );
    let p_neg = a.is_sign_negative() ^ b.is_sign_negative();
    check(
        "fma.f32",
        &[a, b, c],
        |m| fma_f32(a, b, c, m, false, false),
        a.mul_add(b, c),
        |r| sign_of(&[prod(a6, b6), pc, neg(parts(r))]),
        Some(rm_zero(p_neg, c.is_sign_negative(), a == 0.0 || b == 0.0, c == 0.0)),
    );
    if b != 0.0 {
        check(
            "div.f32",
            &[a, b],
            |m| div_f32(a, b, m, false),
            a / b,
            |r| {
                let s = sign_of(&[pa, neg(prod(r, b6))]);
                if b < 0.0 {
                    s.reverse()
                } else {
                    s
                }
            },
            None,
        );
        check(
            "rcp.f32",
            &[b],
            |m| rcp_f32(b, m, false),
            1.0 / b,
            |r| {
                let s = sign_of(&[(false, 1, 0), neg(prod(r, b6))]);
                if b < 0.0 {
                    s.reverse()
                } else {
                    s
                }
            },
            None,
        );
    }
    let s = a.abs();
    check(
        "sqrt.f32",
        &[s],
        |m| sqrt_f32(s, m, false),
        s.sqrt(),
        |r| sign_of(&[parts(s as f64), neg(prod(r, r))]),
        None,
    );
}

// ---------------------------------------------------------------------------------------------
// Directed rounding of add, sub, mul, fma, div, rcp, sqrt (9.7.3)
// ---------------------------------------------------------------------------------------------

#[test]
fn directed_f64_edge_cases() {
    let tiny = f64::from_bits(1);
    let min_normal = f64::MIN_POSITIVE;
    let vals = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        3.0,
        0.1,
        tiny,
        -tiny,
        min_normal,
        min_normal.next_down(),
        f64::MAX,
        -f64::MAX,
        f64::MAX.next_down(),
        1.0 + f64::EPSILON,
        1.0 - f64::EPSILON / 2.0,
        2f64.powi(-537),
        2f64.powi(-1022) * 1.5,
        2f64.powi(1000),
        2f64.powi(-1000),
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    for &a in &vals {
        for &b in &vals {
            for &c in &vals {
                check_all_f64(a, b, c);
            }
        }
    }
}

#[test]
fn directed_f64_random() {
    let mut rng = Rng(1);
    for _ in 0..30_000 {
        let a = rand_f64(&mut rng);
        let b = if rng.below(3) == 0 {
            near_f64(&mut rng, a)
        } else {
            rand_f64(&mut rng)
        };
        let c = match rng.below(3) {
            0 => -(a * b),
            1 => near_f64(&mut rng, -(a * b)),
            _ => rand_f64(&mut rng),
        };
        check_all_f64(a, b, if c.is_finite() { c } else { 1.0 });
        // Exact roots: squares of 26-bit values.
        let r = f64::from_bits(a.to_bits() & !((1 << 27) - 1)).abs();
        let sq = r * r;
        if sq.is_normal() {
            assert_eq!(sqrt_f64(sq, Rounding::Rz), r);
            assert_eq!(sqrt_f64(sq, Rounding::Rp), r);
            assert_eq!(sqrt_f64(sq.next_up(), Rounding::Rz), r);
            assert_eq!(sqrt_f64(sq.next_up(), Rounding::Rp), r.next_up());
            assert_eq!(sqrt_f64(sq.next_down(), Rounding::Rm), r.next_down());
        }
    }
}

#[test]
fn directed_f32_edge_cases() {
    let tiny = f32::from_bits(1);
    let vals = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        3.0,
        0.1,
        tiny,
        -tiny,
        f32::MIN_POSITIVE,
        f32::MIN_POSITIVE.next_down(),
        f32::MAX,
        -f32::MAX,
        f32::MAX.next_down(),
        1.0 + f32::EPSILON,
        1.0 - f32::EPSILON / 2.0,
        2f32.powi(-70),
        2f32.powi(100),
        f32::INFINITY,
        f32::NEG_INFINITY,
    ];
    for &a in &vals {
        for &b in &vals {
            for &c in &vals {
                check_all_f32(a, b, c);
            }
        }
    }
}

#[test]
fn directed_f32_random() {
    let mut rng = Rng(2);
    for _ in 0..60_000 {
        let a = rand_f32(&mut rng);
        let b = if rng.below(3) == 0 {
            near_f32(&mut rng, a)
        } else {
            rand_f32(&mut rng)
        };
        let c = match rng.below(3) {
            0 => -(a * b),
            1 => near_f32(&mut rng, -(a * b)),
            _ => rand_f32(&mut rng),
        };
        check_all_f32(a, b, if c.is_finite() { c } else { 1.0 });
    }
}

#[test]
fn directed_known_answers() {
    let t = 2f32.powi(-30);
    assert_eq!(add_f32(1.0, t, Rounding::Rp, false, false), 1.0f32.next_up());
    assert_eq!(add_f32(1.0, t, Rounding::Rz, false, false), 1.0);
    assert_eq!(add_f32(1.0, -t, Rounding::Rz, false, false), 1.0f32.next_down());
    assert_eq!(add_f32(-1.0, -t, Rounding::Rm, false, false), -1.0f32.next_up());
    // An exact zero sum is +0, or -0 under .rm (IEEE 754 6.3).
    assert_eq!(add_f32(1.0, -1.0, Rounding::Rz, false, false).to_bits(), 0);
    assert_eq!(add_f32(1.0, -1.0, Rounding::Rm, false, false).to_bits(), 0x8000_0000);
    assert_eq!(add_f64(0.0, -0.0, Rounding::Rm).to_bits(), 1 << 63);
    assert_eq!(add_f64(-0.0, -0.0, Rounding::Rp).to_bits(), 1 << 63);
    // Overflow: toward zero gives the largest finite value.
    assert_eq!(add_f32(f32::MAX, f32::MAX, Rounding::Rz, false, false), f32::MAX);
    assert_eq!(add_f32(f32::MAX, f32::MAX, Rounding::Rm, false, false), f32::MAX);
    assert_eq!(add_f32(f32::MAX, f32::MAX, Rounding::Rp, false, false), f32::INFINITY);
    assert_eq!(mul_f64(-1e300, 1e300, Rounding::Rp), -f64::MAX);
    assert_eq!(mul_f64(-1e300, 1e300, Rounding::Rm), f64::NEG_INFINITY);
    // Underflow: a tiny positive product rounds up to the smallest subnormal.
    assert_eq!(
        mul_f32(2f32.powi(-100), 2f32.powi(-100), Rounding::Rp, false, false),
        f32::from_bits(1)
    );
    assert_eq!(
        mul_f32(2f32.powi(-100), 2f32.powi(-100), Rounding::Rz, false, false),
        0.0
    );
    assert_eq!(mul_f64(-1e-200, 1e-200, Rounding::Rm), -f64::from_bits(1));
    // fma: one rounding; (1 + 2^-23)(1 - 2^-23) - 1 = -2^-46 exactly.
    let (p, q) = (1.0 + 2f32.powi(-23), 1.0 - 2f32.powi(-23));
    assert_eq!(fma_f32(p, q, -1.0, Rounding::Rz, false, false), -2f32.powi(-46));
    // Division and square root.
    assert_eq!(div_f32(1.0, 3.0, Rounding::Rz, false).to_bits(), 0x3eaa_aaaa);
    assert_eq!(div_f32(1.0, 3.0, Rounding::Rp, false).to_bits(), 0x3eaa_aaab);
    assert_eq!(div_f32(-1.0, 3.0, Rounding::Rp, false).to_bits(), 0xbeaa_aaaa);
    assert_eq!(rcp_f64(3.0, Rounding::Rm).to_bits(), 0x3fd5_5555_5555_5555);
    assert_eq!(rcp_f64(3.0, Rounding::Rp).to_bits(), 0x3fd5_5555_5555_5556);
    assert_eq!(sqrt_f32(2.0, Rounding::Rz, false).to_bits(), 0x3fb5_04f3);
    assert_eq!(sqrt_f32(2.0, Rounding::Rp, false).to_bits(), 0x3fb5_04f4);
    assert_eq!(sqrt_f64(2.0, Rounding::Rm).to_bits(), 0x3ff6_a09e_667f_3bcc);
    assert_eq!(sqrt_f64(2.0, Rounding::Rp).to_bits(), 0x3ff6_a09e_667f_3bcd);
    assert_eq!(sqrt_f64(-0.0, Rounding::Rp).to_bits(), 1 << 63);
    assert!(sqrt_f64(-1.0, Rounding::Rz).is_nan());
}

#[test]
fn ftz_sat_and_nan() {
    let sub = f32::from_bits(0x0000_0100);
    // .ftz flushes subnormal inputs: sub + 0 would be sub.
    assert_eq!(add_f32(sub, 0.0, Rounding::Rn, true, false).to_bits(), 0);
    assert_eq!(add_f32(-sub, -0.0, Rounding::Rn, true, false).to_bits(), 0x8000_0000);
    assert_eq!(add_f32(sub, 0.0, Rounding::Rn, false, false), sub);
    // ...and subnormal results: 2^-63 * 2^-64 = 2^-127 is subnormal.
    assert_eq!(mul_f32(2f32.powi(-63), 2f32.powi(-64), Rounding::Rn, true, false), 0.0);
    assert_eq!(
        mul_f32(-(2f32.powi(-63)), 2f32.powi(-64), Rounding::Rn, true, false).to_bits(),
        0x8000_0000
    );
    assert_eq!(
        mul_f32(2f32.powi(-63), 2f32.powi(-64), Rounding::Rn, false, false),
        2f32.powi(-127)
    );
    assert_eq!(fma_f32(sub, 1e30, 1.0, Rounding::Rn, true, false), 1.0);
    assert_eq!(div_f32(1.0, sub, Rounding::Rn, true), f32::INFINITY);
    assert_eq!(sqrt_f32(-sub, Rounding::Rn, true).to_bits(), 0x8000_0000);
    // .sat clamps to [0, 1]; NaN and -0 → +0.
    assert_eq!(add_f32(0.75, 0.5, Rounding::Rn, false, true), 1.0);
    assert_eq!(add_f32(-0.75, 0.5, Rounding::Rn, false, true).to_bits(), 0);
    assert_eq!(mul_f32(-0.0, 1.0, Rounding::Rn, false, true).to_bits(), 0);
    assert_eq!(
        add_f32(f32::INFINITY, f32::NEG_INFINITY, Rounding::Rn, false, true).to_bits(),
        0
    );
    assert_eq!(fma_f32(0.25, 2.0, 0.125, Rounding::Rz, false, true), 0.625);
    // .f32 NaN results are the canonical NaN.
    assert_eq!(
        add_f32(f32::INFINITY, f32::NEG_INFINITY, Rounding::Rn, false, false).to_bits(),
        CANONICAL_NAN_F32
    );
    assert_eq!(
        mul_f32(f32::from_bits(0xffc0_1234), 1.0, Rounding::Rz, false, false).to_bits(),
        CANONICAL_NAN_F32
    );
    assert_eq!(sqrt_f32(-1.0, Rounding::Rn, false).to_bits(), CANONICAL_NAN_F32);
    // .f64 returns its first NaN operand, quieted; an invalid operation gives the default NaN.
    let (nan, snan) = (
        f64::from_bits(0xfff8_0000_0000_1234),
        f64::from_bits(0x7ff0_0000_0000_0042),
    );
    let black_box = std::hint::black_box;
    assert_eq!(add_f64(black_box(nan), 1.0, Rounding::Rn).to_bits(), nan.to_bits());
    assert_eq!(add_f64(nan, 1.0, Rounding::Rn).to_bits(), nan.to_bits());
    assert_eq!(sub_f64(1.0, nan, Rounding::Rz).to_bits(), nan.to_bits());
    assert_eq!(mul_f64(snan, nan, Rounding::Rp).to_bits(), 0x7ff8_0000_0000_0042);
    assert_eq!(fma_f64(1.0, 2.0, snan, Rounding::Rn).to_bits(), 0x7ff8_0000_0000_0042);
    assert_eq!(div_f64(0.0, 0.0, Rounding::Rn).to_bits(), DEFAULT_NAN_F64);
    assert_eq!(
        add_f64(f64::INFINITY, f64::NEG_INFINITY, Rounding::Rm).to_bits(),
        DEFAULT_NAN_F64
    );
    assert_eq!(sqrt_f64(-2.0, Rounding::Rn).to_bits(), DEFAULT_NAN_F64);
    assert_eq!(rsqrt_approx_f64(nan).to_bits(), nan.to_bits());
}

// ---------------------------------------------------------------------------------------------
// Approximate instructions (9.7.3)
// ---------------------------------------------------------------------------------------------

fn rel_err(got: f32, exact: f64) -> f64 {
    ((got as f64 - exact) / exact).abs()
}

#[test]
fn approx_special_values() {
    let inf = f32::INFINITY;
    let nan = f32::NAN;
    let bits = |x: f32| x.to_bits();
    // rcp.approx.f32 table
    assert_eq!(bits(rcp_approx_f32(-inf, false)), bits(-0.0));
    assert_eq!(rcp_approx_f32(-0.0, false), -inf);
    assert_eq!(rcp_approx_f32(0.0, false), inf);
    assert_eq!(bits(rcp_approx_f32(inf, false)), 0);
    assert_eq!(bits(rcp_approx_f32(nan, false)), CANONICAL_NAN_F32);
    // sqrt.approx table
    assert!(sqrt_approx_f32(-inf, false).is_nan());
    assert!(sqrt_approx_f32(-1.0, false).is_nan());
    assert_eq!(bits(sqrt_approx_f32(-0.0, false)), bits(-0.0));
    assert_eq!(sqrt_approx_f32(inf, false), inf);
    // rsqrt.approx table
    assert!(rsqrt_approx_f32(-inf, false).is_nan());
    assert!(rsqrt_approx_f32(-2.0, false).is_nan());
    assert_eq!(rsqrt_approx_f32(-0.0, false), -inf);
    assert_eq!(rsqrt_approx_f32(0.0, false), inf);
    assert_eq!(bits(rsqrt_approx_f32(inf, false)), 0);
    assert_eq!(rsqrt_approx_f64(-0.0), f64::NEG_INFINITY);
    assert_eq!(rsqrt_approx_f64(4.0), 0.5);
    // sin / cos tables
    assert!(sin_approx_f32(inf, false).is_nan() && sin_approx_f32(-inf, false).is_nan());
    assert_eq!(bits(sin_approx_f32(-0.0, false)), bits(-0.0));
    assert!(cos_approx_f32(inf, false).is_nan());
    assert_eq!(cos_approx_f32(-0.0, false), 1.0);
    // lg2 table
    assert!(lg2_approx_f32(-inf, false).is_nan() && lg2_approx_f32(-1.0, false).is_nan());
    assert_eq!(lg2_approx_f32(-0.0, false), -inf);
    assert_eq!(lg2_approx_f32(0.0, false), -inf);
    assert_eq!(lg2_approx_f32(inf, false), inf);
    assert_eq!(lg2_approx_f32(8.0, false), 3.0);
    // ex2 table
    assert_eq!(bits(ex2_approx_f32(-inf, false)), 0);
    assert_eq!(ex2_approx_f32(-0.0, false), 1.0);
    assert_eq!(ex2_approx_f32(inf, false), inf);
    assert_eq!(ex2_approx_f32(-3.0, false), 0.125);
    // tanh table; subnormals pass through
    assert_eq!(tanh_approx_f32(-inf), -1.0);
    assert_eq!(tanh_approx_f32(inf), 1.0);
    assert_eq!(bits(tanh_approx_f32(-0.0)), bits(-0.0));
    let sub = f32::from_bits(0x0000_0321);
    assert_eq!(tanh_approx_f32(sub), sub);
    // .ftz: subnormal inputs flush (ex2 of a flushed input is 1, lg2 of it -inf), subnormal
    // results flush (2^-130 is subnormal).
    assert_eq!(ex2_approx_f32(sub, true), 1.0);
    assert_eq!(lg2_approx_f32(sub, true), -inf);
    assert_eq!(lg2_approx_f32(sub, false), ((sub as f64).log2()) as f32);
    assert_eq!(ex2_approx_f32(-130.0, true), 0.0);
    assert_eq!(ex2_approx_f32(-130.0, false), 2f32.powi(-130));
    assert_eq!(rcp_approx_f32(2f32.powi(127), true), 0.0);
    assert_eq!(rcp_approx_f32(2f32.powi(127), false), 2f32.powi(-127));
    assert_eq!(rcp_approx_f32(-sub, true), -inf);
}

#[test]
fn approx_error_bounds() {
    let mut rng = Rng(3);
    for _ in 0..100_000 {
        let x = f32::from_bits(rng.next() as u32 & 0x7fff_ffff);
        if !x.is_finite() || x == 0.0 {
            continue;
        }
        let x6 = x as f64;
        // rcp.approx: at most 1 ulp; ours is the correctly rounded quotient.
        assert_eq!(rcp_approx_f32(x, false), 1.0 / x);
        assert_eq!(div_full_f32(3.0, x, false), 3.0 / x);
        // sqrt.approx: relative error 2^-23; rsqrt.approx: 2^-22.9.
        assert!(rel_err(sqrt_approx_f32(x, false), x6.sqrt()) <= 2f64.powi(-23));
        assert!(rel_err(rsqrt_approx_f32(x, false), 1.0 / x6.sqrt()) <= 2f64.powf(-22.9));
        // lg2.approx: absolute 2^-22 on (0.5, 2), else relative 2^-22.
        let l = lg2_approx_f32(x, false) as f64;
        if x6 > 0.5 && x6 < 2.0 {
            assert!((l - x6.log2()).abs() <= 2f64.powi(-22), "lg2 {x}");
        } else {
            assert!(((l - x6.log2()) / x6.log2()).abs() <= 2f64.powi(-22), "lg2 {x}");
        }
        // rcp/rsqrt.approx.ftz.f64 of the upper word (1.11.20), rounded to 20 fraction bits
        // (relative error 2^-21, plus the f64 rounding of the square root), low word zero.
        let w = f64::from_bits(x6.to_bits() | 0x1234_5678);
        let hi = f64::from_bits(x6.to_bits() & 0xffff_ffff_0000_0000);
        let y = rsqrt_approx_ftz_f64(w);
        assert_eq!(y.to_bits() & 0xffff_ffff, 0);
        assert!(
            ((y - 1.0 / hi.sqrt()) * hi.sqrt()).abs() <= 2f64.powf(-20.9),
            "rsqrt.ftz.f64 {x}"
        );
        let r = rcp_approx_ftz_f64(w);
        assert_eq!(r.to_bits() & 0xffff_ffff, 0);
        assert!(((r - 1.0 / hi) * hi).abs() <= 2f64.powi(-21), "rcp.ftz.f64 {x}");
    }
    for _ in 0..100_000 {
        // ex2.approx: within 2 ulp of the correctly rounded result (ours: within 1).
        let x = (rng.below(1 << 24) as f32 / (1 << 24) as f32 - 0.5) * 300.0;
        let e = ex2_approx_f32(x, false);
        let exact = (x as f64).exp2();
        if exact > f32::MAX as f64 {
            assert_eq!(e, f32::INFINITY);
        } else {
            let ulp = (exact as f32).next_up() as f64 - exact as f32 as f64;
            assert!((e as f64 - exact).abs() <= ulp, "ex2 {x}");
        }
        // sin/cos.approx: absolute error 2^-20.5 on [-2π, 2π]; tanh.approx: relative 2^-11.
        let t = x / 300.0 * 4.0 * std::f32::consts::PI;
        assert!((sin_approx_f32(t, false) as f64 - (t as f64).sin()).abs() <= 2f64.powf(-20.5));
        assert!((cos_approx_f32(t, false) as f64 - (t as f64).cos()).abs() <= 2f64.powf(-20.5));
        let h = x / 30.0;
        if h != 0.0 {
            assert!(rel_err(tanh_approx_f32(h), (h as f64).tanh()) <= 2f64.powi(-11));
        }
    }
}

#[test]
fn div_approx_large_divisor() {
    // 2^126 < |b| < 2^128: sign-preserving zero, NaN for an infinite a.
    let b = 2f32.powi(127);
    assert_eq!(div_approx_f32(1.0, b, false).to_bits(), 0);
    assert_eq!(div_approx_f32(-1e30, b, false).to_bits(), 0x8000_0000);
    assert_eq!(div_approx_f32(5.0, -b, false).to_bits(), 0x8000_0000);
    assert!(div_approx_f32(f32::INFINITY, b, false).is_nan());
    // |b| = 2^126 is still in the accurate range; so is an infinite b.
    assert_eq!(div_approx_f32(1.0, 2f32.powi(126), false), 2f32.powi(-126));
    assert_eq!(div_approx_f32(1.0, f32::INFINITY, false), 0.0);
    assert_eq!(div_approx_f32(3.0, 4.0, false), 0.75);
    assert_eq!(div_approx_f32(1.0, f32::from_bits(1), true), f32::INFINITY);
}

#[test]
fn approx_ftz_f64_forms() {
    let up = |x: f64| x.to_bits() >> 32;
    // rcp.approx.ftz.f64 table: -Inf → -0, ±subnormal → ±Inf, ±0 → ±Inf, +Inf → +0, NaN → canonical.
    assert_eq!(rcp_approx_ftz_f64(f64::NEG_INFINITY).to_bits(), 1 << 63);
    assert_eq!(rcp_approx_ftz_f64(-f64::from_bits(5 << 40)), f64::NEG_INFINITY);
    assert_eq!(rcp_approx_ftz_f64(f64::from_bits(5 << 40)), f64::INFINITY);
    assert_eq!(rcp_approx_ftz_f64(-0.0), f64::NEG_INFINITY);
    assert_eq!(rcp_approx_ftz_f64(0.0), f64::INFINITY);
    assert_eq!(rcp_approx_ftz_f64(f64::INFINITY).to_bits(), 0);
    assert_eq!(rcp_approx_ftz_f64(f64::NAN).to_bits(), 0x7fff_ffff_0000_0000);
    // The low word of the input is ignored; the result's low word is zero.
    assert_eq!(rcp_approx_ftz_f64(f64::from_bits(0x3ff0_0000_ffff_ffff)), 1.0);
    assert_eq!(rcp_approx_ftz_f64(-4.0), -0.25);
    // 1/3 rounded to 20 fraction bits: 0x3fd55555.
    assert_eq!(up(rcp_approx_ftz_f64(3.0)), 0x3fd5_5555);
    // A result below the normal range flushes to zero.
    assert_eq!(rcp_approx_ftz_f64(f64::MAX).to_bits(), 0);
    // rsqrt.approx.ftz.f64 table.
    assert!(rsqrt_approx_ftz_f64(f64::NEG_INFINITY).is_nan());
    assert_eq!(rsqrt_approx_ftz_f64(f64::NEG_INFINITY).to_bits(), 0x7fff_ffff_0000_0000);
    assert_eq!(rsqrt_approx_ftz_f64(-f64::from_bits(5 << 40)), f64::NEG_INFINITY);
    assert_eq!(rsqrt_approx_ftz_f64(-0.0), f64::NEG_INFINITY);
    assert_eq!(rsqrt_approx_ftz_f64(0.0), f64::INFINITY);
    assert_eq!(rsqrt_approx_ftz_f64(f64::from_bits(5 << 40)), f64::INFINITY);
    assert_eq!(rsqrt_approx_ftz_f64(f64::INFINITY).to_bits(), 0);
    assert_eq!(
        rsqrt_approx_ftz_f64(f64::from_bits(0x7ff0_0001_0000_0000)).to_bits(),
        0x7fff_ffff_0000_0000
    );
    // The upper word is classified: a NaN with its payload in the low word only reads as +Inf.
    assert_eq!(rsqrt_approx_ftz_f64(f64::from_bits(0x7ff0_0000_0000_0001)).to_bits(), 0);
    assert_eq!(
        rcp_approx_ftz_f64(f64::from_bits(0xfff0_0000_0000_0001)).to_bits(),
        1 << 63
    );
    assert_eq!(rsqrt_approx_ftz_f64(-4.0).to_bits(), 0x7fff_ffff_0000_0000);
    assert_eq!(rsqrt_approx_ftz_f64(0.25), 2.0);
    assert_eq!(up(rsqrt_approx_ftz_f64(2.0)), 0x3fe6_a09e);
}

// ---------------------------------------------------------------------------------------------
// min, max, copysign, testp, setp
// ---------------------------------------------------------------------------------------------

#[test]
fn min_max_float() {
    let nan = f32::from_bits(0x7fc0_0001);
    let b = |x: f32| x.to_bits();
    assert_eq!(min_f32(1.0, 2.0, false, false), 1.0);
    assert_eq!(max_f32(1.0, 2.0, false, false), 2.0);
    // -0.0 < +0.0 in either order.
    assert_eq!(b(min_f32(0.0, -0.0, false, false)), 0x8000_0000);
    assert_eq!(b(min_f32(-0.0, 0.0, false, false)), 0x8000_0000);
    assert_eq!(b(max_f32(-0.0, 0.0, false, false)), 0);
    assert_eq!(b(max_f32(0.0, -0.0, false, false)), 0);
    // Without .NaN a NaN operand is ignored; both NaN → canonical NaN.
    assert_eq!(min_f32(nan, 3.0, false, false), 3.0);
    assert_eq!(max_f32(-3.0, nan, false, false), -3.0);
    assert_eq!(b(min_f32(nan, nan, false, false)), CANONICAL_NAN_F32);
    // With .NaN any NaN gives the canonical NaN.
    assert_eq!(b(min_f32(nan, 3.0, false, true)), CANONICAL_NAN_F32);
    assert_eq!(b(max_f32(3.0, nan, false, true)), CANONICAL_NAN_F32);
    assert_eq!(min_f32(1.0, 2.0, false, true), 1.0);
    // .ftz
    let sub = f32::from_bits(7);
    assert_eq!(b(min_f32(sub, 1.0, true, false)), 0);
    assert_eq!(b(max_f32(-sub, -1.0, true, false)), 0x8000_0000);
    assert_eq!(min_f32(sub, 1.0, false, false), sub);
    // f64
    let dnan = f64::from_bits(0x7ff0_0000_0000_0042);
    assert_eq!(min_f64(dnan, -5.0), -5.0);
    assert_eq!(max_f64(2.0, dnan), 2.0);
    assert_eq!(min_f64(dnan, dnan).to_bits(), 0x7ff8_0000_0000_0042);
    assert_eq!(min_f64(0.0, -0.0).to_bits(), 1 << 63);
    assert_eq!(max_f64(-0.0, 0.0).to_bits(), 0);
    assert_eq!(max_f64(f64::NEG_INFINITY, -1e308), -1e308);
}

#[test]
fn abs_and_neg_float() {
    let sub = f32::from_bits(0x8000_0005);
    assert_eq!(abs_f32(-2.5, false), 2.5);
    assert_eq!(abs_f32(sub, false).to_bits(), 5);
    assert_eq!(abs_f32(sub, true).to_bits(), 0);
    assert_eq!(abs_f32(f32::from_bits(0xffc0_0001), false).to_bits(), CANONICAL_NAN_F32);
    assert_eq!(neg_f32(2.5, false), -2.5);
    assert_eq!(neg_f32(0.0, false).to_bits(), 0x8000_0000);
    assert_eq!(neg_f32(sub, true).to_bits(), 0);
    assert_eq!(neg_f32(f32::NAN, false).to_bits(), CANONICAL_NAN_F32);
    assert_eq!(abs_f64(-0.0).to_bits(), 0);
    assert_eq!(
        abs_f64(f64::from_bits(0xfff8_0000_0000_0007)).to_bits(),
        0xfff8_0000_0000_0007
    );
    assert_eq!(neg_f64(1.5), -1.5);
    assert_eq!(
        neg_f64(f64::from_bits(0x7ff8_0000_0000_0007)).to_bits(),
        0xfff8_0000_0000_0007
    );
}

#[test]
fn copysign_and_testp() {
    // copysign d, a, b: b's value with a's sign.
    assert_eq!(copysign_f32(-1.0, 2.5), -2.5);
    assert_eq!(copysign_f32(1.0, -2.5), 2.5);
    assert_eq!(copysign_f64(-0.0, 7.0), -7.0);
    assert_eq!(copysign_f64(3.0, f64::NEG_INFINITY), f64::INFINITY);
    use TestpOp::*;
    let sub = f32::from_bits(1);
    let cases: [(f32, [bool; 6]); 6] = [
        // finite, infinite, number, notanumber, normal, subnormal
        (1.0, [true, false, true, false, true, false]),
        (-0.0, [true, false, true, false, true, false]),
        (sub, [true, false, true, false, false, true]),
        (f32::NEG_INFINITY, [false, true, true, false, false, false]),
        (f32::NAN, [false, false, false, true, false, false]),
        (f32::MAX, [true, false, true, false, true, false]),
    ];
    for (x, want) in cases {
        for (op, w) in [Finite, Infinite, Number, NotANumber, Normal, Subnormal]
            .into_iter()
            .zip(want)
        {
            assert_eq!(testp_f32(op, x), w, "{op:?} {x}");
            // As an f64, the f32 subnormal is a normal number.
            let w64 = if x == sub {
                op == Finite || op == Number || op == Normal
            } else {
                w
            };
            assert_eq!(testp_f64(op, x as f64), w64, "{op:?} {x} f64");
        }
    }
}

#[test]
fn setp_comparisons() {
    use FloatCmp::*;
    let all = [Eq, Ne, Lt, Le, Gt, Ge, Equ, Neu, Ltu, Leu, Gtu, Geu, Num, Nan];
    // (a, b) → results in the order of `all`.
    let cases: [(f32, f32, [bool; 14]); 5] = [
        (
            1.0,
            2.0,
            [
                false, true, true, true, false, false, false, true, true, true, false, false, true, false,
            ],
        ),
        (
            2.0,
            2.0,
            [
                true, false, false, true, false, true, true, false, false, true, false, true, true, false,
            ],
        ),
        (
            3.0,
            2.0,
            [
                false, true, false, false, true, true, false, true, false, false, true, true, true, false,
            ],
        ),
        (
            0.0,
            -0.0,
            [
                true, false, false, true, false, true, true, false, false, true, false, true, true, false,
            ],
        ),
        (
            f32::NAN,
            2.0,
            [
                false, false, false, false, false, false, true, true, true, true, true, true, false, true,
            ],
        ),
    ];
    for (a, b, want) in cases {
        for (cmp, w) in all.into_iter().zip(want) {
            assert_eq!(setp_f32(cmp, a, b, false), w, "{cmp:?} {a} {b}");
            assert_eq!(setp_f64(cmp, a as f64, b as f64), w, "{cmp:?} {a} {b}");
            assert_eq!(setp_f32(cmp, b, a, false), setp_f64(cmp, b as f64, a as f64));
        }
    }
    // .ftz: a subnormal compares equal to zero.
    assert!(setp_f32(Eq, f32::from_bits(3), 0.0, true));
    assert!(!setp_f32(Eq, f32::from_bits(3), 0.0, false));
    // Integers: the type's signedness decides the order.
    use IntCmp as I;
    let m1 = u64::MAX; // -1 as s32 / 0xffffffff as u32
    assert!(setp_int(I::Lt, IntType::S32, m1, 0));
    assert!(!setp_int(I::Lt, IntType::U32, m1, 0));
    assert!(setp_int(I::Hi, IntType::U32, 0xffff_ffff, 0));
    assert!(setp_int(I::Hs, IntType::U32, 5, 5) && !setp_int(I::Lo, IntType::U32, 5, 5));
    assert!(setp_int(I::Ls, IntType::U16, 0x1_0005, 6)); // only the low 16 bits count
    assert!(setp_int(I::Ge, IntType::S64, 0, 1 << 63));
    assert!(setp_int(I::Eq, IntType::U8, 0x1ff, 0xff) && setp_int(I::Ne, IntType::U8, 1, 2));
    assert!(setp_int(I::Le, IntType::S8, 0x80, 0x7f) && setp_int(I::Gt, IntType::U8, 0x80, 0x7f));
}

// ---------------------------------------------------------------------------------------------
// Integer arithmetic, logic and shifts (9.7.1, 9.7.8, 9.7.9.7)
// ---------------------------------------------------------------------------------------------

const INT_TYPES: [IntType; 8] = [
    IntType::U8,
    IntType::U16,
    IntType::U32,
    IntType::U64,
    IntType::S8,
    IntType::S16,
    IntType::S32,
    IntType::S64,
];

/// The value of `raw` as `ty`, independently of `IntType::extend`.
fn val(ty: IntType, raw: u64) -> i128 {
    let n = ty.bits();
    let low = if n == 64 { raw } else { raw & ((1 << n) - 1) };
    if ty.is_signed() && n < 64 && low >> (n - 1) == 1 {
        low as i128 - (1i128 << n)
    } else if ty.is_signed() && n == 64 {
        low as i64 as i128
    } else {
        low as i128
    }
}

/// `v` wrapped to `ty` and extended to 64 bits.
fn wrap(ty: IntType, v: i128) -> u64 {
    let n = ty.bits();
    let m = v.rem_euclid(1i128 << n);
    let m = if ty.is_signed() && m >= 1i128 << (n - 1) {
        m - (1i128 << n)
    } else {
        m
    };
    m as i64 as u64
}

#[test]
fn int_extend_and_cvt() {
    assert_eq!(IntType::S8.extend(0x80), 0xffff_ffff_ffff_ff80);
    assert_eq!(IntType::U8.extend(0x1_80), 0x80);
    assert_eq!(IntType::S32.extend(0x1_7fff_ffff), 0x7fff_ffff);
    // cvt between integers: truncation, extension, .sat.
    assert_eq!(cvt_int(0x1234_5678, IntType::U32, IntType::U8, false), 0x78);
    assert_eq!(cvt_int(0xff, IntType::S8, IntType::S32, false), u64::MAX);
    assert_eq!(cvt_int(0xff, IntType::U8, IntType::S32, false), 0xff);
    assert_eq!(
        cvt_int(0x8000_0000, IntType::S32, IntType::U64, false),
        0xffff_ffff_8000_0000
    );
    assert_eq!(cvt_int(0x8000_0000, IntType::S32, IntType::U64, true), 0);
    assert_eq!(cvt_int(300, IntType::S32, IntType::U8, true), 255);
    assert_eq!(cvt_int(300, IntType::S32, IntType::S8, true), 127);
    assert_eq!(
        cvt_int((-300i64) as u64, IntType::S32, IntType::S8, true),
        (-128i64) as u64
    );
    assert_eq!(cvt_int(u64::MAX, IntType::U64, IntType::S64, true), i64::MAX as u64);
    assert_eq!(cvt_int(u64::MAX, IntType::U64, IntType::S64, false), u64::MAX);
    assert_eq!(cvt_int(0xffff_ffff, IntType::U32, IntType::S32, true), 0x7fff_ffff);
}

#[test]
fn int_mul_mad_random() {
    let mut rng = Rng(4);
    for _ in 0..20_000 {
        let (a, b, c) = (rng.next(), rng.next(), rng.next());
        for ty in INT_TYPES {
            let n = ty.bits();
            let p = val(ty, a) * val(ty, b);
            // mul.hi: bits 2n-1..n of the product
            let hi = if ty == IntType::U64 {
                ((val(ty, a) as u128 * val(ty, b) as u128) >> 64) as u64 as i128
            } else {
                p >> n
            };
            assert_eq!(mul_hi(ty, a, b), wrap(ty, hi), "mul.hi {ty:?}");
            assert_eq!(mad_hi(ty, a, b, c), wrap(ty, hi + val(ty, c)), "mad.hi {ty:?}");
            if n == 16 || n == 32 {
                let wide = if ty.is_signed() { IntType::S64 } else { IntType::U64 };
                let wide = if n == 16 {
                    if ty.is_signed() {
                        IntType::S32
                    } else {
                        IntType::U32
                    }
                } else {
                    wide
                };
                assert_eq!(mul_wide(ty, a, b), wrap(wide, p), "mul.wide {ty:?}");
                assert_eq!(mad_wide(ty, a, b, c), wrap(wide, p + val(wide, c)), "mad.wide {ty:?}");
            }
            // sad: c + |a - b|
            assert_eq!(
                sad(ty, a, b, c),
                wrap(ty, val(ty, c) + (val(ty, a) - val(ty, b)).abs()),
                "sad {ty:?}"
            );
            assert_eq!(min_int(ty, a, b), wrap(ty, val(ty, a).min(val(ty, b))));
            assert_eq!(max_int(ty, a, b), wrap(ty, val(ty, a).max(val(ty, b))));
            if val(ty, b) != 0 && !(ty.is_signed() && val(ty, b) == -1) {
                // Truncating division; the remainder takes the dividend's sign.
                let (x, y) = (val(ty, a), val(ty, b));
                assert_eq!(div_int(ty, a, b), wrap(ty, x / y), "div {ty:?}");
                assert_eq!(rem_int(ty, a, b), wrap(ty, x % y), "rem {ty:?}");
            }
        }
        let (x, y, z) = (a as i32, b as i32, c as i32);
        let want = (((x as i64 * y as i64) >> 32) + z as i64).clamp(i32::MIN as i64, i32::MAX as i64);
        assert_eq!(mad_hi_sat_s32(x, y, z), want as i32);
    }
}

#[test]
fn int_known_answers() {
    use IntType::*;
    assert_eq!(mul_hi(U32, 0xffff_ffff, 0xffff_ffff), 0xffff_fffe);
    assert_eq!(mul_hi(S32, 0xffff_ffff, 0xffff_ffff), 0); // -1 * -1 = 1
    assert_eq!(mul_hi(S32, 0x8000_0000, 2), u64::MAX); // -2^32 >> 32 = -1
    assert_eq!(mul_hi(U64, u64::MAX, u64::MAX), u64::MAX - 1);
    assert_eq!(mul_hi(S16, 0x8000, 0x8000), 0x4000);
    assert_eq!(mul_wide(S32, 0xffff_ffff, 3), (-3i64) as u64);
    assert_eq!(mul_wide(U32, 0xffff_ffff, 0xffff_ffff), 0xffff_fffe_0000_0001);
    assert_eq!(mul_wide(S16, 0x8000, 0x8000), 0x4000_0000);
    assert_eq!(mul_wide(U16, 0xffff, 0xffff), 0xfffe_0001);
    assert_eq!(
        mad_wide(U32, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff),
        0xffff_ffff_0000_0000
    );
    assert_eq!(mad_hi_sat_s32(i32::MAX, i32::MAX, i32::MAX), i32::MAX);
    assert_eq!(mad_hi_sat_s32(i32::MIN, i32::MAX, i32::MIN), i32::MIN);
    // Division by zero and overflow (our definitions).
    assert_eq!(div_int(U32, 7, 0), 0xffff_ffff);
    assert_eq!(div_int(S32, 7, 0), u64::MAX);
    assert_eq!(div_int(U16, 7, 0x1_0000), 0xffff); // only the low 16 bits of b count
    assert_eq!(rem_int(U32, 7, 0), 7);
    assert_eq!(rem_int(S32, (-7i64) as u64, 0), (-7i64) as u64);
    assert_eq!(div_int(S32, 0x8000_0000, u64::MAX), 0xffff_ffff_8000_0000);
    assert_eq!(rem_int(S32, 0x8000_0000, u64::MAX), 0);
    assert_eq!(div_int(S64, 1 << 63, u64::MAX), 1 << 63);
    assert_eq!(rem_int(S64, 1 << 63, u64::MAX), 0);
    assert_eq!(div_int(S32, (-7i64) as u64, 2), (-3i64) as u64);
    assert_eq!(rem_int(S32, (-7i64) as u64, 2), u64::MAX);
    // abs, neg, not, cnot
    assert_eq!(abs_int(S32, 0x8000_0000), 0xffff_ffff_8000_0000);
    assert_eq!(abs_int(S16, 0xfffb), 5);
    assert_eq!(abs_int(S64, 1 << 63), 1 << 63);
    assert_eq!(neg_int(S32, 5), (-5i64) as u64);
    assert_eq!(neg_int(S32, 0x8000_0000), 0xffff_ffff_8000_0000);
    assert_eq!(not(16, 0x00ff), 0xff00);
    assert_eq!(not(64, 0), u64::MAX);
    assert_eq!(cnot(32, 0x1_0000_0000), 1);
    assert_eq!(cnot(32, 2), 0);
    // popc, clz, brev, bfind
    assert_eq!(popc(32, 0xffff_ffff_0000_000f), 4);
    assert_eq!(popc(64, u64::MAX), 64);
    assert_eq!(clz(32, 0), 32);
    assert_eq!(clz(64, 0), 64);
    assert_eq!(clz(32, 0x1_0000_0001), 31);
    assert_eq!(clz(64, 1 << 63), 0);
    assert_eq!(brev(32, 1), 0x8000_0000);
    assert_eq!(brev(32, 0xffff_ffff_0000_0003), 0xc000_0000);
    assert_eq!(brev(64, 0x1), 1 << 63);
    assert_eq!(bfind(U32, 0, false), u32::MAX);
    assert_eq!(bfind(U32, 0x10, false), 4);
    assert_eq!(bfind(U32, 0x10, true), 27);
    assert_eq!(bfind(S32, 0xffff_ffff, false), u32::MAX); // -1: no non-sign bit
    assert_eq!(bfind(S32, 0xffff_fff0, false), 3); // most significant 0 of a negative value
    assert_eq!(bfind(S64, 0x7fff_ffff_ffff_ffff, true), 1);
    assert_eq!(bfind(U64, 1, true), 63);
}

#[test]
fn shifts_clamp() {
    use IntType::*;
    assert_eq!(shl(U32, 1, 31), 0x8000_0000);
    assert_eq!(shl(U32, 1, 32), 0);
    assert_eq!(shl(U32, 1, u32::MAX), 0);
    assert_eq!(shl(U16, 0x8001, 1), 2);
    assert_eq!(shl(U64, 1, 63), 1 << 63);
    assert_eq!(shl(U64, 1, 64), 0);
    assert_eq!(shr(U32, 0x8000_0000, 31), 1);
    assert_eq!(shr(U32, 0x8000_0000, 32), 0);
    assert_eq!(shr(S32, 0x8000_0000, 31), u64::MAX);
    assert_eq!(shr(S32, 0x8000_0000, 32), u64::MAX);
    assert_eq!(shr(S32, 0x8000_0000, 1000), u64::MAX);
    assert_eq!(shr(S32, 0x4000_0000, 1000), 0);
    assert_eq!(shr(S16, 0x8000, 4), 0xffff_ffff_ffff_f800);
    assert_eq!(shr(S64, 1 << 63, 64), u64::MAX);
    assert_eq!(shr(U64, u64::MAX, 64), 0);
    assert_eq!(shr(U16, 0x1_8000, 15), 1);
    // shf: b holds bits 63:32, a bits 31:0.
    assert_eq!(shf(true, true, 0x8000_0000, 0x1, 1), 0x3);
    assert_eq!(shf(true, true, 0x1234_5678, 0x9abc_def0, 32), 0x1234_5678);
    assert_eq!(shf(true, true, 0x1234_5678, 0x9abc_def0, 40), 0x1234_5678);
    assert_eq!(shf(true, false, 0x1234_5678, 0x9abc_def0, 40), 0xbcde_f012);
    assert_eq!(shf(false, true, 0x1234_5678, 0x9abc_def0, 8), 0xf012_3456);
    assert_eq!(shf(false, true, 0x1234_5678, 0x9abc_def0, 33), 0x9abc_def0);
    assert_eq!(shf(false, false, 0x1234_5678, 0x1234_5678, 36), 0x8123_4567); // rotate right by 4
}

#[test]
fn bit_fields() {
    use IntType::*;
    // bfe.u32: extract, zero-extended.
    assert_eq!(bfe(U32, 0xabcd_1234, 8, 8), 0x12);
    assert_eq!(bfe(U32, 0xabcd_1234, 28, 8), 0xa); // only 4 real bits
    assert_eq!(bfe(U32, 0xabcd_1234, 40, 8), 0); // start beyond the msb
    assert_eq!(bfe(U32, 0xabcd_1234, 8, 0), 0);
    assert_eq!(bfe(U32, 0xabcd_1234, 0x108, 0x108), 0x12); // b, c read modulo 256
                                                           // bfe.s32: extended with the field's sign bit a[min(pos+len-1, msb)].
    assert_eq!(bfe(S32, 0xabcd_1234, 8, 8), 0x12);
    assert_eq!(bfe(S32, 0x0000_8000, 12, 4), (-8i64) as u64);
    assert_eq!(bfe(S32, 0xabcd_1234, 28, 8), (-6i64) as u64); // 0xa with sign a[31] = 1
    assert_eq!(bfe(S32, 0x8000_0000, 40, 3), u64::MAX); // start beyond the msb: all a[31]
    assert_eq!(bfe(S32, 0x7000_0000, 40, 3), 0);
    assert_eq!(bfe(S32, 0xffff_ffff, 0, 0), 0);
    assert_eq!(bfe(S64, 0x8000_0000_0000_0000, 60, 10), (-8i64) as u64);
    assert_eq!(bfe(U64, 0xdead_beef_0000_0000, 32, 16), 0xbeef);
    // bfi: insert len bits of a at pos in b.
    assert_eq!(bfi(32, 0xff, 0x1234_5678, 8, 4), 0x1234_5f78);
    assert_eq!(bfi(32, 0xff, 0x1234_5678, 28, 8), 0xf234_5678); // bits past the msb dropped
    assert_eq!(bfi(32, 0xff, 0x1234_5678, 32, 8), 0x1234_5678);
    assert_eq!(bfi(32, 0xff, 0x1234_5678, 8, 0), 0x1234_5678);
    assert_eq!(bfi(32, 0xffff_ffff, 0, 0, 255), 0xffff_ffff);
    assert_eq!(bfi(64, 0xab, 0, 56, 8), 0xab00_0000_0000_0000);
    assert_eq!(bfi(64, 0x1, 0, 0x140, 1), 0); // pos 0x140 & 0xff = 64: beyond the msb
}

#[test]
fn prmt_modes() {
    let (a, b) = (0x3322_1100u32, 0x7766_5544u32);
    // Generic: d.b0 = c[3:0], ...; bytes {b, a} = {b7..b4, b3..b0}.
    assert_eq!(prmt(a, b, 0x3210, PrmtMode::Generic), a);
    assert_eq!(prmt(a, b, 0x7654, PrmtMode::Generic), b);
    assert_eq!(prmt(a, b, 0x0123, PrmtMode::Generic), 0x0011_2233);
    assert_eq!(prmt(a, b, 0x4040, PrmtMode::Generic), 0x4400_4400);
    // msb of a selector replicates the byte's sign bit.
    assert_eq!(prmt(0x0000_80ff, 0, 0x8901, PrmtMode::Generic), 0xffff_ff80);
    assert_eq!(prmt(0x0000_807f, 0, 0x0098, PrmtMode::Generic), 0x7f7f_ff00);
    // The mode table, for c[1:0] = 0..3, d = (b3 b2 b1 b0) source bytes:
    let check = |mode: PrmtMode, rows: [[u32; 4]; 4]| {
        for (s, row) in rows.iter().enumerate() {
            let want = row.iter().fold(0u32, |acc, &i| {
                acc << 8 | ((((b as u64) << 32 | a as u64) >> (8 * i)) & 0xff) as u32
            });
            assert_eq!(prmt(a, b, s as u32 | 0xf0, mode), want, "{mode:?} {s}");
        }
    };
    check(PrmtMode::F4e, [[3, 2, 1, 0], [4, 3, 2, 1], [5, 4, 3, 2], [6, 5, 4, 3]]);
    check(PrmtMode::B4e, [[5, 6, 7, 0], [6, 7, 0, 1], [7, 0, 1, 2], [0, 1, 2, 3]]);
    check(PrmtMode::Rc8, [[0, 0, 0, 0], [1, 1, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3]]);
    check(PrmtMode::Ecl, [[3, 2, 1, 0], [3, 2, 1, 1], [3, 2, 2, 2], [3, 3, 3, 3]]);
    check(PrmtMode::Ecr, [[0, 0, 0, 0], [1, 1, 1, 0], [2, 2, 1, 0], [3, 2, 1, 0]]);
    check(PrmtMode::Rc16, [[1, 0, 1, 0], [3, 2, 3, 2], [1, 0, 1, 0], [3, 2, 3, 2]]);
}

// ---------------------------------------------------------------------------------------------
// Conversions (9.7.9.21)
// ---------------------------------------------------------------------------------------------

const NO_MODS: CvtMods = CvtMods {
    ftz: false,
    sat: false,
    relu: false,
    satfinite: false,
};

/// The value of an `.f16` bit pattern, decoded independently of the implementation.
fn f16_value(h: u16) -> f64 {
    let sign = if h >> 15 == 1 { -1.0 } else { 1.0 };
    let e = ((h >> 10) & 0x1f) as i32;
    let m = (h & 0x3ff) as f64;
    match e {
        0 => sign * m * 2f64.powi(-24),
        31 => {
            if m == 0.0 {
                sign * f64::INFINITY
            } else {
                f64::NAN
            }
        }
        _ => sign * (1024.0 + m) * 2f64.powi(e - 25),
    }
}

/// The expected conversion of `x` to a 16-bit format, from the sorted positive finite values of
/// the format (`table[i]` is the value of bits `i`, increasing) and the IEEE rules.
fn round_to_table(x: f64, table: &[f64], mode: Rounding, inf_bits: u16) -> u16 {
    let neg = x.is_sign_negative();
    let ax = x.abs();
    let sign = if neg { 0x8000 } else { 0 };
    let max_i = table.len() - 1;
    let max = table[max_i];
    if ax.is_infinite() {
        return sign | inf_bits;
    }
    // Largest index with table[i] <= ax (table[0] = 0).
    let i = table.partition_point(|&v| v <= ax) - 1;
    let towards_inf = |i: usize| if i == max_i { inf_bits } else { (i + 1) as u16 };
    let exact = table[i] == ax;
    let away = match mode {
        _ if exact => false,
        Rounding::Rz => false,
        Rounding::Rp => !neg,
        Rounding::Rm => neg,
        Rounding::Rn | Rounding::Rna => {
            // Beyond max, the "next" value is 2^(emax+1) for the midpoint rule.
            let next = if i == max_i {
                max + (max - table[max_i - 1])
            } else {
                table[i + 1]
            };
            let mid = (table[i] + next) / 2.0;
            ax > mid || (ax == mid && (mode == Rounding::Rna || i % 2 == 1))
        }
    };
    if away {
        sign | towards_inf(i)
    } else {
        sign | i as u16
    }
}

#[test]
fn cvt_f32_to_f16_bf16_all_modes() {
    let f16_table: Vec<f64> = (0..0x7c00u16).map(f16_value).collect();
    let bf16_table: Vec<f64> = (0..0x7f80u32).map(|h| f32::from_bits(h << 16) as f64).collect();
    let modes = [Rounding::Rn, Rounding::Rz, Rounding::Rm, Rounding::Rp];
    let mut bits = 0u32;
    loop {
        let x = f32::from_bits(bits);
        if !x.is_nan() {
            for mode in modes {
                let h = cvt_float(bits as u64, FloatType::F32, FloatType::F16, mode, NO_MODS);
                assert_eq!(
                    h,
                    round_to_table(x as f64, &f16_table, mode, 0x7c00) as u64,
                    "f16 {x:e} {mode:?}"
                );
                let g = cvt_float(bits as u64, FloatType::F32, FloatType::Bf16, mode, NO_MODS);
                assert_eq!(
                    g,
                    round_to_table(x as f64, &bf16_table, mode, 0x7f80) as u64,
                    "bf16 {x:e} {mode:?}"
                );
            }
        }
        match bits.checked_add(7919) {
            Some(b) => bits = b,
            None => break,
        }
    }
}

#[test]
fn cvt_float_known_answers() {
    use FloatType::*;
    let c = |x: f32, to: FloatType, mode: Rounding| cvt_float(x.to_bits() as u64, F32, to, mode, NO_MODS);
    assert_eq!(c(1.0, F16, Rounding::Rn), 0x3c00);
    assert_eq!(c(65504.0, F16, Rounding::Rn), 0x7bff);
    assert_eq!(c(65519.996, F16, Rounding::Rn), 0x7bff);
    assert_eq!(c(65520.0, F16, Rounding::Rn), 0x7c00); // the tie rounds to even: infinity
    assert_eq!(c(1e6, F16, Rounding::Rz), 0x7bff);
    assert_eq!(c(-1e6, F16, Rounding::Rp), 0xfbff);
    assert_eq!(c(-1e6, F16, Rounding::Rm), 0xfc00);
    assert_eq!(c(2f32.powi(-24), F16, Rounding::Rn), 0x0001);
    assert_eq!(c(2f32.powi(-25), F16, Rounding::Rn), 0x0000); // tie to even
    assert_eq!(c(1.5 * 2f32.powi(-25), F16, Rounding::Rn), 0x0001);
    assert_eq!(c(2f32.powi(-30), F16, Rounding::Rp), 0x0001);
    assert_eq!(c(-2f32.powi(-30), F16, Rounding::Rz), 0x8000);
    assert_eq!(c(1.0 + 2f32.powi(-8), Bf16, Rounding::Rn), 0x3f80); // 1 + 2^-8: tie to even
    assert_eq!(c(1.0 + 3.0 * 2f32.powi(-8), Bf16, Rounding::Rn), 0x3f82); // 1 + 3·2^-8: tie to even (up)
    assert_eq!(c(f32::MAX, Bf16, Rounding::Rn), 0x7f80);
    assert_eq!(c(f32::MAX, Bf16, Rounding::Rz), 0x7f7f);
    assert_eq!(c(f32::NAN, F16, Rounding::Rn), 0x7fff);
    assert_eq!(c(f32::NAN, Bf16, Rounding::Rn), 0x7fff);
    // Widening is exact.
    assert_eq!(
        cvt_float(0x3c01, F16, F32, Rounding::Rn, NO_MODS),
        (1.0f32 + 2f32.powi(-10)).to_bits() as u64
    );
    assert_eq!(
        cvt_float(0x0001, F16, F32, Rounding::Rn, NO_MODS),
        2f32.powi(-24).to_bits() as u64
    );
    assert_eq!(
        cvt_float(0xfc00, F16, F64, Rounding::Rn, NO_MODS),
        f64::NEG_INFINITY.to_bits()
    );
    assert_eq!(cvt_float(0x4049, Bf16, F32, Rounding::Rn, NO_MODS), 0x4049_0000);
    assert_eq!(
        cvt_float(0x7fc1, Bf16, F32, Rounding::Rn, NO_MODS),
        CANONICAL_NAN_F32 as u64
    );
    // f32 → f64 exact, NaN payload kept; f64 → f32 in every mode.
    assert_eq!(
        cvt_float(0x7fc0_0001, F32, F64, Rounding::Rn, NO_MODS),
        0x7ff8_0000_2000_0000
    );
    let third = 1.0f64 / 3.0;
    let d = |m| cvt_float(third.to_bits(), F64, F32, m, NO_MODS);
    assert_eq!(d(Rounding::Rn), 0x3eaa_aaab);
    assert_eq!(d(Rounding::Rz), 0x3eaa_aaaa);
    assert_eq!(d(Rounding::Rm), 0x3eaa_aaaa);
    assert_eq!(d(Rounding::Rp), 0x3eaa_aaab);
    assert_eq!(
        cvt_float(1e300f64.to_bits(), F64, F32, Rounding::Rz, NO_MODS),
        f32::MAX.to_bits() as u64
    );
    assert_eq!(cvt_float(1e-300f64.to_bits(), F64, F32, Rounding::Rp, NO_MODS), 1);
    assert_eq!(cvt_float(1e-300f64.to_bits(), F64, F32, Rounding::Rn, NO_MODS), 0);
    assert_eq!(
        cvt_float(f64::NAN.to_bits(), F64, F32, Rounding::Rn, NO_MODS),
        CANONICAL_NAN_F32 as u64
    );
    assert_eq!(cvt_float(0x7bff, F16, Bf16, Rounding::Rz, NO_MODS), 0x477f); // 65504 → 65280
    assert_eq!(cvt_float(0x477f, Bf16, F16, Rounding::Rn, NO_MODS), 0x7bf8);
    assert_eq!(cvt_float(0x4780, Bf16, F16, Rounding::Rn, NO_MODS), 0x7c00); // 65536 → inf
}

#[test]
fn cvt_f64_to_f32_random() {
    let mut rng = Rng(5);
    for _ in 0..200_000 {
        let x = rand_f64(&mut rng);
        let rn = x as f32;
        let d = if rn.is_infinite() {
            None
        } else {
            Some((x).partial_cmp(&(rn as f64)).unwrap())
        };
        for mode in [Rounding::Rn, Rounding::Rz, Rounding::Rm, Rounding::Rp] {
            let got = f32::from_bits(cvt_float(x.to_bits(), FloatType::F64, FloatType::F32, mode, NO_MODS) as u32);
            let want = reference(rn, d, mode, None);
            assert!(same(got, want), "{x:e} {mode:?}: {got:e} vs {want:e}");
        }
    }
}

#[test]
fn cvt_modifiers() {
    use FloatType::*;
    let m = |ftz, sat, relu, satfinite| CvtMods {
        ftz,
        sat,
        relu,
        satfinite,
    };
    let c = |x: f32, to, mods| cvt_float(x.to_bits() as u64, F32, to, Rounding::Rn, mods);
    // .relu: negatives (and -0) → +0, NaN → canonical NaN.
    assert_eq!(c(-3.0, F16, m(false, false, true, false)), 0);
    assert_eq!(c(-0.0, Bf16, m(false, false, true, false)), 0);
    assert_eq!(c(3.0, F16, m(false, false, true, false)), 0x4200);
    assert_eq!(c(f32::NAN, F16, m(false, false, true, false)), 0x7fff);
    // .satfinite: beyond max finite → ±max finite; NaN stays NaN.
    assert_eq!(c(1e6, F16, m(false, false, false, true)), 0x7bff);
    assert_eq!(c(f32::NEG_INFINITY, F16, m(false, false, false, true)), 0xfbff);
    assert_eq!(c(f32::INFINITY, Bf16, m(false, false, false, true)), 0x7f7f);
    assert_eq!(c(f32::NAN, Bf16, m(false, false, false, true)), 0x7fff);
    // .sat: [0, 1], NaN → 0.
    assert_eq!(c(2.0, F16, m(false, true, false, false)), 0x3c00);
    assert_eq!(c(-2.0, F16, m(false, true, false, false)), 0);
    assert_eq!(c(f32::NAN, F16, m(false, true, false, false)), 0);
    assert_eq!(c(0.5, F16, m(false, true, false, false)), 0x3800);
    assert_eq!(
        cvt_float(3f64.to_bits(), F64, F32, Rounding::Rz, m(false, true, false, false)),
        0x3f80_0000
    );
    // .ftz: .f32 subnormal inputs and results.
    let sub = f32::from_bits(0x0040_0000);
    assert_eq!(
        cvt_float(
            sub.to_bits() as u64,
            F32,
            F64,
            Rounding::Rn,
            m(true, false, false, false)
        ),
        0
    );
    assert_eq!(
        cvt_float(sub.to_bits() as u64, F32, F64, Rounding::Rn, NO_MODS),
        (sub as f64).to_bits()
    );
    assert_eq!(
        cvt_float(1e-40f64.to_bits(), F64, F32, Rounding::Rn, m(true, false, false, false)),
        0
    );
    assert_eq!(
        cvt_float(
            (-1e-40f64).to_bits(),
            F64,
            F32,
            Rounding::Rn,
            m(true, false, false, false)
        ),
        1 << 31
    );
    assert_ne!(cvt_float(1e-40f64.to_bits(), F64, F32, Rounding::Rn, NO_MODS), 0);
    // .ftz does not touch .f16 results.
    assert_eq!(
        cvt_float(
            2f32.powi(-20).to_bits() as u64,
            F32,
            F16,
            Rounding::Rn,
            m(true, false, false, false)
        ),
        0x10
    );
}

#[test]
fn cvt_packed_x2_order() {
    // cvt.rn.bf16x2.f32 d, a, b: a's result in d[31:16], b's in d[15:0].
    assert_eq!(
        cvt_float_x2(1.0, 2.0, FloatType::Bf16, Rounding::Rn, NO_MODS),
        0x3f80_4000
    );
    assert_eq!(
        cvt_float_x2(1.0, 2.0, FloatType::F16, Rounding::Rn, NO_MODS),
        0x3c00_4000
    );
    assert_eq!(
        cvt_float_x2(-2.0, 0.5, FloatType::F16, Rounding::Rn, NO_MODS),
        0xc000_3800
    );
    let relu = CvtMods { relu: true, ..NO_MODS };
    assert_eq!(
        cvt_float_x2(-1.0, 3.0, FloatType::Bf16, Rounding::Rz, relu),
        0x0000_4040
    );
}

#[test]
fn cvt_tf32() {
    let one_half_ulp = 1.0f32 + 2f32.powi(-11); // exactly half a tf32 ulp above 1
    assert_eq!(cvt_tf32_f32(one_half_ulp, Rounding::Rna, false, false), 0x3f80_2000); // ties away
    assert_eq!(cvt_tf32_f32(one_half_ulp, Rounding::Rn, false, false), 0x3f80_0000); // ties to even
    assert_eq!(
        cvt_tf32_f32(1.0 + 3.0 * 2f32.powi(-11), Rounding::Rn, false, false),
        0x3f80_4000
    );
    assert_eq!(
        cvt_tf32_f32(f32::from_bits(0x3f80_1fff), Rounding::Rz, false, false),
        0x3f80_0000
    );
    assert_eq!(
        cvt_tf32_f32(f32::from_bits(0xbf80_1000), Rounding::Rna, false, false),
        0xbf80_2000
    );
    assert_eq!(
        cvt_tf32_f32(f32::from_bits(0xbf80_0fff), Rounding::Rna, false, false),
        0xbf80_0000
    );
    // The low 13 bits of every result are zero; subnormals round on the same bit.
    assert_eq!(
        cvt_tf32_f32(f32::from_bits(0x0000_1000), Rounding::Rna, false, false),
        0x0000_2000
    );
    assert_eq!(
        cvt_tf32_f32(f32::from_bits(0x0000_0fff), Rounding::Rna, false, false),
        0
    );
    // Overflow: infinity, or max finite with .satfinite.
    assert_eq!(cvt_tf32_f32(f32::MAX, Rounding::Rna, false, false), 0x7f80_0000);
    assert_eq!(cvt_tf32_f32(f32::MAX, Rounding::Rna, false, true), 0x7f7f_e000);
    assert_eq!(cvt_tf32_f32(f32::MAX, Rounding::Rz, false, false), 0x7f7f_e000);
    assert_eq!(cvt_tf32_f32(f32::NEG_INFINITY, Rounding::Rn, false, true), 0xff7f_e000);
    assert_eq!(cvt_tf32_f32(f32::NAN, Rounding::Rna, false, false), 0x7fff_e000);
    assert_eq!(cvt_tf32_f32(-5.0, Rounding::Rn, true, false), 0);
    // Random: rna equals "add half a unit of bit 13 to the magnitude, clear the low 13 bits".
    let mut rng = Rng(6);
    for _ in 0..100_000 {
        let x = f32::from_bits(rng.next() as u32);
        if !x.is_finite() {
            continue;
        }
        let mag = x.to_bits() & 0x7fff_ffff;
        let want = (x.to_bits() & 0x8000_0000) | ((mag + 0x1000) & 0xffff_e000);
        assert_eq!(cvt_tf32_f32(x, Rounding::Rna, false, false), want, "{x:e}");
    }
}

#[test]
fn cvt_float_to_integer() {
    use FloatType::*;
    use IntRounding::*;
    use IntType::*;
    let c = |x: f64, to, r| cvt_float_to_int(x.to_bits(), F64, to, r, false);
    let s = |x: f32, to, r| cvt_float_to_int(x.to_bits() as u64, F32, to, r, false);
    // Rounding.
    assert_eq!(s(2.5, S32, Rni), 2);
    assert_eq!(s(3.5, S32, Rni), 4);
    assert_eq!(s(-2.5, S32, Rni), (-2i64) as u64);
    assert_eq!(s(-0.5, S32, Rni), 0);
    assert_eq!(s(-2.7, S32, Rzi), (-2i64) as u64);
    assert_eq!(s(-2.2, S32, Rmi), (-3i64) as u64);
    assert_eq!(s(2.2, S32, Rpi), 3);
    assert_eq!(s(-0.2, S32, Rpi), 0);
    // Saturation to the destination range.
    assert_eq!(s(1e10, S32, Rzi), i32::MAX as u64);
    assert_eq!(s(-1e10, S32, Rzi), i32::MIN as i64 as u64);
    assert_eq!(s(-1.0, U32, Rzi), 0);
    assert_eq!(s(-0.7, U32, Rni), 0);
    assert_eq!(s(5e9, U32, Rni), 0xffff_ffff);
    assert_eq!(s(300.0, U8, Rni), 255);
    assert_eq!(s(-300.0, S8, Rni), (-128i64) as u64);
    assert_eq!(c(1e300, S64, Rni), i64::MAX as u64);
    assert_eq!(c(-1e300, S64, Rni), 1 << 63);
    assert_eq!(c(1e300, U64, Rni), u64::MAX);
    assert_eq!(c(9007199254740993.0, S64, Rni), 9007199254740992);
    assert_eq!(s(f32::INFINITY, S32, Rzi), i32::MAX as u64);
    assert_eq!(s(f32::NEG_INFINITY, U16, Rzi), 0);
    // NaN: 0 unless the source is .f64 or the destination 64-bit, then 1 << (n-1).
    assert_eq!(s(f32::NAN, S32, Rzi), 0);
    assert_eq!(s(f32::NAN, U32, Rni), 0);
    assert_eq!(s(f32::NAN, S64, Rzi), 1 << 63);
    assert_eq!(s(f32::NAN, U64, Rzi), 1 << 63);
    assert_eq!(c(f64::NAN, S32, Rzi), 0xffff_ffff_8000_0000);
    assert_eq!(c(f64::NAN, U32, Rzi), 0x8000_0000);
    assert_eq!(c(f64::NAN, U16, Rzi), 0x8000);
    assert_eq!(cvt_float_to_int(0x7e00, F16, S32, Rni, false), 0);
    assert_eq!(cvt_float_to_int(0x7e00, F16, S64, Rni, false), 1 << 63);
    // .ftz flushes a subnormal input: its ceiling is then 0, not 1.
    let sub = f32::from_bits(1).to_bits() as u64;
    assert_eq!(cvt_float_to_int(sub, F32, S32, Rpi, false), 1);
    assert_eq!(cvt_float_to_int(sub, F32, S32, Rpi, true), 0);
    // 16-bit sources.
    assert_eq!(cvt_float_to_int(0xc100, F16, S32, Rzi, false), (-2i64) as u64); // -2.5
    assert_eq!(cvt_float_to_int(0x4049, Bf16, U8, Rni, false), 3); // 3.140625
                                                                   // Random against an f64 reference.
    let mut rng = Rng(7);
    for _ in 0..100_000 {
        let x = rand_f64(&mut rng)
            * if rng.below(2) == 0 {
                1.0
            } else {
                2f64.powi(-(rng.below(1000) as i32))
            };
        for (r, f) in [
            (Rni, f64::round_ties_even as fn(f64) -> f64),
            (Rzi, f64::trunc),
            (Rmi, f64::floor),
            (Rpi, f64::ceil),
        ] {
            let v = f(x);
            let v = if v.abs() < 1e30 {
                v as i128
            } else if v < 0.0 {
                i128::MIN
            } else {
                i128::MAX
            };
            for ty in INT_TYPES {
                let (lo, hi) = if ty.is_signed() {
                    (-(1i128 << (ty.bits() - 1)), (1i128 << (ty.bits() - 1)) - 1)
                } else {
                    (0, (1i128 << ty.bits()) - 1)
                };
                assert_eq!(
                    cvt_float_to_int(x.to_bits(), F64, ty, r, false),
                    wrap(ty, v.clamp(lo, hi)),
                    "{x:e} {ty:?} {r:?}"
                );
            }
        }
    }
}

#[test]
fn cvt_integer_to_float() {
    use FloatType::*;
    use IntType::*;
    assert_eq!(
        cvt_int_to_float(16_777_217, S32, F32, Rounding::Rn, false),
        16_777_216f32.to_bits() as u64
    );
    assert_eq!(
        cvt_int_to_float(16_777_217, S32, F32, Rounding::Rp, false),
        16_777_218f32.to_bits() as u64
    );
    assert_eq!(
        cvt_int_to_float((-16_777_217i64) as u64, S32, F32, Rounding::Rz, false),
        (-16_777_216f32).to_bits() as u64
    );
    assert_eq!(
        cvt_int_to_float((-16_777_217i64) as u64, S32, F32, Rounding::Rm, false),
        (-16_777_218f32).to_bits() as u64
    );
    assert_eq!(cvt_int_to_float(u64::MAX, U64, F32, Rounding::Rz, false), 0x5f7f_ffff);
    assert_eq!(cvt_int_to_float(u64::MAX, U64, F32, Rounding::Rn, false), 0x5f80_0000);
    assert_eq!(
        cvt_int_to_float(0xffff_ffff, S32, F64, Rounding::Rn, false),
        (-1f64).to_bits()
    );
    assert_eq!(
        cvt_int_to_float(0xffff_ffff, U32, F64, Rounding::Rn, false),
        4294967295f64.to_bits()
    );
    assert_eq!(cvt_int_to_float(65519, U32, F16, Rounding::Rn, false), 0x7bff);
    assert_eq!(cvt_int_to_float(65520, U32, F16, Rounding::Rn, false), 0x7c00);
    assert_eq!(cvt_int_to_float(65520, U32, F16, Rounding::Rz, false), 0x7bff);
    assert_eq!(cvt_int_to_float(0, S32, F32, Rounding::Rm, false), 0);
    assert_eq!(cvt_int_to_float(5, S32, F32, Rounding::Rn, true), 1f32.to_bits() as u64);
    assert_eq!(cvt_int_to_float((-5i64) as u64, S64, F64, Rounding::Rn, true), 0);
    assert_eq!(cvt_int_to_float(257, U16, Bf16, Rounding::Rn, false), 0x4380); // 257 → 256
    assert_eq!(cvt_int_to_float(257, U16, Bf16, Rounding::Rp, false), 0x4381); // → 258
                                                                               // Random 64-bit integers against an exact i128 comparison.
    let mut rng = Rng(8);
    for _ in 0..100_000 {
        let v = rng.next() >> rng.below(64);
        for (ty, x) in [(U64, v as i128), (S64, v as i64 as i128)] {
            let rn32 = if ty == U64 { v as f32 } else { v as i64 as f32 };
            let rn64 = if ty == U64 { v as f64 } else { v as i64 as f64 };
            let d32 = Some(x.cmp(&(rn32 as i128)));
            let d64 = Some(x.cmp(&(rn64 as i128)));
            for mode in [Rounding::Rn, Rounding::Rz, Rounding::Rm, Rounding::Rp] {
                let got = f32::from_bits(cvt_int_to_float(v, ty, F32, mode, false) as u32);
                assert!(same(got, reference(rn32, d32, mode, None)), "{x} {mode:?}");
                let got = f64::from_bits(cvt_int_to_float(v, ty, F64, mode, false));
                assert!(same(got, reference(rn64, d64, mode, None)), "{x} {mode:?}");
            }
        }
    }
}

#[test]
fn cvt_round_to_integral() {
    use FloatType::*;
    use IntRounding::*;
    let f = |x: f32, r| f32::from_bits(cvt_round_integral(x.to_bits() as u64, F32, r, false, false) as u32);
    assert_eq!(f(2.5, Rni), 2.0);
    assert_eq!(f(-2.5, Rni), -2.0);
    assert_eq!(f(2.7, Rzi), 2.0);
    assert_eq!(f(-2.2, Rmi), -3.0);
    assert_eq!(f(-2.2, Rpi), -2.0);
    assert_eq!(f(-0.4, Rni).to_bits(), 0x8000_0000); // -0
    assert_eq!(f(-0.5, Rpi).to_bits(), 0x8000_0000);
    assert_eq!(f(1e30, Rzi), 1e30);
    assert_eq!(f(f32::NEG_INFINITY, Rni), f32::NEG_INFINITY);
    assert_eq!(f(f32::NAN, Rni).to_bits(), CANONICAL_NAN_F32);
    let sub = f32::from_bits(1).to_bits() as u64;
    assert_eq!(cvt_round_integral(sub, F32, Rpi, false, false), 1f32.to_bits() as u64);
    assert_eq!(cvt_round_integral(sub, F32, Rpi, true, false), 0);
    assert_eq!(
        cvt_round_integral(3.7f32.to_bits() as u64, F32, Rzi, false, true),
        1f32.to_bits() as u64
    );
    let d = |x: f64, r| f64::from_bits(cvt_round_integral(x.to_bits(), F64, r, false, false));
    assert_eq!(d(4503599627370495.5, Rni), 4503599627370496.0); // 2^52 - 0.5: tie to even
    assert_eq!(d(4503599627370495.5, Rzi), 4503599627370495.0);
    assert_eq!(d(-1.5, Rni), -2.0);
    assert_eq!(d(-1.5, Rzi), -1.0);
    assert_eq!(cvt_round_integral(0x3e00, F16, Rni, false, false), 0x4000); // 1.5 → 2
    assert_eq!(cvt_round_integral(0x3e00, F16, Rmi, false, false), 0x3c00); // 1.5 → 1
    assert_eq!(cvt_round_integral(0xbfc0, Bf16, Rzi, false, false), 0xbf80); // -1.5 → -1
    assert_eq!(cvt_round_integral(0x7bff, F16, Rpi, false, false), 0x7bff);
    assert_eq!(cvt_round_integral(0x7e01, F16, Rni, false, false), 0x7fff);
}
