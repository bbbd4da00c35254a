//! End-to-end: kernel types from BTF on real events (`curtask` walks,
//! casts, bitfields, enums, raw tracepoints with typed arguments, the
//! script's own structs), and the exact errors bad uses get.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use common::{Output, TempDir, Tracer, gettid, kernel_or_skip, run, run_trigger, unique_name};

/// Kernel tests that also need the kernel's BTF.
fn btf_or_skip(module: &str) -> bool {
    if !kernel_or_skip(module) {
        return false;
    }
    if Path::new("/sys/kernel/btf/vmlinux").exists() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{module}: BTF test cannot run under CI: no /sys/kernel/btf/vmlinux");
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {module}: no /sys/kernel/btf/vmlinux"
    );
    false
}

macro_rules! btf {
    () => {
        if !btf_or_skip(module_path!()) {
            return;
        }
    };
}

/// What a trace of a uniquely named child printed.
struct Traced {
    out: Output,
    name: String,
    pid: u32,
}

/// Traces `program` (with the child's unique name as `$1`) while
/// `run_child` runs `/bin/sleep` under that name and returns its pid; then
/// waits for ferret to exit, or stops it with `stop_with`.
fn trace_child(
    tag: &str,
    program: &str,
    stop_with: Option<i32>,
    run_child: impl FnOnce(&Path) -> u32,
) -> Traced {
    let dir = TempDir::new(tag);
    let name = unique_name(tag);
    let exe = dir.alias(&name, "/bin/sleep");
    let t = Tracer::start_prog(&["-q"], program, &[&name]);
    let pid = run_child(&exe);
    let out = match stop_with {
        Some(sig) => t.stop(sig),
        None => t.finish(),
    };
    Traced { out, name, pid }
}

fn sleep_briefly(exe: &Path) -> u32 {
    run_trigger(exe, &["0.2"])
}

#[test]
fn curtask_walks_to_the_parent() {
    btf!();
    let t = trace_child(
        "task",
        r#"tracepoint:sched:sched_switch /((struct task_struct *)curtask)->comm == str($1)/ {
             printf("%d %s %d %d\n", curtask->pid, curtask->comm,
                    curtask->real_parent->pid, curtask.real_parent.tgid);
             exit();
           }"#,
        None,
        sleep_briefly,
    );
    // The child's parent is the thread that spawned it.
    assert_eq!(
        t.out.ok(),
        format!(
            "{} {} {} {}\n\n\n",
            t.pid,
            t.name,
            gettid(),
            std::process::id()
        )
    );
}

#[test]
fn a_bitfield_set_by_the_scheduler() {
    btf!();
    let t = trace_child(
        "bits",
        r#"tracepoint:sched:sched_switch /curtask->comm == str($1)/ {
             printf("%d %d\n", curtask->sched_reset_on_fork, curtask->pid);
             exit();
           }"#,
        None,
        // SCHED_RESET_ON_FORK sets the task's one-bit field.
        |exe| {
            let exe = exe.to_str().expect("utf-8 path");
            run_trigger(
                Path::new("/usr/bin/chrt"),
                &["--reset-on-fork", "--other", "0", exe, "0.2"],
            )
        },
    );
    assert_eq!(t.out.ok(), format!("1 {}\n\n\n", t.pid));
}

#[test]
fn enum_arguments_and_constants_print_by_name() {
    btf!();
    let t = trace_child(
        "enum",
        r#"rawtracepoint:hrtimer_start /comm == str($1)/ {
             @modes[args.mode] = count();
             @constant = (BPF_MAP_TYPE_HASH, (uint64)BPF_MAP_TYPE_HASH);
           }"#,
        Some(libc::SIGINT),
        sleep_briefly,
    );
    // nanosleep arms a relative timer.
    let text = t.out.ok();
    assert!(text.contains("@modes[HRTIMER_MODE_REL]: 1\n"), "{text}");
    assert!(
        text.contains("@constant: (BPF_MAP_TYPE_HASH, 1)\n"),
        "{text}"
    );
}

#[test]
fn raw_tracepoint_with_typed_arguments() {
    btf!();
    let t = trace_child(
        "rawt",
        // Integer work on a pointer argument (`% 8`) passes the verifier.
        r#"rt:sched_switch /args.prev->comm == str($1)/ {
             printf("%s %d %s %d %d\n", probe, args.prev->pid, args.prev->comm,
                    arg1 == (uint64)args.prev, args.prev % 8);
             exit();
           }"#,
        None,
        sleep_briefly,
    );
    assert_eq!(
        t.out.ok(),
        format!(
            "rawtracepoint:vmlinux:sched_switch {} {} 1 0\n\n\n",
            t.pid, t.name
        )
    );
}

#[test]
fn raw_tracepoints_without_btf_read_plain_arguments() {
    btf!();
    // Without BTF the event is found among tracefs's and attached as a
    // plain raw tracepoint; its arguments are u64s.
    let dir = TempDir::new("rnob");
    let name = unique_name("rnob");
    let exe = dir.alias(&name, "/bin/sleep");
    let mut child = Command::new(common::ferret_path())
        .args([
            "-q",
            "-e",
            r#"rawtracepoint:sched_switch { if (comm == str($1)) { printf("%d\n", arg1 != 0); exit(); } }"#,
            &name,
        ])
        .env("BPFTRACE_BTF", "/nonexistent/vmlinux")
        .env("__BPFTRACE_NOTIFY_PROBES_ATTACHED", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("ferret runs");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).expect("attach notice");
    assert_eq!(line.trim_end(), common::NOTIFY);
    run_trigger(&exe, &["0.2"]);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("output");
    let status = child.wait().expect("ferret ends");
    assert!(status.success(), "{status}");
    assert_eq!(rest, "1\n\n\n");
}

#[test]
fn script_structs_overlay_kernel_memory() {
    btf!();
    // On x86-64 a task starts with its thread_info, whose `cpu` is where the
    // task runs; the script's struct and bitfield must lay out as C does.
    let out = run(
        &[
            "-e",
            r#"struct ti { unsigned long flags; unsigned long syscall_work; unsigned int status;
                         unsigned int cpu; };
               struct ti_bits { unsigned long flags, syscall_work; unsigned int status;
                                unsigned int cpu_lo : 1, cpu_hi : 31; };
               begin {
                 $t = (struct ti *)curtask;
                 $b = (struct ti_bits *)curtask;
                 printf("%d %d %d\n", $t->cpu == cpu, $b->cpu_lo == (cpu & 1),
                        offsetof(struct thread_info, cpu) == offsetof(struct ti, cpu));
               }"#,
        ],
        None,
    );
    if std::env::consts::ARCH != "x86_64" {
        return;
    }
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert_eq!(out.stdout, "1 1 1\n\n\n");
}

#[test]
fn pointers_print_as_addresses() {
    btf!();
    let out = run(
        &[
            "-e",
            "begin { print(curtask); @p = curtask; printf(\"%d\\n\", sizeof(struct task_struct) > 1000); }",
        ],
        None,
    );
    assert_eq!(out.code, Some(0), "{out:#?}");
    let lines = out.stdout_lines();
    assert!(
        lines[0].starts_with("0xffff") && u64::from_str_radix(&lines[0][2..], 16).is_ok(),
        "{lines:?}"
    );
    assert_eq!(lines[1], "1");
    assert_eq!(
        lines.last().copied(),
        Some(format!("@p: {}", lines[0]).as_str())
    );
}

/// Runs `-e program` and compares stderr in full; the status must be 1 and
/// stdout empty.
fn check_error(program: &str, stderr: &str) {
    let out: Output = run(&["-e", program], None);
    assert_eq!(out.stderr, stderr, "stderr of {program:?}");
    assert_eq!(out.code, Some(1), "exit status of {program:?}");
    assert_eq!(out.stdout, "", "stdout of {program:?}");
}

#[test]
fn unknown_struct_suggests_a_close_one() {
    btf!();
    check_error(
        "begin { $t = (struct task_strct *)curtask; }",
        "stdin:1:15: error: unknown struct 'task_strct'
  |
1 | begin { $t = (struct task_strct *)curtask; }
  |               ^^^^^^^^^^^^^^^^^^^ no struct of this name
  |
  = help: did you mean 'struct task_struct'?
",
    );
}

#[test]
fn unknown_member_suggests_a_close_one() {
    btf!();
    check_error(
        "begin { print(curtask->real_parnet->pid); }",
        "stdin:1:24: error: struct task_struct has no member 'real_parnet'
  |
1 | begin { print(curtask->real_parnet->pid); }
  |                        ^^^^^^^^^^^ unknown member
  |
  = help: did you mean 'real_parent'?
",
    );
}

#[test]
fn arrow_on_a_struct_says_use_a_dot() {
    btf!();
    check_error(
        "begin { print(curtask->se->vruntime); }",
        "stdin:1:28: error: '->' needs a pointer, but this is a struct sched_entity
  |
1 | begin { print(curtask->se->vruntime); }
  |                            ^^^^^^^^ not a pointer
  |
  = help: use '.' to reach a member of a struct: .vruntime
",
    );
}

#[test]
fn member_of_an_integer_says_cast_it() {
    btf!();
    check_error(
        "begin { print(cgroup->pid); }",
        "stdin:1:23: error: cannot access field 'pid' of a uint64
  |
1 | begin { print(cgroup->pid); }
  |                       ^^^ no such field
  |
  = help: cast it to a pointer to a struct first: ((struct NAME *)expr)->pid
",
    );
}

#[test]
fn whole_struct_reads_are_refused() {
    btf!();
    check_error(
        "begin { @x = curtask->se; }",
        "stdin:1:14: error: cannot read a whole struct sched_entity
  |
1 | begin { @x = curtask->se; }
  |              ^^^^^^^^^^^ a struct
  |
  = help: read one of its members: expr.member
",
    );
}

#[test]
fn unknown_raw_tracepoint_and_argument() {
    btf!();
    check_error(
        "rawtracepoint:sched_swich { }",
        "stdin:1:1: error: raw tracepoint not found: sched_swich
  |
1 | rawtracepoint:sched_swich { }
  | ^^^^^^^^^^^^^^^^^^^^^^^^^ no such raw tracepoint
  |
  = help: did you mean 'rawtracepoint:sched_switch'?
",
    );
    check_error(
        "rt:sched_switch { print(args.nxt); }",
        "stdin:1:30: error: rawtracepoint:vmlinux:sched_switch has no argument 'nxt'
  |
1 | rt:sched_switch { print(args.nxt); }
  |                              ^^^ unknown argument
  |
  = help: did you mean 'next'?
",
    );
}

#[test]
fn misspelt_enum_constant_suggests_the_right_one() {
    btf!();
    check_error(
        "begin { print(BPF_MAP_TYPE_HASHH); }",
        "stdin:1:15: error: unknown identifier 'BPF_MAP_TYPE_HASHH'
  |
1 | begin { print(BPF_MAP_TYPE_HASHH); }
  |               ^^^^^^^^^^^^^^^^^^ not a builtin
  |
  = help: did you mean the enum constant 'BPF_MAP_TYPE_HASH'?
",
    );
}

#[test]
fn script_struct_errors_list_its_members() {
    check_error(
        "struct s { int a; char b[4]; } begin { print(((struct s *)0)->c); }",
        "stdin:1:63: error: struct s has no member 'c'
  |
1 | struct s { int a; char b[4]; } begin { print(((struct s *)0)->c); }
  |                                                               ^ unknown member
  |
  = help: its members are: a, b
",
    );
    check_error(
        "struct s { int a; } begin { $x = (struct s)0; }",
        "stdin:1:35: error: cannot cast to struct s, only to a pointer to it
  |
1 | struct s { int a; } begin { $x = (struct s)0; }
  |                                   ^^^^^^^^ not a pointer type
  |
  = help: cast to (struct s *)
",
    );
}

#[test]
fn no_btf_says_where_types_come_from() {
    let out = Command::new(common::ferret_path())
        .args(["-e", "begin { print(curtask->pid); }"])
        .env("BPFTRACE_BTF", "/nonexistent/vmlinux")
        .output()
        .expect("ferret runs");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "stdin:1:24: error: 'struct task_struct' needs the kernel's BTF: cannot read /nonexistent/vmlinux: No such file or directory (os error 2)
  |
1 | begin { print(curtask->pid); }
  |                        ^^^ no kernel type information
  |
  = help: kernel types come from /sys/kernel/btf/vmlinux (kernels built with CONFIG_DEBUG_INFO_BTF=y) or the file BPFTRACE_BTF names; a script can also define its own: struct S { ... };
"
    );
}

#[test]
fn raw_tracepoints_are_listed_with_their_arguments() {
    btf!();
    let out = run(&["-lv", "rt:sched_switch"], None);
    assert_eq!(
        out.ok(),
        "rawtracepoint:vmlinux:sched_switch
    bool preempt
    struct task_struct * prev
    struct task_struct * next
    unsigned int prev_state
"
    );
}

#[test]
fn tracepoint_struct_pointer_fields_walk_user_memory() {
    btf!();
    // `rqtp` is declared `const struct __kernel_timespec *` in the format,
    // and points into the child's memory.
    let t = trace_child(
        "tspc",
        r#"tracepoint:syscalls:sys_enter_clock_nanosleep /comm == str($1)/ {
             printf("%d %d\n", args.rqtp->tv_sec, args.rqtp.tv_nsec);
             exit();
           }"#,
        None,
        |exe| run_trigger(exe, &["1.25"]),
    );
    assert_eq!(t.out.ok(), "1 250000000\n\n\n");
}
