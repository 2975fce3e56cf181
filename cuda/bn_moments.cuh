// Batch statistics as partial moments: what the batch-norm statistics pass writes, and what the
// kernels that produce a batch norm's input (conv_gemm, the graph aggregation forward) write instead
// while their outputs are still in registers, so that the batch norm needs no pass of its own:
//
//   moments: [c, parts, 3] double, part p of channel ch at (ch·parts + p)·3 = (count, mean, M2)
//            over that part's values, M2 = Σ (x − mean)²; a part with count 0 is empty.
//
// The finalize merges a channel's parts in part order with the pairwise update of Chan, Golub and
// LeVeque (1979), which, unlike Σx² − (Σx)²/m, does not cancel away when |mean| ≫ std. Each part's
// own (mean, M2) comes either from two passes over values the kernel still holds, or from sums
// shifted by one of the part's values (so |x − shift| is of the order of the spread).
//
// They are the moments of the values as stored: for bf16 activations (activation.cuh), of the
// rounded outputs (stored_value), which are what the batch norm then reads.

#pragma once

struct Moments {
    double count, mean, m2;
};

// The moments of `count` values from Σ(x − shift) and Σ(x − shift)².
__device__ __forceinline__ Moments moments_from_shifted_sums(double count, double shift, double sum, double sum_sq) {
    if (count == 0.0) return {0.0, 0.0, 0.0};
    const double shifted_mean = sum / count;
    return {count, shift + shifted_mean, fmax(0.0, sum_sq - sum * shifted_mean)};
}

// The moments of the union of the values of a and b.
__device__ __forceinline__ Moments merge_moments(const Moments& a, const Moments& b) {
    if (b.count == 0.0) return a;
    if (a.count == 0.0) return b;
    const double count = a.count + b.count;
    const double delta = b.mean - a.mean;
    return {count, a.mean + delta * (b.count / count), a.m2 + b.m2 + delta * delta * (a.count * b.count / count)};
}

__device__ __forceinline__ void store_moments(double* out, const Moments& m) {
    out[0] = m.count;
    out[1] = m.mean;
    out[2] = m.m2;
}

__device__ __forceinline__ Moments load_moments(const double* in) { return {in[0], in[1], in[2]}; }
