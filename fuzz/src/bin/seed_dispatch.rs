//! Writes the `dispatch_lavapipe` seed corpus from recordings (`venus-server --record`):
//! every recording's commands after its first `vkCreateDevice`, in windows
//! (`venus_protocol_fuzz::dispatch::corpus_inputs`), as `<OUT>/rec-<k>-<n>`; and copies the
//! first recording to PREFIX, the set-up the target replays.
//!
//! Usage: seed_dispatch OUT PREFIX RECORDING...
//! Deterministic and idempotent (files overwritten under the same names).

use std::path::PathBuf;

// Built by `cargo fuzz build` with the targets (sancov flags): link libFuzzer's callbacks.
use libfuzzer_sys as _;

use venus_protocol_fuzz::dispatch::{corpus_inputs, prefix_len};
use venus_renderer::record::read_recording;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [out, prefix, recordings @ ..] = args.as_slice() else {
        return Err("usage: seed_dispatch OUT PREFIX RECORDING...".into());
    };
    if recordings.is_empty() {
        return Err("seed_dispatch: no recording given".into());
    }
    std::fs::create_dir_all(out)?;
    let (mut files, mut bytes) = (0usize, 0usize);
    for (k, rec) in recordings.iter().enumerate() {
        let events = read_recording(rec)?;
        let cut = prefix_len(&events)
            .ok_or_else(|| format!("{}: no vkCreateDevice recorded", rec.display()))?;
        for (n, input) in corpus_inputs(&events, cut).iter().enumerate() {
            std::fs::write(out.join(format!("rec-{k}-{n}")), input)?;
            files += 1;
            bytes += input.len();
        }
    }
    if let Some(parent) = prefix.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(&recordings[0], prefix)?;
    println!(
        "seed_dispatch: {files} inputs ({bytes} bytes) from {} recording(s) in {}; prefix {}",
        recordings.len(),
        out.display(),
        prefix.display()
    );
    Ok(())
}
