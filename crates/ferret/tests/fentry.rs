//! End-to-end: fentry and fexit on real kernel functions, called by this
//! test's own threads. On a kernel that refuses BPF trampolines (ours)
//! each test checks ferret's clear error instead; `cargo xtask vm-test`
//! runs them on kernels that make them.

mod common;

use std::io::{Read as _, Write as _};
use std::os::fd::AsRawFd as _;
use std::path::Path;
use std::time::Duration;

use common::{
    TempDir, Tracer, bpf_prog_ids, fentry_available, gettid, kernel_or_skip, run, run_prog,
    wait_progs_released,
};

/// Runs the test's body on a kernel with BPF trampolines; elsewhere
/// checks that ferret refuses `program` with the clear error, and returns.
macro_rules! fentry {
    ($program:expr) => {
        if !kernel_or_skip(module_path!()) {
            return;
        }
        if !fentry_available() {
            let out = run_prog(&[], $program, &["0", "/"]);
            assert_eq!(out.code, Some(1), "{out:#?}");
            assert!(
                out.stderr
                    .contains("probes are not available on this kernel")
                    && out
                        .stderr
                        .contains("note: the kernel refuses BPF trampolines"),
                "{out:#?}"
            );
            assert!(out.stdout.is_empty(), "{out:#?}");
            return;
        }
    };
}

/// Reads up to `want` bytes of a file holding `hello`, in one read(2).
fn read_file(dir: &TempDir, want: usize) -> usize {
    let path = dir.path("five");
    std::fs::write(&path, b"hello").expect("write");
    let mut buf = vec![0u8; want];
    std::fs::File::open(&path)
        .and_then(|mut f| f.read(&mut buf))
        .expect("read")
}

#[test]
fn fentry_reads_typed_arguments() {
    let program = r#"fentry:vfs_read /tid == $1/ {
        printf("%s %s %d\n", probe, func, args.count); exit(); }"#;
    fentry!(program);
    let dir = TempDir::new("fent");
    let t = Tracer::start_prog(&["-q"], program, &[&gettid().to_string()]);
    read_file(&dir, 4099);
    assert_eq!(
        t.finish().ok(),
        "fentry:vmlinux:vfs_read vfs_read 4099\n\n\n"
    );
}

#[test]
fn fexit_reads_arguments_and_the_return_value() {
    let program = r#"fexit:vfs_read /tid == $1/ {
        printf("%s %d %d\n", probe, args.count, retval); exit(); }"#;
    fentry!(program);
    let dir = TempDir::new("fexi");
    let t = Tracer::start_prog(&["-q"], program, &[&gettid().to_string()]);
    assert_eq!(read_file(&dir, 4099), 5);
    assert_eq!(t.finish().ok(), "fexit:vmlinux:vfs_read 4099 5\n\n\n");
}

/// `kfunc:`/`kretfunc:` are fentry/fexit; a wildcard is a program per
/// function, each with its own probe name.
#[test]
fn wildcards_and_aliases() {
    let program = r#"kfunc:vfs_rea* /tid == $1/ { @[probe] = count(); }
                     kretfunc:vfs_read /tid == $1/ { @ret = count(); }"#;
    fentry!(program);
    let dir = TempDir::new("fwild");
    let t = Tracer::start_prog(&[], program, &[&gettid().to_string()]);
    for _ in 0..3 {
        read_file(&dir, 16);
    }
    std::thread::sleep(Duration::from_millis(100));
    let out = t.stop(libc::SIGINT);
    let attached: usize = out
        .stderr
        .strip_prefix("Attached ")
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no Attached line: {out:#?}"));
    assert!(attached > 2, "{out:#?}");
    let count = |prefix: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {prefix} line: {out:#?}"))
    };
    assert!(count("@[fentry:vmlinux:vfs_read]: ") >= 3, "{out:#?}");
    assert!(count("@ret: ") >= 3, "{out:#?}");
}

/// `fentry:MODULE:FUNCTION` on the loop driver, when it is a module with
/// BTF (`cargo xtask vm-test` loads it).
#[test]
fn fentry_on_a_module_function() {
    let program = r#"fentry:loop:loop_control_ioctl /pid == $1/ {
        printf("%s %d\n", probe, args.cmd); exit(); }"#;
    fentry!("fentry:vfs_read { }");
    if !Path::new("/sys/kernel/btf/loop").exists() {
        // Not a module here (or not loaded): nothing to probe.
        let _ = std::io::stderr().write_all(
            b"SKIPPED: fentry::fentry_on_a_module_function: the loop module is not loaded\n",
        );
        return;
    }
    let t = Tracer::start_prog(&["-q"], program, &[&std::process::id().to_string()]);
    let control = std::fs::File::open("/dev/loop-control").expect("open /dev/loop-control");
    // SAFETY: LOOP_CTL_GET_FREE, without an argument, on a descriptor we own.
    unsafe { libc::ioctl(control.as_raw_fd(), 0x4C82) };
    assert_eq!(
        t.finish().ok(),
        format!("fentry:loop:loop_control_ioctl {}\n\n\n", 0x4C82)
    );
}

/// fentry programs and their links are gone when ferret ends, whether by
/// itself or killed.
#[test]
fn teardown_leaves_no_programs() {
    let program = r#"fentry:do_nanosleep /pid == $1/ { @ = count(); }
                     fexit:do_nanosleep /pid == $1/ { @r = count(); }"#;
    fentry!(program);
    for signal in [libc::SIGINT, libc::SIGKILL] {
        let t = Tracer::start_prog(&["-q"], program, &[&std::process::id().to_string()]);
        std::thread::sleep(Duration::from_millis(2));
        let progs = bpf_prog_ids(t.pid());
        assert_eq!(progs.len(), 2, "programs of ferret {}", t.pid());
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
    }
}

/// `-l` lists functions from the kernel's BTF, whether or not the kernel
/// makes trampolines; `-lv` shows their arguments and an fexit's retval.
#[test]
fn listing_from_btf() {
    if !kernel_or_skip(module_path!()) {
        return;
    }
    let out = run(&["-l", "fentry:vfs_read"], None);
    assert_eq!(out.ok(), "fentry:vmlinux:vfs_read\n");
    let out = run(&["-l", "kretfunc:vmlinux:vfs_rea?"], None);
    assert_eq!(out.ok(), "fexit:vmlinux:vfs_read\n");
    let out = run(&["-lv", "fexit:vfs_read"], None);
    let text = out.ok();
    assert!(
        text.starts_with("fexit:vmlinux:vfs_read\n")
            && text.contains("\n    size_t count\n")
            && text.ends_with("\n    ssize_t retval\n"),
        "{text}"
    );
}

/// A misspelt function gets the closest name in the kernel's BTF.
#[test]
fn unknown_function_suggests_one() {
    if !kernel_or_skip(module_path!()) {
        return;
    }
    let out = run_prog(&[], "fentry:vfs_raed { }", &[]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(
        out.stderr
            .contains("error: no kernel function fentry:vfs_raed in the kernel's BTF")
            && out.stderr.contains("help: did you mean 'fentry:vfs_read'?"),
        "{out:#?}"
    );
}
