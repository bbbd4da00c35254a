//! One trace session: compile, load, attach, run begin probes, print events
//! until exit() or a signal, run end probes, print maps, detach.

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use ferret_compiler::config::MissingProbes;
use ferret_compiler::{Attach, CompiledProgram, EventKind, Options, ProgramInfo};
use ferret_kernel::{HardwareEvent, KernelError, LoadedObject, PerfTarget, SoftwareEvent};
use ferret_output::printf::{self, Piece};
use ferret_output::{MapDump, Value, json, text};
use ferret_syntax::SourceFile;

use crate::cli::{OutputFormat, ProcessTarget, RunSettings, Source};
use crate::decode::{self, Symbolizer};
use crate::process::{Child, ChildEnd, Followed, Watched};
use crate::sink::Sink;
use crate::target::KernelTarget;
use crate::{Failure, signals};

/// Runs a program; returns the exit code (`exit(N)`'s N).
pub fn run(settings: &RunSettings) -> Result<i32, Failure> {
    let written = read_source(&settings.source)?;
    let pre = ferret_syntax::preprocess(&written)
        .map_err(|d| Failure::Diagnostics(written.clone(), d))?;
    let file = pre.file;
    for w in &pre.warnings {
        eprint!("{}", w.render(&written));
    }
    if settings.verbose {
        for include in &pre.skipped_includes {
            eprintln!("skipped #include {include}: kernel types come from BTF");
        }
    }
    let ast = ferret_syntax::parse(&file).map_err(|d| Failure::Diagnostics(file.clone(), d))?;
    let mut opts = options(settings, &ast, &file)?;
    ferret_compiler::params::check_named(&ast, &settings.named).map_err(Failure::Usage)?;
    // The followed process comes next: its pid is compiled in (`cpid`,
    // the `-p` filter). A `-c` child waits before exec until attach.
    let process = match &settings.process {
        Some(ProcessTarget::Pid(pid)) => {
            Some(Followed::Pid(Watched::open(*pid).map_err(Failure::Kernel)?))
        }
        Some(ProcessTarget::Command(cmd)) => {
            Some(Followed::Child(Child::spawn(cmd).map_err(Failure::Kernel)?))
        }
        None => None,
    };
    let target = KernelTarget::new(settings.verbose);
    opts.filter_pid = match &process {
        Some(Followed::Pid(w)) => Some(w.pid()),
        _ => None,
    };
    opts.child_pid = match &process {
        Some(Followed::Child(c)) => Some(c.pid()),
        _ => None,
    };
    opts.allow_unsafe = settings.allow_unsafe;
    let started = Instant::now();
    let compiled = ferret_compiler::compile(&ast, &target, &opts)
        .map_err(|d| Failure::Diagnostics(file.clone(), d))?;
    for w in &compiled.warnings {
        eprint!("{}", w.render(&file));
    }
    if settings.verbose {
        eprintln!(
            "compiled {} programs in {:?}",
            compiled.programs.len(),
            started.elapsed()
        );
    }
    if settings.debug.codegen {
        let mut out = io::stdout().lock();
        for p in &compiled.programs {
            let _ = writeln!(out, "; {} ({})", p.probe, p.name);
            let text = ferret_bpf::disasm::disassemble_with_maps(&p.insns, &p.map_loads);
            for line in text.lines() {
                let at = line
                    .trim_start()
                    .split(':')
                    .next()
                    .and_then(|n| n.parse().ok());
                if let Some(n) = at.and_then(|at| p.subprograms.iter().position(|&s| s == at)) {
                    let _ = writeln!(out, "; callback {n} (a loop body)");
                }
                let _ = writeln!(out, "{line}");
            }
            let _ = writeln!(out);
        }
        let _ = out.flush();
    }
    ferret_kernel::privileges::check().map_err(|e| Failure::Kernel(e.to_string()))?;
    ferret_kernel::privileges::raise_open_file_limit();
    let mut session = Session::start(settings, &opts, &compiled, &file, process)?;
    let code = session.trace()?;
    session.finish();
    Ok(code)
}

/// bpftrace's config: the script's config block, then `BPFTRACE_*`
/// environment variables, which win; and the program's parameters.
fn options(
    settings: &RunSettings,
    ast: &ferret_syntax::ast::Program,
    file: &SourceFile,
) -> Result<Options, Failure> {
    let mut opts = Options {
        positional: settings.positional.clone(),
        named_params: settings.named.clone(),
        ..Options::default()
    };
    let warnings = ferret_compiler::config::apply_block(&ast.config, &mut opts)
        .map_err(|d| Failure::Diagnostics(file.clone(), d))?;
    for w in &warnings {
        eprint!("{}", w.render(file));
    }
    ferret_compiler::config::apply_env(&|k| std::env::var(k).ok(), &mut opts)
        .map_err(Failure::Kernel)?;
    Ok(opts)
}

fn read_source(source: &Source) -> Result<SourceFile, Failure> {
    match source {
        Source::Inline(text) => Ok(SourceFile::new("stdin", text.clone())),
        Source::Stdin => {
            let text = io::read_to_string(io::stdin())
                .map_err(|e| Failure::Usage(format!("cannot read the program from stdin: {e}")))?;
            Ok(SourceFile::new("stdin", text))
        }
        Source::File(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))?;
            Ok(SourceFile::new(path.display().to_string(), text))
        }
    }
}

/// Why a hardware event could not be opened, when the machine has no PMU
/// to count it (most virtual machines): perf_event_open says ENOENT. Gives
/// the PMUs the machine does have.
fn no_pmu(e: &KernelError) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let errno = std::iter::from_fn(|| {
        let cur = source?;
        source = cur.source();
        Some(cur)
    })
    .find_map(|err| err.downcast_ref::<io::Error>()?.raw_os_error())?;
    if errno != libc::ENOENT && errno != libc::EOPNOTSUPP {
        return None;
    }
    const DEVICES: &str = "/sys/bus/event_source/devices";
    let mut pmus: Vec<String> = std::fs::read_dir(DEVICES)
        .map(|dir| {
            dir.flatten()
                .map(|d| d.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    pmus.sort();
    Some(format!("{DEVICES} has: {}", pmus.join(" ")))
}

fn no_pmu_diagnostic(p: &ProgramInfo, pmus: &str) -> ferret_syntax::Diagnostic {
    ferret_syntax::Diagnostic::error(
        p.span,
        format!(
            "{} needs hardware performance counters, and this machine has none",
            p.probe
        ),
    )
    .with_label("no CPU PMU to count this event")
    .with_note(format!("{pmus} (no CPU PMU)"))
    .with_help("software:cpu-clock or profile:hz:99 sample on a timer instead")
}

/// The verifier's rejection of one probe: the last lines of its log that
/// say something (not its statistics), and a hint for the usual causes.
fn verifier_diagnostic(p: &ProgramInfo, log: &str) -> ferret_syntax::Diagnostic {
    const STATS: &[&str] = &["verification time", "stack depth", "processed "];
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !STATS.iter().any(|s| l.starts_with(s)))
        .collect();
    // The statistics lines are left out: they always speak of states.
    let said = lines.join("\n");
    let endless = said.contains("infinite loop detected");
    let complex = said.contains("too large") || said.contains("too complex");
    // The while loop the verifier was in when it gave up, if any.
    let stopped_at = log
        .split("infinite loop detected at insn ")
        .nth(1)
        .or_else(|| lines.iter().rev().copied().find(|l| l.contains(": (")))
        .and_then(|l| {
            l.trim_start()
                .split([':', ' ', '\n'])
                .next()?
                .parse::<usize>()
                .ok()
        });
    let in_loop = stopped_at.and_then(|at| {
        p.loops
            .iter()
            .filter(|(r, _)| r.contains(&at))
            .min_by_key(|(r, _)| r.len())
    });
    let message = format!("the kernel's verifier rejected probe {}", p.probe);
    let mut d = match in_loop {
        Some((_, span)) if endless || complex => ferret_syntax::Diagnostic::error(*span, message)
            .with_label(if endless {
                "this loop never ends"
            } else {
                "the verifier cannot follow this loop to its end"
            })
            .with_help(
                "give it a condition that becomes false sooner, or loop with \
                     for ($i : 0..N), which the kernel bounds",
            ),
        _ => ferret_syntax::Diagnostic::error(p.span, message).with_label("in this probe"),
    };
    if in_loop.is_none() || !(endless || complex) {
        d = if endless {
            d.with_help(
                "a loop in this probe never ends: give it a condition that becomes false, or use unroll(N)",
            )
        } else if said.contains("failed to find the address for kernel symbol") {
            d.with_help(
                "this kernel cannot give BPF programs the address of its variables: its symbol \
                 table (/proc/kallsyms) has no data symbols (built without CONFIG_KALLSYMS_ALL)",
            )
        } else if complex {
            d.with_help("the probe is too complex to verify: use fewer loop iterations or split it")
        } else {
            d.with_help("ferret -d shows the generated instructions the log refers to")
        };
    }
    for line in &lines[lines.len().saturating_sub(8)..] {
        d = d.with_note(*line);
    }
    d
}

/// `join()`'s text: the event's fixed-size strings up to the first empty
/// one, separated by `sep`.
fn join_strings(ev: &[u8], sep: &[u8]) -> Vec<u8> {
    use ferret_compiler::program::{EVENT_HEADER, JOIN_ARG_SIZE, JOIN_ARGS};
    let mut out = Vec::new();
    for i in 0..JOIN_ARGS as usize {
        let at = EVENT_HEADER as usize + i * JOIN_ARG_SIZE as usize;
        let Some(slot) = ev.get(at..at + JOIN_ARG_SIZE as usize) else {
            break;
        };
        let len = slot.iter().position(|&b| b == 0).unwrap_or(slot.len());
        if len == 0 {
            break;
        }
        if i > 0 {
            out.extend_from_slice(sep);
        }
        out.extend_from_slice(&slot[..len]);
    }
    out
}

struct Session<'a> {
    opts: &'a Options,
    compiled: &'a CompiledProgram,
    file: &'a SourceFile,
    object: LoadedObject,
    sink: Sink,
    symbols: Symbolizer,
    printf_formats: Vec<Vec<Piece>>,
    settings: &'a RunSettings,
    exit_code: Option<i32>,
    /// `-p`/`-c`: the trace ends when it exits.
    process: Option<Followed>,
    /// Lost events already reported.
    lost_reported: u64,
}

impl<'a> Session<'a> {
    fn start(
        settings: &'a RunSettings,
        opts: &'a Options,
        compiled: &'a CompiledProgram,
        file: &'a SourceFile,
        process: Option<Followed>,
    ) -> Result<Self, Failure> {
        let kernel = |e: KernelError| Failure::Kernel(e.to_string());
        let object = ferret_kernel::load(&compiled.object).map_err(kernel)?;
        for (map, key, value) in &compiled.map_entries {
            object
                .map(map)
                .and_then(|m| m.update(key, value))
                .map_err(kernel)?;
        }
        let sink = Sink::new(
            settings.output.as_deref(),
            settings.format,
            settings.buffering,
        )
        .map_err(|e| match &settings.output {
            Some(path) => Failure::Usage(format!("cannot create {}: {e}", path.display())),
            None => Failure::Kernel(format!("cannot write to stdout: {e}")),
        })?;
        let stacks = match &compiled.stack_map {
            Some(name) => Some(object.map(name).map_err(kernel)?),
            None => None,
        };
        let printf_formats = compiled
            .printfs
            .iter()
            .map(|p| printf::parse(&p.format).unwrap_or_default())
            .collect();
        Ok(Self {
            opts,
            compiled,
            file,
            object,
            sink,
            symbols: Symbolizer {
                time_formats: compiled.time_formats.clone(),
                ..Symbolizer::new(stacks).configured(opts)
            },
            printf_formats,
            settings,
            exit_code: None,
            process,
            lost_reported: 0,
        })
    }

    /// Detaches everything and leaves the kernel's slow part of it (tens of
    /// ms per tracepoint) to a background process, so that exiting is quick.
    fn finish(mut self) {
        self.object.detach_all();
        if let Err(e) = self.object.detach_in_background()
            && self.settings.verbose
        {
            eprintln!("detaching in the foreground: {e}");
        }
    }

    /// A verifier rejection points at the probe it came from, with the end
    /// of the verifier's log (where it says why) and what to change.
    fn kernel_failure(&self, p: &ProgramInfo, e: KernelError) -> Failure {
        match e {
            KernelError::Verifier { log, .. } => {
                Failure::Diagnostics(self.file.clone(), vec![verifier_diagnostic(p, &log)])
            }
            other => Failure::Kernel(format!("{}: {other}", p.probe)),
        }
    }

    /// Verifies every program before any is attached or run, so a rejected
    /// probe never leaves the others running, even for a moment. tp_btf
    /// and fentry/fexit programs are verified against their tracepoint's
    /// or function's BTF id.
    fn load_all(&mut self) -> Result<(), Failure> {
        for p in &self.compiled.programs {
            if let Attach::RawTracepoint {
                btf_id: Some(id),
                module,
                ..
            } = &p.attach
            {
                self.object
                    .set_attach_btf_id(&p.name, *id)
                    .map_err(|e| self.kernel_failure(p, e))?;
                // A module's raw tracepoint: the id is in its BTF.
                if module != "vmlinux" {
                    self.object
                        .set_attach_btf_module(&p.name, module)
                        .map_err(|e| self.kernel_failure(p, e))?;
                }
            }
            if let Attach::Fentry { btf_id, module, .. } = &p.attach {
                self.object
                    .set_attach_btf_id(&p.name, *btf_id)
                    .map_err(|e| self.kernel_failure(p, e))?;
                if module != "vmlinux" {
                    self.object
                        .set_attach_btf_module(&p.name, module)
                        .map_err(|e| self.kernel_failure(p, e))?;
                }
            }
        }
        for p in &self.compiled.programs {
            self.object
                .load_program(&p.name)
                .map_err(|e| self.kernel_failure(p, e))?;
        }
        Ok(())
    }

    fn attach_all(&mut self) -> Result<usize, Failure> {
        let started = Instant::now();
        let mut attached = 0;
        // `-p`/`-c`: perf events count only that process's events.
        let pid = self.process.as_ref().map(Followed::pid);
        for p in &self.compiled.programs {
            let result = match &p.attach {
                Attach::Begin | Attach::End => self.object.load_program(&p.name).map(|()| 1),
                Attach::Tracepoint { category, event } => self
                    .object
                    .attach_tracepoint(&p.name, category, event)
                    .map(|()| 1),
                Attach::RawSyscalls { exit, tracepoints } => self
                    .object
                    .attach_raw_tracepoint(&p.name, Attach::raw_syscall_tracepoint(*exit))
                    .map(|()| *tracepoints),
                Attach::RawTracepoint {
                    btf_id: Some(id), ..
                } => self.object.attach_tp_btf(&p.name, *id).map(|()| 1),
                Attach::RawTracepoint { event, .. } => self
                    .object
                    .attach_raw_tracepoint(&p.name, event)
                    .map(|()| 1),
                Attach::Fentry { btf_id, .. } => {
                    self.object.attach_fentry(&p.name, *btf_id).map(|()| 1)
                }
                Attach::Interval { period_ns } => self
                    .object
                    .attach_perf_event(
                        &p.name,
                        PerfTarget::Interval {
                            period_ns: *period_ns,
                        },
                    )
                    .map(|_| 1),
                Attach::Profile {
                    frequency_hz,
                    period_ns,
                } => self
                    .object
                    .attach_perf_event_for(
                        &p.name,
                        PerfTarget::Profile {
                            frequency_hz: *frequency_hz,
                            period_ns: *period_ns,
                        },
                        pid,
                    )
                    .map(|_| 1),
                Attach::Software { event, period } => {
                    let event = SoftwareEvent::from_name(event).ok_or_else(|| {
                        Failure::Kernel(format!("{}: unknown software event", p.probe))
                    })?;
                    let target = PerfTarget::Software {
                        event,
                        period: *period,
                    };
                    self.object
                        .attach_perf_event_for(&p.name, target, pid)
                        .map(|_| 1)
                }
                Attach::Hardware { event, period } => {
                    let event = HardwareEvent::from_name(event).ok_or_else(|| {
                        Failure::Kernel(format!("{}: unknown hardware event", p.probe))
                    })?;
                    let target = PerfTarget::Hardware {
                        event,
                        period: *period,
                    };
                    let result = self.object.attach_perf_event_for(&p.name, target, pid);
                    if let Err(e) = &result
                        && let Some(pmus) = no_pmu(e)
                    {
                        return Err(Failure::Diagnostics(
                            self.file.clone(),
                            vec![no_pmu_diagnostic(p, &pmus)],
                        ));
                    }
                    result.map(|_| 1)
                }
                // `-p`/`-c`: in that process only.
                Attach::Uprobe {
                    binary,
                    offset,
                    retprobe,
                    ..
                } => self
                    .object
                    .attach_uprobe(&p.name, Path::new(binary), *offset, *retprobe, pid)
                    .map(|()| 1),
                Attach::Kprobe {
                    functions,
                    module,
                    offset,
                    retprobe,
                } => match functions.as_slice() {
                    [function] => {
                        // The kernel finds `MODULE:FUNCTION` in that module.
                        let target = match module {
                            Some(m) => format!("{m}:{function}"),
                            None => function.clone(),
                        };
                        self.object
                            .attach_kprobe(&p.name, &target, *offset, *retprobe)
                            .map(|()| 1)
                    }
                    many => {
                        let names: Vec<&str> = many.iter().map(String::as_str).collect();
                        self.object.attach_kprobes(&p.name, &names, *retprobe)
                    }
                },
                Attach::Usdt {
                    binary,
                    offset,
                    semaphore,
                    ..
                } => self
                    .object
                    .attach_usdt(&p.name, Path::new(binary), *offset, *semaphore, pid)
                    // A USDT probe's sites count as one probe.
                    .map(|()| usize::from(p.attach.counts_as_probe())),
            };
            match result {
                Ok(n) => attached += n,
                // A probe that exists but cannot be attached is forgiven
                // by missing_probes, as in bpftrace.
                Err(e)
                    if !matches!(p.attach, Attach::Begin | Attach::End)
                        && !matches!(e, KernelError::Verifier { .. })
                        && self.opts.missing_probes != MissingProbes::Error =>
                {
                    if self.opts.missing_probes == MissingProbes::Warn {
                        eprintln!("WARNING: Unable to attach probe: {}. Skipping.", p.probe);
                    }
                }
                Err(e) => return Err(self.kernel_failure(p, e)),
            }
        }
        if self.settings.verbose {
            eprintln!("attached {attached} probes in {:?}", started.elapsed());
        }
        Ok(attached)
    }

    fn trace(&mut self) -> Result<i32, Failure> {
        signals::install();
        self.load_all()?;
        if self.settings.dry_run {
            self.attach_all()?;
            return Ok(0);
        }
        let mut events = self
            .object
            .events(&self.compiled.events_map)
            .map_err(|e| Failure::Kernel(e.to_string()))?;
        // As in bpftrace, begin probes run before anything else is
        // attached, so their output comes first. After exit() in one there
        // is nothing to attach for; the count printed stays bpftrace's.
        self.sink.hold();
        self.run_special(Attach::Begin, &mut events)?;
        let count = if self.exit_code.is_some() {
            self.compiled.attach_count
        } else {
            self.attach_all()?
        };
        let begun = self.sink.take_held();
        if !self.settings.quiet {
            match self.sink.format {
                OutputFormat::Text => {
                    eprintln!(
                        "Attached {count} probe{}",
                        if count == 1 { "" } else { "s" }
                    );
                }
                OutputFormat::Json => {
                    self.sink.write_json(&json::attached_probes(count as u64));
                }
            }
        }
        self.sink.sync();
        if std::env::var_os("__BPFTRACE_NOTIFY_PROBES_ATTACHED").is_some() {
            // To stdout even with -o, as bpftrace does: it is for whoever
            // started ferret, not part of the trace.
            let mut stdout = io::stdout().lock();
            let _ = writeln!(stdout, "__BPFTRACE_NOTIFY_PROBES_ATTACHED");
            let _ = stdout.flush();
        }
        self.sink.write(&begun);
        // A program of only begin/end probes ends at once, unless it
        // follows a process (then it lasts as long as the process).
        let only_special = self.process.is_none()
            && self
                .compiled
                .programs
                .iter()
                .all(|p| matches!(p.attach, Attach::Begin | Attach::End));
        if self.exit_code.is_none()
            && let Some(Followed::Child(child)) = &mut self.process
        {
            child.release().map_err(Failure::Kernel)?;
        }
        self.sink.sync();
        let mut process_ended = false;
        while self.exit_code.is_none()
            && !only_special
            && !process_ended
            && !signals::stop_requested()
        {
            let mut fds = vec![events.as_fd()];
            fds.extend(self.process.as_ref().map(Followed::pidfd));
            let ready = crate::process::poll_readable(&fds, Duration::from_millis(200))
                .map_err(|e| Failure::Kernel(format!("waiting for events: {e}")))?;
            process_ended = ready.get(1).copied().unwrap_or(false);
            self.drain(&mut events);
            self.report_lost();
            self.sink.sync();
        }
        self.drain(&mut events);
        // Stop new events before end probes run, as bpftrace does.
        let detaching = Instant::now();
        self.object.detach_all();
        if self.settings.verbose {
            eprintln!("detached in {:?}", detaching.elapsed());
        }
        self.end_child();
        // Events queued after exit() were dropped above, but end probes
        // still run and print, as in bpftrace; exit() in one overrides.
        let code = self.exit_code.take();
        self.run_special(Attach::End, &mut events)?;
        self.exit_code = self.exit_code.or(code);
        self.report_full_maps();
        self.report_lost();
        if self.lost_reported > 0 {
            eprintln!("WARNING: Total lost event count: {}", self.lost_reported);
        }
        self.print_maps_at_exit();
        self.sink.flush();
        Ok(self.exit_code.unwrap_or(0))
    }

    /// A `-c` child still running when the trace ends otherwise (exit(),
    /// Ctrl-C, SIGTERM) gets SIGTERM, as in bpftrace; its end is reported
    /// with -v.
    fn end_child(&mut self) {
        let Some(Followed::Child(child)) = &mut self.process else {
            return;
        };
        child.terminate();
        if self.settings.verbose {
            match child.end() {
                Some(ChildEnd::Exited(code)) => eprintln!("child exited with code {code}"),
                Some(ChildEnd::Signaled(sig)) => eprintln!("child terminated by signal {sig}"),
                None => {}
            }
        }
    }

    /// Runs the begin or end probes in order, handling what each sends
    /// before the next runs; after exit() no further begin probe runs.
    fn run_special(
        &mut self,
        which: Attach,
        events: &mut ferret_kernel::EventReader,
    ) -> Result<(), Failure> {
        let compiled = self.compiled;
        for p in compiled.programs.iter().filter(|p| p.attach == which) {
            if which == Attach::Begin && self.exit_code.is_some() {
                break;
            }
            self.object
                .run_once(&p.name)
                .map_err(|e| self.kernel_failure(p, e))?;
            self.drain(events);
        }
        Ok(())
    }

    fn drain(&mut self, events: &mut ferret_kernel::EventReader) {
        let mut batch = Vec::new();
        events.drain(|bytes| batch.push(bytes.to_vec()));
        for ev in batch {
            if self.exit_code.is_some() {
                break;
            }
            self.handle_event(&ev);
        }
    }

    fn handle_event(&mut self, ev: &[u8]) {
        let (kind, id) = event_header(ev);
        match kind {
            Some(
                k @ (EventKind::Printf
                | EventKind::System
                | EventKind::Cat
                | EventKind::Errorf
                | EventKind::Warnf),
            ) => {
                let Some(info) = self.compiled.printfs.get(id) else {
                    return;
                };
                let args: Vec<Value> = info
                    .args
                    .iter()
                    .map(|(off, ty)| decode::value(ev, *off as usize, ty, &mut self.symbols))
                    .collect();
                let text = printf::format(&self.printf_formats[id], &args);
                let span = info.span;
                match k {
                    EventKind::System => self.run_command(&text),
                    EventKind::Cat => self.cat_file(&text),
                    EventKind::Errorf => self.located("errorf", "ERROR", &text, span),
                    EventKind::Warnf => self.located("warnf", "WARNING", &text, span),
                    _ => match self.sink.format {
                        OutputFormat::Text => self.sink.write(&text),
                        OutputFormat::Json => self.sink.write_json(&json::printf(&text)),
                    },
                }
            }
            Some(EventKind::RuntimeError) => {
                let Some(info) = self.compiled.runtime_errors.get(id) else {
                    return;
                };
                let (span, message) = (info.span, info.message.clone());
                match self.sink.format {
                    OutputFormat::Text => {
                        self.sink.flush();
                        eprint!(
                            "{}",
                            ferret_syntax::Diagnostic::warning(span, message).render(self.file)
                        );
                    }
                    OutputFormat::Json => {
                        let (line, col) = self.file.line_col(span.start);
                        let record = json::located(
                            "runtime_error",
                            message.as_bytes(),
                            &self.file.name,
                            line as u64,
                            col as u64,
                        );
                        self.sink.write_json(&record);
                    }
                }
            }
            Some(EventKind::Time) => {
                let fmt = self
                    .compiled
                    .time_formats
                    .get(id)
                    .cloned()
                    .unwrap_or_default();
                let text = crate::timefmt::format(crate::timefmt::now_ns(), &fmt, 1024);
                match self.sink.format {
                    OutputFormat::Text => self.sink.write(&text),
                    OutputFormat::Json => self.sink.write_json(&json::text_event("time", &text)),
                }
            }
            Some(EventKind::Join) => {
                let sep = self
                    .compiled
                    .join_separators
                    .get(id)
                    .cloned()
                    .unwrap_or_default();
                let text = join_strings(ev, &sep);
                match self.sink.format {
                    OutputFormat::Text => {
                        self.sink.write(&text);
                        self.sink.write(b"\n");
                    }
                    OutputFormat::Json => self.sink.write_json(&json::text_event("join", &text)),
                }
            }
            Some(EventKind::Exit) => {
                let code = u64::from_le_bytes(
                    ev.get(8..16)
                        .and_then(|b| b.try_into().ok())
                        .unwrap_or([0; 8]),
                );
                self.exit_code = Some(code as i32);
            }
            Some(EventKind::PrintValue) => {
                let Some(ty) = self.compiled.print_values.get(id) else {
                    return;
                };
                let v = decode::value(ev, 8, ty, &mut self.symbols);
                match self.sink.format {
                    OutputFormat::Text => self.sink.write(&text::format_print_value(&v)),
                    OutputFormat::Json => self.sink.write_json(&json::value(&v)),
                }
            }
            Some(EventKind::PrintMap) => {
                let top = u64::from_le_bytes(
                    ev.get(8..16)
                        .and_then(|b| b.try_into().ok())
                        .unwrap_or([0; 8]),
                );
                let div = u64::from_le_bytes(
                    ev.get(16..24)
                        .and_then(|b| b.try_into().ok())
                        .unwrap_or([1, 0, 0, 0, 0, 0, 0, 0]),
                );
                if let Some(dump) = self.dump_map(id, true) {
                    self.print_map(&dump, top as usize, div.max(1));
                }
            }
            Some(EventKind::ClearMap) | Some(EventKind::ZeroMap) => {
                let Some(info) = self.compiled.maps.get(id) else {
                    return;
                };
                if let Ok(map) = self.object.map(&info.symbol) {
                    let _ = if kind == Some(EventKind::ClearMap) {
                        map.clear()
                    } else {
                        map.zero_values()
                    };
                }
            }
            None => {}
        }
    }

    /// `system()`: runs the command through `sh -c` and prints what it
    /// wrote (stdout and stderr) and a newline, as bpftrace does.
    fn run_command(&mut self, command: &[u8]) {
        use std::os::unix::ffi::OsStrExt;
        self.sink.flush();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(std::ffi::OsStr::from_bytes(command))
            .stdin(std::process::Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let mut text = o.stdout;
                text.extend(o.stderr);
                match self.sink.format {
                    OutputFormat::Text => {
                        self.sink.write(&text);
                        self.sink.write(b"\n");
                    }
                    OutputFormat::Json => {
                        self.sink.write_json(&json::text_event("syscall", &text));
                    }
                }
            }
            Ok(o) => eprintln!(
                "ferret: system(): command exited with code {}",
                o.status.code().unwrap_or(-1)
            ),
            Err(e) => eprintln!("ferret: system(): cannot run sh: {e}"),
        }
    }

    /// `cat()`: prints up to 10240 bytes of the file, as bpftrace's
    /// default `max_cat_bytes`.
    fn cat_file(&mut self, path: &[u8]) {
        use std::io::Read;
        use std::os::unix::ffi::OsStrExt;
        const MAX_CAT_BYTES: u64 = 10240;
        let name = String::from_utf8_lossy(path);
        let mut text = Vec::new();
        let read = std::fs::File::open(std::ffi::OsStr::from_bytes(path))
            .and_then(|f| f.take(MAX_CAT_BYTES).read_to_end(&mut text));
        if read.is_err() {
            self.sink.flush();
            eprintln!("ferret: cat(): failed to open file '{name}'");
            return;
        }
        match self.sink.format {
            OutputFormat::Text => self.sink.write(&text),
            OutputFormat::Json => self.sink.write_json(&json::text_event("cat", &text)),
        }
    }

    /// `errorf`/`warnf`: the message with the call's place, on stderr (or
    /// as a JSON record).
    fn located(&mut self, kind: &str, severity: &str, text: &[u8], span: ferret_syntax::Span) {
        let (line, col) = self.file.line_col(span.start);
        match self.sink.format {
            OutputFormat::Text => {
                self.sink.flush();
                eprintln!(
                    "{}:{line}:{col}: {severity}: {}",
                    self.file.name,
                    String::from_utf8_lossy(text)
                );
            }
            OutputFormat::Json => {
                let record = json::located(kind, text, &self.file.name, line as u64, col as u64);
                self.sink.write_json(&record);
            }
        }
    }

    /// Reads map `id`. For `print()` of an empty scalar map bpftrace shows
    /// its zero value.
    fn dump_map(&mut self, id: usize, zero_if_empty: bool) -> Option<MapDump> {
        let info = self.compiled.maps.get(id)?;
        let map = self.object.map(&info.symbol).ok()?;
        let raw: decode::RawEntries = if info.kind.is_percpu() {
            map.percpu_entries().ok()?
        } else {
            map.entries()
                .ok()?
                .into_iter()
                .map(|(k, v)| (k, vec![v]))
                .collect()
        };
        let mut dump = decode::map_dump(info, raw, &mut self.symbols);
        if zero_if_empty
            && dump.entries.is_empty()
            && info.key.is_none()
            && !info.kind.is_histogram()
        {
            // The zero value itself, not a never-updated slot to skip.
            let shown = ferret_compiler::MapInfo {
                array: false,
                ..info.clone()
            };
            let zero = decode::map_dump(
                &shown,
                vec![(vec![0; 8], vec![vec![0; 16]])],
                &mut self.symbols,
            );
            dump.entries = zero.entries;
        }
        Some(dump)
    }

    fn print_map(&mut self, dump: &MapDump, top: usize, div: u64) {
        match self.sink.format {
            OutputFormat::Text => {
                let bytes = text::format_map_bytes(dump, top, div);
                self.sink.write(&bytes);
            }
            OutputFormat::Json => {
                if !dump.entries.is_empty() {
                    self.sink.write_json(&json::map(dump, top, div));
                }
            }
        }
    }

    fn print_maps_at_exit(&mut self) {
        if !self.opts.print_maps_on_exit {
            if self.sink.format == OutputFormat::Text {
                self.sink.write(b"\n\n");
            }
            return;
        }
        let mut dumps = Vec::new();
        for id in 0..self.compiled.maps.len() {
            if let Some(d) = self.dump_map(id, false)
                && !d.entries.is_empty()
            {
                dumps.push(d);
            }
        }
        match self.sink.format {
            OutputFormat::Text => {
                self.sink.write(b"\n\n");
                let bytes = text::format_maps_at_exit(&dumps);
                self.sink.write(&bytes);
            }
            OutputFormat::Json => {
                dumps.sort_by(|a, b| a.name.cmp(&b.name));
                for d in &dumps {
                    self.sink.write_json(&json::map(d, 0, 1));
                }
            }
        }
    }

    /// Warns about each map that was full, with how many updates the
    /// kernel refused (bpftrace's "Map full; can't update element").
    fn report_full_maps(&mut self) {
        let Some(name) = &self.compiled.full_map else {
            return;
        };
        let Ok(map) = self.object.map(name) else {
            return;
        };
        let Ok(entries) = map.percpu_entries() else {
            return;
        };
        for (key, values) in entries {
            let id = key
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map_or(usize::MAX, |b| u32::from_le_bytes(b) as usize);
            let dropped: u64 = values
                .iter()
                .map(|v| {
                    u64::from_le_bytes(v.get(..8).and_then(|b| b.try_into().ok()).unwrap_or([0; 8]))
                })
                .sum();
            let Some(info) = self.compiled.maps.get(id) else {
                continue;
            };
            if dropped == 0 {
                continue;
            }
            let d = ferret_syntax::Diagnostic::warning(
                info.span,
                format!(
                    "map {} is full: {dropped} update{} dropped",
                    info.name,
                    if dropped == 1 { " was" } else { "s were" }
                ),
            )
            .with_label(format!("holds at most {} keys", info.max_entries));
            let bigger = format!(
                "'let {} = {}({});'",
                info.name,
                if info.kind.is_percpu() {
                    "percpuhash"
                } else {
                    "hash"
                },
                u64::from(info.max_entries) * 2
            );
            let d = if info.declared {
                d.with_help(format!("declare it bigger: {bigger}"))
            } else {
                d.with_help(format!(
                    "raise max_map_keys in a config block, or declare the map bigger: {bigger}"
                ))
            };
            eprint!("{}", d.render(self.file));
        }
    }

    /// Reports events lost since the last report, as bpftrace does while
    /// it runs: `Lost N events` on stderr, or a `lost_events` record.
    fn report_lost(&mut self) {
        let total = self.lost_total();
        if total <= self.lost_reported {
            return;
        }
        let lost = total - self.lost_reported;
        self.lost_reported = total;
        match self.sink.format {
            OutputFormat::Text => eprintln!("Lost {lost} events"),
            OutputFormat::Json => self.sink.write_json(&json::lost_events(lost)),
        }
    }

    fn lost_total(&self) -> u64 {
        let Ok(map) = self.object.map(&self.compiled.lost_map) else {
            return 0;
        };
        map.percpu_entries()
            .map(|entries| {
                entries
                    .iter()
                    .flat_map(|(_, values)| values.iter())
                    .map(|v| {
                        u64::from_le_bytes(
                            v.get(..8).and_then(|b| b.try_into().ok()).unwrap_or([0; 8]),
                        )
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
}

/// An event's kind and id, from its 8-byte header (`kind | id << 32`).
fn event_header(ev: &[u8]) -> (Option<EventKind>, usize) {
    let header = u64::from_le_bytes(
        ev.get(..8)
            .and_then(|b| b.try_into().ok())
            .unwrap_or([0; 8]),
    );
    (EventKind::from_u32(header as u32), (header >> 32) as usize)
}
