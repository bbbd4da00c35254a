//! bpftrace's language as text: preprocessing, lexing, parsing into an
//! [`ast::Program`], and rendering diagnostics that point at source spans.

pub mod ast;
pub mod diag;
mod lexer;
mod macros;
mod parser;
pub mod preprocess;

pub use diag::{Diagnostic, SourceFile, Span};
pub use parser::parse;
pub use preprocess::{Preprocessed, preprocess};
