//! Platform layer: creating an anonymous shared-memory object.
//!
//! The one interface every platform provides:
//!
//! ```text
//! fn create_anonymous(size: u64) -> std::io::Result<OwnedFd>
//! ```
//!
//! It returns a close-on-exec fd of a new, zero-filled shared-memory object of exactly `size`
//! bytes that has no name anyone could open, can be mapped `MAP_SHARED` read-write at offset 0,
//! and **whose size the peer that receives the fd cannot change**: a peer that could shrink the
//! object would make our own accesses to the mapping fault (SIGBUS), i.e. crash the host.
//!
//! This is the only place where the platform is selected; the rest of [`crate::shm`] is
//! portable (mapping goes through `rustix::mm`, which is POSIX).

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux;
#[cfg(any(target_os = "linux", target_os = "android"))]
use linux as imp;

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
use macos as imp;

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
mod unsupported;
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
use unsupported as imp;

pub(super) use imp::create_anonymous;
