//! Tests of `venus_renderer::shm`, including a second, independent mapping of the handed-out fd
//! playing the client ("peer"), the way Mesa's vtest backend maps blobs.

use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rustix::mm::{self, MapFlags, ProtFlags};
use venus_renderer::shm::{Region, SharedMemory, ShmAtomicU32, ShmBacking, ShmConfig, ShmError};

fn page() -> u64 {
    rustix::param::page_size() as u64
}

/// The client's view: `mmap(NULL, len, RW, MAP_SHARED, fd, 0)` of a dup of our fd.
struct Peer {
    ptr: NonNull<u8>,
    len: usize,
    _fd: OwnedFd,
}

// SAFETY: the peer mapping is only accessed through atomics and raw-pointer copies.
unsafe impl Send for Peer {}
// SAFETY: as above.
unsafe impl Sync for Peer {}

impl Peer {
    fn map(shm: &SharedMemory) -> Peer {
        let fd = shm.try_clone_fd().expect("dup");
        let len = shm.len().max(1) as usize;
        let rw = ProtFlags::READ | ProtFlags::WRITE;
        // SAFETY: null hint, the kernel picks a fresh range.
        let p = unsafe { mm::mmap(std::ptr::null_mut(), len, rw, MapFlags::SHARED, &fd, 0) }
            .expect("peer mmap");
        Peer {
            ptr: NonNull::new(p.cast()).unwrap(),
            len,
            _fd: fd,
        }
    }

    fn atomic(&self, offset: usize) -> &AtomicU32 {
        assert!(offset & 3 == 0 && offset + 4 <= self.len);
        // SAFETY: aligned, in bounds of the live mapping, which outlives the borrow of self.
        unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().add(offset).cast()) }
    }

    fn write(&self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= self.len);
        // SAFETY: in bounds; the host side does not access these bytes concurrently in the
        // tests that use this.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.ptr.as_ptr().add(offset),
                bytes.len(),
            )
        }
    }

    fn read(&self, offset: usize, len: usize) -> Vec<u8> {
        assert!(offset + len <= self.len);
        let mut v = vec![0; len];
        // SAFETY: in bounds; see `write`.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(offset), v.as_mut_ptr(), len) }
        v
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`; no borrows remain.
        unsafe { mm::munmap(self.ptr.as_ptr().cast(), self.len) }.expect("munmap");
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn is_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<SharedMemory>();
    check::<Arc<SharedMemory>>();
    check::<Region>();
    check::<ShmAtomicU32<'static>>();
}

#[test]
fn size_rounding_and_zero_fill() {
    let p = page();
    for size in [0, 1, 4, 4095, 4096, 4097, 16580, 131268, 1 << 20] {
        let shm = SharedMemory::new(size).unwrap();
        assert_eq!(shm.len(), size);
        assert_eq!(shm.is_empty(), size == 0);
        let mapped = shm.mapped_len();
        assert_eq!(mapped % p, 0, "size {size}");
        assert!(
            mapped >= size.max(1) && mapped < size.max(1) + p,
            "size {size}"
        );
        assert_eq!(shm.host_ptr().as_ptr() as u64 % p, 0);
        // The fd the client gets is exactly mapped_len bytes long.
        let st = rustix::fs::fstat(shm.fd()).unwrap();
        assert_eq!(st.st_size as u64, mapped);
        assert!(shm.read_vec(0, size).unwrap().iter().all(|&b| b == 0));
        if size > 0 {
            let peer = Peer::map(&shm);
            assert!(peer.read(0, size as usize).iter().all(|&b| b == 0));
        }
    }
}

#[test]
fn aligned_creation() {
    let p = page();
    for align in [1, 64, 4096, 16 << 10, 64 << 10, 2 << 20] {
        for size in [1, 4096, 100_000] {
            let shm = SharedMemory::new_aligned(size, align).unwrap();
            let granule = align.max(p);
            assert_eq!(shm.host_ptr().as_ptr() as u64 % granule, 0, "align {align}");
            assert_eq!(shm.mapped_len() % granule, 0, "align {align}");
            assert!(shm.mapped_len() >= size);
            // Usable over the whole requested size, and coherent with a peer.
            shm.write_from(size - 1, &[0xab]).unwrap();
            assert_eq!(Peer::map(&shm).read(size as usize - 1, 1), [0xab]);
        }
    }
    for align in [0, 3, 4097, u64::MAX] {
        assert!(matches!(
            SharedMemory::new_aligned(4096, align),
            Err(ShmError::InvalidAlignment { .. })
        ));
    }
}

#[test]
fn huge_sizes_are_errors_not_panics() {
    assert!(matches!(
        SharedMemory::new(u64::MAX),
        Err(ShmError::TooLarge { .. })
    ));
    assert!(matches!(
        SharedMemory::new_aligned(1, 1 << 63),
        Err(ShmError::TooLarge { .. } | ShmError::Io(_))
    ));
    // Representable but not mappable: an I/O error from mmap (or ftruncate), not a panic.
    assert!(SharedMemory::new(1 << 62).is_err());
}

#[test]
fn cloned_fd_is_cloexec_and_coherent_both_ways() {
    let shm = SharedMemory::new(131268).unwrap();
    let fd = shm.try_clone_fd().unwrap();
    let flags = rustix::io::fcntl_getfd(&fd).unwrap();
    assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
    assert_ne!(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        std::os::fd::AsRawFd::as_raw_fd(&shm.as_fd())
    );
    drop(fd);

    let peer = Peer::map(&shm);
    // Host -> client.
    let data = pattern(1000, 7);
    shm.write_from(0, &data).unwrap();
    shm.write_from(131268 - 3, &[1, 2, 3]).unwrap();
    assert_eq!(peer.read(0, 1000), data);
    assert_eq!(peer.read(131268 - 3, 3), [1, 2, 3]);
    // Client -> host.
    let data = pattern(4097, 9);
    peer.write(12345, &data);
    assert_eq!(shm.read_vec(12345, 4097).unwrap(), data);
    let mut buf = [0u8; 5];
    shm.read_into(12346, &mut buf).unwrap();
    assert_eq!(buf, data[1..6]);
    // Atomics through both mappings see the same word.
    peer.atomic(128).store(0xdead_beef, Ordering::Release);
    assert_eq!(
        shm.atomic_u32(128).unwrap().load(Ordering::Acquire),
        0xdead_beef
    );
    shm.atomic_u32(128)
        .unwrap()
        .fetch_and(0xffff, Ordering::SeqCst);
    assert_eq!(peer.atomic(128).load(Ordering::SeqCst), 0xbeef);
}

#[test]
fn the_memory_outlives_our_object_for_the_client() {
    let shm = SharedMemory::new(4096).unwrap();
    shm.write_from(0, b"venus").unwrap();
    let peer = Peer::map(&shm);
    drop(shm);
    assert_eq!(peer.read(0, 5), b"venus");
}

#[test]
fn every_unaligned_offset_and_length_copies_exactly() {
    let shm = SharedMemory::new(64).unwrap();
    let peer = Peer::map(&shm);
    let background = pattern(64, 200);
    for offset in 0..12usize {
        for len in 0..=(64 - offset).min(24) {
            let data = pattern(len, offset as u8);
            // Reads.
            peer.write(0, &background);
            peer.write(offset, &data);
            let mut got = vec![0x55; len];
            shm.read_into(offset as u64, &mut got).unwrap();
            assert_eq!(got, data, "read offset {offset} len {len}");
            // Writes leave the neighbours alone.
            peer.write(0, &background);
            shm.write_from(offset as u64, &data).unwrap();
            let mut want = background.clone();
            want[offset..offset + len].copy_from_slice(&data);
            assert_eq!(peer.read(0, 64), want, "write offset {offset} len {len}");
        }
    }
}

#[test]
fn out_of_bounds_and_overflow_are_errors() {
    let shm = Arc::new(SharedMemory::new(100).unwrap());
    let mut four = [0u8; 4];
    let oob = |r: Result<(), ShmError>| matches!(r, Err(ShmError::OutOfBounds { .. }));

    assert!(shm.read_into(96, &mut four).is_ok());
    assert!(matches!(
        shm.read_into(97, &mut four),
        Err(ShmError::OutOfBounds {
            offset: 97,
            len: 4,
            size: 100
        })
    ));
    // Past the requested size but inside the mapped page: still out of bounds.
    assert!(oob(shm.read_into(100, &mut four)));
    assert!(oob(shm.write_from(99, &[1, 2])));
    assert!(oob(shm.read_into(u64::MAX, &mut four)));
    assert!(oob(shm.read_into(u64::MAX - 1, &mut four)));
    assert!(oob(shm.write_from(u64::MAX, &[1])));
    assert!(oob(shm.read_into(u64::MAX, &mut [])));
    assert!(oob(shm.read_wrapped(u64::MAX, 16, 0, &mut four)));
    assert!(oob(shm.read_wrapped(96, 8, 0, &mut four)));
    assert!(matches!(
        shm.read_vec(0, u64::MAX),
        Err(ShmError::OutOfBounds { .. })
    ));
    assert!(matches!(
        shm.read_vec(1, 100),
        Err(ShmError::OutOfBounds { .. })
    ));
    assert!(matches!(
        shm.atomic_u32(100),
        Err(ShmError::OutOfBounds { .. })
    ));
    assert!(matches!(
        shm.atomic_u32(u64::MAX - 3),
        Err(ShmError::OutOfBounds { .. })
    ));
    // Empty accesses at the very end are fine; anything else is untouched.
    assert!(shm.read_into(100, &mut []).is_ok());
    assert!(shm.write_from(100, &[]).is_ok());
    assert_eq!(shm.read_vec(100, 0).unwrap(), Vec::<u8>::new());

    // Regions: relative offsets, bounded by the region, overflow-checked.
    assert!(matches!(
        shm.region(50, 51),
        Err(ShmError::OutOfBounds { .. })
    ));
    assert!(matches!(
        shm.region(u64::MAX, 2),
        Err(ShmError::OutOfBounds { .. })
    ));
    let r = shm.region(40, 20).unwrap();
    assert_eq!((r.offset(), r.len()), (40, 20));
    assert!(matches!(
        r.read_into(18, &mut four),
        Err(ShmError::OutOfBounds {
            offset: 18,
            len: 4,
            size: 20
        })
    ));
    assert!(oob(r.write_from(u64::MAX, &[0])));
    assert!(matches!(
        r.subregion(10, 11),
        Err(ShmError::OutOfBounds { .. })
    ));
    assert!(matches!(
        r.subregion(u64::MAX, 1),
        Err(ShmError::OutOfBounds { .. })
    ));
    let s = r.subregion(4, 8).unwrap();
    assert_eq!((s.offset(), s.len()), (44, 8));
    s.write_from(0, b"12345678").unwrap();
    assert!(oob(s.write_from(1, b"12345678")));
    assert_eq!(shm.read_vec(40, 16).unwrap(), b"\0\0\0\x0012345678\0\0\0\0");

    // A zero-sized object: an fd and a page, but nothing accessible.
    let empty = SharedMemory::new(0).unwrap();
    assert!(empty.mapped_len() > 0);
    assert!(oob(empty.read_into(0, &mut four)));
    assert!(matches!(
        empty.atomic_u32(0),
        Err(ShmError::OutOfBounds { .. })
    ));
}

#[test]
fn misaligned_atomics_are_rejected() {
    let shm = Arc::new(SharedMemory::new(4096).unwrap());
    for offset in [1, 2, 3, 5, 4089] {
        assert!(
            matches!(shm.atomic_u32(offset), Err(ShmError::Misaligned { offset: o, align: 4 }) if o == offset),
            "offset {offset}"
        );
    }
    assert!(shm.atomic_u32(0).is_ok());
    assert!(shm.atomic_u32(4092).is_ok());
    // Alignment is about the absolute address, not the region-relative offset.
    let r = shm.region(2, 100).unwrap();
    assert!(matches!(
        r.atomic_u32(0),
        Err(ShmError::Misaligned { offset: 0, .. })
    ));
    assert!(r.atomic_u32(2).is_ok());
    let r = shm.region(64, 100).unwrap();
    r.atomic_u32(4).unwrap().store(7, Ordering::Relaxed);
    assert_eq!(shm.atomic_u32(68).unwrap().load(Ordering::Relaxed), 7);
}

#[test]
fn status_bits_with_fetch_or_and_fetch_and() {
    const IDLE: u32 = 1;
    const FATAL: u32 = 2;
    const ALIVE: u32 = 4;
    let shm = SharedMemory::new(256).unwrap();
    let peer = Peer::map(&shm);
    let status = shm.atomic_u32(128).unwrap();
    status.fetch_or(ALIVE, Ordering::SeqCst);
    status.fetch_or(IDLE, Ordering::SeqCst);
    // The client clears ALIVE (its watchdog) concurrently with our bits.
    peer.atomic(128).fetch_and(!ALIVE, Ordering::SeqCst);
    assert_eq!(status.load(Ordering::SeqCst), IDLE);
    assert_eq!(status.fetch_and(!IDLE, Ordering::SeqCst), IDLE);
    assert_eq!(status.swap(FATAL, Ordering::SeqCst), 0);
    assert_eq!(peer.atomic(128).load(Ordering::SeqCst), FATAL);
    assert_eq!(format!("{status:?}"), "ShmAtomicU32(2)");
}

#[test]
fn wrapped_ring_reads() {
    // Mesa's per-thread ring layout, shrunk: buffer at 192, 16 bytes.
    let shm = Arc::new(SharedMemory::new(16580).unwrap());
    let peer = Peer::map(&shm);
    let ring: Vec<u8> = (0..16).collect();
    peer.write(192, &ring);

    let mut five = [0u8; 5];
    shm.read_wrapped(192, 16, 14, &mut five).unwrap();
    assert_eq!(five, [14, 15, 0, 1, 2]);
    shm.read_wrapped(192, 16, 3, &mut five).unwrap();
    assert_eq!(five, [3, 4, 5, 6, 7]);
    // Free-running counters: only the low bits matter, including across 2^32.
    shm.read_wrapped(192, 16, u32::MAX, &mut five).unwrap();
    assert_eq!(five, [15, 0, 1, 2, 3]);
    shm.read_wrapped(192, 16, 0x1000_0000 + 12, &mut five)
        .unwrap();
    assert_eq!(five, [12, 13, 14, 15, 0]);
    // Exactly the whole ring, from any position; nothing at all.
    let mut all = [0u8; 16];
    shm.read_wrapped(192, 16, 9, &mut all).unwrap();
    assert_eq!(all.to_vec(), (9..16).chain(0..9).collect::<Vec<u8>>());
    shm.read_wrapped(192, 16, 9, &mut []).unwrap();
    // Through a region, as a ring thread would hold it.
    let buffer = shm.region(192, 16).unwrap();
    buffer.read_wrapped(15, &mut five).unwrap();
    assert_eq!(five, [15, 0, 1, 2, 3]);

    let mut seventeen = [0u8; 17];
    assert!(matches!(
        shm.read_wrapped(192, 16, 0, &mut seventeen),
        Err(ShmError::RingReadTooLong { len: 17, size: 16 })
    ));
    for size in [0, 3, 24] {
        assert!(matches!(
            shm.read_wrapped(192, size, 0, &mut five),
            Err(ShmError::RingSize { .. })
        ));
    }
    let not_pow2 = shm.region(192, 24).unwrap();
    assert!(matches!(
        not_pow2.read_wrapped(0, &mut five),
        Err(ShmError::RingSize { size: 24 })
    ));
    // The ring must fit in the object.
    assert!(matches!(
        shm.read_wrapped(16580 - 8, 16, 0, &mut five),
        Err(ShmError::OutOfBounds { .. })
    ));
}

#[test]
fn atomics_across_two_mappings_and_threads() {
    const N: u32 = 200_000;
    let shm = Arc::new(SharedMemory::new(4096).unwrap());
    let peer = Arc::new(Peer::map(&shm));

    thread::scope(|s| {
        // The client increments through its own mapping...
        let client = s.spawn(|| {
            for _ in 0..N {
                peer.atomic(0).fetch_add(1, Ordering::Relaxed);
            }
            peer.atomic(64).store(1, Ordering::Release);
        });
        // ...while we increment the same word through ours,
        let host = s.spawn(|| {
            let counter = shm.atomic_u32(0).unwrap();
            for _ in 0..N {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
        // ...and an observer sees a monotonic counter until the client says it is done.
        let observer = s.spawn(|| {
            let counter = shm.atomic_u32(0).unwrap();
            let done = shm.atomic_u32(64).unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut last = 0;
            while done.load(Ordering::Acquire) == 0 {
                let now = counter.load(Ordering::Relaxed);
                assert!(now >= last, "counter went backwards: {last} -> {now}");
                last = now;
                assert!(Instant::now() < deadline, "client never finished");
            }
            assert!(counter.load(Ordering::Relaxed) >= N);
        });
        client.join().unwrap();
        host.join().unwrap();
        observer.join().unwrap();
    });
    assert_eq!(shm.atomic_u32(0).unwrap().load(Ordering::SeqCst), 2 * N);
    assert_eq!(peer.atomic(0).load(Ordering::SeqCst), 2 * N);
}

/// A miniature of the Venus ring protocol (contract §4.2): the client writes length-prefixed
/// messages that straddle the wrap point and publishes `tail` with release; we consume with
/// `read_wrapped` after an acquire load of `tail` and publish `head` with release.
#[test]
fn ring_producer_consumer() {
    const HEAD: u64 = 0;
    const TAIL: u64 = 64;
    const BUF: usize = 192;
    const SIZE: u32 = 256;
    const MESSAGES: u32 = 20_000;
    let shm = Arc::new(SharedMemory::new(BUF as u64 + u64::from(SIZE) + 4).unwrap());
    let peer = Peer::map(&shm);
    let deadline = Instant::now() + Duration::from_secs(60);

    thread::scope(|s| {
        s.spawn(|| {
            let head = peer.atomic(HEAD as usize);
            let tail = peer.atomic(TAIL as usize);
            let mut cur: u32 = 0;
            for i in 0..MESSAGES {
                let body_len = 4 * (1 + i % 13);
                let msg: Vec<u8> = (body_len.to_le_bytes().iter().copied())
                    .chain(pattern(body_len as usize, i as u8))
                    .collect();
                let size = msg.len() as u32;
                while cur
                    .wrapping_add(size)
                    .wrapping_sub(head.load(Ordering::Acquire))
                    > SIZE
                {
                    assert!(Instant::now() < deadline, "producer starved");
                    thread::yield_now();
                }
                let start = (cur & (SIZE - 1)) as usize;
                let first = msg.len().min(SIZE as usize - start);
                peer.write(BUF + start, &msg[..first]);
                peer.write(BUF, &msg[first..]);
                cur = cur.wrapping_add(size);
                tail.store(cur, Ordering::Release);
            }
        });

        let ring = shm.region(BUF as u64, u64::from(SIZE)).unwrap();
        let head = shm.atomic_u32(HEAD).unwrap();
        let tail = shm.atomic_u32(TAIL).unwrap();
        let mut pos: u32 = 0;
        for i in 0..MESSAGES {
            while tail.load(Ordering::Acquire) == pos {
                assert!(Instant::now() < deadline, "consumer starved");
                thread::yield_now();
            }
            let mut len = [0u8; 4];
            ring.read_wrapped(pos, &mut len).unwrap();
            let body_len = u32::from_le_bytes(len);
            assert_eq!(body_len, 4 * (1 + i % 13));
            let mut body = vec![0u8; body_len as usize];
            ring.read_wrapped(pos.wrapping_add(4), &mut body).unwrap();
            assert_eq!(body, pattern(body_len as usize, i as u8), "message {i}");
            pos = pos.wrapping_add(4 + body_len);
            head.store(pos, Ordering::Release);
        }
    });
}

/// The client holds the fd: it must not be able to shrink the object under our mapping (our
/// next access would be a SIGBUS) or to add seals.
#[cfg(target_os = "linux")]
#[test]
fn client_cannot_resize_or_reseal() {
    use rustix::fs::SealFlags;
    let shm = SharedMemory::new(8192).unwrap();
    let fd = shm.try_clone_fd().unwrap();
    assert!(rustix::fs::ftruncate(&fd, 0).is_err());
    assert!(rustix::fs::ftruncate(&fd, 1 << 20).is_err());
    assert!(rustix::fs::fcntl_add_seals(&fd, SealFlags::FUTURE_WRITE).is_err());
    let seals = rustix::fs::fcntl_get_seals(&fd).unwrap();
    assert!(seals.contains(SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL));
    assert!(!seals.contains(SealFlags::WRITE));
    assert_eq!(rustix::fs::fstat(&fd).unwrap().st_size, 8192);
    shm.write_from(8191, &[1]).unwrap();
    assert_eq!(shm.read_vec(8191, 1).unwrap(), [1]);
}

#[test]
fn regions_keep_the_memory_alive_across_threads() {
    let shm = Arc::new(SharedMemory::new(1 << 16).unwrap());
    let region = shm.region(4096, 4096).unwrap();
    drop(shm);
    let t = thread::spawn(move || {
        region.write_from(0, b"ring").unwrap();
        region.atomic_u32(4).unwrap().store(42, Ordering::Release);
        region
    });
    let region = t.join().unwrap();
    assert_eq!(region.read_vec(0, 4).unwrap(), b"ring");
    assert_eq!(region.shm().read_vec(4096, 4).unwrap(), b"ring");
    assert_eq!(region.atomic_u32(4).unwrap().load(Ordering::Acquire), 42);
}

/// Copy throughput against a plain `memcpy` of private memory. Informational; run with
/// `cargo test --release -p venus-renderer --test shm -- --ignored --nocapture copy_throughput`.
#[test]
#[ignore]
fn copy_throughput() {
    for size in [4usize << 10, 64 << 10, 1 << 20, 16 << 20] {
        let shm = SharedMemory::new(size as u64).unwrap();
        let src = pattern(size, 3);
        let mut dst = vec![0u8; size];
        let rounds = (256 << 20) / size;
        let time = |f: &mut dyn FnMut()| {
            f();
            let t = Instant::now();
            for _ in 0..rounds {
                f();
            }
            let s = t.elapsed().as_secs_f64();
            (rounds * size) as f64 / s / 1e9
        };
        let read = time(&mut || shm.read_into(0, &mut dst).unwrap());
        let read_unaligned = time(&mut || shm.read_into(1, &mut dst[..size - 1]).unwrap());
        let write = time(&mut || shm.write_from(0, &src).unwrap());
        let memcpy = time(&mut || dst.copy_from_slice(std::hint::black_box(&src)));
        println!(
            "{:>6} KiB: read {read:.1} GB/s, read+1 {read_unaligned:.1} GB/s, \
             write {write:.1} GB/s, private memcpy {memcpy:.1} GB/s",
            size >> 10
        );
    }
}

/// The backings this platform offers.
fn backings() -> Vec<ShmBacking> {
    if cfg!(any(target_os = "linux", target_os = "android")) {
        vec![ShmBacking::Memfd, ShmBacking::Posix]
    } else {
        vec![ShmBacking::Posix]
    }
}

#[test]
fn backing_names_and_defaults() {
    for b in [ShmBacking::Memfd, ShmBacking::Posix] {
        assert_eq!(b.name().parse::<ShmBacking>().unwrap(), b);
        assert_eq!(b.to_string(), b.name());
    }
    assert!("sysv".parse::<ShmBacking>().is_err());
    let expected = if cfg!(any(target_os = "linux", target_os = "android")) {
        ShmBacking::Memfd
    } else {
        ShmBacking::Posix
    };
    assert_eq!(ShmBacking::default(), expected);
    assert_eq!(ShmConfig::default().backing, expected);
    assert_eq!(ShmConfig::default().granule, 1);
}

/// The POSIX backing (macOS's): created, sized and rounded like the default, with a fd the
/// client maps at offset 0 and sees our bytes through (both ways), and no name left behind.
#[test]
fn posix_backing_create_map_and_round() {
    let p = page();
    for (size, align) in [
        (0, 1),
        (1, 1),
        (4097, 1),
        (131268, 16384),
        (100_000, 1 << 16),
    ] {
        let shm = SharedMemory::with_backing(size, align, ShmBacking::Posix).unwrap();
        let granule = align.max(p);
        assert_eq!(shm.len(), size);
        assert_eq!(shm.mapped_len() % granule, 0, "size {size}");
        assert!(shm.mapped_len() >= size.max(1) && shm.mapped_len() < size.max(1) + granule);
        assert_eq!(shm.host_ptr().as_ptr() as u64 % granule, 0);
        let st = rustix::fs::fstat(shm.fd()).unwrap();
        assert_eq!(st.st_size as u64, shm.mapped_len());
        assert!(shm.read_vec(0, size).unwrap().iter().all(|&b| b == 0));
        let fd = shm.try_clone_fd().unwrap();
        assert!(rustix::io::fcntl_getfd(&fd)
            .unwrap()
            .contains(rustix::io::FdFlags::CLOEXEC));
        if size < 8 {
            continue;
        }
        let peer = Peer::map(&shm);
        let data = pattern(size as usize / 2, 3);
        shm.write_from(1, &data).unwrap();
        assert_eq!(peer.read(1, data.len()), data);
        peer.write(size as usize - 3, &[7, 8, 9]);
        assert_eq!(shm.read_vec(size - 3, 3).unwrap(), [7, 8, 9]);
        peer.atomic(4).store(0x1234_5678, Ordering::Release);
        let word = shm.atomic_u32(4).unwrap();
        assert_eq!(word.fetch_add(1, Ordering::AcqRel), 0x1234_5678);
        assert_eq!(peer.atomic(4).load(Ordering::Acquire), 0x1234_5679);
        assert!(matches!(
            shm.read_vec(size - 2, 3),
            Err(ShmError::OutOfBounds { .. })
        ));
    }
}

/// `shm_unlink` ran at once: no `/dev/shm/vn.<pid>.*` name outlives creation.
#[cfg(target_os = "linux")]
#[test]
fn posix_backing_leaves_no_name() {
    let shms: Vec<_> = (0..8)
        .map(|_| SharedMemory::with_backing(4096, 1, ShmBacking::Posix).unwrap())
        .collect();
    let prefix = format!("vn.{:x}.", std::process::id());
    let names: Vec<_> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(names.is_empty(), "{names:?}");
    // The memory itself lives on through the fds.
    shms[7].write_from(0, b"still here").unwrap();
    assert_eq!(shms[7].read_vec(0, 10).unwrap(), b"still here");
}

/// Every backing of the platform gives the same observable object.
#[test]
fn every_backing_behaves_alike() {
    for b in backings() {
        let shm = Arc::new(SharedMemory::with_backing(65536, 16384, b).unwrap());
        let region = shm.region(16384, 4096).unwrap();
        region.write_from(0, b"venus").unwrap();
        assert_eq!(shm.read_vec(16384, 5).unwrap(), b"venus", "{b}");
        assert_eq!(shm.mapped_len(), 65536, "{b}");
    }
}

/// A backing the platform lacks is an `Unsupported` error, not a panic.
#[cfg(target_os = "macos")]
#[test]
fn memfd_is_unsupported_on_macos() {
    match SharedMemory::with_backing(4096, 1, ShmBacking::Memfd) {
        Err(ShmError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::Unsupported),
        other => panic!("{other:?}"),
    }
}
