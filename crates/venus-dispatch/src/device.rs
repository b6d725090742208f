//! Device creation and destruction.
//!
//! The client enables extensions it implements itself or needs for WSI (contract §5.2, §8.4);
//! the host enables only those its driver has and drops the rest before calling it.
//! `vkDestroyDevice` unbinds the device, its queues (and their timelines) and every object it
//! owns; each is destroyed on the host newest first, the device itself after its last child
//! and the last command still using it (see [`crate::registry`]).

use std::sync::{Arc, Mutex};

use venus_host::lower::{Lower, LowerCx};
use venus_host::vk;
use venus_protocol::commands::*;
use venus_protocol::structs::DeviceCreateInfo;
use venus_protocol::types::VkResult;
use venus_protocol::{handles, Handle, Reply, Str};

use crate::memory::MemoryProfile;
use crate::registry::{release_subtree, DeviceShared, Held, NewObject, Owner, State, Teardown};
use crate::{Call, VulkanDispatch};
use venus_renderer::dispatch::DispatchError;

impl VulkanDispatch {
    pub(super) fn create_device(
        &self,
        call: &mut Call<'_, '_>,
        a: &CreateDeviceArgs<'_>,
    ) -> Result<(), DispatchError> {
        let inst = self.instance(call.name)?;
        let held = Held::new(&self.registry);
        let mut lcx = LowerCx::new(call.arena, &held);
        let pd = vk::PhysicalDevice(lcx.host(a.physical_device).map_err(|e| call.invalid(e))?);
        let (kept, imports) = self.host_extension_list(&inst, pd, a.p_create_info);
        let mut info: DeviceCreateInfo<'_> = *a.p_create_info;
        // Features hidden from the client are never enabled on its behalf either.
        let masked;
        if let (Some(f), Some(s)) = (
            info.p_enabled_features,
            &self.profile(&inst, pd).portability,
        ) {
            let mut f = *f;
            s.mask(&mut f);
            masked = f;
            info.p_enabled_features = Some(&masked);
        }
        info.enabled_extension_count = kept.len() as u32;
        info.pp_enabled_extension_names = &kept;
        info.enabled_layer_count = 0;
        info.pp_enabled_layer_names = &[];
        let mut c_info = info.lower(&mut lcx).map_err(|e| call.invalid(e))?;
        let profile = self.profile(&inst, pd);
        if let Some(s) = &profile.portability {
            // SAFETY: the chain was just lowered into this call's arena; nothing else refers
            // to it until the create call below.
            unsafe { crate::portability::mask_lowered_chain(s, c_info.p_next) };
        }
        // Robust access on every device unless the operator turned it off (see `robust`).
        let robust = call.cx.limits().robust_access.then(|| {
            // SAFETY: as above; the extension list was lowered into the arena too.
            unsafe { crate::robust::apply(&profile.robustness, &mut c_info, call.arena) }
        });
        let create = inst
            .procs
            .create_device
            .ok_or(DispatchError::Unsupported(call.name))?;
        let mut host = vk::Device::NULL;
        // SAFETY: `pd` is a live physical device of this context's instance; `c_info` and what it
        // points to live in the arena, `kept` and `a` for the call.
        let ret = unsafe { create(pd, &c_info, std::ptr::null(), &mut host) };
        if ret == VkResult::SUCCESS {
            let guest = a.p_device.raw();
            self.bind_device(call, guest, host, pd, &inst, (imports, robust.is_some()))?;
            match robust {
                Some(on) => {
                    tracing::info!(ctx = self.context_id, device = guest, enabled = %on, "robust access")
                }
                None => tracing::info!(
                    ctx = self.context_id,
                    device = guest,
                    "robust access off (robust_access = false)"
                ),
            }
        } else {
            tracing::warn!(context = %self.context, ?ret, "host vkCreateDevice failed");
        }
        call.cx.reply(&Reply::CreateDevice(CreateDeviceReply {
            ret,
            p_device: a.p_device,
        }))
    }

    /// The extensions the host device is created with: the client's that the driver has (once
    /// each), plus what the host needs itself (memory import, the portability subset). Also
    /// whether the driver imports host memory.
    fn host_extension_list<'a>(
        &self,
        inst: &crate::registry::InstanceShared,
        pd: vk::PhysicalDevice,
        info: &DeviceCreateInfo<'a>,
    ) -> (Vec<Option<Str<'a>>>, bool) {
        let host_exts = self.host_device_extensions(inst, pd);
        let has = |name: &[u8]| host_exts.iter().any(|e| crate::profile::name_of(e) == name);
        let mut kept: Vec<Option<Str<'a>>> = Vec::new();
        for s in info.pp_enabled_extension_names.iter().flatten() {
            if has(s.to_bytes()) {
                if !kept.iter().flatten().any(|k| k.to_bytes() == s.to_bytes()) {
                    kept.push(Some(*s));
                }
            } else {
                tracing::debug!(context = %self.context, extension = ?s, "not enabled on the host (the driver lacks it)");
            }
        }
        // The host's own needs: importing shared memory (DESIGN decision 3), and a
        // portability-subset device must be created with the subset enabled (the spec).
        let host_memory: &'static [u8] = b"VK_EXT_external_memory_host\0";
        let imports = has(&host_memory[..host_memory.len() - 1]);
        let own = [
            (imports, host_memory),
            (true, crate::portability::SUBSET.to_bytes_with_nul()),
        ];
        for (wanted, name) in own {
            let name = Str::from_bytes_with_nul(name).expect("NUL");
            if wanted
                && has(name.to_bytes())
                && !kept
                    .iter()
                    .flatten()
                    .any(|k| k.to_bytes() == name.to_bytes())
            {
                kept.push(Some(name));
            }
        }
        (kept, imports)
    }

    fn bind_device(
        &self,
        call: &Call<'_, '_>,
        guest: u64,
        host: vk::Device,
        pd: vk::PhysicalDevice,
        inst: &Arc<crate::registry::InstanceShared>,
        (imports, robust): (bool, bool),
    ) -> Result<(), DispatchError> {
        let (props, memory) = self.device_profile(inst, pd, imports);
        let profile = self.profile(inst, pd);
        let profile = if robust {
            Arc::new(profile.with_pipeline_robustness_stripped())
        } else {
            profile
        };
        let stats = self.registry.stats_handle();
        stats.created();
        let device = Arc::new(DeviceShared {
            guest,
            host,
            procs: self.loader.device_procs(inst.host, host),
            physical: pd,
            limits: props.limits,
            max_timeline_difference: crate::unblock::max_timeline_difference(inst, pd),
            memory,
            profile,
            queues: Mutex::new(Vec::new()),
            deferred: Mutex::new(Vec::new()),
            instance: Arc::clone(inst),
            stats,
        });
        // On failure the device is dropped here, which destroys it on the host.
        self.registry
            .insert(NewObject {
                guest,
                ty: handles::Device::OBJECT_TYPE,
                host: host.0,
                owner: Owner::Context,
                state: State::Device(device),
                teardown: Teardown::Forget,
            })
            .map_err(|e| call.invalid(e))?;
        Ok(())
    }

    /// The physical device's properties and what the device can do with memory.
    pub(crate) fn device_profile(
        &self,
        inst: &crate::registry::InstanceShared,
        pd: vk::PhysicalDevice,
        imports: bool,
    ) -> (vk::PhysicalDeviceProperties, MemoryProfile) {
        let mut host_props = vk::PhysicalDeviceExternalMemoryHostPropertiesEXT::default();
        let mut props2 = vk::PhysicalDeviceProperties2::default();
        if imports {
            props2.p_next = &mut host_props as *mut _ as *mut std::ffi::c_void;
        }
        if let Some(get) = inst.procs.get_physical_device_properties2 {
            // SAFETY: `pd` is a live physical device of the instance; `props2` and its chain are
            // valid output structs that outlive the call.
            unsafe { get(pd, &mut props2) };
        }
        let mut types = vk::PhysicalDeviceMemoryProperties::default();
        if let Some(get) = inst.procs.get_physical_device_memory_properties {
            // SAFETY: as above.
            unsafe { get(pd, &mut types) };
        }
        let import_alignment = (imports && host_props.min_imported_host_pointer_alignment > 0)
            .then_some(host_props.min_imported_host_pointer_alignment);
        let granule = import_alignment
            .unwrap_or(1)
            .max(self.host_page_size)
            .max(rustix::param::page_size() as u64);
        let granule = granule.checked_next_power_of_two().unwrap_or(granule);
        (
            props2.properties,
            MemoryProfile {
                types,
                import_alignment,
                granule,
                backing: self.shm_backing,
            },
        )
    }

    pub(super) fn destroy_device(
        &self,
        call: &mut Call<'_, '_>,
        a: &DestroyDeviceArgs,
    ) -> Result<(), DispatchError> {
        if a.device.is_null() {
            return call.cx.reply(&Reply::DestroyDevice(DestroyDeviceReply {}));
        }
        let device = self
            .registry
            .device(a.device.raw())
            .map_err(|e| call.invalid(e))?;
        for q in device.live_queues() {
            if let Some(idx) = q.ring_idx {
                call.cx.unbind_timeline(idx);
            }
        }
        let gone = self.registry.remove_device(&device);
        // The device's own entry and its queues are not children the client had to destroy.
        let children = gone
            .iter()
            .filter(|o| o.ty != handles::Device::OBJECT_TYPE && o.ty != handles::Queue::OBJECT_TYPE)
            .count();
        if children > 0 {
            tracing::info!(
                ctx = self.context_id,
                device = a.device.raw(),
                children,
                "device destroyed with live children"
            );
        }
        drop(device);
        release_subtree(gone);
        call.cx.reply(&Reply::DestroyDevice(DestroyDeviceReply {}))
    }
}
