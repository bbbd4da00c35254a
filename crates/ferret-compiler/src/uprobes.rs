//! `uprobe:`, `uretprobe:` and `usdt:` attach points resolved against the
//! binaries they name: files found as bpftrace finds them (paths, `$PATH`,
//! `libc`-style library names, wildcards; with `-p` the process's own
//! executable and libraries), functions by name, wildcard, `+offset` or
//! address, USDT probes by provider and name.

use std::sync::Arc;

use ferret_syntax::Diagnostic;
use ferret_syntax::ast::AttachPoint;
use ferret_syntax::diag::closest;
use ferret_usym::{Binary, Function, demangle_cpp, without_parameters};

use crate::probes::{ResolvedProbe, glob_match};
use crate::program::Attach;
use crate::target::Target;

/// What resolution needs besides the attach point.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct UserContext {
    /// `-p PID`: probes go in that process, and its files are searched.
    pub pid: Option<u32>,
    /// `--unsafe`: any file will do as a binary, and addresses need not be
    /// inside a known function.
    pub allow_unsafe: bool,
}

fn wild(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// Splits `a:b:"c:d"` at colons outside double quotes, dropping the quotes.
fn split_fields(text: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            ':' if !quoted => out.push(String::new()),
            c => out.last_mut().expect("never empty").push(c),
        }
    }
    out
}

/// A decimal or `0x` hexadecimal number.
fn parse_uint(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() => s.parse().ok(),
        None => None,
    }
}

/// Why an attach point resolved to nothing: the diagnostic, and whether
/// it names something that does not exist (which `missing_probes` may
/// forgive) rather than being malformed.
pub(crate) struct UserProbeError {
    pub diag: Diagnostic,
    pub missing: bool,
}

impl From<Diagnostic> for UserProbeError {
    fn from(diag: Diagnostic) -> Self {
        Self {
            diag,
            missing: false,
        }
    }
}

/// A binary, function or USDT probe that does not exist.
fn missing(diag: Diagnostic) -> UserProbeError {
    UserProbeError {
        diag,
        missing: true,
    }
}

/// Where in a binary a uprobe goes, as written.
enum Place {
    /// A function name, possibly with wildcards, plus an offset.
    Function { name: String, offset: u64 },
    /// A virtual address.
    Address(u64),
}

pub(crate) fn resolve(
    target: &dyn Target,
    ap: &AttachPoint,
    provider: &str,
    rest: &str,
    ctx: UserContext,
) -> Result<Vec<ResolvedProbe>, UserProbeError> {
    match provider {
        "usdt" | "U" => usdt(target, ap, rest, ctx),
        "uretprobe" | "ur" => uprobe(target, ap, rest, true, ctx),
        _ => uprobe(target, ap, rest, false, ctx),
    }
}

/// The binaries `name` resolves to, read.
fn binaries(
    target: &dyn Target,
    ap: &AttachPoint,
    kind: &str,
    name: &str,
    ctx: UserContext,
) -> Result<Vec<Arc<Binary>>, UserProbeError> {
    if name == "*" {
        // Every file the process maps; bpftrace would scan every process.
        let Some(pid) = ctx.pid else {
            return Err(
                Diagnostic::error(ap.span, format!("{kind} target '*' needs -p PID"))
                    .with_label("every binary of which process?")
                    .with_help("with -p, '*' means every file the process maps")
                    .into(),
            );
        };
        return Ok(target
            .process_binaries(pid)
            .iter()
            .filter_map(|p| target.user_binary(p).ok())
            .collect());
    }
    let paths = target.user_binaries(name, ctx.pid, ctx.allow_unsafe);
    let Some(first) = paths.first() else {
        let mut d = Diagnostic::error(
            ap.span,
            format!("{kind} target file '{name}' does not exist or is not executable"),
        )
        .with_label("no such binary");
        if name.contains('/') && !wild(name) {
            // Say what is wrong with the file itself.
            d = match target.user_binary(name) {
                Err(why) if why.starts_with("cannot read") => d
                    .with_help("give the path of an ELF executable or shared library")
                    .with_note(why),
                Err(why) => Diagnostic::error(ap.span, why)
                    .with_label("not a binary")
                    .with_help(format!(
                        "{kind} probes go in ELF executables and shared libraries"
                    )),
                Ok(_) => d.with_note(
                    "it is an ELF file, but neither a shared library nor an executable \
                     with an execute bit",
                ),
            };
        } else if !name.contains('/') {
            d = d.with_help(
                "give a path, a program in $PATH, or a library name such as libc \
                 (found in /etc/ld.so.cache)",
            );
        }
        return Err(missing(d));
    };
    // A name found in several $PATH directories means the first, as a
    // shell runs it; a wildcard means all of them.
    let chosen = if wild(name) {
        paths.clone()
    } else {
        vec![first.clone()]
    };
    chosen
        .iter()
        .map(|p| {
            target.user_binary(p).map_err(|why| {
                Diagnostic::error(ap.span, format!("cannot read {kind} target: {why}"))
                    .with_label("this binary")
                    .into()
            })
        })
        .collect()
}

fn uprobe(
    target: &dyn Target,
    ap: &AttachPoint,
    rest: &str,
    retprobe: bool,
    ctx: UserContext,
) -> Result<Vec<ResolvedProbe>, UserProbeError> {
    let kind = if retprobe { "uretprobe" } else { "uprobe" };
    let err = |msg: String, label: &str| Diagnostic::error(ap.span, msg).with_label(label);
    let usage = || {
        err(
            format!("invalid {kind} '{}'", ap.text),
            &format!("expected {kind}:BINARY:FUNCTION"),
        )
        .with_help(format!(
            "for example {kind}:/bin/bash:readline, {kind}:libc:malloc or \
             {kind}:/bin/bash:readline+4; with -p the binary may be left out"
        ))
    };
    let mut fields = split_fields(rest);
    // `cpp:ns::f` unquoted: the colons are the name's.
    if let Some(at) = fields.iter().position(|f| f == "cpp")
        && at + 2 < fields.len()
    {
        let name = fields.split_off(at + 1).join(":");
        fields.push(name);
    }
    let (bin, lang, func) = match fields.as_slice() {
        [func] if ctx.pid.is_some() => (String::new(), None, func.clone()),
        [lang, func] if ctx.pid.is_some() && lang == "cpp" => {
            (String::new(), Some(lang.clone()), func.clone())
        }
        [bin, func] => (bin.clone(), None, func.clone()),
        [bin, lang, func] => (bin.clone(), Some(lang.clone()), func.clone()),
        _ => return Err(usage().into()),
    };
    if bin.contains('@') || func.contains('@') {
        return Err(err(
            format!("{kind} at a source location needs DWARF line information, which ferret does not read"),
            "source location",
        )
        .with_help(format!("attach to the function instead: {kind}:BINARY:FUNCTION")).into());
    }
    if func.is_empty() {
        return Err(usage().into());
    }
    if let Some(lang) = &lang
        && lang != "cpp"
    {
        return Err(err(
            format!("unsupported language type: {lang}"),
            "not a language",
        )
        .with_help(format!(
            "the only language is cpp: {kind}:BINARY:cpp:\"ns::f\""
        ))
        .into());
    }
    let cpp = lang.is_some();
    let place = match func.split_once('+') {
        Some((name, off)) => {
            if off.contains('+') {
                return Err(err("cannot take more than one offset".into(), "two offsets").into());
            }
            let Some(offset) = parse_uint(off) else {
                return Err(err(format!("invalid offset '{off}'"), "not a number")
                    .with_help("write the offset in decimal or hex: FUNCTION+16 or FUNCTION+0x10")
                    .into());
            };
            if retprobe && offset != 0 {
                return Err(err(
                    "uretprobes can not be attached to a function offset".into(),
                    "offset",
                )
                .with_help("a uretprobe fires when the whole function returns: drop the offset")
                .into());
            }
            Place::Function {
                name: name.to_string(),
                offset,
            }
        }
        None => match parse_uint(&func) {
            Some(addr) => {
                if wild(&bin) {
                    return Err(err(
                        "cannot use wildcards with absolute address".into(),
                        "wildcard",
                    )
                    .into());
                }
                Place::Address(addr)
            }
            None => Place::Function {
                name: func.clone(),
                offset: 0,
            },
        },
    };
    // A target that names several files needs a match in one of them.
    let several = wild(&bin) || bin == "*";
    let mut out = Vec::new();
    for binary in binaries(target, ap, kind, &bin, ctx)? {
        let path = binary.path.to_string_lossy().into_owned();
        let list = format!("list them with: ferret -l '{kind}:{path}:*'");
        match &place {
            Place::Address(addr) => {
                let (function, offset) = match binary.function_at(*addr) {
                    Some(f) => {
                        let off = addr - f.address;
                        check_offset(target, ap, kind, &path, f, off, ctx)?;
                        (display_name(&f.name), f.file_offset + off)
                    }
                    None => {
                        let Some(offset) = binary.file_offset(*addr).filter(|_| ctx.allow_unsafe)
                        else {
                            return Err(err(
                                format!("address 0x{addr:x} is not inside any function of {path}"),
                                "no function here",
                            )
                            .with_help(
                                "give a function (and +offset), or run with --unsafe to \
                                 probe an address no symbol covers",
                            )
                            .into());
                        };
                        (format!("0x{addr:x}"), offset)
                    }
                };
                if retprobe && function_start(&binary, *addr).is_none() {
                    return Err(err(
                        "uretprobes can not be attached to a function offset".into(),
                        "not the start of a function",
                    )
                    .into());
                }
                out.push(ResolvedProbe {
                    name: format!("{kind}:{path}:{addr}"),
                    attach: Attach::Uprobe {
                        binary: path.clone(),
                        offset,
                        retprobe,
                        function_cap: crate::types::align8(function.len() as u32 + 1),
                        function,
                    },
                    format: None,
                });
            }
            Place::Function { name, offset } => {
                let matches = matching_functions(&binary, name, cpp);
                if matches.is_empty() && several {
                    continue;
                }
                if matches.is_empty() {
                    let d = if wild(name) {
                        err(
                            format!("no function of {path} matches '{name}'"),
                            "matches nothing",
                        )
                        .with_help(list)
                    } else {
                        let d = err(
                            format!("function '{name}' not found in {path}"),
                            "no such function",
                        );
                        // A library has thousands of names: only those of a
                        // length `closest` could accept and the same first
                        // letter (typos rarely start a name) are compared.
                        let slack = name.len() / 3 + 1;
                        let names = binary
                            .functions
                            .iter()
                            .map(|f| f.name.as_str())
                            .filter(|n| {
                                n.len().abs_diff(name.len()) <= slack
                                    && n.bytes().next() == name.bytes().next()
                            });
                        match closest(name, names) {
                            Some(best) => d.with_help(format!("did you mean '{best}'?")),
                            None => d.with_help(list),
                        }
                    };
                    return Err(missing(d));
                }
                for f in matches {
                    check_offset(target, ap, kind, &path, f, *offset, ctx)?;
                    let mut probe = format!("{kind}:{path}:");
                    if cpp {
                        probe.push_str("cpp:");
                    }
                    probe.push_str(&f.name);
                    if *offset != 0 {
                        probe.push_str(&format!("+{offset}"));
                    }
                    let function = display_name(&f.name);
                    out.push(ResolvedProbe {
                        name: probe,
                        attach: Attach::Uprobe {
                            binary: path.clone(),
                            offset: f.file_offset + offset,
                            retprobe,
                            function_cap: crate::types::align8(function.len() as u32 + 1),
                            function,
                        },
                        format: None,
                    });
                }
            }
        }
    }
    if out.is_empty() {
        let what = match &place {
            Place::Function { name, .. } => name.clone(),
            Place::Address(a) => format!("0x{a:x}"),
        };
        return Err(missing(
            Diagnostic::error(ap.span, format!("no file of '{bin}' has '{what}'"))
                .with_label("matches nothing")
                .with_help(format!(
                    "list the functions with: ferret -l '{kind}:{bin}:*'"
                )),
        ));
    }
    Ok(out)
}

/// Gives `func` one capacity in every uprobe of a probe block: the longest
/// function name's.
pub(crate) fn share_function_capacity<'p>(probes: impl Iterator<Item = &'p mut ResolvedProbe>) {
    let mut probes: Vec<&mut ResolvedProbe> = probes.collect();
    let longest = probes
        .iter()
        .filter_map(|p| match &p.attach {
            Attach::Uprobe { function, .. } => Some(function.len()),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    for p in &mut probes {
        if let Attach::Uprobe { function_cap, .. } = &mut p.attach {
            *function_cap = crate::types::align8(longest as u32 + 1);
        }
    }
}

/// `func`'s value: the name, demangled when it is a C++ name.
fn display_name(name: &str) -> String {
    demangle_cpp(name).unwrap_or_else(|| name.to_string())
}

fn function_start(binary: &Binary, addr: u64) -> Option<&Function> {
    binary.functions.iter().find(|f| f.address == addr)
}

/// The functions `pattern` names: by name (or glob), and for `cpp:` also
/// by demangled name, without the parameter list unless the pattern has one.
fn matching_functions<'b>(binary: &'b Binary, pattern: &str, cpp: bool) -> Vec<&'b Function> {
    if !wild(pattern)
        && !cpp
        && let Some(f) = binary.function(pattern)
    {
        return vec![f];
    }
    let with_params = pattern.contains('(');
    binary
        .functions
        .iter()
        // `.part.N` pieces of split functions are not functions of their
        // own; bpftrace's wildcards leave them out too.
        .filter(|f| !f.name.contains(".part."))
        .filter(|f| {
            if glob_match(pattern, &f.name) {
                return true;
            }
            cpp && demangle_cpp(&f.name).is_some_and(|d| {
                let d = if with_params {
                    d.as_str()
                } else {
                    without_parameters(&d)
                };
                glob_match(pattern, d)
            })
        })
        .collect()
}

/// An offset into `f` must stay inside it, and start an instruction:
/// a uprobe in the middle of one corrupts the traced program (`--unsafe`
/// skips that check, as in bpftrace).
fn check_offset(
    target: &dyn Target,
    ap: &AttachPoint,
    kind: &str,
    path: &str,
    f: &Function,
    offset: u64,
    ctx: UserContext,
) -> Result<(), Diagnostic> {
    if offset == 0 {
        return Ok(());
    }
    let force = format!(
        "use --unsafe to put the {kind} there anyway; one in the middle of an \
         instruction corrupts the traced process"
    );
    if f.size == 0 && !ctx.allow_unsafe {
        return Err(Diagnostic::error(
            ap.span,
            format!(
                "could not determine the boundary of {} (symbol has size 0)",
                f.name
            ),
        )
        .with_label("unknown size")
        .with_help(force));
    }
    if f.size != 0 && offset >= f.size {
        return Err(Diagnostic::error(
            ap.span,
            format!(
                "offset outside the function bounds ('{}' size is {})",
                f.name, f.size
            ),
        )
        .with_label("beyond the function"));
    }
    if ctx.allow_unsafe {
        return Ok(());
    }
    let at = format!("{path}:{}+{offset}", f.name);
    match target.user_instruction_boundary(path, f, offset) {
        Some(true) => Ok(()),
        Some(false) => Err(Diagnostic::error(
            ap.span,
            format!("could not add {kind} into middle of instruction: {at}"),
        )
        .with_label("not the start of an instruction")
        .with_help(force)),
        None => Err(Diagnostic::error(
            ap.span,
            format!("failed to check if {kind} is in proper place: {at}"),
        )
        .with_label("cannot read the function's code")
        .with_help(force)),
    }
}

fn usdt(
    target: &dyn Target,
    ap: &AttachPoint,
    rest: &str,
    ctx: UserContext,
) -> Result<Vec<ResolvedProbe>, UserProbeError> {
    let err = |msg: String, label: &str| Diagnostic::error(ap.span, msg).with_label(label);
    let fields = split_fields(rest);
    let (bin, provider, name) = match fields.as_slice() {
        [name] if ctx.pid.is_some() => (String::new(), "*".to_string(), name.clone()),
        // With -p, `PROVIDER:NAME` when the first word names no binary.
        [provider, name]
            if ctx.pid.is_some()
                && target
                    .user_binaries(provider, ctx.pid, ctx.allow_unsafe)
                    .is_empty() =>
        {
            (String::new(), provider.clone(), name.clone())
        }
        [bin, name] => (bin.clone(), "*".to_string(), name.clone()),
        [bin, provider, name] => (bin.clone(), provider.clone(), name.clone()),
        _ => {
            return Err(err(
                format!("invalid usdt probe '{}'", ap.text),
                "expected usdt:BINARY:[PROVIDER:]NAME",
            )
            .with_help(
                "for example usdt:/usr/bin/python3:python:function__entry; \
                 list a binary's probes with ferret -l 'usdt:BINARY:*'",
            )
            .into());
        }
    };
    if name.is_empty() {
        return Err(err(
            "usdt probe must have a target function or wildcard".into(),
            "no probe name",
        )
        .into());
    }
    let binaries: Vec<Arc<Binary>> = match (bin.is_empty(), ctx.pid) {
        (true, Some(pid)) => target
            .process_binaries(pid)
            .iter()
            .filter_map(|p| target.user_binary(p).ok())
            .collect(),
        _ => binaries(target, ap, "usdt", &bin, ctx)?,
    };
    let mut out = Vec::new();
    let mut known: Vec<String> = Vec::new();
    for binary in &binaries {
        let path = binary.path.to_string_lossy().into_owned();
        // Sites grouped by probe, probes in name order.
        let mut probes: Vec<(&str, &str)> = binary
            .usdt
            .iter()
            .filter(|u| glob_match(&provider, &u.provider) && glob_match(&name, &u.name))
            .map(|u| (u.provider.as_str(), u.name.as_str()))
            .collect();
        probes.sort_unstable();
        probes.dedup();
        known.extend(
            binary
                .usdt
                .iter()
                .map(|u| format!("{}:{}", u.provider, u.name)),
        );
        for (p, n) in probes {
            let sites = binary
                .usdt
                .iter()
                .filter(|u| u.provider == p && u.name == n);
            for (site, u) in sites.enumerate() {
                out.push(ResolvedProbe {
                    name: format!("usdt:{path}:{p}:{n}"),
                    attach: Attach::Usdt {
                        binary: path.clone(),
                        offset: u.file_offset,
                        semaphore: u.semaphore_offset,
                        args: u.args_text.clone(),
                        site: site as u32,
                    },
                    format: None,
                });
            }
        }
    }
    if out.is_empty() {
        let shown = if bin.is_empty() {
            format!("pid {}", ctx.pid.unwrap_or_default())
        } else {
            bin.clone()
        };
        let spec = if provider == "*" {
            name.clone()
        } else {
            format!("{provider}:{name}")
        };
        let mut d = err(
            format!("no USDT probe '{spec}' in {shown}"),
            "no such probe",
        );
        known.sort_unstable();
        known.dedup();
        // Compared by name alone when the provider was left out.
        let best = if provider == "*" {
            let names = known.iter().filter_map(|k| k.rsplit(':').next());
            closest(&name, names)
                .and_then(|n| known.iter().find(|k| k.rsplit(':').next() == Some(n)))
                .map(String::as_str)
        } else {
            closest(&spec, known.iter().map(String::as_str))
        };
        d = match best {
            _ if known.is_empty() => d.with_help(format!("{shown} has no USDT probes")),
            Some(best) => d.with_help(format!("did you mean '{best}'?")),
            None => d.with_help(format!("list them with: ferret -l 'usdt:{bin}:*'")),
        };
        return Err(missing(d));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use ferret_usym::UsdtProbe;

    use super::*;
    use crate::target::FixedTarget;

    fn func(name: &str, address: u64, size: u64) -> Function {
        Function {
            name: name.into(),
            address,
            size,
            file_offset: address - 0x1000,
        }
    }

    fn site(provider: &str, name: &str, address: u64, sema: Option<u64>) -> UsdtProbe {
        UsdtProbe {
            provider: provider.into(),
            name: name.into(),
            address,
            file_offset: address - 0x1000,
            semaphore_offset: sema,
            args_text: "-4@%edi 8@%rsi".into(),
        }
    }

    fn target() -> FixedTarget {
        let mut t = FixedTarget::default();
        let bin = Binary::from_parts(
            Path::new("/bin/app"),
            vec![
                func("readline", 0x2000, 0x40),
                func("read_input", 0x3000, 0x10),
                func("_ZN2ns5parseEi", 0x4000, 0x20),
                func("write_all", 0x5000, 0),
            ],
            vec![
                site("app", "start", 0x2010, Some(0x9000)),
                site("app", "start", 0x3008, Some(0x9000)),
                site("app", "stop", 0x3009, None),
            ],
        );
        t.binaries.insert("/bin/app".into(), Arc::new(bin));
        let libc = Binary::from_parts(
            Path::new("/lib/libc.so.6"),
            vec![func("getpid", 0x1100, 8)],
            vec![],
        );
        t.binaries.insert("/lib/libc.so.6".into(), Arc::new(libc));
        t
    }

    fn resolve_text(text: &str, ctx: UserContext) -> Result<Vec<(String, Attach)>, Diagnostic> {
        let ap = AttachPoint {
            text: text.into(),
            span: ferret_syntax::Span::default(),
        };
        let (provider, rest) = text.split_once(':').unwrap();
        resolve(&target(), &ap, provider, rest, ctx)
            .map(|v| v.into_iter().map(|p| (p.name, p.attach)).collect())
            .map_err(|e| e.diag)
    }

    #[test]
    fn missing_things_are_told_apart_from_malformed_ones() {
        let missing = |t: &str| {
            let ap = AttachPoint {
                text: t.into(),
                span: ferret_syntax::Span::default(),
            };
            let (provider, rest) = t.split_once(':').unwrap();
            resolve(&target(), &ap, provider, rest, UserContext::default())
                .err()
                .map(|e| e.missing)
        };
        assert_eq!(missing("uprobe:/bin/nosuch:f"), Some(true));
        assert_eq!(missing("uprobe:/bin/app:nosuch"), Some(true));
        assert_eq!(missing("usdt:/bin/app:nosuch"), Some(true));
        assert_eq!(missing("uprobe:/bin/app"), Some(false));
        assert_eq!(missing("uretprobe:/bin/app:readline+4"), Some(false));
    }

    fn one(text: &str) -> (String, Attach) {
        let mut v = resolve_text(text, UserContext::default())
            .unwrap_or_else(|d| panic!("{text}: {}", d.message));
        assert_eq!(v.len(), 1, "{text}");
        v.remove(0)
    }

    fn uprobe(offset: u64, retprobe: bool, function: &str) -> Attach {
        Attach::Uprobe {
            binary: "/bin/app".into(),
            offset,
            retprobe,
            function: function.into(),
            function_cap: crate::types::align8(function.len() as u32 + 1),
        }
    }

    #[test]
    fn functions_offsets_and_addresses() {
        assert_eq!(
            one("uprobe:/bin/app:readline"),
            (
                "uprobe:/bin/app:readline".into(),
                uprobe(0x1000, false, "readline")
            )
        );
        assert_eq!(
            one("u:/bin/app:readline+0x10"),
            (
                "uprobe:/bin/app:readline+16".into(),
                uprobe(0x1010, false, "readline")
            )
        );
        assert_eq!(
            one("uprobe:/bin/app:0x2004"),
            (
                "uprobe:/bin/app:8196".into(),
                uprobe(0x1004, false, "readline")
            )
        );
        assert_eq!(
            one("ur:/bin/app:readline"),
            (
                "uretprobe:/bin/app:readline".into(),
                uprobe(0x1000, true, "readline")
            )
        );
        assert_eq!(one("uprobe:libc:getpid").0, "uprobe:/lib/libc.so.6:getpid");
        assert_eq!(
            one("uprobe:/bin/app:cpp:ns::parse").1,
            uprobe(0x3000, false, "ns::parse(int)")
        );
        let wild = resolve_text("uprobe:/bin/app:read*", UserContext::default()).unwrap();
        let names: Vec<&str> = wild.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["uprobe:/bin/app:read_input", "uprobe:/bin/app:readline"]
        );
        let with_pid = UserContext {
            pid: Some(1),
            allow_unsafe: false,
        };
        // With -p the binary may be left out; the fixed target has none.
        assert!(resolve_text("uprobe:readline", with_pid).is_err());
    }

    #[test]
    fn usdt_sites_group_into_one_probe() {
        let v = resolve_text("usdt:/bin/app:start", UserContext::default()).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].0, "usdt:/bin/app:app:start");
        assert_eq!(
            v[1].1,
            Attach::Usdt {
                binary: "/bin/app".into(),
                offset: 0x2008,
                semaphore: Some(0x9000),
                args: "-4@%edi 8@%rsi".into(),
                site: 1
            }
        );
        assert!(v[0].1.counts_as_probe() && !v[1].1.counts_as_probe());
        let all = resolve_text("usdt:/bin/app:app:*", UserContext::default()).unwrap();
        assert_eq!(all.len(), 3);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let msg = |t: &str| {
            let d = resolve_text(t, UserContext::default()).unwrap_err();
            (d.message, d.help.unwrap_or_default())
        };
        assert_eq!(
            msg("uprobe:/bin/app:readlin"),
            (
                "function 'readlin' not found in /bin/app".into(),
                "did you mean 'readline'?".into()
            )
        );
        assert_eq!(
            msg("uprobe:/bin/nosuch:f").0,
            "uprobe target file '/bin/nosuch' does not exist or is not executable"
        );
        assert_eq!(
            msg("uprobe:/bin/app:zz*"),
            (
                "no function of /bin/app matches 'zz*'".into(),
                "list them with: ferret -l 'uprobe:/bin/app:*'".into()
            )
        );
        assert_eq!(
            msg("uretprobe:/bin/app:readline+4").0,
            "uretprobes can not be attached to a function offset"
        );
        assert_eq!(
            msg("uprobe:/bin/app:read_input+16").0,
            "offset outside the function bounds ('read_input' size is 16)"
        );
        assert_eq!(
            msg("uprobe:/bin/app:write_all+4").0,
            "could not determine the boundary of write_all (symbol has size 0)"
        );
        assert_eq!(
            msg("uprobe:/bin/app:0x100").0,
            "address 0x100 is not inside any function of /bin/app"
        );
        assert_eq!(msg("uprobe:/bin/app:c:f").0, "unsupported language type: c");
        assert_eq!(msg("uprobe:/bin/app").0, "invalid uprobe 'uprobe:/bin/app'");
        assert_eq!(
            msg("usdt:/bin/app:strat"),
            (
                "no USDT probe 'strat' in /bin/app".into(),
                "did you mean 'app:start'?".into()
            )
        );
        assert_eq!(
            msg("uprobe:/bin/app@main.c:12").0,
            "uprobe at a source location needs DWARF line information, which ferret does not read"
        );
    }

    #[test]
    fn fields_split_outside_quotes() {
        assert_eq!(
            split_fields("/bin/x:cpp:\"ns::f(int)\""),
            ["/bin/x", "cpp", "ns::f(int)"]
        );
        assert_eq!(parse_uint("0x10"), Some(16));
        assert_eq!(parse_uint("12"), Some(12));
        assert_eq!(parse_uint("f"), None);
    }
}
