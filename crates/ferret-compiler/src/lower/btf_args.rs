//! Probe arguments typed by the kernel's BTF: `args.NAME`, `argN` and
//! `retval` of raw tracepoints, fentry/fexit, and kprobes on functions
//! the BTF describes.
//!
//! Raw tracepoints and fentry/fexit get their arguments as an array of
//! u64s in the context (a `struct` passed by value takes as many as its
//! size needs); fexit's return value follows the arguments. Kprobes get
//! the registers, so their typed arguments are the argument registers.

use ferret_bpf::insn::helper;
use ferret_bpf::{AluOp, Insn, Reg, Size};
use ferret_btf::Param;
use ferret_syntax::{Diagnostic, Span};

use super::expr::Res;
use super::user::{ARG_REGS, pt_regs_offset};
use super::{CTX_SLOT, Lowerer, TVal};
use crate::ctypes::{BtfRef, BtfSrc};
use crate::program::Attach;
use crate::types::Ty;

/// The arguments of the probed function or raw tracepoint, from BTF.
pub(super) struct TypedArgs {
    pub src: BtfSrc,
    pub params: Vec<Param>,
    /// The return type (0 for `void`, and for raw tracepoints).
    pub ret: u32,
}

impl<'o> Lowerer<'_, 'o> {
    /// The BTF that describes what is being probed: its module's, or
    /// vmlinux's.
    pub(super) fn probe_btf(&mut self) -> Result<(BtfSrc, &'o ferret_btf::Btf), String> {
        let module = match &self.probe.attach {
            Attach::RawTracepoint { module, .. } | Attach::Fentry { module, .. } => module.clone(),
            Attach::Kprobe {
                module: Some(m), ..
            } => m.clone(),
            _ => "vmlinux".to_string(),
        };
        let src = self.g.ctypes.module(&module)?;
        Ok((src, self.g.ctypes.btf_of(src)?))
    }

    /// The probe's BTF-typed arguments; `Ok(None)` for probes that have
    /// none (tracepoints, uprobes, a kprobe program on many functions),
    /// `Err` when the BTF that would describe them is missing.
    pub(super) fn typed_args(&mut self) -> Result<Option<TypedArgs>, String> {
        let (event, function) = match &self.probe.attach {
            Attach::RawTracepoint { event, .. } => (Some(event.clone()), None),
            Attach::Fentry { function, .. } => (None, Some(function.clone())),
            Attach::Kprobe {
                functions, offset, ..
            } if functions.len() == 1 && *offset == 0 => (None, Some(functions[0].clone())),
            _ => return Ok(None),
        };
        let (src, btf) = self.probe_btf()?;
        if let Some(event) = event {
            let rt = btf.raw_tracepoint(&event).ok_or_else(|| {
                format!("the kernel's BTF does not describe raw tracepoint {event}")
            })?;
            return Ok(Some(TypedArgs {
                src,
                params: rt.args,
                ret: 0,
            }));
        }
        let function = function.unwrap_or_default();
        let f = btf
            .function(&function)
            .ok_or_else(|| format!("the kernel's BTF does not describe function {function}"))?;
        Ok(Some(TypedArgs {
            src,
            params: f.args,
            ret: f.ret,
        }))
    }

    /// Whether the context holds the arguments as u64s the verifier
    /// knows the types of (tp_btf, fentry, fexit).
    fn btf_typed_context(&self) -> bool {
        matches!(
            self.probe.attach,
            Attach::RawTracepoint {
                btf_id: Some(_),
                ..
            } | Attach::Fentry { .. }
        )
    }

    /// `args.NAME`, typed from the BTF prototype.
    pub(super) fn typed_arg(&mut self, field: &str, span: Span) -> Res<TVal> {
        if let Attach::Kprobe { retprobe: true, .. } = self.probe.attach {
            return Err(
                Diagnostic::error(span, "'args' is not available in kretprobe probes")
                    .with_label("arguments are gone when the function returns")
                    .with_help("use fexit, which has args and retval, or save it in a kprobe"),
            );
        }
        let kind = self.probe_kind();
        let args = match self.typed_args() {
            Ok(Some(a)) => a,
            Ok(None) => {
                return Err(Diagnostic::error(
                    span,
                    "'args' is not available in a probe on many functions",
                )
                .with_label("the functions' arguments differ")
                .with_help("read arg0, arg1, ..., or probe one function"));
            }
            Err(why) => {
                return Err(Diagnostic::error(
                    span,
                    format!("'args' of a {kind} probe needs the kernel's BTF: {why}"),
                )
                .with_label("no argument names")
                .with_help("read the arguments as arg0, arg1, ..."));
            }
        };
        let Some(i) = args.params.iter().position(|a| a.name == field) else {
            let names: Vec<&str> = args.params.iter().map(|a| a.name.as_str()).collect();
            let mut d = Diagnostic::error(
                span,
                format!("{} has no argument '{field}'", self.probe.name),
            )
            .with_label("unknown argument");
            d = match ferret_syntax::diag::closest(field, names.iter().copied()) {
                Some(best) => d.with_help(format!("did you mean '{best}'?")),
                None => d.with_help(format!("its arguments are: {}", names.join(", "))),
            };
            return Err(d);
        };
        let ty = self.btf_value_ty(&args, args.params[i].type_id, field, span)?;
        if matches!(self.probe.attach, Attach::Kprobe { .. }) {
            let Some(reg) = ARG_REGS.get(i) else {
                return Err(Diagnostic::error(
                    span,
                    format!(
                        "argument '{field}' is argument {i}: x86-64 passes arguments in \
                         registers only up to arg5"
                    ),
                )
                .with_label("not in a register")
                .with_help("fentry reads every argument"));
            };
            let off = pt_regs_offset(reg).unwrap_or(0);
            self.e
                .push(Insn::load(Size::DW, Reg::R1, Reg::FP, CTX_SLOT));
            self.e.push(Insn::load(Size::DW, Reg::R0, Reg::R1, off));
            return Ok(self.typed_from_r0(ty));
        }
        let slot = self.arg_slot(&args, i);
        let pointer = self.is_pointer(&args, args.params[i].type_id);
        Ok(self.context_arg(slot, ty, pointer))
    }

    /// The value type of BTF type `type_id` (an argument or return value).
    fn btf_value_ty(&mut self, args: &TypedArgs, type_id: u32, what: &str, span: Span) -> Res<Ty> {
        let id = self.g.ctypes.import(BtfRef {
            src: args.src,
            id: type_id,
        });
        self.g.ctypes.value_ty(id, false).ok_or_else(|| {
            Diagnostic::error(
                span,
                format!(
                    "'{what}' is a {}, which cannot be read as a value",
                    self.g.ctypes.name(id)
                ),
            )
            .with_label("unsupported type")
        })
    }

    fn is_pointer(&mut self, args: &TypedArgs, type_id: u32) -> bool {
        self.g.ctypes.btf_of(args.src).is_ok_and(|btf| {
            matches!(
                btf.get(btf.strip(type_id)),
                Some(ferret_btf::Type::Ptr { .. })
            )
        })
    }

    /// The context slot (u64 index) of argument `i`: a struct passed by
    /// value takes one slot per 8 bytes.
    pub(super) fn arg_slot(&mut self, args: &TypedArgs, i: usize) -> u32 {
        let Ok(btf) = self.g.ctypes.btf_of(args.src) else {
            return i as u32;
        };
        args.params[..i]
            .iter()
            .map(|p| btf.size_of(p.type_id).unwrap_or(8).div_ceil(8).max(1))
            .sum()
    }

    /// `argN` of a raw tracepoint or fentry/fexit: the N-th u64 of its
    /// context.
    pub fn context_argn(&mut self, n: u32, span: Span) -> Res<TVal> {
        if let Ok(Some(args)) = self.typed_args() {
            let slots = self.arg_slot(&args, args.params.len());
            if n >= slots {
                return Err(Diagnostic::error(
                    span,
                    format!(
                        "{} has {slots} arguments, arg0 to arg{}",
                        self.probe.name,
                        slots.saturating_sub(1)
                    ),
                )
                .with_label("no such argument"));
            }
            // The argument in that slot, when one starts there, gives the
            // pointer-ness the verifier sees.
            let pointer = (0..args.params.len())
                .find(|&i| self.arg_slot(&args, i) == n)
                .is_some_and(|i| self.is_pointer(&args, args.params[i].type_id));
            return Ok(self.context_arg(n, Ty::U64, pointer));
        }
        Ok(self.context_arg(n, Ty::U64, false))
    }

    /// `retval` of an fexit probe: the u64 after the arguments, typed as
    /// the function returns it.
    pub(super) fn fexit_retval(&mut self, span: Span) -> Res<TVal> {
        let args = match self.typed_args() {
            Ok(Some(a)) => a,
            Ok(None) | Err(_) => {
                return Err(
                    Diagnostic::error(span, "'retval' needs the function's BTF prototype")
                        .with_label("unknown return type"),
                );
            }
        };
        if args.ret == 0 {
            return Err(Diagnostic::error(
                span,
                format!("{} returns void: there is no 'retval'", self.probe.name),
            )
            .with_label("no return value"));
        }
        let ty = self.btf_value_ty(&args, args.ret, "retval", span)?;
        let slot = self.arg_slot(&args, args.params.len());
        let pointer = self.is_pointer(&args, args.ret);
        Ok(self.context_arg(slot, ty, pointer))
    }

    /// The u64 in context slot `n`, as a `ty`. The pointer arguments of a
    /// BTF-typed program are typed pointers to the verifier, which then
    /// refuses plain integer work on them (`p & 0xfff`, `p % 64`); reading
    /// them with `probe_read_kernel` makes them the integers the language
    /// treats them as.
    fn context_arg(&mut self, n: u32, ty: Ty, pointer: bool) -> TVal {
        let pointer = pointer && self.btf_typed_context();
        self.e
            .push(Insn::load(Size::DW, Reg::R3, Reg::FP, CTX_SLOT));
        if pointer {
            let slot = self.alloc_mem(8, false);
            self.e
                .push(Insn::alu64_imm(AluOp::Add, Reg::R3, (n * 8) as i32));
            self.addr_of(slot, Reg::R1);
            self.e.push(Insn::mov64_imm(Reg::R2, 8));
            self.e.push(Insn::call(helper::PROBE_READ_KERNEL));
            self.e
                .push(Insn::load(Size::DW, Reg::R0, slot.reg(), slot.off16()));
        } else {
            self.e
                .push(Insn::load(Size::DW, Reg::R0, Reg::R3, (n * 8) as i16));
        }
        self.typed_from_r0(ty)
    }

    /// R0 as a value of `ty`: integers narrowed to their width.
    fn typed_from_r0(&mut self, ty: Ty) -> TVal {
        match &ty {
            Ty::Int { bytes, signed } => self.narrow(Reg::R0, *bytes, *signed),
            Ty::Enum(e) => self.narrow(Reg::R0, e.bytes, e.signed),
            _ => {}
        }
        self.temp_from(Reg::R0, ty)
    }
}
