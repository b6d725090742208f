//! The Vulkan loader: opened once per process, then instance and device proc tables.
//!
//! The host device comes from the loader's ordinary selection (`VK_DRIVER_FILES`,
//! `VK_ICD_FILENAMES`, layers from `VK_INSTANCE_LAYERS`, ...).
//!
//! Which library is opened ([`candidates`]): `VENUS_VULKAN_LIBRARY` alone when set; else on
//! Linux `libvulkan.so.1`, `libvulkan.so`; on macOS the loader by its install name
//! (`libvulkan.1.dylib`, found through the dyld search path), then the LunarG SDK's
//! (`$VULKAN_SDK/lib`, and `/usr/local/lib` where its installer puts it system-wide), then
//! Homebrew's (`/opt/homebrew/lib` on Apple silicon, `/usr/local/lib` on Intel), and last
//! `libMoltenVK.dylib` itself (an ICD that exports `vkGetInstanceProcAddr`, without the
//! loader's layers). The Homebrew and SDK loaders find their ICD manifests under their own
//! `etc/vulkan/icd.d` (`share/vulkan/icd.d`); `VK_DRIVER_FILES` overrides as on Linux.

use core::ffi::{c_char, c_void, CStr};

use crate::generated::procs::{DeviceProcs, InstanceProcs};
use crate::vk;

/// `vkGetInstanceProcAddr`.
pub type PfnGetInstanceProcAddr =
    unsafe extern "system" fn(instance: vk::Instance, name: *const c_char) -> *const c_void;
/// `vkGetDeviceProcAddr`.
pub type PfnGetDeviceProcAddr =
    unsafe extern "system" fn(device: vk::Device, name: *const c_char) -> *const c_void;

#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    #[error("cannot open the Vulkan loader ({tried}): {source}")]
    Open {
        tried: String,
        source: libloading::Error,
    },
    #[error("the Vulkan loader has no vkGetInstanceProcAddr: {0}")]
    Symbol(libloading::Error),
}

/// The opened Vulkan loader library.
pub struct Loader {
    // Keeps the library mapped for as long as any proc pointer is used.
    _lib: libloading::Library,
    get_instance_proc_addr: PfnGetInstanceProcAddr,
    library: String,
}

/// The libraries [`Loader::open`] tries, in order, on this host (see the module doc).
pub fn candidates() -> Vec<String> {
    candidate_list(
        std::env::var("VENUS_VULKAN_LIBRARY").ok().as_deref(),
        std::env::var("VULKAN_SDK").ok().as_deref(),
        cfg!(target_os = "macos"),
    )
}

/// [`candidates`] for an override, a `VULKAN_SDK` and a platform (testable anywhere).
fn candidate_list(override_name: Option<&str>, sdk: Option<&str>, macos: bool) -> Vec<String> {
    if let Some(n) = override_name.filter(|n| !n.is_empty()) {
        return vec![n.to_owned()];
    }
    if !macos {
        return vec!["libvulkan.so.1".into(), "libvulkan.so".into()];
    }
    let mut v = vec!["libvulkan.1.dylib".to_owned()];
    if let Some(sdk) = sdk.filter(|s| !s.is_empty()) {
        v.push(format!(
            "{}/lib/libvulkan.1.dylib",
            sdk.trim_end_matches('/')
        ));
    }
    v.extend(
        [
            "/usr/local/lib/libvulkan.1.dylib",
            "/opt/homebrew/lib/libvulkan.1.dylib",
            "libvulkan.dylib",
            "libMoltenVK.dylib",
            "/opt/homebrew/lib/libMoltenVK.dylib",
            "/usr/local/lib/libMoltenVK.dylib",
        ]
        .map(String::from),
    );
    v
}

impl Loader {
    /// Opens the system's Vulkan loader, the first of [`candidates`] that loads.
    pub fn open() -> Result<Self, LoaderError> {
        let names = candidates();
        let mut last = None;
        for name in &names {
            // SAFETY: loading the Vulkan loader runs its initialisers, which have no
            // preconditions on our side; we never unload it while procs are in use (`_lib`).
            match unsafe { libloading::Library::new(name) } {
                Ok(lib) => {
                    // SAFETY: `vkGetInstanceProcAddr` has exactly the PfnGetInstanceProcAddr signature.
                    let sym =
                        unsafe { lib.get::<PfnGetInstanceProcAddr>(b"vkGetInstanceProcAddr\0") }
                            .map_err(LoaderError::Symbol)?;
                    let get_instance_proc_addr = *sym;
                    return Ok(Loader {
                        _lib: lib,
                        get_instance_proc_addr,
                        library: name.clone(),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(LoaderError::Open {
            tried: names.join(", "),
            source: last.expect("at least one candidate"),
        })
    }

    /// The library that was opened (as named in [`candidates`]).
    pub fn library(&self) -> &str {
        &self.library
    }

    /// `vkGetInstanceProcAddr(instance, name)` as a raw address (NULL if absent).
    pub fn instance_proc(&self, instance: vk::Instance, name: &CStr) -> *const c_void {
        // SAFETY: `name` is NUL-terminated; `instance` is NULL (global commands) or an instance
        // created through this loader and not yet destroyed (the caller's object table ensures it).
        unsafe { (self.get_instance_proc_addr)(instance, name.as_ptr()) }
    }

    /// The global commands (`vkCreateInstance`, `vkEnumerateInstance*`).
    pub fn global_procs(&self) -> InstanceProcs {
        InstanceProcs::load(|name| self.instance_proc(vk::Instance::NULL, name))
    }

    /// Every instance-level entry point of `instance`.
    pub fn instance_procs(&self, instance: vk::Instance) -> InstanceProcs {
        InstanceProcs::load(|name| self.instance_proc(instance, name))
    }

    /// Every device-level entry point of `device` (through `vkGetDeviceProcAddr`).
    pub fn device_procs(&self, instance: vk::Instance, device: vk::Device) -> DeviceProcs {
        let gdpa = self.instance_proc(instance, c"vkGetDeviceProcAddr");
        if gdpa.is_null() {
            return DeviceProcs::load(|name| self.instance_proc(instance, name));
        }
        // SAFETY: the loader returned the address of vkGetDeviceProcAddr, whose signature is
        // PfnGetDeviceProcAddr.
        let gdpa = unsafe { core::mem::transmute::<*const c_void, PfnGetDeviceProcAddr>(gdpa) };
        DeviceProcs::load(|name| {
            // SAFETY: `device` is a live device created from `instance`; `name` is NUL-terminated.
            unsafe { gdpa(device, name.as_ptr()) }
        })
    }

    /// A raw proc address, for the few host-only commands that have no protocol form.
    pub fn raw_instance_proc(&self, instance: vk::Instance, name: &CStr) -> *const c_void {
        self.instance_proc(instance, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_wins_everywhere() {
        for macos in [false, true] {
            assert_eq!(
                candidate_list(Some("/x/libvk.so"), Some("/sdk"), macos),
                ["/x/libvk.so"]
            );
        }
        assert_eq!(candidate_list(Some(""), None, false)[0], "libvulkan.so.1");
    }

    #[test]
    fn linux_and_macos_lists() {
        assert_eq!(
            candidate_list(None, Some("/sdk"), false),
            ["libvulkan.so.1", "libvulkan.so"]
        );
        let mac = candidate_list(None, Some("/Users/me/VulkanSDK/1.4/macOS/"), true);
        assert_eq!(mac[0], "libvulkan.1.dylib");
        assert_eq!(
            mac[1],
            "/Users/me/VulkanSDK/1.4/macOS/lib/libvulkan.1.dylib"
        );
        assert!(mac.contains(&"/opt/homebrew/lib/libvulkan.1.dylib".to_owned()));
        let loader = mac.iter().position(|n| n.contains("libvulkan")).unwrap();
        let icd = mac.iter().position(|n| n.contains("MoltenVK")).unwrap();
        assert!(
            loader < icd,
            "the loader comes before MoltenVK itself: {mac:?}"
        );
        assert_eq!(candidate_list(None, None, true).len(), mac.len() - 1);
    }
}
