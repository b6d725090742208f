//! Range rules against the objects the host created: the runtime of the generator's
//! `BufferRange`, `ImageRange`, `ImageRegion`, `QueryRange` and `BindRange` checks
//! (`xtask/src/special.rs`).
//!
//! A driver trusts offsets, sizes, mip levels, array layers and query indices to lie inside the
//! objects they name; a CPU driver (lavapipe) that is given one outside reads or writes the
//! server's own memory. This module owns the facts those rules need ([`Extent`]: recorded by
//! the dispatch layer when it creates the object, handed out through [`HandleMap::extent`])
//! and the comparisons; which command or struct member runs which rule is data in the
//! generator's table. Arithmetic is checked (`u64`, overflow is a failure, never a wrap).

use venus_protocol::handles;
use venus_protocol::structs::{Extent3D, ImageSubresourceLayers, ImageSubresourceRange, Offset3D};
use venus_protocol::{Handle, Id};

use crate::lower::{HandleMap, LowerCx, LowerError};

/// `VK_WHOLE_SIZE`.
pub const WHOLE_SIZE: u64 = !0;
/// `VK_REMAINING_MIP_LEVELS` / `VK_REMAINING_ARRAY_LAYERS`.
pub const REMAINING: u32 = !0;

/// What the host recorded about an object's size when it created it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extent {
    /// A `VkBuffer`: `size` from its create info; `required` the host driver's memory
    /// requirement (what binding it needs inside an allocation).
    Buffer { size: u64, required: u64 },
    /// A `VkImage`.
    Image(ImageShape),
    /// A `VkDeviceMemory`: its `allocationSize`.
    Memory { size: u64 },
    /// A `VkQueryPool`: its `queryCount`.
    QueryPool { count: u32 },
}

/// A `VkImage`'s create info, as far as the range rules need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageShape {
    /// `VkImageType` (0 1D, 1 2D, 2 3D).
    pub image_type: i32,
    pub format: i32,
    /// `VkImageCreateFlags`.
    pub flags: u32,
    pub extent: [u32; 3],
    pub mip_levels: u32,
    pub array_layers: u32,
    /// The host driver's memory requirement; 0 when it is per plane (disjoint images).
    pub required: u64,
}

impl ImageShape {
    /// Width, height, depth of mip level `level` (each at least 1).
    pub fn level_extent(&self, level: u32) -> [u64; 3] {
        self.extent.map(|d| (u64::from(d) >> level.min(31)).max(1))
    }
    /// How many layers a subresource may address: the array layers, or for a 3D image (whose
    /// 2D views and copies address depth slices) the larger of those and the depth.
    fn layer_bound(&self) -> u32 {
        if self.image_type == 2 {
            self.array_layers.max(self.extent[2])
        } else {
            self.array_layers
        }
    }
}

/// How many bytes a `BufferRange` rule covers.
#[derive(Clone, Copy, Debug)]
pub enum Bytes {
    /// Exactly this many bytes.
    Exact(u64),
    /// This many, or `VK_WHOLE_SIZE` (the rest of the object from the offset, at least one byte).
    WholeOr(u64),
    /// `count` elements of `element` bytes `stride` apart (nothing when `count` is 0).
    Strided {
        count: u64,
        stride: u64,
        element: u64,
    },
}

impl std::fmt::Display for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Bytes::Exact(n) | Bytes::WholeOr(n) => write!(f, "{n} bytes"),
            Bytes::Strided {
                count,
                stride,
                element,
            } => write!(f, "{count} x {element} bytes {stride} apart"),
        }
    }
}

fn fail(at: &'static str, what: String, vuid: &'static str) -> LowerError {
    LowerError::rule(at, format!("{what} ({vuid})"))
}

impl<M: HandleMap> LowerCx<'_, M> {
    fn extent_of<T: Handle>(&self, at: &'static str, id: Id<T>) -> Result<Extent, LowerError> {
        self.map().extent(T::OBJECT_TYPE, id.raw()).ok_or_else(|| {
            LowerError::rule(
                at,
                format!("{} id {} has no recorded extent", T::NAME, id.raw()),
            )
        })
    }

    fn byte_size<T: Handle>(&self, at: &'static str, id: Id<T>) -> Result<u64, LowerError> {
        match self.extent_of(at, id)? {
            Extent::Buffer { size, .. } | Extent::Memory { size } => Ok(size),
            other => Err(LowerError::rule(
                at,
                format!(
                    "{} id {} is not sized in bytes ({other:?})",
                    T::NAME,
                    id.raw()
                ),
            )),
        }
    }

    /// `offset .. offset + bytes` inside buffer or memory `id` (NULL: nothing to check, the
    /// handle rules decide whether NULL is allowed). `what` names the members.
    pub fn byte_range<T: Handle>(
        &self,
        at: &'static str,
        what: &str,
        id: Id<T>,
        offset: u64,
        bytes: Bytes,
        vuid: &'static str,
    ) -> Result<(), LowerError> {
        if id.is_null() {
            return Ok(());
        }
        let total = self.byte_size(at, id)?;
        let end = match bytes {
            Bytes::WholeOr(WHOLE_SIZE) => {
                if offset >= total {
                    return Err(fail(
                        at,
                        format!(
                            "{what}: offset {offset} is not below the {} size {total}",
                            T::NAME
                        ),
                        vuid,
                    ));
                }
                return Ok(());
            }
            Bytes::Exact(n) | Bytes::WholeOr(n) => offset.checked_add(n),
            Bytes::Strided { count: 0, .. } => return Ok(()),
            Bytes::Strided {
                count,
                stride,
                element,
            } => (count - 1)
                .checked_mul(stride)
                .and_then(|x| x.checked_add(element))
                .and_then(|x| x.checked_add(offset)),
        };
        match end {
            Some(end) if end <= total => Ok(()),
            _ => Err(fail(
                at,
                format!(
                    "{what}: offset {offset} + {bytes} exceeds the {} size {total}",
                    T::NAME
                ),
                vuid,
            )),
        }
    }

    fn image_shape(
        &self,
        at: &'static str,
        image: Id<handles::Image>,
    ) -> Result<ImageShape, LowerError> {
        match self.extent_of(at, image)? {
            Extent::Image(s) => Ok(s),
            other => Err(LowerError::rule(
                at,
                format!("VkImage id {} has no image shape ({other:?})", image.raw()),
            )),
        }
    }

    /// A `VkImageSubresourceRange` of `image`: levels and layers inside the image.
    pub fn image_range(
        &self,
        at: &'static str,
        what: &str,
        image: Id<handles::Image>,
        r: &ImageSubresourceRange,
        vuid: &'static str,
    ) -> Result<(), LowerError> {
        if image.is_null() {
            return Ok(());
        }
        let s = self.image_shape(at, image)?;
        within(
            at,
            what,
            "mip level",
            r.base_mip_level,
            r.level_count,
            s.mip_levels,
            vuid,
        )?;
        within(
            at,
            what,
            "array layer",
            r.base_array_layer,
            r.layer_count,
            s.layer_bound(),
            vuid,
        )
    }

    /// A `VkImageSubresourceLayers` of `image` (one mip level, a layer range) and optionally
    /// the region `offset .. offset + extent` inside that level (`region`: texels; no extent:
    /// the offset alone, as a blit's corner, which may equal the level's size).
    pub fn image_region(
        &self,
        at: &'static str,
        what: &str,
        image: Id<handles::Image>,
        l: &ImageSubresourceLayers,
        region: Option<(&Offset3D, Option<&Extent3D>)>,
        vuid: &'static str,
    ) -> Result<(), LowerError> {
        if image.is_null() {
            return Ok(());
        }
        let s = self.image_shape(at, image)?;
        within(at, what, "mip level", l.mip_level, 1, s.mip_levels, vuid)?;
        within(
            at,
            what,
            "array layer",
            l.base_array_layer,
            l.layer_count,
            s.layer_bound(),
            vuid,
        )?;
        let Some((o, extent)) = region else {
            return Ok(());
        };
        let size = s.level_extent(l.mip_level);
        let ext = extent.map(|e| [e.width, e.height, e.depth]);
        for (i, axis) in ["x", "y", "z"].into_iter().enumerate() {
            let start = [o.x, o.y, o.z][i];
            let len = ext.map_or(0, |e| u64::from(e[i]));
            let ok = u64::try_from(start)
                .ok()
                .and_then(|st| st.checked_add(len))
                .is_some_and(|end| end <= size[i]);
            if !ok {
                return Err(fail(
                    at,
                    format!(
                        "{what}: {axis} {start} + {len} is outside mip level {} ({}x{}x{})",
                        l.mip_level, size[0], size[1], size[2]
                    ),
                    vuid,
                ));
            }
        }
        Ok(())
    }

    /// Queries `first .. first + count` of `pool`.
    pub fn query_range(
        &self,
        at: &'static str,
        what: &str,
        pool: Id<handles::QueryPool>,
        first: u32,
        count: u32,
        vuid: &'static str,
    ) -> Result<(), LowerError> {
        if pool.is_null() {
            return Ok(());
        }
        let total = match self.extent_of(at, pool)? {
            Extent::QueryPool { count } => count,
            other => {
                return Err(LowerError::rule(
                    at,
                    format!(
                        "VkQueryPool id {} has no query count ({other:?})",
                        pool.raw()
                    ),
                ))
            }
        };
        if u64::from(first) + u64::from(count) > u64::from(total) || (count == 0 && first >= total)
        {
            return Err(fail(
                at,
                format!("{what}: queries {first} + {count} exceed the pool's {total}"),
                vuid,
            ));
        }
        Ok(())
    }

    /// Binding buffer or image `resource` at `offset` of `memory`: the host driver's memory
    /// requirement for it must fit inside the allocation.
    pub fn bind_range<T: Handle>(
        &self,
        at: &'static str,
        what: &str,
        resource: Id<T>,
        memory: Id<handles::DeviceMemory>,
        offset: u64,
        vuid: &'static str,
    ) -> Result<(), LowerError> {
        if resource.is_null() || memory.is_null() {
            return Ok(());
        }
        let required = match self.extent_of(at, resource)? {
            Extent::Buffer { required, .. } => required,
            Extent::Image(s) => s.required,
            other => {
                return Err(LowerError::rule(
                    at,
                    format!(
                        "{} id {} is not bindable ({other:?})",
                        T::NAME,
                        resource.raw()
                    ),
                ))
            }
        };
        self.byte_range(at, what, memory, offset, Bytes::Exact(required), vuid)
    }
}

/// `base .. base + count` (`count` may be `REMAINING`) inside `0 .. total`.
fn within(
    at: &'static str,
    what: &str,
    unit: &str,
    base: u32,
    count: u32,
    total: u32,
    vuid: &'static str,
) -> Result<(), LowerError> {
    let ok = base < total
        && (count == REMAINING || u64::from(base) + u64::from(count) <= u64::from(total));
    if ok {
        Ok(())
    } else {
        Err(fail(
            at,
            format!("{what}: {unit} {base} + {count} is outside the image's {total}"),
            vuid,
        ))
    }
}
