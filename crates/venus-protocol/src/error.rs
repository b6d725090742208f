//! Decode errors: values that say what was wrong and where (command and field path).

use std::fmt;

/// What was wrong with the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("stream ends early: {needed} bytes needed, {left} left")]
    Truncated { needed: usize, left: usize },
    #[error("array count {got} does not match the expected {expected}")]
    CountMismatch { got: u64, expected: u64 },
    #[error("NULL where a value is required")]
    NullRequired,
    #[error("a pointer that must be NULL on the wire (allocation callbacks) is not")]
    MustBeNull,
    #[error("sType {got} where {expected} is required")]
    BadStructureType { got: i32, expected: i32 },
    #[error("sType {s_type} is not allowed in this pNext chain")]
    UnknownChainStruct { s_type: i32 },
    #[error("pNext chain longer than {max} links")]
    ChainTooLong { max: usize },
    #[error("union tag {tag} is out of range")]
    BadUnionTag { tag: u32 },
    #[error("unknown command type {id}")]
    UnknownCommand { id: i32 },
    #[error("command type {id} has no wire encoding at this protocol level")]
    NoWireEncoding { id: i32 },
    #[error("decoded arguments need {requested} more bytes but the arena limit is {limit}")]
    ArenaLimit { requested: usize, limit: usize },
    #[error("a count does not fit in memory")]
    Overflow,
}

const MAX_PATH: usize = 8;

/// A decode failure: its kind, the byte offset where it was detected, and the path of command
/// and field names leading to it (`vkCreateBuffer.pCreateInfo.pQueueFamilyIndices`).
///
/// Boxed, so that `Result`s on the decoding hot path stay one word wide; errors are rare.
#[derive(Clone, PartialEq, Eq)]
pub struct DecodeError(Box<Inner>);

#[derive(Clone, PartialEq, Eq)]
struct Inner {
    kind: ErrorKind,
    offset: Option<usize>,
    /// Innermost first; filled as the error propagates outwards.
    path: [&'static str; MAX_PATH],
    depth: u8,
}

impl DecodeError {
    #[cold]
    pub fn new(kind: ErrorKind, offset: Option<usize>) -> Self {
        DecodeError(Box::new(Inner {
            kind,
            offset,
            path: [""; MAX_PATH],
            depth: 0,
        }))
    }
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }
    /// Byte offset in the decoded buffer where the problem was found, when known.
    pub fn offset(&self) -> Option<usize> {
        self.0.offset
    }
    /// Adds an enclosing field or command name.
    #[must_use]
    #[cold]
    pub fn at(mut self, name: &'static str) -> Self {
        let e = &mut *self.0;
        if (e.depth as usize) < MAX_PATH {
            e.path[e.depth as usize] = name;
            e.depth += 1;
        }
        self
    }
    /// The path from the outermost name (usually the command) to the innermost field.
    pub fn path(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.path[..self.0.depth as usize].iter().rev().copied()
    }
    pub fn bad_union_tag(tag: u32) -> Self {
        Self::new(ErrorKind::BadUnionTag { tag }, None)
    }
    pub fn unknown_chain_struct(s_type: i32) -> Self {
        Self::new(ErrorKind::UnknownChainStruct { s_type }, None)
    }
    pub fn unusable_command(id: i32) -> Self {
        Self::new(ErrorKind::NoWireEncoding { id }, None)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for p in self.path() {
            if !first {
                f.write_str(".")?;
            }
            f.write_str(p)?;
            first = false;
        }
        if !first {
            f.write_str(": ")?;
        }
        write!(f, "{}", self.0.kind)?;
        if let Some(o) = self.0.offset {
            write!(f, " (at byte {o})")?;
        }
        Ok(())
    }
}

impl fmt::Debug for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DecodeError({self})")
    }
}

impl std::error::Error for DecodeError {}
