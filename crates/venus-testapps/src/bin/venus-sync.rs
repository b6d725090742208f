//! Synchronisation through a real Vulkan client. Subcommands:
//! - `timeline`: a chain of dependent compute steps handed between two threads through a
//!   timeline semaphore (a host signal starts it; thread A's submissions wait on the GPU,
//!   thread B waits on the host first; two queues when the family has several); the final
//!   content is checked against the CPU's. Prints `timeline OK steps=<n> queues=<q>`.
//! - `threads`: command buffers recorded concurrently on 4 threads (one pool each), submitted
//!   together, each region checked. Prints `threads OK threads=4`.
//! - `events`: host `vkSetEvent` waited by `vkCmdWaitEvents`, `vkCmdSetEvent` and
//!   `vkCmdResetEvent` seen by `vkGetEventStatus`, host `vkResetEvent`. Prints `events OK`.
//! - `queries`: timestamps and (when available) compute-invocation pipeline statistics read
//!   with `vkGetQueryPoolResults` (waiting, and with availability). Prints `queries OK ...`.
//! - `latency [--count N]`: N small submissions, each waited for with its fence. Prints
//!   `latency OK submits=<N> median_us=<..> p90_us=<..> mean_us=<..>`.
//! - `wait [--ms M]`: a fence on a submission that waits for a timeline value the host
//!   signals after M ms; prints `WAIT_BEGIN` before waiting and `WAIT_END waited_ms=<..>
//!   client_cpu_ms=<..>` after (for the benchmark's server CPU measurement).
//!
//! - `submit-loop`: keeps [`IN_FLIGHT`] small submissions queued (each command buffer with
//!   its own fence, submitted again once that fence signalled) until killed; prints
//!   `SUBMITTING` once the first round is queued (for the SIGKILL-while-submitting test).
//!
//! - `stuck <timeline|event|binary> <hang|exit>`: submits a fill that can never run: it waits
//!   on a timeline-semaphore value nobody signals, on an event nobody sets (`vkCmdWaitEvents`)
//!   or on a binary semaphore with no signal pending; then prints `STUCK` and blocks forever
//!   (`hang`, for a SIGKILL) or exits at once without waiting or destroying anything (`exit`).
//!   For the server's teardown of work that can never finish.
//!
//! Exit status 1 on any mismatch or Vulkan error.

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ash::vk;
use venus_testapps::gpu::{
    arg, exit_on_error, ms, push_u32, ComputePipeline, Error, Gpu, Result, VkContext,
};

const OP_SPV: &[u8] = include_bytes!("../../shaders/op.comp.spv");
const STEPS: u32 = 16;
const WORDS: u32 = 4096;
const THREADS: u32 = 4;
const REGION: u32 = 65536;
/// Submissions `submit-loop` keeps queued.
const IN_FLIGHT: usize = 4;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    exit_on_error("venus-sync", run(&args));
}

fn run(args: &[String]) -> Result<()> {
    let part = args.first().map_or("", String::as_str);
    let gpu = Gpu::new(c"venus-sync")?;
    eprintln!("device: {}", gpu.device_name());
    match part {
        "timeline" => timeline(&gpu),
        "threads" => threads(&gpu),
        "events" => events(&gpu),
        "queries" => queries(&gpu),
        "latency" => latency(&gpu, arg(args, "--count", 1000)?),
        "wait" => wait(&gpu, arg(args, "--ms", 2000)?),
        "submit-loop" => submit_loop(&gpu),
        "stuck" => stuck(
            &gpu,
            args.get(1).map_or("", String::as_str),
            args.get(2).map_or("", String::as_str),
        ),
        _ => Err(Error::Other(
            "usage: venus-sync <timeline|threads|events|queries|latency|wait|submit-loop|stuck>"
                .into(),
        )),
    }
}

/// A command pool for one thread.
fn pool(gpu: &Gpu) -> Result<vk::CommandPool> {
    let info = vk::CommandPoolCreateInfo::default().queue_family_index(gpu.queue_family);
    // SAFETY: a valid create info on our device.
    unsafe { gpu.device.create_command_pool(&info, None) }.ctx("vkCreateCommandPool")
}

/// A primary command buffer from `pool`, begun.
fn begin(gpu: &Gpu, pool: vk::CommandPool) -> Result<vk::CommandBuffer> {
    let info = vk::CommandBufferAllocateInfo::default()
        .command_pool(pool)
        .level(vk::CommandBufferLevel::PRIMARY)
        .command_buffer_count(1);
    // SAFETY: the pool is used by the calling thread only.
    unsafe {
        let cmd = gpu
            .device
            .allocate_command_buffers(&info)
            .ctx("vkAllocateCommandBuffers")?[0];
        gpu.device
            .begin_command_buffer(cmd, &vk::CommandBufferBeginInfo::default())
            .ctx("vkBeginCommandBuffer")?;
        Ok(cmd)
    }
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

/// Step k of the chain: x * mul + add (u32 wrapping).
fn step(k: u32) -> (u32, u32) {
    (3 + 2 * (k % 3), k * 7 + 1)
}

fn timeline(gpu: &Gpu) -> Result<()> {
    let mut data = gpu.host_buffer(u64::from(WORDS) * 4)?;
    for (i, w) in data.words_mut().iter_mut().enumerate() {
        *w = i as u32;
    }
    let pipe = ComputePipeline::new(gpu, OP_SPV, 1, 16, 1)?;
    let set = pipe.set(gpu, &[data.buffer])?;
    let sem = gpu.timeline(0)?;
    let two = gpu.queues.len() >= 2;
    let queues = [
        Mutex::new(gpu.queues[0]),
        Mutex::new(gpu.queues[usize::from(two)]),
    ];
    let submitted = AtomicU32::new(0);
    let result = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|t| {
                let (pipe, queues, submitted) = (&pipe, &queues, &submitted);
                let shared = Shared {
                    pipe,
                    set,
                    sem,
                    queue: &queues[t as usize],
                    submitted,
                };
                s.spawn(move || chain_thread(gpu, shared, t))
            })
            .collect();
        // The chain starts when the host signals 1.
        std::thread::sleep(Duration::from_millis(20));
        let signal = vk::SemaphoreSignalInfo::default().semaphore(sem).value(1);
        // SAFETY: a timeline semaphore of ours; 1 is above its current value (0).
        let started = unsafe { gpu.device.signal_semaphore(&signal) }.ctx("vkSignalSemaphore");
        let joined: Vec<Result<vk::CommandPool>> = workers
            .into_iter()
            .map(|w| w.join().expect("worker panicked"))
            .collect();
        for (t, e) in joined.iter().enumerate() {
            if let Err(e) = e {
                eprintln!("venus-sync: chain thread {t}: {e}");
            }
        }
        started?;
        let pools = joined.into_iter().collect::<Result<Vec<_>>>()?;
        wait_value(gpu, sem, u64::from(STEPS) + 1, 30_000_000_000)?;
        Ok(pools)
    });
    // SAFETY: everything submitted has completed (the last value was waited for, or a
    // worker failed and the device is idled first).
    unsafe {
        let _ = gpu.device.device_wait_idle();
        for p in result.iter().flatten() {
            gpu.device.destroy_command_pool(*p, None);
        }
        gpu.device.destroy_semaphore(sem, None);
    }
    let check = check_chain(data.words());
    pipe.destroy(gpu);
    data.destroy(gpu);
    result?;
    check?;
    println!(
        "timeline OK steps={STEPS} queues={}",
        if two { 2 } else { 1 }
    );
    Ok(())
}

fn wait_value(gpu: &Gpu, sem: vk::Semaphore, value: u64, timeout: u64) -> Result<()> {
    let (sems, values) = ([sem], [value]);
    let info = vk::SemaphoreWaitInfo::default()
        .semaphores(&sems)
        .values(&values);
    // SAFETY: a timeline semaphore of ours.
    match unsafe { gpu.device.wait_semaphores(&info, timeout) } {
        Ok(()) => Ok(()),
        Err(vk::Result::TIMEOUT) => {
            // SAFETY: as above.
            let now = unsafe { gpu.device.get_semaphore_counter_value(sem) };
            Err(Error::Mismatch(format!(
                "timeline value {now:?} never reached {value} (waited {timeout} ns)"
            )))
        }
        Err(result) => Err(Error::Vk {
            what: "vkWaitSemaphores",
            result,
        }),
    }
}

/// What the two chain threads share.
#[derive(Clone, Copy)]
struct Shared<'a> {
    pipe: &'a ComputePipeline,
    set: vk::DescriptorSet,
    sem: vk::Semaphore,
    queue: &'a Mutex<vk::Queue>,
    /// Steps submitted so far.
    submitted: &'a AtomicU32,
}

/// Thread `t` submits steps t, t + 2, ...: step k waits (on the GPU) for value k + 1 and
/// signals k + 2. Thread 0 submits step k once step k - 1 is submitted (a submission that
/// waits before its signal is submitted may block in the driver, and it holds the queue);
/// thread 1 waits for value k + 1 on the host before submitting. Returns its pool.
fn chain_thread(gpu: &Gpu, sh: Shared, t: u32) -> Result<vk::CommandPool> {
    let Shared {
        pipe,
        set,
        sem,
        queue,
        submitted,
    } = sh;
    let pool = pool(gpu)?;
    for k in (t..STEPS).step_by(2) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while t == 0 && submitted.load(Ordering::Acquire) < k {
            if Instant::now() > deadline {
                return Err(Error::Mismatch(format!(
                    "step {} was never submitted",
                    k - 1
                )));
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        let cmd = begin(gpu, pool)?;
        let (mul, add) = step(k);
        pipe.dispatch(
            gpu,
            cmd,
            set,
            &push_u32(&[0, WORDS, mul, add]),
            WORDS.div_ceil(64),
        );
        gpu.barrier(cmd, COMPUTE_RW, HOST_R);
        // SAFETY: cmd is recording and from this thread's pool.
        unsafe { gpu.device.end_command_buffer(cmd) }.ctx("vkEndCommandBuffer")?;
        // Both threads wait on the host for the value their step waits for, so no GPU wait
        // is submitted before its signal: a wait-before-signal submission intermittently never
        // completes through Venus on lavapipe (about 1 run in 50 under load; the host executes
        // the submission and the later vkSignalSemaphore in order). See docs/known-issues.md.
        wait_value(gpu, sem, u64::from(k) + 1, 5_000_000_000)?;
        let (cmds, sems) = ([cmd], [sem]);
        let (waits, signals) = ([u64::from(k) + 1], [u64::from(k) + 2]);
        let stages = [vk::PipelineStageFlags::COMPUTE_SHADER];
        let mut values = vk::TimelineSemaphoreSubmitInfo::default()
            .wait_semaphore_values(&waits)
            .signal_semaphore_values(&signals);
        let submit = [vk::SubmitInfo::default()
            .wait_semaphores(&sems)
            .wait_dst_stage_mask(&stages)
            .command_buffers(&cmds)
            .signal_semaphores(&sems)
            .push_next(&mut values)];
        let q = queue.lock().unwrap();
        // SAFETY: the queue is externally synchronised by the mutex; cmd stays alive until
        // its pool is destroyed after the device is idle.
        unsafe { gpu.device.queue_submit(*q, &submit, vk::Fence::null()) }.ctx("vkQueueSubmit")?;
        submitted.fetch_add(1, Ordering::Release);
    }
    Ok(pool)
}

fn check_chain(words: &[u32]) -> Result<()> {
    for (i, &w) in words.iter().enumerate() {
        let want = (0..STEPS).fold(i as u32, |x, k| {
            let (mul, add) = step(k);
            x.wrapping_mul(mul).wrapping_add(add)
        });
        if w != want {
            return Err(Error::Mismatch(format!(
                "chain word {i} = {w}, want {want}"
            )));
        }
    }
    Ok(())
}

fn threads(gpu: &Gpu) -> Result<()> {
    let mut data = gpu.host_buffer(u64::from(THREADS * REGION) * 4)?;
    data.words_mut().fill(0xdead_beef);
    let pipe = ComputePipeline::new(gpu, OP_SPV, 1, 16, 1)?;
    let set = pipe.set(gpu, &[data.buffer])?;
    let buffer = data.buffer;
    let recorded: Vec<Result<(vk::CommandPool, vk::CommandBuffer)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let pipe = &pipe;
                s.spawn(move || record_region(gpu, pipe, set, buffer, t))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("recorder panicked"))
            .collect()
    });
    let ok: Vec<_> = recorded
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .copied()
        .collect();
    let cmds: Vec<_> = ok.iter().map(|&(_, c)| c).collect();
    let submitted = if ok.len() == recorded.len() {
        submit_all(gpu, &cmds)
    } else {
        Ok(())
    };
    // SAFETY: the submission (if any) was waited for; the pools are no longer used.
    unsafe {
        for (p, _) in &ok {
            gpu.device.destroy_command_pool(*p, None);
        }
    }
    let check = check_regions(data.words());
    pipe.destroy(gpu);
    data.destroy(gpu);
    for r in recorded {
        r?;
    }
    submitted?;
    check?;
    println!("threads OK threads={THREADS}");
    Ok(())
}

/// What thread t's region holds in the end: fill t + 1, then x * (t + 2) + t, then the
/// first 4 words overwritten with `0x1000 + t`.
fn region_word(t: u32, i: u32) -> u32 {
    if i < 4 {
        0x1000 + t
    } else {
        (t + 1) * (t + 2) + t
    }
}

fn record_region(
    gpu: &Gpu,
    pipe: &ComputePipeline,
    set: vk::DescriptorSet,
    buffer: vk::Buffer,
    t: u32,
) -> Result<(vk::CommandPool, vk::CommandBuffer)> {
    let pool = pool(gpu)?;
    let cmd = begin(gpu, pool)?;
    let (offset, bytes) = (u64::from(t * REGION) * 4, u64::from(REGION) * 4);
    let update: Vec<u8> = push_u32(&[0x1000 + t; 4]);
    let d = &gpu.device;
    // SAFETY: cmd is recording, from this thread's own pool; the buffer is alive.
    unsafe { d.cmd_fill_buffer(cmd, buffer, offset, bytes, t + 1) };
    gpu.barrier(cmd, TRANSFER_W, COMPUTE_RW);
    let push = push_u32(&[t * REGION, REGION, t + 2, t]);
    pipe.dispatch(gpu, cmd, set, &push, REGION / 64);
    gpu.barrier(cmd, COMPUTE_RW, TRANSFER_W);
    // SAFETY: as above; the update is 16 bytes at a 4-aligned offset.
    unsafe {
        d.cmd_update_buffer(cmd, buffer, offset, &update);
    }
    gpu.barrier(cmd, TRANSFER_W, HOST_R);
    // SAFETY: cmd is recording.
    unsafe { d.end_command_buffer(cmd) }.ctx("vkEndCommandBuffer")?;
    Ok((pool, cmd))
}

fn submit_all(gpu: &Gpu, cmds: &[vk::CommandBuffer]) -> Result<()> {
    let fence = gpu.fence(false)?;
    let submit = [vk::SubmitInfo::default().command_buffers(cmds)];
    // SAFETY: the command buffers are executable; the fence is waited for before it is
    // destroyed.
    unsafe {
        let r = gpu
            .device
            .queue_submit(gpu.queue(), &submit, fence)
            .ctx("vkQueueSubmit")
            .and_then(|()| {
                gpu.device
                    .wait_for_fences(&[fence], true, u64::MAX)
                    .ctx("vkWaitForFences")
            });
        if r.is_err() {
            let _ = gpu.device.device_wait_idle();
        }
        gpu.device.destroy_fence(fence, None);
        r
    }
}

fn check_regions(words: &[u32]) -> Result<()> {
    for (j, &w) in words.iter().enumerate() {
        let (t, i) = (j as u32 / REGION, j as u32 % REGION);
        let want = region_word(t, i);
        if w != want {
            return Err(Error::Mismatch(format!(
                "thread {t} region word {i} = {w:#x}, want {want:#x}"
            )));
        }
    }
    Ok(())
}

fn event_set(gpu: &Gpu, event: vk::Event) -> Result<bool> {
    // SAFETY: an event of ours.
    unsafe { gpu.device.get_event_status(event) }.ctx("vkGetEventStatus")
}

fn events(gpu: &Gpu) -> Result<()> {
    let d = &gpu.device;
    // SAFETY: valid create infos on our device.
    let (host_ev, dev_ev) = unsafe {
        (
            d.create_event(&vk::EventCreateInfo::default(), None)
                .ctx("vkCreateEvent")?,
            d.create_event(&vk::EventCreateInfo::default(), None)
                .ctx("vkCreateEvent")?,
        )
    };
    let mut data = gpu.host_buffer(4096)?;
    data.words_mut().fill(0);
    let result = event_steps(gpu, host_ev, dev_ev, data.buffer).and_then(|()| {
        match data.words().iter().position(|&w| w != 0xabcd_0123) {
            None => Ok(()),
            Some(i) => Err(Error::Mismatch(format!(
                "word {i} = {:#x}",
                data.words()[i]
            ))),
        }
    });
    // SAFETY: all submissions were waited for.
    unsafe {
        let _ = d.device_wait_idle();
        d.destroy_event(host_ev, None);
        d.destroy_event(dev_ev, None);
    }
    data.destroy(gpu);
    result?;
    println!("events OK");
    Ok(())
}

fn expect_event(gpu: &Gpu, event: vk::Event, set: bool, when: &str) -> Result<()> {
    let got = event_set(gpu, event)?;
    if got != set {
        return Err(Error::Mismatch(format!(
            "event is {} {when}",
            if got { "set" } else { "reset" }
        )));
    }
    Ok(())
}

fn event_steps(gpu: &Gpu, host_ev: vk::Event, dev_ev: vk::Event, buffer: vk::Buffer) -> Result<()> {
    let d = &gpu.device;
    expect_event(gpu, host_ev, false, "after creation")?;
    expect_event(gpu, dev_ev, false, "after creation")?;
    // SAFETY: events of ours.
    unsafe { d.set_event(host_ev) }.ctx("vkSetEvent")?;
    expect_event(gpu, host_ev, true, "after vkSetEvent")?;
    let cmd = gpu.begin()?;
    // SAFETY: cmd is recording; the host event was set before the submission.
    unsafe {
        d.cmd_wait_events(
            cmd,
            &[host_ev],
            vk::PipelineStageFlags::HOST,
            vk::PipelineStageFlags::TRANSFER,
            &[],
            &[],
            &[],
        );
        d.cmd_fill_buffer(cmd, buffer, 0, vk::WHOLE_SIZE, 0xabcd_0123);
        d.cmd_set_event(cmd, dev_ev, vk::PipelineStageFlags::TRANSFER);
    }
    gpu.barrier(cmd, TRANSFER_W, HOST_R);
    gpu.submit_wait(cmd)?;
    expect_event(gpu, dev_ev, true, "after vkCmdSetEvent completed")?;
    // SAFETY: an event of ours, not in use by pending work.
    unsafe { d.reset_event(dev_ev) }.ctx("vkResetEvent")?;
    expect_event(gpu, dev_ev, false, "after vkResetEvent")?;
    let cmd = gpu.begin()?;
    // SAFETY: cmd is recording.
    unsafe { d.cmd_reset_event(cmd, host_ev, vk::PipelineStageFlags::TRANSFER) };
    gpu.submit_wait(cmd)?;
    expect_event(gpu, host_ev, false, "after vkCmdResetEvent completed")
}

fn queries(gpu: &Gpu) -> Result<()> {
    let d = &gpu.device;
    let ts_bits = {
        // SAFETY: a query on our physical device.
        let families = unsafe {
            gpu.instance
                .get_physical_device_queue_family_properties(gpu.physical)
        };
        families[gpu.queue_family as usize].timestamp_valid_bits
    };
    let stats = gpu.pipeline_statistics;
    let ts_info = vk::QueryPoolCreateInfo::default()
        .query_type(vk::QueryType::TIMESTAMP)
        .query_count(2);
    let st_info = vk::QueryPoolCreateInfo::default()
        .query_type(vk::QueryType::PIPELINE_STATISTICS)
        .query_count(1)
        .pipeline_statistics(vk::QueryPipelineStatisticFlags::COMPUTE_SHADER_INVOCATIONS);
    let mut data = gpu.host_buffer(4096 * 4)?;
    data.words_mut().fill(0);
    let pipe = ComputePipeline::new(gpu, OP_SPV, 1, 16, 1)?;
    let set = pipe.set(gpu, &[data.buffer])?;
    // SAFETY: valid create infos on our device (statistics only when the feature is on).
    let pools = unsafe {
        let ts = d
            .create_query_pool(&ts_info, None)
            .ctx("vkCreateQueryPool")?;
        let st = if stats {
            d.create_query_pool(&st_info, None)
                .ctx("vkCreateQueryPool")?
        } else {
            vk::QueryPool::null()
        };
        (ts, st)
    };
    let result = query_steps(gpu, &pipe, set, pools, ts_bits);
    // SAFETY: the work was waited for.
    unsafe {
        let _ = d.device_wait_idle();
        d.destroy_query_pool(pools.0, None);
        if stats {
            d.destroy_query_pool(pools.1, None);
        }
    }
    pipe.destroy(gpu);
    data.destroy(gpu);
    let (elapsed, invocations) = result?;
    println!(
        "queries OK timestamp_bits={ts_bits} elapsed_ticks={elapsed} \
         compute_invocations={}",
        invocations.map_or("unsupported".to_string(), |n| n.to_string())
    );
    Ok(())
}

/// Records timestamps around a 16-workgroup dispatch (1024 invocations) inside a pipeline
/// statistics query; returns the ticks between the timestamps and the invocation count.
fn query_steps(
    gpu: &Gpu,
    pipe: &ComputePipeline,
    set: vk::DescriptorSet,
    (ts, st): (vk::QueryPool, vk::QueryPool),
    ts_bits: u32,
) -> Result<(u64, Option<u64>)> {
    let d = &gpu.device;
    let cmd = gpu.begin()?;
    // SAFETY: cmd is recording; the pools are ours; queries are reset before use.
    unsafe {
        d.cmd_reset_query_pool(cmd, ts, 0, 2);
        if st != vk::QueryPool::null() {
            d.cmd_reset_query_pool(cmd, st, 0, 1);
            d.cmd_begin_query(cmd, st, 0, vk::QueryControlFlags::empty());
        }
        d.cmd_write_timestamp(cmd, vk::PipelineStageFlags::TOP_OF_PIPE, ts, 0);
        pipe.dispatch(gpu, cmd, set, &push_u32(&[0, 1000, 3, 1]), 16);
        d.cmd_write_timestamp(cmd, vk::PipelineStageFlags::BOTTOM_OF_PIPE, ts, 1);
        if st != vk::QueryPool::null() {
            d.cmd_end_query(cmd, st, 0);
        }
    }
    gpu.submit_wait(cmd)?;
    let mut stamps = [0u64; 2];
    let mut avail = [[0u64; 2]; 2];
    let wait = vk::QueryResultFlags::TYPE_64 | vk::QueryResultFlags::WAIT;
    // SAFETY: the pools are ours; the slices match the query counts and flags.
    unsafe {
        d.get_query_pool_results(ts, 0, &mut stamps, wait)
            .ctx("vkGetQueryPoolResults")?;
        d.get_query_pool_results(
            ts,
            0,
            &mut avail,
            vk::QueryResultFlags::TYPE_64 | vk::QueryResultFlags::WITH_AVAILABILITY,
        )
        .ctx("vkGetQueryPoolResults")?;
    }
    if ts_bits > 0
        && (stamps[1] < stamps[0] || avail[0] != [stamps[0], 1] || avail[1] != [stamps[1], 1])
    {
        return Err(Error::Mismatch(format!(
            "timestamps {stamps:?}, with availability {avail:?}"
        )));
    }
    if st == vk::QueryPool::null() {
        return Ok((stamps[1].wrapping_sub(stamps[0]), None));
    }
    let mut inv = [[0u64; 2]; 1];
    // SAFETY: as above, one query with availability.
    unsafe {
        d.get_query_pool_results(
            st,
            0,
            &mut inv,
            wait | vk::QueryResultFlags::WITH_AVAILABILITY,
        )
        .ctx("vkGetQueryPoolResults")?;
    }
    if inv[0] != [1024, 1] {
        return Err(Error::Mismatch(format!(
            "compute invocations (value, available) = {:?}, want [1024, 1]",
            inv[0]
        )));
    }
    Ok((stamps[1].wrapping_sub(stamps[0]), Some(inv[0][0])))
}

fn latency(gpu: &Gpu, count: u32) -> Result<()> {
    let mut data = gpu.host_buffer(256)?;
    data.words_mut().fill(0);
    let pool = pool(gpu)?;
    let fence = gpu.fence(false)?;
    let d = &gpu.device;
    let result = (|| {
        let cmd = begin(gpu, pool)?;
        // SAFETY: cmd is recording (then ended); submitted once at a time, waited for each.
        unsafe {
            d.cmd_fill_buffer(cmd, data.buffer, 0, 16, 7);
            d.end_command_buffer(cmd).ctx("vkEndCommandBuffer")?;
        }
        let cmds = [cmd];
        let submit = [vk::SubmitInfo::default().command_buffers(&cmds)];
        let mut times = Vec::with_capacity(count as usize);
        for _ in 0..count.max(1) {
            let start = Instant::now();
            // SAFETY: the previous submission of cmd completed (its fence was waited for).
            unsafe {
                d.queue_submit(gpu.queue(), &submit, fence)
                    .ctx("vkQueueSubmit")?;
                d.wait_for_fences(&[fence], true, u64::MAX)
                    .ctx("vkWaitForFences")?;
                d.reset_fences(&[fence]).ctx("vkResetFences")?;
            }
            times.push(start.elapsed());
        }
        Ok(times)
    })();
    // SAFETY: idle after the wait; the pool and fence are ours.
    unsafe {
        let _ = d.device_wait_idle();
        d.destroy_fence(fence, None);
        d.destroy_command_pool(pool, None);
    }
    let ok = data.words()[..4] == [7; 4];
    data.destroy(gpu);
    let mut times = result?;
    if !ok {
        return Err(Error::Mismatch("the fill did not land".into()));
    }
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "latency OK submits={} median_us={:.1} p90_us={:.1} mean_us={:.1}",
        times.len(),
        us(times[times.len() / 2]),
        us(times[times.len() * 9 / 10]),
        us(mean)
    );
    Ok(())
}

/// Submits fills into a host buffer forever, [`IN_FLIGHT`] at a time; returns only on a
/// Vulkan error (the process is meant to be killed).
fn submit_loop(gpu: &Gpu) -> Result<()> {
    let data = gpu.host_buffer(16 * IN_FLIGHT as u64)?;
    let pool = pool(gpu)?;
    let d = &gpu.device;
    let mut slots = Vec::with_capacity(IN_FLIGHT);
    for i in 0..IN_FLIGHT {
        let cmd = begin(gpu, pool)?;
        // SAFETY: cmd is recording; each slot fills its own 16 bytes.
        unsafe {
            d.cmd_fill_buffer(cmd, data.buffer, 16 * i as u64, 16, i as u32);
            d.end_command_buffer(cmd).ctx("vkEndCommandBuffer")?;
        }
        slots.push(([cmd], gpu.fence(false)?));
    }
    let mut submitted = 0usize;
    loop {
        for (cmds, fence) in &slots {
            // SAFETY: a slot's command buffer is submitted again only after its fence
            // signalled (it is not pending any more); the fence is reset before reuse.
            unsafe {
                if submitted >= IN_FLIGHT {
                    d.wait_for_fences(&[*fence], true, u64::MAX)
                        .ctx("vkWaitForFences")?;
                    d.reset_fences(&[*fence]).ctx("vkResetFences")?;
                }
                let submit = [vk::SubmitInfo::default().command_buffers(cmds)];
                d.queue_submit(gpu.queue(), &submit, *fence)
                    .ctx("vkQueueSubmit")?;
            }
            submitted += 1;
        }
        if submitted == IN_FLIGHT {
            println!("SUBMITTING");
            let _ = std::io::stdout().flush();
        }
    }
}

/// Submits a fill behind a wait that nothing will ever satisfy (see the module doc), then
/// hangs or exits without cleaning up.
fn stuck(gpu: &Gpu, what: &str, end: &str) -> Result<()> {
    if !matches!(end, "hang" | "exit") {
        return Err(Error::Other(
            "usage: venus-sync stuck <timeline|event|binary> <hang|exit>".into(),
        ));
    }
    let d = &gpu.device;
    let data = gpu.host_buffer(4096)?;
    let cmd = gpu.begin()?;
    let mut wait_sems = Vec::new();
    let values = [1u64];
    let stages = [vk::PipelineStageFlags::ALL_COMMANDS];
    match what {
        "timeline" => wait_sems.push(gpu.timeline(0)?),
        // SAFETY: a valid create info on our device.
        "binary" => wait_sems.push(
            unsafe { d.create_semaphore(&vk::SemaphoreCreateInfo::default(), None) }
                .ctx("vkCreateSemaphore")?,
        ),
        "event" => {
            // SAFETY: a valid create info on our device.
            let event = unsafe { d.create_event(&vk::EventCreateInfo::default(), None) }
                .ctx("vkCreateEvent")?;
            // SAFETY: cmd is recording; the event is never set (the point of the mode).
            unsafe {
                d.cmd_wait_events(
                    cmd,
                    &[event],
                    vk::PipelineStageFlags::HOST,
                    vk::PipelineStageFlags::TRANSFER,
                    &[],
                    &[],
                    &[],
                )
            };
        }
        _ => return Err(Error::Other(format!("stuck: unknown wait {what:?}"))),
    }
    let cmds = [cmd];
    // SAFETY: cmd is recording; the buffer is ours.
    unsafe {
        d.cmd_fill_buffer(cmd, data.buffer, 0, vk::WHOLE_SIZE, 0x5757_5757);
        d.end_command_buffer(cmd).ctx("vkEndCommandBuffer")?;
    }
    let mut tl = vk::TimelineSemaphoreSubmitInfo::default().wait_semaphore_values(&values);
    let mut submit = vk::SubmitInfo::default().command_buffers(&cmds);
    if !wait_sems.is_empty() {
        submit = submit
            .wait_semaphores(&wait_sems)
            .wait_dst_stage_mask(&stages);
    }
    if what == "timeline" {
        submit = submit.push_next(&mut tl);
    }
    let fence = gpu.fence(false)?;
    // SAFETY: a wait-before-signal on a timeline semaphore or an event wait (both legal; the
    // binary variant is the invalid usage a hostile client may send); nothing is destroyed.
    unsafe { d.queue_submit(gpu.queue(), &[submit], fence) }.ctx("vkQueueSubmit")?;
    // SAFETY: a fence of ours (with fence feedback this reads the client's feedback slot).
    let signalled = unsafe { d.get_fence_status(fence) }.ctx("vkGetFenceStatus")?;
    if what != "binary" {
        // The host refuses the binary case's submission (the context ends), so a round trip
        // would never return; the other cases must have reached the driver before `STUCK`.
        round_trip(gpu)?;
    }
    println!("STUCK signalled={signalled}");
    let _ = std::io::stdout().flush();
    if end == "exit" {
        std::process::exit(0);
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// A synchronous round trip on the device's ring, after everything sent before it: Mesa's
/// `vkGetRenderAreaGranularity` asks the host the first time for a render pass (the render
/// pass's creation and every earlier command, e.g. a queue submission, run before it).
fn round_trip(gpu: &Gpu) -> Result<()> {
    let d = &gpu.device;
    let subpass = [vk::SubpassDescription::default()];
    let info = vk::RenderPassCreateInfo::default().subpasses(&subpass);
    // SAFETY: a valid create info (no attachments, one subpass) on our device.
    let pass = unsafe { d.create_render_pass(&info, None) }.ctx("vkCreateRenderPass")?;
    // SAFETY: a render pass of ours, destroyed right after.
    unsafe {
        let _ = d.get_render_area_granularity(pass);
        d.destroy_render_pass(pass, None);
    }
    Ok(())
}

/// This process's CPU time (user + system), from `/proc/self/stat`.
fn self_cpu() -> Duration {
    venus_testapps::server::process_cpu_time(std::process::id()).unwrap_or_default()
}

fn wait(gpu: &Gpu, wait_ms: u64) -> Result<()> {
    let sem = gpu.timeline(0)?;
    let fence = gpu.fence(false)?;
    let (sems, values) = ([sem], [1u64]);
    let stages = [vk::PipelineStageFlags::ALL_COMMANDS];
    let mut tl = vk::TimelineSemaphoreSubmitInfo::default().wait_semaphore_values(&values);
    let submit = [vk::SubmitInfo::default()
        .wait_semaphores(&sems)
        .wait_dst_stage_mask(&stages)
        .push_next(&mut tl)];
    let d = &gpu.device;
    let result = std::thread::scope(|s| {
        // SAFETY: a wait-before-signal on a timeline semaphore (allowed); the fence is
        // waited for below.
        unsafe { d.queue_submit(gpu.queue(), &submit, fence) }.ctx("vkQueueSubmit")?;
        let signaller = s.spawn(move || {
            std::thread::sleep(Duration::from_millis(wait_ms));
            let info = vk::SemaphoreSignalInfo::default().semaphore(sem).value(1);
            // SAFETY: a timeline semaphore of ours; 1 is above its value.
            unsafe { gpu.device.signal_semaphore(&info) }.ctx("vkSignalSemaphore")
        });
        println!("WAIT_BEGIN");
        let _ = std::io::stdout().flush();
        let (start, cpu) = (Instant::now(), self_cpu());
        // SAFETY: the fence of the submission above.
        let waited = unsafe { d.wait_for_fences(&[fence], true, u64::MAX) }.ctx("vkWaitForFences");
        let (elapsed, cpu) = (start.elapsed(), self_cpu().saturating_sub(cpu));
        signaller.join().expect("signaller panicked")?;
        waited?;
        println!(
            "WAIT_END waited_ms={:.1} client_cpu_ms={:.1}",
            ms(elapsed),
            ms(cpu)
        );
        Ok(())
    });
    // SAFETY: the fence signalled (or the device is idled); both objects are ours.
    unsafe {
        let _ = d.device_wait_idle();
        d.destroy_fence(fence, None);
        d.destroy_semaphore(sem, None);
    }
    result
}
