// What a kernel does to an output value before storing it, shared by batch_norm_apply_f32 and the
// kernels that finish their own outputs (conv_gemm, graph_aggregate_forward_f32), so that a fused
// kernel gives the same bits as the kernels it replaces:
//   v·scale + shift   an evaluation- or training-mode batch norm's affine, in double, rounded once
//                     to f32 (batch_norm_apply_f32)
//   + residual        an f32 add (add_assign_f32); with a mask, the residual counts only where the
//                     mask (a ReLU's output) is > 0, and 0 is added elsewhere (relu_backward_add_f32)
//   ReLU              `v < 0 → 0` (relu_forward_f32)
// Explicit __d*_rn / __fadd_rn, so nothing is contracted into an FMA.
//
// The residual and its mask are activations, f32 or bf16 (activation.cuh), read with load_act; the
// result is f32, which the caller stores once with store_act (rounded there for bf16 outputs). A
// kernel that finishes its own outputs passes v as it would have stored it (stored_value: rounded
// for bf16 outputs), since the separate ops read it back from storage.

#pragma once

#include <stdint.h>

#include "activation.cuh"

// v through channel ch's affine (coef: [c, 2] double = (scale, shift); null: none), then
// residual[i] (null: none) masked by residual_mask[i] > 0 (null: unmasked), then the ReLU
// (relu: 0 or 1). Act: float or __nv_bfloat16, the residual's and the mask's type.
template <typename Act>
__device__ __forceinline__ float output_epilogue_act(float v, const double* __restrict__ coef, uint32_t ch,
                                                     const Act* __restrict__ residual,
                                                     const Act* __restrict__ residual_mask, uint64_t i,
                                                     uint32_t relu) {
    if (coef != nullptr) v = (float)__dadd_rn(__dmul_rn((double)v, coef[2 * ch]), coef[2 * ch + 1]);
    if (residual != nullptr)
        v = __fadd_rn(v, residual_mask != nullptr && load_act(residual_mask, i) <= 0.0f ? 0.0f
                                                                                       : load_act(residual, i));
    if (relu && v < 0.0f) v = 0.0f;
    return v;
}

// output_epilogue_act for f32 and for bf16 activations, by the residual's pointer type (a null
// residual_mask may be passed as nullptr).
__device__ __forceinline__ float output_epilogue(float v, const double* __restrict__ coef, uint32_t ch,
                                                 const float* __restrict__ residual,
                                                 const float* __restrict__ residual_mask, uint64_t i,
                                                 uint32_t relu) {
    return output_epilogue_act(v, coef, ch, residual, residual_mask, i, relu);
}
__device__ __forceinline__ float output_epilogue(float v, const double* __restrict__ coef, uint32_t ch,
                                                 const __nv_bfloat16* __restrict__ residual,
                                                 const __nv_bfloat16* __restrict__ residual_mask, uint64_t i,
                                                 uint32_t relu) {
    return output_epilogue_act(v, coef, ch, residual, residual_mask, i, relu);
}
