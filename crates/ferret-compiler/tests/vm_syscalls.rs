//! Wide `syscalls:*` wildcards compiled to one program on the raw
//! `sys_enter`/`sys_exit` tracepoint, run in the userspace VM: the syscall
//! number finds the probe's name in the table the runtime fills, other
//! syscalls and compat ones do nothing, `args` come from the registers.

#[expect(dead_code, reason = "this test uses part of the shared VM harness")]
mod vm;

use ferret_compiler::syscalls::SyscallAbi;
use ferret_compiler::types::tuple_layout;
use ferret_compiler::{Attach, CompiledProgram, FixedTarget, Options, Ty};
use vm::{Machine, TASK, build_for, i64_at, run, str_at, u64_at};

/// x86_64 syscalls the test target has tracepoints for, with their
/// arguments as the kernel's format files declare them.
const SYSCALLS: &[(&str, &[&str])] = &[
    ("read", &["unsigned int fd", "char * buf", "size_t count"]),
    (
        "write",
        &["unsigned int fd", "const char * buf", "size_t count"],
    ),
    ("close", &["unsigned int fd"]),
    ("fsync", &["unsigned int fd"]),
    ("fdatasync", &["unsigned int fd"]),
    ("fchdir", &["unsigned int fd"]),
    ("fchmod", &["unsigned int fd", "umode_t mode"]),
    ("fchown", &["unsigned int fd", "uid_t user", "gid_t group"]),
    ("syncfs", &["int fd"]),
    (
        "openat",
        &[
            "int dfd",
            "const char * filename",
            "int flags",
            "umode_t mode",
        ],
    ),
    ("getpid", &[]),
    // Not in any syscall table: keeps a program of its own.
    ("frobnicate", &["int fd"]),
];

/// The nine syscalls whose first argument is an `unsigned int fd`.
const FD_FIRST: &[&str] = &[
    "read",
    "write",
    "close",
    "fsync",
    "fdatasync",
    "fchdir",
    "fchmod",
    "fchown",
];

fn format(name: &str, fields: &[String]) -> String {
    let mut text = format!(
        "name: {name}\nID: 1\nformat:\n\
         \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
         \tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
         \tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
         \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
         \tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n"
    );
    for (i, f) in fields.iter().enumerate() {
        text += &format!("\tfield:{f};\toffset:{};\tsize:8;\t", 16 + 8 * i);
        text += if f.starts_with("int ") || f.starts_with("long ") {
            "signed:1;\n"
        } else {
            "signed:0;\n"
        };
    }
    text + "\nprint fmt: \"\"\n"
}

fn target() -> FixedTarget {
    let mut t = FixedTarget {
        ncpus: 1,
        syscalls: Some(SyscallAbi::x86_64(16)),
        ..FixedTarget::default()
    };
    for (name, args) in SYSCALLS {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let enter = format!("sys_enter_{name}");
        let exit = format!("sys_exit_{name}");
        t = t
            .with_format("syscalls", &enter, &format(&enter, &args))
            .with_format("syscalls", &exit, &format(&exit, &["long ret".into()]));
    }
    t.with_format("test", "ev", vm::TP_FORMAT)
}

fn build(src: &str) -> CompiledProgram {
    build_for(src, &target(), &Options::default())
}

fn nr(name: &str) -> u64 {
    u64::from(SyscallAbi::x86_64(16).number(name).expect("in the table"))
}

/// Where the fake `pt_regs` live in the machine's kernel memory.
const REGS: usize = 512;
/// x86_64 `pt_regs` offsets.
const DI: usize = 112;
const ORIG_AX: usize = 120;

/// One syscall: the raw tracepoint's context (regs, id or return value)
/// with `regs` set up for syscall `nr` and first argument `arg0`.
fn fire(m: &mut Machine, prog: &CompiledProgram, index: usize, nr: u64, arg0: u64, second: u64) {
    m.kernel_mem[REGS + DI..REGS + DI + 8].copy_from_slice(&arg0.to_le_bytes());
    m.kernel_mem[REGS + ORIG_AX..REGS + ORIG_AX + 8].copy_from_slice(&nr.to_le_bytes());
    let mut ctx = [m.kernel_addr(REGS).to_le_bytes(), second.to_le_bytes()].concat();
    let r0 = run(m, prog, index, &mut ctx).unwrap_or_else(|e| panic!("syscall {nr}: {e}"));
    assert_eq!(r0, 0);
}

/// A keyed count map as (key string, count), sorted.
fn counts_by_name(m: &Machine, symbol: &str) -> Vec<(String, u64)> {
    let mut v: Vec<_> = m
        .entries(symbol, 0)
        .into_iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(&str_at(&k, 0)).into_owned(),
                u64_at(&v, 0),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_wide_enter_wildcard_is_one_raw_tracepoint_program() {
    let prog = build("tracepoint:syscalls:sys_enter_* { @[probe] = count(); }");
    // frobnicate is in no table: it keeps its own tracepoint program.
    assert_eq!(prog.programs.len(), 2, "{:?}", prog.programs);
    assert_eq!(prog.attach_count, SYSCALLS.len());
    assert_eq!(
        prog.programs[0].attach,
        Attach::RawSyscalls {
            exit: false,
            tracepoints: SYSCALLS.len() - 1
        }
    );
    assert_eq!(prog.programs[0].probe, "tracepoint:syscalls:sys_enter_*");
    assert_eq!(
        prog.programs[1].attach,
        Attach::Tracepoint {
            category: "syscalls".into(),
            event: "sys_enter_frobnicate".into()
        }
    );
    // One table entry per numbered syscall.
    assert_eq!(prog.map_entries.len(), SYSCALLS.len() - 1);
}

#[test]
fn the_syscall_number_selects_the_probe_name() {
    let prog = build("tracepoint:syscalls:sys_enter_* { @[probe] = count(); }");
    let mut m = Machine::new(&prog, 1);
    for call in [nr("read"), nr("read"), nr("openat"), nr("getpid")] {
        fire(&mut m, &prog, 0, call, 0, call);
    }
    // Syscalls the probe does not match, and numbers no syscall has.
    for call in [nr("dup"), nr("exit_group"), 100_000, u64::MAX, 1 << 32] {
        fire(&mut m, &prog, 0, call, 0, call);
    }
    assert_eq!(
        counts_by_name(&m, &prog.maps[0].symbol),
        [
            ("tracepoint:syscalls:sys_enter_getpid".to_string(), 1),
            ("tracepoint:syscalls:sys_enter_openat".to_string(), 1),
            ("tracepoint:syscalls:sys_enter_read".to_string(), 2),
        ]
    );
}

#[test]
fn compat_syscalls_are_skipped() {
    let prog = build("tracepoint:syscalls:sys_enter_* { @[probe] = count(); }");
    let mut m = Machine::new(&prog, 1);
    // TS_COMPAT in thread_info.status, 16 bytes into the task.
    m.kernel_mem[TASK + 16..TASK + 20].copy_from_slice(&2u32.to_le_bytes());
    fire(&mut m, &prog, 0, nr("read"), 0, nr("read"));
    assert!(m.entries(&prog.maps[0].symbol, 0).is_empty());
    m.kernel_mem[TASK + 16..TASK + 20].copy_from_slice(&0u32.to_le_bytes());
    fire(&mut m, &prog, 0, nr("read"), 0, nr("read"));
    assert_eq!(m.entries(&prog.maps[0].symbol, 0).len(), 1);
}

#[test]
fn exit_reads_the_number_from_the_registers_and_ret_from_the_context() {
    let prog = build(
        "tracepoint:syscalls:sys_exit_* /args.ret >= 0/ { @[probe] = sum(args.ret); \
         @nr[args.__syscall_nr] = count(); }",
    );
    assert_eq!(
        prog.programs[0].attach,
        Attach::RawSyscalls {
            exit: true,
            tracepoints: SYSCALLS.len() - 1
        }
    );
    let mut m = Machine::new(&prog, 1);
    fire(&mut m, &prog, 0, nr("read"), 0, 100);
    fire(&mut m, &prog, 0, nr("read"), 0, 5);
    fire(&mut m, &prog, 0, nr("close"), 0, (-9i64) as u64);
    fire(&mut m, &prog, 0, nr("getpid"), 0, 4242);
    // No syscall (orig_ax -1) and an unmatched one.
    fire(&mut m, &prog, 0, u64::MAX, 0, 0);
    fire(&mut m, &prog, 0, nr("dup"), 0, 3);
    assert_eq!(
        counts_by_name(&m, &prog.maps[0].symbol),
        [
            ("tracepoint:syscalls:sys_exit_getpid".to_string(), 4242),
            ("tracepoint:syscalls:sys_exit_read".to_string(), 105),
        ]
    );
    let mut nrs: Vec<(i64, u64)> = m
        .entries(&prog.maps[1].symbol, 0)
        .into_iter()
        .map(|(k, v)| (i64_at(&k, 0), u64_at(&v, 0)))
        .collect();
    nrs.sort_unstable();
    assert_eq!(nrs, [(0, 2), (39, 1)]);
}

#[test]
fn a_shared_argument_is_read_from_its_register() {
    let probes: Vec<String> = FD_FIRST
        .iter()
        .map(|n| format!("tracepoint:syscalls:sys_enter_{n}"))
        .collect();
    let prog = build(&format!(
        "{} {{ @[probe, args.fd] = count(); }}",
        probes.join(",")
    ));
    assert_eq!(prog.programs.len(), 1);
    let mut m = Machine::new(&prog, 1);
    fire(&mut m, &prog, 0, nr("fsync"), 7, nr("fsync"));
    fire(
        &mut m,
        &prog,
        0,
        nr("read"),
        0xffff_ffff_0000_0003,
        nr("read"),
    );
    let Some(Ty::Tuple(elems)) = &prog.maps[0].key else {
        panic!("a tuple key: {:?}", prog.maps[0].key);
    };
    let (offsets, _) = tuple_layout(elems);
    let fd_at = offsets[1] as usize;
    let mut got: Vec<(String, u64)> = m
        .entries(&prog.maps[0].symbol, 0)
        .into_iter()
        .map(|(k, _)| {
            (
                String::from_utf8_lossy(&str_at(&k, 0)).into_owned(),
                u64_at(&k, fd_at),
            )
        })
        .collect();
    got.sort();
    // `unsigned int fd` is declared with 8 bytes, as the record holds it.
    assert_eq!(
        got,
        [
            ("tracepoint:syscalls:sys_enter_fsync".into(), 7),
            (
                "tracepoint:syscalls:sys_enter_read".into(),
                0xffff_ffff_0000_0003
            ),
        ]
    );
}

#[test]
fn an_argument_typed_differently_keeps_a_program_each() {
    // syncfs declares `int fd`, the others `unsigned int fd`.
    let probes: Vec<String> = FD_FIRST
        .iter()
        .chain(&["syncfs"])
        .map(|n| format!("tracepoint:syscalls:sys_enter_{n}"))
        .collect();
    let prog = build(&format!("{} {{ @[args.fd] = count(); }}", probes.join(",")));
    assert_eq!(prog.programs.len(), FD_FIRST.len() + 1);
    assert!(
        prog.programs
            .iter()
            .all(|p| matches!(p.attach, Attach::Tracepoint { .. }))
    );
    assert!(prog.map_entries.is_empty());
}

#[test]
fn an_argument_some_tracepoints_lack_is_their_error() {
    // Only read and write have `buf`.
    let probes: Vec<String> = FD_FIRST
        .iter()
        .map(|n| format!("tracepoint:syscalls:sys_enter_{n}"))
        .collect();
    let src = format!("{} {{ @[args.buf] = count(); }}", probes.join(","));
    let file = ferret_syntax::SourceFile::new("test.bt", src);
    let ast = ferret_syntax::parse(&file).unwrap();
    let errors = ferret_compiler::compile(&ast, &target(), &Options::default()).unwrap_err();
    let messages: Vec<&str> = errors.iter().map(|d| d.message.as_str()).collect();
    assert!(
        messages.contains(&"tracepoint:syscalls:sys_enter_close has no field 'buf'"),
        "{messages:?}"
    );
    assert!(
        !messages.iter().any(|m| m.contains("sys_enter_read")),
        "{messages:?}"
    );
}

#[test]
fn few_syscall_tracepoints_keep_a_program_each() {
    let prog = build(
        "tracepoint:syscalls:sys_enter_read,tracepoint:syscalls:sys_enter_write { @[probe] = count(); }",
    );
    assert_eq!(prog.programs.len(), 2);
    assert!(prog.map_entries.is_empty());
}

#[test]
fn groups_and_single_tracepoints_mix_in_one_probe() {
    let prog = build(
        "tracepoint:syscalls:sys_enter_*,tracepoint:test:ev,t:syscalls:sys_exit_*,\
         tracepoint:syscalls:sys_enter_read { @[probe] = count(); }",
    );
    let kinds: Vec<String> = prog
        .programs
        .iter()
        .map(|p| format!("{:?} {}", p.attach, p.probe))
        .collect();
    assert_eq!(
        kinds,
        [
            "RawSyscalls { exit: false, tracepoints: 11 } tracepoint:syscalls:sys_enter_*",
            "Tracepoint { category: \"syscalls\", event: \"sys_enter_frobnicate\" } \
             tracepoint:syscalls:sys_enter_frobnicate",
            "Tracepoint { category: \"test\", event: \"ev\" } tracepoint:test:ev",
            "RawSyscalls { exit: true, tracepoints: 11 } tracepoint:syscalls:sys_exit_*",
            "Tracepoint { category: \"syscalls\", event: \"sys_exit_frobnicate\" } \
             tracepoint:syscalls:sys_exit_frobnicate",
            // Named twice: the repeat fires as its own program, as before.
            "Tracepoint { category: \"syscalls\", event: \"sys_enter_read\" } \
             tracepoint:syscalls:sys_enter_read",
        ]
    );
    assert_eq!(prog.attach_count, 12 + 1 + 12 + 1);
    let mut m = Machine::new(&prog, 1);
    fire(&mut m, &prog, 3, nr("close"), 0, 0);
    fire(&mut m, &prog, 0, nr("close"), 0, nr("close"));
    let mut ctx = vm::record();
    run(&mut m, &prog, 2, &mut ctx).unwrap();
    assert_eq!(
        counts_by_name(&m, &prog.maps[0].symbol),
        [
            ("tracepoint:syscalls:sys_enter_close".to_string(), 1),
            ("tracepoint:syscalls:sys_exit_close".to_string(), 1),
            ("tracepoint:test:ev".to_string(), 1),
        ]
    );
}

/// Regression: `probe` took the capacity of the first tracepoint's name,
/// so longer names of the same probe were cut short in map keys.
#[test]
fn probe_names_of_different_lengths_are_kept_whole() {
    let prog =
        build("tracepoint:test:ev,tracepoint:syscalls:sys_enter_fdatasync { @[probe] = count(); }");
    assert_eq!(prog.programs.len(), 2);
    let mut m = Machine::new(&prog, 1);
    for i in 0..2 {
        let mut ctx = vm::record();
        run(&mut m, &prog, i, &mut ctx).unwrap();
    }
    assert_eq!(
        counts_by_name(&m, &prog.maps[0].symbol),
        [
            ("tracepoint:syscalls:sys_enter_fdatasync".to_string(), 1),
            ("tracepoint:test:ev".to_string(), 1),
        ]
    );
}

#[test]
fn probe_compares_as_a_string_in_a_group() {
    let prog = build(
        "tracepoint:syscalls:sys_enter_* /probe == \"tracepoint:syscalls:sys_enter_close\"/ \
         { printf(\"%s %d\\n\", probe, args.__syscall_nr); }",
    );
    let mut m = Machine::new(&prog, 1);
    fire(&mut m, &prog, 0, nr("read"), 0, nr("read"));
    fire(&mut m, &prog, 0, nr("close"), 0, nr("close"));
    assert_eq!(m.events.len(), 1);
    let args = &prog.printfs[0].args;
    assert_eq!(
        str_at(&m.events[0], args[0].0 as usize),
        b"tracepoint:syscalls:sys_enter_close"
    );
    assert_eq!(i64_at(&m.events[0], args[1].0 as usize), 3);
}
