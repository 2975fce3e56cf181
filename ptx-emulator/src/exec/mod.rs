//! Decoded kernels and their execution: a launch spreads its blocks over worker threads, each
//! runs a block's warps (`block`), each warp its 32 lanes in lockstep (`warp`), with the checks of
//! `check` when the launch is checked.

mod access;
mod alu;
mod block;
pub mod check;
mod collective;
mod decode;
pub mod ir;
pub mod mma;
pub mod numerics;
mod reconverge;
mod regalloc;
mod warp;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::memory::{Allocation, AllocationKind, DeviceMemory};
use crate::ptx::ast;
use decode::Program;

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
    program: Program,
    /// The module's name and `.file` table, for reports.
    module: String,
    files: Arc<BTreeMap<u32, String>>,
}

impl Kernel {
    /// Registers of the decoded kernel after compaction (each one value of up to 64 bits per
    /// thread): an estimate of what ptxas allocates, which the emulator cannot know.
    pub fn registers(&self) -> u32 {
        self.program.num_regs
    }
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
    let module = crate::ptx::parse(text).map_err(|e| LoadError {
        module: name.to_string(),
        kernel: None,
        ptx_line: e.line,
        source: None,
        message: format!("column {}: {}", e.column, e.message),
    })?;
    let files = Arc::new(module.files.clone());
    let error = |kernel: Option<&str>, line: u32, loc: Option<ast::SourceLoc>, message: String| LoadError {
        module: name.to_string(),
        kernel: kernel.map(str::to_string),
        ptx_line: line,
        source: loc.map(|l| source_text(&files, &l)),
        message,
    };
    let mut globals = BTreeMap::new();
    let mut addresses = BTreeMap::new();
    for v in &module.variables {
        if !matches!(v.space, ast::StateSpace::Global | ast::StateSpace::Const) || v.is_extern {
            continue;
        }
        let bytes = initial_bytes(v).map_err(|m| error(None, v.line, None, m))?;
        let address = memory
            .alloc(bytes.len(), AllocationKind::ModuleGlobal)
            .ok_or_else(|| error(None, v.line, None, format!("no device memory for {}", v.name)))?;
        memory
            .write(address, &bytes)
            .map_err(|e| error(None, v.line, None, e.to_string()))?;
        globals.insert(v.name.clone(), (address, bytes.len()));
        addresses.insert(v.name.clone(), address);
    }
    let mut kernels = BTreeMap::new();
    for f in &module.functions {
        if f.kind != ast::FunctionKind::Entry || f.body.is_none() {
            continue;
        }
        let program = decode::decode_kernel(&module, f, &addresses)
            .map_err(|(line, loc, message)| error(Some(&f.name), line, loc, message))?;
        let kernel = Kernel {
            name: f.name.clone(),
            params: program
                .params
                .iter()
                .map(|&(offset, size)| ParamSlot { offset, size })
                .collect(),
            param_bytes: program.param_bytes,
            static_shared_bytes: program.shared_static,
            local_bytes: program.local_bytes,
            max_threads_per_block: program.max_threads.unwrap_or(1024).min(1024),
            program,
            module: name.to_string(),
            files: files.clone(),
        };
        kernels.insert(f.name.clone(), Arc::new(kernel));
    }
    Ok(LoadedModule {
        name: name.to_string(),
        kernels,
        globals,
    })
}

/// A module variable's initial bytes: its initialiser's elements at the variable's type, zeros
/// where there is none.
fn initial_bytes(v: &ast::Variable) -> Result<Vec<u8>, String> {
    let size = v.size_bytes().ok_or(format!("{} has no size", v.name))? as usize;
    let mut bytes = vec![0u8; size];
    let elem = v.ty.bytes() as usize;
    for (i, value) in v.init.iter().flatten().enumerate() {
        let bits: u64 = match (value, v.ty) {
            (ast::Operand::Int(x), ast::Type::F32) => u64::from((*x as f32).to_bits()),
            (ast::Operand::Int(x), ast::Type::F64) => (*x as f64).to_bits(),
            (ast::Operand::Int(x), _) => *x as u64,
            (ast::Operand::F32Bits(b), _) => u64::from(*b),
            (ast::Operand::F64Bits(b), _) => *b,
            (ast::Operand::Float(f), ast::Type::F32) => u64::from((*f as f32).to_bits()),
            (ast::Operand::Float(f), _) => f.to_bits(),
            (other, _) => return Err(format!("initialiser {other:?} of {} is not supported", v.name)),
        };
        let at = i * elem;
        if at + elem > size {
            return Err(format!("{} has more initialisers than elements", v.name));
        }
        bytes[at..at + elem].copy_from_slice(&bits.to_le_bytes()[..elem]);
    }
    Ok(bytes)
}

/// `file:line:column`, and where it was inlined, for a `.loc`.
fn source_text(files: &BTreeMap<u32, String>, loc: &ast::SourceLoc) -> String {
    let file = |i: u32| {
        let path = files.get(&i).map_or("?", String::as_str);
        // paths relative to the working directory read better in reports
        std::env::current_dir()
            .ok()
            .and_then(|cwd| {
                std::path::Path::new(path)
                    .strip_prefix(cwd)
                    .ok()
                    .map(|p| p.display().to_string())
            })
            .unwrap_or_else(|| path.to_string())
    };
    let mut s = format!("{}:{}:{}", file(loc.file), loc.line, loc.column);
    if let Some((f, l, c)) = loc.inlined_at {
        s.push_str(&format!(", inlined at {}:{l}:{c}", file(f)));
    }
    s
}

/// What every block of a launch shares.
pub(crate) struct Launch<'a> {
    kernel: &'a Kernel,
    program: &'a Program,
    params: &'a [u8],
    config: LaunchConfig,
    memory: &'a DeviceMemory,
    /// Live allocations in address order: what global accesses are checked against.
    allocations: Vec<Arc<Allocation>>,
    checks: bool,
    /// This launch's number in the process, for the global race state.
    serial: u64,
    block_threads: u32,
    shared_bytes: usize,
}

impl<'a> Launch<'a> {
    /// The allocation that holds `address..address+len`.
    fn allocation(this: &'a Launch<'a>, address: u64, len: usize) -> Option<&'a Allocation> {
        let i = this.allocations.partition_point(|a| a.base() <= address);
        let a = this.allocations.get(i.checked_sub(1)?)?;
        (address + len as u64 <= a.end()).then_some(&**a)
    }

    /// `%tid` of a thread from its linear index in the block.
    fn thread_xyz(&self, t: u32) -> [u32; 3] {
        let [bx, by, _] = self.config.block;
        [t % bx, (t / bx) % by, t / (bx * by)]
    }

    /// `file.cu:line:column (PTX line n)` of an instruction's site.
    fn site_text(&self, site: u32) -> String {
        let s = self.program.sites[site as usize];
        match s.loc {
            Some(l) => format!("{} (PTX line {})", source_text(&self.kernel.files, &l), s.ptx_line),
            None => format!("PTX line {}", s.ptx_line),
        }
    }

    fn fault(&self, kind: FaultKind, block: [u32; 3], thread: u32, site: u32, detail: String) -> Box<Fault> {
        let site = self.program.sites[site as usize];
        Box::new(Fault {
            kind,
            kernel: self.kernel.name.clone(),
            block,
            thread: self.thread_xyz(thread),
            ptx_line: site.ptx_line,
            source: site.loc.map(|l| source_text(&self.kernel.files, &l)),
            detail: format!("{detail} (module {})", self.kernel.module),
        })
    }
}

/// What a launch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LaunchStats {
    /// Instructions executed, counted once per warp.
    pub warp_instructions: u64,
    /// Instructions executed, counted once per active lane (thread instructions).
    pub lane_instructions: u64,
}

/// The worker threads of launches with `threads` workers, kept from launch to launch (a
/// launch of a small kernel would otherwise spend more on starting threads than on the kernel).
fn workers(threads: usize) -> Arc<rayon::ThreadPool> {
    static POOLS: Mutex<BTreeMap<usize, Arc<rayon::ThreadPool>>> = Mutex::new(BTreeMap::new());
    let mut pools = POOLS.lock().expect("worker pools lock");
    pools
        .entry(threads)
        .or_insert_with(|| {
            Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("ptx-emulator-{i}"))
                    .build()
                    .expect("the emulator's worker threads"),
            )
        })
        .clone()
}

/// Numbers launches, so the global race state of one launch is told from another's.
static LAUNCHES: AtomicU64 = AtomicU64::new(1);

/// Runs `kernel` over `config`'s grid with the packed parameter buffer `params`
/// (`kernel.param_bytes` bytes) and waits for it. Blocks are spread over `options.threads`
/// workers; when blocks fault, the one with the lowest index is reported, so a failing launch
/// reports the same fault every time.
pub fn launch(
    kernel: &Kernel,
    config: &LaunchConfig,
    params: &[u8],
    memory: &DeviceMemory,
    options: &ExecOptions,
) -> Result<LaunchStats, Fault> {
    let invalid = |detail: String| Fault {
        kind: FaultKind::Invalid,
        kernel: kernel.name.clone(),
        block: [0; 3],
        thread: [0; 3],
        ptx_line: 0,
        source: None,
        detail,
    };
    if params.len() != kernel.param_bytes {
        return Err(invalid(format!(
            "{} parameter bytes given, the kernel takes {}",
            params.len(),
            kernel.param_bytes
        )));
    }
    let block_threads = config.block.iter().map(|&d| u64::from(d)).product::<u64>();
    if block_threads == 0 || block_threads > u64::from(kernel.max_threads_per_block) {
        return Err(invalid(format!(
            "a block of {block_threads} threads (the kernel allows 1 to {})",
            kernel.max_threads_per_block
        )));
    }
    let blocks = config.grid.iter().map(|&d| u64::from(d)).product::<u64>();
    let launch = Launch {
        kernel,
        program: &kernel.program,
        params,
        config: *config,
        memory,
        allocations: memory.snapshot(),
        checks: options.checks,
        serial: LAUNCHES.fetch_add(1, Ordering::Relaxed),
        block_threads: block_threads as u32,
        // the dynamic part starts aligned after the static part
        shared_bytes: (kernel.program.dynamic_base as usize + config.dynamic_shared_bytes as usize)
            .max(kernel.static_shared_bytes as usize),
    };
    let next = AtomicU64::new(0);
    // the lowest faulting block so far: blocks above it need not run
    let first_fault: Mutex<Option<(u64, Box<Fault>)>> = Mutex::new(None);
    let faulted = AtomicBool::new(false);
    let stats = Mutex::new(LaunchStats::default());
    let work = || {
        let mut worker = block::Worker::new(&launch);
        loop {
            let b = next.fetch_add(1, Ordering::Relaxed);
            if b >= blocks {
                let (w, l) = worker.instructions();
                let mut s = stats.lock().expect("stats lock");
                s.warp_instructions += w;
                s.lane_instructions += l;
                return;
            }
            if faulted.load(Ordering::Relaxed) {
                let guard = first_fault.lock().expect("fault lock");
                if guard.as_ref().is_some_and(|(f, _)| *f < b) {
                    return;
                }
            }
            if let Err(fault) = worker.run(&launch, b) {
                let mut guard = first_fault.lock().expect("fault lock");
                if guard.as_ref().is_none_or(|(f, _)| b < *f) {
                    *guard = Some((b, fault));
                }
                faulted.store(true, Ordering::Relaxed);
            }
        }
    };
    let threads = options.threads.clamp(1, blocks.max(1) as usize);
    if threads == 1 {
        work();
    } else {
        workers(options.threads).scope(|s| {
            for _ in 0..threads {
                s.spawn(|_| work());
            }
        });
    }
    match first_fault.into_inner().expect("fault lock") {
        Some((_, fault)) => Err(*fault),
        None => Ok(stats.into_inner().expect("stats lock")),
    }
}
