//! A strict, non-executing reader for Python pickles (protocols 2–5) of plain containers and NumPy
//! arrays, as PYSKL's annotation files hold them, and a small protocol-4 writer of the same subset.
//!
//! The reader interprets opcodes into an arena of objects; it never calls anything. The only
//! "callables" it knows are the handful NumPy pickles name (`_reconstruct`, `ndarray`, `dtype`,
//! `_codecs.encode`, `bytes`, `scalar`, `_frombuffer`); any other global, or an opcode outside the
//! supported set, is refused with the byte offset. The memo is real: a memoised object is shared, and
//! a `BUILD` on it (a dtype's byte order, an array's state) is seen through every reference.
//!
//! Strings and byte payloads stay as ranges into the file buffer until they are used, so reading
//! keeps about one copy of the file plus the arrays a caller converts.

mod numpy;
mod reader;
mod writer;

pub use numpy::{DType, DTypeKind, NdArray};
pub use reader::{Node, Pickle};
pub use writer::{PickleWriter, WriteValue};
