// Deterministic reductions and launch-shape loops shared by the normalisation, pooling and loss
// kernels. Every sum below adds in an order fixed by blockDim alone (a shuffle tree, then one warp
// over the per-warp sums), never with atomics, so a result has the same bits on every run.
// All of them expect blockDim.x to be a multiple of 32 (our launchers use 256).

#pragma once

#include <stdint.h>

// Rows × columns grid-stride loops for [rows, cols] tensors: blocks along y take rows, threads
// along x take the columns of each row (coalesced), so no per-element division is needed.
#define FOR_ROWS(row, rows) for (uint32_t row = blockIdx.y; row < (rows); row += gridDim.y)
#define FOR_COLS(j, cols) \
    for (uint32_t j = blockIdx.x * blockDim.x + threadIdx.x; j < (cols); j += gridDim.x * blockDim.x)

// Sum over the 32 lanes of a warp, the same value in every lane. A butterfly: lane i adds
// v_i + v_{i^m} and lane i^m adds v_{i^m} + v_i, equal by commutativity, so all lanes agree bit
// for bit.
template <typename T>
__device__ __forceinline__ T warp_allsum(T v) {
    for (int mask = 16; mask > 0; mask >>= 1) v += __shfl_xor_sync(0xffffffffu, v, mask);
    return v;
}

// Maximum over the 32 lanes of a warp, in every lane (exact: max does not round).
__device__ __forceinline__ float warp_allmax(float v) {
    for (int mask = 16; mask > 0; mask >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, mask));
    return v;
}

// Sum over the block, valid in thread 0. Every thread of the block must call it. scratch: shared
// [32] T; it may be reused by the next call (the leading barrier protects it).
template <typename T>
__device__ T block_sum(T v, T* scratch) {
    v = warp_allsum(v);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < (int)(blockDim.x >> 5) ? scratch[lane] : T(0);
        v = warp_allsum(v);
    }
    return v;
}
