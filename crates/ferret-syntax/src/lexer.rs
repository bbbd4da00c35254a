//! Tokens of bpftrace's language.
