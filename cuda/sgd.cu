// The optimizer step on the device: one fused multi-tensor SGD launch over every parameter
// (PyTorch's order of operations and FMA forms, so f32 results match torch.optim.SGD on the CPU bit
// for bit), the global squared gradient norm, and the clip factor from it. The learning rate and
// the clip factor are read from device memory, so a captured step needs no host update.

#include <stdint.h>

// One parameter tensor: value, gradient and momentum buffer, each [len] f32.
struct SgdTensor {
    float* param;
    const float* grad;
    float* momentum;
    uint64_t len;
};

struct SgdHyper {
    float momentum;
    float dampening_keep;  // 1 - dampening
    float weight_decay;
    int nesterov;
    int first_step;  // momentum buffers are empty: buf = g'
    int use_momentum;
};

// blockIdx.y selects the tensor; blocks along x stride over its elements.
// lr: [1]; clip_scale: [1] or null.
extern "C" __global__ void sgd_multi_tensor_update_f32(const SgdTensor* tensors, SgdHyper h, const float* lr,
                                                      const float* clip_scale) {
    const SgdTensor t = tensors[blockIdx.y];
    const float neg_lr = -lr[0];
    const float scale = clip_scale ? clip_scale[0] : 1.0f;
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < t.len; i += (uint64_t)gridDim.x * blockDim.x) {
        float g = t.grad[i];
        if (clip_scale) g = g * scale;
        const float p = t.param[i];
        if (h.weight_decay != 0.0f) g = __fmaf_rn(p, h.weight_decay, g);  // g' = g + wd·p
        float d = g;
        if (h.use_momentum) {
            float buf;
            if (h.first_step) {
                buf = g;
            } else if (h.dampening_keep == 1.0f) {
                buf = __fadd_rn(__fmul_rn(t.momentum[i], h.momentum), g);  // two roundings, as PyTorch
            } else {
                buf = __fmaf_rn(g, h.dampening_keep, __fmul_rn(t.momentum[i], h.momentum));
            }
            t.momentum[i] = buf;
            d = h.nesterov ? __fmaf_rn(buf, h.momentum, g) : buf;
        }
        t.param[i] = __fmaf_rn(d, neg_lr, p);  // p − lr·d
    }
}

// Per-block partial sums of squares over all tensors (blockIdx.y = tensor), in fixed order within a
// block; partials: [num_tensors · gridDim.x].
extern "C" __global__ void grad_sum_squares_partial_f32(const SgdTensor* tensors, float* partials) {
    __shared__ float warp_sums[32];
    const SgdTensor t = tensors[blockIdx.y];
    float acc = 0.0f;
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < t.len; i += (uint64_t)gridDim.x * blockDim.x) {
        const float g = t.grad[i];
        acc = __fmaf_rn(g, g, acc);
    }
    for (int offset = 16; offset > 0; offset >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, offset);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) warp_sums[warp] = acc;
    __syncthreads();
    if (warp == 0) {
        acc = lane < (int)(blockDim.x >> 5) ? warp_sums[lane] : 0.0f;
        for (int offset = 16; offset > 0; offset >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, offset);
        if (lane == 0) partials[blockIdx.y * gridDim.x + blockIdx.x] = acc;
    }
}

// One block sums the partials in a fixed order (deterministic): out[0] = Σ partials, in double.
extern "C" __global__ void sum_partials_f32(const float* partials, uint64_t n, float* out) {
    __shared__ double sums[256];
    double acc = 0.0;
    for (uint64_t i = threadIdx.x; i < n; i += blockDim.x) acc += (double)partials[i];
    sums[threadIdx.x] = acc;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if ((int)threadIdx.x < stride) sums[threadIdx.x] += sums[threadIdx.x + stride];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[0] = (float)sums[0];
}

// scale[0] = min(1, max_norm / (sqrt(sq_norm[0]) + 1e-6)), as torch.nn.utils.clip_grad_norm_.
extern "C" __global__ void clip_scale_from_sq_norm_f32(const float* sq_norm, float max_norm, float* scale) {
    if (threadIdx.x == 0 && blockIdx.x == 0) {
        const float coef = max_norm / (sqrtf(sq_norm[0]) + 1e-6f);
        scale[0] = fminf(coef, 1.0f);
    }
}
