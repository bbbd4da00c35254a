//! Reading the BPF ring buffer that carries printf/print/... events.

use std::{
    io,
    ops::Deref,
    os::fd::{AsFd, AsRawFd as _, BorrowedFd},
    time::Duration,
};

use aya::maps::{MapData, RingBuf};

use crate::error::{KernelError, Result};

/// Consumer side of a `BPF_MAP_TYPE_RINGBUF`. Owns its own map fd.
pub struct EventReader {
    name: String,
    ring: RingBuf<MapData>,
}

impl std::fmt::Debug for EventReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventReader")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The ring buffer's fd polls readable when records wait, so a caller can
/// wait for events and other fds (a traced process's pidfd) at once.
impl AsFd for EventReader {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.ring.as_fd()
    }
}

impl EventReader {
    pub(crate) fn new(name: &str, data: MapData) -> Result<Self> {
        let map = aya::maps::Map::RingBuf(data);
        let ring = RingBuf::try_from(map).map_err(|e| KernelError::Map {
            map: name.into(),
            op: "mapping the ring buffer",
            source: io::Error::other(e),
        })?;
        Ok(Self {
            name: name.into(),
            ring,
        })
    }

    /// Waits until data is available or `timeout` passes. `Ok(false)` on
    /// timeout or when interrupted by a signal (the caller re-checks its
    /// exit conditions either way).
    pub fn poll(&self, timeout: Duration) -> Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.ring.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `pfd` is one valid pollfd whose fd we own for the call.
        let rc = unsafe { libc::poll(&raw mut pfd, 1, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(KernelError::Map {
                map: self.name.clone(),
                op: "poll",
                source: e,
            });
        }
        Ok(rc > 0)
    }

    /// The next record, if any. It is consumed when the returned guard drops.
    #[expect(
        clippy::should_implement_trait,
        reason = "items borrow the reader, so this cannot be an Iterator"
    )]
    pub fn next(&mut self) -> Option<impl Deref<Target = [u8]> + '_> {
        self.ring.next()
    }

    /// Hands every available record to `f`; returns how many there were.
    pub fn drain(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        let mut n = 0;
        while let Some(item) = self.ring.next() {
            f(&item);
            n += 1;
        }
        n
    }
}
