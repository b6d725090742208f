//! "vulkaninfo end to end": the stock Mesa Venus client (`vulkaninfo` with `VN_DEBUG=vtest`,
//! Mesa 25.0.7's `libvulkan_virtio.so`) against the built `venus-server` binary, itself on
//! lavapipe.
//!
//! Every test starts its own server process on a unique socket, with lavapipe selected
//! explicitly for the server (`VK_DRIVER_FILES`), asserts that it is still alive where it must
//! be, and kills it (by PID) at the end.
//!
//! 1. `vulkaninfo --summary` and full `vulkaninfo` succeed and name the Venus device.
//! 2. What the client sees (`vulkaninfo --json` profile: properties, limits, sparse
//!    properties, every feature struct, every format, queue families, extensions; memory
//!    heaps and types from the text output) equals what native lavapipe reports, up to the
//!    differences listed in `tests/data/vulkaninfo-expected-differences.txt` and explained in
//!    `docs/vulkaninfo-differences.md`. An unexpected difference, or a listed one that no
//!    longer happens, fails with a readable diff.
//! 3. The host side of a full `vulkaninfo` is clean under the Khronos validation layer.
//! 4. Eight `vulkaninfo --summary` at once.
//! 5. Bad input against the real renderer (truncated header, unknown vtest command, absurd
//!    blob size, random bytes in a ring): each case logs one warning line naming the client
//!    and the reason, a concurrent `vulkaninfo --summary` succeeds, and the server keeps
//!    accepting clients afterwards.
//!
//! Needs `vulkaninfo` and the virtio/lavapipe ICDs (for 3: also the validation layer), found
//! by `venus_testkit::require`: when one is missing, the test fails if `CI` is set and is
//! skipped (passing, with a `SKIPPED` line on stderr) otherwise. `scripts/setup-system.sh`
//! installs them all.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{notify_ring_command, Client, TempDir};
use serde_json::Value;
use venus_protocol::commands::CreateRingMESAArgs;
use venus_protocol::structs::{Ext, RingCreateInfoMESA, RingMonitorInfoMESA};
use venus_protocol::{command_info, encode_command, Encoder};
use venus_server::vtest::protocol::{build, cmd};
use venus_testkit::{Found as Tools, Tool};

/// What `deviceName` starts with through Venus on lavapipe (Mesa wraps the host's name).
const VENUS_DEVICE: &str = "Virtio-GPU Venus (llvmpipe";
/// A vulkaninfo run takes well under a second; this only bounds a hang.
const VULKANINFO_TIMEOUT: Duration = Duration::from_secs(30);
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a log line or a ring status bit may take to appear.
const DEADLINE: Duration = Duration::from_secs(10);

const EXPECTED_DIFFERENCES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/vulkaninfo-expected-differences.txt"
);

// ---------------------------------------------------------------------------------------------
// Tools: vulkaninfo and the two ICDs (venus-testkit finds them and decides skip vs fail).

/// What every test here needs.
const VULKANINFO_TOOLS: &[Tool] = &[Tool::Vulkaninfo, Tool::VenusIcd, Tool::LavapipeIcd];

/// The tools (`VULKANINFO_TOOLS` unless given), or `return` from the test after printing why
/// it is skipped (outside CI; in CI a missing tool panics).
macro_rules! require_tools {
    ($test:literal) => {
        require_tools!($test, VULKANINFO_TOOLS)
    };
    ($test:literal, $tools:expr) => {
        match venus_testkit::require($test, $tools) {
            Some(t) => t,
            None => return,
        }
    };
}

// ---------------------------------------------------------------------------------------------
// The server process.

struct ServerProcess {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
    /// Holds the socket, the logs and the vulkaninfo outputs; removed on drop.
    dir: TempDir,
}

impl ServerProcess {
    fn start(tools: &Tools) -> Self {
        Self::start_with(tools, |_, _| {})
    }

    /// `configure` adds to the server's command (environment) and may write files into the
    /// test's directory first.
    fn start_with(tools: &Tools, configure: impl FnOnce(&mut Command, &Path)) -> Self {
        let dir = TempDir::new();
        let socket = dir.0.join("venus.sock");
        let log = dir.0.join("server.stderr");
        let mut command = Command::new(env!("CARGO_BIN_EXE_venus-server"));
        command
            .arg("--socket-path")
            .arg(&socket)
            .env("VK_DRIVER_FILES", tools.lavapipe_icd())
            .env_remove("VK_ICD_FILENAMES")
            .env_remove("VK_ADD_DRIVER_FILES")
            .env_remove("VK_INSTANCE_LAYERS")
            .env_remove("VK_LOADER_LAYERS_ENABLE")
            .env_remove("VK_LAYER_SETTINGS_PATH")
            .env("VENUS_LOG", "info")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(File::create(dir.0.join("server.stdout")).unwrap())
            .stderr(File::create(&log).unwrap());
        configure(&mut command, &dir.0);
        let child = command.spawn().expect("spawning venus-server");
        let mut server = Self {
            child,
            socket,
            log,
            dir,
        };
        server.wait_ready();
        server
    }

    /// Waits for the "listening" line (not a probe connection: it would count as a client).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + SERVER_START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "venus-server exited at start ({status}); its log:\n{}",
                    self.log_text()
                );
            }
            if self.socket.exists() && self.log_text().contains("listening") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "venus-server did not start listening within {SERVER_START_TIMEOUT:?}; log:\n{}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_text(&self) -> String {
        // No stripping: the server writes no colour codes when stderr is not a terminal
        // (tests/log_output.rs checks that).
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The WARN and ERROR lines of the log.
    fn warnings(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .map(str::to_owned)
            .collect()
    }

    /// Waits until `pred(log)` holds.
    fn wait_log(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let log = self.log_text();
            if pred(&log) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "the server log never showed {what}; log:\n{log}"
            );
            thread::sleep(Duration::from_millis(1));
        }
    }

    fn assert_alive(&mut self, when: &str) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "venus-server (pid {}) died {when}: {status}; its log:\n{}",
                self.pid(),
                self.log_text()
            );
        }
    }

    /// Asserts the server is alive, kills it (by PID) and returns its log.
    fn stop(mut self) -> String {
        self.assert_alive("before the end of the test");
        self.child.kill().expect("killing venus-server");
        self.child.wait().unwrap();
        self.log_text()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // A failed test: never leave the process behind. (After `stop` the child is reaped
        // and std sends nothing.)
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// vulkaninfo.

#[derive(Clone, Copy)]
enum Target<'a> {
    /// Straight on lavapipe.
    Native,
    /// Through the Venus client and the server listening on this socket.
    Venus(&'a Path),
}

struct Running {
    child: Child,
    what: String,
    stdout: PathBuf,
    stderr: PathBuf,
}

struct Finished {
    what: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Starts `vulkaninfo <args>` in `dir` (its outputs go to files there).
fn spawn_vulkaninfo(tools: &Tools, target: Target<'_>, args: &[&str], dir: &Path) -> Running {
    static RUN: AtomicU32 = AtomicU32::new(0);
    let n = RUN.fetch_add(1, Ordering::Relaxed);
    let stdout = dir.join(format!("vulkaninfo-{n}.stdout"));
    let stderr = dir.join(format!("vulkaninfo-{n}.stderr"));
    let mut command = Command::new(tools.vulkaninfo());
    command
        .args(args)
        .current_dir(dir)
        // Same conditions for both targets: no surfaces, no user layers or drivers.
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("VK_ICD_FILENAMES")
        .env_remove("VK_ADD_DRIVER_FILES")
        .env_remove("VK_INSTANCE_LAYERS")
        .env_remove("VK_LOADER_LAYERS_ENABLE")
        .env_remove("VN_DEBUG")
        .env_remove("VN_PERF")
        .stdin(Stdio::null())
        .stdout(File::create(&stdout).unwrap())
        .stderr(File::create(&stderr).unwrap());
    let what = match target {
        Target::Native => {
            command.env("VK_DRIVER_FILES", tools.lavapipe_icd());
            format!("native vulkaninfo {}", args.join(" "))
        }
        Target::Venus(socket) => {
            command
                .env("VK_DRIVER_FILES", tools.venus_icd())
                .env("VN_DEBUG", "vtest")
                .env("VTEST_SOCKET_NAME", socket);
            format!("vulkaninfo {} through venus-server", args.join(" "))
        }
    };
    let child = command.spawn().expect("spawning vulkaninfo");
    Running {
        child,
        what,
        stdout,
        stderr,
    }
}

impl Running {
    fn wait(mut self) -> Finished {
        let deadline = Instant::now() + VULKANINFO_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} hung (killed after {VULKANINFO_TIMEOUT:?}); stderr:\n{}",
                    self.what,
                    fs::read_to_string(&self.stderr).unwrap_or_default()
                );
            }
            thread::sleep(Duration::from_millis(5));
        };
        Finished {
            what: self.what,
            status,
            stdout: fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr: fs::read_to_string(&self.stderr).unwrap_or_default(),
        }
    }
}

impl Finished {
    fn assert_success(&self) -> &Self {
        assert!(
            self.status.success(),
            "{} failed ({}); stderr:\n{}\nstdout (end):\n{}",
            self.what,
            self.status,
            self.stderr,
            tail(&self.stdout, 40)
        );
        self
    }

    /// Succeeded, and the output names the Venus device on lavapipe.
    fn assert_venus_device(&self) -> &Self {
        self.assert_success();
        assert!(
            self.stdout.contains(VENUS_DEVICE),
            "{}: no {VENUS_DEVICE:?} in the output:\n{}",
            self.what,
            tail(&self.stdout, 40)
        );
        self
    }
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

fn vulkaninfo(tools: &Tools, target: Target<'_>, args: &[&str], dir: &Path) -> Finished {
    spawn_vulkaninfo(tools, target, args, dir).wait()
}

// ---------------------------------------------------------------------------------------------
// 1. It works.

#[test]
fn summary_and_full_vulkaninfo_name_the_venus_device() {
    let tools = require_tools!("summary_and_full_vulkaninfo_name_the_venus_device");
    let mut server = ServerProcess::start(&tools);
    let socket = server.socket.clone();
    let target = Target::Venus(&socket);

    let summary = vulkaninfo(&tools, target, &["--summary"], &server.dir.0);
    summary.assert_venus_device();
    assert!(
        summary.stdout.contains("driverName         = venus"),
        "{}",
        summary.stdout
    );
    server.assert_alive("after vulkaninfo --summary");

    let full = vulkaninfo(&tools, target, &[], &server.dir.0);
    full.assert_venus_device();
    for section in [
        "VkPhysicalDeviceLimits:",
        "VkPhysicalDeviceSparseProperties:",
        "VkQueueFamilyProperties:",
        "VkPhysicalDeviceMemoryProperties:",
        "VkPhysicalDeviceFeatures:",
        "Device Extensions:",
    ] {
        assert!(
            full.stdout.contains(section),
            "full vulkaninfo lacks {section}"
        );
    }

    let log = server.stop();
    // Two clients, both served without a single complaint.
    assert_eq!(
        contexts_of(&log, "vulkaninfo"),
        2,
        "one context per vulkaninfo; log:\n{log}"
    );
    assert_no_warnings(&log);
}

/// How many contexts the transport created for clients called `name`.
fn contexts_of(log: &str, name: &str) -> usize {
    let client = format!("client={name}");
    log.lines()
        .filter(|l| l.contains("context created") && l.contains(&client))
        .count()
}

/// No WARN or ERROR line at all in `log`.
fn assert_no_warnings(log: &str) {
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    assert!(
        warnings.is_empty(),
        "the server complained about well-behaved clients:\n{}",
        warnings.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Same answers as native lavapipe, up to documented differences.

/// Flattened capabilities: `path -> value` (JSON text of the leaf).
type Flat = BTreeMap<String, String>;

fn read_profile(path: &Path) -> Value {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("vulkaninfo --json wrote no {}: {e}", path.display()));
    let mut v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    v["capabilities"]["device"].take()
}

/// Renames promoted struct aliases (`VkFooKHR`/`VkFooEXT` on one side, core `VkFoo` on
/// the other) to the core name at every level, so that the same struct is compared under one
/// name. Which name vulkaninfo prints only depends on the API version (1.3 natively, 1.2
/// through Venus), not on the values.
fn unify_aliases(a: &mut Value, b: &mut Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let names: BTreeSet<String> = a.keys().chain(b.keys()).cloned().collect();
            for m in [&mut *a, &mut *b] {
                let renames: Vec<(String, String)> = m
                    .keys()
                    .filter(|k| k.starts_with("Vk"))
                    .filter_map(|k| {
                        let core = k.strip_suffix("KHR").or_else(|| k.strip_suffix("EXT"))?;
                        (names.contains(core) && !m.contains_key(core))
                            .then(|| (k.clone(), core.to_owned()))
                    })
                    .collect();
                for (from, to) in renames {
                    let v = m.remove(&from).unwrap();
                    m.insert(to, v);
                }
            }
            for (k, va) in a.iter_mut() {
                if let Some(vb) = b.get_mut(k) {
                    unify_aliases(va, vb);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (x, y) in a.iter_mut().zip(b.iter_mut()) {
                unify_aliases(x, y);
            }
        }
        _ => {}
    }
}

fn flatten(v: &Value, path: &str, out: &mut Flat) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                flatten(x, &join(k), out);
            }
        }
        Value::Array(a) if a.iter().any(|x| x.is_object() || x.is_array()) => {
            for (i, x) in a.iter().enumerate() {
                flatten(x, &format!("{path}[{i}]"), out);
            }
        }
        _ => {
            out.insert(path.to_owned(), v.to_string());
        }
    }
}

/// The `VkPhysicalDeviceMemoryProperties` section of vulkaninfo's text output (the JSON
/// profile has no memory properties), flattened by indentation:
/// `memory.memoryHeaps[0].size`, `memory.memoryTypes[0].propertyFlags`,
/// `memory.memoryTypes[0].usable_for.IMAGE_TILING_OPTIMAL.color_images`, ...
fn memory_section(text: &str) -> Flat {
    let mut lines = text
        .lines()
        .skip_while(|l| l.trim_end() != "VkPhysicalDeviceMemoryProperties:")
        .skip(2) // the title and its underline
        .take_while(|l| !l.starts_with("Vk"))
        .filter(|l| !l.trim().is_empty())
        .map(|l| (l.len() - l.trim_start_matches('\t').len(), l.trim()))
        .peekable();
    let mut out = Flat::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    while let Some((depth, text)) = lines.next() {
        while stack.last().is_some_and(|(d, _)| *d >= depth) {
            stack.pop();
        }
        // `key = value`, `key: value` (whichever separator comes first), or a bare item.
        let eq = text.find(" = ");
        let colon = text.find(':');
        let (key, value) = match (eq, colon) {
            (Some(e), Some(c)) if c < e => (&text[..c], &text[c + 1..]),
            (Some(e), _) => (&text[..e], &text[e + 3..]),
            (None, Some(c)) => (&text[..c], &text[c + 1..]),
            (None, None) => (text, ""),
        };
        let key = key.trim().replace(' ', "_");
        let parent = stack.last().map_or("memory", |(_, p)| p.as_str());
        // `memoryHeaps: count = 1` then `memoryHeaps[0]:` -> `memory.memoryHeaps[0]`.
        let path = match parent.rsplit_once('.') {
            Some((up, last)) if key.strip_prefix(last).is_some_and(|r| r.starts_with('[')) => {
                format!("{up}.{key}")
            }
            _ => format!("{parent}.{key}"),
        };
        out.insert(path.clone(), value.trim().to_owned());
        if lines.peek().is_some_and(|(d, _)| *d > depth) {
            stack.push((depth, path));
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Reported natively, absent through Venus.
    Missing,
    /// Absent natively, reported through Venus.
    Extra,
    /// Reported by both, with different values.
    Changed,
}

impl Kind {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "missing" => Self::Missing,
            "extra" => Self::Extra,
            "changed" => Self::Changed,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Extra => "extra",
            Self::Changed => "changed",
        }
    }
}

struct Difference {
    kind: Kind,
    path: String,
    native: Option<String>,
    venus: Option<String>,
}

fn differences(native: &Flat, venus: &Flat) -> Vec<Difference> {
    let paths: BTreeSet<&String> = native.keys().chain(venus.keys()).collect();
    paths
        .into_iter()
        .filter_map(|p| {
            let (n, v) = (native.get(p), venus.get(p));
            let kind = match (n, v) {
                (Some(n), Some(v)) if n == v => return None,
                (Some(_), Some(_)) => Kind::Changed,
                (Some(_), None) => Kind::Missing,
                (None, _) => Kind::Extra,
            };
            Some(Difference {
                kind,
                path: p.clone(),
                native: n.cloned(),
                venus: v.cloned(),
            })
        })
        .collect()
}

struct Expected {
    line: usize,
    kind: Kind,
    pattern: String,
}

/// The extension table of the client's protocol level (git-ca1e9220: what Mesa 25.0.7
/// compiles in and clamps to, whatever newer level the server speaks).
fn client_level_extensions() -> impl Iterator<Item = &'static str> {
    const TABLE: &str = include_str!("../../../protocol/derived/ca1e9220-extensions.tsv");
    TABLE
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split('\t').next())
}

/// `tests/data/vulkaninfo-expected-differences.txt`: `<missing|extra|changed> <pattern>
/// [@not-in-protocol]` per line, `#` comments; `*` in a pattern matches any run of characters
/// (dots included). `@not-in-protocol` (on `extensions.<name>`) is checked here: the client's
/// protocol level (Mesa 25.0.7, git-ca1e9220) must not have it.
fn expected_differences() -> Vec<Expected> {
    let text = fs::read_to_string(EXPECTED_DIFFERENCES).expect(EXPECTED_DIFFERENCES);
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let at = || format!("{EXPECTED_DIFFERENCES}:{}", i + 1);
        let words: Vec<&str> = l.split('#').next().unwrap().split_whitespace().collect();
        let (kind, pattern, tag) = match words[..] {
            [] => continue,
            [k, p] => (k, p, None),
            [k, p, t] => (k, p, Some(t)),
            _ => panic!("{}: want `<kind> <pattern> [@not-in-protocol]`", at()),
        };
        let kind = Kind::parse(kind).unwrap_or_else(|| panic!("{}: bad kind {kind:?}", at()));
        match tag {
            None => {}
            Some("@not-in-protocol") => {
                let name = pattern
                    .strip_prefix("extensions.")
                    .unwrap_or_else(|| panic!("{}: @not-in-protocol on a non-extension", at()));
                assert!(
                    !client_level_extensions().any(|e| e == name),
                    "{}: {name} IS in the Mesa 25.0.7 client's extension table: the server \
                     should list it (and the client pass it through)",
                    at()
                );
            }
            Some(t) => panic!("{}: unknown tag {t}", at()),
        }
        out.push(Expected {
            line: i + 1,
            kind,
            pattern: pattern.to_owned(),
        });
    }
    out
}

/// Glob with `*` only.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            backtrack = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((bp, bt)) = backtrack {
            pi = bp + 1;
            ti = bt + 1;
            backtrack = Some((bp, bt + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[test]
fn glob_matches_like_the_expectation_file_says() {
    assert!(glob(
        "features.VkPhysicalDeviceVulkan13Features.*",
        "features.VkPhysicalDeviceVulkan13Features.maintenance4"
    ));
    assert!(glob(
        "formats.*.VkSubpassResolvePerformanceQueryEXT.optimal",
        "formats.VK_FORMAT_R8_UNORM.VkSubpassResolvePerformanceQueryEXT.optimal"
    ));
    assert!(glob("a*", "a"));
    assert!(!glob(
        "properties.VkPhysicalDeviceProperties.apiVersion",
        "properties.VkPhysicalDeviceProperties.apiVersionX"
    ));
    assert!(!glob("features.X.*", "features.Y.a"));
}

fn show(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("<absent>")
}

/// Natively and through Venus: the JSON profile plus the memory section of the text output.
fn capabilities(tools: &Tools, target: Target<'_>, dir: &Path, name: &str) -> (Value, String) {
    let json = dir.join(format!("{name}.json"));
    let profile = spawn_vulkaninfo(
        tools,
        target,
        &["--json", "-o", json.to_str().unwrap()],
        dir,
    );
    let text = vulkaninfo(tools, target, &[], dir);
    profile.wait().assert_success();
    text.assert_success();
    (read_profile(&json), text.stdout)
}

fn string_at<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer}"))
}

#[test]
fn vulkaninfo_matches_native_lavapipe_up_to_documented_differences() {
    let tools = require_tools!("vulkaninfo_matches_native_lavapipe_up_to_documented_differences");
    let server = ServerProcess::start(&tools);
    let dir = server.dir.0.clone();

    let (mut native, native_text) = capabilities(&tools, Target::Native, &dir, "native");
    let (mut venus, venus_text) =
        capabilities(&tools, Target::Venus(&server.socket), &dir, "venus");
    let log = server.stop();
    assert_no_warnings(&log);

    // The few values Mesa rewrites on purpose, checked exactly (the list below only says
    // "may differ").
    let props = "/properties/VkPhysicalDeviceProperties";
    let native_name = string_at(&native, &format!("{props}/deviceName")).to_owned();
    assert_eq!(
        string_at(&venus, &format!("{props}/deviceName")),
        format!("Virtio-GPU Venus ({native_name})"),
        "Mesa wraps the host's device name (vn_physical_device_sanitize_properties)"
    );
    let api = |v: &Value| {
        v.pointer(&format!("{props}/apiVersion"))
            .and_then(Value::as_u64)
    };
    let vk_1_3_269 = (1 << 22) | (3 << 12) | 269;
    assert!(api(&native).unwrap() >= vk_1_3_269);
    assert_eq!(
        api(&venus),
        Some(vk_1_3_269),
        "with VK_KHR_synchronization2 (the server's profile makes SYNC_FD importable) the \
         client reports min(host, protocol 1.3.269) (contract §5.2, §8.1)"
    );
    assert!(
        venus.pointer("/extensions/VK_KHR_swapchain").is_some(),
        "the client exposes VK_KHR_swapchain (contract §8.1, issue 8)"
    );
    assert_eq!(
        string_at(
            &venus,
            "/properties/VkPhysicalDeviceDriverProperties/driverName"
        ),
        "venus"
    );

    unify_aliases(&mut native, &mut venus);
    let mut native_flat = Flat::new();
    let mut venus_flat = Flat::new();
    flatten(&native, "", &mut native_flat);
    flatten(&venus, "", &mut venus_flat);
    native_flat.extend(memory_section(&native_text));
    venus_flat.extend(memory_section(&venus_text));

    // Guard against comparing nothing (a format change in vulkaninfo's output).
    for section in [
        "extensions.",
        "properties.VkPhysicalDeviceProperties.limits.",
        "properties.VkPhysicalDeviceProperties.sparseProperties.",
        "features.VkPhysicalDeviceFeatures.",
        "features.VkPhysicalDeviceVulkan12Features.",
        "formats.VK_FORMAT_R8G8B8A8_UNORM.VkFormatProperties.",
        "queueFamiliesProperties[0].VkQueueFamilyProperties.",
        "memory.memoryHeaps[0].",
        "memory.memoryTypes[0].propertyFlags",
    ] {
        for (side, flat) in [("native", &native_flat), ("venus", &venus_flat)] {
            assert!(
                flat.keys().any(|k| k.starts_with(section)),
                "{side}: nothing under {section}: vulkaninfo's output format changed?"
            );
        }
    }
    let formats = |f: &Flat| {
        f.keys()
            .filter_map(|k| k.strip_prefix("formats."))
            .filter_map(|k| k.split('.').next())
            .collect::<BTreeSet<_>>()
            .len()
    };
    assert!(formats(&native_flat) > 100, "every format is compared");

    let diffs = differences(&native_flat, &venus_flat);
    let expected = expected_differences();
    let mut used = vec![0usize; expected.len()];
    let mut unexpected = Vec::new();
    for d in &diffs {
        match expected
            .iter()
            .position(|e| e.kind == d.kind && glob(&e.pattern, &d.path))
        {
            Some(i) => used[i] += 1,
            None => unexpected.push(d),
        }
    }
    let same = native_flat
        .iter()
        .filter(|(k, v)| venus_flat.get(*k) == Some(*v))
        .count();
    eprintln!(
        "compared {} native / {} venus values: {same} identical, {} documented differences",
        native_flat.len(),
        venus_flat.len(),
        diffs.len() - unexpected.len()
    );
    let stale: Vec<&Expected> = expected
        .iter()
        .zip(&used)
        .filter(|(_, n)| **n == 0)
        .map(|(e, _)| e)
        .collect();
    if unexpected.is_empty() && stale.is_empty() {
        return;
    }
    let mut report = String::new();
    if !unexpected.is_empty() {
        report += &format!(
            "{} unexpected difference(s) between native lavapipe and vulkaninfo through \
             venus-server.\nA renderer bug, or a legitimate difference to explain in \
             docs/vulkaninfo-differences.md and list in {EXPECTED_DIFFERENCES}:\n",
            unexpected.len()
        );
        for d in &unexpected {
            report += &format!(
                "  {} {}\n      native: {}\n      venus:  {}\n",
                d.kind.name(),
                d.path,
                show(&d.native),
                show(&d.venus)
            );
        }
    }
    if !stale.is_empty() {
        report += &format!(
            "{} listed difference(s) no longer happen (remove them from the list and the doc):\n",
            stale.len()
        );
        for e in &stale {
            report += &format!("  line {}: {} {}\n", e.line, e.kind.name(), e.pattern);
        }
    }
    panic!("{report}");
}

// ---------------------------------------------------------------------------------------------
// 3. Host side under the validation layer.

/// Structure types newer than the installed validation layer's headers: it reports them
/// as "unknown VkStructureType" in `*-pNext-pNext` VUIDs although the host driver supports
/// them (the client chains them because the host lists the extension). Ranges of
/// `1000000000 + (extension number - 1) * 1000`.
const NEWER_THAN_THE_LAYER: &[(&str, std::ops::Range<u64>)] = &[
    // Newer than the headers of vulkan-validationlayers 1.3.239. lavapipe lists it,
    // the protocol carries it (spec 1), so Mesa chains VkPhysicalDeviceMaintenance5*KHR.
    ("VK_KHR_maintenance5", 1_000_470_000..1_000_471_000),
];

/// An error the layer raises only because it is older than the structure it sees.
fn layer_too_old(message: &str) -> Option<&'static str> {
    if !message.contains("-pNext-pNext") {
        return None;
    }
    let rest = message.split("unknown VkStructureType (").nth(1)?;
    let s_type: u64 = rest.split(')').next()?.parse().ok()?;
    NEWER_THAN_THE_LAYER
        .iter()
        .find(|(_, range)| range.contains(&s_type))
        .map(|(ext, _)| *ext)
}

#[test]
fn host_calls_are_clean_under_the_validation_layer() {
    let tools = require_tools!(
        "host_calls_are_clean_under_the_validation_layer",
        &[
            Tool::Vulkaninfo,
            Tool::VenusIcd,
            Tool::LavapipeIcd,
            Tool::ValidationLayer
        ]
    );
    // The layer writes to the server's stdout (a file here). Not `log_filename`: every
    // instance (one per client) would truncate that file when it opens it.
    let server = ServerProcess::start_with(&tools, |command, dir| {
        let settings = "khronos_validation.debug_action = VK_DBG_LAYER_ACTION_LOG_MSG\n\
                        khronos_validation.report_flags = error,warn,perf,info\n\
                        khronos_validation.duplicate_message_limit = 1000\n";
        fs::write(dir.join("vk_layer_settings.txt"), settings).unwrap();
        command
            .env("VK_INSTANCE_LAYERS", "VK_LAYER_KHRONOS_validation")
            .env("VK_LAYER_SETTINGS_PATH", dir);
    });
    let target = Target::Venus(&server.socket);
    vulkaninfo(&tools, target, &[], &server.dir.0).assert_venus_device();
    let json = server.dir.0.join("validated.json");
    vulkaninfo(
        &tools,
        target,
        &["--json", "-o", json.to_str().unwrap()],
        &server.dir.0,
    )
    .assert_success();
    // Object destruction (and leak reports) happens when the connection closes.
    server.wait_log("both contexts destroyed", |l| {
        l.matches("context destroyed").count() == 2
    });
    let report = fs::read_to_string(server.dir.0.join("server.stdout")).unwrap();
    let log = server.stop();
    assert_no_warnings(&log);

    // One message per block: a line at column 0, then its indented details.
    let mut messages: Vec<String> = Vec::new();
    for line in report.lines() {
        if !line.starts_with([' ', '\t']) && !line.is_empty() {
            messages.push(String::new());
        }
        if let Some(m) = messages.last_mut() {
            m.push_str(line);
            m.push('\n');
        }
    }
    // The layer ran, with our settings, on the server's pinned instance (kept for the life of
    // the process, so that the driver stays loaded) and on both clients' instances.
    let status = messages
        .iter()
        .filter(|m| m.contains("createinstance-status-message"))
        .collect::<Vec<_>>();
    assert_eq!(
        status.len(),
        3,
        "the validation layer did not report three instances; report:\n{report}\nserver log:\n{log}"
    );
    assert!(status.iter().all(|m| m.contains("vk_layer_settings.txt")));

    let mut tolerated = Vec::new();
    let mut bad = Vec::new();
    for m in &messages {
        let serious = m.contains("Validation Error:") || m.contains("Validation Warning:");
        if !serious {
            continue;
        }
        match layer_too_old(m) {
            Some(ext) => tolerated.push(ext),
            None => bad.push(m.as_str()),
        }
    }
    eprintln!(
        "validation: {} messages; tolerated (structures newer than the layer): {tolerated:?}",
        messages.len()
    );
    assert!(
        bad.is_empty(),
        "{} validation error(s)/warning(s) on the host side:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Concurrency.

#[test]
fn eight_concurrent_clients() {
    let tools = require_tools!("eight_concurrent_clients");
    let mut server = ServerProcess::start(&tools);
    let runs: Vec<Running> = (0..8)
        .map(|_| {
            spawn_vulkaninfo(
                &tools,
                Target::Venus(&server.socket),
                &["--summary"],
                &server.dir.0,
            )
        })
        .collect();
    for run in runs {
        run.wait().assert_venus_device();
    }
    server.assert_alive("after eight concurrent clients");
    // And it still serves.
    vulkaninfo(
        &tools,
        Target::Venus(&server.socket),
        &["--summary"],
        &server.dir.0,
    )
    .assert_venus_device();
    let log = server.stop();
    assert_eq!(
        contexts_of(&log, "vulkaninfo"),
        9,
        "nine contexts; log:\n{log}"
    );
    assert_no_warnings(&log);
}

// ---------------------------------------------------------------------------------------------
// 5. Bad input against the real renderer.

/// The well-behaved `vulkaninfo --summary` that runs while a bad client strikes.
struct Bystander<'a> {
    tools: &'a Tools,
    server: &'a ServerProcess,
    run: Option<Running>,
}

impl Bystander<'_> {
    /// Starts it and waits until the server has its context, so that what the bad client
    /// does next happens while it is being served.
    fn start(&mut self) {
        assert!(self.run.is_none());
        self.run = Some(spawn_vulkaninfo(
            self.tools,
            Target::Venus(&self.server.socket),
            &["--summary"],
            &self.server.dir.0,
        ));
        self.server
            .wait_log("the concurrent vulkaninfo's context", |l| {
                contexts_of(l, "vulkaninfo") == 1
            });
    }
}

/// Runs a misbehaving raw client called `name` (through the handshake when `bad` gets it;
/// `bad` starts the bystander right before it strikes) while a well-behaved
/// `vulkaninfo --summary` runs, then checks that the bystander succeeded, that the server
/// logged exactly one warning line about the bad client, naming it and its connection and
/// containing `reason`, that nothing else was logged at WARN, and that the server still
/// serves new clients.
fn misbehaving_client(
    tools: &Tools,
    name: &str,
    reason: &str,
    bad: impl FnOnce(&mut Client, &mut Bystander),
) {
    let mut server = ServerProcess::start(tools);
    let mut client = Client::connect(&server.socket);
    client.handshake(name);
    server.wait_log("the bad client's context", |l| contexts_of(l, name) == 1);

    let mut bystander = Bystander {
        tools,
        server: &server,
        run: None,
    };
    bad(&mut client, &mut bystander);
    bystander
        .run
        .take()
        .expect("the case starts the bystander")
        .wait()
        .assert_venus_device();

    let mentions = |l: &str| {
        l.contains(&format!("client={name}")) || l.contains(&format!("client=\"{name}\""))
    };
    server.wait_log("a warning about the bad client", |log| {
        log.lines().any(|l| l.contains(" WARN ") && mentions(l))
    });
    server.assert_alive("after the bad client");

    // Its connection (if still open) goes away; the server accepts the next client.
    drop(client);
    vulkaninfo(
        tools,
        Target::Venus(&server.socket),
        &["--summary"],
        &server.dir.0,
    )
    .assert_venus_device();
    server.wait_log("the bad client's context destroyed", |l| {
        l.matches("context destroyed").count() == 3
    });
    let warnings = server.warnings();
    let log = server.stop();

    let about: Vec<&String> = warnings.iter().filter(|l| mentions(l)).collect();
    assert_eq!(
        about.len(),
        1,
        "want exactly one warning line about {name}; log:\n{log}"
    );
    let line = about[0];
    assert!(
        line.contains(reason),
        "the warning does not give the reason ({reason:?}): {line}"
    );
    assert!(
        line.contains("conn=") || line.contains("ctx="),
        "the warning does not name the connection: {line}"
    );
    assert_eq!(
        warnings.len(),
        1,
        "only the bad client may cause warnings; log:\n{log}"
    );
}

#[test]
fn truncated_header_then_close() {
    let tools = require_tools!("truncated_header_then_close");
    misbehaving_client(
        &tools,
        "e2e-truncated-header",
        "in the middle of a message (5 of 8 bytes of the header)",
        |c, bystander| {
            bystander.start();
            c.send(&build::request(cmd::PING_PROTOCOL_VERSION, &[])[..5]);
            c.s.shutdown(std::net::Shutdown::Write).unwrap();
            assert!(c.closed_by_server(), "a cut header closes the connection");
        },
    );
}

#[test]
fn unknown_vtest_command() {
    let tools = require_tools!("unknown_vtest_command");
    misbehaving_client(
        &tools,
        "e2e-unknown-command",
        "unknown vtest command 99",
        |c, bystander| {
            bystander.start();
            c.send(&build::request(99, &[1, 2, 3]));
            // The context is lost but the connection stays open and answers (Mesa spins on
            // EOF): failure values from now on.
            c.ping();
            c.send(&build::request(cmd::GET_PARAM, &[1]));
            assert_eq!(c.response(cmd::GET_PARAM), [0, 0]);
            let (res_id, fd) = c.create_blob(4096);
            assert_eq!((res_id, fd.is_none()), (0, true));
        },
    );
}

#[test]
fn absurd_blob_size() {
    let tools = require_tools!("absurd_blob_size");
    misbehaving_client(
        &tools,
        "e2e-absurd-blob",
        "limit exceeded: blob size (bytes): 0 in use + 1152921504606846976 requested > 8589934592 (config key `max_blob_size`, flag `--max-blob-size`)",
        |c, bystander| {
            bystander.start();
            let (res_id, fd) = c.create_blob(1 << 60);
            assert_eq!(res_id, 0, "the failure answer");
            assert!(fd.is_none(), "the failure answer carries no fd");
            // Only that request failed: the context lives on.
            let (res_id, fd) = c.create_blob(4096);
            assert_ne!(res_id, 0);
            assert!(fd.is_some());
            c.send(&build::request(cmd::GET_PARAM, &[1]));
            assert_eq!(c.response(cmd::GET_PARAM), [1, 64]);
        },
    );
}

/// The client's mapping of a blob, like Mesa's `mmap(fd)`.
struct ClientMapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl ClientMapping {
    fn new(fd: impl AsFd, len: usize) -> Self {
        // SAFETY: a fresh shared mapping of a file the server sized to at least `len` bytes
        // (sealed against shrinking); nothing else in this process uses the range.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
                fd,
                0,
            )
        }
        .expect("mmap of the ring blob");
        Self {
            ptr: NonNull::new(ptr.cast()).unwrap(),
            len,
        }
    }

    /// The control word at `offset` (head, tail, status: 4-byte aligned).
    fn word(&self, offset: usize) -> &AtomicU32 {
        assert!(offset % 4 == 0 && offset + 4 <= self.len);
        // SAFETY: in bounds and aligned (checked; the mapping is page aligned); shared memory
        // is only ever accessed atomically through this reference, on both sides.
        unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().add(offset).cast()) }
    }

    /// Plain bytes the server does not read yet (before the tail is published).
    fn write(&self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= self.len);
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: in bounds (checked); volatile byte stores into our shared mapping that
            // the server only reads after our release store of the tail.
            unsafe { self.ptr.as_ptr().add(offset + i).write_volatile(*b) };
        }
    }
}

impl Drop for ClientMapping {
    fn drop(&mut self) {
        // SAFETY: our own mapping; no reference into it outlives `self`.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Deterministic "random" bytes (xorshift64*), so that a failure reproduces.
fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

#[test]
fn random_bytes_in_a_ring_make_it_fatal() {
    let tools = require_tools!("random_bytes_in_a_ring_make_it_fatal");
    // Mesa's layout (contract §4.1), with a 4 KiB buffer.
    const HEAD: usize = 0;
    const TAIL: usize = 64;
    const STATUS: usize = 128;
    const BUFFER: usize = 192;
    const BUFFER_SIZE: usize = 4096;
    const EXTRA: usize = BUFFER + BUFFER_SIZE;
    const SIZE: usize = EXTRA + 4;
    const RING_ID: u64 = 0x7e57_0000_1000;
    const STATUS_IDLE: u32 = 0x1;
    const STATUS_FATAL: u32 = 0x2;
    const STATUS_ALIVE: u32 = 0x4;
    const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

    misbehaving_client(
        &tools,
        "e2e-ring-garbage",
        "context lost",
        |c, bystander| {
            let (res_id, fd) = c.create_blob(SIZE as u64);
            assert_ne!(res_id, 0);
            let ring = ClientMapping::new(fd.expect("the ring blob's fd"), SIZE);

            let monitor = Ext::RingMonitorInfoMESA(RingMonitorInfoMESA {
                p_next: None,
                max_reporting_period_microseconds: 3_000_000,
            });
            let info = RingCreateInfoMESA {
                p_next: Some(&monitor),
                resource_id: res_id,
                offset: 0,
                size: SIZE as u64,
                idle_timeout: 1_000_000,
                head_offset: HEAD as u64,
                tail_offset: TAIL as u64,
                status_offset: STATUS as u64,
                buffer_offset: BUFFER as u64,
                buffer_size: BUFFER_SIZE as u64,
                extra_offset: EXTRA as u64,
                extra_size: 4,
                ..Default::default()
            };
            let mut e = Encoder::new();
            encode_command(
                &mut e,
                &venus_protocol::Command::CreateRingMESA(CreateRingMESAArgs {
                    ring: RING_ID,
                    p_create_info: &info,
                }),
                0,
            );
            c.send(&build::submit_cmd2(0, e.as_bytes(), &[]));
            c.ping();
            // The ring runs: the monitor sets ALIVE right away.
            let wait_status = |bit: u32, what: &str| {
                let deadline = Instant::now() + DEADLINE;
                while ring.word(STATUS).load(Ordering::Acquire) & bit == 0 {
                    assert!(Instant::now() < deadline, "the ring never got {what}");
                    thread::sleep(Duration::from_millis(1));
                }
            };
            wait_status(STATUS_ALIVE, "ALIVE");
            assert_eq!(ring.word(STATUS).load(Ordering::Acquire) & STATUS_FATAL, 0);

            let garbage = random_bytes(SEED, 1024);
            let first = i32::from_le_bytes(garbage[..4].try_into().unwrap());
            assert!(
                command_info(first).is_none(),
                "the seed must start with an unknown command type, got {first}"
            );
            bystander.start();
            ring.write(BUFFER, &garbage);
            ring.word(TAIL)
                .store(garbage.len() as u32, Ordering::Release);
            // Like Mesa: notify if the ring went idle.
            if ring.word(STATUS).load(Ordering::SeqCst) & STATUS_IDLE != 0 {
                c.send(&build::submit_cmd2(
                    0,
                    &notify_ring_command(RING_ID, garbage.len() as u32),
                    &[],
                ));
            }
            wait_status(STATUS_FATAL, "FATAL");
            assert_ne!(
                ring.word(HEAD).load(Ordering::Acquire),
                garbage.len() as u32,
                "garbage is not consumed as if it were commands"
            );
            // The connection stays open (Mesa aborts on FATAL by itself; EOF would make it spin).
            c.ping();
        },
    );
}

// The host device is picked by --device (index or name), else the loader's ordinary list.

#[test]
fn device_flag_picks_the_host_device_by_index_or_name() {
    let tools = require_tools!("device_flag_picks_the_host_device_by_index_or_name");
    for pick in ["0", "LLVMpipe"] {
        let server = ServerProcess::start_with(&tools, |c, _| {
            c.arg("--device").arg(pick);
        });
        let socket = server.socket.clone();
        vulkaninfo(
            &tools,
            Target::Venus(&socket),
            &["--summary"],
            &server.dir.0,
        )
        .assert_venus_device();
        server.stop();
    }
    // A device that does not exist: the client sees no device at all (and says so).
    let server = ServerProcess::start_with(&tools, |c, _| {
        c.arg("--device").arg("no-such-gpu");
    });
    let socket = server.socket.clone();
    let run = spawn_vulkaninfo(
        &tools,
        Target::Venus(&socket),
        &["--summary"],
        &server.dir.0,
    )
    .wait();
    assert!(
        !run.status.success(),
        "vulkaninfo found a device: {}",
        run.stdout
    );
    assert!(!run.stdout.contains("Virtio-GPU Venus"), "{}", run.stdout);
    server.stop();
}
