//! Runtime of the generated protocol <-> C conversions.
//!
//! [`LowerCx`] allocates C structs, arrays and chains in a bump arena that lives for one driver
//! call; pointers handed to the driver point into that arena or into the decoded command
//! (whose arena outlives the call). Handle ids are translated through a [`HandleMap`] (the
//! context's object table), checking the object type. After the call, `raise` reads the outputs
//! back, guided by the request's skeleton, so that only memory this module allocated is read.
//!
//! pNext chains are walked with loops ([`walk_chain`], [`walk_out_chain`], [`raise_chain_with`]):
//! each link converts only its own part ([`LowerLink`], [`RaiseLink`]) and the walkers link the
//! `pNext` pointers, so stack use does not depend on chain length (a client may send up to
//! 256 links, the decoder's limit, on any ring thread).

use core::ffi::{c_char, c_void};

use bumpalo::Bump;
use venus_protocol::structs::Ext;
use venus_protocol::{Chain, ChainNode, Handle, Id, Str};

use crate::generated::vk;

/// Why a protocol value could not be turned into a driver call.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LowerError {
    #[error("unknown {ty} id {id}")]
    UnknownId { ty: &'static str, id: u64 },
    /// A handle vk.xml does not mark optional was NULL (`special::NULLABLE_HANDLES` lists the
    /// exceptions): `at` is the struct or command, `member` the member or parameter.
    #[error("{at}.{member}: {ty} must not be VK_NULL_HANDLE")]
    NullHandle {
        at: &'static str,
        member: &'static str,
        ty: &'static str,
    },
    #[error("host {ty} handle {host:#x} has no guest id")]
    UnknownHost { ty: &'static str, host: u64 },
    #[error("size {0} does not fit this host")]
    Size(u64),
    #[error("{0} cannot be an output")]
    NotAnOutput(&'static str),
    #[error("the driver's output chain does not match the request (sType {0})")]
    ChainMismatch(i32),
    /// A size/stride/limit rule (`xtask/src/special.rs` `CHECKS`) failed: `at` is the command
    /// or struct, `rule` names the parameters, the rule and the values.
    #[error("{at}: {rule}")]
    Rule { at: &'static str, rule: String },
    /// A rule against a device limit ran without limits (`LowerCx::with_limits`).
    #[error("{at}: checking {limit} needs the device limits, and this call has none")]
    NoLimits {
        at: &'static str,
        limit: &'static str,
    },
}

impl LowerError {
    /// A failed rule of `at` (command or struct).
    pub fn rule(at: &'static str, rule: String) -> Self {
        LowerError::Rule { at, rule }
    }
}

/// The refusal of a value vk.xml does not define for its type.
#[cold]
fn undefined<T: venus_protocol::wire::Defined>(v: T, at: &'static str, member: &str) -> LowerError {
    let field = member.split('[').next().unwrap_or(member);
    LowerError::rule(
        at,
        format!(
            "{member} {v:?} is not a valid {} value (VUID-{at}-{field}-parameter)",
            T::NAME
        ),
    )
}

/// Guest object id <-> host handle, with the object type checked.
pub trait HandleMap {
    /// The host handle of guest `id` if it names an object of `object_type` (`VkObjectType`).
    fn host(&self, object_type: i32, id: u64) -> Option<u64>;
    /// The guest id of host handle `host` of `object_type`.
    fn guest(&self, object_type: i32, host: u64) -> Option<u64>;
    /// What the host recorded about object `id`'s size (buffers, images, memory, query
    /// pools) for the range rules ([`crate::ranges`]). A map that records nothing makes
    /// every range rule fail: it never passes unchecked.
    fn extent(&self, object_type: i32, id: u64) -> Option<crate::ranges::Extent> {
        let _ = (object_type, id);
        None
    }
}

/// Conversion context for one driver call.
///
/// Device-level rules (`DeviceLimit`/`MemberLimit` checks: push constant ranges, viewport and
/// vertex binding counts, ...) read the device's `VkPhysicalDeviceLimits`: pass them with
/// [`LowerCx::with_limits`] or [`LowerCx::set_limits`]. A rule that needs them fails with
/// [`LowerError::NoLimits`] when they are missing; it never passes silently.
pub struct LowerCx<'b, M: HandleMap> {
    arena: &'b Bump,
    map: &'b M,
    limits: Option<&'b vk::PhysicalDeviceLimits>,
    /// sTypes of input chain links that never reach the driver (see [`LowerCx::set_stripped`]).
    stripped: &'b [i32],
    /// `VK_QUEUE_FAMILY_FOREIGN_EXT` is lowered as `VK_QUEUE_FAMILY_IGNORED` (see
    /// [`LowerCx::set_foreign_queue_family_ignored`]).
    foreign_as_ignored: bool,
    /// Validates SPIR-V modules before the driver compiles them (the generator's `SpirvModule`
    /// rows; see [`LowerCx::set_spirv_check`]).
    spirv: Option<&'b SpirvCheck>,
}

/// A SPIR-V validator: `Err` with the reason when the words are not a module the driver may
/// be given.
pub type SpirvCheck = dyn Fn(&[u32]) -> Result<(), String> + Sync;

/// `VK_QUEUE_FAMILY_FOREIGN_EXT`.
pub const QUEUE_FAMILY_FOREIGN: u32 = !2;
/// `VK_QUEUE_FAMILY_IGNORED`.
pub const QUEUE_FAMILY_IGNORED: u32 = !0;

impl<'b, M: HandleMap> LowerCx<'b, M> {
    /// A context without device limits (instance-level calls).
    pub fn new(arena: &'b Bump, map: &'b M) -> Self {
        LowerCx {
            arena,
            map,
            limits: None,
            stripped: &[],
            foreign_as_ignored: false,
            spirv: None,
        }
    }
    /// A context whose rules check against `limits` (the limits of the device the call's
    /// handles belong to).
    pub fn with_limits(
        arena: &'b Bump,
        map: &'b M,
        limits: Option<&'b vk::PhysicalDeviceLimits>,
    ) -> Self {
        LowerCx {
            arena,
            map,
            limits,
            stripped: &[],
            foreign_as_ignored: false,
            spirv: None,
        }
    }
    /// Input chain links of these sTypes are left out of every lowered chain (structs of
    /// extensions the host emulates for the client, which the driver must not see).
    pub fn set_stripped(&mut self, s_types: &'b [i32]) {
        self.stripped = s_types;
    }
    /// Queue family indices of barriers (the generator's `QueueFamily` rows) are lowered with
    /// `VK_QUEUE_FAMILY_FOREIGN_EXT` replaced by `VK_QUEUE_FAMILY_IGNORED`: for a driver without
    /// `VK_EXT_queue_family_foreign`, which the host emulates (no ownership transfer happens:
    /// the memory is the host's own).
    pub fn set_foreign_queue_family_ignored(&mut self, on: bool) {
        self.foreign_as_ignored = on;
    }
    /// SPIR-V modules (`VkShaderModuleCreateInfo.pCode`, also chained into pipeline stages) are
    /// checked by `check` before the driver sees them: drivers compile what they are given and
    /// crash on malformed modules (found by the `dispatch_lavapipe` fuzz target).
    pub fn set_spirv_check(&mut self, check: &'b SpirvCheck) {
        self.spirv = Some(check);
    }
    /// The generated `SpirvModule` rule: `Err` when a validator is set and rejects `code`.
    pub fn check_spirv(&self, at: &'static str, code: &[u32]) -> Result<(), LowerError> {
        match self.spirv {
            Some(check) => check(code).map_err(|e| {
                LowerError::rule(at, format!("pCode is not a valid SPIR-V module: {e}"))
            }),
            None => Ok(()),
        }
    }
    /// A queue family index as the driver must see it.
    pub fn queue_family(&self, index: u32) -> u32 {
        if self.foreign_as_ignored && index == QUEUE_FAMILY_FOREIGN {
            QUEUE_FAMILY_IGNORED
        } else {
            index
        }
    }
    /// Sets (or clears) the device limits the rules check against.
    pub fn set_limits(&mut self, limits: Option<&'b vk::PhysicalDeviceLimits>) {
        self.limits = limits;
    }
    /// The device limits for a rule of `at` on `limit`.
    pub fn limits(
        &self,
        at: &'static str,
        limit: &'static str,
    ) -> Result<&'b vk::PhysicalDeviceLimits, LowerError> {
        self.limits.ok_or(LowerError::NoLimits { at, limit })
    }
    /// An image create info's `extent` (`[width, height, depth]`) and `mip_levels` against its
    /// `image_type`, `flags` and the device's image dimension limits (the generator's
    /// `ImageExtent` rows): height and depth 1 for 1D, depth 1 for 2D, a cube-compatible 2D
    /// image square within `maxImageDimensionCube`, each dimension within
    /// `maxImageDimension1D/2D/3D`, and `mip_levels <= floor(log2(max(w, h, d))) + 1`.
    pub fn image_extent(
        &self,
        at: &'static str,
        image_type: i32,
        flags: u32,
        extent: [u32; 3],
        mip_levels: u32,
        vuid: &'static str,
    ) -> Result<(), LowerError> {
        const CUBE_COMPATIBLE: u32 = 0x10;
        let [w, h, d] = extent;
        let fail = |what: String| Err(LowerError::rule(at, format!("{what} ({vuid})")));
        let (name, max) = match image_type {
            0 => (
                "maxImageDimension1D",
                self.limits(at, "maxImageDimension1D")?
                    .max_image_dimension1_d,
            ),
            1 if flags & CUBE_COMPATIBLE != 0 => (
                "maxImageDimensionCube",
                self.limits(at, "maxImageDimensionCube")?
                    .max_image_dimension_cube,
            ),
            1 => (
                "maxImageDimension2D",
                self.limits(at, "maxImageDimension2D")?
                    .max_image_dimension2_d,
            ),
            2 => (
                "maxImageDimension3D",
                self.limits(at, "maxImageDimension3D")?
                    .max_image_dimension3_d,
            ),
            t => return fail(format!("imageType {t} is not 1D, 2D or 3D")),
        };
        if image_type == 0 && (h != 1 || d != 1) {
            return fail(format!(
                "a 1D image has extent {w}x{h}x{d}: height and depth must be 1"
            ));
        }
        if image_type == 1 && d != 1 {
            return fail(format!(
                "a 2D image has extent {w}x{h}x{d}: depth must be 1"
            ));
        }
        if image_type == 1 && flags & CUBE_COMPATIBLE != 0 && w != h {
            return fail(format!(
                "a cube-compatible image has extent {w}x{h}: not square"
            ));
        }
        if let Some(big) = [w, h, d].into_iter().find(|v| *v > max) {
            return fail(format!("extent {w}x{h}x{d}: {big} exceeds {name} {max}"));
        }
        let levels = 32 - w.max(h).max(d).max(1).leading_zeros();
        if mip_levels > levels {
            return fail(format!(
                "mipLevels {mip_levels} exceeds {levels} (floor(log2(max extent)) + 1 for {w}x{h}x{d})"
            ));
        }
        Ok(())
    }
    /// Bytes to give the driver for an output it fills at `i * stride` for `count` elements of
    /// at most `max_element` bytes: at least `requested` (what the client asked for), at most
    /// `limit`.
    #[allow(clippy::too_many_arguments)]
    pub fn output_extent(
        &self,
        at: &'static str,
        buffer: &'static str,
        count: u64,
        stride: u64,
        max_element: u64,
        limit: u64,
        requested: usize,
    ) -> Result<usize, LowerError> {
        let extent = match count {
            0 => 0,
            n => (n - 1).saturating_mul(stride).saturating_add(max_element),
        };
        let need = extent.max(requested as u64);
        if need > limit {
            return Err(LowerError::rule(
                at,
                format!("{buffer}: (count {count} - 1) * stride {stride} + {max_element} = {extent} bytes exceeds {limit}"),
            ));
        }
        self.size(need)
    }
    pub fn alloc<T>(&mut self, v: T) -> &'b mut T {
        self.arena.alloc(v)
    }
    /// Allocation for raised (reply) values.
    pub fn alloc_out<T>(&mut self, v: T) -> &'b T {
        self.arena.alloc(v)
    }
    pub fn size(&self, v: u64) -> Result<usize, LowerError> {
        usize::try_from(v).map_err(|_| LowerError::Size(v))
    }
    pub fn sizes<const N: usize>(&self, v: &[u64; N]) -> Result<[usize; N], LowerError> {
        let mut out = [0usize; N];
        for (o, x) in out.iter_mut().zip(v) {
            *o = self.size(*x)?;
        }
        Ok(out)
    }
    pub fn sizes_slice(&mut self, v: &[u64]) -> Result<*const usize, LowerError> {
        if v.is_empty() {
            return Ok(core::ptr::null());
        }
        for x in v {
            self.size(*x)?;
        }
        Ok(self
            .arena
            .alloc_slice_fill_iter(v.iter().map(|x| *x as usize))
            .as_ptr())
    }
    /// The host handle of `id` (NULL stays NULL).
    /// The handle map (registry) this conversion reads.
    pub(crate) fn map(&self) -> &'b M {
        self.map
    }
    pub fn host<T: Handle>(&self, id: Id<T>) -> Result<u64, LowerError> {
        if id.is_null() {
            return Ok(0);
        }
        self.map
            .host(T::OBJECT_TYPE, id.raw())
            .ok_or(LowerError::UnknownId {
                ty: T::NAME,
                id: id.raw(),
            })
    }
    /// The host handle of `id`, which must not be NULL (member or parameter `member` of `at`,
    /// a handle vk.xml does not mark optional).
    pub fn host_non_null<T: Handle>(
        &self,
        id: Id<T>,
        at: &'static str,
        member: &'static str,
    ) -> Result<u64, LowerError> {
        if id.is_null() {
            return Err(LowerError::NullHandle {
                at,
                member,
                ty: T::NAME,
            });
        }
        self.host(id)
    }
    /// The guest id of a host handle the driver returned (NULL stays NULL).
    pub fn guest<T: Handle>(&self, host: u64) -> Result<Id<T>, LowerError> {
        if host == 0 {
            return Ok(Id::NULL);
        }
        self.map
            .guest(T::OBJECT_TYPE, host)
            .map(Id::from_raw)
            .ok_or(LowerError::UnknownHost { ty: T::NAME, host })
    }
    pub fn guests_fixed<T: Handle, const N: usize>(
        &self,
        v: &[u64; N],
    ) -> Result<[Id<T>; N], LowerError> {
        let mut out = [Id::NULL; N];
        for (o, h) in out.iter_mut().zip(v) {
            *o = self.guest(*h)?;
        }
        Ok(out)
    }
    pub fn hosts<T: Handle, V: Copy>(
        &mut self,
        ids: &[Id<T>],
        make: fn(u64) -> V,
    ) -> Result<*const V, LowerError> {
        if ids.is_empty() {
            return Ok(core::ptr::null());
        }
        let mut v = bumpalo::collections::Vec::with_capacity_in(ids.len(), self.arena);
        for id in ids {
            v.push(make(self.host(*id)?));
        }
        Ok(v.into_bump_slice().as_ptr())
    }
    /// [`Self::hosts`] of an array whose elements vk.xml does not allow to be NULL (member or
    /// parameter `member` of `at`).
    pub fn hosts_non_null<T: Handle, V: Copy>(
        &mut self,
        ids: &[Id<T>],
        make: fn(u64) -> V,
        at: &'static str,
        member: &'static str,
    ) -> Result<*const V, LowerError> {
        if ids.iter().any(|id| id.is_null()) {
            return Err(LowerError::NullHandle {
                at,
                member,
                ty: T::NAME,
            });
        }
        self.hosts(ids, make)
    }
    pub fn hosts_fixed<T: Handle, V: Copy + Default, const N: usize>(
        &self,
        ids: &[Id<T>; N],
        make: fn(u64) -> V,
    ) -> Result<[V; N], LowerError> {
        let mut out = [V::default(); N];
        for (o, id) in out.iter_mut().zip(ids) {
            *o = make(self.host(*id)?);
        }
        Ok(out)
    }
    pub fn lower_fixed<P, C: Copy + Default, const N: usize>(
        &mut self,
        v: &[P; N],
        mut f: impl FnMut(&P, &mut Self) -> Result<C, LowerError>,
    ) -> Result<[C; N], LowerError> {
        let mut out = [C::default(); N];
        for (o, x) in out.iter_mut().zip(v) {
            *o = f(x, self)?;
        }
        Ok(out)
    }
    pub fn lower_slice<P, C>(
        &mut self,
        v: &[P],
        f: impl FnMut(&P, &mut Self) -> Result<C, LowerError>,
    ) -> Result<*const C, LowerError> {
        self.lower_slice_mut(v, f).map(|p| p as *const C)
    }
    pub fn lower_slice_mut<P, C>(
        &mut self,
        v: &[P],
        mut f: impl FnMut(&P, &mut Self) -> Result<C, LowerError>,
    ) -> Result<*mut C, LowerError> {
        if v.is_empty() {
            return Ok(core::ptr::null_mut());
        }
        let mut out = bumpalo::collections::Vec::with_capacity_in(v.len(), self.arena);
        for x in v {
            out.push(f(x, self)?);
        }
        Ok(out.into_bump_slice_mut().as_mut_ptr())
    }
    /// A plain slice passed as is (its layout is the C layout); empty is NULL.
    /// `v` if vk.xml defines it for its type (VUID-`at`-`member`-parameter), else a rule error.
    #[inline]
    pub fn defined<T: venus_protocol::wire::Defined>(
        &self,
        v: T,
        at: &'static str,
        member: &'static str,
    ) -> Result<T, LowerError> {
        if v.is_defined() {
            Ok(v)
        } else {
            Err(undefined(v, at, member))
        }
    }
    /// [`Self::slice`] of values each checked as [`Self::defined`].
    pub fn defined_slice<T: venus_protocol::wire::Defined>(
        &self,
        v: &[T],
        at: &'static str,
        member: &'static str,
    ) -> Result<*const T, LowerError> {
        match v.iter().position(|x| !x.is_defined()) {
            None => Ok(self.slice(v)),
            Some(i) => Err(undefined(v[i], at, &format!("{member}[{i}]"))),
        }
    }
    /// [`Self::opt_ref`] of a value checked as [`Self::defined`].
    pub fn defined_ref<T: venus_protocol::wire::Defined>(
        &self,
        v: Option<&T>,
        at: &'static str,
        member: &'static str,
    ) -> Result<*const T, LowerError> {
        match v {
            Some(x) if !x.is_defined() => Err(undefined(*x, at, member)),
            _ => Ok(self.opt_ref(v)),
        }
    }
    pub fn slice<T>(&self, v: &[T]) -> *const T {
        if v.is_empty() {
            core::ptr::null()
        } else {
            v.as_ptr()
        }
    }
    pub fn opt_ref<T>(&self, v: Option<&T>) -> *const T {
        v.map_or(core::ptr::null(), |r| r as *const T)
    }
    pub fn opt_alloc<T>(&mut self, v: Option<T>) -> *const T {
        match v {
            Some(x) => self.arena.alloc(x) as *const T,
            None => core::ptr::null(),
        }
    }
    pub fn chars<const N: usize>(&self, v: &[u8; N]) -> [c_char; N] {
        v.map(|b| b as c_char)
    }
    pub fn raise_chars<const N: usize>(&self, v: &[c_char; N]) -> [u8; N] {
        let mut out = v.map(|b| b as u8);
        if let Some(last) = out.last_mut() {
            *last = 0;
        }
        out
    }
    pub fn str(&self, s: Option<Str<'_>>) -> *const c_char {
        s.map_or(core::ptr::null(), |s| {
            s.as_bytes_with_nul().as_ptr() as *const c_char
        })
    }
    pub fn strs(&mut self, v: &[Option<Str<'_>>]) -> *const *const c_char {
        if v.is_empty() {
            return core::ptr::null();
        }
        let ptrs = self
            .arena
            .alloc_slice_fill_iter(v.iter().map(|s| self.str(*s)));
        ptrs.as_ptr()
    }
    pub fn blob(&self, v: &[u8]) -> *const c_void {
        self.slice(v) as *const c_void
    }
    /// `n` zeroed elements for the driver to fill (NULL for 0).
    pub fn zeroed_mut<T: Default + Copy>(&mut self, n: usize) -> *mut T {
        if n == 0 {
            return core::ptr::null_mut();
        }
        self.arena
            .alloc_slice_fill_copy(n, T::default())
            .as_mut_ptr()
    }
    pub fn raise_fixed<P, C, const N: usize>(
        &mut self,
        skeleton: &[P; N],
        c: &[C; N],
        f: fn(&P, &C, &mut Self) -> Result<P, LowerError>,
    ) -> Result<[P; N], LowerError>
    where
        P: Copy + Default,
    {
        let mut out = [P::default(); N];
        for ((o, s), x) in out.iter_mut().zip(skeleton).zip(c) {
            *o = f(s, x, self)?;
        }
        Ok(out)
    }

    /// Raises `min(count, skeleton.len())` filled C elements.
    ///
    /// # Safety
    /// `c` must be NULL or the array that `lower_out` allocated for `skeleton` (at least
    /// `skeleton.len()` initialised elements in this context's arena).
    pub unsafe fn raise_slice<P: Copy, C>(
        &mut self,
        skeleton: &'b [P],
        c: *const C,
        count: usize,
        f: fn(&P, &C, &mut Self) -> Result<P, LowerError>,
    ) -> Result<&'b [P], LowerError> {
        let n = count.min(skeleton.len());
        if n == 0 || c.is_null() {
            return Ok(&[]);
        }
        // SAFETY: per this function's contract `c` points to >= skeleton.len() >= n initialised
        // elements that live in the arena for 'b and that the driver no longer writes.
        let cs = unsafe { core::slice::from_raw_parts(c, n) };
        let mut out = bumpalo::collections::Vec::with_capacity_in(n, self.arena);
        for (s, x) in skeleton.iter().zip(cs) {
            out.push(f(s, x, self)?);
        }
        Ok(out.into_bump_slice())
    }

    /// Copies `min(count, cap)` plain elements the driver wrote.
    ///
    /// # Safety
    /// `c` must be NULL or an array of at least `cap` initialised elements allocated by
    /// `zeroed_mut` in this context's arena.
    pub unsafe fn copy_out<T: Copy>(&mut self, c: *const T, cap: usize, count: usize) -> &'b [T] {
        let n = count.min(cap);
        if n == 0 || c.is_null() {
            return &[];
        }
        // SAFETY: per the contract `c` holds >= cap >= n initialised elements in the arena.
        let s = unsafe { core::slice::from_raw_parts(c, n) };
        self.arena.alloc_slice_copy(s)
    }
}

impl<'b, M: HandleMap> LowerCx<'b, M> {
    /// Lowers the self part of one input link into the arena (its pNext NULL).
    ///
    /// One function per link type, so that the chain walker's match over every link type keeps
    /// a small stack frame (in debug builds each arm's temporaries get their own slot).
    #[inline(never)]
    pub fn link<T: LowerLink>(&mut self, v: &T) -> Result<*mut c_void, LowerError> {
        let c = v.lower_link(self)?;
        Ok(self.arena.alloc(c) as *mut T::C as *mut c_void)
    }
    /// Lowers the self part of one output link skeleton into the arena (its pNext NULL).
    #[inline(never)]
    pub fn out_link<'a, T: RaiseLink<'a>>(&mut self, v: &T) -> Result<*mut c_void, LowerError> {
        let c = v.lower_out_link(self)?;
        Ok(self.arena.alloc(c) as *mut T::C as *mut c_void)
    }
    /// Raises one filled output link whose own pNext is `next` (already raised), wrapped as
    /// a chain link by `wrap`.
    ///
    /// # Safety
    /// `c` must point to the `T::C` that [`LowerCx::out_link`] allocated for `skeleton` in this
    /// context's arena (the chain walker checked its sType).
    #[inline(never)]
    pub unsafe fn raise_link<T: RaiseLink<'b>>(
        &mut self,
        skeleton: &T,
        c: *mut c_void,
        next: Chain<'b>,
        wrap: fn(T) -> Ext<'b>,
    ) -> Result<Ext<'b>, LowerError> {
        // SAFETY: per the contract `c` points to a live, initialised `T::C` in the arena that
        // the driver no longer writes.
        let cv = unsafe { &*(c as *const T::C) };
        T::raise_link(skeleton, cv, next, self).map(wrap)
    }
}

/// Head and tail of a C chain under construction.
struct Linker {
    head: *mut c_void,
    tail: *mut c_void,
}

impl Linker {
    fn new() -> Self {
        Linker {
            head: core::ptr::null_mut(),
            tail: core::ptr::null_mut(),
        }
    }
    /// Appends `link` (NULL: nothing to append).
    ///
    /// # Safety
    /// `link` must be NULL or a live arena struct starting with sType/pNext, as must every
    /// link appended before.
    unsafe fn push(&mut self, link: *mut c_void) {
        if link.is_null() {
            return;
        }
        if self.tail.is_null() {
            self.head = link;
        } else {
            // SAFETY: per the contract `tail` is a live struct whose second member is pNext.
            unsafe { set_chain_next(self.tail, link) };
        }
        self.tail = link;
    }
}

/// Lowers an input chain link by link: `lower` converts one link's self part into the arena
/// (NULL for links that never reach the driver, such as the protocol-only MESA structs).
pub fn walk_chain<'b, M: HandleMap>(
    chain: Chain<'_>,
    cx: &mut LowerCx<'b, M>,
    lower: fn(&Ext<'_>, &mut LowerCx<'b, M>) -> Result<*mut c_void, LowerError>,
) -> Result<*mut c_void, LowerError> {
    let mut links = Linker::new();
    let mut next = chain;
    while let Some(link) = next {
        next = link.next();
        if cx.stripped.contains(&link.s_type()) {
            continue;
        }
        let c = lower(link, cx)?;
        // SAFETY: `lower` returns NULL or a link it allocated in the arena (`LowerCx::link`).
        unsafe { links.push(c) };
    }
    Ok(links.head)
}

/// Lowers an output chain skeleton link by link into zeroed C links (`lower`: one link's self
/// part, allocated with [`LowerCx::out_link`]); every skeleton link gets a C link, in order.
pub fn walk_out_chain<'b, M: HandleMap>(
    chain: Chain<'_>,
    cx: &mut LowerCx<'b, M>,
    lower: fn(&Ext<'_>, &mut LowerCx<'b, M>) -> Result<*mut c_void, LowerError>,
) -> Result<*mut c_void, LowerError> {
    let mut links = Linker::new();
    let mut next = chain;
    while let Some(link) = next {
        let c = lower(link, cx)?;
        if c.is_null() {
            return Err(LowerError::ChainMismatch(link.s_type()));
        }
        // SAFETY: `c` is a link `lower` allocated in the arena (`LowerCx::out_link`).
        unsafe { links.push(c) };
        next = link.next();
    }
    Ok(links.head)
}

/// Raises a filled output chain: `skeleton` is the request's chain and `c` the C chain that
/// [`walk_out_chain`] built from it; they are paired link by link (sTypes checked), then raised
/// from the innermost link out (`raise`: one link, given its raised pNext).
///
/// # Safety
/// `c` must be NULL or the chain [`walk_out_chain`] built from `skeleton` in this context's
/// arena, and `raise` must only read `c` as the link type of the skeleton link it is given.
pub unsafe fn raise_chain_with<'a, M: HandleMap>(
    skeleton: Chain<'a>,
    c: *mut c_void,
    cx: &mut LowerCx<'a, M>,
    raise: unsafe fn(
        &'a Ext<'a>,
        *mut c_void,
        Chain<'a>,
        &mut LowerCx<'a, M>,
    ) -> Result<Ext<'a>, LowerError>,
) -> Result<Chain<'a>, LowerError> {
    let mut pairs = bumpalo::collections::Vec::new_in(cx.arena);
    let (mut link, mut cl) = (skeleton, c);
    while let Some(l) = link {
        let s_type = l.s_type();
        // SAFETY: per the contract `cl` is NULL or a live link built by walk_out_chain, which
        // starts with sType/pNext (drivers never change an output's chain).
        let (c_type, c_next) =
            unsafe { chain_header(cl) }.ok_or(LowerError::ChainMismatch(s_type))?;
        if c_type != s_type {
            return Err(LowerError::ChainMismatch(s_type));
        }
        pairs.push((l, cl));
        link = l.next();
        cl = c_next;
    }
    let mut next: Chain<'a> = None;
    for &(l, cl) in pairs.iter().rev() {
        // SAFETY: `cl` is the C link built for `l` and its sType matched (checked above).
        let raised = unsafe { raise(l, cl, next, cx) }?;
        next = Some(cx.alloc_out(raised));
    }
    Ok(next)
}

/// Sets the pNext of a C chain link.
///
/// # Safety
/// `p` must point to a live, writable Vulkan struct that starts with `sType` and `pNext`.
unsafe fn set_chain_next(p: *mut c_void, next: *mut c_void) {
    #[repr(C)]
    struct Header {
        s_type: i32,
        p_next: *mut c_void,
    }
    // SAFETY: per the contract `p` starts with sType and pNext, exactly `Header`'s layout.
    unsafe { (*(p as *mut Header)).p_next = next };
}

/// The (sType, pNext) header of a chain link.
///
/// # Safety
/// `p` must be NULL or point to a live Vulkan struct that starts with `sType` and `pNext`.
pub unsafe fn chain_header(p: *mut c_void) -> Option<(i32, *mut c_void)> {
    #[repr(C)]
    struct Header {
        s_type: i32,
        p_next: *mut c_void,
    }
    if p.is_null() {
        return None;
    }
    // SAFETY: per the contract `p` points to a struct whose first members are sType and pNext,
    // which is exactly `Header`'s layout.
    let h = unsafe { &*(p as *const Header) };
    Some((h.s_type, h.p_next))
}

/// A protocol input value that has a C form.
pub trait Lower {
    type C;
    fn lower<'b, M: HandleMap>(&self, cx: &mut LowerCx<'b, M>) -> Result<Self::C, LowerError>;
}

/// The self part of a struct with a pNext chain: its C form with a NULL pNext. The chain
/// walkers use it for links; `Lower::lower` adds the chain.
pub trait LowerLink {
    type C;
    fn lower_link<'b, M: HandleMap>(&self, cx: &mut LowerCx<'b, M>) -> Result<Self::C, LowerError>;
}

/// The self part of an output struct with a pNext chain (see [`LowerLink`]).
pub trait RaiseLink<'a>: Sized {
    type C;
    /// The C struct for the driver to fill, with a NULL pNext.
    fn lower_out_link<'b, M: HandleMap>(
        &self,
        cx: &mut LowerCx<'b, M>,
    ) -> Result<Self::C, LowerError>;
    /// The filled output read from `c` (built by `lower_out_link` from `skeleton`), whose
    /// pNext is `next`.
    fn raise_link<M: HandleMap>(
        skeleton: &Self,
        c: &Self::C,
        next: Chain<'a>,
        cx: &mut LowerCx<'a, M>,
    ) -> Result<Self, LowerError>;
}

/// A protocol output skeleton: the C struct for the driver to fill, and the filled value back.
pub trait Raise<'a>: Sized {
    type C;
    /// A C struct for the driver to fill, shaped by this skeleton (chain, counts, arrays).
    fn lower_out<'b, M: HandleMap>(&self, cx: &mut LowerCx<'b, M>) -> Result<Self::C, LowerError>;
    /// The filled output read from `c`, which `lower_out` built from `skeleton`.
    fn raise<M: HandleMap>(
        skeleton: &Self,
        c: &Self::C,
        cx: &mut LowerCx<'a, M>,
    ) -> Result<Self, LowerError>;
}

/// Why a generic driver call could not be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CallError {
    #[error("the host driver does not provide {0}")]
    Missing(&'static str),
    #[error("a device-level command without a device")]
    NoDevice,
    #[error(transparent)]
    Lower(#[from] LowerError),
    /// The command's policy refuses it (`policy::Policy::Refused`).
    #[error("{command} is refused: {why}")]
    Refused {
        command: &'static str,
        why: &'static str,
    },
    #[error("no destroy command for object type {0}")]
    CannotDestroy(i32),
    #[error("{command} failed with VkResult {result}")]
    Failed { command: &'static str, result: i32 },
}

/// Objects a generic call created or destroyed, for the caller's object table.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// (VkObjectType, guest id, host handle) of every new object.
    pub created: Vec<(i32, u64, u64)>,
    /// (VkObjectType, guest id) of every destroyed object.
    pub destroyed: Vec<(i32, u64)>,
}
