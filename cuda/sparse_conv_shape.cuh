// The geometry of a kt x 1 convolution over time, as the sparse conv kernels take it (by value).
// x: [n, c_in, t_in, v], w: [c_out, c_in, kt], y: [n, c_out, t_out, v];
// y[n,o,t,j] = b[o] + sum_(i,k) w[o,i,k] * x[n, i, t*stride + k - pad, j] (0 outside [0, t_in)).
// Must match `ConvShapeRepr` in src/backend/cuda/sparse.rs.
#pragma once

struct ConvShape {
    int n, c_in, c_out, t_in, t_out, v, kt, pad, stride;
};
