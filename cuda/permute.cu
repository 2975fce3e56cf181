// Axis permutation of a contiguous tensor of rank <= 6 into a contiguous output: each thread
// computes one output element's input offset from the output index (a mixed-radix decomposition
// over the output shape with the permuted input strides). Reads are gathered, writes coalesced.
// Comes in f32 and bf16-activation forms (activation.cuh): permute_f32 (f32 → f32),
// permute_f32_bf16act (bf16 → bf16), permute_f32_to_bf16act (f32 → bf16: the data batch norm's
// f32 output stored as the backbone's first bf16 activation) and permute_bf16act_to_f32 (bf16 →
// f32: that activation's gradient into the data batch norm's f32 backward). A pure copy: the only
// rounding is a bf16 store.

#include <stdint.h>

#include "activation.cuh"

#define MAX_RANK 6

struct PermuteGeom {
    uint64_t out_dims[MAX_RANK];     // shape of y, unused axes 1
    uint64_t in_strides[MAX_RANK];   // input stride of each output axis, unused axes 0
    int rank;
};

// In, Out: float or __nv_bfloat16.
template <typename In, typename Out>
__device__ __forceinline__ void permute(const In* x, const PermuteGeom& g, Out* y, uint64_t n) {
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (uint64_t)gridDim.x * blockDim.x) {
        uint64_t rest = i, src = 0;
        for (int d = g.rank - 1; d >= 0; --d) {
            const uint64_t idx = rest % g.out_dims[d];
            rest /= g.out_dims[d];
            src += idx * g.in_strides[d];
        }
        store_act(y, i, load_act(x, src));
    }
}

extern "C" __global__ void permute_f32(const float* x, PermuteGeom g, float* y, uint64_t n) { permute(x, g, y, n); }

extern "C" __global__ void permute_f32_bf16act(const __nv_bfloat16* x, PermuteGeom g, __nv_bfloat16* y, uint64_t n) {
    permute(x, g, y, n);
}

extern "C" __global__ void permute_f32_to_bf16act(const float* x, PermuteGeom g, __nv_bfloat16* y, uint64_t n) {
    permute(x, g, y, n);
}

extern "C" __global__ void permute_bf16act_to_f32(const __nv_bfloat16* x, PermuteGeom g, float* y, uint64_t n) {
    permute(x, g, y, n);
}
