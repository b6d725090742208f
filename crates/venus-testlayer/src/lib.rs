//! `VK_LAYER_VENUS_portability_emulation`: a Vulkan layer (this crate's cdylib) that makes the
//! device under it (lavapipe in CI) look like MoltenVK on Apple silicon, so that the server's
//! Apple path runs on Linux (issue 13). See `docs/testlayer.md`.
//!
//! What it does, above the driver:
//! - `vkEnumerateDeviceExtensionProperties` also lists `VK_KHR_portability_subset` (spec 1);
//! - `vkGetPhysicalDeviceFeatures2` fills `VkPhysicalDevicePortabilitySubsetFeaturesKHR` with
//!   [`MOLTENVK_FEATURES`], `vkGetPhysicalDeviceProperties2` fills
//!   `VkPhysicalDevicePortabilitySubsetPropertiesKHR` (stride alignment 4);
//! - `vkCreateDevice` requires `VK_KHR_portability_subset` among the enabled extensions
//!   (otherwise `VK_ERROR_INITIALIZATION_FAILED` and one stderr line starting with
//!   [`STDERR_PREFIX`]), refuses subset features that are false, and strips the extension and
//!   the subset feature struct before calling the driver;
//! - `vkCreateGraphicsPipelines` refuses `VK_PRIMITIVE_TOPOLOGY_TRIANGLE_FAN` and vertex
//!   binding strides that are not a multiple of 4 (stderr line, `VK_ERROR_FEATURE_NOT_PRESENT`);
//! - with `VENUS_TESTLAYER_STRICT_ENUMERATION=1`, `vkEnumeratePhysicalDevices` returns no device
//!   unless the instance was created with `VK_KHR_portability_enumeration` enabled and
//!   `VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR` set (what the loader does for a
//!   portability driver such as MoltenVK).
//!
//! Everything else passes through the next layer's `vkGetInstanceProcAddr` /
//! `vkGetDeviceProcAddr`. Dispatch data is kept per loader key (the first pointer-sized word of a
//! dispatchable handle), as every layer does.
//!
//! The loader-layer interface (`vk_layer.h`) is not in `vk.xml`, so ash lacks its structs; the
//! few needed are declared here.

use std::collections::HashMap;
use std::ffi::{c_char, c_void, CStr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};

use ash::vk::{self, Handle};

/// The layer's name, as in its manifest.
pub const LAYER_NAME: &CStr = c"VK_LAYER_VENUS_portability_emulation";
/// The device extension the layer adds.
pub const PORTABILITY_SUBSET: &CStr = c"VK_KHR_portability_subset";
/// The instance extension a portability driver needs enabled (implemented by the loader).
pub const PORTABILITY_ENUMERATION: &CStr = c"VK_KHR_portability_enumeration";
/// Every stderr line the layer writes starts with this.
pub const STDERR_PREFIX: &str = "venus-testlayer:";
/// Environment variable: `1` hides the devices from instances created without portability
/// enumeration (extension and flag).
pub const STRICT_ENUMERATION_VAR: &str = "VENUS_TESTLAYER_STRICT_ENUMERATION";
/// The manifest's file name; its text is [`MANIFEST`].
pub const MANIFEST_FILE: &str = "VkLayer_venus_portability.json";
/// The committed manifest (its `library_path` is `../../target/debug/libvenus_testlayer.so`,
/// relative to the manifest's directory `crates/venus-testlayer/`).
pub const MANIFEST: &str = include_str!("../VkLayer_venus_portability.json");
/// `library_path` of the committed manifest.
pub const MANIFEST_LIBRARY_PATH: &str = "../../target/debug/libvenus_testlayer.so";

/// The manifest text with another `library_path` (relative to the manifest, or absolute):
/// for a copy of the manifest next to a library built elsewhere (`CARGO_TARGET_DIR`, release).
pub fn manifest_with_library_path(library_path: &str) -> String {
    MANIFEST.replace(MANIFEST_LIBRARY_PATH, library_path)
}

/// The portability-subset features of MoltenVK on Apple silicon (sources in
/// `docs/testlayer.md`): false is what a Mac lacks.
pub const MOLTENVK_FEATURES: vk::PhysicalDevicePortabilitySubsetFeaturesKHR<'static> =
    vk::PhysicalDevicePortabilitySubsetFeaturesKHR {
        s_type: vk::StructureType::PHYSICAL_DEVICE_PORTABILITY_SUBSET_FEATURES_KHR,
        p_next: std::ptr::null_mut(),
        constant_alpha_color_blend_factors: vk::TRUE,
        events: vk::TRUE,
        image_view_format_reinterpretation: vk::TRUE,
        image_view_format_swizzle: vk::TRUE,
        image_view2_d_on3_d_image: vk::FALSE,
        multisample_array_image: vk::TRUE,
        mutable_comparison_samplers: vk::TRUE,
        point_polygons: vk::FALSE,
        sampler_mip_lod_bias: vk::FALSE,
        separate_stencil_mask_ref: vk::TRUE,
        shader_sample_rate_interpolation_functions: vk::TRUE,
        tessellation_isolines: vk::FALSE,
        tessellation_point_mode: vk::FALSE,
        triangle_fans: vk::FALSE,
        vertex_attribute_access_beyond_stride: vk::TRUE,
        _marker: std::marker::PhantomData,
    };

/// `VkPhysicalDevicePortabilitySubsetPropertiesKHR::minVertexInputBindingStrideAlignment`.
pub const MIN_VERTEX_INPUT_BINDING_STRIDE_ALIGNMENT: u32 = 4;

/// The features of [`MOLTENVK_FEATURES`] by name, in declaration order.
pub fn feature_list(
    f: &vk::PhysicalDevicePortabilitySubsetFeaturesKHR<'_>,
) -> [(&'static str, vk::Bool32); 15] {
    [
        (
            "constantAlphaColorBlendFactors",
            f.constant_alpha_color_blend_factors,
        ),
        ("events", f.events),
        (
            "imageViewFormatReinterpretation",
            f.image_view_format_reinterpretation,
        ),
        ("imageViewFormatSwizzle", f.image_view_format_swizzle),
        ("imageView2DOn3DImage", f.image_view2_d_on3_d_image),
        ("multisampleArrayImage", f.multisample_array_image),
        ("mutableComparisonSamplers", f.mutable_comparison_samplers),
        ("pointPolygons", f.point_polygons),
        ("samplerMipLodBias", f.sampler_mip_lod_bias),
        ("separateStencilMaskRef", f.separate_stencil_mask_ref),
        (
            "shaderSampleRateInterpolationFunctions",
            f.shader_sample_rate_interpolation_functions,
        ),
        ("tessellationIsolines", f.tessellation_isolines),
        ("tessellationPointMode", f.tessellation_point_mode),
        ("triangleFans", f.triangle_fans),
        (
            "vertexAttributeAccessBeyondStride",
            f.vertex_attribute_access_beyond_stride,
        ),
    ]
}

// --- The loader-layer interface (vk_layer.h) -------------------------------------------------

/// `LAYER_NEGOTIATE_INTERFACE_STRUCT`.
const LAYER_NEGOTIATE_INTERFACE_STRUCT: u32 = 1;
/// `VK_LAYER_LINK_INFO`.
const VK_LAYER_LINK_INFO: u32 = 0;

/// `VkNegotiateLayerInterface`.
#[repr(C)]
pub struct NegotiateLayerInterface {
    s_type: u32,
    p_next: *mut c_void,
    loader_layer_interface_version: u32,
    pfn_get_instance_proc_addr: Option<vk::PFN_vkGetInstanceProcAddr>,
    pfn_get_device_proc_addr: Option<vk::PFN_vkGetDeviceProcAddr>,
    pfn_get_physical_device_proc_addr: vk::PFN_vkVoidFunction,
}

/// `VkLayerInstanceLink`.
#[repr(C)]
struct LayerInstanceLink {
    p_next: *mut LayerInstanceLink,
    pfn_next_get_instance_proc_addr: vk::PFN_vkGetInstanceProcAddr,
    pfn_next_get_physical_device_proc_addr: vk::PFN_vkVoidFunction,
}

/// `VkLayerDeviceLink`.
#[repr(C)]
struct LayerDeviceLink {
    p_next: *mut LayerDeviceLink,
    pfn_next_get_instance_proc_addr: vk::PFN_vkGetInstanceProcAddr,
    pfn_next_get_device_proc_addr: vk::PFN_vkGetDeviceProcAddr,
}

/// `VkLayerInstanceCreateInfo` / `VkLayerDeviceCreateInfo`: the union's first member is the
/// link pointer (`function == VK_LAYER_LINK_INFO`); the union is two pointers wide.
#[repr(C)]
struct LayerCreateInfo<L> {
    s_type: vk::StructureType,
    p_next: *const c_void,
    function: u32,
    u: [*mut L; 2],
}

// --- Dispatch data ---------------------------------------------------------------------------

type Key = usize;

/// The loader key of a dispatchable handle.
///
/// # Safety
/// `raw` is a live dispatchable handle created through the loader.
unsafe fn key_of(raw: u64) -> Key {
    // SAFETY: dispatchable handles point at an object whose first word is the loader's
    // dispatch pointer (the caller guarantees the handle is live).
    unsafe { *(raw as usize as *const usize) }
}

/// Loads `name` through `gipa`, transmuted to `F`.
///
/// # Safety
/// `F` must be the function-pointer type of `name`.
unsafe fn load_instance<F: Copy>(
    gipa: vk::PFN_vkGetInstanceProcAddr,
    instance: vk::Instance,
    name: &CStr,
) -> Option<F> {
    // SAFETY: `gipa` is the next layer's entry point, `name` is NUL-terminated.
    let f = unsafe { gipa(instance, name.as_ptr()) }?;
    assert_eq!(size_of::<F>(), size_of::<unsafe extern "system" fn()>());
    // SAFETY: the caller names the matching function-pointer type; sizes are equal.
    Some(unsafe { std::mem::transmute_copy::<unsafe extern "system" fn(), F>(&f) })
}

/// Loads `name` through `gdpa`, transmuted to `F`.
///
/// # Safety
/// `F` must be the function-pointer type of `name`.
unsafe fn load_device<F: Copy>(
    gdpa: vk::PFN_vkGetDeviceProcAddr,
    device: vk::Device,
    name: &CStr,
) -> Option<F> {
    // SAFETY: `gdpa` is the next layer's entry point, `name` is NUL-terminated.
    let f = unsafe { gdpa(device, name.as_ptr()) }?;
    assert_eq!(size_of::<F>(), size_of::<unsafe extern "system" fn()>());
    // SAFETY: the caller names the matching function-pointer type; sizes are equal.
    Some(unsafe { std::mem::transmute_copy::<unsafe extern "system" fn(), F>(&f) })
}

struct InstanceData {
    gipa: vk::PFN_vkGetInstanceProcAddr,
    destroy_instance: Option<vk::PFN_vkDestroyInstance>,
    enumerate_physical_devices: Option<vk::PFN_vkEnumeratePhysicalDevices>,
    enumerate_device_extension_properties: Option<vk::PFN_vkEnumerateDeviceExtensionProperties>,
    get_features2: Option<vk::PFN_vkGetPhysicalDeviceFeatures2>,
    get_features2_khr: Option<vk::PFN_vkGetPhysicalDeviceFeatures2>,
    get_properties2: Option<vk::PFN_vkGetPhysicalDeviceProperties2>,
    get_properties2_khr: Option<vk::PFN_vkGetPhysicalDeviceProperties2>,
    create_device: Option<vk::PFN_vkCreateDevice>,
    /// Portability enumeration was asked for (extension and flag).
    portability_enumeration: bool,
}

struct DeviceData {
    gdpa: vk::PFN_vkGetDeviceProcAddr,
    destroy_device: Option<vk::PFN_vkDestroyDevice>,
    create_graphics_pipelines: Option<vk::PFN_vkCreateGraphicsPipelines>,
}

static INSTANCES: Mutex<Option<HashMap<Key, Arc<InstanceData>>>> = Mutex::new(None);
static DEVICES: Mutex<Option<HashMap<Key, Arc<DeviceData>>>> = Mutex::new(None);

fn lock<T>(
    m: &'static Mutex<Option<HashMap<Key, T>>>,
) -> MutexGuard<'static, Option<HashMap<Key, T>>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn instance_data(key: Key) -> Option<Arc<InstanceData>> {
    lock(&INSTANCES).as_ref()?.get(&key).cloned()
}

fn device_data(key: Key) -> Option<Arc<DeviceData>> {
    lock(&DEVICES).as_ref()?.get(&key).cloned()
}

fn report(line: &str) {
    eprintln!("{STDERR_PREFIX} {line}");
}

// --- Entry points ----------------------------------------------------------------------------

/// The loader's entry into the layer (interface version 2).
///
/// # Safety
/// Called by the Vulkan loader with a valid `VkNegotiateLayerInterface`.
#[no_mangle]
pub unsafe extern "system" fn vkNegotiateLoaderLayerInterfaceVersion(
    p_version_struct: *mut NegotiateLayerInterface,
) -> vk::Result {
    // SAFETY: the loader passes a valid, writable struct (or null, checked).
    let Some(v) = (unsafe { p_version_struct.as_mut() }) else {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    if v.s_type != LAYER_NEGOTIATE_INTERFACE_STRUCT || v.loader_layer_interface_version < 2 {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    }
    v.loader_layer_interface_version = 2;
    v.pfn_get_instance_proc_addr = Some(get_instance_proc_addr);
    v.pfn_get_device_proc_addr = Some(get_device_proc_addr);
    v.pfn_get_physical_device_proc_addr = None;
    vk::Result::SUCCESS
}

fn as_void(f: *const ()) -> vk::PFN_vkVoidFunction {
    // SAFETY: `f` is one of this layer's `extern "system"` functions (see `intercept`); the
    // loader casts it back to the type of the name it asked for.
    Some(unsafe { std::mem::transmute::<*const (), unsafe extern "system" fn()>(f) })
}

/// This layer's own function for `name`, if it intercepts it.
fn intercept(name: &CStr) -> vk::PFN_vkVoidFunction {
    let f: *const () = match name.to_bytes() {
        b"vkGetInstanceProcAddr" => get_instance_proc_addr as *const (),
        b"vkGetDeviceProcAddr" => get_device_proc_addr as *const (),
        b"vkCreateInstance" => create_instance as *const (),
        b"vkDestroyInstance" => destroy_instance as *const (),
        b"vkEnumeratePhysicalDevices" => enumerate_physical_devices as *const (),
        b"vkEnumerateDeviceExtensionProperties" => {
            enumerate_device_extension_properties as *const ()
        }
        b"vkGetPhysicalDeviceFeatures2" => get_features2 as *const (),
        b"vkGetPhysicalDeviceFeatures2KHR" => get_features2_khr as *const (),
        b"vkGetPhysicalDeviceProperties2" => get_properties2 as *const (),
        b"vkGetPhysicalDeviceProperties2KHR" => get_properties2_khr as *const (),
        b"vkCreateDevice" => create_device as *const (),
        b"vkDestroyDevice" => destroy_device as *const (),
        b"vkCreateGraphicsPipelines" => create_graphics_pipelines as *const (),
        _ => return None,
    };
    as_void(f)
}

unsafe extern "system" fn get_instance_proc_addr(
    instance: vk::Instance,
    p_name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    if p_name.is_null() {
        return None;
    }
    // SAFETY: the loader passes a NUL-terminated name.
    let name = unsafe { CStr::from_ptr(p_name) };
    if let Some(f) = intercept(name) {
        return Some(f);
    }
    if instance == vk::Instance::null() {
        return None;
    }
    // SAFETY: a non-null instance passed to GetInstanceProcAddr is live.
    let data = instance_data(unsafe { key_of(instance.as_raw()) })?;
    // SAFETY: the next layer's entry point with its own instance.
    unsafe { (data.gipa)(instance, p_name) }
}

unsafe extern "system" fn get_device_proc_addr(
    device: vk::Device,
    p_name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    if p_name.is_null() || device == vk::Device::null() {
        return None;
    }
    // SAFETY: the loader passes a NUL-terminated name.
    let name = unsafe { CStr::from_ptr(p_name) };
    match name.to_bytes() {
        b"vkGetDeviceProcAddr" | b"vkDestroyDevice" | b"vkCreateGraphicsPipelines" => {
            return intercept(name)
        }
        _ => {}
    }
    // SAFETY: a non-null device passed to GetDeviceProcAddr is live.
    let data = device_data(unsafe { key_of(device.as_raw()) })?;
    // SAFETY: the next layer's entry point with its own device.
    unsafe { (data.gdpa)(device, p_name) }
}

/// Finds the loader's link info (`sType`, `VK_LAYER_LINK_INFO`) in a create info's chain.
///
/// # Safety
/// `p_next` is a valid Vulkan structure chain.
unsafe fn find_link<L>(
    p_next: *const c_void,
    s_type: vk::StructureType,
) -> *mut LayerCreateInfo<L> {
    let mut p = p_next as *const vk::BaseInStructure<'static>;
    while !p.is_null() {
        // SAFETY: every structure in a valid chain starts with sType and pNext.
        let base = unsafe { &*p };
        if base.s_type == s_type {
            let info = p as *mut LayerCreateInfo<L>;
            // SAFETY: a structure of this sType is a `VkLayer*CreateInfo`.
            if unsafe { (*info).function } == VK_LAYER_LINK_INFO {
                return info;
            }
        }
        p = base.p_next;
    }
    std::ptr::null_mut()
}

fn has_name(names: *const *const c_char, count: u32, wanted: &CStr) -> bool {
    if names.is_null() {
        return false;
    }
    // SAFETY: the application passes `count` valid NUL-terminated strings.
    let names = unsafe { std::slice::from_raw_parts(names, count as usize) };
    names
        .iter()
        // SAFETY: each is a NUL-terminated string (application contract).
        .any(|&n| !n.is_null() && unsafe { CStr::from_ptr(n) } == wanted)
}

unsafe extern "system" fn create_instance(
    p_create_info: *const vk::InstanceCreateInfo<'_>,
    p_allocator: *const vk::AllocationCallbacks<'_>,
    p_instance: *mut vk::Instance,
) -> vk::Result {
    // SAFETY: the loader passes a valid create info.
    let info = unsafe { &*p_create_info };
    // SAFETY: the chain is valid (application and loader contract).
    let link = unsafe {
        find_link::<LayerInstanceLink>(info.p_next, vk::StructureType::LOADER_INSTANCE_CREATE_INFO)
    };
    if link.is_null() {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    }
    // SAFETY: the loader's link info holds a valid link list; advancing it for the next layer
    // is what the loader interface requires of each layer.
    let gipa = unsafe {
        let this = (*link).u[0];
        let gipa = (*this).pfn_next_get_instance_proc_addr;
        (*link).u[0] = (*this).p_next;
        gipa
    };
    // SAFETY: the type matches the name.
    let Some(next_create) = (unsafe {
        load_instance::<vk::PFN_vkCreateInstance>(gipa, vk::Instance::null(), c"vkCreateInstance")
    }) else {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    // SAFETY: forwarding the caller's arguments.
    let r = unsafe { next_create(p_create_info, p_allocator, p_instance) };
    if r != vk::Result::SUCCESS {
        return r;
    }
    // SAFETY: creation succeeded, so `*p_instance` is the new instance.
    let instance = unsafe { *p_instance };
    let portability_enumeration = info
        .flags
        .contains(vk::InstanceCreateFlags::ENUMERATE_PORTABILITY_KHR)
        && has_name(
            info.pp_enabled_extension_names,
            info.enabled_extension_count,
            PORTABILITY_ENUMERATION,
        );
    // SAFETY: each load names the function-pointer type of its command.
    let data = unsafe {
        InstanceData {
            gipa,
            destroy_instance: load_instance(gipa, instance, c"vkDestroyInstance"),
            enumerate_physical_devices: load_instance(
                gipa,
                instance,
                c"vkEnumeratePhysicalDevices",
            ),
            enumerate_device_extension_properties: load_instance(
                gipa,
                instance,
                c"vkEnumerateDeviceExtensionProperties",
            ),
            get_features2: load_instance(gipa, instance, c"vkGetPhysicalDeviceFeatures2"),
            get_features2_khr: load_instance(gipa, instance, c"vkGetPhysicalDeviceFeatures2KHR"),
            get_properties2: load_instance(gipa, instance, c"vkGetPhysicalDeviceProperties2"),
            get_properties2_khr: load_instance(
                gipa,
                instance,
                c"vkGetPhysicalDeviceProperties2KHR",
            ),
            create_device: load_instance(gipa, instance, c"vkCreateDevice"),
            portability_enumeration,
        }
    };
    // SAFETY: the instance was just created.
    let key = unsafe { key_of(instance.as_raw()) };
    lock(&INSTANCES)
        .get_or_insert_with(HashMap::new)
        .insert(key, Arc::new(data));
    vk::Result::SUCCESS
}

unsafe extern "system" fn destroy_instance(
    instance: vk::Instance,
    p_allocator: *const vk::AllocationCallbacks<'_>,
) {
    if instance == vk::Instance::null() {
        return;
    }
    // SAFETY: a non-null instance being destroyed is still live.
    let key = unsafe { key_of(instance.as_raw()) };
    let data = lock(&INSTANCES).as_mut().and_then(|m| m.remove(&key));
    if let Some(f) = data.and_then(|d| d.destroy_instance) {
        // SAFETY: forwarding to the next layer.
        unsafe { f(instance, p_allocator) }
    }
}

/// The instance data for a physical device (the loader gives physical devices their
/// instance's key; `vkEnumeratePhysicalDevices` records them too).
fn physical_device_data(pd: vk::PhysicalDevice) -> Option<Arc<InstanceData>> {
    if pd == vk::PhysicalDevice::null() {
        return None;
    }
    // SAFETY: physical devices passed to Vulkan commands are live.
    instance_data(unsafe { key_of(pd.as_raw()) })
}

unsafe extern "system" fn enumerate_physical_devices(
    instance: vk::Instance,
    p_count: *mut u32,
    p_devices: *mut vk::PhysicalDevice,
) -> vk::Result {
    if instance == vk::Instance::null() || p_count.is_null() {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    }
    // SAFETY: a live instance.
    let Some(data) = instance_data(unsafe { key_of(instance.as_raw()) }) else {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    let strict = std::env::var(STRICT_ENUMERATION_VAR).is_ok_and(|v| v == "1");
    if strict && !data.portability_enumeration {
        report(
            "no device: this host's device is a portability driver; create the instance with \
             VK_KHR_portability_enumeration and VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR",
        );
        // SAFETY: checked non-null; the application's count.
        unsafe { *p_count = 0 };
        return vk::Result::SUCCESS;
    }
    let Some(f) = data.enumerate_physical_devices else {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    // SAFETY: forwarding the caller's arguments.
    let r = unsafe { f(instance, p_count, p_devices) };
    if (r == vk::Result::SUCCESS || r == vk::Result::INCOMPLETE) && !p_devices.is_null() {
        // SAFETY: the driver wrote `*p_count` handles.
        let pds = unsafe { std::slice::from_raw_parts(p_devices, *p_count as usize) };
        let mut map = lock(&INSTANCES);
        let map = map.get_or_insert_with(HashMap::new);
        for pd in pds {
            // SAFETY: just enumerated.
            map.entry(unsafe { key_of(pd.as_raw()) })
                .or_insert_with(|| data.clone());
        }
    }
    r
}

fn subset_extension() -> vk::ExtensionProperties {
    let mut p = vk::ExtensionProperties {
        spec_version: 1,
        ..Default::default()
    };
    for (d, s) in p
        .extension_name
        .iter_mut()
        .zip(PORTABILITY_SUBSET.to_bytes())
    {
        *d = *s as c_char;
    }
    p
}

unsafe extern "system" fn enumerate_device_extension_properties(
    pd: vk::PhysicalDevice,
    p_layer_name: *const c_char,
    p_count: *mut u32,
    p_props: *mut vk::ExtensionProperties,
) -> vk::Result {
    let Some(data) = physical_device_data(pd) else {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    if p_count.is_null() {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    }
    let mut all = if p_layer_name.is_null() {
        let Some(f) = data.enumerate_device_extension_properties else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        let mut n = 0u32;
        // SAFETY: the two-call idiom on the next layer.
        let r = unsafe { f(pd, std::ptr::null(), &mut n, std::ptr::null_mut()) };
        if r != vk::Result::SUCCESS {
            return r;
        }
        let mut v = vec![vk::ExtensionProperties::default(); n as usize];
        // SAFETY: `v` holds `n` entries.
        let r = unsafe { f(pd, std::ptr::null(), &mut n, v.as_mut_ptr()) };
        if r != vk::Result::SUCCESS && r != vk::Result::INCOMPLETE {
            return r;
        }
        v.truncate(n as usize);
        v
    } else {
        // SAFETY: a NUL-terminated layer name.
        if unsafe { CStr::from_ptr(p_layer_name) } != LAYER_NAME {
            let Some(f) = data.enumerate_device_extension_properties else {
                return vk::Result::ERROR_LAYER_NOT_PRESENT;
            };
            // SAFETY: another layer's query passes down unchanged.
            return unsafe { f(pd, p_layer_name, p_count, p_props) };
        }
        Vec::new()
    };
    if !all
        .iter()
        .any(|e| e.extension_name_as_c_str() == Ok(PORTABILITY_SUBSET))
    {
        all.push(subset_extension());
    }
    let ours = all;
    // SAFETY: `p_count` checked non-null.
    let count = unsafe { &mut *p_count };
    if p_props.is_null() {
        *count = ours.len() as u32;
        return vk::Result::SUCCESS;
    }
    let n = (*count as usize).min(ours.len());
    // SAFETY: the application's array holds `*count` entries.
    unsafe { std::ptr::copy_nonoverlapping(ours.as_ptr(), p_props, n) };
    *count = n as u32;
    if n < ours.len() {
        vk::Result::INCOMPLETE
    } else {
        vk::Result::SUCCESS
    }
}

/// Fills every portability struct in a `*2` query's chain.
///
/// # Safety
/// `p_next` is a valid, writable output chain.
unsafe fn fill_chain(mut p: *mut vk::BaseOutStructure<'static>) {
    while !p.is_null() {
        // SAFETY: every structure of a valid chain starts with sType and pNext.
        let base = unsafe { &mut *p };
        let next = base.p_next;
        if base.s_type == vk::StructureType::PHYSICAL_DEVICE_PORTABILITY_SUBSET_FEATURES_KHR {
            let f = p as *mut vk::PhysicalDevicePortabilitySubsetFeaturesKHR<'static>;
            // SAFETY: the sType says what it is; its pNext is kept.
            unsafe {
                let keep = (*f).p_next;
                *f = MOLTENVK_FEATURES;
                (*f).p_next = keep;
            }
        } else if base.s_type
            == vk::StructureType::PHYSICAL_DEVICE_PORTABILITY_SUBSET_PROPERTIES_KHR
        {
            let props = p as *mut vk::PhysicalDevicePortabilitySubsetPropertiesKHR<'static>;
            // SAFETY: the sType says what it is.
            unsafe {
                (*props).min_vertex_input_binding_stride_alignment =
                    MIN_VERTEX_INPUT_BINDING_STRIDE_ALIGNMENT
            };
        }
        p = next;
    }
}

unsafe fn features2(pd: vk::PhysicalDevice, p: *mut vk::PhysicalDeviceFeatures2<'_>, khr: bool) {
    let Some(data) = physical_device_data(pd) else {
        return;
    };
    let f = if khr {
        data.get_features2_khr.or(data.get_features2)
    } else {
        data.get_features2.or(data.get_features2_khr)
    };
    if let Some(f) = f {
        // SAFETY: forwarding; drivers skip structures they do not know.
        unsafe { f(pd, p) };
    }
    if !p.is_null() {
        // SAFETY: the application's output chain.
        unsafe { fill_chain((*p).p_next.cast()) };
    }
}

unsafe fn properties2(
    pd: vk::PhysicalDevice,
    p: *mut vk::PhysicalDeviceProperties2<'_>,
    khr: bool,
) {
    let Some(data) = physical_device_data(pd) else {
        return;
    };
    let f = if khr {
        data.get_properties2_khr.or(data.get_properties2)
    } else {
        data.get_properties2.or(data.get_properties2_khr)
    };
    if let Some(f) = f {
        // SAFETY: forwarding; drivers skip structures they do not know.
        unsafe { f(pd, p) };
    }
    if !p.is_null() {
        // SAFETY: the application's output chain.
        unsafe { fill_chain((*p).p_next.cast()) };
    }
}

unsafe extern "system" fn get_features2(
    pd: vk::PhysicalDevice,
    p: *mut vk::PhysicalDeviceFeatures2<'_>,
) {
    // SAFETY: forwarding the caller's arguments.
    unsafe { features2(pd, p, false) }
}

unsafe extern "system" fn get_features2_khr(
    pd: vk::PhysicalDevice,
    p: *mut vk::PhysicalDeviceFeatures2<'_>,
) {
    // SAFETY: forwarding the caller's arguments.
    unsafe { features2(pd, p, true) }
}

unsafe extern "system" fn get_properties2(
    pd: vk::PhysicalDevice,
    p: *mut vk::PhysicalDeviceProperties2<'_>,
) {
    // SAFETY: forwarding the caller's arguments.
    unsafe { properties2(pd, p, false) }
}

unsafe extern "system" fn get_properties2_khr(
    pd: vk::PhysicalDevice,
    p: *mut vk::PhysicalDeviceProperties2<'_>,
) {
    // SAFETY: forwarding the caller's arguments.
    unsafe { properties2(pd, p, true) }
}

/// The subset features requested in a device create info's chain that the device lacks.
///
/// # Safety
/// `p` is a valid structure chain.
unsafe fn refused_features(mut p: *const vk::BaseInStructure<'static>) -> Vec<&'static str> {
    let mut refused = Vec::new();
    while !p.is_null() {
        // SAFETY: every structure of a valid chain starts with sType and pNext.
        let base = unsafe { &*p };
        if base.s_type == vk::StructureType::PHYSICAL_DEVICE_PORTABILITY_SUBSET_FEATURES_KHR {
            // SAFETY: the sType says what it is.
            let asked =
                unsafe { &*(p as *const vk::PhysicalDevicePortabilitySubsetFeaturesKHR<'static>) };
            for ((name, want), (_, have)) in feature_list(asked)
                .into_iter()
                .zip(feature_list(&MOLTENVK_FEATURES))
            {
                if want != vk::FALSE && have == vk::FALSE {
                    refused.push(name);
                }
            }
        }
        p = base.p_next;
    }
    refused
}

unsafe extern "system" fn create_device(
    pd: vk::PhysicalDevice,
    p_create_info: *const vk::DeviceCreateInfo<'_>,
    p_allocator: *const vk::AllocationCallbacks<'_>,
    p_device: *mut vk::Device,
) -> vk::Result {
    let Some(data) = physical_device_data(pd) else {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    if p_create_info.is_null() || p_device.is_null() {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    }
    // SAFETY: the loader passes a valid create info.
    let info = unsafe { &*p_create_info };
    if !has_name(
        info.pp_enabled_extension_names,
        info.enabled_extension_count,
        PORTABILITY_SUBSET,
    ) {
        report(
            "vkCreateDevice: VK_KHR_portability_subset is listed by the device but not enabled \
             (VK_ERROR_INITIALIZATION_FAILED)",
        );
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    }
    // SAFETY: a valid chain.
    let refused = unsafe { refused_features(info.p_next.cast()) };
    if !refused.is_empty() {
        report(&format!(
            "vkCreateDevice: portability subset features not supported: {} \
             (VK_ERROR_FEATURE_NOT_PRESENT)",
            refused.join(", ")
        ));
        return vk::Result::ERROR_FEATURE_NOT_PRESENT;
    }
    // SAFETY: a valid chain.
    let link = unsafe {
        find_link::<LayerDeviceLink>(info.p_next, vk::StructureType::LOADER_DEVICE_CREATE_INFO)
    };
    if link.is_null() {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    }
    // SAFETY: the loader's link list is valid; advancing it is the layer's duty.
    let gdpa = unsafe {
        let this = (*link).u[0];
        let gdpa = (*this).pfn_next_get_device_proc_addr;
        (*link).u[0] = (*this).p_next;
        gdpa
    };
    let Some(next_create) = data.create_device else {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };

    // The driver's view: without the extension and without the subset feature struct.
    // SAFETY: `has_name` checked the array is valid for `enabled_extension_count` entries.
    let names: Vec<*const c_char> = unsafe {
        std::slice::from_raw_parts(
            info.pp_enabled_extension_names,
            info.enabled_extension_count as usize,
        )
    }
    .iter()
    .copied()
    // SAFETY: application strings, NUL-terminated.
    .filter(|&n| unsafe { CStr::from_ptr(n) } != PORTABILITY_SUBSET)
    .collect();
    let mut stripped = *info;
    stripped.enabled_extension_count = names.len() as u32;
    stripped.pp_enabled_extension_names = names.as_ptr();
    // Unlink the subset struct from the application's (const) chain for the call, and relink
    // it afterwards: the chain's other structures are unknown to this layer and cannot be
    // copied.
    let mut unlinked: Vec<(
        *mut vk::BaseOutStructure<'static>,
        *mut vk::BaseOutStructure<'static>,
    )> = Vec::new();
    {
        let mut prev: *mut *const c_void = &mut stripped.p_next;
        // SAFETY: walking a valid chain; `prev` points at a live pNext field (ours first, then
        // the application's, restored below before returning).
        unsafe {
            while !(*prev).is_null() {
                let cur = *prev as *mut vk::BaseOutStructure<'static>;
                if (*cur).s_type
                    == vk::StructureType::PHYSICAL_DEVICE_PORTABILITY_SUBSET_FEATURES_KHR
                {
                    unlinked.push((prev.cast(), cur));
                    *prev = (*cur).p_next as *const c_void;
                } else {
                    prev = (&mut (*cur).p_next as *mut *mut vk::BaseOutStructure<'static>).cast();
                }
            }
        }
    }
    // SAFETY: forwarding with the stripped create info; `names` outlives the call.
    let r = unsafe { next_create(pd, &stripped, p_allocator, p_device) };
    // SAFETY: relinking, in reverse order, the pointers saved above.
    unsafe {
        for (prev, cur) in unlinked.into_iter().rev() {
            *(prev as *mut *mut vk::BaseOutStructure<'static>) = cur;
        }
    }
    if r != vk::Result::SUCCESS {
        return r;
    }
    // SAFETY: creation succeeded.
    let device = unsafe { *p_device };
    // SAFETY: each load names the function-pointer type of its command.
    let dd = unsafe {
        DeviceData {
            gdpa,
            destroy_device: load_device(gdpa, device, c"vkDestroyDevice"),
            create_graphics_pipelines: load_device(gdpa, device, c"vkCreateGraphicsPipelines"),
        }
    };
    // SAFETY: the device was just created.
    let key = unsafe { key_of(device.as_raw()) };
    lock(&DEVICES)
        .get_or_insert_with(HashMap::new)
        .insert(key, Arc::new(dd));
    vk::Result::SUCCESS
}

unsafe extern "system" fn destroy_device(
    device: vk::Device,
    p_allocator: *const vk::AllocationCallbacks<'_>,
) {
    if device == vk::Device::null() {
        return;
    }
    // SAFETY: a non-null device being destroyed is still live.
    let key = unsafe { key_of(device.as_raw()) };
    let data = lock(&DEVICES).as_mut().and_then(|m| m.remove(&key));
    if let Some(f) = data.and_then(|d| d.destroy_device) {
        // SAFETY: forwarding to the next layer.
        unsafe { f(device, p_allocator) }
    }
}

/// What a pipeline create info asks that the subset forbids.
///
/// # Safety
/// `info` is a valid create info.
unsafe fn pipeline_violation(info: &vk::GraphicsPipelineCreateInfo<'_>) -> Option<String> {
    // SAFETY: optional state pointers are null or valid.
    if let Some(ia) = unsafe { info.p_input_assembly_state.as_ref() } {
        if ia.topology == vk::PrimitiveTopology::TRIANGLE_FAN
            && MOLTENVK_FEATURES.triangle_fans == vk::FALSE
        {
            return Some("VK_PRIMITIVE_TOPOLOGY_TRIANGLE_FAN (triangleFans is false)".into());
        }
    }
    // SAFETY: optional state pointers are null or valid.
    if let Some(vi) = unsafe { info.p_vertex_input_state.as_ref() } {
        if !vi.p_vertex_binding_descriptions.is_null() {
            // SAFETY: the array holds `vertex_binding_description_count` entries.
            let bindings = unsafe {
                std::slice::from_raw_parts(
                    vi.p_vertex_binding_descriptions,
                    vi.vertex_binding_description_count as usize,
                )
            };
            if let Some(b) = bindings
                .iter()
                .find(|b| b.stride % MIN_VERTEX_INPUT_BINDING_STRIDE_ALIGNMENT != 0)
            {
                return Some(format!(
                    "vertex binding {} stride {} (minVertexInputBindingStrideAlignment is {})",
                    b.binding, b.stride, MIN_VERTEX_INPUT_BINDING_STRIDE_ALIGNMENT
                ));
            }
        }
    }
    None
}

unsafe extern "system" fn create_graphics_pipelines(
    device: vk::Device,
    cache: vk::PipelineCache,
    count: u32,
    p_infos: *const vk::GraphicsPipelineCreateInfo<'_>,
    p_allocator: *const vk::AllocationCallbacks<'_>,
    p_pipelines: *mut vk::Pipeline,
) -> vk::Result {
    if device == vk::Device::null() {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    }
    // SAFETY: a live device.
    let Some(data) = device_data(unsafe { key_of(device.as_raw()) }) else {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    if !p_infos.is_null() {
        // SAFETY: the application passes `count` create infos.
        let infos = unsafe { std::slice::from_raw_parts(p_infos, count as usize) };
        for (i, info) in infos.iter().enumerate() {
            // SAFETY: a valid create info.
            if let Some(why) = unsafe { pipeline_violation(info) } {
                report(&format!(
                    "vkCreateGraphicsPipelines: pipeline {i} uses {why}, which the portability \
                     subset forbids (VK_ERROR_FEATURE_NOT_PRESENT)"
                ));
                if !p_pipelines.is_null() {
                    // SAFETY: the output array holds `count` handles.
                    unsafe {
                        std::slice::from_raw_parts_mut(p_pipelines, count as usize)
                            .fill(vk::Pipeline::null())
                    };
                }
                return vk::Result::ERROR_FEATURE_NOT_PRESENT;
            }
        }
    }
    let Some(f) = data.create_graphics_pipelines else {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    // SAFETY: forwarding the caller's arguments.
    unsafe { f(device, cache, count, p_infos, p_allocator, p_pipelines) }
}

/// For tests of this workspace: builds the layer's cdylib into the target directory of the
/// running test executable `exe` (same profile) and returns a directory holding a manifest
/// that loads it (the committed one when the library lands where it points, else a copy
/// written under `scratch`). Panics with the build's output when the build fails.
pub fn build_for_tests(exe: &Path, scratch: &Path) -> PathBuf {
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let target_dir = profile_dir.parent().expect("the target directory");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", "venus-testlayer", "--lib", "--target-dir"])
        .arg(target_dir);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let out = cmd.output().expect("running cargo build");
    assert!(
        out.status.success(),
        "building the layer failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lib = profile_dir.join("libvenus_testlayer.so");
    assert!(lib.exists(), "{} was not built", lib.display());
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let committed = crate_dir.join(MANIFEST_LIBRARY_PATH);
    if committed.canonicalize().ok() == lib.canonicalize().ok() {
        return crate_dir;
    }
    let dir = scratch.join("venus-testlayer");
    std::fs::create_dir_all(&dir).expect("creating the layer directory");
    let local = dir.join("libvenus_testlayer.so");
    let _ = std::fs::remove_file(&local);
    std::fs::copy(&lib, &local).expect("copying the layer");
    std::fs::write(
        dir.join(MANIFEST_FILE),
        manifest_with_library_path("./libvenus_testlayer.so"),
    )
    .expect("writing the layer manifest");
    dir
}
