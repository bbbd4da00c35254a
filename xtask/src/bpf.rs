//! Finding a tracer's kernel programs and reading their run-time
//! statistics.
//!
//! A tracer's programs are found through its own file descriptors
//! (`/proc/PID/fdinfo` of each `anon_inode:bpf-prog` fd gives `prog_id` and
//! `prog_type`), which ties them to that process even when other tracers are
//! loaded. The counters (`run_time_ns`, `run_cnt`) are then read with
//! `bpftool prog show id N -j`, or from the same fdinfo when bpftool is not
//! available; both come from the same kernel counters.

use std::path::Path;
use std::process::Command;

use crate::Result;

/// `BPF_PROG_TYPE_TRACEPOINT`.
const PROG_TYPE_TRACEPOINT: u32 = 5;

const STATS_SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// Turns `kernel.bpf_stats_enabled` on for its lifetime, then puts the
/// previous value back.
pub struct StatsEnabled {
    previous: String,
}

impl StatsEnabled {
    pub fn enable() -> Result<StatsEnabled> {
        let previous = std::fs::read_to_string(STATS_SYSCTL)
            .map_err(|e| format!("{STATS_SYSCTL}: {e}"))?
            .trim()
            .to_string();
        std::fs::write(STATS_SYSCTL, "1").map_err(|e| format!("{STATS_SYSCTL}: {e}"))?;
        Ok(StatsEnabled { previous })
    }
}

impl Drop for StatsEnabled {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(STATS_SYSCTL, &self.previous) {
            eprintln!(
                "warning: could not restore {STATS_SYSCTL} to {}: {e}",
                self.previous
            );
        }
    }
}

/// One program held open by a process.
#[derive(Debug, Clone)]
pub struct ProgFd {
    pub pid: libc::pid_t,
    pub fd: String,
    pub id: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub run_time_ns: u64,
    pub run_cnt: u64,
}

impl Stats {
    pub fn since(self, before: Stats) -> Stats {
        Stats {
            run_time_ns: self.run_time_ns.saturating_sub(before.run_time_ns),
            run_cnt: self.run_cnt.saturating_sub(before.run_cnt),
        }
    }

    fn add(self, other: Stats) -> Stats {
        Stats {
            run_time_ns: self.run_time_ns + other.run_time_ns,
            run_cnt: self.run_cnt + other.run_cnt,
        }
    }
}

fn fdinfo_field(info: &str, key: &str) -> Option<u64> {
    info.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().parse().ok())?
    })
}

/// The tracepoint programs `pid` holds open.
pub fn tracepoint_progs(pid: libc::pid_t) -> Vec<ProgFd> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let mut progs = Vec::new();
    for entry in dir.flatten() {
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if !target.to_string_lossy().contains("bpf-prog") {
            continue;
        }
        let fd = entry.file_name().to_string_lossy().into_owned();
        let Ok(info) = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")) else {
            continue;
        };
        if fdinfo_field(&info, "prog_type") != Some(u64::from(PROG_TYPE_TRACEPOINT)) {
            continue;
        }
        if let Some(id) = fdinfo_field(&info, "prog_id") {
            progs.push(ProgFd {
                pid,
                fd,
                id: id as u32,
            });
        }
    }
    progs.sort_by_key(|p| p.id);
    progs
}

fn fdinfo_stats(p: &ProgFd) -> Result<Stats> {
    let path = format!("/proc/{}/fdinfo/{}", p.pid, p.fd);
    let info = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    Ok(Stats {
        run_time_ns: fdinfo_field(&info, "run_time_ns").unwrap_or(0),
        run_cnt: fdinfo_field(&info, "run_cnt").unwrap_or(0),
    })
}

/// Pulls `"key": <unsigned number>` out of bpftool's JSON. bpftool's output
/// for one program is a flat object, so this is all the parsing needed.
fn json_u64(json: &str, key: &str) -> Option<u64> {
    let pat = format!("\"{key}\"");
    let rest = &json[json.find(&pat)? + pat.len()..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn json_str(json: &str, key: &str) -> Option<String> {
    let pat = format!("\"{key}\"");
    let rest = &json[json.find(&pat)? + pat.len()..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

/// Where the counters come from.
#[derive(Debug, Clone)]
pub struct StatsSource {
    pub bpftool: Option<std::path::PathBuf>,
}

impl StatsSource {
    fn bpftool_show(bpftool: &Path, id: u32) -> Result<String> {
        let out = Command::new(bpftool)
            .args(["prog", "show", "id", &id.to_string(), "-j"])
            .output()
            .map_err(|e| format!("bpftool: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "bpftool prog show id {id}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Summed counters of `progs`.
    pub fn read(&self, progs: &[ProgFd]) -> Result<Stats> {
        let mut total = Stats::default();
        for p in progs {
            let s = match &self.bpftool {
                Some(bpftool) => {
                    let json = Self::bpftool_show(bpftool, p.id)?;
                    Stats {
                        run_time_ns: json_u64(&json, "run_time_ns").unwrap_or(0),
                        run_cnt: json_u64(&json, "run_cnt").unwrap_or(0),
                    }
                }
                None => fdinfo_stats(p)?,
            };
            total = total.add(s);
        }
        Ok(total)
    }

    /// Fast counter read for polling (always fdinfo).
    pub fn read_fast(progs: &[ProgFd]) -> Stats {
        progs
            .iter()
            .filter_map(|p| fdinfo_stats(p).ok())
            .fold(Stats::default(), Stats::add)
    }

    /// Kernel-side program names, for the report.
    pub fn names(&self, progs: &[ProgFd]) -> Vec<String> {
        progs
            .iter()
            .map(|p| {
                self.bpftool
                    .as_deref()
                    .and_then(|b| Self::bpftool_show(b, p.id).ok())
                    .and_then(|j| json_str(&j, "name"))
                    .unwrap_or_else(|| format!("id {}", p.id))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields() {
        let j = r#"{"id":3009,"type":"tracepoint","name":"ferret_p0","run_time_ns": 1234,"run_cnt":56}"#;
        assert_eq!(json_u64(j, "run_time_ns"), Some(1234));
        assert_eq!(json_u64(j, "run_cnt"), Some(56));
        assert_eq!(json_u64(j, "missing"), None);
        assert_eq!(json_str(j, "name").as_deref(), Some("ferret_p0"));
    }

    #[test]
    fn fdinfo_fields() {
        let info = "pos:\t0\nprog_type:\t5\nprog_id:\t3028\nrun_time_ns:\t10\nrun_cnt:\t2\n";
        assert_eq!(fdinfo_field(info, "prog_type"), Some(5));
        assert_eq!(fdinfo_field(info, "prog_id"), Some(3028));
        assert_eq!(fdinfo_field(info, "run_cnt"), Some(2));
        assert_eq!(fdinfo_field(info, "nope"), None);
    }
}
