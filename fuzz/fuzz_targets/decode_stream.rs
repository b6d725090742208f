//! The fuzzer's bytes as a Venus command stream: `decode_command` until the stream is empty or a
//! command does not decode; every decoded command must survive encode -> decode -> encode with
//! the second encoding byte-identical to the first (see `venus_protocol_fuzz` for the checks).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: venus_protocol_fuzz::CappedAlloc = venus_protocol_fuzz::CappedAlloc;

fuzz_target!(|data: &[u8]| {
    venus_protocol_fuzz::check_command_stream(data);
});
