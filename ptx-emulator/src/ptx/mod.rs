//! PTX text → [`ast::Module`]. Syntax only: the decoder gives instructions their meaning.

pub mod ast;
mod lexer;
mod parser;

pub use parser::{parse, ParseError};
