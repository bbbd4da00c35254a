//! Making sure tracefs and bpffs are available, mounting them when we may.

use std::{
    ffi::CString,
    io,
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
};

use crate::error::{KernelError, Result};

const TRACEFS: &str = "/sys/kernel/tracing";
const TRACEFS_OLD: &str = "/sys/kernel/debug/tracing";
const BPFFS: &str = "/sys/fs/bpf";
/// `BPF_FS_MAGIC` from `linux/magic.h`.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Where a filesystem is, and whether this process mounted it (for `-v`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub path: PathBuf,
    pub mounted_by_us: bool,
}

/// Finds tracefs, mounting it at `/sys/kernel/tracing` if it is nowhere.
pub fn ensure_tracefs() -> Result<Mount> {
    for candidate in [TRACEFS, TRACEFS_OLD] {
        let path = Path::new(candidate);
        if path.join("events").is_dir() {
            return Ok(Mount {
                path: path.to_path_buf(),
                mounted_by_us: false,
            });
        }
    }
    let path = PathBuf::from(TRACEFS);
    mount("tracefs", &path).map_err(|reason| KernelError::NotMounted {
        fs: "tracefs",
        path: path.clone(),
        reason,
    })?;
    if !path.join("events").is_dir() {
        return Err(KernelError::NotMounted {
            fs: "tracefs",
            path,
            reason: "mounted, but it has no events/ directory".into(),
        });
    }
    Ok(Mount {
        path,
        mounted_by_us: true,
    })
}

/// Finds bpffs at `/sys/fs/bpf`, mounting it there if needed.
pub fn ensure_bpffs() -> Result<Mount> {
    let path = PathBuf::from(BPFFS);
    if is_bpffs(&path) {
        return Ok(Mount {
            path,
            mounted_by_us: false,
        });
    }
    mount("bpf", &path).map_err(|reason| KernelError::NotMounted {
        fs: "bpffs",
        path: path.clone(),
        reason,
    })?;
    Ok(Mount {
        path,
        mounted_by_us: true,
    })
}

fn is_bpffs(path: &Path) -> bool {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: an all-zero `statfs` is a valid value of this plain C struct.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is NUL-terminated and `st` is a live, writable statfs.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), &raw mut st) };
    // f_type's integer type differs between libc targets.
    let magic = st.f_type as i64;
    rc == 0 && magic == BPF_FS_MAGIC
}

/// Mounts `fstype` at `target`; the error is a sentence for the user.
fn mount(fstype: &str, target: &Path) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(format!(
            "not mounted, and only root can mount it (try: mount -t {fstype} {fstype} {})",
            target.display()
        ));
    }
    let c_target = CString::new(target.as_os_str().as_bytes())
        .map_err(|_| "path contains a NUL byte".to_string())?;
    let c_type = CString::new(fstype).map_err(|_| "bad filesystem type".to_string())?;
    let c_source = c_type.clone();
    // SAFETY: every pointer is a NUL-terminated string that outlives the call;
    // `data` may be NULL for these filesystems.
    let rc = unsafe {
        libc::mount(
            c_source.as_ptr(),
            c_target.as_ptr(),
            c_type.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let err = io::Error::last_os_error();
        return Err(format!("mount -t {fstype} failed: {err}"));
    }
    Ok(())
}
