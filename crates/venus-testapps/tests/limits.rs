//! Per-context limits and zeroed memory, end to end on lavapipe (docs/limits.md):
//!
//! - zeroed memory: HOST_VISIBLE allocations through stock Mesa (`venus-limits zeroed`:
//!   allocate, map, check zeros, write a pattern, free, many rounds; Mesa maps them through
//!   device-memory blobs), plain blobs and device-memory blobs re-created for the same memory id
//!   through the raw client;
//! - allocation bombs: device memory and objects through Mesa (whose allocations and creations
//!   are asynchronous: the context ends with one WARN line naming the limit) and through the raw
//!   client with replies (the Vulkan error comes back and the context lives on); shared memory
//!   through many and large blobs (refused one by one, the context lives on).
//!
//! Every bomb checks the log line naming the limit and its flag, that the server's resident
//! memory and fds stay bounded, and that a concurrent `vulkaninfo --summary` still works.

use std::process::{Child, Stdio};
use std::time::Duration;

use venus_protocol::commands::*;
use venus_protocol::structs::*;
use venus_protocol::types::*;
use venus_protocol::{Command, Id};
use venus_testapps::server::{wait_output, Server, ServerOptions};
use venus_testapps::tools::{require, Tool, Tools};
use venus_testapps::venus::{reply_result, Session};
use venus_testapps::vtest::Mapping;

const LIMITS: &str = env!("CARGO_BIN_EXE_venus-limits");
const TIMEOUT: Duration = Duration::from_secs(300);
const PATTERN: u8 = 0x5a;

fn tools(test: &str) -> Option<Tools> {
    require(test, &[Tool::Vulkaninfo, Tool::VenusIcd, Tool::LavapipeIcd])
}

fn server(tools: &Tools, args: &[&str]) -> Server {
    Server::start(
        tools,
        &ServerOptions {
            args: args.iter().map(|a| a.to_string()).collect(),
            ..ServerOptions::default()
        },
    )
}

/// Starts `venus-limits args` through `server` with Mesa's default feedback.
fn spawn_limits(server: &Server, args: &[&str]) -> Child {
    server
        .venus_client_feedback(LIMITS)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning venus-limits")
}

/// Runs `venus-limits args` through `server`; returns (exit success, stdout, stderr).
fn run_limits(server: &Server, args: &[&str]) -> (bool, String, String) {
    finish(spawn_limits(server, args), args)
}

fn finish(child: Child, args: &[&str]) -> (bool, String, String) {
    let out = wait_output(child, TIMEOUT, &format!("venus-limits {}", args.join(" ")));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The server's RSS and fds stay bounded, and a concurrent client works.
fn assert_server_healthy(server: &mut Server, when: &str, max_rss: u64) {
    server.assert_alive(when);
    let (rss, fds) = (server.rss_bytes(), server.fd_count());
    eprintln!("{when}: server rss={} MiB fds={fds}", rss >> 20);
    assert!(rss <= max_rss, "{when}: server RSS {rss} > {max_rss}");
    assert!(fds < 512, "{when}: server holds {fds} fds");
    server.assert_vulkaninfo_works(when);
}

/// The WARN line that names `key` and its flag.
fn wait_limit_line(server: &Server, needle: &str, key: &str) -> String {
    let flag = format!("--{}", key.replace('_', "-"));
    let line = server.wait_line(needle, Duration::from_secs(30), |l| {
        l.contains("WARN") && l.contains(needle) && l.contains(key) && l.contains(&flag)
    });
    eprintln!("limit line: {}", line.text);
    line.text
}

#[test]
fn mesa_host_visible_memory_is_zeroed_every_time() {
    let test = "mesa_host_visible_memory_is_zeroed_every_time";
    let Some(tools) = tools(test) else { return };
    let mut server = server(&tools, &[]);
    let (ok, stdout, stderr) = run_limits(
        &server,
        &["zeroed", "--rounds", "200", "--big-rounds", "20"],
    );
    assert!(
        ok && stdout.contains("zeroed OK"),
        "{stdout}\n{stderr}\n{}",
        server.log_text()
    );
    eprintln!("{test}: {}", stdout.trim());
    server.assert_alive("after the zeroed rounds");
}

/// A plain blob, re-created 200 times per size: zeros every time (we wrote a pattern into the
/// previous one before unref).
#[test]
fn raw_blobs_are_zeroed_every_time() {
    let test = "raw_blobs_are_zeroed_every_time";
    let Some(tools) = tools(test) else { return };
    let mut server = server(&tools, &[]);
    let mut s = Session::connect(server.socket(), test).unwrap();
    let mut rounds = 0;
    for (size, n) in [(4096usize, 200), (1 << 20, 200), (64 << 20, 2)] {
        for round in 0..n {
            let (res, fd) = s.vtest.create_blob(size as u64).unwrap();
            let map = Mapping::new(fd, size).unwrap();
            assert_zero_then_dirty(&map, size, &format!("blob of {size} bytes, round {round}"));
            drop(map);
            s.vtest.unref(res).unwrap();
            rounds += 1;
        }
    }
    eprintln!("{test}: {rounds} blobs zeroed");
    server.assert_alive("after the blob rounds");
}

/// `VkDeviceMemory` with the same id, allocated, exported as a blob, dirtied, freed, 200 times.
#[test]
fn raw_device_memory_blobs_are_zeroed_every_time() {
    let test = "raw_device_memory_blobs_are_zeroed_every_time";
    let Some(tools) = tools(test) else { return };
    let mut server = server(&tools, &[]);
    let mut s = Session::connect(server.socket(), test).unwrap();
    let dev = s.setup(false).unwrap();
    let memory: Id<venus_protocol::handles::DeviceMemory> = s.id();
    let size = 1usize << 20;
    for round in 0..200 {
        let info = MemoryAllocateInfo {
            allocation_size: size as u64,
            memory_type_index: 0, // lavapipe: DEVICE_LOCAL | HOST_VISIBLE | HOST_COHERENT
            ..Default::default()
        };
        s.call_ok(
            "vkAllocateMemory",
            Command::AllocateMemory(AllocateMemoryArgs {
                device: dev.device,
                p_allocate_info: &info,
                p_memory: &memory,
            }),
        )
        .unwrap();
        let (res, fd) = s.vtest.create_blob_of(size as u64, memory.raw()).unwrap();
        let map = Mapping::new(fd, size).unwrap();
        assert_zero_then_dirty(&map, size, &format!("device memory blob, round {round}"));
        drop(map);
        s.vtest.unref(res).unwrap();
        s.send(Command::FreeMemory(FreeMemoryArgs {
            device: dev.device,
            memory,
        }))
        .unwrap();
    }
    server.assert_alive("after the device-memory rounds");
}

fn assert_zero_then_dirty(map: &Mapping, size: usize, what: &str) {
    let bytes = map.read(0, size);
    if let Some(off) = bytes.iter().position(|&b| b != 0) {
        panic!("{what}: byte {off} is {:#x}, not 0", bytes[off]);
    }
    map.write(0, &vec![PATTERN; size]);
}

/// Device memory through Mesa beyond `--max-device-memory 256M`: Mesa allocates without a
/// reply, so the context ends (WARN line naming the limit); the server stays small.
#[test]
fn mesa_device_memory_bomb_ends_the_context() {
    let test = "mesa_device_memory_bomb_ends_the_context";
    let Some(tools) = tools(test) else { return };
    let mut server = server(&tools, &["--max-device-memory", "256M"]);
    let (ok, stdout, stderr) =
        run_limits(&server, &["memory-bomb", "--mib", "64", "--count", "64"]);
    eprintln!(
        "{test}: exit ok={ok} stdout={:?} stderr tail={:?}",
        stdout.trim(),
        tail(&stderr)
    );
    let line = wait_limit_line(&server, "device memory of the context", "max_device_memory");
    assert!(
        line.contains("context lost") && line.contains("> 268435456"),
        "{line}"
    );
    assert_server_healthy(&mut server, "after the device-memory bomb", 1 << 30);
}

/// The same through the raw client with replies: `VK_ERROR_OUT_OF_DEVICE_MEMORY`, the context
/// lives on, and freeing makes room again.
#[test]
fn raw_device_memory_over_the_limit_gets_the_vulkan_error() {
    let test = "raw_device_memory_over_the_limit_gets_the_vulkan_error";
    let Some(tools) = tools(test) else { return };
    let mut server = server(&tools, &["--max-device-memory", "256M"]);
    let mut s = Session::connect(server.socket(), test).unwrap();
    let dev = s.setup(false).unwrap();
    let alloc = |s: &mut Session, id| {
        let info = MemoryAllocateInfo {
            allocation_size: 100 << 20,
            memory_type_index: 0,
            ..Default::default()
        };
        let r = s
            .call(Command::AllocateMemory(AllocateMemoryArgs {
                device: dev.device,
                p_allocate_info: &info,
                p_memory: &id,
            }))
            .unwrap()
            .expect("a reply: the context lives");
        reply_result(&r)
    };
    let ids: Vec<Id<venus_protocol::handles::DeviceMemory>> = (0..3).map(|_| s.id()).collect();
    assert_eq!(alloc(&mut s, ids[0]), 0);
    assert_eq!(alloc(&mut s, ids[1]), 0);
    assert_eq!(
        alloc(&mut s, ids[2]),
        VkResult::ERROR_OUT_OF_DEVICE_MEMORY.0,
        "300 MiB > 256 MiB"
    );
    wait_limit_line(&server, "device memory of the context", "max_device_memory");
    s.send(Command::FreeMemory(FreeMemoryArgs {
        device: dev.device,
        memory: ids[0],
    }))
    .unwrap();
    assert_eq!(alloc(&mut s, ids[2]), 0, "freeing made room");
    let fence = s.create_fence(dev.device).unwrap();
    assert_eq!(
        s.fence_status(dev.device, fence).unwrap(),
        Some(VkResult::NOT_READY.0)
    );
    assert_server_healthy(&mut server, "after the refused allocation", 1 << 30);
}

/// Large and many blobs beyond the shared-memory limits: each refused (res_id 0, no fd), one
/// WARN line, the context lives on.
#[test]
fn shared_memory_bomb_is_refused_blob_by_blob() {
    let test = "shared_memory_bomb_is_refused_blob_by_blob";
    let Some(tools) = tools(test) else { return };
    let mut server = server(
        &tools,
        &[
            "--max-shared-memory",
            "512M",
            "--max-shared-memory-objects",
            "300",
        ],
    );
    let mut s = Session::connect(server.socket(), test).unwrap();
    let mut big = Vec::new();
    let refused = loop {
        match s.vtest.create_blob(64 << 20) {
            Ok(b) => big.push(b),
            Err(e) => break e,
        }
        assert!(big.len() < 100, "no limit on shared memory");
    };
    eprintln!("{test}: {} blobs of 64 MiB, then: {refused}", big.len());
    assert_eq!(big.len(), 7, "512 MiB = the reply blob + 7 x 64 MiB");
    wait_limit_line(&server, "shared memory of the context", "max_shared_memory");
    for (res, _) in big.drain(..) {
        s.vtest.unref(res).unwrap();
    }
    let mut small = Vec::new();
    while let Ok(b) = s.vtest.create_blob(4096) {
        small.push(b);
        assert!(small.len() < 10_000, "no limit on shared-memory objects");
    }
    eprintln!("{test}: {} blobs of 4 KiB", small.len());
    assert_eq!(small.len(), 299, "300 objects, the reply blob is one");
    assert_eq!(
        s.vtest.create_blob(1 << 40).unwrap_err().to_string(),
        "blob of 1099511627776 bytes refused"
    );
    drop(small);
    let dev = s.setup(false).unwrap();
    let fence = s.create_fence(dev.device).unwrap();
    assert_eq!(
        s.fence_status(dev.device, fence).unwrap(),
        Some(VkResult::NOT_READY.0),
        "the context lives on"
    );
    assert_server_healthy(&mut server, "after the shared-memory bomb", 1 << 30);
}

/// 10^6 samplers through Mesa: the default object limit (262144) ends the context.
#[test]
fn mesa_object_bomb_ends_the_context() {
    let test = "mesa_object_bomb_ends_the_context";
    let Some(tools) = tools(test) else { return };
    let mut server = server(&tools, &[]);
    let args = ["object-bomb", "--count", "1000000"];
    let bomb = spawn_limits(&server, &args);
    // A second client works while the bomb is going off.
    server.assert_vulkaninfo_works("during the object bomb");
    let (ok, stdout, stderr) = finish(bomb, &args);
    eprintln!(
        "{test}: exit ok={ok} stdout={:?} stderr tail={:?}",
        stdout.trim(),
        tail(&stderr)
    );
    let line = wait_limit_line(&server, "live host objects of the context", "max_objects");
    assert!(
        line.contains("context lost") && line.contains("> 262144"),
        "{line}"
    );
    assert!(
        server
            .try_wait_line(Duration::from_secs(30), |l| l
                .contains("host objects released")
                && l.contains("live=0"))
            .is_some(),
        "every object of the lost context is destroyed:\n{}",
        server.log_text()
    );
    assert_server_healthy(&mut server, "after the object bomb", 2 << 30);
}

/// Events with replies beyond `--max-objects`: `VK_ERROR_TOO_MANY_OBJECTS`, the context lives.
#[test]
fn raw_objects_over_the_limit_get_too_many_objects() {
    let test = "raw_objects_over_the_limit_get_too_many_objects";
    let Some(tools) = tools(test) else { return };
    let mut server = server(&tools, &["--max-objects", "100"]);
    let mut s = Session::connect(server.socket(), test).unwrap();
    let dev = s.setup(false).unwrap();
    let mut results = Vec::new();
    for _ in 0..120 {
        let event: Id<venus_protocol::handles::Event> = s.id();
        let r = s
            .call(Command::CreateEvent(CreateEventArgs {
                device: dev.device,
                p_create_info: &EventCreateInfo::default(),
                p_event: &event,
            }))
            .unwrap()
            .expect("a reply: the context lives");
        results.push(reply_result(&r));
    }
    let ok = results.iter().filter(|&&r| r == 0).count();
    let refused = results
        .iter()
        .filter(|&&r| r == VkResult::ERROR_TOO_MANY_OBJECTS.0)
        .count();
    eprintln!("{test}: {ok} events created, {refused} refused");
    assert_eq!(ok + refused, 120, "{results:?}");
    assert!(
        ok > 90 && ok < 100,
        "instance + device + queue count too: {ok}"
    );
    wait_limit_line(&server, "live host objects of the context", "max_objects");
    assert_server_healthy(&mut server, "after the refused objects", 1 << 30);
}

fn tail(s: &str) -> Vec<&str> {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(3)..].to_vec()
}
