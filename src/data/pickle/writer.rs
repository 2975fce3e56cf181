//! A streaming protocol-4 pickle writer for plain containers and little-endian NumPy arrays, in
//! the form NumPy itself writes (`_reconstruct` + `BUILD`), readable by Python with NumPy 1 or 2.

use std::io::Write;

use super::numpy::DTypeKind;

/// A value to write. Arrays borrow their little-endian C-order element bytes.
pub enum WriteValue<'a> {
    None,
    Int(i64),
    Float(f64),
    Str(&'a str),
    List(Vec<WriteValue<'a>>),
    Tuple(Vec<WriteValue<'a>>),
    /// Keys and values in insertion order.
    Dict(Vec<(WriteValue<'a>, WriteValue<'a>)>),
    Array {
        kind: DTypeKind,
        shape: Vec<usize>,
        data: &'a [u8],
    },
}

/// Writes opcodes to `out`. Large lists are streamed with [`begin_list`](Self::begin_list) +
/// [`append`](Self::append) so the whole object never has to exist in memory.
pub struct PickleWriter<W: Write> {
    out: W,
}

impl<W: Write> PickleWriter<W> {
    /// Writes the protocol header.
    pub fn new(mut out: W) -> std::io::Result<Self> {
        out.write_all(&[0x80, 4])?;
        Ok(PickleWriter { out })
    }

    pub fn value(&mut self, v: &WriteValue) -> std::io::Result<()> {
        match v {
            WriteValue::None => self.out.write_all(b"N"),
            WriteValue::Int(i) => self.int(*i),
            WriteValue::Float(f) => {
                self.out.write_all(b"G")?;
                self.out.write_all(&f.to_be_bytes())
            }
            WriteValue::Str(s) => self.str(s),
            WriteValue::List(items) => {
                self.begin_list()?;
                if !items.is_empty() {
                    self.out.write_all(b"(")?;
                    for item in items {
                        self.value(item)?;
                    }
                    self.out.write_all(b"e")?;
                }
                Ok(())
            }
            WriteValue::Tuple(items) => {
                self.out.write_all(b"(")?;
                for item in items {
                    self.value(item)?;
                }
                self.out.write_all(b"t")
            }
            WriteValue::Dict(pairs) => {
                self.begin_dict()?;
                for (k, v) in pairs {
                    self.value(k)?;
                    self.value(v)?;
                    self.out.write_all(b"s")?;
                }
                Ok(())
            }
            WriteValue::Array { kind, shape, data } => self.array(*kind, shape, data),
        }
    }

    /// Pushes an empty list; follow with values each closed by [`append`](Self::append).
    pub fn begin_list(&mut self) -> std::io::Result<()> {
        self.out.write_all(b"]")
    }

    /// Appends the value just written to the list below it.
    pub fn append(&mut self) -> std::io::Result<()> {
        self.out.write_all(b"a")
    }

    /// Pushes an empty dict; follow with key, value, [`set_item`](Self::set_item).
    pub fn begin_dict(&mut self) -> std::io::Result<()> {
        self.out.write_all(b"}")
    }

    /// Stores the key and value just written into the dict below them.
    pub fn set_item(&mut self) -> std::io::Result<()> {
        self.out.write_all(b"s")
    }

    /// Writes STOP and returns the sink.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.write_all(b".")?;
        Ok(self.out)
    }

    fn int(&mut self, i: i64) -> std::io::Result<()> {
        if let Ok(v) = i32::try_from(i) {
            self.out.write_all(b"J")?;
            self.out.write_all(&v.to_le_bytes())
        } else {
            self.out.write_all(&[0x8a, 8])?;
            self.out.write_all(&i.to_le_bytes())
        }
    }

    fn str(&mut self, s: &str) -> std::io::Result<()> {
        self.out.write_all(b"X")?;
        self.out.write_all(&(s.len() as u32).to_le_bytes())?;
        self.out.write_all(s.as_bytes())
    }

    fn global(&mut self, module: &str, name: &str) -> std::io::Result<()> {
        self.str(module)?;
        self.str(name)?;
        self.out.write_all(&[0x93])
    }

    /// `_reconstruct(ndarray, (0,), b'b')` then `BUILD (1, shape, dtype, False, raw)`.
    fn array(&mut self, kind: DTypeKind, shape: &[usize], data: &[u8]) -> std::io::Result<()> {
        self.global("numpy.core.multiarray", "_reconstruct")?;
        self.global("numpy", "ndarray")?;
        self.out.write_all(b"K\x00\x85C\x01b\x87R")?;
        self.out.write_all(b"(K\x01(")?;
        for &d in shape {
            self.int(d as i64)?;
        }
        self.out.write_all(b"t")?;
        self.global("numpy", "dtype")?;
        self.str(kind.code())?;
        self.out.write_all(b"\x89\x88\x87R")?;
        let order = if kind.size() == 1 { "|" } else { "<" };
        self.out.write_all(b"(K\x03")?;
        self.str(order)?;
        self.out.write_all(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")?;
        self.out.write_all(b"\x89")?;
        self.out.write_all(&[0x8e])?;
        self.out.write_all(&(data.len() as u64).to_le_bytes())?;
        self.out.write_all(data)?;
        self.out.write_all(b"tb")
    }
}
