//! `ferret -l [PATTERN]`: the probes this kernel offers.

use std::io::Write;

use ferret_compiler::TracepointFormat;
use ferret_compiler::probes::{HARDWARE_EVENTS, PerfEventName, SOFTWARE_EVENTS, glob_match};
use ferret_kernel::tracefs;

use crate::Failure;

/// Probe kinds that need no enumeration from the kernel, listed as
/// bpftrace lists them.
const FIXED: &[&str] = &["begin", "end"];

/// Timers, listed after the hardware events (bpftrace lists probe kinds
/// alphabetically).
const TIMERS: &[&str] = &[
    "interval:hz:",
    "interval:ms:",
    "interval:s:",
    "interval:us:",
    "profile:hz:",
    "profile:ms:",
    "profile:s:",
    "profile:us:",
];

/// Prints every probe matching `pattern` (a glob over full probe names;
/// a pattern without a probe type also matches tracepoints by
/// `category:event`). With `verbose`, tracepoint fields follow each name.
pub fn list(pattern: &str, verbose: bool) -> Result<(), Failure> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let pattern = expand_alias(pattern);
    if let Some(names) = user_probes(&pattern) {
        for name in names {
            let _ = writeln!(out, "{name}");
        }
        let _ = out.flush();
        return Ok(());
    }
    let fixed = FIXED
        .iter()
        .map(|s| s.to_string())
        .chain(perf_events("hardware", HARDWARE_EVENTS))
        .chain(TIMERS.iter().map(|s| s.to_string()))
        .chain(perf_events("software", SOFTWARE_EVENTS));
    for name in fixed {
        if glob_match(&pattern, &name) {
            let _ = writeln!(out, "{name}");
        }
    }
    list_kprobes(&pattern, &mut out)?;
    list_fentry(&pattern, verbose, &mut out)?;
    let wants_tracepoints = pattern == "*"
        || pattern.starts_with("tracepoint:")
        || !pattern.contains(':')
        || pattern.matches(':').count() == 1;
    if wants_tracepoints {
        let mount = ferret_kernel::ensure_tracefs().map_err(|e| Failure::Kernel(e.to_string()))?;
        let all =
            tracefs::list_tracepoints(&mount.path).map_err(|e| Failure::Kernel(e.to_string()))?;
        let bare = !pattern.starts_with("tracepoint:");
        for (cat, event) in all {
            let full = format!("tracepoint:{cat}:{event}");
            let short = format!("{cat}:{event}");
            if glob_match(&pattern, &full) || (bare && glob_match(&pattern, &short)) {
                let _ = writeln!(out, "{full}");
                if verbose && let Ok(text) = tracefs::read_format(&mount.path, &cat, &event) {
                    for f in TracepointFormat::parse(&text).fields {
                        let _ = writeln!(out, "    {}", field_decl(&f));
                    }
                }
            }
        }
    }
    if pattern.starts_with("rawtracepoint:") {
        list_raw_tracepoints(&pattern, verbose, &mut out)?;
    }
    let _ = out.flush();
    Ok(())
}

/// `kprobe:FUNCTION` (`kprobe:MODULE:FUNCTION` for a module's) for every
/// function kprobes can trace, when the kernel makes kprobes; `kretprobe:`
/// alike when the pattern asks for those.
fn list_kprobes(pattern: &str, out: &mut impl Write) -> Result<(), Failure> {
    let kinds: &[&str] = if pattern.starts_with("kretprobe:") {
        &["kretprobe"]
    } else if pattern.starts_with("kprobe:") || pattern == "*" {
        &["kprobe"]
    } else {
        return Ok(());
    };
    let mount = ferret_kernel::ensure_tracefs().map_err(|e| Failure::Kernel(e.to_string()))?;
    if !ferret_kernel::probes::kprobes_available(Some(&mount.path)) {
        if pattern == "*" {
            return Ok(());
        }
        return Err(Failure::Kernel(
            "kprobes are not available on this kernel (CONFIG_KPROBES is off)".into(),
        ));
    }
    let functions =
        tracefs::traceable_functions(&mount.path).map_err(|e| Failure::Kernel(e.to_string()))?;
    for kind in kinds {
        for f in &functions {
            let name = if f.module.is_empty() {
                format!("{kind}:{}", f.name)
            } else {
                format!("{kind}:{}:{}", f.module, f.name)
            };
            if glob_match(pattern, &name) {
                let _ = writeln!(out, "{name}");
            }
        }
    }
    Ok(())
}

/// `fentry:MODULE:FUNCTION` for every function the kernel's BTF describes
/// and ftrace can trace (whether or not this kernel makes BPF
/// trampolines); `fexit:` alike. With `verbose`, their arguments (and an
/// fexit's `retval`).
fn list_fentry(pattern: &str, verbose: bool, out: &mut impl Write) -> Result<(), Failure> {
    let kinds: &[&str] = if pattern == "*" {
        &["fentry", "fexit"]
    } else if pattern.starts_with("fentry:") {
        &["fentry"]
    } else if pattern.starts_with("fexit:") {
        &["fexit"]
    } else {
        return Ok(());
    };
    use ferret_compiler::Target as _;
    let target = crate::target::KernelTarget::new(false);
    let btf = match target.btf() {
        Ok(btf) => btf,
        Err(_) if pattern == "*" => return Ok(()),
        Err(why) => {
            return Err(Failure::Kernel(format!(
                "fentry probes need the kernel's BTF: {why}"
            )));
        }
    };
    let traceable = target.kernel_functions();
    for kind in kinds {
        let query = match pattern.split_once(':') {
            Some((_, rest)) if pattern != "*" => format!("{kind}:{rest}"),
            _ => format!("{kind}:*"),
        };
        for name in ferret_compiler::fentry::list(&target, &traceable, &query) {
            let _ = writeln!(out, "{name}");
            if !verbose {
                continue;
            }
            let mut parts = name.splitn(3, ':').skip(1);
            let (Some(module), Some(function)) = (parts.next(), parts.next()) else {
                continue;
            };
            let module_btf = if module == ferret_compiler::fentry::VMLINUX {
                Some(btf)
            } else {
                target.module_btf(module).ok()
            };
            let Some(f) = module_btf.and_then(|b| b.function(function).map(|f| (b, f))) else {
                continue;
            };
            let (b, f) = f;
            let decl = |ty: String, name: &str| {
                if ty.ends_with('*') {
                    format!("    {ty}{name}")
                } else {
                    format!("    {ty} {name}")
                }
            };
            for a in &f.args {
                let _ = writeln!(out, "{}", decl(b.type_name(a.type_id), &a.name));
            }
            if *kind == "fexit" && f.ret != 0 {
                let _ = writeln!(out, "{}", decl(b.type_name(f.ret), "retval"));
            }
        }
    }
    Ok(())
}

/// `software:page-faults:`, `software:faults:`, ... sorted by name, aliases
/// included, as bpftrace lists them.
fn perf_events(kind: &str, events: &[PerfEventName]) -> Vec<String> {
    let mut names: Vec<String> = events
        .iter()
        .flat_map(|e| [e.name, e.alias])
        .filter(|n| !n.is_empty())
        .map(|n| format!("{kind}:{n}:"))
        .collect();
    names.sort();
    names
}

/// Raw tracepoints from the kernel's BTF, as `rawtracepoint:vmlinux:EVENT`,
/// then those of loaded modules with BTF (`rawtracepoint:MODULE:EVENT`); a
/// pattern may leave out the module. With `verbose`, their arguments.
fn list_raw_tracepoints(pattern: &str, verbose: bool, out: &mut impl Write) -> Result<(), Failure> {
    let vmlinux = std::sync::Arc::new(
        ferret_btf::Btf::vmlinux().map_err(|e| Failure::Kernel(e.to_string()))?,
    );
    let mut modules: Vec<String> = std::fs::read_dir(ferret_btf::MODULES_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n != "vmlinux")
        .collect();
    modules.sort();
    // A pattern naming the module reads only the BTF of modules it matches.
    let module_glob = pattern
        .strip_prefix("rawtracepoint:")
        .and_then(|rest| rest.split_once(':'))
        .map(|(m, _)| m);
    let wanted = |m: &str| module_glob.is_none_or(|g| glob_match(g, m));
    let mut list = |module: &str, btf: &ferret_btf::Btf| {
        for event in btf.raw_tracepoints() {
            let full = format!("rawtracepoint:{module}:{event}");
            if !glob_match(pattern, &full)
                && !glob_match(pattern, &format!("rawtracepoint:{event}"))
            {
                continue;
            }
            let _ = writeln!(out, "{full}");
            if verbose && let Some(rt) = btf.raw_tracepoint(&event) {
                for arg in rt.args {
                    let _ = writeln!(out, "    {} {}", btf.type_name(arg.type_id), arg.name);
                }
            }
        }
    };
    if wanted("vmlinux") {
        list("vmlinux", &vmlinux);
    }
    for m in modules.iter().filter(|m| wanted(m)) {
        if let Ok(btf) = ferret_btf::Btf::module(m, std::sync::Arc::clone(&vmlinux)) {
            list(m, &btf);
        }
    }
    Ok(())
}

/// `uprobe:BINARY:FUNCTION`, `uretprobe:...` and `usdt:BINARY:[PROVIDER:]NAME`
/// patterns: the functions or USDT probes of the binaries BINARY names
/// (found as probes find them), sorted; None for other patterns.
fn user_probes(pattern: &str) -> Option<Vec<String>> {
    let (kind, rest) = pattern.split_once(':')?;
    let kind = match kind {
        "uprobe" | "u" => "uprobe",
        "uretprobe" | "ur" => "uretprobe",
        "usdt" | "U" => "usdt",
        _ => return None,
    };
    let (target, name) = rest.split_once(':').unwrap_or((rest, "*"));
    let mut out = Vec::new();
    for path in ferret_usym::Resolver::default().resolve(target) {
        let Ok(binary) = ferret_usym::Binary::read(&path) else {
            continue;
        };
        let path = path.display();
        if kind == "usdt" {
            for u in &binary.usdt {
                let full = format!("{}:{}", u.provider, u.name);
                if glob_match(name, &full) || glob_match(name, &u.name) {
                    out.push(format!("usdt:{path}:{full}"));
                }
            }
        } else {
            // `.part.N` pieces of split functions cannot be probed on their
            // own; bpftrace leaves them out too.
            for f in binary
                .functions
                .iter()
                .filter(|f| !f.name.contains(".part."))
            {
                if glob_match(name, &f.name) {
                    out.push(format!("{kind}:{path}:{}", f.name));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    Some(out)
}

/// `t:sched:*` → `tracepoint:sched:*`, as probes accept aliases.
fn expand_alias(pattern: &str) -> String {
    let Some((kind, rest)) = pattern.split_once(':') else {
        return pattern.to_string();
    };
    let full = match kind {
        "t" => "tracepoint",
        "i" => "interval",
        "p" => "profile",
        "s" => "software",
        "h" => "hardware",
        "rt" => "rawtracepoint",
        "k" => "kprobe",
        "kr" => "kretprobe",
        "f" | "kfunc" => "fentry",
        "fr" | "kretfunc" => "fexit",
        other => other,
    };
    format!("{full}:{rest}")
}

fn field_decl(f: &ferret_compiler::target::TracepointField) -> String {
    use ferret_compiler::target::FieldKind;
    match f.kind {
        FieldKind::CharArray { len } => format!("{} {}[{len}]", f.c_type, f.name),
        FieldKind::Array { len, .. } => format!("{} {}[{len}]", f.c_type, f.name),
        FieldKind::DataLocString | FieldKind::DataLocArray => {
            format!("__data_loc {}[] {}", f.c_type, f.name)
        }
        FieldKind::Pointer if f.c_type.ends_with('*') => format!("{}{}", f.c_type, f.name),
        _ => format!("{} {}", f.c_type, f.name),
    }
}
