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

/// Caches what the target says about tracepoints across all attach points
/// of a program, so a wildcard over 700 events lists them once.
pub struct ProbeResolver<'t> {
    target: &'t dyn Target,
    tracepoints: Option<Vec<(String, String)>>,
}

impl<'t> ProbeResolver<'t> {
    pub fn new(target: &'t dyn Target) -> Self {
        Self {
            target,
            tracepoints: None,
        }
    }

    pub fn resolve(&mut self, ap: &AttachPoint) -> Result<Vec<ResolvedProbe>, Diagnostic> {
        let text = ap.text.as_str();
        let err = |msg: String| Diagnostic::error(ap.span, msg);
        let lower = text.to_ascii_lowercase();
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
        let provider_lc = provider.to_ascii_lowercase();
        match provider_lc.as_str() {
            "tracepoint" | "t" => self.tracepoint(ap, rest),
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
            "kprobe" | "k" | "kretprobe" | "kr" | "fentry" | "f" | "kfunc" | "fexit" | "fr"
            | "kretfunc" => {
                let d = err(format!(
                    "{provider_lc} probes are not supported by this build of ferret yet"
                ))
                .with_label("kernel dynamic probe");
                let exit = matches!(
                    provider_lc.as_str(),
                    "kretprobe" | "kr" | "fexit" | "fr" | "kretfunc"
                );
                Err(match self.syscall_tracepoint_for(rest, exit) {
                    Some(tp) => d.with_help(format!("the syscall has a tracepoint: use '{tp}'")),
                    None => d.with_help(
                        "use a tracepoint where one covers the event (ferret -l 'tracepoint:*')",
                    ),
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
