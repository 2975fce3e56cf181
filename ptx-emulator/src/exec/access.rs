//! Memory instructions of a warp: `ld`, `st`, `cvta`, `atom`/`red` and `cp.async`, lane by lane,
//! with every access checked when the launch is checked: inside its memory, aligned to its size,
//! reading only what was written (initcheck), and not racing (see `check`).
//!
//! Address spaces: a global address is a device address (a host address of an allocation); a
//! shared or local address is an offset in the block's shared memory or the thread's local
//! memory; a generic address is a global address, or a shared/local offset plus its window base
//! (`decode::SHARED_WINDOW`, `LOCAL_WINDOW`).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use super::alu::{sext, width_mask, Lanes};
use super::check::{Conflict, GlobalAccess};
use super::decode::{LOCAL_WINDOW, SHARED_WINDOW, WINDOW_BYTES};
use super::ir::*;
use super::numerics as num;
use super::warp::{Ctx, PendingCopy};
use super::{FaultKind, Launch};
use crate::memory::Allocation;

/// Where one lane's access goes.
enum Place<'a> {
    Global { allocation: &'a Allocation, offset: usize },
    Shared(usize),
    Local(usize),
    Param(usize),
}

impl<'a> Ctx<'a> {
    /// The lane's address of `addr`.
    #[inline]
    fn address(&self, addr: Addr, lane: usize) -> u64 {
        self.read_lane(addr.base, lane).wrapping_add(addr.offset as u64)
    }

    /// Resolves and checks (bounds, alignment) an access of `len` bytes at `address` in `space`.
    #[inline]
    fn place(
        &self,
        space: Space,
        address: u64,
        len: usize,
        lane: u32,
        what: &str,
    ) -> Result<Place<'a>, Box<super::Fault>> {
        if address % len as u64 != 0 {
            return Err(self.place_fault(FaultKind::Misaligned, space, address, len, lane, what));
        }
        let (space, address) = match space {
            Space::Generic if (SHARED_WINDOW..SHARED_WINDOW + WINDOW_BYTES).contains(&address) => {
                (Space::Shared, address - SHARED_WINDOW)
            }
            Space::Generic if (LOCAL_WINDOW..LOCAL_WINDOW + WINDOW_BYTES).contains(&address) => {
                (Space::Local, address - LOCAL_WINDOW)
            }
            Space::Generic => (Space::Global, address),
            s => (s, address),
        };
        let inside = |size: usize| address.checked_add(len as u64).is_some_and(|end| end <= size as u64);
        let place = match space {
            Space::Global => Launch::allocation(self.launch, address, len).map(|allocation| Place::Global {
                offset: (address - allocation.base()) as usize,
                allocation,
            }),
            Space::Shared => inside(self.block.shared.len()).then_some(Place::Shared(address as usize)),
            Space::Local => {
                let size = self.launch.program.local_bytes as usize;
                inside(size).then_some(Place::Local(lane as usize * size + address as usize))
            }
            Space::Param => inside(self.launch.params.len()).then_some(Place::Param(address as usize)),
            Space::Generic => unreachable!("resolved above"),
        };
        place.ok_or_else(|| self.place_fault(FaultKind::OutOfBounds, space, address, len, lane, what))
    }

    /// The fault of an access `place` refuses: misaligned, or outside its memory.
    #[cold]
    #[inline(never)]
    fn place_fault(
        &self,
        kind: FaultKind,
        space: Space,
        address: u64,
        len: usize,
        lane: u32,
        what: &str,
    ) -> Box<super::Fault> {
        let detail = match (kind, space) {
            (FaultKind::Misaligned, _) => {
                format!("{what} of {len} bytes at {space:?} address {address:#x}, not aligned to {len}")
            }
            (_, Space::Global) => format!("{what}: {}", self.launch.memory.access_error(address, len)),
            (_, space) => {
                let (name, size) = match space {
                    Space::Shared => ("shared", self.block.shared.len()),
                    Space::Local => ("local", self.launch.program.local_bytes as usize),
                    _ => ("parameter", self.launch.params.len()),
                };
                format!("{what} of {len} bytes at {name} offset {address} is outside its {size} bytes")
            }
        };
        self.fault(kind, lane, detail)
    }

    /// The global-memory access record of `lane`.
    fn global_access(&self, lane: u32) -> GlobalAccess {
        let block_threads = u64::from(self.launch.block_threads);
        let block_first = self.block.linear * block_threads;
        GlobalAccess {
            launch: self.launch.serial,
            thread: block_first + u64::from(self.warp.thread(lane)),
            block_first,
            block_threads,
            barrier: self.block.barrier_epoch,
        }
    }

    /// The race check of a global access of `len` bytes at `offset` of `allocation`, halfword by
    /// halfword.
    #[allow(clippy::too_many_arguments)]
    fn check_global(
        &self,
        allocation: &Allocation,
        offset: usize,
        len: usize,
        lane: u32,
        write: bool,
        record_read: bool,
    ) -> Result<(), Box<super::Fault>> {
        let halves = allocation.race_state();
        let access = self.global_access(lane);
        let mut byte = offset;
        while byte < offset + len {
            let half = byte / 2;
            let end = ((half + 1) * 2).min(offset + len);
            let bytes = ((1u32 << (end - byte)) - 1) << (byte % 2);
            let conflict = if write {
                halves[half].write(&access, bytes)
            } else {
                halves[half].read(&access, bytes, record_read)
            };
            if let Some(c) = conflict {
                return Err(self.race(
                    FaultKind::GlobalRace,
                    lane,
                    c,
                    &format!(
                        "global address {:#x} (offset {} of allocation #{})",
                        allocation.base() + byte as u64,
                        byte,
                        allocation.serial
                    ),
                    true,
                ));
            }
            byte = end;
        }
        Ok(())
    }

    /// A race fault: `lane`'s access conflicts as `c` says, at `place`; `grid_threads` when the
    /// other thread is named by its index in the grid (global memory) rather than in the block.
    fn race(&self, kind: FaultKind, lane: u32, c: Conflict, place: &str, grid_threads: bool) -> Box<super::Fault> {
        let thread = |t: u32| {
            if grid_threads {
                let bt = self.launch.block_threads;
                format!("thread {} of block {} (linear indices)", t % bt, t / bt)
            } else {
                let [x, y, z] = self.launch.thread_xyz(t);
                format!("thread ({x},{y},{z})")
            }
        };
        let at = |site: Option<u32>| site.map_or(String::new(), |s| format!(" at {}", self.launch.site_text(s)));
        let detail = match c {
            Conflict::ReadAfterWrite { other, site } => {
                format!(
                    "read of {place} written{} by {} with no barrier between",
                    at(site),
                    thread(other)
                )
            }
            Conflict::WriteAfterWrite { other, site } => {
                format!(
                    "write of {place} also written{} by {} with no barrier between",
                    at(site),
                    thread(other)
                )
            }
            Conflict::WriteAfterRead {
                other: Some(other),
                site,
            } => {
                format!(
                    "write of {place} read{} by {} with no barrier between",
                    at(site),
                    thread(other)
                )
            }
            Conflict::WriteAfterRead { other: None, site } => {
                format!(
                    "write of {place} read{} by several other threads with no barrier between",
                    at(site)
                )
            }
        };
        self.fault(kind, lane, detail)
    }

    /// Checks a shared access of `len` bytes at `offset` by `lane` (race, initcheck, pending
    /// `cp.async`) and records it, word by word. The reports are built out of line: this runs for
    /// every lane of every shared access.
    #[inline]
    fn check_shared(&mut self, offset: usize, len: usize, lane: u32, write: bool) -> Result<(), Box<super::Fault>> {
        let now = self.access(lane);
        let block = self.block.serial;
        let mut byte = offset;
        while byte < offset + len {
            let word = byte / 4;
            let end = ((word + 1) * 4).min(offset + len);
            let bytes = (((1u32 << (end - byte)) - 1) << (byte % 4)) as u8;
            let entry = &mut self.block.shadow[word];
            if entry.pending_copy & bytes != 0 {
                return Err(self.shared_fault(lane, byte, write, None));
            }
            let conflict = if write {
                entry.write(block, now, bytes)
            } else {
                let initialized = entry.initialized(block, bytes);
                let conflict = entry.read(block, now, bytes);
                if !initialized && self.block.uninitialized_read.is_none() {
                    // reported at the next barrier unless a race explains it first: with the
                    // warps run in turn, a read that a missing barrier lets run early finds
                    // the bytes unwritten before the racing write comes
                    self.block.uninitialized_read = Some(self.uninitialized_shared(lane, byte));
                }
                conflict
            };
            if let Some(c) = conflict {
                return Err(self.shared_fault(lane, byte, write, Some(c)));
            }
            byte = end;
        }
        Ok(())
    }

    /// The fault of a shared access to `byte`: a race (`conflict`), else a pending `cp.async`.
    #[cold]
    #[inline(never)]
    fn shared_fault(&self, lane: u32, byte: usize, write: bool, conflict: Option<Conflict>) -> Box<super::Fault> {
        match conflict {
            Some(c) => self.race(FaultKind::SharedRace, lane, c, &format!("shared offset {byte}"), false),
            None => {
                let what = if write { "write to" } else { "read of" };
                self.fault(
                    FaultKind::AsyncCopyNotWaited,
                    lane,
                    format!("{what} shared offset {byte}, the destination of a cp.async not yet waited for (cp.async.wait_group)"),
                )
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn uninitialized_shared(&self, lane: u32, byte: usize) -> Box<super::Fault> {
        self.fault(
            FaultKind::UninitializedShared,
            lane,
            format!("read of shared offset {byte}, never written by this block"),
        )
    }

    pub(super) fn cvta(
        &self,
        space: Space,
        to_generic: bool,
        a: &Lanes,
        mask: u32,
    ) -> Result<Lanes, Box<super::Fault>> {
        let window = match space {
            Space::Shared => SHARED_WINDOW,
            Space::Local => LOCAL_WINDOW,
            Space::Global => return Ok(*a),
            other => {
                return Err(self.fault(
                    FaultKind::Invalid,
                    mask.trailing_zeros(),
                    format!("cvta of {other:?} space"),
                ));
            }
        };
        let mut out = [0u64; 32];
        for l in 0..32 {
            out[l] = if to_generic {
                a[l].wrapping_add(window)
            } else {
                a[l].wrapping_sub(window)
            };
        }
        Ok(out)
    }

    /// Every active lane's address of `addr`.
    #[inline]
    fn addresses(&self, addr: Addr) -> Lanes {
        let base = self.operand(addr.base);
        let mut out = [0u64; 32];
        for l in 0..32 {
            out[l] = base[l].wrapping_add(addr.offset as u64);
        }
        out
    }

    /// The memory all active lanes access, when they all fall inside one region, aligned: the
    /// host pointer of the region's start, its device base address and size, and the place of
    /// the region (for the checks). `None` sends the access down the lane-by-lane path, which
    /// names the faulting lane.
    fn region(
        &self,
        space: Space,
        addresses: &Lanes,
        len: usize,
        mask: u32,
    ) -> Option<(*mut u8, u64, usize, Region<'a>)> {
        let first = addresses[mask.trailing_zeros() as usize];
        let (ptr, base, size, region) = match space {
            Space::Shared => (
                self.block.shared.as_ptr() as *mut u8,
                0,
                self.block.shared.len(),
                Region::Shared,
            ),
            Space::Local => (
                self.warp.local.as_ptr() as *mut u8,
                0,
                self.launch.program.local_bytes as usize,
                Region::Local,
            ),
            Space::Param => (
                self.launch.params.as_ptr() as *mut u8,
                0,
                self.launch.params.len(),
                Region::Param,
            ),
            Space::Global | Space::Generic => {
                if space == Space::Generic && first >= SHARED_WINDOW {
                    return None;
                }
                let a = Launch::allocation(self.launch, first, len)?;
                // SAFETY: offset 0 of a live allocation.
                (unsafe { a.ptr(0) }, a.base(), a.len(), Region::Global(a))
            }
        };
        let mut ok = true;
        for (l, a) in addresses.iter().enumerate() {
            let offset = a.wrapping_sub(base);
            let good =
                offset % len as u64 == 0 && offset.wrapping_add(len as u64) <= size as u64 && offset < size as u64;
            ok &= mask >> l & 1 == 0 || good;
        }
        ok.then_some((ptr, base, size, region))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn load(
        &mut self,
        space: Space,
        bytes: u8,
        count: u8,
        extend: Extend,
        d: &[Option<Reg>; 4],
        addr: Addr,
        read_only: bool,
        mask: u32,
    ) -> Result<(), Box<super::Fault>> {
        let len = usize::from(bytes) * usize::from(count);
        let addresses = self.addresses(addr);
        let Some((ptr, base, _, region)) = self.region(space, &addresses, len, mask) else {
            return self.load_lanes(space, bytes, count, extend, d, &addresses, read_only, mask);
        };
        if self.launch.checks {
            for lane in 0..32u32 {
                if mask >> lane & 1 != 0 {
                    let offset = (addresses[lane as usize] - base) as usize;
                    self.check_read(&region, offset, len, lane, read_only)?;
                }
            }
        }
        let mut values = [[0u64; 32]; 4];
        let b = usize::from(bytes);
        for lane in 0..32 {
            if mask >> lane & 1 == 0 {
                continue;
            }
            // the local region is per lane: lane after lane
            let lane_base = if matches!(region, Region::Local) {
                lane * (self.launch.program.local_bytes as usize)
            } else {
                0
            };
            let offset = lane_base + (addresses[lane] - base) as usize;
            for (e, v) in values.iter_mut().enumerate().take(usize::from(count)) {
                // SAFETY: `region` checked every active lane's range inside the region.
                let x = unsafe { read_element(ptr.add(offset + e * b), bytes) };
                v[lane] = extended(x, bytes, extend);
            }
        }
        self.write_loaded(d, &values, count, mask);
        Ok(())
    }

    /// Writes the `count` loaded elements into their destination registers (a `None` is a sink).
    fn write_loaded(&mut self, d: &[Option<Reg>; 4], values: &[Lanes; 4], count: u8, mask: u32) {
        for (e, r) in d.iter().enumerate().take(usize::from(count)) {
            if let Some(r) = r {
                self.write(*r, &values[e], mask);
            }
        }
    }

    /// The read checks of one lane's access inside `region`.
    fn check_read(
        &mut self,
        region: &Region<'a>,
        offset: usize,
        len: usize,
        lane: u32,
        read_only: bool,
    ) -> Result<(), Box<super::Fault>> {
        match region {
            Region::Global(allocation) => {
                if let Some(first) = allocation.first_unwritten(offset, len) {
                    return Err(self.fault(
                        FaultKind::UninitializedGlobal,
                        lane,
                        format!(
                            "load of {len} bytes at {:#x}: byte {first} of allocation #{} was never written",
                            allocation.base() + offset as u64,
                            allocation.serial
                        ),
                    ));
                }
                self.check_global(allocation, offset, len, lane, false, !read_only)
            }
            Region::Shared => self.check_shared(offset, len, lane, false),
            Region::Local | Region::Param => Ok(()),
        }
    }

    /// `load` lane by lane, resolving each lane's place on its own (generic addresses in several
    /// spaces, or an access that faults).
    #[allow(clippy::too_many_arguments)]
    fn load_lanes(
        &mut self,
        space: Space,
        bytes: u8,
        count: u8,
        extend: Extend,
        d: &[Option<Reg>; 4],
        addresses: &Lanes,
        read_only: bool,
        mask: u32,
    ) -> Result<(), Box<super::Fault>> {
        let len = usize::from(bytes) * usize::from(count);
        let b = usize::from(bytes);
        let mut values = [[0u64; 32]; 4];
        for lane in 0..32u32 {
            if mask >> lane & 1 == 0 {
                continue;
            }
            let address = addresses[lane as usize];
            let (region, offset) = match self.place(space, address, len, lane, "load")? {
                Place::Global { allocation, offset } => (Region::Global(allocation), offset),
                Place::Shared(offset) => (Region::Shared, offset),
                Place::Local(offset) => (Region::Local, offset),
                Place::Param(offset) => (Region::Param, offset),
            };
            if self.launch.checks {
                let unchecked = if matches!(region, Region::Local) {
                    offset - lane as usize * self.launch.program.local_bytes as usize
                } else {
                    offset
                };
                self.check_read(&region, unchecked, len, lane, read_only)?;
            }
            let ptr = match &region {
                // SAFETY: `place` checked the range.
                Region::Global(a) => unsafe { a.ptr(offset) },
                Region::Shared => self.block.shared[offset..].as_ptr() as *mut u8,
                Region::Local => self.warp.local[offset..].as_ptr() as *mut u8,
                Region::Param => self.launch.params[offset..].as_ptr() as *mut u8,
            };
            for (e, v) in values.iter_mut().enumerate().take(usize::from(count)) {
                // SAFETY: `place` checked the whole access inside its region.
                let x = unsafe { read_element(ptr.add(e * b), bytes) };
                v[lane as usize] = extended(x, bytes, extend);
            }
        }
        self.write_loaded(d, &values, count, mask);
        Ok(())
    }

    pub(super) fn store(
        &mut self,
        space: Space,
        bytes: u8,
        count: u8,
        a: &[Src; 4],
        addr: Addr,
        mask: u32,
    ) -> Result<(), Box<super::Fault>> {
        let len = usize::from(bytes) * usize::from(count);
        let b = usize::from(bytes);
        let sources: [Lanes; 4] = std::array::from_fn(|e| {
            if e < usize::from(count) {
                self.read(a[e])
            } else {
                [0; 32]
            }
        });
        let addresses = self.addresses(addr);
        let checks = self.launch.checks;
        let Some((ptr, base, _, region)) = self.region(space, &addresses, len, mask) else {
            return self.store_lanes(space, bytes, count, &sources, &addresses, mask);
        };
        let local_bytes = self.launch.program.local_bytes as usize;
        for lane in 0..32u32 {
            if mask >> lane & 1 == 0 {
                continue;
            }
            let offset = (addresses[lane as usize] - base) as usize;
            let at = match region {
                Region::Global(allocation) => {
                    if checks {
                        self.check_global(allocation, offset, len, lane, true, false)?;
                    }
                    allocation.mark_written(offset, len);
                    offset
                }
                Region::Shared => {
                    if checks {
                        self.check_shared(offset, len, lane, true)?;
                    }
                    offset
                }
                // the local region is per lane: lane after lane
                Region::Local => lane as usize * local_bytes + offset,
                Region::Param => unreachable!("decode rejects stores to parameters"),
            };
            for (e, v) in sources.iter().enumerate().take(usize::from(count)) {
                // SAFETY: `region` checked every active lane's range inside the region.
                unsafe { write_element(ptr.add(at + e * b), bytes, v[lane as usize]) };
            }
        }
        Ok(())
    }

    /// `store` lane by lane, resolving each lane's place on its own (generic addresses in several
    /// spaces, or an access that faults).
    fn store_lanes(
        &mut self,
        space: Space,
        bytes: u8,
        count: u8,
        sources: &[Lanes; 4],
        addresses: &Lanes,
        mask: u32,
    ) -> Result<(), Box<super::Fault>> {
        let len = usize::from(bytes) * usize::from(count);
        let b = usize::from(bytes);
        let checks = self.launch.checks;
        for lane in 0..32u32 {
            if mask >> lane & 1 == 0 {
                continue;
            }
            let ptr = match self.place(space, addresses[lane as usize], len, lane, "store")? {
                Place::Global { allocation, offset } => {
                    if checks {
                        self.check_global(allocation, offset, len, lane, true, false)?;
                    }
                    allocation.mark_written(offset, len);
                    // SAFETY: `place` checked the range.
                    unsafe { allocation.ptr(offset) }
                }
                Place::Shared(offset) => {
                    if checks {
                        self.check_shared(offset, len, lane, true)?;
                    }
                    self.block.shared[offset..].as_mut_ptr()
                }
                Place::Local(offset) => self.warp.local[offset..].as_mut_ptr(),
                Place::Param(_) => unreachable!("decode rejects stores to parameters"),
            };
            for (e, v) in sources.iter().enumerate().take(usize::from(count)) {
                // SAFETY: `place` checked the whole access inside its region.
                unsafe { write_element(ptr.add(e * b), bytes, v[lane as usize]) };
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn atomic(
        &mut self,
        space: Space,
        op: AtomOp,
        ty: AtomTy,
        d: Option<Reg>,
        addr: Addr,
        b: Src,
        c: Option<Src>,
        mask: u32,
    ) -> Result<(), Box<super::Fault>> {
        let bytes = match ty {
            AtomTy::Int(t) => t.bits() as usize / 8,
            AtomTy::F32 => 4,
            AtomTy::F64 => 8,
        };
        if bytes != 4 && bytes != 8 {
            return Err(self.fault(
                FaultKind::Invalid,
                mask.trailing_zeros(),
                format!("a {bytes}-byte atomic"),
            ));
        }
        let (bv, cv) = (self.read(b), c.map(|c| self.read(c)));
        let mut old = [0u64; 32];
        // lanes in order: a warp's atomics to one address apply in lane order, deterministically
        for lane in 0..32u32 {
            if mask >> lane & 1 == 0 {
                continue;
            }
            let address = self.address(addr, lane as usize);
            let operand = bv[lane as usize];
            let compare = cv.map_or(0, |c| c[lane as usize]);
            match self.place(space, address, bytes, lane, "atomic")? {
                Place::Global { allocation, offset } => {
                    if self.launch.checks {
                        if let Some(first) = allocation.first_unwritten(offset, bytes) {
                            return Err(self.fault(
                                FaultKind::UninitializedGlobal,
                                lane,
                                format!(
                                    "atomic at {address:#x}: byte {first} of allocation #{} was never written",
                                    allocation.serial
                                ),
                            ));
                        }
                    }
                    // SAFETY: checked inside the allocation and aligned to `bytes`.
                    old[lane as usize] = unsafe {
                        let p = allocation.ptr(offset);
                        if bytes == 4 {
                            let a = &*(p as *const AtomicU32);
                            let mut cur = a.load(Relaxed);
                            loop {
                                let new = apply(op, ty, u64::from(cur), operand, compare) as u32;
                                match a.compare_exchange_weak(cur, new, Relaxed, Relaxed) {
                                    Ok(_) => break u64::from(cur),
                                    Err(x) => cur = x,
                                }
                            }
                        } else {
                            let a = &*(p as *const AtomicU64);
                            let mut cur = a.load(Relaxed);
                            loop {
                                let new = apply(op, ty, cur, operand, compare);
                                match a.compare_exchange_weak(cur, new, Relaxed, Relaxed) {
                                    Ok(_) => break cur,
                                    Err(x) => cur = x,
                                }
                            }
                        }
                    };
                }
                Place::Shared(offset) => {
                    if self.launch.checks {
                        // atomics are not race-checked; the word must have been initialised
                        let block = self.block.serial;
                        if (offset / 4..(offset + bytes).div_ceil(4))
                            .any(|w| !self.block.shadow[w].initialized(block, 0xF))
                        {
                            return Err(self.fault(
                                FaultKind::UninitializedShared,
                                lane,
                                format!("atomic at shared offset {offset}, never written by this block"),
                            ));
                        }
                    }
                    let mut x = [0u8; 8];
                    x[..bytes].copy_from_slice(&self.block.shared[offset..offset + bytes]);
                    let cur = u64::from_le_bytes(x);
                    let new = apply(op, ty, cur, operand, compare);
                    self.block.shared[offset..offset + bytes].copy_from_slice(&new.to_le_bytes()[..bytes]);
                    old[lane as usize] = cur;
                }
                Place::Local(_) | Place::Param(_) => unreachable!("decode allows global and shared atomics only"),
            }
        }
        if let Some(d) = d {
            self.write(d, &old, mask);
        }
        Ok(())
    }

    pub(super) fn copy_async(
        &mut self,
        dst: Addr,
        src: Addr,
        size: u8,
        src_size: Option<Src>,
        mask: u32,
    ) -> Result<(), Box<super::Fault>> {
        let len = usize::from(size);
        let checks = self.launch.checks;
        for lane in 0..32u32 {
            if mask >> lane & 1 == 0 {
                continue;
            }
            let to = self.address(dst, lane as usize);
            let from = self.address(src, lane as usize);
            let read = src_size.map_or(len, |s| self.read_lane(s, lane as usize) as usize);
            if read > len {
                return Err(self.fault(
                    FaultKind::Invalid,
                    lane,
                    format!("cp.async of {len} bytes with a source size of {read}"),
                ));
            }
            let Place::Shared(shared_offset) = self.place(Space::Shared, to, len, lane, "cp.async destination")? else {
                unreachable!("a shared place")
            };
            let mut data = [0u8; 16];
            if read > 0 {
                if from % len as u64 != 0 {
                    return Err(self.fault(
                        FaultKind::Misaligned,
                        lane,
                        format!("cp.async source {from:#x} not aligned to {len}"),
                    ));
                }
                let Place::Global { allocation, offset } =
                    self.place(Space::Global, from, read, lane, "cp.async source")?
                else {
                    unreachable!("a global place")
                };
                if checks {
                    if let Some(first) = allocation.first_unwritten(offset, read) {
                        return Err(self.fault(
                            FaultKind::UninitializedGlobal,
                            lane,
                            format!(
                                "cp.async reads {from:#x}: byte {first} of allocation #{} was never written",
                                allocation.serial
                            ),
                        ));
                    }
                    self.check_global(allocation, offset, read, lane, false, true)?;
                }
                // SAFETY: the range was checked to lie inside the allocation.
                unsafe { std::ptr::copy_nonoverlapping(allocation.ptr(offset), data.as_mut_ptr(), read) };
            }
            if checks {
                // cp.async sizes are 4, 8 or 16 and aligned: whole words
                for word in shared_offset / 4..(shared_offset + len) / 4 {
                    if self.block.shadow[word].pending_copy != 0 {
                        return Err(self.fault(
                            FaultKind::AsyncCopyNotWaited,
                            lane,
                            format!(
                                "cp.async to shared offset {}, the destination of another cp.async not yet waited for",
                                word * 4
                            ),
                        ));
                    }
                    self.block.shadow[word].pending_copy = 0xF;
                }
            }
            self.warp.copies.push(PendingCopy {
                lane: lane as u8,
                group: self.warp.committed[lane as usize],
                shared_offset: shared_offset as u32,
                len: size,
                data,
            });
        }
        Ok(())
    }

    /// Lands the copies of the lanes of `mask` that `cp.async.wait_group pending` (or `wait_all`)
    /// waits for: each lands as a write by its lane, now.
    pub(super) fn wait_async(&mut self, pending: u32, all: bool, mask: u32) -> Result<(), Box<super::Fault>> {
        let copies = std::mem::take(&mut self.warp.copies);
        let mut kept = Vec::with_capacity(copies.len());
        for copy in copies {
            let lane = u32::from(copy.lane);
            let committed = self.warp.committed[copy.lane as usize];
            let waited = mask >> lane & 1 != 0 && (all || copy.group + pending < committed);
            if !waited {
                kept.push(copy);
                continue;
            }
            let (offset, len) = (copy.shared_offset as usize, usize::from(copy.len));
            if self.launch.checks {
                for word in offset / 4..(offset + len) / 4 {
                    self.block.shadow[word].pending_copy = 0;
                }
                self.check_shared(offset, len, lane, true)?;
            }
            self.block.shared[offset..offset + len].copy_from_slice(&copy.data[..len]);
        }
        self.warp.copies = kept;
        Ok(())
    }
}

/// The memory region of an access whose lanes all fall in one.
enum Region<'a> {
    Global(&'a Allocation),
    Shared,
    Local,
    Param,
}

/// Reads one little-endian element of `bytes` bytes.
///
/// # Safety
/// `p..p+bytes` must be readable.
#[inline(always)]
unsafe fn read_element(p: *const u8, bytes: u8) -> u64 {
    match bytes {
        1 => u64::from(*p),
        2 => u64::from((p as *const u16).read_unaligned()),
        4 => u64::from((p as *const u32).read_unaligned()),
        _ => (p as *const u64).read_unaligned(),
    }
}

/// Writes the low `bytes` bytes of `v`, little-endian.
///
/// # Safety
/// `p..p+bytes` must be writable.
#[inline(always)]
unsafe fn write_element(p: *mut u8, bytes: u8, v: u64) {
    match bytes {
        1 => *p = v as u8,
        2 => (p as *mut u16).write_unaligned(v as u16),
        4 => (p as *mut u32).write_unaligned(v as u32),
        _ => (p as *mut u64).write_unaligned(v),
    }
}

/// A loaded element in its destination register.
#[inline(always)]
fn extended(x: u64, bytes: u8, extend: Extend) -> u64 {
    match extend {
        Extend::Zero => x,
        Extend::Sign { to_bits } => (sext(x, u32::from(bytes) * 8) as u64) & width_mask(u32::from(to_bits)),
    }
}

/// The new value of an atomic `op` on `cur` with operand `b` (and `c` for `cas`).
fn apply(op: AtomOp, ty: AtomTy, cur: u64, b: u64, c: u64) -> u64 {
    match ty {
        AtomTy::F32 => u64::from((f32::from_bits(cur as u32) + f32::from_bits(b as u32)).to_bits()),
        AtomTy::F64 => (f64::from_bits(cur) + f64::from_bits(b)).to_bits(),
        AtomTy::Int(t) => {
            let m = width_mask(t.bits());
            let (cur, b) = (cur & m, b & m);
            match op {
                AtomOp::Add => cur.wrapping_add(b) & m,
                AtomOp::Min => num::min_int(t, cur, b) & m,
                AtomOp::Max => num::max_int(t, cur, b) & m,
                AtomOp::And => cur & b,
                AtomOp::Or => cur | b,
                AtomOp::Xor => cur ^ b,
                AtomOp::Exch => b,
                // PTX ISA, atom: cas stores c when the current value equals b
                AtomOp::Cas => {
                    if cur == b {
                        c & m
                    } else {
                        cur
                    }
                }
                // inc/dec wrap at b (PTX ISA, atom.inc/.dec)
                AtomOp::Inc => {
                    if cur >= b {
                        0
                    } else {
                        cur + 1
                    }
                }
                AtomOp::Dec => {
                    if cur == 0 || cur > b {
                        b
                    } else {
                        cur - 1
                    }
                }
            }
        }
    }
}
