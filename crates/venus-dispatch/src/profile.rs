//! The per-physical-device capability profile: which of the extensions that Mesa's Venus
//! client needs for WSI (contract §8.1, §8.4) the host driver really has, and which this
//! server emulates.
//!
//! The client exposes `VK_KHR_swapchain` (and `VK_KHR_synchronization2`, hence Vulkan 1.3)
//! only when the host lists `VK_EXT_external_memory_dma_buf`, `VK_KHR_external_memory_fd`,
//! `VK_EXT_image_drm_format_modifier`, `VK_EXT_queue_family_foreign` and
//! `VK_KHR_external_semaphore_fd` with importable sync_fd semaphores. Presentation itself
//! happens in the client (`MESA_VK_WSI_DEBUG=sw`), so emulating them is sound:
//!
//! - they are advertised in `vkEnumerateDeviceExtensionProperties` ([`Profile::advertised`]);
//! - the matching queries are answered by [`crate::external`];
//! - they are removed from what reaches the driver: extension names at device creation
//!   ([`Profile::is_emulated`]), their chain links from every lowered chain
//!   ([`Profile::stripped`], a table, applied by the lowering itself), DRM-modifier tiling
//!   rewritten to LINEAR, the FOREIGN queue family rewritten to IGNORED.
//!
//! Where the driver has one of them, the real one is used and nothing is stripped for it,
//! unless the server forces emulation (`--profile apple`: a macOS host has none of them, so a
//! Linux host pretends not to have them either, [`Profile::with_forced_emulation`]).
//! The profile is computed once per physical device and shared by its devices.

use std::sync::Arc;

use venus_host::vk;
use venus_protocol::structs::{
    ExportMemoryAllocateInfo, ExportSemaphoreCreateInfo, ExtensionProperties,
    ExternalMemoryBufferCreateInfo, ExternalMemoryImageCreateInfo,
    ImageDrmFormatModifierExplicitCreateInfoEXT, ImageDrmFormatModifierListCreateInfoEXT,
    PhysicalDeviceImageDrmFormatModifierInfoEXT, PipelineRobustnessCreateInfo,
};
use venus_protocol::types::{ExternalSemaphoreFeatureFlags, ExternalSemaphoreHandleTypeFlagBits};

use crate::registry::InstanceShared;
use crate::VulkanDispatch;

/// How the client gets one of the WSI extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// The host driver has it: calls and structs pass through.
    Native,
    /// This server answers for it and keeps it away from the driver.
    Emulated,
}

/// One extension the profile covers.
struct Entry {
    name: &'static str,
    spec_version: u32,
    /// Chain links of this extension that must not reach a driver lacking it.
    links: &'static [i32],
}

/// The extensions the client needs for WSI, in [`Profile`] field order.
const ENTRIES: [Entry; 5] = [
    Entry {
        name: "VK_EXT_external_memory_dma_buf",
        spec_version: 1,
        links: EXTERNAL_MEMORY_LINKS,
    },
    Entry {
        name: "VK_KHR_external_memory_fd",
        spec_version: 1,
        links: EXTERNAL_MEMORY_LINKS,
    },
    Entry {
        name: "VK_EXT_image_drm_format_modifier",
        spec_version: 2,
        links: &[
            ImageDrmFormatModifierListCreateInfoEXT::STRUCTURE_TYPE.0,
            ImageDrmFormatModifierExplicitCreateInfoEXT::STRUCTURE_TYPE.0,
            PhysicalDeviceImageDrmFormatModifierInfoEXT::STRUCTURE_TYPE.0,
        ],
    },
    Entry {
        name: "VK_EXT_queue_family_foreign",
        spec_version: 1,
        links: &[],
    },
    Entry {
        name: "VK_KHR_external_semaphore_fd",
        spec_version: 1,
        links: &[ExportSemaphoreCreateInfo::STRUCTURE_TYPE.0],
    },
];

/// Export/external-memory links: the client asks for dma-buf exportable memory; an emulated
/// export is our shared memory (contract §7.6), so the driver allocates ordinary memory.
const EXTERNAL_MEMORY_LINKS: &[i32] = &[
    ExportMemoryAllocateInfo::STRUCTURE_TYPE.0,
    ExternalMemoryBufferCreateInfo::STRUCTURE_TYPE.0,
    ExternalMemoryImageCreateInfo::STRUCTURE_TYPE.0,
];

/// `DRM_FORMAT_MOD_LINEAR`: the one modifier an emulated `VK_EXT_image_drm_format_modifier`
/// reports.
pub const DRM_FORMAT_MOD_LINEAR: u64 = 0;

/// What one physical device offers the client beyond its driver's own extension list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub dma_buf: Support,
    pub memory_fd: Support,
    pub drm_format_modifier: Support,
    pub queue_family_foreign: Support,
    pub semaphore_fd: Support,
    /// sTypes of chain links removed before the driver sees them.
    stripped: Vec<i32>,
    /// The device's portability-subset restrictions, if it lists `VK_KHR_portability_subset`
    /// (read once, see [`crate::portability`]).
    pub portability: Option<crate::portability::Subset>,
    /// What the device supports of robust access (read once, see [`crate::robust`]).
    pub robustness: crate::robust::HostRobustness,
}

pub(crate) fn name_of(e: &ExtensionProperties) -> &[u8] {
    let end = e
        .extension_name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(e.extension_name.len());
    &e.extension_name[..end]
}

impl Profile {
    /// The profile of a driver that lists `host` (its device extensions).
    ///
    /// `VK_KHR_external_semaphore_fd` counts as native only when `sync_fd_importable` (the
    /// driver answers SYNC_FD with IMPORTABLE); the client needs exactly that.
    pub fn new(host: &[ExtensionProperties], sync_fd_importable: bool) -> Self {
        Self::with_forced_emulation(host, sync_fd_importable, false)
    }

    /// Like [`Profile::new`]; with `force_emulated` every covered extension is
    /// [`Support::Emulated`] whatever the driver lists (the Apple host profile: dma-buf,
    /// external-memory fd, DRM modifiers, the foreign queue family and sync_fd are absent on
    /// macOS).
    pub fn with_forced_emulation(
        host: &[ExtensionProperties],
        sync_fd_importable: bool,
        force_emulated: bool,
    ) -> Self {
        let has =
            |name: &str| !force_emulated && host.iter().any(|e| name_of(e) == name.as_bytes());
        let support: Vec<Support> = ENTRIES
            .iter()
            .map(|e| {
                let native = has(e.name) && (e.name != ENTRIES[4].name || sync_fd_importable);
                if native {
                    Support::Native
                } else {
                    Support::Emulated
                }
            })
            .collect();
        let mut stripped: Vec<i32> = Vec::new();
        for (e, s) in ENTRIES.iter().zip(&support) {
            if *s == Support::Emulated {
                for l in e.links {
                    if !stripped.contains(l) {
                        stripped.push(*l);
                    }
                }
            }
        }
        Profile {
            dma_buf: support[0],
            memory_fd: support[1],
            drm_format_modifier: support[2],
            queue_family_foreign: support[3],
            semaphore_fd: support[4],
            stripped,
            portability: None,
            robustness: crate::robust::HostRobustness::default(),
        }
    }

    pub(crate) fn supports(&self) -> [Support; 5] {
        [
            self.dma_buf,
            self.memory_fd,
            self.drm_format_modifier,
            self.queue_family_foreign,
            self.semaphore_fd,
        ]
    }

    /// The chain-link sTypes to strip from everything lowered for this device.
    pub fn stripped(&self) -> &[i32] {
        &self.stripped
    }

    /// This profile for a device created with robust access: `VkPipelineRobustnessCreateInfo`
    /// is stripped too, so no pipeline can turn the device's robustness off (see
    /// [`crate::robust`]).
    pub fn with_pipeline_robustness_stripped(&self) -> Profile {
        let mut p = self.clone();
        let link = PipelineRobustnessCreateInfo::STRUCTURE_TYPE.0;
        if !p.stripped.contains(&link) {
            p.stripped.push(link);
        }
        p
    }

    /// Whether `name` is an extension this profile emulates (the driver must not be asked to
    /// enable it).
    pub fn is_emulated(&self, name: &[u8]) -> bool {
        ENTRIES
            .iter()
            .zip(self.supports())
            .any(|(e, s)| s == Support::Emulated && e.name.as_bytes() == name)
    }

    /// The extensions to list in addition to the driver's (the emulated ones).
    pub fn advertised(&self) -> Vec<ExtensionProperties> {
        ENTRIES
            .iter()
            .zip(self.supports())
            .filter(|(_, s)| *s == Support::Emulated)
            .map(|(e, _)| {
                let mut p = ExtensionProperties {
                    spec_version: e.spec_version,
                    ..Default::default()
                };
                p.extension_name[..e.name.len()].copy_from_slice(e.name.as_bytes());
                p
            })
            .collect()
    }

    /// Whether barriers' `VK_QUEUE_FAMILY_FOREIGN_EXT` is lowered as `VK_QUEUE_FAMILY_IGNORED`
    /// (the driver lacks `VK_EXT_queue_family_foreign`).
    pub fn foreign_queue_family_ignored(&self) -> bool {
        self.queue_family_foreign == Support::Emulated
    }

    /// Whether any external-memory handle type is emulated (then dma-buf export and external
    /// memory create infos are answered here and stripped).
    pub fn external_memory_emulated(&self) -> bool {
        self.dma_buf == Support::Emulated || self.memory_fd == Support::Emulated
    }
}

/// `VK_EXTERNAL_SEMAPHORE_HANDLE_TYPE_SYNC_FD_BIT`.
pub const SYNC_FD: ExternalSemaphoreHandleTypeFlagBits = ExternalSemaphoreHandleTypeFlagBits(0x10);

impl VulkanDispatch {
    /// The profile of host physical device `pd`, computed on first use.
    pub(crate) fn profile(&self, inst: &InstanceShared, pd: vk::PhysicalDevice) -> Arc<Profile> {
        let mut cache = self.profiles.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, p)) = cache.iter().find(|(h, _)| *h == pd.0) {
            return Arc::clone(p);
        }
        let host = self.host_device_extensions(inst, pd);
        let mut profile = Profile::with_forced_emulation(
            &host,
            sync_fd_importable(inst, pd),
            self.force_emulated_wsi,
        );
        let subset = crate::portability::SUBSET.to_bytes();
        if host.iter().any(|e| name_of(e) == subset) {
            profile.portability = crate::portability::read_subset(&inst.procs, pd);
        }
        profile.robustness =
            crate::robust::read(&inst.procs, pd, &|n| host.iter().any(|e| name_of(e) == n));
        let profile = Arc::new(profile);
        tracing::info!(
            ctx = self.context_id,
            emulated = ?profile
                .advertised()
                .iter()
                .map(|e| String::from_utf8_lossy(name_of(e)).into_owned())
                .collect::<Vec<_>>(),
            hidden = ?profile.portability.map(|s| s.hidden()),
            robustness = ?profile.robustness,
            "WSI capability profile"
        );
        cache.push((pd.0, Arc::clone(&profile)));
        profile
    }
}

/// Whether the driver imports sync_fd payloads into binary semaphores.
fn sync_fd_importable(inst: &InstanceShared, pd: vk::PhysicalDevice) -> bool {
    let Some(get) = inst.procs.get_physical_device_external_semaphore_properties else {
        return false;
    };
    let info = vk::PhysicalDeviceExternalSemaphoreInfo {
        handle_type: SYNC_FD,
        ..Default::default()
    };
    let mut props = vk::ExternalSemaphoreProperties::default();
    // SAFETY: `pd` is a live physical device of `inst`; both structs are valid and unchained.
    unsafe { get(pd, &info, &mut props) };
    props
        .external_semaphore_features
        .contains(ExternalSemaphoreFeatureFlags::IMPORTABLE_BIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(name: &str) -> ExtensionProperties {
        let mut p = ExtensionProperties {
            spec_version: 1,
            ..Default::default()
        };
        p.extension_name[..name.len()].copy_from_slice(name.as_bytes());
        p
    }

    #[test]
    fn lavapipe_gets_modifiers_and_sync_fd_emulated() {
        let host = [
            ext("VK_EXT_external_memory_dma_buf"),
            ext("VK_KHR_external_memory_fd"),
            ext("VK_EXT_queue_family_foreign"),
            ext("VK_KHR_maintenance4"),
        ];
        let p = Profile::new(&host, false);
        assert_eq!(p.dma_buf, Support::Native);
        assert_eq!(p.queue_family_foreign, Support::Native);
        assert_eq!(p.drm_format_modifier, Support::Emulated);
        assert_eq!(p.semaphore_fd, Support::Emulated);
        let names: Vec<Vec<u8>> = p.advertised().iter().map(|e| name_of(e).to_vec()).collect();
        assert_eq!(
            names,
            vec![
                b"VK_EXT_image_drm_format_modifier".to_vec(),
                b"VK_KHR_external_semaphore_fd".to_vec()
            ]
        );
        assert!(p.is_emulated(b"VK_KHR_external_semaphore_fd"));
        assert!(!p.is_emulated(b"VK_EXT_external_memory_dma_buf"));
        assert!(!p
            .stripped()
            .contains(&ExportMemoryAllocateInfo::STRUCTURE_TYPE.0));
        assert!(p
            .stripped()
            .contains(&ImageDrmFormatModifierListCreateInfoEXT::STRUCTURE_TYPE.0));
    }

    #[test]
    fn forced_emulation_ignores_what_the_driver_has() {
        let host: Vec<_> = ENTRIES.iter().map(|e| ext(e.name)).collect();
        let native = Profile::with_forced_emulation(&host, true, false);
        assert!(native.advertised().is_empty());
        assert!(native.stripped().is_empty());
        let apple = Profile::with_forced_emulation(&host, true, true);
        assert_eq!(apple, Profile::new(&[], false));
        assert_eq!(apple.dma_buf, Support::Emulated);
        assert_eq!(apple.semaphore_fd, Support::Emulated);
        assert!(apple.is_emulated(b"VK_EXT_external_memory_dma_buf"));
        assert!(apple.foreign_queue_family_ignored());
        assert!(apple.external_memory_emulated());
        assert_eq!(apple.advertised().len(), 5);
    }

    #[test]
    fn a_bare_driver_gets_everything_emulated_and_stripped_once() {
        let p = Profile::new(&[], false);
        assert_eq!(p.advertised().len(), 5);
        assert!(p.external_memory_emulated());
        let export = ExportMemoryAllocateInfo::STRUCTURE_TYPE.0;
        assert_eq!(p.stripped().iter().filter(|&&s| s == export).count(), 1);
        assert_eq!(p.stripped().len(), 3 + 3 + 1);
    }

    /// Guest ids are host handles; every object is a 4 KiB buffer or a 16x16 2D image.
    struct Same;
    impl venus_host::lower::HandleMap for Same {
        fn host(&self, _: i32, id: u64) -> Option<u64> {
            Some(id)
        }
        fn guest(&self, _: i32, host: u64) -> Option<u64> {
            Some(host)
        }
        fn extent(&self, object_type: i32, _: u64) -> Option<venus_host::ranges::Extent> {
            use venus_host::ranges::{Extent, ImageShape};
            use venus_protocol::Handle;
            Some(match object_type {
                venus_protocol::handles::Image::OBJECT_TYPE => Extent::Image(ImageShape {
                    image_type: 1,
                    format: 37,
                    flags: 0,
                    extent: [16, 16, 1],
                    mip_levels: 1,
                    array_layers: 1,
                    required: 1024,
                }),
                _ => Extent::Buffer {
                    size: 4096,
                    required: 4096,
                },
            })
        }
    }

    /// The (src, dst) queue families the driver gets for a barrier lowered for `profile`.
    fn lowered_barriers(profile: &Profile) -> [(u32, u32); 2] {
        use venus_host::lower::{Lower, LowerCx, QUEUE_FAMILY_FOREIGN};
        use venus_protocol::structs::{BufferMemoryBarrier2, DependencyInfo, ImageMemoryBarrier};
        use venus_protocol::Id;
        let arena = bumpalo::Bump::new();
        let mut cx = LowerCx::new(&arena, &Same);
        cx.set_stripped(profile.stripped());
        cx.set_foreign_queue_family_ignored(profile.foreign_queue_family_ignored());
        let buffers = [BufferMemoryBarrier2 {
            src_queue_family_index: QUEUE_FAMILY_FOREIGN,
            dst_queue_family_index: 0,
            buffer: Id::from_raw(5),
            ..Default::default()
        }];
        let dep = DependencyInfo {
            buffer_memory_barrier_count: 1,
            p_buffer_memory_barriers: &buffers,
            ..Default::default()
        };
        let c = dep.lower(&mut cx).unwrap();
        // SAFETY: the lowering allocated one barrier in the arena.
        let b = unsafe { &*c.p_buffer_memory_barriers };
        let image = ImageMemoryBarrier {
            src_queue_family_index: 0,
            dst_queue_family_index: QUEUE_FAMILY_FOREIGN,
            image: Id::from_raw(6),
            // A valid range (zero counts are refused by the boundary checks).
            subresource_range: venus_protocol::structs::ImageSubresourceRange {
                level_count: 1,
                layer_count: 1,
                ..Default::default()
            },
            ..Default::default()
        };
        let i = image.lower(&mut cx).unwrap();
        assert_eq!(i.image.0, 6);
        [
            (b.src_queue_family_index, b.dst_queue_family_index),
            (i.src_queue_family_index, i.dst_queue_family_index),
        ]
    }

    #[test]
    fn foreign_queue_family_is_ignored_only_where_emulated() {
        use venus_host::lower::{QUEUE_FAMILY_FOREIGN, QUEUE_FAMILY_IGNORED};
        let bare = Profile::new(&[], false);
        assert!(bare.foreign_queue_family_ignored());
        assert_eq!(
            lowered_barriers(&bare),
            [(QUEUE_FAMILY_IGNORED, 0), (0, QUEUE_FAMILY_IGNORED)]
        );
        let lavapipe = Profile::new(&[ext("VK_EXT_queue_family_foreign")], false);
        assert!(!lavapipe.foreign_queue_family_ignored());
        assert_eq!(
            lowered_barriers(&lavapipe),
            [(QUEUE_FAMILY_FOREIGN, 0), (0, QUEUE_FAMILY_FOREIGN)]
        );
    }

    /// (pipeline chain, stage chain) of a compute pipeline with a pipeline-robustness link that
    /// disables everything in both chains, lowered for `profile`: whether each is non-NULL.
    fn lowered_pipeline_robustness(profile: &Profile) -> (bool, bool) {
        use venus_host::lower::{Lower, LowerCx};
        use venus_protocol::structs::{
            ComputePipelineCreateInfo, Ext, PipelineShaderStageCreateInfo,
        };
        use venus_protocol::types::{
            PipelineRobustnessBufferBehavior, PipelineRobustnessImageBehavior, ShaderStageFlagBits,
        };
        use venus_protocol::{Id, Str};
        let off = Ext::PipelineRobustnessCreateInfo(PipelineRobustnessCreateInfo {
            p_next: None,
            storage_buffers: PipelineRobustnessBufferBehavior(1), // DISABLED
            uniform_buffers: PipelineRobustnessBufferBehavior(1),
            vertex_inputs: PipelineRobustnessBufferBehavior(1),
            images: PipelineRobustnessImageBehavior(1),
        });
        let info = ComputePipelineCreateInfo {
            p_next: Some(&off),
            stage: PipelineShaderStageCreateInfo {
                p_next: Some(&off),
                stage: ShaderStageFlagBits(0x20), // COMPUTE
                module: Id::from_raw(7),
                p_name: Some(Str::from_bytes_with_nul(b"main\0").unwrap()),
                ..Default::default()
            },
            layout: Id::from_raw(8),
            base_pipeline_index: -1,
            ..Default::default()
        };
        let arena = bumpalo::Bump::new();
        let mut cx = LowerCx::new(&arena, &Same);
        cx.set_stripped(profile.stripped());
        let c = info.lower(&mut cx).unwrap();
        (!c.p_next.is_null(), !c.stage.p_next.is_null())
    }

    #[test]
    fn robust_devices_strip_pipeline_robustness_links() {
        let plain = Profile::new(&[], false);
        assert_eq!(lowered_pipeline_robustness(&plain), (true, true));
        let robust = plain.with_pipeline_robustness_stripped();
        assert_eq!(lowered_pipeline_robustness(&robust), (false, false));
        let link = PipelineRobustnessCreateInfo::STRUCTURE_TYPE.0;
        let twice = robust.with_pipeline_robustness_stripped();
        assert_eq!(twice.stripped().iter().filter(|&&s| s == link).count(), 1);
        assert_eq!(
            twice.advertised(),
            plain.advertised(),
            "nothing else changes"
        );
    }

    #[test]
    fn a_listed_semaphore_fd_without_sync_fd_import_is_still_emulated() {
        let p = Profile::new(&[ext("VK_KHR_external_semaphore_fd")], false);
        assert_eq!(p.semaphore_fd, Support::Emulated);
        let p = Profile::new(&[ext("VK_KHR_external_semaphore_fd")], true);
        assert_eq!(p.semaphore_fd, Support::Native);
    }
}
