//! Replays a recording of `venus-server --record` (format: `docs/recording.md`,
//! [`venus_renderer::record`]) through the renderer core and the host driver, without the
//! client, and reports the first divergence.
//!
//! This crate owns the replay rules: events are applied in recorded order on one thread
//! ([`Replayer::apply`]); each command runs on the channel it ran on
//! ([`venus_renderer::Context::replay_command`]); a divergence is a command whose outcome
//! (success / fatal error) differs, a reply that differs byte for byte (except for the
//! timing-dependent commands of [`TIMING_DEPENDENT`], which only warn), a blob that cannot be
//! created (or now can), memory the recording refers to that does not exist. A blob whose
//! contents at unref differ from what the client could read then ([`Event::Observe`]) is a
//! warning, or a divergence with [`Replayer::strict_memory`]: the client may have written
//! mapped memory after the last queue submission (Mesa resets fence feedback slots on the
//! CPU), which the recording does not capture, so only a blob the GPU alone writes last (a
//! read-back buffer) is reliably comparable. Each
//! divergence names its [`Position`]: file, event number, sequence number and byte offset.

pub mod harness;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use venus_protocol::{command_info, CommandType};
use venus_renderer::record::{
    hash_chunks, read_recording, split_replies, Event, ReadError, Recorded, RecordedChannel, CHUNK,
    SNAPSHOT_BEFORE,
};
use venus_renderer::shm::SharedMemory;
use venus_renderer::{Context, ContextInfo, DispatchFactory, Renderer};

/// Commands whose replies depend on timing (a fence may or may not be signalled yet): a
/// different reply is a warning, not a divergence.
pub const TIMING_DEPENDENT: &[CommandType] = &[
    CommandType::GET_FENCE_STATUS,
    CommandType::WAIT_FOR_FENCES,
    CommandType::GET_EVENT_STATUS,
    CommandType::GET_QUERY_POOL_RESULTS,
    CommandType::WAIT_SEMAPHORES,
    CommandType::GET_SEMAPHORE_COUNTER_VALUE,
    CommandType::GET_CALIBRATED_TIMESTAMPS_KHR,
];

/// After each queue submission the replay waits this long (per queue) for the queue to finish:
/// the client may have waited for it by polling feedback memory, which the recording does not
/// show, and it must not read results (or destroy objects) the GPU is still producing.
pub const QUIESCE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where in a recording an event is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The recording file.
    pub file: PathBuf,
    /// Event number in the file (0 = the context event).
    pub index: usize,
    /// The event's sequence number.
    pub seq: u64,
    /// The event's byte offset in the file.
    pub offset: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} event #{} (seq {}, file byte {})",
            self.file.display(),
            self.index,
            self.seq,
            self.offset
        )
    }
}

/// The first difference between the recording and the replay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Divergence {
    /// The command succeeded when recorded and fails now.
    #[error("{at}: {what}: succeeded when recorded, fails on replay: {error}")]
    NowFails {
        /// Where.
        at: Position,
        /// Channel and command.
        what: String,
        /// The replay's error.
        error: String,
    },
    /// The command failed when recorded and succeeds now.
    #[error("{at}: {what}: failed when recorded ({recorded}), succeeds on replay")]
    NowSucceeds {
        /// Where.
        at: Position,
        /// Channel and command.
        what: String,
        /// The recorded error.
        recorded: String,
    },
    /// A reply differs.
    #[error(
        "{at}: {what}: reply {reply} differs from the recorded one at byte {byte} \
         (recorded {recorded_len} bytes, replayed {replayed_len})"
    )]
    Reply {
        /// Where.
        at: Position,
        /// Channel and command.
        what: String,
        /// Which reply of the command (0 unless it ran indirect streams).
        reply: usize,
        /// First differing byte.
        byte: usize,
        /// Recorded reply length.
        recorded_len: usize,
        /// Replayed reply length.
        replayed_len: usize,
    },
    /// Another number of replies.
    #[error("{at}: {what}: {recorded} replies recorded, {replayed} written on replay")]
    ReplyCount {
        /// Where.
        at: Position,
        /// Channel and command.
        what: String,
        /// Recorded.
        recorded: usize,
        /// Replayed.
        replayed: usize,
    },
    /// A blob's creation had another outcome.
    #[error("{at}: blob {res_id}: created when recorded: {recorded}; on replay: {replayed}")]
    Blob {
        /// Where.
        at: Position,
        /// The resource.
        res_id: u32,
        /// Whether it was created when recorded.
        recorded: bool,
        /// The replay's outcome.
        replayed: String,
    },
    /// The recording refers to a resource the replay does not have.
    #[error("{at}: resource {res_id} does not exist on replay ({what})")]
    MissingResource {
        /// Where.
        at: Position,
        /// The resource.
        res_id: u32,
        /// What needed it.
        what: String,
    },
    /// A blob's contents at unref differ from what the client could read when recorded.
    #[error("{at}: blob {res_id}: bytes {start}..{end} differ from the recording at unref")]
    Memory {
        /// Where.
        at: Position,
        /// The resource.
        res_id: u32,
        /// First differing chunk start.
        start: u64,
        /// Its end.
        end: u64,
    },
    /// Anything else (a malformed recording).
    #[error("{at}: {what}")]
    Other {
        /// Where.
        at: Position,
        /// What.
        what: String,
    },
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The recording could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The replay diverged.
    #[error("divergence: {0}")]
    Diverged(#[from] Divergence),
    /// The replay could not start (no context event, the dispatch failed).
    #[error("{0}")]
    Setup(String),
}

/// What a replay did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Events applied.
    pub events: usize,
    /// Commands executed.
    pub commands: usize,
    /// Replies compared.
    pub replies: usize,
    /// Memory writes applied.
    pub memory_writes: usize,
    /// Blob observations compared.
    pub observations: usize,
    /// Observations that differed (warnings unless strict).
    pub memory_differences: usize,
    /// Warnings (timing-dependent replies that differed, error messages that changed).
    pub warnings: Vec<String>,
}

/// Replays one context's events (see the module doc).
pub struct Replayer {
    ctx: Context,
    file: PathBuf,
    /// Every blob created, by resource id (the latest with that id), kept after unref so
    /// that its final contents can be dumped.
    blobs: BTreeMap<u32, Arc<SharedMemory>>,
    stats: Stats,
    strict_memory: bool,
    lenient_replies: bool,
}

impl fmt::Debug for Replayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replayer")
            .field("file", &self.file)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// `ring 0 (id 0x..) vkCreateBuffer` or `context stream vkCreateRingMESA`.
fn describe(channel: RecordedChannel, bytes: &[u8]) -> String {
    let ch = match channel {
        RecordedChannel::Context => "context stream".to_owned(),
        RecordedChannel::Ring { id, index } => format!("ring {index} (id {id:#x})"),
    };
    let name = command_type(bytes)
        .and_then(|t| command_info(t.0))
        .map_or("<unknown command>", |i| i.name);
    format!("{ch} {name} ({} bytes)", bytes.len())
}

/// One line per command of a raw command stream (`venus-replay --decode`): byte offset and
/// the decoded command, or the error that stopped decoding.
pub fn decode_stream(bytes: &[u8]) -> Vec<String> {
    let arena = venus_protocol::Arena::new();
    let mut d = venus_protocol::Decoder::new(bytes, &arena);
    let mut out = Vec::new();
    while !d.is_empty() {
        let at = d.position();
        match venus_protocol::decode_command(&mut d) {
            Ok((h, cmd)) => out.push(format!("@{at} flags={:#x} {cmd:?}", h.flags)),
            Err(e) => {
                out.push(format!("@{at} undecodable: {e}"));
                break;
            }
        }
    }
    out
}

/// One line describing `event` (`venus-replay --list`).
pub fn summary(event: &Event) -> String {
    match event {
        Event::Context { id, name, granule } => {
            format!("context id={id} name={name:?} granule={granule}")
        }
        Event::Blob { params, ok } => format!(
            "blob res_id={} blob_id={:#x} size={} flags={:#x} ok={ok}",
            params.res_id, params.blob_id, params.size, params.flags
        ),
        Event::Unref { res_id } => format!("unref res_id={res_id}"),
        Event::Command {
            channel,
            bytes,
            replies,
            error,
        } => format!(
            "command {} replies={}{}",
            describe(*channel, bytes),
            split_replies(replies).len(),
            error
                .as_ref()
                .map(|e| format!(" error={e:?}"))
                .unwrap_or_default()
        ),
        Event::Memory {
            res_id,
            offset,
            bytes,
        } => format!("memory res_id={res_id} offset={offset} len={}", bytes.len()),
        Event::Fence { ring_idx } => format!("fence ring_idx={ring_idx}"),
        Event::Observe { res_id, size, .. } => format!("observe res_id={res_id} size={size}"),
        Event::End => "end".into(),
    }
}

fn command_type(bytes: &[u8]) -> Option<CommandType> {
    let b = bytes.get(..4)?;
    Some(CommandType(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
}

impl Replayer {
    /// A replayer for the recording `file` whose first event is `first` (its context event).
    pub fn new(
        factory: Arc<dyn DispatchFactory>,
        file: &Path,
        first: &Recorded,
    ) -> Result<Self, ReplayError> {
        let Event::Context { id, name, granule } = &first.event else {
            return Err(ReplayError::Setup(format!(
                "{}: the first event is not a context event",
                file.display()
            )));
        };
        let renderer = Renderer::new(factory).with_page_size((*granule).max(1));
        let ctx = renderer
            .create_context(ContextInfo {
                id: *id,
                name: name.clone(),
            })
            .map_err(|e| ReplayError::Setup(format!("creating the context: {e}")))?;
        Ok(Self {
            ctx,
            file: file.to_owned(),
            blobs: BTreeMap::new(),
            stats: Stats::default(),
            strict_memory: false,
            lenient_replies: false,
        })
    }

    /// Blob contents at unref that differ from the recording are divergences, not warnings.
    pub fn strict_memory(&mut self, strict: bool) {
        self.strict_memory = strict;
    }

    /// Replies that differ byte for byte are warnings, not divergences (a set-up replayed on a
    /// newer host: the fuzz harness's prefix, whose device may now list other extensions).
    /// Outcomes and reply counts still diverge.
    pub fn lenient_replies(&mut self, lenient: bool) {
        self.lenient_replies = lenient;
    }

    /// The context being replayed into.
    pub fn context(&mut self) -> &mut Context {
        &mut self.ctx
    }

    /// Every blob created so far, by resource id (kept after unref).
    pub fn blobs(&self) -> &BTreeMap<u32, Arc<SharedMemory>> {
        &self.blobs
    }

    /// What the replay did so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Applies event number `index` of the file.
    pub fn apply(&mut self, index: usize, r: &Recorded) -> Result<(), Divergence> {
        self.stats.events += 1;
        let file = self.file.clone();
        let at = move || Position {
            file: file.clone(),
            index,
            seq: r.seq,
            offset: r.offset,
        };
        match &r.event {
            Event::Context { .. } | Event::End => Ok(()),
            Event::Blob { params, ok } => {
                let got = self.ctx.create_blob(params);
                match (&got, ok) {
                    (Ok(_), true) => {
                        if let Some(res) = self.ctx.resource(params.res_id) {
                            self.blobs.insert(params.res_id, res.shm);
                        }
                        Ok(())
                    }
                    (Err(_), false) => Ok(()),
                    _ => Err(Divergence::Blob {
                        at: at(),
                        res_id: params.res_id,
                        recorded: *ok,
                        replayed: got.map_or_else(|e| format!("failed: {e}"), |_| "created".into()),
                    }),
                }
            }
            Event::Unref { res_id } => {
                self.ctx.unref(*res_id);
                Ok(())
            }
            Event::Command {
                channel,
                bytes,
                replies,
                error,
            } => self.command(at(), *channel, bytes, replies, error.as_deref()),
            Event::Memory {
                res_id,
                offset,
                bytes,
            } => {
                let what = format!("writing {} recorded bytes at offset {offset}", bytes.len());
                let Some(res) = self.ctx.resource(*res_id) else {
                    return Err(Divergence::MissingResource {
                        at: at(),
                        res_id: *res_id,
                        what,
                    });
                };
                self.stats.memory_writes += 1;
                res.shm
                    .write_from(*offset, bytes)
                    .map_err(|e| Divergence::Other {
                        at: at(),
                        what: format!("resource {res_id}: {what}: {e}"),
                    })
            }
            Event::Fence { ring_idx } => {
                let _ = self.ctx.submit(*ring_idx, &[], Box::new(|_| {}));
                Ok(())
            }
            Event::Observe {
                res_id,
                size,
                hashes,
            } => self.observe(at(), *res_id, *size, hashes),
        }
    }

    fn command(
        &mut self,
        at: Position,
        channel: RecordedChannel,
        bytes: &[u8],
        recorded: &[u8],
        error: Option<&str>,
    ) -> Result<(), Divergence> {
        self.stats.commands += 1;
        let what = describe(channel, bytes);
        let got = self.ctx.replay_command(channel, bytes);
        let replayed = match (got, error) {
            (Ok(r), None) => r,
            (Err(e), None) => {
                return Err(Divergence::NowFails {
                    at,
                    what,
                    error: e.to_string(),
                })
            }
            (Ok(_), Some(rec)) => {
                return Err(Divergence::NowSucceeds {
                    at,
                    what,
                    recorded: rec.to_owned(),
                })
            }
            (Err(e), Some(rec)) => {
                let e = e.to_string();
                if !e.contains(rec) {
                    self.stats.warnings.push(format!(
                        "{at}: {what}: recorded error {rec:?}, replay: {e:?}"
                    ));
                }
                return Ok(());
            }
        };
        if command_type(bytes).is_some_and(|t| SNAPSHOT_BEFORE.contains(&t)) {
            // Queue work runs to completion before the next event (see QUIESCE_TIMEOUT).
            let late = self.ctx.replay_quiesce(QUIESCE_TIMEOUT);
            if !late.is_empty() {
                self.stats.warnings.push(format!(
                    "{at}: {what}: the queues of timelines {late:?} did not finish within \
                     {QUIESCE_TIMEOUT:?}"
                ));
            }
        }
        let want = split_replies(recorded);
        let got = split_replies(&replayed);
        if want.len() != got.len() {
            return Err(Divergence::ReplyCount {
                at,
                what,
                recorded: want.len(),
                replayed: got.len(),
            });
        }
        let timing = command_type(bytes).is_some_and(|t| TIMING_DEPENDENT.contains(&t));
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            self.stats.replies += 1;
            if w == g {
                continue;
            }
            let byte = w.iter().zip(g.iter()).take_while(|(a, b)| a == b).count();
            let d = Divergence::Reply {
                at: at.clone(),
                what: what.clone(),
                reply: i,
                byte,
                recorded_len: w.len(),
                replayed_len: g.len(),
            };
            if !timing && !self.lenient_replies {
                return Err(d);
            }
            let why = if timing {
                "timing-dependent"
            } else {
                "lenient replies"
            };
            self.stats
                .warnings
                .push(format!("{d} ({why}: not a divergence)"));
        }
        Ok(())
    }

    fn observe(
        &mut self,
        at: Position,
        res_id: u32,
        size: u64,
        hashes: &[u64],
    ) -> Result<(), Divergence> {
        let Some(res) = self.ctx.resource(res_id) else {
            return Err(Divergence::MissingResource {
                at,
                res_id,
                what: "comparing its contents at unref".into(),
            });
        };
        self.stats.observations += 1;
        let got = hash_chunks(&res.shm, &mut Vec::new());
        if res.shm.len() != size {
            return Err(Divergence::Other {
                at,
                what: format!(
                    "blob {res_id}: {} bytes on replay, {size} recorded",
                    res.shm.len()
                ),
            });
        }
        let Some(i) = got.iter().zip(hashes).position(|(a, b)| a != b) else {
            return Ok(());
        };
        let start = i as u64 * CHUNK as u64;
        let d = Divergence::Memory {
            at,
            res_id,
            start,
            end: (start + CHUNK as u64).min(size),
        };
        if self.strict_memory {
            return Err(d);
        }
        self.stats.memory_differences += 1;
        self.stats.warnings.push(format!(
            "{d} (the client may have written it after the last submission)"
        ));
        Ok(())
    }
}

/// Replays the recording `file`; returns the replayer (its blobs, its stats) after the last
/// event, or the first divergence.
pub fn replay_file(
    factory: Arc<dyn DispatchFactory>,
    file: &Path,
    strict_memory: bool,
) -> Result<Replayer, ReplayError> {
    let events = read_recording(file)?;
    let first = events
        .first()
        .ok_or_else(|| ReplayError::Setup(format!("{}: no events", file.display())))?;
    let mut r = Replayer::new(factory, file, first)?;
    r.strict_memory(strict_memory);
    for (i, e) in events.iter().enumerate() {
        r.apply(i, e)?;
    }
    Ok(r)
}

/// The recordings in `dir` (`ctx-*.vrec`), in context-id order; `dir` may also be one file.
pub fn recordings(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    if dir.is_file() {
        return Ok(vec![dir.to_owned()]);
    }
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            let id = name
                .strip_prefix("ctx-")?
                .strip_suffix(".vrec")?
                .parse()
                .ok()?;
            Some((id, p))
        })
        .collect();
    v.sort();
    Ok(v.into_iter().map(|(_, p)| p).collect())
}
