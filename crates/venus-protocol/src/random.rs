//! Random protocol values (feature `random`): a small deterministic generator that builds
//! arena-allocated values of every generated type, respecting the wire's invariants (counts
//! equal array lengths, strings end with NUL, chains only hold allowed links).

use crate::wire::{Arena, Handle, Id, Str};

/// A value that can be generated at random.
pub trait Random<'a>: Sized {
    fn random(g: &mut Gen<'a>) -> Self;
}

/// SplitMix64-driven generator allocating into an arena.
pub struct Gen<'a> {
    state: u64,
    arena: &'a Arena,
    depth: u32,
}

impl<'a> Gen<'a> {
    pub fn new(seed: u64, arena: &'a Arena) -> Self {
        Gen {
            state: seed,
            arena,
            depth: 0,
        }
    }
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// An array length: 0 to 4.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&mut self) -> usize {
        self.below(5)
    }
    /// A small value for scalars that lengths are computed from.
    pub fn small(&mut self) -> u64 {
        self.below(65) as u64
    }
    pub fn random<T: Random<'a>>(&mut self) -> T {
        T::random(self)
    }
    pub fn alloc<T>(&mut self, v: T) -> &'a T {
        self.arena.alloc_for_random(v)
    }
    /// `Some` three times out of four.
    pub fn maybe<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<&'a T> {
        if self.below(4) == 0 {
            None
        } else {
            let v = f(self);
            Some(self.alloc(v))
        }
    }
    /// An array of `n` elements; arrays that may be NULL are sometimes NULL.
    pub fn array<T>(
        &mut self,
        n: usize,
        may_be_null: bool,
        mut f: impl FnMut(&mut Self) -> T,
    ) -> &'a [T] {
        if may_be_null && self.below(4) == 0 {
            return &[];
        }
        let v: Vec<T> = (0..n).map(|_| f(self)).collect();
        self.arena.alloc_vec_for_random(v)
    }
    /// A printable string or NULL.
    pub fn maybe_str(&mut self) -> Option<Str<'a>> {
        if self.below(4) == 0 {
            return None;
        }
        let n = self.below(12);
        let mut v: Vec<u8> = (0..n).map(|_| b'a' + self.below(26) as u8).collect();
        v.push(0);
        Str::from_bytes_with_nul(self.arena.alloc_vec_for_random(v))
    }
    /// `char name[N]` holding a NUL-terminated string.
    pub fn chars<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        let n = self.below(N.min(16));
        for b in a.iter_mut().take(n) {
            *b = b'a' + self.below(26) as u8;
        }
        a
    }
    pub fn depth(&self) -> u32 {
        self.depth
    }
    pub fn enter(&mut self) {
        self.depth += 1;
    }
    pub fn leave(&mut self) {
        self.depth -= 1;
    }
}

macro_rules! random_prim {
    ($($t:ty),*) => {$(
        impl<'a> Random<'a> for $t {
            fn random(g: &mut Gen<'a>) -> Self {
                g.next_u64() as $t
            }
        }
    )*};
}
random_prim!(u8, i8, u16, i16, u32, i32, u64, i64);

impl<'a> Random<'a> for f32 {
    fn random(g: &mut Gen<'a>) -> Self {
        f32::from_bits(g.next_u64() as u32)
    }
}
impl<'a> Random<'a> for f64 {
    fn random(g: &mut Gen<'a>) -> Self {
        f64::from_bits(g.next_u64())
    }
}
impl<'a, T: Handle> Random<'a> for Id<T> {
    fn random(g: &mut Gen<'a>) -> Self {
        // Mostly small ids (like Mesa's counter), sometimes NULL or large.
        match g.below(8) {
            0 => Id::NULL,
            1 => Id::from_raw(g.next_u64()),
            _ => Id::from_raw(1 + g.below(1000) as u64),
        }
    }
}
