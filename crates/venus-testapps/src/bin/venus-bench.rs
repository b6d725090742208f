//! Native (lavapipe) vs Venus (through venus-server on lavapipe) benchmark of the
//! application programs, interleaved and repeated: SAXPY throughput, scan time, offscreen
//! render frames/s, submit-to-fence latency, mapped-memory write bandwidth (and a plain
//! memcpy of the same size), and the CPU time of the waiting side during a ~2 s fence wait
//! (the client natively; venus-server's `/proc/<pid>/stat` utime+stime through Venus).
//!
//! Usage (build in release: `cargo build --release -p venus-server -p venus-testapps`):
//! `target/release/venus-bench [--rounds 5] [--n 16777216] [--frames 50] [--submits 500]
//! [--wait-ms 2000] [--no-feedback]`. It starts its own server; `--no-feedback` runs the
//! Venus side with the feedback-off `VN_PERF`. Prints one table: the median of each side
//! and the median, min and max of the per-round venus/native ratios. A failed run is shown
//! as `failed` (and its stderr's last line printed) and the benchmark goes on.

use std::process::{Command, Stdio};
use std::time::Duration;

use venus_testapps::server::{sibling_binary, wait_output, Program, Server, ServerOptions};
use venus_testapps::tools::{require, Tool, Tools};

const TIMEOUT: Duration = Duration::from_secs(600);

/// One measured quantity: which program, its arguments, the line and key to read.
struct Metric {
    name: &'static str,
    unit: &'static str,
    program: &'static str,
    args: Vec<String>,
    prefix: &'static str,
    key: &'static str,
}

struct Options {
    rounds: usize,
    feedback: bool,
    wait_ms: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |name: &str, default: u64| -> u64 {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let options = Options {
        rounds: get("--rounds", 5).max(1) as usize,
        feedback: !args.iter().any(|a| a == "--no-feedback"),
        wait_ms: get("--wait-ms", 2000),
    };
    let Some(tools) = require("venus-bench", &[Tool::LavapipeIcd, Tool::VenusIcd]) else {
        std::process::exit(2);
    };
    let metrics = metrics(
        get("--n", 16 << 20),
        get("--frames", 50),
        get("--submits", 500),
    );
    let server = Server::start(&tools, &ServerOptions::default());
    // A failed wait is reported as one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("panic");
        eprintln!("  {}", msg.lines().next().unwrap_or(""));
    }));
    // results[metric][side] = one value per round (None: failed).
    let mut results: Vec<[Vec<Option<f64>>; 2]> = (0..=metrics.len() + 1)
        .map(|_| [Vec::new(), Vec::new()])
        .collect();
    for round in 0..options.rounds {
        eprintln!("round {}/{}", round + 1, options.rounds);
        for (m, metric) in metrics.iter().enumerate() {
            // Alternate which side goes first.
            for venus in [round % 2 == 1, round % 2 == 0] {
                let v = measure(&tools, &server, &options, metric, venus);
                results[m][usize::from(venus)].push(v);
            }
        }
        for venus in [round % 2 == 1, round % 2 == 0] {
            let (client, server_cpu) = wait_cpu(&tools, &server, &options, venus);
            results[metrics.len()][usize::from(venus)].push(client);
            results[metrics.len() + 1][usize::from(venus)].push(server_cpu);
        }
    }
    print_table(&metrics, &results, &options);
}

fn metrics(n: u64, frames: u64, submits: u64) -> Vec<Metric> {
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let n = n.to_string();
    vec![
        Metric {
            name: "saxpy throughput",
            unit: "GB/s",
            program: "venus-compute",
            args: s(&["saxpy", "--n", &n, "--reps", "3"]),
            prefix: "saxpy OK",
            key: "gbps",
        },
        Metric {
            name: "scan time",
            unit: "ms",
            program: "venus-compute",
            args: s(&["scan", "--n", &n, "--reps", "3"]),
            prefix: "scan OK",
            key: "time_ms",
        },
        Metric {
            name: "offscreen render",
            unit: "frames/s",
            program: "venus-render",
            args: s(&["/dev/null", "--frames", &frames.to_string()]),
            prefix: "render OK",
            key: "fps",
        },
        Metric {
            name: "submit->fence latency",
            unit: "us (median)",
            program: "venus-sync",
            args: s(&["latency", "--count", &submits.to_string()]),
            prefix: "latency OK",
            key: "median_us",
        },
        Metric {
            name: "mapped write 64 MiB",
            unit: "GB/s",
            program: "venus-coherence",
            args: s(&["bandwidth"]),
            prefix: "bandwidth OK",
            key: "mapped_gbps",
        },
        Metric {
            name: "plain memcpy 64 MiB",
            unit: "GB/s",
            program: "venus-coherence",
            args: s(&["bandwidth"]),
            prefix: "bandwidth OK",
            key: "memcpy_gbps",
        },
    ]
}

/// The command for `program` natively or through the server.
fn command(
    tools: &Tools,
    server: &Server,
    options: &Options,
    program: &str,
    venus: bool,
) -> Command {
    let path = sibling_binary(program);
    if !venus {
        let mut c = Command::new(path);
        c.env("VK_DRIVER_FILES", tools.lavapipe_icd())
            .env_remove("VK_ICD_FILENAMES")
            .env_remove("VK_INSTANCE_LAYERS")
            .env_remove("VN_PERF");
        return c;
    }
    if options.feedback {
        server.venus_client_feedback(path)
    } else {
        server.venus_client(path)
    }
}

/// `key=<number>` in the line of `stdout` starting with `prefix`.
fn value(stdout: &str, prefix: &str, key: &str) -> Option<f64> {
    let line = stdout.lines().find(|l| l.starts_with(prefix))?;
    let pat = format!("{key}=");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&pat))
        .and_then(|v| v.parse().ok())
}

fn measure(
    tools: &Tools,
    server: &Server,
    options: &Options,
    m: &Metric,
    venus: bool,
) -> Option<f64> {
    let child = command(tools, server, options, m.program, venus)
        .args(&m.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let out = wait_output(child, TIMEOUT, m.program);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v = value(&stdout, m.prefix, m.key);
    if v.is_none() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!(
            "  {} ({}) failed ({}): {}",
            m.name,
            if venus { "venus" } else { "native" },
            out.status,
            stderr.lines().last().unwrap_or("")
        );
    }
    v
}

/// The client's CPU time during the wait and, through Venus, the server's (ms).
fn wait_cpu(
    tools: &Tools,
    server: &Server,
    options: &Options,
    venus: bool,
) -> (Option<f64>, Option<f64>) {
    let mut c = command(tools, server, options, "venus-sync", venus);
    c.args(["wait", "--ms", &options.wait_ms.to_string()]);
    let mut program = Program::spawn(c, "venus-sync wait");
    let timeout = Duration::from_millis(options.wait_ms) + Duration::from_secs(120);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        program.wait_for_line("WAIT_BEGIN", timeout);
        let before = server.cpu_time();
        let end = program.wait_for_line("WAIT_END", timeout);
        let after = server.cpu_time();
        let server_ms = before
            .zip(after)
            .map(|(b, a)| a.saturating_sub(b).as_secs_f64() * 1e3);
        (
            value(&end, "WAIT_END", "client_cpu_ms"),
            server_ms.filter(|_| venus),
        )
    }));
    let _ = program.wait_exit(Duration::from_secs(30));
    result.unwrap_or_else(|_| {
        eprintln!(
            "  fence wait ({}) failed",
            if venus { "venus" } else { "native" }
        );
        (None, None)
    })
}

fn median(v: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("failed".into(), |v| format!("{v:.3}"))
}

fn print_table(metrics: &[Metric], results: &[[Vec<Option<f64>>; 2]], options: &Options) {
    println!(
        "venus-bench: {} rounds, Venus side {} feedback",
        options.rounds,
        if options.feedback {
            "with default"
        } else {
            "without (VN_PERF)"
        }
    );
    println!(
        "{:<28} {:<12} {:>12} {:>12} {:>10} {:>21}",
        "metric", "unit", "native", "venus", "ratio", "ratio min..max"
    );
    let mut names: Vec<(&str, &str)> = metrics.iter().map(|m| (m.name, m.unit)).collect();
    names.push(("fence wait: client CPU", "ms"));
    names.push(("fence wait: server CPU", "ms"));
    for (i, (name, unit)) in names.iter().enumerate() {
        let [native, venus] = &results[i];
        let flat = |v: &[Option<f64>]| v.iter().flatten().copied().collect::<Vec<_>>();
        let ratios: Vec<f64> = native
            .iter()
            .zip(venus)
            .filter_map(|(n, v)| Some(v.as_ref()? / n.as_ref()?))
            .filter(|r| r.is_finite())
            .collect();
        let spread = if ratios.is_empty() {
            "-".to_string()
        } else {
            let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
            let max = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            format!("{min:.3}..{max:.3}")
        };
        println!(
            "{name:<28} {unit:<12} {:>12} {:>12} {:>10} {spread:>21}",
            if i == names.len() - 1 {
                "n/a".to_string()
            } else {
                fmt(median(&flat(native)))
            },
            fmt(median(&flat(venus))),
            median(&ratios).map_or("-".into(), |r| format!("{r:.3}")),
        );
    }
    println!("(fence wait: server CPU is venus-server's utime+stime during the client's wait; natively there is no server)");
}
