//! Raw system calls: `bpf(2)` (map elements of untyped maps, and the
//! commands the loader and the attach code build), `perf_event_open(2)` and
//! the perf event ioctls. The attribute layouts are the kernel's uapi ones as
//! aya-obj generates them.

use std::{
    io,
    os::fd::{AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd},
};

use aya_obj::generated::{
    PERF_EVENT_IOC_DISABLE, PERF_EVENT_IOC_ENABLE, PERF_EVENT_IOC_SET_BPF, PERF_FLAG_FD_CLOEXEC,
};
pub(crate) use aya_obj::generated::{bpf_attr, bpf_cmd, perf_event_attr};

/// An all-zero `union bpf_attr`: every command wants unused fields zero.
pub(crate) fn zeroed_attr() -> bpf_attr {
    // SAFETY: `bpf_attr` is a C union of integers and arrays of integers,
    // for which all-zero bytes are a valid value.
    unsafe { std::mem::zeroed() }
}

/// An all-zero `struct perf_event_attr` with its size filled in.
pub(crate) fn zeroed_perf_attr() -> perf_event_attr {
    // SAFETY: a C struct of integers (and bitfield bytes): all-zero is valid.
    let mut attr: perf_event_attr = unsafe { std::mem::zeroed() };
    attr.size = size_of::<perf_event_attr>() as u32;
    attr
}

/// `bpf(cmd, attr)`; returns the non-negative result.
///
/// # Safety
/// Every pointer in `attr` that `cmd` reads or writes must be valid for the
/// sizes given next to it in `attr`.
pub(crate) unsafe fn bpf(cmd: bpf_cmd, attr: &mut bpf_attr) -> io::Result<i64> {
    // SAFETY: `attr` is a whole `union bpf_attr` and its size is passed; the
    // pointers inside are valid per this function's contract.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            std::ptr::from_mut(attr),
            size_of::<bpf_attr>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// [`bpf`] for the commands that return a new file descriptor.
///
/// # Safety
/// As for [`bpf`].
pub(crate) unsafe fn bpf_fd(cmd: bpf_cmd, attr: &mut bpf_attr) -> io::Result<OwnedFd> {
    // SAFETY: forwarded from this function's contract.
    let fd = unsafe { bpf(cmd, attr) }?;
    let fd = i32::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens a perf event (close-on-exec). `attr.config1` may point to a
/// NUL-terminated string (kprobe function, uprobe path) that must outlive
/// the call, which the caller guarantees by holding it.
pub(crate) fn perf_event_open(attr: &perf_event_attr, pid: i32, cpu: i32) -> io::Result<OwnedFd> {
    // SAFETY: `attr` is a complete perf_event_attr with `size` set; any
    // string it points to is alive for the call (see above).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            std::ptr::from_ref(attr),
            pid,
            cpu,
            -1,
            libc::c_ulong::from(PERF_FLAG_FD_CLOEXEC),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(rc).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: a new descriptor from the kernel that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A perf event ioctl taking an int argument.
fn perf_ioctl(event: BorrowedFd<'_>, request: u32, arg: libc::c_int) -> io::Result<()> {
    // SAFETY: `event` is a live descriptor; these requests take an int
    // argument (a program fd, or nothing) and keep no pointer.
    if unsafe { libc::ioctl(event.as_raw_fd(), request as libc::Ioctl, arg) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `PERF_EVENT_IOC_SET_BPF`: runs program `prog` on every occurrence of
/// `event` until the event is closed.
pub(crate) fn perf_event_set_bpf(event: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
    perf_ioctl(event, PERF_EVENT_IOC_SET_BPF, prog.as_raw_fd())
}

pub(crate) fn perf_event_enable(event: BorrowedFd<'_>) -> io::Result<()> {
    perf_ioctl(event, PERF_EVENT_IOC_ENABLE, 0)
}

pub(crate) fn perf_event_disable(event: BorrowedFd<'_>) -> io::Result<()> {
    perf_ioctl(event, PERF_EVENT_IOC_DISABLE, 0)
}

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
