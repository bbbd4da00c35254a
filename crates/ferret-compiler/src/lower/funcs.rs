//! bpftrace's library functions beyond the core ones in `calls.rs`:
//! strings (`strlen`, `strncmp`, `strcontains`, `buf`, `join`), addresses
//! (`ntop`, `pton`, `macaddr`), time (`strftime`, `time`), maps
//! (`has_key`), compile-time values (`sizeof`, `kaddr`, `cgroupid`,
//! `is_*`), and the unsafe ones (`signal`, `system`).

use std::ops::RangeInclusive;

use ferret_bpf::insn::helper;
use ferret_bpf::{AluOp, Insn, JmpOp, Reg, Size};
use ferret_syntax::Diagnostic;
use ferret_syntax::ast::{Expr, ExprKind};

use super::expr::Res;
use super::{Lowerer, Place, TVal, Val};
use crate::program::{Attach, EVENT_HEADER, EventKind, JOIN_ARG_SIZE, JOIN_ARGS};
use crate::types::{Ty, align8};

const AF_INET: i64 = 2;
/// Largest haystack × needle capacity searched inline, without `bpf_loop`.
const INLINE_SEARCH: u64 = 1024;
const AF_INET6: i64 = 10;

/// Signal names `signal()` accepts, with their numbers on Linux.
const SIGNALS: &[(&str, i32)] = &[
    ("SIGHUP", 1),
    ("SIGINT", 2),
    ("SIGQUIT", 3),
    ("SIGILL", 4),
    ("SIGTRAP", 5),
    ("SIGABRT", 6),
    ("SIGBUS", 7),
    ("SIGFPE", 8),
    ("SIGKILL", 9),
    ("SIGUSR1", 10),
    ("SIGSEGV", 11),
    ("SIGUSR2", 12),
    ("SIGPIPE", 13),
    ("SIGALRM", 14),
    ("SIGTERM", 15),
    ("SIGSTKFLT", 16),
    ("SIGCHLD", 17),
    ("SIGCONT", 18),
    ("SIGSTOP", 19),
    ("SIGTSTP", 20),
    ("SIGTTIN", 21),
    ("SIGTTOU", 22),
    ("SIGURG", 23),
    ("SIGXCPU", 24),
    ("SIGXFSZ", 25),
    ("SIGVTALRM", 26),
    ("SIGPROF", 27),
    ("SIGWINCH", 28),
    ("SIGIO", 29),
    ("SIGPWR", 30),
    ("SIGSYS", 31),
];

/// `name() takes N arguments, M given` with the usage.
pub(super) fn arity(
    name: &str,
    args: &[Expr],
    expr: &Expr,
    n: RangeInclusive<usize>,
    usage: &str,
) -> Res<()> {
    if n.contains(&args.len()) {
        return Ok(());
    }
    Err(Diagnostic::error(
        expr.span,
        format!("{name}() {}, {} given", super::calls::takes(&n), args.len()),
    )
    .with_label("wrong number of arguments")
    .with_help(format!("usage: {usage}")))
}

fn literal_str(e: &Expr) -> Option<&[u8]> {
    match &e.kind {
        ExprKind::Str(s) => Some(s),
        _ => None,
    }
}

fn literal_int(e: &Expr) -> Option<i64> {
    match &e.kind {
        ExprKind::Int(v) => Some(*v as i64),
        ExprKind::Unary {
            op: ferret_syntax::ast::UnaryOp::Neg,
            expr,
        } => match expr.kind {
            ExprKind::Int(v) => Some(-(v as i64)),
            _ => None,
        },
        _ => None,
    }
}

fn wrong_type(e: &Expr, func: &str, want: &str, found: &Ty, usage: &str) -> Diagnostic {
    Diagnostic::error(
        e.span,
        format!("{func}() takes {want} here, found {}", found.describe()),
    )
    .with_label(format!("not {want}"))
    .with_help(format!("usage: {usage}"))
}

/// A string literal argument, or an error naming the function.
pub(super) fn need_literal<'e>(e: &'e Expr, func: &str, usage: &str) -> Res<&'e [u8]> {
    literal_str(e).ok_or_else(|| {
        Diagnostic::error(e.span, format!("{func}() takes a string literal here"))
            .with_label("not a string literal")
            .with_help(format!("usage: {usage}"))
    })
}

impl Lowerer<'_, '_> {
    /// Lowers a call to one of the functions of this module; `None` when
    /// `name` is not one of them.
    pub fn library_call(&mut self, name: &str, args: &[Expr], expr: &Expr) -> Option<Res<TVal>> {
        let r = match name {
            "strlen" => self.strlen(args, expr),
            "strncmp" => self.strncmp(args, expr),
            "strcontains" => self.strcontains(args, expr),
            "buf" => self.buf(args, expr),
            "join" => self.join(args, expr),
            "ntop" => self.ntop(args, expr),
            "pton" => self.pton(args, expr),
            "macaddr" => self.macaddr(args, expr),
            "strftime" => self.strftime(args, expr),
            "time" => self.time(args, expr),
            "strerror" => self.int_as(args, expr, name, Ty::Errno, "strerror(errno)"),
            "username" => arity(name, args, expr, 0..=0, "username")
                .and_then(|()| self.builtin("uid", expr))
                .map(|v| TVal::new(v.val, Ty::Username)),
            "has_key" => self.has_key(args, expr),
            "sizeof" => self.sizeof(args, expr),
            "kaddr" => self.kaddr(args, expr),
            "cgroupid" => self.cgroupid(args, expr),
            "kptr" | "uptr" => self.mark_space(name, args, expr),
            "signal" | "signal_thread" => self.signal(name, args, expr),
            "strstr" => self.strstr(args, expr),
            "str_concat" => self.str_concat(args, expr),
            "memcmp" => self.memcmp(args, expr),
            "syscall_name" => self.syscall_name(args, expr),
            "signal_name" => self.signal_name(args, expr),
            "cgroup_path" => self.cgroup_path(args, expr),
            "nsecs" | "pid" | "tid" if !args.is_empty() => {
                self.namespaced_builtin(name, args, expr)
            }
            "system" => self.system(args, expr),
            "cat" => self.event_call(EventKind::Cat, name, args, expr),
            "errorf" => self.event_call(EventKind::Errorf, name, args, expr),
            "warnf" => self.event_call(EventKind::Warnf, name, args, expr),
            "bswap" => self.bswap(args, expr),
            "jiffies" => arity(name, args, expr, 0..=0, "jiffies")
                .map(|()| self.call_value(helper::JIFFIES64, Ty::U64)),
            "numaid" => arity(name, args, expr, 0..=0, "numaid")
                .map(|()| self.call_value(helper::GET_NUMA_NODE_ID, Ty::U32)),
            "probetype" => arity(name, args, expr, 0..=0, "probetype").map(|()| {
                let kind = match self.probe.attach {
                    Attach::Begin | Attach::End => "special",
                    _ => self.probe_kind(),
                };
                self.string_literal(kind.as_bytes())
            }),
            "is_integer"
            | "is_unsigned_integer"
            | "is_str"
            | "is_array"
            | "is_ptr"
            | "is_literal" => self.type_predicate(name, args, expr),
            "is_err" => self.is_err(args, expr),
            "static_assert" => self.static_assert(args, expr),
            "assert" => self.assert(args, expr),
            "len" => self.map_len(args, expr),
            _ => return None,
        };
        Some(r)
    }

    fn call_value(&mut self, id: i32, ty: Ty) -> TVal {
        self.e.push(Insn::call(id));
        self.temp_from(Reg::R0, ty)
    }

    fn none() -> TVal {
        TVal::new(Val::Imm(0), Ty::None)
    }

    /// A string argument.
    fn string_arg(&mut self, e: &Expr, func: &str, usage: &str) -> Res<(Place, u32)> {
        let v = self.eval(e)?;
        match (&v.ty, &v.val) {
            (Ty::Str { cap }, Val::Mem(p)) => Ok((*p, *cap)),
            (Ty::Array { elem, len }, Val::Mem(p)) if elem.elem_size() == 1 => Ok((*p, *len)),
            _ => Err(wrong_type(e, func, "a string", &v.ty, usage)),
        }
    }

    /// `r0 = byte at (address in base) + r_index`, through r2.
    fn load_byte_at(&mut self, base: Reg, index: Reg, out: Reg) {
        self.e.push(Insn::mov64_reg(Reg::R2, base));
        self.e.push(Insn::alu64_reg(AluOp::Add, Reg::R2, index));
        self.e.push(Insn::load(Size::B, out, Reg::R2, 0));
    }

    /// `strlen(s)`: bytes before the first NUL, at most the capacity.
    fn strlen(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "strlen(string)";
        arity("strlen", args, expr, 1..=1, usage)?;
        let (p, cap) = self.string_arg(&args[0], "strlen", usage)?;
        let top = self.e.new_label();
        let done = self.e.new_label();
        self.addr_of(p, Reg::R1);
        self.e.push(Insn::mov64_imm(Reg::R0, 0));
        self.e.bind(top);
        self.e.jump_if_imm(JmpOp::Jge, Reg::R0, cap as i32, done);
        self.load_byte_at(Reg::R1, Reg::R0, Reg::R3);
        self.e.jump_if_imm(JmpOp::Jeq, Reg::R3, 0, done);
        self.e.push(Insn::alu64_imm(AluOp::Add, Reg::R0, 1));
        self.e.jump(top);
        self.e.bind(done);
        Ok(self.temp_from(Reg::R0, Ty::U64))
    }

    /// `strncmp(a, b, n)`: 0 when the first `n` bytes (up to a NUL) are
    /// equal, else 1. Strings are zero-padded after their NUL, so comparing
    /// whole words up to the shorter capacity is exact.
    fn strncmp(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "strncmp(string, string, length)";
        arity("strncmp", args, expr, 3..=3, usage)?;
        let Some(n) = literal_int(&args[2]).filter(|n| *n >= 0) else {
            return Err(Diagnostic::error(
                args[2].span,
                "strncmp()'s length must be a non-negative integer literal",
            )
            .with_label("not a literal")
            .with_help(format!("usage: {usage}")));
        };
        let (a, cap_a) = self.string_arg(&args[0], "strncmp", usage)?;
        let (b, cap_b) = self.string_arg(&args[1], "strncmp", usage)?;
        let n = (n as u32).min(cap_a.min(cap_b));
        let differ = self.e.new_label();
        let done = self.e.new_label();
        let mut i = 0;
        while i < n {
            let (x, y) = (a.at(i), b.at(i));
            self.e
                .push(Insn::load(Size::DW, Reg::R0, x.reg(), x.off16()));
            self.e
                .push(Insn::load(Size::DW, Reg::R1, y.reg(), y.off16()));
            let rest = n - i;
            if rest < 8 {
                // Only the low `rest` bytes count (little-endian).
                let shift = 64 - 8 * rest as i32;
                for r in [Reg::R0, Reg::R1] {
                    self.e.push(Insn::alu64_imm(AluOp::Lsh, r, shift));
                }
            }
            self.e.jump_if_reg(JmpOp::Jne, Reg::R0, Reg::R1, differ);
            i += 8;
        }
        self.e.push(Insn::mov64_imm(Reg::R0, 0));
        self.e.jump(done);
        self.e.bind(differ);
        self.e.push(Insn::mov64_imm(Reg::R0, 1));
        self.e.bind(done);
        Ok(self.temp_from(Reg::R0, Ty::I64))
    }

    /// `strcontains(haystack, needle)`: as bpftrace's `strstr() >= 0`.
    fn strcontains(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "strcontains(haystack, needle)";
        arity("strcontains", args, expr, 2..=2, usage)?;
        let (h, cap_h) = self.string_arg(&args[0], "strcontains", usage)?;
        let (n, cap_n) = self.string_arg(&args[1], "strcontains", usage)?;
        self.search(h, cap_h, n, cap_n)?;
        self.e.push(Insn::jmp_imm(JmpOp::Jsge, Reg::R0, 0, 2));
        self.e.push(Insn::mov64_imm(Reg::R0, 0));
        self.e.push(Insn::ja(1));
        self.e.push(Insn::mov64_imm(Reg::R0, 1));
        Ok(self.temp_from(Reg::R0, Ty::Bool))
    }

    /// `strstr(haystack, needle)`: the index of the needle's first
    /// occurrence, or -1. An empty needle is found at 0.
    pub(super) fn strstr(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "strstr(haystack, needle)";
        arity("strstr", args, expr, 2..=2, usage)?;
        let (h, cap_h) = self.string_arg(&args[0], "strstr", usage)?;
        let (n, cap_n) = self.string_arg(&args[1], "strstr", usage)?;
        self.search(h, cap_h, n, cap_n)?;
        Ok(self.temp_from(Reg::R0, Ty::I64))
    }

    /// r0 = where the string at `n` first occurs in the one at `h`, or -1:
    /// a search bounded by both capacities. Small searches are inline; a
    /// long haystack is walked by `bpf_loop`, one position per call, as
    /// the verifier follows at most 8192 jumps down one path.
    fn search(&mut self, h: Place, cap_h: u32, n: Place, cap_n: u32) -> Res<()> {
        if u64::from(cap_h) * u64::from(cap_n) <= INLINE_SEARCH {
            self.search_inline(h, cap_h, n, cap_n);
            return Ok(());
        }
        let result = self.alloc_mem(8, false);
        self.e
            .push(Insn::store_imm(Size::DW, result.reg(), result.off16(), -1));
        self.bounded_loop(cap_h, |l, next, stop| {
            // r1 is the position in the haystack; r1 = haystack,
            // r4 = needle, r5 = i, r3 = j.
            let found = l.e.new_label();
            let inner = l.e.new_label();
            let mismatch = l.e.new_label();
            l.e.push(Insn::mov64_reg(Reg::R5, Reg::R1));
            l.e.jump_if_imm(JmpOp::Jge, Reg::R5, cap_h as i32, stop);
            l.addr_of(h, Reg::R1);
            l.addr_of(n, Reg::R4);
            l.e.push(Insn::mov64_imm(Reg::R3, 0));
            l.e.bind(inner);
            l.e.jump_if_imm(JmpOp::Jge, Reg::R3, cap_n as i32, found);
            l.load_byte_at(Reg::R4, Reg::R3, Reg::R0);
            l.e.jump_if_imm(JmpOp::Jeq, Reg::R0, 0, found);
            l.e.push(Insn::mov64_reg(Reg::R2, Reg::R5));
            l.e.push(Insn::alu64_reg(AluOp::Add, Reg::R2, Reg::R3));
            l.e.jump_if_imm(JmpOp::Jge, Reg::R2, cap_h as i32, stop);
            l.e.push(Insn::alu64_reg(AluOp::Add, Reg::R2, Reg::R1));
            l.e.push(Insn::load(Size::B, Reg::R2, Reg::R2, 0));
            l.e.jump_if_reg(JmpOp::Jne, Reg::R2, Reg::R0, mismatch);
            l.e.push(Insn::alu64_imm(AluOp::Add, Reg::R3, 1));
            l.e.jump(inner);
            l.e.bind(mismatch);
            // The haystack ends at its NUL.
            l.load_byte_at(Reg::R1, Reg::R5, Reg::R0);
            l.e.jump_if_imm(JmpOp::Jeq, Reg::R0, 0, stop);
            l.e.jump(next);
            l.e.bind(found);
            l.e.push(Insn::store(Size::DW, result.reg(), result.off16(), Reg::R5));
            l.e.jump(stop);
        })?;
        self.e
            .push(Insn::load(Size::DW, Reg::R0, result.reg(), result.off16()));
        Ok(())
    }

    fn search_inline(&mut self, h: Place, cap_h: u32, n: Place, cap_n: u32) {
        // r6.. are not free here necessarily; the search uses r0-r5 only:
        // r1 = haystack, r4 = needle, r5 = i, r3 = j.
        let found = self.e.new_label();
        let missing = self.e.new_label();
        let done = self.e.new_label();
        let outer = self.e.new_label();
        let inner = self.e.new_label();
        let next = self.e.new_label();
        self.addr_of(h, Reg::R1);
        self.addr_of(n, Reg::R4);
        self.e.push(Insn::mov64_imm(Reg::R5, 0));
        self.e.bind(outer);
        self.e
            .jump_if_imm(JmpOp::Jge, Reg::R5, cap_h as i32, missing);
        self.e.push(Insn::mov64_imm(Reg::R3, 0));
        self.e.bind(inner);
        self.e.jump_if_imm(JmpOp::Jge, Reg::R3, cap_n as i32, found);
        // r0 = needle[j]; a NUL ends the needle: found.
        self.load_byte_at(Reg::R4, Reg::R3, Reg::R0);
        self.e.jump_if_imm(JmpOp::Jeq, Reg::R0, 0, found);
        // k = i + j, within the haystack.
        self.e.push(Insn::mov64_reg(Reg::R2, Reg::R5));
        self.e.push(Insn::alu64_reg(AluOp::Add, Reg::R2, Reg::R3));
        self.e
            .jump_if_imm(JmpOp::Jge, Reg::R2, cap_h as i32, missing);
        self.e.push(Insn::alu64_reg(AluOp::Add, Reg::R2, Reg::R1));
        self.e.push(Insn::load(Size::B, Reg::R2, Reg::R2, 0));
        self.e.jump_if_reg(JmpOp::Jne, Reg::R2, Reg::R0, next);
        self.e.push(Insn::alu64_imm(AluOp::Add, Reg::R3, 1));
        self.e.jump(inner);
        self.e.bind(next);
        // The haystack ends at its NUL.
        self.load_byte_at(Reg::R1, Reg::R5, Reg::R0);
        self.e.jump_if_imm(JmpOp::Jeq, Reg::R0, 0, missing);
        self.e.push(Insn::alu64_imm(AluOp::Add, Reg::R5, 1));
        self.e.jump(outer);
        self.e.bind(found);
        self.e.push(Insn::mov64_reg(Reg::R0, Reg::R5));
        self.e.jump(done);
        self.e.bind(missing);
        self.e.push(Insn::mov64_imm(Reg::R0, -1));
        self.e.bind(done);
    }

    /// `str_concat(a, b)`: a new string holding `a` then `b`. `b` is read
    /// (as a string, to its NUL) right after `a`'s last byte, into a
    /// string with room for both.
    pub(super) fn str_concat(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "str_concat(string, string)";
        arity("str_concat", args, expr, 2..=2, usage)?;
        let (a, cap_a) = self.string_arg(&args[0], "str_concat", usage)?;
        let (b, cap_b) = self.string_arg(&args[1], "str_concat", usage)?;
        let cap = align8(cap_a + cap_b);
        let dst = self.alloc_mem(cap, true);
        // a's bytes, then r0 = strlen(a) (at most cap_a).
        let top = self.e.new_label();
        let done = self.e.new_label();
        self.addr_of(a, Reg::R1);
        self.addr_of(dst, Reg::R4);
        self.e.push(Insn::mov64_imm(Reg::R0, 0));
        self.e.bind(top);
        self.e.jump_if_imm(JmpOp::Jge, Reg::R0, cap_a as i32, done);
        self.load_byte_at(Reg::R1, Reg::R0, Reg::R3);
        self.e.jump_if_imm(JmpOp::Jeq, Reg::R3, 0, done);
        self.e.push(Insn::mov64_reg(Reg::R2, Reg::R4));
        self.e.push(Insn::alu64_reg(AluOp::Add, Reg::R2, Reg::R0));
        self.e.push(Insn::store(Size::B, Reg::R2, 0, Reg::R3));
        self.e.push(Insn::alu64_imm(AluOp::Add, Reg::R0, 1));
        self.e.jump(top);
        self.e.bind(done);
        // dst + len(a) has room for cap_b bytes, NUL included.
        self.e.push(Insn::mov64_reg(Reg::R1, Reg::R4));
        self.e.push(Insn::alu64_reg(AluOp::Add, Reg::R1, Reg::R0));
        self.e.push(Insn::mov64_imm(Reg::R2, cap_b as i32));
        self.addr_of(b, Reg::R3);
        self.e.push(Insn::call(helper::PROBE_READ_KERNEL_STR));
        Ok(TVal::new(Val::Mem(dst), Ty::Str { cap }))
    }

    /// `memcmp(a, b, n)`: 0 when the first `n` bytes of `a` and `b` are
    /// equal, else the difference of the first bytes that differ (as
    /// signed chars, like bpftrace's). `n` is bounded by both sizes.
    pub(super) fn memcmp(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "memcmp(left, right, count)";
        arity("memcmp", args, expr, 3..=3, usage)?;
        let (a, size_a) = self.memory_arg(&args[0], usage)?;
        let (b, size_b) = self.memory_arg(&args[1], usage)?;
        if literal_int(&args[2]).is_some_and(|n| n < 0) {
            return Err(
                Diagnostic::error(args[2].span, "memcmp()'s count is negative")
                    .with_label("negative")
                    .with_help(format!("usage: {usage}")),
            );
        }
        let count = self.eval_int_arg(&args[2], "memcmp", usage)?;
        let limit = size_a.min(size_b) as i32;
        // r5 = min(count, limit); r4 = i
        self.load_reg(&count, Reg::R5);
        self.release(count);
        self.e.push(Insn::jmp_imm(JmpOp::Jle, Reg::R5, limit, 1));
        self.e.push(Insn::mov64_imm(Reg::R5, limit));
        self.addr_of(a, Reg::R1);
        self.addr_of(b, Reg::R3);
        self.e.push(Insn::mov64_imm(Reg::R4, 0));
        let top = self.e.new_label();
        let same = self.e.new_label();
        let done = self.e.new_label();
        self.e.bind(top);
        self.e.jump_if_reg(JmpOp::Jge, Reg::R4, Reg::R5, same);
        self.e.jump_if_imm(JmpOp::Jge, Reg::R4, limit, same);
        self.load_byte_at(Reg::R1, Reg::R4, Reg::R0);
        self.narrow(Reg::R0, 1, true);
        self.e.push(Insn::mov64_reg(Reg::R2, Reg::R3));
        self.e.push(Insn::alu64_reg(AluOp::Add, Reg::R2, Reg::R4));
        self.e.push(Insn::load(Size::B, Reg::R2, Reg::R2, 0));
        self.narrow(Reg::R2, 1, true);
        self.e.push(Insn::alu64_reg(AluOp::Sub, Reg::R0, Reg::R2));
        self.e.jump_if_imm(JmpOp::Jne, Reg::R0, 0, done);
        self.e.push(Insn::alu64_imm(AluOp::Add, Reg::R4, 1));
        self.e.jump(top);
        self.e.bind(same);
        self.e.push(Insn::mov64_imm(Reg::R0, 0));
        self.e.bind(done);
        Ok(self.temp_from(
            Reg::R0,
            Ty::Int {
                bytes: 4,
                signed: true,
            },
        ))
    }

    /// A value's bytes in memory and how many there are: composites where
    /// they are, integers stored at their width.
    fn memory_arg(&mut self, e: &Expr, usage: &str) -> Res<(Place, u32)> {
        let v = self.eval(e)?;
        match (&v.ty, &v.val) {
            (Ty::None, _) => Err(Diagnostic::error(e.span, "this expression has no value")
                .with_label("nothing to compare")
                .with_help(format!("usage: {usage}"))),
            (Ty::Str { cap }, Val::Mem(p)) => Ok((*p, *cap)),
            (ty, Val::Mem(p)) if !ty.is_scalar() => Ok((*p, ty.size())),
            (ty, _) => {
                let size = ty.elem_size();
                let place = self.alloc_mem(8, false);
                self.write_as(place, &v, &Ty::U64);
                self.release(v);
                Ok((place, size))
            }
        }
    }

    /// Reads `len` (a register, already bounded by the caller to
    /// `0..=cap`) bytes from the address in r3 into `dst`: kernel or user
    /// memory as `ptr` says. Clobbers r0-r5.
    fn probe_read_into(&mut self, dst: Place, ptr: &TVal, user: bool) {
        self.load_reg(ptr, Reg::R3);
        self.addr_of(dst, Reg::R1);
        self.e.push(Insn::call(if user {
            helper::PROBE_READ_USER
        } else {
            helper::PROBE_READ_KERNEL
        }));
    }

    /// `buf(p[, n])`: `n` bytes (at most `max_strlen`) read from `p`, or a
    /// whole array value.
    fn buf(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "buf(pointer, length) or buf(array)";
        arity("buf", args, expr, 1..=2, usage)?;
        let src = self.eval(&args[0])?;
        let max = self.g.opts.max_strlen;
        if let (Ty::Array { .. } | Ty::Str { .. }, Val::Mem(from)) = (&src.ty, &src.val) {
            let size = match &src.ty {
                Ty::Str { cap } => *cap,
                other => other.size(),
            };
            let cap = match args.get(1).map(literal_int) {
                None => size,
                Some(Some(n)) if n >= 0 => (n as u32).min(size),
                Some(_) => {
                    return Err(Diagnostic::error(
                        args[1].span,
                        "buf()'s length must be an integer literal for an array",
                    )
                    .with_label("not a literal"));
                }
            };
            let place = self.alloc_mem(8 + cap, true);
            self.e.push(Insn::store_imm(
                Size::DW,
                place.reg(),
                place.off16(),
                cap as i32,
            ));
            self.copy_mem(place.at(8), *from, cap.min(align8(size)));
            self.release(src);
            return Ok(TVal::new(Val::Mem(place), Ty::Buffer { cap }));
        }
        if !src.ty.is_integer() {
            return Err(wrong_type(&args[0], "buf", "a pointer", &src.ty, usage));
        }
        let Some(len_expr) = args.get(1) else {
            return Err(
                Diagnostic::error(expr.span, "buf() of a pointer needs a length")
                    .with_label("length missing")
                    .with_help(format!("usage: {usage}")),
            );
        };
        let cap = match literal_int(len_expr) {
            Some(n) if n >= 0 => (n as u32).min(max),
            Some(_) => {
                return Err(
                    Diagnostic::error(len_expr.span, "buf()'s length is negative")
                        .with_label("negative"),
                );
            }
            None => max,
        };
        let len = self.eval_int_arg(len_expr, "buf", usage)?;
        let place = self.alloc_mem(8 + cap, true);
        // len clamped to [0, cap] for the verifier.
        self.load_reg(&len, Reg::R2);
        self.release(len);
        self.e
            .push(Insn::jmp_imm(JmpOp::Jle, Reg::R2, cap as i32, 1));
        self.e.push(Insn::mov64_imm(Reg::R2, cap as i32));
        self.e
            .push(Insn::store(Size::DW, place.reg(), place.off16(), Reg::R2));
        let user = self.reads_user(&src);
        self.probe_read_into(place.at(8), &src, user);
        self.release(src);
        Ok(TVal::new(Val::Mem(place), Ty::Buffer { cap }))
    }

    /// `join(argv[, sep])`: the strings of a NULL-terminated `char **`,
    /// printed by user space joined with `sep`.
    fn join(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "join(argv[, separator])";
        arity("join", args, expr, 1..=2, usage)?;
        let sep = match args.get(1) {
            Some(e) => need_literal(e, "join", usage)?.to_vec(),
            None => b" ".to_vec(),
        };
        let argv = self.eval(&args[0])?;
        if !argv.ty.is_integer() {
            return Err(wrong_type(&args[0], "join", "a pointer", &argv.ty, usage));
        }
        let argv = self.owned(argv);
        let user = self.reads_user(&argv);
        let id = self.intern(Interned::JoinSeparator, &sep);
        let size = EVENT_HEADER + JOIN_ARGS * JOIN_ARG_SIZE;
        let event = match self.join_buffer {
            Some(p) => p,
            None => {
                let p = self.alloc_mem(size, false);
                self.join_buffer = Some(p);
                p
            }
        };
        let header = (u64::from(id) << 32) | EventKind::Join as u64;
        self.e.push2(Insn::ld_imm64(Reg::R0, header));
        self.e
            .push(Insn::store(Size::DW, event.reg(), event.off16(), Reg::R0));
        let slot = self.alloc_mem(8, true);
        let (read, read_str) = if user {
            (helper::PROBE_READ_USER, helper::PROBE_READ_USER_STR)
        } else {
            (helper::PROBE_READ_KERNEL, helper::PROBE_READ_KERNEL_STR)
        };
        for i in 0..JOIN_ARGS {
            // slot = argv[i]; on failure the helper zeroes it.
            self.addr_of(slot, Reg::R1);
            self.e.push(Insn::mov64_imm(Reg::R2, 8));
            self.load_reg(&argv, Reg::R3);
            self.e
                .push(Insn::alu64_imm(AluOp::Add, Reg::R3, (i * 8) as i32));
            self.e.push(Insn::call(read));
            // The string, or zeroes where there is none.
            self.addr_of(event.at(EVENT_HEADER + i * JOIN_ARG_SIZE), Reg::R1);
            self.e.push(Insn::mov64_imm(Reg::R2, JOIN_ARG_SIZE as i32));
            self.e
                .push(Insn::load(Size::DW, Reg::R3, slot.reg(), slot.off16()));
            self.e.push(Insn::call(read_str));
        }
        self.release(argv);
        self.send_event(event, size);
        Ok(Self::none())
    }

    /// An id for `bytes` in one of the compiler's tables, stable across the
    /// discovery and final runs.
    fn intern(&mut self, table: Interned, bytes: &[u8]) -> u32 {
        let list = match table {
            Interned::TimeFormat => &mut self.g.time_formats,
            Interned::JoinSeparator => &mut self.g.join_separators,
        };
        match list.iter().position(|s| s == bytes) {
            Some(i) => i as u32,
            None => {
                list.push(bytes.to_vec());
                list.len() as u32 - 1
            }
        }
    }

    /// `ntop([af,] addr)`: an IPv4 or IPv6 address as text.
    fn ntop(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "ntop([af, ] address)";
        arity("ntop", args, expr, 1..=2, usage)?;
        let (af, addr_expr) = match args {
            [af, addr] => (Some(self.eval_int_arg(af, "ntop", usage)?), addr),
            [addr] => (None, addr),
            _ => unreachable!("arity checked"),
        };
        let addr = self.eval(addr_expr)?;
        let place = self.alloc_mem(24, true);
        let default_af = match (&addr.ty, &addr.val) {
            (t, _) if t.is_integer() => {
                self.load_reg(&addr, Reg::R0);
                let p = place.at(8);
                self.e
                    .push(Insn::store(Size::W, p.reg(), p.off16(), Reg::R0));
                AF_INET
            }
            (Ty::Array { elem, len }, Val::Mem(from))
                if elem.elem_size() == 1 && (*len == 4 || *len == 16) =>
            {
                self.copy_mem(place.at(8), *from, *len);
                if *len == 4 { AF_INET } else { AF_INET6 }
            }
            (Ty::Array { elem, len }, Val::Mem(from))
                if elem.elem_size() == 4 && (*len == 1 || *len == 4) =>
            {
                self.copy_mem(place.at(8), *from, *len * 4);
                if *len == 1 { AF_INET } else { AF_INET6 }
            }
            // Byte arrays from BTF (`__u8 u6_addr8[16]`) are strings, as in
            // bpftrace, whose ntop takes strings of 4 or 16 bytes; a string
            // keeps only its capacity (the length past its NUL, rounded up
            // to 8): 8 for 4 bytes, 24 for 16. A string literal is no address.
            (Ty::Str { cap }, Val::Mem(from))
                if (*cap == 8 || *cap == 24) && !matches!(addr_expr.kind, ExprKind::Str(_)) =>
            {
                let len = if *cap == 8 { 4 } else { 16 };
                self.copy_mem(place.at(8), *from, len);
                if len == 4 { AF_INET } else { AF_INET6 }
            }
            _ => {
                return Err(wrong_type(
                    addr_expr,
                    "ntop",
                    "an integer or a 4- or 16-byte array",
                    &addr.ty,
                    usage,
                ));
            }
        };
        self.release(addr);
        match af {
            Some(af) => {
                self.load_reg(&af, Reg::R0);
                self.release(af);
            }
            None => self.e.push(Insn::mov64_imm(Reg::R0, default_af as i32)),
        }
        self.e
            .push(Insn::store(Size::DW, place.reg(), place.off16(), Reg::R0));
        Ok(TVal::new(Val::Mem(place), Ty::Inet))
    }

    /// `pton("addr")`: the address's bytes, at compile time.
    fn pton(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "pton(\"address\")";
        arity("pton", args, expr, 1..=1, usage)?;
        let text = String::from_utf8_lossy(need_literal(&args[0], "pton", usage)?).into_owned();
        let bytes: Vec<u8> = if text.contains(':') {
            text.parse::<std::net::Ipv6Addr>()
                .map(|a| a.octets().to_vec())
                .ok()
        } else {
            text.parse::<std::net::Ipv4Addr>()
                .map(|a| a.octets().to_vec())
                .ok()
        }
        .ok_or_else(|| {
            Diagnostic::error(
                args[0].span,
                format!("pton(): '{text}' is not an IP address"),
            )
            .with_label("invalid address")
            .with_help("write an IPv4 address like \"127.0.0.1\" or an IPv6 one like \"::1\"")
        })?;
        let len = bytes.len() as u32;
        let place = self.alloc_mem(len, false);
        self.write_bytes(place, &bytes, len);
        Ok(TVal::new(
            Val::Mem(place),
            Ty::Array {
                elem: Box::new(Ty::Int {
                    bytes: 1,
                    signed: false,
                }),
                len,
            },
        ))
    }

    /// `macaddr(x)`: 6 bytes of an array, or read from a pointer.
    fn macaddr(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "macaddr(array or pointer)";
        arity("macaddr", args, expr, 1..=1, usage)?;
        let v = self.eval(&args[0])?;
        let place = self.alloc_mem(8, true);
        match (&v.ty, &v.val) {
            (Ty::Buffer { cap }, Val::Mem(from)) if *cap >= 6 => {
                self.copy_mem(place, from.at(8), 8);
                self.e
                    .push(Insn::store_imm(Size::H, place.reg(), place.off16() + 6, 0));
            }
            (Ty::Array { .. } | Ty::Str { .. }, Val::Mem(from)) if v.ty.size() >= 6 => {
                self.copy_mem(place, *from, 8.min(align8(v.ty.size())));
                self.e
                    .push(Insn::store_imm(Size::H, place.reg(), place.off16() + 6, 0));
            }
            (t, _) if t.is_integer() => {
                self.e.push(Insn::mov64_imm(Reg::R2, 6));
                let user = self.reads_user(&v);
                self.probe_read_into(place, &v, user);
            }
            _ => {
                return Err(wrong_type(
                    &args[0],
                    "macaddr",
                    "an array of 6 bytes or a pointer",
                    &v.ty,
                    usage,
                ));
            }
        }
        self.release(v);
        Ok(TVal::new(Val::Mem(place), Ty::MacAddr))
    }

    /// `strftime(fmt, ns)`: a boot-time timestamp formatted in user space.
    fn strftime(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "strftime(\"format\", nanoseconds)";
        arity("strftime", args, expr, 2..=2, usage)?;
        let fmt = need_literal(&args[0], "strftime", usage)?.to_vec();
        if literal_int(&args[1]).is_some_and(|n| n < 0) {
            return Err(
                Diagnostic::error(args[1].span, "strftime()'s timestamp is negative")
                    .with_label("negative")
                    .with_help("timestamps are nanoseconds since boot, like nsecs"),
            );
        }
        let ns = self.eval_int_arg(&args[1], "strftime", usage)?;
        let format = self.intern(Interned::TimeFormat, &fmt);
        let ns = self.owned(ns);
        Ok(TVal::new(ns.val, Ty::Timestamp { format }))
    }

    /// `time([fmt])`: user space prints the wall clock time.
    fn time(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "time([\"format\"])";
        arity("time", args, expr, 0..=1, usage)?;
        let fmt = match args.first() {
            Some(e) => need_literal(e, "time", usage)?.to_vec(),
            None => b"%H:%M:%S\n".to_vec(),
        };
        let id = self.intern(Interned::TimeFormat, &fmt);
        self.emit_event(EventKind::Time, id, &[])?;
        Ok(Self::none())
    }

    /// An integer shown differently (`strerror`).
    fn int_as(&mut self, args: &[Expr], expr: &Expr, name: &str, ty: Ty, usage: &str) -> Res<TVal> {
        arity(name, args, expr, 1..=1, usage)?;
        let v = self.eval_int_arg(&args[0], name, usage)?;
        let v = self.owned(v);
        Ok(TVal::new(v.val, ty))
    }

    fn has_key(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "has_key(@map, key)";
        arity("has_key", args, expr, 1..=2, usage)?;
        let ExprKind::Map { name, keys } = &args[0].kind else {
            return Err(
                Diagnostic::error(args[0].span, "has_key() takes a map first")
                    .with_label("not a map")
                    .with_help(format!("usage: {usage}")),
            );
        };
        if !keys.is_empty() {
            return Err(Diagnostic::error(
                args[0].span,
                "has_key() takes the map and the key separately",
            )
            .with_label("key inside the map")
            .with_help(format!("usage: {usage}")));
        }
        let keys: Vec<Expr> = match args.get(1).map(|k| &k.kind) {
            Some(ExprKind::Tuple(elems)) => elems.clone(),
            Some(_) => vec![args[1].clone()],
            None => Vec::new(),
        };
        self.map_has_key(name, &keys, expr)
    }

    fn sizeof(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        arity(
            "sizeof",
            args,
            expr,
            1..=1,
            "sizeof(expression) or sizeof(type)",
        )?;
        if let Some(size) = self.c_object_size(&args[0])? {
            return Ok(TVal::new(Val::Imm(i64::from(size)), Ty::U64));
        }
        let ty = self.dry_eval(&args[0])?.ty;
        let size = match &ty {
            Ty::Int { bytes, .. } => u32::from(*bytes),
            Ty::Enum(e) => u32::from(e.bytes),
            Ty::Bool => 1,
            Ty::Buffer { cap } => 8 + cap,
            Ty::MacAddr => 6,
            other => other.size(),
        };
        Ok(TVal::new(Val::Imm(i64::from(size)), Ty::U64))
    }

    fn kaddr(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "kaddr(\"symbol\")";
        arity("kaddr", args, expr, 1..=1, usage)?;
        let name = String::from_utf8_lossy(need_literal(&args[0], "kaddr", usage)?).into_owned();
        match self.g.kernel_symbol(&name) {
            Some(addr) => {
                // A kernel address, whatever memory the probe's pointers are in.
                let mut v = TVal::new(Val::Imm(addr as i64), Ty::U64);
                v.user = Some(false);
                Ok(v)
            }
            None => Err(Diagnostic::error(
                args[0].span,
                format!("kaddr(): no kernel symbol named '{name}'"),
            )
            .with_label("unknown symbol")
            .with_help("the kernel's symbols are listed in /proc/kallsyms")),
        }
    }

    fn cgroupid(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "cgroupid(\"/sys/fs/cgroup/...\")";
        arity("cgroupid", args, expr, 1..=1, usage)?;
        let path = String::from_utf8_lossy(need_literal(&args[0], "cgroupid", usage)?).into_owned();
        match self.g.cgroup_id(&path) {
            Some(id) => Ok(TVal::new(Val::Imm(id as i64), Ty::U64)),
            None => Err(Diagnostic::error(
                args[0].span,
                format!("cgroupid(): no cgroup at '{path}'"),
            )
            .with_label("not a cgroup directory")
            .with_help(
                "give the path of a cgroup v2 directory, e.g. \"/sys/fs/cgroup/system.slice\"",
            )),
        }
    }

    fn mark_space(&mut self, name: &str, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = format!("{name}(pointer)");
        arity(name, args, expr, 1..=1, &usage)?;
        let mut v = self.eval_int_arg(&args[0], name, &usage)?;
        v.user = Some(name == "uptr");
        Ok(v)
    }

    fn require_unsafe(&self, name: &str, expr: &Expr) -> Res<()> {
        if self.g.opts.allow_unsafe {
            return Ok(());
        }
        Err(Diagnostic::error(
            expr.span,
            format!("{name}() is unsafe: it acts outside the trace"),
        )
        .with_label("needs --unsafe")
        .with_help("run with --unsafe to allow it"))
    }

    /// `signal(sig)` (to the current process) or `signal_thread(sig)` (to
    /// the current thread).
    fn signal(&mut self, name: &str, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = format!("{name}(\"SIGNAME\") or {name}(number)");
        let usage = usage.as_str();
        arity(name, args, expr, 1..=1, usage)?;
        self.require_unsafe(name, expr)?;
        if matches!(self.probe.attach, Attach::Begin | Attach::End) {
            return Err(Diagnostic::error(
                expr.span,
                format!("{name}() cannot be used in begin or end probes"),
            )
            .with_label("no traced process here")
            .with_help("use it in a probe that fires in the process to signal"));
        }
        let func = name;
        let sig = match literal_str(&args[0]) {
            Some(name) => {
                let name = String::from_utf8_lossy(name).into_owned();
                let full = if name.starts_with("SIG") {
                    name.clone()
                } else {
                    format!("SIG{name}")
                };
                let Some(&(_, n)) = SIGNALS.iter().find(|(s, _)| *s == full) else {
                    let mut d = Diagnostic::error(
                        args[0].span,
                        format!("{func}(): unknown signal '{name}'"),
                    )
                    .with_label("unknown signal");
                    if let Some(best) =
                        ferret_syntax::diag::closest(&full, SIGNALS.iter().map(|s| s.0))
                    {
                        d = d.with_help(format!("did you mean '{best}'?"));
                    }
                    return Err(d);
                };
                TVal::int(i64::from(n))
            }
            None => {
                if let Some(n) = literal_int(&args[0])
                    && !(1..=64).contains(&n)
                {
                    return Err(Diagnostic::error(
                        args[0].span,
                        format!("{func}(): {n} is not a signal number"),
                    )
                    .with_label("out of range")
                    .with_help("signals are numbered 1 to 64"));
                }
                self.eval_int_arg(&args[0], func, usage)?
            }
        };
        self.load_reg(&sig, Reg::R1);
        self.release(sig);
        self.e.push(Insn::call(if func == "signal_thread" {
            helper::SEND_SIGNAL_THREAD
        } else {
            helper::SEND_SIGNAL
        }));
        Ok(Self::none())
    }

    fn system(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        self.require_unsafe("system", expr)?;
        self.event_call(EventKind::System, "system", args, expr)
    }

    fn event_call(&mut self, kind: EventKind, name: &str, args: &[Expr], expr: &Expr) -> Res<TVal> {
        self.formatted(kind, name, args, expr)?;
        Ok(Self::none())
    }

    /// `bswap(n)`: the bytes of `n` reversed, at its width.
    fn bswap(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "bswap(integer)";
        arity("bswap", args, expr, 1..=1, usage)?;
        let v = self.eval_int_arg(&args[0], "bswap", usage)?;
        let bytes = match v.ty {
            Ty::Int { bytes, .. } => bytes,
            _ => 8,
        };
        let v = self.owned(v);
        self.load_reg(&v, Reg::R0);
        if bytes > 1 {
            self.e.push(Insn::bswap_le(Reg::R0, i32::from(bytes) * 8));
        } else {
            self.narrow(Reg::R0, 1, false);
        }
        self.store_back(&v, Reg::R0);
        Ok(TVal::new(
            v.val,
            Ty::Int {
                bytes,
                signed: false,
            },
        ))
    }

    fn type_predicate(&mut self, name: &str, args: &[Expr], expr: &Expr) -> Res<TVal> {
        arity(name, args, expr, 1..=1, &format!("{name}(expression)"))?;
        let literal = matches!(
            args[0].kind,
            ExprKind::Int(_) | ExprKind::Str(_) | ExprKind::Bool(_)
        );
        let ty = self.dry_eval(&args[0])?.ty;
        let yes = match name {
            "is_integer" => matches!(ty, Ty::Int { .. }),
            "is_unsigned_integer" => matches!(ty, Ty::Int { signed: false, .. }),
            "is_str" => matches!(ty, Ty::Str { .. }),
            "is_array" => matches!(ty, Ty::Array { .. }),
            "is_ptr" => matches!(ty, Ty::Ptr(_)),
            "is_literal" => literal,
            _ => false,
        };
        Ok(TVal::new(Val::Imm(i64::from(yes)), Ty::Bool))
    }

    /// `is_err(p)`: a kernel `ERR_PTR`, -4095 to -1.
    fn is_err(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "is_err(pointer)";
        arity("is_err", args, expr, 1..=1, usage)?;
        let v = self.eval_int_arg(&args[0], "is_err", usage)?;
        self.load_reg(&v, Reg::R0);
        self.release(v);
        // r0 = (r0 + 4095) as unsigned < 4095
        self.e.push(Insn::alu64_imm(AluOp::Add, Reg::R0, 4095));
        self.e.push(Insn::jmp_imm(JmpOp::Jlt, Reg::R0, 4095, 2));
        self.e.push(Insn::mov64_imm(Reg::R0, 0));
        self.e.push(Insn::ja(1));
        self.e.push(Insn::mov64_imm(Reg::R0, 1));
        Ok(self.temp_from(Reg::R0, Ty::Bool))
    }

    fn static_assert(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "static_assert(condition, \"message\")";
        arity("static_assert", args, expr, 2..=2, usage)?;
        let msg =
            String::from_utf8_lossy(need_literal(&args[1], "static_assert", usage)?).into_owned();
        let cond = self.dry_eval(&args[0])?;
        match cond.val {
            Val::Imm(0) => {
                Err(Diagnostic::error(args[0].span, msg).with_label("static assertion failed"))
            }
            Val::Imm(_) => Ok(Self::none()),
            _ => Err(Diagnostic::error(
                args[0].span,
                "static_assert()'s condition must be known at compile time",
            )
            .with_label("not a constant")),
        }
    }

    /// `assert(cond, msg)`: when `cond` is false, report
    /// `assert failed: msg` as an error and exit with status 1.
    fn assert(&mut self, args: &[Expr], expr: &Expr) -> Res<TVal> {
        let usage = "assert(condition, \"message\")";
        arity("assert", args, expr, 2..=2, usage)?;
        let cond = self.eval_int_arg(&args[0], "assert", usage)?;
        self.load_reg(&cond, Reg::R0);
        self.release(cond);
        let ok = self.e.new_label();
        self.e.jump_if_imm(JmpOp::Jne, Reg::R0, 0, ok);
        let report = [
            Expr {
                kind: ExprKind::Str(b"assert failed: %s".to_vec()),
                span: expr.span,
            },
            args[1].clone(),
        ];
        self.formatted(EventKind::Errorf, "assert", &report, expr)?;
        self.emit_event(EventKind::Exit, 0, &[(TVal::int(1), Ty::I64)])?;
        let exit = self.exit_label;
        self.e.jump(exit);
        self.e.bind(ok);
        Ok(Self::none())
    }
}

/// The compiler's string tables.
#[derive(Debug, Clone, Copy)]
enum Interned {
    TimeFormat,
    JoinSeparator,
}
