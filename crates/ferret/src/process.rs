//! The process a trace follows: `-p PID` (a running process) or `-c CMD`
//! (a child ferret starts, held before `exec` until the probes are
//! attached). Either way the trace ends when the process exits, which a
//! pidfd tells without polling `/proc`.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The largest pid bpftrace accepts (the kernel's limit on 64-bit).
const PID_MAX: u32 = 0x40_0000;

/// How long a child has to exit after SIGTERM before it is killed.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// A running process followed with `-p`.
#[derive(Debug)]
pub struct Watched {
    pid: u32,
    pidfd: OwnedFd,
}

impl Watched {
    /// Opens a pidfd for `pid`, or says why it cannot be followed.
    pub fn open(pid: u32) -> Result<Self, String> {
        if pid == 0 || pid > PID_MAX {
            return Err(format!("pid {pid} is out of range (1 to {PID_MAX})"));
        }
        match pidfd_open(pid) {
            Ok(pidfd) => Ok(Self { pid, pidfd }),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                Err(format!("no process with pid {pid}"))
            }
            // A thread's id: ENOENT on newer kernels, EINVAL on older ones.
            Err(e) => match thread_group_of(pid) {
                Some(tgid) if tgid != pid => Err(format!(
                    "{pid} is a thread of process {tgid}, not a process: use -p {tgid}"
                )),
                _ => Err(format!("cannot follow pid {pid}: {e}")),
            },
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }
}

/// The process id (`Tgid`) a task id belongs to, from `/proc`.
fn thread_group_of(tid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildEnd {
    Exited(i32),
    Signaled(i32),
}

/// The `-c` command: forked, waiting for [`Child::release`] to exec.
/// Dropping it kills the child if it still runs, and reaps it.
#[derive(Debug)]
pub struct Child {
    pid: u32,
    pidfd: OwnedFd,
    /// Writing one byte lets the child exec; closing it unwritten makes
    /// the child exit without running the command.
    go: Option<OwnedFd>,
    /// Closed by a successful exec; carries the errno of a failed one.
    exec_result: Option<OwnedFd>,
    end: Option<ChildEnd>,
}

/// `-c CMD` split into words as bpftrace splits it: at spaces, with no
/// quoting. Runs of spaces do not make empty words.
pub fn split_command(cmd: &str) -> Vec<String> {
    cmd.split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Finds the program to run: a path as given when it has a `/`, else the
/// first executable of that name in `$PATH`.
fn resolve_program(name: &str) -> Result<PathBuf, String> {
    let executable = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .ok()
            .is_some_and(|c| {
                // SAFETY: `c` is a valid NUL-terminated path.
                unsafe { libc::access(c.as_ptr(), libc::X_OK) == 0 }
            })
            && p.is_file()
    };
    if name.contains('/') {
        let path = PathBuf::from(name);
        return if executable(&path) {
            Ok(path)
        } else if path.exists() {
            Err(format!("cannot run '{name}': it is not an executable file"))
        } else {
            Err(format!("cannot run '{name}': no such file"))
        };
    }
    let path_var = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path_var)
        .map(|dir| dir.join(name))
        .find(|p| executable(p))
        .ok_or_else(|| format!("cannot run '{name}': no such program in PATH"))
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just returned these two open descriptors, owned by no
    // one else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

impl Child {
    /// Forks the child for `cmd`. It waits, before `exec`, until released,
    /// so the command's pid (`cpid`) is known to the compiler and its first
    /// events happen after the probes are attached.
    ///
    /// `std::process::Command` cannot hold a child between fork and exec
    /// (its `spawn` waits for the exec), hence the fork here.
    pub fn spawn(cmd: &str) -> Result<Self, String> {
        let words = split_command(cmd);
        let Some(first) = words.first() else {
            return Err("-c needs a command to run".into());
        };
        let program = resolve_program(first)?;
        let cstr = |s: &[u8]| {
            CString::new(s).map_err(|_| format!("cannot run '{cmd}': it contains a NUL byte"))
        };
        let path = cstr(program.as_os_str().as_bytes())?;
        let args = words
            .iter()
            .map(|w| cstr(OsStr::new(w).as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let failed = |what: &str, e: io::Error| format!("cannot start '{cmd}': {what}: {e}");
        let (go_read, go_write) = pipe().map_err(|e| failed("pipe", e))?;
        let (result_read, result_write) = pipe().map_err(|e| failed("pipe", e))?;
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the child runs only async-signal-safe calls (prctl,
        // getppid, read, write, execv, _exit) on memory prepared before the
        // fork, so forking a possibly multi-threaded process is sound.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(failed("fork", io::Error::last_os_error()));
        }
        if pid == 0 {
            // SAFETY: see the fork above; every pointer was built before it
            // and stays valid in the child's copy of memory.
            unsafe {
                child_exec(
                    parent,
                    go_read.as_raw_fd(),
                    result_write.as_raw_fd(),
                    &path,
                    &argv,
                )
            }
        }
        drop((go_read, result_write));
        let pid = pid as u32;
        let pidfd = match pidfd_open(pid) {
            Ok(fd) => fd,
            Err(e) => {
                // SAFETY: `pid` is our own child, not yet reaped.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGKILL);
                    libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0);
                }
                return Err(failed("pidfd_open", e));
            }
        };
        Ok(Self {
            pid,
            pidfd,
            go: Some(go_write),
            exec_result: Some(result_read),
            end: None,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Lets the child exec the command; fails if the exec failed.
    pub fn release(&mut self) -> Result<(), String> {
        let Some(go) = self.go.take() else {
            return Ok(());
        };
        // SAFETY: writes one byte from a live buffer to an fd we own.
        let n = unsafe { libc::write(go.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
        if n != 1 {
            return Err(format!(
                "cannot start the command: {}",
                io::Error::last_os_error()
            ));
        }
        drop(go);
        let Some(result) = self.exec_result.take() else {
            return Ok(());
        };
        let mut errno = [0u8; 4];
        // SAFETY: reads at most 4 bytes into `errno`. It blocks only until
        // the child execs (closing its end) or reports why it could not.
        let n = unsafe { libc::read(result.as_raw_fd(), errno.as_mut_ptr().cast(), 4) };
        if n == 4 {
            let e = io::Error::from_raw_os_error(i32::from_ne_bytes(errno));
            return Err(format!("cannot run the command: {e}"));
        }
        Ok(())
    }

    /// Reaps the child if it has ended; true once it has.
    pub fn try_reap(&mut self) -> bool {
        if self.end.is_some() {
            return true;
        }
        let mut status = 0;
        // SAFETY: waits without blocking for our own child.
        let rc = unsafe { libc::waitpid(self.pid as libc::pid_t, &mut status, libc::WNOHANG) };
        if rc == self.pid as libc::pid_t {
            self.end = Some(if libc::WIFSIGNALED(status) {
                ChildEnd::Signaled(libc::WTERMSIG(status))
            } else {
                ChildEnd::Exited(libc::WEXITSTATUS(status))
            });
        } else if rc < 0 {
            // Not our child any more (cannot happen unless reaped elsewhere):
            // treat as ended.
            self.end = Some(ChildEnd::Exited(0));
        }
        self.end.is_some()
    }

    pub fn end(&self) -> Option<ChildEnd> {
        self.end
    }

    /// Ends the child the way bpftrace does when the trace stops first:
    /// SIGTERM, then SIGKILL if it is still there after a grace period (or
    /// at once if another SIGINT/SIGTERM interrupts the wait).
    pub fn terminate(&mut self) {
        if self.try_reap() {
            return;
        }
        // A child still held before exec has nothing to shut down.
        let signal = if self.go.is_some() {
            libc::SIGKILL
        } else {
            libc::SIGTERM
        };
        // SAFETY: signals our own child, which is not reaped yet.
        unsafe { libc::kill(self.pid as libc::pid_t, signal) };
        let _ = wait_readable(self.pidfd.as_fd(), TERM_GRACE);
        if !self.try_reap() {
            self.kill_and_reap();
        }
    }

    fn kill_and_reap(&mut self) {
        if self.end.is_some() {
            return;
        }
        let mut status = 0;
        // SAFETY: kills and waits for our own child, not yet reaped.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGKILL);
            libc::waitpid(self.pid as libc::pid_t, &mut status, 0);
        }
        self.end = Some(ChildEnd::Signaled(libc::SIGKILL));
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// The child's side of [`Child::spawn`]: never returns.
///
/// # Safety
/// Call only in a freshly forked child, with valid fds and NUL-terminated
/// `path` and `argv` (ending in a null pointer).
unsafe fn child_exec(
    parent: libc::pid_t,
    go: libc::c_int,
    result: libc::c_int,
    path: &CString,
    argv: &[*const libc::c_char],
) -> ! {
    // SAFETY: async-signal-safe calls only, on the caller's valid fds and
    // strings.
    unsafe {
        // SIGTERM when ferret dies, even by SIGKILL. If ferret died before
        // this took effect, the parent is already someone else.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        if libc::getppid() != parent {
            libc::_exit(1);
        }
        let mut byte = 0u8;
        if libc::read(go, (&raw mut byte).cast(), 1) != 1 {
            // ferret gave up (an error before attach): never run it.
            libc::_exit(1);
        }
        libc::execv(path.as_ptr(), argv.as_ptr());
        let errno = *libc::__errno_location();
        libc::write(result, (&raw const errno).cast(), 4);
        libc::_exit(127);
    }
}

/// Either process a trace follows.
#[derive(Debug)]
pub enum Followed {
    Pid(Watched),
    Child(Child),
}

impl Followed {
    /// Readable once the process has exited.
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        match self {
            Followed::Pid(w) => w.pidfd.as_fd(),
            Followed::Child(c) => c.pidfd.as_fd(),
        }
    }

    pub fn pid(&self) -> u32 {
        match self {
            Followed::Pid(w) => w.pid(),
            Followed::Child(c) => c.pid(),
        }
    }
}

/// Waits up to `timeout` for `fd` to poll readable; false on timeout or
/// when a signal interrupts the wait.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    Ok(poll_readable(&[fd], timeout)?
        .first()
        .copied()
        .unwrap_or(false))
}

/// Polls `fds` for readability up to `timeout`; which of them are ready.
/// A signal interrupting the wait counts as a timeout.
pub fn poll_readable(fds: &[BorrowedFd<'_>], timeout: Duration) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `pfds` is a live array of `pfds.len()` pollfds whose fds are
    // borrowed for the call.
    let rc = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![false; fds.len()]);
        }
        return Err(e);
    }
    Ok(pfds.iter().map(|p| p.revents != 0).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_spaces_without_quoting() {
        assert_eq!(split_command("ls -l  /tmp"), ["ls", "-l", "/tmp"]);
        assert_eq!(split_command("sh -c 'a b'"), ["sh", "-c", "'a", "b'"]);
        assert!(split_command("   ").is_empty());
    }

    #[test]
    fn finds_programs_in_path() {
        assert!(resolve_program("sh").is_ok_and(|p| p.is_absolute()));
        assert!(resolve_program("no-such-program-here").is_err());
        assert!(resolve_program("/no/such/file").is_err());
        assert!(resolve_program("/etc/passwd").is_err_and(|e| e.contains("not an executable")));
    }

    #[test]
    fn child_waits_for_release_and_reports_its_end() {
        let mut child = Child::spawn("sh -c false").unwrap();
        // Held: not exited even after a moment.
        std::thread::sleep(Duration::from_millis(50));
        assert!(!child.try_reap());
        child.release().unwrap();
        assert!(wait_readable(child.pidfd.as_fd(), Duration::from_secs(10)).unwrap());
        assert!(child.try_reap());
        assert_eq!(child.end(), Some(ChildEnd::Exited(1)));
    }

    #[test]
    fn dropping_a_held_child_never_runs_it() {
        let dir = std::env::temp_dir().join(format!("ferret-held-{}", std::process::id()));
        let cmd = format!("touch {}", dir.display());
        let child = Child::spawn(&cmd).unwrap();
        drop(child);
        std::thread::sleep(Duration::from_millis(50));
        assert!(!dir.exists());
    }

    #[test]
    fn terminate_stops_a_running_child() {
        let mut child = Child::spawn("sleep 30").unwrap();
        child.release().unwrap();
        child.terminate();
        assert_eq!(child.end(), Some(ChildEnd::Signaled(libc::SIGTERM)));
    }

    #[test]
    fn watching_needs_a_process() {
        let me = Watched::open(std::process::id()).unwrap();
        assert_eq!(me.pid(), std::process::id());
        assert!(Watched::open(0).is_err());
        assert!(
            Watched::open(PID_MAX + 1)
                .unwrap_err()
                .contains("out of range")
        );
    }
}
