//! Per-context limits and zeroed memory through a real Vulkan client.
//!
//! - `zeroed [--rounds N] [--big-rounds M]`: for every HOST_VISIBLE memory type and sizes
//!   4 KiB, 1 MiB (N rounds each, default 200) and 64 MiB (M rounds, default 20): allocate,
//!   map, check that every byte is zero, write a pattern, unmap, free; again. The allocator
//!   (and Mesa's ids, which are addresses) tends to hand back the same memory id, so this also
//!   covers a device-memory blob re-created for the same id. Prints
//!   `zeroed OK types=<t> rounds=<r> bytes=<checked>`; exit 1 on a non-zero byte.
//! - `memory-bomb --mib M [--count N] [--host-visible]`: allocates M MiB blocks until one fails
//!   (or N blocks), keeping them all; prints `memory-bomb allocated=<n> result=<VkResult>`.
//! - `object-bomb --count N`: creates N samplers, keeping them; prints
//!   `object-bomb created=<n> result=<VkResult>`.
//!
//! In the bombs Mesa sends allocations and creations without waiting for a reply, so a refusal
//! by the server ends the context (the next call that waits reports it, or Mesa aborts on the
//! ring's FATAL bit): what the program prints last tells which.

use ash::vk;
use venus_testapps::gpu::{arg, exit_on_error, Error, Gpu, Result, VkContext};

const PATTERN: u8 = 0xa5;
/// Compared against with `==` (a memcmp, fast even in debug builds).
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    exit_on_error("venus-limits", run(&args));
}

fn run(args: &[String]) -> Result<()> {
    let gpu = Gpu::new(c"venus-limits")?;
    eprintln!("device: {}", gpu.device_name());
    match args.first().map(String::as_str) {
        Some("zeroed") => zeroed(
            &gpu,
            arg(args, "--rounds", 200)?,
            arg(args, "--big-rounds", 20)?,
        ),
        Some("memory-bomb") => memory_bomb(
            &gpu,
            arg(args, "--mib", 64)?,
            arg(args, "--count", u64::MAX)?,
            args.iter().any(|a| a == "--host-visible"),
        ),
        Some("object-bomb") => object_bomb(&gpu, arg(args, "--count", 1_000_000)?),
        _ => Err(Error::Other(
            "usage: venus-limits zeroed|memory-bomb|object-bomb [options]".into(),
        )),
    }
}

fn host_visible_types(gpu: &Gpu) -> Vec<u32> {
    (0..gpu.memory.memory_type_count)
        .filter(|&i| {
            gpu.memory_flags(i)
                .contains(vk::MemoryPropertyFlags::HOST_VISIBLE)
        })
        .collect()
}

fn zeroed(gpu: &Gpu, rounds: u32, big_rounds: u32) -> Result<()> {
    let types = host_visible_types(gpu);
    if types.is_empty() {
        return Err(Error::Unsupported("no HOST_VISIBLE memory type".into()));
    }
    let (mut total_rounds, mut checked) = (0u64, 0u64);
    for &ty in &types {
        for (size, n) in [
            (4u64 << 10, rounds),
            (1 << 20, rounds),
            (64 << 20, big_rounds),
        ] {
            for round in 0..n {
                one_round(gpu, ty, size, round)?;
                total_rounds += 1;
                checked += size;
            }
        }
    }
    println!(
        "zeroed OK types={} rounds={total_rounds} bytes={checked}",
        types.len()
    );
    Ok(())
}

/// Allocate `size` bytes of type `ty`, check zeros, write the pattern, free.
fn one_round(gpu: &Gpu, ty: u32, size: u64, round: u32) -> Result<()> {
    let d = &gpu.device;
    let info = vk::MemoryAllocateInfo::default()
        .allocation_size(size)
        .memory_type_index(ty);
    // SAFETY: a valid allocate info on our live device.
    let memory = unsafe { d.allocate_memory(&info, None) }.ctx("vkAllocateMemory")?;
    // SAFETY: host-visible memory of ours, not mapped yet; the whole range.
    let ptr = match unsafe { d.map_memory(memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty()) }
    {
        Ok(p) => p as *mut u8,
        Err(e) => {
            // SAFETY: our memory, unused.
            unsafe { d.free_memory(memory, None) };
            return Err(Error::Vk {
                what: "vkMapMemory",
                result: e,
            });
        }
    };
    let len = usize::try_from(size).map_err(|e| Error::Other(e.to_string()))?;
    // SAFETY: the mapping covers `size` bytes and nothing else accesses it while we hold it
    // (no GPU work uses this memory).
    let bytes = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
    let dirty = bytes
        .chunks(ZEROS.len())
        .position(|c| c != &ZEROS[..c.len()]);
    let result = match dirty {
        Some(chunk) => {
            let base = chunk * ZEROS.len();
            let off = base + bytes[base..].iter().position(|&b| b != 0).unwrap_or(0);
            Err(Error::Mismatch(format!(
                "memory type {ty}, {size} bytes, round {round}: byte {off} is {:#x}, not 0",
                bytes[off]
            )))
        }
        None => Ok(()),
    };
    bytes.fill(PATTERN);
    // SAFETY: our mapped memory; no slice into it outlives this point.
    unsafe {
        d.unmap_memory(memory);
        d.free_memory(memory, None);
    }
    result
}

fn memory_bomb(gpu: &Gpu, mib: u64, count: u64, host_visible: bool) -> Result<()> {
    let want = if host_visible {
        vk::MemoryPropertyFlags::HOST_VISIBLE
    } else {
        vk::MemoryPropertyFlags::DEVICE_LOCAL
    };
    let ty = (0..gpu.memory.memory_type_count)
        .find(|&i| gpu.memory_flags(i).contains(want))
        .ok_or_else(|| Error::Unsupported(format!("no {want:?} memory type")))?;
    let info = vk::MemoryAllocateInfo::default()
        .allocation_size(mib << 20)
        .memory_type_index(ty);
    let mut blocks = Vec::new();
    let mut result = vk::Result::SUCCESS;
    while (blocks.len() as u64) < count {
        // SAFETY: a valid allocate info on our live device.
        match unsafe { gpu.device.allocate_memory(&info, None) } {
            Ok(m) => blocks.push(m),
            Err(e) => {
                result = e;
                break;
            }
        }
        if host_visible {
            // Mapping makes Mesa create the blob (and wait for the allocation).
            let m = blocks[blocks.len() - 1];
            // SAFETY: our host-visible memory, not mapped.
            match unsafe {
                gpu.device
                    .map_memory(m, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty())
            } {
                Ok(_) => {}
                Err(e) => {
                    result = e;
                    break;
                }
            }
        }
    }
    // A call that waits for the server: reports a lost context.
    // SAFETY: our live device.
    let idle = unsafe { gpu.device.device_wait_idle() };
    println!(
        "memory-bomb allocated={} result={result:?} wait_idle={idle:?}",
        blocks.len()
    );
    for m in blocks {
        // SAFETY: our memory, unused by any work.
        unsafe { gpu.device.free_memory(m, None) };
    }
    Ok(())
}

fn object_bomb(gpu: &Gpu, count: u64) -> Result<()> {
    let info = vk::SamplerCreateInfo::default();
    let mut samplers = Vec::new();
    let mut result = vk::Result::SUCCESS;
    while (samplers.len() as u64) < count {
        // SAFETY: a valid create info on our live device.
        match unsafe { gpu.device.create_sampler(&info, None) } {
            Ok(s) => samplers.push(s),
            Err(e) => {
                result = e;
                break;
            }
        }
        if samplers.len() % 100_000 == 0 {
            eprintln!("object-bomb: {} samplers", samplers.len());
        }
    }
    // SAFETY: our live device.
    let idle = unsafe { gpu.device.device_wait_idle() };
    println!(
        "object-bomb created={} result={result:?} wait_idle={idle:?}",
        samplers.len()
    );
    for s in samplers {
        // SAFETY: our sampler, unused.
        unsafe { gpu.device.destroy_sampler(s, None) };
    }
    Ok(())
}
