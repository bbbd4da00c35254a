//! `/etc/ld.so.cache`: the dynamic loader's index of shared libraries, which
//! names the file `libc` means on this system.
//!
//! Read by hand: no maintained crate parses it, and the format is a short
//! header and an array of fixed-size entries (glibc's `cache_file_new`, with
//! an optional `ld.so-1.7.0` table before it on old systems).

use std::path::{Path, PathBuf};

/// The cache file the dynamic loader reads.
pub const LD_SO_CACHE: &str = "/etc/ld.so.cache";

const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const NEW_HEADER: usize = 48;
const NEW_ENTRY: usize = 24;
const OLD_ENTRY: usize = 12;

/// `FLAG_ELF_LIBC6 | FLAG_X8664_LIB64`: the entries a 64-bit x86 process
/// can load (glibc's `_DL_CACHE_DEFAULT_ID`).
#[cfg(target_arch = "x86_64")]
const HOST_FLAGS: i32 = 0x0303;
/// `FLAG_ELF_LIBC6 | FLAG_AARCH64_LIB64`.
#[cfg(target_arch = "aarch64")]
const HOST_FLAGS: i32 = 0x0a03;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const HOST_FLAGS: i32 = 0x0003;

/// One library of the cache: its soname-like key and its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    pub name: String,
    pub path: PathBuf,
    pub flags: i32,
}

/// Every entry of the cache at `path`, in the file's order.
pub fn read(path: &Path) -> std::io::Result<Vec<CacheEntry>> {
    let data = std::fs::read(path)?;
    parse(&data).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is not a ld.so cache", path.display()),
        )
    })
}

fn u32_at(data: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(data.get(off..off + 4)?.try_into().ok()?))
}

fn c_str_at(data: &[u8], off: usize) -> Option<&str> {
    let rest = data.get(off..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    std::str::from_utf8(&rest[..end]).ok()
}

/// Parses the bytes of a cache file; None when they are not one.
pub fn parse(data: &[u8]) -> Option<Vec<CacheEntry>> {
    let mut start = 0;
    if data.starts_with(OLD_MAGIC) {
        // The old table comes first; the new one follows, 8-byte aligned.
        let n = u32_at(data, OLD_MAGIC.len().next_multiple_of(4))? as usize;
        let end = OLD_MAGIC.len().next_multiple_of(4) + 4 + n * OLD_ENTRY;
        start = end.next_multiple_of(8);
    }
    let new = data.get(start..)?;
    if !new.starts_with(NEW_MAGIC) {
        return None;
    }
    let count = u32_at(new, 20)? as usize;
    let mut entries = Vec::with_capacity(count);
    for i in 0..count {
        let at = NEW_HEADER + i * NEW_ENTRY;
        let flags = u32_at(new, at)? as i32;
        // String offsets count from the start of the new table.
        let name = c_str_at(new, u32_at(new, at + 4)? as usize)?;
        let path = c_str_at(new, u32_at(new, at + 8)? as usize)?;
        entries.push(CacheEntry {
            name: name.to_string(),
            path: PathBuf::from(path),
            flags,
        });
    }
    Some(entries)
}

/// The first library this process could load whose name starts with
/// `lib{name}.so` (`libc` → `libc.so.6`), as bcc and bpftrace pick it.
pub fn find_library(entries: &[CacheEntry], name: &str) -> Option<PathBuf> {
    let prefix = format!("lib{name}.so");
    entries
        .iter()
        .find(|e| e.name.starts_with(&prefix) && e.flags == HOST_FLAGS)
        .map(|e| e.path.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache with the given (name, path) entries, in the new format.
    fn cache(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut strings = Vec::new();
        let base = NEW_HEADER + entries.len() * NEW_ENTRY;
        let mut offs = Vec::new();
        for (name, path) in entries {
            offs.push(base + strings.len());
            strings.extend_from_slice(name.as_bytes());
            strings.push(0);
            offs.push(base + strings.len());
            strings.extend_from_slice(path.as_bytes());
            strings.push(0);
        }
        let mut out = NEW_MAGIC.to_vec();
        out.extend((entries.len() as u32).to_ne_bytes());
        out.extend((strings.len() as u32).to_ne_bytes());
        out.resize(NEW_HEADER, 0);
        for pair in offs.chunks(2) {
            out.extend(HOST_FLAGS.to_ne_bytes());
            out.extend((pair[0] as u32).to_ne_bytes());
            out.extend((pair[1] as u32).to_ne_bytes());
            out.extend([0u8; 12]);
        }
        out.extend(strings);
        out
    }

    #[test]
    fn finds_a_library_by_short_name() {
        let data = cache(&[
            ("libcrypt.so.1", "/lib/libcrypt.so.1"),
            ("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"),
        ]);
        let entries = parse(&data).expect("parses");
        assert_eq!(entries.len(), 2);
        assert_eq!(
            find_library(&entries, "c"),
            Some(PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"))
        );
        assert_eq!(
            find_library(&entries, "crypt"),
            Some(PathBuf::from("/lib/libcrypt.so.1"))
        );
        assert_eq!(find_library(&entries, "nosuch"), None);
    }

    #[test]
    fn old_table_before_the_new_one() {
        let new = cache(&[("libm.so.6", "/lib/libm.so.6")]);
        let mut data = OLD_MAGIC.to_vec();
        data.resize(12, 0);
        data.extend(0u32.to_ne_bytes());
        data.resize(16, 0);
        // String offsets are relative to the new table: unchanged.
        data.extend(&new);
        let entries = parse(&data).expect("parses");
        assert_eq!(entries[0].name, "libm.so.6");
    }

    #[test]
    fn rejects_other_files() {
        assert!(parse(b"\x7fELF").is_none());
        assert!(parse(&NEW_MAGIC[..10]).is_none());
    }

    #[test]
    fn reads_this_systems_cache() {
        let Ok(entries) = read(Path::new(LD_SO_CACHE)) else {
            return;
        };
        assert!(entries.iter().any(|e| e.name.starts_with("libc.so")));
    }
}
