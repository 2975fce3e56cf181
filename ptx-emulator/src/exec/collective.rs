//! Warp-collective instructions: `bar.warp.sync`, `shfl.sync`, `vote.sync` and the tensor-core
//! `mma`. Each names the lanes that take part (a member mask, or the whole warp for `.aligned`
//! `mma`).
//!
//! Since Volta, the lanes of a member mask need not execute the same instruction: "the executing
//! thread waits until all non-exited threads corresponding to membermask have executed `shfl.sync`
//! with the same qualifiers and the same membermask" (PTX ISA, shfl.sync; vote.sync and
//! bar.warp.sync alike). nvcc relies on it: it unswitches loops so that two sides of a branch
//! each execute their own copy of a shuffle. So lanes that reach a collective without all their
//! members wait (their path is set aside) while the other side of the branch runs to its own
//! collective; when every member has arrived, the collective completes for all of them, each lane
//! reading its operands from and writing its result to the registers of its own instruction. A
//! member that can never arrive (it exited, or reached the branches' reconvergence point without
//! a matching collective) is reported, never guessed. `mma` is `.aligned`: all 32 lanes must
//! execute the same instruction together.

use super::alu::Lanes;
use super::ir::*;
use super::mma;
use super::warp::Ctx;
use super::{Fault, FaultKind};

/// Which collective, with the qualifiers that must agree for lanes to meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Collective {
    Shuffle(ShflMode),
    Vote(VoteMode),
    WarpSync,
}

/// One path's part of a collective not yet complete.
#[derive(Debug, Clone)]
struct Arrival {
    lanes: u32,
    /// The instruction it waits at.
    pc: u32,
    /// Its destinations: the value register (shfl, ballot) and predicate (shfl's, vote's).
    reg: Option<Reg>,
    pred: Option<Pred>,
}

/// A collective some of whose members have arrived.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    kind: Collective,
    members: u32,
    arrived: u32,
    /// Each arrived lane's operands: shfl's a, b, c; vote's predicate in `a`.
    a: Lanes,
    b: Lanes,
    c: Lanes,
    arrivals: Vec<Arrival>,
}

/// What executing a collective did.
pub(super) enum Rendezvous {
    /// It completed; the current path goes on.
    Done,
    /// The current path waits for members on another path, which now runs.
    Wait,
}

impl Ctx<'_> {
    /// Checks that every active lane names itself in its member mask and that the active lanes
    /// agree on it, and that no member has exited; returns the mask.
    fn member_mask(&self, members: Src, active: u32, what: &str) -> Result<u32, Box<Fault>> {
        let masks = self.read(members);
        let first = active.trailing_zeros();
        let m = masks[first as usize] as u32;
        for lane in 0..32u32 {
            if active >> lane & 1 == 0 {
                continue;
            }
            let own = masks[lane as usize] as u32;
            if own != m {
                return Err(self.fault(
                    FaultKind::DivergentCollective,
                    lane,
                    format!("{what}: lanes disagree on the member mask ({own:#010x} here, {m:#010x} in lane {first})"),
                ));
            }
            if own >> lane & 1 == 0 {
                return Err(self.fault(
                    FaultKind::DivergentCollective,
                    lane,
                    format!("{what}: the executing lane is not in its member mask {own:#010x}"),
                ));
            }
        }
        let exited = m & !self.warp.live;
        if exited != 0 {
            return Err(self.fault(
                FaultKind::DivergentCollective,
                exited.trailing_zeros(),
                format!("{what}: member mask {m:#010x} names lanes {exited:#010x} that have exited or do not exist"),
            ));
        }
        Ok(m)
    }

    /// Executes a `shfl.sync`, `vote.sync` or `bar.warp.sync` for the lanes of `active` (nonzero).
    pub(super) fn collective(&mut self, op: &Op, active: u32) -> Result<Rendezvous, Box<Fault>> {
        let (kind, members, reg, pred, a, b, c) = match *op {
            Op::Shfl {
                mode,
                d,
                p,
                a,
                b,
                c,
                mask,
            } => (
                Collective::Shuffle(mode),
                mask,
                Some(d),
                p,
                self.read(a),
                self.read(b),
                self.read(c),
            ),
            Op::Vote { mode, d, a, mask } => {
                let bits = self.pred_value(a);
                let a = std::array::from_fn(|l| u64::from(bits >> l & 1));
                let (reg, pred) = match d {
                    VoteDst::Reg(r) => (Some(r), None),
                    VoteDst::Pred(p) => (None, Some(p)),
                };
                (Collective::Vote(mode), mask, reg, pred, a, [0; 32], [0; 32])
            }
            Op::WarpSync { mask } => (Collective::WarpSync, mask, None, None, [0; 32], [0; 32], [0; 32]),
            _ => unreachable!("not a collective"),
        };
        let what = match kind {
            Collective::Shuffle(_) => "shfl.sync",
            Collective::Vote(_) => "vote.sync",
            Collective::WarpSync => "bar.warp.sync",
        };
        let m = self.member_mask(members, active, what)?;
        let mut pending = self.warp.pending.take().unwrap_or(Pending {
            kind,
            members: m,
            arrived: 0,
            a: [0; 32],
            b: [0; 32],
            c: [0; 32],
            arrivals: Vec::new(),
        });
        if pending.kind != kind || pending.members != m {
            return Err(self.fault(
                FaultKind::DivergentCollective,
                active.trailing_zeros(),
                format!(
                    "{what} with member mask {m:#010x} while lanes {:#010x} wait at a {:?} with member mask {:#010x}",
                    pending.arrived, pending.kind, pending.members
                ),
            ));
        }
        for l in 0..32 {
            if active >> l & 1 != 0 {
                pending.a[l] = a[l];
                pending.b[l] = b[l];
                pending.c[l] = c[l];
            }
        }
        pending.arrived |= active;
        pending.arrivals.push(Arrival {
            lanes: active,
            pc: self.pc,
            reg,
            pred,
        });
        if pending.arrived & m != m {
            // wait: the path just below, the other side of the same branch, runs next
            self.warp.pending = Some(pending);
            let stack = &mut self.warp.stack;
            let n = stack.len();
            stack[n - 1].waiting = true;
            if n >= 2 && !stack[n - 2].waiting && stack[n - 2].reconverge == stack[n - 1].reconverge {
                stack.swap(n - 1, n - 2);
                return Ok(Rendezvous::Wait);
            }
            return Err(self.missing_members());
        }
        self.complete(pending)?;
        Ok(Rendezvous::Done)
    }

    /// The fault of a collective whose missing members cannot arrive: no other path is left to
    /// run before the waiting ones.
    pub(super) fn missing_members(&self) -> Box<Fault> {
        let p = self.warp.pending.as_ref().expect("a pending collective");
        let missing = p.members & !p.arrived;
        let waiting = p.arrivals.first().expect("an arrival");
        let what = match p.kind {
            Collective::Shuffle(_) => "shfl.sync",
            Collective::Vote(_) => "vote.sync",
            Collective::WarpSync => "bar.warp.sync",
        };
        let exited = missing & !self.warp.live;
        let detail = if exited != 0 {
            format!(
                "{what}: member mask {:#010x} names lanes {exited:#010x} that exited before reaching it",
                p.members
            )
        } else {
            format!(
                "{what}: member mask {:#010x} names lanes {missing:#010x} that are on another path (divergent) and never reach a {what}",
                p.members
            )
        };
        self.launch.fault(
            FaultKind::DivergentCollective,
            self.block.index,
            self.warp.thread(waiting.lanes.trailing_zeros()),
            self.launch.program.code[waiting.pc as usize].site,
            detail,
        )
    }

    /// Every member has arrived: computes each lane's result into its own path's destinations,
    /// and lets the waiting paths go on past their collective.
    fn complete(&mut self, p: Pending) -> Result<(), Box<Fault>> {
        let lanes = p.arrived;
        let mut value = [0u64; 32];
        let mut flag = 0u32;
        match p.kind {
            Collective::Shuffle(mode) => {
                for lane in 0..32i32 {
                    if lanes >> lane & 1 == 0 {
                        continue;
                    }
                    let (j, ok) = shuffle_source(mode, lane, p.b[lane as usize], p.c[lane as usize]);
                    if p.members >> j & 1 == 0 {
                        let at = p
                            .arrivals
                            .iter()
                            .find(|a| a.lanes >> lane & 1 != 0)
                            .expect("an arrival");
                        return Err(self.launch.fault(
                            FaultKind::DivergentCollective,
                            self.block.index,
                            self.warp.thread(lane as u32),
                            self.launch.program.code[at.pc as usize].site,
                            format!(
                                "shfl.sync reads lane {j}, which is not in the member mask {:#010x}",
                                p.members
                            ),
                        ));
                    }
                    value[lane as usize] = p.a[j as usize] & 0xFFFF_FFFF;
                    flag |= u32::from(ok) << lane;
                }
            }
            Collective::Vote(mode) => {
                let ballot = (0..32).fold(0u32, |b, l| b | ((p.a[l] as u32 & (lanes >> l & 1)) << l));
                value = [u64::from(ballot); 32];
                let all = match mode {
                    VoteMode::All => ballot == lanes,
                    VoteMode::Any => ballot != 0,
                    VoteMode::Uni => ballot == 0 || ballot == lanes,
                    VoteMode::Ballot => false,
                };
                flag = if all { u32::MAX } else { 0 };
            }
            Collective::WarpSync => self.warp.sync_epoch += 1,
        }
        for arrival in &p.arrivals {
            if let Some(r) = arrival.reg {
                self.write(r, &value, arrival.lanes);
            }
            if let Some(q) = arrival.pred {
                let reg = &mut self.warp.preds[q as usize];
                *reg = (*reg & !arrival.lanes) | (flag & arrival.lanes);
            }
        }
        // the paths that waited go on after their own collective
        for entry in self.warp.stack.iter_mut().filter(|e| e.waiting) {
            entry.waiting = false;
            entry.pc += 1;
        }
        Ok(())
    }

    /// `mma` / `mma.sp`: the whole warp takes part (`.aligned`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn mma(
        &mut self,
        shape: MmaShape,
        d: &[Reg; 4],
        a: &[Src; 4],
        b: &[Src; 4],
        c: &[Src; 4],
        meta: Option<(Src, Src)>,
        active: u32,
    ) -> Result<(), Box<Fault>> {
        if active != u32::MAX {
            let missing = !active;
            return Err(self.fault(
                FaultKind::DivergentCollective,
                missing.trailing_zeros(),
                format!("mma needs all 32 lanes of the warp (.aligned); lanes {missing:#010x} are not executing it"),
            ));
        }
        let gather = |srcs: &[Src]| -> [[u32; 4]; 32] {
            let mut out = [[0u32; 4]; 32];
            for (i, s) in srcs.iter().enumerate() {
                let v = self.read(*s);
                for lane in 0..32 {
                    out[lane][i] = v[lane] as u32;
                }
            }
            out
        };
        let av = gather(a);
        let cv = gather(c).map(|r| r.map(f32::from_bits));
        let result = match shape {
            MmaShape::M16N8K8Tf32 => {
                let bv = gather(&b[..2]).map(|r| [r[0], r[1]]);
                mma::mma_m16n8k8_tf32(&av, &bv, &cv)
            }
            MmaShape::M16N8K16Bf16 => {
                let bv = gather(&b[..2]).map(|r| [r[0], r[1]]);
                mma::mma_m16n8k16_bf16(&av, &bv, &cv)
            }
            MmaShape::SpM16N8K32Bf16 => {
                let (e, selector) = meta.expect("mma.sp has metadata");
                let bv = gather(b);
                let ev = self.read(e).map(|x| x as u32);
                let selector = self.read_lane(selector, 0) as u32;
                mma::mma_sp_m16n8k32_bf16(&av, &bv, &cv, &ev, selector)
                    .map_err(|e| self.fault(FaultKind::Invalid, 0, format!("mma.sp: {e}")))?
            }
        };
        for (i, r) in d.iter().enumerate() {
            let mut v = [0u64; 32];
            for lane in 0..32 {
                v[lane] = u64::from(result[lane][i].to_bits());
            }
            self.write(*r, &v, active);
        }
        Ok(())
    }
}

/// The lane `lane` reads in a `shfl.sync` (PTX ISA, shfl.sync), and whether it is in range: `b`'s
/// low 5 bits give the offset or lane, `c` packs the clamp (bits 4:0) and the segment mask (bits
/// 12:8). Out of range, a lane reads its own value.
fn shuffle_source(mode: ShflMode, lane: i32, b: u64, c: u64) -> (i32, bool) {
    let bval = (b & 0x1f) as i32;
    let cval = (c & 0x1f) as i32;
    let segmask = ((c >> 8) & 0x1f) as i32;
    let max_lane = (lane & segmask) | (cval & !segmask);
    let min_lane = lane & segmask;
    let (j, ok) = match mode {
        ShflMode::Up => (lane - bval, lane - bval >= max_lane),
        ShflMode::Down => (lane + bval, lane + bval <= max_lane),
        ShflMode::Bfly => (lane ^ bval, (lane ^ bval) <= max_lane),
        ShflMode::Idx => {
            let j = min_lane | (bval & !segmask);
            (j, j <= max_lane)
        }
    };
    (if ok { j } else { lane }, ok)
}
