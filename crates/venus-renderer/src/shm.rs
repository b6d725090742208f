//! Shared memory with the client: the one audited module that touches it.
//!
//! # What it is for
//!
//! The Venus client (Mesa's `libvulkan_virtio.so`) asks for shared memory with
//! `RESOURCE_CREATE_BLOB` (contract §3.3): we create an anonymous shared-memory object
//! ([`SharedMemory`]), keep our own mapping, and hand a duplicate of its fd to the client
//! ([`SharedMemory::try_clone_fd`], sent with `SCM_RIGHTS`), which `mmap`s it at offset 0.
//! Rings (§4), reply streams and command streams live in such objects, and HOST_VISIBLE device
//! memory is one imported into the host driver ([`SharedMemory::new_aligned`],
//! [`SharedMemory::host_ptr`]; §7.6).
//!
//! # Threat model
//!
//! The client is hostile. It can write any byte of the object **at any time, concurrently with
//! us**, including while we are reading or writing the very same bytes, and it chooses the
//! offsets, lengths and ring positions we are asked to use. It also holds the fd. Whatever it
//! does must not crash, hang or corrupt the host. Hence:
//!
//! 1. **No references to shared bytes, ever.** A `&[u8]` or `&mut [u8]` into the mapping would
//!    assert that nobody else modifies those bytes for its lifetime, which the client breaks at
//!    will: undefined behaviour, and in practice "double fetch" bugs (the compiler may re-read a
//!    length after it was checked). This module never creates one and never hands one out.
//! 2. **We only copy or use atomics.** [`SharedMemory::read_into`] copies bytes into private
//!    memory once; callers decode the private copy (DESIGN.md decision 2: copy once before
//!    decoding). [`SharedMemory::write_from`] copies replies in. Ring control words (head, tail,
//!    status) are accessed with [`ShmAtomicU32`]. Internally every one of these is a sequence
//!    of naturally aligned 4-byte atomic accesses (see `shm/mapping.rs`), so our own accesses
//!    never data-race and never partially overlap, whatever offsets the client picks.
//! 3. **Every offset is checked**, with overflow-checked `u64` arithmetic; a bad offset is an
//!    [`ShmError`], never a panic. Bounds are the *requested* size ([`SharedMemory::len`]),
//!    what the client maps, not the page-rounded [`SharedMemory::mapped_len`].
//! 4. **The client cannot shrink the object.** On Linux the memfd is sealed
//!    (`F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`); on macOS a POSIX shm object can be sized
//!    only once. A shrink would otherwise make our accesses fault with SIGBUS. The POSIX
//!    backing on Linux ([`ShmBacking::Posix`], a test seam for the macOS path) has no such
//!    protection: see `shm/sys/posix.rs`.
//! 5. **Values are untrusted.** A copy or an atomic load yields *some* bytes; a torn or
//!    malicious value is just data for the caller's validation. Two reads of the same bytes may
//!    differ: read once, then use the private copy.
//!
//! Regions chosen by the client may overlap (two rings on the same bytes, a reply window over
//! a ring's head). That is memory-safe (rule 2) but callers must not assume that what they wrote
//! is still there.
//!
//! # Memory ordering
//!
//! Byte copies use `Relaxed` atomics. Order them with the control words the usual way:
//! consumer: `tail.load(Acquire)` then [`Region::read_wrapped`], then `head.store(_, Release)`;
//! producer of a reply: [`Region::write_from`] then publish with a `Release` store (or a socket
//! message, a system call that the compiler cannot reorder memory accesses across).
//!
//! # Resource limits
//!
//! Sizes come from the client. This module only rejects sizes that overflow; capping how much
//! memory a client may allocate is the caller's policy: [`crate::limits::ShmBudget`], charged
//! before creation ([`SharedMemory::mapped_len_for`]) and released when the object goes
//! ([`SharedMemory::with_charge`]). Memory is committed lazily (pages are allocated on first
//! touch).
//!
//! # Zeroed memory
//!
//! Every object is new and zero-filled: a fresh memfd (`memfd_create` + `ftruncate`) or a
//! fresh POSIX object (`shm_open(O_CREAT | O_EXCL)` + `ftruncate`, unlinked at once) reads as
//! zeros until written; pages are never recycled between objects by us, so a client can never
//! see bytes of an earlier allocation (CVE-2022-0175 was uninitialised blob memory). This holds
//! for every blob (`blob_id` 0), ring, reply/command stream and HOST_VISIBLE device memory
//! (created here and imported into the driver), and for device-memory blobs (which hand out
//! that same object). Device memory that is not HOST_VISIBLE is allocated by the driver and can
//! never be mapped by the client (no blob of it exists), so it need not be zeroed.
//!
//! # Where the `unsafe` is
//!
//! All of it is in `shm/mapping.rs` (mapping, unmapping, and the single place that turns a
//! checked offset into `&AtomicU32`), each block with its justification. Platform code
//! (creating the object) is in `shm/sys/{linux,posix}.rs` and is safe code.

#[allow(unsafe_code)]
mod mapping;
mod sys;

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use mapping::Mapping;

/// Errors of shared-memory creation and access. Offsets are the caller's (relative to the
/// [`Region`] for region methods).
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    /// `[offset, offset + len)` is not inside `[0, size)` (or `offset + len` overflows).
    #[error("shared memory access of {len} bytes at offset {offset} is outside [0, {size})")]
    OutOfBounds {
        /// Requested offset.
        offset: u64,
        /// Requested length.
        len: u64,
        /// Size of the object or region accessed.
        size: u64,
    },
    /// An atomic access at an offset that is not 4-byte aligned in the mapping.
    #[error("shared memory atomic at offset {offset} is not {align}-byte aligned")]
    Misaligned {
        /// Requested offset.
        offset: u64,
        /// Required alignment.
        align: u64,
    },
    /// A ring buffer whose size is not a power of two.
    #[error("ring buffer size {size} is not a power of two")]
    RingSize {
        /// The rejected size.
        size: u64,
    },
    /// A wrapped ring read longer than the ring itself.
    #[error("ring read of {len} bytes exceeds the ring buffer size {size}")]
    RingReadTooLong {
        /// Requested length.
        len: u64,
        /// Size of the ring buffer.
        size: u64,
    },
    /// `new_aligned` was given an alignment that is not a power of two.
    #[error("shared memory alignment {align} is not a power of two")]
    InvalidAlignment {
        /// The rejected alignment.
        align: u64,
    },
    /// The size cannot be rounded up or mapped in this address space.
    #[error("shared memory size {size} is too large")]
    TooLarge {
        /// The rejected size.
        size: u64,
    },
    /// A system call failed (object creation or mapping).
    #[error("shared memory system call failed: {0}")]
    Io(#[from] io::Error),
}

/// How a [`SharedMemory`] object is created (the platform's choice by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShmBacking {
    /// `memfd_create`, sealed against resizing (Linux only; the default there).
    Memfd,
    /// `shm_open` + immediate `shm_unlink`, not sealed (the only one on macOS, its default;
    /// on Linux a test seam for the macOS path, see `shm/sys/posix.rs`).
    Posix,
}

impl Default for ShmBacking {
    fn default() -> Self {
        sys::DEFAULT_BACKING
    }
}

impl ShmBacking {
    /// The name used by `--shm-backing` and in logs: `memfd` or `posix`.
    pub fn name(self) -> &'static str {
        match self {
            ShmBacking::Memfd => "memfd",
            ShmBacking::Posix => "posix",
        }
    }
}

impl fmt::Display for ShmBacking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ShmBacking {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "memfd" => Ok(ShmBacking::Memfd),
            "posix" => Ok(ShmBacking::Posix),
            _ => Err(format!(
                "unknown shared-memory backing {s:?} (memfd or posix)"
            )),
        }
    }
}

/// How a context creates its shared memory: the size granule and the backing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShmConfig {
    /// Sizes and addresses are multiples of this (a power of two: the host page-size profile,
    /// e.g. 16384 for Apple silicon; the real page size applies anyway).
    pub granule: u64,
    /// See [`ShmBacking`].
    pub backing: ShmBacking,
}

impl Default for ShmConfig {
    fn default() -> Self {
        ShmConfig {
            granule: 1,
            backing: ShmBacking::default(),
        }
    }
}

/// An anonymous shared-memory object, its fd and our read-write mapping of it.
///
/// Zero-filled at creation. The fd's size and the mapping are [`SharedMemory::mapped_len`]
/// bytes (the requested size rounded up to the page size and to the requested alignment);
/// accesses are bounded by [`SharedMemory::len`], the requested size. Dropping it unmaps the
/// memory and closes our fd; fds handed out with [`SharedMemory::try_clone_fd`] stay valid and
/// keep the memory alive for their holders.
///
/// `Send + Sync`: the mapping is only reachable through atomics (see `shm/mapping.rs`) and the
/// fd is an `OwnedFd`, so it can be shared behind an [`Arc`] by the ring thread, the socket
/// thread and the liveness ticker.
pub struct SharedMemory {
    map: Mapping,
    fd: OwnedFd,
    len: u64,
    /// What this object costs its context's [`crate::limits::ShmBudget`], released when it
    /// goes (after the unmap: fields drop in declaration order).
    _charge: Option<crate::limits::Charge>,
}

impl SharedMemory {
    /// Creates a zero-filled object of `size` bytes, page aligned.
    ///
    /// `size` may be 0 (the client asserts it gets an fd even then): one page is mapped, and
    /// every non-empty access is out of bounds.
    pub fn new(size: u64) -> Result<Self, ShmError> {
        Self::new_aligned(size, 1)
    }

    /// Like [`SharedMemory::new`], but the mapping address and [`SharedMemory::mapped_len`] are
    /// multiples of `align` as well as of the page size (for `VK_EXT_external_memory_host`:
    /// pass `minImportedHostPointerAlignment`). `align` must be a power of two.
    pub fn new_aligned(size: u64, align: u64) -> Result<Self, ShmError> {
        Self::with_backing(size, align, ShmBacking::default())
    }

    /// Like [`SharedMemory::new_aligned`], created with `backing` (an
    /// [`io::ErrorKind::Unsupported`] error where the platform lacks it).
    pub fn with_backing(size: u64, align: u64, backing: ShmBacking) -> Result<Self, ShmError> {
        if !align.is_power_of_two() {
            return Err(ShmError::InvalidAlignment { align });
        }
        let page = rustix::param::page_size();
        let granule = align.max(page as u64);
        let too_large = ShmError::TooLarge { size };
        let Some(mapped_len) = size.max(1).checked_next_multiple_of(granule) else {
            return Err(too_large);
        };
        let (Ok(map_len), Ok(map_align)) = (usize::try_from(mapped_len), usize::try_from(granule))
        else {
            return Err(too_large);
        };
        let fd = sys::create_anonymous(mapped_len, backing)?;
        let map = Mapping::new(fd.as_fd(), map_len, map_align, page)?;
        Ok(Self {
            map,
            fd,
            len: size,
            _charge: None,
        })
    }

    /// The bytes an object of `size` bytes created with alignment `align` maps (what
    /// [`SharedMemory::mapped_len`] will be), or `None` when that overflows: what a
    /// [`crate::limits::ShmBudget`] is charged before creating it.
    pub fn mapped_len_for(size: u64, align: u64) -> Option<u64> {
        let granule = align.max(rustix::param::page_size() as u64);
        size.max(1).checked_next_multiple_of(granule)
    }

    /// Attaches the budget charge this object was created under: released when it is dropped.
    pub fn with_charge(mut self, charge: crate::limits::Charge) -> Self {
        self._charge = Some(charge);
        self
    }

    /// The requested size in bytes: the bound of every access.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the requested size is 0.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Size of the fd and of our mapping: [`SharedMemory::len`] rounded up to the page size and
    /// to the alignment given to [`SharedMemory::new_aligned`] (at least one page).
    pub fn mapped_len(&self) -> u64 {
        self.map.len() as u64
    }

    /// The object's fd (ours; keep it, use [`SharedMemory::try_clone_fd`] to give one away).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// A new close-on-exec fd for the same object (`F_DUPFD_CLOEXEC`), to send to the client
    /// with `SCM_RIGHTS`. The client may map it at offset 0 and sees our bytes coherently.
    pub fn try_clone_fd(&self) -> io::Result<OwnedFd> {
        self.fd.try_clone()
    }

    /// Start of our mapping: aligned as requested, valid for [`SharedMemory::mapped_len`]
    /// bytes for as long as `self` lives.
    ///
    /// Only for handing to a host-driver import call (`VkImportMemoryHostPointerInfoEXT`);
    /// the caller must keep `self` alive (e.g. an [`Arc`] clone) until the driver object that
    /// imported it is destroyed. Never dereference it: read and write through this type. (What
    /// the driver writes there is, to our accessors, just like what the client writes.)
    pub fn host_ptr(&self) -> NonNull<u8> {
        self.map.as_ptr()
    }

    /// Copies `dst.len()` bytes at `offset` into `dst` (private memory). Each shared byte is
    /// read exactly once; decode `dst`, never re-read shared memory for the same data.
    pub fn read_into(&self, offset: u64, dst: &mut [u8]) -> Result<(), ShmError> {
        self.window().read_into(offset, dst)
    }

    /// Like [`SharedMemory::read_into`], into a new `Vec` of `len` bytes (allocated only after
    /// the bounds check, so at most [`SharedMemory::len`] bytes).
    pub fn read_vec(&self, offset: u64, len: u64) -> Result<Vec<u8>, ShmError> {
        self.window().read_vec(offset, len)
    }

    /// Copies `src` to `offset`. Bytes outside `[offset, offset + src.len())` are left alone.
    pub fn write_from(&self, offset: u64, src: &[u8]) -> Result<(), ShmError> {
        self.window().write_from(offset, src)
    }

    /// Reads `dst.len()` bytes from the ring buffer `[ring_offset, ring_offset + ring_size)`
    /// starting at ring position `pos` (a free-running counter: the byte is at
    /// `pos & (ring_size - 1)`), wrapping around the end. `ring_size` must be a power of two
    /// and `dst.len() <= ring_size`.
    pub fn read_wrapped(
        &self,
        ring_offset: u64,
        ring_size: u64,
        pos: u32,
        dst: &mut [u8],
    ) -> Result<(), ShmError> {
        self.window()
            .sub(ring_offset, ring_size)?
            .read_wrapped(pos, dst)
    }

    /// The 4-byte word at `offset` as an atomic. `offset` must be 4-byte aligned and
    /// `offset + 4 <= len()`.
    pub fn atomic_u32(&self, offset: u64) -> Result<ShmAtomicU32<'_>, ShmError> {
        self.window().atomic_u32(offset)
    }

    /// A [`Region`] `[offset, offset + len)` of this object, keeping it alive.
    pub fn region(self: &Arc<Self>, offset: u64, len: u64) -> Result<Region, ShmError> {
        let w = self.window().sub(offset, len)?;
        Ok(Region {
            shm: Arc::clone(self),
            offset: w.base,
            len: w.len,
        })
    }

    fn window(&self) -> Window<'_> {
        Window {
            shm: self,
            base: 0,
            len: self.len,
        }
    }
}

impl AsFd for SharedMemory {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemory")
            .field("fd", &self.fd)
            .field("len", &self.len)
            .field("mapped_len", &self.map.len())
            .field("host_ptr", &self.map.as_ptr())
            .finish()
    }
}

/// A bounds-checked window `[offset, offset + len)` of a [`SharedMemory`] (a ring, its buffer,
/// a reply stream), holding an [`Arc`] to it. All offsets of its methods are relative to the
/// region, and accesses cannot leave it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Region {
    shm: Arc<SharedMemory>,
    offset: u64,
    len: u64,
}

impl Region {
    /// The object this region belongs to.
    pub fn shm(&self) -> &Arc<SharedMemory> {
        &self.shm
    }

    /// Start of the region in the object.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Length of the region.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the region is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sub-region `[offset, offset + len)` of this region.
    pub fn subregion(&self, offset: u64, len: u64) -> Result<Region, ShmError> {
        let w = self.window().sub(offset, len)?;
        Ok(Region {
            shm: Arc::clone(&self.shm),
            offset: w.base,
            len: w.len,
        })
    }

    /// See [`SharedMemory::read_into`].
    pub fn read_into(&self, offset: u64, dst: &mut [u8]) -> Result<(), ShmError> {
        self.window().read_into(offset, dst)
    }

    /// See [`SharedMemory::read_vec`].
    pub fn read_vec(&self, offset: u64, len: u64) -> Result<Vec<u8>, ShmError> {
        self.window().read_vec(offset, len)
    }

    /// See [`SharedMemory::write_from`].
    pub fn write_from(&self, offset: u64, src: &[u8]) -> Result<(), ShmError> {
        self.window().write_from(offset, src)
    }

    /// Treats the whole region as a ring buffer (its length must be a power of two) and reads
    /// `dst.len() <= len()` bytes from position `pos`, see [`SharedMemory::read_wrapped`].
    pub fn read_wrapped(&self, pos: u32, dst: &mut [u8]) -> Result<(), ShmError> {
        self.window().read_wrapped(pos, dst)
    }

    /// See [`SharedMemory::atomic_u32`]; the alignment requirement applies to the absolute
    /// offset in the object.
    pub fn atomic_u32(&self, offset: u64) -> Result<ShmAtomicU32<'_>, ShmError> {
        self.window().atomic_u32(offset)
    }

    fn window(&self) -> Window<'_> {
        Window {
            shm: &self.shm,
            base: self.offset,
            len: self.len,
        }
    }
}

/// An atomic `u32` in shared memory (a ring's head, tail or status word), borrowed from a
/// [`SharedMemory`] or [`Region`]. The client may change it at any time: every value is
/// untrusted.
#[derive(Clone, Copy)]
pub struct ShmAtomicU32<'a> {
    atomic: &'a AtomicU32,
}

impl ShmAtomicU32<'_> {
    /// [`AtomicU32::load`].
    #[inline]
    pub fn load(&self, order: Ordering) -> u32 {
        self.atomic.load(order)
    }

    /// [`AtomicU32::store`].
    #[inline]
    pub fn store(&self, value: u32, order: Ordering) {
        self.atomic.store(value, order)
    }

    /// [`AtomicU32::swap`].
    #[inline]
    pub fn swap(&self, value: u32, order: Ordering) -> u32 {
        self.atomic.swap(value, order)
    }

    /// [`AtomicU32::fetch_add`] (wrapping).
    #[inline]
    pub fn fetch_add(&self, value: u32, order: Ordering) -> u32 {
        self.atomic.fetch_add(value, order)
    }

    /// [`AtomicU32::fetch_or`] (e.g. setting ALIVE or FATAL in a ring's status).
    #[inline]
    pub fn fetch_or(&self, value: u32, order: Ordering) -> u32 {
        self.atomic.fetch_or(value, order)
    }

    /// [`AtomicU32::fetch_and`] (e.g. clearing IDLE in a ring's status).
    #[inline]
    pub fn fetch_and(&self, value: u32, order: Ordering) -> u32 {
        self.atomic.fetch_and(value, order)
    }
}

impl fmt::Debug for ShmAtomicU32<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ShmAtomicU32")
            .field(&self.load(Ordering::Relaxed))
            .finish()
    }
}

/// `[base, base + len)` of `shm`, with `base + len <= shm.len` (checked on construction). The
/// shared implementation of [`SharedMemory`]'s and [`Region`]'s accessors: offsets are checked
/// against `len` and reported relative to the window.
#[derive(Clone, Copy)]
struct Window<'a> {
    shm: &'a SharedMemory,
    base: u64,
    len: u64,
}

impl<'a> Window<'a> {
    /// The absolute mapping offset of `[offset, offset + len)`, checked against the window.
    fn resolve(&self, offset: u64, len: u64) -> Result<usize, ShmError> {
        let oob = ShmError::OutOfBounds {
            offset,
            len,
            size: self.len,
        };
        match offset.checked_add(len) {
            Some(end) if end <= self.len => {}
            _ => return Err(oob),
        }
        // Cannot fail: base + offset + len <= shm.len <= mapped_len, which is a usize.
        self.base
            .checked_add(offset)
            .and_then(|abs| usize::try_from(abs).ok())
            .ok_or(oob)
    }

    fn sub(&self, offset: u64, len: u64) -> Result<Window<'a>, ShmError> {
        let abs = self.resolve(offset, len)?;
        Ok(Window {
            shm: self.shm,
            base: abs as u64,
            len,
        })
    }

    fn read_into(&self, offset: u64, dst: &mut [u8]) -> Result<(), ShmError> {
        let len = dst.len() as u64;
        let abs = self.resolve(offset, len)?;
        self.shm
            .map
            .copy_out(abs, dst)
            .ok_or_else(|| self.oob(offset, len))
    }

    fn read_vec(&self, offset: u64, len: u64) -> Result<Vec<u8>, ShmError> {
        self.resolve(offset, len)?;
        // `len <= self.len <= mapped_len`, a usize.
        let n = usize::try_from(len).map_err(|_| self.oob(offset, len))?;
        let mut v = vec![0; n];
        self.read_into(offset, &mut v)?;
        Ok(v)
    }

    fn write_from(&self, offset: u64, src: &[u8]) -> Result<(), ShmError> {
        let len = src.len() as u64;
        let abs = self.resolve(offset, len)?;
        self.shm
            .map
            .copy_in(abs, src)
            .ok_or_else(|| self.oob(offset, len))
    }

    fn read_wrapped(&self, pos: u32, dst: &mut [u8]) -> Result<(), ShmError> {
        let size = self.len;
        if !size.is_power_of_two() {
            return Err(ShmError::RingSize { size });
        }
        let len = dst.len() as u64;
        if len > size {
            return Err(ShmError::RingReadTooLong { len, size });
        }
        let start = u64::from(pos) & (size - 1);
        // `size - start >= 1`; the first part ends at the ring's end or at dst's end.
        let first = usize::try_from(size - start).map_or(dst.len(), |n| n.min(dst.len()));
        let (a, b) = dst.split_at_mut(first);
        self.read_into(start, a)?;
        self.read_into(0, b)
    }

    fn atomic_u32(&self, offset: u64) -> Result<ShmAtomicU32<'a>, ShmError> {
        let abs = self.resolve(offset, mapping::WORD as u64)?;
        let atomic = self.shm.map.word(abs).ok_or(ShmError::Misaligned {
            offset,
            align: mapping::WORD as u64,
        })?;
        Ok(ShmAtomicU32 { atomic })
    }

    fn oob(&self, offset: u64, len: u64) -> ShmError {
        ShmError::OutOfBounds {
            offset,
            len,
            size: self.len,
        }
    }
}
