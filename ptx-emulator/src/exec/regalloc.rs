//! Register compaction. nvcc's PTX names a fresh virtual register for nearly every value (the
//! tensor-core conv kernels declare over 6,000), while a few hundred are live at any point. Each
//! register costs 256 bytes per warp in the emulator (32 lanes of 64 bits), so the decoded kernel
//! is given a register file as small as its liveness allows: a linear scan over live intervals
//! (the hull of each register's live points, from a backward dataflow over the basic blocks),
//! reusing a register only after its interval has ended.
//!
//! Reuse is safe under divergence: a write to a register affects the active lanes only, and for
//! each lane the register's previous value is dead on that lane's path (liveness is per thread).

use super::ir::*;
use super::reconverge::basic_blocks;

/// Whether a register occurrence reads or writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Use,
    Def,
}

/// Calls `f` on every register of `op` with its role, uses first.
fn for_each_register(op: &mut Op, mut f: impl FnMut(&mut Reg, Role)) {
    op.for_each_operand(|operand| match operand {
        Operand::Src(Src::Reg(r)) => f(r, Role::Use),
        Operand::Src(_) => {}
        Operand::Def(r) => f(r, Role::Def),
    });
}

/// A set of registers as bits.
#[derive(Clone, PartialEq, Eq)]
struct RegSet(Vec<u64>);

impl RegSet {
    fn new(n: usize) -> Self {
        Self(vec![0; n.div_ceil(64)])
    }
    fn insert(&mut self, r: Reg) {
        self.0[r as usize / 64] |= 1 << (r % 64);
    }
    fn union_with(&mut self, other: &RegSet) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }
    fn iter(&self) -> impl Iterator<Item = Reg> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &bits)| {
            (0..64)
                .filter(move |b| bits >> b & 1 != 0)
                .map(move |b| (w * 64 + b) as Reg)
        })
    }
}

/// Renumbers the registers of `code` (numbered `0..num_regs`) into as few as the live intervals
/// need; returns the new count.
pub fn compact_registers(code: &mut [Inst], num_regs: u32) -> u32 {
    let n = num_regs as usize;
    if code.is_empty() || n == 0 {
        return num_regs;
    }
    let (starts, succ) = basic_blocks(code);
    let blocks = starts.len();
    let ends: Vec<usize> = (0..blocks)
        .map(|b| starts.get(b + 1).copied().unwrap_or(code.len()))
        .collect();
    // per block: registers used before any (unguarded) definition, and defined
    let mut uses = vec![RegSet::new(n); blocks];
    let mut defs = vec![RegSet::new(n); blocks];
    for b in 0..blocks {
        for inst in &mut code[starts[b]..ends[b]] {
            let guarded = inst.guard.is_some();
            let (u, d) = (&mut uses[b], &mut defs[b]);
            let mut def_here = Vec::new();
            for_each_register(&mut inst.op, |r, role| match role {
                Role::Use => {
                    if d.0[*r as usize / 64] >> (*r % 64) & 1 == 0 {
                        u.insert(*r);
                    }
                }
                Role::Def => def_here.push(*r),
            });
            for r in def_here {
                if guarded {
                    // a guarded write keeps the other lanes' old value: a use as well
                    if d.0[r as usize / 64] >> (r % 64) & 1 == 0 {
                        u.insert(r);
                    }
                } else {
                    d.insert(r);
                }
            }
        }
    }
    // backward dataflow to a fixed point
    let mut live_in = vec![RegSet::new(n); blocks];
    let mut live_out = vec![RegSet::new(n); blocks];
    let mut changed = true;
    while changed {
        changed = false;
        for b in (0..blocks).rev() {
            let mut out = RegSet::new(n);
            for &s in &succ[b] {
                if s < blocks {
                    out.union_with(&live_in[s]);
                }
            }
            let mut inn = out.clone();
            for (i, w) in inn.0.iter_mut().enumerate() {
                *w = uses[b].0[i] | (*w & !defs[b].0[i]);
            }
            if inn != live_in[b] || out != live_out[b] {
                live_in[b] = inn;
                live_out[b] = out;
                changed = true;
            }
        }
    }
    // intervals: the hull of every point where a register is defined, used, or live at a block
    // boundary
    let mut lo = vec![usize::MAX; n];
    let mut hi = vec![0usize; n];
    let touch = |r: Reg, at: usize, lo: &mut [usize], hi: &mut [usize]| {
        lo[r as usize] = lo[r as usize].min(at);
        hi[r as usize] = hi[r as usize].max(at);
    };
    for b in 0..blocks {
        for r in live_in[b].iter() {
            touch(r, starts[b], &mut lo, &mut hi);
        }
        for r in live_out[b].iter() {
            touch(r, ends[b] - 1, &mut lo, &mut hi);
        }
    }
    for (i, inst) in code.iter_mut().enumerate() {
        for_each_register(&mut inst.op, |r, _| touch(*r, i, &mut lo, &mut hi));
    }
    // linear scan
    let mut order: Vec<usize> = (0..n).filter(|&r| lo[r] != usize::MAX).collect();
    order.sort_by_key(|&r| (lo[r], r));
    let mut assigned = vec![u32::MAX; n];
    let mut free: Vec<u32> = Vec::new();
    // active intervals by end: (end, physical)
    let mut active: std::collections::BinaryHeap<std::cmp::Reverse<(usize, u32)>> = Default::default();
    let mut next = 0u32;
    for r in order {
        while let Some(&std::cmp::Reverse((end, phys))) = active.peek() {
            if end < lo[r] {
                active.pop();
                free.push(phys);
            } else {
                break;
            }
        }
        let phys = free.pop().unwrap_or_else(|| {
            next += 1;
            next - 1
        });
        assigned[r] = phys;
        active.push(std::cmp::Reverse((hi[r], phys)));
    }
    for inst in code.iter_mut() {
        for_each_register(&mut inst.op, |r, _| *r = assigned[*r as usize]);
    }
    next
}
