//! Real-application programs (`venus-compute`, `venus-render`, `venus-sync`,
//! `venus-coherence`), each run several ways:
//! - `native_*`: directly on lavapipe (`VK_DRIVER_FILES` = the lavapipe ICD);
//! - `venus_*`: through a fresh venus-server with Mesa's default feedback (no `VN_PERF`),
//!   as real applications run;
//! - `venus_*_no_feedback`: through venus-server with the feedback-off `VN_PERF`
//!   (compute and render only);
//! - the nine `venus_*` tests again in server variants, one module each:
//!   `page_16k::venus_*` (`--host-page-size 16384`, the Apple silicon profile) and
//!   `validation_layer::venus_*` (the server under `VK_LAYER_KHRONOS_validation`: no error or
//!   warning from the host calls but the one tolerated by name, see
//!   `venus_testapps::validation`);
//! - `sid_*`: compute and render from the Debian sid root's newer Mesa client
//!   (`venus_testapps::sid`) with its default feedback, and `venus-vk14` (Vulkan 1.4 core
//!   `vkCmdPushDescriptorSet` and `vkGetDeviceImageSubresourceLayout`, which needs the 1.4
//!   the Mesa 26 client gets at protocol level git-70991d4c), compared with its native run;
//!   `venus_vk14_is_refused_below_1_4`: the host's Mesa 25.0.7 client stays below 1.4.
//!
//! Each run must exit 0 and print its `... OK` line (the programs check their results
//! exactly on the CPU); the server must end the context with `live=0`; the rendered picture
//! through Venus must equal the native one byte for byte. Run one group with
//! `cargo test -p venus-testapps --test apps native_` (or `venus_`, `page_16k::`,
//! `validation_layer::`, `sid_`).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use venus_testapps::server::{wait_output, Released, Server, ServerOptions, TempDir};
use venus_testapps::sid::sid_client;
use venus_testapps::tools::{require, Tool, Tools};
use venus_testapps::validation;

const COMPUTE: &str = env!("CARGO_BIN_EXE_venus-compute");
const RENDER: &str = env!("CARGO_BIN_EXE_venus-render");
const SYNC: &str = env!("CARGO_BIN_EXE_venus-sync");
const COHERENCE: &str = env!("CARGO_BIN_EXE_venus-coherence");
const VK14: &str = env!("CARGO_BIN_EXE_venus-vk14");
const TIMEOUT: Duration = Duration::from_secs(300);
/// How long the end-of-context line may take after the program exited.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);
/// The Apple silicon page size.
const PAGE_16K: u64 = 16384;

/// Which server a Venus run gets.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Variant {
    Default,
    Page16k,
    Validation,
}

impl Variant {
    fn options(self) -> ServerOptions {
        ServerOptions {
            validation: self == Variant::Validation,
            host_page_size: (self == Variant::Page16k).then_some(PAGE_16K),
            ..ServerOptions::default()
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Native,
    /// The host's Mesa client, default feedback.
    Venus(Variant),
    /// The host's Mesa client, feedback off.
    VenusNoFeedback(Variant),
    /// The sid root's Mesa client, default feedback, default server.
    Sid,
}

impl Mode {
    fn variant(self) -> Option<Variant> {
        match self {
            Mode::Native => None,
            Mode::Venus(v) | Mode::VenusNoFeedback(v) => Some(v),
            Mode::Sid => Some(Variant::Default),
        }
    }
}

fn tools(test: &str, mode: Mode) -> Option<Tools> {
    let mut needed = vec![Tool::LavapipeIcd];
    match mode {
        Mode::Native => {}
        Mode::Sid => needed.push(Tool::SidRoot),
        _ => needed.push(Tool::VenusIcd),
    }
    if mode.variant() == Some(Variant::Validation) {
        needed.push(Tool::ValidationLayer);
    }
    require(test, &needed)
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

/// The program's command in `mode`, through `server` unless native.
fn command(tools: &Tools, mode: Mode, server: Option<&Server>, program: &str) -> Command {
    match (server, mode) {
        (Some(s), Mode::Venus(_)) => s.venus_client_feedback(program),
        (Some(s), Mode::VenusNoFeedback(_)) => s.venus_client(program),
        (Some(s), Mode::Sid) => {
            let mut c = sid_client(s, tools.sid_root(), program);
            c.env_remove("VN_PERF");
            c
        }
        _ => native(tools, program),
    }
}

/// Runs `program args` in `mode` (a fresh server for the Venus modes) and asserts it
/// succeeded and printed a line starting with each of `expect`, then [`check_server`].
/// Returns its output.
fn run(tools: &Tools, mode: Mode, program: &str, args: &[&str], expect: &[&str]) -> Output {
    let server = mode.variant().map(|v| Server::start(tools, &v.options()));
    let child = command(tools, mode, server.as_ref(), program)
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
        check_server(s, mode, &what);
    }
    out
}

/// After the program's run: the server released every host object of its context, and
/// under the validation layer, the layer ran and reported nothing serious.
fn check_server(server: Server, mode: Mode, what: &str) {
    let released = server
        .try_wait_line(RELEASE_TIMEOUT, |l| Released::parse(l).is_some())
        .and_then(|l| Released::parse(&l.text));
    let (log, report) = server.stop_with_stdout();
    let r = released.unwrap_or_else(|| panic!("{what}: no `host objects released` line:\n{log}"));
    assert!(
        r.live == 0 && r.created == r.destroyed,
        "{what}: the server did not release every host object: {r:?}\n{log}"
    );
    if mode.variant() != Some(Variant::Validation) {
        return;
    }
    let findings = validation::check(&report);
    eprintln!(
        "{what}: validation layer: {} message(s), {} tolerated (layer too old), {} problem(s)",
        findings.messages,
        findings.tolerated,
        findings.problems.len()
    );
    assert!(
        findings.ran,
        "{what}: the validation layer did not run on the server; its stdout:\n{report}"
    );
    assert!(
        findings.problems.is_empty(),
        "{what}: {} validation error(s)/warning(s) on the host side, by id:\n{}",
        findings.problems.len(),
        validation::summary(&findings.problems)
    );
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
fn native_render() {
    render("native_render", Mode::Native);
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
fn native_sync_threads() {
    sync("native_sync_threads", Mode::Native, "threads", "threads OK");
}

#[test]
fn native_sync_events() {
    sync("native_sync_events", Mode::Native, "events", "events OK");
}

#[test]
fn native_sync_queries() {
    sync("native_sync_queries", Mode::Native, "queries", "queries OK");
}

#[test]
fn native_coherence() {
    coherence("native_coherence", Mode::Native);
}

/// The test's name as `cargo test` prints it, with the test binary's name before it.
macro_rules! test_name {
    ($name:ident) => {
        concat!(module_path!(), "::", stringify!($name))
    };
}

/// The nine `venus_*` tests against the server of `$variant`.
macro_rules! venus_tests {
    ($variant:expr) => {
        #[test]
        fn venus_compute() {
            compute(test_name!(venus_compute), Mode::Venus($variant));
        }

        #[test]
        fn venus_compute_no_feedback() {
            let test = test_name!(venus_compute_no_feedback);
            compute(test, Mode::VenusNoFeedback($variant));
        }

        #[test]
        fn venus_render_matches_native() {
            let test = test_name!(venus_render_matches_native);
            render(test, Mode::Venus($variant));
        }

        #[test]
        fn venus_render_no_feedback_matches_native() {
            let test = test_name!(venus_render_no_feedback_matches_native);
            render(test, Mode::VenusNoFeedback($variant));
        }

        #[test]
        fn venus_sync_timeline() {
            let test = test_name!(venus_sync_timeline);
            sync(test, Mode::Venus($variant), "timeline", "timeline OK");
        }

        #[test]
        fn venus_sync_threads() {
            let test = test_name!(venus_sync_threads);
            sync(test, Mode::Venus($variant), "threads", "threads OK");
        }

        #[test]
        fn venus_sync_events() {
            let test = test_name!(venus_sync_events);
            sync(test, Mode::Venus($variant), "events", "events OK");
        }

        #[test]
        fn venus_sync_queries() {
            let test = test_name!(venus_sync_queries);
            sync(test, Mode::Venus($variant), "queries", "queries OK");
        }

        #[test]
        fn venus_coherence() {
            coherence(test_name!(venus_coherence), Mode::Venus($variant));
        }
    };
}

venus_tests!(Variant::Default);

/// The server rounds shared memory to 16 KiB pages (`--host-page-size 16384`).
mod page_16k {
    use super::*;
    venus_tests!(Variant::Page16k);
}

/// The server runs under `VK_LAYER_KHRONOS_validation`.
mod validation_layer {
    use super::*;
    venus_tests!(Variant::Validation);
}

#[test]
fn sid_compute() {
    compute("sid_compute", Mode::Sid);
}

#[test]
fn sid_render_matches_native() {
    render("sid_render_matches_native", Mode::Sid);
}

/// The `image_layout OK ...` line of a `venus-vk14` run.
fn image_layout_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("image_layout OK"))
        .unwrap_or_default()
        .to_string()
}

const VK14_LINES: [&str; 3] = ["api 1.4.", "push_descriptor OK n=65536", "image_layout OK"];

#[test]
fn native_vk14() {
    let Some(tools) = tools("native_vk14", Mode::Native) else {
        return;
    };
    let out = run(&tools, Mode::Native, VK14, &[], &VK14_LINES);
    eprintln!(
        "native_vk14: {}",
        String::from_utf8_lossy(&out.stdout).trim()
    );
}

/// Vulkan 1.4 core features through the Mesa 26.2.6 client; the image layout the host
/// driver computes must be the one it computes natively.
#[test]
fn sid_vk14_matches_native() {
    let test = "sid_vk14_matches_native";
    let Some(tools) = tools(test, Mode::Sid) else {
        return;
    };
    let native = run(&tools, Mode::Native, VK14, &[], &VK14_LINES);
    let sid = run(&tools, Mode::Sid, VK14, &[], &VK14_LINES);
    assert_eq!(
        image_layout_line(&sid),
        image_layout_line(&native),
        "{test}: vkGetDeviceImageSubresourceLayout through Venus differs from native"
    );
    eprintln!("{test}: {}", String::from_utf8_lossy(&sid.stdout).trim());
}

/// The Mesa 25.0.7 client clamps to its own level (vk.xml 1.3.269: it reports 1.3.269 here):
/// `venus-vk14` must refuse to run, not pass.
#[test]
fn venus_vk14_is_refused_below_1_4() {
    let test = "venus_vk14_is_refused_below_1_4";
    let mode = Mode::Venus(Variant::Default);
    let Some(tools) = tools(test, mode) else {
        return;
    };
    let server = Server::start(&tools, &ServerOptions::default());
    let child = command(&tools, mode, Some(&server), VK14)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning venus-vk14");
    let out = wait_output(child, TIMEOUT, "venus-vk14 (Mesa 25.0.7 client)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("is below 1.4"),
        "{test}: want exit 1 with `is below 1.4`, got {}:\n{stderr}",
        out.status
    );
    eprintln!("{test}: {}", String::from_utf8_lossy(&out.stdout).trim());
    check_server(server, mode, test);
}

#[test]
fn host_page_size_must_be_a_power_of_two() {
    let test = "host_page_size_must_be_a_power_of_two";
    let Some(tools) = require(test, &[Tool::LavapipeIcd]) else {
        return;
    };
    let options = ServerOptions {
        host_page_size: Some(1000),
        ..ServerOptions::default()
    };
    let failure = match Server::try_start(&tools, &options) {
        Ok(server) => panic!(
            "venus-server accepted --host-page-size 1000; log:\n{}",
            server.stop()
        ),
        Err(f) => f,
    };
    let page = rustix::param::page_size();
    let want = format!("1000 is not a power of two of at least the real page size ({page})");
    assert!(
        !failure.status.success()
            && failure.stderr.contains("--host-page-size")
            && failure.stderr.contains(&want),
        "want a failure naming --host-page-size and saying {want:?}; got {}:\n{}",
        failure.status,
        failure.stderr
    );
}
