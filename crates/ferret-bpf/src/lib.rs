//! The eBPF side of ferret, below code generation and above the loader.
//!
//! * [`insn`]: instructions as data (kernel `struct bpf_insn`), their
//!   8-byte encoding, constructors for the forms code generation emits, and
//!   helper function ids with their names.
//! * [`elf`]: a relocatable ELF object built in memory from programs and
//!   legacy map definitions, in the shape aya's loader accepts; map loads
//!   are tied to their maps by `R_BPF_64_64` relocations.
//! * [`disasm`]: a text listing in the kernel's "xlated" notation for
//!   `--dump`.
//!
//! Nothing here touches the kernel, so all of it is testable without root.

pub mod disasm;
pub mod elf;
pub mod insn;

pub use insn::{AluOp, Insn, JmpOp, Reg, Size};
