// The im2col addressing of the convolution-over-time GEMMs, shared by the f32 kernels
// (temporal_conv.cu) and the tensor-core kernels (temporal_conv_tensor_core.cu): the launch
// parameters (one layout on the host side for both) and the element → memory-offset maps.
//
//   x: [n, c_in, t_in, v], w: [c_out, c_in, kt], y: [n, c_out, t_out, v]
//   conv_gemm:  dst[s, row, t·dst_stride + dst_off, j] = bias[row]
//                   + Σ_(ch, tap) a[row, ch·taps + tap] · src[s, ch, t·col_stride + tap + src_off, j]
//   conv_wgrad: dw_parts[z, o, (i,k)] = Σ_(l in chunk z) dy[o, l] · x̃[(i,k), l], l = (s, t, j)
// All indices are 32-bit; the launchers check the sizes.

#pragma once

#include <stdint.h>

// Unsigned division of n >= 0 by a run-time invariant d >= 1 with a multiply and shifts
// (Granlund & Montgomery 1994, fig. 4.1); m, s1, s2 come from the host (FastDiv in fast_div.rs).
struct FastDiv {
    uint32_t m, s1, s2;
};

__device__ __forceinline__ int div_fast(int n, const FastDiv& f) {
    const uint32_t u = (uint32_t)n;
    const uint32_t t = __umulhi(u, f.m);
    return (int)((t + ((u - t) >> f.s1)) >> f.s2);
}

// The GEMM columns are (s, t, j) over n x col_t x v; src frames outside [0, src_t) read as 0.
//   forward:          rows c_out, channels c_in, taps kt, src = x, col_t = t_out, col_stride = stride,
//                     src_off = −pad, dst = y (dst_t = t_out, dst_stride 1, dst_off 0)
//   input gradient:   for output phase φ' (frames φ' + stride·u): rows c_in, channels c_out,
//                     taps ceil((kt − φ)/stride) with φ = (φ' + pad) mod stride, src = dy,
//                     col_stride 1, src_off = (φ' + pad) div stride − taps + 1, dst = dx
//                     (dst_t = t_in, dst_stride = stride, dst_off = φ')
struct ConvGemm {
    int rows, channels, taps, k;  // k = channels·taps
    int src_t, v;
    int col_t, col_stride, src_off, columns;  // columns = n·col_t·v
    int dst_t, dst_stride, dst_off;
    FastDiv div_taps, div_col_frames, div_v;  // by taps, col_t·v, v
};

// One GEMM column q = (s, t, j) of the im2col matrix src̃[(ch, tap), q].
struct ConvColumn {
    int src_col;  // src offset of (s, channel 0, frame 0, j)
    int t0;       // source frame of tap 0
};

__device__ __forceinline__ ConvColumn conv_column(const ConvGemm& p, int q) {
    const int s = div_fast(q, p.div_col_frames);
    const int rem = q - s * (p.col_t * p.v);
    const int t = div_fast(rem, p.div_v);
    const int j = rem - t * p.v;
    return {s * p.channels * p.src_t * p.v + j, t * p.col_stride + p.src_off};
}

// The src offset of src̃[red, q] for column c of q, or −1 where it reads as 0 (a frame outside the
// clip, a reduction index beyond k, or a column beyond the matrix: col_ok false).
__device__ __forceinline__ int conv_column_offset(const ConvGemm& p, const ConvColumn& c, bool col_ok, int red) {
    const int ch = div_fast(red, p.div_taps);
    const int tt = c.t0 + red - ch * p.taps;
    const bool ok = col_ok && red < p.k && (unsigned)tt < (unsigned)p.src_t;
    return ok ? c.src_col + (ch * p.src_t + tt) * p.v : -1;
}

// The dst offset of (s, row 0, t·dst_stride + dst_off, j) for GEMM column q = (s, t, j); row r adds
// r·dst_t·v.
__device__ __forceinline__ int conv_dst_offset(const ConvGemm& p, int q) {
    const int s = div_fast(q, p.div_col_frames);
    const int rem = q - s * (p.col_t * p.v);
    const int t = div_fast(rem, p.div_v);
    return s * p.rows * p.dst_t * p.v + (t * p.dst_stride + p.dst_off) * p.v + (rem - t * p.v);
}

// dw_parts[z, o, (i,k)] = Σ_(l in chunk z) dy[o, l] · x̃[(i,k), l] with l = (s, t, j) over n x t_out x v,
// x̃[(i,k), (s,t,j)] = x[s, i, t·stride + k − pad, j]; db_parts[z, o] = Σ_(l in chunk z) dy[o, l].
struct ConvWgrad {
    int c_out, c_in, kt, t_in, v, t_out, stride, pad;
    int red;     // c_in·kt: the columns of dw
    int length;  // n·t_out·v: the reduction
    int chunk;   // reduction length of one split (a multiple of the kernel's tile step)
    FastDiv div_frames, div_v, div_kt;  // by t_out·v, v, kt
};

// The dy offset of dy[s, 0, p] for l = s·(t_out·v) + p; output channel o adds o·t_out·v.
__device__ __forceinline__ int wgrad_dy_offset(const ConvWgrad& p, int l) {
    const int frames = p.t_out * p.v;
    const int s = div_fast(l, p.div_frames);
    return s * p.c_out * frames + (l - s * frames);
}

// A dw column (i, k): its x offset i·t_in·v + k·v and tap k, or NO_TAP beyond c_in·kt (no frame
// t·stride − pad + NO_TAP is ever in [0, t_in)).
struct WgradTap {
    static constexpr int NO_TAP = -(1 << 30);
    int off, tap;
};

__device__ __forceinline__ WgradTap wgrad_tap(const ConvWgrad& p, int r) {
    const int ch = div_fast(r, p.div_kt);
    const int k = r - ch * p.kt;
    return {(ch * p.t_in + k) * p.v, r < p.red ? k : WgradTap::NO_TAP};
}

// Reduction index l = (s, t, j): the x offset of (s, channel 0, frame t·stride − pad, j) and that frame.
struct WgradRow {
    int base, tt0;
};

__device__ __forceinline__ WgradRow wgrad_row(const ConvWgrad& p, int l) {
    const int frames = p.t_out * p.v;
    const int s = div_fast(l, p.div_frames);
    const int rem = l - s * frames;
    const int t = div_fast(rem, p.div_v);
    const int tt0 = t * p.stride - p.pad;
    return {s * p.c_in * p.t_in * p.v + tt0 * p.v + (rem - t * p.v), tt0};
}

// Whether x̃[(i,k), l] is in x (at offset row.base + c.off), not a 0 beyond the chunk or outside the clip.
__device__ __forceinline__ bool wgrad_x_in_clip(const ConvWgrad& p, const WgradRow& row, bool l_ok, const WgradTap& c) {
    return l_ok && (unsigned)(row.tt0 + c.tap) < (unsigned)p.t_in;
}
