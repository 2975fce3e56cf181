// Small kernels with known answers, exercising the executor end to end: arithmetic and memory,
// divergence and reconvergence, barriers and shared memory, warp shuffles and votes, atomics,
// local memory, and cp.async pipelines.
#include <cstdint>

extern "C" __global__ void saxpy(const float* x, float* y, float a, uint32_t n) {
    uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i] + y[i];
}

// Each block sums its 256 values: shared-memory tree, then a warp shuffle.
extern "C" __global__ void block_sum(const float* x, float* out) {
    __shared__ float partial[256];
    uint32_t t = threadIdx.x;
    partial[t] = x[blockIdx.x * 256 + t];
    __syncthreads();
    for (uint32_t s = 128; s >= 32; s >>= 1) {
        if (t < s) partial[t] += partial[t + s];
        __syncthreads();
    }
    if (t < 32) {
        float v = partial[t];
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
        if (t == 0) out[blockIdx.x] = v;
    }
}

// Divergent branches that nest and reconverge; a loop whose trip count differs per lane.
extern "C" __global__ void collatz_steps(const uint32_t* start, uint32_t* steps, uint32_t n) {
    uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    uint32_t v = start[i], count = 0;
    while (v != 1) {
        if (v % 2 == 0) {
            v /= 2;
        } else {
            v = 3 * v + 1;
        }
        count++;
    }
    steps[i] = count;
}

// Ballot and popc: how many lanes of each warp hold an odd value, and the lane's rank among them.
extern "C" __global__ void odd_rank(const uint32_t* x, uint32_t* rank, uint32_t* per_warp) {
    uint32_t t = threadIdx.x, lane = t % 32;
    bool odd = x[blockIdx.x * blockDim.x + t] & 1;
    uint32_t ballot = __ballot_sync(0xffffffffu, odd);
    rank[blockIdx.x * blockDim.x + t] = odd ? __popc(ballot & ((1u << lane) - 1)) : 0xffffffffu;
    if (lane == 0) per_warp[(blockIdx.x * blockDim.x + t) / 32] = __popc(ballot);
}

// A histogram of 16 bins with shared and global atomics.
extern "C" __global__ void histogram16(const uint32_t* x, uint32_t n, uint32_t* bins) {
    __shared__ uint32_t local[16];
    if (threadIdx.x < 16) local[threadIdx.x] = 0;
    __syncthreads();
    for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        atomicAdd(&local[x[i] % 16], 1u);
    __syncthreads();
    if (threadIdx.x < 16) atomicAdd(&bins[threadIdx.x], local[threadIdx.x]);
}

// A per-thread array indexed at run time lives in local memory.
extern "C" __global__ void reverse_digits(const uint32_t* x, uint32_t* out) {
    uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
    uint32_t digits[10];
    uint32_t v = x[i], n = 0;
    do {
        digits[n++] = v % 10;
        v /= 10;
    } while (v != 0);
    uint32_t r = 0;
    for (uint32_t k = 0; k < n; ++k) r = r * 10 + digits[k];
    out[i] = r;
}

// A two-stage cp.async pipeline: tile k+1 is copied while tile k is summed.
extern "C" __global__ void pipelined_tile_sums(const float* x, float* out, uint32_t tiles) {
    __shared__ float buf[2][128];
    uint32_t t = threadIdx.x;
    auto fetch = [&](uint32_t tile, uint32_t stage) {
        uint32_t dst = (uint32_t)__cvta_generic_to_shared(&buf[stage][t]);
        const float* src = x + tile * 128 + t;
        asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(dst), "l"(src) : "memory");
        asm volatile("cp.async.commit_group;" ::: "memory");
    };
    fetch(0, 0);
    float sum = 0.0f;
    for (uint32_t k = 0; k < tiles; ++k) {
        if (k + 1 < tiles) {
            fetch(k + 1, (k + 1) % 2);
            asm volatile("cp.async.wait_group 1;" ::: "memory");
        } else {
            asm volatile("cp.async.wait_group 0;" ::: "memory");
        }
        __syncthreads();
        sum += buf[k % 2][(t + 1) % 128];
        __syncthreads();
    }
    out[t] = sum;
}

// The two sides of a branch each shuffle with the full warp, as nvcc's unswitched loops do: odd
// lanes and even lanes meet at different shfl.sync instructions (legal since Volta).
extern "C" __global__ void shuffle_on_both_sides(const uint32_t* x, uint32_t* out) {
    uint32_t lane = threadIdx.x, v = x[lane], r;
    if (lane % 2) {
        asm volatile("shfl.sync.bfly.b32 %0, %1, 1, 31, -1;" : "=r"(r) : "r"(v));
        r += 1000;
    } else {
        asm volatile("shfl.sync.bfly.b32 %0, %1, 1, 31, -1;" : "=r"(r) : "r"(v));
        r *= 2;
    }
    out[lane] = r;
}
