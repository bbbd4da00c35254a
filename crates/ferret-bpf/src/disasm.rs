//! Human-readable eBPF assembly, for `--dump`.
