//! The eBPF instruction set as data: instructions and their encoding
//! ([`insn`]), relocatable ELF objects the kernel loader accepts ([`elf`]),
//! and a disassembler for `--dump` ([`disasm`]).

pub mod disasm;
pub mod elf;
pub mod insn;

pub use insn::{AluOp, Insn, JmpOp, Reg, Size};
