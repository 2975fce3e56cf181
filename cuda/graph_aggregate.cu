// Graph aggregation over the joints and its backward:
//   forward   y[n,c,t,w]  = Σ_k Σ_v z[n,k,c,t,v]·a[k,v,w], optionally with the batch statistics of
//             y per (n, c) for the batch norm that follows (bn_moments.cuh)
//   backward  dz[n,k,c,t,v] = Σ_w dy[n,c,t,w]·a[k,v,w]            (overwritten)
//             da[k,v,w]    += Σ_{n,c,t} z[n,k,c,t,v]·dy[n,c,t,w]   (per-block partials, then a
//                                                                   fixed-order sum: no atomics)
// z: [n, K, c, t, V], a: [K, V, V], y and dy: [n, c, t, V]. a (and da, its partials, the moments
// and the batch norm's coefficients) are f32/double; z, y, dy, dz and the residual are activations,
// and the kernels that touch them come in f32 and bf16-activation forms, `<name>` and
// `<name>_bf16act` (activation.cuh). The tiles are staged in shared memory as f32 in both (converted
// by load_act as they are copied, so shared memory is sized the same), the sums are f32 as they are,
// and the bf16 form rounds what it stores (store_act); its moments are those of the rounded y.
//
// A "row" is one (n, c, t): V joints of y. With R = c·t rows per sample, global row g = n·R + r has
// y[g·V + w] and, for subset k, z[((n·K + k)·R + r)·V + v]. Blocks walk tiles of `tile_rows`
// consecutive rows (grid-stride over tiles) and stage the tile's z or dy rows in shared memory with
// coalesced copies; the forward and dz kernels also hold all of A in shared memory. A tile may
// cross a sample boundary, so z rows are copied in "pieces": maximal runs of rows of one sample,
// which are contiguous in z for each subset.
//
// The forward and dz kernels give each thread ROWS consecutive rows of one output joint, so a
// coefficient of A read from shared memory serves ROWS multiply-adds. Host-side contract:
// tile_rows is a positive multiple of ROWS; shared memory is sized as each kernel states.

#include <stdint.h>

#include "activation.cuh"
#include "output_epilogue.cuh"
#include "bn_moments.cuh"
#include "reduce.cuh"

#define ROWS 4          // rows per thread in the forward and dz kernels
#define DA_UNIT 4       // joints v per accumulator unit in the da kernel
#define DA_UNITS 3      // units per thread in the da kernel (12 accumulators)

// Shape of one launch. rows_per_sample = c·t; total_rows = n·c·t. Tiles have tile_rows rows, except
// in the forward, whose tile i starts at row i·tile_step and has up to tile_step <= tile_rows rows
// (tile_rows is then the capacity its staging is sized for).
struct GraphShape {
    uint32_t rows_per_sample;
    uint32_t total_rows;
    uint32_t k;  // adjacency subsets K
    uint32_t v;  // joints V
    uint32_t tile_rows;
    uint32_t tile_step;
    uint32_t t;  // rows per channel: the channel of row r of a sample is r / t
};

// Copies the z rows [row0, row0 + rows) of every subset into z_s: [K, tile_rows, V] (subset, row
// in tile, joint), as f32. Every thread of the block calls it; the loop bounds are block-uniform.
template <typename Act>
static __device__ void stage_z_rows(const Act* __restrict__ z, float* z_s, const GraphShape& g, uint32_t row0,
                                    uint32_t rows) {
    for (uint32_t row = 0; row < rows;) {
        const uint32_t global = row0 + row;
        const uint32_t n = global / g.rows_per_sample, r = global - n * g.rows_per_sample;
        const uint32_t span = min(rows - row, g.rows_per_sample - r);  // rows left in this sample
        for (uint32_t k = 0; k < g.k; ++k) {
            const Act* src = z + (((uint64_t)n * g.k + k) * g.rows_per_sample + r) * g.v;
            float* dst = z_s + ((uint64_t)k * g.tile_rows + row) * g.v;
            for (uint32_t e = threadIdx.x; e < span * g.v; e += blockDim.x) dst[e] = load_act(src, e);
        }
        row += span;
    }
}

// Copies rows [row0, row0 + rows) of a [total_rows, V] tensor (y-shaped: contiguous rows) into
// dst: [rows, V], as f32.
template <typename Act>
static __device__ void stage_y_rows(const Act* __restrict__ src, float* dst, const GraphShape& g, uint32_t row0,
                                    uint32_t rows) {
    const Act* from = src + (uint64_t)row0 * g.v;
    for (uint32_t e = threadIdx.x; e < rows * g.v; e += blockDim.x) dst[e] = load_act(from, e);
}

static __device__ __forceinline__ void copy_adjacency(const float* __restrict__ a, float* a_s, uint32_t len) {
    for (uint32_t i = threadIdx.x; i < len; i += blockDim.x) a_s[i] = a[i];
}

// Zeroes a block's staging area once, before its first tile: the groups of ROWS rows (and the
// da kernel's units of DA_UNIT joints) read past the staged rows of a partial tile and drop what
// they compute, and those reads must find defined values, not shared memory never written.
static __device__ __forceinline__ void zero_staging(float* s, uint32_t len) {
    for (uint32_t i = threadIdx.x; i < len; i += blockDim.x) s[i] = 0.0f;
}

// y = Σ_k z_k · a_k. Dynamic shared memory: K·V·V floats (A) + K·tile_rows·V floats (z tile).
// moments: null, or the batch statistics of y as [n, c, t·V] gathered per (n, c) (bn_moments.cuh):
// [c, n, 3], part n of channel ch = (count, mean, M2) over y[n, ch]. The host then makes each tile
// one (n, c): tile_step = t; the mean comes from the thread sums, M2 from a second pass over the
// tile's outputs, read back from global memory (written by this block, so the reads hit L1/L2).
// Both passes see the values as stored (bf16: rounded; stored_value, load_act).
// bn_coef, residual, relu: an evaluation-mode batch norm and its epilogue applied to the outputs
// before they are stored (output_epilogue.cuh; null, null, 0 for none; never with moments).
template <typename Act>
__device__ __forceinline__ void graph_aggregate_forward(const Act* __restrict__ z, const float* __restrict__ a,
                                                        Act* __restrict__ y, double* __restrict__ moments,
                                                        const double* __restrict__ bn_coef,
                                                        const Act* __restrict__ residual, uint32_t relu,
                                                        GraphShape g) {
    extern __shared__ float smem[];
    __shared__ double scratch[32];
    __shared__ double tile_mean;
    const uint32_t v = g.v, vv = g.v * g.v;
    float* a_s = smem;           // [K, V, V]
    float* z_s = smem + g.k * vv;  // [K, tile_rows, V]
    copy_adjacency(a, a_s, g.k * vv);
    zero_staging(z_s, g.k * g.tile_rows * v);
    const uint32_t tiles = (g.total_rows + g.tile_step - 1) / g.tile_step;
    for (uint32_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        const uint32_t row0 = tile * g.tile_step;
        const uint32_t rows = min(g.tile_step, g.total_rows - row0);
        __syncthreads();  // A is loaded, z_s zeroed; the previous tile's z_s is no longer read
        stage_z_rows(z, z_s, g, row0, rows);
        __syncthreads();
        // item = (group of ROWS rows, output joint w); rows past `rows` (at most ROWS - 1, inside
        // the tile since tile_rows is a multiple of ROWS) are computed from stale data and dropped
        const uint32_t groups = (rows + ROWS - 1) / ROWS;
        double sum = 0.0;
        for (uint32_t item = threadIdx.x; item < groups * v; item += blockDim.x) {
            const uint32_t group = item / v, w = item - group * v;
            const uint32_t row = group * ROWS;
            float acc[ROWS] = {};
            for (uint32_t k = 0; k < g.k; ++k) {
                const float* zr = z_s + (k * g.tile_rows + row) * v;  // rows row.. of subset k
                const float* ak = a_s + k * vv + w;                 // a[k][j][w] = ak[j·V]
                for (uint32_t j = 0; j < v; ++j) {
                    const float coef = ak[j * v];
#pragma unroll
                    for (int i = 0; i < ROWS; ++i) acc[i] = fmaf(zr[i * v + j], coef, acc[i]);
                }
            }
            const uint64_t out0 = ((uint64_t)row0 + row) * v + w;
#pragma unroll
            for (int i = 0; i < ROWS; ++i)
                if (row + i < rows) {
                    const uint64_t at = out0 + (uint64_t)i * v;
                    // the output's channel, for the batch norm's coefficients
                    const uint32_t ch = bn_coef != nullptr ? (row0 + row + i) % g.rows_per_sample / g.t : 0;
                    // the epilogue starts from the value as the aggregation alone would have
                    // stored it (bf16: rounded), as the separate ops it replaces do
                    store_act(y, at, output_epilogue(stored_value(y, acc[i]), bn_coef, ch, residual, nullptr, at, relu));
                    if (moments != nullptr) sum += (double)stored_value(y, acc[i]);  // no epilogue then
                }
        }
        if (moments == nullptr) continue;  // uniform over the block
        const double count = (double)rows * v;
        sum = block_sum(sum, scratch);  // its barriers also make this block's y writes visible to it
        if (threadIdx.x == 0) tile_mean = sum / count;
        __syncthreads();
        const double mean = tile_mean;
        double m2 = 0.0;
        const Act* out = y + (uint64_t)row0 * v;
        for (uint32_t e = threadIdx.x; e < rows * v; e += blockDim.x) {
            const double d = (double)load_act(out, e) - mean;
            m2 = fma(d, d, m2);
        }
        m2 = block_sum(m2, scratch);
        if (threadIdx.x == 0) {  // tile = n·c + ch
            const uint32_t channels = g.rows_per_sample / g.tile_step, samples = g.total_rows / g.rows_per_sample;
            const uint32_t n = tile / channels, ch = tile - n * channels;
            store_moments(moments + ((uint64_t)ch * samples + n) * 3, {count, mean, m2});
        }
    }
}

// dz_k = dy · a_kᵀ, overwritten. Dynamic shared memory: K·V·V floats (A) + (tile_rows + ROWS - 1)·V
// floats (dy tile; the extra rows keep the reads of a last partial group inside the allocation).
template <typename Act>
__device__ __forceinline__ void graph_aggregate_backward_input(const Act* __restrict__ dy,
                                                               const float* __restrict__ a, Act* __restrict__ dz,
                                                               GraphShape g) {
    extern __shared__ float smem[];
    const uint32_t v = g.v, vv = g.v * g.v;
    float* a_s = smem;            // [K, V, V]
    float* dy_s = smem + g.k * vv;  // [tile_rows + ROWS - 1, V]
    copy_adjacency(a, a_s, g.k * vv);
    zero_staging(dy_s, (g.tile_rows + ROWS - 1) * v);
    const uint32_t tiles = (g.total_rows + g.tile_rows - 1) / g.tile_rows;
    for (uint32_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        const uint32_t row0 = tile * g.tile_rows;
        const uint32_t rows = min(g.tile_rows, g.total_rows - row0);
        __syncthreads();
        stage_y_rows(dy, dy_s, g, row0, rows);
        __syncthreads();
        // one piece = the tile's rows of one sample, contiguous in dz for each subset
        for (uint32_t row = 0; row < rows;) {
            const uint32_t global = row0 + row;
            const uint32_t n = global / g.rows_per_sample, r = global - n * g.rows_per_sample;
            const uint32_t span = min(rows - row, g.rows_per_sample - r);
            const uint32_t groups = (span + ROWS - 1) / ROWS;
            for (uint32_t k = 0; k < g.k; ++k) {
                Act* dst = dz + (((uint64_t)n * g.k + k) * g.rows_per_sample + r) * v;
                // item = (group of ROWS rows of the piece, input joint j)
                for (uint32_t item = threadIdx.x; item < groups * v; item += blockDim.x) {
                    const uint32_t group = item / v, j = item - group * v;
                    const uint32_t first = group * ROWS;              // row within the piece
                    const float* dr = dy_s + (row + first) * v;      // dy rows of the group
                    const float* ar = a_s + k * vv + j * v;          // a[k][j][w] = ar[w]
                    float acc[ROWS] = {};
                    for (uint32_t w = 0; w < v; ++w) {
                        const float coef = ar[w];
#pragma unroll
                        for (int i = 0; i < ROWS; ++i) acc[i] = fmaf(dr[i * v + w], coef, acc[i]);
                    }
#pragma unroll
                    for (int i = 0; i < ROWS; ++i)
                        if (first + i < span) store_act(dst, ((uint64_t)first + i) * v + j, acc[i]);
                }
            }
            row += span;
        }
    }
}

// The q-th accumulator unit of this thread: units of a slab (blockIdx.y) are dealt out so that
// consecutive threads take consecutive units (consecutive output joints w).
static __device__ __forceinline__ uint32_t da_unit_index(int q) {
    return (blockIdx.y * DA_UNITS + q) * blockDim.x + threadIdx.x;
}

// unit = (k·blocks_v + vb)·V + w covers the outputs da[k][j0 + i][w], j0 = vb·DA_UNIT, i < DA_UNIT.
static __device__ __forceinline__ void da_unit_coords(uint32_t unit, uint32_t v, uint32_t blocks_v, uint32_t& k,
                                                      uint32_t& j0, uint32_t& w) {
    w = unit % v;
    const uint32_t kb = unit / v;
    j0 = (kb % blocks_v) * DA_UNIT;
    k = kb / blocks_v;
}

// Per-block partials of Σ_rows z[.,k,.,v]·dy[.,w] into partials: [gridDim.x, K·V·V], every element
// written. Block (x, y) takes tiles x, x + gridDim.x, ... in order and the y-th slab of
// accumulator units; a unit is DA_UNIT consecutive joints v of one (k, w), so one dy value serves
// DA_UNIT multiply-adds. Dynamic shared memory: (K + 1)·tile_rows·V floats + DA_UNIT - 1 (z tile,
// dy tile, and slack for the reads of a last partial unit past the end of the z tile).
template <typename Act>
__device__ __forceinline__ void graph_aggregate_backward_adjacency_partial(const Act* __restrict__ z,
                                                                           const Act* __restrict__ dy,
                                                                           float* __restrict__ partials,
                                                                           GraphShape g) {
    extern __shared__ float smem[];
    const uint32_t v = g.v, vv = g.v * g.v;
    float* z_s = smem;                             // [K, tile_rows, V]
    float* dy_s = smem + g.k * g.tile_rows * v;    // [tile_rows, V]
    zero_staging(smem, (g.k + 1) * g.tile_rows * v + DA_UNIT - 1);
    const uint32_t blocks_v = (v + DA_UNIT - 1) / DA_UNIT;
    const uint32_t units = g.k * blocks_v * v;
    // this thread's units: the offsets of their z and dy columns in the tiles
    uint32_t z_col[DA_UNITS], dy_col[DA_UNITS];
#pragma unroll
    for (int q = 0; q < DA_UNITS; ++q) {
        const uint32_t unit = da_unit_index(q);
        uint32_t k = 0, j0 = 0, w = 0;  // dead units read column 0 and are never written
        if (unit < units) da_unit_coords(unit, v, blocks_v, k, j0, w);
        z_col[q] = k * g.tile_rows * v + j0;
        dy_col[q] = w;
    }
    float acc[DA_UNITS][DA_UNIT] = {};
    const uint32_t tiles = (g.total_rows + g.tile_rows - 1) / g.tile_rows;
    for (uint32_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        const uint32_t row0 = tile * g.tile_rows;
        const uint32_t rows = min(g.tile_rows, g.total_rows - row0);
        __syncthreads();
        stage_z_rows(z, z_s, g, row0, rows);
        stage_y_rows(dy, dy_s, g, row0, rows);
        __syncthreads();
        for (uint32_t row = 0; row < rows; ++row) {
#pragma unroll
            for (int q = 0; q < DA_UNITS; ++q) {
                const float d = dy_s[row * v + dy_col[q]];
                const float* zr = z_s + z_col[q] + row * v;
#pragma unroll
                for (int i = 0; i < DA_UNIT; ++i) acc[q][i] = fmaf(zr[i], d, acc[q][i]);
            }
        }
    }
    float* out = partials + (uint64_t)blockIdx.x * g.k * vv;
#pragma unroll
    for (int q = 0; q < DA_UNITS; ++q) {
        const uint32_t unit = da_unit_index(q);
        if (unit >= units) continue;
        uint32_t k, j0, w;
        da_unit_coords(unit, v, blocks_v, k, j0, w);
#pragma unroll
        for (int i = 0; i < DA_UNIT; ++i)
            if (j0 + i < v) out[k * vv + (j0 + i) * v + w] = acc[q][i];
    }
}

// The entry points of the kernels on activations above, with activations of type Act, named
// <name>SUFFIX.
#define GRAPH_AGGREGATE_ACT_KERNELS(SUFFIX, Act)                                                                   \
    extern "C" __global__ void graph_aggregate_forward_f32##SUFFIX(                                               \
        const Act* __restrict__ z, const float* __restrict__ a, Act* __restrict__ y, double* __restrict__ moments, \
        const double* __restrict__ bn_coef, const Act* __restrict__ residual, uint32_t relu, GraphShape g) {      \
        graph_aggregate_forward(z, a, y, moments, bn_coef, residual, relu, g);                                    \
    }                                                                                                             \
    extern "C" __global__ void graph_aggregate_backward_input_f32##SUFFIX(                                        \
        const Act* __restrict__ dy, const float* __restrict__ a, Act* __restrict__ dz, GraphShape g) {            \
        graph_aggregate_backward_input(dy, a, dz, g);                                                             \
    }                                                                                                             \
    extern "C" __global__ void graph_aggregate_backward_adjacency_partial_f32##SUFFIX(                            \
        const Act* __restrict__ z, const Act* __restrict__ dy, float* __restrict__ partials, GraphShape g) {      \
        graph_aggregate_backward_adjacency_partial(z, dy, partials, g);                                           \
    }

GRAPH_AGGREGATE_ACT_KERNELS(, float)
GRAPH_AGGREGATE_ACT_KERNELS(_bf16act, __nv_bfloat16)

// da[i] += Σ_b partials[b·len + i] for b = 0, 1, ..., blocks - 1 in that order, in double.
extern "C" __global__ void graph_aggregate_add_partials_f32(const float* __restrict__ partials, uint32_t blocks,
                                                            uint32_t len, float* __restrict__ da) {
    for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < len; i += gridDim.x * blockDim.x) {
        double sum = 0.0;
        for (uint32_t b = 0; b < blocks; ++b) sum += (double)partials[(uint64_t)b * len + i];
        da[i] = __fadd_rn(da[i], (float)sum);
    }
}
