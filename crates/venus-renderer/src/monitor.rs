//! The liveness ticker: one thread per context (`venus-alive-<ctx>`), started with the first
//! ring that chains `VkRingMonitorInfoMESA`, that ORs ALIVE into the status of every monitored
//! ring of the context at least once per `min(maxReportingPeriod) / 3` (contract §4.4).
//!
//! It is independent of the ring threads on purpose: a ring thread blocked for minutes in a
//! host wait (`vkWaitForFences`) must not make the client's watchdog ("aborting on expired
//! ring alive status") fire. ALIVE means "the host process is alive", not "progress".
//! The context also sets ALIVE once, synchronously, when it creates a monitored ring.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use crate::context::ContextShared;
use crate::ring::STATUS_ALIVE;

/// Shortest tick (a hostile 1 µs period cannot make the ticker spin).
pub const MIN_TICK: Duration = Duration::from_millis(1);
/// Longest tick, whatever the period (1 s is the contract's recommended margin for 3 s).
pub const MAX_TICK: Duration = Duration::from_secs(1);

/// The ticker interval for the shortest requested period.
pub fn tick_interval(min_period: Duration) -> Duration {
    (min_period / 3).clamp(MIN_TICK, MAX_TICK)
}

#[derive(Debug, Default)]
struct State {
    /// Shortest `maxReportingPeriod` of any monitored ring created so far.
    period: Option<Duration>,
    stop: bool,
}

/// The ticker's control block (in [`ContextShared`]).
#[derive(Debug, Default)]
pub(crate) struct Monitor {
    state: Mutex<State>,
    cond: Condvar,
}

impl Monitor {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A monitored ring with `period` was created: shortens the tick if needed and wakes the
    /// ticker so the new rate applies at once.
    pub(crate) fn add_period(&self, period: Duration) {
        let mut g = self.lock();
        g.period = Some(g.period.map_or(period, |p| p.min(period)));
        self.cond.notify_all();
    }

    /// Stops the ticker (context teardown).
    pub(crate) fn stop(&self) {
        self.lock().stop = true;
        self.cond.notify_all();
    }
}

/// Starts the ticker thread of `ctx`.
pub(crate) fn spawn(ctx: Arc<ContextShared>) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name(format!("venus-alive-{}", ctx.info.id))
        .spawn(move || run(&ctx))
}

fn run(ctx: &ContextShared) {
    let monitor = &ctx.monitor;
    let mut g = monitor.lock();
    loop {
        if g.stop {
            return;
        }
        let Some(period) = g.period else {
            g = monitor.cond.wait(g).unwrap_or_else(|e| e.into_inner());
            continue;
        };
        drop(g);
        for ring in ctx.rings().iter() {
            if ring.monitor_period.is_some() {
                ring.set_status(STATUS_ALIVE);
            }
        }
        g = monitor.lock();
        if g.stop {
            return;
        }
        // A wake-up before the timeout (a new, shorter period) just ticks early.
        g = monitor
            .cond
            .wait_timeout(g, tick_interval(period))
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks() {
        assert_eq!(
            tick_interval(Duration::from_secs(3)),
            Duration::from_secs(1)
        );
        assert_eq!(
            tick_interval(Duration::from_millis(300)),
            Duration::from_millis(100)
        );
        assert_eq!(tick_interval(Duration::from_micros(1)), MIN_TICK);
        assert_eq!(tick_interval(Duration::from_secs(3600)), MAX_TICK);
    }
}
