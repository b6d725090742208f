//! Instance-level commands whose answers the host decides: its Vulkan version, the two private
//! protocol extensions, instance creation, and the device extension list (the host driver's
//! extensions that the protocol covers, spec versions capped at the protocol's).

use std::sync::Arc;

use bumpalo::Bump;
use venus_host::lower::{Lower, LowerCx};
use venus_host::vk;
use venus_protocol::commands::*;
use venus_protocol::structs::{ExtensionProperties, InstanceCreateInfo};
use venus_protocol::types::{self as t, VkResult};
use venus_protocol::{handles, Handle, Reply};

use crate::portability::InstancePortability;
use crate::registry::{release_subtree, Held, InstanceShared, NewObject, Owner, State, Teardown};
use crate::{invalid, Call, VulkanDispatch};
use venus_renderer::dispatch::{DispatchCx, DispatchError};

/// The highest API version the protocol level can carry (vk.xml 1.3.269).
pub(crate) const PROTOCOL_API_VERSION: u32 = t::VK_XML_VERSION;

fn extension(name: &str, spec: u32) -> ExtensionProperties {
    let mut e = ExtensionProperties {
        spec_version: spec,
        ..Default::default()
    };
    e.extension_name[..name.len()].copy_from_slice(name.as_bytes());
    e
}

/// Fills a count/array pair the Vulkan way: a count query, or up to `capacity` elements with
/// `VK_INCOMPLETE` when some did not fit.
fn fill<'b, T: Copy>(
    all: &[T],
    capacity: usize,
    want_array: bool,
    arena: &'b Bump,
) -> (VkResult, &'b u32, &'b [T]) {
    if !want_array {
        return (VkResult::SUCCESS, arena.alloc(all.len() as u32), &[]);
    }
    let n = capacity.min(all.len());
    let ret = if n < all.len() {
        VkResult::INCOMPLETE
    } else {
        VkResult::SUCCESS
    };
    (
        ret,
        arena.alloc(n as u32),
        arena.alloc_slice_copy(&all[..n]),
    )
}

impl VulkanDispatch {
    pub(super) fn enumerate_instance_version(
        &self,
        cx: &mut DispatchCx<'_>,
    ) -> Result<(), DispatchError> {
        let mut host = 1 << 22; // Vulkan 1.0 loaders have no vkEnumerateInstanceVersion.
        if let Some(f) = self.global.enumerate_instance_version {
            // SAFETY: a global command with a valid out pointer.
            unsafe { f(&mut host) };
        }
        let version = host.min(PROTOCOL_API_VERSION);
        cx.reply(&Reply::EnumerateInstanceVersion(
            EnumerateInstanceVersionReply {
                ret: VkResult::SUCCESS,
                p_api_version: &version,
            },
        ))
    }

    /// Exactly the two private extensions: the client strips everything else anyway.
    pub(super) fn enumerate_instance_extensions(
        &self,
        cx: &mut DispatchCx<'_>,
        a: &EnumerateInstanceExtensionPropertiesArgs<'_>,
    ) -> Result<(), DispatchError> {
        if a.p_layer_name.is_some() {
            let none: &[ExtensionProperties] = &[];
            return cx.reply(&Reply::EnumerateInstanceExtensionProperties(
                EnumerateInstanceExtensionPropertiesReply {
                    ret: VkResult::ERROR_LAYER_NOT_PRESENT,
                    p_property_count: &0,
                    p_properties: none,
                },
            ));
        }
        let all = [
            extension(
                "VK_EXT_command_serialization",
                t::COMMAND_SERIALIZATION_SPEC_VERSION,
            ),
            extension("VK_MESA_venus_protocol", t::VENUS_PROTOCOL_SPEC_VERSION),
        ];
        let arena = Bump::new();
        let (ret, count, props) = fill(
            &all,
            a.p_properties.len(),
            !a.p_properties.is_empty(),
            &arena,
        );
        cx.reply(&Reply::EnumerateInstanceExtensionProperties(
            EnumerateInstanceExtensionPropertiesReply {
                ret,
                p_property_count: count,
                p_properties: props,
            },
        ))
    }

    pub(super) fn create_instance(
        &self,
        call: &mut Call<'_, '_>,
        a: &CreateInstanceArgs<'_>,
    ) -> Result<(), DispatchError> {
        let mut slot = self.instance.write().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            return Err(call.invalid("a context has exactly one VkInstance"));
        }
        // The client strips its extensions and layers; the host enables what it needs itself.
        let mut info: InstanceCreateInfo<'_> = *a.p_create_info;
        info.enabled_layer_count = 0;
        info.pp_enabled_layer_names = &[];
        info.enabled_extension_count = 0;
        info.pp_enabled_extension_names = &[];
        let held = Held::new(&self.registry);
        let mut lcx = LowerCx::new(call.arena, &held);
        let mut c_info = info.lower(&mut lcx).map_err(|e| call.invalid(e))?;
        // A portability driver (MoltenVK) is enumerated only with this (see `portability`).
        let portability = InstancePortability::new(&self.global);
        portability.apply(&mut c_info);
        let create = self
            .global
            .create_instance
            .ok_or(DispatchError::Unsupported(call.name))?;
        let mut host = vk::Instance::NULL;
        // SAFETY: `c_info` and what it points to live in the arena, `portability` and `a` for
        // the call.
        let ret = unsafe { create(&c_info, std::ptr::null(), &mut host) };
        if ret == VkResult::SUCCESS {
            let stats = self.registry.stats_handle();
            stats.created();
            let inst = Arc::new(InstanceShared {
                guest: a.p_instance.raw(),
                host,
                procs: self.loader.instance_procs(host),
                stats,
            });
            self.registry
                .insert(NewObject {
                    guest: inst.guest,
                    ty: handles::Instance::OBJECT_TYPE,
                    host: host.0,
                    owner: Owner::Context,
                    state: State::Instance(Arc::clone(&inst)),
                    teardown: Teardown::Forget,
                })
                .map_err(|e| call.invalid(e))?;
            *slot = Some(inst);
        } else {
            tracing::warn!(context = %self.context, ?ret, "host vkCreateInstance failed");
        }
        drop(slot);
        call.cx.reply(&Reply::CreateInstance(CreateInstanceReply {
            ret,
            p_instance: a.p_instance,
        }))
    }

    /// Unbinds everything (a client that destroys its instance with devices alive gets them
    /// destroyed too, newest first); the instance goes with its last device.
    pub(super) fn destroy_instance(
        &self,
        call: &mut Call<'_, '_>,
        a: &DestroyInstanceArgs,
    ) -> Result<(), DispatchError> {
        let mut slot = self.instance.write().unwrap_or_else(|e| e.into_inner());
        let Some(inst) = slot.as_ref() else {
            return Err(call.invalid("no VkInstance"));
        };
        if inst.guest != a.instance.raw() {
            return Err(call.invalid(format!("unknown instance {}", a.instance.raw())));
        }
        slot.take();
        drop(slot);
        let gone = self.registry.drain();
        let devices = gone
            .iter()
            .filter(|o| o.ty == handles::Device::OBJECT_TYPE)
            .count();
        if devices > 0 {
            tracing::info!(
                ctx = self.context_id,
                devices,
                "instance destroyed with live devices"
            );
        }
        release_subtree(gone);
        call.cx
            .reply(&Reply::DestroyInstance(DestroyInstanceReply {}))
    }

    /// The host's extensions of physical device `pd` (host handle), as the driver lists them.
    pub(crate) fn host_device_extensions(
        &self,
        inst: &InstanceShared,
        pd: vk::PhysicalDevice,
    ) -> Vec<ExtensionProperties> {
        let Some(f) = inst.procs.enumerate_device_extension_properties else {
            return Vec::new();
        };
        let mut n = 0u32;
        // SAFETY: `pd` is a live physical device of `inst`; count query with NULL array.
        unsafe { f(pd, std::ptr::null(), &mut n, std::ptr::null_mut()) };
        let mut c = vec![venus_host::vk::ExtensionProperties::default(); n as usize];
        // SAFETY: `c` has room for `n` elements.
        unsafe { f(pd, std::ptr::null(), &mut n, c.as_mut_ptr()) };
        c.truncate(n as usize);
        c.iter()
            .map(|e| {
                let mut name = [0u8; 256];
                for (d, s) in name.iter_mut().zip(e.extension_name.iter()) {
                    *d = *s as u8;
                }
                name[255] = 0;
                ExtensionProperties {
                    extension_name: name,
                    spec_version: e.spec_version,
                }
            })
            .collect()
    }

    /// The host driver's extensions that the protocol serializes, spec versions capped.
    pub(super) fn enumerate_device_extensions<'b>(
        &self,
        cx: &mut DispatchCx<'_>,
        a: &EnumerateDeviceExtensionPropertiesArgs<'b>,
        arena: &Bump,
    ) -> Result<(), DispatchError> {
        const NAME: &str = "vkEnumerateDeviceExtensionProperties";
        let inst = self.instance(NAME)?;
        let held = Held::new(&self.registry);
        let pd = LowerCx::new(arena, &held)
            .host(a.physical_device)
            .map_err(|e| invalid(NAME, e.to_string()))?;
        if a.p_layer_name.is_some() {
            let none: &[ExtensionProperties] = &[];
            return cx.reply(&Reply::EnumerateDeviceExtensionProperties(
                EnumerateDeviceExtensionPropertiesReply {
                    ret: VkResult::ERROR_LAYER_NOT_PRESENT,
                    p_property_count: &0,
                    p_properties: none,
                },
            ));
        }
        let pd = vk::PhysicalDevice(pd);
        let mut supported = supported_extensions(&self.host_device_extensions(&inst, pd));
        for e in self.profile(&inst, pd).advertised() {
            if !supported
                .iter()
                .any(|s| s.extension_name == e.extension_name)
            {
                supported.push(e);
            }
        }
        let (ret, count, props) = fill(
            &supported,
            a.p_properties.len(),
            !a.p_properties.is_empty(),
            arena,
        );
        cx.reply(&Reply::EnumerateDeviceExtensionProperties(
            EnumerateDeviceExtensionPropertiesReply {
                ret,
                p_property_count: count,
                p_properties: props,
            },
        ))
    }
}

/// `host` ∩ the protocol's extension table minus `NOT_ADVERTISED`, with spec versions capped
/// at the protocol's.
pub(crate) fn supported_extensions(host: &[ExtensionProperties]) -> Vec<ExtensionProperties> {
    host.iter()
        .filter_map(|e| {
            let name = std::str::from_utf8(
                &e.extension_name[..e.extension_name.iter().position(|&b| b == 0)?],
            )
            .ok()?;
            let proto = t::EXTENSIONS.iter().find(|x| x.name == name)?;
            if t::NOT_ADVERTISED.contains(&name) {
                return None;
            }
            Some(ExtensionProperties {
                extension_name: e.extension_name,
                spec_version: e.spec_version.min(proto.spec_version),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_extensions_are_filtered_and_capped() {
        let host = [
            extension("VK_KHR_swapchain", 70),
            extension("VK_KHR_maintenance5", 99),
            extension("VK_NV_unknown", 1),
        ];
        let s = supported_extensions(&host);
        assert_eq!(
            s.len(),
            1,
            "swapchain is the client's own; unknown ones are not in the protocol"
        );
        assert_eq!(&s[0].extension_name[..19], b"VK_KHR_maintenance5");
        assert_eq!(s[0].spec_version, 1);
    }

    #[test]
    fn fill_follows_vulkan_count_semantics() {
        let arena = Bump::new();
        let all = [1u32, 2, 3];
        let (r, n, v) = fill(&all, 0, false, &arena);
        assert_eq!((r, *n, v.len()), (VkResult::SUCCESS, 3, 0));
        let (r, n, v) = fill(&all, 2, true, &arena);
        assert_eq!((r, *n, v), (VkResult::INCOMPLETE, 2, &[1, 2][..]));
        let (r, n, v) = fill(&all, 5, true, &arena);
        assert_eq!((r, *n, v), (VkResult::SUCCESS, 3, &[1, 2, 3][..]));
    }
}
