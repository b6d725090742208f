//! Smoke test with the REAL Mesa Venus client (`libvulkan_virtio.so` in vtest mode, driven by
//! `vulkaninfo --summary`) against the renderer backend with the Vulkan-less
//! [`NullDispatch`]: the client creates its instance ring, the ring thread executes
//! `vkSetReplyCommandStreamMESA` + `vkEnumerateInstanceVersion` (answered 1.4.343, the protocol level), then
//! `vkCreateInstance`, which the null dispatch refuses: the context becomes fatal, the ring
//! gets the FATAL bit, and the client must abort cleanly ("ring fatal") on its own instead of
//! hanging.
//!
//! Needs `vulkaninfo` and the virtio ICD (`venus_testkit::require`): without them the test
//! fails when `CI` is set and is skipped (with a `SKIPPED` line) otherwise;
//! `scripts/setup-system.sh` installs both.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::TempDir;
use venus_renderer::Channel;
use venus_server::renderer::RendererBackend;
use venus_server::vtest::Limits;
use venus_server::{ClientPolicy, Server, ServerConfig};
use venus_testkit::Tool;

/// What the brief runs the client under (`timeout 10 vulkaninfo --summary`).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn real_mesa_client_fails_cleanly_at_create_instance() {
    let Some(tools) = venus_testkit::require(
        "real_mesa_client_fails_cleanly_at_create_instance",
        &[Tool::Vulkaninfo, Tool::VenusIcd],
    ) else {
        return;
    };
    let dir = TempDir::new();
    let path = dir.0.join("vtest.sock");
    let (backend, log) = RendererBackend::with_null_dispatch();
    let config = ServerConfig {
        socket_path: path.clone(),
        clients: ClientPolicy::Concurrent,
        limits: Limits::default(),
    };
    let server = Server::bind(config, Arc::new(backend)).expect("bind");
    let shutdown = server.shutdown_handle();
    let server_thread = thread::spawn(move || server.run());

    let start = Instant::now();
    let mut child = Command::new(tools.vulkaninfo())
        .arg("--summary")
        .env("VN_DEBUG", "vtest,init")
        .env("VTEST_SOCKET_NAME", &path)
        .env("VK_DRIVER_FILES", tools.venus_icd())
        .env_remove("VK_ICD_FILENAMES")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vulkaninfo");
    let mut stderr_pipe = child.stderr.take().unwrap();
    let reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr_pipe.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if start.elapsed() > CLIENT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let elapsed = start.elapsed();
    let stderr = reader.join().unwrap();
    let records = log.records();
    eprintln!("vulkaninfo: {status:?} after {elapsed:?}");
    eprintln!("commands on the ring: {:?}", log.command_names());
    eprintln!("client stderr:\n{stderr}");

    shutdown.shutdown();
    server_thread.join().unwrap().unwrap();

    let status = status.unwrap_or_else(|| {
        panic!("vulkaninfo hung (killed after {CLIENT_TIMEOUT:?}); stderr:\n{stderr}")
    });
    assert!(
        !status.success(),
        "vulkaninfo cannot succeed without Vulkan"
    );
    assert!(
        stderr.contains("ring fatal"),
        "the client must abort on the ring's FATAL bit; stderr:\n{stderr}"
    );
    // The ring and reply stream worked: the client got our instance version (the protocol's
    // vk.xml version, git-70991d4c; the Mesa 25.0.7 client then clamps to its own 1.3.269).
    assert!(
        stderr.contains("renderer instance version 1.4.343"),
        "stderr:\n{stderr}"
    );
    let names: Vec<_> = records.iter().map(|r| r.command).collect();
    assert_eq!(
        names,
        ["vkEnumerateInstanceVersion", "vkCreateInstance"],
        "the dispatch stops at the first unsupported command"
    );
    assert!(records.iter().all(|r| r.wants_reply));
    assert!(
        records
            .iter()
            .all(|r| matches!(r.channel, Channel::Ring { index: 0, .. })),
        "both on the instance ring: {records:?}"
    );
}
