//! `cargo xtask codegen [--check]`: regenerate the generated code (`crates/venus-protocol/src/generated/`,
//! `crates/venus-host/src/generated/`) from the vendored registry (`protocol/`), or check that the
//! committed files are exactly what the generator produces. Both first check the inputs against
//! their sha256 pin (`protocol/xml/SHA256SUMS`, [`xtask::pin`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the repo")
        .to_path_buf()
}

fn dir_of(key: &str) -> &'static str {
    xtask::OUTPUT_DIRS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, d)| *d)
        .expect("known output key")
}

fn codegen(check: bool) -> Result<(), String> {
    let root = repo_root();
    xtask::pin::verify(&root.join("protocol/xml"), "protocol/xml")?;
    let inputs = xtask::Inputs::read(
        &root.join("protocol"),
        "70991d4c-command-types.tsv",
        "70991d4c-extensions.tsv",
    )?;
    let files = xtask::generate(&inputs)?;
    if check {
        // Regenerate into a temporary directory, then compare with the committed trees.
        let tmp = std::env::temp_dir().join(format!("venus-codegen-check-{}", std::process::id()));
        let mut diffs = Vec::new();
        for (key, name, text) in &files {
            let dir = tmp.join(key);
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            std::fs::write(dir.join(name), text).map_err(|e| e.to_string())?;
        }
        for (key, name, _) in &files {
            let fresh = std::fs::read(tmp.join(key).join(name)).map_err(|e| e.to_string())?;
            let path = format!("{}/{name}", dir_of(key));
            match std::fs::read(root.join(&path)) {
                Ok(old) if old == fresh => {}
                Ok(_) => diffs.push(format!("{path} differs")),
                Err(_) => diffs.push(format!("{path} is missing")),
            }
        }
        for (key, dir) in xtask::OUTPUT_DIRS {
            let known: Vec<&str> = files
                .iter()
                .filter(|f| f.0 == key)
                .map(|f| f.1.as_str())
                .collect();
            for entry in std::fs::read_dir(root.join(dir)).map_err(|e| format!("{dir}: {e}"))? {
                let name = entry
                    .map_err(|e| e.to_string())?
                    .file_name()
                    .to_string_lossy()
                    .into_owned();
                if !known.contains(&name.as_str()) {
                    diffs.push(format!("{dir}/{name} is not generated"));
                }
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
        for (key, name, text) in &files {
            let dir = root.join(dir_of(key));
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            std::fs::write(dir.join(name), text).map_err(|e| e.to_string())?;
        }
        println!("codegen: wrote {} files", files.len());
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
