//! `venus-server`: the vtest server binary, command-line compatible with
//! `virgl_test_server --venus` where it matters.
//!
//! Logs go to stderr through `tracing`; the filter comes from `VENUS_LOG` (same syntax as
//! `RUST_LOG`, e.g. `VENUS_LOG=debug` or `VENUS_LOG=venus_server=trace`), default `warn`.
//! Colour codes only when stderr is a terminal and `NO_COLOR` is unset, so logs redirected to a
//! file or a pipe are plain text.

#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

use venus_renderer::shm::ShmBacking;
use venus_server::profile::{HostProfile, HostSettings};
use venus_server::renderer::RendererBackend;
use venus_server::server::DEFAULT_SOCKET_PATH;
use venus_server::stub::StubBackend;
use venus_server::vtest::Backend;
use venus_server::{ClientPolicy, Server, ServerConfig, ShutdownHandle};

/// A memory-safe Venus (Vulkan) vtest server for stock Mesa clients
/// (`VN_DEBUG=vtest VTEST_SOCKET_NAME=<socket>`).
#[derive(Debug, Parser)]
#[command(
    name = "venus-server",
    version,
    after_help = "Logging: VENUS_LOG=<filter> (RUST_LOG syntax, e.g. info, debug, \
                  venus_server=trace); default: warn. Colours only when stderr is a terminal and \
                  NO_COLOR is unset."
)]
struct Cli {
    /// UNIX socket to listen on (a stale socket file is replaced; a live server is not).
    #[arg(
        long,
        value_name = "PATH",
        default_value = DEFAULT_SOCKET_PATH,
        env = "VTEST_RENDERER_SOCKET_NAME"
    )]
    socket_path: PathBuf,

    /// Serve clients concurrently even with --no-fork (as virgl_test_server). Clients are
    /// always isolated from each other: each has its own context on its own thread.
    #[arg(long)]
    multi_clients: bool,

    /// Without --multi-clients: serve one client at a time, like virgl_test_server --no-fork.
    /// (We never fork; by default clients are served concurrently, like the reference's
    /// fork-per-client default.)
    #[arg(long)]
    no_fork: bool,

    /// Serve a single client, then exit.
    #[arg(long)]
    no_loop_or_fork: bool,

    /// Accepted for compatibility (Venus is the only protocol served).
    #[arg(long)]
    venus: bool,

    /// Accepted for compatibility (there is no virgl/GL support to disable).
    #[arg(long)]
    no_virgl: bool,

    /// Host Vulkan device to render on: an index into vkEnumeratePhysicalDevices or a
    /// (case-insensitive) substring of the device name; default: every device the Vulkan
    /// loader lists (select drivers with VK_DRIVER_FILES as usual).
    #[arg(long, value_name = "INDEX|NAME")]
    device: Option<String>,

    /// Round shared memory (blobs, rings, imported device memory) as a host with pages of
    /// BYTES must: 16384 is Apple silicon. A power of two, at least the real page size.
    /// Default: the real page size.
    #[arg(long, value_name = "BYTES", value_parser = parse_page_size)]
    host_page_size: Option<u64>,

    /// Behave like this kind of host: `linux` (this host as it is) or `apple` (16 KiB pages,
    /// POSIX shared memory, dma-buf/sync_fd/DRM modifiers emulated even where the driver has
    /// them). --host-page-size and --shm-backing override its values.
    #[arg(long, value_name = "linux|apple", default_value = "linux")]
    profile: HostProfile,

    /// How shared memory is created: `memfd` (sealed; Linux's default) or `posix` (`shm_open`,
    /// what macOS has). Default: the profile's.
    #[arg(long, value_name = "memfd|posix")]
    shm_backing: Option<ShmBacking>,

    /// Print what each host device lacks and which emulations and profiles the server will
    /// use for it (memory import, WSI emulation, page size, shared memory, portability), then
    /// exit.
    #[arg(long)]
    doctor: bool,

    /// Per-context limits: --config FILE, --print-config, --max-* (see docs/limits.md), and
    /// --no-robust-access (docs/robustness.md).
    #[command(flatten)]
    limits: venus_server::config::LimitArgs,

    /// Record every context into DIR (one `ctx-<id>.vrec` per context: the commands of the
    /// context stream and the rings, blobs, and the mapped memory the host read) for
    /// `venus-replay DIR`. Format: docs/recording.md. Not with --stub.
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,

    /// Use the stub backend: handshake and blobs only; submissions are recorded, rings are
    /// never consumed (for debugging the transport). Default: the renderer.
    #[arg(long)]
    stub: bool,

    /// virgl_test_server's render node option; accepted and ignored (see --device).
    #[arg(long, value_name = "DEV", hide = true)]
    rendernode: Option<String>,

    /// virgl_test_server's GL options; accepted and ignored.
    #[arg(long, hide = true)]
    use_glx: bool,
    #[arg(long, hide = true)]
    use_egl_surfaceless: bool,
    #[arg(long, hide = true)]
    use_gles: bool,
    #[arg(long, hide = true)]
    compat: bool,
}

fn parse_page_size(s: &str) -> Result<u64, String> {
    let v: u64 = s.parse().map_err(|e| format!("{e}"))?;
    let real = rustix::param::page_size() as u64;
    if !v.is_power_of_two() || v < real {
        return Err(format!(
            "{v} is not a power of two of at least the real page size ({real})"
        ));
    }
    Ok(v)
}

impl Cli {
    fn client_policy(&self) -> ClientPolicy {
        if self.no_loop_or_fork {
            ClientPolicy::Once
        } else if self.no_fork && !self.multi_clients {
            ClientPolicy::Sequential
        } else {
            ClientPolicy::Concurrent
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();

    if cli.rendernode.is_some()
        || cli.use_glx
        || cli.use_egl_surfaceless
        || cli.use_gles
        || cli.compat
    {
        warn!("virgl (GL) options are ignored: venus-server serves Venus only");
    }

    let limits = match cli.limits.resolve() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("venus-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    if cli.limits.print_config {
        print!("{}", venus_server::config::to_toml(&limits));
        return ExitCode::SUCCESS;
    }
    info!(?limits, "per-context limits");
    let config = ServerConfig {
        socket_path: cli.socket_path.clone(),
        clients: cli.client_policy(),
        limits,
    };
    if cli.stub && cli.record.is_some() {
        eprintln!("venus-server: --record records the renderer; it cannot be used with --stub");
        return ExitCode::FAILURE;
    }
    if cli.stub {
        warn!("--stub: using the stub backend (records submissions, renders nothing)");
        let backend = StubBackend::new().with_device(cli.device.clone());
        serve(config, Arc::new(backend))
    } else {
        let selector = venus_dispatch::DeviceSelector::parse(cli.device.as_deref().unwrap_or(""));
        let host = cli.profile.settings(cli.host_page_size, cli.shm_backing);
        info!(?host, "host profile");
        let factory = match venus_dispatch::VulkanFactory::new(selector) {
            Ok(f) => f
                .with_host_page_size(host.page_size)
                .with_shm_backing(host.shm_backing)
                .with_forced_wsi_emulation(host.force_emulated_wsi),
            Err(e) => {
                eprintln!("venus-server: {e}");
                return ExitCode::FAILURE;
            }
        };
        if cli.doctor {
            return doctor(&factory, &host);
        }
        let mut backend = RendererBackend::new(Arc::new(factory))
            .with_limits(limits)
            .with_page_size(host.page_size)
            .with_shm_backing(host.shm_backing);
        if let Some(dir) = &cli.record {
            match venus_renderer::record::RecordSink::new(dir) {
                Ok(sink) => backend = backend.with_recording(sink),
                Err(e) => {
                    eprintln!("venus-server: --record {}: {e}", dir.display());
                    return ExitCode::FAILURE;
                }
            }
        }
        serve(config, Arc::new(backend))
    }
}

/// `--doctor`: the report on stdout, exit 0 (1 when the driver cannot be asked).
fn doctor(factory: &venus_dispatch::VulkanFactory, host: &HostSettings) -> ExitCode {
    println!("venus-server doctor: profile {}", host.profile);
    match factory.doctor() {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("venus-server: doctor: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, filtered by `VENUS_LOG` (default `warn`); colour codes only on a terminal.
fn init_logging() {
    let filter = EnvFilter::try_from_env("VENUS_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(use_colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").is_some(),
        ))
        .init();
}

/// ANSI colours only when stderr is a terminal and `NO_COLOR` is unset (<https://no-color.org>:
/// any value, even empty, disables colour). Logs written to a file or a pipe stay plain text.
fn use_colour(stderr_is_terminal: bool, no_color_set: bool) -> bool {
    stderr_is_terminal && !no_color_set
}

/// Binds, installs the signal handlers and serves until shut down.
fn serve<B: Backend>(config: ServerConfig, backend: Arc<B>) -> ExitCode {
    let server = match Server::bind(config, backend) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("venus-server: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = watch_signals(server.shutdown_handle()) {
        eprintln!("venus-server: cannot install signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("venus-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// SIGINT/SIGTERM: first one shuts down cleanly (socket removed), a second one exits at once.
fn watch_signals(handle: ShutdownHandle) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut seen = 0;
            for sig in signals.forever() {
                seen += 1;
                if seen == 1 {
                    info!(signal = sig, "shutting down");
                    handle.shutdown();
                } else {
                    std::process::exit(128 + sig);
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::use_colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, false));
        assert!(!use_colour(true, true), "NO_COLOR wins on a terminal");
        assert!(
            !use_colour(false, false),
            "a file or a pipe gets no colour codes"
        );
        assert!(!use_colour(false, true));
    }
}
