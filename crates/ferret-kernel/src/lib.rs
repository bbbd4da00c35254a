//! Everything that talks to the running kernel: tracefs and bpffs, kernel
//! symbols, loading an eBPF object and attaching its programs, reading maps,
//! ring buffers and stacks.
