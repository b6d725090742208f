//! The context's limits on the Vulkan side (see `venus_renderer::limits`): device memory (the
//! sum of the live `vkAllocateMemory` sizes, all heaps) and live host objects (the registry's
//! counters). Both are checked **before** the driver is called.
//!
//! A refused command gets the Vulkan error in its reply when the client asked for one
//! (`VK_ERROR_OUT_OF_DEVICE_MEMORY`, `VK_ERROR_OUT_OF_HOST_MEMORY`, `VK_ERROR_TOO_MANY_OBJECTS`;
//! the first refusal of each limit is logged at WARN, later ones at DEBUG); without a reply
//! (Mesa sends most creations asynchronously) the error is context-fatal, and the core logs the
//! one WARN line naming the limit, its value, the config key and the flag.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use venus_host::generated::calls;
use venus_protocol::types::VkResult;
use venus_protocol::Command;
use venus_renderer::dispatch::DispatchError;
use venus_renderer::{Limit, LimitExceeded};

use crate::{Call, VulkanDispatch};

/// What the context uses of the limits the registry does not count.
#[derive(Default)]
pub(crate) struct Usage {
    /// Bytes of live device memory (shared with every [`DeviceMemoryCharge`]).
    device_memory: Arc<AtomicU64>,
    /// Limits already reported at WARN.
    warned: Mutex<Vec<Limit>>,
}

/// `size` bytes of device memory charged to the context; released when the memory object goes.
pub struct DeviceMemoryCharge {
    total: Arc<AtomicU64>,
    size: u64,
}

impl Drop for DeviceMemoryCharge {
    fn drop(&mut self) {
        self.total.fetch_sub(self.size, Ordering::AcqRel);
    }
}

impl VulkanDispatch {
    /// Charges `size` bytes of device memory, or says which limit refuses it.
    pub(crate) fn charge_device_memory(
        &self,
        call: &Call<'_, '_>,
        size: u64,
    ) -> Result<DeviceMemoryCharge, LimitExceeded> {
        let total = &self.usage.device_memory;
        let before = total.fetch_add(size, Ordering::AcqRel);
        if let Err(e) = call.cx.limits().check(Limit::DeviceMemory, before, size) {
            total.fetch_sub(size, Ordering::AcqRel);
            return Err(e);
        }
        Ok(DeviceMemoryCharge {
            total: Arc::clone(total),
            size,
        })
    }

    /// A limit refused `call`: `Ok` when the client asked for a reply (the caller answers with
    /// the Vulkan error), else the context-fatal error.
    pub(crate) fn refuse(
        &self,
        call: &Call<'_, '_>,
        e: LimitExceeded,
    ) -> Result<(), DispatchError> {
        if !call.cx.wants_reply() {
            return Err(call.invalid(e));
        }
        let first = {
            let mut warned = self.usage.warned.lock().unwrap_or_else(|p| p.into_inner());
            let first = !warned.contains(&e.limit);
            if first {
                warned.push(e.limit);
            }
            first
        };
        if first {
            tracing::warn!(ctx = self.context_id, "{}: refused: {e}", call.name);
        } else {
            tracing::debug!(ctx = self.context_id, "{}: refused: {e}", call.name);
        }
        Ok(())
    }

    /// The object limit, before any command that creates host objects: `None` to run it,
    /// `Some(result)` when it was refused (answered with `VK_ERROR_TOO_MANY_OBJECTS`, or fatal).
    pub(crate) fn check_objects(
        &self,
        call: &mut Call<'_, '_>,
        cmd: &Command<'_>,
    ) -> Option<Result<(), DispatchError>> {
        let n = calls::created_count(cmd);
        if n == 0 {
            return None;
        }
        let live = self.registry.stats().live();
        let e = call.cx.limits().check(Limit::Objects, live, n).err()?;
        let reply = calls::refusal_reply(cmd, VkResult::ERROR_TOO_MANY_OBJECTS);
        Some(match reply {
            Some(reply) if call.cx.wants_reply() => {
                self.refuse(call, e).and_then(|()| call.cx.reply(&reply))
            }
            _ => Err(call.invalid(e)),
        })
    }
}
