//! What compilation produces: the object to load, and the description the
//! runtime needs to attach its programs and decode what they emit.

use crate::types::Ty;

/// A compiled script.
#[derive(Debug, Clone)]
pub struct CompiledProgram {
    /// The eBPF object: maps, and programs with their map relocations.
    pub object: ferret_bpf::object::ObjectDef,
    /// One entry per kernel program, in the order probes appear.
    pub programs: Vec<ProgramInfo>,
    /// The user's maps (`@name`), indexed by `MapId`.
    pub maps: Vec<MapInfo>,
    /// `printf` formats, indexed by the id in a printf event.
    pub printfs: Vec<PrintfInfo>,
    /// Values sent by `print(expr)`, indexed by the id in the event.
    pub print_values: Vec<Ty>,
    /// Runtime errors a program may report (division by zero, an array
    /// index out of bounds), indexed by the id in a `RuntimeError` event.
    pub runtime_errors: Vec<RuntimeErrorInfo>,
    /// `strftime`/`time` formats, indexed by [`Ty::Timestamp`]'s `format`
    /// and by the id in a `Time` event.
    pub time_formats: Vec<Vec<u8>>,
    /// `join()` separators, indexed by the id in a `Join` event.
    pub join_separators: Vec<Vec<u8>>,
    /// Name of the ring buffer map carrying events to user space.
    pub events_map: String,
    /// Name of the per-CPU array counting events the ring buffer had no
    /// room for.
    pub lost_map: String,
    /// Name of the stack trace map, when any program takes stacks.
    pub stack_map: Option<String>,
    /// Name of the per-CPU array counting, per user map, the updates
    /// refused because the map was full (index: `MapId`).
    pub full_map: Option<String>,
    /// Number of user-visible attach points (`Attached N probes`).
    pub attach_count: usize,
    /// Entries the runtime writes into maps after loading the object and
    /// before attaching anything: (map symbol, key, value).
    pub map_entries: Vec<(String, Vec<u8>, Vec<u8>)>,
    /// Warnings about the script (skipped probes, unused declarations).
    pub warnings: Vec<ferret_syntax::Diagnostic>,
}

/// One kernel program and where it attaches.
#[derive(Debug, Clone)]
pub struct ProgramInfo {
    /// Program name in the object (what the loader looks it up by).
    pub name: String,
    /// The probe as the user knows it (`tracepoint:syscalls:sys_enter_openat`).
    pub probe: String,
    /// The attach points it came from, for errors from the kernel.
    pub span: ferret_syntax::Span,
    pub attach: Attach,
    /// Instructions, for `--dump`.
    pub insns: Vec<ferret_bpf::Insn>,
    /// Map relocations: (instruction index, map symbol name), for `--dump`.
    pub map_loads: Vec<(usize, String)>,
    /// Where each callback (a loop body run by `bpf_loop` or
    /// `bpf_for_each_map_elem`) starts, for `-d`.
    pub subprograms: Vec<usize>,
    /// The instructions of each `while` loop, and the loop in the source:
    /// the verifier's complaints about a loop point at it.
    pub loops: Vec<(std::ops::Range<usize>, ferret_syntax::Span)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attach {
    /// Run once at start, in order.
    Begin,
    /// Run once at exit, in order.
    End,
    Tracepoint {
        category: String,
        event: String,
    },
    /// `tracepoints` of the `syscalls:sys_enter_*` (`sys_exit_*` when
    /// `exit`) tracepoints served by one program on the raw tracepoint
    /// `sys_enter` (`sys_exit`). It finds its syscall in a table filled from
    /// [`CompiledProgram::map_entries`] and returns at once for the others.
    RawSyscalls {
        exit: bool,
        tracepoints: usize,
    },
    /// A raw tracepoint (`rawtracepoint:[module:]event`): its arguments are
    /// the context's u64s, typed by the kernel's BTF. With the BTF id of its
    /// `btf_trace_EVENT` typedef it is a `tp_btf` program, as in bpftrace;
    /// without BTF, a plain `raw_tp` one.
    RawTracepoint {
        module: String,
        event: String,
        btf_id: Option<u32>,
    },
    /// Fires every `period_ns` on one CPU.
    Interval {
        period_ns: u64,
    },
    /// Fires on every CPU at `frequency_hz`, or every `period_ns`.
    Profile {
        frequency_hz: Option<u64>,
        period_ns: Option<u64>,
    },
    /// `software:EVENT:N`: every `period` occurrences of a software perf
    /// event (`event` is its full name, `page-faults` for `faults`), on
    /// every CPU.
    Software {
        event: String,
        period: u64,
    },
    /// `hardware:EVENT:N`: likewise for a hardware (PMU) event.
    Hardware {
        event: String,
        period: u64,
    },
    /// `kprobe:`/`kretprobe:` on kernel function `functions[0]` (`module`'s
    /// when one is named), `offset` bytes in. Several functions (what a
    /// wildcard matched) share one program, attached to all of them through
    /// one kprobe_multi link where the kernel has them.
    Kprobe {
        functions: Vec<String>,
        module: Option<String>,
        offset: u64,
        retprobe: bool,
    },
    /// `fentry:`/`fexit:` (`exit`) on kernel function `function` of `module`
    /// (`vmlinux` for the kernel image's own), through a BPF trampoline.
    /// The program loads against the function's BTF id (in the module's
    /// BTF for a module) and gets its arguments, typed, as u64s; an fexit
    /// program gets the return value after them.
    Fentry {
        module: String,
        function: String,
        btf_id: u32,
        exit: bool,
    },
    /// `uprobe:`/`uretprobe:`: `offset` bytes into the file `binary` (with
    /// `-p`, in that process only). `function` is the function the probe is
    /// in, the value of `func`, a string of `function_cap` bytes in every
    /// program of one probe block (so map keys hold the longest).
    Uprobe {
        binary: String,
        offset: u64,
        retprobe: bool,
        function: String,
        function_cap: u32,
    },
    /// `usdt:`: a uprobe on one site of a USDT probe (`site` counts the
    /// probe's sites from 0; all of them are one probe to the user), whose
    /// semaphore, if it has one, is at file offset `semaphore`; `args` are
    /// the note's argument specs (`-4@%eax 8@-8(%rbp)`).
    Usdt {
        binary: String,
        offset: u64,
        semaphore: Option<u64>,
        args: String,
        site: u32,
    },
}

impl Attach {
    /// Runs as a `perf_event` program (in interrupt context for timers and
    /// hardware counters).
    pub fn is_perf_event(&self) -> bool {
        matches!(
            self,
            Attach::Interval { .. }
                | Attach::Profile { .. }
                | Attach::Software { .. }
                | Attach::Hardware { .. }
        )
    }

    /// Whether `-p PID` filters this probe with a check in the program
    /// (`pid == PID`), as bpftrace does. Perf events are opened for the
    /// process itself instead; begin/end and interval are not filtered.
    pub fn filters_pid_in_program(&self) -> bool {
        match self {
            Attach::Tracepoint { .. }
            | Attach::RawSyscalls { .. }
            | Attach::RawTracepoint { .. }
            | Attach::Kprobe { .. }
            | Attach::Fentry { .. } => true,
            // Opened for the process.
            Attach::Uprobe { .. } | Attach::Usdt { .. } => false,
            Attach::Begin
            | Attach::End
            | Attach::Interval { .. }
            | Attach::Profile { .. }
            | Attach::Software { .. }
            | Attach::Hardware { .. } => false,
        }
    }

    /// The raw tracepoint a [`Attach::RawSyscalls`] program attaches to.
    pub fn raw_syscall_tracepoint(exit: bool) -> &'static str {
        if exit { "sys_exit" } else { "sys_enter" }
    }
}

impl Attach {
    /// A user-space probe (`uprobe`, `uretprobe`, `usdt`): its program gets
    /// the user registers, and its pointers are user addresses.
    pub fn is_user_probe(&self) -> bool {
        matches!(self, Attach::Uprobe { .. } | Attach::Usdt { .. })
    }

    /// Counts in `Attached N probes`: every concrete probe except the
    /// second and later sites of one USDT probe.
    pub fn counts_as_probe(&self) -> bool {
        !matches!(self, Attach::Usdt { site, .. } if *site > 0)
    }

    /// How many probes it is in `Attached N probes`: a kprobe program
    /// counts each function it attaches to.
    pub fn probe_count(&self) -> usize {
        match self {
            Attach::Kprobe { functions, .. } => functions.len(),
            _ => usize::from(self.counts_as_probe()),
        }
    }

    /// The kprobe `kind` (`kprobe` or `kretprobe`) of a kprobe program.
    pub fn kprobe_kind(&self) -> Option<&'static str> {
        match self {
            Attach::Kprobe {
                retprobe: false, ..
            } => Some("kprobe"),
            Attach::Kprobe { retprobe: true, .. } => Some("kretprobe"),
            _ => None,
        }
    }
}

/// The aggregation (or plain value) a map holds, which decides its kernel
/// layout and how it prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapKind {
    /// `@m = expr`: a plain value of the given type.
    Plain(Ty),
    Count,
    Sum {
        signed: bool,
    },
    Min,
    Max,
    Avg,
    Stats,
    /// `hist(n, k)`: the key has an extra trailing u64 bucket index.
    Hist {
        k: u8,
    },
    /// `lhist(n, min, max, step)`: likewise.
    Lhist {
        min: i64,
        max: i64,
        step: i64,
    },
}

impl MapKind {
    /// Per-CPU maps are summed (or min/maxed) across CPUs when read.
    pub fn is_percpu(&self) -> bool {
        !matches!(self, MapKind::Plain(_))
    }

    /// Bytes of one (per-CPU) value.
    pub fn value_size(&self) -> u32 {
        match self {
            MapKind::Plain(ty) => crate::types::align8(ty.size()).max(8),
            MapKind::Count | MapKind::Sum { .. } | MapKind::Hist { .. } | MapKind::Lhist { .. } => {
                8
            }
            // (value, is_set) and (total, count)
            MapKind::Min | MapKind::Max | MapKind::Avg | MapKind::Stats => 16,
        }
    }

    /// Keyless aggregations live in a one-slot per-CPU array: its value
    /// always exists, so an update is one lookup with no insert path.
    pub fn uses_array(&self, key: Option<&Ty>) -> bool {
        key.is_none() && self.is_percpu() && !self.is_histogram()
    }

    /// Histograms append a u64 bucket index to the user's key.
    pub fn is_histogram(&self) -> bool {
        matches!(self, MapKind::Hist { .. } | MapKind::Lhist { .. })
    }
}

/// A user map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapInfo {
    /// `@name` as written, with the sigil.
    pub name: String,
    /// Symbol name in the object.
    pub symbol: String,
    /// Key type: `None` for a scalar map (the kernel key is a u64 zero), a
    /// tuple for multi-key maps.
    pub key: Option<Ty>,
    pub kind: MapKind,
    /// Bytes of the kernel key (user key plus a histogram's bucket index;
    /// 4 for the u32 index of a one-slot array).
    pub key_size: u32,
    /// Stored in a one-slot per-CPU array ([`MapKind::uses_array`]): an
    /// all-zero slot means the map was never updated.
    pub array: bool,
    /// Where the map is first used, for warnings about it at run time.
    pub span: ferret_syntax::Span,
    /// The most keys the kernel map holds.
    pub max_entries: u32,
    /// Whether a `let @m = kind(N);` declaration sized it.
    pub declared: bool,
}

/// One `printf` call site (or `system`, `cat`, `errorf`, `warnf`, which
/// format the same way): its format and the layout of its arguments in the
/// event after the 8-byte header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintfInfo {
    pub format: Vec<u8>,
    /// (offset from the start of the event, type) per argument.
    pub args: Vec<(u32, Ty)>,
    /// The call, for `errorf`/`warnf` messages.
    pub span: ferret_syntax::Span,
}

/// A runtime error a program can report: where, and what to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeErrorInfo {
    pub span: ferret_syntax::Span,
    pub message: String,
}

/// Format-string events that share printf's layout.
pub const FORMATTED_EVENTS: [EventKind; 5] = [
    EventKind::Printf,
    EventKind::System,
    EventKind::Cat,
    EventKind::Errorf,
    EventKind::Warnf,
];

/// `join()`'s limits, as bpftrace's: up to 16 strings of up to 1024 bytes.
pub const JOIN_ARGS: u32 = 16;
pub const JOIN_ARG_SIZE: u32 = 1024;

/// The first 8 bytes of every ring buffer event: kind in the low 32 bits,
/// an id (printf, map, value) in the high 32 bits. Arguments follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum EventKind {
    Printf = 1,
    /// Payload: the i64 exit code.
    Exit = 2,
    PrintMap = 3,
    ClearMap = 4,
    ZeroMap = 5,
    /// Payload: the value (`print(expr)`).
    PrintValue = 6,
    /// No payload; the id names a [`RuntimeErrorInfo`].
    RuntimeError = 7,
    /// `system(fmt, ...)`: printf's layout; the text is a command to run.
    System = 8,
    /// `cat(fmt, ...)`: printf's layout; the text is a file to print.
    Cat = 9,
    /// `errorf(fmt, ...)`: printf's layout, printed as an error.
    Errorf = 10,
    /// `warnf(fmt, ...)`: printf's layout, printed as a warning.
    Warnf = 11,
    /// `time(fmt)`: no payload; the id names a time format.
    Time = 12,
    /// `join(argv, sep)`: [`JOIN_ARGS`] strings of [`JOIN_ARG_SIZE`]
    /// bytes; the id names a separator.
    Join = 13,
}

impl EventKind {
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::Printf,
            2 => Self::Exit,
            3 => Self::PrintMap,
            4 => Self::ClearMap,
            5 => Self::ZeroMap,
            6 => Self::PrintValue,
            7 => Self::RuntimeError,
            8 => Self::System,
            9 => Self::Cat,
            10 => Self::Errorf,
            11 => Self::Warnf,
            12 => Self::Time,
            13 => Self::Join,
            _ => return None,
        })
    }
}

/// Size of the event header.
pub const EVENT_HEADER: u32 = 8;
/// Frames kept per kernel stack in the stack map.
pub const MAX_STACK_DEPTH: u32 = 127;
