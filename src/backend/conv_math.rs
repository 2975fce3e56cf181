//! The arithmetic of the convolution GEMMs: f32 throughout, or TF32 tensor cores (operands rounded to
//! 10 mantissa bits, products and sums in f32; storage and every other op stay f32).

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ConvMath {
    /// f32 multiply-adds (the CPU backend, the CUDA backend's default).
    #[default]
    F32,
    /// TF32 tensor-core multiplies with f32 accumulation (CUDA only; PyTorch's default for
    /// convolutions on Ampere and later GPUs).
    Tf32,
}

impl ConvMath {
    /// The name `--precision` uses: `f32` or `tf32`.
    pub fn name(self) -> &'static str {
        match self {
            ConvMath::F32 => "f32",
            ConvMath::Tf32 => "tf32",
        }
    }
}

impl fmt::Display for ConvMath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
