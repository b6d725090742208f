//! `venus-server --config FILE --max-* --print-config`: the effective per-context limits
//! (defaults < file < flags), and clear errors for bad files and values (exit status 1, nothing
//! started). No Vulkan is needed: the limits are resolved before the driver is loaded.

use std::process::{Command, Output};

fn server(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_venus-server"))
        .args(args)
        .env("VENUS_LOG", "off")
        .output()
        .expect("running venus-server")
}

fn config_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("venus-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn print_config_shows_defaults_file_and_flags() {
    let out = server(&["--print-config"]);
    assert!(out.status.success());
    let defaults = String::from_utf8(out.stdout).unwrap();
    assert!(
        defaults.contains("max_device_memory = 8589934592\n"),
        "{defaults}"
    );
    assert!(defaults.contains("max_objects = 262144\n"), "{defaults}");

    let file = config_file(
        "ok.toml",
        "max_objects = 1000\nmax_device_memory = \"1G\"\n",
    );
    let out = server(&[
        "--config",
        file.to_str().unwrap(),
        "--max-objects",
        "50k",
        "--print-config",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("max_objects = 51200\n"),
        "the flag wins: {text}"
    );
    assert!(
        text.contains("max_device_memory = 1073741824\n"),
        "from the file: {text}"
    );
    assert!(text.contains("max_rings = 64\n"), "a default: {text}");
}

#[test]
fn bad_config_is_a_clear_error() {
    let file = config_file("bad.toml", "max_objcts = 5\n");
    let out = server(&["--config", file.to_str().unwrap(), "--print-config"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("venus-server: config file ") && err.contains("max_objcts"),
        "{err}"
    );
    let out = server(&["--max-shared-memory", "12X", "--print-config"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--max-shared-memory: max_shared_memory = \"12X\": unknown suffix"),
        "{err}"
    );
    let out = server(&["--config", "/nonexistent/venus.toml", "--print-config"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/venus.toml"));
}
