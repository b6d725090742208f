//! Rings: the shared-memory command queues the client creates with `vkCreateRingMESA`
//! (contract §4, wire format §15).
//!
//! - [`RingLayout::validate`]: the layout checks, exactly as the wire spec §15 / contract §4.1
//!   (and virglrenderer's `vkr_ring_layout_init`) state them.
//! - `RingShared`: what the context, the ring thread and the liveness ticker share about one
//!   ring (its control words and buffer as [`Region`]s, the notify/stop/virtqueue-seqno state).
//! - The ring thread (`venus-ring-<ctx>-<n>`), one per ring:
//!   1. acquire-load `tail`; if it moved, check `tail - head <= bufferSize` (else fatal), copy
//!      `[head, tail)` out of the ring **once**, wrapping, into a private buffer, and decode
//!      and execute it command by command (`exec`); after each command store `head`
//!      (release) just past it and wake a context blocked in `vkWaitRingSeqnoMESA`;
//!   2. with nothing to do: yield for 250 µs after the last work, then sleep with exponential
//!      backoff from 10 µs (capped at 100 µs and at the time left before going idle);
//!   3. after `idleTimeout` without work: set IDLE (seq-cst), re-load `tail` (seq-cst); new
//!      data clears IDLE and goes on; otherwise sleep on a condvar until `vkNotifyRingMESA`,
//!      destruction or context loss; then clear IDLE and stay active for at least another
//!      `idleTimeout` (contract §4.3);
//!   4. any decode or dispatch error makes the context fatal; every ring of the context gets
//!      the FATAL status bit and its thread exits.
//! - `RingWait`: the context side of `vkWaitRingSeqnoMESA`.
//!
//! Deadlock guards (a hostile or buggy client must not hang its connection thread):
//! - a ring that goes idle while the context waits for a seqno it has not reached (nothing
//!   more is published, and the notify that could wake it is stuck behind the wait on the
//!   socket) makes the context fatal, as virglrenderer does;
//! - a ring blocked in `vkWaitVirtqueueSeqnoMESA` while the context waits for that ring to
//!   pass the wait can never be released (the context would have to deliver the seqno): fatal.
//!
//! Lock order: `RingShared::sync` may be held while taking `RingWait::target`, never the
//! reverse.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use tracing::{debug, warn};
use venus_protocol::structs::RingCreateInfoMESA;
use venus_protocol::Command;

use crate::context::ContextShared;
use crate::dispatch::Channel;
use crate::exec::{ChannelHost, ExecError, Executor};
use crate::shm::{Region, SharedMemory, ShmAtomicU32};

/// Status bit: the ring thread sleeps until `vkNotifyRingMESA`.
pub const STATUS_IDLE: u32 = 1 << 0;
/// Status bit: the context is lost; the client aborts.
pub const STATUS_FATAL: u32 = 1 << 1;
/// Status bit: the host is alive (set periodically for monitored rings, cleared by the client).
pub const STATUS_ALIVE: u32 = 1 << 2;

/// Largest ring buffer accepted: 16 MiB (wire format §15).
pub const MAX_RING_BUFFER_SIZE: u64 = 16 << 20;

/// How often `vkWaitRingSeqnoMESA` asks the transport whether the client is gone.
const PEER_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// Longest sleep of an active ring thread polling for work.
const MAX_RELAX_SLEEP: Duration = Duration::from_micros(100);

/// How long an active ring thread only yields after its last work. A client that waits for a
/// fence and submits again comes back within tens of µs; a sleep (with Linux's 50 µs timer
/// slack) in that window delays its next submission, which then outlasts the client's own
/// short busy-wait and costs it a long sleep (measured: +190 µs per fenced submission on an
/// H200 with millisecond sleeps here).
const SPIN_WINDOW: Duration = Duration::from_micros(250);

/// `a >= b` for free-running 32-bit ring positions (modular: `a` is at most 2^31 ahead).
pub fn seqno_ge(a: u32, b: u32) -> bool {
    a.wrapping_sub(b) <= i32::MAX as u32
}

/// A validated ring layout: absolute byte offsets inside the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingLayout {
    /// The `u32` head (host writes).
    pub head: u64,
    /// The `u32` tail (client writes).
    pub tail: u64,
    /// The `u32` status (host sets bits, client clears ALIVE).
    pub status: u64,
    /// Start of the command buffer.
    pub buffer: u64,
    /// Size of the command buffer (a power of two, at most [`MAX_RING_BUFFER_SIZE`]).
    pub buffer_size: u64,
    /// Start of the extra region (`vkWriteRingExtraMESA`).
    pub extra: u64,
    /// Size of the extra region (may be 0).
    pub extra_size: u64,
}

/// Why a ring layout was refused. Region offsets are as the client gave them (relative to the
/// ring's `offset`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// `[offset, offset + size)` is not inside the resource.
    #[error("ring window [{offset}, {offset} + {size}) is outside the resource ({len} bytes)")]
    WindowOutside {
        /// `VkRingCreateInfoMESA::offset`.
        offset: u64,
        /// `VkRingCreateInfoMESA::size`.
        size: u64,
        /// Size of the resource.
        len: u64,
    },
    /// A region is not inside `[0, size)` of the ring window.
    #[error("{region} region [{offset}, {offset} + {size}) is outside the ring ({window} bytes)")]
    RegionOutside {
        /// `head`, `tail`, `status`, `buffer` or `extra`.
        region: &'static str,
        /// Offset relative to the ring.
        offset: u64,
        /// Size.
        size: u64,
        /// Size of the ring window.
        window: u64,
    },
    /// A region's start or end is not 4-byte aligned in the resource.
    #[error("{region} region [{begin}, {end}) of the resource is not 4-byte aligned")]
    Misaligned {
        /// The region.
        region: &'static str,
        /// Absolute start.
        begin: u64,
        /// Absolute end.
        end: u64,
    },
    /// Two regions overlap.
    #[error("the {a} and {b} regions overlap")]
    Overlap {
        /// One region.
        a: &'static str,
        /// The other.
        b: &'static str,
    },
    /// `bufferSize` is 0 or not a power of two.
    #[error("bufferSize {0} is not a power of two")]
    BufferNotPowerOfTwo(u64),
    /// `bufferSize` is above [`MAX_RING_BUFFER_SIZE`].
    #[error("bufferSize {0} exceeds the maximum of {MAX_RING_BUFFER_SIZE} bytes")]
    BufferTooLarge(u64),
}

impl RingLayout {
    /// Validates `info` against a resource of `resource_len` bytes (wire format §15): the ring
    /// window `[offset, offset + size)` inside the resource; head, tail, status (4 bytes each),
    /// buffer and extra inside the window (their offsets are relative to `offset`), 4-byte
    /// aligned (start and end), pairwise disjoint; `bufferSize` a power of two of at most
    /// 16 MiB. (That head and status read 0 is checked on the memory at creation.)
    pub fn validate(info: &RingCreateInfoMESA<'_>, resource_len: u64) -> Result<Self, LayoutError> {
        let window_err = LayoutError::WindowOutside {
            offset: info.offset,
            size: info.size,
            len: resource_len,
        };
        match info.offset.checked_add(info.size) {
            Some(end) if end <= resource_len => {}
            _ => return Err(window_err),
        }
        let regions: [(&'static str, u64, u64); 5] = [
            ("head", info.head_offset, 4),
            ("tail", info.tail_offset, 4),
            ("status", info.status_offset, 4),
            ("buffer", info.buffer_offset, info.buffer_size),
            ("extra", info.extra_offset, info.extra_size),
        ];
        // Absolute [begin, end) of each region.
        let mut abs = [(0u64, 0u64); 5];
        for (slot, &(region, offset, size)) in abs.iter_mut().zip(&regions) {
            let outside = LayoutError::RegionOutside {
                region,
                offset,
                size,
                window: info.size,
            };
            match offset.checked_add(size) {
                Some(end) if end <= info.size => {}
                _ => return Err(outside),
            }
            // Cannot overflow: offset + size <= info.size and info.offset + info.size fits.
            let begin = info.offset + offset;
            let end = begin + size;
            if begin % 4 != 0 || end % 4 != 0 {
                return Err(LayoutError::Misaligned { region, begin, end });
            }
            *slot = (begin, end);
        }
        for i in 0..abs.len() {
            for j in i + 1..abs.len() {
                let (b1, e1) = abs[i];
                let (b2, e2) = abs[j];
                // As the reference: [x, x) counts as overlapping a region strictly around x.
                if !(b1 >= e2 || b2 >= e1) {
                    return Err(LayoutError::Overlap {
                        a: regions[i].0,
                        b: regions[j].0,
                    });
                }
            }
        }
        if info.buffer_size > MAX_RING_BUFFER_SIZE {
            return Err(LayoutError::BufferTooLarge(info.buffer_size));
        }
        if !info.buffer_size.is_power_of_two() {
            return Err(LayoutError::BufferNotPowerOfTwo(info.buffer_size));
        }
        Ok(Self {
            head: abs[0].0,
            tail: abs[1].0,
            status: abs[2].0,
            buffer: abs[3].0,
            buffer_size: info.buffer_size,
            extra: abs[4].0,
            extra_size: info.extra_size,
        })
    }
}

#[derive(Debug, Default)]
struct RingSync {
    /// A `vkNotifyRingMESA` (or another reason to re-check) arrived since the ring last went
    /// idle.
    pending_notify: bool,
    /// Latest `vkSubmitVirtqueueSeqnoMESA` value.
    virtqueue_seqno: u64,
}

/// One ring as shared by the context, its thread and the liveness ticker.
#[derive(Debug)]
pub(crate) struct RingShared {
    pub(crate) id: u64,
    pub(crate) index: u32,
    head_word: Region,
    tail_word: Region,
    status_word: Region,
    buffer: Region,
    extra: Region,
    idle_timeout: Duration,
    /// `Some(maxReportingPeriod)` if the client chained `VkRingMonitorInfoMESA`.
    pub(crate) monitor_period: Option<Duration>,
    /// The head we last published (a private copy: the client can write the shared one).
    published_head: AtomicU32,
    stopping: AtomicBool,
    dead: AtomicBool,
    sync: Mutex<RingSync>,
    cond: Condvar,
}

impl RingShared {
    /// Maps the validated `layout` of `shm` and checks that head and status are 0.
    pub(crate) fn new(
        id: u64,
        index: u32,
        shm: &Arc<SharedMemory>,
        layout: &RingLayout,
        idle_timeout: Duration,
        monitor_period: Option<Duration>,
    ) -> Result<Self, String> {
        let region = |what: &str, offset, len| {
            shm.region(offset, len)
                .map_err(|e| format!("ring {what} region: {e}"))
        };
        let ring = Self {
            id,
            index,
            head_word: region("head", layout.head, 4)?,
            tail_word: region("tail", layout.tail, 4)?,
            status_word: region("status", layout.status, 4)?,
            buffer: region("buffer", layout.buffer, layout.buffer_size)?,
            extra: region("extra", layout.extra, layout.extra_size)?,
            idle_timeout,
            monitor_period,
            published_head: AtomicU32::new(0),
            stopping: AtomicBool::new(false),
            dead: AtomicBool::new(false),
            sync: Mutex::default(),
            cond: Condvar::new(),
        };
        let head = ring.word(&ring.head_word)?.load(Ordering::Acquire);
        let status = ring.word(&ring.status_word)?.load(Ordering::Acquire);
        ring.word(&ring.tail_word)?;
        if head != 0 || status != 0 {
            return Err(format!(
                "ring head ({head}) and status ({status:#x}) must be 0 at creation"
            ));
        }
        Ok(ring)
    }

    fn word<'a>(&self, region: &'a Region) -> Result<ShmAtomicU32<'a>, String> {
        region
            .atomic_u32(0)
            .map_err(|e| format!("ring control word: {e}"))
    }

    fn lock(&self) -> MutexGuard<'_, RingSync> {
        self.sync.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn channel(&self) -> Channel {
        Channel::Ring {
            id: self.id,
            index: self.index,
        }
    }

    /// ORs `bits` into the shared status (seq-cst).
    pub(crate) fn set_status(&self, bits: u32) {
        if let Ok(w) = self.status_word.atomic_u32(0) {
            w.fetch_or(bits, Ordering::SeqCst);
        }
    }

    /// Clears `bits` in the shared status (seq-cst).
    fn clear_status(&self, bits: u32) {
        if let Ok(w) = self.status_word.atomic_u32(0) {
            w.fetch_and(!bits, Ordering::SeqCst);
        }
    }

    fn load_tail(&self, order: Ordering) -> Result<u32, ExecError> {
        self.word(&self.tail_word)
            .map(|w| w.load(order))
            .map_err(ExecError::Fatal)
    }

    /// The head we last published.
    pub(crate) fn head(&self) -> u32 {
        self.published_head.load(Ordering::SeqCst)
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    /// `vkNotifyRingMESA`: wakes an idle ring.
    pub(crate) fn notify(&self) {
        self.lock().pending_notify = true;
        self.cond.notify_all();
    }

    /// Wakes every wait of the ring thread so that it re-checks stop/fatal/waiter conditions.
    pub(crate) fn wake(&self) {
        let _g = self.lock();
        self.cond.notify_all();
    }

    /// Asks the ring thread to stop (it exits without FATAL after its current command).
    pub(crate) fn request_stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.wake();
    }

    /// `vkSubmitVirtqueueSeqnoMESA`.
    pub(crate) fn submit_virtqueue_seqno(&self, seqno: u64) {
        self.lock().virtqueue_seqno = seqno;
        self.cond.notify_all();
    }

    /// `vkWriteRingExtraMESA`: stores `value` (release) at `offset` inside the extra region.
    pub(crate) fn write_extra(&self, offset: u64, value: u32) -> Result<(), String> {
        let w = self.extra.atomic_u32(offset).map_err(|e| {
            format!(
                "extra offset {offset} is not a 4-byte aligned word inside the {}-byte extra \
                 region: {e}",
                self.extra.len()
            )
        })?;
        w.store(value, Ordering::Release);
        Ok(())
    }
}

/// The context side of `vkWaitRingSeqnoMESA` (one waiter at a time: the context thread).
#[derive(Debug, Default)]
pub(crate) struct RingWait {
    /// `(ring id, seqno)` while the context waits.
    target: Mutex<Option<(u64, u32)>>,
    cond: Condvar,
    active: AtomicBool,
}

impl RingWait {
    fn lock(&self) -> MutexGuard<'_, Option<(u64, u32)>> {
        self.target.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until `ring` has published a head at or past `seqno`. Fails if the context is
    /// lost, the ring thread exits or the client disconnects (the transport's peer check,
    /// asked every [`PEER_CHECK_INTERVAL`]) first.
    pub(crate) fn wait(
        &self,
        ctx: &ContextShared,
        ring: &RingShared,
        seqno: u32,
    ) -> Result<(), String> {
        if seqno_ge(ring.head(), seqno) {
            return Ok(());
        }
        *self.lock() = Some((ring.id, seqno));
        self.active.store(true, Ordering::SeqCst);
        // An idle ring re-checks its tail (and this wait) when notified.
        ring.notify();
        let mut g = self.lock();
        let result = loop {
            if seqno_ge(ring.head(), seqno) {
                break Ok(());
            }
            if ctx.is_lost() {
                break Err(format!(
                    "the context was lost while waiting for {} to reach seqno {seqno}",
                    ring.channel()
                ));
            }
            if ring.is_dead() {
                break Err(format!(
                    "{} stopped at head {} before reaching seqno {seqno}",
                    ring.channel(),
                    ring.head()
                ));
            }
            if ctx.peer_gone() {
                break Err(format!(
                    "the client disconnected while waiting for {} to reach seqno {seqno}",
                    ring.channel()
                ));
            }
            // Woken by every head, loss and ring death; the timeout is for the peer check.
            g = self
                .cond
                .wait_timeout(g, PEER_CHECK_INTERVAL)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        *g = None;
        self.active.store(false, Ordering::SeqCst);
        result
    }

    /// The ring `ring_id` published `head`: wakes the waiter if it is satisfied.
    fn on_head(&self, ring_id: u64, head: u32) {
        if !self.active.load(Ordering::SeqCst) {
            return;
        }
        let g = self.lock();
        if let Some((id, seqno)) = *g {
            if id == ring_id && seqno_ge(head, seqno) {
                self.cond.notify_all();
            }
        }
    }

    /// The seqno the context waits for on ring `ring_id`, if it does.
    fn target_for(&self, ring_id: u64) -> Option<u32> {
        if !self.active.load(Ordering::SeqCst) {
            return None;
        }
        match *self.lock() {
            Some((id, seqno)) if id == ring_id => Some(seqno),
            _ => None,
        }
    }

    /// Wakes the waiter to re-check (context lost, ring died).
    pub(crate) fn wake(&self) {
        let _g = self.lock();
        self.cond.notify_all();
    }
}

/// Starts the thread of `ring` (see the module doc).
pub(crate) fn spawn_ring_thread(
    ctx: Arc<ContextShared>,
    ring: Arc<RingShared>,
) -> std::io::Result<thread::JoinHandle<()>> {
    let name = format!("venus-ring-{}-{}", ctx.info.id, ring.index);
    thread::Builder::new().name(name).spawn(move || {
        let exec = Executor::new(Arc::clone(&ctx), ring.channel());
        let mut worker = RingWorker {
            ring,
            ctx,
            exec,
            buf: Vec::new(),
            head: 0,
        };
        worker.run();
    })
}

struct RingWorker {
    ring: Arc<RingShared>,
    ctx: Arc<ContextShared>,
    exec: Executor,
    /// Private copy of `[head, tail)`.
    buf: Vec<u8>,
    /// Our position: everything before it has been executed.
    head: u32,
}

impl RingWorker {
    fn run(&mut self) {
        let outcome =
            panic::catch_unwind(AssertUnwindSafe(|| self.main_loop())).unwrap_or_else(|p| {
                Err(ExecError::Fatal(format!(
                    "{}: the ring thread panicked: {}",
                    self.ring.channel(),
                    panic_message(&*p)
                )))
            });
        match outcome {
            Ok(()) | Err(ExecError::Stopped) => {
                debug!(ctx = self.ctx.info.id, ring = %self.ring.channel(), "ring thread stopped");
            }
            Err(ExecError::Fatal(reason)) => self.ctx.set_fatal(&reason),
        }
        if self.ctx.is_lost() {
            self.ring.set_status(STATUS_FATAL);
        }
        self.ring.dead.store(true, Ordering::SeqCst);
        self.ctx.ring_wait.wake();
    }

    fn main_loop(&mut self) -> Result<(), ExecError> {
        let ring = Arc::clone(&self.ring);
        let mut last_active = Instant::now();
        let mut relax_iter = 0u32;
        loop {
            if ring.stopping.load(Ordering::Acquire) {
                return Err(ExecError::Stopped);
            }
            if self.ctx.is_lost() {
                return Err(ExecError::fatal("context lost"));
            }
            let tail = ring.load_tail(Ordering::Acquire)?;
            if tail != self.head {
                self.consume(tail)?;
                last_active = Instant::now();
                relax_iter = 0;
                continue;
            }
            let idle_for = last_active.elapsed();
            if idle_for < ring.idle_timeout {
                relax(&mut relax_iter, idle_for, ring.idle_timeout - idle_for);
                continue;
            }

            // Go idle (contract §4.3): a notify from before this point is stale.
            ring.lock().pending_notify = false;
            ring.set_status(STATUS_IDLE);
            if ring.load_tail(Ordering::SeqCst)? != self.head {
                ring.clear_status(STATUS_IDLE);
                continue;
            }
            self.check_wait_satisfiable()?;
            {
                let mut g = ring.lock();
                while !g.pending_notify
                    && !ring.stopping.load(Ordering::Acquire)
                    && !self.ctx.is_lost()
                {
                    g = ring.cond.wait(g).unwrap_or_else(|e| e.into_inner());
                }
                g.pending_notify = false;
            }
            ring.clear_status(STATUS_IDLE);
            last_active = Instant::now();
            relax_iter = 0;
        }
    }

    /// The ring is about to sleep with nothing published beyond `head`: a context waiting for
    /// a later seqno would wait forever (its notify is queued behind the wait).
    fn check_wait_satisfiable(&self) -> Result<(), ExecError> {
        match self.ctx.ring_wait.target_for(self.ring.id) {
            Some(seqno) if !seqno_ge(self.head, seqno) => Err(ExecError::Fatal(format!(
                "{}: vkWaitRingSeqnoMESA waits for seqno {seqno}, but the ring is idle at {} \
                 with nothing more published",
                self.ring.channel(),
                self.head
            ))),
            _ => Ok(()),
        }
    }

    /// Executes `[head, tail)`.
    fn consume(&mut self, tail: u32) -> Result<(), ExecError> {
        let len = tail.wrapping_sub(self.head);
        let size = self.ring.buffer.len();
        if u64::from(len) > size {
            return Err(ExecError::Fatal(format!(
                "{}: tail {tail} is {len} bytes ahead of head {}, more than the {size}-byte \
                 ring buffer",
                self.ring.channel(),
                self.head
            )));
        }
        // `len <= size <= 16 MiB`.
        let n = len as usize;
        self.buf.resize(n, 0);
        let bytes = self.buf.get_mut(..n).unwrap_or_default();
        self.ring
            .buffer
            .read_wrapped(self.head, bytes)
            .map_err(|e| {
                ExecError::Fatal(format!("{}: reading the ring: {e}", self.ring.channel()))
            })?;
        let mut host = RingHost {
            ring: &self.ring,
            ctx: &self.ctx,
            base: self.head,
        };
        let result = self
            .exec
            .run(self.buf.get(..n).unwrap_or_default(), &mut host);
        if result.is_ok() {
            self.head = tail;
        }
        result
    }
}

/// The ring side of execution: head publication and `vkWaitVirtqueueSeqnoMESA`.
struct RingHost<'a> {
    ring: &'a RingShared,
    ctx: &'a ContextShared,
    /// Ring position of byte 0 of the batch being executed.
    base: u32,
}

impl RingHost<'_> {
    fn wait_virtqueue_seqno(&self, seqno: u64) -> Result<(), ExecError> {
        let ring = self.ring;
        let mut g = ring.lock();
        loop {
            if g.virtqueue_seqno >= seqno {
                return Ok(());
            }
            if ring.stopping.load(Ordering::Acquire) {
                return Err(ExecError::Stopped);
            }
            if self.ctx.is_lost() {
                return Err(ExecError::fatal("context lost"));
            }
            if let Some(target) = self.ctx.ring_wait.target_for(ring.id) {
                if !seqno_ge(ring.head(), target) {
                    return Err(ExecError::Fatal(format!(
                        "{}: deadlock: the ring waits for virtqueue seqno {seqno} while the \
                         context waits for the ring to reach seqno {target}",
                        ring.channel()
                    )));
                }
            }
            g = ring.cond.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl ChannelHost for RingHost<'_> {
    fn transport(&mut self, cmd: &Command<'_>) -> Result<bool, ExecError> {
        match cmd {
            Command::WaitVirtqueueSeqnoMESA(a) => {
                self.wait_virtqueue_seqno(a.seqno)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn command_done(&mut self, end: usize) {
        // `end <= len <= 16 MiB`.
        let head = self.base.wrapping_add(end as u32);
        match self.ring.head_word.atomic_u32(0) {
            Ok(w) => w.store(head, Ordering::Release),
            Err(e) => warn!("ring head word: {e}"), // Unreachable: checked at creation.
        }
        self.ring.published_head.store(head, Ordering::SeqCst);
        self.ctx.ring_wait.on_head(self.ring.id, head);
    }

    fn stopping(&self) -> Option<&AtomicBool> {
        Some(&self.ring.stopping)
    }
}

/// Backoff while polling an active ring: yield during [`SPIN_WINDOW`] after the last work
/// (`idle_for`), then sleep 10 µs doubling with every doubling of the number of sleeps, at most
/// [`MAX_RELAX_SLEEP`] and at most `remaining`.
fn relax(iter: &mut u32, idle_for: Duration, remaining: Duration) {
    if idle_for < SPIN_WINDOW {
        thread::yield_now();
        return;
    }
    *iter = iter.saturating_add(1);
    let shift = iter.ilog2().min(10);
    let sleep = Duration::from_micros(10u64 << shift)
        .min(MAX_RELAX_SLEEP)
        .min(remaining);
    thread::sleep(sleep);
}

/// The message of a caught panic.
pub(crate) fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mesa 25.0.7's instance ring (contract §4.1).
    fn mesa_instance() -> RingCreateInfoMESA<'static> {
        RingCreateInfoMESA {
            offset: 0,
            size: 131268,
            idle_timeout: 1_000_000,
            head_offset: 0,
            tail_offset: 64,
            status_offset: 128,
            buffer_offset: 192,
            buffer_size: 131072,
            extra_offset: 131264,
            extra_size: 4,
            ..Default::default()
        }
    }

    #[test]
    fn seqno_comparison_wraps() {
        assert!(seqno_ge(5, 5));
        assert!(seqno_ge(6, 5));
        assert!(!seqno_ge(5, 6));
        assert!(seqno_ge(3, u32::MAX - 2), "wrapped past 0");
        assert!(!seqno_ge(u32::MAX - 2, 3));
        assert!(seqno_ge(0x8000_0000 - 1, 0));
        assert!(
            !seqno_ge(0x8000_0000, 0),
            "more than 2^31 ahead reads as behind"
        );
    }

    #[test]
    fn mesa_layouts_are_valid() {
        let l = RingLayout::validate(&mesa_instance(), 131268).unwrap();
        assert_eq!(
            l,
            RingLayout {
                head: 0,
                tail: 64,
                status: 128,
                buffer: 192,
                buffer_size: 131072,
                extra: 131264,
                extra_size: 4
            }
        );
        // The per-thread ring.
        let tls = RingCreateInfoMESA {
            size: 16580,
            buffer_size: 16384,
            extra_offset: 16576,
            ..mesa_instance()
        };
        assert!(RingLayout::validate(&tls, 16580).is_ok());
        // A resource larger than the ring is fine.
        assert!(RingLayout::validate(&tls, 1 << 20).is_ok());
    }

    #[test]
    fn offsets_are_relative_to_the_ring_window() {
        let info = RingCreateInfoMESA {
            offset: 4096,
            ..mesa_instance()
        };
        let l = RingLayout::validate(&info, 4096 + 131268).unwrap();
        assert_eq!(
            (l.head, l.tail, l.status, l.buffer),
            (4096, 4160, 4224, 4288)
        );
        assert_eq!(l.extra, 4096 + 131264);
        // One byte short.
        assert_eq!(
            RingLayout::validate(&info, 4096 + 131267),
            Err(LayoutError::WindowOutside {
                offset: 4096,
                size: 131268,
                len: 4096 + 131267
            })
        );
    }

    #[test]
    fn window_and_regions_must_be_inside() {
        let len = 131268;
        let overflow = RingCreateInfoMESA {
            offset: u64::MAX - 10,
            ..mesa_instance()
        };
        assert!(matches!(
            RingLayout::validate(&overflow, len),
            Err(LayoutError::WindowOutside { .. })
        ));
        // Extra just past the window (but inside the resource).
        let info = RingCreateInfoMESA {
            extra_offset: 131268,
            ..mesa_instance()
        };
        assert_eq!(
            RingLayout::validate(&info, 1 << 20),
            Err(LayoutError::RegionOutside {
                region: "extra",
                offset: 131268,
                size: 4,
                window: 131268
            })
        );
        // A region whose offset + size overflows.
        let info = RingCreateInfoMESA {
            buffer_offset: u64::MAX - 4,
            ..mesa_instance()
        };
        assert!(matches!(
            RingLayout::validate(&info, len),
            Err(LayoutError::RegionOutside {
                region: "buffer",
                ..
            })
        ));
        let info = RingCreateInfoMESA {
            status_offset: 131266,
            ..mesa_instance()
        };
        assert!(matches!(
            RingLayout::validate(&info, len),
            Err(LayoutError::RegionOutside {
                region: "status",
                ..
            })
        ));
    }

    #[test]
    fn alignment() {
        let info = RingCreateInfoMESA {
            tail_offset: 66,
            ..mesa_instance()
        };
        assert_eq!(
            RingLayout::validate(&info, 131268),
            Err(LayoutError::Misaligned {
                region: "tail",
                begin: 66,
                end: 70
            })
        );
        // A misaligned window misaligns every region.
        let info = RingCreateInfoMESA {
            offset: 2,
            ..mesa_instance()
        };
        assert!(matches!(
            RingLayout::validate(&info, 1 << 20),
            Err(LayoutError::Misaligned { region: "head", .. })
        ));
        // An extra region whose end is not aligned.
        let info = RingCreateInfoMESA {
            extra_size: 3,
            ..mesa_instance()
        };
        assert!(matches!(
            RingLayout::validate(&info, 131268),
            Err(LayoutError::Misaligned {
                region: "extra",
                ..
            })
        ));
        // A 2-byte "power of two" buffer is misaligned at its end.
        let info = RingCreateInfoMESA {
            buffer_size: 2,
            ..mesa_instance()
        };
        assert!(matches!(
            RingLayout::validate(&info, 131268),
            Err(LayoutError::Misaligned {
                region: "buffer",
                ..
            })
        ));
    }

    #[test]
    fn overlaps() {
        let cases: [(RingCreateInfoMESA<'static>, &str, &str); 5] = [
            (
                RingCreateInfoMESA {
                    tail_offset: 0,
                    ..mesa_instance()
                },
                "head",
                "tail",
            ),
            (
                RingCreateInfoMESA {
                    status_offset: 192,
                    ..mesa_instance()
                },
                "status",
                "buffer",
            ),
            (
                RingCreateInfoMESA {
                    extra_offset: 131260,
                    ..mesa_instance()
                },
                "buffer",
                "extra",
            ),
            (
                RingCreateInfoMESA {
                    head_offset: 131264,
                    ..mesa_instance()
                },
                "head",
                "extra",
            ),
            // An empty extra region strictly inside the buffer.
            (
                RingCreateInfoMESA {
                    extra_offset: 1024,
                    extra_size: 0,
                    ..mesa_instance()
                },
                "buffer",
                "extra",
            ),
        ];
        for (info, a, b) in cases {
            assert_eq!(
                RingLayout::validate(&info, 131268),
                Err(LayoutError::Overlap { a, b }),
                "{info:?}"
            );
        }
        // Adjacent regions do not overlap; an empty extra at the buffer's end is fine.
        let info = RingCreateInfoMESA {
            tail_offset: 4,
            status_offset: 8,
            buffer_offset: 12 + 4,
            extra_offset: 16 + 131072,
            extra_size: 0,
            ..mesa_instance()
        };
        assert!(RingLayout::validate(&info, 131268).is_ok());
    }

    #[test]
    fn buffer_size() {
        for (size, err) in [
            (0, LayoutError::BufferNotPowerOfTwo(0)),
            (96, LayoutError::BufferNotPowerOfTwo(96)),
            (131068, LayoutError::BufferNotPowerOfTwo(131068)),
            (32 << 20, LayoutError::BufferTooLarge(32 << 20)),
        ] {
            let info = RingCreateInfoMESA {
                size: 192 + size + 4,
                buffer_size: size,
                extra_offset: 192 + size,
                ..mesa_instance()
            };
            assert_eq!(
                RingLayout::validate(&info, 192 + size + 4),
                Err(err),
                "size {size}"
            );
        }
        // Exactly 16 MiB is allowed; 4 bytes is the smallest aligned power of two.
        for size in [16 << 20, 4] {
            let info = RingCreateInfoMESA {
                size: 192 + size + 4,
                buffer_size: size,
                extra_offset: 192 + size,
                ..mesa_instance()
            };
            assert!(RingLayout::validate(&info, 192 + size + 4).is_ok());
        }
    }

    #[test]
    fn ring_requires_zero_head_and_status() {
        let shm = Arc::new(SharedMemory::new(131268).unwrap());
        let l = RingLayout::validate(&mesa_instance(), shm.len()).unwrap();
        let mk = || RingShared::new(1, 0, &shm, &l, Duration::from_millis(1), None);
        assert!(mk().is_ok());
        shm.atomic_u32(128).unwrap().store(4, Ordering::Relaxed);
        assert!(mk().unwrap_err().contains("status (0x4)"));
        shm.atomic_u32(128).unwrap().store(0, Ordering::Relaxed);
        shm.atomic_u32(0).unwrap().store(8, Ordering::Relaxed);
        assert!(mk().unwrap_err().contains("head (8)"));
        shm.atomic_u32(0).unwrap().store(0, Ordering::Relaxed);
        // A non-zero tail is the client's business.
        shm.atomic_u32(64).unwrap().store(8, Ordering::Relaxed);
        assert!(mk().is_ok());
    }

    #[test]
    fn extra_writes_are_bounded() {
        let shm = Arc::new(SharedMemory::new(131268).unwrap());
        let l = RingLayout::validate(&mesa_instance(), shm.len()).unwrap();
        let r = RingShared::new(1, 0, &shm, &l, Duration::from_millis(1), None).unwrap();
        r.write_extra(0, 0xdead_beef).unwrap();
        assert_eq!(
            shm.atomic_u32(131264).unwrap().load(Ordering::Relaxed),
            0xdead_beef
        );
        assert!(r.write_extra(4, 1).is_err());
        assert!(r.write_extra(2, 1).is_err());
        assert!(r.write_extra(u64::MAX, 1).is_err());
    }
}
