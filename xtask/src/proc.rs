//! Child processes for the benchmarks: spawned with their output in files,
//! watched through a pidfd, reaped with `wait4` so the peak RSS comes back
//! with the exit status, and killed when dropped so no tracer outlives a
//! failed benchmark.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::Result;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Turns SIGINT, SIGTERM and SIGHUP into a flag that every wait checks, so
/// an interrupted run unwinds through the guards (children killed, sysctl
/// restored) instead of dying on the spot.
pub fn catch_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; the function pointer lives for the program.
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

pub fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        Err("interrupted".into())
    } else {
        Ok(())
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    /// Raw `wait4` status.
    pub status: i32,
    /// From just before spawning to the moment the child was seen gone.
    pub wall: Duration,
    /// Peak resident set size, KiB (`ru_maxrss`).
    pub maxrss_kib: u64,
}

impl Exit {
    pub fn success(&self) -> bool {
        libc::WIFEXITED(self.status) && libc::WEXITSTATUS(self.status) == 0
    }

    pub fn describe(&self) -> String {
        if libc::WIFEXITED(self.status) {
            format!("exit code {}", libc::WEXITSTATUS(self.status))
        } else if libc::WIFSIGNALED(self.status) {
            format!("killed by signal {}", libc::WTERMSIG(self.status))
        } else {
            format!("status {:#x}", self.status)
        }
    }
}

/// A running child. Dropping it before it exits kills it with SIGKILL and
/// reaps it.
pub struct Proc {
    label: String,
    pid: libc::pid_t,
    pidfd: OwnedFd,
    started: Instant,
    exit: Option<Exit>,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl Proc {
    /// Spawns `cmd` with stdin from /dev/null and stdout/stderr into
    /// `dir/<label>.stdout` and `dir/<label>.stderr`.
    pub fn spawn(mut cmd: Command, dir: &Path, label: &str) -> Result<Proc> {
        check_interrupted()?;
        let stdout = dir.join(format!("{label}.stdout"));
        let stderr = dir.join(format!("{label}.stderr"));
        let out = File::create(&stdout).map_err(|e| format!("{}: {e}", stdout.display()))?;
        let err = File::create(&stderr).map_err(|e| format!("{}: {e}", stderr.display()))?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let started = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
        let pid = child.id() as libc::pid_t;
        // The std handle is dropped without waiting: from here on the child
        // is reaped only through `wait4` below, which also yields its rusage.
        drop(child);
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1;
        // the pid is our unreaped child, so it cannot have been reused.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            // SAFETY: plain kill of our own unreaped child, then a blocking
            // reap so it does not linger as a zombie.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
            return Err(format!("pidfd_open: {e}"));
        }
        // SAFETY: `fd` was just returned by pidfd_open and is owned by nobody
        // else.
        let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Ok(Proc {
            label: label.to_string(),
            pid,
            pidfd,
            started,
            exit: None,
            stdout,
            stderr,
        })
    }

    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// Waits up to `timeout` for the child to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<Exit>> {
        if let Some(e) = self.exit {
            return Ok(Some(e));
        }
        let deadline = Instant::now() + timeout;
        loop {
            check_interrupted()?;
            let left = deadline.saturating_duration_since(Instant::now());
            let slice = left.min(Duration::from_millis(100));
            let mut pfd = libc::pollfd {
                fd: self.pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, count 1.
            let n = unsafe { libc::poll(&mut pfd, 1, slice.as_millis() as libc::c_int) };
            if n > 0 {
                return self.reap().map(Some);
            }
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(format!("poll on pidfd: {e}"));
                }
            }
            if left.is_zero() {
                return Ok(None);
            }
        }
    }

    /// Non-blocking: has the child exited?
    pub fn poll_exit(&mut self) -> Result<Option<Exit>> {
        self.wait_timeout(Duration::ZERO)
    }

    fn reap(&mut self) -> Result<Exit> {
        let mut status = 0;
        // SAFETY: rusage is plain old data; all-zero is a valid value.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: pid is our child, status and ru are valid out-pointers.
            let r = unsafe { libc::wait4(self.pid, &mut status, 0, &mut ru) };
            if r == self.pid {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(format!("wait4({}): {e}", self.pid));
            }
        }
        let exit = Exit {
            status,
            wall: self.started.elapsed(),
            maxrss_kib: ru.ru_maxrss.max(0) as u64,
        };
        self.exit = Some(exit);
        Ok(exit)
    }

    /// Sends `sig` unless the child has already been reaped. Goes through
    /// the pidfd, so it can never reach a recycled pid.
    pub fn signal(&self, sig: libc::c_int) {
        if self.exit.is_none() {
            // SAFETY: valid pidfd, null siginfo, no flags.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    self.pidfd.as_raw_fd(),
                    sig,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                );
            }
        }
    }

    /// SIGINT, then SIGKILL if the child has not gone after `grace`.
    /// Returns the exit and whether SIGKILL was needed.
    pub fn stop(&mut self, grace: Duration) -> Result<(Exit, bool)> {
        self.signal(libc::SIGINT);
        if let Some(e) = self.wait_timeout(grace)? {
            return Ok((e, false));
        }
        self.signal(libc::SIGKILL);
        match self.wait_timeout(Duration::from_secs(30))? {
            Some(e) => Ok((e, true)),
            None => Err(format!(
                "{} (pid {}) survived SIGKILL",
                self.label, self.pid
            )),
        }
    }

    pub fn read_stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn read_stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The last few lines of stderr, for error messages.
    pub fn stderr_tail(&self) -> String {
        let s = self.read_stderr();
        let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = &lines[lines.len().saturating_sub(4)..];
        tail.join(" / ")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exit.is_none() {
            self.signal(libc::SIGKILL);
            let _ = self.reap();
        }
    }
}
