//! Modules loaded from PTX text, their kernels (functions) and globals, and function attributes.
//!
//! A module that does not load (PTX the emulator cannot parse, or an instruction it does not
//! implement) is `CUDA_ERROR_INVALID_PTX`, with the loader's full message (module, kernel, PTX line,
//! source line) on stderr. A cubin or fatbin image is `CUDA_ERROR_NOT_SUPPORTED`: only PTX runs.

use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cudarc::driver::sys::{CUdeviceptr, CUfunction, CUfunction_attribute as F, CUjit_option, CUmodule, CUresult};

use super::context::{cache_config, current_checked, Context};
use super::device::{SHARED_PER_BLOCK, SHARED_PER_BLOCK_OPTIN};
use super::{api, device_memory, from_ptr, lock, put, put_optional, to_ptr, warn, CuResult, Handles};
use crate::exec::{self, Kernel, LoadedModule};

/// The registers per thread reported for every kernel. The emulator allocates no registers; 32 is
/// what lets 2048 threads share an SM's 65,536, so occupancy is limited by threads and shared
/// memory, as for most kernels.
pub(crate) const REGISTERS_PER_THREAD: u32 = 32;

/// The PTX ISA and binary versions reported for every kernel (sm_90).
const PTX_VERSION: c_int = 90;
const BINARY_VERSION: c_int = 90;

struct Module {
    ctx: Arc<Context>,
    loaded: LoadedModule,
    /// Function handles handed out, by kernel name.
    functions: Mutex<BTreeMap<String, u64>>,
}

/// A kernel of a loaded module, with the attributes a program may set.
pub(crate) struct Function {
    pub ctx: Arc<Context>,
    pub kernel: Arc<Kernel>,
    name: CString,
    max_dynamic_shared: AtomicU32,
    carveout: AtomicI32,
    cache_config: AtomicU32,
}

impl Function {
    /// The most dynamic shared memory a launch may ask (48 KiB less the static, unless raised).
    pub(crate) fn max_dynamic_shared(&self) -> u32 {
        self.max_dynamic_shared.load(Ordering::Relaxed)
    }
}

static MODULES: Handles<Module> = Handles::new(4);
static FUNCTIONS: Handles<Function> = Handles::new(5);
/// Numbers modules that name no source file, for messages.
static UNNAMED: AtomicU64 = AtomicU64::new(1);

/// The live function behind a handle.
pub(crate) fn function(f: CUfunction) -> CuResult<Arc<Function>> {
    FUNCTIONS.get(from_ptr(f))
}

/// A module's name for messages: its first `.file`'s file name, else a number.
fn module_name(text: &str) -> String {
    text.lines()
        .map(str::trim_start)
        .find(|l| l.starts_with(".file"))
        .and_then(|l| l.split('"').nth(1))
        .and_then(|path| Path::new(path).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("module #{}", UNNAMED.fetch_add(1, Ordering::Relaxed)))
}

/// Loads PTX text into the current context. A load error goes to stderr and to `log`, if given.
fn load_text(text: &str, log: Option<&mut [u8]>) -> CuResult<u64> {
    let ctx = current_checked()?;
    match exec::load_module(text, &module_name(text), device_memory()) {
        Ok(loaded) => Ok(MODULES.insert(Module {
            ctx,
            loaded,
            functions: Mutex::new(BTreeMap::new()),
        })),
        Err(e) => {
            let message = e.to_string();
            warn(&message);
            if let Some(log) = log.filter(|l| !l.is_empty()) {
                let n = message.len().min(log.len() - 1);
                log[..n].copy_from_slice(&message.as_bytes()[..n]);
                log[n] = 0;
            }
            Err(CUresult::CUDA_ERROR_INVALID_PTX)
        }
    }
}

/// Loads an image: PTX text (NUL-terminated); cubins and fatbins are refused.
///
/// # Safety
/// `image` is a NUL-terminated string (a cubin's or fatbin's header has a NUL in its first bytes).
unsafe fn load_image(image: *const c_void, log: Option<&mut [u8]>) -> CuResult<u64> {
    if image.is_null() {
        return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
    }
    // SAFETY: the caller's contract.
    let bytes = unsafe { CStr::from_ptr(image.cast()) }.to_bytes();
    const BINARY_MAGICS: [&[u8]; 3] = [b"\x7fELF", &[0x50, 0xed, 0x55, 0xba], &[0xb1, 0x43, 0x62, 0x46]];
    if BINARY_MAGICS.iter().any(|m| bytes.starts_with(m)) {
        warn("only PTX text can be loaded: cubin and fatbin images are not supported");
        return Err(CUresult::CUDA_ERROR_NOT_SUPPORTED);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| CUresult::CUDA_ERROR_INVALID_IMAGE)?;
    load_text(text, log)
}

#[no_mangle]
pub unsafe extern "C" fn cuModuleLoadData(module: *mut CUmodule, image: *const c_void) -> CUresult {
    api("cuModuleLoadData", || {
        if module.is_null() {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        // SAFETY: image is the caller's NUL-terminated image.
        let handle = unsafe { load_image(image, None) }?;
        // SAFETY: module is the caller's out-parameter (checked not null above).
        unsafe { put(module, to_ptr(handle)) }
    })
}

/// As `cuModuleLoadData`; of the JIT options, the error log buffer receives the load error, and
/// the others are ignored (there is no JIT).
#[no_mangle]
pub unsafe extern "C" fn cuModuleLoadDataEx(
    module: *mut CUmodule,
    image: *const c_void,
    numOptions: c_uint,
    options: *mut CUjit_option,
    optionValues: *mut *mut c_void,
) -> CUresult {
    api("cuModuleLoadDataEx", || {
        if module.is_null() || (numOptions > 0 && (options.is_null() || optionValues.is_null())) {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        let (mut buffer, mut size) = (std::ptr::null_mut::<u8>(), None);
        for i in 0..numOptions as usize {
            // SAFETY: the caller passed numOptions options and values; an option is read as its
            // C value.
            let (option, value) = unsafe { (options.add(i).cast::<u32>().read(), optionValues.add(i).read()) };
            if option == CUjit_option::CU_JIT_ERROR_LOG_BUFFER as u32 {
                buffer = value.cast();
            } else if option == CUjit_option::CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES as u32 {
                size = Some(value as usize);
            }
        }
        let log = match (buffer.is_null(), size) {
            // SAFETY: the caller's error log buffer holds the bytes its size option says.
            (false, Some(n)) => Some(unsafe { std::slice::from_raw_parts_mut(buffer, n) }),
            _ => None,
        };
        // SAFETY: image is the caller's NUL-terminated image.
        let handle = unsafe { load_image(image, log) }?;
        // SAFETY: module is the caller's out-parameter (checked not null above).
        unsafe { put(module, to_ptr(handle)) }
    })
}

/// Loads a PTX file.
#[no_mangle]
pub unsafe extern "C" fn cuModuleLoad(module: *mut CUmodule, fname: *const c_char) -> CUresult {
    api("cuModuleLoad", || {
        if module.is_null() || fname.is_null() {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        // SAFETY: fname is the caller's NUL-terminated file name.
        let path = unsafe { CStr::from_ptr(fname) }.to_string_lossy().into_owned();
        let mut image = std::fs::read(&path).map_err(|e| {
            warn(&format!("cuModuleLoad: {path}: {e}"));
            CUresult::CUDA_ERROR_FILE_NOT_FOUND
        })?;
        image.push(0);
        // SAFETY: image is NUL-terminated.
        let handle = unsafe { load_image(image.as_ptr().cast(), None) }?;
        // SAFETY: module is the caller's out-parameter (checked not null above).
        unsafe { put(module, to_ptr(handle)) }
    })
}

/// Unloads a module: its functions stop working and its globals are freed.
#[no_mangle]
pub unsafe extern "C" fn cuModuleUnload(hmod: CUmodule) -> CUresult {
    api("cuModuleUnload", || {
        let module = MODULES.remove(from_ptr(hmod))?;
        for &handle in lock(&module.functions).values() {
            let _ = FUNCTIONS.remove(handle);
        }
        for &(address, _) in module.loaded.globals.values() {
            let _ = device_memory().free(address);
        }
        module.ctx.sticky()
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuModuleGetFunction(hfunc: *mut CUfunction, hmod: CUmodule, name: *const c_char) -> CUresult {
    api("cuModuleGetFunction", || {
        let module = MODULES.get(from_ptr(hmod))?;
        module.ctx.check()?;
        if hfunc.is_null() || name.is_null() {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        // SAFETY: name is the caller's NUL-terminated kernel name.
        let name = unsafe { CStr::from_ptr(name) };
        let key = name.to_str().map_err(|_| CUresult::CUDA_ERROR_NOT_FOUND)?;
        let kernel = module.loaded.kernels.get(key).ok_or(CUresult::CUDA_ERROR_NOT_FOUND)?;
        let mut functions = lock(&module.functions);
        let handle = *functions.entry(key.to_owned()).or_insert_with(|| {
            FUNCTIONS.insert(Function {
                ctx: module.ctx.clone(),
                kernel: kernel.clone(),
                name: name.to_owned(),
                max_dynamic_shared: AtomicU32::new(SHARED_PER_BLOCK.saturating_sub(kernel.static_shared_bytes)),
                carveout: AtomicI32::new(-1),
                cache_config: AtomicU32::new(0),
            })
        });
        // SAFETY: hfunc is the caller's out-parameter (checked not null above).
        unsafe { put(hfunc, to_ptr(handle)) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuModuleGetGlobal_v2(
    dptr: *mut CUdeviceptr,
    bytes: *mut usize,
    hmod: CUmodule,
    name: *const c_char,
) -> CUresult {
    api("cuModuleGetGlobal_v2", || {
        let module = MODULES.get(from_ptr(hmod))?;
        module.ctx.check()?;
        if name.is_null() {
            return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
        }
        // SAFETY: name is the caller's NUL-terminated variable name.
        let name = unsafe { CStr::from_ptr(name) }.to_string_lossy();
        let &(address, len) = module
            .loaded
            .globals
            .get(&*name)
            .ok_or(CUresult::CUDA_ERROR_NOT_FOUND)?;
        // SAFETY: dptr and bytes are the caller's optional out-parameters.
        unsafe {
            put_optional(dptr, address)?;
            put_optional(bytes, len)
        }
    })
}

/// A function attribute. The register count is [`REGISTERS_PER_THREAD`], the constant bank size 0
/// (the emulator keeps constants elsewhere), the PTX and binary versions 90; clusters are unused.
#[no_mangle]
pub unsafe extern "C" fn cuFuncGetAttribute(pi: *mut c_int, attrib: u32, hfunc: CUfunction) -> CUresult {
    api("cuFuncGetAttribute", || {
        let f = function(hfunc)?;
        f.ctx.check()?;
        let k = &f.kernel;
        let value = match attrib {
            x if x == F::CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK as u32 => k.max_threads_per_block as c_int,
            x if x == F::CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES as u32 => k.static_shared_bytes as c_int,
            x if x == F::CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES as u32 => 0,
            x if x == F::CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES as u32 => k.local_bytes as c_int,
            x if x == F::CU_FUNC_ATTRIBUTE_NUM_REGS as u32 => REGISTERS_PER_THREAD as c_int,
            x if x == F::CU_FUNC_ATTRIBUTE_PTX_VERSION as u32 => PTX_VERSION,
            x if x == F::CU_FUNC_ATTRIBUTE_BINARY_VERSION as u32 => BINARY_VERSION,
            x if x == F::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES as u32 => f.max_dynamic_shared() as c_int,
            x if x == F::CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT as u32 => {
                f.carveout.load(Ordering::Relaxed)
            }
            x if x < F::CU_FUNC_ATTRIBUTE_MAX as u32 => 0,
            _ => return Err(CUresult::CUDA_ERROR_INVALID_VALUE),
        };
        // SAFETY: pi is the caller's out-parameter.
        unsafe { put(pi, value) }
    })
}

/// Sets the dynamic shared memory a launch may ask (up to 227 KiB with the static) or the
/// preferred carveout (-1 to 100); cluster attributes are not supported, the rest are read-only.
#[no_mangle]
pub unsafe extern "C" fn cuFuncSetAttribute(hfunc: CUfunction, attrib: u32, value: c_int) -> CUresult {
    api("cuFuncSetAttribute", || {
        let f = function(hfunc)?;
        f.ctx.check()?;
        match attrib {
            x if x == F::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES as u32 => {
                let limit = SHARED_PER_BLOCK_OPTIN.saturating_sub(f.kernel.static_shared_bytes);
                let value = u32::try_from(value).map_err(|_| CUresult::CUDA_ERROR_INVALID_VALUE)?;
                if value > limit {
                    warn(&format!(
                        "cuFuncSetAttribute: {} may use at most {limit} bytes of dynamic shared memory, not {value}",
                        f.kernel.name
                    ));
                    return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
                }
                f.max_dynamic_shared.store(value, Ordering::Relaxed);
            }
            x if x == F::CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT as u32 => {
                if !(-1..=100).contains(&value) {
                    return Err(CUresult::CUDA_ERROR_INVALID_VALUE);
                }
                f.carveout.store(value, Ordering::Relaxed);
            }
            x if x == F::CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH as u32
                || x == F::CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT as u32
                || x == F::CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH as u32
                || x == F::CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED as u32
                || x == F::CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE as u32 =>
            {
                warn("cuFuncSetAttribute: thread block clusters are not implemented");
                return Err(CUresult::CUDA_ERROR_NOT_SUPPORTED);
            }
            _ => return Err(CUresult::CUDA_ERROR_INVALID_VALUE),
        }
        Ok(())
    })
}

/// Stores the preference; it changes nothing else.
#[no_mangle]
pub unsafe extern "C" fn cuFuncSetCacheConfig(hfunc: CUfunction, config: u32) -> CUresult {
    api("cuFuncSetCacheConfig", || {
        let f = function(hfunc)?;
        f.ctx.check()?;
        cache_config(config)?;
        f.cache_config.store(config, Ordering::Relaxed);
        Ok(())
    })
}

/// The kernel's name, valid while its module is loaded.
#[no_mangle]
pub unsafe extern "C" fn cuFuncGetName(name: *mut *const c_char, hfunc: CUfunction) -> CUresult {
    api("cuFuncGetName", || {
        let f = function(hfunc)?;
        // SAFETY: name is the caller's out-parameter; the string lives in the function, which its
        // module keeps until unloaded.
        unsafe { put(name, f.name.as_ptr()) }
    })
}
