//! Detecting a usable GPU without panicking: cudarc panics when libcuda is missing, so look for the
//! library first, then count devices with the panic caught.

use std::sync::OnceLock;

/// `Ok(device count)` or why no GPU can be used. Probed once per process.
pub fn probe_gpu() -> Result<usize, String> {
    static PROBE: OnceLock<Result<usize, String>> = OnceLock::new();
    PROBE.get_or_init(probe_once).clone()
}

fn probe_once() -> Result<usize, String> {
    // SAFETY: only tries to dlopen the driver library and closes it again.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err("no CUDA driver library (libcuda.so) found".into());
    }
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let counted = std::panic::catch_unwind(cudarc::driver::CudaContext::device_count);
    std::panic::set_hook(hook);
    match counted {
        Ok(Ok(n)) if n > 0 => Ok(n as usize),
        Ok(Ok(_)) => Err("the CUDA driver reports no devices".into()),
        Ok(Err(e)) => Err(format!("CUDA driver initialisation failed: {e:?}")),
        Err(_) => Err("the CUDA driver library lacks a required symbol (driver older than CUDA 13.0?)".into()),
    }
}
