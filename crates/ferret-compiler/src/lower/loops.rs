//! Loops that run as callbacks: `for ($kv : @map)` through
//! `bpf_for_each_map_elem`, `for ($i : a..b)` through `bpf_loop`, and
//! `len(@map)`.
//!
//! A callback is a function of its own (r1-r5 are its arguments, r6-r9 and
//! the frame are its own) but the loop body works in the probe's memory, as
//! it does in bpftrace, which hands the callback pointers to the variables
//! it uses. Here the probe passes the address of its context slot as the
//! callback's context; the callback's prologue turns that into the probe's
//! frame pointer in [`FRAME_REG`] and finds the scratch memory where the
//! probe left its address; the body is emitted exactly as the probe's code
//! would be, and every frame pointer use in it is then redirected to
//! [`FRAME_REG`]. So variables, the context pointer (for `args`, `kstack`)
//! and scratch memory are where the rest of the probe has them, and the
//! callback's own stack stays empty. The verifier counts the frames of the
//! probe and of every nested callback against one 512-byte stack, and 6.1's
//! counts an empty frame as 32 bytes: a probe with nested loops keeps less
//! of its memory on the stack (`Lowerer::stack_budget`).
//!
//! `break` and `continue` return 1 and 0 from the callback, which stops or
//! goes on with the helper's iterations; `return` (and `exit()`) sets a flag
//! in the probe's memory and stops the loop, and the code after the helper
//! call returns from the probe (or from the enclosing loop's callback).

use std::collections::HashMap;

use ferret_bpf::insn::helper;
use ferret_bpf::{AluOp, Insn, JmpOp, Reg, Size};
use ferret_syntax::Diagnostic;
use ferret_syntax::ast::{Block, Expr, ExprKind};

use super::expr::Res;
use super::value::Base;
use super::{CTX_SLOT, Lowerer, Place, SysMap, TVal, Val};
use crate::emit::{Emitter, Label};
use crate::program::MapKind;
use crate::types::{Ty, align8, tuple_layout};

/// Holds the probe's frame pointer in callbacks.
pub(crate) const FRAME_REG: Reg = Reg::R6;
/// Temporaries in callbacks, where r6 is taken.
const CALLBACK_TEMP_REGS: [Reg; 2] = [Reg::R8, Reg::R7];

/// One callback's code, without its prologue (which depends on the
/// probe's final memory layout).
pub(crate) struct Callback {
    pub body: Emitter,
    /// The argument holding the loop's context (the address of the probe's
    /// context slot); `None` for a callback that needs no memory.
    pub ctx_arg: Option<Reg>,
}

/// Redirects a callback's frame pointer uses to the probe's frame.
pub(crate) fn use_probe_frame(insns: &mut [Insn]) {
    let fp = Reg::FP.0;
    for insn in insns {
        if insn.dst == fp {
            insn.dst = FRAME_REG.0;
        }
        if insn.src == fp {
            insn.src = FRAME_REG.0;
        }
    }
}

impl Lowerer<'_, '_> {
    /// Lowers a callback whose body `lower` emits, with the context in
    /// argument `ctx_arg`. A `return` in it sets `flag` (in the probe's
    /// memory) and stops the loop. Returns the callback's number and
    /// whether it may return from the probe.
    fn callback(
        &mut self,
        ctx_arg: Reg,
        flag: Place,
        lower: impl FnOnce(&mut Self) -> Res<()>,
    ) -> Res<(usize, bool)> {
        let id = self.callbacks.len();
        self.callbacks.push(Callback {
            body: Emitter::default(),
            ctx_arg: Some(ctx_arg),
        });
        let outer_e = std::mem::take(&mut self.e);
        let outer_regs = std::mem::replace(&mut self.free_regs, CALLBACK_TEMP_REGS.to_vec());
        let outer_loops = std::mem::take(&mut self.loops);
        let next = self.e.new_label();
        let stop = self.e.new_label();
        let leave = self.e.new_label();
        let outer_exit = std::mem::replace(&mut self.exit_label, leave);
        self.loops.push((next, stop));
        self.callback_depth += 1;
        self.deepest_callback = self.deepest_callback.max(self.callback_depth);
        let r = lower(self);
        self.callback_depth -= 1;
        self.e.bind(next);
        self.e.push(Insn::mov64_imm(Reg::R0, 0));
        self.e.push(Insn::exit());
        self.e.bind(stop);
        self.e.push(Insn::mov64_imm(Reg::R0, 1));
        self.e.push(Insn::exit());
        self.e.bind(leave);
        self.e
            .push(Insn::store_imm(Size::DW, flag.reg(), flag.off16(), 1));
        self.e.push(Insn::mov64_imm(Reg::R0, 1));
        self.e.push(Insn::exit());
        let returns = self.e.is_used(leave);
        self.callbacks[id].body = std::mem::replace(&mut self.e, outer_e);
        self.free_regs = outer_regs;
        self.loops = outer_loops;
        self.exit_label = outer_exit;
        r.map(|()| (id, returns))
    }

    /// Runs `body` `count` times through `bpf_loop`, with the iteration's
    /// index in r1; `body` jumps to `next` to go on and `stop` to end the
    /// loop, and has r0-r5 to itself.
    pub(super) fn bounded_loop(
        &mut self,
        count: u32,
        body: impl FnOnce(&mut Self, Label, Label),
    ) -> Res<()> {
        let unused = self.alloc_mem(8, false);
        let (cb, returns) = self.callback(Reg::R2, unused, |l| {
            let Some(&(next, stop)) = l.loops.last() else {
                return Ok(());
            };
            body(l, next, stop);
            Ok(())
        })?;
        self.e.mov_imm(Reg::R1, i64::from(count));
        self.call_loop(helper::LOOP, cb, unused, returns);
        Ok(())
    }

    /// Calls loop helper `helper_id` with callback `cb` (r1 already set),
    /// then returns from the probe if the body returned.
    fn call_loop(&mut self, helper_id: i32, cb: usize, flag: Place, returns: bool) {
        self.e.load_func(Reg::R2, cb);
        self.addr_of(
            Place {
                base: Base::Stack,
                off: i32::from(CTX_SLOT),
            },
            Reg::R3,
        );
        self.e.push(Insn::mov64_imm(Reg::R4, 0));
        if returns {
            self.e
                .push(Insn::store_imm(Size::DW, flag.reg(), flag.off16(), 0));
        }
        self.e.push(Insn::call(helper_id));
        if returns {
            self.e
                .push(Insn::load(Size::DW, Reg::R0, flag.reg(), flag.off16()));
            let exit = self.exit_label;
            self.e.jump_if_imm(JmpOp::Jne, Reg::R0, 0, exit);
        }
    }

    /// The loop variable `$var`, fresh for a loop: it may not shadow a
    /// variable in scope, as in bpftrace.
    fn loop_variable(&self, var: &str, span: ferret_syntax::Span) -> Res<()> {
        if self.scopes.iter().any(|s| s.contains_key(var)) {
            return Err(Diagnostic::error(
                span,
                format!("the loop variable ${var} shadows a variable already in scope"),
            )
            .with_label("already a variable here")
            .with_help("give the loop variable a name of its own"));
        }
        Ok(())
    }

    /// `for ($i : start..end) { body }`: `bpf_loop` runs the body
    /// `end - start` times (none when that is not positive); `start` and
    /// `end` are evaluated once, before the loop.
    pub fn for_range(
        &mut self,
        var: &str,
        span: ferret_syntax::Span,
        start: &Expr,
        end: &Expr,
        body: &Block,
    ) -> Res<()> {
        self.loop_variable(var, span)?;
        let first = self.eval(start)?;
        let last = self.eval(end)?;
        let mut types = Vec::new();
        for (v, e, which) in [(&first, start, "start"), (&last, end, "end")] {
            match &v.ty {
                Ty::Int { .. } => types.push(v.ty.clone()),
                other => {
                    return Err(Diagnostic::error(
                        e.span,
                        format!(
                            "a range's {which} must be an integer, found {}",
                            other.describe()
                        ),
                    )
                    .with_label("not an integer")
                    .with_help("write for ($i : 0..10)"));
                }
            }
        }
        let ty = types[0].unify(&types[1]).unwrap_or(Ty::I64);
        let from = self.alloc_mem(8, false);
        self.load_reg(&first, Reg::R0);
        self.e
            .push(Insn::store(Size::DW, from.reg(), from.off16(), Reg::R0));
        // bpf_loop takes a u32 count; like bpftrace, a count that is not a
        // positive 32-bit number runs nothing.
        self.load_reg(&last, Reg::R1);
        self.release(first);
        self.release(last);
        self.e.push(Insn::alu64_reg(AluOp::Sub, Reg::R1, Reg::R0));
        self.e.push(Insn::alu64_imm(AluOp::Lsh, Reg::R1, 32));
        self.e.push(Insn::alu64_imm(AluOp::Arsh, Reg::R1, 32));
        let skip = self.e.new_label();
        self.e.jump_if_imm(JmpOp::Jsle, Reg::R1, 0, skip);
        let place = self.alloc_mem(8, false);
        let flag = self.alloc_mem(8, false);
        let (cb, returns) = self.callback(Reg::R2, flag, |l| {
            // r1 is the iteration's index.
            l.e.push(Insn::load(Size::DW, Reg::R0, from.reg(), from.off16()));
            l.e.push(Insn::alu64_reg(AluOp::Add, Reg::R0, Reg::R1));
            l.e.push(Insn::store(Size::DW, place.reg(), place.off16(), Reg::R0));
            l.scopes
                .push(HashMap::from([(var.to_string(), (ty, place))]));
            l.lower_block(body);
            l.scopes.pop();
            Ok(())
        })?;
        self.call_loop(helper::LOOP, cb, flag, returns);
        self.e.bind(skip);
        Ok(())
    }

    /// `for ($kv : @map) { body }`: `bpf_for_each_map_elem` runs the body
    /// for every element, with `$kv` = (key, value). Per-CPU aggregations
    /// give their value across every CPU, as they read in a probe.
    pub fn for_map(
        &mut self,
        var: &str,
        span: ferret_syntax::Span,
        map: &Expr,
        body: &Block,
    ) -> Res<()> {
        self.loop_variable(var, span)?;
        let ExprKind::Map { name, keys } = &map.kind else {
            return Err(
                Diagnostic::error(map.span, "expected a map or a range to iterate over")
                    .with_label("not a map or range"),
            );
        };
        if !keys.is_empty() {
            return Err(Diagnostic::error(
                map.span,
                format!("a for loop walks a whole map: write @{name} without a key"),
            )
            .with_label("remove the key")
            .with_help(format!("for ($kv : @{name}) {{ ... }}")));
        }
        let id = self.map_id(name, map.span);
        let (key, kind) = (self.g.maps[id].key.clone(), self.g.maps[id].kind.clone());
        let display = self.g.maps[id].name.clone();
        let (key_ty, kind) = match (key, kind) {
            (Some(Some(key)), Some(kind)) => (key, kind),
            (Some(None), Some(_)) => {
                return Err(Diagnostic::error(
                    map.span,
                    format!(
                        "{display} has no keys (a scalar map): there is nothing to iterate over"
                    ),
                )
                .with_label("scalar map")
                .with_help("for loops walk maps with keys, like @m[pid] = count()"));
            }
            // Only while discovering: the map's type comes later in the
            // source. The body is still lowered for the types it sets.
            _ => (Ty::I64, MapKind::Plain(Ty::I64)),
        };
        let value_ty = match &kind {
            MapKind::Plain(ty) => ty.clone(),
            MapKind::Count | MapKind::Sum { .. } | MapKind::Min | MapKind::Max | MapKind::Avg => {
                super::maps::percpu_value_type(&kind)
            }
            other => {
                return Err(Diagnostic::error(
                    map.span,
                    format!(
                        "cannot iterate over {display}: it holds {}",
                        super::maps::describe_kind(Some(other))
                    ),
                )
                .with_label("not iterable")
                .with_help(
                    "for loops walk maps of plain values and of count, sum, min, max and avg; \
                     print this one with print()",
                ));
            }
        };
        let kv_ty = Ty::Tuple(vec![key_ty.clone(), value_ty.clone()]);
        let (offs, size) = tuple_layout(match &kv_ty {
            Ty::Tuple(elems) => elems,
            _ => &[],
        });
        let kv = self.alloc_mem(size, false);
        let flag = self.alloc_mem(8, false);
        let map_span = map.span;
        let (cb, returns) = self.callback(Reg::R4, flag, |l| {
            // r2 is the element's key, r3 its value (this CPU's, for
            // per-CPU maps).
            l.copy_from_ptr(kv.at(offs[0]), Reg::R2, align8(key_ty.size()));
            if let MapKind::Plain(ty) = &kind {
                l.copy_from_ptr(kv.at(offs[1]), Reg::R3, align8(ty.size()));
            } else {
                let v = l.percpu_read(id, kv.at(offs[0]), &kind, map_span)?;
                l.write_as(kv.at(offs[1]), &v, &value_ty);
                l.release(v);
            }
            l.scopes
                .push(HashMap::from([(var.to_string(), (kv_ty, kv))]));
            l.lower_block(body);
            l.scopes.pop();
            Ok(())
        })?;
        if !self.g.discovering {
            let obj = self.g.obj_map(SysMap::User(id));
            self.e.load_map(Reg::R1, obj);
        }
        self.call_loop(helper::FOR_EACH_MAP_ELEM, cb, flag, returns);
        Ok(())
    }

    /// `len(kstack)`: the frames of the probe's kernel stack, at most the
    /// stack's limit. Programs cannot read the stack map, so the stack is
    /// taken again with `bpf_get_stack`, whose result is its size.
    fn stack_depth(&mut self, v: TVal, limit: u8) -> TVal {
        self.release(v);
        let size = 8 * u32::from(limit);
        let buf = self.alloc_mem(size, false);
        self.e
            .push(Insn::load(Size::DW, Reg::R1, Reg::FP, CTX_SLOT));
        self.addr_of(buf, Reg::R2);
        self.e.push(Insn::mov64_imm(Reg::R3, size as i32));
        self.e.push(Insn::mov64_imm(Reg::R4, 0));
        self.e.push(Insn::call(helper::GET_STACK));
        // Bytes written, or a negative error: no frames.
        let done = self.e.new_label();
        self.e.jump_if_imm(JmpOp::Jsge, Reg::R0, 0, done);
        self.e.push(Insn::mov64_imm(Reg::R0, 0));
        self.e.bind(done);
        self.e.push(Insn::alu64_imm(AluOp::Rsh, Reg::R0, 3));
        self.temp_from(Reg::R0, Ty::I64)
    }

    /// `len(@map)`: the number of elements, counted by
    /// `bpf_for_each_map_elem` with a callback that does nothing.
    pub fn map_len(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "len(@map)";
        if args.len() != 1 {
            return Err(Diagnostic::error(
                expr.span,
                format!("len() takes 1 argument, {} given", args.len()),
            )
            .with_label("wrong number of arguments")
            .with_help(format!("usage: {usage}")));
        }
        let ExprKind::Map { name, keys } = &args[0].kind else {
            let v = self.eval(&args[0])?;
            if let Ty::KStack { limit } = v.ty {
                return Ok(self.stack_depth(v, limit));
            }
            return Err(Diagnostic::error(
                args[0].span,
                format!("len() takes a map or a stack, found {}", v.ty.describe()),
            )
            .with_label("not a map")
            .with_help(format!("usage: {usage} or len(kstack)")));
        };
        if !keys.is_empty() {
            return Err(
                Diagnostic::error(args[0].span, "len() takes a whole map, without a key")
                    .with_label("remove the key")
                    .with_help(format!("usage: {usage}")),
            );
        }
        let id = self.map_id(name, args[0].span);
        if self.g.maps[id].key.as_ref().is_some_and(Option::is_none) {
            return Err(Diagnostic::error(
                args[0].span,
                format!(
                    "len() expects a map with keys; {} has none",
                    self.g.maps[id].name
                ),
            )
            .with_label("scalar map")
            .with_help("len() counts the keys of maps like @m[pid] = count()"));
        }
        if self.g.discovering {
            return Ok(TVal::new(Val::Imm(0), Ty::I64));
        }
        let cb = self.callbacks.len();
        let mut body = Emitter::default();
        body.push(Insn::mov64_imm(Reg::R0, 0));
        body.push(Insn::exit());
        self.callbacks.push(Callback {
            body,
            ctx_arg: None,
        });
        self.deepest_callback = self.deepest_callback.max(self.callback_depth + 1);
        let obj = self.g.obj_map(SysMap::User(id));
        self.e.load_map(Reg::R1, obj);
        self.e.load_func(Reg::R2, cb);
        self.e.push(Insn::mov64_imm(Reg::R3, 0));
        self.e.push(Insn::mov64_imm(Reg::R4, 0));
        self.e.push(Insn::call(helper::FOR_EACH_MAP_ELEM));
        Ok(self.temp_from(Reg::R0, Ty::I64))
    }
}
