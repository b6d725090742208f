//! Exported functions: renderer lifetime, capsets, contexts, submissions and fences.
//! Resource functions are in [`crate::api_res`]. Return values: 0 on success and a negative
//! errno on failure, unless a function says otherwise.

use std::ffi::{c_char, c_int, c_void};
use std::ptr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;

use tracing::{info, warn};
use venus_renderer::capset::{VenusCapset, VENUS_CAPSET_DWORDS, VENUS_CAPSET_ID};
use venus_renderer::{Completed, DispatchFactory, NullDispatch, Renderer};

use crate::fences::{Fence, FenceCallbacks, FenceSink};
use crate::ffi::{flags, Callbacks, CONTEXT_FLAG_CAPSET_ID_MASK};
use crate::guard;
use crate::state::{self, AbiError, Global};

/// Reads the fields of `cb` its `version` says exist.
///
/// # Safety
/// `cb` is NULL or points to a callbacks struct of at least its declared version.
unsafe fn read_callbacks(cookie: *mut c_void, cb: *const Callbacks) -> FenceCallbacks {
    let mut out = FenceCallbacks {
        cookie: cookie as usize,
        write_fence: None,
        write_context_fence: None,
    };
    if cb.is_null() {
        return out;
    }
    // SAFETY: every version has `version` and `write_fence` (the caller's guarantee).
    let version = unsafe { ptr::addr_of!((*cb).version).read() };
    // SAFETY: as above.
    out.write_fence = unsafe { ptr::addr_of!((*cb).write_fence).read() };
    if version >= 3 {
        // SAFETY: version 3 structs have `write_context_fence`.
        out.write_context_fence = unsafe { ptr::addr_of!((*cb).write_context_fence).read() };
    }
    out
}

/// The dispatch factory: `VENUS_ABI_DISPATCH=null` selects the Vulkan-less [`NullDispatch`]
/// (tests); otherwise the host's Vulkan driver, device chosen by `VENUS_DEVICE`.
fn factory() -> Result<Arc<dyn DispatchFactory>, AbiError> {
    if std::env::var("VENUS_ABI_DISPATCH").as_deref() == Ok("null") {
        return Ok(Arc::new(NullDispatch::new()));
    }
    let device = std::env::var("VENUS_DEVICE").unwrap_or_default();
    let selector = venus_dispatch::DeviceSelector::parse(&device);
    let page = rustix::param::page_size() as u64;
    let f = venus_dispatch::VulkanFactory::new(selector)
        .map_err(|e| AbiError::Invalid(format!("opening the Vulkan loader: {e}")))?;
    Ok(Arc::new(f.with_host_page_size(page)))
}

fn init_logging() {
    if let Ok(filter) = std::env::var("VENUS_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .try_init();
    }
}

/// `virgl_renderer_init`: VENUS is implied; THREAD_SYNC and ASYNC_FENCE_CB select fence
/// delivery ([`crate::fences`]); RENDER_SERVER, EGL/GLX/GLES and EXTERNAL_BLOB are ignored
/// (the renderer runs in the VMM's process, there is no GL).
///
/// # Safety
/// `cb` is NULL or a callbacks struct of its declared version, valid until cleanup.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_init(
    cookie: *mut c_void,
    flags: c_int,
    cb: *const Callbacks,
) -> c_int {
    // SAFETY: forwarded caller guarantee.
    let callbacks = unsafe { read_callbacks(cookie, cb) };
    guard::status("virgl_renderer_init", || {
        init_logging();
        let mut st = state::lock_state();
        if st.is_some() {
            return Err(AbiError::AlreadyInitialized);
        }
        let async_cb = flags & flags::ASYNC_FENCE_CB != 0;
        let fences = FenceSink::new(callbacks, async_cb)
            .map_err(|e| AbiError::NoMemory(format!("poll fd: {e}")))?;
        *st = Some(Global {
            flags,
            renderer: Renderer::new(factory()?),
            fences: Arc::new(fences),
            contexts: Default::default(),
            resources: Default::default(),
        });
        info!(flags, async_cb, "virglrenderer (venus-rs) initialized");
        Ok(())
    })
}

/// `virgl_renderer_cleanup`: destroys every context (their threads are joined, their host
/// objects released) and forgets the callbacks. `init` may be called again.
#[no_mangle]
pub extern "C" fn virgl_renderer_cleanup(_cookie: *mut c_void) {
    guard::void("virgl_renderer_cleanup", || {
        let global = state::lock_state().take();
        if let Some(mut g) = global {
            let slots = g.take_all();
            state::drop_contexts(slots);
            drop(g);
            info!("virglrenderer (venus-rs) cleaned up");
        }
        Ok(())
    })
}

/// `virgl_renderer_reset`: destroys every context and resource; callbacks and flags stay.
#[no_mangle]
pub extern "C" fn virgl_renderer_reset() {
    guard::void("virgl_renderer_reset", || {
        let slots = state::with(|g| Ok(g.take_all()))?;
        state::drop_contexts(slots);
        info!("renderer reset");
        Ok(())
    })
}

/// `virgl_renderer_get_cap_set`: Venus (4) only; any other set reports 0 / 0.
///
/// # Safety
/// `max_ver` and `max_size` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_get_cap_set(
    set: u32,
    max_ver: *mut u32,
    max_size: *mut u32,
) {
    let (ver, size) = if set == VENUS_CAPSET_ID {
        (0, (VENUS_CAPSET_DWORDS * 4) as u32)
    } else {
        (0, 0)
    };
    if !max_ver.is_null() {
        // SAFETY: writable per the caller's guarantee.
        unsafe { max_ver.write(ver) };
    }
    if !max_size.is_null() {
        // SAFETY: writable per the caller's guarantee.
        unsafe { max_size.write(size) };
    }
}

/// `virgl_renderer_fill_caps`: writes the 160-byte Venus capset; other sets write nothing.
///
/// # Safety
/// `caps` is NULL or has room for the size `get_cap_set` reported.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_fill_caps(set: u32, _version: u32, caps: *mut c_void) {
    if set != VENUS_CAPSET_ID || caps.is_null() {
        return;
    }
    let d = guard::run("virgl_renderer_fill_caps", None, || {
        Ok(Some(VenusCapset::for_protocol().to_dwords()))
    });
    if let Some(d) = d {
        // SAFETY: `caps` has room for 160 bytes (the caller's guarantee); u32 writes unaligned.
        unsafe {
            ptr::copy_nonoverlapping(d.as_ptr().cast::<u8>(), caps.cast::<u8>(), d.len() * 4)
        };
    }
}

/// # Safety
/// `name` is NULL or `nlen` readable bytes.
unsafe fn context_name(ctx_id: u32, nlen: u32, name: *const c_char) -> String {
    if name.is_null() || nlen == 0 {
        return format!("ctx{ctx_id}");
    }
    // SAFETY: `nlen` readable bytes (the caller's guarantee).
    let bytes = unsafe { std::slice::from_raw_parts(name.cast::<u8>(), nlen as usize) };
    String::from_utf8_lossy(bytes).into_owned()
}

/// `virgl_renderer_context_create_with_flags`: capset id (`flags & 0xff`) must be Venus.
///
/// # Safety
/// `name` is NULL or `nlen` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_context_create_with_flags(
    ctx_id: u32,
    ctx_flags: u32,
    nlen: u32,
    name: *const c_char,
) -> c_int {
    // SAFETY: forwarded caller guarantee.
    let name = unsafe { context_name(ctx_id, nlen, name) };
    guard::status("virgl_renderer_context_create_with_flags", || {
        let capset = ctx_flags & CONTEXT_FLAG_CAPSET_ID_MASK;
        if capset != VENUS_CAPSET_ID {
            return Err(AbiError::Capset(capset));
        }
        state::with(|g| g.create_context(ctx_id, name))
    })
}

/// `virgl_renderer_context_create`: a virgl (GL) context, which this renderer does not
/// serve: always `-EINVAL`.
#[no_mangle]
pub extern "C" fn virgl_renderer_context_create(
    _ctx_id: u32,
    _nlen: u32,
    _name: *const c_char,
) -> c_int {
    warn!("virgl_renderer_context_create: virgl (GL) contexts are not served");
    -crate::state::libc_errno::EINVAL
}

/// `virgl_renderer_context_destroy`: its threads joined, host objects released, blobs gone.
#[no_mangle]
pub extern "C" fn virgl_renderer_context_destroy(ctx_id: u32) {
    guard::void("virgl_renderer_context_destroy", || {
        let slot = state::with(|g| Ok(g.take_context(ctx_id)))?;
        state::drop_contexts(slot.into_iter().collect());
        Ok(())
    })
}

/// `virgl_renderer_submit_cmd`: executes `ndw` dwords of Venus commands on the context.
///
/// # Safety
/// `buffer` is `ndw * 4` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_submit_cmd(
    buffer: *mut c_void,
    ctx_id: c_int,
    ndw: c_int,
) -> c_int {
    let len = usize::try_from(ndw).unwrap_or(0) * 4;
    let cmds = if buffer.is_null() || len == 0 {
        Vec::new()
    } else {
        // SAFETY: `len` readable bytes (the caller's guarantee); copied once, privately.
        unsafe { std::slice::from_raw_parts(buffer.cast::<u8>(), len) }.to_vec()
    };
    guard::status("virgl_renderer_submit_cmd", || {
        let slot = state::context(ctx_id as u32)?;
        let mut ctx = crate::fences::lock(&slot.ctx);
        ctx.execute(&cmds)
            .map_err(|e| AbiError::Invalid(format!("context {ctx_id}: {e}")))
    })
}

/// `virgl_renderer_context_create_fence`: retires once everything submitted before it on
/// fence timeline `ring_idx` finished on the host; reported with `write_context_fence`.
#[no_mangle]
pub extern "C" fn virgl_renderer_context_create_fence(
    ctx_id: u32,
    _flags: u32,
    ring_idx: u32,
    fence_id: u64,
) -> c_int {
    guard::status("virgl_renderer_context_create_fence", || {
        let slot = state::context(ctx_id)?;
        let sink = state::with(|g| Ok(Arc::clone(&g.fences)))?;
        let destroyed = Arc::clone(&slot.destroyed);
        let origin = thread::current().id();
        let fence = Fence::Context {
            ctx_id,
            ring_idx,
            fence_id,
        };
        let done = Box::new(move |c: Completed| {
            // A lost batch still retires its fence (as a kernel signals a lost context's
            // fences), except during the context's destruction.
            if c == Completed::Signalled || !destroyed.load(Ordering::Acquire) {
                sink.retire(fence, origin);
            }
        });
        let mut ctx = crate::fences::lock(&slot.ctx);
        ctx.submit(ring_idx, &[], done)
            .map_err(|e| AbiError::Invalid(format!("context {ctx_id}: {e}")))
    })
}

/// `virgl_renderer_create_fence` (ctx0): every submission executed before returning, so it
/// retires at once; reported with `write_fence` by the next poll.
#[no_mangle]
pub extern "C" fn virgl_renderer_create_fence(fence_id: c_int, _ctx_id: u32) -> c_int {
    guard::status("virgl_renderer_create_fence", || {
        let sink = state::with(|g| Ok(Arc::clone(&g.fences)))?;
        sink.retire(Fence::Global(fence_id as u32), thread::current().id());
        Ok(())
    })
}

/// `virgl_renderer_poll`: delivers every queued fence.
#[no_mangle]
pub extern "C" fn virgl_renderer_poll() {
    guard::void("virgl_renderer_poll", || {
        let sink = state::with(|g| Ok(Arc::clone(&g.fences)))?;
        sink.poll(None);
        Ok(())
    })
}

/// `virgl_renderer_context_poll`: delivers the queued fences of `ctx_id`.
#[no_mangle]
pub extern "C" fn virgl_renderer_context_poll(ctx_id: u32) {
    guard::void("virgl_renderer_context_poll", || {
        let sink = state::with(|g| Ok(Arc::clone(&g.fences)))?;
        sink.poll(Some(ctx_id));
        Ok(())
    })
}

/// `virgl_renderer_get_poll_fd`: an fd (eventfd on Linux, a pipe elsewhere) readable while fences wait for
/// `virgl_renderer_poll`; -1 before init or with ASYNC_FENCE_CB.
#[no_mangle]
pub extern "C" fn virgl_renderer_get_poll_fd() -> c_int {
    guard::run("virgl_renderer_get_poll_fd", -1, || {
        state::with(|g| {
            Ok(match g.flags & flags::ASYNC_FENCE_CB {
                0 => g.fences.poll_fd(),
                _ => -1,
            })
        })
    })
}

/// `virgl_renderer_context_get_poll_fd`: the renderer's poll fd (fences of every context).
#[no_mangle]
pub extern "C" fn virgl_renderer_context_get_poll_fd(_ctx_id: u32) -> c_int {
    virgl_renderer_get_poll_fd()
}

/// `virgl_renderer_force_ctx_0`: no GL context to make current: nothing to do.
#[no_mangle]
pub extern "C" fn virgl_renderer_force_ctx_0() {}

/// `virgl_set_debug_callback`: accepted and ignored (logs go through `VENUS_LOG`).
#[no_mangle]
pub extern "C" fn virgl_set_debug_callback(_cb: *mut c_void) -> *mut c_void {
    ptr::null_mut()
}

/// `virgl_set_log_callback`: accepted and ignored (logs go through `VENUS_LOG`).
#[no_mangle]
pub extern "C" fn virgl_set_log_callback(_cb: *mut c_void, _data: *mut c_void, _free: *mut c_void) {
}
