// Global mean pooling over persons and positions: x: [n·persons, c, s] → y: [n, c],
// y[i, ch] = mean over (m, j) of x[i·persons + m, ch, j], and its backward. As the CPU reference: in
// double, the mean over s per person, then the mean over persons.
// Comes in f32 and bf16-activation forms (activation.cuh): x, y, dy and dx are activations (float or
// __nv_bfloat16); the sums stay in double and only the store is rounded.

#include "activation.cuh"
#include "reduce.cuh"

// One warp per output o = i·c + ch (warp-uniform loop, so the shuffles see the full warp).
template <typename Act>
__device__ __forceinline__ void mean_pool_forward(const Act* __restrict__ x, uint32_t n, uint32_t persons, uint32_t c,
                                                  uint32_t s, Act* __restrict__ y) {
    const uint32_t warps = blockDim.x / 32, lane = threadIdx.x & 31;
    for (uint32_t o = blockIdx.x * warps + threadIdx.x / 32; o < n * c; o += gridDim.x * warps) {
        const uint32_t i = o / c, ch = o - i * c;
        double mean_of_persons = 0.0;
        for (uint32_t m = 0; m < persons; ++m) {
            const Act* row = x + (((uint64_t)i * persons + m) * c + ch) * s;
            double sum = 0.0;
            for (uint32_t j = lane; j < s; j += 32) sum += (double)load_act(row, j);
            mean_of_persons += warp_allsum(sum) / (double)s;
        }
        if (lane == 0) store_act(y, o, (float)(mean_of_persons / (double)persons));
    }
}

// dx[r, ch, :] = dy[r / persons, ch]·inv, inv = 1/(persons·s) in double (the CPU's rounding), for
// the rows r·c + ch of s columns; dx overwritten.
template <typename Act>
__device__ __forceinline__ void mean_pool_backward(const Act* __restrict__ dy, uint32_t n, uint32_t persons, uint32_t c,
                                                   uint32_t s, double inv, Act* __restrict__ dx) {
    FOR_ROWS(row, n * persons * c) {
        const uint32_t sample = row / (persons * c), ch = row % c;
        const float value = (float)__dmul_rn((double)load_act(dy, sample * c + ch), inv);
        FOR_COLS(j, s) store_act(dx, (uint64_t)row * s + j, value);
    }
}

extern "C" __global__ void mean_pool_forward_f32(const float* __restrict__ x, uint32_t n, uint32_t persons,
                                                 uint32_t c, uint32_t s, float* __restrict__ y) {
    mean_pool_forward(x, n, persons, c, s, y);
}

extern "C" __global__ void mean_pool_forward_f32_bf16act(const __nv_bfloat16* __restrict__ x, uint32_t n,
                                                         uint32_t persons, uint32_t c, uint32_t s,
                                                         __nv_bfloat16* __restrict__ y) {
    mean_pool_forward(x, n, persons, c, s, y);
}

extern "C" __global__ void mean_pool_backward_f32(const float* __restrict__ dy, uint32_t n, uint32_t persons,
                                                  uint32_t c, uint32_t s, double inv, float* __restrict__ dx) {
    mean_pool_backward(dy, n, persons, c, s, inv, dx);
}

extern "C" __global__ void mean_pool_backward_f32_bf16act(const __nv_bfloat16* __restrict__ dy, uint32_t n,
                                                          uint32_t persons, uint32_t c, uint32_t s, double inv,
                                                          __nv_bfloat16* __restrict__ dx) {
    mean_pool_backward(dy, n, persons, c, s, inv, dx);
}
