//! Kprobes, kretprobes, uprobes and uretprobes.
//!
//! The kernel makes a probe for a perf event opened on its `kprobe` or
//! `uprobe` PMU (`/sys/bus/event_source/devices/{kprobe,uprobe}`): the
//! function or binary path goes in `config1`, the offset in `config2`, and
//! the bit named by `format/retprobe` asks for a return probe. The probe
//! lives exactly as long as the perf event's fd. Kernels without those PMUs
//! (before 4.17) only make probes through tracefs (`kprobe_events`,
//! `uprobe_events`): those entries outlive us, so ours are named after our
//! pid, removed when their link drops, and entries of dead ferret processes
//! (killed with SIGKILL) are removed before we add any.
//!
//! Many kprobes at once go through one `BPF_LINK_CREATE` of type
//! `BPF_TRACE_KPROBE_MULTI` (by symbol name) on kernels that have it
//! (5.18+ with fprobe); elsewhere each function gets its own kprobe.

use std::{
    ffi::{CString, c_char},
    fs,
    io::{self, Write as _},
    os::{
        fd::{AsFd as _, AsRawFd as _, BorrowedFd, OwnedFd},
        unix::ffi::OsStrExt as _,
    },
    path::{Path, PathBuf},
    sync::{
        Once, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
};

use aya_obj::generated::{BPF_F_KPROBE_MULTI_RETURN, bpf_attach_type, bpf_prog_type, perf_type_id};
use ferret_bpf::{Insn, Reg};

use crate::{
    attach::perf_event_with_program,
    error::{KernelError, Result},
    loader::{Link, LoadedObject, ProgramKind},
    mounts, sys, tracefs,
};

const PMU_DIR: &str = "/sys/bus/event_source/devices";

/// The two kinds of dynamic probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeKind {
    Kprobe,
    Uprobe,
}

impl ProbeKind {
    fn pmu_name(self) -> &'static str {
        match self {
            Self::Kprobe => "kprobe",
            Self::Uprobe => "uprobe",
        }
    }

    fn events_file(self) -> &'static str {
        match self {
            Self::Kprobe => "kprobe_events",
            Self::Uprobe => "uprobe_events",
        }
    }

    fn unavailable(self) -> KernelError {
        KernelError::Unavailable(match self {
            Self::Kprobe => {
                "kprobes are not available on this kernel (CONFIG_KPROBES is off)".into()
            }
            Self::Uprobe => {
                "uprobes are not available on this kernel (CONFIG_UPROBES is off)".into()
            }
        })
    }
}

/// A probe PMU: its perf event type, and the `config` bit of return probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pmu {
    perf_type: u32,
    retprobe_bit: Option<u32>,
}

fn pmu(kind: ProbeKind) -> Option<Pmu> {
    static PMUS: OnceLock<[Option<Pmu>; 2]> = OnceLock::new();
    let read = |kind: ProbeKind| {
        let dir = Path::new(PMU_DIR).join(kind.pmu_name());
        let perf_type = fs::read_to_string(dir.join("type"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let retprobe_bit = fs::read_to_string(dir.join("format/retprobe"))
            .ok()
            .and_then(|f| parse_config_bit(&f));
        Some(Pmu {
            perf_type,
            retprobe_bit,
        })
    };
    PMUS.get_or_init(|| [read(ProbeKind::Kprobe), read(ProbeKind::Uprobe)])[kind as usize]
}

/// The bit of a one-bit PMU format field (`config:0`).
fn parse_config_bit(format: &str) -> Option<u32> {
    let bit = format.trim().strip_prefix("config:")?;
    if bit.contains('-') {
        return None;
    }
    bit.parse().ok().filter(|&b| b < 64)
}

/// Whether this kernel makes kprobes (`CONFIG_KPROBES`): it has the kprobe
/// PMU, or `kprobe_events` in tracefs (`tracefs` is where it is mounted).
pub fn kprobes_available(tracefs: Option<&Path>) -> bool {
    pmu(ProbeKind::Kprobe).is_some()
        || tracefs.is_some_and(|t| t.join(ProbeKind::Kprobe.events_file()).exists())
}

/// Whether this kernel makes BPF trampolines (fentry/fexit): it loads an
/// empty fentry program for the function with BTF id `btf_id` (in
/// `module`'s BTF when one is given, else in vmlinux's). On
/// kernels that cannot, the error says why. Costs one program load, about
/// a millisecond.
pub fn fentry_available(module: Option<&str>, btf_id: u32) -> std::result::Result<(), String> {
    let def = ferret_bpf::object::ObjectDef {
        license: String::new(),
        maps: Vec::new(),
        programs: vec![ferret_bpf::object::ProgramDef {
            section: "fentry/ferret_probe".into(),
            name: "ferret_probe".into(),
            insns: vec![Insn::mov64_imm(Reg::R0, 0), Insn::exit()],
            map_relocations: Vec::new(),
            subprograms: Vec::new(),
        }],
    };
    let loaded = crate::loader::load(&def).and_then(|mut obj| {
        obj.set_attach_btf_id("ferret_probe", btf_id)?;
        if let Some(m) = module {
            obj.set_attach_btf_module("ferret_probe", m)?;
        }
        obj.load_program("ferret_probe")
    });
    loaded.map_err(|e| match e {
        // "fentry is not available on this kernel (it refuses BPF
        // trampolines: ERRNO)": the reason alone.
        KernelError::Unavailable(msg) => match msg.split_once("it refuses BPF trampolines: ") {
            Some((_, errno)) => format!(
                "the kernel refuses BPF trampolines: {}",
                errno.strip_suffix(')').unwrap_or(errno)
            ),
            None => msg,
        },
        other => other.to_string(),
    })
}

/// A probe made through tracefs, removed again when dropped. Its perf
/// event must be closed first: the kernel refuses to remove a probe in use.
#[derive(Debug)]
struct TracefsEntry {
    events_file: PathBuf,
    /// `GROUP/EVENT`
    name: String,
}

impl Drop for TracefsEntry {
    fn drop(&mut self) {
        let _ = append_line(&self.events_file, &format!("-:{}", self.name));
    }
}

/// The attachment to a tracefs-made probe; field order closes its perf
/// event before the entry is removed.
#[derive(Debug)]
pub(crate) struct ProbeEntry {
    _link: Box<Link>,
    _entry: TracefsEntry,
}

fn append_line(path: &Path, line: &str) -> io::Result<()> {
    let mut file = fs::OpenOptions::new().append(true).open(path)?;
    file.write_all(format!("{line}\n").as_bytes())
}

/// Group of this process's tracefs probes.
fn our_group() -> String {
    format!("ferret_{}", std::process::id())
}

/// Removes probes left in `events_file` by ferret processes that are gone.
fn remove_stale_entries(events_file: &Path) {
    let Ok(text) = fs::read_to_string(events_file) else {
        return;
    };
    let alive = |pid: u32| Path::new("/proc").join(pid.to_string()).exists();
    for name in text.lines().filter_map(|line| stale_entry(line, alive)) {
        let _ = append_line(events_file, &format!("-:{name}"));
    }
}

/// The `GROUP/EVENT` of a probe definition line (`p:ferret_123/p0
/// do_sys_open`) made by a ferret process that is not `alive`.
fn stale_entry(line: &str, alive: impl Fn(u32) -> bool) -> Option<&str> {
    let name = line.split_whitespace().next()?.get(2..)?;
    let pid = name.split('/').next()?.strip_prefix("ferret_")?;
    let pid = pid.parse().ok()?;
    (!alive(pid)).then_some(name)
}

/// Makes a probe through tracefs; returns its event id and the entry.
fn tracefs_probe(
    kind: ProbeKind,
    target: &str,
    offset: u64,
    ref_ctr: Option<u64>,
    retprobe: bool,
) -> Result<(u64, TracefsEntry)> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    static CLEANED: [Once; 2] = [Once::new(), Once::new()];
    let tracefs = mounts::ensure_tracefs()?.path;
    let events_file = tracefs.join(kind.events_file());
    if !events_file.exists() {
        return Err(kind.unavailable());
    }
    CLEANED[kind as usize].call_once(|| remove_stale_entries(&events_file));
    if target.chars().any(char::is_whitespace) {
        return Err(KernelError::Invalid(format!(
            "cannot probe {target:?}: the name contains white space"
        )));
    }
    let group = our_group();
    let event = format!(
        "{}{}",
        if retprobe { 'r' } else { 'p' },
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let location = match kind {
        ProbeKind::Kprobe if offset == 0 => target.to_owned(),
        ProbeKind::Kprobe => format!("{target}+{offset}"),
        ProbeKind::Uprobe => match ref_ctr {
            // The USDT semaphore the kernel counts up while the probe exists.
            Some(r) => format!("{target}:{offset:#x}({r:#x})"),
            None => format!("{target}:{offset:#x}"),
        },
    };
    let definition = format!(
        "{}:{group}/{event} {location}",
        if retprobe { 'r' } else { 'p' }
    );
    append_line(&events_file, &definition).map_err(|e| KernelError::Syscall {
        what: format!("adding `{definition}` to {}", events_file.display()),
        source: e,
    })?;
    let entry = TracefsEntry {
        events_file,
        name: format!("{group}/{event}"),
    };
    let id = tracefs::event_id(&tracefs, &group, &event)?;
    Ok((id, entry))
}

/// Whether `BPF_TRACE_KPROBE_MULTI` links work here: a trivial kprobe
/// program loads for them and a link on a function that does not exist
/// fails for that reason (not for an unknown attach type or a kernel
/// without fprobe). Asked once per process.
pub(crate) fn kprobe_multi_supported() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        let code: Vec<u8> = [Insn::mov64_imm(Reg::R0, 0), Insn::exit()]
            .iter()
            .flat_map(Insn::encode)
            .collect();
        let license = c"GPL";
        let mut attr = sys::zeroed_attr();
        // SAFETY: `attr` is all zeroes, a valid value of each of its
        // variants; this one is only written.
        let u = unsafe { &mut attr.__bindgen_anon_3 };
        u.prog_type = bpf_prog_type::BPF_PROG_TYPE_KPROBE as u32;
        u.expected_attach_type = bpf_attach_type::BPF_TRACE_KPROBE_MULTI as u32;
        u.insn_cnt = 2;
        u.insns = code.as_ptr() as u64;
        u.license = license.as_ptr() as u64;
        // SAFETY: `code` and `license` outlive the call.
        let Ok(prog) = (unsafe { sys::bpf_fd(sys::bpf_cmd::BPF_PROG_LOAD, &mut attr) }) else {
            return false;
        };
        let missing = [c"ferret_kprobe_multi_probe_no_such_function"];
        match kprobe_multi_link(prog.as_fd(), &missing, false) {
            Ok(_) => true,
            Err(e) => matches!(e.raw_os_error(), Some(libc::ESRCH | libc::ENOENT)),
        }
    })
}

/// One `BPF_TRACE_KPROBE_MULTI` link on `symbols`.
fn kprobe_multi_link<S: AsRef<std::ffi::CStr>>(
    prog: BorrowedFd<'_>,
    symbols: &[S],
    retprobe: bool,
) -> io::Result<OwnedFd> {
    let pointers: Vec<*const c_char> = symbols.iter().map(|s| s.as_ref().as_ptr()).collect();
    let mut attr = sys::zeroed_attr();
    attr.link_create.__bindgen_anon_1.prog_fd = prog.as_raw_fd() as u32;
    attr.link_create.attach_type = bpf_attach_type::BPF_TRACE_KPROBE_MULTI as u32;
    // SAFETY: `attr` is all zeroes, a valid value of each of its
    // variants; this one is only written.
    let multi = unsafe { &mut attr.link_create.__bindgen_anon_3.kprobe_multi };
    multi.flags = if retprobe {
        BPF_F_KPROBE_MULTI_RETURN
    } else {
        0
    };
    multi.cnt = pointers.len() as u32;
    multi.syms = pointers.as_ptr() as u64;
    // SAFETY: `pointers` and the strings it points to outlive the call.
    unsafe { sys::bpf_fd(sys::bpf_cmd::BPF_LINK_CREATE, &mut attr) }
}

fn c_string(s: &[u8], what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| KernelError::Invalid(format!("{what} contains a NUL byte")))
}

impl LoadedObject {
    /// Attaches a kprobe program to `function` (`offset` bytes in; return
    /// probes only at offset 0). The program's section is `kprobe/…` or
    /// `kprobe.multi/…` (`kretprobe…` alike); `retprobe` picks the kind.
    pub fn attach_kprobe(
        &mut self,
        program: &str,
        function: &str,
        offset: u64,
        retprobe: bool,
    ) -> Result<()> {
        if retprobe && offset != 0 {
            return Err(KernelError::Invalid(format!(
                "a kretprobe attaches at the start of a function, not at {function}+{offset}"
            )));
        }
        let i = self.loaded(
            program,
            &[ProgramKind::Kprobe, ProgramKind::KprobeMulti],
            "kprobe",
        )?;
        if self.programs[i].multi {
            if offset != 0 {
                return Err(KernelError::Invalid(format!(
                    "program {program} attaches to whole functions, not to {function}+{offset}"
                )));
            }
            self.attach_kprobes(program, &[function], retprobe)?;
            return Ok(());
        }
        let link = self.probe_link(
            i,
            ProbeKind::Kprobe,
            function.as_bytes(),
            offset,
            None,
            retprobe,
            None,
            false,
        )?;
        self.links.push(link);
        Ok(())
    }

    /// Attaches a kprobe program to every function of `functions`: one link
    /// for all of them when the program was loaded for kprobe multi links
    /// (a `kprobe.multi/…` section on a kernel that has them), one kprobe
    /// each otherwise. Returns how many functions were attached.
    pub fn attach_kprobes(
        &mut self,
        program: &str,
        functions: &[&str],
        retprobe: bool,
    ) -> Result<usize> {
        let i = self.loaded(
            program,
            &[ProgramKind::Kprobe, ProgramKind::KprobeMulti],
            "kprobe",
        )?;
        // Sorted and unique: the kernel looks every name up once, and a
        // name given twice would count as not found.
        let mut functions = functions.to_vec();
        functions.sort_unstable();
        functions.dedup();
        if !self.programs[i].multi {
            for function in &functions {
                self.attach_kprobe(program, function, 0, retprobe)?;
            }
            return Ok(functions.len());
        }
        if functions.is_empty() {
            return Ok(0);
        }
        let symbols = functions
            .iter()
            .map(|f| c_string(f.as_bytes(), "a function name"))
            .collect::<Result<Vec<_>>>()?;
        let fd = kprobe_multi_link(self.programs[i].loaded_fd()?, &symbols, retprobe).map_err(
            |source| KernelError::Attach {
                program: program.into(),
                target: match functions.as_slice() {
                    [one] => format!("kprobe {one}"),
                    [first, ..] => format!("{} kprobes ({first}, ...)", functions.len()),
                    [] => String::new(),
                },
                source,
            },
        )?;
        self.links.push(Link::Bpf(fd));
        Ok(functions.len())
    }

    /// Attaches a `uprobe/…` program at file offset `offset` of `binary`
    /// (a return probe when `retprobe`), in every process or only in `pid`.
    pub fn attach_uprobe(
        &mut self,
        program: &str,
        binary: &Path,
        offset: u64,
        retprobe: bool,
        pid: Option<u32>,
    ) -> Result<()> {
        self.attach_uprobe_with(program, binary, offset, None, retprobe, pid, false)
    }

    /// Attaches a `uprobe/…` program to a USDT probe site at file offset
    /// `offset` of `binary`: a uprobe that also keeps the probe's semaphore
    /// (the u16 at file offset `semaphore`) counted up while it exists, so
    /// the traced program runs the code that feeds the probe its arguments.
    pub fn attach_usdt(
        &mut self,
        program: &str,
        binary: &Path,
        offset: u64,
        semaphore: Option<u64>,
        pid: Option<u32>,
    ) -> Result<()> {
        self.attach_uprobe_with(program, binary, offset, semaphore, false, pid, false)
    }

    /// [`Self::attach_uprobe`] through tracefs `uprobe_events` even when the
    /// uprobe PMU exists: how kernels before 4.17 make every probe, tested
    /// here on uprobes.
    #[doc(hidden)]
    pub fn attach_uprobe_through_tracefs(
        &mut self,
        program: &str,
        binary: &Path,
        offset: u64,
        retprobe: bool,
        pid: Option<u32>,
    ) -> Result<()> {
        self.attach_uprobe_with(program, binary, offset, None, retprobe, pid, true)
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one private helper for every uprobe kind"
    )]
    fn attach_uprobe_with(
        &mut self,
        program: &str,
        binary: &Path,
        offset: u64,
        ref_ctr: Option<u64>,
        retprobe: bool,
        pid: Option<u32>,
        through_tracefs: bool,
    ) -> Result<()> {
        let i = self.loaded(program, &[ProgramKind::Uprobe], "uprobe")?;
        let pid = pid
            .map(|p| i32::try_from(p).map_err(|_| KernelError::Invalid(format!("bad pid {p}"))))
            .transpose()?;
        let path = binary.as_os_str().as_bytes();
        let link = self.probe_link(
            i,
            ProbeKind::Uprobe,
            path,
            offset,
            ref_ctr,
            retprobe,
            pid,
            through_tracefs,
        )?;
        self.links.push(link);
        Ok(())
    }

    /// A perf event on a new kprobe or uprobe running program `i`: through
    /// the probe PMU when there is one, else through tracefs.
    #[expect(
        clippy::too_many_arguments,
        reason = "one private helper for both probe kinds"
    )]
    fn probe_link(
        &self,
        i: usize,
        kind: ProbeKind,
        target: &[u8],
        offset: u64,
        ref_ctr: Option<u64>,
        retprobe: bool,
        pid: Option<i32>,
        through_tracefs: bool,
    ) -> Result<Link> {
        let p = &self.programs[i];
        let shown = String::from_utf8_lossy(target);
        let attach_err = |source| KernelError::Attach {
            program: p.name.clone(),
            target: format!(
                "{}{} {shown}{}",
                kind.pmu_name(),
                if retprobe { " (return)" } else { "" },
                if offset == 0 {
                    String::new()
                } else {
                    format!("+{offset:#x}")
                }
            ),
            source,
        };
        // A probe on every process is opened on one CPU: kprobes and
        // uprobes run the program wherever they fire.
        let (pid, cpu) = pid.map_or((-1, 0), |pid| (pid, -1));
        let pmu =
            pmu(kind).filter(|pmu| !through_tracefs && (!retprobe || pmu.retprobe_bit.is_some()));
        if let Some(pmu) = pmu {
            let target = c_string(target, "the probe target")?;
            let mut attr = sys::zeroed_perf_attr();
            attr.type_ = pmu.perf_type;
            if retprobe && let Some(bit) = pmu.retprobe_bit {
                attr.config = 1 << bit;
            }
            attr.__bindgen_anon_3.config1 = target.as_ptr() as u64;
            attr.__bindgen_anon_4.config2 = offset;
            // `format/ref_ctr_offset` of the uprobe PMU: config:32-63.
            attr.config |= ref_ctr.unwrap_or(0) << 32;
            return perf_event_with_program(&mut attr, pid, cpu, p.loaded_fd()?)
                .map_err(attach_err);
        }
        let target = std::str::from_utf8(target)
            .map_err(|_| KernelError::Invalid(format!("cannot probe {shown:?}: not UTF-8")))?;
        let (id, entry) = tracefs_probe(kind, target, offset, ref_ctr, retprobe)?;
        let mut attr = sys::zeroed_perf_attr();
        attr.type_ = perf_type_id::PERF_TYPE_TRACEPOINT as u32;
        attr.config = id;
        attr.__bindgen_anon_2.wakeup_events = 1;
        let link =
            perf_event_with_program(&mut attr, pid, cpu, p.loaded_fd()?).map_err(attach_err)?;
        Ok(Link::Probe(ProbeEntry {
            _link: Box::new(link),
            _entry: entry,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pmu_format_bits() {
        assert_eq!(parse_config_bit("config:0\n"), Some(0));
        assert_eq!(parse_config_bit("config:9"), Some(9));
        assert_eq!(parse_config_bit("config:32-63"), None);
        assert_eq!(parse_config_bit("config1:0"), None);
    }

    #[test]
    fn stale_entries_are_those_of_dead_ferrets() {
        let alive = |pid| pid == 7;
        assert_eq!(
            stale_entry("p:ferret_12/p0 do_sys_open", alive),
            Some("ferret_12/p0")
        );
        assert_eq!(
            stale_entry("r:ferret_12/r3 /bin/bash:0x0000000000001234", alive),
            Some("ferret_12/r3")
        );
        assert_eq!(stale_entry("p:ferret_7/p0 do_sys_open", alive), None);
        assert_eq!(
            stale_entry("p:kprobes/p_do_sys_open do_sys_open", alive),
            None
        );
        assert_eq!(stale_entry("p:ferret_x/p0 f", alive), None);
        assert_eq!(stale_entry("", alive), None);
    }

    #[test]
    fn kprobes_are_reported_unavailable_clearly() {
        assert_eq!(
            ProbeKind::Kprobe.unavailable().to_string(),
            "kprobes are not available on this kernel (CONFIG_KPROBES is off)"
        );
    }
}
