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

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

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
    #[inline(always)]
    pub fn initialized(&self, block: u32, bytes: u8) -> bool {
        self.written_in == block && self.written & bytes == bytes
    }

    /// Records a read of `bytes` by `now` in block `block`; the conflict, if any.
    #[inline(always)]
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
    #[inline(always)]
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

/// The race state of one 2-byte halfword of device memory during checked launches: the last
/// writer and the last reader (a plain `ld`; `ld.global.nc` promises read-only data and is checked
/// only against writes), each a [`Stamp`]. Halfwords, not words, because bf16 activations are
/// written two bytes per thread: two threads storing the halves of one word do not race.
#[derive(Default)]
pub struct HalfState {
    writer: AtomicU64,
    reader: AtomicU64,
}

/// One access to a halfword, packed in 64 bits: the launch (20 bits: state left by earlier
/// launches is ignored without being cleared), the thread's linear index in the grid (26 bits),
/// its block's barrier epoch (15 bits), whether several threads read since the stamp's ordering
/// point (1 bit), and the bytes touched (2 bits). 0 is no access. Aliasing (a launch 2^20 launches
/// earlier, a grid of more than 2^26 threads, a block 2^15 barriers on) can hide a race; only the
/// epoch's could report one that is not (two threads of a block touching a halfword 2^15
/// barriers apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp(u64);

const THREAD_BITS: u32 = 26;
const EPOCH_BITS: u32 = 15;

impl Stamp {
    fn new(launch: u64, thread: u64, epoch: u32, many: bool, bytes: u32) -> Stamp {
        let thread = thread & ((1 << THREAD_BITS) - 1);
        let epoch = u64::from(epoch) & ((1 << EPOCH_BITS) - 1);
        Stamp((launch & 0xF_FFFF) << 44 | thread << 18 | epoch << 3 | u64::from(many) << 2 | u64::from(bytes & 3))
    }
    fn launch(self) -> u64 {
        self.0 >> 44
    }
    fn thread(self) -> u64 {
        (self.0 >> 18) & ((1 << THREAD_BITS) - 1)
    }
    fn epoch(self) -> u32 {
        ((self.0 >> 3) & ((1 << EPOCH_BITS) - 1)) as u32
    }
    fn many(self) -> bool {
        self.0 >> 2 & 1 != 0
    }
    fn bytes(self) -> u32 {
        (self.0 & 3) as u32
    }
    fn with(self, many: bool, bytes: u32) -> Stamp {
        Stamp(self.0 & !7 | u64::from(many) << 2 | u64::from(bytes & 3))
    }
}

/// A thread's global access, for the halfword checks.
#[derive(Debug, Clone, Copy)]
pub struct GlobalAccess {
    pub launch: u64,
    /// The thread's linear index in the grid.
    pub thread: u64,
    /// The first grid-thread index of the thread's block, and the block's size.
    pub block_first: u64,
    pub block_threads: u64,
    pub barrier: u32,
}

impl GlobalAccess {
    fn stamp(&self, bytes: u32) -> Stamp {
        Stamp::new(self.launch, self.thread, self.barrier, false, bytes)
    }

    /// Whether an earlier access `s` of this launch is ordered before this one: the same
    /// thread, or the same block with a barrier between.
    #[inline]
    fn ordered_after(&self, s: Stamp) -> bool {
        let mask = (1 << THREAD_BITS) - 1;
        let (first, thread) = (self.block_first & mask, s.thread());
        let same_block = thread >= first && thread < first + self.block_threads;
        thread == self.thread & mask || same_block && s.epoch() != self.barrier & ((1 << EPOCH_BITS) - 1)
    }

    /// Whether `s` is an access of this launch not ordered before this one.
    #[inline]
    fn unordered(&self, s: Stamp) -> bool {
        s.0 != 0 && s.launch() == self.launch & 0xF_FFFF && !self.ordered_after(s)
    }
}

impl HalfState {
    /// Checks a read of `bytes` (bit i: byte i of the halfword) and, with `record`, records it.
    #[inline]
    pub fn read(&self, now: &GlobalAccess, bytes: u32, record: bool) -> Option<Conflict> {
        let w = Stamp(self.writer.load(Relaxed));
        if w.bytes() & bytes != 0 && now.unordered(w) {
            return Some(Conflict::ReadAfterWrite {
                other: w.thread() as u32,
                site: None,
            });
        }
        if record {
            let r = Stamp(self.reader.load(Relaxed));
            let next = if now.unordered(r) {
                // r and this read are concurrent: keep r, note a second reader if there is one
                let another = r.thread() != now.thread & ((1 << THREAD_BITS) - 1);
                r.with(r.many() || another, r.bytes() | bytes)
            } else {
                now.stamp(bytes)
            };
            if next != r {
                self.reader.store(next.0, Relaxed);
            }
        }
        None
    }

    /// Checks and records a write of `bytes`.
    #[inline]
    pub fn write(&self, now: &GlobalAccess, bytes: u32) -> Option<Conflict> {
        let w = Stamp(self.writer.swap(now.stamp(bytes).0, Relaxed));
        if w.bytes() & bytes != 0 && now.unordered(w) {
            return Some(Conflict::WriteAfterWrite {
                other: w.thread() as u32,
                site: None,
            });
        }
        let r = Stamp(self.reader.load(Relaxed));
        let own = !r.many() && r.thread() == now.thread & ((1 << THREAD_BITS) - 1);
        if r.bytes() & bytes != 0 && !own && now.unordered(r) {
            return Some(Conflict::WriteAfterRead {
                other: (!r.many()).then_some(r.thread() as u32),
                site: None,
            });
        }
        None
    }
}
