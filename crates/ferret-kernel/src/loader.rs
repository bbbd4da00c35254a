//! Loading one eBPF object, and reaching its programs and maps.
//!
//! Loading is done here by hand with `bpf(2)`: the maps are created with
//! `BPF_MAP_CREATE`, each map load (`ld_imm64`) is patched with its map's fd
//! (`BPF_PSEUDO_MAP_FD`), and each program goes to `BPF_PROG_LOAD` with the
//! type its section names. aya 0.14's `EbpfLoader` cannot load without
//! reading and parsing all of `/sys/kernel/btf/vmlinux` (5.5 MB, even with
//! `.btf(None)`): that was about 30 of the 42 ms and 17 of the 22 MiB
//! `ferret -e 'begin { exit(); }'` took. aya still serves for the ring
//! buffer.
//!
//! Everything is owned through file descriptors (programs, maps, bpf links,
//! perf events): dropping [`LoadedObject`], or the process dying, detaches
//! everything. Nothing is pinned. The only thing outside an fd is a kprobe
//! or uprobe made through tracefs on kernels without the probe PMUs (see
//! [`crate::probes`]), removed when its link drops.

use std::{
    ffi::{CStr, CString},
    io,
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, OwnedFd},
    sync::OnceLock,
};

use aya::maps::MapData;
use aya_obj::generated::{bpf_attach_type, bpf_prog_info, bpf_prog_type};
use ferret_bpf::{
    Insn,
    btf::{FUNC_INFO_SIZE, encode_func_info, program_func_info},
    insn::BPF_PSEUDO_MAP_FD,
    object::{MapDef, ObjectDef, ProgramDef},
};

use crate::{
    error::{KernelError, Result},
    events::EventReader,
    maps::RawMap,
    probes::ProbeEntry,
    sys::{self, bpf_cmd},
};

/// Process name (`comm`) of the background detacher, as `ps` shows it.
pub const DETACHER_NAME: &CStr = c"ferret-detach";

/// What a program is, from the part of its section before the first `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProgramKind {
    /// `tracepoint/…`
    Tracepoint,
    /// `raw_tp/…`: raw tracepoints, and `begin`/`end` run by test run.
    RawTracepoint,
    /// `perf_event`
    PerfEvent,
    /// `tp_btf/…`: BTF-typed raw tracepoint.
    TpBtf,
    /// `fentry/…`
    Fentry,
    /// `fexit/…`
    Fexit,
    /// `kprobe/…`, `kretprobe/…`
    Kprobe,
    /// `kprobe.multi/…`, `kretprobe.multi/…`: many functions through one
    /// link where the kernel can, one kprobe each where it cannot.
    KprobeMulti,
    /// `uprobe/…`, `uretprobe/…`
    Uprobe,
}

impl ProgramKind {
    fn from_section(section: &str) -> Option<Self> {
        let head = section.split('/').next().unwrap_or_default();
        Some(match head {
            "tracepoint" | "tp" => Self::Tracepoint,
            "raw_tp" | "raw_tracepoint" => Self::RawTracepoint,
            "perf_event" => Self::PerfEvent,
            "tp_btf" => Self::TpBtf,
            "fentry" => Self::Fentry,
            "fexit" => Self::Fexit,
            "kprobe" | "kretprobe" => Self::Kprobe,
            "kprobe.multi" | "kretprobe.multi" => Self::KprobeMulti,
            "uprobe" | "uretprobe" => Self::Uprobe,
            _ => return None,
        })
    }

    /// `bpf_prog_type`, and the `expected_attach_type` it loads with.
    fn load_types(self, multi: bool) -> (u32, u32) {
        use bpf_attach_type as at;
        use bpf_prog_type as pt;
        let (prog_type, attach) = match self {
            Self::Tracepoint => (pt::BPF_PROG_TYPE_TRACEPOINT, None),
            Self::RawTracepoint => (pt::BPF_PROG_TYPE_RAW_TRACEPOINT, None),
            Self::PerfEvent => (pt::BPF_PROG_TYPE_PERF_EVENT, None),
            Self::TpBtf => (pt::BPF_PROG_TYPE_TRACING, Some(at::BPF_TRACE_RAW_TP)),
            Self::Fentry => (pt::BPF_PROG_TYPE_TRACING, Some(at::BPF_TRACE_FENTRY)),
            Self::Fexit => (pt::BPF_PROG_TYPE_TRACING, Some(at::BPF_TRACE_FEXIT)),
            Self::Kprobe | Self::Uprobe => (pt::BPF_PROG_TYPE_KPROBE, None),
            Self::KprobeMulti => (
                pt::BPF_PROG_TYPE_KPROBE,
                multi.then_some(at::BPF_TRACE_KPROBE_MULTI),
            ),
        };
        (prog_type as u32, attach.map_or(0, |a| a as u32))
    }

    fn needs_btf_id(self) -> bool {
        matches!(self, Self::TpBtf | Self::Fentry | Self::Fexit)
    }
}

/// One program of the object; loaded on first need.
#[derive(Debug)]
pub(crate) struct Program {
    pub(crate) name: String,
    pub(crate) kind: ProgramKind,
    /// Instructions with every map load patched to its map's fd.
    insns: Vec<Insn>,
    subprograms: Vec<usize>,
    /// The kernel BTF id of what a tp_btf/fentry/fexit program attaches to.
    attach_btf_id: Option<u32>,
    /// The kernel module BTF object that id is in (none: vmlinux's).
    attach_btf_obj: Option<OwnedFd>,
    /// Loaded for `BPF_TRACE_KPROBE_MULTI` links.
    pub(crate) multi: bool,
    pub(crate) fd: Option<OwnedFd>,
}

impl Program {
    /// The fd of a program known to be loaded.
    pub(crate) fn loaded_fd(&self) -> Result<BorrowedFd<'_>> {
        self.fd
            .as_ref()
            .map(|fd| fd.as_fd())
            .ok_or_else(|| KernelError::NoSuchProgram(self.name.clone()))
    }
}

/// A created map.
#[derive(Debug)]
struct LoadedMap {
    def: MapDef,
    fd: OwnedFd,
}

/// One attachment; dropping it detaches.
#[derive(Debug)]
pub(crate) enum Link {
    /// A bpf link alone (raw tracepoint, tp_btf, fentry, kprobe multi).
    Bpf(#[expect(dead_code, reason = "held only to be dropped")] OwnedFd),
    /// A perf event running the program through a bpf link. Closing the
    /// link detaches the program at once; closing the event of a
    /// tracepoint or probe then waits for an RCU grace period.
    Perf { link: OwnedFd, event: OwnedFd },
    /// A perf event running the program through `PERF_EVENT_IOC_SET_BPF`
    /// (kernels before 5.15): only closing the event detaches.
    PerfIoctl(#[expect(dead_code, reason = "held only to be dropped")] OwnedFd),
    /// A perf event on a kprobe or uprobe made through tracefs; the probe
    /// entry is removed once the event is closed.
    Probe(#[expect(dead_code, reason = "held only to be dropped")] ProbeEntry),
}

/// A loaded eBPF object: its maps exist, its programs are loaded on first
/// attach or run (or [`LoadedObject::load_program`]).
#[derive(Debug)]
pub struct LoadedObject {
    pub(crate) links: Vec<Link>,
    /// Perf events whose program was detached by closing its bpf link,
    /// disabled, and waiting to be closed (which is slow, see
    /// [`LoadedObject::detach_in_background`]).
    retired: Vec<OwnedFd>,
    pub(crate) programs: Vec<Program>,
    maps: Vec<LoadedMap>,
    license: CString,
}

impl Drop for LoadedObject {
    fn drop(&mut self) {
        close_in_parallel(std::mem::take(&mut self.links));
        close_in_parallel(std::mem::take(&mut self.retired));
    }
}

/// Closes links or perf events from many threads at once.
///
/// Removing the last perf user of a tracepoint waits for an RCU grace period
/// (tens of ms) in the kernel; one by one, 700 tracepoints take close to a
/// minute to tear down. Concurrent waiters share grace periods.
fn close_in_parallel<T: Send>(mut items: Vec<T>) {
    const PER_THREAD: usize = 4;
    const MAX_THREADS: usize = 256;
    if items.len() <= PER_THREAD {
        return;
    }
    let threads = items.len().div_ceil(PER_THREAD).min(MAX_THREADS);
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        while !items.is_empty() {
            let batch: Vec<T> = items.drain(..chunk.min(items.len())).collect();
            // If no thread can be started the batch is dropped (closed) here.
            let _spawned = std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn_scoped(scope, move || drop(batch));
        }
    });
}

/// Creates the maps of `object` and prepares its programs (patching in the
/// map fds); programs are loaded on first use.
pub fn load(object: &ObjectDef) -> Result<LoadedObject> {
    object
        .validate()
        .map_err(|e| KernelError::Object(e.to_string()))?;
    let license = CString::new(object.license())
        .map_err(|_| KernelError::Object("license string contains a NUL byte".into()))?;
    let mut maps = Vec::with_capacity(object.maps.len());
    for def in &object.maps {
        let fd = create_map(def)?;
        maps.push(LoadedMap {
            def: def.clone(),
            fd,
        });
    }
    let programs = object
        .programs
        .iter()
        .map(|p| prepare(p, &maps))
        .collect::<Result<Vec<_>>>()?;
    Ok(LoadedObject {
        links: Vec::new(),
        retired: Vec::new(),
        programs,
        maps,
        license,
    })
}

/// `name` cut to what the kernel takes as an object name: 15 characters of
/// `[A-Za-z0-9_.]`.
fn object_name(name: &str) -> [libc::c_char; 16] {
    let mut out = [0 as libc::c_char; 16];
    let valid = name
        .bytes()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.');
    for (slot, b) in out.iter_mut().take(15).zip(valid) {
        *slot = b as libc::c_char;
    }
    out
}

fn create_map(def: &MapDef) -> Result<OwnedFd> {
    let mut attr = sys::zeroed_attr();
    // SAFETY: `attr` is all zeroes, a valid value of each of its
    // variants; this one is only written.
    let u = unsafe { &mut attr.__bindgen_anon_1 };
    u.map_type = def.map_type;
    u.key_size = def.key_size;
    u.value_size = def.value_size;
    u.max_entries = def.max_entries;
    u.map_flags = def.map_flags;
    u.map_name = object_name(&def.name);
    // SAFETY: map creation reads no pointers.
    unsafe { sys::bpf_fd(bpf_cmd::BPF_MAP_CREATE, &mut attr) }.map_err(|e| {
        if e.raw_os_error() == Some(libc::EPERM) {
            KernelError::Permission {
                missing: "CAP_BPF".into(),
            }
        } else {
            KernelError::Map {
                map: def.name.clone(),
                op: "BPF_MAP_CREATE",
                source: e,
            }
        }
    })
}

fn prepare(def: &ProgramDef, maps: &[LoadedMap]) -> Result<Program> {
    let kind = ProgramKind::from_section(&def.section).ok_or_else(|| {
        KernelError::Object(format!(
            "program {} has section {:?}, which names no program type ferret loads",
            def.name, def.section
        ))
    })?;
    let mut insns = def.insns.clone();
    for &(at, map) in &def.map_relocations {
        // `validate` checked both indices.
        let insn = &mut insns[at];
        insn.src = BPF_PSEUDO_MAP_FD;
        insn.imm = maps[map].fd.as_raw_fd();
    }
    Ok(Program {
        name: def.name.clone(),
        kind,
        insns,
        subprograms: def.subprograms.clone(),
        attach_btf_id: None,
        attach_btf_obj: None,
        multi: false,
        fd: None,
    })
}

/// `LINUX_VERSION_CODE` of the running kernel, which kprobe programs had
/// to carry before 5.0.
fn kernel_version_code() -> u32 {
    static CODE: OnceLock<u32> = OnceLock::new();
    *CODE.get_or_init(|| {
        // SAFETY: an all-zero utsname is a valid value of this C struct.
        let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: `uts` is a live, writable utsname.
        if unsafe { libc::uname(&raw mut uts) } != 0 {
            return 0;
        }
        // SAFETY: uname NUL-terminates `release`.
        let release = unsafe { CStr::from_ptr(uts.release.as_ptr()) };
        let mut parts = release
            .to_str()
            .unwrap_or_default()
            .split(|c: char| !c.is_ascii_digit())
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let (a, b, c) = (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        );
        (a << 16) | (b.min(255) << 8) | c.min(255)
    })
}

/// The verifier's log level on retry: `BPF_LOG_LEVEL1 | BPF_LOG_STATS`.
const LOG_LEVEL: u32 = 1 | 4;
/// `BPF_LOG_STATS` alone: the verifier's messages (why it refused) and
/// statistics, without the instructions it walked.
const LOG_LEVEL_STATS: u32 = 4;
/// First and largest verifier log buffer. A log that outgrows 1 MiB is
/// that of a program the verifier walked for long: its end tells why,
/// which older kernels lose, so the statistics-only log is asked for
/// instead of a bigger one.
const LOG_MIN: usize = 10 * 1024;
const LOG_MAX: usize = 1024 * 1024;

/// What `BPF_PROG_LOAD` gets, apart from the log buffer.
struct LoadRequest<'a> {
    name: &'a str,
    prog_type: u32,
    expected_attach_type: u32,
    attach_btf_id: u32,
    attach_btf_obj_fd: u32,
    kern_version: u32,
    code: &'a [u8],
    license: &'a CStr,
    btf: Option<(&'a OwnedFd, &'a [u8], u32)>,
}

impl LoadRequest<'_> {
    /// One `BPF_PROG_LOAD` with a log of `level`; `log` empty means no
    /// log. EAGAIN (the verifier interrupted by a signal) is retried a few
    /// times. Also says whether the kernel kept the log's end when it did
    /// not fit (6.4 and later, which report the size the whole log needed).
    fn attempt_at(&self, log: &mut [u8], level: u32) -> (io::Result<OwnedFd>, bool) {
        let mut attr = sys::zeroed_attr();
        // SAFETY: `attr` is all zeroes, a valid value of each of its
        // variants; this one is only written.
        let u = unsafe { &mut attr.__bindgen_anon_3 };
        u.prog_type = self.prog_type;
        u.expected_attach_type = self.expected_attach_type;
        u.insn_cnt = (self.code.len() / 8) as u32;
        u.insns = self.code.as_ptr() as u64;
        u.license = self.license.as_ptr() as u64;
        u.kern_version = self.kern_version;
        u.prog_name = object_name(self.name);
        u.attach_btf_id = self.attach_btf_id;
        u.__bindgen_anon_1.attach_btf_obj_fd = self.attach_btf_obj_fd;
        if let Some((btf_fd, func_info, count)) = self.btf {
            u.prog_btf_fd = btf_fd.as_raw_fd() as u32;
            u.func_info_rec_size = FUNC_INFO_SIZE;
            u.func_info = func_info.as_ptr() as u64;
            u.func_info_cnt = count;
        }
        if !log.is_empty() {
            u.log_level = level;
            u.log_buf = log.as_mut_ptr() as u64;
            u.log_size = log.len() as u32;
        }
        let mut tries = 0;
        loop {
            // SAFETY: code, license, func_info and log live in `self` and
            // `log` for the call, with the lengths given next to them.
            match unsafe { sys::bpf_fd(bpf_cmd::BPF_PROG_LOAD, &mut attr) } {
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && tries < 5 => tries += 1,
                result => {
                    // SAFETY: the variant written above, read back.
                    let rotated = unsafe { attr.__bindgen_anon_3.log_true_size } != 0;
                    return (result, rotated);
                }
            }
        }
    }

    /// Loads without a log first (the verifier is faster without one); on
    /// failure loads again with a log, growing it while the kernel says it
    /// is too small and kept only its start. Returns the result and the log.
    fn run(&self) -> (io::Result<OwnedFd>, String) {
        let mut log = Vec::new();
        let mut retries = 0;
        loop {
            let (result, rotated) = self.attempt_at(&mut log, LOG_LEVEL);
            let Err(e) = &result else {
                return (result, String::new());
            };
            // A log cut short keeps its end on kernels that rotate it: the
            // verifier's reason is there, and verifying a program the
            // verifier walked for long again costs as long again.
            let cut_at_end = e.raw_os_error() == Some(libc::ENOSPC) && !rotated;
            if retries < 10 && (log.is_empty() || cut_at_end) {
                let len = (log.len() * 10).clamp(LOG_MIN, LOG_MAX);
                if len > log.len() {
                    log = vec![0; len];
                    retries += 1;
                    continue;
                }
            }
            let mut text = c_text(&log);
            if cut_at_end {
                // Before 6.4 the kernel kept the log's start, not the
                // reason at its end: ask for the reason, and add what the
                // log does not say yet.
                let mut stats = vec![0; LOG_MIN];
                if self.attempt_at(&mut stats, LOG_LEVEL_STATS).0.is_err() {
                    for line in c_text(&stats).lines() {
                        if !text.contains(line) {
                            text.push('\n');
                            text.push_str(line);
                        }
                    }
                }
            }
            return (result, text);
        }
    }
}

/// The text of a NUL-terminated log buffer.
fn c_text(log: &[u8]) -> String {
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    String::from_utf8_lossy(&log[..end]).into_owned()
}

/// Loads `blob` with `BPF_BTF_LOAD`; the kernel's complaint on failure.
fn load_btf(blob: &[u8]) -> Result<OwnedFd, String> {
    let attempt = |log: &mut [u8]| {
        let mut attr = sys::zeroed_attr();
        // SAFETY: `attr` is all zeroes, a valid value of each of its
        // variants; this one is only written.
        let u = unsafe { &mut attr.__bindgen_anon_7 };
        u.btf = blob.as_ptr() as u64;
        u.btf_size = blob.len() as u32;
        if !log.is_empty() {
            u.btf_log_buf = log.as_mut_ptr() as u64;
            u.btf_log_size = log.len() as u32;
            u.btf_log_level = 1;
        }
        // SAFETY: `blob` and `log` outlive the call, sizes as given.
        unsafe { sys::bpf_fd(bpf_cmd::BPF_BTF_LOAD, &mut attr) }
    };
    attempt(&mut []).map_err(|e| {
        let mut log = vec![0u8; LOG_MIN];
        let _ = attempt(&mut log);
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        format!("{e}: {}", String::from_utf8_lossy(&log[..end]).trim_end())
    })
}

/// `ENOTSUPP`, the kernel-internal "not supported" some bpf paths return.
const ENOTSUPP: i32 = 524;

/// Loads `p` into the kernel; returns its fd and whether it was loaded for
/// kprobe multi links.
fn load_into_kernel(p: &Program, license: &CStr) -> Result<(OwnedFd, bool)> {
    let attach_btf_id = match (p.kind.needs_btf_id(), p.attach_btf_id) {
        (true, None) => {
            return Err(KernelError::Invalid(format!(
                "program {} needs the kernel BTF id of its target before it can load",
                p.name
            )));
        }
        (_, id) => id.unwrap_or(0),
    };
    let multi = p.kind == ProgramKind::KprobeMulti && crate::probes::kprobe_multi_supported();
    let (prog_type, expected_attach_type) = p.kind.load_types(multi);
    let code: Vec<u8> = p.insns.iter().flat_map(Insn::encode).collect();
    let btf = if p.subprograms.is_empty() {
        None
    } else {
        let (blob, records) = program_func_info(&p.name, &p.subprograms);
        let fd = load_btf(&blob).map_err(|log| KernelError::Load {
            program: p.name.clone(),
            source: io::Error::other(format!("the kernel refused its BTF: {log}")),
        })?;
        Some((fd, encode_func_info(&records), records.len() as u32))
    };
    let request = LoadRequest {
        name: &p.name,
        prog_type,
        expected_attach_type,
        attach_btf_id,
        attach_btf_obj_fd: p
            .attach_btf_obj
            .as_ref()
            .map_or(0, |fd| fd.as_raw_fd() as u32),
        kern_version: if prog_type == bpf_prog_type::BPF_PROG_TYPE_KPROBE as u32 {
            kernel_version_code()
        } else {
            0
        },
        code: &code,
        license,
        btf: btf.as_ref().map(|(fd, info, n)| (fd, info.as_slice(), *n)),
    };
    let (result, log) = request.run();
    match result {
        Ok(fd) => Ok((fd, multi)),
        Err(e) => Err(load_error(p, e, log)),
    }
}

/// A failed load, worded for the user: a verifier rejection carries the
/// log; fentry/fexit refused outright means the kernel cannot do them.
fn load_error(p: &Program, e: io::Error, log: String) -> KernelError {
    let errno = e.raw_os_error();
    if matches!(p.kind, ProgramKind::Fentry | ProgramKind::Fexit)
        && matches!(errno, Some(libc::EPERM | libc::EOPNOTSUPP | ENOTSUPP))
    {
        let kind = if p.kind == ProgramKind::Fentry {
            "fentry"
        } else {
            "fexit"
        };
        return KernelError::Unavailable(format!(
            "{kind} is not available on this kernel (it refuses BPF trampolines: {e})"
        ));
    }
    if !log.trim().is_empty() {
        KernelError::Verifier {
            program: p.name.clone(),
            log,
        }
    } else if errno == Some(libc::EPERM) {
        KernelError::Permission {
            missing: "CAP_BPF and CAP_PERFMON".into(),
        }
    } else {
        KernelError::Load {
            program: p.name.clone(),
            source: e,
        }
    }
}

impl LoadedObject {
    /// Index of program `name`.
    fn index(&self, name: &str) -> Result<usize> {
        self.programs
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| KernelError::NoSuchProgram(name.into()))
    }

    /// Index of program `name`, loaded, after checking it is one of `kinds`.
    pub(crate) fn loaded(
        &mut self,
        name: &str,
        kinds: &[ProgramKind],
        expected: &'static str,
    ) -> Result<usize> {
        let i = self.index(name)?;
        if !kinds.contains(&self.programs[i].kind) {
            return Err(KernelError::WrongProgramType {
                program: name.into(),
                expected,
            });
        }
        self.ensure_loaded(i)?;
        Ok(i)
    }

    fn ensure_loaded(&mut self, i: usize) -> Result<()> {
        if self.programs[i].fd.is_none() {
            let (fd, multi) = load_into_kernel(&self.programs[i], &self.license)?;
            let p = &mut self.programs[i];
            p.fd = Some(fd);
            p.multi = multi;
        }
        Ok(())
    }

    /// Sets the kernel BTF id a `tp_btf`, `fentry` or `fexit` program
    /// attaches to (found by the caller in `/sys/kernel/btf/vmlinux`, e.g.
    /// the `btf_trace_sched_switch` typedef for `tp_btf/sched_switch`).
    /// The program loads against it, so this must come before it loads.
    pub fn set_attach_btf_id(&mut self, program: &str, btf_id: u32) -> Result<()> {
        let i = self.index(program)?;
        let p = &mut self.programs[i];
        if !p.kind.needs_btf_id() {
            return Err(KernelError::WrongProgramType {
                program: program.into(),
                expected: "tp_btf, fentry or fexit",
            });
        }
        if p.fd.is_some() && p.attach_btf_id != Some(btf_id) {
            return Err(KernelError::Invalid(format!(
                "program {program} is already loaded for another BTF id"
            )));
        }
        p.attach_btf_id = Some(btf_id);
        Ok(())
    }

    /// Makes the attach BTF id of a `tp_btf`, `fentry` or `fexit` program
    /// one of kernel module `module`'s types (its BTF, split on top of
    /// vmlinux's, numbers them after vmlinux's), as for a module's raw
    /// tracepoint. Must come before the program loads.
    pub fn set_attach_btf_module(&mut self, program: &str, module: &str) -> Result<()> {
        let i = self.index(program)?;
        if self.programs[i].fd.is_some() {
            return Err(KernelError::Invalid(format!(
                "program {program} is already loaded"
            )));
        }
        self.programs[i].attach_btf_obj = Some(kernel_btf_object(module)?);
        Ok(())
    }

    /// Detaches every attached program (their events stop) while keeping the
    /// maps and the loaded programs, so `end` probes can still run and maps
    /// can still be read.
    ///
    /// Programs on perf events (tracepoints, kprobes, uprobes, timers) are
    /// detached by closing their bpf links, which is immediate; the events
    /// themselves are disabled and kept, because closing a tracepoint's or
    /// probe's event waits for an RCU grace period (see
    /// [`Self::detach_in_background`]). Other attachments are closed here,
    /// from many threads when there are many.
    pub fn detach_all(&mut self) {
        let mut closing = Vec::new();
        for link in std::mem::take(&mut self.links) {
            match link {
                Link::Perf { link, event } => {
                    drop(link);
                    // A disabled event costs nothing while it waits.
                    let _ = sys::perf_event_disable(event.as_fd());
                    self.retired.push(event);
                }
                other => closing.push(other),
            }
        }
        close_in_parallel(closing);
    }

    /// Drops the object without waiting for the kernel's slow part of
    /// detaching. Call it right before exiting: probes stay attached until
    /// then, unless [`Self::detach_all`] came first.
    ///
    /// Closing the perf event of a tracepoint or probe waits for an RCU
    /// grace period (tens of ms) under a global kernel mutex, so closing
    /// 360 of them takes 15 s however many threads try. When any such event
    /// is left, this forks a child that holds the last references to every
    /// fd, leaves our process group (so Ctrl-C does not reach it), and exits
    /// once this process has exited (end of file on a pipe only we hold
    /// open): the kernel then waits in the child's exit, while the tracer's
    /// own exit is immediate. Probes made through tracefs must be removed by
    /// this process after their events close, so those are closed here.
    pub fn detach_in_background(mut self) -> Result<()> {
        let (probes, links): (Vec<Link>, Vec<Link>) = std::mem::take(&mut self.links)
            .into_iter()
            .partition(|l| matches!(l, Link::Probe(_)));
        close_in_parallel(probes);
        self.links = links;
        let slow = self.retired.len()
            + self
                .links
                .iter()
                .filter(|l| !matches!(l, Link::Bpf(_)))
                .count();
        if slow == 0 {
            return Ok(());
        }
        let fork_err = |e| KernelError::Syscall {
            what: "starting the background detacher".into(),
            source: e,
        };
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` is a writable array of two ints, as pipe2 requires.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(fork_err(io::Error::last_os_error()));
        }
        let [read_fd, write_fd] = fds;
        // SAFETY: the child below only makes async-signal-safe calls (prctl,
        // setsid, close, read, _exit) and never returns, as required after forking a
        // multi-threaded process.
        match unsafe { libc::fork() } {
            -1 => {
                let e = io::Error::last_os_error();
                // SAFETY: both fds came from pipe2 above and are closed once.
                unsafe {
                    libc::close(read_fd);
                    libc::close(write_fd);
                }
                Err(fork_err(e))
            }
            0 => {
                let mut byte = 0u8;
                // SAFETY: async-signal-safe calls on fds this process owns;
                // `byte` is a valid one-byte buffer; _exit does not return.
                unsafe {
                    libc::prctl(libc::PR_SET_NAME, DETACHER_NAME.as_ptr());
                    libc::setsid();
                    libc::close(0);
                    libc::close(1);
                    libc::close(2);
                    libc::close(write_fd);
                    loop {
                        let n = libc::read(read_fd, (&raw mut byte).cast(), 1);
                        if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted
                        {
                            break;
                        }
                    }
                    libc::_exit(0)
                }
            }
            _ => {
                // SAFETY: our copy of the read end, from pipe2, closed once.
                // The write end stays open until this process exits.
                unsafe { libc::close(read_fd) };
                // Our references go quickly now: the child holds the last ones.
                drop(self);
                Ok(())
            }
        }
    }

    /// Names of every program in the object.
    pub fn program_names(&self) -> Vec<String> {
        self.programs.iter().map(|p| p.name.clone()).collect()
    }

    /// Names of every map in the object.
    pub fn map_names(&self) -> Vec<String> {
        self.maps.iter().map(|m| m.def.name.clone()).collect()
    }

    /// Loads a program into the kernel without attaching it (a no-op if it
    /// already is), e.g. to surface verifier errors before attaching.
    pub fn load_program(&mut self, name: &str) -> Result<()> {
        let i = self.index(name)?;
        self.ensure_loaded(i)
    }

    /// `BPF_OBJ_GET_INFO_BY_FD` on a loaded program.
    fn info(&self, name: &str) -> Result<bpf_prog_info> {
        let p = &self.programs[self.index(name)?];
        let fd = p.loaded_fd()?;
        // SAFETY: an all-zero bpf_prog_info is valid (integers only), and
        // zero array pointers in it ask the kernel for no arrays.
        let mut info: bpf_prog_info = unsafe { std::mem::zeroed() };
        let mut attr = sys::zeroed_attr();
        attr.info.bpf_fd = fd.as_raw_fd() as u32;
        attr.info.info_len = size_of::<bpf_prog_info>() as u32;
        attr.info.info = (&raw mut info) as u64;
        // SAFETY: `info` is writable for `info_len` bytes during the call.
        unsafe { sys::bpf(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr) }.map_err(|source| {
            KernelError::Run {
                program: name.into(),
                source,
            }
        })?;
        Ok(info)
    }

    /// The kernel's id of a loaded program (as `bpftool prog` shows it).
    pub fn program_id(&self, name: &str) -> Option<u32> {
        self.info(name).ok().map(|i| i.id)
    }

    /// Total in-kernel run time (ns) and run count of a loaded program.
    /// Counted only while `kernel.bpf_stats_enabled=1`.
    pub fn run_stats(&self, program: &str) -> Result<(u64, u64)> {
        let info = self.info(program)?;
        Ok((info.run_time_ns, info.run_cnt))
    }

    /// Loads a `raw_tp/...` program (without attaching it) and runs it once
    /// with `BPF_PROG_TEST_RUN` and a zeroed context, as for `begin`/`end`.
    /// Returns the program's return value.
    pub fn run_once(&mut self, program: &str) -> Result<u32> {
        let i = self.loaded(program, &[ProgramKind::RawTracepoint], "raw_tp")?;
        let fd = self.programs[i].loaded_fd()?;
        // A raw tracepoint's context: up to 12 u64 arguments.
        let mut ctx = [0u64; 12];
        let mut attr = sys::zeroed_attr();
        attr.test.prog_fd = fd.as_raw_fd() as u32;
        attr.test.ctx_in = ctx.as_mut_ptr() as u64;
        attr.test.ctx_size_in = size_of_val(&ctx) as u32;
        // SAFETY: `ctx` is readable for ctx_size_in bytes during the call.
        unsafe { sys::bpf(bpf_cmd::BPF_PROG_TEST_RUN, &mut attr) }.map_err(|source| {
            KernelError::Run {
                program: program.into(),
                source,
            }
        })?;
        // SAFETY: reading back the integer the kernel wrote.
        Ok(unsafe { attr.test.retval })
    }

    fn find_map(&self, name: &str) -> Result<&LoadedMap> {
        self.maps
            .iter()
            .find(|m| m.def.name == name)
            .ok_or_else(|| KernelError::NoSuchMap(name.into()))
    }

    /// A reader for the ring buffer map `map_name`.
    pub fn events(&self, map_name: &str) -> Result<EventReader> {
        let map = self.find_map(map_name)?;
        let fd = map.fd.try_clone().map_err(|e| KernelError::Map {
            map: map_name.into(),
            op: "dup",
            source: e,
        })?;
        let data = MapData::from_fd(fd).map_err(|e| KernelError::Map {
            map: map_name.into(),
            op: "BPF_OBJ_GET_INFO_BY_FD",
            source: io::Error::other(e),
        })?;
        EventReader::new(map_name, data)
    }

    /// Untyped access to the map `name`.
    pub fn map(&self, name: &str) -> Result<RawMap> {
        let map = self.find_map(name)?;
        RawMap::new(&map.def, map.fd.as_fd())
    }

    /// Instruction pointers of one stack in a stack trace map (empty if the
    /// id is unknown). For many lookups, keep a [`RawMap`] and call
    /// [`RawMap::stack`] instead.
    pub fn stack(&self, map_name: &str, stack_id: u32) -> Result<Vec<u64>> {
        Ok(self.map(map_name)?.stack(stack_id)?.unwrap_or_default())
    }
}

/// The kernel's BTF object named `name` (`vmlinux`, or a loaded module's),
/// found among all BTF objects (`BPF_BTF_GET_NEXT_ID`).
pub fn kernel_btf_object(name: &str) -> Result<OwnedFd> {
    let failed = |source: io::Error| KernelError::Load {
        program: format!("(BTF of {name})"),
        source,
    };
    let mut id = 0u32;
    loop {
        let mut attr = sys::zeroed_attr();
        attr.__bindgen_anon_6.__bindgen_anon_1.start_id = id;
        // SAFETY: BPF_BTF_GET_NEXT_ID reads the start id and writes the next.
        match unsafe { sys::bpf(bpf_cmd::BPF_BTF_GET_NEXT_ID, &mut attr) } {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => break,
            Err(e) => return Err(failed(e)),
        }
        // SAFETY: the kernel wrote next_id.
        id = unsafe { attr.__bindgen_anon_6.next_id };
        let mut attr = sys::zeroed_attr();
        attr.__bindgen_anon_6.__bindgen_anon_1.btf_id = id;
        // SAFETY: BPF_BTF_GET_FD_BY_ID reads the id only.
        let fd = match unsafe { sys::bpf_fd(bpf_cmd::BPF_BTF_GET_FD_BY_ID, &mut attr) } {
            Ok(fd) => fd,
            // Freed since it was listed.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(failed(e)),
        };
        let mut object_name = [0u8; 64];
        // SAFETY: bpf_btf_info is integers only; all zero is valid.
        let mut info: aya_obj::generated::bpf_btf_info = unsafe { std::mem::zeroed() };
        info.name = object_name.as_mut_ptr() as u64;
        info.name_len = object_name.len() as u32;
        let mut attr = sys::zeroed_attr();
        attr.info.bpf_fd = fd.as_raw_fd() as u32;
        attr.info.info_len = size_of_val(&info) as u32;
        attr.info.info = (&raw mut info) as u64;
        // SAFETY: `info` and the name buffer it points to are writable for
        // the sizes given, during the call.
        unsafe { sys::bpf(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr) }.map_err(failed)?;
        let len = object_name.iter().position(|&b| b == 0).unwrap_or(0);
        if info.kernel_btf != 0 && &object_name[..len] == name.as_bytes() {
            return Ok(fd);
        }
    }
    Err(KernelError::Invalid(format!(
        "the kernel has no BTF for module {name} (is it loaded?)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_name_program_kinds() {
        for (section, kind) in [
            (
                "tracepoint/syscalls/sys_enter_read",
                ProgramKind::Tracepoint,
            ),
            ("raw_tp/begin", ProgramKind::RawTracepoint),
            ("perf_event", ProgramKind::PerfEvent),
            ("tp_btf/sched_switch", ProgramKind::TpBtf),
            ("fentry/vfs_read", ProgramKind::Fentry),
            ("fexit/vfs_read", ProgramKind::Fexit),
            ("kretprobe/vfs_read", ProgramKind::Kprobe),
            ("kprobe.multi/vfs_*", ProgramKind::KprobeMulti),
            ("uretprobe//bin/bash:readline", ProgramKind::Uprobe),
        ] {
            assert_eq!(ProgramKind::from_section(section), Some(kind), "{section}");
        }
        assert_eq!(ProgramKind::from_section("xdp"), None);
        assert_eq!(
            ProgramKind::KprobeMulti.load_types(true),
            (
                bpf_prog_type::BPF_PROG_TYPE_KPROBE as u32,
                bpf_attach_type::BPF_TRACE_KPROBE_MULTI as u32
            )
        );
        assert_eq!(ProgramKind::KprobeMulti.load_types(false).1, 0);
    }

    #[test]
    fn object_names_are_cut_and_cleaned() {
        let name = object_name("ferret_events/with-a-long-name");
        let bytes: Vec<u8> = name
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        assert_eq!(bytes, b"ferret_eventswi");
    }

    #[test]
    fn invalid_objects_are_object_errors() {
        let program = ProgramDef {
            section: "raw_tp/x".into(),
            name: "p".into(),
            insns: vec![Insn::exit()],
            ..ProgramDef::default()
        };
        let twice = ObjectDef {
            programs: vec![program.clone(), program.clone()],
            ..ObjectDef::default()
        };
        assert!(matches!(load(&twice), Err(KernelError::Object(_))));
        let unknown = ObjectDef {
            programs: vec![ProgramDef {
                section: "socket".into(),
                ..program
            }],
            ..ObjectDef::default()
        };
        let err = load(&unknown).map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(
            err,
            Err(
                "cannot load the eBPF object: program p has section \"socket\", \
                 which names no program type ferret loads"
                    .into()
            )
        );
    }
}
