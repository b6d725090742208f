//! Queries about the extensions the capability profile emulates ([`crate::profile`]): the
//! answers the client needs to see them as real, consistent with what the server does.
//! Queries about what the driver really has pass through to it.
//!
//! Emulated external memory (dma-buf, opaque fd) is our shared memory, handed to the client
//! as a blob fd (contract §7.6): buffers and images of any kind are exportable and importable
//! with that handle type, and with no other.

use venus_host::generated::calls;
use venus_host::lower::{Lower, LowerCx, Raise};
use venus_host::vk;
use venus_protocol::commands::*;
use venus_protocol::structs::{
    Ext, ExternalBufferProperties, ExternalImageFormatProperties, ExternalMemoryProperties,
    ExternalSemaphoreProperties, PhysicalDeviceExternalImageFormatInfo,
};
use venus_protocol::types::{
    ExternalMemoryFeatureFlags, ExternalMemoryHandleTypeFlagBits, ExternalMemoryHandleTypeFlags,
    ExternalSemaphoreFeatureFlags, ExternalSemaphoreHandleTypeFlags, ImageTiling, VkResult,
};
use venus_protocol::{handles, ChainNode, Command, Handle, Id, Reply};
use venus_renderer::dispatch::DispatchError;

use crate::drm::Hidden;
use crate::profile::{Profile, Support, DRM_FORMAT_MOD_LINEAR, SYNC_FD};
use crate::{Call, VulkanDispatch};

/// `VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT`.
const OPAQUE_FD: ExternalMemoryHandleTypeFlagBits = ExternalMemoryHandleTypeFlagBits(0x1);
/// `VK_EXTERNAL_MEMORY_HANDLE_TYPE_DMA_BUF_BIT_EXT`.
const DMA_BUF: ExternalMemoryHandleTypeFlagBits = ExternalMemoryHandleTypeFlagBits(0x200);

/// Whether memory of handle type `ht` is answered here (its extension is emulated).
pub fn emulated_handle(profile: &Profile, ht: ExternalMemoryHandleTypeFlagBits) -> bool {
    (ht == DMA_BUF && profile.dma_buf == Support::Emulated)
        || (ht == OPAQUE_FD && profile.memory_fd == Support::Emulated)
}

/// The external-memory properties of an emulated handle type `ht`: exportable and importable,
/// compatible with itself only.
pub fn emulated_memory_properties(
    ht: ExternalMemoryHandleTypeFlagBits,
) -> ExternalMemoryProperties {
    let only = ExternalMemoryHandleTypeFlags(ht.0 as u32);
    ExternalMemoryProperties {
        external_memory_features: ExternalMemoryFeatureFlags(
            ExternalMemoryFeatureFlags::EXPORTABLE_BIT.0
                | ExternalMemoryFeatureFlags::IMPORTABLE_BIT.0,
        ),
        export_from_imported_handle_types: only,
        compatible_handle_types: only,
    }
}

/// What `vkGetPhysicalDeviceImageFormatProperties2` asks of the emulation.
struct ImageQuery {
    /// DRM-modifier tiling, asked as LINEAR.
    drm: bool,
    /// An emulated external handle type.
    external: Option<ExternalMemoryHandleTypeFlagBits>,
}

impl VulkanDispatch {
    /// The profile of guest physical device `pd`.
    fn physical_profile_of(
        &self,
        call: &Call<'_, '_>,
        pd: Id<handles::PhysicalDevice>,
    ) -> Result<std::sync::Arc<Profile>, DispatchError> {
        let inst = self.instance(call.name)?;
        let obj = self
            .registry
            .get_typed(handles::PhysicalDevice::OBJECT_TYPE, pd.raw())
            .map_err(|e| call.invalid(e))?;
        Ok(self.profile(&inst, vk::PhysicalDevice(obj.host)))
    }

    /// SYNC_FD with an emulated `VK_KHR_external_semaphore_fd`: importable (what
    /// `vkImportSemaphoreResourceMESA` does), not exportable. Anything else: the driver.
    pub(crate) fn external_semaphore_properties(
        &self,
        call: &mut Call<'_, '_>,
        a: &GetPhysicalDeviceExternalSemaphorePropertiesArgs<'_>,
    ) -> Result<(), DispatchError> {
        let profile = self.physical_profile_of(call, a.physical_device)?;
        let info = a.p_external_semaphore_info;
        if profile.semaphore_fd == Support::Emulated && info.handle_type == SYNC_FD {
            // A timeline semaphore type in the chain gets nothing: sync files are binary.
            let timeline = std::iter::successors(info.p_next, |l| l.next()).any(|l| {
                matches!(l, venus_protocol::structs::Ext::SemaphoreTypeCreateInfo(t)
                    if t.semaphore_type.0 == 1)
            });
            let props = ExternalSemaphoreProperties {
                p_next: a.p_external_semaphore_properties.p_next,
                export_from_imported_handle_types: ExternalSemaphoreHandleTypeFlags(0),
                compatible_handle_types: if timeline {
                    ExternalSemaphoreHandleTypeFlags(0)
                } else {
                    ExternalSemaphoreHandleTypeFlags(SYNC_FD.0 as u32)
                },
                external_semaphore_features: if timeline {
                    ExternalSemaphoreFeatureFlags(0)
                } else {
                    ExternalSemaphoreFeatureFlags::IMPORTABLE_BIT
                },
            };
            let props = call.arena.alloc(props);
            return call
                .cx
                .reply(&Reply::GetPhysicalDeviceExternalSemaphoreProperties(
                    GetPhysicalDeviceExternalSemaphorePropertiesReply {
                        p_external_semaphore_properties: props,
                    },
                ));
        }
        let inst = self.instance(call.name)?;
        let mut lcx = LowerCx::new(call.arena, call.held);
        lcx.set_stripped(profile.stripped());
        // SAFETY: the handle map is the registry; the procs are the context's instance's.
        let (reply, _) = unsafe {
            calls::get_physical_device_external_semaphore_properties(&inst.procs, &mut lcx, a)
        }
        .map_err(|e| call.invalid(e))?;
        call.cx
            .reply(&Reply::GetPhysicalDeviceExternalSemaphoreProperties(reply))
    }
}

impl VulkanDispatch {
    /// `vkGetPhysicalDeviceExternalBufferProperties`: emulated handle types answered here.
    pub(crate) fn external_buffer_properties(
        &self,
        call: &mut Call<'_, '_>,
        a: &GetPhysicalDeviceExternalBufferPropertiesArgs<'_>,
    ) -> Result<(), DispatchError> {
        let profile = self.physical_profile_of(call, a.physical_device)?;
        let ht = a.p_external_buffer_info.handle_type;
        if !emulated_handle(&profile, ht) {
            return self.generic(
                call,
                &Command::GetPhysicalDeviceExternalBufferProperties(*a),
            );
        }
        let props = call.arena.alloc(ExternalBufferProperties {
            p_next: a.p_external_buffer_properties.p_next,
            external_memory_properties: emulated_memory_properties(ht),
        });
        call.cx
            .reply(&Reply::GetPhysicalDeviceExternalBufferProperties(
                GetPhysicalDeviceExternalBufferPropertiesReply {
                    p_external_buffer_properties: props,
                },
            ))
    }

    /// `vkGetPhysicalDeviceImageFormatProperties2`: an emulated DRM tiling is asked as LINEAR
    /// (modifier 0 only), an emulated external handle type is answered here; the rest is the
    /// driver's answer.
    pub(crate) fn image_format_properties2(
        &self,
        call: &mut Call<'_, '_>,
        a: &GetPhysicalDeviceImageFormatProperties2Args<'_>,
    ) -> Result<(), DispatchError> {
        let (inst, pd, profile) = self.physical_of(call, a.physical_device)?;
        let q = image_query(&profile, a);
        if !q.drm && q.external.is_none() {
            return self.generic(call, &Command::GetPhysicalDeviceImageFormatProperties2(*a));
        }
        let f = inst
            .procs
            .get_physical_device_image_format_properties2
            .ok_or(DispatchError::Unsupported(call.name))?;
        let mut lcx = LowerCx::new(call.arena, call.held);
        lcx.set_stripped(profile.stripped());
        let mut info = a
            .p_image_format_info
            .lower(&mut lcx)
            .map_err(|e| call.invalid(e))?;
        let mut out = a
            .p_image_format_properties
            .lower_out(&mut lcx)
            .map_err(|e| call.invalid(e))?;
        let modifier_ok = drm_modifier(a) == Some(DRM_FORMAT_MOD_LINEAR);
        let ret = if q.drm && !modifier_ok {
            VkResult::ERROR_FORMAT_NOT_SUPPORTED
        } else {
            if q.drm {
                info.tiling = ImageTiling::LINEAR;
            }
            let external = [
                PhysicalDeviceExternalImageFormatInfo::STRUCTURE_TYPE.0,
                ExternalImageFormatProperties::STRUCTURE_TYPE.0,
            ];
            let hide: &[i32] = if q.external.is_some() { &external } else { &[] };
            // SAFETY: both chains were just lowered into the arena.
            let (hidden_in, hidden_out) = unsafe {
                (
                    Hidden::hide(&mut info.p_next, hide),
                    Hidden::hide(&mut out.p_next, hide),
                )
            };
            // SAFETY: `pd` is a live physical device of `inst`; both structs and their
            // chains live in the arena.
            let ret = unsafe { f(pd, &info, &mut out) };
            // SAFETY: the links are still in the arena.
            let links = unsafe {
                hidden_in.restore(&mut info.p_next);
                hidden_out.restore(&mut out.p_next)
            };
            if let (Some(ht), VkResult::SUCCESS) = (q.external, ret) {
                fill_external(&links, ht);
            }
            ret
        };
        let props = Raise::raise(a.p_image_format_properties, &out, &mut lcx)
            .map_err(|e| call.invalid(e))?;
        let props = call.arena.alloc(props);
        call.cx
            .reply(&Reply::GetPhysicalDeviceImageFormatProperties2(
                GetPhysicalDeviceImageFormatProperties2Reply {
                    ret,
                    p_image_format_properties: props,
                },
            ))
    }
}

fn image_query(
    profile: &Profile,
    a: &GetPhysicalDeviceImageFormatProperties2Args<'_>,
) -> ImageQuery {
    let info = a.p_image_format_info;
    let external = std::iter::successors(info.p_next, |l| l.next())
        .find_map(|l| match l {
            Ext::PhysicalDeviceExternalImageFormatInfo(e) => Some(e.handle_type),
            _ => None,
        })
        .filter(|&ht| emulated_handle(profile, ht));
    ImageQuery {
        drm: profile.drm_format_modifier == Support::Emulated
            && info.tiling == ImageTiling::DRM_FORMAT_MODIFIER_EXT,
        external,
    }
}

/// The modifier a DRM-tiling image format query names.
fn drm_modifier(a: &GetPhysicalDeviceImageFormatProperties2Args<'_>) -> Option<u64> {
    std::iter::successors(a.p_image_format_info.p_next, |l| l.next()).find_map(|l| match l {
        Ext::PhysicalDeviceImageDrmFormatModifierInfoEXT(m) => Some(m.drm_format_modifier),
        _ => None,
    })
}

/// Writes the emulated answer into the `VkExternalImageFormatProperties` among `links`.
fn fill_external(links: &[*mut std::ffi::c_void], ht: ExternalMemoryHandleTypeFlagBits) {
    let p = emulated_memory_properties(ht);
    for &l in links {
        // SAFETY: `l` is a live link of the lowered output chain; the sType names its layout.
        unsafe {
            if crate::drm::s_type_of(l) == ExternalImageFormatProperties::STRUCTURE_TYPE.0 {
                let e = &mut *(l as *mut vk::ExternalImageFormatProperties);
                e.external_memory_properties = vk::ExternalMemoryProperties {
                    external_memory_features: p.external_memory_features,
                    export_from_imported_handle_types: p.export_from_imported_handle_types,
                    compatible_handle_types: p.compatible_handle_types,
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use venus_protocol::structs::{
        ImageFormatProperties2, PhysicalDeviceImageDrmFormatModifierInfoEXT,
        PhysicalDeviceImageFormatInfo2,
    };

    fn lavapipe() -> Profile {
        let mut p = Profile::new(&[], false);
        p.dma_buf = Support::Native;
        p.memory_fd = Support::Native;
        p
    }

    #[test]
    fn only_emulated_handle_types_are_answered_here() {
        let all = Profile::new(&[], false);
        assert!(emulated_handle(&all, DMA_BUF));
        assert!(emulated_handle(&all, OPAQUE_FD));
        assert!(!emulated_handle(
            &all,
            ExternalMemoryHandleTypeFlagBits(0x80)
        ));
        assert!(!emulated_handle(&lavapipe(), DMA_BUF));
        assert!(!emulated_handle(&lavapipe(), OPAQUE_FD));
    }

    #[test]
    fn emulated_memory_is_exportable_importable_and_compatible_with_itself() {
        let p = emulated_memory_properties(DMA_BUF);
        assert_eq!(p.external_memory_features.0, 0x2 | 0x4);
        assert_eq!(p.compatible_handle_types.0, 0x200);
        assert_eq!(p.export_from_imported_handle_types.0, 0x200);
        let mut out = vk::ExternalImageFormatProperties::default();
        fill_external(&[&mut out as *mut _ as *mut std::ffi::c_void], OPAQUE_FD);
        assert_eq!(
            out.external_memory_properties.compatible_handle_types.0,
            0x1
        );
        assert_eq!(
            out.external_memory_properties.external_memory_features.0,
            0x6
        );
    }

    #[test]
    fn image_queries_find_drm_tiling_modifier_and_handle_type() {
        let modifier = Ext::PhysicalDeviceImageDrmFormatModifierInfoEXT(
            PhysicalDeviceImageDrmFormatModifierInfoEXT {
                drm_format_modifier: 0,
                ..Default::default()
            },
        );
        let external =
            Ext::PhysicalDeviceExternalImageFormatInfo(PhysicalDeviceExternalImageFormatInfo {
                p_next: Some(&modifier),
                handle_type: DMA_BUF,
            });
        let info = PhysicalDeviceImageFormatInfo2 {
            p_next: Some(&external),
            tiling: ImageTiling::DRM_FORMAT_MODIFIER_EXT,
            ..Default::default()
        };
        let out = ImageFormatProperties2::default();
        let a = GetPhysicalDeviceImageFormatProperties2Args {
            physical_device: Id::from_raw(1),
            p_image_format_info: &info,
            p_image_format_properties: &out,
        };
        let q = image_query(&Profile::new(&[], false), &a);
        assert!(q.drm);
        assert_eq!(q.external, Some(DMA_BUF));
        assert_eq!(drm_modifier(&a), Some(0));
        let q = image_query(&lavapipe(), &a);
        assert!(q.drm, "lavapipe lacks DRM modifiers");
        assert_eq!(q.external, None, "lavapipe has dma-buf: the driver answers");
    }
}
