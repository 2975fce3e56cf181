//! The syntax tree of a PTX module, as the parser reads it: directives, declarations and
//! instructions with their modifiers and operands spelled out, and no meaning attached yet. The
//! decoder (`exec::decode`) gives instructions their meaning and rejects what it does not know.
//!
//! Every instruction keeps its PTX line and the `.loc` in force where it stands, so that any
//! report (an unsupported instruction at load, a fault at run time) can name both the PTX line and
//! the `.cu` file and line.

use std::collections::BTreeMap;

/// One PTX module (one `.ptx` text).
#[derive(Debug, Clone, Default)]
pub struct Module {
    /// `.version major.minor`
    pub version: (u32, u32),
    /// `.target` names, e.g. `["sm_80"]`.
    pub target: Vec<String>,
    /// `.address_size` (64 for everything nvcc emits for 64-bit hosts).
    pub address_size: u32,
    /// `.file index "path"`: the source files that `.loc` refers to.
    pub files: BTreeMap<u32, String>,
    /// Module-scope variables (`.global`, `.const`, `.shared`), in declaration order.
    pub variables: Vec<Variable>,
    /// Kernels (`.entry`) and device functions (`.func`), in declaration order.
    pub functions: Vec<Function>,
    /// Labelled strings of the `.debug_str` section (`$L__info_string0` → a mangled function name),
    /// which `.loc ..., function_name $L__info_stringN` refers to.
    pub debug_strings: BTreeMap<String, String>,
}

/// A state space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateSpace {
    Global,
    Shared,
    Local,
    Const,
    Param,
    Reg,
}

/// A fundamental type as PTX spells it (`.b32`, `.f32`, `.bf16x2`, `.pred`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Type {
    B8,
    B16,
    B32,
    B64,
    B128,
    U8,
    U16,
    U32,
    U64,
    S8,
    S16,
    S32,
    S64,
    F16,
    F16x2,
    Bf16,
    Bf16x2,
    Tf32,
    F32,
    F64,
    Pred,
}

impl Type {
    /// The type a modifier names (`"f32"` → `F32`), or `None` if the word is not a type.
    pub fn from_name(name: &str) -> Option<Type> {
        Some(match name {
            "b8" => Type::B8,
            "b16" => Type::B16,
            "b32" => Type::B32,
            "b64" => Type::B64,
            "b128" => Type::B128,
            "u8" => Type::U8,
            "u16" => Type::U16,
            "u32" => Type::U32,
            "u64" => Type::U64,
            "s8" => Type::S8,
            "s16" => Type::S16,
            "s32" => Type::S32,
            "s64" => Type::S64,
            "f16" => Type::F16,
            "f16x2" => Type::F16x2,
            "bf16" => Type::Bf16,
            "bf16x2" => Type::Bf16x2,
            "tf32" => Type::Tf32,
            "f32" => Type::F32,
            "f64" => Type::F64,
            "pred" => Type::Pred,
            _ => return None,
        })
    }

    /// Size in bytes (a predicate counts as 1, as in `.param .pred` never used by nvcc).
    pub fn bytes(self) -> u32 {
        match self {
            Type::B8 | Type::U8 | Type::S8 | Type::Pred => 1,
            Type::B16 | Type::U16 | Type::S16 | Type::F16 | Type::Bf16 => 2,
            Type::B32 | Type::U32 | Type::S32 | Type::F32 | Type::F16x2 | Type::Bf16x2 | Type::Tf32 => 4,
            Type::B64 | Type::U64 | Type::S64 | Type::F64 => 8,
            Type::B128 => 16,
        }
    }
}

/// A variable declaration: module-scope `.global`/`.const`/`.shared`, or a `.shared`/`.local`
/// inside a function body (e.g. `__local_depot0`, a `__shared__` array), or `.extern .shared`
/// (dynamic shared memory, `dims == [None]`).
#[derive(Debug, Clone)]
pub struct Variable {
    pub space: StateSpace,
    /// `.extern`: storage defined elsewhere (for `.shared`: the launch's dynamic shared memory).
    pub is_extern: bool,
    /// `.visible` / `.weak`: linkage, kept for completeness.
    pub linkage: Option<String>,
    /// `.align N`, if given.
    pub align: Option<u32>,
    pub ty: Type,
    pub name: String,
    /// Array dimensions: `[]` for a scalar, `[Some(128)]` for `name[128]`, `[None]` for `name[]`.
    pub dims: Vec<Option<u64>>,
    /// `= {...}` or `= value`: the initialiser's elements, flattened, as written.
    pub init: Option<Vec<Operand>>,
    /// PTX line of the declaration (1-based).
    pub line: u32,
}

impl Variable {
    /// Total size in bytes, `None` for an unsized (`[]`) array.
    pub fn size_bytes(&self) -> Option<u64> {
        self.dims
            .iter()
            .try_fold(u64::from(self.ty.bytes()), |acc, d| d.map(|d| acc * d))
    }
}

/// `.entry` (a kernel) or `.func` (a device function).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionKind {
    Entry,
    Func,
}

/// A kernel or device function with its body.
#[derive(Debug, Clone)]
pub struct Function {
    pub kind: FunctionKind,
    /// `.visible`, `.weak`, `.extern`, or none.
    pub linkage: Option<String>,
    pub name: String,
    /// `.func`'s return parameters (`.func (.param .b32 r) f(...)`); empty for kernels.
    pub returns: Vec<Param>,
    pub params: Vec<Param>,
    /// Performance directives between the signature and the body.
    pub directives: Vec<PerfDirective>,
    /// `.reg` declarations, the body's inner scopes included. A register declared in an inner
    /// `{ }` scope (nvcc's `{ .reg .b32 %temp; ... }`) is renamed by the parser to a name unique
    /// in the function (`%temp$3`), and its uses inside that scope with it, so the body is flat.
    pub registers: Vec<RegisterDecl>,
    /// `.shared` / `.local` variables declared in the body.
    pub variables: Vec<Variable>,
    /// The body, flattened: labels and instructions in order. `None` for a declaration only.
    pub body: Option<Vec<Statement>>,
    /// PTX line of the `.entry`/`.func` keyword.
    pub line: u32,
}

/// A kernel parameter: `.param .u64 name`, `.param .align 8 .b8 name[48]`.
#[derive(Debug, Clone)]
pub struct Param {
    pub ty: Type,
    pub name: String,
    pub align: Option<u32>,
    /// `[]` for a scalar, `[Some(48)]` for a byte array (a struct passed by value).
    pub dims: Vec<Option<u64>>,
    /// `.ptr .global .align 16` attributes, if written (recorded, not needed by the executor).
    pub ptr_space: Option<StateSpace>,
}

impl Param {
    pub fn size_bytes(&self) -> u64 {
        self.dims
            .iter()
            .fold(u64::from(self.ty.bytes()), |acc, d| acc * d.unwrap_or(1))
    }

    /// Alignment: the declared one, else the element type's size.
    pub fn alignment(&self) -> u64 {
        self.align.map_or(u64::from(self.ty.bytes()), u64::from)
    }
}

/// `.reg .f32 %f<12>;` (a range: `%f0` .. `%f11`) or `.reg .b32 %temp;` (one register).
#[derive(Debug, Clone)]
pub struct RegisterDecl {
    pub ty: Type,
    /// The name, or the prefix of a range (`%f`).
    pub name: String,
    /// `Some(n)` for `name<n>`: registers `name0` .. `name{n-1}`.
    pub count: Option<u32>,
}

/// `.maxntid x, y, z`, `.reqntid x, y, z`, `.minnctapersm n`, `.maxnreg n`, ...: the directive's
/// name without its dot and its numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerfDirective {
    pub name: String,
    pub values: Vec<u64>,
}

#[derive(Debug, Clone)]
pub enum Statement {
    /// `$L__BB0_3:`
    Label(String),
    Instruction(Instruction),
}

/// One instruction as written: `@!%p1 ld.global.nc.v4.f32 {%f1, %f2, %f3, %f4}, [%rd7+16];`
#[derive(Debug, Clone)]
pub struct Instruction {
    /// `@%p1` or `@!%p1`.
    pub guard: Option<Guard>,
    /// The first word of the mnemonic: `ld`.
    pub opcode: String,
    /// The rest of the mnemonic split at dots, in order: `["global", "nc", "v4", "f32"]`. A `::`
    /// qualifier stays with its word: `mma.sp::ordered_metadata.sync` → `["sp::ordered_metadata",
    /// "sync", ...]`.
    pub modifiers: Vec<String>,
    pub operands: Vec<Operand>,
    /// PTX line (1-based).
    pub line: u32,
    /// The `.loc` in force at this instruction, if any.
    pub loc: Option<SourceLoc>,
}

/// `@%p` (execute where true) or `@!%p` (where false).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    pub predicate: String,
    pub negated: bool,
}

/// `.loc file line column[, function_name $L__info_stringN, inlined_at file line column]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceLoc {
    pub file: u32,
    pub line: u32,
    pub column: u32,
    /// Where the inlined function containing this location was called from.
    pub inlined_at: Option<(u32, u32, u32)>,
    /// `function_name $L__info_stringN`: the inlined function this location lies in, as the
    /// label's number N (nvcc names these labels `$L__info_string<N>`); its name is
    /// `Module::debug_strings["$L__info_stringN"]`. A number, not the label, so the location
    /// stays `Copy`.
    pub function_name: Option<u32>,
}

/// An operand as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A register or special register: `%r5`, `%tid.x`, `%SPL`.
    Register(String),
    /// `!%p`: a negated predicate source.
    NotRegister(String),
    /// `%r35|%p6`: a value destination with a predicate destination (`shfl.sync`, `setp`).
    RegisterPair(String, String),
    /// `_`: a sink destination.
    Sink,
    /// An integer literal (decimal, `0x` hex, `0` octal, `0b` binary, a trailing `U` allowed),
    /// with a minus sign applied: the two's-complement bits.
    Int(i64),
    /// `0fXXXXXXXX`: the bits of an f32.
    F32Bits(u32),
    /// `0dXXXXXXXXXXXXXXXX`: the bits of an f64.
    F64Bits(u64),
    /// A decimal floating-point literal (`1.5`), as f64.
    Float(f64),
    /// `{a, b, c, d}`: a vector of registers (or sinks).
    Vector(Vec<Operand>),
    /// `[base]`, `[base+offset]`, `[base+-16]`, `[offset]`.
    Address { base: Option<AddressBase>, offset: i64 },
    /// A label, variable or function name used as a value: `bra $L__BB0_3`, `mov.u64 %rd1, smem`.
    /// Also `name+offset` written outside brackets (`mov.u64 %rd1, smem+16` → offset in the pair).
    Symbol(String, i64),
}

/// The base of an address operand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressBase {
    Register(String),
    Symbol(String),
}
