//! Contexts: the primary context, created ones, each thread's stack of current contexts, and the
//! sticky error a kernel fault leaves on its context.
//!
//! All contexts share the device's memory (its addresses are unified); an allocation outlives the
//! context it was made in until it is freed.

use std::cell::RefCell;
use std::ffi::{c_int, c_uint, c_ulonglong};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::sys::{CUcontext, CUctxCreateParams, CUctx_flags, CUdevice, CUfunc_cache, CUlimit, CUresult};

use super::device::check_device;
use super::{api, from_ptr, lock, put, put_optional, to_ptr, warn, CuResult, Handles};

/// What `cuCtxGetApiVersion` reports for every context.
const API_VERSION: c_uint = 3020;

/// Stream priorities: 0 (least) to -5 (greatest), as on an H100.
pub(crate) const LEAST_PRIORITY: c_int = 0;
pub(crate) const GREATEST_PRIORITY: c_int = -5;

/// Limits by `CUlimit` value, with their defaults; `None`: not supported on this device.
const LIMIT_DEFAULTS: [Option<usize>; CUlimit::CU_LIMIT_MAX as usize] = [
    Some(1024),    // CU_LIMIT_STACK_SIZE
    Some(1 << 20), // CU_LIMIT_PRINTF_FIFO_SIZE
    Some(8 << 20), // CU_LIMIT_MALLOC_HEAP_SIZE
    Some(2),       // CU_LIMIT_DEV_RUNTIME_SYNC_DEPTH
    Some(2048),    // CU_LIMIT_DEV_RUNTIME_PENDING_LAUNCH_COUNT
    Some(64),      // CU_LIMIT_MAX_L2_FETCH_GRANULARITY
    Some(0),       // CU_LIMIT_PERSISTING_L2_CACHE_SIZE (no persisting L2 is emulated)
    None,          // CU_LIMIT_SHMEM_SIZE
    None,          // CU_LIMIT_CIG_ENABLED
    None,          // CU_LIMIT_CIG_SHMEM_FALLBACK_ENABLED
];

/// One context.
pub(crate) struct Context {
    pub handle: u64,
    pub primary: bool,
    flags: AtomicU32,
    /// The first kernel fault's code; once set, every call on the context returns it.
    sticky: OnceLock<CUresult>,
    destroyed: AtomicBool,
    limits: Mutex<[Option<usize>; CUlimit::CU_LIMIT_MAX as usize]>,
    cache_config: AtomicU32,
}

impl Context {
    fn new(handle: u64, primary: bool, flags: u32) -> Self {
        Self {
            handle,
            primary,
            flags: AtomicU32::new(flags),
            sticky: OnceLock::new(),
            destroyed: AtomicBool::new(false),
            limits: Mutex::new(LIMIT_DEFAULTS),
            cache_config: AtomicU32::new(CUfunc_cache::CU_FUNC_CACHE_PREFER_NONE as u32),
        }
    }

    /// Whether calls may use the context: not destroyed, and no kernel fault on it.
    pub(crate) fn check(&self) -> CuResult {
        if self.destroyed.load(Ordering::Acquire) {
            return Err(CUresult::CUDA_ERROR_CONTEXT_IS_DESTROYED);
        }
        match self.sticky.get() {
            Some(&code) => Err(code),
            None => Ok(()),
        }
    }

    /// The sticky error, if a kernel faulted on the context.
    pub(crate) fn sticky(&self) -> CuResult {
        self.sticky.get().map_or(Ok(()), |&code| Err(code))
    }

    /// Makes `code` the context's sticky error (the first fault's stays).
    pub(crate) fn fail(&self, code: CUresult) {
        let _ = self.sticky.set(code);
    }

    fn destroy(&self) {
        self.destroyed.store(true, Ordering::Release);
    }
}

static CONTEXTS: Handles<Context> = Handles::new(1);

/// The primary context of the device and its retain count.
struct Primary {
    context: Option<Arc<Context>>,
    retained: u32,
    flags: u32,
}

static PRIMARY: Mutex<Primary> = Mutex::new(Primary {
    context: None,
    retained: 0,
    flags: 0,
});

thread_local! {
    /// The calling thread's context stack; its top is the current context.
    static STACK: RefCell<Vec<Arc<Context>>> = const { RefCell::new(Vec::new()) };
}

/// The live context behind a handle.
pub(crate) fn context(ctx: CUcontext) -> CuResult<Arc<Context>> {
    CONTEXTS
        .get(from_ptr(ctx))
        .map_err(|_| CUresult::CUDA_ERROR_INVALID_CONTEXT)
}

/// The calling thread's current context.
pub(crate) fn current() -> CuResult<Arc<Context>> {
    let top = STACK.with_borrow(|stack| stack.last().cloned());
    match top {
        Some(ctx) if !ctx.destroyed.load(Ordering::Acquire) => Ok(ctx),
        _ => Err(CUresult::CUDA_ERROR_INVALID_CONTEXT),
    }
}

/// The current context, if calls may use it (see [`Context::check`]).
pub(crate) fn current_checked() -> CuResult<Arc<Context>> {
    let ctx = current()?;
    ctx.check()?;
    Ok(ctx)
}

/// `handle`, or the current context when it is null.
fn context_or_current(ctx: CUcontext) -> CuResult<Arc<Context>> {
    if ctx.is_null() {
        current()
    } else {
        context(ctx)
    }
}

fn check_flags(flags: c_uint) -> CuResult {
    if flags & !(CUctx_flags::CU_CTX_FLAGS_MASK as c_uint) != 0 {
        return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
    }
    Ok(())
}

/// Ends a context: its handle and everything made in it stop working.
fn end(ctx: &Context) {
    ctx.destroy();
    let _ = CONTEXTS.remove(ctx.handle);
    STACK.with_borrow_mut(|stack| stack.retain(|c| c.handle != ctx.handle));
}

#[no_mangle]
pub unsafe extern "C" fn cuDevicePrimaryCtxRetain(pctx: *mut CUcontext, dev: CUdevice) -> CUresult {
    api("cuDevicePrimaryCtxRetain", || {
        check_device(dev)?;
        if pctx.is_null() {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        let mut primary = lock(&PRIMARY);
        let flags = primary.flags;
        let ctx = primary
            .context
            .get_or_insert_with(|| {
                let handle = CONTEXTS.insert_with(|handle| Context::new(handle, true, flags));
                CONTEXTS.get(handle).expect("a context just registered")
            })
            .clone();
        primary.retained += 1;
        // SAFETY: pctx is the caller's out-parameter (checked not null above).
        unsafe { put(pctx, to_ptr(ctx.handle)) }
    })
}

/// Releases the primary context; the last release destroys it, and the next retain makes a new one.
#[no_mangle]
pub unsafe extern "C" fn cuDevicePrimaryCtxRelease_v2(dev: CUdevice) -> CUresult {
    api("cuDevicePrimaryCtxRelease_v2", || {
        check_device(dev)?;
        let mut primary = lock(&PRIMARY);
        if primary.retained == 0 {
            return Err(CUresult::CUDA_ERROR_INVALID_CONTEXT);
        }
        primary.retained -= 1;
        if primary.retained == 0 {
            if let Some(ctx) = primary.context.take() {
                end(&ctx);
            }
        }
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuDevicePrimaryCtxGetState(dev: CUdevice, flags: *mut c_uint, active: *mut c_int) -> CUresult {
    api("cuDevicePrimaryCtxGetState", || {
        check_device(dev)?;
        let primary = lock(&PRIMARY);
        // SAFETY: flags and active are the caller's out-parameters.
        unsafe {
            put(flags, primary.flags)?;
            put(active, c_int::from(primary.context.is_some()))
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuDevicePrimaryCtxSetFlags_v2(dev: CUdevice, flags: c_uint) -> CUresult {
    api("cuDevicePrimaryCtxSetFlags_v2", || {
        check_device(dev)?;
        check_flags(flags)?;
        let mut primary = lock(&PRIMARY);
        primary.flags = flags;
        if let Some(ctx) = &primary.context {
            ctx.flags.store(flags, Ordering::Relaxed);
        }
        Ok(())
    })
}

/// Ends the primary context's current life (its handle, its objects and its sticky error); the
/// retain count is kept, and the next retain makes a new context. Memory allocated in it stays
/// allocated.
#[no_mangle]
pub unsafe extern "C" fn cuDevicePrimaryCtxReset_v2(dev: CUdevice) -> CUresult {
    api("cuDevicePrimaryCtxReset_v2", || {
        check_device(dev)?;
        let mut primary = lock(&PRIMARY);
        if let Some(ctx) = primary.context.take() {
            end(&ctx);
        }
        primary.flags = 0;
        Ok(())
    })
}

/// Creates a context and makes it current. Execution affinity and CUDA-in-graphics parameters are
/// not supported.
#[no_mangle]
pub unsafe extern "C" fn cuCtxCreate_v4(
    pctx: *mut CUcontext,
    ctxCreateParams: *mut CUctxCreateParams,
    flags: c_uint,
    dev: CUdevice,
) -> CUresult {
    api("cuCtxCreate_v4", || {
        check_device(dev)?;
        check_flags(flags)?;
        if pctx.is_null() {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        if !ctxCreateParams.is_null() {
            // SAFETY: a non-null ctxCreateParams points to the caller's parameters.
            let params = unsafe { &*ctxCreateParams };
            if params.numExecAffinityParams != 0 || !params.cigParams.is_null() {
                warn("cuCtxCreate_v4: execution affinity and CUDA-in-graphics contexts are not implemented");
                return Err(CUresult::CUDA_ERROR_NOT_SUPPORTED);
            }
        }
        let handle = CONTEXTS.insert_with(|handle| Context::new(handle, false, flags));
        let ctx = CONTEXTS.get(handle)?;
        STACK.with_borrow_mut(|stack| stack.push(ctx));
        // SAFETY: pctx is the caller's out-parameter (checked not null above).
        unsafe { put(pctx, to_ptr(handle)) }
    })
}

/// Destroys a created context (the primary context is released, not destroyed).
#[no_mangle]
pub unsafe extern "C" fn cuCtxDestroy_v2(ctx: CUcontext) -> CUresult {
    api("cuCtxDestroy_v2", || {
        let context = context(ctx)?;
        if context.primary {
            return Err(CUresult::CUDA_ERROR_INVALID_CONTEXT);
        }
        end(&context);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuCtxPushCurrent_v2(ctx: CUcontext) -> CUresult {
    api("cuCtxPushCurrent_v2", || {
        let context = context(ctx)?;
        STACK.with_borrow_mut(|stack| stack.push(context));
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuCtxPopCurrent_v2(pctx: *mut CUcontext) -> CUresult {
    api("cuCtxPopCurrent_v2", || {
        let popped = STACK
            .with_borrow_mut(|stack| stack.pop())
            .ok_or(CUresult::CUDA_ERROR_INVALID_CONTEXT)?;
        // SAFETY: pctx is the caller's optional out-parameter.
        unsafe { put_optional(pctx, to_ptr(popped.handle)) }
    })
}

/// Replaces the top of the calling thread's stack with `ctx`; null pops it.
#[no_mangle]
pub unsafe extern "C" fn cuCtxSetCurrent(ctx: CUcontext) -> CUresult {
    api("cuCtxSetCurrent", || {
        let context = if ctx.is_null() { None } else { Some(context(ctx)?) };
        STACK.with_borrow_mut(|stack| {
            stack.pop();
            stack.extend(context);
        });
        Ok(())
    })
}

/// The calling thread's current context, or null when it has none.
#[no_mangle]
pub unsafe extern "C" fn cuCtxGetCurrent(pctx: *mut CUcontext) -> CUresult {
    api("cuCtxGetCurrent", || {
        let top = STACK.with_borrow(|stack| stack.last().map(|c| c.handle));
        // SAFETY: pctx is the caller's out-parameter.
        unsafe { put(pctx, top.map_or(std::ptr::null_mut(), to_ptr)) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuCtxGetDevice(device: *mut CUdevice) -> CUresult {
    api("cuCtxGetDevice", || {
        current()?;
        // SAFETY: device is the caller's out-parameter.
        unsafe { put(device, 0) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuCtxGetApiVersion(ctx: CUcontext, version: *mut c_uint) -> CUresult {
    api("cuCtxGetApiVersion", || {
        context_or_current(ctx)?;
        // SAFETY: version is the caller's out-parameter.
        unsafe { put(version, API_VERSION) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuCtxGetId(ctx: CUcontext, ctxId: *mut c_ulonglong) -> CUresult {
    api("cuCtxGetId", || {
        let context = context_or_current(ctx)?;
        // SAFETY: ctxId is the caller's out-parameter.
        unsafe { put(ctxId, context.handle & 0xffff_ffff_ffff) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuCtxGetFlags(flags: *mut c_uint) -> CUresult {
    api("cuCtxGetFlags", || {
        let ctx = current()?;
        // SAFETY: flags is the caller's out-parameter.
        unsafe { put(flags, ctx.flags.load(Ordering::Relaxed)) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuCtxSetFlags(flags: c_uint) -> CUresult {
    api("cuCtxSetFlags", || {
        check_flags(flags)?;
        current_checked()?.flags.store(flags, Ordering::Relaxed);
        Ok(())
    })
}

/// Work finishes when it is enqueued, so there is nothing to wait for; a kernel fault is reported.
#[no_mangle]
pub unsafe extern "C" fn cuCtxSynchronize() -> CUresult {
    api("cuCtxSynchronize", || current_checked().map(|_| ()))
}

#[no_mangle]
pub unsafe extern "C" fn cuCtxGetLimit(pvalue: *mut usize, limit: u32) -> CUresult {
    api("cuCtxGetLimit", || {
        let ctx = current_checked()?;
        let slot = *lock(&ctx.limits)
            .get(limit as usize)
            .ok_or(CUresult::CUDA_ERROR_INVALID_VALUE)?;
        let value = slot.ok_or(CUresult::CUDA_ERROR_UNSUPPORTED_LIMIT)?;
        // SAFETY: pvalue is the caller's out-parameter.
        unsafe { put(pvalue, value) }
    })
}

/// Stores a limit; the persisting L2 size is clamped to the device's maximum, 0.
#[no_mangle]
pub unsafe extern "C" fn cuCtxSetLimit(limit: u32, value: usize) -> CUresult {
    api("cuCtxSetLimit", || {
        let ctx = current_checked()?;
        let mut limits = lock(&ctx.limits);
        let slot = limits
            .get_mut(limit as usize)
            .ok_or(CUresult::CUDA_ERROR_INVALID_VALUE)?;
        if slot.is_none() {
            return Err(CUresult::CUDA_ERROR_UNSUPPORTED_LIMIT);
        }
        let persisting = limit == CUlimit::CU_LIMIT_PERSISTING_L2_CACHE_SIZE as u32;
        *slot = Some(if persisting { 0 } else { value });
        Ok(())
    })
}

/// A `CUfunc_cache` from its C value.
pub(crate) fn cache_config(value: u32) -> CuResult<CUfunc_cache> {
    use CUfunc_cache::*;
    [
        CU_FUNC_CACHE_PREFER_NONE,
        CU_FUNC_CACHE_PREFER_SHARED,
        CU_FUNC_CACHE_PREFER_L1,
        CU_FUNC_CACHE_PREFER_EQUAL,
    ]
    .into_iter()
    .find(|c| *c as u32 == value)
    .ok_or(CUresult::CUDA_ERROR_INVALID_VALUE)
}

#[no_mangle]
pub unsafe extern "C" fn cuCtxGetCacheConfig(pconfig: *mut CUfunc_cache) -> CUresult {
    api("cuCtxGetCacheConfig", || {
        let ctx = current_checked()?;
        let config = cache_config(ctx.cache_config.load(Ordering::Relaxed))?;
        // SAFETY: pconfig is the caller's out-parameter.
        unsafe { put(pconfig, config) }
    })
}

/// Stores the preference; shared memory and L1 are not modelled, so it changes nothing else.
#[no_mangle]
pub unsafe extern "C" fn cuCtxSetCacheConfig(config: u32) -> CUresult {
    api("cuCtxSetCacheConfig", || {
        cache_config(config)?;
        current_checked()?.cache_config.store(config, Ordering::Relaxed);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuCtxGetStreamPriorityRange(
    leastPriority: *mut c_int,
    greatestPriority: *mut c_int,
) -> CUresult {
    api("cuCtxGetStreamPriorityRange", || {
        current_checked()?;
        // SAFETY: both are the caller's optional out-parameters.
        unsafe {
            put_optional(leastPriority, LEAST_PRIORITY)?;
            put_optional(greatestPriority, GREATEST_PRIORITY)
        }
    })
}
