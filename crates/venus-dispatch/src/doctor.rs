//! `venus-server --doctor`: what each host physical device lacks and what the server will do
//! about it (memory import, WSI emulation, page size, shared-memory backing, portability,
//! robust access), as plain lines for a person to read and for tests to grep.
//!
//! It creates a throw-away context's state and instance exactly as a client's would be
//! created (same portability handling, same profile computation), so what it prints is what a
//! client will get.

use std::sync::Arc;

use venus_host::vk;
use venus_protocol::types::VkResult;
use venus_renderer::dispatch::ContextInfo;

use crate::portability::{self, InstancePortability};
use crate::profile::{Profile, Support};
use crate::registry::InstanceShared;
use crate::{FactoryError, VulkanDispatch, VulkanFactory};

/// The WSI extensions of [`Profile`], in field order, with what an emulation costs.
const WSI: [&str; 5] = [
    "VK_EXT_external_memory_dma_buf",
    "VK_KHR_external_memory_fd",
    "VK_EXT_image_drm_format_modifier",
    "VK_EXT_queue_family_foreign",
    "VK_KHR_external_semaphore_fd",
];

impl VulkanFactory {
    /// The doctor's report (see the module doc), one line per item; devices as `--device`
    /// selects them.
    pub fn doctor(&self) -> Result<Vec<String>, FactoryError> {
        let info = ContextInfo {
            id: 0,
            name: "doctor".into(),
        };
        let mut d = VulkanDispatch::new(self.loader.clone(), self.selector.clone(), &info);
        d.host_page_size = self.host_page_size;
        d.shm_backing = self.shm_backing;
        d.force_emulated_wsi = self.force_emulated_wsi;
        let portability = InstancePortability::new(&d.global);
        let inst = d.doctor_instance(&portability)?;
        let mut out = vec![
            format!("loader: {}", self.loader.library()),
            format!(
                "host: page size {} (real {}), shared memory {}, WSI extensions {}",
                self.host_page_size,
                rustix::param::page_size(),
                self.shm_backing,
                if self.force_emulated_wsi {
                    "forced emulated (apple profile)"
                } else {
                    "native where the driver has them"
                }
            ),
            format!(
                "instance: VK_KHR_portability_enumeration {}",
                if portability.enabled() {
                    "enabled (ENUMERATE_PORTABILITY_BIT set)"
                } else {
                    "not offered by the loader"
                }
            ),
        ];
        let devices = d.visible_physical_devices(&inst);
        if devices.is_empty() {
            out.push("no host physical device is visible".into());
        }
        for (i, pd) in devices.into_iter().enumerate() {
            out.extend(d.doctor_device(&inst, i, pd));
        }
        Ok(out)
    }
}

impl VulkanDispatch {
    fn doctor_instance(
        &self,
        portability: &InstancePortability,
    ) -> Result<InstanceShared, FactoryError> {
        let create = self
            .global
            .create_instance
            .ok_or(FactoryError::Driver(VkResult::ERROR_INITIALIZATION_FAILED))?;
        let app = vk::ApplicationInfo {
            api_version: 1 << 22 | 1 << 12, // 1.1
            ..Default::default()
        };
        let mut info = vk::InstanceCreateInfo {
            p_application_info: &app,
            ..Default::default()
        };
        portability.apply(&mut info);
        let mut host = vk::Instance::NULL;
        // SAFETY: `info`, `app` and `portability` are valid for the call; `host` is an output.
        let r = unsafe { create(&info, std::ptr::null(), &mut host) };
        if r != VkResult::SUCCESS {
            return Err(FactoryError::Driver(r));
        }
        // Dropping it destroys the host instance.
        Ok(InstanceShared {
            guest: 0,
            host,
            procs: self.loader.instance_procs(host),
            stats: self.registry.stats_handle(),
        })
    }

    fn doctor_device(
        &self,
        inst: &InstanceShared,
        i: usize,
        pd: vk::PhysicalDevice,
    ) -> Vec<String> {
        let exts = self.host_device_extensions(inst, pd);
        let has = |n: &str| {
            exts.iter()
                .any(|e| crate::profile::name_of(e) == n.as_bytes())
        };
        let imports = has("VK_EXT_external_memory_host");
        let (props, memory) = self.device_profile(inst, pd, imports);
        let name: Vec<u8> = props
            .device_name
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        let mut out = vec![format!("device {i}: {}", String::from_utf8_lossy(&name))];
        out.push(match memory.import_alignment {
            Some(a) => format!(
                "  memory import: VK_EXT_external_memory_host native, alignment {a}, granule {}",
                memory.granule
            ),
            None => format!(
                "  memory import: VK_EXT_external_memory_host ABSENT (HOST_VISIBLE memory cannot \
                 be shared with the client), granule {}",
                memory.granule
            ),
        });
        let profile: Arc<Profile> = self.profile(inst, pd);
        for (ext, s) in WSI.iter().zip(profile.supports()) {
            let how = match s {
                Support::Native => "native",
                Support::Emulated if has(ext) => "emulated (the driver has it; profile forces)",
                Support::Emulated => "emulated (the driver lacks it)",
            };
            out.push(format!("  wsi {ext}: {how}"));
        }
        out.push(format!(
            "  shared memory: {}, page size {}",
            memory.backing, self.host_page_size
        ));
        out.extend(doctor_portability(
            has(portability::SUBSET.to_str().unwrap_or_default()),
            &profile,
        ));
        out.push(doctor_robustness(&profile.robustness));
        out
    }
}

/// What a device created with robust access (the default, `crate::robust`) gets.
fn doctor_robustness(r: &crate::robust::HostRobustness) -> String {
    let mut info = vk::DeviceCreateInfo::default();
    let arena = bumpalo::Bump::new();
    // SAFETY: an empty create info: no chain, no extension list.
    let on = unsafe { crate::robust::apply(r, &mut info, &arena) };
    format!("  robust access (unless --no-robust-access): {on}")
}

fn doctor_portability(listed: bool, profile: &Profile) -> Vec<String> {
    if !listed {
        return vec!["  portability subset: not listed (a full Vulkan implementation)".into()];
    }
    let Some(s) = &profile.portability else {
        return vec![
            "  portability subset: listed, enabled at device creation; features unreadable \
             (no vkGetPhysicalDeviceFeatures2)"
                .into(),
        ];
    };
    let list = |v: Vec<&str>| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(", ")
        }
    };
    vec![
        "  portability subset: listed, enabled at device creation".into(),
        format!("  portability missing: {}", list(s.missing())),
        format!("  portability hides from clients: {}", list(s.hidden())),
        format!(
            "  portability unenforceable (no feature bit): {}",
            list(
                s.missing()
                    .into_iter()
                    .filter(|m| !portability::HIDES.iter().any(|(sub, _)| sub == m))
                    .collect()
            )
        ),
    ]
}
