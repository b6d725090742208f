//! Record / replay: `venus-render` runs through `venus-server --record DIR` (with Mesa's
//! default feedback, as real applications run), then `venus-replay DIR` replays the recording
//! on lavapipe without the client: it must exit 0, and the final contents of one of the
//! replayed blobs (the read-back buffer) must start with exactly the picture the program wrote.
//! Then one byte of one recorded command is changed: the replay must exit 1 with a message
//! naming that event's position.
//!
//! Needs `venus-server` and `venus-replay` built (`cargo build -p venus-server -p
//! venus-replay`; `cargo test --workspace` builds both).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use venus_renderer::record::{read_recording, Event, RecordedChannel};
use venus_testapps::server::{wait_output, Released, Server, ServerOptions, TempDir};
use venus_testapps::tools::{require, Tool, Tools};

const RENDER: &str = env!("CARGO_BIN_EXE_venus-render");
const TIMEOUT: Duration = Duration::from_secs(300);
/// The picture: 256×256 RGBA8.
const PICTURE_BYTES: usize = 256 * 256 * 4;
/// Byte offset of a command's bytes in a command event: event header (kind + 3 padding,
/// u64 seq, u32 payload length) + channel kind (u8) + ring id (u64) + ring index (u32) +
/// byte count (u32). `docs/recording.md` has the layout.
const COMMAND_BYTES_AT: u64 = 16 + 1 + 8 + 4 + 4;

/// `venus-replay`, next to `venus-server` (`VENUS_REPLAY_BIN` overrides).
fn replay_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("VENUS_REPLAY_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .skip(1)
        .take(3)
        .map(|d| d.join("venus-replay"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("venus-replay is not built: run `cargo build -p venus-replay`"))
}

fn replay(tools: &Tools, args: &[&Path]) -> Output {
    let child = Command::new(replay_binary())
        .args(args)
        .env("VK_DRIVER_FILES", tools.lavapipe_icd())
        .env_remove("VK_ICD_FILENAMES")
        .env_remove("VK_INSTANCE_LAYERS")
        .env("VENUS_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning venus-replay");
    wait_output(child, TIMEOUT, "venus-replay")
}

/// Runs venus-render through a recording server; returns the picture it wrote.
fn record(tools: &Tools, dir: &Path) -> Vec<u8> {
    let rec = dir.join("rec");
    let options = ServerOptions {
        args: vec!["--record".into(), rec.to_str().unwrap().into()],
        ..ServerOptions::default()
    };
    let server = Server::start(tools, &options);
    let picture = dir.join("picture.rgba");
    let child = server
        .venus_client_feedback(RENDER)
        .arg(&picture)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning venus-render");
    let out = wait_output(child, TIMEOUT, "venus-render");
    assert!(
        out.status.success(),
        "venus-render failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The recording is complete once the context is gone.
    let released = server.try_wait_line(Duration::from_secs(10), |l| Released::parse(l).is_some());
    let log = server.stop();
    assert!(released.is_some(), "the context did not end:\n{log}");
    std::fs::read(&picture).expect("the picture")
}

/// The first ring command event of `file` whose command is `vkCreateBuffer`: (event number,
/// seq, file offset).
fn first_create_buffer(file: &Path) -> (usize, u64, u64) {
    let events = read_recording(file).expect("reading the recording");
    events
        .iter()
        .enumerate()
        .find_map(|(i, e)| match &e.event {
            Event::Command {
                channel: RecordedChannel::Ring { .. },
                bytes,
                error: None,
                ..
            } if bytes.get(..4) == Some(&12i32.to_le_bytes()[..]) => Some((i, e.seq, e.offset)),
            _ => None,
        })
        .expect("a recorded vkCreateBuffer (command id 12) on a ring")
}

#[test]
fn render_replays_identically_and_tampering_is_reported() {
    let test = "render_replays_identically_and_tampering_is_reported";
    let Some(tools) = require(test, &[Tool::LavapipeIcd, Tool::VenusIcd]) else {
        return;
    };
    let dir = TempDir::new("record");
    let picture = record(&tools, &dir.0);
    assert_eq!(picture.len(), PICTURE_BYTES);
    let rec = dir.0.join("rec");
    let file = rec.join("ctx-1.vrec");
    assert!(file.is_file(), "no recording at {}", file.display());

    // 1. Replay: exit 0, and the read-back blob holds the picture.
    let dumps = dir.0.join("dump");
    let out = replay(&tools, &[&rec, Path::new("--dump-dir"), &dumps]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(": identical"),
        "replay failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    eprintln!("{test}: {}", stdout.trim());
    let mut matching = Vec::new();
    for entry in std::fs::read_dir(&dumps).expect("dump dir") {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        if bytes.len() >= PICTURE_BYTES && bytes[..PICTURE_BYTES] == picture[..] {
            matching.push(path);
        }
    }
    assert_eq!(
        matching.len(),
        1,
        "exactly one replayed blob must start with the picture venus-render wrote: {matching:?}"
    );

    // 2. One byte of a recorded vkCreateBuffer changed (its command id becomes unknown).
    let (index, seq, offset) = first_create_buffer(&file);
    let mut data = std::fs::read(&file).unwrap();
    let at = (offset + COMMAND_BYTES_AT + 1) as usize;
    data[at] ^= 0x7f;
    let tampered = dir.0.join("tampered.vrec");
    std::fs::write(&tampered, &data).unwrap();
    let out = replay(&tools, &[&tampered]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "tampered replay: {stderr}");
    let position = format!("event #{index} (seq {seq}, file byte {offset})");
    assert!(
        stderr.contains("divergence") && stderr.contains(&position),
        "the message must name {position}: {stderr}"
    );
    assert!(
        stderr.contains("succeeded when recorded, fails on replay")
            && stderr.contains("undecodable command"),
        "{stderr}"
    );
    eprintln!("{test}: tampered: {}", stderr.trim());
}

/// Every `fuzz/regressions/dispatch_lavapipe/NAME.input` (an input the `dispatch_lavapipe` fuzz
/// target crashed on) runs through `venus-replay NAME.prefix.vrec --run-input NAME.input`: after
/// the set-up it was found with (a `venus-compute` recording cut after `vkCreateDevice`; the
/// input names its object ids). It must end cleanly: exit 0 with its context lost (the invalid
/// command refused before the driver), never by a signal.
#[test]
fn fuzz_regressions_end_cleanly() {
    let test = "fuzz_regressions_end_cleanly";
    let Some(tools) = require(test, &[Tool::LavapipeIcd]) else {
        return;
    };
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/dispatch_lavapipe");
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fuzz/regressions/dispatch_lavapipe")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "input"))
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty());
    let mut failures = Vec::new();
    for input in &inputs {
        let prefix = input.with_extension("prefix.vrec");
        let out = replay(&tools, &[&prefix, Path::new("--run-input"), input]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Each finding is invalid usage: refused before the driver, ending only its context.
        let lost = text
            .lines()
            .find(|l| l.starts_with(&format!("{}: context lost: ", input.display())));
        eprintln!("{test}: {}", lost.unwrap_or("(no context-lost line)"));
        if !out.status.success() || lost.is_none() {
            failures.push(format!(
                "{}: venus-replay --run-input ended with {}:\n{}{}",
                input.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
