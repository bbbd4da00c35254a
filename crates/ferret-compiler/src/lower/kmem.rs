//! Kernel memory through C types: `curtask`, casts to pointers, member
//! walks (`->`, `.`, `[i]`, `*p`) through structs, unions, arrays and
//! bitfields, `sizeof`/`offsetof`, enum constants, and `args` as a whole.
//!
//! A walk is located first and read once: `a->b.c[2]` adds constant offsets
//! to one base address and reads only the final member (with
//! `bpf_probe_read_kernel`, or `_user` for user memory); each pointer on the
//! way (`a->b->c`) costs one read.

use ferret_bpf::insn::helper;
use ferret_bpf::{AluOp, Insn, Reg, Size};
use ferret_syntax::ast::{BinOp, Expr, ExprKind, TypeName, UnaryOp};
use ferret_syntax::{Diagnostic, Span};

use super::expr::Res;
use super::{CTX_SLOT, Lowerer, Place, TVal, Val};
use crate::ctypes::{BtfRef, CId, CMember, CType};
use crate::program::Attach;
use crate::target::{FieldKind, TracepointField};
use crate::types::Ty;

/// A C object in memory, located but not yet read.
struct Obj {
    /// The base address, a pointer value.
    addr: TVal,
    /// Constant bytes past `addr`.
    off: i64,
    ty: CId,
    /// A bitfield's (bit offset within the byte at `off`, width).
    bits: Option<(u8, u8)>,
    /// In user memory.
    user: bool,
}

/// What an expression on the left of `.`, `->` or `[]` turned out to be.
enum Located {
    /// A struct, union, array or bitfield in memory.
    Obj(Obj),
    /// A value (a pointer, an integer, ...).
    Value(TVal),
}

impl Located {
    /// A struct value the program holds (`$s = *p; $s.a`) is a C object in
    /// the program's own memory: its members are read through its address,
    /// as kernel memory is.
    fn local_struct(self) -> Located {
        match self {
            Located::Value(v) if matches!(v.val, Val::Mem(_)) => match &v.ty {
                Ty::Struct(s) => {
                    let ty = s.c_type;
                    Located::Obj(Obj {
                        addr: v,
                        off: 0,
                        ty,
                        bits: None,
                        user: false,
                    })
                }
                _ => Located::Value(v),
            },
            other => other,
        }
    }
}

/// The largest struct held as a value: reading one and sending it (or
/// storing it) takes twice its size of the program's 32 KiB of scratch
/// memory.
const MAX_STRUCT_VALUE: u32 = 16 * 1024;

impl<'o> Lowerer<'_, 'o> {
    /// `e.f`, `e->f`, `e[i]`, `*e`: the value of the C object they name.
    pub fn c_access(&mut self, expr: &Expr) -> Res<TVal> {
        match self.located(expr)? {
            Located::Obj(obj) => self.read_obj(obj, expr.span),
            Located::Value(v) => Ok(v),
        }
    }

    /// Locates `expr` when it names a C object, else evaluates it.
    fn located(&mut self, expr: &Expr) -> Res<Located> {
        match &expr.kind {
            ExprKind::Field {
                expr: base,
                field,
                field_span,
                arrow,
            } => {
                if let ExprKind::Ident(name) = &base.kind
                    && name == "args"
                {
                    return self
                        .probe_args_field(field, *field_span)
                        .map(Located::Value);
                }
                self.member(base, field, *field_span, *arrow)
                    .map(Located::Obj)
            }
            ExprKind::Index { expr: base, index } => self.element(base, index, expr),
            ExprKind::Unary {
                op: UnaryOp::Deref,
                expr: inner,
            } => {
                let v = self.eval(inner)?;
                let ty = match &v.ty {
                    Ty::Ptr(p) => p.target,
                    // As in bpftrace, an integer is the address of a uint64.
                    Ty::Int { .. } => self.g.ctypes.of_value(&Ty::U64),
                    other => {
                        return Err(Diagnostic::error(
                            inner.span,
                            format!("cannot dereference a {}", other.describe()),
                        )
                        .with_label("not a pointer")
                        .with_help("cast it to a pointer first, like *(uint32 *)addr"));
                    }
                };
                let user = self.reads_user(&v);
                Ok(Located::Obj(Obj {
                    addr: v,
                    off: 0,
                    ty,
                    bits: None,
                    user,
                }))
            }
            _ => self.eval(expr).map(Located::Value),
        }
    }

    /// `args.NAME`: a tracepoint's field, or an argument typed by BTF.
    fn probe_args_field(&mut self, field: &str, span: Span) -> Res<TVal> {
        if matches!(
            self.probe.attach,
            Attach::RawTracepoint { .. } | Attach::Fentry { .. } | Attach::Kprobe { .. }
        ) {
            return self.typed_arg(field, span);
        }
        self.tracepoint_arg(field, span)
    }

    /// Follows pointers to the record `base` names: as in bpftrace, `.`
    /// dereferences as `->` does, and `->` on a struct is `.`.
    fn record_of(&mut self, base: &Expr, field: &str, span: Span, arrow: bool) -> Res<Obj> {
        let mut obj = match self.located(base)?.local_struct() {
            Located::Obj(obj) => obj,
            Located::Value(v) => {
                let Ty::Ptr(p) = &v.ty else {
                    let op = if arrow { "->" } else { "." };
                    let mut d = Diagnostic::error(
                        span,
                        format!("cannot access field '{field}' of a {}", v.ty.describe()),
                    )
                    .with_label("no such field");
                    if v.ty.is_scalar() {
                        d = d.with_help(format!(
                            "cast it to a pointer to a struct first: ((struct NAME *)expr){op}{field}"
                        ));
                    }
                    return Err(d);
                };
                let (ty, user) = (p.target, self.reads_user(&v));
                Obj {
                    addr: v,
                    off: 0,
                    ty,
                    bits: None,
                    user,
                }
            }
        };
        // `a->b.c` where b is a pointer: read it and go on through it.
        for _ in 0..8 {
            match self.g.ctypes.get(obj.ty).clone() {
                CType::Ptr(_) => {
                    let v = self.read_obj(obj, span)?;
                    let Ty::Ptr(p) = &v.ty else {
                        return Err(Diagnostic::error(span, "expected a pointer"));
                    };
                    let (ty, user) = (p.target, self.reads_user(&v));
                    obj = Obj {
                        addr: v,
                        off: 0,
                        ty,
                        bits: None,
                        user,
                    };
                }
                _ => break,
            }
        }
        self.g.ctypes.resolve(obj.ty, span)?;
        if !matches!(self.g.ctypes.get(obj.ty), CType::Record(_)) {
            let name = self.g.ctypes.name(obj.ty);
            return Err(Diagnostic::error(
                span,
                format!("cannot access field '{field}' of a {name}"),
            )
            .with_label("not a struct or union"));
        }
        Ok(obj)
    }

    fn member(&mut self, base: &Expr, field: &str, span: Span, arrow: bool) -> Res<Obj> {
        let obj = self.record_of(base, field, span, arrow)?;
        let m = self.g.ctypes.member(obj.ty, field, span)?;
        Ok(Obj {
            off: obj.off + i64::from(m.bit_offset / 8),
            ty: m.ty,
            bits: (m.bits != 0).then_some(((m.bit_offset % 8) as u8, m.bits)),
            ..obj
        })
    }

    /// `base[index]` of an array member or a pointer; other values (strings,
    /// arrays, tuples) are indexed as values.
    fn element(&mut self, base: &Expr, index: &Expr, expr: &Expr) -> Res<Located> {
        let span = expr.span;
        let located = match self.located(base)? {
            Located::Value(v) if !matches!(v.ty, Ty::Ptr(_)) => {
                return self.index_value(v, base, index, expr).map(Located::Value);
            }
            other => other,
        };
        let (obj, len) = match located {
            Located::Obj(obj) => match self.g.ctypes.get(obj.ty).clone() {
                CType::Array { elem, len } => (
                    Obj {
                        ty: elem,
                        bits: None,
                        ..obj
                    },
                    Some(len),
                ),
                CType::Ptr(_) => {
                    let v = self.read_obj(obj, base.span)?;
                    (self.pointee(v, base)?, None)
                }
                _ => {
                    let name = self.g.ctypes.name(obj.ty);
                    return Err(
                        Diagnostic::error(base.span, format!("cannot index a {name}"))
                            .with_label("not an array or pointer"),
                    );
                }
            },
            Located::Value(v) => (self.pointee(v, base)?, None),
        };
        let Some(size) = self.g.ctypes.size_of(obj.ty, span)? else {
            let name = self.g.ctypes.name(obj.ty);
            return Err(Diagnostic::error(
                base.span,
                format!("cannot index into {name}: its size is unknown"),
            )
            .with_label("unknown element size"));
        };
        let i = self.eval_int(index)?;
        if let Val::Imm(n) = i.val {
            if let Some(len) = len
                && (n < 0 || n as u64 >= u64::from(len))
            {
                return Err(Diagnostic::error(
                    index.span,
                    format!("index {n} is out of bounds: the array has {len} elements"),
                )
                .with_label("out of bounds"));
            }
            return Ok(Located::Obj(Obj {
                off: obj.off + n * i64::from(size),
                ..obj
            }));
        }
        // A run-time index moves the base address.
        self.load_reg(&i, Reg::R0);
        self.release(i);
        self.e
            .alu_imm(AluOp::Mul, Reg::R0, i64::from(size), Reg::R1);
        self.load_reg(&obj.addr, Reg::R1);
        self.e.push(Insn::alu64_reg(AluOp::Add, Reg::R0, Reg::R1));
        self.release(obj.addr);
        let addr = self.temp_from(Reg::R0, Ty::U64);
        Ok(Located::Obj(Obj { addr, ..obj }))
    }

    /// The object a pointer value points to.
    fn pointee(&mut self, v: TVal, base: &Expr) -> Res<Obj> {
        let Ty::Ptr(p) = &v.ty else {
            return Err(Diagnostic::error(
                base.span,
                format!("cannot index a {}", v.ty.describe()),
            )
            .with_label("not an array or pointer"));
        };
        let (ty, user) = (p.target, self.reads_user(&v));
        Ok(Obj {
            addr: v,
            off: 0,
            ty,
            bits: None,
            user,
        })
    }

    /// `r1 = dst; r2 = len; r3 = address of obj; call probe_read`.
    fn probe_read(&mut self, dst: Place, len: u32, obj: &Obj) {
        self.load_reg(&obj.addr, Reg::R3);
        if obj.off != 0 {
            self.e.alu_imm(AluOp::Add, Reg::R3, obj.off, Reg::R2);
        }
        self.addr_of(dst, Reg::R1);
        self.e.push(Insn::mov64_imm(Reg::R2, len as i32));
        self.e.push(Insn::call(if obj.user {
            helper::PROBE_READ_USER
        } else {
            helper::PROBE_READ_KERNEL
        }));
    }

    /// Reads the object: integers, enums, pointers and bitfields become
    /// scalars, byte arrays strings.
    fn read_obj(&mut self, obj: Obj, span: Span) -> Res<TVal> {
        self.g.ctypes.resolve(obj.ty, span)?;
        if let CType::Record(_) = self.g.ctypes.get(obj.ty) {
            return self.read_struct(obj, span);
        }
        let Some(ty) = self.g.ctypes.value_ty(obj.ty, obj.user) else {
            let name = self.g.ctypes.name(obj.ty);
            let d = Diagnostic::error(span, format!("cannot read a whole {name}"));
            return Err(match self.g.ctypes.get(obj.ty) {
                CType::Record(_) => d
                    .with_label("a struct")
                    .with_help("read one of its members: expr.member"),
                CType::Array { .. } => d
                    .with_label("an array")
                    .with_help("read one element: expr[0]"),
                CType::Void => Diagnostic::error(span, "cannot read through a void pointer")
                    .with_label("points to void")
                    .with_help("cast it to a pointer to what it points to, like *(uint64 *)p"),
                _ => d.with_label("no value of this type"),
            });
        };
        if let Ty::Str { cap } = ty {
            // A char array: its bytes, NUL-padded to the string's capacity.
            let CType::Array { len: n, .. } = *self.g.ctypes.get(obj.ty) else {
                return Err(Diagnostic::error(span, "not an array"));
            };
            let place = self.alloc_mem(cap, true);
            self.probe_read(place, n, &obj);
            self.release(obj.addr);
            return Ok(TVal::new(Val::Mem(place), Ty::Str { cap }));
        }
        // Integer arrays, and the language's own values behind `&$v`.
        if !ty.is_scalar() {
            let size = ty.size();
            let place = self.alloc_mem(size, true);
            self.probe_read(place, size, &obj);
            self.release(obj.addr);
            return Ok(TVal::new(Val::Mem(place), ty));
        }
        let bytes = match &ty {
            Ty::Int { bytes, .. } => u32::from(*bytes),
            Ty::Enum(e) => u32::from(e.bytes),
            Ty::Bool => 1,
            _ => 8,
        };
        let read = match obj.bits {
            Some((shift, width)) => (u32::from(shift) + u32::from(width)).div_ceil(8),
            None => bytes,
        };
        let slot = self.alloc_mem(8, true);
        self.probe_read(slot, read.min(8), &obj);
        self.release(obj.addr);
        self.e
            .push(Insn::load(Size::DW, Reg::R0, slot.reg(), slot.off16()));
        let signed = ty.is_signed();
        match obj.bits {
            Some((shift, width)) => {
                // Move the field to the top, then back down with its sign.
                let up = 64 - i32::from(shift) - i32::from(width);
                if up > 0 {
                    self.e.push(Insn::alu64_imm(AluOp::Lsh, Reg::R0, up));
                }
                let down = 64 - i32::from(width);
                if down > 0 {
                    self.e.push(Insn::alu64_imm(
                        if signed { AluOp::Arsh } else { AluOp::Rsh },
                        Reg::R0,
                        down,
                    ));
                }
            }
            None if signed => self.narrow(Reg::R0, bytes as u8, true),
            None => {}
        }
        Ok(self.temp_from(Reg::R0, ty))
    }

    /// A whole struct or union, copied into the program's memory.
    fn read_struct(&mut self, obj: Obj, span: Span) -> Res<TVal> {
        let s = self.g.ctypes.struct_ty(obj.ty, span)?;
        if s.size > MAX_STRUCT_VALUE {
            return Err(Diagnostic::error(
                span,
                format!(
                    "{} is {} bytes, too large to hold as a value (at most {MAX_STRUCT_VALUE})",
                    s.name, s.size
                ),
            )
            .with_label("too large")
            .with_help("read the members you need: expr.member"));
        }
        let place = self.alloc_mem(s.size, false);
        if s.size % 8 != 0 {
            // The padding after the struct, so equal structs are equal keys.
            let last = place.at(s.size / 8 * 8);
            self.e
                .push(Insn::store_imm(Size::DW, last.reg(), last.off16(), 0));
        }
        if s.size > 0 {
            self.probe_read(place, s.size, &obj);
        }
        self.release(obj.addr);
        Ok(TVal::new(Val::Mem(place), Ty::Struct(s)))
    }

    /// The size in C of what `expr` names when it is a member, an element
    /// or a dereference (`sizeof(curtask->comm)` is 16, the string it reads
    /// as is longer); `None` for other expressions.
    pub fn c_object_size(&mut self, expr: &Expr) -> Res<Option<u32>> {
        let names_object = match &expr.kind {
            ExprKind::Field { expr: base, .. } => {
                !matches!(&base.kind, ExprKind::Ident(n) if n == "args")
            }
            ExprKind::Index { .. }
            | ExprKind::Unary {
                op: UnaryOp::Deref, ..
            } => true,
            _ => false,
        };
        if !names_object {
            return Ok(None);
        }
        let ty = self.dry(|l| match l.located(expr)? {
            Located::Obj(obj) => Ok(Some(obj.ty)),
            Located::Value(_) => Ok(None),
        })?;
        match ty {
            Some(ty) => self.g.ctypes.size_of(ty, expr.span),
            None => Ok(None),
        }
    }

    /// Bytes a pointer of type `ty` steps over (`None` for non-pointers);
    /// `void *` steps bytes.
    pub fn pointer_step(&mut self, ty: &Ty, span: Span) -> Res<Option<i32>> {
        let Ty::Ptr(p) = ty else {
            return Ok(None);
        };
        let size = self.g.ctypes.size_of(p.target, span)?.unwrap_or(1);
        Ok(Some(size.max(1) as i32))
    }

    /// `ptr + n`, `n + ptr`, `ptr - n`: scales `n` by the pointed-to size and
    /// returns the operands (the pointer first) and the pointer type the
    /// result has. Other operations pass through.
    pub fn pointer_arith(
        &mut self,
        op: BinOp,
        a: TVal,
        b: TVal,
        span: Span,
    ) -> Res<(TVal, TVal, Option<Ty>)> {
        let (ptr, n) = match (op, &a.ty, &b.ty) {
            (BinOp::Add | BinOp::Sub, Ty::Ptr(_), t) if !matches!(t, Ty::Ptr(_)) => (a, b),
            (BinOp::Add, t, Ty::Ptr(_)) if !matches!(t, Ty::Ptr(_)) => (b, a),
            _ => return Ok((a, b, None)),
        };
        let step = self.pointer_step(&ptr.ty, span)?.unwrap_or(1);
        let scaled = match n.val {
            Val::Imm(v) => TVal::new(Val::Imm(v.wrapping_mul(i64::from(step))), n.ty),
            _ if step == 1 => n,
            _ => {
                let n = self.owned(n);
                self.load_reg(&n, Reg::R0);
                self.e.push(Insn::alu64_imm(AluOp::Mul, Reg::R0, step));
                self.store_back(&n, Reg::R0);
                n
            }
        };
        let ty = ptr.ty.clone();
        Ok((ptr, scaled, Some(ty)))
    }

    /// The type of a tracepoint field declared `struct S *` (or `union`),
    /// so `args.skb->len` walks it, or `enum E`, so it prints by name (the
    /// enum's constants come from BTF). Other fields stay integers.
    pub fn typed_field(&mut self, c_type: &str, pointer: bool) -> Option<Ty> {
        let decl = c_type.trim().trim_start_matches("const ").trim_end();
        if !pointer {
            decl.strip_prefix("enum ")?;
            let id = self.g.ctypes.named(decl, Span::default()).ok()?;
            return self.g.ctypes.value_ty(id, false);
        }
        let depth = decl
            .chars()
            .rev()
            .take_while(|&c| c == '*' || c == ' ')
            .filter(|&c| c == '*')
            .count();
        let base = decl.trim_end_matches(['*', ' ']).trim_end_matches(" const");
        let (tag, name) = base.split_once(' ')?;
        if depth == 0 || !matches!(tag, "struct" | "union") || name.contains(' ') {
            return None;
        }
        let mut id = self.g.ctypes.record_by_name(tag == "union", name);
        for _ in 0..depth {
            id = self.g.ctypes.pointer_to(id);
        }
        let user = self.user_pointers();
        self.g.ctypes.value_ty(id, user)
    }

    /// `curtask`: the current task, a `struct task_struct *`.
    pub fn curtask(&mut self) -> TVal {
        self.e.push(Insn::call(helper::GET_CURRENT_TASK));
        let task = self.g.ctypes.task_struct();
        let ptr = self.g.ctypes.pointer_to(task);
        let ty = self.g.ctypes.value_ty(ptr, false).unwrap_or(Ty::U64);
        self.temp_from(Reg::R0, ty)
    }

    /// Whether a cast names a C type this module handles (pointers, structs,
    /// enums) rather than an integer.
    pub fn is_c_cast(ty: &TypeName) -> bool {
        ty.array_len.is_none()
            && (ty.pointer_depth > 0
                || ty.name.starts_with("struct ")
                || ty.name.starts_with("union ")
                || ty.name.starts_with("enum "))
    }

    /// `(struct S *)expr`, `(uint8 **)expr`, `(enum E)expr`.
    pub fn c_cast(&mut self, ty: &TypeName, inner: &Expr) -> Res<TVal> {
        let mut id = self.g.ctypes.named(&ty.name, ty.span)?;
        for _ in 0..ty.pointer_depth {
            id = self.g.ctypes.pointer_to(id);
        }
        let v = self.eval(inner)?;
        if !v.ty.is_scalar() {
            return Err(Diagnostic::error(
                inner.span,
                format!(
                    "cannot cast a {} to {}",
                    v.ty.describe(),
                    self.g.ctypes.name(id)
                ),
            )
            .with_label("not an integer or pointer"));
        }
        let user = self.reads_user(&v);
        let target = match self.g.ctypes.get(id) {
            CType::Record(_) => {
                let name = self.g.ctypes.name(id);
                return Err(Diagnostic::error(
                    ty.span,
                    format!("cannot cast to {name}, only to a pointer to it"),
                )
                .with_label("not a pointer type")
                .with_help(format!("cast to ({name} *)")));
            }
            CType::Enum(e) => Ty::Enum(std::sync::Arc::clone(e)),
            _ => match self.g.ctypes.value_ty(id, user) {
                Some(t) => t,
                None => {
                    return Err(Diagnostic::error(
                        ty.span,
                        format!("cannot cast to {}", self.g.ctypes.name(id)),
                    )
                    .with_label("unsupported cast"));
                }
            },
        };
        if let Ty::Enum(e) = &target {
            let v = self.owned(v);
            self.load_reg(&v, Reg::R0);
            self.narrow(Reg::R0, e.bytes, e.signed);
            self.store_back(&v, Reg::R0);
            return Ok(TVal::new(v.val, target));
        }
        Ok(TVal::new(v.val, target))
    }

    /// The C type a `sizeof`/`offsetof` names.
    fn type_of_name(&mut self, ty: &TypeName) -> Res<CId> {
        let mut id = self.g.ctypes.named(&ty.name, ty.span)?;
        for _ in 0..ty.pointer_depth {
            id = self.g.ctypes.pointer_to(id);
        }
        Ok(id)
    }

    /// `sizeof(struct S)`, `sizeof(uint32)`, `sizeof(int8[4])`.
    pub fn sizeof_type(&mut self, ty: &TypeName) -> Res<TVal> {
        if ty.name == "string" {
            let n = ty
                .array_len
                .map_or(u64::from(self.g.opts.max_strlen), |n| n);
            return Ok(TVal::new(Val::Imm(n as i64), Ty::U64));
        }
        let id = self.type_of_name(ty)?;
        let Some(size) = self.g.ctypes.size_of(id, ty.span)? else {
            return Err(Diagnostic::error(
                ty.span,
                format!("{} has no size", self.g.ctypes.name(id)),
            )
            .with_label("size unknown"));
        };
        let n = u64::from(size) * ty.array_len.unwrap_or(1);
        Ok(TVal::new(Val::Imm(n as i64), Ty::U64))
    }

    /// `offsetof(struct S, a.b)`: the byte offset of a (nested) member.
    pub fn offsetof(&mut self, ty: &TypeName, fields: &[String], span: Span) -> Res<TVal> {
        let mut id = self.type_of_name(ty)?;
        let mut off = 0u64;
        for f in fields {
            self.g.ctypes.resolve(id, ty.span)?;
            if !matches!(self.g.ctypes.get(id), CType::Record(_)) {
                return Err(Diagnostic::error(
                    span,
                    format!("{} has no member '{f}'", self.g.ctypes.name(id)),
                )
                .with_label("not a struct or union"));
            }
            let m = self.g.ctypes.member(id, f, span)?;
            off += u64::from(m.bit_offset / 8);
            id = m.ty;
        }
        Ok(TVal::new(Val::Imm(off as i64), Ty::U64))
    }

    /// A bare identifier naming an enum constant (`BPF_ANY`), from the
    /// script's enums or the kernel's.
    pub fn enum_constant(&mut self, name: &str) -> Option<TVal> {
        let (def, value) = self.g.ctypes.enum_constant(name)?;
        Some(TVal::new(Val::Imm(value), Ty::Enum(def)))
    }

    /// `args` as a whole value: a tracepoint's record (its common fields
    /// too, as in bpftrace) or a raw tracepoint's or fentry's arguments, as
    /// a struct.
    pub fn whole_args(&mut self, span: Span) -> Res<TVal> {
        let record = match &self.probe.attach {
            Attach::Tracepoint { category, event } if self.group.is_none() => {
                let Some(format) = self.probe.format.clone() else {
                    return Err(Diagnostic::error(span, "this tracepoint has no format"));
                };
                let name = format!("_tracepoint_{category}_{event}");
                let fields: Vec<TracepointField> = format
                    .common
                    .iter()
                    .chain(&format.fields)
                    .cloned()
                    .collect();
                let size = fields.iter().map(|f| f.offset + f.size).max().unwrap_or(0);
                let mut members = Vec::new();
                for f in &fields {
                    let ty = self.tracepoint_field_type(f);
                    members.push(CMember {
                        name: f.name.clone(),
                        bit_offset: f.offset * 8,
                        bits: 0,
                        ty,
                    });
                }
                self.g.ctypes.made_up_record(&name, size, |_| members)
            }
            Attach::RawTracepoint { module, event, .. }
            | Attach::Fentry {
                module,
                function: event,
                ..
            } => {
                let name = format!("_{}_{module}_{event}", self.probe_kind());
                let kind = self.probe_kind();
                let args = self
                    .typed_args()
                    .and_then(|a| a.ok_or_else(|| "it has no prototype".to_string()))
                    .map_err(|why| {
                        Diagnostic::error(
                            span,
                            format!("'args' of a {kind} probe needs the kernel's BTF: {why}"),
                        )
                        .with_label("no argument names")
                    })?;
                let slots: Vec<u32> = (0..=args.params.len())
                    .map(|i| self.arg_slot(&args, i))
                    .collect();
                let size = 8 * slots[args.params.len()];
                let src = args.src;
                self.g.ctypes.made_up_record(&name, size, |ctypes| {
                    args.params
                        .iter()
                        .zip(&slots)
                        .map(|(a, slot)| CMember {
                            name: a.name.clone(),
                            bit_offset: 64 * slot,
                            bits: 0,
                            ty: ctypes.import(BtfRef { src, id: a.type_id }),
                        })
                        .collect()
                })
            }
            _ => {
                let mut d = Diagnostic::error(
                    span,
                    format!("'args' is not available in {} probes", self.probe_kind()),
                )
                .with_label("no arguments here");
                if matches!(self.probe.attach, Attach::RawSyscalls { .. }) || self.group.is_some() {
                    d = Diagnostic::error(
                        span,
                        "'args' as a whole is not available in a probe on many syscall tracepoints",
                    )
                    .with_label("one program serves them all")
                    .with_help("read the fields you need: args.FIELD");
                }
                return Err(d);
            }
        };
        self.e
            .push(Insn::load(Size::DW, Reg::R0, Reg::FP, CTX_SLOT));
        let addr = self.temp_from(Reg::R0, Ty::U64);
        self.read_struct(
            Obj {
                addr,
                off: 0,
                ty: record,
                bits: None,
                user: false,
            },
            span,
        )
    }

    /// The C type of a tracepoint field, as a member of `args`.
    fn tracepoint_field_type(&mut self, f: &TracepointField) -> CId {
        let int = |l: &mut Self, bytes: u32, signed| {
            l.g.ctypes.of_value(&Ty::Int {
                bytes: bytes as u8,
                signed,
            })
        };
        match f.kind {
            FieldKind::Integer => match self.typed_field(&f.c_type, false) {
                Some(ty) => self.g.ctypes.of_value(&ty),
                None => int(self, f.size, f.signed),
            },
            FieldKind::Pointer => match self.typed_field(&f.c_type, true) {
                Some(ty) => self.g.ctypes.of_value(&ty),
                None => match self.g.ctypes.named("void", Span::default()) {
                    Ok(void) => self.g.ctypes.pointer_to(void),
                    Err(_) => int(self, 8, false),
                },
            },
            FieldKind::CharArray { len } => {
                let char_t = int(self, 1, true);
                self.g.ctypes.array_of(char_t, len)
            }
            FieldKind::Array { elem_size, len } => {
                let elem = int(self, elem_size, f.signed);
                self.g.ctypes.array_of(elem, len)
            }
            // The u32 locating the data in the record.
            FieldKind::DataLocString | FieldKind::DataLocArray => int(self, 4, false),
        }
    }
}
