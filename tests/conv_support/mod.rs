//! The convolution cases and checks shared by the GPU conv tests (f32, TF32 and bf16): the geometries,
//! random inputs, the CPU backend's results, the GPU's results into poisoned outputs, and the
//! per-element tolerance check against the sums of |term| (see tests/cuda_conv.rs for the bound).

#![allow(dead_code)] // each test crate uses a different subset

use crate::gpu_support::{fetch, normal, poisoned};
use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::cuda::CudaBackend;
use leangcn::backend::{Backend, ConvGeom, ConvMath};
use leangcn::model::init::InitRng;

#[allow(clippy::too_many_arguments)]
pub fn geom(
    n: usize,
    c_in: usize,
    c_out: usize,
    t_in: usize,
    v: usize,
    kt: usize,
    pad: usize,
    stride: usize,
) -> ConvGeom {
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
pub fn cases() -> Vec<(&'static str, ConvGeom, bool)> {
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

/// The numbers of terms summed into one element of (y, dx, dw, db), the bias or the accumulated
/// value included.
pub fn terms(g: &ConvGeom) -> [usize; 4] {
    let reduction = g.n * g.t_out() * g.v;
    [g.c_in * g.kt + 1, g.c_out * g.kt, reduction + 1, reduction + 1]
}

/// The f32 allowance per unit of M = Σ|term| for a sum of `terms` terms: 2·√K·ε.
pub fn f32_allowance(terms: usize) -> f64 {
    2.0 * (terms as f64).sqrt() * f32::EPSILON as f64
}

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

/// Every element finite and within `allowance·mag` of the CPU's; prints the worst fraction used.
/// `assert_within` for y, dx and dw (results 0..3), each with `allowance(number of terms)`.
pub fn assert_ops_within(
    name: &str,
    got: &[Vec<f32>; 4],
    want: &[Vec<f32>; 4],
    mag: &[Vec<f32>; 4],
    g: &ConvGeom,
    allowance: impl Fn(usize) -> f64,
) {
    let k = terms(g);
    for (i, what) in ["y", "dx", "dw"].iter().enumerate() {
        assert_within(&format!("{name}: {what}"), &got[i], &want[i], &mag[i], allowance(k[i]));
    }
}

pub fn assert_within(what: &str, got: &[f32], want: &[f32], mag: &[f32], allowance: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let mut worst = 0.0f64;
    for (i, ((&g, &w), &m)) in got.iter().zip(want).zip(mag).enumerate() {
        assert!(g.is_finite(), "{what}: element {i} is {g} (the CPU gives {w})");
        let (err, allowed) = ((g as f64 - w as f64).abs(), allowance * m as f64);
        assert!(
            err <= allowed,
            "{what}: element {i} is {g} but the CPU gives {w}: error {err:e} > allowed {allowed:e} (M = {m:e})"
        );
        if allowed > 0.0 {
            worst = worst.max(err / allowed);
        }
    }
    println!("  {what}: largest error {worst:.4} of the allowance");
}

/// Random inputs of one case: x, w, b, dy, and the initial dw, db.
#[derive(Clone)]
pub struct Inputs {
    pub x: Vec<f32>,
    pub w: Vec<f32>,
    pub b: Option<Vec<f32>>,
    pub dy: Vec<f32>,
    pub dw0: Vec<f32>,
    pub db0: Vec<f32>,
}

impl Inputs {
    pub fn new(rng: &mut InitRng, g: &ConvGeom, bias: bool) -> Self {
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
    pub fn magnitudes(&self) -> Self {
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

/// (y, dx, dw, db) of the CPU backend with its conv GEMMs in `math`.
pub fn cpu_results(g: &ConvGeom, i: &Inputs, math: ConvMath) -> [Vec<f32>; 4] {
    let cpu = CpuBackend::<f32>::with_conv_math(math);
    let mut y = vec![0.0; g.y_len()];
    cpu.conv_t_forward(g, &i.x, &i.w, i.b.as_ref(), &mut y);
    let mut dx = vec![0.0; g.x_len()];
    cpu.conv_t_backward_input(g, &i.dy, &i.w, &mut dx);
    let (mut dw, mut db) = (i.dw0.clone(), i.db0.clone());
    cpu.conv_t_backward_weight(g, &i.x, &i.dy, &mut dw, i.b.as_ref().map(|_| &mut db));
    [y, dx, dw, db]
}

/// (y, dx, dw, db) of the GPU, y and dx written into NaN-filled buffers. db stays db₀ without bias.
pub fn gpu_results(be: &CudaBackend, g: &ConvGeom, i: &Inputs) -> [Vec<f32>; 4] {
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
