//! The `venus-server` process under test: started on a temporary socket with lavapipe
//! (optionally under the Khronos validation layer, optionally with `--host-page-size`), its
//! stderr (the log) and stdout (where the validation layer writes) captured line by line with
//! arrival timestamps, its thread and open descriptor counts read from `/proc/<pid>/task` and
//! `/proc/<pid>/fd`, killed on drop. Also the environment that points a Mesa Venus client at
//! it, and `vulkaninfo --summary` through it.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::tools::Tools;

/// How long the server may take to listen, and a log line to appear by default.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// What `VN_PERF` must be for Mesa clients until mapped memory and feedback work.
pub const VN_PERF: &str =
    "no_fence_feedback,no_semaphore_feedback,no_event_feedback,no_query_feedback";

/// A unique temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "venus-testapps-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating a temporary directory");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One captured output line and when it arrived.
#[derive(Clone, Debug)]
pub struct Line {
    pub at: Instant,
    pub text: String,
}

type Lines = Arc<Mutex<Vec<Line>>>;

/// Removes ANSI colour sequences (CSI ... final byte).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn capture(stream: impl Read + Send + 'static, lines: Lines) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let text = strip_ansi(&line);
            lines.lock().unwrap().push(Line {
                at: Instant::now(),
                text,
            });
        }
    })
}

/// Options for [`Server::start`].
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Run the server under `VK_LAYER_KHRONOS_validation` (messages on its stdout).
    pub validation: bool,
    /// `--host-page-size BYTES` (e.g. 16384, the Apple silicon profile); `None`: the real
    /// page size.
    pub host_page_size: Option<u64>,
    /// Extra arguments.
    pub args: Vec<String>,
    /// Extra environment variables of the server, set last (e.g. a test layer's
    /// `VK_ADD_LAYER_PATH` and `VK_INSTANCE_LAYERS`).
    pub env: Vec<(String, String)>,
}

impl ServerOptions {
    /// The server's command-line arguments besides `--socket-path`.
    pub fn arguments(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(page) = self.host_page_size {
            args.extend(["--host-page-size".to_owned(), page.to_string()]);
        }
        args.extend(self.args.iter().cloned());
        args
    }
}

/// The server exited before it listened: its status and what it wrote on stderr.
#[derive(Debug)]
pub struct StartFailure {
    pub status: ExitStatus,
    pub stderr: String,
}

/// The path of the built `venus-server`: next to the test executable's parent directory
/// (`target/debug/deps/<test>` -> `target/debug/venus-server`), or `VENUS_SERVER_BIN`.
pub fn server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("VENUS_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let candidates: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(3)
        .map(|d| d.join("venus-server"))
        .collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "venus-server is not built (looked at {candidates:?}): run `cargo build -p \
                 venus-server` (`cargo test --workspace` builds it)"
            )
        })
}

/// A binary of this crate, next to the test executable's parent directory (cargo builds
/// them for integration tests and tells us where through `CARGO_BIN_EXE_<name>` at compile
/// time; this runtime lookup serves callers outside integration tests).
pub fn sibling_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .skip(1)
        .take(3)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not built next to {}", exe.display()))
}

/// The running server. Killed (by PID) on drop.
pub struct Server {
    child: Child,
    socket: PathBuf,
    log: Lines,
    stdout: Lines,
    tools: Tools,
    /// The threads reading stderr and stdout (done once the server is gone).
    readers: Vec<thread::JoinHandle<()>>,
    dir: TempDir,
}

impl Server {
    /// Starts the server on a fresh socket and waits for its `listening` line.
    pub fn start(tools: &Tools, options: &ServerOptions) -> Self {
        Self::try_start(tools, options).unwrap_or_else(|f| {
            panic!(
                "venus-server exited at start ({}); log:\n{}",
                f.status, f.stderr
            )
        })
    }

    /// [`Server::start`], or how the server failed if it exited before listening (a
    /// rejected option). Panics if it neither listens nor exits within [`START_TIMEOUT`].
    pub fn try_start(tools: &Tools, options: &ServerOptions) -> Result<Self, StartFailure> {
        let dir = TempDir::new("server");
        let socket = dir.0.join("venus.sock");
        let mut command = Command::new(server_binary());
        command
            .arg("--socket-path")
            .arg(&socket)
            .args(options.arguments())
            .env("VK_DRIVER_FILES", tools.lavapipe_icd())
            .env_remove("VK_ICD_FILENAMES")
            .env_remove("VK_ADD_DRIVER_FILES")
            .env_remove("VK_INSTANCE_LAYERS")
            .env_remove("VK_LOADER_LAYERS_ENABLE")
            .env_remove("VK_LAYER_SETTINGS_PATH")
            .env("VENUS_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if options.validation {
            // Messages go to stdout (a pipe here), not a log file that every instance would
            // truncate when it opens it.
            let settings = "khronos_validation.debug_action = VK_DBG_LAYER_ACTION_LOG_MSG\n\
                            khronos_validation.report_flags = error,warn,perf,info\n\
                            khronos_validation.duplicate_message_limit = 1000\n";
            std::fs::write(dir.0.join("vk_layer_settings.txt"), settings).unwrap();
            command
                .env("VK_INSTANCE_LAYERS", "VK_LAYER_KHRONOS_validation")
                .env("VK_LAYER_SETTINGS_PATH", &dir.0);
        }
        command.envs(options.env.iter().map(|(k, v)| (k, v)));
        let mut child = command.spawn().expect("spawning venus-server");
        let (log, stdout) = (Lines::default(), Lines::default());
        let readers = vec![
            capture(child.stderr.take().unwrap(), Arc::clone(&log)),
            capture(child.stdout.take().unwrap(), Arc::clone(&stdout)),
        ];
        let mut server = Self {
            child,
            socket,
            log,
            stdout,
            tools: tools.clone(),
            readers,
            dir,
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<(), StartFailure> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Its pipes are closed: the readers end once they have read everything.
                for reader in self.readers.drain(..) {
                    let _ = reader.join();
                }
                return Err(StartFailure {
                    status,
                    stderr: self.log_text(),
                });
            }
            if self.socket.exists() && self.log_text().contains("listening") {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "venus-server did not listen within {START_TIMEOUT:?}; log:\n{}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// A scratch directory that lives as long as the server.
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log lines (stderr) so far.
    pub fn log_lines(&self) -> Vec<Line> {
        self.log.lock().unwrap().clone()
    }

    pub fn log_text(&self) -> String {
        join(&self.log_lines())
    }

    /// What the server wrote on stdout (the validation layer's messages).
    pub fn stdout_text(&self) -> String {
        join(&self.stdout.lock().unwrap())
    }

    /// The server's current number of threads.
    pub fn thread_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// The server's resident memory in bytes (`VmRSS` of `/proc/<pid>/status`; 0 if unknown).
    pub fn rss_bytes(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map_or(0, |kib| kib << 10)
    }

    /// The server's current number of open file descriptors (`/proc/<pid>/fd`).
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Waits until a log line satisfies `pred`; returns that line. Panics after `timeout`.
    pub fn wait_line(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> Line {
        self.try_wait_line(timeout, pred).unwrap_or_else(|| {
            panic!(
                "the server log never showed {what} (waited {timeout:?}); log:\n{}",
                self.log_text()
            )
        })
    }

    /// Waits until a log line satisfies `pred`, at most `timeout`.
    pub fn try_wait_line(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<Line> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.log.lock().unwrap().iter().find(|l| pred(&l.text)) {
                return Some(l.clone());
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Panics (with the log) if the server has exited.
    pub fn assert_alive(&mut self, when: &str) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "venus-server (pid {}) died {when}: {status}; log:\n{}",
                self.pid(),
                self.log_text()
            );
        }
    }

    /// The server's exit status if it has exited (its log then read to the end).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.try_wait().ok().flatten()?;
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Some(status)
    }

    /// The environment that runs a Mesa Venus client (a `vulkaninfo`, our test programs)
    /// through this server.
    pub fn venus_client(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.current_dir(self.dir())
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("VK_ICD_FILENAMES")
            .env_remove("VK_ADD_DRIVER_FILES")
            .env_remove("VK_INSTANCE_LAYERS")
            .env_remove("VK_LOADER_LAYERS_ENABLE")
            .env("VK_DRIVER_FILES", self.tools.venus_icd())
            .env("VN_DEBUG", "vtest")
            .env("VN_PERF", VN_PERF)
            .env("VTEST_SOCKET_NAME", &self.socket)
            .stdin(Stdio::null());
        c
    }

    /// [`Server::venus_client`] with Mesa's default feedback (no `VN_PERF` override): what
    /// real applications run with.
    pub fn venus_client_feedback(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = self.venus_client(program);
        c.env_remove("VN_PERF");
        c
    }

    /// The server's CPU time so far (user + system).
    pub fn cpu_time(&self) -> Option<Duration> {
        process_cpu_time(self.pid())
    }

    /// Starts `vulkaninfo --summary` through the server.
    pub fn spawn_vulkaninfo(&self) -> Child {
        self.venus_client("vulkaninfo")
            .arg("--summary")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning vulkaninfo")
    }

    /// Runs `vulkaninfo --summary` through the server and asserts it succeeded and named the
    /// Venus device.
    pub fn assert_vulkaninfo_works(&self, when: &str) {
        let out = wait_output(
            self.spawn_vulkaninfo(),
            Duration::from_secs(60),
            "vulkaninfo",
        );
        assert_vulkaninfo_output(&out, when);
    }

    /// Kills the server (asserting it was still alive) and returns its log.
    pub fn stop(self) -> String {
        self.stop_with_stdout().0
    }

    /// [`Server::stop`], returning its log and everything it wrote on stdout (the
    /// validation layer's report), both read to the end. The server is stopped the way an operator stops it (SIGTERM) and must exit 0 within
    /// 10 s (a clean shutdown: contexts torn down, the driver unloaded).
    pub fn stop_with_stdout(mut self) -> (String, String) {
        self.assert_alive("before the end of the test");
        let status = self.terminate(Duration::from_secs(10));
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let (log, stdout) = (self.log_text(), self.stdout_text());
        assert!(
            status.is_some_and(|s| s.success()),
            "venus-server did not exit cleanly on SIGTERM: {status:?}\nlog:\n{log}"
        );
        (log, stdout)
    }

    /// SIGTERM, then the exit status (None: still running after `grace`, then killed).
    fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn join(lines: &[Line]) -> String {
    let mut s = String::new();
    for l in lines {
        s.push_str(&l.text);
        s.push('\n');
    }
    s
}

/// Asserts a `vulkaninfo --summary` output succeeded through Venus.
pub fn assert_vulkaninfo_output(out: &Output, when: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("Virtio-GPU Venus"),
        "vulkaninfo --summary {when} failed ({}); stderr:\n{}\nstdout:\n{stdout}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits for a child with piped outputs, killing it after `timeout`.
pub fn wait_output(mut child: Child, timeout: Duration, what: &str) -> Output {
    let deadline = Instant::now() + timeout;
    let (out, err) = (child.stdout.take(), child.stderr.take());
    let read = |s: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut s) = s {
                let _ = s.read_to_end(&mut v);
            }
            v
        })
    };
    let out = read(out.map(|s| Box::new(s) as Box<dyn Read + Send>));
    let err = read(err.map(|s| Box::new(s) as Box<dyn Read + Send>));
    let status: ExitStatus = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} hung (killed after {timeout:?}); stderr:\n{}",
                String::from_utf8_lossy(&err.join().unwrap())
            );
        }
        thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// A process's CPU time (user + system, all threads) from `/proc/<pid>/stat`.
pub fn process_cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its `)` are plain.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Some(Duration::from_micros(ticks * 1_000_000 / hz))
}

/// The fields of the server's `host objects released` line for a context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Released {
    pub ctx: u64,
    pub created: u64,
    pub destroyed: u64,
    pub live: u64,
}

/// `key=<number>` in a log line.
pub fn field(line: &str, key: &str) -> Option<u64> {
    let pat = format!("{key}=");
    line.split(|c: char| c.is_whitespace() || c == ',' || c == '{' || c == '}')
        .find_map(|w| w.strip_prefix(&pat))
        .and_then(|v| v.trim_matches('"').parse().ok())
}

impl Released {
    /// Parses a `host objects released` line.
    pub fn parse(line: &str) -> Option<Self> {
        if !line.contains("host objects released") {
            return None;
        }
        Some(Self {
            ctx: field(line, "ctx")?,
            created: field(line, "created")?,
            destroyed: field(line, "destroyed")?,
            live: field(line, "live")?,
        })
    }
}

/// The context id (`conn=`) of the client named `name`, from its `context created` line.
pub fn context_of(log: &[Line], name: &str) -> Option<u64> {
    log.iter()
        .filter(|l| {
            l.text.contains("context created") && l.text.contains(&format!("client={name}"))
        })
        .find_map(|l| field(&l.text, "conn"))
}

/// A child program whose stdout is read line by line (stderr kept for failure messages);
/// killed on drop.
pub struct Program {
    child: Child,
    what: String,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: Lines,
    /// Every stdout line received so far.
    pub seen: Vec<String>,
}

impl Program {
    /// Spawns `command` with piped stdout and stderr.
    pub fn spawn(mut command: Command, what: &str) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {what}: {e}"));
        let (tx, lines) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Lines::default();
        capture(child.stderr.take().unwrap(), Arc::clone(&stderr));
        Self {
            child,
            what: what.to_owned(),
            lines,
            stderr,
            seen: Vec::new(),
        }
    }

    pub fn stderr_text(&self) -> String {
        join(&self.stderr.lock().unwrap())
    }

    /// Waits for a stdout line starting with `prefix` and returns it.
    pub fn wait_for_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) if !left.is_zero() => {}
                Err(_) => {
                    thread::sleep(Duration::from_millis(50));
                    let status = self.child.try_wait().ok().flatten();
                    panic!(
                        "{} never printed {prefix:?} (status {status:?}); stdout: {:?}; \
                         stderr:\n{}",
                        self.what,
                        self.seen,
                        self.stderr_text()
                    );
                }
            }
        }
    }

    /// Waits for the program to exit; returns its status and when the exit was seen.
    pub fn wait_exit(&mut self, timeout: Duration) -> (ExitStatus, Instant) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return (s, Instant::now());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "{} did not exit within {timeout:?}; stderr:\n{}",
                    self.what,
                    self.stderr_text()
                );
            }
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Closes the program's stdin (spawned with `Stdio::piped()` there; otherwise nothing to
    /// close): a program that reads it to the end goes on.
    pub fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }

    /// SIGKILLs the program and reaps it; returns when the kill was sent.
    pub fn kill(&mut self) -> Instant {
        let at = Instant::now();
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
        at
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
