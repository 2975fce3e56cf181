//! Launchers of the mean-pooling kernels (`cuda/mean_pool.cu`), in the activations' storage.

use cudarc::driver::PushKernelArg;

use super::buffer::{one_storage, Act, ActMut};
use super::device::CudaDevice;
use super::launch::{expect_len, rows_launch, size_u32, warp_per_item_launch};
use crate::{act_kernel, Result};

const MODULE: &str = "mean_pool";

/// The kernels' sizes (n, persons, c, s), checked, with x of `x_len` and y of `y_len` elements.
fn sizes(op: &str, n: usize, persons: usize, c: usize, s: usize, x_len: usize, y_len: usize) -> Result<[u32; 4]> {
    let limit = i32::MAX as u32;
    let sizes = [
        size_u32(op, "n", n, limit)?,
        size_u32(op, "persons", persons, limit)?,
        size_u32(op, "c", c, limit)?,
        size_u32(op, "s", s, limit)?,
    ];
    size_u32(op, "n·persons·c", n * persons * c, limit)?;
    expect_len(op, "x", x_len, n * persons * c * s)?;
    expect_len(op, "y", y_len, n * c)?;
    Ok(sizes)
}

/// See `Backend::mean_pool_forward`. x: `[n·persons, c, s]`, y: `[n, c]`.
pub fn forward(
    dev: &CudaDevice,
    n: usize,
    persons: usize,
    c: usize,
    s: usize,
    x: Act<'_>,
    y: ActMut<'_>,
) -> Result<()> {
    const OP: &str = "mean_pool forward";
    let [n, persons, c, s] = sizes(OP, n, persons, c, s, x.len(), y.len())?;
    let name = act_kernel!(one_storage(OP, [x.storage(), y.storage()])?, "mean_pool_forward_f32");
    let f = dev.function(MODULE, name)?;
    dev.launch(&f, name, warp_per_item_launch(n * c), |b| {
        x.push(b);
        b.arg(&n).arg(&persons).arg(&c).arg(&s);
        y.push(b);
    })
}

/// See `Backend::mean_pool_backward`: dx overwritten.
pub fn backward(
    dev: &CudaDevice,
    n: usize,
    persons: usize,
    c: usize,
    s: usize,
    dy: Act<'_>,
    dx: ActMut<'_>,
) -> Result<()> {
    const OP: &str = "mean_pool backward";
    let [n, persons, c, s] = sizes(OP, n, persons, c, s, dx.len(), dy.len())?;
    let name = act_kernel!(one_storage(OP, [dy.storage(), dx.storage()])?, "mean_pool_backward_f32");
    // the CPU's factor, rounded the same way
    let inv = 1.0 / (persons as usize * s as usize) as f64;
    let f = dev.function(MODULE, name)?;
    dev.launch(&f, name, rows_launch(n * persons * c, s), |b| {
        dy.push(b);
        b.arg(&n).arg(&persons).arg(&c).arg(&s).arg(&inv);
        dx.push(b);
    })
}
