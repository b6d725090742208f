//! Teardown of GPU work that can never finish (issue 10, hostile clients): `venus-sync stuck`
//! submits a fill that waits on a timeline-semaphore value nobody signals or on an event
//! nobody sets (or, invalid usage, on a binary semaphore with no signal pending), then is
//! SIGKILLed or exits without waiting. The server must release every host object of the
//! context (`host objects released ctx=N ... live=0`, `created == destroyed`) within
//! [`WITHIN`] of the client going away, log no ERROR line, get its thread count back to the
//! baseline (measured before the client connected), and keep serving `vulkaninfo --summary`
//! (while the client is stuck and after).

use std::time::{Duration, Instant};

use venus_testapps::server::{context_of, Line, Program, Released, Server, ServerOptions};
use venus_testapps::tools::{require, Tool};

const PROGRAM: &str = env!("CARGO_BIN_EXE_venus-sync");
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long after the client went away its context's host objects must be released.
const WITHIN: Duration = Duration::from_secs(2);

/// The server's thread count once it has settled (no change for 100 ms), at most 5 s.
fn settled_threads(server: &Server) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = server.thread_count();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = server.thread_count();
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// Checks the `host objects released` line of context `ctx_field` (`ctx=N`), `gone` being
/// when the client went away; pushes what is wrong onto `failures`.
fn check_release(line: Option<Line>, ctx_field: &str, gone: Instant, failures: &mut Vec<String>) {
    let Some(line) = line else {
        failures.push(format!(
            "no `host objects released` line with {ctx_field} within 5 s"
        ));
        return;
    };
    let after = line.at.saturating_duration_since(gone);
    eprintln!("host objects released {after:?} after the client went away");
    if after > WITHIN {
        failures.push(format!(
            "`host objects released` came {after:?} after the client went away (want <= \
             {WITHIN:?})"
        ));
    }
    match Released::parse(&line.text) {
        Some(r) if r.live == 0 && r.created == r.destroyed && r.created > 0 => {}
        _ => failures.push(format!(
            "want live=0 and created == destroyed > 0: {}",
            line.text
        )),
    }
}

fn stuck_case(test: &str, wait: &str, end: &str) {
    let Some(tools) = require(test, &[Tool::Vulkaninfo, Tool::VenusIcd, Tool::LavapipeIcd]) else {
        return;
    };
    let mut server = Server::start(&tools, &ServerOptions::default());
    // A first client warms up whatever the server creates once per process.
    server.assert_vulkaninfo_works("before the test");
    server.wait_line("the warm-up context destroyed", SETUP_TIMEOUT, |l| {
        l.contains("host objects released")
    });
    let baseline = settled_threads(&server);

    let mut command = server.venus_client_feedback(PROGRAM);
    command.args(["stuck", wait, end]);
    let mut client = Program::spawn(command, &format!("venus-sync stuck {wait} {end}"));
    client.wait_for_line("STUCK", SETUP_TIMEOUT);
    let ctx = context_of(&server.log_lines(), "venus-sync")
        .unwrap_or_else(|| panic!("no context for venus-sync; log:\n{}", server.log_text()));
    let ctx_field = format!("ctx={ctx}");
    // Let the submission reach the driver; other clients are served meanwhile.
    std::thread::sleep(Duration::from_millis(300));
    server.assert_vulkaninfo_works(&format!("while venus-sync stuck {wait} is stuck"));
    let gone = if end == "hang" {
        client.kill()
    } else {
        let (status, at) = client.wait_exit(SETUP_TIMEOUT);
        assert!(
            status.success(),
            "venus-sync stuck {wait} exit failed ({status}); stderr:\n{}",
            client.stderr_text()
        );
        at
    };
    let line = server.try_wait_line(Duration::from_secs(5), |l| {
        l.contains("host objects released") && l.split_whitespace().any(|w| w == ctx_field)
    });
    let mut failures = Vec::new();
    check_release(line, &ctx_field, gone, &mut failures);
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut threads = server.thread_count();
    while threads != baseline && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        threads = server.thread_count();
    }
    if threads != baseline {
        failures.push(format!(
            "the server has {threads} threads after the client went away; {baseline} before"
        ));
    }
    server.assert_alive(&format!("after venus-sync stuck {wait} {end}"));
    server.assert_vulkaninfo_works(&format!("after venus-sync stuck {wait} {end}"));
    let log = server.stop();
    if wait == "binary" {
        // Refused before the driver: nothing is stuck, the context is lost.
        let refused = log
            .lines()
            .filter(|l| l.contains("context lost") && l.contains("has no signal pending"))
            .count();
        if refused != 1 {
            failures.push(format!(
                "want one `context lost` line: binary semaphore ... has no signal pending; got \
                 {refused}"
            ));
        }
    } else {
        // The stuck client's device (the only one stuck) was unblocked on the host.
        let want = if wait == "event" {
            "semaphores=0 events=1 idle=true"
        } else {
            "semaphores=1 events=0 idle=true"
        };
        let unblocked: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("waits unblocked on the host"))
            .collect();
        if unblocked.len() != 1 || !unblocked[0].contains(want) {
            failures.push(format!(
                "want one `waits unblocked on the host` line with {want}: {unblocked:?}"
            ));
        }
    }
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    if !errors.is_empty() {
        failures.push(format!("ERROR lines in the log:\n{}", errors.join("\n")));
    }
    assert!(
        failures.is_empty(),
        "{test}:\n- {}\nserver log:\n{log}",
        failures.join("\n- ")
    );
}

#[test]
fn timeline_wait_never_signalled_then_sigkill() {
    stuck_case(
        "timeline_wait_never_signalled_then_sigkill",
        "timeline",
        "hang",
    );
}

#[test]
fn timeline_wait_never_signalled_then_exit() {
    stuck_case(
        "timeline_wait_never_signalled_then_exit",
        "timeline",
        "exit",
    );
}

#[test]
fn event_wait_never_set_then_sigkill() {
    stuck_case("event_wait_never_set_then_sigkill", "event", "hang");
}

#[test]
fn event_wait_never_set_then_exit() {
    stuck_case("event_wait_never_set_then_exit", "event", "exit");
}

/// Invalid usage lavapipe would block on in `vkQueueSubmit` (on the ring thread, before any
/// teardown could run): refused before the driver (`venus_dispatch::binary`), which ends the
/// context; its objects are released as for the other cases.
#[test]
fn binary_wait_never_signalled_then_sigkill() {
    stuck_case("binary_wait_never_signalled_then_sigkill", "binary", "hang");
}
