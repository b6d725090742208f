//! The host pipeline against a real driver (lavapipe, selected through VK_DRIVER_FILES): a
//! protocol request is lowered to C, the driver is called through the generated proc table, and
//! the outputs are raised back and encoded as a reply that decodes again.
//!
//! Needs the lavapipe ICD (`venus_testkit::require`): without it the test fails when `CI` is
//! set and is skipped (with a `SKIPPED` line) otherwise; `scripts/setup-system.sh` installs it.

use std::collections::HashMap;
use std::sync::Mutex;

use bumpalo::Bump;
use venus_host::loader::Loader;
use venus_host::lower::{HandleMap, Lower, LowerCx, Raise};
use venus_host::vk;
use venus_protocol::commands::*;
use venus_protocol::structs::*;
use venus_protocol::types::*;
use venus_protocol::{decode_reply, Arena, Decoder, Encoder, Id, Reply, Str};

#[derive(Default)]
struct Table(Mutex<HashMap<(i32, u64), u64>>);

impl HandleMap for Table {
    fn host(&self, object_type: i32, id: u64) -> Option<u64> {
        self.0.lock().unwrap().get(&(object_type, id)).copied()
    }
    fn guest(&self, object_type: i32, host: u64) -> Option<u64> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .find(|(k, v)| k.0 == object_type && **v == host)
            .map(|(k, _)| k.1)
    }
}

#[test]
fn properties2_with_chain_through_lavapipe() {
    let Some(tools) = venus_testkit::require(
        "properties2_with_chain_through_lavapipe",
        &[venus_testkit::Tool::LavapipeIcd],
    ) else {
        return;
    };
    std::env::set_var("VK_DRIVER_FILES", tools.lavapipe_icd());
    let loader = Loader::open().expect("Vulkan loader");
    let global = loader.global_procs();
    let table = Table::default();
    let arena = Bump::new();

    // vkCreateInstance from a protocol value.
    let app = ApplicationInfo {
        p_application_name: Str::from_bytes_with_nul(b"venus-host-test\0"),
        api_version: (1 << 22) | (3 << 12),
        ..Default::default()
    };
    let create = InstanceCreateInfo {
        p_application_info: Some(&app),
        ..Default::default()
    };
    let mut cx = LowerCx::new(&arena, &table);
    let c_create = create.lower(&mut cx).unwrap();
    let mut instance = vk::Instance::NULL;
    // SAFETY: c_create and everything it points to live in `arena`/`app` for the call.
    let r =
        unsafe { (global.create_instance.unwrap())(&c_create, std::ptr::null(), &mut instance) };
    assert_eq!(r, VkResult::SUCCESS);
    table.0.lock().unwrap().insert(
        (
            <venus_protocol::handles::Instance as venus_protocol::Handle>::OBJECT_TYPE,
            1,
        ),
        instance.0,
    );
    let ip = loader.instance_procs(instance);

    let mut count = 0u32;
    // SAFETY: instance is live; count is a valid out pointer.
    unsafe { (ip.enumerate_physical_devices.unwrap())(instance, &mut count, std::ptr::null_mut()) };
    assert!(count >= 1);
    let mut pds = vec![vk::PhysicalDevice::NULL; count as usize];
    // SAFETY: pds has room for `count` handles.
    unsafe { (ip.enumerate_physical_devices.unwrap())(instance, &mut count, pds.as_mut_ptr()) };
    table.0.lock().unwrap().insert(
        (
            <venus_protocol::handles::PhysicalDevice as venus_protocol::Handle>::OBJECT_TYPE,
            7,
        ),
        pds[0].0,
    );

    // The request as Mesa sends it: a skeleton with a chain (driver properties, Vulkan 1.1).
    let driver = Ext::PhysicalDeviceDriverProperties(PhysicalDeviceDriverProperties::default());
    let v11 = Ext::PhysicalDeviceVulkan11Properties(PhysicalDeviceVulkan11Properties {
        p_next: Some(&driver),
        ..Default::default()
    });
    let skeleton = PhysicalDeviceProperties2 {
        p_next: Some(&v11),
        ..Default::default()
    };
    let args = GetPhysicalDeviceProperties2Args {
        physical_device: Id::from_raw(7),
        p_properties: &skeleton,
    };

    let mut cx = LowerCx::new(&arena, &table);
    let pd = vk::PhysicalDevice(cx.host(args.physical_device).unwrap());
    let mut out = args.p_properties.lower_out(&mut cx).unwrap();
    // SAFETY: pd is live; `out` and its chain were allocated by lower_out in `arena`.
    unsafe { (ip.get_physical_device_properties2.unwrap())(pd, &mut out) };
    let raised = PhysicalDeviceProperties2::raise(args.p_properties, &out, &mut cx).unwrap();

    let name = Str::from_bytes_with_nul(&raised.properties.device_name[..])
        .map(|s| s.to_str().unwrap().to_string());
    let name = name
        .unwrap_or_else(|| String::from_utf8_lossy(&raised.properties.device_name).into_owned());
    assert!(name.contains("llvmpipe"), "{name}");
    let Some(Ext::PhysicalDeviceVulkan11Properties(v)) = raised.p_next else {
        panic!("chain lost: {:?}", raised.p_next)
    };
    assert!(v.max_memory_allocation_size > 0);
    let Some(Ext::PhysicalDeviceDriverProperties(d)) = v.p_next else {
        panic!("second link lost")
    };
    assert_eq!(d.driver_id, DriverId::MESA_LLVMPIPE);

    // The reply encodes and decodes.
    let reply = Reply::GetPhysicalDeviceProperties2(GetPhysicalDeviceProperties2Reply {
        p_properties: &raised,
    });
    let mut e = Encoder::new();
    reply.encode(&mut e);
    let decode_arena = Arena::new();
    let back = decode_reply(&mut Decoder::new(e.as_bytes(), &decode_arena)).unwrap();
    assert_eq!(back, reply);

    // The same through the generated generic executors, as the dispatch layer runs them:
    // queue families (count query, then the array with chains) and format properties.
    let mut cx = LowerCx::new(&arena, &table);
    let count_args = GetPhysicalDeviceQueueFamilyProperties2Args {
        physical_device: Id::from_raw(7),
        p_queue_family_property_count: &0,
        p_queue_family_properties: &[],
    };
    // SAFETY: the table only holds the live instance and physical device.
    let (r, _) = unsafe {
        venus_host::generated::calls::get_physical_device_queue_family_properties2(
            &ip,
            &mut cx,
            &count_args,
        )
    }
    .unwrap();
    let n = *r.p_queue_family_property_count;
    assert!(n >= 1);
    let skel = vec![QueueFamilyProperties2::default(); n as usize];
    let args = GetPhysicalDeviceQueueFamilyProperties2Args {
        physical_device: Id::from_raw(7),
        p_queue_family_property_count: &n,
        p_queue_family_properties: &skel,
    };
    // SAFETY: as above.
    let (r, _) = unsafe {
        venus_host::generated::calls::get_physical_device_queue_family_properties2(
            &ip, &mut cx, &args,
        )
    }
    .unwrap();
    assert_eq!(r.p_queue_family_properties.len(), n as usize);
    assert!(r.p_queue_family_properties[0]
        .queue_family_properties
        .queue_flags
        .contains(QueueFlags::GRAPHICS_BIT));
    let fmt = FormatProperties2::default();
    let args = GetPhysicalDeviceFormatProperties2Args {
        physical_device: Id::from_raw(7),
        format: Format::R8G8B8A8_UNORM,
        p_format_properties: &fmt,
    };
    // SAFETY: as above.
    let (r, _) = unsafe {
        venus_host::generated::calls::get_physical_device_format_properties2(&ip, &mut cx, &args)
    }
    .unwrap();
    assert!(r
        .p_format_properties
        .format_properties
        .optimal_tiling_features
        .contains(FormatFeatureFlags::SAMPLED_IMAGE_BIT));

    // SAFETY: nothing else uses the instance any more.
    unsafe { (ip.destroy_instance.unwrap())(instance, std::ptr::null()) };
}
