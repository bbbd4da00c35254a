//! Reading tracepoint metadata from a mounted tracefs (see [`crate::mounts`]).

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use crate::error::{KernelError, Result};

/// Every tracepoint as `(category, event)`, from the single file
/// `available_events` (one read instead of walking 2000 directories).
pub fn list_tracepoints(tracefs: &Path) -> Result<Vec<(String, String)>> {
    let path = tracefs.join("available_events");
    let text = fs::read_to_string(&path).map_err(|e| KernelError::io(&path, e))?;
    Ok(parse_available_events(&text))
}

/// Parses `available_events` (`category:event` lines).
pub fn parse_available_events(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| line.trim().split_once(':'))
        .map(|(cat, ev)| (cat.to_owned(), ev.to_owned()))
        .collect()
}

fn event_dir(tracefs: &Path, category: &str, event: &str) -> Result<PathBuf> {
    // Names come from user scripts; never let them walk out of events/.
    let bad = |s: &str| s.is_empty() || s.contains('/') || s == "." || s == "..";
    if bad(category) || bad(event) {
        return Err(KernelError::NoSuchTracepoint {
            category: category.into(),
            event: event.into(),
        });
    }
    Ok(tracefs.join("events").join(category).join(event))
}

fn read_event_file(tracefs: &Path, category: &str, event: &str, file: &str) -> Result<String> {
    let path = event_dir(tracefs, category, event)?.join(file);
    fs::read_to_string(&path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            KernelError::NoSuchTracepoint {
                category: category.into(),
                event: event.into(),
            }
        } else {
            KernelError::io(&path, e)
        }
    })
}

/// Whether `category:event` exists.
pub fn exists(tracefs: &Path, category: &str, event: &str) -> bool {
    event_dir(tracefs, category, event).is_ok_and(|dir| dir.join("id").exists())
}

/// Raw text of `events/CATEGORY/EVENT/format`.
pub fn read_format(tracefs: &Path, category: &str, event: &str) -> Result<String> {
    read_event_file(tracefs, category, event, "format")
}

/// The perf event id of a tracepoint (`events/CATEGORY/EVENT/id`).
pub fn event_id(tracefs: &Path, category: &str, event: &str) -> Result<u64> {
    let text = read_event_file(tracefs, category, event, "id")?;
    text.trim().parse().map_err(|_| KernelError::Parse {
        path: tracefs.join("events").join(category).join(event).join("id"),
        detail: format!("not a number: {:?}", text.trim()),
    })
}

/// A kernel function kprobes can attach to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelFunction {
    pub name: String,
    /// The module it is in; empty for the kernel image's own.
    pub module: String,
}

/// The functions ftrace can trace, from `available_filter_functions`: what
/// kprobe wildcards match and `-l 'kprobe:*'` lists (others may still be
/// probed by their exact name). Sorted, without duplicates.
pub fn traceable_functions(tracefs: &Path) -> Result<Vec<KernelFunction>> {
    let path = tracefs.join("available_filter_functions");
    let text = fs::read_to_string(&path).map_err(|e| KernelError::io(&path, e))?;
    Ok(parse_filter_functions(&text))
}

/// Parses `available_filter_functions` (`name` or `name [module]` lines).
pub fn parse_filter_functions(text: &str) -> Vec<KernelFunction> {
    let mut functions: Vec<KernelFunction> = text
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            let module = words
                .next()
                .and_then(|m| m.strip_prefix('[')?.strip_suffix(']'))
                .unwrap_or_default();
            Some(KernelFunction {
                name: name.to_owned(),
                module: module.to_owned(),
            })
        })
        .collect();
    functions.sort_unstable();
    functions.dedup();
    functions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_filter_functions() {
        let text = "vfs_read\nnf_conntrack_in [nf_conntrack]\nvfs_read\n\n__x64_sys_read\n";
        let f = parse_filter_functions(text);
        let names: Vec<(&str, &str)> = f
            .iter()
            .map(|f| (f.name.as_str(), f.module.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("__x64_sys_read", ""),
                ("nf_conntrack_in", "nf_conntrack"),
                ("vfs_read", "")
            ]
        );
    }

    #[test]
    fn parses_available_events() {
        let text = "syscalls:sys_enter_read\nsched:sched_switch\n\nbogus\n";
        assert_eq!(
            parse_available_events(text),
            vec![
                ("syscalls".into(), "sys_enter_read".into()),
                ("sched".into(), "sched_switch".into())
            ]
        );
    }

    #[test]
    fn rejects_path_tricks() {
        let root = Path::new("/nonexistent");
        assert!(matches!(
            read_format(root, "..", "x"),
            Err(KernelError::NoSuchTracepoint { .. })
        ));
        assert!(matches!(
            event_id(root, "a/b", "x"),
            Err(KernelError::NoSuchTracepoint { .. })
        ));
    }
}
