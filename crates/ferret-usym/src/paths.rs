//! From what a probe names (`/bin/bash`, `bash`, `libc`, `/usr/lib/*/libssl.so*`)
//! to the files it means, as bpftrace resolves them.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::elf::elf_type;
use crate::ldcache;

/// `e_type` values of the files uprobes can go in.
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;

/// How to resolve names: the process probes are for (`-p`), and whether
/// any existing file will do (`--unsafe`), not only executables and shared
/// libraries.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    pub pid: Option<u32>,
    pub any_file: bool,
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

impl Resolver {
    /// Every file `target` names, best first (an empty list when there is
    /// none):
    /// - `lib` followed by a name (`libc`, `libssl`): the library of that
    ///   name the process maps (with `-p`), else the loader cache's;
    /// - a name without `/`: itself, then each directory of `$PATH` (of the
    ///   process, when it lives in another mount namespace);
    /// - wildcards: every file the pattern matches;
    /// - with `-p`, paths inside the process's mount namespace when it is
    ///   not ours (`/proc/PID/root/...`).
    ///
    /// Only ELF executables (with an execute bit) and shared objects count.
    pub fn resolve(&self, target: &str) -> Vec<PathBuf> {
        let mut target = target.to_string();
        if target.is_empty()
            && let Some(exe) = self.pid.and_then(pid_exe)
        {
            target = exe;
        }
        if let Some(name) = target.strip_prefix("lib")
            && !has_wildcard(&target)
            && let Some(path) = self.library(name)
        {
            target = path.to_string_lossy().into_owned();
        }
        let other_ns = self.pid.filter(|&pid| in_other_mount_ns(pid));
        let mut candidates = vec![target.clone()];
        if !target.contains('/') {
            let path_env = match other_ns {
                Some(pid) => process_env(pid, "PATH"),
                None => std::env::var("PATH").ok(),
            };
            for dir in path_env.unwrap_or_default().split(':') {
                candidates.push(format!("{dir}/{target}"));
            }
        }
        let wild = has_wildcard(&target);
        if wild {
            candidates = candidates
                .iter()
                .flat_map(|p| glob::glob(p).into_iter().flatten().flatten())
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
        }
        let mut out: Vec<PathBuf> = Vec::new();
        for c in candidates {
            let path = match other_ns {
                Some(pid) if c.starts_with('/') => PathBuf::from(format!("/proc/{pid}/root{c}")),
                _ => PathBuf::from(&c),
            };
            let ok = if self.any_file && !wild {
                path.is_file()
            } else {
                is_probeable(&path)
            };
            if ok && !out.contains(&path) {
                out.push(path);
            }
        }
        out
    }

    /// `lib{name}`'s path: mapped by the process, else in the loader cache.
    fn library(&self, name: &str) -> Option<PathBuf> {
        if let Some(pid) = self.pid
            && let Some(path) = library_in_process(pid, name)
        {
            return Some(path);
        }
        let entries = ldcache::read(Path::new(ldcache::LD_SO_CACHE)).ok()?;
        ldcache::find_library(&entries, name)
    }
}

/// An ELF executable with an execute bit, or a shared object (PIE
/// executables are shared objects).
pub fn is_probeable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    let mut head = [0u8; 64];
    let n = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .unwrap_or(0);
    match elf_type(&head[..n]) {
        Some(ET_EXEC) => meta.permissions().mode() & 0o100 != 0,
        Some(ET_DYN) => true,
        _ => false,
    }
}

/// The executable of process `pid`.
pub fn pid_exe(pid: u32) -> Option<String> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let exe = exe.to_string_lossy().into_owned();
    Some(if in_other_mount_ns(pid) {
        format!("/proc/{pid}/root{exe}")
    } else {
        exe
    })
}

/// The files process `pid` maps, in the order of its maps (each once).
pub fn mapped_paths(pid: u32) -> std::io::Result<Vec<PathBuf>> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
    let mut out: Vec<PathBuf> = Vec::new();
    for line in maps.lines() {
        // address perms offset dev inode path
        let Some(path) = line.splitn(6, ' ').nth(5).map(str::trim_start) else {
            continue;
        };
        if !path.starts_with('/') {
            continue;
        }
        let path = PathBuf::from(path);
        if !out.contains(&path) {
            out.push(path);
        }
    }
    Ok(out)
}

/// The library process `pid` maps as `lib{name}.` or `lib{name}-`
/// (`libc.so.6`, `libc-2.31.so`), as bcc finds it.
fn library_in_process(pid: u32, name: &str) -> Option<PathBuf> {
    let dotted = format!("/lib{name}.");
    let dashed = format!("/lib{name}-");
    mapped_paths(pid).ok()?.into_iter().find(|p| {
        let s = p.to_string_lossy();
        s.contains(".so") && (s.contains(&dotted) || s.contains(&dashed))
    })
}

/// Whether process `pid` lives in another mount namespace than ours.
fn in_other_mount_ns(pid: u32) -> bool {
    let ino = |p: &str| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    match (
        ino("/proc/self/ns/mnt"),
        ino(&format!("/proc/{pid}/ns/mnt")),
    ) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    }
}

fn process_env(pid: u32, var: &str) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{var}=");
    environ
        .split(|&b| b == 0)
        .find_map(|kv| kv.strip_prefix(prefix.as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_through_path_and_the_loader_cache() {
        let r = Resolver::default();
        let sh = r.resolve("sh");
        assert!(sh.iter().any(|p| p.ends_with("sh")), "{sh:?}");
        let exe = std::env::current_exe().unwrap();
        assert_eq!(r.resolve(exe.to_str().unwrap()), vec![exe.clone()]);
        assert!(r.resolve("/nonexistent/x").is_empty());
        // Not an ELF file.
        assert!(r.resolve("/etc/passwd").is_empty());
        assert!(
            Resolver {
                any_file: true,
                ..Resolver::default()
            }
            .resolve("/etc/passwd")
            .len()
                == 1
        );
        if Path::new(ldcache::LD_SO_CACHE).exists() {
            let libc = r.resolve("libc");
            assert!(
                libc.first()
                    .is_some_and(|p| p.to_string_lossy().contains("libc.so")),
                "{libc:?}"
            );
        }
    }

    #[test]
    fn with_a_pid_libraries_come_from_its_maps() {
        let me = std::process::id();
        let r = Resolver {
            pid: Some(me),
            any_file: false,
        };
        let maps = mapped_paths(me).unwrap();
        let exe = std::env::current_exe().unwrap();
        assert!(maps.contains(&exe), "{maps:?}");
        if let Some(libc) = maps
            .iter()
            .find(|p| p.to_string_lossy().contains("/libc.so"))
        {
            assert_eq!(r.resolve("libc").first(), Some(libc));
        }
        assert_eq!(r.resolve(""), vec![exe]);
    }

    #[test]
    fn wildcards_expand() {
        let exe = std::env::current_exe().unwrap();
        let dir = exe.parent().unwrap();
        let name = exe.file_name().unwrap().to_string_lossy().into_owned();
        let pattern = format!("{}/{}*", dir.display(), &name[..name.len() - 2]);
        let found = Resolver::default().resolve(&pattern);
        assert!(found.contains(&exe), "{pattern}: {found:?}");
    }
}
