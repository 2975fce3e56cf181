//! NumPy dtypes and arrays as they appear in pickles, and their conversion to Rust numbers.

use half::f16;

/// The element type of a NumPy array (the dtype kind string such as `'f2'`, `'<i8'`, `'u1'`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DTypeKind {
    Bool,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F16,
    F32,
    F64,
}

impl DTypeKind {
    /// Parses NumPy's dtype string (`'f4'`, `'<f4'`, `'b1'`, `'?'`); returns the kind and the byte
    /// order the string itself gives (`None` when it gives none).
    pub fn parse(text: &str) -> Option<(DTypeKind, Option<bool>)> {
        let (little, body) = match text.as_bytes().first()? {
            b'<' => (Some(true), &text[1..]),
            b'>' => (Some(false), &text[1..]),
            b'|' | b'=' => (None, &text[1..]),
            _ => (None, text),
        };
        let kind = match body {
            "?" | "b1" => DTypeKind::Bool,
            "i1" | "b" => DTypeKind::I8,
            "i2" => DTypeKind::I16,
            "i4" => DTypeKind::I32,
            "i8" => DTypeKind::I64,
            "u1" | "B" => DTypeKind::U8,
            "u2" => DTypeKind::U16,
            "u4" => DTypeKind::U32,
            "u8" => DTypeKind::U64,
            "f2" | "e" => DTypeKind::F16,
            "f4" | "f" => DTypeKind::F32,
            "f8" | "d" => DTypeKind::F64,
            _ => return None,
        };
        Some((kind, little))
    }

    pub fn size(self) -> usize {
        match self {
            DTypeKind::Bool | DTypeKind::I8 | DTypeKind::U8 => 1,
            DTypeKind::I16 | DTypeKind::U16 | DTypeKind::F16 => 2,
            DTypeKind::I32 | DTypeKind::U32 | DTypeKind::F32 => 4,
            DTypeKind::I64 | DTypeKind::U64 | DTypeKind::F64 => 8,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DTypeKind::F16 | DTypeKind::F32 | DTypeKind::F64)
    }

    /// NumPy's dtype string without byte order (`'f2'`, `'i8'`, `'b1'`).
    pub fn code(self) -> &'static str {
        match self {
            DTypeKind::Bool => "b1",
            DTypeKind::I8 => "i1",
            DTypeKind::I16 => "i2",
            DTypeKind::I32 => "i4",
            DTypeKind::I64 => "i8",
            DTypeKind::U8 => "u1",
            DTypeKind::U16 => "u2",
            DTypeKind::U32 => "u4",
            DTypeKind::U64 => "u8",
            DTypeKind::F16 => "f2",
            DTypeKind::F32 => "f4",
            DTypeKind::F64 => "f8",
        }
    }

    /// NumPy's short name (`float16`, `int64`, …), for messages.
    pub fn name(self) -> &'static str {
        match self {
            DTypeKind::Bool => "bool",
            DTypeKind::I8 => "int8",
            DTypeKind::I16 => "int16",
            DTypeKind::I32 => "int32",
            DTypeKind::I64 => "int64",
            DTypeKind::U8 => "uint8",
            DTypeKind::U16 => "uint16",
            DTypeKind::U32 => "uint32",
            DTypeKind::U64 => "uint64",
            DTypeKind::F16 => "float16",
            DTypeKind::F32 => "float32",
            DTypeKind::F64 => "float64",
        }
    }
}

/// A NumPy dtype: element kind and byte order (little-endian unless the state says `'>'`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DType {
    pub kind: DTypeKind,
    pub little_endian: bool,
}

impl DType {
    /// Element `i` of `raw` (packed elements of this dtype) as f64; exact for every kind but
    /// 64-bit integers beyond 2^53.
    fn element_f64(&self, raw: &[u8], i: usize) -> f64 {
        let n = self.kind.size();
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(&raw[i * n..(i + 1) * n]);
        if !self.little_endian {
            b[..n].reverse();
        }
        match self.kind {
            DTypeKind::Bool | DTypeKind::U8 => b[0] as f64,
            DTypeKind::I8 => b[0] as i8 as f64,
            DTypeKind::I16 => i16::from_le_bytes([b[0], b[1]]) as f64,
            DTypeKind::U16 => u16::from_le_bytes([b[0], b[1]]) as f64,
            DTypeKind::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            DTypeKind::U32 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            DTypeKind::I64 => i64::from_le_bytes(b) as f64,
            DTypeKind::U64 => u64::from_le_bytes(b) as f64,
            DTypeKind::F16 => f16::from_le_bytes([b[0], b[1]]).to_f64(),
            DTypeKind::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            DTypeKind::F64 => f64::from_le_bytes(b),
        }
    }

    /// Element `i` of `raw` as i64 (integers and bools only).
    fn element_i64(&self, raw: &[u8], i: usize) -> Option<i64> {
        let n = self.kind.size();
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(&raw[i * n..(i + 1) * n]);
        if !self.little_endian {
            b[..n].reverse();
        }
        Some(match self.kind {
            DTypeKind::Bool | DTypeKind::U8 => b[0] as i64,
            DTypeKind::I8 => b[0] as i8 as i64,
            DTypeKind::I16 => i16::from_le_bytes([b[0], b[1]]) as i64,
            DTypeKind::U16 => u16::from_le_bytes([b[0], b[1]]) as i64,
            DTypeKind::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
            DTypeKind::U32 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
            DTypeKind::I64 => i64::from_le_bytes(b),
            DTypeKind::U64 => i64::try_from(u64::from_le_bytes(b)).ok()?,
            DTypeKind::F16 | DTypeKind::F32 | DTypeKind::F64 => return None,
        })
    }
}

/// A decoded array header with its raw element bytes (borrowed from the pickle).
#[derive(Clone, Copy, Debug)]
pub struct NdArray<'a> {
    pub dtype: DType,
    pub shape: &'a [usize],
    /// Column-major element order (`is_fortran` / `order='F'`).
    pub fortran: bool,
    pub raw: &'a [u8],
}

impl NdArray<'_> {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The storage index of the element at row-major (C order) position `c_index`.
    fn storage_index(&self, c_index: usize) -> usize {
        if !self.fortran || self.shape.len() < 2 {
            return c_index;
        }
        // Unravel in C order, ravel in F order.
        let mut rest = c_index;
        let mut f_index = 0;
        for (axis, &dim) in self.shape.iter().enumerate().rev() {
            f_index += (rest % dim) * f_stride_of(self.shape, axis);
            rest /= dim;
        }
        f_index
    }

    /// All elements as f64 in C order.
    pub fn to_f64(&self) -> Vec<f64> {
        (0..self.len())
            .map(|i| self.dtype.element_f64(self.raw, self.storage_index(i)))
            .collect()
    }

    /// All elements as f32 in C order (f16 and f32 exactly; f64 rounded to nearest).
    pub fn to_f32(&self) -> Vec<f32> {
        let c_order_le = self.dtype.little_endian && (!self.fortran || self.shape.len() < 2);
        if c_order_le && self.dtype.kind == DTypeKind::F32 {
            return bytemuck::pod_collect_to_vec::<u8, f32>(self.raw);
        }
        if c_order_le && self.dtype.kind == DTypeKind::F16 {
            return self
                .raw
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect();
        }
        (0..self.len())
            .map(|i| self.dtype.element_f64(self.raw, self.storage_index(i)) as f32)
            .collect()
    }

    /// All elements as i64 in C order; `None` for float arrays or u64 values beyond i64.
    pub fn to_i64(&self) -> Option<Vec<i64>> {
        (0..self.len())
            .map(|i| self.dtype.element_i64(self.raw, self.storage_index(i)))
            .collect()
    }
}

/// The Fortran-order stride (in elements) of `axis`: the product of the dimensions before it.
fn f_stride_of(shape: &[usize], axis: usize) -> usize {
    shape[..axis].iter().product()
}
