//! macOS: an anonymous POSIX shared-memory object (`shm_open` + `shm_unlink` + `ftruncate`).
//!
//! macOS has no `memfd_create`. We create a uniquely named object with `O_CREAT | O_EXCL`,
//! unlink the name at once (the fd keeps the object alive, nobody else can open it), then size
//! it. XNU allows `ftruncate` on a POSIX shm object only once (a second call fails with
//! `EINVAL`), so after we sized it the client cannot shrink it: no sealing needed.
//! `shm_open` sets `FD_CLOEXEC` (POSIX).

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
    // Names are limited to 31 bytes (PSHMNAMLEN): "/vn." + 8 + "." + 16 hex digits = 29.
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
