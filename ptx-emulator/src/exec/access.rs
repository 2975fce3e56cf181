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
use super::check::{launch_thread, Conflict, GlobalAccess};
use super::decode::{LOCAL_WINDOW, SHARED_WINDOW, WINDOW_BYTES};
use super::ir::*;
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
    fn place(
        &self,
        space: Space,
        address: u64,
        len: usize,
        lane: u32,
        what: &str,
    ) -> Result<Place<'a>, Box<super::Fault>> {
        if address % len as u64 != 0 {
            return Err(self.fault(
                FaultKind::Misaligned,
                lane,
                format!("{what} of {len} bytes at {space:?} address {address:#x}, not aligned to {len}"),
            ));
        }
        let space = match space {
            Space::Generic if (SHARED_WINDOW..SHARED_WINDOW + WINDOW_BYTES).contains(&address) => {
                return self.place(Space::Shared, address - SHARED_WINDOW, len, lane, what);
            }
            Space::Generic if (LOCAL_WINDOW..LOCAL_WINDOW + WINDOW_BYTES).contains(&address) => {
                return self.place(Space::Local, address - LOCAL_WINDOW, len, lane, what);
            }
            Space::Generic => Space::Global,
            s => s,
        };
        let out_of_bounds = |size: usize, name: &str| {
            self.fault(
                FaultKind::OutOfBounds,
                lane,
                format!("{what} of {len} bytes at {name} offset {address} is outside its {size} bytes"),
            )
        };
        match space {
            Space::Global => match Launch::allocation(self.launch, address, len) {
                Some(allocation) => Ok(Place::Global {
                    offset: (address - allocation.base()) as usize,
                    allocation,
                }),
                None => Err(self.fault(
                    FaultKind::OutOfBounds,
                    lane,
                    format!("{what}: {}", self.launch.memory.access_error(address, len)),
                )),
            },
            Space::Shared => {
                let size = self.block.shared.len();
                if address.checked_add(len as u64).is_none_or(|end| end > size as u64) {
                    return Err(out_of_bounds(size, "shared"));
                }
                Ok(Place::Shared(address as usize))
            }
            Space::Local => {
                let size = self.launch.program.local_bytes as usize;
                if address.checked_add(len as u64).is_none_or(|end| end > size as u64) {
                    return Err(out_of_bounds(size, "local"));
                }
                Ok(Place::Local(lane as usize * size + address as usize))
            }
            Space::Param => {
                let size = self.launch.params.len();
                if address.checked_add(len as u64).is_none_or(|end| end > size as u64) {
                    return Err(out_of_bounds(size, "parameter"));
                }
                Ok(Place::Param(address as usize))
            }
            Space::Generic => unreachable!("resolved above"),
        }
    }

    /// The global-memory access record of `lane` touching the bytes of one word.
    fn global_access(&self, lane: u32, bytes: u32) -> GlobalAccess {
        let block_threads = u64::from(self.launch.block_threads);
        let block_first = self.block.linear * block_threads;
        GlobalAccess {
            who: launch_thread(self.launch.serial, block_first + u64::from(self.warp.thread(lane))),
            block_first,
            block_threads,
            barrier: self.block.barrier_epoch,
            bytes,
        }
    }

    /// The race check of a global access of `len` bytes at `offset` of `allocation`.
    fn check_global(
        &self,
        allocation: &Allocation,
        offset: usize,
        len: usize,
        lane: u32,
        write: bool,
        record_read: bool,
    ) -> Result<(), Box<super::Fault>> {
        let words = allocation.race_state();
        let mut byte = offset;
        while byte < offset + len {
            let word = byte / 4;
            let end = ((word + 1) * 4).min(offset + len);
            let bytes = ((1u32 << (end - byte)) - 1) << (byte % 4);
            let access = self.global_access(lane, bytes);
            let conflict = if write {
                words[word].write(&access)
            } else {
                words[word].read(&access, record_read)
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
    /// `cp.async`) and records it.
    fn check_shared(&mut self, offset: usize, len: usize, lane: u32, write: bool) -> Result<(), Box<super::Fault>> {
        let now = self.access(lane);
        let block = self.block.serial;
        for byte in offset..offset + len {
            if self.block.shadow[byte].pending_copy {
                let what = if write { "write to" } else { "read of" };
                return Err(self.fault(
                    FaultKind::AsyncCopyNotWaited,
                    lane,
                    format!("{what} shared offset {byte}, the destination of a cp.async not yet waited for (cp.async.wait_group)"),
                ));
            }
            let conflict = if write {
                self.block.shadow[byte].write(block, now)
            } else {
                if self.block.shadow[byte].written_in != block && self.block.uninitialized_read.is_none() {
                    // reported at the next barrier unless a race explains it first: with the
                    // warps run in turn, a read that a missing barrier lets run early finds
                    // the bytes unwritten before the racing write comes
                    self.block.uninitialized_read = Some(self.fault(
                        FaultKind::UninitializedShared,
                        lane,
                        format!("read of shared offset {byte}, never written by this block"),
                    ));
                }
                self.block.shadow[byte].read(block, now)
            };
            if let Some(c) = conflict {
                return Err(self.race(FaultKind::SharedRace, lane, c, &format!("shared offset {byte}"), false));
            }
        }
        Ok(())
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
        let checks = self.launch.checks;
        let mut values = [[0u64; 32]; 4];
        for lane in 0..32u32 {
            if mask >> lane & 1 == 0 {
                continue;
            }
            let address = self.address(addr, lane as usize);
            let mut raw = [0u8; 32];
            match self.place(space, address, len, lane, "load")? {
                Place::Global { allocation, offset } => {
                    if checks {
                        if let Some(first) = allocation.first_unwritten(offset, len) {
                            return Err(self.fault(
                                FaultKind::UninitializedGlobal,
                                lane,
                                format!(
                                    "load of {len} bytes at {address:#x}: byte {} of allocation #{} was never written",
                                    first, allocation.serial
                                ),
                            ));
                        }
                        self.check_global(allocation, offset, len, lane, false, !read_only)?;
                    }
                    // SAFETY: the range was checked to lie inside the allocation.
                    unsafe { std::ptr::copy_nonoverlapping(allocation.ptr(offset), raw.as_mut_ptr(), len) };
                }
                Place::Shared(offset) => {
                    if checks {
                        self.check_shared(offset, len, lane, false)?;
                    }
                    raw[..len].copy_from_slice(&self.block.shared[offset..offset + len]);
                }
                Place::Local(offset) => raw[..len].copy_from_slice(&self.warp.local[offset..offset + len]),
                Place::Param(offset) => raw[..len].copy_from_slice(&self.launch.params[offset..offset + len]),
            }
            for (e, v) in values.iter_mut().enumerate().take(usize::from(count)) {
                let b = usize::from(bytes);
                let mut x = [0u8; 8];
                x[..b].copy_from_slice(&raw[e * b..(e + 1) * b]);
                let x = u64::from_le_bytes(x);
                v[lane as usize] = match extend {
                    Extend::Zero => x,
                    Extend::Sign { to_bits } => (sext(x, bytes * 8) as u64) & width_mask(to_bits),
                };
            }
        }
        for (e, r) in d.iter().enumerate().take(usize::from(count)) {
            if let Some(r) = r {
                self.write(*r, &values[e], mask);
            }
        }
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
        let checks = self.launch.checks;
        let sources: Vec<Lanes> = a[..usize::from(count)].iter().map(|s| self.read(*s)).collect();
        for lane in 0..32u32 {
            if mask >> lane & 1 == 0 {
                continue;
            }
            let address = self.address(addr, lane as usize);
            let mut raw = [0u8; 32];
            for (e, v) in sources.iter().enumerate() {
                raw[e * b..(e + 1) * b].copy_from_slice(&v[lane as usize].to_le_bytes()[..b]);
            }
            match self.place(space, address, len, lane, "store")? {
                Place::Global { allocation, offset } => {
                    if checks {
                        self.check_global(allocation, offset, len, lane, true, false)?;
                    }
                    allocation.mark_written(offset, len);
                    // SAFETY: the range was checked to lie inside the allocation.
                    unsafe { std::ptr::copy_nonoverlapping(raw.as_ptr(), allocation.ptr(offset), len) };
                }
                Place::Shared(offset) => {
                    if checks {
                        self.check_shared(offset, len, lane, true)?;
                    }
                    self.block.shared[offset..offset + len].copy_from_slice(&raw[..len]);
                }
                Place::Local(offset) => self.warp.local[offset..offset + len].copy_from_slice(&raw[..len]),
                Place::Param(_) => unreachable!("decode rejects stores to parameters"),
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
            AtomTy::Int(t) => usize::from(t.bits / 8),
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
                        let block = self.block.serial;
                        if (offset..offset + bytes).any(|i| self.block.shadow[i].written_in != block) {
                            return Err(self.fault(
                                FaultKind::UninitializedShared,
                                lane,
                                format!("atomic at shared offset {offset}, never written by this block"),
                            ));
                        }
                        let now = self.access(lane);
                        for i in offset..offset + bytes {
                            let e = &mut self.block.shadow[i];
                            e.writer = now;
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
                for byte in shared_offset..shared_offset + len {
                    if self.block.shadow[byte].pending_copy {
                        return Err(self.fault(
                            FaultKind::AsyncCopyNotWaited,
                            lane,
                            format!("cp.async to shared offset {byte}, the destination of another cp.async not yet waited for"),
                        ));
                    }
                    self.block.shadow[byte].pending_copy = true;
                }
            }
            self.warp.copies.push(PendingCopy {
                lane: lane as u8,
                group: self.warp.committed[lane as usize],
                shared_offset: shared_offset as u32,
                len: size,
                data,
                site: self.pc,
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
                for byte in offset..offset + len {
                    self.block.shadow[byte].pending_copy = false;
                }
                self.check_shared(offset, len, lane, true)?;
            }
            self.block.shared[offset..offset + len].copy_from_slice(&copy.data[..len]);
        }
        self.warp.copies = kept;
        Ok(())
    }
}

/// The new value of an atomic `op` on `cur` with operand `b` (and `c` for `cas`).
fn apply(op: AtomOp, ty: AtomTy, cur: u64, b: u64, c: u64) -> u64 {
    match ty {
        AtomTy::F32 => u64::from((f32::from_bits(cur as u32) + f32::from_bits(b as u32)).to_bits()),
        AtomTy::F64 => (f64::from_bits(cur) + f64::from_bits(b)).to_bits(),
        AtomTy::Int(t) => {
            let m = width_mask(t.bits);
            let (cur, b) = (cur & m, b & m);
            match op {
                AtomOp::Add => cur.wrapping_add(b) & m,
                AtomOp::Min if t.signed => (sext(cur, t.bits).min(sext(b, t.bits)) as u64) & m,
                AtomOp::Max if t.signed => (sext(cur, t.bits).max(sext(b, t.bits)) as u64) & m,
                AtomOp::Min => cur.min(b),
                AtomOp::Max => cur.max(b),
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
