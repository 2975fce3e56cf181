//! Device memory. Every allocation is a block of host memory whose host address is also its device
//! address, so a kernel's load is a pointer dereference once the address is checked. Beside the
//! bytes, an allocation keeps one flag per byte saying whether it was ever written (initcheck),
//! and, while a checked launch runs, who last wrote and read each 4-byte word (racecheck on global
//! memory, see `exec::check`).
//!
//! Allocations are 256-byte aligned, as `cuMemAlloc`'s are, and zero-filled so that an unchecked
//! run that reads memory never written still gives the same bits every time.

use std::alloc::{self, Layout};
use std::cell::UnsafeCell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

/// Alignment of every allocation, as the driver guarantees.
pub const ALLOCATION_ALIGN: usize = 256;

/// What the emulated device reports as its memory (an H100's 80 GiB).
pub const DEVICE_MEMORY_BYTES: u64 = 80 << 30;

/// Device memory of one emulated device.
#[derive(Default)]
pub struct DeviceMemory {
    allocations: RwLock<BTreeMap<u64, Arc<Allocation>>>,
    used: AtomicU64,
    serial: AtomicU64,
}

/// What an allocation was made for, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocationKind {
    /// `cuMemAlloc`, `cuMemAllocAsync`, `cuMemAllocFromPoolAsync`.
    Device,
    /// A module's `.global` variable.
    ModuleGlobal,
}

/// One device allocation.
pub struct Allocation {
    base: u64,
    len: usize,
    /// Allocation number in this process, for reports ("allocation #12").
    pub serial: u64,
    pub kind: AllocationKind,
    data: *mut u8,
    /// Per byte: 1 once written by a copy, a set or a kernel store (initcheck).
    written: Box<[UnsafeCell<u8>]>,
    /// Per-halfword race state of checked launches, made on first use (`exec::check`).
    race: OnceLock<Box<[crate::exec::check::HalfState]>>,
}

// SAFETY: the bytes are plain memory shared by the kernels' worker threads exactly as device
// memory is shared by a GPU's threads: concurrent writes to one byte are a race in the emulated
// program, which the checks report; the flags only ever go from 0 to 1.
unsafe impl Send for Allocation {}
unsafe impl Sync for Allocation {}

/// An address that no live allocation covers, or a range that runs past one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessError {
    pub address: u64,
    pub len: usize,
    /// The nearest allocation and how the access relates to it.
    pub nearest: Option<String>,
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes at {:#x} are not inside any live device allocation",
            self.len, self.address
        )?;
        if let Some(n) = &self.nearest {
            write!(f, " ({n})")?;
        }
        Ok(())
    }
}

impl Allocation {
    pub fn base(&self) -> u64 {
        self.base
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn end(&self) -> u64 {
        self.base + self.len as u64
    }

    /// Host pointer to byte `offset`.
    ///
    /// # Safety
    /// `offset` must be within the allocation; the caller upholds the emulated program's memory
    /// model (the checks report its races).
    pub unsafe fn ptr(&self, offset: usize) -> *mut u8 {
        self.data.add(offset)
    }

    /// Whether every byte of `offset..offset+len` was ever written.
    pub fn is_written(&self, offset: usize, len: usize) -> bool {
        // SAFETY: flags are single bytes that only go from 0 to 1; a stale read is harmless.
        self.written[offset..offset + len]
            .iter()
            .all(|f| unsafe { *f.get() } != 0)
    }

    /// The first byte of `offset..offset+len` never written, if any.
    pub fn first_unwritten(&self, offset: usize, len: usize) -> Option<usize> {
        // SAFETY: as in `is_written`.
        (offset..offset + len).find(|&i| unsafe { *self.written[i].get() } == 0)
    }

    /// Marks `offset..offset+len` as written.
    pub fn mark_written(&self, offset: usize, len: usize) {
        for f in &self.written[offset..offset + len] {
            // SAFETY: as in `is_written`.
            unsafe { *f.get() = 1 };
        }
    }

    /// The race state of this allocation's 2-byte halfwords, made on first use.
    pub fn race_state(&self) -> &[crate::exec::check::HalfState] {
        self.race.get_or_init(|| {
            use crate::exec::check::HalfState;
            let n = self.len.div_ceil(2);
            if n == 0 {
                return Box::new([]);
            }
            let layout = Layout::array::<HalfState>(n).expect("a race-state layout");
            // SAFETY: a halfword state is two atomic integers, for which all-zero bits are valid
            // (no access yet); the memory comes from the global allocator with the slice's
            // layout, as `Box` frees it (n >= 1: a layout of nonzero size).
            unsafe {
                let data = alloc::alloc_zeroed(layout) as *mut HalfState;
                if data.is_null() {
                    alloc::handle_alloc_error(layout);
                }
                Box::from_raw(std::ptr::slice_from_raw_parts_mut(data, n))
            }
        })
    }

    fn describe(&self) -> String {
        format!(
            "allocation #{} of {} bytes at {:#x}{}",
            self.serial,
            self.len,
            self.base,
            if self.kind == AllocationKind::ModuleGlobal {
                ", a module global"
            } else {
                ""
            }
        )
    }
}

impl Drop for Allocation {
    fn drop(&mut self) {
        // SAFETY: allocated in `DeviceMemory::alloc` with this layout.
        unsafe { alloc::dealloc(self.data, layout(self.len)) };
    }
}

/// `len` zero flags, from zeroed memory (a large allocation is not touched page by page).
fn zeroed_flags(len: usize) -> Box<[UnsafeCell<u8>]> {
    let flags: Box<[u8]> = vec![0u8; len].into_boxed_slice();
    // SAFETY: `UnsafeCell<u8>` has the layout of `u8` (it is `repr(transparent)`).
    unsafe { Box::from_raw(Box::into_raw(flags) as *mut [UnsafeCell<u8>]) }
}

fn layout(len: usize) -> Layout {
    Layout::from_size_align(len.max(1), ALLOCATION_ALIGN).expect("an allocation layout")
}

impl DeviceMemory {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new zero-filled allocation of `len` bytes; `None` when the device's memory is used up or
    /// the host cannot provide it.
    pub fn alloc(&self, len: usize, kind: AllocationKind) -> Option<u64> {
        let used = self.used.fetch_add(len as u64, Ordering::Relaxed) + len as u64;
        if used > DEVICE_MEMORY_BYTES {
            self.used.fetch_sub(len as u64, Ordering::Relaxed);
            return None;
        }
        // SAFETY: the layout has a nonzero size.
        let data = unsafe { alloc::alloc_zeroed(layout(len)) };
        if data.is_null() {
            self.used.fetch_sub(len as u64, Ordering::Relaxed);
            return None;
        }
        let allocation = Allocation {
            base: data as u64,
            len,
            serial: self.serial.fetch_add(1, Ordering::Relaxed) + 1,
            kind,
            data,
            written: zeroed_flags(len),
            race: OnceLock::new(),
        };
        let base = allocation.base;
        self.allocations
            .write()
            .expect("allocation table lock")
            .insert(base, Arc::new(allocation));
        Some(base)
    }

    /// Frees the allocation that starts at `base`.
    pub fn free(&self, base: u64) -> Result<(), AccessError> {
        let removed = self.allocations.write().expect("allocation table lock").remove(&base);
        match removed {
            Some(a) => {
                self.used.fetch_sub(a.len as u64, Ordering::Relaxed);
                Ok(())
            }
            None => Err(self.access_error(base, 0)),
        }
    }

    /// Takes the allocation at `base` out of the table but keeps its memory, so that its addresses
    /// stay reserved while every access to them fails: a CUDA graph's allocation between the
    /// graph's launches, whose address is fixed for the life of the graph.
    pub fn suspend(&self, base: u64) -> Option<Arc<Allocation>> {
        let removed = self.allocations.write().expect("allocation table lock").remove(&base)?;
        self.used.fetch_sub(removed.len as u64, Ordering::Relaxed);
        Some(removed)
    }

    /// Puts a suspended allocation back as a new one, no byte of it written.
    pub fn reinstate(&self, allocation: Arc<Allocation>) {
        for f in allocation.written.iter() {
            // SAFETY: no launch reaches a suspended allocation through the table; one still running
            // with an older snapshot of it is a race of the emulated program.
            unsafe { *f.get() = 0 };
        }
        self.used.fetch_add(allocation.len as u64, Ordering::Relaxed);
        self.allocations
            .write()
            .expect("allocation table lock")
            .insert(allocation.base, allocation);
    }

    /// The allocation containing `address..address+len`.
    pub fn find(&self, address: u64, len: usize) -> Result<Arc<Allocation>, AccessError> {
        let table = self.allocations.read().expect("allocation table lock");
        match table.range(..=address).next_back() {
            Some((_, a)) if address + len as u64 <= a.end() && (address < a.end() || len == 0) => Ok(a.clone()),
            _ => {
                drop(table);
                Err(self.access_error(address, len))
            }
        }
    }

    /// Every live allocation, in address order: what a launch checks its accesses against.
    pub fn snapshot(&self) -> Vec<Arc<Allocation>> {
        self.allocations
            .read()
            .expect("allocation table lock")
            .values()
            .cloned()
            .collect()
    }

    /// Bytes in use and the device's total.
    pub fn usage(&self) -> (u64, u64) {
        (self.used.load(Ordering::Relaxed), DEVICE_MEMORY_BYTES)
    }

    /// Host → device.
    pub fn write(&self, address: u64, bytes: &[u8]) -> Result<(), AccessError> {
        let a = self.find(address, bytes.len())?;
        let offset = (address - a.base) as usize;
        // SAFETY: the range was checked to lie inside the allocation.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), a.ptr(offset), bytes.len()) };
        a.mark_written(offset, bytes.len());
        Ok(())
    }

    /// Device → host.
    pub fn read(&self, address: u64, bytes: &mut [u8]) -> Result<(), AccessError> {
        let a = self.find(address, bytes.len())?;
        let offset = (address - a.base) as usize;
        // SAFETY: the range was checked to lie inside the allocation.
        unsafe { std::ptr::copy_nonoverlapping(a.ptr(offset), bytes.as_mut_ptr(), bytes.len()) };
        Ok(())
    }

    /// Device → device (`memmove` semantics); the written flags travel with the bytes.
    pub fn copy(&self, dst: u64, src: u64, len: usize) -> Result<(), AccessError> {
        let s = self.find(src, len)?;
        let d = self.find(dst, len)?;
        let (so, doff) = ((src - s.base) as usize, (dst - d.base) as usize);
        // SAFETY: both ranges were checked; `copy` allows overlap.
        unsafe { std::ptr::copy(s.ptr(so), d.ptr(doff), len) };
        for i in 0..len {
            if s.is_written(so + i, 1) {
                d.mark_written(doff + i, 1);
            }
        }
        Ok(())
    }

    /// `cuMemsetD8/D16/D32`: `count` elements of `value`'s width, starting at `address`.
    pub fn set(&self, address: u64, value: &[u8], count: usize) -> Result<(), AccessError> {
        let len = value.len() * count;
        let a = self.find(address, len)?;
        let offset = (address - a.base) as usize;
        for i in 0..count {
            // SAFETY: the range was checked to lie inside the allocation.
            unsafe { std::ptr::copy_nonoverlapping(value.as_ptr(), a.ptr(offset + i * value.len()), value.len()) };
        }
        a.mark_written(offset, len);
        Ok(())
    }

    /// Why `address..address+len` is not a valid access, naming the nearest allocation.
    pub fn access_error(&self, address: u64, len: usize) -> AccessError {
        let table = self.allocations.read().expect("allocation table lock");
        let below = table.range(..=address).next_back().map(|(_, a)| a);
        let above = table.range(address + 1..).next().map(|(_, a)| a);
        let nearest = match (below, above) {
            (Some(b), Some(a)) if address >= b.end() && address - b.end() > a.base - address => {
                Some(format!("{} bytes before {}", a.base - address, a.describe()))
            }
            (Some(b), _) if address < b.end() => Some(format!(
                "it starts at offset {} of {} and runs {} bytes past its end",
                address - b.base,
                b.describe(),
                address + len as u64 - b.end()
            )),
            (Some(b), _) => Some(format!(
                "it starts at offset {} of {}, {} bytes past its end",
                address - b.base,
                b.describe(),
                address - b.end()
            )),
            (None, Some(a)) => Some(format!("{} bytes before {}", a.base - address, a.describe())),
            (None, None) => None,
        };
        AccessError { address, len, nearest }
    }
}
