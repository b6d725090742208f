//! A Mesa Venus client (through the Vulkan loader, with ash) that creates objects of many
//! kinds, for `tests/lifetimes.rs`. The test points it at a venus-server with `VN_DEBUG=vtest`,
//! `VTEST_SOCKET_NAME` and the Venus ICD.
//!
//! Usage: `venus-lifetimes <destroy-device|exit|hang|clean>`
//!
//! Creates instance, device and queue, then buffers, an image, device memory (bound to both),
//! image and buffer views, a sampler, a command pool with two command buffers (recorded), a
//! descriptor set layout, pool and set (updated), a pipeline layout, a compute shader module
//! (`compute.spvasm`), a pipeline cache, a compute pipeline, a render pass and framebuffer, a
//! query pool, an event, binary and timeline semaphores and a fence, and prints
//! `created <n> objects` (instance and device included; the queue is not created) once a
//! synchronous call (`vkGetFenceStatus`, which waits for its reply when fence feedback is
//! off, as the tests run it) proves the server executed every creation before it. Then:
//! - `destroy-device`: `vkDestroyDevice` with every child alive, `vkDestroyInstance`, exit 0;
//! - `exit`: exit 0 without destroying anything;
//! - `hang`: print `READY` and sleep until killed;
//! - `clean`: destroy everything in reverse order, exit 0.

use std::ffi::CStr;
use std::io::Write;

use ash::vk;

/// The compute shader of `compute.spvasm` (an empty `main`, local size 1×1×1), assembled by
/// hand: see that file for the source text and the word-by-word layout.
const COMPUTE_SPIRV: &[u32] = &[
    0x0723_0203,
    0x0001_0000,
    0,
    5,
    0, // header: magic, 1.0, generator, bound 5, schema
    0x0002_0011,
    1, // OpCapability Shader
    0x0003_000e,
    0,
    1, // OpMemoryModel Logical GLSL450
    0x0005_000f,
    5,
    1,
    0x6e69_616d,
    0, // OpEntryPoint GLCompute %1 "main"
    0x0006_0010,
    1,
    17,
    1,
    1,
    1, // OpExecutionMode %1 LocalSize 1 1 1
    0x0002_0013,
    2, // %2 = OpTypeVoid
    0x0003_0021,
    3,
    2, // %3 = OpTypeFunction %2
    0x0005_0036,
    2,
    1,
    0,
    3, // %1 = OpFunction %2 None %3
    0x0002_00f8,
    4,           // %4 = OpLabel
    0x0001_00fd, // OpReturn
    0x0001_0038, // OpFunctionEnd
];

type Result<T> = std::result::Result<T, String>;

fn vk_err(what: &'static str) -> impl Fn(vk::Result) -> String {
    move |e| format!("{what}: {e}")
}

/// Every object the program created (null where a step was skipped).
#[derive(Default)]
struct Objects {
    buffers: Vec<vk::Buffer>,
    image: vk::Image,
    memory: Vec<vk::DeviceMemory>,
    image_view: vk::ImageView,
    buffer_view: vk::BufferView,
    sampler: vk::Sampler,
    command_pool: vk::CommandPool,
    command_buffers: Vec<vk::CommandBuffer>,
    set_layout: vk::DescriptorSetLayout,
    descriptor_pool: vk::DescriptorPool,
    descriptor_set: vk::DescriptorSet,
    pipeline_layout: vk::PipelineLayout,
    shader: vk::ShaderModule,
    pipeline_cache: vk::PipelineCache,
    pipeline: vk::Pipeline,
    render_pass: vk::RenderPass,
    framebuffer: vk::Framebuffer,
    query_pool: vk::QueryPool,
    event: vk::Event,
    semaphores: Vec<vk::Semaphore>,
    fence: vk::Fence,
    /// Objects created (instance and device included).
    count: usize,
}

struct App {
    _entry: ash::Entry,
    instance: ash::Instance,
    physical: vk::PhysicalDevice,
    device: ash::Device,
    queue_family: u32,
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    if !["destroy-device", "exit", "hang", "clean"].contains(&mode.as_str()) {
        eprintln!("usage: venus-lifetimes <destroy-device|exit|hang|clean>");
        std::process::exit(2);
    }
    if let Err(e) = run(&mode) {
        eprintln!("venus-lifetimes: {e}");
        std::process::exit(1);
    }
}

/// A call that waits for the server's reply: Mesa queues creations without waiting, so only
/// after a reply to a later call has the server certainly executed them all (a killed client's
/// queued commands need not run).
fn round_trip(app: &App, o: &Objects) -> Result<()> {
    // SAFETY: the fence is a live object of our device.
    unsafe { app.device.get_fence_status(o.fence) }
        .map(|_| ())
        .map_err(vk_err("vkGetFenceStatus"))
}

fn run(mode: &str) -> Result<()> {
    let app = App::new()?;
    let mut o = Objects {
        count: 2,
        ..Default::default()
    };
    create_resources(&app, &mut o)?;
    create_descriptors(&app, &mut o)?;
    create_pipeline(&app, &mut o)?;
    create_commands(&app, &mut o)?;
    create_sync(&app, &mut o)?;
    round_trip(&app, &o)?;
    println!("created {} objects", o.count);
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    match mode {
        "destroy-device" => {
            // SAFETY: the device and instance are ours and idle; leaving the children alive
            // is the point of this mode (the host must clean them up).
            unsafe {
                app.device.destroy_device(None);
                app.instance.destroy_instance(None);
            }
        }
        "exit" => {}
        "hang" => {
            println!("READY");
            std::io::stdout().flush().map_err(|e| e.to_string())?;
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        _ => destroy_all(&app, &o)?,
    }
    Ok(())
}

impl App {
    fn new() -> Result<Self> {
        // SAFETY: loading the system Vulkan loader; its initialisation has no preconditions.
        let entry = unsafe { ash::Entry::load() }.map_err(|e| format!("loading Vulkan: {e}"))?;
        let app_info = vk::ApplicationInfo::default()
            .application_name(c"venus-lifetimes")
            .api_version(vk::API_VERSION_1_2);
        let info = vk::InstanceCreateInfo::default().application_info(&app_info);
        // SAFETY: valid create info; every handle below comes from this instance.
        unsafe {
            let instance = entry
                .create_instance(&info, None)
                .map_err(vk_err("vkCreateInstance"))?;
            let physical = *instance
                .enumerate_physical_devices()
                .map_err(vk_err("vkEnumeratePhysicalDevices"))?
                .first()
                .ok_or("no physical device")?;
            let props = instance.get_physical_device_properties(physical);
            let name = CStr::from_ptr(props.device_name.as_ptr());
            eprintln!("device: {}", name.to_string_lossy());
            let queue_family = instance
                .get_physical_device_queue_family_properties(physical)
                .iter()
                .position(|q| q.queue_flags.contains(vk::QueueFlags::COMPUTE))
                .ok_or("no compute queue")? as u32;
            let mut timeline =
                vk::PhysicalDeviceTimelineSemaphoreFeatures::default().timeline_semaphore(true);
            let queues = [vk::DeviceQueueCreateInfo::default()
                .queue_family_index(queue_family)
                .queue_priorities(&[1.0])];
            let dinfo = vk::DeviceCreateInfo::default()
                .queue_create_infos(&queues)
                .push_next(&mut timeline);
            let device = instance
                .create_device(physical, &dinfo, None)
                .map_err(vk_err("vkCreateDevice"))?;
            let _queue = device.get_device_queue(queue_family, 0);
            Ok(Self {
                _entry: entry,
                instance,
                physical,
                device,
                queue_family,
            })
        }
    }

    /// A memory type index allowed by `bits` (the first one).
    fn memory_type(&self, bits: u32) -> Option<u32> {
        // SAFETY: a query on our physical device.
        let props = unsafe {
            self.instance
                .get_physical_device_memory_properties(self.physical)
        };
        (0..props.memory_type_count).find(|i| bits & (1 << i) != 0)
    }
}

/// Buffers, an image, their memory and binds, views and a sampler.
fn create_resources(app: &App, o: &mut Objects) -> Result<()> {
    let d = &app.device;
    let binfo = vk::BufferCreateInfo::default().size(4096).usage(
        vk::BufferUsageFlags::STORAGE_BUFFER
            | vk::BufferUsageFlags::UNIFORM_TEXEL_BUFFER
            | vk::BufferUsageFlags::TRANSFER_DST,
    );
    let iinfo = vk::ImageCreateInfo::default()
        .image_type(vk::ImageType::TYPE_2D)
        .format(vk::Format::R8G8B8A8_UNORM)
        .extent(vk::Extent3D {
            width: 16,
            height: 16,
            depth: 1,
        })
        .mip_levels(1)
        .array_layers(1)
        .samples(vk::SampleCountFlags::TYPE_1)
        .tiling(vk::ImageTiling::OPTIMAL)
        .usage(vk::ImageUsageFlags::SAMPLED | vk::ImageUsageFlags::COLOR_ATTACHMENT);
    // SAFETY: valid create infos on our device; memory is bound once, before any view.
    unsafe {
        for _ in 0..2 {
            o.buffers.push(
                d.create_buffer(&binfo, None)
                    .map_err(vk_err("vkCreateBuffer"))?,
            );
            o.count += 1;
        }
        o.image = d
            .create_image(&iinfo, None)
            .map_err(vk_err("vkCreateImage"))?;
        o.count += 1;
        let buf_req = d.get_buffer_memory_requirements(o.buffers[0]);
        let img_req = d.get_image_memory_requirements(o.image);
        for req in [buf_req, img_req] {
            let ty = app
                .memory_type(req.memory_type_bits)
                .ok_or("no memory type")?;
            let info = vk::MemoryAllocateInfo::default()
                .allocation_size(req.size)
                .memory_type_index(ty);
            o.memory.push(
                d.allocate_memory(&info, None)
                    .map_err(vk_err("vkAllocateMemory"))?,
            );
            o.count += 1;
        }
        d.bind_buffer_memory(o.buffers[0], o.memory[0], 0)
            .map_err(vk_err("vkBindBufferMemory"))?;
        d.bind_image_memory(o.image, o.memory[1], 0)
            .map_err(vk_err("vkBindImageMemory"))?;
        create_views(d, o)
    }
}

/// Image view, buffer view, sampler (the resources have memory).
///
/// # Safety
/// `o.image` and `o.buffers[0]` are bound to memory.
unsafe fn create_views(d: &ash::Device, o: &mut Objects) -> Result<()> {
    let view = vk::ImageViewCreateInfo::default()
        .image(o.image)
        .view_type(vk::ImageViewType::TYPE_2D)
        .format(vk::Format::R8G8B8A8_UNORM)
        .subresource_range(vk::ImageSubresourceRange {
            aspect_mask: vk::ImageAspectFlags::COLOR,
            base_mip_level: 0,
            level_count: 1,
            base_array_layer: 0,
            layer_count: 1,
        });
    let bview = vk::BufferViewCreateInfo::default()
        .buffer(o.buffers[0])
        .format(vk::Format::R32_UINT)
        .range(vk::WHOLE_SIZE);
    // SAFETY: the caller guarantees the memory binds; the create infos are valid.
    unsafe {
        o.image_view = d
            .create_image_view(&view, None)
            .map_err(vk_err("vkCreateImageView"))?;
        o.buffer_view = d
            .create_buffer_view(&bview, None)
            .map_err(vk_err("vkCreateBufferView"))?;
        o.sampler = d
            .create_sampler(&vk::SamplerCreateInfo::default(), None)
            .map_err(vk_err("vkCreateSampler"))?;
    }
    o.count += 3;
    Ok(())
}

/// Descriptor set layout, pool, one set (updated with the bound buffer).
fn create_descriptors(app: &App, o: &mut Objects) -> Result<()> {
    let d = &app.device;
    let bindings = [vk::DescriptorSetLayoutBinding::default()
        .binding(0)
        .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
        .descriptor_count(1)
        .stage_flags(vk::ShaderStageFlags::COMPUTE)];
    let sizes = [vk::DescriptorPoolSize {
        ty: vk::DescriptorType::STORAGE_BUFFER,
        descriptor_count: 4,
    }];
    // SAFETY: valid create infos on our device; the written buffer is bound to memory.
    unsafe {
        o.set_layout = d
            .create_descriptor_set_layout(
                &vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings),
                None,
            )
            .map_err(vk_err("vkCreateDescriptorSetLayout"))?;
        o.descriptor_pool = d
            .create_descriptor_pool(
                &vk::DescriptorPoolCreateInfo::default()
                    .flags(vk::DescriptorPoolCreateFlags::FREE_DESCRIPTOR_SET)
                    .max_sets(4)
                    .pool_sizes(&sizes),
                None,
            )
            .map_err(vk_err("vkCreateDescriptorPool"))?;
        let layouts = [o.set_layout];
        o.descriptor_set = d
            .allocate_descriptor_sets(
                &vk::DescriptorSetAllocateInfo::default()
                    .descriptor_pool(o.descriptor_pool)
                    .set_layouts(&layouts),
            )
            .map_err(vk_err("vkAllocateDescriptorSets"))?[0];
        let info = [vk::DescriptorBufferInfo {
            buffer: o.buffers[0],
            offset: 0,
            range: vk::WHOLE_SIZE,
        }];
        let write = vk::WriteDescriptorSet::default()
            .dst_set(o.descriptor_set)
            .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
            .buffer_info(&info);
        d.update_descriptor_sets(&[write], &[]);
    }
    o.count += 3;
    Ok(())
}

/// Pipeline layout, shader module, pipeline cache, compute pipeline, render pass and
/// framebuffer.
fn create_pipeline(app: &App, o: &mut Objects) -> Result<()> {
    let d = &app.device;
    let layouts = [o.set_layout];
    let ranges = [vk::PushConstantRange {
        stage_flags: vk::ShaderStageFlags::COMPUTE,
        offset: 0,
        size: 16,
    }];
    // SAFETY: valid create infos on our device; the SPIR-V is a valid module.
    unsafe {
        o.pipeline_layout = d
            .create_pipeline_layout(
                &vk::PipelineLayoutCreateInfo::default()
                    .set_layouts(&layouts)
                    .push_constant_ranges(&ranges),
                None,
            )
            .map_err(vk_err("vkCreatePipelineLayout"))?;
        o.shader = d
            .create_shader_module(
                &vk::ShaderModuleCreateInfo::default().code(COMPUTE_SPIRV),
                None,
            )
            .map_err(vk_err("vkCreateShaderModule"))?;
        o.pipeline_cache = d
            .create_pipeline_cache(&vk::PipelineCacheCreateInfo::default(), None)
            .map_err(vk_err("vkCreatePipelineCache"))?;
        let stage = vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::COMPUTE)
            .module(o.shader)
            .name(c"main");
        let info = [vk::ComputePipelineCreateInfo::default()
            .stage(stage)
            .layout(o.pipeline_layout)];
        o.pipeline = d
            .create_compute_pipelines(o.pipeline_cache, &info, None)
            .map_err(|(_, e)| format!("vkCreateComputePipelines: {e}"))?[0];
    }
    o.count += 4;
    create_render_pass(d, o)
}

fn create_render_pass(d: &ash::Device, o: &mut Objects) -> Result<()> {
    let attachments = [vk::AttachmentDescription::default()
        .format(vk::Format::R8G8B8A8_UNORM)
        .samples(vk::SampleCountFlags::TYPE_1)
        .load_op(vk::AttachmentLoadOp::CLEAR)
        .store_op(vk::AttachmentStoreOp::STORE)
        .initial_layout(vk::ImageLayout::UNDEFINED)
        .final_layout(vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL)];
    let color = [vk::AttachmentReference {
        attachment: 0,
        layout: vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL,
    }];
    let subpasses = [vk::SubpassDescription::default()
        .pipeline_bind_point(vk::PipelineBindPoint::GRAPHICS)
        .color_attachments(&color)];
    // SAFETY: valid create infos on our device; the view's image has memory.
    unsafe {
        o.render_pass = d
            .create_render_pass(
                &vk::RenderPassCreateInfo::default()
                    .attachments(&attachments)
                    .subpasses(&subpasses),
                None,
            )
            .map_err(vk_err("vkCreateRenderPass"))?;
        let views = [o.image_view];
        o.framebuffer = d
            .create_framebuffer(
                &vk::FramebufferCreateInfo::default()
                    .render_pass(o.render_pass)
                    .attachments(&views)
                    .width(16)
                    .height(16)
                    .layers(1),
                None,
            )
            .map_err(vk_err("vkCreateFramebuffer"))?;
    }
    o.count += 2;
    Ok(())
}

/// A command pool with two command buffers, both recorded.
fn create_commands(app: &App, o: &mut Objects) -> Result<()> {
    let d = &app.device;
    // SAFETY: valid create/allocate infos; the recorded commands use live objects of
    // this device with valid parameters.
    unsafe {
        o.command_pool = d
            .create_command_pool(
                &vk::CommandPoolCreateInfo::default().queue_family_index(app.queue_family),
                None,
            )
            .map_err(vk_err("vkCreateCommandPool"))?;
        o.command_buffers = d
            .allocate_command_buffers(
                &vk::CommandBufferAllocateInfo::default()
                    .command_pool(o.command_pool)
                    .level(vk::CommandBufferLevel::PRIMARY)
                    .command_buffer_count(2),
            )
            .map_err(vk_err("vkAllocateCommandBuffers"))?;
        for &cb in &o.command_buffers {
            d.begin_command_buffer(cb, &vk::CommandBufferBeginInfo::default())
                .map_err(vk_err("vkBeginCommandBuffer"))?;
            d.cmd_fill_buffer(cb, o.buffers[0], 0, 256, 0x1234_5678);
            let barrier = vk::MemoryBarrier::default()
                .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
                .dst_access_mask(vk::AccessFlags::SHADER_READ);
            d.cmd_pipeline_barrier(
                cb,
                vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::COMPUTE_SHADER,
                vk::DependencyFlags::empty(),
                &[barrier],
                &[],
                &[],
            );
            d.cmd_bind_pipeline(cb, vk::PipelineBindPoint::COMPUTE, o.pipeline);
            d.cmd_bind_descriptor_sets(
                cb,
                vk::PipelineBindPoint::COMPUTE,
                o.pipeline_layout,
                0,
                &[o.descriptor_set],
                &[],
            );
            d.cmd_push_constants(
                cb,
                o.pipeline_layout,
                vk::ShaderStageFlags::COMPUTE,
                0,
                &[0; 16],
            );
            d.cmd_dispatch(cb, 1, 1, 1);
            d.end_command_buffer(cb)
                .map_err(vk_err("vkEndCommandBuffer"))?;
        }
    }
    o.count += 3;
    Ok(())
}

/// Query pool, event, binary and timeline semaphores, fence.
fn create_sync(app: &App, o: &mut Objects) -> Result<()> {
    let d = &app.device;
    let mut timeline = vk::SemaphoreTypeCreateInfo::default()
        .semaphore_type(vk::SemaphoreType::TIMELINE)
        .initial_value(0);
    // SAFETY: valid create infos on our device.
    unsafe {
        o.query_pool = d
            .create_query_pool(
                &vk::QueryPoolCreateInfo::default()
                    .query_type(vk::QueryType::OCCLUSION)
                    .query_count(4),
                None,
            )
            .map_err(vk_err("vkCreateQueryPool"))?;
        o.event = d
            .create_event(&vk::EventCreateInfo::default(), None)
            .map_err(vk_err("vkCreateEvent"))?;
        o.semaphores.push(
            d.create_semaphore(&vk::SemaphoreCreateInfo::default(), None)
                .map_err(vk_err("vkCreateSemaphore"))?,
        );
        o.semaphores.push(
            d.create_semaphore(
                &vk::SemaphoreCreateInfo::default().push_next(&mut timeline),
                None,
            )
            .map_err(vk_err("vkCreateSemaphore (timeline)"))?,
        );
        o.fence = d
            .create_fence(&vk::FenceCreateInfo::default(), None)
            .map_err(vk_err("vkCreateFence"))?;
    }
    o.count += 5;
    Ok(())
}

/// Destroys everything, children first.
fn destroy_all(app: &App, o: &Objects) -> Result<()> {
    let d = &app.device;
    // SAFETY: nothing was submitted, so no object is in use; each is destroyed once, children
    // before parents.
    unsafe {
        d.device_wait_idle().map_err(vk_err("vkDeviceWaitIdle"))?;
        d.destroy_fence(o.fence, None);
        for &s in &o.semaphores {
            d.destroy_semaphore(s, None);
        }
        d.destroy_event(o.event, None);
        d.destroy_query_pool(o.query_pool, None);
        d.free_command_buffers(o.command_pool, &o.command_buffers);
        d.destroy_command_pool(o.command_pool, None);
        d.destroy_framebuffer(o.framebuffer, None);
        d.destroy_render_pass(o.render_pass, None);
        d.destroy_pipeline(o.pipeline, None);
        d.destroy_pipeline_cache(o.pipeline_cache, None);
        d.destroy_shader_module(o.shader, None);
        d.destroy_pipeline_layout(o.pipeline_layout, None);
        d.free_descriptor_sets(o.descriptor_pool, &[o.descriptor_set])
            .map_err(vk_err("vkFreeDescriptorSets"))?;
        d.destroy_descriptor_pool(o.descriptor_pool, None);
        d.destroy_descriptor_set_layout(o.set_layout, None);
        d.destroy_sampler(o.sampler, None);
        d.destroy_buffer_view(o.buffer_view, None);
        d.destroy_image_view(o.image_view, None);
        d.destroy_image(o.image, None);
        for &b in &o.buffers {
            d.destroy_buffer(b, None);
        }
        for &m in &o.memory {
            d.free_memory(m, None);
        }
        d.destroy_device(None);
        app.instance.destroy_instance(None);
    }
    Ok(())
}
