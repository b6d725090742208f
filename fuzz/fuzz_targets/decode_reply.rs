//! The fuzzer's bytes as replies: `decode_reply` until the bytes are used up or a reply does not
//! decode; every decoded reply must survive encode -> decode -> encode with the second encoding
//! byte-identical to the first (see `venus_protocol_fuzz` for the checks).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: venus_protocol_fuzz::CappedAlloc = venus_protocol_fuzz::CappedAlloc;

fuzz_target!(|data: &[u8]| {
    venus_protocol_fuzz::check_reply_stream(data);
});
