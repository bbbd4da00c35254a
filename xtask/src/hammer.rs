//! The event generator: a separate process (this binary, re-run as
//! `xtask __hammer COUNT RATE`) that calls getppid(2) COUNT times. Being its
//! own process gives its events a pid of their own, so printf output lines
//! can be attributed to it exactly.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::Result;
use crate::proc::Proc;

/// Entry point of the `__hammer` subcommand. RATE is calls per second,
/// 0 for as fast as possible. Prints the elapsed nanoseconds.
pub fn main(args: &[String]) -> Result<()> {
    let [count, rate] = args else {
        return Err("usage: xtask __hammer COUNT RATE".into());
    };
    let count: u64 = count.parse().map_err(|_| "COUNT: not a number")?;
    let rate: u64 = rate.parse().map_err(|_| "RATE: not a number")?;
    let start = Instant::now();
    if rate == 0 {
        for _ in 0..count {
            getppid();
        }
    } else {
        // Batches of about a millisecond's worth, each paced against the
        // start so the average rate holds even when sleeps overshoot.
        let batch = (rate / 1000).max(1);
        let mut done = 0;
        while done < count {
            let n = batch.min(count - done);
            for _ in 0..n {
                getppid();
            }
            done += n;
            let due = start + Duration::from_secs_f64(done as f64 / rate as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
    }
    println!("{}", start.elapsed().as_nanos());
    Ok(())
}

/// One syscall, one tracepoint hit.
pub fn getppid() {
    // SAFETY: getppid has no preconditions and cannot fail.
    unsafe {
        libc::getppid();
    }
}

/// A finished hammer run.
pub struct Hammered {
    /// One pid per hammer process.
    pub pids: Vec<libc::pid_t>,
    /// Until the last process finished.
    pub elapsed: Duration,
}

/// Runs `procs` hammer processes at once, each making `count` calls at
/// `rate` per second (0: flat out), and waits for all of them.
pub fn run(dir: &Path, label: &str, procs: usize, count: u64, rate: u64) -> Result<Hammered> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut running = Vec::new();
    for i in 0..procs.max(1) {
        let mut cmd = Command::new(&exe);
        cmd.args(["__hammer", &count.to_string(), &rate.to_string()]);
        running.push(Proc::spawn(cmd, dir, &format!("{label}-{i}"))?);
    }
    let mut pids = Vec::new();
    let mut elapsed = Duration::ZERO;
    for mut p in running {
        let exit = p
            .wait_timeout(Duration::from_secs(120))?
            .ok_or("the getppid hammer did not finish in 120 s")?;
        if !exit.success() {
            return Err(format!(
                "the getppid hammer failed ({}): {}",
                exit.describe(),
                p.stderr_tail()
            ));
        }
        let ns: u64 = p
            .read_stdout()
            .trim()
            .parse()
            .map_err(|_| "the getppid hammer printed no timing")?;
        pids.push(p.pid());
        elapsed = elapsed.max(Duration::from_nanos(ns));
    }
    Ok(Hammered { pids, elapsed })
}
