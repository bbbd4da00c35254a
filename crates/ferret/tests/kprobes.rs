//! End-to-end: kprobes and kretprobes on real kernel functions, called by
//! this test's own threads. On a kernel without kprobes (CONFIG_KPROBES
//! off) each test checks ferret's clear error instead; `cargo xtask
//! vm-test` runs them on kernels that have them.

mod common;

use std::io::Read as _;
use std::os::fd::AsRawFd as _;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    TempDir, Tracer, bpf_prog_ids, gettid, kernel_or_skip, kprobes_available, open_path, run_prog,
    wait_progs_released,
};

/// The first line of ferret's error on a kernel without kprobes.
const UNAVAILABLE: &str = "error: kprobes are not available on this kernel (CONFIG_KPROBES is off)";

/// Runs the test's body on a kernel with kprobes; elsewhere checks that
/// ferret refuses `program` with the clear error, and returns.
macro_rules! kprobes {
    ($program:expr) => {
        if !kernel_or_skip(module_path!()) {
            return;
        }
        if !kprobes_available() {
            let out = run_prog(&[], $program, &["0", "/"]);
            assert_eq!(out.code, Some(1), "{out:#?}");
            assert!(out.stderr.contains(UNAVAILABLE), "{out:#?}");
            assert!(out.stdout.is_empty(), "{out:#?}");
            return;
        }
    };
}

fn my_pid() -> String {
    std::process::id().to_string()
}

/// Lines of stdout until `done` holds for one (included), or 20 s.
fn lines_until(t: &mut Tracer, done: impl Fn(&str) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Some(line) = t.next_line(Duration::from_millis(100)) {
            let line = line.trim_end().to_string();
            let stop = done(&line);
            seen.push(line);
            if stop {
                break;
            }
        }
    }
    seen
}

#[test]
fn kprobe_reads_the_arguments_of_the_call() {
    // do_sys_openat2(int dfd, const char __user *filename, struct open_how *how)
    let program = r#"kprobe:do_sys_openat2 /pid == $1 && str(uptr(arg1)) == str($2)/ {
             printf("%s %s %d %s\n", probe, func, (int32)arg0, str(uptr(arg1)));
             exit();
           }"#;
    kprobes!(program);
    let dir = TempDir::new("kpar");
    let target = dir.path("kprobe-arg-file");
    let t = Tracer::start_prog(&["-q"], program, &[&my_pid(), target.to_str().unwrap()]);
    open_path(&target);
    let out = t.finish();
    // AT_FDCWD is -100.
    assert_eq!(
        out.ok(),
        format!(
            "kprobe:do_sys_openat2 do_sys_openat2 -100 {}\n\n\n",
            target.display()
        )
    );
}

/// `args.NAME` in a kprobe, typed from the function's BTF prototype.
#[test]
fn kprobe_reads_typed_arguments() {
    let program =
        r#"kprobe:vfs_read /tid == $1/ { printf("%d %s\n", args.count, probe); exit(); }"#;
    kprobes!(program);
    let t = Tracer::start_prog(&["-q"], program, &[&gettid().to_string()]);
    let mut buf = vec![0u8; 4099];
    std::fs::File::open("/proc/self/stat")
        .and_then(|mut f| f.read(&mut buf))
        .expect("read");
    assert_eq!(t.finish().ok(), "4099 kprobe:vfs_read\n\n\n");
}

#[test]
fn kretprobe_reads_the_return_value() {
    let program = r#"kretprobe:do_sys_openat2 /tid == $1/ {
             printf("%s %s %d\n", probe, func, (int64)retval);
           }"#;
    kprobes!(program);
    let dir = TempDir::new("kret");
    let missing = dir.path("not-there");
    let present = dir.path("there");
    std::fs::write(&present, b"x").expect("write file");
    let mut t = Tracer::start_prog(&["-q"], program, &[&gettid().to_string()]);
    open_path(&missing);
    let file = std::fs::File::open(&present).expect("open file");
    let fd = file.as_raw_fd();
    let want_fd = format!("kretprobe:do_sys_openat2 do_sys_openat2 {fd}");
    let seen = lines_until(&mut t, |l| l == want_fd);
    let out = t.stop(libc::SIGINT);
    // -ENOENT for the missing file, then the descriptor open() returned.
    let enoent = "kretprobe:do_sys_openat2 do_sys_openat2 -2".to_string();
    let at = seen.iter().position(|l| *l == enoent);
    assert!(
        at.is_some_and(|i| seen[i + 1..].contains(&want_fd)),
        "{seen:?} {out:#?}"
    );
    assert_eq!(out.code, Some(0), "{out:#?}");
    drop(file);
}

#[test]
fn wildcard_kprobes_count_by_function() {
    // vfs_read runs for every read(2); the wildcard matches it and a few
    // more (vfs_readlink, ...), attached as one program.
    let program = r#"kprobe:vfs_rea* /tid == $1/ { @[func] = count(); }"#;
    kprobes!(program);
    let t = Tracer::start_prog(&[], program, &[&gettid().to_string()]);
    let mut f = std::fs::File::open("/proc/self/stat").expect("open");
    let mut buf = Vec::new();
    for _ in 0..5 {
        buf.clear();
        let _ = std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0));
        f.read_to_end(&mut buf).expect("read");
    }
    std::thread::sleep(Duration::from_millis(100));
    t.signal(libc::SIGINT);
    let out = t.finish();
    let attached: usize = out
        .stderr
        .strip_prefix("Attached ")
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no Attached line: {out:#?}"));
    assert!(attached > 1, "{out:#?}");
    let count = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("@[vfs_read]: "))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no @[vfs_read] line: {out:#?}"));
    assert!(count >= 5, "{out:#?}");
}

#[test]
fn wildcard_with_probe_names_each_function() {
    let program = r#"kretprobe:vfs_rea* /tid == $1/ { @[probe] = count(); }"#;
    kprobes!(program);
    let t = Tracer::start_prog(&["-q"], program, &[&gettid().to_string()]);
    let mut buf = Vec::new();
    std::fs::File::open("/proc/self/stat")
        .and_then(|mut f| f.read_to_end(&mut buf))
        .expect("read");
    std::thread::sleep(Duration::from_millis(100));
    let out = t.stop(libc::SIGINT);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("@[kretprobe:vfs_read]: ")),
        "{out:#?}"
    );
}

/// The kernel accepts a kprobe inside a function only on an instruction
/// boundary: right after the ftrace call site, which is 5 bytes long and
/// follows a 4-byte endbr64 on kernels built for indirect branch tracking.
#[test]
fn kprobe_at_an_offset() {
    kprobes!("kprobe:vfs_read+5 { }");
    let tid = gettid().to_string();
    let mut fired = None;
    for offset in [5, 9] {
        let program = format!(
            r#"kprobe:vfs_read+{offset} /tid == $1/ {{ printf("%s %s\n", probe, func); exit(); }}"#
        );
        if run_prog(&["--dry-run"], &program, &[&tid]).code != Some(0) {
            continue;
        }
        let t = Tracer::start_prog(&["-q"], &program, &[&tid]);
        let mut buf = Vec::new();
        std::fs::File::open("/proc/self/stat")
            .and_then(|mut f| f.read_to_end(&mut buf))
            .expect("read");
        fired = Some((offset, t.finish()));
        break;
    }
    let (offset, out) = fired.expect("vfs_read+5 or vfs_read+9 attaches");
    assert_eq!(out.ok(), format!("kprobe:vfs_read+{offset} vfs_read\n\n\n"));
}

/// Kprobes leave nothing behind: no kprobe_events entries (ferret makes
/// them through the kprobe PMU, or removes its own), no registered kprobe,
/// no program, whether ferret ends by itself or is killed.
#[test]
fn teardown_leaves_no_kprobes() {
    let program = r#"kprobe:do_nanosleep /pid == $1/ { @ = count(); }
                     kretprobe:do_nanosleep /pid == $1/ { @r = count(); }"#;
    kprobes!(program);
    let registered = || {
        std::fs::read_to_string("/sys/kernel/debug/kprobes/list")
            .map(|l| {
                l.lines()
                    .filter(|l| l.contains(" do_nanosleep+0x0"))
                    .count()
            })
            .unwrap_or(0)
    };
    let ours = |pid: u32| {
        [
            "/sys/kernel/tracing/kprobe_events",
            "/sys/kernel/debug/tracing/kprobe_events",
        ]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|t| t.lines().map(str::to_string).collect::<Vec<_>>())
        .filter(|l| l.contains(&format!("ferret_{pid}/")))
        .count()
    };
    let before = registered();
    for signal in [libc::SIGINT, libc::SIGKILL] {
        let t = Tracer::start_prog(&["-q"], program, &[&my_pid()]);
        let pid = t.pid();
        std::thread::sleep(Duration::from_millis(2));
        let progs = bpf_prog_ids(pid);
        assert_eq!(progs.len(), 2, "programs of ferret {pid}");
        if Path::new("/sys/kernel/debug/kprobes/list").exists() {
            assert!(registered() >= before + 2, "kprobes not registered");
        }
        let out = t.stop(signal);
        if signal == libc::SIGINT {
            assert_eq!(out.code, Some(0), "{out:#?}");
            assert!(out.stdout.contains("@: "), "{out:#?}");
        }
        assert_eq!(
            wait_progs_released(&progs, Duration::from_secs(10)),
            Vec::<u32>::new(),
            "programs left after signal {signal}"
        );
        assert_eq!(
            ours(pid),
            0,
            "kprobe_events entries left after signal {signal}"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while registered() > before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(registered(), before, "kprobes left after signal {signal}");
    }
}

/// `kprobe:MODULE:FUNCTION` on a function of the loop driver, when it is a
/// module (`cargo xtask vm-test` loads it).
#[test]
fn kprobe_on_a_module_function() {
    let program =
        r#"kprobe:loop:loop_control_ioctl /pid == $1/ { printf("%s %s\n", probe, func); exit(); }"#;
    kprobes!(program);
    let listed = std::fs::read_to_string("/sys/kernel/tracing/available_filter_functions")
        .unwrap_or_default()
        .lines()
        .any(|l| l == "loop_control_ioctl [loop]");
    if !listed {
        // Not a module here (or not loaded): nothing to probe.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"SKIPPED: kprobes::kprobe_on_a_module_function: the loop module is not loaded\n",
        );
        return;
    }
    let t = Tracer::start_prog(&["-q"], program, &[&my_pid()]);
    // LOOP_CTL_GET_FREE: find (or make) a free loop device.
    let control = std::fs::File::open("/dev/loop-control").expect("open /dev/loop-control");
    // SAFETY: an ioctl without an argument on a descriptor we own.
    unsafe { libc::ioctl(control.as_raw_fd(), 0x4C82) };
    let out = t.finish();
    assert_eq!(
        out.ok(),
        "kprobe:loop:loop_control_ioctl loop_control_ioctl\n\n\n"
    );
}
