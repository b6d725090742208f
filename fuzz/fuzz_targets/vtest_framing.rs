//! The fuzzer's bytes as a client's vtest byte stream, served by the real connection state
//! machine over the stub backend (see `venus_protocol_fuzz::vtest`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: venus_protocol_fuzz::CappedAlloc = venus_protocol_fuzz::CappedAlloc;

fuzz_target!(|data: &[u8]| {
    venus_protocol_fuzz::vtest::serve_bytes(data);
});
