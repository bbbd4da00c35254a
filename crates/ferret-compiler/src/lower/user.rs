//! What user-space probes add to the language: `arg0..argN` and `retval`
//! from the registers (`uprobe`, `uretprobe`) or from a USDT note's
//! argument specs, `func`, and the user-space values any probe may take:
//! `ustack`, `usym(addr)`, `uaddr("sym")`.
//!
//! A user probe's program gets the user registers (`struct pt_regs`) as its
//! context. The offsets below are x86-64's.

use ferret_bpf::insn::helper;
use ferret_bpf::{AluOp, Insn, Reg, Size};
use ferret_syntax::ast::{Expr, ExprKind};
use ferret_syntax::{Diagnostic, Span};
use ferret_usym::{ArgLocation, UsdtArg};

use super::expr::Res;
use super::{CTX_SLOT, Lowerer, SysMap, TVal, Val};
use crate::config::StackMode;
use crate::program::Attach;
use crate::types::Ty;

/// `bpf_get_stackid` flag: the user stack, not the kernel's.
const BPF_F_USER_STACK: i32 = 1 << 8;

/// Where a register is saved in x86-64's `struct pt_regs`.
pub(super) fn pt_regs_offset(reg: &str) -> Option<i16> {
    Some(match reg {
        "r15" => 0,
        "r14" => 8,
        "r13" => 16,
        "r12" => 24,
        "rbp" => 32,
        "rbx" => 40,
        "r11" => 48,
        "r10" => 56,
        "r9" => 64,
        "r8" => 72,
        "rax" => 80,
        "rcx" => 88,
        "rdx" => 96,
        "rsi" => 104,
        "rdi" => 112,
        "rip" => 128,
        "rsp" => 152,
        _ => return None,
    })
}

/// `reg("NAME")`'s names: the fields of x86-64's `struct pt_regs`, in order.
const PT_REGS_FIELDS: [&str; 21] = [
    "r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax", "cx", "dx", "si", "di",
    "orig_ax", "ip", "cs", "flags", "sp", "ss",
];

/// The System V calling convention's argument registers.
pub(super) const ARG_REGS: [&str; 6] = ["rdi", "rsi", "rdx", "rcx", "r8", "r9"];

impl Lowerer<'_, '_> {
    /// The builtins user-space probes provide; None for names they leave
    /// to the general builtins.
    pub(super) fn user_builtin(&mut self, name: &str, expr: &Expr) -> Option<Res<TVal>> {
        if name == "ustack" {
            return Some(self.ustack(&[], expr.span));
        }
        let arg = name
            .strip_prefix("arg")
            .and_then(|n| n.parse::<usize>().ok());
        match (&self.probe.attach, name, arg) {
            (Attach::Uprobe { retprobe, .. }, "retval", _) => Some(if *retprobe {
                Ok(self.read_register("rax", 8, false))
            } else {
                Err(
                    Diagnostic::error(expr.span, "'retval' is only available in uretprobe probes")
                        .with_label("not available in a uprobe")
                        .with_help("read the return value in a uretprobe on the same function"),
                )
            }),
            (
                Attach::Uprobe {
                    function,
                    function_cap,
                    ..
                },
                "func",
                _,
            ) => {
                let (function, cap) = (function.clone(), (*function_cap).max(8));
                let place = self.alloc_mem(cap, false);
                self.write_bytes(place, function.as_bytes(), cap);
                Some(Ok(TVal::new(Val::Mem(place), Ty::Str { cap })))
            }
            (Attach::Uprobe { retprobe, .. }, _, Some(n)) => Some(if *retprobe {
                Err(Diagnostic::error(
                    expr.span,
                    format!("'{name}' is not available in uretprobe probes"),
                )
                .with_label("arguments are gone when the function returns")
                .with_help(
                    "save it in a uprobe on the same function: \
                     @arg[tid] = arg0, then read @arg[tid] in the uretprobe",
                ))
            } else if let Some(reg) = ARG_REGS.get(n) {
                Ok(self.read_register(reg, 8, false))
            } else {
                Err(Diagnostic::error(
                    expr.span,
                    format!("'{name}' is not available: x86-64 passes arguments in registers only up to arg5"),
                )
                .with_label("not in a register"))
            }),
            (Attach::Usdt { args, .. }, _, Some(n)) => {
                let args = args.clone();
                Some(self.usdt_arg(&args, n, name, expr.span))
            }
            (Attach::Usdt { .. }, "func" | "retval", _) => Some(Err(Diagnostic::error(
                expr.span,
                format!("'{name}' is not available in usdt probes"),
            )
            .with_label("not available here")
            .with_help(if name == "func" {
                "'probe' names the USDT probe"
            } else {
                "a USDT probe has arguments (arg0, arg1, ...), no return value"
            }))),
            _ => None,
        }
    }

    /// The functions for user-space values; None for other names.
    pub(super) fn user_call(
        &mut self,
        name: &str,
        args: &[Expr],
        expr: &Expr,
    ) -> Option<Res<TVal>> {
        match name {
            "ustack" => Some(self.ustack(args, expr.span)),
            "usym" => Some(self.usym(args, expr)),
            "uaddr" => Some(self.uaddr(args, expr)),
            "reg" => Some(self.reg(args, expr)),
            _ => None,
        }
    }

    /// `reg("ip")`: a register saved when the probe fired (user probes and
    /// perf events, whose context starts with `struct pt_regs`).
    fn reg(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let name = match args {
            [
                Expr {
                    kind: ExprKind::Str(s),
                    ..
                },
            ] => String::from_utf8_lossy(s).into_owned(),
            _ => {
                return Err(Diagnostic::error(
                    expr.span,
                    "reg() takes one string literal, the register's name",
                )
                .with_label("invalid argument")
                .with_help("usage: reg(\"ip\")"));
            }
        };
        if !(self.probe.attach.is_user_probe()
            || self.probe.attach.is_perf_event()
            || self.probe.attach.kprobe_kind().is_some())
        {
            return Err(Diagnostic::error(
                expr.span,
                format!(
                    "reg() is not available in {} probes",
                    self.probe.name.split(':').next().unwrap_or_default()
                ),
            )
            .with_label("no registers here")
            .with_help("registers are saved for kprobe, kretprobe, uprobe, uretprobe, usdt, profile, interval, software and hardware probes"));
        }
        let Some(index) = PT_REGS_FIELDS.iter().position(|r| *r == name) else {
            let mut d = Diagnostic::error(args[0].span, format!("unknown register '{name}'"))
                .with_label("not an x86-64 register");
            d = match ferret_syntax::diag::closest(&name, PT_REGS_FIELDS) {
                Some(best) => d.with_help(format!("did you mean '{best}'?")),
                None => d.with_help(format!("the registers are: {}", PT_REGS_FIELDS.join(", "))),
            };
            return Err(d);
        };
        self.e
            .push(Insn::load(Size::DW, Reg::R1, Reg::FP, CTX_SLOT));
        self.e
            .push(Insn::load(Size::DW, Reg::R0, Reg::R1, index as i16 * 8));
        Ok(self.temp_from(Reg::R0, Ty::U64))
    }

    /// A u64 register of the user context, narrowed to `bytes`.
    pub(super) fn read_register(&mut self, reg: &str, bytes: u8, signed: bool) -> TVal {
        let off = pt_regs_offset(reg).unwrap_or(0);
        self.e
            .push(Insn::load(Size::DW, Reg::R1, Reg::FP, CTX_SLOT));
        self.e.push(Insn::load(Size::DW, Reg::R0, Reg::R1, off));
        self.narrow(Reg::R0, bytes, signed);
        self.temp_from(
            Reg::R0,
            if bytes == 8 && !signed {
                Ty::U64
            } else {
                Ty::I64
            },
        )
    }

    /// `argN` of a USDT probe, read as its note's spec says, sign- or
    /// zero-extended to an int64 as libbpf's `bpf_usdt_arg` gives it.
    fn usdt_arg(&mut self, specs: &str, n: usize, name: &str, span: Span) -> Res<TVal> {
        let args = ferret_usym::usdt::parse_args(specs).map_err(|e| {
            Diagnostic::error(
                span,
                format!("cannot read the arguments of {}: {e}", self.probe.name),
            )
            .with_label("in this probe")
        })?;
        let Some(arg) = args.get(n).cloned() else {
            return Err(Diagnostic::error(
                span,
                format!(
                    "'{name}' is not available: {} has {} argument{}",
                    self.probe.name,
                    args.len(),
                    if args.len() == 1 { "" } else { "s" }
                ),
            )
            .with_label("no such argument"));
        };
        let UsdtArg {
            size,
            signed,
            location,
        } = arg;
        let v = match location {
            ArgLocation::Constant(c) => {
                let shift = 64 - u32::from(size) * 8;
                let c = if shift == 0 {
                    c
                } else if signed {
                    (c << shift) >> shift
                } else {
                    ((c as u64) << shift >> shift) as i64
                };
                TVal::new(Val::Imm(c), Ty::I64)
            }
            ArgLocation::Register(reg) => {
                let mut v = self.read_register(reg, size, signed);
                v.ty = Ty::I64;
                v
            }
            ArgLocation::Memory {
                base,
                index,
                offset,
            } => {
                let place = self.alloc_mem(8, true);
                self.e
                    .push(Insn::load(Size::DW, Reg::R1, Reg::FP, CTX_SLOT));
                let base = pt_regs_offset(base).unwrap_or(0);
                self.e.push(Insn::load(Size::DW, Reg::R3, Reg::R1, base));
                if let Some((index, scale)) = index {
                    let index = pt_regs_offset(index).unwrap_or(0);
                    self.e.push(Insn::load(Size::DW, Reg::R0, Reg::R1, index));
                    self.e.push(Insn::alu64_imm(
                        AluOp::Lsh,
                        Reg::R0,
                        scale.trailing_zeros() as i32,
                    ));
                    self.e.push(Insn::alu64_reg(AluOp::Add, Reg::R3, Reg::R0));
                }
                self.e.alu_imm(AluOp::Add, Reg::R3, offset, Reg::R0);
                self.addr_of(place, Reg::R1);
                self.e.push(Insn::mov64_imm(Reg::R2, i32::from(size)));
                self.e.push(Insn::call(helper::PROBE_READ_USER));
                let sz = Size::from_bytes(usize::from(size)).unwrap_or(Size::DW);
                self.e
                    .push(Insn::load(sz, Reg::R0, place.reg(), place.off16()));
                self.narrow(Reg::R0, size, signed);
                self.temp_from(Reg::R0, Ty::I64)
            }
        };
        Ok(v)
    }

    /// `ustack`, `ustack(N)`, `ustack(MODE)`, `ustack(MODE, N)`: the user
    /// stack's id in the stack map, with the pid whose memory it is in.
    fn ustack(&mut self, args: &[Expr], span: Span) -> Res<TVal> {
        let usage = "ustack, ustack(limit), ustack(mode) or ustack(mode, limit), \
                     with mode bpftrace, perf or raw";
        let bad = |span: Span, msg: &str| {
            Err(Diagnostic::error(span, msg.to_string())
                .with_label("invalid argument")
                .with_help(format!("usage: {usage}")))
        };
        // The config's `stack_mode` unless the call names one.
        let mut mode = self.g.opts.stack_mode;
        let mut limit = 127u8;
        let mut rest = args;
        if let Some(first) = rest.first()
            && let ExprKind::Ident(name) = &first.kind
        {
            mode = match name.as_str() {
                "bpftrace" => StackMode::Bpftrace,
                "perf" => StackMode::Perf,
                "raw" => StackMode::Raw,
                "build_id" => {
                    return bad(first.span, "ustack(build_id) is not supported yet");
                }
                _ => return bad(first.span, &format!("unknown stack mode '{name}'")),
            };
            rest = &rest[1..];
        }
        match rest {
            [] => {}
            [n] => match n.kind {
                ExprKind::Int(v) if (1..=127).contains(&v) => limit = v as u8,
                _ => return bad(n.span, "ustack's limit must be a literal between 1 and 127"),
            },
            [_, extra, ..] => return bad(extra.span, "ustack takes at most 2 arguments"),
        }
        if args.len() > 2 {
            return bad(span, "ustack takes at most 2 arguments");
        }
        let stacks = self.g.obj_map(SysMap::Stacks);
        self.e
            .push(Insn::load(Size::DW, Reg::R1, Reg::FP, CTX_SLOT));
        self.e.load_map(Reg::R2, stacks);
        self.e.push(Insn::mov64_imm(Reg::R3, BPF_F_USER_STACK));
        self.e.push(Insn::call(helper::GET_STACKID));
        // Low half: the id (negative ids, errors, keep their low 32 bits).
        self.e.push(Insn::alu64_imm(AluOp::Lsh, Reg::R0, 32));
        self.e.push(Insn::alu64_imm(AluOp::Rsh, Reg::R0, 32));
        let id = self.temp_from(Reg::R0, Ty::U64);
        self.e.push(Insn::call(helper::GET_CURRENT_PID_TGID));
        self.e.push(Insn::alu64_imm(AluOp::Rsh, Reg::R0, 32));
        self.e.push(Insn::alu64_imm(AluOp::Lsh, Reg::R0, 32));
        self.load_reg(&id, Reg::R1);
        self.e.push(Insn::alu64_reg(AluOp::Or, Reg::R0, Reg::R1));
        self.store_back(&id, Reg::R0);
        Ok(TVal::new(id.val, Ty::UStack { limit, mode }))
    }

    /// `usym(addr)`: the address and the current pid, symbolized in user
    /// space.
    fn usym(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let [arg] = args else {
            return Err(Diagnostic::error(
                expr.span,
                format!("usym() takes 1 argument, {} given", args.len()),
            )
            .with_label("wrong number of arguments")
            .with_help("usage: usym(address)"));
        };
        let addr = self.eval_int(arg)?;
        let place = self.alloc_mem(16, false);
        self.load_reg(&addr, Reg::R0);
        self.release(addr);
        self.e
            .push(Insn::store(Size::DW, place.reg(), place.off16(), Reg::R0));
        self.e.push(Insn::call(helper::GET_CURRENT_PID_TGID));
        self.e.push(Insn::alu64_imm(AluOp::Rsh, Reg::R0, 32));
        let pid = place.at(8);
        self.e
            .push(Insn::store(Size::DW, pid.reg(), pid.off16(), Reg::R0));
        Ok(TVal::new(Val::Mem(place), Ty::Usym))
    }

    /// `uaddr("symbol")`: the symbol's address in the probe's binary (as
    /// linked: right for executables that are not position-independent).
    fn uaddr(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let name = match args {
            [
                Expr {
                    kind: ExprKind::Str(s),
                    ..
                },
            ] => String::from_utf8_lossy(s).into_owned(),
            _ => {
                return Err(Diagnostic::error(
                    expr.span,
                    "uaddr() takes one string literal, the symbol's name",
                )
                .with_label("invalid argument")
                .with_help("usage: uaddr(\"symbol\")"));
            }
        };
        let binary = match &self.probe.attach {
            Attach::Uprobe { binary, .. } | Attach::Usdt { binary, .. } => binary.clone(),
            _ => {
                return Err(Diagnostic::error(
                    expr.span,
                    "uaddr() is only available in uprobe, uretprobe and usdt probes",
                )
                .with_label("no binary to look the symbol up in"));
            }
        };
        let bin = self.g.target.user_binary(&binary).map_err(|e| {
            Diagnostic::error(expr.span, format!("uaddr(): {e}")).with_label("here")
        })?;
        let Some(address) = bin.symbol_address(&name) else {
            let mut d = Diagnostic::error(
                args[0].span,
                format!("could not resolve symbol '{name}' in {binary}"),
            )
            .with_label("no such symbol");
            if let Some(best) =
                ferret_syntax::diag::closest(&name, bin.functions.iter().map(|f| f.name.as_str()))
            {
                d = d.with_help(format!("did you mean '{best}'?"));
            }
            return Err(d);
        };
        Ok(TVal::new(Val::Imm(address as i64), Ty::U64))
    }
}
