//! The seam between the core (contexts, rings, reply streams) and the Vulkan layer.
//!
//! The core decodes every command stream and executes the Venus *transport* commands itself
//! (`vkCreateRingMESA`, `vkSetReplyCommandStreamMESA`, `vkExecuteCommandStreamsMESA`, ... —
//! see `exec`). Every other command goes to the context's [`Dispatch`], with a
//! [`DispatchCx`] that gives access to the reply stream of the channel that decoded the
//! command, the context's resources, a cancellation check for blocking host calls, and the
//! context's fence timelines ([`DispatchCx::bind_timeline`], see [`crate::timeline`]).
//!
//! A [`DispatchFactory`] (process-wide: host instance, proc table, ...) creates one
//! [`Dispatch`] per context (its object tables). The context calls it concurrently from its
//! socket thread and from every ring thread, hence `Send + Sync`; the context drops it after
//! every ring thread has been joined (that is where per-context host objects are destroyed).
//!
//! Error contract: any `Err` from [`Dispatch::dispatch`] is context-fatal (the context's
//! sticky flag is set, every ring gets the FATAL status bit, the client aborts with "ring
//! fatal"). Return errors for invalid client input (unknown ids, ...) and for commands the
//! layer does not implement; failures of the *host* that Vulkan reports as a `VkResult` are
//! not errors: put them in the reply.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use venus_protocol::{command_info, Command, CommandHeader, Encoder, Reply};

use crate::reply::{ReplyError, ReplyStream};
use crate::resources::{BlobParams, ResourceError, ResourceTable};
use crate::shm::SharedMemory;
use crate::timeline::{BindError, TimelineQueue, Timelines};

/// "Is the client gone?" (true = the peer hung up), installed by the transport with
/// [`crate::Context::set_peer_check`] and consulted by [`DispatchCx::is_cancelled`] on the
/// context channel (whose thread, blocked in a dispatch, cannot see EOF itself). Called about
/// ten times a second by a blocking wait: keep it cheap (one `poll` with timeout 0).
pub type PeerCheck = Arc<dyn Fn() -> bool + Send + Sync>;

/// Which dispatch channel decoded a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// A `SUBMIT_CMD2` context stream (decoded on the connection's thread).
    Context,
    /// A ring (decoded on the ring's thread).
    Ring {
        /// The client's ring id (`vkCreateRingMESA::ring`).
        id: u64,
        /// Creation order of the ring within its context (0, 1, ...; the `n` of the thread
        /// name `venus-ring-<ctx>-<n>`).
        index: u32,
    },
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Channel::Context => f.write_str("context stream"),
            Channel::Ring { id, index } => write!(f, "ring {index} (id {id:#x})"),
        }
    }
}

/// Who a context belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextInfo {
    /// The transport's connection number (unique for the process lifetime).
    pub id: u64,
    /// The client's name (client-controlled: log it with `{:?}`).
    pub name: String,
}

/// A dispatch failure. Always context-fatal (see the module doc).
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The dispatch layer does not implement this command.
    #[error("unsupported command {0}")]
    Unsupported(&'static str),
    /// The command is invalid (unknown object id, wrong object type, ...).
    #[error("{command}: {reason}")]
    Invalid {
        /// The command's name.
        command: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The reply could not be written (no stream, overflow).
    #[error("writing the reply of {command}: {source}")]
    Reply {
        /// The command's name.
        command: &'static str,
        /// The reply-stream violation.
        #[source]
        source: ReplyError,
    },
    /// The dispatch layer misbehaved (a second reply, a reply of the wrong command, no reply
    /// where one was requested): a bug on our side, still only fatal to this context.
    #[error("{command}: dispatch bug: {reason}")]
    Internal {
        /// The command's name.
        command: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// A resource problem (e.g. exporting device memory).
    #[error(transparent)]
    Resource(#[from] ResourceError),
    /// The context was lost or is being destroyed, or its client disconnected, while the
    /// command ran (e.g. a blocking wait gave up because [`DispatchCx::is_cancelled`] turned
    /// true).
    #[error("cancelled: the context is lost or being destroyed, or the client is gone")]
    Cancelled,
}

/// The name of a command id (for messages), or `"<unknown command>"`.
pub fn command_name(header: &CommandHeader) -> &'static str {
    command_info(header.command_type.0).map_or("<unknown command>", |i| i.name)
}

/// What a [`Dispatch`] gets besides the command: the channel, the reply stream, the context's
/// resources and cancellation.
pub struct DispatchCx<'a> {
    pub(crate) context_id: u64,
    pub(crate) channel: Channel,
    pub(crate) header: CommandHeader,
    pub(crate) reply: &'a mut ReplyStream,
    pub(crate) encoder: &'a mut Encoder,
    pub(crate) resources: &'a ResourceTable,
    pub(crate) context_lost: &'a AtomicBool,
    pub(crate) channel_stopping: Option<&'a AtomicBool>,
    /// The transport's hang-up check (context channel only).
    pub(crate) peer_gone: Option<&'a (dyn Fn() -> bool + Send + Sync)>,
    pub(crate) timelines: &'a Timelines,
    pub(crate) replied: bool,
}

impl fmt::Debug for DispatchCx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DispatchCx")
            .field("context_id", &self.context_id)
            .field("channel", &self.channel)
            .field("header", &self.header)
            .field("replied", &self.replied)
            .finish_non_exhaustive()
    }
}

impl<'a> DispatchCx<'a> {
    /// The context's id ([`ContextInfo::id`]).
    pub fn context_id(&self) -> u64 {
        self.context_id
    }

    /// The channel that decoded the command.
    pub fn channel(&self) -> Channel {
        self.channel
    }

    /// Whether the client asked for a reply (GENERATE_REPLY bit).
    pub fn wants_reply(&self) -> bool {
        self.header.wants_reply()
    }

    /// Encodes `reply` into the channel's reply stream at its current position and advances
    /// it. A no-op when the client did not ask for a reply (so handlers may call it
    /// unconditionally; check [`DispatchCx::wants_reply`] first to skip building it).
    ///
    /// Errors (all fatal): no reply stream, the reply does not fit (nothing is written then),
    /// a second reply for the same command, or a reply of another command.
    pub fn reply(&mut self, reply: &Reply<'_>) -> Result<(), DispatchError> {
        if reply.command_type() != self.header.command_type {
            let other = command_info(reply.command_type().0).map_or("<unknown>", |i| i.name);
            return Err(self.internal(format!("replied with the reply of {other}")));
        }
        self.reply_with(|e| reply.encode(e))
    }

    /// Like [`DispatchCx::reply`], with the encoding done by `encode` (it must write the whole
    /// reply, echoed command type first).
    pub fn reply_with(&mut self, encode: impl FnOnce(&mut Encoder)) -> Result<(), DispatchError> {
        if !self.wants_reply() {
            return Ok(());
        }
        if self.replied {
            return Err(self.internal("a second reply for one command".into()));
        }
        self.encoder.clear();
        encode(self.encoder);
        self.reply
            .write(self.encoder.as_bytes())
            .map_err(|source| DispatchError::Reply {
                command: command_name(&self.header),
                source,
            })?;
        self.replied = true;
        Ok(())
    }

    /// The context's resources (e.g. [`ResourceTable::get`] to find a blob's memory).
    pub fn resources(&self) -> &ResourceTable {
        self.resources
    }

    /// The context's limits (see [`crate::limits`]).
    pub fn limits(&self) -> &crate::limits::Limits {
        self.resources.budget().limits()
    }

    /// The memory of resource `res_id` (any kind).
    pub fn resource_memory(&self, res_id: u32) -> Result<Arc<SharedMemory>, DispatchError> {
        Ok(self.resources.get(res_id)?.shm)
    }

    /// Whether the context is lost, this channel is being destroyed, or (context channel)
    /// the client disconnected: a blocking host wait (`vkWaitForFences` with a long timeout,
    /// ...) must check it at least every ~100 ms and give up with
    /// [`DispatchError::Cancelled`]. A dispatch that does not is detached by the context
    /// teardown after [`crate::TEARDOWN_BOUND`] (with an ERROR line).
    pub fn is_cancelled(&self) -> bool {
        self.context_lost.load(Ordering::Acquire)
            || self
                .channel_stopping
                .is_some_and(|s| s.load(Ordering::Acquire))
            || self.peer_gone.is_some_and(|gone| gone())
    }

    /// Binds `queue` to fence timeline `ring_idx` (`vkGetDeviceQueue2` with
    /// `VkDeviceQueueTimelineInfoMESA`, contract §5.3): later `SUBMIT_CMD2` batches on
    /// `ring_idx` complete when the queue's work submitted before them has finished (see
    /// [`crate::timeline`]). Errors: `ring_idx` 0 or not below
    /// [`crate::capset::MAX_TIMELINE_COUNT`], already bound ([`DispatchError::Invalid`]);
    /// the context is being destroyed ([`DispatchError::Cancelled`]).
    pub fn bind_timeline(
        &mut self,
        ring_idx: u32,
        queue: Arc<dyn TimelineQueue>,
    ) -> Result<(), DispatchError> {
        self.timelines.bind(ring_idx, queue).map_err(|e| match e {
            BindError::Closed => DispatchError::Cancelled,
            e => self.invalid(e.to_string()),
        })
    }

    /// Unbinds fence timeline `ring_idx` (no-op if unbound; call it before destroying the
    /// queue's device): its retire thread stops (joined for at most
    /// [`crate::TEARDOWN_BOUND`]; markers it held are dropped on it) and the batches still
    /// pending on it complete with [`crate::Completed::Lost`].
    pub fn unbind_timeline(&mut self, ring_idx: u32) {
        self.timelines.unbind(ring_idx);
    }

    fn invalid(&self, reason: String) -> DispatchError {
        DispatchError::Invalid {
            command: command_name(&self.header),
            reason,
        }
    }

    fn internal(&self, reason: String) -> DispatchError {
        DispatchError::Internal {
            command: command_name(&self.header),
            reason,
        }
    }
}

/// Executes one decoded non-transport command (see the module doc).
pub trait Dispatch: Send + Sync {
    /// Executes `cmd`; writes its reply through [`DispatchCx::reply`] when
    /// [`DispatchCx::wants_reply`]. The core checks afterwards that a requested reply was
    /// written. `header` is the command's header (the same as `cx`'s).
    fn dispatch(
        &self,
        cx: &mut DispatchCx<'_>,
        header: &CommandHeader,
        cmd: &Command<'_>,
    ) -> Result<(), DispatchError>;

    /// `RESOURCE_CREATE_BLOB` with `blob_id != 0`: the memory backing `VkDeviceMemory`
    /// `req.blob_id` (at least `req.size` bytes, mappable at offset 0). The dispatch layer
    /// keeps its own reference for as long as the `VkDeviceMemory` lives (contract §7.4).
    /// Default: unsupported.
    fn export_blob(&self, req: &BlobParams) -> Result<Arc<SharedMemory>, DispatchError> {
        let _ = req;
        Err(DispatchError::Unsupported(
            "RESOURCE_CREATE_BLOB of device memory (no Vulkan dispatch layer)",
        ))
    }
}

/// Creates the per-context [`Dispatch`] (see the module doc).
pub trait DispatchFactory: Send + Sync + 'static {
    /// A new dispatch for a new context.
    fn create_dispatch(&self, info: &ContextInfo) -> Result<Arc<dyn Dispatch>, DispatchError>;
}
