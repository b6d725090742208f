//! Robust resource access forced on every host device (issue 10: hostile clients).
//!
//! On a CPU driver (lavapipe) a shader that indexes a storage or uniform buffer out of range,
//! or a draw that fetches vertices or indices beyond the bound buffer, reads or writes *server
//! process memory*. Vulkan's bounds checks are device features; this module turns them on for
//! every device the server creates, whatever the client asked for, when the physical device
//! supports them (`venus-server --no-robust-access` / config key `robust_access = false`
//! turns it off for trusted clients; [`venus_renderer::Limits::robust_access`]):
//!
//! - `robustBufferAccess` (core 1.0): accesses are checked against the descriptor range / the
//!   bound vertex buffer range; out-of-range writes are discarded or land inside the buffer,
//!   out-of-range reads return values from inside the buffer or zero;
//! - `robustImageAccess` (`VkPhysicalDeviceImageRobustnessFeatures`, 1.3 core /
//!   `VK_EXT_image_robustness`);
//! - `robustBufferAccess2` and `robustImageAccess2` (`VkPhysicalDeviceRobustness2FeaturesKHR`,
//!   `VK_KHR_robustness2` or `VK_EXT_robustness2`): out-of-range reads return zero, writes are
//!   discarded, and out-of-range *index* fetches are defined too. `robustBufferAccess2`
//!   requires `robustBufferAccess`, so it is only turned on with it. `nullDescriptor` is never
//!   turned on (it changes what a NULL descriptor means); a client's own value is kept.
//!
//! What the host supports is read once per physical device ([`read`], kept in the
//! [`crate::profile::Profile`]); [`apply`] edits the *lowered* `VkDeviceCreateInfo` in the
//! call's arena. The client may send its features as `pEnabledFeatures`, as a chained
//! `VkPhysicalDeviceFeatures2`, or in the 1.x structs (`VkPhysicalDeviceVulkan13Features`
//! carries `robustImageAccess`); an existing struct is edited in place and a struct is only
//! added when none of its kind (or its 1.x aggregate) is in the chain, so the chain never gets
//! a duplicate (VUID-VkDeviceCreateInfo-pNext-00373, -06532, -sType-unique). An extension is
//! only added to the host's list when a struct we added needs it (`VK_EXT_image_robustness`,
//! the robustness2 extension the host lists, KHR preferred) and the client has not enabled it.
//!
//! Why this is invisible to the client: features and extensions the client did not enable are
//! never used by it; every behaviour robust access allows is one the client's own
//! (non-robust) device allowed too (out-of-range access is undefined there).
//!
//! Per-pipeline robustness (`VkPipelineRobustnessCreateInfo`, Vulkan 1.4 /
//! `VK_EXT_pipeline_robustness`) could turn the checks back *off* for one pipeline
//! (`..._DISABLED`). A device created with robust access therefore gets a profile that strips
//! that link from every lowered chain ([`crate::profile::Profile::with_pipeline_robustness_stripped`]):
//! the device default is then the most robust behaviour the host supports, which is at least
//! what any pipeline may ask for (a pipeline may only ask for behaviours whose feature the
//! device supports).

use std::ffi::{c_char, c_void, CStr};
use std::fmt;

use bumpalo::Bump;
use venus_host::vk;
use venus_host::InstanceProcs;
use venus_protocol::structs::{
    PhysicalDeviceFeatures2, PhysicalDeviceImageRobustnessFeatures,
    PhysicalDeviceRobustness2FeaturesKHR, PhysicalDeviceVulkan13Features,
};

/// `VK_EXT_image_robustness` (promoted to 1.3).
pub const IMAGE_ROBUSTNESS: &CStr = c"VK_EXT_image_robustness";
/// `VK_KHR_robustness2`.
pub const ROBUSTNESS2_KHR: &CStr = c"VK_KHR_robustness2";
/// `VK_EXT_robustness2` (the same feature struct as the KHR one).
pub const ROBUSTNESS2_EXT: &CStr = c"VK_EXT_robustness2";

/// What a host physical device supports of robust access (read once, [`read`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostRobustness {
    /// `robustBufferAccess`.
    pub robust_buffer_access: bool,
    /// `robustImageAccess` (read only when the host lists `VK_EXT_image_robustness`).
    pub robust_image_access: bool,
    /// Whether the host lists `VK_EXT_image_robustness`.
    pub image_robustness_ext: bool,
    /// `robustBufferAccess2`.
    pub robust_buffer_access2: bool,
    /// `robustImageAccess2`.
    pub robust_image_access2: bool,
    /// The robustness2 extension the host lists (`VK_KHR_robustness2` preferred).
    pub robustness2_ext: Option<&'static CStr>,
}

impl HostRobustness {
    /// Whether `robustBufferAccess2` is turned on (it requires `robustBufferAccess`).
    fn buffer2(&self) -> bool {
        self.robust_buffer_access && self.robust_buffer_access2 && self.robustness2_ext.is_some()
    }

    /// Whether `robustImageAccess2` is turned on.
    fn image2(&self) -> bool {
        self.robust_image_access2 && self.robustness2_ext.is_some()
    }
}

/// What [`apply`] left enabled on a host device (logged once per device).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Enabled {
    pub robust_buffer_access: bool,
    pub robust_image_access: bool,
    pub robust_buffer_access2: bool,
    pub robust_image_access2: bool,
    /// Extensions added to the client's list for them.
    pub added_extensions: [Option<&'static CStr>; 2],
}

impl fmt::Display for Enabled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (self.robust_buffer_access, "robustBufferAccess"),
            (self.robust_image_access, "robustImageAccess"),
            (self.robust_buffer_access2, "robustBufferAccess2"),
            (self.robust_image_access2, "robustImageAccess2"),
        ];
        let on: Vec<&str> = names.iter().filter(|(b, _)| *b).map(|(_, n)| *n).collect();
        if on.is_empty() {
            return f.write_str("none (the driver supports none)");
        }
        f.write_str(&on.join(" "))?;
        for e in self.added_extensions.iter().flatten() {
            write!(f, " +{}", e.to_string_lossy())?;
        }
        Ok(())
    }
}

/// Reads what `pd` supports; `has` says whether the host lists a device extension.
pub fn read(
    procs: &InstanceProcs,
    pd: vk::PhysicalDevice,
    has: &dyn Fn(&[u8]) -> bool,
) -> HostRobustness {
    let image_robustness_ext = has(IMAGE_ROBUSTNESS.to_bytes());
    let robustness2_ext = [ROBUSTNESS2_KHR, ROBUSTNESS2_EXT]
        .into_iter()
        .find(|e| has(e.to_bytes()));
    let mut image = vk::PhysicalDeviceImageRobustnessFeatures::default();
    let mut r2 = vk::PhysicalDeviceRobustness2FeaturesKHR::default();
    let mut f2 = vk::PhysicalDeviceFeatures2::default();
    // Only structs of extensions the device lists are chained (valid usage of the query).
    if robustness2_ext.is_some() {
        r2.p_next = f2.p_next;
        f2.p_next = &mut r2 as *mut _ as *mut c_void;
    }
    if image_robustness_ext {
        image.p_next = f2.p_next;
        f2.p_next = &mut image as *mut _ as *mut c_void;
    }
    if let Some(get) = procs.get_physical_device_features2 {
        // SAFETY: `pd` is a live physical device of the instance `procs` belong to; `f2` and the
        // structs it chains are valid output structs that outlive the call.
        unsafe { get(pd, &mut f2) };
    } else if let Some(get) = procs.get_physical_device_features {
        // SAFETY: as above, for the core struct alone.
        unsafe { get(pd, &mut f2.features) };
    }
    HostRobustness {
        robust_buffer_access: f2.features.robust_buffer_access != 0,
        robust_image_access: image_robustness_ext && image.robust_image_access != 0,
        image_robustness_ext,
        robust_buffer_access2: robustness2_ext.is_some() && r2.robust_buffer_access2 != 0,
        robust_image_access2: robustness2_ext.is_some() && r2.robust_image_access2 != 0,
        robustness2_ext,
    }
}

/// The feature structs of a lowered `VkDeviceCreateInfo` chain that robust access edits.
#[derive(Default)]
struct Links {
    features2: Vec<*mut vk::PhysicalDeviceFeatures2>,
    vulkan13: Vec<*mut vk::PhysicalDeviceVulkan13Features>,
    image: Vec<*mut vk::PhysicalDeviceImageRobustnessFeatures>,
    robustness2: Vec<*mut vk::PhysicalDeviceRobustness2FeaturesKHR>,
}

/// The common head of every Vulkan struct in a pNext chain.
#[repr(C)]
struct ChainHead {
    s_type: i32,
    p_next: *mut c_void,
}

/// # Safety
///
/// As [`apply`]'s `info.p_next`.
unsafe fn find_links(mut p_next: *mut c_void) -> Links {
    let mut links = Links::default();
    while !p_next.is_null() {
        // SAFETY: every link starts with sType and pNext (the Vulkan ABI); the caller
        // guarantees the chain is valid.
        let (s_type, next) = unsafe {
            let head = p_next.cast::<ChainHead>();
            ((*head).s_type, (*head).p_next)
        };
        match s_type {
            t if t == PhysicalDeviceFeatures2::STRUCTURE_TYPE.0 => {
                links.features2.push(p_next.cast())
            }
            t if t == PhysicalDeviceVulkan13Features::STRUCTURE_TYPE.0 => {
                links.vulkan13.push(p_next.cast())
            }
            t if t == PhysicalDeviceImageRobustnessFeatures::STRUCTURE_TYPE.0 => {
                links.image.push(p_next.cast())
            }
            t if t == PhysicalDeviceRobustness2FeaturesKHR::STRUCTURE_TYPE.0 => {
                links.robustness2.push(p_next.cast())
            }
            _ => {}
        }
        p_next = next;
    }
    links
}

/// Turns on every robust-access feature `host` supports in the lowered `info` (see the module
/// doc); new structs and lists are allocated in `arena`. Returns what is enabled.
///
/// # Safety
///
/// `info.p_next` is NULL or the start of a well-formed chain of host structs, and
/// `info.pp_enabled_extension_names` points to `enabled_extension_count` valid C strings; the
/// caller owns them exclusively (the call's arena) until the create call.
pub unsafe fn apply(
    host: &HostRobustness,
    info: &mut vk::DeviceCreateInfo,
    arena: &Bump,
) -> Enabled {
    // SAFETY: the caller's guarantee.
    let links = unsafe { find_links(info.p_next) };
    let mut out = Enabled::default();
    let mut new_exts: Vec<&'static CStr> = Vec::new();
    if host.robust_buffer_access {
        for &f2 in &links.features2 {
            // SAFETY: a link of this sType is a VkPhysicalDeviceFeatures2 in the caller's chain.
            unsafe { (*f2).features.robust_buffer_access = 1 };
        }
        // pEnabledFeatures must stay NULL next to a chained VkPhysicalDeviceFeatures2.
        if !info.p_enabled_features.is_null() || links.features2.is_empty() {
            let mut f = if info.p_enabled_features.is_null() {
                vk::PhysicalDeviceFeatures::default()
            } else {
                // SAFETY: non-NULL pEnabledFeatures of a valid lowered create info.
                unsafe { *info.p_enabled_features }
            };
            f.robust_buffer_access = 1;
            info.p_enabled_features = arena.alloc(f);
        }
        out.robust_buffer_access = true;
    }
    if host.robust_image_access {
        // SAFETY: the links are structs of their sType in the caller's chain.
        out.robust_image_access = unsafe { enable_image(host, &links, info, arena, &mut new_exts) };
    }
    if host.buffer2() || host.image2() {
        for &r2 in &links.robustness2 {
            // SAFETY: as above. nullDescriptor is left as the client set it.
            unsafe {
                if host.buffer2() {
                    (*r2).robust_buffer_access2 = 1;
                }
                if host.image2() {
                    (*r2).robust_image_access2 = 1;
                }
            }
        }
        if links.robustness2.is_empty() {
            let r2 = arena.alloc(vk::PhysicalDeviceRobustness2FeaturesKHR {
                p_next: info.p_next,
                robust_buffer_access2: host.buffer2() as u32,
                robust_image_access2: host.image2() as u32,
                null_descriptor: 0,
                ..Default::default()
            });
            info.p_next = r2 as *mut _ as *mut c_void;
        }
        new_exts.extend(host.robustness2_ext);
        out.robust_buffer_access2 = host.buffer2();
        out.robust_image_access2 = host.image2();
    }
    // SAFETY: the caller's guarantee on the extension list.
    out.added_extensions = unsafe { add_extensions(info, &new_exts, arena) };
    out
}

/// `robustImageAccess` in the client's 1.3 or image-robustness struct, else in a struct we add
/// (with `VK_EXT_image_robustness`, which the host lists). Whether it is on.
///
/// # Safety
///
/// `links` are structs of their sType in `info`'s chain, owned by the caller.
unsafe fn enable_image(
    host: &HostRobustness,
    links: &Links,
    info: &mut vk::DeviceCreateInfo,
    arena: &Bump,
    new_exts: &mut Vec<&'static CStr>,
) -> bool {
    for &v in &links.vulkan13 {
        // SAFETY: the caller's guarantee.
        unsafe { (*v).robust_image_access = 1 };
    }
    for &i in &links.image {
        // SAFETY: the caller's guarantee.
        unsafe { (*i).robust_image_access = 1 };
    }
    if !links.vulkan13.is_empty() || !links.image.is_empty() {
        return true;
    }
    if !host.image_robustness_ext {
        return false;
    }
    let image = arena.alloc(vk::PhysicalDeviceImageRobustnessFeatures {
        p_next: info.p_next,
        robust_image_access: 1,
        ..Default::default()
    });
    info.p_next = image as *mut _ as *mut c_void;
    new_exts.push(IMAGE_ROBUSTNESS);
    true
}

/// Adds the names of `wanted` that `info` does not enable yet (for robustness2: neither the
/// KHR nor the EXT name) to its extension list, in a new list in `arena`. Returns those added.
///
/// # Safety
///
/// As [`apply`]'s extension list.
unsafe fn add_extensions(
    info: &mut vk::DeviceCreateInfo,
    wanted: &[&'static CStr],
    arena: &Bump,
) -> [Option<&'static CStr>; 2] {
    let mut names: Vec<*const c_char> = if info.enabled_extension_count == 0 {
        Vec::new()
    } else {
        // SAFETY: the caller's guarantee: `enabled_extension_count` valid pointers.
        unsafe {
            std::slice::from_raw_parts(
                info.pp_enabled_extension_names,
                info.enabled_extension_count as usize,
            )
        }
        .to_vec()
    };
    let enabled = |names: &[*const c_char], e: &CStr| {
        let same: &[&CStr] = if e == ROBUSTNESS2_KHR || e == ROBUSTNESS2_EXT {
            &[ROBUSTNESS2_KHR, ROBUSTNESS2_EXT]
        } else {
            &[e]
        };
        // SAFETY: each pointer is a valid C string (the caller's guarantee, or ours).
        names
            .iter()
            .any(|&n| same.contains(&unsafe { CStr::from_ptr(n) }))
    };
    let mut added = [None; 2];
    for (slot, &e) in added.iter_mut().zip(wanted) {
        if !enabled(&names, e) {
            names.push(e.as_ptr());
            *slot = Some(e);
        }
    }
    if added.iter().any(Option::is_some) {
        let list = arena.alloc_slice_copy(&names);
        info.enabled_extension_count = list.len() as u32;
        info.pp_enabled_extension_names = list.as_ptr();
    }
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    /// lavapipe: everything, robustness2 as the KHR extension.
    fn full() -> HostRobustness {
        HostRobustness {
            robust_buffer_access: true,
            robust_image_access: true,
            image_robustness_ext: true,
            robust_buffer_access2: true,
            robust_image_access2: true,
            robustness2_ext: Some(ROBUSTNESS2_KHR),
        }
    }

    /// The sTypes of a chain, in order.
    fn s_types(mut p: *mut c_void) -> Vec<i32> {
        let mut out = Vec::new();
        while !p.is_null() {
            // SAFETY: test chains are built from live, well-formed structs.
            let head = unsafe { &*p.cast::<ChainHead>() };
            out.push(head.s_type);
            p = head.p_next;
        }
        out
    }

    fn extensions(info: &vk::DeviceCreateInfo) -> Vec<String> {
        (0..info.enabled_extension_count as usize)
            // SAFETY: the list has `enabled_extension_count` valid C strings.
            .map(|i| unsafe { CStr::from_ptr(*info.pp_enabled_extension_names.add(i)) })
            .map(|c| c.to_string_lossy().into_owned())
            .collect()
    }

    /// No sType twice in the chain.
    fn assert_unique(info: &vk::DeviceCreateInfo) {
        let mut seen = s_types(info.p_next);
        let n = seen.len();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(
            seen.len(),
            n,
            "duplicate sType in {:?}",
            s_types(info.p_next)
        );
    }

    const IMAGE: i32 = PhysicalDeviceImageRobustnessFeatures::STRUCTURE_TYPE.0;
    const R2: i32 = PhysicalDeviceRobustness2FeaturesKHR::STRUCTURE_TYPE.0;
    const F2: i32 = PhysicalDeviceFeatures2::STRUCTURE_TYPE.0;
    const V13: i32 = PhysicalDeviceVulkan13Features::STRUCTURE_TYPE.0;

    /// The robustness2 struct of a chain (the first).
    fn r2_of(info: &vk::DeviceCreateInfo) -> vk::PhysicalDeviceRobustness2FeaturesKHR {
        let mut p = info.p_next;
        while !p.is_null() {
            // SAFETY: as in `s_types`.
            let head = unsafe { &*p.cast::<ChainHead>() };
            if head.s_type == R2 {
                // SAFETY: a link of this sType is this struct.
                return unsafe { *p.cast() };
            }
            p = head.p_next;
        }
        panic!("no robustness2 struct in {:?}", s_types(info.p_next));
    }

    #[test]
    fn no_features_at_all_gets_every_struct_once() {
        let arena = Bump::new();
        let mut info = vk::DeviceCreateInfo::default();
        // SAFETY: an empty chain and extension list.
        let on = unsafe { apply(&full(), &mut info, &arena) };
        assert_eq!(
            on.to_string(),
            "robustBufferAccess robustImageAccess robustBufferAccess2 robustImageAccess2 \
             +VK_EXT_image_robustness +VK_KHR_robustness2"
        );
        assert!(!info.p_enabled_features.is_null());
        // SAFETY: allocated by `apply` in the arena.
        let f = unsafe { *info.p_enabled_features };
        assert_eq!(f.robust_buffer_access, 1);
        assert_eq!(s_types(info.p_next), [R2, IMAGE]);
        let r2 = r2_of(&info);
        assert_eq!(
            (
                r2.robust_buffer_access2,
                r2.robust_image_access2,
                r2.null_descriptor
            ),
            (1, 1, 0)
        );
        assert_eq!(
            extensions(&info),
            ["VK_EXT_image_robustness", "VK_KHR_robustness2"]
        );
    }

    #[test]
    fn enabled_features_keep_the_clients_bits() {
        let arena = Bump::new();
        let client = vk::PhysicalDeviceFeatures {
            geometry_shader: 1,
            pipeline_statistics_query: 1,
            ..Default::default()
        };
        let mut timeline = vk::PhysicalDeviceTimelineSemaphoreFeatures {
            timeline_semaphore: 1,
            ..Default::default()
        };
        let names = [c"VK_KHR_swapchain".as_ptr()];
        let mut info = vk::DeviceCreateInfo {
            p_next: &mut timeline as *mut _ as *mut c_void,
            p_enabled_features: &client,
            enabled_extension_count: 1,
            pp_enabled_extension_names: names.as_ptr(),
            ..Default::default()
        };
        // SAFETY: a one-link chain of a live local; one valid name.
        unsafe { apply(&full(), &mut info, &arena) };
        // SAFETY: `apply` points it at a copy in the arena.
        let f = unsafe { *info.p_enabled_features };
        assert_eq!(
            (
                f.robust_buffer_access,
                f.geometry_shader,
                f.pipeline_statistics_query,
                f.wide_lines
            ),
            (1, 1, 1, 0)
        );
        assert_eq!(
            client.robust_buffer_access, 0,
            "the client's struct is not written"
        );
        assert_eq!(timeline.timeline_semaphore, 1);
        assert_eq!(s_types(info.p_next)[2..], [timeline.s_type.0]);
        assert_unique(&info);
        assert_eq!(
            extensions(&info),
            [
                "VK_KHR_swapchain",
                "VK_EXT_image_robustness",
                "VK_KHR_robustness2"
            ]
        );
    }

    #[test]
    fn chained_features2_is_edited_and_enabled_features_stays_null() {
        let arena = Bump::new();
        let mut f2 = vk::PhysicalDeviceFeatures2::default();
        f2.features.shader_int64 = 1;
        let mut info = vk::DeviceCreateInfo {
            p_next: &mut f2 as *mut _ as *mut c_void,
            ..Default::default()
        };
        // SAFETY: a one-link chain of a live local.
        let on = unsafe { apply(&full(), &mut info, &arena) };
        assert!(on.robust_buffer_access);
        assert!(
            info.p_enabled_features.is_null(),
            "VUID-VkDeviceCreateInfo-pNext-00373"
        );
        assert_eq!(
            (f2.features.robust_buffer_access, f2.features.shader_int64),
            (1, 1)
        );
        assert_eq!(s_types(info.p_next), [R2, IMAGE, F2]);
        assert_unique(&info);
    }

    #[test]
    fn vulkan13_features_carry_robust_image_access_without_the_extension() {
        let arena = Bump::new();
        let mut v13 = vk::PhysicalDeviceVulkan13Features {
            synchronization2: 1,
            ..Default::default()
        };
        let mut f2 = vk::PhysicalDeviceFeatures2 {
            p_next: &mut v13 as *mut _ as *mut c_void,
            ..Default::default()
        };
        let mut info = vk::DeviceCreateInfo {
            p_next: &mut f2 as *mut _ as *mut c_void,
            ..Default::default()
        };
        // SAFETY: a two-link chain of live locals.
        let on = unsafe { apply(&full(), &mut info, &arena) };
        assert!(on.robust_image_access);
        assert_eq!((v13.robust_image_access, v13.synchronization2), (1, 1));
        // VUID-VkDeviceCreateInfo-pNext-06532: no image-robustness struct next to the 1.3 one.
        assert_eq!(s_types(info.p_next), [R2, F2, V13]);
        assert_eq!(extensions(&info), ["VK_KHR_robustness2"]);
    }

    #[test]
    fn the_clients_robustness_structs_are_edited_and_null_descriptor_kept() {
        let arena = Bump::new();
        let mut r2 = vk::PhysicalDeviceRobustness2FeaturesKHR {
            null_descriptor: 1,
            ..Default::default()
        };
        let mut image = vk::PhysicalDeviceImageRobustnessFeatures {
            p_next: &mut r2 as *mut _ as *mut c_void,
            ..Default::default()
        };
        let names = [ROBUSTNESS2_EXT.as_ptr(), IMAGE_ROBUSTNESS.as_ptr()];
        let mut info = vk::DeviceCreateInfo {
            p_next: &mut image as *mut _ as *mut c_void,
            enabled_extension_count: 2,
            pp_enabled_extension_names: names.as_ptr(),
            ..Default::default()
        };
        // SAFETY: a two-link chain of live locals; two valid names.
        let on = unsafe { apply(&full(), &mut info, &arena) };
        assert_eq!(
            on.added_extensions,
            [None, None],
            "the EXT name counts as robustness2"
        );
        assert_eq!(image.robust_image_access, 1);
        assert_eq!(
            (
                r2.robust_buffer_access2,
                r2.robust_image_access2,
                r2.null_descriptor
            ),
            (1, 1, 1)
        );
        assert_eq!(s_types(info.p_next), [IMAGE, R2]);
        assert_eq!(
            extensions(&info),
            ["VK_EXT_robustness2", "VK_EXT_image_robustness"]
        );
    }

    #[test]
    fn a_client_null_descriptor_off_stays_off() {
        let arena = Bump::new();
        let mut r2 = vk::PhysicalDeviceRobustness2FeaturesKHR::default();
        let mut info = vk::DeviceCreateInfo {
            p_next: &mut r2 as *mut _ as *mut c_void,
            ..Default::default()
        };
        // SAFETY: a one-link chain of a live local.
        unsafe { apply(&full(), &mut info, &arena) };
        assert_eq!(r2.null_descriptor, 0);
        assert_eq!(r2.robust_buffer_access2, 1);
        assert_unique(&info);
    }

    #[test]
    fn unsupported_features_are_not_enabled() {
        let arena = Bump::new();
        let mut info = vk::DeviceCreateInfo::default();
        // SAFETY: an empty chain and extension list.
        let on = unsafe { apply(&HostRobustness::default(), &mut info, &arena) };
        assert_eq!(on, Enabled::default());
        assert_eq!(on.to_string(), "none (the driver supports none)");
        assert!(info.p_enabled_features.is_null() && info.p_next.is_null());
        assert_eq!(info.enabled_extension_count, 0);
        // robustBufferAccess2 requires robustBufferAccess.
        let no_rba = HostRobustness {
            robust_buffer_access: false,
            ..full()
        };
        // SAFETY: as above.
        let on = unsafe { apply(&no_rba, &mut info, &arena) };
        assert!(!on.robust_buffer_access && !on.robust_buffer_access2 && on.robust_image_access2);
        assert_eq!(
            (
                r2_of(&info).robust_buffer_access2,
                r2_of(&info).robust_image_access2
            ),
            (0, 1)
        );
        // Without the image-robustness extension nothing is added for robustImageAccess.
        let no_ext = HostRobustness {
            image_robustness_ext: false,
            robustness2_ext: None,
            ..full()
        };
        let mut info = vk::DeviceCreateInfo::default();
        // SAFETY: as above.
        let on = unsafe { apply(&no_ext, &mut info, &arena) };
        assert_eq!(on.to_string(), "robustBufferAccess");
        assert!(info.p_next.is_null());
    }
}
