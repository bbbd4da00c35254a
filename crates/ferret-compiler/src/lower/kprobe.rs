//! What kernel function probes add to the language: for kprobes,
//! `arg0..arg5` from the registers the probed function was called with,
//! `retval` in a kretprobe, and `func`; for fentry/fexit, `retval` in fexit
//! and `func`. Typed `args` are in `btf_args.rs`.
//!
//! A kprobe program gets the kernel's registers (`struct pt_regs`) at the
//! probed instruction as its context, read as the user-space probes read
//! theirs (x86-64's calling convention).

use ferret_bpf::insn::helper;
use ferret_bpf::{Insn, Reg, Size};
use ferret_syntax::ast::Expr;
use ferret_syntax::{Diagnostic, Span};

use super::expr::Res;
use super::user::ARG_REGS;
use super::{CTX_SLOT, Lowerer, TVal, Val};
use crate::program::Attach;
use crate::types::Ty;

impl Lowerer<'_, '_> {
    /// The builtins fentry/fexit provide; None for other probes and names.
    fn fentry_builtin(&mut self, name: &str, expr: &Expr) -> Option<Res<TVal>> {
        let Attach::Fentry { exit, function, .. } = &self.probe.attach else {
            return None;
        };
        let exit = *exit;
        Some(match name {
            "retval" if exit => self.fexit_retval(expr.span),
            "retval" => Err(Diagnostic::error(
                expr.span,
                "'retval' is only available in fexit probes",
            )
            .with_label("not available in fentry")
            .with_help(format!("read the return value in fexit:{function}"))),
            // The trampoline knows the function's address.
            "func" => {
                self.e
                    .push(Insn::load(Size::DW, Reg::R1, Reg::FP, CTX_SLOT));
                self.e.push(Insn::call(helper::GET_FUNC_IP));
                Ok(self.temp_from(Reg::R0, Ty::Ksym))
            }
            _ => return None,
        })
    }

    /// The builtins kernel function probes provide; None for other probes
    /// and names.
    pub(super) fn kprobe_builtin(&mut self, name: &str, expr: &Expr) -> Option<Res<TVal>> {
        if matches!(self.probe.attach, Attach::Fentry { .. }) {
            return self.fentry_builtin(name, expr);
        }
        let Attach::Kprobe {
            functions,
            offset,
            retprobe,
            ..
        } = &self.probe.attach
        else {
            return None;
        };
        let (offset, retprobe) = (*offset, *retprobe);
        let function = functions.first().cloned().unwrap_or_default();
        let arg = name
            .strip_prefix("arg")
            .and_then(|n| n.parse::<usize>().ok());
        Some(match (name, arg) {
            ("retval", _) if retprobe => Ok(self.read_register("rax", 8, false)),
            ("retval", _) => Err(Diagnostic::error(
                expr.span,
                "'retval' is only available in kretprobe probes",
            )
            .with_label("not available in a kprobe")
            .with_help(format!(
                "read the return value in kretprobe:{function}"
            ))),
            ("func", _) => self.kprobe_func(&function, offset, expr.span),
            (_, Some(_)) if retprobe => Err(Diagnostic::error(
                expr.span,
                format!("'{name}' is not available in kretprobe probes"),
            )
            .with_label("arguments are gone when the function returns")
            .with_help(
                "save it in a kprobe on the same function: \
                 @arg[tid] = arg0, then read @arg[tid] in the kretprobe",
            )),
            (_, Some(n)) => match ARG_REGS.get(n) {
                Some(reg) => Ok(self.read_register(reg, 8, false)),
                None => Err(Diagnostic::error(
                    expr.span,
                    format!(
                        "'{name}' is not available: x86-64 passes arguments in registers only up to arg5"
                    ),
                )
                .with_label("not in a register")),
            },
            _ => return None,
        })
    }

    /// `func`: the probed function's address, printed as its name. At a
    /// function's start `bpf_get_func_ip` tells it (also for a program on
    /// many functions); inside a function (an offset) the kernel does not
    /// say, so the symbol table does.
    fn kprobe_func(&mut self, function: &str, offset: u64, span: Span) -> Res<TVal> {
        if offset == 0 {
            self.e
                .push(Insn::load(Size::DW, Reg::R1, Reg::FP, CTX_SLOT));
            self.e.push(Insn::call(helper::GET_FUNC_IP));
            return Ok(self.temp_from(Reg::R0, Ty::Ksym));
        }
        match self.g.kernel_symbol(function) {
            Some(addr) => Ok(TVal::new(Val::Imm(addr as i64), Ty::Ksym)),
            None => Err(Diagnostic::error(
                span,
                format!(
                    "'func' needs the address of {function}, which /proc/kallsyms does not give"
                ),
            )
            .with_label("unknown address")
            .with_help("run as root, or use 'probe', which names the function too")),
        }
    }
}
