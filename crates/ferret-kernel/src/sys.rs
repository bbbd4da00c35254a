//! The few raw `bpf(2)` commands aya does not expose for untyped maps.

use std::{
    io,
    os::fd::{AsRawFd as _, BorrowedFd},
};

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;

/// `BPF_ANY`: create or update.
pub(crate) const BPF_ANY: u64 = 0;

/// The map-element member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    /// `value` or `next_key`, depending on the command.
    value: u64,
    flags: u64,
}

/// # Safety
/// The key and value pointers in `attr` must be valid for the sizes the
/// kernel reads or writes for that map and command.
unsafe fn map_elem(cmd: libc::c_long, attr: &MapElemAttr) -> io::Result<()> {
    // SAFETY: `attr` is a properly laid out prefix of `union bpf_attr` and the
    // size passed is its size; the kernel copies it in and keeps no pointer.
    // The buffers it points to are valid per this function's contract.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_ref(attr),
            size_of::<MapElemAttr>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn attr(fd: BorrowedFd<'_>, key: Option<&[u8]>, value: u64, flags: u64) -> MapElemAttr {
    MapElemAttr {
        map_fd: u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX),
        _pad: 0,
        key: key.map_or(0, |k| k.as_ptr() as u64),
        value,
        flags,
    }
}

/// Looks `key` up, writing the value into `value`. `Ok(false)`: no such key.
///
/// # Safety
/// `key.len()` must be the map's key size and `value.len()` at least what the
/// kernel writes for this map (value size, or the per-CPU total).
pub(crate) unsafe fn lookup(fd: BorrowedFd<'_>, key: &[u8], value: &mut [u8]) -> io::Result<bool> {
    // SAFETY: forwarded from this function's contract.
    let result = unsafe {
        map_elem(
            BPF_MAP_LOOKUP_ELEM,
            &attr(fd, Some(key), value.as_mut_ptr() as u64, 0),
        )
    };
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Stores `value` under `key`.
///
/// # Safety
/// `key.len()` must be the map's key size and `value.len()` what the kernel
/// reads for this map (value size, or the per-CPU total).
pub(crate) unsafe fn update(
    fd: BorrowedFd<'_>,
    key: &[u8],
    value: &[u8],
    flags: u64,
) -> io::Result<()> {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        map_elem(
            BPF_MAP_UPDATE_ELEM,
            &attr(fd, Some(key), value.as_ptr() as u64, flags),
        )
    }
}

/// Deletes `key`. `Ok(false)`: there was no such key.
///
/// # Safety
/// `key.len()` must be the map's key size.
pub(crate) unsafe fn delete(fd: BorrowedFd<'_>, key: &[u8]) -> io::Result<bool> {
    // SAFETY: forwarded from this function's contract.
    match unsafe { map_elem(BPF_MAP_DELETE_ELEM, &attr(fd, Some(key), 0, 0)) } {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes the key after `key` (the first key when `None`) into `next`.
/// `Ok(false)`: no more keys.
///
/// # Safety
/// `key` (when given) and `next` must both be exactly the map's key size.
pub(crate) unsafe fn next_key(
    fd: BorrowedFd<'_>,
    key: Option<&[u8]>,
    next: &mut [u8],
) -> io::Result<bool> {
    // SAFETY: forwarded from this function's contract.
    let result = unsafe {
        map_elem(
            BPF_MAP_GET_NEXT_KEY,
            &attr(fd, key, next.as_mut_ptr() as u64, 0),
        )
    };
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}
