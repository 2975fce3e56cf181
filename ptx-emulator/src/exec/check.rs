//! The checks' state: who last wrote and read each word of shared and of global memory, and the ordering rule that says whether two accesses by different threads are
//! separated by synchronisation.
//!
//! Ordering (the CUDA memory model as far as barriers go, Volta and later):
//! - accesses by one thread are ordered by program order;
//! - `bar.sync` orders every access before it in the block against every access after it;
//! - `bar.warp.sync` (`__syncwarp`) does the same among the lanes of one warp. Nothing else does:
//!   lanes of a warp that exchange data through shared memory without `__syncwarp` race, even
//!   though the emulator, like older GPUs, runs them in lockstep;
//! - threads of different blocks are never ordered within a launch (no grid synchronisation).
//!
//! Atomic accesses are neither recorded nor checked against each other.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// Who accessed a byte or word: thread (linear index in the block), the block's barrier epoch
/// and the warp's sync epoch at the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Access {
    pub thread: u32,
    pub barrier: u32,
    pub warp_sync: u32,
    /// The instruction's site, for reports.
    pub site: u32,
}

impl Access {
    /// Whether `self` (earlier) is ordered before `now` (by another or the same thread of the
    /// same block); `now_warp_sync` is the current sync epoch of `now`'s warp.
    #[inline]
    pub fn ordered_before(&self, now: &Access) -> bool {
        self.thread == now.thread
            || self.barrier != now.barrier
            || (self.thread / 32 == now.thread / 32 && self.warp_sync != now.warp_sync)
    }
}

/// The state of one 4-byte word of shared memory within the block being run. Accesses are
/// tracked per word with the bytes they touch: when different threads write disjoint bytes of one
/// word between two synchronisation points (two bf16 stores, say), the word's writer is no longer
/// known byte by byte (`mixed_writers`) and reads of it are not race-checked until the next
/// ordering point; initialisation is tracked per byte.
#[derive(Debug, Clone, Copy, Default)]
pub struct SharedWord {
    /// Serial of the block whose writes the fields below record (0: never written).
    pub written_in: u32,
    /// Bytes this block has written (initcheck).
    pub written: u8,
    /// Bytes `writer` wrote.
    pub writer_bytes: u8,
    pub mixed_writers: bool,
    pub writer: Access,
    /// Serial of the block whose reads `reader` records.
    pub read_in: u32,
    /// Bytes read since the reads' ordering point.
    pub reader_bytes: u8,
    /// More than one thread read since the reads' ordering point.
    pub many_readers: bool,
    /// Bytes that are the destination of a `cp.async` that has not landed.
    pub pending_copy: u8,
    pub reader: Access,
}

/// A conflict found on one byte or word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// This read follows an unordered write by `other` (a thread) at `site`.
    ReadAfterWrite { other: u32, site: Option<u32> },
    /// This write follows an unordered write by `other` at `site`.
    WriteAfterWrite { other: u32, site: Option<u32> },
    /// This write follows an unordered read by `other` at `site` (`None`: by several threads).
    WriteAfterRead { other: Option<u32>, site: Option<u32> },
}

impl SharedWord {
    /// Whether every byte of `bytes` was written by block `block`.
    #[inline]
    pub fn initialized(&self, block: u32, bytes: u8) -> bool {
        self.written_in == block && self.written & bytes == bytes
    }

    /// Records a read of `bytes` by `now` in block `block`; the conflict, if any.
    #[inline]
    pub fn read(&mut self, block: u32, now: Access, bytes: u8) -> Option<Conflict> {
        let conflict = (self.written_in == block
            && self.writer_bytes & bytes != 0
            && !self.mixed_writers
            && !self.writer.ordered_before(&now))
        .then_some(Conflict::ReadAfterWrite {
            other: self.writer.thread,
            site: Some(self.writer.site),
        });
        let earlier_reads_ordered = self.read_in != block
            || self.reader.barrier != now.barrier
            || (!self.many_readers && self.reader.ordered_before(&now));
        if earlier_reads_ordered {
            self.read_in = block;
            self.reader = now;
            self.reader_bytes = bytes;
            self.many_readers = false;
        } else {
            if self.reader.thread == now.thread {
                self.reader = now;
            } else {
                self.many_readers = true;
            }
            self.reader_bytes |= bytes;
        }
        conflict
    }

    /// Records a write of `bytes` by `now` in block `block`; the conflict, if any.
    #[inline]
    pub fn write(&mut self, block: u32, now: Access, bytes: u8) -> Option<Conflict> {
        let mut conflict = None;
        if self.written_in != block {
            self.written_in = block;
            self.written = 0;
            self.writer = now;
            self.writer_bytes = bytes;
            self.mixed_writers = false;
        } else if self.writer.thread == now.thread {
            self.writer = now;
            self.writer_bytes |= bytes;
        } else if self.writer.ordered_before(&now) {
            self.writer = now;
            self.writer_bytes = bytes;
            self.mixed_writers = false;
        } else if self.writer_bytes & bytes != 0 && !self.mixed_writers {
            conflict = Some(Conflict::WriteAfterWrite {
                other: self.writer.thread,
                site: Some(self.writer.site),
            });
        } else {
            // another thread wrote other bytes of this word, unordered: legal, but the word's
            // writer is now known only as "several"
            self.writer = now;
            self.writer_bytes |= bytes;
            self.mixed_writers = true;
        }
        self.written |= bytes;
        if conflict.is_none()
            && self.read_in == block
            && self.reader.barrier == now.barrier
            && self.reader_bytes & bytes != 0
        {
            if self.many_readers && self.reader.thread / 32 != now.thread / 32 {
                conflict = Some(Conflict::WriteAfterRead {
                    other: None,
                    site: Some(self.reader.site),
                });
            } else if !self.reader.ordered_before(&now) {
                conflict = Some(Conflict::WriteAfterRead {
                    other: Some(self.reader.thread),
                    site: Some(self.reader.site),
                });
            }
        }
        conflict
    }
}

/// A thread of a launch, for global-memory bookkeeping: the launch's serial (so that state left
/// by earlier launches is ignored without being cleared) and the thread's linear index in the
/// grid, packed in 64 bits (24 + 40).
#[inline]
pub fn launch_thread(launch: u64, grid_thread: u64) -> u64 {
    ((launch & 0xFF_FFFF) << 40) | (grid_thread & 0xFF_FFFF_FFFF)
}

/// The race state of one 4-byte word of device memory during checked launches: the last writer
/// and the last reader (a plain `ld`; `ld.global.nc` promises read-only data and is checked only
/// against writes), each with the barrier epoch of its block and the bytes it touched.
#[derive(Default)]
pub struct WordState {
    writer: AtomicU64,
    /// barrier epoch (27 bits) << 5 | bytes touched
    writer_meta: AtomicU32,
    reader: AtomicU64,
    /// barrier epoch (27 bits) << 5 | several readers << 4 | bytes touched
    reader_meta: AtomicU32,
}

/// The barrier epochs the word state keeps (27 bits: a block would need 2^27 barriers to alias).
const EPOCH_MASK: u32 = 0x07FF_FFFF;

/// A global access for the word checks.
#[derive(Debug, Clone, Copy)]
pub struct GlobalAccess {
    /// `launch_thread(launch, grid thread)`.
    pub who: u64,
    /// The thread's block, as the first grid-thread index of the block, and its size.
    pub block_first: u64,
    pub block_threads: u64,
    pub barrier: u32,
    /// Bytes of the word touched (bit i: byte i).
    pub bytes: u32,
}

impl GlobalAccess {
    /// Whether an earlier access by `who` at barrier epoch `barrier` is ordered before this one.
    #[inline]
    fn after(&self, who: u64, barrier: u32) -> bool {
        if who == self.who {
            return true;
        }
        let launch_of = |w: u64| w >> 40;
        if launch_of(who) != launch_of(self.who) {
            return true; // an earlier launch
        }
        let thread = who & 0xFF_FFFF_FFFF;
        let same_block = thread >= self.block_first && thread < self.block_first + self.block_threads;
        same_block && barrier != self.barrier & EPOCH_MASK
    }
}

impl WordState {
    /// Checks and records a read; returns the conflicting writer's grid thread, if any.
    #[inline]
    pub fn read(&self, now: &GlobalAccess, record: bool) -> Option<Conflict> {
        let w = self.writer.load(Relaxed);
        if w != 0 {
            let meta = self.writer_meta.load(Relaxed);
            if meta & now.bytes & 0xF != 0 && !now.after(w, meta >> 5) {
                return Some(Conflict::ReadAfterWrite {
                    other: (w & 0xFF_FFFF_FFFF) as u32,
                    site: None,
                });
            }
        }
        if record {
            let r = self.reader.load(Relaxed);
            let meta = self.reader_meta.load(Relaxed);
            if r == now.who {
                self.reader_meta.store(meta | now.bytes, Relaxed);
            } else if r != 0 && r >> 40 == now.who >> 40 && !now.after(r, meta >> 5) {
                self.reader_meta.store(meta | 0x10 | now.bytes, Relaxed);
            } else {
                self.reader.store(now.who, Relaxed);
                self.reader_meta
                    .store(((now.barrier & EPOCH_MASK) << 5) | now.bytes, Relaxed);
            }
        }
        None
    }

    /// Checks and records a write.
    #[inline]
    pub fn write(&self, now: &GlobalAccess) -> Option<Conflict> {
        let w = self.writer.swap(now.who, Relaxed);
        let w_meta = self
            .writer_meta
            .swap(((now.barrier & EPOCH_MASK) << 5) | now.bytes, Relaxed);
        if w != 0 && w_meta & now.bytes & 0xF != 0 && !now.after(w, w_meta >> 5) {
            return Some(Conflict::WriteAfterWrite {
                other: (w & 0xFF_FFFF_FFFF) as u32,
                site: None,
            });
        }
        let r = self.reader.load(Relaxed);
        if r != 0 && r != now.who {
            let meta = self.reader_meta.load(Relaxed);
            if meta & now.bytes & 0xF != 0 && !now.after(r, meta >> 5) {
                let many = meta & 0x10 != 0;
                return Some(Conflict::WriteAfterRead {
                    other: (!many).then_some((r & 0xFF_FFFF_FFFF) as u32),
                    site: None,
                });
            }
        }
        None
    }
}
