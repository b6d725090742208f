//! One vtest connection: a blocking state machine over a `SOCK_STREAM` UNIX socket, run on
//! the connection's own thread.
//!
//! - Reads whole messages (header, then exactly the announced payload; the client writes
//!   them with separate `write()`s, so reads reassemble), parses them
//!   ([`super::protocol::Request`]) and answers strictly in request order.
//! - Enforces order: `CREATE_RENDERER` first (it creates the backend context), `CONTEXT_INIT`
//!   before blobs and submits, each at most once.
//! - Owns resource ids (non-zero, unique among the connection's live resources) and the
//!   vtest sync table.
//! - Sends fds as the contract wants (§3.3): the response as plain stream data, then a
//!   separate 1-byte message carrying exactly one fd in `SCM_RIGHTS`.
//!
//! # Error policy
//!
//! Mesa treats EOF on the socket as "try again" and spins at 100 % CPU forever if the server
//! closes while it waits for an answer (contract §1), and it aborts cleanly when a ring's
//! status has FATAL. So:
//!
//! 1. **Close** only when the byte stream itself cannot be trusted or used: EOF or an I/O
//!    error, a message cut short by EOF, a header announcing more than the payload cap (the
//!    next header's position is then unknowable), a first message that is not
//!    `CREATE_RENDERER`, or no fd could be created for an answer that must carry one.
//! 2. **Poison** the context on anything else that is wrong (a well-framed but malformed or
//!    unsupported request, order violations, bad `SUBMIT_CMD2` layouts, unknown sync ids,
//!    `CONTEXT_INIT`/`submit` failures, or the backend reporting [`ContextBackend::is_fatal`]):
//!    one `warn` line names the connection, the client and the reason (written by the
//!    transport for what it found, by the backend for a failed `submit` or `is_fatal`, never
//!    by both); the backend's
//!    [`ContextBackend::mark_fatal`] sets FATAL on the context's rings (so Mesa aborts at its
//!    next ring check); the connection stays open and keeps answering, but does no more
//!    work: submits are dropped, blob creation gets the failure answer, `GET_PARAM` and
//!    `GET_CAPSET` answer "invalid", every sync wait is satisfied at once (like the kernel
//!    signalling the fences of a lost context), `RESOURCE_UNREF` still frees.
//! 3. **Fail one request** when a blob cannot be created (size 0 or above
//!    [`Limits::max_blob_size`], more than [`Limits::max_resources`], the context's
//!    shared-memory limits, backend error): the answer is `res_id`
//!    0 followed by the 1-byte message **without** an fd. Mesa's `mmap(-1)` then fails and it
//!    reports `VK_ERROR_OUT_OF_DEVICE_MEMORY` / `VK_ERROR_MEMORY_MAP_FAILED` gracefully (and
//!    unrefs res_id 0, which is ignored). The context lives on.

use std::collections::HashSet;
use std::io::{self, IoSlice, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use rustix::net::{sendmsg, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use thiserror::Error;
use tracing::{debug, info, trace, warn};

use super::backend::{Backend, BackendError, BlobRequest, ContextBackend, ContextInfo};
use super::protocol::{
    self, param, CommandLabel, Header, ProtocolError, Request, Response, FD_MESSAGE_BYTE,
    HEADER_LEN, SYNC_WAIT_FLAG_ANY,
};
use super::sync::{Completion, SyncTable};
use crate::sys::{peer_hung_up, Notifier};

use venus_renderer::Limit;
/// The limits: the transport enforces [`Limits::max_blob_size`] and [`Limits::max_resources`]
/// per connection; the rest go to the backend's contexts (see `venus_renderer::limits`).
pub use venus_renderer::Limits;

/// Why a connection was closed by the server.
#[derive(Debug, Error)]
pub enum ConnError {
    #[error("bad framing: {0}")]
    Framing(#[from] ProtocolError),
    #[error(
        "connection closed in the middle of a message ({got} of {expected} bytes of the {what})"
    )]
    Truncated {
        what: &'static str,
        got: usize,
        expected: usize,
    },
    #[error("the first message must be CREATE_RENDERER, got {0}")]
    NoRenderer(CommandLabel),
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: io::Error,
    },
}

impl ConnError {
    fn io(context: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |source| Self::Io { context, source }
    }
}

/// How a connection ended.
#[derive(Debug)]
pub enum ConnEnd {
    /// The client closed the socket between messages (or the server shut it down).
    ClientClosed,
    /// The server closed it (see the module doc, rule 1).
    Closed(ConnError),
}

/// Serves one client until it disconnects or must be dropped. Never panics on client input.
pub fn serve<B: Backend>(
    stream: UnixStream,
    conn_id: u64,
    backend: Arc<B>,
    limits: Limits,
) -> ConnEnd {
    let mut conn = Connection::new(stream, conn_id, backend, limits);
    let end = conn.run();
    match &end {
        ConnEnd::ClientClosed => info!(
            conn = conn_id,
            client = %conn.label,
            poisoned = conn.poisoned,
            "client disconnected"
        ),
        ConnEnd::Closed(e) => warn!(
            conn = conn_id,
            client = %conn.label,
            "closing the connection: {e}"
        ),
    }
    // Dropping the connection drops the backend context: the backend destroys its objects.
    end
}

struct Connection<B: Backend> {
    id: u64,
    stream: UnixStream,
    backend: Arc<B>,
    limits: Limits,
    /// Sanitised client name for logs (`<none>` before CREATE_RENDERER).
    label: String,
    renderer_created: bool,
    /// `None` before CREATE_RENDERER, or if the backend failed to create it (then poisoned).
    ctx: Option<B::Context>,
    initialized: bool,
    poisoned: bool,
    resources: HashSet<u32>,
    last_res_id: u32,
    syncs: SyncTable,
    warned_multi_batch: bool,
    /// A limit refusal was logged at WARN (later ones go to DEBUG).
    warned_limit: bool,
}

/// Why a blob was refused.
enum Refusal {
    /// A limit (see `venus_renderer::limits`): the message names it.
    Limit(String),
    /// Anything else.
    Other(String),
}

impl<B: Backend> Connection<B> {
    fn new(stream: UnixStream, id: u64, backend: Arc<B>, limits: Limits) -> Self {
        Self {
            id,
            stream,
            backend,
            limits,
            label: "<none>".into(),
            renderer_created: false,
            ctx: None,
            initialized: false,
            poisoned: false,
            resources: HashSet::new(),
            last_res_id: 0,
            syncs: SyncTable::new(),
            warned_multi_batch: false,
            warned_limit: false,
        }
    }

    fn run(&mut self) -> ConnEnd {
        loop {
            match self.step() {
                Ok(true) => {}
                Ok(false) => return ConnEnd::ClientClosed,
                Err(e) => return ConnEnd::Closed(e),
            }
        }
    }

    /// Reads and handles one message. `Ok(false)`: clean EOF.
    fn step(&mut self) -> Result<bool, ConnError> {
        let Some((header, payload)) = self.read_message()? else {
            return Ok(false);
        };
        if !self.renderer_created && header.id != protocol::cmd::CREATE_RENDERER {
            return Err(ConnError::NoRenderer(CommandLabel(header.id)));
        }
        match Request::parse(header, &payload) {
            Ok(req) => {
                trace!(conn = self.id, request = %Summary(&req), "request");
                self.handle(req)?;
            }
            Err(e) => self.poison(&format!("malformed request: {e}")),
        }
        if !self.poisoned && self.ctx.as_ref().is_some_and(|c| c.is_fatal()) {
            self.poison_reported("the renderer reported the context lost");
        }
        Ok(true)
    }

    /// Reads one whole message; `None` on EOF at a message boundary.
    fn read_message(&mut self) -> Result<Option<(Header, Vec<u8>)>, ConnError> {
        let mut hdr = [0u8; HEADER_LEN];
        let got =
            read_full(&mut self.stream, &mut hdr).map_err(ConnError::io("reading a header"))?;
        if got == 0 {
            return Ok(None);
        }
        if got < HEADER_LEN {
            return Err(ConnError::Truncated {
                what: "header",
                got,
                expected: HEADER_LEN,
            });
        }
        let header = Header::parse(&hdr)?;
        let len = header.payload_len()?;
        // Grows as bytes arrive: a client announcing 64 MiB and sending nothing costs nothing.
        let mut payload = Vec::new();
        (&self.stream)
            .take(len as u64)
            .read_to_end(&mut payload)
            .map_err(ConnError::io("reading a payload"))?;
        if payload.len() < len {
            return Err(ConnError::Truncated {
                what: "payload",
                got: payload.len(),
                expected: len,
            });
        }
        Ok(Some((header, payload)))
    }

    fn handle(&mut self, req: Request) -> Result<(), ConnError> {
        match req {
            Request::CreateRenderer { name } => self.create_renderer(&name),
            Request::PingProtocolVersion => self.reply(Response::PingProtocolVersion)?,
            Request::ResourceBusyWait { .. } => {
                // Only used as the ping probe; nothing of ours is ever "busy".
                self.reply(Response::ResourceBusyWait { busy: false })?;
            }
            Request::ProtocolVersion { version } => self.reply(Response::ProtocolVersion {
                version: version.min(protocol::PROTOCOL_VERSION),
            })?,
            Request::GetParam { param } => {
                let value = match param {
                    param::MAX_TIMELINE_COUNT if !self.poisoned => {
                        Some(self.backend.max_timeline_count())
                    }
                    _ => None,
                };
                self.reply(Response::GetParam { value })?;
            }
            Request::GetCapset { id, version } => {
                let capset = if self.poisoned {
                    None
                } else {
                    self.backend.capset(id, version)
                };
                self.reply(Response::GetCapset {
                    capset: capset.as_deref(),
                })?;
            }
            Request::ContextInit { capset_id } => self.context_init(capset_id),
            Request::ResourceCreateBlob {
                blob_type,
                flags,
                size,
                blob_id,
            } => self.create_blob(blob_type, flags, size, blob_id)?,
            Request::ResourceUnref { res_id } => {
                if self.resources.remove(&res_id) {
                    if let Some(ctx) = &mut self.ctx {
                        ctx.unref(res_id);
                    }
                    debug!(conn = self.id, res_id, "resource unref");
                } else {
                    // Mesa unrefs res_id 0 after a failed blob; harmless either way.
                    debug!(
                        conn = self.id,
                        res_id, "unref of an unknown resource ignored"
                    );
                }
            }
            Request::SubmitCmd2 { batches } => self.submit(batches),
            Request::SyncCreate { value } => {
                let sync_id = self.syncs.create(value).unwrap_or_else(|e| {
                    self.poison(&format!("SYNC_CREATE: {e}"));
                    0
                });
                self.reply(Response::SyncCreate { sync_id })?;
            }
            Request::SyncUnref { sync_id } => {
                if let Err(e) = self.syncs.unref(sync_id) {
                    self.poison(&format!("SYNC_UNREF: {e}"));
                }
            }
            Request::SyncRead { sync_id } => {
                let value = self.syncs.read(sync_id).unwrap_or_else(|e| {
                    self.poison(&format!("SYNC_READ: {e}"));
                    0
                });
                self.reply(Response::SyncRead { value })?;
            }
            Request::SyncWrite { sync_id, value } => {
                if let Err(e) = self.syncs.write(sync_id, value) {
                    self.poison(&format!("SYNC_WRITE: {e}"));
                }
            }
            Request::SyncWait {
                flags,
                timeout_ms,
                syncs,
            } => {
                let fd = match self
                    .syncs
                    .wait(syncs, flags & SYNC_WAIT_FLAG_ANY != 0, timeout_ms)
                {
                    Ok(fd) => fd,
                    Err(e) => {
                        self.poison(&format!("SYNC_WAIT: {e}"));
                        signalled_fd().map_err(ConnError::io("creating a SYNC_WAIT fd"))?
                    }
                };
                self.reply(Response::SyncWait)?;
                self.send_fd(Some(fd.as_fd()))?;
            }
            Request::Unknown { id } => {
                let reason = match protocol::command_name(id) {
                    Some(name) => format!("unsupported vtest command {name} ({id})"),
                    None => format!("unknown vtest command {id}"),
                };
                self.poison(&reason);
            }
        }
        Ok(())
    }

    fn create_renderer(&mut self, name: &str) {
        if self.renderer_created {
            self.poison("second CREATE_RENDERER");
            return;
        }
        self.renderer_created = true;
        self.label = sanitize(name);
        let info = ContextInfo {
            conn_id: self.id,
            name,
        };
        match self.backend.create_context(info) {
            Ok(mut ctx) => {
                match self.stream.try_clone() {
                    Ok(peer) => ctx.set_peer_check(Arc::new(move || peer_hung_up(peer.as_fd()))),
                    Err(e) => debug!(conn = self.id, "no peer check (cloning the socket: {e})"),
                }
                self.ctx = Some(ctx);
                info!(conn = self.id, client = %self.label, "context created");
            }
            Err(e) => self.poison(&format!("creating the context failed: {e}")),
        }
    }

    fn context_init(&mut self, capset_id: u32) {
        if self.poisoned {
            return;
        }
        if self.initialized {
            self.poison("second CONTEXT_INIT");
            return;
        }
        let Some(ctx) = &mut self.ctx else {
            return;
        };
        match ctx.init(capset_id) {
            Ok(()) => {
                self.initialized = true;
                debug!(conn = self.id, capset_id, "context initialised");
            }
            Err(e) => self.poison(&format!("CONTEXT_INIT(capset {capset_id}) failed: {e}")),
        }
    }

    fn create_blob(
        &mut self,
        blob_type: u32,
        flags: u32,
        size: u64,
        blob_id: u64,
    ) -> Result<(), ConnError> {
        let result = self.try_create_blob(blob_type, flags, size, blob_id);
        match result {
            Ok((res_id, fd)) => {
                self.reply(Response::ResourceCreateBlob { res_id })?;
                self.send_fd(Some(fd.as_fd()))?;
                debug!(
                    conn = self.id,
                    res_id, blob_type, flags, size, blob_id, "blob created"
                );
            }
            Err(reason) => {
                // One WARN for the first limit refusal: a client looping on a refused blob
                // must not flood the log.
                let first_limit = matches!(reason, Some(Refusal::Limit(_))) && !self.warned_limit;
                match reason {
                    Some(Refusal::Limit(reason)) if !first_limit => debug!(
                        conn = self.id,
                        blob_type,
                        flags,
                        size,
                        blob_id,
                        "RESOURCE_CREATE_BLOB refused (answered res_id 0, no fd): {reason}"
                    ),
                    Some(Refusal::Limit(reason) | Refusal::Other(reason)) => warn!(
                        conn = self.id,
                        client = %self.label,
                        blob_type, flags, size, blob_id,
                        "RESOURCE_CREATE_BLOB failed (answered res_id 0, no fd): {reason}"
                    ),
                    None => {}
                }
                self.warned_limit |= first_limit;
                self.reply(Response::ResourceCreateBlob { res_id: 0 })?;
                self.send_fd(None)?;
            }
        }
        Ok(())
    }

    /// `Err(None)`: fail quietly (already logged as poisoned).
    fn try_create_blob(
        &mut self,
        blob_type: u32,
        flags: u32,
        size: u64,
        blob_id: u64,
    ) -> Result<(u32, OwnedFd), Option<Refusal>> {
        if self.poisoned {
            debug!(
                conn = self.id,
                "RESOURCE_CREATE_BLOB on a lost context: failure answer"
            );
            return Err(None);
        }
        if !self.initialized {
            self.poison("RESOURCE_CREATE_BLOB before CONTEXT_INIT");
            return Err(None);
        }
        if size == 0 {
            return Err(Some(Refusal::Other("size 0".into())));
        }
        self.limits
            .check(Limit::BlobSize, 0, size)
            .and_then(|()| {
                let live = self.resources.len() as u64;
                self.limits.check(Limit::Resources, live, 1)
            })
            .map_err(|e| Some(Refusal::Limit(e.to_string())))?;
        let res_id = self.next_res_id();
        let req = BlobRequest {
            res_id,
            blob_type,
            flags,
            size,
            blob_id,
        };
        let Some(ctx) = &mut self.ctx else {
            return Err(None);
        };
        match ctx.create_blob(&req) {
            Ok(fd) => {
                self.resources.insert(res_id);
                Ok((res_id, fd))
            }
            Err(BackendError::ResourceLimit(e)) => Err(Some(Refusal::Limit(e))),
            Err(e) => Err(Some(Refusal::Other(e.to_string()))),
        }
    }

    fn next_res_id(&mut self) -> u32 {
        // Bounded: fewer than max_resources (< 2^32) ids are live.
        loop {
            self.last_res_id = self.last_res_id.wrapping_add(1);
            if self.last_res_id != 0 && !self.resources.contains(&self.last_res_id) {
                return self.last_res_id;
            }
        }
    }

    fn submit(&mut self, batches: Vec<protocol::Batch>) {
        if self.poisoned {
            // Dropped unexecuted; waits on their syncs are satisfied by the poisoned table.
            debug!(
                conn = self.id,
                batches = batches.len(),
                "SUBMIT_CMD2 on a lost context ignored"
            );
            return;
        }
        if !self.initialized {
            self.poison("SUBMIT_CMD2 before CONTEXT_INIT");
            return;
        }
        if batches.len() > 1 && !self.warned_multi_batch {
            self.warned_multi_batch = true;
            warn!(
                conn = self.id,
                client = %self.label,
                batches = batches.len(),
                "SUBMIT_CMD2 with several batches: parsed with Mesa's 6-dword stride \
                 (virglrenderer's macros use 8; Mesa 25.0.7 never sends this)"
            );
        }
        // Validate everything before executing anything.
        let timelines = self.backend.max_timeline_count();
        if let Some(b) = batches.iter().find(|b| b.ring_idx >= timelines) {
            let reason = format!(
                "SUBMIT_CMD2: ring_idx {} is not below the timeline count {timelines}",
                b.ring_idx
            );
            self.poison(&reason);
            return;
        }
        let mut work: Vec<(u32, Vec<u8>, Completion)> = Vec::with_capacity(batches.len());
        for b in batches {
            match self.syncs.completion(b.syncs) {
                Ok(c) => work.push((b.ring_idx, b.commands, c)),
                Err(e) => {
                    // `work` is dropped first: its completions signal (context is lost).
                    drop(work);
                    self.poison(&format!("SUBMIT_CMD2: {e}"));
                    return;
                }
            }
        }
        let Some(ctx) = &mut self.ctx else {
            return;
        };
        for (ring_idx, commands, completion) in work {
            trace!(conn = self.id, ring_idx, bytes = commands.len(), "submit");
            if let Err(e) = ctx.submit(ring_idx, &commands, completion) {
                self.poison_reported(&format!("submit failed: {e}"));
                return;
            }
        }
    }

    /// Enters the poisoned state (once) — see the module doc, rule 2 — for a reason the
    /// transport found: logged here at WARN.
    fn poison(&mut self, reason: &str) {
        self.enter_poisoned(reason, true);
    }

    /// Same for a loss the backend found (a failed submit, `is_fatal`): the backend logged
    /// the reason at WARN already (see [`ContextBackend::is_fatal`]), so only DEBUG here.
    fn poison_reported(&mut self, reason: &str) {
        self.enter_poisoned(reason, false);
    }

    fn enter_poisoned(&mut self, reason: &str, warn: bool) {
        if self.poisoned {
            debug!(conn = self.id, client = %self.label, "(context already lost) {reason}");
            return;
        }
        self.poisoned = true;
        if warn {
            warn!(
                conn = self.id,
                client = %self.label,
                "context lost: {reason}; rings marked FATAL, further work from this client is \
                 ignored"
            );
        } else {
            debug!(
                conn = self.id,
                client = %self.label,
                "context lost (the backend logged why): {reason}"
            );
        }
        self.syncs.poison();
        if let Some(ctx) = &mut self.ctx {
            ctx.mark_fatal(reason);
        }
    }

    fn reply(&mut self, response: Response<'_>) -> Result<(), ConnError> {
        self.stream
            .write_all(&response.encode())
            .map_err(ConnError::io("writing a response"))
    }

    /// The separate 1-byte message, with `fd` in `SCM_RIGHTS` (or without any fd: the
    /// failure answer).
    fn send_fd(&mut self, fd: Option<BorrowedFd<'_>>) -> Result<(), ConnError> {
        send_byte_with_fd(&self.stream, fd).map_err(ConnError::io("sending an fd"))
    }
}

/// Sends one byte carrying `fd` (if any) as `SCM_RIGHTS`.
pub fn send_byte_with_fd(socket: &UnixStream, fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
    let fds: Vec<BorrowedFd<'_>> = fd.into_iter().collect();
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("control buffer too small for one fd"));
    }
    let byte = [FD_MESSAGE_BYTE];
    loop {
        match sendmsg(
            socket,
            &[IoSlice::new(&byte)],
            &mut control,
            SendFlags::empty(),
        ) {
            Ok(1) => return Ok(()),
            Ok(n) => return Err(io::Error::other(format!("sendmsg sent {n} bytes, not 1"))),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Fills `buf` unless EOF comes first; returns the number of bytes read.
fn read_full(mut r: impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// An fd that already polls readable (the answer to a SYNC_WAIT on a lost context).
fn signalled_fd() -> io::Result<OwnedFd> {
    let n = Notifier::new()?;
    n.notify();
    n.try_clone_readable()
}

/// A client-controlled name made safe for one log line.
fn sanitize(name: &str) -> String {
    let s: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
    if s.is_empty() {
        "<unnamed>".into()
    } else {
        s
    }
}

/// Short request description for trace logs (no command bytes).
struct Summary<'a>(&'a Request);

impl std::fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Request::SubmitCmd2 { batches } => {
                write!(f, "SUBMIT_CMD2 {} batch(es):", batches.len())?;
                for b in batches {
                    write!(
                        f,
                        " [ring_idx {} {} bytes {} syncs]",
                        b.ring_idx,
                        b.commands.len(),
                        b.syncs.len()
                    )?;
                }
                Ok(())
            }
            Request::SyncWait {
                flags,
                timeout_ms,
                syncs,
            } => write!(
                f,
                "SYNC_WAIT flags {flags:#x} timeout {timeout_ms} ms, {} syncs",
                syncs.len()
            ),
            Request::CreateRenderer { name } => write!(f, "CREATE_RENDERER {name:?}"),
            other => write!(f, "{other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_names() {
        assert_eq!(sanitize("vulkaninfo"), "vulkaninfo");
        assert_eq!(sanitize("a\nb\x1b[31m"), "ab[31m");
        assert_eq!(sanitize(""), "<unnamed>");
        assert_eq!(sanitize(&"x".repeat(1000)).len(), 64);
    }

    #[test]
    fn read_full_reports_short_reads() {
        let mut buf = [0u8; 8];
        assert_eq!(read_full(&[1u8, 2, 3][..], &mut buf).unwrap(), 3);
        assert_eq!(read_full(&[][..], &mut buf).unwrap(), 0);
        assert_eq!(read_full(&[9u8; 20][..], &mut buf).unwrap(), 8);
    }
}
