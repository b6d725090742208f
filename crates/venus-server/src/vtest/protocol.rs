//! The vtest wire protocol (virglrenderer's `vtest_protocol.h`, protocol version 3, as spoken
//! by Mesa 25.0.7 venus): constants, typed request parsing and response encoding.
//!
//! Pure functions, no I/O. Parsing never panics and never trusts a length: every count and
//! offset is checked against the payload before anything is allocated, and every allocation is
//! bounded by the payload size (itself capped by [`MAX_PAYLOAD_BYTES`]).
//!
//! Framing (contract §2): every message starts with an 8-byte header `{length, command id}`
//! (little-endian u32s). `length` counts payload **dwords**, except for `CREATE_RENDERER`
//! where it counts **bytes** (the NUL-terminated name is not padded). Responses reuse the
//! request's command id.

use thiserror::Error;

/// Size of the message header in bytes.
pub const HEADER_LEN: usize = 8;

/// The vtest protocol version this server negotiates (Mesa 25.0.7 requires >= 3 and does not
/// know version 4's batch layout; contract §3.1).
pub const PROTOCOL_VERSION: u32 = 3;

/// Hard cap on one message's payload (64 MiB). Mesa's largest vtest payloads are a few
/// hundred bytes (big command streams travel through shared memory), so this only bounds what
/// a hostile client can make us allocate.
pub const MAX_PAYLOAD_BYTES: usize = 64 << 20;

/// Hard cap on the `CREATE_RENDERER` name length in bytes (process names are short).
pub const MAX_RENDERER_NAME_BYTES: usize = 4096;

/// Hard cap on `SUBMIT_CMD2`'s `batch_count` (Mesa 25.0.7 always sends 1).
pub const MAX_SUBMIT_BATCHES: u32 = 64;

/// Hard cap on the number of syncs in one `SYNC_WAIT`.
pub const MAX_SYNC_WAIT_COUNT: u32 = 4096;

/// vtest command ids (`VCMD_*`). Only the ones marked "venus" are ever sent by Mesa 25.0.7.
pub mod cmd {
    pub const GET_CAPS: u32 = 1;
    pub const RESOURCE_CREATE: u32 = 2;
    /// venus
    pub const RESOURCE_UNREF: u32 = 3;
    pub const TRANSFER_GET: u32 = 4;
    pub const TRANSFER_PUT: u32 = 5;
    pub const SUBMIT_CMD: u32 = 6;
    /// venus (only as the ping probe)
    pub const RESOURCE_BUSY_WAIT: u32 = 7;
    /// venus
    pub const CREATE_RENDERER: u32 = 8;
    pub const GET_CAPS2: u32 = 9;
    /// venus
    pub const PING_PROTOCOL_VERSION: u32 = 10;
    /// venus
    pub const PROTOCOL_VERSION: u32 = 11;
    pub const RESOURCE_CREATE2: u32 = 12;
    pub const TRANSFER_GET2: u32 = 13;
    pub const TRANSFER_PUT2: u32 = 14;
    /// venus
    pub const GET_PARAM: u32 = 15;
    /// venus
    pub const GET_CAPSET: u32 = 16;
    /// venus
    pub const CONTEXT_INIT: u32 = 17;
    /// venus
    pub const RESOURCE_CREATE_BLOB: u32 = 18;
    pub const SYNC_CREATE: u32 = 19;
    pub const SYNC_UNREF: u32 = 20;
    pub const SYNC_READ: u32 = 21;
    pub const SYNC_WRITE: u32 = 22;
    pub const SYNC_WAIT: u32 = 23;
    /// venus
    pub const SUBMIT_CMD2: u32 = 24;
}

/// The name of a vtest command id, for logs.
pub fn command_name(id: u32) -> Option<&'static str> {
    Some(match id {
        cmd::GET_CAPS => "GET_CAPS",
        cmd::RESOURCE_CREATE => "RESOURCE_CREATE",
        cmd::RESOURCE_UNREF => "RESOURCE_UNREF",
        cmd::TRANSFER_GET => "TRANSFER_GET",
        cmd::TRANSFER_PUT => "TRANSFER_PUT",
        cmd::SUBMIT_CMD => "SUBMIT_CMD",
        cmd::RESOURCE_BUSY_WAIT => "RESOURCE_BUSY_WAIT",
        cmd::CREATE_RENDERER => "CREATE_RENDERER",
        cmd::GET_CAPS2 => "GET_CAPS2",
        cmd::PING_PROTOCOL_VERSION => "PING_PROTOCOL_VERSION",
        cmd::PROTOCOL_VERSION => "PROTOCOL_VERSION",
        cmd::RESOURCE_CREATE2 => "RESOURCE_CREATE2",
        cmd::TRANSFER_GET2 => "TRANSFER_GET2",
        cmd::TRANSFER_PUT2 => "TRANSFER_PUT2",
        cmd::GET_PARAM => "GET_PARAM",
        cmd::GET_CAPSET => "GET_CAPSET",
        cmd::CONTEXT_INIT => "CONTEXT_INIT",
        cmd::RESOURCE_CREATE_BLOB => "RESOURCE_CREATE_BLOB",
        cmd::SYNC_CREATE => "SYNC_CREATE",
        cmd::SYNC_UNREF => "SYNC_UNREF",
        cmd::SYNC_READ => "SYNC_READ",
        cmd::SYNC_WRITE => "SYNC_WRITE",
        cmd::SYNC_WAIT => "SYNC_WAIT",
        cmd::SUBMIT_CMD2 => "SUBMIT_CMD2",
        _ => return None,
    })
}

/// `GET_PARAM` parameters.
pub mod param {
    /// Number of timelines (ring_idx values) the server supports; Mesa requires it.
    pub const MAX_TIMELINE_COUNT: u32 = 1;
    /// Newer virglrenderer only (protocol 4); Mesa 25.0.7 never asks.
    pub const HAS_TIMELINE_SYNCOBJ: u32 = 2;
}

/// Capset ids (`enum virgl_renderer_capset`).
pub mod capset {
    pub const VIRGL: u32 = 1;
    pub const VIRGL2: u32 = 2;
    pub const GFXSTREAM_VULKAN: u32 = 3;
    pub const VENUS: u32 = 4;
    pub const CROSS_DOMAIN: u32 = 5;
    pub const DRM: u32 = 6;
}

/// `RESOURCE_CREATE_BLOB` blob types.
pub mod blob_type {
    pub const GUEST: u32 = 1;
    /// The only type venus uses over vtest.
    pub const HOST3D: u32 = 2;
    pub const HOST3D_GUEST: u32 = 3;
}

/// `RESOURCE_CREATE_BLOB` flags.
pub mod blob_flags {
    pub const MAPPABLE: u32 = 1 << 0;
    pub const SHAREABLE: u32 = 1 << 1;
    pub const CROSS_DEVICE: u32 = 1 << 2;
    pub const ALL: u32 = MAPPABLE | SHAREABLE | CROSS_DEVICE;
}

/// `SUBMIT_CMD2` batch flag: `ring_idx` is valid.
pub const SUBMIT_CMD2_FLAG_RING_IDX: u32 = 1 << 0;
/// `SYNC_WAIT` flag: wake when any (instead of all) syncs reached their values.
pub const SYNC_WAIT_FLAG_ANY: u32 = 1 << 0;
/// `RESOURCE_BUSY_WAIT` flag: block until idle (vs. just query).
pub const BUSY_WAIT_FLAG_WAIT: u32 = 1 << 0;
/// `SYNC_WAIT` timeout meaning "forever".
pub const SYNC_WAIT_TIMEOUT_INFINITE: u32 = u32::MAX;

/// `SUBMIT_CMD2` batch header size in dwords, as Mesa writes it (`struct
/// vcmd_submit_cmd2_batch`: flags, cmd_offset, cmd_size, sync_offset, sync_count, ring_idx).
/// virglrenderer's index macros use a stride of 8; the two agree only for batch 0, and Mesa
/// only ever sends one batch (contract §3.5).
pub const SUBMIT_CMD2_BATCH_DWORDS: u32 = 6;

/// Why a message could not be parsed. The frame itself was always consumed completely by the
/// caller, except for the header errors ([`ProtocolError::PayloadTooLarge`] and
/// [`ProtocolError::RendererNameTooLong`]), after which the stream cannot be resynchronised.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    #[error("truncated header: {got} of {HEADER_LEN} bytes")]
    TruncatedHeader { got: usize },
    #[error("{cmd}: payload of {bytes} bytes exceeds the {max}-byte cap")]
    PayloadTooLarge {
        cmd: CommandLabel,
        bytes: u64,
        max: usize,
    },
    #[error("CREATE_RENDERER: name of {len} bytes exceeds the {max}-byte cap")]
    RendererNameTooLong { len: u32, max: usize },
    #[error("{cmd}: payload is {got} bytes, the header announced {expected}")]
    PayloadMismatch {
        cmd: CommandLabel,
        expected: usize,
        got: usize,
    },
    #[error("{cmd}: expected {expected} payload dwords, got {got}")]
    BadLength {
        cmd: CommandLabel,
        expected: u32,
        got: usize,
    },
    #[error("{cmd}: unknown flag bits {flags:#x}")]
    UnknownFlags { cmd: CommandLabel, flags: u32 },
    #[error("SUBMIT_CMD2: batch_count {count} exceeds the cap of {max}")]
    TooManyBatches { count: u32, max: u32 },
    #[error(
        "SUBMIT_CMD2: {count} batch headers (6 dwords each) do not fit in {payload_dwords} \
         payload dwords"
    )]
    BatchHeadersOutside { count: u32, payload_dwords: usize },
    #[error(
        "SUBMIT_CMD2: batch {batch}: {what} [{offset}, +{len}) dwords lies outside the \
         {payload_dwords}-dword payload"
    )]
    BatchRangeOutside {
        batch: u32,
        what: &'static str,
        offset: u32,
        len: u64,
        payload_dwords: usize,
    },
    #[error("SUBMIT_CMD2: batches reference {total} {what} dwords, more than the payload holds")]
    BatchesOverlap { what: &'static str, total: u64 },
    #[error("SYNC_WAIT: length {len} is not 2 + 3*n dwords")]
    SyncWaitBadLength { len: usize },
    #[error("SYNC_WAIT: {count} syncs exceed the cap of {max}")]
    TooManySyncs { count: usize, max: u32 },
}

/// A command id printed with its name (for error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandLabel(pub u32);

impl std::fmt::Display for CommandLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match command_name(self.0) {
            Some(name) => f.write_str(name),
            None => write!(f, "command {}", self.0),
        }
    }
}

/// The 8-byte message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Payload length: dwords, or bytes for `CREATE_RENDERER`.
    pub length: u32,
    pub id: u32,
}

impl Header {
    /// Parses a header from the first 8 bytes of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self, ProtocolError> {
        match bytes.get(..HEADER_LEN) {
            Some(h) => Ok(Self {
                length: le32(h, 0),
                id: le32(h, 4),
            }),
            None => Err(ProtocolError::TruncatedHeader { got: bytes.len() }),
        }
    }

    /// The payload size in bytes announced by this header, checked against the caps. An error
    /// here means the stream cannot be trusted any more (the caller should close it).
    pub fn payload_len(&self) -> Result<usize, ProtocolError> {
        if self.id == cmd::CREATE_RENDERER {
            let len = self.length as usize;
            if len > MAX_RENDERER_NAME_BYTES {
                return Err(ProtocolError::RendererNameTooLong {
                    len: self.length,
                    max: MAX_RENDERER_NAME_BYTES,
                });
            }
            return Ok(len);
        }
        let bytes = u64::from(self.length) * 4;
        if bytes > MAX_PAYLOAD_BYTES as u64 {
            return Err(ProtocolError::PayloadTooLarge {
                cmd: CommandLabel(self.id),
                bytes,
                max: MAX_PAYLOAD_BYTES,
            });
        }
        // Cannot truncate: bounded by MAX_PAYLOAD_BYTES above.
        Ok(bytes as usize)
    }

    /// Encodes the header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..4].copy_from_slice(&self.length.to_le_bytes());
        out[4..].copy_from_slice(&self.id.to_le_bytes());
        out
    }
}

/// One `SUBMIT_CMD2` batch, copied out of the payload (private memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub flags: u32,
    /// The timeline: valid when `flags` has [`SUBMIT_CMD2_FLAG_RING_IDX`], else 0.
    pub ring_idx: u32,
    /// The Venus command stream (`cmd_size` dwords).
    pub commands: Vec<u8>,
    /// `(sync_id, value)` pairs to signal when the batch completes.
    pub syncs: Vec<(u32, u64)>,
}

/// A parsed vtest request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `CREATE_RENDERER`: the client's process name (up to the first NUL, lossily UTF-8).
    CreateRenderer {
        name: String,
    },
    PingProtocolVersion,
    ResourceBusyWait {
        handle: u32,
        flags: u32,
    },
    ProtocolVersion {
        version: u32,
    },
    GetParam {
        param: u32,
    },
    GetCapset {
        id: u32,
        version: u32,
    },
    ContextInit {
        capset_id: u32,
    },
    ResourceCreateBlob {
        blob_type: u32,
        flags: u32,
        size: u64,
        blob_id: u64,
    },
    ResourceUnref {
        res_id: u32,
    },
    SubmitCmd2 {
        batches: Vec<Batch>,
    },
    SyncCreate {
        value: u64,
    },
    SyncUnref {
        sync_id: u32,
    },
    SyncRead {
        sync_id: u32,
    },
    SyncWrite {
        sync_id: u32,
        value: u64,
    },
    SyncWait {
        flags: u32,
        timeout_ms: u32,
        syncs: Vec<(u32, u64)>,
    },
    /// A command id this server does not implement (the virgl/GL commands, protocol-4
    /// commands, garbage). Its payload was consumed.
    Unknown {
        id: u32,
    },
}

impl Request {
    /// Parses a request from its header and its complete payload (`header.payload_len()`
    /// bytes).
    pub fn parse(header: Header, payload: &[u8]) -> Result<Self, ProtocolError> {
        let expected = header.payload_len()?;
        if payload.len() != expected {
            return Err(ProtocolError::PayloadMismatch {
                cmd: CommandLabel(header.id),
                expected,
                got: payload.len(),
            });
        }
        if header.id == cmd::CREATE_RENDERER {
            let name = payload.split(|&b| b == 0).next().unwrap_or_default();
            return Ok(Self::CreateRenderer {
                name: String::from_utf8_lossy(name).into_owned(),
            });
        }
        let d = Dwords::new(header.id, payload);
        Ok(match header.id {
            cmd::PING_PROTOCOL_VERSION => {
                d.exact(0)?;
                Self::PingProtocolVersion
            }
            cmd::RESOURCE_BUSY_WAIT => {
                d.exact(2)?;
                Self::ResourceBusyWait {
                    handle: d.get(0),
                    flags: d.get(1),
                }
            }
            cmd::PROTOCOL_VERSION => {
                d.exact(1)?;
                Self::ProtocolVersion { version: d.get(0) }
            }
            cmd::GET_PARAM => {
                d.exact(1)?;
                Self::GetParam { param: d.get(0) }
            }
            cmd::GET_CAPSET => {
                d.exact(2)?;
                Self::GetCapset {
                    id: d.get(0),
                    version: d.get(1),
                }
            }
            cmd::CONTEXT_INIT => {
                d.exact(1)?;
                Self::ContextInit {
                    capset_id: d.get(0),
                }
            }
            cmd::RESOURCE_CREATE_BLOB => {
                d.exact(6)?;
                let flags = d.get(1);
                if flags & !blob_flags::ALL != 0 {
                    return Err(ProtocolError::UnknownFlags {
                        cmd: CommandLabel(header.id),
                        flags,
                    });
                }
                Self::ResourceCreateBlob {
                    blob_type: d.get(0),
                    flags,
                    size: d.get64(2),
                    blob_id: d.get64(4),
                }
            }
            cmd::RESOURCE_UNREF => {
                d.exact(1)?;
                Self::ResourceUnref { res_id: d.get(0) }
            }
            cmd::SUBMIT_CMD2 => Self::SubmitCmd2 {
                batches: parse_submit_cmd2(&d)?,
            },
            cmd::SYNC_CREATE => {
                d.exact(2)?;
                Self::SyncCreate { value: d.get64(0) }
            }
            cmd::SYNC_UNREF => {
                d.exact(1)?;
                Self::SyncUnref { sync_id: d.get(0) }
            }
            cmd::SYNC_READ => {
                d.exact(1)?;
                Self::SyncRead { sync_id: d.get(0) }
            }
            cmd::SYNC_WRITE => {
                d.exact(3)?;
                Self::SyncWrite {
                    sync_id: d.get(0),
                    value: d.get64(1),
                }
            }
            cmd::SYNC_WAIT => parse_sync_wait(&d)?,
            id => Self::Unknown { id },
        })
    }

    /// The command id this request came with.
    pub fn command_id(&self) -> u32 {
        match self {
            Self::CreateRenderer { .. } => cmd::CREATE_RENDERER,
            Self::PingProtocolVersion => cmd::PING_PROTOCOL_VERSION,
            Self::ResourceBusyWait { .. } => cmd::RESOURCE_BUSY_WAIT,
            Self::ProtocolVersion { .. } => cmd::PROTOCOL_VERSION,
            Self::GetParam { .. } => cmd::GET_PARAM,
            Self::GetCapset { .. } => cmd::GET_CAPSET,
            Self::ContextInit { .. } => cmd::CONTEXT_INIT,
            Self::ResourceCreateBlob { .. } => cmd::RESOURCE_CREATE_BLOB,
            Self::ResourceUnref { .. } => cmd::RESOURCE_UNREF,
            Self::SubmitCmd2 { .. } => cmd::SUBMIT_CMD2,
            Self::SyncCreate { .. } => cmd::SYNC_CREATE,
            Self::SyncUnref { .. } => cmd::SYNC_UNREF,
            Self::SyncRead { .. } => cmd::SYNC_READ,
            Self::SyncWrite { .. } => cmd::SYNC_WRITE,
            Self::SyncWait { .. } => cmd::SYNC_WAIT,
            Self::Unknown { id } => *id,
        }
    }
}

fn parse_submit_cmd2(d: &Dwords<'_>) -> Result<Vec<Batch>, ProtocolError> {
    let n = d.len();
    if n == 0 {
        // Mesa never sends an empty submit; virglrenderer treats it as a no-op.
        return Ok(Vec::new());
    }
    let count = d.get(0);
    if count > MAX_SUBMIT_BATCHES {
        return Err(ProtocolError::TooManyBatches {
            count,
            max: MAX_SUBMIT_BATCHES,
        });
    }
    let headers_end = 1 + u64::from(count) * u64::from(SUBMIT_CMD2_BATCH_DWORDS);
    if headers_end > n as u64 {
        return Err(ProtocolError::BatchHeadersOutside {
            count,
            payload_dwords: n,
        });
    }
    // Validate every batch before copying anything, and bound the total copy by the payload
    // size (overlapping ranges could otherwise multiply it).
    let mut ranges = Vec::with_capacity(count as usize);
    let (mut total_cmd, mut total_sync) = (0u64, 0u64);
    for i in 0..count {
        let base = 1 + (i * SUBMIT_CMD2_BATCH_DWORDS) as usize;
        let flags = d.get(base);
        let (cmd_offset, cmd_size) = (d.get(base + 1), d.get(base + 2));
        let (sync_offset, sync_count) = (d.get(base + 3), d.get(base + 4));
        let ring_idx = d.get(base + 5);
        if flags & !SUBMIT_CMD2_FLAG_RING_IDX != 0 {
            return Err(ProtocolError::UnknownFlags {
                cmd: CommandLabel(cmd::SUBMIT_CMD2),
                flags,
            });
        }
        let cmd_range = d.range(i, "commands", cmd_offset, u64::from(cmd_size))?;
        let sync_range = d.range(i, "syncs", sync_offset, u64::from(sync_count) * 3)?;
        total_cmd += cmd_range.len() as u64;
        total_sync += sync_range.len() as u64;
        let ring_idx = if flags & SUBMIT_CMD2_FLAG_RING_IDX != 0 {
            ring_idx
        } else {
            0
        };
        ranges.push((flags, ring_idx, cmd_range, sync_range));
    }
    for (what, total) in [("command", total_cmd), ("sync", total_sync)] {
        if total > n as u64 {
            return Err(ProtocolError::BatchesOverlap { what, total });
        }
    }
    Ok(ranges
        .into_iter()
        .map(|(flags, ring_idx, cmd_range, sync_range)| Batch {
            flags,
            ring_idx,
            commands: d.bytes(cmd_range).to_vec(),
            syncs: d.triples(sync_range),
        })
        .collect())
}

fn parse_sync_wait(d: &Dwords<'_>) -> Result<Request, ProtocolError> {
    let n = d.len();
    let count = n.saturating_sub(2) / 3;
    if n < 2 || 2 + 3 * count != n {
        return Err(ProtocolError::SyncWaitBadLength { len: n });
    }
    if count > MAX_SYNC_WAIT_COUNT as usize {
        return Err(ProtocolError::TooManySyncs {
            count,
            max: MAX_SYNC_WAIT_COUNT,
        });
    }
    let flags = d.get(0);
    if flags & !SYNC_WAIT_FLAG_ANY != 0 {
        return Err(ProtocolError::UnknownFlags {
            cmd: CommandLabel(cmd::SYNC_WAIT),
            flags,
        });
    }
    Ok(Request::SyncWait {
        flags,
        timeout_ms: d.get(1),
        syncs: d.triples(2..n),
    })
}

/// A payload viewed as little-endian dwords (a trailing partial dword is ignored; the header
/// length is in dwords, so it cannot occur for anything but `CREATE_RENDERER`).
struct Dwords<'a> {
    id: u32,
    bytes: &'a [u8],
}

impl<'a> Dwords<'a> {
    fn new(id: u32, bytes: &'a [u8]) -> Self {
        Self { id, bytes }
    }

    fn len(&self) -> usize {
        self.bytes.len() / 4
    }

    fn exact(&self, expected: u32) -> Result<(), ProtocolError> {
        if self.len() == expected as usize {
            Ok(())
        } else {
            Err(ProtocolError::BadLength {
                cmd: CommandLabel(self.id),
                expected,
                got: self.len(),
            })
        }
    }

    /// Dword `i`; callers check the length first (0 if out of range, never a panic).
    fn get(&self, i: usize) -> u32 {
        i.checked_mul(4)
            .and_then(|o| self.bytes.get(o..o.checked_add(4)?))
            .map_or(0, |b| le32(b, 0))
    }

    fn get64(&self, i: usize) -> u64 {
        u64::from(self.get(i)) | (u64::from(self.get(i + 1)) << 32)
    }

    /// Checks that `[offset, offset + len)` (dwords) lies inside the payload.
    fn range(
        &self,
        batch: u32,
        what: &'static str,
        offset: u32,
        len: u64,
    ) -> Result<std::ops::Range<usize>, ProtocolError> {
        let end = u64::from(offset) + len;
        if end > self.len() as u64 {
            return Err(ProtocolError::BatchRangeOutside {
                batch,
                what,
                offset,
                len,
                payload_dwords: self.len(),
            });
        }
        // Both bounded by self.len() above.
        Ok(offset as usize..end as usize)
    }

    fn bytes(&self, r: std::ops::Range<usize>) -> &'a [u8] {
        self.bytes.get(r.start * 4..r.end * 4).unwrap_or_default()
    }

    /// `(id, lo, hi)` triples in dword range `r` (whose length is a multiple of 3).
    fn triples(&self, r: std::ops::Range<usize>) -> Vec<(u32, u64)> {
        self.bytes(r)
            .chunks_exact(12)
            .map(|t| {
                (
                    le32(t, 0),
                    u64::from(le32(t, 4)) | (u64::from(le32(t, 8)) << 32),
                )
            })
            .collect()
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        w.copy_from_slice(s);
    }
    u32::from_le_bytes(w)
}

/// Encodes a response: header `{dwords.len(), id}` followed by the dwords.
pub fn encode_response(id: u32, dwords: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + dwords.len() * 4);
    // A response longer than u32::MAX dwords cannot be built from our bounded inputs.
    let length = u32::try_from(dwords.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&Header { length, id }.encode());
    for w in dwords {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out
}

/// A response to a request. Responses carrying an fd ([`Response::ResourceCreateBlob`],
/// [`Response::SyncWait`]) are followed on the wire by a separate 1-byte message
/// ([`FD_MESSAGE_BYTE`]) with the fd in `SCM_RIGHTS` (contract §3.3); that part is the
/// connection's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response<'a> {
    PingProtocolVersion,
    ResourceBusyWait {
        busy: bool,
    },
    ProtocolVersion {
        version: u32,
    },
    GetParam {
        value: Option<u32>,
    },
    GetCapset {
        capset: Option<&'a [u32]>,
    },
    /// `res_id` 0 is the failure answer (sent with no fd).
    ResourceCreateBlob {
        res_id: u32,
    },
    SyncCreate {
        sync_id: u32,
    },
    SyncRead {
        value: u64,
    },
    SyncWait,
}

/// The byte of the separate fd-carrying message (any value works; Mesa ignores it).
pub const FD_MESSAGE_BYTE: u8 = 0;

impl Response<'_> {
    /// The wire bytes of the response (without the fd message).
    pub fn encode(&self) -> Vec<u8> {
        match *self {
            Self::PingProtocolVersion => encode_response(cmd::PING_PROTOCOL_VERSION, &[]),
            Self::ResourceBusyWait { busy } => {
                encode_response(cmd::RESOURCE_BUSY_WAIT, &[u32::from(busy)])
            }
            Self::ProtocolVersion { version } => encode_response(cmd::PROTOCOL_VERSION, &[version]),
            Self::GetParam { value } => match value {
                Some(v) => encode_response(cmd::GET_PARAM, &[1, v]),
                None => encode_response(cmd::GET_PARAM, &[0, 0]),
            },
            Self::GetCapset { capset } => match capset {
                Some(c) => {
                    let mut dwords = Vec::with_capacity(1 + c.len());
                    dwords.push(1);
                    dwords.extend_from_slice(c);
                    encode_response(cmd::GET_CAPSET, &dwords)
                }
                None => encode_response(cmd::GET_CAPSET, &[0]),
            },
            Self::ResourceCreateBlob { res_id } => {
                encode_response(cmd::RESOURCE_CREATE_BLOB, &[res_id])
            }
            Self::SyncCreate { sync_id } => encode_response(cmd::SYNC_CREATE, &[sync_id]),
            Self::SyncRead { value } => {
                encode_response(cmd::SYNC_READ, &[value as u32, (value >> 32) as u32])
            }
            Self::SyncWait => encode_response(cmd::SYNC_WAIT, &[]),
        }
    }
}

/// Helpers to build request bytes (used by tests and test clients).
pub mod build {
    use super::{cmd, encode_response, Header};

    /// A request with a dword payload.
    pub fn request(id: u32, dwords: &[u32]) -> Vec<u8> {
        encode_response(id, dwords)
    }

    /// `CREATE_RENDERER` exactly as Mesa sends it: length in bytes, NUL-terminated, unpadded.
    pub fn create_renderer(name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let length = u32::try_from(name.len() + 1).unwrap_or(u32::MAX);
        out.extend_from_slice(
            &Header {
                length,
                id: cmd::CREATE_RENDERER,
            }
            .encode(),
        );
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out
    }

    /// `RESOURCE_CREATE_BLOB`.
    pub fn create_blob(blob_type: u32, flags: u32, size: u64, blob_id: u64) -> Vec<u8> {
        request(
            cmd::RESOURCE_CREATE_BLOB,
            &[
                blob_type,
                flags,
                size as u32,
                (size >> 32) as u32,
                blob_id as u32,
                (blob_id >> 32) as u32,
            ],
        )
    }

    /// A single-batch `SUBMIT_CMD2` as Mesa lays it out: `[1, header(6), commands, syncs]`.
    pub fn submit_cmd2(ring_idx: u32, commands: &[u8], syncs: &[(u32, u64)]) -> Vec<u8> {
        let cmd_dwords = commands.len().div_ceil(4);
        let cmd_offset = 1 + 6;
        let sync_offset = cmd_offset + cmd_dwords;
        let mut dwords = vec![
            1,
            super::SUBMIT_CMD2_FLAG_RING_IDX,
            cmd_offset as u32,
            cmd_dwords as u32,
            sync_offset as u32,
            syncs.len() as u32,
            ring_idx,
        ];
        let mut padded = commands.to_vec();
        padded.resize(cmd_dwords * 4, 0);
        dwords.extend(
            padded
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
        for &(id, value) in syncs {
            dwords.extend([id, value as u32, (value >> 32) as u32]);
        }
        request(cmd::SUBMIT_CMD2, &dwords)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(msg: &[u8]) -> (Header, &[u8]) {
        let h = Header::parse(msg).unwrap();
        (h, &msg[HEADER_LEN..])
    }

    fn parse(msg: &[u8]) -> Result<Request, ProtocolError> {
        let (h, p) = split(msg);
        Request::parse(h, p)
    }

    #[test]
    fn create_renderer_length_is_in_bytes_and_unpadded() {
        let msg = build::create_renderer("vulkaninfo");
        assert_eq!(msg.len(), 8 + 11);
        assert_eq!(&msg[..8], &[11, 0, 0, 0, 8, 0, 0, 0]);
        let (h, p) = split(&msg);
        assert_eq!(h.payload_len().unwrap(), 11);
        assert_eq!(
            Request::parse(h, p).unwrap(),
            Request::CreateRenderer {
                name: "vulkaninfo".into()
            }
        );
    }

    #[test]
    fn create_renderer_without_nul_and_with_garbage_utf8() {
        let h = Header {
            length: 3,
            id: cmd::CREATE_RENDERER,
        };
        assert_eq!(
            Request::parse(h, b"a\xffb").unwrap(),
            Request::CreateRenderer {
                name: "a\u{fffd}b".into()
            }
        );
        let h = Header {
            length: 0,
            id: cmd::CREATE_RENDERER,
        };
        assert_eq!(
            Request::parse(h, b"").unwrap(),
            Request::CreateRenderer {
                name: String::new()
            }
        );
    }

    #[test]
    fn create_renderer_name_cap() {
        let h = Header {
            length: 1 << 20,
            id: cmd::CREATE_RENDERER,
        };
        assert!(matches!(
            h.payload_len(),
            Err(ProtocolError::RendererNameTooLong { .. })
        ));
    }

    #[test]
    fn handshake_requests() {
        assert_eq!(
            parse(&build::request(cmd::PING_PROTOCOL_VERSION, &[])).unwrap(),
            Request::PingProtocolVersion
        );
        assert_eq!(
            parse(&build::request(cmd::RESOURCE_BUSY_WAIT, &[0, 0])).unwrap(),
            Request::ResourceBusyWait {
                handle: 0,
                flags: 0
            }
        );
        assert_eq!(
            parse(&build::request(cmd::PROTOCOL_VERSION, &[3])).unwrap(),
            Request::ProtocolVersion { version: 3 }
        );
        assert_eq!(
            parse(&build::request(cmd::GET_PARAM, &[1])).unwrap(),
            Request::GetParam { param: 1 }
        );
        assert_eq!(
            parse(&build::request(cmd::GET_CAPSET, &[4, 0])).unwrap(),
            Request::GetCapset { id: 4, version: 0 }
        );
        assert_eq!(
            parse(&build::request(cmd::CONTEXT_INIT, &[4])).unwrap(),
            Request::ContextInit { capset_id: 4 }
        );
        assert_eq!(
            parse(&build::request(cmd::RESOURCE_UNREF, &[7])).unwrap(),
            Request::ResourceUnref { res_id: 7 }
        );
    }

    #[test]
    fn create_blob_fixture() {
        // The instance ring blob exactly as Mesa sends it (contract §3.1).
        let msg: [u8; 32] = [
            6, 0, 0, 0, 18, 0, 0, 0, // header
            2, 0, 0, 0, 1, 0, 0, 0, // HOST3D, MAPPABLE
            0xc4, 0x00, 0x02, 0x00, 0, 0, 0, 0, // size 131268
            0, 0, 0, 0, 0, 0, 0, 0, // blob_id 0
        ];
        assert_eq!(
            parse(&msg).unwrap(),
            Request::ResourceCreateBlob {
                blob_type: 2,
                flags: 1,
                size: 131268,
                blob_id: 0
            }
        );
        assert_eq!(msg.to_vec(), build::create_blob(2, 1, 131268, 0));
        let big = build::create_blob(2, 1, 1 << 60, 0xdead_beef_0000_0001);
        assert_eq!(
            parse(&big).unwrap(),
            Request::ResourceCreateBlob {
                blob_type: 2,
                flags: 1,
                size: 1 << 60,
                blob_id: 0xdead_beef_0000_0001
            }
        );
        assert!(matches!(
            parse(&build::create_blob(2, 8, 4096, 0)),
            Err(ProtocolError::UnknownFlags { flags: 8, .. })
        ));
    }

    #[test]
    fn fixed_size_commands_reject_wrong_lengths() {
        for (id, len) in [
            (cmd::PING_PROTOCOL_VERSION, 1),
            (cmd::RESOURCE_BUSY_WAIT, 1),
            (cmd::PROTOCOL_VERSION, 0),
            (cmd::GET_PARAM, 2),
            (cmd::GET_CAPSET, 1),
            (cmd::CONTEXT_INIT, 0),
            (cmd::RESOURCE_CREATE_BLOB, 5),
            (cmd::RESOURCE_CREATE_BLOB, 7),
            (cmd::RESOURCE_UNREF, 2),
            (cmd::SYNC_CREATE, 1),
            (cmd::SYNC_UNREF, 0),
            (cmd::SYNC_READ, 3),
            (cmd::SYNC_WRITE, 2),
        ] {
            let msg = build::request(id, &vec![0; len]);
            assert!(
                matches!(parse(&msg), Err(ProtocolError::BadLength { .. })),
                "{id} with {len} dwords"
            );
        }
    }

    #[test]
    fn payload_must_match_header() {
        let h = Header {
            length: 2,
            id: cmd::GET_CAPSET,
        };
        assert!(matches!(
            Request::parse(h, &[0; 7]),
            Err(ProtocolError::PayloadMismatch {
                expected: 8,
                got: 7,
                ..
            })
        ));
    }

    #[test]
    fn truncated_header() {
        assert_eq!(
            Header::parse(&[1, 0, 0, 0, 8]),
            Err(ProtocolError::TruncatedHeader { got: 5 })
        );
        assert_eq!(
            Header::parse(&[]),
            Err(ProtocolError::TruncatedHeader { got: 0 })
        );
    }

    #[test]
    fn length_beyond_cap() {
        let h = Header::parse(&[0xff, 0xff, 0xff, 0xff, 24, 0, 0, 0]).unwrap();
        assert!(matches!(
            h.payload_len(),
            Err(ProtocolError::PayloadTooLarge { .. })
        ));
        let h = Header {
            length: (MAX_PAYLOAD_BYTES / 4) as u32,
            id: cmd::SUBMIT_CMD2,
        };
        assert_eq!(h.payload_len().unwrap(), MAX_PAYLOAD_BYTES);
        let h = Header {
            length: (MAX_PAYLOAD_BYTES / 4) as u32 + 1,
            id: 999,
        };
        let e = h.payload_len().unwrap_err();
        assert!(e.to_string().contains("command 999"), "{e}");
    }

    #[test]
    fn unknown_command_keeps_id() {
        assert_eq!(
            parse(&build::request(1, &[1, 2, 3])).unwrap(),
            Request::Unknown { id: 1 }
        );
        assert_eq!(
            parse(&build::request(0xdead_beef, &[])).unwrap(),
            Request::Unknown { id: 0xdead_beef }
        );
    }

    /// The `vkCreateRingMESA` submit seen on the wire: `len=42`: `[1, 1, 7, 35, 42, 0, 0]`
    /// + 35 dwords of command.
    #[test]
    fn submit_cmd2_mesa_layout() {
        let commands: Vec<u8> = (0..140u32).map(|i| i as u8).collect();
        let msg = build::submit_cmd2(0, &commands, &[]);
        assert_eq!(&msg[..8], &[42, 0, 0, 0, 24, 0, 0, 0]);
        let words: Vec<u32> = msg[8..36]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(words, [1, 1, 7, 35, 42, 0, 0]);
        let Request::SubmitCmd2 { batches } = parse(&msg).unwrap() else {
            panic!("not a submit");
        };
        assert_eq!(
            batches,
            vec![Batch {
                flags: 1,
                ring_idx: 0,
                commands,
                syncs: vec![]
            }]
        );
    }

    #[test]
    fn submit_cmd2_with_syncs_and_ring_idx() {
        let msg = build::submit_cmd2(3, &[1, 2, 3, 4], &[(5, 1 << 40 | 7), (6, 9)]);
        let Request::SubmitCmd2 { batches } = parse(&msg).unwrap() else {
            panic!("not a submit");
        };
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].ring_idx, 3);
        assert_eq!(batches[0].commands, [1, 2, 3, 4]);
        assert_eq!(batches[0].syncs, [(5, 1 << 40 | 7), (6, 9)]);
    }

    #[test]
    fn submit_cmd2_ring_idx_ignored_without_flag() {
        let msg = build::request(cmd::SUBMIT_CMD2, &[1, 0, 7, 0, 7, 0, 5]);
        let Request::SubmitCmd2 { batches } = parse(&msg).unwrap() else {
            panic!("not a submit");
        };
        assert_eq!(batches[0].ring_idx, 0);
    }

    #[test]
    fn submit_cmd2_two_batches_stride_6() {
        // [2, b0(6), b1(6), cmd0(1), cmd1(2)]
        let msg = build::request(
            cmd::SUBMIT_CMD2,
            &[2, 1, 13, 1, 0, 0, 1, 1, 14, 2, 0, 0, 2, 0xaa, 0xbb, 0xcc],
        );
        let Request::SubmitCmd2 { batches } = parse(&msg).unwrap() else {
            panic!("not a submit");
        };
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].commands, 0xaau32.to_le_bytes());
        assert_eq!(batches[0].ring_idx, 1);
        assert_eq!(batches[1].ring_idx, 2);
        assert_eq!(batches[1].commands.len(), 8);
    }

    #[test]
    fn submit_cmd2_empty_is_a_no_op() {
        assert_eq!(
            parse(&build::request(cmd::SUBMIT_CMD2, &[])).unwrap(),
            Request::SubmitCmd2 { batches: vec![] }
        );
        assert_eq!(
            parse(&build::request(cmd::SUBMIT_CMD2, &[0])).unwrap(),
            Request::SubmitCmd2 { batches: vec![] }
        );
    }

    #[test]
    fn submit_cmd2_malformed() {
        let cases: &[(&[u32], &str)] = &[
            // huge batch_count
            (&[u32::MAX, 1, 7, 0, 7, 0, 0], "batch_count"),
            (&[MAX_SUBMIT_BATCHES + 1], "batch_count"),
            // headers do not fit
            (&[2, 1, 7, 0, 7, 0, 0], "do not fit"),
            (&[1, 1, 7], "do not fit"),
            // command range past the end
            (&[1, 1, 7, 1, 7, 0, 0], "outside"),
            (&[1, 1, u32::MAX, 1, 7, 0, 0], "outside"),
            (&[1, 1, 7, u32::MAX, 7, 0, 0], "outside"),
            (&[1, 1, u32::MAX, u32::MAX, 7, 0, 0], "outside"),
            // sync range past the end
            (&[1, 1, 7, 0, 7, 1, 0], "outside"),
            (&[1, 1, 7, 0, 0, u32::MAX, 0], "outside"),
            (&[1, 1, 7, 0, u32::MAX, u32::MAX, 0], "outside"),
            // unknown flags
            (&[1, 2, 7, 0, 7, 0, 0], "flag"),
        ];
        for (dwords, what) in cases {
            let err = parse(&build::request(cmd::SUBMIT_CMD2, dwords)).unwrap_err();
            assert!(err.to_string().contains(what), "{dwords:?}: {err}");
        }
    }

    #[test]
    fn submit_cmd2_overlapping_ranges_are_bounded() {
        // 3 batches each claiming the whole 19-dword payload as commands.
        let mut d = vec![3];
        for _ in 0..3 {
            d.extend([0, 0, 19, 0, 0, 0]);
        }
        let err = parse(&build::request(cmd::SUBMIT_CMD2, &d)).unwrap_err();
        assert!(matches!(err, ProtocolError::BatchesOverlap { .. }), "{err}");
    }

    #[test]
    fn sync_requests() {
        assert_eq!(
            parse(&build::request(cmd::SYNC_CREATE, &[5, 1])).unwrap(),
            Request::SyncCreate { value: 1 << 32 | 5 }
        );
        assert_eq!(
            parse(&build::request(cmd::SYNC_WRITE, &[3, 9, 0])).unwrap(),
            Request::SyncWrite {
                sync_id: 3,
                value: 9
            }
        );
        assert_eq!(
            parse(&build::request(cmd::SYNC_WAIT, &[1, 100, 3, 9, 0, 4, 1, 1])).unwrap(),
            Request::SyncWait {
                flags: 1,
                timeout_ms: 100,
                syncs: vec![(3, 9), (4, 1 << 32 | 1)]
            }
        );
        for bad in [&[][..], &[0][..], &[0, 0, 1][..], &[0, 0, 1, 2, 3, 4][..]] {
            assert!(matches!(
                parse(&build::request(cmd::SYNC_WAIT, bad)),
                Err(ProtocolError::SyncWaitBadLength { .. })
            ));
        }
        assert!(matches!(
            parse(&build::request(cmd::SYNC_WAIT, &[2, 0])),
            Err(ProtocolError::UnknownFlags { .. })
        ));
        let many = vec![0u32; 2 + 3 * (MAX_SYNC_WAIT_COUNT as usize + 1)];
        assert!(matches!(
            parse(&build::request(cmd::SYNC_WAIT, &many)),
            Err(ProtocolError::TooManySyncs { .. })
        ));
    }

    #[test]
    fn responses() {
        assert_eq!(
            Response::PingProtocolVersion.encode(),
            [0, 0, 0, 0, 10, 0, 0, 0]
        );
        assert_eq!(
            Response::ResourceBusyWait { busy: false }.encode(),
            [1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            Response::ProtocolVersion { version: 3 }.encode(),
            [1, 0, 0, 0, 11, 0, 0, 0, 3, 0, 0, 0]
        );
        assert_eq!(
            Response::GetParam { value: Some(64) }.encode(),
            [2, 0, 0, 0, 15, 0, 0, 0, 1, 0, 0, 0, 64, 0, 0, 0]
        );
        assert_eq!(
            Response::GetParam { value: None }.encode(),
            [2, 0, 0, 0, 15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        let capset = [7u32; 40];
        let r = Response::GetCapset {
            capset: Some(&capset),
        }
        .encode();
        assert_eq!(r.len(), 8 + 41 * 4);
        assert_eq!(&r[..12], &[41, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(
            Response::GetCapset { capset: None }.encode(),
            [1, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            Response::ResourceCreateBlob { res_id: 1 }.encode(),
            [1, 0, 0, 0, 18, 0, 0, 0, 1, 0, 0, 0]
        );
        assert_eq!(
            Response::SyncRead { value: 1 << 32 | 2 }.encode(),
            [2, 0, 0, 0, 21, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0]
        );
        assert_eq!(Response::SyncWait.encode(), [0, 0, 0, 0, 23, 0, 0, 0]);
    }

    /// Every prefix and every single-byte corruption of valid messages parses or fails
    /// cleanly (no panic).
    #[test]
    fn never_panics_on_mutations() {
        let seeds = [
            build::create_renderer("vulkaninfo"),
            build::create_blob(2, 1, 131268, 0),
            build::submit_cmd2(1, &[1; 140], &[(1, 2)]),
            build::request(cmd::SYNC_WAIT, &[1, 100, 3, 9, 0]),
        ];
        for seed in &seeds {
            for cut in 0..seed.len() {
                let m = &seed[..cut];
                if let Ok(h) = Header::parse(m) {
                    let _ = Request::parse(h, &m[HEADER_LEN..]);
                }
            }
            for i in 0..seed.len() {
                for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                    let mut m = seed.clone();
                    m[i] = v;
                    let h = Header::parse(&m).unwrap();
                    if let Ok(len) = h.payload_len() {
                        let p = &m[HEADER_LEN..];
                        let _ = Request::parse(h, &p[..len.min(p.len())]);
                    }
                }
            }
        }
    }
}
