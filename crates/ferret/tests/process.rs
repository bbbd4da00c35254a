//! End-to-end: following one process with `-p PID` and running one with
//! `-c CMD` (`cpid`), on real events: its perf events only, tracepoints
//! filtered to it, the trace ending when it exits, and the child ended
//! with the trace on exit(), Ctrl-C, SIGTERM and even SIGKILL.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    TempDir, Tracer, bpf_prog_ids, kernel_or_skip, open_path, run_prog, unique_name,
    wait_progs_released,
};

macro_rules! kernel {
    () => {
        if !kernel_or_skip(module_path!()) {
            return;
        }
    };
}

/// `@name[key]: N` lines of a map, as (key, N).
fn map_lines<'a>(stdout: &'a str, map: &str) -> Vec<(&'a str, u64)> {
    let prefix = format!("{map}[");
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .map(|l| {
            let (key, n) = l.split_once("]: ").unwrap_or_else(|| panic!("{l:?}"));
            (key, n.parse().unwrap_or_else(|_| panic!("{l:?}")))
        })
        .collect()
}

/// Whether `pid` is still a live (not zombie) process.
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesised comm.
    let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
    !matches!(state, Some(Some('Z' | 'X')) | None)
}

fn wait_dead(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn cmd_runs_after_attach_and_the_trace_ends_with_it() {
    kernel!();
    let dir = TempDir::new("cmd");
    let name = unique_name("cmd");
    let dd = dir.alias(&name, "/bin/dd");
    let cmd = format!(
        "{} if=/dev/zero of=/dev/null bs=64k count=4 status=none",
        dd.display()
    );
    let out = run_prog(
        &["-c", &cmd],
        r#"begin { printf("cpid %d\n", cpid); }
           tracepoint:sched:sched_process_exec /pid == cpid/ { printf("exec %s\n", comm); }
           tracepoint:sched:sched_process_exit /pid == cpid/ { printf("exit %s %d\n", comm, pid); }"#,
        &[],
    );
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert_eq!(out.stderr, "Attached 3 probes\n", "{out:#?}");
    let lines = out.stdout_lines();
    let cpid = lines[0]
        .strip_prefix("cpid ")
        .unwrap_or_else(|| panic!("{out:#?}"));
    assert!(cpid.parse::<u32>().is_ok_and(|p| p > 0), "{out:#?}");
    // The exec itself is traced: the child waited for the probes.
    assert_eq!(
        lines[1..],
        [
            &format!("exec {name}"),
            &format!("exit {name} {cpid}"),
            "",
            ""
        ],
        "{out:#?}"
    );
}

#[test]
fn cmd_exit_status_is_not_ferrets() {
    kernel!();
    // As bpftrace: the trace's exit code is exit()'s, not the child's.
    let out = run_prog(&["-c", "false"], "tracepoint:sched:sched_switch { }", &[]);
    assert_eq!(out.code, Some(0), "{out:#?}");
    let out = run_prog(
        &["-q", "-c", "true"],
        "tracepoint:sched:sched_process_exit /pid == cpid/ { exit(4); }",
        &[],
    );
    assert_eq!(out.code, Some(4), "{out:#?}");
}

#[test]
fn cmd_perf_events_count_only_the_child() {
    kernel!();
    let dir = TempDir::new("cmdf");
    let name = unique_name("cmdf");
    let dd = dir.alias(&name, "/bin/dd");
    let cmd = format!(
        "{} if=/dev/zero of=/dev/null bs=4M count=2 status=none",
        dd.display()
    );
    let out = run_prog(
        &["-q", "-c", &cmd],
        "software:page-faults:1 { @[comm] = count(); }",
        &[],
    );
    let stdout = out.ok();
    let faults = map_lines(stdout, "@");
    // Before its exec the child is still named ferret.
    for (comm, _) in &faults {
        assert!(
            *comm == name || *comm == "ferret",
            "{comm} counted: {stdout}"
        );
    }
    let n = faults.iter().find(|(c, _)| *c == name).map_or(0, |f| f.1);
    assert!(n > 10, "{n} page faults for a 4 MiB buffer: {stdout}");
}

/// A shell named `name` that waits for a line on stdin, then runs `script`.
fn waiting_shell(dir: &TempDir, name: &str, script: &str) -> std::process::Child {
    let sh = dir.alias(name, "/bin/sh");
    Command::new(sh)
        .args(["-c", &format!("read line; {script}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the target")
}

#[test]
fn pid_filters_tracepoints_and_scopes_perf_events() {
    kernel!();
    let dir = TempDir::new("pidf");
    let name = unique_name("pidf");
    let mut target = waiting_shell(
        &dir,
        &name,
        "echo x > /dev/null; dd if=/dev/zero of=/dev/null bs=4M count=2 2>/dev/null",
    );
    let pid = target.id();
    let t = Tracer::start_prog(
        &["-q", "-p", &pid.to_string()],
        r#"tracepoint:syscalls:sys_enter_openat { printf("open %d %s\n", pid, str(args.filename)); }
           software:page-faults:1 { @faults[comm] = count(); }"#,
        &[],
    );
    // Opens and faults of other processes are not the target's.
    let mine = dir.path("not-the-target");
    open_path(&mine);
    run_trigger_dd();
    target
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"go\n")
        .expect("release the target");
    target.wait().expect("target ends");
    // ferret ends by itself when the target exits.
    let out = t.finish();
    let stdout = out.ok();
    let opens: Vec<&str> = stdout.lines().filter(|l| l.starts_with("open ")).collect();
    assert!(
        opens.contains(&format!("open {pid} /dev/null").as_str()),
        "{stdout}"
    );
    for open in &opens {
        assert!(
            open.starts_with(&format!("open {pid} ")),
            "another process's open: {open}"
        );
    }
    // The dd the target forks after attach is counted (perf events follow
    // children); nothing else is.
    let faults = map_lines(stdout, "@faults");
    for (comm, _) in &faults {
        assert!(*comm == name || *comm == "dd", "{comm} counted: {stdout}");
    }
    assert!(
        faults.iter().any(|(c, n)| *c == "dd" && *n > 10),
        "{stdout}"
    );
}

/// Faults in a process that is not the target.
fn run_trigger_dd() {
    let status = Command::new("dd")
        .args(["if=/dev/zero", "of=/dev/null", "bs=4M", "count=2"])
        .stderr(Stdio::null())
        .status()
        .expect("dd");
    assert!(status.success());
}

#[test]
fn pid_trace_lasts_as_long_as_the_process() {
    kernel!();
    let dir = TempDir::new("pidl");
    let name = unique_name("pidl");
    let mut target = waiting_shell(&dir, &name, "sleep 0.3");
    // Only begin/end probes: with -p the trace still waits for the process.
    let t = Tracer::start_prog(
        &["-q", "-p", &target.id().to_string()],
        r#"begin { printf("begin\n"); } end { printf("end\n"); }"#,
        &[],
    );
    std::thread::sleep(Duration::from_millis(200));
    target
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"go\n")
        .expect("release the target");
    let out = t.finish();
    // ferret ended only once the target had.
    assert!(
        target.try_wait().expect("target status").is_some(),
        "ferret ended before the process it follows"
    );
    assert_eq!(out.ok(), "begin\nend\n\n\n");
}

/// Starts `-c '<alias> 30'` (a sleep), returning the tracer and the
/// child's pid, read from its first line.
fn start_sleeping_child(dir: &TempDir, flags: &[&str], extra: &str) -> (Tracer, u32) {
    let name = unique_name("slp");
    let sleep = dir.alias(&name, "/bin/sleep");
    let cmd = format!("{} 30", sleep.display());
    let mut args = vec!["-q", "-c", &cmd];
    args.extend(flags);
    let mut t = Tracer::start_prog(
        &args,
        &format!(
            r#"begin {{ printf("%d\n", cpid); }}
               tracepoint:sched:sched_switch /pid == cpid/ {{ @switches = count(); }} {extra}"#
        ),
        &[],
    );
    let line = t
        .next_line(Duration::from_secs(5))
        .expect("the child's pid");
    let cpid: u32 = line.trim().parse().expect("a pid");
    assert!(alive(cpid), "the child {cpid} runs");
    (t, cpid)
}

#[test]
fn cmd_child_ends_on_sigint_and_sigterm() {
    kernel!();
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let dir = TempDir::new("sig");
        let (t, cpid) = start_sleeping_child(&dir, &["-v"], "");
        let ids = bpf_prog_ids(t.pid());
        let out = t.stop(sig);
        assert_eq!(out.code, Some(0), "signal {sig}: {out:#?}");
        // As bpftrace: the child gets SIGTERM (not SIGKILL).
        assert!(
            out.stderr.ends_with("child terminated by signal 15\n"),
            "signal {sig}: {out:#?}"
        );
        assert!(!alive(cpid), "child {cpid} outlived ferret (signal {sig})");
        assert!(wait_progs_released(&ids, Duration::from_secs(2)).is_empty());
    }
}

#[test]
fn cmd_child_ends_on_exit() {
    kernel!();
    let dir = TempDir::new("exit");
    let (t, cpid) = start_sleeping_child(&dir, &[], "interval:ms:300 { exit(); }");
    let out = t.finish();
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert!(!alive(cpid), "child {cpid} outlived ferret");
}

#[test]
fn cmd_child_ends_when_ferret_is_killed() {
    kernel!();
    let dir = TempDir::new("kill");
    let (t, cpid) = start_sleeping_child(&dir, &[], "");
    let out = t.stop(libc::SIGKILL);
    assert_eq!(out.signal, Some(libc::SIGKILL));
    // The kernel sends the orphan SIGTERM (PR_SET_PDEATHSIG).
    assert!(wait_dead(cpid), "child {cpid} outlived a killed ferret");
}
