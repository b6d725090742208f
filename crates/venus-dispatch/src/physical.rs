//! Physical devices: which host devices the client sees (all, or the one `--device` picks by
//! index or name), bound to the ids the client chose, and their device groups.

use bumpalo::Bump;
use venus_host::vk;
use venus_protocol::commands::*;
use venus_protocol::structs::PhysicalDeviceGroupProperties;
use venus_protocol::types::VkResult;
use venus_protocol::{handles, Handle, Id, Reply};

use crate::registry::{InstanceShared, NewObject, Owner, State, Teardown};
use crate::{invalid, VulkanDispatch};
use venus_renderer::dispatch::{DispatchCx, DispatchError};

/// Which host physical device(s) to expose.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DeviceSelector {
    /// Every device the Vulkan loader lists.
    #[default]
    All,
    /// The n-th device of `vkEnumeratePhysicalDevices`.
    Index(usize),
    /// The first device whose name contains this text (case-insensitive).
    Name(String),
}

impl DeviceSelector {
    /// `"2"` selects by index, anything else by name; empty or `"all"` selects all.
    pub fn parse(s: &str) -> Self {
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("all") {
            DeviceSelector::All
        } else if let Ok(i) = s.parse() {
            DeviceSelector::Index(i)
        } else {
            DeviceSelector::Name(s.to_string())
        }
    }

    /// The selected subset of `devices` ((handle, name) in the host's order).
    pub fn select<T: Copy>(&self, devices: &[(T, String)]) -> Vec<T> {
        match self {
            DeviceSelector::All => devices.iter().map(|d| d.0).collect(),
            DeviceSelector::Index(i) => devices.get(*i).map(|d| d.0).into_iter().collect(),
            DeviceSelector::Name(n) => {
                let n = n.to_lowercase();
                devices
                    .iter()
                    .find(|d| d.1.to_lowercase().contains(&n))
                    .map(|d| d.0)
                    .into_iter()
                    .collect()
            }
        }
    }
}

impl VulkanDispatch {
    /// The host physical devices the client may see, in the host's order.
    pub(crate) fn visible_physical_devices(
        &self,
        inst: &InstanceShared,
    ) -> Vec<vk::PhysicalDevice> {
        let (Some(enumerate), Some(props)) = (
            inst.procs.enumerate_physical_devices,
            inst.procs.get_physical_device_properties,
        ) else {
            return Vec::new();
        };
        let mut n = 0u32;
        // SAFETY: `inst.host` is live; count query.
        unsafe { enumerate(inst.host, &mut n, std::ptr::null_mut()) };
        let mut all = vec![vk::PhysicalDevice::NULL; n as usize];
        // SAFETY: `all` has room for `n` handles.
        unsafe { enumerate(inst.host, &mut n, all.as_mut_ptr()) };
        all.truncate(n as usize);
        let named: Vec<(vk::PhysicalDevice, String)> = all
            .iter()
            .map(|pd| {
                let mut p = vk::PhysicalDeviceProperties::default();
                // SAFETY: `pd` was just enumerated from the live instance; `p` is a valid out struct.
                unsafe { props(*pd, &mut p) };
                let name: Vec<u8> = p
                    .device_name
                    .iter()
                    .take_while(|c| **c != 0)
                    .map(|c| *c as u8)
                    .collect();
                (*pd, String::from_utf8_lossy(&name).into_owned())
            })
            .collect();
        self.selector.select(&named)
    }

    pub(super) fn enumerate_physical_devices(
        &self,
        cx: &mut DispatchCx<'_>,
        a: &EnumeratePhysicalDevicesArgs<'_>,
        arena: &Bump,
    ) -> Result<(), DispatchError> {
        const NAME: &str = "vkEnumeratePhysicalDevices";
        let inst = self.instance(NAME)?;
        if a.instance.raw() != inst.guest {
            return Err(invalid(
                NAME,
                format!("unknown instance {}", a.instance.raw()),
            ));
        }
        let visible = self.visible_physical_devices(&inst);
        if a.p_physical_devices.is_empty() {
            return cx.reply(&Reply::EnumeratePhysicalDevices(
                EnumeratePhysicalDevicesReply {
                    ret: VkResult::SUCCESS,
                    p_physical_device_count: arena.alloc(visible.len() as u32),
                    p_physical_devices: &[],
                },
            ));
        }
        // The client chose the ids; bind them to the host devices in order.
        let n = a.p_physical_devices.len().min(visible.len());
        for (id, pd) in a.p_physical_devices.iter().zip(&visible) {
            self.registry
                .insert(NewObject {
                    guest: id.raw(),
                    ty: handles::PhysicalDevice::OBJECT_TYPE,
                    host: pd.0,
                    owner: Owner::Context,
                    state: State::Plain,
                    teardown: Teardown::Forget,
                })
                .map_err(|e| invalid(NAME, e.to_string()))?;
        }
        let ret = if n < visible.len() {
            VkResult::INCOMPLETE
        } else {
            VkResult::SUCCESS
        };
        cx.reply(&Reply::EnumeratePhysicalDevices(
            EnumeratePhysicalDevicesReply {
                ret,
                p_physical_device_count: arena.alloc(n as u32),
                p_physical_devices: &a.p_physical_devices[..n],
            },
        ))
    }

    /// One group per visible device (the client only needs each device in some group, and
    /// multi-device groups do not travel through this protocol usefully).
    pub(super) fn enumerate_physical_device_groups(
        &self,
        cx: &mut DispatchCx<'_>,
        a: &EnumeratePhysicalDeviceGroupsArgs<'_>,
        arena: &Bump,
    ) -> Result<(), DispatchError> {
        const NAME: &str = "vkEnumeratePhysicalDeviceGroups";
        let inst = self.instance(NAME)?;
        let visible = self.visible_physical_devices(&inst);
        let mut groups = Vec::new();
        for pd in &visible {
            let guest = self
                .registry
                .guest_of(handles::PhysicalDevice::OBJECT_TYPE, pd.0)
                .ok_or_else(|| invalid(NAME, "physical devices must be enumerated first".into()))?;
            let mut g = PhysicalDeviceGroupProperties {
                physical_device_count: 1,
                subset_allocation: 0,
                ..Default::default()
            };
            g.physical_devices[0] = Id::from_raw(guest);
            groups.push(g);
        }
        let want = a.p_physical_device_group_properties;
        let (ret, out): (VkResult, &[PhysicalDeviceGroupProperties<'_>]) = if want.is_empty() {
            (VkResult::SUCCESS, &[])
        } else {
            let n = want.len().min(groups.len());
            // Keep the client's chain skeletons (none are defined for this struct at this level).
            for (g, w) in groups.iter_mut().zip(want) {
                g.p_next = w.p_next;
            }
            let ret = if n < groups.len() {
                VkResult::INCOMPLETE
            } else {
                VkResult::SUCCESS
            };
            (ret, arena.alloc_slice_copy(&groups[..n]))
        };
        let count = if want.is_empty() {
            groups.len()
        } else {
            out.len()
        };
        cx.reply(&Reply::EnumeratePhysicalDeviceGroups(
            EnumeratePhysicalDeviceGroupsReply {
                ret,
                p_physical_device_group_count: arena.alloc(count as u32),
                p_physical_device_group_properties: out,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::DeviceSelector;

    #[test]
    fn selectors() {
        let devs = vec![
            (1, "NVIDIA H100".to_string()),
            (2, "llvmpipe (LLVM 15)".to_string()),
        ];
        assert_eq!(DeviceSelector::parse("").select(&devs), vec![1, 2]);
        assert_eq!(DeviceSelector::parse("1").select(&devs), vec![2]);
        assert_eq!(DeviceSelector::parse("7").select(&devs), Vec::<i32>::new());
        assert_eq!(DeviceSelector::parse("LLVMpipe").select(&devs), vec![2]);
        assert_eq!(DeviceSelector::parse("h100").select(&devs), vec![1]);
    }
}
