//! Writes the seed corpus of the fuzz targets:
//! - `<OUT>/decode_stream/cmd-<id>-<name>-<k>`: one random command of every id that has a wire
//!   encoding (`k` in `0..PER_ID`), plus `stream-<k>`: a few random commands back to back;
//! - `<OUT>/decode_reply/reply-<id>-<name>-<k>`: one random reply of every such id;
//! - `<OUT>/vtest_framing/session-<k>`: the first k messages of a small vtest session.
//!
//! (The `dispatch_lavapipe` corpus comes from recordings: `src/bin/seed_dispatch.rs`.)
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

/// One vtest message: header (length in dwords, command id) and payload dwords.
fn vtest_message(id: u32, dwords: &[u32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(8 + dwords.len() * 4);
    m.extend_from_slice(&(dwords.len() as u32).to_le_bytes());
    m.extend_from_slice(&id.to_le_bytes());
    for d in dwords {
        m.extend_from_slice(&d.to_le_bytes());
    }
    m
}

/// The messages of a minimal Mesa-like vtest session (ids and layouts of
/// `venus_server::vtest::protocol`); `vtest_framing/session-<k>` holds the first k.
fn vtest_session() -> Vec<Vec<u8>> {
    use venus_server::vtest::protocol::cmd;
    // SUBMIT_CMD2: a batch count and one batch-table entry (whatever the parser makes of it).
    let name = u32::from_le_bytes(*b"fuzz");
    vec![
        vtest_message(cmd::CREATE_RENDERER, &[name, 0]),
        vtest_message(cmd::PING_PROTOCOL_VERSION, &[]),
        vtest_message(cmd::PROTOCOL_VERSION, &[3]),
        vtest_message(cmd::GET_PARAM, &[1]),
        vtest_message(cmd::GET_CAPSET, &[4, 0]),
        vtest_message(cmd::CONTEXT_INIT, &[4]),
        vtest_message(cmd::RESOURCE_CREATE_BLOB, &[2, 1, 8192, 0, 0, 0]),
        vtest_message(cmd::SYNC_CREATE, &[0, 0]),
        vtest_message(cmd::SYNC_READ, &[1]),
        vtest_message(cmd::SUBMIT_CMD2, &[1, 8, 0, 0, 0, 0, 0, 0]),
        vtest_message(cmd::SYNC_UNREF, &[1]),
        vtest_message(cmd::RESOURCE_UNREF, &[1]),
    ]
}

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

    let vtest_dir = out.join("vtest_framing");
    std::fs::create_dir_all(&vtest_dir)?;
    let session = vtest_session();
    for k in 1..=session.len() {
        let input: Vec<u8> = session[..k].concat();
        write(vtest_dir.join(format!("session-{k:02}")), &input)?;
    }

    println!(
        "seed corpus: {commands} command inputs in {}, {replies} reply inputs in {} ({} ids, {bytes} bytes, largest {largest})",
        cmd_dir.display(),
        reply_dir.display(),
        ids.len()
    );
    Ok(())
}
