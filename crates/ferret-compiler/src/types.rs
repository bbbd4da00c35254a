//! The types of values in a program, and how many bytes each takes in maps
//! and events.

/// A value's type after resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ty {
    /// An integer; every integer lives in a 64-bit register, `bytes` is its
    /// declared width (how casts truncate, how it is printed).
    Int {
        bytes: u8,
        signed: bool,
    },
    Bool,
    /// A NUL-terminated string in a buffer of `cap` bytes.
    Str {
        cap: u32,
    },
    Tuple(Vec<Ty>),
    /// A kernel stack, stored as the stack-map id; frames are limited to
    /// `limit` when printed.
    KStack {
        limit: u8,
    },
    /// A kernel address printed as its symbol name.
    Ksym,
    /// Statements and functions that produce no value.
    None,
}

impl Ty {
    pub const U64: Ty = Ty::Int {
        bytes: 8,
        signed: false,
    };
    pub const I64: Ty = Ty::Int {
        bytes: 8,
        signed: true,
    };
    pub const U32: Ty = Ty::Int {
        bytes: 4,
        signed: false,
    };

    /// Bytes the value takes in a map key, map value or event.
    pub fn size(&self) -> u32 {
        match self {
            Ty::Int { .. } | Ty::Bool | Ty::KStack { .. } | Ty::Ksym => 8,
            Ty::Str { cap } => *cap,
            Ty::Tuple(elems) => tuple_layout(elems).1,
            Ty::None => 0,
        }
    }

    /// Held in a register (integers and the like) rather than in memory.
    pub fn is_scalar(&self) -> bool {
        matches!(
            self,
            Ty::Int { .. } | Ty::Bool | Ty::KStack { .. } | Ty::Ksym
        )
    }

    pub fn is_signed(&self) -> bool {
        matches!(self, Ty::Int { signed: true, .. })
    }

    /// The type both `self` and `other` fit in, when they are the same kind
    /// (strings of different capacities, ints of different widths).
    pub fn unify(&self, other: &Ty) -> Option<Ty> {
        match (self, other) {
            (
                Ty::Int {
                    bytes: a,
                    signed: sa,
                },
                Ty::Int {
                    bytes: b,
                    signed: sb,
                },
            ) => Some(Ty::Int {
                bytes: (*a).max(*b),
                signed: *sa || *sb,
            }),
            (Ty::Str { cap: a }, Ty::Str { cap: b }) => Some(Ty::Str { cap: (*a).max(*b) }),
            (Ty::Tuple(a), Ty::Tuple(b)) if a.len() == b.len() => a
                .iter()
                .zip(b)
                .map(|(x, y)| x.unify(y))
                .collect::<Option<Vec<_>>>()
                .map(Ty::Tuple),
            (Ty::KStack { limit: a }, Ty::KStack { limit: b }) => Some(Ty::KStack {
                limit: (*a).max(*b),
            }),
            (a, b) if a == b => Some(a.clone()),
            _ => None,
        }
    }

    /// How the type reads in error messages, in bpftrace's terms.
    pub fn describe(&self) -> String {
        match self {
            Ty::Int { bytes, signed } => {
                format!(
                    "{}int{}",
                    if *signed { "" } else { "u" },
                    u32::from(*bytes) * 8
                )
            }
            Ty::Bool => "bool".into(),
            Ty::Str { cap } => format!("string[{cap}]"),
            Ty::Tuple(e) => format!(
                "({})",
                e.iter().map(Ty::describe).collect::<Vec<_>>().join(", ")
            ),
            Ty::KStack { .. } => "kstack".into(),
            Ty::Ksym => "ksym".into(),
            Ty::None => "none".into(),
        }
    }
}

/// Offsets of a tuple's elements and its total size; every element is
/// 8-byte aligned so integers can be loaded directly.
pub fn tuple_layout(elems: &[Ty]) -> (Vec<u32>, u32) {
    let mut offsets = Vec::with_capacity(elems.len());
    let mut off = 0;
    for e in elems {
        offsets.push(off);
        off += align8(e.size());
    }
    (offsets, off)
}

pub fn align8(n: u32) -> u32 {
    n.div_ceil(8) * 8
}
