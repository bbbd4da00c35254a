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
        // A kernel address: the upper half (the direct map need not start
        // with 0xffff, e.g. 0xff42... with 5-level-capable layouts).
        lines[0].starts_with("0x")
            && u64::from_str_radix(&lines[0][2..], 16).is_ok_and(|a| a >> 63 == 1),
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
fn arrow_on_a_struct_is_a_dot() {
    btf!();
    // As in bpftrace, `->` is another spelling of `.`.
    let out = run(
        &[
            "-q",
            "-e",
            "begin { printf(\"%d\\n\", curtask->se->load.weight == curtask.se.load.weight); }",
        ],
        None,
    );
    assert_eq!(out.ok(), "1\n\n\n");
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
fn a_struct_too_large_to_hold_is_refused() {
    btf!();
    check_error(
        "struct big { char x[20000]; } begin { @x = *(struct big *)curtask; }",
        "stdin:1:44: error: struct big is 20000 bytes, too large to hold as a value (at most 16384)
  |
1 | struct big { char x[20000]; } begin { @x = *(struct big *)curtask; }
  |                                            ^^^^^^^^^^^^^^^^^^^^^^ too large
  |
  = help: read the members you need: expr.member
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

#[test]
fn task_shorthands_name_the_parent() {
    btf!();
    let t = trace_child(
        "ppid",
        r#"tracepoint:sched:sched_switch /comm == str($1)/ {
             printf("%d %s %d %s %d\n", ppid, pcomm, leader_tid == pid, leader_comm,
                    ppid(curtask) == ppid());
             exit();
           }"#,
        None,
        // The shell forks the child (`; true` keeps it from exec'ing it in
        // its own place), so the child's parent is the shell.
        |exe| {
            let script = format!("{} 0.2; true", exe.display());
            run_trigger(Path::new("/bin/sh"), &["-c", &script])
        },
    );
    assert_eq!(t.out.ok(), format!("{} sh 1 {} 1\n\n\n", t.pid, t.name));
}

/// `uname -snrvm` and the domain name, as the kernel's `struct new_utsname`
/// has them.
fn uname() -> [String; 6] {
    // SAFETY: utsname is plain data, all zeros is a valid value.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    assert_eq!(unsafe { libc::uname(&mut u) }, 0);
    let text = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    [
        text(&u.sysname),
        text(&u.nodename),
        text(&u.release),
        text(&u.version),
        text(&u.machine),
        text(&u.domainname),
    ]
}

#[test]
fn whole_structs_print_as_records() {
    btf!();
    let out = run(
        &[
            "-q",
            "-e",
            r#"begin {
                 print(curtask->nsproxy->uts_ns->name);
                 $cred = *curtask->cred;
                 @uid = $cred.uid;
                 @by_uid[curtask->cred->euid] = 1;
                 printf("%d\n", $cred.euid.val == uid);
               }"#,
        ],
        None,
    );
    let [sysname, nodename, release, version, machine, domainname] = uname();
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    assert_eq!(
        out.ok(),
        format!(
            "{{ .sysname = {sysname}, .nodename = {nodename}, .release = {release}, \
             .version = {version}, .machine = {machine}, .domainname = {domainname} }}\n\
             1\n\n\n\
             @by_uid[{{ .val = {uid} }}]: 1\n\
             @uid: {{ .val = {uid} }}\n"
        )
    );
}

#[test]
fn whole_structs_in_json_are_objects() {
    btf!();
    let out = run(
        &[
            "-q",
            "-f",
            "json",
            "-e",
            "begin { print(curtask->nsproxy->uts_ns->name); @uid = curtask->cred->uid; }",
        ],
        None,
    );
    let [sysname, nodename, release, version, machine, domainname] = uname();
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let lines = out.stdout_lines();
    assert_eq!(
        lines,
        [
            format!(
                "{{\"type\": \"value\", \"data\": {{\"sysname\": \"{sysname}\", \"nodename\": \
                 \"{nodename}\", \"release\": \"{release}\", \"version\": \"{version}\", \
                 \"machine\": \"{machine}\", \"domainname\": \"{domainname}\"}}}}"
            ),
            format!("{{\"type\": \"map\", \"data\": {{\"@uid\": {{\"val\": {uid}}}}}}}"),
        ]
    );
}

#[test]
fn addresses_of_variables_read_back() {
    btf!();
    let out = run(
        &[
            "-q",
            "-e",
            r#"struct foo { unsigned long long x_0:1; unsigned long long x_1:1;
                          unsigned long long x_2:2; }
               begin {
                 $a = 1; $b = &$a; print(($b, *$b));
                 $t = (1, "hello", 2); print(*(&$t));
                 $s = "hello"; $c = (int8 *)&$s; printf("%c %c\n", *$c, *++$c);
                 $val = (uint64)0x1e; $f = *(struct foo *)(&$val); print($f);
               }"#,
        ],
        None,
    );
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    let (addr, rest) = lines[0]
        .strip_prefix("(0x")
        .and_then(|l| l.split_once(", "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(u64::from_str_radix(addr, 16).is_ok(), "{text}");
    assert_eq!(rest, "1)");
    assert_eq!(
        lines[1..],
        [
            "(1, hello, 2)",
            "h e",
            "{ .x_0 = 0, .x_1 = 1, .x_2 = 3 }",
            "",
            ""
        ]
    );
}

#[test]
fn socket_cookies_follow_one_socket() {
    btf!();
    let me = std::process::id().to_string();
    let t = Tracer::start_prog(
        &["-q"],
        r#"rawtracepoint:inet_sock_set_state /pid == $1/ {
             printf("%d %d %d\n", socket_cookie(args.sk), args.oldstate, args.newstate);
           }"#,
        &[&me],
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let client =
        std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    drop((client, server, listener));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = t.stop(libc::SIGINT);
    let text = out.ok();
    // TCP states: 1 ESTABLISHED, 2 SYN_SENT, 7 CLOSE.
    let cookie_of = |from: &str, to: &str| {
        text.lines()
            .filter_map(|l| l.split_once(' '))
            .find(|(_, states)| *states == format!("{from} {to}"))
            .map(|(cookie, _)| cookie.parse::<u64>().expect("a number"))
            .unwrap_or_else(|| panic!("no {from} -> {to} transition in {text}"))
    };
    let connecting = cookie_of("7", "2");
    assert_ne!(connecting, 0);
    assert_eq!(
        cookie_of("2", "1"),
        connecting,
        "the client's socket keeps its cookie"
    );
}

#[test]
fn socket_cookie_outside_btf_typed_probes_is_refused() {
    btf!();
    check_error(
        "tracepoint:sock:inet_sock_set_state { @ = socket_cookie(args.skaddr); }",
        "stdin:1:43: error: socket_cookie() cannot be used in tracepoint probes
  |
1 | tracepoint:sock:inet_sock_set_state { @ = socket_cookie(args.skaddr); }
  |                                           ^^^^^^^^^^^^^^^^^^^^^^^^^^ bpf_get_socket_cookie is not available here
  |
  = help: the kernel gives this helper only to BTF-typed programs: use a rawtracepoint probe with a socket argument, e.g. rawtracepoint:inet_sock_set_state { socket_cookie(args.sk) }
",
    );
}

#[test]
fn task_shorthand_of_a_non_task_is_refused() {
    btf!();
    check_error(
        "begin { print(ppid(cgroup)); }",
        "stdin:1:20: error: ppid() takes a struct task_struct *, found uint64
  |
1 | begin { print(ppid(cgroup)); }
  |                    ^^^^^^ not a task
  |
  = help: cast it: ppid((struct task_struct *)addr), or call ppid() for the current task
",
    );
}

#[test]
fn percpu_kaddr_reads_a_per_cpu_variable_or_says_why_not() {
    btf!();
    let out = run(
        &[
            "-q",
            "-e",
            r#"begin { printf("%d\n", *percpu_kaddr("process_counts", 0) > 0); }"#,
        ],
        None,
    );
    // The verifier finds the variable's address in kallsyms, which lists
    // data symbols only on kernels built with CONFIG_KALLSYMS_ALL.
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").expect("kallsyms");
    if kallsyms.lines().any(|l| l.ends_with(" process_counts")) {
        assert_eq!(out.ok(), "1\n\n\n");
    } else {
        assert_eq!(out.code, Some(1), "{out:#?}");
        assert!(
            out.stderr.contains(
                "help: this kernel cannot give BPF programs the address of its variables: its \
                 symbol table (/proc/kallsyms) has no data symbols (built without \
                 CONFIG_KALLSYMS_ALL)"
            ),
            "{out:#?}"
        );
    }
}

#[test]
fn raw_tracepoint_of_a_module_without_btf_is_refused() {
    btf!();
    let program = "rawtracepoint:no_such_module:some_event { }";
    let modules_with_btf = std::fs::read_dir("/sys/kernel/btf")
        .expect("/sys/kernel/btf")
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_name() != "vmlinux"))
        .count();
    if modules_with_btf > 0 {
        let out = run(&["-e", program], None);
        assert_eq!(out.code, Some(1));
        assert!(out.stderr.starts_with(
            "stdin:1:1: error: no raw tracepoint matches no_such_module:some_event\n"
        ));
        return;
    }
    check_error(
        program,
        "stdin:1:1: error: no raw tracepoint matches no_such_module:some_event
  |
1 | rawtracepoint:no_such_module:some_event { }
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ no module with BTF of this name
  |
  = help: no /sys/kernel/btf/no_such_module: of the kernel's raw tracepoints only vmlinux's have BTF here (is the module loaded?)
",
    );
}

#[test]
fn args_as_a_whole_print_as_records() {
    btf!();
    let dir = TempDir::new("args");
    let file = dir.path("whole-args");
    let me = std::process::id().to_string();
    let t = Tracer::start_prog(
        &["-q"],
        r#"tracepoint:syscalls:sys_enter_openat /pid == $1 && str(args.filename) == str($2)/ {
             print(args); $a = args; printf("%d\n", $a.flags == args.flags); exit();
           }"#,
        &[&me, file.to_str().expect("utf-8 path")],
    );
    common::open_path(&file);
    let text = t.finish().ok().to_string();
    // The record's first 8 bytes (its common fields) hold what the kernel
    // puts there for BPF programs, as bpftrace shows too; the rest is the
    // call's: openat(AT_FDCWD, name, O_RDONLY | O_CLOEXEC, 0).
    let (record, rest) = text.split_once('\n').expect("two lines");
    assert!(record.starts_with("{ .common_type = "), "{text}");
    let tail = record
        .split_once(", .dfd = ")
        .map(|(_, t)| t)
        .unwrap_or_else(|| panic!("{text}"));
    let (filename, flags) = tail
        .strip_prefix("4294967196, .filename = 0x")
        .and_then(|t| t.split_once(", .flags = "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(u64::from_str_radix(filename, 16).is_ok(), "{text}");
    assert_eq!(
        flags,
        format!("{}, .mode = 0 }}", libc::O_RDONLY | libc::O_CLOEXEC)
    );
    assert_eq!(rest, "1\n\n\n");
}

#[test]
fn raw_tracepoint_args_as_a_whole() {
    btf!();
    let t = trace_child(
        "rtargs",
        r#"rt:sched_switch /args.prev->comm == str($1)/ { print(args); exit(); }"#,
        None,
        sleep_briefly,
    );
    let text = t.out.ok();
    let fields: Vec<&str> = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("{ "))
        .and_then(|l| l.strip_suffix(" }"))
        .unwrap_or_else(|| panic!("{text}"))
        .split(", ")
        .collect();
    // The arguments in order, each printed as its type prints.
    assert!(
        matches!(fields[0], ".preempt = false" | ".preempt = true"),
        "{text}"
    );
    // Kernel addresses: 0xffff... or, with 5-level paging's layout,
    // 0xff1f...
    assert!(fields[1].starts_with(".prev = 0xff"), "{text}");
    assert!(fields[2].starts_with(".next = 0xff"), "{text}");
    let state = fields[3]
        .strip_prefix(".prev_state = ")
        .unwrap_or_else(|| panic!("{text}"));
    assert!(state.parse::<u32>().is_ok(), "{text}");
}
