//! What the kernels fuse into their stores, on fresh random data into poisoned (NaN) outputs: the
//! batch norm fused into the kernels that write its input (the conv forward in f32, TF32 and bf16,
//! the graph aggregation forward), and a block's residual gradient added by the conv input
//! gradient as it writes dx.
//!
//! The input gradient plus a gradient (masked by a ReLU's output, or not) gives the same bits as
//! `conv_t_backward_input` followed by `relu_backward_add` (or `add_assign`): one f32 add of the
//! same two values.
//!
//! In evaluation mode those kernels apply the batch norm, the residual add and the ReLU to their
//! outputs before storing them: the same operations and roundings as the kernels in sequence
//! (forward, `batch_norm_eval` with its epilogue), so the same bits, for every epilogue.
//!
//! In training mode they gather the batch statistics, checked against the batch norm's own
//! statistics pass and against the CPU:
//! - the gathering forward writes the same output, bit for bit, as the plain one;
//! - the training-mode batch norm given those statistics matches the one computing them from the
//!   same input on the GPU and on the CPU, with the tolerances of tests/cuda_batch_norm.rs (every
//!   path reduces in double; only the partition and order of the sums differ): per-channel outputs
//!   rtol ε, atol 1e-12; y rtol ε, atol 1e-7;
//! - conv outputs far from zero (a bias of 1e4) keep their variance (the partial moments are merged
//!   pairwise, never formed as E[x²] − E[x]²);
//! - a graph tile that does not fit in shared memory gathers nothing (`None`), and the batch norm
//!   makes its own pass.
//!
//! Without a GPU each test prints why it was skipped.

mod conv_support;
mod gpu_support;

use conv_support::{cases, Inputs};
use gpu_support::{assert_bits, assert_close, fetch, gpu_with, normal, poisoned};
use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::cuda::{CudaBackend, DeviceBuf, PartialMoments};
use leangcn::backend::{Backend, BnEpilogue, BnEval, BnGeom, ConvMath, GradAdd, GraphGeom};
use leangcn::model::init::InitRng;

const EPS32: f32 = f32::EPSILON;

/// The training-mode batch norm's (y, save_mean, save_invstd, running_mean, running_var).
type BnOutputs = [Vec<f32>; 5];

struct BnParams {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    running_mean: Vec<f32>,
    running_var: Vec<f32>,
}

impl BnParams {
    fn new(rng: &mut InitRng, c: usize) -> Self {
        Self {
            gamma: normal(rng, c),
            beta: normal(rng, c),
            running_mean: normal(rng, c),
            running_var: normal(rng, c).iter().map(|v| 1.0 + 0.5 * v.abs()).collect(),
        }
    }
}

fn bn_geom(n: usize, c: usize, s: usize) -> BnGeom {
    BnGeom {
        n,
        c,
        s,
        eps: 1e-5,
        momentum: 0.1,
    }
}

/// The GPU's batch norm of `x` into poisoned outputs, with `stats` or its own pass.
fn gpu_batch_norm(
    be: &CudaBackend,
    g: &BnGeom,
    x: &DeviceBuf,
    stats: Option<&PartialMoments>,
    p: &BnParams,
) -> BnOutputs {
    let (gamma, beta) = (be.upload(&p.gamma), be.upload(&p.beta));
    let (mut rm, mut rv) = (be.upload(&p.running_mean), be.upload(&p.running_var));
    let (mut y, mut mean, mut invstd) = (poisoned(be, g.len()), poisoned(be, g.c), poisoned(be, g.c));
    be.batch_norm_train(
        g,
        x,
        stats,
        BnEpilogue::none(),
        &gamma,
        &beta,
        &mut rm,
        &mut rv,
        &mut y,
        &mut mean,
        &mut invstd,
    );
    [y, mean, invstd, rm, rv].map(|b| fetch(be, &b))
}

fn cpu_batch_norm(g: &BnGeom, x: &[f32], p: &BnParams) -> BnOutputs {
    let cpu = CpuBackend::<f32>::new();
    let (mut rm, mut rv) = (p.running_mean.clone(), p.running_var.clone());
    let (mut y, mut mean, mut invstd) = (vec![0.0; g.len()], vec![0.0; g.c], vec![0.0; g.c]);
    let x = x.to_vec();
    cpu.batch_norm_train(
        g,
        &x,
        None,
        BnEpilogue::none(),
        &p.gamma,
        &p.beta,
        &mut rm,
        &mut rv,
        &mut y,
        &mut mean,
        &mut invstd,
    );
    [y, mean, invstd, rm, rv]
}

fn assert_bn_close(what: &str, got: &BnOutputs, want: &BnOutputs) {
    let names = ["y", "save_mean", "save_invstd", "running_mean", "running_var"];
    for (i, name) in names.iter().enumerate() {
        let atol = if i == 0 { 1e-7 } else { 1e-12 };
        assert_close(&format!("{what}: {name}"), &got[i], &want[i], EPS32, atol);
    }
}

/// The batch norm of `x` given `stats` against its own pass on the GPU and against the CPU.
fn check_batch_norm(what: &str, be: &CudaBackend, g: &BnGeom, x: &DeviceBuf, stats: &PartialMoments, p: &BnParams) {
    let gathered = gpu_batch_norm(be, g, x, Some(stats), p);
    assert_bn_close(
        &format!("{what}, gathered vs own pass"),
        &gathered,
        &gpu_batch_norm(be, g, x, None, p),
    );
    let cpu = cpu_batch_norm(g, &fetch(be, x), p);
    assert_bn_close(&format!("{what}, gathered vs cpu"), &gathered, &cpu);
}

#[test]
fn conv_gathered_statistics_match_the_batch_norm_pass() {
    for (seed, math) in (61..).zip(ConvMath::ALL) {
        let Some(be) = gpu_with(
            &format!("{math}_conv_gathered_statistics_match_the_batch_norm_pass"),
            math,
        ) else {
            continue;
        };
        let mut rng = InitRng::new(seed);
        for (name, g, bias) in cases() {
            // every case once as it is, and once far from zero through its bias
            for offset in [None, Some(1.0e4f32)] {
                let what = format!("{math} {name}, bias offset {offset:?}: {g:?}");
                let mut inputs = Inputs::new(&mut rng, &g, bias || offset.is_some());
                if let (Some(b), Some(off)) = (inputs.b.as_mut(), offset) {
                    b.iter_mut().for_each(|v| *v += off);
                }
                let (x, w) = (be.upload(&inputs.x), be.upload(&inputs.w));
                let b = inputs.b.as_deref().map(|b| be.upload(b));
                let mut plain = poisoned(&be, g.y_len());
                be.conv_t_forward(&g, &x, &w, b.as_ref(), &mut plain);
                let mut y = poisoned(&be, g.y_len());
                let stats = be.conv_t_forward_with_stats(&g, &x, &w, b.as_ref(), &mut y);
                assert_bits(&format!("{what}: y"), &fetch(&be, &y), &fetch(&be, &plain));
                let stats = stats.unwrap_or_else(|| panic!("{what}: no statistics ({:?})", be.check()));
                let bn = bn_geom(g.n, g.c_out, g.t_out() * g.v);
                check_batch_norm(&what, &be, &bn, &y, &stats, &BnParams::new(&mut rng, g.c_out));
            }
        }
    }
}

#[test]
fn graph_gathered_statistics_match_the_batch_norm_pass() {
    let Some(be) = gpu_with("graph_gathered_statistics_match_the_batch_norm_pass", ConvMath::F32) else {
        return;
    };
    let mut rng = InitRng::new(67);
    let graph = |n, k, c, t, v| GraphGeom { n, k, c, t, v };
    // (geometry, whether a tile of one (n, c) fits in shared memory)
    let cases = [
        (graph(1, 1, 1, 1, 1), true),
        (graph(3, 3, 5, 7, 25), true),    // t not a multiple of the 4 rows a thread takes
        (graph(2, 3, 64, 100, 25), true), // ST-GCN's first blocks
        (graph(5, 3, 17, 13, 18), true),  // OpenPose's 18 joints
        (graph(2, 3, 4, 300, 25), false), // a 300-frame tile needs 90 KB of shared memory
    ];
    for (g, fits) in cases {
        let what = format!("{g:?}");
        let z: Vec<f32> = normal(&mut rng, g.z_len()).iter().map(|v| v + 3.0).collect();
        let (z, a) = (be.upload(&z), be.upload(&normal(&mut rng, g.a_len())));
        let mut plain = poisoned(&be, g.y_len());
        be.graph_forward(&g, &z, &a, &mut plain);
        let mut y = poisoned(&be, g.y_len());
        let stats = be.graph_forward_with_stats(&g, &z, &a, &mut y);
        assert_bits(&format!("{what}: y"), &fetch(&be, &y), &fetch(&be, &plain));
        let bn = bn_geom(g.n, g.c, g.t * g.v);
        let params = BnParams::new(&mut rng, g.c);
        match stats {
            Some(stats) => {
                assert!(fits, "{what}: statistics gathered from tiles that should not fit");
                check_batch_norm(&what, &be, &bn, &y, &stats, &params);
            }
            None => {
                be.check().expect("the graph forward failed");
                assert!(!fits, "{what}: no statistics gathered");
            }
        }
    }
}

/// The device copies of a batch norm's parameters.
struct GpuBnParams {
    gamma: DeviceBuf,
    beta: DeviceBuf,
    running_mean: DeviceBuf,
    running_var: DeviceBuf,
}

impl GpuBnParams {
    fn new(be: &CudaBackend, p: &BnParams) -> Self {
        Self {
            gamma: be.upload(&p.gamma),
            beta: be.upload(&p.beta),
            running_mean: be.upload(&p.running_mean),
            running_var: be.upload(&p.running_var),
        }
    }

    fn eval(&self) -> BnEval<'_, DeviceBuf> {
        BnEval {
            gamma: &self.gamma,
            beta: &self.beta,
            running_mean: &self.running_mean,
            running_var: &self.running_var,
            eps: 1e-5,
        }
    }
}

/// `batch_norm_eval` of `u` with `epilogue` into a poisoned output: the unfused reference.
fn gpu_batch_norm_eval(
    be: &CudaBackend,
    g: &BnGeom,
    u: &DeviceBuf,
    p: &GpuBnParams,
    epilogue: BnEpilogue<'_, DeviceBuf>,
) -> Vec<f32> {
    let mut y = poisoned(be, g.len());
    let bn = p.eval();
    be.batch_norm_eval(
        g,
        u,
        epilogue,
        bn.gamma,
        bn.beta,
        bn.running_mean,
        bn.running_var,
        &mut y,
    );
    fetch(be, &y)
}

/// Every epilogue: none, ReLU, residual, residual and ReLU.
fn epilogues(residual: &DeviceBuf) -> [BnEpilogue<'_, DeviceBuf>; 4] {
    [
        BnEpilogue::none(),
        BnEpilogue::relu(),
        BnEpilogue {
            residual: Some(residual),
            relu: false,
        },
        BnEpilogue {
            residual: Some(residual),
            relu: true,
        },
    ]
}

#[test]
fn conv_with_the_evaluation_batch_norm_equals_the_two_ops() {
    for (seed, math) in (71..).zip(ConvMath::ALL) {
        let Some(be) = gpu_with(
            &format!("{math}_conv_with_the_evaluation_batch_norm_equals_the_two_ops"),
            math,
        ) else {
            continue;
        };
        let mut rng = InitRng::new(seed);
        for (name, g, bias) in cases() {
            let inputs = Inputs::new(&mut rng, &g, bias);
            let (x, w) = (be.upload(&inputs.x), be.upload(&inputs.w));
            let b = inputs.b.as_deref().map(|b| be.upload(b));
            let params = GpuBnParams::new(&be, &BnParams::new(&mut rng, g.c_out));
            let residual = be.upload(&normal(&mut rng, g.y_len()));
            let mut u = poisoned(&be, g.y_len());
            be.conv_t_forward(&g, &x, &w, b.as_ref(), &mut u);
            let bn = bn_geom(g.n, g.c_out, g.t_out() * g.v);
            for epilogue in epilogues(&residual) {
                let what = format!(
                    "{math} {name}, residual {}, relu {}",
                    epilogue.residual.is_some(),
                    epilogue.relu
                );
                let mut y = poisoned(&be, g.y_len());
                be.conv_t_forward_bn_eval(&g, &x, &w, b.as_ref(), params.eval(), epilogue, &mut y);
                assert_bits(
                    &what,
                    &fetch(&be, &y),
                    &gpu_batch_norm_eval(&be, &bn, &u, &params, epilogue),
                );
            }
        }
    }
}

#[test]
fn graph_with_the_evaluation_batch_norm_equals_the_two_ops() {
    let Some(be) = gpu_with("graph_with_the_evaluation_batch_norm_equals_the_two_ops", ConvMath::F32) else {
        return;
    };
    let mut rng = InitRng::new(73);
    let graph = |n, k, c, t, v| GraphGeom { n, k, c, t, v };
    for g in [
        graph(1, 1, 1, 1, 1),
        graph(3, 3, 5, 7, 25), // a tile crosses channels and samples
        graph(2, 3, 64, 100, 25),
        graph(2, 3, 4, 300, 25), // 300 frames a channel
    ] {
        let (z, a) = (
            be.upload(&normal(&mut rng, g.z_len())),
            be.upload(&normal(&mut rng, g.a_len())),
        );
        let params = GpuBnParams::new(&be, &BnParams::new(&mut rng, g.c));
        let residual = be.upload(&normal(&mut rng, g.y_len()));
        let mut u = poisoned(&be, g.y_len());
        be.graph_forward(&g, &z, &a, &mut u);
        let bn = bn_geom(g.n, g.c, g.t * g.v);
        for epilogue in epilogues(&residual) {
            let what = format!(
                "{g:?}, residual {}, relu {}",
                epilogue.residual.is_some(),
                epilogue.relu
            );
            let mut y = poisoned(&be, g.y_len());
            be.graph_forward_bn_eval(&g, &z, &a, params.eval(), epilogue, &mut y);
            assert_bits(
                &what,
                &fetch(&be, &y),
                &gpu_batch_norm_eval(&be, &bn, &u, &params, epilogue),
            );
        }
    }
}

#[test]
fn input_gradient_with_an_added_gradient_equals_the_two_ops() {
    for (seed, math) in (75..).zip(ConvMath::ALL) {
        let Some(be) = gpu_with(
            &format!("{math}_input_gradient_with_an_added_gradient_equals_the_two_ops"),
            math,
        ) else {
            continue;
        };
        let mut rng = InitRng::new(seed);
        for (name, g, _) in cases() {
            let (dy, w) = (
                be.upload(&normal(&mut rng, g.y_len())),
                be.upload(&normal(&mut rng, g.w_len())),
            );
            let (grad, relu_y) = (
                be.upload(&normal(&mut rng, g.x_len())),
                be.upload(&normal(&mut rng, g.x_len())),
            );
            for relu_output in [None, Some(&relu_y)] {
                let what = format!("{math} {name}, masked {}", relu_output.is_some());
                let mut want = poisoned(&be, g.x_len());
                be.conv_t_backward_input(&g, &dy, &w, &mut want);
                match relu_output {
                    Some(y) => be.relu_backward_add(y, &grad, &mut want),
                    None => be.add_assign(&mut want, &grad),
                }
                let mut dx = poisoned(&be, g.x_len());
                be.conv_t_backward_input_add(
                    &g,
                    &dy,
                    &w,
                    GradAdd {
                        grad: &grad,
                        relu_output,
                    },
                    &mut dx,
                );
                assert_bits(&what, &fetch(&be, &dx), &fetch(&be, &want));
            }
        }
    }
}
