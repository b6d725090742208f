//! Mapped-memory coherence through a real Vulkan client, for every HOST_VISIBLE memory type
//! and sizes from 1 B to 64 MiB at odd offsets within fresh allocations:
//! 1. the CPU writes a pattern into a mapped buffer, `vkCmdCopyBuffer` copies it (to another
//!    offset) into a second mapped buffer, the CPU reads it back (bytes around the region
//!    must be untouched);
//! 2. `vkCmdFillBuffer` and `vkCmdUpdateBuffer` write, the CPU reads.
//!
//! Only what Vulkan requires is done: flush/invalidate for memory that is not HOST_COHERENT,
//! a transfer-to-host barrier and a fence wait.
//!
//! Usage: `venus-coherence [check|bandwidth] [--max-mib M]`. `check` (the default) prints
//! `coherence OK types=<t> cases=<n> bytes=<total>`; `bandwidth` prints
//! `bandwidth OK mib=<m> mapped_gbps=<..> memcpy_gbps=<..>` (writes into mapped memory vs a
//! plain memcpy between heap buffers of the same size). Exit status 1 on a mismatch.

use std::time::Instant;

use ash::vk;
use venus_testapps::gpu::{arg, exit_on_error, Buffer, Error, Gpu, Result, VkContext};

const SIZES: &[u64] = &[
    1,
    3,
    4,
    7,
    64,
    255,
    4096 + 13,
    65537,
    (1 << 20) + 5,
    64 << 20,
];
const OFFSETS: &[u64] = &[0, 1, 3, 4097];
const GUARD: u8 = 0xee;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    exit_on_error("venus-coherence", run(&args));
}

fn run(args: &[String]) -> Result<()> {
    let part = args
        .first()
        .filter(|a| !a.starts_with("--"))
        .map_or("check", String::as_str);
    let max_mib: u64 = arg(args, "--max-mib", 64)?;
    let gpu = Gpu::new(c"venus-coherence")?;
    eprintln!("device: {}", gpu.device_name());
    match part {
        "check" => check(&gpu, max_mib << 20),
        "bandwidth" => bandwidth(&gpu, max_mib.max(1) << 20),
        _ => Err(Error::Other(
            "usage: venus-coherence [check|bandwidth] [--max-mib M]".into(),
        )),
    }
}

fn usage() -> vk::BufferUsageFlags {
    vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST
}

/// The host-visible memory types a transfer buffer may use.
fn host_visible_types(gpu: &Gpu) -> Result<Vec<u32>> {
    let probe = gpu.buffer(64, usage(), vk::MemoryPropertyFlags::HOST_VISIBLE)?;
    // SAFETY: a query on a live buffer of ours.
    let bits = unsafe { gpu.device.get_buffer_memory_requirements(probe.buffer) }.memory_type_bits;
    probe.destroy(gpu);
    Ok((0..gpu.memory.memory_type_count)
        .filter(|&i| {
            bits & (1 << i) != 0
                && gpu
                    .memory_flags(i)
                    .contains(vk::MemoryPropertyFlags::HOST_VISIBLE)
        })
        .collect())
}

fn check(gpu: &Gpu, max: u64) -> Result<()> {
    let types = host_visible_types(gpu)?;
    let (mut cases, mut bytes) = (0, 0);
    for &ty in &types {
        eprintln!("memory type {ty}: {:?}", gpu.memory_flags(ty));
        for &size in SIZES.iter().filter(|&&s| s <= max) {
            let offsets = if size > 1 << 20 {
                &OFFSETS[..2]
            } else {
                OFFSETS
            };
            for &off in offsets {
                one_case(gpu, ty, size, off).map_err(|e| {
                    Error::Mismatch(format!("memory type {ty}, size {size}, offset {off}: {e}"))
                })?;
                cases += 1;
                bytes += size;
            }
        }
    }
    println!(
        "coherence OK types={} cases={cases} bytes={bytes}",
        types.len()
    );
    Ok(())
}

fn pattern(i: u64, size: u64, off: u64) -> u8 {
    (i.wrapping_mul(31) ^ size ^ (off << 3) ^ (i >> 8)) as u8
}

/// Makes host writes visible to the device (non-coherent memory only).
fn flush(gpu: &Gpu, b: &Buffer, invalidate: bool) -> Result<()> {
    if gpu
        .memory_flags(b.memory_type)
        .contains(vk::MemoryPropertyFlags::HOST_COHERENT)
    {
        return Ok(());
    }
    let range = [vk::MappedMemoryRange::default()
        .memory(b.memory)
        .offset(0)
        .size(vk::WHOLE_SIZE)];
    // SAFETY: the memory is mapped (whole) and ours.
    unsafe {
        if invalidate {
            gpu.device
                .invalidate_mapped_memory_ranges(&range)
                .ctx("vkInvalidateMappedMemoryRanges")
        } else {
            gpu.device
                .flush_mapped_memory_ranges(&range)
                .ctx("vkFlushMappedMemoryRanges")
        }
    }
}

/// Both directions for one memory type, size and offset, in fresh allocations.
fn one_case(gpu: &Gpu, ty: u32, size: u64, off: u64) -> Result<()> {
    let dst_off = (off * 7 + 5) % 13;
    let total = off.max(dst_off) + size + 64;
    let mut src = gpu.buffer_in(total, usage(), ty)?;
    let mut dst = match gpu.buffer_in(total, usage(), ty) {
        Ok(b) => b,
        Err(e) => {
            src.destroy(gpu);
            return Err(e);
        }
    };
    let result = copy_case(gpu, &mut src, &mut dst, (size, off, dst_off))
        .and_then(|()| fill_case(gpu, &src, &dst, size, off));
    src.destroy(gpu);
    dst.destroy(gpu);
    result
}

/// CPU pattern -> flush -> vkCmdCopyBuffer -> invalidate -> CPU check (and guard bytes).
fn copy_case(
    gpu: &Gpu,
    src: &mut Buffer,
    dst: &mut Buffer,
    (size, off, dst_off): (u64, u64, u64),
) -> Result<()> {
    let s = src.bytes_mut();
    s.fill(0);
    for (i, b) in s[off as usize..(off + size) as usize]
        .iter_mut()
        .enumerate()
    {
        *b = pattern(i as u64, size, off);
    }
    dst.bytes_mut().fill(GUARD);
    flush(gpu, src, false)?;
    flush(gpu, dst, false)?;
    let cmd = gpu.begin()?;
    let region = vk::BufferCopy {
        src_offset: off,
        dst_offset: dst_off,
        size,
    };
    // SAFETY: cmd is recording; both regions lie inside the buffers.
    unsafe {
        gpu.device
            .cmd_copy_buffer(cmd, src.buffer, dst.buffer, &[region])
    };
    to_host(gpu, cmd);
    gpu.submit_wait(cmd)?;
    flush(gpu, dst, true)?;
    let d = dst.bytes();
    let (lo, hi) = (dst_off as usize, (dst_off + size) as usize);
    if let Some(i) = (lo..hi).find(|&i| d[i] != pattern((i - lo) as u64, size, off)) {
        return Err(Error::Mismatch(format!(
            "copied byte {} is {:#x}, want {:#x}",
            i - lo,
            d[i],
            pattern((i - lo) as u64, size, off)
        )));
    }
    if let Some(i) = (0..lo).chain(hi..d.len()).find(|&i| d[i] != GUARD) {
        return Err(Error::Mismatch(format!(
            "byte {i} outside the copy changed to {:#x}",
            d[i]
        )));
    }
    Ok(())
}

fn to_host(gpu: &Gpu, cmd: vk::CommandBuffer) {
    gpu.barrier(
        cmd,
        (
            vk::PipelineStageFlags::TRANSFER,
            vk::AccessFlags::TRANSFER_WRITE,
        ),
        (vk::PipelineStageFlags::HOST, vk::AccessFlags::HOST_READ),
    );
}

/// vkCmdFillBuffer into dst and vkCmdUpdateBuffer into src (4-aligned parts of the region)
/// -> invalidate -> CPU check; the bytes just before and after must keep their values.
fn fill_case(gpu: &Gpu, src: &Buffer, dst: &Buffer, size: u64, off: u64) -> Result<()> {
    let at = off.next_multiple_of(4);
    let len = (off + size).saturating_sub(at) & !3;
    if len == 0 {
        return Ok(());
    }
    let word = 0x1122_3344u32 ^ size as u32;
    let update_len = len.min(65536);
    let update: Vec<u8> = (0..update_len).map(|i| !pattern(i, size, off)).collect();
    let before = (
        dst.bytes()[at.saturating_sub(1) as usize..at as usize].to_vec(),
        src.bytes()[(at + update_len) as usize],
    );
    let cmd = gpu.begin()?;
    // SAFETY: cmd is recording; offsets and sizes are 4-aligned and inside the buffers;
    // the update is at most 65536 bytes.
    unsafe {
        gpu.device.cmd_fill_buffer(cmd, dst.buffer, at, len, word);
        gpu.device.cmd_update_buffer(cmd, src.buffer, at, &update);
    }
    to_host(gpu, cmd);
    gpu.submit_wait(cmd)?;
    flush(gpu, dst, true)?;
    flush(gpu, src, true)?;
    let d = &dst.bytes()[at as usize..(at + len) as usize];
    if let Some((i, c)) = d
        .chunks(4)
        .enumerate()
        .find(|(_, c)| *c != word.to_le_bytes())
    {
        return Err(Error::Mismatch(format!(
            "filled word {i} is {c:x?}, want {word:#x}"
        )));
    }
    let u = &src.bytes()[at as usize..(at + update_len) as usize];
    if let Some(i) = (0..u.len()).find(|&i| u[i] != update[i]) {
        return Err(Error::Mismatch(format!(
            "updated byte {i} is {:#x}, want {:#x}",
            u[i], update[i]
        )));
    }
    let after = (
        dst.bytes()[at.saturating_sub(1) as usize..at as usize].to_vec(),
        src.bytes()[(at + update_len) as usize],
    );
    if before != after {
        return Err(Error::Mismatch(format!(
            "neighbouring bytes changed: {before:?} -> {after:?}"
        )));
    }
    Ok(())
}

/// Writes `mib` MiB into mapped memory and into a heap buffer (best of 5 each).
fn bandwidth(gpu: &Gpu, bytes: u64) -> Result<()> {
    let mut mapped = gpu.host_buffer(bytes)?;
    let source: Vec<u8> = (0..bytes).map(|i| i as u8).collect();
    let mut heap = vec![0u8; bytes as usize];
    heap.copy_from_slice(&source);
    let best = |f: &mut dyn FnMut()| {
        (0..5)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .min()
            .unwrap_or_default()
    };
    let t_mapped = best(&mut || mapped.bytes_mut().copy_from_slice(&source));
    let t_heap = best(&mut || heap.copy_from_slice(std::hint::black_box(&source)));
    let ok = mapped.bytes() == source.as_slice() && heap == source;
    mapped.destroy(gpu);
    if !ok {
        return Err(Error::Mismatch("a copy differs from its source".into()));
    }
    let gbps = |t: std::time::Duration| bytes as f64 / t.as_secs_f64() / 1e9;
    println!(
        "bandwidth OK mib={} mapped_gbps={:.3} memcpy_gbps={:.3}",
        bytes >> 20,
        gbps(t_mapped),
        gbps(t_heap)
    );
    Ok(())
}
