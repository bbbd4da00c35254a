//! BTF type records and their decoded views. Each record is 12 bytes
//! (name offset, info, size-or-type) followed by a tail whose length its
//! kind and `vlen` decide.

use crate::{Btf, TypeId};

/// `BTF_KIND_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Void,
    Int,
    Ptr,
    Array,
    Struct,
    Union,
    Enum,
    Fwd,
    Typedef,
    Volatile,
    Const,
    Restrict,
    Func,
    FuncProto,
    Var,
    Datasec,
    Float,
    DeclTag,
    TypeTag,
    Enum64,
}

/// The kind in a record's info word.
pub(crate) fn kind_of(info: u32) -> Option<Kind> {
    Kind::from_info(info)
}

impl Kind {
    fn from_info(info: u32) -> Option<Kind> {
        Some(match (info >> 24) & 0x1f {
            1 => Kind::Int,
            2 => Kind::Ptr,
            3 => Kind::Array,
            4 => Kind::Struct,
            5 => Kind::Union,
            6 => Kind::Enum,
            7 => Kind::Fwd,
            8 => Kind::Typedef,
            9 => Kind::Volatile,
            10 => Kind::Const,
            11 => Kind::Restrict,
            12 => Kind::Func,
            13 => Kind::FuncProto,
            14 => Kind::Var,
            15 => Kind::Datasec,
            16 => Kind::Float,
            17 => Kind::DeclTag,
            18 => Kind::TypeTag,
            19 => Kind::Enum64,
            _ => return None,
        })
    }
}

fn vlen(info: u32) -> usize {
    (info & 0xffff) as usize
}

fn kind_flag(info: u32) -> bool {
    info >> 31 == 1
}

/// Bytes of the whole record whose info word is `info`.
pub(crate) fn record_len(info: u32) -> Option<usize> {
    let tail = match Kind::from_info(info)? {
        Kind::Int | Kind::Var | Kind::DeclTag => 4,
        Kind::Array => 12,
        Kind::Struct | Kind::Union | Kind::Datasec | Kind::Enum64 => 12 * vlen(info),
        Kind::Enum | Kind::FuncProto => 8 * vlen(info),
        _ => 0,
    };
    Some(12 + tail)
}

fn word(bytes: &[u8], i: usize) -> u32 {
    bytes
        .get(4 * i..4 * i + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

/// A raw type record.
#[derive(Clone, Copy)]
pub(crate) struct Record<'a> {
    /// The BTF the record belongs to (a split BTF's base for its types).
    pub btf: &'a Btf,
    pub name_off: u32,
    pub info: u32,
    pub size_or_type: u32,
    pub tail: &'a [u8],
}

impl<'a> Record<'a> {
    pub fn kind(&self) -> Kind {
        Kind::from_info(self.info).unwrap_or(Kind::Void)
    }

    /// The string offsets of an enum's constant names.
    pub fn enumerator_name_offsets(&self) -> impl Iterator<Item = u32> + 'a {
        let step = if self.kind() == Kind::Enum64 { 3 } else { 2 };
        let tail = self.tail;
        (0..tail.len() / (4 * step)).map(move |i| word(tail, step * i))
    }

    fn name(&self) -> &'a str {
        self.btf.str_at(self.name_off)
    }

    pub fn decode(self) -> Type<'a> {
        let name = self.name();
        let target = self.size_or_type;
        match self.kind() {
            Kind::Void => Type::Void,
            Kind::Int => {
                let enc = word(self.tail, 0);
                Type::Int(Int {
                    name,
                    size: self.size_or_type,
                    signed: enc & (1 << 24) != 0,
                    char: enc & (2 << 24) != 0,
                    bool: enc & (4 << 24) != 0,
                    offset: ((enc >> 16) & 0xff) as u8,
                    bits: enc & 0xff,
                })
            }
            Kind::Ptr => Type::Ptr { target },
            Kind::Array => Type::Array {
                elem: word(self.tail, 0),
                len: word(self.tail, 2),
            },
            Kind::Struct => Type::Struct(self.composite(name)),
            Kind::Union => Type::Union(self.composite(name)),
            Kind::Enum | Kind::Enum64 => Type::Enum(Enum {
                btf: self.btf,
                name,
                size: self.size_or_type,
                signed: kind_flag(self.info),
                wide: self.kind() == Kind::Enum64,
                tail: self.tail,
            }),
            Kind::Fwd => Type::Fwd {
                name,
                union: kind_flag(self.info),
            },
            Kind::Typedef => Type::Typedef { name, target },
            Kind::Volatile => Type::Volatile { target },
            Kind::Const => Type::Const { target },
            Kind::Restrict => Type::Restrict { target },
            Kind::TypeTag => Type::TypeTag { name, target },
            Kind::Func => Type::Func {
                name,
                proto: target,
                linkage: vlen(self.info) as u32,
            },
            Kind::FuncProto => Type::FuncProto(FuncProto {
                btf: self.btf,
                ret: target,
                tail: self.tail,
            }),
            Kind::Var => Type::Var { name, target },
            Kind::Datasec => Type::Datasec { name },
            Kind::Float => Type::Float {
                name,
                size: self.size_or_type,
            },
            Kind::DeclTag => Type::DeclTag { name, target },
        }
    }

    fn composite(&self, name: &'a str) -> Composite<'a> {
        Composite {
            btf: self.btf,
            name,
            size: self.size_or_type,
            bitfields: kind_flag(self.info),
            tail: self.tail,
        }
    }
}

/// A decoded type. Names are empty for anonymous types.
#[derive(Debug, Clone, Copy)]
pub enum Type<'a> {
    Void,
    Int(Int<'a>),
    Ptr {
        target: TypeId,
    },
    Array {
        elem: TypeId,
        len: u32,
    },
    Struct(Composite<'a>),
    Union(Composite<'a>),
    /// `enum` and `enum64`.
    Enum(Enum<'a>),
    /// A forward declaration, `struct name;`.
    Fwd {
        name: &'a str,
        union: bool,
    },
    Typedef {
        name: &'a str,
        target: TypeId,
    },
    Volatile {
        target: TypeId,
    },
    Const {
        target: TypeId,
    },
    Restrict {
        target: TypeId,
    },
    TypeTag {
        name: &'a str,
        target: TypeId,
    },
    Func {
        name: &'a str,
        proto: TypeId,
        linkage: u32,
    },
    FuncProto(FuncProto<'a>),
    Var {
        name: &'a str,
        target: TypeId,
    },
    Datasec {
        name: &'a str,
    },
    Float {
        name: &'a str,
        size: u32,
    },
    DeclTag {
        name: &'a str,
        target: TypeId,
    },
}

/// A base integer type.
#[derive(Debug, Clone, Copy)]
pub struct Int<'a> {
    pub name: &'a str,
    /// Bytes.
    pub size: u32,
    pub signed: bool,
    /// `char`: arrays of it read as strings.
    pub char: bool,
    pub bool: bool,
    /// Bit offset and width within `size` (old-style bitfields).
    pub offset: u8,
    pub bits: u32,
}

/// A struct or union.
#[derive(Clone, Copy)]
pub struct Composite<'a> {
    btf: &'a Btf,
    pub name: &'a str,
    /// Bytes.
    pub size: u32,
    bitfields: bool,
    tail: &'a [u8],
}

impl std::fmt::Debug for Composite<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Composite({:?}, {} bytes)", self.name, self.size)
    }
}

/// One member of a struct or union, as declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    pub name: &'a str,
    pub type_id: TypeId,
    /// From the start of the struct (or of the outermost struct, for
    /// members found through anonymous members).
    pub bit_offset: u32,
    /// Width in bits of a bitfield, 0 for a plain member.
    pub bitfield_size: u8,
}

impl<'a> Composite<'a> {
    pub fn members(&self) -> impl Iterator<Item = Member<'a>> + 'a {
        let (btf, tail, bitfields) = (self.btf, self.tail, self.bitfields);
        (0..tail.len() / 12).map(move |i| {
            let offset = word(tail, 3 * i + 2);
            let (bit_offset, bitfield_size) = if bitfields {
                (offset & 0x00ff_ffff, (offset >> 24) as u8)
            } else {
                (offset, 0)
            };
            Member {
                name: btf.str_at(word(tail, 3 * i)),
                type_id: word(tail, 3 * i + 1),
                bit_offset,
                bitfield_size,
            }
        })
    }

    pub fn len(&self) -> usize {
        self.tail.len() / 12
    }

    pub fn is_empty(&self) -> bool {
        self.tail.is_empty()
    }
}

/// An enum: its constants and their width.
#[derive(Clone, Copy)]
pub struct Enum<'a> {
    btf: &'a Btf,
    pub name: &'a str,
    /// Bytes.
    pub size: u32,
    pub signed: bool,
    wide: bool,
    tail: &'a [u8],
}

impl std::fmt::Debug for Enum<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Enum({:?}, {} bytes)", self.name, self.size)
    }
}

/// One enum constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enumerator<'a> {
    pub name: &'a str,
    /// The value; an unsigned 64-bit enum's large values wrap negative.
    pub value: i64,
}

impl<'a> Enum<'a> {
    pub fn values(&self) -> impl Iterator<Item = Enumerator<'a>> + 'a {
        let (btf, tail, wide, signed) = (self.btf, self.tail, self.wide, self.signed);
        let step = if wide { 3 } else { 2 };
        (0..tail.len() / (4 * step)).map(move |i| {
            let lo = word(tail, step * i + 1);
            let value = if wide {
                (u64::from(word(tail, step * i + 2)) << 32 | u64::from(lo)) as i64
            } else if signed {
                i64::from(lo as i32)
            } else {
                i64::from(lo)
            };
            Enumerator {
                name: btf.str_at(word(tail, step * i)),
                value,
            }
        })
    }
}

/// A function prototype.
#[derive(Clone, Copy)]
pub struct FuncProto<'a> {
    btf: &'a Btf,
    pub ret: TypeId,
    tail: &'a [u8],
}

impl std::fmt::Debug for FuncProto<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FuncProto(returns {}, {} params)",
            self.ret,
            self.tail.len() / 8
        )
    }
}

/// One parameter of a prototype (`name` may be empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtoParam<'a> {
    pub name: &'a str,
    pub type_id: TypeId,
}

impl<'a> FuncProto<'a> {
    pub fn params(&self) -> impl Iterator<Item = ProtoParam<'a>> + 'a {
        let (btf, tail) = (self.btf, self.tail);
        (0..tail.len() / 8).map(move |i| ProtoParam {
            name: btf.str_at(word(tail, 2 * i)),
            type_id: word(tail, 2 * i + 1),
        })
    }
}

/// An enum constant found by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnumConstant {
    /// The enum it belongs to.
    pub enum_id: TypeId,
    pub value: i64,
    pub signed: bool,
    /// Bytes of the enum.
    pub size: u32,
}

/// A named parameter, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub type_id: TypeId,
}

/// A kernel function as fentry/fexit see it: what they attach by, and the
/// types of its arguments and return value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    /// The `FUNC` record (fentry/fexit programs attach by its id).
    pub id: TypeId,
    pub args: Vec<Param>,
    /// 0 for `void`.
    pub ret: TypeId,
}

/// What the compiler needs to attach to a raw tracepoint and type its
/// arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTracepoint {
    pub event: String,
    /// The arguments after the hidden `void *__data`.
    pub args: Vec<Param>,
    /// The `btf_trace_EVENT` typedef (`tp_btf` programs attach by its id).
    pub btf_trace_id: Option<TypeId>,
}
