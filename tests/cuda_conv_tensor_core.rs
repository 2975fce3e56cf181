//! The tensor-core convolution kernels (`--precision tf32` and `bf16`) against the CPU backend on
//! fresh random data, in the cases of tests/cuda_conv.rs: y and dx into poisoned (NaN) outputs, dw
//! and db accumulated onto non-zero values. For each arithmetic, two checks per case and a
//! repeatability test:
//!
//! 1. Against the CPU in f32 on the same inputs. Rounding an operand to TF32 (11 significant bits)
//!    or bf16 (8) errs by at most the unit roundoff u (2⁻¹¹, 2⁻⁸) of it, so a product of two
//!    rounded operands errs by at most (1 + u)² − 1 = 2u + u² of |term|. Summed over the terms of
//!    an element that is at most (2u + u²)·M, M = Σ|term|, on top of the f32 summation allowance of
//!    tests/cuda_conv.rs (2·√K·ε·M, K terms). The bias and the accumulated dw₀ are added in f32 and
//!    db sums the unrounded dy in f32, so db gets the f32 allowance alone.
//! 2. Against the CPU in the same arithmetic: it rounds the operands as the kernels do (TF32 to
//!    nearest with ties away from zero, as cvt.rna; bf16 to nearest even, as cvt.rn), and a product
//!    of two rounded operands is exact in f32, so both sum the same exact products and the f32
//!    allowance 2·√K·ε·M applies. Operands truncated instead of rounded would differ from this by
//!    up to 2u of each term with a consistent sign, far beyond the allowance, so this pins the
//!    rounding (ties are too rare in random data to tell rna from rn).
//!
//! Without a GPU each test prints why it was skipped.

mod conv_support;
mod gpu_support;

use conv_support::{assert_ops_within, assert_within, cases, cpu_results, f32_allowance, gpu_results, terms, Inputs};
use gpu_support::{assert_bits, gpu_with};
use leangcn::backend::ConvMath;
use leangcn::model::init::InitRng;

const TENSOR_CORE_MATH: [ConvMath; 2] = [ConvMath::Tf32, ConvMath::Bf16];

/// The relative error bound of a product of two operands rounded in `math`: 2u + u².
fn product_bound(math: ConvMath) -> f64 {
    let u = math.unit_roundoff();
    2.0 * u + u * u
}

/// Every case in both arithmetics against the CPU computing in `reference(math)`, each y, dx and dw
/// element within `allowance(math, terms)` of M, db within the f32 allowance (or untouched).
fn check_against_the_cpu(
    what: &str,
    seed: u64,
    reference: impl Fn(ConvMath) -> ConvMath,
    allowance: impl Fn(ConvMath, usize) -> f64,
) {
    for (seed, math) in (seed..).zip(TENSOR_CORE_MATH) {
        let Some(be) = gpu_with(&format!("{math}_conv_ops_match_{what}"), math) else {
            continue;
        };
        let mut rng = InitRng::new(seed);
        for (name, g, bias) in cases() {
            println!("{math} {name}: {g:?}, bias {bias}");
            let inputs = Inputs::new(&mut rng, &g, bias);
            let want = cpu_results(&g, &inputs, reference(math));
            let mag = cpu_results(&g, &inputs.magnitudes(), reference(math));
            let got = gpu_results(&be, &g, &inputs);
            let k = terms(&g);
            assert_ops_within(name, &got, &want, &mag, &g, |k| allowance(math, k));
            if bias {
                assert_within(&format!("{name}: db"), &got[3], &want[3], &mag[3], f32_allowance(k[3]));
            } else {
                assert_bits(&format!("{name}: db untouched"), &got[3], &inputs.db0);
            }
        }
    }
}

#[test]
fn tensor_core_conv_ops_match_the_f32_cpu_within_the_rounding_bound() {
    check_against_the_cpu(
        "the_f32_cpu_within_the_rounding_bound",
        31,
        |_| ConvMath::F32,
        |math, k| product_bound(math) + f32_allowance(k),
    );
}

#[test]
fn tensor_core_conv_ops_match_the_cpu_in_the_same_arithmetic() {
    check_against_the_cpu(
        "the_cpu_in_the_same_arithmetic",
        41,
        |math| math,
        |_, k| f32_allowance(k),
    );
}

#[test]
fn tensor_core_conv_ops_repeat_bit_for_bit() {
    for (seed, math) in (51..).zip(TENSOR_CORE_MATH) {
        let Some(be) = gpu_with(&format!("{math}_conv_ops_repeat_bit_for_bit"), math) else {
            continue;
        };
        let mut rng = InitRng::new(seed);
        for (name, g, bias) in cases().into_iter().filter(|(_, g, _)| g.n > 3) {
            let inputs = Inputs::new(&mut rng, &g, bias);
            let first = gpu_results(&be, &g, &inputs);
            let second = gpu_results(&be, &g, &inputs);
            for (what, (a, b)) in ["y", "dx", "dw", "db"].iter().zip(first.iter().zip(&second)) {
                assert_bits(&format!("{math} {name}: {what} of a second run"), b, a);
            }
        }
    }
}
