//! One warp: its registers, its reconvergence stack, and the interpreter loop that runs its 32
//! lanes in lockstep, one decoded instruction at a time, until the warp reaches a barrier or its
//! lanes have all exited.
//!
//! Divergence: a branch that some active lanes take and others do not replaces the top of the
//! stack by the reconvergence point (the branch block's immediate post-dominator, with the lanes
//! of both ways) and pushes the two ways, the taken one on top; a way ends when it reaches its
//! reconvergence point, and the lanes run on together. This is one legal schedule of the
//! independent threads of Volta and later; the race checks do not assume it (see `check`).

use super::alu::{self, Lanes};
use super::block::BlockState;
use super::check::Access;
use super::collective::{Pending, Rendezvous};
use super::decode::{Program, EXIT};
use super::ir::*;
use super::{Fault, FaultKind};
use super::{Launch, LaunchConfig};

/// A stack entry: run `pc` with `mask` until `pc == reconverge`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    pub pc: u32,
    pub mask: u32,
    pub reconverge: u32,
    /// Waiting at a collective for members on another path (see `collective`).
    pub waiting: bool,
}

/// Why a warp stopped running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// At a `bar.sync`: the instruction's index.
    Barrier(u32),
    Exited,
}

/// A pending `cp.async` of one lane: the bytes read at issue, landing at the wait.
#[derive(Debug, Clone)]
pub(super) struct PendingCopy {
    pub lane: u8,
    /// The lane's commit count when issued: the copy belongs to group `group`.
    pub group: u32,
    pub shared_offset: u32,
    pub len: u8,
    pub data: [u8; 16],
}

pub(super) struct Warp {
    /// Warp index within the block.
    pub index: u32,
    pub regs: Vec<Lanes>,
    pub preds: Vec<u32>,
    pub stack: Vec<Entry>,
    /// Lanes that exist and have not exited.
    pub live: u32,
    /// The lanes of every special register (`Special::index`), set for each block.
    pub specials: [Lanes; Special::COUNT],
    /// Local memory: `local_bytes` per lane, lane after lane.
    pub local: Vec<u8>,
    pub copies: Vec<PendingCopy>,
    /// Per lane: `cp.async.commit_group`s executed.
    pub committed: [u32; 32],
    /// `bar.warp.sync` / `bar.sync` count: the warp's sync epoch (see `check`).
    pub sync_epoch: u32,
    /// A collective some of whose members wait for the others.
    pub pending: Option<Pending>,
    /// Instructions executed: by the warp, and summed over its active lanes.
    pub warp_instructions: u64,
    pub lane_instructions: u64,
}

impl Warp {
    pub fn new(index: u32, program: &Program) -> Self {
        let mut warp = Self {
            index,
            regs: vec![[0; 32]; program.num_regs as usize],
            preds: vec![0; program.num_preds as usize],
            stack: Vec::new(),
            live: 0,
            specials: [[0; 32]; Special::COUNT],
            local: vec![0; program.local_bytes as usize * 32],
            copies: Vec::new(),
            committed: [0; 32],
            sync_epoch: 0,
            pending: None,
            warp_instructions: 0,
            lane_instructions: 0,
        };
        warp.stack.push(Entry {
            pc: 0,
            mask: 0,
            reconverge: EXIT,
            waiting: false,
        });
        warp
    }

    /// Back to the start of the kernel for a new block, keeping the buffers: registers, local
    /// memory and predicates start zeroed, so a run never depends on an earlier block.
    /// `block_index` is the block's `%ctaid`, `warps` the block's warp count.
    pub fn reset(&mut self, config: &LaunchConfig, block_index: [u32; 3], warps: u32) {
        let block = config.block;
        let threads = block[0] * block[1] * block[2];
        let first = self.index * 32;
        let count = threads.saturating_sub(first).min(32);
        self.live = if count == 32 { u32::MAX } else { (1u32 << count) - 1 };
        for special in Special::all() {
            let lanes = &mut self.specials[special.index()];
            for (lane, value) in lanes.iter_mut().enumerate() {
                let t = first + lane as u32;
                let bit = 1u64 << lane;
                *value = match special {
                    Special::Tid(0) => u64::from(t % block[0]),
                    Special::Tid(1) => u64::from((t / block[0]) % block[1]),
                    Special::Tid(_) => u64::from(t / (block[0] * block[1])),
                    Special::Ntid(d) => u64::from(block[d as usize]),
                    Special::Ctaid(d) => u64::from(block_index[d as usize]),
                    Special::Nctaid(d) => u64::from(config.grid[d as usize]),
                    Special::LaneId => lane as u64,
                    Special::WarpId => u64::from(self.index),
                    Special::NWarpId => u64::from(warps),
                    Special::LaneMask(kind) => u64::from(match kind {
                        LaneMaskKind::Eq => bit as u32,
                        LaneMaskKind::Le => ((bit << 1) - 1) as u32,
                        LaneMaskKind::Lt => (bit - 1) as u32,
                        LaneMaskKind::Ge => !((bit - 1) as u32),
                        LaneMaskKind::Gt => !(((bit << 1) - 1) as u32),
                    }),
                };
            }
        }
        self.regs.fill([0; 32]);
        self.preds.fill(0);
        self.local.fill(0);
        self.stack.clear();
        self.stack.push(Entry {
            pc: 0,
            mask: self.live,
            reconverge: EXIT,
            waiting: false,
        });
        self.pending = None;
        self.copies.clear();
        self.committed = [0; 32];
        self.sync_epoch = 0;
    }

    /// The thread index (linear, in the block) of `lane`.
    pub fn thread(&self, lane: u32) -> u32 {
        self.index * 32 + lane
    }
}

/// What running one warp needs: the warp, its block's state and the launch.
pub(super) struct Ctx<'a> {
    pub warp: &'a mut Warp,
    pub block: &'a mut BlockState,
    pub launch: &'a Launch<'a>,
    /// The instruction being executed (for reports).
    pub pc: u32,
}

impl Ctx<'_> {
    /// `src`'s lanes, by reference: a register, one of the program's constants, or one of the
    /// warp's special registers.
    #[inline]
    pub fn operand(&self, src: Src) -> &Lanes {
        match src {
            Src::Reg(r) => &self.warp.regs[r as usize],
            Src::Const(i) => &self.launch.program.constants[i as usize],
            Src::Special(s) => &self.warp.specials[s.index()],
            Src::Imm(_) => unreachable!("the decoder turns every immediate into a constant"),
        }
    }

    /// A copy of `src`'s lanes.
    #[inline]
    pub fn read(&self, src: Src) -> Lanes {
        *self.operand(src)
    }

    /// One lane's value of `src`.
    #[inline]
    pub fn read_lane(&self, src: Src, lane: usize) -> u64 {
        self.operand(src)[lane]
    }

    /// Writes `value` into `d` for the lanes of `mask`.
    #[inline]
    pub fn write(&mut self, d: Reg, value: &Lanes, mask: u32) {
        let reg = &mut self.warp.regs[d as usize];
        if mask == u32::MAX {
            *reg = *value;
        } else {
            for i in 0..32 {
                if mask >> i & 1 != 0 {
                    reg[i] = value[i];
                }
            }
        }
    }

    #[inline]
    pub fn pred_value(&self, p: PredSrc) -> u32 {
        let v = self.warp.preds[p.reg as usize];
        if p.negated {
            !v
        } else {
            v
        }
    }

    #[inline]
    fn write_pred(&mut self, d: Pred, value: u32, mask: u32) {
        let p = &mut self.warp.preds[d as usize];
        *p = (*p & !mask) | (value & mask);
    }

    /// The access record of `lane` for the race checks.
    #[inline]
    pub fn access(&self, lane: u32) -> Access {
        Access {
            thread: self.warp.thread(lane),
            barrier: self.block.barrier_epoch,
            warp_sync: self.warp.sync_epoch,
            site: self.launch.program.code[self.pc as usize].site,
        }
    }

    /// A fault at the current instruction, in `lane`.
    pub fn fault(&self, kind: FaultKind, lane: u32, detail: String) -> Box<Fault> {
        self.launch.fault(
            kind,
            self.block.index,
            self.warp.thread(lane),
            self.launch.program.code[self.pc as usize].site,
            detail,
        )
    }

    /// Runs the warp until it reaches a barrier or all its lanes have exited.
    pub fn run(&mut self) -> Result<Stop, Box<Fault>> {
        let program: &Program = self.launch.program;
        loop {
            let Some(&top) = self.warp.stack.last() else {
                return Ok(Stop::Exited);
            };
            if top.waiting {
                // every path that could bring the missing members has run out
                return Err(self.missing_members());
            }
            let full = top.mask & self.warp.live;
            if full == 0 || top.pc == top.reconverge {
                self.warp.stack.pop();
                continue;
            }
            if top.pc == EXIT {
                // these lanes ran off the end of a way that reconverges at the kernel's end
                self.warp.live &= !full;
                self.warp.stack.pop();
                continue;
            }
            self.pc = top.pc;
            let inst = &program.code[top.pc as usize];
            let mask = match inst.guard {
                Some(g) => full & self.pred_value(g),
                None => full,
            };
            let mut next = top.pc + 1;
            self.warp.warp_instructions += 1;
            self.warp.lane_instructions += u64::from(mask.count_ones());
            match &inst.op {
                Op::Bra { target, uni } => {
                    if mask == full {
                        next = *target;
                    } else if mask != 0 {
                        if *uni {
                            return Err(self.fault(
                                FaultKind::DivergentCollective,
                                mask.trailing_zeros(),
                                format!(
                                    "bra.uni diverged: lanes {mask:#010x} branch, lanes {:#010x} do not",
                                    full & !mask
                                ),
                            ));
                        }
                        let reconverge = program.reconverge[top.pc as usize];
                        let top = self.warp.stack.last_mut().expect("a stack entry");
                        let outer = top.reconverge;
                        *top = Entry {
                            pc: reconverge,
                            mask: full,
                            reconverge: outer,
                            waiting: false,
                        };
                        self.warp.stack.push(Entry {
                            pc: next,
                            mask: full & !mask,
                            reconverge,
                            waiting: false,
                        });
                        self.warp.stack.push(Entry {
                            pc: *target,
                            mask,
                            reconverge,
                            waiting: false,
                        });
                        continue;
                    }
                }
                Op::Exit => {
                    self.warp.live &= !mask;
                }
                Op::Shfl { .. } | Op::Vote { .. } | Op::WarpSync { .. } => {
                    if mask != 0 {
                        if let Rendezvous::Wait = self.collective(&inst.op, mask)? {
                            continue;
                        }
                    }
                }
                Op::Bar { id, count } => {
                    if mask != full {
                        return Err(self.fault(
                            FaultKind::BarrierDivergence,
                            mask.trailing_zeros(),
                            "bar.sync under a predicate that is false for some lanes".into(),
                        ));
                    }
                    self.barrier_arguments(*id, *count, mask)?;
                    if full != self.warp.live {
                        return Err(self.fault(
                            FaultKind::BarrierDivergence,
                            full.trailing_zeros(),
                            format!(
                                "bar.sync reached by lanes {full:#010x} while lanes {:#010x} of the warp are on another path",
                                self.warp.live & !full
                            ),
                        ));
                    }
                    self.warp.stack.last_mut().expect("a stack entry").pc = next;
                    return Ok(Stop::Barrier(top.pc));
                }
                op => {
                    if mask != 0 {
                        self.execute(op, mask)?;
                    }
                }
            }
            if let Some(top) = self.warp.stack.last_mut() {
                top.pc = next;
            }
        }
    }

    fn barrier_arguments(&self, id: Src, count: Option<Src>, mask: u32) -> Result<(), Box<Fault>> {
        let lane = mask.trailing_zeros() as usize;
        let id = self.read_lane(id, lane);
        if id > 15 {
            return Err(self.fault(FaultKind::Invalid, lane as u32, format!("barrier {id} (0..15 exist)")));
        }
        if let Some(c) = count {
            let c = self.read_lane(c, lane);
            if c != u64::from(self.launch.block_threads) {
                return Err(self.fault(
                    FaultKind::Invalid,
                    lane as u32,
                    format!(
                        "bar.sync with a thread count of {c}: only whole-block barriers ({} threads) are supported",
                        self.launch.block_threads
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Executes a non-control instruction for the lanes of `mask` (nonzero).
    fn execute(&mut self, op: &Op, mask: u32) -> Result<(), Box<Fault>> {
        match op {
            Op::Mov { d, a, bits } => {
                let m = alu::width_mask(u32::from(*bits));
                let mut v = self.read(*a);
                if *bits < 64 {
                    for x in v.iter_mut() {
                        *x &= m;
                    }
                }
                self.write(*d, &v, mask);
            }
            Op::Pack { d, parts, part_bits } => {
                let mut v = [0u64; 32];
                let m = alu::width_mask(u32::from(*part_bits));
                for (i, p) in parts.iter().enumerate() {
                    let part = self.read(*p);
                    for l in 0..32 {
                        v[l] |= (part[l] & m) << (i as u32 * u32::from(*part_bits));
                    }
                }
                self.write(*d, &v, mask);
            }
            Op::Unpack { parts, a, part_bits } => {
                let whole = self.read(*a);
                let m = alu::width_mask(u32::from(*part_bits));
                for (i, p) in parts.iter().enumerate() {
                    if let Some(r) = p {
                        let mut v = [0u64; 32];
                        for l in 0..32 {
                            v[l] = (whole[l] >> (i as u32 * u32::from(*part_bits))) & m;
                        }
                        self.write(*r, &v, mask);
                    }
                }
            }
            Op::IntBinary { op, ty, d, a, b } => {
                let v = alu::int_binary(*op, *ty, self.operand(*a), self.operand(*b));
                self.write(*d, &v, mask);
            }
            Op::IntUnary { op, ty, d, a } => {
                let v = alu::int_unary(*op, *ty, self.operand(*a));
                self.write(*d, &v, mask);
            }
            Op::IntMad { part, ty, d, a, b, c } => {
                let v = alu::int_mad(*part, *ty, self.operand(*a), self.operand(*b), self.operand(*c));
                self.write(*d, &v, mask);
            }
            Op::Bfi {
                bits,
                d,
                a,
                b,
                pos,
                len,
            } => {
                let v = alu::bfi(
                    *bits,
                    &self.read(*a),
                    &self.read(*b),
                    &self.read(*pos),
                    &self.read(*len),
                );
                self.write(*d, &v, mask);
            }
            Op::Bfe { ty, d, a, pos, len } => {
                let v = alu::bfe(*ty, &self.read(*a), &self.read(*pos), &self.read(*len));
                self.write(*d, &v, mask);
            }
            Op::Prmt { d, a, b, c } => {
                let v = alu::prmt(&self.read(*a), &self.read(*b), &self.read(*c));
                self.write(*d, &v, mask);
            }
            Op::FloatBinary { op, ty, mode, d, a, b } => {
                let v = alu::float_binary(*op, *ty, *mode, self.operand(*a), self.operand(*b));
                self.write(*d, &v, mask);
            }
            Op::FloatUnary { op, ty, mode, d, a } => {
                let v = alu::float_unary(*op, *ty, *mode, self.operand(*a));
                self.write(*d, &v, mask);
            }
            Op::Fma { ty, mode, d, a, b, c } => {
                let v = alu::fma(*ty, *mode, self.operand(*a), self.operand(*b), self.operand(*c));
                self.write(*d, &v, mask);
            }
            Op::Setp {
                cmp,
                d,
                d_not,
                a,
                b,
                combine,
            } => {
                let mut r = alu::compare(*cmp, self.operand(*a), self.operand(*b));
                let mut r_not = !r;
                if let Some((op, p)) = combine {
                    let p = self.pred_value(*p);
                    let f = |x: u32| match op {
                        BoolOp::And => x & p,
                        BoolOp::Or => x | p,
                        BoolOp::Xor => x ^ p,
                    };
                    r = f(r);
                    r_not = f(r_not);
                }
                if let Some(d) = d {
                    self.write_pred(*d, r, mask);
                }
                if let Some(q) = d_not {
                    self.write_pred(*q, r_not, mask);
                }
            }
            Op::Selp { d, a, b, p, bits } => {
                let (a, b, p) = (self.read(*a), self.read(*b), self.pred_value(*p));
                let m = alu::width_mask(u32::from(*bits));
                let mut v = [0u64; 32];
                for l in 0..32 {
                    v[l] = if p >> l & 1 != 0 { a[l] } else { b[l] } & m;
                }
                self.write(*d, &v, mask);
            }
            Op::PredBinary { op, d, a, b } => {
                let (a, b) = (self.pred_value(*a), self.pred_value(*b));
                let v = match op {
                    BoolOp::And => a & b,
                    BoolOp::Or => a | b,
                    BoolOp::Xor => a ^ b,
                };
                self.write_pred(*d, v, mask);
            }
            Op::PredMov { d, a } => {
                let v = self.pred_value(*a);
                self.write_pred(*d, v, mask);
            }
            Op::PredConst { d, value } => self.write_pred(*d, if *value { u32::MAX } else { 0 }, mask),
            Op::Cvt {
                dst,
                src,
                rounding,
                ftz,
                sat,
                relu,
                d,
                a,
            } => {
                let v = alu::cvt(*dst, *src, *rounding, *ftz, *sat, *relu, self.operand(*a));
                self.write(*d, &v, mask);
            }
            Op::CvtPack {
                dst,
                rounding,
                relu,
                d,
                a,
                b,
            } => {
                let v = alu::cvt_pack(*dst, *rounding, *relu, &self.read(*a), &self.read(*b));
                self.write(*d, &v, mask);
            }
            Op::Cvta {
                space,
                to_generic,
                d,
                a,
            } => {
                let v = self.cvta(*space, *to_generic, &self.read(*a), mask)?;
                self.write(*d, &v, mask);
            }
            Op::Ld {
                space,
                bytes,
                count,
                extend,
                d,
                addr,
                read_only,
            } => self.load(*space, *bytes, *count, *extend, d, *addr, *read_only, mask)?,
            Op::St {
                space,
                bytes,
                count,
                a,
                addr,
            } => self.store(*space, *bytes, *count, a, *addr, mask)?,
            Op::CpAsync {
                dst,
                src,
                size,
                src_size,
            } => self.copy_async(*dst, *src, *size, *src_size, mask)?,
            Op::CpAsyncCommit => {
                for l in 0..32 {
                    if mask >> l & 1 != 0 {
                        self.warp.committed[l] += 1;
                    }
                }
            }
            Op::CpAsyncWait { pending, all } => self.wait_async(*pending, *all, mask)?,
            Op::Atom {
                space,
                op,
                ty,
                d,
                addr,
                b,
                c,
            } => self.atomic(*space, *op, *ty, *d, *addr, *b, *c, mask)?,
            Op::Mma {
                shape,
                d,
                a,
                b,
                c,
                meta,
            } => self.mma(*shape, d, a, b, c, *meta, mask)?,
            Op::Trap => {
                return Err(self.fault(FaultKind::Invalid, mask.trailing_zeros(), "trap".into()));
            }
            Op::Bra { .. } | Op::Exit | Op::Bar { .. } | Op::Shfl { .. } | Op::Vote { .. } | Op::WarpSync { .. } => {
                unreachable!("control and collective instructions run in `run`")
            }
        }
        Ok(())
    }
}
