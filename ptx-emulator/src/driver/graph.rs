//! Graphs made by stream capture, their instantiations, and the memory they allocate.
//!
//! A graph is the list of operations its capture recorded; launching an instantiation replays
//! them in order on the launch stream's context. Memory a capture allocates is a
//! [`GraphAllocation`]: its address is fixed when it is captured and reserved for as long as a
//! graph refers to it; it is accessible only between a launch reaching its allocation and its
//! free (in this graph or another, by `cuMemFree`/`cuMemFreeAsync`, or by the next launch of an
//! instantiation made with `CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH`). Destroying a graph
//! or an instantiation frees nothing: memory still allocated then becomes an ordinary allocation.

use std::collections::BTreeMap;
use std::ffi::c_ulonglong;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use cudarc::driver::sys::{CUgraph, CUgraphExec, CUgraphInstantiate_flags as Flags, CUresult, CUstream};

use super::context::Context;
use super::errors::error_name;
use super::stream::{stream, Op};
use super::{api, device_memory, from_ptr, lock, put, to_ptr, warn, CuResult, Handles};
use crate::memory::{Allocation, AllocationKind};

/// Memory allocated by a graph.
pub(crate) struct GraphAllocation {
    pub base: u64,
    len: usize,
    /// The allocation while it is not allocated (reserved, taken out of the device's table);
    /// `None` while it is.
    parked: Mutex<Option<Arc<Allocation>>>,
}

/// Graph allocations by base address, for frees and for checking what captures record.
static GRAPH_ALLOCATIONS: Mutex<BTreeMap<u64, Weak<GraphAllocation>>> = Mutex::new(BTreeMap::new());

impl GraphAllocation {
    /// Reserves `len` bytes for a capture's allocation: an address now, no access until a launch.
    pub(crate) fn reserve(len: usize) -> CuResult<Arc<Self>> {
        let memory = device_memory();
        let base = memory
            .alloc(len, AllocationKind::Device)
            .ok_or(CUresult::CUDA_ERROR_OUT_OF_MEMORY)?;
        let parked = memory.suspend(base).expect("an allocation just made");
        let allocation = Arc::new(Self {
            base,
            len,
            parked: Mutex::new(Some(parked)),
        });
        lock(&GRAPH_ALLOCATIONS).insert(base, Arc::downgrade(&allocation));
        Ok(allocation)
    }

    fn is_allocated(&self) -> bool {
        lock(&self.parked).is_none()
    }

    /// A launch reached the allocation: the memory becomes accessible, none of it written.
    pub(crate) fn allocate(&self) -> CuResult {
        let mut parked = lock(&self.parked);
        match parked.take() {
            Some(allocation) => {
                device_memory().reinstate(allocation);
                Ok(())
            }
            None => {
                warn(&format!(
                    "graph memory at {:#x} allocated twice without a free",
                    self.base
                ));
                Err(CUresult::CUDA_ERROR_INVALID_VALUE)
            }
        }
    }

    /// Frees the memory: it stays reserved for its graph. Freeing it when not allocated is
    /// `CUDA_ERROR_INVALID_VALUE`.
    pub(crate) fn free(&self, caller: &str) -> CuResult {
        let mut parked = lock(&self.parked);
        if parked.is_some() {
            warn(&format!(
                "{caller}: the graph memory at {:#x} ({} bytes) is not allocated now",
                self.base, self.len
            ));
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        *parked = device_memory().suspend(self.base);
        Ok(())
    }
}

impl Drop for GraphAllocation {
    /// No graph refers to the memory any more: if allocated, it stays as an ordinary allocation;
    /// if not, its reservation ends.
    fn drop(&mut self) {
        let mut registry = lock(&GRAPH_ALLOCATIONS);
        if registry.get(&self.base).is_some_and(|w| std::ptr::eq(w.as_ptr(), self)) {
            registry.remove(&self.base);
        }
    }
}

/// The graph allocation that starts at `base`.
pub(crate) fn graph_allocation(base: u64) -> Option<Arc<GraphAllocation>> {
    lock(&GRAPH_ALLOCATIONS).get(&base).and_then(Weak::upgrade)
}

/// Whether `address..address+len` lies inside one graph allocation.
pub(crate) fn reserved(address: u64, len: usize) -> bool {
    // the registry's lock is released before the allocation is, whose drop takes it
    let below = lock(&GRAPH_ALLOCATIONS)
        .range(..=address)
        .next_back()
        .and_then(|(_, w)| w.upgrade());
    below.is_some_and(|a| address + len as u64 <= a.base + a.len as u64)
}

/// A graph: the operations of a capture.
pub(crate) struct Graph {
    ctx: Arc<Context>,
    ops: Vec<Op>,
    /// A graph that allocates or frees memory may have one instantiation at a time.
    has_memory_ops: bool,
    instantiated: AtomicBool,
}

/// An instantiation of a graph.
pub(crate) struct GraphExec {
    graph: Arc<Graph>,
    auto_free: bool,
}

static GRAPHS: Handles<Graph> = Handles::new(6);
static EXECS: Handles<GraphExec> = Handles::new(7);

/// Registers the graph a capture on `ctx` recorded.
pub(crate) fn create(ctx: Arc<Context>, ops: Vec<Op>) -> u64 {
    let has_memory_ops = ops.iter().any(|op| matches!(op, Op::Alloc(_) | Op::Free(_)));
    GRAPHS.insert(Graph {
        ctx,
        ops,
        has_memory_ops,
        instantiated: AtomicBool::new(false),
    })
}

impl GraphExec {
    /// Replays the graph on `ctx`. Memory the graph allocated and that is still allocated from an
    /// earlier launch is freed first with `AUTO_FREE_ON_LAUNCH`, else the launch fails. A failed
    /// operation stops the replay and leaves an illegal-address error on the context, as a fault
    /// would.
    fn launch(&self, ctx: &Context) -> CuResult {
        let allocated: Vec<&Arc<GraphAllocation>> = self
            .graph
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Alloc(a) if a.is_allocated() => Some(a),
                _ => None,
            })
            .collect();
        if !allocated.is_empty() {
            if !self.auto_free {
                warn(
                    "cuGraphLaunch: memory the graph allocated in its last launch is still allocated (an \
                     instantiation with CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH frees it at relaunch)",
                );
                return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
            }
            for allocation in allocated {
                allocation.free("cuGraphLaunch")?;
            }
        }
        for op in &self.graph.ops {
            if let Err(code) = op.run("cuGraphLaunch", ctx) {
                warn(&format!(
                    "cuGraphLaunch: a node of the graph failed ({}); the context's error is now \
                     CUDA_ERROR_ILLEGAL_ADDRESS",
                    error_name(code)
                ));
                ctx.fail(CUresult::CUDA_ERROR_ILLEGAL_ADDRESS);
            }
            if ctx.sticky().is_err() {
                break;
            }
        }
        Ok(())
    }
}

/// Instantiates a graph. `AUTO_FREE_ON_LAUNCH` and `USE_NODE_PRIORITY` are honoured (priorities
/// change no order here); `DEVICE_LAUNCH` is accepted, though no kernel can launch a graph.
#[no_mangle]
pub unsafe extern "C" fn cuGraphInstantiateWithFlags(
    phGraphExec: *mut CUgraphExec,
    hGraph: CUgraph,
    flags: c_ulonglong,
) -> CUresult {
    api("cuGraphInstantiateWithFlags", || {
        let graph = GRAPHS.get(from_ptr(hGraph))?;
        graph.ctx.check()?;
        let auto_free = u64::from(Flags::CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH.0);
        let device_launch = u64::from(Flags::CUDA_GRAPH_INSTANTIATE_FLAG_DEVICE_LAUNCH.0);
        let known = auto_free | device_launch | u64::from(Flags::CUDA_GRAPH_INSTANTIATE_FLAG_USE_NODE_PRIORITY.0);
        let both = auto_free | device_launch;
        if phGraphExec.is_null() || flags & !known != 0 || flags & both == both {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        if graph.has_memory_ops && graph.instantiated.swap(true, Ordering::AcqRel) {
            warn("cuGraphInstantiateWithFlags: a graph that allocates memory may have one instantiation at a time");
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        let handle = EXECS.insert(GraphExec {
            graph,
            auto_free: flags & auto_free != 0,
        });
        // SAFETY: phGraphExec is the caller's out-parameter (checked not null above).
        unsafe { put(phGraphExec, to_ptr(handle)) }
    })
}

/// Replays the graph on the stream's context, before the call returns. Launching a graph inside a
/// capture is not supported.
#[no_mangle]
pub unsafe extern "C" fn cuGraphLaunch(hGraphExec: CUgraphExec, hStream: CUstream) -> CUresult {
    api("cuGraphLaunch", || {
        let exec = EXECS.get(from_ptr(hGraphExec))?;
        let stream = stream(hStream)?;
        if exec.graph.ctx.handle != stream.ctx.handle {
            return Err(CUresult::CUDA_ERROR_INVALID_CONTEXT);
        }
        if stream.capture().is_some() {
            warn("cuGraphLaunch: launching a graph inside a capture is not implemented");
            return Err(CUresult::CUDA_ERROR_NOT_SUPPORTED);
        }
        exec.launch(&stream.ctx)
    })
}

/// Nothing to upload: a graph runs from host memory.
#[no_mangle]
pub unsafe extern "C" fn cuGraphUpload(hGraphExec: CUgraphExec, hStream: CUstream) -> CUresult {
    api("cuGraphUpload", || {
        EXECS.get(from_ptr(hGraphExec))?;
        stream(hStream).map(|_| ())
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuGraphExecDestroy(hGraphExec: CUgraphExec) -> CUresult {
    api("cuGraphExecDestroy", || {
        let exec = EXECS.remove(from_ptr(hGraphExec))?;
        exec.graph.instantiated.store(false, Ordering::Release);
        exec.graph.ctx.sticky()
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuGraphDestroy(hGraph: CUgraph) -> CUresult {
    api("cuGraphDestroy", || GRAPHS.remove(from_ptr(hGraph))?.ctx.sticky())
}
