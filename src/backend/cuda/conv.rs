//! Launchers of the convolution-over-time kernels (`cuda/temporal_conv.cu` in f32,
//! `cuda/temporal_conv_tensor_core.cu` on TF32 or bf16 tensor cores): one implicit-GEMM kernel for the forward pass
//! and the input gradient (one launch per output phase of a strided conv, over weights repacked per
//! phase), and a split-K kernel for the weight and bias gradients whose partials are summed in a
//! fixed order. Both arithmetics share the launch parameters and the helper kernels (repacking, the
//! split sum); the block tile follows the GEMM's row count. With bf16-stored activations the bf16
//! tensor-core kernels' `_bf16act` twins read and write them (weights and their gradients stay f32).

use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};

use super::batch_norm::PartialMoments;
use super::buffer::{one_storage, Act, ActEpilogue, ActMut};
use super::device::{driver_err, CudaDevice};
use super::elementwise::flat_launch;
use super::fast_div::FastDiv;
use super::launch::{optional_act, optional_arg, optional_arg_mut};
use crate::backend::{ConvGeom, ConvMath, Storage};
use crate::{Error, Result};

const MODULE: &str = "temporal_conv";
const TENSOR_CORE_MODULE: &str = "temporal_conv_tensor_core";

/// The reduction step (`BK`) of the f32 and the tensor-core kernels.
const BK_F32: usize = 8;
const BK_TENSOR_CORE: usize = 16;

/// The largest tensor (and workspace) the kernels index: their indices are 32-bit, and staying at
/// 2^30 leaves room for the tile overhangs they add before bounds checks.
const INDEX_LIMIT: usize = 1 << 30;

/// The weight gradient aims at this many blocks (several waves on a 132-SM GPU) by splitting its
/// reduction; the number depends on the shape alone, so results are the same on every GPU.
const WGRAD_TARGET_BLOCKS: usize = 1024;

/// The shortest reduction one split gets (64 tile steps), so that the per-block prologue and the
/// partial tile written out stay small against the work.
const WGRAD_MIN_CHUNK: usize = 512;

/// A block tile of the kernels and its entry points in f32, TF32 and bf16 (the same rows, columns
/// and threads in all three), and bf16 with bf16-stored activations.
struct TileShape {
    rows: usize,
    cols: usize,
    threads: u32,
    gemm: &'static str,
    wgrad: &'static str,
    gemm_tf32: &'static str,
    wgrad_tf32: &'static str,
    gemm_bf16: &'static str,
    wgrad_bf16: &'static str,
    gemm_bf16act: &'static str,
    wgrad_bf16act: &'static str,
}

/// (module, kernel) of conv_gemm and conv_wgrad of `tile` in `math` over activations in a storage,
/// and the kernels' reduction step.
struct Kernels {
    module: &'static str,
    gemm: &'static str,
    wgrad: &'static str,
    step: usize,
}

impl TileShape {
    fn kernels(&self, math: ConvMath, storage: Storage) -> Result<Kernels> {
        Ok(match (math, storage) {
            (ConvMath::Bf16, Storage::Bf16) => Kernels {
                module: TENSOR_CORE_MODULE,
                gemm: self.gemm_bf16act,
                wgrad: self.wgrad_bf16act,
                step: BK_TENSOR_CORE,
            },
            (math, Storage::Bf16) => {
                return Err(Error::Cuda(format!(
                    "conv: bf16-stored activations need bf16 conv operands, not {math}"
                )))
            }
            (ConvMath::F32, Storage::F32) => Kernels {
                module: MODULE,
                gemm: self.gemm,
                wgrad: self.wgrad,
                step: BK_F32,
            },
            (ConvMath::Tf32, Storage::F32) => Kernels {
                module: TENSOR_CORE_MODULE,
                gemm: self.gemm_tf32,
                wgrad: self.wgrad_tf32,
                step: BK_TENSOR_CORE,
            },
            (ConvMath::Bf16, Storage::F32) => Kernels {
                module: TENSOR_CORE_MODULE,
                gemm: self.gemm_bf16,
                wgrad: self.wgrad_bf16,
                step: BK_TENSOR_CORE,
            },
        })
    }
}

const TILES: [TileShape; 3] = [
    TileShape {
        rows: 32,
        cols: 128,
        threads: 128,
        gemm: "conv_gemm_32x128_f32",
        wgrad: "conv_wgrad_32x128_f32",
        gemm_tf32: "conv_gemm_32x128_tf32",
        wgrad_tf32: "conv_wgrad_32x128_tf32",
        gemm_bf16: "conv_gemm_32x128_bf16",
        wgrad_bf16: "conv_wgrad_32x128_bf16",
        gemm_bf16act: "conv_gemm_32x128_bf16_bf16act",
        wgrad_bf16act: "conv_wgrad_32x128_bf16_bf16act",
    },
    TileShape {
        rows: 64,
        cols: 128,
        threads: 128,
        gemm: "conv_gemm_64x128_f32",
        wgrad: "conv_wgrad_64x128_f32",
        gemm_tf32: "conv_gemm_64x128_tf32",
        wgrad_tf32: "conv_wgrad_64x128_tf32",
        gemm_bf16: "conv_gemm_64x128_bf16",
        wgrad_bf16: "conv_wgrad_64x128_bf16",
        gemm_bf16act: "conv_gemm_64x128_bf16_bf16act",
        wgrad_bf16act: "conv_wgrad_64x128_bf16_bf16act",
    },
    TileShape {
        rows: 128,
        cols: 128,
        threads: 256,
        gemm: "conv_gemm_128x128_f32",
        wgrad: "conv_wgrad_128x128_f32",
        gemm_tf32: "conv_gemm_128x128_tf32",
        wgrad_tf32: "conv_wgrad_128x128_tf32",
        gemm_bf16: "conv_gemm_128x128_bf16",
        wgrad_bf16: "conv_wgrad_128x128_bf16",
        gemm_bf16act: "conv_gemm_128x128_bf16_bf16act",
        wgrad_bf16act: "conv_wgrad_128x128_bf16_bf16act",
    },
];

/// The smallest tile that covers `rows` GEMM rows, the largest beyond.
fn tile_for(rows: usize) -> &'static TileShape {
    TILES.iter().find(|t| rows <= t.rows).unwrap_or(&TILES[TILES.len() - 1])
}

/// `struct ConvGemm` of conv_tiles.cuh.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct ConvGemmRepr {
    rows: i32,
    channels: i32,
    taps: i32,
    k: i32,
    src_t: i32,
    v: i32,
    col_t: i32,
    col_stride: i32,
    src_off: i32,
    columns: i32,
    dst_t: i32,
    dst_stride: i32,
    dst_off: i32,
    div_taps: FastDiv,
    div_col_frames: FastDiv,
    div_v: FastDiv,
}
// SAFETY: plain old data with the layout of the kernel's struct.
unsafe impl cudarc::driver::DeviceRepr for ConvGemmRepr {}

/// `struct ConvWgrad` of conv_tiles.cuh.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct ConvWgradRepr {
    c_out: i32,
    c_in: i32,
    kt: i32,
    t_in: i32,
    v: i32,
    t_out: i32,
    stride: i32,
    pad: i32,
    red: i32,
    length: i32,
    chunk: i32,
    div_frames: FastDiv,
    div_v: FastDiv,
    div_kt: FastDiv,
}
// SAFETY: as above.
unsafe impl cudarc::driver::DeviceRepr for ConvWgradRepr {}

/// One launch of conv_gemm in host integers:
/// `dst[s, row, t·dst_stride + dst_off, j] = bias[row] + Σ_(ch,tap) a[row, ch·taps + tap]·src[s, ch, t·col_stride + tap + src_off, j]`
/// over `s < n`, `t < col_t`, `j < v`; src: `[n, channels, src_t, v]`, dst: `[n, rows, dst_t, v]`.
struct GemmView {
    n: usize,
    rows: usize,
    channels: usize,
    taps: usize,
    src_t: usize,
    v: usize,
    col_t: usize,
    col_stride: usize,
    src_off: isize,
    dst_t: usize,
    dst_stride: usize,
    dst_off: usize,
}

/// A size the geometry check has bounded by `INDEX_LIMIT`, as the kernels' `int`.
fn int(x: usize) -> i32 {
    x as i32
}

impl GemmView {
    /// The launch's column tiles: the parts of the batch statistics it gathers per row.
    fn column_tiles(&self) -> usize {
        (self.n * self.col_t * self.v).div_ceil(tile_for(self.rows).cols)
    }

    fn repr(&self) -> ConvGemmRepr {
        ConvGemmRepr {
            rows: int(self.rows),
            channels: int(self.channels),
            taps: int(self.taps),
            k: int(self.channels * self.taps),
            src_t: int(self.src_t),
            v: int(self.v),
            col_t: int(self.col_t),
            col_stride: int(self.col_stride),
            src_off: self.src_off as i32,
            columns: int(self.n * self.col_t * self.v),
            dst_t: int(self.dst_t),
            dst_stride: int(self.dst_stride),
            dst_off: int(self.dst_off),
            // a phase without taps has no reduction; any divisor will do
            div_taps: FastDiv::new(self.taps.max(1) as u32),
            div_col_frames: FastDiv::new((self.col_t * self.v) as u32),
            div_v: FastDiv::new(self.v as u32),
        }
    }
}

/// Checks that `g` is a valid convolution whose tensors the kernels can index.
fn check_geometry(op: &str, g: &ConvGeom) -> Result<()> {
    let dims = [
        ("n", g.n),
        ("c_in", g.c_in),
        ("c_out", g.c_out),
        ("t_in", g.t_in),
        ("v", g.v),
        ("kt", g.kt),
        ("stride", g.stride),
    ];
    if let Some((name, _)) = dims.iter().find(|(_, d)| *d == 0) {
        return Err(Error::Cuda(format!("{op}: {name} is 0 in {g:?}")));
    }
    let padded = g.t_in.saturating_add(g.pad.saturating_mul(2));
    if padded < g.kt {
        return Err(Error::Cuda(format!(
            "{op}: the kernel ({} frames) is longer than the padded clip ({padded} frames) in {g:?}",
            g.kt
        )));
    }
    // bounds x, y (t_out <= padded) and w without overflowing on the way
    let elements = |dims: &[usize]| dims.iter().fold(1usize, |acc, &d| acc.saturating_mul(d));
    let largest = elements(&[g.n, g.c_in.max(g.c_out), padded, g.v]).max(elements(&[g.c_out, g.c_in, g.kt]));
    if padded > INDEX_LIMIT || g.stride > INDEX_LIMIT || largest > INDEX_LIMIT {
        return Err(Error::Cuda(format!(
            "{op}: {g:?} is too large for the kernels' 32-bit indexing (at most {INDEX_LIMIT} elements a tensor)"
        )));
    }
    Ok(())
}

fn check_len(op: &str, g: &ConvGeom, name: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Error::Cuda(format!(
            "{op}: {name} has {got} elements but {g:?} needs {want}"
        )))
    }
}

/// A grid of `cols x rows x splits` blocks, or an error beyond the hardware's grid limits.
fn grid(op: &str, cols: usize, rows: usize, splits: usize) -> Result<(u32, u32, u32)> {
    if cols > i32::MAX as usize || rows > 65_535 || splits > 65_535 {
        return Err(Error::Cuda(format!(
            "{op}: a grid of {cols} x {rows} x {splits} blocks exceeds the launch limits"
        )));
    }
    Ok((cols as u32, rows as u32, splits as u32))
}

/// An uninitialised device buffer that the next kernels write entirely before reading it.
fn workspace(dev: &CudaDevice, len: usize, what: &str) -> Result<CudaSlice<f32>> {
    // SAFETY: f32 has no invalid bit patterns, and every caller's kernels write all `len` elements
    // before any is read.
    unsafe { dev.stream.alloc::<f32>(len) }.map_err(|e| driver_err(&format!("allocating {what} ({len} floats)"), e))
}

/// What conv_gemm does with its outputs besides storing them (nothing by default); the kernel
/// applies them in `cuda/output_epilogue.cuh`'s order.
#[derive(Default)]
pub struct GemmOutputs<'a> {
    /// Gathers their batch statistics, one part per column tile.
    pub moments: Option<&'a mut PartialMoments>,
    /// The `[rows, 2]` double coefficients of an evaluation-mode batch norm applied to them.
    pub bn_coef: Option<&'a CudaSlice<f64>>,
    /// Added to them (an activation shaped as the output).
    pub residual: Option<Act<'a>>,
    /// The residual counts only where this (a ReLU's output, shaped as the output) is > 0.
    pub residual_mask: Option<Act<'a>>,
    /// A ReLU last.
    pub relu: bool,
}

impl<'a> GemmOutputs<'a> {
    /// Gathering the batch statistics into `moments` (from [`forward_moments`]).
    pub fn gathering(moments: &'a mut PartialMoments) -> Self {
        Self {
            moments: Some(moments),
            ..Self::default()
        }
    }

    /// An evaluation-mode batch norm with coefficients `coef`, then its epilogue.
    pub fn bn_eval(coef: &'a CudaSlice<f64>, epilogue: ActEpilogue<'a>) -> Self {
        Self {
            bn_coef: Some(coef),
            residual: epilogue.residual,
            relu: epilogue.relu,
            ..Self::default()
        }
    }
}

/// Launches conv_gemm in `math` for `view` with the `[rows, channels·taps]` matrix `a`.
#[allow(clippy::too_many_arguments)]
fn launch_gemm(
    dev: &CudaDevice,
    math: ConvMath,
    op: &str,
    view: &GemmView,
    a: &CudaSlice<f32>,
    src: Act<'_>,
    bias: Option<&CudaSlice<f32>>,
    dst: ActMut<'_>,
    outputs: GemmOutputs<'_>,
) -> Result<()> {
    let p = view.repr();
    let optional = [outputs.residual, outputs.residual_mask].into_iter().flatten();
    let storage = one_storage(
        op,
        [src.storage(), dst.storage()]
            .into_iter()
            .chain(optional.map(|a| a.storage())),
    )?;
    for (what, buf) in [("residual", outputs.residual), ("residual mask", outputs.residual_mask)] {
        if let Some(buf) = buf.filter(|b| b.len() != dst.len()) {
            return Err(Error::Cuda(format!(
                "{op}: the {what} has {} elements, the output {}",
                buf.len(),
                dst.len()
            )));
        }
    }
    let relu = u32::from(outputs.relu);
    let tile = tile_for(view.rows);
    let cfg = LaunchConfig {
        grid_dim: grid(op, view.column_tiles(), view.rows.div_ceil(tile.rows), 1)?,
        block_dim: (tile.threads, 1, 1),
        shared_mem_bytes: 0,
    };
    let kernels = tile.kernels(math, storage)?;
    let f = dev.function(kernels.module, kernels.gemm)?;
    dev.launch(&f, kernels.gemm, cfg, |l| {
        l.arg(a);
        src.push(l);
        optional_arg(l, bias);
        dst.push(l);
        optional_arg_mut(l, outputs.moments.map(PartialMoments::slice_mut));
        optional_arg(l, outputs.bn_coef);
        optional_act(l, outputs.residual);
        optional_act(l, outputs.residual_mask);
        l.arg(&relu).arg(&p);
    })
}

/// See `Backend::conv_t_forward` (and `conv_t_forward_with_stats`, `conv_t_forward_bn_eval`,
/// through `outputs`). x: `[n, c_in, t_in, v]`, w: `[c_out, c_in, kt]`, b: `[c_out]`,
/// y: `[n, c_out, t_out, v]` (overwritten).
#[allow(clippy::too_many_arguments)]
pub fn forward(
    dev: &CudaDevice,
    math: ConvMath,
    g: &ConvGeom,
    x: Act<'_>,
    w: &CudaSlice<f32>,
    b: Option<&CudaSlice<f32>>,
    y: ActMut<'_>,
    outputs: GemmOutputs<'_>,
) -> Result<()> {
    const OP: &str = "conv forward";
    check_geometry(OP, g)?;
    check_len(OP, g, "x", x.len(), g.x_len())?;
    check_len(OP, g, "w", w.len(), g.w_len())?;
    check_len(OP, g, "y", y.len(), g.y_len())?;
    if let Some(b) = b {
        check_len(OP, g, "b", b.len(), g.c_out)?;
    }
    launch_gemm(dev, math, OP, &forward_view(g), w, x, b, y, outputs)
}

/// Room for the batch statistics the forward of `g` gathers: one part per column tile of each
/// output channel.
pub fn forward_moments(dev: &CudaDevice, g: &ConvGeom) -> Result<PartialMoments> {
    check_geometry("conv forward", g)?;
    let parts = forward_view(g).column_tiles();
    // SAFETY: the block of column tile p and row tile r writes part p of each of its rows: the
    // row tiles cover every output channel, the column tiles every part.
    unsafe { PartialMoments::new(dev, g.c_out, parts, g.n * g.t_out() * g.v) }
}

/// conv_gemm over the forward's im2col matrix: rows c_out, reduction (c_in, kt), columns (n, t_out, v).
fn forward_view(g: &ConvGeom) -> GemmView {
    let t_out = g.t_out();
    GemmView {
        n: g.n,
        rows: g.c_out,
        channels: g.c_in,
        taps: g.kt,
        src_t: g.t_in,
        v: g.v,
        col_t: t_out,
        col_stride: g.stride,
        src_off: -(g.pad as isize),
        dst_t: t_out,
        dst_stride: 1,
        dst_off: 0,
    }
}

/// Repacks the weights of one input-gradient phase, taps `tap0 + stride·m` for `m < taps`, reversed:
/// `a[i, o·taps + m] = w[o, i, tap0 + stride·(taps − 1 − m)]`, a: `[c_in, c_out·taps]`.
fn pack_phase(dev: &CudaDevice, g: &ConvGeom, w: &CudaSlice<f32>, tap0: usize, taps: usize) -> Result<CudaSlice<f32>> {
    let len = g.c_in * g.c_out * taps;
    let mut a = workspace(dev, len, "the repacked weights of the input gradient")?;
    let (c_out, c_in, kt, stride, tap0, taps) = (
        int(g.c_out),
        int(g.c_in),
        int(g.kt),
        int(g.stride),
        int(tap0),
        int(taps),
    );
    let f = dev.function(MODULE, "conv_pack_phase_f32")?;
    dev.launch(&f, "conv_pack_phase_f32", flat_launch(len), |l| {
        l.arg(w)
            .arg(&mut a)
            .arg(&c_out)
            .arg(&c_in)
            .arg(&kt)
            .arg(&stride)
            .arg(&tap0)
            .arg(&taps);
    })?;
    Ok(a)
}

/// See `Backend::conv_t_backward_input`: dx (overwritten) from dy.
///
///
/// Output frame `φ + stride·u` (phase φ < stride) receives exactly the taps `k ≡ φ + pad (mod stride)`,
/// from dy frame `u + (φ + pad) div stride − m` for the m-th of them; each phase is one dense GEMM.
/// With `add` (the gradient, and the ReLU output that masks it), each phase's store adds its
/// elements of the gradient (masked), as `Backend::conv_t_backward_input_add`.
pub fn backward_input(
    dev: &CudaDevice,
    math: ConvMath,
    g: &ConvGeom,
    dy: Act<'_>,
    w: &CudaSlice<f32>,
    add: Option<(Act<'_>, Option<Act<'_>>)>,
    mut dx: ActMut<'_>,
) -> Result<()> {
    const OP: &str = "conv backward_input";
    check_geometry(OP, g)?;
    check_len(OP, g, "dy", dy.len(), g.y_len())?;
    check_len(OP, g, "w", w.len(), g.w_len())?;
    check_len(OP, g, "dx", dx.len(), g.x_len())?;
    for phase in 0..g.stride.min(g.t_in) {
        let tap0 = (phase + g.pad) % g.stride;
        // a phase may receive no tap at all (a strided 1x1 conv): its frames are written as zeros
        let taps = if g.kt > tap0 {
            (g.kt - tap0).div_ceil(g.stride)
        } else {
            0
        };
        let packed = if taps > 0 {
            Some(pack_phase(dev, g, w, tap0, taps)?)
        } else {
            None
        };
        let view = GemmView {
            n: g.n,
            rows: g.c_in,
            channels: g.c_out,
            taps,
            src_t: g.t_out(),
            v: g.v,
            col_t: (g.t_in - phase).div_ceil(g.stride),
            col_stride: 1,
            src_off: ((phase + g.pad) / g.stride) as isize - taps as isize + 1,
            dst_t: g.t_in,
            dst_stride: g.stride,
            dst_off: phase,
        };
        launch_gemm(
            dev,
            math,
            OP,
            &view,
            packed.as_ref().unwrap_or(w),
            dy,
            None,
            dx.reborrow(),
            GemmOutputs {
                residual: add.map(|(grad, _)| grad),
                residual_mask: add.and_then(|(_, relu_output)| relu_output),
                ..GemmOutputs::default()
            },
        )?;
    }
    Ok(())
}

/// (splits, chunk): the reduction of `length` split into `splits` chunks of `chunk` (a multiple of
/// the tile step `step`, the last one shorter) for a launch of `tiles` output tiles whose partials
/// have `part_len` elements a split.
fn split_reduction(length: usize, tiles: usize, part_len: usize, step: usize) -> (usize, usize) {
    let wanted = WGRAD_TARGET_BLOCKS.div_ceil(tiles);
    let most = length.div_ceil(WGRAD_MIN_CHUNK);
    let fits = INDEX_LIMIT / part_len;
    let splits = wanted.min(most).min(fits).max(1);
    let chunk = length.div_ceil(splits).next_multiple_of(step);
    (length.div_ceil(chunk), chunk)
}

/// `out[e] += Σ_z parts[z·len + e]` over the `splits` partials, in split order.
fn sum_splits(dev: &CudaDevice, parts: &CudaSlice<f32>, splits: usize, out: &mut CudaSlice<f32>) -> Result<()> {
    let (splits, len) = (int(splits), int(out.len()));
    let f = dev.function(MODULE, "conv_sum_splits_f32")?;
    dev.launch(&f, "conv_sum_splits_f32", flat_launch(out.len()), |l| {
        l.arg(parts).arg(&splits).arg(&len).arg(out);
    })
}

/// See `Backend::conv_t_backward_weight`: `dw += ∂L/∂w`, `db += Σ dy`.
pub fn backward_weight(
    dev: &CudaDevice,
    math: ConvMath,
    g: &ConvGeom,
    x: Act<'_>,
    dy: Act<'_>,
    dw: &mut CudaSlice<f32>,
    db: Option<&mut CudaSlice<f32>>,
) -> Result<()> {
    const OP: &str = "conv backward_weight";
    let storage = one_storage(OP, [x.storage(), dy.storage()])?;
    check_geometry(OP, g)?;
    check_len(OP, g, "x", x.len(), g.x_len())?;
    check_len(OP, g, "dy", dy.len(), g.y_len())?;
    check_len(OP, g, "dw", dw.len(), g.w_len())?;
    if let Some(db) = db.as_deref() {
        check_len(OP, g, "db", db.len(), g.c_out)?;
    }
    let t_out = g.t_out();
    let red = g.c_in * g.kt;
    let length = g.n * t_out * g.v;
    let tile = tile_for(g.c_out);
    let kernels = tile.kernels(math, storage)?;
    let (col_tiles, row_tiles) = (red.div_ceil(tile.cols), g.c_out.div_ceil(tile.rows));
    let (splits, chunk) = split_reduction(length, col_tiles * row_tiles, g.w_len(), kernels.step);
    let cfg = LaunchConfig {
        grid_dim: grid(OP, col_tiles, row_tiles, splits)?,
        block_dim: (tile.threads, 1, 1),
        shared_mem_bytes: 0,
    };
    let mut dw_parts = workspace(dev, splits * g.w_len(), "the weight-gradient partials")?;
    let mut db_parts = match db {
        Some(_) => Some(workspace(dev, splits * g.c_out, "the bias-gradient partials")?),
        None => None,
    };
    let p = ConvWgradRepr {
        c_out: int(g.c_out),
        c_in: int(g.c_in),
        kt: int(g.kt),
        t_in: int(g.t_in),
        v: int(g.v),
        t_out: int(t_out),
        stride: int(g.stride),
        pad: int(g.pad),
        red: int(red),
        length: int(length),
        chunk: int(chunk),
        div_frames: FastDiv::new((t_out * g.v) as u32),
        div_v: FastDiv::new(g.v as u32),
        div_kt: FastDiv::new(g.kt as u32),
    };
    let f = dev.function(kernels.module, kernels.wgrad)?;
    let null = 0u64;
    dev.launch(&f, kernels.wgrad, cfg, |l| {
        x.push(l);
        dy.push(l);
        l.arg(&mut dw_parts);
        match db_parts.as_mut() {
            Some(parts) => l.arg(parts),
            None => l.arg(&null),
        };
        l.arg(&p);
    })?;
    sum_splits(dev, &dw_parts, splits, dw)?;
    if let (Some(parts), Some(db)) = (db_parts.as_ref(), db) {
        sum_splits(dev, parts, splits, db)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_cover_the_reduction_in_whole_steps() {
        for ((length, tiles, part_len), step) in [
            (640_000, 5, 36_864),
            (160_000, 36, 589_824),
            (1, 1, 1),
            (9_250, 1, 1_728),
            (7, 3, 10),
        ]
        .into_iter()
        .flat_map(|case| [(case, BK_F32), (case, BK_TENSOR_CORE)])
        {
            let (splits, chunk) = split_reduction(length, tiles, part_len, step);
            assert_eq!(chunk % step, 0);
            assert!(
                splits >= 1 && (splits - 1) * chunk < length && splits * chunk >= length,
                "{length} {tiles}"
            );
            assert!(splits * part_len <= INDEX_LIMIT);
            assert!(splits <= WGRAD_TARGET_BLOCKS.div_ceil(tiles).max(1));
        }
    }

    #[test]
    fn every_tile_names_kernels_of_its_module() {
        for tile in &TILES {
            for (_, math, storage) in crate::backend::select::device_precisions() {
                let k = tile.kernels(math, storage).expect("a supported arithmetic");
                let Some(ptx) = crate::backend::cuda::kernels::module_ptx(k.module) else {
                    println!("skipped: no module {} in this build (built without nvcc)", k.module);
                    return;
                };
                for name in [k.gemm, k.wgrad] {
                    assert!(
                        ptx.contains(&format!(".entry {name}(")),
                        "{name} is not in {}",
                        k.module
                    );
                }
            }
        }
    }

    #[test]
    fn tiles_follow_the_row_count() {
        assert_eq!(tile_for(3).rows, 32);
        assert_eq!(tile_for(32).rows, 32);
        assert_eq!(tile_for(33).rows, 64);
        assert_eq!(tile_for(64).rows, 64);
        assert_eq!(tile_for(65).rows, 128);
        assert_eq!(tile_for(768).rows, 128);
    }
}
