//! Everything ferret prints, in one place: values, maps, histograms, stats
//! and printf text exactly as bpftrace prints them, and the same as NDJSON
//! for `-f json`.

pub mod hist;
pub mod value;

pub use value::{MapDump, MapEntry, MapValue, Value};
