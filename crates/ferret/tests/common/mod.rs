//! Shared harness for the end-to-end tests: runs the ferret binary, waits
//! until its probes are attached, triggers events, stops it and collects
//! what it printed.
//!
//! Kernel tests call [`kernel_or_skip`] first. Under CI (`CI=true`) a kernel
//! test that cannot run is a failure; elsewhere it says "SKIPPED" loudly on
//! stderr and passes.

#![expect(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The line ferret prints once every probe is attached.
pub const NOTIFY: &str = "__BPFTRACE_NOTIFY_PROBES_ATTACHED";

/// The longest any single ferret run may take before the test fails: a
/// guard against hangs, not a speed check. Generous, because under
/// emulation (`cargo xtask vm-test`) verifying a long loop takes tens of
/// seconds.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// The ferret binary under test: Cargo's build, unless `FERRET_BIN` names
/// another (the test binaries run inside a VM by `cargo xtask vm-test`,
/// where Cargo's target directory does not exist).
pub fn ferret_path() -> String {
    std::env::var("FERRET_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ferret").to_string())
}

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Why kernel tests cannot run here, if they cannot.
fn kernel_unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root".into());
    }
    let tracefs = [
        "/sys/kernel/tracing/events",
        "/sys/kernel/debug/tracing/events",
    ];
    if !tracefs.iter().any(|p| Path::new(p).is_dir()) {
        return Some("no tracefs at /sys/kernel/tracing or /sys/kernel/debug/tracing".into());
    }
    None
}

/// True when kernel tests can run. Otherwise fails under CI, or prints a
/// loud skip notice and returns false.
pub fn kernel_or_skip(module: &str) -> bool {
    // libtest names each test's thread after the test.
    let test = match std::thread::current().name() {
        Some(name) => format!("{module}::{name}"),
        None => module.to_string(),
    };
    match kernel_unavailable() {
        None => true,
        Some(reason) if under_ci() => panic!("{test}: kernel test cannot run under CI: {reason}"),
        Some(reason) => {
            // Straight to the stderr handle: libtest captures eprintln!.
            let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {reason}");
            false
        }
    }
}

/// Whether this kernel makes kprobes, by what the kernel exposes (not by
/// asking ferret): the kprobe PMU, or tracefs' kprobe_events.
pub fn kprobes_available() -> bool {
    [
        "/sys/bus/event_source/devices/kprobe",
        "/sys/kernel/tracing/kprobe_events",
        "/sys/kernel/debug/tracing/kprobe_events",
    ]
    .iter()
    .any(|p| Path::new(p).exists())
}

/// Whether this kernel makes BPF trampolines (fentry/fexit): a trivial
/// fentry program on `vfs_read` loads. Only the kernel's refusal means no;
/// any other failure is a bug, and fails the test.
pub fn fentry_available() -> bool {
    let btf = ferret_btf::Btf::vmlinux().expect("vmlinux BTF");
    let id = btf
        .find(ferret_btf::NameKind::Func, "vfs_read")
        .expect("vfs_read in the kernel's BTF");
    match ferret_kernel::probes::fentry_available(None, id) {
        Ok(()) => true,
        Err(why) if why.starts_with("the kernel refuses BPF trampolines") => false,
        Err(other) => panic!("loading a test fentry program: {other}"),
    }
}

/// What a finished ferret printed, minus the notify line.
#[derive(Debug)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    /// Exit status, or None when a signal ended it.
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
}

impl Output {
    /// Asserts exit status 0 and an empty stderr; returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "exit status; {self:#?}");
        assert_eq!(self.stderr, "", "stderr; {self:#?}");
        &self.stdout
    }

    /// Asserts exit status 0 and exactly `stderr`; returns stdout.
    #[track_caller]
    pub fn ok_with_stderr(&self, stderr: &str) -> &str {
        assert_eq!(self.code, Some(0), "exit status; {self:#?}");
        assert_eq!(self.stderr, stderr, "stderr; {self:#?}");
        &self.stdout
    }

    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// A name unique to this test process and call, at most 15 bytes so it
/// survives as a task's comm.
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tag: String = tag.chars().take(4).collect();
    format!("fe{tag}{}x{n}", std::process::id() % 100_000)
}

/// A private directory for one test, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ferret-e2e-{}", unique_name(tag)));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// A symlink named `name` to `target`: executing it gives the new task
    /// the comm `name` (the kernel names it after the path executed).
    pub fn alias(&self, name: &str, target: &str) -> PathBuf {
        let link = self.path(name);
        std::os::unix::fs::symlink(target, &link).expect("symlink");
        link
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a program that ends by itself (exit() or begin/end only), feeding
/// `stdin` if given.
pub fn run(args: &[&str], stdin: Option<&str>) -> Output {
    run_env(args, stdin, &[])
}

/// [`run`] with extra environment variables (`BPFTRACE_MAX_STRLEN`, ...).
pub fn run_env(args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(ferret_path());
    cmd.args(args)
        .envs(env.iter().copied())
        .env_remove("__BPFTRACE_NOTIFY_PROBES_ATTACHED")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn ferret");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    let out = collect(child.stdout.take().expect("stdout pipe"));
    let err = collect(child.stderr.take().expect("stderr pipe"));
    finish(child, out, err, args)
}

/// Runs `-e PROGRAM` with extra arguments before it.
pub fn run_prog(flags: &[&str], program: &str, params: &[&str]) -> Output {
    let mut args: Vec<&str> = flags.to_vec();
    args.extend(["-e", program]);
    args.extend(params);
    run(&args, None)
}

fn collect<R: Read + Send + 'static>(mut r: R) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

fn wait_deadline(child: &mut Child, args: &[&str]) -> std::process::ExitStatus {
    let deadline = Instant::now() + RUN_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("wait for ferret") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ferret {args:?} did not finish within {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn finish(
    mut child: Child,
    out: JoinHandle<Vec<u8>>,
    err: JoinHandle<Vec<u8>>,
    args: &[&str],
) -> Output {
    use std::os::unix::process::ExitStatusExt;
    let status = wait_deadline(&mut child, args);
    let stdout = String::from_utf8_lossy(&out.join().expect("stdout reader")).into_owned();
    let stderr = String::from_utf8_lossy(&err.join().expect("stderr reader")).into_owned();
    Output {
        stdout: strip_notify(&stdout),
        stderr,
        code: status.code(),
        signal: status.signal(),
    }
}

fn strip_notify(stdout: &str) -> String {
    stdout.replacen(&format!("{NOTIFY}\n"), "", 1)
}

/// A ferret started in the background with its probes attached.
pub struct Tracer {
    child: Option<Child>,
    lines: Receiver<String>,
    _reader: JoinHandle<()>,
    seen: Vec<String>,
    err: Option<JoinHandle<Vec<u8>>>,
    args: Vec<String>,
}

impl Tracer {
    /// Starts `ferret ARGS` and waits until it says its probes are attached.
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new(ferret_path())
            .args(args)
            .env("__BPFTRACE_NOTIFY_PROBES_ATTACHED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ferret");
        let (tx, rx) = channel();
        let out = BufReader::new(child.stdout.take().expect("stdout pipe"));
        let stdout = std::thread::spawn(move || {
            let mut out = out;
            loop {
                let mut line = Vec::new();
                match out.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&line).into_owned();
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let err = collect(child.stderr.take().expect("stderr pipe"));
        let mut t = Self {
            child: Some(child),
            lines: rx,
            _reader: stdout,
            seen: Vec::new(),
            err: Some(err),
            args: args.iter().map(|s| s.to_string()).collect(),
        };
        if !t.wait_attached() {
            let args = t.args.clone();
            let out = t.finish();
            panic!("ferret {args:?} ended before attaching its probes: {out:#?}");
        }
        t
    }

    /// `-e PROGRAM` with flags before it and parameters after.
    pub fn start_prog(flags: &[&str], program: &str, params: &[&str]) -> Self {
        let mut args: Vec<&str> = flags.to_vec();
        args.extend(["-e", program]);
        args.extend(params);
        Self::start(&args)
    }

    /// False when ferret ended first.
    fn wait_attached(&mut self) -> bool {
        // As long as a whole run may take: under emulation (`cargo xtask
        // vm-test`) attaching takes seconds.
        let deadline = Instant::now() + RUN_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.trim_end() == NOTIFY => return true,
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Timeout) => {
                    self.kill();
                    panic!("ferret {:?} never reported its probes attached", self.args);
                }
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Waits for the next stdout line (with its newline), up to `timeout`.
    pub fn next_line(&mut self, timeout: Duration) -> Option<String> {
        let line = self.lines.recv_timeout(timeout).ok()?;
        self.seen.push(line.clone());
        Some(line)
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill with a pid we own (our live child) and a valid signal.
        let rc = unsafe { libc::kill(self.pid() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.pid());
    }

    fn kill(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for ferret to end by itself (within [`RUN_TIMEOUT`]).
    pub fn finish(mut self) -> Output {
        use std::os::unix::process::ExitStatusExt;
        let mut child = self.child.take().expect("running");
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let status = wait_deadline(&mut child, &args);
        let stderr =
            String::from_utf8_lossy(&self.err.take().expect("stderr").join().unwrap()).into_owned();
        // The reader thread ends at EOF; take every line it sent.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        let stdout: String = self
            .seen
            .iter()
            .filter(|l| l.trim_end() != NOTIFY)
            .map(String::as_str)
            .collect();
        Output {
            stdout,
            stderr,
            code: status.code(),
            signal: status.signal(),
        }
    }

    /// Sends `sig`, then waits for ferret to end.
    pub fn stop(self, sig: i32) -> Output {
        self.signal(sig);
        self.finish()
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The ids of the BPF programs a process holds open, from its fdinfo.
pub fn bpf_prog_ids(pid: u32) -> Vec<u32> {
    let mut ids = Vec::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return ids;
    };
    for entry in dir.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        if !text.lines().any(|l| l.starts_with("prog_type:")) {
            continue;
        }
        if let Some(id) = text
            .lines()
            .find_map(|l| l.strip_prefix("prog_id:"))
            .and_then(|v| v.trim().parse().ok())
        {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;

/// The name of loaded BPF program `id`, or None once the kernel freed it.
pub fn bpf_prog_name(id: u32) -> Option<String> {
    let mut attr = [0u64; 16];
    attr[0] = u64::from(id);
    // SAFETY: `attr` is a zeroed bpf_attr-sized buffer with prog_id set;
    // the kernel reads only its size.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_GET_FD_BY_ID,
            attr.as_mut_ptr(),
            size_of_val(&attr),
        )
    };
    if fd < 0 {
        return None;
    }
    let fd = fd as i32;
    // struct bpf_prog_info up to and including name[16] is 80 bytes.
    let mut info = [0u8; 80];
    let mut attr = [0u64; 16];
    attr[0] = u64::from(fd as u32) | ((info.len() as u64) << 32);
    attr[1] = info.as_mut_ptr() as u64;
    // SAFETY: attr points at `info`, which is info_len bytes long and lives
    // across the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET_INFO_BY_FD,
            attr.as_mut_ptr(),
            size_of_val(&attr),
        )
    };
    // SAFETY: fd came from the kernel above and is closed once.
    unsafe { libc::close(fd) };
    if rc < 0 {
        return Some(String::new());
    }
    let name = &info[64..80];
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    Some(String::from_utf8_lossy(&name[..end]).into_owned())
}

/// Polls until none of `ids` is loaded; returns those still loaded after
/// `patience`.
pub fn wait_progs_released(ids: &[u32], patience: Duration) -> Vec<u32> {
    let deadline = Instant::now() + patience;
    loop {
        let left: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|&id| bpf_prog_name(id).is_some())
            .collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `path` with `args` to completion (a trigger).
pub fn run_trigger(path: &Path, args: &[&str]) -> u32 {
    let mut child = Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", path.display()));
    let pid = child.id();
    let status = child.wait().expect("wait trigger");
    assert!(status.success(), "{} {args:?}: {status}", path.display());
    pid
}

/// Calls openat(2) on `path` from this thread (the file need not exist).
pub fn open_path(path: &Path) {
    let _ = std::fs::File::open(path);
}

/// The calling thread's kernel task id.
pub fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}
