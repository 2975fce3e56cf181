// 2:4 semi-structured sparsity on the sparse tensor cores: 2:4 pruning of a conv weight, its
// packing into bf16 values + mma.sp metadata, and the forward (mma.sp m16n8k32, bf16 operands, f32
// accumulate) and input gradient of the kt x 1 conv as implicit GEMMs.
//
// The weight w: [c_out, c_in, kt] is a matrix of c_out rows and K = c_in*kt columns (i*kt + k),
// pruned along K: every group of 4 consecutive columns keeps at most 2. Packed layout (see
// src/backend/sparse.rs, `Packed24Weight`), rows padded to k_padded = K rounded up to 32:
//   values [c_out, k_padded/2] bf16: group g stores its two values at 2g, 2g+1;
//   meta   [c_out, k_padded/16] u16: bits 4j..4j+3 of word c describe group 4c+j: the positions
//          (0..3, ascending) of its two stored values, first | second << 2.
//
// Forward as a GEMM per block: Y[o, p] = sum_kk W[o, kk] * Xcol[kk, p], p = (n, t, j) over all
// output positions, Xcol[i*kt + k, p] = x[n, i, t*stride + k - pad, j] (0 outside the clip). A
// block computes 64 rows x 64 positions; each of its 4 warps 16 rows x 64 positions (8 mma tiles
// of m16n8). Per 32-column step the block gathers Xcol into shared memory as bf16 ([position][kk],
// rows padded to 40 so the fragment reads hit 32 distinct banks), and each warp takes its A
// fragment (compressed values) and metadata straight from global memory (small, cached).
//
// Fragment layouts (PTX ISA, "Matrix fragments for mma.m16n8k32 / mma.sp with sparse matrix A"),
// groupID g = lane >> 2, threadID_in_group tg = lane & 3:
//   A (16 x 16 compressed): reg0 = row g, compressed cols 2tg, 2tg+1; reg1 = row g+8, same cols;
//     reg2 = row g, cols 2tg+8, 2tg+9; reg3 = row g+8, cols 2tg+8, 2tg+9 (compressed col 2q, 2q+1 =
//     the two values of logical group q of the step's 8 groups); lower column in the low half.
//   metadata (selector 0): threads tg = 0, 1 of each quad; thread tg holds the words of chunk
//     (16-column group) tg of the step: row g in bits 0..15, row g+8 in bits 16..31.
//   B (32 x 8): reg j = rows 8j + 2tg, 8j + 2tg + 1 at column g (lower row in the low half).
//   C/D (16 x 8 f32): c0, c1 = row g, cols 2tg, 2tg+1; c2, c3 = row g+8, same cols.
// The metadata positions are ascending in every group, so the instruction is the
// `mma.sp::ordered_metadata` form the PTX ISA recommends for sm_80 and later.
//
// Input gradient: dx = W^T * dy reduces over c_out, and W^T is not 2:4 along c_out (the rows of W
// are 2:4, its columns need not be), so it runs as a dense bf16 implicit GEMM (mma m16n8k16) with
// the same bf16 weights, expanded and transposed at packing: Wt [c_in, k2_padded] bf16, column
// o*kt + k (K2 = c_out*kt rounded up to 32). dx[i, p] = sum_kk2 Wt[i, kk2] * Dcol[kk2, p],
// p = (n, s, j) over input positions, Dcol[o*kt + k, p] = dy[n, o, t, j] where
// s + pad - k = t*stride, 0 <= t < t_out (else 0): a gather, no atomics.

#include <stdint.h>

#include "sparse_conv_shape.cuh"

#define TILE_M 64
#define TILE_N 64
#define TILE_K 32
#define GEMM_THREADS 128
#define XS_STRIDE (TILE_K + 8)
// metadata of a row with no stored weights: every group "positions 0 and 1"
#define EMPTY_META 0x4444u

// f32 -> bf16 bits, round to nearest even (NaN kept quiet): bit-identical to the host's
// `half::bf16::from_f32`, which the CPU reference uses.
static __device__ __forceinline__ uint16_t f32_to_bf16_bits(float f) {
    const uint32_t x = __float_as_uint(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
    const uint32_t round_bit = 0x8000u;
    uint32_t r = x >> 16;
    if ((x & round_bit) != 0 && (x & (3 * round_bit - 1)) != 0) r += 1;
    return (uint16_t)r;
}

// ---- pruning and packing ------------------------------------------------------------------------

// mask [c_out, K] (0/1) = 2:4 pruning of w [c_out, K]: in each group of 4 columns (the last one
// padded when K % 4 != 0) keep the largest |w|, then the largest of the rest, scanning in ascending
// position and replacing only on a strictly larger value; groups of 1 or 2 real columns keep all.
// The same comparisons as the CPU backend's. One thread per group, grid-stride.
extern "C" __global__ void prune_2_4_mask_f32(const float* __restrict__ w, float* __restrict__ mask, int c_out, int k_len) {
    const int groups = (k_len + 3) / 4;
    const long long total = (long long)c_out * groups;
    for (long long gi = (long long)blockIdx.x * blockDim.x + threadIdx.x; gi < total; gi += (long long)gridDim.x * blockDim.x) {
        const int o = (int)(gi / groups), g = (int)(gi - (long long)o * groups);
        const long long at = (long long)o * k_len + 4 * g;
        const int real = min(4, k_len - 4 * g);
        float a[4];
#pragma unroll
        for (int e = 0; e < 4; ++e) a[e] = e < real ? fabsf(w[at + e]) : 0.0f;
        int first = 0, second = 1;
        if (real > 2) {
            float best = a[0];
#pragma unroll
            for (int e = 1; e < 4; ++e)
                if (e < real && a[e] > best) {
                    best = a[e];
                    first = e;
                }
            second = first == 0 ? 1 : 0;
            float best2 = first == 0 ? a[1] : a[0];
#pragma unroll
            for (int e = 0; e < 4; ++e)
                if (e < real && e != first && a[e] > best2) {
                    best2 = a[e];
                    second = e;
                }
        }
#pragma unroll
        for (int e = 0; e < 4; ++e)
            if (e < real) mask[at + e] = (real <= 2 || e == first || e == second) ? 1.0f : 0.0f;
    }
}

// Packs the weights mask keeps (non-zero) into values/meta (layout above), rounded to bf16. A group
// keeping more than 2 of 4 writes min(first_bad, o*(k_padded/4) + g) (first_bad starts at
// 0xffffffff), which the host reports. One thread per (row, 16-column chunk), grid-stride.
extern "C" __global__ void pack_2_4_bf16(const float* __restrict__ w, const float* __restrict__ mask, int c_out,
                                         int k_len, int k_padded, uint16_t* __restrict__ values,
                                         uint16_t* __restrict__ meta, uint32_t* __restrict__ first_bad) {
    const int chunks = k_padded / 16;
    const long long total = (long long)c_out * chunks;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += (long long)gridDim.x * blockDim.x) {
        const int o = (int)(idx / chunks), ch = (int)(idx - (long long)o * chunks);
        const long long row = (long long)o * k_len;
        uint32_t word = 0;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int g = 4 * ch + j;
            int count = 0, kept0 = 0, kept1 = 0;
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int c = 4 * g + e;
                if (c < k_len && mask[row + c] != 0.0f) {
                    if (count == 0) kept0 = e;
                    if (count == 1) kept1 = e;
                    ++count;
                }
            }
            if (count > 2) atomicMin(first_bad, (uint32_t)o * (uint32_t)(k_padded / 4) + (uint32_t)g);
            // two distinct ascending positions: the kept ones, completed by unused ones
            const int first = count >= 2 ? kept0 : 0;
            const int second = count >= 2 ? kept1 : (count == 1 && kept0 != 0 ? kept0 : 1);
            const bool first_kept = count >= 1 && kept0 == first;
            const bool second_kept = (count >= 2) || (count == 1 && kept0 == second);
            const long long v = (long long)o * (k_padded / 2) + 2 * g;
            values[v] = first_kept ? f32_to_bf16_bits(w[row + 4 * g + first]) : 0;
            values[v + 1] = second_kept ? f32_to_bf16_bits(w[row + 4 * g + second]) : 0;
            word |= (uint32_t)(first | second << 2) << (4 * j);
        }
        meta[idx] = (uint16_t)word;
    }
}

// wt [c_in, k2_padded] bf16 = the kept weights transposed, column o*kt + k (zeros elsewhere and in
// the padding). One thread per element, grid-stride.
extern "C" __global__ void expand_2_4_transposed_bf16(const float* __restrict__ w, const float* __restrict__ mask,
                                                      int c_out, int c_in, int kt, int k2_padded,
                                                      uint16_t* __restrict__ wt) {
    const long long total = (long long)c_in * k2_padded;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += (long long)gridDim.x * blockDim.x) {
        const int i = (int)(idx / k2_padded), kk = (int)(idx - (long long)i * k2_padded);
        uint16_t v = 0;
        if (kk < c_out * kt) {
            const int o = kk / kt, k = kk - o * kt;
            const long long e = ((long long)o * c_in + i) * kt + k;
            if (mask[e] != 0.0f) v = f32_to_bf16_bits(w[e]);
        }
        wt[idx] = v;
    }
}

// ---- implicit GEMM on the tensor cores ----------------------------------------------------------

// Column kk = i*kt + k of output position p = (n, t, j): x[n, i, t*stride + k - pad, j].
struct ForwardGather {
    const float* x;
    ConvShape s;
    int columns;      // K = c_in*kt
    long long base;   // n*c_in*t_in*v + j
    int frame0;       // t*stride - pad
    bool valid;
    __device__ ForwardGather(const float* x_, const ConvShape& s_, long long p) : x(x_), s(s_) {
        const long long tv = (long long)s.t_out * s.v;
        columns = s.c_in * s.kt;
        valid = p < (long long)s.n * tv;
        const int n = valid ? (int)(p / tv) : 0;
        const int r = valid ? (int)(p - n * tv) : 0;
        const int t = r / s.v;
        base = (long long)n * s.c_in * s.t_in * s.v + (r - t * s.v);
        frame0 = t * s.stride - s.pad;
    }
    __device__ float operator()(int kk) const {
        if (!valid || kk >= columns) return 0.0f;
        const int i = kk / s.kt, frame = frame0 + (kk - i * s.kt);
        return frame >= 0 && frame < s.t_in ? x[base + ((long long)i * s.t_in + frame) * s.v] : 0.0f;
    }
};

// Column kk = o*kt + k of input position p = (n, s, j): dy[n, o, t, j] with s + pad - k = t*stride.
struct InputGradGather {
    const float* dy;
    ConvShape s;
    int columns;      // K2 = c_out*kt
    long long base;   // n*c_out*t_out*v + j
    int shifted0;     // s + pad
    bool valid;
    __device__ InputGradGather(const float* dy_, const ConvShape& s_, long long p) : dy(dy_), s(s_) {
        const long long tv = (long long)s.t_in * s.v;
        columns = s.c_out * s.kt;
        valid = p < (long long)s.n * tv;
        const int n = valid ? (int)(p / tv) : 0;
        const int r = valid ? (int)(p - n * tv) : 0;
        const int frame = r / s.v;
        base = (long long)n * s.c_out * s.t_out * s.v + (r - frame * s.v);
        shifted0 = frame + s.pad;
    }
    __device__ float operator()(int kk) const {
        if (!valid || kk >= columns) return 0.0f;
        const int o = kk / s.kt, shifted = shifted0 - (kk - o * s.kt);
        if (shifted < 0 || shifted % s.stride != 0) return 0.0f;
        const int t = shifted / s.stride;
        return t < s.t_out ? dy[base + ((long long)o * s.t_out + t) * s.v] : 0.0f;
    }
};

// xs[p][kk] = bf16(column k0 + kk of the block's position p): thread (p = tid % 64) loads rows
// tid/64, tid/64 + 2, ... (consecutive threads read consecutive positions: coalesced).
template <typename Gather>
static __device__ __forceinline__ void load_columns(uint16_t (*xs)[XS_STRIDE], const Gather& gather, int k0) {
    const int p = threadIdx.x & (TILE_N - 1);
#pragma unroll
    for (int kk = threadIdx.x / TILE_N; kk < TILE_K; kk += GEMM_THREADS / TILE_N) xs[p][kk] = f32_to_bf16_bits(gather(k0 + kk));
}

// Two consecutive bf16 of the block's column tile as one register (lower column in the low half).
static __device__ __forceinline__ uint32_t column_pair(const uint16_t (*xs)[XS_STRIDE], int p, int kk) {
    return *reinterpret_cast<const uint32_t*>(&xs[p][kk]);
}

// Two consecutive bf16 of row `row` of a [rows, stride] bf16 matrix, or 0 for a row past the end.
static __device__ __forceinline__ uint32_t row_pair(const uint16_t* m, int row, int rows, int stride, int col) {
    return row < rows ? *reinterpret_cast<const uint32_t*>(m + (long long)row * stride + col) : 0u;
}

static __device__ __forceinline__ void mma_sp_m16n8k32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[4], uint32_t e) {
    asm volatile(
        "mma.sp::ordered_metadata.sync.aligned.m16n8k32.row.col.f32.bf16.bf16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9,%10,%11}, {%0,%1,%2,%3}, %12, 0x0;\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(b[2]), "r"(b[3]), "r"(e));
}

static __device__ __forceinline__ void mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Writes a warp's 16 x 64 accumulator tile: out[(n*rows + row)*tv + r] (+ bias[row] when given)
// for position p = n*tv + r < positions.
static __device__ __forceinline__ void store_tile(const float (&acc)[8][4], float* __restrict__ out,
                                                  const float* __restrict__ bias, int row_lo, int rows,
                                                  long long p0, long long positions, int tv) {
    const int tg = threadIdx.x & 3;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int row = row_lo + 8 * h;
        if (row >= rows) continue;
        const float b = bias ? bias[row] : 0.0f;
#pragma unroll
        for (int nt = 0; nt < 8; ++nt)
#pragma unroll
            for (int c = 0; c < 2; ++c) {
                const long long p = p0 + nt * 8 + 2 * tg + c;
                if (p >= positions) continue;
                const long long n = p / tv;
                out[(n * rows + row) * tv + (p - n * tv)] = acc[nt][2 * h + c] + b;
            }
    }
}

// y [n, c_out, t_out, v] = W (packed 2:4) * Xcol + bias (bias may be null).
// grid: (ceil(n*t_out*v / 64), ceil(c_out / 64)), 128 threads.
extern "C" __global__ void conv_2_4_forward_bf16(const float* __restrict__ x, const uint16_t* __restrict__ values,
                                                 const uint16_t* __restrict__ meta, const float* __restrict__ bias,
                                                 float* __restrict__ y, ConvShape s, int k_padded) {
    __shared__ __align__(16) uint16_t xs[TILE_N][XS_STRIDE];
    const int tv = s.t_out * s.v;
    const long long positions = (long long)s.n * tv;
    const long long p0 = (long long)blockIdx.x * TILE_N;
    const int lane = threadIdx.x & 31, g = lane >> 2, tg = lane & 3;
    const int row_lo = blockIdx.y * TILE_M + 16 * (threadIdx.x >> 5) + g, row_hi = row_lo + 8;
    const ForwardGather gather(x, s, p0 + (threadIdx.x & (TILE_N - 1)));
    const int value_stride = k_padded / 2, meta_stride = k_padded / 16;
    float acc[8][4] = {};
    for (int k0 = 0; k0 < k_padded; k0 += TILE_K) {
        load_columns(xs, gather, k0);
        __syncthreads();
        const int c = k0 / 2 + 2 * tg;
        const uint32_t a[4] = {row_pair(values, row_lo, s.c_out, value_stride, c),
                               row_pair(values, row_hi, s.c_out, value_stride, c),
                               row_pair(values, row_lo, s.c_out, value_stride, c + 8),
                               row_pair(values, row_hi, s.c_out, value_stride, c + 8)};
        const int chunk = k0 / 16 + (tg & 1);
        const uint32_t e_lo = row_lo < s.c_out ? meta[(long long)row_lo * meta_stride + chunk] : EMPTY_META;
        const uint32_t e_hi = row_hi < s.c_out ? meta[(long long)row_hi * meta_stride + chunk] : EMPTY_META;
        const uint32_t e = e_lo | e_hi << 16;
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) {
            const int p = nt * 8 + g;
            const uint32_t b[4] = {column_pair(xs, p, 2 * tg), column_pair(xs, p, 8 + 2 * tg),
                                   column_pair(xs, p, 16 + 2 * tg), column_pair(xs, p, 24 + 2 * tg)};
            mma_sp_m16n8k32(acc[nt], a, b, e);
        }
        __syncthreads();
    }
    store_tile(acc, y, bias, row_lo, s.c_out, p0, positions, tv);
}

// dx [n, c_in, t_in, v] (overwritten) = Wt * Dcol, Wt [c_in, k2_padded] bf16 from the packing.
// grid: (ceil(n*t_in*v / 64), ceil(c_in / 64)), 128 threads.
extern "C" __global__ void conv_2_4_backward_input_bf16(const float* __restrict__ dy, const uint16_t* __restrict__ wt,
                                                        float* __restrict__ dx, ConvShape s, int k2_padded) {
    __shared__ __align__(16) uint16_t xs[TILE_N][XS_STRIDE];
    const int tv = s.t_in * s.v;
    const long long positions = (long long)s.n * tv;
    const long long p0 = (long long)blockIdx.x * TILE_N;
    const int lane = threadIdx.x & 31, g = lane >> 2, tg = lane & 3;
    const int row_lo = blockIdx.y * TILE_M + 16 * (threadIdx.x >> 5) + g, row_hi = row_lo + 8;
    const InputGradGather gather(dy, s, p0 + (threadIdx.x & (TILE_N - 1)));
    float acc[8][4] = {};
    for (int k0 = 0; k0 < k2_padded; k0 += TILE_K) {
        load_columns(xs, gather, k0);
        __syncthreads();
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int c = k0 + 16 * half + 2 * tg;
            const uint32_t a[4] = {row_pair(wt, row_lo, s.c_in, k2_padded, c), row_pair(wt, row_hi, s.c_in, k2_padded, c),
                                   row_pair(wt, row_lo, s.c_in, k2_padded, c + 8),
                                   row_pair(wt, row_hi, s.c_in, k2_padded, c + 8)};
#pragma unroll
            for (int nt = 0; nt < 8; ++nt) {
                const int p = nt * 8 + g;
                mma_m16n8k16(acc[nt], a, column_pair(xs, p, 16 * half + 2 * tg), column_pair(xs, p, 16 * half + 8 + 2 * tg));
            }
        }
        __syncthreads();
    }
    store_tile(acc, dx, nullptr, row_lo, s.c_in, p0, positions, tv);
}
