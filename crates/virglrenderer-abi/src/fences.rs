//! Fence delivery: ctx0 fences (`virgl_renderer_create_fence`) and per-context fences
//! (`virgl_renderer_context_create_fence`) reach the VMM through its callbacks.
//!
//! A context fence is a completion on the core's fence timeline `ring_idx`
//! ([`venus_renderer::Context::submit`] with an empty stream): it runs once the host finished
//! everything submitted before it on that timeline, on the timeline's retire thread (a bound
//! queue) or before `submit` returns (ring 0, an unbound ring).
//!
//! Delivery: with `VIRGL_RENDERER_ASYNC_FENCE_CB`, a completion running on a retire thread
//! calls `write_context_fence` right there. Everything else (no ASYNC_FENCE_CB, a completion
//! running on the VMM's own thread, every ctx0 fence) is queued, the eventfd of
//! [`FenceSink::poll_fd`] becomes readable, and `virgl_renderer_poll` /
//! `virgl_renderer_context_poll` call the callbacks from the VMM's thread. The queue lock is
//! never held while a callback runs.

use std::collections::VecDeque;
use std::ffi::c_void;
use std::os::fd::RawFd;
use std::sync::Mutex;
use std::thread::{self, ThreadId};

use crate::sys::PollSignal;

use crate::ffi::{WriteContextFenceFn, WriteFenceFn};

/// One retired fence waiting for its callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fence {
    /// `write_fence(cookie, fence_id)`.
    Global(u32),
    /// `write_context_fence(cookie, ctx_id, ring_idx, fence_id)`.
    Context {
        ctx_id: u32,
        ring_idx: u32,
        fence_id: u64,
    },
}

/// The VMM's fence callbacks and cookie.
#[derive(Debug, Clone, Copy)]
pub struct FenceCallbacks {
    /// The VMM's cookie, passed back as is (kept as an address: we never dereference it).
    pub cookie: usize,
    pub write_fence: Option<WriteFenceFn>,
    pub write_context_fence: Option<WriteContextFenceFn>,
}

impl FenceCallbacks {
    fn deliver(&self, fence: Fence) {
        let cookie = self.cookie as *mut c_void;
        match fence {
            Fence::Global(id) => {
                if let Some(f) = self.write_fence {
                    // SAFETY: the VMM registered `f` in virgl_renderer_init for exactly this
                    // signature and this cookie; it stays valid until virgl_renderer_cleanup,
                    // which stops every thread that could call it first.
                    unsafe { f(cookie, id) }
                }
            }
            Fence::Context {
                ctx_id,
                ring_idx,
                fence_id,
            } => {
                if let Some(f) = self.write_context_fence {
                    // SAFETY: as above (callbacks version >= 3 provides this field).
                    unsafe { f(cookie, ctx_id, ring_idx, fence_id) }
                }
            }
        }
    }
}

/// See the module doc.
#[derive(Debug)]
pub struct FenceSink {
    callbacks: FenceCallbacks,
    async_cb: bool,
    queue: Mutex<VecDeque<Fence>>,
    signal: PollSignal,
}

impl FenceSink {
    /// A sink delivering through `callbacks`; `async_cb`: VIRGL_RENDERER_ASYNC_FENCE_CB.
    pub fn new(callbacks: FenceCallbacks, async_cb: bool) -> rustix::io::Result<Self> {
        Ok(Self {
            callbacks,
            async_cb,
            queue: Mutex::default(),
            signal: PollSignal::new()?,
        })
    }

    /// The fd that is readable while fences wait for `virgl_renderer_poll`.
    pub fn poll_fd(&self) -> RawFd {
        self.signal.fd()
    }

    /// A fence retired on thread `current`; `origin` is the VMM thread that created it.
    pub fn retire(&self, fence: Fence, origin: ThreadId) {
        if self.async_cb && thread::current().id() != origin {
            self.callbacks.deliver(fence);
            return;
        }
        lock(&self.queue).push_back(fence);
        self.signal.raise();
    }

    /// Delivers the queued fences of `ctx_id` (all fences when `None`), in retirement order.
    pub fn poll(&self, ctx_id: Option<u32>) -> usize {
        let ready: Vec<Fence> = {
            let mut q = lock(&self.queue);
            self.signal.clear();
            let (take, keep): (VecDeque<Fence>, VecDeque<Fence>) =
                q.drain(..).partition(|f| match (ctx_id, f) {
                    (None, _) => true,
                    (Some(c), Fence::Context { ctx_id, .. }) => *ctx_id == c,
                    (Some(_), Fence::Global(_)) => false,
                });
            *q = keep;
            if !q.is_empty() {
                self.signal.raise();
            }
            take.into()
        };
        for f in &ready {
            self.callbacks.deliver(*f);
        }
        ready.len()
    }

    /// Forgets every queued fence (virgl_renderer_reset).
    pub fn clear(&self) {
        lock(&self.queue).clear();
        self.signal.clear();
    }
}

/// Locks `m`, recovering the data of a poisoned lock (a panicking callback must not wedge the
/// renderer: every exported function catches panics).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
