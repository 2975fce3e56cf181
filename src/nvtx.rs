//! NVTX ranges for Nsight Systems and Nsight Compute, and the profiler capture range, without
//! linking anything: NVTX v2 (`libnvToolsExt`) is gone from CUDA 13, so the NVTX3 interop library
//! (`libnvtx3interop.so.1`, shipped with the toolkit and in the `nvidia-nvtx` wheel; or the path in
//! `LEANGCN_NVTX_LIB`) is opened at the first range when present. Without it, or with
//! `LEANGCN_NVTX=0`, a range costs one check of a cached flag and builds no name.

use std::ffi::{c_char, c_int, CString};
use std::sync::OnceLock;

type PushFn = unsafe extern "C" fn(*const c_char) -> c_int;
type PopFn = unsafe extern "C" fn() -> c_int;

struct Nvtx {
    push: PushFn,
    pop: PopFn,
    _lib: libloading::Library,
}

fn nvtx() -> Option<&'static Nvtx> {
    static NVTX: OnceLock<Option<Nvtx>> = OnceLock::new();
    NVTX.get_or_init(open).as_ref()
}

fn open() -> Option<Nvtx> {
    if std::env::var("LEANGCN_NVTX").is_ok_and(|v| v == "0") {
        return None;
    }
    let explicit = std::env::var("LEANGCN_NVTX_LIB").ok();
    let names =
        explicit
            .iter()
            .map(String::as_str)
            .chain(["libnvtx3interop.so.1", "libnvtx3interop.so", "libnvToolsExt.so.1"]);
    for name in names {
        // SAFETY: loading NVIDIA's NVTX library runs no initialisers beyond its own; the two
        // symbols have the C signatures of nvToolsExt.h.
        unsafe {
            let Ok(lib) = libloading::Library::new(name) else {
                continue;
            };
            let push = lib.get::<PushFn>(b"nvtxRangePushA\0").map(|s| *s);
            let pop = lib.get::<PopFn>(b"nvtxRangePop\0").map(|s| *s);
            if let (Ok(push), Ok(pop)) = (push, pop) {
                return Some(Nvtx { push, pop, _lib: lib });
            }
        }
    }
    None
}

/// Whether ranges reach a profiler (the library is loaded).
pub fn enabled() -> bool {
    nvtx().is_some()
}

/// An open NVTX range; closed when dropped.
#[must_use = "a range closes when dropped"]
pub struct Range(bool);

/// Opens a range named `name()`; the name is built only when NVTX is loaded.
pub fn range(name: impl FnOnce() -> String) -> Range {
    match nvtx() {
        Some(n) => {
            let name = CString::new(name()).unwrap_or_default();
            // SAFETY: a valid NUL-terminated string, copied by NVTX before it returns.
            unsafe { (n.push)(name.as_ptr()) };
            Range(true)
        }
        None => Range(false),
    }
}

impl Drop for Range {
    fn drop(&mut self) {
        if let (true, Some(n)) = (self.0, nvtx()) {
            // SAFETY: pops the range this value pushed.
            unsafe { (n.pop)() };
        }
    }
}

/// Steps `a..b` (0-based, `b` exclusive) inside the profiler's capture range: `nsys
/// --capture-range=cudaProfilerApi` and `ncu --profile-from-start off` record only those.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProfileSteps {
    pub start: u64,
    pub end: u64,
}

impl std::str::FromStr for ProfileSteps {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        let parsed = s
            .split_once("..")
            .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
        match parsed {
            Some((start, end)) if start < end => Ok(Self { start, end }),
            _ => Err(crate::Error::config(format!(
                "--profile-steps '{s}': expected A..B with A < B (steps A to B-1 are captured)"
            ))),
        }
    }
}

impl ProfileSteps {
    /// Opens the capture range before step `start` and closes it before step `end`. Only with a
    /// usable GPU: the capture range is the CUDA driver's (`cuProfilerStart`/`Stop`).
    pub fn at_step(&self, step: u64) {
        if crate::backend::cuda::probe::probe_gpu().is_err() {
            return;
        }
        let result = if step == self.start {
            cudarc::driver::profiler_start()
        } else if step == self.end {
            cudarc::driver::profiler_stop()
        } else {
            return;
        };
        if let Err(e) = result {
            eprintln!("profiler capture range at step {step}: {e:?}");
        }
    }
}
