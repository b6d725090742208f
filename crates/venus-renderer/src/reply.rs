//! The reply stream of one dispatch channel (the context itself, or one ring).
//!
//! The client picks a window of a `blob_id` 0 resource with `vkSetReplyCommandStreamMESA`
//! (position 0), may move the position with `vkSeekReplyCommandStreamMESA` or through
//! `vkExecuteCommandStreamsMESA`'s `pReplyPositions`, and then reads one reply per command it
//! sent with the GENERATE_REPLY bit, at the positions it expects (contract §4.7, wire format §3
//! and §14). Every bound is checked here; any violation is a [`ReplyError`], which the caller
//! treats as context-fatal:
//! - the window must lie inside the resource;
//! - a seek must stay within `[0, size]`;
//! - a reply must fit in `[position, size)`; it is written whole or not at all.
//!
//! The window holds a [`Region`] (an `Arc` of the memory), so an unref of the resource while it
//! is the reply stream cannot pull the memory from under us.
//!
//! Ordering: bytes are written with relaxed atomics ([`Region::write_from`]); the ring thread
//! publishes them with its release store of `head` after the command, which is what the client
//! acquires before reading the reply.

use std::sync::Arc;

use crate::shm::{Region, SharedMemory};

/// A reply-stream violation (context-fatal).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// A reply was requested but `vkSetReplyCommandStreamMESA` never set a stream.
    #[error("a reply was requested but no reply stream is set")]
    NotSet,
    /// `vkSetReplyCommandStreamMESA` named a window outside its resource.
    #[error(
        "reply stream window [{offset}, {offset} + {size}) is outside resource {res_id} \
         ({len} bytes)"
    )]
    OutsideResource {
        /// The resource.
        res_id: u32,
        /// Requested offset.
        offset: u64,
        /// Requested size.
        size: u64,
        /// Size of the resource.
        len: u64,
    },
    /// `vkSeekReplyCommandStreamMESA` (or a reply position) past the end of the window.
    #[error("reply stream seek to {position} is past its end ({size} bytes)")]
    SeekOutOfRange {
        /// Requested position.
        position: u64,
        /// Size of the window.
        size: u64,
    },
    /// A reply that does not fit in the rest of the window.
    #[error(
        "a reply of {len} bytes at position {position} overflows the reply stream \
         ({size} bytes)"
    )]
    Overflow {
        /// Encoded size of the reply.
        len: u64,
        /// Current position.
        position: u64,
        /// Size of the window.
        size: u64,
    },
}

/// One channel's reply stream: an optional window and a write position.
#[derive(Debug, Default)]
pub struct ReplyStream {
    window: Option<Region>,
    position: u64,
}

impl ReplyStream {
    /// No stream set.
    pub fn new() -> Self {
        Self::default()
    }

    /// `vkSetReplyCommandStreamMESA`: the window `[offset, offset + size)` of `shm` (resource
    /// `res_id`, for the error message), position 0.
    pub fn set(
        &mut self,
        res_id: u32,
        shm: &Arc<SharedMemory>,
        offset: u64,
        size: u64,
    ) -> Result<(), ReplyError> {
        let region = shm
            .region(offset, size)
            .map_err(|_| ReplyError::OutsideResource {
                res_id,
                offset,
                size,
                len: shm.len(),
            })?;
        self.window = Some(region);
        self.position = 0;
        Ok(())
    }

    /// `vkSeekReplyCommandStreamMESA`: moves the position to `position <= size`.
    pub fn seek(&mut self, position: u64) -> Result<(), ReplyError> {
        let size = self.window.as_ref().map_or(0, Region::len);
        if self.window.is_none() || position > size {
            return Err(ReplyError::SeekOutOfRange { position, size });
        }
        self.position = position;
        Ok(())
    }

    /// Writes `bytes` (one encoded reply) at the position and advances past it.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), ReplyError> {
        let Some(window) = &self.window else {
            return Err(ReplyError::NotSet);
        };
        let len = bytes.len() as u64;
        let size = window.len();
        let overflow = ReplyError::Overflow {
            len,
            position: self.position,
            size,
        };
        match self.position.checked_add(len) {
            Some(end) if end <= size => {
                window
                    .write_from(self.position, bytes)
                    .map_err(|_| overflow)?;
                self.position = end;
                Ok(())
            }
            _ => Err(overflow),
        }
    }

    /// The current position (bytes from the start of the window).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The window, if one is set.
    pub fn window(&self) -> Option<&Region> {
        self.window.as_ref()
    }

    /// Forgets the window (releases its memory reference).
    pub fn clear(&mut self) {
        self.window = None;
        self.position = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_seek_write() {
        let shm = Arc::new(SharedMemory::new(4096).unwrap());
        let mut r = ReplyStream::new();
        assert_eq!(r.write(b"x"), Err(ReplyError::NotSet));
        assert!(matches!(r.seek(0), Err(ReplyError::SeekOutOfRange { .. })));
        assert!(matches!(
            r.set(3, &shm, 4000, 200),
            Err(ReplyError::OutsideResource { res_id: 3, .. })
        ));
        assert!(r.set(3, &shm, u64::MAX, 2).is_err());
        r.set(3, &shm, 1000, 16).unwrap();
        r.write(b"12345678").unwrap();
        assert_eq!(r.position(), 8);
        r.write(b"abcd").unwrap();
        let e = r.write(b"too long").unwrap_err();
        assert_eq!(
            e,
            ReplyError::Overflow {
                len: 8,
                position: 12,
                size: 16
            }
        );
        // Nothing of the failed reply was written.
        let mut b = [0u8; 20];
        shm.read_into(1000, &mut b).unwrap();
        assert_eq!(&b[..16], b"12345678abcd\0\0\0\0");
        assert_eq!(&b[16..], &[0; 4]);
        r.seek(16).unwrap();
        assert!(r.write(b"").is_ok());
        assert!(r.write(b"x").is_err());
        assert!(matches!(r.seek(17), Err(ReplyError::SeekOutOfRange { .. })));
        r.seek(2).unwrap();
        r.write(b"ZZ").unwrap();
        shm.read_into(1000, &mut b[..6]).unwrap();
        assert_eq!(&b[..6], b"12ZZ56");
        // Setting again resets the position; unaligned windows work.
        r.set(3, &shm, 4093, 3).unwrap();
        r.write(b"end").unwrap();
        assert_eq!(r.position(), 3);
        r.clear();
        assert!(r.window().is_none());
    }
}
