//! Bounded teardown: joining a context's threads and dropping its dispatch without ever
//! blocking the caller for more than [`TEARDOWN_BOUND`].
//!
//! Every thread of a context (rings, ALIVE ticker, retire threads) is asked to stop *before*
//! any join (the flags a blocked dispatch reads through [`crate::DispatchCx::is_cancelled`]
//! are set first). `join_all` then polls [`JoinHandle::is_finished`] with short sleeps up to
//! a deadline; a thread still running at the deadline is detached with one ERROR line naming
//! it (it finishes, or not, on its own; what it holds is released when it does).
//! `drop_within` drops a value that may block in a driver (the per-context dispatch: host
//! object destruction) on a short-lived thread that the caller waits for up to the deadline.

use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tracing::error;

/// The longest a context teardown ([`crate::Context`]'s `Drop`) or a timeline unbinding may
/// block its caller, whatever the context's threads or the host driver are doing (plus
/// scheduling slack, and at most 100 ms more for the dispatch's drop when the joins used the
/// whole bound).
pub const TEARDOWN_BOUND: Duration = Duration::from_secs(2);

/// The least `drop_within` waits, even past the deadline (so that a quick drop is not
/// reported as hung because the joins used the whole bound).
const DROP_GRACE: Duration = Duration::from_millis(100);

/// Sleep between two `is_finished` polls.
const JOIN_POLL: Duration = Duration::from_millis(2);

/// Joins `threads` until `deadline`; detaches (with an ERROR line each) those still running
/// then. Returns the number detached.
pub(crate) fn join_all(
    ctx_id: u64,
    threads: impl IntoIterator<Item = JoinHandle<()>>,
    deadline: Instant,
) -> usize {
    let mut pending: Vec<JoinHandle<()>> = threads.into_iter().collect();
    loop {
        let (finished, running): (Vec<_>, Vec<_>) =
            pending.into_iter().partition(JoinHandle::is_finished);
        for t in finished {
            let name = t.thread().name().unwrap_or("<unnamed>").to_owned();
            if t.join().is_err() {
                error!(ctx = ctx_id, thread = %name, "thread panicked");
            }
        }
        pending = running;
        if pending.is_empty() {
            return 0;
        }
        let now = Instant::now();
        if now >= deadline {
            for t in &pending {
                error!(
                    ctx = ctx_id,
                    thread = t.thread().name().unwrap_or("<unnamed>"),
                    "thread did not stop within the teardown bound of {TEARDOWN_BOUND:?}: \
                     detached"
                );
            }
            return pending.len();
        }
        thread::sleep(JOIN_POLL.min(deadline - now));
    }
}

/// Drops `value` on a thread `venus-teardown-<ctx>` and waits for it until `deadline`; after
/// that the thread is detached with an ERROR line (`what` names the value). Returns whether
/// the drop finished in time.
pub(crate) fn drop_within<T: Send + 'static>(
    ctx_id: u64,
    what: &str,
    value: T,
    deadline: Instant,
) -> bool {
    let name = format!("venus-teardown-{ctx_id}");
    let (tx, rx) = mpsc::channel::<()>();
    let spawned = thread::Builder::new().name(name.clone()).spawn(move || {
        drop(value);
        let _ = tx.send(());
    });
    let t = match spawned {
        Ok(t) => t,
        Err(e) => {
            // The closure (and `value` with it) was dropped inline by the failed spawn.
            error!(
                ctx = ctx_id,
                "cannot start {name} ({e}): dropped {what} inline"
            );
            return true;
        }
    };
    let wait = deadline
        .saturating_duration_since(Instant::now())
        .max(DROP_GRACE);
    match rx.recv_timeout(wait) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            if t.join().is_err() {
                error!(ctx = ctx_id, thread = %name, "dropping {what} panicked");
            }
            true
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            error!(
                ctx = ctx_id,
                thread = %name,
                "dropping {what} did not finish within the teardown bound of \
                 {TEARDOWN_BOUND:?}: detached"
            );
            false
        }
    }
}
