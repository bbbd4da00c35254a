//! Host programs the tasks run: finding them on PATH and installing the
//! missing ones with apt-get.

use std::path::PathBuf;
use std::process::Command;

/// `name` on PATH, or in the sbin directories a non-root PATH may lack.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Installs Debian `packages` with apt-get, refreshing the package lists
/// once if the first attempt fails. False when apt-get is missing or fails.
pub fn apt_install(packages: &[&str]) -> bool {
    if packages.is_empty() {
        return true;
    }
    if which("apt-get").is_none() {
        return false;
    }
    eprintln!("installing {} with apt-get", packages.join(" "));
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if install() {
        return true;
    }
    let _ = Command::new("apt-get").args(["update", "-q"]).status();
    install()
}
