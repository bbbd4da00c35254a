//! Kernel types in generated code, run in the userspace VM against a small
//! hand-built BTF and a fake task in "kernel" memory: member walks through
//! pointers, arrays, unions and bitfields, casts, enums, `sizeof` and
//! `offsetof`, the script's own structs, and raw tracepoint arguments.

#[expect(dead_code, reason = "the VM harness serves several test binaries")]
mod vm;

use ferret_btf::{Btf, BtfBuilder};
use ferret_compiler::{Attach, CompiledProgram, EventKind, FixedTarget, Options, Ty, compile};
use ferret_syntax::{SourceFile, parse};
use vm::{Machine, build_for, run, u64_at};

/// Byte offsets in the fixture's `struct task_struct` (88 bytes).
mod task {
    pub const PID: usize = 0;
    pub const COMM: usize = 4;
    pub const PARENT: usize = 24;
    /// `flags:3` then `prio:5`.
    pub const FLAGS_PRIO: usize = 32;
    /// `sflag:4`, signed.
    pub const SFLAG: usize = 33;
    pub const STATE: usize = 36;
    pub const ARR: usize = 40;
    /// `union { unsigned int a; unsigned short b; }`, anonymous.
    pub const UNION: usize = 72;
    /// `struct inner { short x; } in;`
    pub const INNER: usize = 76;
    pub const LEADER: usize = 80;
    pub const SIZE: u32 = 88;
}

/// Where the parent task lives in kernel memory (the current task is at
/// `vm::TASK`).
const PARENT_AT: usize = vm::TASK + 512;
/// Where the thread group leader lives.
const LEADER_AT: usize = vm::TASK + 1024;

fn btf() -> Btf {
    Btf::parse(btf_builder().finish()).expect("fixture BTF parses")
}

fn btf_builder() -> BtfBuilder {
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4, true);
    let uint = b.int("unsigned int", 4, false);
    let char_t = b.int("char", 1, true);
    let long = b.int("long", 8, true);
    let short = b.int("short", 2, true);
    let ushort = b.int("unsigned short", 2, false);
    let comm = b.array(char_t, int, 16);
    let arr = b.array(long, int, 4);
    let state = b.enum_type(
        "state",
        4,
        false,
        &[("RUNNING", 0), ("SLEEPING", 1), ("DEAD", 16)],
    );
    let anon = b.struct_type("", 4, true, &[("a", uint, 0, 0), ("b", ushort, 0, 0)]);
    let inner = b.struct_type("inner", 2, false, &[("x", short, 0, 0)]);
    let task_id = b.next_id() + 1;
    let task_ptr = b.ptr(task_id);
    let task = b.struct_type(
        "task_struct",
        task::SIZE,
        false,
        &[
            ("pid", int, 0, 0),
            ("comm", comm, 32, 0),
            ("real_parent", task_ptr, 192, 0),
            ("flags", uint, 256, 3),
            ("prio", uint, 259, 5),
            ("sflag", int, 264, 4),
            ("st", state, 288, 0),
            ("arr", arr, 320, 0),
            ("", anon, 576, 0),
            ("in", inner, 608, 0),
            ("group_leader", task_ptr, 640, 0),
        ],
    );
    assert_eq!(task, task_id);
    // A raw tracepoint `sk_ev(struct sock *sk, struct task_struct *t)`.
    let sock_id = b.next_id() + 1;
    let sock_ptr = b.ptr(sock_id);
    let sock = b.struct_type("sock", 8, false, &[("sk_hash", uint, 0, 0)]);
    assert_eq!(sock, sock_id);
    let void_ptr = b.ptr(0);
    let sk_proto = b.func_proto(
        0,
        &[("__data", void_ptr), ("sk", sock_ptr), ("t", task_ptr)],
    );
    b.func("__probestub_sk_ev", sk_proto);
    let sk_proto_ptr = b.ptr(sk_proto);
    b.typedef("btf_trace_sk_ev", sk_proto_ptr);
    // Per-CPU variables.
    let ulong = b.int("unsigned long", 8, false);
    b.var("process_counts", ulong);
    // A kernel function `long do_work(struct task_struct *p, int n)`, and
    // `void do_nothing(int n)`, for fentry/fexit and kprobes.
    let long_t = b.int("long", 8, true);
    let work = b.func_proto(long_t, &[("p", task_ptr), ("n", int)]);
    b.func("do_work", work);
    let nothing = b.func_proto(0, &[("n", int)]);
    b.func("do_nothing", nothing);
    // A raw tracepoint `ev(struct task_struct *p, int n)`.
    let proto = b.func_proto(0, &[("__data", void_ptr), ("p", task_ptr), ("n", int)]);
    b.func("__probestub_ev", proto);
    let proto_ptr = b.ptr(proto);
    b.typedef("btf_trace_ev", proto_ptr);
    b
}

/// A tracepoint with a `struct task_struct *` and an `enum state` field.
const TYPED_FORMAT: &str = "name: typed
ID: 1001
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:struct task_struct * task;\toffset:8;\tsize:8;\tsigned:0;
\tfield:enum state st;\toffset:16;\tsize:4;\tsigned:0;

print fmt: \"\"
";

fn target() -> FixedTarget {
    vm::target(1)
        .with_format("test", "typed", TYPED_FORMAT)
        .with_btf(btf())
}

fn build(src: &str) -> CompiledProgram {
    build_for(src, &target(), &Options::default())
}

/// A machine whose current task is the fixture's, filled in.
fn machine(prog: &CompiledProgram) -> Machine {
    let mut m = Machine::new(prog, 1);
    let parent = m.kernel_addr(PARENT_AT);
    let leader = m.kernel_addr(LEADER_AT);
    let mem = &mut m.kernel_mem[vm::TASK..];
    mem[task::LEADER..task::LEADER + 8].copy_from_slice(&leader.to_le_bytes());
    mem[task::PID..task::PID + 4].copy_from_slice(&(-5i32).to_le_bytes());
    mem[task::COMM..task::COMM + 6].copy_from_slice(b"worker");
    mem[task::PARENT..task::PARENT + 8].copy_from_slice(&parent.to_le_bytes());
    // flags = 5 (3 bits), prio = 19 (5 bits).
    mem[task::FLAGS_PRIO] = 5 | (19 << 3);
    // sflag = -3 in 4 bits.
    mem[task::SFLAG] = 0b1101;
    mem[task::STATE..task::STATE + 4].copy_from_slice(&16u32.to_le_bytes());
    for (i, v) in [10i64, 20, 30, 40].iter().enumerate() {
        let at = task::ARR + 8 * i;
        mem[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    mem[task::UNION..task::UNION + 4].copy_from_slice(&0x0002_0001u32.to_le_bytes());
    mem[task::INNER..task::INNER + 2].copy_from_slice(&(-2i16).to_le_bytes());
    m.kernel_mem[PARENT_AT..PARENT_AT + 4].copy_from_slice(&77i32.to_le_bytes());
    m.kernel_mem[PARENT_AT + task::COMM..PARENT_AT + task::COMM + 6].copy_from_slice(b"parent");
    m.kernel_mem[LEADER_AT..LEADER_AT + 4].copy_from_slice(&66i32.to_le_bytes());
    m.kernel_mem[LEADER_AT + task::COMM..LEADER_AT + task::COMM + 6].copy_from_slice(b"leader");
    m
}

/// One printf argument, decoded by its type.
#[derive(Debug, PartialEq)]
enum Arg {
    Int(i64),
    Str(String),
}

/// Runs `src`'s first program once (with the context `ctx` makes) and
/// returns its printf's arguments with their types.
fn printed_with(src: &str, ctx: impl FnOnce(&Machine) -> Vec<u8>) -> Vec<(Arg, Ty)> {
    let prog = build(src);
    let mut m = machine(&prog);
    let mut ctx = ctx(&m);
    run(&mut m, &prog, 0, &mut ctx).unwrap_or_else(|e| panic!("{src}: {e}"));
    assert_eq!(m.events.len(), 1, "{src}: one event");
    let ev = &m.events[0];
    assert_eq!(u64_at(ev, 0) as u32, EventKind::Printf as u32);
    let id = (u64_at(ev, 0) >> 32) as usize;
    prog.printfs[id]
        .args
        .iter()
        .map(|(off, ty)| {
            let off = *off as usize;
            let arg = match ty {
                Ty::Str { cap } => {
                    let s = &ev[off..off + *cap as usize];
                    let n = s.iter().position(|&b| b == 0).unwrap_or(s.len());
                    Arg::Str(String::from_utf8_lossy(&s[..n]).into_owned())
                }
                _ => Arg::Int(u64_at(ev, off) as i64),
            };
            (arg, ty.clone())
        })
        .collect()
}

fn printed(src: &str) -> Vec<(Arg, Ty)> {
    printed_with(src, |_| vm::record())
}

fn ints(src: &str) -> Vec<i64> {
    printed(src)
        .into_iter()
        .map(|(a, _)| match a {
            Arg::Int(v) => v,
            Arg::Str(s) => panic!("{src}: string {s:?} where an integer was expected"),
        })
        .collect()
}

fn compile_errors(src: &str, target: &FixedTarget) -> Vec<String> {
    let file = SourceFile::new("test.bt", src);
    let ast = parse(&file).expect("parses");
    match compile(&ast, target, &Options::default()) {
        Ok(_) => panic!("{src}: compiled"),
        Err(d) => d.iter().map(|d| d.message.clone()).collect(),
    }
}

#[test]
fn members_through_pointers_keep_width_and_sign() {
    let got = printed(
        r#"begin { printf("%d %s %d %d\n", curtask->pid, curtask->comm,
                          curtask->real_parent->pid, curtask.real_parent.pid); }"#,
    );
    assert_eq!(
        got[0],
        (
            Arg::Int(-5),
            Ty::Int {
                bytes: 4,
                signed: true
            }
        )
    );
    assert_eq!(got[1].0, Arg::Str("worker".into()));
    assert_eq!(got[1].1, Ty::Str { cap: 24 });
    assert_eq!(got[2].0, Arg::Int(77));
    assert_eq!(got[3].0, Arg::Int(77), "'.' dereferences pointers too");
}

#[test]
fn bitfields_unions_arrays_and_nested_structs() {
    assert_eq!(
        ints(
            r#"begin { $i = 3;
                 printf("%d %d %d %d %d %d %d %d\n", curtask->flags, curtask->prio,
                        curtask->sflag, curtask->arr[1], curtask->arr[$i], curtask->a,
                        curtask->b, curtask->in.x); }"#
        ),
        [5, 19, -3, 20, 40, 0x0002_0001, 1, -2]
    );
}

#[test]
fn enums_print_by_name() {
    let got = printed(r#"begin { printf("%s %s %d\n", curtask->st, SLEEPING, DEAD); }"#);
    assert_eq!(got[0].0, Arg::Int(16));
    let Ty::Enum(e) = &got[0].1 else {
        panic!("an enum member has an enum type: {:?}", got[0].1);
    };
    assert_eq!(e.name, "state");
    assert_eq!(e.name_of(16), Some("DEAD"));
    assert_eq!(got[1].0, Arg::Int(1));
    assert!(matches!(&got[1].1, Ty::Enum(e) if e.name == "state"));
    assert_eq!(got[2].0, Arg::Int(16));
    let cast = printed(r#"begin { printf("%s\n", (enum state)1); }"#);
    assert!(matches!(&cast[0].1, Ty::Enum(e) if e.name_of(1) == Some("SLEEPING")));
}

#[test]
fn casts_and_dereferences() {
    assert_eq!(
        ints(
            r#"begin { $t = (struct task_struct *)curtask;
                 printf("%d %d %d %d\n", $t->pid, *(int32 *)curtask, *(uint8 *)$t,
                        ((struct task_struct *)(uint64)curtask)->in.x); }"#
        ),
        // The third is the first byte of pid -5.
        [-5, -5, 0xfb, -2]
    );
}

#[test]
fn pointer_arithmetic_steps_over_the_pointee() {
    assert_eq!(
        ints(
            r#"begin { $p = (int32 *)curtask; $q = $p + 2; $q++;
                 printf("%d %d\n", (uint64)$q - (uint64)$p, *($p + 1)); }"#
        ),
        // ($p + 3) - $p in bytes; the second int32 of the task is comm's
        // first four bytes, "work".
        [12, i64::from(i32::from_le_bytes(*b"work"))]
    );
}

#[test]
fn sizeof_and_offsetof() {
    assert_eq!(
        ints(
            r#"begin { printf("%d %d %d %d %d %d\n", sizeof(struct task_struct),
                 offsetof(struct task_struct, arr), offsetof(struct task_struct, in.x),
                 sizeof(enum state), sizeof(uint16), sizeof(struct task_struct *)); }"#
        ),
        [
            i64::from(task::SIZE),
            task::ARR as i64,
            task::INNER as i64,
            4,
            2,
            8
        ]
    );
}

#[test]
fn script_structs_are_laid_out_as_c_does() {
    let src = r#"struct s { char a; int b; short c:3, d:5; long e; }
        union u { char x[3]; int y; }
        begin { $p = (struct s *)curtask;
          printf("%d %d %d %d %d %d %d\n", sizeof(struct s), offsetof(struct s, b),
                 offsetof(struct s, e), sizeof(union u), $p->b, $p->c, $p->d); }"#;
    let prog = build(src);
    let mut m = machine(&prog);
    // b = bytes 4..8 of the task (comm's first four), c:3 = -1, d:5 = 9 in
    // the short at byte 8.
    m.kernel_mem[vm::TASK + 8] = 0b111 | (9 << 3);
    m.kernel_mem[vm::TASK + 9] = 0;
    run(&mut m, &prog, 0, &mut vm::record()).expect("runs");
    let ev = &m.events[0];
    let vals: Vec<i64> = prog.printfs[0]
        .args
        .iter()
        .map(|(off, _)| u64_at(ev, *off as usize) as i64)
        .collect();
    assert_eq!(
        vals,
        [24, 4, 16, 4, i64::from(i32::from_le_bytes(*b"work")), -1, 9]
    );
}

#[test]
fn script_struct_overrides_the_kernels() {
    assert_eq!(
        ints(r#"struct task_struct { long skip; int x; } begin { printf("%d\n", curtask->x); }"#),
        [i64::from(i32::from_le_bytes(*b"er\0\0"))]
    );
}

#[test]
fn raw_tracepoint_arguments_are_typed() {
    // The context: the arguments after `__data`, as u64s.
    let prog =
        build(r#"rawtracepoint:ev { printf("%d %d %u %s\n", args.p->pid, args.n, arg1, probe); }"#);
    assert_eq!(prog.programs[0].probe, "rawtracepoint:vmlinux:ev");
    // A tp_btf program, attached by the id of `btf_trace_ev`.
    assert!(matches!(
        prog.programs[0].attach,
        Attach::RawTracepoint {
            btf_id: Some(_),
            ..
        }
    ));
    let mut m = machine(&prog);
    let mut ctx = vec![0u8; 16];
    ctx[..8].copy_from_slice(&m.task_addr().to_le_bytes());
    ctx[8..].copy_from_slice(&u64::from((-7i32) as u32).to_le_bytes());
    run(&mut m, &prog, 0, &mut ctx).expect("runs");
    let ev = &m.events[0];
    let args = &prog.printfs[0].args;
    assert_eq!(u64_at(ev, args[0].0 as usize) as i64, -5);
    assert_eq!(u64_at(ev, args[1].0 as usize) as i64, -7);
    assert_eq!(u64_at(ev, args[2].0 as usize), 0xffff_fff9);
}

/// [`target`] where fentry/fexit and kprobes can be made.
fn function_target() -> FixedTarget {
    FixedTarget {
        fentry: true,
        kprobes: true,
        kernel_functions: vec![
            ("do_nothing".into(), String::new()),
            ("do_work".into(), String::new()),
        ],
        ..target()
    }
}

/// The context of an fentry/fexit program on `do_work(p, n)`: the
/// arguments as u64s, then (fexit) the return value.
fn work_context(m: &Machine, ret: Option<i64>) -> Vec<u8> {
    let mut ctx = Vec::new();
    ctx.extend(m.task_addr().to_le_bytes());
    ctx.extend(u64::from((-7i32) as u32).to_le_bytes());
    if let Some(r) = ret {
        ctx.extend(r.to_le_bytes());
    }
    ctx
}

#[test]
fn fentry_arguments_are_typed() {
    let src = r#"fentry:do_work { printf("%d %d %u %s\n", args.p->pid, args.n, arg1, probe); }"#;
    let prog = build_for(src, &function_target(), &Options::default());
    assert_eq!(prog.programs[0].probe, "fentry:vmlinux:do_work");
    assert!(matches!(
        &prog.programs[0].attach,
        Attach::Fentry { function, module, exit: false, .. } if function == "do_work" && module == "vmlinux"
    ));
    let mut m = machine(&prog);
    let mut ctx = work_context(&m, None);
    run(&mut m, &prog, 0, &mut ctx).expect("runs");
    let ev = &m.events[0];
    let args = &prog.printfs[0].args;
    assert_eq!(u64_at(ev, args[0].0 as usize) as i64, -5);
    assert_eq!(u64_at(ev, args[1].0 as usize) as i64, -7);
    assert_eq!(u64_at(ev, args[2].0 as usize), 0xffff_fff9);
}

#[test]
fn fexit_reads_the_return_value_after_the_arguments() {
    let src = r#"kretfunc:do_work { printf("%d %d\n", args.n, retval); }"#;
    let prog = build_for(src, &function_target(), &Options::default());
    assert_eq!(prog.programs[0].probe, "fexit:vmlinux:do_work");
    let mut m = machine(&prog);
    let mut ctx = work_context(&m, Some(-12));
    run(&mut m, &prog, 0, &mut ctx).expect("runs");
    let ev = &m.events[0];
    let args = &prog.printfs[0].args;
    assert_eq!(u64_at(ev, args[0].0 as usize) as i64, -7);
    assert_eq!(u64_at(ev, args[1].0 as usize) as i64, -12);
    assert_eq!(args[1].1, Ty::I64);
}

#[test]
fn kprobe_arguments_typed_from_btf_come_from_registers() {
    let prog = build_for(
        r#"kprobe:do_work { printf("%d %d\n", args.n, args.p->pid); }"#,
        &function_target(),
        &Options::default(),
    );
    let mut m = machine(&prog);
    // struct pt_regs: rsi (the second argument) at 104, rdi at 112.
    let mut ctx = vec![0u8; 168];
    ctx[104..112].copy_from_slice(&u64::from((-7i32) as u32).to_le_bytes());
    ctx[112..120].copy_from_slice(&m.task_addr().to_le_bytes());
    run(&mut m, &prog, 0, &mut ctx).expect("runs");
    let ev = &m.events[0];
    let args = &prog.printfs[0].args;
    assert_eq!(u64_at(ev, args[0].0 as usize) as i64, -7);
    assert_eq!(u64_at(ev, args[1].0 as usize) as i64, -5);
}

#[test]
fn function_probe_argument_errors() {
    let t = function_target();
    assert_eq!(
        compile_errors("fentry:do_work { @ = retval; }", &t),
        ["'retval' is only available in fexit probes"]
    );
    assert_eq!(
        compile_errors("fexit:do_nothing { @ = retval; }", &t),
        ["fexit:vmlinux:do_nothing returns void: there is no 'retval'"]
    );
    assert_eq!(
        compile_errors("fentry:do_work { @ = args.m; }", &t),
        ["fentry:vmlinux:do_work has no argument 'm'"]
    );
    assert_eq!(
        compile_errors("kretprobe:do_work { @ = args.n; }", &t),
        ["'args' is not available in kretprobe probes"]
    );
    assert_eq!(
        compile_errors("fentry:do_work { @ = arg2; }", &t),
        ["fentry:vmlinux:do_work has 2 arguments, arg0 to arg1"]
    );
    let no_trampolines = FixedTarget {
        fentry: false,
        ..function_target()
    };
    assert_eq!(
        compile_errors("fentry:do_work { }", &no_trampolines),
        ["fentry probes are not available on this kernel"]
    );
}

#[test]
fn tracepoint_fields_typed_as_struct_pointers_and_enums() {
    let src =
        r#"tracepoint:test:typed { printf("%d %s\n", args.task->real_parent->pid, args.st); }"#;
    let got = printed_with(src, |m| {
        let mut ctx = vm::record();
        ctx[8..16].copy_from_slice(&m.task_addr().to_le_bytes());
        ctx[16..20].copy_from_slice(&16u32.to_le_bytes());
        ctx
    });
    assert_eq!(got[0].0, Arg::Int(77));
    assert_eq!(got[1].0, Arg::Int(16));
    assert!(matches!(&got[1].1, Ty::Enum(e) if e.name_of(16) == Some("DEAD")));
}

#[test]
fn without_btf_kernel_types_are_an_error() {
    let no_btf = vm::target(1);
    let errors = compile_errors("begin { print(curtask->pid); }", &no_btf);
    assert_eq!(
        errors,
        ["'struct task_struct' needs the kernel's BTF: this target has no BTF"]
    );
    // Printing the pointer itself needs no type information.
    build_for("begin { print(curtask); }", &no_btf, &Options::default());
    // The script's own structs need none either.
    build_for(
        "struct s { int a; } begin { print(((struct s *)curtask)->a); }",
        &no_btf,
        &Options::default(),
    );
}

#[test]
fn programs_without_kernel_types_never_read_btf() {
    /// A target whose BTF may not be asked for.
    struct NoPeeking(FixedTarget);
    impl ferret_compiler::Target for NoPeeking {
        fn tracepoints(&self) -> Vec<(String, String)> {
            self.0.tracepoints()
        }
        fn tracepoint_format(&self, c: &str, e: &str) -> Option<String> {
            self.0.tracepoint_format(c, e)
        }
        fn ncpus(&self) -> u64 {
            1
        }
        fn start_ns(&self) -> u64 {
            0
        }
        fn btf(&self) -> Result<&Btf, String> {
            panic!("BTF was read for a program that uses no kernel type");
        }
    }
    let file = SourceFile::new(
        "t.bt",
        r#"tracepoint:test:ev { @[comm, pid] = count(); printf("%d %s\n", args.sig, str(args.filename)); }
           struct s { int a; } begin { $x = (struct s *)0; @p = (int8 *)curtask + 1; }"#,
    );
    let ast = parse(&file).expect("parses");
    compile(&ast, &NoPeeking(target()), &Options::default()).expect("compiles");
}

#[test]
fn integer_arrays_read_whole() {
    let prog = build("begin { print(curtask->arr); }");
    assert_eq!(
        prog.print_values,
        [Ty::Array {
            elem: Box::new(Ty::Int {
                bytes: 8,
                signed: true
            }),
            len: 4
        }]
    );
    let mut m = machine(&prog);
    run(&mut m, &prog, 0, &mut vm::record()).expect("runs");
    let ev = &m.events[0];
    let values: Vec<i64> = (0..4).map(|i| u64_at(ev, 8 + 8 * i) as i64).collect();
    assert_eq!(values, [10, 20, 30, 40]);
}

#[test]
fn task_shorthands_walk_to_the_parent_and_the_leader() {
    let got = printed(
        r#"begin { printf("%d %s %d %s %d %s\n", ppid, pcomm, leader_tid(), leader_comm,
                          ppid(curtask->group_leader), pcomm(curtask)); }"#,
    );
    let vals: Vec<&Arg> = got.iter().map(|(a, _)| a).collect();
    assert_eq!(
        vals,
        [
            &Arg::Int(77),
            &Arg::Str("parent".into()),
            &Arg::Int(66),
            &Arg::Str("leader".into()),
            // The leader's fixture has no parent: a null pointer read as 0.
            &Arg::Int(0),
            &Arg::Str("parent".into()),
        ]
    );
    // `task.real_parent.pid` is a pid_t, as in bpftrace.
    assert_eq!(
        got[0].1,
        Ty::Int {
            bytes: 4,
            signed: true
        }
    );
}

#[test]
fn sizeof_members_is_their_c_size() {
    assert_eq!(
        ints(
            r#"begin { printf("%d %d %d %d %d %d\n", sizeof(curtask->st), sizeof(curtask->comm),
                 sizeof(curtask->in), sizeof(curtask->arr[0]), sizeof(*curtask),
                 sizeof(SLEEPING)); }"#
        ),
        [4, 16, 2, 8, i64::from(task::SIZE), 4]
    );
}

/// The event of `src`'s one `print(value)`, the value's type, and the
/// machine it ran on.
fn printed_value(src: &str) -> (Vec<u8>, Ty, Machine) {
    let prog = build(src);
    let mut m = machine(&prog);
    run(&mut m, &prog, 0, &mut vm::record()).unwrap_or_else(|e| panic!("{src}: {e}"));
    assert_eq!(m.events.len(), 1, "{src}: one event");
    let ev = m.events[0].clone();
    assert_eq!(u64_at(&ev, 0) as u32, EventKind::PrintValue as u32);
    (ev, prog.print_values[0].clone(), m)
}

#[test]
fn whole_structs_are_their_bytes_with_their_members() {
    let (ev, ty, m) = printed_value("begin { print(*curtask); }");
    let Ty::Struct(s) = ty else {
        panic!("a struct value: {ty:?}");
    };
    assert_eq!(
        (s.name.as_str(), s.size),
        ("struct task_struct", task::SIZE)
    );
    /// A member's name, byte offset and bitfield.
    type Member<'a> = (&'a str, u32, Option<(u8, u8)>);
    let fields: Vec<Member> = s
        .fields
        .iter()
        .map(|f| (f.name.as_str(), f.offset, f.bits))
        .collect();
    // The anonymous union's members take its place.
    assert_eq!(
        fields,
        [
            ("pid", 0, None),
            ("comm", 4, None),
            ("real_parent", 24, None),
            ("flags", 32, Some((0, 3))),
            ("prio", 32, Some((3, 5))),
            ("sflag", 33, Some((0, 4))),
            ("st", 36, None),
            ("arr", 40, None),
            ("a", 72, None),
            ("b", 72, None),
            ("in", 76, None),
            ("group_leader", 80, None),
        ]
    );
    assert_eq!(s.fields[1].ty, Ty::Str { cap: 16 });
    assert!(matches!(&s.fields[10].ty, Ty::Struct(inner) if inner.name == "struct inner"));
    // The event carries the task's bytes as they are in memory.
    let at = vm::TASK;
    assert_eq!(
        &ev[8..8 + task::SIZE as usize],
        &m.kernel_mem[at..at + task::SIZE as usize]
    );
}

#[test]
fn members_of_struct_values_read_from_the_programs_memory() {
    let got = printed(
        r#"begin { $t = *curtask; $i = curtask->in; @s = *curtask->real_parent;
                   printf("%d %s %d %d %d %d %d\n", $t.pid, $t.comm, $t.in.x, $i.x, $t->flags,
                          $t.arr[2], @s.pid); }"#,
    );
    let vals: Vec<&Arg> = got.iter().map(|(a, _)| a).collect();
    assert_eq!(
        vals,
        [
            &Arg::Int(-5),
            &Arg::Str("worker".into()),
            &Arg::Int(-2),
            &Arg::Int(-2),
            &Arg::Int(5),
            &Arg::Int(30),
            &Arg::Int(77),
        ]
    );
}

#[test]
fn structs_as_map_keys_and_values() {
    let prog = build("begin { @v = curtask->in; @k[curtask->in] = 3; }");
    let mut m = machine(&prog);
    run(&mut m, &prog, 0, &mut vm::record()).expect("runs");
    // `struct inner` is 2 bytes, padded with zeros to 8.
    let inner = [(-2i16).to_le_bytes().as_slice(), &[0; 6]].concat();
    let symbol = |name: &str| {
        let map = prog.maps.iter().find(|m| m.name == name).expect("the map");
        map.symbol.clone()
    };
    assert_eq!(m.entries(&symbol("@v"), 0)[0].1, inner);
    assert_eq!(m.entries(&symbol("@k"), 0)[0].0, inner);
    assert!(prog.maps.iter().any(|m| m.name == "@v"
        && matches!(&m.kind, ferret_compiler::MapKind::Plain(Ty::Struct(s)) if s.name == "struct inner")));
}

#[test]
fn a_struct_too_large_to_hold_is_an_error() {
    let errors = compile_errors(
        "struct big { char x[20000]; } begin { print(*(struct big *)curtask); }",
        &target(),
    );
    assert_eq!(
        errors,
        ["struct big is 20000 bytes, too large to hold as a value (at most 16384)"]
    );
}

#[test]
fn addresses_of_variables() {
    let got = printed(
        r#"begin { $a = -7; $p = &$a; $s = "hey"; $c = (int8 *)&$s; $t = (1, 22);
                   $u = *curtask; $q = &$u;
                   printf("%d %c%c %d %d\n", *$p, *$c, *($c + 1), (*(&$t)).1, $q->in.x); }"#,
    );
    let vals: Vec<&Arg> = got.iter().map(|(a, _)| a).collect();
    assert_eq!(
        vals,
        [
            &Arg::Int(-7),
            &Arg::Int(i64::from(b'h')),
            &Arg::Int(i64::from(b'e')),
            &Arg::Int(22),
            &Arg::Int(-2),
        ]
    );
    let typed = printed(r#"begin { $a = (int16)1; printf("%d\n", &$a); }"#);
    assert!(matches!(&typed[0].1, Ty::Ptr(p) if &*p.name == "int16 *"));
}

#[test]
fn socket_cookie_passes_the_argument_the_verifier_typed() {
    let prog = build("rawtracepoint:sk_ev { @[socket_cookie(args.sk)] = count(); }");
    let insns = &prog.programs[0].insns;
    let call = insns
        .iter()
        .position(|i| *i == ferret_bpf::Insn::call(ferret_bpf::insn::helper::GET_SOCKET_COOKIE))
        .expect("calls bpf_get_socket_cookie");
    // r1 comes straight from the context: the first argument after
    // `__data`, no probe_read in between.
    assert_eq!(
        insns[call - 1],
        ferret_bpf::Insn::load(
            ferret_bpf::Size::DW,
            ferret_bpf::Reg::R1,
            ferret_bpf::Reg::R1,
            0
        )
    );
    let errors = compile_errors(
        "rawtracepoint:sk_ev { $s = args.sk; @ = socket_cookie($s); }",
        &target(),
    );
    assert_eq!(
        errors,
        ["socket_cookie() takes the socket as the probe's argument: socket_cookie(args.NAME)"]
    );
    let errors = compile_errors(
        "rawtracepoint:sk_ev { @ = socket_cookie(args.t); }",
        &target(),
    );
    assert_eq!(
        errors,
        [
            "socket_cookie() only supports 'struct sock *' as the argument (struct task_struct * provided)"
        ]
    );
    let errors = compile_errors("tracepoint:test:typed { @ = socket_cookie(0); }", &target());
    assert_eq!(
        errors,
        ["socket_cookie() cannot be used in tracepoint probes"]
    );
}

#[test]
fn percpu_kaddr_is_the_variables_address_on_a_cpu() {
    let prog = build(
        r#"begin { printf("%d %d %d %d\n", *percpu_kaddr("process_counts"),
                          *percpu_kaddr("process_counts", 1), percpu_kaddr("process_counts", 2),
                          ((struct inner *)percpu_kaddr("process_counts", 1))->x); }"#,
    );
    // The load of the variable's address is left to the kernel.
    assert!(
        prog.programs[0]
            .insns
            .iter()
            .any(|i| i.is_ld_imm64() && i.src == ferret_bpf::insn::BPF_PSEUDO_BTF_ID)
    );
    let mut m = machine(&prog);
    m.ncpus = 2;
    m.cpu = 0;
    let at = |cpu: usize| vm::PERCPU + cpu * vm::PERCPU_STRIDE;
    m.kernel_mem[at(0)..at(0) + 8].copy_from_slice(&41u64.to_le_bytes());
    m.kernel_mem[at(1)..at(1) + 8].copy_from_slice(&(-3i64).to_le_bytes());
    run(&mut m, &prog, 0, &mut vm::record()).expect("runs");
    let ev = &m.events[0];
    let vals: Vec<i64> = prog.printfs[0]
        .args
        .iter()
        .map(|(off, _)| u64_at(ev, *off as usize) as i64)
        .collect();
    // Past the last CPU there is no address; the first short of CPU 1's
    // value is -3.
    assert_eq!(vals, [41, -3, 0, -3]);
    assert_eq!(
        compile_errors(r#"begin { @ = percpu_kaddr("proces_counts"); }"#, &target()),
        ["could not resolve variable \"proces_counts\" from BTF"]
    );
}

#[test]
fn integers_dereference_as_kernel_uint64s() {
    // kaddr() gives a kernel address even where pointers are user memory.
    let src = r#"tracepoint:syscalls:sys_enter_test {
                   printf("%d %d\n", *kaddr("avenrun"), *(kaddr("avenrun") + 8)); }"#;
    let first = build(src.replace("kaddr(\"avenrun\")", "0").as_str());
    let mut m = machine(&first);
    let mut t = target();
    t.symbols
        .insert("avenrun".into(), m.kernel_addr(vm::PERCPU));
    let prog = build_for(src, &t, &Options::default());
    m.kernel_mem[vm::PERCPU..vm::PERCPU + 16]
        .copy_from_slice(&[7u64.to_le_bytes(), 9u64.to_le_bytes()].concat());
    run(&mut m, &prog, 0, &mut vm::record()).expect("runs");
    let ev = &m.events[0];
    let args = &prog.printfs[0].args;
    assert_eq!(u64_at(ev, args[0].0 as usize), 7);
    assert_eq!(u64_at(ev, args[1].0 as usize), 9);
    assert!(
        m.calls
            .contains(&(ferret_bpf::insn::helper::PROBE_READ_KERNEL as u32))
    );
    assert!(
        !m.calls
            .contains(&(ferret_bpf::insn::helper::PROBE_READ_USER as u32))
    );
}

/// [`target`] with a module `nfmod` whose BTF (split on top of the
/// kernel's) has `struct nf_thing { int state; enum nf_state st; }` and a
/// raw tracepoint `nf_ev(struct nf_thing *t, struct task_struct *task)`.
fn module_target() -> FixedTarget {
    let base = btf_builder();
    let vmlinux = std::sync::Arc::new(Btf::parse(base.finish()).expect("parses"));
    let task = vmlinux
        .find(ferret_btf::NameKind::Struct, "task_struct")
        .expect("task_struct");
    let int = vmlinux.find(ferret_btf::NameKind::Int, "int").expect("int");
    let mut b = BtfBuilder::split(vmlinux.last_id(), base.strings_len());
    let state = b.enum_type("nf_state", 4, false, &[("NF_NEW", 1), ("NF_DONE", 2)]);
    let thing = b.struct_type(
        "nf_thing",
        8,
        false,
        &[("state", int, 0, 0), ("st", state, 32, 0)],
    );
    let thing_ptr = b.ptr(thing);
    let task_ptr = b.ptr(task);
    let void_ptr = b.ptr(0);
    let proto = b.func_proto(
        0,
        &[("__data", void_ptr), ("t", thing_ptr), ("task", task_ptr)],
    );
    b.func("__probestub_nf_ev", proto);
    let proto_ptr = b.ptr(proto);
    b.typedef("btf_trace_nf_ev", proto_ptr);
    let module = Btf::parse_split(b.finish(), std::sync::Arc::clone(&vmlinux)).expect("parses");
    let mut t = vm::target(1).with_format("test", "typed", TYPED_FORMAT);
    t.btf = Some(vmlinux);
    t.modules
        .insert("nfmod".into(), std::sync::Arc::new(module));
    t
}

#[test]
fn module_raw_tracepoints_and_types() {
    let t = module_target();
    let src = r#"rawtracepoint:nfmod:nf_ev { printf("%d %s %d %s\n", args.t->state, args.t->st,
                   args.task->pid, NF_DONE); }"#;
    let prog = build_for(src, &t, &Options::default());
    assert_eq!(prog.programs[0].probe, "rawtracepoint:nfmod:nf_ev");
    let Attach::RawTracepoint { module, btf_id, .. } = &prog.programs[0].attach else {
        panic!("a raw tracepoint: {:?}", prog.programs[0].attach);
    };
    assert_eq!(module, "nfmod");
    let module_btf = &t.modules["nfmod"];
    assert_eq!(
        *btf_id,
        module_btf.find(ferret_btf::NameKind::Typedef, "btf_trace_nf_ev")
    );
    let mut m = machine(&prog);
    // The nf_thing: state 9, st NF_DONE.
    m.kernel_mem[64..68].copy_from_slice(&9i32.to_le_bytes());
    m.kernel_mem[68..72].copy_from_slice(&2u32.to_le_bytes());
    let mut ctx = vec![0u8; 16];
    ctx[..8].copy_from_slice(&m.kernel_addr(64).to_le_bytes());
    ctx[8..].copy_from_slice(&m.task_addr().to_le_bytes());
    run(&mut m, &prog, 0, &mut ctx).expect("runs");
    let ev = &m.events[0];
    let args = &prog.printfs[0].args;
    let vals: Vec<i64> = args
        .iter()
        .map(|(o, _)| u64_at(ev, *o as usize) as i64)
        .collect();
    assert_eq!(vals, [9, 2, -5, 2]);
    assert!(matches!(&args[1].1, Ty::Enum(e) if e.name_of(2) == Some("NF_DONE")));
    // Without the module named, the event is found in it too; a module's
    // types can be named in casts.
    let prog = build_for(
        r#"rawtracepoint:nf_ev { @ = ((struct nf_thing *)arg0)->state; }"#,
        &t,
        &Options::default(),
    );
    assert_eq!(prog.programs[0].probe, "rawtracepoint:nfmod:nf_ev");
    assert_eq!(
        compile_errors("rawtracepoint:nfmdo:nf_ev { }", &t),
        ["no raw tracepoint matches nfmdo:nf_ev"]
    );
    assert_eq!(
        compile_errors("rawtracepoint:nfmod:sched_switch { }", &t),
        ["raw tracepoint not found: sched_switch"]
    );
}

#[test]
fn args_as_a_whole_is_the_record_or_the_arguments() {
    let prog = build("tracepoint:test:typed { print(args); $a = args; @[$a.st] = count(); }");
    let Ty::Struct(s) = &prog.print_values[0] else {
        panic!("a struct: {:?}", prog.print_values[0]);
    };
    let fields: Vec<(&str, u32)> = s
        .fields
        .iter()
        .map(|f| (f.name.as_str(), f.offset))
        .collect();
    // The common fields too, as bpftrace has them.
    assert_eq!(fields, [("common_type", 0), ("task", 8), ("st", 16)]);
    assert_eq!(s.size, 20);
    assert!(matches!(&s.fields[1].ty, Ty::Ptr(p) if &*p.name == "struct task_struct *"));
    assert!(matches!(&s.fields[2].ty, Ty::Enum(e) if e.name == "state"));
    let mut m = machine(&prog);
    let mut ctx = vm::record();
    ctx[8..16].copy_from_slice(&m.task_addr().to_le_bytes());
    ctx[16..20].copy_from_slice(&16u32.to_le_bytes());
    run(&mut m, &prog, 0, &mut ctx).expect("runs");
    assert_eq!(&m.events[0][8..28], &ctx[..20]);

    let prog = build("rawtracepoint:ev { print(args); }");
    let Ty::Struct(s) = &prog.print_values[0] else {
        panic!("a struct: {:?}", prog.print_values[0]);
    };
    let fields: Vec<(&str, u32)> = s
        .fields
        .iter()
        .map(|f| (f.name.as_str(), f.offset))
        .collect();
    assert_eq!(fields, [("p", 0), ("n", 8)]);
    assert_eq!(
        s.fields[1].ty,
        Ty::Int {
            bytes: 4,
            signed: true
        }
    );
}
