//! The C types a program uses, in one table: imported from the kernel's BTF
//! when first named, defined by the script (`struct S { .. };`, laid out
//! with C's rules), or built by casts (`(uint8 *)`). Pointer values carry
//! the index of what they point to ([`crate::types::PtrTy`]).
//!
//! Imports are shallow: a struct comes in as a name and a BTF id, and only
//! the members a program touches are imported, so `task_struct` does not
//! drag in the kernel's whole type graph.

use std::collections::HashMap;
use std::sync::Arc;

use ferret_btf::{Btf, NameKind, Type, TypeId};
use ferret_syntax::ast::{CDefinition, CDefinitionKind, CEnum, CRecord, CTypeBase, CTypeSpec};
use ferret_syntax::diag::closest;
use ferret_syntax::{Diagnostic, Span};

use crate::target::Target;
use crate::types::{EnumTy, PtrTy, StructField, StructTy, Ty, align8};

/// An index into [`CTypes`].
pub(crate) type CId = u32;

/// Which BTF a kernel type is from: 0 is vmlinux's, `n` the `n`-th
/// module's a program used.
pub(crate) type BtfSrc = u16;

/// A type in one of the kernel's BTFs. A module's BTF is split on top of
/// vmlinux's: its ids below its own are vmlinux's types, and are always
/// referred to as such (see [`CTypes::norm`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct BtfRef {
    pub src: BtfSrc,
    pub id: TypeId,
}

#[derive(Debug, Clone)]
pub(crate) enum CType {
    Void,
    Int {
        bytes: u8,
        signed: bool,
    },
    Bool,
    Float {
        bytes: u8,
    },
    Ptr(CId),
    Array {
        elem: CId,
        len: u32,
    },
    Record(Record),
    Enum(Arc<EnumTy>),
    /// What a function pointer points to.
    Func,
    /// A value of the language kept in the program's memory as the
    /// language lays it out (a tuple, a record, ...): what `&$v` points to.
    Lang(Ty),
}

#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub union: bool,
    /// Empty for anonymous records.
    pub name: String,
    pub body: Body,
}

#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// Known by name only (a forward declaration, a cast's target): found
    /// when first needed, in the script's definitions, then in BTF.
    ByName,
    Btf(BtfRef),
    Script {
        size: u32,
        align: u32,
        members: Vec<CMember>,
    },
}

/// A member of a struct or union.
#[derive(Debug, Clone)]
pub(crate) struct CMember {
    /// Empty for an anonymous struct or union member.
    pub name: String,
    /// From the start of the record.
    pub bit_offset: u32,
    /// Width of a bitfield; 0 for a plain member.
    pub bits: u8,
    pub ty: CId,
}

/// Where the kernel publishes BTF, for "no BTF" errors.
const NO_BTF_HELP: &str = "kernel types come from /sys/kernel/btf/vmlinux (kernels built with \
     CONFIG_DEBUG_INFO_BTF=y) or the file BPFTRACE_BTF names; a script can also define its \
     own: struct S { ... };";

pub(crate) struct CTypes<'t> {
    target: &'t dyn Target,
    btf: Option<Result<&'t Btf, String>>,
    /// Modules' BTFs a program used, by module name: source `n` is
    /// `modules[n - 1]`.
    modules: Vec<(String, &'t Btf)>,
    types: Vec<CType>,
    from_btf: HashMap<BtfRef, CId>,
    /// The script's definitions: `struct S`, `union U`, `enum E`, typedef
    /// names.
    script: HashMap<String, CId>,
    /// The script's enum constants.
    script_constants: HashMap<String, (Arc<EnumTy>, i64)>,
    pointers: HashMap<CId, CId>,
    /// Records known by name only, so every cast to `struct S *` shares one.
    by_name: HashMap<String, CId>,
    /// Base types by name, each added once.
    bases: HashMap<String, CId>,
    /// Records as whole values, each laid out once.
    structs: HashMap<CId, Arc<StructTy>>,
    /// Records made up for a probe's `args`, by name.
    made_up: HashMap<String, CId>,
}

/// C's and bpftrace's names of base types.
fn base_type(name: &str) -> Option<CType> {
    let int = |bytes, signed| Some(CType::Int { bytes, signed });
    match name {
        "void" => Some(CType::Void),
        "bool" | "_Bool" => Some(CType::Bool),
        "float" => Some(CType::Float { bytes: 4 }),
        "double" => Some(CType::Float { bytes: 8 }),
        "char" | "signed char" | "int8" | "s8" | "__s8" | "int8_t" => int(1, true),
        "unsigned char" | "uint8" | "u8" | "__u8" | "uint8_t" => int(1, false),
        "short" | "short int" | "signed short" | "signed short int" | "int16" | "s16" | "__s16"
        | "int16_t" => int(2, true),
        "unsigned short" | "unsigned short int" | "uint16" | "u16" | "__u16" | "uint16_t" => {
            int(2, false)
        }
        "int" | "signed" | "signed int" | "int32" | "s32" | "__s32" | "int32_t" | "pid_t" => {
            int(4, true)
        }
        "unsigned" | "unsigned int" | "uint32" | "u32" | "__u32" | "uint32_t" => int(4, false),
        "long"
        | "long int"
        | "signed long"
        | "signed long int"
        | "long long"
        | "long long int"
        | "signed long long"
        | "signed long long int"
        | "int64"
        | "s64"
        | "__s64"
        | "int64_t"
        | "ssize_t"
        | "loff_t" => int(8, true),
        "unsigned long"
        | "unsigned long int"
        | "unsigned long long"
        | "unsigned long long int"
        | "uint64"
        | "u64"
        | "__u64"
        | "uint64_t"
        | "size_t"
        | "uintptr_t" => int(8, false),
        _ => None,
    }
}

fn align_up(v: u64, to: u64) -> u64 {
    v.div_ceil(to.max(1)) * to.max(1)
}

impl<'t> CTypes<'t> {
    pub fn new(target: &'t dyn Target) -> Self {
        Self {
            target,
            btf: None,
            modules: Vec::new(),
            types: Vec::new(),
            from_btf: HashMap::new(),
            script: HashMap::new(),
            script_constants: HashMap::new(),
            pointers: HashMap::new(),
            by_name: HashMap::new(),
            bases: HashMap::new(),
            structs: HashMap::new(),
            made_up: HashMap::new(),
        }
    }

    /// The kernel's BTF, loaded on first use.
    pub fn btf(&mut self) -> Result<&'t Btf, String> {
        let target = self.target;
        self.btf.get_or_insert_with(|| target.btf()).clone()
    }

    /// The BTF a type comes from.
    pub fn btf_of(&mut self, src: BtfSrc) -> Result<&'t Btf, String> {
        match src {
            0 => self.btf(),
            n => self
                .modules
                .get(usize::from(n) - 1)
                .map(|(_, b)| *b)
                .ok_or_else(|| format!("no BTF source {n}")),
        }
    }

    /// The BTF of kernel module `name` (`vmlinux` is the kernel's own),
    /// read on first use.
    pub fn module(&mut self, name: &str) -> Result<BtfSrc, String> {
        if name == "vmlinux" {
            return self.btf().map(|_| 0);
        }
        if let Some(i) = self.modules.iter().position(|(n, _)| n == name) {
            return Ok(i as BtfSrc + 1);
        }
        self.btf()?;
        let btf = self.target.module_btf(name)?;
        self.modules.push((name.to_string(), btf));
        Ok(self.modules.len() as BtfSrc)
    }

    /// `r` as vmlinux's when it is one of the types a module's BTF shares
    /// with it.
    fn norm(&mut self, r: BtfRef) -> BtfRef {
        match self.btf_of(r.src) {
            Ok(btf) if r.src != 0 && !btf.owns(r.id) => BtfRef { src: 0, id: r.id },
            _ => r,
        }
    }

    /// A named type of the kernel: vmlinux's, else a module's (all
    /// modules' BTF is read on such a miss).
    fn find(&mut self, kind: NameKind, name: &str) -> Option<BtfRef> {
        let vmlinux = self.btf().ok()?;
        if let Some(id) = vmlinux.find(kind, name) {
            return Some(BtfRef { src: 0, id });
        }
        for module in self.target.btf_modules() {
            let Ok(src) = self.module(&module) else {
                continue;
            };
            let btf = self.btf_of(src).ok()?;
            if let Some(id) = btf.find(kind, name).filter(|&id| btf.owns(id)) {
                return Some(BtfRef { src, id });
            }
        }
        None
    }

    fn no_btf(&mut self, span: Span, what: &str) -> Option<Diagnostic> {
        match self.btf() {
            Ok(_) => None,
            Err(why) => Some(
                Diagnostic::error(span, format!("{what} needs the kernel's BTF: {why}"))
                    .with_label("no kernel type information")
                    .with_help(NO_BTF_HELP),
            ),
        }
    }

    pub fn get(&self, id: CId) -> &CType {
        &self.types[id as usize]
    }

    fn push(&mut self, t: CType) -> CId {
        self.types.push(t);
        self.types.len() as CId - 1
    }

    pub fn pointer_to(&mut self, target: CId) -> CId {
        if let Some(&p) = self.pointers.get(&target) {
            return p;
        }
        let p = self.push(CType::Ptr(target));
        self.pointers.insert(target, p);
        p
    }

    pub fn array_of(&mut self, elem: CId, len: u32) -> CId {
        self.push(CType::Array { elem, len })
    }

    /// The C type of memory holding a value of type `ty` as the language
    /// lays it out: integers are 8-byte words (read narrower, they still
    /// give the value, little-endian), strings `char` arrays, structs
    /// themselves.
    pub fn of_value(&mut self, ty: &Ty) -> CId {
        match ty {
            Ty::Ptr(p) => self.pointer_to(p.target),
            Ty::Struct(s) => s.c_type,
            Ty::Str { cap } => {
                let char_t = self.of_value(&Ty::Int {
                    bytes: 1,
                    signed: true,
                });
                self.array_of(char_t, *cap)
            }
            other => {
                let key = other.describe();
                if let Some(&id) = self.bases.get(&key) {
                    return id;
                }
                let id = self.push(match other {
                    Ty::Int { bytes, signed } => CType::Int {
                        bytes: *bytes,
                        signed: *signed,
                    },
                    Ty::Bool => CType::Bool,
                    Ty::Enum(e) => CType::Enum(Arc::clone(e)),
                    other => CType::Lang(other.clone()),
                });
                self.bases.insert(key, id);
                id
            }
        }
    }

    /// A record known by name only, found when first needed.
    pub fn record_by_name(&mut self, union: bool, name: &str) -> CId {
        let key = format!("{} {name}", if union { "union" } else { "struct" });
        if let Some(&id) = self.by_name.get(&key) {
            return id;
        }
        let id = self.push(CType::Record(Record {
            union,
            name: name.to_string(),
            body: Body::ByName,
        }));
        self.by_name.insert(key, id);
        id
    }

    /// `struct task_struct` as the target of `curtask`, resolved on the
    /// first member access.
    pub fn task_struct(&mut self) -> CId {
        self.record_by_name(false, "task_struct")
    }

    /// Imports BTF type `r` (typedefs and qualifiers dropped).
    pub fn import(&mut self, r: BtfRef) -> CId {
        let r = self.norm(r);
        let Ok(btf) = self.btf_of(r.src) else {
            return self.push(CType::Void);
        };
        let id = btf.strip(r.id);
        let r = self.norm(BtfRef { src: r.src, id });
        let src = r.src;
        let in_src = |id| BtfRef { src, id };
        if let Some(&c) = self.from_btf.get(&r) {
            return c;
        }
        let t = match btf.get(id) {
            Some(Type::Int(i)) if i.bool => CType::Bool,
            Some(Type::Int(i)) => CType::Int {
                bytes: i.size.min(255) as u8,
                signed: i.signed,
            },
            Some(Type::Float { size, .. }) => CType::Float { bytes: size as u8 },
            Some(Type::Ptr { target }) => {
                let to = self.import(in_src(target));
                // Pointers are shared with casts to the same type.
                let p = self.pointer_to(to);
                self.from_btf.insert(r, p);
                return p;
            }
            Some(Type::Array { elem, len }) => CType::Array {
                elem: self.import(in_src(elem)),
                len,
            },
            Some(Type::Struct(c)) | Some(Type::Union(c)) => {
                let union = matches!(btf.get(id), Some(Type::Union(_)));
                if !c.name.is_empty()
                    && let Some(&script) = self.script.get(&format!(
                        "{} {}",
                        if union { "union" } else { "struct" },
                        c.name
                    ))
                {
                    // The script's definition wins over the kernel's.
                    self.from_btf.insert(r, script);
                    return script;
                }
                CType::Record(Record {
                    union,
                    name: c.name.to_string(),
                    body: Body::Btf(r),
                })
            }
            Some(Type::Fwd { name, union }) => {
                let named = self.record_by_name(union, name);
                self.from_btf.insert(r, named);
                return named;
            }
            Some(Type::Enum(e)) if !e.name.is_empty() => CType::Enum(Arc::new(EnumTy {
                name: e.name.to_string(),
                bytes: e.size.clamp(1, 8) as u8,
                signed: e.signed,
                values: e.values().map(|v| (v.value, v.name.to_string())).collect(),
            })),
            Some(Type::Enum(e)) => CType::Int {
                bytes: e.size.clamp(1, 8) as u8,
                signed: e.signed,
            },
            Some(Type::Func { .. } | Type::FuncProto(_)) => CType::Func,
            _ => CType::Void,
        };
        let c = self.push(t);
        self.from_btf.insert(r, c);
        c
    }

    /// How type `id` reads in messages: `struct task_struct`, `uint32`,
    /// `char[16]`, `struct sock *`.
    pub fn name(&self, id: CId) -> String {
        match self.get(id) {
            CType::Void => "void".into(),
            CType::Int { bytes, signed } => {
                format!(
                    "{}int{}",
                    if *signed { "" } else { "u" },
                    u32::from(*bytes) * 8
                )
            }
            CType::Bool => "bool".into(),
            CType::Float { bytes } => if *bytes == 4 { "float" } else { "double" }.into(),
            CType::Ptr(t) => {
                let inner = self.name(*t);
                if inner.ends_with('*') {
                    format!("{inner}*")
                } else {
                    format!("{inner} *")
                }
            }
            CType::Array { elem, len } => format!("{}[{len}]", self.name(*elem)),
            CType::Record(r) => format!(
                "{} {}",
                if r.union { "union" } else { "struct" },
                if r.name.is_empty() {
                    "(anonymous)"
                } else {
                    &r.name
                }
            ),
            CType::Enum(e) => format!("enum {}", e.name),
            CType::Func => "function".into(),
            CType::Lang(t) => t.describe(),
        }
    }

    /// Finds a record's definition: the script's, else the kernel's.
    pub fn resolve(&mut self, id: CId, span: Span) -> Result<(), Diagnostic> {
        let CType::Record(r) = self.get(id).clone() else {
            return Ok(());
        };
        if !matches!(r.body, Body::ByName) {
            return Ok(());
        }
        let tag = if r.union { "union" } else { "struct" };
        let key = format!("{tag} {}", r.name);
        if let Some(&script) = self.script.get(&key)
            && script != id
        {
            self.types[id as usize] = self.types[script as usize].clone();
            return Ok(());
        }
        if let Some(d) = self.no_btf(span, &format!("'{key}'")) {
            return Err(d);
        }
        let kind = if r.union {
            NameKind::Union
        } else {
            NameKind::Struct
        };
        match self.find(kind, &r.name) {
            Some(found) => {
                self.types[id as usize] = CType::Record(Record {
                    body: Body::Btf(found),
                    ..r
                });
                self.from_btf.insert(found, id);
                Ok(())
            }
            None => Err(self.unknown_record(r.union, &r.name, span)),
        }
    }

    fn unknown_record(&mut self, union: bool, name: &str, span: Span) -> Diagnostic {
        let tag = if union { "union" } else { "struct" };
        let mut d = Diagnostic::error(span, format!("unknown {tag} '{name}'"))
            .with_label(format!("no {tag} of this name"));
        let mut candidates: Vec<String> = self
            .script
            .keys()
            .filter_map(|k| k.strip_prefix(&format!("{tag} ")).map(str::to_string))
            .collect();
        if let Ok(btf) = self.btf() {
            let kind = if union {
                NameKind::Union
            } else {
                NameKind::Struct
            };
            let len = name.len();
            candidates.extend(
                btf.names(kind)
                    .into_iter()
                    .filter(|n| n.len().abs_diff(len) <= len / 3 + 1)
                    .map(str::to_string),
            );
        }
        if let Some(best) = closest(name, candidates.iter().map(String::as_str)) {
            d = d.with_help(format!("did you mean '{tag} {best}'?"));
        }
        d
    }

    /// The type a cast or `sizeof` names: `struct task_struct`, `uint32`,
    /// `enum pid_type`, a typedef.
    pub fn named(&mut self, name: &str, span: Span) -> Result<CId, Diagnostic> {
        if let Some(&id) = self.script.get(name) {
            return Ok(id);
        }
        if let Some(&id) = self.bases.get(name) {
            return Ok(id);
        }
        if let Some(t) = base_type(name) {
            let id = self.push(t);
            self.bases.insert(name.to_string(), id);
            return Ok(id);
        }
        let (kind, bare) = match name.split_once(' ') {
            Some(("struct", n)) => (NameKind::Struct, n),
            Some(("union", n)) => (NameKind::Union, n),
            Some(("enum", n)) => (NameKind::Enum, n),
            _ => (NameKind::Typedef, name),
        };
        if let Some(d) = self.no_btf(span, &format!("'{name}'")) {
            return Err(d);
        }
        let btf = self.btf().map_err(|e| Diagnostic::error(span, e))?;
        let found = match self.find(kind, bare) {
            None if kind == NameKind::Typedef => self.find(NameKind::Int, bare),
            found => found,
        };
        match found {
            Some(r) => Ok(self.import(r)),
            None if matches!(kind, NameKind::Struct | NameKind::Union) => {
                Err(self.unknown_record(kind == NameKind::Union, bare, span))
            }
            None => {
                let what = if kind == NameKind::Enum {
                    "enum"
                } else {
                    "type"
                };
                let mut d = Diagnostic::error(span, format!("unknown {what} '{name}'"))
                    .with_label(format!("no {what} of this name"));
                let candidates = btf.names(kind);
                if let Some(best) = closest(bare, candidates.iter().copied()) {
                    d = d.with_help(format!("did you mean '{best}'?"));
                }
                Err(d)
            }
        }
    }

    /// Bytes of a value of type `id`; `None` when unknown (`void`,
    /// functions, undefined records).
    pub fn size_of(&mut self, id: CId, span: Span) -> Result<Option<u32>, Diagnostic> {
        self.resolve(id, span)?;
        Ok(match self.get(id).clone() {
            CType::Void | CType::Func => None,
            CType::Int { bytes, .. } | CType::Float { bytes } => Some(u32::from(bytes)),
            CType::Bool => Some(1),
            CType::Enum(e) => Some(u32::from(e.bytes)),
            CType::Ptr(_) => Some(8),
            CType::Lang(t) => Some(t.size()),
            CType::Array { elem, len } => self.size_of(elem, span)?.map(|s| s * len),
            CType::Record(r) => match r.body {
                Body::Btf(b) => self.btf_of(b.src).ok().and_then(|btf| btf.size_of(b.id)),
                Body::Script { size, .. } => Some(size),
                Body::ByName => None,
            },
        })
    }

    fn align_of(&mut self, id: CId, span: Span) -> Result<u32, Diagnostic> {
        self.resolve(id, span)?;
        Ok(match self.get(id).clone() {
            CType::Int { bytes, .. } | CType::Float { bytes } => u32::from(bytes).clamp(1, 8),
            CType::Enum(e) => u32::from(e.bytes),
            CType::Ptr(_) | CType::Lang(_) => 8,
            CType::Array { elem, .. } => self.align_of(elem, span)?,
            CType::Record(r) => match r.body {
                Body::Btf(b) => self
                    .btf_of(b.src)
                    .ok()
                    .and_then(|btf| btf.align_of(b.id))
                    .unwrap_or(1),
                Body::Script { align, .. } => align,
                Body::ByName => 1,
            },
            CType::Void | CType::Bool | CType::Func => 1,
        })
    }

    /// Member `name` of record `id`, looking inside anonymous members.
    pub fn member(&mut self, id: CId, name: &str, span: Span) -> Result<CMember, Diagnostic> {
        self.resolve(id, span)?;
        let CType::Record(r) = self.get(id).clone() else {
            return Err(Diagnostic::error(
                span,
                format!("{} has no members", self.name(id)),
            ));
        };
        let found = match &r.body {
            Body::Btf(b) => {
                let btf = self.btf_of(b.src).map_err(|e| Diagnostic::error(span, e))?;
                btf.member(b.id, name).map(|m| CMember {
                    name: name.to_string(),
                    bit_offset: m.bit_offset,
                    bits: m.bitfield_size,
                    ty: self.import(BtfRef {
                        src: b.src,
                        id: m.type_id,
                    }),
                })
            }
            Body::Script { members, .. } => self.script_member(members, name, 0),
            Body::ByName => None,
        };
        found.ok_or_else(|| {
            let names = self.member_names(id);
            let mut d =
                Diagnostic::error(span, format!("{} has no member '{name}'", self.name(id)))
                    .with_label("unknown member");
            // One or two letters are close to too much to guess from.
            let guess = if name.chars().count() > 2 {
                closest(name, names.iter().map(String::as_str))
            } else {
                None
            };
            d = match guess {
                Some(best) => d.with_help(format!("did you mean '{best}'?")),
                None if names.len() <= 12 => {
                    d.with_help(format!("its members are: {}", names.join(", ")))
                }
                None => d.with_help(format!(
                    "its members include: {}, ...",
                    names[..12].join(", ")
                )),
            };
            d
        })
    }

    fn script_member(&self, members: &[CMember], name: &str, depth: usize) -> Option<CMember> {
        if let Some(m) = members.iter().find(|m| m.name == name) {
            return Some(m.clone());
        }
        if depth > 16 {
            return None;
        }
        members
            .iter()
            .filter(|m| m.name.is_empty())
            .find_map(|outer| {
                let CType::Record(Record {
                    body: Body::Script { members, .. },
                    ..
                }) = self.get(outer.ty)
                else {
                    return None;
                };
                let inner = self.script_member(members, name, depth + 1)?;
                Some(CMember {
                    bit_offset: outer.bit_offset + inner.bit_offset,
                    ..inner
                })
            })
    }

    /// Every member name of record `id` (anonymous members' included).
    pub fn member_names(&mut self, id: CId) -> Vec<String> {
        let CType::Record(r) = self.get(id).clone() else {
            return Vec::new();
        };
        match r.body {
            Body::Btf(b) => self.btf_of(b.src).map_or_else(
                |_| Vec::new(),
                |btf| {
                    btf.member_names(b.id)
                        .into_iter()
                        .map(str::to_string)
                        .collect()
                },
            ),
            Body::Script { members, .. } => {
                let mut out = Vec::new();
                for m in members {
                    if m.name.is_empty() {
                        out.extend(self.member_names(m.ty));
                    } else {
                        out.push(m.name);
                    }
                }
                out
            }
            Body::ByName => Vec::new(),
        }
    }

    /// An enum constant by name: the script's, else the kernel's. `None`
    /// when there is none (or no BTF to look in).
    pub fn enum_constant(&mut self, name: &str) -> Option<(Arc<EnumTy>, i64)> {
        if let Some(c) = self.script_constants.get(name) {
            return Some(c.clone());
        }
        // The kernel's, then those of the modules the program used.
        let (src, c) = (0..=self.modules.len() as BtfSrc).find_map(|src| {
            let c = self.btf_of(src).ok()?.enum_constant(name)?;
            Some((src, c))
        })?;
        let id = self.import(BtfRef { src, id: c.enum_id });
        let def = match self.get(id) {
            CType::Enum(e) => Arc::clone(e),
            // An anonymous enum: its constants are plain integers, but they
            // still print by name.
            _ => Arc::new(EnumTy {
                name: String::new(),
                bytes: c.size.clamp(1, 8) as u8,
                signed: c.signed,
                values: vec![(c.value, name.to_string())],
            }),
        };
        Some((def, c.value))
    }

    /// The enum constant (the script's or the kernel's) closest to `name`,
    /// for "did you mean" help.
    pub fn closest_enum_constant(&mut self, name: &str) -> Option<String> {
        let btf_names = self.btf().map(Btf::enum_constant_names).unwrap_or_default();
        let mut candidates: Vec<&str> = self.script_constants.keys().map(String::as_str).collect();
        let len = name.len();
        candidates.extend(
            btf_names
                .into_iter()
                .filter(|n| n.len().abs_diff(len) <= len / 3 + 1),
        );
        closest(name, candidates).map(str::to_string)
    }

    /// The value type of C type `id`: how the language holds it once read.
    /// `None` for records, arrays of other than integers, `void` and
    /// functions.
    pub fn value_ty(&mut self, id: CId, user: bool) -> Option<Ty> {
        Some(match self.get(id).clone() {
            CType::Int { bytes, signed } if matches!(bytes, 1 | 2 | 4 | 8) => {
                Ty::Int { bytes, signed }
            }
            CType::Bool => Ty::Bool,
            CType::Enum(e) => Ty::Enum(e),
            CType::Lang(t) => t,
            CType::Ptr(target) => Ty::Ptr(PtrTy {
                target,
                name: self.name(id).into(),
                user,
            }),
            CType::Array { elem, len } if self.is_byte(elem) => Ty::Str {
                cap: align8(len + 1),
            },
            // Other integer arrays are arrays (`int32[4]`), packed as in C.
            CType::Array { elem, len } if len > 0 => match self.get(elem).clone() {
                CType::Int { bytes, signed } if matches!(bytes, 2 | 4 | 8) => Ty::Array {
                    elem: Box::new(Ty::Int { bytes, signed }),
                    len,
                },
                _ => return None,
            },
            _ => return None,
        })
    }

    /// Every member of record `id`, those of anonymous members in their
    /// place.
    fn fields(&mut self, id: CId, span: Span) -> Result<Vec<CMember>, Diagnostic> {
        self.resolve(id, span)?;
        let CType::Record(r) = self.get(id).clone() else {
            return Ok(Vec::new());
        };
        Ok(match r.body {
            Body::Btf(b) => {
                let btf = self.btf_of(b.src).map_err(|e| Diagnostic::error(span, e))?;
                btf.members(b.id)
                    .into_iter()
                    .map(|m| CMember {
                        name: m.name.to_string(),
                        bit_offset: m.bit_offset,
                        bits: m.bitfield_size,
                        ty: self.import(BtfRef {
                            src: b.src,
                            id: m.type_id,
                        }),
                    })
                    .collect()
            }
            Body::Script { members, .. } => {
                let mut out = Vec::new();
                for m in members {
                    if m.name.is_empty() {
                        out.extend(self.fields(m.ty, span)?.into_iter().map(|inner| CMember {
                            bit_offset: m.bit_offset + inner.bit_offset,
                            ..inner
                        }));
                    } else {
                        out.push(m);
                    }
                }
                out
            }
            Body::ByName => Vec::new(),
        })
    }

    /// Record `id` as a whole value: its size and the members printed.
    pub fn struct_ty(&mut self, id: CId, span: Span) -> Result<Arc<StructTy>, Diagnostic> {
        if let Some(s) = self.structs.get(&id) {
            return Ok(Arc::clone(s));
        }
        let Some(size) = self.size_of(id, span)? else {
            let name = self.name(id);
            return Err(Diagnostic::error(span, format!("{name} has no known size"))
                .with_label("incomplete type"));
        };
        let mut fields = Vec::new();
        for m in self.fields(id, span)? {
            fields.push(StructField {
                name: m.name,
                offset: m.bit_offset / 8,
                bits: (m.bits != 0).then_some(((m.bit_offset % 8) as u8, m.bits)),
                ty: self.field_ty(m.ty, span)?,
            });
        }
        let s = Arc::new(StructTy {
            name: self.name(id),
            size,
            fields,
            c_type: id,
        });
        self.structs.insert(id, Arc::clone(&s));
        Ok(s)
    }

    /// How a member of type `id` is held inside a whole struct (see
    /// [`StructField::ty`]).
    fn field_ty(&mut self, id: CId, span: Span) -> Result<Ty, Diagnostic> {
        self.resolve(id, span)?;
        Ok(match self.get(id).clone() {
            CType::Array { elem, len } if self.is_byte(elem) => Ty::Str { cap: len },
            CType::Array { elem, len } => Ty::Array {
                elem: Box::new(self.field_ty(elem, span)?),
                len,
            },
            CType::Record(_) => Ty::Struct(self.struct_ty(id, span)?),
            // Function pointers are pointers to `void`.
            CType::Void | CType::Func | CType::Float { .. } | CType::Lang(_) => Ty::None,
            _ => self.value_ty(id, false).unwrap_or(Ty::None),
        })
    }

    /// The record `struct NAME` made of `members` (`size` bytes), made once
    /// per name: a probe's `args`.
    pub fn made_up_record(
        &mut self,
        name: &str,
        size: u32,
        members: impl FnOnce(&mut Self) -> Vec<CMember>,
    ) -> CId {
        if let Some(&id) = self.made_up.get(name) {
            return id;
        }
        let members = members(self);
        let id = self.push(CType::Record(Record {
            union: false,
            name: name.to_string(),
            body: Body::Script {
                size,
                align: 8,
                members,
            },
        }));
        self.made_up.insert(name.to_string(), id);
        id
    }

    /// A 1-byte integer: arrays of them read as strings, as in bpftrace.
    pub fn is_byte(&self, id: CId) -> bool {
        matches!(self.get(id), CType::Int { bytes: 1, .. })
    }

    /// Adds the script's definitions, in order. Errors point at the
    /// definitions.
    pub fn define(&mut self, defs: &[CDefinition]) -> Vec<Diagnostic> {
        let mut diags = Vec::new();
        for def in defs {
            let result = match &def.kind {
                CDefinitionKind::Record(r) => self.define_record(r).map(|_| ()),
                CDefinitionKind::Enum(e) => {
                    self.define_enum(e);
                    Ok(())
                }
                CDefinitionKind::Typedef { ty, name } => self.spec(ty).map(|id| {
                    self.script.insert(name.clone(), id);
                }),
            };
            if let Err(d) = result {
                diags.push(d);
            }
        }
        diags
    }

    fn define_enum(&mut self, e: &CEnum) -> CId {
        let mut values = Vec::new();
        let mut next = 0i64;
        for (name, v) in &e.values {
            let v = v.unwrap_or(next);
            values.push((v, name.clone()));
            next = v.wrapping_add(1);
        }
        let signed = values.iter().any(|(v, _)| *v < 0);
        let wide = values
            .iter()
            .any(|(v, _)| i32::try_from(*v).is_err() && u32::try_from(*v).is_err());
        let def = Arc::new(EnumTy {
            name: e.name.clone().unwrap_or_default(),
            bytes: if wide { 8 } else { 4 },
            signed,
            values,
        });
        for (v, name) in &def.values {
            self.script_constants
                .insert(name.clone(), (Arc::clone(&def), *v));
        }
        let id = self.push(CType::Enum(Arc::clone(&def)));
        if let Some(name) = &e.name {
            self.script.insert(format!("enum {name}"), id);
        }
        id
    }

    /// Lays out a struct or union defined in the script, as C does.
    fn define_record(&mut self, r: &CRecord) -> Result<CId, Diagnostic> {
        let tag = if r.union { "union" } else { "struct" };
        // Registered before its members, so they can point to it.
        let id = self.push(CType::Record(Record {
            union: r.union,
            name: r.name.clone().unwrap_or_default(),
            body: Body::ByName,
        }));
        if let Some(name) = &r.name {
            // Earlier pointers to it (`struct S *next;`) are records known by
            // name, which resolve to this definition.
            self.script.insert(format!("{tag} {name}"), id);
        }
        let mut members = Vec::new();
        let mut bit: u64 = 0;
        let mut size: u64 = 0;
        let mut align: u32 = 1;
        for f in &r.fields {
            let ty = match &f.ty.base {
                CTypeBase::Record(inner)
                    if f.ty.pointer_depth == 0 && f.ty.array_dims.is_empty() =>
                {
                    self.define_record(inner)?
                }
                _ => self.spec(&f.ty)?,
            };
            let (Some(bytes), a) = (self.size_of(ty, f.ty.span)?, self.align_of(ty, f.ty.span)?)
            else {
                return Err(Diagnostic::error(
                    f.ty.span,
                    format!("member has incomplete type {}", self.name(ty)),
                )
                .with_label("size unknown")
                .with_help("use a pointer, or define the type first"));
            };
            align = align.max(a);
            let unit = u64::from(bytes) * 8;
            let (at, width) = match f.bits {
                Some(0) => {
                    bit = align_up(bit, unit);
                    continue;
                }
                Some(w) => {
                    let w = u64::from(w);
                    let start = if r.union { 0 } else { bit };
                    let start = if start / unit != (start + w - 1) / unit {
                        align_up(start, unit)
                    } else {
                        start
                    };
                    (start, w)
                }
                None => {
                    let start = if r.union {
                        0
                    } else {
                        align_up(bit, u64::from(a) * 8)
                    };
                    (start, unit)
                }
            };
            if !r.union {
                bit = at + width;
            }
            size = size.max(at + width);
            members.push(CMember {
                name: f.name.clone().unwrap_or_default(),
                bit_offset: at as u32,
                bits: if f.bits.is_some() { width as u8 } else { 0 },
                ty,
            });
        }
        let size = align_up(size.div_ceil(8), u64::from(align)) as u32;
        if let CType::Record(rec) = &mut self.types[id as usize] {
            rec.body = Body::Script {
                size,
                align,
                members,
            };
        }
        Ok(id)
    }

    /// The type a member declaration spells.
    fn spec(&mut self, spec: &CTypeSpec) -> Result<CId, Diagnostic> {
        let mut id = match &spec.base {
            CTypeBase::Named(name) => match name.split_once(' ') {
                Some((tag @ ("struct" | "union"), n)) if !self.script.contains_key(name) => {
                    // Known by name until a member needs its layout.
                    self.record_by_name(tag == "union", n)
                }
                _ => self.named(name, spec.span)?,
            },
            CTypeBase::Record(r) => self.define_record(r)?,
            CTypeBase::Enum(e) => self.define_enum(e),
            CTypeBase::Function => self.push(CType::Func),
        };
        for _ in 0..spec.pointer_depth {
            id = self.pointer_to(id);
        }
        for &len in spec.array_dims.iter().rev() {
            id = self.array_of(id, len as u32);
        }
        Ok(id)
    }
}
