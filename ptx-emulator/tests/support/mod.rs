//! Running kernels on the emulator from a test: device memory, modules from the build's test
//! kernels or from PTX text, parameter packing, and launches.

#![allow(dead_code)] // each test file uses a part

use ptx_emulator::exec::{self, ExecOptions, Fault, LaunchConfig, LaunchStats, LoadedModule};
use ptx_emulator::memory::{AllocationKind, DeviceMemory};

/// A kernel argument.
#[derive(Debug, Clone, Copy)]
pub enum Arg {
    Ptr(u64),
    U32(u32),
    I32(i32),
    U64(u64),
    F32(f32),
}

impl Arg {
    fn bytes(&self) -> Vec<u8> {
        match *self {
            Arg::Ptr(p) | Arg::U64(p) => p.to_le_bytes().to_vec(),
            Arg::U32(v) => v.to_le_bytes().to_vec(),
            Arg::I32(v) => v.to_le_bytes().to_vec(),
            Arg::F32(v) => v.to_le_bytes().to_vec(),
        }
    }
}

/// An emulated device for one test.
pub struct Emulator {
    pub memory: DeviceMemory,
    pub options: ExecOptions,
}

impl Default for Emulator {
    fn default() -> Self {
        Self::new()
    }
}

impl Emulator {
    /// Checks on, two workers.
    pub fn new() -> Self {
        Self {
            memory: DeviceMemory::new(),
            options: ExecOptions {
                checks: true,
                threads: 2,
            },
        }
    }

    /// Loads PTX text.
    pub fn load(&self, ptx: &str) -> LoadedModule {
        exec::load_module(ptx, "test", &self.memory).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Loads `tests/kernels/<name>.cu` as compiled by the build, or `None` (with a printed
    /// reason) when the build had no nvcc.
    pub fn load_compiled(&self, name: &str) -> Option<LoadedModule> {
        let dir = env!("PTX_EMULATOR_TEST_KERNELS");
        if dir.is_empty() {
            println!("skipped: built without nvcc, so tests/kernels/{name}.cu was not compiled");
            return None;
        }
        let path = std::path::Path::new(dir).join(format!("{name}.ptx"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Some(exec::load_module(&text, name, &self.memory).unwrap_or_else(|e| panic!("{e}")))
    }

    /// A device copy of `values`.
    pub fn upload<T: Copy>(&self, values: &[T]) -> u64 {
        // SAFETY: plain values viewed as their bytes.
        let bytes = unsafe { std::slice::from_raw_parts(values.as_ptr() as *const u8, std::mem::size_of_val(values)) };
        let address = self
            .memory
            .alloc(bytes.len(), AllocationKind::Device)
            .expect("device memory");
        self.memory.write(address, bytes).expect("an upload");
        address
    }

    /// `len` bytes never written (reading them is an initcheck fault).
    pub fn alloc(&self, len: usize) -> u64 {
        self.memory.alloc(len, AllocationKind::Device).expect("device memory")
    }

    /// `n` values of `T` from `address`.
    pub fn download<T: Copy + Default>(&self, address: u64, n: usize) -> Vec<T> {
        let mut out = vec![T::default(); n];
        // SAFETY: plain values viewed as their bytes.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr() as *mut u8, std::mem::size_of_val(&out[..])) };
        self.memory.read(address, bytes).expect("a download");
        out
    }

    /// Launches `kernel` of `module`.
    pub fn launch(
        &self,
        module: &LoadedModule,
        kernel: &str,
        grid: [u32; 3],
        block: [u32; 3],
        dynamic_shared: u32,
        args: &[Arg],
    ) -> Result<LaunchStats, Fault> {
        let k = module
            .kernels
            .get(kernel)
            .unwrap_or_else(|| panic!("no kernel {kernel}"));
        assert_eq!(k.params.len(), args.len(), "{kernel}: argument count");
        let mut params = vec![0u8; k.param_bytes];
        for (slot, arg) in k.params.iter().zip(args) {
            let b = arg.bytes();
            assert_eq!(b.len(), slot.size, "{kernel}: argument size");
            params[slot.offset..slot.offset + slot.size].copy_from_slice(&b);
        }
        let config = LaunchConfig {
            grid,
            block,
            dynamic_shared_bytes: dynamic_shared,
        };
        exec::launch(k, &config, &params, &self.memory, &self.options)
    }
}
