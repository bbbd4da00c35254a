//! The types of values in a program, and how many bytes each takes in maps
//! and events.

use std::sync::Arc;

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
    /// A user stack: the stack-map id in the low 32 bits and the pid in the
    /// high 32 (frames are symbolized in that process), printed as `mode`
    /// says with at most `limit` frames.
    UStack {
        limit: u8,
        mode: crate::config::StackMode,
    },
    /// `usym(addr)`: a user address followed by the pid it belongs to (two
    /// u64s), printed as its symbol name.
    Usym,
    /// `buf(p, n)`: a u64 length followed by `cap` bytes.
    Buffer {
        cap: u32,
    },
    /// A fixed-size array of integers, packed (`char[4]`, `uint8[16]`).
    Array {
        elem: Box<Ty>,
        len: u32,
    },
    /// `(name = value, ...)`: laid out as a tuple, printed with names.
    Record(Vec<(String, Ty)>),
    /// `ntop()`: a u64 address family followed by 16 address bytes,
    /// printed as text in user space.
    Inet,
    /// `macaddr()`: 6 bytes (8 with padding), printed `AA:BB:...`.
    MacAddr,
    /// `strftime(fmt, ns)`: boot-time nanoseconds, formatted in user space
    /// with strftime format number `format`.
    Timestamp {
        format: u32,
    },
    /// `strerror(n)`: an errno, printed as its message.
    Errno,
    /// `username`: a uid, printed as its name from /etc/passwd.
    Username,
    /// A pointer to a C type (kernel BTF or the script's own definitions),
    /// printed as an address.
    Ptr(PtrTy),
    /// An integer of a C enum type: `%s` and map printing show the
    /// enumerator's name.
    Enum(Arc<EnumTy>),
    /// `cgroup_path(id, filter)`: a cgroup id, printed as its paths in the
    /// cgroup hierarchies whose names match `filter`.
    CgroupPath {
        filter: String,
    },
    /// A C struct or union read whole (`*ptr`, `curtask->se`), its bytes as
    /// in C; printed as a record of its members.
    Struct(Arc<StructTy>),
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
            Ty::Int { .. }
            | Ty::Bool
            | Ty::KStack { .. }
            | Ty::Ksym
            | Ty::Timestamp { .. }
            | Ty::Errno
            | Ty::Username
            | Ty::MacAddr
            | Ty::Ptr(_)
            | Ty::Enum(_)
            | Ty::CgroupPath { .. }
            | Ty::UStack { .. } => 8,
            Ty::Usym => 16,
            Ty::Str { cap } => *cap,
            Ty::Tuple(elems) => tuple_layout(elems).1,
            Ty::Record(fields) => record_layout(fields).1,
            Ty::Buffer { cap } => 8 + align8(*cap),
            Ty::Struct(s) => s.size,
            Ty::Array { elem, len } => elem.elem_size() * len,
            Ty::Inet => 24,
            Ty::None => 0,
        }
    }

    /// Bytes of one array element: an integer's declared width.
    pub fn elem_size(&self) -> u32 {
        match self {
            Ty::Int { bytes, .. } => u32::from(*bytes),
            Ty::Bool => 1,
            Ty::Enum(e) => u32::from(e.bytes),
            other => other.size(),
        }
    }

    /// Held in a register (integers and the like) rather than in memory.
    pub fn is_scalar(&self) -> bool {
        matches!(
            self,
            Ty::Int { .. }
                | Ty::Bool
                | Ty::KStack { .. }
                | Ty::Ksym
                | Ty::Timestamp { .. }
                | Ty::Errno
                | Ty::Username
                | Ty::Ptr(_)
                | Ty::Enum(_)
                | Ty::CgroupPath { .. }
                | Ty::UStack { .. }
        )
    }

    /// An integer or bool: what arithmetic and comparisons take.
    pub fn is_integer(&self) -> bool {
        matches!(self, Ty::Int { .. } | Ty::Bool)
    }

    pub fn is_signed(&self) -> bool {
        match self {
            Ty::Int { signed, .. } => *signed,
            Ty::Enum(e) => e.signed,
            _ => false,
        }
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
            (Ty::Buffer { cap: a }, Ty::Buffer { cap: b }) => {
                Some(Ty::Buffer { cap: (*a).max(*b) })
            }
            // Records with the same field names are one type, whatever the
            // order they were written in (bpftrace's rule); `self` keeps
            // its order.
            (Ty::Record(a), Ty::Record(b)) if a.len() == b.len() => a
                .iter()
                .map(|(n, x)| {
                    let (_, y) = b.iter().find(|(m, _)| m == n)?;
                    x.unify(y).map(|t| (n.clone(), t))
                })
                .collect::<Option<Vec<_>>>()
                .map(Ty::Record),
            // An enum's values are integers; mixing them gives an integer.
            (Ty::Enum(e), Ty::Int { bytes, signed }) | (Ty::Int { bytes, signed }, Ty::Enum(e)) => {
                Some(Ty::Int {
                    bytes: (*bytes).max(e.bytes),
                    signed: *signed || e.signed,
                })
            }
            (Ty::UStack { limit: a, mode: ma }, Ty::UStack { limit: b, mode: mb }) if ma == mb => {
                Some(Ty::UStack {
                    limit: (*a).max(*b),
                    mode: *ma,
                })
            }
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
            Ty::UStack { .. } => "ustack".into(),
            Ty::Usym => "usym".into(),
            Ty::Buffer { cap } => format!("buffer[{cap}]"),
            Ty::Array { elem, len } => format!("{}[{len}]", elem.describe()),
            Ty::Record(fields) => format!(
                "({})",
                fields
                    .iter()
                    .map(|(n, t)| format!("{n}={}", t.describe()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Ty::Inet => "inet".into(),
            Ty::MacAddr => "macaddr".into(),
            Ty::Timestamp { .. } => "timestamp".into(),
            Ty::Errno => "strerror".into(),
            Ty::Username => "username".into(),
            Ty::Ptr(p) => p.name.to_string(),
            Ty::Enum(e) => format!("enum {}", e.name),
            Ty::CgroupPath { .. } => "cgroup_path".into(),
            Ty::Struct(s) => s.name.clone(),
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

/// A record is laid out as the tuple of its field types.
pub fn record_layout(fields: &[(String, Ty)]) -> (Vec<u32>, u32) {
    let tys: Vec<Ty> = fields.iter().map(|(_, t)| t.clone()).collect();
    tuple_layout(&tys)
}

pub fn align8(n: u32) -> u32 {
    n.div_ceil(8) * 8
}

/// A pointer's target, in the compilation's table of C types. Two pointer
/// types are the same when they read the same in C (`uint32 *` from a cast
/// and from a kernel struct member).
#[derive(Debug, Clone, Eq)]
pub struct PtrTy {
    /// The pointed-to type's index in the C type table.
    pub target: u32,
    /// How the pointer type reads in C (`struct task_struct *`).
    pub name: Arc<str>,
    /// Points into user memory (read with `probe_read_user`).
    pub user: bool,
}

impl PartialEq for PtrTy {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.user == other.user
    }
}

/// A C enum: its name, width and constants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumTy {
    pub name: String,
    /// Bytes of the C type.
    pub bytes: u8,
    pub signed: bool,
    /// (value, name) of each constant, in declaration order.
    pub values: Vec<(i64, String)>,
}

impl EnumTy {
    /// The name of the constant with value `v`.
    pub fn name_of(&self, v: i64) -> Option<&str> {
        self.values
            .iter()
            .find(|(value, _)| *value == v)
            .map(|(_, n)| n.as_str())
    }
}

/// A C struct or union held as a value: its bytes as in C, and the members
/// user space prints.
#[derive(Debug, Clone, Eq)]
pub struct StructTy {
    /// `struct sched_entity`, `union (anonymous)`.
    pub name: String,
    /// Bytes, as C's `sizeof`.
    pub size: u32,
    /// Members in declaration order, those of anonymous members in their
    /// place, as bpftrace prints them.
    pub fields: Vec<StructField>,
    /// The struct's index in the compilation's table of C types.
    pub c_type: u32,
}

impl PartialEq for StructTy {
    /// The same C type; its layout follows.
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.size == other.size && self.c_type == other.c_type
    }
}

/// One member of a [`StructTy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructField {
    pub name: String,
    /// Bytes from the start of the struct.
    pub offset: u32,
    /// A bitfield's (bit offset in the bytes at `offset`, width).
    pub bits: Option<(u8, u8)>,
    /// Its type, laid out as in C: integers, enums and pointers take their
    /// C width, `Str { cap }` is a `char[cap]`, arrays are packed, and
    /// `None` stands for what cannot be printed (floats).
    pub ty: Ty,
}
