//! Writes the seed corpus of the fuzz targets:
//! - `<OUT>/decode_stream/cmd-<id>-<name>-<k>`: one random command of every id that has a wire
//!   encoding (`k` in `0..PER_ID`), plus `stream-<k>`: a few random commands back to back;
//! - `<OUT>/decode_reply/reply-<id>-<name>-<k>`: one random reply of every such id.
//!
//! Usage: seed [OUT] [PER_ID]   (defaults: the `corpus` folder beside this crate's Cargo.toml, 4)
//!
//! Deterministic (fixed seeds) and idempotent: files are overwritten under the same names, and
//! whatever else is in the folders (inputs that libFuzzer added) is left alone. Every seed is run
//! through the targets' checks first, so a seed that fails names its command here.

use std::path::PathBuf;

// `scripts/fuzz.sh` builds this binary with the targets (`cargo fuzz build`: one build, the same
// sancov RUSTFLAGS), so it must link libFuzzer for the coverage callbacks; this binary's own
// `main` wins over libFuzzer's.
use libfuzzer_sys as _;

use venus_protocol::generated::random::{random_command, random_reply};
use venus_protocol::random::Gen;
use venus_protocol::{command_info, encode_command, Arena, Encoder};
use venus_protocol_fuzz::{check_command_stream, check_reply_stream};

/// Command ids at protocol level git-ca1e9220.
const MAX_ID: u32 = 282;
/// Multi-command streams written to `decode_stream/`.
const STREAMS: u64 = 32;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/corpus")));
    let per_id: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(4);
    let cmd_dir = out.join("decode_stream");
    let reply_dir = out.join("decode_reply");
    std::fs::create_dir_all(&cmd_dir)?;
    std::fs::create_dir_all(&reply_dir)?;

    let ids: Vec<u32> = (0..=MAX_ID)
        .filter(|&id| command_info(id as i32).is_some_and(|i| i.encoding.is_ok()))
        .collect();
    let mut arena = Arena::new();
    let (mut commands, mut replies, mut bytes, mut largest) = (0usize, 0usize, 0usize, 0usize);
    let mut write = |path: PathBuf, data: &[u8]| -> std::io::Result<()> {
        bytes += data.len();
        largest = largest.max(data.len());
        std::fs::write(path, data)
    };

    for &id in &ids {
        let name = command_info(id as i32).map_or("?", |i| i.name);
        for k in 0..per_id {
            arena.reset();
            let mut g = Gen::new(0xF0_22ED_0000_0000 ^ (u64::from(id) << 16) ^ k, &arena);
            let cmd = random_command(&mut g, id)
                .ok_or_else(|| format!("no command generator for id {id}"))?;
            let mut e = Encoder::new();
            encode_command(&mut e, &cmd, (k & 1) as u32);
            assert_eq!(
                check_command_stream(e.as_bytes()),
                1,
                "{name}: seed {k} does not decode as one command"
            );
            write(
                cmd_dir.join(format!("cmd-{id:03}-{name}-{k}")),
                e.as_bytes(),
            )?;
            commands += 1;

            let reply = random_reply(&mut g, id)
                .ok_or_else(|| format!("no reply generator for id {id}"))?;
            let mut e = Encoder::new();
            reply.encode(&mut e);
            assert_eq!(
                check_reply_stream(e.as_bytes()),
                1,
                "{name}: reply seed {k} does not decode as one reply"
            );
            write(
                reply_dir.join(format!("reply-{id:03}-{name}-{k}")),
                e.as_bytes(),
            )?;
            replies += 1;
        }
    }

    for k in 0..STREAMS {
        arena.reset();
        let mut g = Gen::new(0x5EED_57EA_0000_0000 ^ k, &arena);
        let n = 2 + g.below(5);
        let mut e = Encoder::new();
        for _ in 0..n {
            let id = ids[g.below(ids.len())];
            let cmd = random_command(&mut g, id)
                .ok_or_else(|| format!("no command generator for id {id}"))?;
            let flags = g.below(2) as u32;
            encode_command(&mut e, &cmd, flags);
        }
        assert_eq!(
            check_command_stream(e.as_bytes()),
            n,
            "stream seed {k} does not decode as {n} commands"
        );
        write(cmd_dir.join(format!("stream-{k:02}")), e.as_bytes())?;
        commands += 1;
    }

    println!(
        "seed corpus: {commands} command inputs in {}, {replies} reply inputs in {} ({} ids, {bytes} bytes, largest {largest})",
        cmd_dir.display(),
        reply_dir.display(),
        ids.len()
    );
    Ok(())
}
