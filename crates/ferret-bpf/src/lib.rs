//! The eBPF side of ferret, below code generation and above the loader.
//!
//! * [`insn`]: instructions as data (kernel `struct bpf_insn`), their
//!   8-byte encoding, constructors for the forms code generation emits, and
//!   helper function ids with their names.
//! * [`object`]: an eBPF object as data (maps, programs with their map
//!   relocations and subprograms), which `ferret-kernel` loads directly.
//! * [`btf`]: the little BTF a program with subprograms needs
//!   (`func_info`).
//! * [`disasm`]: a text listing in the kernel's "xlated" notation for
//!   `--dump`.
//!
//! Nothing here touches the kernel, so all of it is testable without root.

pub mod btf;
pub mod disasm;
pub mod insn;
pub mod object;

pub use insn::{AluOp, Insn, JmpOp, Reg, Size};
