//! Teardown of GPU work that can never finish (issue 10, hostile clients).
//!
//! Owns what [`crate::registry::release_subtree`] does before destroying a subtree the client
//! did not destroy itself (context end, `vkDestroyDevice`/`vkDestroyInstance` with live
//! children): making each device idle **within a bound**, and what happens when it cannot be.
//!
//! A client may legally submit work that waits on a timeline-semaphore value nobody has
//! signalled yet (wait-before-signal) or on an event nobody has set (`vkCmdWaitEvents`), and
//! then vanish: only it could have signalled them, so a plain `vkDeviceWaitIdle` would block
//! the teardown forever (and with it the context's host objects). So, per device:
//!
//! 1. a short bounded wait ([`FIRST_WAIT`]) for fence markers behind every queue's work: a
//!    queue with ordinary work in flight becomes idle on its own and nothing is signalled;
//! 2. if a queue is still busy, what only the departed client could have done is done on the
//!    host: every live timeline semaphore of the device is signalled (`vkSignalSemaphore`) to
//!    its current value plus the physical device's `maxTimelineSemaphoreValueDifference`
//!    (clamped to `u64::MAX`). Every pending wait value is within that difference of the
//!    current value (VUID-VkSemaphoreSignalInfo-value-03260 and the submit-time VUIDs), so this
//!    ends every wait, and the value itself is valid. Every live event that the host may set
//!    (not `VK_EVENT_CREATE_DEVICE_ONLY_BIT`) is set (`vkSetEvent` is always valid on those);
//! 3. a second bounded wait ([`AFTER_UNBLOCK`]) for new markers.
//!
//! Pending *signal* operations: a queued submission that later signals a semaphore to a value
//! below the one set in step 2 would make that signal invalid. Step 1 is what limits this: it
//! only goes on once a queue is stuck, and a signal operation queued behind a stuck wait on
//! the same queue never runs before the wait ends; one on another queue of the same client
//! was racing with its own stuck work anyway. The worst a driver does with it is report the
//! device lost, which ends its waits too; the objects are released either way.
//!
//! A device still busy after step 3 (a wait nothing on the host can end, e.g. on an event
//! created device-only, or a queue lock held by a thread blocked in the driver) is not waited
//! for: its objects go to a process-wide graveyard ([`bury`], one WARN line) instead of
//! blocking a thread, and are released by a later teardown that finds its markers signalled.
//!
//! Binary semaphores are not handled here: a wait with no signal pending is invalid usage,
//! and lavapipe's `vkQueueSubmit` then blocks its caller (the ring thread) until a signal is
//! pending, before any teardown runs (`docs/known-issues.md`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use venus_host::ranges::Extent;

use venus_host::vk;
use venus_protocol::structs::{Ext, SemaphoreCreateInfo};
use venus_protocol::types::{EventCreateFlags, SemaphoreType, VkResult};
use venus_protocol::{ChainNode, Command};

use crate::queue::FenceMarker;
use crate::registry::{DeviceShared, Object, State};

/// How long a device's queues may take to finish their work before anything is signalled.
pub const FIRST_WAIT: Duration = Duration::from_millis(150);

/// How long a device's queues may take to finish once the waits are unblocked.
pub const AFTER_UNBLOCK: Duration = Duration::from_millis(1000);

/// How often a queue lock held elsewhere is tried again.
const LOCK_RETRY: Duration = Duration::from_millis(5);

/// Subtrees whose devices never became idle, with the markers that tell when they are.
struct Grave {
    markers: Vec<FenceMarker>,
    objects: Vec<Arc<Object>>,
}

static GRAVEYARD: Mutex<Vec<Grave>> = Mutex::new(Vec::new());

/// The registry state of what `cmd` creates through the generic path: timeline semaphores and
/// host-settable events are recorded for [`settle`], binary semaphores for
/// [`crate::binary`], query pools' sizes for the range rules (`venus_host::ranges`).
pub(crate) fn created_state(cmd: &Command<'_>) -> Box<dyn Fn() -> State> {
    match cmd {
        Command::CreateSemaphore(a) if is_timeline(a.p_create_info) => {
            Box::new(|| State::TimelineSemaphore)
        }
        Command::CreateSemaphore(_) => Box::new(|| State::BinarySemaphore(Default::default())),
        Command::CreateEvent(a)
            if !a
                .p_create_info
                .flags
                .contains(EventCreateFlags::DEVICE_ONLY_BIT) =>
        {
            Box::new(|| State::HostEvent)
        }
        Command::CreateQueryPool(a) => {
            let count = a.p_create_info.query_count;
            Box::new(move || State::Sized(Extent::QueryPool { count }))
        }
        _ => Box::new(|| State::Plain),
    }
}

fn is_timeline(info: &SemaphoreCreateInfo<'_>) -> bool {
    let mut link = info.p_next;
    while let Some(ext) = link {
        if let Ext::SemaphoreTypeCreateInfo(t) = ext {
            return t.semaphore_type == SemaphoreType::TIMELINE;
        }
        link = ext.next();
    }
    false
}

/// The physical device's `maxTimelineSemaphoreValueDifference` (0 when unknown: then nothing
/// is signalled).
pub(crate) fn max_timeline_difference(
    inst: &crate::registry::InstanceShared,
    pd: vk::PhysicalDevice,
) -> u64 {
    let mut timeline = vk::PhysicalDeviceTimelineSemaphoreProperties::default();
    let mut props2 = vk::PhysicalDeviceProperties2 {
        p_next: &mut timeline as *mut _ as *mut std::ffi::c_void,
        ..Default::default()
    };
    if let Some(get) = inst.procs.get_physical_device_properties2 {
        // SAFETY: `pd` is a live physical device of the instance; `props2` and its chain are
        // valid output structs that outlive the call.
        unsafe { get(pd, &mut props2) };
    }
    timeline.max_timeline_semaphore_value_difference
}

/// Fence markers behind the work of every live queue of `d`, or `None` when a queue's lock
/// stays held (a thread inside the driver on it) until `deadline`.
fn markers(d: &DeviceShared, deadline: Instant) -> Option<Vec<FenceMarker>> {
    let mut out = Vec::new();
    for q in d.live_queues() {
        loop {
            match q.try_submit_marker() {
                Some(Ok(m)) => {
                    out.push(m);
                    break;
                }
                Some(Err(e)) => {
                    tracing::warn!(device = d.guest, "teardown marker: {e}");
                    return None;
                }
                None if Instant::now() >= deadline => return None,
                None => std::thread::sleep(LOCK_RETRY),
            }
        }
    }
    Some(out)
}

/// Waits for `markers` until `deadline`: whether all signalled.
fn wait_all(markers: &mut [FenceMarker], deadline: Instant) -> bool {
    markers.iter_mut().all(|m| {
        let left = deadline.saturating_duration_since(Instant::now());
        matches!(m.wait(left), Ok(true))
    })
}

/// Signals the device's live timeline semaphores past any pending value and sets its
/// host-settable events (step 2 of the module doc). Returns (semaphores, events) unblocked.
fn unblock(d: &DeviceShared, objects: &[Arc<Object>]) -> (usize, usize) {
    let (mut sems, mut events) = (0, 0);
    let mine = objects
        .iter()
        .filter(|o| o.device().is_some_and(|x| std::ptr::eq(&**x, d)));
    for o in mine {
        match o.state {
            State::TimelineSemaphore => sems += usize::from(signal_timeline(d, o.host)),
            State::HostEvent => {
                if let Some(set) = d.procs.set_event {
                    // SAFETY: a live event of the live device, created without
                    // DEVICE_ONLY; setting it from the host is always valid.
                    let r = unsafe { set(d.host, vk::Event(o.host)) };
                    events += usize::from(r == VkResult::SUCCESS);
                }
            }
            _ => {}
        }
    }
    (sems, events)
}

/// Signals timeline semaphore `host` to its current value + the device's limit.
fn signal_timeline(d: &DeviceShared, host: u64) -> bool {
    let (Some(get), Some(signal)) = (
        d.procs.get_semaphore_counter_value,
        d.procs.signal_semaphore,
    ) else {
        return false;
    };
    let sem = vk::Semaphore(host);
    let mut now = 0u64;
    // SAFETY: a live timeline semaphore (recorded at creation) of the live device.
    if unsafe { get(d.host, sem, &mut now) } != VkResult::SUCCESS {
        return false;
    }
    let value = now.saturating_add(d.max_timeline_difference);
    if value <= now {
        return false;
    }
    let info = vk::SemaphoreSignalInfo {
        semaphore: sem,
        value,
        ..Default::default()
    };
    // SAFETY: as above; `value` is above the current value and within the limit of it and of
    // every pending operation (module doc).
    unsafe { signal(d.host, &info) == VkResult::SUCCESS }
}

/// Makes `d` idle within [`FIRST_WAIT`] + [`AFTER_UNBLOCK`] (module doc); on failure returns
/// the markers that will tell when it is (none when a queue's lock stayed held).
pub(crate) fn settle(d: &DeviceShared, objects: &[Arc<Object>]) -> Result<(), Vec<FenceMarker>> {
    let start = Instant::now();
    let first = start + FIRST_WAIT;
    if let Some(mut ms) = markers(d, first) {
        if wait_all(&mut ms, first) {
            return Ok(());
        }
    }
    let (sems, events) = unblock(d, objects);
    let last = Instant::now() + AFTER_UNBLOCK;
    let (idle, pending) = match markers(d, last) {
        Some(mut again) => (wait_all(&mut again, last), again),
        None => (false, Vec::new()),
    };
    tracing::info!(
        device = d.guest,
        semaphores = sems,
        events,
        idle,
        waited_ms = start.elapsed().as_millis() as u64,
        "device work stuck at teardown: waits unblocked on the host"
    );
    if idle {
        Ok(())
    } else {
        Err(pending)
    }
}

/// Keeps `objects` (whose devices did not become idle) until `markers` all signalled, with a
/// WARN line, instead of blocking a thread on them.
pub(crate) fn bury(markers: Vec<FenceMarker>, objects: Vec<Arc<Object>>) {
    let count = objects.len();
    let mut g = GRAVEYARD.lock().unwrap_or_else(|e| e.into_inner());
    g.push(Grave { markers, objects });
    tracing::warn!(
        objects = count,
        graves = g.len(),
        "device work never finished: its objects are kept until it does"
    );
}

/// Releases the graves whose devices became idle since (called at every subtree release). A
/// grave without markers (a queue lock was held) gets them now if the locks are free.
pub(crate) fn sweep() {
    let done: Vec<Grave> = {
        let mut g = GRAVEYARD.lock().unwrap_or_else(|e| e.into_inner());
        for grave in g.iter_mut().filter(|grave| grave.markers.is_empty()) {
            grave.markers = devices_of(&grave.objects)
                .into_iter()
                .map(|d| markers(d, Instant::now()))
                .collect::<Option<Vec<_>>>()
                .map(|m| m.into_iter().flatten().collect())
                .unwrap_or_default();
        }
        let (done, keep) = std::mem::take(&mut *g).into_iter().partition(|grave| {
            !grave.markers.is_empty() && grave.markers.iter().all(|m| m.peek_signalled())
        });
        *g = keep;
        done
    };
    for grave in done {
        drop(grave.markers);
        crate::registry::release(grave.objects);
    }
}

/// The distinct devices of `objects`.
pub(crate) fn devices_of(objects: &[Arc<Object>]) -> Vec<&Arc<DeviceShared>> {
    let mut devices: Vec<&Arc<DeviceShared>> = Vec::new();
    for d in objects.iter().filter_map(|o| o.device()) {
        if !devices.iter().any(|x| Arc::ptr_eq(x, d)) {
            devices.push(d);
        }
    }
    devices
}
