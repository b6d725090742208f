//! The interface between the vtest transport and whatever renders.
//!
//! The transport (this crate) owns the socket, the framing, request order, resource ids and
//! the vtest syncs; the backend (the renderer, or [`crate::stub::StubBackend`] until it
//! exists) owns contexts, shared memory, rings and Vulkan.
//!
//! Threading: one [`Backend`] is shared by every connection (`Send + Sync`); each connection
//! creates one [`ContextBackend`] on its own thread and is its only caller. Dropping the
//! context is "client gone": the backend destroys everything the context owns.
//!
//! Error contract (see the crate doc for the whole policy):
//! - [`ContextBackend::create_blob`] errors are per-request failures: the client gets the
//!   failure answer (`res_id` 0, no fd) and the context lives on.
//! - [`ContextBackend::init`] and [`ContextBackend::submit`] errors are context-fatal: the
//!   transport calls [`ContextBackend::mark_fatal`] and stops forwarding work.
//! - The backend may also become fatal on its own (a ring thread hit an invalid command);
//!   it reports that through [`ContextBackend::is_fatal`], which the transport checks after
//!   every request. Either way the **backend** must set the FATAL bit in the context's ring
//!   status words so that the client aborts cleanly (contract §4.4); the transport keeps the
//!   socket open because closing it makes Mesa spin forever (contract §1).
//! - Logging: one WARN line per lost context. The backend logs the reasons it finds (a
//!   failed `submit`, `is_fatal` turning true: the transport then logs at DEBUG only); the
//!   transport logs the reasons it finds and passes them to `mark_fatal`, which must not log
//!   them at WARN again.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use thiserror::Error;

use super::sync::Completion;

/// A backend failure, with enough context to be logged as the one line that explains why a
/// client's request failed or its context died.
#[derive(Debug, Error)]
pub enum BackendError {
    /// The request is valid vtest but names something this backend does not do (another
    /// capset, a blob type it cannot back, ...).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The request contradicts the backend's state (unknown blob_id, bad command stream, ...).
    #[error("invalid: {0}")]
    Invalid(String),
    /// A limit was hit (memory, object counts, blob size).
    #[error("resource limit: {0}")]
    ResourceLimit(String),
    /// A system call failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The context is lost; nothing more will be executed for it.
    #[error("context lost: {0}")]
    Fatal(String),
}

impl BackendError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        Self::Io {
            context: context.into(),
            source: source.into(),
        }
    }
}

/// "Has the client hung up?" (true = gone), cheap enough to call ~10 times a second from a
/// blocked thread (one `poll` with timeout 0). See [`ContextBackend::set_peer_check`].
pub type PeerCheck = Arc<dyn Fn() -> bool + Send + Sync>;

/// Who a context belongs to (for the backend's logs and per-client policies).
#[derive(Debug, Clone, Copy)]
pub struct ContextInfo<'a> {
    /// The server's connection number (1, 2, ...), unique for the server's lifetime.
    pub conn_id: u64,
    /// The client's `CREATE_RENDERER` name (its process name, client-controlled: log it with
    /// `{:?}`).
    pub name: &'a str,
}

/// A `RESOURCE_CREATE_BLOB` request, validated by the transport (flags known, size within
/// [`crate::vtest::conn::Limits::max_blob_size`], context initialised).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobRequest {
    /// Chosen by the transport: non-zero, unique among this connection's live resources. The
    /// client uses it as `resourceId` in Venus commands.
    pub res_id: u32,
    /// [`crate::vtest::protocol::blob_type`]; venus uses only `HOST3D`.
    pub blob_type: u32,
    /// [`crate::vtest::protocol::blob_flags`].
    pub flags: u32,
    /// Bytes, not necessarily page aligned, non-zero.
    pub size: u64,
    /// 0: new plain shared memory; else the id of a `VkDeviceMemory` to export (contract §3.3).
    pub blob_id: u64,
}

/// A renderer as seen by the vtest server: process-wide facts and a context factory.
pub trait Backend: Send + Sync + 'static {
    /// Per-connection state.
    type Context: ContextBackend;

    /// The capset `id` at `version` as dwords (Venus: 40 dwords, see [`crate::capset`]), or
    /// `None` if unsupported (the client then fails with "no venus capset").
    fn capset(&self, id: u32, version: u32) -> Option<Vec<u32>>;

    /// `GET_PARAM(MAX_TIMELINE_COUNT)`: number of timelines (valid `ring_idx` values are
    /// `0..count`). Must be non-zero for Mesa; virglrenderer answers 64.
    fn max_timeline_count(&self) -> u32;

    /// A new context for a connection that sent `CREATE_RENDERER`.
    fn create_context(&self, info: ContextInfo<'_>) -> Result<Self::Context, BackendError>;
}

/// One client's context. All calls come from the connection's thread, in request order.
pub trait ContextBackend: Send + 'static {
    /// `CONTEXT_INIT`: become a context of capset `capset_id` (Venus = 4). Called at most once.
    fn init(&mut self, capset_id: u32) -> Result<(), BackendError>;

    /// `RESOURCE_CREATE_BLOB`: create resource `req.res_id` and return an fd whose
    /// `mmap(MAP_SHARED, offset 0, req.size)` shows its contents (a zero-filled memfd for
    /// `blob_id` 0). The fd is sent to the client and closed by the transport; keep your own
    /// reference to the memory.
    fn create_blob(&mut self, req: &BlobRequest) -> Result<OwnedFd, BackendError>;

    /// `RESOURCE_UNREF` of a live resource this context created (the transport filters unknown
    /// ids). For device-memory blobs keep the pages until the `VkDeviceMemory` is freed
    /// (contract §7.4).
    fn unref(&mut self, res_id: u32);

    /// One `SUBMIT_CMD2` batch: `commands` is the Venus command stream (a private copy) for the
    /// context dispatcher; `ring_idx` is the timeline (already checked to be below
    /// [`Backend::max_timeline_count`]). Drop `completion` when the batch is complete:
    /// ring_idx 0 right after decoding, ring_idx k > 0 when the work previously submitted to
    /// the queue bound to k has finished (contract §3.6). It may be moved to another thread.
    ///
    /// May block (e.g. `vkWaitRingSeqnoMESA` blocks this connection's stream, contract §3.5).
    /// An error is context-fatal.
    fn submit(
        &mut self,
        ring_idx: u32,
        commands: &[u8],
        completion: Completion,
    ) -> Result<(), BackendError>;

    /// Whether the context has been lost (checked after every request).
    fn is_fatal(&self) -> bool;

    /// The transport found a protocol violation (or `init`/`submit` failed): mark every ring
    /// of this context FATAL, stop executing its work and release what you can. The fds
    /// already handed out stay valid (the client may still have them mapped). Called exactly
    /// once, when the transport starts treating the context as lost, including after
    /// [`ContextBackend::is_fatal`] turned true.
    fn mark_fatal(&mut self, reason: &str);

    /// Installed once, right after the context is created: tells whether the client has hung
    /// up. A backend blocked inside [`ContextBackend::submit`] (the connection's thread cannot
    /// read EOF meanwhile) uses it to give up. Default: ignored.
    fn set_peer_check(&mut self, check: PeerCheck) {
        let _ = check;
    }
}
