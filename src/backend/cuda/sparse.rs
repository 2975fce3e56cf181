//! Launchers of the sparse conv kernels: CSR for unstructured masks (`cuda/sparse_conv.cu`) and
//! 2:4 on the sparse tensor cores (`cuda/sparse_2_4.cu`), with the device forms of the compressed
//! weights. Layouts are those of `backend::sparse`.

use cudarc::driver::{CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg, ValidAsZeroBits};

use super::buffer::GpuBuf;
use super::buffer::{memory, memory_mut};
use super::device::{driver_err, CudaDevice};
use super::elementwise::flat_launch;
use super::launch::optional_arg;
use crate::backend::sparse::{not_2_4_error, padded_columns, Csr, CsrWeight, Packed24Weight};
use crate::backend::ConvGeom;
use crate::{Error, Result};

const CSR: &str = "sparse_conv";
const SEMI: &str = "sparse_2_4";
/// Threads of the CSR conv kernels, output positions per thread, rows per block (sparse_conv.cu).
const CSR_THREADS: u32 = 256;
const CSR_POSITIONS: u64 = 2;
const CSR_ROWS: u32 = 4;
/// Tile of the tensor-core kernels (sparse_2_4.cu): 64 rows x 64 positions, 128 threads.
const TILE: u64 = 64;
const GEMM_THREADS: u32 = 128;

/// `struct ConvShape` of sparse_conv_shape.cuh.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct ConvShapeRepr {
    n: i32,
    c_in: i32,
    c_out: i32,
    t_in: i32,
    t_out: i32,
    v: i32,
    kt: i32,
    pad: i32,
    stride: i32,
}
// SAFETY: plain old data with the layout of the kernel's struct.
unsafe impl DeviceRepr for ConvShapeRepr {}

/// `struct CsrView` of sparse_conv.cu: row `r`, column `(a, k)` at `w[r·row_stride + a·other_stride + k]`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct CsrViewRepr {
    rows: i32,
    others: i32,
    kt: i32,
    row_stride: i64,
    other_stride: i64,
}
// SAFETY: as above (C pads after `kt` to align the i64s, as repr(C) does).
unsafe impl DeviceRepr for CsrViewRepr {}

fn i32_of(what: &str, v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| Error::Cuda(format!("sparse conv: {what} = {v} exceeds the kernels' 32-bit indices")))
}

/// The geometry for the kernels, after checking it and that per-sample sizes fit their indices.
/// The kernel shape of a forward after checking its buffers against `g`: x `[n, c_in, t_in, v]`,
/// b `[c_out]`, y `[n, c_out, t_out, v]`.
fn forward_shape(
    g: &ConvGeom,
    x: &CudaSlice<f32>,
    b: Option<&CudaSlice<f32>>,
    y: &CudaSlice<f32>,
) -> Result<ConvShapeRepr> {
    let s = shape(g)?;
    check_len("x", x.len(), g.x_len())?;
    check_len("y", y.len(), g.y_len())?;
    if let Some(b) = b {
        check_len("bias", b.len(), g.c_out)?;
    }
    Ok(s)
}

/// The kernel shape of an input gradient after checking its buffers: dy `[n, c_out, t_out, v]`,
/// dx `[n, c_in, t_in, v]`.
fn backward_input_shape(g: &ConvGeom, dy: &CudaSlice<f32>, dx: &CudaSlice<f32>) -> Result<ConvShapeRepr> {
    let s = shape(g)?;
    check_len("dy", dy.len(), g.y_len())?;
    check_len("dx", dx.len(), g.x_len())?;
    Ok(s)
}

fn shape(g: &ConvGeom) -> Result<ConvShapeRepr> {
    if g.stride == 0 || g.t_in + 2 * g.pad < g.kt {
        return Err(Error::Cuda(format!("sparse conv: invalid geometry {g:?}")));
    }
    i32_of("c_in·t_in·v", g.c_in * g.t_in * g.v)?;
    i32_of("c_out·t_out·v", g.c_out * g.t_out() * g.v)?;
    i32_of("c_out·c_in·kt", g.w_len())?;
    Ok(ConvShapeRepr {
        n: i32_of("n", g.n)?,
        c_in: i32_of("c_in", g.c_in)?,
        c_out: i32_of("c_out", g.c_out)?,
        t_in: i32_of("t_in", g.t_in)?,
        t_out: i32_of("t_out", g.t_out())?,
        v: i32_of("v", g.v)?,
        kt: i32_of("kt", g.kt)?,
        pad: i32_of("pad", g.pad)?,
        stride: i32_of("stride", g.stride)?,
    })
}

fn check_len(what: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Error::Cuda(format!(
            "sparse conv: {what} has {got} elements, expected {want}"
        )))
    }
}

fn alloc<T: DeviceRepr + ValidAsZeroBits>(dev: &CudaDevice, len: usize) -> Result<GpuBuf<T>> {
    let slice = dev
        .stream
        .alloc_zeros::<T>(len)
        .map_err(|e| driver_err("allocating a sparse weight", e))?;
    Ok(GpuBuf::new(slice, len, &dev.capture))
}

/// One CSR matrix in device memory; `col`, `src` and `values` hold `max(nnz, 1)` elements (the
/// driver allocates nothing empty).
pub struct GpuCsr {
    row_ptr: GpuBuf<u32>,
    col: GpuBuf<u32>,
    src: GpuBuf<u32>,
    values: GpuBuf<f32>,
}

/// [`CsrWeight`] in device memory.
pub struct GpuCsrWeight {
    c_out: usize,
    c_in: usize,
    kt: usize,
    nnz: usize,
    by_output: GpuCsr,
    by_input: GpuCsr,
}

impl GpuCsrWeight {
    /// Stands in for a conversion that failed (the failure is recorded): any op on it fails.
    pub(super) fn unusable(c_out: usize, c_in: usize, kt: usize) -> Self {
        let empty = || GpuCsr {
            row_ptr: GpuBuf::unallocated(0),
            col: GpuBuf::unallocated(0),
            src: GpuBuf::unallocated(0),
            values: GpuBuf::unallocated(0),
        };
        Self {
            c_out,
            c_in,
            kt,
            nnz: 0,
            by_output: empty(),
            by_input: empty(),
        }
    }

    pub(super) fn nnz(&self) -> usize {
        self.nnz
    }

    fn check(&self, g: &ConvGeom) -> Result<()> {
        if (self.c_out, self.c_in, self.kt) == (g.c_out, g.c_in, g.kt) {
            Ok(())
        } else {
            Err(Error::Cuda(format!(
                "sparse conv: weight [{}, {}, {}] for {g:?}",
                self.c_out, self.c_in, self.kt
            )))
        }
    }
}

/// Rows of warps: one warp per row, 8 rows per block of 256 threads.
fn warp_per_row(rows: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (rows.div_ceil(8).max(1) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Row counts and their exclusive scan for one view: `row_ptr` `[rows + 1]`.
fn row_pointers(dev: &CudaDevice, mask: &CudaSlice<f32>, view: &CsrViewRepr) -> Result<GpuBuf<u32>> {
    let rows = view.rows as usize;
    let mut counts = alloc::<u32>(dev, rows.max(1))?;
    let mut row_ptr = alloc::<u32>(dev, rows + 1)?;
    let f = dev.function(CSR, "csr_count_rows")?;
    let counts_out = memory_mut(&mut counts)?;
    dev.launch(&f, "csr_count_rows", warp_per_row(rows), |b| {
        b.arg(mask).arg(view).arg(counts_out);
    })?;
    let one_block = LaunchConfig {
        grid_dim: (1, 1, 1),
        block_dim: (1024, 1, 1),
        shared_mem_bytes: 0,
    };
    let (counts_in, row_ptr_out) = (memory(&counts)?, memory_mut(&mut row_ptr)?);
    let f = dev.function(CSR, "csr_exclusive_scan")?;
    dev.launch(&f, "csr_exclusive_scan", one_block, |b| {
        b.arg(counts_in).arg(&view.rows).arg(row_ptr_out);
    })?;
    Ok(row_ptr)
}

/// The entries of one view, scattered at its row pointers.
fn scatter(
    dev: &CudaDevice,
    w: &CudaSlice<f32>,
    mask: &CudaSlice<f32>,
    view: &CsrViewRepr,
    row_ptr: GpuBuf<u32>,
    nnz: usize,
) -> Result<GpuCsr> {
    let mut csr = GpuCsr {
        row_ptr,
        col: alloc(dev, nnz.max(1))?,
        src: alloc(dev, nnz.max(1))?,
        values: alloc(dev, nnz.max(1))?,
    };
    let row_ptr = memory(&csr.row_ptr)?;
    let (col, src, values) = (
        memory_mut(&mut csr.col)?,
        memory_mut(&mut csr.src)?,
        memory_mut(&mut csr.values)?,
    );
    let f = dev.function(CSR, "csr_scatter")?;
    dev.launch(&f, "csr_scatter", warp_per_row(view.rows as usize), |b| {
        b.arg(w).arg(mask).arg(view).arg(row_ptr).arg(col).arg(src).arg(values);
    })?;
    Ok(csr)
}

/// See `Backend::sparse_weight`: both CSR forms of `w` (`[c_out, c_in, kt]`) where `mask` ≠ 0. The
/// entry count is read back once (after the scan) to size the entry arrays.
pub fn csr_from_mask(
    dev: &CudaDevice,
    w: &CudaSlice<f32>,
    mask: &CudaSlice<f32>,
    c_out: usize,
    c_in: usize,
    kt: usize,
) -> Result<GpuCsrWeight> {
    let len = c_out * c_in * kt;
    check_len("w", w.len(), len)?;
    check_len("mask", mask.len(), len)?;
    let k_len = i64::from(i32_of("c_in·kt", c_in * kt)?);
    let kt_i64 = i64::from(i32_of("kt", kt)?);
    let by_output = CsrViewRepr {
        rows: i32_of("c_out", c_out)?,
        others: i32_of("c_in", c_in)?,
        kt: kt as i32,
        row_stride: k_len,
        other_stride: kt_i64,
    };
    let by_input = CsrViewRepr {
        rows: c_in as i32,
        others: c_out as i32,
        kt: kt as i32,
        row_stride: kt_i64,
        other_stride: k_len,
    };
    let out_ptr = row_pointers(dev, mask, &by_output)?;
    let in_ptr = row_pointers(dev, mask, &by_input)?;
    let mut total = [0u32; 1];
    dev.stream
        .memcpy_dtoh(&memory(&out_ptr)?.slice(c_out..c_out + 1), &mut total)
        .map_err(|e| driver_err("reading the kept entry count", e))?;
    dev.stream
        .synchronize()
        .map_err(|e| driver_err("reading the kept entry count", e))?;
    let nnz = total[0] as usize;
    Ok(GpuCsrWeight {
        c_out,
        c_in,
        kt,
        nnz,
        by_output: scatter(dev, w, mask, &by_output, out_ptr, nnz)?,
        by_input: scatter(dev, w, mask, &by_input, in_ptr, nnz)?,
    })
}

/// See `Backend::sparse_weight_update`: `values[e] = w[src[e]]` in both forms.
pub fn csr_update_values(dev: &CudaDevice, sw: &mut GpuCsrWeight, w: &CudaSlice<f32>) -> Result<()> {
    check_len("w", w.len(), sw.c_out * sw.c_in * sw.kt)?;
    if sw.nnz == 0 {
        return Ok(());
    }
    let nnz = sw.nnz as u32;
    let f = dev.function(CSR, "csr_gather_values")?;
    for csr in [&mut sw.by_output, &mut sw.by_input] {
        let src = memory(&csr.src)?;
        let values = memory_mut(&mut csr.values)?;
        dev.launch(&f, "csr_gather_values", flat_launch(nnz as usize), |b| {
            b.arg(w).arg(src).arg(values).arg(&nnz);
        })?;
    }
    Ok(())
}

fn download<T: DeviceRepr + Default + Clone>(dev: &CudaDevice, buf: &GpuBuf<T>, len: usize) -> Result<Vec<T>> {
    let mut host = vec![T::default(); len];
    if len > 0 {
        dev.stream
            .memcpy_dtoh(&memory(buf)?.slice(..len), &mut host)
            .map_err(|e| driver_err("copying a sparse weight to the host", e))?;
    }
    Ok(host)
}

/// See `Backend::sparse_weight_host`.
pub fn csr_download(dev: &CudaDevice, sw: &GpuCsrWeight) -> Result<CsrWeight<f32>> {
    let host = |csr: &GpuCsr, rows: usize| -> Result<Csr<f32>> {
        Ok(Csr {
            row_ptr: download(dev, &csr.row_ptr, rows + 1)?,
            col: download(dev, &csr.col, sw.nnz)?,
            src: download(dev, &csr.src, sw.nnz)?,
            values: download(dev, &csr.values, sw.nnz)?,
        })
    };
    let out = CsrWeight {
        c_out: sw.c_out,
        c_in: sw.c_in,
        kt: sw.kt,
        by_output: host(&sw.by_output, sw.c_out)?,
        by_input: host(&sw.by_input, sw.c_in)?,
    };
    dev.stream
        .synchronize()
        .map_err(|e| driver_err("copying a sparse weight to the host", e))?;
    Ok(out)
}

/// A 2-D grid of `threads`-thread blocks: `positions` outputs across, `per_x` per block, and
/// `rows` down, `per_y` per block.
fn tiled_launch(positions: usize, per_x: u64, rows: usize, per_y: u64, threads: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (
            (positions as u64).div_ceil(per_x).max(1) as u32,
            (rows as u64).div_ceil(per_y).max(1) as u32,
            1,
        ),
        block_dim: (threads, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Grid of the CSR conv kernels over `positions` outputs and `rows` rows.
fn csr_launch(positions: usize, rows: usize) -> LaunchConfig {
    tiled_launch(
        positions,
        u64::from(CSR_THREADS) * CSR_POSITIONS,
        rows,
        u64::from(CSR_ROWS),
        CSR_THREADS,
    )
}

/// See `Backend::conv_t_forward_sparse`. x: `[n, c_in, t_in, v]`, b: `[c_out]`, y: `[n, c_out, t_out, v]`.
pub fn csr_forward(
    dev: &CudaDevice,
    g: &ConvGeom,
    x: &CudaSlice<f32>,
    sw: &GpuCsrWeight,
    b: Option<&CudaSlice<f32>>,
    y: &mut CudaSlice<f32>,
) -> Result<()> {
    let s = forward_shape(g, x, b, y)?;
    sw.check(g)?;
    let csr = &sw.by_output;
    let (row_ptr, col, values) = (memory(&csr.row_ptr)?, memory(&csr.col)?, memory(&csr.values)?);
    let f = dev.function(CSR, "csr_conv_forward_f32")?;
    dev.launch(
        &f,
        "csr_conv_forward_f32",
        csr_launch(g.n * g.t_out() * g.v, g.c_out),
        |l| {
            l.arg(x).arg(row_ptr).arg(col).arg(values);
            optional_arg(l, b);
            l.arg(y).arg(&s);
        },
    )
}

/// See `Backend::conv_t_backward_input_sparse`. dy: `[n, c_out, t_out, v]`, dx: `[n, c_in, t_in, v]`.
pub fn csr_backward_input(
    dev: &CudaDevice,
    g: &ConvGeom,
    dy: &CudaSlice<f32>,
    sw: &GpuCsrWeight,
    dx: &mut CudaSlice<f32>,
) -> Result<()> {
    let s = backward_input_shape(g, dy, dx)?;
    sw.check(g)?;
    let csr = &sw.by_input;
    let (row_ptr, col, values) = (memory(&csr.row_ptr)?, memory(&csr.col)?, memory(&csr.values)?);
    let f = dev.function(CSR, "csr_conv_backward_input_f32")?;
    dev.launch(
        &f,
        "csr_conv_backward_input_f32",
        csr_launch(g.n * g.t_in * g.v, g.c_in),
        |l| {
            l.arg(dy).arg(row_ptr).arg(col).arg(values).arg(dx).arg(&s);
        },
    )
}

/// See `Backend::prune_2_4`: mask `[c_out, c_in·kt]` (overwritten) from w.
pub fn prune_2_4(
    dev: &CudaDevice,
    w: &CudaSlice<f32>,
    c_out: usize,
    c_in: usize,
    kt: usize,
    mask: &mut CudaSlice<f32>,
) -> Result<()> {
    check_len("w", w.len(), c_out * c_in * kt)?;
    check_len("mask", mask.len(), w.len())?;
    let (rows, k_len) = (i32_of("c_out", c_out)?, i32_of("c_in·kt", c_in * kt)?);
    let f = dev.function(SEMI, "prune_2_4_mask_f32")?;
    dev.launch(
        &f,
        "prune_2_4_mask_f32",
        flat_launch(c_out * (c_in * kt).div_ceil(4)),
        |b| {
            b.arg(w).arg(mask).arg(&rows).arg(&k_len);
        },
    )
}

/// [`Packed24Weight`] in device memory, with the transposed dense bf16 copy the input gradient
/// multiplies with: `wt` `[c_in, k2_padded]`, column `o·kt + k`, `k2_padded` = `c_out·kt` rounded
/// up to 32.
pub struct GpuPacked24Weight {
    c_out: usize,
    c_in: usize,
    kt: usize,
    k_padded: usize,
    k2_padded: usize,
    values: GpuBuf<u16>,
    meta: GpuBuf<u16>,
    wt: GpuBuf<u16>,
}

impl GpuPacked24Weight {
    fn check(&self, g: &ConvGeom) -> Result<()> {
        if (self.c_out, self.c_in, self.kt) == (g.c_out, g.c_in, g.kt) {
            Ok(())
        } else {
            Err(Error::Cuda(format!(
                "2:4 conv: weight [{}, {}, {}] for {g:?}",
                self.c_out, self.c_in, self.kt
            )))
        }
    }
}

/// See `Backend::pack_2_4`: packs, expands the transpose, and reads back whether some group kept
/// more than 2 of 4 (the first such group in row-major order is reported, as on the CPU).
pub fn pack_2_4(
    dev: &CudaDevice,
    w: &CudaSlice<f32>,
    mask: &CudaSlice<f32>,
    c_out: usize,
    c_in: usize,
    kt: usize,
) -> Result<GpuPacked24Weight> {
    check_len("w", w.len(), c_out * c_in * kt)?;
    check_len("mask", mask.len(), w.len())?;
    let k_padded = padded_columns(c_in, kt);
    let k2_padded = padded_columns(c_out, kt);
    let mut p = GpuPacked24Weight {
        c_out,
        c_in,
        kt,
        k_padded,
        k2_padded,
        values: alloc(dev, (c_out * k_padded / 2).max(1))?,
        meta: alloc(dev, (c_out * k_padded / 16).max(1))?,
        wt: alloc(dev, (c_in * k2_padded).max(1))?,
    };
    let mut first_bad = dev
        .stream
        .clone_htod(&[u32::MAX])
        .map_err(|e| driver_err("uploading the 2:4 check flag", e))?;
    let (rows, inputs, taps) = (i32_of("c_out", c_out)?, i32_of("c_in", c_in)?, i32_of("kt", kt)?);
    let (k_len, k_pad, k2_pad) = (
        i32_of("c_in·kt", c_in * kt)?,
        i32_of("padded c_in·kt", k_padded)?,
        i32_of("padded c_out·kt", k2_padded)?,
    );
    let f = dev.function(SEMI, "pack_2_4_bf16")?;
    let (values, meta) = (memory_mut(&mut p.values)?, memory_mut(&mut p.meta)?);
    dev.launch(&f, "pack_2_4_bf16", flat_launch(c_out * k_padded / 16), |b| {
        b.arg(w)
            .arg(mask)
            .arg(&rows)
            .arg(&k_len)
            .arg(&k_pad)
            .arg(values)
            .arg(meta)
            .arg(&mut first_bad);
    })?;
    let f = dev.function(SEMI, "expand_2_4_transposed_bf16")?;
    let wt = memory_mut(&mut p.wt)?;
    dev.launch(&f, "expand_2_4_transposed_bf16", flat_launch(c_in * k2_padded), |b| {
        b.arg(w)
            .arg(mask)
            .arg(&rows)
            .arg(&inputs)
            .arg(&taps)
            .arg(&k2_pad)
            .arg(wt);
    })?;
    let mut bad = [0u32; 1];
    dev.stream
        .memcpy_dtoh(&first_bad, &mut bad)
        .map_err(|e| driver_err("reading the 2:4 check flag", e))?;
    dev.stream
        .synchronize()
        .map_err(|e| driver_err("reading the 2:4 check flag", e))?;
    if bad[0] != u32::MAX {
        let groups = k_padded / 4;
        return Err(not_2_4_error(bad[0] as usize / groups, bad[0] as usize % groups));
    }
    Ok(p)
}

/// See `Backend::semi_sparse_weight_host`.
pub fn packed_download(dev: &CudaDevice, p: &GpuPacked24Weight) -> Result<Packed24Weight> {
    let out = Packed24Weight {
        c_out: p.c_out,
        c_in: p.c_in,
        kt: p.kt,
        k_padded: p.k_padded,
        values: download(dev, &p.values, p.c_out * p.k_padded / 2)?,
        meta: download(dev, &p.meta, p.c_out * p.k_padded / 16)?,
    };
    dev.stream
        .synchronize()
        .map_err(|e| driver_err("copying a 2:4 weight to the host", e))?;
    Ok(out)
}

/// Grid of the tensor-core kernels over `positions` and `rows`.
fn gemm_launch(positions: usize, rows: usize) -> LaunchConfig {
    tiled_launch(positions, TILE, rows, TILE, GEMM_THREADS)
}

/// See `Backend::conv_t_forward_2_4`. x: `[n, c_in, t_in, v]`, b: `[c_out]`, y: `[n, c_out, t_out, v]`.
pub fn forward_2_4(
    dev: &CudaDevice,
    g: &ConvGeom,
    x: &CudaSlice<f32>,
    p: &GpuPacked24Weight,
    b: Option<&CudaSlice<f32>>,
    y: &mut CudaSlice<f32>,
) -> Result<()> {
    let s = forward_shape(g, x, b, y)?;
    p.check(g)?;
    let (values, meta) = (memory(&p.values)?, memory(&p.meta)?);
    let k_padded = i32_of("padded c_in·kt", p.k_padded)?;
    let f = dev.function(SEMI, "conv_2_4_forward_bf16")?;
    dev.launch(
        &f,
        "conv_2_4_forward_bf16",
        gemm_launch(g.n * g.t_out() * g.v, g.c_out),
        |l| {
            l.arg(x).arg(values).arg(meta);
            optional_arg(l, b);
            l.arg(y).arg(&s).arg(&k_padded);
        },
    )
}

/// See `Backend::conv_t_backward_input_2_4`. dy: `[n, c_out, t_out, v]`, dx: `[n, c_in, t_in, v]`.
pub fn backward_input_2_4(
    dev: &CudaDevice,
    g: &ConvGeom,
    dy: &CudaSlice<f32>,
    p: &GpuPacked24Weight,
    dx: &mut CudaSlice<f32>,
) -> Result<()> {
    let s = backward_input_shape(g, dy, dx)?;
    p.check(g)?;
    let wt = memory(&p.wt)?;
    let k2_padded = i32_of("padded c_out·kt", p.k2_padded)?;
    let f = dev.function(SEMI, "conv_2_4_backward_input_bf16")?;
    dev.launch(
        &f,
        "conv_2_4_backward_input_bf16",
        gemm_launch(g.n * g.t_in * g.v, g.c_in),
        |l| {
            l.arg(dy).arg(wt).arg(dx).arg(&s).arg(&k2_padded);
        },
    )
}
