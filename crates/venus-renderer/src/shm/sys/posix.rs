//! POSIX shared memory: an anonymous object made with `shm_open` + `shm_unlink` + `ftruncate`.
//!
//! What macOS uses (it has no `memfd_create`); selectable on Linux too
//! ([`crate::shm::ShmBacking::Posix`], `--profile apple`) so that this path runs in CI.
//!
//! We create a uniquely named object with `O_CREAT | O_EXCL`, unlink the name at once (the fd
//! keeps the object alive, nobody else can open it), then size it. `shm_open` sets
//! `FD_CLOEXEC` (POSIX; glibc and rustix pass `O_CLOEXEC`).
//!
//! There is no sealing. What protects us instead:
//! - we never trust the fd's size: every bound is the size we asked for, and our mapping is
//!   fixed at creation (growing the object changes nothing we read or write);
//! - on macOS, XNU allows `ftruncate` on a POSIX shm object only once (a second call fails with
//!   `EINVAL`), so after we sized it the client cannot shrink it either;
//! - on Linux (a tmpfs file under `/dev/shm`) a client holding the fd *can* shrink it, and our
//!   next access past the new end raises SIGBUS. The Linux POSIX backing is therefore a test
//!   seam for the macOS path, not a defence against a hostile client: production Linux hosts
//!   use the sealed memfd ([`crate::shm::ShmBacking::Memfd`], the default).

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{self, Mode};
use rustix::shm;

/// Distinguishes objects created by this process; the pid distinguishes processes.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// See [`super`].
pub(crate) fn create_anonymous(size: u64) -> io::Result<OwnedFd> {
    let pid = rustix::process::getpid().as_raw_nonzero().get();
    // macOS limits names to 31 bytes (PSHMNAMLEN): "/vn." + 8 + "." + 16 hex digits = 29.
    let mut last_err = io::Error::from(io::ErrorKind::AlreadyExists);
    for _ in 0..64 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("/vn.{pid:x}.{n:x}");
        let flags = shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR;
        match shm::open(name.as_str(), flags, Mode::RUSR | Mode::WUSR) {
            Ok(fd) => {
                shm::unlink(name.as_str())?;
                fs::ftruncate(&fd, size)?;
                return Ok(fd);
            }
            // A stale object of a dead process with our pid: try the next name.
            Err(e) if e == rustix::io::Errno::EXIST => last_err = e.into(),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last_err)
}
