//! `fentry:` and `fexit:` attach points (`kfunc:`/`kretfunc:`, `f:`/`fr:`):
//! `[MODULE:]FUNCTION` with wildcards, matched against the functions the
//! kernel's BTF describes and ftrace can trace. Every match is a program
//! of its own, loaded against that function's BTF id; its probe name is
//! `fentry:MODULE:FUNCTION` (`vmlinux` for the kernel image), as bpftrace
//! names them.

use ferret_btf::NameKind;
use ferret_syntax::Diagnostic;
use ferret_syntax::ast::AttachPoint;
use ferret_syntax::diag::closest;

use crate::kprobes::Failure;
use crate::probes::{ResolvedProbe, glob_match};
use crate::program::Attach;
use crate::target::Target;

/// The kernel image, as a module name.
pub const VMLINUX: &str = "vmlinux";

/// `[MODULE:]FUNCTION` as written; `module` is a pattern (`*` when not
/// given).
#[derive(Debug, PartialEq, Eq)]
struct Spec<'a> {
    module: &'a str,
    function: &'a str,
}

fn wild(s: &str) -> bool {
    s.contains(['*', '?'])
}

fn parse(rest: &str) -> Result<Spec<'_>, String> {
    let (module, function) = match rest.split(':').collect::<Vec<_>>()[..] {
        [f] => ("*", f),
        [m, f] => (m, f),
        _ => return Err("expected FUNCTION or MODULE:FUNCTION".into()),
    };
    let name_ok = |s: &str, extra: &[char]| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(&c))
    };
    if !name_ok(function, &['.', '*', '?']) {
        return Err(if function.is_empty() {
            "the function name is missing".into()
        } else {
            format!("'{function}' is not a function name")
        });
    }
    if !name_ok(module, &['-', '*', '?']) {
        return Err(format!("'{module}' is not a module name"));
    }
    Ok(Spec { module, function })
}

fn kind(exit: bool) -> &'static str {
    if exit { "fexit" } else { "fentry" }
}

/// Checks how an `fentry:`/`fexit:` attach point is written (`rest` is what
/// follows the probe type), whether or not the kernel makes them.
pub(crate) fn check(ap: &AttachPoint, exit: bool, rest: &str) -> Result<(), Diagnostic> {
    spec(ap, exit, rest).map(|_| ())
}

fn spec<'a>(ap: &AttachPoint, exit: bool, rest: &'a str) -> Result<Spec<'a>, Diagnostic> {
    let kind = kind(exit);
    parse(rest).map_err(|msg| {
        Diagnostic::error(ap.span, format!("invalid {kind} '{}': {msg}", ap.text))
            .with_label("here")
            .with_help(format!(
                "write it as {kind}:vfs_read, {kind}:vfs_* or {kind}:MODULE:FUNCTION"
            ))
    })
}

/// The functions an attach point matches, as `(module, function, BTF id)`
/// in `traceable`'s order (`(function, module)` pairs from
/// `available_filter_functions`, module empty for the kernel's own). With
/// no such list (no tracefs), the BTF's functions are the candidates.
fn matches(
    target: &dyn Target,
    traceable: &[(String, String)],
    spec: &Spec<'_>,
) -> Result<Vec<(String, String, u32)>, String> {
    let vmlinux = target.btf()?;
    let id_in = |module: &str, function: &str| -> Option<u32> {
        if module == VMLINUX {
            return vmlinux.find(NameKind::Func, function);
        }
        let btf = target.module_btf(module).ok()?;
        btf.find(NameKind::Func, function)
            .filter(|&id| btf.owns(id))
    };
    let module_of = |m: &str| if m.is_empty() { VMLINUX } else { m }.to_string();
    if !wild(spec.function) {
        // One function: where the kernel's own lookup finds it, the kernel
        // image first. Whether it can be traced is the kernel's to say.
        let listed = traceable
            .iter()
            .filter(|(f, _)| f == spec.function)
            .map(|(_, m)| module_of(m));
        let with_btf = if traceable.is_empty() {
            target.btf_modules()
        } else {
            Vec::new()
        };
        let found = std::iter::once(VMLINUX.to_string())
            .chain(listed)
            .chain(with_btf)
            .filter(|m| glob_match(spec.module, m))
            .find_map(|m| Some((id_in(&m, spec.function)?, m)));
        return Ok(found
            .map(|(id, m)| (m, spec.function.to_string(), id))
            .into_iter()
            .collect());
    }
    let mut out = Vec::new();
    if traceable.is_empty() {
        // No tracefs: every function the BTF describes is a candidate.
        let modules = std::iter::once(VMLINUX.to_string())
            .chain(target.btf_modules())
            .filter(|m| glob_match(spec.module, m));
        for m in modules {
            let names = if m == VMLINUX {
                vmlinux.names(NameKind::Func)
            } else {
                match target.module_btf(&m) {
                    Ok(btf) => btf.own_names(NameKind::Func),
                    Err(_) => continue,
                }
            };
            for f in names.into_iter().filter(|f| glob_match(spec.function, f)) {
                if let Some(id) = id_in(&m, f) {
                    out.push((m.clone(), f.to_string(), id));
                }
            }
        }
    } else {
        for (f, m) in traceable {
            let m = module_of(m);
            if glob_match(spec.function, f)
                && glob_match(spec.module, &m)
                && let Some(id) = id_in(&m, f)
            {
                out.push((m, f.clone(), id));
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The concrete probes of an `fentry:`/`fexit:` attach point; `rest` is
/// what follows the probe type, `traceable` the functions ftrace can trace.
pub(crate) fn resolve(
    target: &dyn Target,
    traceable: &[(String, String)],
    ap: &AttachPoint,
    exit: bool,
    rest: &str,
) -> Result<Vec<ResolvedProbe>, Failure> {
    let kind = kind(exit);
    let spec = spec(ap, exit, rest).map_err(|diag| Failure {
        diag,
        missing: false,
    })?;
    let found = matches(target, traceable, &spec).map_err(|why| Failure {
        diag: Diagnostic::error(
            ap.span,
            format!("{kind} probes need the kernel's BTF: {why}"),
        )
        .with_label("kernel dynamic probe")
        .with_help("kprobes need no BTF: kprobe:FUNCTION"),
        missing: false,
    })?;
    let pattern = if spec.module == "*" {
        format!("{kind}:{}", spec.function)
    } else {
        format!("{kind}:{}:{}", spec.module, spec.function)
    };
    let Some((first_module, _, first_id)) = found.first() else {
        let any_wild = wild(spec.function) || spec.module != "*" && wild(spec.module);
        let mut d = if any_wild {
            Diagnostic::error(ap.span, format!("no kernel function matches {pattern}"))
                .with_label("matches nothing")
        } else {
            Diagnostic::error(
                ap.span,
                format!("no kernel function {pattern} in the kernel's BTF"),
            )
            .with_label("no such function")
        };
        // Traceable functions, or (without that list) the BTF's.
        let btf_names = match target.btf() {
            Ok(btf) if traceable.is_empty() && !any_wild => btf.names(NameKind::Func),
            _ => Vec::new(),
        };
        let suggestion = (!any_wild)
            .then(|| {
                let names = traceable.iter().map(|(f, _)| f.as_str());
                closest(spec.function, names.chain(btf_names.iter().copied()))
            })
            .flatten();
        d = match suggestion {
            Some(best) => d.with_help(format!("did you mean '{kind}:{best}'?")),
            None => d.with_help(format!("list the functions with: ferret -l '{pattern}'")),
        };
        return Err(Failure {
            diag: d,
            missing: true,
        });
    };
    if let Err(why) = target.fentry(first_module, *first_id) {
        return Err(Failure {
            diag: Diagnostic::error(
                ap.span,
                format!("{kind} probes are not available on this kernel"),
            )
            .with_label("kernel dynamic probe")
            .with_note(why),
            missing: true,
        });
    }
    Ok(found
        .into_iter()
        .map(|(module, function, btf_id)| ResolvedProbe {
            name: format!("{kind}:{module}:{function}"),
            attach: Attach::Fentry {
                module,
                function,
                btf_id,
                exit,
            },
            format: None,
        })
        .collect())
}

/// `-l 'fentry:PATTERN'`: the probes an attach point's pattern lists, as
/// `fentry:MODULE:FUNCTION`, without asking whether the kernel can load
/// them.
pub fn list(target: &dyn Target, traceable: &[(String, String)], pattern: &str) -> Vec<String> {
    let (kind_text, rest) = pattern.split_once(':').unwrap_or((pattern, "*"));
    let exit = matches!(kind_text, "fexit" | "fr" | "kretfunc");
    let rest = if rest.is_empty() { "*" } else { rest };
    let Ok(spec) = parse(rest) else {
        return Vec::new();
    };
    matches(target, traceable, &spec)
        .unwrap_or_default()
        .into_iter()
        .map(|(m, f, _)| format!("{}:{m}:{f}", kind(exit)))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ferret_btf::{Btf, BtfBuilder};

    use super::*;
    use crate::target::FixedTarget;

    fn target(fentry: bool) -> FixedTarget {
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4, true);
        let proto = b.func_proto(int, &[("count", int)]);
        for f in ["vfs_read", "vfs_readv", "vfs_write", "not_traced"] {
            b.func(f, proto);
        }
        let vmlinux = Arc::new(Btf::parse(b.finish()).expect("btf"));
        let mut m = BtfBuilder::split(vmlinux.last_id(), b.strings_len());
        let mproto = m.func_proto(int, &[("x", int)]);
        m.func("loop_control_ioctl", mproto);
        let module = Btf::parse_split(m.finish(), Arc::clone(&vmlinux)).expect("module btf");
        let f = |name: &str, module: &str| (name.to_string(), module.to_string());
        FixedTarget {
            btf: Some(vmlinux),
            modules: [("loop".to_string(), Arc::new(module))].into(),
            fentry,
            kernel_functions: vec![
                f("loop_control_ioctl", "loop"),
                f("vfs_read", ""),
                f("vfs_readv", ""),
                f("vfs_write", ""),
            ],
            ..Default::default()
        }
    }

    fn resolve_text(t: &FixedTarget, text: &str) -> Result<Vec<ResolvedProbe>, String> {
        let ap = AttachPoint {
            text: text.to_string(),
            span: Default::default(),
        };
        let (kind, rest) = text.split_once(':').unwrap_or_default();
        let functions = t.kernel_functions();
        resolve(t, &functions, &ap, kind == "fexit", rest).map_err(|f| f.diag.message)
    }

    fn names(text: &str) -> Vec<String> {
        resolve_text(&target(true), text)
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.name)
            .collect()
    }

    #[test]
    fn functions_wildcards_and_modules() {
        assert_eq!(names("fentry:vfs_read"), ["fentry:vmlinux:vfs_read"]);
        assert_eq!(names("fexit:vmlinux:vfs_read"), ["fexit:vmlinux:vfs_read"]);
        assert_eq!(
            names("fentry:vfs_read*"),
            ["fentry:vmlinux:vfs_read", "fentry:vmlinux:vfs_readv"]
        );
        assert_eq!(names("fentry:loop:*"), ["fentry:loop:loop_control_ioctl"]);
        assert_eq!(
            names("fentry:loop_control_ioctl"),
            ["fentry:loop:loop_control_ioctl"]
        );
        // In the BTF but not traceable: the kernel decides for a full name;
        // wildcards skip it.
        assert_eq!(names("fentry:not_traced"), ["fentry:vmlinux:not_traced"]);
        assert_eq!(names("fentry:not_*"), Vec::<String>::new());
        let p = &resolve_text(&target(true), "fexit:vfs_write").unwrap_or_default()[0];
        assert!(matches!(
            &p.attach,
            Attach::Fentry { module, function, exit: true, .. }
                if module == VMLINUX && function == "vfs_write"
        ));
    }

    #[test]
    fn errors() {
        let t = target(true);
        let err = |text: &str| resolve_text(&t, text).err().unwrap_or_default();
        assert_eq!(
            err("fentry:vfs_raed"),
            "no kernel function fentry:vfs_raed in the kernel's BTF"
        );
        assert_eq!(err("fentry:zz*"), "no kernel function matches fentry:zz*");
        let ap = AttachPoint {
            text: "fentry:vfs_raed".into(),
            span: Default::default(),
        };
        let help = resolve(&t, &t.kernel_functions(), &ap, false, "vfs_raed")
            .err()
            .map(|f| f.diag.help);
        assert_eq!(
            help,
            Some(Some("did you mean 'fentry:vfs_read'?".to_string()))
        );
        assert!(err("fentry:a:b:c").starts_with("invalid fentry"));
        assert_eq!(
            resolve_text(&target(false), "fexit:vfs_read").err(),
            Some("fexit probes are not available on this kernel".to_string())
        );
        let no_btf = FixedTarget::default();
        assert!(
            resolve_text(&no_btf, "fentry:vfs_read")
                .err()
                .unwrap_or_default()
                .starts_with("fentry probes need the kernel's BTF")
        );
    }

    #[test]
    fn listing() {
        let t = target(true);
        let functions = t.kernel_functions();
        assert_eq!(
            list(&t, &functions, "fentry:vfs_*"),
            [
                "fentry:vmlinux:vfs_read",
                "fentry:vmlinux:vfs_readv",
                "fentry:vmlinux:vfs_write"
            ]
        );
        assert_eq!(
            list(&t, &functions, "fexit:*:loop_*"),
            ["fexit:loop:loop_control_ioctl"]
        );
    }
}
