//! bpftrace programs to eBPF: name resolution and types, probe expansion,
//! lowering to instructions, and the ELF object the runtime loads.
