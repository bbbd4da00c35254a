//! Checking, before anything is loaded, that we may use bpf() and perf events.

use std::{fs, path::Path};

use crate::error::{KernelError, Result};

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Fails with a message naming the missing capabilities unless this process
/// may load tracing programs (CAP_SYS_ADMIN, or CAP_BPF plus CAP_PERFMON).
pub fn check() -> Result<()> {
    let path = Path::new("/proc/self/status");
    let status = fs::read_to_string(path).map_err(|e| KernelError::io(path, e))?;
    let caps = parse_cap_eff(&status).ok_or_else(|| KernelError::Parse {
        path: path.to_path_buf(),
        detail: "no CapEff line".into(),
    })?;
    check_caps(caps)
}

/// The effective capability mask from the text of `/proc/<pid>/status`.
pub fn parse_cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
}

/// The decision behind [`check`], on a given CapEff mask.
pub fn check_caps(cap_eff: u64) -> Result<()> {
    let has = |cap: u32| cap_eff & (1u64 << cap) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        return Ok(());
    }
    let missing = match (has(CAP_BPF), has(CAP_PERFMON)) {
        (false, false) => "CAP_BPF and CAP_PERFMON",
        (false, true) => "CAP_BPF",
        (true, false) => "CAP_PERFMON",
        (true, true) => "CAP_SYS_ADMIN",
    };
    Err(KernelError::Permission {
        missing: missing.into(),
    })
}

/// Raises the open-file limit as far as this process may: every attached
/// tracepoint or kprobe holds a perf event and a link, so a wide probe
/// (`t:syscalls:*`, ~700 tracepoints) needs far more descriptors than the
/// common default soft limit of 1024. The soft limit goes up to the hard
/// one, and with CAP_SYS_RESOURCE both go up to `WANTED`; failures leave
/// the limit as it was, and attaching then reports "Too many open files".
pub fn raise_open_file_limit() {
    const WANTED: libc::rlim_t = 1 << 16;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return;
    }
    if limit.rlim_cur >= WANTED {
        return;
    }
    let raised = libc::rlimit {
        rlim_cur: WANTED,
        rlim_max: limit.rlim_max.max(WANTED),
    };
    // SAFETY: setrlimit only reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        return;
    }
    let soft = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: as above.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &soft) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cap_eff() {
        let status = "Name:\tcat\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_cap_eff(status), Some(0x1ff_ffff_ffff));
        assert_eq!(parse_cap_eff("Name: x\n"), None);
    }

    #[test]
    fn decides() {
        assert!(check_caps(1 << CAP_SYS_ADMIN).is_ok());
        assert!(check_caps((1 << CAP_BPF) | (1 << CAP_PERFMON)).is_ok());
        let msg = check_caps(1 << CAP_BPF).map_err(|e| e.to_string());
        assert_eq!(
            msg,
            Err("permission denied: ferret needs CAP_PERFMON (or root)".into())
        );
        let msg = check_caps(0).map_err(|e| e.to_string());
        assert_eq!(
            msg,
            Err("permission denied: ferret needs CAP_BPF and CAP_PERFMON (or root)".into())
        );
    }
}
