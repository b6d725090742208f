//! The Vulkan loader: opened once per process, then instance and device proc tables.
//!
//! The host device comes from the loader's ordinary selection (`VK_DRIVER_FILES`,
//! `VK_ICD_FILENAMES`, layers from `VK_INSTANCE_LAYERS`, ...).

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
}

#[cfg(target_os = "macos")]
const CANDIDATES: &[&str] = &["libvulkan.1.dylib", "libvulkan.dylib", "libMoltenVK.dylib"];
#[cfg(not(target_os = "macos"))]
const CANDIDATES: &[&str] = &["libvulkan.so.1", "libvulkan.so"];

impl Loader {
    /// Opens the system's Vulkan loader (`VENUS_VULKAN_LIBRARY` overrides the file name).
    pub fn open() -> Result<Self, LoaderError> {
        let names: Vec<String> = match std::env::var("VENUS_VULKAN_LIBRARY") {
            Ok(n) => vec![n],
            Err(_) => CANDIDATES.iter().map(|s| s.to_string()).collect(),
        };
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
