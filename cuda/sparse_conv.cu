// Unstructured sparse conv weights (CSR) on the device: the conversion of a mask to CSR (row
// counts, an exclusive scan, an ordered scatter), the value refresh under a fixed mask, and the
// forward and input gradient of the kt x 1 conv as gathers over the kept entries.
//
// A CSR has `rows` rows; entry e of row r has a packed column col[e] = a*kt + k (a: the other
// channel, k: the tap), its index src[e] into w ([c_out, c_in, kt]) and values[e] = w[src[e]];
// row r's entries are row_ptr[r]..row_ptr[r+1], columns ascending. The CSR over output channels
// (rows o, a = i) drives the forward; the one over input channels (rows i, a = o) the input
// gradient, so both are gathers: one thread computes each output element from its row's entries in
// order, bias (or 0) first, every product and sum rounded separately (__fmul_rn, __fadd_rn) as the
// CPU backend computes them, so the two agree bit for bit and no result depends on scheduling.

#include <stdint.h>

#include "sparse_conv_shape.cuh"

#define FULL_WARP 0xffffffffu

// Row r, column (a, k) of a CSR view of the weight is w[r*row_stride + a*other_stride + k].
struct CsrView {
    int rows, others, kt;
    long long row_stride, other_stride;
};

// counts[r] = number of non-zero mask entries of row r. One warp per row; blocks of 256 threads.
extern "C" __global__ void csr_count_rows(const float* __restrict__ mask, CsrView view, uint32_t* __restrict__ counts) {
    const int row = (int)((blockIdx.x * blockDim.x + threadIdx.x) >> 5);
    const int lane = threadIdx.x & 31;
    if (row >= view.rows) return;
    const int cols = view.others * view.kt;
    uint32_t count = 0;
    for (int c = lane; c < cols; c += 32) {
        const int a = c / view.kt, k = c - a * view.kt;
        count += mask[row * view.row_stride + a * view.other_stride + k] != 0.0f;
    }
    for (int d = 16; d > 0; d >>= 1) count += __shfl_down_sync(FULL_WARP, count, d);
    if (lane == 0) counts[row] = count;
}

// row_ptr[r] = sum of counts[0..r), row_ptr[rows] = the total. One block of 1024 threads, chunks
// of 1024 rows in order (integer sums: exact).
extern "C" __global__ void csr_exclusive_scan(const uint32_t* __restrict__ counts, int rows, uint32_t* __restrict__ row_ptr) {
    __shared__ uint32_t warp_sums[32];
    __shared__ uint32_t carry;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    if (threadIdx.x == 0) carry = 0;
    __syncthreads();
    for (int base = 0; base < rows; base += blockDim.x) {
        const int r = base + threadIdx.x;
        const uint32_t v = r < rows ? counts[r] : 0;
        uint32_t x = v;  // inclusive scan within the warp
        for (int d = 1; d < 32; d <<= 1) {
            const uint32_t y = __shfl_up_sync(FULL_WARP, x, d);
            if (lane >= d) x += y;
        }
        if (lane == 31) warp_sums[warp] = x;
        __syncthreads();
        if (warp == 0) {  // inclusive scan of the warp totals
            uint32_t s = lane < warps ? warp_sums[lane] : 0;
            for (int d = 1; d < 32; d <<= 1) {
                const uint32_t y = __shfl_up_sync(FULL_WARP, s, d);
                if (lane >= d) s += y;
            }
            if (lane < warps) warp_sums[lane] = s;
        }
        __syncthreads();
        if (r < rows) row_ptr[r] = carry + (warp > 0 ? warp_sums[warp - 1] : 0) + x - v;
        __syncthreads();
        if (threadIdx.x == 0) carry += warp_sums[warps - 1];
        __syncthreads();
    }
    if (threadIdx.x == 0) row_ptr[rows] = carry;
}

// Writes row r's kept entries at row_ptr[r].. in ascending column order: one warp per row, each
// 32-column step placed by a ballot and the popcount of the lanes below.
extern "C" __global__ void csr_scatter(const float* __restrict__ w, const float* __restrict__ mask, CsrView view,
                                       const uint32_t* __restrict__ row_ptr, uint32_t* __restrict__ col,
                                       uint32_t* __restrict__ src, float* __restrict__ values) {
    const int row = (int)((blockIdx.x * blockDim.x + threadIdx.x) >> 5);
    const int lane = threadIdx.x & 31;
    if (row >= view.rows) return;
    const int cols = view.others * view.kt;
    uint32_t pos = row_ptr[row];
    for (int c0 = 0; c0 < cols; c0 += 32) {
        const int c = c0 + lane;
        long long idx = 0;
        bool keep = false;
        if (c < cols) {
            const int a = c / view.kt, k = c - a * view.kt;
            idx = row * view.row_stride + a * view.other_stride + k;
            keep = mask[idx] != 0.0f;
        }
        const uint32_t ballot = __ballot_sync(FULL_WARP, keep);
        if (keep) {
            const uint32_t at = pos + __popc(ballot & ((1u << lane) - 1u));
            col[at] = (uint32_t)c;
            src[at] = (uint32_t)idx;
            values[at] = w[idx];
        }
        pos += __popc(ballot);
    }
}

// values[e] = w[src[e]]: the kept values of a new weight under the same mask. Grid-stride.
extern "C" __global__ void csr_gather_values(const float* __restrict__ w, const uint32_t* __restrict__ src,
                                             float* __restrict__ values, uint32_t nnz) {
    for (uint32_t e = blockIdx.x * blockDim.x + threadIdx.x; e < nnz; e += gridDim.x * blockDim.x) values[e] = w[src[e]];
}

// Tiling of the two conv kernels: 256 threads, each computing POSITIONS output positions (strided
// by the block size, so loads coalesce along t·v) for ROWS rows in turn; a row's entries pass
// through shared memory CHUNK at a time, decoded once per block.
#define CSR_THREADS 256
#define CSR_POSITIONS 2
#define CSR_ROWS 4
#define CSR_CHUNK CSR_THREADS

// y: [n, c_out, t_out, v] = bias + (CSR over output channels) applied to x: [n, c_in, t_in, v].
// bias may be null. grid: (ceil(n*t_out*v / (CSR_THREADS*CSR_POSITIONS)), ceil(c_out / CSR_ROWS)).
extern "C" __global__ void csr_conv_forward_f32(const float* __restrict__ x, const uint32_t* __restrict__ row_ptr,
                                                const uint32_t* __restrict__ col, const float* __restrict__ values,
                                                const float* __restrict__ bias, float* __restrict__ y, ConvShape s) {
    __shared__ float s_value[CSR_CHUNK];
    __shared__ int s_offset[CSR_CHUNK];  // i*t_in*v + (k - pad)*v
    __shared__ int s_shift[CSR_CHUNK];   // k - pad
    const int tv = s.t_out * s.v;
    const long long positions = (long long)s.n * tv;
    long long x_base[CSR_POSITIONS], y_base[CSR_POSITIONS];
    int t_first[CSR_POSITIONS];  // t*stride: input frame of tap k = pad
    bool valid[CSR_POSITIONS];
#pragma unroll
    for (int q = 0; q < CSR_POSITIONS; ++q) {
        const long long p = (long long)blockIdx.x * (CSR_THREADS * CSR_POSITIONS) + q * CSR_THREADS + threadIdx.x;
        valid[q] = p < positions;
        const int n = valid[q] ? (int)(p / tv) : 0;
        const int r = valid[q] ? (int)(p - (long long)n * tv) : 0;
        const int t = r / s.v, j = r - t * s.v;
        t_first[q] = t * s.stride;
        x_base[q] = (long long)n * s.c_in * s.t_in * s.v + (long long)t * s.stride * s.v + j;
        y_base[q] = (long long)n * s.c_out * tv + r;
    }
    for (int rr = 0; rr < CSR_ROWS; ++rr) {
        const int o = blockIdx.y * CSR_ROWS + rr;
        if (o >= s.c_out) break;
        float acc[CSR_POSITIONS];
#pragma unroll
        for (int q = 0; q < CSR_POSITIONS; ++q) acc[q] = bias ? bias[o] : 0.0f;
        const uint32_t end = row_ptr[o + 1];
        for (uint32_t base = row_ptr[o]; base < end; base += CSR_CHUNK) {
            const int count = (int)min((uint32_t)CSR_CHUNK, end - base);
            if ((int)threadIdx.x < count) {
                const uint32_t c = col[base + threadIdx.x];
                const int i = (int)(c / s.kt), k = (int)(c - (uint32_t)i * s.kt);
                s_value[threadIdx.x] = values[base + threadIdx.x];
                s_offset[threadIdx.x] = (i * s.t_in + k - s.pad) * s.v;
                s_shift[threadIdx.x] = k - s.pad;
            }
            __syncthreads();
            for (int e = 0; e < count; ++e) {
#pragma unroll
                for (int q = 0; q < CSR_POSITIONS; ++q) {
                    const int frame = t_first[q] + s_shift[e];
                    if (valid[q] && frame >= 0 && frame < s.t_in)
                        acc[q] = __fadd_rn(acc[q], __fmul_rn(s_value[e], x[x_base[q] + s_offset[e]]));
                }
            }
            __syncthreads();
        }
#pragma unroll
        for (int q = 0; q < CSR_POSITIONS; ++q)
            if (valid[q]) y[y_base[q] + (long long)o * tv] = acc[q];
    }
}

// dx: [n, c_in, t_in, v] (overwritten) = (CSR over input channels) applied to dy: [n, c_out, t_out, v]:
// dx[n,i,s,j] = sum over entries (o, k) of row i with s + pad - k = t*stride, 0 <= t < t_out, of
// w * dy[n,o,t,j]. grid: (ceil(n*t_in*v / (CSR_THREADS*CSR_POSITIONS)), ceil(c_in / CSR_ROWS)).
extern "C" __global__ void csr_conv_backward_input_f32(const float* __restrict__ dy,
                                                       const uint32_t* __restrict__ row_ptr,
                                                       const uint32_t* __restrict__ col,
                                                       const float* __restrict__ values, float* __restrict__ dx,
                                                       ConvShape s) {
    __shared__ float s_value[CSR_CHUNK];
    __shared__ int s_offset[CSR_CHUNK];  // o*t_out*v
    __shared__ int s_shift[CSR_CHUNK];   // pad - k
    const int tv_in = s.t_in * s.v;
    const long long positions = (long long)s.n * tv_in;
    long long dy_base[CSR_POSITIONS], dx_base[CSR_POSITIONS];
    int frame[CSR_POSITIONS];
    bool valid[CSR_POSITIONS];
#pragma unroll
    for (int q = 0; q < CSR_POSITIONS; ++q) {
        const long long p = (long long)blockIdx.x * (CSR_THREADS * CSR_POSITIONS) + q * CSR_THREADS + threadIdx.x;
        valid[q] = p < positions;
        const int n = valid[q] ? (int)(p / tv_in) : 0;
        const int r = valid[q] ? (int)(p - (long long)n * tv_in) : 0;
        frame[q] = r / s.v;
        dy_base[q] = (long long)n * s.c_out * s.t_out * s.v + (r - frame[q] * s.v);
        dx_base[q] = (long long)n * s.c_in * tv_in + r;
    }
    for (int rr = 0; rr < CSR_ROWS; ++rr) {
        const int i = blockIdx.y * CSR_ROWS + rr;
        if (i >= s.c_in) break;
        float acc[CSR_POSITIONS];
#pragma unroll
        for (int q = 0; q < CSR_POSITIONS; ++q) acc[q] = 0.0f;
        const uint32_t end = row_ptr[i + 1];
        for (uint32_t base = row_ptr[i]; base < end; base += CSR_CHUNK) {
            const int count = (int)min((uint32_t)CSR_CHUNK, end - base);
            if ((int)threadIdx.x < count) {
                const uint32_t c = col[base + threadIdx.x];
                const int o = (int)(c / s.kt), k = (int)(c - (uint32_t)o * s.kt);
                s_value[threadIdx.x] = values[base + threadIdx.x];
                s_offset[threadIdx.x] = o * s.t_out * s.v;
                s_shift[threadIdx.x] = s.pad - k;
            }
            __syncthreads();
            for (int e = 0; e < count; ++e) {
#pragma unroll
                for (int q = 0; q < CSR_POSITIONS; ++q) {
                    const int shifted = frame[q] + s_shift[e];  // t*stride
                    if (!valid[q] || shifted < 0 || shifted % s.stride != 0) continue;
                    const int t = shifted / s.stride;
                    if (t < s.t_out)
                        acc[q] = __fadd_rn(acc[q], __fmul_rn(s_value[e], dy[dy_base[q] + s_offset[e] + t * s.v]));
                }
            }
            __syncthreads();
        }
#pragma unroll
        for (int q = 0; q < CSR_POSITIONS; ++q)
            if (valid[q]) dx[dx_base[q] + (long long)i * tv_in] = acc[q];
    }
}
