//! Compute through a real Vulkan client: SAXPY on f32 values and a multi-pass parallel
//! inclusive prefix sum on u32 values, both in host-visible mapped buffers, both checked
//! exactly on the CPU (the SAXPY inputs are small integers, exact in f32).
//!
//! Usage: `venus-compute [saxpy|scan|all|robust] [--n N] [--reps R]` (default: all, 16 Mi
//! elements, 3 repetitions). Prints `saxpy OK n=<n> reps=<r> time_ms=<median> gbps=<..>` and
//! `scan OK n=<n> levels=<l> reps=<r> time_ms=<median> gelems=<..>`; exit status 1 on any
//! mismatch or Vulkan error.
//!
//! `robust` (not part of `all`) accesses a 4 KiB storage buffer far out of its range
//! (shaders/robust.comp: 1 << 28 and 3 << 30 floats past its start), which only a device with
//! `robustBufferAccess` makes defined; the device here does not ask for it, venus-server
//! enables it on the host (docs/robustness.md). Checks what robustBufferAccess guarantees: the
//! in-range results are exact, every out-of-range read returned 0 or a value that was inside
//! the buffer, the buffer holds only its own values or the out-of-range values written, and
//! the device still works afterwards (a SAXPY over n elements). Prints
//! `robust OK n=<invocations> oob_reads=<k> zero=<z> in_buffer=<b> range=<elements>
//! w_changed=<c>` (c: elements of the buffer an out-of-range write landed on).
//!
//! The scan (shaders/scan_block.comp, scan_add.comp): each 1024-element block is scanned in
//! place and its total written to the next level's array; levels repeat until one block is
//! left; then, from the top down, each block adds the scanned total of the blocks before it.

use std::time::{Duration, Instant};

use ash::vk;
use venus_testapps::gpu::{
    arg, exit_on_error, ms, push_u32, Buffer, ComputePipeline, Error, Gpu, Result,
};

const SAXPY_SPV: &[u8] = include_bytes!("../../shaders/saxpy.comp.spv");
const SCAN_BLOCK_SPV: &[u8] = include_bytes!("../../shaders/scan_block.comp.spv");
const SCAN_ADD_SPV: &[u8] = include_bytes!("../../shaders/scan_add.comp.spv");
const ROBUST_SPV: &[u8] = include_bytes!("../../shaders/robust.comp.spv");
/// Floats in the buffer the `robust` part accesses out of range (4 KiB).
const ROBUST_W: u64 = 1024;
/// The out-of-range element offsets it writes and reads at (1 GiB, and 12 GiB: a byte
/// offset that wraps to 0 in 32 bits).
const ROBUST_FAR: [u32; 2] = [1 << 28, 3 << 30];
/// What it writes out of range, at each offset.
const ROBUST_WRITTEN: [f32; 2] = [-7.0, -9.0];
/// Elements per scan block (256 invocations × 4).
const BLOCK: u64 = 1024;
/// The SAXPY factor (small, so every result stays an exact f32 integer).
const A: f32 = 2.0;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    exit_on_error("venus-compute", run(&args));
}

fn run(args: &[String]) -> Result<()> {
    let what = args
        .first()
        .filter(|a| !a.starts_with("--"))
        .map_or("all", String::as_str);
    let n: u64 = arg(args, "--n", 16 << 20)?;
    let reps: u32 = arg(args, "--reps", 3)?;
    if n == 0 || reps == 0 || n > u64::from(u32::MAX / 4) {
        return Err(Error::Other(
            "--n and --reps must be positive (n < 1 Gi)".into(),
        ));
    }
    let gpu = Gpu::new(c"venus-compute")?;
    eprintln!("device: {}", gpu.device_name());
    if matches!(what, "saxpy" | "all") {
        saxpy(&gpu, n, reps)?;
    }
    if matches!(what, "scan" | "all") {
        scan(&gpu, n, reps)?;
    }
    if what == "robust" {
        robust(&gpu, reps)?;
        saxpy(&gpu, n, 1)?;
    }
    if !matches!(what, "saxpy" | "scan" | "all" | "robust") {
        return Err(Error::Other(format!("unknown part {what:?}")));
    }
    Ok(())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn saxpy(gpu: &Gpu, n: u64, reps: u32) -> Result<()> {
    let mut x = gpu.host_buffer(n * 4)?;
    let mut y = gpu.host_buffer(n * 4)?;
    for (i, v) in x.floats_mut().iter_mut().enumerate() {
        *v = (i % 1000) as f32;
    }
    for (i, v) in y.floats_mut().iter_mut().enumerate() {
        *v = (i % 777) as f32;
    }
    let pipe = ComputePipeline::new(gpu, SAXPY_SPV, 2, 8, 1)?;
    let set = pipe.set(gpu, &[x.buffer, y.buffer])?;
    let mut push = A.to_le_bytes().to_vec();
    push.extend((n as u32).to_le_bytes());
    let groups = n.div_ceil(256).min(4096) as u32;
    let mut times = Vec::new();
    for _ in 0..reps {
        let cmd = gpu.begin()?;
        pipe.dispatch(gpu, cmd, set, &push, groups);
        gpu.barrier(
            cmd,
            (
                vk::PipelineStageFlags::COMPUTE_SHADER,
                vk::AccessFlags::SHADER_WRITE,
            ),
            (vk::PipelineStageFlags::HOST, vk::AccessFlags::HOST_READ),
        );
        let start = Instant::now();
        gpu.submit_wait(cmd)?;
        times.push(start.elapsed());
    }
    let result = check_saxpy(&x, &y, reps);
    pipe.destroy(gpu);
    x.destroy(gpu);
    y.destroy(gpu);
    result?;
    let t = median(times);
    // Reads x and y, writes y: 12 bytes per element.
    let gbps = (12 * n) as f64 / t.as_secs_f64() / 1e9;
    println!(
        "saxpy OK n={n} reps={reps} time_ms={:.3} gbps={gbps:.3}",
        ms(t)
    );
    Ok(())
}

fn check_saxpy(x: &Buffer, y: &Buffer, reps: u32) -> Result<()> {
    let (x, y) = (x.floats(), y.floats());
    for (i, (&xv, &yv)) in x.iter().zip(y).enumerate() {
        let want = (i % 777) as f32 + reps as f32 * A * xv;
        if yv != want {
            return Err(Error::Mismatch(format!(
                "saxpy y[{i}] = {yv}, want {want} (x = {xv})"
            )));
        }
    }
    Ok(())
}

/// The out-of-range part (see the module doc), `reps` dispatches of [`ROBUST_W`] invocations.
fn robust(gpu: &Gpu, reps: u32) -> Result<()> {
    let n = ROBUST_W;
    let mut x = gpu.host_buffer(n * 4)?;
    let mut w = gpu.host_buffer(ROBUST_W * 4)?;
    let r = gpu.host_buffer(n * 16)?;
    for (i, v) in x.floats_mut().iter_mut().enumerate() {
        *v = i as f32;
    }
    for (k, v) in w.floats_mut().iter_mut().enumerate() {
        *v = robust_initial(k);
    }
    let pipe = ComputePipeline::new(gpu, ROBUST_SPV, 3, 12, 1)?;
    let result = (|| {
        let set = pipe.set(gpu, &[x.buffer, w.buffer, r.buffer])?;
        let push = push_u32(&[n as u32, ROBUST_FAR[0], ROBUST_FAR[1]]);
        for _ in 0..reps {
            let cmd = gpu.begin()?;
            pipe.dispatch(gpu, cmd, set, &push, n.div_ceil(64) as u32);
            gpu.barrier(
                cmd,
                (
                    vk::PipelineStageFlags::COMPUTE_SHADER,
                    vk::AccessFlags::SHADER_WRITE,
                ),
                (vk::PipelineStageFlags::HOST, vk::AccessFlags::HOST_READ),
            );
            gpu.submit_wait(cmd)?;
        }
        check_robust(x.floats(), w.floats(), r.floats())
    })();
    pipe.destroy(gpu);
    x.destroy(gpu);
    w.destroy(gpu);
    r.destroy(gpu);
    let (zero, in_buffer, changed) = result?;
    println!(
        "robust OK n={n} oob_reads={} zero={zero} in_buffer={in_buffer} range={ROBUST_W} \
         w_changed={changed}",
        2 * n
    );
    Ok(())
}

/// The value the `robust` part's buffer starts with at element `k`.
fn robust_initial(k: usize) -> f32 {
    1000.0 + k as f32
}

/// Checks what robustBufferAccess guarantees; returns how many out-of-range reads gave 0, how
/// many gave a value from inside the buffer, and how many of the buffer's elements an
/// out-of-range write changed (allowed: it stays inside the buffer).
fn check_robust(x: &[f32], w: &[f32], r: &[f32]) -> Result<(u64, u64, u64)> {
    let inside = |v: f32| {
        ROBUST_WRITTEN.contains(&v) || (0..ROBUST_W as usize).any(|k| robust_initial(k) == v)
    };
    for (k, &v) in w.iter().enumerate() {
        if v != robust_initial(k) && !ROBUST_WRITTEN.contains(&v) {
            return Err(Error::Mismatch(format!(
                "robust: w[{k}] = {v}: neither its own value nor one written out of range"
            )));
        }
    }
    let (mut zero, mut in_buffer) = (0, 0);
    for (i, got) in r.chunks_exact(4).enumerate() {
        let want = x[i] * 2.0 + 1.0;
        if got[0] != want || got[3] != ROBUST_W as f32 {
            return Err(Error::Mismatch(format!(
                "robust: r[{i}] = {got:?}, want [{want}, _, _, {ROBUST_W}] (in range)"
            )));
        }
        for (j, &v) in got[1..3].iter().enumerate() {
            if v == 0.0 {
                zero += 1;
            } else if inside(v) {
                in_buffer += 1;
            } else {
                return Err(Error::Mismatch(format!(
                    "robust: out-of-range read {j} of invocation {i} = {v}: neither 0 nor a \
                     value of the buffer"
                )));
            }
        }
    }
    let changed = w
        .iter()
        .enumerate()
        .filter(|(k, &v)| v != robust_initial(*k))
        .count() as u64;
    Ok((zero, in_buffer, changed))
}

/// The scan's input: small pseudo-random values.
fn scan_input(i: usize) -> u32 {
    ((i as u32).wrapping_mul(2_654_435_761) >> 27) ^ (i as u32 & 3)
}

/// The element counts of every level: n, then the block totals, down to one element.
fn levels(n: u64) -> Vec<u64> {
    let mut sizes = vec![n];
    while *sizes.last().unwrap() > 1 {
        sizes.push(sizes.last().unwrap().div_ceil(BLOCK));
    }
    sizes
}

fn scan(gpu: &Gpu, n: u64, reps: u32) -> Result<()> {
    let sizes = levels(n);
    let mut bufs = Vec::new();
    for &s in &sizes {
        bufs.push(gpu.host_buffer(s * 4)?);
    }
    let passes = sizes.len() - 1;
    let result = scan_passes(gpu, &mut bufs, &sizes, reps);
    for b in bufs {
        b.destroy(gpu);
    }
    let times = result?;
    let t = median(times);
    println!(
        "scan OK n={n} levels={passes} reps={reps} time_ms={:.3} gelems={:.3}",
        ms(t),
        n as f64 / t.as_secs_f64() / 1e9
    );
    Ok(())
}

/// Runs the scan `reps` times (refilling the input each time), checks the last result and
/// returns the GPU times.
fn scan_passes(gpu: &Gpu, bufs: &mut [Buffer], sizes: &[u64], reps: u32) -> Result<Vec<Duration>> {
    let passes = sizes.len().saturating_sub(1).max(1);
    let block = ComputePipeline::new(gpu, SCAN_BLOCK_SPV, 2, 4, passes as u32)?;
    let add = ComputePipeline::new(gpu, SCAN_ADD_SPV, 2, 4, passes as u32)?;
    let result = (|| {
        // Set k scans level k into level k + 1 (a single level scans into itself: n = 1).
        let mut sets = Vec::new();
        for k in 0..passes {
            let next = bufs[(k + 1).min(bufs.len() - 1)].buffer;
            sets.push((
                block.set(gpu, &[bufs[k].buffer, next])?,
                add.set(gpu, &[bufs[k].buffer, next])?,
            ));
        }
        let mut times = Vec::new();
        for _ in 0..reps {
            for (i, v) in bufs[0].words_mut().iter_mut().enumerate() {
                *v = scan_input(i);
            }
            let cmd = gpu.begin()?;
            record_scan(gpu, cmd, (&block, &add), &sets, sizes);
            let start = Instant::now();
            gpu.submit_wait(cmd)?;
            times.push(start.elapsed());
        }
        check_scan(bufs[0].words())?;
        Ok(times)
    })();
    block.destroy(gpu);
    add.destroy(gpu);
    result
}

type SetPair = (vk::DescriptorSet, vk::DescriptorSet);

fn record_scan(
    gpu: &Gpu,
    cmd: vk::CommandBuffer,
    (block, add): (&ComputePipeline, &ComputePipeline),
    sets: &[SetPair],
    sizes: &[u64],
) {
    let compute = (
        vk::PipelineStageFlags::COMPUTE_SHADER,
        vk::AccessFlags::SHADER_WRITE | vk::AccessFlags::SHADER_READ,
    );
    let groups = |k: usize| sizes[k].div_ceil(BLOCK) as u32;
    for (k, set) in sets.iter().enumerate() {
        block.dispatch(gpu, cmd, set.0, &push_u32(&[sizes[k] as u32]), groups(k));
        gpu.barrier(cmd, compute, compute);
    }
    for (k, set) in sets.iter().enumerate().rev().skip(1) {
        add.dispatch(gpu, cmd, set.1, &push_u32(&[sizes[k] as u32]), groups(k));
        gpu.barrier(cmd, compute, compute);
    }
    gpu.barrier(
        cmd,
        compute,
        (vk::PipelineStageFlags::HOST, vk::AccessFlags::HOST_READ),
    );
}

fn check_scan(out: &[u32]) -> Result<()> {
    let mut acc = 0u32;
    for (i, &v) in out.iter().enumerate() {
        acc = acc.wrapping_add(scan_input(i));
        if v != acc {
            return Err(Error::Mismatch(format!("scan out[{i}] = {v}, want {acc}")));
        }
    }
    Ok(())
}
