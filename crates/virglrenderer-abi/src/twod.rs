//! Plain (non-blob) resources: what a guest kernel creates for its console framebuffer
//! (`RESOURCE_CREATE_2D`, `ATTACH_BACKING`, `TRANSFER_TO_HOST_2D`, `RESOURCE_FLUSH`).
//!
//! Venus never uses them; they exist so that a guest boots and the VMM does not abort. Every
//! resource is 4 bytes per pixel (the formats a console uses), kept in a private buffer:
//! transfers copy between the guest's backing pages (iovecs the VMM gave us) and that buffer.
//! No GL texture exists (`tex_id` 0).

use crate::ffi::{IoVec, ResourceCreateArgs, VirglBox};

/// Bytes per pixel of every plain resource.
pub const BYTES_PER_PIXEL: u64 = 4;
/// Largest plain resource (a 8192 x 8192 framebuffer).
pub const MAX_PLAIN_BYTES: u64 = 8192 * 8192 * BYTES_PER_PIXEL;

/// An iovec the VMM lent us (`base` as an address: valid while attached).
#[derive(Debug, Clone, Copy)]
pub struct Seg {
    pub base: usize,
    pub len: usize,
}

/// Copies the VMM's iovec array (the memory it describes stays the VMM's).
///
/// # Safety
/// `iov` is NULL or points to `n` readable `struct iovec`s.
pub unsafe fn segments(iov: *const IoVec, n: usize) -> Vec<Seg> {
    if iov.is_null() || n == 0 {
        return Vec::new();
    }
    // SAFETY: the caller guarantees `n` iovecs at `iov`.
    let slice = unsafe { std::slice::from_raw_parts(iov, n) };
    slice
        .iter()
        .map(|v| Seg {
            base: v.base as usize,
            len: v.len,
        })
        .collect()
}

/// A plain resource.
#[derive(Debug)]
pub struct Plain {
    pub args: ResourceCreateArgs,
    pub backing: Vec<Seg>,
    /// The VMM's own iovec array of `attach_iov`, handed back by `detach_iov`.
    pub vmm_iov: Option<crate::api_res::Backing>,
    pixels: Vec<u8>,
}

impl Plain {
    /// A zero-filled resource; `None` when it is larger than [`MAX_PLAIN_BYTES`].
    pub fn new(args: ResourceCreateArgs, backing: Vec<Seg>) -> Option<Self> {
        let bytes = u64::from(args.width)
            .checked_mul(u64::from(args.height.max(1)))?
            .checked_mul(BYTES_PER_PIXEL)?;
        (bytes <= MAX_PLAIN_BYTES).then(|| Self {
            args,
            backing,
            vmm_iov: None,
            pixels: vec![0; bytes as usize],
        })
    }

    /// Row pitch of the private buffer.
    pub fn stride(&self) -> u32 {
        self.args.width.saturating_mul(BYTES_PER_PIXEL as u32)
    }

    /// Rows of `bx` as (byte offset in the guest's data, byte offset in ours, length); `None`
    /// when the box is outside the resource.
    fn rows(&self, bx: &VirglBox, offset: u64, stride: u32) -> Option<Vec<(u64, usize, usize)>> {
        let (x, y, w, h) = (
            u64::from(bx.x),
            u64::from(bx.y),
            u64::from(bx.w),
            u64::from(bx.h),
        );
        if x + w > u64::from(self.args.width) || y + h > u64::from(self.args.height.max(1)) {
            return None;
        }
        let ours = u64::from(self.stride());
        let theirs = if stride == 0 { ours } else { u64::from(stride) };
        let len = (w * BYTES_PER_PIXEL) as usize;
        Some(
            (0..h)
                .map(|r| {
                    let dst = (y + r) * ours + x * BYTES_PER_PIXEL;
                    (offset + r * theirs, dst as usize, len)
                })
                .collect(),
        )
    }

    /// Guest -> host: copies box `bx` from `segs` (the backing when empty) at `offset`.
    /// Returns false when the box or the guest data is out of bounds.
    pub fn write_from(&mut self, bx: &VirglBox, offset: u64, stride: u32, segs: &[Seg]) -> bool {
        let Some(rows) = self.rows(bx, offset, stride) else {
            return false;
        };
        let segs = if segs.is_empty() {
            &self.backing[..]
        } else {
            segs
        }
        .to_vec();
        rows.into_iter().all(|(src, dst, len)| {
            // SAFETY: the segments are the VMM's iovecs, valid while attached / for this call
            // (virglrenderer's contract); `copy_segs` bounds every access by their lengths.
            unsafe { copy_segs(&segs, src, &mut self.pixels[dst..dst + len], Dir::FromSegs) }
        })
    }

    /// Host -> guest: copies box `bx` into `segs` (the backing when empty) at `offset`.
    pub fn read_into(&mut self, bx: &VirglBox, offset: u64, stride: u32, segs: &[Seg]) -> bool {
        let Some(rows) = self.rows(bx, offset, stride) else {
            return false;
        };
        let segs = if segs.is_empty() {
            &self.backing[..]
        } else {
            segs
        }
        .to_vec();
        rows.into_iter().all(|(dst, src, len)| {
            // SAFETY: as in `write_from`.
            unsafe { copy_segs(&segs, dst, &mut self.pixels[src..src + len], Dir::ToSegs) }
        })
    }
}

enum Dir {
    FromSegs,
    ToSegs,
}

/// Copies between `buf` and the bytes at `offset` of the concatenated segments.
///
/// # Safety
/// Every segment describes `len` bytes of valid, writable memory not aliasing `buf`.
unsafe fn copy_segs(segs: &[Seg], mut offset: u64, buf: &mut [u8], dir: Dir) -> bool {
    let mut done = 0usize;
    for s in segs {
        if done == buf.len() {
            break;
        }
        let len = s.len as u64;
        if offset >= len {
            offset -= len;
            continue;
        }
        let n = ((len - offset) as usize).min(buf.len() - done);
        let p = (s.base + offset as usize) as *mut u8;
        let chunk = &mut buf[done..done + n];
        // SAFETY: `p..p+n` lies inside the segment (offset < len, n <= len - offset), which the
        // caller guarantees is valid memory distinct from `buf`.
        unsafe {
            match dir {
                Dir::FromSegs => std::ptr::copy_nonoverlapping(p, chunk.as_mut_ptr(), n),
                Dir::ToSegs => std::ptr::copy_nonoverlapping(chunk.as_ptr(), p, n),
            }
        }
        done += n;
        offset = 0;
    }
    done == buf.len()
}
