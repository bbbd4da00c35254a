//! Maps: keys, reads, plain writes, and the per-CPU aggregations (`count`,
//! `sum`, `min`, `max`, `avg`, `stats`, `hist`, `lhist`).

use ferret_bpf::insn::helper;
use ferret_bpf::{AluOp, Insn, JmpOp, Reg, Size};
use ferret_syntax::ast::{Expr, ExprKind};
use ferret_syntax::{Diagnostic, Span};

use super::expr::Res;
use super::{Lowerer, MapState, Place, SysMap, TVal, Val};
use crate::program::MapKind;
use crate::types::{Ty, align8, tuple_layout};

const BPF_ANY: i32 = 0;
const BPF_NOEXIST: i32 = 1;

pub(crate) const AGGREGATIONS: &[&str] = &[
    "count", "sum", "avg", "min", "max", "stats", "hist", "lhist",
];

pub(crate) fn is_aggregation(name: &str) -> bool {
    AGGREGATIONS.contains(&name)
}

fn map_display(name: &str) -> String {
    format!("@{name}")
}

impl Lowerer<'_, '_> {
    /// The id of map `@name`, registering it on first sight.
    pub fn map_id(&mut self, name: &str, span: Span) -> usize {
        let display = map_display(name);
        if let Some(&id) = self.g.map_ids.get(&display) {
            return id;
        }
        self.g.maps.push(MapState {
            name: display.clone(),
            key: None,
            kind: None,
            span,
            assigned: false,
        });
        let id = self.g.maps.len() - 1;
        self.g.map_ids.insert(display, id);
        id
    }

    fn learn_key(&mut self, id: usize, key: Option<Ty>, span: Span) -> Res<Option<Ty>> {
        let discovering = self.g.discovering;
        let m = &mut self.g.maps[id];
        match &m.key {
            None => {
                m.key = Some(key.clone());
                Ok(key)
            }
            Some(known) => {
                let unified = match (known, &key) {
                    (None, None) => Some(None),
                    (Some(a), Some(b)) => a.unify(b).map(Some),
                    _ => None,
                };
                match unified {
                    Some(u) => {
                        if discovering {
                            m.key = Some(u.clone());
                        }
                        Ok(m.key.clone().flatten())
                    }
                    None => Err(Diagnostic::error(
                        span,
                        format!(
                            "map {} is used with different keys: {} here, {} before",
                            m.name,
                            key.map_or("no key".into(), |k| k.describe()),
                            known.as_ref().map_or("no key".into(), Ty::describe)
                        ),
                    )
                    .with_label("inconsistent key")),
                }
            }
        }
    }

    fn learn_kind(&mut self, id: usize, kind: MapKind, span: Span) -> Res<MapKind> {
        let discovering = self.g.discovering;
        let m = &mut self.g.maps[id];
        m.assigned = true;
        let merged = match (&m.kind, &kind) {
            (None, _) => Some(kind.clone()),
            (Some(MapKind::Plain(a)), MapKind::Plain(b)) => a
                .unify(b)
                .or_else(|| (a.is_scalar() && b.is_scalar()).then(|| a.clone()))
                .map(MapKind::Plain),
            (Some(MapKind::Sum { signed: a }), MapKind::Sum { signed: b }) => {
                Some(MapKind::Sum { signed: *a || *b })
            }
            (Some(a), b) if a == b => Some(a.clone()),
            _ => None,
        };
        match merged {
            Some(k) => {
                if discovering || m.kind.is_none() {
                    m.kind = Some(k);
                }
                Ok(m.kind.clone().unwrap_or(kind))
            }
            None => Err(Diagnostic::error(
                span,
                format!(
                    "map {} already holds {}; it cannot also hold {}",
                    m.name,
                    describe_kind(m.kind.as_ref()),
                    describe_kind(Some(&kind))
                ),
            )
            .with_label("conflicting use")),
        }
    }

    /// Builds the kernel key of `@name[keys]` in memory, with 8 spare bytes
    /// at the end for a histogram's bucket index. Returns it and the offset
    /// of those spare bytes.
    fn build_key(&mut self, id: usize, keys: &[Expr], span: Span) -> Res<(Place, u32)> {
        let vals = keys.iter().map(|k| self.eval(k)).collect::<Res<Vec<_>>>()?;
        for (v, k) in vals.iter().zip(keys) {
            if v.ty == Ty::None {
                return Err(Diagnostic::error(k.span, "this expression has no value")
                    .with_label("cannot be a map key"));
            }
        }
        let key_ty = match vals.len() {
            0 => None,
            1 => Some(vals[0].ty.clone()),
            _ => Some(Ty::Tuple(vals.iter().map(|v| v.ty.clone()).collect())),
        };
        let key_ty = self.learn_key(id, key_ty, span)?;
        let user_size = key_ty.as_ref().map_or(8, |k| align8(k.size()));
        let place = self.alloc_mem(user_size + 8, true);
        match (&key_ty, vals.len()) {
            (None, _) | (_, 0) => {}
            (Some(ty), 1) => self.write_as(place, &vals[0], ty),
            (Some(Ty::Tuple(elems)), _) => {
                let (offs, _) = tuple_layout(elems);
                for ((v, ty), off) in vals.iter().zip(elems).zip(offs) {
                    self.write_as(place.at(off), v, ty);
                }
            }
            (Some(_), _) => {}
        }
        for v in vals {
            self.release(v);
        }
        Ok((place, user_size))
    }

    /// `r0 = lookup(map, &key)`
    fn lookup(&mut self, obj: usize, key: Place) {
        self.e.load_map(Reg::R1, obj);
        self.addr_of(key, Reg::R2);
        self.e.push(Insn::call(helper::MAP_LOOKUP_ELEM));
    }

    /// Reads `@name[keys]`.
    pub fn map_read(&mut self, name: &str, keys: &[Expr], expr: &Expr) -> Res<TVal> {
        let id = self.map_id(name, expr.span);
        let (key, _) = self.build_key(id, keys, expr.span)?;
        let kind = self.g.maps[id].kind.clone();
        let Some(kind) = kind else {
            // Only while discovering: the assignment comes later in the source.
            return Ok(TVal::int(0));
        };
        let ty = match &kind {
            MapKind::Plain(ty) => ty.clone(),
            MapKind::Count | MapKind::Sum { .. } | MapKind::Min | MapKind::Max | MapKind::Avg => {
                return self.percpu_read(id, key, &kind, expr.span);
            }
            other => {
                return Err(Diagnostic::error(
                    expr.span,
                    format!(
                        "cannot read map {} inside a probe: it holds {}",
                        map_display(name),
                        describe_kind(Some(other))
                    ),
                )
                .with_label("read here")
                .with_help("print it with print() instead"));
            }
        };
        if self.g.discovering {
            return Ok(if ty.is_scalar() {
                TVal::new(Val::Imm(0), ty)
            } else {
                let p = self.alloc_mem(ty.size(), true);
                TVal::new(Val::Mem(p), ty)
            });
        }
        let obj = self.g.obj_map(SysMap::User(id));
        self.lookup(obj, key);
        let missing = self.e.new_label();
        let done = self.e.new_label();
        if ty.is_scalar() {
            self.e.jump_if_imm(JmpOp::Jeq, Reg::R0, 0, missing);
            self.e.push(Insn::load(Size::DW, Reg::R0, Reg::R0, 0));
            self.e.jump(done);
            self.e.bind(missing);
            self.e.push(Insn::mov64_imm(Reg::R0, 0));
            self.e.bind(done);
            Ok(self.temp_from(Reg::R0, ty))
        } else {
            let place = self.alloc_mem(ty.size(), false);
            self.e.jump_if_imm(JmpOp::Jeq, Reg::R0, 0, missing);
            self.e.push(Insn::mov64_reg(Reg::R1, Reg::R0));
            self.copy_from_ptr(place, Reg::R1, ty.size());
            self.e.jump(done);
            self.e.bind(missing);
            self.zero_mem(place, ty.size());
            self.e.bind(done);
            Ok(TVal::new(Val::Mem(place), ty))
        }
    }

    /// The value of a per-CPU aggregation across every CPU, as bpftrace
    /// reads `@c` in `if (@c > 5)` (and a for-loop's `$kv.1`): the sum of
    /// `count`/`sum`, the least or greatest `min`/`max` of the CPUs that saw
    /// a value, the integer mean of `avg`.
    pub fn percpu_read(&mut self, id: usize, key: Place, kind: &MapKind, span: Span) -> Res<TVal> {
        let ty = percpu_value_type(kind);
        if self.g.discovering {
            return Ok(TVal::new(Val::Imm(0), ty));
        }
        if self.g.ncpus > 64 {
            return Err(Diagnostic::error(
                span,
                "reading a per-CPU map inside a probe is limited to 64 CPUs",
            ));
        }
        // acc: the total (or the best value so far); n: the count of an
        // avg, or whether a min/max has a value yet.
        let acc = self.alloc_scalar();
        let acc = TVal::new(acc, ty.clone());
        let n = self.alloc_scalar();
        let n = TVal::new(n, Ty::U64);
        self.e.push(Insn::mov64_imm(Reg::R0, 0));
        self.store_back(&acc, Reg::R0);
        self.store_back(&n, Reg::R0);
        let obj = self.g.obj_map(SysMap::User(id));
        for cpu in 0..self.g.ncpus {
            let skip = self.e.new_label();
            self.e.load_map(Reg::R1, obj);
            self.addr_of(key, Reg::R2);
            self.e.push(Insn::mov64_imm(Reg::R3, cpu as i32));
            self.e.push(Insn::call(helper::MAP_LOOKUP_PERCPU_ELEM));
            self.e.jump_if_imm(JmpOp::Jeq, Reg::R0, 0, skip);
            match kind {
                MapKind::Min | MapKind::Max => {
                    // Value at +0, "set" flag at +8: a CPU that never saw a
                    // value has nothing to say.
                    let take = self.e.new_label();
                    self.e.push(Insn::load(Size::DW, Reg::R1, Reg::R0, 8));
                    self.e.jump_if_imm(JmpOp::Jeq, Reg::R1, 0, skip);
                    self.e.push(Insn::load(Size::DW, Reg::R1, Reg::R0, 0));
                    self.load_reg(&n, Reg::R2);
                    self.e.jump_if_imm(JmpOp::Jeq, Reg::R2, 0, take);
                    self.load_reg(&acc, Reg::R2);
                    let keep = if *kind == MapKind::Min {
                        JmpOp::Jsge
                    } else {
                        JmpOp::Jsle
                    };
                    self.e.jump_if_reg(keep, Reg::R1, Reg::R2, skip);
                    self.e.bind(take);
                    self.store_back(&acc, Reg::R1);
                    self.e.push(Insn::mov64_imm(Reg::R1, 1));
                    self.store_back(&n, Reg::R1);
                }
                _ => {
                    self.e.push(Insn::load(Size::DW, Reg::R1, Reg::R0, 0));
                    self.load_reg(&acc, Reg::R2);
                    self.e.push(Insn::alu64_reg(AluOp::Add, Reg::R2, Reg::R1));
                    self.store_back(&acc, Reg::R2);
                    if *kind == MapKind::Avg {
                        self.e.push(Insn::load(Size::DW, Reg::R1, Reg::R0, 8));
                        self.load_reg(&n, Reg::R2);
                        self.e.push(Insn::alu64_reg(AluOp::Add, Reg::R2, Reg::R1));
                        self.store_back(&n, Reg::R2);
                    }
                }
            }
            self.e.bind(skip);
        }
        if *kind == MapKind::Avg {
            // The mean rounds toward zero, as bpftrace's; eBPF divides
            // unsigned (and by zero gives zero).
            let positive = self.e.new_label();
            let done = self.e.new_label();
            self.load_reg(&acc, Reg::R0);
            self.load_reg(&n, Reg::R1);
            self.e.jump_if_imm(JmpOp::Jsge, Reg::R0, 0, positive);
            self.e.push(Insn::neg64(Reg::R0));
            self.e.push(Insn::alu64_reg(AluOp::Div, Reg::R0, Reg::R1));
            self.e.push(Insn::neg64(Reg::R0));
            self.e.jump(done);
            self.e.bind(positive);
            self.e.push(Insn::alu64_reg(AluOp::Div, Reg::R0, Reg::R1));
            self.e.bind(done);
            self.store_back(&acc, Reg::R0);
        }
        self.release(n);
        Ok(acc)
    }

    /// `@name[keys] = v`
    pub fn map_write(&mut self, name: &str, keys: &[Expr], v: &TVal, target: &Expr) -> Res<()> {
        let id = self.map_id(name, target.span);
        let kind = self.learn_kind(id, MapKind::Plain(v.ty.clone()), target.span)?;
        let (key, _) = self.build_key(id, keys, target.span)?;
        let MapKind::Plain(ty) = kind else {
            return Ok(());
        };
        if self.g.discovering {
            return Ok(());
        }
        let size = MapKind::Plain(ty.clone()).value_size();
        let value = self.alloc_mem(size, ty.size() < size);
        self.write_as(value, v, &ty);
        let obj = self.g.obj_map(SysMap::User(id));
        self.e.load_map(Reg::R1, obj);
        self.addr_of(key, Reg::R2);
        self.addr_of(value, Reg::R3);
        self.e.push(Insn::mov64_imm(Reg::R4, BPF_ANY));
        self.e.push(Insn::call(helper::MAP_UPDATE_ELEM));
        self.count_if_full(id);
        Ok(())
    }

    /// After a map update: when the kernel refused it because the map is
    /// full (`-E2BIG`), counts it for map `id`, so ferret can warn at exit.
    fn count_if_full(&mut self, id: usize) {
        const E2BIG: i32 = 7;
        let done = self.e.new_label();
        // Only the low 32 bits are compared: before Linux 6.4 the verifier
        // calls the map's own update function, which returns an `int`, so
        // only r0's low half holds the error (in practice zero-extended).
        self.e.push(Insn::alu32_reg(AluOp::Mov, Reg::R1, Reg::R0));
        self.e.push(Insn::alu32_imm(AluOp::Mov, Reg::R2, -E2BIG));
        self.e.jump_if_reg(JmpOp::Jne, Reg::R1, Reg::R2, done);
        let full = self.g.obj_map(SysMap::Full);
        let key = self.alloc_mem(8, false);
        self.e.push(Insn::store_imm(
            Size::W,
            key.reg(),
            key.off16(),
            i32::try_from(id).unwrap_or(i32::MAX),
        ));
        self.lookup(full, key);
        self.e.jump_if_imm(JmpOp::Jeq, Reg::R0, 0, done);
        self.e.push(Insn::load(Size::DW, Reg::R1, Reg::R0, 0));
        self.e.push(Insn::alu64_imm(AluOp::Add, Reg::R1, 1));
        self.e.push(Insn::store(Size::DW, Reg::R0, 0, Reg::R1));
        self.e.bind(done);
    }

    /// `@name[keys] = f(args)` for an aggregation `f`.
    pub fn aggregate(
        &mut self,
        name: &str,
        keys: &[Expr],
        f: &str,
        args: &[Expr],
        target: &Expr,
        call: &Expr,
    ) -> Res<()> {
        let arity = |n: std::ops::RangeInclusive<usize>, usage: &str| -> Res<()> {
            if n.contains(&args.len()) {
                Ok(())
            } else {
                Err(Diagnostic::error(
                    call.span,
                    format!("{f}() {}, {} given", super::calls::takes(&n), args.len()),
                )
                .with_label("wrong number of arguments")
                .with_help(format!("usage: {usage}")))
            }
        };
        let literal = |e: &Expr, what: &str| -> Res<i64> {
            match &e.kind {
                ExprKind::Int(v) => Ok(*v as i64),
                ExprKind::Unary {
                    op: ferret_syntax::ast::UnaryOp::Neg,
                    expr,
                } => match expr.kind {
                    ExprKind::Int(v) => Ok(-(v as i64)),
                    _ => Err(Diagnostic::error(
                        e.span,
                        format!("{what} must be an integer literal"),
                    )),
                },
                _ => Err(
                    Diagnostic::error(e.span, format!("{what} must be an integer literal"))
                        .with_label("not a literal"),
                ),
            }
        };
        // Evaluate the argument before the map lookup: helpers clobber r0-r5.
        let value = match f {
            "count" => {
                arity(0..=0, "@x = count()")?;
                None
            }
            "hist" => {
                arity(1..=2, "@x = hist(value[, k])")?;
                Some(self.eval_int_arg(&args[0], f, "@x = hist(value[, k])")?)
            }
            "lhist" => {
                let usage = "@x = lhist(value, min, max, step)";
                arity(4..=4, usage)?;
                Some(self.eval_int_arg(&args[0], f, usage)?)
            }
            _ => {
                let usage = format!("@x = {f}(value)");
                arity(1..=1, &usage)?;
                Some(self.eval_int_arg(&args[0], f, &usage)?)
            }
        };
        let signed = value.as_ref().is_some_and(|v| v.ty.is_signed());
        let kind = match f {
            "count" => MapKind::Count,
            "sum" => MapKind::Sum { signed },
            "min" => MapKind::Min,
            "max" => MapKind::Max,
            "avg" => MapKind::Avg,
            "stats" => MapKind::Stats,
            "hist" => {
                let k = match args.get(1) {
                    Some(e) => literal(e, "the hist precision k")?,
                    None => 0,
                };
                if !(0..=5).contains(&k) {
                    return Err(Diagnostic::error(
                        args[1].span,
                        "hist precision k must be between 0 and 5",
                    )
                    .with_label("out of range"));
                }
                MapKind::Hist { k: k as u8 }
            }
            _ => {
                let min = literal(&args[1], "lhist's min")?;
                let max = literal(&args[2], "lhist's max")?;
                let step = literal(&args[3], "lhist's step")?;
                if step <= 0 {
                    return Err(Diagnostic::error(
                        args[3].span,
                        "lhist step must be greater than zero",
                    )
                    .with_label("invalid step"));
                }
                if max <= min {
                    return Err(Diagnostic::error(
                        args[2].span,
                        "lhist max must be greater than min",
                    )
                    .with_label("invalid range"));
                }
                if (max - min) / step > 1000 {
                    return Err(Diagnostic::error(
                        call.span,
                        "lhist may have at most 1000 buckets",
                    )
                    .with_label("too many buckets")
                    .with_help("use a larger step"));
                }
                MapKind::Lhist { min, max, step }
            }
        };
        let id = self.map_id(name, target.span);
        let kind = self.learn_kind(id, kind, target.span)?;
        let (key, bucket_off) = self.build_key(id, keys, target.span)?;
        if self.g.discovering {
            if let Some(v) = value {
                self.release(v);
            }
            return Ok(());
        }
        let value = value.map(|v| self.owned(v));
        if let (Some(v), MapKind::Hist { .. } | MapKind::Lhist { .. }) = (&value, &kind) {
            self.load_reg(v, Reg::R0);
            match &kind {
                MapKind::Hist { k } => self.log2_bucket(*k),
                MapKind::Lhist { min, max, step } => self.linear_bucket(*min, *max, *step),
                _ => {}
            }
            let p = key.at(bucket_off);
            self.e
                .push(Insn::store(Size::DW, p.reg(), p.off16(), Reg::R0));
        }
        let obj = self.g.obj_map(SysMap::User(id));
        let have = self.e.new_label();
        let done = self.e.new_label();
        self.lookup(obj, key);
        if kind.uses_array(self.g.maps[id].key.clone().flatten().as_ref()) {
            // The slot always exists; the check is for the verifier.
            self.e.jump_if_imm(JmpOp::Jeq, Reg::R0, 0, done);
        }
        self.e.jump_if_imm(JmpOp::Jne, Reg::R0, 0, have);
        let zero = self.alloc_mem(kind.value_size(), true);
        self.e.load_map(Reg::R1, obj);
        self.addr_of(key, Reg::R2);
        self.addr_of(zero, Reg::R3);
        self.e.push(Insn::mov64_imm(Reg::R4, BPF_NOEXIST));
        self.e.push(Insn::call(helper::MAP_UPDATE_ELEM));
        self.count_if_full(id);
        self.lookup(obj, key);
        self.e.jump_if_imm(JmpOp::Jeq, Reg::R0, 0, done);
        self.e.bind(have);
        // r0 points at this CPU's value.
        match (&kind, &value) {
            (MapKind::Count | MapKind::Hist { .. } | MapKind::Lhist { .. }, _) => {
                self.e.push(Insn::load(Size::DW, Reg::R1, Reg::R0, 0));
                self.e.push(Insn::alu64_imm(AluOp::Add, Reg::R1, 1));
                self.e.push(Insn::store(Size::DW, Reg::R0, 0, Reg::R1));
            }
            (MapKind::Sum { .. }, Some(v)) => {
                self.load_reg(v, Reg::R2);
                self.e.push(Insn::load(Size::DW, Reg::R1, Reg::R0, 0));
                self.e.push(Insn::alu64_reg(AluOp::Add, Reg::R1, Reg::R2));
                self.e.push(Insn::store(Size::DW, Reg::R0, 0, Reg::R1));
            }
            (MapKind::Avg | MapKind::Stats, Some(v)) => {
                self.load_reg(v, Reg::R2);
                self.e.push(Insn::load(Size::DW, Reg::R1, Reg::R0, 0));
                self.e.push(Insn::alu64_reg(AluOp::Add, Reg::R1, Reg::R2));
                self.e.push(Insn::store(Size::DW, Reg::R0, 0, Reg::R1));
                self.e.push(Insn::load(Size::DW, Reg::R1, Reg::R0, 8));
                self.e.push(Insn::alu64_imm(AluOp::Add, Reg::R1, 1));
                self.e.push(Insn::store(Size::DW, Reg::R0, 8, Reg::R1));
            }
            (MapKind::Min | MapKind::Max, Some(v)) => {
                // Value at +0, "set" flag at +8: a CPU that never saw a value
                // must not contribute its zero.
                let set = self.e.new_label();
                self.load_reg(v, Reg::R2);
                self.e.push(Insn::load(Size::DW, Reg::R1, Reg::R0, 8));
                self.e.jump_if_imm(JmpOp::Jeq, Reg::R1, 0, set);
                self.e.push(Insn::load(Size::DW, Reg::R1, Reg::R0, 0));
                let keep = if kind == MapKind::Min {
                    JmpOp::Jsge
                } else {
                    JmpOp::Jsle
                };
                self.e.jump_if_reg(keep, Reg::R2, Reg::R1, done);
                self.e.bind(set);
                self.e.push(Insn::store(Size::DW, Reg::R0, 0, Reg::R2));
                self.e.push(Insn::store_imm(Size::DW, Reg::R0, 8, 1));
            }
            _ => {}
        }
        self.e.bind(done);
        if let Some(v) = value {
            self.release(v);
        }
        Ok(())
    }

    /// r0 = hist bucket of r0, exactly as `ferret_output::hist::log2_index`.
    pub fn log2_bucket(&mut self, k: u8) {
        let k = i32::from(k);
        let mask = (1i32 << k) - 1;
        let done = self.e.new_label();
        let negative = self.e.new_label();
        let small = self.e.new_label();
        self.e.jump_if_imm(JmpOp::Jslt, Reg::R0, 0, negative);
        self.e.jump_if_imm(JmpOp::Jle, Reg::R0, mask, small);
        // r1 = n, r2 = l (floor(log2 n)), r3 = scratch
        self.e.push(Insn::mov64_reg(Reg::R1, Reg::R0));
        self.e.push(Insn::mov64_imm(Reg::R2, 0));
        for shift in [32, 16, 8, 4, 2, 1] {
            self.e.push(Insn::mov64_reg(Reg::R3, Reg::R1));
            self.e.push(Insn::alu64_imm(AluOp::Rsh, Reg::R3, shift));
            self.e.push(Insn::jmp_imm(JmpOp::Jeq, Reg::R3, 0, 2));
            self.e.push(Insn::mov64_reg(Reg::R1, Reg::R3));
            self.e.push(Insn::alu64_imm(AluOp::Add, Reg::R2, shift));
        }
        // l -= k; x = (n >> l) & mask; index = ((l + 1) << k) + x + 1
        self.e.push(Insn::alu64_imm(AluOp::Sub, Reg::R2, k));
        self.e.push(Insn::alu64_reg(AluOp::Rsh, Reg::R0, Reg::R2));
        self.e.push(Insn::alu64_imm(AluOp::And, Reg::R0, mask));
        self.e.push(Insn::alu64_imm(AluOp::Add, Reg::R2, 1));
        self.e.push(Insn::alu64_imm(AluOp::Lsh, Reg::R2, k));
        self.e.push(Insn::alu64_reg(AluOp::Add, Reg::R0, Reg::R2));
        self.e.push(Insn::alu64_imm(AluOp::Add, Reg::R0, 1));
        self.e.jump(done);
        self.e.bind(small);
        self.e.push(Insn::alu64_imm(AluOp::Add, Reg::R0, 1));
        self.e.jump(done);
        self.e.bind(negative);
        self.e.push(Insn::mov64_imm(Reg::R0, 0));
        self.e.bind(done);
    }

    /// r0 = lhist bucket of r0, exactly as `ferret_output::hist::linear_index`.
    pub fn linear_bucket(&mut self, min: i64, max: i64, step: i64) {
        let done = self.e.new_label();
        let below = self.e.new_label();
        let inside = self.e.new_label();
        self.e.mov_imm(Reg::R1, min);
        self.e.jump_if_reg(JmpOp::Jslt, Reg::R0, Reg::R1, below);
        self.e.mov_imm(Reg::R1, max);
        self.e.jump_if_reg(JmpOp::Jsle, Reg::R0, Reg::R1, inside);
        self.e.mov_imm(Reg::R0, max);
        self.e.bind(inside);
        self.e.alu_imm(AluOp::Sub, Reg::R0, min, Reg::R1);
        self.e.alu_imm(AluOp::Div, Reg::R0, step, Reg::R1);
        self.e.push(Insn::alu64_imm(AluOp::Add, Reg::R0, 1));
        self.e.jump(done);
        self.e.bind(below);
        self.e.push(Insn::mov64_imm(Reg::R0, 0));
        self.e.bind(done);
    }

    /// `delete(@m, key)` / `delete(@m[key])`
    /// Deletes a key; true when it existed.
    pub fn map_delete(&mut self, name: &str, keys: &[Expr], span: Span) -> Res<TVal> {
        let id = self.map_id(name, span);
        let (key, _) = self.build_key(id, keys, span)?;
        if self.g.maps[id]
            .kind
            .as_ref()
            .is_some_and(MapKind::is_histogram)
        {
            return Err(
                Diagnostic::error(span, "cannot delete one key of a histogram map")
                    .with_label("histogram map")
                    .with_help("use clear() to empty it"),
            );
        }
        if self.g.discovering {
            return Ok(TVal::new(Val::Imm(1), Ty::Bool));
        }
        let obj = self.g.obj_map(SysMap::User(id));
        let kind = self.g.maps[id].kind.clone();
        if let Some(kind) = kind.filter(|k| k.uses_array(None) && keys.is_empty()) {
            // Array slots cannot be deleted: zero this CPU's slot instead.
            self.lookup(obj, key);
            let done = self.e.new_label();
            self.e.jump_if_imm(JmpOp::Jeq, Reg::R0, 0, done);
            for off in (0..kind.value_size()).step_by(8) {
                self.e
                    .push(Insn::store_imm(Size::DW, Reg::R0, off as i16, 0));
            }
            self.e.bind(done);
            return Ok(TVal::new(Val::Imm(1), Ty::Bool));
        }
        self.e.load_map(Reg::R1, obj);
        self.addr_of(key, Reg::R2);
        self.e.push(Insn::call(helper::MAP_DELETE_ELEM));
        // r0 = (r0 == 0)
        self.e.push(Insn::jmp_imm(JmpOp::Jeq, Reg::R0, 0, 2));
        self.e.push(Insn::mov64_imm(Reg::R0, 0));
        self.e.push(Insn::ja(1));
        self.e.push(Insn::mov64_imm(Reg::R0, 1));
        Ok(self.temp_from(Reg::R0, Ty::Bool))
    }

    /// `has_key(@m, key)`: whether the key is in the map.
    pub fn map_has_key(&mut self, name: &str, keys: &[Expr], expr: &Expr) -> Res<TVal> {
        let id = self.map_id(name, expr.span);
        if self.g.maps[id].key.as_ref().is_some_and(Option::is_none) || keys.is_empty() {
            return Err(Diagnostic::error(
                expr.span,
                format!(
                    "has_key() expects a map with keys; {} has none",
                    map_display(name)
                ),
            )
            .with_label("scalar map")
            .with_help("usage: has_key(@map, key)"));
        }
        if self.g.maps[id]
            .kind
            .as_ref()
            .is_some_and(MapKind::is_histogram)
        {
            return Err(
                Diagnostic::error(expr.span, "has_key() cannot look into a histogram map")
                    .with_label("histogram map"),
            );
        }
        let (key, _) = self.build_key(id, keys, expr.span)?;
        if self.g.discovering {
            return Ok(TVal::new(Val::Imm(0), Ty::Bool));
        }
        let obj = self.g.obj_map(SysMap::User(id));
        self.lookup(obj, key);
        self.e.push(Insn::jmp_imm(JmpOp::Jeq, Reg::R0, 0, 1));
        self.e.push(Insn::mov64_imm(Reg::R0, 1));
        Ok(self.temp_from(Reg::R0, Ty::Bool))
    }
}

/// The type of a per-CPU aggregation's value read in a probe.
pub(crate) fn percpu_value_type(kind: &MapKind) -> Ty {
    match kind {
        MapKind::Count | MapKind::Sum { signed: false } => Ty::U64,
        _ => Ty::I64,
    }
}

pub(crate) fn describe_kind(kind: Option<&MapKind>) -> String {
    match kind {
        None => "nothing yet".into(),
        Some(MapKind::Plain(ty)) => format!("values of type {}", ty.describe()),
        Some(MapKind::Count) => "count()".into(),
        Some(MapKind::Sum { .. }) => "sum()".into(),
        Some(MapKind::Min) => "min()".into(),
        Some(MapKind::Max) => "max()".into(),
        Some(MapKind::Avg) => "avg()".into(),
        Some(MapKind::Stats) => "stats()".into(),
        Some(MapKind::Hist { .. }) => "hist()".into(),
        Some(MapKind::Lhist { .. }) => "lhist()".into(),
    }
}
