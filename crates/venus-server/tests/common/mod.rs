//! An in-process server on a temporary socket with the stub backend, and a test client that
//! speaks vtest the way Mesa's `vn_renderer_vtest.c` does.

#![allow(dead_code)]

mod sys;

use std::io::{self, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage};
use venus_server::stub::StubBackend;
use venus_server::vtest::protocol::{build, cmd, Header, HEADER_LEN};
use venus_server::vtest::Limits;
use venus_server::{ClientPolicy, Server, ServerConfig, ServerError, ShutdownHandle};

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A unique temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "venus-server-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct TestServer {
    pub path: PathBuf,
    pub backend: Arc<StubBackend>,
    handle: ShutdownHandle,
    thread: Option<JoinHandle<Result<(), ServerError>>>,
    _dir: TempDir,
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_with(ClientPolicy::Concurrent)
    }

    pub fn start_with(clients: ClientPolicy) -> Self {
        let dir = TempDir::new();
        let path = dir.0.join("vtest.sock");
        let backend = Arc::new(StubBackend::new());
        let config = ServerConfig {
            socket_path: path.clone(),
            clients,
            limits: Limits::default(),
        };
        let server = Server::bind(config, Arc::clone(&backend)).expect("bind");
        let handle = server.shutdown_handle();
        let thread = std::thread::spawn(move || server.run());
        Self {
            path,
            backend,
            handle,
            thread: Some(thread),
            _dir: dir,
        }
    }

    pub fn connect(&self) -> Client {
        Client::connect(&self.path)
    }

    /// Shuts down and returns what `run` returned.
    pub fn stop(mut self) -> Result<(), ServerError> {
        self.handle.shutdown();
        self.thread.take().unwrap().join().unwrap()
    }

    /// Waits for the server thread to end by itself (ClientPolicy::Once).
    pub fn wait_finished(&mut self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if self.thread.as_ref().is_some_and(|t| t.is_finished()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub struct Client {
    pub s: UnixStream,
}

impl Client {
    pub fn connect(path: &std::path::Path) -> Self {
        let s = UnixStream::connect(path).expect("connect");
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        Self { s }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("send");
    }

    /// Header and payload with separate writes, like Mesa.
    pub fn send_split(&mut self, msg: &[u8]) {
        self.send(&msg[..HEADER_LEN]);
        std::thread::sleep(Duration::from_millis(2));
        self.send(&msg[HEADER_LEN..]);
    }

    pub fn read_bytes(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; n];
        self.s.read_exact(&mut buf)?;
        Ok(buf)
    }

    /// Reads a response to `id` and returns its dwords.
    pub fn response(&mut self, id: u32) -> Vec<u32> {
        let h = Header::parse(&self.read_bytes(HEADER_LEN).expect("response header")).unwrap();
        assert_eq!(h.id, id, "response id");
        self.read_bytes(h.length as usize * 4)
            .expect("response payload")
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    /// The 1-byte fd message, read with `recvmsg` and room for one fd (like Mesa).
    pub fn recv_fd(&mut self) -> Option<OwnedFd> {
        let mut byte = [0u8; 1];
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let r = recvmsg(
            &self.s,
            &mut [IoSliceMut::new(&mut byte)],
            &mut control,
            sys::RECV_FD_FLAGS,
        )
        .expect("recvmsg");
        assert_eq!(r.bytes, 1, "the fd message is one byte");
        let mut fds = Vec::new();
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(rights) = msg {
                fds.extend(rights);
            }
        }
        assert!(fds.len() <= 1, "at most one fd");
        fds.pop()
    }

    /// Whether the server closed the connection (EOF within the timeout).
    pub fn closed_by_server(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.s.read(&mut b), Ok(0))
    }

    /// Steps 1–6 of the contract §3.1, exactly as Mesa 25.0.7 does them. Returns the capset.
    pub fn handshake(&mut self, name: &str) -> Vec<u32> {
        // 1. CREATE_RENDERER, length in bytes, unpadded; no response.
        self.send(&build::create_renderer(name));
        // 2. PING + BUSY_WAIT pipelined (separate writes, no wait in between).
        self.send(&build::request(cmd::PING_PROTOCOL_VERSION, &[]));
        self.send_split(&build::request(cmd::RESOURCE_BUSY_WAIT, &[0, 0]));
        assert_eq!(self.response(cmd::PING_PROTOCOL_VERSION), Vec::<u32>::new());
        assert_eq!(self.response(cmd::RESOURCE_BUSY_WAIT), [0]);
        // 3. PROTOCOL_VERSION 3.
        self.send_split(&build::request(cmd::PROTOCOL_VERSION, &[3]));
        assert_eq!(self.response(cmd::PROTOCOL_VERSION), [3]);
        // 4. GET_PARAM(MAX_TIMELINE_COUNT).
        self.send_split(&build::request(cmd::GET_PARAM, &[1]));
        assert_eq!(self.response(cmd::GET_PARAM), [1, 64]);
        // 5. GET_CAPSET(VENUS, 0).
        self.send_split(&build::request(cmd::GET_CAPSET, &[4, 0]));
        let capset = self.response(cmd::GET_CAPSET);
        assert_eq!(capset.len(), 41);
        assert_eq!(capset[0], 1, "valid");
        // 6. CONTEXT_INIT(VENUS); no response.
        self.send_split(&build::request(cmd::CONTEXT_INIT, &[4]));
        capset[1..].to_vec()
    }

    /// RESOURCE_CREATE_BLOB (HOST3D, MAPPABLE, blob_id 0) → (res_id, fd).
    pub fn create_blob(&mut self, size: u64) -> (u32, Option<OwnedFd>) {
        self.send_split(&build::create_blob(2, 1, size, 0));
        let r = self.response(cmd::RESOURCE_CREATE_BLOB);
        assert_eq!(r.len(), 1);
        let fd = self.recv_fd();
        (r[0], fd)
    }

    pub fn ping(&mut self) {
        self.send(&build::request(cmd::PING_PROTOCOL_VERSION, &[]));
        assert_eq!(self.response(cmd::PING_PROTOCOL_VERSION), Vec::<u32>::new());
    }
}

/// `vkNotifyRingMESA(ring, seqno, flags = 0)`: a small valid Venus command (24 bytes).
pub fn notify_ring_command(ring: u64, seqno: u32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&190i32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&ring.to_le_bytes());
    v.extend_from_slice(&seqno.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v
}
