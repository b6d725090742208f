//! A raw Venus client that blocks the server in a wait that never ends, for `tests/waits.rs`.
//!
//! Usage: `venus-rawclient <socket> <fence|semaphore> <context|ring> <close|hang>`
//!
//! Handshake, instance, device, queue (timeline 1), then either an unsubmitted fence and
//! `vkWaitForFences(UINT64_MAX)` or a timeline semaphore at 0 and `vkWaitSemaphores(1,
//! UINT64_MAX)`, sent with the reply bit on the context stream (`SUBMIT_CMD2`) or through a
//! ring. Prints `WAITING` once the wait is sent; then `close` exits (closing the socket) once
//! its stdin reaches end of file (the test closes it: no timer to race with a loaded
//! machine), `hang` sleeps until killed. Exit status 2 on any setup error.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use venus_protocol::commands::{WaitForFencesArgs, WaitSemaphoresArgs};
use venus_protocol::structs::SemaphoreWaitInfo;
use venus_protocol::{Command, COMMAND_GENERATE_REPLY};
use venus_testapps::venus::{encode, Ring, Session};

const RING_ID: u64 = 0x7e57_0000_2000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: venus-rawclient <socket> <fence|semaphore> <context|ring> <close|hang>");
        std::process::exit(2);
    }
    // The connection (and the ring mapping) must stay open until we exit.
    let _connection = match run(&args[1], &args[2], &args[3]) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("venus-rawclient: {e}");
            std::process::exit(2);
        }
    };
    println!("WAITING");
    std::io::stdout().flush().unwrap();
    match args[4].as_str() {
        "close" => {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            println!("CLOSING");
        }
        _ => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
    }
}

fn run(socket: &str, what: &str, channel: &str) -> std::io::Result<(Session, Option<Ring>)> {
    let mut s = Session::connect(Path::new(socket), "venus-rawclient")?;
    let dev = s.setup(false)?;
    let fence = s.create_fence(dev.device)?;
    let semaphore = s.create_timeline_semaphore(dev.device)?;
    // Both objects exist and the context answers before we block it.
    match s.fence_status(dev.device, fence)? {
        Some(1) => {} // VK_NOT_READY
        other => {
            return Err(std::io::Error::other(format!(
                "vkGetFenceStatus: {other:?}"
            )))
        }
    }
    let fences = [fence];
    let semaphores = [semaphore];
    let info = SemaphoreWaitInfo {
        semaphore_count: 1,
        p_semaphores: &semaphores,
        p_values: &[1],
        ..Default::default()
    };
    let wait = match what {
        "fence" => Command::WaitForFences(WaitForFencesArgs {
            device: dev.device,
            fence_count: 1,
            p_fences: &fences,
            wait_all: 1,
            timeout: u64::MAX,
        }),
        "semaphore" => Command::WaitSemaphores(WaitSemaphoresArgs {
            device: dev.device,
            p_wait_info: &info,
            timeout: u64::MAX,
        }),
        other => return Err(std::io::Error::other(format!("unknown wait {other}"))),
    };
    let mut bytes = s.set_reply();
    bytes.extend(encode(&[(wait, COMMAND_GENERATE_REPLY)]));
    match channel {
        "context" => {
            s.vtest.submit(&bytes)?;
            Ok((s, None))
        }
        "ring" => {
            let mut ring = s.create_ring(RING_ID)?;
            ring.publish(&mut s, &bytes)?;
            Ok((s, Some(ring)))
        }
        other => Err(std::io::Error::other(format!("unknown channel {other}"))),
    }
}
