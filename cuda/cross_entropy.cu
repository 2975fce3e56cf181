// Softmax cross-entropy with label smoothing, averaged over n rows of logits: [n, classes],
// labels: [n] u32. Target t_j = on at the label, off elsewhere (on = 1 − ε + ε/C, off = ε/C,
// PyTorch's definition). As the CPU reference, in double and max-subtracted:
//   row_loss[i] = −Σ_j t_j·(z_j − log_z),  log_z = max + log Σ_j exp(z_j − max)
//   dlogits[i, j] = (exp(z_j − max)/Σ exp − t_j)/n   (overwritten)
//   loss[0] = Σ_i row_loss[i] / n, summed by one block in a fixed order (no atomics).
// A label outside 0..classes reads nothing outside the row: its row loss (hence the loss) and its
// gradients are NaN, so the trainer stops at the non-finite loss.
// The row kernel comes in f32 and bf16-activation forms (activation.cuh): logits and dlogits are
// activations (float or __nv_bfloat16); the math stays in double, dlogits is rounded to f32 and then
// to bf16 on the store, as the CPU computes it; row_loss and the loss stay double and f32.

#include <math.h>

#include "activation.cuh"
#include "reduce.cuh"

// One warp per row (warp-uniform loop). row_loss: [n] double.
template <typename Act>
__device__ __forceinline__ void cross_entropy_rows(const Act* __restrict__ logits, const uint32_t* __restrict__ labels,
                                                   uint32_t n, uint32_t classes, double on, double off,
                                                   Act* __restrict__ dlogits, double* __restrict__ row_loss) {
    const uint32_t warps = blockDim.x / 32, lane = threadIdx.x & 31;
    for (uint32_t i = blockIdx.x * warps + threadIdx.x / 32; i < n; i += gridDim.x * warps) {
        const Act* z = logits + (uint64_t)i * classes;
        Act* d = dlogits + (uint64_t)i * classes;
        const uint32_t label = labels[i];
        if (label >= classes) {
            for (uint32_t j = lane; j < classes; j += 32) store_act(d, j, __int_as_float(0x7fc00000));  // NaN
            if (lane == 0) row_loss[i] = __longlong_as_double(0x7ff8000000000000ll);
            continue;
        }
        float max = -INFINITY;
        for (uint32_t j = lane; j < classes; j += 32) max = fmaxf(max, load_act(z, j));
        max = warp_allmax(max);
        double sum_exp = 0.0;
        for (uint32_t j = lane; j < classes; j += 32) sum_exp += exp((double)load_act(z, j) - (double)max);
        sum_exp = warp_allsum(sum_exp);
        const double log_z = (double)max + log(sum_exp);
        double loss = 0.0;
        for (uint32_t j = lane; j < classes; j += 32) {
            const double target = j == label ? on : off;
            const double zj = (double)load_act(z, j);
            loss += target * (zj - log_z);
            const double p = exp(zj - (double)max) / sum_exp;
            store_act(d, j, (float)((p - target) / (double)n));
        }
        loss = warp_allsum(loss);
        if (lane == 0) row_loss[i] = -loss;
    }
}

extern "C" __global__ void cross_entropy_rows_f32(const float* __restrict__ logits,
                                                  const uint32_t* __restrict__ labels, uint32_t n, uint32_t classes,
                                                  double on, double off, float* __restrict__ dlogits,
                                                  double* __restrict__ row_loss) {
    cross_entropy_rows(logits, labels, n, classes, on, off, dlogits, row_loss);
}

extern "C" __global__ void cross_entropy_rows_f32_bf16act(const __nv_bfloat16* __restrict__ logits,
                                                          const uint32_t* __restrict__ labels, uint32_t n,
                                                          uint32_t classes, double on, double off,
                                                          __nv_bfloat16* __restrict__ dlogits,
                                                          double* __restrict__ row_loss) {
    cross_entropy_rows(logits, labels, n, classes, on, off, dlogits, row_loss);
}

// loss[0] = Σ_i row_loss[i] / n. One block: thread t adds rows t, t + blockDim, ... in order,
// then the block's fixed tree.
extern "C" __global__ void cross_entropy_mean_f32(const double* __restrict__ row_loss, uint32_t n,
                                                  float* __restrict__ loss) {
    __shared__ double scratch[32];
    double sum = 0.0;
    for (uint32_t i = threadIdx.x; i < n; i += blockDim.x) sum += row_loss[i];
    sum = block_sum(sum, scratch);
    if (threadIdx.x == 0) loss[0] = (float)(sum / (double)n);
}
