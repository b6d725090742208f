//! Portability: what a host whose driver is a *portability* implementation (MoltenVK,
//! KosmicKrisp on macOS; our test layer on Linux) needs.
//!
//! - **Instance.** The loader hides portability drivers unless the instance is created with
//!   `VK_KHR_portability_enumeration` enabled and `VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR`
//!   set. We do both whenever the loader lists the extension ([`enumeration_offered`],
//!   [`InstancePortability`]), for every context's instance and for the pinned one.
//! - **Device.** A device that lists `VK_KHR_portability_subset` must be created with it
//!   enabled (the spec requires it); [`SUBSET`] is added by device creation.
//! - **Features.** `VkPhysicalDevicePortabilitySubsetFeaturesKHR` is read once per physical
//!   device ([`read_subset`]) and decides which core features the client is *not* shown
//!   ([`Subset::hidden`]): the client never learns of the portability subset (the protocol
//!   does not carry it), so a feature whose full behaviour the device lacks must look absent.
//!   Replies of `vkGetPhysicalDeviceFeatures(2)` are masked ([`mask_reply`]), and so is what a
//!   client asks to enable at device creation (`pEnabledFeatures` and a chained
//!   `VkPhysicalDeviceFeatures2`, [`mask_lowered_chain`]).
//!
//! # The mapping (subset feature missing -> core feature hidden)
//!
//! - `pointPolygons` -> `fillModeNonSolid` (`VK_POLYGON_MODE_POINT` needs it; line mode is
//!   hidden with it: conservative, and MoltenVK has no point polygons);
//! - `tessellationIsolines` or `tessellationPointMode` -> `tessellationShader` (both are part
//!   of what a tessellation-capable device must accept in SPIR-V);
//! - `shaderSampleRateInterpolationFunctions` -> `sampleRateShading` (the `InterpolationFunction`
//!   SPIR-V capability is what that feature enables).
//!
//! The other restrictions have no core feature bit to hide, so a client can still run into
//! them; the driver (or our test layer) rejects or misrenders such calls: `events`
//! (`vkCmdSetEvent`/`vkCmdWaitEvents`; Mesa's client uses events only for its own query and
//! WSI paths, none of which it takes on vtest), `triangleFans`, `constantAlphaColorBlendFactors`,
//! `separateStencilMaskRef`, `mutableComparisonSamplers`, `samplerMipLodBias`,
//! `vertexAttributeAccessBeyondStride` (with the minimum stride alignment property),
//! `imageViewFormatReinterpretation`, `imageViewFormatSwizzle`, `imageView2DOn3DImage`,
//! `multisampleArrayImage`. They are listed by `venus-server --doctor`.

use std::ffi::CStr;

use bumpalo::Bump;
use venus_host::vk;
use venus_host::InstanceProcs;
use venus_protocol::commands::{GetPhysicalDeviceFeatures2Reply, GetPhysicalDeviceFeaturesReply};
use venus_protocol::structs::PhysicalDeviceFeatures;
use venus_protocol::Reply;

/// `VK_KHR_portability_enumeration`.
pub const ENUMERATION: &CStr = c"VK_KHR_portability_enumeration";
/// `VK_KHR_portability_subset`.
pub const SUBSET: &CStr = c"VK_KHR_portability_subset";
/// `VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR`.
pub const ENUMERATE_PORTABILITY_BIT: u32 = 0x1;

/// Whether the host loader lists `VK_KHR_portability_enumeration` (no layer).
pub fn enumeration_offered(global: &InstanceProcs) -> bool {
    let Some(f) = global.enumerate_instance_extension_properties else {
        return false;
    };
    let mut n = 0u32;
    // SAFETY: a global command; count query with a NULL layer name and a NULL array.
    unsafe { f(std::ptr::null(), &mut n, std::ptr::null_mut()) };
    let mut props = vec![vk::ExtensionProperties::default(); n as usize];
    // SAFETY: `props` has room for `n` elements.
    unsafe { f(std::ptr::null(), &mut n, props.as_mut_ptr()) };
    props.truncate(n as usize);
    props
        .iter()
        .any(|p| c_name(&p.extension_name) == ENUMERATION.to_bytes())
}

/// The bytes of a NUL-terminated fixed-size name (all of it if there is no NUL).
fn c_name(name: &[std::ffi::c_char]) -> Vec<u8> {
    name.iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect()
}

/// The instance-creation additions: extension names and flags to apply to a host
/// `VkInstanceCreateInfo` (the host enables no other instance extension).
pub struct InstancePortability {
    names: [*const std::ffi::c_char; 1],
    enabled: bool,
}

impl InstancePortability {
    /// Portability enumeration if the loader offers it.
    pub fn new(global: &InstanceProcs) -> Self {
        Self::with(enumeration_offered(global))
    }

    /// Portability enumeration iff `enabled`.
    pub fn with(enabled: bool) -> Self {
        InstancePortability {
            names: [ENUMERATION.as_ptr()],
            enabled,
        }
    }

    /// Whether the extension and flag are applied.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Sets the flag and replaces the extension list of `info` (which then points into
    /// `self`: keep `self` alive until the create call returns).
    pub fn apply(&self, info: &mut vk::InstanceCreateInfo) {
        if self.enabled {
            info.flags.0 |= ENUMERATE_PORTABILITY_BIT;
            info.enabled_extension_count = 1;
            info.pp_enabled_extension_names = self.names.as_ptr();
        }
    }
}

/// A portability-subset device's restrictions, as its features struct reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subset {
    /// `(name, supported)` for each member of `VkPhysicalDevicePortabilitySubsetFeaturesKHR`.
    pub features: [(&'static str, bool); 15],
}

/// The core features hidden when a subset feature is missing (see the module doc).
pub(crate) const HIDES: [(&str, &str); 4] = [
    ("pointPolygons", "fillModeNonSolid"),
    ("tessellationIsolines", "tessellationShader"),
    ("tessellationPointMode", "tessellationShader"),
    (
        "shaderSampleRateInterpolationFunctions",
        "sampleRateShading",
    ),
];

impl Subset {
    /// From the driver's struct.
    pub fn from_vk(f: &vk::PhysicalDevicePortabilitySubsetFeaturesKHR) -> Self {
        let b = |v: u32| v != 0;
        Subset {
            features: [
                (
                    "constantAlphaColorBlendFactors",
                    b(f.constant_alpha_color_blend_factors),
                ),
                ("events", b(f.events)),
                (
                    "imageViewFormatReinterpretation",
                    b(f.image_view_format_reinterpretation),
                ),
                ("imageViewFormatSwizzle", b(f.image_view_format_swizzle)),
                ("imageView2DOn3DImage", b(f.image_view2_d_on3_d_image)),
                ("multisampleArrayImage", b(f.multisample_array_image)),
                (
                    "mutableComparisonSamplers",
                    b(f.mutable_comparison_samplers),
                ),
                ("pointPolygons", b(f.point_polygons)),
                ("samplerMipLodBias", b(f.sampler_mip_lod_bias)),
                ("separateStencilMaskRef", b(f.separate_stencil_mask_ref)),
                (
                    "shaderSampleRateInterpolationFunctions",
                    b(f.shader_sample_rate_interpolation_functions),
                ),
                ("tessellationIsolines", b(f.tessellation_isolines)),
                ("tessellationPointMode", b(f.tessellation_point_mode)),
                ("triangleFans", b(f.triangle_fans)),
                (
                    "vertexAttributeAccessBeyondStride",
                    b(f.vertex_attribute_access_beyond_stride),
                ),
            ],
        }
    }

    /// The subset features the device lacks.
    pub fn missing(&self) -> Vec<&'static str> {
        self.features
            .iter()
            .filter(|(_, s)| !s)
            .map(|(n, _)| *n)
            .collect()
    }

    /// The core features the client is not shown, in a stable order without repeats.
    pub fn hidden(&self) -> Vec<&'static str> {
        let missing = self.missing();
        let mut out: Vec<&'static str> = Vec::new();
        for (subset, core) in HIDES {
            if missing.contains(&subset) && !out.contains(&core) {
                out.push(core);
            }
        }
        out
    }

    /// [`Subset::mask`] for the host's C struct.
    pub fn mask_host(&self, f: &mut vk::PhysicalDeviceFeatures) {
        let mut p = PhysicalDeviceFeatures {
            fill_mode_non_solid: f.fill_mode_non_solid,
            tessellation_shader: f.tessellation_shader,
            sample_rate_shading: f.sample_rate_shading,
            ..Default::default()
        };
        self.mask(&mut p);
        f.fill_mode_non_solid = p.fill_mode_non_solid;
        f.tessellation_shader = p.tessellation_shader;
        f.sample_rate_shading = p.sample_rate_shading;
    }

    /// Clears the hidden core features in `f` (a reply to the client, or the features the
    /// client asks to enable).
    pub fn mask(&self, f: &mut PhysicalDeviceFeatures) {
        for core in self.hidden() {
            match core {
                "fillModeNonSolid" => f.fill_mode_non_solid = 0,
                "tessellationShader" => f.tessellation_shader = 0,
                "sampleRateShading" => f.sample_rate_shading = 0,
                _ => {}
            }
        }
    }
}

/// The common head of every Vulkan struct in a pNext chain.
#[repr(C)]
struct ChainHead {
    s_type: i32,
    p_next: *mut std::ffi::c_void,
}

/// `VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2`.
const FEATURES2: i32 = 1000059000;

/// Clears the hidden core features in a chained `VkPhysicalDeviceFeatures2` of a lowered
/// `VkDeviceCreateInfo` chain starting at `p_next` (`pEnabledFeatures` is masked before
/// lowering).
///
/// # Safety
///
/// `p_next` is NULL or the start of a well-formed chain of lowered host structs that the
/// caller exclusively owns (the call's arena) and that nothing else references.
pub unsafe fn mask_lowered_chain(subset: &Subset, mut p_next: *mut std::ffi::c_void) {
    while !p_next.is_null() {
        let head = p_next.cast::<ChainHead>();
        // SAFETY: every link starts with sType and pNext (the Vulkan ABI), and the caller
        // guarantees the chain is valid and ours alone.
        let (s_type, next) = unsafe { ((*head).s_type, (*head).p_next) };
        if s_type == FEATURES2 {
            // SAFETY: a link of this sType is a VkPhysicalDeviceFeatures2 (as above).
            let f2 = unsafe { &mut *p_next.cast::<vk::PhysicalDeviceFeatures2>() };
            subset.mask_host(&mut f2.features);
        }
        p_next = next;
    }
}

/// `reply` with the hidden core features cleared, if it answers
/// `vkGetPhysicalDeviceFeatures(2)`; any other reply unchanged.
pub fn mask_reply<'a>(subset: &Subset, reply: Reply<'a>, arena: &'a Bump) -> Reply<'a> {
    match reply {
        Reply::GetPhysicalDeviceFeatures(r) => {
            let mut f = *r.p_features;
            subset.mask(&mut f);
            Reply::GetPhysicalDeviceFeatures(GetPhysicalDeviceFeaturesReply {
                p_features: arena.alloc(f),
            })
        }
        Reply::GetPhysicalDeviceFeatures2(r) => {
            let mut f2 = *r.p_features;
            subset.mask(&mut f2.features);
            Reply::GetPhysicalDeviceFeatures2(GetPhysicalDeviceFeatures2Reply {
                p_features: arena.alloc(f2),
            })
        }
        other => other,
    }
}

/// Reads the subset features of `pd` (which lists [`SUBSET`]); `None` without
/// `vkGetPhysicalDeviceFeatures2`.
pub fn read_subset(procs: &InstanceProcs, pd: vk::PhysicalDevice) -> Option<Subset> {
    let get = procs.get_physical_device_features2?;
    let mut subset = vk::PhysicalDevicePortabilitySubsetFeaturesKHR::default();
    let mut f2 = vk::PhysicalDeviceFeatures2 {
        p_next: &mut subset as *mut _ as *mut std::ffi::c_void,
        ..Default::default()
    };
    // SAFETY: `pd` is a live physical device of the instance `procs` belong to; `f2` and the
    // struct it chains are valid output structs that outlive the call.
    unsafe { get(pd, &mut f2) };
    Some(Subset::from_vk(&subset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moltenvk_like() -> Subset {
        let all = vk::PhysicalDevicePortabilitySubsetFeaturesKHR {
            constant_alpha_color_blend_factors: 1,
            events: 0,
            image_view_format_reinterpretation: 1,
            image_view_format_swizzle: 1,
            image_view2_d_on3_d_image: 1,
            multisample_array_image: 1,
            mutable_comparison_samplers: 1,
            point_polygons: 0,
            sampler_mip_lod_bias: 0,
            separate_stencil_mask_ref: 1,
            shader_sample_rate_interpolation_functions: 1,
            tessellation_isolines: 0,
            tessellation_point_mode: 1,
            triangle_fans: 0,
            vertex_attribute_access_beyond_stride: 1,
            ..Default::default()
        };
        Subset::from_vk(&all)
    }

    #[test]
    fn missing_subset_features_hide_core_features() {
        let s = moltenvk_like();
        assert_eq!(
            s.missing(),
            [
                "events",
                "pointPolygons",
                "samplerMipLodBias",
                "tessellationIsolines",
                "triangleFans"
            ]
        );
        assert_eq!(s.hidden(), ["fillModeNonSolid", "tessellationShader"]);
        let mut f = PhysicalDeviceFeatures {
            fill_mode_non_solid: 1,
            tessellation_shader: 1,
            sample_rate_shading: 1,
            geometry_shader: 1,
            ..Default::default()
        };
        s.mask(&mut f);
        assert_eq!(
            (
                f.fill_mode_non_solid,
                f.tessellation_shader,
                f.sample_rate_shading,
                f.geometry_shader
            ),
            (0, 0, 1, 1)
        );
    }

    #[test]
    fn feature_replies_are_masked_and_others_pass() {
        let arena = Bump::new();
        let all = PhysicalDeviceFeatures {
            fill_mode_non_solid: 1,
            tessellation_shader: 1,
            wide_lines: 1,
            ..Default::default()
        };
        let r =
            Reply::GetPhysicalDeviceFeatures(GetPhysicalDeviceFeaturesReply { p_features: &all });
        let Reply::GetPhysicalDeviceFeatures(m) = mask_reply(&moltenvk_like(), r, &arena) else {
            panic!("variant changed");
        };
        assert_eq!(
            (
                m.p_features.fill_mode_non_solid,
                m.p_features.tessellation_shader,
                m.p_features.wide_lines
            ),
            (0, 0, 1)
        );
        let f2 = venus_protocol::structs::PhysicalDeviceFeatures2 {
            features: all,
            ..Default::default()
        };
        let r =
            Reply::GetPhysicalDeviceFeatures2(GetPhysicalDeviceFeatures2Reply { p_features: &f2 });
        let Reply::GetPhysicalDeviceFeatures2(m) = mask_reply(&moltenvk_like(), r, &arena) else {
            panic!("variant changed");
        };
        assert_eq!(m.p_features.features.fill_mode_non_solid, 0);
        assert_eq!(m.p_features.features.wide_lines, 1);
    }

    #[test]
    fn chained_features2_is_masked_in_a_lowered_chain() {
        let mut f2 = vk::PhysicalDeviceFeatures2::default();
        f2.features.fill_mode_non_solid = 1;
        f2.features.wide_lines = 1;
        let mut other = vk::PhysicalDevicePortabilitySubsetFeaturesKHR {
            p_next: &mut f2 as *mut _ as *mut std::ffi::c_void,
            ..Default::default()
        };
        // SAFETY: a two-link chain of live locals, used by nothing else during the call.
        unsafe { mask_lowered_chain(&moltenvk_like(), &mut other as *mut _ as *mut _) };
        assert_eq!(
            (f2.features.fill_mode_non_solid, f2.features.wide_lines),
            (0, 1)
        );
        // SAFETY: an empty chain.
        unsafe { mask_lowered_chain(&moltenvk_like(), std::ptr::null_mut()) };
    }

    #[test]
    fn a_complete_subset_hides_nothing() {
        let full = vk::PhysicalDevicePortabilitySubsetFeaturesKHR {
            point_polygons: 1,
            tessellation_isolines: 1,
            tessellation_point_mode: 1,
            shader_sample_rate_interpolation_functions: 1,
            ..Default::default()
        };
        let s = Subset::from_vk(&full);
        assert!(s.hidden().is_empty());
        let no_interp = vk::PhysicalDevicePortabilitySubsetFeaturesKHR {
            shader_sample_rate_interpolation_functions: 0,
            ..full
        };
        assert_eq!(Subset::from_vk(&no_interp).hidden(), ["sampleRateShading"]);
    }

    #[test]
    fn instance_flag_and_extension_are_applied_only_when_offered() {
        let mut info = vk::InstanceCreateInfo::default();
        InstancePortability::with(false).apply(&mut info);
        assert_eq!((info.flags.0, info.enabled_extension_count), (0, 0));
        let p = InstancePortability::with(true);
        p.apply(&mut info);
        assert_eq!(info.flags.0, ENUMERATE_PORTABILITY_BIT);
        assert_eq!(info.enabled_extension_count, 1);
        // SAFETY: `apply` pointed the list at `p`'s one name, alive here.
        let name = unsafe { CStr::from_ptr(*info.pp_enabled_extension_names) };
        assert_eq!(name, ENUMERATION);
    }
}
