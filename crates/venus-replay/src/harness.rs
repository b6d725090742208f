//! Inputs as Venus command streams executed by the real dispatch on the host driver after a
//! recorded set-up: the harness of the `dispatch_lavapipe` fuzz target (`fuzz/`) and of
//! `venus-replay PREFIX --run-input FILE` (reproducing what the fuzzer found, without it).
//!
//! Set-up (before every input, so that a crash reproduces from its one input; with
//! `VENUS_FUZZ_KEEP=N` a context serves up to N inputs, faster but a crash may then depend on
//! the inputs before it; always again after the context is lost): a recording ([`prefix_path`], made by `scripts/fuzz.sh` from `venus-compute`) is replayed up
//! to and including its first `vkCreateDevice` ([`prefix_len`]): the instance, the device and
//! the rings and reply streams Mesa set up exist. Each input then runs as one batch on the
//! context channel ([`venus_renderer::Context::replay_command`]) with a [`INPUT_DEADLINE`]
//! (blocking waits give up through the context's peer check), after which the bound queues
//! are drained. Any error just ends that context (it is rebuilt); the invariants are: no
//! panic, no abort, no hang, no unbounded allocation, in our code or in the driver below it.
//!
//! `VENUS_FUZZ_LAST=FILE`: each input is written there before it runs (a heap corruption can
//! deadlock libFuzzer's crash handler before it saves the artifact; `scripts/fuzz.sh` sets it).
//!
//! The seed corpus ([`corpus_inputs`]) is the recorded commands after the prefix, in windows.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Replayer;
use venus_protocol::CommandType;
use venus_renderer::record::{read_recording, Event, Recorded, RecordedChannel};
use venus_renderer::DispatchFactory;

/// How long one input may run before its blocking waits are cancelled.
pub const INPUT_DEADLINE: Duration = Duration::from_secs(2);
/// The most inputs one context serves (`VENUS_FUZZ_KEEP`, default 1, at most this).
pub const MAX_KEEP: u32 = 500;
/// Commands per seed input, and the most bytes.
const SEED_COMMANDS: usize = 24;
const SEED_BYTES: usize = 64 << 10;

/// The prefix recording: `VENUS_FUZZ_PREFIX`, else `fuzz/recordings/prefix.vrec` of this
/// source tree (what `scripts/fuzz.sh` writes).
pub fn prefix_path() -> PathBuf {
    std::env::var_os("VENUS_FUZZ_PREFIX").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../fuzz/recordings/prefix.vrec"
            ))
        },
        PathBuf::from,
    )
}

fn command_type(bytes: &[u8]) -> Option<CommandType> {
    let b = bytes.get(..4)?;
    Some(CommandType(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
}

/// The number of events up to and including the first successful `vkCreateDevice`.
pub fn prefix_len(events: &[Recorded]) -> Option<usize> {
    events
        .iter()
        .position(|e| match &e.event {
            Event::Command { bytes, error, .. } => {
                error.is_none() && command_type(bytes) == Some(CommandType::CREATE_DEVICE)
            }
            _ => false,
        })
        .map(|i| i + 1)
}

/// Seed inputs: the successful commands recorded after `cut`, concatenated in windows of
/// [`SEED_COMMANDS`] commands (at most [`SEED_BYTES`]), starting every half window.
pub fn corpus_inputs(events: &[Recorded], cut: usize) -> Vec<Vec<u8>> {
    let commands: Vec<&[u8]> = events
        .iter()
        .skip(cut)
        .filter_map(|e| match &e.event {
            Event::Command {
                bytes, error: None, ..
            } => Some(bytes.as_slice()),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    let mut start = 0;
    while start < commands.len() {
        let mut input = Vec::new();
        for c in commands.iter().skip(start).take(SEED_COMMANDS) {
            if input.len() + c.len() > SEED_BYTES {
                break;
            }
            input.extend_from_slice(c);
        }
        if !input.is_empty() {
            out.push(input);
        }
        start += SEED_COMMANDS / 2;
    }
    out
}

/// The harness (see the module doc).
pub struct Harness {
    factory: Arc<dyn DispatchFactory>,
    file: PathBuf,
    prefix: Vec<Recorded>,
    live: Option<Replayer>,
    runs: u32,
    keep: u32,
    last: Option<PathBuf>,
    deadline: Arc<Mutex<Instant>>,
}

impl Harness {
    /// Loads the prefix recording and the host driver (`VK_DRIVER_FILES` picks lavapipe).
    pub fn new(file: &Path) -> Result<Self, String> {
        let factory = venus_dispatch::VulkanFactory::new(venus_dispatch::DeviceSelector::parse(""))
            .map_err(|e| e.to_string())?;
        Self::with_factory(Arc::new(factory), file)
    }

    /// [`Harness::new`] over `factory`.
    pub fn with_factory(factory: Arc<dyn DispatchFactory>, file: &Path) -> Result<Self, String> {
        let events = read_recording(file).map_err(|e| e.to_string())?;
        let cut = prefix_len(&events)
            .ok_or_else(|| format!("{}: no vkCreateDevice recorded", file.display()))?;
        Ok(Self {
            factory,
            file: file.to_owned(),
            prefix: events[..cut].to_vec(),
            live: None,
            runs: 0,
            keep: std::env::var("VENUS_FUZZ_KEEP")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1u32)
                .clamp(1, MAX_KEEP),
            last: std::env::var_os("VENUS_FUZZ_LAST").map(PathBuf::from),
            deadline: Arc::new(Mutex::new(Instant::now())),
        })
    }

    fn replayer(&mut self) -> &mut Replayer {
        if self.live.is_none() {
            let first = &self.prefix[0];
            let mut r = Replayer::new(Arc::clone(&self.factory), &self.file, first)
                .unwrap_or_else(|e| panic!("dispatch harness: {e}"));
            // The prefix is a set-up: a stored reproducer's prefix recorded by an older server
            // replays although its replies (the extension list, ...) changed since.
            r.lenient_replies(true);
            for (i, e) in self.prefix.iter().enumerate() {
                if let Err(d) = r.apply(i, e) {
                    panic!("dispatch harness: the prefix does not replay: {d}");
                }
            }
            let deadline = Arc::clone(&self.deadline);
            r.context().set_peer_check(Arc::new(move || {
                Instant::now() > *deadline.lock().unwrap_or_else(|e| e.into_inner())
            }));
            self.live = Some(r);
            self.runs = 0;
        }
        self.live.as_mut().expect("just built")
    }

    /// Executes `input` (see the module doc); returns whether the context survived it.
    pub fn run(&mut self, input: &[u8]) -> bool {
        self.run_input(input).is_ok()
    }

    /// [`Harness::run`], with the error that ended the context.
    pub fn run_input(&mut self, input: &[u8]) -> Result<(), String> {
        if let Some(last) = &self.last {
            let _ = std::fs::write(last, input);
        }
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now() + INPUT_DEADLINE;
        let r = self.replayer();
        let result = r
            .context()
            .replay_command(RecordedChannel::Context, input)
            .map(drop)
            .map_err(|e| e.to_string());
        let _ = r.context().replay_quiesce(INPUT_DEADLINE);
        self.runs += 1;
        if result.is_err() || self.runs >= self.keep {
            self.live = None;
        }
        result
    }
}
