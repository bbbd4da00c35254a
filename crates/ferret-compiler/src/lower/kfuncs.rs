//! Functions and operators over C types: the task shorthands of
//! bpftrace's standard library (`ppid`, `pcomm`, `leader_tid`,
//! `leader_comm`, each also taking a `struct task_struct *`),
//! `socket_cookie`, `percpu_kaddr`, and `&$v`.

use ferret_bpf::insn::helper;
use ferret_bpf::{Insn, JmpOp, Reg, Size};
use ferret_btf::NameKind;
use ferret_syntax::Diagnostic;
use ferret_syntax::ast::{Expr, ExprKind};

use super::expr::Res;
use super::funcs::{arity, need_literal};
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
        match name {
            "socket_cookie" => return Some(self.socket_cookie(args, expr)),
            "percpu_kaddr" => return Some(self.percpu_kaddr(args, expr)),
            _ => {}
        }
        let (_, walk) = TASK_FIELDS.iter().find(|(n, _)| *n == name)?;
        Some(self.task_field(name, walk, args, expr))
    }

    /// `percpu_kaddr("sym"[, cpu])`: the address of a per-CPU kernel
    /// variable on this CPU (or `cpu`, 0 past the last CPU), from
    /// `bpf_this_cpu_ptr`/`bpf_per_cpu_ptr` on the variable's BTF id. As in
    /// bpftrace it is a `uint64` in kernel memory: `*` reads 8 bytes, casts
    /// give it a type.
    fn percpu_kaddr(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "percpu_kaddr(\"symbol\") or percpu_kaddr(\"symbol\", cpu)";
        arity("percpu_kaddr", args, expr, 1..=2, usage)?;
        let name = String::from_utf8_lossy(need_literal(&args[0], "percpu_kaddr", usage)?);
        let btf = self.g.ctypes.btf().map_err(|why| {
            Diagnostic::error(
                args[0].span,
                format!("percpu_kaddr() needs the kernel's BTF: {why}"),
            )
            .with_label("no kernel type information")
        })?;
        let Some(var) = btf.find(NameKind::Var, &name) else {
            let mut d = Diagnostic::error(
                args[0].span,
                format!("could not resolve variable \"{name}\" from BTF"),
            )
            .with_label("no per-CPU variable of this name");
            let names = btf.names(NameKind::Var);
            d = match ferret_syntax::diag::closest(&name, names.iter().copied()) {
                Some(best) => d.with_help(format!("did you mean \"{best}\"?")),
                None => d.with_help("the kernel's BTF describes its per-CPU variables only"),
            };
            return Err(d);
        };
        let cpu = match args.get(1) {
            Some(e) => Some(self.eval_int(e)?),
            None => None,
        };
        if let Some(c) = cpu {
            self.load_reg(&c, Reg::R2);
            self.release(c);
            self.narrow(Reg::R2, 4, false);
            self.e.push2(Insn::ld_btf_id(Reg::R1, var));
            self.e.push(Insn::call(helper::PER_CPU_PTR));
        } else {
            self.e.push2(Insn::ld_btf_id(Reg::R1, var));
            self.e.push(Insn::call(helper::THIS_CPU_PTR));
        }
        // The verifier types the address as a pointer into the variable,
        // which refuses the integer work the language allows on it; copied
        // through memory with probe_read it is a plain integer.
        let null = self.e.new_label();
        self.e.jump_if_imm(JmpOp::Jeq, Reg::R0, 0, null);
        let (spill, copy) = (self.alloc_mem(8, false), self.alloc_mem(8, false));
        self.e
            .push(Insn::store(Size::DW, spill.reg(), spill.off16(), Reg::R0));
        self.addr_of(copy, Reg::R1);
        self.e.push(Insn::mov64_imm(Reg::R2, 8));
        self.addr_of(spill, Reg::R3);
        self.e.push(Insn::call(helper::PROBE_READ_KERNEL));
        self.e
            .push(Insn::load(Size::DW, Reg::R0, copy.reg(), copy.off16()));
        self.e.bind(null);
        let mut v = self.temp_from(Reg::R0, Ty::U64);
        v.user = Some(false);
        Ok(v)
    }

    /// `socket_cookie(sk)`: `bpf_get_socket_cookie`, which takes a socket
    /// pointer the verifier knows the type of. Of the probes ferret has,
    /// only BTF-typed programs (raw tracepoints as `tp_btf`, fentry/fexit)
    /// get one, as their arguments: the pointer is passed on straight from
    /// the context.
    fn socket_cookie(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "socket_cookie(args.sk) with a struct sock * argument";
        arity("socket_cookie", args, expr, 1..=1, usage)?;
        let tp_btf = matches!(
            self.probe.attach,
            Attach::RawTracepoint {
                btf_id: Some(_),
                ..
            } | Attach::Fentry { .. }
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
        let slot = field.and_then(|f| {
            let args = self.typed_args().ok()??;
            let i = args.params.iter().position(|a| a.name == f)?;
            Some(self.arg_slot(&args, i))
        });
        let Some(index) = slot else {
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
