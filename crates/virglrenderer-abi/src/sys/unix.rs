//! Other Unix (macOS): a non-blocking pipe; its read end is the poll fd.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use rustix::fs::{fcntl_setfl, OFlags};
use rustix::io::{fcntl_setfd, FdFlags};

#[derive(Debug)]
pub(super) struct PollSignal {
    read: OwnedFd,
    write: OwnedFd,
}

impl PollSignal {
    pub(super) fn new() -> rustix::io::Result<Self> {
        let (read, write) = rustix::pipe::pipe()?;
        for fd in [&read, &write] {
            fcntl_setfd(fd, FdFlags::CLOEXEC)?;
            fcntl_setfl(fd, OFlags::NONBLOCK)?;
        }
        Ok(Self { read, write })
    }

    pub(super) fn raise(&self) {
        // EAGAIN: the pipe is full, i.e. already readable.
        let _ = rustix::io::write(self.write.as_fd(), &[1u8]);
    }

    pub(super) fn clear(&self) {
        let mut buf = [0u8; 64];
        while matches!(rustix::io::read(self.read.as_fd(), &mut buf), Ok(n) if n > 0) {}
    }

    pub(super) fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }
}
