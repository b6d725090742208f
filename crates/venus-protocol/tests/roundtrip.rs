//! Walks the protocol's command table (protocol/derived/70991d4c-command-types.tsv) and proves,
//! for every one of the 345 ids (0-345, 195 unused), that requests and replies with randomized arguments survive
//! encode -> decode -> encode byte for byte; that commands without a wire encoding and ids
//! outside the table are rejected as values; and that every truncation of a valid command is a
//! decode error, never a panic.

use venus_protocol::generated::random::{random_command, random_reply};
use venus_protocol::random::Gen;
use venus_protocol::{
    command_info, decode_command, decode_reply, encode_command, Arena, Decoder, Encoder, ErrorKind,
};

const SEEDS_PER_COMMAND: u64 = 48;

struct Row {
    id: u32,
    name: String,
    aliases: Vec<String>,
}

fn table() -> Vec<Row> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../protocol/derived/70991d4c-command-types.tsv"
    );
    let text = std::fs::read_to_string(path).expect("command table");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Row {
                id: f[0].parse().unwrap(),
                name: f[1].to_string(),
                aliases: f[2]
                    .split(',')
                    .filter(|a| !a.is_empty())
                    .map(str::to_string)
                    .collect(),
            }
        })
        .collect()
}

#[test]
fn table_matches_generated_command_list() {
    let rows = table();
    assert_eq!(
        rows.len(),
        345,
        "protocol level git-70991d4c has 345 command types"
    );
    for r in &rows {
        let info =
            command_info(r.id as i32).unwrap_or_else(|| panic!("id {} ({}) missing", r.id, r.name));
        assert_eq!(info.name, r.name);
        assert_eq!(
            info.aliases,
            r.aliases.iter().map(String::as_str).collect::<Vec<_>>()
        );
    }
    let known = (0..=400).filter(|&id| command_info(id).is_some()).count();
    assert_eq!(known, 345, "no id outside the table is known");
}

#[test]
fn every_command_roundtrips_requests_and_replies() {
    let mut encodable = 0;
    let mut arena = Arena::new();
    let mut bytes_seen = 0usize;
    for r in table() {
        let info = command_info(r.id as i32).unwrap();
        if info.encoding.is_err() {
            continue;
        }
        encodable += 1;
        for seed in 0..SEEDS_PER_COMMAND {
            arena.reset();
            let mut g = Gen::new(seed.wrapping_mul(0x9E37) ^ u64::from(r.id) << 32, &arena);
            // Request.
            let cmd = random_command(&mut g, r.id).expect("encodable command has a generator");
            let flags = (seed & 1) as u32;
            let mut e1 = Encoder::new();
            encode_command(&mut e1, &cmd, flags);
            assert_eq!(e1.len() % 4, 0, "{}: encoding not a multiple of 4", r.name);
            let decode_arena = Arena::new();
            let mut d = Decoder::new(e1.as_bytes(), &decode_arena);
            let (header, decoded) = decode_command(&mut d).unwrap_or_else(|err| {
                panic!("{} seed {seed}: request does not decode: {err}", r.name)
            });
            assert_eq!(header.command_type.0, r.id as i32);
            assert_eq!(header.flags, flags);
            assert!(
                d.is_empty(),
                "{} seed {seed}: {} bytes left after decode",
                r.name,
                d.remaining()
            );
            let mut e2 = Encoder::new();
            encode_command(&mut e2, &decoded, header.flags);
            assert_eq!(
                e1.as_bytes(),
                e2.as_bytes(),
                "{} seed {seed}: request re-encoding differs",
                r.name
            );
            bytes_seen += e1.len();

            // Reply.
            let reply = random_reply(&mut g, r.id).expect("reply generator");
            let mut e1 = Encoder::new();
            reply.encode(&mut e1);
            let decode_arena = Arena::new();
            let mut d = Decoder::new(e1.as_bytes(), &decode_arena);
            let decoded = decode_reply(&mut d).unwrap_or_else(|err| {
                panic!("{} seed {seed}: reply does not decode: {err}", r.name)
            });
            assert!(
                d.is_empty(),
                "{} seed {seed}: reply has trailing bytes",
                r.name
            );
            let mut e2 = Encoder::new();
            decoded.encode(&mut e2);
            assert_eq!(
                e1.as_bytes(),
                e2.as_bytes(),
                "{} seed {seed}: reply re-encoding differs",
                r.name
            );
        }
    }
    assert_eq!(
        encodable, 321,
        "345 ids minus the 24 without a wire encoding"
    );
    assert!(
        bytes_seen > 1 << 20,
        "random arguments should not be trivially small ({bytes_seen} bytes)"
    );
}

#[test]
fn commands_without_encoding_are_rejected_by_name() {
    let mut rejected = Vec::new();
    for r in table() {
        let info = command_info(r.id as i32).unwrap();
        if let Err(why) = info.encoding {
            assert!(!why.is_empty());
            let mut bytes = (r.id as i32).to_le_bytes().to_vec();
            bytes.extend([0u8; 4]);
            bytes.extend([0u8; 64]);
            let arena = Arena::new();
            let err = decode_command(&mut Decoder::new(&bytes, &arena)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NoWireEncoding { id: r.id as i32 });
            assert!(err.to_string().contains(&r.name), "{err}");
            rejected.push(r.name);
        }
    }
    // The 11 of git-ca1e9220 plus 13 of the newer ids (special::NO_ENCODING).
    assert_eq!(rejected.len(), 24, "{rejected:?}");
}

#[test]
fn unknown_ids_are_errors() {
    // 195 is the one unused id; 346 (vkCmdEndRendering2KHR) is beyond git-70991d4c.
    for id in [-1i32, 195, 346, 347, 1000, i32::MAX, i32::MIN] {
        let mut bytes = id.to_le_bytes().to_vec();
        bytes.extend([0u8; 4]);
        let arena = Arena::new();
        let err = decode_command(&mut Decoder::new(&bytes, &arena)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownCommand { id }, "id {id}");
    }
}

#[test]
fn every_truncation_is_an_error() {
    let mut arena = Arena::new();
    for r in table() {
        if command_info(r.id as i32).unwrap().encoding.is_err() {
            continue;
        }
        for seed in 0..4u64 {
            arena.reset();
            let mut g = Gen::new(seed ^ 0xABCD_0000 ^ u64::from(r.id), &arena);
            let cmd = random_command(&mut g, r.id).unwrap();
            let mut e = Encoder::new();
            encode_command(&mut e, &cmd, 0);
            let bytes = e.as_bytes();
            for cut in (0..bytes.len()).step_by(4) {
                let decode_arena = Arena::new();
                let res = decode_command(&mut Decoder::new(&bytes[..cut], &decode_arena));
                assert!(
                    res.is_err(),
                    "{} seed {seed}: prefix of {cut}/{} bytes decoded",
                    r.name,
                    bytes.len()
                );
            }
        }
    }
}
