//! bpftrace programs to eBPF: name resolution and types, probe expansion,
//! lowering to instructions, and the object (maps and programs) the runtime
//! loads.
//!
//! The compiler is pure: everything it knows about the kernel comes through
//! [`Target`], so it runs without root and its output can be tested in a
//! userspace eBPF VM.

pub mod config;
mod ctypes;
mod emit;
pub mod fentry;
mod kprobes;
mod lower;
pub mod params;
pub mod probes;
pub mod program;
pub mod syscalls;
pub mod target;
pub mod types;
mod uprobes;

pub use lower::{Options, compile};
pub use program::{Attach, CompiledProgram, EventKind, MapInfo, MapKind, PrintfInfo, ProgramInfo};
pub use syscalls::SyscallAbi;
pub use target::{FixedTarget, Target, TracepointFormat};
pub use types::Ty;
