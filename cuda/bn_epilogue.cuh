// The output epilogue of a batch norm, y = relu?(v·scale + shift + residual?), shared by
// batch_norm_apply_f32 and the kernels that apply an evaluation-mode batch norm to their own outputs
// before storing them (conv_gemm, graph_aggregate_forward_f32), so that both give the same bits:
// the affine in double rounded once to f32, then an f32 add (as add_assign_f32) and `v < 0 → 0`
// (as relu_forward_f32). Explicit __d*_rn / __fadd_rn, so nothing is contracted into an FMA.

#pragma once

#include <stdint.h>

// v through channel ch's affine (coef: [c, 2] double = (scale, shift); null: none), then
// residual[i] (null: none), then the ReLU (relu: 0 or 1).
__device__ __forceinline__ float bn_epilogue(float v, const double* __restrict__ coef, uint32_t ch,
                                             const float* __restrict__ residual, uint64_t i, uint32_t relu) {
    if (coef != nullptr) v = (float)__dadd_rn(__dmul_rn((double)v, coef[2 * ch]), coef[2 * ch + 1]);
    if (residual != nullptr) v = __fadd_rn(v, residual[i]);
    if (relu && v < 0.0f) v = 0.0f;
    return v;
}
