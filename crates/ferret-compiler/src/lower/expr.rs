//! Expressions: literals, operators, casts, variables, tuples, fields.

use ferret_bpf::{AluOp, Insn, JmpOp, Reg, Size};
use ferret_syntax::Diagnostic;
use ferret_syntax::ast::{BinOp, Expr, ExprKind, UnaryOp};

use super::{Lowerer, Place, TVal, Val};
use crate::types::{Ty, align8, tuple_layout};

pub(crate) type Res<T> = Result<T, Diagnostic>;

impl Lowerer<'_, '_> {
    pub fn eval(&mut self, expr: &Expr) -> Res<TVal> {
        match &expr.kind {
            ExprKind::Int(v) => Ok(TVal::int(*v as i64)),
            ExprKind::Bool(b) => Ok(TVal::new(Val::Imm(i64::from(*b)), Ty::Bool)),
            ExprKind::Str(bytes) => Ok(self.string_literal(bytes)),
            ExprKind::Ident(name) => self.builtin(name, expr),
            ExprKind::Var(name) => self.variable(name, expr),
            ExprKind::Map { name, keys } => self.map_read(name, keys, expr),
            ExprKind::Call {
                name,
                name_span,
                args,
            } => self.call(name, *name_span, args, expr),
            ExprKind::Unary { op, expr: inner } => self.unary(*op, inner, expr),
            ExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, expr),
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => self.ternary(cond, then, otherwise),
            ExprKind::Field {
                expr: base,
                field,
                field_span,
                arrow: false,
            } if self.is_record(base) => self.record_field(base, field, *field_span),
            ExprKind::Field { .. } | ExprKind::Index { .. } => self.c_access(expr),
            ExprKind::TupleIndex { expr: base, index } => {
                let t = self.eval(base)?;
                let Ty::Tuple(elems) = &t.ty else {
                    return Err(Diagnostic::error(
                        expr.span,
                        format!("cannot take element {index} of a {}", t.ty.describe()),
                    )
                    .with_label("not a tuple"));
                };
                let Some(ty) = elems.get(*index as usize).cloned() else {
                    return Err(Diagnostic::error(
                        expr.span,
                        format!(
                            "tuple index {index} out of range: the tuple has {} elements",
                            elems.len()
                        ),
                    )
                    .with_label("no such element"));
                };
                let (offs, _) = tuple_layout(elems);
                let Val::Mem(p) = t.val else {
                    return Err(Diagnostic::error(expr.span, "tuple is not in memory"));
                };
                Ok(self.read_place(p.at(offs[*index as usize]), &ty))
            }
            ExprKind::Tuple(elems) => {
                let vals = elems
                    .iter()
                    .map(|e| self.eval(e))
                    .collect::<Res<Vec<_>>>()?;
                let tys: Vec<Ty> = vals.iter().map(|v| v.ty.clone()).collect();
                let (offs, size) = tuple_layout(&tys);
                let place = self.alloc_mem(size, false);
                for (v, off) in vals.into_iter().zip(offs) {
                    let ty = v.ty.clone();
                    self.write_as(place.at(off), &v, &ty);
                    self.release(v);
                }
                Ok(TVal::new(Val::Mem(place), Ty::Tuple(tys)))
            }
            ExprKind::Record(fields) => {
                let mut vals = Vec::with_capacity(fields.len());
                for (name, e) in fields {
                    let v = self.eval(e)?;
                    if v.ty == Ty::None {
                        return Err(Diagnostic::error(e.span, "this expression has no value")
                            .with_label(format!("cannot be field '{name}'")));
                    }
                    vals.push((name.clone(), v));
                }
                let ty: Vec<(String, Ty)> = vals
                    .iter()
                    .map(|(n, v)| (n.clone(), v.ty.clone()))
                    .collect();
                let (offs, size) = crate::types::record_layout(&ty);
                let place = self.alloc_mem(size, false);
                for ((_, v), off) in vals.into_iter().zip(offs) {
                    let t = v.ty.clone();
                    self.write_as(place.at(off), &v, &t);
                    self.release(v);
                }
                Ok(TVal::new(Val::Mem(place), Ty::Record(ty)))
            }
            ExprKind::Cast { ty, expr: inner } if Self::is_c_cast(ty) => self.c_cast(ty, inner),
            ExprKind::Cast { ty, expr: inner }
                if ty.pointer_depth == 0 && ty.array_len.is_some() =>
            {
                let v = self.eval(inner)?;
                self.array_cast(ty, inner, v)
            }
            ExprKind::Cast { ty, expr: inner } => {
                let target = match ty.name.as_str() {
                    _ if ty.pointer_depth > 0 || ty.array_len.is_some() => None,
                    "bool" => Some(Ty::Bool),
                    name => int_type(name),
                };
                let Some(target) = target else {
                    return Err(Diagnostic::error(
                        ty.span,
                        format!(
                            "cannot cast to '{}': only integer casts are supported",
                            ty.name
                        ),
                    )
                    .with_label("unsupported cast")
                    .with_help(
                        "cast to int8, int16, int32, int64, uint8, uint16, uint32 or uint64",
                    ));
                };
                let v = self.eval(inner)?;
                if matches!(v.ty, Ty::Array { .. }) {
                    return self.array_cast(ty, inner, v);
                }
                if !v.ty.is_scalar() {
                    return Err(Diagnostic::error(
                        inner.span,
                        format!("cannot cast a {} to an integer", v.ty.describe()),
                    )
                    .with_label("not an integer"));
                }
                let v = self.owned(v);
                self.load_reg(&v, Reg::R0);
                match target {
                    Ty::Bool => {
                        self.e.push(Insn::jmp_imm(JmpOp::Jeq, Reg::R0, 0, 1));
                        self.e.push(Insn::mov64_imm(Reg::R0, 1));
                    }
                    Ty::Int { bytes, signed } => self.narrow(Reg::R0, bytes, signed),
                    _ => {}
                }
                self.store_back(&v, Reg::R0);
                Ok(TVal::new(v.val, target))
            }
            ExprKind::IncDec {
                target,
                increment,
                prefix,
            } => self.inc_dec(target, *increment, *prefix),
            ExprKind::Block { stmts, value } => self.block_value(stmts, value.as_deref()),
            ExprKind::SizeofType(ty) => self.sizeof_type(ty),
            ExprKind::Offsetof { ty, fields } => self.offsetof(ty, fields, expr.span),
        }
    }

    /// Evaluates `e` for its type (and constant value) only: the code is
    /// thrown away and no memory stays allocated.
    pub fn dry_eval(&mut self, e: &Expr) -> Res<TVal> {
        self.dry(|l| l.eval(e))
    }

    /// Runs `f` for what it finds out only, as [`Self::dry_eval`] does.
    pub fn dry<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let saved_e = std::mem::take(&mut self.e);
        let saved = (self.stack_used, self.scratch_used, self.free_regs.clone());
        // Callbacks the thrown-away code made (a search's loop) would be
        // left in the program with nothing calling them.
        let callbacks = (self.callbacks.len(), self.deepest_callback);
        let discovering = self.g.discovering;
        self.g.discovering = true;
        let r = f(self);
        self.g.discovering = discovering;
        self.e = saved_e;
        (self.stack_used, self.scratch_used, self.free_regs) = saved;
        self.callbacks.truncate(callbacks.0);
        self.deepest_callback = callbacks.1;
        r
    }

    /// `(uint8[8])int` and `(uint64)array`: the same bytes seen as the
    /// other type; both sides must have the same size.
    fn array_cast(
        &mut self,
        ty: &ferret_syntax::ast::TypeName,
        inner: &Expr,
        v: TVal,
    ) -> Res<TVal> {
        let Some(Ty::Int { bytes, signed }) = int_type(&ty.name) else {
            return Err(Diagnostic::error(
                ty.span,
                format!("cannot cast to '{}': arrays hold integers", ty.name),
            )
            .with_label("unsupported cast"));
        };
        let elem = Ty::Int { bytes, signed };
        let mismatch = |from: u32, to: u32| {
            Diagnostic::error(
                ty.span,
                format!("cannot cast {from} bytes to a type of {to} bytes: sizes must match"),
            )
            .with_label("size mismatch")
        };
        match (ty.array_len, &v.ty, &v.val) {
            (Some(_) | None, t, _) if t.is_integer() => {
                let have = match (t, &v.val, ty.array_len) {
                    // A literal takes the array's size.
                    (_, Val::Imm(_), Some(len)) => len as u32 * u32::from(bytes),
                    (Ty::Int { bytes, .. }, _, _) => u32::from(*bytes),
                    _ => 1,
                };
                let len = ty.array_len.map_or(have / u32::from(bytes), |l| l as u32);
                if len * u32::from(bytes) != have || len == 0 {
                    return Err(mismatch(have, len * u32::from(bytes)));
                }
                let place = self.alloc_mem(have, true);
                self.load_reg(&v, Reg::R0);
                self.release(v);
                let size = Size::from_bytes(have as usize).unwrap_or(Size::DW);
                self.e
                    .push(Insn::store(size, place.reg(), place.off16(), Reg::R0));
                Ok(TVal::new(
                    Val::Mem(place),
                    Ty::Array {
                        elem: Box::new(elem),
                        len,
                    },
                ))
            }
            (None, Ty::Array { .. }, Val::Mem(p)) => {
                let have = v.ty.size();
                if have != u32::from(bytes) {
                    return Err(mismatch(have, u32::from(bytes)));
                }
                let size = Size::from_bytes(have as usize).unwrap_or(Size::DW);
                self.e.push(Insn::load(size, Reg::R0, p.reg(), p.off16()));
                if signed {
                    self.narrow(Reg::R0, bytes, true);
                }
                Ok(self.temp_from(Reg::R0, elem))
            }
            _ => Err(Diagnostic::error(
                inner.span,
                format!("cannot cast a {} to {}", v.ty.describe(), ty.name),
            )
            .with_label("unsupported cast")),
        }
    }

    /// `a[i]` on array and string values (one byte), and `t[N]` on tuples;
    /// `v` is `base` evaluated. C arrays and pointers are indexed in `kmem`.
    pub fn index_value(&mut self, v: TVal, base: &Expr, index: &Expr, expr: &Expr) -> Res<TVal> {
        let literal = match index.kind {
            ExprKind::Int(n) => Some(n),
            _ => None,
        };
        let (elem, len) = match &v.ty {
            Ty::Array { elem, len } => ((**elem).clone(), *len),
            Ty::Str { cap } => (
                Ty::Int {
                    bytes: 1,
                    signed: true,
                },
                *cap,
            ),
            Ty::Tuple(elems) => {
                let Some(n) = literal.filter(|&n| (n as usize) < elems.len()) else {
                    return Err(Diagnostic::error(
                        index.span,
                        format!("a tuple index must be a literal below {}", elems.len()),
                    )
                    .with_label("invalid tuple index"));
                };
                let (offs, _) = tuple_layout(elems);
                let ty = elems[n as usize].clone();
                let Val::Mem(p) = v.val else {
                    return Err(Diagnostic::error(expr.span, "tuple is not in memory"));
                };
                return Ok(self.read_place(p.at(offs[n as usize]), &ty));
            }
            other => {
                return Err(Diagnostic::error(
                    base.span,
                    format!("cannot index a {}", other.describe()),
                )
                .with_label("not an array or string"));
            }
        };
        let Val::Mem(p) = v.val else {
            return Err(Diagnostic::error(expr.span, "array is not in memory"));
        };
        let width = elem.elem_size();
        let size = Size::from_bytes(width as usize).unwrap_or(Size::DW);
        let signed = elem.is_signed();
        if let Some(n) = literal {
            if n >= u64::from(len) {
                return Err(Diagnostic::error(
                    index.span,
                    format!(
                        "index {n} is out of bounds: the {} has {len} elements",
                        v.ty.describe()
                    ),
                )
                .with_label("out of bounds"));
            }
            let at = p.at(n as u32 * width);
            self.e.push(Insn::load(size, Reg::R0, at.reg(), at.off16()));
        } else {
            let i = self.eval_int(index)?;
            let ok = self.e.new_label();
            let done = self.e.new_label();
            self.load_reg(&i, Reg::R1);
            self.release(i);
            self.e.jump_if_imm(JmpOp::Jlt, Reg::R1, len as i32, ok);
            self.runtime_error(
                expr.span,
                "Array access out of bounds. This can lead to unexpected results.",
            )?;
            self.e.push(Insn::mov64_imm(Reg::R0, 0));
            self.e.jump(done);
            self.e.bind(ok);
            if width > 1 {
                self.e
                    .push(Insn::alu64_imm(AluOp::Mul, Reg::R1, width as i32));
            }
            self.addr_of(p, Reg::R0);
            self.e.push(Insn::alu64_reg(AluOp::Add, Reg::R0, Reg::R1));
            self.e.push(Insn::load(size, Reg::R0, Reg::R0, 0));
            self.e.bind(done);
        }
        if signed {
            self.narrow(Reg::R0, width as u8, true);
        }
        Ok(self.temp_from(Reg::R0, elem))
    }

    /// Evaluates an expression that must be an integer (or bool).
    pub fn eval_int(&mut self, expr: &Expr) -> Res<TVal> {
        let v = self.eval(expr)?;
        if !v.ty.is_scalar() {
            return Err(Diagnostic::error(
                expr.span,
                format!("expected an integer, found {}", v.ty.describe()),
            )
            .with_label("not an integer"));
        }
        Ok(v)
    }

    /// Evaluates argument `expr` of function `func`, which takes an
    /// integer there; the error names the function and its usage.
    pub fn eval_int_arg(&mut self, expr: &Expr, func: &str, usage: &str) -> Res<TVal> {
        let v = self.eval(expr)?;
        if !v.ty.is_scalar() {
            return Err(Diagnostic::error(
                expr.span,
                format!("{func}() takes an integer here, found {}", v.ty.describe()),
            )
            .with_label("not an integer")
            .with_help(format!("usage: {usage}")));
        }
        Ok(v)
    }

    /// Truncates `reg` to `bytes` and extends it back to 64 bits.
    pub fn narrow(&mut self, reg: Reg, bytes: u8, signed: bool) {
        if bytes >= 8 {
            return;
        }
        let shift = 64 - i32::from(bytes) * 8;
        self.e.push(Insn::alu64_imm(AluOp::Lsh, reg, shift));
        self.e.push(Insn::alu64_imm(
            if signed { AluOp::Arsh } else { AluOp::Rsh },
            reg,
            shift,
        ));
    }

    pub fn string_literal(&mut self, bytes: &[u8]) -> TVal {
        let cap = align8(bytes.len() as u32 + 1);
        let place = self.alloc_mem(cap, false);
        self.write_bytes(place, bytes, cap);
        let mut v = TVal::new(Val::Mem(place), Ty::Str { cap });
        v.literal = Some(bytes.to_vec());
        v
    }

    /// Stores `bytes`, zero-padded to `cap`, at `place`.
    pub fn write_bytes(&mut self, place: Place, bytes: &[u8], cap: u32) {
        for i in (0..align8(cap)).step_by(8) {
            let mut word = [0u8; 8];
            for (j, w) in word.iter_mut().enumerate() {
                *w = bytes.get(i as usize + j).copied().unwrap_or(0);
            }
            let p = place.at(i);
            let lo = i32::from_le_bytes([word[0], word[1], word[2], word[3]]);
            let hi = i32::from_le_bytes([word[4], word[5], word[6], word[7]]);
            self.e
                .push(Insn::store_imm(Size::W, p.reg(), p.off16(), lo));
            self.e
                .push(Insn::store_imm(Size::W, p.reg(), p.off16() + 4, hi));
        }
    }

    fn variable(&mut self, name: &str, expr: &Expr) -> Res<TVal> {
        if name == "#" {
            return Ok(TVal::int(self.g.opts.positional.len() as i64));
        }
        if let Ok(n) = name.parse::<usize>() {
            let arg = n
                .checked_sub(1)
                .and_then(|i| self.g.opts.positional.get(i))
                .cloned()
                .unwrap_or_default();
            return Ok(match parse_int(&arg) {
                Some(v) => TVal::int(v),
                None if arg.is_empty() => TVal::int(0),
                None => self.string_literal(arg.as_bytes()),
            });
        }
        for scope in self.scopes.iter().rev() {
            if let Some((ty, place)) = scope.get(name) {
                let (ty, place) = (ty.clone(), *place);
                if ty == Ty::None
                    && self.g.discovering
                    && let Some(decl) = self.untyped_lets.get(&place)
                    && let Some(learnt) = self.g.let_types.get(decl).cloned()
                {
                    // Read before this run's first assignment: the type an
                    // earlier run learnt stands in.
                    let p = self.alloc_mem(learnt.size(), true);
                    return Ok(self.read_place(p, &learnt));
                }
                if ty == Ty::None {
                    return Err(Diagnostic::error(
                        expr.span,
                        format!("${name} is declared but never assigned: its type is unknown"),
                    )
                    .with_label("never assigned")
                    .with_help(format!("give it a type: let ${name}: uint64;")));
                }
                return Ok(self.read_place(place, &ty));
            }
        }
        let known: Vec<String> = self.scopes.iter().flat_map(|s| s.keys().cloned()).collect();
        let mut d = Diagnostic::error(expr.span, format!("undefined variable '${name}'"))
            .with_label("not assigned before this use");
        if let Some(best) = ferret_syntax::diag::closest(name, known.iter().map(String::as_str)) {
            d = d.with_help(format!("did you mean '${best}'?"));
        }
        Err(d)
    }

    fn unary(&mut self, op: UnaryOp, inner: &Expr, expr: &Expr) -> Res<TVal> {
        match op {
            UnaryOp::Neg | UnaryOp::BitNot | UnaryOp::Not => {
                let v = self.eval_int(inner)?;
                let ty = match op {
                    UnaryOp::Not => Ty::Bool,
                    UnaryOp::Neg => Ty::I64,
                    _ => v.ty.clone(),
                };
                let v = self.owned(v);
                self.load_reg(&v, Reg::R0);
                match op {
                    UnaryOp::Neg => self.e.push(Insn::neg64(Reg::R0)),
                    UnaryOp::BitNot => self.e.push(Insn::alu64_imm(AluOp::Xor, Reg::R0, -1)),
                    _ => {
                        self.e.push(Insn::jmp_imm(JmpOp::Jeq, Reg::R0, 0, 2));
                        self.e.push(Insn::mov64_imm(Reg::R0, 0));
                        self.e.push(Insn::ja(1));
                        self.e.push(Insn::mov64_imm(Reg::R0, 1));
                    }
                }
                self.store_back(&v, Reg::R0);
                Ok(TVal::new(v.val, ty))
            }
            UnaryOp::Deref => self.c_access(expr),
            UnaryOp::AddrOf => self.address_of(inner, expr),
        }
    }

    fn binary(&mut self, op: BinOp, lhs: &Expr, rhs: &Expr, expr: &Expr) -> Res<TVal> {
        if matches!(op, BinOp::And | BinOp::Or) {
            return self.logical(op, lhs, rhs);
        }
        let a = self.eval(lhs)?;
        let b = self.eval(rhs)?;
        if matches!(op, BinOp::Eq | BinOp::Ne) && !a.ty.is_scalar() {
            return self.compare_mem(op, a, b, expr);
        }
        for (v, e) in [(&a, lhs), (&b, rhs)] {
            if !v.ty.is_scalar() {
                return Err(Diagnostic::error(
                    e.span,
                    format!(
                        "operator '{}' needs integers, found {}",
                        op.symbol(),
                        v.ty.describe()
                    ),
                )
                .with_label(v.ty.describe()));
            }
        }
        // `ptr + n` steps over n pointed-to values, as in C.
        let (a, b, pointer) = self.pointer_arith(op, a, b, expr.span)?;
        let signed = a.ty.is_signed() || b.ty.is_signed();
        let result_ty = match (pointer, op) {
            (Some(ptr), _) => ptr,
            (_, BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge) => Ty::Bool,
            (_, BinOp::Sub) => Ty::I64,
            _ if signed => Ty::I64,
            _ => Ty::U64,
        };
        // An address marked kernel or user (`kptr`, `kaddr`) stays so when
        // moved (`kaddr("avenrun") + 8`).
        let space = if matches!(op, BinOp::Add | BinOp::Sub) {
            a.user.or(b.user)
        } else {
            None
        };
        // Constant folding keeps literals cheap (`1 << 20`, `-1`).
        if let (Val::Imm(x), Val::Imm(y)) = (&a.val, &b.val)
            && let Some(v) = fold(op, *x, *y)
        {
            let mut v = TVal::new(Val::Imm(v), result_ty);
            v.user = space;
            return Ok(v);
        }
        let a = self.owned(a);
        self.load_reg(&a, Reg::R0);
        self.load_reg(&b, Reg::R1);
        self.release(b);
        match op {
            BinOp::Add => self.e.push(Insn::alu64_reg(AluOp::Add, Reg::R0, Reg::R1)),
            BinOp::Sub => self.e.push(Insn::alu64_reg(AluOp::Sub, Reg::R0, Reg::R1)),
            BinOp::Mul => self.e.push(Insn::alu64_reg(AluOp::Mul, Reg::R0, Reg::R1)),
            BinOp::BitAnd => self.e.push(Insn::alu64_reg(AluOp::And, Reg::R0, Reg::R1)),
            BinOp::BitOr => self.e.push(Insn::alu64_reg(AluOp::Or, Reg::R0, Reg::R1)),
            BinOp::BitXor => self.e.push(Insn::alu64_reg(AluOp::Xor, Reg::R0, Reg::R1)),
            BinOp::Shl => self.e.push(Insn::alu64_reg(AluOp::Lsh, Reg::R0, Reg::R1)),
            BinOp::Shr => self.e.push(Insn::alu64_reg(
                if a.ty.is_signed() {
                    AluOp::Arsh
                } else {
                    AluOp::Rsh
                },
                Reg::R0,
                Reg::R1,
            )),
            BinOp::Div | BinOp::Mod => self.divide(op == BinOp::Mod, signed, expr.span)?,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let jop = compare_op(op, signed);
                self.e.push(Insn::jmp_reg(jop, Reg::R0, Reg::R1, 2));
                self.e.push(Insn::mov64_imm(Reg::R0, 0));
                self.e.push(Insn::ja(1));
                self.e.push(Insn::mov64_imm(Reg::R0, 1));
            }
            BinOp::And | BinOp::Or => {}
        }
        self.store_back(&a, Reg::R0);
        let mut v = TVal::new(a.val, result_ty);
        v.user = space;
        Ok(v)
    }

    /// r0 = r0 / r1 (or r0 % r1). eBPF's division is unsigned, so signed
    /// division divides magnitudes and fixes the sign as C does (quotient
    /// rounds toward zero, remainder takes the dividend's sign). Division
    /// and modulo by zero give 1 and report a runtime warning, as in
    /// bpftrace (eBPF itself would give 0, or the dividend).
    fn divide(&mut self, modulo: bool, signed: bool, span: ferret_syntax::Span) -> Res<()> {
        let op = if modulo { AluOp::Mod } else { AluOp::Div };
        let done = self.e.new_label();
        let nonzero = self.e.new_label();
        self.e.jump_if_imm(JmpOp::Jne, Reg::R1, 0, nonzero);
        self.runtime_error(
            span,
            "Divide or modulo by 0 detected. This can lead to unexpected results. \
             1 is being used as the result.",
        )?;
        self.e.push(Insn::mov64_imm(Reg::R0, 1));
        self.e.jump(done);
        self.e.bind(nonzero);
        if !signed {
            self.e.push(Insn::alu64_reg(op, Reg::R0, Reg::R1));
            self.e.bind(done);
            return Ok(());
        }
        // r2 = sign of the result: dividend's sign for %, xor of signs for /.
        self.e.push(Insn::mov64_imm(Reg::R2, 0));
        self.e.push(Insn::jmp_imm(JmpOp::Jsge, Reg::R0, 0, 2));
        self.e.push(Insn::neg64(Reg::R0));
        self.e.push(Insn::alu64_imm(AluOp::Xor, Reg::R2, 1));
        self.e.push(Insn::jmp_imm(JmpOp::Jsge, Reg::R1, 0, 2));
        self.e.push(Insn::neg64(Reg::R1));
        if modulo {
            self.e.push(Insn::ja(0));
        } else {
            self.e.push(Insn::alu64_imm(AluOp::Xor, Reg::R2, 1));
        }
        self.e.push(Insn::alu64_reg(op, Reg::R0, Reg::R1));
        self.e.push(Insn::jmp_imm(JmpOp::Jeq, Reg::R2, 0, 1));
        self.e.push(Insn::neg64(Reg::R0));
        self.e.bind(done);
        Ok(())
    }

    fn logical(&mut self, op: BinOp, lhs: &Expr, rhs: &Expr) -> Res<TVal> {
        let out = self.alloc_scalar();
        let out = TVal::new(out, Ty::Bool);
        let short = self.e.new_label();
        let done = self.e.new_label();
        let a = self.eval_int(lhs)?;
        self.load_reg(&a, Reg::R0);
        self.release(a);
        let (jop, short_value) = if op == BinOp::And {
            (JmpOp::Jeq, 0)
        } else {
            (JmpOp::Jne, 1)
        };
        self.e.jump_if_imm(jop, Reg::R0, 0, short);
        let b = self.eval_int(rhs)?;
        self.load_reg(&b, Reg::R0);
        self.release(b);
        self.e.push(Insn::jmp_imm(JmpOp::Jeq, Reg::R0, 0, 1));
        self.e.push(Insn::mov64_imm(Reg::R0, 1));
        self.e.jump(done);
        self.e.bind(short);
        self.e.push(Insn::mov64_imm(Reg::R0, short_value));
        self.e.bind(done);
        self.store_back(&out, Reg::R0);
        Ok(out)
    }

    /// `==`/`!=` on strings and tuples: compare their bytes 8 at a time.
    /// Strings are zero-padded after their NUL, so equal strings have equal
    /// bytes up to the shorter capacity, which always holds a NUL.
    fn compare_mem(&mut self, op: BinOp, a: TVal, b: TVal, expr: &Expr) -> Res<TVal> {
        let n = match (&a.ty, &b.ty) {
            (Ty::Str { cap: x }, Ty::Str { cap: y }) => (*x).min(*y),
            (x, y) if x == y => x.size(),
            (x, y) => {
                return Err(Diagnostic::error(
                    expr.span,
                    format!("cannot compare {} with {}", x.describe(), y.describe()),
                )
                .with_label("mismatched types"));
            }
        };
        let (Val::Mem(pa), Val::Mem(pb)) = (&a.val, &b.val) else {
            return Err(Diagnostic::error(expr.span, "cannot compare these values"));
        };
        let (pa, pb) = (*pa, *pb);
        let differ = self.e.new_label();
        let done = self.e.new_label();
        for i in (0..align8(n)).step_by(8) {
            let (x, y) = (pa.at(i), pb.at(i));
            self.e
                .push(Insn::load(Size::DW, Reg::R0, x.reg(), x.off16()));
            self.e
                .push(Insn::load(Size::DW, Reg::R1, y.reg(), y.off16()));
            self.e.jump_if_reg(JmpOp::Jne, Reg::R0, Reg::R1, differ);
        }
        let (same, other) = if op == BinOp::Eq { (1, 0) } else { (0, 1) };
        self.e.push(Insn::mov64_imm(Reg::R0, same));
        self.e.jump(done);
        self.e.bind(differ);
        self.e.push(Insn::mov64_imm(Reg::R0, other));
        self.e.bind(done);
        self.release(a);
        self.release(b);
        Ok(self.temp_from(Reg::R0, Ty::Bool))
    }

    fn ternary(&mut self, cond: &Expr, then: &Expr, otherwise: &Expr) -> Res<TVal> {
        let c = self.eval_int(cond)?;
        self.load_reg(&c, Reg::R0);
        self.release(c);
        let else_l = self.e.new_label();
        let done = self.e.new_label();
        self.e.jump_if_imm(JmpOp::Jeq, Reg::R0, 0, else_l);
        // Both arms write into one destination; its type is known only
        // after both are lowered, so composites get the larger size.
        let a = self.eval(then)?;
        let a_ty = a.ty.clone();
        if a_ty.is_scalar() {
            let out = self.alloc_scalar();
            let out = TVal::new(out, a_ty.clone());
            self.load_reg(&a, Reg::R0);
            self.release(a);
            self.store_back(&out, Reg::R0);
            self.e.jump(done);
            self.e.bind(else_l);
            let b = self.eval_int(otherwise)?;
            self.load_reg(&b, Reg::R0);
            let ty = a_ty.unify(&b.ty).unwrap_or(Ty::I64);
            self.release(b);
            self.store_back(&out, Reg::R0);
            self.e.bind(done);
            return Ok(TVal::new(out.val, ty));
        }
        // Composite: reserve room for the largest string we may hold.
        let cap = match &a_ty {
            Ty::Str { cap } => (*cap).max(self.g.opts.max_strlen),
            other => other.size(),
        };
        let out_ty = match &a_ty {
            Ty::Str { .. } => Ty::Str { cap },
            other => other.clone(),
        };
        let place = self.alloc_mem(cap, false);
        self.write_as(place, &a, &out_ty);
        self.release(a);
        self.e.jump(done);
        self.e.bind(else_l);
        let b = self.eval(otherwise)?;
        if b.ty.unify(&out_ty).is_none() {
            return Err(Diagnostic::error(
                otherwise.span,
                format!(
                    "both branches of '?:' must have the same type, found {} and {}",
                    a_ty.describe(),
                    b.ty.describe()
                ),
            )
            .with_label("different type"));
        }
        self.write_as(place, &b, &out_ty);
        self.release(b);
        self.e.bind(done);
        Ok(TVal::new(Val::Mem(place), out_ty))
    }

    /// Whether `base` is a record (`(a = 1).a`), not a C struct or `args`.
    fn is_record(&mut self, base: &Expr) -> bool {
        !matches!(&base.kind, ExprKind::Ident(n) if n == "args")
            && matches!(
                self.dry_eval(base),
                Ok(TVal {
                    ty: Ty::Record(_),
                    ..
                })
            )
    }

    /// `record.field`
    fn record_field(&mut self, base: &Expr, field: &str, span: ferret_syntax::Span) -> Res<TVal> {
        let v = self.eval(base)?;
        let (Ty::Record(fields), Val::Mem(p)) = (&v.ty, &v.val) else {
            return Err(Diagnostic::error(span, "record is not in memory"));
        };
        let (offs, _) = crate::types::record_layout(fields);
        if let Some(i) = fields.iter().position(|(n, _)| n == field) {
            let ty = fields[i].1.clone();
            return Ok(self.read_place(p.at(offs[i]), &ty));
        }
        let mut d = Diagnostic::error(
            span,
            format!("the record {} has no field '{field}'", v.ty.describe()),
        )
        .with_label("no such field");
        if let Some(best) =
            ferret_syntax::diag::closest(field, fields.iter().map(|(n, _)| n.as_str()))
        {
            d = d.with_help(format!("did you mean '{best}'?"));
        }
        Err(d)
    }

    /// `x++` and friends on variables and maps.
    fn inc_dec(&mut self, target: &Expr, increment: bool, prefix: bool) -> Res<TVal> {
        let old = self.eval_int(target)?;
        let old = self.owned(old);
        // A pointer steps over one pointed-to value.
        let step = self.pointer_step(&old.ty, target.span)?.unwrap_or(1);
        self.load_reg(&old, Reg::R0);
        self.e.push(Insn::alu64_imm(
            AluOp::Add,
            Reg::R0,
            if increment { step } else { -step },
        ));
        let new = self.temp_from(Reg::R0, old.ty.clone());
        self.assign_to(target, &new)?;
        if prefix {
            self.release(old);
            Ok(new)
        } else {
            self.release(new);
            Ok(old)
        }
    }
}

fn compare_op(op: BinOp, signed: bool) -> JmpOp {
    match (op, signed) {
        (BinOp::Eq, _) => JmpOp::Jeq,
        (BinOp::Ne, _) => JmpOp::Jne,
        (BinOp::Lt, true) => JmpOp::Jslt,
        (BinOp::Lt, false) => JmpOp::Jlt,
        (BinOp::Le, true) => JmpOp::Jsle,
        (BinOp::Le, false) => JmpOp::Jle,
        (BinOp::Gt, true) => JmpOp::Jsgt,
        (BinOp::Gt, false) => JmpOp::Jgt,
        (BinOp::Ge, true) => JmpOp::Jsge,
        _ => JmpOp::Jge,
    }
}

fn fold(op: BinOp, x: i64, y: i64) -> Option<i64> {
    Some(match op {
        BinOp::Add => x.wrapping_add(y),
        BinOp::Sub => x.wrapping_sub(y),
        BinOp::Mul => x.wrapping_mul(y),
        BinOp::Div => x.checked_div(y)?,
        BinOp::Mod => x.checked_rem(y)?,
        BinOp::BitAnd => x & y,
        BinOp::BitOr => x | y,
        BinOp::BitXor => x ^ y,
        BinOp::Shl => x.wrapping_shl(u32::try_from(y).ok()?),
        BinOp::Shr => x.wrapping_shr(u32::try_from(y).ok()?),
        BinOp::Eq => i64::from(x == y),
        BinOp::Ne => i64::from(x != y),
        BinOp::Lt => i64::from(x < y),
        BinOp::Le => i64::from(x <= y),
        BinOp::Gt => i64::from(x > y),
        BinOp::Ge => i64::from(x >= y),
        BinOp::And | BinOp::Or => return None,
    })
}

/// `int8` .. `uint64` and their C spellings.
pub(crate) fn int_type(name: &str) -> Option<Ty> {
    let (signed, bits) = match name {
        "int8" | "s8" | "i8" | "char" => (true, 8),
        "int16" | "s16" | "i16" | "short" => (true, 16),
        "int32" | "s32" | "i32" | "int" => (true, 32),
        "int64" | "s64" | "i64" | "long" => (true, 64),
        "uint8" | "u8" | "unsigned char" => (false, 8),
        "uint16" | "u16" => (false, 16),
        "uint32" | "u32" | "unsigned int" => (false, 32),
        "uint64" | "u64" | "unsigned long" => (false, 64),
        _ => return None,
    };
    Some(Ty::Int {
        bytes: bits / 8,
        signed,
    })
}

pub(crate) fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok().map(|v| v as i64);
    }
    s.parse::<i64>().ok()
}
