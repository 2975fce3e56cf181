//! The CUDA backend: every op of the [`Backend`] trait as a launch of our own kernels on one stream.
//!
//! Errors are sticky, as CUDA's own are: the trait's ops return nothing, so the first failure (a
//! launch, an allocation, an out-of-memory) is recorded, every later op is skipped, and the caller
//! learns of it at [`Backend::check`], which the trainer calls once per step. Reductions use fixed
//! partitions and a fixed order (no floating-point atomics), so a run is bit-for-bit repeatable.

use std::sync::Mutex;

use cudarc::driver::{sys, CudaEvent, CudaGraph, CudaSlice, DeviceRepr, DriverError, PinnedHostSlice, ValidAsZeroBits};

use super::batch_norm::PartialMoments;
use super::buffer::{self, GpuBuf};
use super::conv::GemmOutputs;
use super::device::{driver_err, CudaDevice};
use super::sparse::{self, GpuCsrWeight, GpuPacked24Weight};
use super::{batch_norm, conv, elementwise, graph, loss, optim, permute, pool, select};
use crate::backend::sparse::{CsrWeight, Packed24Weight};
use crate::backend::{
    Backend, BnEpilogue, BnEval, BnGeom, ConvGeom, ConvMath, CosineSchedule, GradAdd, GraphGeom, SgdHyper,
};
use crate::{Error, Result};

pub struct CudaBackend {
    dev: CudaDevice,
    /// The arithmetic of the convolution GEMMs.
    conv_math: ConvMath,
    /// The first failure since the last `check`.
    failure: Mutex<Option<Error>>,
    /// Pinned host memory for `upload_into` and `upload_idx_into`, grown to the largest batch seen.
    staging: Mutex<Option<Staging<f32>>>,
    staging_idx: Mutex<Option<Staging<u32>>>,
}

/// A pinned (page-locked, write-combined) host buffer and the event after the last copy out of it.
struct Staging<T> {
    host: PinnedHostSlice<T>,
    copied: CudaEvent,
}

impl CudaBackend {
    /// Opens GPU `ordinal` (with every kernel module loaded) computing in f32, or says why it cannot.
    pub fn open(ordinal: usize) -> Result<Self> {
        Self::open_with(ordinal, ConvMath::F32)
    }

    /// Opens GPU `ordinal` with the convolution GEMMs in `conv_math`.
    pub fn open_with(ordinal: usize, conv_math: ConvMath) -> Result<Self> {
        Ok(Self {
            dev: CudaDevice::open(ordinal)?,
            conv_math,
            failure: Mutex::new(None),
            staging: Mutex::new(None),
            staging_idx: Mutex::new(None),
        })
    }

    pub fn device(&self) -> &CudaDevice {
        &self.dev
    }

    /// Runs one op unless an earlier one failed; records its failure.
    fn run(&self, op: impl FnOnce(&CudaDevice) -> Result<()>) {
        if self.failure.lock().expect("failure lock").is_some() {
            return;
        }
        if let Err(e) = op(&self.dev) {
            self.failure.lock().expect("failure lock").get_or_insert(e);
        }
    }

    /// `run` for an op that yields a value: `None` when it failed or an earlier op had.
    fn run_for<T>(&self, op: impl FnOnce(&CudaDevice) -> Result<T>) -> Option<T> {
        let mut value = None;
        self.run(|dev| {
            value = Some(op(dev)?);
            Ok(())
        });
        value
    }

    fn record(&self, e: Error) {
        self.failure.lock().expect("failure lock").get_or_insert(e);
    }

    fn alloc<T: DeviceRepr + ValidAsZeroBits + 'static>(&self, len: usize) -> GpuBuf<T> {
        if len == 0 {
            return GpuBuf::new(None, 0);
        }
        match self.dev.stream.alloc_zeros::<T>(len) {
            Ok(slice) => GpuBuf::new(Some(slice), len),
            Err(e) => {
                self.record(self.alloc_error(len * std::mem::size_of::<T>(), e));
                GpuBuf::new(None, len)
            }
        }
    }

    fn alloc_error(&self, bytes: usize, e: DriverError) -> Error {
        const MIB: usize = 1 << 20;
        if e.0 == cudarc::driver::sys::cudaError_enum::CUDA_ERROR_OUT_OF_MEMORY {
            let (free, total) = self.dev.memory().unwrap_or((0, 0));
            Error::DeviceMemory {
                requested_mib: bytes.div_ceil(MIB),
                free_mib: free / MIB,
                total_mib: total / MIB,
                hint: "; use a smaller batch".into(),
            }
        } else {
            driver_err(&format!("allocating {bytes} bytes"), e)
        }
    }

    fn upload_slice<T: DeviceRepr + ValidAsZeroBits + 'static>(&self, host: &[T]) -> GpuBuf<T> {
        let mut buf = self.alloc::<T>(host.len());
        if let Some(slice) = buf.slice_mut() {
            if let Err(e) = self.dev.stream.memcpy_htod(host, slice) {
                self.record(driver_err("copying to the device", e));
            }
        }
        buf
    }

    /// `dst = host` through the pinned staging buffer: waits only for the previous batch's copy
    /// out of it, never for the device's other work.
    fn upload_pinned<T: DeviceRepr + ValidAsZeroBits + Copy + 'static>(
        dev: &CudaDevice,
        staging: &Mutex<Option<Staging<T>>>,
        host: &[T],
        dst: &mut CudaSlice<T>,
    ) -> Result<()> {
        let mut staging = staging.lock().expect("staging lock");
        if staging.as_ref().is_none_or(|s| s.host.len() < host.len()) {
            // SAFETY: pinned host memory of plain values, written below before any read.
            let pinned = unsafe { dev.ctx.alloc_pinned::<T>(host.len()) }
                .map_err(|e| driver_err("allocating pinned host memory", e))?;
            let copied = dev
                .ctx
                .new_event(None)
                .map_err(|e| driver_err("creating an event", e))?;
            *staging = Some(Staging { host: pinned, copied });
        }
        let s = staging.as_mut().expect("staging allocated");
        s.copied
            .synchronize()
            .map_err(|e| driver_err("waiting for the previous input copy", e))?;
        let pinned = s.host.as_mut_slice().map_err(|e| driver_err("pinned host memory", e))?;
        pinned[..host.len()].copy_from_slice(host);
        dev.stream
            .memcpy_htod(&pinned[..host.len()], dst)
            .map_err(|e| driver_err("copying the input to the device", e))?;
        s.copied
            .record(&dev.stream)
            .map_err(|e| driver_err("recording the input copy", e))
    }

    fn download_slice<T: DeviceRepr + Clone + Default + 'static>(&self, buf: &GpuBuf<T>) -> Vec<T> {
        let mut host = vec![T::default(); buf.len()];
        if let Some(slice) = buf.slice() {
            if let Err(e) = self.dev.stream.memcpy_dtoh(slice, &mut host) {
                self.record(driver_err("copying from the device", e));
            }
        }
        host
    }
}

/// The device memory of `b`, or an error if it has none (an empty or failed buffer where data is needed).
pub(super) fn data<T: DeviceRepr + 'static>(b: &GpuBuf<T>) -> Result<&CudaSlice<T>> {
    b.slice()
        .ok_or_else(|| Error::Cuda(format!("an op read an unallocated buffer of {} elements", b.len())))
}

/// The epilogue over the device slices.
fn device_epilogue(e: BnEpilogue<'_, GpuBuf<f32>>) -> Result<BnEpilogue<'_, CudaSlice<f32>>> {
    Ok(BnEpilogue {
        residual: e.residual.map(data).transpose()?,
        relu: e.relu,
    })
}

pub(super) fn data_mut<T: DeviceRepr + 'static>(b: &mut GpuBuf<T>) -> Result<&mut CudaSlice<T>> {
    let len = b.len();
    b.slice_mut()
        .ok_or_else(|| Error::Cuda(format!("an op wrote an unallocated buffer of {len} elements")))
}

fn same_len(op: &str, a: usize, b: usize) -> Result<()> {
    if a == b {
        Ok(())
    } else {
        Err(Error::Cuda(format!("{op}: buffer lengths {a} and {b} differ")))
    }
}

impl Backend for CudaBackend {
    type Elem = f32;
    type Buf = GpuBuf<f32>;
    type IdxBuf = GpuBuf<u32>;
    type Graph = CudaGraph;
    const ON_DEVICE: bool = true;

    fn describe(&self) -> String {
        match self.conv_math {
            ConvMath::F32 => format!("cuda f32 {}", self.dev.describe()),
            m => format!("cuda f32 ({m} convolutions) {}", self.dev.describe()),
        }
    }

    fn conv_math(&self) -> ConvMath {
        self.conv_math
    }

    fn check(&self) -> Result<()> {
        match self.failure.lock().expect("failure lock").take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn begin_capture(&self) -> bool {
        if self.failure.lock().expect("failure lock").is_some() {
            return false;
        }
        buffer::set_capturing(true);
        // relaxed: argument tables are uploaded on a side stream and waited for during a recording
        let mode = sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED;
        if let Err(e) = self.dev.stream.begin_capture(mode) {
            buffer::set_capturing(false);
            self.record(driver_err("starting a graph capture", e));
            return false;
        }
        true
    }
    fn end_capture(&self) -> Option<CudaGraph> {
        // the graph frees what it allocated and kept alive when it is launched again, at the same
        // addresses, so buffers made during the capture stay valid from replay to replay
        let flags = sys::CUgraphInstantiate_flags::CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH;
        let graph = self.dev.stream.end_capture(flags);
        buffer::set_capturing(false);
        match graph {
            Ok(graph) => graph,
            Err(e) => {
                self.record(driver_err("ending a graph capture", e));
                None
            }
        }
    }
    fn replay(&self, graph: &CudaGraph) {
        self.run(|_| graph.launch().map_err(|e| driver_err("launching the step graph", e)))
    }

    fn zeros(&self, len: usize) -> GpuBuf<f32> {
        self.alloc(len)
    }
    fn upload(&self, host: &[f32]) -> GpuBuf<f32> {
        self.upload_slice(host)
    }
    fn upload_into(&self, host: &[f32], dst: &mut GpuBuf<f32>) {
        self.run(|dev| {
            same_len("upload_into", host.len(), dst.len())?;
            if host.is_empty() {
                return Ok(());
            }
            Self::upload_pinned(dev, &self.staging, host, data_mut(dst)?)
        })
    }
    fn upload_idx_into(&self, host: &[u32], dst: &mut GpuBuf<u32>) {
        self.run(|dev| {
            same_len("upload_idx_into", host.len(), dst.len())?;
            if host.is_empty() {
                return Ok(());
            }
            Self::upload_pinned(dev, &self.staging_idx, host, data_mut(dst)?)
        })
    }
    fn download(&self, buf: &GpuBuf<f32>) -> Vec<f32> {
        self.download_slice(buf)
    }
    fn upload_idx(&self, host: &[u32]) -> GpuBuf<u32> {
        self.upload_slice(host)
    }
    fn download_idx(&self, buf: &GpuBuf<u32>) -> Vec<u32> {
        self.download_slice(buf)
    }
    fn buf_len(&self, buf: &GpuBuf<f32>) -> usize {
        buf.len()
    }
    fn copy(&self, src: &GpuBuf<f32>, dst: &mut GpuBuf<f32>) {
        self.run(|dev| {
            same_len("copy", src.len(), dst.len())?;
            if src.is_empty() {
                return Ok(());
            }
            dev.stream
                .memcpy_dtod(data(src)?, data_mut(dst)?)
                .map_err(|e| driver_err("copying on the device", e))
        })
    }
    fn fill(&self, buf: &mut GpuBuf<f32>, value: f64) {
        self.run(|dev| match buf.slice_mut() {
            Some(b) => elementwise::fill(dev, b, value as f32),
            None => Ok(()),
        })
    }
    fn synchronize(&self) {
        self.run(|dev| dev.stream.synchronize().map_err(|e| driver_err("synchronizing", e)))
    }

    fn add_assign(&self, acc: &mut GpuBuf<f32>, x: &GpuBuf<f32>) {
        self.run(|dev| {
            same_len("add_assign", acc.len(), x.len())?;
            elementwise::add_assign(dev, data_mut(acc)?, data(x)?)
        })
    }
    fn mul(&self, a: &GpuBuf<f32>, b: &GpuBuf<f32>, y: &mut GpuBuf<f32>) {
        self.run(|dev| {
            same_len("mul", a.len(), b.len())?;
            same_len("mul", a.len(), y.len())?;
            elementwise::mul(dev, data(a)?, data(b)?, data_mut(y)?)
        })
    }
    fn mul_acc(&self, a: &GpuBuf<f32>, b: &GpuBuf<f32>, acc: &mut GpuBuf<f32>) {
        self.run(|dev| {
            same_len("mul_acc", a.len(), b.len())?;
            same_len("mul_acc", a.len(), acc.len())?;
            elementwise::mul_acc(dev, data(a)?, data(b)?, data_mut(acc)?)
        })
    }
    fn scale(&self, x: &mut GpuBuf<f32>, s: f64) {
        self.run(|dev| elementwise::scale(dev, data_mut(x)?, s as f32))
    }
    fn relu_forward(&self, x: &mut GpuBuf<f32>) {
        self.run(|dev| elementwise::relu_forward(dev, data_mut(x)?))
    }
    fn relu_backward(&self, y: &GpuBuf<f32>, dy: &mut GpuBuf<f32>) {
        self.run(|dev| {
            same_len("relu_backward", y.len(), dy.len())?;
            elementwise::relu_backward(dev, data(y)?, data_mut(dy)?)
        })
    }
    fn relu_backward_add(&self, y: &GpuBuf<f32>, dy: &GpuBuf<f32>, acc: &mut GpuBuf<f32>) {
        self.run(|dev| {
            same_len("relu_backward_add", y.len(), dy.len())?;
            same_len("relu_backward_add", y.len(), acc.len())?;
            elementwise::relu_backward_add(dev, data(y)?, data(dy)?, data_mut(acc)?)
        })
    }
    fn dropout(&self, x: &mut GpuBuf<f32>, p: f64, seed: u64) {
        self.run(|dev| elementwise::dropout(dev, data_mut(x)?, p, seed))
    }

    fn kth_smallest(&self, bufs: &[&GpuBuf<f32>], k: usize, out: &mut GpuBuf<f32>) {
        self.run(|dev| {
            let pool = bufs.iter().map(|b| data(b)).collect::<Result<Vec<_>>>()?;
            select::kth_smallest(dev, &pool, k, data_mut(out)?)
        })
    }
    fn threshold_mask(&self, score: &GpuBuf<f32>, tau: &GpuBuf<f32>, mask: &mut GpuBuf<f32>) {
        self.run(|dev| select::threshold_mask(dev, data(score)?, data(tau)?, data_mut(mask)?))
    }
    fn abs(&self, x: &GpuBuf<f32>, y: &mut GpuBuf<f32>) {
        self.run(|dev| {
            same_len("abs", x.len(), y.len())?;
            elementwise::abs(dev, data(x)?, data_mut(y)?)
        })
    }

    fn permute(&self, x: &GpuBuf<f32>, dims: &[usize], perm: &[usize], y: &mut GpuBuf<f32>) {
        self.run(|dev| {
            same_len("permute", x.len(), y.len())?;
            permute::permute(dev, data(x)?, dims, perm, data_mut(y)?)
        })
    }

    fn conv_t_forward(
        &self,
        g: &ConvGeom,
        x: &GpuBuf<f32>,
        w: &GpuBuf<f32>,
        b: Option<&GpuBuf<f32>>,
        y: &mut GpuBuf<f32>,
    ) {
        self.run(|dev| {
            let b = b.map(data).transpose()?;
            let outputs = GemmOutputs::default();
            conv::forward(dev, self.conv_math, g, data(x)?, data(w)?, b, data_mut(y)?, outputs)
        })
    }
    fn conv_t_backward_input(&self, g: &ConvGeom, dy: &GpuBuf<f32>, w: &GpuBuf<f32>, dx: &mut GpuBuf<f32>) {
        self.run(|dev| conv::backward_input(dev, self.conv_math, g, data(dy)?, data(w)?, None, data_mut(dx)?))
    }
    fn conv_t_backward_input_add(
        &self,
        g: &ConvGeom,
        dy: &GpuBuf<f32>,
        w: &GpuBuf<f32>,
        add: GradAdd<'_, GpuBuf<f32>>,
        dx: &mut GpuBuf<f32>,
    ) {
        self.run(|dev| {
            let add = add.try_map(data)?;
            conv::backward_input(dev, self.conv_math, g, data(dy)?, data(w)?, Some(add), data_mut(dx)?)
        })
    }
    fn conv_t_backward_weight(
        &self,
        g: &ConvGeom,
        x: &GpuBuf<f32>,
        dy: &GpuBuf<f32>,
        dw: &mut GpuBuf<f32>,
        db: Option<&mut GpuBuf<f32>>,
    ) {
        self.run(|dev| {
            let db = db.map(data_mut).transpose()?;
            conv::backward_weight(dev, self.conv_math, g, data(x)?, data(dy)?, data_mut(dw)?, db)
        })
    }

    fn graph_forward(&self, g: &GraphGeom, z: &GpuBuf<f32>, a: &GpuBuf<f32>, y: &mut GpuBuf<f32>) {
        self.run(|dev| graph::forward(dev, g, data(z)?, data(a)?, data_mut(y)?))
    }
    fn graph_backward(
        &self,
        g: &GraphGeom,
        z: &GpuBuf<f32>,
        a: &GpuBuf<f32>,
        dy: &GpuBuf<f32>,
        dz: &mut GpuBuf<f32>,
        da: &mut GpuBuf<f32>,
    ) {
        self.run(|dev| graph::backward(dev, g, data(z)?, data(a)?, data(dy)?, data_mut(dz)?, data_mut(da)?))
    }

    type BnStats = PartialMoments;
    fn conv_t_forward_with_stats(
        &self,
        g: &ConvGeom,
        x: &GpuBuf<f32>,
        w: &GpuBuf<f32>,
        b: Option<&GpuBuf<f32>>,
        y: &mut GpuBuf<f32>,
    ) -> Option<PartialMoments> {
        self.run_for(|dev| {
            let b = b.map(data).transpose()?;
            let mut moments = conv::forward_moments(dev, g)?;
            let outputs = GemmOutputs::gathering(&mut moments);
            conv::forward(dev, self.conv_math, g, data(x)?, data(w)?, b, data_mut(y)?, outputs)?;
            Ok(moments)
        })
    }
    fn graph_forward_with_stats(
        &self,
        g: &GraphGeom,
        z: &GpuBuf<f32>,
        a: &GpuBuf<f32>,
        y: &mut GpuBuf<f32>,
    ) -> Option<PartialMoments> {
        self.run_for(|dev| graph::forward_with_stats(dev, g, data(z)?, data(a)?, data_mut(y)?))
            .flatten()
    }
    fn conv_t_forward_bn_eval(
        &self,
        g: &ConvGeom,
        x: &GpuBuf<f32>,
        w: &GpuBuf<f32>,
        b: Option<&GpuBuf<f32>>,
        bn: BnEval<'_, GpuBuf<f32>>,
        epilogue: BnEpilogue<'_, GpuBuf<f32>>,
        y: &mut GpuBuf<f32>,
    ) {
        self.run(|dev| {
            let b = b.map(data).transpose()?;
            let (bn, epilogue) = (bn.try_map(data)?, device_epilogue(epilogue)?);
            let coef = batch_norm::eval_coefficients(dev, "conv forward + batch_norm eval", g.c_out, bn)?;
            let outputs = GemmOutputs::bn_eval(&coef, epilogue);
            conv::forward(dev, self.conv_math, g, data(x)?, data(w)?, b, data_mut(y)?, outputs)
        })
    }
    fn graph_forward_bn_eval(
        &self,
        g: &GraphGeom,
        z: &GpuBuf<f32>,
        a: &GpuBuf<f32>,
        bn: BnEval<'_, GpuBuf<f32>>,
        epilogue: BnEpilogue<'_, GpuBuf<f32>>,
        y: &mut GpuBuf<f32>,
    ) {
        self.run(|dev| {
            let (bn, epilogue) = (bn.try_map(data)?, device_epilogue(epilogue)?);
            graph::forward_bn_eval(dev, g, data(z)?, data(a)?, bn, epilogue, data_mut(y)?)
        })
    }
    fn batch_norm_train(
        &self,
        g: &BnGeom,
        x: &GpuBuf<f32>,
        stats: Option<&PartialMoments>,
        epilogue: BnEpilogue<'_, GpuBuf<f32>>,
        gamma: &GpuBuf<f32>,
        beta: &GpuBuf<f32>,
        running_mean: &mut GpuBuf<f32>,
        running_var: &mut GpuBuf<f32>,
        y: &mut GpuBuf<f32>,
        save_mean: &mut GpuBuf<f32>,
        save_invstd: &mut GpuBuf<f32>,
    ) {
        self.run(|dev| {
            batch_norm::train(
                dev,
                g,
                data(x)?,
                stats,
                device_epilogue(epilogue)?,
                data(gamma)?,
                data(beta)?,
                data_mut(running_mean)?,
                data_mut(running_var)?,
                data_mut(y)?,
                data_mut(save_mean)?,
                data_mut(save_invstd)?,
            )
        })
    }
    fn batch_norm_eval(
        &self,
        g: &BnGeom,
        x: &GpuBuf<f32>,
        epilogue: BnEpilogue<'_, GpuBuf<f32>>,
        gamma: &GpuBuf<f32>,
        beta: &GpuBuf<f32>,
        running_mean: &GpuBuf<f32>,
        running_var: &GpuBuf<f32>,
        y: &mut GpuBuf<f32>,
    ) {
        self.run(|dev| {
            batch_norm::eval(
                dev,
                g,
                data(x)?,
                device_epilogue(epilogue)?,
                data(gamma)?,
                data(beta)?,
                data(running_mean)?,
                data(running_var)?,
                data_mut(y)?,
            )
        })
    }
    fn batch_norm_backward(
        &self,
        g: &BnGeom,
        x: &GpuBuf<f32>,
        dy: &GpuBuf<f32>,
        relu_output: Option<&GpuBuf<f32>>,
        gamma: &GpuBuf<f32>,
        save_mean: &GpuBuf<f32>,
        save_invstd: &GpuBuf<f32>,
        dx: &mut GpuBuf<f32>,
        dgamma: &mut GpuBuf<f32>,
        dbeta: &mut GpuBuf<f32>,
    ) {
        self.run(|dev| {
            batch_norm::backward(
                dev,
                g,
                data(x)?,
                data(dy)?,
                relu_output.map(data).transpose()?,
                data(gamma)?,
                data(save_mean)?,
                data(save_invstd)?,
                data_mut(dx)?,
                data_mut(dgamma)?,
                data_mut(dbeta)?,
            )
        })
    }

    fn mean_pool_forward(&self, n: usize, persons: usize, c: usize, s: usize, x: &GpuBuf<f32>, y: &mut GpuBuf<f32>) {
        self.run(|dev| pool::forward(dev, n, persons, c, s, data(x)?, data_mut(y)?))
    }
    fn mean_pool_backward(&self, n: usize, persons: usize, c: usize, s: usize, dy: &GpuBuf<f32>, dx: &mut GpuBuf<f32>) {
        self.run(|dev| pool::backward(dev, n, persons, c, s, data(dy)?, data_mut(dx)?))
    }
    fn cross_entropy(
        &self,
        n: usize,
        classes: usize,
        logits: &GpuBuf<f32>,
        labels: &GpuBuf<u32>,
        smoothing: f64,
        loss: &mut GpuBuf<f32>,
        dlogits: &mut GpuBuf<f32>,
    ) {
        self.run(|dev| {
            loss::cross_entropy(
                dev,
                n,
                classes,
                data(logits)?,
                data(labels)?,
                smoothing,
                data_mut(loss)?,
                data_mut(dlogits)?,
            )
        })
    }

    fn sum_squares(&self, bufs: &[&GpuBuf<f32>], out: &mut GpuBuf<f32>) {
        self.run(|dev| {
            let tensors = bufs
                .iter()
                .filter(|b| !b.is_empty())
                .map(|b| data(b))
                .collect::<Result<Vec<_>>>()?;
            optim::sum_squares(dev, &tensors, data_mut(out)?)
        })
    }
    fn clip_scale(&self, sq_norm: &GpuBuf<f32>, max_norm: f64, scale: &mut GpuBuf<f32>) {
        self.run(|dev| optim::clip_scale(dev, data(sq_norm)?, max_norm, data_mut(scale)?))
    }
    fn cosine_lr(&self, sched: &CosineSchedule, step: &GpuBuf<u32>, lr: &mut GpuBuf<f32>) {
        self.run(|dev| optim::cosine_lr(dev, sched, data(step)?, data_mut(lr)?))
    }
    fn increment_step(&self, step: &mut GpuBuf<u32>) {
        self.run(|dev| optim::increment_step(dev, data_mut(step)?))
    }
    fn sgd_step(
        &self,
        params: &mut [&mut GpuBuf<f32>],
        grads: &[&GpuBuf<f32>],
        momentum: &mut [&mut GpuBuf<f32>],
        hyper: &SgdHyper,
        lr: &GpuBuf<f32>,
        scale: Option<&GpuBuf<f32>>,
        first_step: bool,
    ) {
        self.run(|dev| {
            if params.len() != grads.len() || params.len() != momentum.len() {
                return Err(Error::Cuda(
                    "sgd: parameter, gradient and momentum counts differ".into(),
                ));
            }
            let mut triples = Vec::with_capacity(params.len());
            for ((p, g), m) in params.iter_mut().zip(grads).zip(momentum.iter_mut()) {
                same_len("sgd", p.len(), g.len())?;
                same_len("sgd", p.len(), m.len())?;
                if !p.is_empty() {
                    triples.push((data_mut(p)?, data(g)?, data_mut(m)?));
                }
            }
            let scale = scale.map(data).transpose()?;
            optim::sgd_step(dev, &mut triples, hyper, data(lr)?, scale, first_step)
        })
    }

    type SparseWeight = GpuCsrWeight;
    type SemiSparseWeight = GpuPacked24Weight;

    fn sparse_weight(&self, w: &GpuBuf<f32>, mask: &GpuBuf<f32>, c_out: usize, c_in: usize, kt: usize) -> GpuCsrWeight {
        self.run_for(|dev| sparse::csr_from_mask(dev, data(w)?, data(mask)?, c_out, c_in, kt))
            .unwrap_or_else(|| GpuCsrWeight::unusable(c_out, c_in, kt))
    }
    fn sparse_weight_nnz(&self, sw: &GpuCsrWeight) -> usize {
        sw.nnz()
    }
    fn sparse_weight_update(&self, sw: &mut GpuCsrWeight, w: &GpuBuf<f32>) {
        self.run(|dev| sparse::csr_update_values(dev, sw, data(w)?))
    }
    fn sparse_weight_host(&self, sw: &GpuCsrWeight) -> CsrWeight<f32> {
        self.run_for(|dev| sparse::csr_download(dev, sw)).unwrap_or_default()
    }
    fn conv_t_forward_sparse(
        &self,
        g: &ConvGeom,
        x: &GpuBuf<f32>,
        w: &GpuCsrWeight,
        b: Option<&GpuBuf<f32>>,
        y: &mut GpuBuf<f32>,
    ) {
        self.run(|dev| {
            let b = b.map(data).transpose()?;
            sparse::csr_forward(dev, g, data(x)?, w, b, data_mut(y)?)
        })
    }
    fn conv_t_backward_input_sparse(&self, g: &ConvGeom, dy: &GpuBuf<f32>, w: &GpuCsrWeight, dx: &mut GpuBuf<f32>) {
        self.run(|dev| sparse::csr_backward_input(dev, g, data(dy)?, w, data_mut(dx)?))
    }
    fn prune_2_4(&self, w: &GpuBuf<f32>, c_out: usize, c_in: usize, kt: usize, mask: &mut GpuBuf<f32>) {
        self.run(|dev| sparse::prune_2_4(dev, data(w)?, c_out, c_in, kt, data_mut(mask)?))
    }
    fn pack_2_4(
        &self,
        w: &GpuBuf<f32>,
        mask: &GpuBuf<f32>,
        c_out: usize,
        c_in: usize,
        kt: usize,
    ) -> Result<GpuPacked24Weight> {
        sparse::pack_2_4(&self.dev, data(w)?, data(mask)?, c_out, c_in, kt)
    }
    fn semi_sparse_weight_host(&self, w: &GpuPacked24Weight) -> Packed24Weight {
        self.run_for(|dev| sparse::packed_download(dev, w)).unwrap_or_default()
    }
    fn conv_t_forward_2_4(
        &self,
        g: &ConvGeom,
        x: &GpuBuf<f32>,
        w: &GpuPacked24Weight,
        b: Option<&GpuBuf<f32>>,
        y: &mut GpuBuf<f32>,
    ) {
        self.run(|dev| {
            let b = b.map(data).transpose()?;
            sparse::forward_2_4(dev, g, data(x)?, w, b, data_mut(y)?)
        })
    }
    fn conv_t_backward_input_2_4(&self, g: &ConvGeom, dy: &GpuBuf<f32>, w: &GpuPacked24Weight, dx: &mut GpuBuf<f32>) {
        self.run(|dev| sparse::backward_input_2_4(dev, g, data(dy)?, w, data_mut(dx)?))
    }
}
