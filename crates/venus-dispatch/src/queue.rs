//! Queues: binding (`vkGetDeviceQueue2` with the client's timeline), submissions serialised per
//! queue, and the fence markers that tell when a queue's work so far has finished (for
//! `vkQueueWaitIdle` / `vkDeviceWaitIdle` in bounded slices and for the core's timelines).
//!
//! Vulkan requires external synchronisation of a queue; a hostile client could submit to one
//! queue from two rings at once, so every driver call on a queue takes the queue's `submit`
//! lock (lock order: see [`crate::registry`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use venus_host::generated::calls;
use venus_host::vk;
use venus_protocol::commands::*;
use venus_protocol::structs::Ext;
use venus_protocol::types::VkResult;
use venus_protocol::{handles, ChainNode, Handle, Reply};

use crate::profile::{Support, SYNC_FD};
use crate::registry::{DeviceShared, NewObject, Owner, State, Teardown};
use crate::sync::bounded_wait;
use crate::{Call, VulkanDispatch};
use venus_renderer::dispatch::DispatchError;
use venus_renderer::timeline::{Marker, TimelineError, TimelineQueue};

/// `VK_SEMAPHORE_IMPORT_TEMPORARY_BIT`.
const SEMAPHORE_IMPORT_TEMPORARY: u32 = 0x1;

/// A `VkQueue`.
pub struct QueueShared {
    pub guest: u64,
    pub host: vk::Queue,
    pub device: Arc<DeviceShared>,
    /// The client's timeline for this queue (`VkDeviceQueueTimelineInfoMESA::ringIdx`).
    pub ring_idx: Option<u32>,
    submit: Mutex<()>,
}

impl QueueShared {
    /// Runs `f` with the queue's submission lock held.
    pub(crate) fn locked<R>(&self, f: impl FnOnce() -> R) -> R {
        let _g = self.submit.lock().unwrap_or_else(|e| e.into_inner());
        f()
    }

    /// Submits an empty batch with a new fence: it signals once everything submitted to the
    /// queue before it has finished.
    pub fn submit_marker(&self) -> Result<FenceMarker, String> {
        let marker = self.new_marker()?;
        let _g = self.submit.lock().unwrap_or_else(|e| e.into_inner());
        self.submit_marker_locked(marker)
    }

    /// [`QueueShared::submit_marker`] unless another thread holds the queue's lock (`None`:
    /// for the teardown, which must not block behind a thread stuck in the driver).
    pub(crate) fn try_submit_marker(&self) -> Option<Result<FenceMarker, String>> {
        let _g = match self.submit.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(self.new_marker().and_then(|m| self.submit_marker_locked(m)))
    }

    /// An unsignalled fence of the queue's device.
    fn new_marker(&self) -> Result<FenceMarker, String> {
        let d = &self.device;
        let create = d
            .procs
            .create_fence
            .ok_or("the driver lacks vkCreateFence")?;
        let info = vk::FenceCreateInfo::default();
        let mut fence = vk::Fence::NULL;
        // SAFETY: the device is live (we hold it); `info` is a valid create info.
        let r = unsafe { create(d.host, &info, std::ptr::null(), &mut fence) };
        if r != VkResult::SUCCESS {
            return Err(format!("vkCreateFence: {r:?}"));
        }
        Ok(FenceMarker {
            device: Arc::clone(d),
            fence,
            signalled: false,
        })
    }

    /// Submits `marker`'s fence behind the queue's work; the caller holds the queue lock.
    fn submit_marker_locked(&self, marker: FenceMarker) -> Result<FenceMarker, String> {
        let submit = self
            .device
            .procs
            .queue_submit
            .ok_or("the driver lacks vkQueueSubmit")?;
        // SAFETY: the queue belongs to the live device; zero batches; the fence is unsignalled
        // and unused; the caller holds the queue lock, which serialises queue access.
        let r = unsafe { submit(self.host, 0, std::ptr::null(), marker.fence) };
        if r != VkResult::SUCCESS {
            // Never submitted: its drop destroys it (a zero wait sees it unsignalled, so it is
            // deferred to the device's destruction, which is valid either way).
            return Err(format!("vkQueueSubmit(marker): {r:?}"));
        }
        Ok(marker)
    }
}

impl QueueShared {
    /// Signals binary semaphore `semaphore` (host handle) with an empty submission: it becomes
    /// signalled once the queue's earlier work is done, and a later submission that waits on
    /// it is ordered after it (emulated sync_fd import of an already signalled payload).
    pub fn signal_semaphore(&self, semaphore: vk::Semaphore) -> Result<(), String> {
        self.locked(|| self.signal_semaphore_locked(semaphore))
    }

    /// [`QueueShared::signal_semaphore`] with the queue's lock already held by the caller.
    pub(crate) fn signal_semaphore_locked(&self, semaphore: vk::Semaphore) -> Result<(), String> {
        let submit = self
            .device
            .procs
            .queue_submit
            .ok_or("the driver lacks vkQueueSubmit")?;
        let info = vk::SubmitInfo {
            signal_semaphore_count: 1,
            p_signal_semaphores: &semaphore,
            ..Default::default()
        };
        // SAFETY: the queue belongs to the live device we hold; `info` points to `semaphore`,
        // a live semaphore of that device, for the call; the caller holds the queue lock,
        // which serialises the queue.
        let r = unsafe { submit(self.host, 1, &info, vk::Fence::NULL) };
        if r != VkResult::SUCCESS {
            return Err(format!("vkQueueSubmit(signal): {r:?}"));
        }
        Ok(())
    }
}

/// A fence submitted behind a queue's work (see [`QueueShared::submit_marker`]).
pub struct FenceMarker {
    device: Arc<DeviceShared>,
    fence: vk::Fence,
    signalled: bool,
}

impl FenceMarker {
    /// Waits up to `timeout` in the driver: `Ok(true)` once the fence signalled.
    pub fn wait(&mut self, timeout: Duration) -> Result<bool, String> {
        if self.signalled {
            return Ok(true);
        }
        let wait = self
            .device
            .procs
            .wait_for_fences
            .ok_or("the driver lacks vkWaitForFences")?;
        let ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        // SAFETY: the fence belongs to the live device we hold.
        let r = unsafe { wait(self.device.host, 1, &self.fence, 1, ns) };
        match r {
            VkResult::SUCCESS => {
                self.signalled = true;
                Ok(true)
            }
            VkResult::TIMEOUT => Ok(false),
            other => Err(format!("vkWaitForFences(marker): {other:?}")),
        }
    }
}

impl FenceMarker {
    /// Whether the fence has signalled, without waiting.
    pub(crate) fn peek_signalled(&self) -> bool {
        if self.signalled {
            return true;
        }
        let Some(status) = self.device.procs.get_fence_status else {
            return false;
        };
        // SAFETY: the fence belongs to the live device we hold.
        unsafe { status(self.device.host, self.fence) == VkResult::SUCCESS }
    }
}

impl Drop for FenceMarker {
    fn drop(&mut self) {
        if !self.signalled && !matches!(self.wait(Duration::ZERO), Ok(true)) {
            // Still pending: destroying it now is invalid; the device destroys it when idle.
            self.device
                .deferred
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(self.fence);
            return;
        }
        if let Some(destroy) = self.device.procs.destroy_fence {
            // SAFETY: the fence signalled, so no pending submission uses it.
            unsafe { destroy(self.device.host, self.fence, std::ptr::null()) };
        }
    }
}

impl TimelineQueue for QueueShared {
    fn submit_marker(&self) -> Result<Box<dyn Marker>, TimelineError> {
        Ok(Box::new(
            QueueShared::submit_marker(self).map_err(TimelineError::Host)?,
        ))
    }
}

impl Marker for FenceMarker {
    fn wait(&mut self, timeout: Duration) -> Result<bool, TimelineError> {
        FenceMarker::wait(self, timeout).map_err(TimelineError::Host)
    }
}

/// Waits (in bounded slices, see [`bounded_wait`]) until `markers` all signalled.
fn wait_markers(
    call: &Call<'_, '_>,
    mut markers: Vec<FenceMarker>,
) -> Result<VkResult, DispatchError> {
    bounded_wait(call, u64::MAX, |slice| {
        for m in &mut markers {
            match m.wait(Duration::from_nanos(slice)) {
                Ok(true) => {}
                Ok(false) => return Ok(VkResult::TIMEOUT),
                Err(e) => {
                    tracing::warn!("{e}");
                    return Ok(VkResult::ERROR_DEVICE_LOST);
                }
            }
        }
        Ok(VkResult::SUCCESS)
    })
}

impl VulkanDispatch {
    pub(crate) fn get_device_queue2(
        &self,
        call: &mut Call<'_, '_>,
        a: &GetDeviceQueue2Args<'_>,
    ) -> Result<(), DispatchError> {
        let device = self
            .registry
            .device(a.device.raw())
            .map_err(|e| call.invalid(e))?;
        let mut ring_idx = None;
        let mut link = a.p_queue_info.p_next;
        while let Some(ext) = link {
            if let Ext::DeviceQueueTimelineInfoMESA(t) = ext {
                ring_idx = Some(t.ring_idx);
            }
            link = ext.next();
        }
        let (reply, outcome) = self.execute(call, Some(&device), |procs, lcx| {
            // SAFETY: forwarded: the handle map is the registry, the procs are the device's.
            unsafe { calls::get_device_queue2(procs, lcx, a) }
        })?;
        let Some(&(_, guest, host)) = outcome.created.first() else {
            return Err(call.invalid("the driver returned no queue"));
        };
        let queue = Arc::new(QueueShared {
            guest,
            host: vk::Queue(host),
            device: Arc::clone(&device),
            ring_idx,
            submit: Mutex::new(()),
        });
        self.registry
            .insert(NewObject {
                guest,
                ty: handles::Queue::OBJECT_TYPE,
                host,
                owner: Owner::Context,
                state: State::Queue(Arc::clone(&queue)),
                teardown: Teardown::Forget,
            })
            .map_err(|e| call.invalid(e))?;
        device
            .queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(&queue));
        if let Some(idx) = ring_idx {
            call.cx.bind_timeline(idx, queue)?;
        }
        call.cx.reply(&Reply::GetDeviceQueue2(reply))
    }

    /// `vkQueueSubmit`, `vkQueueSubmit2`, `vkQueueBindSparse`: generic, under the queue lock,
    /// after their binary-semaphore waits are checked and the deferred imports they consume
    /// are taken ([`crate::binary`]).
    pub(crate) fn queue_op(
        &self,
        call: &mut Call<'_, '_>,
        queue: u64,
        cmd: &venus_protocol::Command<'_>,
    ) -> Result<(), DispatchError> {
        let q = self.registry.queue(queue).map_err(|e| call.invalid(e))?;
        let arena = call.arena;
        q.locked(|| {
            let checked = self.check_binary_waits(call, cmd)?;
            let edited = self
                .consume_imports(arena, &q, cmd, checked)
                .map_err(|e| call.invalid(e))?;
            self.generic(call, edited.as_ref().unwrap_or(cmd))
        })
    }

    /// `vkImportSemaphoreResourceMESA`: in vtest only resource 0 exists, "the binary
    /// semaphore is signalled now" (contract §6.3). With a driver that imports sync_fd, a
    /// temporary import of fd -1 (already signalled); otherwise a binary semaphore records a
    /// deferred import that the queue operation waiting on it consumes ([`crate::binary`]),
    /// and any other semaphore is signalled by an empty submission on the device's first
    /// queue, ahead of the submission that waits on it.
    pub(crate) fn import_semaphore_resource(
        &self,
        call: &mut Call<'_, '_>,
        a: &ImportSemaphoreResourceMESAArgs<'_>,
    ) -> Result<(), DispatchError> {
        let info = a.p_import_semaphore_resource_info;
        if info.resource_id != 0 {
            return Err(call.invalid(format!(
                "resource {} (only 0, signalled now, exists without sync files)",
                info.resource_id
            )));
        }
        let device = self
            .registry
            .device(a.device.raw())
            .map_err(|e| call.invalid(e))?;
        let sem = self
            .registry
            .get_typed(handles::Semaphore::OBJECT_TYPE, info.semaphore.raw())
            .map_err(|e| call.invalid(e))?;
        if !sem.device().is_some_and(|d| Arc::ptr_eq(d, &device)) {
            return Err(call.invalid("the semaphore belongs to another device"));
        }
        let host = vk::Semaphore(sem.host);
        let done = match (
            device.profile.semaphore_fd,
            device.procs.import_semaphore_fd_khr,
        ) {
            (Support::Native, Some(import)) => {
                let fd_info = vk::ImportSemaphoreFdInfoKHR {
                    s_type: vk::ImportSemaphoreFdInfoKHR::STRUCTURE_TYPE,
                    p_next: std::ptr::null_mut(),
                    semaphore: host,
                    flags: SEMAPHORE_IMPORT_TEMPORARY,
                    handle_type: SYNC_FD,
                    fd: -1,
                };
                // SAFETY: the semaphore is a live binary semaphore of the live device.
                match unsafe { import(device.host, &fd_info) } {
                    VkResult::SUCCESS => Ok(()),
                    r => Err(format!("vkImportSemaphoreFdKHR(-1): {r:?}")),
                }
            }
            _ => match &sem.state {
                State::BinarySemaphore(b) => {
                    b.defer_import();
                    Ok(())
                }
                _ => match device.live_queues().first() {
                    Some(q) => q.signal_semaphore(host),
                    None => Err("the device has no queue to signal on".into()),
                },
            },
        };
        done.map_err(|e| call.invalid(e))?;
        self.binary_signalled(info.semaphore.raw());
        call.cx.reply(&Reply::ImportSemaphoreResourceMESA(
            ImportSemaphoreResourceMESAReply {},
        ))
    }

    pub(crate) fn queue_wait_idle(
        &self,
        call: &mut Call<'_, '_>,
        a: &QueueWaitIdleArgs,
    ) -> Result<(), DispatchError> {
        let q = self
            .registry
            .queue(a.queue.raw())
            .map_err(|e| call.invalid(e))?;
        let marker = q.submit_marker().map_err(|e| call.invalid(e))?;
        let ret = wait_markers(call, vec![marker])?;
        call.cx
            .reply(&Reply::QueueWaitIdle(QueueWaitIdleReply { ret }))
    }

    pub(crate) fn device_wait_idle(
        &self,
        call: &mut Call<'_, '_>,
        a: &DeviceWaitIdleArgs,
    ) -> Result<(), DispatchError> {
        let d = self
            .registry
            .device(a.device.raw())
            .map_err(|e| call.invalid(e))?;
        let markers = d
            .live_queues()
            .iter()
            .map(|q| q.submit_marker())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| call.invalid(e))?;
        let ret = wait_markers(call, markers)?;
        call.cx
            .reply(&Reply::DeviceWaitIdle(DeviceWaitIdleReply { ret }))
    }
}
