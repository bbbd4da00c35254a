//! End-to-end: wide `syscalls:sys_enter_*` / `sys_exit_*` wildcards, which
//! run as one program on the raw syscall tracepoints, name and count the
//! syscalls the tracepoints themselves see, on real events.

mod common;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::Path;

use common::{TempDir, Tracer, gettid, kernel_or_skip, run_prog, run_trigger, unique_name};

macro_rules! kernel {
    () => {
        if !kernel_or_skip(module_path!()) {
            return;
        }
    };
}

/// `@map[key]: value` lines of a map dump as (map, key) → value.
fn map_values(stdout: &str) -> BTreeMap<(String, String), u64> {
    stdout
        .lines()
        .filter_map(|l| {
            let (lhs, value) = l.rsplit_once("]: ")?;
            let (map, key) = lhs.split_once('[')?;
            Some(((map.to_string(), key.to_string()), value.parse().ok()?))
        })
        .collect()
}

fn count(values: &BTreeMap<(String, String), u64>, map: &str, key: &str) -> Option<u64> {
    values.get(&(map.to_string(), key.to_string())).copied()
}

/// The tracepoints themselves count the same as the wide wildcards: a
/// child's mmap, openat and close seen by single tracepoints (one program
/// each) and by the `sys_enter_*` and `sys_exit_*` programs, in one script.
#[test]
fn wide_wildcards_count_what_single_tracepoints_count() {
    kernel!();
    let dir = TempDir::new("wide");
    let name = unique_name("wide");
    let exe = dir.alias(&name, "/bin/true");
    let t = Tracer::start_prog(
        &["-q"],
        r#"tracepoint:syscalls:sys_enter_* /comm == str($1)/ { @enter[probe] = count(); }
           tracepoint:syscalls:sys_exit_* /comm == str($1)/ { @exit[probe] = count(); }
           tracepoint:syscalls:sys_enter_mmap,tracepoint:syscalls:sys_enter_openat,
           tracepoint:syscalls:sys_enter_close,tracepoint:syscalls:sys_exit_mmap,
           tracepoint:syscalls:sys_exit_openat,tracepoint:syscalls:sys_exit_close
             /comm == str($1)/ { @single[probe] = count(); }
           tracepoint:sched:sched_process_exit /comm == str($1)/ { exit(); }"#,
        &[&name],
    );
    run_trigger(&exe, &[]);
    let out = t.finish();
    let values = map_values(out.ok());
    for call in ["mmap", "openat", "close"] {
        for dir in ["enter", "exit"] {
            let probe = format!("tracepoint:syscalls:sys_{dir}_{call}");
            let single = count(&values, "@single", &probe);
            assert!(single.is_some_and(|n| n > 0), "{probe} in {out:#?}");
            assert_eq!(
                count(&values, &format!("@{dir}"), &probe),
                single,
                "{out:#?}"
            );
        }
    }
    // The process ends in exit_group, which never returns; execve returns
    // into the new program, whose name the predicate matches.
    let exit_group = "tracepoint:syscalls:sys_enter_exit_group";
    assert_eq!(count(&values, "@enter", exit_group), Some(1), "{out:#?}");
    assert_eq!(
        count(&values, "@exit", "tracepoint:syscalls:sys_exit_exit_group"),
        None
    );
    assert_eq!(
        count(&values, "@exit", "tracepoint:syscalls:sys_exit_execve"),
        Some(1),
        "{out:#?}"
    );
    // Every name is one of the kernel's tracepoints.
    let events = [
        "/sys/kernel/tracing/events",
        "/sys/kernel/debug/tracing/events",
    ]
    .into_iter()
    .map(Path::new)
    .find(|p| p.is_dir())
    .expect("tracefs");
    for (map, key) in values.keys() {
        let event = key
            .strip_prefix("tracepoint:syscalls:")
            .unwrap_or_else(|| panic!("{map}[{key}]"));
        assert!(
            events.join("syscalls").join(event).is_dir(),
            "{map}[{key}] is no tracepoint"
        );
    }
}

/// `args.ret` and `probe` in a `sys_exit_*` program, on this thread's own
/// syscalls.
#[test]
fn return_values_on_a_wide_exit_wildcard() {
    kernel!();
    let t = Tracer::start_prog(
        &["-q"],
        r#"tracepoint:syscalls:sys_exit_* /tid == $1/ {
             printf("%s %d\n", probe, args.ret);
             if (probe == "tracepoint:syscalls:sys_exit_getppid") { exit(); }
           }"#,
        &[&gettid().to_string()],
    );
    // SAFETY: dup, close and getppid have no memory preconditions; the fd
    // closed is the one dup just returned.
    let (fd, closed, ppid) = unsafe {
        let fd = libc::dup(0);
        (fd, libc::close(fd), libc::getppid())
    };
    let out = t.finish();
    let stdout = out.ok();
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            ["_dup ", "_close ", "_getppid "]
                .iter()
                .any(|c| l.contains(c))
        })
        .collect();
    assert_eq!(
        lines,
        [
            format!("tracepoint:syscalls:sys_exit_dup {fd}"),
            format!("tracepoint:syscalls:sys_exit_close {closed}"),
            format!("tracepoint:syscalls:sys_exit_getppid {ppid}"),
        ],
        "{out:#?}"
    );
}

/// The xattr syscalls all have `const char *name` as second argument: one
/// program reads it from the registers as a user string.
const XATTR_NAMES: &str = r#"tracepoint:syscalls:sys_enter_*etxattr,tracepoint:syscalls:sys_enter_*removexattr
    /tid == $1/ {
      printf("%s %s\n", probe, str(args.name));
      if (probe == "tracepoint:syscalls:sys_enter_lremovexattr") { exit(); }
    }"#;

#[test]
fn an_argument_all_matched_syscalls_share() {
    kernel!();
    let dir = TempDir::new("xatr");
    let file = dir.path("xattr-file");
    std::fs::write(&file, b"").expect("create file");
    let path = CString::new(file.to_str().expect("utf-8 path")).expect("no NUL");
    let t = Tracer::start_prog(&["-q"], XATTR_NAMES, &[&gettid().to_string()]);
    // SAFETY: valid NUL-terminated strings; a zero-sized read needs no buffer.
    unsafe {
        libc::getxattr(
            path.as_ptr(),
            c"user.ferret_first".as_ptr(),
            std::ptr::null_mut(),
            0,
        );
        libc::lremovexattr(path.as_ptr(), c"user.ferret_second".as_ptr());
    }
    let out = t.finish();
    let stdout = out.ok();
    let lines: Vec<&str> = stdout.lines().filter(|l| l.contains("ferret_")).collect();
    assert_eq!(
        lines,
        [
            "tracepoint:syscalls:sys_enter_getxattr user.ferret_first",
            "tracepoint:syscalls:sys_enter_lremovexattr user.ferret_second",
        ],
        "{out:#?}"
    );
}

/// `-d` shows the one program that serves a wide wildcard (`--dry-run`
/// then stops once it is attached).
#[test]
fn a_wide_wildcard_is_one_program() {
    kernel!();
    for (program, probe) in [
        (
            "t:syscalls:sys_enter_* { @[probe] = count(); }",
            "tracepoint:syscalls:sys_enter_*",
        ),
        (
            XATTR_NAMES,
            "tracepoint:syscalls:sys_enter_*etxattr,tracepoint:syscalls:sys_enter_*removexattr",
        ),
    ] {
        let out = run_prog(&["-d", "--dry-run"], program, &["1"]);
        let headers: Vec<&str> = out.ok().lines().filter(|l| l.starts_with("; ")).collect();
        assert_eq!(headers, [format!("; {probe} (ferret_p0)")], "{out:#?}");
    }
}

/// A 64-bit process can make 32-bit syscalls with `int $0x80`. The
/// `syscalls:*` tracepoints skip them; so must the wide programs, which
/// would otherwise see ia32 getpid (20) as writev.
#[cfg(target_arch = "x86_64")]
#[test]
fn compat_syscalls_are_skipped() {
    kernel!();
    let mut pipe = [0; 2];
    // SAFETY: `pipe` is a writable array of two ints.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    // SAFETY: the child makes only raw syscalls (read, int $0x80, getpid,
    // _exit) and never returns into the test harness.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork");
    if child == 0 {
        // SAFETY: as above; `byte` is a valid one-byte buffer.
        unsafe {
            let mut byte = 0u8;
            libc::read(pipe[0], (&raw mut byte).cast(), 1);
            let _ia32_getpid: i64;
            std::arch::asm!(
                "int 0x80",
                inlateout("rax") 20i64 => _ia32_getpid,
                out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            );
            libc::syscall(libc::SYS_getpid);
            libc::_exit(0);
        }
    }
    let t = Tracer::start_prog(
        &["-q"],
        r#"tracepoint:syscalls:sys_enter_* /pid == $1/ { @enter[probe] = count(); }
           tracepoint:syscalls:sys_exit_* /pid == $1/ { @exit[probe] = count(); }
           tracepoint:sched:sched_process_exit /pid == $1/ { exit(); }"#,
        &[&child.to_string()],
    );
    // SAFETY: writes one byte from a valid buffer to our pipe; waits for
    // our own child.
    let status = unsafe {
        libc::write(pipe[1], [1u8].as_ptr().cast(), 1);
        let mut status = 0;
        libc::waitpid(child, &mut status, 0);
        libc::close(pipe[0]);
        libc::close(pipe[1]);
        status
    };
    let out = t.finish();
    let values = map_values(out.ok());
    if libc::WIFSIGNALED(status) {
        // int $0x80 faults when the kernel has no ia32 emulation.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"NOTE: no ia32 emulation here: compat syscalls cannot happen\n",
        );
        return;
    }
    let getpid = "tracepoint:syscalls:sys_enter_getpid";
    assert_eq!(count(&values, "@enter", getpid), Some(1), "{out:#?}");
    assert_eq!(
        count(&values, "@exit", "tracepoint:syscalls:sys_exit_getpid"),
        Some(1),
        "{out:#?}"
    );
    for (map, key) in values.keys() {
        assert!(!key.contains("writev"), "{map}[{key}] in {out:#?}");
    }
}
