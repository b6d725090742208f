//! The leak soak: many short Mesa Venus clients, several at once, each doing real work
//! (`venus-compute saxpy`: instance + device, host-visible memory mapped and written, a compute
//! pipeline, submissions, a fence wait, the result read back and checked) and ending in one
//! of three ways chosen at random: it runs to its end, it is SIGKILLed after a random delay
//! (during set-up, pipeline building or a submission), or it is SIGKILLed right after its
//! result line (objects still alive, nothing destroyed by the client).
//!
//! One `venus-server` on lavapipe serves them all. The soak samples the server's resident
//! memory (`VmRSS`), open descriptors, threads and mappings from `/proc/<pid>` (continuously for
//! the peaks, and at each checkpoint once every context has ended: the "settled" figures), and
//! reads the server's own counters from its log (`renderer context created`, `context
//! destroyed`, `host objects released ctx= created= destroyed= live=`, `ERROR` lines).
//!
//! [`SoakReport::failures`] says what is wrong: a client failure, a host object leaked
//! (`created != destroyed` or `live != 0`), a context not released, an `ERROR` line (other than
//! a teardown detached past its bound, which is listed: its objects are still counted),
//! descriptors or threads not back to their warm-up figures, settled RSS more than
//! [`SoakConfig::rss_tolerance_kib`] above the warm-up figure. `venus-soak` (the binary) and
//! `tests/soak.rs` (its short variant) run it.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::server::{Released, Server, ServerOptions};
use crate::tools::Tools;

/// How long one client may run before it counts as hung.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the server may take to end every context after the clients are gone.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The first guess of a run's length (refined by every completed run), ms.
const INITIAL_ESTIMATE_MS: u64 = 400;
/// How often the sampler reads `/proc/<pid>`.
const SAMPLE_PERIOD: Duration = Duration::from_millis(100);

/// What to run.
#[derive(Clone, Debug)]
pub struct SoakConfig {
    /// Client runs in all.
    pub cycles: u32,
    /// Clients at once.
    pub workers: u32,
    /// Settled measurements: after every `cycles / checkpoints` runs (the first one ends the
    /// warm-up).
    pub checkpoints: u32,
    /// `venus-compute saxpy --n` (f32 elements per buffer).
    pub elements: u64,
    /// `venus-compute saxpy --reps` (submissions per client).
    pub reps: u32,
    /// Seed of the choice of endings and kill delays.
    pub seed: u64,
    /// How far settled RSS may rise above the warm-up figure, KiB.
    pub rss_tolerance_kib: u64,
    /// The `venus-compute` program.
    pub compute: PathBuf,
    /// How the server is started.
    pub server: ServerOptions,
    /// Print one line per checkpoint on stderr.
    pub progress: bool,
}

/// The server's resources at one moment (`/proc/<pid>`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// `VmRSS`, KiB.
    pub rss_kib: u64,
    /// `RssAnon` (heap, stacks, anonymous mappings), KiB.
    pub anon_kib: u64,
    /// `RssFile` (mapped files: the driver's and LLVM's code), KiB.
    pub file_kib: u64,
    /// `RssShmem` (shared memory: blobs, rings, imported device memory), KiB.
    pub shmem_kib: u64,
    /// Entries of `/proc/<pid>/fd`.
    pub fds: usize,
    /// Entries of `/proc/<pid>/task`.
    pub threads: usize,
    /// Lines of `/proc/<pid>/maps`.
    pub maps: usize,
}

impl Sample {
    /// Reads the process's figures; `None` once it is gone.
    pub fn of(pid: u32) -> Option<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        };
        let rss_kib = kib("VmRSS:")?;
        let count = |what: &str| {
            std::fs::read_dir(format!("/proc/{pid}/{what}"))
                .map(|d| d.count())
                .unwrap_or(0)
        };
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
            .map(|m| m.lines().count())
            .unwrap_or(0);
        Some(Self {
            rss_kib,
            anon_kib: kib("RssAnon:").unwrap_or(0),
            file_kib: kib("RssFile:").unwrap_or(0),
            shmem_kib: kib("RssShmem:").unwrap_or(0),
            fds: count("fd"),
            threads: count("task"),
            maps,
        })
    }
}

/// How a client run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Ran to its end, result checked.
    Completed,
    /// SIGKILLed after a random delay, before its result.
    KilledDuring,
    /// SIGKILLed right after printing its (checked) result.
    KilledAfterResult,
}

/// Counts of endings, and what went wrong with clients.
#[derive(Clone, Debug, Default)]
pub struct Outcomes {
    pub completed: u64,
    pub killed_during: u64,
    pub killed_after_result: u64,
    pub failures: Vec<String>,
}

/// The server's own figures, from its log.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// `renderer context created` lines.
    pub contexts: u64,
    /// `context destroyed` lines.
    pub destroyed_contexts: u64,
    /// `host objects released` lines, and their sums.
    pub released: u64,
    pub objects_created: u64,
    pub objects_destroyed: u64,
    /// Release lines with `live != 0` or `created != destroyed`.
    pub leaking: Vec<Released>,
    /// Lines containing `ERROR`.
    pub errors: Vec<String>,
    /// Lines containing `WARN` (not a failure by themselves: reported).
    pub warnings: Vec<String>,
    /// `ERROR` lines of a teardown that ran past its bound and was detached (reported, not a
    /// failure: the counters still show whether everything was released in the end).
    pub slow_teardowns: Vec<String>,
}

impl Counters {
    /// Reads them from the log so far.
    pub fn from_log(server: &Server) -> Self {
        let mut c = Self::default();
        for line in server.log_lines() {
            let t = &line.text;
            if t.contains("renderer context created") {
                c.contexts += 1;
            } else if t.contains("context destroyed") {
                c.destroyed_contexts += 1;
            } else if let Some(r) = Released::parse(t) {
                c.released += 1;
                c.objects_created += r.created;
                c.objects_destroyed += r.destroyed;
                if r.live != 0 || r.created != r.destroyed {
                    c.leaking.push(r);
                }
            }
            if t.contains("ERROR") && t.contains("within the teardown bound") {
                c.slow_teardowns.push(t.clone());
            } else if t.contains("ERROR") {
                c.errors.push(t.clone());
            } else if t.contains("WARN") {
                c.warnings.push(t.clone());
            }
        }
        c
    }

    /// Every context created so far has ended and released its objects.
    fn all_ended(&self) -> bool {
        self.destroyed_contexts == self.contexts && self.released == self.contexts
    }
}

/// A settled measurement after some runs.
#[derive(Clone, Copy, Debug)]
pub struct Checkpoint {
    pub cycles: u32,
    pub at: Duration,
    pub settled: Sample,
}

/// What a soak measured.
#[derive(Clone, Debug)]
pub struct SoakReport {
    /// Before the first client.
    pub start: Sample,
    /// Settled after every checkpoint (the first is the warm-up figure).
    pub checkpoints: Vec<Checkpoint>,
    /// The highest figures the sampler saw.
    pub peak: Sample,
    pub outcomes: Outcomes,
    pub counters: Counters,
    pub elapsed: Duration,
    /// The server did not settle (contexts not ended) at some checkpoint.
    pub unsettled: Vec<String>,
    /// How the server ended, if it died during the soak.
    pub server_died: Option<String>,
}

/// A small deterministic generator (xorshift64*), enough to spread endings and delays.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Runs the soak against a fresh server. Returns the report and the server's log.
pub fn run(tools: &Tools, cfg: &SoakConfig) -> (SoakReport, String) {
    let server = Server::start(tools, &cfg.server);
    let pid = server.pid();
    let start = Sample::of(pid).unwrap_or_default();
    let began = Instant::now();
    let stop = AtomicBool::new(false);
    let peak = Mutex::new(start);
    let shared = Shared {
        server: &server,
        cfg,
        next: AtomicU32::new(0),
        estimate_ms: AtomicU64::new(INITIAL_ESTIMATE_MS),
        outcomes: Mutex::new(Outcomes::default()),
    };
    let mut checkpoints = Vec::new();
    let mut unsettled = Vec::new();
    thread::scope(|s| {
        s.spawn(|| sampler(pid, &stop, &peak));
        let parts = cfg.checkpoints.clamp(1, cfg.cycles.max(1));
        for k in 1..=parts {
            let limit = (u64::from(cfg.cycles) * u64::from(k) / u64::from(parts)) as u32;
            run_phase(&shared, limit);
            let (settled, problem) = settle(&server);
            unsettled.extend(problem);
            checkpoints.push(Checkpoint {
                cycles: limit,
                at: began.elapsed(),
                settled,
            });
            if cfg.progress {
                eprintln!(
                    "venus-soak: {limit}/{} cycles, {:.0} s: settled rss={} KiB (anon {} file {} \
                     shmem {}) fds={} threads={} maps={}",
                    cfg.cycles,
                    began.elapsed().as_secs_f64(),
                    settled.rss_kib,
                    settled.anon_kib,
                    settled.file_kib,
                    settled.shmem_kib,
                    settled.fds,
                    settled.threads,
                    settled.maps
                );
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    let outcomes = shared.outcomes.into_inner().unwrap();
    let mut server = server;
    let died = server.exited();
    let counters = Counters::from_log(&server);
    let report = SoakReport {
        server_died: died.map(|s| s.to_string()),
        start,
        checkpoints,
        peak: *peak.lock().unwrap(),
        outcomes,
        counters,
        elapsed: began.elapsed(),
        unsettled,
    };
    let log = if died.is_some() {
        server.log_text()
    } else {
        server.stop()
    };
    (report, log)
}

/// What the workers share.
struct Shared<'a> {
    server: &'a Server,
    cfg: &'a SoakConfig,
    /// The next cycle number to run.
    next: AtomicU32,
    /// A running estimate of a completed run's length, ms (the range of kill delays).
    estimate_ms: AtomicU64,
    outcomes: Mutex<Outcomes>,
}

/// Runs cycles on `cfg.workers` threads until `limit` cycles have been taken.
fn run_phase(shared: &Shared<'_>, limit: u32) {
    thread::scope(|s| {
        for _ in 0..shared.cfg.workers.max(1) {
            s.spawn(|| loop {
                let n = shared.next.fetch_add(1, Ordering::Relaxed);
                if n >= limit {
                    shared.next.fetch_min(limit, Ordering::Relaxed);
                    return;
                }
                let mut rng = Rng::new(shared.cfg.seed ^ (u64::from(n) << 20));
                let result = cycle(shared, &mut rng);
                let mut o = shared.outcomes.lock().unwrap();
                match result {
                    Ok(Ending::Completed) => o.completed += 1,
                    Ok(Ending::KilledDuring) => o.killed_during += 1,
                    Ok(Ending::KilledAfterResult) => o.killed_after_result += 1,
                    Err(e) => o.failures.push(format!("cycle {n}: {e}")),
                }
            });
        }
    });
}

/// Records the highest figures until `stop`.
fn sampler(pid: u32, stop: &AtomicBool, peak: &Mutex<Sample>) {
    while !stop.load(Ordering::Relaxed) {
        if let Some(s) = Sample::of(pid) {
            let mut p = peak.lock().unwrap();
            p.rss_kib = p.rss_kib.max(s.rss_kib);
            p.anon_kib = p.anon_kib.max(s.anon_kib);
            p.file_kib = p.file_kib.max(s.file_kib);
            p.shmem_kib = p.shmem_kib.max(s.shmem_kib);
            p.fds = p.fds.max(s.fds);
            p.threads = p.threads.max(s.threads);
            p.maps = p.maps.max(s.maps);
        }
        thread::sleep(SAMPLE_PERIOD);
    }
}

/// Waits until every context has ended and the thread and descriptor counts hold still;
/// returns the figures then, and a problem if the contexts did not end in time.
fn settle(server: &Server) -> (Sample, Option<String>) {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let mut problem = None;
    loop {
        let c = Counters::from_log(server);
        if c.all_ended() {
            break;
        }
        if Sample::of(server.pid()).is_none() {
            return (Sample::default(), Some("venus-server is gone".into()));
        }
        if Instant::now() > deadline {
            problem = Some(format!(
                "after {SETTLE_TIMEOUT:?}: {} contexts created, {} destroyed, {} released",
                c.contexts, c.destroyed_contexts, c.released
            ));
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    // Threads exit just after their context's last line: wait for two equal readings.
    let mut last = Sample::of(server.pid()).unwrap_or_default();
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(200));
        let now = Sample::of(server.pid()).unwrap_or_default();
        if (now.fds, now.threads, now.maps) == (last.fds, last.threads, last.maps) {
            return (now, problem);
        }
        last = now;
    }
    (last, problem)
}

/// A running client: its process and its stdout lines as they come.
struct Client {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: Vec<String>,
    stderr: thread::JoinHandle<String>,
}

impl Client {
    fn spawn(shared: &Shared<'_>) -> Result<Self, String> {
        let cfg = shared.cfg;
        let mut child = shared
            .server
            .venus_client_feedback(&cfg.compute)
            .args(["saxpy", "--n", &cfg.elements.to_string()])
            .args(["--reps", &cfg.reps.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", cfg.compute.display()))?;
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().expect("piped stderr");
        let stderr = thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Ok(Self {
            child,
            lines,
            stdout: Vec::new(),
            stderr,
        })
    }

    /// Waits up to `wait` for a result line; true when one came.
    fn result_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let ok = line.starts_with("saxpy OK");
                    self.stdout.push(line);
                    if ok {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// Waits for the exit (SIGKILL after `wait`); true when it exited by itself.
    fn exited_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            if Instant::now() >= deadline {
                self.kill();
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Checks a run that ended by itself: exit status 0 and the result line.
    fn check_completed(mut self) -> Result<Ending, String> {
        let status = self.child.wait().map_err(|e| e.to_string())?;
        self.stdout.extend(self.lines.try_iter());
        // The reader may still be draining the pipe.
        let _ = self.result_within(Duration::from_secs(2));
        let ok = self.stdout.iter().any(|l| l.starts_with("saxpy OK"));
        if status.success() && ok {
            return Ok(Ending::Completed);
        }
        let stderr = self.stderr.join().unwrap_or_default();
        Err(format!(
            "venus-compute failed ({status}); stdout: {:?}; stderr:\n{stderr}",
            self.stdout
        ))
    }
}

/// One client run: spawn, work, end one of the three ways.
fn cycle(shared: &Shared<'_>, rng: &mut Rng) -> Result<Ending, String> {
    let mut client = Client::spawn(shared)?;
    let started = Instant::now();
    match rng.below(3) {
        0 => {
            if !client.exited_within(CLIENT_TIMEOUT) {
                return Err(format!(
                    "venus-compute hung (killed after {CLIENT_TIMEOUT:?})"
                ));
            }
            let ending = client.check_completed()?;
            let took = started.elapsed().as_millis() as u64;
            let old = shared.estimate_ms.load(Ordering::Relaxed);
            shared
                .estimate_ms
                .store((old * 7 + took) / 8, Ordering::Relaxed);
            Ok(ending)
        }
        1 => {
            // Within the first 80% of a typical run: the kill lands during the work.
            let range = (shared.estimate_ms.load(Ordering::Relaxed) * 4 / 5).max(1);
            let delay = Duration::from_millis(rng.below(range));
            if client.exited_within(delay) {
                // Faster than the delay: it finished, so it is checked as a completed run.
                return client.check_completed();
            }
            Ok(Ending::KilledDuring)
        }
        _ => {
            let got = client.result_within(CLIENT_TIMEOUT);
            client.kill();
            if got {
                Ok(Ending::KilledAfterResult)
            } else {
                let status = client.child.wait().ok();
                let stderr = client.stderr.join().unwrap_or_default();
                Err(format!(
                    "no result line (exit {status:?}, or {CLIENT_TIMEOUT:?} passed); stdout: \
                     {:?}; stderr:\n{stderr}",
                    client.stdout
                ))
            }
        }
    }
}

impl SoakReport {
    /// The warm-up figures (the first checkpoint).
    pub fn warm(&self) -> Sample {
        self.checkpoints.first().map_or(self.start, |c| c.settled)
    }

    /// The last settled figures.
    pub fn end(&self) -> Sample {
        self.checkpoints.last().map_or(self.start, |c| c.settled)
    }

    /// How far settled RSS rose above the warm-up figure at worst, KiB.
    pub fn rss_growth_kib(&self) -> u64 {
        let warm = self.warm().rss_kib;
        self.checkpoints
            .iter()
            .map(|c| c.settled.rss_kib.saturating_sub(warm))
            .max()
            .unwrap_or(0)
    }

    /// Everything that makes the soak fail; empty when it passed.
    pub fn failures(&self, cfg: &SoakConfig) -> Vec<String> {
        let mut f: Vec<String> = self.outcomes.failures.clone();
        if let Some(status) = &self.server_died {
            f.insert(0, format!("venus-server died: {status}"));
        }
        f.extend(self.unsettled.iter().map(|u| format!("not settled: {u}")));
        let c = &self.counters;
        if c.objects_created != c.objects_destroyed || !c.leaking.is_empty() {
            f.push(format!(
                "host objects leaked: created {} destroyed {}; contexts with live objects: {:?}",
                c.objects_created, c.objects_destroyed, c.leaking
            ));
        }
        if c.contexts == 0 || !c.all_ended() {
            f.push(format!(
                "contexts: {} created, {} destroyed, {} released",
                c.contexts, c.destroyed_contexts, c.released
            ));
        }
        f.extend(c.errors.iter().map(|e| format!("server ERROR line: {e}")));
        let (warm, end) = (self.warm(), self.end());
        if (end.fds, end.threads) != (warm.fds, warm.threads) {
            f.push(format!(
                "fds/threads not back to the warm-up figures: warm-up {}/{}, end {}/{}",
                warm.fds, warm.threads, end.fds, end.threads
            ));
        }
        if self.rss_growth_kib() > cfg.rss_tolerance_kib {
            f.push(format!(
                "settled RSS grew {} KiB after warm-up (tolerance {} KiB)",
                self.rss_growth_kib(),
                cfg.rss_tolerance_kib
            ));
        }
        f
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let (s, w, e, p) = (self.start, self.warm(), self.end(), self.peak);
        let row = |name: &str, f: &dyn Fn(Sample) -> String| {
            format!(
                "{name:<10} {:>12} {:>12} {:>12} {:>12}\n",
                f(s),
                f(w),
                f(e),
                f(p)
            )
        };
        let mut t = format!(
            "{:<10} {:>12} {:>12} {:>12} {:>12}\n",
            "server", "start", "warm-up", "end", "peak"
        );
        t += &row("RSS KiB", &|x| x.rss_kib.to_string());
        t += &row(" anon", &|x| x.anon_kib.to_string());
        t += &row(" file", &|x| x.file_kib.to_string());
        t += &row(" shmem", &|x| x.shmem_kib.to_string());
        t += &row("fds", &|x| x.fds.to_string());
        t += &row("threads", &|x| x.threads.to_string());
        t += &row("maps", &|x| x.maps.to_string());
        let c = &self.counters;
        let o = &self.outcomes;
        t += &format!(
            "settled RSS growth after warm-up: {} KiB\n\
             clients: {} completed, {} killed during the work, {} killed after the result, \
             {} failed\n\
             contexts: {} created, {} destroyed, {} released\n\
             host objects: {} created, {} destroyed, {} leaked\n\
             ERROR lines: {} (+ {} slow teardowns), WARN lines: {}\n\
             elapsed: {:.1} s\n",
            self.rss_growth_kib(),
            o.completed,
            o.killed_during,
            o.killed_after_result,
            o.failures.len(),
            c.contexts,
            c.destroyed_contexts,
            c.released,
            c.objects_created,
            c.objects_destroyed,
            c.objects_created.abs_diff(c.objects_destroyed),
            c.errors.len(),
            c.slow_teardowns.len(),
            c.warnings.len(),
            self.elapsed.as_secs_f64()
        );
        t += "settled RSS by checkpoint (cycles: KiB):";
        for cp in &self.checkpoints {
            t += &format!(" {}:{}", cp.cycles, cp.settled.rss_kib);
        }
        t.push('\n');
        for e in &self.counters.slow_teardowns {
            t += &format!("slow teardown: {e}\n");
        }
        for w in self.counters.warnings.iter().take(5) {
            t += &format!("WARN: {w}\n");
        }
        t
    }
}
