//! The arithmetic of the convolution GEMMs: f32 throughout, or tensor-core operands (TF32 or bf16)
//! with products and sums in f32. Storage and every other op stay f32.
//!
//! Every backend computes a rounded conv the same way: each GEMM operand (x and w in the forward,
//! dy and w in the input gradient, x and dy in the weight gradient) is rounded with [`ConvMath::round`],
//! then multiplied and summed in f32 (the product of two TF32 or two bf16 values is exact in f32).
//! Backends differ only in their summation order, so the CPU is an exact reference for the GPU's
//! tensor-core kernels up to f32 reassociation.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ConvMath {
    /// f32 multiply-adds.
    #[default]
    F32,
    /// TF32 operands (10 explicit mantissa bits, rounded to nearest with ties away from zero, as
    /// `cvt.rna.tf32.f32`) with f32 accumulation: PyTorch's default for convolutions on Ampere and
    /// later GPUs.
    Tf32,
    /// bf16 operands (7 explicit mantissa bits, rounded to nearest even, as `cvt.rn.bf16x2.f32`)
    /// with f32 accumulation.
    Bf16,
}

impl ConvMath {
    /// Every mode, in the order `--precision` lists them.
    pub const ALL: [ConvMath; 3] = [ConvMath::F32, ConvMath::Tf32, ConvMath::Bf16];

    /// The name `--precision` uses: `f32`, `tf32` or `bf16`.
    pub fn name(self) -> &'static str {
        match self {
            ConvMath::F32 => "f32",
            ConvMath::Tf32 => "tf32",
            ConvMath::Bf16 => "bf16",
        }
    }

    /// The mode of a `--precision` name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Unit roundoff of an operand (half an ulp at 1): 0 for f32 (nothing is rounded), 2⁻¹¹ for
    /// TF32, 2⁻⁸ for bf16. Error bounds of a rounded conv scale with it.
    pub fn unit_roundoff(self) -> f64 {
        match self {
            ConvMath::F32 => 0.0,
            ConvMath::Tf32 => 2f64.powi(-11),
            ConvMath::Bf16 => 2f64.powi(-8),
        }
    }

    /// An f32 operand as the tensor cores see it. NaN and infinities pass through.
    pub fn round(self, x: f32) -> f32 {
        match self {
            ConvMath::F32 => x,
            ConvMath::Tf32 => round_to_tf32(x),
            ConvMath::Bf16 => half::bf16::from_f32(x).to_f32(),
        }
    }
}

/// `x` rounded to 10 explicit mantissa bits, to nearest with ties away from zero: add half of the
/// 13 dropped bits' weight to the magnitude and truncate. A carry out of the mantissa moves into
/// the exponent, as in the hardware.
fn round_to_tf32(x: f32) -> f32 {
    if !x.is_finite() {
        return x;
    }
    const DROPPED: u32 = 13;
    f32::from_bits((x.to_bits() + (1 << (DROPPED - 1))) & !((1 << DROPPED) - 1))
}

impl fmt::Display for ConvMath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tf32_rounds_to_nearest_with_ties_away_from_zero() {
        let ulp = 2f32.powi(-10);
        let r = |x| ConvMath::Tf32.round(x);
        assert_eq!(r(1.0), 1.0);
        assert_eq!(r(1.0 + ulp / 2.0), 1.0 + ulp, "a tie goes away from zero");
        assert_eq!(r(-(1.0 + ulp / 2.0)), -(1.0 + ulp), "a negative tie too");
        assert_eq!(r(1.0 + ulp / 2.0 - f32::EPSILON), 1.0, "below a tie goes down");
        assert_eq!(r(2.0 - ulp / 4.0), 2.0, "the carry reaches the exponent");
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        let ulp = 2f32.powi(-7);
        let r = |x| ConvMath::Bf16.round(x);
        assert_eq!(r(1.0 + ulp / 2.0), 1.0, "a tie goes to the even neighbour (down)");
        assert_eq!(
            r(1.0 + 1.5 * ulp),
            1.0 + 2.0 * ulp,
            "a tie goes to the even neighbour (up)"
        );
        assert_eq!(r(1.0 + ulp / 2.0 + f32::EPSILON), 1.0 + ulp, "above a tie goes up");
        assert_eq!(r(-3.0), -3.0);
    }

    #[test]
    fn rounding_keeps_special_values_and_f32_is_the_identity() {
        for m in ConvMath::ALL {
            assert!(m.round(f32::NAN).is_nan());
            assert_eq!(m.round(f32::INFINITY), f32::INFINITY);
            assert_eq!(m.round(0.0), 0.0);
        }
        assert_eq!(ConvMath::F32.round(1.0 + f32::EPSILON), 1.0 + f32::EPSILON);
        assert_eq!(ConvMath::from_name("bf16"), Some(ConvMath::Bf16));
        assert_eq!(ConvMath::from_name("fp16"), None);
    }
}
