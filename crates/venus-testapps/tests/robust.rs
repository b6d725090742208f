//! Robust buffer access forced on the host device (docs/robustness.md), through stock Mesa's
//! Venus client and venus-server on lavapipe:
//!
//! - `venus_out_of_range_accesses_are_contained`: `venus-compute robust` (a compute shader that
//!   writes and reads a 4 KiB storage buffer 1 GiB and 12 GiB past its start; the client does
//!   not enable robustBufferAccess) runs twice on one device, then a SAXPY on the same device:
//!   the in-range results are exact, the out-of-range reads gave 0 or a value of the buffer,
//!   the server logs one `robust access` line for the device naming every feature lavapipe
//!   has, stays up and releases every object;
//! - `sid_out_of_range_accesses_are_contained`: the same from the Debian sid root's Mesa
//!   26.2.6 client (Vulkan 1.4: its device creation chains the 1.x feature structs);
//! - `validation_layer_sees_no_error_in_the_robust_device`: the same under
//!   `VK_LAYER_KHRONOS_validation` on the server (the edited VkDeviceCreateInfo chain is valid);
//! - `no_robust_access_flag_turns_it_off`: with `--no-robust-access` the device is created
//!   as the client asked (one `robust access off` line, no `enabled=` line) and in-range work
//!   still runs;
//! - `doctor_names_the_robust_features`: `venus-server --doctor` prints what a device gets.

use std::process::{Command, Stdio};
use std::time::Duration;

use venus_testapps::server::{server_binary, wait_output, Released, Server, ServerOptions};
use venus_testapps::sid::sid_client;
use venus_testapps::tools::{require, Tool, Tools};
use venus_testapps::validation;

const COMPUTE: &str = env!("CARGO_BIN_EXE_venus-compute");
const TIMEOUT: Duration = Duration::from_secs(300);
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

/// What lavapipe supports and the server must have enabled (its robustness2 extension is the
/// EXT one in Mesa 25.0.7, the KHR one in newer drivers).
const LAVAPIPE_ENABLED: &str =
    "enabled=robustBufferAccess robustImageAccess robustBufferAccess2 robustImageAccess2";

/// Runs `venus-compute args` through `server` (with the sid root's client if `sid`); asserts
/// success and each `expect` line start; returns stdout.
fn run_compute(server: &Server, sid: Option<&Tools>, args: &[&str], expect: &[&str]) -> String {
    let mut command = match sid {
        Some(tools) => sid_client(server, tools.sid_root(), COMPUTE),
        None => server.venus_client_feedback(COMPUTE),
    };
    let child = command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning venus-compute");
    let what = format!("venus-compute {}", args.join(" "));
    let out = wait_output(child, TIMEOUT, &what);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let missing: Vec<&&str> = expect
        .iter()
        .filter(|e| !stdout.lines().any(|l| l.starts_with(**e)))
        .collect();
    assert!(
        out.status.success() && missing.is_empty(),
        "{what} failed ({}; missing {missing:?})\nstdout:\n{stdout}\nstderr:\n{}\nserver log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    stdout
}

/// The `robust access` lines the server logged (one per device).
fn robust_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("venus_dispatch::device: robust access"))
        .map(str::to_owned)
        .collect()
}

/// Waits for the context's release line (every object gone) and stops the server; returns
/// its log and stdout.
fn finish(mut server: Server, test: &str) -> (String, String) {
    let released = server
        .try_wait_line(RELEASE_TIMEOUT, |l| Released::parse(l).is_some())
        .and_then(|l| Released::parse(&l.text));
    server.assert_alive(test);
    let (log, stdout) = server.stop_with_stdout();
    let r = released.unwrap_or_else(|| panic!("{test}: no `host objects released` line:\n{log}"));
    assert!(
        r.live == 0 && r.created == r.destroyed,
        "{test}: not every host object was released: {r:?}\n{log}"
    );
    (log, stdout)
}

fn out_of_range(test: &str, tools: &Tools, options: &ServerOptions, sid: bool) -> (String, String) {
    let server = Server::start(tools, options);
    let stdout = run_compute(
        &server,
        sid.then_some(tools),
        &["robust", "--n", "4096", "--reps", "2"],
        &["robust OK n=1024 oob_reads=2048 ", "saxpy OK n=4096 reps=1"],
    );
    eprintln!("{test}: {}", stdout.trim());
    let (log, report) = finish(server, test);
    let lines = robust_lines(&log);
    assert_eq!(
        lines.len(),
        1,
        "{test}: one `robust access` line per device:\n{log}"
    );
    assert!(
        lines[0].contains(LAVAPIPE_ENABLED) && lines[0].contains("robustness2"),
        "{test}: want {LAVAPIPE_ENABLED:?} and the robustness2 extension added in:\n{}",
        lines[0]
    );
    assert!(
        !log.contains(" ERROR ") && !log.contains("context lost"),
        "{test}: the context must survive:\n{log}"
    );
    (log, report)
}

#[test]
fn venus_out_of_range_accesses_are_contained() {
    let test = "venus_out_of_range_accesses_are_contained";
    let Some(tools) = require(test, &[Tool::LavapipeIcd, Tool::VenusIcd]) else {
        return;
    };
    out_of_range(test, &tools, &ServerOptions::default(), false);
}

#[test]
fn sid_out_of_range_accesses_are_contained() {
    let test = "sid_out_of_range_accesses_are_contained";
    let Some(tools) = require(test, &[Tool::LavapipeIcd, Tool::SidRoot]) else {
        return;
    };
    out_of_range(test, &tools, &ServerOptions::default(), true);
}

#[test]
fn validation_layer_sees_no_error_in_the_robust_device() {
    let test = "validation_layer_sees_no_error_in_the_robust_device";
    let needed = [Tool::LavapipeIcd, Tool::VenusIcd, Tool::ValidationLayer];
    let Some(tools) = require(test, &needed) else {
        return;
    };
    let options = ServerOptions {
        validation: true,
        ..ServerOptions::default()
    };
    let (_, report) = out_of_range(test, &tools, &options, false);
    let findings = validation::assert_clean(test, &report);
    eprintln!(
        "{test}: {} message(s), {} tolerated, 0 problems",
        findings.messages, findings.tolerated
    );
}

#[test]
fn no_robust_access_flag_turns_it_off() {
    let test = "no_robust_access_flag_turns_it_off";
    let Some(tools) = require(test, &[Tool::LavapipeIcd, Tool::VenusIcd]) else {
        return;
    };
    let options = ServerOptions {
        args: vec!["--no-robust-access".into()],
        ..ServerOptions::default()
    };
    let server = Server::start(&tools, &options);
    run_compute(
        &server,
        None,
        &["saxpy", "--n", "4096", "--reps", "1"],
        &["saxpy OK n=4096"],
    );
    let (log, _) = finish(server, test);
    let lines = robust_lines(&log);
    assert_eq!(
        lines.len(),
        1,
        "{test}: one `robust access` line per device:\n{log}"
    );
    assert!(
        lines[0].contains("robust access off") && !lines[0].contains("enabled="),
        "{test}: want `robust access off`, got:\n{}",
        lines[0]
    );
    assert!(
        log.contains("robust_access: false"),
        "{test}: the effective limits show it:\n{log}"
    );
}

#[test]
fn doctor_names_the_robust_features() {
    let test = "doctor_names_the_robust_features";
    let Some(tools) = require(test, &[Tool::LavapipeIcd]) else {
        return;
    };
    let child = Command::new(server_binary())
        .arg("--doctor")
        .env("VK_DRIVER_FILES", tools.lavapipe_icd())
        .env_remove("VK_ICD_FILENAMES")
        .env_remove("VK_INSTANCE_LAYERS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("venus-server --doctor");
    let out = wait_output(child, TIMEOUT, "venus-server --doctor");
    let report = String::from_utf8_lossy(&out.stdout);
    let want = "  robust access (unless --no-robust-access): robustBufferAccess robustImageAccess \
                robustBufferAccess2 robustImageAccess2 +VK_EXT_image_robustness +VK_";
    assert!(
        out.status.success() && report.lines().any(|l| l.starts_with(want)),
        "{test}: want a line starting {want:?}; got {}:\n{report}",
        out.status
    );
}
