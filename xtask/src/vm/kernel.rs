//! Debian's cloud kernels: resolved and downloaded with apt-get through a
//! private apt configuration (its own sources list, package lists and
//! cache under the VM directory, so the machine's apt setup is neither
//! read nor changed), unpacked once and reused by later runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Result;

/// The archive's signing keys, shipped by Debian's `debian-archive-keyring`.
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// One kernel of the test matrix.
#[derive(Debug)]
pub struct KernelSpec {
    /// What `--kernel` calls it, and the version prefix its package must have.
    pub name: &'static str,
    /// apt sources lines (`URI SUITE`) the kernel comes from.
    pub sources: &'static [&'static str],
}

pub const KERNELS: &[KernelSpec] = &[
    KernelSpec {
        name: "6.1",
        sources: &[
            "http://deb.debian.org/debian bookworm",
            "http://deb.debian.org/debian bookworm-updates",
            "http://deb.debian.org/debian-security bookworm-security",
        ],
    },
    KernelSpec {
        name: "6.12",
        sources: &["http://deb.debian.org/debian bookworm-backports"],
    },
];

/// The `linux-image-*-cloud-amd64` meta-package depends on the newest image.
const META_PACKAGE: &str = "linux-image-cloud-amd64";

/// Config options the kernel-dependent tests need.
const REQUIRED: &[&str] = &[
    "CONFIG_BPF_SYSCALL",
    "CONFIG_BPF_EVENTS",
    "CONFIG_DEBUG_INFO_BTF",
    "CONFIG_KPROBES",
    "CONFIG_KPROBE_EVENTS",
    "CONFIG_FTRACE_SYSCALLS",
    "CONFIG_BLK_DEV_INITRD",
    "CONFIG_SERIAL_8250_CONSOLE",
    "CONFIG_DEVTMPFS",
];

/// A kernel unpacked in the cache.
#[derive(Debug)]
pub struct Kernel {
    pub name: &'static str,
    /// The Debian package it came from.
    pub package: String,
    /// `uname -r`.
    pub release: String,
    pub vmlinuz: PathBuf,
    /// `lib/modules/RELEASE` of the unpacked package.
    pub modules: PathBuf,
    /// CONFIG_FPROBE, which `kprobe_multi` links need.
    pub fprobe: bool,
}

pub fn spec(name: &str) -> Option<&'static KernelSpec> {
    KERNELS.iter().find(|k| k.name == name)
}

/// The cached kernel, downloading it first when there is none (or when
/// `refresh` asks for the newest one).
pub fn fetch(spec: &'static KernelSpec, cache: &Path, refresh: bool) -> Result<Kernel> {
    let dir = cache.join("kernels").join(spec.name);
    let unpacked = dir.join("root");
    let stamp = dir.join("package");
    if !refresh
        && let Ok(package) = std::fs::read_to_string(&stamp)
        && let Ok(k) = inspect(spec, package.trim(), &unpacked)
    {
        return Ok(k);
    }
    let apt = Apt::new(spec, &cache.join("apt").join(spec.name))?;
    apt.update()?;
    let package = apt.image_package()?;
    let prefix = format!("linux-image-{}.", spec.name);
    if !package.starts_with(&prefix) {
        return Err(format!(
            "{META_PACKAGE} from {} depends on {package}, not a {} kernel",
            spec.sources.join(", "),
            spec.name
        ));
    }
    eprintln!("vm-test: downloading {package}");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    apt.download(&package, &dir)?;
    let deb =
        find_file(&dir, |n| n.starts_with(&package) && n.ends_with(".deb"))?.ok_or_else(|| {
            format!(
                "apt-get download left no {package}*.deb in {}",
                dir.display()
            )
        })?;
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked))?;
    // The unpacked tree is what later runs use; the archive is not needed.
    let _ = std::fs::remove_file(&deb);
    let kernel = inspect(spec, &package, &unpacked)?;
    std::fs::write(&stamp, &package).map_err(|e| format!("{}: {e}", stamp.display()))?;
    Ok(kernel)
}

/// Finds the image and config in an unpacked package and checks the
/// config has what the tests need.
fn inspect(spec: &'static KernelSpec, package: &str, unpacked: &Path) -> Result<Kernel> {
    let boot = unpacked.join("boot");
    let vmlinuz = find_file(&boot, |n| n.starts_with("vmlinuz-"))?
        .ok_or_else(|| format!("no vmlinuz-* in {}", boot.display()))?;
    let release = file_name(&vmlinuz)["vmlinuz-".len()..].to_string();
    let config_path = boot.join(format!("config-{release}"));
    let config = std::fs::read_to_string(&config_path)
        .map_err(|e| format!("{}: {e}", config_path.display()))?;
    let enabled = |opt: &str| config.lines().any(|l| l == format!("{opt}=y"));
    let missing: Vec<&str> = REQUIRED.iter().copied().filter(|o| !enabled(o)).collect();
    if !missing.is_empty() {
        return Err(format!(
            "{package} lacks {} (from {})",
            missing.join(", "),
            config_path.display()
        ));
    }
    Ok(Kernel {
        name: spec.name,
        package: package.to_string(),
        modules: unpacked.join("lib/modules").join(&release),
        release,
        vmlinuz,
        fprobe: enabled("CONFIG_FPROBE"),
    })
}

/// apt-get and apt-cache with their own sources list and state, so that
/// neither the machine's sources nor its package lists are touched.
struct Apt {
    options: Vec<String>,
}

impl Apt {
    fn new(spec: &KernelSpec, dir: &Path) -> Result<Apt> {
        for sub in ["lists/partial", "cache/archives/partial"] {
            let d = dir.join(sub);
            std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        if !Path::new(KEYRING).is_file() {
            return Err(format!(
                "{KEYRING} is missing (Debian: apt-get install debian-archive-keyring)"
            ));
        }
        let list: String = spec
            .sources
            .iter()
            .map(|s| format!("deb [signed-by={KEYRING}] {s} main\n"))
            .collect();
        let sources = dir.join("sources.list");
        std::fs::write(&sources, list).map_err(|e| format!("{}: {e}", sources.display()))?;
        let d = |p: &str| dir.join(p).display().to_string();
        let options = [
            format!("Dir::Etc::SourceList={}", sources.display()),
            "Dir::Etc::SourceParts=/nonexistent".to_string(),
            format!("Dir::State::Lists={}", d("lists")),
            format!("Dir::Cache={}", d("cache")),
            // No binary caches of the lists: apt-cache rebuilds them in memory.
            "Dir::Cache::pkgcache=".to_string(),
            "Dir::Cache::srcpkgcache=".to_string(),
            // Downloads land in a root-owned directory the _apt user
            // cannot write.
            "APT::Sandbox::User=root".to_string(),
        ]
        .into_iter()
        .flat_map(|o| ["-o".to_string(), o])
        .collect();
        Ok(Apt { options })
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.args(["-q"]).args(&self.options);
        c
    }

    fn update(&self) -> Result<()> {
        let mut c = self.command("apt-get");
        c.arg("update");
        run(&mut c)
    }

    /// The concrete image package the meta-package depends on.
    fn image_package(&self) -> Result<String> {
        let mut c = self.command("apt-cache");
        c.args(["depends", META_PACKAGE]);
        let out = output(&mut c)?;
        out.lines()
            .filter_map(|l| l.trim().strip_prefix("Depends: "))
            .find(|p| p.starts_with("linux-image-") && !p.contains(' '))
            .map(str::to_string)
            .ok_or_else(|| format!("apt-cache depends {META_PACKAGE} names no image:\n{out}"))
    }

    fn download(&self, package: &str, dir: &Path) -> Result<()> {
        let mut c = self.command("apt-get");
        c.current_dir(dir).args(["download", package]);
        run(&mut c)
    }
}

fn run(c: &mut Command) -> Result<()> {
    let status = c.status().map_err(|e| format!("{c:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{c:?} failed: {status}"))
    }
}

fn output(c: &mut Command) -> Result<String> {
    let out = c.output().map_err(|e| format!("{c:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{c:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn file_name(p: &Path) -> &str {
    p.file_name().and_then(|n| n.to_str()).unwrap_or_default()
}

/// The first file in `dir` whose name satisfies `want`.
fn find_file(dir: &Path, want: impl Fn(&str) -> bool) -> Result<Option<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| want(file_name(p)))
        .collect();
    found.sort();
    Ok(found.into_iter().next())
}
