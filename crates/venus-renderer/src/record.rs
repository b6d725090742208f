//! Recording a context's traffic for `venus-replay` (format: `docs/recording.md`).
//!
//! This module owns the recording format (version [`FORMAT_VERSION`]): the writer the core
//! calls while it runs ([`RecordSink`], one file per context) and the reader
//! ([`read_recording`]) that the replayer and the fuzz harness use.
//!
//! What is recorded, each event with a process-wide sequence number (so the interleaving of
//! the context stream and the rings is known):
//!
//! - context creation and end, blob creation (with its outcome) and unref;
//! - every top-level command executed on any channel (context stream or a ring), when it
//!   *completes*, with its bytes, the replies it wrote and its outcome. Completion order is
//!   what a synchronous replay needs: a `vkWaitRingSeqnoMESA` completes after the ring commands
//!   it waited for, a `vkCreateRingMESA` before the ring's first command;
//! - the fence timeline a `SUBMIT_CMD2` batch completed on;
//! - client-written memory the host reads: the contents of each indirect command stream
//!   (`vkExecuteCommandStreamsMESA`) as it is copied, and, before each queue submission
//!   ([`SNAPSHOT_BEFORE`]), the [`CHUNK`]-sized pieces of every device-memory blob whose hash
//!   changed since the previous snapshot of that blob (blobs start zero-filled, so only
//!   non-zero pieces are stored the first time);
//! - at unref, the hash of every piece of a device-memory blob ([`Event::Observe`]): what the
//!   client could read back last; the replayer compares it.
//!
//! Cost when not recording: the context holds `None` and each hook is one branch.
//! A write error is logged once (WARN) and ends that context's recording; the context itself
//! carries on.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tracing::{info, warn};
use venus_protocol::CommandType;

use crate::dispatch::{Channel, ContextInfo};
use crate::resources::{BlobParams, Resource, ResourceKind, ResourceTable};
use crate::shm::SharedMemory;

/// File magic (8 bytes), followed by the `u32` format version and a reserved `u32`.
pub const MAGIC: &[u8; 8] = b"VENUSREC";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Granularity of memory snapshots and observations (bytes).
pub const CHUNK: usize = 64 << 10;
/// Commands before which device-memory blobs are snapshotted: where the host (the driver's
/// queue) starts reading what the client wrote into mapped memory.
pub const SNAPSHOT_BEFORE: &[CommandType] = &[
    CommandType::QUEUE_SUBMIT,
    CommandType::QUEUE_SUBMIT2,
    CommandType::QUEUE_BIND_SPARSE,
];

const KIND_CONTEXT: u8 = 1;
const KIND_BLOB: u8 = 2;
const KIND_UNREF: u8 = 3;
const KIND_COMMAND: u8 = 4;
const KIND_MEMORY: u8 = 5;
const KIND_FENCE: u8 = 6;
const KIND_OBSERVE: u8 = 7;
const KIND_END: u8 = 8;

/// The hash of one memory piece (64-bit FNV-1a over 8-byte words; not cryptographic: it
/// only decides whether a piece changed).
pub fn chunk_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(a)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^ bytes.len() as u64
}

/// Where a recorded command ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordedChannel {
    /// The context stream (`SUBMIT_CMD2`).
    Context,
    /// A ring, by the client's id and its creation index.
    Ring {
        /// `vkCreateRingMESA::ring`.
        id: u64,
        /// Creation order within the context.
        index: u32,
    },
}

impl From<Channel> for RecordedChannel {
    fn from(c: Channel) -> Self {
        match c {
            Channel::Context => Self::Context,
            Channel::Ring { id, index } => Self::Ring { id, index },
        }
    }
}

/// One recorded event (see the module doc and `docs/recording.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The context was created (the first event of a file).
    Context {
        /// Transport connection id.
        id: u64,
        /// Client name.
        name: String,
        /// Shared-memory granule in force.
        granule: u64,
    },
    /// `RESOURCE_CREATE_BLOB` and whether it succeeded.
    Blob {
        /// The request.
        params: BlobParams,
        /// Whether the blob was created.
        ok: bool,
    },
    /// `RESOURCE_UNREF`.
    Unref {
        /// The resource.
        res_id: u32,
    },
    /// One top-level command, recorded when it completed.
    Command {
        /// Where it ran.
        channel: RecordedChannel,
        /// Its bytes (header included).
        bytes: Vec<u8>,
        /// The replies it wrote, each as `u32` length + bytes.
        replies: Vec<u8>,
        /// `None`: it succeeded; else the fatal error it raised.
        error: Option<String>,
    },
    /// Client-written bytes the host read (write them before the next command).
    Memory {
        /// The resource.
        res_id: u32,
        /// Byte offset in the resource.
        offset: u64,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// A `SUBMIT_CMD2` batch was executed and completed on this fence timeline.
    Fence {
        /// The batch's `ring_idx`.
        ring_idx: u32,
    },
    /// Hashes of every [`CHUNK`] of a device-memory blob at unref (compared on replay).
    Observe {
        /// The resource.
        res_id: u32,
        /// Its size in bytes.
        size: u64,
        /// [`chunk_hash`] of each piece.
        hashes: Vec<u64>,
    },
    /// The context was destroyed.
    End,
}

/// A recorded event and its sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Process-wide sequence number (increasing within a file).
    pub seq: u64,
    /// Byte offset of the event in its file.
    pub offset: u64,
    /// The event.
    pub event: Event,
}

/// Why a recording could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// I/O.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Not a recording, or a version this build does not read.
    #[error("{path}: {reason}")]
    Header {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A malformed event.
    #[error("{path}: event at byte {offset}: {reason}")]
    Event {
        /// The file.
        path: PathBuf,
        /// The event's offset.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Process-wide recorder: the directory and the sequence counter (`venus-server --record`).
#[derive(Debug)]
pub struct RecordSink {
    dir: PathBuf,
    seq: AtomicU64,
}

impl RecordSink {
    /// Records into `dir` (created if missing), one `ctx-<id>.vrec` per context.
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<Arc<Self>> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Arc::new(Self {
            dir,
            seq: AtomicU64::new(0),
        }))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Opens the recording of a new context (its first event written).
    pub(crate) fn open(
        self: &Arc<Self>,
        info: &ContextInfo,
        granule: u64,
    ) -> io::Result<ContextRecorder> {
        let path = self.dir.join(format!("ctx-{}.vrec", info.id));
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&path)?);
        w.write_all(MAGIC)?;
        w.write_all(&FORMAT_VERSION.to_le_bytes())?;
        w.write_all(&0u32.to_le_bytes())?;
        info!(ctx = info.id, path = %path.display(), "recording context");
        let rec = ContextRecorder {
            sink: Arc::clone(self),
            ctx: info.id,
            state: Mutex::new(RecState {
                out: Some(w),
                hashes: HashMap::new(),
                buf: Vec::new(),
            }),
        };
        let mut p = Payload::default();
        p.u64(info.id).bytes(info.name.as_bytes()).u64(granule);
        rec.emit(KIND_CONTEXT, &p.0);
        Ok(rec)
    }
}

/// Little-endian payload builder.
#[derive(Default)]
struct Payload(Vec<u8>);

impl Payload {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// `u32` length + bytes.
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
        self
    }
}

struct RecState {
    /// `None` after a write error.
    out: Option<BufWriter<File>>,
    /// Per device-memory blob whose creation is recorded: the chunk hashes of its last
    /// snapshot (`None` before the first). A blob not in here is not snapshotted (its
    /// creation event is not written yet).
    hashes: HashMap<u32, Option<Vec<u64>>>,
    /// Scratch for reading chunks.
    buf: Vec<u8>,
}

/// One context's recording (held by the context; every channel writes through it).
pub(crate) struct ContextRecorder {
    sink: Arc<RecordSink>,
    ctx: u64,
    state: Mutex<RecState>,
}

impl ContextRecorder {
    fn lock(&self) -> MutexGuard<'_, RecState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, kind: u8, payload: &[u8]) {
        let mut st = self.lock();
        self.emit_locked(&mut st, kind, payload);
    }

    /// Sequence numbers are taken under the context's lock, so a file is in sequence order.
    fn emit_locked(&self, st: &mut RecState, kind: u8, payload: &[u8]) {
        let Some(w) = st.out.as_mut() else { return };
        let seq = self.sink.seq.fetch_add(1, Ordering::Relaxed);
        let result = (|| {
            w.write_all(&[kind, 0, 0, 0])?;
            w.write_all(&seq.to_le_bytes())?;
            w.write_all(
                &u32::try_from(payload.len())
                    .unwrap_or(u32::MAX)
                    .to_le_bytes(),
            )?;
            w.write_all(payload)
        })();
        if let Err(e) = result {
            warn!(ctx = self.ctx, "recording stopped: write error: {e}");
            st.out = None;
        }
    }

    pub(crate) fn blob(&self, params: &BlobParams, ok: bool) {
        let mut p = Payload::default();
        p.u32(params.res_id)
            .u32(params.blob_type)
            .u32(params.flags)
            .u64(params.size)
            .u64(params.blob_id)
            .u8(u8::from(ok));
        let mut st = self.lock();
        self.emit_locked(&mut st, KIND_BLOB, &p.0);
        if ok && params.blob_id != 0 {
            st.hashes.insert(params.res_id, None);
        }
    }

    /// `RESOURCE_UNREF` of `res_id`: a device-memory blob is observed, then removed from
    /// `resources` under the recorder's lock (so no snapshot of it can follow the unref).
    pub(crate) fn unref(&self, res_id: u32, resources: &ResourceTable) -> Option<Resource> {
        let mut st = self.lock();
        if let Ok(r) = resources.get(res_id) {
            if matches!(r.kind, ResourceKind::DeviceMemory { .. }) {
                let hashes = hash_chunks(&r.shm, &mut st.buf);
                let mut p = Payload::default();
                p.u32(res_id).u64(r.shm.len()).u32(hashes.len() as u32);
                for h in &hashes {
                    p.u64(*h);
                }
                self.emit_locked(&mut st, KIND_OBSERVE, &p.0);
            }
        }
        st.hashes.remove(&res_id);
        let mut p = Payload::default();
        p.u32(res_id);
        self.emit_locked(&mut st, KIND_UNREF, &p.0);
        resources.remove(res_id)
    }

    pub(crate) fn command(
        &self,
        channel: Channel,
        bytes: &[u8],
        replies: &[u8],
        error: Option<&str>,
    ) {
        let mut p = Payload::default();
        match channel {
            Channel::Context => p.u8(0).u64(0).u32(0),
            Channel::Ring { id, index } => p.u8(1).u64(id).u32(index),
        };
        p.bytes(bytes).bytes(replies);
        match error {
            None => p.u8(0),
            Some(e) => p.u8(1).bytes(e.as_bytes()),
        };
        self.emit(KIND_COMMAND, &p.0);
    }

    pub(crate) fn memory(&self, res_id: u32, offset: u64, bytes: &[u8]) {
        let mut st = self.lock();
        self.memory_locked(&mut st, res_id, offset, bytes);
    }

    fn memory_locked(&self, st: &mut RecState, res_id: u32, offset: u64, bytes: &[u8]) {
        let mut p = Payload::default();
        p.u32(res_id).u64(offset).bytes(bytes);
        self.emit_locked(st, KIND_MEMORY, &p.0);
    }

    pub(crate) fn fence(&self, ring_idx: u32) {
        let mut p = Payload::default();
        p.u32(ring_idx);
        self.emit(KIND_FENCE, &p.0);
    }

    /// Snapshot of every device-memory blob: the chunks whose hash changed.
    pub(crate) fn snapshot(&self, resources: &ResourceTable) {
        let mut st = self.lock();
        let blobs = resources.device_memory();
        for (res_id, shm) in blobs {
            if st.hashes.contains_key(&res_id) {
                self.snapshot_blob(&mut st, res_id, &shm);
            }
        }
    }

    fn snapshot_blob(&self, st: &mut RecState, res_id: u32, shm: &SharedMemory) {
        let len = shm.len();
        let chunks = len.div_ceil(CHUNK as u64) as usize;
        let mut buf = std::mem::take(&mut st.buf);
        let mut old = st.hashes.remove(&res_id).flatten();
        let mut new = Vec::with_capacity(chunks);
        for i in 0..chunks {
            let off = i as u64 * CHUNK as u64;
            let n = (len - off).min(CHUNK as u64) as usize;
            buf.resize(n, 0);
            if shm.read_into(off, &mut buf).is_err() {
                break;
            }
            let h = chunk_hash(&buf);
            let changed = match old.as_mut() {
                Some(old) => old.get(i) != Some(&h),
                None => buf.iter().any(|&b| b != 0),
            };
            if changed {
                self.memory_locked(st, res_id, off, &buf);
            }
            new.push(h);
        }
        st.buf = buf;
        st.hashes.insert(res_id, Some(new));
    }
}

impl ContextRecorder {
    /// Writes the end event and flushes; later events are dropped (idempotent).
    pub(crate) fn finish(&self) {
        let mut st = self.lock();
        if st.out.is_none() {
            return;
        }
        self.emit_locked(&mut st, KIND_END, &[]);
        if let Some(mut w) = st.out.take() {
            if let Err(e) = w.flush() {
                warn!(ctx = self.ctx, "recording: flush failed: {e}");
            }
        }
    }
}

impl Drop for ContextRecorder {
    fn drop(&mut self) {
        self.finish();
    }
}

/// [`chunk_hash`] of every [`CHUNK`] of `shm` (`buf` is scratch).
pub fn hash_chunks(shm: &SharedMemory, buf: &mut Vec<u8>) -> Vec<u64> {
    let len = shm.len();
    let mut out = Vec::new();
    let mut off = 0;
    while off < len {
        let n = (len - off).min(CHUNK as u64) as usize;
        buf.resize(n, 0);
        if shm.read_into(off, buf).is_err() {
            break;
        }
        out.push(chunk_hash(buf));
        off += n as u64;
    }
    out
}

/// Bounds-checked little-endian reader over one event's payload.
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or_else(|| format!("truncated at payload byte {}", self.pos))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, String> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
}

fn decode_event(kind: u8, payload: &[u8]) -> Result<Event, String> {
    let mut r = Reader { b: payload, pos: 0 };
    let ev = match kind {
        KIND_CONTEXT => Event::Context {
            id: r.u64()?,
            name: String::from_utf8_lossy(&r.bytes()?).into_owned(),
            granule: r.u64()?,
        },
        KIND_BLOB => Event::Blob {
            params: BlobParams {
                res_id: r.u32()?,
                blob_type: r.u32()?,
                flags: r.u32()?,
                size: r.u64()?,
                blob_id: r.u64()?,
            },
            ok: r.u8()? != 0,
        },
        KIND_UNREF => Event::Unref { res_id: r.u32()? },
        KIND_COMMAND => {
            let channel = match (r.u8()?, r.u64()?, r.u32()?) {
                (0, _, _) => RecordedChannel::Context,
                (1, id, index) => RecordedChannel::Ring { id, index },
                (c, _, _) => return Err(format!("unknown channel kind {c}")),
            };
            let bytes = r.bytes()?;
            let replies = r.bytes()?;
            let error = match r.u8()? {
                0 => None,
                _ => Some(String::from_utf8_lossy(&r.bytes()?).into_owned()),
            };
            Event::Command {
                channel,
                bytes,
                replies,
                error,
            }
        }
        KIND_MEMORY => Event::Memory {
            res_id: r.u32()?,
            offset: r.u64()?,
            bytes: r.bytes()?,
        },
        KIND_FENCE => Event::Fence { ring_idx: r.u32()? },
        KIND_OBSERVE => {
            let res_id = r.u32()?;
            let size = r.u64()?;
            let n = r.u32()? as usize;
            let hashes = (0..n).map(|_| r.u64()).collect::<Result<_, _>>()?;
            Event::Observe {
                res_id,
                size,
                hashes,
            }
        }
        KIND_END => Event::End,
        k => return Err(format!("unknown event kind {k}")),
    };
    if r.pos != payload.len() {
        return Err(format!(
            "{} bytes left over in the payload",
            payload.len() - r.pos
        ));
    }
    Ok(ev)
}

/// Parses a recording held in memory (`path` only names it in errors).
pub fn parse_recording(path: &Path, data: &[u8]) -> Result<Vec<Recorded>, ReadError> {
    let header_err = |reason: String| ReadError::Header {
        path: path.to_owned(),
        reason,
    };
    if data.len() < 16 || &data[..8] != MAGIC {
        return Err(header_err("not a venus-rs recording (bad magic)".into()));
    }
    let version = u32::from_le_bytes([data[8], data[9], data[10], data[11]]);
    if version != FORMAT_VERSION {
        return Err(header_err(format!(
            "format version {version}, this build reads version {FORMAT_VERSION}"
        )));
    }
    let mut out = Vec::new();
    let mut pos = 16usize;
    while pos < data.len() {
        let offset = pos as u64;
        let err = |reason: String| ReadError::Event {
            path: path.to_owned(),
            offset,
            reason,
        };
        let mut r = Reader {
            b: data,
            pos: pos + 4,
        };
        let kind = data[pos];
        let seq = r.u64().map_err(err)?;
        let len = r.u32().map_err(err)? as usize;
        let payload = r.take(len).map_err(err)?;
        let event = decode_event(kind, payload).map_err(err)?;
        out.push(Recorded { seq, offset, event });
        pos = r.pos;
    }
    Ok(out)
}

/// Reads the recording `path`.
pub fn read_recording(path: &Path) -> Result<Vec<Recorded>, ReadError> {
    let data = std::fs::read(path).map_err(|source| ReadError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_recording(path, &data)
}

/// Splits a command event's `replies` field into the individual replies.
pub fn split_replies(replies: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 4 <= replies.len() {
        let n = u32::from_le_bytes([
            replies[pos],
            replies[pos + 1],
            replies[pos + 2],
            replies[pos + 3],
        ]) as usize;
        let end = (pos + 4).saturating_add(n).min(replies.len());
        out.push(&replies[pos + 4..end]);
        pos = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_a_file() {
        let dir = std::env::temp_dir().join(format!("venus-rec-{}", std::process::id()));
        let sink = RecordSink::new(&dir).unwrap();
        let info = ContextInfo {
            id: 7,
            name: "t".into(),
        };
        let table = ResourceTable::new();
        {
            let rec = sink.open(&info, 4096).unwrap();
            let params = BlobParams {
                res_id: 1,
                blob_type: 2,
                flags: 1,
                size: 100,
                blob_id: 0,
            };
            rec.blob(&params, true);
            rec.command(Channel::Ring { id: 9, index: 0 }, b"abcd", b"", Some("bad"));
            rec.memory(1, 8, b"xyz");
            rec.fence(3);
            rec.unref(1, &table);
        }
        let events = read_recording(&dir.join("ctx-7.vrec")).unwrap();
        let kinds: Vec<_> = events.iter().map(|e| &e.event).collect();
        assert_eq!(kinds.len(), 7, "{kinds:?}");
        assert!(matches!(
            kinds[0],
            Event::Context {
                id: 7,
                granule: 4096,
                ..
            }
        ));
        assert_eq!(
            kinds[2],
            &Event::Command {
                channel: RecordedChannel::Ring { id: 9, index: 0 },
                bytes: b"abcd".to_vec(),
                replies: vec![],
                error: Some("bad".into()),
            }
        );
        assert_eq!(kinds[6], &Event::End);
        assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_header_and_truncation_are_errors() {
        let p = Path::new("x");
        assert!(parse_recording(p, b"nope").is_err());
        let mut d = MAGIC.to_vec();
        d.extend_from_slice(&1u32.to_le_bytes());
        d.extend_from_slice(&0u32.to_le_bytes());
        d.extend_from_slice(&[KIND_FENCE, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0]);
        let e = parse_recording(p, &d).unwrap_err().to_string();
        assert!(e.contains("event at byte 16"), "{e}");
    }
}
