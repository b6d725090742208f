//! Bounded context teardown. One test (it counts the process's threads, so nothing may run
//! beside it): a pending marker that honours its timeout leaves no thread behind; a marker, a
//! ring dispatch and a dispatch drop that all block forever still let the context drop return
//! within `TEARDOWN_BOUND`, with one ERROR line per detached thread.
//! (The hung threads are left parked until the process exits.)

mod common;

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use venus_renderer::{Completed, TEARDOWN_BOUND};

/// Scheduling slack on a loaded machine.
const MARGIN: Duration = Duration::from_millis(1500);

/// Log lines, for assertions.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn errors(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains("ERROR"))
            .map(str::to_owned)
            .collect()
    }
}

#[test]
fn teardown_is_bounded() {
    let logs = Logs::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .init();
    let baseline = thread_count();

    // 1. A marker that never finishes but honours its timeout: everything is joined.
    let d = TimelineDispatch::new(2);
    let mut ctx = context(21, &d);
    bind(&mut ctx, 1);
    let rec = Recorder::default();
    ctx.submit(1, &device_wait_idle(0), rec.done("pending"))
        .unwrap();
    assert_eq!(thread_count(), baseline + 1, "the retire thread");
    let t = Instant::now();
    drop(ctx);
    let took = t.elapsed();
    assert!(took < TEARDOWN_BOUND, "{took:?}");
    assert_eq!(rec.get(), [("pending", Completed::Lost)]);
    assert!(
        eventually(|| thread_count() == baseline),
        "threads: {} (baseline {baseline})",
        thread_count()
    );
    assert_eq!(logs.errors(), [] as [String; 0]);

    // 2. Everything hangs, ignoring cancellation: a marker in the driver (retire thread), a
    //    dispatch on a ring thread, and the dispatch's own destruction.
    let d = TimelineDispatch::new(2);
    let mut ctx = context(22, &d);
    bind(&mut ctx, 1);
    d.queues[1].ignore_timeout.store(true, Ordering::SeqCst);
    ctx.submit(1, &device_wait_idle(0), rec.done("hung marker"))
        .unwrap();
    ring_executing(&mut ctx, &device_wait_idle(HANG));
    assert!(
        eventually(|| d.hanging.load(Ordering::SeqCst)),
        "{}",
        String::from_utf8_lossy(&logs.0.lock().unwrap())
    );
    d.hang_on_drop.store(true, Ordering::SeqCst);
    drop(d); // The context holds the last reference.
    let t = Instant::now();
    drop(ctx);
    let took = t.elapsed();
    assert!(took < TEARDOWN_BOUND + MARGIN, "{took:?}");
    assert!(
        took >= TEARDOWN_BOUND,
        "{took:?}: the threads were given the bound"
    );
    assert_eq!(
        rec.get()[1],
        ("hung marker", Completed::Lost),
        "the detached retire thread's completion is called by the teardown"
    );
    let errors = logs.errors();
    let named = |name: &str| errors.iter().filter(|l| l.contains(name)).count();
    assert_eq!(named("venus-ring-22-0"), 1, "{errors:#?}");
    assert_eq!(named("venus-retire-22-1"), 1, "{errors:#?}");
    assert!(errors.iter().all(|l| l.contains("detached")), "{errors:#?}");
    assert_eq!(errors.len(), 2, "one line per detached thread: {errors:#?}");

    // 3. Destroying the host objects hangs (nothing else does).
    let d = TimelineDispatch::new(1);
    d.hang_on_drop.store(true, Ordering::SeqCst);
    let ctx = context(23, &d);
    drop(d);
    let t = Instant::now();
    drop(ctx);
    let took = t.elapsed();
    assert!(took < TEARDOWN_BOUND + MARGIN, "{took:?}");
    let errors = logs.errors();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors[2].contains("venus-teardown-23") && errors[2].contains("dispatch"),
        "{errors:#?}"
    );
}
