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
//!
//! Also owns the **deferred import** of a binary semaphore on a host without importable sync
//! files: `vkImportSemaphoreResourceMESA` (resource 0, "signalled now") calls no driver; the
//! semaphore records it ([`BinarySemaphore::defer_import`]) and the queue operation that next
//! waits on it drops that wait from what the driver sees ([`VulkanDispatch::consume_imports`]):
//! a binary wait on an already signalled payload orders nothing and leaves the semaphore
//! unsignalled, which is the driver's state of it already. Where the wait cannot be dropped
//! (a `pNext` link with an array parallel to the waits) or the operation signals the semaphore
//! first, the import is submitted to the driver just before the operation, on its queue, as an
//! empty batch that signals the semaphore. Mesa's WSI imports once per acquired image; with
//! lavapipe that empty batch cost the ring thread a round trip to the driver's submit thread
//! (the next `vkQueueSubmit` waits for the signal to be pending) and one driver submission per
//! frame.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bumpalo::Bump;
use venus_host::vk;
use venus_protocol::structs::{BindSparseInfo, SubmitInfo, SubmitInfo2};
use venus_protocol::{handles, ChainNode, Command, Handle};
use venus_renderer::dispatch::DispatchError;

use crate::queue::QueueShared;
use crate::registry::{Object, State};
use crate::{Call, VulkanDispatch};

/// The registry state of a binary `VkSemaphore`.
#[derive(Debug, Default)]
pub struct BinarySemaphore {
    pending: AtomicBool,
    /// Signalled by an import the driver has not seen (its semaphore is unsignalled).
    imported: AtomicBool,
}

impl BinarySemaphore {
    /// Records an import of an already signalled payload that the driver does not see yet.
    pub fn defer_import(&self) {
        self.imported.store(true, Ordering::SeqCst);
        self.set_pending();
    }
    /// Takes a deferred import: true once per [`BinarySemaphore::defer_import`].
    fn take_import(&self) -> bool {
        self.imported.swap(false, Ordering::SeqCst)
    }
    /// Whether a deferred import waits to be taken.
    fn has_import(&self) -> bool {
        self.imported.load(Ordering::SeqCst)
    }
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

/// What [`VulkanDispatch::check_binary_waits`] read of a queue operation: its batches and the
/// binary semaphores they name, by guest id.
pub(crate) struct Checked {
    batches: Batches,
    semaphores: BTreeMap<u64, Arc<Object>>,
}

/// Per batch: whether a wait can be left out of what the driver sees. A `VkSubmitInfo` or
/// `VkBindSparseInfo` can lose a wait unless a link of its chain carries an array parallel to
/// the waits (or a link this module does not know); a `VkSemaphoreSubmitInfo` stands alone.
fn droppable(cmd: &Command<'_>) -> Vec<bool> {
    use venus_protocol::structs::Ext;
    let chain_ok = |c: venus_protocol::wire::Chain<'_>| {
        std::iter::successors(c, |l| l.next()).all(|l| match l {
            Ext::TimelineSemaphoreSubmitInfo(t) => t.wait_semaphore_value_count == 0,
            Ext::DeviceGroupSubmitInfo(g) => g.wait_semaphore_count == 0,
            Ext::DeviceGroupBindSparseInfo(_) | Ext::ProtectedSubmitInfo(_) => true,
            _ => false,
        })
    };
    match cmd {
        Command::QueueSubmit(a) => a
            .p_submits
            .iter()
            .map(|b| {
                b.p_wait_dst_stage_mask.len() == b.p_wait_semaphores.len() && chain_ok(b.p_next)
            })
            .collect(),
        Command::QueueSubmit2(a) => vec![true; a.p_submits.len()],
        Command::QueueBindSparse(a) => a.p_bind_info.iter().map(|b| chain_ok(b.p_next)).collect(),
        _ => Vec::new(),
    }
}

/// `items` without the elements `drop` marks, in `arena` (`items` itself when none is).
fn kept<'x, T: Copy>(arena: &'x Bump, items: &'x [T], drop: &[bool]) -> &'x [T] {
    if !drop.iter().any(|d| *d) {
        return items;
    }
    let v: Vec<T> = items
        .iter()
        .zip(drop.iter().chain(std::iter::repeat(&false)))
        .filter(|(_, d)| !**d)
        .map(|(t, _)| *t)
        .collect();
    arena.alloc_slice_copy(&v)
}

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
    /// (consumed) and signals (pending) and returns what it read, for
    /// [`VulkanDispatch::consume_imports`]. The caller holds the queue's lock.
    pub(crate) fn check_binary_waits(
        &self,
        call: &Call<'_, '_>,
        cmd: &Command<'_>,
    ) -> Result<Checked, DispatchError> {
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
        let batches = batches(cmd);
        for (i, (waits, signals)) in batches.iter().enumerate() {
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
            for &id in signals {
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
        Ok(Checked {
            batches,
            semaphores: seen.into_iter().map(|(id, (o, _))| (id, o)).collect(),
        })
    }

    /// Takes the deferred imports queue operation `cmd` consumes (see the module doc): the
    /// edited operation without the waits that consume one (`None`: nothing to leave out),
    /// after submitting to `queue` those it cannot leave out. `checked` is what
    /// [`VulkanDispatch::check_binary_waits`] returned for `cmd`; the caller holds the queue's
    /// lock.
    pub(crate) fn consume_imports<'x>(
        &self,
        arena: &'x Bump,
        queue: &QueueShared,
        cmd: &Command<'x>,
        checked: Checked,
    ) -> Result<Option<Command<'x>>, String> {
        let imported = |o: &Object| matches!(&o.state, State::BinarySemaphore(b) if b.has_import());
        if !checked.semaphores.values().any(|o| imported(o)) {
            return Ok(None);
        }
        let can_drop = droppable(cmd);
        let mut taken: Vec<u64> = Vec::new();
        // Takes `id`'s deferred import unless this operation already did.
        let mut take = |id: u64| -> Option<u64> {
            if taken.contains(&id) {
                return None;
            }
            let o = checked.semaphores.get(&id)?;
            let State::BinarySemaphore(b) = &o.state else {
                return None;
            };
            b.take_import().then(|| {
                taken.push(id);
                o.host
            })
        };
        let mut drops: Vec<Vec<bool>> = Vec::new();
        for (i, (waits, signals)) in checked.batches.into_iter().enumerate() {
            let mut drop = vec![false; waits.len()];
            for (j, id) in waits.into_iter().enumerate() {
                if let Some(host) = take(id) {
                    if can_drop.get(i).copied().unwrap_or(false) {
                        tracing::debug!(
                            "semaphore {id:#x}: import consumed by batch {i} wait {j}, left out"
                        );
                        drop[j] = true;
                    } else {
                        tracing::debug!(
                            "semaphore {id:#x}: import submitted, batch {i} keeps wait {j}"
                        );
                        queue.signal_semaphore_locked(vk::Semaphore(host))?;
                    }
                }
            }
            for id in signals {
                if let Some(host) = take(id) {
                    tracing::debug!("semaphore {id:#x}: import submitted, batch {i} signals it");
                    queue.signal_semaphore_locked(vk::Semaphore(host))?;
                }
            }
            drops.push(drop);
        }
        if !drops.iter().flatten().any(|d| *d) {
            return Ok(None);
        }
        Ok(Some(match *cmd {
            Command::QueueSubmit(mut a) => {
                let edited = a.p_submits.iter().zip(&drops).map(|(b, d)| {
                    let waits = kept(arena, b.p_wait_semaphores, d);
                    SubmitInfo {
                        wait_semaphore_count: waits.len() as u32,
                        p_wait_semaphores: waits,
                        p_wait_dst_stage_mask: kept(arena, b.p_wait_dst_stage_mask, d),
                        ..*b
                    }
                });
                a.p_submits = arena.alloc_slice_fill_iter(edited);
                Command::QueueSubmit(a)
            }
            Command::QueueSubmit2(mut a) => {
                let edited = a.p_submits.iter().zip(&drops).map(|(b, d)| {
                    let waits = kept(arena, b.p_wait_semaphore_infos, d);
                    SubmitInfo2 {
                        wait_semaphore_info_count: waits.len() as u32,
                        p_wait_semaphore_infos: waits,
                        ..*b
                    }
                });
                a.p_submits = arena.alloc_slice_fill_iter(edited);
                Command::QueueSubmit2(a)
            }
            Command::QueueBindSparse(mut a) => {
                let edited = a.p_bind_info.iter().zip(&drops).map(|(b, d)| {
                    let waits = kept(arena, b.p_wait_semaphores, d);
                    BindSparseInfo {
                        wait_semaphore_count: waits.len() as u32,
                        p_wait_semaphores: waits,
                        ..*b
                    }
                });
                a.p_bind_info = arena.alloc_slice_fill_iter(edited);
                Command::QueueBindSparse(a)
            }
            _ => return Ok(None),
        }))
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
