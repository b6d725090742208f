//! The listening side: a UNIX `SOCK_STREAM` socket, an accept loop, one thread per connection
//! (named `vtest-conn-N`), and a clean shutdown.
//!
//! Client scheduling mirrors `virgl_test_server` (vtest/vtest_server.c):
//!
//! | reference flags | reference behaviour | [`ClientPolicy`] |
//! |---|---|---|
//! | (default) | fork per client: clients served concurrently, isolated | `Concurrent` |
//! | `--multi-clients` | one process, clients served concurrently ("must trust each other") | `Concurrent` |
//! | `--no-fork` | one process, **one client at a time** (the next waits in the backlog) | `Sequential` |
//! | `--no-loop-or-fork` | serve one client, then exit | `Once` |
//!
//! We never fork (DESIGN.md decision 5): every client gets its own context on its own thread,
//! isolated like a forked child (a bad client poisons only its own context), so concurrent
//! service is always safe and is what the reference's default mode looks like from outside.

use std::collections::HashMap;
use std::io;
use std::net::Shutdown;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use thiserror::Error;
use tracing::{debug, error, info, warn};

use crate::sys::Notifier;
use crate::vtest::{conn, Backend, Limits};

/// Default socket path (Mesa's default `VTEST_SOCKET_NAME`).
pub const DEFAULT_SOCKET_PATH: &str = "/tmp/.virgl_test";

/// How long shutdown waits for connection threads before leaving them behind.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How clients are scheduled (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientPolicy {
    /// Serve every client at once, each on its own thread.
    #[default]
    Concurrent,
    /// Serve one client at a time; others wait in the listen backlog.
    Sequential,
    /// Serve one client, then stop.
    Once,
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub socket_path: PathBuf,
    pub clients: ClientPolicy,
    pub limits: Limits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            socket_path: DEFAULT_SOCKET_PATH.into(),
            clients: ClientPolicy::default(),
            limits: Limits::default(),
        }
    }
}

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("another server is already listening on {}", .0.display())]
    AlreadyRunning(PathBuf),
    #[error("{} exists and is not a socket; refusing to replace it", .0.display())]
    NotASocket(PathBuf),
    #[error("{context} {}: {source}", .path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(context: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ServerError {
    let path = path.to_owned();
    move |source| ServerError::Io {
        context,
        path,
        source,
    }
}

#[derive(Debug)]
struct Shared {
    stop: AtomicBool,
    waker: Notifier,
    /// Live connections' streams (clones), to shut them down on stop.
    conns: Mutex<HashMap<u64, UnixStream>>,
}

impl Shared {
    fn conns(&self) -> MutexGuard<'_, HashMap<u64, UnixStream>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn shutdown_connections(&self) {
        for stream in self.conns().values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Stops a running [`Server`] from any thread (e.g. a signal handler thread).
#[derive(Debug, Clone)]
pub struct ShutdownHandle(Arc<Shared>);

impl ShutdownHandle {
    /// Asks the server to stop: no more accepts, every connection is shut down (its thread
    /// sees EOF and drops its context), then [`Server::run`] returns and removes the socket.
    pub fn shutdown(&self) {
        self.0.stop.store(true, Ordering::SeqCst);
        self.0.shutdown_connections();
        self.0.waker.notify();
    }
}

/// A bound vtest server.
#[derive(Debug)]
pub struct Server<B: Backend> {
    listener: UnixListener,
    path: PathBuf,
    /// (dev, inode) of the socket file we created, so we never remove someone else's.
    identity: Option<(u64, u64)>,
    config: ServerConfig,
    backend: Arc<B>,
    shared: Arc<Shared>,
    next_conn_id: AtomicU64,
}

impl<B: Backend> Server<B> {
    /// Binds the socket: a stale socket file (nobody answers) is removed first; a live server
    /// or a non-socket file at the path is an error.
    pub fn bind(config: ServerConfig, backend: Arc<B>) -> Result<Self, ServerError> {
        let path = config.socket_path.clone();
        prepare_socket_path(&path)?;
        let listener = UnixListener::bind(&path).map_err(io_err("binding", &path))?;
        // Non-blocking so that an accept after poll never blocks (the client may be gone).
        listener
            .set_nonblocking(true)
            .map_err(io_err("configuring", &path))?;
        let identity = std::fs::metadata(&path).ok().map(|m| (m.dev(), m.ino()));
        let waker = Notifier::new().map_err(io_err("creating the wake-up fd for", &path))?;
        info!(path = %path.display(), policy = ?config.clients, "listening");
        Ok(Self {
            listener,
            path,
            identity,
            config,
            backend,
            shared: Arc::new(Shared {
                stop: AtomicBool::new(false),
                waker,
                conns: Mutex::default(),
            }),
            next_conn_id: AtomicU64::new(1),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A handle that stops [`Server::run`].
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(Arc::clone(&self.shared))
    }

    /// Accepts and serves clients until shut down (or, with [`ClientPolicy::Once`], until the
    /// first client is done). Removes the socket file before returning.
    pub fn run(self) -> Result<(), ServerError> {
        let result = self.accept_loop();
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.shutdown_connections();
        self.remove_socket_file();
        result
    }

    fn accept_loop(&self) -> Result<(), ServerError> {
        let mut threads: Vec<(u64, JoinHandle<()>)> = Vec::new();
        let result = loop {
            if self.stopping() {
                break Ok(());
            }
            match self.wait_readable() {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => break Err(io_err("polling", &self.path)(e)),
            }
            if self.stopping() {
                break Ok(());
            }
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock
                    | io::ErrorKind::Interrupted
                    | io::ErrorKind::ConnectionAborted => continue,
                    _ => {
                        // EMFILE/ENFILE/ENOMEM: back off instead of spinning.
                        warn!("accept failed: {e}; retrying in 100 ms");
                        thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                },
            };
            reap(&mut threads);
            let Some((id, handle)) = self.spawn_connection(stream) else {
                continue;
            };
            match self.config.clients {
                ClientPolicy::Concurrent => threads.push((id, handle)),
                ClientPolicy::Sequential | ClientPolicy::Once => {
                    join(id, handle);
                    if self.config.clients == ClientPolicy::Once {
                        break Ok(());
                    }
                }
            }
        };
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.shutdown_connections();
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while !threads.is_empty() && Instant::now() < deadline {
            reap(&mut threads);
            thread::sleep(Duration::from_millis(10));
        }
        for (id, _) in &threads {
            warn!(
                conn = id,
                "connection thread did not stop in time; leaving it behind"
            );
        }
        result
    }

    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }

    /// Waits until the listener or the wake-up fd is readable; `Ok(false)` on EINTR.
    fn wait_readable(&self) -> io::Result<bool> {
        let mut fds = [
            PollFd::new(&self.listener, PollFlags::IN),
            PollFd::from_borrowed_fd(self.shared.waker.readable_fd(), PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) => Ok(true),
            Err(rustix::io::Errno::INTR) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn spawn_connection(&self, stream: UnixStream) -> Option<(u64, JoinHandle<()>)> {
        let id = self.next_conn_id.fetch_add(1, Ordering::Relaxed);
        // Accepted sockets inherit O_NONBLOCK on BSD/macOS: connections use blocking I/O.
        if let Err(e) = stream.set_nonblocking(false) {
            warn!(conn = id, "dropping a new connection: {e}");
            return None;
        }
        match stream.try_clone() {
            Ok(clone) => {
                self.shared.conns().insert(id, clone);
            }
            Err(e) => {
                warn!(conn = id, "dropping a new connection: {e}");
                return None;
            }
        }
        let backend = Arc::clone(&self.backend);
        let shared = Arc::clone(&self.shared);
        let limits = self.config.limits;
        let spawned = thread::Builder::new()
            .name(format!("vtest-conn-{id}"))
            .spawn(move || {
                let span = tracing::info_span!("conn", id);
                let _guard = span.enter();
                let _ = conn::serve(stream, id, backend, limits);
                shared.conns().remove(&id);
            });
        match spawned {
            Ok(handle) => {
                debug!(conn = id, "connection accepted");
                Some((id, handle))
            }
            Err(e) => {
                warn!(
                    conn = id,
                    "cannot start a connection thread: {e}; dropping the client"
                );
                if let Some(s) = self.shared.conns().remove(&id) {
                    let _ = s.shutdown(Shutdown::Both);
                }
                None
            }
        }
    }

    fn remove_socket_file(&self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .ok()
            .is_some_and(|m| Some((m.dev(), m.ino())) == self.identity);
        if ours {
            match std::fs::remove_file(&self.path) {
                Ok(()) => info!(path = %self.path.display(), "socket removed"),
                Err(e) => warn!(path = %self.path.display(), "cannot remove the socket: {e}"),
            }
        }
    }
}

/// Joins finished connection threads.
fn reap(threads: &mut Vec<(u64, JoinHandle<()>)>) {
    let mut i = 0;
    while i < threads.len() {
        if threads[i].1.is_finished() {
            let (id, handle) = threads.swap_remove(i);
            join(id, handle);
        } else {
            i += 1;
        }
    }
}

fn join(id: u64, handle: JoinHandle<()>) {
    if handle.join().is_err() {
        // The panic message was already printed by the panic hook; the server goes on.
        error!(conn = id, "connection thread panicked; its context is gone");
    }
}

/// Removes a stale socket file at `path`; refuses a live server or a non-socket file.
fn prepare_socket_path(path: &Path) -> Result<(), ServerError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("inspecting", path)(e)),
    };
    if !meta.file_type().is_socket() {
        return Err(ServerError::NotASocket(path.to_owned()));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(ServerError::AlreadyRunning(path.to_owned())),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            info!(path = %path.display(), "removing a stale socket");
            std::fs::remove_file(path).map_err(io_err("removing the stale socket", path))
        }
        Err(e) => Err(io_err("probing the existing socket", path)(e)),
    }
}
