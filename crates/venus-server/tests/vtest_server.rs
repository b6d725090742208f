//! End-to-end tests of the vtest transport: an in-process server with the stub backend on a
//! temporary socket, driven by a Rust client that speaks like Mesa 25.0.7.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::{notify_ring_command, Client, TempDir, TestServer, TIMEOUT};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fs::fstat;
use rustix::io::{pread, pwrite};
use venus_server::capset::VenusCapset;
use venus_server::stub::StubBackend;
use venus_server::vtest::protocol::{build, cmd};
use venus_server::{ClientPolicy, Server, ServerConfig, ServerError};

fn readable(fd: &std::os::fd::OwnedFd, ms: i64) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    let t = Timespec {
        tv_sec: ms / 1000,
        tv_nsec: (ms % 1000) * 1_000_000,
    };
    poll(&mut fds, Some(&t)).unwrap() == 1
}

#[test]
fn mesa_handshake_blob_submit_unref() {
    let server = TestServer::start();
    let mut c = server.connect();
    let capset = c.handshake("vulkaninfo");
    assert_eq!(capset, VenusCapset::for_protocol().to_dwords());

    // The instance ring blob.
    let (res_id, fd) = c.create_blob(131268);
    assert_eq!(res_id, 1);
    let fd = fd.expect("an fd with the blob");
    assert_eq!(fstat(&fd).unwrap().st_size, 131268);
    let conn_id = server.backend.log(|l| l.contexts[0].0);
    assert_eq!(
        server.backend.log(|l| l.contexts.clone()),
        [(conn_id, "vulkaninfo".to_string())]
    );
    // Shared both ways with the server's copy, zero-filled.
    let server_fd = server.backend.blob_fd(conn_id, res_id).unwrap();
    let mut buf = [0xffu8; 8];
    pread(&server_fd, &mut buf, 131260).unwrap();
    assert_eq!(buf, [0; 8]);
    pwrite(&fd, b"from the client", 64).unwrap();
    let mut buf = [0u8; 15];
    pread(&server_fd, &mut buf, 64).unwrap();
    assert_eq!(&buf, b"from the client");
    pwrite(&server_fd, b"head", 0).unwrap();
    let mut buf = [0u8; 4];
    pread(&fd, &mut buf, 0).unwrap();
    assert_eq!(&buf, b"head");

    // SUBMIT_CMD2 reaches the backend with the right bytes.
    let commands = notify_ring_command(0x1234_5678_9abc, 64);
    let msg = build::submit_cmd2(0, &commands, &[]);
    c.send_split(&msg);
    assert!(server
        .backend
        .wait_for(TIMEOUT, |l| l.submissions.len() == 1));
    let sub = server.backend.log(|l| l.submissions[0].clone());
    assert_eq!(sub.ring_idx, 0);
    assert_eq!(sub.commands, commands);
    assert_eq!(sub.command_names, ["vkNotifyRingMESA"]);

    // A second blob gets a new id; unref frees it on the backend.
    let (res2, fd2) = c.create_blob(1 << 20);
    assert_eq!(res2, 2);
    assert!(fd2.is_some());
    c.send(&build::request(cmd::RESOURCE_UNREF, &[1]));
    c.send(&build::request(cmd::RESOURCE_UNREF, &[2]));
    c.ping();
    assert_eq!(
        server.backend.log(|l| l.unrefs.clone()),
        [(conn_id, 1), (conn_id, 2)]
    );
    assert!(server.backend.blob_fd(conn_id, 1).is_none());
    assert!(server.backend.log(|l| l.fatal.is_empty()));

    drop(c);
    assert!(server
        .backend
        .wait_for(TIMEOUT, |l| l.destroyed == [conn_id]));
    server.stop().unwrap();
}

/// The server reassembles messages that arrive one byte at a time.
#[test]
fn byte_at_a_time() {
    let server = TestServer::start();
    let mut c = server.connect();
    let mut all = build::create_renderer("slow");
    all.extend(build::request(cmd::PING_PROTOCOL_VERSION, &[]));
    all.extend(build::request(cmd::GET_PARAM, &[1]));
    for b in all {
        c.send(&[b]);
    }
    assert_eq!(c.response(cmd::PING_PROTOCOL_VERSION), Vec::<u32>::new());
    assert_eq!(c.response(cmd::GET_PARAM), [1, 64]);
}

#[test]
fn protocol_version_and_params() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.send(&build::create_renderer("x"));
    c.send(&build::request(cmd::PROTOCOL_VERSION, &[7]));
    assert_eq!(c.response(cmd::PROTOCOL_VERSION), [3]);
    c.send(&build::request(cmd::PROTOCOL_VERSION, &[2]));
    assert_eq!(c.response(cmd::PROTOCOL_VERSION), [2]);
    c.send(&build::request(cmd::GET_PARAM, &[2]));
    assert_eq!(c.response(cmd::GET_PARAM), [0, 0]);
    c.send(&build::request(cmd::GET_CAPSET, &[1, 0]));
    assert_eq!(c.response(cmd::GET_CAPSET), [0]);
    c.send(&build::request(cmd::GET_CAPSET, &[4, 1]));
    assert_eq!(c.response(cmd::GET_CAPSET), [0]);
    assert!(server.backend.log(|l| l.fatal.is_empty()));
}

#[test]
fn truncated_header_then_close() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.send(&build::create_renderer("truncated"));
    c.ping();
    c.send(&[1, 0, 0, 0, 15]);
    c.s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(c.closed_by_server());
    assert!(server.backend.wait_for(TIMEOUT, |l| l.destroyed.len() == 1));
    // The server goes on.
    server.connect().handshake("next");
}

#[test]
fn truncated_payload_then_close() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.send(&build::create_renderer("truncated"));
    let blob = build::create_blob(2, 1, 4096, 0);
    c.send(&blob[..20]);
    c.s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(c.closed_by_server());
    server.connect().handshake("next");
}

#[test]
fn first_message_must_be_create_renderer() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.send(&build::request(cmd::PING_PROTOCOL_VERSION, &[]));
    assert!(c.closed_by_server());
    assert!(server.backend.log(|l| l.contexts.is_empty()));
}

#[test]
fn payload_beyond_cap_closes() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.send(&build::create_renderer("huge"));
    c.send(&[0xff, 0xff, 0xff, 0xff, 24, 0, 0, 0]);
    assert!(c.closed_by_server());
    let mut c = server.connect();
    c.send(&[0xff, 0xff, 0, 0, 8, 0, 0, 0]); // CREATE_RENDERER of 65535 bytes
    assert!(c.closed_by_server());
}

/// An unknown command poisons that context only: the connection stays open and keeps
/// answering (Mesa would spin on EOF), with failure values; another client is unaffected.
#[test]
fn unknown_command_poisons_only_that_context() {
    let server = TestServer::start();
    let mut bad = server.connect();
    bad.handshake("bad");
    let mut good = server.connect();
    good.send(&build::create_renderer("good"));

    bad.send(&build::request(99, &[1, 2]));
    bad.ping();
    bad.send(&build::request(cmd::GET_PARAM, &[1]));
    assert_eq!(bad.response(cmd::GET_PARAM), [0, 0]);
    bad.send(&build::request(cmd::GET_CAPSET, &[4, 0]));
    assert_eq!(bad.response(cmd::GET_CAPSET), [0]);
    let (res_id, fd) = bad.create_blob(4096);
    assert_eq!(res_id, 0);
    assert!(fd.is_none(), "failure answer carries no fd");
    bad.send(&build::submit_cmd2(0, &notify_ring_command(1, 2), &[]));
    bad.ping();
    let fatal = server.backend.log(|l| l.fatal.clone());
    assert_eq!(fatal.len(), 1);
    assert!(fatal[0].1.contains("command 99"), "{fatal:?}");
    assert!(server.backend.log(|l| l.submissions.is_empty()));

    // The well-behaved client completes its handshake and works.
    good.send(&build::request(cmd::PING_PROTOCOL_VERSION, &[]));
    assert_eq!(good.response(cmd::PING_PROTOCOL_VERSION), Vec::<u32>::new());
    good.send(&build::request(cmd::GET_CAPSET, &[4, 0]));
    assert_eq!(good.response(cmd::GET_CAPSET).len(), 41);
    good.send(&build::request(cmd::CONTEXT_INIT, &[4]));
    let (res_id, fd) = good.create_blob(4096);
    assert_eq!(res_id, 1);
    assert!(fd.is_some());
}

/// An absurd blob size gets the failure answer (res_id 0, no fd) while a concurrent client
/// completes its handshake, and the server still accepts a third connection afterwards.
#[test]
fn absurd_blob_size_fails_alone() {
    let server = TestServer::start();
    let mut a = server.connect();
    a.handshake("absurd");
    let path = server.path.clone();
    let other = std::thread::spawn(move || {
        let mut b = Client::connect(&path);
        b.handshake("concurrent");
        let (res_id, fd) = b.create_blob(131268);
        assert_eq!(res_id, 1);
        fd.is_some()
    });
    let (res_id, fd) = a.create_blob(1 << 60);
    assert_eq!(res_id, 0);
    assert!(fd.is_none());
    let (res_id, fd) = a.create_blob(0);
    assert_eq!(res_id, 0);
    assert!(fd.is_none());
    // Mesa unrefs res_id 0 after the failed mmap: ignored.
    a.send(&build::request(cmd::RESOURCE_UNREF, &[0]));
    // Not poisoned: a sane blob still works on the same connection.
    let (res_id, fd) = a.create_blob(4096);
    assert_eq!(res_id, 1);
    assert!(fd.is_some());
    assert!(other.join().unwrap());
    assert!(server.backend.log(|l| l.fatal.is_empty()));
    let mut c = server.connect();
    c.handshake("third");
    assert_eq!(c.create_blob(4096).0, 1);
}

#[test]
fn blob_and_submit_before_context_init_poison() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.send(&build::create_renderer("early"));
    let (res_id, fd) = c.create_blob(4096);
    assert_eq!((res_id, fd.is_none()), (0, true));
    c.send(&build::request(cmd::CONTEXT_INIT, &[4]));
    let (res_id, _) = c.create_blob(4096);
    assert_eq!(res_id, 0, "poisoned: init ignored");
    let fatal = server.backend.log(|l| l.fatal.clone());
    assert!(fatal[0].1.contains("before CONTEXT_INIT"), "{fatal:?}");
}

#[test]
fn context_init_with_wrong_capset_poisons() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.send(&build::create_renderer("virgl"));
    c.send(&build::request(cmd::CONTEXT_INIT, &[1]));
    let (res_id, _) = c.create_blob(4096);
    assert_eq!(res_id, 0);
    let fatal = server.backend.log(|l| l.fatal.clone());
    assert!(fatal[0].1.contains("capset 1"), "{fatal:?}");
}

#[test]
fn malformed_submit_poisons() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.handshake("bad-submit");
    // cmd range past the end of the payload
    c.send(&build::request(cmd::SUBMIT_CMD2, &[1, 1, 7, 100, 7, 0, 0]));
    c.ping();
    let fatal = server.backend.log(|l| l.fatal.clone());
    assert!(fatal[0].1.contains("outside"), "{fatal:?}");
    // ring_idx beyond the timeline count poisons too (fresh connection)
    let mut c = server.connect();
    c.handshake("bad-ring");
    c.send(&build::submit_cmd2(64, &notify_ring_command(1, 2), &[]));
    c.ping();
    let fatal = server.backend.log(|l| l.fatal.clone());
    assert!(fatal[1].1.contains("ring_idx 64"), "{fatal:?}");
    assert!(server.backend.log(|l| l.submissions.is_empty()));
}

/// A command stream the backend cannot decode makes the context fatal; later submits are
/// dropped, the socket stays open.
#[test]
fn backend_fatal_stops_work() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.handshake("garbage");
    let garbage = [0xffu8; 16];
    c.send(&build::submit_cmd2(0, &garbage, &[]));
    c.ping();
    c.send(&build::submit_cmd2(0, &notify_ring_command(1, 2), &[]));
    c.ping();
    assert_eq!(server.backend.log(|l| l.submissions.len()), 1);
    let fatal = server.backend.log(|l| l.fatal.clone());
    assert_eq!(fatal.len(), 1);
    assert!(fatal[0].1.contains("undecodable"), "{fatal:?}");
    assert_eq!(c.create_blob(4096).0, 0);
}

#[test]
fn syncs() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.handshake("syncs");
    c.send(&build::request(cmd::SYNC_CREATE, &[0, 0]));
    let id = c.response(cmd::SYNC_CREATE)[0];
    assert_ne!(id, 0);
    // Wait for value 1: not yet.
    c.send(&build::request(cmd::SYNC_WAIT, &[0, u32::MAX, id, 1, 0]));
    assert_eq!(c.response(cmd::SYNC_WAIT), Vec::<u32>::new());
    let fd = c.recv_fd().expect("SYNC_WAIT fd");
    assert!(!readable(&fd, 50));
    // A ring_idx 0 batch signals its syncs once processed.
    c.send(&build::submit_cmd2(
        0,
        &notify_ring_command(1, 2),
        &[(id, 1)],
    ));
    assert!(readable(&fd, 5000));
    c.send(&build::request(cmd::SYNC_READ, &[id]));
    assert_eq!(c.response(cmd::SYNC_READ), [1, 0]);
    c.send(&build::request(cmd::SYNC_WRITE, &[id, 5, 1]));
    c.send(&build::request(cmd::SYNC_READ, &[id]));
    assert_eq!(c.response(cmd::SYNC_READ), [5, 1]);
    // WAIT_ANY on an already reached value: readable at once.
    c.send(&build::request(cmd::SYNC_WAIT, &[1, 0, id, 1, 0]));
    assert_eq!(c.response(cmd::SYNC_WAIT), Vec::<u32>::new());
    assert!(readable(&c.recv_fd().unwrap(), 1000));
    c.send(&build::request(cmd::SYNC_UNREF, &[id]));
    c.ping();
    assert!(server.backend.log(|l| l.fatal.is_empty()));
    // Unknown sync id: poisoned, but still answered with a (signalled) fd.
    c.send(&build::request(cmd::SYNC_WAIT, &[0, u32::MAX, id, 1, 0]));
    assert_eq!(c.response(cmd::SYNC_WAIT), Vec::<u32>::new());
    assert!(readable(&c.recv_fd().unwrap(), 1000));
    assert_eq!(server.backend.log(|l| l.fatal.len()), 1);
}

/// virgl_test_server --no-fork: one client at a time, the next waits in the backlog.
#[test]
fn sequential_policy() {
    let server = TestServer::start_with(ClientPolicy::Sequential);
    let mut a = server.connect();
    a.send(&build::create_renderer("first"));
    a.ping();
    let mut b = server.connect();
    b.send(&build::create_renderer("second"));
    b.send(&build::request(cmd::PING_PROTOCOL_VERSION, &[]));
    b.s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(b.read_bytes(8).is_err(), "second client must wait");
    drop(a);
    b.s.set_read_timeout(Some(TIMEOUT)).unwrap();
    assert_eq!(b.response(cmd::PING_PROTOCOL_VERSION), Vec::<u32>::new());
}

#[test]
fn once_policy_serves_one_client() {
    let mut server = TestServer::start_with(ClientPolicy::Once);
    let mut a = server.connect();
    a.handshake("only");
    drop(a);
    assert!(server.wait_finished(TIMEOUT));
    assert!(!server.path.exists(), "socket removed");
}

#[test]
fn many_concurrent_clients() {
    let server = TestServer::start();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let path = server.path.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(&path);
                c.handshake(&format!("client{i}"));
                for n in 1..=4 {
                    let (res_id, fd) = c.create_blob(4096 * n);
                    assert_eq!(res_id, n as u32);
                    assert_eq!(fstat(fd.unwrap()).unwrap().st_size, 4096 * n as i64);
                }
                c.send(&build::submit_cmd2(0, &notify_ring_command(i, 1), &[]));
                c.ping();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(server.backend.log(|l| l.submissions.len()), 8);
    assert_eq!(server.backend.log(|l| l.blobs_created.len()), 32);
}

#[test]
fn shutdown_closes_clients_and_removes_socket() {
    let server = TestServer::start();
    let path = server.path.clone();
    let mut c = server.connect();
    c.handshake("lingering");
    let backend = std::sync::Arc::clone(&server.backend);
    server.stop().unwrap();
    assert!(!path.exists());
    assert!(c.closed_by_server());
    assert!(backend.wait_for(TIMEOUT, |l| l.destroyed.len() == 1));
}

#[test]
fn refuses_live_server_and_non_sockets_replaces_stale_socket() {
    let server = TestServer::start();
    let config = ServerConfig {
        socket_path: server.path.clone(),
        ..ServerConfig::default()
    };
    let backend = std::sync::Arc::new(StubBackend::new());
    assert!(matches!(
        Server::bind(config.clone(), backend.clone()),
        Err(ServerError::AlreadyRunning(_))
    ));
    // Still serving.
    server.connect().handshake("still-there");

    let dir = TempDir::new();
    let file = dir.0.join("regular");
    std::fs::File::create(&file)
        .unwrap()
        .write_all(b"keep me")
        .unwrap();
    let config = ServerConfig {
        socket_path: file.clone(),
        ..ServerConfig::default()
    };
    assert!(matches!(
        Server::bind(config, backend.clone()),
        Err(ServerError::NotASocket(_))
    ));
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");

    // A stale socket (bound, nobody listening) is replaced.
    let stale = dir.0.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    assert!(UnixStream::connect(&stale).is_err());
    let config = ServerConfig {
        socket_path: stale.clone(),
        ..ServerConfig::default()
    };
    let server2 = Server::bind(config, backend).unwrap();
    let handle = server2.shutdown_handle();
    let t = std::thread::spawn(move || server2.run());
    Client::connect(&stale).handshake("on-replaced");
    handle.shutdown();
    t.join().unwrap().unwrap();
    assert!(!stale.exists());
}
