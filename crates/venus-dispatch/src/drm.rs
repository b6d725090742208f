//! The emulated `VK_EXT_image_drm_format_modifier` (contract §8.4 step 6): one modifier,
//! `DRM_FORMAT_MOD_LINEAR`, whose images are ordinary LINEAR images of the driver.
//!
//! It owns the answers of `vkGetPhysicalDeviceFormatProperties2` (modifier lists),
//! `vkGetPhysicalDeviceImageFormatProperties2` (DRM tiling asked as LINEAR, and the emulated
//! external-memory answer of [`crate::external`]), `vkGetImageDrmFormatModifierPropertiesEXT`,
//! and the checks of `vkCreateImage` with DRM tiling ([`DrmImage`]). With a driver that has
//! the extension, every one of these passes through untouched.

use std::ffi::c_void;

use venus_host::lower::{LowerCx, Raise};
use venus_host::vk;
use venus_protocol::commands::*;
use venus_protocol::structs::{
    DrmFormatModifierPropertiesList2EXT, DrmFormatModifierPropertiesListEXT, Ext, ImageCreateInfo,
    ImageDrmFormatModifierPropertiesEXT, SubresourceLayout,
};
use venus_protocol::types::{
    Format, FormatFeatureFlags, FormatFeatureFlags2, ImageAspectFlags, ImageTiling, VkResult,
};
use venus_protocol::{handles, ChainNode, Command, Handle, Id, Reply};
use venus_renderer::dispatch::DispatchError;

use crate::profile::{Profile, Support, DRM_FORMAT_MOD_LINEAR};
use crate::registry::{DeviceShared, InstanceShared};
use crate::{Call, VulkanDispatch};

/// Number of memory planes of `format` in LINEAR tiling (the multi-planar YCbCr formats).
pub fn plane_count(format: Format) -> u32 {
    match format.0 {
        // G8/G10/G12/G16 3-plane 420/422/444 and 2-plane 420/422, in that order per depth.
        1000156002 | 1000156004 | 1000156006 => 3,
        1000156003 | 1000156005 => 2,
        1000156013 | 1000156015 | 1000156017 => 3,
        1000156014 | 1000156016 => 2,
        1000156023 | 1000156025 | 1000156027 => 3,
        1000156024 | 1000156026 => 2,
        1000156030 | 1000156032 | 1000156034 => 3,
        1000156031 | 1000156033 => 2,
        // The 2-plane 444 formats (VK_EXT_ycbcr_2plane_444_formats, core in 1.3).
        1000330000..=1000330003 => 2,
        _ => 1,
    }
}

/// C chain surgery: the links of `s_types` are taken out of a lowered chain for the driver
/// call and put back afterwards, so that the generated raise (which pairs the request's
/// skeleton with the C chain link by link) sees the whole chain again.
pub(crate) struct Hidden {
    /// Every link of the chain, in order.
    order: Vec<*mut c_void>,
}

#[repr(C)]
struct Header {
    s_type: i32,
    p_next: *mut c_void,
}

impl Hidden {
    /// Unlinks the links of types `s_types` from `*head`.
    ///
    /// # Safety
    /// `*head` must be NULL or a chain of live, writable Vulkan structs (the lowering's arena).
    pub(crate) unsafe fn hide(head: &mut *mut c_void, s_types: &[i32]) -> Self {
        let mut order = Vec::new();
        let mut link = *head;
        // SAFETY: every link starts with sType/pNext (the caller's contract).
        unsafe {
            while !link.is_null() {
                order.push(link);
                link = (*(link as *mut Header)).p_next;
            }
        }
        let kept: Vec<*mut c_void> = order
            .iter()
            .copied()
            // SAFETY: as above.
            .filter(|&l| !s_types.contains(&unsafe { (*(l as *mut Header)).s_type }))
            .collect();
        // SAFETY: as above.
        unsafe { relink(head, &kept) };
        Hidden { order }
    }

    /// Puts the chain back as it was and returns its links.
    ///
    /// # Safety
    /// The links given to [`Hidden::hide`] must still be live and writable.
    pub(crate) unsafe fn restore(self, head: &mut *mut c_void) -> Vec<*mut c_void> {
        // SAFETY: the caller's contract.
        unsafe { relink(head, &self.order) };
        self.order
    }
}

/// Chains `links` in order behind `*head`.
///
/// # Safety
/// Every link must be a live, writable Vulkan struct.
unsafe fn relink(head: &mut *mut c_void, links: &[*mut c_void]) {
    *head = links.first().copied().unwrap_or(std::ptr::null_mut());
    for (i, &l) in links.iter().enumerate() {
        let next = links.get(i + 1).copied().unwrap_or(std::ptr::null_mut());
        // SAFETY: the caller's contract.
        unsafe { (*(l as *mut Header)).p_next = next };
    }
}

/// The sType of a C chain link.
///
/// # Safety
/// `l` must be a live Vulkan struct.
pub(crate) unsafe fn s_type_of(l: *mut c_void) -> i32 {
    // SAFETY: the caller's contract.
    unsafe { (*(l as *const Header)).s_type }
}

/// Fills a C modifier list (count query or fill) with `props` (0 or 1 entries).
///
/// # Safety
/// `count`/`array` come from a lowered output link: `array` is NULL or holds `*count` writable
/// elements.
unsafe fn fill_list<T: Copy>(count: &mut u32, array: *mut T, props: &[T]) {
    if array.is_null() {
        *count = props.len() as u32;
        return;
    }
    let n = (*count as usize).min(props.len());
    for (i, p) in props.iter().take(n).enumerate() {
        // SAFETY: `i < *count`, the array's length (the caller's contract).
        unsafe { array.add(i).write(*p) };
    }
    *count = n as u32;
}

/// What `vkCreateImage` with an emulated DRM tiling asked for.
pub(crate) struct DrmImage<'a> {
    /// The explicit plane layouts the linear image must have, if given.
    explicit: Option<&'a [SubresourceLayout]>,
}

impl<'a> DrmImage<'a> {
    /// `Ok(None)`: not an emulated DRM-tiling image. `Err`: the result to answer with (a
    /// modifier other than LINEAR, or none at all).
    pub(crate) fn of(
        profile: &Profile,
        info: &'a ImageCreateInfo<'a>,
    ) -> Result<Option<Self>, VkResult> {
        if profile.drm_format_modifier != Support::Emulated
            || info.tiling != ImageTiling::DRM_FORMAT_MODIFIER_EXT
        {
            return Ok(None);
        }
        for l in std::iter::successors(info.p_next, |l| l.next()) {
            match l {
                Ext::ImageDrmFormatModifierListCreateInfoEXT(list) => {
                    return if list.p_drm_format_modifiers.contains(&DRM_FORMAT_MOD_LINEAR) {
                        Ok(Some(DrmImage { explicit: None }))
                    } else {
                        Err(VkResult::ERROR_FORMAT_NOT_SUPPORTED)
                    };
                }
                Ext::ImageDrmFormatModifierExplicitCreateInfoEXT(e) => {
                    return if e.drm_format_modifier == DRM_FORMAT_MOD_LINEAR
                        && e.p_plane_layouts.len() as u32 == plane_count(info.format)
                    {
                        Ok(Some(DrmImage {
                            explicit: Some(e.p_plane_layouts),
                        }))
                    } else {
                        Err(VkResult::ERROR_INVALID_DRM_FORMAT_MODIFIER_PLANE_LAYOUT_EXT)
                    };
                }
                _ => {}
            }
        }
        Err(VkResult::ERROR_FORMAT_NOT_SUPPORTED)
    }

    /// Whether the linear image `image` has the explicit plane layouts (if any were given).
    pub(crate) fn layout_matches(
        &self,
        device: &DeviceShared,
        image: vk::Image,
        info: &vk::ImageCreateInfo,
    ) -> bool {
        let Some(planes) = self.explicit else {
            return true;
        };
        let Some(get) = device.procs.get_image_subresource_layout else {
            return false;
        };
        let multi = planes.len() > 1;
        planes.iter().enumerate().all(|(i, want)| {
            let sub = vk::ImageSubresource {
                aspect_mask: if multi {
                    ImageAspectFlags(ImageAspectFlags::PLANE_0_BIT.0 << i)
                } else {
                    ImageAspectFlags::COLOR_BIT
                },
                mip_level: 0,
                array_layer: 0,
            };
            let mut got = vk::SubresourceLayout::default();
            // SAFETY: `image` is a live linear image of this device, `sub` names one of its
            // planes, `got` is a valid output.
            unsafe { get(device.host, image, &sub, &mut got) };
            got.offset == want.offset
                && got.row_pitch == want.row_pitch
                && (info.array_layers <= 1 || got.array_pitch == want.array_pitch)
                && (info.extent.depth <= 1 || got.depth_pitch == want.depth_pitch)
        })
    }
}

impl VulkanDispatch {
    /// The context's instance, the host handle and the profile of physical device `pd`.
    pub(crate) fn physical_of(
        &self,
        call: &Call<'_, '_>,
        pd: Id<handles::PhysicalDevice>,
    ) -> Result<
        (
            std::sync::Arc<InstanceShared>,
            vk::PhysicalDevice,
            std::sync::Arc<Profile>,
        ),
        DispatchError,
    > {
        let inst = self.instance(call.name)?;
        let obj = self
            .registry
            .get_typed(handles::PhysicalDevice::OBJECT_TYPE, pd.raw())
            .map_err(|e| call.invalid(e))?;
        let host = vk::PhysicalDevice(obj.host);
        let profile = self.profile(&inst, host);
        Ok((inst, host, profile))
    }

    /// `vkGetPhysicalDeviceFormatProperties2`: modifier lists answered here when emulated.
    pub(crate) fn format_properties2(
        &self,
        call: &mut Call<'_, '_>,
        a: &GetPhysicalDeviceFormatProperties2Args<'_>,
    ) -> Result<(), DispatchError> {
        let (inst, pd, profile) = self.physical_of(call, a.physical_device)?;
        if profile.drm_format_modifier == Support::Native {
            return self.generic(call, &Command::GetPhysicalDeviceFormatProperties2(*a));
        }
        let f = inst
            .procs
            .get_physical_device_format_properties2
            .ok_or(DispatchError::Unsupported(call.name))?;
        let lists = [
            DrmFormatModifierPropertiesListEXT::STRUCTURE_TYPE.0,
            DrmFormatModifierPropertiesList2EXT::STRUCTURE_TYPE.0,
        ];
        let mut lcx = LowerCx::new(call.arena, call.held);
        let mut c = a
            .p_format_properties
            .lower_out(&mut lcx)
            .map_err(|e| call.invalid(e))?;
        // SAFETY: the chain was just lowered into the arena.
        let hidden = unsafe { Hidden::hide(&mut c.p_next, &lists) };
        // SAFETY: `pd` is a live physical device of `inst`; `c` and its chain live in the arena.
        unsafe { f(pd, a.format, &mut c) };
        // SAFETY: the links are still in the arena.
        let links = unsafe { hidden.restore(&mut c.p_next) };
        let features = c.format_properties.linear_tiling_features;
        for l in links {
            // SAFETY: `l` is a lowered link; each is read as the type its sType names, and its
            // array has the length of the skeleton's (lower_out allocated it so).
            unsafe { fill_modifier_list(l, a.format, features) };
        }
        let props =
            Raise::raise(a.p_format_properties, &c, &mut lcx).map_err(|e| call.invalid(e))?;
        let props = call.arena.alloc(props);
        call.cx.reply(&Reply::GetPhysicalDeviceFormatProperties2(
            GetPhysicalDeviceFormatProperties2Reply {
                p_format_properties: props,
            },
        ))
    }

    /// `vkGetImageDrmFormatModifierPropertiesEXT`: every emulated-DRM image is LINEAR.
    pub(crate) fn image_drm_format_modifier(
        &self,
        call: &mut Call<'_, '_>,
        a: &GetImageDrmFormatModifierPropertiesEXTArgs<'_>,
    ) -> Result<(), DispatchError> {
        let device = self
            .registry
            .device(a.device.raw())
            .map_err(|e| call.invalid(e))?;
        if device.profile.drm_format_modifier == Support::Native {
            return self.generic(call, &Command::GetImageDrmFormatModifierPropertiesEXT(*a));
        }
        self.registry
            .get_typed(handles::Image::OBJECT_TYPE, a.image.raw())
            .map_err(|e| call.invalid(e))?;
        let props = call.arena.alloc(ImageDrmFormatModifierPropertiesEXT {
            p_next: a.p_properties.p_next,
            drm_format_modifier: DRM_FORMAT_MOD_LINEAR,
        });
        call.cx
            .reply(&Reply::GetImageDrmFormatModifierPropertiesEXT(
                GetImageDrmFormatModifierPropertiesEXTReply {
                    ret: VkResult::SUCCESS,
                    p_properties: props,
                },
            ))
    }
}

/// Fills `l` if it is a modifier list: LINEAR with the format's linear features (nothing when
/// LINEAR has none).
///
/// # Safety
/// `l` must be a lowered output link whose arrays have the lengths their counts say.
unsafe fn fill_modifier_list(l: *mut c_void, format: Format, features: FormatFeatureFlags) {
    let planes = plane_count(format);
    let usable = features.0 != 0;
    // SAFETY: `l` is a live link (the caller's contract).
    let s_type = unsafe { s_type_of(l) };
    if s_type == DrmFormatModifierPropertiesListEXT::STRUCTURE_TYPE.0 {
        // SAFETY: the sType names this layout.
        let list = unsafe { &mut *(l as *mut vk::DrmFormatModifierPropertiesListEXT) };
        let one = vk::DrmFormatModifierPropertiesEXT {
            drm_format_modifier: DRM_FORMAT_MOD_LINEAR,
            drm_format_modifier_plane_count: planes,
            drm_format_modifier_tiling_features: features,
        };
        let props: &[_] = if usable { &[one] } else { &[] };
        let array = list.p_drm_format_modifier_properties as *mut _;
        // SAFETY: the array is NULL or has `count` elements (the caller's contract).
        unsafe { fill_list(&mut list.drm_format_modifier_count, array, props) };
    } else if s_type == DrmFormatModifierPropertiesList2EXT::STRUCTURE_TYPE.0 {
        // SAFETY: the sType names this layout.
        let list = unsafe { &mut *(l as *mut vk::DrmFormatModifierPropertiesList2EXT) };
        let one = vk::DrmFormatModifierProperties2EXT {
            drm_format_modifier: DRM_FORMAT_MOD_LINEAR,
            drm_format_modifier_plane_count: planes,
            drm_format_modifier_tiling_features: FormatFeatureFlags2(features.0 as u64),
        };
        let props: &[_] = if usable { &[one] } else { &[] };
        let array = list.p_drm_format_modifier_properties as *mut _;
        // SAFETY: as above.
        unsafe { fill_list(&mut list.drm_format_modifier_count, array, props) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use venus_protocol::structs::{
        ImageDrmFormatModifierExplicitCreateInfoEXT, ImageDrmFormatModifierListCreateInfoEXT,
    };

    fn emulated() -> Profile {
        Profile::new(&[], false)
    }

    fn drm_info<'a>(next: Option<&'a Ext<'a>>) -> ImageCreateInfo<'a> {
        ImageCreateInfo {
            p_next: next,
            format: Format(37), // R8G8B8A8_UNORM
            tiling: ImageTiling::DRM_FORMAT_MODIFIER_EXT,
            ..Default::default()
        }
    }

    #[test]
    fn linear_in_the_modifier_list_is_accepted_and_others_are_not() {
        let list =
            Ext::ImageDrmFormatModifierListCreateInfoEXT(ImageDrmFormatModifierListCreateInfoEXT {
                p_next: None,
                drm_format_modifier_count: 2,
                p_drm_format_modifiers: &[7, DRM_FORMAT_MOD_LINEAR],
            });
        let info = drm_info(Some(&list));
        let d = DrmImage::of(&emulated(), &info).unwrap().unwrap();
        assert!(d.explicit.is_none());
        let only_tiled =
            Ext::ImageDrmFormatModifierListCreateInfoEXT(ImageDrmFormatModifierListCreateInfoEXT {
                p_next: None,
                drm_format_modifier_count: 1,
                p_drm_format_modifiers: &[7],
            });
        let info = drm_info(Some(&only_tiled));
        assert_eq!(
            DrmImage::of(&emulated(), &info).err(),
            Some(VkResult::ERROR_FORMAT_NOT_SUPPORTED)
        );
        assert_eq!(
            DrmImage::of(&emulated(), &drm_info(None)).err(),
            Some(VkResult::ERROR_FORMAT_NOT_SUPPORTED)
        );
    }

    #[test]
    fn explicit_layouts_need_modifier_zero_and_one_plane_per_memory_plane() {
        let layout = [SubresourceLayout {
            row_pitch: 256,
            ..Default::default()
        }];
        let explicit = |modifier, planes: &'static [SubresourceLayout]| {
            Ext::ImageDrmFormatModifierExplicitCreateInfoEXT(
                ImageDrmFormatModifierExplicitCreateInfoEXT {
                    p_next: None,
                    drm_format_modifier: modifier,
                    drm_format_modifier_plane_count: planes.len() as u32,
                    p_plane_layouts: planes,
                },
            )
        };
        let layout: &'static [SubresourceLayout] = Box::leak(Box::new(layout));
        let ok = explicit(0, layout);
        let info = drm_info(Some(&ok));
        let d = DrmImage::of(&emulated(), &info).unwrap().unwrap();
        assert_eq!(d.explicit.unwrap()[0].row_pitch, 256);
        let wrong = explicit(1, layout);
        assert_eq!(
            DrmImage::of(&emulated(), &drm_info(Some(&wrong))).err(),
            Some(VkResult::ERROR_INVALID_DRM_FORMAT_MODIFIER_PLANE_LAYOUT_EXT)
        );
        let mut nv12 = drm_info(Some(&ok));
        nv12.format = Format(1000156003); // G8_B8R8_2PLANE_420: two planes, one layout
        assert_eq!(
            DrmImage::of(&emulated(), &nv12).err(),
            Some(VkResult::ERROR_INVALID_DRM_FORMAT_MODIFIER_PLANE_LAYOUT_EXT)
        );
    }

    #[test]
    fn native_modifiers_and_other_tilings_are_left_alone() {
        let mut native = emulated();
        native.drm_format_modifier = Support::Native;
        assert!(DrmImage::of(&native, &drm_info(None)).unwrap().is_none());
        let mut linear = drm_info(None);
        linear.tiling = ImageTiling::LINEAR;
        assert!(DrmImage::of(&emulated(), &linear).unwrap().is_none());
    }

    #[test]
    fn plane_counts_of_multi_planar_formats() {
        assert_eq!(plane_count(Format(37)), 1);
        assert_eq!(plane_count(Format(1000156002)), 3); // G8_B8_R8_3PLANE_420
        assert_eq!(plane_count(Format(1000156003)), 2); // G8_B8R8_2PLANE_420
        assert_eq!(plane_count(Format(1000156031)), 2); // G16_B16R16_2PLANE_420
        assert_eq!(plane_count(Format(1000330001)), 2); // G10X6_B10X6R10X6_2PLANE_444
    }

    fn list_link() -> vk::DrmFormatModifierPropertiesListEXT {
        vk::DrmFormatModifierPropertiesListEXT {
            s_type: DrmFormatModifierPropertiesListEXT::STRUCTURE_TYPE,
            ..Default::default()
        }
    }

    #[test]
    fn modifier_lists_are_counted_then_filled_with_linear() {
        let features = FormatFeatureFlags(0x1 | 0x400);
        let mut list = list_link();
        // SAFETY: `list` is a live link with a NULL array.
        unsafe { fill_modifier_list(&mut list as *mut _ as *mut c_void, Format(37), features) };
        assert_eq!(list.drm_format_modifier_count, 1);
        let mut array = [vk::DrmFormatModifierPropertiesEXT {
            drm_format_modifier: 99,
            ..Default::default()
        }; 2];
        list.drm_format_modifier_count = 2;
        list.p_drm_format_modifier_properties = array.as_mut_ptr();
        // SAFETY: the array has `count` elements.
        unsafe { fill_modifier_list(&mut list as *mut _ as *mut c_void, Format(37), features) };
        assert_eq!(list.drm_format_modifier_count, 1);
        assert_eq!(array[0].drm_format_modifier, DRM_FORMAT_MOD_LINEAR);
        assert_eq!(array[0].drm_format_modifier_plane_count, 1);
        assert_eq!(array[0].drm_format_modifier_tiling_features, features);
        assert_eq!(array[1].drm_format_modifier, 99, "only one entry written");

        let mut list2 = vk::DrmFormatModifierPropertiesList2EXT {
            s_type: DrmFormatModifierPropertiesList2EXT::STRUCTURE_TYPE,
            ..Default::default()
        };
        // SAFETY: a live link with a NULL array.
        unsafe {
            fill_modifier_list(
                &mut list2 as *mut _ as *mut c_void,
                Format(37),
                FormatFeatureFlags(0),
            )
        };
        assert_eq!(
            list2.drm_format_modifier_count, 0,
            "no linear features: none"
        );
    }

    #[test]
    fn hidden_links_are_out_for_the_call_and_back_in_order() {
        let mut c = list_link();
        let mut b = vk::ExternalImageFormatProperties::default();
        let mut a = list_link();
        a.s_type = DrmFormatModifierPropertiesList2EXT::STRUCTURE_TYPE;
        b.p_next = &mut c as *mut _ as *mut c_void;
        a.p_next = &mut b as *mut _ as *mut c_void;
        let mut head = &mut a as *mut _ as *mut c_void;
        let lists = [
            DrmFormatModifierPropertiesListEXT::STRUCTURE_TYPE.0,
            DrmFormatModifierPropertiesList2EXT::STRUCTURE_TYPE.0,
        ];
        // SAFETY: the three structs are live and chained.
        let hidden = unsafe { Hidden::hide(&mut head, &lists) };
        assert_eq!(head, &mut b as *mut _ as *mut c_void);
        assert!(b.p_next.is_null());
        // SAFETY: still live.
        let links = unsafe { hidden.restore(&mut head) };
        assert_eq!(links.len(), 3);
        assert_eq!(head, &mut a as *mut _ as *mut c_void);
        assert_eq!(b.p_next, &mut c as *mut _ as *mut c_void);
        assert!(c.p_next.is_null());
    }
}
