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
use venus_protocol::{format, Handle, Id};

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
    /// [`Self::level_extent`] of the part `aspect` addresses: a multi-planar format's plane
    /// is smaller by its divisors.
    pub fn aspect_extent(&self, level: u32, aspect: u32) -> [u64; 3] {
        let [w, h, d] = self.level_extent(level);
        let plane = match aspect {
            PLANE_0 => 0,
            PLANE_1 => 1,
            PLANE_2 => 2,
            _ => return [w, h, d],
        };
        match format::format_info(self.format).and_then(|f| f.planes.get(plane).copied()) {
            Some(p) => [
                w / u64::from(p.width_divisor.max(1)),
                h / u64::from(p.height_divisor.max(1)),
                d,
            ],
            None => [w, h, d],
        }
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

/// `VK_IMAGE_ASPECT_PLANE_0_BIT` .. `PLANE_2_BIT`.
const PLANE_0: u32 = 0x10;
const PLANE_1: u32 = 0x20;
const PLANE_2: u32 = 0x40;

/// A copy region inside one mip level (see [`LowerCx::image_region`]).
#[derive(Clone, Copy, Debug)]
pub struct Region<'a> {
    pub offset: &'a Offset3D,
    /// `None`: the offset alone is a corner (a blit's), which may equal the level's size.
    pub extent: Option<&'a Extent3D>,
    /// The extent is in texels of this other image (`vkCmdCopyImage`'s source): scaled by the
    /// two formats' texel blocks (a compressed <-> uncompressed copy).
    pub extent_in: Option<Id<handles::Image>>,
}

/// The buffer side of a buffer <-> image copy region (`VkBufferImageCopy(2)`).
#[derive(Clone, Copy, Debug)]
pub struct Footprint<'a> {
    pub offset: u64,
    pub row_length: u32,
    pub image_height: u32,
    pub layers: &'a ImageSubresourceLayers,
    pub extent: &'a Extent3D,
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
        region: Option<Region<'_>>,
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
        let Some(Region {
            offset: o,
            extent,
            extent_in,
        }) = region
        else {
            return Ok(());
        };
        let size = s.aspect_extent(l.mip_level, l.aspect_mask.0);
        let mut ext = extent.map(|e| [e.width, e.height, e.depth].map(u64::from));
        if let (Some(e), Some(src)) = (ext.as_mut(), extent_in.filter(|i| !i.is_null())) {
            let from = self.image_shape(at, src)?;
            let block = |f: i32| format::format_info(f).map_or([1, 1, 1], |i| i.block_extent);
            let (a, b) = (block(from.format), block(s.format));
            for i in 0..3 {
                e[i] = e[i].div_ceil(u64::from(a[i].max(1))) * u64::from(b[i].max(1));
            }
        }
        for (i, axis) in ["x", "y", "z"].into_iter().enumerate() {
            let start = [o.x, o.y, o.z][i];
            let len = ext.map_or(0, |e| e[i]);
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

    /// The bytes of `buffer` a buffer <-> image copy region touches (the spec's addressing:
    /// rows of `row_length` texels, slices of `image_height` rows, in texel blocks of the
    /// image format's `aspect`) inside the buffer.
    pub fn buffer_image(
        &self,
        at: &'static str,
        what: &str,
        buffer: Id<handles::Buffer>,
        image: Id<handles::Image>,
        f: Footprint<'_>,
        vuid: &'static str,
    ) -> Result<(), LowerError> {
        if buffer.is_null() || image.is_null() {
            return Ok(());
        }
        let s = self.image_shape(at, image)?;
        let aspect = f.layers.aspect_mask.0;
        let block = format::copy_texel_block(s.format, aspect).ok_or_else(|| {
            fail(
                at,
                format!(
                    "{what}: format {} has no texel block for aspect {aspect:#x}",
                    s.format
                ),
                vuid,
            )
        })?;
        let [bw, bh, bd] = block.extent.map(|x| u64::from(x.max(1)));
        let e = [f.extent.width, f.extent.height, f.extent.depth].map(u64::from);
        let row = if f.row_length == 0 {
            e[0]
        } else {
            u64::from(f.row_length)
        };
        let height = if f.image_height == 0 {
            e[1]
        } else {
            u64::from(f.image_height)
        };
        let layers = if f.layers.layer_count == REMAINING {
            u64::from(s.layer_bound().saturating_sub(f.layers.base_array_layer))
        } else {
            u64::from(f.layers.layer_count)
        };
        let size = u64::from(block.size);
        let (w, h, d) = (e[0].div_ceil(bw), e[1].div_ceil(bh), e[2].div_ceil(bd));
        if w == 0 || h == 0 || d == 0 || layers == 0 {
            return Ok(());
        }
        let row_bytes = row.div_ceil(bw).checked_mul(size);
        let slice = row_bytes.and_then(|r| height.div_ceil(bh).checked_mul(r));
        let layer = slice.and_then(|sl| d.checked_mul(sl));
        let bytes = (|| {
            (layers - 1)
                .checked_mul(layer?)?
                .checked_add((d - 1).checked_mul(slice?)?)?
                .checked_add((h - 1).checked_mul(row_bytes?)?)?
                .checked_add(w.checked_mul(size)?)
        })()
        .ok_or_else(|| {
            fail(
                at,
                format!("{what}: the region's byte size overflows"),
                vuid,
            )
        })?;
        self.byte_range(at, what, buffer, f.offset, Bytes::Exact(bytes), vuid)
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

#[cfg(test)]
mod tests {
    use super::*;
    use bumpalo::Bump;
    use venus_protocol::types::ImageAspectFlags;

    /// Objects by id: 1 a 256-byte buffer, 2 a 16x16 RGBA8 image with 2 levels and 3 layers,
    /// 3 a 16x16 BC1 image, 4 a 4096-byte allocation, 5 a pool of 4 queries, 6 a 64x32
    /// two-plane 4:2:0 image.
    struct Map;
    impl HandleMap for Map {
        fn host(&self, _: i32, id: u64) -> Option<u64> {
            Some(id)
        }
        fn guest(&self, _: i32, host: u64) -> Option<u64> {
            Some(host)
        }
        fn extent(&self, _: i32, id: u64) -> Option<Extent> {
            let image = |format, extent, mip_levels, array_layers| {
                Extent::Image(ImageShape {
                    image_type: 1,
                    format,
                    flags: 0,
                    extent,
                    mip_levels,
                    array_layers,
                    required: 0,
                })
            };
            Some(match id {
                1 => Extent::Buffer {
                    size: 256,
                    required: 256,
                },
                2 => image(37, [16, 16, 1], 2, 3),
                3 => image(131, [16, 16, 1], 1, 1),
                4 => Extent::Memory { size: 4096 },
                5 => Extent::QueryPool { count: 4 },
                6 => image(1000156003, [64, 32, 1], 1, 1),
                _ => return None,
            })
        }
    }

    fn id<T: Handle>(n: u64) -> Id<T> {
        Id::from_raw(n)
    }

    fn layers(aspect: u32, mip_level: u32, base: u32, count: u32) -> ImageSubresourceLayers {
        ImageSubresourceLayers {
            aspect_mask: ImageAspectFlags(aspect),
            mip_level,
            base_array_layer: base,
            layer_count: count,
        }
    }

    #[test]
    fn byte_ranges() {
        let arena = Bump::new();
        let cx = LowerCx::new(&arena, &Map);
        let b = id::<handles::Buffer>(1);
        let ok = |o, n| cx.byte_range("t", "w", b, o, n, "V").is_ok();
        assert!(ok(0, Bytes::Exact(256)));
        assert!(!ok(1, Bytes::Exact(256)));
        assert!(!ok(u64::MAX, Bytes::Exact(2)), "overflow is a failure");
        assert!(ok(255, Bytes::WholeOr(WHOLE_SIZE)));
        assert!(!ok(256, Bytes::WholeOr(WHOLE_SIZE)));
        let strided = |count, stride| Bytes::Strided {
            count,
            stride,
            element: 16,
        };
        assert!(ok(0, strided(4, 80)), "3 * 80 + 16 = 256");
        assert!(ok(0, strided(5, 60)), "4 * 60 + 16 = 256");
        assert!(!ok(0, strided(5, 61)), "4 * 61 + 16 = 260");
        assert!(ok(999, strided(0, 80)), "no draws read nothing");
        assert!(!ok(0, strided(u64::MAX, u64::MAX)));
        assert!(
            cx.byte_range("t", "w", id::<handles::Buffer>(9), 0, Bytes::Exact(1), "V")
                .is_err(),
            "an object without a recorded extent fails"
        );
        assert!(
            cx.byte_range("t", "w", id::<handles::Buffer>(0), 0, Bytes::Exact(1), "V")
                .is_ok(),
            "NULL is left to the handle rules"
        );
    }

    #[test]
    fn subresources_and_regions() {
        let arena = Bump::new();
        let cx = LowerCx::new(&arena, &Map);
        let img = id::<handles::Image>(2);
        let range = |base_mip_level, level_count, base_array_layer, layer_count| {
            cx.image_range(
                "t",
                "w",
                img,
                &ImageSubresourceRange {
                    aspect_mask: ImageAspectFlags(1),
                    base_mip_level,
                    level_count,
                    base_array_layer,
                    layer_count,
                },
                "V",
            )
            .is_ok()
        };
        assert!(range(0, 2, 0, 3));
        assert!(range(1, REMAINING, 2, REMAINING));
        assert!(!range(2, 1, 0, 1));
        assert!(!range(0, 3, 0, 1));
        assert!(!range(0, 1, 1, 3));
        let region = |l: ImageSubresourceLayers, o: Offset3D, e: Extent3D| {
            let r = Region {
                offset: &o,
                extent: Some(&e),
                extent_in: None,
            };
            cx.image_region("t", "w", img, &l, Some(r), "V").is_ok()
        };
        let e = |width, height| Extent3D {
            width,
            height,
            depth: 1,
        };
        let o = |x, y| Offset3D { x, y, z: 0 };
        assert!(region(layers(1, 0, 0, 3), o(0, 0), e(16, 16)));
        assert!(
            region(layers(1, 1, 0, 1), o(4, 4), e(4, 4)),
            "level 1 is 8x8"
        );
        assert!(!region(layers(1, 1, 0, 1), o(4, 4), e(5, 4)));
        assert!(!region(layers(1, 0, 0, 1), o(-1, 0), e(1, 1)));
        assert!(!region(layers(1, 0, 2, 2), o(0, 0), e(1, 1)));
        // A 16x16 BC1 source (4x4 blocks) copied into the RGBA8 image: 16x16 texels of BC1
        // are 4x4 texels of the destination.
        let l = layers(1, 0, 0, 1);
        let scaled = |x| {
            let (off, ext) = (o(x, 0), e(16, 16));
            let r = Region {
                offset: &off,
                extent: Some(&ext),
                extent_in: Some(id(3)),
            };
            cx.image_region("t", "w", img, &l, Some(r), "V").is_ok()
        };
        assert!(scaled(12));
        assert!(!scaled(13));
        // Plane 1 of a 64x32 4:2:0 image is 32x16.
        let planar = |l: ImageSubresourceLayers, w| {
            let (off, ext) = (o(0, 0), e(w, 16));
            let r = Region {
                offset: &off,
                extent: Some(&ext),
                extent_in: None,
            };
            cx.image_region("t", "w", id(6), &l, Some(r), "V").is_ok()
        };
        assert!(planar(layers(0x20, 0, 0, 1), 32));
        assert!(!planar(layers(0x20, 0, 0, 1), 33));
        assert!(planar(layers(0x10, 0, 0, 1), 64));
    }

    #[test]
    fn buffer_footprints() {
        let arena = Bump::new();
        let cx = LowerCx::new(&arena, &Map);
        let fits =
            |image: u64, offset, row_length, image_height, l: ImageSubresourceLayers, w, h| {
                let extent = Extent3D {
                    width: w,
                    height: h,
                    depth: 1,
                };
                let f = Footprint {
                    offset,
                    row_length,
                    image_height,
                    layers: &l,
                    extent: &extent,
                };
                cx.buffer_image("t", "w", id(1), id(image), f, "V").is_ok()
            };
        // RGBA8: 8x8 texels are exactly 256 bytes.
        assert!(fits(2, 0, 0, 0, layers(1, 0, 0, 1), 8, 8));
        assert!(!fits(2, 4, 0, 0, layers(1, 0, 0, 1), 8, 8));
        // Rows of 16 texels, 4 rows of 1 texel: the last row needs only its own texel.
        assert!(
            fits(2, 0, 16, 0, layers(1, 0, 0, 1), 1, 4),
            "3 * 64 + 4 = 196"
        );
        assert!(
            !fits(2, 0, 16, 0, layers(1, 0, 0, 1), 1, 5),
            "4 * 64 + 4 = 260"
        );
        // Two layers of 4x4 texels (64 bytes each) with slices of 8 rows: 128 + 64 + ... .
        assert!(
            fits(2, 0, 0, 8, layers(1, 0, 0, 2), 4, 4),
            "1 * 128 + 3 * 16 + 16 = 192"
        );
        assert!(!fits(2, 0, 0, 16, layers(1, 0, 0, 2), 4, 4), "256 + 64");
        // BC1: 16x16 texels are 4x4 blocks of 8 bytes = 128 bytes.
        assert!(fits(3, 128, 0, 0, layers(1, 0, 0, 1), 16, 16));
        assert!(!fits(3, 129, 0, 0, layers(1, 0, 0, 1), 16, 16));
        // An aspect the format does not have.
        assert!(!fits(2, 0, 0, 0, layers(2, 0, 0, 1), 1, 1));
    }

    #[test]
    fn queries_and_binds() {
        let arena = Bump::new();
        let cx = LowerCx::new(&arena, &Map);
        let pool = id::<handles::QueryPool>(5);
        assert!(cx.query_range("t", "w", pool, 0, 4, "V").is_ok());
        assert!(cx.query_range("t", "w", pool, 3, 1, "V").is_ok());
        assert!(cx.query_range("t", "w", pool, 4, 1, "V").is_err());
        assert!(cx.query_range("t", "w", pool, u32::MAX, 2, "V").is_err());
        let (b, m) = (id::<handles::Buffer>(1), id::<handles::DeviceMemory>(4));
        assert!(cx.bind_range("t", "w", b, m, 3840, "V").is_ok());
        assert!(cx.bind_range("t", "w", b, m, 3841, "V").is_err());
    }
}
