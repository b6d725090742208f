//! Object lifetimes through the real Mesa Venus client: `venus-lifetimes` creates objects of
//! many kinds through a fresh venus-server (itself under the Khronos validation layer) and
//! then destroys only the device, exits without destroying anything, is SIGKILLed, or
//! cleans up properly. In every case the server must release every host object of the
//! context (`host objects released ... live=0`, `created == destroyed >=` what the program
//! created), the layer must report no leaked object, and the server must still serve a
//! `vulkaninfo --summary`.

use std::time::Duration;

use venus_testapps::server::{context_of, Program, Released, Server, ServerOptions};
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
