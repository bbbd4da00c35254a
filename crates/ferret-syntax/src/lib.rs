//! bpftrace's language as text: lexing, parsing into an [`ast::Program`], and
//! rendering diagnostics that point at source spans.

pub mod ast;
pub mod diag;
mod lexer;
mod parser;

pub use diag::{Diagnostic, SourceFile, Span};
pub use parser::parse;
