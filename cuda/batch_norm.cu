// Batch normalisation over x: [n, c, s] (BatchNorm1d: s = t; BatchNorm2d: s = t·v), statistics
// per channel over (n, s), every sum in double, as the CPU reference computes them:
//   train     mean, biased var → save_mean, save_invstd = 1/sqrt(var + eps), y = x·scale + shift,
//             running stats as PyTorch (momentum; the unbiased variance for running_var)
//   eval      y from the running stats
//   backward  dx = γ·invstd/m·(m·dy − Σdy − x̂·Σ(dy·x̂)) overwritten; dgamma += Σ dy·x̂, dbeta += Σ dy
// Fused around them (so neither costs a pass over the activation of its own):
//   epilogue  train and eval write y = relu?(bn(x) + residual?): bn(x) rounded to f32, then an f32
//             add and `v < 0 → 0`, the operations of add_assign_f32 and relu_forward_f32
//   ReLU mask the backward reads dy through the mask of the ReLU that followed: 0 where its output
//             y <= 0, as relu_backward_f32 (the kernels take y, or null for no ReLU)
//
// The statistics are partial moments (bn_moments.cuh): either the kernel that wrote x gathered them
// (conv_gemm, graph_aggregate_forward_f32), or batch_norm_stats_partial_f32 reads x once for them,
// each block summing its values shifted by its first one, in double. The finalize merges them.
//
// Each reduction is split into a fixed partition: the n·parts segments of a channel (a segment is
// `chunk` columns of one sample) are dealt to gridDim.x blocks in order, each block sums its own in
// a fixed tree (reduce.cuh), and one block per channel merges the partials in a fixed order.
// The per-element kernels then use per-channel coefficients computed in double with the CPU's
// formulas and roundings (explicit __d*_rn, so nothing is contracted into an FMA).
//
// The kernels that read activations (x, y, dy, the residual, the ReLU output; not the statistics,
// coefficients or parameters, which stay f32/double) come in f32 and bf16-activation forms,
// `<name>` and `<name>_bf16act` (activation.cuh): the bf16 form reads through load_act, computes
// exactly as the f32 one, and rounds what it stores (y, dx) with store_act. The finalize and
// coefficient kernels read no activation and are f32 only.

#include "activation.cuh"
#include "output_epilogue.cuh"
#include "bn_moments.cuh"
#include "reduce.cuh"

struct BnShape {
    uint32_t n;
    uint32_t c;
    uint32_t s;
    uint32_t chunk;  // columns per segment
    uint32_t parts;  // segments per sample: ceil(s / chunk)
};

// Calls f(i) for every element index i of channel ch that this block owns (see the file comment).
template <typename F>
static __device__ void for_block_channel_elements(const BnShape& g, uint32_t ch, F f) {
    const uint32_t segments = g.n * g.parts;
    for (uint32_t q = blockIdx.x; q < segments; q += gridDim.x) {
        const uint32_t sample = q / g.parts, part = q - sample * g.parts;
        const uint64_t base = ((uint64_t)sample * g.c + ch) * g.s;
        const uint32_t end = min(g.s, (part + 1) * g.chunk);
        for (uint32_t j = part * g.chunk + threadIdx.x; j < end; j += blockDim.x) f(base + j);
    }
}

// Block (x, ch): moments[(ch·gridDim.x + x)·3 + {0, 1, 2}] = (count, mean, M2) of its elements, from
// sums shifted by its first element.
template <typename Act>
__device__ __forceinline__ void batch_norm_stats_partial(const Act* __restrict__ x, BnShape g,
                                                         double* __restrict__ moments) {
    __shared__ double scratch[32];
    const uint32_t ch = blockIdx.y;
    const uint32_t first_sample = blockIdx.x / g.parts, first_part = blockIdx.x - first_sample * g.parts;
    const double shift = (double)load_act(x, ((uint64_t)first_sample * g.c + ch) * g.s + first_part * g.chunk);
    double sum = 0.0, sum_sq = 0.0, count = 0.0;
    for_block_channel_elements(g, ch, [&](uint64_t i) {
        const double d = (double)load_act(x, i) - shift;  // exact: two f32 values
        sum += d;
        sum_sq = fma(d, d, sum_sq);
        count += 1.0;
    });
    sum = block_sum(sum, scratch);
    sum_sq = block_sum(sum_sq, scratch);
    count = block_sum(count, scratch);
    if (threadIdx.x == 0)
        store_moments(moments + ((uint64_t)ch * gridDim.x + blockIdx.x) * 3,
                      moments_from_shifted_sums(count, shift, sum, sum_sq));
}

// The merge of a block's FINALIZE_THREADS partial moments held in shared memory, in a fixed tree
// (pairs half the block apart, then a quarter, …), into m[0]. Every thread of the block calls it.
constexpr uint32_t FINALIZE_THREADS = 256;
static __device__ void merge_block_moments(Moments* m) {
    for (uint32_t half = FINALIZE_THREADS / 2; half > 0; half /= 2) {
        __syncthreads();
        if (threadIdx.x < half) m[threadIdx.x] = merge_moments(m[threadIdx.x], m[threadIdx.x + half]);
    }
    __syncthreads();
}

// Block per channel (FINALIZE_THREADS threads): the statistics from the channel's `parts` partial
// moments, the saved and running statistics, and coef: [c, 2] double = (scale, shift) of
// y = x·scale + shift. A conv that gathered them wrote one part per column tile, thousands of
// them: thread i merges parts i, i + FINALIZE_THREADS, … in order, then merge_block_moments.
extern "C" __global__ void __launch_bounds__(FINALIZE_THREADS)
    batch_norm_train_finalize_f32(const double* __restrict__ moments, uint32_t parts, BnShape g, double eps,
                                  double momentum, const float* __restrict__ gamma,
                                  const float* __restrict__ beta, float* running_mean, float* running_var,
                                  float* __restrict__ save_mean, float* __restrict__ save_invstd,
                                  double* __restrict__ coef) {
    __shared__ Moments merged[FINALIZE_THREADS];
    for (uint32_t ch = blockIdx.x; ch < g.c; ch += gridDim.x) {
        Moments m = {0.0, 0.0, 0.0};
        for (uint32_t p = threadIdx.x; p < parts; p += FINALIZE_THREADS)
            m = merge_moments(m, load_moments(moments + ((uint64_t)ch * parts + p) * 3));
        merged[threadIdx.x] = m;
        merge_block_moments(merged);
        if (threadIdx.x == 0) {
            const double count = (double)g.n * (double)g.s;
            const double mean = merged[0].mean;
            const double var = merged[0].m2 / count;  // biased
            const double invstd = 1.0 / sqrt(var + eps);
            const double scale = __dmul_rn(invstd, (double)gamma[ch]);
            coef[2 * ch] = scale;
            coef[2 * ch + 1] = __dadd_rn((double)beta[ch], -__dmul_rn(mean, scale));
            save_mean[ch] = (float)mean;
            save_invstd[ch] = (float)invstd;
            const double unbiased = count > 1.0 ? __dmul_rn(var, count) / (count - 1.0) : var;
            const double keep = 1.0 - momentum;
            running_mean[ch] =
                (float)__dadd_rn(__dmul_rn(keep, (double)running_mean[ch]), __dmul_rn(momentum, mean));
            running_var[ch] =
                (float)__dadd_rn(__dmul_rn(keep, (double)running_var[ch]), __dmul_rn(momentum, unbiased));
        }
        __syncthreads();  // merged[0] is read before the next channel overwrites it
    }
}

// One thread per channel: coef: [c, 2] = (γ/sqrt(running_var + eps), β − running_mean·scale).
extern "C" __global__ void batch_norm_eval_coefficients_f32(const float* __restrict__ gamma,
                                                            const float* __restrict__ beta,
                                                            const float* __restrict__ running_mean,
                                                            const float* __restrict__ running_var, uint32_t c,
                                                            double eps, double* __restrict__ coef) {
    for (uint32_t ch = blockIdx.x * blockDim.x + threadIdx.x; ch < c; ch += gridDim.x * blockDim.x) {
        const double scale = (double)gamma[ch] / sqrt((double)running_var[ch] + eps);
        coef[2 * ch] = scale;
        coef[2 * ch + 1] = __dadd_rn((double)beta[ch], -__dmul_rn((double)running_mean[ch], scale));
    }
}

// y = relu?(x·scale + shift + residual?) per channel (output_epilogue.cuh). x, residual (null for none),
// y: rows (n, ch) of s columns; relu: 0 or 1.
template <typename Act>
__device__ __forceinline__ void batch_norm_apply(const Act* __restrict__ x, const double* __restrict__ coef,
                                                 BnShape g, const Act* __restrict__ residual, uint32_t relu,
                                                 Act* __restrict__ y) {
    FOR_ROWS(row, g.n * g.c) {
        const uint32_t ch = row % g.c;
        const uint64_t base = (uint64_t)row * g.s;
        FOR_COLS(j, g.s) {
            const float v = output_epilogue(load_act(x, base + j), coef, ch, residual, nullptr, base + j, relu);
            store_act(y, base + j, v);
        }
    }
}

// dy[i] masked by the ReLU whose output was relu_y (null for no ReLU): 0 where relu_y[i] <= 0.
template <typename Act>
static __device__ __forceinline__ float relu_masked(const Act* __restrict__ dy, const Act* __restrict__ relu_y,
                                                    uint64_t i) {
    return relu_y != nullptr && load_act(relu_y, i) <= 0.0f ? 0.0f : load_act(dy, i);
}

// Block (x, ch): partials[(ch·gridDim.x + x)·2 + {0, 1}] = Σ dy, Σ dy·x̂ over its elements, with
// x̂ = (x − mean)·invstd from the saved (f32) statistics, dy masked by relu_y (null for none).
template <typename Act>
__device__ __forceinline__ void batch_norm_backward_partial(const Act* __restrict__ x, const Act* __restrict__ dy,
                                                            const Act* __restrict__ relu_y,
                                                            const float* __restrict__ save_mean,
                                                            const float* __restrict__ save_invstd, BnShape g,
                                                            double* __restrict__ partials) {
    __shared__ double scratch[32];
    const uint32_t ch = blockIdx.y;
    const double mean = (double)save_mean[ch], invstd = (double)save_invstd[ch];
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    for_block_channel_elements(g, ch, [&](uint64_t i) {
        const double d = (double)relu_masked(dy, relu_y, i);
        sum_dy += d;
        sum_dy_xhat += __dmul_rn(__dmul_rn(d, (double)load_act(x, i) - mean), invstd);
    });
    sum_dy = block_sum(sum_dy, scratch);
    sum_dy_xhat = block_sum(sum_dy_xhat, scratch);
    if (threadIdx.x == 0) {
        double* out = partials + ((uint64_t)ch * gridDim.x + blockIdx.x) * 2;
        out[0] = sum_dy;
        out[1] = sum_dy_xhat;
    }
}

// One thread per channel: dgamma += Σ dy·x̂ and dbeta += Σ dy (each sum rounded to f32, then an f32
// add, as the CPU), and coef: [c, 5] double = (mean, invstd, Σ dy, Σ dy·x̂, k = γ·invstd/m).
extern "C" __global__ void batch_norm_backward_finalize_f32(const double* __restrict__ partials, uint32_t blocks,
                                                            BnShape g, const float* __restrict__ gamma,
                                                            const float* __restrict__ save_mean,
                                                            const float* __restrict__ save_invstd,
                                                            float* __restrict__ dgamma, float* __restrict__ dbeta,
                                                            double* __restrict__ coef) {
    for (uint32_t ch = blockIdx.x * blockDim.x + threadIdx.x; ch < g.c; ch += gridDim.x * blockDim.x) {
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (uint32_t b = 0; b < blocks; ++b) {
            const double* p = partials + ((uint64_t)ch * blocks + b) * 2;
            sum_dy += p[0];
            sum_dy_xhat += p[1];
        }
        dgamma[ch] = __fadd_rn(dgamma[ch], (float)sum_dy_xhat);
        dbeta[ch] = __fadd_rn(dbeta[ch], (float)sum_dy);
        const double invstd = (double)save_invstd[ch];
        const double count = (double)g.n * (double)g.s;
        double* out = coef + 5 * (uint64_t)ch;
        out[0] = (double)save_mean[ch];
        out[1] = invstd;
        out[2] = sum_dy;
        out[3] = sum_dy_xhat;
        out[4] = __dmul_rn((double)gamma[ch], invstd) / count;
    }
}

// dx = k·(m·dy − Σdy − x̂·Σ(dy·x̂)) per channel in double with the CPU's order of operations,
// rounded once to f32, m = n·s, dy masked by relu_y (null for none). x, dy, relu_y, dx: rows (n, ch)
// of s columns.
template <typename Act>
__device__ __forceinline__ void batch_norm_backward_input(const Act* __restrict__ x, const Act* __restrict__ dy,
                                                          const Act* __restrict__ relu_y,
                                                          const double* __restrict__ coef, BnShape g,
                                                          Act* __restrict__ dx) {
    const double count = (double)g.n * (double)g.s;
    FOR_ROWS(row, g.n * g.c) {
        const double* k5 = coef + 5 * (uint64_t)(row % g.c);
        const double mean = k5[0], invstd = k5[1], sum_dy = k5[2], sum_dy_xhat = k5[3], k = k5[4];
        const uint64_t base = (uint64_t)row * g.s;
        FOR_COLS(j, g.s) {
            const double xhat = __dmul_rn(__dadd_rn((double)load_act(x, base + j), -mean), invstd);
            const double d = (double)relu_masked(dy, relu_y, base + j);
            const double centred = __dadd_rn(__dadd_rn(__dmul_rn(count, d), -sum_dy),
                                             -__dmul_rn(xhat, sum_dy_xhat));
            store_act(dx, base + j, (float)__dmul_rn(k, centred));  // f32, then (bf16) rounded again
        }
    }
}

// The entry points of the kernels on activations above, with activations of type Act, named
// <name>SUFFIX.
#define BATCH_NORM_ACT_KERNELS(SUFFIX, Act)                                                                       \
    extern "C" __global__ void batch_norm_stats_partial_f32##SUFFIX(const Act* __restrict__ x, BnShape g,        \
                                                                    double* __restrict__ moments) {              \
        batch_norm_stats_partial(x, g, moments);                                                                 \
    }                                                                                                            \
    extern "C" __global__ void batch_norm_apply_f32##SUFFIX(const Act* __restrict__ x,                           \
                                                            const double* __restrict__ coef, BnShape g,          \
                                                            const Act* __restrict__ residual, uint32_t relu,     \
                                                            Act* __restrict__ y) {                               \
        batch_norm_apply(x, coef, g, residual, relu, y);                                                         \
    }                                                                                                            \
    extern "C" __global__ void batch_norm_backward_partial_f32##SUFFIX(                                          \
        const Act* __restrict__ x, const Act* __restrict__ dy, const Act* __restrict__ relu_y,                   \
        const float* __restrict__ save_mean, const float* __restrict__ save_invstd, BnShape g,                   \
        double* __restrict__ partials) {                                                                         \
        batch_norm_backward_partial(x, dy, relu_y, save_mean, save_invstd, g, partials);                        \
    }                                                                                                            \
    extern "C" __global__ void batch_norm_backward_input_f32##SUFFIX(                                            \
        const Act* __restrict__ x, const Act* __restrict__ dy, const Act* __restrict__ relu_y,                   \
        const double* __restrict__ coef, BnShape g, Act* __restrict__ dx) {                                      \
        batch_norm_backward_input(x, dy, relu_y, coef, g, dx);                                                   \
    }

BATCH_NORM_ACT_KERNELS(, float)
BATCH_NORM_ACT_KERNELS(_bf16act, __nv_bfloat16)
