//! Kernel BTF (BPF Type Format), read by hand: types by name, struct and
//! union members with their offsets and bitfields, arrays, pointers through
//! typedefs and qualifiers, enum constants both ways, function prototypes.
//!
//! Why a reader of our own: aya-obj's `Btf` does not let code outside that
//! crate walk its types, and `btf-rs` is LGPL-2.1, which does not fit a single
//! static MIT OR Apache-2.0 binary. BTF itself is small (a header, type
//! records with a kind-specific tail, a string table), and the compiler asks
//! only a few questions of it.
//!
//! Lean by design: parsing finds where each record starts (one pass, no
//! allocation per type) and nothing else. Names are hashed only on the first
//! lookup of a kind (structs, typedefs, enum constants, ...), so a program
//! that asks for one struct pays for the struct index alone.

mod builder;
mod bytes;
mod index;
mod types;

use std::path::Path;
use std::sync::Arc;
use std::sync::OnceLock;

pub use builder::BtfBuilder;
pub use types::{
    Composite, Enum, EnumConstant, Enumerator, FuncProto, Function, Int, Kind, Member, Param,
    ProtoParam, RawTracepoint, Type,
};

use index::NameIndex;

/// A type's number in its BTF; 0 is `void`.
pub type TypeId = u32;

/// Where the running kernel publishes its BTF.
pub const VMLINUX_PATH: &str = "/sys/kernel/btf/vmlinux";
/// Where loaded modules publish theirs (split BTF on top of vmlinux's).
pub const MODULES_DIR: &str = "/sys/kernel/btf";

const MAGIC: u16 = 0xeb9f;
const HEADER_LEN: usize = 24;
/// Typedef chains and anonymous members nest at most this deep.
const MAX_DEPTH: usize = 32;

#[derive(Debug)]
pub enum BtfError {
    Io {
        path: String,
        source: std::io::Error,
    },
    Invalid(String),
}

impl std::fmt::Display for BtfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BtfError::Io { path, source } => write!(f, "cannot read {path}: {source}"),
            BtfError::Invalid(why) => write!(f, "invalid BTF: {why}"),
        }
    }
}

impl std::error::Error for BtfError {}

fn invalid(why: impl Into<String>) -> BtfError {
    BtfError::Invalid(why.into())
}

/// Families of named types, each indexed on its first lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Struct,
    Union,
    /// `enum` and `enum64`.
    Enum,
    Typedef,
    /// Base types (`int`, `unsigned long`, `_Bool`) and floats.
    Int,
    Func,
    /// Kernel variables (vmlinux BTF describes the per-CPU ones).
    Var,
}

impl NameKind {
    const ALL: usize = 7;

    fn slot(self) -> usize {
        self as usize
    }

    fn matches(self, kind: Kind) -> bool {
        match self {
            NameKind::Struct => kind == Kind::Struct,
            NameKind::Union => kind == Kind::Union,
            NameKind::Enum => matches!(kind, Kind::Enum | Kind::Enum64),
            NameKind::Typedef => kind == Kind::Typedef,
            NameKind::Int => matches!(kind, Kind::Int | Kind::Float),
            NameKind::Func => kind == Kind::Func,
            NameKind::Var => kind == Kind::Var,
        }
    }
}

/// One BTF blob: vmlinux's, a module's (split, on top of a base), or one
/// built in memory.
pub struct Btf {
    data: bytes::Bytes,
    types_start: usize,
    strs_start: usize,
    strs_len: usize,
    /// Offset of each record from `types_start`; entry `i` is type
    /// `first_id + i`.
    offsets: Vec<u32>,
    /// The kind of each record, so indexing one kind skips the others
    /// without touching their records.
    kinds: Vec<u8>,
    first_id: TypeId,
    base: Option<Arc<Btf>>,
    names: [OnceLock<NameIndex>; NameKind::ALL],
    enumerators: OnceLock<NameIndex>,
}

impl std::fmt::Debug for Btf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Btf")
            .field("bytes", &self.data.len())
            .field("first_id", &self.first_id)
            .field("types", &self.offsets.len())
            .finish()
    }
}

fn u32_at(data: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(off..off + 4)?.try_into().ok()?))
}

impl Btf {
    /// Reads the running kernel's BTF.
    pub fn vmlinux() -> Result<Btf, BtfError> {
        Btf::from_file(Path::new(VMLINUX_PATH), None)
    }

    /// Reads a loaded module's BTF, split on top of `vmlinux`.
    pub fn module(name: &str, vmlinux: Arc<Btf>) -> Result<Btf, BtfError> {
        if name.contains('/') || name.starts_with('.') {
            return Err(invalid(format!("'{name}' is not a module name")));
        }
        Btf::from_file(&Path::new(MODULES_DIR).join(name), Some(vmlinux))
    }

    /// Reads BTF from a file; `base` for split BTF.
    pub fn from_file(path: &Path, base: Option<Arc<Btf>>) -> Result<Btf, BtfError> {
        let data = bytes::load(path).map_err(|source| BtfError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Btf::parse_with(data, base)
    }

    /// Parses a complete BTF blob (types numbered from 1).
    pub fn parse(data: Vec<u8>) -> Result<Btf, BtfError> {
        Btf::parse_with(bytes::Bytes::Owned(data), None)
    }

    /// Parses split BTF: its types are numbered after `base`'s and may
    /// refer to them, its strings follow `base`'s.
    pub fn parse_split(data: Vec<u8>, base: Arc<Btf>) -> Result<Btf, BtfError> {
        Btf::parse_with(bytes::Bytes::Owned(data), Some(base))
    }

    fn parse_with(data: bytes::Bytes, base: Option<Arc<Btf>>) -> Result<Btf, BtfError> {
        if data.len() < HEADER_LEN {
            return Err(invalid("shorter than its header"));
        }
        let magic = u16::from_le_bytes([data[0], data[1]]);
        if magic != MAGIC {
            return Err(invalid(if magic == MAGIC.swap_bytes() {
                "big-endian BTF is not supported".to_string()
            } else {
                format!("bad magic {magic:#06x}")
            }));
        }
        if data[2] != 1 {
            return Err(invalid(format!("unknown version {}", data[2])));
        }
        let field = |i: usize| u32_at(&data, 4 + 4 * i).map_or(0, |v| v as usize);
        let (hdr_len, type_off, type_len, str_off, str_len) =
            (field(0), field(1), field(2), field(3), field(4));
        let types_start = hdr_len + type_off;
        let strs_start = hdr_len + str_off;
        if hdr_len < HEADER_LEN
            || types_start + type_len > data.len()
            || strs_start + str_len > data.len()
        {
            return Err(invalid("sections lie outside the data"));
        }
        let first_id = base.as_ref().map_or(1, |b| b.last_id() + 1);
        let mut offsets = Vec::with_capacity(type_len / 20);
        let mut kinds = Vec::with_capacity(type_len / 20);
        let mut off = 0;
        while off < type_len {
            offsets.push(off as u32);
            let info = u32_at(&data, types_start + off + 4).unwrap_or(0);
            kinds.push(((info >> 24) & 0x1f) as u8);
            let len = types::record_len(info)
                .ok_or_else(|| invalid(format!("unknown kind in record at {off}")))?;
            off += len;
        }
        if off != type_len {
            return Err(invalid("the last type record is cut short"));
        }
        Ok(Btf {
            data,
            types_start,
            strs_start,
            strs_len: str_len,
            offsets,
            kinds,
            first_id,
            base,
            names: Default::default(),
            enumerators: OnceLock::new(),
        })
    }

    /// The highest type id (including a split BTF's base).
    pub fn last_id(&self) -> TypeId {
        self.first_id + self.offsets.len() as u32 - 1
    }

    /// Bytes of the raw BTF held (not counting a split BTF's base).
    pub fn size_in_bytes(&self) -> usize {
        self.data.len()
    }

    /// The string at `off` in the string table (a split BTF's offsets past
    /// its base's table are its own).
    fn str_at(&self, off: u32) -> &str {
        std::str::from_utf8(self.bytes_at(off)).unwrap_or("")
    }

    fn bytes_at(&self, off: u32) -> &[u8] {
        let mut off = off as usize;
        if let Some(base) = &self.base {
            if off < base.strs_len {
                return base.bytes_at(off as u32);
            }
            off -= base.strs_len;
        }
        let Some(rest) = self
            .data
            .get(self.strs_start + off..self.strs_start + self.strs_len)
        else {
            return &[];
        };
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        &rest[..end]
    }

    /// The id, info and name-offset words of every own record whose kind
    /// `wanted` accepts, in id order.
    fn headers(&self, wanted: impl Fn(Kind) -> bool) -> impl Iterator<Item = (TypeId, u32, u32)> {
        let accepted: Vec<bool> = (0..32u32)
            .map(|k| types::kind_of(k << 24).is_some_and(&wanted))
            .collect();
        self.kinds
            .iter()
            .enumerate()
            .filter(move |&(_, &k)| accepted[usize::from(k)])
            .map(|(i, _)| {
                let at = self.types_start + self.offsets[i] as usize;
                let name_off = u32_at(&self.data, at).unwrap_or(0);
                let info = u32_at(&self.data, at + 4).unwrap_or(0);
                (self.first_id + i as u32, info, name_off)
            })
    }

    /// The raw record of type `id`: (name offset, info, size or type, tail).
    fn record(&self, id: TypeId) -> Option<types::Record<'_>> {
        if id < self.first_id {
            return self.base.as_ref()?.record(id);
        }
        let off = *self.offsets.get((id - self.first_id) as usize)? as usize;
        let at = self.types_start + off;
        let info = u32_at(&self.data, at + 4)?;
        let len = types::record_len(info)?;
        Some(types::Record {
            btf: self,
            name_off: u32_at(&self.data, at)?,
            info,
            size_or_type: u32_at(&self.data, at + 8)?,
            tail: self.data.get(at + 12..at + len)?,
        })
    }

    /// The kind of type `id`.
    pub fn kind(&self, id: TypeId) -> Option<Kind> {
        if id == 0 {
            return Some(Kind::Void);
        }
        self.record(id).map(|r| r.kind())
    }

    /// Type `id`, decoded.
    pub fn get(&self, id: TypeId) -> Option<Type<'_>> {
        if id == 0 {
            return Some(Type::Void);
        }
        self.record(id).map(|r| r.decode())
    }

    /// The name of type `id` (empty for anonymous and unnamed kinds).
    pub fn name_of(&self, id: TypeId) -> &str {
        self.record(id).map_or("", |r| r.btf.str_at(r.name_off))
    }

    /// Finds a named type of the given family. A split BTF looks in its own
    /// types first, then in its base's.
    pub fn find(&self, kind: NameKind, name: &str) -> Option<TypeId> {
        if name.is_empty() {
            return None;
        }
        let own = self
            .name_index(kind)
            .find(name.as_bytes(), |off| self.bytes_at(off));
        own.or_else(|| self.base.as_ref()?.find(kind, name))
    }

    /// Every name of a family, for suggestions.
    pub fn names(&self, kind: NameKind) -> Vec<&str> {
        let mut all = self.own_names(kind);
        if let Some(base) = &self.base {
            all.extend(base.names(kind));
        }
        all
    }

    /// The names of a family among this BTF's own types (a module's, not
    /// its base's).
    pub fn own_names(&self, kind: NameKind) -> Vec<&str> {
        self.name_index(kind)
            .ids()
            .map(|id| self.name_of(id))
            .collect()
    }

    /// Whether type `id` is one of this BTF's own (not its base's).
    pub fn owns(&self, id: TypeId) -> bool {
        id >= self.first_id
    }

    fn name_index(&self, kind: NameKind) -> &NameIndex {
        self.names[kind.slot()].get_or_init(|| {
            let matching = || {
                self.headers(|k| kind.matches(k))
                    .filter(|&(_, _, name_off)| name_off != 0)
            };
            let mut index = NameIndex::with_capacity(matching().count());
            // A later duplicate never shadows the first definition (and
            // forward declarations are another kind).
            for (id, _, name_off) in matching() {
                index.insert(name_off, id, |off| self.bytes_at(off));
            }
            index
        })
    }

    /// Follows typedefs, `const`, `volatile`, `restrict` and type tags to
    /// the type they name.
    pub fn strip(&self, mut id: TypeId) -> TypeId {
        for _ in 0..MAX_DEPTH {
            match self.get(id) {
                Some(
                    Type::Typedef { target, .. }
                    | Type::Const { target }
                    | Type::Volatile { target }
                    | Type::Restrict { target }
                    | Type::TypeTag { target, .. },
                ) => id = target,
                _ => return id,
            }
        }
        id
    }

    /// Bytes a value of type `id` takes, `None` for `void`, functions and
    /// incomplete types.
    pub fn size_of(&self, id: TypeId) -> Option<u32> {
        match self.get(self.strip(id))? {
            Type::Int(i) => Some(i.size),
            Type::Float { size, .. } => Some(size),
            Type::Ptr { .. } => Some(8),
            Type::Array { elem, len } => self.size_of(elem)?.checked_mul(len),
            Type::Struct(c) | Type::Union(c) => Some(c.size),
            Type::Enum(e) => Some(e.size),
            _ => None,
        }
    }

    /// The alignment C gives type `id` (BTF does not record it: the largest
    /// alignment among a struct's members, at most 8, or 1 for a packed
    /// struct whose size is not a multiple of it).
    pub fn align_of(&self, id: TypeId) -> Option<u32> {
        self.align_at(id, 0)
    }

    fn align_at(&self, id: TypeId, depth: usize) -> Option<u32> {
        if depth > MAX_DEPTH {
            return Some(1);
        }
        match self.get(self.strip(id))? {
            Type::Int(i) => Some(i.size.clamp(1, 16)),
            Type::Float { size, .. } => Some(size.clamp(1, 16)),
            Type::Enum(e) => Some(e.size.clamp(1, 8)),
            Type::Ptr { .. } => Some(8),
            Type::Array { elem, .. } => self.align_at(elem, depth + 1),
            Type::Struct(c) | Type::Union(c) => {
                let mut align = 1;
                for m in c.members() {
                    align = align.max(self.align_at(m.type_id, depth + 1).unwrap_or(1));
                }
                Some(if c.size % align == 0 { align } else { 1 })
            }
            _ => None,
        }
    }

    /// Member `name` of struct or union `id` (through typedefs), looking
    /// inside anonymous struct and union members as C does. The offset is
    /// from the start of `id`.
    pub fn member(&self, id: TypeId, name: &str) -> Option<Member<'_>> {
        self.member_at(id, name, 0)
    }

    fn member_at(&self, id: TypeId, name: &str, depth: usize) -> Option<Member<'_>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let (Type::Struct(c) | Type::Union(c)) = self.get(self.strip(id))? else {
            return None;
        };
        let mut anonymous = Vec::new();
        for m in c.members() {
            if m.name == name {
                return Some(self.fix_bitfield(m));
            }
            if m.name.is_empty() {
                anonymous.push(m);
            }
        }
        anonymous.into_iter().find_map(|outer| {
            let inner = self.member_at(outer.type_id, name, depth + 1)?;
            Some(Member {
                bit_offset: outer.bit_offset + inner.bit_offset,
                ..inner
            })
        })
    }

    /// Every member of struct or union `id` in declaration order, with the
    /// members of anonymous struct and union members in their place (offsets
    /// from the start of `id`), as a whole struct is printed.
    pub fn members(&self, id: TypeId) -> Vec<Member<'_>> {
        let mut out = Vec::new();
        self.collect_members(id, 0, &mut out, 0);
        out
    }

    fn collect_members<'a>(
        &'a self,
        id: TypeId,
        base: u32,
        out: &mut Vec<Member<'a>>,
        depth: usize,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        if let Some(Type::Struct(c) | Type::Union(c)) = self.get(self.strip(id)) {
            for m in c.members() {
                if m.name.is_empty() {
                    self.collect_members(m.type_id, base + m.bit_offset, out, depth + 1);
                } else {
                    let m = self.fix_bitfield(m);
                    out.push(Member {
                        bit_offset: base + m.bit_offset,
                        ..m
                    });
                }
            }
        }
    }

    /// Every member name of struct or union `id`, members of anonymous
    /// members included, in declaration order.
    pub fn member_names(&self, id: TypeId) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_member_names(id, &mut out, 0);
        out
    }

    fn collect_member_names<'a>(&'a self, id: TypeId, out: &mut Vec<&'a str>, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        if let Some(Type::Struct(c) | Type::Union(c)) = self.get(self.strip(id)) {
            for m in c.members() {
                if m.name.is_empty() {
                    self.collect_member_names(m.type_id, out, depth + 1);
                } else {
                    out.push(m.name);
                }
            }
        }
    }

    /// Old-style bitfields put the bit width and offset in the member's
    /// integer type instead of the member.
    fn fix_bitfield<'a>(&self, m: Member<'a>) -> Member<'a> {
        if m.bitfield_size != 0 {
            return m;
        }
        match self.get(self.strip(m.type_id)) {
            Some(Type::Int(i)) if i.bits != i.size * 8 || i.offset != 0 => Member {
                bit_offset: m.bit_offset + u32::from(i.offset),
                bitfield_size: i.bits as u8,
                ..m
            },
            _ => m,
        }
    }

    /// The enum constant `name` (from any enum), as the compiler resolves
    /// a bare identifier like `BPF_ANY`.
    pub fn enum_constant(&self, name: &str) -> Option<EnumConstant> {
        let index = self.enumerator_index();
        let found = index
            .find(name.as_bytes(), |off| self.bytes_at(off))
            .and_then(|id| {
                let Some(Type::Enum(e)) = self.get(id) else {
                    return None;
                };
                let v = e.values().find(|v| v.name == name)?;
                Some(EnumConstant {
                    enum_id: id,
                    value: v.value,
                    signed: e.signed,
                    size: e.size,
                })
            });
        found.or_else(|| self.base.as_ref()?.enum_constant(name))
    }

    /// Every enum constant's name, for suggestions.
    pub fn enum_constant_names(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self
            .enumerator_index()
            .name_offsets()
            .map(|off| self.str_at(off))
            .collect();
        if let Some(base) = &self.base {
            all.extend(base.enum_constant_names());
        }
        all
    }

    fn enumerator_index(&self) -> &NameIndex {
        self.enumerators.get_or_init(|| {
            let enums = || self.headers(|k| matches!(k, Kind::Enum | Kind::Enum64));
            let count = enums().map(|(_, info, _)| (info & 0xffff) as usize).sum();
            let mut index = NameIndex::with_capacity(count);
            for (id, _, _) in enums() {
                if let Some(r) = self.record(id) {
                    for name_off in r.enumerator_name_offsets() {
                        index.insert(name_off, id, |off| self.bytes_at(off));
                    }
                }
            }
            index
        })
    }

    /// The name of the enumerator of enum `id` whose value is `value`.
    pub fn enumerator_name(&self, id: TypeId, value: i64) -> Option<&str> {
        let Some(Type::Enum(e)) = self.get(self.strip(id)) else {
            return None;
        };
        e.values().find(|v| v.value == value).map(|v| v.name)
    }

    /// How C would write type `id`: `struct task_struct *`, `char[16]`,
    /// `unsigned int`, `u32`.
    pub fn type_name(&self, id: TypeId) -> String {
        self.name_with_suffix(id, String::new(), 0)
    }

    fn name_with_suffix(&self, id: TypeId, suffix: String, depth: usize) -> String {
        let join = |base: &str, suffix: &str| {
            if suffix.is_empty() {
                base.to_string()
            } else if suffix.starts_with('[') {
                format!("{base}{suffix}")
            } else {
                format!("{base} {suffix}")
            }
        };
        if depth > MAX_DEPTH {
            return join("...", &suffix);
        }
        let tagged = |tag: &str, name: &str| {
            if name.is_empty() {
                format!("{tag} (anonymous)")
            } else {
                format!("{tag} {name}")
            }
        };
        let Some(t) = self.get(id) else {
            return join("<unknown>", &suffix);
        };
        match t {
            Type::Void => join("void", &suffix),
            Type::Int(i) => join(i.name, &suffix),
            Type::Float { name, .. } => join(name, &suffix),
            Type::Ptr { target } => {
                let star = if suffix.is_empty() {
                    "*".to_string()
                } else if suffix.starts_with('[') {
                    format!("(*){suffix}")
                } else {
                    format!("*{suffix}")
                };
                self.name_with_suffix(target, star, depth + 1)
            }
            Type::Array { elem, len } => {
                self.name_with_suffix(elem, format!("{suffix}[{len}]"), depth + 1)
            }
            Type::Struct(c) => join(&tagged("struct", c.name), &suffix),
            Type::Union(c) => join(&tagged("union", c.name), &suffix),
            Type::Enum(e) => join(&tagged("enum", e.name), &suffix),
            Type::Fwd { name, union } => join(
                &tagged(if union { "union" } else { "struct" }, name),
                &suffix,
            ),
            Type::Typedef { name, .. } => join(name, &suffix),
            Type::Const { target } => {
                format!("const {}", self.name_with_suffix(target, suffix, depth + 1))
            }
            Type::Volatile { target } => {
                format!(
                    "volatile {}",
                    self.name_with_suffix(target, suffix, depth + 1)
                )
            }
            Type::Restrict { target } | Type::TypeTag { target, .. } => {
                self.name_with_suffix(target, suffix, depth + 1)
            }
            Type::FuncProto(_) | Type::Func { .. } => join("void (*)()", &suffix),
            Type::Var { name, .. } | Type::Datasec { name } | Type::DeclTag { name, .. } => {
                join(name, &suffix)
            }
        }
    }

    /// The raw tracepoint `event`: its arguments (named, from the kernel's
    /// `__probestub_EVENT` or `__traceiter_EVENT` function, without the
    /// leading `void *__data`) and the id of the `btf_trace_EVENT` typedef
    /// a `tp_btf` program attaches by.
    pub fn raw_tracepoint(&self, event: &str) -> Option<RawTracepoint> {
        let btf_trace = self.find(NameKind::Typedef, &format!("btf_trace_{event}"));
        let func = ["__probestub_", "__traceiter_"]
            .iter()
            .find_map(|prefix| self.find(NameKind::Func, &format!("{prefix}{event}")));
        let proto_of = |id: TypeId| match self.get(id)? {
            Type::Func { proto, .. } => Some(proto),
            _ => None,
        };
        // Without a named function, the typedef's prototype still gives the
        // types (its parameters are unnamed).
        let proto = match func {
            Some(f) => proto_of(f)?,
            None => match self.get(self.strip(btf_trace?))? {
                Type::Ptr { target } => target,
                _ => return None,
            },
        };
        let Some(Type::FuncProto(p)) = self.get(proto) else {
            return None;
        };
        let args = p
            .params()
            .skip(1)
            .enumerate()
            .map(|(i, p)| Param {
                name: if p.name.is_empty() {
                    format!("arg{i}")
                } else {
                    p.name.to_string()
                },
                type_id: p.type_id,
            })
            .collect();
        Some(RawTracepoint {
            event: event.to_string(),
            args,
            btf_trace_id: btf_trace,
        })
    }

    /// The kernel function `name` (this BTF's own or its base's): its `FUNC`
    /// id and prototype. Unnamed parameters are called `argN`.
    pub fn function(&self, name: &str) -> Option<Function> {
        let id = self.find(NameKind::Func, name)?;
        let Some(Type::Func { proto, .. }) = self.get(id) else {
            return None;
        };
        let Some(Type::FuncProto(p)) = self.get(proto) else {
            return None;
        };
        let args = p
            .params()
            .enumerate()
            .map(|(i, p)| Param {
                name: if p.name.is_empty() {
                    format!("arg{i}")
                } else {
                    p.name.to_string()
                },
                type_id: p.type_id,
            })
            .collect();
        Some(Function {
            name: name.to_string(),
            id,
            args,
            ret: p.ret,
        })
    }

    /// Every raw tracepoint event the BTF describes, sorted (a module's
    /// own, not its base's).
    pub fn raw_tracepoints(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .own_names(NameKind::Typedef)
            .into_iter()
            .filter_map(|n| n.strip_prefix("btf_trace_"))
            .map(str::to_string)
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests;
