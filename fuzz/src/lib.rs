//! The checks behind the fuzz targets (`fuzz_targets/`) and the seed-corpus writers
//! (`src/bin/seed.rs`, `src/bin/seed_dispatch.rs`), kept here so that both use the same
//! invariants. [`vtest`] is the `vtest_framing` target's harness, [`dispatch`] the
//! `dispatch_lavapipe` target's (decode + dispatch on lavapipe through the replay harness,
//! `venus_replay::harness`);
//! the rest of this file serves `decode_stream` and `decode_reply`:
//!
//! For every command (or reply) that decodes from the fuzzer's bytes:
//! 1. encoding it (#1) gives a multiple of 4 bytes;
//! 2. encoding #1 decodes again, to the same header, with no byte left over;
//! 3. encoding that value again (#2) gives exactly the bytes of encoding #1.
//!
//! Neither the bytes nor the value of encoding #1 are compared with the input's: decoding
//! normalises padding bytes, non-1 pointer markers and the forced NUL of `char[N]`/strings, and
//! the encoder drops the arrays the protocol says to ignore (`pQueueFamilyIndices` of
//! `VkBufferCreateInfo`, `VkImageCreateInfo` and `VkPhysicalDeviceImageDrmFormatModifierInfoEXT`
//! unless `sharingMode` is CONCURRENT, `pAttachments` of an imageless `VkFramebufferCreateInfo`:
//! `xtask/src/special.rs`) while the decoder keeps what the guest sent. So the first round trip
//! may legitimately change bytes and value; from then on the bytes must be a fixed point.
//!
//! Decoding must never panic, hang or allocate without bound; that is what the fuzzer checks
//! by just running these functions (libFuzzer's `-rss_limit_mb` and `-timeout` do the rest, and
//! [`CappedAlloc`] catches a single huge allocation, which `-malloc_limit_mb` only sees under a
//! sanitizer).

#![deny(unsafe_code)]

mod cap;
/// The `dispatch_lavapipe` harness (it lives in `venus-replay`, whose `--run-input`
/// reproduces a finding without libFuzzer).
pub use venus_replay::harness as dispatch;
pub mod vtest;
pub use cap::{CappedAlloc, MAX_ALLOCATION};

use std::fmt::Write as _;

use venus_protocol::{
    command_info, decode_command, decode_reply, encode_command, Arena, CommandType, Decoder,
    Encoder,
};

/// Hex of at most the first 512 bytes, for panic messages (libFuzzer saves the whole input as
/// the crash artifact anyway).
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len().min(512) * 2 + 32);
    for b in bytes.iter().take(512) {
        let _ = write!(s, "{b:02x}");
    }
    if bytes.len() > 512 {
        let _ = write!(s, "... ({} bytes)", bytes.len());
    }
    s
}

/// Shows as `vkCmdDraw (id 5)`: the command's name for panic messages (formatted only then).
struct Label(CommandType);

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (id {})",
            command_info(self.0 .0).map_or("?", |i| i.name),
            self.0 .0
        )
    }
}

/// Treats `data` as a command stream: decodes commands until the stream is empty or one does not
/// decode, checking the round-trip invariants (module docs) on each. Returns how many commands
/// decoded.
pub fn check_command_stream(data: &[u8]) -> usize {
    let arena = Arena::new();
    let mut d = Decoder::new(data, &arena);
    let mut e1 = Encoder::new();
    let mut e2 = Encoder::new();
    let mut count = 0;
    while !d.is_empty() {
        let start = d.position();
        let (header, cmd) = match decode_command(&mut d) {
            Ok(v) => v,
            Err(err) => {
                // The error's text is part of the API (the renderer logs it): it must not panic.
                let _ = err.to_string();
                break;
            }
        };
        let input = &data[start..d.position()];
        let name = Label(header.command_type);
        assert!(
            d.position() >= start + 8,
            "command at {start} decoded from fewer than 8 bytes"
        );
        count += 1;

        e1.clear();
        encode_command(&mut e1, &cmd, header.flags);
        let b1 = e1.as_bytes();
        assert_eq!(
            b1.len() % 4,
            0,
            "{name}: encoding #1 is {} bytes, not a multiple of 4",
            b1.len()
        );

        let arena1 = Arena::new();
        let mut d1 = Decoder::new(b1, &arena1);
        let (h1, c1) = decode_command(&mut d1).unwrap_or_else(|err| {
            panic!(
                "{name}: encoding #1 does not decode: {err}\ninput: {}\nenc#1: {}",
                hex(input),
                hex(b1)
            )
        });
        assert!(
            d1.is_empty(),
            "{name}: {} bytes left after decoding encoding #1\ninput: {}\nenc#1: {}",
            d1.remaining(),
            hex(input),
            hex(b1)
        );
        assert_eq!(h1, header, "header changed by the round trip");

        e2.clear();
        encode_command(&mut e2, &c1, h1.flags);
        assert!(
            b1 == e2.as_bytes(),
            "{name}: encoding #2 differs from encoding #1\ninput: {}\nenc#1: {}\nenc#2: {}",
            hex(input),
            hex(b1),
            hex(e2.as_bytes())
        );
    }
    count
}

/// Treats `data` as a sequence of replies (each one echoed command type and body), with the same
/// invariants as [`check_command_stream`]. Returns how many replies decoded.
pub fn check_reply_stream(data: &[u8]) -> usize {
    let arena = Arena::new();
    let mut d = Decoder::new(data, &arena);
    let mut e1 = Encoder::new();
    let mut e2 = Encoder::new();
    let mut count = 0;
    while !d.is_empty() {
        let start = d.position();
        let reply = match decode_reply(&mut d) {
            Ok(v) => v,
            Err(err) => {
                let _ = err.to_string();
                break;
            }
        };
        let input = &data[start..d.position()];
        assert!(
            d.position() >= start + 4,
            "reply at {start} decoded from fewer than 4 bytes"
        );
        count += 1;
        let name = Label(reply.command_type());

        e1.clear();
        reply.encode(&mut e1);
        let b1 = e1.as_bytes();
        assert_eq!(
            b1.len() % 4,
            0,
            "{name} reply: encoding #1 is {} bytes, not a multiple of 4",
            b1.len()
        );

        let arena1 = Arena::new();
        let mut d1 = Decoder::new(b1, &arena1);
        let r1 = decode_reply(&mut d1).unwrap_or_else(|err| {
            panic!(
                "{name} reply: encoding #1 does not decode: {err}\ninput: {}\nenc#1: {}",
                hex(input),
                hex(b1)
            )
        });
        assert!(
            d1.is_empty(),
            "{name} reply: {} bytes left after decoding encoding #1\ninput: {}\nenc#1: {}",
            d1.remaining(),
            hex(input),
            hex(b1)
        );

        e2.clear();
        r1.encode(&mut e2);
        assert!(
            b1 == e2.as_bytes(),
            "{name} reply: encoding #2 differs from encoding #1\ninput: {}\nenc#1: {}\nenc#2: {}",
            hex(input),
            hex(b1),
            hex(e2.as_bytes())
        );
    }
    count
}
