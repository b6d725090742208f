//! GPU-scale benchmarks through a real Vulkan client, each checked exactly on the CPU, for
//! `scripts/gpu-check.sh` (native vs through venus-server on the same driver):
//! - `stream`: bandwidth-bound SAXPY (`y += 1.0 * x`) over two DEVICE_LOCAL buffers of
//!   `--mib` MiB each, `--batch` dispatches per submission (compute barriers between), the
//!   result copied back in 64 MiB pieces and checked. Prints
//!   `stream OK mib=<m> batch=<b> reps=<r> inflight=<k> time_ms=<..> gbps=<..>` (12 bytes
//!   moved per element and dispatch). `--inflight 1` (default): each submission is waited for
//!   before the next is recorded, `time_ms` is the median submit-to-signal time (a job that
//!   waits after every submission); `--inflight K`: up to K submissions queued (each waits
//!   only for the one K back, as applications keep the GPU fed), `time_ms` is the whole job's
//!   time divided by `reps`.
//! - `flops`: compute-bound (shaders/lcg.comp): `--n` invocations each run `--iters` steps of
//!   four u32 LCG chains; every output checked through the closed form of the iterated map.
//!   Prints `flops OK n=<n> iters=<i> reps=<r> time_ms=<median> gops=<..>` (a multiply and
//!   an add per step and chain).
//! - `upload`: the CPU writes `--mib` MiB into a mapped HOST_VISIBLE|HOST_COHERENT buffer,
//!   then a shader (shaders/sum.comp) reads all of it and sums it; the sum is checked. Prints
//!   `upload OK mib=<m> reps=<r> write_gbps=<..> upload_gbps=<..> time_ms=<median>` (write:
//!   the CPU writes alone; upload: write + submit + the shader's read, end to end).
//!
//! Usage: `venus-gpubench <stream|flops|upload> [--mib M] [--batch B] [--inflight K] [--n N]
//! [--iters I] [--reps R]`; exit status 1 on a mismatch or Vulkan error.

use std::time::{Duration, Instant};

use ash::vk;
use venus_testapps::gpu::{
    arg, exit_on_error, ms, push_u32, Buffer, ComputePipeline, Error, Gpu, Result,
};

const SAXPY_SPV: &[u8] = include_bytes!("../../shaders/saxpy.comp.spv");
const LCG_SPV: &[u8] = include_bytes!("../../shaders/lcg.comp.spv");
const SUM_SPV: &[u8] = include_bytes!("../../shaders/sum.comp.spv");
/// The LCG step the flops shader iterates.
const LCG: (u32, u32) = (1_664_525, 1_013_904_223);
/// The piece size of the stream check's read-back.
const PIECE: u64 = 64 << 20;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    exit_on_error("venus-gpubench", run(&args));
}

fn run(args: &[String]) -> Result<()> {
    let what = args.first().map_or("", String::as_str);
    let reps: u32 = arg(args, "--reps", 5)?;
    if reps == 0 {
        return Err(Error::Other("--reps must be positive".into()));
    }
    let gpu = Gpu::new(c"venus-gpubench")?;
    eprintln!("device: {}", gpu.device_name());
    match what {
        "stream" => stream(
            &gpu,
            arg(args, "--mib", 512)?,
            arg(args, "--batch", 10)?,
            arg(args, "--inflight", 1)?,
            reps,
        ),
        "flops" => flops(
            &gpu,
            arg(args, "--n", 1 << 20)?,
            arg(args, "--iters", 1 << 16)?,
            reps,
        ),
        "upload" => upload(&gpu, arg(args, "--mib", 256)?, reps),
        _ => Err(Error::Other(
            "usage: venus-gpubench <stream|flops|upload> [--mib M] [--batch B] [--inflight K] \
             [--n N] [--iters I] [--reps R]"
                .into(),
        )),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

const COMPUTE_RW: (vk::PipelineStageFlags, vk::AccessFlags) = (
    vk::PipelineStageFlags::COMPUTE_SHADER,
    vk::AccessFlags::from_raw(
        vk::AccessFlags::SHADER_READ.as_raw() | vk::AccessFlags::SHADER_WRITE.as_raw(),
    ),
);
const TRANSFER_W: (vk::PipelineStageFlags, vk::AccessFlags) = (
    vk::PipelineStageFlags::TRANSFER,
    vk::AccessFlags::TRANSFER_WRITE,
);
const HOST_R: (vk::PipelineStageFlags, vk::AccessFlags) =
    (vk::PipelineStageFlags::HOST, vk::AccessFlags::HOST_READ);

fn device_buffer(gpu: &Gpu, size: u64) -> Result<Buffer> {
    gpu.buffer(
        size,
        vk::BufferUsageFlags::STORAGE_BUFFER
            | vk::BufferUsageFlags::TRANSFER_SRC
            | vk::BufferUsageFlags::TRANSFER_DST,
        vk::MemoryPropertyFlags::DEVICE_LOCAL,
    )
}

fn stream(gpu: &Gpu, mib: u64, batch: u32, inflight: u32, reps: u32) -> Result<()> {
    let size = mib.max(1) << 20;
    if size / 4 > u64::from(u32::MAX) || batch == 0 || inflight == 0 {
        return Err(Error::Other(
            "--mib must be < 16 Gi, --batch and --inflight positive".into(),
        ));
    }
    let x = device_buffer(gpu, size)?;
    let y = device_buffer(gpu, size)?;
    let result = stream_run(gpu, &x, &y, batch, inflight, reps);
    x.destroy(gpu);
    y.destroy(gpu);
    let t = median(result?);
    let n = size / 4;
    let gbps = (12 * n * u64::from(batch)) as f64 / t.as_secs_f64() / 1e9;
    println!(
        "stream OK mib={mib} batch={batch} reps={reps} inflight={inflight} time_ms={:.3} \
         gbps={gbps:.3}",
        ms(t)
    );
    Ok(())
}

/// Fills x with 1.0 and y with 0, runs `reps` submissions of `batch` SAXPY dispatches
/// (a = 1), checks y == reps * batch and returns the submissions' times (inflight 1) or the
/// job's time per submission (inflight > 1).
fn stream_run(
    gpu: &Gpu,
    x: &Buffer,
    y: &Buffer,
    batch: u32,
    inflight: u32,
    reps: u32,
) -> Result<Vec<Duration>> {
    let n = x.size / 4;
    let cmd = gpu.begin()?;
    // SAFETY: cmd is recording; both buffers are bound and at least `size` bytes.
    unsafe {
        gpu.device
            .cmd_fill_buffer(cmd, x.buffer, 0, x.size, 1.0f32.to_bits());
        gpu.device.cmd_fill_buffer(cmd, y.buffer, 0, y.size, 0);
    }
    gpu.barrier(cmd, TRANSFER_W, COMPUTE_RW);
    gpu.submit_wait(cmd)?;
    let pipe = ComputePipeline::new(gpu, SAXPY_SPV, 2, 8, 1)?;
    let result = (|| {
        let set = pipe.set(gpu, &[x.buffer, y.buffer])?;
        let mut push = 1.0f32.to_le_bytes().to_vec();
        push.extend((n as u32).to_le_bytes());
        let groups = n.div_ceil(256).min(65_535) as u32;
        if inflight > 1 {
            let record = || -> Result<vk::CommandBuffer> {
                let cmd = gpu.begin()?;
                for _ in 0..batch {
                    pipe.dispatch(gpu, cmd, set, &push, groups);
                    gpu.barrier(cmd, COMPUTE_RW, COMPUTE_RW);
                }
                Ok(cmd)
            };
            return pipelined(gpu, record, inflight, reps).map(|t| vec![t]);
        }
        let mut times = Vec::new();
        for _ in 0..reps {
            let cmd = gpu.begin()?;
            for _ in 0..batch {
                pipe.dispatch(gpu, cmd, set, &push, groups);
                gpu.barrier(cmd, COMPUTE_RW, COMPUTE_RW);
            }
            let start = Instant::now();
            gpu.submit_wait(cmd)?;
            times.push(start.elapsed());
        }
        Ok(times)
    })();
    pipe.destroy(gpu);
    let times = result?;
    check_stream(gpu, y, (reps * batch) as f32)?;
    Ok(times)
}

/// Runs `reps` submissions of what `record` records with up to `inflight` of them queued;
/// returns the whole job's time divided by `reps`.
fn pipelined(
    gpu: &Gpu,
    record: impl Fn() -> Result<vk::CommandBuffer>,
    inflight: u32,
    reps: u32,
) -> Result<Duration> {
    let fences = (0..inflight)
        .map(|_| gpu.fence(false))
        .collect::<Result<Vec<_>>>()?;
    let mut pending = std::collections::VecDeque::new();
    let start = Instant::now();
    let mut result = (|| {
        for i in 0..reps {
            if pending.len() == inflight as usize {
                let (cmd, fence) = pending.pop_front().expect("a pending submission");
                gpu.finish(cmd, fence)?;
            }
            let cmd = record()?;
            let fence = fences[(i % inflight) as usize];
            gpu.submit(cmd, fence)?;
            pending.push_back((cmd, fence));
        }
        Ok(())
    })();
    while let Some((cmd, fence)) = pending.pop_front() {
        let finished = gpu.finish(cmd, fence);
        result = result.and(finished);
    }
    let elapsed = start.elapsed();
    for fence in fences {
        // SAFETY: every submission using the fence has been waited for.
        unsafe { gpu.device.destroy_fence(fence, None) };
    }
    result.map(|()| elapsed / reps)
}

/// Copies `y` back in [`PIECE`]-sized pieces and checks every float is `want`.
fn check_stream(gpu: &Gpu, y: &Buffer, want: f32) -> Result<()> {
    let host = gpu.host_buffer(PIECE.min(y.size))?;
    let result = (|| {
        let mut offset = 0;
        while offset < y.size {
            let len = PIECE.min(y.size - offset);
            let cmd = gpu.begin()?;
            let region = [vk::BufferCopy::default()
                .src_offset(offset)
                .dst_offset(0)
                .size(len)];
            // SAFETY: cmd is recording; the region lies inside both buffers.
            unsafe {
                gpu.device
                    .cmd_copy_buffer(cmd, y.buffer, host.buffer, &region)
            };
            gpu.barrier(cmd, TRANSFER_W, HOST_R);
            gpu.submit_wait(cmd)?;
            let floats = &host.floats()[..(len / 4) as usize];
            if let Some(i) = floats.iter().position(|&v| v != want) {
                return Err(Error::Mismatch(format!(
                    "stream y[{}] = {}, want {want}",
                    offset / 4 + i as u64,
                    floats[i]
                )));
            }
            offset += len;
        }
        Ok(())
    })();
    host.destroy(gpu);
    result
}

/// The LCG step applied `k` times, as one affine map (a, c): x -> a * x + c (wrapping).
fn lcg_power(mut k: u32) -> (u32, u32) {
    let (mut acc, mut base) = ((1u32, 0u32), LCG);
    // Composition: g after f = (g.a * f.a, g.a * f.c + g.c).
    let compose = |g: (u32, u32), f: (u32, u32)| {
        (
            g.0.wrapping_mul(f.0),
            g.0.wrapping_mul(f.1).wrapping_add(g.1),
        )
    };
    while k > 0 {
        if k & 1 == 1 {
            acc = compose(base, acc);
        }
        base = compose(base, base);
        k >>= 1;
    }
    acc
}

fn lcg_expected(i: u32, (a, c): (u32, u32)) -> u32 {
    let f = |x: u32| a.wrapping_mul(x).wrapping_add(c);
    f(i) ^ f(i ^ 0x9e37_79b9) ^ f(i.wrapping_mul(3).wrapping_add(1)) ^ f(!i)
}

fn flops(gpu: &Gpu, n: u32, iters: u32, reps: u32) -> Result<()> {
    if n == 0 {
        return Err(Error::Other("--n must be positive".into()));
    }
    let mut out = gpu.host_buffer(u64::from(n) * 4)?;
    out.words_mut().fill(0);
    let pipe = ComputePipeline::new(gpu, LCG_SPV, 1, 8, 1)?;
    let result = (|| {
        let set = pipe.set(gpu, &[out.buffer])?;
        let mut times = Vec::new();
        for _ in 0..reps {
            let cmd = gpu.begin()?;
            pipe.dispatch(gpu, cmd, set, &push_u32(&[n, iters]), n.div_ceil(256));
            gpu.barrier(cmd, COMPUTE_RW, HOST_R);
            let start = Instant::now();
            gpu.submit_wait(cmd)?;
            times.push(start.elapsed());
        }
        let map = lcg_power(iters);
        if let Some((i, &v)) = (0u32..)
            .zip(out.words())
            .find(|&(i, &v)| v != lcg_expected(i, map))
        {
            return Err(Error::Mismatch(format!(
                "flops o[{i}] = {v:#x}, want {:#x}",
                lcg_expected(i, map)
            )));
        }
        Ok(times)
    })();
    pipe.destroy(gpu);
    out.destroy(gpu);
    let t = median(result?);
    let ops = 8.0 * f64::from(n) * f64::from(iters);
    println!(
        "flops OK n={n} iters={iters} reps={reps} time_ms={:.3} gops={:.3}",
        ms(t),
        ops / t.as_secs_f64() / 1e9
    );
    Ok(())
}

fn upload(gpu: &Gpu, mib: u64, reps: u32) -> Result<()> {
    let size = mib.max(1) << 20;
    let mut data = gpu.host_buffer(size)?;
    let mut total = gpu.host_buffer(4)?;
    let pipe = ComputePipeline::new(gpu, SUM_SPV, 2, 4, 1);
    let result = pipe.and_then(|pipe| {
        let r = upload_run(gpu, &pipe, &mut data, &mut total, reps);
        pipe.destroy(gpu);
        r
    });
    data.destroy(gpu);
    total.destroy(gpu);
    let (write, all) = result?;
    let (write, all) = (median(write), median(all));
    let gbps = |t: Duration| size as f64 / t.as_secs_f64() / 1e9;
    println!(
        "upload OK mib={mib} reps={reps} write_gbps={:.3} upload_gbps={:.3} time_ms={:.3}",
        gbps(write),
        gbps(all),
        ms(all)
    );
    Ok(())
}

/// Each repetition: write a fresh pattern, sum it on the GPU, check the sum. Returns the
/// write times and the whole (write + GPU) times.
fn upload_run(
    gpu: &Gpu,
    pipe: &ComputePipeline,
    data: &mut Buffer,
    total: &mut Buffer,
    reps: u32,
) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let set = pipe.set(gpu, &[data.buffer, total.buffer])?;
    let n4 = (data.size / 16) as u32;
    let (mut writes, mut alls) = (Vec::new(), Vec::new());
    for rep in 0..reps {
        let seed = rep.wrapping_mul(0x9e37_79b9) | 1;
        let pattern = |i: u32| i.wrapping_mul(seed) ^ rep;
        let want = (0..n4 * 4).fold(0u32, |acc, i| acc.wrapping_add(pattern(i)));
        total.words_mut()[0] = 0;
        let start = Instant::now();
        for (i, w) in (0u32..).zip(data.words_mut()) {
            *w = pattern(i);
        }
        writes.push(start.elapsed());
        let cmd = gpu.begin()?;
        pipe.dispatch(gpu, cmd, set, &push_u32(&[n4]), n4.div_ceil(256).min(1024));
        gpu.barrier(cmd, COMPUTE_RW, HOST_R);
        gpu.submit_wait(cmd)?;
        alls.push(start.elapsed());
        let got = total.words()[0];
        if got != want {
            return Err(Error::Mismatch(format!(
                "upload rep {rep}: sum {got:#x}, want {want:#x}"
            )));
        }
    }
    Ok((writes, alls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcg_power_matches_iteration() {
        for k in [0u32, 1, 2, 3, 17, 1000] {
            let mut x = 12345u32;
            for _ in 0..k {
                x = x.wrapping_mul(LCG.0).wrapping_add(LCG.1);
            }
            let (a, c) = lcg_power(k);
            assert_eq!(a.wrapping_mul(12345).wrapping_add(c), x, "k = {k}");
        }
    }
}
