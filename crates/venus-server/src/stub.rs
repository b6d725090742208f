//! A transport-only backend (the transport's tests, and `venus-server --stub`): it answers the
//! capset and timeline queries like the renderer backend ([`crate::renderer`]), backs blobs
//! with anonymous shared memory (memfd on Linux), and records (and decodes, to name the
//! commands) every submitted command stream without executing anything. Rings are never consumed, so a real Mesa client gets through
//! the handshake and `vkCreateRingMESA`, then waits on its ring.
//!
//! It also serves the transport's tests: [`StubBackend::log`] exposes what it saw, and
//! [`StubBackend::blob_fd`] a second fd of any live blob (to prove the memory is shared).

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};
use venus_protocol::{command_info, decode_command, Arena, Decoder};

use crate::capset::{VenusCapset, VENUS_CAPSET_ID, VENUS_CAPSET_VERSION};
use crate::sys;
use crate::vtest::protocol::blob_type;
use crate::vtest::{Backend, BackendError, BlobRequest, Completion, ContextBackend, ContextInfo};

/// `GET_PARAM(MAX_TIMELINE_COUNT)` answer (what virglrenderer answers).
pub const STUB_MAX_TIMELINE_COUNT: u32 = 64;

/// One submitted batch as the stub saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitRecord {
    pub conn_id: u64,
    pub ring_idx: u32,
    pub commands: Vec<u8>,
    /// Names of the decoded Venus commands, in order.
    pub command_names: Vec<&'static str>,
}

/// Everything the stub has seen (for tests and diagnostics).
#[derive(Debug, Default)]
pub struct StubLog {
    /// `(conn_id, client name)` of every context created.
    pub contexts: Vec<(u64, String)>,
    /// `(conn_id, capset_id)` of every successful CONTEXT_INIT.
    pub inits: Vec<(u64, u32)>,
    /// `(conn_id, request)` of every blob created.
    pub blobs_created: Vec<(u64, BlobRequest)>,
    /// `(conn_id, res_id)` of every unref.
    pub unrefs: Vec<(u64, u32)>,
    pub submissions: Vec<SubmitRecord>,
    /// `(conn_id, reason)` of every context marked fatal.
    pub fatal: Vec<(u64, String)>,
    /// Connection ids whose context was dropped.
    pub destroyed: Vec<u64>,
    live_blobs: HashMap<(u64, u32), OwnedFd>,
}

#[derive(Debug, Default)]
struct Shared {
    log: Mutex<StubLog>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, StubLog> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut StubLog)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }
}

/// The stub backend (see the module doc).
#[derive(Debug, Clone)]
pub struct StubBackend {
    capset: Vec<u32>,
    max_timeline_count: u32,
    device: Option<String>,
    shared: Arc<Shared>,
}

impl Default for StubBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl StubBackend {
    /// The Venus capset of `venus-protocol`'s level and 64 timelines.
    pub fn new() -> Self {
        Self {
            capset: VenusCapset::for_protocol().to_dwords().to_vec(),
            max_timeline_count: STUB_MAX_TIMELINE_COUNT,
            device: None,
            shared: Arc::default(),
        }
    }

    /// Records the `--device` selection (the stub has no devices; it only logs it).
    pub fn with_device(mut self, device: Option<String>) -> Self {
        self.device = device;
        self
    }

    /// Runs `f` on the log.
    pub fn log<R>(&self, f: impl FnOnce(&StubLog) -> R) -> R {
        f(&self.shared.lock())
    }

    /// Waits until `pred` holds on the log (or `timeout` passes); returns whether it held.
    pub fn wait_for(&self, timeout: Duration, mut pred: impl FnMut(&StubLog) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut log = self.shared.lock();
        loop {
            if pred(&log) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            log = self
                .shared
                .changed
                .wait_timeout(log, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// A new fd of live blob `res_id` of connection `conn_id`.
    pub fn blob_fd(&self, conn_id: u64, res_id: u32) -> Option<OwnedFd> {
        self.log(|l| {
            l.live_blobs
                .get(&(conn_id, res_id))
                .and_then(|fd| fd.try_clone().ok())
        })
    }
}

impl Backend for StubBackend {
    type Context = StubContext;

    fn capset(&self, id: u32, version: u32) -> Option<Vec<u32>> {
        (id == VENUS_CAPSET_ID && version == VENUS_CAPSET_VERSION).then(|| self.capset.clone())
    }

    fn max_timeline_count(&self) -> u32 {
        self.max_timeline_count
    }

    fn create_context(&self, info: ContextInfo<'_>) -> Result<StubContext, BackendError> {
        info!(
            conn = info.conn_id,
            client = ?info.name,
            device = ?self.device,
            "stub: context created"
        );
        self.shared
            .update(|l| l.contexts.push((info.conn_id, info.name.to_owned())));
        Ok(StubContext {
            conn_id: info.conn_id,
            shared: Arc::clone(&self.shared),
            fatal: None,
        })
    }
}

/// A stub context (see the module doc).
#[derive(Debug)]
pub struct StubContext {
    conn_id: u64,
    shared: Arc<Shared>,
    fatal: Option<String>,
}

impl ContextBackend for StubContext {
    fn init(&mut self, capset_id: u32) -> Result<(), BackendError> {
        if capset_id != VENUS_CAPSET_ID {
            return Err(BackendError::Unsupported(format!(
                "capset {capset_id} (only Venus = {VENUS_CAPSET_ID})"
            )));
        }
        self.shared
            .update(|l| l.inits.push((self.conn_id, capset_id)));
        Ok(())
    }

    fn create_blob(&mut self, req: &BlobRequest) -> Result<OwnedFd, BackendError> {
        if req.blob_type != blob_type::HOST3D {
            return Err(BackendError::Unsupported(format!(
                "blob type {} (only HOST3D = {})",
                req.blob_type,
                blob_type::HOST3D
            )));
        }
        if req.blob_id != 0 {
            return Err(BackendError::Unsupported(format!(
                "blob_id {:#x}: the stub has no device memory to export",
                req.blob_id
            )));
        }
        let fd = sys::anonymous_shared_memory("venus-stub-blob", req.size).map_err(|e| {
            BackendError::io(format!("allocating {} bytes of shared memory", req.size), e)
        })?;
        let keep = fd
            .try_clone()
            .map_err(|e| BackendError::io("duplicating the blob fd", e))?;
        info!(
            conn = self.conn_id,
            res_id = req.res_id,
            size = req.size,
            flags = req.flags,
            "stub: blob created"
        );
        self.shared.update(|l| {
            l.blobs_created.push((self.conn_id, *req));
            l.live_blobs.insert((self.conn_id, req.res_id), keep);
        });
        Ok(fd)
    }

    fn unref(&mut self, res_id: u32) {
        self.shared.update(|l| {
            l.unrefs.push((self.conn_id, res_id));
            l.live_blobs.remove(&(self.conn_id, res_id));
        });
    }

    fn submit(
        &mut self,
        ring_idx: u32,
        commands: &[u8],
        completion: Completion,
    ) -> Result<(), BackendError> {
        // The stub executes nothing: the batch is "complete" once decoded.
        let _complete = completion;
        let (command_names, error) = decode_names(commands);
        info!(
            conn = self.conn_id,
            ring_idx,
            bytes = commands.len(),
            commands = ?command_names,
            "stub: submit (recorded, not executed)"
        );
        self.shared.update(|l| {
            l.submissions.push(SubmitRecord {
                conn_id: self.conn_id,
                ring_idx,
                commands: commands.to_vec(),
                command_names,
            });
        });
        match error {
            None => Ok(()),
            Some(e) => {
                let reason = format!("undecodable command stream: {e}");
                warn!(conn = self.conn_id, "stub: context lost: {reason}");
                self.fatal = Some(reason.clone());
                Err(BackendError::Fatal(reason))
            }
        }
    }

    fn is_fatal(&self) -> bool {
        self.fatal.is_some()
    }

    fn mark_fatal(&mut self, reason: &str) {
        // The transport logged `reason` (or we did, for a failed submit).
        debug!(conn = self.conn_id, "stub: context marked fatal: {reason}");
        if self.fatal.is_none() {
            self.fatal = Some(reason.to_owned());
        }
        self.shared
            .update(|l| l.fatal.push((self.conn_id, reason.to_owned())));
    }
}

impl Drop for StubContext {
    fn drop(&mut self) {
        let conn_id = self.conn_id;
        self.shared.update(|l| {
            l.destroyed.push(conn_id);
            l.live_blobs.retain(|(c, _), _| *c != conn_id);
        });
    }
}

/// Decodes a command stream far enough to name its commands.
fn decode_names(commands: &[u8]) -> (Vec<&'static str>, Option<String>) {
    let arena = Arena::new();
    let mut d = Decoder::new(commands, &arena);
    let mut names = Vec::new();
    while !d.is_empty() {
        match decode_command(&mut d) {
            Ok((header, _)) => {
                names.push(command_info(header.command_type.0).map_or("<unknown>", |i| i.name))
            }
            Err(e) => return (names, Some(e.to_string())),
        }
    }
    (names, None)
}
