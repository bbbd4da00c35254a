//! Lowering a checked program to eBPF, one kernel program per concrete
//! probe. Types are discovered in a first run over the whole script (map
//! types may be set in one probe and read in another) and the code is
//! emitted in a second run once every map's type is known.

mod btf_args;
mod calls;
mod decls;
mod expr;
mod funcs;
mod kfuncs;
mod kmem;
mod kprobe;
mod loops;
mod maps;
mod stmt;
mod syscalls;
mod system;
mod user;
mod value;
mod vars;

use std::collections::HashMap;

use ferret_bpf::object::{MapDef, ObjectDef, ProgramDef};
use ferret_bpf::{Insn, JmpOp, Reg, Size};
use ferret_syntax::ast::{self, Program};
use ferret_syntax::{Diagnostic, Span};

use crate::emit::{Assembled, Emitter, Label};
use crate::probes::ResolvedProbe;
use crate::program::{Attach, CompiledProgram, MapInfo, MapKind, PrintfInfo, ProgramInfo};
use crate::target::Target;
use crate::types::Ty;
use syscalls::{SyscallGroup, Unit};

pub(crate) use value::{Place, TVal, Val};

/// bpftrace's config variables (see [`crate::config`]) and the program's
/// parameters: what changes code generation, and what the runtime needs to
/// print as bpftrace would.
#[derive(Debug, Clone)]
pub struct Options {
    /// bpftrace's `max_strlen`: strings read with `str()` keep at most this
    /// many bytes (one less from 1024 on, where the NUL counts).
    pub max_strlen: u32,
    /// `max_entries` of every user map that has no declaration.
    pub max_map_keys: u32,
    /// Ring buffer size in pages (a power of two).
    pub ringbuf_pages: u32,
    /// Words after the program, the values of `$1`, `$2`, ...
    pub positional: Vec<String>,
    /// `-p PID`: probes that cannot be opened for one process (tracepoints)
    /// return early unless `pid` is this.
    pub filter_pid: Option<u32>,
    /// `-c CMD`: the child's pid, the value of `cpid`.
    pub child_pid: Option<u32>,
    /// `--unsafe`: functions with side effects outside the trace are allowed.
    pub allow_unsafe: bool,
    /// `--name=value` or `--name` after `--`, read by `getopt("name", ...)`:
    /// each as `name=value` or `name`.
    pub named_params: Vec<String>,
    pub print_maps_on_exit: bool,
    pub missing_probes: crate::config::MissingProbes,
    pub stack_mode: crate::config::StackMode,
    /// Appended when printing a string that filled `max_strlen`.
    pub str_trunc_trailer: String,
    /// The license the programs declare to the kernel.
    pub license: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_strlen: 1024,
            max_map_keys: 4096,
            ringbuf_pages: 64,
            positional: Vec::new(),
            filter_pid: None,
            child_pid: None,
            allow_unsafe: false,
            named_params: Vec::new(),
            print_maps_on_exit: true,
            missing_probes: crate::config::MissingProbes::Error,
            stack_mode: crate::config::StackMode::Bpftrace,
            str_trunc_trailer: "..".into(),
            license: "GPL".into(),
        }
    }
}

impl Options {
    /// Bytes `str()` reads, NUL included: bpftrace keeps `max_strlen`
    /// characters below 1024 and `max_strlen - 1` from there on.
    pub fn str_read_len(&self) -> u32 {
        if self.max_strlen < 1024 {
            self.max_strlen + 1
        } else {
            self.max_strlen
        }
    }
}

use ferret_bpf::insn::map_type::{
    ARRAY as BPF_MAP_TYPE_ARRAY, HASH as BPF_MAP_TYPE_HASH,
    PERCPU_ARRAY as BPF_MAP_TYPE_PERCPU_ARRAY, PERCPU_HASH as BPF_MAP_TYPE_PERCPU_HASH,
    RINGBUF as BPF_MAP_TYPE_RINGBUF, STACK_TRACE as BPF_MAP_TYPE_STACK_TRACE,
};

/// Kernel-side maps every program may use, besides the user's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SysMap {
    Events,
    Lost,
    /// Per-CPU memory for values too big for the 512-byte stack; one for
    /// programs that can interrupt others (perf events), one for the rest.
    Scratch {
        interrupt: bool,
    },
    Stacks,
    /// Per user map, per CPU: updates refused because the map was full.
    Full,
    User(usize),
    /// A syscall group's table: syscall number → the probe's name.
    SyscallProbes {
        id: usize,
        value_size: u32,
        max_entries: u32,
    },
    /// Number → name strings (`syscall_name`, `signal_name`).
    Names {
        table: system::NameTable,
        value_size: u32,
        max_entries: u32,
    },
}

/// A user map as discovered so far.
#[derive(Debug, Clone)]
pub(crate) struct MapState {
    pub name: String,
    pub key: Option<Option<Ty>>,
    pub kind: Option<MapKind>,
    pub span: Span,
    pub assigned: bool,
}

/// State shared by every program of a script.
pub(crate) struct Globals<'o> {
    pub opts: &'o Options,
    pub target: &'o dyn Target,
    /// C types: the kernel's (BTF, read on first use) and the script's.
    pub ctypes: crate::ctypes::CTypes<'o>,
    pub ncpus: u64,
    pub start_ns: u64,
    /// True during the first run, when map types may still change.
    pub discovering: bool,
    pub maps: Vec<MapState>,
    pub map_ids: HashMap<String, usize>,
    pub printfs: Vec<PrintfInfo>,
    pub print_values: Vec<Ty>,
    pub runtime_errors: Vec<crate::program::RuntimeErrorInfo>,
    pub time_formats: Vec<Vec<u8>>,
    pub join_separators: Vec<Vec<u8>>,
    pub obj_maps: Vec<MapDef>,
    pub obj_map_ids: HashMap<SysMap, usize>,
    pub scratch_size: [u32; 2],
    /// Syscall group tables made so far.
    pub syscall_tables: usize,
    /// What the runtime writes into maps before attaching.
    pub map_entries: Vec<(String, Vec<u8>, Vec<u8>)>,
    /// Bytes `str()` reads, NUL included ([`Options::str_read_len`]); the
    /// capacity of such a string is this rounded up to 8, while
    /// `opts.max_strlen` (rounded up too) bounds other strings and buffers.
    pub str_read: u32,
    /// `let @m = kind(N);` declarations by map name (`@m`).
    pub decls: HashMap<String, ast::MapDecl>,
    /// Types learnt for `let $x;` declarations, by the variable's span.
    pub let_types: HashMap<Span, Ty>,
}

/// How many formats, printed types and runtime errors programs had
/// registered at some point.
#[derive(Clone, Copy)]
pub(crate) struct GlobalsMark {
    printfs: usize,
    print_values: usize,
    runtime_errors: usize,
}

impl Globals<'_> {
    pub fn mark(&self) -> GlobalsMark {
        GlobalsMark {
            printfs: self.printfs.len(),
            print_values: self.print_values.len(),
            runtime_errors: self.runtime_errors.len(),
        }
    }

    /// Forgets what a program lowered since `mark` registered: it is
    /// lowered again.
    pub fn forget_since(&mut self, mark: GlobalsMark) {
        self.printfs.truncate(mark.printfs);
        self.print_values.truncate(mark.print_values);
        self.runtime_errors.truncate(mark.runtime_errors);
    }

    pub fn kernel_symbol(&self, name: &str) -> Option<u64> {
        self.target.kernel_symbol(name)
    }

    pub fn cgroup_id(&self, path: &str) -> Option<u64> {
        self.target.cgroup_id(path)
    }

    pub fn obj_map(&mut self, which: SysMap) -> usize {
        if let Some(&i) = self.obj_map_ids.get(&which) {
            return i;
        }
        let opts = self.opts;
        let def = match which {
            SysMap::Events => MapDef {
                name: "ferret_events".into(),
                map_type: BPF_MAP_TYPE_RINGBUF,
                key_size: 0,
                value_size: 0,
                max_entries: opts.ringbuf_pages * 4096,
                map_flags: 0,
            },
            SysMap::Lost => percpu_array("ferret_lost", 8),
            SysMap::Full => MapDef {
                max_entries: u32::try_from(self.maps.len().max(1)).unwrap_or(u32::MAX),
                ..percpu_array("ferret_full", 8)
            },
            SysMap::Scratch { interrupt } => percpu_array(
                if interrupt {
                    "ferret_scratch_irq"
                } else {
                    "ferret_scratch"
                },
                8,
            ),
            SysMap::Stacks => MapDef {
                name: "ferret_stacks".into(),
                map_type: BPF_MAP_TYPE_STACK_TRACE,
                key_size: 4,
                value_size: 8 * crate::program::MAX_STACK_DEPTH,
                max_entries: opts.max_map_keys,
                map_flags: 0,
            },
            SysMap::SyscallProbes {
                id,
                value_size,
                max_entries,
            } => MapDef {
                name: format!("ferret_syscalls_{id}"),
                map_type: BPF_MAP_TYPE_ARRAY,
                key_size: 4,
                value_size,
                max_entries,
                map_flags: 0,
            },
            SysMap::Names {
                table,
                value_size,
                max_entries,
            } => MapDef {
                name: match table {
                    system::NameTable::Syscalls => "ferret_syscall_names",
                    system::NameTable::Signals => "ferret_signal_names",
                }
                .into(),
                map_type: BPF_MAP_TYPE_ARRAY,
                key_size: 4,
                value_size,
                max_entries,
                map_flags: 0,
            },
            SysMap::User(id) => {
                let m = &self.maps[id];
                let kind = m.kind.clone().unwrap_or(MapKind::Count);
                let key = m.key.as_ref().and_then(Option::as_ref);
                let key_size = user_key_size(key, &kind);
                let decl = self.decls.get(&m.name);
                MapDef {
                    name: map_symbol(id),
                    map_type: if kind.uses_array(key) {
                        BPF_MAP_TYPE_PERCPU_ARRAY
                    } else if let Some(d) = decl {
                        decls::kernel_map_type(&d.kind)
                    } else if kind.is_percpu() {
                        BPF_MAP_TYPE_PERCPU_HASH
                    } else {
                        BPF_MAP_TYPE_HASH
                    },
                    key_size,
                    value_size: kind.value_size(),
                    max_entries: if kind.uses_array(key) {
                        1
                    } else {
                        decl.map_or(opts.max_map_keys, |d| {
                            u32::try_from(d.max_entries).unwrap_or(u32::MAX)
                        })
                    },
                    map_flags: 0,
                }
            }
        };
        self.obj_maps.push(def);
        let i = self.obj_maps.len() - 1;
        self.obj_map_ids.insert(which, i);
        i
    }
}

fn percpu_array(name: &str, value_size: u32) -> MapDef {
    MapDef {
        name: name.into(),
        map_type: BPF_MAP_TYPE_PERCPU_ARRAY,
        key_size: 4,
        value_size,
        max_entries: 1,
        map_flags: 0,
    }
}

fn map_symbol(id: usize) -> String {
    format!("ferret_map_{id}")
}

/// Kernel key size: the user key (or a u64 zero for scalar maps) plus a
/// histogram's bucket index.
pub(crate) fn user_key_size(key: Option<&Ty>, kind: &MapKind) -> u32 {
    if kind.uses_array(key) {
        return 4;
    }
    let base = key.map_or(8, |k| crate::types::align8(k.size()));
    base + if kind.is_histogram() { 8 } else { 0 }
}

/// Compiles a parsed program for `target`.
pub fn compile(
    program: &Program,
    target: &dyn Target,
    opts: &Options,
) -> Result<CompiledProgram, Vec<Diagnostic>> {
    if program.probes.is_empty() {
        return Err(vec![Diagnostic::error(
            Span::default(),
            "the program has no probes",
        )]);
    }
    // Every string capacity is a multiple of 8: values are copied and
    // compared 8 bytes at a time.
    let user = Options {
        max_strlen: opts.max_strlen.clamp(1, 16 * 1024),
        ..opts.clone()
    };
    let str_read = user.str_read_len();
    let opts = &Options {
        max_strlen: crate::types::align8(user.max_strlen),
        ..user
    };
    let mut program = program.clone();
    let mut diags = crate::params::resolve_getopt(&mut program, &opts.named_params);
    diags.extend(crate::params::resolve_positional_strings(
        &mut program,
        &opts.positional,
    ));
    if !diags.is_empty() {
        return Err(diags);
    }
    let program = &program;
    let mut warnings = Vec::new();
    let resolved_probes = decls::resolve_probes(program, target, opts, &mut warnings)?;
    let syscall_abi = target.syscall_abi();
    // Each probe's programs, and the capacity of its `probe` string: the
    // same for all its programs, so the first one types it for the rest.
    let probes: Vec<(&ast::Probe, Vec<Unit>, u32)> = resolved_probes
        .iter()
        .map(|(probe, resolved)| {
            let longest = resolved.iter().map(|(_, p)| p.name.len()).max();
            let probe_cap = crate::types::align8(longest.unwrap_or(0) as u32 + 1);
            let resolved = resolved
                .iter()
                .map(|(text, p)| (text.as_str(), p.clone()))
                .collect();
            let resolved = crate::kprobes::merge_wildcards(resolved);
            (*probe, syscalls::plan(resolved, syscall_abi), probe_cap)
        })
        .collect();
    let decls = decls::map_decls(program)?;

    let mut ctypes = crate::ctypes::CTypes::new(target);
    let type_errors = ctypes.define(&program.c_definitions);
    if !type_errors.is_empty() {
        return Err(type_errors);
    }
    let mut g = Globals {
        opts,
        target,
        ctypes,
        ncpus: target.ncpus(),
        start_ns: target.start_ns(),
        discovering: true,
        maps: Vec::new(),
        map_ids: HashMap::new(),
        printfs: Vec::new(),
        print_values: Vec::new(),
        runtime_errors: Vec::new(),
        time_formats: Vec::new(),
        join_separators: Vec::new(),
        obj_maps: Vec::new(),
        obj_map_ids: HashMap::new(),
        scratch_size: [0, 0],
        syscall_tables: 0,
        map_entries: Vec::new(),
        str_read,
        decls,
        let_types: HashMap::new(),
    };
    // Maps read before their assignment in source order have no type on the
    // first run; errors count only on the second, when every type is known.
    for run in 0..2 {
        for (probe, units, probe_cap) in &probes {
            for unit in units.iter().take(1) {
                let mut l = Lowerer::new(&mut g, &unit.probe, unit.group.as_ref(), *probe_cap);
                l.lower_probe(probe);
                if run == 1 {
                    diags.append(&mut l.diags);
                }
            }
        }
    }
    if !diags.is_empty() {
        dedup(&mut diags);
        return Err(diags);
    }
    decls::check_declared_maps(&g, &mut diags, &mut warnings);
    for m in &g.maps {
        if !m.assigned {
            diags.push(
                Diagnostic::error(m.span, format!("map {} is read but never assigned", m.name))
                    .with_label("never assigned a value"),
            );
        }
    }
    if !diags.is_empty() {
        return Err(diags);
    }

    g.discovering = false;
    g.printfs.clear();
    g.print_values.clear();
    g.runtime_errors.clear();
    let events = g.obj_map(SysMap::Events);
    let lost = g.obj_map(SysMap::Lost);
    for id in 0..g.maps.len() {
        g.obj_map(SysMap::User(id));
    }
    let mut programs = Vec::new();
    let mut defs = Vec::new();
    let mut attach_count = 0;
    for (probe, units, probe_cap) in &probes {
        let span = match (probe.attach_points.first(), probe.attach_points.last()) {
            (Some(first), Some(last)) => first.span.to(last.span),
            _ => probe.span,
        };
        for unit in units {
            attach_count += unit.attach_count();
            let mut build = |g: &mut Globals, rp: &ResolvedProbe, group: Option<&SyscallGroup>| {
                let mut stack_budget = STACK_BUDGET;
                let mut l = loop {
                    let mark = g.mark();
                    let mut l = Lowerer::new(g, rp, group, *probe_cap);
                    l.stack_budget = stack_budget;
                    l.lower_probe(probe);
                    let split = l.mixed_args || l.per_function;
                    let excess = l.verifier_stack() - STACK_LIMIT;
                    // Only callback frames make a smaller budget help (an
                    // overflow of scratch memory shows as a full stack too).
                    let done = excess <= 0 || l.deepest_callback == 0 || stack_budget <= 0;
                    if !split && (done || !l.diags.is_empty()) {
                        break l;
                    }
                    // Lowered again, so forget this attempt.
                    drop(l);
                    g.forget_since(mark);
                    if split {
                        // One program per tracepoint (function) instead.
                        return false;
                    }
                    // Nested loop callbacks' frames leave less room for the
                    // probe's own: more of its values go to scratch memory.
                    stack_budget -= (excess + 7) & !7;
                };
                if !l.diags.is_empty() {
                    diags.append(&mut l.diags);
                    return true;
                }
                let name = format!("ferret_p{}", programs.len());
                let Linked {
                    insns,
                    relocs,
                    subprograms,
                    loops,
                } = match l.finish() {
                    Ok(r) => r,
                    Err(d) => {
                        diags.push(d.with_label("in this probe").clone());
                        return true;
                    }
                };
                let section = match &rp.attach {
                    Attach::Begin | Attach::End | Attach::RawSyscalls { .. } => {
                        format!("raw_tp/{name}")
                    }
                    Attach::Tracepoint { category, event } => {
                        format!("tracepoint/{category}/{event}")
                    }
                    Attach::RawTracepoint {
                        event,
                        btf_id: Some(_),
                        ..
                    } => format!("tp_btf/{event}"),
                    Attach::RawTracepoint { event, .. } => format!("raw_tp/{event}"),
                    Attach::Interval { .. }
                    | Attach::Profile { .. }
                    | Attach::Software { .. }
                    | Attach::Hardware { .. } => format!("perf_event/{name}"),
                    Attach::Fentry { exit: false, .. } => format!("fentry/{name}"),
                    Attach::Fentry { exit: true, .. } => format!("fexit/{name}"),
                    Attach::Uprobe { retprobe: true, .. } => format!("uretprobe/{name}"),
                    Attach::Uprobe { .. } | Attach::Usdt { .. } => format!("uprobe/{name}"),
                    // Several functions: one program on all of them, loaded
                    // for a kprobe_multi link where the kernel has them.
                    Attach::Kprobe {
                        functions,
                        retprobe,
                        ..
                    } => format!(
                        "{}{}/{name}",
                        if *retprobe { "kretprobe" } else { "kprobe" },
                        if functions.len() > 1 { ".multi" } else { "" }
                    ),
                };
                programs.push(ProgramInfo {
                    name: name.clone(),
                    probe: rp.name.clone(),
                    span,
                    attach: rp.attach.clone(),
                    insns: insns.clone(),
                    map_loads: relocs
                        .iter()
                        .map(|&(i, m)| (i, g.obj_maps[m].name.clone()))
                        .collect(),
                    subprograms: subprograms.clone(),
                    loops,
                });
                defs.push(ProgramDef {
                    section,
                    name,
                    insns,
                    map_relocations: relocs,
                    subprograms,
                });
                true
            };
            if !build(&mut g, &unit.probe, unit.group.as_ref()) {
                if let Some(group) = &unit.group {
                    for (_, member) in &group.members {
                        build(&mut g, member, None);
                    }
                }
                for single in crate::kprobes::split(&unit.probe) {
                    build(&mut g, &single, None);
                }
            }
        }
    }
    if !diags.is_empty() {
        dedup(&mut diags);
        return Err(diags);
    }
    for (which, size) in [(false, g.scratch_size[0]), (true, g.scratch_size[1])] {
        if let Some(&i) = g.obj_map_ids.get(&SysMap::Scratch { interrupt: which }) {
            g.obj_maps[i].value_size = size.max(8);
        }
    }
    let maps: Vec<MapInfo> = g
        .maps
        .iter()
        .enumerate()
        .map(|(id, m)| {
            let kind = m.kind.clone().unwrap_or(MapKind::Count);
            let key = m.key.clone().flatten();
            MapInfo {
                max_entries: g
                    .obj_map_ids
                    .get(&SysMap::User(id))
                    .map_or(0, |&i| g.obj_maps[i].max_entries),
                declared: g.decls.contains_key(&m.name),
                name: m.name.clone(),
                symbol: map_symbol(id),
                key_size: user_key_size(key.as_ref(), &kind),
                array: kind.uses_array(key.as_ref()),
                key,
                kind,
                span: m.span,
            }
        })
        .collect();
    let stack_map = g
        .obj_map_ids
        .get(&SysMap::Stacks)
        .map(|&i| g.obj_maps[i].name.clone());
    let full_map = g
        .obj_map_ids
        .get(&SysMap::Full)
        .map(|&i| g.obj_maps[i].name.clone());
    let object = ObjectDef {
        license: opts.license.clone(),
        maps: g.obj_maps.clone(),
        programs: defs,
    };
    Ok(CompiledProgram {
        object,
        programs,
        maps,
        printfs: g.printfs,
        print_values: g.print_values,
        runtime_errors: g.runtime_errors,
        time_formats: g.time_formats,
        join_separators: g.join_separators,
        events_map: g.obj_maps[events].name.clone(),
        lost_map: g.obj_maps[lost].name.clone(),
        stack_map,
        full_map,
        attach_count,
        map_entries: g.map_entries,
        warnings,
    })
}

fn dedup(diags: &mut Vec<Diagnostic>) {
    let mut seen = Vec::new();
    diags.retain(|d| {
        let key = (d.span, d.message.clone());
        if seen.contains(&key) {
            false
        } else {
            seen.push(key);
            true
        }
    });
}

/// Byte offset of the saved context pointer below the frame pointer.
const CTX_SLOT: i16 = -8;
/// Registers that survive helper calls and hold temporaries; r9 holds the
/// scratch base when a program uses scratch memory.
const TEMP_REGS: [Reg; 3] = [Reg::R8, Reg::R7, Reg::R6];
/// The verifier's limit on the stack of a program's deepest call chain.
const STACK_LIMIT: i32 = 512;
/// Stack bytes for values before they move to scratch memory; the rest is
/// kept for temporaries.
const STACK_BUDGET: i32 = STACK_LIMIT - 64;
/// What the strictest verifiers (6.1's) count for a frame: its size rounded
/// up to 32 bytes, and 32 for an empty one, such as a loop callback's.
fn verifier_frame(bytes: i32) -> i32 {
    (bytes.max(1) + 31) & !31
}

/// Lowers one concrete probe into one kernel program.
pub(crate) struct Lowerer<'g, 'o> {
    pub g: &'g mut Globals<'o>,
    pub e: Emitter,
    pub probe: &'g ResolvedProbe,
    /// The syscall tracepoints this program serves, for a group's program.
    pub group: Option<&'g SyscallGroup>,
    /// Capacity of the `probe` string.
    pub probe_cap: u32,
    /// Set when the body reads an `args` field the group's tracepoints do
    /// not share: the group must be one program per tracepoint instead.
    pub mixed_args: bool,
    /// Set when the body of a program on several kernel functions needs
    /// to know which one fired (`probe`): one program per function instead.
    pub per_function: bool,
    pub scopes: Vec<HashMap<String, (Ty, Place)>>,
    /// Bytes of stack in use below the frame pointer.
    pub stack_used: i32,
    /// Bytes of stack values may take before they go to scratch memory.
    pub stack_budget: i32,
    /// How deep in loop callbacks the code being lowered is, and the
    /// deepest it went: each level is a frame the verifier counts.
    pub callback_depth: u32,
    pub deepest_callback: u32,
    pub scratch_used: u32,
    pub free_regs: Vec<Reg>,
    pub exit_label: Label,
    pub loops: Vec<(Label, Label)>,
    pub diags: Vec<Diagnostic>,
    /// Memory of this program's `join()` events, shared by every call: an
    /// event is sent as soon as it is built.
    pub join_buffer: Option<Place>,
    /// Loop bodies compiled as callbacks of `bpf_loop` and
    /// `bpf_for_each_map_elem`, in the order their numbers were given.
    pub callbacks: Vec<loops::Callback>,
    /// Variables of `let $x;` declarations (by their memory), with the
    /// declaration's span: their type is learnt from assignments.
    pub untyped_lets: HashMap<Place, Span>,
}

impl<'g, 'o> Lowerer<'g, 'o> {
    fn new(
        g: &'g mut Globals<'o>,
        probe: &'g ResolvedProbe,
        group: Option<&'g SyscallGroup>,
        probe_cap: u32,
    ) -> Self {
        let mut e = Emitter::default();
        let exit_label = e.new_label();
        Self {
            g,
            e,
            probe,
            group,
            probe_cap,
            mixed_args: false,
            per_function: false,
            scopes: vec![HashMap::new()],
            stack_used: if group.is_some() {
                syscalls::GROUP_STACK
            } else {
                8
            },
            stack_budget: STACK_BUDGET,
            callback_depth: 0,
            deepest_callback: 0,
            scratch_used: 0,
            free_regs: TEMP_REGS.to_vec(),
            exit_label,
            loops: Vec::new(),
            diags: Vec::new(),
            join_buffer: None,
            callbacks: Vec::new(),
            untyped_lets: HashMap::new(),
        }
    }

    fn lower_probe(&mut self, probe: &ast::Probe) {
        if let Some(pid) = self.g.opts.filter_pid
            && self.probe.attach.filters_pid_in_program()
        {
            // bpftrace's `-p` filter: `if (pid != PID) return`.
            self.e
                .push(Insn::call(ferret_bpf::insn::helper::GET_CURRENT_PID_TGID));
            self.e
                .push(Insn::alu64_imm(ferret_bpf::AluOp::Rsh, Reg::R0, 32));
            let exit = self.exit_label;
            self.e.jump_if_imm(JmpOp::Jne, Reg::R0, pid as i32, exit);
        }
        if let Some(pred) = &probe.predicate {
            match self.eval(pred).and_then(|v| {
                if v.ty.is_scalar() {
                    Ok(v)
                } else {
                    Err(Diagnostic::error(
                        pred.span,
                        format!("invalid type for a predicate: {}", v.ty.describe()),
                    )
                    .with_label("not an integer or bool")
                    .with_help(
                        "a predicate is a condition: compare the value, e.g. /comm == \"bash\"/",
                    ))
                }
            }) {
                Ok(v) => {
                    self.load_reg(&v, Reg::R0);
                    self.release(v);
                    let exit = self.exit_label;
                    self.e.jump_if_imm(JmpOp::Jeq, Reg::R0, 0, exit);
                }
                Err(d) => self.diags.push(d),
            }
        }
        self.lower_block(&probe.body);
    }

    /// Whether callbacks find the scratch memory through a slot in the
    /// probe's frame.
    fn needs_scratch_slot(&self) -> bool {
        self.scratch_used > 0 && !self.callbacks.is_empty()
    }

    /// The stack the verifier counts for the program's deepest call chain:
    /// the probe's frame and a frame for each level of nested callbacks.
    fn verifier_stack(&self) -> i32 {
        let slot = if self.needs_scratch_slot() { 8 } else { 0 };
        let callbacks = i32::try_from(self.deepest_callback).unwrap_or(i32::MAX);
        verifier_frame(self.stack_used + slot).saturating_add(verifier_frame(0) * callbacks)
    }

    /// Prologue (save ctx, find scratch memory) + body + epilogue, then
    /// the loop callbacks, each with its own prologue.
    fn finish(self) -> Result<Linked, Diagnostic> {
        let verifier_stack = self.verifier_stack();
        let scratch_slot = self.needs_scratch_slot();
        let Lowerer {
            g,
            mut e,
            exit_label,
            scratch_used,
            mut stack_used,
            probe,
            group,
            probe_cap,
            callbacks,
            ..
        } = self;
        e.bind(exit_label);
        e.push(Insn::mov64_imm(Reg::R0, 0));
        e.push(Insn::exit());
        let too_far = || {
            Diagnostic::error(
                Span::default(),
                format!("probe {} is too large for one eBPF program", probe.name),
            )
        };
        let body = e.finish().map_err(|_| too_far())?;
        // Callbacks find the scratch memory where the probe left its address.
        let scratch_slot = scratch_slot.then(|| {
            stack_used += 8;
            -stack_used as i16
        });
        if verifier_stack > STACK_LIMIT {
            return Err(too_far());
        }
        let mut pro = Emitter::default();
        // Prologue jumps to the epilogue, the last two instructions of the
        // body, patched once the prologue's length is known.
        let mut to_epilogue = Vec::new();
        pro.push(Insn::store(Size::DW, Reg::FP, CTX_SLOT, Reg::R1));
        if let Some(group) = group {
            syscalls::emit_dispatch(g, &mut pro, &mut to_epilogue, group, probe_cap);
        }
        if scratch_used > 0 {
            let interrupt = probe.attach.is_perf_event();
            let idx = g.obj_map(SysMap::Scratch { interrupt });
            let slot = &mut g.scratch_size[usize::from(interrupt)];
            *slot = (*slot).max(scratch_used);
            // The zero key lives just below the context slot.
            pro.push(Insn::store_imm(Size::W, Reg::FP, -16, 0));
            pro.load_map(Reg::R1, idx);
            pro.push(Insn::mov64_reg(Reg::R2, Reg::FP));
            pro.push(Insn::alu64_imm(ferret_bpf::AluOp::Add, Reg::R2, -16));
            pro.push(Insn::call(ferret_bpf::insn::helper::MAP_LOOKUP_ELEM));
            pro.push(Insn::mov64_reg(Reg::R9, Reg::R0));
            to_epilogue.push(pro.next_index());
            pro.push(Insn::jmp_imm(JmpOp::Jeq, Reg::R0, 0, 0));
            if let Some(slot) = scratch_slot {
                pro.push(Insn::store(Size::DW, Reg::FP, slot, Reg::R9));
            }
        }
        let mut pro = pro.finish().map_err(|_| too_far())?;
        let epilogue = pro.insns.len() + body.insns.len() - 2;
        for at in to_epilogue {
            pro.insns[at].off = i16::try_from(epilogue - at - 1).map_err(|_| too_far())?;
        }
        let mut functions = vec![join(pro, body)];
        for cb in callbacks {
            let mut pro = Emitter::default();
            // The probe's frame, whose memory the callback works in, is
            // reached through the context argument: the address of the
            // probe's context slot.
            if let Some(ctx) = cb.ctx_arg {
                pro.push(Insn::mov64_reg(loops::FRAME_REG, ctx));
                pro.push(Insn::alu64_imm(
                    ferret_bpf::AluOp::Add,
                    loops::FRAME_REG,
                    -i32::from(CTX_SLOT),
                ));
                if let Some(slot) = scratch_slot {
                    pro.push(Insn::load(Size::DW, Reg::R9, loops::FRAME_REG, slot));
                }
            }
            let mut body = cb.body.finish().map_err(|_| too_far())?;
            loops::use_probe_frame(&mut body.insns);
            functions.push(join(pro.finish().map_err(|_| too_far())?, body));
        }
        link(functions).ok_or_else(too_far)
    }
}

/// A kernel program's instructions: the probe's function, then its
/// callbacks (whose starts are `subprograms`).
struct Linked {
    insns: Vec<Insn>,
    relocs: Vec<(usize, usize)>,
    subprograms: Vec<usize>,
    /// Instructions of each loop, for the verifier's errors.
    loops: Vec<(std::ops::Range<usize>, Span)>,
}

/// `first` followed by `then`, relocations shifted.
fn join(first: Assembled, then: Assembled) -> Assembled {
    let shift = first.insns.len();
    let mut out = first;
    out.insns.extend(then.insns);
    let moved = |r: Vec<(usize, usize)>| r.into_iter().map(move |(i, t)| (i + shift, t));
    out.map_relocs.extend(moved(then.map_relocs));
    out.func_relocs.extend(moved(then.func_relocs));
    out.tracked.extend(
        then.tracked
            .into_iter()
            .map(|(r, span)| (r.start + shift..r.end + shift, span)),
    );
    out
}

/// Lays functions out one after the other (the probe's first) and points
/// every callback load at its callback (function `n + 1` is callback `n`).
fn link(functions: Vec<Assembled>) -> Option<Linked> {
    let mut starts = Vec::with_capacity(functions.len());
    let mut at = 0;
    for f in &functions {
        starts.push(at);
        at += f.insns.len();
    }
    let mut out = Linked {
        insns: Vec::with_capacity(at),
        relocs: Vec::new(),
        subprograms: starts[1..].to_vec(),
        loops: Vec::new(),
    };
    for (f, start) in functions.into_iter().zip(&starts) {
        let base = out.insns.len();
        out.insns.extend(f.insns);
        out.loops.extend(
            f.tracked
                .into_iter()
                .map(|(r, span)| (base + r.start..base + r.end, span)),
        );
        out.relocs
            .extend(f.map_relocs.into_iter().map(|(i, m)| (base + i, m)));
        for (i, cb) in f.func_relocs {
            let target = *starts.get(cb + 1)?;
            let off = target as i64 - (start + i) as i64 - 1;
            out.insns[base + i].imm = i32::try_from(off).ok()?;
        }
    }
    Some(out)
}
