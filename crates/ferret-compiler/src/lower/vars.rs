//! `let` declarations: `let $x = v;`, `let $x: type [= v];`, and `let $x;`
//! whose type comes from its assignments, as in bpftrace (tcpdrop.bt
//! declares `let $daddr;` and assigns it in both branches of an `if`).
//!
//! An untyped declaration learns its type while the program's types are
//! discovered (every assignment's type, unified, is kept by the
//! declaration's span in [`super::Globals::let_types`]); once known, the
//! declaration allocates the variable where it stands, zeroed (bpftrace
//! gives unassigned variables 0), so every branch after it shares it.

use ferret_syntax::ast::{Expr, Stmt, TypeName};
use ferret_syntax::{Diagnostic, Span};

use super::expr::Res;
use super::{Lowerer, Place, TVal};
use crate::types::{Ty, align8};

impl Lowerer<'_, '_> {
    pub fn let_stmt(
        &mut self,
        name: &str,
        name_span: Span,
        ty: Option<&TypeName>,
        value: Option<&Expr>,
        stmt: &Stmt,
    ) -> Res<()> {
        // A block may declare its own variable of an outer name; the same
        // block may not declare one twice.
        if self.scopes.last().is_some_and(|s| s.contains_key(name)) {
            return Err(
                Diagnostic::error(name_span, format!("${name} is already declared here"))
                    .with_label("declared before")
                    .with_help(format!(
                        "assign it without 'let' (${name} = ...), or choose another name"
                    )),
            );
        }
        let declared = ty.map(|t| self.declared_type(t)).transpose()?;
        let v = match value {
            Some(e) => Some(self.eval(e)?),
            None => None,
        };
        let (ty, untyped) = match (declared, &v) {
            (Some(t), _) => (t, false),
            (None, Some(v)) => (v.ty.clone(), false),
            // While discovering, each run learns the type afresh from the
            // run's assignments, the first in source order first; the
            // last run's types are settled.
            (None, None) if self.g.discovering => (Ty::None, true),
            (None, None) => (
                self.g
                    .let_types
                    .get(&name_span)
                    .cloned()
                    .unwrap_or(Ty::None),
                true,
            ),
        };
        if let Some(v) = &v
            && v.ty == Ty::None
        {
            return Err(Diagnostic::error(stmt.span, "this expression has no value")
                .with_label("cannot be assigned"));
        }
        let place = self.alloc_mem(ty.size(), v.is_none());
        if let Some(v) = v {
            self.check_fits(&v.ty, &ty, stmt)?;
            self.write_as(place, &v, &ty);
            self.release(v);
        }
        if untyped {
            self.untyped_lets.insert(place, name_span);
        }
        if let Some(scope) = self.scopes.last_mut() {
            scope.insert(name.to_string(), (ty, place));
        }
        Ok(())
    }

    /// The type written in `let $x: type`.
    fn declared_type(&self, t: &TypeName) -> Res<Ty> {
        let unsupported = || {
            Diagnostic::error(t.span, format!("unsupported variable type '{}'", t.name))
                .with_label("not supported")
                .with_help("declare an integer type (int8 .. uint64), bool, string or string[N]")
        };
        if t.pointer_depth > 0 {
            return Err(unsupported());
        }
        let scalar = match t.name.as_str() {
            "string" => {
                let cap = match t.array_len {
                    Some(n) => align8(u32::try_from(n).unwrap_or(u32::MAX).clamp(1, 16 * 1024)),
                    None => self.g.opts.max_strlen,
                };
                return Ok(Ty::Str { cap });
            }
            "bool" => Ty::Bool,
            name => super::expr::int_type(name).ok_or_else(unsupported)?,
        };
        Ok(match t.array_len {
            None => scalar,
            Some(len) => Ty::Array {
                elem: Box::new(scalar),
                len: u32::try_from(len).map_err(|_| unsupported())?,
            },
        })
    }

    /// An assignment to a variable declared by `let $x;`: while
    /// discovering, its type grows to hold every value assigned.
    pub(super) fn assign_untyped(
        &mut self,
        name: &str,
        ty: Ty,
        place: Place,
        v: &TVal,
        span: Span,
    ) -> Res<()> {
        let fits =
            |ty: &Ty| ty.unify(&v.ty).as_ref() == Some(ty) || (ty.is_scalar() && v.ty.is_scalar());
        if !self.g.discovering || fits(&ty) {
            if !fits(&ty) {
                return Err(Diagnostic::error(
                    span,
                    format!(
                        "type mismatch for ${name}: it holds {}, not {}",
                        ty.describe(),
                        v.ty.describe()
                    ),
                )
                .with_label("mismatched types"));
            }
            self.write_as(place, v, &ty);
            return Ok(());
        }
        let incoming = match &v.ty {
            // Strings get room for the longest string they may hold.
            Ty::Str { cap } => Ty::Str {
                cap: (*cap).max(self.g.opts.max_strlen.min(64)),
            },
            other => other.clone(),
        };
        // A value that does not fit the type learnt so far is a mismatch,
        // which the final run reports at this assignment.
        let learnt = match &ty {
            Ty::None => incoming,
            known => match known.unify(&incoming) {
                Some(u) => u,
                None => return Ok(()),
            },
        };
        let decl = self.untyped_lets[&place];
        self.g.let_types.insert(decl, learnt.clone());
        // Until the types settle the variable lives where it was assigned.
        let fresh = self.alloc_mem(learnt.size(), true);
        self.untyped_lets.insert(fresh, decl);
        for scope in self.scopes.iter_mut().rev() {
            if let Some(entry) = scope.get_mut(name) {
                *entry = (learnt.clone(), fresh);
                break;
            }
        }
        self.write_as(fresh, v, &learnt);
        Ok(())
    }
}
