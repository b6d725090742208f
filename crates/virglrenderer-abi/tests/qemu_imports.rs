//! Every `virgl_*` symbol Debian's QEMU imports from `libvirglrenderer.so.1` (the lists in
//! `tests/qemu-imports/`, taken with `nm -D --undefined-only` from QEMU's virtio-gpu-gl
//! module by `scripts/qemu/check-qemu-imports.sh`) is exported by our cdylib, which carries
//! the soname `libvirglrenderer.so.1`.
//!
//! Needs `nm` and `readelf` (binutils): missing, the test fails in CI and skips elsewhere.

#![cfg(target_os = "linux")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn cdylib() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", "virglrenderer-abi", "--lib", "--target-dir"])
        .arg(profile_dir.parent().expect("target dir"));
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let out = cmd.output().expect("running cargo build");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    profile_dir.join("libvirglrenderer.so")
}

/// Output of `tool args... lib`; `None` when the tool is missing (outside CI).
fn tool_output(tool: &str, args: &[&str], lib: &Path) -> Option<String> {
    match Command::new(tool).args(args).arg(lib).output() {
        Ok(out) => {
            assert!(
                out.status.success(),
                "{tool} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(String::from_utf8_lossy(&out.stdout).into_owned())
        }
        Err(e) => {
            let ci = venus_testkit::is_ci_value(std::env::var_os("CI").as_deref());
            assert!(
                !ci,
                "qemu_imports: {tool} not runnable ({e}); CI is set: install binutils"
            );
            eprintln!("qemu_imports: SKIPPED: {tool} not runnable ({e})");
            None
        }
    }
}

fn imports(file: &str) -> BTreeSet<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/qemu-imports")
        .join(file);
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
        .collect()
}

#[test]
fn every_symbol_qemu_imports_is_exported() {
    let lib = cdylib();
    let Some(nm) = tool_output("nm", &["-D", "--defined-only"], &lib) else {
        return;
    };
    let exported: BTreeSet<String> = nm
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_addr, kind, name) = (f.next()?, f.next()?, f.next()?);
            (kind == "T" && name.starts_with("virgl_")).then(|| name.to_owned())
        })
        .collect();
    for file in ["qemu-10.0-trixie.txt", "qemu-11.1-sid.txt"] {
        let wanted = imports(file);
        assert!(wanted.len() >= 28, "{file}: {} symbols", wanted.len());
        let missing: Vec<_> = wanted.difference(&exported).collect();
        assert!(missing.is_empty(), "{file}: not exported: {missing:?}");
    }
    let Some(dynamic) = tool_output("readelf", &["-d"], &lib) else {
        return;
    };
    assert!(
        dynamic.contains("Library soname: [libvirglrenderer.so.1]"),
        "{dynamic}"
    );
}
