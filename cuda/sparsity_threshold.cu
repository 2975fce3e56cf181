// Sparsity thresholds on the device: the k-th smallest score over a pool of score tensors by radix
// select (no host round trip), and masks from it.
//
// Scores are f32. Each value is mapped to a u32 key whose unsigned order is IEEE totalOrder
// (negative values bit-inverted, positive ones with the sign bit set), the order the CPU backend's
// `total_cmp` selection uses, so both pick the same element. The select runs 4 passes of 8 bits,
// most significant digit first; each pass is one histogram launch over the pool and one
// single-block launch that finds the digit holding the k-th key and narrows the prefix. The state
// lives in device memory, so a captured training step can contain the whole selection.

#include <stdint.h>

// One tensor of the pool.
struct ScoreSegment {
    const float* data;
    uint64_t len;
};

// Running state of one selection.
struct RadixSelectState {
    uint32_t prefix;       // key bits fixed so far
    uint32_t prefix_mask;  // which bits of the key are fixed
    uint32_t rank;         // 1-based rank of the wanted key among keys matching the prefix
    uint32_t pad;
};

static __device__ __forceinline__ uint32_t float_to_ordered_key(float x) {
    uint32_t bits = __float_as_uint(x);
    return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

static __device__ __forceinline__ float ordered_key_to_float(uint32_t key) {
    uint32_t bits = (key & 0x80000000u) ? (key & 0x7fffffffu) : ~key;
    return __uint_as_float(bits);
}

// Starts a selection of the k-th smallest (1-based) key: clears the histogram and the state.
extern "C" __global__ void radix_select_init(RadixSelectState* state, uint32_t* histogram, uint32_t k) {
    int t = threadIdx.x;
    if (t < 256) histogram[t] = 0;
    if (t == 0) {
        state->prefix = 0;
        state->prefix_mask = 0;
        state->rank = k;
    }
}

// Histogram of digit `shift` (24, 16, 8, 0) over the keys that match the state's prefix.
// segments: [num_segments]; histogram: [256] u32, accumulated with atomics.
extern "C" __global__ void radix_select_histogram(const ScoreSegment* segments, int num_segments,
                                                  const RadixSelectState* state, uint32_t* histogram,
                                                  int shift) {
    __shared__ uint32_t local[256];
    for (int i = threadIdx.x; i < 256; i += blockDim.x) local[i] = 0;
    __syncthreads();
    const uint32_t prefix = state->prefix;
    const uint32_t mask = state->prefix_mask;
    for (int s = 0; s < num_segments; ++s) {
        const float* data = segments[s].data;
        const uint64_t len = segments[s].len;
        for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < len;
             i += (uint64_t)gridDim.x * blockDim.x) {
            uint32_t key = float_to_ordered_key(data[i]);
            if ((key & mask) == prefix) atomicAdd(&local[(key >> shift) & 0xffu], 1u);
        }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < 256; i += blockDim.x) {
        if (local[i] != 0) atomicAdd(&histogram[i], local[i]);
    }
}

// One block: finds the digit whose cumulative count reaches the rank, fixes it in the prefix,
// makes the rank relative to that digit, and clears the histogram for the next pass. After the
// last pass (shift 0) writes the selected value to tau[0].
extern "C" __global__ void radix_select_pick_digit(RadixSelectState* state, uint32_t* histogram, int shift,
                                                   float* tau) {
    __shared__ uint32_t counts[256];
    int t = threadIdx.x;
    if (t < 256) counts[t] = histogram[t];
    __syncthreads();
    if (t == 0) {
        uint32_t rank = state->rank;
        uint32_t below = 0;
        uint32_t digit = 255;
        for (uint32_t d = 0; d < 256; ++d) {
            if (below + counts[d] >= rank) {
                digit = d;
                break;
            }
            below += counts[d];
        }
        state->rank = rank - below;
        state->prefix |= digit << shift;
        state->prefix_mask |= 0xffu << shift;
        if (shift == 0) tau[0] = ordered_key_to_float(state->prefix);
    }
    __syncthreads();
    if (t < 256) histogram[t] = 0;
}

// mask[i] = 1 if score[i] >= tau[0] else 0; all: [n] f32.
extern "C" __global__ void threshold_mask_f32(const float* score, const float* tau, float* mask, uint64_t n) {
    const float threshold = tau[0];
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (uint64_t)gridDim.x * blockDim.x) {
        mask[i] = score[i] >= threshold ? 1.0f : 0.0f;
    }
}
