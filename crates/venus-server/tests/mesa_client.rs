//! Smoke test with the REAL Mesa Venus client (`libvulkan_virtio.so` in vtest mode, driven
//! by `vulkaninfo`) against the stub backend.
//!
//! The stub never consumes rings, so the client gets exactly this far: handshake, capset,
//! CONTEXT_INIT, the instance-ring blob (131268 bytes), `SUBMIT_CMD2{vkCreateRingMESA}`,
//! the reply-pool blob; then it waits on its ring (and aborts after ~4 s because the stub
//! never sets ALIVE). The test kills `vulkaninfo` as soon as `vkCreateRingMESA` arrived, so it
//! does not depend on that timeout behaviour.
//!
//! Needs `vulkaninfo` and the virtio ICD (`venus_testkit::require`): without them the test
//! fails when `CI` is set and is skipped (with a `SKIPPED` line) otherwise;
//! `scripts/setup-system.sh` installs both.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::TestServer;
use venus_testkit::Tool;

#[test]
fn real_mesa_client_reaches_create_ring() {
    let Some(tools) = venus_testkit::require(
        "real_mesa_client_reaches_create_ring",
        &[Tool::Vulkaninfo, Tool::VenusIcd],
    ) else {
        return;
    };
    let server = TestServer::start();
    let mut child = Command::new(tools.vulkaninfo())
        .arg("--summary")
        .env("VN_DEBUG", "vtest,init")
        .env("VTEST_SOCKET_NAME", &server.path)
        .env("VK_DRIVER_FILES", tools.venus_icd())
        .env_remove("VK_ICD_FILENAMES")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vulkaninfo");
    let reached = server.backend.wait_for(Duration::from_secs(30), |l| {
        l.submissions
            .iter()
            .any(|s| s.command_names.contains(&"vkCreateRingMESA"))
    });
    let _ = child.kill();
    let out = child.wait_with_output().expect("vulkaninfo output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(reached, "no vkCreateRingMESA; client said:\n{stderr}");

    server.backend.log(|l| {
        assert_eq!(l.contexts.len(), 1, "one connection");
        assert_eq!(l.contexts[0].1, "vulkaninfo");
        assert_eq!(l.inits.len(), 1);
        assert_eq!(l.inits[0].1, 4, "Venus capset");
        let ring_blob = &l.blobs_created[0].1;
        assert_eq!((ring_blob.res_id, ring_blob.size), (1, 131268));
        assert_eq!(
            (ring_blob.blob_type, ring_blob.flags, ring_blob.blob_id),
            (2, 1, 0)
        );
        let first = &l.submissions[0];
        assert_eq!(first.ring_idx, 0);
        assert_eq!(first.command_names, ["vkCreateRingMESA"]);
        assert_eq!(first.commands.len(), 140, "35 dwords (contract §4.1)");
        assert_eq!(&first.commands[..4], &188u32.to_le_bytes());
        assert!(l.fatal.is_empty(), "{:?}", l.fatal);
    });
    // The client accepted our capset (it printed the versions from it).
    if stderr.contains("wire format version") {
        assert!(stderr.contains("vk xml version 1.3.269"), "{stderr}");
    }
}
