//! Builtins (`pid`, `comm`, `args.x`, ...) and functions (`printf`, `str`,
//! `exit`, `print`, ...), including the events they send to user space.

use ferret_bpf::insn::helper;
use ferret_bpf::{AluOp, Insn, JmpOp, Reg, Size};
use ferret_output::printf::{self, Piece};
use ferret_syntax::ast::{Expr, ExprKind};
use ferret_syntax::diag::closest;
use ferret_syntax::{Diagnostic, Span};

use super::expr::Res;
use super::{CTX_SLOT, Lowerer, Place, SysMap, TVal, Val};
use crate::program::{Attach, EVENT_HEADER, EventKind, PrintfInfo};
use crate::target::FieldKind;
use crate::types::{Ty, align8};

/// Builtin variables, for "did you mean" help.
const BUILTINS: &[&str] = &[
    "pid",
    "tid",
    "uid",
    "gid",
    "comm",
    "nsecs",
    "elapsed",
    "cpu",
    "probe",
    "ncpus",
    "cgroup",
    "rand",
    "kstack",
    "args",
    "retval",
    "func",
    "curtask",
    "ustack",
    "username",
    "arg0",
    "arg1",
    "cpid",
    "ppid",
    "pcomm",
    "leader_tid",
    "leader_comm",
];

/// Functions, for "did you mean" help. (`cat` is left out: it would be
/// offered for `cnt`, which means `count`.)
const FUNCTIONS: &[&str] = &[
    "printf",
    "print",
    "exit",
    "clear",
    "zero",
    "delete",
    "str",
    "ksym",
    "kstack",
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "stats",
    "hist",
    "lhist",
    "nsecs",
    "pid",
    "tid",
    "comm",
    "cpu",
    "elapsed",
    "strncmp",
    "strcontains",
    "strlen",
    "buf",
    "join",
    "ntop",
    "pton",
    "macaddr",
    "strftime",
    "time",
    "strerror",
    "has_key",
    "len",
    "sizeof",
    "cgroupid",
    "kaddr",
    "kptr",
    "uptr",
    "signal",
    "system",
    "bswap",
    "errorf",
    "warnf",
    "assert",
    "username",
    "jiffies",
    "strstr",
    "str_concat",
    "memcmp",
    "syscall_name",
    "signal_name",
    "signal_thread",
    "cgroup_path",
    "ustack",
    "usym",
    "uaddr",
    "socket_cookie",
    "percpu_kaddr",
];

impl Lowerer<'_, '_> {
    /// Calls a helper that takes no arguments and returns r0 as a new value.
    fn helper_value(&mut self, id: i32, ty: Ty) -> TVal {
        self.e.push(Insn::call(id));
        self.temp_from(Reg::R0, ty)
    }

    pub fn builtin(&mut self, name: &str, expr: &Expr) -> Res<TVal> {
        if let Some(v) = self.user_builtin(name, expr) {
            return v;
        }
        if let Some(v) = self.kprobe_builtin(name, expr) {
            return v;
        }
        Ok(match name {
            "pid" | "tid" => self.task_id(name == "pid", false)?,
            "uid" | "gid" => {
                self.e.push(Insn::call(helper::GET_CURRENT_UID_GID));
                if name == "gid" {
                    self.e.push(Insn::alu64_imm(AluOp::Rsh, Reg::R0, 32));
                } else {
                    self.narrow(Reg::R0, 4, false);
                }
                self.temp_from(Reg::R0, Ty::U32)
            }
            "nsecs" => self.helper_value(helper::KTIME_GET_BOOT_NS, Ty::U64),
            "elapsed" => {
                self.e.push(Insn::call(helper::KTIME_GET_BOOT_NS));
                let start = self.g.start_ns as i64;
                self.e.alu_imm(AluOp::Sub, Reg::R0, start, Reg::R1);
                self.temp_from(Reg::R0, Ty::U64)
            }
            "cpu" => self.helper_value(helper::GET_SMP_PROCESSOR_ID, Ty::U32),
            "cgroup" => self.helper_value(helper::GET_CURRENT_CGROUP_ID, Ty::U64),
            "rand" => self.helper_value(helper::GET_PRANDOM_U32, Ty::U32),
            "ncpus" => TVal::new(Val::Imm(self.g.ncpus as i64), Ty::U64),
            "cpid" => match self.g.opts.child_pid {
                Some(pid) => TVal::new(Val::Imm(i64::from(pid)), Ty::U32),
                None => {
                    return Err(Diagnostic::error(
                        expr.span,
                        "cpid is the pid of the command ferret runs with -c, and there is none",
                    )
                    .with_label("no -c command")
                    .with_help("run the command under ferret: ferret -c 'CMD' ..."));
                }
            },
            "comm" => {
                // Zeroed first: 6.1's helper stops writing at the NUL, and
                // comparisons and map keys read all 16 bytes.
                let place = self.alloc_mem(16, true);
                self.addr_of(place, Reg::R1);
                self.e.push(Insn::mov64_imm(Reg::R2, 16));
                self.e.push(Insn::call(helper::GET_CURRENT_COMM));
                TVal::new(Val::Mem(place), Ty::Str { cap: 16 })
            }
            "probe" if self.group.is_some() => self.group_probe_name(),
            "probe" => {
                // A program on several kernel functions cannot tell them
                // apart by a constant: one program each instead.
                if matches!(&self.probe.attach, Attach::Kprobe { functions, .. } if functions.len() > 1)
                {
                    self.per_function = true;
                }
                // Every program of a probe gives it the same capacity.
                let cap = self.probe_cap;
                let place = self.alloc_mem(cap, false);
                let name = self.probe.name.clone();
                self.write_bytes(place, name.as_bytes(), cap);
                TVal::new(Val::Mem(place), Ty::Str { cap })
            }
            "kstack" => self.kstack(None, expr.span)?,
            "curtask" => self.curtask(),
            "args" => self.whole_args(expr.span)?,
            "retval" | "func" => {
                let mut d = Diagnostic::error(
                    expr.span,
                    format!("'{name}' is not available in {} probes", self.probe_kind()),
                )
                .with_label("not available here");
                if let Attach::RawSyscalls { exit, .. } = self.probe.attach {
                    d = d.with_help(match (name, exit) {
                        ("retval", true) => "the syscall's return value is args.ret",
                        ("retval", false) => {
                            "a syscall's return value is args.ret in the tracepoint:syscalls:sys_exit_* probes"
                        }
                        _ => "tracepoint arguments are read with args.FIELD",
                    });
                }
                if let Attach::Tracepoint { category, event } = &self.probe.attach {
                    let exit_call = event.strip_prefix("sys_exit_");
                    let enter_call = event.strip_prefix("sys_enter_");
                    d = d.with_help(match (name, category.as_str(), exit_call, enter_call) {
                        ("retval", "syscalls", Some(_), _) => {
                            "the syscall's return value is args.ret".to_string()
                        }
                        ("retval", "syscalls", None, Some(call)) => format!(
                            "a syscall's return value is args.ret in tracepoint:syscalls:sys_exit_{call}"
                        ),
                        _ => "tracepoint arguments are read with args.FIELD".to_string(),
                    });
                }
                return Err(d);
            }
            n if n.starts_with("arg")
                && matches!(
                    self.probe.attach,
                    Attach::RawTracepoint { .. } | Attach::Fentry { .. }
                )
                && let Ok(i) = n[3..].parse::<u32>() =>
            {
                self.context_argn(i, expr.span)?
            }
            n if n.starts_with("arg") && n[3..].parse::<u32>().is_ok() => {
                let mut d = Diagnostic::error(
                    expr.span,
                    format!("'{name}' is not available in {} probes", self.probe_kind()),
                )
                .with_label("not available here");
                if matches!(
                    self.probe.attach,
                    Attach::Tracepoint { .. } | Attach::RawSyscalls { .. }
                ) {
                    d = d.with_help("tracepoint arguments are read with args.FIELD");
                }
                return Err(d);
            }
            "ppid" | "pcomm" | "leader_tid" | "leader_comm" => {
                return self
                    .kernel_type_call(name, &[], expr)
                    .unwrap_or_else(|| Ok(TVal::int(0)));
            }
            "username" | "jiffies" | "numaid" | "probetype" => {
                return self
                    .library_call(name, &[], expr)
                    .unwrap_or_else(|| Ok(TVal::int(0)));
            }
            _ if let Some(v) = self.enum_constant(name) => v,
            _ => {
                let mut d = Diagnostic::error(expr.span, format!("unknown identifier '{name}'"))
                    .with_label("not a builtin");
                if let Some(best) = closest(name, BUILTINS.iter().copied()) {
                    d = d.with_help(format!("did you mean '{best}'?"));
                } else if FUNCTIONS.contains(&name) {
                    d = d.with_help(format!("{name} is a function: call it as {name}(...)"));
                } else if let Some(best) = self.g.ctypes.closest_enum_constant(name) {
                    d = d.with_help(format!("did you mean the enum constant '{best}'?"));
                }
                return Err(d);
            }
        })
    }

    pub(super) fn probe_kind(&self) -> &'static str {
        match self.probe.attach {
            Attach::Begin => "begin",
            Attach::End => "end",
            Attach::Tracepoint { .. } | Attach::RawSyscalls { .. } => "tracepoint",
            Attach::RawTracepoint { .. } => "rawtracepoint",
            Attach::Interval { .. } => "interval",
            Attach::Profile { .. } => "profile",
            Attach::Software { .. } => "software",
            Attach::Hardware { .. } => "hardware",
            Attach::Uprobe {
                retprobe: false, ..
            } => "uprobe",
            Attach::Uprobe { retprobe: true, .. } => "uretprobe",
            Attach::Usdt { .. } => "usdt",
            Attach::Kprobe {
                retprobe: false, ..
            } => "kprobe",
            Attach::Kprobe { retprobe: true, .. } => "kretprobe",
            Attach::Fentry { exit: false, .. } => "fentry",
            Attach::Fentry { exit: true, .. } => "fexit",
        }
    }

    fn kstack(&mut self, limit: Option<&Expr>, span: Span) -> Res<TVal> {
        let limit = match limit.map(|e| &e.kind) {
            None => 127,
            Some(ExprKind::Int(n)) if (1..=127).contains(n) => *n as u8,
            Some(_) => {
                return Err(Diagnostic::error(
                    span,
                    "kstack's limit must be a literal between 1 and 127",
                )
                .with_label("invalid limit"));
            }
        };
        let obj = self.g.obj_map(SysMap::Stacks);
        self.e
            .push(Insn::load(Size::DW, Reg::R1, Reg::FP, CTX_SLOT));
        self.e.load_map(Reg::R2, obj);
        self.e.push(Insn::mov64_imm(Reg::R3, 0));
        self.e.push(Insn::call(helper::GET_STACKID));
        Ok(self.temp_from(Reg::R0, Ty::KStack { limit }))
    }

    /// `args.field` in a tracepoint probe, read straight from the record.
    pub fn tracepoint_arg(&mut self, field: &str, span: Span) -> Res<TVal> {
        // A group's program reads what its tracepoints share; otherwise it
        // is typed (and checked) as its first tracepoint's program.
        let mut probe = self.probe;
        if let Some(group) = self.group {
            if let Some(v) = self.group_arg(group, field) {
                return v;
            }
            if let Some((_, first)) = group.members.first() {
                probe = first;
            }
        }
        let Some(format) = &probe.format else {
            return Err(Diagnostic::error(
                span,
                format!("'args' is not available in {} probes", self.probe_kind()),
            )
            .with_label("no arguments here"));
        };
        let Some(f) = format.field(field).cloned() else {
            let names: Vec<&str> = format.fields.iter().map(|f| f.name.as_str()).collect();
            let mut d = Diagnostic::error(span, format!("{} has no field '{field}'", probe.name))
                .with_label("unknown field");
            d = match closest(field, names.iter().copied()) {
                Some(best) => d.with_help(format!("did you mean '{best}'?")),
                None => d.with_help(format!("its fields are: {}", names.join(", "))),
            };
            return Err(d);
        };
        self.e
            .push(Insn::load(Size::DW, Reg::R1, Reg::FP, CTX_SLOT));
        match f.kind {
            FieldKind::Integer | FieldKind::Pointer => {
                let size = match f.size {
                    1 | 2 | 4 | 8 => f.size,
                    _ => 8,
                };
                let Some(sz) = Size::from_bytes(size as usize) else {
                    return Err(Diagnostic::error(span, "unsupported field size"));
                };
                self.e
                    .push(Insn::load(sz, Reg::R0, Reg::R1, f.offset as i16));
                let signed = f.signed && f.kind == FieldKind::Integer;
                if signed {
                    self.narrow(Reg::R0, size as u8, true);
                }
                let ty = self.typed_field(&f.c_type, f.kind == FieldKind::Pointer);
                Ok(self.temp_from(
                    Reg::R0,
                    ty.unwrap_or(Ty::Int {
                        bytes: size as u8,
                        signed,
                    }),
                ))
            }
            FieldKind::CharArray { len } => {
                let cap = align8(len + 1);
                let place = self.alloc_mem(cap, true);
                self.addr_of(place, Reg::R1);
                self.e.push(Insn::mov64_imm(Reg::R2, len as i32));
                self.e
                    .push(Insn::load(Size::DW, Reg::R3, Reg::FP, CTX_SLOT));
                self.e
                    .push(Insn::alu64_imm(AluOp::Add, Reg::R3, f.offset as i32));
                self.e.push(Insn::call(helper::PROBE_READ_KERNEL));
                Ok(TVal::new(Val::Mem(place), Ty::Str { cap }))
            }
            FieldKind::DataLocString => {
                let cap = align8(self.g.str_read);
                let place = self.alloc_mem(cap, true);
                // The u32 holds (length << 16 | offset in the record).
                self.e
                    .push(Insn::load(Size::W, Reg::R3, Reg::R1, f.offset as i16));
                self.e.push(Insn::alu64_imm(AluOp::And, Reg::R3, 0xffff));
                self.e.push(Insn::alu64_reg(AluOp::Add, Reg::R3, Reg::R1));
                self.addr_of(place, Reg::R1);
                self.e
                    .push(Insn::mov64_imm(Reg::R2, self.g.str_read as i32));
                self.e.push(Insn::call(helper::PROBE_READ_KERNEL_STR));
                Ok(TVal::new(Val::Mem(place), Ty::Str { cap }))
            }
            FieldKind::Array { elem_size, len } if matches!(elem_size, 1 | 2 | 4 | 8) => {
                let size = elem_size * len;
                let place = self.alloc_mem(size, true);
                self.addr_of(place, Reg::R1);
                self.e.push(Insn::mov64_imm(Reg::R2, size as i32));
                self.e
                    .push(Insn::load(Size::DW, Reg::R3, Reg::FP, CTX_SLOT));
                self.e
                    .push(Insn::alu64_imm(AluOp::Add, Reg::R3, f.offset as i32));
                self.e.push(Insn::call(helper::PROBE_READ_KERNEL));
                Ok(TVal::new(
                    Val::Mem(place),
                    Ty::Array {
                        elem: Box::new(Ty::Int {
                            bytes: elem_size as u8,
                            signed: f.signed,
                        }),
                        len,
                    },
                ))
            }
            FieldKind::DataLocArray => {
                // As in bpftrace: the address of the data in the record, a
                // u64 for buf(), str() or casts to read through. The u32
                // holds (length << 16 | offset in the record).
                self.e
                    .push(Insn::load(Size::W, Reg::R0, Reg::R1, f.offset as i16));
                self.e.push(Insn::alu64_imm(AluOp::And, Reg::R0, 0xffff));
                self.e.push(Insn::alu64_reg(AluOp::Add, Reg::R0, Reg::R1));
                Ok(self.temp_from(Reg::R0, Ty::U64))
            }
            FieldKind::Array { .. } => Err(Diagnostic::error(
                span,
                format!(
                    "reading array field '{field}' ({}) is not supported yet",
                    f.c_type
                ),
            )
            .with_label("array field")),
        }
    }

    pub fn call(&mut self, name: &str, name_span: Span, args: &[Expr], expr: &Expr) -> Res<TVal> {
        if let Some(v) = self.user_call(name, args, expr) {
            return v;
        }
        let none = TVal::new(Val::Imm(0), Ty::None);
        let want = |n: std::ops::RangeInclusive<usize>, usage: &str| -> Res<()> {
            if n.contains(&args.len()) {
                Ok(())
            } else {
                Err(Diagnostic::error(
                    expr.span,
                    format!("{name}() {}, {} given", takes(&n), args.len()),
                )
                .with_label("wrong number of arguments")
                .with_help(format!("usage: {usage}")))
            }
        };
        if let Some(result) = self.library_call(name, args, expr) {
            return result;
        }
        if let Some(result) = self.kernel_type_call(name, args, expr) {
            return result;
        }
        match name {
            "printf" => {
                want(1..=64, "printf(\"format\", args...)")?;
                self.printf(args, expr)?;
                Ok(none)
            }
            "exit" => {
                want(0..=1, "exit() or exit(code)")?;
                let code = match args.first() {
                    Some(e) => self.eval_int(e)?,
                    None => TVal::int(0),
                };
                let code_ty = code.ty.clone();
                self.emit_event(EventKind::Exit, 0, &[(code, code_ty)])?;
                let exit = self.exit_label;
                self.e.jump(exit);
                Ok(none)
            }
            "print" => {
                want(1..=3, "print(@map[, top[, divisor]]) or print(value)")?;
                if let ExprKind::Map { name: m, keys } = &args[0].kind
                    && keys.is_empty()
                {
                    let id = self.map_id(m, args[0].span);
                    let top = match args.get(1) {
                        Some(e) => self.eval_int(e)?,
                        None => TVal::int(0),
                    };
                    let div = match args.get(2) {
                        Some(e) => self.eval_int(e)?,
                        None => TVal::int(1),
                    };
                    self.emit_event(
                        EventKind::PrintMap,
                        id as u32,
                        &[(top, Ty::U64), (div, Ty::U64)],
                    )?;
                    return Ok(none);
                }
                want(1..=1, "print(value)")?;
                let v = self.eval(&args[0])?;
                if v.ty == Ty::None {
                    return Err(
                        Diagnostic::error(args[0].span, "this expression has no value")
                            .with_label("nothing to print"),
                    );
                }
                let ty = v.ty.clone();
                let id = if self.g.discovering {
                    0
                } else {
                    self.g.print_values.push(ty.clone());
                    self.g.print_values.len() as u32 - 1
                };
                self.emit_event(EventKind::PrintValue, id, &[(v, ty)])?;
                Ok(none)
            }
            "clear" | "zero" => {
                want(1..=1, &format!("{name}(@map)"))?;
                let ExprKind::Map { name: m, keys } = &args[0].kind else {
                    return Err(
                        Diagnostic::error(args[0].span, format!("{name}() takes a map"))
                            .with_label("not a map"),
                    );
                };
                if !keys.is_empty() {
                    return Err(Diagnostic::error(
                        args[0].span,
                        format!("{name}() takes a whole map, without a key"),
                    )
                    .with_label("remove the key"));
                }
                let id = self.map_id(m, args[0].span);
                let kind = if name == "clear" {
                    EventKind::ClearMap
                } else {
                    EventKind::ZeroMap
                };
                self.emit_event(kind, id as u32, &[])?;
                Ok(none)
            }
            "delete" => {
                want(1..=2, "delete(@map, key) or delete(@map[key])")?;
                let ExprKind::Map { name: m, keys } = &args[0].kind else {
                    return Err(Diagnostic::error(args[0].span, "delete() takes a map")
                        .with_label("not a map"));
                };
                let keys: Vec<Expr> = if args.len() == 2 {
                    match &args[1].kind {
                        ExprKind::Tuple(elems) => elems.clone(),
                        _ => vec![args[1].clone()],
                    }
                } else {
                    keys.clone()
                };
                self.map_delete(m, &keys, expr.span)
            }
            "str" => {
                want(1..=2, "str(pointer[, length])")?;
                let ptr = self.eval(&args[0])?;
                if let Ty::Str { .. } = ptr.ty {
                    return Ok(ptr);
                }
                if !ptr.ty.is_scalar() {
                    return Err(Diagnostic::error(
                        args[0].span,
                        format!("str() takes a pointer, found {}", ptr.ty.describe()),
                    )
                    .with_label("not a pointer"));
                }
                let cap = align8(self.g.str_read);
                let len = match args.get(1) {
                    Some(e) => Some(self.eval_int(e)?),
                    None => None,
                };
                let place = self.alloc_mem(cap, true);
                self.addr_of(place, Reg::R1);
                // At most max_strlen bytes (`str_read`, within `cap`).
                let read = self.g.str_read as i32;
                match &len {
                    // len + 1 for the NUL, clamped to [1, read] for the verifier.
                    Some(l) => {
                        self.load_reg(l, Reg::R2);
                        self.e.push(Insn::alu64_imm(AluOp::Add, Reg::R2, 1));
                        self.e.push(Insn::jmp_imm(JmpOp::Jle, Reg::R2, read, 1));
                        self.e.push(Insn::mov64_imm(Reg::R2, read));
                        self.e.push(Insn::jmp_imm(JmpOp::Jge, Reg::R2, 1, 1));
                        self.e.push(Insn::mov64_imm(Reg::R2, 1));
                    }
                    None => self.e.push(Insn::mov64_imm(Reg::R2, read)),
                }
                self.load_reg(&ptr, Reg::R3);
                let read = if self.reads_user(&ptr) {
                    helper::PROBE_READ_USER_STR
                } else {
                    helper::PROBE_READ_KERNEL_STR
                };
                self.e.push(Insn::call(read));
                self.release(ptr);
                if let Some(l) = len {
                    self.release(l);
                }
                Ok(TVal::new(Val::Mem(place), Ty::Str { cap }))
            }
            "ksym" => {
                want(1..=1, "ksym(address)")?;
                let v = self.eval_int(&args[0])?;
                Ok(TVal::new(v.val, Ty::Ksym))
            }
            "kstack" => {
                want(0..=1, "kstack or kstack(limit)")?;
                self.kstack(args.first(), expr.span)
            }
            n if super::maps::is_aggregation(n) => Err(Diagnostic::error(
                name_span,
                format!("{n}() must be assigned to a map"),
            )
            .with_label("not assigned")
            .with_help(format!("write @name = {n}(...)"))),
            n if args.is_empty() && BUILTINS.contains(&n) => self.builtin(n, expr),
            _ => {
                let mut d = Diagnostic::error(name_span, format!("unknown function '{name}'"))
                    .with_label("not a known function");
                if let Some(best) = closest(name, FUNCTIONS.iter().copied()) {
                    d = d.with_help(format!("did you mean '{best}'?"));
                }
                Err(d)
            }
        }
    }

    /// Syscall tracepoints and user-space probes carry user-space pointers;
    /// other probes' pointers are kernel addresses.
    pub(super) fn user_pointers(&self) -> bool {
        match &self.probe.attach {
            Attach::Tracepoint { category, .. } => category == "syscalls",
            Attach::RawSyscalls { .. } | Attach::Uprobe { .. } | Attach::Usdt { .. } => true,
            _ => false,
        }
    }

    /// Whether reads through pointer `v` go to user memory: as marked by
    /// `uptr()`/`kptr()`, else as the probe's pointers are.
    pub fn reads_user(&self, v: &TVal) -> bool {
        let typed = match &v.ty {
            Ty::Ptr(p) => Some(p.user),
            _ => None,
        };
        v.user.or(typed).unwrap_or_else(|| self.user_pointers())
    }

    fn printf(&mut self, args: &[Expr], expr: &Expr) -> Res<()> {
        self.formatted(EventKind::Printf, "printf", args, expr)
    }

    /// `printf` and the functions that format like it (`system`, `cat`,
    /// `errorf`, `warnf`): one event of kind `kind` with the arguments.
    pub fn formatted(
        &mut self,
        kind: EventKind,
        name: &str,
        args: &[Expr],
        expr: &Expr,
    ) -> Res<()> {
        let Some(first) = args.first() else {
            return Err(
                Diagnostic::error(expr.span, format!("{name}() needs a format string"))
                    .with_label("no format")
                    .with_help(format!("usage: {name}(\"format\", args...)")),
            );
        };
        let ExprKind::Str(fmt) = &first.kind else {
            return Err(Diagnostic::error(
                first.span,
                format!("{name}'s first argument must be a string literal"),
            )
            .with_label("not a format string")
            .with_help(format!("write the format inline: {name}(\"%s\\n\", $var)")));
        };
        // The error's offset is into the unescaped bytes, which need not line
        // up with the source, so mark the whole format and quote the
        // conversion.
        let pieces = printf::parse(fmt).map_err(|e| {
            let rest = fmt.get(e.offset + 1..).unwrap_or_default();
            let len = rest
                .iter()
                .position(u8::is_ascii_alphabetic)
                .map_or(rest.len(), |i| i + 1);
            let conv = String::from_utf8_lossy(&fmt[e.offset..e.offset + 1 + len]);
            Diagnostic::error(
                args[0].span,
                format!("{name}: unsupported conversion '{conv}'"),
            )
            .with_label("in this format")
            .with_help(
                "ferret prints integers and strings: use %d, %u, %x, %o, %c, %s, %p or %r; \
                 write %% for a literal '%'",
            )
        })?;
        let convs: Vec<&printf::Conversion> = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Conversion(c) => Some(c),
                Piece::Literal(_) => None,
            })
            .collect();
        if convs.len() != args.len() - 1 {
            return Err(Diagnostic::error(
                expr.span,
                format!(
                    "{name}: the format has {} conversion{} but {} argument{} given",
                    convs.len(),
                    if convs.len() == 1 { "" } else { "s" },
                    args.len() - 1,
                    if args.len() == 2 { " was" } else { "s were" }
                ),
            )
            .with_label("mismatched arguments")
            .with_help("give one argument per conversion; write %% for a literal '%'"));
        }
        let mut vals = Vec::new();
        for (conv, arg) in convs.iter().zip(&args[1..]) {
            let v = self.eval(arg)?;
            if conv.spec.wants_integer() && !v.ty.is_scalar() {
                return Err(Diagnostic::error(
                    arg.span,
                    format!(
                        "{name}: %{} expects an integer, found {}",
                        spec_char(conv.spec),
                        v.ty.describe()
                    ),
                )
                .with_label("wrong type")
                .with_help("use %s to print it"));
            }
            if conv.spec.wants_buffer() && !matches!(v.ty, Ty::Buffer { .. } | Ty::Str { .. }) {
                return Err(Diagnostic::error(
                    arg.span,
                    format!(
                        "{name}: %{} expects a buffer, found {}",
                        spec_char(conv.spec),
                        v.ty.describe()
                    ),
                )
                .with_label("not a buffer")
                .with_help("read one with buf(pointer, length)"));
            }
            if v.ty == Ty::None {
                return Err(Diagnostic::error(arg.span, "this expression has no value")
                    .with_label("nothing to print"));
            }
            let ty = v.ty.clone();
            vals.push((v, ty));
        }
        let id = if self.g.discovering {
            0
        } else {
            let mut off = EVENT_HEADER;
            let layout = vals
                .iter()
                .map(|(_, ty)| {
                    let at = off;
                    off += align8(ty.size());
                    (at, ty.clone())
                })
                .collect();
            self.g.printfs.push(PrintfInfo {
                format: fmt.clone(),
                args: layout,
                span: expr.span,
            });
            self.g.printfs.len() as u32 - 1
        };
        self.emit_event(kind, id, &vals)
    }

    /// Sends `header, values...` through the ring buffer, counting it as
    /// lost when the buffer is full.
    pub fn emit_event(&mut self, kind: EventKind, id: u32, vals: &[(TVal, Ty)]) -> Res<()> {
        let size = EVENT_HEADER + vals.iter().map(|(_, t)| align8(t.size())).sum::<u32>();
        let place: Place = self.alloc_mem(size, false);
        let header = (u64::from(id) << 32) | kind as u64;
        self.e.push2(Insn::ld_imm64(Reg::R0, header));
        self.e
            .push(Insn::store(Size::DW, place.reg(), place.off16(), Reg::R0));
        let mut off = EVENT_HEADER;
        for (v, ty) in vals {
            self.write_as(place.at(off), v, ty);
            off += align8(ty.size());
        }
        for (v, _) in vals {
            self.release(v.clone());
        }
        self.send_event(place, size);
        Ok(())
    }

    /// Sends the `size` bytes at `place` (an event with its header) through
    /// the ring buffer, counting it as lost when the buffer is full.
    pub fn send_event(&mut self, place: Place, size: u32) {
        if self.g.discovering {
            return;
        }
        let events = self.g.obj_map(SysMap::Events);
        self.e.load_map(Reg::R1, events);
        self.addr_of(place, Reg::R2);
        self.e.push(Insn::mov64_imm(Reg::R3, size as i32));
        self.e.push(Insn::mov64_imm(Reg::R4, 0));
        self.e.push(Insn::call(helper::RINGBUF_OUTPUT));
        let sent = self.e.new_label();
        self.e.jump_if_imm(JmpOp::Jeq, Reg::R0, 0, sent);
        self.count_lost();
        self.e.bind(sent);
    }

    /// Reports runtime error `message` at `span` to user space (an event
    /// with no payload); registers r6-r9 survive.
    pub fn runtime_error(&mut self, span: Span, message: &str) -> Res<()> {
        let id = if self.g.discovering {
            0
        } else {
            self.g
                .runtime_errors
                .push(crate::program::RuntimeErrorInfo {
                    span,
                    message: message.to_string(),
                });
            self.g.runtime_errors.len() as u32 - 1
        };
        self.emit_event(EventKind::RuntimeError, id, &[])
    }

    fn count_lost(&mut self) {
        let lost = self.g.obj_map(SysMap::Lost);
        let key = self.alloc_mem(8, true);
        self.e.load_map(Reg::R1, lost);
        self.addr_of(key, Reg::R2);
        self.e.push(Insn::call(helper::MAP_LOOKUP_ELEM));
        self.e.push(Insn::jmp_imm(JmpOp::Jeq, Reg::R0, 0, 3));
        self.e.push(Insn::load(Size::DW, Reg::R1, Reg::R0, 0));
        self.e.push(Insn::alu64_imm(AluOp::Add, Reg::R1, 1));
        self.e.push(Insn::store(Size::DW, Reg::R0, 0, Reg::R1));
    }
}

fn spec_char(spec: printf::Spec) -> &'static str {
    use printf::Spec;
    match spec {
        Spec::Signed => "d",
        Spec::Unsigned => "u",
        Spec::Octal => "o",
        Spec::Hex => "x",
        Spec::HexUpper => "X",
        Spec::Char => "c",
        Spec::Str => "s",
        Spec::Pointer => "p",
        Spec::Buf => "r",
        Spec::BufHex => "rx",
        Spec::BufHexSpaced => "rh",
        Spec::Gfp => "gr",
    }
}

/// `takes 1 argument`, `takes 1 or 2 arguments`, `takes 1 to 64 arguments`.
pub(super) fn takes(n: &std::ops::RangeInclusive<usize>) -> String {
    let (lo, hi) = (*n.start(), *n.end());
    match hi - lo {
        0 => format!("takes {lo} argument{}", if lo == 1 { "" } else { "s" }),
        1 => format!("takes {lo} or {hi} arguments"),
        _ => format!("takes {lo} to {hi} arguments"),
    }
}
