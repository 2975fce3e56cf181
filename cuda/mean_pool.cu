// Global mean pooling over persons and positions: x: [n·persons, c, s] f32 → y: [n, c] f32,
// y[i, ch] = mean over (m, j) of x[i·persons + m, ch, j], and its backward. As the CPU reference: in
// double, the mean over s per person, then the mean over persons.

#include "reduce.cuh"

// One warp per output o = i·c + ch (warp-uniform loop, so the shuffles see the full warp).
extern "C" __global__ void mean_pool_forward_f32(const float* __restrict__ x, uint32_t n, uint32_t persons,
                                                 uint32_t c, uint32_t s, float* __restrict__ y) {
    const uint32_t warps = blockDim.x / 32, lane = threadIdx.x & 31;
    for (uint32_t o = blockIdx.x * warps + threadIdx.x / 32; o < n * c; o += gridDim.x * warps) {
        const uint32_t i = o / c, ch = o - i * c;
        double mean_of_persons = 0.0;
        for (uint32_t m = 0; m < persons; ++m) {
            const float* row = x + (((uint64_t)i * persons + m) * c + ch) * s;
            double sum = 0.0;
            for (uint32_t j = lane; j < s; j += 32) sum += (double)row[j];
            mean_of_persons += warp_allsum(sum) / (double)s;
        }
        if (lane == 0) y[o] = (float)(mean_of_persons / (double)persons);
    }
}

// dx[r, ch, :] = dy[r / persons, ch]·inv, inv = 1/(persons·s) in double (the CPU's rounding), for
// the rows r·c + ch of s columns; dx overwritten.
extern "C" __global__ void mean_pool_backward_f32(const float* __restrict__ dy, uint32_t n, uint32_t persons,
                                                  uint32_t c, uint32_t s, double inv, float* __restrict__ dx) {
    FOR_ROWS(row, n * persons * c) {
        const uint32_t sample = row / (persons * c), ch = row % c;
        const float value = (float)__dmul_rn((double)dy[sample * c + ch], inv);
        FOR_COLS(j, s) dx[(uint64_t)row * s + j] = value;
    }
}
