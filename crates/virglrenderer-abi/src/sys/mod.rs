//! Platform code of the library, behind one interface (DESIGN.md decision 7).
//!
//! [`PollSignal`]: the fd `virgl_renderer_get_poll_fd` hands the VMM, readable while fences
//! wait for `virgl_renderer_poll`. Linux: an eventfd; other Unix (macOS, where libkrun runs):
//! a non-blocking pipe whose read end is handed out.

use std::os::fd::RawFd;

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux;
#[cfg(any(target_os = "linux", target_os = "android"))]
use linux as imp;

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod unix;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
use unix as imp;

/// A level-triggered readiness fd: readable after [`PollSignal::raise`] until
/// [`PollSignal::clear`].
#[derive(Debug)]
pub struct PollSignal(imp::PollSignal);

impl PollSignal {
    /// A new, clear signal (close-on-exec, non-blocking fds).
    pub fn new() -> rustix::io::Result<Self> {
        imp::PollSignal::new().map(Self)
    }

    /// Makes the fd readable (idempotent, never blocks).
    pub fn raise(&self) {
        self.0.raise();
    }

    /// Makes the fd not readable (until the next [`PollSignal::raise`]).
    pub fn clear(&self) {
        self.0.clear();
    }

    /// The fd to poll.
    pub fn fd(&self) -> RawFd {
        self.0.fd()
    }
}
