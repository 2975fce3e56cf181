// Element-wise ops over flat buffers of n elements: fill, add, multiply (for masked weights
// W ⊙ M and the straight-through gradients), scale, ReLU forward and backward (also added onto a
// gradient), counter-based
// dropout and |x|. Every product and sum is rounded separately (__fmul_rn, __fadd_rn), as the CPU
// backend computes them, so the results are identical bit for bit. Grid-stride loops.
// The ops on activations come in f32 and bf16-activation forms (`<name>` and `<name>_bf16act`,
// activation.cuh): the bf16 form computes in f32 and rounds the stored value. multiply and |x|
// only see parameters, so they are f32 only.

#include <stdint.h>

#include "activation.cuh"

#define GRID_STRIDE(i, n) \
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (uint64_t)gridDim.x * blockDim.x)

// ---- ops on activations (Act: float or __nv_bfloat16) -------------------------------------------

// x = value (rounded to Act)
template <typename Act>
__device__ __forceinline__ void fill(Act* x, float value, uint64_t n) {
    GRID_STRIDE(i, n) store_act(x, i, value);
}

// acc += x
template <typename Act>
__device__ __forceinline__ void add_assign(Act* acc, const Act* x, uint64_t n) {
    GRID_STRIDE(i, n) store_act(acc, i, __fadd_rn(load_act(acc, i), load_act(x, i)));
}

// x *= s
template <typename Act>
__device__ __forceinline__ void scale(Act* x, float s, uint64_t n) {
    GRID_STRIDE(i, n) store_act(x, i, __fmul_rn(load_act(x, i), s));
}

// x = max(x, 0); a NaN stays NaN, as on the CPU (only x < 0 is replaced)
template <typename Act>
__device__ __forceinline__ void relu_forward(Act* x, uint64_t n) {
    GRID_STRIDE(i, n) if (load_act(x, i) < 0.0f) store_act(x, i, 0.0f);
}

// dy = 0 where the ReLU output y <= 0
template <typename Act>
__device__ __forceinline__ void relu_backward(const Act* y, Act* dy, uint64_t n) {
    GRID_STRIDE(i, n) if (load_act(y, i) <= 0.0f) store_act(dy, i, 0.0f);
}

// acc += dy where the ReLU output y > 0 (or NaN), else += 0: relu_backward of a copy of dy, then
// add_assign, in one pass
template <typename Act>
__device__ __forceinline__ void relu_backward_add(const Act* y, const Act* dy, Act* acc, uint64_t n) {
    GRID_STRIDE(i, n) store_act(acc, i, __fadd_rn(load_act(acc, i), load_act(y, i) <= 0.0f ? 0.0f : load_act(dy, i)));
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
template <typename Act>
__device__ __forceinline__ void dropout(Act* x, float p, float keep_scale, uint64_t seed, uint64_t n) {
    GRID_STRIDE(i, n) store_act(x, i, dropout_uniform(seed, i) >= p ? __fmul_rn(load_act(x, i), keep_scale) : 0.0f);
}

// The entry points of the ops above, with activations of type Act, named <name>SUFFIX.
#define ELEMENTWISE_ACT_KERNELS(SUFFIX, Act)                                                                    \
    extern "C" __global__ void fill_f32##SUFFIX(Act* x, float value, uint64_t n) { fill(x, value, n); }         \
    extern "C" __global__ void add_assign_f32##SUFFIX(Act* acc, const Act* x, uint64_t n) {                     \
        add_assign(acc, x, n);                                                                                  \
    }                                                                                                           \
    extern "C" __global__ void scale_f32##SUFFIX(Act* x, float s, uint64_t n) { scale(x, s, n); }               \
    extern "C" __global__ void relu_forward_f32##SUFFIX(Act* x, uint64_t n) { relu_forward(x, n); }             \
    extern "C" __global__ void relu_backward_f32##SUFFIX(const Act* y, Act* dy, uint64_t n) {                   \
        relu_backward(y, dy, n);                                                                                \
    }                                                                                                           \
    extern "C" __global__ void relu_backward_add_f32##SUFFIX(const Act* y, const Act* dy, Act* acc, uint64_t n) { \
        relu_backward_add(y, dy, acc, n);                                                                       \
    }                                                                                                           \
    extern "C" __global__ void dropout_f32##SUFFIX(Act* x, float p, float keep_scale, uint64_t seed, uint64_t n) { \
        dropout(x, p, keep_scale, seed, n);                                                                     \
    }

ELEMENTWISE_ACT_KERNELS(, float)
ELEMENTWISE_ACT_KERNELS(_bf16act, __nv_bfloat16)

// ---- ops on parameters (f32 only) ---------------------------------------------------------------

// y = a ⊙ b
extern "C" __global__ void mul_f32(const float* a, const float* b, float* y, uint64_t n) {
    GRID_STRIDE(i, n) y[i] = __fmul_rn(a[i], b[i]);
}

// acc += a ⊙ b (product rounded, then the sum: no FMA)
extern "C" __global__ void mul_acc_f32(const float* a, const float* b, float* acc, uint64_t n) {
    GRID_STRIDE(i, n) acc[i] = __fadd_rn(acc[i], __fmul_rn(a[i], b[i]));
}

// y = |x|
extern "C" __global__ void abs_f32(const float* x, float* y, uint64_t n) {
    GRID_STRIDE(i, n) y[i] = fabsf(x[i]);
}
