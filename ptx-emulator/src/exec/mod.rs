//! Decoded kernels and their execution.

pub mod check;
pub mod mma;
pub mod numerics;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::memory::DeviceMemory;

/// A module loaded into the emulator: its kernels decoded, its `.global` variables allocated.
pub struct LoadedModule {
    pub name: String,
    pub kernels: BTreeMap<String, Arc<Kernel>>,
    /// `.global` variables: name → (device address, bytes).
    pub globals: BTreeMap<String, (u64, usize)>,
}

/// Why a module did not load: the module, the kernel, the PTX line and, through `.loc`, the
/// source line of what could not be parsed or is not implemented.
#[derive(Debug, Clone)]
pub struct LoadError {
    pub module: String,
    pub kernel: Option<String>,
    pub ptx_line: u32,
    /// `file.cu:line:column` of the `.loc` in force, if any.
    pub source: Option<String>,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "module {}", self.module)?;
        if let Some(k) = &self.kernel {
            write!(f, ", kernel {k}")?;
        }
        write!(f, ", PTX line {}", self.ptx_line)?;
        if let Some(s) = &self.source {
            write!(f, " ({s})")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// One kernel parameter's place in the packed parameter buffer.
#[derive(Debug, Clone, Copy)]
pub struct ParamSlot {
    pub offset: usize,
    pub size: usize,
}

/// A decoded kernel.
pub struct Kernel {
    pub name: String,
    pub params: Vec<ParamSlot>,
    /// Size of the packed parameter buffer (`params` laid out with their alignments).
    pub param_bytes: usize,
    pub static_shared_bytes: u32,
    pub local_bytes: u32,
    /// `.maxntid`'s product, else 1024.
    pub max_threads_per_block: u32,
}

/// A launch's shape.
#[derive(Debug, Clone, Copy)]
pub struct LaunchConfig {
    pub grid: [u32; 3],
    pub block: [u32; 3],
    pub dynamic_shared_bytes: u32,
}

/// How launches run.
#[derive(Debug, Clone, Copy)]
pub struct ExecOptions {
    /// memcheck, racecheck and initcheck (on unless `PTX_EMULATOR_CHECKS=0`).
    pub checks: bool,
    /// Worker threads blocks are spread over (`PTX_EMULATOR_THREADS`, else the host's cores).
    pub threads: usize,
}

impl ExecOptions {
    /// The options the environment asks for.
    pub fn from_env() -> Self {
        let checks = std::env::var("PTX_EMULATOR_CHECKS").map_or(true, |v| v != "0");
        let threads = std::env::var("PTX_EMULATOR_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        Self { checks, threads }
    }
}

/// What a fault is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// A global, shared or local access outside its memory.
    OutOfBounds,
    /// An access not aligned to its size.
    Misaligned,
    /// Two threads touch the same shared bytes, one writing, with no barrier between.
    SharedRace,
    /// Two threads of one launch touch the same global bytes, one writing, non-atomically.
    GlobalRace,
    /// A `cp.async` destination read before its `cp.async.wait_group`.
    AsyncCopyNotWaited,
    /// A read of shared memory never written in this block.
    UninitializedShared,
    /// A read of device memory never written since its allocation.
    UninitializedGlobal,
    /// A warp-collective instruction (`shfl.sync`, `vote.sync`, `mma`, `bar.warp.sync`) that not
    /// every lane of its member mask reached together.
    DivergentCollective,
    /// A `bar.sync` that not every thread of the block reached, or reached in divergent code.
    BarrierDivergence,
    /// Anything else the program did that has no defined meaning (`trap`, a bad shared size).
    Invalid,
}

/// A failed launch: what, where (kernel, block, thread, PTX line, source line) and the details.
#[derive(Debug, Clone)]
pub struct Fault {
    pub kind: FaultKind,
    pub kernel: String,
    pub block: [u32; 3],
    pub thread: [u32; 3],
    pub ptx_line: u32,
    /// `file.cu:line:column` (and where it was inlined), if the PTX has `.loc`.
    pub source: Option<String>,
    pub detail: String,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [bx, by, bz] = self.block;
        let [tx, ty, tz] = self.thread;
        write!(
            f,
            "{:?} in kernel {}, block ({bx},{by},{bz}), thread ({tx},{ty},{tz}), PTX line {}",
            self.kind, self.kernel, self.ptx_line
        )?;
        if let Some(s) = &self.source {
            write!(f, " ({s})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// Parses and decodes `text` (module `name`, for reports) and allocates its `.global`s.
pub fn load_module(text: &str, name: &str, memory: &DeviceMemory) -> Result<LoadedModule, LoadError> {
    let _ = (text, name, memory);
    todo!("the executor")
}

/// Runs `kernel` over `config`'s grid with the packed parameter buffer `params`
/// (`kernel.param_bytes` bytes) and waits for it.
pub fn launch(
    kernel: &Kernel,
    config: &LaunchConfig,
    params: &[u8],
    memory: &DeviceMemory,
    options: &ExecOptions,
) -> Result<(), Fault> {
    let _ = (kernel, config, params, memory, options);
    todo!("the executor")
}
