//! The decoded form of a kernel: what the warp interpreter executes. Every operand is resolved
//! (registers to indices into the warp's register file, symbols to addresses or parameter
//! offsets, labels to instruction indices) and every instruction's meaning is fixed by its
//! variant, so execution never looks at a name or a modifier again.
//!
//! Registers of every type live in one file of 64-bit lanes: a `.b32`/`.f32` value occupies the
//! low 32 bits (upper bits zero), `.b16` the low 16. Predicates live in a file of 32-bit lane masks.

pub use super::numerics::{FloatCmp, FloatType, IntCmp, IntRounding, IntType, Rounding};

/// A register index.
pub type Reg = u32;
/// A predicate register index.
pub type Pred = u32;

/// A source operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Src {
    Reg(Reg),
    /// An immediate, already in the register representation of the instruction's type (as the
    /// decoder makes it; the program's final pass turns each into a `Const`).
    Imm(u64),
    /// An immediate broadcast to 32 lanes: an index into the program's constants.
    Const(u32),
    Special(Special),
}

/// Special registers, read per lane (each warp keeps their lanes, `Special::index`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    Tid(u8),
    Ntid(u8),
    Ctaid(u8),
    Nctaid(u8),
    LaneId,
    WarpId,
    NWarpId,
    /// `%lanemask_eq/le/lt/ge/gt`.
    LaneMask(LaneMaskKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneMaskKind {
    Eq,
    Le,
    Lt,
    Ge,
    Gt,
}

impl Special {
    /// How many special registers there are.
    pub const COUNT: usize = 20;

    /// A dense index of each special register, `0..COUNT`.
    pub fn index(self) -> usize {
        match self {
            Special::Tid(d) => d as usize,
            Special::Ntid(d) => 3 + d as usize,
            Special::Ctaid(d) => 6 + d as usize,
            Special::Nctaid(d) => 9 + d as usize,
            Special::LaneId => 12,
            Special::WarpId => 13,
            Special::NWarpId => 14,
            Special::LaneMask(k) => 15 + k as usize,
        }
    }

    /// Every special register, in `index` order.
    pub fn all() -> [Special; Self::COUNT] {
        use LaneMaskKind::*;
        let mut all = [Special::LaneId; Self::COUNT];
        for d in 0..3u8 {
            all[d as usize] = Special::Tid(d);
            all[3 + d as usize] = Special::Ntid(d);
            all[6 + d as usize] = Special::Ctaid(d);
            all[9 + d as usize] = Special::Nctaid(d);
        }
        all[13] = Special::WarpId;
        all[14] = Special::NWarpId;
        for (i, k) in [Eq, Le, Lt, Ge, Gt].into_iter().enumerate() {
            all[15 + i] = Special::LaneMask(k);
        }
        all
    }
}

/// A floating-point type the arithmetic supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatTy {
    F32,
    F64,
}

/// Float arithmetic options: rounding, flush-to-zero, saturation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloatMode {
    pub rounding: Rounding,
    pub ftz: bool,
    pub sat: bool,
}

/// Integer operations of two operands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntBinary {
    Add,
    Sub,
    MulLo,
    MulHi,
    /// `mul.wide`: the full product, destination twice as wide.
    MulWide,
    Div,
    Rem,
    Min,
    Max,
    And,
    Or,
    Xor,
    Shl,
    Shr,
}

/// Integer operations of one operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntUnary {
    Neg,
    Abs,
    Not,
    Cnot,
    Popc,
    Clz,
    Brev,
}

/// Float operations of two operands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatBinary {
    Add,
    Sub,
    Mul,
    Div,
    Min,
    Max,
    /// `min.NaN` / `max.NaN`: NaN if either is NaN.
    MinNan,
    MaxNan,
    /// `div.approx` / `div.full` (f32).
    DivApprox,
    DivFull,
    Copysign,
}

/// Float operations of one operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatUnary {
    Neg,
    Abs,
    Sqrt,
    SqrtApprox,
    Rcp,
    RcpApprox,
    RsqrtApprox,
    Ex2Approx,
    Lg2Approx,
    SinApprox,
    CosApprox,
    TanhApprox,
}

/// What `setp` compares: integers of a type, or floats (with `.ftz` for f32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    Int(IntCmp, IntType),
    Float(FloatCmp, FloatTy, bool),
}

/// A predicate combination (`setp.lt.and`, `and.pred`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoolOp {
    And,
    Or,
    Xor,
}

/// A predicate source, possibly negated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PredSrc {
    pub reg: Pred,
    pub negated: bool,
}

/// A scalar type as `cvt` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CvtTy {
    Int(IntType),
    Float(FloatType),
    /// `.tf32`: an f32 bit pattern with 10 fraction bits.
    Tf32,
}

/// A conversion's rounding: to a float (`.rn`, `.rz`, `.rm`, `.rp`, `.rna`) or to an integer or
/// integral value (`.rni`, `.rzi`, `.rmi`, `.rpi`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CvtRounding {
    Float(Rounding),
    Int(IntRounding),
}

/// State spaces that memory instructions address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    Global,
    Shared,
    Local,
    Param,
    /// A generic address: shared, local or global by its value.
    Generic,
}

/// An address: a base operand plus a byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addr {
    pub base: Src,
    pub offset: i64,
}

/// How a loaded element fills its (possibly wider) destination register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extend {
    Zero,
    /// Sign-extend the element, then keep the destination register's `to_bits`.
    Sign {
        to_bits: u8,
    },
}

/// Atomic operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtomOp {
    Add,
    Min,
    Max,
    And,
    Or,
    Xor,
    Exch,
    Cas,
    Inc,
    Dec,
}

/// The type an atomic operates in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtomTy {
    Int(IntType),
    F32,
    F64,
}

/// `shfl.sync` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShflMode {
    Up,
    Down,
    Bfly,
    Idx,
}

/// `vote.sync` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteMode {
    All,
    Any,
    Uni,
    Ballot,
}

/// The tensor-core instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MmaShape {
    /// `mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32`
    M16N8K8Tf32,
    /// `mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32`
    M16N8K16Bf16,
    /// `mma.sp::ordered_metadata.sync.aligned.m16n8k32.row.col.f32.bf16.bf16.f32`
    SpM16N8K32Bf16,
}

/// One decoded instruction.
#[derive(Debug, Clone)]
pub struct Inst {
    pub op: Op,
    /// `@p` / `@!p`.
    pub guard: Option<PredSrc>,
    /// Index into the kernel's sites (PTX line and source location).
    pub site: u32,
}

/// What an instruction does.
#[derive(Debug, Clone)]
pub enum Op {
    /// `mov`, and moves between registers of different widths: the source's low `bits` bits.
    Mov {
        d: Reg,
        a: Src,
        bits: u8,
    },
    /// `mov.b64 d, {lo, hi}` / `mov.b32 d, {lo, hi}`: concatenation of `parts` parts of `part_bits`.
    Pack {
        d: Reg,
        parts: Vec<Src>,
        part_bits: u8,
    },
    /// `mov.b64 {lo, hi}, a`: the reverse (a `None` part is a sink).
    Unpack {
        parts: Vec<Option<Reg>>,
        a: Src,
        part_bits: u8,
    },
    IntBinary {
        op: IntBinary,
        ty: IntType,
        d: Reg,
        a: Src,
        b: Src,
    },
    IntUnary {
        op: IntUnary,
        ty: IntType,
        d: Reg,
        a: Src,
    },
    /// `mad.lo/hi/wide`: `a*b + c` on the chosen part of the product.
    IntMad {
        part: IntBinary,
        ty: IntType,
        d: Reg,
        a: Src,
        b: Src,
        c: Src,
    },
    /// `bfi.b32/b64 d, a, b, pos, len`: insert `a`'s low `len` bits into `b` at `pos`.
    Bfi {
        bits: u32,
        d: Reg,
        a: Src,
        b: Src,
        pos: Src,
        len: Src,
    },
    /// `bfe`: extract `len` bits of `a` at `pos`, sign-extended for signed types.
    Bfe {
        ty: IntType,
        d: Reg,
        a: Src,
        pos: Src,
        len: Src,
    },
    /// `prmt.b32 d, a, b, c` (default mode).
    Prmt {
        d: Reg,
        a: Src,
        b: Src,
        c: Src,
    },
    FloatBinary {
        op: FloatBinary,
        ty: FloatTy,
        mode: FloatMode,
        d: Reg,
        a: Src,
        b: Src,
    },
    FloatUnary {
        op: FloatUnary,
        ty: FloatTy,
        mode: FloatMode,
        d: Reg,
        a: Src,
    },
    Fma {
        ty: FloatTy,
        mode: FloatMode,
        d: Reg,
        a: Src,
        b: Src,
        c: Src,
    },
    /// `setp` into `d` (and `d_not`, the complement, for `p|q` destinations), optionally combined
    /// with `combine`.
    Setp {
        cmp: Compare,
        d: Option<Pred>,
        d_not: Option<Pred>,
        a: Src,
        b: Src,
        combine: Option<(BoolOp, PredSrc)>,
    },
    /// `selp d, a, b, p`: `p ? a : b`.
    Selp {
        d: Reg,
        a: Src,
        b: Src,
        p: PredSrc,
        bits: u8,
    },
    /// Predicate logic: `and/or/xor.pred d, a, b`.
    PredBinary {
        op: BoolOp,
        d: Pred,
        a: PredSrc,
        b: PredSrc,
    },
    /// `not.pred` / `mov.pred`: `d = a` (with `a.negated` for `not`).
    PredMov {
        d: Pred,
        a: PredSrc,
    },
    /// `mov.pred d, 0/1`.
    PredConst {
        d: Pred,
        value: bool,
    },
    /// `cvt.*`: one element; `pack_bf16x2`/`f16x2` forms are `CvtPack`.
    Cvt {
        dst: CvtTy,
        src: CvtTy,
        rounding: Option<CvtRounding>,
        ftz: bool,
        sat: bool,
        relu: bool,
        d: Reg,
        a: Src,
    },
    /// `cvt.rn(.relu).bf16x2.f32 d, a, b` and the f16x2 form: `a` → upper half, `b` → lower.
    CvtPack {
        dst: FloatType,
        rounding: Rounding,
        relu: bool,
        d: Reg,
        a: Src,
        b: Src,
    },
    /// `cvta` between generic and a state space: `to_generic` adds the space's window base.
    Cvta {
        space: Space,
        to_generic: bool,
        d: Reg,
        a: Src,
    },
    /// `ld`: `count` elements of `bytes` each into `d`, extended per `extend`; `read_only` for
    /// `ld.global.nc` (data the kernel promises not to write while it runs).
    Ld {
        space: Space,
        bytes: u8,
        count: u8,
        extend: Extend,
        d: [Option<Reg>; 4],
        addr: Addr,
        read_only: bool,
    },
    /// `st`: `count` elements of `bytes` each from `a`.
    St {
        space: Space,
        bytes: u8,
        count: u8,
        a: [Src; 4],
        addr: Addr,
    },
    /// `cp.async.ca/cg.shared.global [dst], [src], size(, src_size)`.
    CpAsync {
        dst: Addr,
        src: Addr,
        size: u8,
        src_size: Option<Src>,
    },
    CpAsyncCommit,
    /// `cp.async.wait_group n`: land all but the `n` most recent committed groups; `wait_all`
    /// lands every copy, committed or not.
    CpAsyncWait {
        pending: u32,
        all: bool,
    },
    Atom {
        space: Space,
        op: AtomOp,
        ty: AtomTy,
        d: Option<Reg>,
        addr: Addr,
        b: Src,
        c: Option<Src>,
    },
    /// `bra`: jump to instruction `target`; `uni` promises a uniform branch.
    Bra {
        target: u32,
        uni: bool,
    },
    /// `ret` / `exit` from a kernel.
    Exit,
    /// `bar.sync` / `barrier.sync` / `bar.warp.sync`.
    Bar {
        id: Src,
        count: Option<Src>,
    },
    WarpSync {
        mask: Src,
    },
    Shfl {
        mode: ShflMode,
        d: Reg,
        p: Option<Pred>,
        a: Src,
        b: Src,
        c: Src,
        mask: Src,
    },
    Vote {
        mode: VoteMode,
        d: VoteDst,
        a: PredSrc,
        mask: Src,
    },
    Mma {
        shape: MmaShape,
        d: [Reg; 4],
        a: [Src; 4],
        b: [Src; 4],
        c: [Src; 4],
        meta: Option<(Src, Src)>,
    },
    /// `trap`: the kernel aborts.
    Trap,
}

/// A register or source operand of an instruction, as `Op::for_each_operand` visits them.
pub enum Operand<'a> {
    /// A source (read).
    Src(&'a mut Src),
    /// A destination register (written).
    Def(&'a mut Reg),
}

impl Op {
    /// Calls `f` on every source operand and destination register of the instruction, sources
    /// first (an instruction reads all its sources before it writes).
    pub fn for_each_operand(&mut self, mut f: impl FnMut(Operand<'_>)) {
        let mut srcs: Vec<&mut Src> = Vec::new();
        let mut defs: Vec<&mut Reg> = Vec::new();
        match self {
            Op::Mov { d, a, .. } => {
                srcs.push(a);
                defs.push(d);
            }
            Op::Pack { d, parts, .. } => {
                srcs.extend(parts.iter_mut());
                defs.push(d);
            }
            Op::Unpack { parts, a, .. } => {
                srcs.push(a);
                defs.extend(parts.iter_mut().flatten());
            }
            Op::IntBinary { d, a, b, .. } | Op::FloatBinary { d, a, b, .. } | Op::CvtPack { d, a, b, .. } => {
                srcs.extend([a, b]);
                defs.push(d);
            }
            Op::IntUnary { d, a, .. } | Op::FloatUnary { d, a, .. } | Op::Cvt { d, a, .. } | Op::Cvta { d, a, .. } => {
                srcs.push(a);
                defs.push(d);
            }
            Op::IntMad { d, a, b, c, .. } | Op::Fma { d, a, b, c, .. } | Op::Prmt { d, a, b, c } => {
                srcs.extend([a, b, c]);
                defs.push(d);
            }
            Op::Bfi { d, a, b, pos, len, .. } => {
                srcs.extend([a, b, pos, len]);
                defs.push(d);
            }
            Op::Bfe { d, a, pos, len, .. } => {
                srcs.extend([a, pos, len]);
                defs.push(d);
            }
            Op::Setp { a, b, .. } => srcs.extend([a, b]),
            Op::Selp { d, a, b, .. } => {
                srcs.extend([a, b]);
                defs.push(d);
            }
            Op::Ld { d, addr, .. } => {
                srcs.push(&mut addr.base);
                defs.extend(d.iter_mut().flatten());
            }
            Op::St { a, addr, .. } => {
                srcs.push(&mut addr.base);
                srcs.extend(a.iter_mut());
            }
            Op::CpAsync {
                dst,
                src: from,
                src_size,
                ..
            } => {
                srcs.extend([&mut dst.base, &mut from.base]);
                srcs.extend(src_size.iter_mut());
            }
            Op::Atom { d, addr, b, c, .. } => {
                srcs.extend([&mut addr.base, b]);
                srcs.extend(c.iter_mut());
                defs.extend(d.iter_mut());
            }
            Op::Bar { id, count } => {
                srcs.push(id);
                srcs.extend(count.iter_mut());
            }
            Op::WarpSync { mask } => srcs.push(mask),
            Op::Shfl { d, a, b, c, mask, .. } => {
                srcs.extend([a, b, c, mask]);
                defs.push(d);
            }
            Op::Vote { d, mask, .. } => {
                srcs.push(mask);
                if let VoteDst::Reg(r) = d {
                    defs.push(r);
                }
            }
            Op::Mma { d, a, b, c, meta, .. } => {
                srcs.extend(a.iter_mut().chain(b.iter_mut()).chain(c.iter_mut()));
                if let Some((e, sel)) = meta {
                    srcs.extend([e, sel]);
                }
                defs.extend(d.iter_mut());
            }
            Op::PredBinary { .. }
            | Op::PredMov { .. }
            | Op::PredConst { .. }
            | Op::CpAsyncCommit
            | Op::CpAsyncWait { .. }
            | Op::Bra { .. }
            | Op::Exit
            | Op::Trap => {}
        }
        for s in srcs {
            f(Operand::Src(s));
        }
        for d in defs {
            f(Operand::Def(d));
        }
    }
}

/// `vote.ballot` writes a register, the others a predicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteDst {
    Reg(Reg),
    Pred(Pred),
}

/// Where an instruction came from.
#[derive(Debug, Clone, Copy)]
pub struct Site {
    pub ptx_line: u32,
    pub loc: Option<crate::ptx::ast::SourceLoc>,
}
