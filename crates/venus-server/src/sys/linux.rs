//! Linux: `eventfd` notifiers and `memfd` shared memory.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::{eventfd, EventfdFlags};
use rustix::fs::{ftruncate, memfd_create, MemfdFlags};

/// `poll` events that mean "the peer hung up".
pub(super) const HANGUP_EVENTS: rustix::event::PollFlags =
    rustix::event::PollFlags::RDHUP.union(rustix::event::PollFlags::HUP);

#[derive(Debug)]
pub(super) struct Notifier {
    /// One eventfd is both sides. It is non-blocking (the flag lives on the open file
    /// description, so a client holding a clone cannot make our `notify` block by filling the
    /// counter).
    fd: OwnedFd,
}

impl Notifier {
    pub(super) fn new() -> io::Result<Self> {
        let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        Ok(Self { fd })
    }

    pub(super) fn notify(&self) {
        // EAGAIN means the counter is saturated, i.e. already readable.
        let _ = rustix::io::write(&self.fd, &1u64.to_ne_bytes());
    }

    pub(super) fn readable_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

pub(super) fn anonymous_shared_memory(name: &str, size: u64) -> io::Result<OwnedFd> {
    let fd = memfd_create(name, MemfdFlags::CLOEXEC)?;
    ftruncate(&fd, size)?;
    Ok(fd)
}
