//! A Venus context: one client connection's resources, rings, reply streams and dispatch.
//!
//! # Threads
//!
//! - The **connection thread** owns the [`Context`] and calls it synchronously:
//!   [`Context::create_blob`], [`Context::unref`], [`Context::submit`] (a `SUBMIT_CMD2` context
//!   stream, decoded and executed before it returns — including `vkWaitRingSeqnoMESA`, which
//!   blocks it, contract §3.5 — and routed to its fence timeline), [`Context::mark_fatal`].
//! - One **ring thread** per ring ([`crate::ring`]).
//! - One **liveness ticker** ([`crate::monitor`]) once a monitored ring exists.
//! - One **retire thread** per bound fence timeline that got a submission
//!   ([`crate::timeline`]).
//!
//! They share a `ContextShared` (resource table, dispatch, the sticky fatal flag, the list of
//! rings, the `vkWaitRingSeqnoMESA` rendezvous, the timeline table, the transport's peer
//! check). The only locks are per context; the hot paths (a ring executing commands,
//! `vkNotifyRingMESA`) take none except a read lock on the dispatch slot and the ring's own
//! small mutex on notify. Lock order: a ring's mutex before `RingWait`'s; the timeline table
//! before a retire queue's (see [`crate::timeline`]); the dispatch and peer-check slots are
//! leaf locks held only to clone an `Arc`.
//!
//! # Fatal
//!
//! The first error of any channel (or [`Context::mark_fatal`] from the transport) makes the
//! context lost, for good: the FATAL bit is set in every ring's status (the client aborts at its
//! next check with "ring fatal"), every ring thread and waiter is woken and stops, and every
//! later [`Context::submit`] fails at once. The connection stays up (closing it would make Mesa
//! spin, contract §1); [`Drop`] releases everything.
//!
//! # Teardown
//!
//! Dropping the context never blocks for more than [`crate::TEARDOWN_BOUND`]
//! ([`crate::teardown`]): it first sets every stop flag (each ring's, the ticker's, each
//! retire thread's; a dispatch blocked on a ring sees them through
//! [`crate::DispatchCx::is_cancelled`]) and drops the transport's peer check, then joins all
//! those threads against one deadline, detaching (ERROR line) any that does not finish; the
//! completions still pending on a timeline are called with [`crate::Completed::Lost`]; the
//! resources are released; finally the dispatch (its host objects) is dropped on a
//! short-lived thread waited for until the same deadline. A detached thread keeps its own
//! reference to the dispatch: the host objects then go when it finishes.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};
use venus_protocol::structs::{Ext, RingCreateInfoMESA};
use venus_protocol::{ChainNode, Command};

use crate::dispatch::{Channel, ContextInfo, Dispatch, PeerCheck};
use crate::exec::{ChannelHost, ExecError, Executor};
use crate::limits::{Limit, LimitExceeded, Limits};
use crate::monitor::{self, Monitor};
use crate::record::{ContextRecorder, RecordedChannel};
use crate::resources::{BlobParams, Resource, ResourceError, ResourceKind, ResourceTable};
use crate::ring::{
    self, panic_message, RingLayout, RingShared, RingWait, STATUS_ALIVE, STATUS_FATAL,
};
use crate::shm::ShmConfig;
use crate::teardown::{self, TEARDOWN_BOUND};
use crate::timeline::{Completed, CompletionFn, Timelines};

/// Why a submission failed. Either way the context is lost.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    /// The context was already lost before this submission (the reason of the first error).
    #[error("context already lost: {0}")]
    Lost(String),
    /// This submission made the context lost.
    #[error("{0}")]
    Fatal(String),
}

/// What the context's threads share (see the module doc).
pub(crate) struct ContextShared {
    pub(crate) info: ContextInfo,
    pub(crate) resources: ResourceTable,
    /// `None` once the context is being destroyed (see the module doc).
    dispatch: RwLock<Option<Arc<dyn Dispatch>>>,
    peer_check: RwLock<Option<PeerCheck>>,
    pub(crate) timelines: Timelines,
    lost: AtomicBool,
    reason: Mutex<Option<String>>,
    /// Live rings (for fatal broadcast and the ticker); the connection thread's map is the
    /// authority for lookups.
    rings: Mutex<Vec<Arc<RingShared>>>,
    pub(crate) ring_wait: RingWait,
    pub(crate) monitor: Monitor,
    /// `Some` when the context is recorded (`venus-server --record`).
    pub(crate) recorder: Option<ContextRecorder>,
}

impl ContextShared {
    /// The dispatch, unless the context is being destroyed.
    pub(crate) fn dispatch(&self) -> Option<Arc<dyn Dispatch>> {
        self.dispatch
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn take_dispatch(&self) -> Option<Arc<dyn Dispatch>> {
        self.dispatch
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// The transport's peer check, if installed.
    pub(crate) fn peer_check(&self) -> Option<PeerCheck> {
        self.peer_check
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_peer_check(&self, check: Option<PeerCheck>) {
        *self.peer_check.write().unwrap_or_else(|e| e.into_inner()) = check;
    }

    /// Whether the transport reports the client gone.
    pub(crate) fn peer_gone(&self) -> bool {
        self.peer_check().is_some_and(|gone| gone())
    }

    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    pub(crate) fn lost_flag(&self) -> &AtomicBool {
        &self.lost
    }

    pub(crate) fn rings(&self) -> MutexGuard<'_, Vec<Arc<RingShared>>> {
        self.rings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reason(&self) -> MutexGuard<'_, Option<String>> {
        self.reason.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the context lost (idempotent: the first reason is kept): FATAL on every ring,
    /// every ring thread and the `vkWaitRingSeqnoMESA` waiter woken. The reason found here
    /// (a ring or the context stream) is logged at WARN: the one line that explains the loss.
    pub(crate) fn set_fatal(&self, reason: &str) {
        self.lose(reason, true);
    }

    /// [`Self::set_fatal`]; `warn`: log at WARN (else DEBUG, when the caller already logged
    /// the reason: the transport's [`Context::mark_fatal`]).
    fn lose(&self, reason: &str, warn: bool) {
        {
            let mut r = self.reason();
            if r.is_some() {
                debug!(ctx = self.info.id, "(context already lost) {reason}");
                return;
            }
            *r = Some(reason.to_owned());
        }
        self.lost.store(true, Ordering::Release);
        if warn {
            warn!(
                ctx = self.info.id,
                client = ?self.info.name,
                "context lost: {reason}"
            );
        } else {
            debug!(
                ctx = self.info.id,
                client = ?self.info.name,
                "context lost (reported by the transport): {reason}"
            );
        }
        for ring in self.rings().iter() {
            ring.set_status(STATUS_FATAL);
            ring.wake();
        }
        self.ring_wait.wake();
    }

    fn fatal_reason(&self) -> Option<String> {
        self.reason().clone()
    }
}

/// The connection thread's handle of a ring.
struct RingHandle {
    shared: Arc<RingShared>,
    thread: Option<JoinHandle<()>>,
}

/// A Venus context (see the module doc).
pub struct Context {
    shared: Arc<ContextShared>,
    exec: Executor,
    rings: HashMap<u64, RingHandle>,
    next_ring_index: u32,
    ticker: Option<JoinHandle<()>>,
    /// Replay only: the executors of rings whose commands [`Context::replay_command`] runs
    /// on the caller's thread.
    replay_rings: HashMap<u64, Executor>,
    /// Replay only: the context channel's executor captures replies.
    replaying: bool,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("info", &self.shared.info)
            .field("rings", &self.rings.len())
            .field("lost", &self.shared.is_lost())
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A new context whose non-transport commands go to `dispatch`.
    pub fn new(info: ContextInfo, dispatch: Arc<dyn Dispatch>) -> Self {
        Self::with_page_size(info, dispatch, 1)
    }

    /// Like [`Context::new`], with shared memory rounded to `page_size` bytes (a power of two:
    /// the host page-size profile, e.g. 16384 for Apple silicon; the real page size applies
    /// anyway).
    pub fn with_page_size(info: ContextInfo, dispatch: Arc<dyn Dispatch>, page_size: u64) -> Self {
        let shm = ShmConfig {
            granule: page_size,
            ..ShmConfig::default()
        };
        Self::with_shm_config(info, dispatch, shm)
    }

    /// Like [`Context::new`], with shared memory created as `shm` says (granule and backing).
    pub fn with_shm_config(info: ContextInfo, dispatch: Arc<dyn Dispatch>, shm: ShmConfig) -> Self {
        Self::with_limits(info, dispatch, shm, Limits::default())
    }

    /// Like [`Context::with_shm_config`], under the per-context `limits` (see
    /// [`crate::limits`]).
    pub fn with_limits(
        info: ContextInfo,
        dispatch: Arc<dyn Dispatch>,
        shm: ShmConfig,
        limits: Limits,
    ) -> Self {
        Self::build(info, dispatch, shm, limits, None)
    }

    /// [`Context::with_limits`], recorded by `recorder` when given.
    pub(crate) fn build(
        info: ContextInfo,
        dispatch: Arc<dyn Dispatch>,
        shm: ShmConfig,
        limits: Limits,
        recorder: Option<ContextRecorder>,
    ) -> Self {
        let shared = Arc::new(ContextShared {
            resources: ResourceTable::with_limits(shm, limits),
            dispatch: RwLock::new(Some(dispatch)),
            peer_check: RwLock::new(None),
            timelines: Timelines::new(info.id),
            info,
            lost: AtomicBool::new(false),
            reason: Mutex::new(None),
            rings: Mutex::default(),
            ring_wait: RingWait::default(),
            monitor: Monitor::default(),
            recorder,
        });
        let exec = Executor::new(Arc::clone(&shared), Channel::Context);
        Self {
            shared,
            exec,
            rings: HashMap::new(),
            next_ring_index: 0,
            ticker: None,
            replay_rings: HashMap::new(),
            replaying: false,
        }
    }

    /// Who the context belongs to.
    pub fn info(&self) -> &ContextInfo {
        &self.shared.info
    }

    /// `RESOURCE_CREATE_BLOB`: plain shared memory for `blob_id` 0, else the memory of a
    /// `VkDeviceMemory` exported by the dispatch layer. Returns the fd for the client.
    pub fn create_blob(&mut self, params: &BlobParams) -> Result<OwnedFd, ResourceError> {
        let result = self.create_blob_inner(params);
        if let Some(rec) = &self.shared.recorder {
            rec.blob(params, result.is_ok());
        }
        result
    }

    fn create_blob_inner(&mut self, params: &BlobParams) -> Result<OwnedFd, ResourceError> {
        ResourceTable::validate(params)?;
        if params.blob_id == 0 {
            return self.shared.resources.create_shmem(params);
        }
        let export_err = |reason: String| ResourceError::Export {
            res_id: params.res_id,
            blob_id: params.blob_id,
            reason,
        };
        let dispatch = self
            .shared
            .dispatch()
            .ok_or_else(|| export_err("the context is being destroyed".into()))?;
        let shm = dispatch
            .export_blob(params)
            .map_err(|e| export_err(e.to_string()))?;
        // A VMM's guest kernel asks for whole pages; the mapping is whole pages.
        if shm.mapped_len() < params.size {
            return Err(ResourceError::ExportTooSmall {
                blob_id: params.blob_id,
                got: shm.mapped_len(),
                size: params.size,
            });
        }
        self.shared.resources.insert_with_fd(
            params.res_id,
            Resource {
                shm,
                kind: ResourceKind::DeviceMemory {
                    blob_id: params.blob_id,
                },
            },
        )
    }

    /// `RESOURCE_UNREF`: forgets `res_id`. Rings and reply streams using it keep the memory.
    pub fn unref(&mut self, res_id: u32) {
        let removed = match &self.shared.recorder {
            Some(rec) => rec.unref(res_id, &self.shared.resources),
            None => self.shared.resources.remove(res_id),
        };
        if removed.is_none() {
            debug!(
                ctx = self.shared.info.id,
                res_id, "unref of an unknown resource"
            );
        }
    }

    /// The live resource `res_id` (the memory the client mapped).
    pub fn resource(&self, res_id: u32) -> Option<Resource> {
        self.shared.resources.get(res_id).ok()
    }

    /// One `SUBMIT_CMD2` batch on fence timeline `ring_idx`: decodes and executes `commands`
    /// (a private copy) on the context channel ([`Context::execute`]), then completes it:
    ///
    /// - `ring_idx` 0 (CPU timeline): `done(Signalled)` before returning;
    /// - `ring_idx` k bound to a queue ([`crate::DispatchCx::bind_timeline`]): a marker is
    ///   submitted behind the queue's work and the timeline's retire thread calls `done`, in
    ///   submission order, once the host finished it ([`crate::timeline`]);
    /// - `ring_idx` k unbound: `done(Signalled)` at once (logged at DEBUG; lenient).
    ///
    /// `done` is called exactly once, with [`Completed::Lost`] if the submission fails, the
    /// timeline is unbound or the context is destroyed first. An error makes (or found) the
    /// context lost.
    pub fn submit(
        &mut self,
        ring_idx: u32,
        commands: &[u8],
        done: CompletionFn,
    ) -> Result<(), ContextError> {
        if let Err(e) = self.execute(commands) {
            done(Completed::Lost);
            return Err(e);
        }
        if let Some(rec) = &self.shared.recorder {
            rec.fence(ring_idx);
        }
        self.shared.timelines.submit(ring_idx, done);
        Ok(())
    }

    /// Decodes and executes `commands` (a private copy) on the context channel before
    /// returning: [`Context::submit`] without the completion.
    ///
    /// An error makes (or found) the context lost.
    pub fn execute(&mut self, commands: &[u8]) -> Result<(), ContextError> {
        if self.shared.is_lost() {
            let reason = self.shared.fatal_reason().unwrap_or_default();
            return Err(ContextError::Lost(reason));
        }
        let mut host = ContextHost {
            shared: &self.shared,
            rings: &mut self.rings,
            next_ring_index: &mut self.next_ring_index,
            ticker: &mut self.ticker,
            replay: self.replaying,
        };
        let exec = &mut self.exec;
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| exec.run(commands, &mut host)))
            .unwrap_or_else(|p| {
                Err(ExecError::Fatal(format!(
                    "context stream: panic while executing a submission: {}",
                    panic_message(&*p)
                )))
            });
        self.finish(outcome)
    }

    /// Turns an execution outcome into the context's state (fatal on error).
    fn finish(&mut self, outcome: Result<(), ExecError>) -> Result<(), ContextError> {
        match outcome {
            Ok(()) => Ok(()),
            Err(ExecError::Fatal(reason)) => {
                self.shared.set_fatal(&reason);
                let first = self.shared.fatal_reason().unwrap_or(reason);
                Err(ContextError::Fatal(first))
            }
            Err(ExecError::Stopped) => {
                let reason = "context stream: stopped".to_owned();
                self.shared.set_fatal(&reason);
                Err(ContextError::Fatal(reason))
            }
        }
    }

    /// Replay (`venus-replay`): executes one recorded top-level command (`bytes`) as
    /// `channel` did, on the caller's thread, and returns the replies it wrote (`u32` length
    /// + bytes each, the format of [`crate::record::Event::Command`]).
    ///
    /// Ring commands run through a replay executor of that ring (the ring's own thread sees an
    /// empty ring and stays idle). The recording's order already satisfies the client's
    /// waits, so `vkWaitRingSeqnoMESA` and `vkWaitVirtqueueSeqnoMESA` return at once. Errors
    /// as [`Context::execute`]; a ring that does not exist is fatal.
    pub fn replay_command(
        &mut self,
        channel: RecordedChannel,
        bytes: &[u8],
    ) -> Result<Vec<u8>, ContextError> {
        if !self.replaying {
            self.replaying = true;
            self.exec.capture_replies();
        }
        match channel {
            RecordedChannel::Context => {
                let r = self.execute(bytes);
                let replies = self.exec.take_replies();
                r.map(|()| replies)
            }
            RecordedChannel::Ring { id, index } => self.replay_ring(id, index, bytes),
        }
    }

    fn replay_ring(&mut self, id: u64, index: u32, bytes: &[u8]) -> Result<Vec<u8>, ContextError> {
        if self.shared.is_lost() {
            let reason = self.shared.fatal_reason().unwrap_or_default();
            return Err(ContextError::Lost(reason));
        }
        self.replay_rings.retain(|k, _| self.rings.contains_key(k));
        let Some(ring) = self.rings.get(&id).map(|h| Arc::clone(&h.shared)) else {
            let reason = format!("replay: ring {index} (id {id:#x}) does not exist");
            return self
                .finish(Err(ExecError::Fatal(reason)))
                .map(|()| Vec::new());
        };
        let shared = Arc::clone(&self.shared);
        let exec = self.replay_rings.entry(id).or_insert_with(|| {
            let mut e = Executor::new(shared, ring.channel());
            e.capture_replies();
            e
        });
        let mut host = ReplayRingHost;
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| exec.run(bytes, &mut host)))
            .unwrap_or_else(|p| {
                Err(ExecError::Fatal(format!(
                    "{}: panic while executing: {}",
                    ring.channel(),
                    panic_message(&*p)
                )))
            });
        let replies = exec.take_replies();
        self.finish(outcome).map(|()| replies)
    }

    /// Replay: waits until the host queues bound to fence timelines have finished the work
    /// submitted so far (at most `timeout` per queue), as the client did before it read
    /// results (a wait the recording may not show: Mesa polls feedback memory). Returns the
    /// timelines that did not finish in time.
    pub fn replay_quiesce(&self, timeout: Duration) -> Vec<u32> {
        self.shared.timelines.drain(timeout)
    }

    /// Whether the context is lost.
    pub fn is_fatal(&self) -> bool {
        self.shared.is_lost()
    }

    /// Why the context is lost (the first error), if it is.
    pub fn fatal_reason(&self) -> Option<String> {
        self.shared.fatal_reason()
    }

    /// The transport gives up on this context: FATAL on every ring, rings stop (their threads
    /// are joined when the context is dropped). Idempotent. The transport has logged
    /// `reason` itself, so it is only logged at DEBUG here.
    pub fn mark_fatal(&mut self, reason: &str) {
        self.shared.lose(reason, false);
        for h in self.rings.values() {
            h.shared.request_stop();
        }
    }

    /// Number of live rings.
    pub fn ring_count(&self) -> usize {
        self.rings.len()
    }

    /// Installs the transport's hang-up check (true = the client is gone), consulted by
    /// [`crate::DispatchCx::is_cancelled`] on the context channel and by
    /// `vkWaitRingSeqnoMESA`: the connection thread blocked there cannot see EOF itself.
    /// Dropped at the start of teardown.
    pub fn set_peer_check(&mut self, check: PeerCheck) {
        self.shared.set_peer_check(Some(check));
    }

    /// The fence timelines bound to a queue, in increasing order.
    pub fn bound_timelines(&self) -> Vec<u32> {
        self.shared.timelines.bound()
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        let ctx_id = self.shared.info.id;
        let deadline = Instant::now() + TEARDOWN_BOUND;
        // 1. Every stop flag before any join (module doc).
        self.shared.set_peer_check(None);
        for h in self.rings.values() {
            h.shared.request_stop();
        }
        self.shared.ring_wait.wake();
        self.shared.monitor.stop();
        let mut retires = self.shared.timelines.close();
        // 2. Join everything against one deadline.
        let threads = self
            .rings
            .values_mut()
            .filter_map(|h| h.thread.take())
            .chain(self.ticker.take())
            .chain(retires.iter_mut().filter_map(|r| r.take_thread()))
            .collect::<Vec<_>>();
        let detached = teardown::join_all(ctx_id, threads, deadline);
        self.rings.clear();
        self.shared.rings().clear();
        for r in &retires {
            r.drain_lost();
        }
        drop(retires);
        self.shared.resources.clear();
        if let Some(rec) = &self.shared.recorder {
            rec.finish();
        }
        // 3. The host objects, within what is left of the bound.
        let dropped = self
            .shared
            .take_dispatch()
            .is_none_or(|d| teardown::drop_within(ctx_id, "the dispatch", d, deadline));
        // The detached threads (if any) each have their ERROR line.
        info!(
            ctx = ctx_id,
            detached_threads = detached,
            dispatch_dropped = dropped,
            "context destroyed"
        );
    }
}

/// The context side of execution: ring management and `vkWaitRingSeqnoMESA`.
struct ContextHost<'a> {
    shared: &'a Arc<ContextShared>,
    rings: &'a mut HashMap<u64, RingHandle>,
    next_ring_index: &'a mut u32,
    ticker: &'a mut Option<JoinHandle<()>>,
    /// Replaying: `vkWaitRingSeqnoMESA` returns at once (see [`Context::replay_command`]).
    replay: bool,
}

/// A ring's side of replay: `vkWaitVirtqueueSeqnoMESA` returns at once.
struct ReplayRingHost;

impl ChannelHost for ReplayRingHost {
    fn transport(&mut self, cmd: &Command<'_>) -> Result<bool, ExecError> {
        Ok(matches!(cmd, Command::WaitVirtqueueSeqnoMESA(_)))
    }
}

impl ContextHost<'_> {
    fn fatal(msg: impl Into<String>) -> ExecError {
        ExecError::Fatal(format!("context stream: {}", msg.into()))
    }

    fn ring(&self, command: &str, id: u64) -> Result<&Arc<RingShared>, ExecError> {
        self.rings
            .get(&id)
            .map(|h| &h.shared)
            .ok_or_else(|| Self::fatal(format!("{command}: unknown ring {id:#x}")))
    }

    fn create_ring(&mut self, id: u64, info: &RingCreateInfoMESA<'_>) -> Result<(), ExecError> {
        let what = format!(
            "vkCreateRingMESA(ring {id:#x}, resource {})",
            info.resource_id
        );
        let fail = |e: &dyn std::fmt::Display| Self::fatal(format!("{what}: {e}"));
        if self.rings.contains_key(&id) {
            return Err(fail(&"a ring with this id exists"));
        }
        self.check_ring_limits(info).map_err(|e| fail(&e))?;
        let shm = self
            .shared
            .resources
            .shmem(info.resource_id)
            .map_err(|e| fail(&e))?;
        let layout = RingLayout::validate(info, shm.len()).map_err(|e| fail(&e))?;
        let mut monitor = None;
        let mut link = info.p_next;
        while let Some(ext) = link {
            match ext {
                Ext::RingMonitorInfoMESA(m) => monitor = Some(m.max_reporting_period_microseconds),
                Ext::RingPriorityInfoMESA(p) => debug!(
                    ctx = self.shared.info.id,
                    priority = p.priority,
                    "ring priority requested (not applied)"
                ),
                _ => {}
            }
            link = ext.next();
        }
        if monitor == Some(0) {
            return Err(fail(&"maxReportingPeriodMicroseconds is 0"));
        }
        let monitor_period = monitor.map(|us| Duration::from_micros(u64::from(us)));
        let index = *self.next_ring_index;
        *self.next_ring_index = index.wrapping_add(1);
        let ring = RingShared::new(
            id,
            index,
            &shm,
            &layout,
            Duration::from_nanos(info.idle_timeout),
            monitor_period,
        )
        .map_err(|e| fail(&e))?;
        let ring = Arc::new(ring);
        if monitor_period.is_some() {
            ring.set_status(STATUS_ALIVE);
        }
        self.shared.rings().push(Arc::clone(&ring));
        let thread = match ring::spawn_ring_thread(Arc::clone(self.shared), Arc::clone(&ring)) {
            Ok(t) => t,
            Err(e) => {
                self.shared.rings().retain(|r| !Arc::ptr_eq(r, &ring));
                return Err(fail(&format!("cannot start the ring thread: {e}")));
            }
        };
        debug!(
            ctx = self.shared.info.id,
            ring = %ring.channel(),
            ?layout,
            idle_timeout_ns = info.idle_timeout,
            ?monitor_period,
            "ring created"
        );
        self.rings.insert(
            id,
            RingHandle {
                shared: Arc::clone(&ring),
                thread: Some(thread),
            },
        );
        if let Some(period) = monitor_period {
            self.shared.monitor.add_period(period);
            if self.ticker.is_none() {
                let t = monitor::spawn(Arc::clone(self.shared))
                    .map_err(|e| fail(&format!("cannot start the liveness ticker: {e}")))?;
                *self.ticker = Some(t);
            }
        }
        Ok(())
    }

    /// `max_rings` and `max_ring_size` (see [`crate::limits`]).
    fn check_ring_limits(&self, info: &RingCreateInfoMESA<'_>) -> Result<(), LimitExceeded> {
        let limits = self.shared.resources.budget().limits();
        limits.check(Limit::Rings, self.rings.len() as u64, 1)?;
        limits.check(Limit::RingSize, 0, info.buffer_size)
    }

    fn destroy_ring(&mut self, id: u64) -> Result<(), ExecError> {
        let Some(mut h) = self.rings.remove(&id) else {
            return Err(Self::fatal(format!(
                "vkDestroyRingMESA: unknown ring {id:#x}"
            )));
        };
        self.shared.rings().retain(|r| !Arc::ptr_eq(r, &h.shared));
        h.shared.request_stop();
        let deadline = Instant::now() + TEARDOWN_BOUND;
        teardown::join_all(self.shared.info.id, h.thread.take(), deadline);
        debug!(ctx = self.shared.info.id, ring = %h.shared.channel(), "ring destroyed");
        Ok(())
    }
}

impl ChannelHost for ContextHost<'_> {
    fn transport(&mut self, cmd: &Command<'_>) -> Result<bool, ExecError> {
        match cmd {
            Command::CreateRingMESA(a) => self.create_ring(a.ring, a.p_create_info)?,
            Command::DestroyRingMESA(a) => self.destroy_ring(a.ring)?,
            Command::NotifyRingMESA(a) => self.ring("vkNotifyRingMESA", a.ring)?.notify(),
            Command::WriteRingExtraMESA(a) => self
                .ring("vkWriteRingExtraMESA", a.ring)?
                .write_extra(a.offset, a.value)
                .map_err(|e| Self::fatal(format!("vkWriteRingExtraMESA: {e}")))?,
            Command::SubmitVirtqueueSeqnoMESA(a) => self
                .ring("vkSubmitVirtqueueSeqnoMESA", a.ring)?
                .submit_virtqueue_seqno(a.seqno),
            Command::WaitRingSeqnoMESA(a) if self.replay => {
                self.ring("vkWaitRingSeqnoMESA", a.ring)?;
            }
            Command::WaitRingSeqnoMESA(a) => {
                let ring = Arc::clone(self.ring("vkWaitRingSeqnoMESA", a.ring)?);
                // Ring positions are 32-bit counters; the client widens them to u64.
                let seqno = a.seqno as u32;
                self.shared
                    .ring_wait
                    .wait(self.shared, &ring, seqno)
                    .map_err(|e| Self::fatal(format!("vkWaitRingSeqnoMESA: {e}")))?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}
