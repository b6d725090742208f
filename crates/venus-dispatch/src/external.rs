//! Queries about the extensions the capability profile emulates ([`crate::profile`]): the
//! answers the client needs to see them as real, consistent with what the server does.
//! Queries about what the driver really has pass through to it.

use venus_host::generated::calls;
use venus_host::lower::LowerCx;
use venus_host::vk;
use venus_protocol::commands::*;
use venus_protocol::structs::ExternalSemaphoreProperties;
use venus_protocol::types::{ExternalSemaphoreFeatureFlags, ExternalSemaphoreHandleTypeFlags};
use venus_protocol::{handles, ChainNode, Handle, Id, Reply};
use venus_renderer::dispatch::DispatchError;

use crate::profile::{Profile, Support, SYNC_FD};
use crate::{Call, VulkanDispatch};

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
