//! Rings, reply streams and the context's transport commands, driven by a test that plays the
//! client: it writes encoded commands into the ring's shared memory (wrapping around the end of
//! the buffer), publishes `tail` with a release store, notifies through context submissions, and
//! reads `head`, `status` and replies back, like Mesa's `vn_ring.c` does.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use venus_protocol::commands::*;
use venus_protocol::structs::{
    CommandStreamDescriptionMESA, Ext, RingCreateInfoMESA, RingMonitorInfoMESA,
};
use venus_protocol::types::VkResult;
use venus_protocol::{
    decode_reply, encode_command, Arena, Command, CommandHeader, Decoder, Encoder, Id, Reply,
    COMMAND_GENERATE_REPLY,
};
use venus_renderer::resources::{blob_flags, blob_type};
use venus_renderer::shm::SharedMemory;
use venus_renderer::{
    command_name, BlobParams, Channel, Context, ContextError, ContextInfo, Dispatch, DispatchCx,
    DispatchError, STATUS_ALIVE, STATUS_FATAL, STATUS_IDLE,
};

const TIMEOUT: Duration = Duration::from_secs(10);
const RING_RES: u32 = 1;
const REPLY_RES: u32 = 2;
const CMD_RES: u32 = 3;
const RING_ID: u64 = 0x5555_0000_1000;

/// `vkDeviceWaitIdle(device)` with this device id blocks until the gate opens.
const GATE_DEVICE: u64 = 0x6a7e;
/// `vkDeviceWaitIdle(device)` with this device id sleeps `sleep_ms`.
const SLEEP_DEVICE: u64 = 0x5133;

// ---------------------------------------------------------------------------------------------
// The test dispatch.

#[derive(Default)]
struct TestDispatch {
    log: Mutex<Vec<(Channel, &'static str)>>,
    changed: Condvar,
    gate_open: Mutex<bool>,
    gate: Condvar,
    sleep_ms: AtomicU32,
    /// `vkEnumerateInstanceVersion` answers 1, 2, 3, ... so replies can be told apart.
    version: AtomicU32,
}

impl TestDispatch {
    fn log(&self) -> MutexGuard<'_, Vec<(Channel, &'static str)>> {
        self.log.lock().unwrap()
    }

    fn names(&self) -> Vec<&'static str> {
        self.log().iter().map(|(_, n)| *n).collect()
    }

    fn wait_log(&self, mut pred: impl FnMut(&[(Channel, &'static str)]) -> bool) -> bool {
        let deadline = Instant::now() + TIMEOUT;
        let mut g = self.log();
        while !pred(&g) {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            g = self.changed.wait_timeout(g, deadline - now).unwrap().0;
        }
        true
    }

    fn open_gate(&self) {
        *self.gate_open.lock().unwrap() = true;
        self.gate.notify_all();
    }
}

impl Dispatch for TestDispatch {
    fn dispatch(
        &self,
        cx: &mut DispatchCx<'_>,
        header: &CommandHeader,
        cmd: &Command<'_>,
    ) -> Result<(), DispatchError> {
        self.log().push((cx.channel(), command_name(header)));
        self.changed.notify_all();
        match cmd {
            Command::EnumerateInstanceVersion(_) => {
                let v = self.version.fetch_add(1, Ordering::SeqCst) + 1;
                cx.reply(&Reply::EnumerateInstanceVersion(
                    EnumerateInstanceVersionReply {
                        ret: VkResult::SUCCESS,
                        p_api_version: &v,
                    },
                ))
            }
            Command::DeviceWaitIdle(a) => {
                match a.device.raw() {
                    GATE_DEVICE => {
                        let mut open = self.gate_open.lock().unwrap();
                        while !*open {
                            if cx.is_cancelled() {
                                return Err(DispatchError::Cancelled);
                            }
                            open = self
                                .gate
                                .wait_timeout(open, Duration::from_millis(10))
                                .unwrap()
                                .0;
                        }
                    }
                    SLEEP_DEVICE => thread::sleep(Duration::from_millis(u64::from(
                        self.sleep_ms.load(Ordering::SeqCst),
                    ))),
                    _ => {}
                }
                cx.reply(&Reply::DeviceWaitIdle(DeviceWaitIdleReply {
                    ret: VkResult::SUCCESS,
                }))
            }
            Command::CmdDraw(_) => Ok(()),
            // A dispatch that forgets the reply.
            Command::QueueWaitIdle(_) => Ok(()),
            _ => Err(DispatchError::Unsupported(command_name(header))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding helpers.

fn enc(cmd: &Command<'_>, flags: u32) -> Vec<u8> {
    let mut e = Encoder::new();
    encode_command(&mut e, cmd, flags);
    e.into_bytes()
}

/// `vkEnumerateInstanceVersion` with a reply (16 bytes).
fn eiv() -> Vec<u8> {
    enc(
        &Command::EnumerateInstanceVersion(EnumerateInstanceVersionArgs { p_api_version: &0 }),
        COMMAND_GENERATE_REPLY,
    )
}

fn device_wait_idle(device: u64, flags: u32) -> Vec<u8> {
    enc(
        &Command::DeviceWaitIdle(DeviceWaitIdleArgs {
            device: Id::from_raw(device),
        }),
        flags,
    )
}

/// `vkSetReplyCommandStreamMESA` (36 bytes: not a divisor of any ring size, so batches of it
/// straddle the end of the buffer).
fn set_reply(res: u32, offset: u64, size: u64) -> Vec<u8> {
    let s = CommandStreamDescriptionMESA {
        resource_id: res,
        offset,
        size,
    };
    enc(
        &Command::SetReplyCommandStreamMESA(SetReplyCommandStreamMESAArgs { p_stream: &s }),
        0,
    )
}

fn execute_streams(streams: &[CommandStreamDescriptionMESA], positions: &[u64]) -> Vec<u8> {
    enc(
        &Command::ExecuteCommandStreamsMESA(ExecuteCommandStreamsMESAArgs {
            stream_count: streams.len() as u32,
            p_streams: streams,
            p_reply_positions: positions,
            dependency_count: 0,
            p_dependencies: &[],
            flags: Default::default(),
        }),
        0,
    )
}

fn notify(ring: u64) -> Vec<u8> {
    enc(
        &Command::NotifyRingMESA(NotifyRingMESAArgs {
            ring,
            seqno: 0,
            flags: Default::default(),
        }),
        0,
    )
}

fn wait_ring_seqno(ring: u64, seqno: u32) -> Vec<u8> {
    enc(
        &Command::WaitRingSeqnoMESA(WaitRingSeqnoMESAArgs {
            ring,
            seqno: u64::from(seqno),
        }),
        0,
    )
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Decodes the `vkEnumerateInstanceVersion` reply at `offset` of `shm`: the version.
fn eiv_reply_at(shm: &SharedMemory, offset: u64) -> u32 {
    let bytes = shm.read_vec(offset, 20).unwrap();
    let arena = Arena::new();
    let mut d = Decoder::new(&bytes, &arena);
    match decode_reply(&mut d).unwrap() {
        Reply::EnumerateInstanceVersion(r) => {
            assert_eq!(r.ret, VkResult::SUCCESS);
            *r.p_api_version
        }
        other => panic!("unexpected reply {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The client side of a ring.

struct Layout {
    size: u64,
    buffer_size: u32,
    idle_timeout: Duration,
    monitor_us: Option<u32>,
}

impl Layout {
    fn new(buffer_size: u32, idle_timeout: Duration) -> Self {
        Self {
            size: 192 + u64::from(buffer_size) + 4,
            buffer_size,
            idle_timeout,
            monitor_us: Some(3_000_000),
        }
    }
}

struct ClientRing {
    shm: Arc<SharedMemory>,
    id: u64,
    size: u32,
    tail: u32,
}

impl ClientRing {
    const HEAD: u64 = 0;
    const TAIL: u64 = 64;
    const STATUS: u64 = 128;
    const BUFFER: u64 = 192;

    /// Writes `bytes` at the tail (wrapping) and publishes the new tail (release).
    fn publish(&mut self, bytes: &[u8]) -> u32 {
        assert!(bytes.len() as u32 <= self.size);
        let pos = self.tail & (self.size - 1);
        let first = ((self.size - pos) as usize).min(bytes.len());
        self.shm
            .write_from(Self::BUFFER + u64::from(pos), &bytes[..first])
            .unwrap();
        self.shm.write_from(Self::BUFFER, &bytes[first..]).unwrap();
        self.tail = self.tail.wrapping_add(bytes.len() as u32);
        self.store_tail(self.tail);
        self.tail
    }

    fn store_tail(&self, tail: u32) {
        self.shm
            .atomic_u32(Self::TAIL)
            .unwrap()
            .store(tail, Ordering::Release);
    }

    fn head(&self) -> u32 {
        self.shm
            .atomic_u32(Self::HEAD)
            .unwrap()
            .load(Ordering::Acquire)
    }

    fn status(&self) -> u32 {
        self.shm
            .atomic_u32(Self::STATUS)
            .unwrap()
            .load(Ordering::SeqCst)
    }

    fn clear_status(&self, bits: u32) {
        self.shm
            .atomic_u32(Self::STATUS)
            .unwrap()
            .fetch_and(!bits, Ordering::SeqCst);
    }

    /// Waits until `pred(head, status)` holds.
    fn wait(&self, mut pred: impl FnMut(u32, u32) -> bool) -> bool {
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            if pred(self.head(), self.status()) {
                return true;
            }
            thread::sleep(Duration::from_micros(200));
        }
        false
    }

    fn wait_head(&self, head: u32) -> bool {
        self.wait(|h, _| h == head)
    }

    fn wait_fatal(&self) -> bool {
        self.wait(|_, s| s & STATUS_FATAL != 0)
    }
}

fn create_ring_cmd(id: u64, res: u32, l: &Layout) -> Vec<u8> {
    let monitor = l.monitor_us.map(|us| {
        Ext::RingMonitorInfoMESA(RingMonitorInfoMESA {
            p_next: None,
            max_reporting_period_microseconds: us,
        })
    });
    let info = RingCreateInfoMESA {
        p_next: monitor.as_ref(),
        resource_id: res,
        offset: 0,
        size: l.size,
        idle_timeout: l.idle_timeout.as_nanos() as u64,
        head_offset: ClientRing::HEAD,
        tail_offset: ClientRing::TAIL,
        status_offset: ClientRing::STATUS,
        buffer_offset: ClientRing::BUFFER,
        buffer_size: u64::from(l.buffer_size),
        extra_offset: 192 + u64::from(l.buffer_size),
        extra_size: 4,
        ..Default::default()
    };
    enc(
        &Command::CreateRingMESA(CreateRingMESAArgs {
            ring: id,
            p_create_info: &info,
        }),
        0,
    )
}

struct Harness {
    ctx: Context,
    dispatch: Arc<TestDispatch>,
    ring: ClientRing,
    reply: Arc<SharedMemory>,
    cmds: Arc<SharedMemory>,
}

impl Harness {
    /// Publishes like Mesa: write, release-store tail, then notify if the ring is IDLE.
    fn publish(&mut self, bytes: &[u8]) -> u32 {
        let tail = self.ring.publish(bytes);
        if self.ring.status() & STATUS_IDLE != 0 {
            // Fails once the context is lost; the tests check that separately.
            let _ = self.ctx.execute(&notify(self.ring.id));
        }
        tail
    }
}

fn blob(ctx: &mut Context, res_id: u32, size: u64) -> Arc<SharedMemory> {
    ctx.create_blob(&BlobParams {
        res_id,
        blob_type: blob_type::HOST3D,
        flags: blob_flags::MAPPABLE,
        size,
        blob_id: 0,
    })
    .expect("blob");
    ctx.resource(res_id).unwrap().shm
}

fn setup(layout: Layout) -> Harness {
    let dispatch = Arc::new(TestDispatch::default());
    let mut ctx = Context::new(
        ContextInfo {
            id: 7,
            name: "ring-test".into(),
        },
        Arc::clone(&dispatch) as Arc<dyn Dispatch>,
    );
    let ring_shm = blob(&mut ctx, RING_RES, layout.size);
    let reply = blob(&mut ctx, REPLY_RES, 4096);
    let cmds = blob(&mut ctx, CMD_RES, 65536);
    ctx.execute(&create_ring_cmd(RING_ID, RING_RES, &layout))
        .expect("vkCreateRingMESA");
    assert_eq!(ctx.ring_count(), 1);
    Harness {
        ctx,
        dispatch,
        ring: ClientRing {
            shm: ring_shm,
            id: RING_ID,
            size: layout.buffer_size,
            tail: 0,
        },
        reply,
        cmds,
    }
}

fn default_harness() -> Harness {
    setup(Layout::new(4096, Duration::from_millis(1)))
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
fn head_advances_after_each_command() {
    let mut h = default_harness();
    let first = concat(&[&set_reply(REPLY_RES, 0, 4096), &eiv()]);
    let gate = device_wait_idle(GATE_DEVICE, COMMAND_GENERATE_REPLY);
    let last = eiv();
    let tail = h.publish(&concat(&[&first, &gate, &last]));
    // The ring is blocked inside the gated command: head is exactly past the commands before
    // it, and the reply of the first command is already complete.
    assert!(h
        .dispatch
        .wait_log(|l| l.iter().any(|(_, n)| *n == "vkDeviceWaitIdle")));
    thread::sleep(Duration::from_millis(50));
    assert_eq!(h.ring.head(), first.len() as u32);
    assert_eq!(eiv_reply_at(&h.reply, 0), 1);
    h.dispatch.open_gate();
    assert!(h.ring.wait_head(tail));
    assert_eq!(
        h.dispatch.names(),
        [
            "vkEnumerateInstanceVersion",
            "vkDeviceWaitIdle",
            "vkEnumerateInstanceVersion"
        ]
    );
    assert!(h.dispatch.log().iter().all(|(c, _)| *c
        == Channel::Ring {
            id: RING_ID,
            index: 0
        }));
    // Replies back to back: 20 bytes, 8 bytes (type + VkResult), 20 bytes.
    let mut b = [0u8; 8];
    h.reply.read_into(20, &mut b).unwrap();
    assert_eq!(
        b,
        [20, 0, 0, 0, 0, 0, 0, 0],
        "vkDeviceWaitIdle reply (id 20, VK_SUCCESS)"
    );
    assert_eq!(eiv_reply_at(&h.reply, 28), 2);
    assert!(!h.ctx.is_fatal());
}

#[test]
fn wrap_around_and_reply_offsets() {
    let mut h = setup(Layout::new(256, Duration::from_millis(1)));
    // 52 bytes per publish through a 256-byte ring: commands straddle the end of the buffer.
    let mut straddled = 0;
    for i in 0..40u64 {
        let batch = concat(&[&set_reply(REPLY_RES, 24 * i, 20), &eiv()]);
        let before = h.ring.tail & 255;
        if before + batch.len() as u32 > 256 {
            straddled += 1;
        }
        let tail = h.publish(&batch);
        assert!(h.ring.wait_head(tail), "batch {i}");
        assert_eq!(eiv_reply_at(&h.reply, 24 * i), i as u32 + 1, "reply {i}");
    }
    assert!(
        straddled >= 5,
        "{straddled} batches straddled the wrap point"
    );
    // A single publish of many commands, almost filling the buffer.
    let many: Vec<u8> = concat(&[&set_reply(REPLY_RES, 2000, 2000)])
        .into_iter()
        .chain((0..13).flat_map(|_| eiv()))
        .collect();
    assert!(many.len() <= 256);
    let tail = h.publish(&many);
    assert!(h.ring.wait_head(tail));
    for k in 0..13u64 {
        assert_eq!(eiv_reply_at(&h.reply, 2000 + 20 * k), 41 + k as u32);
    }
    assert!(!h.ctx.is_fatal(), "{:?}", h.ctx.fatal_reason());
}

#[test]
fn a_megabyte_of_batches() {
    // 262 publishes of nearly a whole buffer each: the counters go round the buffer 256 times.
    let mut h = default_harness();
    let step: Vec<u8> = (0..250).flat_map(|_| device_wait_idle(1, 0)).collect(); // 4000 bytes
    let mut tail = 0u32;
    let target = 1u32 << 20;
    while tail < target {
        tail = h.publish(&step);
        assert!(h.ring.wait_head(tail));
    }
    assert!(!h.ctx.is_fatal());
    assert_eq!(
        h.dispatch.names().len(),
        (tail / 16) as usize,
        "every command executed once"
    );
}

#[test]
fn idle_after_timeout_and_notify_wakes() {
    let idle = Duration::from_millis(200);
    let mut h = setup(Layout::new(4096, idle));
    let tail = h.publish(&concat(&[&set_reply(REPLY_RES, 0, 4096), &eiv()]));
    assert!(h.ring.wait_head(tail));
    let done = Instant::now();
    assert_eq!(h.ring.status() & STATUS_IDLE, 0, "active right after work");
    assert!(h.ring.wait(|_, s| s & STATUS_IDLE != 0), "IDLE never set");
    let idle_after = done.elapsed();
    assert!(
        idle_after >= idle - Duration::from_millis(20),
        "IDLE after {idle_after:?}, before the {idle:?} idle timeout"
    );
    // Idle: new work is not picked up without a notification...
    let tail = h.ring.publish(&eiv());
    thread::sleep(Duration::from_millis(100));
    assert_eq!(
        h.ring.head(),
        tail - 16,
        "an idle ring must sleep until notified"
    );
    assert_ne!(h.ring.status() & STATUS_IDLE, 0);
    // ... and is after vkNotifyRingMESA, which clears IDLE.
    h.ctx.execute(&notify(RING_ID)).unwrap();
    assert!(h.ring.wait_head(tail));
    let woke = Instant::now();
    assert_eq!(h.ring.status() & STATUS_IDLE, 0, "IDLE cleared on wake-up");
    // After a wake-up the ring stays active for >= idleTimeout: work published without a
    // notification (the client rate-limits them) is picked up.
    thread::sleep(Duration::from_millis(50));
    let tail = h.ring.publish(&eiv());
    assert!(h.ring.wait_head(tail));
    assert!(
        woke.elapsed() < idle,
        "test too slow to check the active window"
    );
    assert_eq!(eiv_reply_at(&h.reply, 40), 3);
}

#[test]
fn notify_handshake_under_jitter() {
    // Mesa's producer side exactly: publish, seq-cst load of status, notify only if IDLE is
    // set and no notify went out in the last 1 ms (the client's rate limit, which relies on
    // the ring staying active >= idleTimeout after each wake-up). Publishes land around the
    // 1 ms idle transition; a lost wake-up shows as a head that never catches up.
    let mut h = setup(Layout::new(4096, Duration::from_millis(1)));
    let mut last_notify: Option<Instant> = None;
    let mut seed = 0x1234_5678u32;
    for i in 0..300 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let pause_us = 700 + u64::from(seed >> 16) % 700; // 0.7 .. 1.4 ms
        thread::sleep(Duration::from_micros(pause_us));
        let tail = h.ring.publish(&device_wait_idle(1, 0));
        if h.ring.status() & STATUS_IDLE != 0
            && last_notify.is_none_or(|t| t.elapsed() >= Duration::from_millis(1))
        {
            h.ctx.execute(&notify(RING_ID)).unwrap();
            last_notify = Some(Instant::now());
        }
        assert!(h.ring.wait_head(tail), "lost wake-up at publish {i}");
    }
    assert!(!h.ctx.is_fatal());
}

#[test]
fn garbage_is_fatal() {
    let mut h = default_harness();
    let tail = h.publish(&eiv()); // No reply stream yet: fatal too, so set one first.
    let _ = tail;
    assert!(h.ring.wait_fatal());
    assert!(h.ctx.fatal_reason().unwrap().contains("no reply stream"));

    let mut h = default_harness();
    let mut junk = Vec::new();
    junk.extend_from_slice(&0x7fff_0000i32.to_le_bytes());
    junk.extend_from_slice(&[0; 12]);
    h.publish(&junk);
    assert!(h.ring.wait_fatal());
    assert!(h.ctx.is_fatal());
    let reason = h.ctx.fatal_reason().unwrap();
    assert!(
        reason.contains("unknown command type 2147418112"),
        "{reason}"
    );
    assert!(reason.contains("ring 0"), "{reason}");
    // The ring thread is gone; later work is ignored and submissions fail.
    let head = h.ring.head();
    h.publish(&eiv());
    thread::sleep(Duration::from_millis(50));
    assert_eq!(h.ring.head(), head);
    assert!(matches!(
        h.ctx.execute(&notify(RING_ID)),
        Err(ContextError::Lost(_))
    ));
}

#[test]
fn unsupported_command_is_fatal() {
    let mut h = default_harness();
    let cmd = enc(
        &Command::DestroyInstance(DestroyInstanceArgs {
            instance: Id::from_raw(1),
        }),
        0,
    );
    h.publish(&cmd);
    assert!(h.ring.wait_fatal());
    let reason = h.ctx.fatal_reason().unwrap();
    assert!(
        reason.contains("unsupported command vkDestroyInstance"),
        "{reason}"
    );
}

#[test]
fn missing_reply_and_overflow_are_fatal() {
    let mut h = default_harness();
    let cmd = enc(
        &Command::QueueWaitIdle(QueueWaitIdleArgs {
            queue: Id::from_raw(1),
        }),
        COMMAND_GENERATE_REPLY,
    );
    h.publish(&concat(&[&set_reply(REPLY_RES, 0, 64), &cmd]));
    assert!(h.ring.wait_fatal());
    let reason = h.ctx.fatal_reason().unwrap();
    assert!(reason.contains("reply was not written"), "{reason}");

    let mut h = default_harness();
    h.publish(&concat(&[&set_reply(REPLY_RES, 0, 30), &eiv(), &eiv()]));
    assert!(h.ring.wait_fatal());
    let reason = h.ctx.fatal_reason().unwrap();
    assert!(reason.contains("overflows the reply stream"), "{reason}");
    // The first reply fitted and was written; head stopped after it.
    assert_eq!(eiv_reply_at(&h.reply, 0), 1);
    assert_eq!(h.ring.head(), 36 + 16);

    // A window outside the resource.
    let mut h = default_harness();
    h.publish(&set_reply(REPLY_RES, 4090, 16));
    assert!(h.ring.wait_fatal());
    assert!(h.ctx.fatal_reason().unwrap().contains("outside resource 2"));
}

#[test]
fn tail_too_far_ahead_is_fatal() {
    let mut h = default_harness();
    h.ring.store_tail(4096 + 16);
    let _ = h.ctx.execute(&notify(RING_ID));
    assert!(h.ring.wait_fatal());
    let reason = h.ctx.fatal_reason().unwrap();
    assert!(
        reason.contains("more than the 4096-byte ring buffer"),
        "{reason}"
    );
}

#[test]
fn alive_while_dispatch_blocks() {
    // Period 60 ms -> the ticker runs every 20 ms. The dispatch blocks for 400 ms.
    let mut layout = Layout::new(4096, Duration::from_millis(1));
    layout.monitor_us = Some(60_000);
    let mut h = setup(layout);
    assert_ne!(h.ring.status() & STATUS_ALIVE, 0, "ALIVE set at creation");
    h.dispatch.sleep_ms.store(400, Ordering::SeqCst);
    let tail = h.publish(&device_wait_idle(SLEEP_DEVICE, 0));
    assert!(h
        .dispatch
        .wait_log(|l| l.iter().any(|(_, n)| *n == "vkDeviceWaitIdle")));
    let start = Instant::now();
    let mut checks = 0;
    while h.ring.head() != tail {
        // The client's watchdog: clear ALIVE, wait a period, expect it set again.
        h.ring.clear_status(STATUS_ALIVE);
        thread::sleep(Duration::from_millis(60));
        if h.ring.head() == tail {
            break;
        }
        assert_ne!(
            h.ring.status() & STATUS_ALIVE,
            0,
            "ALIVE not renewed within a period while the ring is blocked ({:?} in)",
            start.elapsed()
        );
        checks += 1;
    }
    assert!(checks >= 3, "only {checks} checks during the blocking call");
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert!(!h.ctx.is_fatal());
}

#[test]
fn unmonitored_rings_get_no_alive() {
    let mut layout = Layout::new(4096, Duration::from_millis(1));
    layout.monitor_us = None;
    let h = setup(layout);
    thread::sleep(Duration::from_millis(50));
    assert_eq!(h.ring.status() & STATUS_ALIVE, 0);
}

#[test]
fn zero_monitor_period_is_fatal() {
    let dispatch = Arc::new(TestDispatch::default());
    let mut ctx = Context::new(
        ContextInfo {
            id: 9,
            name: "t".into(),
        },
        dispatch,
    );
    let mut l = Layout::new(4096, Duration::from_millis(1));
    blob(&mut ctx, RING_RES, l.size);
    l.monitor_us = Some(0);
    let e = ctx.execute(&create_ring_cmd(1, RING_RES, &l)).unwrap_err();
    assert!(
        e.to_string()
            .contains("maxReportingPeriodMicroseconds is 0"),
        "{e}"
    );
}

#[test]
fn execute_command_streams_with_reply_positions() {
    let mut h = default_harness();
    // Stream A: one reply; stream B: two replies; an empty stream C in between.
    let a = eiv();
    let b = concat(&[&eiv(), &device_wait_idle(1, 0), &eiv()]);
    h.cmds.write_from(0, &a).unwrap();
    h.cmds.write_from(1000, &b).unwrap();
    let streams = [
        CommandStreamDescriptionMESA {
            resource_id: CMD_RES,
            offset: 0,
            size: a.len() as u64,
        },
        CommandStreamDescriptionMESA {
            resource_id: CMD_RES,
            offset: 500,
            size: 0,
        },
        CommandStreamDescriptionMESA {
            resource_id: CMD_RES,
            offset: 1000,
            size: b.len() as u64,
        },
    ];
    let exec = execute_streams(&streams, &[300, 0, 100]);
    let tail = h.publish(&concat(&[&set_reply(REPLY_RES, 0, 512), &exec, &eiv()]));
    assert!(h.ring.wait_head(tail));
    assert!(!h.ctx.is_fatal(), "{:?}", h.ctx.fatal_reason());
    assert_eq!(eiv_reply_at(&h.reply, 300), 1, "stream A at position 300");
    assert_eq!(eiv_reply_at(&h.reply, 100), 2, "stream B at position 100");
    assert_eq!(eiv_reply_at(&h.reply, 120), 3, "then right after");
    assert_eq!(
        eiv_reply_at(&h.reply, 140),
        4,
        "inline command after the streams"
    );

    // Without reply positions the replies continue at the current position.
    let exec = execute_streams(&streams[..1], &[]);
    let tail = h.publish(&concat(&[&set_reply(REPLY_RES, 1024, 64), &exec]));
    assert!(h.ring.wait_head(tail));
    assert_eq!(eiv_reply_at(&h.reply, 1024), 5);
}

#[test]
fn execute_command_streams_errors_are_fatal() {
    // A stream (at CMD_RES offset 0) that is itself a vkExecuteCommandStreamsMESA of itself.
    let self_ref = |size| {
        execute_streams(
            &[CommandStreamDescriptionMESA {
                resource_id: CMD_RES,
                offset: 0,
                size,
            }],
            &[],
        )
    };
    let nested = self_ref(self_ref(0).len() as u64);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (nested.clone(), "nesting is not allowed"),
        (
            execute_streams(
                &[CommandStreamDescriptionMESA {
                    resource_id: CMD_RES,
                    offset: 65536 - 8,
                    size: 16,
                }],
                &[],
            ),
            "outside the resource",
        ),
        (
            execute_streams(
                &[CommandStreamDescriptionMESA {
                    resource_id: 99,
                    offset: 0,
                    size: 16,
                }],
                &[],
            ),
            "resource 99 does not exist",
        ),
        (
            execute_streams(
                &[CommandStreamDescriptionMESA {
                    resource_id: CMD_RES,
                    offset: 0,
                    size: 16,
                }],
                &[5000],
            ),
            "seek to 5000",
        ),
        (execute_streams(&[], &[]), "streamCount 0"),
    ];
    for (cmd, expect) in cases {
        let mut h = default_harness();
        // The stream at CMD_RES offset 0 itself holds a vkExecuteCommandStreamsMESA.
        h.cmds.write_from(0, &nested).unwrap();
        h.publish(&concat(&[&set_reply(REPLY_RES, 0, 512), &cmd]));
        assert!(h.ring.wait_fatal(), "{expect}");
        let reason = h.ctx.fatal_reason().unwrap();
        assert!(reason.contains(expect), "expected {expect:?} in {reason:?}");
    }
}

#[test]
fn wait_ring_seqno_blocks_until_head_passes() {
    let mut h = default_harness();
    let tail = h.publish(&concat(&[
        &device_wait_idle(GATE_DEVICE, 0),
        &device_wait_idle(1, 0),
    ]));
    assert!(h
        .dispatch
        .wait_log(|l| l.iter().any(|(_, n)| *n == "vkDeviceWaitIdle")));
    let Harness {
        ctx,
        dispatch,
        ring,
        ..
    } = &mut h;
    thread::scope(|s| {
        let waiter = s.spawn(|| {
            let r = ctx.execute(&wait_ring_seqno(RING_ID, tail));
            (r, ring.head())
        });
        thread::sleep(Duration::from_millis(150));
        assert!(!waiter.is_finished(), "vkWaitRingSeqnoMESA returned early");
        dispatch.open_gate();
        let (r, head) = waiter.join().unwrap();
        r.unwrap();
        assert_eq!(head, tail, "returned only once the ring passed the seqno");
    });
    // Already reached: returns at once.
    h.ctx.execute(&wait_ring_seqno(RING_ID, tail)).unwrap();
    h.ctx.execute(&wait_ring_seqno(RING_ID, 16)).unwrap();
}

#[test]
fn wait_ring_seqno_wakes_an_idle_ring() {
    // The client published without notifying (a hostile or racing client): the wait itself
    // wakes the ring.
    let mut h = setup(Layout::new(4096, Duration::from_millis(5)));
    assert!(h.ring.wait(|_, s| s & STATUS_IDLE != 0));
    let tail = h.ring.publish(&device_wait_idle(1, 0));
    thread::sleep(Duration::from_millis(30));
    assert_eq!(h.ring.head(), 0);
    h.ctx.execute(&wait_ring_seqno(RING_ID, tail)).unwrap();
    assert_eq!(h.ring.head(), tail);
}

#[test]
fn impossible_wait_ring_seqno_is_fatal_not_a_hang() {
    let mut h = setup(Layout::new(4096, Duration::from_millis(5)));
    let tail = h.publish(&device_wait_idle(1, 0));
    assert!(h.ring.wait_head(tail));
    let start = Instant::now();
    let e = h
        .ctx
        .execute(&wait_ring_seqno(RING_ID, tail + 64))
        .unwrap_err();
    assert!(start.elapsed() < TIMEOUT);
    assert!(e.to_string().contains("nothing more published"), "{e}");
    assert!(h.ring.wait_fatal());
}

#[test]
fn wait_virtqueue_seqno_blocks_the_ring() {
    let mut h = default_harness();
    let wait = enc(
        &Command::WaitVirtqueueSeqnoMESA(WaitVirtqueueSeqnoMESAArgs { seqno: 5 }),
        0,
    );
    let tail = h.publish(&concat(&[&wait, &device_wait_idle(1, 0)]));
    thread::sleep(Duration::from_millis(50));
    assert_eq!(h.ring.head(), 0, "blocked in vkWaitVirtqueueSeqnoMESA");
    let submit = |seqno| {
        enc(
            &Command::SubmitVirtqueueSeqnoMESA(SubmitVirtqueueSeqnoMESAArgs {
                ring: RING_ID,
                seqno,
            }),
            0,
        )
    };
    h.ctx.execute(&submit(4)).unwrap();
    thread::sleep(Duration::from_millis(50));
    assert_eq!(h.ring.head(), 0, "seqno 4 < 5");
    h.ctx.execute(&submit(5)).unwrap();
    assert!(h.ring.wait_head(tail));
    assert_eq!(h.dispatch.names(), ["vkDeviceWaitIdle"]);

    // On the context channel it is fatal (it would deadlock the connection).
    let e = h.ctx.execute(&wait).unwrap_err();
    assert!(e.to_string().contains("not allowed"), "{e}");
}

#[test]
fn virtqueue_and_ring_wait_deadlock_is_fatal() {
    let mut h = default_harness();
    let wait = enc(
        &Command::WaitVirtqueueSeqnoMESA(WaitVirtqueueSeqnoMESAArgs { seqno: 1 }),
        0,
    );
    let tail = h.publish(&concat(&[&wait, &device_wait_idle(1, 0)]));
    thread::sleep(Duration::from_millis(20));
    let e = h.ctx.execute(&wait_ring_seqno(RING_ID, tail)).unwrap_err();
    assert!(e.to_string().contains("deadlock"), "{e}");
    assert!(h.ring.wait_fatal());
}

#[test]
fn channel_rules() {
    // Context-only commands on a ring are fatal.
    let mut h = default_harness();
    h.publish(&notify(RING_ID));
    assert!(h.ring.wait_fatal());
    assert!(h
        .ctx
        .fatal_reason()
        .unwrap()
        .contains("vkNotifyRingMESA is not allowed"));

    // Unknown rings are fatal on the context.
    let mut h = default_harness();
    let e = h.ctx.execute(&notify(RING_ID + 1)).unwrap_err();
    assert!(e.to_string().contains("unknown ring"), "{e}");
    assert!(h.ring.wait_fatal(), "every ring of a lost context is FATAL");

    // A duplicate ring id is fatal.
    let mut h = default_harness();
    let l = Layout::new(4096, Duration::from_millis(1));
    let e = h
        .ctx
        .execute(&create_ring_cmd(RING_ID, RING_RES, &l))
        .unwrap_err();
    assert!(e.to_string().contains("a ring with this id exists"), "{e}");

    // The context channel has its own reply stream; Vulkan commands on it reach the dispatch.
    let mut h = default_harness();
    h.ctx
        .execute(&concat(&[&set_reply(REPLY_RES, 64, 64), &eiv()]))
        .unwrap();
    assert_eq!(eiv_reply_at(&h.reply, 64), 1);
    assert_eq!(
        h.dispatch.log().clone(),
        [(Channel::Context, "vkEnumerateInstanceVersion")]
    );
    // A transport command with the reply bit gets a type-only reply.
    h.ctx
        .execute(&enc(
            &Command::NotifyRingMESA(NotifyRingMESAArgs {
                ring: RING_ID,
                seqno: 0,
                flags: Default::default(),
            }),
            COMMAND_GENERATE_REPLY,
        ))
        .unwrap();
    let mut b = [0u8; 4];
    h.reply.read_into(64 + 20, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), 190);
}

#[test]
fn bad_ring_creation_is_fatal() {
    let dispatch = Arc::new(TestDispatch::default());
    let mut ctx = Context::new(
        ContextInfo {
            id: 3,
            name: "t".into(),
        },
        dispatch,
    );
    let l = Layout::new(4096, Duration::from_millis(1));
    // Unknown resource.
    let e = ctx.execute(&create_ring_cmd(1, RING_RES, &l)).unwrap_err();
    assert!(e.to_string().contains("resource 1 does not exist"), "{e}");
    // Bad layout (resource too small).
    let mut ctx = Context::new(
        ContextInfo {
            id: 4,
            name: "t".into(),
        },
        Arc::new(TestDispatch::default()),
    );
    blob(&mut ctx, RING_RES, l.size - 4);
    let e = ctx.execute(&create_ring_cmd(1, RING_RES, &l)).unwrap_err();
    assert!(e.to_string().contains("outside the resource"), "{e}");
    // Non-zero status at creation.
    let mut ctx = Context::new(
        ContextInfo {
            id: 5,
            name: "t".into(),
        },
        Arc::new(TestDispatch::default()),
    );
    let shm = blob(&mut ctx, RING_RES, l.size);
    shm.atomic_u32(128).unwrap().store(2, Ordering::Relaxed);
    let e = ctx.execute(&create_ring_cmd(1, RING_RES, &l)).unwrap_err();
    assert!(e.to_string().contains("must be 0 at creation"), "{e}");
}

#[test]
fn unref_keeps_ring_memory_and_destroy_joins() {
    let mut h = default_harness();
    h.ctx.unref(RING_RES);
    h.ctx.unref(REPLY_RES);
    assert!(h.ctx.resource(RING_RES).is_none());
    // Still usable through the ring's own reference.
    let tail = h.publish(&device_wait_idle(1, 0));
    assert!(h.ring.wait_head(tail));
    let destroy = enc(
        &Command::DestroyRingMESA(DestroyRingMESAArgs { ring: RING_ID }),
        0,
    );
    h.ctx.execute(&destroy).unwrap();
    assert_eq!(h.ctx.ring_count(), 0);
    // The thread is gone: nothing is consumed any more, and it is not FATAL.
    let head = h.ring.head();
    h.ring.publish(&device_wait_idle(1, 0));
    thread::sleep(Duration::from_millis(30));
    assert_eq!(h.ring.head(), head);
    assert_eq!(h.ring.status() & STATUS_FATAL, 0);
    assert!(!h.ctx.is_fatal());
    // Destroying it again is fatal.
    assert!(h.ctx.execute(&destroy).is_err());
}

#[test]
fn several_rings_run_concurrently() {
    let mut h = default_harness();
    let shm2 = blob(&mut h.ctx, 10, 192 + 4096 + 4);
    let l = Layout::new(4096, Duration::from_millis(1));
    h.ctx.execute(&create_ring_cmd(2, 10, &l)).unwrap();
    let mut ring2 = ClientRing {
        shm: shm2,
        id: 2,
        size: 4096,
        tail: 0,
    };
    assert_eq!(ring2.id, 2);
    // Ring 1 blocks in the gate; ring 2 still makes progress.
    h.publish(&device_wait_idle(GATE_DEVICE, 0));
    let tail2 = ring2.publish(&device_wait_idle(1, 0));
    h.ctx.execute(&notify(2)).unwrap();
    assert!(ring2.wait_head(tail2));
    assert_eq!(h.ring.head(), 0);
    h.dispatch.open_gate();
    assert!(h.ring.wait_head(16));
    let channels: HashSet<Channel> = h.dispatch.log().iter().map(|(c, _)| *c).collect();
    assert!(channels.contains(&Channel::Ring { id: 2, index: 1 }));
}

#[test]
fn mark_fatal_and_drop_stop_blocked_rings() {
    let mut h = default_harness();
    h.publish(&device_wait_idle(GATE_DEVICE, 0));
    assert!(h
        .dispatch
        .wait_log(|l| l.iter().any(|(_, n)| *n == "vkDeviceWaitIdle")));
    h.ctx.mark_fatal("transport said so");
    assert!(h.ring.wait_fatal());
    assert_eq!(h.ctx.fatal_reason().unwrap(), "transport said so");
    // Dropping joins the ring thread, which gives up its cancellable wait.
    let start = Instant::now();
    drop(h.ctx);
    assert!(start.elapsed() < Duration::from_secs(2));
    // The client's mapping stays valid after the context is gone.
    assert_ne!(h.ring.status() & STATUS_FATAL, 0);
}

/// `max_rings` and `max_ring_size` are checked at `vkCreateRingMESA`: the context is lost with a
/// reason naming the limit, its value and its flag; blobs are charged to `max_shared_memory`.
#[test]
fn ring_limits_end_the_context() {
    use venus_renderer::shm::ShmConfig;
    use venus_renderer::Limits;
    let make = |limits: Limits| {
        Context::with_limits(
            ContextInfo {
                id: 9,
                name: "ring-limits".into(),
            },
            Arc::new(TestDispatch::default()) as Arc<dyn Dispatch>,
            ShmConfig::default(),
            limits,
        )
    };
    let layout = Layout::new(4096, Duration::from_millis(1));

    let mut ctx = make(Limits {
        max_rings: 1,
        ..Limits::default()
    });
    blob(&mut ctx, RING_RES, layout.size);
    blob(&mut ctx, CMD_RES, layout.size);
    ctx.execute(&create_ring_cmd(RING_ID, RING_RES, &layout))
        .expect("the first ring");
    let e = ctx
        .execute(&create_ring_cmd(RING_ID + 1, CMD_RES, &layout))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("limit exceeded: rings of the context: 1 in use + 1 requested > 1")
            && e.contains("`max_rings`")
            && e.contains("`--max-rings`"),
        "{e}"
    );
    assert!(ctx.is_fatal());

    let mut ctx = make(Limits {
        max_ring_size: 2048,
        ..Limits::default()
    });
    blob(&mut ctx, RING_RES, layout.size);
    let e = ctx
        .execute(&create_ring_cmd(RING_ID, RING_RES, &layout))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ring buffer size (bytes): 0 in use + 4096 requested > 2048")
            && e.contains("`--max-ring-size`"),
        "{e}"
    );

    let mut ctx = make(Limits {
        max_shared_memory: 8192,
        ..Limits::default()
    });
    blob(&mut ctx, 1, 8192);
    let e = ctx
        .create_blob(&BlobParams {
            res_id: 2,
            blob_type: blob_type::HOST3D,
            flags: blob_flags::MAPPABLE,
            size: 1,
            blob_id: 0,
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("`max_shared_memory`"), "{e}");
    ctx.unref(1);
    blob(&mut ctx, 3, 8192);
}
