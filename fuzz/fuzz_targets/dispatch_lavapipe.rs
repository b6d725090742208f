//! The fuzzer's bytes as a Venus command stream executed by the real dispatch on lavapipe,
//! after a recorded prefix created the instance and device (see
//! `venus_protocol_fuzz::dispatch`; `scripts/fuzz.sh` makes the prefix).
#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use venus_protocol_fuzz::dispatch::{prefix_path, Harness};

#[global_allocator]
static ALLOC: venus_protocol_fuzz::CappedAlloc = venus_protocol_fuzz::CappedAlloc;

static HARNESS: Mutex<Option<Harness>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut h = HARNESS.lock().unwrap_or_else(|e| e.into_inner());
    let h = h.get_or_insert_with(|| {
        Harness::new(&prefix_path()).unwrap_or_else(|e| {
            panic!("dispatch_lavapipe: no prefix recording (scripts/fuzz.sh makes it): {e}")
        })
    });
    h.run(data);
});
