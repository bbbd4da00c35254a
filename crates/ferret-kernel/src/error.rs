//! The one error type of this crate, worded for whoever runs the tracer.

use std::{io, path::PathBuf};

/// Everything that can go wrong while talking to the kernel.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// Not root and some capability is missing.
    #[error("permission denied: ferret needs {missing} (or root)")]
    Permission {
        /// Human readable list, e.g. "CAP_BPF and CAP_PERFMON".
        missing: String,
    },

    /// A filesystem (tracefs, bpffs) is not mounted and we could not mount it.
    #[error("{fs} is not mounted at {path}: {reason}")]
    NotMounted {
        fs: &'static str,
        path: PathBuf,
        reason: String,
    },

    /// Reading or writing a kernel file (tracefs, procfs, sysfs) failed.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Something in a kernel file did not have the expected shape.
    #[error("unexpected contents in {path}: {detail}")]
    Parse { path: PathBuf, detail: String },

    #[error("tracepoint {category}:{event} does not exist")]
    NoSuchTracepoint { category: String, event: String },

    /// The object is malformed (names, relocations, section kinds).
    #[error("cannot load the eBPF object: {0}")]
    Object(String),

    #[error("the eBPF object has no program named {0}")]
    NoSuchProgram(String),

    #[error("the eBPF object has no map named {0}")]
    NoSuchMap(String),

    /// The program exists but is of another kind than the operation needs.
    #[error("program {program} is not a {expected} program")]
    WrongProgramType {
        program: String,
        expected: &'static str,
    },

    /// The verifier rejected a program; `log` is its complete output.
    #[error("the kernel verifier rejected program {program}:\n{log}")]
    Verifier { program: String, log: String },

    /// `BPF_PROG_LOAD` failed for another reason than the verifier.
    #[error("cannot load program {program}: {source}")]
    Load {
        program: String,
        #[source]
        source: io::Error,
    },

    /// Attaching a loaded program failed.
    #[error("cannot attach program {program} to {target}: {source}")]
    Attach {
        program: String,
        target: String,
        #[source]
        source: io::Error,
    },

    /// `BPF_PROG_TEST_RUN` (or reading a program's info) failed.
    #[error("cannot run program {program}: {source}")]
    Run {
        program: String,
        #[source]
        source: io::Error,
    },

    /// The kernel (or machine) lacks what a probe needs; the message says
    /// what and why, e.g. "kprobes are not available on this kernel
    /// (CONFIG_KPROBES is off)".
    #[error("{0}")]
    Unavailable(String),

    /// A map operation (bpf syscall) failed.
    #[error("{op} on map {map} failed: {source}")]
    Map {
        map: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },

    /// A key or value of the wrong size was passed for a map.
    #[error("map {map}: {what} is {got} bytes, the map expects {expected}")]
    MapSize {
        map: String,
        what: &'static str,
        got: usize,
        expected: usize,
    },

    /// The map exists but is of another kind than the operation needs.
    #[error("map {map} is not a {expected} map")]
    WrongMapType { map: String, expected: &'static str },

    /// Any other system call failure.
    #[error("{what}: {source}")]
    Syscall {
        what: String,
        #[source]
        source: io::Error,
    },

    /// A request that cannot be honoured as asked (bad perf event spec...).
    #[error("{0}")]
    Invalid(String),
}

impl KernelError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Shorthand used across the crate.
pub type Result<T, E = KernelError> = std::result::Result<T, E>;
