//! The raw mapping: the only code in venus-renderer that holds a pointer into shared memory.
//!
//! Everything here is small on purpose. The invariant this file maintains, and which every
//! `unsafe` block below relies on or re-establishes:
//!
//! > `Mapping { ptr, len }` owns a live `MAP_SHARED`, read-write mapping of `len` bytes at `ptr`.
//! > `len` is a non-zero multiple of the page size and `ptr` is page aligned. Nothing else
//! > unmaps, remaps or references that range; it is unmapped exactly once, in `Drop`.
//!
//! All data access goes through `Mapping::words`, which hands out `&[AtomicU32]` for 4-byte
//! aligned words inside the mapping ([`Mapping::word`] for one of them). The byte copies
//! ([`Mapping::copy_out`], [`Mapping::copy_in`]) are safe code built on top of it. Consequently **every access this
//! process makes to shared memory is a naturally aligned 4-byte atomic access**: two of our own
//! accesses can never partially overlap (no mixed-size atomics) and none is a plain load or
//! store (no data race in the Rust memory model), whatever offsets a hostile guest picks.

use std::ffi::c_void;
use std::io;
use std::os::fd::BorrowedFd;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU32, Ordering};

use rustix::mm::{self, MapFlags, ProtFlags};

/// Size of the unit of every access to shared memory (one `AtomicU32`).
pub(super) const WORD: usize = size_of::<AtomicU32>();

/// An owned `MAP_SHARED` read-write mapping of an fd, see the module docs for the invariant.
pub(super) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: `Mapping` is the unique owner of its address range (a process-wide resource, not tied
// to the creating thread). Through `&Mapping` the bytes can only be reached as `&AtomicU32`
// (`Mapping::words`), and `AtomicU32` is `Sync`, so sharing `&Mapping` between threads is exactly
// sharing atomics. Moving it to another thread and unmapping there (Drop) is fine: `munmap` has
// no thread affinity.
unsafe impl Send for Mapping {}
// SAFETY: see the `Send` impl above: the only shared-access path yields `&AtomicU32`.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps bytes `[0, len)` of `fd` read-write and shared, at an address aligned to `align`.
    ///
    /// `len` must be a non-zero multiple of `page_size`, at most `isize::MAX`, and `align` a
    /// power of two; the fd must be at least `len` bytes long and must not shrink while mapped
    /// (the platform layer makes sure the client cannot shrink it).
    pub(super) fn new(
        fd: BorrowedFd<'_>,
        len: usize,
        align: usize,
        page_size: usize,
    ) -> io::Result<Self> {
        if len == 0
            || len > isize::MAX as usize
            || !page_size.is_power_of_two()
            || len & (page_size - 1) != 0
            || !align.is_power_of_two()
        {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        let rw = ProtFlags::READ | ProtFlags::WRITE;
        let addr = if align <= page_size {
            // SAFETY: a null hint without MAP_FIXED lets the kernel choose an unused range, so no
            // existing memory (and no Rust reference) is affected.
            unsafe { mm::mmap(ptr::null_mut(), len, rw, MapFlags::SHARED, fd, 0) }?
        } else {
            Self::map_over_aligned(fd, len, align, page_size)?
        };
        // mmap never returns null on success with a null hint; treat it as an error anyway.
        let ptr = NonNull::new(addr.cast::<u8>())
            .ok_or_else(|| io::Error::other("mmap returned a null address"))?;
        Ok(Self { ptr, len })
    }

    /// Maps `fd` at an address aligned to `align > page_size`: reserve `len + align - page_size`
    /// bytes of inaccessible address space, map the fd with `MAP_FIXED` at the first aligned
    /// address inside the reservation, then give back the unused head and tail.
    fn map_over_aligned(
        fd: BorrowedFd<'_>,
        len: usize,
        align: usize,
        page_size: usize,
    ) -> io::Result<*mut c_void> {
        let slack = align - page_size; // Both powers of two and align > page_size.
        let reserve_len = len.checked_add(slack).ok_or(io::ErrorKind::OutOfMemory)?;
        // SAFETY: null hint without MAP_FIXED: the kernel picks an unused range; PROT_NONE
        // private anonymous memory is never accessed by anyone.
        let reserve = unsafe {
            mm::mmap_anonymous(
                ptr::null_mut(),
                reserve_len,
                ProtFlags::empty(),
                MapFlags::PRIVATE,
            )
        }?;
        // `reserve` is page aligned, so `head <= align - page_size = slack`.
        let head = (reserve as usize).wrapping_neg() & (align - 1);
        let tail = slack - head;
        let target = reserve.cast::<u8>().wrapping_add(head).cast::<c_void>();
        let rw = ProtFlags::READ | ProtFlags::WRITE;
        let flags = MapFlags::SHARED | MapFlags::FIXED;
        // SAFETY: `[target, target + len)` lies inside our own fresh PROT_NONE reservation
        // (`head + len + tail == reserve_len`), which nothing references; MAP_FIXED atomically
        // replaces those pages with the fd mapping.
        if let Err(e) = unsafe { mm::mmap(target, len, rw, flags, fd, 0) } {
            // SAFETY: unmaps exactly the reservation made above; nothing references it.
            let _ = unsafe { mm::munmap(reserve, reserve_len) };
            return Err(e.into());
        }
        if head > 0 {
            // SAFETY: `[reserve, reserve + head)` is the unused PROT_NONE head of our own
            // reservation; nothing references it.
            if let Err(e) = unsafe { mm::munmap(reserve, head) } {
                tracing::warn!(error = %e, head, "shm: could not trim aligned reservation head");
            }
        }
        if tail > 0 {
            let tail_start = target.cast::<u8>().wrapping_add(len).cast::<c_void>();
            // SAFETY: `[target + len, target + len + tail)` is the unused PROT_NONE tail of our
            // own reservation; nothing references it.
            if let Err(e) = unsafe { mm::munmap(tail_start, tail) } {
                tracing::warn!(error = %e, tail, "shm: could not trim aligned reservation tail");
            }
        }
        Ok(target)
    }

    /// Start of the mapping (page aligned, and aligned as requested in [`Mapping::new`]).
    pub(super) fn as_ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// Length of the mapping in bytes.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The 4-byte word at byte `offset`, or `None` unless `offset` is 4-byte aligned and
    /// `offset + 4 <= len`.
    pub(super) fn word(&self, offset: usize) -> Option<&AtomicU32> {
        self.words(offset, 1)?.first()
    }

    /// The `count` 4-byte words starting at byte `offset`, or `None` unless `offset` is 4-byte
    /// aligned and `offset + 4 * count <= len`. This is the single point through which shared
    /// bytes are accessed.
    fn words(&self, offset: usize, count: usize) -> Option<&[AtomicU32]> {
        let end = count.checked_mul(WORD)?.checked_add(offset)?;
        if offset & (WORD - 1) != 0 || end > self.len {
            return None;
        }
        let p = self.ptr.as_ptr().wrapping_add(offset).cast::<AtomicU32>();
        if !p.is_aligned() {
            return None; // Unreachable: `ptr` is page aligned. Kept so the check is local.
        }
        // SAFETY: `slice::from_raw_parts` needs a valid, aligned, initialised range of at most
        // `isize::MAX` bytes that nothing mutates except through `UnsafeCell` while borrowed:
        // - `p` is non-null and aligned for `AtomicU32` (checked just above); `[offset, end)`
        //   lies inside our live read-write mapping (checked above; `len <= isize::MAX` is
        //   checked in `new`), so it is valid for reads and writes for as long as `self` is borrowed:
        //   the mapping is only unmapped in `Drop`, which cannot run while the returned slice
        //   (tied to `&self`) exists. Mapped file pages are initialised memory and every bit
        //   pattern is a valid `AtomicU32`.
        // - Aliasing: `AtomicU32` is an `UnsafeCell`, so shared references to it permit
        //   concurrent mutation, by our threads and by the client; this module never creates
        //   `&u32`/`&[u8]`/`&mut` to shared bytes.
        // - Memory model: every access this process makes to the mapping goes through this
        //   function, i.e. is an aligned 4-byte atomic access, so our accesses never race
        //   non-atomically and never partially overlap (no mixed-size atomics). The client
        //   process is outside our abstract machine: its writes show up as arbitrary 4-byte
        //   values, and every bit pattern is a valid `u32`.
        Some(unsafe { std::slice::from_raw_parts(p, count) })
    }

    /// Copies `dst.len()` bytes starting at byte `offset` into `dst` (private memory), reading
    /// each shared byte exactly once. `None` if the range is not inside the mapping.
    pub(super) fn copy_out(&self, offset: usize, dst: &mut [u8]) -> Option<()> {
        if offset.checked_add(dst.len())? > self.len {
            return None;
        }
        if dst.is_empty() {
            return Some(());
        }
        let lead = offset & (WORD - 1);
        // Whole words covering the range; they stay inside the mapping as `len % 4 == 0`.
        let count = (lead + dst.len()).div_ceil(WORD);
        let words = self.words(offset - lead, count)?;
        let mut next = 0; // Index of the next word to read.
        let mut dst = dst;
        if lead != 0 {
            let bytes = words.first()?.load(Ordering::Relaxed).to_ne_bytes();
            let n = (WORD - lead).min(dst.len());
            let (head, rest) = dst.split_at_mut(n);
            head.copy_from_slice(bytes.get(lead..lead + n)?);
            dst = rest;
            next = 1;
        }
        let whole = dst.len() / WORD;
        let (body, tail) = dst.split_at_mut(whole * WORD);
        // Zipping two exact-size slice iterators by value compiles to a tight counted loop.
        for (chunk, word) in body
            .chunks_exact_mut(WORD)
            .zip(words.get(next..next + whole)?)
        {
            chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
        }
        if !tail.is_empty() {
            let bytes = words
                .get(next + whole)?
                .load(Ordering::Relaxed)
                .to_ne_bytes();
            tail.copy_from_slice(bytes.get(..tail.len())?);
        }
        Some(())
    }

    /// Copies `src` into shared memory at byte `offset`. Bytes outside
    /// `[offset, offset + src.len())` are never modified, even when they share a word with the
    /// range (partial words are merged with atomic AND + OR, which is wait-free whatever the
    /// other side does). `None` if the range is not inside the mapping.
    pub(super) fn copy_in(&self, offset: usize, src: &[u8]) -> Option<()> {
        if offset.checked_add(src.len())? > self.len {
            return None;
        }
        if src.is_empty() {
            return Some(());
        }
        let lead = offset & (WORD - 1);
        let count = (lead + src.len()).div_ceil(WORD);
        let words = self.words(offset - lead, count)?;
        let mut next = 0; // Index of the next word to write.
        let mut src = src;
        if lead != 0 {
            let n = (WORD - lead).min(src.len());
            let (head, rest) = src.split_at(n);
            store_partial(words.first()?, lead, head)?;
            src = rest;
            next = 1;
        }
        let whole = src.len() / WORD;
        let (body, tail) = src.split_at(whole * WORD);
        for (chunk, word) in body.chunks_exact(WORD).zip(words.get(next..next + whole)?) {
            let mut bytes = [0u8; WORD];
            bytes.copy_from_slice(chunk);
            word.store(u32::from_ne_bytes(bytes), Ordering::Relaxed);
        }
        if !tail.is_empty() {
            store_partial(words.get(next + whole)?, 0, tail)?;
        }
        Some(())
    }
}

/// Stores `bytes` at byte `start` of `word`, leaving the word's other bytes alone.
fn store_partial(word: &AtomicU32, start: usize, bytes: &[u8]) -> Option<()> {
    let mut mask = [0u8; WORD];
    let mut value = [0u8; WORD];
    let range = start..start.checked_add(bytes.len())?;
    mask.get_mut(range.clone())?.fill(0xff);
    value.get_mut(range)?.copy_from_slice(bytes);
    let (mask, value) = (u32::from_ne_bytes(mask), u32::from_ne_bytes(value));
    word.fetch_and(!mask, Ordering::Relaxed);
    word.fetch_or(value, Ordering::Relaxed);
    Some(())
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `[ptr, ptr + len)` is the mapping this value owns (module invariant); it is
        // unmapped exactly once, here. No reference into it outlives `self`: `word` ties every
        // `&AtomicU32` to a borrow of `self`, and `Drop` runs only when no borrow remains.
        if let Err(e) = unsafe { mm::munmap(self.ptr.as_ptr().cast(), self.len) } {
            tracing::warn!(error = %e, len = self.len, "shm: munmap failed");
        }
    }
}
