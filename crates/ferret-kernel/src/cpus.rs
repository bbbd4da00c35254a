//! Online and possible CPU lists from sysfs.

use std::{fs, path::Path};

use crate::error::{KernelError, Result};

const ONLINE: &str = "/sys/devices/system/cpu/online";
const POSSIBLE: &str = "/sys/devices/system/cpu/possible";

/// CPUs that are online now (where perf events can be opened).
pub fn online() -> Result<Vec<u32>> {
    read_list(Path::new(ONLINE))
}

/// CPUs the kernel may ever bring up; per-CPU maps have one slot for each.
pub fn possible() -> Result<Vec<u32>> {
    read_list(Path::new(POSSIBLE))
}

/// Number of per-CPU slots in a per-CPU map value.
pub fn possible_count() -> Result<usize> {
    // Per-CPU values are indexed 0..=max possible id, so count up to the
    // highest id rather than the list length.
    Ok(possible()?.last().map_or(0, |&max| max as usize + 1))
}

fn read_list(path: &Path) -> Result<Vec<u32>> {
    let text = fs::read_to_string(path).map_err(|e| KernelError::io(path, e))?;
    parse_list(&text).ok_or_else(|| KernelError::Parse {
        path: path.to_path_buf(),
        detail: format!("bad CPU list {:?}", text.trim()),
    })
}

/// Parses the kernel's CPU list format: `0-3,5,7-8`.
pub fn parse_list(text: &str) -> Option<Vec<u32>> {
    let text = text.trim();
    let mut cpus = Vec::new();
    if text.is_empty() {
        return Some(cpus);
    }
    for part in text.split(',') {
        match part.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (
                    lo.trim().parse::<u32>().ok()?,
                    hi.trim().parse::<u32>().ok()?,
                );
                if lo > hi {
                    return None;
                }
                cpus.extend(lo..=hi);
            }
            None => cpus.push(part.trim().parse().ok()?),
        }
    }
    Some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists() {
        assert_eq!(parse_list("0\n"), Some(vec![0]));
        assert_eq!(parse_list("0-3,5,7-8"), Some(vec![0, 1, 2, 3, 5, 7, 8]));
        assert_eq!(parse_list(""), Some(vec![]));
        assert_eq!(parse_list("3-1"), None);
        assert_eq!(parse_list("x"), None);
    }

    #[test]
    fn reads_this_machine() {
        let online = online().map_err(|e| e.to_string());
        assert!(matches!(online, Ok(ref v) if !v.is_empty()), "{online:?}");
        assert!(possible_count().is_ok_and(|n| n >= 1));
    }
}
