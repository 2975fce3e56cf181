// Kernels with one planted bug each, which the emulator's checks must report at the line marked
// `BUG:`. Compiled by the project's nvcc with the project's flags (-O3 -lineinfo).
#include <cstdint>

// Writes one element past the end of `out` (n elements).
extern "C" __global__ void store_past_the_end(float* out, uint32_t n) {
    uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) out[i] = 1.0f;  // BUG: <= instead of <
}

// Reads a neighbour's shared value without __syncthreads between the write and the read.
extern "C" __global__ void missing_syncthreads(const float* x, float* out) {
    __shared__ float tile[128];
    uint32_t t = threadIdx.x;
    tile[t] = x[t];
    out[t] = tile[(t + 64) % 128];  // BUG: no __syncthreads() before reading another warp's value
}

// Reads the destination of a cp.async before waiting for it.
extern "C" __global__ void cp_async_read_before_wait(const float* x, float* out) {
    __shared__ float tile[64];
    uint32_t t = threadIdx.x;
    uint32_t dst = (uint32_t)__cvta_generic_to_shared(&tile[t]);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(dst), "l"(x + t) : "memory");
    asm volatile("cp.async.commit_group;" ::: "memory");
    out[t] = tile[t];  // BUG: read before cp.async.wait_group
    asm volatile("cp.async.wait_group 0;" ::: "memory");
}

// A full-warp shuffle that half of the warp does not reach.
extern "C" __global__ void divergent_shuffle(const float* x, float* out) {
    uint32_t t = threadIdx.x;
    float v = x[t];
    if (t % 32 < 16) {
        v += __shfl_xor_sync(0xffffffffu, v, 1);  // BUG: lanes 16..31 never get here
    }
    out[t] = v;
}

// Sums shared values of which only half were written.
extern "C" __global__ void uninitialized_shared_read(float* out) {
    __shared__ float tile[64];
    uint32_t t = threadIdx.x;
    if (t < 32) tile[t] = (float)t;
    __syncthreads();
    out[t] = tile[t];  // BUG: tile[32..63] were never written
}

// A 16-byte vector load from an address that is only 4-byte aligned.
extern "C" __global__ void misaligned_vector_load(const float* x, float* out) {
    uint32_t t = threadIdx.x;
    const float4* p = reinterpret_cast<const float4*>(x + 1 + 4 * t);
    float4 v = *p;  // BUG: x + 1 is not 16-byte aligned
    out[t] = v.x + v.y + v.z + v.w;
}

// The pre-Volta warp-synchronous reduction: lanes exchange through shared memory relying on
// lockstep, with no __syncwarp between the steps.
extern "C" __global__ void warp_exchange_without_syncwarp(const float* x, float* out) {
    __shared__ volatile float s[32];
    uint32_t lane = threadIdx.x;
    s[lane] = x[lane];
    if (lane < 16) s[lane] += s[lane + 16];  // BUG: reads lane + 16's store with no __syncwarp
    if (lane < 8) s[lane] += s[lane + 8];
    if (lane == 0) out[0] = s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

// Two blocks write the same output element.
extern "C" __global__ void blocks_write_the_same_element(float* out) {
    if (threadIdx.x == 0) out[0] = (float)blockIdx.x;  // BUG: every block writes out[0]
}

// Reads device memory that nothing ever wrote.
extern "C" __global__ void uninitialized_global_read(const float* never_written, float* out) {
    uint32_t t = threadIdx.x;
    out[t] = never_written[t] * 2.0f;  // BUG: the input was allocated but never written
}
