//! Functions about the system: `nsecs(clock)`, `pid(ns)`/`tid(ns)`,
//! `syscall_name(nr)`, `signal_name(sig)` and `cgroup_path(id)`.
//!
//! `syscall_name` and `signal_name` give strings, as bpftrace's do: the
//! names live in an array map indexed by number, filled before the probes
//! attach, and are copied out in the probe. `cgroup_path` walks the cgroup
//! filesystems, so it is resolved in user space when printed, as bpftrace
//! does too.

use ferret_bpf::insn::helper;
use ferret_bpf::{AluOp, Insn, JmpOp, Reg, Size};
use ferret_syntax::Diagnostic;
use ferret_syntax::ast::{Expr, ExprKind};

use super::expr::Res;
use super::{Lowerer, SysMap, TVal, Val};
use crate::types::{Ty, align8};

/// The string tables programs look names up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum NameTable {
    Syscalls,
    Signals,
}

/// What `signal_name` gives for numbers it has no name for.
const UNKNOWN_SIGNAL: &str = "N/A";
/// What `syscall_name` gives for numbers it has no name for.
const UNKNOWN_SYSCALL: &str = "Unknown syscall";

/// Descriptions of signals 0 to 64, as `strsignal(3)` gives them (and
/// bpftrace's `signal_name`).
fn signal_description(sig: u32) -> Option<String> {
    const CLASSIC: [&str; 32] = [
        "Unknown signal 0",
        "Hangup",
        "Interrupt",
        "Quit",
        "Illegal instruction",
        "Trace/breakpoint trap",
        "Aborted",
        "Bus error",
        "Floating point exception",
        "Killed",
        "User defined signal 1",
        "Segmentation fault",
        "User defined signal 2",
        "Broken pipe",
        "Alarm clock",
        "Terminated",
        "Stack fault",
        "Child exited",
        "Continued",
        "Stopped (signal)",
        "Stopped",
        "Stopped (tty input)",
        "Stopped (tty output)",
        "Urgent I/O condition",
        "CPU time limit exceeded",
        "File size limit exceeded",
        "Virtual timer expired",
        "Profiling timer expired",
        "Window changed",
        "I/O possible",
        "Power failure",
        "Bad system call",
    ];
    match sig {
        0..=31 => Some(CLASSIC[sig as usize].to_string()),
        // glibc keeps 32 and 33 for its threads.
        32 | 33 => Some(format!("Unknown signal {sig}")),
        34..=64 => Some(format!("Real-time signal {}", sig - 34)),
        _ => None,
    }
}

/// The name a syscall is known by, from the name of its kernel entry point
/// (what the syscall tables hold): `newstat` is `stat`.
fn syscall_display_name(entry: &str) -> &str {
    match entry {
        "newstat" => "stat",
        "newfstat" => "fstat",
        "newlstat" => "lstat",
        "newuname" => "uname",
        "sendfile64" => "sendfile",
        "umount" => "umount2",
        "arm64_personality" => "personality",
        "fadvise64_64" => "fadvise64",
        other => other,
    }
}

impl Lowerer<'_, '_> {
    /// `(number, name)` of every entry of `table`; `None` when the target
    /// has no syscall table.
    fn name_entries(&self, table: NameTable) -> Option<Vec<(u32, String)>> {
        match table {
            NameTable::Syscalls => Some(
                self.g
                    .target
                    .syscall_abi()?
                    .entries()
                    .map(|(nr, name)| (nr, syscall_display_name(name).to_string()))
                    .collect(),
            ),
            NameTable::Signals => Some(
                (0..=64)
                    .filter_map(|s| Some((s, signal_description(s)?)))
                    .collect(),
            ),
        }
    }

    /// The name of the number in `v` from `table` as a string, `unknown`
    /// for numbers it has none for.
    fn name_lookup(&mut self, table: NameTable, v: TVal, unknown: &str) -> Res<TVal> {
        let entries = self.name_entries(table).unwrap_or_default();
        let longest = entries.iter().map(|(_, n)| n.len()).max().unwrap_or(0);
        let cap = align8(longest.max(unknown.len()) as u32 + 1);
        let max = entries.iter().map(|(nr, _)| *nr).max().unwrap_or(0);
        let dst = self.alloc_mem(cap, false);
        let ty = Ty::Str { cap };
        if self.g.discovering {
            self.release(v);
            return Ok(TVal::new(Val::Mem(dst), ty));
        }
        let which = SysMap::Names {
            table,
            value_size: cap,
            max_entries: max + 1,
        };
        let fresh = !self.g.obj_map_ids.contains_key(&which);
        let map = self.g.obj_map(which);
        if fresh {
            let symbol = self.g.obj_maps[map].name.clone();
            self.g
                .map_entries
                .extend(entries.into_iter().map(|(nr, name)| {
                    let mut value = name.into_bytes();
                    value.resize(cap as usize, 0);
                    (symbol.clone(), nr.to_ne_bytes().to_vec(), value)
                }));
        }
        let key = self.alloc_mem(8, false);
        let missing = self.e.new_label();
        let done = self.e.new_label();
        self.load_reg(&v, Reg::R0);
        self.release(v);
        // Negative numbers are out of range too, as unsigned.
        self.e.jump_if_imm(JmpOp::Jgt, Reg::R0, max as i32, missing);
        self.e
            .push(Insn::store(Size::DW, key.reg(), key.off16(), Reg::R0));
        self.e.load_map(Reg::R1, map);
        self.addr_of(key, Reg::R2);
        self.e.push(Insn::call(helper::MAP_LOOKUP_ELEM));
        self.e.jump_if_imm(JmpOp::Jeq, Reg::R0, 0, missing);
        self.e.push(Insn::mov64_reg(Reg::R1, Reg::R0));
        // An empty entry is a number without a name.
        self.e.push(Insn::load(Size::DW, Reg::R0, Reg::R1, 0));
        self.e.jump_if_imm(JmpOp::Jeq, Reg::R0, 0, missing);
        self.copy_from_ptr(dst, Reg::R1, cap);
        self.e.jump(done);
        self.e.bind(missing);
        self.write_bytes(dst, unknown.as_bytes(), cap);
        self.e.bind(done);
        Ok(TVal::new(Val::Mem(dst), ty))
    }

    /// `syscall_name(nr)`: the name of syscall number `nr` on this
    /// architecture.
    pub(super) fn syscall_name(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "syscall_name(number)";
        one_arg("syscall_name", args, expr, usage)?;
        if self.g.target.syscall_abi().is_none() {
            return Err(Diagnostic::error(
                expr.span,
                format!(
                    "syscall_name(): ferret has no syscall table for {}",
                    std::env::consts::ARCH
                ),
            )
            .with_label("no syscall names here")
            .with_help("print the number instead"));
        }
        let v = self.eval_int_arg(&args[0], "syscall_name", usage)?;
        self.name_lookup(NameTable::Syscalls, v, UNKNOWN_SYSCALL)
    }

    /// `signal_name(sig)`: the description of signal `sig`.
    pub(super) fn signal_name(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "signal_name(number)";
        one_arg("signal_name", args, expr, usage)?;
        let v = self.eval_int_arg(&args[0], "signal_name", usage)?;
        self.name_lookup(NameTable::Signals, v, UNKNOWN_SIGNAL)
    }

    /// `cgroup_path(id[, "filter"])`: the cgroup's path, found when printed.
    pub(super) fn cgroup_path(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "cgroup_path(cgroup_id[, \"hierarchy filter\"])";
        if !(1..=2).contains(&args.len()) {
            return Err(Diagnostic::error(
                expr.span,
                format!("cgroup_path() takes 1 or 2 arguments, {} given", args.len()),
            )
            .with_label("wrong number of arguments")
            .with_help(format!("usage: {usage}")));
        }
        let filter = match args.get(1).map(|e| &e.kind) {
            None => "*".to_string(),
            Some(ExprKind::Str(s)) => String::from_utf8_lossy(s).into_owned(),
            Some(_) => {
                return Err(Diagnostic::error(
                    args[1].span,
                    "cgroup_path()'s filter must be a string literal",
                )
                .with_label("not a string literal")
                .with_help(format!("usage: {usage}")));
            }
        };
        let v = self.eval_int_arg(&args[0], "cgroup_path", usage)?;
        let v = self.owned(v);
        Ok(TVal::new(v.val, Ty::CgroupPath { filter }))
    }

    /// `nsecs(clock)`, `pid(ns)` and `tid(ns)`.
    pub(super) fn namespaced_builtin(
        &mut self,
        name: &str,
        args: &[Expr],
        expr: &Expr,
    ) -> Res<TVal> {
        let (usage, modes): (&str, &[&str]) = match name {
            "nsecs" => (
                "nsecs or nsecs(monotonic|boot|tai|sw_tai)",
                &["monotonic", "boot", "tai", "sw_tai"],
            ),
            "pid" => ("pid or pid(curr_ns|init)", &["curr_ns", "init"]),
            _ => ("tid or tid(curr_ns|init)", &["curr_ns", "init"]),
        };
        one_arg(name, args, expr, usage)?;
        let mode = match &args[0].kind {
            ExprKind::Ident(m) if modes.contains(&m.as_str()) => m.as_str(),
            _ => {
                let mut d = Diagnostic::error(
                    args[0].span,
                    format!("{name}() takes one of: {}", modes.join(", ")),
                )
                .with_label("unknown mode");
                if let ExprKind::Ident(m) = &args[0].kind
                    && let Some(best) = ferret_syntax::diag::closest(m, modes.iter().copied())
                {
                    d = d.with_help(format!("did you mean '{best}'?"));
                } else {
                    d = d.with_help(format!("usage: {usage}"));
                }
                return Err(d);
            }
        };
        match (name, mode) {
            ("nsecs", "monotonic") => Ok(self.helper_result(helper::KTIME_GET_NS, Ty::U64)),
            ("nsecs", "boot") => Ok(self.helper_result(helper::KTIME_GET_BOOT_NS, Ty::U64)),
            ("nsecs", "tai") => Ok(self.helper_result(helper::KTIME_GET_TAI_NS, Ty::U64)),
            ("nsecs", _) => {
                // TAI as the boot clock plus the offset measured at start,
                // for kernels without bpf_ktime_get_tai_ns.
                let Some(offset) = self.g.target.tai_offset_ns() else {
                    return Err(Diagnostic::error(
                        args[0].span,
                        "nsecs(sw_tai): the TAI clock's offset is unknown here",
                    )
                    .with_label("no TAI offset")
                    .with_help("use nsecs(tai)"));
                };
                self.e.push(Insn::call(helper::KTIME_GET_BOOT_NS));
                self.e.alu_imm(AluOp::Add, Reg::R0, offset as i64, Reg::R1);
                Ok(self.temp_from(Reg::R0, Ty::U64))
            }
            (_, "init") => self.task_id(name == "pid", true),
            _ => self.task_id(name == "pid", false),
        }
    }

    fn helper_result(&mut self, id: i32, ty: Ty) -> TVal {
        self.e.push(Insn::call(id));
        self.temp_from(Reg::R0, ty)
    }

    /// `pid` (`tgid`) or `tid` of the current task, as the initial pid
    /// namespace numbers them (`init`), or as ferret's own namespace does,
    /// which is bpftrace's default.
    pub(super) fn task_id(&mut self, pid: bool, init: bool) -> Res<TVal> {
        match self.g.target.pid_namespace() {
            Some((dev, ino)) if !init => {
                // struct bpf_pidns_info { u32 pid; u32 tgid; }
                let info = self.alloc_mem(8, true);
                self.e.mov_imm(Reg::R1, dev as i64);
                self.e.mov_imm(Reg::R2, ino as i64);
                self.addr_of(info, Reg::R3);
                self.e.push(Insn::mov64_imm(Reg::R4, 8));
                self.e.push(Insn::call(helper::GET_NS_CURRENT_PID_TGID));
                let field = info.at(if pid { 4 } else { 0 });
                self.e
                    .push(Insn::load(Size::W, Reg::R0, field.reg(), field.off16()));
            }
            _ => {
                self.e.push(Insn::call(helper::GET_CURRENT_PID_TGID));
                if pid {
                    self.e.push(Insn::alu64_imm(AluOp::Rsh, Reg::R0, 32));
                } else {
                    self.narrow(Reg::R0, 4, false);
                }
            }
        }
        Ok(self.temp_from(Reg::R0, Ty::U32))
    }
}

fn one_arg(name: &str, args: &[Expr], expr: &Expr, usage: &str) -> Res<()> {
    if args.len() == 1 {
        return Ok(());
    }
    Err(Diagnostic::error(
        expr.span,
        format!("{name}() takes 1 argument, {} given", args.len()),
    )
    .with_label("wrong number of arguments")
    .with_help(format!("usage: {usage}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_descriptions_follow_strsignal() {
        assert_eq!(signal_description(2).as_deref(), Some("Interrupt"));
        assert_eq!(signal_description(9).as_deref(), Some("Killed"));
        assert_eq!(signal_description(33).as_deref(), Some("Unknown signal 33"));
        assert_eq!(
            signal_description(34).as_deref(),
            Some("Real-time signal 0")
        );
        assert_eq!(
            signal_description(64).as_deref(),
            Some("Real-time signal 30")
        );
        assert_eq!(signal_description(65), None);
    }

    #[test]
    fn syscalls_are_named_as_users_know_them() {
        assert_eq!(syscall_display_name("newstat"), "stat");
        assert_eq!(syscall_display_name("openat"), "openat");
    }
}
