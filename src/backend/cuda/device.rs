//! Opening the GPU: the driver context, a stream of our own (graph capture is not allowed on the
//! legacy default stream), and every embedded PTX module loaded.

use std::collections::HashMap;
use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream};
use cudarc::nvrtc::Ptx;

use super::kernels::MODULES;
use super::probe::probe_gpu;
use crate::{Error, Result};

pub struct CudaDevice {
    pub ctx: Arc<CudaContext>,
    pub stream: Arc<CudaStream>,
    modules: HashMap<&'static str, Arc<CudaModule>>,
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
        let driver = |what: &str, e: cudarc::driver::DriverError| Error::Cuda(format!("{what}: {e:?}"));
        let ctx = CudaContext::new(ordinal).map_err(|e| driver("creating the context", e))?;
        // the trainer orders its own streams; per-buffer event tracking would only add syncs
        // SAFETY: called before any buffer is allocated in this context.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.new_stream().map_err(|e| driver("creating a stream", e))?;
        let mut modules = HashMap::new();
        for (name, ptx) in MODULES {
            let module = ctx
                .load_module(Ptx::from_src(*ptx))
                .map_err(|e| driver(&format!("loading module {name}"), e))?;
            modules.insert(*name, module);
        }
        Ok(Self { ctx, stream, modules })
    }

    /// Kernel `kernel` of module `module`.
    pub fn function(&self, module: &str, kernel: &str) -> Result<CudaFunction> {
        let m = self
            .modules
            .get(module)
            .ok_or_else(|| Error::Cuda(format!("no module '{module}' in this build")))?;
        m.load_function(kernel)
            .map_err(|e| Error::Cuda(format!("kernel {module}::{kernel}: {e:?}")))
    }

    pub fn describe(&self) -> String {
        let name = self.ctx.name().unwrap_or_else(|_| "unknown GPU".into());
        let (major, minor) = self.ctx.compute_capability().unwrap_or((0, 0));
        format!("{name} (sm_{major}{minor})")
    }
}
