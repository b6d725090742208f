//! The handwritten wire runtime that generated code calls: the arena, [`Decoder`], [`Encoder`],
//! typed object ids, strings and pNext chains.
//!
//! Rules implemented here (`venus-wire-format.md` §2–§9): little-endian, 4-byte granularity,
//! u64 items only 4-byte aligned, counts and pointer markers as u64, packed scalar arrays padded
//! once, strings with a forced final NUL, pNext chains written depth-first. Every read is bounds
//! checked and every allocation is charged against the arena limit *before* it happens, so no
//! input can make decoding panic or allocate without bound.

use std::fmt;
use std::marker::PhantomData;

use bumpalo::Bump;

use crate::error::{DecodeError, ErrorKind};
use crate::generated::structs::Ext;

type Result<T> = std::result::Result<T, DecodeError>;

/// Longest pNext chain accepted (real chains have well under a hundred links).
pub const MAX_CHAIN_LINKS: usize = 256;

/// Default cap on the memory one command's decoded arguments may take.
pub const DEFAULT_ARENA_LIMIT: usize = 256 << 20;

/// Per-decoder bump arena for decoded arguments (struct copies, arrays, chains, strings).
///
/// Reset it between commands (`reset`); allocations are charged against `limit` first.
pub struct Arena {
    bump: Bump,
    used: std::cell::Cell<usize>,
    limit: usize,
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

impl Arena {
    pub fn new() -> Self {
        Self::with_limit(DEFAULT_ARENA_LIMIT)
    }
    pub fn with_limit(limit: usize) -> Self {
        Arena {
            bump: Bump::new(),
            used: std::cell::Cell::new(0),
            limit,
        }
    }
    /// Frees everything decoded so far (keeps the largest chunk for reuse).
    pub fn reset(&mut self) {
        self.bump.reset();
        self.used.set(0);
    }
    /// Bytes charged since the last reset.
    pub fn used(&self) -> usize {
        self.used.get()
    }
    #[cfg(feature = "random")]
    pub(crate) fn alloc_for_random<T>(&self, v: T) -> &T {
        self.bump.alloc(v)
    }
    #[cfg(feature = "random")]
    pub(crate) fn alloc_vec_for_random<T>(&self, v: Vec<T>) -> &[T] {
        self.bump.alloc_slice_fill_iter(v)
    }
    fn charge(&self, bytes: usize) -> Result<()> {
        let used = self.used.get();
        match used.checked_add(bytes) {
            Some(total) if total <= self.limit => {
                self.used.set(total);
                Ok(())
            }
            _ => Err(DecodeError::new(
                ErrorKind::ArenaLimit {
                    requested: bytes,
                    limit: self.limit,
                },
                None,
            )),
        }
    }
    fn charge_array<T>(&self, n: usize) -> Result<()> {
        let bytes = n
            .checked_mul(std::mem::size_of::<T>())
            .ok_or_else(|| DecodeError::new(ErrorKind::Overflow, None))?;
        self.charge(bytes)
    }
}

/// A generated enum or flags type: which raw values vk.xml defines for it.
///
/// Decoding keeps any value (replies and round trips carry what they carry); the host layer
/// checks every enum and flags value a client passes before a driver sees it
/// (VUID-*-parameter: "must be a valid VkX value" / "must be a valid combination of VkX values").
pub trait Defined: Copy + fmt::Debug {
    /// The Vulkan type name (`VkFormat`).
    const NAME: &'static str;
    /// An enumerant of the enum, or only known bits of the flags.
    fn is_defined(self) -> bool;
}

/// A scalar as it travels on the wire: `SIZE` bytes packed in arrays, at least 4 bytes alone.
pub trait Scalar: Copy + Default + PartialEq + fmt::Debug {
    const SIZE: usize;
    /// Reads from the first `SIZE` bytes of `b`.
    fn read(b: &[u8]) -> Self;
    fn write(self, out: &mut Vec<u8>);
}

macro_rules! prim_scalar {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            #[inline]
            fn read(b: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(&b[..Self::SIZE]);
                <$t>::from_le_bytes(a)
            }
            #[inline]
            fn write(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
prim_scalar!(u8, i8, u16, i16, u32, i32, u64, i64, f32, f64);

/// Implements [`Scalar`], [`AsLen`] (and `Random` with the `random` feature) for a generated
/// newtype over a primitive.
#[macro_export]
#[doc(hidden)]
macro_rules! scalar_newtype {
    ($t:ident, $inner:ty) => {
        impl $crate::wire::Scalar for $t {
            const SIZE: usize = <$inner as $crate::wire::Scalar>::SIZE;
            #[inline]
            fn read(b: &[u8]) -> Self {
                $t(<$inner as $crate::wire::Scalar>::read(b))
            }
            #[inline]
            fn write(self, out: &mut Vec<u8>) {
                <$inner as $crate::wire::Scalar>::write(self.0, out)
            }
        }
        impl $crate::wire::AsLen for $t {
            #[inline]
            fn as_len(&self) -> u64 {
                self.0.as_len()
            }
        }
        #[cfg(feature = "random")]
        impl<'a> $crate::random::Random<'a> for $t {
            fn random(g: &mut $crate::random::Gen<'a>) -> Self {
                $t(g.random())
            }
        }
    };
}
pub(crate) use scalar_newtype;

/// Bit operations for a generated bitmask newtype.
#[macro_export]
#[doc(hidden)]
macro_rules! flags_ops {
    ($t:ident) => {
        impl $t {
            /// No bit set.
            pub const fn empty() -> Self {
                $t(0)
            }
            /// Every bit of `other` is set in `self`.
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }
            /// Some bit of `other` is set in `self`.
            pub const fn intersects(self, other: Self) -> bool {
                self.0 & other.0 != 0
            }
        }
        impl core::ops::BitOr for $t {
            type Output = Self;
            fn bitor(self, o: Self) -> Self {
                $t(self.0 | o.0)
            }
        }
        impl core::ops::BitOrAssign for $t {
            fn bitor_assign(&mut self, o: Self) {
                self.0 |= o.0;
            }
        }
        impl core::ops::BitAnd for $t {
            type Output = Self;
            fn bitand(self, o: Self) -> Self {
                $t(self.0 & o.0)
            }
        }
        impl core::ops::Not for $t {
            type Output = Self;
            fn not(self) -> Self {
                $t(!self.0)
            }
        }
    };
}
pub(crate) use flags_ops;

/// A value that a length expression can use (counts, sizes, enums read as unsigned).
pub trait AsLen {
    fn as_len(&self) -> u64;
}
macro_rules! as_len_unsigned {
    ($($t:ty),*) => {$( impl AsLen for $t { #[inline] fn as_len(&self) -> u64 { u64::from(*self) } } )*};
}
as_len_unsigned!(u8, u16, u32, u64);
impl AsLen for i32 {
    #[inline]
    fn as_len(&self) -> u64 {
        u64::from(*self as u32)
    }
}
impl AsLen for i64 {
    #[inline]
    fn as_len(&self) -> u64 {
        *self as u64
    }
}
impl<T: AsLen> AsLen for &T {
    #[inline]
    fn as_len(&self) -> u64 {
        (**self).as_len()
    }
}
impl<T: AsLen> AsLen for Option<&T> {
    #[inline]
    fn as_len(&self) -> u64 {
        self.map_or(0, |v| v.as_len())
    }
}

/// A Vulkan object type, used as the parameter of [`Id`].
pub trait Handle: 'static {
    const NAME: &'static str;
    /// `VkObjectType` value.
    const OBJECT_TYPE: i32;
    const DISPATCHABLE: bool;
}

/// A guest object id naming an object of type `T` (0 is `VK_NULL_HANDLE`).
pub struct Id<T: Handle>(u64, PhantomData<fn() -> T>);

impl<T: Handle> Id<T> {
    pub const NULL: Self = Id(0, PhantomData);
    pub const fn from_raw(raw: u64) -> Self {
        Id(raw, PhantomData)
    }
    pub const fn raw(self) -> u64 {
        self.0
    }
    pub const fn is_null(self) -> bool {
        self.0 == 0
    }
}
impl<T: Handle> Clone for Id<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Handle> Copy for Id<T> {}
impl<T: Handle> PartialEq for Id<T> {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl<T: Handle> Eq for Id<T> {}
impl<T: Handle> std::hash::Hash for Id<T> {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.0.hash(h)
    }
}
impl<T: Handle> PartialOrd for Id<T> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<T: Handle> Ord for Id<T> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.cmp(&o.0)
    }
}
impl<T: Handle> Default for Id<T> {
    fn default() -> Self {
        Self::NULL
    }
}
impl<T: Handle> fmt::Debug for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", T::NAME, self.0)
    }
}
impl<T: Handle> Scalar for Id<T> {
    const SIZE: usize = 8;
    #[inline]
    fn read(b: &[u8]) -> Self {
        Id::from_raw(u64::read(b))
    }
    #[inline]
    fn write(self, out: &mut Vec<u8>) {
        self.0.write(out)
    }
}

/// A NUL-terminated string as it travels: the bytes include the final NUL.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Str<'a>(&'a [u8]);

impl<'a> Str<'a> {
    /// `bytes` must end with a NUL.
    pub fn from_bytes_with_nul(bytes: &'a [u8]) -> Option<Self> {
        (bytes.last() == Some(&0)).then_some(Str(bytes))
    }
    /// The wire bytes, final NUL included.
    pub fn as_bytes_with_nul(&self) -> &'a [u8] {
        self.0
    }
    /// The C string: bytes up to the first NUL.
    pub fn to_bytes(&self) -> &'a [u8] {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        &self.0[..end]
    }
    pub fn to_str(&self) -> std::result::Result<&'a str, std::str::Utf8Error> {
        std::str::from_utf8(self.to_bytes())
    }
}

impl fmt::Debug for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.to_bytes()))
    }
}

/// A pNext chain: the first link, whose own `p_next` holds the rest.
pub type Chain<'a> = Option<&'a Ext<'a>>;

/// One link type of a pNext chain (implemented by the generated `Ext`).
pub trait ChainNode<'a>: Sized + Copy + 'a {
    fn s_type(&self) -> i32;
    fn next(&self) -> Option<&'a Self>;
    /// Decodes the self part of the link `s_type` whose own chain is `next`.
    fn decode_link(
        d: &mut Decoder<'a>,
        s_type: i32,
        next: Option<&'a Self>,
        partial: bool,
    ) -> Result<Self>;
    fn encode_link(&self, e: &mut Encoder, partial: bool);
}

/// A value with a full encoding.
pub trait Decode<'a>: Sized {
    fn decode(d: &mut Decoder<'a>) -> Result<Self>;
}
pub trait Encode {
    fn encode(&self, e: &mut Encoder);
}
/// A value with a partial encoding: the skeleton of an output (`venus-wire-format.md` §12).
pub trait DecodePartial<'a>: Sized {
    fn decode_partial(d: &mut Decoder<'a>) -> Result<Self>;
}
pub trait EncodePartial {
    fn encode_partial(&self, e: &mut Encoder);
}

/// Adds a field name to the error path.
pub trait ResultExt {
    #[must_use]
    fn at(self, name: &'static str) -> Self;
}
impl<T> ResultExt for Result<T> {
    #[inline]
    fn at(self, name: &'static str) -> Self {
        self.map_err(|e| e.at(name))
    }
}

#[inline]
fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// Reads one command stream (a private copy of guest bytes) into arena-allocated values.
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    arena: &'a Arena,
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8], arena: &'a Arena) -> Self {
        Decoder { buf, pos: 0, arena }
    }
    pub fn position(&self) -> usize {
        self.pos
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
    pub fn arena(&self) -> &'a Arena {
        self.arena
    }
    fn err(&self, kind: ErrorKind) -> DecodeError {
        DecodeError::new(kind, Some(self.pos))
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.err(ErrorKind::Truncated {
                needed: n,
                left: self.remaining(),
            }));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// `n` bytes followed by padding to a multiple of 4.
    #[inline]
    fn take_padded(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.err(ErrorKind::Truncated {
                needed: n,
                left: self.remaining(),
            }));
        }
        self.take(pad4(n)).map(|s| &s[..n])
    }

    #[inline]
    pub fn u32(&mut self) -> Result<u32> {
        self.take(4).map(u32::read)
    }
    #[inline]
    pub fn i32(&mut self) -> Result<i32> {
        self.take(4).map(i32::read)
    }
    #[inline]
    pub fn u64(&mut self) -> Result<u64> {
        self.take(8).map(u64::read)
    }
    /// One scalar value (1- and 2-byte scalars take 4 bytes).
    #[inline]
    pub fn scalar<T: Scalar>(&mut self) -> Result<T> {
        self.take(T::SIZE.max(4)).map(T::read)
    }
    /// A pointer marker or array count.
    #[inline]
    pub fn marker(&mut self) -> Result<u64> {
        self.u64()
    }
    /// The next u64 without consuming it.
    pub fn peek_marker(&self) -> Result<u64> {
        if self.remaining() < 8 {
            return Err(self.err(ErrorKind::Truncated {
                needed: 8,
                left: self.remaining(),
            }));
        }
        Ok(u64::read(&self.buf[self.pos..]))
    }
    /// `VkAllocationCallbacks*` and similar: must be NULL.
    pub fn null_only(&mut self) -> Result<()> {
        match self.u64()? {
            0 => Ok(()),
            _ => Err(self.err(ErrorKind::MustBeNull)),
        }
    }
    pub fn expect_s_type(&mut self, expected: i32) -> Result<()> {
        let got = self.i32()?;
        if got != expected {
            return Err(self
                .err(ErrorKind::BadStructureType { got, expected })
                .at("sType"));
        }
        Ok(())
    }
    /// Reads an array count: a non-zero count must equal `expected`; a zero count (NULL) must
    /// match too unless the array may be NULL with any count.
    #[inline]
    pub fn array_len(&mut self, expected: u64, null_unchecked: bool) -> Result<usize> {
        let got = self.u64()?;
        if (got != 0 || !null_unchecked) && got != expected {
            return Err(self.err(ErrorKind::CountMismatch { got, expected }));
        }
        usize::try_from(got).map_err(|_| self.err(ErrorKind::Overflow))
    }
    fn fixed_len(&mut self, n: usize) -> Result<()> {
        let got = self.u64()?;
        if got != n as u64 {
            return Err(self.err(ErrorKind::CountMismatch {
                got,
                expected: n as u64,
            }));
        }
        Ok(())
    }
    /// `n` packed scalars plus padding, copied into the arena.
    fn packed<T: Scalar>(&mut self, n: usize) -> Result<&'a [T]> {
        let bytes = n
            .checked_mul(T::SIZE)
            .ok_or_else(|| self.err(ErrorKind::Overflow))?;
        let raw = self.take_padded(bytes)?;
        self.arena
            .charge_array::<T>(n)
            .map_err(|e| DecodeError::new(e.kind(), Some(self.pos)))?;
        Ok(self
            .arena
            .bump
            .alloc_slice_fill_with(n, |i| T::read(&raw[i * T::SIZE..])))
    }
    /// A counted array of scalars, enums, flags or ids.
    pub fn scalar_array<T: Scalar>(
        &mut self,
        expected: u64,
        null_unchecked: bool,
    ) -> Result<&'a [T]> {
        let n = self.array_len(expected, null_unchecked)?;
        self.packed(n)
    }
    /// The skeleton of an output scalar array: only the count travels; returns `count` defaults.
    pub fn zeroed_array<T: Scalar>(
        &mut self,
        expected: u64,
        null_unchecked: bool,
    ) -> Result<&'a [T]> {
        let n = self.array_len(expected, null_unchecked)?;
        self.arena
            .charge_array::<T>(n)
            .map_err(|e| DecodeError::new(e.kind(), Some(self.pos)))?;
        Ok(self.arena.bump.alloc_slice_fill_copy(n, T::default()))
    }
    /// A counted byte array (`void*` with a size), borrowed from the stream.
    pub fn blob(&mut self, expected: u64, null_unchecked: bool) -> Result<&'a [u8]> {
        let n = self.array_len(expected, null_unchecked)?;
        self.take_padded(n)
    }
    /// A counted array of structs or unions, each decoded by `f`.
    pub fn array<T: Copy>(
        &mut self,
        expected: u64,
        null_unchecked: bool,
        mut f: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<&'a [T]> {
        let n = self.array_len(expected, null_unchecked)?;
        self.arena
            .charge_array::<T>(n)
            .map_err(|e| DecodeError::new(e.kind(), Some(self.pos)))?;
        let mut v = bumpalo::collections::Vec::with_capacity_in(n, &self.arena.bump);
        for _ in 0..n {
            v.push(f(self)?);
        }
        Ok(v.into_bump_slice())
    }
    /// `T member[N]` of scalars: the count must be exactly `N`.
    pub fn fixed_scalars<T: Scalar, const N: usize>(&mut self) -> Result<[T; N]> {
        self.fixed_len(N)?;
        let bytes = N * T::SIZE;
        let raw = self.take_padded(bytes)?;
        Ok(std::array::from_fn(|i| T::read(&raw[i * T::SIZE..])))
    }
    /// `T member[N]` of structs or unions.
    pub fn fixed_array<T: Copy + Default, const N: usize>(
        &mut self,
        mut f: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<[T; N]> {
        self.fixed_len(N)?;
        let mut a = [T::default(); N];
        for slot in a.iter_mut() {
            *slot = f(self)?;
        }
        Ok(a)
    }
    /// `char name[N]`; the last byte is forced to NUL.
    pub fn chars<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = self.fixed_scalars::<u8, N>()?;
        if let Some(last) = a.last_mut() {
            *last = 0;
        }
        Ok(a)
    }
    /// A pointer that may be NULL.
    #[inline]
    pub fn optional<T: Copy>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<Option<&'a T>> {
        if self.marker()? == 0 {
            return Ok(None);
        }
        let v = f(self)?;
        self.alloc(v).map(Some)
    }
    /// A pointer that must not be NULL.
    #[inline]
    pub fn required<T: Copy>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<&'a T> {
        if self.marker()? == 0 {
            return Err(self.err(ErrorKind::NullRequired));
        }
        let v = f(self)?;
        self.alloc(v)
    }
    #[inline]
    pub fn alloc<T: Copy>(&mut self, v: T) -> Result<&'a T> {
        self.arena
            .charge(std::mem::size_of::<T>())
            .map_err(|e| DecodeError::new(e.kind(), Some(self.pos)))?;
        Ok(self.arena.bump.alloc(v))
    }
    /// A NUL-terminated string (copied, final byte forced to NUL); NULL is `None`.
    pub fn string(&mut self) -> Result<Option<Str<'a>>> {
        let n = self.u64()?;
        if n == 0 {
            return Ok(None);
        }
        let n = usize::try_from(n).map_err(|_| self.err(ErrorKind::Overflow))?;
        let raw = self.take_padded(n)?;
        self.arena
            .charge(n)
            .map_err(|e| DecodeError::new(e.kind(), Some(self.pos)))?;
        let copy = self.arena.bump.alloc_slice_copy(&raw[..n]);
        copy[n - 1] = 0;
        Ok(Some(Str(copy)))
    }
    /// A counted array of strings, each with its own marker.
    pub fn string_array(
        &mut self,
        expected: u64,
        null_unchecked: bool,
    ) -> Result<&'a [Option<Str<'a>>]> {
        self.array(expected, null_unchecked, |d| d.string())
    }
    /// A pNext chain whose links must satisfy `allowed` (read after the owner's sType).
    pub fn chain<N: ChainNode<'a>>(
        &mut self,
        allowed: fn(i32) -> bool,
        partial: bool,
    ) -> Result<Option<&'a N>> {
        if self.marker()? == 0 {
            return Ok(None);
        }
        let mut s_types = [0i32; MAX_CHAIN_LINKS];
        let mut n = 0;
        loop {
            if n == MAX_CHAIN_LINKS {
                return Err(self.err(ErrorKind::ChainTooLong {
                    max: MAX_CHAIN_LINKS,
                }));
            }
            let s_type = self.i32()?;
            if !allowed(s_type) {
                return Err(self.err(ErrorKind::UnknownChainStruct { s_type }));
            }
            s_types[n] = s_type;
            n += 1;
            if self.marker()? == 0 {
                break;
            }
        }
        // Self parts follow innermost first.
        let mut next: Option<&'a N> = None;
        for &s_type in s_types[..n].iter().rev() {
            let link = N::decode_link(self, s_type, next, partial)?;
            next = Some(self.alloc(link)?);
        }
        Ok(next)
    }
}

/// Writes commands or replies into a growable buffer (clear it to reuse the allocation).
#[derive(Default)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with_capacity(n: usize) -> Self {
        Encoder {
            buf: Vec::with_capacity(n),
        }
    }
    pub fn clear(&mut self) {
        self.buf.clear();
    }
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
    fn pad(&mut self) {
        let n = pad4(self.buf.len()) - self.buf.len();
        self.buf.extend_from_slice(&[0u8; 3][..n]);
    }
    #[inline]
    pub fn u32(&mut self, v: u32) {
        v.write(&mut self.buf)
    }
    #[inline]
    pub fn i32(&mut self, v: i32) {
        v.write(&mut self.buf)
    }
    #[inline]
    pub fn u64(&mut self, v: u64) {
        v.write(&mut self.buf)
    }
    #[inline]
    pub fn marker(&mut self, v: u64) {
        v.write(&mut self.buf)
    }
    /// One scalar value (1- and 2-byte scalars are padded to 4 bytes).
    #[inline]
    pub fn scalar<T: Scalar>(&mut self, v: T) {
        v.write(&mut self.buf);
        if T::SIZE < 4 {
            self.buf.extend_from_slice(&[0u8; 3][..4 - T::SIZE]);
        }
    }
    fn packed<T: Scalar>(&mut self, v: &[T]) {
        for x in v {
            x.write(&mut self.buf);
        }
        self.pad();
    }
    /// Count, then packed scalars, padded.
    pub fn scalar_array<T: Scalar>(&mut self, v: &[T]) {
        self.marker(v.len() as u64);
        self.packed(v);
    }
    /// `T member[N]`: count N, then the packed values.
    pub fn fixed_scalars<T: Scalar, const N: usize>(&mut self, v: &[T; N]) {
        self.marker(N as u64);
        self.packed(v);
    }
    /// Count, then bytes, padded.
    pub fn blob(&mut self, v: &[u8]) {
        self.marker(v.len() as u64);
        self.buf.extend_from_slice(v);
        self.pad();
    }
    pub fn string(&mut self, s: Option<Str<'_>>) {
        match s {
            None => self.marker(0),
            Some(s) => self.blob(s.as_bytes_with_nul()),
        }
    }
    pub fn string_array(&mut self, v: &[Option<Str<'_>>]) {
        self.marker(v.len() as u64);
        for s in v {
            self.string(*s);
        }
    }
    /// Writes a pNext chain: every link's marker and sType, the end marker, then the self parts
    /// innermost first. Iterative, so no chain length can exhaust the stack.
    pub fn chain<'a, N: ChainNode<'a>>(&mut self, chain: Option<&'a N>, partial: bool) {
        // Links are kept on the stack for the reverse pass; longer chains (only possible for
        // values built by hand, never for decoded ones) spill into a Vec.
        let mut stack: [Option<&'a N>; 64] = [None; 64];
        let mut spill: Vec<&'a N> = Vec::new();
        let mut n = 0usize;
        let mut cur = chain;
        while let Some(link) = cur {
            self.marker(1);
            self.i32(link.s_type());
            if n < stack.len() {
                stack[n] = Some(link);
            } else {
                spill.push(link);
            }
            n += 1;
            cur = link.next();
        }
        self.marker(0);
        for link in spill.iter().rev() {
            link.encode_link(self, partial);
        }
        for link in stack[..n.min(stack.len())].iter().rev().flatten() {
            link.encode_link(self, partial);
        }
    }
}
