//! Platforms without a shared-memory backend yet: creation fails cleanly at run time.

use std::io;
use std::os::fd::OwnedFd;

/// See [`super`]. Always fails with [`io::ErrorKind::Unsupported`].
pub(crate) fn create_anonymous(_size: u64) -> io::Result<OwnedFd> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "venus-rs shared memory is not implemented on this platform",
    ))
}
