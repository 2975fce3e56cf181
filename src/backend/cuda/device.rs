//! Opening the GPU: the driver context, a stream of our own (graph capture is not allowed on the
//! legacy default stream), every embedded PTX module loaded, and the kernel-launch helper.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cudarc::driver::{
    sys, CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtr, DeviceRepr, LaunchArgs, LaunchConfig,
};
use cudarc::nvrtc::Ptx;

use super::buffer::CaptureState;
use super::kernels::MODULES;
use super::probe::probe_gpu;
use crate::{Error, Result};

pub struct CudaDevice {
    pub ctx: Arc<CudaContext>,
    pub stream: Arc<CudaStream>,
    /// A second stream for uploads that must not enter a graph being recorded on `stream`.
    side: Arc<CudaStream>,
    /// Whether `stream` is recording a graph, and the frees deferred until it ends.
    pub capture: Arc<CaptureState>,
    modules: HashMap<&'static str, Arc<CudaModule>>,
    /// Kernels looked up so far, by (module, kernel): a lookup is a driver call, a launch is frequent.
    functions: Mutex<HashMap<(&'static str, &'static str), CudaFunction>>,
    /// Device copies of small argument tables (the SGD's tensor list, a score pool's segments), by
    /// their bytes: a step passes the same tables every time, and a copy from the host inside a
    /// captured step would not be allowed.
    tables: Mutex<HashMap<Vec<u8>, CudaSlice<u8>>>,
}

/// Whether a device name or backend description names the PTX emulator.
pub fn is_emulated(description: &str) -> bool {
    description.contains("PTX emulator")
}

/// Tables kept at most; a training run uses a handful, tests and sweeps may make more.
const MAX_TABLES: usize = 256;

/// A driver error as ours, saying what was being done.
pub fn driver_err(what: &str, e: cudarc::driver::DriverError) -> Error {
    Error::Cuda(format!("{what}: {e:?}"))
}

impl CudaDevice {
    /// Opens device `ordinal`, or says clearly why it cannot.
    pub fn open(ordinal: usize) -> Result<Self> {
        if MODULES.is_empty() {
            return Err(Error::Cuda(
                "this build has no kernels: nvcc was not found when it was compiled; run `export NVCC=$(scripts/install-nvcc)` and rebuild".into(),
            ));
        }
        let count = probe_gpu().map_err(Error::Cuda)?;
        if ordinal >= count {
            return Err(Error::Cuda(format!("device {ordinal} asked for, {count} present")));
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| driver_err("creating the context", e))?;
        // the trainer orders its own streams; per-buffer event tracking would only add syncs
        // SAFETY: called before any buffer is allocated in this context.
        unsafe { ctx.disable_event_tracking() };
        keep_freed_memory_pooled(&ctx)?;
        let stream = ctx.new_stream().map_err(|e| driver_err("creating a stream", e))?;
        let side = ctx.new_stream().map_err(|e| driver_err("creating a stream", e))?;
        let mut modules = HashMap::new();
        for (name, ptx) in MODULES {
            let module = ctx
                .load_module(Ptx::from_src(*ptx))
                .map_err(|e| driver_err(&format!("loading module {name}"), e))?;
            modules.insert(*name, module);
        }
        Ok(Self {
            ctx,
            stream,
            side,
            capture: Arc::default(),
            modules,
            functions: Mutex::new(HashMap::new()),
            tables: Mutex::new(HashMap::new()),
        })
    }

    /// Kernel `kernel` of module `module`.
    pub fn function(&self, module: &'static str, kernel: &'static str) -> Result<CudaFunction> {
        let mut cache = self.functions.lock().expect("kernel cache lock");
        if let Some(f) = cache.get(&(module, kernel)) {
            return Ok(f.clone());
        }
        let m = self
            .modules
            .get(module)
            .ok_or_else(|| Error::Cuda(format!("no module '{module}' in this build")))?;
        let f = m
            .load_function(kernel)
            .map_err(|e| Error::Cuda(format!("kernel {module}::{kernel}: {e:?}")))?;
        cache.insert((module, kernel), f.clone());
        Ok(f)
    }

    /// Launches `module::kernel` on the device's stream with the arguments `push` adds, in the
    /// order of the kernel's signature.
    pub fn launch<'a>(
        &'a self,
        function: &'a CudaFunction,
        name: &str,
        cfg: LaunchConfig,
        push: impl FnOnce(&mut LaunchArgs<'a>),
    ) -> Result<()> {
        let mut builder = self.stream.launch_builder(function);
        push(&mut builder);
        // SAFETY: every launcher pushes arguments matching its kernel's signature, with device
        // buffers of the lengths the kernel indexes (checked by the launcher).
        unsafe { builder.launch(cfg) }.map_err(|e| driver_err(&format!("launching {name}"), e))?;
        Ok(())
    }

    /// The device address of a copy of `rows` (plain `#[repr(C)]` values), uploaded the first time
    /// these exact bytes are asked for and kept for later calls. The upload goes through the side
    /// stream and is waited for, so it is never part of a graph being recorded (which is why the
    /// capture mode is relaxed) and is complete before any kernel reads it.
    pub fn table<T: DeviceRepr + Copy>(&self, rows: &[T]) -> Result<u64> {
        // SAFETY: `rows` are initialised plain values without padding-dependent meaning; their
        // bytes are only compared and copied.
        let bytes =
            unsafe { std::slice::from_raw_parts(rows.as_ptr() as *const u8, std::mem::size_of_val(rows)) }.to_vec();
        let mut tables = self.tables.lock().expect("table cache lock");
        if let Some(t) = tables.get(&bytes) {
            return Ok(t.device_ptr(&self.side).0);
        }
        if tables.len() >= MAX_TABLES {
            tables.clear();
        }
        let copy = self
            .side
            .clone_htod(&bytes)
            .map_err(|e| driver_err("uploading an argument table", e))?;
        self.side
            .synchronize()
            .map_err(|e| driver_err("uploading an argument table", e))?;
        let ptr = copy.device_ptr(&self.side).0;
        tables.insert(bytes, copy);
        Ok(ptr)
    }

    /// Whether the device is the project's PTX emulator (a `libcuda.so` that runs the kernels on
    /// the CPU, see `scripts/emulator`): right, but no faster than the CPU, and its times are not
    /// a GPU's.
    pub fn is_emulated(&self) -> bool {
        self.ctx.name().is_ok_and(|n| is_emulated(&n))
    }

    pub fn describe(&self) -> String {
        let name = self.ctx.name().unwrap_or_else(|_| "unknown GPU".into());
        let (major, minor) = self.ctx.compute_capability().unwrap_or((0, 0));
        format!("{name} (sm_{major}{minor})")
    }

    /// (free, total) device memory in bytes.
    pub fn memory(&self) -> Result<(usize, usize)> {
        self.ctx
            .mem_get_info()
            .map_err(|e| driver_err("querying device memory", e))
    }
}

/// The caching allocator: buffers come from the device's stream-ordered memory pool
/// (`cuMemAllocAsync`, which cudarc uses where the device supports it), and this tells the pool
/// to keep freed memory instead of returning it to the driver at each synchronisation, so the
/// allocations of a training step are served from the pool after the first step and nothing in the
/// step reaches the driver's allocator.
fn keep_freed_memory_pooled(ctx: &Arc<CudaContext>) -> Result<()> {
    if !ctx.has_async_alloc() {
        return Ok(());
    }
    let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
    let mut threshold: u64 = u64::MAX;
    // SAFETY: plain driver calls on the context's device with valid out-pointers.
    unsafe {
        sys::cuDeviceGetDefaultMemPool(&mut pool, ctx.cu_device())
            .result()
            .map_err(|e| driver_err("getting the default memory pool", e))?;
        sys::cuMemPoolSetAttribute(
            pool,
            sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
            &mut threshold as *mut u64 as *mut std::ffi::c_void,
        )
        .result()
        .map_err(|e| driver_err("setting the memory pool's release threshold", e))?;
    }
    Ok(())
}
