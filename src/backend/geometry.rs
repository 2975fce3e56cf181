//! Shape descriptors passed to the backend ops.

/// A convolution over time with a `kt x 1` kernel (the 9x1 temporal conv, the 1x1 conv, the linear head).
/// x: `[n, c_in, t_in, v]`, w: `[c_out, c_in, kt]`, y: `[n, c_out, t_out(), v]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub n: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub t_in: usize,
    pub v: usize,
    pub kt: usize,
    pub pad: usize,
    pub stride: usize,
}

impl ConvGeom {
    /// PyTorch's output length: `floor((t_in + 2·pad - kt)/stride) + 1`.
    pub fn t_out(&self) -> usize {
        (self.t_in + 2 * self.pad - self.kt) / self.stride + 1
    }
    pub fn x_len(&self) -> usize {
        self.n * self.c_in * self.t_in * self.v
    }
    pub fn y_len(&self) -> usize {
        self.n * self.c_out * self.t_out() * self.v
    }
    pub fn w_len(&self) -> usize {
        self.c_out * self.c_in * self.kt
    }
    /// Multiply-adds of the forward pass.
    pub fn macs(&self) -> u64 {
        (self.n * self.c_out * self.t_out() * self.v) as u64 * (self.c_in * self.kt) as u64
    }
}

/// Graph aggregation `y[n,c,t,w] = Σ_k Σ_v z[n,k,c,t,v]·a[k,v,w]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GraphGeom {
    pub n: usize,
    /// Number of adjacency subsets K.
    pub k: usize,
    pub c: usize,
    pub t: usize,
    /// Joints (input and output joint counts are equal).
    pub v: usize,
}

impl GraphGeom {
    pub fn z_len(&self) -> usize {
        self.n * self.k * self.c * self.t * self.v
    }
    pub fn y_len(&self) -> usize {
        self.n * self.c * self.t * self.v
    }
    pub fn a_len(&self) -> usize {
        self.k * self.v * self.v
    }
}

/// Batch normalisation over `[n, c, s]`, statistics per channel over (n, s).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BnGeom {
    pub n: usize,
    pub c: usize,
    pub s: usize,
    pub eps: f64,
    pub momentum: f64,
}

impl BnGeom {
    pub fn len(&self) -> usize {
        self.n * self.c * self.s
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
