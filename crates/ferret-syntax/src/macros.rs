//! bpftrace's hygienic macros, expanded after parsing: every use of a macro
//! (`f(a, b)`, or a bare `f` for one without parameters) becomes a block
//! expression holding a copy of its body.
//!
//! As in bpftrace, a `$x` parameter binds a variable of the caller (which
//! the macro may change), `@m` binds a map, and `x` binds any expression,
//! substituted wherever `x` appears. Variables the body assigns are renamed
//! (`$$name_x`) so they cannot clash with the caller's; a map the body uses
//! must be a parameter. Macros may call other macros, but not themselves.

use std::collections::{HashMap, HashSet};

use crate::ast::{Block, Expr, ExprKind, Macro, MacroParamKind, Program, Stmt, StmtKind};
use crate::{Diagnostic, Span};

/// Expands every macro use in `program`'s probes. Returns the errors.
pub(crate) fn expand(program: &mut Program) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut registry: HashMap<String, Vec<Macro>> = HashMap::new();
    for m in &program.macros {
        let same = registry.get(&m.name).and_then(|defs| {
            defs.iter().find(|d| {
                d.params.len() == m.params.len()
                    && d.params
                        .iter()
                        .zip(&m.params)
                        .all(|(a, b)| a.kind == b.kind)
            })
        });
        if let Some(first) = same {
            diags.push(
                Diagnostic::error(m.name_span, format!("redefinition of macro '{}'", m.name))
                    .with_label("defined again here")
                    .with_help("rename one of them, or give them different parameters")
                    .with_note(format!(
                        "the first definition takes {}",
                        describe_params(first)
                    )),
            );
            continue;
        }
        registry.entry(m.name.clone()).or_default().push(m.clone());
    }
    if registry.is_empty() {
        return diags;
    }
    let mut expander = Expander {
        registry: &registry,
        stack: Vec::new(),
        diags: Vec::new(),
    };
    for probe in &mut program.probes {
        if let Some(pred) = &mut probe.predicate {
            expander.expr(pred, &mut None);
        }
        expander.block(&mut probe.body, &mut None);
    }
    diags.append(&mut expander.diags);
    diags
}

fn describe_params(m: &Macro) -> String {
    if m.params.is_empty() {
        return "no parameters".into();
    }
    let list: Vec<String> = m
        .params
        .iter()
        .map(|p| match p.kind {
            MacroParamKind::Var => format!("${}", p.name),
            MacroParamKind::Map => format!("@{}", p.name),
            MacroParamKind::Expr => p.name.clone(),
        })
        .collect();
    format!("({})", list.join(", "))
}

/// The bindings inside one expansion of a macro.
struct Scope {
    /// `$param` → the caller's variable.
    vars: HashMap<String, String>,
    /// `@param` → the caller's map.
    maps: HashMap<String, String>,
    /// `param` → the caller's expression.
    exprs: HashMap<String, Expr>,
    /// Variables the body assigns or declares, which get private names.
    renamed: HashSet<String>,
    /// `$name` or `$name_depth`: the private names' prefix (the AST
    /// leaves out the leading `$`).
    prefix: String,
    macro_name: String,
}

struct Expander<'r> {
    registry: &'r HashMap<String, Vec<Macro>>,
    /// Macros being expanded, outermost first.
    stack: Vec<String>,
    diags: Vec<Diagnostic>,
}

impl Expander<'_> {
    fn block(&mut self, block: &mut Block, scope: &mut Option<Scope>) {
        for stmt in &mut block.stmts {
            self.stmt(stmt, scope);
        }
    }

    /// Notes a variable the macro body binds, which then gets a private name.
    fn binds(&mut self, name: &mut String, span: Span, scope: &mut Option<Scope>, declared: bool) {
        let Some(s) = scope else {
            return;
        };
        if let Some(caller) = s.vars.get(name.as_str()) {
            if declared {
                self.diags.push(
                    Diagnostic::error(
                        span,
                        format!("variable declaration shadows macro argument ${name}"),
                    )
                    .with_label("declared here")
                    .with_help(format!("use another name inside macro '{}'", s.macro_name)),
                );
            } else {
                *name = caller.clone();
            }
            return;
        }
        s.renamed.insert(name.clone());
        *name = format!("{}_{name}", s.prefix);
    }

    fn stmt(&mut self, stmt: &mut Stmt, scope: &mut Option<Scope>) {
        match &mut stmt.kind {
            StmtKind::Expr(e) => self.expr(e, scope),
            StmtKind::Assign { target, value, .. } => {
                self.expr(value, scope);
                if let ExprKind::Var(name) = &mut target.kind {
                    let span = target.span;
                    self.binds(name, span, scope, false);
                } else {
                    self.expr(target, scope);
                }
            }
            StmtKind::Let {
                name,
                name_span,
                value,
                ..
            } => {
                if let Some(v) = value {
                    self.expr(v, scope);
                }
                let span = *name_span;
                self.binds(name, span, scope, true);
            }
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                self.expr(cond, scope);
                self.block(then, scope);
                if let Some(o) = otherwise {
                    self.block(o, scope);
                }
            }
            StmtKind::Unroll { count: e, body } | StmtKind::While { cond: e, body } => {
                self.expr(e, scope);
                self.block(body, scope);
            }
            StmtKind::ForMap {
                var,
                var_span,
                map,
                body,
            } => {
                self.expr(map, scope);
                let span = *var_span;
                self.binds(var, span, scope, false);
                self.block(body, scope);
            }
            StmtKind::ForRange {
                var,
                var_span,
                start,
                end,
                body,
            } => {
                self.expr(start, scope);
                self.expr(end, scope);
                let span = *var_span;
                self.binds(var, span, scope, false);
                self.block(body, scope);
            }
            StmtKind::Break | StmtKind::Continue | StmtKind::Return => {}
        }
    }

    fn exprs(&mut self, exprs: &mut [Expr], scope: &mut Option<Scope>) {
        for e in exprs {
            self.expr(e, scope);
        }
    }

    fn expr(&mut self, expr: &mut Expr, scope: &mut Option<Scope>) {
        match &mut expr.kind {
            ExprKind::Int(_)
            | ExprKind::Str(_)
            | ExprKind::Bool(_)
            | ExprKind::SizeofType(_)
            | ExprKind::Offsetof { .. } => {}
            ExprKind::Ident(name) => {
                if let Some(arg) = scope.as_ref().and_then(|s| s.exprs.get(name.as_str())) {
                    // The caller's expression, already expanded in the
                    // caller's context.
                    *expr = arg.clone();
                    return;
                }
                let name = name.clone();
                if let Some(expanded) = self.use_macro(&name, Vec::new(), expr.span, true) {
                    *expr = expanded;
                }
            }
            ExprKind::Var(name) => {
                if let Some(s) = scope {
                    if let Some(caller) = s.vars.get(name.as_str()) {
                        *name = caller.clone();
                    } else if s.renamed.contains(name.as_str()) {
                        *name = format!("{}_{name}", s.prefix);
                    }
                }
            }
            ExprKind::Map { name, keys } => {
                self.exprs(keys, scope);
                if let Some(s) = scope {
                    match s.maps.get(name.as_str()) {
                        Some(caller) => *name = caller.clone(),
                        None => self.diags.push(
                            Diagnostic::error(
                                expr.span,
                                format!("unhygienic access to map @{name}"),
                            )
                            .with_label("not a parameter of this macro")
                            .with_help(format!(
                                "maps must be passed into the macro as arguments: \
                                 add @{name} to the parameters of '{}'",
                                s.macro_name
                            )),
                        ),
                    }
                }
            }
            ExprKind::Call { name, args, .. } => {
                self.exprs(args, scope);
                let name = name.clone();
                let args = args.clone();
                if let Some(expanded) = self.use_macro(&name, args, expr.span, false) {
                    *expr = expanded;
                }
            }
            ExprKind::Unary { expr: e, .. }
            | ExprKind::Field { expr: e, .. }
            | ExprKind::TupleIndex { expr: e, .. }
            | ExprKind::Cast { expr: e, .. } => self.expr(e, scope),
            ExprKind::IncDec { target, .. } => self.expr(target, scope),
            ExprKind::Binary { lhs, rhs, .. } => {
                self.expr(lhs, scope);
                self.expr(rhs, scope);
            }
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => {
                self.expr(cond, scope);
                self.expr(then, scope);
                self.expr(otherwise, scope);
            }
            ExprKind::Index { expr: e, index } => {
                self.expr(e, scope);
                self.expr(index, scope);
            }
            ExprKind::Tuple(items) => self.exprs(items, scope),
            ExprKind::Record(fields) => {
                for (_, e) in fields {
                    self.expr(e, scope);
                }
            }
            ExprKind::Block { stmts, value } => {
                for s in stmts {
                    self.stmt(s, scope);
                }
                if let Some(v) = value {
                    self.expr(v, scope);
                }
            }
        }
    }

    /// The expansion of `name(args)` (or of a bare `name`), if `name` is a
    /// macro; `None` leaves the use as it is (a builtin or function).
    fn use_macro(&mut self, name: &str, args: Vec<Expr>, span: Span, bare: bool) -> Option<Expr> {
        let defs = self.registry.get(name)?;
        let fits = |m: &&Macro| {
            m.params.len() == args.len()
                && m.params.iter().zip(&args).all(|(p, a)| match p.kind {
                    MacroParamKind::Var => matches!(a.kind, ExprKind::Var(_)),
                    MacroParamKind::Map => {
                        matches!(&a.kind, ExprKind::Map { keys, .. } if keys.is_empty())
                    }
                    MacroParamKind::Expr => true,
                })
        };
        let Some(m) = defs.iter().find(fits) else {
            self.mismatch(defs, name, &args, span, bare);
            return None;
        };
        if let Some(at) = self.stack.iter().position(|n| n == name) {
            let chain: Vec<&str> = self.stack[at..]
                .iter()
                .map(String::as_str)
                .chain([name])
                .collect();
            self.diags.push(
                Diagnostic::error(span, format!("recursive macro call: {}", chain.join(" > ")))
                    .with_label("calls a macro that is being expanded")
                    .with_help("macros cannot call themselves, directly or through others"),
            );
            return None;
        }
        self.stack.push(name.to_owned());
        let depth = self.stack.len();
        let mut scope = Scope {
            vars: HashMap::new(),
            maps: HashMap::new(),
            exprs: HashMap::new(),
            renamed: HashSet::new(),
            prefix: if depth == 1 {
                format!("${name}")
            } else {
                format!("${name}_{depth}")
            },
            macro_name: name.to_owned(),
        };
        for (p, a) in m.params.iter().zip(args) {
            match (p.kind, a.kind) {
                (MacroParamKind::Var, ExprKind::Var(v)) => {
                    scope.vars.insert(p.name.clone(), v);
                }
                (MacroParamKind::Map, ExprKind::Map { name: caller, .. }) => {
                    scope.maps.insert(p.name.clone(), caller);
                }
                (_, kind) => {
                    let arg = Expr { kind, span: a.span };
                    // A variable or map passed for an expression is read,
                    // never assigned: wrap it as a value.
                    let arg = if matches!(arg.kind, ExprKind::Var(_) | ExprKind::Map { .. }) {
                        Expr {
                            span: arg.span,
                            kind: ExprKind::Block {
                                stmts: Vec::new(),
                                value: Some(Box::new(arg)),
                            },
                        }
                    } else {
                        arg
                    };
                    scope.exprs.insert(p.name.clone(), arg);
                }
            }
        }
        let mut body = m.body.clone();
        body.span = span;
        self.expr(&mut body, &mut Some(scope));
        self.stack.pop();
        Some(body)
    }

    fn mismatch(&mut self, defs: &[Macro], name: &str, args: &[Expr], span: Span, bare: bool) {
        // The definition closest to the call: fewest missing or extra
        // arguments first, then fewest arguments of the wrong kind.
        let badness = |m: &Macro| {
            let kinds = m
                .params
                .iter()
                .zip(args)
                .filter(|(p, a)| match p.kind {
                    MacroParamKind::Var => !matches!(a.kind, ExprKind::Var(_)),
                    MacroParamKind::Map => !matches!(a.kind, ExprKind::Map { .. }),
                    MacroParamKind::Expr => false,
                })
                .count();
            (m.params.len().abs_diff(args.len()), kinds)
        };
        let Some(m) = defs.iter().min_by_key(|m| badness(m)) else {
            return;
        };
        let shown = if bare {
            name.to_owned()
        } else {
            format!("{name}()")
        };
        if m.params.len() != args.len() {
            self.diags.push(
                Diagnostic::error(
                    span,
                    format!(
                        "macro {name}() takes {} argument{}, {} given",
                        m.params.len(),
                        if m.params.len() == 1 { "" } else { "s" },
                        args.len()
                    ),
                )
                .with_label(format!("wrong number of arguments to {shown}"))
                .with_help(format!("{name} is defined with {}", describe_params(m))),
            );
            return;
        }
        for (p, a) in m.params.iter().zip(args) {
            let got = match a.kind {
                ExprKind::Var(_) => "a variable",
                ExprKind::Map { ref keys, .. } if keys.is_empty() => "a map",
                _ => "an expression",
            };
            let want = match p.kind {
                MacroParamKind::Var if got != "a variable" => format!("a variable for ${}", p.name),
                MacroParamKind::Map if got != "a map" => format!("a map for @{}", p.name),
                _ => continue,
            };
            self.diags.push(
                Diagnostic::error(
                    a.span,
                    format!("macro {name}() expects {want} but got {got}"),
                )
                .with_label("wrong kind of argument")
                .with_help(format!("{name} is defined with {}", describe_params(m))),
            );
        }
    }
}
