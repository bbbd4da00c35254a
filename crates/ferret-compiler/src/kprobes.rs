//! `kprobe:` and `kretprobe:` attach points: `FUNC`, `FUNC+OFFSET`,
//! `MODULE:FUNC`, and wildcards matched against the functions ftrace can
//! trace (`available_filter_functions`, through the target).
//!
//! Every matched function is first a probe of its own (its name is what
//! `probe` says); [`merge_wildcards`] then folds the functions one wildcard
//! matched into one program, which the runtime attaches to all of them at
//! once.

use ferret_syntax::Diagnostic;
use ferret_syntax::ast::AttachPoint;
use ferret_syntax::diag::closest;

use crate::probes::{ResolvedProbe, glob_match};
use crate::program::Attach;
use crate::target::Target;

/// Why an attach point resolved to nothing; `missing` when the function
/// does not exist (which `missing_probes` may forgive).
pub(crate) struct Failure {
    pub diag: Diagnostic,
    pub missing: bool,
}

/// `[MODULE:]FUNCTION[+OFFSET]` as written.
#[derive(Debug, PartialEq, Eq)]
struct Spec<'a> {
    module: Option<&'a str>,
    function: &'a str,
    offset: u64,
}

fn wild(s: &str) -> bool {
    s.contains(['*', '?'])
}

fn parse(rest: &str) -> Result<Spec<'_>, String> {
    let (module, function) = match rest.split(':').collect::<Vec<_>>()[..] {
        [f] => (None, f),
        [m, f] => (Some(m), f),
        _ => return Err("expected FUNCTION, FUNCTION+OFFSET or MODULE:FUNCTION".into()),
    };
    let (function, offset) = match function.split_once('+') {
        Some((f, off)) => {
            let parsed = match off.strip_prefix("0x").or_else(|| off.strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => off.parse(),
            };
            (
                f,
                parsed.map_err(|_| format!("'{off}' is not an offset in bytes"))?,
            )
        }
        None => (function, 0),
    };
    if function.is_empty() {
        return Err("the function name is missing".into());
    }
    let name_ok = |s: &str, extra: &[char]| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(&c))
    };
    if !name_ok(function, &['.', '*', '?']) {
        return Err(format!("'{function}' is not a function name"));
    }
    if let Some(m) = module
        && (m.is_empty() || !name_ok(m, &['-', '*', '?']))
    {
        return Err(format!("'{m}' is not a module name"));
    }
    if offset != 0 && (wild(function) || module.is_some_and(wild)) {
        return Err("an offset needs one function, not a wildcard".into());
    }
    Ok(Spec {
        module,
        function,
        offset,
    })
}

/// The probe's name: `kprobe:FUNC`, `kprobe:MODULE:FUNC` for a module's
/// function, `kprobe:FUNC+OFFSET`.
fn probe_name(kind: &str, module: &str, function: &str, offset: u64) -> String {
    let mut name = if module.is_empty() {
        format!("{kind}:{function}")
    } else {
        format!("{kind}:{module}:{function}")
    };
    if offset != 0 {
        name.push_str(&format!("+{offset}"));
    }
    name
}

/// Checks how a `kprobe:`/`kretprobe:` attach point is written (`rest` is
/// what follows the probe type), whether or not the kernel makes kprobes.
pub(crate) fn check(ap: &AttachPoint, retprobe: bool, rest: &str) -> Result<(), Diagnostic> {
    spec(ap, retprobe, rest).map(|_| ())
}

fn spec<'a>(ap: &AttachPoint, retprobe: bool, rest: &'a str) -> Result<Spec<'a>, Diagnostic> {
    let kind = if retprobe { "kretprobe" } else { "kprobe" };
    let spec = parse(rest).map_err(|msg| {
        Diagnostic::error(ap.span, format!("invalid {kind} '{}': {msg}", ap.text))
            .with_label("here")
            .with_help(format!(
                "write it as {kind}:vfs_read, {kind}:vfs_*{} or {kind}:MODULE:FUNCTION",
                if retprobe { "" } else { ", kprobe:vfs_read+16" }
            ))
    })?;
    if retprobe && spec.offset != 0 {
        return Err(Diagnostic::error(
            ap.span,
            format!("a kretprobe has no offset: '{}'", ap.text),
        )
        .with_label("offset not allowed")
        .with_help(
            "a return probe fires when the function returns; \
             use kprobe:FUNCTION+OFFSET for a point inside it",
        ));
    }
    Ok(spec)
}

/// The concrete probes of a `kprobe:`/`kretprobe:` attach point; `rest` is
/// what follows the probe type, `functions` the target's traceable ones.
pub(crate) fn resolve(
    target: &dyn Target,
    functions: &[(String, String)],
    ap: &AttachPoint,
    retprobe: bool,
    rest: &str,
) -> Result<Vec<ResolvedProbe>, Failure> {
    let kind = if retprobe { "kretprobe" } else { "kprobe" };
    let spec = spec(ap, retprobe, rest).map_err(|diag| Failure {
        diag,
        missing: false,
    })?;
    let module_ok = |m: &str| match spec.module {
        None => true,
        Some(pat) => glob_match(pat, m),
    };
    let matches: Vec<(&str, &str)> = functions
        .iter()
        .filter(|(f, m)| glob_match(spec.function, f) && module_ok(m))
        .map(|(f, m)| (f.as_str(), m.as_str()))
        .collect();
    let any_wild = wild(spec.function) || spec.module.is_some_and(wild);
    let chosen: Vec<(&str, &str)> = if any_wild {
        matches
    } else if let Some(&first) = matches.first() {
        // A name in several modules (or in the kernel and a module) is
        // probed where the kernel's own lookup finds it: the kernel first.
        vec![
            matches
                .iter()
                .copied()
                .find(|(_, m)| m.is_empty())
                .unwrap_or(first),
        ]
    } else if spec.module.is_none() && target.kernel_symbol(spec.function).is_some() {
        // Not traceable by ftrace, but a kernel symbol: kprobes may still
        // attach (the kernel refuses if it cannot).
        vec![(spec.function, "")]
    } else {
        Vec::new()
    };
    if chosen.is_empty() {
        let pattern = match spec.module {
            Some(m) => format!("{kind}:{m}:{}", spec.function),
            None => format!("{kind}:{}", spec.function),
        };
        let mut d = if any_wild {
            Diagnostic::error(ap.span, format!("no kernel function matches {pattern}"))
                .with_label("matches nothing")
        } else {
            Diagnostic::error(ap.span, format!("no kernel function {pattern}"))
                .with_label("no such function")
        };
        let names = functions.iter().map(|(f, _)| f.as_str());
        d = match (any_wild, closest(spec.function, names)) {
            (false, Some(best)) => d.with_help(format!("did you mean '{kind}:{best}'?")),
            _ => d.with_help(format!("list the functions with: ferret -l '{pattern}'")),
        };
        return Err(Failure {
            diag: d,
            missing: true,
        });
    }
    Ok(chosen
        .into_iter()
        .map(|(function, module)| ResolvedProbe {
            name: probe_name(kind, module, function, spec.offset),
            attach: Attach::Kprobe {
                functions: vec![function.to_string()],
                module: (!module.is_empty()).then(|| module.to_string()),
                offset: spec.offset,
                retprobe,
            },
            format: None,
        })
        .collect())
}

/// Folds the kernel-image functions each wildcard attach point matched
/// into one program (named after the attach point) placed where the first
/// of them was. A module's functions keep a program each: kprobe_multi
/// links find only the kernel image's functions by name on older kernels.
pub(crate) fn merge_wildcards(resolved: Vec<(&str, ResolvedProbe)>) -> Vec<(&str, ResolvedProbe)> {
    let mergeable = |ap: &str, p: &ResolvedProbe| {
        wild(ap)
            && matches!(
                &p.attach,
                Attach::Kprobe {
                    module: None,
                    offset: 0,
                    ..
                }
            )
    };
    let mut out: Vec<(&str, ResolvedProbe)> = Vec::with_capacity(resolved.len());
    // Index in `out` of each wildcard's merged program.
    let mut merged: Vec<(&str, bool, usize)> = Vec::new();
    for (ap, p) in resolved {
        if !mergeable(ap, &p) {
            out.push((ap, p));
            continue;
        }
        let Attach::Kprobe {
            functions,
            retprobe,
            ..
        } = &p.attach
        else {
            continue;
        };
        let retprobe = *retprobe;
        match merged.iter().find(|(a, r, _)| *a == ap && *r == retprobe) {
            Some(&(_, _, at)) => {
                if let Attach::Kprobe { functions: all, .. } = &mut out[at].1.attach {
                    all.extend(functions.iter().cloned());
                }
            }
            None => {
                merged.push((ap, retprobe, out.len()));
                out.push((ap, p));
            }
        }
    }
    for &(ap, retprobe, at) in &merged {
        if let Attach::Kprobe { functions, .. } = &out[at].1.attach
            && functions.len() > 1
        {
            let kind = if retprobe { "kretprobe" } else { "kprobe" };
            let rest = ap.split_once(':').map_or(ap, |(_, r)| r);
            out[at].1.name = format!("{kind}:{rest}");
        }
    }
    out
}

/// The single-function programs a merged program stands for; none for
/// any other probe.
pub(crate) fn split(probe: &ResolvedProbe) -> Vec<ResolvedProbe> {
    let Attach::Kprobe {
        functions,
        retprobe,
        ..
    } = &probe.attach
    else {
        return Vec::new();
    };
    if functions.len() < 2 {
        return Vec::new();
    }
    let kind = if *retprobe { "kretprobe" } else { "kprobe" };
    functions
        .iter()
        .map(|f| ResolvedProbe {
            name: probe_name(kind, "", f, 0),
            attach: Attach::Kprobe {
                functions: vec![f.clone()],
                module: None,
                offset: 0,
                retprobe: *retprobe,
            },
            format: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::FixedTarget;

    fn target() -> FixedTarget {
        let f = |name: &str, module: &str| (name.to_string(), module.to_string());
        FixedTarget {
            kprobes: true,
            kernel_functions: vec![
                f("vfs_read", ""),
                f("vfs_readv", ""),
                f("vfs_write", ""),
                f("do_nanosleep", ""),
                f("nf_conntrack_in", "nf_conntrack"),
                f("vfs_read", "overlay"),
            ],
            symbols: [("not_traceable".to_string(), 0xffff_ffff_8100_0000)].into(),
            ..Default::default()
        }
    }

    fn resolve_text(text: &str) -> Result<Vec<ResolvedProbe>, String> {
        let t = target();
        let ap = AttachPoint {
            text: text.to_string(),
            span: Default::default(),
        };
        let (kind, rest) = text.split_once(':').unwrap();
        resolve(&t, &t.kernel_functions(), &ap, kind.starts_with("kr"), rest)
            .map_err(|f| f.diag.message)
    }

    fn names(text: &str) -> Vec<String> {
        resolve_text(text)
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect()
    }

    #[test]
    fn specs() {
        assert_eq!(
            parse("vfs_read+0x10"),
            Ok(Spec {
                module: None,
                function: "vfs_read",
                offset: 16
            })
        );
        assert_eq!(
            parse("nf_conntrack:nf_conntrack_in"),
            Ok(Spec {
                module: Some("nf_conntrack"),
                function: "nf_conntrack_in",
                offset: 0
            })
        );
        assert_eq!(parse("foo.isra.0+7").map(|s| s.offset), Ok(7));
        assert!(parse("").is_err());
        assert!(parse("a:b:c").is_err());
        assert!(parse("vfs_*+4").is_err());
        assert!(parse("vfs_read+x").is_err());
        assert!(parse("vfs read").is_err());
    }

    #[test]
    fn functions_wildcards_and_modules() {
        assert_eq!(names("kprobe:vfs_read"), ["kprobe:vfs_read"]);
        assert_eq!(names("kprobe:vfs_read+16"), ["kprobe:vfs_read+16"]);
        assert_eq!(
            names("kprobe:vfs_read*"),
            [
                "kprobe:vfs_read",
                "kprobe:overlay:vfs_read",
                "kprobe:vfs_readv"
            ]
        );
        assert_eq!(
            names("kretprobe:nf_conntrack:*"),
            ["kretprobe:nf_conntrack:nf_conntrack_in"]
        );
        assert_eq!(names("kprobe:not_traceable"), ["kprobe:not_traceable"]);
        let p = &resolve_text("kprobe:overlay:vfs_read").unwrap()[0];
        assert_eq!(
            p.attach,
            Attach::Kprobe {
                functions: vec!["vfs_read".into()],
                module: Some("overlay".into()),
                offset: 0,
                retprobe: false
            }
        );
    }

    #[test]
    fn errors() {
        let err = |t: &str| resolve_text(t).err().unwrap_or_default();
        assert_eq!(err("kprobe:vfs_raed"), "no kernel function kprobe:vfs_raed");
        assert_eq!(err("kprobe:zz*"), "no kernel function matches kprobe:zz*");
        assert_eq!(
            err("kretprobe:vfs_read+4"),
            "a kretprobe has no offset: 'kretprobe:vfs_read+4'"
        );
        assert!(err("kprobe:a:b:c").starts_with("invalid kprobe"));
    }

    #[test]
    fn wildcards_fold_into_one_program() {
        let texts = ["kprobe:vfs_read*", "kprobe:do_nanosleep", "kretprobe:vfs_*"];
        let resolved: Vec<(&str, ResolvedProbe)> = texts
            .iter()
            .flat_map(|t| resolve_text(t).unwrap().into_iter().map(move |p| (*t, p)))
            .collect();
        let merged = merge_wildcards(resolved);
        let summary: Vec<(String, usize)> = merged
            .iter()
            .map(|(_, p)| (p.name.clone(), p.attach.probe_count()))
            .collect();
        assert_eq!(
            summary,
            [
                ("kprobe:vfs_read*".to_string(), 2),
                ("kprobe:overlay:vfs_read".to_string(), 1),
                ("kprobe:do_nanosleep".to_string(), 1),
                ("kretprobe:vfs_*".to_string(), 3),
                ("kretprobe:overlay:vfs_read".to_string(), 1),
            ]
        );
    }
}
