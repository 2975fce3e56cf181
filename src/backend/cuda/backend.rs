//! The CUDA backend: every op of the [`Backend`] trait as a launch of our own kernels on one stream.
//!
//! Errors are sticky, as CUDA's own are: the trait's ops return nothing, so the first failure (a
//! launch, an allocation, an out-of-memory) is recorded, every later op is skipped, and the caller
//! learns of it at [`Backend::check`], which the trainer calls once per step. Reductions use fixed
//! partitions and a fixed order (no floating-point atomics), so a run is bit-for-bit repeatable.

use std::sync::Mutex;

use cudarc::driver::{sys, CudaEvent, CudaGraph, CudaSlice, DeviceRepr, DriverError, PinnedHostSlice, ValidAsZeroBits};

use super::batch_norm::PartialMoments;
use super::buffer::{memory, memory_mut, Act, ActEpilogue, DeviceBuf, GpuBuf};
use super::conv::GemmOutputs;
use super::device::{driver_err, CudaDevice};
use super::sparse::{self, GpuCsrWeight, GpuPacked24Weight};
use super::{batch_norm, conv, elementwise, graph, loss, optim, permute, pool, select};
use crate::backend::sparse::{CsrWeight, Packed24Weight};
use crate::backend::{
    Backend, BnEpilogue, BnEval, BnGeom, ConvGeom, ConvMath, CosineSchedule, F32Region, GradAdd, GraphGeom, SgdHyper,
    Storage,
};
use crate::{Error, Result};

pub struct CudaBackend {
    dev: CudaDevice,
    /// The arithmetic of the convolution GEMMs.
    conv_math: ConvMath,
    /// How activations are stored: f32, or bf16 (with bf16 conv operands).
    storage: Storage,
    /// Inside `with_f32_activations`: activations are allocated in f32.
    f32_region: F32Region,
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
        Self::open_with_precision(ordinal, conv_math, Storage::F32)
    }

    /// Opens GPU `ordinal` with the convolution GEMMs in `conv_math` and activations stored as
    /// `storage`. bf16 storage comes with bf16 conv operands only: its conv kernels are the bf16
    /// tensor-core ones (their operands are bf16 values already).
    pub fn open_with_precision(ordinal: usize, conv_math: ConvMath, storage: Storage) -> Result<Self> {
        if storage == Storage::Bf16 && conv_math != ConvMath::Bf16 {
            return Err(Error::Cuda(format!(
                "bf16-stored activations need bf16 conv operands, not {conv_math}"
            )));
        }
        Ok(Self {
            dev: CudaDevice::open(ordinal)?,
            conv_math,
            storage,
            f32_region: F32Region::default(),
            failure: Mutex::new(None),
            staging: Mutex::new(None),
            staging_idx: Mutex::new(None),
        })
    }

    pub fn device(&self) -> &CudaDevice {
        &self.dev
    }

    /// The storage of the activations allocated now: f32 inside `with_f32_activations`.
    fn activation_storage(&self) -> Storage {
        if self.f32_region.active() {
            Storage::F32
        } else {
            self.storage
        }
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
            return GpuBuf::unallocated(0);
        }
        match self.dev.stream.alloc_zeros::<T>(len) {
            Ok(slice) => GpuBuf::new(slice, len, &self.dev.capture),
            Err(e) => {
                self.record(self.alloc_error(len * std::mem::size_of::<T>(), e));
                GpuBuf::unallocated(len)
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

    /// `host` rounded to bf16 (nearest even) as the bits of a bf16 activation.
    fn upload_bf16(&self, host: &[f32]) -> GpuBuf<u16> {
        let bits: Vec<u16> = host.iter().map(|&x| half::bf16::from_f32(x).to_bits()).collect();
        self.upload_slice(&bits)
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

/// The epilogue over the activations' device memory.
fn device_epilogue(e: BnEpilogue<'_, DeviceBuf>) -> Result<ActEpilogue<'_>> {
    Ok(ActEpilogue {
        residual: e.residual.map(DeviceBuf::act).transpose()?,
        relu: e.relu,
    })
}

/// An added input gradient over the activations' device memory.
fn device_grad_add(add: GradAdd<'_, DeviceBuf>) -> Result<(Act<'_>, Option<Act<'_>>)> {
    Ok((add.grad.act()?, add.relu_output.map(DeviceBuf::act).transpose()?))
}

/// The batch-norm coefficients' f32 device memory.
fn device_bn_eval(bn: BnEval<'_, DeviceBuf>) -> Result<BnEval<'_, CudaSlice<f32>>> {
    bn.try_map(DeviceBuf::f32)
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
    type Buf = DeviceBuf;
    type IdxBuf = GpuBuf<u32>;
    type Graph = CudaGraph;
    const ON_DEVICE: bool = true;

    fn describe(&self) -> String {
        match (self.conv_math, self.storage) {
            (ConvMath::F32, _) => format!("cuda f32 {}", self.dev.describe()),
            (m, Storage::F32) => format!("cuda f32 ({m} convolutions) {}", self.dev.describe()),
            (m, Storage::Bf16) => format!(
                "cuda f32 ({m} convolutions, bf16-stored activations) {}",
                self.dev.describe()
            ),
        }
    }

    fn conv_math(&self) -> ConvMath {
        self.conv_math
    }
    fn storage(&self) -> Storage {
        self.storage
    }
    fn with_f32_activations<R>(&self, f: impl FnOnce() -> R) -> R {
        self.f32_region.run(f)
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
        self.dev.capture.set_capturing(true);
        // relaxed: argument tables are uploaded on a side stream and waited for during a recording
        let mode = sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED;
        if let Err(e) = self.dev.stream.begin_capture(mode) {
            self.dev.capture.set_capturing(false);
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
        self.dev.capture.set_capturing(false);
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

    fn zeros(&self, len: usize) -> DeviceBuf {
        DeviceBuf::F32(self.alloc(len))
    }
    fn activation(&self, len: usize) -> DeviceBuf {
        match self.activation_storage() {
            Storage::F32 => DeviceBuf::F32(self.alloc(len)),
            Storage::Bf16 => DeviceBuf::Bf16(self.alloc(len)),
        }
    }
    fn upload(&self, host: &[f32]) -> DeviceBuf {
        DeviceBuf::F32(self.upload_slice(host))
    }
    fn upload_activation(&self, host: &[f32]) -> DeviceBuf {
        match self.activation_storage() {
            Storage::F32 => DeviceBuf::F32(self.upload_slice(host)),
            Storage::Bf16 => DeviceBuf::Bf16(self.upload_bf16(host)),
        }
    }
    fn upload_into(&self, host: &[f32], dst: &mut DeviceBuf) {
        self.run(|dev| {
            same_len("upload_into", host.len(), dst.len())?;
            if host.is_empty() {
                return Ok(());
            }
            Self::upload_pinned(dev, &self.staging, host, dst.f32_mut()?)
        })
    }
    fn upload_idx_into(&self, host: &[u32], dst: &mut GpuBuf<u32>) {
        self.run(|dev| {
            same_len("upload_idx_into", host.len(), dst.len())?;
            if host.is_empty() {
                return Ok(());
            }
            Self::upload_pinned(dev, &self.staging_idx, host, memory_mut(dst)?)
        })
    }
    fn download(&self, buf: &DeviceBuf) -> Vec<f32> {
        match buf {
            DeviceBuf::F32(b) => self.download_slice(b),
            DeviceBuf::Bf16(b) => self
                .download_slice(b)
                .into_iter()
                .map(|bits| half::bf16::from_bits(bits).to_f32())
                .collect(),
        }
    }
    fn upload_idx(&self, host: &[u32]) -> GpuBuf<u32> {
        self.upload_slice(host)
    }
    fn download_idx(&self, buf: &GpuBuf<u32>) -> Vec<u32> {
        self.download_slice(buf)
    }
    fn buf_len(&self, buf: &DeviceBuf) -> usize {
        buf.len()
    }
    fn copy(&self, src: &DeviceBuf, dst: &mut DeviceBuf) {
        self.run(|dev| {
            same_len("copy", src.len(), dst.len())?;
            if src.is_empty() {
                return Ok(());
            }
            let copied = match (src, dst) {
                (DeviceBuf::F32(s), DeviceBuf::F32(d)) => dev.stream.memcpy_dtod(memory(s)?, memory_mut(d)?),
                (DeviceBuf::Bf16(s), DeviceBuf::Bf16(d)) => dev.stream.memcpy_dtod(memory(s)?, memory_mut(d)?),
                _ => return Err(Error::Cuda("copy: between an f32 and a bf16 buffer".into())),
            };
            copied.map_err(|e| driver_err("copying on the device", e))
        })
    }
    fn copy_idx(&self, src: &GpuBuf<u32>, dst: &mut GpuBuf<u32>) {
        self.run(|dev| {
            same_len("copy_idx", src.len(), dst.len())?;
            if src.is_empty() {
                return Ok(());
            }
            dev.stream
                .memcpy_dtod(memory(src)?, memory_mut(dst)?)
                .map_err(|e| driver_err("copying on the device", e))
        })
    }
    fn fill(&self, buf: &mut DeviceBuf, value: f64) {
        self.run(|dev| {
            if buf.is_empty() {
                return Ok(());
            }
            elementwise::fill(dev, buf.act_mut()?, value as f32)
        })
    }
    fn synchronize(&self) {
        self.run(|dev| dev.stream.synchronize().map_err(|e| driver_err("synchronizing", e)))
    }

    fn add_assign(&self, acc: &mut DeviceBuf, x: &DeviceBuf) {
        self.run(|dev| {
            same_len("add_assign", acc.len(), x.len())?;
            elementwise::add_assign(dev, acc.act_mut()?, x.act()?)
        })
    }
    fn mul(&self, a: &DeviceBuf, b: &DeviceBuf, y: &mut DeviceBuf) {
        self.run(|dev| {
            same_len("mul", a.len(), b.len())?;
            same_len("mul", a.len(), y.len())?;
            elementwise::mul(dev, a.f32()?, b.f32()?, y.f32_mut()?)
        })
    }
    fn mul_acc(&self, a: &DeviceBuf, b: &DeviceBuf, acc: &mut DeviceBuf) {
        self.run(|dev| {
            same_len("mul_acc", a.len(), b.len())?;
            same_len("mul_acc", a.len(), acc.len())?;
            elementwise::mul_acc(dev, a.f32()?, b.f32()?, acc.f32_mut()?)
        })
    }
    fn scale(&self, x: &mut DeviceBuf, s: f64) {
        self.run(|dev| elementwise::scale(dev, x.act_mut()?, s as f32))
    }
    fn relu_forward(&self, x: &mut DeviceBuf) {
        self.run(|dev| elementwise::relu_forward(dev, x.act_mut()?))
    }
    fn relu_backward(&self, y: &DeviceBuf, dy: &mut DeviceBuf) {
        self.run(|dev| {
            same_len("relu_backward", y.len(), dy.len())?;
            elementwise::relu_backward(dev, y.act()?, dy.act_mut()?)
        })
    }
    fn relu_backward_add(&self, y: &DeviceBuf, dy: &DeviceBuf, acc: &mut DeviceBuf) {
        self.run(|dev| {
            same_len("relu_backward_add", y.len(), dy.len())?;
            same_len("relu_backward_add", y.len(), acc.len())?;
            elementwise::relu_backward_add(dev, y.act()?, dy.act()?, acc.act_mut()?)
        })
    }
    fn dropout(&self, x: &mut DeviceBuf, p: f64, seed: u64) {
        self.run(|dev| elementwise::dropout(dev, x.act_mut()?, p, seed))
    }

    fn kth_smallest(&self, bufs: &[&DeviceBuf], k: usize, out: &mut DeviceBuf) {
        self.run(|dev| {
            let pool = bufs.iter().map(|b| b.f32()).collect::<Result<Vec<_>>>()?;
            select::kth_smallest(dev, &pool, k, out.f32_mut()?)
        })
    }
    fn threshold_mask(&self, score: &DeviceBuf, tau: &DeviceBuf, mask: &mut DeviceBuf) {
        self.run(|dev| select::threshold_mask(dev, score.f32()?, tau.f32()?, mask.f32_mut()?))
    }
    fn abs(&self, x: &DeviceBuf, y: &mut DeviceBuf) {
        self.run(|dev| {
            same_len("abs", x.len(), y.len())?;
            elementwise::abs(dev, x.f32()?, y.f32_mut()?)
        })
    }

    fn permute(&self, x: &DeviceBuf, dims: &[usize], perm: &[usize], y: &mut DeviceBuf) {
        self.run(|dev| {
            same_len("permute", x.len(), y.len())?;
            permute::permute(dev, x.act()?, dims, perm, y.act_mut()?)
        })
    }

    fn conv_t_forward(&self, g: &ConvGeom, x: &DeviceBuf, w: &DeviceBuf, b: Option<&DeviceBuf>, y: &mut DeviceBuf) {
        self.run(|dev| {
            let b = b.map(DeviceBuf::f32).transpose()?;
            let outputs = GemmOutputs::default();
            conv::forward(dev, self.conv_math, g, x.act()?, w.f32()?, b, y.act_mut()?, outputs)
        })
    }
    fn conv_t_backward_input(&self, g: &ConvGeom, dy: &DeviceBuf, w: &DeviceBuf, dx: &mut DeviceBuf) {
        self.run(|dev| conv::backward_input(dev, self.conv_math, g, dy.act()?, w.f32()?, None, dx.act_mut()?))
    }
    fn conv_t_backward_input_add(
        &self,
        g: &ConvGeom,
        dy: &DeviceBuf,
        w: &DeviceBuf,
        add: GradAdd<'_, DeviceBuf>,
        dx: &mut DeviceBuf,
    ) {
        self.run(|dev| {
            let add = device_grad_add(add)?;
            conv::backward_input(dev, self.conv_math, g, dy.act()?, w.f32()?, Some(add), dx.act_mut()?)
        })
    }
    fn conv_t_backward_weight(
        &self,
        g: &ConvGeom,
        x: &DeviceBuf,
        dy: &DeviceBuf,
        dw: &mut DeviceBuf,
        db: Option<&mut DeviceBuf>,
    ) {
        self.run(|dev| {
            let db = db.map(DeviceBuf::f32_mut).transpose()?;
            conv::backward_weight(dev, self.conv_math, g, x.act()?, dy.act()?, dw.f32_mut()?, db)
        })
    }

    fn graph_forward(&self, g: &GraphGeom, z: &DeviceBuf, a: &DeviceBuf, y: &mut DeviceBuf) {
        self.run(|dev| graph::forward(dev, g, z.act()?, a.f32()?, y.act_mut()?))
    }
    fn graph_backward(
        &self,
        g: &GraphGeom,
        z: &DeviceBuf,
        a: &DeviceBuf,
        dy: &DeviceBuf,
        dz: &mut DeviceBuf,
        da: &mut DeviceBuf,
    ) {
        self.run(|dev| graph::backward(dev, g, z.act()?, a.f32()?, dy.act()?, dz.act_mut()?, da.f32_mut()?))
    }

    type BnStats = PartialMoments;
    fn conv_t_forward_with_stats(
        &self,
        g: &ConvGeom,
        x: &DeviceBuf,
        w: &DeviceBuf,
        b: Option<&DeviceBuf>,
        y: &mut DeviceBuf,
    ) -> Option<PartialMoments> {
        self.run_for(|dev| {
            let b = b.map(DeviceBuf::f32).transpose()?;
            let mut moments = conv::forward_moments(dev, g)?;
            let outputs = GemmOutputs::gathering(&mut moments);
            conv::forward(dev, self.conv_math, g, x.act()?, w.f32()?, b, y.act_mut()?, outputs)?;
            Ok(moments)
        })
    }
    fn graph_forward_with_stats(
        &self,
        g: &GraphGeom,
        z: &DeviceBuf,
        a: &DeviceBuf,
        y: &mut DeviceBuf,
    ) -> Option<PartialMoments> {
        self.run_for(|dev| graph::forward_with_stats(dev, g, z.act()?, a.f32()?, y.act_mut()?))
            .flatten()
    }
    fn conv_t_forward_bn_eval(
        &self,
        g: &ConvGeom,
        x: &DeviceBuf,
        w: &DeviceBuf,
        b: Option<&DeviceBuf>,
        bn: BnEval<'_, DeviceBuf>,
        epilogue: BnEpilogue<'_, DeviceBuf>,
        y: &mut DeviceBuf,
    ) {
        self.run(|dev| {
            let b = b.map(DeviceBuf::f32).transpose()?;
            let (bn, epilogue) = (device_bn_eval(bn)?, device_epilogue(epilogue)?);
            let coef = batch_norm::eval_coefficients(dev, "conv forward + batch_norm eval", g.c_out, bn)?;
            let outputs = GemmOutputs::bn_eval(&coef, epilogue);
            conv::forward(dev, self.conv_math, g, x.act()?, w.f32()?, b, y.act_mut()?, outputs)
        })
    }
    fn graph_forward_bn_eval(
        &self,
        g: &GraphGeom,
        z: &DeviceBuf,
        a: &DeviceBuf,
        bn: BnEval<'_, DeviceBuf>,
        epilogue: BnEpilogue<'_, DeviceBuf>,
        y: &mut DeviceBuf,
    ) {
        self.run(|dev| {
            let (bn, epilogue) = (device_bn_eval(bn)?, device_epilogue(epilogue)?);
            graph::forward_bn_eval(dev, g, z.act()?, a.f32()?, bn, epilogue, y.act_mut()?)
        })
    }
    fn batch_norm_train(
        &self,
        g: &BnGeom,
        x: &DeviceBuf,
        stats: Option<&PartialMoments>,
        epilogue: BnEpilogue<'_, DeviceBuf>,
        gamma: &DeviceBuf,
        beta: &DeviceBuf,
        running_mean: &mut DeviceBuf,
        running_var: &mut DeviceBuf,
        y: &mut DeviceBuf,
        save_mean: &mut DeviceBuf,
        save_invstd: &mut DeviceBuf,
    ) {
        self.run(|dev| {
            batch_norm::train(
                dev,
                g,
                x.act()?,
                stats,
                device_epilogue(epilogue)?,
                gamma.f32()?,
                beta.f32()?,
                running_mean.f32_mut()?,
                running_var.f32_mut()?,
                y.act_mut()?,
                save_mean.f32_mut()?,
                save_invstd.f32_mut()?,
            )
        })
    }
    fn batch_norm_eval(
        &self,
        g: &BnGeom,
        x: &DeviceBuf,
        epilogue: BnEpilogue<'_, DeviceBuf>,
        gamma: &DeviceBuf,
        beta: &DeviceBuf,
        running_mean: &DeviceBuf,
        running_var: &DeviceBuf,
        y: &mut DeviceBuf,
    ) {
        self.run(|dev| {
            batch_norm::eval(
                dev,
                g,
                x.act()?,
                device_epilogue(epilogue)?,
                gamma.f32()?,
                beta.f32()?,
                running_mean.f32()?,
                running_var.f32()?,
                y.act_mut()?,
            )
        })
    }
    fn batch_norm_backward(
        &self,
        g: &BnGeom,
        x: &DeviceBuf,
        dy: &DeviceBuf,
        relu_output: Option<&DeviceBuf>,
        gamma: &DeviceBuf,
        save_mean: &DeviceBuf,
        save_invstd: &DeviceBuf,
        dx: &mut DeviceBuf,
        dgamma: &mut DeviceBuf,
        dbeta: &mut DeviceBuf,
    ) {
        self.run(|dev| {
            batch_norm::backward(
                dev,
                g,
                x.act()?,
                dy.act()?,
                relu_output.map(DeviceBuf::act).transpose()?,
                gamma.f32()?,
                save_mean.f32()?,
                save_invstd.f32()?,
                dx.act_mut()?,
                dgamma.f32_mut()?,
                dbeta.f32_mut()?,
            )
        })
    }

    fn mean_pool_forward(&self, n: usize, persons: usize, c: usize, s: usize, x: &DeviceBuf, y: &mut DeviceBuf) {
        self.run(|dev| pool::forward(dev, n, persons, c, s, x.act()?, y.act_mut()?))
    }
    fn mean_pool_backward(&self, n: usize, persons: usize, c: usize, s: usize, dy: &DeviceBuf, dx: &mut DeviceBuf) {
        self.run(|dev| pool::backward(dev, n, persons, c, s, dy.act()?, dx.act_mut()?))
    }
    fn cross_entropy(
        &self,
        n: usize,
        classes: usize,
        logits: &DeviceBuf,
        labels: &GpuBuf<u32>,
        smoothing: f64,
        loss: &mut DeviceBuf,
        dlogits: &mut DeviceBuf,
    ) {
        self.run(|dev| {
            loss::cross_entropy(
                dev,
                n,
                classes,
                logits.act()?,
                memory(labels)?,
                smoothing,
                loss.f32_mut()?,
                dlogits.act_mut()?,
            )
        })
    }

    fn sum_squares(&self, bufs: &[&DeviceBuf], out: &mut DeviceBuf) {
        self.run(|dev| {
            let tensors = bufs
                .iter()
                .filter(|b| !b.is_empty())
                .map(|b| b.f32())
                .collect::<Result<Vec<_>>>()?;
            optim::sum_squares(dev, &tensors, out.f32_mut()?)
        })
    }
    fn clip_scale(&self, sq_norm: &DeviceBuf, max_norm: f64, scale: &mut DeviceBuf) {
        self.run(|dev| optim::clip_scale(dev, sq_norm.f32()?, max_norm, scale.f32_mut()?))
    }
    fn cosine_lr(&self, sched: &CosineSchedule, step: &GpuBuf<u32>, lr: &mut DeviceBuf) {
        self.run(|dev| optim::cosine_lr(dev, sched, memory(step)?, lr.f32_mut()?))
    }
    fn increment_step(&self, step: &mut GpuBuf<u32>) {
        self.run(|dev| optim::increment_step(dev, memory_mut(step)?))
    }
    fn sgd_step(
        &self,
        params: &mut [&mut DeviceBuf],
        grads: &[&DeviceBuf],
        momentum: &mut [&mut DeviceBuf],
        hyper: &SgdHyper,
        lr: &DeviceBuf,
        scale: Option<&DeviceBuf>,
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
                    triples.push((p.f32_mut()?, g.f32()?, m.f32_mut()?));
                }
            }
            let scale = scale.map(DeviceBuf::f32).transpose()?;
            optim::sgd_step(dev, &mut triples, hyper, lr.f32()?, scale, first_step)
        })
    }

    type SparseWeight = GpuCsrWeight;
    type SemiSparseWeight = GpuPacked24Weight;

    fn sparse_weight(&self, w: &DeviceBuf, mask: &DeviceBuf, c_out: usize, c_in: usize, kt: usize) -> GpuCsrWeight {
        self.run_for(|dev| sparse::csr_from_mask(dev, w.f32()?, mask.f32()?, c_out, c_in, kt))
            .unwrap_or_else(|| GpuCsrWeight::unusable(c_out, c_in, kt))
    }
    fn sparse_weight_nnz(&self, sw: &GpuCsrWeight) -> usize {
        sw.nnz()
    }
    fn sparse_weight_update(&self, sw: &mut GpuCsrWeight, w: &DeviceBuf) {
        self.run(|dev| sparse::csr_update_values(dev, sw, w.f32()?))
    }
    fn sparse_weight_host(&self, sw: &GpuCsrWeight) -> CsrWeight<f32> {
        self.run_for(|dev| sparse::csr_download(dev, sw)).unwrap_or_default()
    }
    fn conv_t_forward_sparse(
        &self,
        g: &ConvGeom,
        x: &DeviceBuf,
        w: &GpuCsrWeight,
        b: Option<&DeviceBuf>,
        y: &mut DeviceBuf,
    ) {
        self.run(|dev| {
            let b = b.map(DeviceBuf::f32).transpose()?;
            sparse::csr_forward(dev, g, x.f32()?, w, b, y.f32_mut()?)
        })
    }
    fn conv_t_backward_input_sparse(&self, g: &ConvGeom, dy: &DeviceBuf, w: &GpuCsrWeight, dx: &mut DeviceBuf) {
        self.run(|dev| sparse::csr_backward_input(dev, g, dy.f32()?, w, dx.f32_mut()?))
    }
    fn prune_2_4(&self, w: &DeviceBuf, c_out: usize, c_in: usize, kt: usize, mask: &mut DeviceBuf) {
        self.run(|dev| sparse::prune_2_4(dev, w.f32()?, c_out, c_in, kt, mask.f32_mut()?))
    }
    fn pack_2_4(
        &self,
        w: &DeviceBuf,
        mask: &DeviceBuf,
        c_out: usize,
        c_in: usize,
        kt: usize,
    ) -> Result<GpuPacked24Weight> {
        sparse::pack_2_4(&self.dev, w.f32()?, mask.f32()?, c_out, c_in, kt)
    }
    fn semi_sparse_weight_host(&self, w: &GpuPacked24Weight) -> Packed24Weight {
        self.run_for(|dev| sparse::packed_download(dev, w)).unwrap_or_default()
    }
    fn conv_t_forward_2_4(
        &self,
        g: &ConvGeom,
        x: &DeviceBuf,
        w: &GpuPacked24Weight,
        b: Option<&DeviceBuf>,
        y: &mut DeviceBuf,
    ) {
        self.run(|dev| {
            let b = b.map(DeviceBuf::f32).transpose()?;
            sparse::forward_2_4(dev, g, x.f32()?, w, b, y.f32_mut()?)
        })
    }
    fn conv_t_backward_input_2_4(&self, g: &ConvGeom, dy: &DeviceBuf, w: &GpuPacked24Weight, dx: &mut DeviceBuf) {
        self.run(|dev| sparse::backward_input_2_4(dev, g, dy.f32()?, w, dx.f32_mut()?))
    }
}
