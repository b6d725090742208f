//! Teardown (issue 11, must-show 4): `virgl_renderer_cleanup` after running contexts (a ring
//! thread and its ALIVE ticker each, a Vulkan instance on lavapipe) leaves no thread of ours
//! and no host object; `virgl_renderer_reset` gives a clean renderer that runs new contexts.
//!
//! One test in its own process (the thread count is the process's, `/proc/self/task`). Uses
//! lavapipe when its ICD is installed (fails in CI without it), else the Vulkan-less
//! `NullDispatch` (threads only).

#![cfg(target_os = "linux")]

use std::ffi::c_void;
use std::io::Write;
use std::ptr;
use std::sync::{Arc, Mutex};

use venus_protocol::commands::{CreateInstanceArgs, CreateRingMESAArgs};
use venus_protocol::structs::{Ext, InstanceCreateInfo, RingCreateInfoMESA, RingMonitorInfoMESA};
use venus_protocol::{encode_command, Command, Encoder, Id};
use virglrenderer::api::*;
use virglrenderer::api_res::*;
use virglrenderer::ffi::{flags, Callbacks, CreateBlobArgs};

const LAVAPIPE: &str = "/usr/share/vulkan/icd.d/lvp_icd.json";
const RING_BUFFER: u64 = 4096;
const RING_BLOB: u64 = 8192;

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .map(|s| s.trim().to_owned())
        .collect()
}

fn ours(names: &[String]) -> usize {
    names.iter().filter(|n| n.starts_with("venus-")).count()
}

/// The threads once `ours` is `n` (a new thread names itself after it starts), or after 2 s.
fn settled(n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let t = threads();
        if ours(&t) == n || std::time::Instant::now() > deadline {
            return t;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn submit(ctx_id: u32, cmd: &Command<'_>) {
    let mut e = Encoder::new();
    encode_command(&mut e, cmd, 0);
    let mut bytes = e.into_bytes();
    bytes.resize(bytes.len().next_multiple_of(4), 0);
    // SAFETY: `bytes` is `len` readable bytes for the call.
    let rc = unsafe {
        virgl_renderer_submit_cmd(
            bytes.as_mut_ptr().cast(),
            ctx_id as i32,
            (bytes.len() / 4) as i32,
        )
    };
    assert_eq!(rc, 0, "submit on context {ctx_id}");
}

/// A context with a monitored ring (ring thread + ALIVE ticker) and, with Vulkan, an instance.
fn running_context(ctx_id: u32, res_id: u32, vulkan: bool) {
    // SAFETY: a NUL-free name of the given length.
    let rc = unsafe { virgl_renderer_context_create_with_flags(ctx_id, 4, 4, c"test".as_ptr()) };
    assert_eq!(rc, 0);
    let blob = CreateBlobArgs {
        res_handle: res_id,
        ctx_id,
        blob_mem: 2,
        blob_flags: 1,
        blob_id: 0,
        size: RING_BLOB,
        iovecs: ptr::null(),
        num_iovs: 0,
    };
    // SAFETY: a valid args struct.
    assert_eq!(unsafe { virgl_renderer_resource_create_blob(&blob) }, 0);
    let monitor = Ext::RingMonitorInfoMESA(RingMonitorInfoMESA {
        p_next: None,
        max_reporting_period_microseconds: 3000,
    });
    let info = RingCreateInfoMESA {
        p_next: Some(&monitor),
        resource_id: res_id,
        size: RING_BLOB,
        idle_timeout: 1_000_000,
        head_offset: 0,
        tail_offset: 64,
        status_offset: 128,
        buffer_offset: 192,
        buffer_size: RING_BUFFER,
        extra_offset: 192 + RING_BUFFER,
        extra_size: 4,
        ..Default::default()
    };
    submit(
        ctx_id,
        &Command::CreateRingMESA(CreateRingMESAArgs {
            ring: u64::from(ctx_id),
            p_create_info: &info,
        }),
    );
    if vulkan {
        let create = InstanceCreateInfo::default();
        submit(
            ctx_id,
            &Command::CreateInstance(CreateInstanceArgs {
                p_create_info: &create,
                p_instance: &Id::from_raw(100 + u64::from(ctx_id)),
            }),
        );
    }
}

fn released_lines(log: &Log) -> Vec<String> {
    let text = String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
    text.lines()
        .filter(|l| l.contains("host objects released"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn cleanup_and_reset_leave_no_threads_and_no_host_objects() {
    let vulkan = std::path::Path::new(LAVAPIPE).exists();
    if !vulkan {
        let ci = venus_testkit::is_ci_value(std::env::var_os("CI").as_deref());
        assert!(
            !ci,
            "teardown: lavapipe ICD missing; run scripts/setup-system.sh"
        );
        eprintln!("teardown: lavapipe ICD missing: NullDispatch, threads only");
        std::env::set_var("VENUS_ABI_DISPATCH", "null");
    } else {
        std::env::set_var("VK_DRIVER_FILES", LAVAPIPE);
    }
    let log = Log::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let before = threads();
    let cb = Callbacks {
        version: 3,
        write_fence: None,
        create_gl_context: ptr::null_mut(),
        destroy_gl_context: ptr::null_mut(),
        make_current: ptr::null_mut(),
        get_drm_fd: ptr::null_mut(),
        write_context_fence: None,
        get_server_fd: ptr::null_mut(),
        get_egl_display: ptr::null_mut(),
    };
    let cookie = ptr::null_mut::<c_void>();
    // SAFETY: `cb` outlives the renderer (cleanup below).
    let rc = unsafe { virgl_renderer_init(cookie, flags::VENUS | flags::THREAD_SYNC, &cb) };
    assert_eq!(rc, 0);

    // reset: two running contexts go, a new one runs.
    running_context(1, 1, vulkan);
    running_context(2, 2, vulkan);
    let t = settled(4);
    assert_eq!(ours(&t), 4, "2 rings + 2 tickers: {t:?}");
    virgl_renderer_reset();
    assert_eq!(ours(&threads()), 0, "after reset: {:?}", threads());
    running_context(1, 1, vulkan);
    let t = settled(2);
    assert_eq!(ours(&t), 2, "after reset, a new context: {t:?}");

    // cleanup with contexts running.
    running_context(3, 3, vulkan);
    virgl_renderer_cleanup(cookie);
    let after = threads();
    assert_eq!(ours(&after), 0, "{after:?}");
    assert_eq!(
        after.len(),
        before.len(),
        "threads before {before:?}, after {after:?}"
    );

    let released = released_lines(&log);
    if vulkan {
        assert_eq!(released.len(), 4, "{released:?}");
        for l in &released {
            assert!(l.contains("created=1 destroyed=1 live=0"), "{l}");
        }
    }
    // SAFETY: as above; the renderer can be initialized again after cleanup.
    assert_eq!(unsafe { virgl_renderer_init(cookie, flags::VENUS, &cb) }, 0);
    virgl_renderer_cleanup(cookie);
}
