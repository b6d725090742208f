//! Platform differences of the test client (the only `cfg`s of the test support code).

use rustix::net::RecvFlags;

/// Flags for receiving the blob fd: close-on-exec where `recvmsg` can set it atomically
/// (`MSG_CMSG_CLOEXEC`, Linux); macOS has no such flag, and a test process that leaks an fd into
/// a child it spawns loses nothing.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub const RECV_FD_FLAGS: RecvFlags = RecvFlags::CMSG_CLOEXEC;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub const RECV_FD_FLAGS: RecvFlags = RecvFlags::empty();
