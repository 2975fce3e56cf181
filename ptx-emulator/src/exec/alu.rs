//! Lane-wise arithmetic: each function computes one decoded operation for all 32 lanes of a warp
//! at once (inactive lanes included: their results are discarded when the destination is
//! written), so the loops are straight and the compiler vectorises them. The scalar semantics are
//! `numerics`'s; the frequent round-to-nearest float operations take the host's IEEE operations
//! directly, with `numerics`'s NaN results (f32: the canonical NaN; f64: recomputed there).
//!
//! Values are in the register representation: the low `bits` bits of a 64-bit lane, upper bits
//! zero (`numerics` sign-extends signed results; they are masked here); f32 as its bits in the
//! low half.

use super::ir::*;
use super::numerics::{self as num, CvtMods, PrmtMode, CANONICAL_NAN_F32};

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
pub fn width_mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// The low `bits` bits of `x`, sign-extended.
#[inline]
pub fn sext(x: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
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

/// An f32 result of the host, with PTX's canonical NaN.
#[inline]
fn canonical32(x: f32) -> u64 {
    if x.is_nan() {
        u64::from(CANONICAL_NAN_F32)
    } else {
        bits32(x)
    }
}

#[inline]
fn f64_of(x: u64) -> f64 {
    f64::from_bits(x)
}

pub fn int_binary(op: IntBinary, ty: IntType, a: &Lanes, b: &Lanes) -> Lanes {
    let m = width_mask(ty.bits());
    match op {
        IntBinary::Add => map2(a, b, |x, y| x.wrapping_add(y) & m),
        IntBinary::Sub => map2(a, b, |x, y| x.wrapping_sub(y) & m),
        IntBinary::MulLo => map2(a, b, |x, y| x.wrapping_mul(y) & m),
        IntBinary::And => map2(a, b, |x, y| x & y),
        IntBinary::Or => map2(a, b, |x, y| x | y),
        IntBinary::Xor => map2(a, b, |x, y| x ^ y),
        IntBinary::Shl => map2(a, b, |x, s| num::shl(ty, x, s as u32) & m),
        IntBinary::Shr => map2(a, b, |x, s| num::shr(ty, x, s as u32) & m),
        IntBinary::Min => map2(a, b, |x, y| num::min_int(ty, x, y) & m),
        IntBinary::Max => map2(a, b, |x, y| num::max_int(ty, x, y) & m),
        IntBinary::MulHi => map2(a, b, |x, y| num::mul_hi(ty, x, y) & m),
        IntBinary::MulWide => map2(a, b, |x, y| num::mul_wide(ty, x, y) & width_mask(2 * ty.bits())),
        IntBinary::Div => map2(a, b, |x, y| num::div_int(ty, x, y) & m),
        IntBinary::Rem => map2(a, b, |x, y| num::rem_int(ty, x, y) & m),
    }
}

pub fn int_unary(op: IntUnary, ty: IntType, a: &Lanes) -> Lanes {
    let (bits, m) = (ty.bits(), width_mask(ty.bits()));
    match op {
        IntUnary::Neg => map1(a, |x| num::neg_int(ty, x) & m),
        IntUnary::Abs => map1(a, |x| num::abs_int(ty, x) & m),
        IntUnary::Not => map1(a, |x| num::not(bits, x) & m),
        IntUnary::Cnot => map1(a, |x| num::cnot(bits, x) & m),
        IntUnary::Popc => map1(a, |x| u64::from(num::popc(bits, x))),
        IntUnary::Clz => map1(a, |x| u64::from(num::clz(bits, x))),
        IntUnary::Brev => map1(a, |x| num::brev(bits, x) & m),
    }
}

/// `mad.lo/hi/wide`: the chosen part of `a*b`, plus `c` (as wide as the result).
pub fn int_mad(part: IntBinary, ty: IntType, a: &Lanes, b: &Lanes, c: &Lanes) -> Lanes {
    let m = width_mask(ty.bits());
    match part {
        IntBinary::MulHi => map3(a, b, c, |x, y, z| num::mad_hi(ty, x, y, z) & m),
        IntBinary::MulWide => map3(a, b, c, |x, y, z| {
            num::mad_wide(ty, x, y, z) & width_mask(2 * ty.bits())
        }),
        _ => map3(a, b, c, |x, y, z| x.wrapping_mul(y).wrapping_add(z) & m),
    }
}

pub fn bfi(bits: u32, a: &Lanes, b: &Lanes, pos: &Lanes, len: &Lanes) -> Lanes {
    let mut out = [0u64; 32];
    for i in 0..32 {
        out[i] = num::bfi(bits, a[i], b[i], pos[i] as u32, len[i] as u32) & width_mask(bits);
    }
    out
}

pub fn bfe(ty: IntType, a: &Lanes, pos: &Lanes, len: &Lanes) -> Lanes {
    let m = width_mask(ty.bits());
    map3(a, pos, len, |x, p, l| num::bfe(ty, x, p as u32, l as u32) & m)
}

pub fn prmt(a: &Lanes, b: &Lanes, c: &Lanes) -> Lanes {
    map3(a, b, c, |x, y, s| {
        u64::from(num::prmt(x as u32, y as u32, s as u32, PrmtMode::Generic))
    })
}

/// Whether `mode` is plain round-to-nearest, the case the host's IEEE operations compute.
#[inline]
fn plain(mode: FloatMode) -> bool {
    mode.rounding == Rounding::Rn && !mode.ftz && !mode.sat
}

pub fn float_binary(op: FloatBinary, ty: FloatTy, mode: FloatMode, a: &Lanes, b: &Lanes) -> Lanes {
    let (rnd, ftz, sat) = (mode.rounding, mode.ftz, mode.sat);
    match ty {
        FloatTy::F32 => match op {
            FloatBinary::Add if plain(mode) => map2(a, b, |x, y| canonical32(f32_of(x) + f32_of(y))),
            FloatBinary::Sub if plain(mode) => map2(a, b, |x, y| canonical32(f32_of(x) - f32_of(y))),
            FloatBinary::Mul if plain(mode) => map2(a, b, |x, y| canonical32(f32_of(x) * f32_of(y))),
            FloatBinary::Div if plain(mode) => map2(a, b, |x, y| canonical32(f32_of(x) / f32_of(y))),
            _ => {
                let f: fn(f32, f32, Rounding, bool, bool) -> f32 = match op {
                    FloatBinary::Add => num::add_f32,
                    FloatBinary::Sub => num::sub_f32,
                    FloatBinary::Mul => num::mul_f32,
                    FloatBinary::Div => |x, y, r, z, _| num::div_f32(x, y, r, z),
                    FloatBinary::Min => |x, y, _, z, _| num::min_f32(x, y, z, false),
                    FloatBinary::Max => |x, y, _, z, _| num::max_f32(x, y, z, false),
                    FloatBinary::MinNan => |x, y, _, z, _| num::min_f32(x, y, z, true),
                    FloatBinary::MaxNan => |x, y, _, z, _| num::max_f32(x, y, z, true),
                    FloatBinary::DivApprox => |x, y, _, z, _| num::div_approx_f32(x, y, z),
                    FloatBinary::DivFull => |x, y, _, z, _| num::div_full_f32(x, y, z),
                    FloatBinary::Copysign => |x, y, _, _, _| num::copysign_f32(x, y),
                };
                map2(a, b, |x, y| bits32(f(f32_of(x), f32_of(y), rnd, ftz, sat)))
            }
        },
        FloatTy::F64 => {
            let f: fn(f64, f64, Rounding) -> f64 = match op {
                FloatBinary::Add => num::add_f64,
                FloatBinary::Sub => num::sub_f64,
                FloatBinary::Mul => num::mul_f64,
                FloatBinary::Div => num::div_f64,
                FloatBinary::Min | FloatBinary::MinNan => |x, y, _| num::min_f64(x, y),
                FloatBinary::Max | FloatBinary::MaxNan => |x, y, _| num::max_f64(x, y),
                FloatBinary::Copysign => |x, y, _| num::copysign_f64(x, y),
                FloatBinary::DivApprox | FloatBinary::DivFull => unreachable!("decode allows these on f32 only"),
            };
            let host: Option<fn(f64, f64) -> f64> = match op {
                _ if rnd != Rounding::Rn => None,
                FloatBinary::Add => Some(|x, y| x + y),
                FloatBinary::Sub => Some(|x, y| x - y),
                FloatBinary::Mul => Some(|x, y| x * y),
                FloatBinary::Div => Some(|x, y| x / y),
                _ => None,
            };
            match host {
                // a NaN result takes numerics' payload rule
                Some(h) => map2(a, b, |x, y| {
                    let r = h(f64_of(x), f64_of(y));
                    if r.is_nan() {
                        f(f64_of(x), f64_of(y), rnd).to_bits()
                    } else {
                        r.to_bits()
                    }
                }),
                None => map2(a, b, |x, y| f(f64_of(x), f64_of(y), rnd).to_bits()),
            }
        }
    }
}

pub fn float_unary(op: FloatUnary, ty: FloatTy, mode: FloatMode, a: &Lanes) -> Lanes {
    let (rnd, ftz) = (mode.rounding, mode.ftz);
    match ty {
        FloatTy::F32 => {
            if op == FloatUnary::Sqrt && plain(mode) {
                return map1(a, |x| canonical32(f32_of(x).sqrt()));
            }
            let f: fn(f32, Rounding, bool) -> f32 = match op {
                FloatUnary::Neg => |x, _, z| num::neg_f32(x, z),
                FloatUnary::Abs => |x, _, z| num::abs_f32(x, z),
                FloatUnary::Sqrt => num::sqrt_f32,
                FloatUnary::SqrtApprox => |x, _, z| num::sqrt_approx_f32(x, z),
                FloatUnary::Rcp => num::rcp_f32,
                FloatUnary::RcpApprox => |x, _, z| num::rcp_approx_f32(x, z),
                FloatUnary::RsqrtApprox => |x, _, z| num::rsqrt_approx_f32(x, z),
                FloatUnary::Ex2Approx => |x, _, z| num::ex2_approx_f32(x, z),
                FloatUnary::Lg2Approx => |x, _, z| num::lg2_approx_f32(x, z),
                FloatUnary::SinApprox => |x, _, z| num::sin_approx_f32(x, z),
                FloatUnary::CosApprox => |x, _, z| num::cos_approx_f32(x, z),
                FloatUnary::TanhApprox => |x, _, _| num::tanh_approx_f32(x),
            };
            map1(a, |x| bits32(f(f32_of(x), rnd, ftz)))
        }
        FloatTy::F64 => {
            let f: fn(f64, Rounding, bool) -> f64 = match op {
                FloatUnary::Neg => |x, _, _| num::neg_f64(x),
                FloatUnary::Abs => |x, _, _| num::abs_f64(x),
                FloatUnary::Sqrt => |x, r, _| num::sqrt_f64(x, r),
                FloatUnary::Rcp => |x, r, _| num::rcp_f64(x, r),
                FloatUnary::RcpApprox => |x, _, _| num::rcp_approx_ftz_f64(x),
                FloatUnary::RsqrtApprox => |x, _, z| {
                    if z {
                        num::rsqrt_approx_ftz_f64(x)
                    } else {
                        num::rsqrt_approx_f64(x)
                    }
                },
                _ => unreachable!("decode allows only neg, abs, sqrt, rcp and rsqrt on f64"),
            };
            map1(a, |x| f(f64_of(x), rnd, ftz).to_bits())
        }
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
            FloatTy::F32 => map3(a, b, c, |x, y, z| canonical32(f32_of(x).mul_add(f32_of(y), f32_of(z)))),
            FloatTy::F64 => map3(a, b, c, |x, y, z| {
                let r = f64_of(x).mul_add(f64_of(y), f64_of(z));
                if r.is_nan() {
                    num::fma_f64(f64_of(x), f64_of(y), f64_of(z), Rounding::Rn).to_bits()
                } else {
                    r.to_bits()
                }
            }),
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
    let (rnd, ftz, sat) = (mode.rounding, mode.ftz, mode.sat);
    match ty {
        _ if plain(mode) => fma_nearest(ty, a, b, c),
        FloatTy::F32 => map3(a, b, c, |x, y, z| {
            bits32(num::fma_f32(f32_of(x), f32_of(y), f32_of(z), rnd, ftz, sat))
        }),
        FloatTy::F64 => map3(a, b, c, |x, y, z| {
            num::fma_f64(f64_of(x), f64_of(y), f64_of(z), rnd).to_bits()
        }),
    }
}

/// `setp`'s comparison as a lane mask. The frequent integer comparisons are computed directly,
/// the rest through `numerics` lane by lane.
pub fn compare(cmp: Compare, a: &Lanes, b: &Lanes) -> u32 {
    #[inline(always)]
    fn lanes(a: &Lanes, b: &Lanes, f: impl Fn(u64, u64) -> bool) -> u32 {
        let mut mask = 0u32;
        for i in 0..32 {
            mask |= u32::from(f(a[i], b[i])) << i;
        }
        mask
    }
    match cmp {
        Compare::Int(c, ty) => {
            let bits = ty.bits();
            if ty.is_signed() {
                let v = |x: u64| sext(x, bits);
                match c {
                    IntCmp::Eq => lanes(a, b, |x, y| v(x) == v(y)),
                    IntCmp::Ne => lanes(a, b, |x, y| v(x) != v(y)),
                    IntCmp::Lt | IntCmp::Lo => lanes(a, b, |x, y| v(x) < v(y)),
                    IntCmp::Le | IntCmp::Ls => lanes(a, b, |x, y| v(x) <= v(y)),
                    IntCmp::Gt | IntCmp::Hi => lanes(a, b, |x, y| v(x) > v(y)),
                    IntCmp::Ge | IntCmp::Hs => lanes(a, b, |x, y| v(x) >= v(y)),
                }
            } else {
                let m = width_mask(bits);
                match c {
                    IntCmp::Eq => lanes(a, b, |x, y| x & m == y & m),
                    IntCmp::Ne => lanes(a, b, |x, y| x & m != y & m),
                    IntCmp::Lt | IntCmp::Lo => lanes(a, b, |x, y| x & m < y & m),
                    IntCmp::Le | IntCmp::Ls => lanes(a, b, |x, y| x & m <= y & m),
                    IntCmp::Gt | IntCmp::Hi => lanes(a, b, |x, y| x & m > y & m),
                    IntCmp::Ge | IntCmp::Hs => lanes(a, b, |x, y| x & m >= y & m),
                }
            }
        }
        Compare::Float(c, FloatTy::F32, ftz) => lanes(a, b, |x, y| num::setp_f32(c, f32_of(x), f32_of(y), ftz)),
        Compare::Float(c, FloatTy::F64, _) => lanes(a, b, |x, y| num::setp_f64(c, f64_of(x), f64_of(y))),
    }
}

/// The register width of a conversion's result.
fn cvt_bits(ty: CvtTy) -> u32 {
    match ty {
        CvtTy::Int(t) => t.bits(),
        CvtTy::Float(FloatType::F16 | FloatType::Bf16) => 16,
        CvtTy::Float(FloatType::F32) | CvtTy::Tf32 => 32,
        CvtTy::Float(FloatType::F64) => 64,
    }
}

#[allow(clippy::too_many_arguments)]
pub fn cvt(
    dst: CvtTy,
    src: CvtTy,
    rounding: Option<CvtRounding>,
    ftz: bool,
    sat: bool,
    relu: bool,
    a: &Lanes,
) -> Lanes {
    let m = width_mask(cvt_bits(dst));
    let mods = CvtMods {
        ftz,
        sat,
        relu,
        satfinite: false,
    };
    let float_rnd = match rounding {
        Some(CvtRounding::Float(r)) => r,
        _ => Rounding::Rn,
    };
    match (dst, src, rounding) {
        (CvtTy::Int(to), CvtTy::Int(from), _) => map1(a, |x| num::cvt_int(x, from, to, sat) & m),
        (CvtTy::Float(to), CvtTy::Float(from), Some(CvtRounding::Int(r))) if to == from => {
            map1(a, |x| num::cvt_round_integral(x, to, r, ftz, sat) & m)
        }
        (CvtTy::Float(to), CvtTy::Float(from), _) => map1(a, |x| num::cvt_float(x, from, to, float_rnd, mods) & m),
        (CvtTy::Int(to), CvtTy::Float(from), Some(CvtRounding::Int(r))) => {
            map1(a, |x| num::cvt_float_to_int(x, from, to, r, ftz) & m)
        }
        (CvtTy::Float(to), CvtTy::Int(from), _) => map1(a, |x| num::cvt_int_to_float(x, from, to, float_rnd, sat) & m),
        (CvtTy::Tf32, CvtTy::Float(FloatType::F32), _) => {
            map1(a, |x| u64::from(num::cvt_tf32_f32(f32_of(x), float_rnd, relu, false)))
        }
        _ => unreachable!("decode admits only the conversions above"),
    }
}

/// `cvt.rn(.relu).bf16x2.f32 d, a, b` / f16x2: `a` converted into the upper half, `b` into the
/// lower half.
pub fn cvt_pack(dst: FloatType, rounding: Rounding, relu: bool, a: &Lanes, b: &Lanes) -> Lanes {
    let mods = CvtMods {
        relu,
        ..CvtMods::default()
    };
    map2(a, b, |x, y| {
        u64::from(num::cvt_float_x2(f32_of(x), f32_of(y), dst, rounding, mods))
    })
}
