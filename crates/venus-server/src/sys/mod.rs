//! Platform code, behind one interface (DESIGN.md decision 7: no `cfg` sprinkled through
//! shared code).
//!
//! - [`Notifier`]: a file descriptor that becomes readable (`POLLIN`) once [`Notifier::notify`]
//!   is called. Linux: an `eventfd`; other Unix (macOS): a pipe whose read end is handed out.
//! - [`anonymous_shared_memory`]: a new zero-filled shared-memory file of a given size.
//!   Linux: `memfd_create`; other Unix: `shm_open` of a random name, unlinked at once.
//!
//! - [`peer_hung_up`]: whether the other end of a socket has hung up (a `poll` with timeout
//!   0; Linux also reports a half-close with `POLLRDHUP`).
//!
//! Both are used by the vtest transport (SYNC_WAIT fds, the accept loop's wake-up) and by the
//! stub backend. Everything here is safe Rust on top of `rustix`.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux;
#[cfg(any(target_os = "linux", target_os = "android"))]
use linux as imp;

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod unix;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
use unix as imp;

/// A one-shot readiness signal backed by a pollable file descriptor.
///
/// The fd returned by [`Notifier::readable_fd`] (or a clone of it from
/// [`Notifier::try_clone_readable`], e.g. to send to a client) polls readable after
/// [`Notifier::notify`]. Notifying is idempotent and never blocks: the write side is
/// non-blocking, and a full counter/pipe already means "readable".
#[derive(Debug)]
pub struct Notifier {
    inner: imp::Notifier,
}

impl Notifier {
    /// Creates an unsignalled notifier (close-on-exec fds).
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            inner: imp::Notifier::new()?,
        })
    }

    /// Makes the readable fd poll readable. Never blocks; errors are not actionable (the fd is
    /// then already readable, or the other side is gone) and are ignored.
    pub fn notify(&self) {
        self.inner.notify();
    }

    /// The fd that becomes readable (for `poll`).
    pub fn readable_fd(&self) -> BorrowedFd<'_> {
        self.inner.readable_fd()
    }

    /// A new fd for the readable side (to hand to a client).
    pub fn try_clone_readable(&self) -> io::Result<OwnedFd> {
        self.readable_fd().try_clone_to_owned()
    }
}

/// Whether the peer of the connected socket `fd` has hung up (or the socket failed): one
/// non-blocking `poll` for `POLLHUP`/`POLLERR` (and `POLLRDHUP` on Linux). Never blocks.
pub fn peer_hung_up(fd: BorrowedFd<'_>) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(&fd, imp::HANGUP_EVENTS)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match poll(&mut fds, Some(&zero)) {
        Ok(0) => false,
        Ok(_) => fds[0]
            .revents()
            .intersects(imp::HANGUP_EVENTS | PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL),
        Err(_) => false,
    }
}

/// Creates a zero-filled anonymous shared-memory file of exactly `size` bytes (close-on-exec).
/// `name` is only a debugging label (visible in `/proc/PID/fd` on Linux).
pub fn anonymous_shared_memory(name: &str, size: u64) -> io::Result<OwnedFd> {
    imp::anonymous_shared_memory(name, size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn peer_hang_up_is_seen_without_reading() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        assert!(!peer_hung_up(ours.as_fd()));
        // Unread data is not a hang-up.
        theirs.write_all(b"pending").unwrap();
        assert!(!peer_hung_up(ours.as_fd()));
        drop(theirs);
        assert!(peer_hung_up(ours.as_fd()));
    }
}
