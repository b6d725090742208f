//! The generated size/stride/limit rules, the policy table, `destroy_object` and the host-only
//! bindings against a real driver (lavapipe, selected through VK_DRIVER_FILES). Every hostile
//! request either fails with an error naming the rule or runs with the driver seeing only sizes
//! that match the memory we gave it.

use std::collections::HashMap;
use std::ffi::c_char;
use std::sync::Mutex;

use bumpalo::Bump;
use venus_host::generated::calls;
use venus_host::loader::Loader;
use venus_host::lower::{CallError, HandleMap, Lower, LowerCx, LowerError};
use venus_host::policy::{self, Policy, Routed};
use venus_host::{vk, DeviceProcs, InstanceProcs};
use venus_protocol::commands::*;
use venus_protocol::structs::*;
use venus_protocol::types::*;
use venus_protocol::{handles, Handle, Id};

#[derive(Default)]
struct Table(
    Mutex<HashMap<(i32, u64), u64>>,
    Mutex<HashMap<(i32, u64), venus_host::ranges::Extent>>,
);

impl Table {
    fn put<T: Handle>(&self, id: u64, host: u64) {
        self.0.lock().unwrap().insert((T::OBJECT_TYPE, id), host);
    }
    /// Records what the range rules read of object `id` (the dispatch's registry does this
    /// at creation).
    fn put_extent<T: Handle>(&self, id: u64, e: venus_host::ranges::Extent) {
        self.1.lock().unwrap().insert((T::OBJECT_TYPE, id), e);
    }
}

impl HandleMap for Table {
    fn host(&self, object_type: i32, id: u64) -> Option<u64> {
        self.0.lock().unwrap().get(&(object_type, id)).copied()
    }
    fn guest(&self, object_type: i32, host: u64) -> Option<u64> {
        let t = self.0.lock().unwrap();
        t.iter()
            .find(|(k, v)| k.0 == object_type && **v == host)
            .map(|(k, _)| k.1)
    }
    fn extent(&self, object_type: i32, id: u64) -> Option<venus_host::ranges::Extent> {
        self.1.lock().unwrap().get(&(object_type, id)).copied()
    }
}

struct Gpu {
    instance: vk::Instance,
    ip: InstanceProcs,
    device: vk::Device,
    dp: DeviceProcs,
    limits: vk::PhysicalDeviceLimits,
    pd: vk::PhysicalDevice,
}

impl Drop for Gpu {
    fn drop(&mut self) {
        // SAFETY: the tests destroyed or stopped using every child before dropping.
        unsafe {
            (self.dp.destroy_device.unwrap())(self.device, std::ptr::null());
            (self.ip.destroy_instance.unwrap())(self.instance, std::ptr::null());
        }
    }
}

/// An instance and a device with VK_EXT_multi_draw and VK_EXT_external_memory_host on lavapipe.
fn lavapipe() -> Option<Gpu> {
    let icd = "/usr/share/vulkan/icd.d/lvp_icd.json";
    if !std::path::Path::new(icd).exists() {
        eprintln!("skipping: lavapipe is not installed (scripts/setup-system.sh)");
        return None;
    }
    std::env::set_var("VK_DRIVER_FILES", icd);
    let loader = Box::leak(Box::new(Loader::open().expect("Vulkan loader")));
    let app = vk::ApplicationInfo {
        api_version: (1 << 22) | (3 << 12),
        ..Default::default()
    };
    let info = vk::InstanceCreateInfo {
        p_application_info: &app,
        ..Default::default()
    };
    let mut instance = vk::Instance::NULL;
    // SAFETY: `info` and `app` outlive the call; `instance` is a valid out pointer.
    let r = unsafe {
        (loader.global_procs().create_instance.unwrap())(&info, std::ptr::null(), &mut instance)
    };
    assert_eq!(r, VkResult::SUCCESS);
    let ip = loader.instance_procs(instance);
    let mut pd = vk::PhysicalDevice::NULL;
    let mut n = 1u32;
    // SAFETY: room for one handle.
    unsafe { (ip.enumerate_physical_devices.unwrap())(instance, &mut n, &mut pd) };
    let mut props = vk::PhysicalDeviceProperties::default();
    // SAFETY: pd is live; props is a valid out pointer.
    unsafe { (ip.get_physical_device_properties.unwrap())(pd, &mut props) };
    let prio = 1.0f32;
    let queue = vk::DeviceQueueCreateInfo {
        queue_count: 1,
        p_queue_priorities: &prio,
        ..Default::default()
    };
    let mut multi = vk::PhysicalDeviceMultiDrawFeaturesEXT {
        multi_draw: 1,
        ..Default::default()
    };
    let exts: [*const c_char; 2] = [
        c"VK_EXT_multi_draw".as_ptr(),
        c"VK_EXT_external_memory_host".as_ptr(),
    ];
    let info = vk::DeviceCreateInfo {
        p_next: &mut multi as *mut _ as *mut _,
        queue_create_info_count: 1,
        p_queue_create_infos: &queue,
        enabled_extension_count: 2,
        pp_enabled_extension_names: exts.as_ptr(),
        ..Default::default()
    };
    let mut device = vk::Device::NULL;
    // SAFETY: everything `info` points to lives on this stack frame.
    let r = unsafe { (ip.create_device.unwrap())(pd, &info, std::ptr::null(), &mut device) };
    assert_eq!(r, VkResult::SUCCESS);
    let dp = loader.device_procs(instance, device);
    Some(Gpu {
        instance,
        ip,
        device,
        dp,
        limits: props.limits,
        pd,
    })
}

/// A command pool and a recording primary command buffer, registered as guest ids 10 and 11.
fn recording(g: &Gpu, table: &Table) -> (vk::CommandPool, vk::CommandBuffer) {
    let mut pool = vk::CommandPool::NULL;
    let info = vk::CommandPoolCreateInfo::default();
    // SAFETY: the device is live; out pointers are locals.
    unsafe {
        (g.dp.create_command_pool.unwrap())(g.device, &info, std::ptr::null(), &mut pool);
    }
    let alloc = vk::CommandBufferAllocateInfo {
        command_pool: pool,
        command_buffer_count: 1,
        ..Default::default()
    };
    let mut cb = vk::CommandBuffer::NULL;
    let begin = vk::CommandBufferBeginInfo::default();
    // SAFETY: as above; room for one command buffer.
    unsafe {
        (g.dp.allocate_command_buffers.unwrap())(g.device, &alloc, &mut cb);
        (g.dp.begin_command_buffer.unwrap())(cb, &begin);
    }
    table.put::<handles::Device>(1, g.device.0);
    table.put::<handles::CommandPool>(10, pool.0);
    table.put::<handles::CommandBuffer>(11, cb.0);
    (pool, cb)
}

fn err<T>(r: Result<T, LowerError>) -> String {
    match r {
        Ok(_) => panic!("the rule passed"),
        Err(e) => e.to_string(),
    }
}

fn rule(e: CallError) -> String {
    match e {
        CallError::Lower(LowerError::Rule { .. }) => e.to_string(),
        other => panic!("not a rule error: {other:?}"),
    }
}

#[test]
fn hostile_sizes_are_refused_or_made_safe() {
    let Some(g) = lavapipe() else { return };
    let table = Table::default();
    let (pool, _cb) = recording(&g, &table);
    let arena = Bump::new();
    let mut cx = LowerCx::with_limits(&arena, &table, Some(&g.limits));

    // Multi-draw with an absurd stride: the driver walks our packed copy with the C size.
    let draws = [
        MultiDrawInfoEXT {
            first_vertex: 0,
            vertex_count: 3,
        },
        MultiDrawInfoEXT {
            first_vertex: 3,
            vertex_count: 3,
        },
    ];
    let a = CmdDrawMultiEXTArgs {
        command_buffer: Id::from_raw(11),
        draw_count: 2,
        p_vertex_info: &draws,
        instance_count: 1,
        first_instance: 0,
        stride: 0x7fff_fff0,
    };
    // SAFETY: the table holds live handles of this device.
    unsafe { calls::cmd_draw_multi_ext(&g.dp, &mut cx, &a) }.unwrap();

    // Push constants past maxPushConstantsSize: an error naming the rule and the values.
    let max = g.limits.max_push_constants_size;
    let values = [0u8; 16];
    let a = CmdPushConstantsArgs {
        command_buffer: Id::from_raw(11),
        layout: Id::from_raw(12),
        stage_flags: ShaderStageFlags::VERTEX_BIT,
        offset: max - 8,
        size: 16,
        p_values: &values,
    };
    // SAFETY: the rule fails before any handle is used.
    let e = unsafe { calls::cmd_push_constants(&g.dp, &mut cx, &a) }.unwrap_err();
    assert_eq!(
        rule(e),
        format!(
            "vkCmdPushConstants: offset {} + size 16 exceeds maxPushConstantsSize {max}",
            max - 8
        )
    );
    // Without limits the rule is an error, never a pass.
    let mut bare = LowerCx::new(&arena, &table);
    // SAFETY: as above.
    let e = unsafe { calls::cmd_push_constants(&g.dp, &mut bare, &a) }.unwrap_err();
    assert_eq!(
        e,
        CallError::Lower(LowerError::NoLimits {
            at: "vkCmdPushConstants",
            limit: "maxPushConstantsSize"
        })
    );
    let viewports = [Viewport::default(); 2];
    let a = CmdSetViewportArgs {
        command_buffer: Id::from_raw(11),
        first_viewport: g.limits.max_viewports - 1,
        viewport_count: 2,
        p_viewports: &viewports,
    };
    // SAFETY: as above.
    let e = unsafe { calls::cmd_set_viewport(&g.dp, &mut cx, &a) }.unwrap_err();
    assert!(rule(e).contains("exceeds maxViewports"));

    // Query results: dataSize smaller than queryCount * stride.
    let qinfo = vk::QueryPoolCreateInfo {
        query_type: QueryType::OCCLUSION,
        query_count: 4,
        ..Default::default()
    };
    let mut qp = vk::QueryPool::NULL;
    // SAFETY: device live; out pointer local.
    unsafe { (g.dp.create_query_pool.unwrap())(g.device, &qinfo, std::ptr::null(), &mut qp) };
    table.put::<handles::QueryPool>(20, qp.0);
    table.put_extent::<handles::QueryPool>(20, venus_host::ranges::Extent::QueryPool { count: 4 });
    let skeleton = [0u8; 8];
    let a = GetQueryPoolResultsArgs {
        device: Id::from_raw(1),
        query_pool: Id::from_raw(20),
        first_query: 0,
        query_count: 4,
        data_size: 8,
        p_data: &skeleton,
        stride: 64,
        flags: QueryResultFlags::RESULT_64_BIT | QueryResultFlags::WITH_AVAILABILITY_BIT,
    };
    // SAFETY: as above.
    let (r, _) = unsafe { calls::get_query_pool_results(&g.dp, &mut cx, &a) }.unwrap();
    assert_eq!(
        r.p_data.len(),
        8,
        "only what the client asked for comes back"
    );
    assert!(r.ret == VkResult::SUCCESS || r.ret == VkResult::NOT_READY);
    let a = GetQueryPoolResultsArgs {
        stride: 1 << 40,
        ..a
    };
    // SAFETY: as above.
    let e = unsafe { calls::get_query_pool_results(&g.dp, &mut cx, &a) }.unwrap_err();
    assert!(
        rule(e).starts_with("vkGetQueryPoolResults: pData: (count 4 - 1) * stride 1099511627776")
    );

    // destroy_object: query pool and command buffer (freed from its pool) go; an instance
    // is not a device child.
    // SAFETY: both handles are live children of the device and no longer used.
    unsafe {
        calls::destroy_object(&g.dp, g.device, handles::QueryPool::OBJECT_TYPE, qp.0, 0).unwrap();
        calls::destroy_object(
            &g.dp,
            g.device,
            handles::CommandBuffer::OBJECT_TYPE,
            _cb.0,
            pool.0,
        )
        .unwrap();
        calls::destroy_object(
            &g.dp,
            g.device,
            handles::CommandPool::OBJECT_TYPE,
            pool.0,
            0,
        )
        .unwrap();
    }
    // SAFETY: the handle is not used for an unknown type.
    let e = unsafe { calls::destroy_object(&g.dp, g.device, handles::Instance::OBJECT_TYPE, 1, 0) };
    assert_eq!(
        e,
        Err(CallError::CannotDestroy(handles::Instance::OBJECT_TYPE))
    );
}

#[test]
fn struct_rules_run_in_the_lowering() {
    let table = Table::default();
    let arena = Bump::new();
    let limits = vk::PhysicalDeviceLimits {
        max_vertex_input_attributes: 16,
        max_vertex_input_bindings: 16,
        ..Default::default()
    };
    let mut cx = LowerCx::with_limits(&arena, &table, Some(&limits));
    let code = [0x0723_0203u32, 0, 0];
    let shader = ShaderModuleCreateInfo {
        code_size: 11,
        p_code: &code[..2],
        ..Default::default()
    };
    assert_eq!(
        err(shader.lower(&mut cx)),
        "VkShaderModuleCreateInfo: codeSize 11 is not a multiple of 4"
    );
    let entries = [SpecializationMapEntry {
        constant_id: 0,
        offset: 4,
        size: 8,
    }];
    let data = [0u8; 8];
    let spec = SpecializationInfo {
        map_entry_count: 1,
        p_map_entries: &entries,
        data_size: 8,
        p_data: &data,
    };
    assert_eq!(
        err(spec.lower(&mut cx)),
        "VkSpecializationInfo: pMapEntries[0]: offset 4 + size 8 exceeds dataSize 8"
    );
    let write = WriteDescriptorSet {
        descriptor_count: 3,
        descriptor_type: DescriptorType::UNIFORM_BUFFER,
        ..Default::default()
    };
    assert_eq!(
        err(write.lower(&mut cx)),
        "VkWriteDescriptorSet: descriptorType 6 reads descriptorCount 3 elements of pBufferInfo, 0 travelled"
    );
    let attr = VertexInputAttributeDescription {
        location: 16,
        ..Default::default()
    };
    assert_eq!(
        err(attr.lower(&mut cx)),
        "VkVertexInputAttributeDescription: location 16 is not below maxVertexInputAttributes 16"
    );
    let attr = VertexInputAttributeDescription {
        location: 15,
        ..Default::default()
    };
    assert_eq!(attr.lower(&mut cx).unwrap().location, 15);
}

#[test]
fn image_create_infos_are_checked_against_type_and_limits() {
    let table = Table::default();
    let arena = Bump::new();
    let limits = vk::PhysicalDeviceLimits {
        max_image_dimension1_d: 4096,
        max_image_dimension2_d: 4096,
        max_image_dimension3_d: 256,
        max_image_dimension_cube: 1024,
        max_image_array_layers: 64,
        ..Default::default()
    };
    let mut cx = LowerCx::with_limits(&arena, &table, Some(&limits));
    let image = |ty, flags, (w, h, d), levels, layers| ImageCreateInfo {
        flags: ImageCreateFlags(flags),
        image_type: ty,
        extent: Extent3D {
            width: w,
            height: h,
            depth: d,
        },
        mip_levels: levels,
        array_layers: layers,
        samples: SampleCountFlagBits::COUNT_1_BIT,
        ..Default::default()
    };
    let vuid = "(VUID-VkImageCreateInfo-imageType-00956, -00957, -00954, -02251, extent-02252, \
                -02253, -02254, mipLevels-00958)";
    let cases = [
        // The fuzz finding's shape: a 2D image of depth 654311425.
        (
            image(ImageType::TYPE_2D, 0, (16, 16, 654_311_425), 1, 1),
            format!("a 2D image has extent 16x16x654311425: depth must be 1 {vuid}"),
        ),
        (
            image(ImageType::TYPE_1D, 0, (16, 2, 1), 1, 1),
            format!("a 1D image has extent 16x2x1: height and depth must be 1 {vuid}"),
        ),
        (
            image(ImageType::TYPE_2D, 0, (8192, 16, 1), 1, 1),
            format!("extent 8192x16x1: 8192 exceeds maxImageDimension2D 4096 {vuid}"),
        ),
        (
            image(ImageType::TYPE_2D, 0x10, (2048, 2048, 1), 1, 6),
            format!("extent 2048x2048x1: 2048 exceeds maxImageDimensionCube 1024 {vuid}"),
        ),
        (
            image(ImageType::TYPE_2D, 0x10, (64, 32, 1), 1, 6),
            format!("a cube-compatible image has extent 64x32: not square {vuid}"),
        ),
        (
            image(ImageType::TYPE_3D, 0, (16, 16, 512), 1, 1),
            format!("extent 16x16x512: 512 exceeds maxImageDimension3D 256 {vuid}"),
        ),
        (
            image(ImageType::TYPE_2D, 0, (256, 100, 1), 10, 1),
            format!("mipLevels 10 exceeds 9 (floor(log2(max extent)) + 1 for 256x100x1) {vuid}"),
        ),
        (
            image(ImageType::TYPE_2D, 0, (16, 16, 1), 1, 256),
            "arrayLayers 256 exceeds maxImageArrayLayers 64".to_string(),
        ),
    ];
    for (info, want) in cases {
        assert_eq!(
            err(info.lower(&mut cx)),
            format!("VkImageCreateInfo: {want}")
        );
    }
    let ok = image(ImageType::TYPE_2D, 0, (256, 100, 1), 9, 64).lower(&mut cx);
    assert_eq!(ok.unwrap().mip_levels, 9);
    let ok = image(ImageType::TYPE_3D, 0, (1, 1, 256), 9, 1).lower(&mut cx);
    assert_eq!(ok.unwrap().extent.depth, 256);
}

#[test]
fn non_optional_handles_must_not_be_null() {
    let table = Table::default();
    table.put::<handles::Buffer>(7, 0x70);
    let arena = Bump::new();
    let mut cx = LowerCx::new(&arena, &table);
    let bind = BindBufferMemoryInfo {
        buffer: Id::from_raw(7),
        ..Default::default()
    };
    assert_eq!(
        err(bind.lower(&mut cx)),
        "VkBindBufferMemoryInfo.memory: VkDeviceMemory must not be VK_NULL_HANDLE"
    );
    // A NULLABLE_HANDLES row: the sampler of an image-only descriptor may be NULL.
    let image = DescriptorImageInfo::default();
    assert_eq!(image.lower(&mut cx).unwrap().sampler, vk::Sampler::NULL);
    // vk.xml marks it optional.
    let buffer = DescriptorBufferInfo::default();
    assert_eq!(buffer.lower(&mut cx).unwrap().buffer, vk::Buffer::NULL);
}

/// A dispatch layer with every Handwritten handler: it names the command it ran.
struct Names;
macro_rules! handlers {
    ($($m:ident: $a:ident),* ; $($m2:ident: $a2:ident),* $(,)?) => {
        impl policy::Handwritten<u32> for Names {
            type Out = &'static str;
            $(fn $m(&self, cx: &mut u32, _a: &$a<'_>) -> &'static str {
                *cx += 1;
                stringify!($m)
            })*
            $(fn $m2(&self, cx: &mut u32, _a: &$a2) -> &'static str {
                *cx += 1;
                stringify!($m2)
            })*
        }
    };
}
handlers!(
    enumerate_instance_version: EnumerateInstanceVersionArgs,
    enumerate_instance_extension_properties: EnumerateInstanceExtensionPropertiesArgs,
    create_instance: CreateInstanceArgs,
    enumerate_physical_devices: EnumeratePhysicalDevicesArgs,
    enumerate_physical_device_groups: EnumeratePhysicalDeviceGroupsArgs,
    enumerate_device_extension_properties: EnumerateDeviceExtensionPropertiesArgs,
    create_device: CreateDeviceArgs,
    allocate_memory: AllocateMemoryArgs,
    create_buffer: CreateBufferArgs,
    create_image: CreateImageArgs,
    create_render_pass: CreateRenderPassArgs,
    create_render_pass2: CreateRenderPass2Args,
    create_image_view: CreateImageViewArgs,
    create_framebuffer: CreateFramebufferArgs,
    create_descriptor_set_layout: CreateDescriptorSetLayoutArgs,
    create_pipeline_layout: CreatePipelineLayoutArgs,
    create_shader_module: CreateShaderModuleArgs,
    create_compute_pipelines: CreateComputePipelinesArgs,
    create_graphics_pipelines: CreateGraphicsPipelinesArgs,
    update_descriptor_sets: UpdateDescriptorSetsArgs,
    cmd_push_descriptor_set: CmdPushDescriptorSetArgs,
    cmd_push_descriptor_set2: CmdPushDescriptorSet2Args,
    get_device_queue2: GetDeviceQueue2Args,
    get_physical_device_external_semaphore_properties: GetPhysicalDeviceExternalSemaphorePropertiesArgs,
    get_physical_device_format_properties2: GetPhysicalDeviceFormatProperties2Args,
    get_physical_device_image_format_properties2: GetPhysicalDeviceImageFormatProperties2Args,
    get_physical_device_external_buffer_properties: GetPhysicalDeviceExternalBufferPropertiesArgs,
    get_image_drm_format_modifier_properties_ext: GetImageDrmFormatModifierPropertiesEXTArgs,
    allocate_command_buffers: AllocateCommandBuffersArgs,
    allocate_descriptor_sets: AllocateDescriptorSetsArgs,
    queue_submit: QueueSubmitArgs,
    queue_submit2: QueueSubmit2Args,
    queue_bind_sparse: QueueBindSparseArgs,
    wait_for_fences: WaitForFencesArgs,
    wait_semaphores: WaitSemaphoresArgs;
    destroy_instance: DestroyInstanceArgs,
    destroy_device: DestroyDeviceArgs,
    reset_descriptor_pool: ResetDescriptorPoolArgs,
    queue_wait_idle: QueueWaitIdleArgs,
    device_wait_idle: DeviceWaitIdleArgs,
);

#[test]
fn policy_routes_every_class() {
    use venus_protocol::{Command, CommandType};
    let p = policy::policy_of(CommandType::GET_DEVICE_QUEUE).unwrap();
    assert_eq!(
        p.policy,
        Policy::Refused {
            why: "queues are obtained with vkGetDeviceQueue2 only, contract §5.3"
        }
    );
    assert_eq!(
        policy::policy_of(CommandType::CREATE_INSTANCE)
            .unwrap()
            .policy,
        Policy::Handwritten
    );
    assert_eq!(
        policy::policy_of(CommandType::DESTROY_BUFFER)
            .unwrap()
            .policy,
        Policy::Destroy
    );
    assert_eq!(
        policy::policy_of(CommandType::FREE_COMMAND_BUFFERS)
            .unwrap()
            .policy,
        Policy::Destroy
    );
    let draw = policy::policy_of(CommandType::CMD_DRAW_MULTI_EXT).unwrap();
    assert_eq!((draw.policy, draw.checks.len()), (Policy::Generic, 1));
    assert!(policy::policy_of(CommandType(-1)).is_none());
    assert!(policy::policy_of(CommandType::CREATE_RING_MESA).is_none());

    let mut n = 0u32;
    let q = Id::from_raw(3);
    let get = Command::GetDeviceQueue(GetDeviceQueueArgs {
        device: Id::from_raw(1),
        queue_family_index: 0,
        queue_index: 0,
        p_queue: &q,
    });
    assert!(matches!(
        policy::route(&Names, &mut n, &get),
        Routed::Refused {
            command: "vkGetDeviceQueue",
            ..
        }
    ));
    let free = [Id::from_raw(5), Id::NULL, Id::from_raw(6)];
    let cmd = Command::FreeCommandBuffers(FreeCommandBuffersArgs {
        device: Id::from_raw(1),
        command_pool: Id::from_raw(4),
        command_buffer_count: 3,
        p_command_buffers: &free,
    });
    let Routed::Destroy(d) = policy::route(&Names, &mut n, &cmd) else {
        panic!("not a destroy")
    };
    assert_eq!(
        d,
        policy::Destroy {
            command: "vkFreeCommandBuffers",
            object_type: handles::CommandBuffer::OBJECT_TYPE,
            device: 1,
            pool: Some(4),
            objects: vec![5, 6],
        }
    );
    let cmd = Command::DeviceWaitIdle(DeviceWaitIdleArgs {
        device: Id::from_raw(1),
    });
    assert!(matches!(
        policy::route(&Names, &mut n, &cmd),
        Routed::Handled("device_wait_idle")
    ));
    assert_eq!(n, 1);
    let cmd = Command::CmdDraw(CmdDrawArgs {
        command_buffer: Id::from_raw(2),
        vertex_count: 3,
        instance_count: 1,
        first_vertex: 0,
        first_instance: 0,
    });
    assert!(matches!(
        policy::route(&Names, &mut n, &cmd),
        Routed::Generic
    ));

    // The generic execute() refuses what the policy refuses.
    let table = Table::default();
    let arena = Bump::new();
    let mut cx = LowerCx::new(&arena, &table);
    let dp = DeviceProcs::default();
    // SAFETY: nothing reaches the driver: the command is refused first.
    let r = unsafe { calls::execute(&InstanceProcs::default(), Some(&dp), &mut cx, &get) };
    assert_eq!(
        r.unwrap().unwrap_err().to_string(),
        "vkGetDeviceQueue is refused: queues are obtained with vkGetDeviceQueue2 only, contract §5.3"
    );
}

#[test]
fn host_only_external_memory_host_on_lavapipe() {
    let Some(g) = lavapipe() else { return };
    // The property struct chained into vkGetPhysicalDeviceProperties2.
    let mut host = vk::PhysicalDeviceExternalMemoryHostPropertiesEXT::default();
    assert_eq!(host.s_type.0, 1_000_178_002);
    let mut props = vk::PhysicalDeviceProperties2 {
        p_next: &mut host as *mut _ as *mut _,
        ..Default::default()
    };
    // SAFETY: pd is live; the chain lives on this frame.
    unsafe { (g.ip.get_physical_device_properties2.unwrap())(g.pd, &mut props) };
    let align = host.min_imported_host_pointer_alignment as usize;
    assert!(align.is_power_of_two(), "alignment {align}");

    let layout = std::alloc::Layout::from_size_align(align * 4, align).unwrap();
    // SAFETY: non-zero size.
    let mem = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!mem.is_null());
    let mut out = vk::MemoryHostPointerPropertiesEXT::default();
    assert_eq!(out.s_type.0, 1_000_178_001);
    let f = g.dp.get_memory_host_pointer_properties_ext.expect("loaded");
    // SAFETY: `mem` is a live allocation aligned as the driver requires; `out` is a local.
    let r = unsafe {
        f(
            g.device,
            ExternalMemoryHandleTypeFlagBits(0x80), // HOST_ALLOCATION_BIT_EXT
            mem as *const _,
            &mut out,
        )
    };
    assert_eq!(r, VkResult::SUCCESS);
    assert_ne!(out.memory_type_bits, 0);
    // SAFETY: allocated above with this layout; the driver keeps no reference.
    unsafe { std::alloc::dealloc(mem, layout) };
    // The fd entry points of the WSI emulation are loaded too.
    assert!(g.dp.get_memory_fd_khr.is_none() || g.dp.get_semaphore_fd_khr.is_some());
}
