//! The vtest "syncs" (`SYNC_CREATE` … `SYNC_WAIT`, contract §3.8): per-connection 64-bit
//! timeline counters plus pending waits whose fd becomes readable once satisfied.
//!
//! Mesa 25.0.7 never reaches these in practice, so the implementation aims at cheap and
//! correct rather than fast: one mutex per connection, waiters re-checked on every change.
//!
//! Lifetime rules (mirroring virglrenderer, where waiters and pending submits hold references):
//! a sync stays alive while the client holds it (until `SYNC_UNREF`) **or** while a pending
//! wait or a pending submit completion refers to it.
//!
//! A [`Completion`] is handed to the backend with each `SUBMIT_CMD2` batch; dropping it (or
//! calling [`Completion::signal`]) sets the batch's syncs to their values. Dropping it without
//! completing the work (context lost) signals too, like the kernel signals fences of a lost
//! context, so nobody waits forever on a dead context.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::sys::Notifier;

/// Most live syncs per connection.
pub const MAX_SYNCS: usize = 65_536;
/// Most pending (unsatisfied, unexpired) waits per connection.
pub const MAX_PENDING_WAITS: usize = 1024;

#[derive(Debug, Error)]
pub enum SyncError {
    #[error("unknown sync id {0}")]
    UnknownSync(u32),
    #[error("too many syncs (cap {MAX_SYNCS})")]
    TooManySyncs,
    #[error("too many pending SYNC_WAITs (cap {MAX_PENDING_WAITS})")]
    TooManyWaits,
    #[error("creating the SYNC_WAIT fd: {0}")]
    Notifier(#[source] std::io::Error),
}

#[derive(Debug)]
struct Entry {
    value: u64,
    /// The client still holds it (no SYNC_UNREF yet).
    client_ref: bool,
    /// Pending waits and completions that refer to it.
    holds: u32,
}

#[derive(Debug)]
struct Waiter {
    conds: Vec<(u32, u64)>,
    any: bool,
    notifier: Notifier,
    /// After this the client has stopped polling its fd: forget the waiter.
    deadline: Option<Instant>,
}

#[derive(Debug, Default)]
struct State {
    next_id: u32,
    syncs: HashMap<u32, Entry>,
    waiters: Vec<Waiter>,
    /// Context lost: every wait is satisfied at once (see the module doc).
    poisoned: bool,
}

/// The sync table of one connection. Cheap to clone (shared handle), `Send + Sync`.
#[derive(Debug, Clone, Default)]
pub struct SyncTable {
    inner: Arc<Mutex<State>>,
}

impl SyncTable {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the plain-data state inconsistent in a
        // way that matters more than losing the whole connection; keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `SYNC_CREATE`: a new sync with `value`; returns its id (never 0).
    pub fn create(&self, value: u64) -> Result<u32, SyncError> {
        let mut s = self.lock();
        if s.syncs.len() >= MAX_SYNCS {
            return Err(SyncError::TooManySyncs);
        }
        let id = loop {
            s.next_id = s.next_id.wrapping_add(1);
            if s.next_id != 0 && !s.syncs.contains_key(&s.next_id) {
                break s.next_id;
            }
        };
        s.syncs.insert(
            id,
            Entry {
                value,
                client_ref: true,
                holds: 0,
            },
        );
        Ok(id)
    }

    /// `SYNC_UNREF`.
    pub fn unref(&self, id: u32) -> Result<(), SyncError> {
        let mut s = self.lock();
        match s.syncs.get_mut(&id) {
            Some(e) if e.client_ref => {
                e.client_ref = false;
                if e.holds == 0 {
                    s.syncs.remove(&id);
                }
                Ok(())
            }
            _ => Err(SyncError::UnknownSync(id)),
        }
    }

    /// `SYNC_READ`.
    pub fn read(&self, id: u32) -> Result<u64, SyncError> {
        let s = self.lock();
        match s.syncs.get(&id) {
            Some(e) if e.client_ref => Ok(e.value),
            _ => Err(SyncError::UnknownSync(id)),
        }
    }

    /// `SYNC_WRITE`: the value becomes `value` (it may go down: a reset); waiters re-checked.
    pub fn write(&self, id: u32, value: u64) -> Result<(), SyncError> {
        let mut s = self.lock();
        match s.syncs.get_mut(&id) {
            Some(e) if e.client_ref => e.value = value,
            _ => return Err(SyncError::UnknownSync(id)),
        }
        s.wake();
        Ok(())
    }

    /// `SYNC_WAIT`: returns the fd to send to the client; it polls readable once all (or, with
    /// `any`, one) of `conds` reached their values. `timeout_ms` is the client's own poll
    /// timeout; after it the waiter is forgotten (`u32::MAX` = never).
    pub fn wait(
        &self,
        conds: Vec<(u32, u64)>,
        any: bool,
        timeout_ms: u32,
    ) -> Result<OwnedFd, SyncError> {
        let mut s = self.lock();
        if let Some(&(id, _)) = conds.iter().find(|(id, _)| !s.is_client_visible(*id)) {
            return Err(SyncError::UnknownSync(id));
        }
        let notifier = Notifier::new().map_err(SyncError::Notifier)?;
        let fd = notifier.try_clone_readable().map_err(SyncError::Notifier)?;
        if s.poisoned || s.satisfied(&conds, any) {
            notifier.notify();
            return Ok(fd);
        }
        s.expire(Instant::now());
        if s.waiters.len() >= MAX_PENDING_WAITS {
            return Err(SyncError::TooManyWaits);
        }
        for (id, _) in &conds {
            s.hold(*id);
        }
        let deadline = (timeout_ms != u32::MAX)
            .then(|| Instant::now() + Duration::from_millis(u64::from(timeout_ms)));
        s.waiters.push(Waiter {
            conds,
            any,
            notifier,
            deadline,
        });
        Ok(fd)
    }

    /// A completion for a submitted batch that signals `syncs` when dropped. Fails (without
    /// side effects) if a sync id is unknown.
    pub fn completion(&self, syncs: Vec<(u32, u64)>) -> Result<Completion, SyncError> {
        if syncs.is_empty() {
            return Ok(Completion::none());
        }
        let mut s = self.lock();
        if let Some(&(id, _)) = syncs.iter().find(|(id, _)| !s.is_client_visible(*id)) {
            return Err(SyncError::UnknownSync(id));
        }
        for (id, _) in &syncs {
            s.hold(*id);
        }
        Ok(Completion {
            pending: Some((self.clone(), syncs)),
        })
    }

    /// Context lost: wake every waiter now and satisfy future waits at once.
    pub fn poison(&self) {
        let mut s = self.lock();
        s.poisoned = true;
        s.wake();
    }

    /// Number of live syncs (client-held or held by waits/completions).
    pub fn len(&self) -> usize {
        self.lock().syncs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of pending waits.
    pub fn pending_waits(&self) -> usize {
        self.lock().waiters.len()
    }

    fn signal(&self, syncs: &[(u32, u64)]) {
        let mut s = self.lock();
        for &(id, value) in syncs {
            if let Some(e) = s.syncs.get_mut(&id) {
                e.value = value;
            }
            s.release(id);
        }
        s.wake();
    }
}

impl State {
    fn is_client_visible(&self, id: u32) -> bool {
        self.syncs.get(&id).is_some_and(|e| e.client_ref)
    }

    fn hold(&mut self, id: u32) {
        if let Some(e) = self.syncs.get_mut(&id) {
            e.holds = e.holds.saturating_add(1);
        }
    }

    fn release(&mut self, id: u32) {
        if let Some(e) = self.syncs.get_mut(&id) {
            e.holds = e.holds.saturating_sub(1);
            if e.holds == 0 && !e.client_ref {
                self.syncs.remove(&id);
            }
        }
    }

    fn reached(&self, &(id, target): &(u32, u64)) -> bool {
        self.syncs.get(&id).is_some_and(|e| e.value >= target)
    }

    fn satisfied(&self, conds: &[(u32, u64)], any: bool) -> bool {
        if any {
            conds.iter().any(|c| self.reached(c))
        } else {
            conds.iter().all(|c| self.reached(c))
        }
    }

    /// Notifies and removes every satisfied waiter (all of them when poisoned).
    fn wake(&mut self) {
        let waiters = std::mem::take(&mut self.waiters);
        for w in waiters {
            if self.poisoned || self.satisfied(&w.conds, w.any) {
                w.notifier.notify();
                for (id, _) in &w.conds {
                    self.release(*id);
                }
            } else {
                self.waiters.push(w);
            }
        }
    }

    /// Forgets waiters whose client-side poll has timed out.
    fn expire(&mut self, now: Instant) {
        let waiters = std::mem::take(&mut self.waiters);
        for w in waiters {
            if w.deadline.is_some_and(|d| d <= now) {
                for (id, _) in &w.conds {
                    self.release(*id);
                }
            } else {
                self.waiters.push(w);
            }
        }
    }
}

/// Signals a batch's syncs when dropped (see the module doc). `Send`, so a backend may move
/// it to the thread that observes the work's completion.
#[derive(Debug)]
#[must_use = "dropping a Completion signals its syncs immediately"]
pub struct Completion {
    pending: Option<(SyncTable, Vec<(u32, u64)>)>,
}

impl Completion {
    /// A completion with nothing to signal.
    pub fn none() -> Self {
        Self { pending: None }
    }

    /// Whether dropping this completion signals anything.
    pub fn is_empty(&self) -> bool {
        self.pending.is_none()
    }

    /// Signals now (same as dropping it).
    pub fn signal(self) {}
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some((table, syncs)) = self.pending.take() {
            table.signal(&syncs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::event::{poll, PollFd, PollFlags, Timespec};

    fn readable(fd: &OwnedFd) -> bool {
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        poll(&mut fds, Some(&zero)).unwrap() == 1
    }

    #[test]
    fn create_read_write_unref() {
        let t = SyncTable::new();
        let a = t.create(5).unwrap();
        let b = t.create(0).unwrap();
        assert_ne!(a, 0);
        assert_ne!(a, b);
        assert_eq!(t.read(a).unwrap(), 5);
        t.write(a, 2).unwrap();
        assert_eq!(t.read(a).unwrap(), 2);
        t.unref(a).unwrap();
        assert!(matches!(t.read(a), Err(SyncError::UnknownSync(_))));
        assert!(matches!(t.unref(a), Err(SyncError::UnknownSync(_))));
        assert!(matches!(t.write(99, 1), Err(SyncError::UnknownSync(99))));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn wait_all_and_any() {
        let t = SyncTable::new();
        let a = t.create(0).unwrap();
        let b = t.create(0).unwrap();
        let all = t.wait(vec![(a, 1), (b, 2)], false, u32::MAX).unwrap();
        let any = t.wait(vec![(a, 1), (b, 2)], true, u32::MAX).unwrap();
        assert!(!readable(&all) && !readable(&any));
        t.write(a, 1).unwrap();
        assert!(!readable(&all));
        assert!(readable(&any));
        t.write(b, 3).unwrap();
        assert!(readable(&all));
        assert_eq!(t.pending_waits(), 0);
        // Already satisfied: readable at once.
        let now = t.wait(vec![(a, 1)], false, 0).unwrap();
        assert!(readable(&now));
        assert!(matches!(
            t.wait(vec![(77, 1)], false, 0),
            Err(SyncError::UnknownSync(77))
        ));
    }

    #[test]
    fn completion_signals_on_drop_and_keeps_unrefd_syncs_alive() {
        let t = SyncTable::new();
        let a = t.create(0).unwrap();
        let fd = t.wait(vec![(a, 4)], false, u32::MAX).unwrap();
        let c = t.completion(vec![(a, 4)]).unwrap();
        t.unref(a).unwrap();
        assert_eq!(t.len(), 1, "held by the wait and the completion");
        let handle = std::thread::spawn(move || c.signal());
        handle.join().unwrap();
        assert!(readable(&fd));
        assert_eq!(t.len(), 0);
        assert!(t.completion(vec![(a, 1)]).is_err());
    }

    #[test]
    fn expired_waits_are_forgotten_and_capped() {
        let t = SyncTable::new();
        let a = t.create(0).unwrap();
        for _ in 0..MAX_PENDING_WAITS {
            t.wait(vec![(a, 1)], false, 0).unwrap();
        }
        // All expired (timeout 0): room again.
        t.wait(vec![(a, 1)], false, u32::MAX).unwrap();
        for _ in 1..MAX_PENDING_WAITS {
            t.wait(vec![(a, 1)], false, u32::MAX).unwrap();
        }
        assert!(matches!(
            t.wait(vec![(a, 1)], false, u32::MAX),
            Err(SyncError::TooManyWaits)
        ));
    }

    #[test]
    fn poison_wakes_everyone() {
        let t = SyncTable::new();
        let a = t.create(0).unwrap();
        let fd = t.wait(vec![(a, 1)], false, u32::MAX).unwrap();
        t.poison();
        assert!(readable(&fd));
        let fd2 = t.wait(vec![(a, 10)], false, u32::MAX).unwrap();
        assert!(readable(&fd2));
    }
}
