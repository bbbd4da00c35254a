//! Boots a kernel and the initramfs under qemu, streams the serial console
//! and reads the result `/init` prints.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use super::initramfs::MARK;
use crate::Result;
use crate::proc::check_interrupted;

/// How one boot ended.
#[derive(Debug)]
pub struct Outcome {
    pub passed: bool,
    /// Why it failed, in a few words, when it did.
    pub failure: Option<String>,
    pub wall: Duration,
    /// Sums over every `test result:` line.
    pub tests: TestCounts,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct TestCounts {
    pub passed: u32,
    pub failed: u32,
    pub ignored: u32,
}

/// Runs the VM until `/init` powers it off, the kernel dies, or `timeout`.
/// Every console line goes to stdout as it arrives and to `log`, there
/// with the seconds since qemu started.
pub fn boot(vmlinuz: &Path, initramfs: &Path, log: &Path, timeout: Duration) -> Result<Outcome> {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args([
        "-nodefaults",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
    ])
    // KVM is not usable on our machines; TCG is. QEMU 7.2's TCG
    // corrupts guest state under SMP in two ways we hit: multi-threaded
    // TCG races the kernel's cross-CPU code patching (jump labels,
    // kprobes), and its cmpxchg16b breaks SLUB's per-CPU freelists.
    // One host thread for all vCPUs and no cmpxchg16b boot reliably.
    .args(["-accel", "tcg,thread=single", "-cpu", "max,cx16=off"])
    .args(["-smp", "2", "-m", "2G"])
    .arg("-kernel")
    .arg(vmlinuz)
    .arg("-initrd")
    .arg(initramfs)
    // panic=-1 with -no-reboot turns a kernel panic (and, through
    // oops=panic, any oops) into qemu exiting.
    .args(["-append", "console=ttyS0 quiet panic=-1 oops=panic"])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = Guard(
        cmd.spawn()
            .map_err(|e| format!("cannot start qemu-system-x86_64: {e}"))?,
    );
    let (tx, rx) = channel();
    let stdout = child.0.stdout.take().ok_or("qemu stdout")?;
    let stderr = child.0.stderr.take().ok_or("qemu stderr")?;
    for stream in [
        Box::new(stdout) as Box<dyn std::io::Read + Send>,
        Box::new(stderr),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stream);
            let mut line = Vec::new();
            while r.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                if tx
                    .send(String::from_utf8_lossy(&line).into_owned())
                    .is_err()
                {
                    break;
                }
                line.clear();
            }
        });
    }
    drop(tx);
    let mut log_file = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut console = Console::default();
    let deadline = started + timeout;
    let mut out = std::io::stdout().lock();
    loop {
        check_interrupted()?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(console.outcome(
                started.elapsed(),
                Some(format!(
                    "no result within {}s (--timeout)",
                    timeout.as_secs()
                )),
            ));
        }
        match rx.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(line) => {
                let line = strip_terminal_codes(&line);
                let _ = out.write_all(line.as_bytes());
                let _ = out.flush();
                // The log says when each line came, to find slow tests.
                let at = started.elapsed().as_secs_f64();
                let _ = write!(log_file, "[{at:8.2}] {line}");
                console.read(&line);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = child
        .0
        .wait()
        .map_err(|e| format!("waiting for qemu: {e}"))?;
    let why = if console.result.is_some() {
        None
    } else if status.success() {
        Some("the VM stopped without a result line (kernel panic?)".to_string())
    } else {
        Some(format!("qemu failed: {status}"))
    };
    Ok(console.outcome(started.elapsed(), why))
}

/// What the console said so far.
#[derive(Debug, Default)]
struct Console {
    result: Option<bool>,
    failed_binaries: Vec<String>,
    tests: TestCounts,
}

impl Console {
    fn read(&mut self, line: &str) {
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix(MARK).map(str::trim) {
            if let Some(r) = rest.strip_prefix("result ") {
                self.result = Some(r == "pass");
            } else if let Some(r) = rest.strip_prefix("FAILED ") {
                let label = r.split(' ').next().unwrap_or(r);
                self.failed_binaries.push(label.to_string());
            }
        } else if let Some(summary) = line.strip_prefix("test result: ") {
            // "ok. 12 passed; 0 failed; 1 ignored; 0 measured; ..."
            for part in summary.split(['.', ';']) {
                let mut words = part.split_whitespace();
                let (Some(n), Some(what)) = (words.next(), words.next()) else {
                    continue;
                };
                let Ok(n) = n.parse::<u32>() else { continue };
                match what {
                    "passed" => self.tests.passed += n,
                    "failed" => self.tests.failed += n,
                    "ignored" => self.tests.ignored += n,
                    _ => {}
                }
            }
        }
    }

    fn outcome(self, wall: Duration, failure: Option<String>) -> Outcome {
        let failure = failure.or_else(|| match self.result {
            Some(true) => None,
            _ => Some(format!(
                "failed: {}",
                if self.failed_binaries.is_empty() {
                    "?".to_string()
                } else {
                    self.failed_binaries.join(", ")
                }
            )),
        });
        Outcome {
            passed: failure.is_none() && self.result == Some(true),
            failure,
            wall,
            tests: self.tests,
        }
    }
}

/// Drops the escape sequences firmware writes to the serial port (screen
/// clears, cursor modes), which would garble a terminal or a log.
fn strip_terminal_codes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // Parameters, then one final byte in @..~.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if c != '\r' {
            out.push(c);
        }
    }
    out
}

/// Kills qemu when a run is abandoned (timeout, Ctrl-C, an error).
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_result_and_counts() {
        let mut c = Console::default();
        for line in [
            "ferret-vm-test: start ferret-kernel/kernel\n",
            "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 8.51s\n",
            "ferret-vm-test: FAILED ferret/tracing (exit 101) 17.2s\n",
            "test result: FAILED. 10 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n",
            "ferret-vm-test: result fail\n",
        ] {
            c.read(line);
        }
        let o = c.outcome(Duration::from_secs(1), None);
        assert!(!o.passed);
        assert_eq!(o.failure.as_deref(), Some("failed: ferret/tracing"));
        assert_eq!(
            (o.tests.passed, o.tests.failed, o.tests.ignored),
            (22, 1, 1)
        );
    }

    #[test]
    fn no_result_line_is_a_failure() {
        let mut c = Console::default();
        c.read("Kernel panic - not syncing: Fatal exception\n");
        let o = c.outcome(Duration::from_secs(1), Some("stopped".into()));
        assert!(!o.passed);
    }

    #[test]
    fn terminal_codes_are_dropped() {
        assert_eq!(
            strip_terminal_codes("\u{1b}c\u{1b}[?7l\u{1b}[2JSeaBIOS\r\n"),
            "SeaBIOS\n"
        );
    }
}
