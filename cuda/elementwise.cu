// Element-wise ops over flat f32 buffers of n elements: fill, add, multiply (for masked weights
// W ⊙ M and the straight-through gradients), scale, ReLU forward and backward (also added onto a
// gradient), counter-based
// dropout and |x|. Every product and sum is rounded separately (__fmul_rn, __fadd_rn), as the CPU
// backend computes them, so the results are identical bit for bit. Grid-stride loops.

#include <stdint.h>

#define GRID_STRIDE(i, n) \
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (uint64_t)gridDim.x * blockDim.x)

extern "C" __global__ void fill_f32(float* x, float value, uint64_t n) {
    GRID_STRIDE(i, n) x[i] = value;
}

// acc += x
extern "C" __global__ void add_assign_f32(float* acc, const float* x, uint64_t n) {
    GRID_STRIDE(i, n) acc[i] = __fadd_rn(acc[i], x[i]);
}

// y = a ⊙ b
extern "C" __global__ void mul_f32(const float* a, const float* b, float* y, uint64_t n) {
    GRID_STRIDE(i, n) y[i] = __fmul_rn(a[i], b[i]);
}

// acc += a ⊙ b (product rounded, then the sum: no FMA)
extern "C" __global__ void mul_acc_f32(const float* a, const float* b, float* acc, uint64_t n) {
    GRID_STRIDE(i, n) acc[i] = __fadd_rn(acc[i], __fmul_rn(a[i], b[i]));
}

// x *= s
extern "C" __global__ void scale_f32(float* x, float s, uint64_t n) {
    GRID_STRIDE(i, n) x[i] = __fmul_rn(x[i], s);
}

// x = max(x, 0); a NaN stays NaN, as on the CPU (only x < 0 is replaced)
extern "C" __global__ void relu_forward_f32(float* x, uint64_t n) {
    GRID_STRIDE(i, n) if (x[i] < 0.0f) x[i] = 0.0f;
}

// dy = 0 where the ReLU output y <= 0
extern "C" __global__ void relu_backward_f32(const float* y, float* dy, uint64_t n) {
    GRID_STRIDE(i, n) if (y[i] <= 0.0f) dy[i] = 0.0f;
}

// acc += dy where the ReLU output y > 0 (or NaN), else += 0: relu_backward of a copy of dy, then
// add_assign, in one pass
extern "C" __global__ void relu_backward_add_f32(const float* y, const float* dy, float* acc, uint64_t n) {
    GRID_STRIDE(i, n) acc[i] = __fadd_rn(acc[i], y[i] <= 0.0f ? 0.0f : dy[i]);
}

// The dropout uniform of element i: SplitMix64 of seed ^ i·golden, top 24 bits, in [0, 1).
// Must equal `backend::dropout_uniform` on the host.
__device__ __forceinline__ float dropout_uniform(uint64_t seed, uint64_t i) {
    uint64_t z = seed ^ (i * 0x9E3779B97F4A7C15ull);
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

// Inverted dropout in place: kept (scaled by keep_scale = 1/(1-p)) iff uniform >= p, else 0.
extern "C" __global__ void dropout_f32(float* x, float p, float keep_scale, uint64_t seed, uint64_t n) {
    GRID_STRIDE(i, n) x[i] = dropout_uniform(seed, i) >= p ? __fmul_rn(x[i], keep_scale) : 0.0f;
}

// y = |x|
extern "C" __global__ void abs_f32(const float* x, float* y, uint64_t n) {
    GRID_STRIDE(i, n) y[i] = fabsf(x[i]);
}
