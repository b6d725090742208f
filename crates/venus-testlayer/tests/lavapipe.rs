//! The layer through the real Vulkan loader, in front of lavapipe (`VK_DRIVER_FILES`): its
//! manifest loads, the device lists `VK_KHR_portability_subset` with MoltenVK's values, device
//! creation requires the extension, and a triangle-fan pipeline is refused.
//!
//! `cargo test` builds only this crate's rlib, so the cdylib is built here first
//! (`cargo build -p venus-testlayer --lib`). When it lands in `<workspace>/target/debug/`, the
//! committed manifest (`crates/venus-testlayer/`, `library_path` relative to it) is the one
//! loaded; otherwise (another target dir or profile) a copy whose `library_path` is
//! `./libvenus_testlayer.so` is written next to the library.
//!
//! The environment (`VK_DRIVER_FILES`, `VK_ADD_LAYER_PATH`, `VK_INSTANCE_LAYERS`) is set once,
//! identically, for every test of this process; tests that need another environment or
//! stderr run this binary again as a child (`VENUS_TESTLAYER_CHILD=<test>`).

#![cfg(target_os = "linux")]

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ash::vk;
use venus_testkit::{require, Tool};
use venus_testlayer::{
    feature_list, LAYER_NAME, MIN_VERTEX_INPUT_BINDING_STRIDE_ALIGNMENT, MOLTENVK_FEATURES,
    PORTABILITY_ENUMERATION, PORTABILITY_SUBSET, STDERR_PREFIX, STRICT_ENUMERATION_VAR,
};

const CHILD_VAR: &str = "VENUS_TESTLAYER_CHILD";

/// Builds the cdylib and returns the directory holding the manifest to load.
fn build_layer() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    venus_testlayer::build_for_tests(&exe, Path::new(env!("CARGO_TARGET_TMPDIR")))
}

/// Sets the process environment once; `None`: lavapipe missing (skipped outside CI).
fn setup(test: &str) -> Option<()> {
    static DONE: OnceLock<Option<()>> = OnceLock::new();
    let found = require(test, &[Tool::LavapipeIcd])?;
    let icd = found.lavapipe_icd().to_path_buf();
    *DONE.get_or_init(|| {
        let dir = build_layer();
        eprintln!("layer manifest directory: {}", dir.display());
        std::env::set_var("VK_DRIVER_FILES", &icd);
        std::env::set_var("VK_ADD_LAYER_PATH", &dir);
        std::env::set_var("VK_INSTANCE_LAYERS", LAYER_NAME.to_str().unwrap());
        Some(())
    })
}

fn entry() -> ash::Entry {
    // SAFETY: loading the system Vulkan loader (libvulkan.so.1).
    unsafe { ash::Entry::load() }.expect("loading libvulkan.so.1")
}

/// An instance with portability enumeration (as a MoltenVK host needs), or without.
fn instance(entry: &ash::Entry, portability: bool) -> ash::Instance {
    let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_1);
    let exts = [PORTABILITY_ENUMERATION.as_ptr()];
    let mut info = vk::InstanceCreateInfo::default().application_info(&app);
    if portability {
        info = info
            .enabled_extension_names(&exts)
            .flags(vk::InstanceCreateFlags::ENUMERATE_PORTABILITY_KHR);
    }
    // SAFETY: a valid create info.
    unsafe { entry.create_instance(&info, None) }.expect("vkCreateInstance")
}

fn physical_device(instance: &ash::Instance) -> vk::PhysicalDevice {
    // SAFETY: a live instance.
    let pds = unsafe { instance.enumerate_physical_devices() }.expect("enumerate");
    *pds.first().expect("lavapipe's device")
}

/// Creates a device with `extensions` and `pnext_features` in the chain.
fn create_device(
    instance: &ash::Instance,
    pd: vk::PhysicalDevice,
    extensions: &[&CStr],
    subset: Option<&mut vk::PhysicalDevicePortabilitySubsetFeaturesKHR<'_>>,
) -> Result<ash::Device, vk::Result> {
    let prio = [1.0f32];
    let queues = [vk::DeviceQueueCreateInfo::default()
        .queue_family_index(0)
        .queue_priorities(&prio)];
    let names: Vec<_> = extensions.iter().map(|e| e.as_ptr()).collect();
    let mut info = vk::DeviceCreateInfo::default()
        .queue_create_infos(&queues)
        .enabled_extension_names(&names);
    if let Some(s) = subset {
        info = info.push_next(s);
    }
    // SAFETY: a valid create info for a live physical device.
    unsafe { instance.create_device(pd, &info, None) }
}

#[test]
fn manifest_loads_and_portability_enumeration_is_the_loaders() {
    if setup("manifest_loads_and_portability_enumeration_is_the_loaders").is_none() {
        return;
    }
    let entry = entry();
    // SAFETY: a global query.
    let layers = unsafe { entry.enumerate_instance_layer_properties() }.unwrap();
    assert!(
        layers
            .iter()
            .any(|l| l.layer_name_as_c_str() == Ok(LAYER_NAME)),
        "the loader did not find {LAYER_NAME:?} through VK_ADD_LAYER_PATH"
    );
    // The loader itself lists VK_KHR_portability_enumeration (lavapipe does not implement it);
    // the layer adds no instance extension.
    // SAFETY: global queries.
    let (all, ours) = unsafe {
        (
            entry.enumerate_instance_extension_properties(None),
            entry.enumerate_instance_extension_properties(Some(LAYER_NAME)),
        )
    };
    assert!(all
        .unwrap()
        .iter()
        .any(|e| e.extension_name_as_c_str() == Ok(PORTABILITY_ENUMERATION)));
    assert!(ours.unwrap().is_empty());
    // The manifest declares the device extension, so the loader lists it for the layer.
    let instance = instance(&entry, true);
    let pd = physical_device(&instance);
    // SAFETY: a live physical device.
    let layer_exts = unsafe {
        let mut n = 0;
        (instance.fp_v1_0().enumerate_device_extension_properties)(
            pd,
            LAYER_NAME.as_ptr(),
            &mut n,
            std::ptr::null_mut(),
        )
        .result()
        .unwrap();
        let mut v = vec![vk::ExtensionProperties::default(); n as usize];
        (instance.fp_v1_0().enumerate_device_extension_properties)(
            pd,
            LAYER_NAME.as_ptr(),
            &mut n,
            v.as_mut_ptr(),
        )
        .result()
        .unwrap();
        v
    };
    assert!(layer_exts
        .iter()
        .any(|e| e.extension_name_as_c_str() == Ok(PORTABILITY_SUBSET)));
    // SAFETY: destroying what this test created.
    unsafe { instance.destroy_instance(None) };
}

#[test]
fn device_lists_the_subset_with_moltenvk_values() {
    if setup("device_lists_the_subset_with_moltenvk_values").is_none() {
        return;
    }
    let entry = entry();
    let instance = instance(&entry, true);
    let pd = physical_device(&instance);
    // SAFETY: a live physical device.
    let exts = unsafe { instance.enumerate_device_extension_properties(pd) }.unwrap();
    let subset = exts
        .iter()
        .find(|e| e.extension_name_as_c_str() == Ok(PORTABILITY_SUBSET))
        .expect("VK_KHR_portability_subset listed");
    assert_eq!(subset.spec_version, 1);
    assert!(exts.len() > 1, "the driver's extensions are still listed");

    let mut features = vk::PhysicalDevicePortabilitySubsetFeaturesKHR::default();
    let mut f2 = vk::PhysicalDeviceFeatures2::default().push_next(&mut features);
    // SAFETY: a live physical device and a valid chain.
    unsafe { instance.get_physical_device_features2(pd, &mut f2) };
    let got = feature_list(&features);
    assert_eq!(got, feature_list(&MOLTENVK_FEATURES));
    assert_eq!(features.triangle_fans, vk::FALSE);
    assert_eq!(features.events, vk::TRUE);

    let mut props = vk::PhysicalDevicePortabilitySubsetPropertiesKHR::default();
    let mut p2 = vk::PhysicalDeviceProperties2::default().push_next(&mut props);
    // SAFETY: a live physical device and a valid chain.
    unsafe { instance.get_physical_device_properties2(pd, &mut p2) };
    assert!(p2.properties.api_version >= vk::API_VERSION_1_1);
    assert_eq!(
        props.min_vertex_input_binding_stride_alignment,
        MIN_VERTEX_INPUT_BINDING_STRIDE_ALIGNMENT
    );
    assert_eq!(props.min_vertex_input_binding_stride_alignment, 4);
    // SAFETY: destroying what this test created.
    unsafe { instance.destroy_instance(None) };
}

#[test]
fn device_creation_requires_the_subset() {
    if setup("device_creation_requires_the_subset").is_none() {
        return;
    }
    let entry = entry();
    let instance = instance(&entry, true);
    let pd = physical_device(&instance);

    let err = create_device(&instance, pd, &[], None).err();
    assert_eq!(err, Some(vk::Result::ERROR_INITIALIZATION_FAILED));

    // A forbidden subset feature is refused.
    let mut fans = vk::PhysicalDevicePortabilitySubsetFeaturesKHR::default().triangle_fans(true);
    let err = create_device(&instance, pd, &[PORTABILITY_SUBSET], Some(&mut fans)).err();
    assert_eq!(err, Some(vk::Result::ERROR_FEATURE_NOT_PRESENT));

    // Enabled, with the supported features asked for: lavapipe never sees either.
    let mut ok = MOLTENVK_FEATURES;
    let device = create_device(&instance, pd, &[PORTABILITY_SUBSET], Some(&mut ok))
        .expect("device with VK_KHR_portability_subset");
    // The application's chain is intact after the layer unlinked the struct for the driver.
    assert_eq!(
        ok.s_type,
        vk::StructureType::PHYSICAL_DEVICE_PORTABILITY_SUBSET_FEATURES_KHR
    );
    // SAFETY: a live device.
    let queue = unsafe { device.get_device_queue(0, 0) };
    // SAFETY: a live queue.
    unsafe { device.queue_wait_idle(queue) }.unwrap();

    // A triangle fan never reaches the driver.
    let ia = vk::PipelineInputAssemblyStateCreateInfo::default()
        .topology(vk::PrimitiveTopology::TRIANGLE_FAN);
    let info = vk::GraphicsPipelineCreateInfo::default().input_assembly_state(&ia);
    // SAFETY: the layer refuses this create info before the driver sees it.
    let r = unsafe { device.create_graphics_pipelines(vk::PipelineCache::null(), &[info], None) };
    let (pipelines, err) = r.expect_err("a triangle-fan pipeline is refused");
    assert_eq!(err, vk::Result::ERROR_FEATURE_NOT_PRESENT);
    assert!(pipelines.iter().all(|p| *p == vk::Pipeline::null()));

    // A vertex stride that is not a multiple of 4 neither.
    let bindings = [vk::VertexInputBindingDescription::default()
        .binding(0)
        .stride(6)];
    let vi =
        vk::PipelineVertexInputStateCreateInfo::default().vertex_binding_descriptions(&bindings);
    let ia = vk::PipelineInputAssemblyStateCreateInfo::default()
        .topology(vk::PrimitiveTopology::TRIANGLE_LIST);
    let info = vk::GraphicsPipelineCreateInfo::default()
        .input_assembly_state(&ia)
        .vertex_input_state(&vi);
    // SAFETY: the layer refuses this create info before the driver sees it.
    let r = unsafe { device.create_graphics_pipelines(vk::PipelineCache::null(), &[info], None) };
    assert_eq!(
        r.map(|_| ()).map_err(|(_, e)| e),
        Err(vk::Result::ERROR_FEATURE_NOT_PRESENT)
    );

    // SAFETY: destroying what this test created.
    unsafe {
        device.destroy_device(None);
        instance.destroy_instance(None);
    }
}

/// Runs this test binary again for `child` with `envs`; returns its stderr.
fn run_child(child: &str, envs: &[(&str, &str)]) -> String {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([child, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, child)
        .envs(envs.iter().copied())
        .output()
        .expect("running the child test");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "child {child} failed:\n{}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

fn is_child(test: &str) -> bool {
    std::env::var(CHILD_VAR).is_ok_and(|v| v == test)
}

#[test]
fn missing_subset_is_one_stderr_line() {
    if setup("missing_subset_is_one_stderr_line").is_none() {
        return;
    }
    let stderr = run_child("child_device_without_subset", &[]);
    let lines: Vec<_> = stderr
        .lines()
        .filter(|l| l.starts_with(STDERR_PREFIX))
        .collect();
    assert_eq!(lines.len(), 1, "stderr:\n{stderr}");
    assert!(
        lines[0].contains("VK_KHR_portability_subset"),
        "{}",
        lines[0]
    );
}

#[test]
fn child_device_without_subset() {
    if !is_child("child_device_without_subset") || setup("child_device_without_subset").is_none() {
        return;
    }
    let entry = entry();
    let instance = instance(&entry, true);
    let pd = physical_device(&instance);
    let err = create_device(&instance, pd, &[], None).err();
    assert_eq!(err, Some(vk::Result::ERROR_INITIALIZATION_FAILED));
    // SAFETY: destroying what this test created.
    unsafe { instance.destroy_instance(None) };
}

#[test]
fn strict_enumeration_needs_the_portability_flag() {
    if setup("strict_enumeration_needs_the_portability_flag").is_none() {
        return;
    }
    // Mesa's implicit VK_LAYER_MESA_device_select (above this layer) crashes when the
    // instance has no device: NODEVICE_SELECT=1 disables it.
    let stderr = run_child(
        "child_strict_enumeration",
        &[(STRICT_ENUMERATION_VAR, "1"), ("NODEVICE_SELECT", "1")],
    );
    assert!(
        stderr.contains(&format!("{STDERR_PREFIX} no device")),
        "stderr:\n{stderr}"
    );
}

#[test]
fn child_strict_enumeration() {
    if !is_child("child_strict_enumeration") || setup("child_strict_enumeration").is_none() {
        return;
    }
    let entry = entry();
    let without = instance(&entry, false);
    // SAFETY: a live instance.
    let pds = unsafe { without.enumerate_physical_devices() }.unwrap();
    assert!(
        pds.is_empty(),
        "a portability device is hidden without the flag"
    );
    let with = instance(&entry, true);
    // SAFETY: a live instance.
    let pds = unsafe { with.enumerate_physical_devices() }.unwrap();
    assert_eq!(pds.len(), 1, "lavapipe's device with the flag");
    // SAFETY: destroying what this test created.
    unsafe {
        without.destroy_instance(None);
        with.destroy_instance(None);
    }
}
