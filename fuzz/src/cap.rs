//! A global allocator that aborts on any single allocation larger than [`MAX_ALLOCATION`].
//!
//! The fuzz targets run without a sanitizer (see `scripts/fuzz.sh`), and then libFuzzer's
//! `-malloc_limit_mb` does nothing (it needs the sanitizer's malloc hooks) while `-rss_limit_mb`
//! only sees memory that is touched: a decoder that reserved gigabytes on a count from the input
//! would go unnoticed. The decoder charges everything to an [`Arena`](venus_protocol::Arena)
//! capped at 256 MiB (bumpalo may round a chunk up to twice that), so one allocation above 1 GiB
//! is a bug: this prints its size and aborts, which libFuzzer reports as a crash with the input.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;

/// Largest single allocation allowed (4 times the decoder's default arena limit).
pub const MAX_ALLOCATION: usize = 1 << 30;

/// [`System`], but aborting on allocations larger than [`MAX_ALLOCATION`].
pub struct CappedAlloc;

#[cold]
fn too_big(size: usize) -> ! {
    // No allocation here: a fixed message and the size written digit by digit.
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = size;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(b"\n==venus-fuzz== single allocation of ");
    let _ = err.write_all(&digits[i..]);
    let _ = err.write_all(b" bytes exceeds MAX_ALLOCATION (1 GiB): aborting\n");
    std::process::abort()
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged (so `System`'s
// contract is the one upheld); the only addition is an abort before an oversized request.
unsafe impl GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOCATION {
            too_big(layout.size());
        }
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOCATION {
            too_big(layout.size());
        }
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > MAX_ALLOCATION {
            too_big(new_size);
        }
        // SAFETY: `ptr` came from `System` with `layout`; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
