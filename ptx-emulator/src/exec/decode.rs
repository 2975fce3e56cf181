//! Syntax tree → decoded kernel. Every opcode and modifier is matched against what the
//! interpreter implements; anything else is a load error naming the instruction, so no
//! instruction is ever silently skipped or half-understood.

use std::collections::{BTreeMap, HashMap};

use super::ir::*;
use super::reconverge::reconvergence_points;
use super::regalloc::compact_registers;
use crate::ptx::ast::{self, AddressBase, Operand, StateSpace, Type};

/// A decoded kernel: its code and everything a launch needs to lay out memory.
#[derive(Debug)]
pub struct Program {
    pub code: Vec<Inst>,
    /// For each instruction, where a divergent branch there reconverges (an instruction index,
    /// or `EXIT`); meaningful for branches only.
    pub reconverge: Vec<u32>,
    pub sites: Vec<Site>,
    pub num_regs: u32,
    pub num_preds: u32,
    /// The immediates of the code, each broadcast to 32 lanes (`Src::Const`), so that an operand is
    /// always read by reference.
    pub constants: Vec<[u64; 32]>,
    /// Bytes of static shared memory (this kernel's variables, laid out in declaration order).
    pub shared_static: u32,
    /// Where dynamic shared memory starts: after the static part, at the alignment its
    /// `.extern .shared` declarations ask for.
    pub dynamic_base: u32,
    /// Bytes of local memory per thread.
    pub local_bytes: u32,
    /// Parameters: (offset, size) in the packed buffer, and its total size.
    pub params: Vec<(usize, usize)>,
    pub param_bytes: usize,
    /// `.maxntid` / `.reqntid` product, if declared.
    pub max_threads: Option<u32>,
}

/// Reconvergence at the end of the kernel.
pub const EXIT: u32 = u32::MAX;

/// Where a symbol lives.
#[derive(Debug, Clone, Copy)]
enum Symbol {
    /// Offset in the packed parameter buffer.
    Param(u64),
    /// Offset in the block's shared memory.
    Shared(u64),
    /// Offset in the thread's local memory.
    Local(u64),
    /// Device address of a module `.global`/`.const` variable.
    Global(u64),
}

/// Base of the generic-address windows of shared and local memory: far above any host address
/// (user space ends at 2^47), so a generic address tells its space by its value.
pub const SHARED_WINDOW: u64 = 0xFFFF_E000_0000_0000;
pub const LOCAL_WINDOW: u64 = 0xFFFF_F000_0000_0000;
/// Size of each window.
pub const WINDOW_BYTES: u64 = 1 << 40;

/// Decodes kernel `func` of `module`; `globals` are the addresses of the module's variables.
pub fn decode_kernel(
    module: &ast::Module,
    func: &ast::Function,
    globals: &BTreeMap<String, u64>,
) -> Result<Program, (u32, Option<ast::SourceLoc>, String)> {
    let body = func
        .body
        .as_ref()
        .ok_or((func.line, None, "a kernel without a body".to_string()))?;
    let mut d = Decoder::new(module, func, globals).map_err(|e| (func.line, None, e))?;
    // labels → instruction indices
    let mut index = 0u32;
    for st in body {
        match st {
            ast::Statement::Label(l) => {
                d.labels.insert(l.clone(), index);
            }
            ast::Statement::Instruction(_) => index += 1,
        }
    }
    let mut code = Vec::with_capacity(index as usize);
    let mut sites = Vec::with_capacity(index as usize);
    for st in body {
        let ast::Statement::Instruction(inst) = st else {
            continue;
        };
        let op = d
            .instruction(inst)
            .map_err(|e| (inst.line, inst.loc, format!("`{}`: {e}", spell(inst))))?;
        let guard = inst
            .guard
            .as_ref()
            .map(|g| {
                d.pred(&g.predicate).map(|reg| PredSrc {
                    reg,
                    negated: g.negated,
                })
            })
            .transpose()
            .map_err(|e| (inst.line, inst.loc, format!("`{}`: {e}", spell(inst))))?;
        sites.push(Site {
            ptx_line: inst.line,
            loc: inst.loc,
        });
        code.push(Inst {
            op,
            guard,
            site: code.len() as u32,
        });
    }
    let reconverge = reconvergence_points(&code);
    let num_regs = compact_registers(&mut code, d.num_regs);
    let constants = intern_constants(&mut code);
    Ok(Program {
        reconverge,
        constants,
        sites,
        num_regs,
        num_preds: d.num_preds,
        shared_static: d.shared_bytes as u32,
        dynamic_base: d.dynamic_base as u32,
        local_bytes: d.local_bytes as u32,
        params: d.params,
        param_bytes: d.param_bytes,
        max_threads: d.max_threads,
        code,
    })
}

/// Turns every `Src::Imm` of `code` into a `Src::Const` of the returned table (each distinct value
/// once).
fn intern_constants(code: &mut [Inst]) -> Vec<[u64; 32]> {
    let mut index: HashMap<u64, u32> = HashMap::new();
    let mut constants = Vec::new();
    for inst in code {
        inst.op.for_each_operand(|operand| {
            if let super::ir::Operand::Src(src) = operand {
                if let Src::Imm(v) = *src {
                    let i = *index.entry(v).or_insert_with(|| {
                        constants.push([v; 32]);
                        constants.len() as u32 - 1
                    });
                    *src = Src::Const(i);
                }
            }
        });
    }
    constants
}

/// The instruction as written, for messages.
fn spell(inst: &ast::Instruction) -> String {
    let mut s = inst.opcode.clone();
    for m in &inst.modifiers {
        s.push('.');
        s.push_str(m);
    }
    s
}

/// A register's place and declared type.
#[derive(Debug, Clone, Copy)]
struct RegInfo {
    index: u32,
    ty: Type,
}

struct Decoder<'a> {
    /// Registers declared one by one.
    singles: HashMap<&'a str, RegInfo>,
    /// Register ranges by prefix: (first index, count, type).
    ranges: HashMap<&'a str, (u32, u32, Type)>,
    symbols: HashMap<&'a str, Symbol>,
    labels: HashMap<String, u32>,
    num_regs: u32,
    num_preds: u32,
    shared_bytes: u64,
    dynamic_base: u64,
    local_bytes: u64,
    params: Vec<(usize, usize)>,
    param_bytes: usize,
    max_threads: Option<u32>,
}

fn align_up(x: u64, a: u64) -> u64 {
    x.div_ceil(a.max(1)) * a.max(1)
}

impl<'a> Decoder<'a> {
    fn new(module: &'a ast::Module, func: &'a ast::Function, globals: &BTreeMap<String, u64>) -> Result<Self, String> {
        let mut d = Decoder {
            singles: HashMap::new(),
            ranges: HashMap::new(),
            symbols: HashMap::new(),
            labels: HashMap::new(),
            num_regs: 0,
            num_preds: 0,
            shared_bytes: 0,
            dynamic_base: 0,
            local_bytes: 0,
            params: Vec::new(),
            param_bytes: 0,
            max_threads: None,
        };
        if func.kind != ast::FunctionKind::Entry {
            return Err("device functions (`.func`) are not supported; only kernels".into());
        }
        for r in &func.registers {
            let n = r.count.unwrap_or(1);
            let first = if r.ty == Type::Pred { d.num_preds } else { d.num_regs };
            if r.ty == Type::Pred {
                d.num_preds += n;
            } else {
                if r.ty == Type::B128 {
                    return Err(format!("128-bit register {} is not supported", r.name));
                }
                d.num_regs += n;
            }
            match r.count {
                Some(count) => {
                    d.ranges.insert(r.name.as_str(), (first, count, r.ty));
                }
                None => {
                    d.singles.insert(r.name.as_str(), RegInfo { index: first, ty: r.ty });
                }
            }
        }
        // parameters: packed in order with their alignments
        let mut offset = 0u64;
        for p in &func.params {
            if p.dims.iter().any(|d| d.is_none()) {
                return Err(format!("parameter {} has an unsized array type", p.name));
            }
            offset = align_up(offset, p.alignment());
            d.symbols.insert(p.name.as_str(), Symbol::Param(offset));
            d.params.push((offset as usize, p.size_bytes() as usize));
            offset += p.size_bytes();
        }
        d.param_bytes = offset as usize;
        // shared memory: the module's and the kernel's static variables, then the dynamic part
        let mut dynamic: Vec<&ast::Variable> = Vec::new();
        let mut place = |v: &'a ast::Variable, d: &mut Decoder<'a>| -> Result<(), String> {
            match v.space {
                StateSpace::Shared if v.is_extern => dynamic.push(v),
                StateSpace::Shared => {
                    let size = v
                        .size_bytes()
                        .ok_or(format!("shared variable {} has no size", v.name))?;
                    d.shared_bytes = align_up(d.shared_bytes, u64::from(v.align.unwrap_or(v.ty.bytes())));
                    d.symbols.insert(v.name.as_str(), Symbol::Shared(d.shared_bytes));
                    d.shared_bytes += size;
                }
                StateSpace::Local => {
                    let size = v.size_bytes().ok_or(format!("local variable {} has no size", v.name))?;
                    d.local_bytes = align_up(d.local_bytes, u64::from(v.align.unwrap_or(v.ty.bytes())));
                    d.symbols.insert(v.name.as_str(), Symbol::Local(d.local_bytes));
                    d.local_bytes += size;
                }
                StateSpace::Global | StateSpace::Const => {
                    let addr = globals
                        .get(&v.name)
                        .ok_or(format!("module variable {} was not allocated", v.name))?;
                    d.symbols.insert(v.name.as_str(), Symbol::Global(*addr));
                }
                other => return Err(format!("variable {} in state space {other:?}", v.name)),
            }
            Ok(())
        };
        for v in &module.variables {
            place(v, &mut d)?;
        }
        for v in &func.variables {
            place(v, &mut d)?;
        }
        // dynamic shared memory starts after the static part, at the largest alignment asked
        let dyn_align = dynamic
            .iter()
            .map(|v| u64::from(v.align.unwrap_or(v.ty.bytes())))
            .max()
            .unwrap_or(1);
        d.dynamic_base = align_up(d.shared_bytes, dyn_align);
        for v in dynamic {
            d.symbols.insert(v.name.as_str(), Symbol::Shared(d.dynamic_base));
        }
        for dir in &func.directives {
            match dir.name.as_str() {
                "maxntid" | "reqntid" => d.max_threads = Some(dir.values.iter().product::<u64>() as u32),
                "minnctapersm" | "maxnreg" | "maxnctapersm" | "noreturn" | "pragma" => {}
                other => return Err(format!("performance directive .{other} is not supported")),
            }
        }
        Ok(d)
    }

    fn reg_info(&self, name: &str) -> Result<RegInfo, String> {
        if let Some(r) = self.singles.get(name) {
            return Ok(*r);
        }
        let digits = name.len() - name.bytes().rev().take_while(u8::is_ascii_digit).count();
        if digits < name.len() {
            let (prefix, num) = name.split_at(digits);
            if let (Some(&(first, count, ty)), Ok(i)) = (self.ranges.get(prefix), num.parse::<u32>()) {
                if i < count {
                    return Ok(RegInfo { index: first + i, ty });
                }
            }
        }
        Err(format!("undeclared register {name}"))
    }

    fn reg(&self, op: &Operand) -> Result<Reg, String> {
        match op {
            Operand::Register(name) => {
                let r = self.reg_info(name)?;
                if r.ty == Type::Pred {
                    return Err(format!("{name} is a predicate where a register is expected"));
                }
                Ok(r.index)
            }
            other => Err(format!("expected a register, found {other:?}")),
        }
    }

    /// The declared width in bits of a destination register.
    fn reg_bits(&self, op: &Operand) -> Result<u8, String> {
        match op {
            Operand::Register(name) => Ok((self.reg_info(name)?.ty.bytes() * 8) as u8),
            other => Err(format!("expected a register, found {other:?}")),
        }
    }

    fn pred(&self, name: &str) -> Result<Pred, String> {
        let r = self.reg_info(name)?;
        if r.ty != Type::Pred {
            return Err(format!("{name} is not a predicate"));
        }
        Ok(r.index)
    }

    fn pred_dst(&self, op: &Operand) -> Result<Pred, String> {
        match op {
            Operand::Register(name) => self.pred(name),
            other => Err(format!("expected a predicate, found {other:?}")),
        }
    }

    fn pred_src(&self, op: &Operand) -> Result<PredSrc, String> {
        match op {
            Operand::Register(name) => Ok(PredSrc {
                reg: self.pred(name)?,
                negated: false,
            }),
            Operand::NotRegister(name) => Ok(PredSrc {
                reg: self.pred(name)?,
                negated: true,
            }),
            other => Err(format!("expected a predicate, found {other:?}")),
        }
    }

    fn special(name: &str) -> Option<Special> {
        let dim = |s: &str| match s {
            "x" => Some(0u8),
            "y" => Some(1),
            "z" => Some(2),
            _ => None,
        };
        if let Some((reg, d)) = name.split_once('.') {
            let d = dim(d)?;
            return match reg {
                "%tid" => Some(Special::Tid(d)),
                "%ntid" => Some(Special::Ntid(d)),
                "%ctaid" => Some(Special::Ctaid(d)),
                "%nctaid" => Some(Special::Nctaid(d)),
                _ => None,
            };
        }
        Some(match name {
            "%laneid" => Special::LaneId,
            "%warpid" => Special::WarpId,
            "%nwarpid" => Special::NWarpId,
            "%lanemask_eq" => Special::LaneMask(LaneMaskKind::Eq),
            "%lanemask_le" => Special::LaneMask(LaneMaskKind::Le),
            "%lanemask_lt" => Special::LaneMask(LaneMaskKind::Lt),
            "%lanemask_ge" => Special::LaneMask(LaneMaskKind::Ge),
            "%lanemask_gt" => Special::LaneMask(LaneMaskKind::Gt),
            _ => return None,
        })
    }

    /// A source operand of an instruction of type `ty` (immediates are encoded as `ty` stores them).
    fn src(&self, op: &Operand, ty: Type) -> Result<Src, String> {
        let bits = ty.bytes() * 8;
        let mask = |v: u64| if bits >= 64 { v } else { v & ((1u64 << bits) - 1) };
        match op {
            Operand::Register(name) => match Self::special(name) {
                Some(s) => Ok(Src::Special(s)),
                None => Ok(Src::Reg(self.reg(op)?)),
            },
            Operand::Int(v) => match ty {
                Type::F32 => Ok(Src::Imm(u64::from((*v as f32).to_bits()))),
                Type::F64 => Ok(Src::Imm((*v as f64).to_bits())),
                _ => Ok(Src::Imm(mask(*v as u64))),
            },
            Operand::F32Bits(b) => match ty {
                Type::F64 => Ok(Src::Imm(f64::from(f32::from_bits(*b)).to_bits())),
                _ => Ok(Src::Imm(u64::from(*b))),
            },
            Operand::F64Bits(b) => match ty {
                Type::F32 => Ok(Src::Imm(u64::from((f64::from_bits(*b) as f32).to_bits()))),
                _ => Ok(Src::Imm(*b)),
            },
            Operand::Float(f) => match ty {
                Type::F32 => Ok(Src::Imm(u64::from((*f as f32).to_bits()))),
                Type::F64 => Ok(Src::Imm(f.to_bits())),
                _ => Err(format!("a floating-point literal for a .{ty:?} operand")),
            },
            Operand::Symbol(name, offset) => Ok(Src::Imm(mask(self.symbol_value(name)?.wrapping_add(*offset as u64)))),
            other => Err(format!("unexpected operand {other:?}")),
        }
    }

    /// A symbol's address in its own state space (what `mov r, sym` gives).
    fn symbol_value(&self, name: &str) -> Result<u64, String> {
        match self.symbols.get(name) {
            Some(Symbol::Param(o) | Symbol::Shared(o) | Symbol::Local(o)) => Ok(*o),
            Some(Symbol::Global(a)) => Ok(*a),
            None => Err(format!("unknown symbol {name}")),
        }
    }

    /// An address operand for an access in `space`.
    fn addr(&self, op: &Operand, space: Space) -> Result<Addr, String> {
        let Operand::Address { base, offset } = op else {
            return Err(format!("expected an address, found {op:?}"));
        };
        let base = match base {
            None => Src::Imm(0),
            Some(AddressBase::Register(name)) => Src::Reg(self.reg(&Operand::Register(name.clone()))?),
            Some(AddressBase::Symbol(name)) => {
                let sym = *self
                    .symbols
                    .get(name.as_str())
                    .ok_or(format!("unknown symbol {name}"))?;
                let value = match (sym, space) {
                    (Symbol::Param(o), Space::Param) => o,
                    (Symbol::Shared(o), Space::Shared) => o,
                    (Symbol::Local(o), Space::Local) => o,
                    (Symbol::Global(a), Space::Global) => a,
                    (Symbol::Shared(o), Space::Generic) => SHARED_WINDOW + o,
                    (Symbol::Local(o), Space::Generic) => LOCAL_WINDOW + o,
                    (Symbol::Global(a), Space::Generic) => a,
                    (sym, space) => return Err(format!("symbol {name} ({sym:?}) addressed in {space:?} space")),
                };
                Src::Imm(value)
            }
        };
        Ok(Addr { base, offset: *offset })
    }

    fn instruction(&mut self, inst: &ast::Instruction) -> Result<Op, String> {
        let mut m = Mods::new(&inst.modifiers);
        let ops = &inst.operands;
        let op = match inst.opcode.as_str() {
            "mov" => self.mov(&mut m, ops)?,
            "ld" => self.ld(&mut m, ops)?,
            "st" => self.st(&mut m, ops)?,
            "cvta" => {
                let to = m.flag("to");
                let space = m.space().ok_or("cvta needs a state space")?;
                let ty = m.ty()?;
                expect(ops, 2)?;
                Op::Cvta {
                    space,
                    to_generic: !to,
                    d: self.reg(&ops[0])?,
                    a: self.src(&ops[1], ty)?,
                }
            }
            "add" | "sub" | "min" | "max" | "and" | "or" | "xor" | "div" | "rem" | "shl" | "shr" | "copysign" => {
                self.binary(inst.opcode.as_str(), &mut m, ops)?
            }
            "mul" => self.mul(&mut m, ops)?,
            "mad" => self.mad(&mut m, ops)?,
            "fma" => {
                let mode = m.float_mode(true)?.mode;
                let ty = m.ty()?;
                expect(ops, 4)?;
                check_float_mode(float_ty(ty)?, mode)?;
                Op::Fma {
                    ty: float_ty(ty)?,
                    mode,
                    d: self.reg(&ops[0])?,
                    a: self.src(&ops[1], ty)?,
                    b: self.src(&ops[2], ty)?,
                    c: self.src(&ops[3], ty)?,
                }
            }
            "neg" | "abs" | "not" | "cnot" | "popc" | "clz" | "brev" | "sqrt" | "rcp" | "rsqrt" | "ex2" | "lg2"
            | "sin" | "cos" | "tanh" => self.unary(inst.opcode.as_str(), &mut m, ops)?,
            "setp" => self.setp(&mut m, ops)?,
            "selp" => {
                let ty = m.ty()?;
                expect(ops, 4)?;
                Op::Selp {
                    d: self.reg(&ops[0])?,
                    a: self.src(&ops[1], ty)?,
                    b: self.src(&ops[2], ty)?,
                    p: self.pred_src(&ops[3])?,
                    bits: (ty.bytes() * 8) as u8,
                }
            }
            "cvt" => self.cvt(&mut m, ops)?,
            "bfi" => {
                let ty = m.ty()?;
                expect(ops, 5)?;
                Op::Bfi {
                    bits: ty.bytes() * 8,
                    d: self.reg(&ops[0])?,
                    a: self.src(&ops[1], ty)?,
                    b: self.src(&ops[2], ty)?,
                    pos: self.src(&ops[3], Type::U32)?,
                    len: self.src(&ops[4], Type::U32)?,
                }
            }
            "bfe" => {
                let ty = m.ty()?;
                expect(ops, 4)?;
                Op::Bfe {
                    ty: int_ty(ty)?,
                    d: self.reg(&ops[0])?,
                    a: self.src(&ops[1], ty)?,
                    pos: self.src(&ops[2], Type::U32)?,
                    len: self.src(&ops[3], Type::U32)?,
                }
            }
            "prmt" => {
                let ty = m.ty()?;
                if ty != Type::B32 {
                    return Err("prmt needs .b32".into());
                }
                expect(ops, 4)?;
                Op::Prmt {
                    d: self.reg(&ops[0])?,
                    a: self.src(&ops[1], ty)?,
                    b: self.src(&ops[2], ty)?,
                    c: self.src(&ops[3], ty)?,
                }
            }
            "bra" => {
                let uni = m.flag("uni");
                expect(ops, 1)?;
                let Operand::Symbol(label, 0) = &ops[0] else {
                    return Err("bra needs a label".into());
                };
                let target = *self.labels.get(label).ok_or(format!("unknown label {label}"))?;
                Op::Bra { target, uni }
            }
            "ret" | "exit" => {
                m.flag("uni");
                expect(ops, 0)?;
                Op::Exit
            }
            "trap" => Op::Trap,
            "bar" | "barrier" => self.bar(&mut m, ops)?,
            "shfl" => {
                m.require("sync")?;
                let mode = match m.take(&["up", "down", "bfly", "idx"]) {
                    Some("up") => ShflMode::Up,
                    Some("down") => ShflMode::Down,
                    Some("bfly") => ShflMode::Bfly,
                    Some("idx") => ShflMode::Idx,
                    _ => return Err("shfl needs a mode".into()),
                };
                let ty = m.ty()?;
                if ty != Type::B32 {
                    return Err("shfl.sync needs .b32".into());
                }
                expect(ops, 5)?;
                let (d, p) = match &ops[0] {
                    Operand::RegisterPair(r, p) => (self.reg(&Operand::Register(r.clone()))?, Some(self.pred(p)?)),
                    other => (self.reg(other)?, None),
                };
                Op::Shfl {
                    mode,
                    d,
                    p,
                    a: self.src(&ops[1], Type::B32)?,
                    b: self.src(&ops[2], Type::B32)?,
                    c: self.src(&ops[3], Type::B32)?,
                    mask: self.src(&ops[4], Type::B32)?,
                }
            }
            "vote" => {
                m.require("sync")?;
                let mode = match m.take(&["all", "any", "uni", "ballot"]) {
                    Some("all") => VoteMode::All,
                    Some("any") => VoteMode::Any,
                    Some("uni") => VoteMode::Uni,
                    Some("ballot") => VoteMode::Ballot,
                    _ => return Err("vote needs a mode".into()),
                };
                let ty = m.ty()?;
                expect(ops, 3)?;
                let d = match (mode, ty) {
                    (VoteMode::Ballot, Type::B32) => VoteDst::Reg(self.reg(&ops[0])?),
                    (VoteMode::Ballot, _) => return Err("vote.ballot needs .b32".into()),
                    (_, Type::Pred) => VoteDst::Pred(self.pred_dst(&ops[0])?),
                    _ => return Err("vote needs .pred".into()),
                };
                Op::Vote {
                    mode,
                    d,
                    a: self.pred_src(&ops[1])?,
                    mask: self.src(&ops[2], Type::B32)?,
                }
            }
            "atom" | "red" => self.atom(inst.opcode == "atom", &mut m, ops)?,
            "cp" => self.cp(&mut m, ops)?,
            "mma" => self.mma(&mut m, ops)?,
            other => return Err(format!("instruction `{other}` is not implemented")),
        };
        m.finish()?;
        Ok(op)
    }

    fn mov(&mut self, m: &mut Mods, ops: &[Operand]) -> Result<Op, String> {
        let ty = m.ty()?;
        expect(ops, 2)?;
        if ty == Type::Pred {
            let d = self.pred_dst(&ops[0])?;
            return Ok(match &ops[1] {
                Operand::Int(v) => Op::PredConst { d, value: *v != 0 },
                a => Op::PredMov {
                    d,
                    a: self.pred_src(a)?,
                },
            });
        }
        let bits = (ty.bytes() * 8) as u8;
        match (&ops[0], &ops[1]) {
            (Operand::Vector(parts), a) => {
                let part_bits = bits / parts.len() as u8;
                let parts = parts
                    .iter()
                    .map(|p| match p {
                        Operand::Sink => Ok(None),
                        p => self.reg(p).map(Some),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Op::Unpack {
                    parts,
                    a: self.src(a, ty)?,
                    part_bits,
                })
            }
            (d, Operand::Vector(parts)) => {
                let part_bits = bits / parts.len() as u8;
                let part_ty = uint_of_bits(part_bits)?;
                let parts = parts
                    .iter()
                    .map(|p| self.src(p, part_ty))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Op::Pack {
                    d: self.reg(d)?,
                    parts,
                    part_bits,
                })
            }
            (d, a) => Ok(Op::Mov {
                d: self.reg(d)?,
                a: self.src(a, ty)?,
                bits,
            }),
        }
    }

    /// The cache and ordering qualifiers of `ld`/`st` that do not change a single thread's result;
    /// whether `.nc` was among them.
    fn memory_qualifiers(m: &mut Mods) -> Result<bool, String> {
        let nc = m.flag("nc");
        while m
            .take(&[
                "ca",
                "cg",
                "cs",
                "lu",
                "cv",
                "wb",
                "wt",
                "weak",
                "volatile",
                "L1::evict_normal",
                "L1::evict_last",
                "L1::no_allocate",
                "L2::64B",
                "L2::128B",
                "L2::256B",
            ])
            .is_some()
        {}
        if let Some(order) = m.take(&["relaxed", "acquire", "release"]) {
            return Err(format!(".{order} memory ordering is not supported"));
        }
        Ok(nc)
    }

    fn vector(m: &mut Mods) -> u8 {
        match m.take(&["v2", "v4"]) {
            Some("v2") => 2,
            Some("v4") => 4,
            _ => 1,
        }
    }

    fn ld(&mut self, m: &mut Mods, ops: &[Operand]) -> Result<Op, String> {
        let space = m.space().unwrap_or(Space::Generic);
        let read_only = Self::memory_qualifiers(m)?;
        let count = Self::vector(m);
        let ty = m.ty()?;
        expect(ops, 2)?;
        let dsts: Vec<&Operand> = match &ops[0] {
            Operand::Vector(v) => v.iter().collect(),
            single => vec![single],
        };
        if dsts.len() != count as usize {
            return Err(format!("{} destinations for a .v{count} load", dsts.len()));
        }
        let mut d = [None; 4];
        let mut dst_bits = 0;
        for (i, op) in dsts.iter().enumerate() {
            if !matches!(op, Operand::Sink) {
                d[i] = Some(self.reg(op)?);
                dst_bits = self.reg_bits(op)?;
            }
        }
        let signed = matches!(ty, Type::S8 | Type::S16 | Type::S32);
        Ok(Op::Ld {
            space,
            bytes: ty.bytes() as u8,
            count,
            extend: if signed {
                Extend::Sign {
                    to_bits: dst_bits.max(ty.bytes() as u8 * 8),
                }
            } else {
                Extend::Zero
            },
            d,
            addr: self.addr(&ops[1], space)?,
            read_only,
        })
    }

    fn st(&mut self, m: &mut Mods, ops: &[Operand]) -> Result<Op, String> {
        let space = m.space().unwrap_or(Space::Generic);
        if space == Space::Param {
            return Err("stores to parameters are not supported".into());
        }
        Self::memory_qualifiers(m)?;
        let count = Self::vector(m);
        let ty = m.ty()?;
        expect(ops, 2)?;
        let srcs: Vec<&Operand> = match &ops[1] {
            Operand::Vector(v) => v.iter().collect(),
            single => vec![single],
        };
        if srcs.len() != count as usize {
            return Err(format!("{} sources for a .v{count} store", srcs.len()));
        }
        let mut a = [Src::Imm(0); 4];
        for (i, op) in srcs.iter().enumerate() {
            a[i] = self.src(op, ty)?;
        }
        Ok(Op::St {
            space,
            bytes: ty.bytes() as u8,
            count,
            a,
            addr: self.addr(&ops[0], space)?,
        })
    }

    fn binary(&mut self, opcode: &str, m: &mut Mods, ops: &[Operand]) -> Result<Op, String> {
        let float_rounded = matches!(opcode, "add" | "sub" | "div");
        let approx = opcode == "div" && m.flag("approx");
        let full = opcode == "div" && m.flag("full");
        let nan = matches!(opcode, "min" | "max") && m.flag("NaN");
        let mode = m.float_mode(false)?;
        let ty = m.ty()?;
        expect(ops, 3)?;
        if ty == Type::Pred {
            let op = match opcode {
                "and" => BoolOp::And,
                "or" => BoolOp::Or,
                "xor" => BoolOp::Xor,
                other => return Err(format!("{other}.pred is not defined")),
            };
            return Ok(Op::PredBinary {
                op,
                d: self.pred_dst(&ops[0])?,
                a: self.pred_src(&ops[1])?,
                b: self.pred_src(&ops[2])?,
            });
        }
        let d = self.reg(&ops[0])?;
        if matches!(ty, Type::F32 | Type::F64) {
            let op = match opcode {
                "add" => FloatBinary::Add,
                "sub" => FloatBinary::Sub,
                "div" if approx => FloatBinary::DivApprox,
                "div" if full => FloatBinary::DivFull,
                "div" => {
                    if mode.rounding_given.is_none() {
                        return Err("div on floats needs .rn/.rz/.rm/.rp, .approx or .full".into());
                    }
                    FloatBinary::Div
                }
                "min" if nan => FloatBinary::MinNan,
                "max" if nan => FloatBinary::MaxNan,
                "min" => FloatBinary::Min,
                "max" => FloatBinary::Max,
                "copysign" => FloatBinary::Copysign,
                other => return Err(format!("{other} is not defined on floats")),
            };
            if mode.rounding_given.is_some() && !float_rounded {
                return Err("a rounding modifier on an instruction that does not round".into());
            }
            if mode.mode.sat && op != FloatBinary::Add && op != FloatBinary::Sub {
                return Err(".sat on an instruction that does not saturate".into());
            }
            check_float_mode(float_ty(ty)?, mode.mode)?;
            return Ok(Op::FloatBinary {
                op,
                ty: float_ty(ty)?,
                mode: mode.mode,
                d,
                a: self.src(&ops[1], ty)?,
                b: self.src(&ops[2], ty)?,
            });
        }
        if mode.rounding_given.is_some() || mode.mode.ftz || mode.mode.sat {
            return Err("float modifiers on an integer instruction".into());
        }
        let op = match opcode {
            "add" => IntBinary::Add,
            "sub" => IntBinary::Sub,
            "min" => IntBinary::Min,
            "max" => IntBinary::Max,
            "and" => IntBinary::And,
            "or" => IntBinary::Or,
            "xor" => IntBinary::Xor,
            "div" => IntBinary::Div,
            "rem" => IntBinary::Rem,
            "shl" => IntBinary::Shl,
            "shr" => IntBinary::Shr,
            other => return Err(format!("{other} is not defined on integers")),
        };
        let b_ty = if matches!(op, IntBinary::Shl | IntBinary::Shr) {
            Type::U32
        } else {
            ty
        };
        Ok(Op::IntBinary {
            op,
            ty: int_ty(ty)?,
            d,
            a: self.src(&ops[1], ty)?,
            b: self.src(&ops[2], b_ty)?,
        })
    }

    fn mul(&mut self, m: &mut Mods, ops: &[Operand]) -> Result<Op, String> {
        let part = m.product_part();
        let mode = m.float_mode(false)?;
        let ty = m.ty()?;
        expect(ops, 3)?;
        let d = self.reg(&ops[0])?;
        match (part, ty) {
            (None, Type::F32 | Type::F64) => Ok(Op::FloatBinary {
                op: FloatBinary::Mul,
                mode: {
                    check_float_mode(float_ty(ty)?, mode.mode)?;
                    mode.mode
                },
                ty: float_ty(ty)?,
                d,
                a: self.src(&ops[1], ty)?,
                b: self.src(&ops[2], ty)?,
            }),
            (Some(part), _) => Ok(Op::IntBinary {
                op: part,
                ty: int_ty(ty)?,
                d,
                a: self.src(&ops[1], ty)?,
                b: self.src(&ops[2], ty)?,
            }),
            (None, _) => Err("integer mul needs .lo, .hi or .wide".into()),
        }
    }

    fn mad(&mut self, m: &mut Mods, ops: &[Operand]) -> Result<Op, String> {
        let part = m.product_part();
        let mode = m.float_mode(false)?;
        let ty = m.ty()?;
        expect(ops, 4)?;
        let d = self.reg(&ops[0])?;
        match (part, ty) {
            (None, Type::F32 | Type::F64) => {
                // mad.f32 with a rounding modifier is fma (PTX ISA: "mad.rnd.f32 is the same as fma.rnd.f32")
                if mode.rounding_given.is_none() {
                    return Err("mad on floats needs a rounding modifier".into());
                }
                check_float_mode(float_ty(ty)?, mode.mode)?;
                Ok(Op::Fma {
                    ty: float_ty(ty)?,
                    mode: mode.mode,
                    d,
                    a: self.src(&ops[1], ty)?,
                    b: self.src(&ops[2], ty)?,
                    c: self.src(&ops[3], ty)?,
                })
            }
            (Some(part), _) => {
                let wide_ty = if part == IntBinary::MulWide { widen(ty)? } else { ty };
                Ok(Op::IntMad {
                    part,
                    ty: int_ty(ty)?,
                    d,
                    a: self.src(&ops[1], ty)?,
                    b: self.src(&ops[2], ty)?,
                    c: self.src(&ops[3], wide_ty)?,
                })
            }
            (None, _) => Err("integer mad needs .lo, .hi or .wide".into()),
        }
    }

    fn unary(&mut self, opcode: &str, m: &mut Mods, ops: &[Operand]) -> Result<Op, String> {
        let approx = m.flag("approx");
        let mode = m.float_mode(false)?;
        let ty = m.ty()?;
        expect(ops, 2)?;
        if ty == Type::Pred {
            if opcode != "not" {
                return Err(format!("{opcode}.pred is not defined"));
            }
            let mut a = self.pred_src(&ops[1])?;
            a.negated = !a.negated;
            return Ok(Op::PredMov {
                d: self.pred_dst(&ops[0])?,
                a,
            });
        }
        let d = self.reg(&ops[0])?;
        if matches!(ty, Type::F32 | Type::F64) {
            let op = match (opcode, approx) {
                ("neg", false) => FloatUnary::Neg,
                ("abs", false) => FloatUnary::Abs,
                ("sqrt", false) => FloatUnary::Sqrt,
                ("sqrt", true) => FloatUnary::SqrtApprox,
                ("rcp", false) => FloatUnary::Rcp,
                ("rcp", true) => FloatUnary::RcpApprox,
                ("rsqrt", true) => FloatUnary::RsqrtApprox,
                ("ex2", true) => FloatUnary::Ex2Approx,
                ("lg2", true) => FloatUnary::Lg2Approx,
                ("sin", true) => FloatUnary::SinApprox,
                ("cos", true) => FloatUnary::CosApprox,
                ("tanh", true) => FloatUnary::TanhApprox,
                (op, a) => {
                    return Err(format!(
                        "{op}{} is not implemented on floats",
                        if a { ".approx" } else { "" }
                    ))
                }
            };
            let rounds = matches!(op, FloatUnary::Sqrt | FloatUnary::Rcp);
            if rounds && mode.rounding_given.is_none() {
                return Err(format!("{opcode} needs a rounding modifier or .approx"));
            }
            if !rounds && mode.rounding_given.is_some() {
                return Err("a rounding modifier on an instruction that does not round".into());
            }
            if mode.mode.sat {
                return Err(".sat on an instruction that does not saturate".into());
            }
            let fty = float_ty(ty)?;
            let f64_ok = matches!(
                op,
                FloatUnary::Neg | FloatUnary::Abs | FloatUnary::Sqrt | FloatUnary::Rcp
            ) || (op == FloatUnary::RsqrtApprox)
                || (op == FloatUnary::RcpApprox && mode.mode.ftz);
            if fty == FloatTy::F64 {
                if !f64_ok {
                    return Err("this instruction is not defined on f64".into());
                }
                // rcp.approx.ftz.f64 and rsqrt.approx.ftz.f64 are the f64 forms with .ftz
                if mode.mode.ftz && !matches!(op, FloatUnary::RcpApprox | FloatUnary::RsqrtApprox) {
                    return Err(".ftz on f64 arithmetic".into());
                }
            }
            return Ok(Op::FloatUnary {
                op,
                ty: float_ty(ty)?,
                mode: mode.mode,
                d,
                a: self.src(&ops[1], ty)?,
            });
        }
        if approx || mode.rounding_given.is_some() || mode.mode.ftz || mode.mode.sat {
            return Err("float modifiers on an integer instruction".into());
        }
        let op = match opcode {
            "neg" => IntUnary::Neg,
            "abs" => IntUnary::Abs,
            "not" => IntUnary::Not,
            "cnot" => IntUnary::Cnot,
            "popc" => IntUnary::Popc,
            "clz" => IntUnary::Clz,
            "brev" => IntUnary::Brev,
            other => return Err(format!("{other} is not defined on integers")),
        };
        Ok(Op::IntUnary {
            op,
            ty: int_ty(ty)?,
            d,
            a: self.src(&ops[1], ty)?,
        })
    }

    fn setp(&mut self, m: &mut Mods, ops: &[Operand]) -> Result<Op, String> {
        let names = [
            "eq", "ne", "lt", "le", "gt", "ge", "lo", "ls", "hi", "hs", "equ", "neu", "ltu", "leu", "gtu", "geu",
            "num", "nan",
        ];
        let name = m.take(&names).ok_or("setp needs a comparison")?;
        let bool_op = match m.take(&["and", "or", "xor"]) {
            Some("and") => Some(BoolOp::And),
            Some("or") => Some(BoolOp::Or),
            Some("xor") => Some(BoolOp::Xor),
            _ => None,
        };
        let ftz = m.flag("ftz");
        let ty = m.ty()?;
        let cmp = match ty {
            Type::F32 | Type::F64 => {
                if ftz && ty != Type::F32 {
                    return Err(".ftz on a non-f32 setp".into());
                }
                let c = match name {
                    "eq" => FloatCmp::Eq,
                    "ne" => FloatCmp::Ne,
                    "lt" => FloatCmp::Lt,
                    "le" => FloatCmp::Le,
                    "gt" => FloatCmp::Gt,
                    "ge" => FloatCmp::Ge,
                    "equ" => FloatCmp::Equ,
                    "neu" => FloatCmp::Neu,
                    "ltu" => FloatCmp::Ltu,
                    "leu" => FloatCmp::Leu,
                    "gtu" => FloatCmp::Gtu,
                    "geu" => FloatCmp::Geu,
                    "num" => FloatCmp::Num,
                    "nan" => FloatCmp::Nan,
                    other => return Err(format!("setp.{other} on floats")),
                };
                Compare::Float(c, float_ty(ty)?, ftz)
            }
            _ => {
                if ftz {
                    return Err(".ftz on an integer setp".into());
                }
                let c = match name {
                    "eq" => IntCmp::Eq,
                    "ne" => IntCmp::Ne,
                    "lt" => IntCmp::Lt,
                    "le" => IntCmp::Le,
                    "gt" => IntCmp::Gt,
                    "ge" => IntCmp::Ge,
                    "lo" => IntCmp::Lo,
                    "ls" => IntCmp::Ls,
                    "hi" => IntCmp::Hi,
                    "hs" => IntCmp::Hs,
                    other => return Err(format!("setp.{other} on integers")),
                };
                Compare::Int(c, int_ty(ty)?)
            }
        };
        let n = if bool_op.is_some() { 4 } else { 3 };
        expect(ops, n)?;
        let (d, d_not) = match &ops[0] {
            Operand::RegisterPair(p, q) => (Some(self.pred(p)?), Some(self.pred(q)?)),
            Operand::Sink => (None, None),
            other => (Some(self.pred_dst(other)?), None),
        };
        let combine = match bool_op {
            Some(op) => Some((op, self.pred_src(&ops[3])?)),
            None => None,
        };
        Ok(Op::Setp {
            cmp,
            d,
            d_not,
            a: self.src(&ops[1], ty)?,
            b: self.src(&ops[2], ty)?,
            combine,
        })
    }

    fn cvt(&mut self, m: &mut Mods, ops: &[Operand]) -> Result<Op, String> {
        let rounding = m
            .take(&["rn", "rz", "rm", "rp", "rna", "rni", "rzi", "rmi", "rpi"])
            .map(rounding_of);
        let ftz = m.flag("ftz");
        let sat = m.flag("sat");
        let relu = m.flag("relu");
        if m.flag("satfinite") {
            return Err(".satfinite conversions are not implemented".into());
        }
        let dst_ty = m.ty()?;
        let src_ty = m.ty()?;
        if matches!(dst_ty, Type::Bf16x2 | Type::F16x2) {
            expect(ops, 3)?;
            if src_ty != Type::F32 {
                return Err("a packed conversion from a type other than f32".into());
            }
            if ftz || sat {
                return Err(".ftz/.sat on a packed conversion".into());
            }
            let Some(CvtRounding::Float(rounding)) = rounding else {
                return Err("a packed conversion needs .rn, .rz, .rm or .rp".into());
            };
            return Ok(Op::CvtPack {
                dst: if dst_ty == Type::Bf16x2 {
                    FloatType::Bf16
                } else {
                    FloatType::F16
                },
                rounding,
                relu,
                d: self.reg(&ops[0])?,
                a: self.src(&ops[1], Type::F32)?,
                b: self.src(&ops[2], Type::F32)?,
            });
        }
        expect(ops, 2)?;
        let (dst, src) = (cvt_ty(dst_ty)?, cvt_ty(src_ty)?);
        // which roundings each kind of conversion takes (PTX ISA, cvt): none between integers;
        // an integer rounding to an integer or to an integral float of the same type; a float
        // rounding when a float result may be inexact
        let ok = match (dst, src, rounding) {
            (CvtTy::Int(_), CvtTy::Int(_), None) => !relu && !ftz,
            (CvtTy::Int(_), CvtTy::Float(_), Some(CvtRounding::Int(_))) => !relu && !sat,
            (CvtTy::Float(to), CvtTy::Float(from), Some(CvtRounding::Int(_))) => to == from && !relu,
            (CvtTy::Float(_), CvtTy::Float(_), Some(CvtRounding::Float(r))) => r != Rounding::Rna,
            (CvtTy::Float(to), CvtTy::Float(from), None) => widens(to, from),
            (CvtTy::Float(_), CvtTy::Int(_), Some(CvtRounding::Float(r))) => r != Rounding::Rna && !relu && !ftz,
            (CvtTy::Tf32, CvtTy::Float(FloatType::F32), Some(CvtRounding::Float(_))) => !ftz && !sat,
            _ => false,
        };
        if !ok {
            return Err("this conversion with these modifiers is not implemented".into());
        }
        Ok(Op::Cvt {
            dst,
            src,
            rounding,
            ftz,
            sat,
            relu,
            d: self.reg(&ops[0])?,
            a: self.src(&ops[1], src_ty)?,
        })
    }

    fn bar(&mut self, m: &mut Mods, ops: &[Operand]) -> Result<Op, String> {
        if m.flag("warp") {
            m.require("sync")?;
            expect(ops, 1)?;
            return Ok(Op::WarpSync {
                mask: self.src(&ops[0], Type::B32)?,
            });
        }
        if m.take(&["arrive", "red"]).is_some() {
            return Err("only bar.sync is implemented".into());
        }
        m.take(&["sync"]);
        m.flag("aligned");
        if ops.is_empty() || ops.len() > 2 {
            return Err("bar.sync takes a barrier and an optional thread count".into());
        }
        Ok(Op::Bar {
            id: self.src(&ops[0], Type::U32)?,
            count: ops.get(1).map(|c| self.src(c, Type::U32)).transpose()?,
        })
    }

    fn atom(&mut self, returns: bool, m: &mut Mods, ops: &[Operand]) -> Result<Op, String> {
        let space = m.space().unwrap_or(Space::Generic);
        if !matches!(space, Space::Global | Space::Shared | Space::Generic) {
            return Err(format!("atomics on {space:?} memory"));
        }
        if let Some(sem) = m.take(&["relaxed", "acquire", "release", "acq_rel"]) {
            if sem != "relaxed" {
                return Err(format!(".{sem} atomics are not supported"));
            }
        }
        m.take(&["gpu", "cta", "sys"]);
        let op = match m
            .take(&["add", "min", "max", "and", "or", "xor", "exch", "cas", "inc", "dec"])
            .ok_or("atom needs an operation")?
        {
            "add" => AtomOp::Add,
            "min" => AtomOp::Min,
            "max" => AtomOp::Max,
            "and" => AtomOp::And,
            "or" => AtomOp::Or,
            "xor" => AtomOp::Xor,
            "exch" => AtomOp::Exch,
            "cas" => AtomOp::Cas,
            "inc" => AtomOp::Inc,
            _ => AtomOp::Dec,
        };
        let ty = m.ty()?;
        let aty = match ty {
            Type::F32 => AtomTy::F32,
            Type::F64 => AtomTy::F64,
            _ => AtomTy::Int(int_ty(ty)?),
        };
        if matches!(aty, AtomTy::F32 | AtomTy::F64) && op != AtomOp::Add {
            return Err("float atomics other than add are not implemented".into());
        }
        let first = usize::from(returns);
        let n = first + 2 + usize::from(op == AtomOp::Cas);
        expect(ops, n)?;
        Ok(Op::Atom {
            space,
            op,
            ty: aty,
            d: if returns { Some(self.reg(&ops[0])?) } else { None },
            addr: self.addr(&ops[first], space)?,
            b: self.src(&ops[first + 1], ty)?,
            c: if op == AtomOp::Cas {
                Some(self.src(&ops[first + 2], ty)?)
            } else {
                None
            },
        })
    }

    fn cp(&mut self, m: &mut Mods, ops: &[Operand]) -> Result<Op, String> {
        m.require("async")?;
        if m.flag("commit_group") {
            expect(ops, 0)?;
            return Ok(Op::CpAsyncCommit);
        }
        if m.flag("wait_group") {
            expect(ops, 1)?;
            let Operand::Int(n) = ops[0] else {
                return Err("cp.async.wait_group needs an immediate".into());
            };
            return Ok(Op::CpAsyncWait {
                pending: n as u32,
                all: false,
            });
        }
        if m.flag("wait_all") {
            expect(ops, 0)?;
            return Ok(Op::CpAsyncWait { pending: 0, all: true });
        }
        let cg = match m.take(&["ca", "cg"]) {
            Some(level) => level == "cg",
            None => return Err("cp.async needs .ca or .cg".into()),
        };
        m.require("shared")?;
        m.flag("cta");
        m.require("global")?;
        m.take(&["L2::64B", "L2::128B", "L2::256B"]);
        if ops.len() != 3 && ops.len() != 4 {
            return Err("cp.async takes a destination, a source, a size and an optional source size".into());
        }
        let Operand::Int(size) = ops[2] else {
            return Err("cp.async needs an immediate size".into());
        };
        if !matches!(size, 4 | 8 | 16) || (cg && size != 16) {
            return Err(format!("cp.async of {size} bytes"));
        }
        Ok(Op::CpAsync {
            dst: self.addr(&ops[0], Space::Shared)?,
            src: self.addr(&ops[1], Space::Global)?,
            size: size as u8,
            src_size: ops.get(3).map(|s| self.src(s, Type::U32)).transpose()?,
        })
    }

    fn mma(&mut self, m: &mut Mods, ops: &[Operand]) -> Result<Op, String> {
        let sparse = m.flag("sp::ordered_metadata");
        m.require("sync")?;
        m.require("aligned")?;
        let shape = m
            .take(&["m16n8k8", "m16n8k16", "m16n8k32"])
            .ok_or("mma shape not implemented")?;
        m.require("row")?;
        m.require("col")?;
        let types: Vec<Type> = (0..4).map(|_| m.ty()).collect::<Result<_, _>>()?;
        let shape = match (sparse, shape, types.as_slice()) {
            (false, "m16n8k8", [Type::F32, Type::Tf32, Type::Tf32, Type::F32]) => MmaShape::M16N8K8Tf32,
            (false, "m16n8k16", [Type::F32, Type::Bf16, Type::Bf16, Type::F32]) => MmaShape::M16N8K16Bf16,
            (true, "m16n8k32", [Type::F32, Type::Bf16, Type::Bf16, Type::F32]) => MmaShape::SpM16N8K32Bf16,
            _ => return Err("this mma shape and type combination is not implemented".into()),
        };
        let (a_regs, b_regs) = match shape {
            MmaShape::M16N8K8Tf32 => (4, 2),
            MmaShape::M16N8K16Bf16 => (4, 2),
            MmaShape::SpM16N8K32Bf16 => (4, 4),
        };
        expect(ops, if sparse { 6 } else { 4 })?;
        let regs = |op: &Operand, n: usize, this: &Self| -> Result<Vec<Operand>, String> {
            let Operand::Vector(v) = op else {
                return Err("mma operands are register vectors".into());
            };
            if v.len() != n {
                return Err(format!("an mma operand of {} registers where {n} are needed", v.len()));
            }
            let _ = this;
            Ok(v.clone())
        };
        let mut d = [0; 4];
        for (i, r) in regs(&ops[0], 4, self)?.iter().enumerate() {
            d[i] = self.reg(r)?;
        }
        let mut a = [Src::Imm(0); 4];
        for (i, r) in regs(&ops[1], a_regs, self)?.iter().enumerate() {
            a[i] = self.src(r, Type::B32)?;
        }
        let mut b = [Src::Imm(0); 4];
        for (i, r) in regs(&ops[2], b_regs, self)?.iter().enumerate() {
            b[i] = self.src(r, Type::B32)?;
        }
        let mut c = [Src::Imm(0); 4];
        for (i, r) in regs(&ops[3], 4, self)?.iter().enumerate() {
            c[i] = self.src(r, Type::F32)?;
        }
        let meta = if sparse {
            Some((self.src(&ops[4], Type::B32)?, self.src(&ops[5], Type::B32)?))
        } else {
            None
        };
        Ok(Op::Mma {
            shape,
            d,
            a,
            b,
            c,
            meta,
        })
    }
}

fn expect(ops: &[Operand], n: usize) -> Result<(), String> {
    if ops.len() == n {
        Ok(())
    } else {
        Err(format!("{} operands where {n} are expected", ops.len()))
    }
}

fn int_ty(ty: Type) -> Result<IntType, String> {
    Ok(match ty {
        Type::U8 | Type::B8 => IntType::U8,
        Type::S8 => IntType::S8,
        Type::U16 | Type::B16 => IntType::U16,
        Type::S16 => IntType::S16,
        Type::U32 | Type::B32 => IntType::U32,
        Type::S32 => IntType::S32,
        Type::U64 | Type::B64 => IntType::U64,
        Type::S64 => IntType::S64,
        other => return Err(format!(".{other:?} is not an integer type")),
    })
}

/// `.ftz` and `.sat` exist on f32 arithmetic only.
fn check_float_mode(ty: FloatTy, mode: FloatMode) -> Result<(), String> {
    if ty == FloatTy::F64 && (mode.ftz || mode.sat) {
        return Err(".ftz/.sat on f64 arithmetic".into());
    }
    Ok(())
}

fn float_ty(ty: Type) -> Result<FloatTy, String> {
    match ty {
        Type::F32 => Ok(FloatTy::F32),
        Type::F64 => Ok(FloatTy::F64),
        other => Err(format!(".{other:?} arithmetic is not implemented")),
    }
}

fn cvt_ty(ty: Type) -> Result<CvtTy, String> {
    Ok(match ty {
        Type::F16 => CvtTy::Float(FloatType::F16),
        Type::Bf16 => CvtTy::Float(FloatType::Bf16),
        Type::Tf32 => CvtTy::Tf32,
        Type::F32 => CvtTy::Float(FloatType::F32),
        Type::F64 => CvtTy::Float(FloatType::F64),
        other => CvtTy::Int(int_ty(other)?),
    })
}

/// Whether converting `from` to `to` is exact (a widening needs no rounding modifier).
fn widens(to: FloatType, from: FloatType) -> bool {
    matches!(
        (from, to),
        (FloatType::F16 | FloatType::Bf16, FloatType::F32 | FloatType::F64) | (FloatType::F32, FloatType::F64)
    )
}

fn widen(ty: Type) -> Result<Type, String> {
    Ok(match ty {
        Type::U16 => Type::U32,
        Type::S16 => Type::S32,
        Type::U32 => Type::U64,
        Type::S32 => Type::S64,
        other => return Err(format!(".wide of .{other:?}")),
    })
}

fn uint_of_bits(bits: u8) -> Result<Type, String> {
    Ok(match bits {
        8 => Type::U8,
        16 => Type::U16,
        32 => Type::U32,
        64 => Type::U64,
        other => return Err(format!("a {other}-bit part")),
    })
}

fn rounding_of(name: &str) -> CvtRounding {
    match name {
        "rn" => CvtRounding::Float(Rounding::Rn),
        "rz" => CvtRounding::Float(Rounding::Rz),
        "rm" => CvtRounding::Float(Rounding::Rm),
        "rp" => CvtRounding::Float(Rounding::Rp),
        "rna" => CvtRounding::Float(Rounding::Rna),
        "rni" => CvtRounding::Int(IntRounding::Rni),
        "rzi" => CvtRounding::Int(IntRounding::Rzi),
        "rmi" => CvtRounding::Int(IntRounding::Rmi),
        _ => CvtRounding::Int(IntRounding::Rpi),
    }
}

/// The float rounding of an arithmetic instruction's modifier.
fn float_rounding(name: &str) -> Rounding {
    match rounding_of(name) {
        CvtRounding::Float(r) => r,
        CvtRounding::Int(_) => unreachable!("float_mode takes rn, rz, rm and rp only"),
    }
}

/// A float mode and whether a rounding modifier was written.
struct ParsedMode {
    mode: FloatMode,
    rounding_given: Option<Rounding>,
}

/// An instruction's modifiers, consumed as the decoder recognises them; any left over is an error.
struct Mods<'a> {
    list: &'a [String],
    used: Vec<bool>,
}

impl<'a> Mods<'a> {
    fn new(list: &'a [String]) -> Self {
        Self {
            list,
            used: vec![false; list.len()],
        }
    }

    /// Consumes the first unused modifier that is one of `names`.
    fn take(&mut self, names: &[&'static str]) -> Option<&'static str> {
        for (i, m) in self.list.iter().enumerate() {
            if !self.used[i] {
                if let Some(n) = names.iter().find(|n| **n == m.as_str()) {
                    self.used[i] = true;
                    return Some(n);
                }
            }
        }
        None
    }

    /// `mul`/`mad`'s `.lo`, `.hi` or `.wide`.
    fn product_part(&mut self) -> Option<IntBinary> {
        match self.take(&["lo", "hi", "wide"]) {
            Some("lo") => Some(IntBinary::MulLo),
            Some("hi") => Some(IntBinary::MulHi),
            Some("wide") => Some(IntBinary::MulWide),
            _ => None,
        }
    }

    fn flag(&mut self, name: &'static str) -> bool {
        self.take(&[name]).is_some()
    }

    fn require(&mut self, name: &'static str) -> Result<(), String> {
        if self.flag(name) {
            Ok(())
        } else {
            Err(format!("missing .{name}"))
        }
    }

    /// Consumes the first unused type modifier.
    fn ty(&mut self) -> Result<Type, String> {
        for (i, m) in self.list.iter().enumerate() {
            if !self.used[i] {
                if let Some(t) = Type::from_name(m) {
                    self.used[i] = true;
                    return Ok(t);
                }
            }
        }
        Err("missing a type".into())
    }

    fn space(&mut self) -> Option<Space> {
        match self.take(&["global", "shared", "local", "param", "const"]) {
            Some("global") => Some(Space::Global),
            Some("shared") => Some(Space::Shared),
            Some("local") => Some(Space::Local),
            Some("param") => Some(Space::Param),
            Some(_) => Some(Space::Global),
            None => None,
        }
    }

    /// `.rn/.rz/.rm/.rp`, `.ftz`, `.sat`; `required` makes the rounding mandatory.
    fn float_mode(&mut self, required: bool) -> Result<ParsedMode, String> {
        let rounding_given = self.take(&["rn", "rz", "rm", "rp"]).map(float_rounding);
        if required && rounding_given.is_none() {
            return Err("missing a rounding modifier".into());
        }
        let ftz = self.flag("ftz");
        let sat = self.flag("sat");
        Ok(ParsedMode {
            mode: FloatMode {
                rounding: rounding_given.unwrap_or(Rounding::Rn),
                ftz,
                sat,
            },
            rounding_given,
        })
    }

    /// Every modifier must have been understood.
    fn finish(&self) -> Result<(), String> {
        match self.list.iter().zip(&self.used).find(|(_, u)| !**u) {
            Some((m, _)) => Err(format!("modifier .{m} is not implemented here")),
            None => Ok(()),
        }
    }
}
