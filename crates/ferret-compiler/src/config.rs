//! bpftrace's config variables, from the script's `config = { ... }` block
//! and from `BPFTRACE_*` environment variables (which take precedence, as
//! in bpftrace), resolved into [`Options`].
//!
//! A key may be written `max_strlen`, `MAX_STRLEN` or `BPFTRACE_MAX_STRLEN`.
//! Every bpftrace key is accepted; those about things ferret does not have
//! (user-space symbol caches, LLVM) are checked and then have no effect.

use ferret_syntax::Diagnostic;
use ferret_syntax::ast::{ConfigItem, ConfigValue};
use ferret_syntax::diag::closest;

use crate::Options;

/// What to do about a probe that matches nothing or cannot be attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingProbes {
    #[default]
    Error,
    Warn,
    Ignore,
}

/// How `kstack` and `ustack` are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StackMode {
    /// `        func+off`
    #[default]
    Bpftrace,
    /// `\t<address> func+off`, as `perf script` prints stacks.
    Perf,
    /// The addresses in hex, unsymbolized.
    Raw,
}

/// The BPF licenses the kernel accepts from bpftrace.
const LICENSES: &[&str] = &[
    "GPL",
    "GPL v2",
    "GPL and additional rights",
    "Dual BSD/GPL",
    "Dual MIT/GPL",
    "Dual MPL/GPL",
];

#[derive(Clone, Copy)]
enum Kind {
    Uint,
    Bool,
    Str,
    /// One of these words (case-insensitive).
    Word(&'static [&'static str]),
}

/// Every key bpftrace knows, with the type of its value.
const KEYS: &[(&str, Kind)] = &[
    (
        "cache_user_symbols",
        Kind::Word(&["per_pid", "per_program", "none", "1", "0"]),
    ),
    ("cpp_demangle", Kind::Bool),
    ("lazy_symbolication", Kind::Bool),
    ("license", Kind::Str),
    ("log_size", Kind::Uint),
    ("max_bpf_progs", Kind::Uint),
    ("max_cat_bytes", Kind::Uint),
    ("max_map_keys", Kind::Uint),
    ("max_probes", Kind::Uint),
    ("max_strlen", Kind::Uint),
    ("on_stack_limit", Kind::Uint),
    ("perf_rb_pages", Kind::Uint),
    ("stack_mode", Kind::Word(&["bpftrace", "perf", "raw"])),
    ("str_trunc_trailer", Kind::Str),
    ("missing_probes", Kind::Word(&["error", "warn", "ignore"])),
    ("print_maps_on_exit", Kind::Bool),
    ("use_blazesym", Kind::Bool),
    ("show_debug_info", Kind::Bool),
    ("unstable_import_statement", UNSTABLE),
    ("unstable_tseries", UNSTABLE),
    ("unstable_typeinfo", UNSTABLE),
    ("unstable_dw_ustack", UNSTABLE),
];

const UNSTABLE: Kind = Kind::Word(&["enable", "warn", "error", "true", "false", "1", "0"]);

/// Old names and the keys they became.
const RENAMED: &[(&str, &str)] = &[
    ("strlen", "max_strlen"),
    ("no_cpp_demangle", "cpp_demangle"),
    ("cat_bytes_max", "max_cat_bytes"),
    ("map_keys_max", "max_map_keys"),
];

/// Keys bpftrace no longer uses.
const DEPRECATED: &[&str] = &[
    "symbol_source",
    "max_type_res_iterations",
    "unstable_addr",
    "unstable_import",
    "unstable_macro",
    "unstable_map_decl",
];

/// Settings only the environment may give.
const ENV_ONLY: &[&str] = &["btf", "kernel_build", "kernel_source", "vmlinux"];

/// A value, whichever way it was written.
enum Value<'a> {
    Int(u64),
    Text(&'a str),
}

/// The key without a `BPFTRACE_` prefix, in lower case.
fn normalize(key: &str) -> String {
    let lower = key.to_ascii_lowercase();
    match lower.strip_prefix("bpftrace_") {
        Some(rest) => rest.to_owned(),
        None => lower,
    }
}

/// Applies the script's config block to `opts`; returns the warnings.
pub fn apply_block(
    items: &[ConfigItem],
    opts: &mut Options,
) -> Result<Vec<Diagnostic>, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for item in items {
        let mut key = normalize(&item.key);
        if DEPRECATED.contains(&key.as_str()) {
            warnings.push(
                Diagnostic::warning(
                    item.key_span,
                    format!("{} is deprecated and has no effect", item.key),
                )
                .with_label("no effect"),
            );
            continue;
        }
        if let Some(&(_, new)) = RENAMED.iter().find(|(old, _)| *old == key) {
            warnings.push(
                Diagnostic::warning(
                    item.key_span,
                    format!("{} has been renamed, please use {new}", item.key),
                )
                .with_label("old name"),
            );
            key = new.to_owned();
        }
        if ENV_ONLY.contains(&key.as_str()) {
            errors.push(
                Diagnostic::error(
                    item.key_span,
                    format!("{} can only be set as an environment variable", item.key),
                )
                .with_label("not a config block setting")
                .with_help(format!("set BPFTRACE_{} instead", key.to_ascii_uppercase())),
            );
            continue;
        }
        let text;
        let value = match &item.value {
            ConfigValue::Int(n) => Value::Int(*n),
            ConfigValue::Bool(b) => Value::Int(u64::from(*b)),
            ConfigValue::Str(s) | ConfigValue::Ident(s) => {
                text = s.clone();
                Value::Text(&text)
            }
        };
        match set(opts, &key, value) {
            Ok(()) => {}
            Err(SetError::UnknownKey) => {
                let mut d = Diagnostic::error(
                    item.key_span,
                    format!("{}: not a known configuration option", item.key),
                )
                .with_label("unknown setting");
                let names = KEYS.iter().map(|(k, _)| *k);
                if let Some(best) = closest(&key, names) {
                    d = d.with_help(format!("did you mean '{best}'?"));
                }
                errors.push(d);
            }
            Err(SetError::BadValue(why)) => errors.push(
                Diagnostic::error(
                    item.value_span,
                    format!("invalid value for {}: {why}", item.key),
                )
                .with_label("invalid value"),
            ),
            Err(SetError::Choice { why, best }) => {
                let mut d = Diagnostic::error(
                    item.value_span,
                    format!("invalid value for {}: {why}", item.key),
                )
                .with_label("invalid value");
                if let Some(best) = best {
                    d = d.with_help(format!("did you mean '{best}'?"));
                }
                errors.push(d);
            }
        }
    }
    if errors.is_empty() {
        Ok(warnings)
    } else {
        Err(errors)
    }
}

/// Applies every `BPFTRACE_<KEY>` environment variable `env` knows about.
/// Errors are messages naming the variable.
pub fn apply_env(env: &dyn Fn(&str) -> Option<String>, opts: &mut Options) -> Result<(), String> {
    for (key, _) in KEYS {
        let var = format!("BPFTRACE_{}", key.to_ascii_uppercase());
        let Some(value) = env(&var) else {
            continue;
        };
        match set(opts, key, Value::Text(&value)) {
            Ok(()) => {}
            Err(SetError::UnknownKey) => {}
            Err(SetError::BadValue(why) | SetError::Choice { why, .. }) => {
                return Err(format!("invalid {var}='{value}': {why}"));
            }
        }
    }
    Ok(())
}

enum SetError {
    UnknownKey,
    BadValue(String),
    /// Not one of the words the key takes; the closest one.
    Choice {
        why: String,
        best: Option<&'static str>,
    },
}

fn set(opts: &mut Options, key: &str, value: Value<'_>) -> Result<(), SetError> {
    let Some(&(_, kind)) = KEYS.iter().find(|(k, _)| *k == key) else {
        return Err(SetError::UnknownKey);
    };
    match kind {
        Kind::Uint => {
            let n = match value {
                Value::Int(n) => n,
                Value::Text(t) => parse_uint(t)
                    .ok_or_else(|| SetError::BadValue(format!("expected a number, got '{t}'")))?,
            };
            let as_u32 = || {
                u32::try_from(n).map_err(|_| {
                    SetError::BadValue(format!("{n} is too large (at most {})", u32::MAX))
                })
            };
            match key {
                "max_map_keys" => {
                    if n == 0 {
                        return Err(SetError::BadValue("a map needs at least 1 key".into()));
                    }
                    opts.max_map_keys = as_u32()?;
                }
                "max_strlen" => opts.max_strlen = as_u32()?,
                "perf_rb_pages" => {
                    if n == 0 {
                        return Err(SetError::BadValue("at least 1 page is needed".into()));
                    }
                    // The kernel wants a power of two; round up.
                    opts.ringbuf_pages = as_u32()?
                        .checked_next_power_of_two()
                        .ok_or_else(|| SetError::BadValue(format!("{n} pages is too large")))?;
                }
                _ => {}
            }
        }
        Kind::Bool => {
            let b = match value {
                Value::Int(0) => false,
                Value::Int(_) => true,
                Value::Text(t) => match t.to_ascii_lowercase().as_str() {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => {
                        return Err(SetError::BadValue(
                            "valid values are true, false, 1 or 0".into(),
                        ));
                    }
                },
            };
            if key == "print_maps_on_exit" {
                opts.print_maps_on_exit = b;
            }
        }
        Kind::Str => {
            let s = match value {
                Value::Int(n) => n.to_string(),
                Value::Text(t) => t.to_owned(),
            };
            match key {
                "str_trunc_trailer" => opts.str_trunc_trailer = s,
                "license" => {
                    if !LICENSES.contains(&s.as_str()) {
                        return Err(SetError::BadValue(format!(
                            "valid licenses are {}",
                            LICENSES.join(", ")
                        )));
                    }
                    opts.license = s;
                }
                _ => {}
            }
        }
        Kind::Word(words) => {
            let w = match value {
                Value::Int(n) => n.to_string(),
                Value::Text(t) => t.to_ascii_lowercase(),
            };
            if !words.contains(&w.as_str()) {
                let list = words
                    .iter()
                    .filter(|w| !w.starts_with(|c: char| c.is_ascii_digit()))
                    .copied()
                    .collect::<Vec<_>>();
                return Err(SetError::Choice {
                    why: format!("valid values are {}", list.join(", ")),
                    best: closest(&w, list.iter().copied()),
                });
            }
            match key {
                "stack_mode" => {
                    opts.stack_mode = match w.as_str() {
                        "perf" => StackMode::Perf,
                        "raw" => StackMode::Raw,
                        _ => StackMode::Bpftrace,
                    }
                }
                "missing_probes" => {
                    opts.missing_probes = match w.as_str() {
                        "warn" => MissingProbes::Warn,
                        "ignore" => MissingProbes::Ignore,
                        _ => MissingProbes::Error,
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// `4096`, `0x1000`, `1_000`.
fn parse_uint(t: &str) -> Option<u64> {
    let t = t.trim().replace('_', "");
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferret_syntax::Span;

    fn item(key: &str, value: ConfigValue) -> ConfigItem {
        ConfigItem {
            key: key.into(),
            key_span: Span::new(0, key.len()),
            value,
            value_span: Span::new(0, 1),
        }
    }

    #[test]
    fn keys_in_every_spelling() {
        let mut opts = Options::default();
        let items = [
            item("max_map_keys", ConfigValue::Int(2)),
            item("BPFTRACE_STACK_MODE", ConfigValue::Ident("raw".into())),
            item("MAX_STRLEN", ConfigValue::Int(16)),
            item("print_maps_on_exit", ConfigValue::Int(0)),
            item("missing_probes", ConfigValue::Str("warn".into())),
            item("perf_rb_pages", ConfigValue::Int(5)),
            item("str_trunc_trailer", ConfigValue::Str("~".into())),
        ];
        assert!(apply_block(&items, &mut opts).unwrap().is_empty());
        assert_eq!(opts.max_map_keys, 2);
        assert_eq!(opts.stack_mode, StackMode::Raw);
        assert_eq!(opts.max_strlen, 16);
        assert!(!opts.print_maps_on_exit);
        assert_eq!(opts.missing_probes, MissingProbes::Warn);
        assert_eq!(opts.ringbuf_pages, 8);
        assert_eq!(opts.str_trunc_trailer, "~");
    }

    #[test]
    fn environment_wins() {
        let mut opts = Options::default();
        apply_block(
            &[item("stack_mode", ConfigValue::Ident("perf".into()))],
            &mut opts,
        )
        .unwrap();
        let env = |k: &str| (k == "BPFTRACE_STACK_MODE").then(|| "raw".to_string());
        apply_env(&env, &mut opts).unwrap();
        assert_eq!(opts.stack_mode, StackMode::Raw);
        let bad = |k: &str| (k == "BPFTRACE_MAX_STRLEN").then(|| "lots".to_string());
        assert_eq!(
            apply_env(&bad, &mut opts),
            Err("invalid BPFTRACE_MAX_STRLEN='lots': expected a number, got 'lots'".into())
        );
    }

    #[test]
    fn unknown_renamed_and_deprecated_keys() {
        let mut opts = Options::default();
        let errors = apply_block(&[item("max_strln", ConfigValue::Int(1))], &mut opts).unwrap_err();
        assert_eq!(
            errors[0].message,
            "max_strln: not a known configuration option"
        );
        assert_eq!(
            errors[0].help.as_deref(),
            Some("did you mean 'max_strlen'?")
        );
        let warnings = apply_block(
            &[
                item("strlen", ConfigValue::Int(32)),
                item("unstable_macro", ConfigValue::Int(1)),
            ],
            &mut opts,
        )
        .unwrap();
        assert_eq!(opts.max_strlen, 32);
        assert_eq!(
            warnings[0].message,
            "strlen has been renamed, please use max_strlen"
        );
        assert_eq!(
            warnings[1].message,
            "unstable_macro is deprecated and has no effect"
        );
    }

    #[test]
    fn bad_values() {
        let mut opts = Options::default();
        let e = apply_block(
            &[item("stack_mode", ConfigValue::Ident("pref".into()))],
            &mut opts,
        )
        .unwrap_err();
        assert_eq!(
            e[0].message,
            "invalid value for stack_mode: valid values are bpftrace, perf, raw"
        );
        assert_eq!(e[0].help.as_deref(), Some("did you mean 'perf'?"));
        let e = apply_block(
            &[item("print_maps_on_exit", ConfigValue::Ident("no".into()))],
            &mut opts,
        )
        .unwrap_err();
        assert_eq!(
            e[0].message,
            "invalid value for print_maps_on_exit: valid values are true, false, 1 or 0"
        );
        let e = apply_block(&[item("btf", ConfigValue::Str("x".into()))], &mut opts).unwrap_err();
        assert_eq!(
            e[0].message,
            "btf can only be set as an environment variable"
        );
    }
}
