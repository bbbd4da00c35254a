//! `cargo xtask vm-test`: runs ferret's kernel-dependent tests inside
//! Debian's kernels under qemu, so that what our own kernel cannot do
//! (kprobes) and what older kernels lack are tested too.
//!
//! Kernels come from Debian's archive (`kernel.rs`), the tests are built
//! as for the host (`build.rs`) and packed, with the host's shared
//! libraries and busybox, into an initramfs whose `/init` runs them
//! (`initramfs.rs`), and qemu boots it (`qemu.rs`).

mod build;
mod initramfs;
mod kernel;
mod qemu;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Result;
use crate::proc;
use crate::tools::{self, which};

#[derive(Debug)]
pub struct Options {
    pub kernels: Vec<&'static kernel::KernelSpec>,
    pub timeout: Duration,
    pub refresh: bool,
    /// Passed to every test binary (a filter, `--exact`, `--skip NAME`...).
    pub test_args: Vec<String>,
    /// Test binaries to run (`kprobes`, `ferret/kprobes`); all when empty.
    pub only: Vec<String>,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options> {
        let mut o = Options {
            kernels: kernel::KERNELS.iter().collect(),
            timeout: Duration::from_secs(40 * 60),
            refresh: false,
            test_args: Vec::new(),
            only: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
                _ => (a.as_str(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| it.next().cloned())
                    .ok_or_else(|| format!("{flag} needs a value\n{}", usage()))
            };
            match flag {
                "--kernel" => {
                    let v = value()?;
                    o.kernels = if v == "all" {
                        kernel::KERNELS.iter().collect()
                    } else {
                        vec![kernel::spec(&v).ok_or_else(|| {
                            format!("unknown kernel {v}; one of: {}, all", kernel_names())
                        })?]
                    };
                }
                "--timeout" => {
                    let v = value()?;
                    let secs: u64 = v
                        .parse()
                        .map_err(|_| format!("--timeout takes seconds, not {v}"))?;
                    o.timeout = Duration::from_secs(secs);
                }
                "--refresh" => o.refresh = true,
                "--only" => o.only.push(value()?),
                "--" => {
                    o.test_args = it.by_ref().cloned().collect();
                }
                "-h" | "--help" => {
                    println!("{}", usage());
                    std::process::exit(0);
                }
                other => return Err(format!("unknown option {other}\n{}", usage())),
            }
        }
        Ok(o)
    }
}

fn kernel_names() -> String {
    kernel::KERNELS
        .iter()
        .map(|k| k.name)
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn usage() -> String {
    format!(
        "usage: cargo xtask vm-test [--kernel {}|all] [--only TESTS]... [--timeout SECS] [--refresh] [-- TEST_ARGS...]\n\
         Boots Debian kernels under qemu and runs the kernel-dependent tests inside.\n\
         --only picks test binaries (kprobes, ferret/errors); all of them by default.\n\
         TEST_ARGS go to every test binary (a name filter, --exact, --skip NAME).\n\
         Kernels are cached under target/ferret-vm; --refresh fetches the newest.",
        kernel::KERNELS
            .iter()
            .map(|k| k.name)
            .collect::<Vec<_>>()
            .join("|")
    )
}

pub fn run(opts: &Options) -> Result<()> {
    proc::catch_signals();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace root")?
        .to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let cache = target.join("ferret-vm");
    install_host_tools()?;
    let mut kernels = Vec::new();
    for spec in &opts.kernels {
        let k = kernel::fetch(spec, &cache, opts.refresh)?;
        eprintln!(
            "vm-test: kernel {} is {} ({}; kprobe_multi: {})",
            k.name,
            k.release,
            k.package,
            if k.fprobe {
                "yes"
            } else {
                "no, CONFIG_FPROBE is off"
            }
        );
        kernels.push(k);
    }
    let started = Instant::now();
    let mut build = build::build(&root)?;
    if !opts.only.is_empty() {
        build.tests.retain(|(label, _)| {
            opts.only
                .iter()
                .any(|o| label == o || label.rsplit('/').next() == Some(o.as_str()))
        });
        if build.tests.is_empty() {
            return Err(format!(
                "--only {} names no test binary",
                opts.only.join(", ")
            ));
        }
    }
    let build_time = started.elapsed();
    let image = initramfs::make(&cache.join("initramfs"), &build, &opts.test_args)?;
    let mut rows = Vec::new();
    for k in &kernels {
        proc::check_interrupted()?;
        eprintln!("vm-test: booting {} ({})", k.name, k.release);
        let log = cache.join(format!("console-{}.log", k.name));
        let image = initramfs::for_kernel(&image, &k.modules, k.name)?;
        let outcome = qemu::boot(&k.vmlinuz, &image, &log, opts.timeout)?;
        eprintln!(
            "vm-test: {} {} in {:.0}s (console log: {})",
            k.name,
            if outcome.passed { "passed" } else { "FAILED" },
            outcome.wall.as_secs_f64(),
            log.display()
        );
        rows.push((k, outcome));
    }
    eprintln!("\nvm-test: build {:.0}s", build_time.as_secs_f64());
    eprintln!(
        "{:<6} {:<28} {:<6} {:>7} {:>7} {:>8} {:>7}",
        "kernel", "release", "result", "passed", "failed", "ignored", "wall"
    );
    for (k, o) in &rows {
        eprintln!(
            "{:<6} {:<28} {:<6} {:>7} {:>7} {:>8} {:>6.0}s{}",
            k.name,
            k.release,
            if o.passed { "pass" } else { "FAIL" },
            o.tests.passed,
            o.tests.failed,
            o.tests.ignored,
            o.wall.as_secs_f64(),
            o.failure
                .as_deref()
                .map(|f| format!("  {f}"))
                .unwrap_or_default()
        );
    }
    let failed: Vec<&str> = rows
        .iter()
        .filter(|(_, o)| !o.passed)
        .map(|(k, _)| k.name)
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("kernel tests failed on {}", failed.join(", ")))
    }
}

/// qemu, busybox and cpio, installed with apt-get when missing.
fn install_host_tools() -> Result<()> {
    let wanted = [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("busybox", "busybox-static"),
        ("cpio", "cpio"),
        ("apt-get", "apt"),
        ("dpkg-deb", "dpkg"),
        ("ldd", "libc-bin"),
        ("xz", "xz-utils"),
    ];
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(program, _)| which(program).is_none())
        .map(|&(_, package)| package)
        .collect();
    tools::apt_install(&missing);
    let still: Vec<&str> = wanted
        .iter()
        .filter(|(program, _)| which(program).is_none())
        .map(|&(program, _)| program)
        .collect();
    if still.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} missing and could not be installed (Debian: apt-get install \
             qemu-system-x86 busybox-static cpio)",
            still.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options() {
        let o = Options::parse(&args(&["--kernel", "6.1", "--", "kprobe", "--exact"])).unwrap();
        assert_eq!(o.kernels.len(), 1);
        assert_eq!(o.kernels[0].name, "6.1");
        assert_eq!(o.test_args, ["kprobe", "--exact"]);
        let o = Options::parse(&args(&[
            "--kernel=all",
            "--timeout=60",
            "--only",
            "kprobes",
        ]))
        .unwrap();
        assert_eq!(o.only, ["kprobes"]);
        assert_eq!(o.kernels.len(), kernel::KERNELS.len());
        assert_eq!(o.timeout, Duration::from_secs(60));
        assert!(Options::parse(&args(&["--kernel", "5.4"])).is_err());
        assert!(Options::parse(&args(&["--timeout"])).is_err());
    }
}
