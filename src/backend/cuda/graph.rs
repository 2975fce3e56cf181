//! Launchers of the graph-aggregation kernels (`cuda/graph_aggregate.cu`), over activations in
//! their storage (the adjacency and its gradient f32).

use cudarc::driver::{CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg};

use super::batch_norm::{self, PartialMoments};
use super::buffer::{one_storage, Act, ActEpilogue, ActMut};
use super::device::CudaDevice;
use super::elementwise::flat_launch;
use super::launch::{expect_len, optional_act, optional_arg, optional_arg_mut, size_u32, workspace, THREADS};
use crate::backend::{BnEval, GraphGeom};
use crate::{act_kernel, Error, Result};

const MODULE: &str = "graph_aggregate";
/// Rows per thread in the forward and dz kernels (`ROWS` of the kernel file).
const ROWS_PER_THREAD: usize = 4;
/// Joints per accumulator unit and units per thread of the da kernel (`DA_UNIT`, `DA_UNITS`).
const DA_UNIT: usize = 4;
const DA_UNITS: usize = 3;
/// Blocks of the da reduction at most: a fixed partition (it depends on the geometry only, never
/// on the device), so da has the same bits on every run and every GPU.
const DA_BLOCKS: usize = 512;
/// Blocks of the forward and dz kernels at most (each output is one thread's, so the grid does not
/// change a result; fewer blocks load A fewer times).
const MAX_BLOCKS: usize = 2048;
/// Dynamic shared memory a kernel may use without opting in: 48 KiB less room for the kernels'
/// static shared memory (the forward's reduction scratch, 272 bytes).
const SHARED_LIMIT: usize = 48 * 1024 - 512;

/// `struct GraphShape` of graph_aggregate.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct GraphShapeRepr {
    rows_per_sample: u32,
    total_rows: u32,
    k: u32,
    v: u32,
    tile_rows: u32,
    tile_step: u32,
    t: u32,
}
// SAFETY: plain old data with the layout of the kernel's struct.
unsafe impl DeviceRepr for GraphShapeRepr {}

/// A checked launch shape: the kernel struct, the tiles it walks and its shared-memory bytes.
struct Plan {
    shape: GraphShapeRepr,
    tiles: usize,
    shared_bytes: u32,
}

/// Plans a launch of `op`: `shared_floats(tile_rows)` is the kernel's dynamic shared memory. Tiles
/// take about one row group per thread (`ROWS_PER_THREAD·⌊THREADS/V⌋` rows), fewer if that would
/// not fit in shared memory.
fn plan(op: &str, g: &GraphGeom, shared_floats: impl Fn(usize) -> usize) -> Result<Plan> {
    let mut tile_rows = ROWS_PER_THREAD * (THREADS as usize / g.v).max(1);
    while shared_floats(tile_rows) * 4 > SHARED_LIMIT && tile_rows > ROWS_PER_THREAD {
        tile_rows -= ROWS_PER_THREAD;
    }
    let shared_bytes = shared_floats(tile_rows) * 4;
    if shared_bytes > SHARED_LIMIT {
        return Err(Error::Cuda(format!(
            "{op}: {g:?} needs {shared_bytes} bytes of shared memory (A and {tile_rows} rows), more than {SHARED_LIMIT}"
        )));
    }
    plan_tiles(op, g, tile_rows, tile_rows, shared_bytes)
}

/// Plans the forward with tiles of one (n, c) each (`t` rows), as gathering the batch statistics
/// per (n, c) needs, or `None` when such a tile does not fit in shared memory.
fn segment_plan(op: &str, g: &GraphGeom, shared_floats: impl Fn(usize) -> usize) -> Result<Option<Plan>> {
    let tile_rows = g.t.next_multiple_of(ROWS_PER_THREAD);
    let shared_bytes = shared_floats(tile_rows) * 4;
    if shared_bytes > SHARED_LIMIT {
        return Ok(None);
    }
    plan_tiles(op, g, tile_rows, g.t, shared_bytes).map(Some)
}

fn plan_tiles(op: &str, g: &GraphGeom, tile_rows: usize, tile_step: usize, shared_bytes: usize) -> Result<Plan> {
    let limit = i32::MAX as u32;
    for (what, value) in [("n", g.n), ("k", g.k), ("c", g.c), ("t", g.t), ("v", g.v)] {
        size_u32(op, what, value, limit)?;
    }
    let rows_per_sample = size_u32(op, "c·t", g.c * g.t, limit)?;
    let total_rows = size_u32(op, "n·c·t", g.n * g.c * g.t, limit)?;
    Ok(Plan {
        shape: GraphShapeRepr {
            rows_per_sample,
            total_rows,
            k: g.k as u32,
            v: g.v as u32,
            tile_rows: tile_rows as u32,
            tile_step: tile_step as u32,
            t: g.t as u32,
        },
        tiles: (total_rows as usize).div_ceil(tile_step),
        shared_bytes: shared_bytes as u32,
    })
}

fn tiled_launch(blocks: usize, slabs: usize, shared_bytes: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (blocks as u32, slabs as u32, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: shared_bytes,
    }
}

/// The forward's dynamic shared memory in floats for tiles of `rows` rows: A and the z tile.
fn forward_shared_floats(g: &GraphGeom, rows: usize) -> usize {
    g.a_len() + g.k * rows * g.v
}

fn check_forward(op: &str, g: &GraphGeom, z: Act<'_>, a: &CudaSlice<f32>, y: &ActMut<'_>) -> Result<()> {
    expect_len(op, "z", z.len(), g.z_len())?;
    expect_len(op, "a", a.len(), g.a_len())?;
    expect_len(op, "y", y.len(), g.y_len())
}

/// What the forward does with its outputs besides storing them (nothing by default).
#[derive(Default)]
struct ForwardOutputs<'a> {
    /// Gathers their batch statistics per (n, c) (the plan must have tiles of one (n, c)).
    moments: Option<&'a mut PartialMoments>,
    /// Applies an evaluation-mode batch norm (its `[c, 2]` double coefficients) and its epilogue
    /// before storing them.
    bn_eval: Option<(&'a CudaSlice<f64>, ActEpilogue<'a>)>,
}

fn launch_forward(
    dev: &CudaDevice,
    p: &Plan,
    z: Act<'_>,
    a: &CudaSlice<f32>,
    y: ActMut<'_>,
    outputs: ForwardOutputs<'_>,
) -> Result<()> {
    const OP: &str = "graph forward";
    let (coef, epilogue) = match outputs.bn_eval {
        Some((coef, epilogue)) => (Some(coef), epilogue),
        None => (None, ActEpilogue::none()),
    };
    if let Some(r) = epilogue.residual {
        expect_len(OP, "residual", r.len(), y.len())?;
    }
    let residual = epilogue.residual.map(|r| r.storage());
    let storage = one_storage(OP, [z.storage(), y.storage()].into_iter().chain(residual))?;
    let name = act_kernel!(storage, "graph_aggregate_forward_f32");
    let relu = u32::from(epilogue.relu);
    let f = dev.function(MODULE, name)?;
    let cfg = tiled_launch(p.tiles.min(MAX_BLOCKS), 1, p.shared_bytes);
    dev.launch(&f, name, cfg, |b| {
        z.push(b);
        b.arg(a);
        y.push(b);
        optional_arg_mut(b, outputs.moments.map(PartialMoments::slice_mut));
        optional_arg(b, coef);
        optional_act(b, epilogue.residual);
        b.arg(&relu).arg(&p.shape);
    })
}

/// See `Backend::graph_forward`. z: `[n, k, c, t, v]`, a: `[k, v, w]`, y: `[n, c, t, w]`.
pub fn forward(dev: &CudaDevice, g: &GraphGeom, z: Act<'_>, a: &CudaSlice<f32>, y: ActMut<'_>) -> Result<()> {
    const OP: &str = "graph forward";
    let p = plan(OP, g, |rows| forward_shared_floats(g, rows))?;
    check_forward(OP, g, z, a, &y)?;
    launch_forward(dev, &p, z, a, y, ForwardOutputs::default())
}

/// See `Backend::graph_forward_bn_eval`: the forward with the batch norm's coefficients applied in
/// its epilogue (then the residual add and the ReLU), y the batch norm's output.
pub fn forward_bn_eval(
    dev: &CudaDevice,
    g: &GraphGeom,
    z: Act<'_>,
    a: &CudaSlice<f32>,
    bn: BnEval<'_, CudaSlice<f32>>,
    epilogue: ActEpilogue<'_>,
    y: ActMut<'_>,
) -> Result<()> {
    const OP: &str = "graph forward + batch_norm eval";
    let p = plan(OP, g, |rows| forward_shared_floats(g, rows))?;
    check_forward(OP, g, z, a, &y)?;
    let coef = batch_norm::eval_coefficients(dev, OP, g.c, bn)?;
    let outputs = ForwardOutputs {
        moments: None,
        bn_eval: Some((&coef, epilogue)),
    };
    launch_forward(dev, &p, z, a, y, outputs)
}

/// See `Backend::graph_forward_with_stats`: the forward with the batch statistics of y gathered
/// per (n, c), or, when a tile of one (n, c) does not fit in shared memory, the plain forward and
/// `None` (the batch norm then makes its own pass).
pub fn forward_with_stats(
    dev: &CudaDevice,
    g: &GraphGeom,
    z: Act<'_>,
    a: &CudaSlice<f32>,
    y: ActMut<'_>,
) -> Result<Option<PartialMoments>> {
    const OP: &str = "graph forward";
    let Some(p) = segment_plan(OP, g, |rows| forward_shared_floats(g, rows))? else {
        forward(dev, g, z, a, y)?;
        return Ok(None);
    };
    check_forward(OP, g, z, a, &y)?;
    // SAFETY: the block of tile (n, c) writes part n of channel c: all n·c parts.
    let mut moments = unsafe { PartialMoments::new(dev, g.c, g.n, g.n * g.t * g.v) }?;
    let outputs = ForwardOutputs {
        moments: Some(&mut moments),
        bn_eval: None,
    };
    launch_forward(dev, &p, z, a, y, outputs)?;
    Ok(Some(moments))
}

/// See `Backend::graph_backward`: dz overwritten, `da +=`.
pub fn backward(
    dev: &CudaDevice,
    g: &GraphGeom,
    z: Act<'_>,
    a: &CudaSlice<f32>,
    dy: Act<'_>,
    dz: ActMut<'_>,
    da: &mut CudaSlice<f32>,
) -> Result<()> {
    const OP: &str = "graph backward";
    let storage = one_storage(OP, [z.storage(), dy.storage(), dz.storage()])?;
    let input = plan(OP, g, |rows| g.a_len() + (rows + ROWS_PER_THREAD - 1) * g.v)?;
    let adjacency = plan(OP, g, |rows| (g.k + 1) * rows * g.v + DA_UNIT - 1)?;
    expect_len(OP, "z", z.len(), g.z_len())?;
    expect_len(OP, "a", a.len(), g.a_len())?;
    expect_len(OP, "dy", dy.len(), g.y_len())?;
    expect_len(OP, "dz", dz.len(), g.z_len())?;
    expect_len(OP, "da", da.len(), g.a_len())?;

    let name = act_kernel!(storage, "graph_aggregate_backward_input_f32");
    let f = dev.function(MODULE, name)?;
    let cfg = tiled_launch(input.tiles.min(MAX_BLOCKS), 1, input.shared_bytes);
    dev.launch(&f, name, cfg, |b| {
        dy.push(b);
        b.arg(a);
        dz.push(b);
        b.arg(&input.shape);
    })?;

    // da: per-block partials [blocks, K·V·V], then their sum in block order
    let blocks = adjacency.tiles.min(DA_BLOCKS);
    let units = g.k * g.v.div_ceil(DA_UNIT) * g.v;
    let slabs = units.div_ceil(DA_UNITS * THREADS as usize);
    let len = g.a_len();
    // SAFETY: every block writes all K·V·V partials of its row before the sum reads them.
    let mut partials = unsafe { workspace::<f32>(dev, "graph da partials", blocks * len) }?;
    let name = act_kernel!(storage, "graph_aggregate_backward_adjacency_partial_f32");
    let f = dev.function(MODULE, name)?;
    let cfg = tiled_launch(blocks, slabs, adjacency.shared_bytes);
    dev.launch(&f, name, cfg, |b| {
        z.push(b);
        dy.push(b);
        b.arg(&mut partials).arg(&adjacency.shape);
    })?;
    let (blocks, len) = (blocks as u32, len as u32);
    let f = dev.function(MODULE, "graph_aggregate_add_partials_f32")?;
    dev.launch(&f, "graph_aggregate_add_partials_f32", flat_launch(len as usize), |b| {
        b.arg(&partials).arg(&blocks).arg(&len).arg(da);
    })
}
