//! End-to-end: uprobes, uretprobes and USDT probes on functions and probe
//! sites of this very test binary (and of libc), fired by the test itself:
//! arguments, return values, wildcards, user stacks, USDT arguments and
//! semaphores, `-p`, listing, teardown, and the errors for bad targets.

mod common;

use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use common::{Tracer, bpf_prog_ids, kernel_or_skip, run_prog, wait_progs_released};

macro_rules! kernel {
    () => {
        if !kernel_or_skip(module_path!()) {
            return;
        }
    };
}

fn exe() -> String {
    std::env::current_exe()
        .expect("current exe")
        .to_string_lossy()
        .into_owned()
}

fn my_pid() -> String {
    std::process::id().to_string()
}

// Functions to probe. Each test probes its own, as tests run in parallel
// in this one process.

#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn ferret_test_add6(a: i64, b: i64, c: i64, d: i64, e: i64, f: i64) -> i64 {
    std::hint::black_box(a + b + c + d + e + f)
}

#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn ferret_test_wild_one() -> u64 {
    std::hint::black_box(1)
}

#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn ferret_test_wild_two() -> u64 {
    std::hint::black_box(2)
}

#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn ferret_test_wild_done() -> u64 {
    std::hint::black_box(3)
}

#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn ferret_test_stack_leaf(x: u64) -> u64 {
    std::hint::black_box(x + 1)
}

#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn ferret_test_other_pid() -> u64 {
    std::hint::black_box(4)
}

#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn ferret_test_teardown() -> u64 {
    std::hint::black_box(5)
}

#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn ferret_test_offset(x: u64) -> u64 {
    std::hint::black_box(x * 3 + 1)
}

/// The semaphore of the `ferret:args` USDT probe: non-zero while a tracer
/// is attached to it.
#[unsafe(link_section = ".probes")]
static FERRET_ARGS_SEMAPHORE: AtomicU16 = AtomicU16::new(0);

/// A USDT probe site, as `<sys/sdt.h>`'s `STAP_PROBE` makes one: a `nop`
/// where the probe fires and a `.note.stapsdt` note naming it, its
/// semaphore and where its four arguments are when it fires (two
/// registers, a constant, and memory 8 bytes past a register).
macro_rules! usdt_site {
    ($a:expr, $b:expr, $p:expr) => {
        // SAFETY: a nop, and a note section the program never reads.
        unsafe {
            std::arch::asm!(
                "990: nop",
                ".pushsection .note.stapsdt,\"\",@note",
                ".balign 4",
                ".4byte 992f-991f, 994f-993f, 3",
                "991: .asciz \"stapsdt\"",
                "992: .balign 4",
                "993: .8byte 990b",
                ".8byte _.stapsdt.base",
                ".8byte {sema}",
                ".asciz \"ferret\"",
                ".asciz \"args\"",
                ".asciz \"-4@{a:e} 8@{b} -2@$-7 8@8({p})\"",
                "994: .balign 4",
                ".popsection",
                ".ifndef _.stapsdt.base",
                ".pushsection .stapsdt.base,\"aG\",@progbits,.stapsdt.base,comdat",
                ".weak _.stapsdt.base",
                ".hidden _.stapsdt.base",
                "_.stapsdt.base: .space 1",
                ".size _.stapsdt.base, 1",
                ".popsection",
                ".endif",
                a = in(reg) $a,
                b = in(reg) $b,
                p = in(reg) $p,
                sema = sym FERRET_ARGS_SEMAPHORE,
                options(att_syntax, nostack, readonly, preserves_flags),
            );
        }
    };
}

/// Fires `ferret:args` at one of its two sites when a tracer is attached.
#[inline(never)]
fn fire_usdt(site: u32, a: i32, b: i64) {
    let mem: [i64; 2] = [0, b * 10];
    let p = mem.as_ptr();
    if FERRET_ARGS_SEMAPHORE.load(Ordering::Relaxed) == 0 {
        return;
    }
    if site == 0 {
        usdt_site!(a, b, p);
    } else {
        usdt_site!(a, b, p);
    }
    std::hint::black_box(mem);
}

/// Calls `f` until the tracer prints a line, then returns it. The probes
/// are attached once ferret says so, so the first call fires; the wait
/// for its output is long enough that a busy machine does not make the
/// test call again (the tests expect the output of one call).
fn call_until_output(t: &mut Tracer, mut f: impl FnMut()) -> String {
    for _ in 0..10 {
        f();
        if let Some(line) = t.next_line(Duration::from_secs(2)) {
            return line;
        }
    }
    panic!("no output from the probe");
}

#[test]
fn uprobe_arguments_and_uretprobe_return_value() {
    kernel!();
    let exe = exe();
    let mut t = Tracer::start_prog(
        &["-q", "-p", &my_pid()],
        &format!(
            r#"uprobe:{exe}:ferret_test_add6 {{ printf("%d %d %d %d %d %d\n", arg0, arg1, arg2, arg3, arg4, arg5); }}
               uretprobe:{exe}:ferret_test_add6 {{ printf("%d %s %s\n", retval, func, probe); exit(); }}"#
        ),
        &[],
    );
    let first = call_until_output(&mut t, || {
        ferret_test_add6(1, 2, 3, 4, 5, -6);
    });
    assert_eq!(first, "1 2 3 4 5 -6\n");
    let out = t.finish();
    assert_eq!(
        out.ok(),
        format!("1 2 3 4 5 -6\n9 ferret_test_add6 uretprobe:{exe}:ferret_test_add6\n\n\n")
    );
}

#[test]
fn wildcard_functions_and_the_binary_of_the_pid() {
    kernel!();
    // With -p the binary may be left out: the process's executable.
    let mut t = Tracer::start_prog(
        &["-p", &my_pid()],
        r#"uprobe:ferret_test_wild_* { @[func] = count(); if (func == "ferret_test_wild_done") { exit(); } }"#,
        &[],
    );
    // The first call may come before the probes fire; count from a
    // marker on.
    let _ = t.next_line(Duration::from_millis(1));
    for _ in 0..3 {
        ferret_test_wild_one();
    }
    ferret_test_wild_two();
    ferret_test_wild_two();
    ferret_test_wild_done();
    let out = t.finish();
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert_eq!(out.stderr, "Attached 3 probes\n");
    assert_eq!(
        out.stdout,
        "\n\n@[ferret_test_wild_done]: 1\n@[ferret_test_wild_two]: 2\n@[ferret_test_wild_one]: 3\n"
    );
}

#[test]
fn user_stacks_are_symbolized_in_the_process() {
    kernel!();
    let exe = exe();
    let mut t = Tracer::start_prog(
        &["-q", "-p", &my_pid()],
        &format!(
            r#"uprobe:{exe}:ferret_test_stack_leaf {{ print(ustack(1)); print(ustack(perf, 1)); print(ustack(raw, 1)); printf("%s\n", usym(reg("ip"))); exit(); }}"#
        ),
        &[],
    );
    call_until_output(&mut t, || {
        ferret_test_stack_leaf(1);
    });
    let out = t.finish();
    let addr = ferret_test_stack_leaf as *const () as u64;
    assert_eq!(
        out.ok(),
        format!(
            "\n        ferret_test_stack_leaf+0\n\n\n\t{addr:x} ferret_test_stack_leaf+0 ({exe})\n\n\n{addr:x}\n\nferret_test_stack_leaf\n\n\n"
        )
    );
}

#[test]
fn usdt_arguments_sites_and_semaphore() {
    kernel!();
    let exe = exe();
    assert_eq!(FERRET_ARGS_SEMAPHORE.load(Ordering::Relaxed), 0);
    let mut t = Tracer::start_prog(
        &["-p", &my_pid()],
        // `U:`, and with -p no binary: the process's files are searched.
        r#"U:ferret:args { printf("%s %d %d %d %d\n", probe, arg0, arg1, arg2, arg3); if (arg0 == 6) { exit(); } }"#,
        &[],
    );
    // The kernel counts the semaphore up when the probes attach (once
    // per site).
    assert!(FERRET_ARGS_SEMAPHORE.load(Ordering::Relaxed) > 0);
    let first = call_until_output(&mut t, || fire_usdt(0, -5, 7));
    assert_eq!(first, format!("usdt:{exe}:ferret:args -5 7 -7 70\n"));
    fire_usdt(1, 6, -8);
    let out = t.finish();
    // Two sites of one probe: one probe to the user.
    assert_eq!(out.stderr, "Attached 1 probe\n");
    // The first site may have fired more than once before its first line
    // came back; the second site's line comes last.
    let site0 = format!("usdt:{exe}:ferret:args -5 7 -7 70\n");
    let rest = out.stdout.trim_start_matches(site0.as_str());
    assert!(rest.len() < out.stdout.len(), "{out:#?}");
    assert_eq!(rest, format!("usdt:{exe}:ferret:args 6 -8 -7 -80\n\n\n"));
    assert_eq!(FERRET_ARGS_SEMAPHORE.load(Ordering::Relaxed), 0);
}

/// The offsets of `function` in this binary that do and do not start an
/// instruction, the first of each after 0.
fn offsets_in(function: &str) -> (u64, u64) {
    let bin = ferret_usym::Binary::read(std::path::Path::new(&exe())).expect("read self");
    let f = bin.function(function).expect("function").clone();
    let path = std::path::Path::new(&bin.path);
    let at = |want: bool| {
        (1..f.size)
            .find(|&o| ferret_usym::insn::on_instruction_boundary(path, &f, o).unwrap() == want)
            .expect("such an offset")
    };
    (at(true), at(false))
}

#[test]
fn offsets_inside_a_function_start_an_instruction() {
    kernel!();
    let exe = exe();
    let (good, _) = offsets_in("ferret_test_offset");
    let mut t = Tracer::start_prog(
        &["-q", "-p", &my_pid()],
        &format!(r#"uprobe:{exe}:ferret_test_offset+{good} {{ printf("%s\n", probe); exit(); }}"#),
        &[],
    );
    let line = call_until_output(&mut t, || {
        ferret_test_offset(2);
    });
    assert_eq!(line, format!("uprobe:{exe}:ferret_test_offset+{good}\n"));
    t.finish();
}

#[test]
fn library_by_name_with_str_on_user_memory() {
    kernel!();
    let mut t = Tracer::start_prog(
        &["-q", "-p", &my_pid()],
        r#"uprobe:libc:getenv { if (str(arg0) == "FERRET_UPROBE_TEST") { printf("%s %s\n", probe, str(arg0)); exit(); } }"#,
        &[],
    );
    let line = call_until_output(&mut t, || {
        let _ = std::env::var_os("FERRET_UPROBE_TEST");
    });
    let (probe, name) = line.trim_end().split_once(' ').expect("two words");
    assert!(
        probe.starts_with("uprobe:/") && probe.contains("libc.so") && probe.ends_with(":getenv"),
        "{line}"
    );
    assert_eq!(name, "FERRET_UPROBE_TEST");
    t.finish();
}

#[test]
fn pid_limits_probes_to_that_process() {
    kernel!();
    let exe = exe();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep");
    let mut t = Tracer::start_prog(
        &["-q", "-p", &sleeper.id().to_string()],
        &format!(
            r#"uprobe:{exe}:ferret_test_other_pid {{ printf("fired\n"); }} interval:ms:300 {{ exit(); }}"#
        ),
        &[],
    );
    for _ in 0..20 {
        ferret_test_other_pid();
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = t.next_line(Duration::from_millis(1));
    let out = t.finish();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_eq!(out.ok(), "\n\n");
}

#[test]
fn teardown_leaves_no_programs_or_probes() {
    kernel!();
    let exe = exe();
    let mut t = Tracer::start_prog(
        &["-q", "-p", &my_pid()],
        &format!(r#"uprobe:{exe}:ferret_test_teardown {{ printf("x\n"); }}"#),
        &[],
    );
    let ferret_pid = t.pid();
    let ids = bpf_prog_ids(ferret_pid);
    assert_eq!(ids.len(), 1, "one program");
    call_until_output(&mut t, || {
        ferret_test_teardown();
    });
    let out = t.stop(libc::SIGKILL);
    assert_eq!(out.signal, Some(libc::SIGKILL));
    assert_eq!(
        wait_progs_released(&ids, Duration::from_secs(5)),
        Vec::<u32>::new()
    );
    // The probe was made through the uprobe PMU, owned by its fd: nothing
    // of ours is left in uprobe_events.
    for events in [
        "/sys/kernel/tracing/uprobe_events",
        "/sys/kernel/debug/tracing/uprobe_events",
    ] {
        if let Ok(text) = std::fs::read_to_string(events) {
            assert!(!text.contains(&format!("ferret_{ferret_pid}")), "{text}");
        }
    }
}

#[test]
fn listing_functions_and_usdt_probes() {
    let exe = exe();
    let out = common::run(&["-l", &format!("uprobe:{exe}:ferret_test_wild_*")], None);
    assert_eq!(
        out.ok(),
        format!(
            "uprobe:{exe}:ferret_test_wild_done\nuprobe:{exe}:ferret_test_wild_one\nuprobe:{exe}:ferret_test_wild_two\n"
        )
    );
    let out = common::run(&["-l", &format!("usdt:{exe}:*")], None);
    assert_eq!(out.ok(), format!("usdt:{exe}:ferret:args\n"));
}

#[test]
fn bad_targets_are_clear_errors() {
    let exe = exe();
    let err = |prog: &str| {
        let out = run_prog(&[], prog, &[]);
        assert_eq!(out.code, Some(1), "{out:#?}");
        assert_eq!(out.stdout, "");
        out.stderr
    };
    assert_eq!(
        err("uprobe:/nonexistent/prog:main { }"),
        "stdin:1:1: error: uprobe target file '/nonexistent/prog' does not exist or is not executable
  |
1 | uprobe:/nonexistent/prog:main { }
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ no such binary
  |
  = help: give the path of an ELF executable or shared library
  = note: cannot read /nonexistent/prog: No such file or directory
"
    );
    assert_eq!(
        err("uprobe:/etc/hostname:main { }"),
        "stdin:1:1: error: /etc/hostname is not an ELF file
  |
1 | uprobe:/etc/hostname:main { }
  | ^^^^^^^^^^^^^^^^^^^^^^^^^ not a binary
  |
  = help: uprobe probes go in ELF executables and shared libraries
"
    );
    let prog = format!("uretprobe:{exe}:ferret_test_add7 {{ }}");
    let marks = "^".repeat(prog.len() - 4);
    assert_eq!(
        err(&prog),
        format!(
            "stdin:1:1: error: function 'ferret_test_add7' not found in {exe}
  |
1 | {prog}
  | {marks} no such function
  |
  = help: did you mean 'ferret_test_add6'?
"
        )
    );
    let (_, bad) = offsets_in("ferret_test_offset");
    let prog = format!("uprobe:{exe}:ferret_test_offset+{bad} {{ }}");
    let marks = "^".repeat(prog.len() - 4);
    assert_eq!(
        err(&prog),
        format!(
            "stdin:1:1: error: could not add uprobe into middle of instruction: {exe}:ferret_test_offset+{bad}
  |
1 | {prog}
  | {marks} not the start of an instruction
  |
  = help: use --unsafe to put the uprobe there anyway; one in the middle of an instruction corrupts the traced process
"
        )
    );
    let prog = format!("usdt:{exe}:ferret:arg {{ }}");
    let marks = "^".repeat(prog.len() - 4);
    assert_eq!(
        err(&prog),
        format!(
            "stdin:1:1: error: no USDT probe 'ferret:arg' in {exe}
  |
1 | {prog}
  | {marks} no such probe
  |
  = help: did you mean 'ferret:args'?
"
        )
    );
}

#[test]
fn missing_binaries_and_functions_obey_missing_probes() {
    kernel!();
    let exe = exe();
    let out = run_prog(
        &[],
        &format!(
            r#"config = {{ missing_probes = warn; }}
               uprobe:/nonexistent/lib.so:f, uprobe:{exe}:ferret_test_add6 {{ }}
               uretprobe:{exe}:no_such_function {{ }}
               begin {{ exit(); }}"#
        ),
        &[],
    );
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert!(
        out.stderr.contains(
            "warning: uprobe target file '/nonexistent/lib.so' does not exist or is not executable"
        ),
        "{out:#?}"
    );
    assert!(
        out.stderr.contains(&format!(
            "warning: function 'no_such_function' not found in {exe}"
        )),
        "{out:#?}"
    );
    assert!(out.stderr.contains("Attached 2 probes"), "{out:#?}");
}

#[test]
fn every_file_of_the_process_with_a_star() {
    kernel!();
    let mut t = Tracer::start_prog(
        &["-q", "-p", &my_pid()],
        r#"uprobe:*:ferret_test_star { printf("%s\n", func); exit(); }"#,
        &[],
    );
    let line = call_until_output(&mut t, || {
        ferret_test_star();
    });
    assert_eq!(line, "ferret_test_star\n");
    t.finish();
    let out = run_prog(&[], "uprobe:*:f { }", &[]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .starts_with("stdin:1:1: error: uprobe target '*' needs -p PID"),
        "{out:#?}"
    );
}

#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn ferret_test_star() -> u64 {
    std::hint::black_box(6)
}
