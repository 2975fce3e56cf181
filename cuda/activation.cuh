// How a kernel reads and writes activations (the tensors a layer passes on, and their gradients):
// f32, or bf16 (bf16 mixed precision: 2 bytes a value, half the traffic). A kernel that touches
// activations is a template over the activation type `Act` (float or __nv_bfloat16), reads them
// with load_act (to f32) and writes them with store_act (from f32, rounded to nearest even for
// bf16); every sum and product stays in f32, parameters and statistics stay f32. Each such kernel
// is instantiated twice, as `<name>` for f32 activations and `<name>_bf16act` for bf16 ones, with
// the same parameter list but the activation pointers' type.
//
// The CPU backend's bf16 storage (src/backend/storage.rs) computes the same f32 value and rounds
// it the same way, so a bf16 kernel equals it up to the order of the f32 sums.

#pragma once

#include <cuda_bf16.h>
#include <stdint.h>

__device__ __forceinline__ float load_act(const float* p, uint64_t i) { return p[i]; }
__device__ __forceinline__ float load_act(const __nv_bfloat16* p, uint64_t i) { return __bfloat162float(p[i]); }

__device__ __forceinline__ void store_act(float* p, uint64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store_act(__nv_bfloat16* p, uint64_t i, float v) { p[i] = __float2bfloat16_rn(v); }

// v as the activation type keeps it: itself for f32, rounded to bf16 and back for bf16 (what a
// value is after a store and a load, for statistics gathered from stored values).
__device__ __forceinline__ float stored_value(const float*, float v) { return v; }
__device__ __forceinline__ float stored_value(const __nv_bfloat16*, float v) {
    return __bfloat162float(__float2bfloat16_rn(v));
}
