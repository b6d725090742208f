//! Shared by the timeline and teardown tests: a fake host queue whose markers finish when the
//! test says so, a dispatch that binds/unbinds timelines and can block, a completion recorder.

// Each test binary uses a different subset.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use venus_protocol::commands::*;
use venus_protocol::structs::RingCreateInfoMESA;
use venus_protocol::{encode_command, Command, CommandHeader, Encoder, Id};
use venus_renderer::resources::{blob_flags, blob_type};
use venus_renderer::shm::SharedMemory;
use venus_renderer::{
    command_name, BlobParams, Completed, CompletionFn, Context, ContextInfo, Dispatch, DispatchCx,
    DispatchError, Marker, TimelineError, TimelineQueue,
};

pub const TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// The fake host queue.

#[derive(Debug, Default)]
struct QueueState {
    /// Markers submitted so far (marker `i` is the i-th).
    submitted: u64,
    /// Markers `0..released` are finished.
    released: u64,
}

/// A queue whose markers finish when [`FakeQueue::release`] says so.
#[derive(Default)]
pub struct FakeQueue {
    state: Mutex<QueueState>,
    cond: Condvar,
    /// Markers block forever, ignoring their timeout (a hung driver).
    pub ignore_timeout: AtomicBool,
}

impl FakeQueue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap()
    }

    /// Finishes the markers `0..n`.
    pub fn release(&self, n: u64) {
        self.lock().released = n;
        self.cond.notify_all();
    }

    pub fn submitted(&self) -> u64 {
        self.lock().submitted
    }
}

pub struct FakeMarker {
    queue: Arc<FakeQueue>,
    index: u64,
}

impl Marker for FakeMarker {
    fn wait(&mut self, timeout: Duration) -> Result<bool, TimelineError> {
        let q = &self.queue;
        let mut g = q.lock();
        if q.ignore_timeout.load(Ordering::SeqCst) {
            loop {
                g = q.cond.wait(g).unwrap();
            }
        }
        let deadline = Instant::now() + timeout;
        while g.released <= self.index {
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            g = q.cond.wait_timeout(g, deadline - now).unwrap().0;
        }
        Ok(true)
    }
}

/// The [`TimelineQueue`] of a [`FakeQueue`].
pub struct FakeTimeline(pub Arc<FakeQueue>);

impl TimelineQueue for FakeTimeline {
    fn submit_marker(&self) -> Result<Box<dyn Marker>, TimelineError> {
        let mut g = self.0.lock();
        let index = g.submitted;
        g.submitted += 1;
        Ok(Box::new(FakeMarker {
            queue: Arc::clone(&self.0),
            index,
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// The test dispatch.

/// `vkDeviceWaitIdle(BIND + k)` binds timeline k to `queues[k]`.
pub const BIND: u64 = 0xb000;
/// `vkDeviceWaitIdle(UNBIND + k)` unbinds timeline k.
pub const UNBIND: u64 = 0xd000;
/// `vkDeviceWaitIdle(WAIT_CANCELLED)` blocks until `DispatchCx::is_cancelled`.
pub const WAIT_CANCELLED: u64 = 0xca;
/// `vkDeviceWaitIdle(HANG)` blocks forever, ignoring cancellation.
pub const HANG: u64 = 0x4a46;

pub struct TimelineDispatch {
    pub queues: Vec<Arc<FakeQueue>>,
    /// `Ok` or the error of each bind, in order.
    pub binds: Mutex<Vec<Result<u32, String>>>,
    /// Set when a dispatch entered `HANG`.
    pub hanging: AtomicBool,
    /// `Drop` blocks forever (host object destruction hangs in the driver).
    pub hang_on_drop: AtomicBool,
}

impl TimelineDispatch {
    pub fn new(queues: usize) -> Arc<Self> {
        Arc::new(Self {
            queues: (0..queues).map(|_| Arc::default()).collect(),
            binds: Mutex::default(),
            hanging: AtomicBool::new(false),
            hang_on_drop: AtomicBool::new(false),
        })
    }
}

impl Drop for TimelineDispatch {
    fn drop(&mut self) {
        if self.hang_on_drop.load(Ordering::SeqCst) {
            loop {
                thread::park();
            }
        }
    }
}

impl Dispatch for TimelineDispatch {
    fn dispatch(
        &self,
        cx: &mut DispatchCx<'_>,
        header: &CommandHeader,
        cmd: &Command<'_>,
    ) -> Result<(), DispatchError> {
        let Command::DeviceWaitIdle(a) = cmd else {
            return Err(DispatchError::Unsupported(command_name(header)));
        };
        match a.device.raw() {
            d if (BIND..BIND + 0x1000).contains(&d) => {
                let k = (d - BIND) as u32;
                let queue = self.queues.get(k as usize).cloned().unwrap_or_default();
                let r = cx.bind_timeline(k, Arc::new(FakeTimeline(queue)));
                self.binds
                    .lock()
                    .unwrap()
                    .push(r.map(|()| k).map_err(|e| e.to_string()));
            }
            d if (UNBIND..UNBIND + 0x1000).contains(&d) => cx.unbind_timeline((d - UNBIND) as u32),
            WAIT_CANCELLED => {
                while !cx.is_cancelled() {
                    thread::sleep(Duration::from_millis(10));
                }
                return Err(DispatchError::Cancelled);
            }
            HANG => {
                self.hanging.store(true, Ordering::SeqCst);
                loop {
                    thread::park();
                }
            }
            _ => {}
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Completions.

/// `(tag, outcome)` of every completion, in call order.
type Record = Mutex<Vec<(&'static str, Completed)>>;

/// Records `(tag, outcome)` of every completion, in call order.
#[derive(Clone, Default)]
pub struct Recorder {
    inner: Arc<(Record, Condvar)>,
}

impl Recorder {
    pub fn done(&self, tag: &'static str) -> CompletionFn {
        let inner = Arc::clone(&self.inner);
        Box::new(move |c| {
            inner.0.lock().unwrap().push((tag, c));
            inner.1.notify_all();
        })
    }

    pub fn get(&self) -> Vec<(&'static str, Completed)> {
        self.inner.0.lock().unwrap().clone()
    }

    /// Waits until `n` completions were recorded; returns them.
    pub fn wait_for(&self, n: usize) -> Vec<(&'static str, Completed)> {
        let deadline = Instant::now() + TIMEOUT;
        let mut g = self.inner.0.lock().unwrap();
        while g.len() < n && Instant::now() < deadline {
            g = self
                .inner
                .1
                .wait_timeout(g, Duration::from_millis(10))
                .unwrap()
                .0;
        }
        g.clone()
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding and setup.

pub fn enc(cmd: &Command<'_>) -> Vec<u8> {
    let mut e = Encoder::new();
    encode_command(&mut e, cmd, 0);
    e.into_bytes()
}

/// `vkDeviceWaitIdle(device)` without a reply.
pub fn device_wait_idle(device: u64) -> Vec<u8> {
    enc(&Command::DeviceWaitIdle(DeviceWaitIdleArgs {
        device: Id::from_raw(device),
    }))
}

pub fn context(id: u64, dispatch: &Arc<TimelineDispatch>) -> Context {
    Context::new(
        ContextInfo {
            id,
            name: "timeline-test".into(),
        },
        Arc::clone(dispatch) as Arc<dyn Dispatch>,
    )
}

pub fn bind(ctx: &mut Context, ring_idx: u32) {
    ctx.execute(&device_wait_idle(BIND + u64::from(ring_idx)))
        .expect("bind");
}

/// Creates ring 1 on a new blob (resource 1) and makes it execute `bytes`.
pub fn ring_executing(ctx: &mut Context, bytes: &[u8]) {
    const BUFFER_SIZE: u64 = 4096;
    let size = 192 + BUFFER_SIZE + 4;
    ctx.create_blob(&BlobParams {
        res_id: 1,
        blob_type: blob_type::HOST3D,
        flags: blob_flags::MAPPABLE,
        size,
        blob_id: 0,
    })
    .expect("blob");
    let shm: Arc<SharedMemory> = ctx.resource(1).unwrap().shm;
    shm.write_from(192, bytes).unwrap();
    shm.atomic_u32(64)
        .unwrap()
        .store(bytes.len() as u32, Ordering::Release);
    let info = RingCreateInfoMESA {
        resource_id: 1,
        size,
        idle_timeout: 1_000_000,
        head_offset: 0,
        tail_offset: 64,
        status_offset: 128,
        buffer_offset: 192,
        buffer_size: BUFFER_SIZE,
        extra_offset: 192 + BUFFER_SIZE,
        extra_size: 4,
        ..Default::default()
    };
    ctx.execute(&enc(&Command::CreateRingMESA(CreateRingMESAArgs {
        ring: 1,
        p_create_info: &info,
    })))
    .expect("vkCreateRingMESA");
}

/// Threads of this process.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// Waits until `pred()` holds (up to [`TIMEOUT`]).
pub fn eventually(mut pred: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        if pred() {
            return true;
        }
        thread::sleep(Duration::from_millis(5));
    }
    false
}
