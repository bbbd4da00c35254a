//! Statements: assignments, variables and their scopes, control flow.

use std::collections::HashMap;

use ferret_bpf::{JmpOp, Reg};
use ferret_syntax::Diagnostic;
use ferret_syntax::ast::{Block, Expr, ExprKind, Stmt, StmtKind};

use super::expr::Res;
use super::{Lowerer, TVal};
use crate::types::Ty;

/// `unroll(N)` bounds, as bpftrace enforces them.
const MAX_UNROLL: i64 = 100;

impl Lowerer<'_, '_> {
    pub fn lower_block(&mut self, block: &Block) {
        self.scopes.push(HashMap::new());
        for stmt in &block.stmts {
            if let Err(d) = self.lower_stmt(stmt) {
                self.diags.push(d);
            }
        }
        self.scopes.pop();
    }

    /// A block expression: its statements in a scope of their own, then
    /// its value. Memory is never reused within a program, so a value held
    /// in a block's variable stays valid after the scope ends.
    pub fn block_value(&mut self, stmts: &[Stmt], value: Option<&Expr>) -> Res<TVal> {
        self.scopes.push(HashMap::new());
        for stmt in stmts {
            if let Err(d) = self.lower_stmt(stmt) {
                self.diags.push(d);
            }
        }
        let v = match value {
            Some(e) => self.eval(e),
            None => Ok(TVal::new(super::Val::Imm(0), Ty::None)),
        };
        self.scopes.pop();
        v
    }

    fn lower_stmt(&mut self, stmt: &Stmt) -> Res<()> {
        match &stmt.kind {
            StmtKind::Expr(e) => {
                let v = self.eval(e)?;
                self.release(v);
            }
            StmtKind::Assign { target, op, value } => {
                if op.is_none()
                    && let ExprKind::Map { name, keys } = &target.kind
                    && let ExprKind::Call { name: f, args, .. } = &value.kind
                    && super::maps::is_aggregation(f)
                {
                    return self.aggregate(name, keys, f, args, target, value);
                }
                let v = match op {
                    None => self.eval(value)?,
                    Some(op) => {
                        let combined = Expr {
                            kind: ExprKind::Binary {
                                op: *op,
                                lhs: Box::new(target.clone()),
                                rhs: Box::new(value.clone()),
                            },
                            span: stmt.span,
                        };
                        self.eval(&combined)?
                    }
                };
                if v.ty == Ty::None {
                    return Err(
                        Diagnostic::error(value.span, "this expression has no value")
                            .with_label("cannot be assigned"),
                    );
                }
                self.assign_to(target, &v)?;
                self.release(v);
            }
            StmtKind::Let {
                name,
                name_span,
                ty,
                value,
            } => self.let_stmt(name, *name_span, ty.as_ref(), value.as_ref(), stmt)?,
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                let c = self.eval_int(cond)?;
                self.load_reg(&c, Reg::R0);
                self.release(c);
                let else_l = self.e.new_label();
                let done = self.e.new_label();
                self.e.jump_if_imm(JmpOp::Jeq, Reg::R0, 0, else_l);
                self.lower_block(then);
                if let Some(other) = otherwise {
                    self.e.jump(done);
                    self.e.bind(else_l);
                    self.lower_block(other);
                } else {
                    self.e.bind(else_l);
                }
                self.e.bind(done);
            }
            StmtKind::Return => {
                let exit = self.exit_label;
                self.e.jump(exit);
            }
            StmtKind::Unroll { count, body } => {
                let n = match count.kind {
                    ExprKind::Int(n) => n as i64,
                    _ => -1,
                };
                if !(1..=MAX_UNROLL).contains(&n) {
                    return Err(Diagnostic::error(
                        count.span,
                        format!("unroll needs a literal count between 1 and {MAX_UNROLL}"),
                    )
                    .with_label("invalid count"));
                }
                for _ in 0..n {
                    self.lower_block(body);
                }
            }
            StmtKind::While { cond, body } => {
                let top = self.e.new_label();
                let done = self.e.new_label();
                self.e.bind(top);
                let c = self.eval_int(cond)?;
                self.load_reg(&c, Reg::R0);
                self.release(c);
                self.e.jump_if_imm(JmpOp::Jeq, Reg::R0, 0, done);
                self.loops.push((top, done));
                self.lower_block(body);
                self.loops.pop();
                self.e.jump(top);
                self.e.bind(done);
                let header = ferret_syntax::Span {
                    start: stmt.span.start,
                    end: cond.span.end,
                };
                self.e.track(top, done, header);
            }
            StmtKind::Break | StmtKind::Continue => {
                let Some(&(top, done)) = self.loops.last() else {
                    let word = if matches!(stmt.kind, StmtKind::Break) {
                        "break"
                    } else {
                        "continue"
                    };
                    return Err(Diagnostic::error(
                        stmt.span,
                        format!("'{word}' outside of a loop"),
                    )
                    .with_label("not in a loop")
                    .with_help("to leave the probe early use 'return'"));
                };
                let to = if matches!(stmt.kind, StmtKind::Break) {
                    done
                } else {
                    top
                };
                self.e.jump(to);
            }
            StmtKind::ForMap {
                var,
                var_span,
                map,
                body,
            } => self.for_map(var, *var_span, map, body)?,
            StmtKind::ForRange {
                var,
                var_span,
                start,
                end,
                body,
            } => self.for_range(var, *var_span, start, end, body)?,
        }
        Ok(())
    }

    pub(super) fn check_fits(&self, have: &Ty, want: &Ty, stmt: &Stmt) -> Res<()> {
        if have.unify(want).is_some() || (have.is_scalar() && want.is_scalar()) {
            Ok(())
        } else {
            Err(Diagnostic::error(
                stmt.span,
                format!(
                    "type mismatch: cannot store {} in {}",
                    have.describe(),
                    want.describe()
                ),
            )
            .with_label("mismatched types"))
        }
    }

    /// Stores `v` into a variable or map.
    pub fn assign_to(&mut self, target: &Expr, v: &TVal) -> Res<()> {
        match &target.kind {
            ExprKind::Var(name) => {
                if name.parse::<u32>().is_ok() || name == "#" {
                    return Err(Diagnostic::error(
                        target.span,
                        "positional parameters cannot be assigned",
                    )
                    .with_label("read-only")
                    .with_help(format!(
                        "copy it into a variable and change that: $v = ${name};"
                    )));
                }
                let found = self
                    .scopes
                    .iter()
                    .rev()
                    .find_map(|s| s.get(name.as_str()).cloned());
                let (ty, place) = match found {
                    Some((ty, place)) if self.untyped_lets.contains_key(&place) => {
                        return self.assign_untyped(name, ty, place, v, target.span);
                    }
                    Some((ty, place)) => {
                        let unified = ty.unify(&v.ty);
                        if unified.is_none() && !(ty.is_scalar() && v.ty.is_scalar()) {
                            return Err(Diagnostic::error(
                                target.span,
                                format!(
                                    "type mismatch for ${name}: it holds {}, not {}",
                                    ty.describe(),
                                    v.ty.describe()
                                ),
                            )
                            .with_label("mismatched types"));
                        }
                        (ty, place)
                    }
                    None => {
                        // Strings get room for the longest string they may hold.
                        let ty = match &v.ty {
                            Ty::Str { cap } => Ty::Str {
                                cap: (*cap).max(self.g.opts.max_strlen.min(64)),
                            },
                            other => other.clone(),
                        };
                        let place = self.alloc_mem(ty.size(), false);
                        if let Some(scope) = self.scopes.last_mut() {
                            scope.insert(name.clone(), (ty.clone(), place));
                        }
                        (ty, place)
                    }
                };
                self.write_as(place, v, &ty);
                Ok(())
            }
            ExprKind::Map { name, keys } => self.map_write(name, keys, v, target),
            _ => Err(
                Diagnostic::error(target.span, "cannot assign to this expression")
                    .with_label("not a variable or map"),
            ),
        }
    }
}
