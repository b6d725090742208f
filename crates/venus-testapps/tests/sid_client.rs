//! The newer Mesa Venus client (Debian sid's, `scripts/setup-sid-client.sh`) against
//! venus-server on lavapipe: `vulkaninfo --summary` from the sid root names the Venus device
//! and the server ends the context cleanly; a program built here (`venus-lifetimes`, glibc of
//! Debian 12) runs inside the root through the same helper, creates and destroys its objects
//! and disconnects cleanly. See `docs/newer-clients.md`.

use std::time::Duration;

use venus_testapps::server::{
    assert_vulkaninfo_output, context_of, Program, Server, ServerOptions,
};
use venus_testapps::sid::{sid_client, sid_vulkaninfo};
use venus_testapps::tools::{require, Tool};

const TIMEOUT: Duration = Duration::from_secs(60);
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

/// The `driverInfo` value of a `vulkaninfo --summary` output (`Mesa <version>`).
fn driver_info(summary: &str) -> Option<&str> {
    summary
        .lines()
        .find_map(|l| l.trim().strip_prefix("driverInfo"))
        .map(|v| v.trim_start_matches([' ', '=']).trim())
}

#[test]
fn sid_vulkaninfo_summary_names_the_venus_device() {
    let test = "sid_vulkaninfo_summary_names_the_venus_device";
    let Some(tools) = require(test, &[Tool::LavapipeIcd, Tool::SidRoot]) else {
        return;
    };
    let server = Server::start(&tools, &ServerOptions::default());
    let out = sid_vulkaninfo(&server, tools.sid_root(), &["--summary"], TIMEOUT);
    assert_vulkaninfo_output(&out, "from the sid root");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let info = driver_info(&stdout).unwrap_or_default();
    eprintln!("{test}: client driverInfo = {info}");
    assert!(
        info.starts_with("Mesa ") && !info.starts_with("Mesa 25.0."),
        "want the sid client (Mesa newer than the host's 25.0), got driverInfo {info:?}:\n{stdout}"
    );
    server.wait_line("a clean disconnect of vulkaninfo", RELEASE_TIMEOUT, |l| {
        l.contains("client disconnected")
            && l.contains("client=vulkaninfo")
            && l.contains("poisoned=false")
    });
    server.wait_line("`context destroyed`", RELEASE_TIMEOUT, |l| {
        l.contains("context destroyed")
    });
    server.stop();
}

#[test]
fn host_built_program_runs_in_the_sid_root() {
    let test = "host_built_program_runs_in_the_sid_root";
    let Some(tools) = require(test, &[Tool::LavapipeIcd, Tool::SidRoot]) else {
        return;
    };
    let mut server = Server::start(&tools, &ServerOptions::default());
    let mut command = sid_client(
        &server,
        tools.sid_root(),
        env!("CARGO_BIN_EXE_venus-lifetimes"),
    );
    command.arg("clean");
    let mut program = Program::spawn(command, "venus-lifetimes clean (sid root)");
    let created = program.wait_for_line("created ", TIMEOUT);
    let count: u64 = created
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad line {created:?}"));
    let (status, _) = program.wait_exit(TIMEOUT);
    assert!(
        status.success(),
        "venus-lifetimes clean in the sid root failed ({status}); stderr:\n{}",
        program.stderr_text()
    );
    assert!(count > 2, "venus-lifetimes created only {count} objects");
    let ctx = context_of(&server.log_lines(), "venus-lifetimes").unwrap_or_else(|| {
        panic!(
            "no context for venus-lifetimes; log:\n{}",
            server.log_text()
        )
    });
    let conn = format!("conn={ctx}");
    server.wait_line(
        "a clean disconnect of venus-lifetimes",
        RELEASE_TIMEOUT,
        |l| {
            l.contains("client disconnected")
                && l.split_whitespace().any(|w| w == conn)
                && l.contains("poisoned=false")
        },
    );
    let ctx_field = format!("ctx={ctx}");
    server.wait_line("`context destroyed` for the client", RELEASE_TIMEOUT, |l| {
        l.contains("context destroyed") && l.split_whitespace().any(|w| w == ctx_field)
    });
    eprintln!(
        "{test}: venus-lifetimes (built on Debian 12) created {count} objects from the sid root"
    );
    server.assert_alive("after venus-lifetimes in the sid root");
    server.stop();
}

#[test]
fn driver_info_is_read_from_the_summary() {
    let summary = "\tdriverName         = venus\n\tdriverInfo         = Mesa 26.2.6-1\n";
    assert_eq!(driver_info(summary), Some("Mesa 26.2.6-1"));
    assert_eq!(driver_info("deviceName = x\n"), None);
}

/// A `key = value` line of a `vulkaninfo --summary` output.
fn summary_value<'a>(summary: &'a str, key: &str) -> Option<&'a str> {
    summary
        .lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .map(|v| v.trim_start_matches([' ', '=']).trim())
}

/// `1.4.305` -> (1, 4).
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut it = version.split('.').map(|x| x.trim().parse::<u32>().ok());
    Some((it.next()??, it.next()??))
}

/// Protocol level git-70991d4c: the Mesa 26 client (which speaks it) gets the host device's
/// Vulkan 1.4 through venus-server, where the git-ca1e9220 level held it at 1.3. The host's
/// lavapipe 25.0.7 device reports 1.4.305.
#[test]
fn sid_client_gets_vulkan_1_4() {
    let test = "sid_client_gets_vulkan_1_4";
    let Some(tools) = require(test, &[Tool::LavapipeIcd, Tool::SidRoot]) else {
        return;
    };
    let server = Server::start(&tools, &ServerOptions::default());
    let out = sid_vulkaninfo(&server, tools.sid_root(), &["--summary"], TIMEOUT);
    assert_vulkaninfo_output(&out, "from the sid root");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let api = summary_value(&stdout, "apiVersion").unwrap_or_default();
    eprintln!("{test}: Venus device apiVersion = {api}");
    assert_eq!(
        major_minor(api),
        Some((1, 4)),
        "want Vulkan 1.4 for the Mesa 26 client, got apiVersion {api:?}:\n{stdout}"
    );
    // Host image copy is core 1.4 but not served (vkCopy*MESA are refused): the feature the
    // host has (lavapipe: true) must reach the client as false.
    let full = sid_vulkaninfo(&server, tools.sid_root(), &[], TIMEOUT);
    assert_vulkaninfo_output(&full, "full, from the sid root");
    let full = String::from_utf8_lossy(&full.stdout);
    let host_image_copy: Vec<&str> = full
        .lines()
        .filter(|l| l.trim_start().starts_with("hostImageCopy "))
        .collect();
    assert!(
        !host_image_copy.is_empty()
            && host_image_copy
                .iter()
                .all(|l| l.trim_end().ends_with("= false")),
        "hostImageCopy must be reported false through Venus: {host_image_copy:?}"
    );
    server.stop();
}
