// Axis permutation of a contiguous f32 tensor of rank <= 6 into a contiguous output: each thread
// computes one output element's input offset from the output index (a mixed-radix decomposition
// over the output shape with the permuted input strides). Reads are gathered, writes coalesced.

#include <stdint.h>

#define MAX_RANK 6

struct PermuteGeom {
    uint64_t out_dims[MAX_RANK];     // shape of y, unused axes 1
    uint64_t in_strides[MAX_RANK];   // input stride of each output axis, unused axes 0
    int rank;
};

extern "C" __global__ void permute_f32(const float* x, PermuteGeom g, float* y, uint64_t n) {
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (uint64_t)gridDim.x * blockDim.x) {
        uint64_t rest = i, src = 0;
        for (int d = g.rank - 1; d >= 0; --d) {
            const uint64_t idx = rest % g.out_dims[d];
            rest /= g.out_dims[d];
            src += idx * g.in_strides[d];
        }
        y[i] = x[src];
    }
}
