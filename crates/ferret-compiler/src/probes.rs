//! Attach points as written (`t:syscalls:sys_enter_*`, `i:1s`) resolved into
//! the concrete probes they name, with wildcards expanded against the target.

use ferret_syntax::Diagnostic;
use ferret_syntax::ast::AttachPoint;
use ferret_syntax::diag::closest;

use crate::program::Attach;
use crate::target::{Target, TracepointFormat};

/// One concrete probe an attach point expanded to.
#[derive(Debug, Clone)]
pub struct ResolvedProbe {
    /// Canonical name, the value of the `probe` builtin.
    pub name: String,
    pub attach: Attach,
    /// The record layout, for tracepoints.
    pub format: Option<TracepointFormat>,
}

/// Probe kinds ferret knows, with their short aliases, for `-l` and for
/// "did you mean" help.
pub const PROBE_KINDS: &[(&str, &str)] = &[
    ("begin", ""),
    ("end", ""),
    ("tracepoint", "t"),
    ("interval", "i"),
    ("profile", "p"),
    ("kprobe", "k"),
    ("kretprobe", "kr"),
    ("uprobe", "u"),
    ("uretprobe", "ur"),
    ("usdt", "U"),
    ("rawtracepoint", "rt"),
    ("software", "s"),
    ("hardware", "h"),
    ("fentry", "f"),
    ("fexit", "fr"),
];

/// A perf event usable as `software:NAME` or `hardware:NAME`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerfEventName {
    pub name: &'static str,
    /// Short name (`faults`), or "".
    pub alias: &'static str,
    /// Sample period when the probe gives none (`software:faults` is
    /// `software:faults:100`).
    pub default_period: u64,
}

const fn perf(name: &'static str, alias: &'static str, default_period: u64) -> PerfEventName {
    PerfEventName {
        name,
        alias,
        default_period,
    }
}

/// bpftrace's software events, with its default periods.
pub const SOFTWARE_EVENTS: &[PerfEventName] = &[
    perf("alignment-faults", "", 1),
    perf("bpf-output", "", 1),
    perf("context-switches", "cs", 1000),
    perf("cpu-clock", "cpu", 1_000_000),
    perf("cpu-migrations", "", 1),
    perf("dummy", "", 1),
    perf("emulation-faults", "", 1),
    perf("major-faults", "", 1),
    perf("minor-faults", "", 100),
    perf("page-faults", "faults", 100),
    perf("task-clock", "", 1),
];

/// bpftrace's hardware events, with its default periods.
pub const HARDWARE_EVENTS: &[PerfEventName] = &[
    perf("backend-stalls", "", 1_000_000),
    perf("branch-instructions", "branches", 100_000),
    perf("branch-misses", "", 100_000),
    perf("bus-cycles", "", 100_000),
    perf("cache-misses", "", 1_000_000),
    perf("cache-references", "", 1_000_000),
    perf("cpu-cycles", "cycles", 1_000_000),
    perf("frontend-stalls", "", 1_000_000),
    perf("instructions", "", 1_000_000),
    perf("ref-cycles", "", 1_000_000),
];

/// Caches what the target says about tracepoints across all attach points
/// of a program, so a wildcard over 700 events lists them once.
pub struct ProbeResolver<'t> {
    target: &'t dyn Target,
    tracepoints: Option<Vec<(String, String)>>,
    /// Set when the last [`Self::resolve`] failed because the probe does
    /// not exist (which `missing_probes` may forgive), not because it is
    /// malformed.
    pub missing: bool,
    raw_tracepoints: Option<Vec<String>>,
    /// The kernel's traceable functions, for kprobes.
    kernel_functions: Option<Vec<(String, String)>>,
    user: crate::uprobes::UserContext,
}

impl<'t> ProbeResolver<'t> {
    pub fn new(target: &'t dyn Target) -> Self {
        Self {
            target,
            tracepoints: None,
            missing: false,
            raw_tracepoints: None,
            kernel_functions: None,
            user: Default::default(),
        }
    }

    /// `-p`'s pid and `--unsafe`, which user-space probes depend on.
    pub fn for_process(mut self, pid: Option<u32>, allow_unsafe: bool) -> Self {
        self.user = crate::uprobes::UserContext { pid, allow_unsafe };
        self
    }

    pub fn resolve(&mut self, ap: &AttachPoint) -> Result<Vec<ResolvedProbe>, Diagnostic> {
        self.missing = false;
        let text = ap.text.as_str();
        let err = |msg: String| Diagnostic::error(ap.span, msg);
        // `end:*` is `end`, as in bpftrace.
        let lower = text.to_ascii_lowercase().trim_end_matches(":*").to_owned();
        if let Some((special @ ("begin" | "end"), rest)) = lower.split_once(':') {
            let found = rest.split(':').count();
            return Err(err(format!(
                "{special} probe type requires 0 arguments, found {found}"
            ))
            .with_label("unexpected arguments")
            .with_help(format!("write '{special}' alone")));
        }
        if lower == "begin" || lower == "end" {
            return Ok(vec![ResolvedProbe {
                name: lower.clone(),
                attach: if lower == "begin" {
                    Attach::Begin
                } else {
                    Attach::End
                },
                format: None,
            }]);
        }
        let (provider, rest) = text.split_once(':').unwrap_or((text, ""));
        if matches!(provider, "uprobe" | "u" | "uretprobe" | "ur" | "usdt" | "U") {
            return crate::uprobes::resolve(self.target, ap, provider, rest, self.user).map_err(
                |e| {
                    self.missing = e.missing;
                    e.diag
                },
            );
        }
        let provider_lc = provider.to_ascii_lowercase();
        match provider_lc.as_str() {
            "tracepoint" | "t" => self.tracepoint(ap, rest),
            "rawtracepoint" | "rt" => self.raw_tracepoint(ap, rest),
            "interval" | "i" => {
                let period_ns = parse_period(rest, false).map_err(|m| {
                    err(format!("invalid interval probe '{text}': {m}"))
                        .with_label("here")
                        .with_help("write it as interval:s:1, interval:ms:100, interval:hz:10 or interval:1s")
                })?;
                Ok(vec![ResolvedProbe {
                    name: format!("interval:{rest}"),
                    attach: Attach::Interval { period_ns },
                    format: None,
                }])
            }
            "profile" | "p" => {
                let (unit, _) = rest.split_once(':').unwrap_or(("", rest));
                let attach = if unit.eq_ignore_ascii_case("hz") {
                    let hz = parse_count(&rest[3..]).map_err(|m| {
                        err(format!("invalid profile probe '{text}': {m}"))
                            .with_label("here")
                            .with_help("write it as profile:hz:99, profile:ms:10 or profile:s:1")
                    })?;
                    Attach::Profile {
                        frequency_hz: Some(hz),
                        period_ns: None,
                    }
                } else {
                    let ns = parse_period(rest, true).map_err(|m| {
                        err(format!("invalid profile probe '{text}': {m}"))
                            .with_label("here")
                            .with_help("write it as profile:hz:99, profile:ms:10 or profile:s:1")
                    })?;
                    Attach::Profile {
                        frequency_hz: None,
                        period_ns: Some(ns),
                    }
                };
                Ok(vec![ResolvedProbe {
                    name: format!("profile:{rest}"),
                    attach,
                    format: None,
                }])
            }
            "software" | "s" => perf_event(ap, "software", SOFTWARE_EVENTS, rest),
            "hardware" | "h" => perf_event(ap, "hardware", HARDWARE_EVENTS, rest),
            "kprobe" | "k" | "kretprobe" | "kr" => {
                let retprobe = provider_lc.starts_with("kr");
                crate::kprobes::check(ap, retprobe, rest)?;
                if !self.target.kprobes() {
                    // A probe this kernel cannot make: missing_probes may
                    // skip it.
                    self.missing = true;
                    let d = err(
                        "kprobes are not available on this kernel (CONFIG_KPROBES is off)".into(),
                    )
                    .with_label("kernel dynamic probe");
                    return Err(self.with_tracepoint_hint(d, rest, retprobe));
                }
                let target = self.target;
                let functions = self
                    .kernel_functions
                    .get_or_insert_with(|| target.kernel_functions());
                crate::kprobes::resolve(target, functions, ap, retprobe, rest).map_err(|e| {
                    self.missing = e.missing;
                    e.diag
                })
            }
            "fentry" | "f" | "kfunc" | "fexit" | "fr" | "kretfunc" => {
                let exit = matches!(provider_lc.as_str(), "fexit" | "fr" | "kretfunc");
                crate::fentry::check(ap, exit, rest)?;
                let target = self.target;
                let functions = self
                    .kernel_functions
                    .get_or_insert_with(|| target.kernel_functions());
                crate::fentry::resolve(target, functions, ap, exit, rest).map_err(|e| {
                    self.missing = e.missing;
                    if e.diag.message.ends_with("not available on this kernel") {
                        let function = rest.rsplit(':').next().unwrap_or(rest);
                        self.with_tracepoint_hint(e.diag, function, exit)
                    } else {
                        e.diag
                    }
                })
            }
            _ if PROBE_KINDS
                .iter()
                .any(|(k, a)| *k == provider_lc || (!a.is_empty() && *a == provider)) =>
            {
                Err(err(format!("{provider} probes are not supported yet"))
                    .with_label("this probe kind"))
            }
            _ => {
                let names = PROBE_KINDS.iter().map(|(k, _)| *k);
                let mut d =
                    err(format!("unknown probe type '{provider}'")).with_label("not a probe type");
                if let Some(best) = closest(&provider_lc, names) {
                    d = d.with_help(format!("did you mean '{best}'?"));
                }
                Err(d)
            }
        }
    }

    /// Help for a kernel function probe ferret cannot make: the syscall
    /// tracepoint that sees the same call, or tracepoints in general.
    fn with_tracepoint_hint(&mut self, d: Diagnostic, function: &str, exit: bool) -> Diagnostic {
        match self.syscall_tracepoint_for(function, exit) {
            Some(tp) => d.with_help(format!("the syscall has a tracepoint: use '{tp}'")),
            None => d.with_help(
                "use a tracepoint where one covers the event (ferret -l 'tracepoint:*')",
            ),
        }
    }

    /// For a kprobe on a syscall's kernel function (`do_sys_openat2`,
    /// `__x64_sys_read`, `ksys_write`), the syscalls tracepoint that sees
    /// the same call, if the target has it.
    fn syscall_tracepoint_for(&mut self, func: &str, exit: bool) -> Option<String> {
        let mut name = func.rsplit(':').next()?;
        for prefix in [
            "__x64_sys_",
            "__arm64_sys_",
            "__se_sys_",
            "__do_sys_",
            "do_sys_",
            "ksys_",
            "vfs_",
            "sys_",
        ] {
            if let Some(rest) = name.strip_prefix(prefix) {
                name = rest;
                break;
            }
        }
        let event = format!("sys_{}_{name}", if exit { "exit" } else { "enter" });
        let target = self.target;
        let all = self.tracepoints.get_or_insert_with(|| target.tracepoints());
        all.iter()
            .any(|(c, e)| c == "syscalls" && *e == event)
            .then(|| format!("tracepoint:syscalls:{event}"))
    }

    fn tracepoint(
        &mut self,
        ap: &AttachPoint,
        rest: &str,
    ) -> Result<Vec<ResolvedProbe>, Diagnostic> {
        let Some((cat, event)) = rest.split_once(':') else {
            return Err(
                Diagnostic::error(ap.span, format!("invalid tracepoint '{}'", ap.text))
                    .with_label("expected tracepoint:CATEGORY:EVENT")
                    .with_help("for example tracepoint:syscalls:sys_enter_openat"),
            );
        };
        let target = self.target;
        let all = self.tracepoints.get_or_insert_with(|| target.tracepoints());
        let wild = |s: &str| s.contains(['*', '?']);
        let matches: Vec<(String, String)> = if wild(cat) || wild(event) {
            all.iter()
                .filter(|(c, e)| glob_match(cat, c) && glob_match(event, e))
                .cloned()
                .collect()
        } else if all.iter().any(|(c, e)| c == cat && e == event) {
            vec![(cat.to_string(), event.to_string())]
        } else {
            Vec::new()
        };
        if matches.is_empty() {
            self.missing = true;
            let known_cat = all.iter().any(|(c, _)| glob_match(cat, c));
            let list = if known_cat {
                format!("list them with: ferret -l 'tracepoint:{cat}:*'")
            } else {
                "list the categories with: ferret -l 'tracepoint:*'".to_string()
            };
            if wild(cat) || wild(event) {
                return Err(Diagnostic::error(
                    ap.span,
                    format!("no tracepoint matches tracepoint:{cat}:{event}"),
                )
                .with_label("matches nothing")
                .with_help(list));
            }
            let mut d = Diagnostic::error(ap.span, format!("tracepoint not found: {cat}:{event}"))
                .with_label("no such tracepoint");
            let full = format!("{cat}:{event}");
            let names: Vec<String> = all.iter().map(|(c, e)| format!("{c}:{e}")).collect();
            if let Some(best) = closest(&full, names.iter().map(String::as_str)) {
                d = d.with_help(format!("did you mean 'tracepoint:{best}'?"));
            } else {
                d = d.with_help(list);
            }
            return Err(d);
        }
        let mut out = Vec::with_capacity(matches.len());
        for (c, e) in matches {
            let Some(text) = self.target.tracepoint_format(&c, &e) else {
                return Err(Diagnostic::error(
                    ap.span,
                    format!("cannot read the format of tracepoint {c}:{e}"),
                ));
            };
            out.push(ResolvedProbe {
                name: format!("tracepoint:{c}:{e}"),
                attach: Attach::Tracepoint {
                    category: c,
                    event: e,
                },
                format: Some(TracepointFormat::parse(&text)),
            });
        }
        Ok(out)
    }
}

/// `software:EVENT[:COUNT]` and `hardware:EVENT[:COUNT]`; a missing or zero
/// count is the event's default period, as in bpftrace.
fn perf_event(
    ap: &AttachPoint,
    kind: &str,
    events: &[PerfEventName],
    rest: &str,
) -> Result<Vec<ResolvedProbe>, Diagnostic> {
    let list = format!("list them with: ferret -l '{kind}:*'");
    let err = |msg: String, label: &str| Diagnostic::error(ap.span, msg).with_label(label);
    let (event, count) = match rest.split_once(':') {
        Some((e, c)) => (e, Some(c)),
        None => (rest, None),
    };
    if event.is_empty() {
        return Err(err(
            format!("{kind} probe needs an event: {kind}:EVENT[:COUNT]"),
            "no event",
        )
        .with_help(list));
    }
    if event.contains(['*', '?']) {
        return Err(err(
            format!("wildcards are not allowed in {kind} probes"),
            "wildcard",
        )
        .with_help(list));
    }
    let Some(found) = events
        .iter()
        .find(|e| e.name == event || (!e.alias.is_empty() && e.alias == event))
    else {
        let names = events
            .iter()
            .flat_map(|e| [e.name, e.alias])
            .filter(|n| !n.is_empty());
        let d = err(format!("'{event}' is not a {kind} event"), "unknown event");
        return Err(match closest(event, names) {
            Some(best) => d.with_help(format!("did you mean '{kind}:{best}'?")),
            None => d.with_help(list),
        });
    };
    let count = match count {
        None => 0,
        Some(c) => c.trim().parse::<u64>().map_err(|_| {
            err(
                format!("{kind} probe count must be a positive integer, not '{c}'"),
                "invalid count",
            )
            .with_help(format!("for example {kind}:{event}:1000"))
        })?,
    };
    let mut name = format!("{kind}:{event}");
    if count != 0 {
        name.push_str(&format!(":{count}"));
    }
    let period = if count == 0 {
        found.default_period
    } else {
        count
    };
    let event = found.name.to_string();
    Ok(vec![ResolvedProbe {
        name,
        attach: if kind == "software" {
            Attach::Software { event, period }
        } else {
            Attach::Hardware { event, period }
        },
        format: None,
    }])
}

impl ProbeResolver<'_> {
    /// `rawtracepoint:[module:]event`, globbed against the raw tracepoints
    /// the kernel's BTF describes (or, without BTF, its tracepoints).
    fn raw_tracepoint(
        &mut self,
        ap: &AttachPoint,
        rest: &str,
    ) -> Result<Vec<ResolvedProbe>, Diagnostic> {
        let (module, event) = rest.split_once(':').unwrap_or(("*", rest));
        if event.is_empty() {
            return Err(Diagnostic::error(
                ap.span,
                format!("invalid raw tracepoint '{}'", ap.text),
            )
            .with_label("expected rawtracepoint:EVENT")
            .with_help("for example rawtracepoint:sched_switch"));
        }
        let target = self.target;
        // The kernel's own events, then those of modules with BTF.
        let with_btf = target.btf_modules();
        let modules: Vec<&str> = std::iter::once("vmlinux")
            .chain(with_btf.iter().map(String::as_str))
            .filter(|m| glob_match(module, m))
            .collect();
        if modules.is_empty() {
            self.missing = true;
            let mut d = Diagnostic::error(
                ap.span,
                format!("no raw tracepoint matches {module}:{event}"),
            )
            .with_label("no module with BTF of this name");
            d = match closest(module, with_btf.iter().map(String::as_str)) {
                Some(best) => d.with_help(format!("did you mean '{best}'?")),
                None if with_btf.is_empty() => d.with_help(format!(
                    "no /sys/kernel/btf/{module}: of the kernel's raw tracepoints only vmlinux's \
                     have BTF here (is the module loaded?)"
                )),
                None => d.with_help(format!(
                    "modules with BTF (in /sys/kernel/btf): {}",
                    with_btf.join(", ")
                )),
            };
            return Err(d);
        }
        let mut all: Vec<(String, String)> = Vec::new();
        for m in modules {
            if m == "vmlinux" {
                let events = self
                    .raw_tracepoints
                    .get_or_insert_with(|| match target.btf() {
                        Ok(btf) => btf.raw_tracepoints(),
                        Err(_) => {
                            let mut events: Vec<String> =
                                target.tracepoints().into_iter().map(|(_, e)| e).collect();
                            events.sort();
                            events.dedup();
                            events
                        }
                    });
                all.extend(events.iter().map(|e| (m.to_string(), e.clone())));
                // A kernel event named in full: no module's BTF needs reading.
                if !event.contains(['*', '?']) && all.iter().any(|(_, e)| e == event) {
                    break;
                }
            } else if let Ok(btf) = target.module_btf(m) {
                all.extend(
                    btf.raw_tracepoints()
                        .into_iter()
                        .map(|e| (m.to_string(), e)),
                );
            }
        }
        let matches: Vec<(String, String)> = all
            .iter()
            .filter(|(_, e)| glob_match(event, e))
            .cloned()
            .collect();
        if matches.is_empty() {
            self.missing = true;
            let wild = event.contains(['*', '?']);
            let mut d = Diagnostic::error(
                ap.span,
                if wild {
                    format!("no raw tracepoint matches {event}")
                } else {
                    format!("raw tracepoint not found: {event}")
                },
            )
            .with_label("no such raw tracepoint");
            d = match closest(event, all.iter().map(|(_, e)| e.as_str())) {
                Some(best) if !wild => d.with_help(format!("did you mean 'rawtracepoint:{best}'?")),
                _ => d.with_help("list them with: ferret -l 'rawtracepoint:*'"),
            };
            return Err(d);
        }
        Ok(matches
            .into_iter()
            .map(|(module, e)| {
                let btf = if module == "vmlinux" {
                    target.btf().ok()
                } else {
                    target.module_btf(&module).ok()
                };
                ResolvedProbe {
                    name: format!("rawtracepoint:{module}:{e}"),
                    attach: Attach::RawTracepoint {
                        btf_id: btf.and_then(|b| b.raw_tracepoint(&e)?.btf_trace_id),
                        module,
                        event: e,
                    },
                    format: None,
                }
            })
            .collect())
    }
}

/// `*` and `?` globbing, as bpftrace matches probe names.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

fn parse_count(s: &str) -> Result<u64, String> {
    let s = s.trim();
    match s.parse::<u64>() {
        Ok(0) => Err("the rate must be greater than zero".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{s}' is not a positive integer")),
    }
}

/// `s:5`, `ms:100`, `us:10`, `hz:4`, `5s`, `100ms`, or bare ns (`profile:N`
/// when `bare_ns`), as a period in nanoseconds.
fn parse_period(rest: &str, bare_ns: bool) -> Result<u64, String> {
    const UNITS: &[(&str, u64)] = &[
        ("ns", 1),
        ("us", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ];
    let (unit, n) = if let Some((unit, n)) = rest.split_once(':') {
        (unit.to_ascii_lowercase(), n.to_string())
    } else {
        let digits = rest.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let unit = rest[digits.len()..].to_ascii_lowercase();
        if unit.is_empty() && !bare_ns {
            return Err("missing unit (s, ms, us or hz)".into());
        }
        (
            if unit.is_empty() { "ns".into() } else { unit },
            digits.to_string(),
        )
    };
    let n = parse_count(&n)?;
    if unit == "hz" {
        return Ok((1_000_000_000 / n).max(1));
    }
    let Some((_, mult)) = UNITS.iter().find(|(u, _)| *u == unit) else {
        return Err(format!("unknown unit '{unit}'"));
    };
    n.checked_mul(*mult)
        .ok_or_else(|| "period too large".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globbing() {
        assert!(glob_match("sys_enter_*", "sys_enter_openat"));
        assert!(glob_match("sched_sw?tch", "sched_switch"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("sys_exit_*", "sys_enter_openat"));
        assert!(glob_match("*open*", "sys_enter_openat"));
    }

    fn resolve(text: &str) -> Result<Vec<ResolvedProbe>, Diagnostic> {
        let target = crate::target::FixedTarget::default();
        let ap = AttachPoint {
            text: text.into(),
            span: ferret_syntax::Span::default(),
        };
        ProbeResolver::new(&target).resolve(&ap)
    }

    #[test]
    fn perf_event_probes_with_default_periods() {
        let one = |text: &str| {
            let mut r = resolve(text).unwrap_or_else(|d| panic!("{text}: {}", d.message));
            assert_eq!(r.len(), 1);
            let p = r.remove(0);
            (p.name, p.attach)
        };
        let sw = |event: &str, period| Attach::Software {
            event: event.into(),
            period,
        };
        let hw = |event: &str, period| Attach::Hardware {
            event: event.into(),
            period,
        };
        assert_eq!(
            one("software:page-faults:1"),
            ("software:page-faults:1".into(), sw("page-faults", 1))
        );
        assert_eq!(
            one("s:faults"),
            ("software:faults".into(), sw("page-faults", 100))
        );
        assert_eq!(
            one("software:cs:0"),
            ("software:cs".into(), sw("context-switches", 1000))
        );
        assert_eq!(one("s:cpu").1, sw("cpu-clock", 1_000_000));
        assert_eq!(one("s:task-clock").1, sw("task-clock", 1));
        assert_eq!(
            one("hardware:cycles:5000"),
            ("hardware:cycles:5000".into(), hw("cpu-cycles", 5000))
        );
        assert_eq!(one("h:branches").1, hw("branch-instructions", 100_000));
        assert_eq!(one("h:ref-cycles").1, hw("ref-cycles", 1_000_000));
        for e in SOFTWARE_EVENTS {
            assert!(
                resolve(&format!("software:{}", e.name)).is_ok(),
                "{}",
                e.name
            );
        }
        for e in HARDWARE_EVENTS {
            assert!(
                resolve(&format!("hardware:{}", e.name)).is_ok(),
                "{}",
                e.name
            );
        }
    }

    #[test]
    fn bad_perf_event_probes() {
        let msg = |text: &str| resolve(text).err().map(|d| d.message).unwrap_or_default();
        assert_eq!(
            msg("software:pagefaults"),
            "'pagefaults' is not a software event"
        );
        assert_eq!(msg("h:cycle"), "'cycle' is not a hardware event");
        assert_eq!(msg("s:*"), "wildcards are not allowed in software probes");
        assert_eq!(
            msg("hardware:"),
            "hardware probe needs an event: hardware:EVENT[:COUNT]"
        );
        assert_eq!(
            msg("s:faults:-1"),
            "software probe count must be a positive integer, not '-1'"
        );
        let help = resolve("software:page-fault").err().map(|d| d.help);
        assert_eq!(
            help,
            Some(Some("did you mean 'software:page-faults'?".to_string()))
        );
    }

    #[test]
    fn periods() {
        assert_eq!(parse_period("s:5", false), Ok(5_000_000_000));
        assert_eq!(parse_period("ms:50", false), Ok(50_000_000));
        assert_eq!(parse_period("1s", false), Ok(1_000_000_000));
        assert_eq!(parse_period("hz:4", false), Ok(250_000_000));
        assert!(parse_period("5", false).is_err());
        assert_eq!(parse_period("5000", true), Ok(5000));
        assert!(parse_period("s:0", false).is_err());
    }
}
