//! Device creation and destruction.
//!
//! The client enables extensions it implements itself or needs for WSI (contract §5.2, §8.4);
//! the host enables only those its driver has and drops the rest before calling it.

use std::sync::Arc;

use bumpalo::Bump;
use venus_host::lower::{Lower, LowerCx};
use venus_host::vk;
use venus_protocol::commands::*;
use venus_protocol::structs::DeviceCreateInfo;
use venus_protocol::types::VkResult;
use venus_protocol::{handles, Handle, Reply, Str};

use super::objects::Object;
use super::{invalid, DeviceState, VulkanDispatch};
use venus_renderer::dispatch::{DispatchCx, DispatchError};

impl VulkanDispatch {
    pub(super) fn create_device(
        &self,
        cx: &mut DispatchCx<'_>,
        a: &CreateDeviceArgs<'_>,
        arena: &Bump,
    ) -> Result<(), DispatchError> {
        const NAME: &str = "vkCreateDevice";
        let inst = self.instance(NAME)?;
        let mut lcx = LowerCx::new(arena, &self.objects);
        let pd = vk::PhysicalDevice(
            lcx.host(a.physical_device)
                .map_err(|e| invalid(NAME, e.to_string()))?,
        );
        let host_exts = self.host_device_extensions(&inst, pd);
        let has = |name: &[u8]| {
            host_exts.iter().any(|e| {
                let end = e
                    .extension_name
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(e.extension_name.len());
                &e.extension_name[..end] == name
            })
        };
        let mut info: DeviceCreateInfo<'_> = *a.p_create_info;
        let mut kept: Vec<Option<Str<'_>>> = Vec::new();
        for s in info.pp_enabled_extension_names.iter().flatten() {
            if has(s.to_bytes()) {
                if !kept.iter().flatten().any(|k| k.to_bytes() == s.to_bytes()) {
                    kept.push(Some(*s));
                }
            } else {
                tracing::debug!(context = %self.context, extension = ?s, "not enabled on the host (the driver lacks it)");
            }
        }
        info.enabled_extension_count = kept.len() as u32;
        info.pp_enabled_extension_names = &kept;
        info.enabled_layer_count = 0;
        info.pp_enabled_layer_names = &[];
        let c_info = info
            .lower(&mut lcx)
            .map_err(|e| invalid(NAME, e.to_string()))?;
        let create = inst
            .procs
            .create_device
            .ok_or(DispatchError::Unsupported(NAME))?;
        let mut host = vk::Device::NULL;
        // SAFETY: `pd` is a live physical device of this context's instance; `c_info` and what it
        // points to live in `arena`, `kept` and `a` for the call.
        let ret = unsafe { create(pd, &c_info, std::ptr::null(), &mut host) };
        if ret == VkResult::SUCCESS {
            let guest = a.p_device.raw();
            self.objects
                .insert(
                    guest,
                    Object {
                        ty: handles::Device::OBJECT_TYPE,
                        host: host.0,
                        device: Some(guest),
                    },
                )
                .map_err(|e| invalid(NAME, e.to_string()))?;
            let procs = self.loader.device_procs(inst.host, host);
            self.devices
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(guest, Arc::new(DeviceState { host, procs }));
        } else {
            tracing::warn!(context = %self.context, ?ret, "host vkCreateDevice failed");
        }
        cx.reply(&Reply::CreateDevice(CreateDeviceReply {
            ret,
            p_device: a.p_device,
        }))
    }

    pub(super) fn destroy_device(
        &self,
        cx: &mut DispatchCx<'_>,
        a: &DestroyDeviceArgs,
    ) -> Result<(), DispatchError> {
        const NAME: &str = "vkDestroyDevice";
        if a.device.is_null() {
            return cx.reply(&Reply::DestroyDevice(DestroyDeviceReply {}));
        }
        let dev = self
            .devices
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&a.device.raw())
            .ok_or_else(|| invalid(NAME, format!("unknown device {}", a.device.raw())))?;
        if let Some(destroy) = dev.procs.destroy_device {
            // SAFETY: the device is live and was just removed from the table, so no later command
            // of this context can reach it.
            unsafe { destroy(dev.host, std::ptr::null()) };
        }
        self.objects.remove_device_objects(a.device.raw());
        cx.reply(&Reply::DestroyDevice(DestroyDeviceReply {}))
    }
}
