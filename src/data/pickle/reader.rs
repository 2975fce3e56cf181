//! The opcode interpreter: pickle bytes → an arena of objects, and a read-only view of the result.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::numpy::{DType, DTypeKind, NdArray};
use crate::{Error, Result};

/// Where a string's or byte string's content lives.
#[derive(Clone, Debug)]
enum Buf {
    /// A range of the file buffer (the common case: no copy).
    File(Range<usize>),
    /// Bytes made while reading (protocol 2's `_codecs.encode(str, 'latin1')`).
    Owned(Vec<u8>),
}

/// The callables a NumPy pickle names. Nothing else can be `GLOBAL`ed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Global {
    Reconstruct,
    NdarrayType,
    DTypeType,
    CodecsEncode,
    BytesType,
    Scalar,
    FromBuffer,
}

#[derive(Clone, Debug)]
enum Obj {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Buf),
    Bytes(Buf),
    List(Vec<usize>),
    Tuple(Vec<usize>),
    Dict(Vec<(usize, usize)>),
    Global(Global),
    DType(DType),
    /// An array made by `_reconstruct`, waiting for its `BUILD`.
    EmptyArray,
    Array {
        dtype: DType,
        shape: Vec<usize>,
        fortran: bool,
        data: usize,
    },
}

/// A parsed pickle: the file bytes and the objects built from them.
pub struct Pickle {
    path: PathBuf,
    bytes: Vec<u8>,
    arena: Vec<Obj>,
    root: usize,
}

/// A read-only view of one object of a [`Pickle`].
#[derive(Clone, Copy)]
pub struct Node<'a> {
    pickle: &'a Pickle,
    id: usize,
}

const MAX_PROTOCOL: u8 = 5;

impl Pickle {
    /// Reads and parses the pickle file at `path`.
    pub fn open(path: &Path) -> Result<Pickle> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Pickle::parse(path, bytes)
    }

    /// Parses `bytes`; `path` names the source in errors.
    pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<Pickle> {
        let mut parser = Parser {
            path,
            bytes: &bytes,
            pos: 0,
            arena: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
        };
        let root = parser.run()?;
        let arena = parser.arena;
        Ok(Pickle {
            path: path.to_path_buf(),
            bytes,
            arena,
            root,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn root(&self) -> Node<'_> {
        Node {
            pickle: self,
            id: self.root,
        }
    }

    fn buf<'s>(&'s self, buf: &'s Buf) -> &'s [u8] {
        match buf {
            Buf::File(r) => &self.bytes[r.clone()],
            Buf::Owned(v) => v,
        }
    }
}

impl<'a> Node<'a> {
    fn obj(&self) -> &'a Obj {
        &self.pickle.arena[self.id]
    }

    fn at(&self, id: usize) -> Node<'a> {
        Node {
            pickle: self.pickle,
            id,
        }
    }

    /// A short description of the Python type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self.obj() {
            Obj::None => "None",
            Obj::Bool(_) => "bool",
            Obj::Int(_) => "int",
            Obj::Float(_) => "float",
            Obj::Str(_) => "str",
            Obj::Bytes(_) => "bytes",
            Obj::List(_) => "list",
            Obj::Tuple(_) => "tuple",
            Obj::Dict(_) => "dict",
            Obj::Global(_) => "class or function",
            Obj::DType(_) => "numpy.dtype",
            Obj::EmptyArray | Obj::Array { .. } => "numpy.ndarray",
        }
    }

    pub fn as_str(&self) -> Option<&'a str> {
        match self.obj() {
            Obj::Str(b) => std::str::from_utf8(self.pickle.buf(b)).ok(),
            _ => None,
        }
    }

    /// An integer: a Python int, bool, or integer NumPy scalar.
    pub fn as_i64(&self) -> Option<i64> {
        match *self.obj() {
            Obj::Int(v) => Some(v),
            Obj::Bool(b) => Some(b as i64),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self.obj() {
            Obj::Float(v) => Some(v),
            Obj::Int(v) => Some(v as f64),
            _ => None,
        }
    }

    /// The items of a list or tuple.
    pub fn as_seq(&self) -> Option<impl ExactSizeIterator<Item = Node<'a>> + 'a> {
        let ids = match self.obj() {
            Obj::List(v) | Obj::Tuple(v) => v,
            _ => return None,
        };
        let pickle = self.pickle;
        Some(ids.iter().map(move |&id| Node { pickle, id }))
    }

    /// The (key, value) pairs of a dict, in insertion order.
    pub fn as_dict(&self) -> Option<impl ExactSizeIterator<Item = (Node<'a>, Node<'a>)> + 'a> {
        let pairs = match self.obj() {
            Obj::Dict(v) => v,
            _ => return None,
        };
        let pickle = self.pickle;
        Some(
            pairs
                .iter()
                .map(move |&(k, v)| (Node { pickle, id: k }, Node { pickle, id: v })),
        )
    }

    /// The value under the string key `key` of a dict.
    pub fn get(&self, key: &str) -> Option<Node<'a>> {
        match self.obj() {
            Obj::Dict(pairs) => pairs
                .iter()
                .rev()
                .find(|(k, _)| self.at(*k).as_str() == Some(key))
                .map(|&(_, v)| self.at(v)),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<NdArray<'a>> {
        match self.obj() {
            Obj::Array {
                dtype,
                shape,
                fortran,
                data,
            } => {
                let Obj::Bytes(b) = &self.pickle.arena[*data] else {
                    return None;
                };
                Some(NdArray {
                    dtype: *dtype,
                    shape,
                    fortran: *fortran,
                    raw: self.pickle.buf(b),
                })
            }
            _ => None,
        }
    }
}

struct Parser<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    pos: usize,
    arena: Vec<Obj>,
    stack: Vec<usize>,
    /// Stack lengths at each MARK.
    marks: Vec<usize>,
    memo: HashMap<u64, usize>,
}

impl Parser<'_> {
    fn err(&self, detail: impl std::fmt::Display) -> Error {
        Error::format(self.path, format!("not a readable annotation pickle: {detail}"))
    }

    fn take(&mut self, n: usize, what: &str) -> Result<Range<usize>> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(self.err(format!(
                "truncated: {what} needs {n} bytes at offset {} but the file has {}",
                self.pos,
                self.bytes.len()
            )));
        };
        let r = self.pos..end;
        self.pos = end;
        Ok(r)
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        let r = self.take(1, what)?;
        Ok(self.bytes[r.start])
    }

    fn le<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let r = self.take(N, what)?;
        Ok(self.bytes[r].try_into().expect("range of N bytes"))
    }

    fn len_u64(&mut self, what: &str) -> Result<usize> {
        let n = u64::from_le_bytes(self.le::<8>(what)?);
        usize::try_from(n).map_err(|_| self.err(format!("{what}: length {n} too large")))
    }

    fn push(&mut self, obj: Obj) {
        self.arena.push(obj);
        self.stack.push(self.arena.len() - 1);
    }

    fn pop(&mut self, op: &str) -> Result<usize> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.err(format!("{op} at offset {} on an empty stack", self.pos)));
        }
        Ok(self.stack.pop().expect("non-empty stack"))
    }

    fn top(&self, op: &str) -> Result<usize> {
        self.stack
            .last()
            .copied()
            .ok_or_else(|| self.err(format!("{op} at offset {} on an empty stack", self.pos)))
    }

    fn pop_mark(&mut self, op: &str) -> Result<Vec<usize>> {
        let Some(mark) = self.marks.pop() else {
            return Err(self.err(format!("{op} at offset {} without a MARK", self.pos)));
        };
        Ok(self.stack.split_off(mark))
    }

    fn str_obj(&mut self, range: Range<usize>) -> Result<()> {
        if std::str::from_utf8(&self.bytes[range.clone()]).is_err() {
            return Err(self.err(format!("invalid UTF-8 in a string at offset {}", range.start)));
        }
        self.push(Obj::Str(Buf::File(range)));
        Ok(())
    }

    fn memo_put(&mut self, key: u64) -> Result<()> {
        let top = self.top("PUT")?;
        self.memo.insert(key, top);
        Ok(())
    }

    fn memo_get(&mut self, key: u64) -> Result<()> {
        let Some(&id) = self.memo.get(&key) else {
            return Err(self.err(format!("memo key {key} read before it was written")));
        };
        self.stack.push(id);
        Ok(())
    }

    fn run(&mut self) -> Result<usize> {
        if self.bytes.first() != Some(&0x80) {
            return Err(self.err("the file does not start with a pickle PROTO opcode (protocol 2 or later expected)"));
        }
        loop {
            let at = self.pos;
            let op = self.u8("opcode")?;
            match op {
                0x80 => {
                    let proto = self.u8("PROTO")?;
                    if !(2..=MAX_PROTOCOL).contains(&proto) {
                        return Err(self.err(format!("unsupported pickle protocol {proto}")));
                    }
                }
                0x95 => {
                    self.le::<8>("FRAME")?;
                }
                b'.' => {
                    let root = self.pop("STOP")?;
                    return Ok(root);
                }
                b'(' => self.marks.push(self.stack.len()),
                b'}' => self.push(Obj::Dict(Vec::new())),
                b']' => self.push(Obj::List(Vec::new())),
                b')' => self.push(Obj::Tuple(Vec::new())),
                b'N' => self.push(Obj::None),
                0x88 => self.push(Obj::Bool(true)),
                0x89 => self.push(Obj::Bool(false)),
                b'K' => {
                    let v = self.u8("BININT1")?;
                    self.push(Obj::Int(v as i64));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.le("BININT2")?);
                    self.push(Obj::Int(v as i64));
                }
                b'J' => {
                    let v = i32::from_le_bytes(self.le("BININT")?);
                    self.push(Obj::Int(v as i64));
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a {
                        self.u8("LONG1")? as usize
                    } else {
                        u32::from_le_bytes(self.le("LONG4")?) as usize
                    };
                    let r = self.take(n, "LONG")?;
                    let v = long_to_i64(&self.bytes[r])
                        .ok_or_else(|| self.err(format!("integer at offset {at} exceeds 64 bits")))?;
                    self.push(Obj::Int(v));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.le("BINFLOAT")?);
                    self.push(Obj::Float(v));
                }
                b'X' => {
                    let n = u32::from_le_bytes(self.le("BINUNICODE")?) as usize;
                    let r = self.take(n, "BINUNICODE")?;
                    self.str_obj(r)?;
                }
                0x8c => {
                    let n = self.u8("SHORT_BINUNICODE")? as usize;
                    let r = self.take(n, "SHORT_BINUNICODE")?;
                    self.str_obj(r)?;
                }
                0x8d => {
                    let n = self.len_u64("BINUNICODE8")?;
                    let r = self.take(n, "BINUNICODE8")?;
                    self.str_obj(r)?;
                }
                b'C' | b'B' | 0x8e | 0x96 => {
                    let n = match op {
                        b'C' => self.u8("SHORT_BINBYTES")? as usize,
                        b'B' => u32::from_le_bytes(self.le("BINBYTES")?) as usize,
                        _ => self.len_u64("BINBYTES8")?,
                    };
                    let r = self.take(n, "bytes payload")?;
                    self.push(Obj::Bytes(Buf::File(r)));
                }
                0x97 => {
                    return Err(self.err(
                        "out-of-band buffer (NEXT_BUFFER): the pickle was written with a \
                         buffer_callback and its data is not in the file",
                    ))
                }
                b'q' => {
                    let k = self.u8("BINPUT")?;
                    self.memo_put(k as u64)?;
                }
                b'r' => {
                    let k = u32::from_le_bytes(self.le("LONG_BINPUT")?);
                    self.memo_put(k as u64)?;
                }
                0x94 => {
                    let k = self.memo.len() as u64;
                    self.memo_put(k)?;
                }
                b'h' => {
                    let k = self.u8("BINGET")?;
                    self.memo_get(k as u64)?;
                }
                b'j' => {
                    let k = u32::from_le_bytes(self.le("LONG_BINGET")?);
                    self.memo_get(k as u64)?;
                }
                b'0' => {
                    self.pop("POP")?;
                }
                b'1' => {
                    self.pop_mark("POP_MARK")?;
                }
                b'2' => {
                    let top = self.top("DUP")?;
                    self.stack.push(top);
                }
                b't' => {
                    let items = self.pop_mark("TUPLE")?;
                    self.push(Obj::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop("TUPLEn")?);
                    }
                    items.reverse();
                    self.push(Obj::Tuple(items));
                }
                b'l' => {
                    let items = self.pop_mark("LIST")?;
                    self.push(Obj::List(items));
                }
                b'd' => {
                    let items = self.pop_mark("DICT")?;
                    let pairs = self.pairs(items, "DICT")?;
                    self.push(Obj::Dict(pairs));
                }
                b'a' => {
                    let item = self.pop("APPEND")?;
                    let list = self.top("APPEND")?;
                    self.extend_list(list, vec![item])?;
                }
                b'e' => {
                    let items = self.pop_mark("APPENDS")?;
                    let list = self.top("APPENDS")?;
                    self.extend_list(list, items)?;
                }
                b's' => {
                    let v = self.pop("SETITEM")?;
                    let k = self.pop("SETITEM")?;
                    let dict = self.top("SETITEM")?;
                    self.extend_dict(dict, vec![(k, v)])?;
                }
                b'u' => {
                    let items = self.pop_mark("SETITEMS")?;
                    let pairs = self.pairs(items, "SETITEMS")?;
                    let dict = self.top("SETITEMS")?;
                    self.extend_dict(dict, pairs)?;
                }
                b'c' => {
                    let module = self.line("GLOBAL")?;
                    let name = self.line("GLOBAL")?;
                    let g = self.global(&module, &name)?;
                    self.push(Obj::Global(g));
                }
                0x93 => {
                    let name = self.pop("STACK_GLOBAL")?;
                    let module = self.pop("STACK_GLOBAL")?;
                    let (Some(module), Some(name)) = (self.text(module), self.text(name)) else {
                        return Err(self.err("STACK_GLOBAL with non-string operands"));
                    };
                    let g = self.global(&module, &name)?;
                    self.push(Obj::Global(g));
                }
                b'R' => {
                    let args = self.pop("REDUCE")?;
                    let func = self.pop("REDUCE")?;
                    let obj = self.reduce(func, args, at)?;
                    self.push(obj);
                }
                b'b' => {
                    let state = self.pop("BUILD")?;
                    let target = self.top("BUILD")?;
                    self.build(target, state, at)?;
                }
                b'U' => {
                    let n = self.u8("SHORT_BINSTRING")? as usize;
                    let r = self.take(n, "SHORT_BINSTRING")?;
                    let s = self.bytes[r].iter().map(|&b| b as char).collect::<String>();
                    self.push(Obj::Str(Buf::Owned(s.into_bytes())));
                }
                b'T' => {
                    let n = u32::from_le_bytes(self.le("BINSTRING")?) as usize;
                    let r = self.take(n, "BINSTRING")?;
                    let s = self.bytes[r].iter().map(|&b| b as char).collect::<String>();
                    self.push(Obj::Str(Buf::Owned(s.into_bytes())));
                }
                _ => {
                    return Err(self.err(format!(
                        "unsupported opcode 0x{op:02x} at offset {at} (only plain containers and \
                         NumPy arrays are read)"
                    )))
                }
            }
        }
    }

    fn line(&mut self, op: &str) -> Result<String> {
        let start = self.pos;
        let Some(len) = self.bytes[start..].iter().position(|&b| b == b'\n') else {
            return Err(self.err(format!("truncated: {op} at offset {start} has no newline")));
        };
        self.pos = start + len + 1;
        String::from_utf8(self.bytes[start..start + len].to_vec())
            .map_err(|_| self.err(format!("{op} at offset {start} is not UTF-8")))
    }

    fn text(&self, id: usize) -> Option<String> {
        match &self.arena[id] {
            Obj::Str(b) => String::from_utf8(self.buf(b).to_vec()).ok(),
            _ => None,
        }
    }

    fn buf<'s>(&'s self, b: &'s Buf) -> &'s [u8] {
        match b {
            Buf::File(r) => &self.bytes[r.clone()],
            Buf::Owned(v) => v,
        }
    }

    fn global(&self, module: &str, name: &str) -> Result<Global> {
        let numpy_core = |m: &str, sub: &str| {
            m.strip_prefix("numpy.")
                .and_then(|r| r.strip_prefix("core.").or_else(|| r.strip_prefix("_core.")))
                == Some(sub)
        };
        Ok(match (module, name) {
            (m, "_reconstruct") if numpy_core(m, "multiarray") => Global::Reconstruct,
            (m, "scalar") if numpy_core(m, "multiarray") => Global::Scalar,
            (m, "_frombuffer") if numpy_core(m, "numeric") => Global::FromBuffer,
            ("numpy", "ndarray") => Global::NdarrayType,
            ("numpy", "dtype") => Global::DTypeType,
            ("_codecs", "encode") => Global::CodecsEncode,
            ("__builtin__" | "builtins", "bytes") => Global::BytesType,
            _ => {
                return Err(self.err(format!(
                    "the pickle refers to `{module}.{name}`, which is not part of an annotation \
                     file (only NumPy arrays and plain containers are read)"
                )))
            }
        })
    }

    fn pairs(&self, items: Vec<usize>, op: &str) -> Result<Vec<(usize, usize)>> {
        if items.len() % 2 != 0 {
            return Err(self.err(format!("{op} with an odd number of items")));
        }
        Ok(items.chunks_exact(2).map(|kv| (kv[0], kv[1])).collect())
    }

    fn extend_list(&mut self, list: usize, items: Vec<usize>) -> Result<()> {
        match &mut self.arena[list] {
            Obj::List(v) => {
                v.extend(items);
                Ok(())
            }
            _ => Err(self.err(format!("APPEND to a non-list at offset {}", self.pos))),
        }
    }

    fn extend_dict(&mut self, dict: usize, pairs: Vec<(usize, usize)>) -> Result<()> {
        match &mut self.arena[dict] {
            Obj::Dict(v) => {
                v.extend(pairs);
                Ok(())
            }
            _ => Err(self.err(format!("SETITEM on a non-dict at offset {}", self.pos))),
        }
    }

    fn tuple(&self, id: usize) -> Option<&[usize]> {
        match &self.arena[id] {
            Obj::Tuple(v) => Some(v),
            _ => None,
        }
    }

    fn int(&self, id: usize) -> Option<i64> {
        match self.arena[id] {
            Obj::Int(v) => Some(v),
            _ => None,
        }
    }

    fn shape(&self, id: usize) -> Option<Vec<usize>> {
        self.tuple(id)?
            .iter()
            .map(|&d| self.int(d).and_then(|v| usize::try_from(v).ok()))
            .collect()
    }

    fn reduce(&mut self, func: usize, args: usize, at: usize) -> Result<Obj> {
        let Obj::Global(g) = self.arena[func] else {
            return Err(self.err(format!("REDUCE at offset {at} on a non-callable")));
        };
        let bad = |p: &Self, what: &str| p.err(format!("REDUCE at offset {at}: bad {what}"));
        let args = self.tuple(args).ok_or_else(|| bad(self, "argument tuple"))?.to_vec();
        match g {
            Global::Reconstruct => {
                // _reconstruct(ndarray, (0,), b'b'): an empty array that BUILD fills.
                let first = args.first().map(|&a| &self.arena[a]);
                if !matches!(first, Some(Obj::Global(Global::NdarrayType))) {
                    return Err(bad(self, "_reconstruct arguments"));
                }
                Ok(Obj::EmptyArray)
            }
            Global::DTypeType => {
                let kind = args.first().and_then(|&a| self.text(a));
                let parsed = kind.as_deref().and_then(DTypeKind::parse);
                let Some((kind, little)) = parsed else {
                    return Err(self.err(format!(
                        "unsupported numpy dtype {:?} at offset {at} (numeric dtypes only)",
                        kind.unwrap_or_default()
                    )));
                };
                Ok(Obj::DType(DType {
                    kind,
                    little_endian: little.unwrap_or(true),
                }))
            }
            Global::CodecsEncode => {
                // Protocol 2's bytes: the latin-1 text of the bytes, one code point per byte.
                let text = args.first().and_then(|&a| self.text(a));
                let enc = args.get(1).and_then(|&a| self.text(a));
                let (Some(text), Some("latin1" | "latin-1")) = (text, enc.as_deref()) else {
                    return Err(bad(self, "_codecs.encode arguments"));
                };
                let mut out = Vec::with_capacity(text.len());
                for ch in text.chars() {
                    let b = u8::try_from(ch as u32).map_err(|_| bad(self, "latin-1 payload (code point above 255)"))?;
                    out.push(b);
                }
                Ok(Obj::Bytes(Buf::Owned(out)))
            }
            Global::BytesType => {
                if !args.is_empty() {
                    return Err(bad(self, "bytes() arguments"));
                }
                Ok(Obj::Bytes(Buf::Owned(Vec::new())))
            }
            Global::Scalar => {
                // scalar(dtype, bytes): a NumPy scalar such as an np.int64 label.
                let (Some(&d), Some(&b)) = (args.first(), args.get(1)) else {
                    return Err(bad(self, "scalar arguments"));
                };
                let (Obj::DType(dtype), Obj::Bytes(raw)) = (&self.arena[d], &self.arena[b]) else {
                    return Err(bad(self, "scalar arguments"));
                };
                let raw = self.buf(raw);
                if raw.len() != dtype.kind.size() {
                    return Err(bad(self, "scalar payload size"));
                }
                let a = NdArray {
                    dtype: *dtype,
                    shape: &[],
                    fortran: false,
                    raw,
                };
                Ok(match a.to_i64() {
                    Some(v) => Obj::Int(v[0]),
                    None => Obj::Float(a.to_f64()[0]),
                })
            }
            Global::FromBuffer => {
                // _frombuffer(buffer, dtype, shape, order): protocol 5's arrays.
                let [b, d, s, o] = args[..] else {
                    return Err(bad(self, "_frombuffer arguments"));
                };
                let Obj::DType(dtype) = self.arena[d] else {
                    return Err(bad(self, "_frombuffer dtype"));
                };
                let shape = self.shape(s).ok_or_else(|| bad(self, "_frombuffer shape"))?;
                let fortran = match self.text(o).as_deref() {
                    Some("C") => false,
                    Some("F") => true,
                    _ => return Err(bad(self, "_frombuffer order")),
                };
                self.array(dtype, shape, fortran, b, at)
            }
            Global::NdarrayType => Err(bad(self, "call of numpy.ndarray")),
        }
    }

    fn array(&self, dtype: DType, shape: Vec<usize>, fortran: bool, data: usize, at: usize) -> Result<Obj> {
        let Obj::Bytes(raw) = &self.arena[data] else {
            return Err(self.err(format!(
                "array at offset {at}: data is not a byte string (object arrays are not supported)"
            )));
        };
        let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let want = count.and_then(|c| c.checked_mul(dtype.kind.size()));
        if want != Some(self.buf(raw).len()) {
            return Err(self.err(format!(
                "array at offset {at}: shape {shape:?} of {} needs {} bytes but {} are stored",
                dtype.kind.name(),
                want.map_or("too many".to_string(), |w| w.to_string()),
                self.buf(raw).len()
            )));
        }
        Ok(Obj::Array {
            dtype,
            shape,
            fortran,
            data,
        })
    }

    fn build(&mut self, target: usize, state: usize, at: usize) -> Result<()> {
        let bad = |p: &Self, what: &str| p.err(format!("BUILD at offset {at}: bad {what}"));
        let st = self.tuple(state).ok_or_else(|| bad(self, "state"))?.to_vec();
        match self.arena[target] {
            Obj::DType(dtype) => {
                // (3, byteorder, subarray, names, fields, elsize, alignment, flags)
                let order = st.get(1).and_then(|&a| self.text(a));
                let little = match order.as_deref() {
                    Some("<" | "|" | "=") => true,
                    Some(">") => false,
                    _ => return Err(bad(self, "dtype byte order")),
                };
                let plain = st[2..st.len().min(5)]
                    .iter()
                    .all(|&a| matches!(self.arena[a], Obj::None));
                if !plain {
                    return Err(bad(self, "dtype (structured and sub-array dtypes are not read)"));
                }
                self.arena[target] = Obj::DType(DType {
                    little_endian: little,
                    ..dtype
                });
                Ok(())
            }
            Obj::EmptyArray => {
                // (version, shape, dtype, is_fortran, raw)
                let [_, s, d, f, raw] = st[..] else {
                    return Err(bad(self, "ndarray state"));
                };
                let shape = self.shape(s).ok_or_else(|| bad(self, "ndarray shape"))?;
                let Obj::DType(dtype) = self.arena[d] else {
                    return Err(bad(self, "ndarray dtype"));
                };
                let Obj::Bool(fortran) = self.arena[f] else {
                    return Err(bad(self, "ndarray is_fortran flag"));
                };
                self.arena[target] = self.array(dtype, shape, fortran, raw, at)?;
                Ok(())
            }
            _ => Err(bad(self, "target (only NumPy dtypes and arrays are built)")),
        }
    }
}

/// A little-endian two's-complement integer of up to 8 bytes.
fn long_to_i64(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() {
        return Some(0);
    }
    if bytes.len() > 8 {
        return None;
    }
    let fill = if bytes[bytes.len() - 1] & 0x80 != 0 { 0xff } else { 0 };
    let mut b = [fill; 8];
    b[..bytes.len()].copy_from_slice(bytes);
    Some(i64::from_le_bytes(b))
}
