//! End-to-end: tracepoints, profile and interval probes, builtins, with
//! events triggered by the test itself or by uniquely named children.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{TempDir, Tracer, gettid, kernel_or_skip, open_path, run_trigger, unique_name};

macro_rules! kernel {
    () => {
        if !kernel_or_skip(module_path!()) {
            return;
        }
    };
}

fn my_pid() -> String {
    std::process::id().to_string()
}

#[test]
fn tracepoint_with_pid_predicate_and_args_field() {
    kernel!();
    let dir = TempDir::new("open");
    let target = dir.path("needle-file");
    let t = Tracer::start_prog(
        &["-q"],
        r#"tracepoint:syscalls:sys_enter_openat /pid == $1/ {
             if (str(args.filename) == str($2)) { printf("%s\n", str(args.filename)); exit(); }
           }"#,
        &[&my_pid(), target.to_str().unwrap()],
    );
    open_path(&target);
    let out = t.finish();
    assert_eq!(out.ok(), format!("{}\n\n\n", target.display()));
}

#[test]
fn old_arrow_syntax_and_t_alias() {
    kernel!();
    let dir = TempDir::new("arrw");
    let target = dir.path("arrow-file");
    let t = Tracer::start_prog(
        &["-q"],
        r#"t:syscalls:sys_enter_openat /pid == $1 && str(args->filename) == str($2)/ {
             printf("%s %d\n", str(args->filename), args->flags & 3);
             exit();
           }"#,
        &[&my_pid(), target.to_str().unwrap()],
    );
    open_path(&target);
    let out = t.finish();
    // O_RDONLY
    assert_eq!(out.ok(), format!("{} 0\n\n\n", target.display()));
}

#[test]
fn wildcard_tracepoints_and_probe_builtin() {
    kernel!();
    let dir = TempDir::new("wild");
    let target = dir.path("wild-file");
    let t = Tracer::start_prog(
        &["-q"],
        r#"tracepoint:syscalls:sys_enter_opena* /pid == $1/ {
             if (str(args.filename) == str($2)) { printf("%s\n", probe); exit(); }
           }"#,
        &[&my_pid(), target.to_str().unwrap()],
    );
    open_path(&target);
    let out = t.finish();
    assert_eq!(out.ok(), "tracepoint:syscalls:sys_enter_openat\n\n\n");
}

/// Counts a child's syscalls by probe over the tracepoints `pattern` names;
/// /bin/true exits through exit_group and its loader maps memory.
fn count_by_probe(pattern: &str) {
    let dir = TempDir::new("many");
    let name = unique_name("many");
    let exe = dir.alias(&name, "/bin/true");
    let t = Tracer::start_prog(
        &["-q"],
        &format!(
            r#"{pattern} /comm == str($1)/ {{ @[probe] = count(); }}
               tracepoint:sched:sched_process_exit /comm == str($1)/ {{ exit(); }}"#
        ),
        &[&name],
    );
    run_trigger(&exe, &[]);
    let out = t.finish();
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert!(out.stderr.is_empty(), "{out:#?}");
    let lines = out.stdout_lines();
    assert_eq!(lines[..2], ["", ""], "{out:#?}");
    for expected in ["sys_enter_mmap", "sys_enter_mprotect"] {
        let prefix = format!("@[tracepoint:syscalls:{expected}]: ");
        assert!(
            lines.iter().any(|l| l.starts_with(&prefix)),
            "no {expected} line in {out:#?}"
        );
    }
    assert!(
        lines.contains(&"@[tracepoint:syscalls:sys_enter_exit_group]: 1"),
        "{out:#?}"
    );
    // Counts print in ascending order.
    let counts: Vec<u64> = lines[2..]
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(counts.is_sorted(), "{counts:?}");
}

#[test]
fn count_by_probe_over_a_wildcard_and_a_probe_list() {
    kernel!();
    count_by_probe("tracepoint:syscalls:sys_enter_m*,tracepoint:syscalls:sys_enter_exit_group");
}

#[test]
fn count_by_probe_over_every_sys_enter_tracepoint() {
    kernel!();
    count_by_probe("tracepoint:syscalls:sys_enter_*");
}

#[test]
fn builtins_in_a_child_process() {
    kernel!();
    let dir = TempDir::new("bltn");
    let name = unique_name("bltn");
    let exe = dir.alias(&name, "/bin/true");
    let t = Tracer::start_prog(
        &["-q"],
        r#"tracepoint:syscalls:sys_enter_exit_group /comm == str($1)/ {
             printf("pid=%d tid=%d comm=%s uid=%d gid=%d\n", pid, tid, comm, uid, gid);
             printf("cpu_ok=%d cgroup_ok=%d elapsed_ok=%d\n",
                    cpu < ncpus, cgroup != 0, elapsed < 10000000000);
             @t0 = nsecs;
             @t1 = nsecs;
             exit();
           }"#,
        &[&name],
    );
    let pid = run_trigger(&exe, &[]);
    let out = t.finish();
    let stdout = out.ok();
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next(),
        Some(format!("pid={pid} tid={pid} comm={name} uid=0 gid=0").as_str())
    );
    assert_eq!(lines.next(), Some("cpu_ok=1 cgroup_ok=1 elapsed_ok=1"));
    assert_eq!(lines.next(), Some(""));
    assert_eq!(lines.next(), Some(""));
    let value = |l: Option<&str>, name: &str| -> u64 {
        l.and_then(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("{name} in {stdout}"))
            .parse()
            .unwrap()
    };
    let t0 = value(lines.next(), "@t0: ");
    let t1 = value(lines.next(), "@t1: ");
    assert!(t0 > 0 && t0 <= t1, "{t0} {t1}");
}

#[test]
fn tid_of_the_triggering_thread() {
    kernel!();
    let dir = TempDir::new("tid");
    let target = dir.path("tid-file");
    let t = Tracer::start_prog(
        &["-q"],
        r#"tracepoint:syscalls:sys_enter_openat /pid == $1 && str(args.filename) == str($2)/ {
             printf("%d %d %llu\n", pid, tid, nsecs > 1000);
             exit();
           }"#,
        &[&my_pid(), target.to_str().unwrap()],
    );
    // From another thread, so pid and tid differ.
    let tid = std::thread::spawn(move || {
        open_path(&target);
        gettid()
    })
    .join()
    .unwrap();
    let out = t.finish();
    assert_eq!(out.ok(), format!("{} {tid} 1\n\n\n", my_pid()));
}

#[test]
fn rand_varies() {
    kernel!();
    let out = common::run_prog(
        &["-q"],
        r#"begin { @[rand] = count(); @[rand] = count(); @[rand] = count(); @[rand] = count(); exit(); }"#,
        &[],
    );
    let stdout = out.ok();
    // Four draws of 32 random bits: at least two distinct values.
    assert!(
        stdout.lines().filter(|l| l.starts_with("@[")).count() >= 2,
        "{stdout}"
    );
}

#[test]
fn ksym_of_a_timer_function() {
    kernel!();
    // nanosleep arms an hrtimer whose callback is hrtimer_wakeup. Other
    // timers may be armed while this thread is current (a perf event that
    // another tracer enables on this CPU arms perf_swevent_hrtimer), so
    // every timer of this thread is printed until the sleep's shows up.
    let mut t = Tracer::start_prog(
        &["-q"],
        r#"tracepoint:timer:hrtimer_start /tid == $1/ { printf("%s\n", ksym(args.function)); }"#,
        &[&gettid().to_string()],
    );
    std::thread::sleep(Duration::from_millis(1));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let Some(line) = t.next_line(Duration::from_millis(100)) else {
            continue;
        };
        let done = line == "hrtimer_wakeup\n";
        seen.push(line);
        if done {
            break;
        }
    }
    let out = t.stop(libc::SIGINT);
    assert_eq!(
        seen.last().map(String::as_str),
        Some("hrtimer_wakeup\n"),
        "{out:#?}"
    );
    assert!(
        seen.iter().all(|l| {
            let sym = l.trim_end();
            !sym.is_empty() && !sym.starts_with("0x") && !sym.contains(' ')
        }),
        "{seen:?}"
    );
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert_eq!(out.stderr, "", "{out:#?}");
}

#[test]
fn interval_and_profile_fire() {
    kernel!();
    let out = common::run_prog(
        &["-q"],
        "interval:ms:20 { @i = count(); } profile:hz:199 { @p = count(); } interval:ms:300 { exit(); }",
        &[],
    );
    let stdout = out.ok();
    let value = |name: &str| -> u64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("{name} in {stdout}"))
            .parse()
            .unwrap()
    };
    let i = value("@i: ");
    let p = value("@p: ");
    assert!(
        (5..=20).contains(&i),
        "interval:ms:20 fired {i} times in 300 ms"
    );
    assert!(p > 0, "profile never fired");
}

#[test]
fn kstack_in_profile() {
    kernel!();
    let dir = TempDir::new("kstk");
    let name = unique_name("kstk");
    let dd = dir.alias(&name, "/bin/dd");
    // dd copying /dev/zero spends its time in the kernel.
    let t = Tracer::start_prog(
        &["-q"],
        r#"profile:hz:997 /comm == str($1)/ { @[kstack] = count(); }
           tracepoint:sched:sched_process_exit /comm == str($1)/ { exit(); }"#,
        &[&name],
    );
    run_trigger(
        &dd,
        &["if=/dev/zero", "of=/dev/null", "bs=64k", "count=20000"],
    );
    let out = t.finish();
    let stdout = out.ok();
    let frames: Vec<&str> = stdout.lines().filter(|l| l.starts_with(' ')).collect();
    assert!(!frames.is_empty(), "no kernel frames: {stdout}");
    for f in &frames {
        let sym = f
            .strip_prefix("        ")
            .unwrap_or_else(|| panic!("frame not indented 8 spaces: {f:?}"));
        assert!(!sym.starts_with(' '), "{f:?}");
        let (name, off) = sym
            .rsplit_once('+')
            .unwrap_or_else(|| panic!("frame without +offset: {f:?}"));
        assert!(!name.is_empty(), "{f:?}");
        off.parse::<u64>()
            .unwrap_or_else(|_| panic!("bad offset in {f:?}"));
    }
    assert!(stdout.contains("@[\n        "), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("]: ")), "{stdout}");
}

#[test]
fn software_events_system_wide() {
    kernel!();
    let dir = TempDir::new("swev");
    let name = unique_name("swev");
    let dd = dir.alias(&name, "/bin/dd");
    let t = Tracer::start_prog(
        &["-q"],
        r#"software:page-faults:1 /comm == str($1)/ { @faults = count(); @probe[probe] = count(); }
           s:cs /comm == str($1)/ { @cs = count(); }
           tracepoint:sched:sched_process_exit /comm == str($1)/ { exit(); }"#,
        &[&name],
    );
    run_trigger(
        &dd,
        &[
            "if=/dev/zero",
            "of=/dev/null",
            "bs=4M",
            "count=2",
            "status=none",
        ],
    );
    let out = t.finish();
    let stdout = out.ok();
    let count = |map: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{map}: ")))
            .and_then(|n| n.parse::<u64>().ok())
    };
    assert!(count("@faults").is_some_and(|n| n > 10), "{stdout}");
    assert!(
        stdout.contains("@probe[software:page-faults:1]: "),
        "{stdout}"
    );
    // One context switch in 1000 (the default period): dd may not reach it.
    assert!(count("@cs").is_none_or(|n| n < 100), "{stdout}");
}

#[test]
fn every_printf_event_arrives() {
    kernel!();
    let dir = TempDir::new("many");
    let target = dir.path("flood");
    const N: usize = 2000;
    let t = Tracer::start_prog(
        &["-q"],
        r#"tracepoint:syscalls:sys_enter_openat /pid == $1 && str(args.filename) == str($2)/ {
             @n++;
             printf("event %d\n", @n);
           }"#,
        &[&my_pid(), target.to_str().unwrap()],
    );
    for _ in 0..N {
        open_path(&target);
    }
    std::thread::sleep(Duration::from_millis(300));
    let out = t.stop(libc::SIGINT);
    let stdout = out.ok();
    let events: Vec<&str> = stdout.lines().filter(|l| l.starts_with("event ")).collect();
    assert_eq!(events.len(), N, "lost printf events");
    for (i, l) in events.iter().enumerate() {
        assert_eq!(*l, format!("event {}", i + 1));
    }
    assert!(stdout.ends_with(&format!("\n\n\n@n: {N}\n")), "{stdout}");
}

/// As in bpftrace, begin probes run before anything else is attached (a
/// busy tracepoint has not set @seen yet). After exit() in begin, the
/// count printed is still bpftrace's.
#[test]
fn begin_runs_before_other_probes_attach() {
    kernel!();
    let out = common::run_prog(
        &[],
        r#"tracepoint:sched:sched_switch { @seen = 1; }
           begin { printf("seen %d\n", @seen); exit(); }"#,
        &[],
    );
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert_eq!(out.stderr, "Attached 2 probes\n");
    assert!(out.stdout.starts_with("seen 0\n"), "{out:#?}");
}

/// A `__data_loc` array field (the address of its data, as in bpftrace)
/// passes the verifier as a map key and through buf(). The first such
/// field this kernel has (`dma:dma_map_sg`'s `phys_addrs` on 6.4+,
/// `ras:non_standard_event`'s `buf` before): the tracepoint rarely fires,
/// so this checks loading and attaching.
#[test]
fn data_loc_array_field_passes_the_verifier() {
    kernel!();
    let (category, event, field) = first_data_loc_array().expect("a __data_loc array field");
    let out = common::run_prog(
        &[],
        &format!(
            r#"tracepoint:{category}:{event} {{ @a[args.{field}] = count();
                                      printf("%r\n", buf(args.{field}, 8)); }}
               interval:ms:20 {{ exit(); }}"#
        ),
        &[],
    );
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert_eq!(out.stderr, "Attached 2 probes\n");
}

/// `(category, event, field)` of the first `__data_loc` field of a
/// non-char array type, in tracefs order (dma first where it exists).
fn first_data_loc_array() -> Option<(String, String, String)> {
    let events = Path::new("/sys/kernel/tracing/events");
    let mut categories: Vec<_> = std::fs::read_dir(events).ok()?.flatten().collect();
    categories.sort_by_key(|c| (c.file_name() != "dma", c.file_name()));
    for category in categories {
        let mut names: Vec<_> = std::fs::read_dir(category.path())
            .into_iter()
            .flatten()
            .flatten()
            .collect();
        names.sort_by_key(|e| e.file_name());
        for event in names {
            let Ok(format) = std::fs::read_to_string(event.path().join("format")) else {
                continue;
            };
            let field = format.lines().find_map(|l| {
                let decl = l
                    .trim()
                    .strip_prefix("field:__data_loc ")?
                    .split(';')
                    .next()?;
                let (ty, name) = decl.rsplit_once(' ')?;
                (ty.ends_with("[]") && !ty.contains("char")).then(|| name.to_string())
            });
            if let Some(field) = field {
                return Some((
                    category.file_name().to_string_lossy().into_owned(),
                    event.file_name().to_string_lossy().into_owned(),
                    field,
                ));
            }
        }
    }
    None
}

/// Every attached tracepoint holds two descriptors; ferret raises a low
/// soft open-file limit (a shell's `ulimit -n`) instead of failing with
/// "Too many open files" part way through attaching.
#[test]
fn a_low_open_file_limit_is_raised() {
    kernel!();
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(
            r#"ulimit -Sn 24 && exec "$0" -e 'tracepoint:sched:* { @ = count(); } interval:ms:100 { exit(); }'"#,
        )
        .arg(common::ferret_path())
        .output()
        .expect("run ferret through sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.starts_with("Attached "), "{stderr}");
}
