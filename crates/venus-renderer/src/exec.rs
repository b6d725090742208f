//! Command-stream execution, shared by the context channel and every ring.
//!
//! An [`Executor`] belongs to one channel (the context, or one ring) and owns that channel's
//! decoding arenas, reply stream and reply encoder. [`Executor::run`] decodes a private copy of
//! guest bytes one command at a time (resetting the arena after each command) and:
//!
//! - executes the transport commands every channel accepts:
//!   `vkSetReplyCommandStreamMESA`, `vkSeekReplyCommandStreamMESA` (this channel's reply
//!   stream) and `vkExecuteCommandStreamsMESA` (each stream is **copied** out of its shared
//!   memory into a private buffer, then decoded nested, one level only, after seeking the reply
//!   stream to `pReplyPositions[i]` when given; wire format §15, contract §4.5);
//! - hands the channel-specific transport commands to the [`ChannelHost`] (ring management on
//!   the context; `vkWaitVirtqueueSeqnoMESA` on a ring). One the host refuses is fatal: like
//!   virglrenderer we are strict about which channel may send what (contract §4.6);
//! - gives every other command to the context's [`crate::Dispatch`], then checks that a
//!   requested reply was written;
//! - after each *top-level* command, calls [`ChannelHost::command_done`] (where a ring
//!   publishes its new head).
//!
//! Transport commands sent with the GENERATE_REPLY bit get their (body-less) reply, as the
//! reference's generated dispatch does.
//!
//! Recording (`crate::record`): when the context records, each top-level command is recorded
//! as it completes (bytes, the replies it wrote, outcome), indirect streams as they are copied,
//! and device-memory blobs are snapshotted before a queue submission. Replay turns on the same
//! reply capture ([`Executor::capture_replies`]) to compare.
//!
//! Any error is an [`ExecError`]: `Fatal` (with a message naming the channel and command) makes
//! the context lost; `Stopped` means the channel is being destroyed (not an error).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tracing::{debug, trace};
use venus_protocol::commands::ExecuteCommandStreamsMESAArgs;
use venus_protocol::structs::CommandStreamDescriptionMESA;
use venus_protocol::{decode_command, Arena, Command, CommandHeader, Decoder, Encoder};

use crate::context::ContextShared;
use crate::dispatch::{command_name, Channel, DispatchCx, DispatchError};
use crate::record::SNAPSHOT_BEFORE;
use crate::reply::ReplyStream;

/// Largest indirect command stream (`vkExecuteCommandStreamsMESA`) we copy: 256 MiB. Mesa's
/// command pool is 8 MiB and grows only for very large command buffers; the cap keeps a
/// hostile size from making us allocate arbitrary amounts of private memory.
pub const MAX_INDIRECT_STREAM_SIZE: u64 = 256 << 20;

/// An indirect-stream buffer larger than this is freed after use instead of kept for reuse.
const KEEP_NESTED_BUFFER: usize = 16 << 20;

/// Why execution stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExecError {
    /// The context is lost (this message says why, if this channel found the problem).
    Fatal(String),
    /// The channel is being destroyed; stop quietly.
    Stopped,
}

impl ExecError {
    pub(crate) fn fatal(msg: impl Into<String>) -> Self {
        Self::Fatal(msg.into())
    }
}

/// The channel-specific side of execution (see the module doc).
pub(crate) trait ChannelHost {
    /// Executes a channel-specific transport command (ring management, seqno waits).
    /// `Ok(false)`: this channel does not accept it (fatal).
    fn transport(&mut self, cmd: &Command<'_>) -> Result<bool, ExecError>;

    /// The top-level command that ends at byte `end` of the stream passed to
    /// [`Executor::run`] is complete (its reply, if any, is written).
    fn command_done(&mut self, end: usize) {
        let _ = end;
    }

    /// The channel's "being destroyed" flag, for [`DispatchCx::is_cancelled`].
    fn stopping(&self) -> Option<&AtomicBool> {
        None
    }
}

/// Private buffer and arena for one level of `vkExecuteCommandStreamsMESA`.
#[derive(Default)]
struct Nested {
    arena: Arena,
    buf: Vec<u8>,
}

/// Per-channel state that commands act on.
struct ExecState {
    ctx: Arc<ContextShared>,
    channel: Channel,
    reply: ReplyStream,
    encoder: Encoder,
    /// The replies of the current top-level command (`u32` length + bytes each), when
    /// recording or replaying.
    capture: Option<Vec<u8>>,
}

/// One channel's executor (see the module doc).
pub(crate) struct Executor {
    state: ExecState,
    arena: Arena,
    nested: Nested,
}

impl Executor {
    pub(crate) fn new(ctx: Arc<ContextShared>, channel: Channel) -> Self {
        Self {
            state: ExecState {
                capture: ctx.recorder.is_some().then(Vec::new),
                ctx,
                channel,
                reply: ReplyStream::new(),
                encoder: Encoder::new(),
            },
            arena: Arena::new(),
            nested: Nested::default(),
        }
    }

    /// Keeps the replies of each top-level command ([`Executor::take_replies`]).
    pub(crate) fn capture_replies(&mut self) {
        self.state.capture.get_or_insert_with(Vec::new);
    }

    /// The replies the last top-level command wrote (`u32` length + bytes each; empty unless
    /// capturing).
    pub(crate) fn take_replies(&mut self) -> Vec<u8> {
        self.state
            .capture
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Decodes and executes every command of `bytes` (a private copy), see the module doc.
    pub(crate) fn run(
        &mut self,
        bytes: &[u8],
        host: &mut dyn ChannelHost,
    ) -> Result<(), ExecError> {
        let mut pos = 0;
        while pos < bytes.len() {
            self.state.check_alive()?;
            if let Some(c) = self.state.capture.as_mut() {
                c.clear();
            }
            let result = {
                let rest = bytes.get(pos..).unwrap_or_default();
                let mut d = Decoder::new(rest, &self.arena);
                match decode_command(&mut d) {
                    Ok((header, cmd)) => {
                        let len = d.position();
                        self.state
                            .execute(&header, &cmd, host, Some(&mut self.nested))
                            .map(|()| len)
                    }
                    Err(e) => Err(self.state.fatal(format!(
                        "undecodable command at byte {pos} of a {}-byte batch: {e}",
                        bytes.len()
                    ))),
                }
            };
            self.arena.reset();
            if let Some(rec) = &self.state.ctx.recorder {
                let replies = self.state.capture.as_deref().unwrap_or_default();
                let rest = bytes.get(pos..).unwrap_or_default();
                match &result {
                    Ok(len) => rec.command(
                        self.state.channel,
                        rest.get(..*len).unwrap_or(rest),
                        replies,
                        None,
                    ),
                    Err(ExecError::Fatal(m)) => {
                        rec.command(self.state.channel, rest, replies, Some(m))
                    }
                    Err(ExecError::Stopped) => {}
                }
            }
            pos += result?;
            host.command_done(pos);
        }
        Ok(())
    }
}

impl ExecState {
    fn fatal(&self, msg: impl std::fmt::Display) -> ExecError {
        ExecError::Fatal(format!("{}: {msg}", self.channel))
    }

    fn check_alive(&self) -> Result<(), ExecError> {
        if self.ctx.is_lost() {
            return Err(ExecError::Fatal(format!(
                "{}: stopped because the context is lost",
                self.channel
            )));
        }
        Ok(())
    }

    /// Executes one decoded command; `nested` is `None` inside `vkExecuteCommandStreamsMESA`.
    fn execute(
        &mut self,
        header: &CommandHeader,
        cmd: &Command<'_>,
        host: &mut dyn ChannelHost,
        nested: Option<&mut Nested>,
    ) -> Result<(), ExecError> {
        let name = command_name(header);
        trace!(
            ctx = self.ctx.info.id,
            channel = %self.channel,
            command = name,
            flags = header.flags,
            nested = nested.is_none(),
            "execute"
        );
        match cmd {
            Command::SetReplyCommandStreamMESA(a) => {
                let s = a.p_stream;
                let shm = self
                    .ctx
                    .resources
                    .shmem(s.resource_id)
                    .map_err(|e| self.fatal(format!("{name}: {e}")))?;
                self.reply
                    .set(s.resource_id, &shm, s.offset, s.size)
                    .map_err(|e| self.fatal(format!("{name}: {e}")))?;
            }
            Command::SeekReplyCommandStreamMESA(a) => {
                self.reply
                    .seek(a.position)
                    .map_err(|e| self.fatal(format!("{name}: {e}")))?;
            }
            Command::ExecuteCommandStreamsMESA(a) => {
                let Some(nested) = nested else {
                    return Err(self.fatal(format!(
                        "{name} inside an indirect command stream (nesting is not allowed)"
                    )));
                };
                self.execute_streams(a, host, nested)?;
            }
            Command::CreateRingMESA(_)
            | Command::DestroyRingMESA(_)
            | Command::NotifyRingMESA(_)
            | Command::WriteRingExtraMESA(_)
            | Command::SubmitVirtqueueSeqnoMESA(_)
            | Command::WaitVirtqueueSeqnoMESA(_)
            | Command::WaitRingSeqnoMESA(_) => {
                if !host.transport(cmd)? {
                    return Err(self.fatal(format!("{name} is not allowed on this channel")));
                }
            }
            _ => return self.dispatch(header, cmd, host),
        }
        if header.wants_reply() {
            // The reply of a transport command is just the echoed command type.
            self.encoder.clear();
            self.encoder.i32(header.command_type.0);
            self.reply
                .write(self.encoder.as_bytes())
                .map_err(|e| self.fatal(format!("{name}: {e}")))?;
            self.capture_reply();
        }
        Ok(())
    }

    /// Appends the reply in the encoder to the capture (recording, replay).
    fn capture_reply(&mut self) {
        if let Some(c) = self.capture.as_mut() {
            let r = self.encoder.as_bytes();
            c.extend_from_slice(&(r.len() as u32).to_le_bytes());
            c.extend_from_slice(r);
        }
    }

    fn dispatch(
        &mut self,
        header: &CommandHeader,
        cmd: &Command<'_>,
        host: &mut dyn ChannelHost,
    ) -> Result<(), ExecError> {
        let ctx = &*self.ctx;
        let Some(dispatch) = ctx.dispatch() else {
            // The context is being destroyed (a thread that outlived the teardown bound).
            return Err(ExecError::Stopped);
        };
        let stopping = host.stopping();
        let peer = match self.channel {
            Channel::Context => ctx.peer_check(),
            Channel::Ring { .. } => None,
        };
        if let Some(rec) = &ctx.recorder {
            if SNAPSHOT_BEFORE.contains(&header.command_type) {
                rec.snapshot(&ctx.resources);
            }
        }
        let mut cx = DispatchCx {
            context_id: ctx.info.id,
            channel: self.channel,
            header: *header,
            reply: &mut self.reply,
            encoder: &mut self.encoder,
            resources: &ctx.resources,
            context_lost: ctx.lost_flag(),
            channel_stopping: stopping,
            peer_gone: peer.as_deref(),
            timelines: &ctx.timelines,
            replied: false,
        };
        let result = dispatch.dispatch(&mut cx, header, cmd);
        let replied = cx.replied;
        match result {
            Ok(()) => {}
            Err(DispatchError::Cancelled)
                if stopping.is_some_and(|s| s.load(std::sync::atomic::Ordering::Acquire)) =>
            {
                return Err(ExecError::Stopped);
            }
            Err(e) => return Err(self.fatal(e)),
        }
        if header.wants_reply() && !replied {
            return Err(self.fatal(format!(
                "{}: dispatch bug: the requested reply was not written",
                command_name(header)
            )));
        }
        if replied {
            self.capture_reply();
        }
        Ok(())
    }

    fn execute_streams(
        &mut self,
        args: &ExecuteCommandStreamsMESAArgs<'_>,
        host: &mut dyn ChannelHost,
        nested: &mut Nested,
    ) -> Result<(), ExecError> {
        const NAME: &str = "vkExecuteCommandStreamsMESA";
        if args.p_streams.is_empty() {
            return Err(self.fatal(format!("{NAME} with streamCount 0")));
        }
        if !args.p_dependencies.is_empty() {
            // Streams execute in order anyway; dependencies cannot be violated.
            debug!(
                channel = %self.channel,
                count = args.p_dependencies.len(),
                "{NAME}: dependencies ignored (streams run in order)"
            );
        }
        for (i, stream) in args.p_streams.iter().enumerate() {
            if let Some(&position) = args.p_reply_positions.get(i) {
                self.reply
                    .seek(position)
                    .map_err(|e| self.fatal(format!("{NAME} stream {i}: {e}")))?;
            }
            if stream.size == 0 {
                continue;
            }
            self.copy_stream(i, stream, &mut nested.buf)?;
            if let Some(rec) = &self.ctx.recorder {
                rec.memory(stream.resource_id, stream.offset, &nested.buf);
            }
            let mut pos = 0;
            while pos < nested.buf.len() {
                self.check_alive()?;
                let result = {
                    let rest = nested.buf.get(pos..).unwrap_or_default();
                    let mut d = Decoder::new(rest, &nested.arena);
                    match decode_command(&mut d) {
                        Ok((header, cmd)) => {
                            let len = d.position();
                            self.execute(&header, &cmd, host, None).map(|()| len)
                        }
                        Err(e) => Err(self.fatal(format!(
                            "{NAME} stream {i} (resource {}, offset {}, {} bytes): undecodable \
                             command at byte {pos}: {e}",
                            stream.resource_id, stream.offset, stream.size
                        ))),
                    }
                };
                nested.arena.reset();
                pos += result?;
            }
        }
        if nested.buf.capacity() > KEEP_NESTED_BUFFER {
            nested.buf = Vec::new();
        }
        Ok(())
    }

    /// Copies stream `i` out of its shared memory into `buf` (private memory, read once).
    fn copy_stream(
        &self,
        i: usize,
        stream: &CommandStreamDescriptionMESA,
        buf: &mut Vec<u8>,
    ) -> Result<(), ExecError> {
        let what = || {
            format!(
                "vkExecuteCommandStreamsMESA stream {i} (resource {}, offset {}, {} bytes)",
                stream.resource_id, stream.offset, stream.size
            )
        };
        if stream.size > MAX_INDIRECT_STREAM_SIZE {
            return Err(self.fatal(format!(
                "{}: larger than the {MAX_INDIRECT_STREAM_SIZE}-byte limit",
                what()
            )));
        }
        let shm = self
            .ctx
            .resources
            .shmem(stream.resource_id)
            .map_err(|e| self.fatal(format!("{}: {e}", what())))?;
        match stream.offset.checked_add(stream.size) {
            Some(end) if end <= shm.len() => {}
            _ => {
                return Err(self.fatal(format!(
                    "{}: outside the resource ({} bytes)",
                    what(),
                    shm.len()
                )))
            }
        }
        let len = usize::try_from(stream.size)
            .map_err(|_| self.fatal(format!("{}: too large", what())))?;
        buf.clear();
        buf.resize(len, 0);
        shm.read_into(stream.offset, buf)
            .map_err(|e| self.fatal(format!("{}: {e}", what())))
    }
}
