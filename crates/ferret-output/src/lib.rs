//! Everything ferret prints, in one place: values, maps, histograms, stats
//! and printf text exactly as bpftrace prints them, and the same as NDJSON
//! for `-f json`.
//!
//! * [`hist`]: bucket index arithmetic shared with the compiler, labels.
//! * [`printf`]: format string parsing and formatting.
//! * [`text`]: values and maps in the default text format.
//! * [`json`]: the `-f json` lines.

mod gfp;
pub mod hist;
pub mod json;
pub mod printf;
pub mod special;
mod stream;
pub mod text;
pub mod value;

pub use stream::MAX_WIDTH;
pub use value::{MapDump, MapEntry, MapValue, Value};
