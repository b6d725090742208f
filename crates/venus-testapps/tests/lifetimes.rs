//! Object lifetimes through the real Mesa Venus client: `venus-lifetimes` creates objects of
//! many kinds through a fresh venus-server (itself under the Khronos validation layer) and
//! then destroys only the device, exits without destroying anything, is SIGKILLed, or
//! cleans up properly. In every case the server must release every host object of the
//! context (`host objects released ... live=0`, `created == destroyed >=` what the program
//! created), the layer must report no leaked object, and the server must still serve a
//! `vulkaninfo --summary`.
//!
//! And `venus-sync submit-loop`, SIGKILLed while it keeps submissions queued: the server
//! releases every host object of its context, keeps serving (`vulkaninfo`, `venus-compute`),
//! and its thread and open descriptor counts return to what they were before.

use std::process::Stdio;
use std::time::{Duration, Instant};

use venus_testapps::server::{context_of, wait_output, Program, Released, Server, ServerOptions};
use venus_testapps::tools::{require, Tool};

const PROGRAM: &str = env!("CARGO_BIN_EXE_venus-lifetimes");
const TIMEOUT: Duration = Duration::from_secs(60);
/// How long the end-of-context lines may take after the client is gone.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the validation layer says about objects alive at vkDestroyDevice/vkDestroyInstance.
const LEAK_MESSAGES: &[&str] = &[
    "VUID-vkDestroyDevice-device-05137",
    "VUID-vkDestroyDevice-device-00378",
    "VUID-vkDestroyInstance-instance-00629",
    "has not been destroyed",
    "OBJ ERROR",
];

#[derive(Clone, Copy, PartialEq)]
enum End {
    DestroyDevice,
    Exit,
    Kill,
    Clean,
}

fn lifetime_case(test: &str, end: End) {
    let Some(tools) = require(
        test,
        &[
            Tool::Vulkaninfo,
            Tool::VenusIcd,
            Tool::LavapipeIcd,
            Tool::ValidationLayer,
        ],
    ) else {
        return;
    };
    let options = ServerOptions {
        validation: true,
        ..Default::default()
    };
    let mut server = Server::start(&tools, &options);
    let mode = match end {
        End::DestroyDevice => "destroy-device",
        End::Exit => "exit",
        End::Kill => "hang",
        End::Clean => "clean",
    };
    let mut command = server.venus_client(PROGRAM);
    command.arg(mode);
    let mut program = Program::spawn(command, &format!("venus-lifetimes {mode}"));
    let created = program.wait_for_line("created ", TIMEOUT);
    let count: u64 = created
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad line {created:?}"));
    if end == End::Kill {
        program.wait_for_line("READY", TIMEOUT);
        program.kill();
    } else {
        let (status, _) = program.wait_exit(TIMEOUT);
        assert!(
            status.success(),
            "venus-lifetimes {mode} failed ({status}); stderr:\n{}",
            program.stderr_text()
        );
    }

    let ctx = context_of(&server.log_lines(), "venus-lifetimes").unwrap_or_else(|| {
        panic!(
            "no context for venus-lifetimes; log:\n{}",
            server.log_text()
        )
    });
    let ctx_field = format!("ctx={ctx}");
    let is_ctx = |l: &str| l.split_whitespace().any(|w| w == ctx_field);
    server.wait_line("`context destroyed` for the client", RELEASE_TIMEOUT, |l| {
        l.contains("context destroyed") && is_ctx(l)
    });
    // Every check runs; the test fails at the end with all that went wrong.
    let mut failures = Vec::new();
    let released = server.try_wait_line(RELEASE_TIMEOUT, |l| {
        l.contains("host objects released") && is_ctx(l)
    });
    match released.as_ref().map(|l| (l, Released::parse(&l.text))) {
        None => failures.push(format!("no `host objects released` line with {ctx_field}")),
        Some((l, None)) => failures.push(format!("unparsable release line: {}", l.text)),
        Some((l, Some(r))) => {
            eprintln!("{test}: program created {count}; server: {r:?}");
            if r.live != 0 || r.created != r.destroyed || r.created < count {
                failures.push(format!(
                    "want live=0 and created == destroyed >= {count} (what the program \
                     created): {}",
                    l.text
                ));
            }
        }
    }
    failures.extend(leak_reports(&server));
    server.assert_alive(&format!("after venus-lifetimes {mode}"));
    server.assert_vulkaninfo_works(&format!("after venus-lifetimes {mode}"));
    let log = server.stop();
    assert!(
        failures.is_empty(),
        "{test}:\n- {}\nserver log:\n{log}",
        failures.join("\n- ")
    );
}

/// What is wrong in the validation layer's report: it did not run (it reports each
/// instance it validates), or it reported leaked objects.
fn leak_reports(server: &Server) -> Vec<String> {
    // Its messages arrive on the server's stdout; give the pipe a moment.
    std::thread::sleep(Duration::from_millis(200));
    let report = server.stdout_text();
    if !report.contains("createinstance-status-message") {
        return vec![format!(
            "the validation layer did not run on the server; its stdout:\n{report}"
        )];
    }
    let errors = report.matches("Validation Error:").count();
    eprintln!("validation layer: {errors} error message(s) in all");
    // One short line per leaked object: "VkBuffer 0x...[] has not been destroyed".
    let leaks: Vec<&str> = report
        .lines()
        .filter(|l| LEAK_MESSAGES.iter().any(|m| l.contains(m)))
        .map(
            |l| match (l.find("OBJ ERROR : "), l.find(" has not been destroyed")) {
                (Some(a), Some(b)) if a < b => l[a + 12..b + 23].split("], ").last().unwrap_or(l),
                _ => l,
            },
        )
        .collect();
    if leaks.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "the validation layer reports {} leaked-object line(s):\n{}",
        leaks.len(),
        leaks.join("\n")
    )]
}

#[test]
fn destroy_device_with_live_children_releases_everything() {
    lifetime_case(
        "destroy_device_with_live_children_releases_everything",
        End::DestroyDevice,
    );
}

#[test]
fn exit_without_destroying_releases_everything() {
    lifetime_case("exit_without_destroying_releases_everything", End::Exit);
}

#[test]
fn sigkill_releases_everything() {
    lifetime_case("sigkill_releases_everything", End::Kill);
}

#[test]
fn clean_destruction_releases_everything() {
    lifetime_case("clean_destruction_releases_everything", End::Clean);
}

/// The server's (threads, open descriptors), polled until they equal `want` (at most
/// [`RELEASE_TIMEOUT`]); returns the last values seen.
fn settle(server: &Server, want: (usize, usize)) -> (usize, usize) {
    let deadline = Instant::now() + RELEASE_TIMEOUT;
    loop {
        let now = (server.thread_count(), server.fd_count());
        if now == want || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `host objects released` line of the context of the client named `name`.
fn released_of(server: &Server, name: &str) -> Released {
    let ctx = context_of(&server.log_lines(), name)
        .unwrap_or_else(|| panic!("no context for {name}; log:\n{}", server.log_text()));
    let ctx_field = format!("ctx={ctx}");
    let line = server.wait_line(
        &format!("`host objects released` for {name}"),
        RELEASE_TIMEOUT,
        |l| l.contains("host objects released") && l.split_whitespace().any(|w| w == ctx_field),
    );
    Released::parse(&line.text).unwrap_or_else(|| panic!("unparsable: {}", line.text))
}

/// Runs a small `venus-compute` through the server and asserts it succeeded.
fn assert_compute_works(server: &Server, when: &str) {
    let child = server
        .venus_client_feedback(env!("CARGO_BIN_EXE_venus-compute"))
        .args(["--n", "65536", "--reps", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning venus-compute");
    let out = wait_output(child, TIMEOUT, "venus-compute");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("saxpy OK") && stdout.contains("scan OK"),
        "venus-compute {when} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sigkill_while_submitting_releases_everything() {
    let test = "sigkill_while_submitting_releases_everything";
    let Some(tools) = require(test, &[Tool::Vulkaninfo, Tool::VenusIcd, Tool::LavapipeIcd]) else {
        return;
    };
    let mut server = Server::start(&tools, &ServerOptions::default());
    let at_start = (server.thread_count(), server.fd_count());
    // Whatever the first client sets up for good is not a leak: measure after one.
    server.assert_vulkaninfo_works("before the kill");
    released_of(&server, "vulkaninfo");
    let baseline = settle(&server, at_start);

    let mut command = server.venus_client_feedback(env!("CARGO_BIN_EXE_venus-sync"));
    command.arg("submit-loop");
    let mut program = Program::spawn(command, "venus-sync submit-loop");
    program.wait_for_line("SUBMITTING", TIMEOUT);
    // Let it go round a while: the kill lands among queued submissions.
    std::thread::sleep(Duration::from_millis(300));
    let during = (server.thread_count(), server.fd_count());
    program.kill();
    let r = released_of(&server, "venus-sync");
    eprintln!(
        "{test}: server (threads, fds): start {at_start:?}, baseline {baseline:?}, \
         while submitting {during:?}; release {r:?}"
    );
    assert!(
        r.live == 0 && r.created == r.destroyed && r.created > 0,
        "want live=0 and created == destroyed > 0: {r:?}; log:\n{}",
        server.log_text()
    );

    server.assert_alive("after the SIGKILL while submitting");
    server.assert_vulkaninfo_works("after the SIGKILL while submitting");
    assert_compute_works(&server, "after the SIGKILL while submitting");
    released_of(&server, "venus-compute");
    let after = settle(&server, baseline);
    assert_eq!(
        after,
        baseline,
        "the server's (threads, open descriptors) did not return to the baseline; log:\n{}",
        server.log_text()
    );
    server.stop();
}
