//! The `vtest_framing` target: the fuzzer's bytes as what a client wrote on the vtest socket.
//!
//! The bytes go into one end of a fresh `socketpair`, which is then shut for writing; the other
//! end is served by the real connection state machine (`venus_server::vtest::conn::serve`) over
//! a fresh stub backend (blobs are real shared memory, submissions are logged, rings never
//! run), on this thread, until EOF or the server closes the connection. A thread drains the
//! answers (fds passed with them are closed by the kernel, unread). Invariants: no panic, no
//! hang, no unbounded allocation; the connection always ends.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use venus_server::stub::StubBackend;
use venus_server::vtest::conn::serve;
use venus_server::vtest::Limits;

/// Limits small enough that a fuzz input cannot make the stub allocate much (the transport's
/// checks are the same whatever the numbers).
pub const FUZZ_LIMITS: Limits = Limits {
    max_device_memory: 64 << 20,
    max_shared_memory: 64 << 20,
    max_shared_memory_objects: 256,
    max_objects: 4096,
    max_ring_size: 16 << 20,
    max_rings: 16,
    max_blob_size: 16 << 20,
    max_resources: 256,
};

/// Serves `data` as one client's byte stream; returns how many answer bytes the server wrote.
pub fn serve_bytes(data: &[u8]) -> usize {
    let (mut client, server) = UnixStream::pair().expect("socketpair");
    let reader = {
        let mut c = client.try_clone().expect("socket clone");
        std::thread::spawn(move || {
            let mut total = 0;
            let mut buf = [0u8; 4096];
            while let Ok(n) = c.read(&mut buf) {
                if n == 0 {
                    break;
                }
                total += n;
            }
            total
        })
    };
    // The socket buffer holds far more than a fuzz input; a write error (the server closed
    // early) is part of what is fuzzed.
    let _ = client.write_all(data);
    let _ = client.shutdown(Shutdown::Write);
    let _ = serve(server, 1, Arc::new(StubBackend::new()), FUZZ_LIMITS);
    // `serve` dropped its end: the reader sees EOF.
    reader.join().unwrap_or(0)
}
