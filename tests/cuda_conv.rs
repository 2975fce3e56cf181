//! The convolution-over-time kernels against the CPU backend (f32) on fresh random data: the forward
//! pass and the input gradient into poisoned (NaN) outputs, which they must overwrite entirely, and
//! the weight and bias gradients onto non-zero values, which they must accumulate onto. Odd sizes,
//! strides 1, 2 and 3, kt 9, 5, 3 and 1, with and without bias, the linear head, one-element shapes,
//! several tiles and splits in every direction, and one ST-GCN-sized layer; two runs give the same
//! bits; bad shapes are errors. Without a GPU each test prints why it was skipped.
//!
//! Tolerance, per element: |gpu − cpu| ≤ 2·√K·ε·M, with ε = f32::EPSILON = 2u (u = 2⁻²⁴, the unit
//! roundoff), K the number of terms summed into the element (c_in·kt + 1 forward, c_out·kt input
//! gradient, n·t_out·v + 1 weight and bias gradients; the +1 is the bias or the accumulated value),
//! and M = Σ|term| the same sum over absolute values (computed by the CPU backend from |x|, |w|, |dy|,
//! |b|, |dw₀|, |db₀|). Why: both backends sum the K terms in f32, in different orders. Every rounding
//! of a partial sum errs by at most u·|partial| ≤ u·M, so each result is within K·u·M of the exact
//! sum (the rigorous bound), and with rounding errors of independent signs within a small multiple of
//! √K·u·M (Higham & Mary's probabilistic bound). The difference of the two results is allowed twice
//! that: 4·√K·u·M. For K = 1 and 2 this also covers the rigorous bound. The tests print the largest
//! error seen as a fraction of the allowance.

mod conv_support;
mod gpu_support;

use conv_support::{
    assert_ops_within, assert_within, cases, cpu_results, f32_allowance, geom, gpu_results, terms, Inputs,
};
use gpu_support::{assert_bits, gpu};
use leangcn::backend::{Backend, ConvGeom, ConvMath};
use leangcn::model::init::InitRng;

#[test]
fn conv_ops_match_the_cpu() {
    let Some(be) = gpu("conv_ops_match_the_cpu") else {
        return;
    };
    let mut rng = InitRng::new(21);
    for (name, g, bias) in cases() {
        println!("{name}: {g:?}, bias {bias}");
        let inputs = Inputs::new(&mut rng, &g, bias);
        let want = cpu_results(&g, &inputs, ConvMath::F32);
        let mag = cpu_results(&g, &inputs.magnitudes(), ConvMath::F32);
        let got = gpu_results(&be, &g, &inputs);
        let k = terms(&g);
        assert_ops_within(name, &got, &want, &mag, &g, f32_allowance);
        if bias {
            assert_within(&format!("{name}: db"), &got[3], &want[3], &mag[3], f32_allowance(k[3]));
        } else {
            assert_bits(&format!("{name}: db untouched"), &got[3], &inputs.db0);
        }
    }
}

#[test]
fn conv_ops_repeat_bit_for_bit() {
    let Some(be) = gpu("conv_ops_repeat_bit_for_bit") else {
        return;
    };
    let mut rng = InitRng::new(22);
    for (name, g, bias) in cases().into_iter().filter(|(_, g, _)| g.n > 3) {
        let inputs = Inputs::new(&mut rng, &g, bias);
        let first = gpu_results(&be, &g, &inputs);
        let second = gpu_results(&be, &g, &inputs);
        for (what, (a, b)) in ["y", "dx", "dw", "db"].iter().zip(first.iter().zip(&second)) {
            assert_bits(&format!("{name}: {what} of a second run"), b, a);
        }
    }
}

#[test]
fn bad_shapes_are_errors() {
    let Some(be) = gpu("bad_shapes_are_errors") else {
        return;
    };
    let g = geom(2, 3, 4, 10, 5, 9, 4, 1);
    let (x, w) = (be.zeros(g.x_len()), be.zeros(g.w_len()));

    let mut short = be.zeros(g.y_len() - 1);
    be.conv_t_forward(&g, &x, &w, None, &mut short);
    let e = be.check().expect_err("a short y must be refused").to_string();
    assert!(e.contains("conv forward") && e.contains("y has"), "{e}");

    let b = be.zeros(g.c_out + 1);
    let mut y = be.zeros(g.y_len());
    be.conv_t_forward(&g, &x, &w, Some(&b), &mut y);
    let e = be.check().expect_err("a long b must be refused").to_string();
    assert!(e.contains("b has"), "{e}");

    let mut dw = be.zeros(g.w_len());
    be.conv_t_backward_weight(&g, &y, &x, &mut dw, None); // x and dy swapped
    let e = be.check().expect_err("swapped buffers must be refused").to_string();
    assert!(e.contains("conv backward_weight") && e.contains("x has"), "{e}");

    let long_kernel = ConvGeom { kt: 19, ..g };
    let mut dx = be.zeros(g.x_len());
    be.conv_t_backward_input(&long_kernel, &y, &be.zeros(long_kernel.w_len()), &mut dx);
    let e = be
        .check()
        .expect_err("a kernel longer than the padded clip must be refused")
        .to_string();
    assert!(e.contains("longer than the padded clip"), "{e}");
}
