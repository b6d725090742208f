//! The C types of `include/virglrenderer.h`, `#[repr(C)]`, with compile-time layout
//! assertions (x86-64 / aarch64 LP64 sizes and offsets; the C test checks the same numbers
//! with `offsetof`/`sizeof` against the header).
//!
//! Facts from virglrenderer 1.1.0's public header (callbacks version 4); the header here is
//! our own.

use std::ffi::{c_int, c_void};
use std::mem::{offset_of, size_of};

/// `struct iovec`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct IoVec {
    /// `iov_base`.
    pub base: *mut c_void,
    /// `iov_len`.
    pub len: usize,
}

/// `write_fence(cookie, fence)`.
pub type WriteFenceFn = unsafe extern "C" fn(cookie: *mut c_void, fence: u32);
/// `write_context_fence(cookie, ctx_id, ring_idx, fence_id)` (callbacks version >= 3).
pub type WriteContextFenceFn =
    unsafe extern "C" fn(cookie: *mut c_void, ctx_id: u32, ring_idx: u32, fence_id: u64);

/// `struct virgl_renderer_callbacks`. GL callbacks are kept as opaque pointers: this renderer
/// never calls them.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Callbacks {
    /// 1..=4; fields after `make_current` exist from version 2, 3 and 4.
    pub version: c_int,
    /// ctx0 fences.
    pub write_fence: Option<WriteFenceFn>,
    /// Unused (GL).
    pub create_gl_context: *mut c_void,
    /// Unused (GL).
    pub destroy_gl_context: *mut c_void,
    /// Unused (GL).
    pub make_current: *mut c_void,
    /// v2, unused (EGL).
    pub get_drm_fd: *mut c_void,
    /// v3: per-context fences.
    pub write_context_fence: Option<WriteContextFenceFn>,
    /// v3, unused: the renderer runs in the VMM's process.
    pub get_server_fd: *mut c_void,
    /// v4, unused (EGL).
    pub get_egl_display: *mut c_void,
}

/// `struct virgl_renderer_resource_create_args` (2D/3D resources).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ResourceCreateArgs {
    pub handle: u32,
    pub target: u32,
    pub format: u32,
    pub bind: u32,
    pub width: u32,
    pub height: u32,
    pub depth: u32,
    pub array_size: u32,
    pub last_level: u32,
    pub nr_samples: u32,
    pub flags: u32,
}

/// `struct virgl_renderer_resource_create_blob_args`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CreateBlobArgs {
    pub res_handle: u32,
    pub ctx_id: u32,
    pub blob_mem: u32,
    pub blob_flags: u32,
    pub blob_id: u64,
    pub size: u64,
    pub iovecs: *const IoVec,
    pub num_iovs: u32,
}

/// `struct virgl_renderer_resource_info`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ResourceInfo {
    pub handle: u32,
    pub virgl_format: u32,
    pub width: u32,
    pub height: u32,
    pub depth: u32,
    pub flags: u32,
    pub tex_id: u32,
    pub stride: u32,
    pub drm_fourcc: c_int,
    pub fd: c_int,
}

/// `struct virgl_renderer_resource_info_ext` (version 0).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ResourceInfoExt {
    pub version: c_int,
    pub base: ResourceInfo,
    pub has_dmabuf_export: bool,
    pub planes: c_int,
    pub modifiers: u64,
    pub d3d_tex2d: *mut c_void,
}

/// `struct virgl_box` (virgl_hw.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct VirglBox {
    pub x: u32,
    pub y: u32,
    pub z: u32,
    pub w: u32,
    pub h: u32,
    pub d: u32,
}

/// `virgl_renderer_init` flags.
pub mod flags {
    pub const USE_EGL: i32 = 1;
    pub const THREAD_SYNC: i32 = 2;
    pub const USE_EXTERNAL_BLOB: i32 = 1 << 5;
    pub const VENUS: i32 = 1 << 6;
    pub const NO_VIRGL: i32 = 1 << 7;
    pub const ASYNC_FENCE_CB: i32 = 1 << 8;
    pub const RENDER_SERVER: i32 = 1 << 9;
}

/// `VIRGL_RENDERER_CONTEXT_FLAG_CAPSET_ID_MASK`.
pub const CONTEXT_FLAG_CAPSET_ID_MASK: u32 = 0xff;
/// `VIRGL_RENDERER_BLOB_MEM_GUEST`.
pub const BLOB_MEM_GUEST: u32 = 1;
/// `VIRGL_RENDERER_BLOB_FD_TYPE_SHM`.
pub const BLOB_FD_TYPE_SHM: u32 = 3;
/// `VIRGL_RENDERER_MAP_CACHE_CACHED`.
pub const MAP_CACHE_CACHED: u32 = 1;

// Layout assertions (LP64). The C test prints the same numbers from the header.
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(size_of::<Callbacks>() == 72);
    assert!(offset_of!(Callbacks, write_fence) == 8);
    assert!(offset_of!(Callbacks, get_drm_fd) == 40);
    assert!(offset_of!(Callbacks, write_context_fence) == 48);
    assert!(offset_of!(Callbacks, get_server_fd) == 56);
    assert!(offset_of!(Callbacks, get_egl_display) == 64);
    assert!(size_of::<CreateBlobArgs>() == 48);
    assert!(offset_of!(CreateBlobArgs, blob_id) == 16);
    assert!(offset_of!(CreateBlobArgs, size) == 24);
    assert!(offset_of!(CreateBlobArgs, iovecs) == 32);
    assert!(offset_of!(CreateBlobArgs, num_iovs) == 40);
    assert!(size_of::<ResourceCreateArgs>() == 44);
    assert!(size_of::<ResourceInfo>() == 40);
    assert!(size_of::<ResourceInfoExt>() == 72);
    assert!(offset_of!(ResourceInfoExt, base) == 4);
    assert!(offset_of!(ResourceInfoExt, has_dmabuf_export) == 44);
    assert!(offset_of!(ResourceInfoExt, planes) == 48);
    assert!(offset_of!(ResourceInfoExt, modifiers) == 56);
    assert!(offset_of!(ResourceInfoExt, d3d_tex2d) == 64);
    assert!(size_of::<VirglBox>() == 24);
};

/// The layout facts as `(name, value)`, in the order the C test prints them
/// (`tests/c/abi_test.c`), so the two sides are compared line by line.
pub fn layout_facts() -> Vec<(&'static str, usize)> {
    vec![
        ("sizeof(callbacks)", size_of::<Callbacks>()),
        ("callbacks.write_fence", offset_of!(Callbacks, write_fence)),
        ("callbacks.get_drm_fd", offset_of!(Callbacks, get_drm_fd)),
        (
            "callbacks.write_context_fence",
            offset_of!(Callbacks, write_context_fence),
        ),
        (
            "callbacks.get_server_fd",
            offset_of!(Callbacks, get_server_fd),
        ),
        (
            "callbacks.get_egl_display",
            offset_of!(Callbacks, get_egl_display),
        ),
        ("sizeof(create_blob_args)", size_of::<CreateBlobArgs>()),
        (
            "create_blob_args.blob_id",
            offset_of!(CreateBlobArgs, blob_id),
        ),
        ("create_blob_args.size", offset_of!(CreateBlobArgs, size)),
        (
            "create_blob_args.iovecs",
            offset_of!(CreateBlobArgs, iovecs),
        ),
        (
            "create_blob_args.num_iovs",
            offset_of!(CreateBlobArgs, num_iovs),
        ),
        (
            "sizeof(resource_create_args)",
            size_of::<ResourceCreateArgs>(),
        ),
        ("sizeof(resource_info)", size_of::<ResourceInfo>()),
        ("sizeof(resource_info_ext)", size_of::<ResourceInfoExt>()),
        ("resource_info_ext.base", offset_of!(ResourceInfoExt, base)),
        (
            "resource_info_ext.has_dmabuf_export",
            offset_of!(ResourceInfoExt, has_dmabuf_export),
        ),
        (
            "resource_info_ext.planes",
            offset_of!(ResourceInfoExt, planes),
        ),
        (
            "resource_info_ext.modifiers",
            offset_of!(ResourceInfoExt, modifiers),
        ),
        (
            "resource_info_ext.d3d_tex2d",
            offset_of!(ResourceInfoExt, d3d_tex2d),
        ),
        ("sizeof(virgl_box)", size_of::<VirglBox>()),
    ]
}
