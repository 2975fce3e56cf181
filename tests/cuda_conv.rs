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

mod gpu_support;

use gpu_support::{assert_bits, fetch, gpu, normal, poisoned};
use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::cuda::CudaBackend;
use leangcn::backend::{Backend, ConvGeom};
use leangcn::model::init::InitRng;

#[allow(clippy::too_many_arguments)]
fn geom(n: usize, c_in: usize, c_out: usize, t_in: usize, v: usize, kt: usize, pad: usize, stride: usize) -> ConvGeom {
    ConvGeom {
        n,
        c_in,
        c_out,
        t_in,
        v,
        kt,
        pad,
        stride,
    }
}

/// (name, geometry, with bias): every tile shape (≤ 32, ≤ 64 and > 64 GEMM rows in each op).
fn cases() -> Vec<(&'static str, ConvGeom, bool)> {
    vec![
        ("kt 9 stride 1, odd sizes", geom(3, 5, 7, 13, 3, 9, 4, 1), true),
        (
            "kt 9 stride 2, 130 output channels",
            geom(2, 6, 130, 17, 5, 9, 4, 2),
            false,
        ),
        ("1x1 stride 1, 33 -> 65 channels", geom(3, 33, 65, 7, 25, 1, 0, 1), true),
        ("1x1 stride 2, odd t", geom(2, 17, 40, 9, 25, 1, 0, 2), false),
        ("linear head 256 -> 60", geom(5, 256, 60, 1, 1, 1, 0, 1), true),
        ("one element", geom(1, 1, 1, 1, 1, 1, 0, 1), true),
        ("kt 9 on one frame", geom(1, 2, 3, 1, 1, 9, 4, 1), true),
        ("kt 5 stride 3 pad 1", geom(2, 3, 4, 11, 2, 5, 1, 3), true),
        ("kt 3 stride 2 no padding", geom(2, 3, 4, 10, 2, 3, 0, 2), false),
        (
            "37 samples, splits across samples",
            geom(37, 3, 64, 10, 25, 9, 4, 1),
            true,
        ),
        ("several tiles each way", geom(3, 20, 200, 30, 5, 9, 4, 2), true),
        (
            "ST-GCN block 5: 64 -> 128, t 100 -> 50",
            geom(8, 64, 128, 100, 25, 9, 4, 2),
            true,
        ),
    ]
}

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

/// Every element finite and within 2·√terms·ε·mag of the CPU's; prints the worst fraction used.
fn assert_within(what: &str, got: &[f32], want: &[f32], mag: &[f32], terms: usize) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let scale = 2.0 * (terms as f64).sqrt() * f32::EPSILON as f64;
    let mut worst = 0.0f64;
    for (i, ((&g, &w), &m)) in got.iter().zip(want).zip(mag).enumerate() {
        assert!(g.is_finite(), "{what}: element {i} is {g} (the CPU gives {w})");
        let (err, allowed) = ((g as f64 - w as f64).abs(), scale * m as f64);
        assert!(
            err <= allowed,
            "{what}: element {i} is {g} but the CPU gives {w}: error {err:e} > allowed {allowed:e} (M = {m:e}, K = {terms})"
        );
        if allowed > 0.0 {
            worst = worst.max(err / allowed);
        }
    }
    println!("  {what}: largest error {worst:.4} of the allowance");
}

/// Random inputs of one case: x, w, b, dy, and the initial dw, db.
struct Inputs {
    x: Vec<f32>,
    w: Vec<f32>,
    b: Option<Vec<f32>>,
    dy: Vec<f32>,
    dw0: Vec<f32>,
    db0: Vec<f32>,
}

impl Inputs {
    fn new(rng: &mut InitRng, g: &ConvGeom, bias: bool) -> Self {
        Self {
            x: normal(rng, g.x_len()),
            w: normal(rng, g.w_len()),
            b: bias.then(|| normal(rng, g.c_out)),
            dy: normal(rng, g.y_len()),
            dw0: normal(rng, g.w_len()),
            db0: normal(rng, g.c_out),
        }
    }

    /// The same inputs in absolute value: the CPU ops on them give M, the sums of |term|.
    fn magnitudes(&self) -> Self {
        Self {
            x: abs(&self.x),
            w: abs(&self.w),
            b: self.b.as_deref().map(abs),
            dy: abs(&self.dy),
            dw0: abs(&self.dw0),
            db0: abs(&self.db0),
        }
    }
}

/// (y, dx, dw, db) of the CPU backend.
fn cpu_results(g: &ConvGeom, i: &Inputs) -> [Vec<f32>; 4] {
    let cpu = CpuBackend::<f32>::new();
    let mut y = vec![0.0; g.y_len()];
    cpu.conv_t_forward(g, &i.x, &i.w, i.b.as_ref(), &mut y);
    let mut dx = vec![0.0; g.x_len()];
    cpu.conv_t_backward_input(g, &i.dy, &i.w, &mut dx);
    let (mut dw, mut db) = (i.dw0.clone(), i.db0.clone());
    cpu.conv_t_backward_weight(g, &i.x, &i.dy, &mut dw, i.b.as_ref().map(|_| &mut db));
    [y, dx, dw, db]
}

/// (y, dx, dw, db) of the GPU, y and dx written into NaN-filled buffers. db stays db₀ without bias.
fn gpu_results(be: &CudaBackend, g: &ConvGeom, i: &Inputs) -> [Vec<f32>; 4] {
    let (x, w, dy) = (be.upload(&i.x), be.upload(&i.w), be.upload(&i.dy));
    let b = i.b.as_deref().map(|b| be.upload(b));
    let mut y = poisoned(be, g.y_len());
    be.conv_t_forward(g, &x, &w, b.as_ref(), &mut y);
    let mut dx = poisoned(be, g.x_len());
    be.conv_t_backward_input(g, &dy, &w, &mut dx);
    let (mut dw, mut db) = (be.upload(&i.dw0), be.upload(&i.db0));
    be.conv_t_backward_weight(g, &x, &dy, &mut dw, b.as_ref().map(|_| &mut db));
    [fetch(be, &y), fetch(be, &dx), fetch(be, &dw), fetch(be, &db)]
}

#[test]
fn conv_ops_match_the_cpu() {
    let Some(be) = gpu("conv_ops_match_the_cpu") else {
        return;
    };
    let mut rng = InitRng::new(21);
    for (name, g, bias) in cases() {
        println!("{name}: {g:?}, bias {bias}");
        let inputs = Inputs::new(&mut rng, &g, bias);
        let want = cpu_results(&g, &inputs);
        let mag = cpu_results(&g, &inputs.magnitudes());
        let got = gpu_results(&be, &g, &inputs);
        let reduction = g.n * g.t_out() * g.v;
        assert_within(&format!("{name}: y"), &got[0], &want[0], &mag[0], g.c_in * g.kt + 1);
        assert_within(&format!("{name}: dx"), &got[1], &want[1], &mag[1], g.c_out * g.kt);
        assert_within(&format!("{name}: dw"), &got[2], &want[2], &mag[2], reduction + 1);
        if bias {
            assert_within(&format!("{name}: db"), &got[3], &want[3], &mag[3], reduction + 1);
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
