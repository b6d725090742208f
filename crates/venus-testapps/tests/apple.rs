//! The Apple host profile (issue 13) on Linux: everything runs against a server started with
//! `--profile apple` (16 KiB pages, POSIX shared memory, dma-buf / sync_fd / DRM modifiers /
//! foreign queue emulated even though lavapipe has some of them).
//!
//! - `doctor_*`: `venus-server --doctor` on lavapipe, plain and with `--profile apple`;
//! - `apple_*`: the real-application programs (as in `tests/apps.rs`: exit 0, their `... OK`
//!   line, `live=0` at the end; the picture equals the native one byte for byte) and stock
//!   `vkcube` under Xvfb with the software WSI.
//!
//! The portability test layer (`crates/venus-testlayer`, which makes lavapipe list
//! `VK_KHR_portability_subset` with MoltenVK-like restrictions) is built and put under the
//! server (`VENUS_TESTLAYER_DIR` / `VENUS_TESTLAYER_NAME` point at another build); the doctor
//! must report the subset and what it hides, and the applications still run.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use venus_testapps::server::{
    server_binary, wait_output, Released, Server, ServerOptions, TempDir,
};
use venus_testapps::tools::{require, Tool, Tools};

const COMPUTE: &str = env!("CARGO_BIN_EXE_venus-compute");
const RENDER: &str = env!("CARGO_BIN_EXE_venus-render");
const SYNC: &str = env!("CARGO_BIN_EXE_venus-sync");
const COHERENCE: &str = env!("CARGO_BIN_EXE_venus-coherence");
const TIMEOUT: Duration = Duration::from_secs(300);
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

/// `(VK_ADD_LAYER_PATH, VK_INSTANCE_LAYERS)` for the test layer, when one is given.
fn test_layer() -> Option<(String, String)> {
    static LAYER: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    let layer = LAYER.get_or_init(|| {
        let dir = std::env::var("VENUS_TESTLAYER_DIR").unwrap_or_else(|_| {
            let exe = std::env::current_exe().expect("test executable path");
            let scratch = Path::new(env!("CARGO_TARGET_TMPDIR"));
            venus_testlayer::build_for_tests(&exe, scratch)
                .to_string_lossy()
                .into_owned()
        });
        let name = std::env::var("VENUS_TESTLAYER_NAME")
            .unwrap_or_else(|_| venus_testlayer::LAYER_NAME.to_string_lossy().into_owned());
        (dir, name)
    });
    Some(layer.clone())
}

fn layer_env() -> Vec<(String, String)> {
    match test_layer() {
        Some((dir, name)) => vec![
            ("VK_ADD_LAYER_PATH".into(), dir),
            ("VK_INSTANCE_LAYERS".into(), name),
        ],
        None => Vec::new(),
    }
}

fn apple_options() -> ServerOptions {
    ServerOptions {
        args: vec!["--profile".into(), "apple".into()],
        env: layer_env(),
        ..ServerOptions::default()
    }
}

/// `venus-server --doctor ARGS` on lavapipe (under the test layer if any): its stdout.
fn doctor(tools: &Tools, args: &[&str]) -> String {
    let mut c = Command::new(server_binary());
    c.arg("--doctor")
        .args(args)
        .env("VK_DRIVER_FILES", tools.lavapipe_icd())
        .env_remove("VK_ICD_FILENAMES")
        .env_remove("VK_INSTANCE_LAYERS")
        .envs(layer_env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = wait_output(c.spawn().expect("venus-server"), TIMEOUT, "doctor");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "doctor {args:?}: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("doctor {args:?}:\n{stdout}");
    stdout
}

fn assert_lines(report: &str, want: &[&str]) {
    let missing: Vec<&&str> = want
        .iter()
        .filter(|w| !report.lines().any(|l| l.trim_start().starts_with(**w)))
        .collect();
    assert!(missing.is_empty(), "missing {missing:?} in:\n{report}");
}

/// With the test layer: the subset is listed, enabled and hides at least one feature.
fn assert_portability(report: &str) {
    if test_layer().is_none() {
        assert_lines(report, &["portability subset: not listed"]);
        eprintln!("portability checks SKIPPED: VENUS_TESTLAYER_DIR is not set");
        return;
    }
    assert_lines(
        report,
        &[
            "portability subset: listed, enabled at device creation",
            "portability missing:",
            "portability hides from clients:",
        ],
    );
    assert!(
        !report.contains("portability hides from clients: none"),
        "the test layer's restrictions hide nothing:\n{report}"
    );
}

#[test]
fn doctor_on_lavapipe() {
    let Some(tools) = require("doctor_on_lavapipe", &[Tool::LavapipeIcd]) else {
        return;
    };
    let page = rustix::param::page_size();
    let r = doctor(&tools, &[]);
    assert_lines(
        &r,
        &[
            "venus-server doctor: profile linux",
            &format!("host: page size {page} (real {page}), shared memory memfd"),
            "instance: VK_KHR_portability_enumeration",
            "device 0: llvmpipe",
            "memory import: VK_EXT_external_memory_host native",
            "wsi VK_EXT_external_memory_dma_buf: native",
            "wsi VK_EXT_image_drm_format_modifier: emulated (the driver lacks it)",
            &format!("shared memory: memfd, page size {page}"),
        ],
    );
    assert_portability(&r);
}

#[test]
fn doctor_with_profile_apple() {
    let Some(tools) = require("doctor_with_profile_apple", &[Tool::LavapipeIcd]) else {
        return;
    };
    let r = doctor(&tools, &["--profile", "apple"]);
    assert_lines(
        &r,
        &[
            "venus-server doctor: profile apple",
            "host: page size 16384",
            "device 0: llvmpipe",
            "wsi VK_EXT_external_memory_dma_buf: emulated (the driver has it; profile forces)",
            "wsi VK_KHR_external_memory_fd: emulated (the driver has it; profile forces)",
            "wsi VK_EXT_queue_family_foreign: emulated (the driver has it; profile forces)",
            "wsi VK_KHR_external_semaphore_fd: emulated",
            "shared memory: posix, page size 16384",
        ],
    );
    assert!(r.contains("granule 16384"), "{r}");
    assert!(
        !r.contains(": native"),
        "the apple profile left a WSI extension native:\n{r}"
    );
    assert_portability(&r);
}

/// The program's command on lavapipe directly.
fn native(tools: &Tools, program: &str) -> Command {
    let mut c = Command::new(program);
    c.env("VK_DRIVER_FILES", tools.lavapipe_icd())
        .env_remove("VK_ICD_FILENAMES")
        .env_remove("VK_ADD_DRIVER_FILES")
        .env_remove("VK_INSTANCE_LAYERS")
        .env_remove("VK_LOADER_LAYERS_ENABLE")
        .env_remove("VN_PERF")
        .stdin(Stdio::null());
    c
}

/// Runs `program args` (through a fresh `--profile apple` server unless `native_run`) and
/// asserts it exited 0 and printed each `expect` line, and the server released everything.
fn run(tools: &Tools, native_run: bool, program: &str, args: &[&str], expect: &[&str]) -> Output {
    let server = (!native_run).then(|| Server::start(tools, &apple_options()));
    let mut c = match &server {
        Some(s) => s.venus_client_feedback(program),
        None => native(tools, program),
    };
    let child = c
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {program}: {e}"));
    let what = format!("{} {}", name(program), args.join(" "));
    let out = wait_output(child, TIMEOUT, &what);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<&&str> = expect
        .iter()
        .filter(|e| !stdout.lines().any(|l| l.starts_with(**e)))
        .collect();
    let log = server.as_ref().map(|s| s.log_text()).unwrap_or_default();
    assert!(
        out.status.success() && missing.is_empty(),
        "{what} failed ({}; missing {missing:?})\nstdout:\n{stdout}\nstderr:\n{}\nserver log:\n{log}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
    );
    eprintln!("{what} (native: {native_run}): {}", stdout.trim());
    if let Some(s) = server {
        check_server(s, &what);
    }
    out
}

/// The server ran the apple profile and released every host object of the context.
fn check_server(server: Server, what: &str) {
    let released = server
        .try_wait_line(RELEASE_TIMEOUT, |l| Released::parse(l).is_some())
        .and_then(|l| Released::parse(&l.text));
    let (log, _) = server.stop_with_stdout();
    assert!(
        log.lines().any(|l| l.contains("host profile")
            && l.contains("profile: Apple")
            && l.contains("page_size: 16384")
            && l.contains("shm_backing: Posix")
            && l.contains("force_emulated_wsi: true")),
        "{what}: no apple `host profile` line:\n{log}"
    );
    let r = released.unwrap_or_else(|| panic!("{what}: no `host objects released` line:\n{log}"));
    assert!(
        r.live == 0 && r.created == r.destroyed,
        "{what}: the server did not release every host object: {r:?}\n{log}"
    );
}

fn name(program: &str) -> &str {
    Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(program)
}

fn venus_tools(test: &str) -> Option<Tools> {
    require(test, &[Tool::LavapipeIcd, Tool::VenusIcd])
}

#[test]
fn apple_compute() {
    let Some(tools) = venus_tools("apple_compute") else {
        return;
    };
    let expect = ["saxpy OK n=16777216", "scan OK n=16777216"];
    run(&tools, false, COMPUTE, &["--reps", "1"], &expect);
}

#[test]
fn apple_render_matches_native() {
    let Some(tools) = venus_tools("apple_render_matches_native") else {
        return;
    };
    let dir = TempDir::new("render");
    let picture = |native_run: bool, file: &str| {
        let path = dir.0.join(file);
        let p = path.to_str().unwrap();
        run(
            &tools,
            native_run,
            RENDER,
            &[p, "--frames", "2"],
            &["render OK"],
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("reading {p}: {e}"))
    };
    let got = picture(false, "apple.rgba");
    let want = picture(true, "native.rgba");
    assert_eq!(got.len(), 256 * 256 * 4);
    let first = got.iter().zip(&want).position(|(a, b)| a != b);
    assert!(first.is_none(), "pictures differ first at byte {first:?}");
}

#[test]
fn apple_sync() {
    let Some(tools) = venus_tools("apple_sync") else {
        return;
    };
    for part in ["timeline", "threads", "events", "queries"] {
        run(&tools, false, SYNC, &[part], &[&format!("{part} OK")]);
    }
}

#[test]
fn apple_coherence() {
    let Some(tools) = venus_tools("apple_coherence") else {
        return;
    };
    run(&tools, false, COHERENCE, &["check"], &["coherence OK"]);
}

/// Stock vkcube (Mesa 25.0.7 client, software WSI) for 300 frames under `xvfb-run`.
#[test]
fn apple_vkcube_300_frames() {
    let test = "apple_vkcube_300_frames";
    let Some(tools) = venus_tools(test) else {
        return;
    };
    let have_x = ["xvfb-run", "vkcube"].iter().all(|t| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {t}"))
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !have_x {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v.is_empty()),
            "{test}: xvfb-run/vkcube missing [CI is set]"
        );
        eprintln!("{test}: SKIPPED: xvfb-run/vkcube not installed");
        return;
    }
    let server = Server::start(&tools, &apple_options());
    let mut c = server.venus_client_feedback("xvfb-run");
    c.args(["-a", "-s", "-screen 0 500x500x24", "vkcube", "--c", "300"])
        .env("MESA_VK_WSI_DEBUG", "sw")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = wait_output(c.spawn().unwrap(), TIMEOUT, "xvfb-run vkcube");
    assert!(
        out.status.success(),
        "vkcube failed: {}\nstderr:\n{}\nserver log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    server.wait_line("a clean disconnect", RELEASE_TIMEOUT, |l| {
        l.contains("client disconnected")
            && l.contains("client=vkcube")
            && l.contains("poisoned=false")
    });
    check_server(server, "vkcube");
}

/// Render under `--profile apple` with the server under `VK_LAYER_KHRONOS_validation` (above
/// the test layer when there is one, so that the layer validates a device that lists
/// `VK_KHR_portability_subset`: a device created without it enabled, or an instance that
/// enumerates a portability device without the flag, is an error there): no error or
/// warning from the host calls but those tolerated by name.
#[test]
fn apple_render_under_host_validation() {
    let test = "apple_render_under_host_validation";
    let Some(tools) = require(
        test,
        &[Tool::LavapipeIcd, Tool::VenusIcd, Tool::ValidationLayer],
    ) else {
        return;
    };
    let mut options = apple_options();
    options.validation = true;
    if let Some((_, name)) = test_layer() {
        // First listed is closest to the application: validation sees the layer's subset.
        for (k, v) in &mut options.env {
            if k == "VK_INSTANCE_LAYERS" {
                *v = format!("VK_LAYER_KHRONOS_validation:{name}");
            }
        }
    } else {
        eprintln!("{test}: portability part SKIPPED: VENUS_TESTLAYER_DIR is not set");
    }
    let server = Server::start(&tools, &options);
    let dir = TempDir::new("render");
    let path = dir.0.join("apple.rgba");
    let child = server
        .venus_client_feedback(RENDER)
        .args([path.to_str().unwrap(), "--frames", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, TIMEOUT, "venus-render");
    assert!(
        out.status.success(),
        "venus-render: {}\n{}",
        out.status,
        server.log_text()
    );
    server.wait_line("the context's end", RELEASE_TIMEOUT, |l| {
        Released::parse(l).is_some_and(|r| r.live == 0)
    });
    let (_, report) = server.stop_with_stdout();
    let findings = venus_testapps::validation::check(&report);
    assert!(findings.ran, "the validation layer did not run:\n{report}");
    assert!(
        findings.problems.is_empty(),
        "{} validation problem(s):\n{}",
        findings.problems.len(),
        venus_testapps::validation::summary(&findings.problems)
    );
    eprintln!(
        "{test}: {} message(s), {} tolerated, 0 problems",
        findings.messages, findings.tolerated
    );
}

/// `name = true|false` lines of `vulkaninfo`'s text output.
fn feature(report: &str, name: &str) -> Option<bool> {
    report.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == name).then(|| v.trim() == "true")
    })
}

/// What the client sees through `--profile apple`: with the test layer, every core feature the
/// doctor says the subset hides reads `false` in `vulkaninfo` through Venus (lavapipe has them
/// all); without it, they are all still `true` (nothing is hidden from a full implementation).
#[test]
fn apple_client_features_respect_the_portability_subset() {
    let test = "apple_client_features_respect_the_portability_subset";
    let Some(tools) = require(test, &[Tool::LavapipeIcd, Tool::VenusIcd, Tool::Vulkaninfo]) else {
        return;
    };
    let hidden: Vec<String> = doctor(&tools, &["--profile", "apple"])
        .lines()
        .find_map(|l| l.trim().strip_prefix("portability hides from clients: "))
        .filter(|h| *h != "none")
        .map(|h| h.split(", ").map(String::from).collect())
        .unwrap_or_default();
    let server = Server::start(&tools, &apple_options());
    let child = server
        .venus_client_feedback("vulkaninfo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, TIMEOUT, "vulkaninfo");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "vulkaninfo: {}", out.status);
    assert_eq!(
        test_layer().is_some(),
        !hidden.is_empty(),
        "hidden: {hidden:?}"
    );
    for name in [
        "fillModeNonSolid",
        "tessellationShader",
        "sampleRateShading",
    ] {
        let want = !hidden.iter().any(|h| h == name);
        assert_eq!(feature(&report, name), Some(want), "{name} through Venus");
    }
    eprintln!("{test}: hidden {hidden:?}");
    check_server(server, "vulkaninfo");
}
