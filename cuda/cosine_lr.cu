// The learning-rate schedule on the device, from a step counter in device memory, so a captured
// training step reads its learning rate without a host update: cosine annealing (mmcv's closed
// form) after an optional linear warm-up, per iteration or per epoch, evaluated in double.

#include <stdint.h>

struct CosineSchedule {
    double base_lr;
    double min_lr;
    double warmup_start_lr;
    uint64_t total;            // schedule index at which the cosine reaches min_lr
    uint64_t warmup;           // warm-up indices
    uint64_t steps_per_index;  // optimizer steps per schedule index (1: per iteration)
};

// lr[0] = the learning rate of optimizer step step[0].
extern "C" __global__ void cosine_lr_from_step(CosineSchedule s, const uint32_t* step, float* lr) {
    if (threadIdx.x != 0 || blockIdx.x != 0) return;
    const uint64_t per = s.steps_per_index > 0 ? s.steps_per_index : 1;
    const uint64_t index = (uint64_t)step[0] / per;
    double value;
    if (index < s.warmup) {
        value = s.warmup_start_lr + (s.base_lr - s.warmup_start_lr) * (double)index / (double)s.warmup;
    } else {
        const uint64_t span = s.total > s.warmup ? s.total - s.warmup : 1;
        const uint64_t e = index - s.warmup < span ? index - s.warmup : span;
        // cospi(e/span) = cos(π·e/span) without the huge-argument reduction path (no local memory)
        value = s.min_lr + (s.base_lr - s.min_lr) * (1.0 + cospi((double)e / (double)span)) / 2.0;
    }
    lr[0] = (float)value;
}

// step[0] += 1
extern "C" __global__ void increment_step(uint32_t* step) {
    if (threadIdx.x == 0 && blockIdx.x == 0) step[0] += 1;
}
