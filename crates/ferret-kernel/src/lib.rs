//! Everything that talks to the running kernel: tracefs and bpffs, kernel
//! symbols, loading an eBPF object and attaching its programs, reading maps,
//! ring buffers and stacks.

pub mod attach;
pub mod cpus;
pub mod error;
pub mod events;
pub mod ksyms;
pub mod loader;
pub mod maps;
pub mod mounts;
pub mod privileges;
pub mod probes;
mod sys;
pub mod tracefs;

pub use attach::{HardwareEvent, PerfTarget, SoftwareEvent};
pub use error::KernelError;
pub use events::EventReader;
pub use ksyms::KernelSymbols;
pub use loader::{LoadedObject, load};
pub use maps::RawMap;
pub use mounts::{Mount, ensure_bpffs, ensure_tracefs};
