//! Launchers of the softmax cross-entropy kernels (`cuda/cross_entropy.cu`): one warp per row, then
//! one block that averages the row losses in a fixed order.

use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};

use super::buffer::{one_storage, Act, ActMut};
use super::device::CudaDevice;
use super::launch::{expect_len, size_u32, warp_per_item_launch, workspace, THREADS};
use crate::{act_kernel, Error, Result};

const MODULE: &str = "cross_entropy";

/// See `Backend::cross_entropy`. logits, dlogits: `[n, classes]`, labels: `[n]`, loss: `[1]`.
/// A label outside `0..classes` gives a NaN loss (the labels stay on the device). logits and
/// dlogits are activations (f32 or bf16), the loss f32.
#[allow(clippy::too_many_arguments)]
pub fn cross_entropy(
    dev: &CudaDevice,
    n: usize,
    classes: usize,
    logits: Act<'_>,
    labels: &CudaSlice<u32>,
    smoothing: f64,
    loss: &mut CudaSlice<f32>,
    dlogits: ActMut<'_>,
) -> Result<()> {
    const OP: &str = "cross_entropy";
    let limit = i32::MAX as u32;
    let n32 = size_u32(OP, "n", n, limit)?;
    let classes32 = size_u32(OP, "classes", classes, limit)?;
    expect_len(OP, "logits", logits.len(), n * classes)?;
    expect_len(OP, "dlogits", dlogits.len(), n * classes)?;
    expect_len(OP, "labels", labels.len(), n)?;
    expect_len(OP, "loss", loss.len(), 1)?;
    if !(0.0..=1.0).contains(&smoothing) {
        return Err(Error::Cuda(format!("{OP}: label smoothing {smoothing} outside [0, 1]")));
    }
    // the CPU's targets, rounded the same way
    let off = smoothing / classes as f64;
    let on = 1.0 - smoothing + off;
    // SAFETY: the row kernel writes the loss of every row.
    let mut row_loss = unsafe { workspace::<f64>(dev, "cross-entropy row losses", n) }?;
    let rows = act_kernel!(
        one_storage(OP, [logits.storage(), dlogits.storage()])?,
        "cross_entropy_rows_f32"
    );
    let f = dev.function(MODULE, rows)?;
    dev.launch(&f, rows, warp_per_item_launch(n32), |b| {
        logits.push(b);
        b.arg(labels).arg(&n32).arg(&classes32).arg(&on).arg(&off);
        dlogits.push(b);
        b.arg(&mut row_loss);
    })?;
    let one_block = LaunchConfig {
        grid_dim: (1, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    };
    let f = dev.function(MODULE, "cross_entropy_mean_f32")?;
    dev.launch(&f, "cross_entropy_mean_f32", one_block, |b| {
        b.arg(&row_loss).arg(&n32).arg(loss);
    })
}
