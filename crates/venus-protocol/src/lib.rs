//! The Venus wire protocol at level git-ca1e9220 (wire format 1, vk.xml 1.3.269,
//! VK_EXT_command_serialization 1, VK_MESA_venus_protocol 2).
//!
//! This crate owns bytes <-> typed values and nothing else: no I/O, no host calls, no `unsafe`.
//! - [`wire`]: the handwritten runtime (arena, [`Decoder`], [`Encoder`], [`Id`], [`Str`], chains);
//! - [`generated`]: code produced by `cargo xtask codegen` from `protocol/` (do not edit);
//! - [`format`](mod@format): texel blocks of `VkFormat`s over the generated format table;
//! - this module: the entry points for whole commands and replies.
//!
//! Decoding never panics and never trusts a count: every length is checked against the bytes
//! left and the arena limit before anything is allocated; errors are [`DecodeError`] values
//! naming the command and field.

#![forbid(unsafe_code)]

pub mod error;
pub mod format;
#[rustfmt::skip]
#[allow(clippy::all, clippy::pedantic, unused_parens)]
pub mod generated;
#[cfg(feature = "random")]
pub mod random;
pub mod wire;

pub use error::{DecodeError, ErrorKind};
pub use generated::commands::{Command, CommandInfo, CommandType, Reply, COMMANDS};
pub use generated::{commands, handles, structs, types};
pub use wire::{Arena, Chain, ChainNode, Decoder, Encoder, Handle, Id, Str};

/// Bit 0 of the command flags: the guest wants a reply.
pub const COMMAND_GENERATE_REPLY: u32 = 1;

/// The 8-byte header in front of every command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandHeader {
    pub command_type: CommandType,
    pub flags: u32,
}

impl CommandHeader {
    pub fn wants_reply(&self) -> bool {
        self.flags & COMMAND_GENERATE_REPLY != 0
    }
    /// The protocol's facts about this command id (`None` if unknown at this level).
    pub fn info(&self) -> Option<&'static CommandInfo> {
        command_info(self.command_type.0)
    }
}

/// The table entry of a command id, if the id is known at this protocol level.
pub fn command_info(id: i32) -> Option<&'static CommandInfo> {
    usize::try_from(id)
        .ok()
        .and_then(|i| COMMANDS.get(i))
        .and_then(Option::as_ref)
}

/// Decodes one command (header and arguments) from the decoder's position.
pub fn decode_command<'a>(
    d: &mut Decoder<'a>,
) -> Result<(CommandHeader, Command<'a>), DecodeError> {
    let start = d.position();
    let id = d.i32()?;
    let flags = d.u32()?;
    let info = command_info(id)
        .ok_or_else(|| DecodeError::new(ErrorKind::UnknownCommand { id }, Some(start)))?;
    if info.encoding.is_err() {
        return Err(DecodeError::new(ErrorKind::NoWireEncoding { id }, Some(start)).at(info.name));
    }
    let header = CommandHeader {
        command_type: CommandType(id),
        flags,
    };
    let cmd = Command::decode_args(header.command_type, d)?;
    Ok((header, cmd))
}

/// Encodes one command with its header.
pub fn encode_command(e: &mut Encoder, cmd: &Command<'_>, flags: u32) {
    e.i32(cmd.command_type().0);
    e.u32(flags);
    cmd.encode_args(e);
}

/// Decodes one reply (echoed command type and body).
pub fn decode_reply<'a>(d: &mut Decoder<'a>) -> Result<Reply<'a>, DecodeError> {
    let start = d.position();
    let id = d.i32()?;
    let info = command_info(id)
        .ok_or_else(|| DecodeError::new(ErrorKind::UnknownCommand { id }, Some(start)))?;
    if info.encoding.is_err() {
        return Err(DecodeError::new(ErrorKind::NoWireEncoding { id }, Some(start)).at(info.name));
    }
    Reply::decode_body(CommandType(id), d)
}
