//! Attaching loaded programs to tracepoints, raw and BTF tracepoints,
//! fentry/fexit and perf events. Kprobes and uprobes are in
//! [`crate::probes`].
//!
//! Every attachment is file descriptors held in the object's links: a perf
//! event and the bpf link running the program on it (or, on kernels before
//! 5.15, a perf event running it through `PERF_EVENT_IOC_SET_BPF`), or a
//! bpf link alone (`BPF_RAW_TRACEPOINT_OPEN`). Closing them detaches.

use std::{
    ffi::CString,
    io,
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, OwnedFd},
    path::PathBuf,
    sync::{
        OnceLock,
        atomic::{AtomicBool, Ordering},
    },
};

use aya_obj::generated::{bpf_attach_type, perf_hw_id, perf_sw_ids, perf_type_id};

use crate::{
    cpus,
    error::{KernelError, Result},
    loader::{Link, LoadedObject, ProgramKind},
    mounts, sys, tracefs,
};

/// A software perf event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoftwareEvent {
    CpuClock,
    TaskClock,
    PageFaults,
    ContextSwitches,
    CpuMigrations,
    MinorFaults,
    MajorFaults,
    AlignmentFaults,
    EmulationFaults,
    Dummy,
    BpfOutput,
}

impl SoftwareEvent {
    /// The names (and short aliases) bpftrace accepts in `software:NAME:N`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "cpu-clock" | "cpu" => Self::CpuClock,
            "task-clock" => Self::TaskClock,
            "page-faults" | "faults" => Self::PageFaults,
            "context-switches" | "cs" => Self::ContextSwitches,
            "cpu-migrations" => Self::CpuMigrations,
            "minor-faults" => Self::MinorFaults,
            "major-faults" => Self::MajorFaults,
            "alignment-faults" => Self::AlignmentFaults,
            "emulation-faults" => Self::EmulationFaults,
            "dummy" => Self::Dummy,
            "bpf-output" => Self::BpfOutput,
            _ => return None,
        })
    }

    fn config(self) -> u64 {
        use perf_sw_ids as sw;
        (match self {
            Self::CpuClock => sw::PERF_COUNT_SW_CPU_CLOCK,
            Self::TaskClock => sw::PERF_COUNT_SW_TASK_CLOCK,
            Self::PageFaults => sw::PERF_COUNT_SW_PAGE_FAULTS,
            Self::ContextSwitches => sw::PERF_COUNT_SW_CONTEXT_SWITCHES,
            Self::CpuMigrations => sw::PERF_COUNT_SW_CPU_MIGRATIONS,
            Self::MinorFaults => sw::PERF_COUNT_SW_PAGE_FAULTS_MIN,
            Self::MajorFaults => sw::PERF_COUNT_SW_PAGE_FAULTS_MAJ,
            Self::AlignmentFaults => sw::PERF_COUNT_SW_ALIGNMENT_FAULTS,
            Self::EmulationFaults => sw::PERF_COUNT_SW_EMULATION_FAULTS,
            Self::Dummy => sw::PERF_COUNT_SW_DUMMY,
            Self::BpfOutput => sw::PERF_COUNT_SW_BPF_OUTPUT,
        }) as u64
    }
}

/// A hardware perf event (a CPU counter; needs a hardware PMU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HardwareEvent {
    CpuCycles,
    Instructions,
    CacheReferences,
    CacheMisses,
    BranchInstructions,
    BranchMisses,
    BusCycles,
    FrontendStalls,
    BackendStalls,
    RefCycles,
}

impl HardwareEvent {
    /// The names (and aliases) bpftrace accepts in `hardware:NAME:N`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "cpu-cycles" | "cycles" => Self::CpuCycles,
            "instructions" => Self::Instructions,
            "cache-references" => Self::CacheReferences,
            "cache-misses" => Self::CacheMisses,
            "branch-instructions" | "branches" => Self::BranchInstructions,
            "branch-misses" => Self::BranchMisses,
            "bus-cycles" => Self::BusCycles,
            "frontend-stalls" => Self::FrontendStalls,
            "backend-stalls" => Self::BackendStalls,
            "ref-cycles" => Self::RefCycles,
            _ => return None,
        })
    }

    fn config(self) -> u64 {
        use perf_hw_id as hw;
        (match self {
            Self::CpuCycles => hw::PERF_COUNT_HW_CPU_CYCLES,
            Self::Instructions => hw::PERF_COUNT_HW_INSTRUCTIONS,
            Self::CacheReferences => hw::PERF_COUNT_HW_CACHE_REFERENCES,
            Self::CacheMisses => hw::PERF_COUNT_HW_CACHE_MISSES,
            Self::BranchInstructions => hw::PERF_COUNT_HW_BRANCH_INSTRUCTIONS,
            Self::BranchMisses => hw::PERF_COUNT_HW_BRANCH_MISSES,
            Self::BusCycles => hw::PERF_COUNT_HW_BUS_CYCLES,
            Self::FrontendStalls => hw::PERF_COUNT_HW_STALLED_CYCLES_FRONTEND,
            Self::BackendStalls => hw::PERF_COUNT_HW_STALLED_CYCLES_BACKEND,
            Self::RefCycles => hw::PERF_COUNT_HW_REF_CPU_CYCLES,
        }) as u64
    }
}

/// Where a `perf_event` program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerfTarget {
    /// `interval:`: cpu-clock on the first online CPU only, so the program
    /// fires once per period system-wide.
    Interval { period_ns: u64 },
    /// `profile:`: cpu-clock on every online CPU. Give exactly one of the two.
    Profile {
        frequency_hz: Option<u64>,
        period_ns: Option<u64>,
    },
    /// `software:`: a software event on every online CPU, sampled every
    /// `period` occurrences.
    Software { event: SoftwareEvent, period: u64 },
    /// `hardware:`: a CPU counter on every online CPU, sampled every
    /// `period` occurrences.
    Hardware { event: HardwareEvent, period: u64 },
}

/// How often a perf event fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sampling {
    Period(u64),
    Frequency(u64),
}

/// tracefs, mounted if need be; looked up once per process.
fn tracefs_path() -> Result<PathBuf> {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    if let Some(path) = PATH.get() {
        return Ok(path.clone());
    }
    let path = mounts::ensure_tracefs()?.path;
    Ok(PATH.get_or_init(|| path).clone())
}

/// Set once `BPF_LINK_CREATE` turned out not to take perf events (kernels
/// before 5.15), so that `PERF_EVENT_IOC_SET_BPF` is used from then on.
static NO_PERF_LINKS: AtomicBool = AtomicBool::new(false);

/// Opens a perf event, makes it run program `prog`, and enables it.
///
/// The program is attached through a bpf link where the kernel has them:
/// closing the link detaches the program at once, while closing a
/// tracepoint's or probe's perf event waits for an RCU grace period (tens
/// of ms), which [`LoadedObject::detach_all`] can then leave for later.
pub(crate) fn perf_event_with_program(
    attr: &mut sys::perf_event_attr,
    pid: i32,
    cpu: i32,
    prog: BorrowedFd<'_>,
) -> io::Result<Link> {
    attr.set_disabled(1);
    let event = sys::perf_event_open(attr, pid, cpu)?;
    if !NO_PERF_LINKS.load(Ordering::Relaxed) {
        let mut link_attr = sys::zeroed_attr();
        link_attr.link_create.__bindgen_anon_1.prog_fd = prog.as_raw_fd() as u32;
        link_attr.link_create.__bindgen_anon_2.target_fd = event.as_raw_fd() as u32;
        link_attr.link_create.attach_type = bpf_attach_type::BPF_PERF_EVENT as u32;
        // SAFETY: this command reads no pointers.
        match unsafe { sys::bpf_fd(sys::bpf_cmd::BPF_LINK_CREATE, &mut link_attr) } {
            Ok(link) => {
                sys::perf_event_enable(event.as_fd())?;
                return Ok(Link::Perf { link, event });
            }
            Err(e) if e.raw_os_error() != Some(libc::EINVAL) => return Err(e),
            Err(_) => {}
        }
    }
    sys::perf_event_set_bpf(event.as_fd(), prog)?;
    NO_PERF_LINKS.store(true, Ordering::Relaxed);
    sys::perf_event_enable(event.as_fd())?;
    Ok(Link::PerfIoctl(event))
}

impl LoadedObject {
    /// Attaches a `tracepoint/...` program to `category:event`, mounting
    /// tracefs first if it is not.
    pub fn attach_tracepoint(&mut self, program: &str, category: &str, event: &str) -> Result<()> {
        let i = self.loaded(program, &[ProgramKind::Tracepoint], "tracepoint")?;
        let id = tracefs::event_id(&tracefs_path()?, category, event)?;
        let mut attr = sys::zeroed_perf_attr();
        attr.type_ = perf_type_id::PERF_TYPE_TRACEPOINT as u32;
        attr.config = id;
        attr.__bindgen_anon_2.wakeup_events = 1;
        let link = perf_event_with_program(&mut attr, -1, 0, self.programs[i].loaded_fd()?)
            .map_err(|source| KernelError::Attach {
                program: program.into(),
                target: format!("tracepoint {category}:{event}"),
                source,
            })?;
        self.links.push(link);
        Ok(())
    }

    /// Attaches a `raw_tp/...` program to the raw tracepoint `name`.
    pub fn attach_raw_tracepoint(&mut self, program: &str, name: &str) -> Result<()> {
        let i = self.loaded(program, &[ProgramKind::RawTracepoint], "raw_tp")?;
        let c_name = CString::new(name).map_err(|_| {
            KernelError::Invalid(format!("raw tracepoint name {name:?} contains a NUL byte"))
        })?;
        let fd = self
            .raw_tracepoint_open(i, Some(&c_name))
            .map_err(|source| KernelError::Attach {
                program: program.into(),
                target: format!("raw tracepoint {name}"),
                source,
            })?;
        self.links.push(Link::Bpf(fd));
        Ok(())
    }

    /// `BPF_RAW_TRACEPOINT_OPEN`: a raw tracepoint by name, or (no name)
    /// what a tracing program was loaded against.
    fn raw_tracepoint_open(&self, i: usize, name: Option<&CString>) -> io::Result<OwnedFd> {
        let prog = self.programs[i]
            .loaded_fd()
            .map_err(|e| io::Error::other(e.to_string()))?;
        let mut attr = sys::zeroed_attr();
        attr.raw_tracepoint.name = name.map_or(0, |n| n.as_ptr() as u64);
        attr.raw_tracepoint.prog_fd = prog.as_raw_fd() as u32;
        // SAFETY: the name (if any) is NUL-terminated and outlives the call.
        unsafe { sys::bpf_fd(sys::bpf_cmd::BPF_RAW_TRACEPOINT_OPEN, &mut attr) }
    }

    /// Loads a `tp_btf/...` program against the kernel BTF id `btf_id` of
    /// its tracepoint's `btf_trace_<name>` typedef (unless it is loaded
    /// already) and attaches it.
    pub fn attach_tp_btf(&mut self, program: &str, btf_id: u32) -> Result<()> {
        self.attach_tracing(program, btf_id, &[ProgramKind::TpBtf], "tp_btf")
    }

    /// Loads an `fentry/...` or `fexit/...` program against the kernel BTF
    /// id `btf_id` of its function (unless it is loaded already) and
    /// attaches it. Kernels without BPF trampolines refuse the load:
    /// [`KernelError::Unavailable`].
    pub fn attach_fentry(&mut self, program: &str, btf_id: u32) -> Result<()> {
        self.attach_tracing(
            program,
            btf_id,
            &[ProgramKind::Fentry, ProgramKind::Fexit],
            "fentry or fexit",
        )
    }

    fn attach_tracing(
        &mut self,
        program: &str,
        btf_id: u32,
        kinds: &[ProgramKind],
        expected: &'static str,
    ) -> Result<()> {
        if let Some(p) = self.programs.iter().find(|p| p.name == program)
            && kinds.contains(&p.kind)
        {
            self.set_attach_btf_id(program, btf_id)?;
        }
        let i = self.loaded(program, kinds, expected)?;
        let fd = self
            .raw_tracepoint_open(i, None)
            .map_err(|source| KernelError::Attach {
                program: program.into(),
                target: format!("BTF id {btf_id}"),
                source,
            })?;
        self.links.push(Link::Bpf(fd));
        Ok(())
    }

    /// Attaches a `perf_event` program; returns how many perf events (one per
    /// CPU covered) were opened.
    pub fn attach_perf_event(&mut self, program: &str, target: PerfTarget) -> Result<usize> {
        self.attach_perf_event_for(program, target, None)
    }

    /// [`Self::attach_perf_event`], counting only the events of process
    /// `pid` (and the children it forks later) when given, as `-p`/`-c` do.
    /// `interval:` ignores `pid`: it is a timer, not a process's event.
    pub fn attach_perf_event_for(
        &mut self,
        program: &str,
        target: PerfTarget,
        pid: Option<u32>,
    ) -> Result<usize> {
        let online = cpus::online()?;
        let software = perf_type_id::PERF_TYPE_SOFTWARE as u32;
        let clock = (software, SoftwareEvent::CpuClock.config());
        let (config, sampling, cpus) = match target {
            PerfTarget::Interval { period_ns } => {
                let first = online.first().copied().ok_or_else(|| {
                    KernelError::Invalid("no online CPU to run an interval timer on".into())
                })?;
                (clock, Sampling::Period(period_ns), vec![first])
            }
            PerfTarget::Profile {
                frequency_hz,
                period_ns,
            } => {
                let sampling = match (frequency_hz, period_ns) {
                    (None, Some(ns)) => Sampling::Period(ns),
                    (Some(hz), None) => Sampling::Frequency(hz),
                    _ => {
                        return Err(KernelError::Invalid(
                            "a profile probe needs exactly one of a frequency or a period".into(),
                        ));
                    }
                };
                (clock, sampling, online)
            }
            PerfTarget::Software { event, period } => {
                ((software, event.config()), Sampling::Period(period), online)
            }
            PerfTarget::Hardware { event, period } => (
                (perf_type_id::PERF_TYPE_HARDWARE as u32, event.config()),
                Sampling::Period(period),
                online,
            ),
        };
        if matches!(sampling, Sampling::Period(0) | Sampling::Frequency(0)) {
            return Err(KernelError::Invalid(format!(
                "perf event for {program}: the rate must not be zero"
            )));
        }
        let pid = match pid.filter(|_| !matches!(target, PerfTarget::Interval { .. })) {
            Some(pid) => Some(
                i32::try_from(pid).map_err(|_| KernelError::Invalid(format!("bad pid {pid}")))?,
            ),
            None => None,
        };
        let i = self.loaded(program, &[ProgramKind::PerfEvent], "perf_event")?;
        let mut links = Vec::with_capacity(cpus.len());
        for &cpu in &cpus {
            let mut attr = sys::zeroed_perf_attr();
            attr.type_ = config.0;
            attr.config = config.1;
            match sampling {
                Sampling::Period(p) => attr.__bindgen_anon_1.sample_period = p,
                Sampling::Frequency(hz) => {
                    attr.set_freq(1);
                    attr.__bindgen_anon_1.sample_freq = hz;
                }
            }
            attr.__bindgen_anon_2.wakeup_events = 1;
            // A process's events follow it into the children it forks.
            attr.set_inherit(u64::from(pid.is_some()));
            let link = perf_event_with_program(
                &mut attr,
                pid.unwrap_or(-1),
                cpu as i32,
                self.programs[i].loaded_fd()?,
            )
            .map_err(|source| KernelError::Attach {
                program: program.into(),
                target: format!("{target:?} on CPU {cpu}"),
                source,
            })?;
            links.push(link);
        }
        self.links.extend(links);
        Ok(cpus.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names() {
        assert_eq!(
            SoftwareEvent::from_name("faults"),
            Some(SoftwareEvent::PageFaults)
        );
        assert_eq!(
            SoftwareEvent::from_name("cs"),
            Some(SoftwareEvent::ContextSwitches)
        );
        assert_eq!(SoftwareEvent::from_name("cycles"), None);
        assert_eq!(
            HardwareEvent::from_name("cycles"),
            Some(HardwareEvent::CpuCycles)
        );
        assert_eq!(
            HardwareEvent::from_name("branches"),
            Some(HardwareEvent::BranchInstructions)
        );
        assert_eq!(HardwareEvent::RefCycles.config(), 9);
        assert_eq!(SoftwareEvent::BpfOutput.config(), 10);
        assert_eq!(HardwareEvent::from_name("faults"), None);
    }
}
