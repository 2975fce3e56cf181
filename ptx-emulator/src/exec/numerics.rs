//! Placeholder until the numerics module lands: round-to-nearest semantics only.
#![allow(dead_code)]

use super::ir::{CvtTy, FloatBinary, FloatMode, FloatUnary};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    Rn,
    Rz,
    Rm,
    Rp,
    Rna,
    Rni,
    Rzi,
    Rmi,
    Rpi,
}

fn sx(x: u64, bits: u8) -> i64 {
    let s = 64 - u32::from(bits);
    ((x << s) as i64) >> s
}
fn m(bits: u8) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    }
}
pub fn mul_hi(x: u64, y: u64, bits: u8, signed: bool) -> u64 {
    let p = if signed {
        (sx(x, bits) as i128 * sx(y, bits) as i128) as u128
    } else {
        ((x & m(bits)) as u128) * ((y & m(bits)) as u128)
    };
    ((p >> bits) as u64) & m(bits)
}
pub fn mul_wide(x: u64, y: u64, bits: u8, signed: bool) -> u64 {
    let p = if signed {
        (sx(x, bits) as i128 * sx(y, bits) as i128) as u128
    } else {
        ((x & m(bits)) as u128) * ((y & m(bits)) as u128)
    };
    (p as u64) & m(bits * 2)
}
pub fn div_int(x: u64, y: u64, bits: u8, signed: bool) -> u64 {
    if signed {
        let (a, b) = (sx(x, bits), sx(y, bits));
        if b == 0 {
            return m(bits);
        }
        (a.wrapping_div(b) as u64) & m(bits)
    } else {
        let (a, b) = (x & m(bits), y & m(bits));
        if b == 0 {
            return m(bits);
        }
        a / b
    }
}
pub fn rem_int(x: u64, y: u64, bits: u8, signed: bool) -> u64 {
    if signed {
        let (a, b) = (sx(x, bits), sx(y, bits));
        if b == 0 {
            return x & m(bits);
        }
        (a.wrapping_rem(b) as u64) & m(bits)
    } else {
        let (a, b) = (x & m(bits), y & m(bits));
        if b == 0 {
            return a;
        }
        a % b
    }
}
pub fn bfi(a: u64, b: u64, pos: u32, len: u32, bits: u8) -> u64 {
    let pos = pos & 0xff;
    let len = len & 0xff;
    let mut r = b & m(bits);
    for i in 0..len {
        let p = pos + i;
        if p >= u32::from(bits) {
            break;
        }
        r = (r & !(1 << p)) | (((a >> i) & 1) << p);
    }
    r
}
pub fn bfe(a: u64, pos: u32, len: u32, bits: u8, signed: bool) -> u64 {
    let pos = pos & 0xff;
    let len = len & 0xff;
    let mut r = 0u64;
    for i in 0..u32::from(bits) {
        let bit = if i < len {
            let p = (pos + i).min(u32::from(bits) - 1);
            if pos + i < u32::from(bits) {
                (a >> p) & 1
            } else if signed {
                (a >> (bits - 1)) & 1
            } else {
                0
            }
        } else if signed && len > 0 {
            let p = (pos + len - 1).min(u32::from(bits) - 1);
            (a >> p) & 1
        } else {
            0
        };
        r |= bit << i;
    }
    r
}
pub fn prmt(a: u32, b: u32, s: u32) -> u32 {
    let bytes = (u64::from(b) << 32 | u64::from(a)).to_le_bytes();
    let mut r = 0u32;
    for i in 0..4 {
        let sel = (s >> (4 * i)) & 0xf;
        let v = bytes[(sel & 7) as usize];
        let v = if sel & 8 != 0 {
            if v & 0x80 != 0 {
                0xff
            } else {
                0
            }
        } else {
            v
        };
        r |= u32::from(v) << (8 * i);
    }
    r
}
pub fn f32_binary(op: FloatBinary, a: f32, b: f32, mode: FloatMode) -> f32 {
    assert!(mode.rounding == Rounding::Rn && !mode.ftz && !mode.sat, "placeholder");
    match op {
        FloatBinary::Min => a.min(b),
        FloatBinary::Max => a.max(b),
        FloatBinary::Add => a + b,
        FloatBinary::Sub => a - b,
        FloatBinary::Mul => a * b,
        FloatBinary::Div => a / b,
        _ => unimplemented!("placeholder"),
    }
}
pub fn f64_binary(op: FloatBinary, a: f64, b: f64, mode: FloatMode) -> f64 {
    assert!(mode.rounding == Rounding::Rn && !mode.ftz && !mode.sat, "placeholder");
    match op {
        FloatBinary::Min => a.min(b),
        FloatBinary::Max => a.max(b),
        _ => unimplemented!("placeholder"),
    }
}
pub fn f32_unary(op: FloatUnary, a: f32, mode: FloatMode) -> f32 {
    let _ = mode;
    match op {
        FloatUnary::Neg => -a,
        FloatUnary::Abs => a.abs(),
        _ => unimplemented!("placeholder {op:?}"),
    }
}
pub fn f64_unary(op: FloatUnary, a: f64, mode: FloatMode) -> f64 {
    let _ = mode;
    match op {
        FloatUnary::Rcp | FloatUnary::RcpApprox => 1.0 / a,
        _ => unimplemented!("placeholder {op:?}"),
    }
}
pub fn f32_fma(a: f32, b: f32, c: f32, mode: FloatMode) -> f32 {
    let _ = mode;
    a.mul_add(b, c)
}
pub fn f64_fma(a: f64, b: f64, c: f64, mode: FloatMode) -> f64 {
    let _ = mode;
    a.mul_add(b, c)
}
fn bf16_rn(x: f32) -> u16 {
    half::bf16::from_f32(x).to_bits()
}
pub fn cvt_half(dst: CvtTy, rounding: Rounding, relu: bool, x: f32) -> u16 {
    assert!(rounding == Rounding::Rn && !relu && dst == CvtTy::Bf16);
    bf16_rn(x)
}
pub fn cvt(dst: CvtTy, src: CvtTy, rounding: Option<Rounding>, ftz: bool, sat: bool, x: u64) -> u64 {
    let _ = (ftz, sat);
    let f = |v: f64| -> f64 {
        match rounding {
            Some(Rounding::Rni) => v.round_ties_even(),
            Some(Rounding::Rzi) => v.trunc(),
            Some(Rounding::Rmi) => v.floor(),
            Some(Rounding::Rpi) => v.ceil(),
            _ => v,
        }
    };
    let val: f64 = match src {
        CvtTy::F32 => f64::from(f32::from_bits(x as u32)),
        CvtTy::F64 => f64::from_bits(x),
        CvtTy::Int(t) => {
            if t.signed {
                sx(x, t.bits) as f64
            } else {
                (x & m(t.bits)) as f64
            }
        }
        CvtTy::Bf16 => f64::from(f32::from_bits((x as u32) << 16)),
        _ => unimplemented!(),
    };
    match dst {
        CvtTy::F32 if src == CvtTy::F32 && rounding == Some(Rounding::Rna) => unimplemented!(),
        CvtTy::Tf32 => {
            let b = x as u32;
            let r = b.wrapping_add(0x1000) & 0xFFFF_E000;
            u64::from(if f32::from_bits(b).is_finite() { r } else { b })
        }
        CvtTy::F32 => match src {
            CvtTy::Int(t) if t.bits == 64 && !t.signed => u64::from((x as f32).to_bits()),
            CvtTy::Int(t) if t.bits == 64 => u64::from((x as i64 as f32).to_bits()),
            _ => u64::from((f(val) as f32).to_bits()),
        },
        CvtTy::F64 => match src {
            CvtTy::Int(t) if t.bits == 64 && !t.signed => (x as f64).to_bits(),
            CvtTy::Int(t) if t.bits == 64 => (x as i64 as f64).to_bits(),
            _ => f(val).to_bits(),
        },
        CvtTy::Bf16 => u64::from(bf16_rn(val as f32)),
        CvtTy::Int(t) => {
            let v = f(val);
            if t.signed {
                (match t.bits {
                    32 => v as i32 as i64,
                    64 => v as i64,
                    16 => v as i16 as i64,
                    _ => v as i8 as i64,
                } as u64)
                    & m(t.bits)
            } else {
                match t.bits {
                    32 => u64::from(v as u32),
                    64 => v as u64,
                    16 => u64::from(v as u16),
                    _ => u64::from(v as u8),
                }
            }
        }
        CvtTy::F16 => unimplemented!(),
    }
}
