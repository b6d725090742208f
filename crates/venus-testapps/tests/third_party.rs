//! Third-party clients through venus-server (docs/third-party-clients.md):
//! - `zink_glxinfo`: `glxinfo -B` under Xvfb with Mesa's GL-on-Vulkan (zink) on the Venus
//!   ICD names the Venus device in its renderer string;
//! - `zink_render`: `third_party/zink_render.c` (EGL surfaceless, offscreen FBO, no
//!   swapchain) renders a known scene through Venus; its exact pixels check out and its
//!   picture hash equals the same program's on zink over lavapipe directly;
//! - `wgpu_compute`: `third_party/wgpu_compute.py` (Python `wgpu`, wgpu-native's Vulkan
//!   backend) computes Collatz steps and block prefix sums through Venus, checked exactly.
//!
//! Every test also checks in the server log that each Venus context the client opened was
//! released with no live host objects. Clients run with Mesa's default feedback.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use venus_testapps::server::{wait_output, Released, Server, ServerOptions, TempDir};
use venus_testapps::tools::{require, wgpu_python, Tool};

const TIMEOUT: Duration = Duration::from_secs(300);
/// The environment that makes Mesa's GL use zink (GL on Vulkan) instead of llvmpipe.
const ZINK_ENV: [(&str, &str); 2] = [("LIBGL_ALWAYS_SOFTWARE", "1"), ("GALLIUM_DRIVER", "zink")];

fn third_party(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("third_party")
        .join(file)
}

/// Runs `command`, asserting it exits 0; the panic message carries the server log's tail.
fn run_ok(mut command: Command, what: &str, server: Option<&Server>) -> Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {what}: {e}"));
    let out = wait_output(child, TIMEOUT, what);
    if !out.status.success() {
        let log = server.map(Server::log_text).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        panic!(
            "{what} failed ({})\nstdout:\n{}\nstderr:\n{}\nserver log (last 40 lines, newest \
             first):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail.join("\n")
        );
    }
    out
}

/// The stdout line starting with `prefix` (panics with the whole stdout if none).
fn line<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{stdout}"))
}

/// Waits until every context the server created has its `host objects released` line, and
/// asserts there was at least one and each released everything. Returns the count.
fn assert_contexts_released(server: &Server, what: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = server.log_lines();
        let created = log
            .iter()
            .filter(|l| l.text.contains("context created") && l.text.contains("client="))
            .count();
        let released: Vec<Released> = log
            .iter()
            .filter_map(|l| Released::parse(&l.text))
            .collect();
        if created > 0 && released.len() >= created {
            for r in &released {
                assert_eq!(
                    r.live, 0,
                    "{what}: context {} leaked host objects: {r:?}",
                    r.ctx
                );
                assert_eq!(r.created, r.destroyed, "{what}: {r:?}");
            }
            return created;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {created} contexts created but {} released; log:\n{}",
            released.len(),
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn zink_glxinfo() {
    let needed = [
        Tool::LavapipeIcd,
        Tool::VenusIcd,
        Tool::Zink,
        Tool::Glxinfo,
        Tool::Xvfb,
    ];
    let Some(tools) = require("zink_glxinfo", &needed) else {
        return;
    };
    let server = Server::start(&tools, &ServerOptions::default());
    let mut command = server.venus_client_feedback("xvfb-run");
    command
        .args(["-a", "-s", "-screen 0 640x480x24", "glxinfo", "-B"])
        .envs(ZINK_ENV);
    let out = run_ok(
        command,
        "xvfb-run glxinfo -B (zink on Venus)",
        Some(&server),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let renderer = line(&stdout, "OpenGL renderer string: ");
    assert!(
        renderer.contains("zink Vulkan 1.")
            && renderer.contains("(Virtio-GPU Venus (llvmpipe")
            && renderer.contains("(MESA_VENUS)"),
        "not zink on Venus: {renderer}"
    );
    assert!(
        line(&stdout, "direct rendering: ").ends_with("Yes"),
        "{stdout}"
    );
    let core = line(&stdout, "OpenGL core profile version string: ");
    assert!(core.contains("4.6 (Core Profile) Mesa"), "{core}");
    let contexts = assert_contexts_released(&server, "glxinfo");
    eprintln!("zink_glxinfo: {renderer}; {core}; {contexts} Venus contexts");
    server.stop();
}

/// Compiles `third_party/zink_render.c` into `dir`.
fn build_zink_render(dir: &Path) -> PathBuf {
    let exe = dir.join("zink_render");
    let mut cc = Command::new("cc");
    cc.args(["-O1", "-Wall", "-o"])
        .arg(&exe)
        .arg(third_party("zink_render.c"))
        .args(["-lEGL", "-lGLESv2"]);
    run_ok(cc, "cc zink_render.c", None);
    exe
}

/// The `pixels:` and `renderer:` lines of a successful zink_render run.
fn zink_render_result(out: &Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        line(&stdout, "zink-render OK"),
        "zink-render OK checked=2304"
    );
    let pixels = line(&stdout, "pixels: ").to_owned();
    assert!(pixels.starts_with("pixels: 64x64 fnv1a64="), "{pixels}");
    (line(&stdout, "renderer: ").to_owned(), pixels)
}

#[test]
fn zink_render() {
    let needed = [Tool::LavapipeIcd, Tool::VenusIcd, Tool::Zink, Tool::GlesDev];
    let Some(tools) = require("zink_render", &needed) else {
        return;
    };
    let dir = TempDir::new("zink");
    let exe = build_zink_render(&dir.0);

    let mut native = Command::new(&exe);
    native
        .envs(ZINK_ENV)
        .env("VK_DRIVER_FILES", tools.lavapipe_icd())
        .env_remove("VK_ICD_FILENAMES")
        .env_remove("VK_INSTANCE_LAYERS")
        .stdin(Stdio::null());
    let (native_renderer, native_pixels) =
        zink_render_result(&run_ok(native, "zink_render (zink on lavapipe)", None));
    assert!(
        native_renderer.starts_with("renderer: zink Vulkan 1.")
            && native_renderer.contains("llvmpipe"),
        "{native_renderer}"
    );

    let server = Server::start(&tools, &ServerOptions::default());
    let mut venus = server.venus_client_feedback(&exe);
    venus.envs(ZINK_ENV);
    let out = run_ok(venus, "zink_render (zink on Venus)", Some(&server));
    let (renderer, pixels) = zink_render_result(&out);
    assert!(
        renderer.starts_with("renderer: zink Vulkan 1.")
            && renderer.contains("Virtio-GPU Venus (llvmpipe"),
        "not zink on Venus: {renderer}"
    );
    assert_eq!(
        pixels, native_pixels,
        "the picture through Venus differs from native zink"
    );
    assert_contexts_released(&server, "zink_render");
    eprintln!("zink_render: {renderer}; {pixels} (same as on lavapipe directly)");
    server.stop();
}

#[test]
fn wgpu_compute() {
    let needed = [Tool::LavapipeIcd, Tool::VenusIcd, Tool::WgpuVenv];
    let Some(tools) = require("wgpu_compute", &needed) else {
        return;
    };
    let server = Server::start(&tools, &ServerOptions::default());
    let mut command = server.venus_client_feedback(wgpu_python());
    command.arg(third_party("wgpu_compute.py")).arg("65536");
    let out = run_ok(command, "wgpu_compute.py (Venus)", Some(&server));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let adapter = line(&stdout, "adapter: ");
    assert!(
        adapter.starts_with("adapter: Virtio-GPU Venus (llvmpipe")
            && adapter.contains("via Vulkan")
            && adapter.contains("vendor=venus"),
        "not the Venus device: {adapter}"
    );
    // Sum and maximum of the Collatz step counts of 1..=65536, and the last block's sum of
    // (i * 7 + 3) % 101 over i in 65280..65536 (the script also compares every element).
    line(&stdout, "collatz OK n=65536 sum=6763696 max=339");
    line(&stdout, "scan OK n=65536 last=12931");
    line(&stdout, "wgpu-compute OK");
    assert_contexts_released(&server, "wgpu_compute");
    eprintln!("wgpu_compute: {}", stdout.trim().replace('\n', "; "));
    server.stop();
}
