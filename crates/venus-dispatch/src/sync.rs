//! Host waits that a client can make arbitrarily long (DESIGN decision 10): `vkWaitForFences`
//! and `vkWaitSemaphores` run in slices of at most [`SLICE`], and give up between slices when
//! the context is lost, its channel stops or its client is gone. The client still sees the
//! semantics it asked for: a wait with `UINT64_MAX` keeps blocking (for that client only) until
//! the host objects signal.

use std::time::{Duration, Instant};

use bumpalo::Bump;

use venus_host::generated::calls;
use venus_protocol::commands::*;
use venus_protocol::types::VkResult;
use venus_protocol::Reply;

use crate::registry::Held;
use crate::{Call, VulkanDispatch};
use venus_renderer::dispatch::DispatchError;

/// The longest single host wait.
pub const SLICE: Duration = Duration::from_millis(100);

/// Calls `attempt(slice_ns)` until it returns something other than `VK_TIMEOUT`, the client's
/// `timeout_ns` has elapsed (then `VK_TIMEOUT`), or the call is cancelled (`Cancelled`).
pub(crate) fn bounded_wait(
    call: &Call<'_, '_>,
    timeout_ns: u64,
    mut attempt: impl FnMut(u64) -> Result<VkResult, DispatchError>,
) -> Result<VkResult, DispatchError> {
    let deadline = Instant::now().checked_add(Duration::from_nanos(timeout_ns));
    loop {
        let remaining = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => SLICE,
        };
        let slice = remaining.min(SLICE);
        let r = attempt(slice.as_nanos() as u64)?;
        if r != VkResult::TIMEOUT {
            return Ok(r);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(VkResult::TIMEOUT);
        }
        if call.cx.is_cancelled() {
            return Err(DispatchError::Cancelled);
        }
    }
}

impl VulkanDispatch {
    pub(crate) fn wait_for_fences(
        &self,
        call: &mut Call<'_, '_>,
        a: &WaitForFencesArgs<'_>,
    ) -> Result<(), DispatchError> {
        let device = self
            .registry
            .device(a.device.raw())
            .map_err(|e| call.invalid(e))?;
        let mut slice_arena = Bump::new();
        let ret = bounded_wait(call, a.timeout, |slice| {
            let sliced = WaitForFencesArgs {
                timeout: slice,
                ..*a
            };
            // A fresh arena and hold list per slice: a wait of days must not grow them.
            slice_arena.reset();
            let held = Held::new(&self.registry);
            let (reply, _) =
                self.execute_in(call, &slice_arena, &held, Some(&device), |procs, lcx| {
                    // SAFETY: forwarded: the handle map is the registry, the procs the device's.
                    unsafe { calls::wait_for_fences(procs, lcx, &sliced) }
                })?;
            Ok(reply.ret)
        })?;
        call.cx
            .reply(&Reply::WaitForFences(WaitForFencesReply { ret }))
    }

    pub(crate) fn wait_semaphores(
        &self,
        call: &mut Call<'_, '_>,
        a: &WaitSemaphoresArgs<'_>,
    ) -> Result<(), DispatchError> {
        let device = self
            .registry
            .device(a.device.raw())
            .map_err(|e| call.invalid(e))?;
        let mut slice_arena = Bump::new();
        let ret = bounded_wait(call, a.timeout, |slice| {
            let sliced = WaitSemaphoresArgs {
                timeout: slice,
                ..*a
            };
            // A fresh arena and hold list per slice: a wait of days must not grow them.
            slice_arena.reset();
            let held = Held::new(&self.registry);
            let (reply, _) =
                self.execute_in(call, &slice_arena, &held, Some(&device), |procs, lcx| {
                    // SAFETY: forwarded: the handle map is the registry, the procs the device's.
                    unsafe { calls::wait_semaphores(procs, lcx, &sliced) }
                })?;
            Ok(reply.ret)
        })?;
        call.cx
            .reply(&Reply::WaitSemaphores(WaitSemaphoresReply { ret }))
    }
}
