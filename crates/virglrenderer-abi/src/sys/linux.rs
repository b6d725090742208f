//! Linux: an eventfd.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use rustix::event::{eventfd, EventfdFlags};

#[derive(Debug)]
pub(super) struct PollSignal(OwnedFd);

impl PollSignal {
    pub(super) fn new() -> rustix::io::Result<Self> {
        eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).map(Self)
    }

    pub(super) fn raise(&self) {
        // A full counter (2^64 - 2) cannot happen with one write per fence; ignore EAGAIN.
        let _ = rustix::io::write(self.0.as_fd(), &1u64.to_ne_bytes());
    }

    pub(super) fn clear(&self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(self.0.as_fd(), &mut buf);
    }

    pub(super) fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}
