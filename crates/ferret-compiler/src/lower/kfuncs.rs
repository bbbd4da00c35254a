//! Functions and operators over C types: the task shorthands of
//! bpftrace's standard library (`ppid`, `pcomm`, `leader_tid`,
//! `leader_comm`, each also taking a `struct task_struct *`),
//! `socket_cookie`, and `&$v`.

use ferret_bpf::insn::helper;
use ferret_bpf::{Insn, Reg, Size};
use ferret_syntax::Diagnostic;
use ferret_syntax::ast::{Expr, ExprKind};

use super::expr::Res;
use super::funcs::arity;
use super::{CTX_SLOT, Lowerer, SysMap, TVal, Val};
use crate::program::{Attach, MapKind};
use crate::types::Ty;

/// The task shorthands and the member walk each stands for, as bpftrace's
/// standard library defines them (`ppid` is the parent *thread*'s id).
const TASK_FIELDS: &[(&str, [&str; 2])] = &[
    ("ppid", ["real_parent", "pid"]),
    ("pcomm", ["real_parent", "comm"]),
    ("leader_tid", ["group_leader", "pid"]),
    ("leader_comm", ["group_leader", "comm"]),
];

impl Lowerer<'_, '_> {
    /// Lowers a call (or bare use, with no `args`) of one of this module's
    /// functions; `None` when `name` is not one of them.
    pub fn kernel_type_call(
        &mut self,
        name: &str,
        args: &[Expr],
        expr: &Expr,
    ) -> Option<Res<TVal>> {
        if name == "socket_cookie" {
            return Some(self.socket_cookie(args, expr));
        }
        let (_, walk) = TASK_FIELDS.iter().find(|(n, _)| *n == name)?;
        Some(self.task_field(name, walk, args, expr))
    }

    /// `socket_cookie(sk)`: `bpf_get_socket_cookie`, which takes a socket
    /// pointer the verifier knows the type of. Of the probes ferret has,
    /// only raw tracepoints (BTF-typed `tp_btf` programs) get one, as their
    /// arguments: the pointer is passed on straight from the context.
    fn socket_cookie(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "socket_cookie(args.sk) with a struct sock * argument";
        arity("socket_cookie", args, expr, 1..=1, usage)?;
        let tp_btf = matches!(
            self.probe.attach,
            Attach::RawTracepoint {
                btf_id: Some(_),
                ..
            }
        );
        if !tp_btf {
            return Err(Diagnostic::error(
                expr.span,
                format!(
                    "socket_cookie() cannot be used in {} probes",
                    self.probe_kind()
                ),
            )
            .with_label("bpf_get_socket_cookie is not available here")
            .with_help(
                "the kernel gives this helper only to BTF-typed programs: use a rawtracepoint \
                 probe with a socket argument, e.g. rawtracepoint:inet_sock_set_state { \
                 socket_cookie(args.sk) }",
            ));
        }
        let ty = self.dry_eval(&args[0])?.ty;
        if !matches!(&ty, Ty::Ptr(p) if &*p.name == "struct sock *") {
            return Err(Diagnostic::error(
                args[0].span,
                format!(
                    "socket_cookie() only supports 'struct sock *' as the argument ({} provided)",
                    ty.describe()
                ),
            )
            .with_label("not a struct sock *"));
        }
        let field = match &args[0].kind {
            ExprKind::Field {
                expr: base, field, ..
            } if matches!(&base.kind, ExprKind::Ident(n) if n == "args") => Some(field.as_str()),
            _ => None,
        };
        let index = field.and_then(|f| {
            let rt = self.raw_tracepoint_btf()?;
            rt.args.iter().position(|a| a.name == f)
        });
        let Some(index) = index else {
            return Err(Diagnostic::error(
                args[0].span,
                "socket_cookie() takes the socket as the probe's argument: socket_cookie(args.NAME)",
            )
            .with_label("not a probe argument")
            .with_help(
                "the verifier must know the pointer is a socket; a pointer copied into a \
                 variable or read from memory is an integer to it",
            ));
        };
        self.e
            .push(Insn::load(Size::DW, Reg::R1, Reg::FP, CTX_SLOT));
        self.e
            .push(Insn::load(Size::DW, Reg::R1, Reg::R1, (index * 8) as i16));
        self.e.push(Insn::call(helper::GET_SOCKET_COOKIE));
        Ok(self.temp_from(Reg::R0, Ty::U64))
    }

    /// `ppid`, `ppid()`, `ppid(task)`: a member walk from `curtask` or the
    /// task given.
    fn task_field(
        &mut self,
        name: &str,
        walk: &[&str; 2],
        args: &[Expr],
        expr: &Expr,
    ) -> Res<TVal> {
        arity(
            name,
            args,
            expr,
            0..=1,
            &format!("{name}, {name}() or {name}(task)"),
        )?;
        let mut at = match args.first() {
            Some(task) => {
                let ty = self.dry_eval(task)?.ty;
                let is_task = matches!(&ty, Ty::Ptr(p) if &*p.name == "struct task_struct *");
                if !is_task {
                    return Err(Diagnostic::error(
                        task.span,
                        format!("{name}() takes a struct task_struct *, found {}", ty.describe()),
                    )
                    .with_label("not a task")
                    .with_help(format!(
                        "cast it: {name}((struct task_struct *)addr), or call {name}() for the current task"
                    )));
                }
                task.clone()
            }
            None => Expr {
                kind: ExprKind::Ident("curtask".into()),
                span: expr.span,
            },
        };
        for field in walk {
            at = Expr {
                kind: ExprKind::Field {
                    expr: Box::new(at),
                    field: (*field).to_string(),
                    field_span: expr.span,
                    arrow: true,
                },
                span: expr.span,
            };
        }
        self.eval(&at)
    }
}

impl Lowerer<'_, '_> {
    /// `&$v`: the address of a variable's memory, a pointer to its type (as
    /// in bpftrace, a kernel address: reads through it use
    /// `probe_read_kernel`). `&@m` is the map itself, as in bpftrace.
    pub fn address_of(&mut self, inner: &Expr, expr: &Expr) -> Res<TVal> {
        match &inner.kind {
            ExprKind::Var(name) => {
                let found = self
                    .scopes
                    .iter()
                    .rev()
                    .find_map(|s| s.get(name.as_str()).cloned());
                let Some((ty, place)) = found else {
                    // The usual error for an unknown variable.
                    return self.eval(inner);
                };
                let target = self.g.ctypes.of_value(&ty);
                let ty = self.pointer_ty(target);
                self.addr_of(place, Reg::R0);
                Ok(self.temp_from(Reg::R0, ty))
            }
            ExprKind::Map { name, keys } if keys.is_empty() => {
                let id = self.map_id(name, inner.span);
                let value = match self.g.maps[id].kind.clone() {
                    Some(MapKind::Plain(ty)) => ty,
                    _ => Ty::U64,
                };
                let target = self.g.ctypes.of_value(&value);
                let ty = self.pointer_ty(target);
                if self.g.discovering {
                    return Ok(TVal::new(Val::Imm(0), ty));
                }
                let obj = self.g.obj_map(SysMap::User(id));
                self.e.load_map(Reg::R0, obj);
                Ok(self.temp_from(Reg::R0, ty))
            }
            _ => Err(
                Diagnostic::error(expr.span, "'&' takes the address of a variable or a map")
                    .with_label("not a variable or map")
                    .with_help("assign the value to a variable first: $v = ...; &$v"),
            ),
        }
    }

    /// The type of a pointer to C type `target`, in kernel memory.
    fn pointer_ty(&mut self, target: crate::ctypes::CId) -> Ty {
        let ptr = self.g.ctypes.pointer_to(target);
        self.g.ctypes.value_ty(ptr, false).unwrap_or(Ty::U64)
    }
}
