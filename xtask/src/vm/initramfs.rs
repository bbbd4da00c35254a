//! The VM's whole root file system: busybox, a few of the host's own
//! programs that the tests run, ferret, the test binaries (with the host's
//! shared libraries they need, at the same paths), the few `/etc` files
//! the tests read, and an `/init` that mounts what a tracer needs, runs
//! every test binary, prints a result line and powers off.

use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::build::Build;
use crate::Result;
use crate::tools::which;

/// The prefix of every line `/init` prints for the host to read.
pub const MARK: &str = "ferret-vm-test:";

/// Programs the tests execute by path, copied from the host with their
/// shared libraries instead of being busybox applets: the tests run them
/// through symlinks with made-up names (so the child's comm is unique),
/// which a multi-call busybox would not recognise, and they expect a
/// dynamically linked program's start-up (`/bin/true` mapping its libraries).
/// `/bin/sh` is the host's shell for the same reason (tests run scripts
/// through a renamed shell); busybox's sh still runs `/init`.
const HOST_PROGRAMS: &[&str] = &[
    "/bin/true",
    "/bin/dd",
    "/bin/sleep",
    "/bin/cat",
    "/bin/sh",
    "/usr/bin/chrt",
];

/// `/etc` as the tests expect it: a root user (`username`), a host name,
/// and the loader's cache, through which ferret finds `libc` by name.
const ETC: &[(&str, &str)] = &[
    ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
    ("etc/group", "root:x:0:\n"),
    ("etc/hostname", "ferret-vm\n"),
];

/// Modules `/init` loads before the tests, by their path in the kernel
/// package: the loop driver, for `kprobe:MODULE:FUNCTION` (it needs no
/// other module, and a test calls its `loop_control_ioctl`).
const MODULES: &[&str] = &["kernel/drivers/block/loop.ko"];

/// Writes the staging tree under `dir` and packs it into `dir.cpio`.
pub fn make(dir: &Path, build: &Build, test_args: &[String]) -> Result<PathBuf> {
    let _ = std::fs::remove_dir_all(dir);
    let stage = Stage { root: dir };
    for d in ["bin", "proc", "sys", "dev", "tmp", "root", "tests"] {
        stage.mkdir(d)?;
    }
    let busybox = which("busybox").ok_or("busybox is not installed")?;
    stage.copy_program(&busybox, "bin/busybox")?;
    for applet in busybox_applets(&busybox)? {
        let link = format!("bin/{applet}");
        if applet != "busybox" && !HOST_PROGRAMS.contains(&format!("/{link}").as_str()) {
            stage.symlink("busybox", &link)?;
        }
    }
    for program in HOST_PROGRAMS {
        stage.copy_program(Path::new(program), &program[1..])?;
    }
    for (rel, text) in ETC {
        stage.mkdir("etc")?;
        write(&dir.join(rel), text)?;
    }
    if Path::new("/etc/ld.so.cache").is_file() {
        stage.copy(Path::new("/etc/ld.so.cache"), "etc/ld.so.cache")?;
    }
    // Not in $PATH: a bare `ferret` in a test means something else (the
    // USDT provider of the test binary itself).
    stage.copy_program(&build.ferret, "opt/ferret/ferret")?;
    let mut runs = Vec::new();
    for (i, (label, exe)) in build.tests.iter().enumerate() {
        let inside = format!("tests/{i:02}-{}", label.replace('/', "-"));
        stage.copy_program(exe, &inside)?;
        runs.push((label.as_str(), format!("/{inside}")));
    }
    let init = dir.join("init");
    write(&init, &init_script(&runs, test_args))?;
    set_mode(&init, 0o755)?;
    let archive = dir.with_extension("cpio");
    pack(dir, &archive)?;
    Ok(archive)
}

/// The image for one kernel: `base` followed by a second archive with
/// that kernel's [`MODULES`] in `/lib/modules` (the kernel unpacks
/// concatenated archives in turn). Compressed modules are unpacked here:
/// busybox's insmod may not read them.
pub fn for_kernel(base: &Path, modules: &Path, name: &str) -> Result<PathBuf> {
    let dir = base.with_file_name(format!("modules-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    let stage = Stage { root: &dir };
    stage.mkdir("lib/modules")?;
    for module in MODULES {
        let plain = modules.join(module);
        let xz = modules.join(format!("{module}.xz"));
        let file = Path::new(module)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(module);
        let to = dir.join("lib/modules").join(file);
        if plain.is_file() {
            stage.copy(&plain, &format!("lib/modules/{file}"))?;
        } else if xz.is_file() {
            let out = File::create(&to).map_err(|e| format!("{}: {e}", to.display()))?;
            let status = Command::new("xz")
                .arg("-dc")
                .arg(&xz)
                .stdout(out)
                .status()
                .map_err(|e| format!("xz: {e}"))?;
            if !status.success() {
                return Err(format!("xz -dc {} failed: {status}", xz.display()));
            }
        } else {
            return Err(format!("no {module} in {}", modules.display()));
        }
    }
    let extra = dir.with_extension("cpio");
    pack(&dir, &extra)?;
    let image = base.with_file_name(format!("initramfs-{name}.cpio"));
    let mut out = File::create(&image).map_err(|e| format!("{}: {e}", image.display()))?;
    for part in [base, extra.as_path()] {
        let mut f = File::open(part).map_err(|e| format!("{}: {e}", part.display()))?;
        std::io::copy(&mut f, &mut out).map_err(|e| format!("{}: {e}", image.display()))?;
    }
    Ok(image)
}

/// `/init`. Busybox's sh runs it as pid 1; its output is the console.
fn init_script(runs: &[(&str, String)], test_args: &[String]) -> String {
    let args: Vec<String> = test_args.iter().map(|a| quote(a)).collect();
    let args = args.join(" ");
    let mut s = String::from(
        r#"#!/bin/busybox sh
# Written by cargo xtask vm-test.
export PATH=/bin HOME=/root TMPDIR=/tmp CI=true FERRET_BIN=/opt/ferret/ferret
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
# Loopback, for the tests that connect to 127.0.0.1.
ip link set lo up
"#,
    );
    let _ = writeln!(s, "echo \"{MARK} kernel $(uname -r), $(nproc) CPUs\"");
    let _ = writeln!(
        s,
        r#"result=pass
for m in /lib/modules/*.ko; do
    [ -e "$m" ] || continue
    insmod "$m" || {{ echo "{MARK} FAILED insmod $m"; result=fail; }}
done
run() {{
    label=$1; shift
    echo "{MARK} start $label"
    start=$(cut -d' ' -f1 /proc/uptime)
    "$@"
    rc=$?
    took=$(awk -v a="$start" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN {{ printf "%.1f", b - a }}')
    if [ "$rc" = 0 ]; then
        echo "{MARK} ok $label ${{took}}s"
    else
        echo "{MARK} FAILED $label (exit $rc) ${{took}}s"
        result=fail
    fi
}}"#
    );
    for (label, path) in runs {
        let _ = writeln!(s, "run {} {} {args}", quote(label), quote(path));
    }
    let _ = writeln!(s, "echo \"{MARK} result $result\"");
    s.push_str("sync\npoweroff -f\n");
    s
}

/// Single-quotes `s` for the shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

struct Stage<'a> {
    root: &'a Path,
}

impl Stage<'_> {
    fn mkdir(&self, rel: &str) -> Result<()> {
        let d = self.root.join(rel);
        std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))
    }

    fn copy(&self, from: &Path, rel: &str) -> Result<()> {
        let to = self.root.join(rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::copy(from, &to)
            .map(|_| ())
            .map_err(|e| format!("copy {} to {}: {e}", from.display(), to.display()))
    }

    fn symlink(&self, target: &str, rel: &str) -> Result<()> {
        let link = self.root.join(rel);
        std::os::unix::fs::symlink(target, &link).map_err(|e| format!("{}: {e}", link.display()))
    }

    /// Copies a program and, when it is dynamically linked, the shared
    /// libraries and loader `ldd` names, at the same paths.
    fn copy_program(&self, program: &Path, rel: &str) -> Result<()> {
        self.copy(program, rel)?;
        for lib in shared_libraries(program)? {
            let rel = lib.strip_prefix("/").unwrap_or(&lib).display().to_string();
            if !self.root.join(&rel).exists() {
                self.copy(&lib, &rel)?;
            }
        }
        Ok(())
    }
}

/// The absolute paths in `ldd`'s answer; none for a static program.
fn shared_libraries(program: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(program)
        .output()
        .map_err(|e| format!("ldd: {e}"))?;
    // ldd exits non-zero for "not a dynamic executable".
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(PathBuf::from)
        .collect())
}

fn busybox_applets(busybox: &Path) -> Result<Vec<String>> {
    let out = Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(|e| format!("{} --list: {e}", busybox.display()))?;
    let list = String::from_utf8_lossy(&out.stdout);
    let applets: Vec<String> = list.lines().map(str::to_string).collect();
    for needed in ["sh", "mount", "poweroff", "awk", "cut"] {
        if !applets.iter().any(|a| a == needed) {
            return Err(format!("{} has no '{needed}' applet", busybox.display()));
        }
    }
    Ok(applets)
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// A newc cpio archive of `dir`, every file owned by root. Uncompressed:
/// the kernel unpacks it faster than it could inflate it under emulation.
fn pack(dir: &Path, archive: &Path) -> Result<()> {
    let mut names = Vec::new();
    list_tree(dir, Path::new("."), &mut names)?;
    let out = File::create(archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    let mut child = Command::new("cpio")
        .args(["--quiet", "-o", "-H", "newc", "-R", "0:0"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(out)
        .spawn()
        .map_err(|e| format!("cpio: {e}"))?;
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().ok_or("cpio stdin")?;
        let list: String = names.iter().map(|n| format!("{}\n", n.display())).collect();
        stdin
            .write_all(list.as_bytes())
            .map_err(|e| format!("cpio: {e}"))?;
    }
    let status = child.wait().map_err(|e| format!("cpio: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cpio failed: {status}"))
    }
}

/// Every path under `dir`, parents before children.
fn list_tree(dir: &Path, rel: &Path, names: &mut Vec<PathBuf>) -> Result<()> {
    let here = dir.join(rel);
    let mut entries: Vec<_> = std::fs::read_dir(&here)
        .map_err(|e| format!("{}: {e}", here.display()))?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = rel.join(entry.file_name());
        names.push(path.clone());
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir {
            list_tree(dir, &path, names)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_runs_each_binary_with_the_filter() {
        let runs = [("ferret/tracing", "/tests/01-ferret-tracing".to_string())];
        let s = init_script(&runs, &["kprobe".into(), "it's".into()]);
        assert!(s.starts_with("#!/bin/busybox sh\n"));
        assert!(
            s.contains("run 'ferret/tracing' '/tests/01-ferret-tracing' 'kprobe' 'it'\\''s'\n")
        );
        assert!(s.contains("ferret-vm-test: result $result"));
        assert!(s.ends_with("poweroff -f\n"));
    }
}
