//! Decoded data, as the runtime hands it to the formatters. Nothing here
//! knows about the kernel's byte layouts.

use std::collections::BTreeMap;

/// One value of the language, decoded.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    Int(i64),
    UInt(u64),
    Bool(bool),
    /// String bytes up to (not including) the first NUL.
    Str(Vec<u8>),
    Tuple(Vec<Value>),
    /// A kernel stack, innermost frame first, each frame the whole line
    /// bpftrace prints for it in the chosen stack mode
    /// (`        do_sys_openat2+123`, `\tffffffff81234567 do_sys_openat2+123`
    /// or `ffffffff81234567`).
    Stack(Vec<String>),
    /// A symbol name (from `ksym`), printed as is.
    Sym(String),
    /// A value printed by name but used as a number by integer conversions
    /// and JSON: enum constants (`ONE`) and pointers (`0x36`, see
    /// [`Value::pointer`]).
    Symbolic {
        name: String,
        value: u64,
    },
    /// A fixed-size array, printed `[1,2,3]`.
    Array(Vec<Value>),
    /// A struct or record, printed `{ .a = 1, .b = hi }`.
    Record(Vec<(String, Value)>),
    /// `buf()` contents, printed with non-printable bytes as `\xNN`.
    Buffer(Vec<u8>),
    /// Nothing (`print` of a statement with no value).
    None,
}

impl Value {
    /// A pointer, printed as bpftrace prints pointers (`0x36`).
    pub fn pointer(addr: u64) -> Value {
        Value::Symbolic {
            name: format!("0x{addr:x}"),
            value: addr,
        }
    }
}

/// The value side of one map entry, per aggregation kind. Per-CPU values are
/// already combined by the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapValue {
    /// `@m = expr`
    Plain(Value),
    Count(u64),
    /// `sum()` of signed or unsigned values.
    Sum(Value),
    Min(i64),
    Max(i64),
    Avg {
        total: i64,
        count: u64,
    },
    Stats {
        total: i64,
        count: u64,
    },
    /// `hist(n, k)`: bucket index (as computed by [`crate::hist::log2_index`]) to count.
    Hist {
        k: u8,
        buckets: BTreeMap<u64, u64>,
    },
    /// `lhist(n, min, max, step)`: bucket index (as computed by
    /// [`crate::hist::linear_index`]) to count.
    Lhist {
        min: i64,
        max: i64,
        step: i64,
        buckets: BTreeMap<u64, u64>,
    },
}

/// One entry: the key (`None` for a scalar map like `@x`; a `Value::Tuple`
/// for `@m[a, b]`) and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapEntry {
    pub key: Option<Value>,
    pub value: MapValue,
}

/// A whole map as read at print time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapDump {
    /// With the sigil: `@`, `@bytes`.
    pub name: String,
    pub entries: Vec<MapEntry>,
}
