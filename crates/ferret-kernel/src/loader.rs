//! Loading one eBPF object, attaching its programs, and reaching its maps.
//!
//! Everything is owned through file descriptors (programs, maps, bpf links,
//! perf events): dropping [`LoadedObject`], or the process dying, detaches
//! everything. Nothing is pinned and no tracefs probe entries are created.

use std::{io, os::fd::AsFd as _};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Map, MapData},
    programs::{
        PerfEvent, Program, ProgramError, RawTracePoint, RawTracePointRunOptions, TestRun,
        TracePoint, TracePointError,
        perf_event::{
            HardwareEvent as AyaHw, PerfEventConfig, PerfEventLink, PerfEventScope, SamplePolicy,
            SoftwareEvent as AyaSw,
        },
        raw_trace_point::RawTracePointLink,
        trace_point::TracePointLink,
    },
};

use crate::{
    cpus,
    error::{KernelError, Result},
    events::EventReader,
    maps::RawMap,
};

/// A software perf event (no hardware PMU is assumed).
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

    fn to_aya(self) -> AyaSw {
        match self {
            Self::CpuClock => AyaSw::CpuClock,
            Self::TaskClock => AyaSw::TaskClock,
            Self::PageFaults => AyaSw::PageFaults,
            Self::ContextSwitches => AyaSw::ContextSwitches,
            Self::CpuMigrations => AyaSw::CpuMigrations,
            Self::MinorFaults => AyaSw::PageFaultsMin,
            Self::MajorFaults => AyaSw::PageFaultsMaj,
            Self::AlignmentFaults => AyaSw::AlignmentFaults,
            Self::EmulationFaults => AyaSw::EmulationFaults,
            Self::Dummy => AyaSw::Dummy,
            Self::BpfOutput => AyaSw::BpfOutput,
        }
    }
}

/// A generalized hardware perf event, counted by the CPU's PMU (absent on
/// most virtual machines).
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
    /// The names (and short aliases) bpftrace accepts in `hardware:NAME:N`.
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

    fn to_aya(self) -> AyaHw {
        match self {
            Self::CpuCycles => AyaHw::CpuCycles,
            Self::Instructions => AyaHw::Instructions,
            Self::CacheReferences => AyaHw::CacheReferences,
            Self::CacheMisses => AyaHw::CacheMisses,
            Self::BranchInstructions => AyaHw::BranchInstructions,
            Self::BranchMisses => AyaHw::BranchMisses,
            Self::BusCycles => AyaHw::BusCycles,
            Self::FrontendStalls => AyaHw::StalledCyclesFrontend,
            Self::BackendStalls => AyaHw::StalledCyclesBackend,
            Self::RefCycles => AyaHw::RefCpuCycles,
        }
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
    /// `hardware:`: a hardware event on every online CPU, sampled every
    /// `period` occurrences.
    Hardware { event: HardwareEvent, period: u64 },
}

/// Process name (`comm`) of the background detacher, as `ps` shows it.
pub const DETACHER_NAME: &std::ffi::CStr = c"ferret-detach";

/// A loaded eBPF object: its maps exist, its programs are loaded lazily on
/// first attach or run.
#[derive(Debug)]
pub struct LoadedObject {
    /// Attachments, taken out of aya's programs so that dropping can close
    /// them in parallel (see [`close_links`]).
    links: Vec<OwnedLink>,
    ebpf: Ebpf,
}

/// One attachment; dropping it detaches.
#[derive(Debug)]
enum OwnedLink {
    TracePoint(#[expect(dead_code, reason = "held only to be dropped")] TracePointLink),
    RawTracePoint(#[expect(dead_code, reason = "held only to be dropped")] RawTracePointLink),
    PerfEvent(#[expect(dead_code, reason = "held only to be dropped")] PerfEventLink),
}

impl Drop for LoadedObject {
    fn drop(&mut self) {
        close_links(std::mem::take(&mut self.links));
    }
}

/// Detaches links from many threads at once.
///
/// Removing the last perf user of a tracepoint waits for an RCU grace period
/// (tens of ms) in the kernel; one by one, 700 tracepoints take close to a
/// minute to tear down. Concurrent waiters share grace periods.
fn close_links(mut links: Vec<OwnedLink>) {
    const PER_THREAD: usize = 4;
    const MAX_THREADS: usize = 256;
    if links.len() <= PER_THREAD {
        return;
    }
    let threads = links.len().div_ceil(PER_THREAD).min(MAX_THREADS);
    let chunk = links.len().div_ceil(threads);
    std::thread::scope(|scope| {
        while !links.is_empty() {
            let batch: Vec<OwnedLink> = links.drain(..chunk.min(links.len())).collect();
            // If no thread can be started the batch is dropped (closed) here.
            let _spawned = std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn_scoped(scope, move || drop(batch));
        }
    });
}

/// Loads (parses, creates maps, relocates) an ELF object held in memory.
pub fn load(elf: &[u8]) -> Result<LoadedObject> {
    // The ELF parser wants aligned data; a Vec<u8> gives no guarantee.
    let mut words = vec![0u64; elf.len().div_ceil(8)];
    for (word, chunk) in words.iter_mut().zip(elf.chunks(8)) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        *word = u64::from_ne_bytes(b);
    }
    // SAFETY: `words` owns at least `elf.len()` initialised bytes, u8 has no
    // alignment or validity requirements, and the slice dies before `words`.
    let aligned = unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), elf.len()) };
    // No kernel BTF: our objects need none, and parsing vmlinux BTF costs
    // tens of milliseconds per load.
    let ebpf = EbpfLoader::new()
        .btf(None)
        .load(aligned)
        .map_err(|e| KernelError::Object(Box::new(e)))?;
    Ok(LoadedObject {
        links: Vec::new(),
        ebpf,
    })
}

/// Turns aya's load failure into a verifier error when there is a log.
fn load_error(program: &str, e: ProgramError) -> KernelError {
    match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            if !log.trim().is_empty() {
                KernelError::Verifier {
                    program: program.into(),
                    log,
                }
            } else if io_error.raw_os_error() == Some(libc::EPERM) {
                KernelError::Permission {
                    missing: "CAP_BPF and CAP_PERFMON".into(),
                }
            } else {
                KernelError::Load {
                    program: program.into(),
                    source: Box::new(ProgramError::LoadError {
                        io_error,
                        verifier_log,
                    }),
                }
            }
        }
        source => KernelError::Load {
            program: program.into(),
            source: Box::new(source),
        },
    }
}

/// Loads `$p` (a typed aya program) unless it already is.
macro_rules! ensure_loaded {
    ($p:expr, $name:expr) => {
        if $p.fd().is_err() {
            $p.load().map_err(|e| load_error($name, e))?;
        }
    };
}

fn map_data(map: &Map) -> &MapData {
    match map {
        Map::Array(m)
        | Map::ArrayOfMaps(m)
        | Map::BloomFilter(m)
        | Map::CgroupArray(m)
        | Map::CgroupStorage(m)
        | Map::CgrpStorage(m)
        | Map::CpuMap(m)
        | Map::DevMap(m)
        | Map::DevMapHash(m)
        | Map::HashMap(m)
        | Map::HashOfMaps(m)
        | Map::InodeStorage(m)
        | Map::LpmTrie(m)
        | Map::LruHashMap(m)
        | Map::PerCpuArray(m)
        | Map::PerCpuCgroupStorage(m)
        | Map::PerCpuHashMap(m)
        | Map::PerCpuLruHashMap(m)
        | Map::PerfEventArray(m)
        | Map::ProgramArray(m)
        | Map::Queue(m)
        | Map::ReusePortSockArray(m)
        | Map::RingBuf(m)
        | Map::SockHash(m)
        | Map::SockMap(m)
        | Map::SkStorage(m)
        | Map::Stack(m)
        | Map::StackTraceMap(m)
        | Map::Unsupported(m)
        | Map::XskMap(m) => m,
    }
}

impl LoadedObject {
    fn program_mut(&mut self, name: &str) -> Result<&mut Program> {
        self.ebpf
            .program_mut(name)
            .ok_or_else(|| KernelError::NoSuchProgram(name.into()))
    }

    fn typed<'a, T>(ebpf: &'a mut Ebpf, name: &str, expected: &'static str) -> Result<&'a mut T>
    where
        &'a mut T: TryFrom<&'a mut Program>,
    {
        let program = ebpf
            .program_mut(name)
            .ok_or_else(|| KernelError::NoSuchProgram(name.into()))?;
        program
            .try_into()
            .map_err(|_| KernelError::WrongProgramType {
                program: name.into(),
                expected,
            })
    }

    /// Detaches every attached program (their events stop) while keeping the
    /// maps and the loaded programs, so `end` probes can still run and maps
    /// can still be read. Can take a while with many tracepoints (see
    /// [`Self::detach_in_background`]).
    pub fn detach_all(&mut self) {
        close_links(std::mem::take(&mut self.links));
    }

    /// Drops the object without waiting for the kernel to detach.
    ///
    /// Each detached tracepoint costs an RCU grace period under a global
    /// kernel mutex: 700 tracepoints take 30 s or more. This forks a child
    /// that holds the last references to every fd, leaves our process group
    /// (so Ctrl-C does not reach it), and exits once this process has exited
    /// (end of file on a pipe only we hold open); the kernel then detaches
    /// in the child's exit, while the tracer's own exit is immediate.
    /// Call it right before exiting: probes stay attached until then.
    pub fn detach_in_background(self) -> Result<()> {
        if self.links.len() < 16 {
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
        self.ebpf.programs().map(|(n, _)| n.to_owned()).collect()
    }

    /// Names of every map in the object.
    pub fn map_names(&self) -> Vec<String> {
        self.ebpf.maps().map(|(n, _)| n.to_owned()).collect()
    }

    /// Loads a program into the kernel without attaching it (a no-op if it
    /// already is), e.g. to surface verifier errors before attaching.
    pub fn load_program(&mut self, name: &str) -> Result<()> {
        let program = self.program_mut(name)?;
        if program.fd().is_ok() {
            return Ok(());
        }
        let result = match program {
            Program::TracePoint(p) => p.load(),
            Program::RawTracePoint(p) => p.load(),
            Program::PerfEvent(p) => p.load(),
            Program::SocketFilter(p) => p.load(),
            Program::Xdp(p) => p.load(),
            Program::SchedClassifier(p) => p.load(),
            _ => {
                return Err(KernelError::WrongProgramType {
                    program: name.into(),
                    expected: "tracepoint, raw_tp or perf_event",
                });
            }
        };
        result.map_err(|e| load_error(name, e))
    }

    /// The kernel's id of a loaded program (as `bpftool prog` shows it).
    pub fn program_id(&self, name: &str) -> Option<u32> {
        self.ebpf.program(name)?.info().ok().map(|i| i.id())
    }

    /// Attaches a `tracepoint/...` program to `category:event`. Tracefs must
    /// be mounted first ([`crate::mounts::ensure_tracefs`]).
    pub fn attach_tracepoint(&mut self, program: &str, category: &str, event: &str) -> Result<()> {
        let tp: &mut TracePoint = Self::typed(&mut self.ebpf, program, "tracepoint")?;
        ensure_loaded!(tp, program);
        let id = tp.attach(category, event).map_err(|e| match e {
            ProgramError::TracePointError(TracePointError::FileError { io_error, .. })
                if io_error.kind() == io::ErrorKind::NotFound =>
            {
                KernelError::NoSuchTracepoint {
                    category: category.into(),
                    event: event.into(),
                }
            }
            source => KernelError::Attach {
                program: program.into(),
                target: format!("tracepoint {category}:{event}"),
                source: Box::new(source),
            },
        })?;
        let link = tp.take_link(id).map_err(|source| KernelError::Attach {
            program: program.into(),
            target: format!("tracepoint {category}:{event}"),
            source: Box::new(source),
        })?;
        self.links.push(OwnedLink::TracePoint(link));
        Ok(())
    }

    /// Attaches a `raw_tp/...` program to the raw tracepoint `name`.
    pub fn attach_raw_tracepoint(&mut self, program: &str, name: &str) -> Result<()> {
        let rtp: &mut RawTracePoint = Self::typed(&mut self.ebpf, program, "raw_tp")?;
        ensure_loaded!(rtp, program);
        let attach_err = |source| KernelError::Attach {
            program: program.into(),
            target: format!("raw tracepoint {name}"),
            source: Box::new(source),
        };
        let id = rtp.attach(name).map_err(attach_err)?;
        let link = rtp.take_link(id).map_err(attach_err)?;
        self.links.push(OwnedLink::RawTracePoint(link));
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
        let clock = PerfEventConfig::Software(AyaSw::CpuClock);
        let (config, policy, cpus) = match target {
            PerfTarget::Interval { period_ns } => {
                let first = online.first().copied().ok_or_else(|| {
                    KernelError::Invalid("no online CPU to run an interval timer on".into())
                })?;
                (clock, SamplePolicy::Period(period_ns), vec![first])
            }
            PerfTarget::Profile {
                frequency_hz,
                period_ns,
            } => {
                let policy = match (frequency_hz, period_ns) {
                    (None, Some(ns)) => SamplePolicy::Period(ns),
                    (Some(hz), None) => SamplePolicy::Frequency(hz),
                    _ => {
                        return Err(KernelError::Invalid(
                            "a profile probe needs exactly one of a frequency or a period".into(),
                        ));
                    }
                };
                (clock, policy, online)
            }
            PerfTarget::Software { event, period } => (
                PerfEventConfig::Software(event.to_aya()),
                SamplePolicy::Period(period),
                online,
            ),
            PerfTarget::Hardware { event, period } => (
                PerfEventConfig::Hardware(event.to_aya()),
                SamplePolicy::Period(period),
                online,
            ),
        };
        let pid = pid.filter(|_| !matches!(target, PerfTarget::Interval { .. }));
        if matches!(policy, SamplePolicy::Period(0) | SamplePolicy::Frequency(0)) {
            return Err(KernelError::Invalid(format!(
                "perf event for {program}: the rate must not be zero"
            )));
        }
        let pe: &mut PerfEvent = Self::typed(&mut self.ebpf, program, "perf_event")?;
        ensure_loaded!(pe, program);
        for &cpu in &cpus {
            let attach_err = |source| KernelError::Attach {
                program: program.into(),
                target: format!("{target:?} on CPU {cpu}"),
                source: Box::new(source),
            };
            let scope = match pid {
                Some(pid) => PerfEventScope::OneProcess {
                    pid,
                    cpu: Some(cpu),
                },
                None => PerfEventScope::AllProcessesOneCpu { cpu },
            };
            let id = pe
                .attach(config, scope, policy, pid.is_some())
                .map_err(attach_err)?;
            let link = pe.take_link(id).map_err(attach_err)?;
            self.links.push(OwnedLink::PerfEvent(link));
        }
        Ok(cpus.len())
    }

    /// Loads a `raw_tp/...` program (without attaching it) and runs it once
    /// with `BPF_PROG_TEST_RUN` and a zeroed context, as for `begin`/`end`.
    /// Returns the program's return value.
    pub fn run_once(&mut self, program: &str) -> Result<u32> {
        let rtp: &mut RawTracePoint = Self::typed(&mut self.ebpf, program, "raw_tp")?;
        ensure_loaded!(rtp, program);
        let result = rtp
            .test_run(RawTracePointRunOptions::new())
            .map_err(|source| KernelError::Run {
                program: program.into(),
                source: Box::new(source),
            })?;
        Ok(result.return_value)
    }

    /// Total in-kernel run time (ns) and run count of a loaded program.
    /// Counted only while `kernel.bpf_stats_enabled=1`.
    pub fn run_stats(&self, program: &str) -> Result<(u64, u64)> {
        let prog = self
            .ebpf
            .program(program)
            .ok_or_else(|| KernelError::NoSuchProgram(program.into()))?;
        let info = prog.info().map_err(|source| KernelError::Run {
            program: program.into(),
            source: Box::new(source),
        })?;
        let ns = u64::try_from(info.run_time().as_nanos()).unwrap_or(u64::MAX);
        Ok((ns, info.run_count()))
    }

    fn find_map(&self, name: &str) -> Result<&MapData> {
        self.ebpf
            .map(name)
            .map(map_data)
            .ok_or_else(|| KernelError::NoSuchMap(name.into()))
    }

    /// A reader for the ring buffer map `map_name`.
    pub fn events(&self, map_name: &str) -> Result<EventReader> {
        let data = self.find_map(map_name)?;
        let dup = |e| KernelError::Map {
            map: map_name.into(),
            op: "dup",
            source: e,
        };
        let fd = data.fd().as_fd().try_clone_to_owned().map_err(dup)?;
        let owned = MapData::from_fd(fd).map_err(|e| KernelError::Map {
            map: map_name.into(),
            op: "BPF_OBJ_GET_INFO_BY_FD",
            source: io::Error::other(e),
        })?;
        EventReader::new(map_name, owned)
    }

    /// Untyped access to the map `name`.
    pub fn map(&self, name: &str) -> Result<RawMap> {
        RawMap::new(name, self.find_map(name)?)
    }

    /// Instruction pointers of one stack in a stack trace map (empty if the
    /// id is unknown). For many lookups, keep a [`RawMap`] and call
    /// [`RawMap::stack`] instead.
    pub fn stack(&self, map_name: &str, stack_id: u32) -> Result<Vec<u64>> {
        Ok(self.map(map_name)?.stack(stack_id)?.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_event_names() {
        assert_eq!(
            SoftwareEvent::from_name("faults"),
            Some(SoftwareEvent::PageFaults)
        );
        assert_eq!(
            SoftwareEvent::from_name("cs"),
            Some(SoftwareEvent::ContextSwitches)
        );
        assert_eq!(SoftwareEvent::from_name("cycles"), None);
    }

    #[test]
    fn garbage_is_an_object_error() {
        assert!(matches!(load(b"not an elf"), Err(KernelError::Object(_))));
    }
}
