//! A raw vtest client that speaks the protocol the way Mesa 25.0.7's `vn_renderer_vtest.c`
//! does (contract §2–3): handshake, blobs (with the fd in `SCM_RIGHTS`), `SUBMIT_CMD2`, ping;
//! and [`Mapping`], the client's shared mapping of a blob.

use std::io::{self, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

/// vtest command ids used here.
pub mod cmd {
    pub const RESOURCE_UNREF: u32 = 3;
    pub const RESOURCE_BUSY_WAIT: u32 = 7;
    pub const CREATE_RENDERER: u32 = 8;
    pub const PING_PROTOCOL_VERSION: u32 = 10;
    pub const PROTOCOL_VERSION: u32 = 11;
    pub const GET_PARAM: u32 = 15;
    pub const GET_CAPSET: u32 = 16;
    pub const CONTEXT_INIT: u32 = 17;
    pub const RESOURCE_CREATE_BLOB: u32 = 18;
    pub const SUBMIT_CMD2: u32 = 24;
}

/// A request: header `{dwords, id}` and the dwords.
pub fn request(id: u32, dwords: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + dwords.len() * 4);
    out.extend_from_slice(&(dwords.len() as u32).to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    for w in dwords {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out
}

/// A single-batch `SUBMIT_CMD2` (contract §3.5), no syncs.
pub fn submit_cmd2(ring_idx: u32, commands: &[u8]) -> Vec<u8> {
    let cmd_dwords = commands.len().div_ceil(4);
    let mut dwords = vec![
        1,
        1,
        7,
        cmd_dwords as u32,
        7 + cmd_dwords as u32,
        0,
        ring_idx,
    ];
    let mut padded = commands.to_vec();
    padded.resize(cmd_dwords * 4, 0);
    dwords.extend(
        padded
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
    );
    request(cmd::SUBMIT_CMD2, &dwords)
}

/// One vtest connection.
pub struct Client {
    pub s: UnixStream,
}

impl Client {
    pub fn connect(path: &Path) -> io::Result<Self> {
        let s = UnixStream::connect(path)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Self { s })
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.s.write_all(bytes)
    }

    /// Reads the response to `id` and returns its dwords.
    pub fn response(&mut self, id: u32) -> io::Result<Vec<u32>> {
        let mut h = [0u8; 8];
        self.s.read_exact(&mut h)?;
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let got = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        if got != id {
            return Err(io::Error::other(format!(
                "response to {got}, expected {id}"
            )));
        }
        let mut payload = vec![0u8; len * 4];
        self.s.read_exact(&mut payload)?;
        Ok(payload
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// Contract §3.1 steps 1–6 (as Mesa does them); returns the capset dwords.
    pub fn handshake(&mut self, name: &str) -> io::Result<Vec<u32>> {
        let mut create = Vec::new();
        create.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
        create.extend_from_slice(&cmd::CREATE_RENDERER.to_le_bytes());
        create.extend_from_slice(name.as_bytes());
        create.push(0);
        self.send(&create)?;
        self.send(&request(cmd::PING_PROTOCOL_VERSION, &[]))?;
        self.send(&request(cmd::RESOURCE_BUSY_WAIT, &[0, 0]))?;
        self.response(cmd::PING_PROTOCOL_VERSION)?;
        self.response(cmd::RESOURCE_BUSY_WAIT)?;
        self.send(&request(cmd::PROTOCOL_VERSION, &[3]))?;
        self.response(cmd::PROTOCOL_VERSION)?;
        self.send(&request(cmd::GET_PARAM, &[1]))?;
        self.response(cmd::GET_PARAM)?;
        self.send(&request(cmd::GET_CAPSET, &[4, 0]))?;
        let capset = self.response(cmd::GET_CAPSET)?;
        self.send(&request(cmd::CONTEXT_INIT, &[4]))?;
        Ok(capset)
    }

    /// A round trip: every earlier message has been processed when it returns.
    pub fn ping(&mut self) -> io::Result<()> {
        self.send(&request(cmd::PING_PROTOCOL_VERSION, &[]))?;
        self.response(cmd::PING_PROTOCOL_VERSION).map(drop)
    }

    /// `RESOURCE_CREATE_BLOB` (HOST3D, MAPPABLE, blob_id 0) -> (res_id, fd).
    pub fn create_blob(&mut self, size: u64) -> io::Result<(u32, OwnedFd)> {
        self.create_blob_of(size, 0)
    }

    /// `RESOURCE_CREATE_BLOB` (HOST3D, MAPPABLE) of `blob_id` (0: new shared memory, else a
    /// `VkDeviceMemory` id) -> (res_id, fd).
    pub fn create_blob_of(&mut self, size: u64, blob_id: u64) -> io::Result<(u32, OwnedFd)> {
        let d = [
            2,
            1,
            size as u32,
            (size >> 32) as u32,
            blob_id as u32,
            (blob_id >> 32) as u32,
        ];
        self.send(&request(cmd::RESOURCE_CREATE_BLOB, &d))?;
        let r = self.response(cmd::RESOURCE_CREATE_BLOB)?;
        let res_id = r.first().copied().unwrap_or(0);
        let fd = self.recv_fd()?;
        match fd {
            Some(fd) if res_id != 0 => Ok((res_id, fd)),
            _ => Err(io::Error::other(format!("blob of {size} bytes refused"))),
        }
    }

    fn recv_fd(&mut self) -> io::Result<Option<OwnedFd>> {
        let mut byte = [0u8; 1];
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        recvmsg(
            &self.s,
            &mut [IoSliceMut::new(&mut byte)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )?;
        let mut fds = Vec::new();
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(rights) = msg {
                fds.extend(rights);
            }
        }
        Ok(fds.pop())
    }

    /// `RESOURCE_UNREF` (no answer).
    pub fn unref(&mut self, res_id: u32) -> io::Result<()> {
        self.send(&request(cmd::RESOURCE_UNREF, &[res_id]))
    }

    /// Sends Venus commands on the context stream (ring_idx 0).
    pub fn submit(&mut self, commands: &[u8]) -> io::Result<()> {
        self.send(&submit_cmd2(0, commands))
    }
}

/// The client's shared mapping of a blob, like Mesa's `mmap(fd)`.
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; every access goes through bounds-checked
// methods (atomics for control words, volatile copies for bytes).
unsafe impl Send for Mapping {}

impl Mapping {
    pub fn new(fd: impl AsFd, len: usize) -> io::Result<Self> {
        // SAFETY: a fresh shared mapping of a file the server sized to at least `len` bytes;
        // nothing else in this process uses the range.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
                fd,
                0,
            )
        }?;
        let ptr = NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        Ok(Self { ptr, len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The 4-byte control word at `offset`.
    pub fn word(&self, offset: usize) -> &AtomicU32 {
        assert!(
            offset % 4 == 0 && offset + 4 <= self.len,
            "word {offset} out of bounds"
        );
        // SAFETY: in bounds and aligned (checked; the mapping is page aligned); this memory is
        // only ever accessed atomically through such references, on both sides.
        unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().add(offset).cast()) }
    }

    /// Writes plain bytes the server does not read yet.
    pub fn write(&self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= self.len, "write out of bounds");
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: in bounds (checked); volatile stores into our shared mapping.
            unsafe { self.ptr.as_ptr().add(offset + i).write_volatile(*b) };
        }
    }

    /// Reads `n` bytes at `offset` (a snapshot).
    pub fn read(&self, offset: usize, n: usize) -> Vec<u8> {
        assert!(offset + n <= self.len, "read out of bounds");
        (0..n)
            // SAFETY: in bounds (checked); volatile loads from our shared mapping.
            .map(|i| unsafe { self.ptr.as_ptr().add(offset + i).read_volatile() })
            .collect()
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: our own mapping; no reference into it outlives `self`.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
