//! Scalar semantics of PTX instructions: pure functions on Rust values and register bits, which the
//! executor calls once per lane.
//!
//! Section numbers are those of the PTX ISA 8.x text (9.3.1 comparisons, 9.7.1 integer arithmetic,
//! 9.7.3 floating point, 9.7.6.2 `setp`, 9.7.8 logic and shift, 9.7.9.7 `prmt`, 9.7.9.21 `cvt`);
//! later releases renumber parts of chapter 9.7, so every rule also names its instruction.
//!
//! Conventions:
//! - Integer operands and results are `u64` register bits holding a value of the instruction type:
//!   only an operand's low `bits()` are read, and results are sign-extended (signed types) or
//!   zero-extended (unsigned and bit types) to 64 bits, as [`IntType::extend`] does. The executor
//!   truncates to its register's width.
//! - `.f32`/`.f64` operands are Rust floats; conversions take and return register bits, with
//!   `.f16`/`.bf16` values in the low 16 bits.
//! - `.rn` uses the host's IEEE arithmetic (correctly rounded, with `mul_add` a correctly rounded
//!   fused multiply-add). The directed modes are derived exactly: integer significands give the
//!   exact sum, product, quotient or root (the last two with a sticky bit for the nonzero rest),
//!   which `round_exact` rounds once. Infinite, NaN and zero operands take the host's path, whose
//!   result is exact in every mode.
//! - NaN results: `.f32` instructions return the canonical NaN `0x7fff_ffff` (9.7.3: "single
//!   precision instructions return an unspecified NaN"). `.f64` instructions return their first
//!   NaN operand, quieted (9.7.3: "NaN payloads are supported for double-precision
//!   instructions"), and an invalid operation (`inf - inf`, `0 * inf`, `sqrt(-1)`) returns
//!   `0x7fff_ffff_ffff_ffff`, our choice. The host's NaN results are never passed on: Rust leaves
//!   their payload unspecified (it differs between run time and constant folding).

use std::cmp::Ordering;

/// The canonical `.f32` NaN.
pub const CANONICAL_NAN_F32: u32 = 0x7fff_ffff;

/// The `.f64` NaN of an invalid operation without NaN operands.
pub const DEFAULT_NAN_F64: u64 = 0x7fff_ffff_ffff_ffff;

/// IEEE rounding modes of floating-point results (9.7.3, 9.7.9.21): `.rn` (nearest, ties to even),
/// `.rz` (toward zero), `.rm` (toward -inf), `.rp` (toward +inf), and `.rna` (nearest, ties away
/// from zero), which PTX has only for `cvt.rna.tf32.f32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    Rn,
    Rna,
    Rz,
    Rm,
    Rp,
}

/// Integer rounding modes of float→integer and float→integral-float conversions (9.7.9.21):
/// `.rni` (nearest, ties to even), `.rzi` (toward zero), `.rmi` (toward -inf), `.rpi` (toward +inf).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntRounding {
    Rni,
    Rzi,
    Rmi,
    Rpi,
}

/// An integer instruction type. Bit-size types (`.b16`, ...) are passed as the unsigned type of
/// their width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntType {
    U8,
    U16,
    U32,
    U64,
    S8,
    S16,
    S32,
    S64,
}

impl IntType {
    /// Width in bits.
    #[inline]
    pub const fn bits(self) -> u32 {
        match self {
            IntType::U8 | IntType::S8 => 8,
            IntType::U16 | IntType::S16 => 16,
            IntType::U32 | IntType::S32 => 32,
            IntType::U64 | IntType::S64 => 64,
        }
    }

    #[inline]
    pub const fn is_signed(self) -> bool {
        matches!(self, IntType::S8 | IntType::S16 | IntType::S32 | IntType::S64)
    }

    /// The value of `raw`'s low `bits()` bits as this type, sign- or zero-extended to 64 bits.
    #[inline]
    pub const fn extend(self, raw: u64) -> u64 {
        let unused = 64 - self.bits();
        if self.is_signed() {
            (((raw << unused) as i64) >> unused) as u64
        } else {
            (raw << unused) >> unused
        }
    }

    /// The smallest and largest value of the type.
    #[inline]
    const fn range(self) -> (i128, i128) {
        let n = self.bits();
        if self.is_signed() {
            (-(1i128 << (n - 1)), (1i128 << (n - 1)) - 1)
        } else {
            (0, (1i128 << n) - 1)
        }
    }

    /// The value of `raw` as this type, in an `i128`.
    #[inline]
    const fn value(self, raw: u64) -> i128 {
        let v = self.extend(raw);
        if self.is_signed() {
            v as i64 as i128
        } else {
            v as i128
        }
    }

    /// The double-width type of `mul.wide` / `mad.wide` (16- and 32-bit types only).
    const fn wide(self) -> IntType {
        match self {
            IntType::U8 => IntType::U16,
            IntType::S8 => IntType::S16,
            IntType::U16 => IntType::U32,
            IntType::S16 => IntType::S32,
            IntType::U32 | IntType::U64 => IntType::U64,
            IntType::S32 | IntType::S64 => IntType::S64,
        }
    }
}

/// A floating-point type of `cvt` and `setp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatType {
    F16,
    Bf16,
    F32,
    F64,
}

impl FloatType {
    const fn fmt(self) -> Fmt {
        match self {
            FloatType::F16 => F16,
            FloatType::Bf16 => BF16,
            FloatType::F32 => F32,
            FloatType::F64 => F64,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Exact values and rounding
// ---------------------------------------------------------------------------------------------

/// A binary floating-point encoding: `frac` fraction bits, `exp` exponent bits, a sign bit above.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fmt {
    frac: u32,
    exp: u32,
}

const F64: Fmt = Fmt { frac: 52, exp: 11 };
const F32: Fmt = Fmt { frac: 23, exp: 8 };
const F16: Fmt = Fmt { frac: 10, exp: 5 };
const BF16: Fmt = Fmt { frac: 7, exp: 8 };
/// `.tf32` as `cvt` produces it: an `.f32` pattern whose low 13 fraction bits are zero.
const TF32: Fmt = Fmt { frac: 10, exp: 8 };
/// The 1.11.20 format of `rcp.approx.ftz.f64` / `rsqrt.approx.ftz.f64`: an `.f64`'s upper word.
const F64_HI: Fmt = Fmt { frac: 20, exp: 11 };

impl Fmt {
    const fn bias(self) -> i32 {
        (1 << (self.exp - 1)) - 1
    }
    const fn sign_bit(self) -> u64 {
        1 << (self.frac + self.exp)
    }
    const fn exp_mask(self) -> u64 {
        ((1 << self.exp) - 1) << self.frac
    }
    const fn frac_mask(self) -> u64 {
        (1 << self.frac) - 1
    }
    const fn inf(self, neg: bool) -> u64 {
        self.exp_mask() | if neg { self.sign_bit() } else { 0 }
    }
    const fn max_finite(self, neg: bool) -> u64 {
        (self.inf(neg) - (1 << self.frac)) | self.frac_mask()
    }
    const fn one(self) -> u64 {
        (self.bias() as u64) << self.frac
    }
    /// The canonical NaN of `cvt` results: sign clear, all exponent and fraction bits set
    /// (`0x7fff` for `.f16`/`.bf16`, `0x7fff_ffff` for `.f32`).
    const fn canonical_nan(self) -> u64 {
        self.exp_mask() | self.frac_mask()
    }
    const fn is_nan(self, bits: u64) -> bool {
        bits & self.exp_mask() == self.exp_mask() && bits & self.frac_mask() != 0
    }
    const fn is_subnormal(self, bits: u64) -> bool {
        bits & self.exp_mask() == 0 && bits & self.frac_mask() != 0
    }
}

/// The exact value `(-1)^neg · sig · 2^exp`, plus, when `sticky`, a nonzero amount smaller than
/// `2^exp` (the rest of a quotient or root).
#[derive(Clone, Copy, Debug)]
struct Exact {
    neg: bool,
    sig: u128,
    exp: i32,
    sticky: bool,
}

const ONE: Exact = Exact {
    neg: false,
    sig: 1,
    exp: 0,
    sticky: false,
};

/// A decoded floating-point value.
enum Class {
    Nan,
    Inf(bool),
    /// Zeros included (`sig == 0`).
    Finite(Exact),
}

fn decode(bits: u64, f: Fmt) -> Class {
    let neg = bits & f.sign_bit() != 0;
    let e = ((bits & f.exp_mask()) >> f.frac) as i32;
    let m = bits & f.frac_mask();
    let emin = 1 - f.bias();
    if e == (1 << f.exp) - 1 {
        if m == 0 {
            Class::Inf(neg)
        } else {
            Class::Nan
        }
    } else if e == 0 {
        Class::Finite(Exact {
            neg,
            sig: m as u128,
            exp: emin - f.frac as i32,
            sticky: false,
        })
    } else {
        let sig = (m | 1 << f.frac) as u128;
        Class::Finite(Exact {
            neg,
            sig,
            exp: e - f.bias() - f.frac as i32,
            sticky: false,
        })
    }
}

/// `sig`'s bits below `shift` compared with half of `2^shift` (the sticky rest counting as more
/// than nothing), and whether they (or the rest) are nonzero. Returns `(sig >> shift, ord, inexact)`.
#[inline]
fn split(sig: u128, shift: u32, sticky: bool) -> (u128, Ordering, bool) {
    if shift > 128 {
        return (0, Ordering::Less, sig != 0 || sticky);
    }
    let (kept, rem) = if shift == 128 {
        (0, sig)
    } else {
        (sig >> shift, sig & ((1u128 << shift) - 1))
    };
    let half = 1u128 << (shift - 1);
    let ord = rem
        .cmp(&half)
        .then(if sticky { Ordering::Greater } else { Ordering::Equal });
    (kept, ord, rem != 0 || sticky)
}

/// Whether rounding the magnitude `kept + rest` (`rest` in `[0, 1)`, compared with one half by
/// `ord`) goes up under `mode`, for a value of sign `neg`.
#[inline]
fn round_up(mode: Rounding, neg: bool, kept: u128, ord: Ordering, inexact: bool) -> bool {
    match mode {
        Rounding::Rn => ord == Ordering::Greater || (ord == Ordering::Equal && kept & 1 == 1),
        Rounding::Rna => ord != Ordering::Less,
        Rounding::Rz => false,
        Rounding::Rp => inexact && !neg,
        Rounding::Rm => inexact && neg,
    }
}

/// Rounds `x` once to the format `f` under `mode` (IEEE 754: subnormal results on the subnormal
/// grid; overflow to infinity under `.rn`/`.rna` and toward the direction of rounding otherwise,
/// else to the largest finite value). A zero `x` (no sticky rest) gives a zero of `x`'s sign.
fn round_exact(x: Exact, f: Fmt, mode: Rounding) -> u64 {
    let sign = if x.neg { f.sign_bit() } else { 0 };
    if x.sig == 0 {
        debug_assert!(!x.sticky);
        return sign;
    }
    let p = f.frac as i32 + 1;
    let emin = 1 - f.bias();
    let top = x.exp + 127 - x.sig.leading_zeros() as i32;
    // The exponent of the target grid's unit in the last place.
    let mut q = top.max(emin) - (p - 1);
    let shift = q - x.exp;
    let mut kept = if shift <= 0 {
        debug_assert!(!x.sticky, "a sticky rest needs guard bits");
        x.sig << (-shift) as u32
    } else {
        let (kept, ord, inexact) = split(x.sig, shift as u32, x.sticky);
        kept + round_up(mode, x.neg, kept, ord, inexact) as u128
    };
    if kept == 1u128 << p {
        kept >>= 1;
        q += 1;
    }
    if kept == 0 {
        return sign;
    }
    if kept < 1u128 << (p - 1) {
        return sign | kept as u64;
    }
    let e = q + p - 1;
    if e > f.bias() {
        let to_inf = match mode {
            Rounding::Rn | Rounding::Rna => true,
            Rounding::Rz => false,
            Rounding::Rp => !x.neg,
            Rounding::Rm => x.neg,
        };
        return if to_inf { f.inf(x.neg) } else { f.max_finite(x.neg) };
    }
    sign | ((e + f.bias()) as u64) << f.frac | (kept as u64 & f.frac_mask())
}

fn exact_mul(x: Exact, y: Exact) -> Exact {
    Exact {
        neg: x.neg ^ y.neg,
        sig: x.sig * y.sig,
        exp: x.exp + y.exp,
        sticky: false,
    }
}

/// The exact sum of two values of at most 106 significant bits each (no sticky rests). Both are
/// placed in a 128-bit window whose bit 125 holds the larger one's leading bit; bits of the smaller
/// one below the window become a sticky rest (with a borrow when the signs differ).
fn exact_add(x: Exact, y: Exact) -> Exact {
    debug_assert!(!x.sticky && !y.sticky);
    if x.sig == 0 {
        return y;
    }
    if y.sig == 0 {
        return x;
    }
    let top = |v: &Exact| v.exp + 127 - v.sig.leading_zeros() as i32;
    let (h, l) = if top(&x) >= top(&y) { (x, y) } else { (y, x) };
    let w = top(&h) - 125;
    let hs = h.sig << (h.exp - w) as u32;
    let lshift = l.exp - w;
    let (ls, lost) = if lshift >= 0 {
        (l.sig << lshift as u32, false)
    } else if lshift <= -128 {
        (0, true)
    } else {
        let s = (-lshift) as u32;
        (l.sig >> s, l.sig & ((1u128 << s) - 1) != 0)
    };
    if h.neg == l.neg {
        Exact {
            neg: h.neg,
            sig: hs + ls,
            exp: w,
            sticky: lost,
        }
    } else if lost {
        Exact {
            neg: h.neg,
            sig: hs - ls - 1,
            exp: w,
            sticky: true,
        }
    } else if hs >= ls {
        Exact {
            neg: h.neg,
            sig: hs - ls,
            exp: w,
            sticky: false,
        }
    } else {
        Exact {
            neg: l.neg,
            sig: ls - hs,
            exp: w,
            sticky: false,
        }
    }
}

/// `x / y` for nonzero `x`, `y`: a quotient of at least 64 bits and a sticky rest.
fn exact_div(x: Exact, y: Exact) -> Exact {
    let sx = x.sig.leading_zeros();
    let sy = y.sig.leading_zeros() - 64;
    let (n, d) = (x.sig << sx, y.sig << sy);
    Exact {
        neg: x.neg ^ y.neg,
        sig: n / d,
        exp: x.exp - y.exp - sx as i32 + sy as i32,
        sticky: n % d != 0,
    }
}

/// `sqrt(x)` for positive `x`: a root of at least 63 bits and a sticky rest.
fn exact_sqrt(x: Exact) -> Exact {
    let mut s = x.sig.leading_zeros();
    if (x.exp - s as i32) % 2 != 0 {
        s -= 1;
    }
    let n = x.sig << s;
    let r = isqrt(n);
    Exact {
        neg: false,
        sig: r,
        exp: (x.exp - s as i32) / 2,
        sticky: r * r != n,
    }
}

/// `floor(sqrt(n))`: Newton's iteration from an overestimate, which decreases to the root.
fn isqrt(n: u128) -> u128 {
    let est = (n as f64).sqrt() as u128;
    let mut x = est + (est >> 40) + 2;
    loop {
        let y = (x + n / x) >> 1;
        if y >= x {
            return x;
        }
        x = y;
    }
}

/// The sign of an exact zero sum of addends of signs `xneg` and `yneg` (IEEE 754 6.3): the common
/// sign if both are negative (or both positive), else +0, or -0 under `.rm`.
fn zero_sum(xneg: bool, yneg: bool, f: Fmt, mode: Rounding) -> u64 {
    if (xneg && yneg) || (xneg != yneg && mode == Rounding::Rm) {
        f.sign_bit()
    } else {
        0
    }
}

/// Directed-mode `a + b` on encodings of `f`; `None` when an operand is infinite or NaN.
fn directed_add(a: u64, b: u64, f: Fmt, mode: Rounding) -> Option<u64> {
    let (Class::Finite(x), Class::Finite(y)) = (decode(a, f), decode(b, f)) else {
        return None;
    };
    let s = exact_add(x, y);
    Some(if s.sig == 0 && !s.sticky {
        zero_sum(x.neg, y.neg, f, mode)
    } else {
        round_exact(s, f, mode)
    })
}

fn directed_mul(a: u64, b: u64, f: Fmt, mode: Rounding) -> Option<u64> {
    let (Class::Finite(x), Class::Finite(y)) = (decode(a, f), decode(b, f)) else {
        return None;
    };
    Some(round_exact(exact_mul(x, y), f, mode))
}

fn directed_fma(a: u64, b: u64, c: u64, f: Fmt, mode: Rounding) -> Option<u64> {
    let (Class::Finite(x), Class::Finite(y), Class::Finite(z)) = (decode(a, f), decode(b, f), decode(c, f)) else {
        return None;
    };
    let p = exact_mul(x, y);
    let s = exact_add(p, z);
    Some(if s.sig == 0 && !s.sticky {
        zero_sum(p.neg, z.neg, f, mode)
    } else {
        round_exact(s, f, mode)
    })
}

/// `None` also for zero operands, whose quotients the host gives exactly.
fn directed_div(a: u64, b: u64, f: Fmt, mode: Rounding) -> Option<u64> {
    match (decode(a, f), decode(b, f)) {
        (Class::Finite(x), Class::Finite(y)) if x.sig != 0 && y.sig != 0 => Some(round_exact(exact_div(x, y), f, mode)),
        _ => None,
    }
}

/// `None` for zero, negative, infinite and NaN operands, whose roots the host gives exactly.
fn directed_sqrt(a: u64, f: Fmt, mode: Rounding) -> Option<u64> {
    match decode(a, f) {
        Class::Finite(x) if x.sig != 0 && !x.neg => Some(round_exact(exact_sqrt(x), f, mode)),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// .f32 / .f64 arithmetic (9.7.3)
// ---------------------------------------------------------------------------------------------

/// `.ftz` on an `.f32` input or result: a subnormal becomes a zero of its sign (a result is
/// tested after rounding).
#[inline]
fn flush(x: f32, ftz: bool) -> f32 {
    if ftz && x.is_subnormal() {
        f32::from_bits(x.to_bits() & 0x8000_0000)
    } else {
        x
    }
}

/// `.sat`: clamps to [+0.0, 1.0]; NaN, negatives and -0.0 give +0.0.
#[inline]
fn saturate(x: f32) -> f32 {
    if x > 0.0 {
        x.min(1.0)
    } else {
        0.0
    }
}

/// The end of every `.f32` instruction: `.ftz` on the result, `.sat`, the canonical NaN.
#[inline]
fn finish_f32(r: f32, ftz: bool, sat: bool) -> f32 {
    let r = flush(r, ftz);
    if sat {
        saturate(r)
    } else if r.is_nan() {
        f32::from_bits(CANONICAL_NAN_F32)
    } else {
        r
    }
}

/// A directed `.f32` result, or the host's `fallback` (exact) when `exact` is `None`.
#[inline]
fn pick_f32(exact: Option<u64>, fallback: f32) -> f32 {
    exact.map_or(fallback, |b| f32::from_bits(b as u32))
}

#[inline]
fn pick_f64(exact: Option<u64>, fallback: f64) -> f64 {
    exact.map_or(fallback, f64::from_bits)
}

/// The end of every `.f64` instruction: a NaN result becomes the first NaN operand, quieted, or
/// [`DEFAULT_NAN_F64`].
#[inline]
fn finish_f64(r: f64, operands: &[f64]) -> f64 {
    if !r.is_nan() {
        return r;
    }
    operands
        .iter()
        .find(|x| x.is_nan())
        .map_or(f64::from_bits(DEFAULT_NAN_F64), |x| {
            f64::from_bits(x.to_bits() | 1 << 51)
        })
}

#[inline]
fn b32(x: f32) -> u64 {
    x.to_bits() as u64
}

/// `add{.rnd}{.ftz}{.sat}.f32` (9.7.3.3): `a + b` rounded once; `.ftz` flushes subnormal inputs
/// and result to sign-preserving zero; `.sat` clamps to [0, 1] with NaN → +0.
#[inline]
pub fn add_f32(a: f32, b: f32, rnd: Rounding, ftz: bool, sat: bool) -> f32 {
    let (a, b) = (flush(a, ftz), flush(b, ftz));
    let r = match rnd {
        Rounding::Rn => a + b,
        _ => pick_f32(directed_add(b32(a), b32(b), F32, rnd), a + b),
    };
    finish_f32(r, ftz, sat)
}

/// `sub{.rnd}{.ftz}{.sat}.f32` (9.7.3.4): `a - b`, as [`add_f32`] with `-b`.
#[inline]
pub fn sub_f32(a: f32, b: f32, rnd: Rounding, ftz: bool, sat: bool) -> f32 {
    add_f32(a, -flush(b, ftz), rnd, ftz, sat)
}

/// `mul{.rnd}{.ftz}{.sat}.f32` (9.7.3.5): `a * b` rounded once.
#[inline]
pub fn mul_f32(a: f32, b: f32, rnd: Rounding, ftz: bool, sat: bool) -> f32 {
    let (a, b) = (flush(a, ftz), flush(b, ftz));
    let r = match rnd {
        Rounding::Rn => a * b,
        _ => pick_f32(directed_mul(b32(a), b32(b), F32, rnd), a * b),
    };
    finish_f32(r, ftz, sat)
}

/// `fma.rnd{.ftz}{.sat}.f32` and `mad.rnd.f32` (9.7.3.6, 9.7.3.7): `a * b + c` with the product
/// and sum exact, rounded once.
#[inline]
pub fn fma_f32(a: f32, b: f32, c: f32, rnd: Rounding, ftz: bool, sat: bool) -> f32 {
    let (a, b, c) = (flush(a, ftz), flush(b, ftz), flush(c, ftz));
    let r = match rnd {
        Rounding::Rn => a.mul_add(b, c),
        _ => pick_f32(directed_fma(b32(a), b32(b), b32(c), F32, rnd), a.mul_add(b, c)),
    };
    finish_f32(r, ftz, sat)
}

/// `div.rnd{.ftz}.f32` (9.7.3.8): IEEE 754 division rounded once.
#[inline]
pub fn div_f32(a: f32, b: f32, rnd: Rounding, ftz: bool) -> f32 {
    let (a, b) = (flush(a, ftz), flush(b, ftz));
    let r = match rnd {
        Rounding::Rn => a / b,
        _ => pick_f32(directed_div(b32(a), b32(b), F32, rnd), a / b),
    };
    finish_f32(r, ftz, false)
}

/// `rcp.rnd{.ftz}.f32` (9.7.3.13): `1 / a` rounded once.
#[inline]
pub fn rcp_f32(a: f32, rnd: Rounding, ftz: bool) -> f32 {
    div_f32(1.0, a, rnd, ftz)
}

/// `sqrt.rnd{.ftz}.f32` (9.7.3.15): IEEE 754 square root rounded once (`sqrt(-0) = -0`, negative
/// → NaN).
#[inline]
pub fn sqrt_f32(a: f32, rnd: Rounding, ftz: bool) -> f32 {
    let a = flush(a, ftz);
    let r = match rnd {
        Rounding::Rn => a.sqrt(),
        _ => pick_f32(directed_sqrt(b32(a), F32, rnd), a.sqrt()),
    };
    finish_f32(r, ftz, false)
}

/// `add.rnd.f64` (9.7.3.3).
#[inline]
pub fn add_f64(a: f64, b: f64, rnd: Rounding) -> f64 {
    let r = match rnd {
        Rounding::Rn => a + b,
        _ => pick_f64(directed_add(a.to_bits(), b.to_bits(), F64, rnd), a + b),
    };
    finish_f64(r, &[a, b])
}

/// `sub.rnd.f64` (9.7.3.4).
#[inline]
pub fn sub_f64(a: f64, b: f64, rnd: Rounding) -> f64 {
    if b.is_nan() {
        return finish_f64(b, &[a, b]);
    }
    add_f64(a, -b, rnd)
}

/// `mul.rnd.f64` (9.7.3.5).
#[inline]
pub fn mul_f64(a: f64, b: f64, rnd: Rounding) -> f64 {
    let r = match rnd {
        Rounding::Rn => a * b,
        _ => pick_f64(directed_mul(a.to_bits(), b.to_bits(), F64, rnd), a * b),
    };
    finish_f64(r, &[a, b])
}

/// `fma.rnd.f64` / `mad.rnd.f64` (9.7.3.6, 9.7.3.7): `a * b + c` rounded once.
#[inline]
pub fn fma_f64(a: f64, b: f64, c: f64, rnd: Rounding) -> f64 {
    let r = match rnd {
        Rounding::Rn => a.mul_add(b, c),
        _ => pick_f64(
            directed_fma(a.to_bits(), b.to_bits(), c.to_bits(), F64, rnd),
            a.mul_add(b, c),
        ),
    };
    finish_f64(r, &[a, b, c])
}

/// `div.rnd.f64` (9.7.3.8).
#[inline]
pub fn div_f64(a: f64, b: f64, rnd: Rounding) -> f64 {
    let r = match rnd {
        Rounding::Rn => a / b,
        _ => pick_f64(directed_div(a.to_bits(), b.to_bits(), F64, rnd), a / b),
    };
    finish_f64(r, &[a, b])
}

/// `rcp.rnd.f64` (9.7.3.13).
#[inline]
pub fn rcp_f64(a: f64, rnd: Rounding) -> f64 {
    div_f64(1.0, a, rnd)
}

/// `sqrt.rnd.f64` (9.7.3.15).
#[inline]
pub fn sqrt_f64(a: f64, rnd: Rounding) -> f64 {
    let r = match rnd {
        Rounding::Rn => a.sqrt(),
        _ => pick_f64(directed_sqrt(a.to_bits(), F64, rnd), a.sqrt()),
    };
    finish_f64(r, &[a])
}

// ---------------------------------------------------------------------------------------------
// Approximate instructions (9.7.3): each result is the correctly rounded value, or the value
// computed in f64 and rounded once to f32, which lies within every error bound the ISA states.
// The host's f64 `exp2`, `log2`, `sin`, `cos` and `tanh` (the platform libm) are within one f64
// ulp, so rounding them to f32 is within 0.5 + 2^-29 f32 ulp of the exact value.
// ---------------------------------------------------------------------------------------------

/// `rcp.approx{.ftz}.f32` (9.7.3.13). ISA: at most 1 ulp error over the full range; -Inf → -0,
/// ±0 → ±Inf, +Inf → +0. Ours: `1/a` correctly rounded (0.5 ulp).
#[inline]
pub fn rcp_approx_f32(a: f32, ftz: bool) -> f32 {
    let a = flush(a, ftz);
    finish_f32(1.0 / a, ftz, false)
}

/// `rcp.approx.ftz.f64` (9.7.3.14). ISA: the reciprocal of the upper word of `a` (1.11.20 format,
/// the low 32 bits ignored), placed in the upper word of the result with the low 32 bits zero;
/// subnormal inputs and results flush to sign-preserving zero (so ±subnormal → ±Inf); NaN →
/// `0x7fff_ffff_0000_0000`. The ISA's table classifies the upper word, so a NaN whose payload lies
/// only in the low word reads as an infinity. Ours: the reciprocal of the upper word rounded once
/// to nearest in 1.11.20.
pub fn rcp_approx_ftz_f64(a: f64) -> f64 {
    let hi = a.to_bits() & 0xffff_ffff_0000_0000;
    let sign = hi & (1 << 63);
    let r = match decode(hi, F64) {
        Class::Nan => 0x7fff_ffff_0000_0000,
        Class::Inf(_) => sign,
        Class::Finite(x) if F64.is_subnormal(hi) || x.sig == 0 => sign | F64.inf(false),
        Class::Finite(x) => {
            let r = round_exact(exact_div(ONE, x), F64_HI, Rounding::Rn);
            let r = if F64_HI.is_subnormal(r) {
                r & F64_HI.sign_bit()
            } else {
                r
            };
            r << 32
        }
    };
    f64::from_bits(r)
}

/// `sqrt.approx{.ftz}.f32` (9.7.3.15). ISA: relative error at most 2^-23 over the positive finite
/// range; -0 → -0, negative → NaN. Ours: correctly rounded (relative error ≤ 2^-24).
#[inline]
pub fn sqrt_approx_f32(a: f32, ftz: bool) -> f32 {
    let a = flush(a, ftz);
    finish_f32(a.sqrt(), ftz, false)
}

/// `rsqrt.approx{.ftz}.f32` (9.7.3.16). ISA: relative error at most 2^-22.9; ±0 → ±Inf, +Inf →
/// +0, negative → NaN. Ours: `1/sqrt(a)` in f64 (relative error < 2^-51), rounded once to f32
/// (relative error < 2^-23.9).
#[inline]
pub fn rsqrt_approx_f32(a: f32, ftz: bool) -> f32 {
    let a = flush(a, ftz);
    finish_f32((1.0 / (a as f64).sqrt()) as f32, ftz, false)
}

/// `rsqrt.approx.f64` (9.7.3.16). ISA: no bound stated for `.f64`; the special values are those
/// of the `.f32` form. Ours: `1 / sqrt(a)` from two correctly rounded f64 operations (relative
/// error < 2^-51).
#[inline]
pub fn rsqrt_approx_f64(a: f64) -> f64 {
    finish_f64(1.0 / a.sqrt(), &[a])
}

/// `rsqrt.approx.ftz.f64` (9.7.3.17). ISA: `1/sqrt` of the upper word of `a` (1.11.20), placed in
/// the upper word with the low 32 bits zero; ±subnormal and ±0 → ±Inf, +Inf → +0, -Inf and
/// negative → NaN; NaNs map to `0x7fff_ffff_0000_0000` (the upper word classified, as for
/// `rcp.approx.ftz.f64`). Ours: `1/sqrt` of the upper word in f64, rounded once to nearest in
/// 1.11.20 (relative error < 2^-20.9).
pub fn rsqrt_approx_ftz_f64(a: f64) -> f64 {
    const NAN: u64 = 0x7fff_ffff_0000_0000;
    let hi = a.to_bits() & 0xffff_ffff_0000_0000;
    let sign = hi & (1 << 63);
    let r = if F64.is_subnormal(hi) || hi & !(1 << 63) == 0 {
        sign | F64.inf(false)
    } else if sign != 0 || F64.is_nan(hi) {
        NAN
    } else {
        let y = 1.0 / f64::from_bits(hi).sqrt();
        match decode(y.to_bits(), F64) {
            Class::Finite(x) => round_exact(x, F64_HI, Rounding::Rn) << 32,
            _ => y.to_bits(),
        }
    };
    f64::from_bits(r)
}

/// `ex2.approx{.ftz}.f32` (9.7.3.21). ISA: at most 2 ulp from the correctly rounded result over
/// the full range; -Inf → +0, ±0 → 1, +Inf → +Inf. Ours: `2^a` in f64 rounded once.
#[inline]
pub fn ex2_approx_f32(a: f32, ftz: bool) -> f32 {
    let a = flush(a, ftz);
    finish_f32((a as f64).exp2() as f32, ftz, false)
}

/// `lg2.approx{.ftz}.f32` (9.7.3.20). ISA: absolute error at most 2^-22 on (0.5, 2), relative
/// error at most 2^-22 elsewhere; ±0 → -Inf, negative → NaN, +Inf → +Inf. Ours: `log2(a)` in f64
/// rounded once (relative error < 2^-23.9).
#[inline]
pub fn lg2_approx_f32(a: f32, ftz: bool) -> f32 {
    let a = flush(a, ftz);
    finish_f32((a as f64).log2() as f32, ftz, false)
}

/// `sin.approx{.ftz}.f32` (9.7.3.18). ISA: absolute error at most 2^-20.5 on [-2π, 2π], 2^-14.7
/// on [-100π, 100π], best effort beyond; ±Inf → NaN, ±0 → ±0. Ours: `sin(a)` in f64 rounded once.
#[inline]
pub fn sin_approx_f32(a: f32, ftz: bool) -> f32 {
    let a = flush(a, ftz);
    finish_f32((a as f64).sin() as f32, ftz, false)
}

/// `cos.approx{.ftz}.f32` (9.7.3.19). ISA: the bounds of `sin`; ±Inf → NaN, ±0 → 1. Ours:
/// `cos(a)` in f64 rounded once.
#[inline]
pub fn cos_approx_f32(a: f32, ftz: bool) -> f32 {
    let a = flush(a, ftz);
    finish_f32((a as f64).cos() as f32, ftz, false)
}

/// `tanh.approx.f32` (9.7.3.22). ISA: relative error at most 2^-11; ±Inf → ±1, ±0 → ±0,
/// subnormals pass through. Ours: `tanh(a)` in f64 rounded once (a subnormal `a` gives `a`).
#[inline]
pub fn tanh_approx_f32(a: f32) -> f32 {
    finish_f32((a as f64).tanh() as f32, false, false)
}

/// `div.approx{.ftz}.f32` (9.7.3.8). ISA: `a * (1/b)`, at most 2 ulp error for |b| in
/// [2^-126, 2^126]; for 2^126 < |b| < 2^128 the result is NaN if `a` is infinite and a
/// sign-preserving zero otherwise. Ours: that rule for such `b` (NaN for a NaN `a`, as
/// `NaN * 0`), else `a / b` correctly rounded.
#[inline]
pub fn div_approx_f32(a: f32, b: f32, ftz: bool) -> f32 {
    let (a, b) = (flush(a, ftz), flush(b, ftz));
    let r = if b.is_finite() && b.abs() > f32::from_bits(0x7e80_0000) {
        if a.is_finite() {
            f32::from_bits((a.to_bits() ^ b.to_bits()) & 0x8000_0000)
        } else {
            f32::NAN
        }
    } else {
        a / b
    };
    finish_f32(r, ftz, false)
}

/// `div.full{.ftz}.f32` (9.7.3.8). ISA: at most 2 ulp error over the full range. Ours: `a / b`
/// correctly rounded.
#[inline]
pub fn div_full_f32(a: f32, b: f32, ftz: bool) -> f32 {
    div_f32(a, b, Rounding::Rn, ftz)
}

// ---------------------------------------------------------------------------------------------
// min / max, copysign, testp, setp (9.7.3, 9.3.1)
// ---------------------------------------------------------------------------------------------

/// `min{.ftz}{.NaN}.f32` (9.7.3.11): with `.NaN`, any NaN input gives the canonical NaN; without,
/// a NaN input is ignored (both NaN → canonical NaN). -0.0 is less than +0.0.
#[inline]
pub fn min_f32(a: f32, b: f32, ftz: bool, nan: bool) -> f32 {
    let (a, b) = (flush(a, ftz), flush(b, ftz));
    if a.is_nan() || b.is_nan() {
        return nan_select_f32(a, b, nan);
    }
    if a < b {
        a
    } else if b < a {
        b
    } else {
        f32::from_bits(a.to_bits() | b.to_bits())
    }
}

/// `max{.ftz}{.NaN}.f32` (9.7.3.12): as [`min_f32`], +0.0 greater than -0.0.
#[inline]
pub fn max_f32(a: f32, b: f32, ftz: bool, nan: bool) -> f32 {
    let (a, b) = (flush(a, ftz), flush(b, ftz));
    if a.is_nan() || b.is_nan() {
        return nan_select_f32(a, b, nan);
    }
    if a > b {
        a
    } else if b > a {
        b
    } else {
        f32::from_bits(a.to_bits() & b.to_bits())
    }
}

#[inline]
fn nan_select_f32(a: f32, b: f32, nan: bool) -> f32 {
    if nan || (a.is_nan() && b.is_nan()) {
        f32::from_bits(CANONICAL_NAN_F32)
    } else if a.is_nan() {
        b
    } else {
        a
    }
}

/// `min.f64` (9.7.3.11): a NaN input is ignored; both NaN → `a`, quieted (the ISA keeps NaN
/// payloads for `.f64`; which NaN is our choice). -0.0 is less than +0.0.
#[inline]
pub fn min_f64(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        return nan_select_f64(a, b);
    }
    if a < b {
        a
    } else if b < a {
        b
    } else {
        f64::from_bits(a.to_bits() | b.to_bits())
    }
}

/// `max.f64` (9.7.3.12): as [`min_f64`], +0.0 greater than -0.0.
#[inline]
pub fn max_f64(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        return nan_select_f64(a, b);
    }
    if a > b {
        a
    } else if b > a {
        b
    } else {
        f64::from_bits(a.to_bits() & b.to_bits())
    }
}

#[inline]
fn nan_select_f64(a: f64, b: f64) -> f64 {
    if a.is_nan() && b.is_nan() {
        f64::from_bits(a.to_bits() | 1 << 51)
    } else if a.is_nan() {
        b
    } else {
        a
    }
}

/// `abs{.ftz}.f32` (9.7.3.9): clears the sign bit; `.ftz` flushes a subnormal input; NaN gives
/// the canonical NaN (the ISA: "NaN input yields unspecified NaN").
#[inline]
pub fn abs_f32(a: f32, ftz: bool) -> f32 {
    finish_f32(flush(a, ftz).abs(), false, false)
}

/// `abs.f64` (9.7.3.9): clears the sign bit; a NaN passes unchanged, as the ISA states.
#[inline]
pub fn abs_f64(a: f64) -> f64 {
    if a.is_nan() {
        a
    } else {
        f64::from_bits(a.to_bits() & !(1 << 63))
    }
}

/// `neg{.ftz}.f32` (9.7.3.10): flips the sign bit; `.ftz` flushes a subnormal input; NaN gives
/// the canonical NaN (the ISA: "NaN inputs yield an unspecified NaN").
#[inline]
pub fn neg_f32(a: f32, ftz: bool) -> f32 {
    finish_f32(-flush(a, ftz), false, false)
}

/// `neg.f64` (9.7.3.10): flips the sign bit, a NaN's too (the ISA leaves the NaN unspecified).
#[inline]
pub fn neg_f64(a: f64) -> f64 {
    f64::from_bits(a.to_bits() ^ 1 << 63)
}

/// `copysign.f32 d, a, b` (9.7.3.2): `b` with the sign bit of `a` (note the operand order).
#[inline]
pub fn copysign_f32(a: f32, b: f32) -> f32 {
    f32::from_bits((b.to_bits() & 0x7fff_ffff) | (a.to_bits() & 0x8000_0000))
}

/// `copysign.f64 d, a, b` (9.7.3.2): `b` with the sign bit of `a`.
#[inline]
pub fn copysign_f64(a: f64, b: f64) -> f64 {
    f64::from_bits((b.to_bits() & !(1 << 63)) | (a.to_bits() & (1 << 63)))
}

/// The classes of `testp` (9.7.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestpOp {
    Finite,
    Infinite,
    Number,
    NotANumber,
    Normal,
    Subnormal,
}

/// `testp.op` (9.7.3.1) from a value's class: `.normal` includes ±0 ("positive and negative zero
/// are considered normal numbers").
#[inline]
fn testp(op: TestpOp, finite: bool, nan: bool, subnormal: bool) -> bool {
    match op {
        TestpOp::Finite => finite,
        TestpOp::Infinite => !finite && !nan,
        TestpOp::Number => !nan,
        TestpOp::NotANumber => nan,
        TestpOp::Normal => finite && !subnormal,
        TestpOp::Subnormal => subnormal,
    }
}

/// `testp.op.f32` (9.7.3.1).
#[inline]
pub fn testp_f32(op: TestpOp, a: f32) -> bool {
    testp(op, a.is_finite(), a.is_nan(), a.is_subnormal())
}

/// `testp.op.f64` (9.7.3.1).
#[inline]
pub fn testp_f64(op: TestpOp, a: f64) -> bool {
    testp(op, a.is_finite(), a.is_nan(), a.is_subnormal())
}

/// Floating-point comparison operators (9.3.1.2): ordered `eq ne lt le gt ge` (false if either
/// operand is NaN), unordered `equ neu ltu leu gtu geu` (true if either is NaN), `num` (neither
/// NaN) and `nan` (either NaN).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatCmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Equ,
    Neu,
    Ltu,
    Leu,
    Gtu,
    Geu,
    Num,
    Nan,
}

#[inline]
fn float_cmp(cmp: FloatCmp, ord: Option<Ordering>) -> bool {
    use FloatCmp::*;
    let Some(o) = ord else {
        return matches!(cmp, Equ | Neu | Ltu | Leu | Gtu | Geu | Nan);
    };
    match cmp {
        Eq | Equ => o == Ordering::Equal,
        Ne | Neu => o != Ordering::Equal,
        Lt | Ltu => o == Ordering::Less,
        Le | Leu => o != Ordering::Greater,
        Gt | Gtu => o == Ordering::Greater,
        Ge | Geu => o != Ordering::Less,
        Num => true,
        Nan => false,
    }
}

/// `setp.cmp{.ftz}.f32` (9.7.6.2, 9.3.1.2); `.ftz` flushes subnormal inputs. -0 equals +0.
#[inline]
pub fn setp_f32(cmp: FloatCmp, a: f32, b: f32, ftz: bool) -> bool {
    float_cmp(cmp, flush(a, ftz).partial_cmp(&flush(b, ftz)))
}

/// `setp.cmp.f64` (9.7.6.2, 9.3.1.2).
#[inline]
pub fn setp_f64(cmp: FloatCmp, a: f64, b: f64) -> bool {
    float_cmp(cmp, a.partial_cmp(&b))
}

/// Integer comparison operators (9.3.1.1): `eq ne lt le gt ge`, and the unsigned spellings
/// `lo ls hi hs` of `lt le gt ge`. The ordering is that of the instruction type: signed for
/// `.sN`, unsigned for `.uN` and `.bN` (so `setp.lt.u32` compares unsigned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntCmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Lo,
    Ls,
    Hi,
    Hs,
}

/// `setp.cmp.type` on integers (9.7.6.2, 9.3.1.1).
#[inline]
pub fn setp_int(cmp: IntCmp, ty: IntType, a: u64, b: u64) -> bool {
    let o = ty.value(a).cmp(&ty.value(b));
    match cmp {
        IntCmp::Eq => o == Ordering::Equal,
        IntCmp::Ne => o != Ordering::Equal,
        IntCmp::Lt | IntCmp::Lo => o == Ordering::Less,
        IntCmp::Le | IntCmp::Ls => o != Ordering::Greater,
        IntCmp::Gt | IntCmp::Hi => o == Ordering::Greater,
        IntCmp::Ge | IntCmp::Hs => o != Ordering::Less,
    }
}

// ---------------------------------------------------------------------------------------------
// Integer arithmetic (9.7.1) and logic/shift (9.7.8)
// ---------------------------------------------------------------------------------------------

/// `mul.hi.type` (9.7.1.3): the upper half of the full `2n`-bit product.
#[inline]
pub fn mul_hi(ty: IntType, a: u64, b: u64) -> u64 {
    let n = ty.bits();
    let hi = if ty.is_signed() {
        ((ty.value(a) * ty.value(b)) >> n) as u64
    } else {
        ((ty.extend(a) as u128 * ty.extend(b) as u128) >> n) as u64
    };
    ty.extend(hi)
}

/// `mul.wide.type` (9.7.1.3), 16- and 32-bit types: the full `2n`-bit product, extended as the
/// double-width type of the same signedness.
#[inline]
pub fn mul_wide(ty: IntType, a: u64, b: u64) -> u64 {
    debug_assert!(ty.bits() <= 32);
    ty.wide().extend((ty.value(a) * ty.value(b)) as u64)
}

/// `mad.hi.type` (9.7.1.4): the upper half of `a * b` plus `c`, wrapping in `n` bits.
#[inline]
pub fn mad_hi(ty: IntType, a: u64, b: u64, c: u64) -> u64 {
    ty.extend(mul_hi(ty, a, b).wrapping_add(c))
}

/// `mad.hi.sat.s32` (9.7.1.4): the upper half of `a * b` plus `c`, clamped to the `.s32` range.
#[inline]
pub fn mad_hi_sat_s32(a: i32, b: i32, c: i32) -> i32 {
    let hi = ((a as i64 * b as i64) >> 32) as i32;
    (hi as i64 + c as i64).clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

/// `mad.wide.type` (9.7.1.4), 16- and 32-bit types: the `2n`-bit product plus the `2n`-bit `c`,
/// wrapping in `2n` bits.
#[inline]
pub fn mad_wide(ty: IntType, a: u64, b: u64, c: u64) -> u64 {
    ty.wide().extend(mul_wide(ty, a, b).wrapping_add(c))
}

/// `div.type` (9.7.1.8). The ISA leaves division by zero "unspecified, machine-specific"; we
/// define `x / 0` as all ones (`-1` signed, the maximum unsigned), and the overflowing
/// `MIN / -1` as `MIN` (wrapping). Signed division truncates toward zero.
#[inline]
pub fn div_int(ty: IntType, a: u64, b: u64) -> u64 {
    let (x, y) = (ty.extend(a), ty.extend(b));
    if y == 0 {
        return ty.extend(u64::MAX);
    }
    if ty.is_signed() {
        ty.extend((x as i64).wrapping_div(y as i64) as u64)
    } else {
        x / y
    }
}

/// `rem.type` (9.7.1.9). We define `x rem 0` as `x`, and `MIN rem -1` as 0; the signed remainder
/// takes the dividend's sign (division truncating toward zero, the ISA leaving the choice to the
/// machine).
#[inline]
pub fn rem_int(ty: IntType, a: u64, b: u64) -> u64 {
    let (x, y) = (ty.extend(a), ty.extend(b));
    if y == 0 {
        return x;
    }
    if ty.is_signed() {
        ty.extend((x as i64).wrapping_rem(y as i64) as u64)
    } else {
        x % y
    }
}

/// `sad.type` (9.7.1.7): `c + |a - b|`, the difference taken in the type's signedness, wrapping.
#[inline]
pub fn sad(ty: IntType, a: u64, b: u64, c: u64) -> u64 {
    let diff = (ty.value(a) - ty.value(b)).unsigned_abs() as u64;
    ty.extend(c.wrapping_add(diff))
}

/// `abs.type` (9.7.1.10), signed types: `|a|`, with `abs(MIN) = MIN` (wrapping).
#[inline]
pub fn abs_int(ty: IntType, a: u64) -> u64 {
    ty.extend(ty.value(a).unsigned_abs() as u64)
}

/// `neg.type` (9.7.1.11): `-a`, wrapping.
#[inline]
pub fn neg_int(ty: IntType, a: u64) -> u64 {
    ty.extend(a.wrapping_neg())
}

/// `min.type` (9.7.1.12) in the type's signedness.
#[inline]
pub fn min_int(ty: IntType, a: u64, b: u64) -> u64 {
    ty.extend(if ty.value(a) <= ty.value(b) { a } else { b })
}

/// `max.type` (9.7.1.13) in the type's signedness.
#[inline]
pub fn max_int(ty: IntType, a: u64, b: u64) -> u64 {
    ty.extend(if ty.value(a) >= ty.value(b) { a } else { b })
}

/// `popc.b32` / `.b64` (9.7.1.14): the number of one bits in the low `width` bits.
#[inline]
pub fn popc(width: u32, a: u64) -> u32 {
    (a & low_mask(width)).count_ones()
}

/// `clz.b32` / `.b64` (9.7.1.15): leading zeros of the low `width` bits (`width` for zero).
#[inline]
pub fn clz(width: u32, a: u64) -> u32 {
    (a & low_mask(width)).leading_zeros() - (64 - width)
}

/// `bfind{.shiftamt}.type` (9.7.1.16): the position of the most significant non-sign bit (for
/// negative signed inputs the most significant 0), `0xffffffff` if none; `.shiftamt` gives
/// `msb - position` instead.
#[inline]
pub fn bfind(ty: IntType, a: u64, shiftamt: bool) -> u32 {
    let n = ty.bits();
    let mut x = a & low_mask(n);
    if ty.is_signed() && x >> (n - 1) & 1 == 1 {
        x = !x & low_mask(n);
    }
    if x == 0 {
        return u32::MAX;
    }
    let pos = 63 - x.leading_zeros();
    if shiftamt {
        n - 1 - pos
    } else {
        pos
    }
}

/// `brev.b32` / `.b64` (9.7.1.18): the low `width` bits reversed.
#[inline]
pub fn brev(width: u32, a: u64) -> u64 {
    a.reverse_bits() >> (64 - width)
}

/// `bfe.type` (9.7.1.19): extract `len = c & 0xff` bits from position `pos = b & 0xff` of `a`,
/// zero-extended (`.u32`/`.u64`) or extended with the field's sign bit (`.s32`/`.s64`), which is
/// `a[min(pos + len - 1, msb)]`; bits past the msb of `a` read as that sign bit, and `len == 0`
/// gives 0.
#[inline]
pub fn bfe(ty: IntType, a: u64, pos: u32, len: u32) -> u64 {
    let n = ty.bits();
    let (pos, len) = (pos & 0xff, len & 0xff);
    let a = a & low_mask(n);
    let sbit = ty.is_signed() && len != 0 && a >> (pos + len - 1).min(n - 1) & 1 == 1;
    let real = if pos >= n { 0 } else { len.min(n - pos) };
    let mask = low_mask(real);
    let field = if pos >= n { 0 } else { (a >> pos) & mask };
    let fill = if sbit { !mask } else { 0 };
    ty.extend(field | fill)
}

/// `bfi.b32` / `.b64` (9.7.1.20): `b` with `len = d & 0xff` bits from the bottom of `a` inserted
/// at position `pos = c & 0xff`; bits past the msb are dropped, so `pos > msb` or `len == 0`
/// gives `b`.
#[inline]
pub fn bfi(width: u32, a: u64, b: u64, pos: u32, len: u32) -> u64 {
    let (pos, len) = (pos & 0xff, len & 0xff);
    let b = b & low_mask(width);
    if pos >= width {
        return b;
    }
    let mask = low_mask(len.min(width - pos)) << pos;
    (b & !mask) | ((a << pos) & mask)
}

/// `shl.type` (9.7.8.8): shift amounts of `n` or more (an unsigned 32-bit `b`) give 0.
#[inline]
pub fn shl(ty: IntType, a: u64, b: u32) -> u64 {
    if b >= ty.bits() {
        0
    } else {
        ty.extend(a << b)
    }
}

/// `shr.type` (9.7.8.9): signed types fill with the sign bit, unsigned and bit types with 0;
/// amounts of `n` or more are clamped to `n` (all sign bits, or 0).
#[inline]
pub fn shr(ty: IntType, a: u64, b: u32) -> u64 {
    let a = ty.extend(a);
    if ty.is_signed() {
        ((a as i64) >> b.min(63)) as u64
    } else if b >= ty.bits() {
        0
    } else {
        a >> b
    }
}

/// `shf.{l,r}.{clamp,wrap}.b32` (9.7.8.7): shifts the 64-bit `b:a` (`b` the upper word) by
/// `min(c, 32)` (`.clamp`) or `c & 31` (`.wrap`); `.l` returns the upper 32 bits, `.r` the lower.
#[inline]
pub fn shf(left: bool, clamp: bool, a: u32, b: u32, c: u32) -> u32 {
    let n = if clamp { c.min(32) } else { c & 31 };
    let v = (b as u64) << 32 | a as u64;
    if left {
        ((v << n) >> 32) as u32
    } else {
        (v >> n) as u32
    }
}

/// `not.bN` (9.7.8.4): the complement of the low `width` bits.
#[inline]
pub fn not(width: u32, a: u64) -> u64 {
    !a & low_mask(width)
}

/// `cnot.bN` (9.7.8.5): 1 if the low `width` bits of `a` are zero, else 0.
#[inline]
pub fn cnot(width: u32, a: u64) -> u64 {
    (a & low_mask(width) == 0) as u64
}

#[inline]
const fn low_mask(n: u32) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1 << n) - 1
    }
}

/// The modes of `prmt` (9.7.9.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrmtMode {
    /// No mode: four 4-bit selectors in `c[15:0]`.
    Generic,
    F4e,
    B4e,
    Rc8,
    Ecl,
    Ecr,
    Rc16,
}

/// `prmt.b32{.mode} d, a, b, c` (9.7.9.7): picks four of the bytes `{b, a} = {b7..b4, b3..b0}`.
/// Generic form: byte `k` of `d` is selected by `c[4k+3:4k]`; its low 3 bits name the source
/// byte and its msb replicates that byte's sign bit instead. Other modes use `s = c[1:0]` and the
/// ISA's table, which gives byte `k` of `d` as source byte: `.f4e` `s + k`, `.b4e` `(s - k) mod 8`,
/// `.rc8` `s`, `.ecl` `max(k, s)`, `.ecr` `min(k, s)`, `.rc16` `2·(s & 1) + (k & 1)`.
#[inline]
pub fn prmt(a: u32, b: u32, c: u32, mode: PrmtMode) -> u32 {
    let src = (b as u64) << 32 | a as u64;
    let byte = |i: u32| (src >> (8 * (i & 7))) as u8;
    let s = c & 3;
    let mut d = 0u32;
    for k in 0..4 {
        let v = match mode {
            PrmtMode::Generic => {
                let sel = (c >> (4 * k)) & 0xf;
                let v = byte(sel);
                if sel & 8 != 0 {
                    ((v as i8) >> 7) as u8
                } else {
                    v
                }
            }
            PrmtMode::F4e => byte(s + k),
            PrmtMode::B4e => byte(s.wrapping_sub(k)),
            PrmtMode::Rc8 => byte(s),
            PrmtMode::Ecl => byte(k.max(s)),
            PrmtMode::Ecr => byte(k.min(s)),
            PrmtMode::Rc16 => byte(2 * (s & 1) + (k & 1)),
        };
        d |= (v as u32) << (8 * k);
    }
    d
}

// ---------------------------------------------------------------------------------------------
// Conversions (9.7.9.21 cvt)
// ---------------------------------------------------------------------------------------------

/// `cvt{.sat}.dtype.atype` between integer types: the source's low bits read as `from`; without
/// `.sat` the value is truncated to `to`'s width, with `.sat` clamped to `to`'s range ("limits the
/// result to MININT..MAXINT for the size of the operation").
#[inline]
pub fn cvt_int(a: u64, from: IntType, to: IntType, sat: bool) -> u64 {
    if sat {
        let (lo, hi) = to.range();
        to.extend(from.value(a).clamp(lo, hi) as u64)
    } else {
        to.extend(from.extend(a))
    }
}

/// The modifiers of a float-result `cvt`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CvtMods {
    /// `.ftz`: flush `.f32` subnormal inputs and results to sign-preserving zero.
    pub ftz: bool,
    /// `.sat`: clamp the result to [0.0, 1.0], NaN → +0.0.
    pub sat: bool,
    /// `.relu`: negative results (and -0.0) → +0.0, NaN → canonical NaN.
    pub relu: bool,
    /// `.satfinite`: results beyond the largest finite value (infinities included) → ±max
    /// finite; NaN stays NaN.
    pub satfinite: bool,
}

/// A NaN converted to `to`: `.f64` keeps the sign and payload (left-aligned, quieted), like the
/// `.f64` instructions; narrower results are the canonical NaN (the ISA leaves them unspecified).
fn convert_nan(bits: u64, from: Fmt, to: FloatType) -> u64 {
    if to == FloatType::F64 {
        let sign = if bits & from.sign_bit() != 0 { 1 << 63 } else { 0 };
        sign | F64.exp_mask() | 1 << 51 | (bits & from.frac_mask()) << (52 - from.frac)
    } else {
        to.fmt().canonical_nan()
    }
}

/// The result modifiers of a float-result `cvt`, in the order `.ftz`, `.relu`, `.satfinite`,
/// `.sat`.
fn cvt_post(r: u64, to: FloatType, m: CvtMods) -> u64 {
    let f = to.fmt();
    let mut r = r;
    if m.ftz && to == FloatType::F32 && f.is_subnormal(r) {
        r &= f.sign_bit();
    }
    if m.relu {
        if f.is_nan(r) {
            r = f.canonical_nan();
        } else if r & f.sign_bit() != 0 {
            r = 0;
        }
    }
    if m.satfinite && r & !f.sign_bit() == f.exp_mask() {
        r = f.max_finite(r & f.sign_bit() != 0);
    }
    if m.sat {
        r = if f.is_nan(r) || r & f.sign_bit() != 0 {
            0
        } else {
            r.min(f.one())
        };
    }
    r
}

/// `cvt{.frnd}{.ftz}{.sat}{.relu}{.satfinite}.dtype.atype` between `.f16`, `.bf16`, `.f32` and
/// `.f64` (9.7.9.21). A narrowing conversion rounds once under `rnd` (IEEE 754: subnormal results,
/// overflow by mode); a widening one is exact and ignores `rnd`. `.ftz` applies to `.f32` inputs
/// and results only. A NaN becomes, in `.f64`, the NaN of the same sign and payload (quieted), in
/// the narrower types the canonical NaN.
#[inline]
pub fn cvt_float(a: u64, from: FloatType, to: FloatType, rnd: Rounding, m: CvtMods) -> u64 {
    if m == CvtMods::default() {
        if let Some(r) = cvt_float_fast(a, from, to, rnd) {
            return r;
        }
    }
    let ff = from.fmt();
    let mut a = a & (ff.sign_bit() << 1).wrapping_sub(1);
    if m.ftz && from == FloatType::F32 && ff.is_subnormal(a) {
        a &= ff.sign_bit();
    }
    let r = match decode(a, ff) {
        Class::Nan => convert_nan(a, ff, to),
        Class::Inf(neg) => to.fmt().inf(neg),
        Class::Finite(x) => round_exact(x, to.fmt(), rnd),
    };
    cvt_post(r, to, m)
}

/// The frequent unmodified conversions of non-NaN values on the host: `.f32`↔`.f64` (`as` casts
/// are exact widening and round-to-nearest narrowing), `.bf16`→`.f32` (the upper half of an
/// `.f32`), and `.f32`→`.bf16` to nearest even (adding half a unit, minus one unless the kept lsb
/// is odd, then truncating: carries reach the exponent, so overflow gives infinity).
#[inline]
fn cvt_float_fast(a: u64, from: FloatType, to: FloatType, rnd: Rounding) -> Option<u64> {
    match (from, to, rnd) {
        (FloatType::F32, FloatType::F64, _) => {
            let x = f32::from_bits(a as u32);
            (!x.is_nan()).then(|| (x as f64).to_bits())
        }
        (FloatType::F64, FloatType::F32, Rounding::Rn) => {
            let x = f64::from_bits(a);
            (!x.is_nan()).then(|| b32(x as f32))
        }
        (FloatType::Bf16, FloatType::F32, _) => (!BF16.is_nan(a & 0xffff)).then_some((a & 0xffff) << 16),
        (FloatType::F32, FloatType::Bf16, Rounding::Rn) => {
            let b = a & 0xffff_ffff;
            (!F32.is_nan(b)).then_some((b + 0x7fff + ((b >> 16) & 1)) >> 16)
        }
        _ => None,
    }
}

/// `cvt.frnd{.relu}{.satfinite}.f16x2.f32 d, a, b` / `.bf16x2.f32` (9.7.9.21): both converted as
/// [`cvt_float`] to `to` (`F16` or `Bf16`) and packed with `a`'s result in the upper half of `d`
/// and `b`'s in the lower half ("d[31:16] = convert(a); d[15:0] = convert(b)").
#[inline]
pub fn cvt_float_x2(a: f32, b: f32, to: FloatType, rnd: Rounding, m: CvtMods) -> u32 {
    debug_assert!(matches!(to, FloatType::F16 | FloatType::Bf16));
    let hi = cvt_float(b32(a), FloatType::F32, to, rnd, m);
    let lo = cvt_float(b32(b), FloatType::F32, to, rnd, m);
    (hi << 16 | lo) as u32
}

/// `cvt.rna{.satfinite}.tf32.f32`, `cvt.{rn,rz}{.satfinite}{.relu}.tf32.f32` (9.7.9.21): `a`
/// rounded to `.tf32` precision (10 fraction bits, the `.f32` exponent range with its subnormals)
/// and returned as an `.f32` bit pattern whose low 13 bits are zero (the ISA leaves the layout
/// implementation-defined; this is the one `mma` reads). Overflow gives infinity (`.satfinite`:
/// ±max finite, `0x7f7f_e000`); NaN gives `0x7fff_e000`.
#[inline]
pub fn cvt_tf32_f32(a: f32, rnd: Rounding, relu: bool, satfinite: bool) -> u32 {
    let bits = b32(a);
    if rnd == Rounding::Rna && !relu && !satfinite && a.is_finite() {
        // the frequent case, on the bits: adding half of the dropped range to the magnitude rounds
        // it to nearest with ties away from zero, a carry moving into the exponent as it should
        // (to infinity beyond the largest value)
        return (bits as u32).wrapping_add(0x1000) & 0xffff_e000;
    }
    let mut r = match decode(bits, F32) {
        Class::Nan => return 0x7fff_e000,
        Class::Inf(neg) => F32.inf(neg),
        Class::Finite(x) => round_exact(x, TF32, rnd) << 13,
    };
    if relu && r & F32.sign_bit() != 0 {
        r = 0;
    }
    if satfinite && r & !F32.sign_bit() == F32.exp_mask() {
        r = (F32.sign_bit() & r) | 0x7f7f_e000;
    }
    r as u32
}

/// `cvt.irnd{.ftz}.itype.ftype` (9.7.9.21): `a` rounded to an integer under `rnd` and clamped to
/// `to`'s range ("the result is clamped to the destination range by default"); ±Inf give the
/// range's ends. NaN gives 0 when the source is not `.f64` and the destination is not 64-bit,
/// else `1 << (n - 1)` (the ISA's rule). `.ftz` flushes an `.f32` subnormal input to zero.
#[inline]
pub fn cvt_float_to_int(a: u64, from: FloatType, to: IntType, rnd: IntRounding, ftz: bool) -> u64 {
    let ff = from.fmt();
    let mut a = a & (ff.sign_bit() << 1).wrapping_sub(1);
    if ftz && from == FloatType::F32 && ff.is_subnormal(a) {
        a &= ff.sign_bit();
    }
    let (lo, hi) = to.range();
    let v = match decode(a, ff) {
        Class::Nan => {
            return if from != FloatType::F64 && to.bits() != 64 {
                0
            } else {
                to.extend(1 << (to.bits() - 1))
            };
        }
        Class::Inf(neg) => {
            if neg {
                lo
            } else {
                hi
            }
        }
        Class::Finite(x) => round_to_int(x, rnd),
    };
    to.extend(v.clamp(lo, hi) as u64)
}

/// `x` rounded to an integer, magnitudes beyond 2^100 clamped to 2^100 (out of every range).
fn round_to_int(x: Exact, rnd: IntRounding) -> i128 {
    const BIG: u128 = 1 << 100;
    if x.sig == 0 {
        return 0;
    }
    let mag = if x.exp >= 0 {
        if x.exp + 128 - x.sig.leading_zeros() as i32 > 100 {
            BIG
        } else {
            x.sig << x.exp as u32
        }
    } else {
        let (kept, ord, inexact) = split(x.sig, (-x.exp) as u32, false);
        let mode = match rnd {
            IntRounding::Rni => Rounding::Rn,
            IntRounding::Rzi => Rounding::Rz,
            IntRounding::Rmi => Rounding::Rm,
            IntRounding::Rpi => Rounding::Rp,
        };
        kept + round_up(mode, x.neg, kept, ord, inexact) as u128
    };
    let mag = mag.min(BIG) as i128;
    if x.neg {
        -mag
    } else {
        mag
    }
}

/// `cvt.frnd{.sat}.ftype.itype` (9.7.9.21): the integer rounded once to `to` under `rnd`; `.sat`
/// clamps the result to [0, 1].
#[inline]
pub fn cvt_int_to_float(a: u64, from: IntType, to: FloatType, rnd: Rounding, sat: bool) -> u64 {
    let v = from.value(a);
    // Rust's integer-to-float casts round to nearest even.
    match (to, rnd, sat) {
        (FloatType::F32, Rounding::Rn, false) => return b32(v as f32),
        (FloatType::F64, Rounding::Rn, false) => return (v as f64).to_bits(),
        _ => {}
    }
    let x = Exact {
        neg: v < 0,
        sig: v.unsigned_abs(),
        exp: 0,
        sticky: false,
    };
    cvt_post(
        round_exact(x, to.fmt(), rnd),
        to,
        CvtMods {
            sat,
            ..CvtMods::default()
        },
    )
}

/// `cvt.irnd{.ftz}{.sat}.ftype.ftype` (9.7.9.21): a float rounded to an integral value of the same
/// type (`.rni` ties to even, `.rzi`, `.rmi`, `.rpi`); zeros keep their sign, as does a value
/// rounding to zero. NaN → the canonical NaN (`.f32`, `.f16`, `.bf16`) or the operand quieted
/// (`.f64`); `.ftz` (`.f32`) flushes a subnormal input;
/// `.sat` clamps to [0, 1].
#[inline]
pub fn cvt_round_integral(a: u64, ty: FloatType, rnd: IntRounding, ftz: bool, sat: bool) -> u64 {
    let round32 = |x: f32| match rnd {
        IntRounding::Rni => x.round_ties_even(),
        IntRounding::Rzi => x.trunc(),
        IntRounding::Rmi => x.floor(),
        IntRounding::Rpi => x.ceil(),
    };
    let m = CvtMods {
        sat,
        ..CvtMods::default()
    };
    match ty {
        FloatType::F32 => b32(finish_f32(round32(flush(f32::from_bits(a as u32), ftz)), false, sat)),
        FloatType::F64 => {
            let x = f64::from_bits(a);
            let r = match rnd {
                IntRounding::Rni => x.round_ties_even(),
                IntRounding::Rzi => x.trunc(),
                IntRounding::Rmi => x.floor(),
                IntRounding::Rpi => x.ceil(),
            };
            cvt_post(finish_f64(r, &[x]).to_bits(), ty, m)
        }
        FloatType::F16 | FloatType::Bf16 => {
            // Exact through f32: every f16/bf16 value and every integral value they round to is an f32.
            let x = cvt_float(a, ty, FloatType::F32, Rounding::Rn, CvtMods::default());
            let r = round32(f32::from_bits(x as u32));
            cvt_float(b32(r), FloatType::F32, ty, Rounding::Rn, m)
        }
    }
}
