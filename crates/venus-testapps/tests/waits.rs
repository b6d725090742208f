//! Client-side infinite waits block only that client: `venus-rawclient` (a raw Venus client)
//! sends `vkWaitForFences(UINT64_MAX)` on a fence that is never submitted, or
//! `vkWaitSemaphores(UINT64_MAX)` on a timeline semaphore that is never signalled, on the
//! context stream (`SUBMIT_CMD2`) or through a ring; while it blocks, a concurrent
//! `vulkaninfo --summary` must succeed; when the client closes its socket or is SIGKILLed,
//! the server must log `context destroyed` for it within 1 s and its thread count must be
//! back to the baseline (measured before the client connected) within that second.

use std::time::{Duration, Instant};

use venus_testapps::server::{context_of, Program, Server, ServerOptions};
use venus_testapps::tools::{require, Tool};

const PROGRAM: &str = env!("CARGO_BIN_EXE_venus-rawclient");
const CLIENT: &str = "venus-rawclient";
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);
const WITHIN: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, PartialEq, Debug)]
enum End {
    Close,
    Kill,
}

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

fn wait_case(test: &str, wait: &str, channel: &str, end: End) {
    let Some(tools) = require(test, &[Tool::Vulkaninfo, Tool::VenusIcd, Tool::LavapipeIcd]) else {
        return;
    };
    let mut server = Server::start(&tools, &ServerOptions::default());
    // A first client warms up whatever the server creates once per process.
    server.assert_vulkaninfo_works("before the test");
    server.wait_line("the warm-up context destroyed", SETUP_TIMEOUT, |l| {
        l.contains("context destroyed")
    });
    let baseline = settled_threads(&server);

    let mut command = std::process::Command::new(PROGRAM);
    let end_arg = if end == End::Close { "close" } else { "hang" };
    command.args([server.socket().to_str().unwrap(), wait, channel, end_arg]);
    // `close` goes on when we close its stdin.
    command.stdin(std::process::Stdio::piped());
    let mut client = Program::spawn(command, &format!("{CLIENT} {wait} {channel} {end_arg}"));
    client.wait_for_line("WAITING", SETUP_TIMEOUT);
    let ctx = context_of(&server.log_lines(), CLIENT)
        .unwrap_or_else(|| panic!("no context for {CLIENT}; log:\n{}", server.log_text()));
    // Let the server enter the wait, then a well-behaved client must be served meanwhile.
    std::thread::sleep(Duration::from_millis(200));
    server.assert_vulkaninfo_works(&format!("while {CLIENT} blocks in a {wait} wait"));
    // Both vulkaninfo contexts are gone (so are their threads) before the client goes away.
    let ctx_field = format!("ctx={ctx}");
    let of_client = |l: &str| l.split_whitespace().any(|w| w == ctx_field);
    let others_gone = || {
        let log = server.log_lines();
        let destroyed = |l: &&venus_testapps::server::Line| l.text.contains("context destroyed");
        let others = log.iter().filter(destroyed).filter(|l| !of_client(&l.text));
        (
            others.count(),
            log.iter().filter(destroyed).any(|l| of_client(&l.text)),
        )
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while others_gone().0 < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let (others, early) = others_gone();
    assert_eq!(
        others,
        2,
        "two vulkaninfo contexts destroyed; log:\n{}",
        server.log_text()
    );
    assert!(
        !early,
        "the waiting client's context ended early; log:\n{}",
        server.log_text()
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !client.seen.iter().any(|l| l == "CLOSING"),
        "the client must still be waiting"
    );

    let gone = match end {
        End::Close => {
            client.close_stdin();
            client.wait_exit(SETUP_TIMEOUT).1
        }
        End::Kill => client.kill(),
    };
    let line = server.try_wait_line(Duration::from_secs(5), |l| {
        l.contains("context destroyed") && of_client(l)
    });
    let mut threads = server.thread_count();
    while threads != baseline && gone.elapsed() < WITHIN {
        std::thread::sleep(Duration::from_millis(5));
        threads = server.thread_count();
    }
    server.assert_alive(&format!("after {CLIENT} went away"));
    server.assert_vulkaninfo_works(&format!("after {CLIENT} went away"));
    let log = server.stop();

    let mut failures = Vec::new();
    match line {
        None => failures.push(format!(
            "no `context destroyed` with {ctx_field} within 5 s"
        )),
        Some(l) if l.at.saturating_duration_since(gone) > WITHIN => failures.push(format!(
            "`context destroyed` came {:?} after the client went away (want <= {WITHIN:?})",
            l.at.saturating_duration_since(gone)
        )),
        Some(l) => eprintln!(
            "{test}: context destroyed {:?} after the client went away",
            l.at.saturating_duration_since(gone)
        ),
    }
    if threads != baseline {
        failures.push(format!(
            "the server has {threads} threads {WITHIN:?} after the client went away; \
             {baseline} before it connected"
        ));
    }
    assert!(
        failures.is_empty(),
        "{test}:\n- {}\nserver log:\n{log}",
        failures.join("\n- ")
    );
}

#[test]
fn fence_wait_on_the_context_stream_then_close() {
    wait_case(
        "fence_wait_on_the_context_stream_then_close",
        "fence",
        "context",
        End::Close,
    );
}

#[test]
fn fence_wait_in_a_ring_then_sigkill() {
    wait_case(
        "fence_wait_in_a_ring_then_sigkill",
        "fence",
        "ring",
        End::Kill,
    );
}

#[test]
fn semaphore_wait_on_the_context_stream_then_sigkill() {
    wait_case(
        "semaphore_wait_on_the_context_stream_then_sigkill",
        "semaphore",
        "context",
        End::Kill,
    );
}

#[test]
fn semaphore_wait_in_a_ring_then_close() {
    wait_case(
        "semaphore_wait_in_a_ring_then_close",
        "semaphore",
        "ring",
        End::Close,
    );
}
