//! `cargo xtask codegen [--check]`: regenerate `crates/venus-protocol/src/generated/` from the
//! vendored registry (`protocol/`), or check that the committed files are what it produces.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const OUT_DIR: &str = "crates/venus-protocol/src/generated";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the repo")
        .to_path_buf()
}

fn codegen(check: bool) -> Result<(), String> {
    let root = repo_root();
    let inputs = xtask::Inputs::read(
        &root.join("protocol"),
        "ca1e9220-command-types.tsv",
        "ca1e9220-extensions.tsv",
    )?;
    let files = xtask::generate(&inputs)?;
    let out = root.join(OUT_DIR);
    if check {
        // Regenerate into a temporary directory, then compare with the committed tree.
        let tmp = std::env::temp_dir().join(format!("venus-codegen-check-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
        for (name, text) in &files {
            std::fs::write(tmp.join(name), text).map_err(|e| e.to_string())?;
        }
        let mut diffs = Vec::new();
        for (name, _) in &files {
            let fresh = std::fs::read(tmp.join(name)).map_err(|e| e.to_string())?;
            match std::fs::read(out.join(name)) {
                Ok(old) if old == fresh => {}
                Ok(_) => diffs.push(format!("{OUT_DIR}/{name} differs")),
                Err(_) => diffs.push(format!("{OUT_DIR}/{name} is missing")),
            }
        }
        let known: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        for entry in std::fs::read_dir(&out).map_err(|e| format!("{}: {e}", out.display()))? {
            let name = entry
                .map_err(|e| e.to_string())?
                .file_name()
                .to_string_lossy()
                .into_owned();
            if !known.contains(&name.as_str()) {
                diffs.push(format!("{OUT_DIR}/{name} is not generated"));
            }
        }
        let _ = std::fs::remove_dir_all(&tmp);
        if !diffs.is_empty() {
            return Err(format!(
                "generated code is stale (run `cargo xtask codegen`):\n  {}",
                diffs.join("\n  ")
            ));
        }
        println!("codegen check: {} files up to date", files.len());
    } else {
        std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
        for (name, text) in &files {
            std::fs::write(out.join(name), text).map_err(|e| e.to_string())?;
        }
        println!("codegen: wrote {} files to {OUT_DIR}", files.len());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["codegen"] => codegen(false),
        ["codegen", "--check"] => codegen(true),
        _ => Err("usage: cargo xtask codegen [--check]".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
