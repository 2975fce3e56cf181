//! Device memory (plain and stream-ordered allocation, memory pools), page-locked host memory, and
//! copies and sets.
//!
//! Stream-ordered calls run when enqueued, so an asynchronous allocation or free takes effect at
//! once. A pool keeps nothing back: its reserved memory is its memory in use. Page-locked host
//! memory is ordinary host memory the driver keeps track of; it is not mapped into kernels
//! (`cuMemHostGetDevicePointer` is not implemented).

use std::alloc::{self, Layout};
use std::collections::BTreeMap;
use std::ffi::{c_uchar, c_uint, c_ushort, c_void};
use std::sync::{Arc, LazyLock, Mutex};

use cudarc::driver::sys::{
    CUcontext, CUdevice, CUdeviceptr, CUmemAllocationType, CUmemLocationType, CUmemPoolProps, CUmemPool_attribute as P,
    CUmemoryPool, CUresult, CUstream, CU_MEMHOSTALLOC_DEVICEMAP, CU_MEMHOSTALLOC_PORTABLE,
    CU_MEMHOSTALLOC_WRITECOMBINED, CU_MEMHOSTREGISTER_DEVICEMAP, CU_MEMHOSTREGISTER_IOMEMORY,
    CU_MEMHOSTREGISTER_PORTABLE, CU_MEMHOSTREGISTER_READ_ONLY,
};

use super::context::{context, current, current_checked};
use super::device::check_device;
use super::graph::{graph_allocation, reserved, GraphAllocation};
use super::stream::{lookup, stream, submit, Op, Stream};
use super::{api, device_memory, from_ptr, lock, put, put_optional, to_ptr, warn, CuResult, Handles};
use crate::memory::{AllocationKind, DEVICE_MEMORY_BYTES};

/// One end of a copy: device memory, or host memory at a host address.
#[derive(Clone, Copy)]
pub(crate) enum Place {
    Device(u64),
    Host(usize),
}

/// Copies `len` bytes; an address not (or no longer) allocated is `CUDA_ERROR_INVALID_VALUE`.
pub(crate) fn run_copy(caller: &str, dst: Place, src: Place, len: usize) -> CuResult {
    let memory = device_memory();
    let result = match (dst, src) {
        (Place::Device(d), Place::Host(s)) => {
            // SAFETY: the caller of the copy passed `len` readable bytes at s.
            memory.write(d, unsafe { std::slice::from_raw_parts(s as *const u8, len) })
        }
        (Place::Host(d), Place::Device(s)) => {
            // SAFETY: the caller of the copy passed `len` writable bytes at d.
            memory.read(s, unsafe { std::slice::from_raw_parts_mut(d as *mut u8, len) })
        }
        (Place::Device(d), Place::Device(s)) => memory.copy(d, s, len),
        (Place::Host(d), Place::Host(s)) => {
            // SAFETY: the caller of the copy passed `len` bytes at each; `copy` allows overlap.
            unsafe { std::ptr::copy(s as *const u8, d as *mut u8, len) };
            Ok(())
        }
    };
    result.map_err(|e| {
        warn(&format!("{caller}: {e}"));
        CUresult::CUDA_ERROR_INVALID_VALUE
    })
}

/// Sets `count` elements of `width` bytes (the low bytes of `value`) at `dst`.
pub(crate) fn run_set(caller: &str, dst: u64, value: u32, width: usize, count: usize) -> CuResult {
    device_memory()
        .set(dst, &value.to_le_bytes()[..width], count)
        .map_err(|e| {
            warn(&format!("{caller}: {e}"));
            CUresult::CUDA_ERROR_INVALID_VALUE
        })
}

/// Checks the device end of an operation a capture records: the memory may be the capture's own
/// allocation, reserved but not allocated until the graph runs.
fn check_recorded_device(caller: &str, address: u64, len: usize) -> CuResult {
    match device_memory().find(address, len) {
        Ok(_) => Ok(()),
        Err(_) if reserved(address, len) => Ok(()),
        Err(e) => {
            warn(&format!("{caller}: {e}"));
            Err(CUresult::CUDA_ERROR_INVALID_VALUE)
        }
    }
}

/// Enqueues a copy of `len` bytes on `stream`. A capture may only record copies from and to
/// page-locked host memory: a copy of pageable memory invalidates it, as on a GPU.
fn enqueue_copy(caller: &str, stream: &Arc<Stream>, dst: Place, src: Place, len: usize) -> CuResult {
    if len == 0 {
        return Ok(());
    }
    for place in [dst, src] {
        if let Place::Host(0) = place {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
    }
    if let Some(capture) = stream.capture() {
        for place in [dst, src] {
            match place {
                Place::Device(address) => check_recorded_device(caller, address, len)?,
                Place::Host(address) if !is_page_locked(address, len) => {
                    warn(&format!(
                        "{caller}: a capture may only copy from and to page-locked host memory; the capture \
                         is invalidated"
                    ));
                    capture.invalidate();
                    return Err(CUresult::CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
                }
                Place::Host(_) => {}
            }
        }
    }
    submit(caller, stream, Op::Copy { dst, src, len })
}

/// Enqueues a set of `count` elements of `width` bytes on `stream`; `dst` must be aligned to them.
fn enqueue_set(caller: &str, stream: &Arc<Stream>, dst: u64, value: u32, width: usize, count: usize) -> CuResult {
    if dst % width as u64 != 0 {
        warn(&format!("{caller}: {dst:#x} is not aligned to {width} bytes"));
        return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
    }
    if count == 0 {
        return Ok(());
    }
    let len = count.checked_mul(width).ok_or(CUresult::CUDA_ERROR_INVALID_VALUE)?;
    if stream.capture().is_some() {
        check_recorded_device(caller, dst, len)?;
    }
    let op = Op::Set {
        dst,
        value,
        width,
        count,
    };
    submit(caller, stream, op)
}

/// Where a unified address is: device memory (or a capture's own allocation), else host memory.
fn place(address: u64, capturing: bool) -> Place {
    if device_memory().find(address, 1).is_ok() || (capturing && reserved(address, 1)) {
        Place::Device(address)
    } else {
        Place::Host(address as usize)
    }
}

/// A memory pool: its attributes and the bytes allocated from it.
pub(crate) struct Pool {
    attributes: Mutex<PoolAttributes>,
}

#[derive(Clone, Copy)]
struct PoolAttributes {
    follow_event_dependencies: i32,
    allow_opportunistic: i32,
    allow_internal_dependencies: i32,
    release_threshold: u64,
    used: u64,
    used_high: u64,
    reserved_high: u64,
}

impl Pool {
    fn new() -> Self {
        Self {
            attributes: Mutex::new(PoolAttributes {
                follow_event_dependencies: 1,
                allow_opportunistic: 1,
                allow_internal_dependencies: 1,
                release_threshold: 0,
                used: 0,
                used_high: 0,
                reserved_high: 0,
            }),
        }
    }

    fn grow(&self, bytes: usize) {
        let mut a = lock(&self.attributes);
        a.used += bytes as u64;
        a.used_high = a.used_high.max(a.used);
        a.reserved_high = a.reserved_high.max(a.used);
    }

    fn shrink(&self, bytes: usize) {
        let mut a = lock(&self.attributes);
        a.used = a.used.saturating_sub(bytes as u64);
    }
}

static POOLS: Handles<Pool> = Handles::new(8);
static DEFAULT_POOL: LazyLock<u64> = LazyLock::new(|| POOLS.insert(Pool::new()));
/// The device's current pool, when it is not the default one.
static CURRENT_POOL: Mutex<Option<u64>> = Mutex::new(None);
/// Allocations made from a pool: base → (pool, bytes).
static POOL_ALLOCATIONS: Mutex<BTreeMap<u64, (Arc<Pool>, usize)>> = Mutex::new(BTreeMap::new());

fn default_pool() -> u64 {
    *DEFAULT_POOL
}

fn current_pool() -> u64 {
    lock(&CURRENT_POOL).unwrap_or_else(default_pool)
}

fn set_current_pool(pool: CUmemoryPool) -> CuResult {
    let handle = from_ptr(pool);
    POOLS.get(handle)?;
    *lock(&CURRENT_POOL) = (handle != default_pool()).then_some(handle);
    Ok(())
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetDefaultMemPool(pool_out: *mut CUmemoryPool, dev: CUdevice) -> CUresult {
    api("cuDeviceGetDefaultMemPool", || {
        check_device(dev)?;
        // SAFETY: pool_out is the caller's out-parameter.
        unsafe { put(pool_out, to_ptr(default_pool())) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetMemPool(pool: *mut CUmemoryPool, dev: CUdevice) -> CUresult {
    api("cuDeviceGetMemPool", || {
        check_device(dev)?;
        // SAFETY: pool is the caller's out-parameter.
        unsafe { put(pool, to_ptr(current_pool())) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceSetMemPool(dev: CUdevice, pool: CUmemoryPool) -> CUresult {
    api("cuDeviceSetMemPool", || {
        check_device(dev)?;
        set_current_pool(pool)
    })
}

/// A new device allocation of `bytes`, counted in `pool` if it comes from one.
fn allocate(bytes: usize, pool: Option<Arc<Pool>>) -> CuResult<u64> {
    if bytes == 0 {
        return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
    }
    if bytes as u64 > DEVICE_MEMORY_BYTES {
        return Err(CUresult::CUDA_ERROR_OUT_OF_MEMORY);
    }
    let base = device_memory()
        .alloc(bytes, AllocationKind::Device)
        .ok_or(CUresult::CUDA_ERROR_OUT_OF_MEMORY)?;
    if let Some(pool) = pool {
        pool.grow(bytes);
        lock(&POOL_ALLOCATIONS).insert(base, (pool, bytes));
    }
    Ok(base)
}

/// Frees the device allocation at `base`: a graph's allocation goes back to being reserved for its
/// graph, any other is released.
fn free(caller: &str, base: u64) -> CuResult {
    if let Some(allocation) = graph_allocation(base) {
        return allocation.free(caller);
    }
    let memory = device_memory();
    let freeable = memory
        .find(base, 1)
        .is_ok_and(|a| a.base() == base && a.kind == AllocationKind::Device);
    if !freeable {
        warn(&format!("{caller}: {base:#x} is not the start of a device allocation"));
        return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
    }
    // out of its pool's count before the address can be allocated again
    let pooled = lock(&POOL_ALLOCATIONS).remove(&base);
    if let Some((pool, bytes)) = pooled {
        pool.shrink(bytes);
    }
    memory.free(base).map_err(|_| CUresult::CUDA_ERROR_INVALID_VALUE)
}

/// A stream-ordered allocation: from `pool` now, or, on a capturing stream, the capture's own.
fn allocate_on(stream: &Stream, bytes: usize, pool: Arc<Pool>) -> CuResult<u64> {
    match stream.capture() {
        Some(capture) => {
            if bytes == 0 {
                return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
            }
            let allocation = GraphAllocation::reserve(bytes)?;
            let base = allocation.base;
            capture.record(Op::Alloc(allocation))?;
            Ok(base)
        }
        None => allocate(bytes, Some(pool)),
    }
}

#[no_mangle]
pub unsafe extern "C" fn cuMemAlloc_v2(dptr: *mut CUdeviceptr, bytesize: usize) -> CUresult {
    api("cuMemAlloc_v2", || {
        current_checked()?;
        if dptr.is_null() {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        let base = allocate(bytesize, None)?;
        // SAFETY: dptr is the caller's out-parameter (checked not null above).
        unsafe { put(dptr, base) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemFree_v2(dptr: CUdeviceptr) -> CUresult {
    api("cuMemFree_v2", || {
        let ctx = current()?;
        free("cuMemFree_v2", dptr)?;
        ctx.sticky()
    })
}

/// Allocates from the device's current pool, or, on a capturing stream, memory the graph owns:
/// its address is fixed now, and it is allocated each time a launch of the graph reaches this point.
#[no_mangle]
pub unsafe extern "C" fn cuMemAllocAsync(dptr: *mut CUdeviceptr, bytesize: usize, hStream: CUstream) -> CUresult {
    api("cuMemAllocAsync", || {
        let stream = stream(hStream)?;
        if dptr.is_null() {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        let base = allocate_on(&stream, bytesize, POOLS.get(current_pool())?)?;
        // SAFETY: dptr is the caller's out-parameter (checked not null above).
        unsafe { put(dptr, base) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemAllocFromPoolAsync(
    dptr: *mut CUdeviceptr,
    bytesize: usize,
    pool: CUmemoryPool,
    hStream: CUstream,
) -> CUresult {
    api("cuMemAllocFromPoolAsync", || {
        let stream = stream(hStream)?;
        let pool = POOLS.get(from_ptr(pool))?;
        if dptr.is_null() {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        let base = allocate_on(&stream, bytesize, pool)?;
        // SAFETY: dptr is the caller's out-parameter (checked not null above).
        unsafe { put(dptr, base) }
    })
}

/// Frees now, or, on a capturing stream, records the free in the graph: only memory a graph
/// allocated may be freed there.
#[no_mangle]
pub unsafe extern "C" fn cuMemFreeAsync(dptr: CUdeviceptr, hStream: CUstream) -> CUresult {
    api("cuMemFreeAsync", || {
        let stream = lookup(hStream)?;
        match stream.capture() {
            Some(capture) => {
                let Some(allocation) = graph_allocation(dptr) else {
                    warn(&format!(
                        "cuMemFreeAsync: {dptr:#x} is not memory a graph allocated; a capture may only free that"
                    ));
                    return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
                };
                capture.record(Op::Free(allocation))
            }
            None => {
                free("cuMemFreeAsync", dptr)?;
                stream.ctx.check()
            }
        }
    })
}

/// Creates a pool of device memory; only pinned device memory without export handles is supported.
#[no_mangle]
pub unsafe extern "C" fn cuMemPoolCreate(pool: *mut CUmemoryPool, poolProps: *const CUmemPoolProps) -> CUresult {
    api("cuMemPoolCreate", || {
        current_checked()?;
        if poolProps.is_null() || pool.is_null() {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        // SAFETY: poolProps points to the caller's properties; the enum fields are read as their
        // C values, which may be outside the enums.
        let (alloc_type, handle_types, location_type, location_id) = unsafe {
            (
                std::ptr::addr_of!((*poolProps).allocType).cast::<u32>().read(),
                (*poolProps).handleTypes.0,
                std::ptr::addr_of!((*poolProps).location.type_).cast::<u32>().read(),
                (*poolProps).location.id,
            )
        };
        if alloc_type != CUmemAllocationType::CU_MEM_ALLOCATION_TYPE_PINNED as u32
            || location_type != CUmemLocationType::CU_MEM_LOCATION_TYPE_DEVICE as u32
            || location_id != 0
        {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        if handle_types != 0 {
            warn("cuMemPoolCreate: pools with export handles are not implemented");
            return Err(CUresult::CUDA_ERROR_NOT_SUPPORTED);
        }
        let handle = POOLS.insert(Pool::new());
        // SAFETY: pool is the caller's out-parameter (checked not null above).
        unsafe { put(pool, to_ptr(handle)) }
    })
}

/// Destroys a pool (not the default one); its allocations stay valid until freed.
#[no_mangle]
pub unsafe extern "C" fn cuMemPoolDestroy(pool: CUmemoryPool) -> CUresult {
    api("cuMemPoolDestroy", || {
        let handle = from_ptr(pool);
        if handle == default_pool() {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        POOLS.remove(handle)?;
        let mut current = lock(&CURRENT_POOL);
        if *current == Some(handle) {
            *current = None;
        }
        Ok(())
    })
}

/// Reads a pool attribute: the reuse flags are `int`s, the sizes `cuuint64_t`s.
#[no_mangle]
pub unsafe extern "C" fn cuMemPoolGetAttribute(pool: CUmemoryPool, attr: u32, value: *mut c_void) -> CUresult {
    api("cuMemPoolGetAttribute", || {
        let a = *lock(&POOLS.get(from_ptr(pool))?.attributes);
        let flag = match attr {
            x if x == P::CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES as u32 => Some(a.follow_event_dependencies),
            x if x == P::CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC as u32 => Some(a.allow_opportunistic),
            x if x == P::CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES as u32 => {
                Some(a.allow_internal_dependencies)
            }
            _ => None,
        };
        if let Some(flag) = flag {
            // SAFETY: value points to the caller's int.
            return unsafe { put(value.cast::<i32>(), flag) };
        }
        let size = match attr {
            x if x == P::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD as u32 => a.release_threshold,
            x if x == P::CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT as u32 => a.used,
            x if x == P::CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH as u32 => a.reserved_high,
            x if x == P::CU_MEMPOOL_ATTR_USED_MEM_CURRENT as u32 => a.used,
            x if x == P::CU_MEMPOOL_ATTR_USED_MEM_HIGH as u32 => a.used_high,
            _ => return Err(CUresult::CUDA_ERROR_INVALID_VALUE),
        };
        // SAFETY: value points to the caller's cuuint64_t.
        unsafe { put(value.cast::<u64>(), size) }
    })
}

/// Sets a pool attribute: the reuse flags, the release threshold (kept; nothing is cached), and
/// the high-water marks, which may only be reset (to 0).
#[no_mangle]
pub unsafe extern "C" fn cuMemPoolSetAttribute(pool: CUmemoryPool, attr: u32, value: *mut c_void) -> CUresult {
    api("cuMemPoolSetAttribute", || {
        let pool = POOLS.get(from_ptr(pool))?;
        if value.is_null() {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        let mut a = lock(&pool.attributes);
        // SAFETY (every read below): value points to the caller's value of the attribute's type.
        match attr {
            x if x == P::CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES as u32 => {
                a.follow_event_dependencies = unsafe { value.cast::<i32>().read() }
            }
            x if x == P::CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC as u32 => {
                a.allow_opportunistic = unsafe { value.cast::<i32>().read() }
            }
            x if x == P::CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES as u32 => {
                a.allow_internal_dependencies = unsafe { value.cast::<i32>().read() }
            }
            x if x == P::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD as u32 => {
                a.release_threshold = unsafe { value.cast::<u64>().read() }
            }
            x if x == P::CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH as u32 || x == P::CU_MEMPOOL_ATTR_USED_MEM_HIGH as u32 => {
                if unsafe { value.cast::<u64>().read() } != 0 {
                    return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
                }
                if x == P::CU_MEMPOOL_ATTR_USED_MEM_HIGH as u32 {
                    a.used_high = a.used;
                } else {
                    a.reserved_high = a.used;
                }
            }
            _ => return Err(CUresult::CUDA_ERROR_INVALID_VALUE),
        }
        Ok(())
    })
}

/// Nothing is kept back in a pool, so there is nothing to trim.
#[no_mangle]
pub unsafe extern "C" fn cuMemPoolTrimTo(pool: CUmemoryPool, _minBytesToKeep: usize) -> CUresult {
    api("cuMemPoolTrimTo", || POOLS.get(from_ptr(pool)).map(|_| ()))
}

#[no_mangle]
pub unsafe extern "C" fn cuMemGetInfo_v2(free: *mut usize, total: *mut usize) -> CUresult {
    api("cuMemGetInfo_v2", || {
        current_checked()?;
        let (used, all) = device_memory().usage();
        // SAFETY: free and total are the caller's out-parameters.
        unsafe {
            put(free, all.saturating_sub(used) as usize)?;
            put(total, all as usize)
        }
    })
}

/// The allocation containing `dptr` (`CUDA_ERROR_NOT_FOUND` if none).
#[no_mangle]
pub unsafe extern "C" fn cuMemGetAddressRange_v2(
    pbase: *mut CUdeviceptr,
    psize: *mut usize,
    dptr: CUdeviceptr,
) -> CUresult {
    api("cuMemGetAddressRange_v2", || {
        current_checked()?;
        let allocation = device_memory()
            .find(dptr, 1)
            .map_err(|_| CUresult::CUDA_ERROR_NOT_FOUND)?;
        // SAFETY: pbase and psize are the caller's optional out-parameters.
        unsafe {
            put_optional(pbase, allocation.base())?;
            put_optional(psize, allocation.len())
        }
    })
}

/// Page-locked host memory: allocated here (`owned`) or registered by the caller.
struct HostRange {
    len: usize,
    flags: c_uint,
    owned: bool,
}

/// Page-locked ranges by host address.
static HOST: Mutex<BTreeMap<usize, HostRange>> = Mutex::new(BTreeMap::new());

/// Page-locked memory is page-aligned, as the driver's is.
const HOST_ALIGN: usize = 4096;

fn host_layout(len: usize) -> CuResult<Layout> {
    Layout::from_size_align(len, HOST_ALIGN).map_err(|_| CUresult::CUDA_ERROR_OUT_OF_MEMORY)
}

/// Whether `address..address+len` lies in one page-locked range.
fn is_page_locked(address: usize, len: usize) -> bool {
    let host = lock(&HOST);
    host.range(..=address)
        .next_back()
        .is_some_and(|(&base, r)| address + len <= base + r.len)
}

/// New page-locked host memory, zero-filled and page-aligned.
fn host_alloc(bytesize: usize, flags: c_uint) -> CuResult<*mut c_void> {
    current_checked()?;
    let known = CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_WRITECOMBINED;
    if bytesize == 0 || flags & !known != 0 {
        return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
    }
    let layout = host_layout(bytesize)?;
    // SAFETY: the layout has a nonzero size.
    let ptr = unsafe { alloc::alloc_zeroed(layout) };
    if ptr.is_null() {
        return Err(CUresult::CUDA_ERROR_OUT_OF_MEMORY);
    }
    let range = HostRange {
        len: bytesize,
        flags,
        owned: true,
    };
    lock(&HOST).insert(ptr as usize, range);
    Ok(ptr.cast())
}

#[no_mangle]
pub unsafe extern "C" fn cuMemHostAlloc(pp: *mut *mut c_void, bytesize: usize, Flags: c_uint) -> CUresult {
    api("cuMemHostAlloc", || {
        if pp.is_null() {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        // SAFETY: pp is the caller's out-parameter (checked not null above).
        unsafe { put(pp, host_alloc(bytesize, Flags)?) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemAllocHost_v2(pp: *mut *mut c_void, bytesize: usize) -> CUresult {
    api("cuMemAllocHost_v2", || {
        if pp.is_null() {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        // SAFETY: pp is the caller's out-parameter (checked not null above).
        unsafe { put(pp, host_alloc(bytesize, 0)?) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemFreeHost(p: *mut c_void) -> CUresult {
    api("cuMemFreeHost", || {
        let ctx = current()?;
        let mut host = lock(&HOST);
        let len = match host.get(&(p as usize)) {
            Some(r) if r.owned => r.len,
            _ => return Err(CUresult::CUDA_ERROR_INVALID_VALUE),
        };
        host.remove(&(p as usize));
        // SAFETY: allocated by host_alloc with this layout and not freed since (it was in HOST).
        unsafe { alloc::dealloc(p.cast(), host_layout(len)?) };
        ctx.sticky()
    })
}

/// Page-locks (records) the caller's memory; I/O memory is not supported.
#[no_mangle]
pub unsafe extern "C" fn cuMemHostRegister_v2(p: *mut c_void, bytesize: usize, Flags: c_uint) -> CUresult {
    api("cuMemHostRegister_v2", || {
        current_checked()?;
        let known = CU_MEMHOSTREGISTER_PORTABLE
            | CU_MEMHOSTREGISTER_DEVICEMAP
            | CU_MEMHOSTREGISTER_IOMEMORY
            | CU_MEMHOSTREGISTER_READ_ONLY;
        if p.is_null() || bytesize == 0 || Flags & !known != 0 {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        if Flags & CU_MEMHOSTREGISTER_IOMEMORY != 0 {
            warn("cuMemHostRegister_v2: registering I/O memory is not implemented");
            return Err(CUresult::CUDA_ERROR_NOT_SUPPORTED);
        }
        let (start, end) = (p as usize, p as usize + bytesize);
        let mut host = lock(&HOST);
        let below = host.range(..end).next_back();
        if below.is_some_and(|(&base, r)| base + r.len > start) {
            return Err(CUresult::CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
        }
        host.insert(
            start,
            HostRange {
                len: bytesize,
                flags: Flags,
                owned: false,
            },
        );
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemHostUnregister(p: *mut c_void) -> CUresult {
    api("cuMemHostUnregister", || {
        current()?;
        let mut host = lock(&HOST);
        match host.get(&(p as usize)) {
            Some(r) if !r.owned => {
                host.remove(&(p as usize));
                Ok(())
            }
            _ => Err(CUresult::CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED),
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemHostGetFlags(pFlags: *mut c_uint, p: *mut c_void) -> CUresult {
    api("cuMemHostGetFlags", || {
        current_checked()?;
        let address = p as usize;
        let flags = lock(&HOST)
            .range(..=address)
            .next_back()
            .filter(|(&base, r)| address < base + r.len)
            .map(|(_, r)| r.flags)
            .ok_or(CUresult::CUDA_ERROR_INVALID_VALUE)?;
        // SAFETY: pFlags is the caller's out-parameter.
        unsafe { put(pFlags, flags) }
    })
}

/// A synchronous copy or set: on the current context's default stream.
fn default_stream() -> CuResult<Arc<Stream>> {
    stream(std::ptr::null_mut())
}

#[no_mangle]
pub unsafe extern "C" fn cuMemcpyHtoD_v2(dstDevice: CUdeviceptr, srcHost: *const c_void, ByteCount: usize) -> CUresult {
    api("cuMemcpyHtoD_v2", || {
        let (dst, src) = (Place::Device(dstDevice), Place::Host(srcHost as usize));
        enqueue_copy("cuMemcpyHtoD_v2", &default_stream()?, dst, src, ByteCount)
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemcpyDtoH_v2(dstHost: *mut c_void, srcDevice: CUdeviceptr, ByteCount: usize) -> CUresult {
    api("cuMemcpyDtoH_v2", || {
        let (dst, src) = (Place::Host(dstHost as usize), Place::Device(srcDevice));
        enqueue_copy("cuMemcpyDtoH_v2", &default_stream()?, dst, src, ByteCount)
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemcpyDtoD_v2(dstDevice: CUdeviceptr, srcDevice: CUdeviceptr, ByteCount: usize) -> CUresult {
    api("cuMemcpyDtoD_v2", || {
        let (dst, src) = (Place::Device(dstDevice), Place::Device(srcDevice));
        enqueue_copy("cuMemcpyDtoD_v2", &default_stream()?, dst, src, ByteCount)
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemcpyHtoDAsync_v2(
    dstDevice: CUdeviceptr,
    srcHost: *const c_void,
    ByteCount: usize,
    hStream: CUstream,
) -> CUresult {
    api("cuMemcpyHtoDAsync_v2", || {
        let (dst, src) = (Place::Device(dstDevice), Place::Host(srcHost as usize));
        enqueue_copy("cuMemcpyHtoDAsync_v2", &stream(hStream)?, dst, src, ByteCount)
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemcpyDtoHAsync_v2(
    dstHost: *mut c_void,
    srcDevice: CUdeviceptr,
    ByteCount: usize,
    hStream: CUstream,
) -> CUresult {
    api("cuMemcpyDtoHAsync_v2", || {
        let (dst, src) = (Place::Host(dstHost as usize), Place::Device(srcDevice));
        enqueue_copy("cuMemcpyDtoHAsync_v2", &stream(hStream)?, dst, src, ByteCount)
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemcpyDtoDAsync_v2(
    dstDevice: CUdeviceptr,
    srcDevice: CUdeviceptr,
    ByteCount: usize,
    hStream: CUstream,
) -> CUresult {
    api("cuMemcpyDtoDAsync_v2", || {
        let (dst, src) = (Place::Device(dstDevice), Place::Device(srcDevice));
        enqueue_copy("cuMemcpyDtoDAsync_v2", &stream(hStream)?, dst, src, ByteCount)
    })
}

/// A copy between unified addresses: each end is device memory if an allocation holds it, else
/// host memory (which, as with the driver, is not checked).
#[no_mangle]
pub unsafe extern "C" fn cuMemcpy(dst: CUdeviceptr, src: CUdeviceptr, ByteCount: usize) -> CUresult {
    api("cuMemcpy", || {
        enqueue_copy(
            "cuMemcpy",
            &default_stream()?,
            place(dst, false),
            place(src, false),
            ByteCount,
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemcpyAsync(
    dst: CUdeviceptr,
    src: CUdeviceptr,
    ByteCount: usize,
    hStream: CUstream,
) -> CUresult {
    api("cuMemcpyAsync", || {
        let stream = stream(hStream)?;
        let capturing = stream.capture().is_some();
        enqueue_copy(
            "cuMemcpyAsync",
            &stream,
            place(dst, capturing),
            place(src, capturing),
            ByteCount,
        )
    })
}

/// A copy between contexts: they share the one device's memory.
#[no_mangle]
pub unsafe extern "C" fn cuMemcpyPeer(
    dstDevice: CUdeviceptr,
    dstContext: CUcontext,
    srcDevice: CUdeviceptr,
    srcContext: CUcontext,
    ByteCount: usize,
) -> CUresult {
    api("cuMemcpyPeer", || {
        context(dstContext)?.check()?;
        context(srcContext)?.check()?;
        let (dst, src) = (Place::Device(dstDevice), Place::Device(srcDevice));
        enqueue_copy("cuMemcpyPeer", &default_stream()?, dst, src, ByteCount)
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemcpyPeerAsync(
    dstDevice: CUdeviceptr,
    dstContext: CUcontext,
    srcDevice: CUdeviceptr,
    srcContext: CUcontext,
    ByteCount: usize,
    hStream: CUstream,
) -> CUresult {
    api("cuMemcpyPeerAsync", || {
        context(dstContext)?.check()?;
        context(srcContext)?.check()?;
        let (dst, src) = (Place::Device(dstDevice), Place::Device(srcDevice));
        enqueue_copy("cuMemcpyPeerAsync", &stream(hStream)?, dst, src, ByteCount)
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemsetD8_v2(dstDevice: CUdeviceptr, uc: c_uchar, N: usize) -> CUresult {
    api("cuMemsetD8_v2", || {
        enqueue_set("cuMemsetD8_v2", &default_stream()?, dstDevice, uc.into(), 1, N)
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemsetD16_v2(dstDevice: CUdeviceptr, us: c_ushort, N: usize) -> CUresult {
    api("cuMemsetD16_v2", || {
        enqueue_set("cuMemsetD16_v2", &default_stream()?, dstDevice, us.into(), 2, N)
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemsetD32_v2(dstDevice: CUdeviceptr, ui: c_uint, N: usize) -> CUresult {
    api("cuMemsetD32_v2", || {
        enqueue_set("cuMemsetD32_v2", &default_stream()?, dstDevice, ui, 4, N)
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemsetD8Async(dstDevice: CUdeviceptr, uc: c_uchar, N: usize, hStream: CUstream) -> CUresult {
    api("cuMemsetD8Async", || {
        enqueue_set("cuMemsetD8Async", &stream(hStream)?, dstDevice, uc.into(), 1, N)
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemsetD16Async(
    dstDevice: CUdeviceptr,
    us: c_ushort,
    N: usize,
    hStream: CUstream,
) -> CUresult {
    api("cuMemsetD16Async", || {
        enqueue_set("cuMemsetD16Async", &stream(hStream)?, dstDevice, us.into(), 2, N)
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemsetD32Async(dstDevice: CUdeviceptr, ui: c_uint, N: usize, hStream: CUstream) -> CUresult {
    api("cuMemsetD32Async", || {
        enqueue_set("cuMemsetD32Async", &stream(hStream)?, dstDevice, ui, 4, N)
    })
}
