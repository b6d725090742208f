//! Binary semaphores: whether a signal is pending, and the refusal of a queue operation that
//! waits on one with none (invalid usage, VUID-vkQueueSubmit-pWaitSemaphores-03238 and its
//! `vkQueueSubmit2`/`vkQueueBindSparse` twins). Drivers block in the submission until a
//! signal arrives (lavapipe's `vkQueueSubmit` waits on the calling thread with no timeout),
//! and only another submission on the blocked queue could provide it: the context's ring
//! thread would be stuck in the driver and its teardown could not free anything.
//!
//! Owns [`BinarySemaphore`] (the registry state of every binary `VkSemaphore` the generic path
//! creates). A signal becomes pending through the signal lists of `vkQueueSubmit`,
//! `vkQueueSubmit2` and `vkQueueBindSparse`, through `vkImportSemaphoreResourceMESA` (Mesa's
//! WSI acquire: "signalled now") and through a successful `vkImportSemaphoreFdKHR`; the waits
//! of those queue operations consume it. A queue operation is checked batch by batch in order
//! (a batch may wait on what an earlier batch of the same call signals) before the driver sees
//! it, and its effect is recorded only when the whole operation passes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use venus_protocol::{handles, Command, Handle};
use venus_renderer::dispatch::DispatchError;

use crate::registry::{Object, State};
use crate::{Call, VulkanDispatch};

/// The registry state of a binary `VkSemaphore`.
#[derive(Debug, Default)]
pub struct BinarySemaphore {
    pending: AtomicBool,
}

impl BinarySemaphore {
    /// Records that a signal is pending (submitted or imported).
    pub fn set_pending(&self) {
        self.pending.store(true, Ordering::SeqCst);
    }
    /// Whether a signal is pending.
    pub fn is_pending(&self) -> bool {
        self.pending.load(Ordering::SeqCst)
    }
}

/// Guest semaphore ids a queue operation waits on and signals, one pair per batch, in order.
type Batches = Vec<(Vec<u64>, Vec<u64>)>;

fn batches(cmd: &Command<'_>) -> Batches {
    let ids = |s: &[venus_protocol::Id<handles::Semaphore>]| s.iter().map(|i| i.raw()).collect();
    match cmd {
        Command::QueueSubmit(a) => a
            .p_submits
            .iter()
            .map(|b| (ids(b.p_wait_semaphores), ids(b.p_signal_semaphores)))
            .collect(),
        Command::QueueSubmit2(a) => a
            .p_submits
            .iter()
            .map(|b| {
                let w = b.p_wait_semaphore_infos.iter().map(|i| i.semaphore.raw());
                let s = b.p_signal_semaphore_infos.iter().map(|i| i.semaphore.raw());
                (w.collect(), s.collect())
            })
            .collect(),
        Command::QueueBindSparse(a) => a
            .p_bind_info
            .iter()
            .map(|b| (ids(b.p_wait_semaphores), ids(b.p_signal_semaphores)))
            .collect(),
        _ => Vec::new(),
    }
}

impl VulkanDispatch {
    /// The binary-semaphore state of guest semaphore `id` (None: unknown id, or not binary;
    /// the lowering reports unknown ids).
    pub(crate) fn binary_semaphore(&self, id: u64) -> Option<Arc<Object>> {
        let o = self
            .registry
            .get_typed(handles::Semaphore::OBJECT_TYPE, id)
            .ok()?;
        matches!(o.state, State::BinarySemaphore(_)).then_some(o)
    }

    /// Refuses queue operation `cmd` if one of its batches waits on a binary semaphore with no
    /// signal pending (counting the earlier batches' signals); otherwise records its waits
    /// (consumed) and signals (pending). The caller holds the queue's lock.
    pub(crate) fn check_binary_waits(
        &self,
        call: &Call<'_, '_>,
        cmd: &Command<'_>,
    ) -> Result<(), DispatchError> {
        // Guest id -> (object, pending after the operation so far).
        let mut seen: BTreeMap<u64, (Arc<Object>, bool)> = BTreeMap::new();
        let mut state = |id: u64| -> Option<bool> {
            if let Some((_, p)) = seen.get(&id) {
                return Some(*p);
            }
            let o = self.binary_semaphore(id)?;
            let State::BinarySemaphore(b) = &o.state else {
                return None;
            };
            let p = b.is_pending();
            seen.insert(id, (o, p));
            Some(p)
        };
        let mut updates: Vec<(u64, bool)> = Vec::new();
        for (i, (waits, signals)) in batches(cmd).into_iter().enumerate() {
            for (j, id) in waits.iter().enumerate() {
                let pending = updates
                    .iter()
                    .rev()
                    .find(|u| u.0 == *id)
                    .map(|u| u.1)
                    .or_else(|| state(*id));
                if pending == Some(false) {
                    return Err(call.invalid(format!(
                        "batch {i} wait {j}: binary semaphore {id} has no signal pending (it \
                         would block the queue forever; VUID-vkQueueSubmit-pWaitSemaphores-03238)"
                    )));
                }
                if pending.is_some() {
                    updates.push((*id, false));
                }
            }
            for id in signals {
                if state(id).is_some() {
                    updates.push((id, true));
                }
            }
        }
        for (id, pending) in updates {
            if let Some((o, _)) = seen.get(&id) {
                if let State::BinarySemaphore(b) = &o.state {
                    b.pending.store(pending, Ordering::SeqCst);
                }
            }
        }
        Ok(())
    }

    /// Marks binary semaphore `id` signalled (an import: `vkImportSemaphoreResourceMESA`,
    /// `vkImportSemaphoreFdKHR`).
    pub(crate) fn binary_signalled(&self, id: u64) {
        if let Some(o) = self.binary_semaphore(id) {
            if let State::BinarySemaphore(b) = &o.state {
                b.set_pending();
            }
        }
    }
}
