//! Launchers of the batch-normalisation kernels (`cuda/batch_norm.cu`): per-channel reductions
//! over a fixed partition into double partials (in the forward, unless the op that wrote the input
//! gathered them), a per-channel finalize, then the per-element pass, which also applies the
//! forward's epilogue (residual add, ReLU) or the backward's ReLU mask. The activations (x, y, dy,
//! dx, the residual, the ReLU output) are in their storage, f32 or bf16; the rest is f32.

use cudarc::driver::{CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg};

use super::buffer::{one_storage, Act, ActEpilogue, ActMut};
use super::device::CudaDevice;
use super::elementwise::flat_launch;
use super::launch::{expect_len, optional_act, rows_launch, size_u32, workspace, THREADS};
use crate::backend::{BnEval, BnGeom};
use crate::{act_kernel, Result};

const MODULE: &str = "batch_norm";
/// Threads of the statistics finalize, a block per channel (`FINALIZE_THREADS` of batch_norm.cu).
const FINALIZE_THREADS: u32 = 256;
/// Columns per reduction segment: four per thread.
const CHUNK: u32 = 4 * THREADS;
/// The reductions use about this many blocks in all (at least one per channel); the partition
/// depends on the geometry only, so the statistics have the same bits on every run and GPU.
const TARGET_BLOCKS: u32 = 1024;

/// `struct BnShape` of batch_norm.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct BnShapeRepr {
    n: u32,
    c: u32,
    s: u32,
    chunk: u32,
    parts: u32,
}
// SAFETY: plain old data with the layout of the kernel's struct.
unsafe impl DeviceRepr for BnShapeRepr {}

/// The kernel shape of `g`, once the `[n, c, s]` buffers `tensors` and the `[c]` buffers
/// `per_channel` ((name, length) pairs) have the lengths it needs.
fn shape<'a>(
    op: &str,
    g: &BnGeom,
    tensors: impl IntoIterator<Item = (&'a str, usize)>,
    per_channel: &[(&str, usize)],
) -> Result<BnShapeRepr> {
    let limit = i32::MAX as u32;
    let n = size_u32(op, "n", g.n, limit)?;
    // channels are the y dimension of the reduction grids
    let c = size_u32(op, "c", g.c, 65_535)?;
    let s = size_u32(op, "s", g.s, limit)?;
    let parts = s.div_ceil(CHUNK);
    size_u32(op, "n·c", g.n * g.c, limit)?;
    size_u32(op, "n·segments", g.n * parts as usize, limit)?;
    for (what, len) in tensors {
        expect_len(op, what, len, g.len())?;
    }
    for &(what, len) in per_channel {
        expect_len(op, what, len, g.c)?;
    }
    Ok(BnShapeRepr {
        n,
        c,
        s,
        chunk: CHUNK,
        parts,
    })
}

/// Blocks per channel of a reduction: `TARGET_BLOCKS/c`, at most one per segment.
fn blocks_per_channel(sh: &BnShapeRepr) -> u32 {
    (TARGET_BLOCKS / sh.c).clamp(1, sh.n * sh.parts)
}

fn reduction_launch(blocks: u32, sh: &BnShapeRepr) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (blocks, sh.c, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The kernels' `(name, length)` of an optional `[n, c, s]` input (the residual, the ReLU output).
fn optional_tensor<'a>(what: &'a str, buf: Option<Act<'_>>) -> Option<(&'a str, usize)> {
    buf.map(|b| (what, b.len()))
}

/// Batch statistics as partial moments (`cuda/bn_moments.cuh`): `[c, parts, 3]` double, part p of
/// channel ch = (count, mean, M2) of some of the channel's `count` values. The batch-norm statistics
/// pass writes them, and so do the kernels that produce a batch norm's input (the conv and graph
/// forwards) when asked to gather them.
pub struct PartialMoments {
    moments: CudaSlice<f64>,
    channels: usize,
    parts: u32,
    /// Values per channel in all parts: the n·s of the activation they describe.
    count: usize,
}

impl PartialMoments {
    /// Room for `parts` parts of each of `channels` channels of `count` values each.
    ///
    /// # Safety
    /// The memory is uninitialised: the kernel given `slice_mut` must write every part.
    pub(super) unsafe fn new(dev: &CudaDevice, channels: usize, parts: usize, count: usize) -> Result<Self> {
        let parts = u32::try_from(parts)
            .map_err(|_| crate::Error::Cuda(format!("batch statistics: {parts} parts a channel is too many")))?;
        // SAFETY: forwarded to the caller.
        let moments = unsafe { workspace::<f64>(dev, "batch statistics", channels * parts as usize * 3) }?;
        Ok(Self {
            moments,
            channels,
            parts,
            count,
        })
    }

    pub(super) fn slice_mut(&mut self) -> &mut CudaSlice<f64> {
        &mut self.moments
    }

    /// `Ok` if these are statistics of an activation of geometry `g`.
    fn check(&self, g: &BnGeom) -> Result<()> {
        if self.channels == g.c && self.count == g.n * g.s {
            Ok(())
        } else {
            Err(crate::Error::Cuda(format!(
                "batch_norm train: statistics of {} channels of {} values given for {g:?}",
                self.channels, self.count
            )))
        }
    }
}

/// `y = relu?(x·scale + shift + residual?)` with the per-channel coefficients `coef: [c, 2]` double.
fn apply(
    dev: &CudaDevice,
    sh: &BnShapeRepr,
    x: Act<'_>,
    coef: &CudaSlice<f64>,
    epilogue: ActEpilogue<'_>,
    y: ActMut<'_>,
) -> Result<()> {
    const OP: &str = "batch_norm apply";
    let residual = epilogue.residual.map(|r| r.storage());
    let storage = one_storage(OP, [x.storage(), y.storage()].into_iter().chain(residual))?;
    let name = act_kernel!(storage, "batch_norm_apply_f32");
    let f = dev.function(MODULE, name)?;
    let relu = u32::from(epilogue.relu);
    dev.launch(&f, name, rows_launch(sh.n * sh.c, sh.s), |b| {
        x.push(b);
        b.arg(coef).arg(sh);
        optional_act(b, epilogue.residual);
        b.arg(&relu);
        y.push(b);
    })
}

/// See `Backend::batch_norm_train`. x, y, the residual: `[n, c, s]`; the rest `[c]`.
#[allow(clippy::too_many_arguments)]
pub fn train(
    dev: &CudaDevice,
    g: &BnGeom,
    x: Act<'_>,
    stats: Option<&PartialMoments>,
    epilogue: ActEpilogue<'_>,
    gamma: &CudaSlice<f32>,
    beta: &CudaSlice<f32>,
    running_mean: &mut CudaSlice<f32>,
    running_var: &mut CudaSlice<f32>,
    y: ActMut<'_>,
    save_mean: &mut CudaSlice<f32>,
    save_invstd: &mut CudaSlice<f32>,
) -> Result<()> {
    let sh = shape(
        "batch_norm train",
        g,
        [("x", x.len()), ("y", y.len())]
            .into_iter()
            .chain(optional_tensor("residual", epilogue.residual)),
        &[
            ("gamma", gamma.len()),
            ("beta", beta.len()),
            ("running_mean", running_mean.len()),
            ("running_var", running_var.len()),
            ("save_mean", save_mean.len()),
            ("save_invstd", save_invstd.len()),
        ],
    )?;
    let computed;
    let moments = match stats {
        Some(given) => {
            given.check(g)?;
            given
        }
        None => {
            let blocks = blocks_per_channel(&sh);
            // SAFETY: block (b, ch) writes part b of channel ch: all of them.
            let mut partial = unsafe { PartialMoments::new(dev, g.c, blocks as usize, g.n * g.s) }?;
            let name = act_kernel!(x.storage(), "batch_norm_stats_partial_f32");
            let f = dev.function(MODULE, name)?;
            dev.launch(&f, name, reduction_launch(blocks, &sh), |b| {
                x.push(b);
                b.arg(&sh).arg(partial.slice_mut());
            })?;
            computed = partial;
            &computed
        }
    };
    // SAFETY: the finalize writes both coefficients of every channel.
    let mut coef = unsafe { workspace::<f64>(dev, "batch-norm coefficients", g.c * 2) }?;
    let (eps, momentum) = (g.eps, g.momentum);
    let f = dev.function(MODULE, "batch_norm_train_finalize_f32")?;
    let cfg = LaunchConfig {
        grid_dim: (sh.c, 1, 1), // a block per channel (c ≤ 65,535, checked)
        block_dim: (FINALIZE_THREADS, 1, 1),
        shared_mem_bytes: 0,
    };
    dev.launch(&f, "batch_norm_train_finalize_f32", cfg, |b| {
        b.arg(&moments.moments)
            .arg(&moments.parts)
            .arg(&sh)
            .arg(&eps)
            .arg(&momentum)
            .arg(gamma)
            .arg(beta)
            .arg(running_mean)
            .arg(running_var)
            .arg(save_mean)
            .arg(save_invstd)
            .arg(&mut coef);
    })?;
    apply(dev, &sh, x, &coef, epilogue, y)
}

/// See `Backend::batch_norm_eval`.
#[allow(clippy::too_many_arguments)]
pub fn eval(
    dev: &CudaDevice,
    g: &BnGeom,
    x: Act<'_>,
    epilogue: ActEpilogue<'_>,
    gamma: &CudaSlice<f32>,
    beta: &CudaSlice<f32>,
    running_mean: &CudaSlice<f32>,
    running_var: &CudaSlice<f32>,
    y: ActMut<'_>,
) -> Result<()> {
    let sh = shape(
        "batch_norm eval",
        g,
        [("x", x.len()), ("y", y.len())]
            .into_iter()
            .chain(optional_tensor("residual", epilogue.residual)),
        &[],
    )?;
    let bn = BnEval {
        gamma,
        beta,
        running_mean,
        running_var,
        eps: g.eps,
    };
    let coef = eval_coefficients(dev, "batch_norm eval", g.c, bn)?;
    apply(dev, &sh, x, &coef, epilogue, y)
}

/// The per-channel coefficients `[c, 2]` double = (γ/sqrt(running_var + eps), β − running_mean·scale)
/// of an evaluation-mode batch norm over `c` channels, for `batch_norm_apply_f32` or the epilogue of
/// the kernel that writes the batch norm's input.
pub(super) fn eval_coefficients(
    dev: &CudaDevice,
    op: &str,
    c: usize,
    bn: BnEval<'_, CudaSlice<f32>>,
) -> Result<CudaSlice<f64>> {
    for (what, buf) in [
        ("gamma", bn.gamma),
        ("beta", bn.beta),
        ("running_mean", bn.running_mean),
        ("running_var", bn.running_var),
    ] {
        expect_len(op, what, buf.len(), c)?;
    }
    let c32 = size_u32(op, "c", c, i32::MAX as u32)?;
    // SAFETY: the coefficient kernel writes both coefficients of every channel.
    let mut coef = unsafe { workspace::<f64>(dev, "batch-norm coefficients", c * 2) }?;
    let f = dev.function(MODULE, "batch_norm_eval_coefficients_f32")?;
    dev.launch(&f, "batch_norm_eval_coefficients_f32", flat_launch(c), |b| {
        b.arg(bn.gamma)
            .arg(bn.beta)
            .arg(bn.running_mean)
            .arg(bn.running_var)
            .arg(&c32)
            .arg(&bn.eps)
            .arg(&mut coef);
    })?;
    Ok(coef)
}

/// See `Backend::batch_norm_backward`: dx overwritten, `dgamma +=`, `dbeta +=`; dy masked by the
/// ReLU output `relu_output` when given.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    dev: &CudaDevice,
    g: &BnGeom,
    x: Act<'_>,
    dy: Act<'_>,
    relu_output: Option<Act<'_>>,
    gamma: &CudaSlice<f32>,
    save_mean: &CudaSlice<f32>,
    save_invstd: &CudaSlice<f32>,
    dx: ActMut<'_>,
    dgamma: &mut CudaSlice<f32>,
    dbeta: &mut CudaSlice<f32>,
) -> Result<()> {
    const OP: &str = "batch_norm backward";
    let mask = relu_output.map(|r| r.storage());
    let storage = one_storage(OP, [x.storage(), dy.storage(), dx.storage()].into_iter().chain(mask))?;
    let sh = shape(
        OP,
        g,
        [("x", x.len()), ("dy", dy.len()), ("dx", dx.len())]
            .into_iter()
            .chain(optional_tensor("relu_output", relu_output)),
        &[
            ("gamma", gamma.len()),
            ("save_mean", save_mean.len()),
            ("save_invstd", save_invstd.len()),
            ("dgamma", dgamma.len()),
            ("dbeta", dbeta.len()),
        ],
    )?;
    let blocks = blocks_per_channel(&sh);
    // SAFETY: block (b, ch) writes partials (ch·blocks + b)·2 + {0, 1}: all of them.
    let mut partials = unsafe { workspace::<f64>(dev, "batch-norm gradient sums", g.c * blocks as usize * 2) }?;
    let name = act_kernel!(storage, "batch_norm_backward_partial_f32");
    let f = dev.function(MODULE, name)?;
    dev.launch(&f, name, reduction_launch(blocks, &sh), |b| {
        x.push(b);
        dy.push(b);
        optional_act(b, relu_output);
        b.arg(save_mean).arg(save_invstd).arg(&sh).arg(&mut partials);
    })?;
    // SAFETY: the finalize writes all five coefficients of every channel.
    let mut coef = unsafe { workspace::<f64>(dev, "batch-norm gradient coefficients", g.c * 5) }?;
    let f = dev.function(MODULE, "batch_norm_backward_finalize_f32")?;
    dev.launch(&f, "batch_norm_backward_finalize_f32", flat_launch(g.c), |b| {
        b.arg(&partials)
            .arg(&blocks)
            .arg(&sh)
            .arg(gamma)
            .arg(save_mean)
            .arg(save_invstd)
            .arg(dgamma)
            .arg(dbeta)
            .arg(&mut coef);
    })?;
    let name = act_kernel!(storage, "batch_norm_backward_input_f32");
    let f = dev.function(MODULE, name)?;
    dev.launch(&f, name, rows_launch(sh.n * sh.c, sh.s), |b| {
        x.push(b);
        dy.push(b);
        optional_act(b, relu_output);
        b.arg(&coef).arg(&sh);
        dx.push(b);
    })
}
