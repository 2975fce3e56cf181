//! Lane-wise arithmetic: each function computes one decoded operation for all 32 lanes of a warp
//! at once (inactive lanes included: their results are discarded when the destination is
//! written), so the loops are straight and the compiler vectorises them. Every operation is
//! total: no input makes it panic (division by zero included, see `numerics`).
//!
//! Values are in the register representation: the low `bits` bits of a 64-bit lane, upper bits
//! zero; f32 as its bits in the low half.

use super::ir::*;
use super::numerics::{self as num, Rounding};

pub type Lanes = [u64; 32];

#[inline]
fn map1(a: &Lanes, f: impl Fn(u64) -> u64) -> Lanes {
    let mut out = [0u64; 32];
    for i in 0..32 {
        out[i] = f(a[i]);
    }
    out
}

#[inline]
fn map2(a: &Lanes, b: &Lanes, f: impl Fn(u64, u64) -> u64) -> Lanes {
    let mut out = [0u64; 32];
    for i in 0..32 {
        out[i] = f(a[i], b[i]);
    }
    out
}

#[inline]
fn map3(a: &Lanes, b: &Lanes, c: &Lanes, f: impl Fn(u64, u64, u64) -> u64) -> Lanes {
    let mut out = [0u64; 32];
    for i in 0..32 {
        out[i] = f(a[i], b[i], c[i]);
    }
    out
}

/// All-ones in the low `bits` bits.
#[inline]
pub fn width_mask(bits: u8) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// The low `bits` bits of `x`, sign-extended.
#[inline]
pub fn sext(x: u64, bits: u8) -> i64 {
    let shift = 64 - u32::from(bits);
    ((x << shift) as i64) >> shift
}

#[inline]
fn f32_of(x: u64) -> f32 {
    f32::from_bits(x as u32)
}

#[inline]
fn bits32(x: f32) -> u64 {
    u64::from(x.to_bits())
}

#[inline]
fn f64_of(x: u64) -> f64 {
    f64::from_bits(x)
}

pub fn int_binary(op: IntBinary, ty: IntTy, a: &Lanes, b: &Lanes) -> Lanes {
    let bits = ty.bits;
    let m = width_mask(bits);
    match op {
        IntBinary::Add => map2(a, b, |x, y| x.wrapping_add(y) & m),
        IntBinary::Sub => map2(a, b, |x, y| x.wrapping_sub(y) & m),
        IntBinary::MulLo => map2(a, b, |x, y| x.wrapping_mul(y) & m),
        IntBinary::And => map2(a, b, |x, y| x & y),
        IntBinary::Or => map2(a, b, |x, y| x | y),
        IntBinary::Xor => map2(a, b, |x, y| x ^ y),
        // shift amounts are u32 and clamp at the width (PTX ISA, shl/shr)
        IntBinary::Shl => map2(a, b, |x, s| if s >= u64::from(bits) { 0 } else { (x << s) & m }),
        IntBinary::Shr if ty.signed => map2(a, b, |x, s| {
            let s = s.min(u64::from(bits) - 1);
            ((sext(x, bits) >> s) as u64) & m
        }),
        IntBinary::Shr => map2(a, b, |x, s| if s >= u64::from(bits) { 0 } else { x >> s }),
        IntBinary::Min if ty.signed => map2(a, b, |x, y| (sext(x, bits).min(sext(y, bits)) as u64) & m),
        IntBinary::Min => map2(a, b, |x, y| x.min(y)),
        IntBinary::Max if ty.signed => map2(a, b, |x, y| (sext(x, bits).max(sext(y, bits)) as u64) & m),
        IntBinary::Max => map2(a, b, |x, y| x.max(y)),
        IntBinary::MulHi => map2(a, b, |x, y| num::mul_hi(x, y, bits, ty.signed)),
        IntBinary::MulWide => map2(a, b, |x, y| num::mul_wide(x, y, bits, ty.signed)),
        IntBinary::Div => map2(a, b, |x, y| num::div_int(x, y, bits, ty.signed)),
        IntBinary::Rem => map2(a, b, |x, y| num::rem_int(x, y, bits, ty.signed)),
    }
}

pub fn int_unary(op: IntUnary, ty: IntTy, a: &Lanes) -> Lanes {
    let bits = ty.bits;
    let m = width_mask(bits);
    match op {
        IntUnary::Neg => map1(a, |x| x.wrapping_neg() & m),
        IntUnary::Abs => map1(a, |x| (sext(x, bits).unsigned_abs()) & m),
        IntUnary::Not => map1(a, |x| !x & m),
        IntUnary::Cnot => map1(a, |x| u64::from(x & m == 0)),
        IntUnary::Popc => map1(a, |x| u64::from((x & m).count_ones())),
        IntUnary::Clz => map1(a, |x| u64::from((x & m).leading_zeros() - (64 - u32::from(bits)))),
        IntUnary::Brev => map1(a, |x| (x & m).reverse_bits() >> (64 - u32::from(bits))),
    }
}

/// `mad.lo/hi/wide`: the chosen part of `a*b`, plus `c` (as wide as the result).
pub fn int_mad(part: IntBinary, ty: IntTy, a: &Lanes, b: &Lanes, c: &Lanes) -> Lanes {
    let product = int_binary(part, ty, a, b);
    let out_bits = if part == IntBinary::MulWide {
        ty.bits * 2
    } else {
        ty.bits
    };
    let m = width_mask(out_bits);
    map2(&product, c, |p, c| p.wrapping_add(c) & m)
}

pub fn bfi(bits: u8, a: &Lanes, b: &Lanes, pos: &Lanes, len: &Lanes) -> Lanes {
    let mut out = [0u64; 32];
    for i in 0..32 {
        out[i] = num::bfi(a[i], b[i], pos[i] as u32, len[i] as u32, bits);
    }
    out
}

pub fn bfe(ty: IntTy, a: &Lanes, pos: &Lanes, len: &Lanes) -> Lanes {
    map3(a, pos, len, |x, p, l| {
        num::bfe(x, p as u32, l as u32, ty.bits, ty.signed)
    })
}

pub fn prmt(a: &Lanes, b: &Lanes, c: &Lanes) -> Lanes {
    map3(a, b, c, |x, y, s| u64::from(num::prmt(x as u32, y as u32, s as u32)))
}

/// Whether `mode` is plain round-to-nearest, the case the host's IEEE operations compute.
#[inline]
fn plain(mode: FloatMode) -> bool {
    mode.rounding == Rounding::Rn && !mode.ftz && !mode.sat
}

pub fn float_binary(op: FloatBinary, ty: FloatTy, mode: FloatMode, a: &Lanes, b: &Lanes) -> Lanes {
    match (ty, op) {
        (FloatTy::F32, FloatBinary::Add) if plain(mode) => map2(a, b, |x, y| bits32(f32_of(x) + f32_of(y))),
        (FloatTy::F32, FloatBinary::Sub) if plain(mode) => map2(a, b, |x, y| bits32(f32_of(x) - f32_of(y))),
        (FloatTy::F32, FloatBinary::Mul) if plain(mode) => map2(a, b, |x, y| bits32(f32_of(x) * f32_of(y))),
        (FloatTy::F32, FloatBinary::Div) if plain(mode) => map2(a, b, |x, y| bits32(f32_of(x) / f32_of(y))),
        (FloatTy::F64, FloatBinary::Add) if plain(mode) => map2(a, b, |x, y| (f64_of(x) + f64_of(y)).to_bits()),
        (FloatTy::F64, FloatBinary::Sub) if plain(mode) => map2(a, b, |x, y| (f64_of(x) - f64_of(y)).to_bits()),
        (FloatTy::F64, FloatBinary::Mul) if plain(mode) => map2(a, b, |x, y| (f64_of(x) * f64_of(y)).to_bits()),
        (FloatTy::F64, FloatBinary::Div) if plain(mode) => map2(a, b, |x, y| (f64_of(x) / f64_of(y)).to_bits()),
        (FloatTy::F32, op) => map2(a, b, |x, y| bits32(num::f32_binary(op, f32_of(x), f32_of(y), mode))),
        (FloatTy::F64, op) => map2(a, b, |x, y| num::f64_binary(op, f64_of(x), f64_of(y), mode).to_bits()),
    }
}

pub fn float_unary(op: FloatUnary, ty: FloatTy, mode: FloatMode, a: &Lanes) -> Lanes {
    match (ty, op) {
        (FloatTy::F32, FloatUnary::Neg) if !mode.ftz => map1(a, |x| x ^ 0x8000_0000),
        (FloatTy::F32, FloatUnary::Abs) if !mode.ftz => map1(a, |x| x & 0x7FFF_FFFF),
        (FloatTy::F64, FloatUnary::Neg) => map1(a, |x| x ^ (1 << 63)),
        (FloatTy::F64, FloatUnary::Abs) => map1(a, |x| x & !(1 << 63)),
        (FloatTy::F32, FloatUnary::Sqrt) if plain(mode) => map1(a, |x| bits32(f32_of(x).sqrt())),
        (FloatTy::F64, FloatUnary::Sqrt) if plain(mode) => map1(a, |x| f64_of(x).sqrt().to_bits()),
        (FloatTy::F32, op) => map1(a, |x| bits32(num::f32_unary(op, f32_of(x), mode))),
        (FloatTy::F64, op) => map1(a, |x| num::f64_unary(op, f64_of(x), mode).to_bits()),
    }
}

/// Fused multiply-adds of all lanes, round to nearest: compiled with the host's FMA instructions
/// where it has them (a plain build targets CPUs without, and `mul_add` would call libm's
/// software `fma`, the hottest function of a conv kernel's emulation).
#[inline]
fn fma_nearest(ty: FloatTy, a: &Lanes, b: &Lanes, c: &Lanes) -> Lanes {
    #[inline(always)]
    fn lanes(ty: FloatTy, a: &Lanes, b: &Lanes, c: &Lanes) -> Lanes {
        match ty {
            FloatTy::F32 => map3(a, b, c, |x, y, z| bits32(f32_of(x).mul_add(f32_of(y), f32_of(z)))),
            FloatTy::F64 => map3(a, b, c, |x, y, z| f64_of(x).mul_add(f64_of(y), f64_of(z)).to_bits()),
        }
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "fma,avx2")]
        unsafe fn with_fma(ty: FloatTy, a: &Lanes, b: &Lanes, c: &Lanes) -> Lanes {
            lanes(ty, a, b, c)
        }
        // SAFETY: the CPU has the features the function is compiled for (checked above).
        return unsafe { with_fma(ty, a, b, c) };
    }
    lanes(ty, a, b, c)
}

pub fn fma(ty: FloatTy, mode: FloatMode, a: &Lanes, b: &Lanes, c: &Lanes) -> Lanes {
    match ty {
        _ if plain(mode) => fma_nearest(ty, a, b, c),
        FloatTy::F32 => map3(a, b, c, |x, y, z| {
            bits32(num::f32_fma(f32_of(x), f32_of(y), f32_of(z), mode))
        }),
        FloatTy::F64 => map3(a, b, c, |x, y, z| {
            num::f64_fma(f64_of(x), f64_of(y), f64_of(z), mode).to_bits()
        }),
    }
}

/// `setp`'s comparison as a lane mask.
pub fn compare(cmp: Cmp, ty: CmpTy, a: &Lanes, b: &Lanes) -> u32 {
    let mut mask = 0u32;
    match ty {
        CmpTy::Int(t) => {
            for i in 0..32 {
                let ord = if t.signed {
                    sext(a[i], t.bits).cmp(&sext(b[i], t.bits))
                } else {
                    (a[i] & width_mask(t.bits)).cmp(&(b[i] & width_mask(t.bits)))
                };
                let r = match cmp {
                    Cmp::Eq | Cmp::Equ => ord.is_eq(),
                    Cmp::Ne | Cmp::Neu => ord.is_ne(),
                    Cmp::Lt | Cmp::Ltu => ord.is_lt(),
                    Cmp::Le | Cmp::Leu => ord.is_le(),
                    Cmp::Gt | Cmp::Gtu => ord.is_gt(),
                    Cmp::Ge | Cmp::Geu => ord.is_ge(),
                    Cmp::Num => true,
                    Cmp::Nan => false,
                };
                mask |= u32::from(r) << i;
            }
        }
        CmpTy::Float(FloatTy::F32) => {
            for i in 0..32 {
                mask |= u32::from(float_compare(cmp, f64::from(f32_of(a[i])), f64::from(f32_of(b[i])))) << i;
            }
        }
        CmpTy::Float(FloatTy::F64) => {
            for i in 0..32 {
                mask |= u32::from(float_compare(cmp, f64_of(a[i]), f64_of(b[i]))) << i;
            }
        }
    }
    mask
}

/// PTX float comparisons: the plain forms are false when either operand is NaN, the `u` forms
/// true (PTX ISA, setp: "unordered" comparisons).
#[inline]
fn float_compare(cmp: Cmp, x: f64, y: f64) -> bool {
    let unordered = x.is_nan() || y.is_nan();
    match cmp {
        Cmp::Eq => x == y,
        Cmp::Ne => !unordered && x != y,
        Cmp::Lt => x < y,
        Cmp::Le => x <= y,
        Cmp::Gt => x > y,
        Cmp::Ge => x >= y,
        Cmp::Equ => unordered || x == y,
        Cmp::Neu => x != y,
        Cmp::Ltu => unordered || x < y,
        Cmp::Leu => unordered || x <= y,
        Cmp::Gtu => unordered || x > y,
        Cmp::Geu => unordered || x >= y,
        Cmp::Num => !unordered,
        Cmp::Nan => unordered,
    }
}

pub fn cvt(dst: CvtTy, src: CvtTy, rounding: Option<Rounding>, ftz: bool, sat: bool, a: &Lanes) -> Lanes {
    match (dst, src, rounding, ftz, sat) {
        // the frequent conversions, computed directly
        (CvtTy::F64, CvtTy::F32, None, false, false) => map1(a, |x| f64::from(f32_of(x)).to_bits()),
        (CvtTy::F32, CvtTy::F64, Some(Rounding::Rn), false, false) => map1(a, |x| bits32(f64_of(x) as f32)),
        (CvtTy::Int(d), CvtTy::Int(s), None, _, false) => {
            let m = width_mask(d.bits);
            if s.signed {
                map1(a, |x| (sext(x, s.bits) as u64) & m)
            } else {
                map1(a, |x| (x & width_mask(s.bits)) & m)
            }
        }
        _ => map1(a, |x| num::cvt(dst, src, rounding, ftz, sat, x)),
    }
}

/// `cvt.rn(.relu).bf16x2.f32 d, a, b` / f16x2: `a` converted into the upper half, `b` into the
/// lower half (PTX ISA, cvt: "the converted value of a is stored in the upper half").
pub fn cvt_pack(dst: CvtTy, rounding: Rounding, relu: bool, a: &Lanes, b: &Lanes) -> Lanes {
    map2(a, b, |x, y| {
        let hi = num::cvt_half(dst, rounding, relu, f32_of(x));
        let lo = num::cvt_half(dst, rounding, relu, f32_of(y));
        (u64::from(hi) << 16) | u64::from(lo)
    })
}
