//! The PTX parser: recursive descent over the lexer's tokens, one token of lookahead. It accepts
//! what nvcc emits (module header, variables, kernels and device functions, debug sections) and
//! reports anything else as a [`ParseError`] naming the offending token.

use std::fmt;

use super::ast::{
    AddressBase, Function, FunctionKind, Guard, Instruction, Module, Operand, Param, PerfDirective, RegisterDecl,
    SourceLoc, StateSpace, Statement, Type, Variable,
};
use super::lexer::{Kind, LexError, Lexer, Token};

/// A syntax error: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PTX line {}, column {}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

impl From<LexError> for ParseError {
    fn from(e: LexError) -> Self {
        ParseError {
            line: e.line,
            column: e.column,
            message: e.message,
        }
    }
}

/// Parses one module's text.
pub fn parse(source: &str) -> Result<Module, ParseError> {
    Parser::new(source)?.module()
}

/// Every parsing step can fail with a located error.
type PResult<T> = Result<T, ParseError>;

/// The registers one inner `{ }` scope of a body declares, with the unique names they get.
#[derive(Default)]
struct Scope<'a> {
    /// `.reg .b32 %temp;` → `("%temp", "%temp$3")`.
    singles: Vec<(&'a str, String)>,
    /// `.reg .f32 %f<4>;` → `("%f", 4, "%f$3_")`: `%f1` becomes `%f$3_1`.
    ranges: Vec<(&'a str, u32, String)>,
}

/// Function header directives with numeric arguments (`.maxntid 256, 1, 1`) or none (`.noreturn`).
const PERF_DIRECTIVES: &[&str] = &[
    ".maxntid",
    ".reqntid",
    ".minnctapersm",
    ".maxnctapersm",
    ".maxnreg",
    ".maxclusterrank",
    ".reqnctapercluster",
    ".explicitcluster",
    ".noreturn",
];

struct Parser<'a> {
    lexer: Lexer<'a>,
    /// The lookahead token.
    tok: Token<'a>,
    /// The inner scopes open in the current body, innermost last.
    scopes: Vec<Scope<'a>>,
    /// Inner-scope registers renamed so far in the current function (makes the names unique).
    renamed: u32,
}

/// How a token reads in a message.
fn describe(tok: &Token) -> String {
    if tok.kind == Kind::Eof {
        "end of input".to_string()
    } else {
        format!("`{}`", tok.text)
    }
}

fn error_at(tok: &Token, message: String) -> ParseError {
    ParseError {
        line: tok.line,
        column: tok.column,
        message,
    }
}

fn state_space(word: &str) -> Option<StateSpace> {
    Some(match word {
        ".global" => StateSpace::Global,
        ".shared" => StateSpace::Shared,
        ".local" => StateSpace::Local,
        ".const" => StateSpace::Const,
        ".param" => StateSpace::Param,
        ".reg" => StateSpace::Reg,
        _ => return None,
    })
}

/// An unsigned integer literal: decimal, `0x` hex, `0` octal or `0b` binary, with an optional `U`
/// suffix; `None` if malformed or over 64 bits.
fn parse_uint(text: &str) -> Option<u64> {
    let text = text.strip_suffix('U').unwrap_or(text);
    let (digits, radix) = if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        (hex, 16)
    } else if let Some(bin) = text.strip_prefix("0b").or_else(|| text.strip_prefix("0B")) {
        (bin, 2)
    } else if text.len() > 1 && text.starts_with('0') {
        (&text[1..], 8)
    } else {
        (text, 10)
    };
    // `from_str_radix` would accept a sign, which is no part of a PTX literal.
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// A numeric literal token as an operand (negated if a minus sign preceded it).
fn number(tok: &Token, negative: bool) -> PResult<Operand> {
    let text = tok.text;
    let bad = || error_at(tok, format!("bad numeric literal `{text}`"));
    // The digits after a two-character `0f`/`0d` prefix: exactly `digits` hex digits.
    let hex_bits = |digits: usize| {
        let hex = &text[2..];
        let valid = hex.len() == digits && hex.bytes().all(|c| c.is_ascii_hexdigit());
        valid
            .then(|| u64::from_str_radix(hex, 16).ok())
            .flatten()
            .ok_or_else(bad)
    };
    let operand = if text.starts_with("0f") || text.starts_with("0F") {
        Operand::F32Bits(hex_bits(8)? as u32)
    } else if text.starts_with("0d") || text.starts_with("0D") {
        Operand::F64Bits(hex_bits(16)?)
    } else if !text.starts_with("0x") && !text.starts_with("0X") && text.contains(['.', 'e', 'E']) {
        let value: f64 = text.parse().map_err(|_| bad())?;
        return Ok(Operand::Float(if negative { -value } else { value }));
    } else {
        let bits = parse_uint(text).ok_or_else(bad)? as i64;
        return Ok(Operand::Int(if negative { bits.wrapping_neg() } else { bits }));
    };
    if negative {
        return Err(error_at(
            tok,
            format!("a minus sign cannot apply to the bit literal `{text}`"),
        ));
    }
    Ok(operand)
}

impl<'a> Parser<'a> {
    fn new(source: &'a str) -> PResult<Self> {
        let mut lexer = Lexer::new(source);
        let tok = lexer.next_token()?;
        Ok(Parser {
            lexer,
            tok,
            scopes: Vec::new(),
            renamed: 0,
        })
    }

    /// Returns the lookahead token and reads the next one.
    fn bump(&mut self) -> PResult<Token<'a>> {
        let next = self.lexer.next_token()?;
        Ok(std::mem::replace(&mut self.tok, next))
    }

    fn unexpected(&self, expected: &str) -> ParseError {
        error_at(&self.tok, format!("expected {expected}, found {}", describe(&self.tok)))
    }

    fn eat_punct(&mut self, c: u8) -> PResult<bool> {
        if self.tok.is_punct(c) {
            self.bump()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn expect_punct(&mut self, c: u8) -> PResult<Token<'a>> {
        if self.tok.is_punct(c) {
            self.bump()
        } else {
            Err(self.unexpected(&format!("`{}`", c as char)))
        }
    }

    fn eat_word(&mut self, word: &str) -> PResult<bool> {
        if self.tok.kind == Kind::Word && self.tok.text == word {
            self.bump()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// A name (not a directive, not a register): `smem`, `$L__BB0_3`, `kernel_param_0`.
    fn expect_name(&mut self, what: &str) -> PResult<Token<'a>> {
        if self.tok.kind == Kind::Word && !self.tok.text.starts_with(['.', '%']) {
            self.bump()
        } else {
            Err(self.unexpected(what))
        }
    }

    fn expect_u64(&mut self, what: &str) -> PResult<u64> {
        if self.tok.kind != Kind::Number {
            return Err(self.unexpected(what));
        }
        let tok = self.bump()?;
        parse_uint(tok.text).ok_or_else(|| error_at(&tok, format!("bad integer literal `{}`", tok.text)))
    }

    fn expect_u32(&mut self, what: &str) -> PResult<u32> {
        let tok = self.tok;
        let value = self.expect_u64(what)?;
        u32::try_from(value).map_err(|_| error_at(&tok, format!("`{}` does not fit 32 bits", tok.text)))
    }

    /// A type modifier: `.f32` → `Type::F32`.
    fn expect_type(&mut self) -> PResult<Type> {
        let ty = (self.tok.kind == Kind::Word)
            .then(|| self.tok.text.strip_prefix('.').and_then(Type::from_name))
            .flatten();
        match ty {
            Some(ty) => {
                self.bump()?;
                Ok(ty)
            }
            None => Err(self.unexpected("a type")),
        }
    }

    /// `.align N`, if present.
    fn align(&mut self) -> PResult<Option<u32>> {
        if self.eat_word(".align")? {
            Ok(Some(self.expect_u32("an alignment")?))
        } else {
            Ok(None)
        }
    }

    /// Array dimensions: `[128]`, `[]`, `[2][3]`; empty for a scalar.
    fn dims(&mut self) -> PResult<Vec<Option<u64>>> {
        let mut dims = Vec::new();
        while self.eat_punct(b'[')? {
            if self.eat_punct(b']')? {
                dims.push(None);
            } else {
                dims.push(Some(self.expect_u64("an array size")?));
                self.expect_punct(b']')?;
            }
        }
        Ok(dims)
    }

    fn module(mut self) -> PResult<Module> {
        let mut module = Module::default();
        loop {
            let tok = self.tok;
            match (tok.kind, tok.text) {
                (Kind::Eof, _) => return Ok(module),
                (Kind::Word, ".version") => {
                    self.bump()?;
                    let version = self.bump()?;
                    let parsed = (version.kind == Kind::Number)
                        .then(|| version.text.split_once('.'))
                        .flatten()
                        .and_then(|(major, minor)| Some((major.parse().ok()?, minor.parse().ok()?)));
                    module.version = parsed.ok_or_else(|| {
                        error_at(
                            &version,
                            format!("expected a version `major.minor`, found {}", describe(&version)),
                        )
                    })?;
                }
                (Kind::Word, ".target") => {
                    self.bump()?;
                    loop {
                        module.target.push(self.expect_name("a target name")?.text.to_string());
                        if !self.eat_punct(b',')? {
                            break;
                        }
                    }
                }
                (Kind::Word, ".address_size") => {
                    self.bump()?;
                    module.address_size = self.expect_u32("an address size")?;
                }
                (Kind::Word, ".file") => {
                    self.bump()?;
                    let index = self.expect_u32("a file index")?;
                    if self.tok.kind != Kind::Str {
                        return Err(self.unexpected("a file name string"));
                    }
                    let name = self.bump()?.text;
                    module.files.insert(index, name[1..name.len() - 1].to_string());
                    // Optional `, timestamp, size`.
                    while self.eat_punct(b',')? {
                        self.expect_u64("a number")?;
                    }
                }
                (Kind::Word, ".section") => self.section(&mut module)?,
                (Kind::Word, ".pragma") => self.pragma()?,
                (Kind::Word, _) => self.declaration(&mut module)?,
                _ => return Err(self.unexpected("a directive")),
            }
        }
    }

    /// `.pragma "..." [, "..."];`: compiler hints (`"nounroll"`) that carry nothing for execution.
    fn pragma(&mut self) -> PResult<()> {
        self.bump()?;
        loop {
            if self.tok.kind != Kind::Str {
                return Err(self.unexpected("a pragma string"));
            }
            self.bump()?;
            if !self.eat_punct(b',')? {
                break;
            }
        }
        self.expect_punct(b';')?;
        Ok(())
    }

    /// `.section .debug_str { $L__info_string0: .b8 95, 90, ..., 0 }`: collects the labelled
    /// strings of `.debug_str`; the contents of other sections are skipped.
    fn section(&mut self, module: &mut Module) -> PResult<()> {
        self.bump()?;
        let name = self.tok;
        if name.kind != Kind::Word || !name.text.starts_with('.') {
            return Err(self.unexpected("a section name"));
        }
        self.bump()?;
        let open = self.expect_punct(b'{')?;
        let collect = name.text == ".debug_str";
        // The label being collected, its bytes, and whether its NUL has been seen.
        let mut current: Option<(&str, Vec<u8>, bool)> = None;
        let mut in_b8 = false;
        let mut depth = 1;
        let finish = |current: &mut Option<(&str, Vec<u8>, bool)>, module: &mut Module| {
            if let Some((label, bytes, _)) = current.take() {
                module
                    .debug_strings
                    .insert(label.to_string(), String::from_utf8_lossy(&bytes).into_owned());
            }
        };
        loop {
            let tok = self.bump()?;
            match tok.kind {
                Kind::Eof => return Err(unterminated(&open)),
                Kind::Punct(b'{') => depth += 1,
                Kind::Punct(b'}') => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                Kind::Word if collect && self.tok.is_punct(b':') => {
                    self.bump()?;
                    finish(&mut current, module);
                    current = Some((tok.text, Vec::new(), false));
                    in_b8 = false;
                }
                Kind::Word => in_b8 = tok.text == ".b8",
                Kind::Number if collect && in_b8 => {
                    if let Some((_, bytes, done)) = current.as_mut().filter(|c| !c.2) {
                        let byte = parse_uint(tok.text)
                            .and_then(|v| u8::try_from(v).ok())
                            .ok_or_else(|| error_at(&tok, format!("bad byte `{}` in `.debug_str`", tok.text)))?;
                        if byte == 0 {
                            *done = true;
                        } else {
                            bytes.push(byte);
                        }
                    }
                }
                _ => {}
            }
        }
        finish(&mut current, module);
        Ok(())
    }

    /// A module-scope declaration: linkage words, then a variable or a function.
    fn declaration(&mut self, module: &mut Module) -> PResult<()> {
        let first = self.tok;
        let mut linkage = None;
        let mut is_extern = false;
        loop {
            match self.tok.text {
                ".visible" | ".weak" | ".common" => linkage = Some(self.bump()?.text.to_string()),
                ".extern" => {
                    self.bump()?;
                    is_extern = true;
                }
                _ => break,
            }
        }
        match self.tok.text {
            ".entry" | ".func" => {
                let linkage = if is_extern {
                    Some(".extern".to_string())
                } else {
                    linkage
                };
                let function = self.function(linkage)?;
                module.functions.push(function);
            }
            word if state_space(word).is_some() => {
                let variable = self.variable(first.line, is_extern, linkage)?;
                module.variables.push(variable);
            }
            _ if self.tok.kind == Kind::Word && self.tok.text.starts_with('.') => {
                return Err(error_at(&self.tok, format!("unknown directive `{}`", self.tok.text)));
            }
            _ => return Err(self.unexpected("a directive")),
        }
        Ok(())
    }

    /// `.shared .align 16 .b8 name[16896] [= init];`, the lookahead on the state space.
    fn variable(&mut self, line: u32, is_extern: bool, linkage: Option<String>) -> PResult<Variable> {
        let space = match state_space(self.tok.text) {
            Some(space @ (StateSpace::Global | StateSpace::Shared | StateSpace::Local | StateSpace::Const)) => space,
            _ => return Err(self.unexpected("`.global`, `.shared`, `.local` or `.const`")),
        };
        self.bump()?;
        let align = self.align()?;
        let ty = self.expect_type()?;
        let name = self.expect_name("a variable name")?.text.to_string();
        let dims = self.dims()?;
        let init = if self.eat_punct(b'=')? {
            let mut values = Vec::new();
            self.initializer(&mut values)?;
            Some(values)
        } else {
            None
        };
        self.expect_punct(b';')?;
        Ok(Variable {
            space,
            is_extern,
            linkage,
            align,
            ty,
            name,
            dims,
            init,
            line,
        })
    }

    /// A scalar or a (possibly nested) brace list, flattened into `out`.
    fn initializer(&mut self, out: &mut Vec<Operand>) -> PResult<()> {
        if self.eat_punct(b'{')? {
            loop {
                self.initializer(out)?;
                if !self.eat_punct(b',')? {
                    break;
                }
            }
            self.expect_punct(b'}')?;
            return Ok(());
        }
        let value = match self.tok.kind {
            Kind::Number | Kind::Punct(b'-') => self.immediate()?,
            Kind::Word if !self.tok.text.starts_with(['.', '%']) => self.symbol()?,
            _ => return Err(self.unexpected("an initial value")),
        };
        out.push(value);
        Ok(())
    }

    /// A numeric literal, possibly with a minus sign.
    fn immediate(&mut self) -> PResult<Operand> {
        let negative = self.eat_punct(b'-')?;
        if self.tok.kind != Kind::Number {
            return Err(self.unexpected("a number"));
        }
        let tok = self.bump()?;
        number(&tok, negative)
    }

    /// A signed integer (an address or symbol offset).
    fn offset(&mut self) -> PResult<i64> {
        let tok = self.tok;
        match self.immediate()? {
            Operand::Int(v) => Ok(v),
            _ => Err(error_at(
                &tok,
                format!("expected an integer offset, found {}", describe(&tok)),
            )),
        }
    }

    /// `name` or `name+offset` used as a value.
    fn symbol(&mut self) -> PResult<Operand> {
        let name = self.bump()?.text.to_string();
        let offset = if self.eat_punct(b'+')? { self.offset()? } else { 0 };
        Ok(Operand::Symbol(name, offset))
    }

    /// `.entry`/`.func` through the end of its body or declaration, the lookahead on the keyword.
    fn function(&mut self, linkage: Option<String>) -> PResult<Function> {
        let keyword = self.bump()?;
        let kind = if keyword.text == ".entry" {
            FunctionKind::Entry
        } else {
            FunctionKind::Func
        };
        let returns = if kind == FunctionKind::Func && self.tok.is_punct(b'(') {
            self.params()?
        } else {
            Vec::new()
        };
        let name = self.expect_name("a function name")?.text.to_string();
        let params = if self.tok.is_punct(b'(') {
            self.params()?
        } else {
            Vec::new()
        };
        let mut directives = Vec::new();
        loop {
            let tok = self.tok;
            if tok.kind != Kind::Word {
                break;
            }
            if tok.text == ".pragma" {
                self.pragma()?;
                continue;
            }
            if !PERF_DIRECTIVES.contains(&tok.text) {
                return Err(error_at(
                    &tok,
                    format!("unknown directive `{}` in a function header", tok.text),
                ));
            }
            self.bump()?;
            let mut values = Vec::new();
            if self.tok.kind == Kind::Number {
                loop {
                    values.push(self.expect_u64("a number")?);
                    if !self.eat_punct(b',')? {
                        break;
                    }
                }
            }
            directives.push(PerfDirective {
                name: tok.text[1..].to_string(),
                values,
            });
        }
        let mut function = Function {
            kind,
            linkage,
            name,
            returns,
            params,
            directives,
            registers: Vec::new(),
            variables: Vec::new(),
            body: None,
            line: keyword.line,
        };
        if self.tok.is_punct(b'{') {
            function.body = Some(self.body(&mut function)?);
        } else if !self.eat_punct(b';')? {
            return Err(self.unexpected("`{` or `;`"));
        }
        Ok(function)
    }

    /// `( .param ..., .param ... )`.
    fn params(&mut self) -> PResult<Vec<Param>> {
        self.expect_punct(b'(')?;
        let mut params = Vec::new();
        if self.eat_punct(b')')? {
            return Ok(params);
        }
        loop {
            params.push(self.param()?);
            if !self.eat_punct(b',')? {
                break;
            }
        }
        self.expect_punct(b')')?;
        Ok(params)
    }

    /// `.param [.align N] .type [.ptr [.space] [.align N]] name[dims]`.
    fn param(&mut self) -> PResult<Param> {
        if !self.eat_word(".param")? {
            return Err(self.unexpected("`.param`"));
        }
        let align = self.align()?;
        let ty = self.expect_type()?;
        let mut ptr_space = None;
        if self.eat_word(".ptr")? {
            if let Some(space) = state_space(self.tok.text) {
                self.bump()?;
                ptr_space = Some(space);
            }
            // The pointee's alignment: recorded by nvcc, needed by nothing here.
            self.align()?;
        }
        let name = self.expect_name("a parameter name")?.text.to_string();
        let dims = self.dims()?;
        Ok(Param {
            ty,
            name,
            align,
            dims,
            ptr_space,
        })
    }

    /// The body `{ ... }`, the lookahead on `{`: declarations go into `function`, labels and
    /// instructions into the returned list. Inner scopes are flattened (their registers renamed).
    fn body(&mut self, function: &mut Function) -> PResult<Vec<Statement>> {
        let mut opens = vec![self.bump()?];
        self.scopes.clear();
        self.renamed = 0;
        let mut statements = Vec::new();
        let mut loc = None;
        loop {
            let tok = self.tok;
            match tok.kind {
                Kind::Eof => return Err(unterminated(opens.last().unwrap_or(&tok))),
                Kind::Punct(b'}') => {
                    self.bump()?;
                    opens.pop();
                    if self.scopes.pop().is_none() {
                        return Ok(statements);
                    }
                }
                Kind::Punct(b'{') => {
                    opens.push(self.bump()?);
                    self.scopes.push(Scope::default());
                }
                Kind::Punct(b'@') => {
                    self.bump()?;
                    let negated = self.eat_punct(b'!')?;
                    let predicate = self.register("a guard predicate")?;
                    let mnemonic = self.bump()?;
                    let guard = Some(Guard { predicate, negated });
                    statements.push(Statement::Instruction(
                        self.instruction(guard, mnemonic, tok.line, loc)?,
                    ));
                }
                Kind::Word => match tok.text {
                    ".reg" => self.registers(function)?,
                    ".loc" => loc = Some(self.loc()?),
                    ".pragma" => self.pragma()?,
                    ".global" | ".shared" | ".local" | ".const" => {
                        let variable = self.variable(tok.line, false, None)?;
                        function.variables.push(variable);
                    }
                    text if text.starts_with('.') => {
                        return Err(error_at(&tok, format!("unknown directive `{text}` in a function body")));
                    }
                    text => {
                        self.bump()?;
                        if !text.starts_with('%') && self.eat_punct(b':')? {
                            statements.push(Statement::Label(text.to_string()));
                        } else {
                            statements.push(Statement::Instruction(self.instruction(None, tok, tok.line, loc)?));
                        }
                    }
                },
                _ => return Err(self.unexpected("an instruction, a label or a directive")),
            }
        }
    }

    /// `.reg .type name[<n>] [, name[<n>]]*;`, the lookahead on `.reg`.
    fn registers(&mut self, function: &mut Function) -> PResult<()> {
        self.bump()?;
        let ty = self.expect_type()?;
        loop {
            let name = self.tok;
            if name.kind != Kind::Word || !name.text.starts_with('%') {
                return Err(self.unexpected("a register name"));
            }
            self.bump()?;
            let count = if self.eat_punct(b'<')? {
                let count = self.expect_u32("a register count")?;
                self.expect_punct(b'>')?;
                Some(count)
            } else {
                None
            };
            let declared = match self.scopes.last_mut() {
                None => name.text.to_string(),
                Some(scope) => {
                    self.renamed += 1;
                    match count {
                        None => {
                            let unique = format!("{}${}", name.text, self.renamed);
                            scope.singles.push((name.text, unique.clone()));
                            unique
                        }
                        Some(count) => {
                            let unique = format!("{}${}_", name.text, self.renamed);
                            scope.ranges.push((name.text, count, unique.clone()));
                            unique
                        }
                    }
                }
            };
            function.registers.push(RegisterDecl {
                ty,
                name: declared,
                count,
            });
            if !self.eat_punct(b',')? {
                break;
            }
        }
        self.expect_punct(b';')?;
        Ok(())
    }

    /// `.loc file line column [, function_name label] [, inlined_at file line column]`.
    fn loc(&mut self) -> PResult<SourceLoc> {
        self.bump()?;
        let file = self.expect_u32("a file index")?;
        let line = self.expect_u32("a line number")?;
        let column = self.expect_u32("a column number")?;
        let mut loc = SourceLoc {
            file,
            line,
            column,
            inlined_at: None,
            function_name: None,
        };
        while self.eat_punct(b',')? {
            if self.eat_word("inlined_at")? {
                let file = self.expect_u32("a file index")?;
                let line = self.expect_u32("a line number")?;
                let column = self.expect_u32("a column number")?;
                loc.inlined_at = Some((file, line, column));
            } else if self.eat_word("function_name")? {
                let label = self.expect_name("a `.debug_str` label")?;
                let index = label.text.strip_prefix("$L__info_string").and_then(|n| n.parse().ok());
                loc.function_name = Some(index.ok_or_else(|| {
                    error_at(
                        &label,
                        format!("expected a `$L__info_stringN` label, found `{}`", label.text),
                    )
                })?);
            } else {
                return Err(self.unexpected("`function_name` or `inlined_at`"));
            }
        }
        Ok(loc)
    }

    /// An instruction after its guard, `mnemonic` already read, through its `;`.
    fn instruction(
        &mut self,
        guard: Option<Guard>,
        mnemonic: Token<'a>,
        line: u32,
        loc: Option<SourceLoc>,
    ) -> PResult<Instruction> {
        let mut parts = mnemonic.text.split('.');
        let opcode = parts.next().unwrap_or_default();
        let modifiers: Vec<String> = parts.map(str::to_string).collect();
        let well_formed = mnemonic.kind == Kind::Word
            && opcode.starts_with(|c: char| c.is_ascii_alphabetic())
            && modifiers.iter().all(|m| !m.is_empty());
        if !well_formed {
            return Err(error_at(
                &mnemonic,
                format!("expected an instruction, found {}", describe(&mnemonic)),
            ));
        }
        let mut operands = Vec::new();
        if !self.tok.is_punct(b';') {
            loop {
                operands.push(self.operand()?);
                if !self.eat_punct(b',')? {
                    break;
                }
            }
        }
        self.expect_punct(b';')?;
        Ok(Instruction {
            guard,
            opcode: opcode.to_string(),
            modifiers,
            operands,
            line,
            loc,
        })
    }

    /// The name a register operand refers to: its own, or the unique name an enclosing inner
    /// scope gave it.
    fn resolve(&self, name: &str) -> String {
        for scope in self.scopes.iter().rev() {
            if let Some((_, unique)) = scope.singles.iter().find(|(declared, _)| *declared == name) {
                return unique.clone();
            }
            for (prefix, count, unique) in &scope.ranges {
                let index = name
                    .strip_prefix(prefix)
                    .filter(|i| !i.is_empty() && i.bytes().all(|c| c.is_ascii_digit()));
                if let Some(index) = index.and_then(|i| i.parse::<u32>().ok()).filter(|i| i < count) {
                    return format!("{unique}{index}");
                }
            }
        }
        name.to_string()
    }

    /// A register operand (`%r5`, `%tid.x`), resolved through the inner scopes.
    fn register(&mut self, what: &str) -> PResult<String> {
        if self.tok.kind != Kind::Word || !self.tok.text.starts_with('%') {
            return Err(self.unexpected(what));
        }
        let tok = self.bump()?;
        Ok(self.resolve(tok.text))
    }

    fn operand(&mut self) -> PResult<Operand> {
        let tok = self.tok;
        match tok.kind {
            Kind::Punct(b'{') => {
                self.bump()?;
                let mut elements = Vec::new();
                loop {
                    elements.push(self.operand()?);
                    if !self.eat_punct(b',')? {
                        break;
                    }
                }
                self.expect_punct(b'}')?;
                Ok(Operand::Vector(elements))
            }
            Kind::Punct(b'[') => self.address(),
            Kind::Punct(b'!') => {
                self.bump()?;
                Ok(Operand::NotRegister(self.register("a predicate register")?))
            }
            Kind::Number | Kind::Punct(b'-') => self.immediate(),
            Kind::Word if tok.text == "_" => {
                self.bump()?;
                Ok(Operand::Sink)
            }
            Kind::Word if tok.text.starts_with('%') => {
                let register = self.register("a register")?;
                if self.eat_punct(b'|')? {
                    Ok(Operand::RegisterPair(register, self.register("a predicate register")?))
                } else {
                    Ok(Operand::Register(register))
                }
            }
            Kind::Word if !tok.text.starts_with('.') => self.symbol(),
            _ => Err(self.unexpected("an operand")),
        }
    }

    /// `[base]`, `[base+offset]`, `[base+-offset]`, `[base-offset]`, `[offset]`.
    fn address(&mut self) -> PResult<Operand> {
        self.bump()?;
        let base = match self.tok.kind {
            Kind::Word if self.tok.text.starts_with('%') => Some(AddressBase::Register(self.register("a register")?)),
            Kind::Word if !self.tok.text.starts_with('.') && self.tok.text != "_" => {
                Some(AddressBase::Symbol(self.bump()?.text.to_string()))
            }
            Kind::Number => None,
            _ => return Err(self.unexpected("an address")),
        };
        // A bare offset, or one after the base: `+16`, `+-8`, `-8`.
        let has_offset = base.is_none() || self.eat_punct(b'+')? || self.tok.is_punct(b'-');
        let offset = if has_offset { self.offset()? } else { 0 };
        self.expect_punct(b']')?;
        Ok(Operand::Address { base, offset })
    }
}

/// The error for a `{` never closed: points at the brace.
fn unterminated(open: &Token) -> ParseError {
    error_at(
        open,
        format!("unterminated block: this `{}` is never closed", open.text),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The module of a kernel `k` whose body is `body`.
    fn kernel(body: &str) -> Module {
        let src = format!(".version 9.0\n.target sm_80\n.address_size 64\n.visible .entry k()\n{{\n{body}\n}}\n");
        parse(&src).unwrap_or_else(|e| panic!("{e}"))
    }

    fn instructions(module: &Module) -> Vec<Instruction> {
        let body = module.functions[0].body.as_ref().expect("a body");
        body.iter()
            .filter_map(|s| match s {
                Statement::Instruction(i) => Some(i.clone()),
                Statement::Label(_) => None,
            })
            .collect()
    }

    /// The operands of the single instruction `text`.
    fn operands(text: &str) -> Vec<Operand> {
        instructions(&kernel(text)).remove(0).operands
    }

    fn reg(name: &str) -> Operand {
        Operand::Register(name.to_string())
    }

    fn parse_err(src: &str) -> ParseError {
        parse(src).expect_err("a parse error")
    }

    #[test]
    fn header_files_and_comments() {
        let m = parse(
            "// generated\n.version 9.0\n.target sm_80, sm_90a /* two */\n.address_size 64\n\
             .file 1 \"/src/a.cu\"\n.file 2 \"/src/b.cuh\", 1700000000, 4096\n",
        )
        .unwrap();
        assert_eq!(m.version, (9, 0));
        assert_eq!(m.target, ["sm_80", "sm_90a"]);
        assert_eq!(m.address_size, 64);
        assert_eq!(m.files[&1], "/src/a.cu");
        assert_eq!(m.files[&2], "/src/b.cuh");
    }

    #[test]
    fn module_variables_and_initialisers() {
        let m = parse(
            ".global .align 16 .b8 coeffs[4] = {70, 210, 0x10, 7};\n\
             .extern .shared .align 16 .b8 smem[];\n\
             .const .f32 scale = 0f3F800000;\n\
             .visible .global .f64 table[2][2] = {{1.5, -2}, {0d3FF0000000000000, 3}};\n\
             .global .u64 ptr = coeffs+8;\n\
             .shared .align 4 .u32 carry;\n",
        )
        .unwrap();
        let v = &m.variables;
        assert_eq!(v.len(), 6);
        assert_eq!(
            (v[0].space, v[0].align, v[0].ty, v[0].name.as_str()),
            (StateSpace::Global, Some(16), Type::B8, "coeffs")
        );
        assert_eq!(v[0].dims, [Some(4)]);
        assert_eq!(
            v[0].init,
            Some(vec![
                Operand::Int(70),
                Operand::Int(210),
                Operand::Int(16),
                Operand::Int(7)
            ])
        );
        assert_eq!(v[0].line, 1);
        assert!(v[1].is_extern && v[1].space == StateSpace::Shared && v[1].dims == [None] && v[1].init.is_none());
        assert_eq!(v[1].size_bytes(), None);
        assert_eq!(v[2].init, Some(vec![Operand::F32Bits(0x3F80_0000)]));
        assert_eq!(v[3].linkage.as_deref(), Some(".visible"));
        assert_eq!(v[3].dims, [Some(2), Some(2)]);
        assert_eq!(
            v[3].init,
            Some(vec![
                Operand::Float(1.5),
                Operand::Int(-2),
                Operand::F64Bits(0x3FF0_0000_0000_0000),
                Operand::Int(3)
            ])
        );
        assert_eq!(v[4].init, Some(vec![Operand::Symbol("coeffs".into(), 8)]));
        assert_eq!((v[5].ty, v[5].dims.len(), v[5].line), (Type::U32, 0, 6));
    }

    #[test]
    fn kernel_signature_directives_and_body_declarations() {
        let m = parse(
            ".visible .entry k(\n\t.param .u64 k_param_0,\n\t.param .align 8 .b8 k_param_1[48],\n\
             \t.param .u64 .ptr .global .align 16 k_param_2\n)\n.maxntid 256, 1, 1\n.minnctapersm 2\n{\n\
             \t.local .align 8 .b8 __local_depot0[104];\n\t.shared .align 16 .b8 tile[16896];\n\
             \t.reg .b64 %SP;\n\t.reg .f32 %f<12>, %g;\n\tret;\n}\n",
        )
        .unwrap();
        let f = &m.functions[0];
        assert_eq!((f.kind.clone(), f.name.as_str(), f.line), (FunctionKind::Entry, "k", 1));
        assert_eq!(f.linkage.as_deref(), Some(".visible"));
        assert_eq!(f.params.len(), 3);
        assert_eq!((f.params[0].ty, f.params[0].size_bytes()), (Type::U64, 8));
        assert_eq!(
            (f.params[1].align, f.params[1].size_bytes(), f.params[1].alignment()),
            (Some(8), 48, 8)
        );
        assert_eq!(
            (f.params[2].ptr_space, f.params[2].align),
            (Some(StateSpace::Global), None)
        );
        assert_eq!(
            f.directives,
            [
                PerfDirective {
                    name: "maxntid".into(),
                    values: vec![256, 1, 1]
                },
                PerfDirective {
                    name: "minnctapersm".into(),
                    values: vec![2]
                }
            ]
        );
        assert_eq!(f.variables.len(), 2);
        assert_eq!(
            (f.variables[0].space, f.variables[0].size_bytes(), f.variables[0].line),
            (StateSpace::Local, Some(104), 9)
        );
        assert_eq!(f.variables[1].space, StateSpace::Shared);
        let regs: Vec<_> = f.registers.iter().map(|r| (r.ty, r.name.as_str(), r.count)).collect();
        assert_eq!(
            regs,
            [
                (Type::B64, "%SP", None),
                (Type::F32, "%f", Some(12)),
                (Type::F32, "%g", None)
            ]
        );
        assert_eq!(f.body.as_ref().unwrap().len(), 1);
    }

    #[test]
    fn device_functions_with_returns_and_declarations() {
        let m = parse(
            ".extern .func (.param .b32 func_retval0) vprintf(.param .b64 a, .param .b64 b);\n\
             .func (.param .b32 r) f(.param .b32 x) .noreturn\n{\n.pragma \"nounroll\";\nret;\n}\n\
             .weak .func g\n{\nret;\n}\n",
        )
        .unwrap();
        let [decl, f, g] = &m.functions[..] else {
            panic!("three functions")
        };
        assert_eq!(
            (decl.kind.clone(), decl.linkage.as_deref(), decl.body.is_none()),
            (FunctionKind::Func, Some(".extern"), true)
        );
        assert_eq!((decl.returns.len(), decl.params.len()), (1, 2));
        assert_eq!(decl.returns[0].name, "func_retval0");
        assert_eq!((f.returns[0].name.as_str(), f.params[0].name.as_str()), ("r", "x"));
        assert_eq!(
            f.directives,
            [PerfDirective {
                name: "noreturn".into(),
                values: vec![]
            }]
        );
        assert_eq!(f.body.as_ref().unwrap().len(), 1);
        assert_eq!((g.linkage.as_deref(), g.params.len(), g.line), (Some(".weak"), 0, 7));
    }

    #[test]
    fn labels_guards_and_mnemonics() {
        let m = kernel(
            "$L__BB0_1:\n@%p1 bra.uni $L__BB0_1;\n@!%p2 mma.sp::ordered_metadata.sync.aligned.m16n8k32.row.col.f32.bf16.bf16.f32 \
             {%f1, %f2, %f3, %f4}, {%r1, %r2, %r3, %r4}, {%r5, %r6, %r7, %r8}, {%f1, %f2, %f3, %f4}, %r9, 0;\nret;",
        );
        let body = m.functions[0].body.as_ref().unwrap();
        assert!(matches!(&body[0], Statement::Label(l) if l == "$L__BB0_1"));
        let i = instructions(&m);
        assert_eq!(
            i[0].guard,
            Some(Guard {
                predicate: "%p1".into(),
                negated: false
            })
        );
        assert_eq!(
            (i[0].opcode.as_str(), &i[0].modifiers[..]),
            ("bra", &["uni".to_string()][..])
        );
        assert_eq!(i[0].operands, [Operand::Symbol("$L__BB0_1".into(), 0)]);
        assert_eq!(i[0].line, 7);
        assert_eq!(
            i[1].guard,
            Some(Guard {
                predicate: "%p2".into(),
                negated: true
            })
        );
        assert_eq!(i[1].opcode, "mma");
        assert_eq!(
            i[1].modifiers,
            [
                "sp::ordered_metadata",
                "sync",
                "aligned",
                "m16n8k32",
                "row",
                "col",
                "f32",
                "bf16",
                "bf16",
                "f32"
            ]
        );
        assert_eq!(i[1].operands.len(), 6);
        assert_eq!(
            (i[2].opcode.as_str(), i[2].modifiers.len(), i[2].operands.len()),
            ("ret", 0, 0)
        );
    }

    #[test]
    fn register_operands() {
        assert_eq!(operands("mov.u32 %r1, %tid.x;"), [reg("%r1"), reg("%tid.x")]);
        assert_eq!(operands("mov.u64 %SPL, %SP;"), [reg("%SPL"), reg("%SP")]);
        assert_eq!(
            operands("selp.b32 %r1, %r2, %r3, !%p1;")[3],
            Operand::NotRegister("%p1".into())
        );
        assert_eq!(
            operands("shfl.sync.bfly.b32 %r35|%p6, %r33, 1, 31, -1;")[0],
            Operand::RegisterPair("%r35".into(), "%p6".into())
        );
        assert_eq!(
            operands("mov.b64 {%r1, _}, %fd1;")[0],
            Operand::Vector(vec![reg("%r1"), Operand::Sink])
        );
        assert_eq!(operands("mov.u32 %r1, %nctaid.y;")[1], reg("%nctaid.y"));
    }

    #[test]
    fn immediate_operands() {
        let ints = operands("add.s64 %rd1, 42, -8, 0x1F, 017, 0b101, 7U, 0xFFFFFFFFFFFFFFFF, -9223372036854775808, 0;");
        assert_eq!(
            ints[1..],
            [
                Operand::Int(42),
                Operand::Int(-8),
                Operand::Int(31),
                Operand::Int(15),
                Operand::Int(5),
                Operand::Int(7),
                Operand::Int(-1),
                Operand::Int(i64::MIN),
                Operand::Int(0)
            ]
        );
        assert_eq!(
            operands("mov.f32 %f1, 0f3F800000, 0d3FF0000000000000, 1.5, -2.5e-1;")[1..],
            [
                Operand::F32Bits(0x3F80_0000),
                Operand::F64Bits(0x3FF0_0000_0000_0000),
                Operand::Float(1.5),
                Operand::Float(-0.25)
            ]
        );
    }

    #[test]
    fn address_and_symbol_operands() {
        let addr = |base: Option<AddressBase>, offset| Operand::Address { base, offset };
        let r = |n: &str| Some(AddressBase::Register(n.into()));
        let s = |n: &str| Some(AddressBase::Symbol(n.into()));
        assert_eq!(
            operands("ld.v4.f32 {%f1, %f2, %f3, %f4}, [%rd1], [%rd1+16], [%rd144+-8], [%rd2-4], [k_param_0], [smem+8], [16];")[1..],
            [
                addr(r("%rd1"), 0),
                addr(r("%rd1"), 16),
                addr(r("%rd144"), -8),
                addr(r("%rd2"), -4),
                addr(s("k_param_0"), 0),
                addr(s("smem"), 8),
                addr(None, 16)
            ]
        );
        assert_eq!(
            operands("mov.u64 %SPL, __local_depot0, smem+16;")[1..],
            [
                Operand::Symbol("__local_depot0".into(), 0),
                Operand::Symbol("smem".into(), 16)
            ]
        );
    }

    #[test]
    fn inner_scope_registers_are_renamed() {
        let m = kernel(
            ".reg .b32 %r<4>;\n.reg .b32 %temp;\n\
             {\n.reg .b32 %temp;\nmov.b64 {%r1, %temp}, %fd1;\n}\n\
             {\n.reg .b32 %temp;\n.reg .pred %q<2>;\n@%q1 mov.b64 {%temp, %r2}, %fd2;\n\
             {\n.reg .b32 %temp;\nmov.b32 %temp, %q0;\n}\nmov.b32 %r3, %temp;\n}\n\
             mov.b32 %r0, %temp, %q1;",
        );
        let f = &m.functions[0];
        let regs: Vec<_> = f.registers.iter().map(|r| (r.name.as_str(), r.count)).collect();
        assert_eq!(
            regs,
            [
                ("%r", Some(4)),
                ("%temp", None),
                ("%temp$1", None),
                ("%temp$2", None),
                ("%q$3_", Some(2)),
                ("%temp$4", None)
            ]
        );
        let i = instructions(&m);
        assert_eq!(i[0].operands[0], Operand::Vector(vec![reg("%r1"), reg("%temp$1")]));
        assert_eq!(
            i[1].guard,
            Some(Guard {
                predicate: "%q$3_1".into(),
                negated: false
            })
        );
        assert_eq!(i[1].operands[0], Operand::Vector(vec![reg("%temp$2"), reg("%r2")]));
        assert_eq!(i[2].operands, [reg("%temp$4"), reg("%q$3_0")]);
        assert_eq!(i[3].operands, [reg("%r3"), reg("%temp$2")]);
        // Outside the scopes, the names are the function's own again.
        assert_eq!(i[4].operands, [reg("%r0"), reg("%temp"), reg("%q1")]);
        assert!(f
            .body
            .as_ref()
            .unwrap()
            .iter()
            .all(|s| matches!(s, Statement::Instruction(_))));
    }

    #[test]
    fn each_instruction_keeps_the_loc_in_force() {
        let m = parse(
            ".entry a()\n{\nmov.u32 %r1, 1;\n.loc 1 18 5\nmov.u32 %r1, 2;\n\
             .loc 2 44 75, function_name $L__info_string0, inlined_at 1 103 13\n.pragma \"nounroll\";\nret;\n}\n\
             .entry b()\n{\nret;\n}\n",
        )
        .unwrap();
        let i = instructions(&m);
        assert_eq!(i[0].loc, None);
        assert_eq!(
            i[1].loc,
            Some(SourceLoc {
                file: 1,
                line: 18,
                column: 5,
                inlined_at: None,
                function_name: None
            })
        );
        assert_eq!(
            i[2].loc,
            Some(SourceLoc {
                file: 2,
                line: 44,
                column: 75,
                inlined_at: Some((1, 103, 13)),
                function_name: Some(0)
            })
        );
        assert_eq!(i[2].line, 8);
        // A new function starts without a location.
        let Some(Statement::Instruction(ret)) = m.functions[1].body.as_ref().unwrap().first() else {
            panic!()
        };
        assert_eq!(ret.loc, None);
    }

    #[test]
    fn debug_strings_are_collected_and_other_sections_skipped() {
        let m = parse(
            ".section .debug_str\n{\n$L__info_string0:\n.b8 95,90,78\n.b8 49,0\n\
             $L__info_string1:\n.b8 102,0,120\n}\n\
             .section .debug_info\n{\n.b32 $L__func_end0-$L__func_begin0\n$L__x:\n.b8 1,2\n{ }\n}\n",
        )
        .unwrap();
        assert_eq!(m.debug_strings.len(), 2);
        assert_eq!(m.debug_strings["$L__info_string0"], "_ZN1");
        assert_eq!(m.debug_strings["$L__info_string1"], "f");
    }

    #[test]
    fn unknown_directives_are_errors() {
        let e = parse_err(".version 9.0\n.target sm_80\n.frobnicate 3\n");
        assert_eq!((e.line, e.column), (3, 1));
        assert!(e.message.contains("`.frobnicate`"), "{}", e.message);
        let e = parse_err(".entry k()\n{\n  .frobnicate;\n}\n");
        assert_eq!((e.line, e.column), (3, 3));
        assert!(e.message.contains("`.frobnicate`"), "{}", e.message);
        let e = parse_err(".entry k()\n.maxthreads 4\n{\n}\n");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("`.maxthreads`"), "{}", e.message);
    }

    #[test]
    fn unterminated_blocks_are_errors_at_their_brace() {
        let e = parse_err(".entry k()\n{\nret;\n{\n.reg .b32 %t;\n");
        assert_eq!((e.line, e.column), (4, 1));
        assert!(e.message.contains("unterminated"), "{}", e.message);
        let e = parse_err(".section .debug_str\n{\n$L__info_string0:\n.b8 1\n");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("unterminated"), "{}", e.message);
    }

    #[test]
    fn bad_literals_are_errors_naming_them() {
        for (text, bad) in [
            ("add.s32 %r1, %r2, 0x1G;", "0x1G"),
            ("add.s32 %r1, %r2, 09;", "09"),
            ("add.s64 %rd1, %rd2, 18446744073709551616;", "18446744073709551616"),
            ("mov.f32 %f1, 0f3F80;", "0f3F80"),
            ("mov.f64 %fd1, 0d3FF000000000000Z;", "0d3FF000000000000Z"),
            ("mov.f32 %f1, 1.5e;", "1.5e"),
        ] {
            let e = parse_err(&format!(".entry k()\n{{\n\n  {text}\n}}\n"));
            assert_eq!(e.line, 4, "{text}");
            assert!(e.message.contains(&format!("`{bad}`")), "{text}: {}", e.message);
        }
        let e = parse_err(".entry k()\n{\nmov.f32 %f1, -0f3F800000;\n}\n");
        assert!(e.message.contains("minus"), "{}", e.message);
    }

    #[test]
    fn malformed_statements_are_errors() {
        let cases = [
            ("mov.u32 %r1, %r2\nret;", 4, "`ret`"),
            ("mov.u32 %r1, .reg;", 3, "`.reg`"),
            ("%r1 mov.u32 %r1, 1;", 3, "`%r1`"),
            ("ld..f32 %f1, [%rd1];", 3, "`ld..f32`"),
            ("ld.f32 %f1, [%rd1+%rd2];", 3, "`%rd2`"),
            ("mov.u32 %r1, #;", 3, "`#`"),
            (".reg .q32 %r<2>;", 3, "`.q32`"),
            (".loc 1 2 3, columns 4\nret;", 3, "`columns`"),
        ];
        for (body, line, token) in cases {
            let e = parse_err(&format!(".entry k()\n{{\n{body}\n}}\n"));
            assert_eq!(e.line, line, "{body}: {e}");
            assert!(e.message.contains(token), "{body}: {}", e.message);
        }
    }

    #[test]
    fn errors_display_their_position() {
        let e = parse_err("\n\n  .bogus\n");
        assert_eq!(e.to_string(), "PTX line 3, column 3: unknown directive `.bogus`");
        let e = parse_err(".version 9.0\n\"open");
        assert_eq!((e.line, e.column), (2, 1));
    }
}
