//! Real-application programs (`venus-compute`, `venus-render`, `venus-sync`,
//! `venus-coherence`), each run three ways:
//! - `native_*`: directly on lavapipe (`VK_DRIVER_FILES` = the lavapipe ICD);
//! - `venus_*`: through a fresh venus-server with Mesa's default feedback (no `VN_PERF`),
//!   as real applications run;
//! - `venus_*_no_feedback`: through venus-server with the feedback-off `VN_PERF`
//!   (compute and render only).
//!
//! Each run must exit 0 and print its `... OK` line (the programs check their results
//! exactly on the CPU); the rendered picture through Venus must equal the native one byte
//! for byte. Run one group with `cargo test -p venus-testapps --test apps native_` (or
//! `venus_`).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use venus_testapps::server::{wait_output, Server, ServerOptions, TempDir};
use venus_testapps::tools::{require, Tool, Tools};

const COMPUTE: &str = env!("CARGO_BIN_EXE_venus-compute");
const RENDER: &str = env!("CARGO_BIN_EXE_venus-render");
const SYNC: &str = env!("CARGO_BIN_EXE_venus-sync");
const COHERENCE: &str = env!("CARGO_BIN_EXE_venus-coherence");
const TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Native,
    Venus,
    VenusNoFeedback,
}

fn tools(test: &str, mode: Mode) -> Option<Tools> {
    let needed: &[Tool] = match mode {
        Mode::Native => &[Tool::LavapipeIcd],
        _ => &[Tool::LavapipeIcd, Tool::VenusIcd],
    };
    require(test, needed)
}

/// The program's command on lavapipe directly.
fn native(tools: &Tools, program: &str) -> Command {
    let mut c = Command::new(program);
    c.env("VK_DRIVER_FILES", tools.lavapipe_icd())
        .env_remove("VK_ICD_FILENAMES")
        .env_remove("VK_ADD_DRIVER_FILES")
        .env_remove("VK_INSTANCE_LAYERS")
        .env_remove("VK_LOADER_LAYERS_ENABLE")
        .env_remove("VN_PERF")
        .stdin(Stdio::null());
    c
}

/// Runs `program args` in `mode` (a fresh server for the Venus modes) and asserts it
/// succeeded and printed a line starting with each of `expect`. Returns its output.
fn run(tools: &Tools, mode: Mode, program: &str, args: &[&str], expect: &[&str]) -> Output {
    let server = (mode != Mode::Native).then(|| Server::start(tools, &ServerOptions::default()));
    let mut command = match (&server, mode) {
        (Some(s), Mode::Venus) => s.venus_client_feedback(program),
        (Some(s), _) => s.venus_client(program),
        (None, _) => native(tools, program),
    };
    let child = command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {program}: {e}"));
    let what = format!("{} {} ({mode:?})", name(program), args.join(" "));
    let out = wait_output(child, TIMEOUT, &what);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<&&str> = expect
        .iter()
        .filter(|e| !stdout.lines().any(|l| l.starts_with(**e)))
        .collect();
    if !out.status.success() || !missing.is_empty() {
        let log = server.as_ref().map(|s| s.log_text()).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        panic!(
            "{what} failed ({}; missing lines {missing:?})\nstdout:\n{stdout}\nstderr:\n{}\n\
             server log (last 40 lines, newest first):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            tail.join("\n")
        );
    }
    if let Some(s) = server {
        s.stop();
    }
    out
}

fn name(program: &str) -> &str {
    Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(program)
}

fn compute(test: &str, mode: Mode) {
    let Some(tools) = tools(test, mode) else {
        return;
    };
    let out = run(
        &tools,
        mode,
        COMPUTE,
        &["--reps", "1"],
        &["saxpy OK n=16777216", "scan OK n=16777216"],
    );
    eprintln!("{test}: {}", String::from_utf8_lossy(&out.stdout).trim());
}

/// Renders in `mode` and natively, and compares the pictures byte for byte.
fn render(test: &str, mode: Mode) {
    let Some(tools) = tools(test, mode) else {
        return;
    };
    let dir = TempDir::new("render");
    let picture = |mode: Mode, file: &str| {
        let path = dir.0.join(file);
        let p = path.to_str().unwrap();
        run(&tools, mode, RENDER, &[p, "--frames", "2"], &["render OK"]);
        std::fs::read(&path).unwrap_or_else(|e| panic!("reading {p}: {e}"))
    };
    let got = picture(mode, "picture.rgba");
    assert_eq!(got.len(), 256 * 256 * 4, "{test}: picture size");
    if mode == Mode::Native {
        return;
    }
    let want = picture(Mode::Native, "native.rgba");
    let first = got.iter().zip(&want).position(|(a, b)| a != b);
    assert!(
        first.is_none(),
        "{test}: the picture through Venus differs from the native one: first at byte {:?} \
         (pixel {:?})",
        first,
        first.map(|i| (i / 4 % 256, i / 4 / 256))
    );
}

fn sync(test: &str, mode: Mode, part: &str, expect: &str) {
    let Some(tools) = tools(test, mode) else {
        return;
    };
    let out = run(&tools, mode, SYNC, &[part], &[expect]);
    eprintln!("{test}: {}", String::from_utf8_lossy(&out.stdout).trim());
}

fn coherence(test: &str, mode: Mode) {
    let Some(tools) = tools(test, mode) else {
        return;
    };
    let out = run(&tools, mode, COHERENCE, &["check"], &["coherence OK"]);
    eprintln!("{test}: {}", String::from_utf8_lossy(&out.stdout).trim());
}

#[test]
fn native_compute() {
    compute("native_compute", Mode::Native);
}

#[test]
fn venus_compute() {
    compute("venus_compute", Mode::Venus);
}

#[test]
fn venus_compute_no_feedback() {
    compute("venus_compute_no_feedback", Mode::VenusNoFeedback);
}

#[test]
fn native_render() {
    render("native_render", Mode::Native);
}

#[test]
fn venus_render_matches_native() {
    render("venus_render_matches_native", Mode::Venus);
}

#[test]
fn venus_render_no_feedback_matches_native() {
    render(
        "venus_render_no_feedback_matches_native",
        Mode::VenusNoFeedback,
    );
}

#[test]
fn native_sync_timeline() {
    sync(
        "native_sync_timeline",
        Mode::Native,
        "timeline",
        "timeline OK",
    );
}

#[test]
fn venus_sync_timeline() {
    sync(
        "venus_sync_timeline",
        Mode::Venus,
        "timeline",
        "timeline OK",
    );
}

#[test]
fn native_sync_threads() {
    sync("native_sync_threads", Mode::Native, "threads", "threads OK");
}

#[test]
fn venus_sync_threads() {
    sync("venus_sync_threads", Mode::Venus, "threads", "threads OK");
}

#[test]
fn native_sync_events() {
    sync("native_sync_events", Mode::Native, "events", "events OK");
}

#[test]
fn venus_sync_events() {
    sync("venus_sync_events", Mode::Venus, "events", "events OK");
}

#[test]
fn native_sync_queries() {
    sync("native_sync_queries", Mode::Native, "queries", "queries OK");
}

#[test]
fn venus_sync_queries() {
    sync("venus_sync_queries", Mode::Venus, "queries", "queries OK");
}

#[test]
fn native_coherence() {
    coherence("native_coherence", Mode::Native);
}

#[test]
fn venus_coherence() {
    coherence("venus_coherence", Mode::Venus);
}
