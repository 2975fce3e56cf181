//! The element types a backend computes in: f32 (training) and f64 (the exact reference path).

use std::fmt::{Debug, Display};

/// A floating-point element type. The CPU backend is generic over it so that the same code runs in
/// f64 (which follows PyTorch's float64 trajectory exactly) and in f32 (the production precision).
pub trait Scalar:
    num_traits::Float
    + bytemuck::Pod
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + std::iter::Sum
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + 'static
{
    /// `"f32"` or `"f64"`, as written in checkpoints and reports.
    const NAME: &'static str;

    /// The nearest value of this type (`v as Self`).
    fn of(v: f64) -> Self;
    /// The value widened to f64 (exact).
    fn as_f64(self) -> f64;

    /// `c = alpha * a·b + beta * c`, row-major matrices given by (row stride, column stride),
    /// a: m×k, b: k×n, c: m×n. Single-threaded: callers parallelise over independent work so the
    /// summation order, and hence the result, never depends on the thread count.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: &[Self],
        a_strides: (isize, isize),
        b: &[Self],
        b_strides: (isize, isize),
        beta: Self,
        c: &mut [Self],
        c_strides: (isize, isize),
    );
}

/// Checks that a strided m×n matrix view fits in `len` elements (so the unsafe GEMM call is sound).
fn check_view(rows: usize, cols: usize, (rs, cs): (isize, isize), len: usize, what: &str) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(rs >= 0 && cs >= 0, "gemm: negative strides for {what}");
    let last = (rows - 1) * rs as usize + (cols - 1) * cs as usize;
    assert!(
        last < len,
        "gemm: {what} view {rows}x{cols} strides ({rs},{cs}) exceeds {len} elements"
    );
}

macro_rules! impl_scalar {
    ($t:ty, $name:literal) => {
        impl Scalar for $t {
            const NAME: &'static str = $name;

            #[inline]
            fn of(v: f64) -> Self {
                v as $t
            }

            #[inline]
            fn as_f64(self) -> f64 {
                self as f64
            }

            fn gemm(
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: &[Self],
                a_strides: (isize, isize),
                b: &[Self],
                b_strides: (isize, isize),
                beta: Self,
                c: &mut [Self],
                c_strides: (isize, isize),
            ) {
                check_view(m, k, a_strides, a.len(), "a");
                check_view(k, n, b_strides, b.len(), "b");
                check_view(m, n, c_strides, c.len(), "c");
                if m == 0 || n == 0 {
                    return;
                }
                // SAFETY: every view was checked to lie inside its slice above; c does not alias a or b
                // (it is borrowed mutably). The crate computes dst = α·dst + β·lhs·rhs (dst read only
                // when asked), so our (alpha, beta) are its (β, α); one thread, so the order of the
                // sums never depends on the thread count.
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        c.as_mut_ptr(),
                        c_strides.1,
                        c_strides.0,
                        beta != 0.0,
                        a.as_ptr(),
                        a_strides.1,
                        a_strides.0,
                        b.as_ptr(),
                        b_strides.1,
                        b_strides.0,
                        beta,
                        alpha,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    )
                }
            }
        }
    };
}

impl_scalar!(f32, "f32");
impl_scalar!(f64, "f64");
