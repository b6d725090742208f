//! Linux: `memfd_create` + `ftruncate` + seals.

use std::io;
use std::os::fd::OwnedFd;

use rustix::fs::{self, MemfdFlags, SealFlags};

/// See [`super`]. The name only shows up in `/proc/<pid>/maps` and `/proc/<pid>/fd`
/// (as `/memfd:venus-shm`); it cannot be opened by name.
///
/// After sizing, the memfd is sealed with `F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`: the
/// client cannot `ftruncate` it (which would turn our accesses into SIGBUS), and cannot add
/// other seals (e.g. `F_SEAL_FUTURE_WRITE`) either.
pub(crate) fn create_anonymous(size: u64) -> io::Result<OwnedFd> {
    let fd = fs::memfd_create(
        c"venus-shm",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?;
    fs::ftruncate(&fd, size)?;
    fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)?;
    Ok(fd)
}
