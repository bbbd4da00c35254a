//! Kprobes' generated code run in the userspace eBPF interpreter: arguments
//! and return values from the saved registers, `func`, and how wildcards
//! become programs.

#[expect(dead_code, reason = "the VM harness serves other tests too")]
mod vm;

use ferret_compiler::{Attach, CompiledProgram, FixedTarget, Options, Ty, compile};
use ferret_syntax::{SourceFile, parse};
use vm::{FUNC_IP, Machine, i64_at, put, run, u64_at};

/// Size of x86-64's `struct pt_regs`, and where the registers are.
const PT_REGS: usize = 168;
const RDI: usize = 112;
const RSI: usize = 104;
const RDX: usize = 96;
const RCX: usize = 88;
const R8: usize = 72;
const R9: usize = 64;
const RAX: usize = 80;

/// Where `vfs_read+16`'s function is, for `func` at an offset.
const VFS_READ: u64 = 0xffff_ffff_8150_0000;

fn target(kprobes: bool) -> FixedTarget {
    let f = |name: &str, module: &str| (name.to_string(), module.to_string());
    FixedTarget {
        ncpus: 1,
        kprobes,
        kernel_functions: vec![
            f("vfs_read", ""),
            f("vfs_readv", ""),
            f("vfs_write", ""),
            f("do_sys_openat2", ""),
            f("loop_control_ioctl", "loop"),
        ],
        symbols: [("vfs_read".to_string(), VFS_READ)].into(),
        formats: vm::target(1).formats,
        ..FixedTarget::default()
    }
}

fn compile_on(src: &str, kprobes: bool) -> Result<CompiledProgram, String> {
    let file = SourceFile::new("test.bt", src);
    let ast = parse(&file).map_err(|d| format!("{d:?}"))?;
    compile(&ast, &target(kprobes), &Options::default()).map_err(|d| {
        d.iter()
            .map(|d| d.message.clone())
            .collect::<Vec<_>>()
            .join("; ")
    })
}

fn compile_src(src: &str) -> Result<CompiledProgram, String> {
    compile_on(src, true)
}

fn regs(values: &[(usize, u64)]) -> Vec<u8> {
    let mut r = vec![0u8; PT_REGS];
    for (off, v) in values {
        put(&mut r, *off, &v.to_le_bytes());
    }
    r
}

/// Runs program `index` of `prog` on `regs`; returns the machine.
fn run_on(prog: &CompiledProgram, index: usize, regs: &mut [u8]) -> Machine {
    let mut m = Machine::new(prog, 1);
    let r0 = run(&mut m, prog, index, regs).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r0, 0);
    m
}

/// The integer arguments of the only printf event.
fn printed(prog: &CompiledProgram, m: &Machine) -> Vec<i64> {
    assert_eq!(m.events.len(), 1, "one event");
    let ev = &m.events[0];
    let id = (u64_at(ev, 0) >> 32) as usize;
    prog.printfs[id]
        .args
        .iter()
        .map(|(off, _)| i64_at(ev, *off as usize))
        .collect()
}

#[test]
fn kprobe_arguments_come_from_the_argument_registers() {
    let prog = compile_src(
        r#"kprobe:vfs_read { printf("%d %d %d %d %d %d", arg0, arg1, arg2, arg3, arg4, arg5); }"#,
    )
    .unwrap();
    assert_eq!(prog.object.programs[0].section, "kprobe/ferret_p0");
    assert_eq!(
        prog.programs[0].attach,
        Attach::Kprobe {
            functions: vec!["vfs_read".into()],
            module: None,
            offset: 0,
            retprobe: false
        }
    );
    let mut r = regs(&[
        (RDI, 1),
        (RSI, 2),
        (RDX, 3),
        (RCX, 4),
        (R8, 5),
        (R9, -6i64 as u64),
    ]);
    let m = run_on(&prog, 0, &mut r);
    assert_eq!(printed(&prog, &m), [1, 2, 3, 4, 5, -6]);
}

#[test]
fn kretprobe_return_value_and_func() {
    let prog = compile_src(r#"kretprobe:do_sys_openat2 { printf("%d %d", (int64)retval, func); }"#)
        .unwrap();
    assert_eq!(prog.object.programs[0].section, "kretprobe/ferret_p0");
    assert_eq!(prog.printfs[0].args[1].1, Ty::Ksym);
    let mut r = regs(&[(RAX, -2i64 as u64)]);
    let m = run_on(&prog, 0, &mut r);
    assert_eq!(printed(&prog, &m), [-2, FUNC_IP as i64]);
}

#[test]
fn func_at_an_offset_is_the_function_from_the_symbol_table() {
    let prog = compile_src(r#"kprobe:vfs_read+16 { printf("%d %s", func, probe); }"#).unwrap();
    let mut r = regs(&[]);
    let m = run_on(&prog, 0, &mut r);
    assert_eq!(
        i64_at(&m.events[0], prog.printfs[0].args[0].0 as usize),
        VFS_READ as i64
    );
    assert_eq!(
        vm::str_at(&m.events[0], prog.printfs[0].args[1].0 as usize),
        b"kprobe:vfs_read+16"
    );
    assert!(
        !m.calls
            .contains(&(ferret_bpf::insn::helper::GET_FUNC_IP as u32)),
        "the helper says 0 inside a function"
    );
}

#[test]
fn a_wildcard_is_one_program_on_every_function() {
    let prog = compile_src("kprobe:vfs_* { @[func] = count(); }").unwrap();
    assert_eq!(prog.programs.len(), 1);
    assert_eq!(prog.object.programs[0].section, "kprobe.multi/ferret_p0");
    assert_eq!(prog.programs[0].probe, "kprobe:vfs_*");
    assert_eq!(
        prog.programs[0].attach,
        Attach::Kprobe {
            functions: vec!["vfs_read".into(), "vfs_readv".into(), "vfs_write".into()],
            module: None,
            offset: 0,
            retprobe: false
        }
    );
    assert_eq!(prog.attach_count, 3);
    assert_eq!(prog.maps[0].key, Some(Ty::Ksym));
    let mut r = regs(&[]);
    let m = run_on(&prog, 0, &mut r);
    let keys: Vec<u64> = m
        .entries(&prog.maps[0].symbol, 0)
        .iter()
        .map(|(k, _)| u64_at(k, 0))
        .collect();
    assert_eq!(keys, [FUNC_IP]);
}

#[test]
fn a_wildcard_using_probe_is_one_program_per_function() {
    let prog = compile_src("kretprobe:vfs_read* { @[probe] = count(); }").unwrap();
    let probes: Vec<(&str, &str)> = prog
        .programs
        .iter()
        .zip(&prog.object.programs)
        .map(|(p, d)| (p.probe.as_str(), d.section.as_str()))
        .collect();
    assert_eq!(
        probes,
        [
            ("kretprobe:vfs_read", "kretprobe/ferret_p0"),
            ("kretprobe:vfs_readv", "kretprobe/ferret_p1")
        ]
    );
    assert_eq!(prog.attach_count, 2);
}

#[test]
fn module_functions_and_aliases() {
    let prog =
        compile_src("k:loop:loop_control_ioctl, kr:vfs_write { @[probe] = count(); }").unwrap();
    let attach: Vec<&Attach> = prog.programs.iter().map(|p| &p.attach).collect();
    assert_eq!(
        attach,
        [
            &Attach::Kprobe {
                functions: vec!["loop_control_ioctl".into()],
                module: Some("loop".into()),
                offset: 0,
                retprobe: false
            },
            &Attach::Kprobe {
                functions: vec!["vfs_write".into()],
                module: None,
                offset: 0,
                retprobe: true
            },
        ]
    );
    assert_eq!(prog.programs[0].probe, "kprobe:loop:loop_control_ioctl");
}

#[test]
fn kprobes_filter_pid_in_the_program() {
    let file = SourceFile::new("test.bt", "kprobe:vfs_read { @ = count(); }");
    let ast = parse(&file).unwrap();
    let opts = Options {
        filter_pid: Some(4242),
        ..Options::default()
    };
    let prog = compile(&ast, &target(true), &opts).unwrap();
    let mut r = regs(&[]);
    // The machine's pid is 4242: the count happens.
    let m = run_on(&prog, 0, &mut r);
    assert_eq!(m.entries(&prog.maps[0].symbol, 0).len(), 1);
    let opts = Options {
        filter_pid: Some(1),
        ..Options::default()
    };
    let prog = compile(&ast, &target(true), &opts).unwrap();
    let m = run_on(&prog, 0, &mut r);
    assert!(m.events.is_empty());
    assert!(
        m.entries(&prog.maps[0].symbol, 0)
            .iter()
            .all(|(_, v)| v.iter().all(|&b| b == 0))
    );
}

#[test]
fn misplaced_builtins_and_bad_probes_are_errors() {
    let err = |src: &str| compile_src(src).unwrap_err();
    assert_eq!(
        err("kprobe:vfs_read { print(retval); }"),
        "'retval' is only available in kretprobe probes"
    );
    assert_eq!(
        err("kretprobe:vfs_read { print(arg0); }"),
        "'arg0' is not available in kretprobe probes"
    );
    assert_eq!(
        err("kprobe:vfs_read { print(arg6); }"),
        "'arg6' is not available: x86-64 passes arguments in registers only up to arg5"
    );
    assert_eq!(
        err("kprobe:vfs_raed { }"),
        "no kernel function kprobe:vfs_raed"
    );
    assert_eq!(
        err("kprobe:tcp_* { }"),
        "no kernel function matches kprobe:tcp_*"
    );
    assert_eq!(
        err("kretprobe:vfs_read+8 { }"),
        "a kretprobe has no offset: 'kretprobe:vfs_read+8'"
    );
    assert_eq!(
        err("tracepoint:test:ev { print(func); }"),
        "'func' is not available in tracepoint probes"
    );
}

#[test]
fn without_kprobes_the_error_says_so() {
    assert_eq!(
        compile_on("kprobe:do_sys_openat2 { }", false).unwrap_err(),
        "kprobes are not available on this kernel (CONFIG_KPROBES is off)"
    );
    // Malformed probes are told as such on any kernel.
    assert_eq!(
        compile_on("kretprobe:vfs_read+8 { }", false).unwrap_err(),
        "a kretprobe has no offset: 'kretprobe:vfs_read+8'"
    );
}
