//! Other Unix systems (macOS, the BSDs): pipe notifiers and `shm_open` shared memory.
//!
//! Not compile-tested in CI yet (no macOS runner); keep it to POSIX calls rustix offers there.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{fcntl_setfl, ftruncate, Mode, OFlags};
use rustix::io::{fcntl_setfd, FdFlags};

/// `poll` events that mean "the peer hung up".
pub(super) const HANGUP_EVENTS: rustix::event::PollFlags = rustix::event::PollFlags::HUP;

#[derive(Debug)]
pub(super) struct Notifier {
    read: OwnedFd,
    write: OwnedFd,
}

impl Notifier {
    pub(super) fn new() -> io::Result<Self> {
        let (read, write) = rustix::pipe::pipe()?;
        for fd in [&read, &write] {
            fcntl_setfd(fd, FdFlags::CLOEXEC)?;
        }
        fcntl_setfl(&write, OFlags::NONBLOCK)?;
        Ok(Self { read, write })
    }

    pub(super) fn notify(&self) {
        // EAGAIN means the pipe is full, i.e. already readable; EPIPE means nobody listens.
        let _ = rustix::io::write(&self.write, &[1u8]);
    }

    pub(super) fn readable_fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }
}

pub(super) fn anonymous_shared_memory(name: &str, size: u64) -> io::Result<OwnedFd> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // Short names: macOS limits shm names to 31 bytes.
    let _ = name;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let shm_name = format!("/vrs{}.{n}", std::process::id());
        match rustix::shm::open(
            shm_name.as_str(),
            rustix::shm::OFlags::CREATE | rustix::shm::OFlags::EXCL | rustix::shm::OFlags::RDWR,
            Mode::RUSR | Mode::WUSR,
        ) {
            Ok(fd) => {
                rustix::shm::unlink(shm_name.as_str())?;
                fcntl_setfd(&fd, FdFlags::CLOEXEC)?;
                ftruncate(&fd, size)?;
                return Ok(fd);
            }
            Err(rustix::io::Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free shm_open name",
    ))
}
