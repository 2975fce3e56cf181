//! The TF32 tensor-core convolution kernels (`--precision tf32`) against the CPU backend (f32) on
//! fresh random data, in the cases of tests/cuda_conv.rs: y and dx into poisoned (NaN) outputs, dw
//! and db accumulated onto non-zero values. Two checks per case, and a repeatability test:
//!
//! 1. Against the CPU on the same f32 inputs. TF32 keeps 11 significant bits, so cvt.rna rounds each
//!    operand with a relative error of at most 2⁻¹¹, and a product of two rounded operands errs by at
//!    most (1 + 2⁻¹¹)² − 1 = 2⁻¹⁰ + 2⁻²² of |term|. Summed over the terms of an element that is at
//!    most (2⁻¹⁰ + 2⁻²²)·M, M = Σ|term|, on top of the f32 summation allowance of tests/cuda_conv.rs
//!    (2·√K·ε·M, K terms): |gpu − cpu| ≤ (2⁻¹⁰ + 2⁻²² + 2·√K·ε)·M. The bias and the accumulated dw₀
//!    are added in f32 and db sums dy in f32 (nothing rounded), so db gets the f32 allowance alone.
//! 2. Against the CPU on inputs rounded to TF32 on the host (round to nearest, ties away from zero,
//!    as cvt.rna): a product of two 11-bit significands is exact in f32, so the GPU and the CPU then
//!    sum the same exact products, and the f32 allowance 2·√K·ε·M applies. Operands truncated
//!    instead of rounded (an mma on raw f32 bits) would differ from this by up to 2⁻¹⁰ of each term
//!    with a consistent sign, well beyond the allowance in the cases with short reductions, so this
//!    pins the rounding to nearest (ties are too rare in random data to tell rna from rn).
//!
//! Without a GPU each test prints why it was skipped; the host rounding itself is tested everywhere.

mod conv_support;
mod gpu_support;

use conv_support::{assert_ops_within, assert_within, cases, cpu_results, f32_allowance, gpu_results, terms, Inputs};
use gpu_support::{assert_bits, gpu_with};
use leangcn::backend::ConvMath;
use leangcn::model::init::InitRng;

/// The product error bound of TF32 operands, per unit of |term|: 2⁻¹⁰ + 2⁻²².
const TF32_PRODUCT: f64 = 1.0 / 1024.0 + 1.0 / 4_194_304.0;

/// x rounded to TF32 (10 explicit mantissa bits) to nearest, ties away from zero: adding half of the
/// 13 dropped bits' weight to the magnitude and dropping them.
fn tf32_round(x: f32) -> f32 {
    if !x.is_finite() {
        return x;
    }
    f32::from_bits((x.to_bits() + 0x1000) & !0x1fff)
}

fn rounded(v: &[f32]) -> Vec<f32> {
    v.iter().copied().map(tf32_round).collect()
}

#[test]
fn host_tf32_rounding_is_to_nearest_ties_away() {
    let ulp = 2f32.powi(-10); // TF32's spacing in [1, 2)
    assert_eq!(tf32_round(1.0), 1.0);
    assert_eq!(tf32_round(1.0 + ulp / 2.0), 1.0 + ulp, "a tie goes away from zero");
    assert_eq!(
        tf32_round(-(1.0 + ulp / 2.0)),
        -(1.0 + ulp),
        "a tie goes away from zero"
    );
    assert_eq!(tf32_round(1.0 + ulp / 2.0 - f32::EPSILON), 1.0, "below a tie goes down");
    assert_eq!(tf32_round(1.0 + ulp - f32::EPSILON), 1.0 + ulp, "above a tie goes up");
    assert_eq!(
        tf32_round(2.0 - ulp / 4.0),
        2.0,
        "rounding up carries into the exponent"
    );
    for x in [0.1f32, -7.3, 1e-20, 3.5e30] {
        let r = tf32_round(x);
        assert_eq!(r.to_bits() & 0x1fff, 0, "{x}: 10 mantissa bits");
        assert!(
            ((r - x) / x).abs() <= 2f32.powi(-11),
            "{x} -> {r}: within half a TF32 ulp"
        );
    }
}

#[test]
fn tf32_conv_ops_match_the_cpu() {
    let Some(be) = gpu_with("tf32_conv_ops_match_the_cpu", ConvMath::Tf32) else {
        return;
    };
    let mut rng = InitRng::new(31);
    for (name, g, bias) in cases() {
        println!("{name}: {g:?}, bias {bias}");
        let inputs = Inputs::new(&mut rng, &g, bias);
        let want = cpu_results(&g, &inputs);
        let mag = cpu_results(&g, &inputs.magnitudes());
        let got = gpu_results(&be, &g, &inputs);
        let k = terms(&g);
        assert_ops_within(name, &got, &want, &mag, &g, |k| TF32_PRODUCT + f32_allowance(k));
        if bias {
            assert_within(&format!("{name}: db"), &got[3], &want[3], &mag[3], f32_allowance(k[3]));
        } else {
            assert_bits(&format!("{name}: db untouched"), &got[3], &inputs.db0);
        }
    }
}

#[test]
fn tf32_conv_ops_match_the_cpu_on_tf32_rounded_inputs() {
    let Some(be) = gpu_with("tf32_conv_ops_match_the_cpu_on_tf32_rounded_inputs", ConvMath::Tf32) else {
        return;
    };
    let mut rng = InitRng::new(32);
    for (name, g, bias) in cases() {
        println!("{name}: {g:?}, bias {bias}");
        let inputs = Inputs::new(&mut rng, &g, bias);
        // the GEMM operands rounded; the bias and the accumulated dw₀, db₀ stay f32, as on the GPU
        let tf32 = Inputs {
            x: rounded(&inputs.x),
            w: rounded(&inputs.w),
            dy: rounded(&inputs.dy),
            ..inputs.clone()
        };
        let want = cpu_results(&g, &tf32);
        let mag = cpu_results(&g, &tf32.magnitudes());
        // db sums the unrounded dy
        let want_db = &cpu_results(&g, &inputs)[3];
        let mag_db = &cpu_results(&g, &inputs.magnitudes())[3];
        let got = gpu_results(&be, &g, &inputs);
        let k = terms(&g);
        assert_ops_within(name, &got, &want, &mag, &g, f32_allowance);
        if bias {
            assert_within(&format!("{name}: db"), &got[3], want_db, mag_db, f32_allowance(k[3]));
        }
    }
}

#[test]
fn tf32_conv_ops_repeat_bit_for_bit() {
    let Some(be) = gpu_with("tf32_conv_ops_repeat_bit_for_bit", ConvMath::Tf32) else {
        return;
    };
    let mut rng = InitRng::new(33);
    for (name, g, bias) in cases().into_iter().filter(|(_, g, _)| g.n > 3) {
        let inputs = Inputs::new(&mut rng, &g, bias);
        let first = gpu_results(&be, &g, &inputs);
        let second = gpu_results(&be, &g, &inputs);
        for (what, (a, b)) in ["y", "dx", "dw", "db"].iter().zip(first.iter().zip(&second)) {
            assert_bits(&format!("{name}: {what} of a second run"), b, a);
        }
    }
}
