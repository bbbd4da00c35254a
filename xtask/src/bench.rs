//! `cargo xtask bench`: ferret against bpftrace, side by side. See
//! bench/README.md for what each benchmark measures and why.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::Result;
use crate::bpf::{self, ProgFd, Stats, StatsEnabled, StatsSource};
use crate::hammer;
use crate::proc::{self, Exit, Proc};
use crate::report::{self, Cell, Goal, Row};
use crate::tools::{self, which};

const NOTIFY: &str = "__BPFTRACE_NOTIFY_PROBES_ATTACHED";
const BENCHES: [&str; 4] = ["startup", "wide", "cost", "printf"];

#[derive(Debug, Default)]
pub struct Options {
    pub quick: bool,
    pub only: Vec<String>,
    pub no_bpftrace: bool,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options> {
        let mut o = Options::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--quick" => o.quick = true,
                "--no-bpftrace" => o.no_bpftrace = true,
                "--only" => {
                    let name = it.next().ok_or("--only needs a benchmark name")?;
                    o.only.push(name.clone());
                }
                s if s.starts_with("--only=") => o.only.push(s["--only=".len()..].to_string()),
                "-h" | "--help" => {
                    println!("{}", usage());
                    std::process::exit(0);
                }
                other => return Err(format!("unknown option {other}\n{}", usage())),
            }
        }
        for name in &o.only {
            if !BENCHES.contains(&name.as_str()) {
                return Err(format!(
                    "unknown benchmark {name}; one of: {}",
                    BENCHES.join(", ")
                ));
            }
        }
        Ok(o)
    }

    fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }
}

pub fn usage() -> String {
    format!(
        "usage: cargo xtask bench [--quick] [--only NAME]... [--no-bpftrace]\n\
         benchmarks: {}\n\
         Needs root. Writes the table to stdout and bench/results/latest.md.",
        BENCHES.join(", ")
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ferret,
    Bpftrace,
}

#[derive(Debug, Clone)]
struct Tool {
    kind: Kind,
    path: PathBuf,
}

impl Tool {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Ferret => "ferret",
            Kind::Bpftrace => "bpftrace",
        }
    }

    fn command(&self, script: &str, output: Option<&Path>) -> Command {
        let mut c = Command::new(&self.path);
        if let Some(o) = output {
            c.arg("-o").arg(o);
        }
        c.arg("-e").arg(script);
        c.env(NOTIFY, "1");
        c
    }
}

/// Per-tool result of one measurement.
enum Outcome<T> {
    Done(T),
    Skipped,
    Failed,
}

impl<T> Outcome<T> {
    fn cell(&self, f: impl Fn(&T) -> Cell) -> Cell {
        match self {
            Outcome::Done(v) => f(v),
            Outcome::Skipped => Cell::Skipped,
            Outcome::Failed => Cell::Failed,
        }
    }
}

fn cells<T>(o: &[Outcome<T>; 2], f: impl Fn(&T) -> Cell) -> (Cell, Cell) {
    (o[0].cell(&f), o[1].cell(&f))
}

struct Ctx {
    dir: PathBuf,
    ferret: Tool,
    bpftrace: Option<Tool>,
    stats: StatsSource,
    quick: bool,
    rows: Vec<Row>,
    problems: Vec<String>,
    notes: Vec<String>,
    seq: usize,
}

impl Ctx {
    fn label(&mut self, tool: &Tool, what: &str) -> String {
        self.seq += 1;
        format!("{:03}-{}-{what}", self.seq, tool.name())
    }

    /// Runs `f` for ferret then bpftrace. A failure is recorded as a problem
    /// and shows as FAILED in the table; an interruption stops everything.
    fn each_tool<T>(
        &mut self,
        bench: &str,
        mut f: impl FnMut(&mut Ctx, &Tool) -> Result<T>,
    ) -> Result<[Outcome<T>; 2]> {
        let tools = [Some(self.ferret.clone()), self.bpftrace.clone()];
        let mut out = [Outcome::Skipped, Outcome::Skipped];
        for (slot, tool) in out.iter_mut().zip(tools) {
            let Some(tool) = tool else { continue };
            eprintln!("  {bench}: {}", tool.name());
            match f(self, &tool) {
                Ok(v) => *slot = Outcome::Done(v),
                Err(e) => {
                    proc::check_interrupted()?;
                    eprintln!("  {bench}: {} FAILED: {e}", tool.name());
                    self.problems.push(format!("{bench}, {}: {e}", tool.name()));
                    *slot = Outcome::Failed;
                }
            }
        }
        Ok(out)
    }

    /// Runs a program to its own exit; fails on timeout or non-zero exit.
    fn run_to_exit(
        &mut self,
        tool: &Tool,
        what: &str,
        script: &str,
        timeout: Duration,
    ) -> Result<(Exit, Proc)> {
        let label = self.label(tool, what);
        let mut p = Proc::spawn(tool.command(script, None), &self.dir, &label)?;
        match p.wait_timeout(timeout)? {
            Some(e) if e.success() => Ok((e, p)),
            Some(e) => Err(format!("{} ({}): {}", e.describe(), what, p.stderr_tail())),
            None => {
                p.stop(Duration::from_secs(5))?;
                Err(format!("no exit within {timeout:?} ({what})"))
            }
        }
    }

    /// Waits until `p`'s tracepoint program has run at least once, firing
    /// getppid from here to make it run. That is the one readiness signal
    /// that means the same for both tools: the program is attached and
    /// seeing events. Needs bpf stats enabled.
    fn wait_ready(&self, p: &mut Proc, timeout: Duration) -> Result<Vec<ProgFd>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = p.poll_exit()? {
                return Err(format!(
                    "exited before its probe fired ({}): {}",
                    e.describe(),
                    p.stderr_tail()
                ));
            }
            let progs = bpf::tracepoint_progs(p.pid());
            if !progs.is_empty() {
                hammer::getppid();
                if StatsSource::read_fast(&progs).run_cnt > 0 {
                    return Ok(progs);
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "its tracepoint program never ran within {timeout:?} (programs found: {})",
                    progs.len()
                ));
            }
            p.wait_timeout(Duration::from_millis(10))?;
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Every `Lost N events` a tool reported, summed.
fn lost_reported(texts: &[&str]) -> u64 {
    texts
        .iter()
        .flat_map(|t| t.lines())
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("Lost ")?;
            let n = rest.strip_suffix(" events")?;
            n.trim().parse::<u64>().ok()
        })
        .sum()
}

// ---- 1. start-up ----------------------------------------------------------

fn bench_startup(ctx: &mut Ctx) -> Result<()> {
    let runs = if ctx.quick { 3 } else { 5 };
    let scripts = [
        ("BEGIN exit", "BEGIN { exit(); }"),
        (
            "getppid count + interval exit",
            "tracepoint:syscalls:sys_enter_getppid { @ = count(); } interval:ms:50 { exit(); }",
        ),
    ];
    for (name, script) in scripts {
        let bench = format!("startup: {name}");
        let o = ctx.each_tool(&bench, |ctx, tool| {
            // One untimed run so both start with warm caches.
            ctx.run_to_exit(tool, "startup-warm", script, Duration::from_secs(30))?;
            let mut walls = Vec::new();
            let mut rss = Vec::new();
            for _ in 0..runs {
                let (e, _) = ctx.run_to_exit(tool, "startup", script, Duration::from_secs(30))?;
                walls.push(e.wall.as_secs_f64() * 1e3);
                rss.push(e.maxrss_kib as f64 / 1024.0);
            }
            Ok((median(&mut walls), median(&mut rss)))
        })?;
        let (f, b) = cells(&o, |v| Cell::Num(v.0, 1));
        ctx.rows.push(
            Row::new(&bench, &format!("wall ms (median of {runs})"), f, b)
                .goal(Goal::RatioAtMost(0.1)),
        );
        let (f, b) = cells(&o, |v| Cell::Num(v.1, 1));
        ctx.rows.push(
            Row::new(&bench, &format!("peak RSS MiB (median of {runs})"), f, b)
                .goal(Goal::RatioAtMost(0.2)),
        );
    }
    Ok(())
}

// ---- 2. wide attach -------------------------------------------------------

struct Wide {
    probes: String,
    attached_s: Option<f64>,
    total_s: f64,
}

/// The probe count from "Attached N probes" (ferret, stderr) or
/// "Attaching N probes..." (bpftrace, stdout).
fn attach_count(texts: &[&str]) -> Option<u64> {
    texts.iter().flat_map(|t| t.lines()).find_map(|l| {
        let rest = l
            .strip_prefix("Attached ")
            .or_else(|| l.strip_prefix("Attaching "))?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn bench_wide(ctx: &mut Ctx) -> Result<()> {
    let script =
        "tracepoint:syscalls:sys_enter_* { @[probe] = count(); } interval:ms:100 { exit(); }";
    let bench = "wide attach: sys_enter_*";
    let o = ctx.each_tool(bench, |ctx, tool| {
        let timeout = Duration::from_secs(120);
        let label = ctx.label(tool, "wide");
        let mut p = Proc::spawn(tool.command(script, None), &ctx.dir, &label)?;
        let mut attached = None;
        let exit = loop {
            if let Some(e) = p.wait_timeout(Duration::from_millis(5))? {
                break e;
            }
            // ferret prints the line on stdout, bpftrace 0.17 on stderr.
            if attached.is_none()
                && (p.read_stdout().contains(NOTIFY) || p.read_stderr().contains(NOTIFY))
            {
                attached = Some(p.started().elapsed().as_secs_f64());
            }
            if p.started().elapsed() > timeout {
                p.stop(Duration::from_secs(5))?;
                return Err(format!("no exit within {timeout:?}"));
            }
        };
        if !exit.success() {
            return Err(format!("{}: {}", exit.describe(), p.stderr_tail()));
        }
        let (out, err) = (p.read_stdout(), p.read_stderr());
        let entries = out.lines().filter(|l| l.starts_with("@[")).count();
        let probes = attach_count(&[&out, &err])
            .map(|n| format!("{n} ({entries} in map)"))
            .unwrap_or_else(|| "?".into());
        Ok(Wide {
            probes,
            attached_s: attached,
            total_s: exit.wall.as_secs_f64(),
        })
    })?;
    let (f, b) = cells(&o, |v| Cell::Text(v.probes.clone()));
    ctx.rows
        .push(Row::new(bench, "probes attached", f, b).no_ratio());
    let (f, b) = cells(&o, |v| match v.attached_s {
        Some(s) => Cell::Num(s, 2),
        None => Cell::Text("no signal".into()),
    });
    ctx.rows
        .push(Row::new(bench, "s until attached (notify line)", f, b));
    let (f, b) = cells(&o, |v| Cell::Num(v.total_s, 2));
    ctx.rows
        .push(Row::new(bench, "total wall s (one run)", f, b).goal(Goal::FerretBelow(2.0)));
    Ok(())
}

// ---- 3. in-kernel cost per event -------------------------------------------

struct Cost {
    ns_per_event: f64,
    calls_per_s: f64,
}

fn bench_cost(ctx: &mut Ctx) -> Result<()> {
    let events: u64 = if ctx.quick { 50_000 } else { 200_000 };
    let rounds: u64 = if ctx.quick { 1 } else { 5 };
    let scripts = [
        ("@ = count()", "@ = count();", false),
        ("@[comm] = count()", "@[comm] = count();", false),
        ("@[pid] = hist(nsecs)", "@[pid] = hist(nsecs);", false),
        ("printf pid comm", "printf(\"%d %s\\n\", pid, comm);", true),
    ];
    let _stats = StatsEnabled::enable()?;
    for (name, body, to_null) in scripts {
        let script = format!("tracepoint:syscalls:sys_enter_getppid {{ {body} }}");
        let bench = format!("cost/event: {name}");
        let o = ctx.each_tool(&bench, |ctx, tool| {
            let label = ctx.label(tool, "cost");
            let output = to_null.then_some(Path::new("/dev/null"));
            let mut p = Proc::spawn(tool.command(&script, output), &ctx.dir, &label)?;
            let progs = ctx.wait_ready(&mut p, Duration::from_secs(60))?;
            // Several rounds in one session; the median round is reported,
            // which keeps one disturbed round from skewing the result.
            let mut per_round = Vec::new();
            let mut d = Stats::default();
            let mut rate = Vec::new();
            let mut after = Stats::default();
            for round in 0..rounds {
                let before = ctx.stats.read(&progs)?;
                let h = hammer::run(
                    &ctx.dir,
                    &format!("{label}-hammer{round}"),
                    1,
                    events / rounds,
                    0,
                )?;
                after = ctx.stats.read(&progs)?;
                let r = after.since(before);
                per_round.push(r.run_time_ns as f64 / r.run_cnt.max(1) as f64);
                rate.push((events / rounds) as f64 / h.elapsed.as_secs_f64());
                d = Stats {
                    run_time_ns: d.run_time_ns + r.run_time_ns,
                    run_cnt: d.run_cnt + r.run_cnt,
                };
            }
            let names = ctx.stats.names(&progs).join(",");
            let (exit, killed) = p.stop(Duration::from_secs(30))?;
            if killed || !exit.success() {
                ctx.problems.push(format!(
                    "{bench}, {}: did not exit cleanly on SIGINT ({}{}): {}",
                    tool.name(),
                    exit.describe(),
                    if killed { ", needed SIGKILL" } else { "" },
                    p.stderr_tail()
                ));
            }
            if d.run_cnt < events / rounds * rounds {
                return Err(format!(
                    "program {names} ran {} times for {} getppid calls",
                    d.run_cnt,
                    events / rounds * rounds
                ));
            }
            if name == "@ = count()" {
                // The printed count covers every event the program saw.
                let out = p.read_stdout();
                let printed = out
                    .lines()
                    .find_map(|l| l.strip_prefix("@: ")?.trim().parse::<u64>().ok());
                match printed {
                    Some(n) if n >= after.run_cnt => {}
                    Some(n) => ctx.problems.push(format!(
                        "{bench}, {}: printed @: {n}, but its program ran {} times",
                        tool.name(),
                        after.run_cnt
                    )),
                    None => ctx.problems.push(format!(
                        "{bench}, {}: no `@: N` line in its output",
                        tool.name()
                    )),
                }
            }
            eprintln!(
                "    {names}: {} runs, {} ns; ns/event per round {:.1?}; hammer {:.0} calls/s",
                d.run_cnt,
                d.run_time_ns,
                per_round,
                median(&mut rate)
            );
            Ok(Cost {
                ns_per_event: median(&mut per_round),
                calls_per_s: median(&mut rate),
            })
        })?;
        let (f, b) = cells(&o, |v| Cell::Num(v.ns_per_event, 1));
        let metric = if rounds > 1 {
            format!("ns/event (median of {rounds} x {} events)", events / rounds)
        } else {
            format!("ns/event ({events} events)")
        };
        ctx.rows
            .push(Row::new(&bench, &metric, f, b).goal(Goal::RatioAtMost(1.0)));
        let (f, b) = cells(&o, |v| Cell::Num(v.calls_per_s, 0));
        ctx.rows
            .push(Row::new(&bench, "getppid calls/s while traced", f, b));
    }
    Ok(())
}

// ---- 4. printf throughput ---------------------------------------------------

struct Printf {
    triggered: u64,
    written: u64,
    lost: u64,
    produced_per_s: f64,
    written_per_s: f64,
}

fn bench_printf(ctx: &mut Ctx) -> Result<()> {
    let script = "tracepoint:syscalls:sys_enter_getppid { printf(\"ev %d %s\\n\", pid, comm); }";
    // The overload runs one hammer per CPU, so the tool's reader has to
    // compete with the producers for CPU time.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let scenarios = [
        (
            "moderate",
            1,
            if ctx.quick { 10_000 } else { 40_000 },
            20_000,
        ),
        (
            "overload",
            cpus,
            if ctx.quick { 200_000 } else { 500_000 },
            0,
        ),
    ];
    let _stats = StatsEnabled::enable()?;
    for (name, procs, per_proc, rate) in scenarios {
        let events = per_proc * procs as u64;
        let bench = if rate == 0 {
            format!("printf to file, {name}: {procs}x{per_proc} events flat out")
        } else {
            format!("printf to file, {name}: {events} events at {rate}/s")
        };
        let o = ctx.each_tool(&bench, |ctx, tool| {
            let label = ctx.label(tool, &format!("printf-{name}"));
            let out_file = ctx.dir.join(format!("{label}.out"));
            let mut p = Proc::spawn(tool.command(script, Some(&out_file)), &ctx.dir, &label)?;
            ctx.wait_ready(&mut p, Duration::from_secs(60))?;
            let t0 = Instant::now();
            let h = hammer::run(&ctx.dir, &format!("{label}-hammer"), procs, per_proc, rate)?;
            // Wait for the output to stop growing: 500 ms without change, or
            // 30 s at most.
            let size = || std::fs::metadata(&out_file).map(|m| m.len()).unwrap_or(0);
            let mut last = size();
            let mut last_growth = Instant::now();
            while last_growth.elapsed() < Duration::from_millis(500)
                && t0.elapsed() < Duration::from_secs(30)
            {
                if p.wait_timeout(Duration::from_millis(10))?.is_some() {
                    break;
                }
                let s = size();
                if s != last {
                    last = s;
                    last_growth = Instant::now();
                }
            }
            let span = last_growth.saturating_duration_since(t0).max(h.elapsed);
            let (exit, killed) = p.stop(Duration::from_secs(30))?;
            if killed || !exit.success() {
                ctx.problems.push(format!(
                    "{bench}, {}: did not exit cleanly on SIGINT ({}{}): {}",
                    tool.name(),
                    exit.describe(),
                    if killed { ", needed SIGKILL" } else { "" },
                    p.stderr_tail()
                ));
            }
            let text = std::fs::read_to_string(&out_file)
                .map_err(|e| format!("{}: {e}", out_file.display()))?;
            let prefixes: Vec<String> = h.pids.iter().map(|p| format!("ev {p} ")).collect();
            let written = text
                .lines()
                .filter(|l| prefixes.iter().any(|p| l.starts_with(p)))
                .count() as u64;
            let lost = lost_reported(&[&text, &p.read_stdout(), &p.read_stderr()]);
            if written > events {
                ctx.problems.push(format!(
                    "{bench}, {}: {written} lines for {events} events",
                    tool.name()
                ));
            }
            Ok(Printf {
                triggered: events,
                written,
                lost,
                produced_per_s: events as f64 / h.elapsed.as_secs_f64(),
                written_per_s: written as f64 / span.as_secs_f64(),
            })
        })?;
        let num0 = |v: f64| Cell::Num(v, 0);
        let (f, b) = cells(&o, |v| num0(v.written as f64));
        ctx.rows
            .push(Row::new(&bench, "lines written", f, b).no_ratio());
        let (f, b) = cells(&o, |v| num0(v.triggered.saturating_sub(v.written) as f64));
        let mut row = Row::new(&bench, "lines missing", f, b).no_ratio();
        if rate != 0 {
            row = row.goal(Goal::FerretZero);
        }
        ctx.rows.push(row);
        let (f, b) = cells(&o, |v| num0(v.lost as f64));
        ctx.rows
            .push(Row::new(&bench, "lost, as the tool reports it", f, b).no_ratio());
        let (f, b) = cells(&o, |v| {
            num0(v.triggered.saturating_sub(v.written).saturating_sub(v.lost) as f64)
        });
        ctx.rows.push(
            Row::new(&bench, "missing but not reported lost", f, b)
                .no_ratio()
                .goal(Goal::FerretZero),
        );
        let (f, b) = cells(&o, |v| num0(v.produced_per_s));
        ctx.rows
            .push(Row::new(&bench, "events/s generated (hammer)", f, b));
        let (f, b) = cells(&o, |v| num0(v.written_per_s));
        ctx.rows
            .push(Row::new(&bench, "lines/s written to file", f, b));
    }
    Ok(())
}

// ---- set-up ---------------------------------------------------------------

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Finds bpftrace and bpftool, installing them with apt-get when missing.
fn find_tools(want_bpftrace: bool) -> (Option<PathBuf>, Option<PathBuf>) {
    let mut missing = Vec::new();
    if want_bpftrace && which("bpftrace").is_none() {
        missing.push("bpftrace");
    }
    if which("bpftool").is_none() {
        missing.push("bpftool");
    }
    if !missing.is_empty() {
        tools::apt_install(&missing);
        for m in &missing {
            if which(m).is_none() {
                eprintln!(
                    "warning: {m} not found and could not be installed; install it \
                     (Debian/Ubuntu: `apt-get install bpftrace bpftool`){}",
                    if *m == "bpftrace" {
                        ", or pass --no-bpftrace"
                    } else {
                        "; falling back to /proc/PID/fdinfo for program stats"
                    }
                );
            }
        }
    }
    (
        if want_bpftrace {
            which("bpftrace")
        } else {
            None
        },
        which("bpftool"),
    )
}

fn build_ferret(root: &Path) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building ferret (release)");
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["build", "--release", "-p", "ferret"])
        .status()
        .map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() {
        return Err("cargo build --release -p ferret failed".into());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("release").join("ferret");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("{} not found after building", bin.display()))
    }
}

fn command_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "?".into())
}

/// Removes the scratch directory on the way out.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("FERRET_BENCH_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            eprintln!("kept scratch files in {}", self.0.display());
        }
    }
}

pub fn run(opts: &Options) -> Result<()> {
    proc::catch_signals();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("the benchmarks load BPF programs and need root".into());
    }
    let started = Instant::now();
    let root = workspace_root();
    let (bpftrace, bpftool) = find_tools(!opts.no_bpftrace);
    let ferret = build_ferret(&root)?;
    let dir = std::env::temp_dir().join(format!("ferret-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let scratch = Scratch(dir.clone());

    let mut notes = Vec::new();
    if bpftrace.is_none() {
        notes.push("bpftrace not run (--no-bpftrace or not installed).".to_string());
    }
    if bpftool.is_none() {
        notes.push("bpftool missing: program stats read from /proc/PID/fdinfo.".to_string());
    }
    let mut ctx = Ctx {
        dir,
        ferret: Tool {
            kind: Kind::Ferret,
            path: ferret,
        },
        bpftrace: bpftrace.map(|path| Tool {
            kind: Kind::Bpftrace,
            path,
        }),
        stats: StatsSource { bpftool },
        quick: opts.quick,
        rows: Vec::new(),
        problems: Vec::new(),
        notes,
        seq: 0,
    };

    type Bench = fn(&mut Ctx) -> Result<()>;
    let benches: [(&str, Bench); 4] = [
        ("startup", bench_startup),
        ("wide", bench_wide),
        ("cost", bench_cost),
        ("printf", bench_printf),
    ];
    let mut timings = Vec::new();
    for (name, f) in benches {
        if !opts.wants(name) {
            continue;
        }
        eprintln!("== {name}");
        let t = Instant::now();
        if let Err(e) = f(&mut ctx) {
            proc::check_interrupted()?;
            eprintln!("{name} FAILED: {e}");
            ctx.problems.push(format!("{name}: {e}"));
        }
        timings.push(format!("{name} {:.1} s", t.elapsed().as_secs_f64()));
    }
    drop(scratch);

    let mut md = String::new();
    let _ = writeln!(md, "# ferret vs bpftrace\n");
    let _ = writeln!(
        md,
        "- date: {}\n- kernel: {}, {} CPUs\n- ferret: {} (release)\n- bpftrace: {}\n- mode: {}\n",
        command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into()),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        command_line(
            "git",
            &[
                "-C",
                &root.to_string_lossy(),
                "rev-parse",
                "--short",
                "HEAD"
            ]
        ),
        ctx.bpftrace
            .as_ref()
            .map(|t| command_line(&t.path.to_string_lossy(), &["--version"]))
            .unwrap_or_else(|| "not run".into()),
        if opts.quick { "quick" } else { "full" },
    );
    md.push_str(&report::table(&ctx.rows));
    let _ = writeln!(
        md,
        "\nTime per benchmark: {}; total {:.1} s.",
        timings.join(", "),
        started.elapsed().as_secs_f64()
    );
    if !ctx.notes.is_empty() {
        let _ = writeln!(md, "\nNotes:");
        for n in &ctx.notes {
            let _ = writeln!(md, "- {n}");
        }
    }
    if !ctx.problems.is_empty() {
        let _ = writeln!(md, "\nProblems:");
        for p in &ctx.problems {
            let _ = writeln!(md, "- {p}");
        }
    }
    println!("{md}");
    let results = root.join("bench").join("results");
    std::fs::create_dir_all(&results).map_err(|e| format!("{}: {e}", results.display()))?;
    let latest = results.join("latest.md");
    std::fs::write(&latest, &md).map_err(|e| format!("{}: {e}", latest.display()))?;
    eprintln!("wrote {}", latest.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let args = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let o = Options::parse(&args(&["--quick", "--only", "cost", "--no-bpftrace"])).unwrap();
        assert!(o.quick && o.no_bpftrace);
        assert!(o.wants("cost") && !o.wants("wide"));
        assert!(Options::parse(&args(&["--only", "nope"])).is_err());
        assert!(Options::parse(&args(&["--bogus"])).is_err());
        assert!(Options::parse(&[]).unwrap().wants("startup"));
    }

    #[test]
    fn parsing_tool_output() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(lost_reported(&["x\nLost 12 events\n", "Lost 3 events"]), 15);
        assert_eq!(lost_reported(&["nothing lost"]), 0);
        assert_eq!(attach_count(&["", "Attached 361 probes\n"]), Some(361));
        assert_eq!(attach_count(&["Attaching 2 probes...\n"]), Some(2));
        assert_eq!(attach_count(&["@: 1"]), None);
    }
}
