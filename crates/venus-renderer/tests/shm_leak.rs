//! Dropping a `SharedMemory` unmaps it and closes its fd. A test binary of its own (one test)
//! so that no other test creates mappings or fds while we count them.

use std::sync::atomic::Ordering;

use venus_renderer::shm::SharedMemory;

fn maps_lines() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

fn memfd_mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| l.contains("memfd:venus-shm"))
        .count()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Virtual size of the process in KiB (catches leaked anonymous reservations that would merge
/// with neighbouring mappings and not show up as new lines).
fn vm_size_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmSize:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn drop_unmaps_and_closes() {
    // Warm up allocator and thread-locals so they do not count as growth.
    drop(SharedMemory::new(1 << 16).unwrap());
    drop(SharedMemory::new_aligned(1 << 16, 1 << 20).unwrap());
    let (lines, fds, vm) = (maps_lines(), open_fds(), vm_size_kib());

    for i in 0..10_000u32 {
        let shm = SharedMemory::new(64 << 10).unwrap();
        // Touch it so the pages really exist.
        shm.write_from(u64::from(i % 16) * 4096, &i.to_le_bytes())
            .unwrap();
        shm.atomic_u32(0).unwrap().fetch_add(1, Ordering::Relaxed);
    }
    // The over-aligned path reserves extra address space and trims it: that must not leak
    // either (1000 x 1 MiB of slack would be ~1 GiB of VmSize).
    for _ in 0..1_000 {
        let shm = SharedMemory::new_aligned(64 << 10, 1 << 20).unwrap();
        assert_eq!(shm.host_ptr().as_ptr() as usize % (1 << 20), 0);
        shm.write_from(0, &[1]).unwrap();
    }
    // And fds handed out and dropped by the "client" side.
    for _ in 0..1_000 {
        let shm = SharedMemory::new(4096).unwrap();
        drop(shm.try_clone_fd().unwrap());
    }

    assert_eq!(memfd_mappings(), 0);
    assert_eq!(open_fds(), fds, "fd leak");
    let (lines_after, vm_after) = (maps_lines(), vm_size_kib());
    assert!(
        lines_after <= lines + 8,
        "maps grew from {lines} to {lines_after} lines"
    );
    // 10,000 leaked 64 KiB mappings would be 640 MiB; allow allocator noise.
    assert!(
        vm_after <= vm + 32 * 1024,
        "VmSize grew from {vm} KiB to {vm_after} KiB"
    );
}
