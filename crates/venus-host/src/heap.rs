//! The C heap the host driver allocates from: giving its free memory back to the system.
//!
//! A context's device (lavapipe: LLVM's JIT, its pipeline state, command pools) allocates tens
//! of MiB through `malloc` on the context's own threads, so glibc spreads them over its
//! per-thread arenas. When the device is destroyed that memory is free, but glibc keeps free
//! chunks in the middle of an arena's heap and only returns the top of the main heap on its
//! own (`M_TRIM_THRESHOLD`); with many arenas, each holding some other context's freed
//! memory, the server's resident memory follows the high-water mark of every arena rather
//! than what is live (measured in `docs/soak.md`). [`trim`] asks glibc to release the free
//! pages of every arena (`malloc_trim(0)`: `MADV_DONTNEED` on whole free pages, the heap
//! tops cut back); the dispatch calls it once a context's host objects are gone.

/// Returns the C heap's free pages to the system; true if glibc released any memory.
/// A no-op (false) where the C library is not glibc.
pub fn trim() -> bool {
    imp::trim()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    pub fn trim() -> bool {
        // SAFETY: malloc_trim takes a pad size, only touches the allocator's own state under
        // its arena locks and is safe to call from any thread at any time.
        unsafe { libc::malloc_trim(0) != 0 }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub fn trim() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn trim_releases_freed_arena_memory() {
        // 64 MiB in 64 KiB blocks (below the mmap threshold: they live in the heap), freed
        // except the last one, which pins the heap's top so that only a trim gives it back.
        let blocks: Vec<Vec<u8>> = (0..1024).map(|_| vec![1u8; 64 << 10]).collect();
        let keep = vec![2u8; 64 << 10];
        drop(blocks);
        assert!(
            super::trim(),
            "malloc_trim released nothing after 64 MiB were freed"
        );
        assert_eq!(keep[0], 2);
    }
}
