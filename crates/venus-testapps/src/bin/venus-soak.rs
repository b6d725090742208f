//! The leak soak (`venus_testapps::soak`): one `venus-server` on lavapipe, many
//! `venus-compute saxpy` clients through it, several at once, each run to its end or
//! SIGKILLed at a random point; prints the server's start / warm-up / end / peak figures (RSS,
//! fds, threads, mappings), the endings, the server's context and host-object counters and its
//! ERROR lines, and exits 1 when anything leaked or grew (see `docs/soak.md`).
//!
//! Usage: `venus-soak [--cycles N] [--workers W] [--checkpoints K] [--n ELEMENTS]
//! [--reps R] [--seed S] [--rss-tolerance-mib M] [--server-arg ARG]... [--log FILE]`
//! (defaults: 1000 cycles, 4 workers, 10 checkpoints, 65536 elements, 4 submissions, seed 1,
//! 16 MiB). `VENUS_SERVER_BIN` selects the server (default: `venus-server` next to this
//! program); the server inherits the environment (e.g. `MALLOC_ARENA_MAX=8` as an experiment).
//! Exit status: 0 passed, 1 failed, 2 tools missing or bad arguments.

use std::process::ExitCode;

use venus_testapps::gpu::arg;
use venus_testapps::server::{sibling_binary, ServerOptions};
use venus_testapps::soak::{self, SoakConfig};
use venus_testapps::tools::{require, Tool};

fn config(args: &[String]) -> Result<(SoakConfig, Option<String>), String> {
    let e = |e: venus_testapps::gpu::Error| e.to_string();
    let server_args = args
        .windows(2)
        .filter(|w| w[0] == "--server-arg")
        .map(|w| w[1].clone())
        .collect();
    let log = args
        .windows(2)
        .find(|w| w[0] == "--log")
        .map(|w| w[1].clone());
    let cfg = SoakConfig {
        cycles: arg(args, "--cycles", 1000).map_err(e)?,
        workers: arg(args, "--workers", 4).map_err(e)?,
        checkpoints: arg(args, "--checkpoints", 10).map_err(e)?,
        elements: arg(args, "--n", 65536).map_err(e)?,
        reps: arg(args, "--reps", 4).map_err(e)?,
        seed: arg(args, "--seed", 1).map_err(e)?,
        rss_tolerance_kib: arg::<u64>(args, "--rss-tolerance-mib", 16).map_err(e)? * 1024,
        compute: sibling_binary("venus-compute"),
        server: ServerOptions {
            args: server_args,
            ..Default::default()
        },
        progress: true,
    };
    if cfg.cycles == 0 || cfg.workers == 0 || cfg.elements == 0 || cfg.reps == 0 {
        return Err("--cycles, --workers, --n and --reps must be positive".into());
    }
    Ok((cfg, log))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cfg, log_file) = match config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("venus-soak: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(tools) = require("venus-soak", &[Tool::VenusIcd, Tool::LavapipeIcd]) else {
        return ExitCode::from(2);
    };
    eprintln!(
        "venus-soak: {} cycles, {} workers, saxpy n={} reps={}, seed {}",
        cfg.cycles, cfg.workers, cfg.elements, cfg.reps, cfg.seed
    );
    let (report, log) = soak::run(&tools, &cfg);
    if let Some(path) = log_file {
        if let Err(e) = std::fs::write(&path, &log) {
            eprintln!("venus-soak: writing {path}: {e}");
        }
    }
    print!("{}", report.table());
    let failures = report.failures(&cfg);
    if failures.is_empty() {
        println!("venus-soak: PASS");
        ExitCode::SUCCESS
    } else {
        println!("venus-soak: FAIL\n- {}", failures.join("\n- "));
        ExitCode::FAILURE
    }
}
