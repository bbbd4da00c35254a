//! The bytes of a BTF blob: owned, or mapped read-only from sysfs. Kernels
//! since 6.16 let `/sys/kernel/btf/*` be mapped; reading the 5 MB of
//! vmlinux BTF instead takes over a thousand 4 KiB `read` calls.

use std::fs::File;
use std::ops::Deref;
use std::os::fd::AsRawFd;
use std::path::Path;

pub(crate) enum Bytes {
    Owned(Vec<u8>),
    Mapped(Mapping),
}

impl Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Owned(v) => v,
            Bytes::Mapped(m) => m.as_slice(),
        }
    }
}

/// A private read-only mapping of a whole file; unmapped on drop.
pub(crate) struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and owned by this value alone; sharing
// or sending a pointer to immutable memory is as safe as sharing `&[u8]`.
unsafe impl Send for Mapping {}
// SAFETY: as above, nothing ever writes through the pointer.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes for as long as `self`
        // lives (unmapped only in drop), and nothing writes to them.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned and are
        // unmapped only here.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// The file's bytes: mapped when the file system allows it, else read.
pub(crate) fn load(path: &Path) -> std::io::Result<Bytes> {
    let file = File::open(path)?;
    let len = file.metadata()?.len() as usize;
    if len > 0 {
        // SAFETY: a fresh private read-only mapping of an open file; the
        // kernel validates every argument and reports failure as MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr != libc::MAP_FAILED {
            return Ok(Bytes::Mapped(Mapping { ptr, len }));
        }
    }
    let mut data = Vec::with_capacity(len);
    std::io::Read::read_to_end(&mut &file, &mut data)?;
    Ok(Bytes::Owned(data))
}
