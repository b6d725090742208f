//! Exported resource functions: blobs (Venus: the core's shared memory), plain resources
//! for the guest console ([`crate::twod`]), mapping, export, info. 0 on success, a negative
//! errno on failure.

use std::ffi::{c_int, c_void};
use std::os::fd::IntoRawFd;

use tracing::debug;
use venus_renderer::BlobParams;

use crate::fences::lock;
use crate::ffi::{
    CreateBlobArgs, IoVec, ResourceCreateArgs, ResourceInfo, ResourceInfoExt, VirglBox,
    BLOB_FD_TYPE_SHM, BLOB_MEM_GUEST, MAP_CACHE_CACHED,
};
use crate::guard;
use crate::state::{self, AbiError, Res};
use crate::twod::{segments, Plain, Seg};

/// Attached backing of a plain resource: the VMM's own iovec array, handed back on detach
/// (QEMU frees it then).
#[derive(Debug, Clone, Copy)]
pub struct Backing {
    pub iov: usize,
    pub n: c_int,
}

/// `virgl_renderer_resource_create`: a plain resource (console framebuffer).
///
/// # Safety
/// `args` is readable; `iov` is NULL or `num_iovs` iovecs of memory valid while attached.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_create(
    args: *const ResourceCreateArgs,
    iov: *const IoVec,
    num_iovs: u32,
) -> c_int {
    if args.is_null() {
        return -state::libc_errno::EINVAL;
    }
    // SAFETY: readable per the caller's guarantee.
    let a = unsafe { args.read() };
    // SAFETY: forwarded caller guarantee.
    let segs = unsafe { segments(iov, num_iovs as usize) };
    guard::status("virgl_renderer_resource_create", || {
        let plain = Plain::new(a, segs)
            .ok_or_else(|| AbiError::NoMemory(format!("resource {}: too large", a.handle)))?;
        insert(a.handle, Res::Plain(plain))
    })
}

fn insert(res_id: u32, res: Res) -> Result<(), AbiError> {
    state::with(|g| {
        if res_id == 0 || g.resources.contains_key(&res_id) {
            return Err(AbiError::ResourceExists(res_id));
        }
        g.resources.insert(res_id, res);
        Ok(())
    })
}

/// `virgl_renderer_resource_create_blob`: HOST3D blobs are the core's shared memory of
/// context `ctx_id` (blob_id 0: plain shared memory; else an exported `VkDeviceMemory`);
/// GUEST blobs only record the guest pages.
///
/// # Safety
/// `args` is readable; its `iovecs` NULL or `num_iovs` iovecs.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_create_blob(args: *const CreateBlobArgs) -> c_int {
    if args.is_null() {
        return -state::libc_errno::EINVAL;
    }
    // SAFETY: readable per the caller's guarantee.
    let a = unsafe { args.read() };
    // SAFETY: forwarded caller guarantee.
    let segs = unsafe { segments(a.iovecs, a.num_iovs as usize) };
    guard::status("virgl_renderer_resource_create_blob", || {
        if a.blob_mem == BLOB_MEM_GUEST {
            let plain = Plain::new(ResourceCreateArgs::default(), segs)
                .ok_or_else(|| AbiError::Invalid("guest blob".into()))?;
            return insert(a.res_handle, Res::Plain(plain));
        }
        state::create_blob(
            a.ctx_id,
            BlobParams {
                res_id: a.res_handle,
                blob_type: a.blob_mem,
                flags: a.blob_flags,
                size: a.size,
                blob_id: a.blob_id,
            },
        )
    })
}

/// `virgl_renderer_resource_unref`: forgets the resource (its context's table too).
#[no_mangle]
pub extern "C" fn virgl_renderer_resource_unref(res_id: u32) {
    guard::void("virgl_renderer_resource_unref", || {
        let (res, slot) = state::with(|g| {
            let res = g.resources.remove(&res_id);
            let slot = match &res {
                Some(Res::Blob { ctx_id, .. }) => g.contexts.get(ctx_id).cloned(),
                _ => None,
            };
            Ok((res, slot))
        })?;
        if let Some(slot) = slot {
            lock(&slot.ctx).unref(res_id);
        }
        drop(res);
        Ok(())
    })
}

/// `virgl_renderer_resource_attach_iov`: the backing of a plain resource.
///
/// # Safety
/// `iov` is NULL or `num_iovs` iovecs of memory valid until detached.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_attach_iov(
    res_id: c_int,
    iov: *mut IoVec,
    num_iovs: c_int,
) -> c_int {
    // SAFETY: forwarded caller guarantee.
    let segs = unsafe { segments(iov, usize::try_from(num_iovs).unwrap_or(0)) };
    guard::status("virgl_renderer_resource_attach_iov", || {
        with_plain(res_id as u32, |p| {
            p.backing = segs;
            p.vmm_iov = Some(Backing {
                iov: iov as usize,
                n: num_iovs,
            });
            Ok(())
        })
    })
}

/// `virgl_renderer_resource_detach_iov`: returns the array given to `attach_iov`.
///
/// # Safety
/// `iov` and `num_iovs` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_detach_iov(
    res_id: c_int,
    iov: *mut *mut IoVec,
    num_iovs: *mut c_int,
) {
    let b = guard::run("virgl_renderer_resource_detach_iov", None, || {
        with_plain(res_id as u32, |p| {
            p.backing.clear();
            Ok(p.vmm_iov.take())
        })
    });
    let (ptr, n) = b.map_or((std::ptr::null_mut(), 0), |b| (b.iov as *mut IoVec, b.n));
    if !iov.is_null() {
        // SAFETY: writable per the caller's guarantee.
        unsafe { iov.write(ptr) };
    }
    if !num_iovs.is_null() {
        // SAFETY: writable per the caller's guarantee.
        unsafe { num_iovs.write(n) };
    }
}

fn with_plain<T>(
    res_id: u32,
    f: impl FnOnce(&mut Plain) -> Result<T, AbiError>,
) -> Result<T, AbiError> {
    state::with(|g| match g.resources.get_mut(&res_id) {
        Some(Res::Plain(p)) => f(p),
        Some(_) => Err(AbiError::Invalid(format!("resource {res_id} is a blob"))),
        None => Err(AbiError::NoResource(res_id)),
    })
}

/// # Safety
/// `bx` readable; `iov` NULL or `n` iovecs valid for this call.
unsafe fn transfer_args(
    bx: *const VirglBox,
    iov: *const IoVec,
    n: usize,
) -> Option<(VirglBox, Vec<Seg>)> {
    if bx.is_null() {
        return None;
    }
    // SAFETY: forwarded caller guarantee.
    Some(unsafe { (bx.read(), segments(iov, n)) })
}

/// `virgl_renderer_transfer_write_iov`: guest -> host copy of a box of a plain resource
/// (from `iovec`, or the attached backing when NULL). Blobs: nothing to copy (shared).
///
/// # Safety
/// `bx` readable; `iovec` NULL or `iovec_cnt` iovecs valid for this call.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn virgl_renderer_transfer_write_iov(
    handle: u32,
    _ctx_id: u32,
    _level: c_int,
    stride: u32,
    _layer_stride: u32,
    bx: *const VirglBox,
    offset: u64,
    iovec: *const IoVec,
    iovec_cnt: u32,
) -> c_int {
    // SAFETY: forwarded caller guarantee.
    let Some((bx, segs)) = (unsafe { transfer_args(bx, iovec, iovec_cnt as usize) }) else {
        return -state::libc_errno::EINVAL;
    };
    guard::status("virgl_renderer_transfer_write_iov", || {
        with_plain(handle, |p| match p.write_from(&bx, offset, stride, &segs) {
            true => Ok(()),
            false => Err(AbiError::Invalid(format!(
                "resource {handle}: transfer out of bounds"
            ))),
        })
    })
}

/// `virgl_renderer_transfer_read_iov`: host -> guest copy of a box of a plain resource.
///
/// # Safety
/// As [`virgl_renderer_transfer_write_iov`].
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn virgl_renderer_transfer_read_iov(
    handle: u32,
    _ctx_id: u32,
    _level: u32,
    stride: u32,
    _layer_stride: u32,
    bx: *const VirglBox,
    offset: u64,
    iovec: *const IoVec,
    iovec_cnt: c_int,
) -> c_int {
    let n = usize::try_from(iovec_cnt).unwrap_or(0);
    // SAFETY: forwarded caller guarantee.
    let Some((bx, segs)) = (unsafe { transfer_args(bx, iovec, n) }) else {
        return -state::libc_errno::EINVAL;
    };
    guard::status("virgl_renderer_transfer_read_iov", || {
        with_plain(handle, |p| match p.read_into(&bx, offset, stride, &segs) {
            true => Ok(()),
            false => Err(AbiError::Invalid(format!(
                "resource {handle}: transfer out of bounds"
            ))),
        })
    })
}

/// `virgl_renderer_ctx_attach_resource`: a blob is usable by the context that created it;
/// attaching it to another context is recorded as unsupported (the core has no API to share
/// a resource between contexts; Venus guests do not need it).
#[no_mangle]
pub extern "C" fn virgl_renderer_ctx_attach_resource(ctx_id: c_int, res_id: c_int) {
    guard::void("virgl_renderer_ctx_attach_resource", || {
        state::with(|g| {
            if let Some(Res::Blob { ctx_id: owner, .. }) = g.resources.get(&(res_id as u32)) {
                if *owner != ctx_id as u32 {
                    tracing::warn!(
                        ctx_id,
                        res_id,
                        owner,
                        "cross-context blob attach is not supported"
                    );
                }
            }
            Ok(())
        })
    })
}

/// `virgl_renderer_ctx_detach_resource`: nothing to undo (see attach).
#[no_mangle]
pub extern "C" fn virgl_renderer_ctx_detach_resource(ctx_id: c_int, res_id: c_int) {
    debug!(ctx_id, res_id, "ctx_detach_resource");
}

/// The blob's memory and its size (as the VMM asked; within the mapping).
fn blob(res_id: u32) -> Result<(std::sync::Arc<venus_renderer::shm::SharedMemory>, u64), AbiError> {
    state::with(|g| match g.resources.get(&res_id) {
        Some(Res::Blob { shm, size, .. }) => Ok((std::sync::Arc::clone(shm), *size)),
        Some(_) => Err(AbiError::NotMappable(res_id)),
        None => Err(AbiError::NoResource(res_id)),
    })
}

/// `virgl_renderer_resource_map`: our mapping of the blob (the same shared memory the
/// renderer reads), valid until the resource is unreferenced and its users are gone.
///
/// # Safety
/// `map` and `out_size` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_map(
    res_id: u32,
    map: *mut *mut c_void,
    out_size: *mut u64,
) -> c_int {
    let mut got = None;
    let rc = guard::status("virgl_renderer_resource_map", || {
        let (shm, size) = blob(res_id)?;
        got = Some((shm.host_ptr().as_ptr().cast::<c_void>(), size));
        Ok(())
    });
    if let Some((p, len)) = got {
        if !map.is_null() {
            // SAFETY: writable per the caller's guarantee.
            unsafe { map.write(p) };
        }
        if !out_size.is_null() {
            // SAFETY: writable per the caller's guarantee.
            unsafe { out_size.write(len) };
        }
    }
    rc
}

/// `virgl_renderer_resource_map_fixed` (virglrenderer 1.2 API, imported by QEMU 11): maps the
/// blob's shared memory at `addr` (`MAP_SHARED | MAP_FIXED`, the blob's size rounded up to
/// pages), replacing what the VMM had there (its hostmem window reservation).
///
/// # Safety
/// `addr` is page aligned, and the VMM owns `[addr, addr + size)` and expects it replaced.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_map_fixed(
    res_id: u32,
    addr: *mut c_void,
) -> c_int {
    guard::status("virgl_renderer_resource_map_fixed", || {
        let (shm, size) = blob(res_id)?;
        let page = rustix::param::page_size() as u64;
        let len = size.max(1).div_ceil(page) * page;
        if addr.is_null() || (addr as u64) % page != 0 || len > shm.mapped_len() {
            return Err(AbiError::Invalid(format!(
                "resource {res_id}: bad fixed address {addr:p}"
            )));
        }
        let prot = rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE;
        let flags = rustix::mm::MapFlags::SHARED | rustix::mm::MapFlags::FIXED;
        // SAFETY: the caller owns `[addr, addr + len)` and asks for it to be replaced by the
        // blob's pages; `len` is within the object's size (mapped_len), so every page is backed.
        unsafe { rustix::mm::mmap(addr, len as usize, prot, flags, shm.fd(), 0) }
            .map_err(|e| AbiError::Invalid(format!("resource {res_id}: mmap fixed: {e}")))?;
        Ok(())
    })
}

/// `virgl_renderer_resource_unmap`: our mapping stays ours, and a fixed mapping stays in the
/// VMM's window until the VMM replaces it: nothing to undo.
#[no_mangle]
pub extern "C" fn virgl_renderer_resource_unmap(res_id: u32) -> c_int {
    guard::status("virgl_renderer_resource_unmap", || blob(res_id).map(drop))
}

/// `virgl_renderer_resource_get_map_info`: cached (shared memory).
///
/// # Safety
/// `map_info` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_get_map_info(
    res_id: u32,
    map_info: *mut u32,
) -> c_int {
    let rc = guard::status("virgl_renderer_resource_get_map_info", || {
        blob(res_id).map(drop)
    });
    if rc == 0 && !map_info.is_null() {
        // SAFETY: writable per the caller's guarantee.
        unsafe { map_info.write(MAP_CACHE_CACHED) };
    }
    rc
}

/// `virgl_renderer_resource_export_blob`: a new fd of the blob's shared memory (SHM type).
///
/// # Safety
/// `fd_type` and `fd` are writable.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_export_blob(
    res_id: u32,
    fd_type: *mut u32,
    fd: *mut c_int,
) -> c_int {
    if fd_type.is_null() || fd.is_null() {
        return -state::libc_errno::EINVAL;
    }
    let mut out = -1;
    let rc = guard::status("virgl_renderer_resource_export_blob", || {
        let (shm, _) = blob(res_id)?;
        let owned = shm
            .try_clone_fd()
            .map_err(|e| AbiError::NoMemory(format!("resource {res_id}: dup: {e}")))?;
        out = owned.into_raw_fd();
        Ok(())
    });
    if rc == 0 {
        // SAFETY: writable per the caller's guarantee (checked non-NULL above).
        unsafe {
            fd_type.write(BLOB_FD_TYPE_SHM);
            fd.write(out);
        }
    }
    rc
}

fn info_of(res_id: u32) -> Result<ResourceInfo, AbiError> {
    state::with(|g| match g.resources.get(&res_id) {
        Some(Res::Plain(p)) => Ok(ResourceInfo {
            handle: res_id,
            virgl_format: p.args.format,
            width: p.args.width,
            height: p.args.height,
            depth: p.args.depth,
            flags: 0,
            tex_id: 0,
            stride: p.stride(),
            drm_fourcc: 0,
            fd: -1,
        }),
        // QEMU asks right after creating a blob (for a dma-buf to scan out): no image, no fd.
        Some(Res::Blob { .. }) => Ok(ResourceInfo {
            handle: res_id,
            fd: -1,
            ..ResourceInfo::default()
        }),
        None => Err(AbiError::NoResource(res_id)),
    })
}

/// `virgl_renderer_resource_get_info`: size and stride of a plain resource (no GL texture:
/// `tex_id` 0); a blob has no image (zeros, `fd` -1).
///
/// # Safety
/// `info` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_get_info(
    res_id: c_int,
    info: *mut ResourceInfo,
) -> c_int {
    let mut got = None;
    let rc = guard::status("virgl_renderer_resource_get_info", || {
        got = Some(info_of(res_id as u32)?);
        Ok(())
    });
    if let (Some(v), false) = (got, info.is_null()) {
        // SAFETY: writable per the caller's guarantee.
        unsafe { info.write(v) };
    }
    rc
}

/// `virgl_renderer_resource_get_info_ext`: as `get_info`, no dma-buf export.
///
/// # Safety
/// `info` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_get_info_ext(
    res_id: c_int,
    info: *mut ResourceInfoExt,
) -> c_int {
    let mut got = None;
    let rc = guard::status("virgl_renderer_resource_get_info_ext", || {
        got = Some(info_of(res_id as u32)?);
        Ok(())
    });
    if let (Some(base), false) = (got, info.is_null()) {
        let v = ResourceInfoExt {
            version: 0,
            base,
            has_dmabuf_export: false,
            planes: 0,
            modifiers: 0,
            d3d_tex2d: std::ptr::null_mut(),
        };
        // SAFETY: writable per the caller's guarantee.
        unsafe { info.write(v) };
    }
    rc
}

/// `virgl_renderer_get_cursor_data`: no cursor image is kept: NULL (QEMU then skips it).
#[no_mangle]
pub extern "C" fn virgl_renderer_get_cursor_data(
    _res_id: u32,
    _w: *mut u32,
    _h: *mut u32,
) -> *mut c_void {
    std::ptr::null_mut()
}
