//! The running kernel as the compiler's [`Target`]: tracepoints from
//! tracefs (mounted on first need), kernel types from BTF (read on first
//! need), CPU count, and the start clock.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ferret_btf::Btf;
use ferret_compiler::{SyscallAbi, Target};
use ferret_kernel::tracefs;

pub struct KernelTarget {
    tracefs: OnceCell<Option<PathBuf>>,
    btf: OnceCell<Result<Arc<Btf>, String>>,
    /// User-space binaries read so far (a wildcard's many probes share
    /// one).
    binaries: RefCell<HashMap<String, Arc<ferret_usym::Binary>>>,
    /// Loaded modules with BTF, each read on first use.
    modules: OnceCell<HashMap<String, OnceCell<Result<Btf, String>>>>,
    /// Whether BPF trampolines load, asked once.
    fentry: OnceCell<Result<(), String>>,
    ncpus: u64,
    start_ns: u64,
    verbose: bool,
}

impl KernelTarget {
    pub fn new(verbose: bool) -> Self {
        let ncpus = ferret_kernel::cpus::online().map_or(1, |c| c.len() as u64);
        Self {
            tracefs: OnceCell::new(),
            btf: OnceCell::new(),
            binaries: RefCell::default(),
            modules: OnceCell::new(),
            fentry: OnceCell::new(),
            ncpus,
            start_ns: clock_ns(libc::CLOCK_BOOTTIME),
            verbose,
        }
    }

    /// tracefs, mounted if needed; `None` when it cannot be had.
    pub fn tracefs(&self) -> Option<&PathBuf> {
        self.tracefs
            .get_or_init(|| match ferret_kernel::ensure_tracefs() {
                Ok(m) => {
                    if m.mounted_by_us && self.verbose {
                        eprintln!("mounted tracefs at {}", m.path.display());
                    }
                    Some(m.path)
                }
                Err(e) => {
                    if self.verbose {
                        eprintln!("tracefs unavailable: {e}");
                    }
                    None
                }
            })
            .as_ref()
    }
}

impl Target for KernelTarget {
    fn tracepoints(&self) -> Vec<(String, String)> {
        self.tracefs()
            .and_then(|t| tracefs::list_tracepoints(t).ok())
            .unwrap_or_default()
    }

    fn tracepoint_format(&self, category: &str, event: &str) -> Option<String> {
        let t = self.tracefs()?;
        tracefs::read_format(t, category, event).ok()
    }

    fn ncpus(&self) -> u64 {
        self.ncpus
    }

    fn start_ns(&self) -> u64 {
        self.start_ns
    }

    fn kprobes(&self) -> bool {
        ferret_kernel::probes::kprobes_available(self.tracefs().map(PathBuf::as_path))
    }

    fn fentry(&self, module: &str, btf_id: u32) -> Result<(), String> {
        let module = (module != ferret_compiler::fentry::VMLINUX).then_some(module);
        self.fentry
            .get_or_init(|| ferret_kernel::probes::fentry_available(module, btf_id))
            .clone()
    }

    fn kernel_functions(&self) -> Vec<(String, String)> {
        self.tracefs()
            .and_then(|t| tracefs::traceable_functions(t).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|f| (f.name, f.module))
            .collect()
    }

    fn kernel_symbol(&self, name: &str) -> Option<u64> {
        ferret_kernel::KernelSymbols::load()
            .ok()?
            .address_of(name)
            .filter(|&a| a != 0)
    }

    /// A cgroup v2 id is its directory's inode number in cgroupfs, which is
    /// what `bpf_get_current_cgroup_id` reports.
    fn cgroup_id(&self, path: &str) -> Option<u64> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        meta.is_dir().then(|| meta.ino())
    }

    /// The namespace of `/proc/self/ns/pid`, unless it is the initial one
    /// (inode `PROC_PID_INIT_INO`).
    fn pid_namespace(&self) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        const PROC_PID_INIT_INO: u64 = 0xEFFF_FFFC;
        let meta = std::fs::metadata("/proc/self/ns/pid").ok()?;
        (meta.ino() != PROC_PID_INIT_INO).then(|| (meta.dev(), meta.ino()))
    }

    /// TAI minus boot time, read between two boot-time reads so the
    /// delay between the reads cancels out.
    fn tai_offset_ns(&self) -> Option<u64> {
        let before = clock_ns(libc::CLOCK_BOOTTIME);
        let tai = clock_ns(libc::CLOCK_TAI);
        let after = clock_ns(libc::CLOCK_BOOTTIME);
        tai.checked_sub(before / 2 + after / 2)
    }

    fn user_binaries(&self, target: &str, pid: Option<u32>, any_file: bool) -> Vec<String> {
        ferret_usym::Resolver { pid, any_file }
            .resolve(target)
            .into_iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect()
    }

    fn process_binaries(&self, pid: u32) -> Vec<String> {
        ferret_usym::paths::mapped_paths(pid)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| ferret_usym::paths::is_probeable(p))
            .map(|p| p.to_string_lossy().into_owned())
            .collect()
    }

    fn user_instruction_boundary(
        &self,
        path: &str,
        f: &ferret_usym::Function,
        offset: u64,
    ) -> Option<bool> {
        ferret_usym::insn::on_instruction_boundary(Path::new(path), f, offset).ok()
    }

    fn user_binary(&self, path: &str) -> Result<Arc<ferret_usym::Binary>, String> {
        if let Some(b) = self.binaries.borrow().get(path) {
            return Ok(Arc::clone(b));
        }
        let binary =
            Arc::new(ferret_usym::Binary::read(Path::new(path)).map_err(|e| e.to_string())?);
        self.binaries
            .borrow_mut()
            .insert(path.to_string(), Arc::clone(&binary));
        Ok(binary)
    }

    fn syscall_abi(&self) -> Option<SyscallAbi> {
        match std::env::consts::ARCH {
            // thread_info.status follows `flags` and, since Linux 5.11,
            // `syscall_work`.
            "x86_64" => Some(SyscallAbi::x86_64(if kernel_at_least(5, 11)? {
                16
            } else {
                8
            })),
            "aarch64" => Some(SyscallAbi::aarch64()),
            _ => None,
        }
    }

    fn btf(&self) -> Result<&Btf, String> {
        self.vmlinux().map(|b| &**b)
    }

    fn btf_modules(&self) -> Vec<String> {
        let mut names: Vec<String> = self.modules().keys().cloned().collect();
        names.sort();
        names
    }

    fn module_btf(&self, name: &str) -> Result<&Btf, String> {
        let Some(cell) = self.modules().get(name) else {
            return Err(format!(
                "no loaded module '{name}' publishes BTF (no {}/{name})",
                ferret_btf::MODULES_DIR
            ));
        };
        cell.get_or_init(|| {
            let vmlinux = Arc::clone(self.vmlinux()?);
            Btf::module(name, vmlinux).map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
    }
}

impl KernelTarget {
    /// The names of `/sys/kernel/btf`'s modules (none when BPFTRACE_BTF
    /// names the kernel's types).
    fn modules(&self) -> &HashMap<String, OnceCell<Result<Btf, String>>> {
        self.modules.get_or_init(|| {
            if std::env::var_os("BPFTRACE_BTF").is_some() {
                return HashMap::new();
            }
            std::fs::read_dir(ferret_btf::MODULES_DIR)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n != "vmlinux")
                .map(|n| (n, OnceCell::new()))
                .collect()
        })
    }

    fn vmlinux(&self) -> Result<&Arc<Btf>, String> {
        self.btf
            .get_or_init(|| {
                let started = Instant::now();
                // As in bpftrace, BPFTRACE_BTF names a BTF file to use
                // instead of the running kernel's.
                let btf = match std::env::var_os("BPFTRACE_BTF") {
                    Some(path) => Btf::from_file(Path::new(&path), None),
                    None => Btf::vmlinux(),
                }
                .map(Arc::new)
                .map_err(|e| e.to_string());
                if self.verbose && btf.is_ok() {
                    eprintln!("read kernel BTF in {:?}", started.elapsed());
                }
                btf
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// Whether the running kernel's release is at least `major.minor`; None
/// when it cannot be read.
fn kernel_at_least(major: u32, minor: u32) -> Option<bool> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(str::parse::<u32>);
    let (Some(Ok(a)), Some(Ok(b))) = (parts.next(), parts.next()) else {
        return None;
    };
    Some((a, b) >= (major, minor))
}

/// Clock `clock` in ns (`CLOCK_BOOTTIME` is `bpf_ktime_get_boot_ns`'s).
fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}
