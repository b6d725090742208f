//! `venus-replay DIR`: replays what `venus-server --record DIR` recorded, through the renderer
//! core and the host Vulkan driver, without the client. Exit status 0: every context replayed
//! identically; 1: a divergence or error (the first one is printed, naming its position);
//! 2: bad usage.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use venus_replay::{recordings, replay_file, Replayer};

/// Replays a venus-server --record recording and reports the first divergence.
#[derive(Debug, Parser)]
#[command(
    name = "venus-replay",
    version,
    after_help = "Logging: VENUS_LOG=<filter> (RUST_LOG syntax); default: warn."
)]
struct Cli {
    /// The recording directory (every ctx-<id>.vrec in it, in id order) or one .vrec file.
    recording: PathBuf,

    /// Replay only the context with this id.
    #[arg(long, value_name = "ID")]
    context: Option<u64>,

    /// After the replay, write the final contents of blob RES_ID into FILE (repeatable;
    /// with several contexts, the last replayed context that has the blob wins).
    #[arg(long, value_name = "RES_ID=FILE", value_parser = parse_dump)]
    dump_blob: Vec<(u32, PathBuf)>,

    /// After the replay, write the final contents of every blob into DIR as
    /// ctx-<id>-blob-<res_id>.bin.
    #[arg(long, value_name = "DIR")]
    dump_dir: Option<PathBuf>,

    /// Blob contents at unref that differ from the recording are divergences (default:
    /// warnings; the client may write mapped memory the recording does not capture).
    #[arg(long)]
    strict_memory: bool,

    /// Print the recording's events (one line each) instead of replaying.
    #[arg(long)]
    list: bool,

    /// Run FILE (a raw Venus command stream, e.g. a fuzz finding) as the dispatch_lavapipe
    /// fuzz target does: the recording replayed up to its first vkCreateDevice, then FILE as
    /// one context-stream batch; prints how it ended (repeatable: one fresh context each).
    #[arg(long, value_name = "FILE")]
    run_input: Vec<PathBuf>,

    /// Treat the argument as a raw Venus command stream (a fuzz input) and print each decoded
    /// command, instead of replaying.
    #[arg(long)]
    decode: bool,

    /// Host Vulkan device: an index or a substring of its name (as venus-server --device).
    #[arg(long, value_name = "INDEX|NAME")]
    device: Option<String>,
}

fn parse_dump(s: &str) -> Result<(u32, PathBuf), String> {
    let (id, file) = s
        .split_once('=')
        .ok_or_else(|| format!("expected RES_ID=FILE, got {s:?}"))?;
    let id = id.parse().map_err(|e| format!("resource id {id:?}: {e}"))?;
    Ok((id, PathBuf::from(file)))
}

fn context_id(path: &Path) -> Option<u64> {
    path.file_name()?
        .to_str()?
        .strip_prefix("ctx-")?
        .strip_suffix(".vrec")?
        .parse()
        .ok()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_env("VENUS_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("venus-replay: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), String> {
    if cli.decode {
        let bytes = std::fs::read(&cli.recording)
            .map_err(|e| format!("{}: {e}", cli.recording.display()))?;
        for line in venus_replay::decode_stream(&bytes) {
            println!("{line}");
        }
        return Ok(());
    }
    let mut files =
        recordings(&cli.recording).map_err(|e| format!("{}: {e}", cli.recording.display()))?;
    if let Some(id) = cli.context {
        files.retain(|f| context_id(f) == Some(id));
    }
    if files.is_empty() {
        return Err(format!(
            "{}: no recording (ctx-<id>.vrec) to replay",
            cli.recording.display()
        ));
    }
    if !cli.run_input.is_empty() {
        return run_inputs(cli);
    }
    if cli.list {
        for file in &files {
            let events = venus_renderer::record::read_recording(file).map_err(|e| e.to_string())?;
            println!("{}: {} events", file.display(), events.len());
            for (i, e) in events.iter().enumerate() {
                println!(
                    "#{i} seq={} byte={} {}",
                    e.seq,
                    e.offset,
                    venus_replay::summary(&e.event)
                );
            }
        }
        return Ok(());
    }
    let selector = venus_dispatch::DeviceSelector::parse(cli.device.as_deref().unwrap_or(""));
    let factory = venus_dispatch::VulkanFactory::new(selector).map_err(|e| e.to_string())?;
    let factory: Arc<dyn venus_renderer::DispatchFactory> = Arc::new(factory);
    for file in &files {
        let r = replay_file(Arc::clone(&factory), file, cli.strict_memory)
            .map_err(|e| e.to_string())?;
        let s = r.stats();
        for w in &s.warnings {
            eprintln!("venus-replay: warning: {w}");
        }
        println!(
            "replayed {}: events={} commands={} replies={} memory_writes={} observations={} \
             memory_differences={} warnings={}: identical",
            file.display(),
            s.events,
            s.commands,
            s.replies,
            s.memory_writes,
            s.observations,
            s.memory_differences,
            s.warnings.len()
        );
        dump(cli, file, &r)?;
    }
    Ok(())
}

/// `--run-input`: each file after the recording's set-up (see the option).
fn run_inputs(cli: &Cli) -> Result<(), String> {
    let files = recordings(&cli.recording).map_err(|e| e.to_string())?;
    let prefix = files
        .first()
        .ok_or_else(|| format!("{}: no recording", cli.recording.display()))?;
    let mut h = venus_replay::harness::Harness::new(prefix)?;
    for input in &cli.run_input {
        let bytes = std::fs::read(input).map_err(|e| format!("{}: {e}", input.display()))?;
        match h.run_input(&bytes) {
            Ok(()) => println!("{}: executed", input.display()),
            Err(e) => println!("{}: context lost: {e}", input.display()),
        }
    }
    Ok(())
}

fn dump(cli: &Cli, file: &Path, r: &Replayer) -> Result<(), String> {
    let write = |res_id: u32, path: &Path| -> Result<(), String> {
        let Some(shm) = r.blobs().get(&res_id) else {
            return Err(format!("--dump-blob: {}: no blob {res_id}", file.display()));
        };
        let bytes = shm
            .read_vec(0, shm.len())
            .map_err(|e| format!("reading blob {res_id}: {e}"))?;
        std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
    };
    for (id, path) in &cli.dump_blob {
        if r.blobs().contains_key(id) {
            write(*id, path)?;
        }
    }
    if let Some(dir) = &cli.dump_dir {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let ctx = context_id(file).unwrap_or(0);
        for id in r.blobs().keys() {
            write(*id, &dir.join(format!("ctx-{ctx}-blob-{id}.bin")))?;
        }
    }
    Ok(())
}
