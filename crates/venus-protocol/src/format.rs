//! Texel blocks of `VkFormat`s: the types of the generated table
//! ([`generated::formats::FORMATS`](crate::generated::formats::FORMATS), from vk.xml's
//! `<formats>`) and the lookups over it.
//!
//! This module owns the answer to "how many bytes does one block of this format (or of this
//! aspect of it) take, and how many texels does a block cover", which buffer<->image copy range
//! rules need. Pure data: no I/O, no allocation.

use crate::generated::formats::FORMATS;
use crate::types::ImageAspectFlags;

/// One plane of a multi-planar format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plane {
    /// The single-plane format the plane is compatible with (`VK_FORMAT_R8_UNORM`, ...).
    pub format: i32,
    /// Bytes per texel of that format.
    pub block_size: u32,
    /// The plane's width and height are the image's divided by these.
    pub width_divisor: u32,
    pub height_divisor: u32,
}

/// The texel layout of one format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FormatInfo {
    /// The `VkFormat` value.
    pub format: i32,
    /// `VK_FORMAT_...`.
    pub name: &'static str,
    /// The compatibility class (`"32-bit"`, `"BC1_RGB"`, `"D24S8"`, ...).
    pub class: &'static str,
    /// Bytes per texel block (for multi-planar formats: of all planes together, per texel).
    pub block_size: u32,
    /// Texels per block in x, y, z (`[1, 1, 1]` for uncompressed formats).
    pub block_extent: [u32; 3],
    /// Block-compressed (BC, ETC2, EAC, ASTC, PVRTC).
    pub compressed: bool,
    /// Bits of the depth and stencil components (0: the format has none).
    pub depth_bits: u32,
    pub stencil_bits: u32,
    /// Planes by index; empty for single-plane formats.
    pub planes: &'static [Plane],
}

impl FormatInfo {
    /// The format has a depth or a stencil component.
    pub fn is_depth_stencil(&self) -> bool {
        self.depth_bits != 0 || self.stencil_bits != 0
    }

    /// The format has more than one plane.
    pub fn is_multi_planar(&self) -> bool {
        !self.planes.is_empty()
    }
}

/// One block of a buffer<->image copy: bytes it takes in the buffer and texels it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    pub size: u32,
    pub extent: [u32; 3],
}

/// The layout of `format`, or `None` for a value that is not a format of this protocol level
/// (including `VK_FORMAT_UNDEFINED`).
pub fn format_info(format: i32) -> Option<FormatInfo> {
    FORMATS
        .binary_search_by_key(&format, |f| f.format)
        .ok()
        .map(|i| FORMATS[i])
}

/// Bytes per texel of the depth aspect in a buffer<->image copy (Vulkan spec, "Copying Data
/// Between Buffers and Images", the depth/stencil aspect table): D16 -> 2; D24 (X8_D24 and
/// D24_S8: the depth sits in 32 bits) and D32 -> 4.
fn depth_copy_size(depth_bits: u32) -> Option<u32> {
    match depth_bits {
        16 => Some(2),
        24 | 32 => Some(4),
        _ => None,
    }
}

/// The block of a buffer<->image copy of `aspect` (one `VkImageAspectFlagBits` value) of an
/// image of `format`: COLOR -> the format's own block (single-plane color formats only);
/// DEPTH / STENCIL -> one texel of the aspect per the spec's depth/stencil table (stencil is
/// always 1 byte); PLANE_i -> one texel of plane i's compatible format (multi-planar formats
/// only). `None` for an unknown format or an aspect that does not apply to it (several bits,
/// METADATA, a plane the format lacks, ...).
pub fn copy_texel_block(format: i32, aspect: u32) -> Option<Block> {
    let info = format_info(format)?;
    let texel = |size| Block {
        size,
        extent: [1, 1, 1],
    };
    let plane = |i: usize| info.planes.get(i).map(|p| texel(p.block_size));
    match ImageAspectFlags(aspect) {
        ImageAspectFlags::COLOR_BIT if !info.is_depth_stencil() && !info.is_multi_planar() => {
            Some(Block {
                size: info.block_size,
                extent: info.block_extent,
            })
        }
        ImageAspectFlags::DEPTH_BIT => depth_copy_size(info.depth_bits).map(texel),
        ImageAspectFlags::STENCIL_BIT if info.stencil_bits == 8 => Some(texel(1)),
        ImageAspectFlags::PLANE_0_BIT => plane(0),
        ImageAspectFlags::PLANE_1_BIT => plane(1),
        ImageAspectFlags::PLANE_2_BIT => plane(2),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Format;

    const COLOR: u32 = ImageAspectFlags::COLOR_BIT.0;
    const DEPTH: u32 = ImageAspectFlags::DEPTH_BIT.0;
    const STENCIL: u32 = ImageAspectFlags::STENCIL_BIT.0;
    const PLANE_0: u32 = ImageAspectFlags::PLANE_0_BIT.0;
    const PLANE_1: u32 = ImageAspectFlags::PLANE_1_BIT.0;
    const PLANE_2: u32 = ImageAspectFlags::PLANE_2_BIT.0;

    fn block(size: u32, extent: [u32; 3]) -> Option<Block> {
        Some(Block { size, extent })
    }

    #[test]
    fn color_formats_have_their_block() {
        let rgba = format_info(Format::R8G8B8A8_UNORM.0).unwrap();
        assert_eq!(
            (rgba.name, rgba.class, rgba.block_size, rgba.block_extent),
            ("VK_FORMAT_R8G8B8A8_UNORM", "32-bit", 4, [1, 1, 1])
        );
        assert!(!rgba.compressed && !rgba.is_depth_stencil() && !rgba.is_multi_planar());
        assert_eq!(
            copy_texel_block(Format::R8G8B8A8_UNORM.0, COLOR),
            block(4, [1, 1, 1])
        );
        assert_eq!(
            copy_texel_block(Format::E5B9G9R9_UFLOAT_PACK32.0, COLOR),
            block(4, [1, 1, 1])
        );
        assert_eq!(
            copy_texel_block(Format::R64G64B64A64_SFLOAT.0, COLOR),
            block(32, [1, 1, 1])
        );
        // A color format has no depth, stencil or plane aspect.
        for aspect in [DEPTH, STENCIL, PLANE_0, COLOR | DEPTH, 0] {
            assert_eq!(copy_texel_block(Format::R8G8B8A8_UNORM.0, aspect), None);
        }
    }

    #[test]
    fn compressed_formats_have_their_block_extent() {
        assert!(
            format_info(Format::BC1_RGB_UNORM_BLOCK.0)
                .unwrap()
                .compressed
        );
        assert_eq!(
            copy_texel_block(Format::BC1_RGB_UNORM_BLOCK.0, COLOR),
            block(8, [4, 4, 1])
        );
        assert_eq!(
            copy_texel_block(Format::BC7_SRGB_BLOCK.0, COLOR),
            block(16, [4, 4, 1])
        );
        assert_eq!(
            copy_texel_block(Format::ASTC_8x8_UNORM_BLOCK.0, COLOR),
            block(16, [8, 8, 1])
        );
        assert_eq!(
            copy_texel_block(Format::ETC2_R8G8B8_UNORM_BLOCK.0, COLOR),
            block(8, [4, 4, 1])
        );
        // 4:2:2 single-plane formats copy in 2x1 blocks.
        assert_eq!(
            copy_texel_block(Format::G8B8G8R8_422_UNORM.0, COLOR),
            block(4, [2, 1, 1])
        );
    }

    #[test]
    fn depth_stencil_aspects_follow_the_spec_table() {
        let t = |f: Format, a| copy_texel_block(f.0, a).map(|b| b.size);
        assert_eq!(t(Format::D16_UNORM, DEPTH), Some(2));
        assert_eq!(t(Format::X8_D24_UNORM_PACK32, DEPTH), Some(4));
        assert_eq!(t(Format::D32_SFLOAT, DEPTH), Some(4));
        assert_eq!(t(Format::S8_UINT, STENCIL), Some(1));
        assert_eq!(t(Format::D16_UNORM_S8_UINT, DEPTH), Some(2));
        assert_eq!(t(Format::D16_UNORM_S8_UINT, STENCIL), Some(1));
        assert_eq!(t(Format::D24_UNORM_S8_UINT, DEPTH), Some(4));
        assert_eq!(t(Format::D24_UNORM_S8_UINT, STENCIL), Some(1));
        assert_eq!(t(Format::D32_SFLOAT_S8_UINT, DEPTH), Some(4));
        assert_eq!(t(Format::D32_SFLOAT_S8_UINT, STENCIL), Some(1));
        // Aspects the format lacks, and COLOR of a depth/stencil format.
        assert_eq!(t(Format::D16_UNORM, STENCIL), None);
        assert_eq!(t(Format::S8_UINT, DEPTH), None);
        assert_eq!(t(Format::D24_UNORM_S8_UINT, COLOR), None);
        assert_eq!(t(Format::D24_UNORM_S8_UINT, DEPTH | STENCIL), None);
        let d24s8 = format_info(Format::D24_UNORM_S8_UINT.0).unwrap();
        assert_eq!((d24s8.depth_bits, d24s8.stencil_bits), (24, 8));
        assert_eq!(
            copy_texel_block(Format::D32_SFLOAT_S8_UINT.0, DEPTH),
            block(4, [1, 1, 1])
        );
    }

    #[test]
    fn planes_copy_as_their_compatible_format() {
        let nv12 = format_info(Format::G8_B8R8_2PLANE_420_UNORM.0).unwrap();
        assert_eq!(
            nv12.planes,
            &[
                Plane {
                    format: Format::R8_UNORM.0,
                    block_size: 1,
                    width_divisor: 1,
                    height_divisor: 1
                },
                Plane {
                    format: Format::R8G8_UNORM.0,
                    block_size: 2,
                    width_divisor: 2,
                    height_divisor: 2
                },
            ]
        );
        let f = Format::G8_B8R8_2PLANE_420_UNORM.0;
        assert_eq!(copy_texel_block(f, PLANE_0), block(1, [1, 1, 1]));
        assert_eq!(copy_texel_block(f, PLANE_1), block(2, [1, 1, 1]));
        assert_eq!(copy_texel_block(f, PLANE_2), None);
        assert_eq!(copy_texel_block(f, COLOR), None);
        let p010 = Format::G10X6_B10X6R10X6_2PLANE_420_UNORM_3PACK16.0;
        assert_eq!(copy_texel_block(p010, PLANE_1), block(4, [1, 1, 1]));
        let yuv444 = Format::G16_B16_R16_3PLANE_444_UNORM.0;
        assert_eq!(copy_texel_block(yuv444, PLANE_2), block(2, [1, 1, 1]));
        assert_eq!(format_info(yuv444).unwrap().planes[2].width_divisor, 1);
    }

    #[test]
    fn unknown_formats_have_no_block() {
        assert_eq!(format_info(Format::UNDEFINED.0), None);
        assert_eq!(format_info(-1), None);
        assert_eq!(format_info(999_999), None);
        assert_eq!(copy_texel_block(999_999, COLOR), None);
        assert_eq!(copy_texel_block(Format::UNDEFINED.0, COLOR), None);
    }

    #[test]
    fn the_table_is_sorted_and_complete() {
        assert!(FORMATS.windows(2).all(|w| w[0].format < w[1].format));
        // Every plane's compatible format is itself in the table with the same block size.
        for f in &FORMATS {
            for p in f.planes {
                assert_eq!(format_info(p.format).unwrap().block_size, p.block_size);
            }
        }
        // The core formats 1..=184 (R4G4_UNORM_PACK8 .. ASTC_12x12_SRGB_BLOCK) all have rows.
        assert!((1..=184).all(|v| format_info(v).is_some()));
    }
}
