//! The program's structure around its code: which probes remain after
//! `missing_probes`, and `let @m = kind(N);` map declarations.

use std::collections::HashMap;

use ferret_bpf::insn::map_type;
use ferret_syntax::Diagnostic;
use ferret_syntax::ast::{self, AttachPoint, Program};

use super::{Globals, Options};
use crate::config::MissingProbes;
use crate::probes::{ProbeResolver, ResolvedProbe};
use crate::target::Target;

/// A probe with what its attach points resolved to, each paired with the
/// text of the attach point it came from.
pub(super) type ProbeAttachments<'p> = (&'p ast::Probe, Vec<(String, ResolvedProbe)>);

/// Resolves every attach point (with `$1`.. substituted), each resolved
/// probe paired with the text of the attach point it came from. A probe that does
/// not exist is an error, or with `missing_probes` set to `warn`/`ignore`
/// is left out, and so is a probe left with no attach point.
pub(super) fn resolve_probes<'p>(
    program: &'p Program,
    target: &dyn Target,
    opts: &Options,
    warnings: &mut Vec<Diagnostic>,
) -> Result<Vec<ProbeAttachments<'p>>, Vec<Diagnostic>> {
    let mut resolver = ProbeResolver::new(target).for_process(opts.filter_pid, opts.allow_unsafe);
    let mut diags = Vec::new();
    let mut probes = Vec::new();
    for probe in &program.probes {
        let mut resolved = Vec::new();
        let mut skipped = false;
        for ap in &probe.attach_points {
            let ap = AttachPoint {
                text: crate::params::substitute_positional(&ap.text, &opts.positional),
                span: ap.span,
            };
            match resolver.resolve(&ap) {
                Ok(r) => resolved.extend(r.into_iter().map(|p| (ap.text.clone(), p))),
                Err(d) if resolver.missing && opts.missing_probes != MissingProbes::Error => {
                    skipped = true;
                    if opts.missing_probes == MissingProbes::Warn {
                        warnings.push(
                            Diagnostic {
                                severity: ferret_syntax::diag::Severity::Warning,
                                ..d
                            }
                            .with_help("skipped, as missing_probes is 'warn'"),
                        );
                    }
                }
                Err(d) => diags.push(d),
            }
        }
        if resolved.is_empty() && skipped {
            if opts.missing_probes == MissingProbes::Warn {
                let span = match (probe.attach_points.first(), probe.attach_points.last()) {
                    (Some(a), Some(b)) => a.span.to(b.span),
                    _ => probe.span,
                };
                warnings.push(
                    Diagnostic::warning(span, "this probe has no valid attach points")
                        .with_label("removed from the program"),
                );
            }
            continue;
        }
        crate::uprobes::share_function_capacity(resolved.iter_mut().map(|(_, p)| p));
        probes.push((probe, resolved));
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    if probes.is_empty() {
        let span = program
            .probes
            .first()
            .and_then(|p| p.attach_points.first())
            .map_or_else(Default::default, |a| a.span);
        return Err(vec![
            Diagnostic::error(span, "no probes left to attach")
                .with_label("every attach point matched nothing")
                .with_help("list the probes that exist with: ferret -l"),
        ]);
    }
    Ok(probes)
}

/// The declarations by map name (`@m`); a map declared twice is an error.
pub(super) fn map_decls(
    program: &Program,
) -> Result<HashMap<String, ast::MapDecl>, Vec<Diagnostic>> {
    let mut decls: HashMap<String, ast::MapDecl> = HashMap::new();
    let mut diags = Vec::new();
    for d in &program.map_decls {
        let name = format!("@{}", d.name);
        if decls.contains_key(&name) {
            diags.push(
                Diagnostic::error(d.name_span, format!("map {name} is declared twice"))
                    .with_label("declared again here")
                    .with_help("keep one declaration"),
            );
            continue;
        }
        decls.insert(name, d.clone());
    }
    if diags.is_empty() {
        Ok(decls)
    } else {
        Err(diags)
    }
}

/// The kernel map type of a declaration's kind (checked by the parser).
pub(super) fn kernel_map_type(kind: &str) -> u32 {
    match kind {
        "lruhash" => map_type::LRU_HASH,
        "percpuhash" => map_type::PERCPU_HASH,
        "percpulruhash" => map_type::LRU_PERCPU_HASH,
        _ => map_type::HASH,
    }
}

/// Checks each declaration against how its map is used: aggregations
/// (`count()`, `hist()`, ...) live in per-CPU maps, plain values in
/// shared ones. A declared map never used is a warning.
pub(super) fn check_declared_maps(
    g: &Globals<'_>,
    diags: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) {
    let mut unused: Vec<&ast::MapDecl> = Vec::new();
    for (name, d) in &g.decls {
        let Some(&id) = g.map_ids.get(name) else {
            unused.push(d);
            continue;
        };
        let Some(kind) = &g.maps[id].kind else {
            continue;
        };
        let declared_percpu = d.kind.starts_with("percpu");
        if kind.is_percpu() == declared_percpu {
            continue;
        }
        let (needs, suggestion) = if kind.is_percpu() {
            ("a per-CPU map", format!("percpu{}", d.kind))
        } else {
            (
                "a map shared by all CPUs",
                d.kind.trim_start_matches("percpu").to_owned(),
            )
        };
        diags.push(
            Diagnostic::error(
                d.kind_span,
                format!(
                    "incompatible map types: {name} is declared {} but its values need {needs}",
                    d.kind
                ),
            )
            .with_label("declared map type")
            .with_help(format!(
                "declare it as 'let {name} = {suggestion}({});'",
                d.max_entries
            )),
        );
    }
    unused.sort_by_key(|d| d.span.start);
    for d in unused {
        warnings.push(
            Diagnostic::warning(d.name_span, format!("unused map: @{}", d.name))
                .with_label("declared but never used"),
        );
    }
}
