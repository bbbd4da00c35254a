//! `cgroup_path(id, filter)`'s text: where cgroup `id` is in each mounted
//! cgroup hierarchy whose name matches `filter` (`unified` for cgroup v2,
//! the mount directory's name for v1), as `name:/path` joined by commas, v2
//! first, then v1 by name, as bpftrace prints it. A cgroup's id is its
//! directory's inode number.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Paths found so far, by (cgroup id, hierarchy root); checked again
/// before use, as cgroups come and go.
#[derive(Debug, Default)]
pub struct CgroupPaths {
    found: HashMap<(u64, PathBuf), String>,
}

impl CgroupPaths {
    pub fn describe(&mut self, id: u64, filter: &str) -> String {
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let (v2, mut v1) = hierarchies(&mounts);
        v1.sort();
        let mut parts = Vec::new();
        for (name, root) in v2.into_iter().chain(v1) {
            if !ferret_compiler::probes::glob_match(filter, &name) {
                continue;
            }
            if let Some(path) = self.find(id, &root) {
                parts.push(format!("{name}:{path}"));
            }
        }
        parts.join(",")
    }

    fn find(&mut self, id: u64, root: &Path) -> Option<String> {
        let key = (id, root.to_path_buf());
        if let Some(known) = self.found.get(&key) {
            let full = root.join(known.trim_start_matches('/'));
            if std::fs::metadata(&full).is_ok_and(|m| m.ino() == id) {
                return Some(known.clone());
            }
        }
        let path = search(id, root)?;
        self.found.insert(key, path.clone());
        Some(path)
    }
}

/// A mounted cgroup hierarchy: its name and its root directory.
type Hierarchy = (String, PathBuf);

/// The cgroup v2 and the cgroup v1 hierarchies in `/proc/mounts`'s text.
fn hierarchies(mounts: &str) -> (Vec<Hierarchy>, Vec<Hierarchy>) {
    let mut v2 = Vec::new();
    let mut v1 = Vec::new();
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(kind), Some(dir)) = (fields.next(), fields.next()) else {
            continue;
        };
        let root = PathBuf::from(dir);
        if !root.is_dir() {
            continue;
        }
        match kind {
            "cgroup2" => v2.push(("unified".to_string(), root)),
            "cgroup" => {
                let name = root
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                v1.push((name, root));
            }
            _ => {}
        }
    }
    (v2, v1)
}

/// The path under `root` (from `/`) of the directory whose inode is `id`.
fn search(id: u64, root: &Path) -> Option<String> {
    if std::fs::metadata(root).ok()?.ino() == id {
        return Some("/".into());
    }
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if !meta.is_dir() {
                continue;
            }
            let path = entry.path();
            if meta.ino() == id {
                let rel = path.strip_prefix(root).ok()?;
                return Some(format!("/{}", rel.display()));
            }
            pending.push(path);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchies_are_named_as_bpftrace_names_them() {
        let mounts = "cgroup2 / cgroup2 rw 0 0\n\
                      cgroup /tmp cgroup rw,cpu 0 0\n\
                      proc /proc proc rw 0 0\n\
                      cgroup /nonexistent/x cgroup rw 0 0\n";
        let (v2, v1) = hierarchies(mounts);
        assert_eq!(v2, vec![("unified".to_string(), PathBuf::from("/"))]);
        assert_eq!(v1, vec![("tmp".to_string(), PathBuf::from("/tmp"))]);
    }

    #[test]
    fn a_directory_is_found_by_its_inode() {
        let dir = std::env::temp_dir().join(format!("ferret-cg-{}", std::process::id()));
        let inner = dir.join("a/b");
        std::fs::create_dir_all(&inner).unwrap();
        let ino = std::fs::metadata(&inner).unwrap().ino();
        assert_eq!(search(ino, &dir).as_deref(), Some("/a/b"));
        let root = std::fs::metadata(&dir).unwrap().ino();
        assert_eq!(search(root, &dir).as_deref(), Some("/"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
