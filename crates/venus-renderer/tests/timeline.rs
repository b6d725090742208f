//! Fence timelines: `SUBMIT_CMD2` completions per `ring_idx`, signalled by the retire threads
//! after the (fake) host work finishes, with a fake `TimelineQueue` (no Vulkan needed).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use venus_renderer::{Completed, ContextError, RETIRE_WAIT_SLICE};

use Completed::{Lost, Signalled};

/// Long enough for a retire thread to have signalled wrongly.
const SETTLE: Duration = Duration::from_millis(150);

#[test]
fn completions_wait_for_the_host_per_timeline_and_in_order() {
    let d = TimelineDispatch::new(3);
    let mut ctx = context(1, &d);
    bind(&mut ctx, 1);
    bind(&mut ctx, 2);
    assert_eq!(ctx.bound_timelines(), [1, 2]);
    let rec = Recorder::default();
    let eiv = device_wait_idle(0);
    ctx.submit(1, &eiv, rec.done("a1")).unwrap();
    ctx.submit(1, &eiv, rec.done("a2")).unwrap();
    ctx.submit(2, &eiv, rec.done("b1")).unwrap();
    assert_eq!(d.queues[1].submitted(), 2, "one marker per submission");
    assert_eq!(d.queues[2].submitted(), 1);
    thread::sleep(SETTLE);
    assert_eq!(
        rec.get(),
        [],
        "nothing is signalled before the host work finishes"
    );

    // Timeline 2 finishes first, independently of timeline 1.
    d.queues[2].release(1);
    assert_eq!(rec.wait_for(1), [("b1", Signalled)]);
    thread::sleep(SETTLE);
    assert_eq!(rec.get().len(), 1, "timeline 1 still waits");

    // Timeline 1, one marker at a time, in order.
    d.queues[1].release(1);
    assert_eq!(rec.wait_for(2), [("b1", Signalled), ("a1", Signalled)]);
    thread::sleep(SETTLE);
    assert_eq!(rec.get().len(), 2, "a2's marker has not finished");
    d.queues[1].release(2);
    assert_eq!(
        rec.wait_for(3),
        [("b1", Signalled), ("a1", Signalled), ("a2", Signalled)]
    );
}

#[test]
fn markers_finishing_together_are_signalled_in_submission_order() {
    let d = TimelineDispatch::new(2);
    let mut ctx = context(2, &d);
    bind(&mut ctx, 1);
    let rec = Recorder::default();
    let tags = ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"];
    for t in tags {
        ctx.submit(1, &device_wait_idle(0), rec.done(t)).unwrap();
    }
    d.queues[1].release(8);
    let got = rec.wait_for(8);
    assert_eq!(got, tags.map(|t| (t, Signalled)));
}

#[test]
fn cpu_timeline_and_unbound_timelines_complete_at_once() {
    let d = TimelineDispatch::new(2);
    let mut ctx = context(3, &d);
    bind(&mut ctx, 1);
    let rec = Recorder::default();
    ctx.submit(0, &device_wait_idle(0), rec.done("cpu"))
        .unwrap();
    assert_eq!(rec.get(), [("cpu", Signalled)], "before submit returned");
    ctx.submit(5, &device_wait_idle(0), rec.done("unbound"))
        .unwrap();
    ctx.submit(1000, &[], rec.done("out of range")).unwrap();
    assert_eq!(
        rec.get(),
        [
            ("cpu", Signalled),
            ("unbound", Signalled),
            ("out of range", Signalled)
        ]
    );
    assert_eq!(d.queues[1].submitted(), 0, "no marker for other timelines");
    assert!(!ctx.is_fatal());
}

#[test]
fn bind_refuses_zero_out_of_range_and_rebinding() {
    let d = TimelineDispatch::new(2);
    let mut ctx = context(4, &d);
    for k in [0, 64, 1, 1, 63] {
        bind(&mut ctx, k);
    }
    let binds = d.binds.lock().unwrap().clone();
    assert!(binds[0].as_ref().unwrap_err().contains("ring_idx 0"));
    assert!(binds[1].as_ref().unwrap_err().contains("ring_idx 64"));
    assert_eq!(binds[2], Ok(1));
    assert!(binds[3].as_ref().unwrap_err().contains("already bound"));
    assert_eq!(binds[4], Ok(63));
    assert_eq!(ctx.bound_timelines(), [1, 63]);
}

#[test]
fn unbinding_reports_pending_completions_lost() {
    let d = TimelineDispatch::new(2);
    let mut ctx = context(5, &d);
    bind(&mut ctx, 1);
    let rec = Recorder::default();
    ctx.submit(1, &device_wait_idle(0), rec.done("pending"))
        .unwrap();
    let t = Instant::now();
    // vkDestroyDevice: the dispatch unbinds (the marker never finishes).
    ctx.execute(&device_wait_idle(UNBIND + 1)).unwrap();
    assert!(t.elapsed() < RETIRE_WAIT_SLICE * 5, "{:?}", t.elapsed());
    assert_eq!(rec.get(), [("pending", Lost)]);
    assert_eq!(ctx.bound_timelines(), [] as [u32; 0]);
    // Now unbound: at once. And it can be bound again.
    ctx.submit(1, &device_wait_idle(0), rec.done("after"))
        .unwrap();
    assert_eq!(rec.get()[1], ("after", Signalled));
    bind(&mut ctx, 1);
    assert_eq!(ctx.bound_timelines(), [1]);
}

#[test]
fn a_failed_submission_completes_lost() {
    let d = TimelineDispatch::new(2);
    let mut ctx = context(6, &d);
    bind(&mut ctx, 1);
    let rec = Recorder::default();
    let e = ctx.submit(1, &[1, 2, 3], rec.done("garbage")).unwrap_err();
    assert!(matches!(e, ContextError::Fatal(_)), "{e:?}");
    assert_eq!(rec.get(), [("garbage", Lost)]);
    let e = ctx.submit(0, &[], rec.done("later")).unwrap_err();
    assert!(matches!(e, ContextError::Lost(_)), "{e:?}");
    assert_eq!(rec.get()[1], ("later", Lost));
    assert_eq!(d.queues[1].submitted(), 0);
}

#[test]
fn context_drop_reports_pending_completions_lost() {
    let d = TimelineDispatch::new(3);
    let mut ctx = context(7, &d);
    bind(&mut ctx, 1);
    bind(&mut ctx, 2);
    let rec = Recorder::default();
    ctx.submit(1, &device_wait_idle(0), rec.done("one"))
        .unwrap();
    ctx.submit(2, &device_wait_idle(0), rec.done("two"))
        .unwrap();
    let t = Instant::now();
    drop(ctx);
    assert!(t.elapsed() < RETIRE_WAIT_SLICE * 5, "{:?}", t.elapsed());
    let mut got = rec.get();
    got.sort_by_key(|(tag, _)| *tag);
    assert_eq!(got, [("one", Lost), ("two", Lost)]);
}

#[test]
fn a_blocked_context_dispatch_is_cancelled_when_the_peer_hangs_up() {
    let d = TimelineDispatch::new(1);
    let mut ctx = context(8, &d);
    let gone = Arc::new(AtomicBool::new(false));
    let g = Arc::clone(&gone);
    ctx.set_peer_check(Arc::new(move || g.load(Ordering::SeqCst)));
    let g = Arc::clone(&gone);
    let hangup = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        g.store(true, Ordering::SeqCst);
    });
    let rec = Recorder::default();
    let t = Instant::now();
    let e = ctx
        .submit(0, &device_wait_idle(WAIT_CANCELLED), rec.done("blocked"))
        .unwrap_err();
    hangup.join().unwrap();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(e.to_string().contains("client is gone"), "{e}");
    assert_eq!(rec.get(), [("blocked", Lost)]);
}

#[test]
fn wait_ring_seqno_gives_up_when_the_peer_hangs_up() {
    use venus_protocol::commands::WaitRingSeqnoMESAArgs;
    use venus_protocol::Command;

    let d = TimelineDispatch::new(1);
    let mut ctx = context(9, &d);
    let gone = Arc::new(AtomicBool::new(false));
    let g = Arc::clone(&gone);
    ctx.set_peer_check(Arc::new(move || g.load(Ordering::SeqCst)));
    // The ring blocks in a dispatch until cancelled; the context waits for it to pass.
    let blocked = device_wait_idle(WAIT_CANCELLED);
    ring_executing(&mut ctx, &blocked);
    let g = Arc::clone(&gone);
    let hangup = thread::spawn(move || {
        thread::sleep(Duration::from_millis(150));
        g.store(true, Ordering::SeqCst);
    });
    let t = Instant::now();
    let e = ctx
        .execute(&enc(&Command::WaitRingSeqnoMESA(WaitRingSeqnoMESAArgs {
            ring: 1,
            seqno: blocked.len() as u64,
        })))
        .unwrap_err();
    hangup.join().unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t.elapsed()
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(e.to_string().contains("client disconnected"), "{e}");
    assert!(ctx.is_fatal());
}
