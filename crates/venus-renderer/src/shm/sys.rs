//! Platform layer: creating an anonymous shared-memory object.
//!
//! The one interface every platform provides:
//!
//! ```text
//! fn create_anonymous(size: u64, backing: ShmBacking) -> std::io::Result<OwnedFd>
//! const DEFAULT_BACKING: ShmBacking
//! ```
//!
//! It returns a close-on-exec fd of a new, zero-filled shared-memory object of exactly `size`
//! bytes that has no name anyone could open and can be mapped `MAP_SHARED` read-write at
//! offset 0. Whether the peer that receives the fd can change its size depends on the backing
//! and the platform (see [`ShmBacking`]): a peer that shrinks the object makes our own accesses
//! to the mapping fault (SIGBUS).
//!
//! Backings: `linux.rs` (memfd, Linux only), `posix.rs` (`shm_open`, macOS and Linux).
//! This is the only place where the platform is selected; the rest of [`crate::shm`] is
//! portable (mapping goes through `rustix::mm`, which is POSIX).

use std::io;
use std::os::fd::OwnedFd;

use super::ShmBacking;

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux;
#[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
mod posix;

#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) const DEFAULT_BACKING: ShmBacking = ShmBacking::Memfd;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(super) const DEFAULT_BACKING: ShmBacking = ShmBacking::Posix;

/// Creates the object with `backing`; a backing the platform lacks is
/// [`io::ErrorKind::Unsupported`].
pub(super) fn create_anonymous(size: u64, backing: ShmBacking) -> io::Result<OwnedFd> {
    match backing {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        ShmBacking::Memfd => linux::create_anonymous(size),
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
        ShmBacking::Posix => posix::create_anonymous(size),
        #[allow(unreachable_patterns)]
        _ => {
            let _ = size;
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("shared-memory backing {backing:?} is not available on this platform"),
            ))
        }
    }
}
