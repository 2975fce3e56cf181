// Convolution over time with a kt x 1 kernel (the 9x1 temporal conv, the 1x1 conv, the linear head)
// as implicit GEMM on the CUDA cores in f32: forward, input gradient, weight and bias gradient.
//
//   x: [n, c_in, t_in, v], w: [c_out, c_in, kt], b: [c_out], y: [n, c_out, t_out, v]
//   y[s,o,t,j] = b[o] + Σ_i Σ_k w[o,i,k] · x[s, i, t·stride + k − pad, j]   (x = 0 outside [0, t_in))
//
// One tiled GEMM core serves all three: a block computes a BM x BN tile of C = A·B with a BK-deep
// step, each thread a TM x 8 micro-tile in registers; both operand tiles go through shared memory,
// double-buffered (the next step's global loads are in flight in registers while the current step
// is multiplied; one __syncthreads per step). The im2col addressing is done in the tile loads, with
// zeros for every element outside the clip or beyond the matrix edges, so any size is valid.
//
//   forward       y[o, (s,t,j)]  = Σ_(i,k) w[o,(i,k)] · x̃[(i,k), (s,t,j)]          conv_gemm
//   input grad    dx[i, (s,u,j)] = Σ_(o,m) w_φ[i,(o,m)] · dy[s, o, u + off + m, j]   conv_gemm, per phase
//   weight grad   dw[o, (i,k)]  += Σ_(s,t,j) dy[o,(s,t,j)] · x̃[(i,k), (s,t,j)]        conv_wgrad + split sum
//   with the column matrix x̃[(i,k), (s,t,j)] = x[s, i, t·stride + k − pad, j], never materialised.
//
// The forward can also write the batch statistics of its output (gather_row_moments): each block
// reduces its tile's rows while they are still in registers, so the batch norm that reads the
// output next skips its statistics pass (one read of the activation less).
//
// The input gradient of a strided conv is split by output phase φ' < stride: dx frame φ' + stride·u
// receives only the taps k ≡ φ' + pad (mod stride), so each phase is a dense GEMM with about
// kt/stride taps (no multiplications by zero) over weights repacked per phase (conv_pack_phase).
// The weight gradient reduces over n·t_out·v (up to ~640K): split-K over fixed chunks of that axis
// into a workspace of partial tiles, then conv_sum_splits adds them up in split order. No atomics:
// every result is bit-for-bit repeatable. All indices are 32-bit; the launchers check the sizes.

#include "output_epilogue.cuh"
#include "bn_moments.cuh"
#include "conv_tiles.cuh"

constexpr int BK = 8;   // reduction depth of one tile step
constexpr int PAD = 4;  // shared-memory row padding (floats): transposed tile stores hit 32
                        // distinct banks, and every row stays 16-byte aligned for float4 reads

// A block tile of BM x BN outputs, TM x 8 per thread. Thread (ty, tx) owns rows ty·TM + [0, TM) and
// the columns tx·4 + [0, 4) and BN/2 + tx·4 + [0, 4): two float4 groups half a tile apart, so that
// the 8 threads of a quarter warp read 32 consecutive floats of a B row (no bank conflicts).
template <int BM_, int BN_, int TM_>
struct Tile {
    static constexpr int BM = BM_, BN = BN_, TM = TM_, TN = 8;
    static constexpr int THREADS = (BM / TM) * (BN / TN);
    static constexpr int A_LOADS = BM * BK / THREADS;  // operand elements each thread loads per step
    static constexpr int B_LOADS = BN * BK / THREADS;
    static_assert(TM % 4 == 0 && BM % TM == 0 && BN % TN == 0, "micro-tile shape");
    static_assert(THREADS % BN == 0 && THREADS % BK == 0 && (BM * BK) % THREADS == 0, "load mapping");
    static_assert(BM % 32 == 0 && BN % 32 == 0, "bank-conflict-free padding needs multiples of 32");
};

// Both operand tiles, two buffers each, stored k-major: a[buf][kk][row], b[buf][kk][col].
template <class T>
struct Smem {
    float a[2][BK][T::BM + PAD];
    float b[2][BK][T::BN + PAD];
};

// acc[TM][8] += a[kk][rows of the thread] ⊗ b[kk][columns of the thread], kk in [0, BK).
template <class T>
__device__ __forceinline__ void multiply_tile(const float (*a)[T::BM + PAD], const float (*b)[T::BN + PAD], int ty,
                                              int tx, float (&acc)[T::TM][T::TN]) {
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
        float ra[T::TM], rb[T::TN];
#pragma unroll
        for (int i = 0; i < T::TM; i += 4) {
            const float4 q = *reinterpret_cast<const float4*>(&a[kk][ty * T::TM + i]);
            ra[i] = q.x, ra[i + 1] = q.y, ra[i + 2] = q.z, ra[i + 3] = q.w;
        }
        const float4 lo = *reinterpret_cast<const float4*>(&b[kk][tx * 4]);
        const float4 hi = *reinterpret_cast<const float4*>(&b[kk][T::BN / 2 + tx * 4]);
        rb[0] = lo.x, rb[1] = lo.y, rb[2] = lo.z, rb[3] = lo.w;
        rb[4] = hi.x, rb[5] = hi.y, rb[6] = hi.z, rb[7] = hi.w;
#pragma unroll
        for (int i = 0; i < T::TM; ++i)
#pragma unroll
            for (int j = 0; j < T::TN; ++j) acc[i][j] = fmaf(ra[i], rb[j], acc[i][j]);
    }
}

// The tile column (0..BN) of micro-tile column j (0..8) of thread column tx.
template <class T>
__device__ __forceinline__ int tile_column(int tx, int j) {
    return (j / 4) * (T::BN / 2) + tx * 4 + j % 4;
}

// The main loop over reduction steps [k_begin, k_end) in steps of BK. Loaders provide fetch(k0)
// (global → registers, zeros outside) and stash(tile) (registers → shared memory).
template <class T, class LoadA, class LoadB>
__device__ __forceinline__ void accumulate(LoadA& la, LoadB& lb, int k_begin, int k_end, Smem<T>& sm, int ty, int tx,
                                           float (&acc)[T::TM][T::TN]) {
    if (k_begin >= k_end) return;  // uniform over the block
    la.fetch(k_begin);
    lb.fetch(k_begin);
    la.stash(sm.a[0]);
    lb.stash(sm.b[0]);
    __syncthreads();
    int buf = 0;
    for (int k0 = k_begin; k0 < k_end; k0 += BK) {
        const bool more = k0 + BK < k_end;
        if (more) {
            la.fetch(k0 + BK);
            lb.fetch(k0 + BK);
        }
        multiply_tile<T>(sm.a[buf], sm.b[buf], ty, tx, acc);
        // buf ^ 1 was last read in the previous step, which ended with a barrier
        if (more) {
            la.stash(sm.a[buf ^ 1]);
            lb.stash(sm.b[buf ^ 1]);
        }
        __syncthreads();
        buf ^= 1;
    }
}

// ---- forward and input gradient: conv_gemm ------------------------------------------------------

// ConvGemm and the im2col addressing: conv_tiles.cuh.

// A: a [rows, k] row-major matrix, loaded along k (8 consecutive floats per row) and stored transposed.
template <class T>
struct RowMajorA {
    const float* __restrict__ a;
    int rows, k, m0, kk, r0;
    float reg[T::A_LOADS];

    __device__ RowMajorA(const float* __restrict__ a_, int rows_, int k_, int m0_)
        : a(a_), rows(rows_), k(k_), m0(m0_), kk(threadIdx.x % BK), r0(threadIdx.x / BK) {}

    __device__ __forceinline__ void fetch(int k0) {
        const int col = k0 + kk;
#pragma unroll
        for (int i = 0; i < T::A_LOADS; ++i) {
            const int row = m0 + r0 + i * (T::THREADS / BK);
            reg[i] = (row < rows && col < k) ? a[row * k + col] : 0.0f;
        }
    }
    __device__ __forceinline__ void stash(float (*tile)[T::BM + PAD]) const {
#pragma unroll
        for (int i = 0; i < T::A_LOADS; ++i) tile[kk][r0 + i * (T::THREADS / BK)] = reg[i];
    }
};

// B: the im2col matrix src̃[(ch, tap), (s, t, j)], loaded along the columns (coalesced: consecutive
// columns are consecutive frames·joints of one sample). Each thread keeps one column for the whole
// reduction and loads B_LOADS of its rows per step.
template <class T>
struct ConvColumnsB {
    const float* __restrict__ src;
    const ConvGemm& p;
    int col, r0;
    bool col_ok;
    ConvColumn column;
    float reg[T::B_LOADS];

    __device__ ConvColumnsB(const float* __restrict__ src_, const ConvGemm& p_, int n0)
        : src(src_), p(p_), col(threadIdx.x % T::BN), r0(threadIdx.x / T::BN),
          col_ok(n0 + col < p.columns), column(conv_column(p, n0 + col)) {}

    __device__ __forceinline__ void fetch(int k0) {
#pragma unroll
        for (int i = 0; i < T::B_LOADS; ++i) {
            const int off = conv_column_offset(p, column, col_ok, k0 + r0 + i * (T::THREADS / T::BN));
            reg[i] = off >= 0 ? src[off] : 0.0f;
        }
    }
    __device__ __forceinline__ void stash(float (*tile)[T::BN + PAD]) const {
#pragma unroll
        for (int i = 0; i < T::B_LOADS; ++i) tile[r0 + i * (T::THREADS / T::BN)][col] = reg[i];
    }
};

// Σ over the 16 threads of a row group (the threads with the same ty, consecutive lanes of one half
// warp), the same bits in all of them (see warp_allsum in reduce.cuh).
__device__ __forceinline__ double row_group_sum(double v) {
#pragma unroll
    for (int mask = 1; mask < 16; mask <<= 1) v += __shfl_xor_sync(0xffffffffu, v, mask);
    return v;
}

// The batch statistics of the block's outputs (bn_moments.cuh): moments[(row·gridDim.x + blockIdx.x)·3]
// = (count, mean, M2) of row `row` over the tile's columns, by two passes over the values the threads
// hold (exactly the f32 values stored). Every thread of the block calls it.
template <class T>
__device__ __forceinline__ void gather_row_moments(const float (&acc)[T::TM][T::TN], const float* __restrict__ bias,
                                                   int m0, int n0, int ty, int tx, const ConvGemm& p,
                                                   double* __restrict__ moments) {
    static_assert(T::BN / T::TN == 16, "a row group is 16 threads of one half warp");
    const int cols = min(T::BN, p.columns - n0);
#pragma unroll
    for (int i = 0; i < T::TM; ++i) {
        const int row = m0 + ty * T::TM + i;
        const float b = bias != nullptr && row < p.rows ? bias[row] : 0.0f;
        double sum = 0.0;
#pragma unroll
        for (int j = 0; j < T::TN; ++j)
            if (n0 + tile_column<T>(tx, j) < p.columns) sum += (double)(acc[i][j] + b);
        const double mean = row_group_sum(sum) / cols;
        double m2 = 0.0;
#pragma unroll
        for (int j = 0; j < T::TN; ++j)
            if (n0 + tile_column<T>(tx, j) < p.columns) {
                const double d = (double)(acc[i][j] + b) - mean;
                m2 = fma(d, d, m2);
            }
        m2 = row_group_sum(m2);
        if (tx == 0 && row < p.rows)
            store_moments(moments + ((uint64_t)row * gridDim.x + blockIdx.x) * 3, {(double)cols, mean, m2});
    }
}

// blockIdx.x: column tile, blockIdx.y: row tile. bias: [rows] or null. moments: null, or the batch
// statistics of dst gathered per (row, column tile): [rows, gridDim.x, 3] (bn_moments.cuh).
// bn_coef, residual, residual_mask, relu: what is applied to the outputs before they are stored
// (output_epilogue.cuh; null, null, null, 0 for nothing): an evaluation-mode batch norm and its
// residual add and ReLU in the forward (never with moments); in the input gradient, a gradient
// added (a block's residual share, masked by the block's ReLU output for an identity residual).
template <class T>
__device__ __forceinline__ void conv_gemm(const float* __restrict__ a, const float* __restrict__ src,
                                          const float* __restrict__ bias, float* __restrict__ dst,
                                          double* __restrict__ moments, const double* __restrict__ bn_coef,
                                          const float* __restrict__ residual,
                                          const float* __restrict__ residual_mask, uint32_t relu,
                                          const ConvGemm& p) {
    __shared__ __align__(16) Smem<T> sm;
    const int n0 = blockIdx.x * T::BN, m0 = blockIdx.y * T::BM;
    const int tx = threadIdx.x % (T::BN / T::TN), ty = threadIdx.x / (T::BN / T::TN);
    RowMajorA<T> la(a, p.rows, p.k, m0);
    ConvColumnsB<T> lb(src, p, n0);
    float acc[T::TM][T::TN] = {};
    accumulate<T>(la, lb, 0, p.k, sm, ty, tx, acc);

    const int row_stride = p.dst_t * p.v;
    const bool finish = bn_coef != nullptr || residual != nullptr || relu;  // uniform
#pragma unroll
    for (int j = 0; j < T::TN; ++j) {
        const int q = n0 + tile_column<T>(tx, j);
        if (q >= p.columns) continue;
        const int base = conv_dst_offset(p, q);
#pragma unroll
        for (int i = 0; i < T::TM; ++i) {
            const int row = m0 + ty * T::TM + i;
            if (row >= p.rows) continue;
            const int at = base + row * row_stride;
            const float v = bias ? acc[i][j] + bias[row] : acc[i][j];
            dst[at] = finish ? output_epilogue(v, bn_coef, row, residual, residual_mask, at, relu) : v;
        }
    }
    if (moments != nullptr) gather_row_moments<T>(acc, bias, m0, n0, ty, tx, p, moments);  // uniform
}

// ---- weight and bias gradient: conv_wgrad -------------------------------------------------------

// ConvWgrad and its addressing: conv_tiles.cuh.

// A: dy[o, l] = dy[s, o, p] with l = s·(t_out·v) + p, loaded along l and stored transposed; keeps
// each row's running sum of what it loaded (the bias gradient).
template <class T>
struct DyRowsA {
    const float* __restrict__ dy;
    const ConvWgrad& p;
    int m0, l_end, kk, r0;
    float reg[T::A_LOADS], sum[T::A_LOADS];

    __device__ DyRowsA(const float* __restrict__ dy_, const ConvWgrad& p_, int m0_, int l_end_)
        : dy(dy_), p(p_), m0(m0_), l_end(l_end_), kk(threadIdx.x % BK), r0(threadIdx.x / BK) {
#pragma unroll
        for (int i = 0; i < T::A_LOADS; ++i) sum[i] = 0.0f;
    }

    __device__ __forceinline__ void fetch(int l0) {
        const int l = l0 + kk;
        const int frames = p.t_out * p.v;
        const int s = div_fast(l, p.div_frames);
        const int base = s * p.c_out * frames + (l - s * frames);
#pragma unroll
        for (int i = 0; i < T::A_LOADS; ++i) {
            const int o = m0 + r0 + i * (T::THREADS / BK);
            reg[i] = (l < l_end && o < p.c_out) ? dy[base + o * frames] : 0.0f;
            sum[i] += reg[i];
        }
    }
    __device__ __forceinline__ void stash(float (*tile)[T::BM + PAD]) const {
#pragma unroll
        for (int i = 0; i < T::A_LOADS; ++i) tile[kk][r0 + i * (T::THREADS / BK)] = reg[i];
    }
};

// B: x̃[(i,k), l] stored as tile[kk][column (i,k)], loaded along l (consecutive joints and frames).
// Each thread keeps the same B_LOADS columns (i, k) for the whole reduction.
template <class T>
struct ConvTapsB {
    // column tap of a column beyond c_in·kt: no frame t·stride − pad + NO_TAP is ever in [0, t_in)
    static constexpr int NO_TAP = -(1 << 30);
    const float* __restrict__ x;
    const ConvWgrad& p;
    int l_end, kk, r0;
    int col_off[T::B_LOADS];  // i·t_in·v + k·v
    int col_tap[T::B_LOADS];  // k, or NO_TAP
    float reg[T::B_LOADS];

    __device__ ConvTapsB(const float* __restrict__ x_, const ConvWgrad& p_, int n0, int l_end_)
        : x(x_), p(p_), l_end(l_end_), kk(threadIdx.x % BK), r0(threadIdx.x / BK) {
#pragma unroll
        for (int i = 0; i < T::B_LOADS; ++i) {
            const int r = n0 + r0 + i * (T::THREADS / BK);
            const int ch = div_fast(r, p.div_kt);
            const int k = r - ch * p.kt;
            col_off[i] = (ch * p.t_in + k) * p.v;
            col_tap[i] = r < p.red ? k : NO_TAP;
        }
    }

    __device__ __forceinline__ void fetch(int l0) {
        const int l = l0 + kk;
        const int frames = p.t_out * p.v;
        const int s = div_fast(l, p.div_frames);
        const int rem = l - s * frames;
        const int t = div_fast(rem, p.div_v);
        const int tt0 = t * p.stride - p.pad;  // source frame of tap 0
        const int base = s * p.c_in * p.t_in * p.v + tt0 * p.v + (rem - t * p.v);
#pragma unroll
        for (int i = 0; i < T::B_LOADS; ++i) {
            const bool ok = l < l_end && (unsigned)(tt0 + col_tap[i]) < (unsigned)p.t_in;
            reg[i] = ok ? x[base + col_off[i]] : 0.0f;
        }
    }
    __device__ __forceinline__ void stash(float (*tile)[T::BN + PAD]) const {
#pragma unroll
        for (int i = 0; i < T::B_LOADS; ++i) tile[kk][r0 + i * (T::THREADS / BK)] = reg[i];
    }
};

// blockIdx.x: tile of dw columns (i,k), blockIdx.y: tile of output channels, blockIdx.z: split.
// dw_parts: [splits, c_out, c_in·kt]; db_parts: [splits, c_out] or null (written by column tile 0).
template <class T>
__device__ __forceinline__ void conv_wgrad(const float* __restrict__ x, const float* __restrict__ dy,
                                           float* __restrict__ dw_parts, float* __restrict__ db_parts,
                                           const ConvWgrad& p) {
    __shared__ __align__(16) Smem<T> sm;
    const int n0 = blockIdx.x * T::BN, m0 = blockIdx.y * T::BM, z = blockIdx.z;
    const int tx = threadIdx.x % (T::BN / T::TN), ty = threadIdx.x / (T::BN / T::TN);
    const int l_begin = z * p.chunk, l_end = min(p.length, l_begin + p.chunk);
    DyRowsA<T> la(dy, p, m0, l_end);
    ConvTapsB<T> lb(x, p, n0, l_end);
    float acc[T::TM][T::TN] = {};
    accumulate<T>(la, lb, l_begin, l_end, sm, ty, tx, acc);

    float* part = dw_parts + z * p.c_out * p.red;
#pragma unroll
    for (int j = 0; j < T::TN; ++j) {
        const int col = n0 + tile_column<T>(tx, j);
        if (col >= p.red) continue;
#pragma unroll
        for (int i = 0; i < T::TM; ++i) {
            const int row = m0 + ty * T::TM + i;
            if (row < p.c_out) part[row * p.red + col] = acc[i][j];
        }
    }

    if (db_parts != nullptr && blockIdx.x == 0) {  // uniform over the block
        // the 8 threads of a row (consecutive lanes, kk = lane % 8) combine their sums; lane kk = 0 writes
#pragma unroll
        for (int i = 0; i < T::A_LOADS; ++i) {
            float s = la.sum[i];
            s += __shfl_xor_sync(0xffffffffu, s, 1);
            s += __shfl_xor_sync(0xffffffffu, s, 2);
            s += __shfl_xor_sync(0xffffffffu, s, 4);
            const int o = m0 + la.r0 + i * (T::THREADS / BK);
            if (la.kk == 0 && o < p.c_out) db_parts[z * p.c_out + o] = s;
        }
    }
}

// ---- the kernels of each tile shape -------------------------------------------------------------
// 128x128 (256 threads, 8x8 each) for more than 64 rows, 64x128 (128 threads, 8x8) for 33..64 rows,
// 32x128 (128 threads, 4x8) for up to 32 rows. Launch bounds cap the registers at 128 per thread so
// that at least MIN_BLOCKS blocks fit on an SM.
#define CONV_TILE_KERNELS(BM, BN, TM, NTHREADS, MIN_BLOCKS)                                                     \
    static_assert(Tile<BM, BN, TM>::THREADS == NTHREADS, "launch bounds of the " #BM "x" #BN " tile");           \
    extern "C" __global__ void __launch_bounds__(NTHREADS, MIN_BLOCKS)                                          \
        conv_gemm_##BM##x##BN##_f32(const float* __restrict__ a, const float* __restrict__ src,                  \
                                    const float* __restrict__ bias, float* __restrict__ dst,                     \
                                    double* __restrict__ moments, const double* __restrict__ bn_coef,            \
                                    const float* __restrict__ residual,                                          \
                                    const float* __restrict__ residual_mask, uint32_t relu,                      \
                                    const __grid_constant__ ConvGemm p) {                                        \
        conv_gemm<Tile<BM, BN, TM>>(a, src, bias, dst, moments, bn_coef, residual, residual_mask, relu, p);      \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(NTHREADS, MIN_BLOCKS)                                          \
        conv_wgrad_##BM##x##BN##_f32(const float* __restrict__ x, const float* __restrict__ dy,                  \
                                     float* __restrict__ dw_parts, float* __restrict__ db_parts, const __grid_constant__ ConvWgrad p) {  \
        conv_wgrad<Tile<BM, BN, TM>>(x, dy, dw_parts, db_parts, p);                                              \
    }

CONV_TILE_KERNELS(128, 128, 8, 256, 2)
CONV_TILE_KERNELS(64, 128, 8, 128, 4)
CONV_TILE_KERNELS(32, 128, 4, 128, 4)

// ---- helpers --------------------------------------------------------------------------------------

// The weights of input-gradient phase φ (taps k = phase_tap + stride·m, m in [0, taps)), taps reversed
// so that the source frame grows with the reduction index:
//   a[i, o·taps + m] = w[o, i, phase_tap + stride·(taps − 1 − m)];  w: [c_out, c_in, kt], a: [c_in, c_out·taps].
extern "C" __global__ void conv_pack_phase_f32(const float* __restrict__ w, float* __restrict__ a, int c_out,
                                               int c_in, int kt, int stride, int phase_tap, int taps) {
    const int len = c_in * c_out * taps;
    for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < len; idx += gridDim.x * blockDim.x) {
        const int i = idx / (c_out * taps);
        const int rem = idx - i * (c_out * taps);
        const int o = rem / taps;
        const int m = rem - o * taps;
        a[idx] = w[(o * c_in + i) * kt + phase_tap + stride * (taps - 1 - m)];
    }
}

// out[e] += Σ_z parts[z·len + e], z = 0, 1, …, splits − 1 in that order (the same bits every run).
extern "C" __global__ void conv_sum_splits_f32(const float* __restrict__ parts, int splits, int len,
                                               float* __restrict__ out) {
    for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < len; e += gridDim.x * blockDim.x) {
        float s = 0.0f;
        for (int z = 0; z < splits; ++z) s += parts[z * len + e];
        out[e] += s;
    }
}
