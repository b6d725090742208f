//! The `venus-server` binary's log, written to a pipe (as when redirected to a file or read by
//! a supervisor), is plain text: no ANSI colour codes, even at `VENUS_LOG=debug` and with
//! `NO_COLOR` unset. Needs no external tool (the stub backend, no Vulkan).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::TempDir;

const START_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn log_to_a_pipe_has_no_colour_codes() {
    let dir = TempDir::new();
    let socket = dir.0.join("venus.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_venus-server"))
        .arg("--stub")
        .arg("--socket-path")
        .arg(&socket)
        .env("VENUS_LOG", "debug")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning venus-server");

    // Lines arrive on a channel so that waiting for "listening" can time out.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stderr).split(b'\n') {
            let Ok(line) = line else { break };
            if tx
                .send(String::from_utf8_lossy(&line).into_owned())
                .is_err()
            {
                break;
            }
        }
    });
    let deadline = Instant::now() + START_TIMEOUT;
    let mut log = Vec::new();
    while !log.iter().any(|l: &String| l.contains("listening")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => log.push(line),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    reader.join().unwrap();
    log.extend(rx.try_iter());
    let log = log.join("\n");

    assert!(
        !log.contains('\u{1b}'),
        "the log contains an ESC byte (terminal colour codes):\n{log:?}"
    );
    assert!(
        log.contains("listening"),
        "no 'listening' line; log:\n{log}"
    );
    assert!(
        log.contains(" WARN ") && log.contains("--stub"),
        "the --stub warning (a coloured level on a terminal) is missing; log:\n{log}"
    );
}
