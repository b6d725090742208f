//! Fence timelines: when a `SUBMIT_CMD2` batch is complete (contract §3.6, §5.3).
//!
//! Every context has [`crate::capset::MAX_TIMELINE_COUNT`] timelines. `ring_idx` 0 is the CPU
//! timeline: a batch on it is complete as soon as its commands have executed. A client binds
//! a `VkQueue` to timeline `k` (`1..MAX_TIMELINE_COUNT`) with
//! `VkDeviceQueueTimelineInfoMESA{ringIdx = k}` at `vkGetDeviceQueue2`; the dispatch layer then
//! calls [`crate::DispatchCx::bind_timeline`] with a [`TimelineQueue`] for that queue (and
//! [`crate::DispatchCx::unbind_timeline`] when the device goes). A batch on timeline `k` is
//! complete when the host work submitted to that queue *before* it has finished:
//!
//! 1. the context executes the batch's commands (they may submit to the queue);
//! 2. [`TimelineQueue::submit_marker`] puts a marker behind everything on the queue;
//! 3. the marker and the batch's [`CompletionFn`] go to the timeline's **retire thread**
//!    (`venus-retire-<ctx>-<k>`, started with the first marker), which blocks in the host
//!    driver ([`Marker::wait`], in slices of at most [`RETIRE_WAIT_SLICE`] so that it notices
//!    a stop request; no sleep-polling) and calls the completions in submission order with
//!    [`Completed::Signalled`].
//!
//! Batches on an unbound timeline complete at once (Mesa 25.0.7 only sends `ring_idx` 0; we
//! are lenient with everything else rather than killing a correct client). Unbinding a
//! timeline and destroying the context stop the retire threads; every completion still
//! pending is called with [`Completed::Lost`], so nobody waits forever. Each completion is
//! called exactly once: it is taken out of the retire queue, under its lock, by whoever calls
//! it (the retire thread, or the teardown draining a retire thread that did not stop in time).
//!
//! A [`Marker`] may be dropped before it finished (teardown, unbinding): implementations must
//! allow that (e.g. keep the fence alive with the device). Markers are dropped on the retire
//! thread, never while a lock of ours is held.
//!
//! Lock order: the timeline table (`Timelines::table`) may be held while taking a retire
//! queue's lock, never the reverse. No completion is called and no marker is waited on with
//! either lock held.

use std::collections::{HashMap, VecDeque};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tracing::{debug, error, warn};

use crate::capset::MAX_TIMELINE_COUNT;
use crate::ring::panic_message;
use crate::teardown::{self, TEARDOWN_BOUND};

/// Longest single [`Marker::wait`] of a retire thread: how long it takes at most to notice a
/// stop request (when the marker honours its timeout).
pub const RETIRE_WAIT_SLICE: Duration = Duration::from_millis(100);

/// A host queue failure, reported by the dispatch layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimelineError {
    /// The host driver failed (`VK_ERROR_DEVICE_LOST`, out of memory, ...).
    #[error("host queue: {0}")]
    Host(String),
}

/// How a batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completed {
    /// Its work is complete: signal the batch's fences/syncs.
    Signalled,
    /// The context or the timeline went away (or the host queue failed) first. Transports
    /// signal anyway (like a kernel signals the fences of a lost context).
    Lost,
}

/// Called once when a batch is complete (see [`crate::Context::submit`]).
pub type CompletionFn = Box<dyn FnOnce(Completed) + Send>;

/// Implemented by the dispatch layer for a `VkQueue` bound to a timeline.
pub trait TimelineQueue: Send + Sync {
    /// Submits a marker behind everything submitted to the queue so far (e.g. an empty
    /// `vkQueueSubmit` with a fence) and returns it.
    fn submit_marker(&self) -> Result<Box<dyn Marker>, TimelineError>;
}

/// One submitted marker: blocks (on the host driver's own completion) up to `timeout`.
pub trait Marker: Send {
    /// `Ok(true)` once the host work before it finished, `Ok(false)` on timeout.
    fn wait(&mut self, timeout: Duration) -> Result<bool, TimelineError>;
}

/// Why [`crate::DispatchCx::bind_timeline`] refused a binding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    /// `ring_idx` 0 is the CPU timeline.
    #[error("ring_idx 0 is the CPU timeline; queues bind to 1..{MAX_TIMELINE_COUNT}")]
    Zero,
    /// `ring_idx` is not below [`MAX_TIMELINE_COUNT`].
    #[error("ring_idx {0} is out of range (queues bind to 1..{MAX_TIMELINE_COUNT})")]
    OutOfRange(u32),
    /// Another queue is bound to `ring_idx`.
    #[error("ring_idx {0} is already bound to a queue")]
    AlreadyBound(u32),
    /// The context is being destroyed.
    #[error("the context is being destroyed")]
    Closed,
}

/// One batch waiting on its timeline.
struct Entry {
    seq: u64,
    /// Taken by the retire thread while it waits on it.
    marker: Option<Box<dyn Marker>>,
    /// Taken by whoever calls it (exactly once).
    done: Option<CompletionFn>,
}

#[derive(Default)]
struct RetireState {
    next_seq: u64,
    queue: VecDeque<Entry>,
}

/// What a retire thread shares with the context.
#[derive(Default)]
struct RetireShared {
    state: Mutex<RetireState>,
    cond: Condvar,
    stop: AtomicBool,
}

impl RetireShared {
    fn lock(&self) -> MutexGuard<'_, RetireState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
        let _g = self.lock();
        self.cond.notify_all();
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Takes every completion still queued (markers stay for the retire thread to drop).
    fn take_completions(&self) -> Vec<CompletionFn> {
        let mut g = self.lock();
        g.queue.iter_mut().filter_map(|e| e.done.take()).collect()
    }
}

/// A started retire thread.
pub(crate) struct Retire {
    shared: Arc<RetireShared>,
    thread: Option<JoinHandle<()>>,
}

impl Retire {
    /// The thread, for a bounded join (see [`crate::teardown`]).
    pub(crate) fn take_thread(&mut self) -> Option<JoinHandle<()>> {
        self.thread.take()
    }

    /// After the join: calls every completion still pending (those of a thread that did not
    /// stop in time) with [`Completed::Lost`].
    pub(crate) fn drain_lost(&self) {
        for done in self.shared.take_completions() {
            done(Completed::Lost);
        }
    }
}

/// A marker and its completion that could not be queued.
type Refused = (Box<dyn Marker>, CompletionFn);

/// One bound timeline.
struct Timeline {
    queue: Arc<dyn TimelineQueue>,
    /// Tells a rebinding apart from the binding a marker was submitted to.
    generation: u64,
    retire: Option<Retire>,
}

#[derive(Default)]
struct Table {
    closed: bool,
    next_generation: u64,
    bound: HashMap<u32, Timeline>,
}

/// A context's timeline table: `ring_idx -> queue` and the retire threads (module doc).
pub struct Timelines {
    ctx_id: u64,
    table: Mutex<Table>,
}

impl std::fmt::Debug for Timelines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut bound: Vec<u32> = self.lock().bound.keys().copied().collect();
        bound.sort_unstable();
        f.debug_struct("Timelines")
            .field("ctx_id", &self.ctx_id)
            .field("bound", &bound)
            .finish()
    }
}

impl Timelines {
    pub(crate) fn new(ctx_id: u64) -> Self {
        Self {
            ctx_id,
            table: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The bound timelines, in increasing order.
    pub fn bound(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.lock().bound.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Replay: waits (at most `timeout` per queue) until every bound queue has finished the
    /// work submitted so far, through a marker behind it. Returns the timelines that did not
    /// finish in time or failed.
    pub(crate) fn drain(&self, timeout: Duration) -> Vec<u32> {
        let queues: Vec<(u32, Arc<dyn TimelineQueue>)> = self
            .lock()
            .bound
            .iter()
            .map(|(k, t)| (*k, Arc::clone(&t.queue)))
            .collect();
        let mut late = Vec::new();
        for (k, q) in queues {
            let done = q
                .submit_marker()
                .and_then(|mut m| m.wait(timeout))
                .unwrap_or(false);
            if !done {
                late.push(k);
            }
        }
        late.sort_unstable();
        late
    }

    /// Binds `queue` to `ring_idx` (`1..MAX_TIMELINE_COUNT`, not bound yet).
    pub(crate) fn bind(
        &self,
        ring_idx: u32,
        queue: Arc<dyn TimelineQueue>,
    ) -> Result<(), BindError> {
        if ring_idx == 0 {
            return Err(BindError::Zero);
        }
        if ring_idx >= MAX_TIMELINE_COUNT {
            return Err(BindError::OutOfRange(ring_idx));
        }
        let mut t = self.lock();
        if t.closed {
            return Err(BindError::Closed);
        }
        if t.bound.contains_key(&ring_idx) {
            return Err(BindError::AlreadyBound(ring_idx));
        }
        t.next_generation += 1;
        let generation = t.next_generation;
        t.bound.insert(
            ring_idx,
            Timeline {
                queue,
                generation,
                retire: None,
            },
        );
        debug!(ctx = self.ctx_id, ring_idx, "timeline bound");
        Ok(())
    }

    /// Unbinds `ring_idx` (no-op if unbound): stops its retire thread, joins it for at most
    /// [`TEARDOWN_BOUND`] and calls the pending completions with [`Completed::Lost`].
    pub(crate) fn unbind(&self, ring_idx: u32) {
        let Some(timeline) = self.lock().bound.remove(&ring_idx) else {
            debug!(ctx = self.ctx_id, ring_idx, "unbind of an unbound timeline");
            return;
        };
        if let Some(mut retire) = timeline.retire {
            retire.shared.request_stop();
            let deadline = Instant::now() + TEARDOWN_BOUND;
            teardown::join_all(self.ctx_id, retire.take_thread(), deadline);
            retire.drain_lost();
        }
        debug!(ctx = self.ctx_id, ring_idx, "timeline unbound");
    }

    /// Context teardown: refuses later bindings, asks every retire thread to stop and returns
    /// them (the context joins them with its other threads, then calls
    /// [`Retire::drain_lost`]).
    pub(crate) fn close(&self) -> Vec<Retire> {
        let bound = {
            let mut t = self.lock();
            t.closed = true;
            std::mem::take(&mut t.bound)
        };
        let retires: Vec<Retire> = bound.into_values().filter_map(|t| t.retire).collect();
        for r in &retires {
            r.shared.request_stop();
        }
        retires
    }

    /// A batch on `ring_idx` has executed: completes it now (CPU timeline, unbound timeline)
    /// or once the queue's work before it is done (see the module doc).
    pub(crate) fn submit(&self, ring_idx: u32, done: CompletionFn) {
        if ring_idx == 0 {
            done(Completed::Signalled);
            return;
        }
        let bound = self
            .lock()
            .bound
            .get(&ring_idx)
            .map(|t| (Arc::clone(&t.queue), t.generation));
        let Some((queue, generation)) = bound else {
            debug!(
                ctx = self.ctx_id,
                ring_idx, "submission on an unbound timeline: complete at once"
            );
            done(Completed::Signalled);
            return;
        };
        let marker = match queue.submit_marker() {
            Ok(m) => m,
            Err(e) => {
                warn!(ctx = self.ctx_id, ring_idx, "timeline marker: {e}");
                done(Completed::Lost);
                return;
            }
        };
        let mut t = self.lock();
        let ctx_id = self.ctx_id;
        let refused = match t.bound.get_mut(&ring_idx) {
            Some(tl) if tl.generation == generation => tl.enqueue(ctx_id, ring_idx, marker, done),
            // Unbound (or rebound) while the marker was being submitted.
            _ => Err((marker, done)),
        };
        drop(t);
        if let Err((marker, done)) = refused {
            drop(marker);
            done(Completed::Lost);
        }
    }
}

impl Timeline {
    /// Queues `(marker, done)` for the retire thread, starting it if needed. On failure the
    /// pair comes back.
    fn enqueue(
        &mut self,
        ctx_id: u64,
        ring_idx: u32,
        marker: Box<dyn Marker>,
        done: CompletionFn,
    ) -> Result<(), Refused> {
        if self.retire.is_none() {
            let shared = Arc::new(RetireShared::default());
            let name = format!("venus-retire-{ctx_id}-{ring_idx}");
            let s = Arc::clone(&shared);
            match thread::Builder::new()
                .name(name.clone())
                .spawn(move || retire_thread(&s, ctx_id, ring_idx))
            {
                Ok(t) => {
                    self.retire = Some(Retire {
                        shared,
                        thread: Some(t),
                    });
                }
                Err(e) => {
                    warn!(ctx = ctx_id, ring_idx, "cannot start {name}: {e}");
                    return Err((marker, done));
                }
            }
        }
        let Some(retire) = &self.retire else {
            return Err((marker, done));
        };
        let mut g = retire.shared.lock();
        let seq = g.next_seq;
        g.next_seq += 1;
        g.queue.push_back(Entry {
            seq,
            marker: Some(marker),
            done: Some(done),
        });
        retire.shared.cond.notify_all();
        Ok(())
    }
}

/// The retire thread of timeline `ring_idx` (module doc).
fn retire_thread(shared: &RetireShared, ctx_id: u64, ring_idx: u32) {
    let r = panic::catch_unwind(AssertUnwindSafe(|| retire_loop(shared, ctx_id, ring_idx)));
    if let Err(p) = r {
        error!(
            ctx = ctx_id,
            ring_idx,
            "retire thread panicked: {}",
            panic_message(&*p)
        );
    }
    // Stopped (or panicked): whatever is left is lost.
    let rest = std::mem::take(&mut shared.lock().queue);
    for e in rest {
        drop(e.marker);
        if let Some(done) = e.done {
            done(Completed::Lost);
        }
    }
    debug!(ctx = ctx_id, ring_idx, "retire thread stopped");
}

fn retire_loop(shared: &RetireShared, ctx_id: u64, ring_idx: u32) {
    loop {
        let (seq, mut marker) = {
            let mut g = shared.lock();
            loop {
                if shared.stopping() {
                    return;
                }
                if let Some(e) = g.queue.front_mut() {
                    if let Some(m) = e.marker.take() {
                        break (e.seq, m);
                    }
                }
                g = shared.cond.wait(g).unwrap_or_else(|e| e.into_inner());
            }
        };
        let outcome = loop {
            match marker.wait(RETIRE_WAIT_SLICE) {
                Ok(true) => break Completed::Signalled,
                Ok(false) if shared.stopping() => break Completed::Lost,
                Ok(false) => {}
                Err(e) => {
                    warn!(ctx = ctx_id, ring_idx, "waiting for a timeline marker: {e}");
                    break Completed::Lost;
                }
            }
        };
        let done = {
            let mut g = shared.lock();
            if g.queue.front().is_some_and(|e| e.seq == seq) {
                g.queue.pop_front().and_then(|e| e.done)
            } else {
                None
            }
        };
        drop(marker);
        if let Some(done) = done {
            done(outcome);
        }
    }
}
