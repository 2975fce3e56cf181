// The convolution-over-time GEMMs of temporal_conv.cu on the tensor cores, in TF32 or bf16: forward,
// input gradient (one launch per output phase, over the weights conv_pack_phase_f32 repacks) and
// split-K weight and bias gradient (partials summed by conv_sum_splits_f32 in split order). Same
// GEMMs, same launch parameters (conv_tiles.cuh), same results up to the rounding of the operands;
// the forward gathers its output's batch statistics on request as well (tc_gather_row_moments).
//
// Arithmetic (the Math policies below): every operand is rounded from f32 as it leaves shared memory,
//   Tf32Math: to TF32 (10 explicit mantissa bits) with cvt.rna.tf32.f32 (to nearest, ties away from
//             zero), multiplied by mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32;
//   Bf16Math: to bf16 (7 explicit mantissa bits) with cvt.rn.bf16x2.f32 (to nearest even), multiplied
//             by mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 (twice TF32's rate).
// Products and sums are f32 in both (the CPU backend's rounded conv modes compute exactly this, up to
// the order of the f32 sums).
//
// Activations (activation.cuh): the kernels take f32 activations; the Bf16Math ones also come as
// `<name>_bf16act` twins whose activation operands and outputs are bf16 (conv_gemm: src, dst,
// residual, residual_mask; conv_wgrad: x, dy) and whose weights, bias, dw/db partials and moments stay
// as they are. A bf16 operand element is exactly an f32 one, so the twins compute what the f32
// kernels compute on the same (bf16-valued) inputs, then round each output once as it is stored; the
// forward's moments are those of the stored (rounded) outputs.
//
// Tiling: a block computes a BM x BN tile of C = A·B in BK = 16 deep steps; its WM x WN warps each
// own a (BM/WM) x (BN/WN) warp tile of MT x NT mma tiles (16 x 8), accumulated in registers. Both
// operand tiles are copied global → shared with 4-byte cp.async (the im2col addressing gathers
// single floats, so wider copies do not apply; an element outside the clip or beyond the matrix is
// a cp.async with src-size 0, which writes a zero), in a ring of STAGES buffers: the copies of step
// i + STAGES − 1 are in flight while step i is multiplied; one barrier per step. A bf16 operand
// (cp.async has no 2-byte copy) goes through registers instead (StagedCopy): the loads of step
// i + STAGES − 1 are issued before step i is multiplied, and their values, widened to f32, are stored
// into the same f32 tile after it, so shared memory and the multiply are the same for both.
//
// Shared-memory layouts (f32; ldmatrix moves 16-bit elements, so it does not fit f32 tiles). A
// warp's fragment load reads element (g, t) for g = lane / 4 < 8 and t = lane % 4 < 4, where g
// runs along m (A) or n (B) and t along k. The row paddings make every fragment load conflict-free:
//   m-major [m][k] (A always; B of the weight gradient, loaded along the reduction):
//     TF32: 32-bit loads of (g, t): row stride BK + 4 = 20, bank (20·g + t) mod 32 takes 32 values;
//     bf16: 64-bit loads of (g, 2t..2t+1), served per half-warp (g < 4 or g ≥ 4): row stride
//           BK + 8 = 24, words 24·g + 2t + {0, 1} cover the 32 banks once per half-warp;
//   k-major [k][n] (B of conv_gemm, loaded along its columns), 32-bit loads:
//     TF32: (t, g): row stride BN + 8 (≡ 8 mod 32), bank (8·t + g) mod 32 takes 32 values;
//     bf16: (2t, g) and (2t + 1, g): row stride BN + 4 (≡ 4 mod 32), bank (8·t + g) mod 32 again.
// The cp.async stores are conflict-free (k-major, consecutive lanes on consecutive columns) or at
// most 2-way (m-major, 16 lanes per row).
//
// Fragments (PTX ISA), (row, k) for A, (k, column) for B, (row, column) for C:
//   m16n8k8 .tf32:  A a0 (g, t), a1 (g + 8, t), a2 (g, t + 4), a3 (g + 8, t + 4);
//                   B b0 (t, g), b1 (t + 4, g);
//   m16n8k16 .bf16: A a0,a1 (g, 2t..2t+1), a2,a3 (g + 8, 2t..), a4,a5 (g, 2t + 8..),
//                   a6,a7 (g + 8, 2t + 8..), two per 32-bit register, the lower k in the low half;
//                   B b0,b1 (2t..2t+1, g), b2,b3 (2t + 8.., g);
//   C (both): c0 (g, 2t), c1 (g, 2t + 1), c2 (g + 8, 2t), c3 (g + 8, 2t + 1).

#include "activation.cuh"
#include "output_epilogue.cuh"
#include "bn_moments.cuh"
#include "conv_tiles.cuh"

constexpr int BK = 16;  // reduction depth of one tile step: two TF32 or one bf16 mma k-step

// acc += A·B of one 16 x 8 x 8 tile in TF32, operands already converted
__device__ __forceinline__ void mma_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// acc += A·B of one 16 x 8 x 16 tile in bf16, operands already packed
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__device__ __forceinline__ uint32_t to_tf32(float x) {
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
}

// {lo, hi} rounded to bf16 in one register, lo in the low half (cvt packs its first source high)
__device__ __forceinline__ uint32_t to_bf16x2(float lo, float hi) {
    uint32_t r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

// The multiply of one BK step for a warp tile: acc[mt][nt] += A[mt-th 16 rows] · B[nt-th 8 columns],
// with A element (m, k) at a[m·M_LD + k] and B element (k, n) at b[k·B_KS + n·B_NS].
struct Tf32Math {
    static constexpr int M_MAJOR_PAD = 4, K_MAJOR_PAD = 8;

    template <int MT, int NT, int M_LD, int B_KS, int B_NS>
    static __device__ __forceinline__ void multiply(const float* a, const float* b, float (&acc)[MT][NT][4]) {
        const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
#pragma unroll
        for (int ks = 0; ks < BK; ks += 8) {
            uint32_t af[MT][4], bf[NT][2];
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
                const float* p = a + (mt * 16 + g) * M_LD + ks + t;
                af[mt][0] = to_tf32(p[0]);
                af[mt][1] = to_tf32(p[8 * M_LD]);
                af[mt][2] = to_tf32(p[4]);
                af[mt][3] = to_tf32(p[8 * M_LD + 4]);
            }
#pragma unroll
            for (int nt = 0; nt < NT; ++nt) {
                const float* q = b + (nt * 8 + g) * B_NS + (ks + t) * B_KS;
                bf[nt][0] = to_tf32(q[0]);
                bf[nt][1] = to_tf32(q[4 * B_KS]);
            }
#pragma unroll
            for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                for (int nt = 0; nt < NT; ++nt) mma_tf32(acc[mt][nt], af[mt], bf[nt]);
        }
    }
};

struct Bf16Math {
    static constexpr int M_MAJOR_PAD = 8, K_MAJOR_PAD = 4;

    // the bf16 pair of elements k and k + 1 at p and p + k_stride (adjacent when k_stride is 1:
    // one 64-bit load, 8-byte aligned as every row stride and k are even)
    template <int K_STRIDE>
    static __device__ __forceinline__ uint32_t pair(const float* p) {
        if constexpr (K_STRIDE == 1) {
            const float2 v = *reinterpret_cast<const float2*>(p);
            return to_bf16x2(v.x, v.y);
        } else {
            return to_bf16x2(p[0], p[K_STRIDE]);
        }
    }

    template <int MT, int NT, int M_LD, int B_KS, int B_NS>
    static __device__ __forceinline__ void multiply(const float* a, const float* b, float (&acc)[MT][NT][4]) {
        const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
        uint32_t af[MT][4], bf[NT][2];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
            const float* p = a + (mt * 16 + g) * M_LD + 2 * t;
            af[mt][0] = pair<1>(p);
            af[mt][1] = pair<1>(p + 8 * M_LD);
            af[mt][2] = pair<1>(p + 8);
            af[mt][3] = pair<1>(p + 8 * M_LD + 8);
        }
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
            const float* q = b + (nt * 8 + g) * B_NS + 2 * t * B_KS;
            bf[nt][0] = pair<B_KS>(q);
            bf[nt][1] = pair<B_KS>(q + 8 * B_KS);
        }
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int nt = 0; nt < NT; ++nt) mma_bf16(acc[mt][nt], af[mt], bf[nt]);
    }
};

// A block tile: BM x BN outputs, WM x WN warps, STAGES copy buffers, the arithmetic Math; B_ALONG_K:
// B is loaded along the reduction (the weight gradient) and stored n-major, else along its columns
// and stored k-major.
template <int BM_, int BN_, int WM_, int WN_, int STAGES_, bool B_ALONG_K_, class Math_>
struct TcTile {
    using Math = Math_;
    static constexpr int BM = BM_, BN = BN_, WM = WM_, WN = WN_, STAGES = STAGES_;
    static constexpr bool B_ALONG_K = B_ALONG_K_;
    static constexpr int THREADS = 32 * WM * WN;
    static constexpr int MT = BM / WM / 16, NT = BN / WN / 8;  // mma tiles of a warp tile
    static constexpr int A_LOADS = BM * BK / THREADS, B_LOADS = BN * BK / THREADS;  // per thread per step
    // row strides of an m-major (or n-major) tile and of a k-major one, floats
    static constexpr int M_LD = BK + Math::M_MAJOR_PAD, K_LD = BN + Math::K_MAJOR_PAD;
    // B element (k, n) at k·B_KS + n·B_NS
    static constexpr int B_KS = B_ALONG_K ? 1 : K_LD, B_NS = B_ALONG_K ? M_LD : 1;
    static constexpr int A_STAGE = BM * M_LD, B_STAGE = B_ALONG_K ? BN * M_LD : BK * K_LD;
    static_assert(BM % (16 * WM) == 0 && BN % (8 * WN) == 0, "warp tiles of whole mma tiles");
    static_assert(THREADS % BK == 0 && (BM * BK) % THREADS == 0 && (BN * BK) % THREADS == 0, "load mapping");
    static_assert(B_ALONG_K || (THREADS % BN == 0 && BK % (THREADS / BN) == 0), "column load mapping");
    static_assert(BN % 32 == 0, "k-major padding is conflict-free for multiples of 32 columns");
};

template <class T>
struct TcSmem {
    float a[T::STAGES * T::A_STAGE];
    float b[T::STAGES * T::B_STAGE];
};

// *dst = ok ? *src : 0, asynchronously (src is not read when !ok, but must be a valid address)
__device__ __forceinline__ void copy_async(float* dst, const float* src, bool ok) {
    const unsigned d = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(d), "l"(src), "r"(ok ? 4 : 0) : "memory");
}
__device__ __forceinline__ void copy_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
// waits until at most N of this thread's copy groups are pending
template <int N>
__device__ __forceinline__ void copy_wait() {
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

// How a loader's N elements of one step go global → shared, by the element type: fetch(i, dst, src,
// ok) starts element i (*dst = ok ? *src : 0; src must be a valid address even when !ok), land(i,
// dst) finishes it, after the current step's multiply.
//   float: a cp.async in fetch (landing by copy_wait), land does nothing;
//   bf16:  a plain 2-byte load in fetch, kept as raw bits (two elements a register), land stores
//          them widened to f32 (bits << 16: exact, what load_act returns).
template <class Elem, int N>
struct StagedCopy;

template <int N>
struct StagedCopy<float, N> {
    __device__ __forceinline__ void fetch(int, float* dst, const float* src, bool ok) { copy_async(dst, src, ok); }
    __device__ __forceinline__ void land(int, float*) const {}
};

template <int N>
struct StagedCopy<__nv_bfloat16, N> {
    uint32_t bits[(N + 1) / 2];
    __device__ __forceinline__ void fetch(int i, float*, const __nv_bfloat16* src, bool ok) {
        const uint32_t b = ok ? (uint32_t)*reinterpret_cast<const unsigned short*>(src) : 0u;
        if (i % 2 == 0) bits[i / 2] = b;
        else bits[i / 2] |= b << 16;
    }
    __device__ __forceinline__ void land(int i, float* dst) const {
        *dst = __uint_as_float(i % 2 == 0 ? bits[i / 2] << 16 : bits[i / 2] & 0xffff0000u);
    }
};

// acc += the warp tile at (wm0, wn0) of A·B over one BK step. a: [BM][M_LD], b: B_KS/B_NS.
template <class T>
__device__ __forceinline__ void multiply_stage(const float* a, const float* b, int wm0, int wn0,
                                               float (&acc)[T::MT][T::NT][4]) {
    T::Math::template multiply<T::MT, T::NT, T::M_LD, T::B_KS, T::B_NS>(a + wm0 * T::M_LD, b + wn0 * T::B_NS, acc);
}

// The main loop over reduction steps [k_begin, k_end) in steps of BK. The loaders start their
// elements of step k0 with issue(tile, k0) (zeros outside) and finish them with land(tile) (StagedCopy):
// in the prologue at once, in the loop after the current step's multiply; seen(tile) is called with
// each completed A tile before it is multiplied (the bias gradient's sums).
template <class T, class LoadA, class LoadB, class SeenA>
__device__ __forceinline__ void accumulate(LoadA& la, LoadB& lb, int k_begin, int k_end, TcSmem<T>& sm, int wm0,
                                           int wn0, float (&acc)[T::MT][T::NT][4], SeenA seen) {
    const int steps = k_begin < k_end ? (k_end - k_begin + BK - 1) / BK : 0;
#pragma unroll
    for (int s = 0; s < T::STAGES - 1; ++s) {
        if (s < steps) {
            la.issue(sm.a + s * T::A_STAGE, k_begin + s * BK);
            lb.issue(sm.b + s * T::B_STAGE, k_begin + s * BK);
            la.land(sm.a + s * T::A_STAGE);
            lb.land(sm.b + s * T::B_STAGE);
        }
        copy_commit();  // possibly empty: the group count stays the same in every thread and step
    }
    int read = 0, write = T::STAGES - 1;
    for (int i = 0; i < steps; ++i) {
        copy_wait<T::STAGES - 2>();  // this thread's copies of step i have landed
        __syncthreads();             // everyone's have, and step i − 1's buffer (= write) is free
        const bool more = i + T::STAGES - 1 < steps;
        if (more) {
            la.issue(sm.a + write * T::A_STAGE, k_begin + (i + T::STAGES - 1) * BK);
            lb.issue(sm.b + write * T::B_STAGE, k_begin + (i + T::STAGES - 1) * BK);
        }
        copy_commit();
        seen(sm.a + read * T::A_STAGE);
        multiply_stage<T>(sm.a + read * T::A_STAGE, sm.b + read * T::B_STAGE, wm0, wn0, acc);
        if (more) {  // visible to the block at the next step's barrier, before step i + STAGES − 1
            la.land(sm.a + write * T::A_STAGE);
            lb.land(sm.b + write * T::B_STAGE);
        }
        read = read + 1 == T::STAGES ? 0 : read + 1;
        write = write + 1 == T::STAGES ? 0 : write + 1;
    }
}

// An m-major operand tile [BM][M_LD] loaded along k: thread (r0, kk) copies element kk of rows
// r0 + i·THREADS/BK. Rows says where element (tile row r, reduction index k) is (at(r, k)) and
// whether it is in the matrix (ok(r, k)); base() is a valid address for the copies of zeros;
// Rows::Elem is the element type.
template <class T, class Rows>
struct MMajorA {
    Rows rows;
    int kk, r0;
    StagedCopy<typename Rows::Elem, T::A_LOADS> staged;
    __device__ MMajorA(const Rows& rows_) : rows(rows_), kk(threadIdx.x % BK), r0(threadIdx.x / BK) {}
    __device__ __forceinline__ void issue(float* tile, int k0) {
        const int k = k0 + kk;
#pragma unroll
        for (int i = 0; i < T::A_LOADS; ++i) {
            const int r = r0 + i * (T::THREADS / BK);
            const bool ok = rows.ok(r, k);
            staged.fetch(i, tile + r * T::M_LD + kk, ok ? rows.at(r, k) : rows.base(), ok);
        }
    }
    __device__ __forceinline__ void land(float* tile) const {
#pragma unroll
        for (int i = 0; i < T::A_LOADS; ++i) staged.land(i, tile + (r0 + i * (T::THREADS / BK)) * T::M_LD + kk);
    }
};

// ---- forward and input gradient: conv_gemm ------------------------------------------------------

// a: [rows, k] row-major, the tile's rows from m0
struct RowMajorRows {
    using Elem = float;
    const float* __restrict__ a;
    int rows, k, m0;
    __device__ bool ok(int r, int col) const { return m0 + r < rows && col < k; }
    __device__ const float* at(int r, int col) const { return a + (m0 + r) * k + col; }
    __device__ const float* base() const { return a; }
};

// B: the im2col matrix src̃[(ch, tap), (s, t, j)] stored k-major, loaded along the columns (coalesced);
// each thread keeps one column for the whole reduction. Act: src's element type.
template <class T, class Act>
struct TcConvColumnsB {
    const Act* __restrict__ src;
    const ConvGemm& p;
    int col, r0;
    bool col_ok;
    ConvColumn column;
    StagedCopy<Act, T::B_LOADS> staged;

    __device__ TcConvColumnsB(const Act* __restrict__ src_, const ConvGemm& p_, int n0)
        : src(src_), p(p_), col(threadIdx.x % T::BN), r0(threadIdx.x / T::BN), col_ok(n0 + col < p.columns),
          column(conv_column(p, n0 + col)) {}

    __device__ __forceinline__ void issue(float* tile, int k0) {
#pragma unroll
        for (int i = 0; i < T::B_LOADS; ++i) {
            const int r = r0 + i * (T::THREADS / T::BN);
            const int off = conv_column_offset(p, column, col_ok, k0 + r);
            staged.fetch(i, tile + r * T::K_LD + col, src + max(off, 0), off >= 0);
        }
    }
    __device__ __forceinline__ void land(float* tile) const {
#pragma unroll
        for (int i = 0; i < T::B_LOADS; ++i) staged.land(i, tile + (r0 + i * (T::THREADS / T::BN)) * T::K_LD + col);
    }
};

// The batch statistics of the block's outputs (bn_moments.cuh): moments[(row·gridDim.x + blockIdx.x)·3]
// = (count, mean, M2) of row `row` over the tile's columns (exactly the values stored: each through
// stored_value, bf16-rounded for a bf16 dst; dst is only its type and not read). A row's
// values are spread over the 4 lanes of one g in each of the WN warps of its warp row. Each warp
// sums its share shifted by the share's first value (a shuffle from lane 4g) in one pass, so the
// accumulators die as they are read (two passes would keep them all live and spill); the WN shares'
// moments meet in shared memory (the operand ring, free once every warp is past its last multiply)
// and are merged in warp order. Every thread of the block calls it.
template <class T, class Act>
__device__ __forceinline__ void tc_gather_row_moments(const float (&acc)[T::MT][T::NT][4],
                                                      const float* __restrict__ bias, int m0, int n0, int wm0,
                                                      int wn0, const ConvGemm& p, TcSmem<T>& sm,
                                                      double* __restrict__ moments, const Act* dst) {
    static_assert(3 * T::WN * T::BM * sizeof(double) <= sizeof(sm.a), "the row shares fit in the A ring");
    double* shares = reinterpret_cast<double*>(sm.a);  // [WN][BM][3]: a warp column's moments of a row
    const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4, wn = (threadIdx.x / 32) % T::WN;
    // columns of this warp's share inside the matrix (uniform over the warp)
    const double count = (double)max(0, min(T::BN / T::WN, p.columns - (n0 + wn0)));
    __syncthreads();  // every warp is done with the operand tiles
#pragma unroll
    for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int r = wm0 + mt * 16 + g + 8 * h;
            const float b = bias != nullptr && m0 + r < p.rows ? bias[m0 + r] : 0.0f;
            const double shift = (double)__shfl_sync(0xffffffffu, stored_value(dst, acc[mt][0][2 * h] + b), lane & ~3);
            double sum = 0.0, sum_sq = 0.0;
#pragma unroll
            for (int nt = 0; nt < T::NT; ++nt)
#pragma unroll
                for (int c = 0; c < 2; ++c)
                    if (n0 + wn0 + nt * 8 + 2 * t + c < p.columns) {
                        const double d = (double)stored_value(dst, acc[mt][nt][2 * h + c] + b) - shift;
                        sum += d;
                        sum_sq = fma(d, d, sum_sq);
                    }
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            sum += __shfl_xor_sync(0xffffffffu, sum, 2);
            sum_sq += __shfl_xor_sync(0xffffffffu, sum_sq, 1);
            sum_sq += __shfl_xor_sync(0xffffffffu, sum_sq, 2);
            if (t == 0) store_moments(shares + (wn * T::BM + r) * 3, moments_from_shifted_sums(count, shift, sum, sum_sq));
        }
    __syncthreads();
    for (int r = threadIdx.x; r < T::BM; r += T::THREADS) {
        if (m0 + r >= p.rows) continue;
        Moments m = load_moments(shares + r * 3);
#pragma unroll
        for (int w = 1; w < T::WN; ++w) m = merge_moments(m, load_moments(shares + (w * T::BM + r) * 3));
        store_moments(moments + ((uint64_t)(m0 + r) * gridDim.x + blockIdx.x) * 3, m);
    }
}

// blockIdx.x: column tile, blockIdx.y: row tile. bias: [rows] or null. moments: null, or the batch
// statistics of dst gathered per (row, column tile): [rows, gridDim.x, 3] (bn_moments.cuh).
// bn_coef, residual, residual_mask, relu: what is applied to the outputs before they are stored
// (output_epilogue.cuh; null, null, null, 0 for nothing): an evaluation-mode batch norm and its
// residual add and ReLU in the forward (never with moments); in the input gradient, a gradient
// added (a block's residual share, masked by the block's ReLU output for an identity residual).
// Act: the activations' type (src, dst, residual, residual_mask).
template <class T, class Act>
__device__ __forceinline__ void tc_conv_gemm(const float* __restrict__ a, const Act* __restrict__ src,
                                             const float* __restrict__ bias, Act* __restrict__ dst,
                                             double* __restrict__ moments, const double* __restrict__ bn_coef,
                                             const Act* __restrict__ residual,
                                             const Act* __restrict__ residual_mask, uint32_t relu,
                                             const ConvGemm& p) {
    __shared__ __align__(16) TcSmem<T> sm;
    const int n0 = blockIdx.x * T::BN, m0 = blockIdx.y * T::BM;
    const int warp = threadIdx.x / 32;
    const int wm0 = (warp / T::WN) * (T::BM / T::WM), wn0 = (warp % T::WN) * (T::BN / T::WN);
    MMajorA<T, RowMajorRows> la(RowMajorRows{a, p.rows, p.k, m0});
    TcConvColumnsB<T, Act> lb(src, p, n0);
    float acc[T::MT][T::NT][4] = {};
    accumulate<T>(la, lb, 0, p.k, sm, wm0, wn0, acc, [](const float*) {});

    const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int row_stride = p.dst_t * p.v;
#pragma unroll
    for (int nt = 0; nt < T::NT; ++nt)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
            const int q = n0 + wn0 + nt * 8 + 2 * t + c;
            if (q >= p.columns) continue;
            const int base = conv_dst_offset(p, q);
#pragma unroll
            for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    const int row = m0 + wm0 + mt * 16 + g + 8 * h;
                    const float v = acc[mt][nt][2 * h + c];
                    if (row < p.rows) {
                        const int at = base + row * row_stride;
                        // the epilogue starts from the value as the conv alone would have
                        // stored it (bf16: rounded), as the separate ops it replaces do
                        store_act(dst, at,
                                  output_epilogue(stored_value(dst, bias ? v + bias[row] : v), bn_coef, row,
                                                  residual, residual_mask, at, relu));
                    }
                }
        }
    if (moments != nullptr) tc_gather_row_moments<T>(acc, bias, m0, n0, wm0, wn0, p, sm, moments, dst);  // uniform
}

// ---- weight and bias gradient: conv_wgrad -------------------------------------------------------

// A: dy[o, l] (l = (s, t, j) over n x t_out x v) for the tile's output channels from m0, up to l_end
template <class Act>
struct DyRows {
    using Elem = Act;
    const Act* __restrict__ dy;
    const ConvWgrad& p;
    int m0, l_end;
    __device__ bool ok(int r, int l) const { return m0 + r < p.c_out && l < l_end; }
    __device__ const Act* at(int r, int l) const {
        return dy + wgrad_dy_offset(p, l) + (m0 + r) * (p.t_out * p.v);
    }
    __device__ const Act* base() const { return dy; }
};

// B: x̃[(i,k), l] stored n-major ([column (i,k)][l]), loaded along l (consecutive joints and frames).
// Each thread keeps the same B_LOADS columns (i, k) for the whole reduction.
template <class T, class Act>
struct TcConvTapsB {
    const Act* __restrict__ x;
    const ConvWgrad& p;
    int l_end, kk, r0;
    WgradTap taps[T::B_LOADS];
    StagedCopy<Act, T::B_LOADS> staged;

    __device__ TcConvTapsB(const Act* __restrict__ x_, const ConvWgrad& p_, int n0, int l_end_)
        : x(x_), p(p_), l_end(l_end_), kk(threadIdx.x % BK), r0(threadIdx.x / BK) {
#pragma unroll
        for (int i = 0; i < T::B_LOADS; ++i) taps[i] = wgrad_tap(p, n0 + r0 + i * (T::THREADS / BK));
    }

    __device__ __forceinline__ void issue(float* tile, int l0) {
        const int l = l0 + kk;
        const WgradRow row = wgrad_row(p, l);
#pragma unroll
        for (int i = 0; i < T::B_LOADS; ++i) {
            const bool ok = wgrad_x_in_clip(p, row, l < l_end, taps[i]);
            staged.fetch(i, tile + (r0 + i * (T::THREADS / BK)) * T::M_LD + kk, ok ? x + row.base + taps[i].off : x, ok);
        }
    }
    __device__ __forceinline__ void land(float* tile) const {
#pragma unroll
        for (int i = 0; i < T::B_LOADS; ++i) staged.land(i, tile + (r0 + i * (T::THREADS / BK)) * T::M_LD + kk);
    }
};

// blockIdx.x: tile of dw columns (i,k), blockIdx.y: tile of output channels, blockIdx.z: split.
// dw_parts: [splits, c_out, c_in·kt]; db_parts: [splits, c_out] or null (written by column tile 0).
// Act: the activations' type (x, dy).
template <class T, class Act>
__device__ __forceinline__ void tc_conv_wgrad(const Act* __restrict__ x, const Act* __restrict__ dy,
                                              float* __restrict__ dw_parts, float* __restrict__ db_parts,
                                              const ConvWgrad& p) {
    __shared__ __align__(16) TcSmem<T> sm;
    const int n0 = blockIdx.x * T::BN, m0 = blockIdx.y * T::BM, z = blockIdx.z;
    const int warp = threadIdx.x / 32;
    const int wm0 = (warp / T::WN) * (T::BM / T::WM), wn0 = (warp % T::WN) * (T::BN / T::WN);
    const int l_begin = z * p.chunk, l_end = min(p.length, l_begin + p.chunk);
    MMajorA<T, DyRows<Act>> la(DyRows<Act>{dy, p, m0, l_end});
    TcConvTapsB<T, Act> lb(x, p, n0, l_end);
    float acc[T::MT][T::NT][4] = {};
    // the bias gradient: each thread sums the dy elements it copied (zeros outside), in step order
    const bool with_bias = db_parts != nullptr && blockIdx.x == 0;  // uniform over the block
    float sum[T::A_LOADS] = {};
    accumulate<T>(la, lb, l_begin, l_end, sm, wm0, wn0, acc, [&](const float* tile) {
        if (!with_bias) return;
#pragma unroll
        for (int i = 0; i < T::A_LOADS; ++i) sum[i] += tile[(la.r0 + i * (T::THREADS / BK)) * T::M_LD + la.kk];
    });

    const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    float* part = dw_parts + z * p.c_out * p.red;
#pragma unroll
    for (int nt = 0; nt < T::NT; ++nt)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
            const int col = n0 + wn0 + nt * 8 + 2 * t + c;
            if (col >= p.red) continue;
#pragma unroll
            for (int mt = 0; mt < T::MT; ++mt)
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    const int row = m0 + wm0 + mt * 16 + g + 8 * h;
                    if (row < p.c_out) part[row * p.red + col] = acc[mt][nt][2 * h + c];
                }
        }

    if (with_bias) {
        // the 16 threads of a row (consecutive lanes, kk = lane % 16) combine their sums; kk = 0 writes
#pragma unroll
        for (int i = 0; i < T::A_LOADS; ++i) {
            float s = sum[i];
            s += __shfl_xor_sync(0xffffffffu, s, 1);
            s += __shfl_xor_sync(0xffffffffu, s, 2);
            s += __shfl_xor_sync(0xffffffffu, s, 4);
            s += __shfl_xor_sync(0xffffffffu, s, 8);
            const int o = m0 + la.r0 + i * (T::THREADS / BK);
            if (la.kk == 0 && o < p.c_out) db_parts[z * p.c_out + o] = s;
        }
    }
}

// ---- the kernels of each tile shape and arithmetic --------------------------------------------
// The row counts and thread counts of temporal_conv.cu's tiles (the launcher picks one for all three
// arithmetics): 128x128 with 8 warps of 64x32 and 2 stages (the static 48 KiB of shared memory allow
// no third), 64x128 with 4 warps of 32x64 and 3 stages, 32x128 with 4 warps of 32x32 and 3 stages.
// The bf16 64x128 weight gradient has 2 stages: its wider m-major rows (24 floats) make 3 stages
// 54 KiB. Launch bounds cap the registers so that at least MIN_BLOCKS blocks fit on an SM (128 per
// thread); the 64x128 weight gradient keeps 16 dw columns' taps per thread and gets 3 blocks (up to
// 168 registers) rather than spill.
// TC_TILE_KERNELS_ACT: the pair with activations of type ACT, named with SUFFIX (empty for f32,
// _bf16act for bf16; parameters and weights are f32 in both).
#define TC_TILE_KERNELS_ACT(MATH, NAME, SUFFIX, ACT, BM, BN, WM, WN, STAGES, WGRAD_STAGES, NTHREADS, MIN_BLOCKS,      \
                            WGRAD_MIN_BLOCKS)                                                                        \
    static_assert(TcTile<BM, BN, WM, WN, STAGES, false, MATH>::THREADS == NTHREADS, "launch bounds");               \
    extern "C" __global__ void __launch_bounds__(NTHREADS, MIN_BLOCKS)                                              \
        conv_gemm_##BM##x##BN##_##NAME##SUFFIX(const float* __restrict__ a, const ACT* __restrict__ src,             \
                                               const float* __restrict__ bias, ACT* __restrict__ dst,                \
                                               double* __restrict__ moments, const double* __restrict__ bn_coef,     \
                                               const ACT* __restrict__ residual,                                     \
                                               const ACT* __restrict__ residual_mask, uint32_t relu,                 \
                                               const __grid_constant__ ConvGemm p) {                                 \
        tc_conv_gemm<TcTile<BM, BN, WM, WN, STAGES, false, MATH>, ACT>(a, src, bias, dst, moments, bn_coef,          \
                                                                       residual, residual_mask, relu, p);            \
    }                                                                                                                \
    extern "C" __global__ void __launch_bounds__(NTHREADS, WGRAD_MIN_BLOCKS)                                        \
        conv_wgrad_##BM##x##BN##_##NAME##SUFFIX(const ACT* __restrict__ x, const ACT* __restrict__ dy,               \
                                                float* __restrict__ dw_parts, float* __restrict__ db_parts,          \
                                                const __grid_constant__ ConvWgrad p) {                               \
        tc_conv_wgrad<TcTile<BM, BN, WM, WN, WGRAD_STAGES, true, MATH>, ACT>(x, dy, dw_parts, db_parts, p);          \
    }
// f32 activations
#define TC_TILE_KERNELS(MATH, NAME, ...) TC_TILE_KERNELS_ACT(MATH, NAME, , float, __VA_ARGS__)
// f32 and bf16 activations
#define TC_TILE_KERNELS_BOTH(MATH, NAME, ...)                           \
    TC_TILE_KERNELS_ACT(MATH, NAME, , float, __VA_ARGS__)               \
    TC_TILE_KERNELS_ACT(MATH, NAME, _bf16act, __nv_bfloat16, __VA_ARGS__)

TC_TILE_KERNELS(Tf32Math, tf32, 128, 128, 2, 4, 2, 2, 256, 2, 2)
TC_TILE_KERNELS(Tf32Math, tf32, 64, 128, 2, 2, 3, 3, 128, 4, 3)
TC_TILE_KERNELS(Tf32Math, tf32, 32, 128, 1, 4, 3, 3, 128, 4, 4)
TC_TILE_KERNELS_BOTH(Bf16Math, bf16, 128, 128, 2, 4, 2, 2, 256, 2, 2)
TC_TILE_KERNELS_BOTH(Bf16Math, bf16, 64, 128, 2, 2, 3, 2, 128, 4, 3)
TC_TILE_KERNELS_BOTH(Bf16Math, bf16, 32, 128, 1, 4, 3, 3, 128, 4, 4)
