//! Offscreen rendering through a real Vulkan client: a textured (a 64×64 image uploaded
//! through a staging buffer, a linear sampler), depth-tested, 4× multisampled scene resolved
//! into a 256×256 RGBA8 image, copied to a host-visible buffer and written as raw RGBA.
//!
//! Usage: `venus-render <out.rgba> [--png <out.png>] [--frames F]`. Prints
//! `render OK width=256 height=256 frames=<F> time_ms=<median per frame> fps=<..>
//! checksum=<fnv1a-64 hex>`; exit status 1 on a Vulkan error or when the picture is wrong:
//! the scene draws a near red quad, then a far blue quad overlapping it (depth must keep the
//! red one in front), then a green triangle through both; sample pixels are checked.

use std::time::{Duration, Instant};

use ash::vk;
use venus_testapps::gpu::{arg, exit_on_error, fnv1a, ms, Buffer, Error, Gpu, Result, VkContext};

const VERT_SPV: &[u8] = include_bytes!("../../shaders/textured.vert.spv");
const FRAG_SPV: &[u8] = include_bytes!("../../shaders/textured.frag.spv");
const SIZE: u32 = 256;
const TEX: u32 = 64;
const COLOR: vk::Format = vk::Format::R8G8B8A8_UNORM;
const DEPTH: vk::Format = vk::Format::D32_SFLOAT;
const SAMPLES: vk::SampleCountFlags = vk::SampleCountFlags::TYPE_4;
/// Floats per vertex: position (3), texture coordinate (2), tint (4).
const STRIDE: usize = 9;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    exit_on_error("venus-render", run(&args));
}

fn run(args: &[String]) -> Result<()> {
    let out = args
        .first()
        .filter(|a| !a.starts_with("--"))
        .ok_or_else(|| {
            Error::Other("usage: venus-render <out.rgba> [--png P] [--frames F]".into())
        })?;
    let frames: u32 = arg(args, "--frames", 1)?.max(1);
    let png: String = arg(args, "--png", String::new())?;
    let gpu = Gpu::new(c"venus-render")?;
    eprintln!("device: {}", gpu.device_name());
    let mut scene = Scene::new(&gpu)?;
    let result = scene.render(&gpu, frames);
    let pixels = scene.readback.bytes().to_vec();
    scene.destroy(&gpu);
    let times = result?;
    check_picture(&pixels)?;
    std::fs::write(out, &pixels).map_err(|e| Error::Other(format!("writing {out}: {e}")))?;
    if !png.is_empty() {
        let p = png;
        std::fs::write(&p, encode_png(&pixels, SIZE, SIZE))
            .map_err(|e| Error::Other(format!("writing {p}: {e}")))?;
    }
    let mut sorted = times;
    sorted.sort();
    let t = sorted[sorted.len() / 2];
    println!(
        "render OK width={SIZE} height={SIZE} frames={frames} time_ms={:.3} fps={:.1} \
         checksum={:016x}",
        ms(t),
        1.0 / t.as_secs_f64(),
        fnv1a(&pixels)
    );
    Ok(())
}

/// The scene's geometry: a near red quad, a far blue quad drawn after it, a green triangle
/// whose depth runs from near to far.
fn vertices() -> Vec<f32> {
    let quad = |x0: f32, y0: f32, x1: f32, y1: f32, z: f32, tint: [f32; 4]| {
        let corner = |x: f32, y: f32, u: f32, v: f32| {
            let mut c = vec![x, y, z, u, v];
            c.extend(tint);
            c
        };
        let (a, b, c, d) = (
            corner(x0, y0, 0.0, 0.0),
            corner(x1, y0, 2.0, 0.0),
            corner(x1, y1, 2.0, 2.0),
            corner(x0, y1, 0.0, 2.0),
        );
        [a.clone(), b, c.clone(), a, c, d].concat()
    };
    let mut v = quad(-0.6, -0.6, 0.4, 0.4, 0.25, [1.0, 0.3, 0.3, 1.0]);
    v.extend(quad(-0.4, -0.4, 0.6, 0.6, 0.75, [0.3, 0.3, 1.0, 1.0]));
    let green = [0.3, 1.0, 0.3, 1.0];
    for (x, y, z, u, w) in [
        (-0.9, 0.8, 0.1, 0.0, 1.0),
        (0.9, 0.9, 0.9, 1.0, 1.0),
        (0.1, 0.2, 0.5, 0.5, 0.0),
    ] {
        v.extend([x, y, z, u, w]);
        v.extend(green);
    }
    v
}

/// The texture: a checkerboard of 8×8 cells, white and a gradient grey.
fn texture() -> Vec<u8> {
    let mut t = Vec::with_capacity((TEX * TEX * 4) as usize);
    for y in 0..TEX {
        for x in 0..TEX {
            let on = ((x / 8) + (y / 8)) % 2 == 0;
            let g = if on { 255 } else { 96 + (x * 2) as u8 };
            t.extend([g, g, g, 255]);
        }
    }
    t
}

/// The pixel at clip-space (x, y).
fn pixel(p: &[u8], x: f32, y: f32) -> [u8; 4] {
    let px = (((x + 1.0) / 2.0) * SIZE as f32) as usize;
    let py = (((y + 1.0) / 2.0) * SIZE as f32) as usize;
    let i = (py * SIZE as usize + px) * 4;
    [p[i], p[i + 1], p[i + 2], p[i + 3]]
}

fn check_picture(p: &[u8]) -> Result<()> {
    type Check = (&'static str, f32, f32, fn([u8; 4]) -> bool);
    let checks: [Check; 5] = [
        ("background", -0.95, -0.95, |c| c[0] == c[2] && c[0] < 40),
        ("red quad alone", -0.5, -0.5, |c| c[0] > 2 * c[2]),
        ("red quad in front of the blue one", -0.1, -0.1, |c| {
            c[0] > 2 * c[2]
        }),
        ("blue quad alone", 0.5, -0.1, |c| c[2] > 2 * c[0]),
        ("green triangle", 0.0, 0.6, |c| c[1] > 2 * c[0]),
    ];
    for (what, x, y, ok) in checks {
        let c = pixel(p, x, y);
        if !ok(c) || c[3] != 255 {
            return Err(Error::Mismatch(format!(
                "{what} at ({x}, {y}) has colour {c:?}"
            )));
        }
    }
    Ok(())
}

/// An image with its memory and a view.
struct Image {
    image: vk::Image,
    memory: vk::DeviceMemory,
    view: vk::ImageView,
}

impl Image {
    fn new(
        gpu: &Gpu,
        (format, extent, samples): (vk::Format, u32, vk::SampleCountFlags),
        usage: vk::ImageUsageFlags,
        aspect: vk::ImageAspectFlags,
    ) -> Result<Self> {
        let d = &gpu.device;
        let info = vk::ImageCreateInfo::default()
            .image_type(vk::ImageType::TYPE_2D)
            .format(format)
            .extent(vk::Extent3D {
                width: extent,
                height: extent,
                depth: 1,
            })
            .mip_levels(1)
            .array_layers(1)
            .samples(samples)
            .tiling(vk::ImageTiling::OPTIMAL)
            .usage(usage);
        // SAFETY: valid create infos on our device; the memory is bound before the view.
        unsafe {
            let image = d.create_image(&info, None).ctx("vkCreateImage")?;
            let req = d.get_image_memory_requirements(image);
            let ty = gpu
                .memory_type(req.memory_type_bits, vk::MemoryPropertyFlags::DEVICE_LOCAL)
                .or_else(|| gpu.memory_type(req.memory_type_bits, vk::MemoryPropertyFlags::empty()))
                .ok_or_else(|| Error::Unsupported("no memory type for an image".into()))?;
            let memory = d
                .allocate_memory(
                    &vk::MemoryAllocateInfo::default()
                        .allocation_size(req.size)
                        .memory_type_index(ty),
                    None,
                )
                .ctx("vkAllocateMemory")?;
            d.bind_image_memory(image, memory, 0)
                .ctx("vkBindImageMemory")?;
            let view = d
                .create_image_view(
                    &vk::ImageViewCreateInfo::default()
                        .image(image)
                        .view_type(vk::ImageViewType::TYPE_2D)
                        .format(format)
                        .subresource_range(range(aspect)),
                    None,
                )
                .ctx("vkCreateImageView")?;
            Ok(Self {
                image,
                memory,
                view,
            })
        }
    }

    fn destroy(&self, gpu: &Gpu) {
        // SAFETY: called after the device is idle (Scene::destroy).
        unsafe {
            gpu.device.destroy_image_view(self.view, None);
            gpu.device.destroy_image(self.image, None);
            gpu.device.free_memory(self.memory, None);
        }
    }
}

fn range(aspect: vk::ImageAspectFlags) -> vk::ImageSubresourceRange {
    vk::ImageSubresourceRange {
        aspect_mask: aspect,
        base_mip_level: 0,
        level_count: 1,
        base_array_layer: 0,
        layer_count: 1,
    }
}

/// A layout transition of a colour image.
fn transition(
    gpu: &Gpu,
    cmd: vk::CommandBuffer,
    image: vk::Image,
    (from, to): (vk::ImageLayout, vk::ImageLayout),
    src: (vk::PipelineStageFlags, vk::AccessFlags),
    dst: (vk::PipelineStageFlags, vk::AccessFlags),
) {
    let b = [vk::ImageMemoryBarrier::default()
        .old_layout(from)
        .new_layout(to)
        .src_access_mask(src.1)
        .dst_access_mask(dst.1)
        .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
        .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
        .image(image)
        .subresource_range(range(vk::ImageAspectFlags::COLOR))];
    // SAFETY: cmd is recording; the image is ours.
    unsafe {
        gpu.device.cmd_pipeline_barrier(
            cmd,
            src.0,
            dst.0,
            vk::DependencyFlags::empty(),
            &[],
            &[],
            &b,
        )
    }
}

fn copy_region() -> vk::BufferImageCopy {
    vk::BufferImageCopy::default()
        .image_subresource(vk::ImageSubresourceLayers {
            aspect_mask: vk::ImageAspectFlags::COLOR,
            mip_level: 0,
            base_array_layer: 0,
            layer_count: 1,
        })
        .image_extent(vk::Extent3D {
            width: 0,
            height: 0,
            depth: 1,
        })
}

/// Every object of the scene.
struct Scene {
    texture: Image,
    sampler: vk::Sampler,
    color: Image,
    depth: Image,
    resolve: Image,
    vertices: Buffer,
    readback: Buffer,
    render_pass: vk::RenderPass,
    framebuffer: vk::Framebuffer,
    set_layout: vk::DescriptorSetLayout,
    pool: vk::DescriptorPool,
    set: vk::DescriptorSet,
    layout: vk::PipelineLayout,
    pipeline: vk::Pipeline,
}

impl Scene {
    fn new(gpu: &Gpu) -> Result<Self> {
        use vk::ImageUsageFlags as U;
        let color_aspect = vk::ImageAspectFlags::COLOR;
        let texture = Image::new(
            gpu,
            (COLOR, TEX, vk::SampleCountFlags::TYPE_1),
            U::SAMPLED | U::TRANSFER_DST,
            color_aspect,
        )?;
        let color = Image::new(
            gpu,
            (COLOR, SIZE, SAMPLES),
            U::COLOR_ATTACHMENT | U::TRANSIENT_ATTACHMENT,
            color_aspect,
        )?;
        let depth = Image::new(
            gpu,
            (DEPTH, SIZE, SAMPLES),
            U::DEPTH_STENCIL_ATTACHMENT | U::TRANSIENT_ATTACHMENT,
            vk::ImageAspectFlags::DEPTH,
        )?;
        let resolve = Image::new(
            gpu,
            (COLOR, SIZE, vk::SampleCountFlags::TYPE_1),
            U::COLOR_ATTACHMENT | U::TRANSFER_SRC,
            color_aspect,
        )?;
        let host = vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT;
        let verts = vertices();
        let mut vertices = gpu.buffer(
            (verts.len() * 4) as u64,
            vk::BufferUsageFlags::VERTEX_BUFFER,
            host,
        )?;
        vertices.floats_mut().copy_from_slice(&verts);
        let readback = gpu.buffer(
            u64::from(SIZE * SIZE * 4),
            vk::BufferUsageFlags::TRANSFER_DST,
            host,
        )?;
        let render_pass = render_pass(gpu)?;
        let views = [color.view, depth.view, resolve.view];
        let fb = vk::FramebufferCreateInfo::default()
            .render_pass(render_pass)
            .attachments(&views)
            .width(SIZE)
            .height(SIZE)
            .layers(1);
        // SAFETY: valid create infos; the views match the render pass's attachments.
        let (framebuffer, sampler) = unsafe {
            (
                gpu.device
                    .create_framebuffer(&fb, None)
                    .ctx("vkCreateFramebuffer")?,
                gpu.device
                    .create_sampler(&sampler_info(), None)
                    .ctx("vkCreateSampler")?,
            )
        };
        let (set_layout, pool, set) = descriptors(gpu, texture.view, sampler)?;
        let (layout, pipeline) = pipeline(gpu, set_layout, render_pass)?;
        let scene = Self {
            texture,
            sampler,
            color,
            depth,
            resolve,
            vertices,
            readback,
            render_pass,
            framebuffer,
            set_layout,
            pool,
            set,
            layout,
            pipeline,
        };
        scene.upload_texture(gpu)?;
        Ok(scene)
    }

    /// Texture bytes -> staging buffer -> image (transfer dst) -> shader-read layout.
    fn upload_texture(&self, gpu: &Gpu) -> Result<()> {
        let tex = texture();
        let mut staging = gpu.host_buffer(tex.len() as u64)?;
        staging.bytes_mut().copy_from_slice(&tex);
        let cmd = gpu.begin()?;
        let top = (
            vk::PipelineStageFlags::TOP_OF_PIPE,
            vk::AccessFlags::empty(),
        );
        let xfer = (
            vk::PipelineStageFlags::TRANSFER,
            vk::AccessFlags::TRANSFER_WRITE,
        );
        let frag = (
            vk::PipelineStageFlags::FRAGMENT_SHADER,
            vk::AccessFlags::SHADER_READ,
        );
        let img = self.texture.image;
        transition(
            gpu,
            cmd,
            img,
            (
                vk::ImageLayout::UNDEFINED,
                vk::ImageLayout::TRANSFER_DST_OPTIMAL,
            ),
            top,
            xfer,
        );
        let mut region = copy_region();
        region.image_extent.width = TEX;
        region.image_extent.height = TEX;
        // SAFETY: cmd is recording; the image is in TRANSFER_DST_OPTIMAL.
        unsafe {
            gpu.device.cmd_copy_buffer_to_image(
                cmd,
                staging.buffer,
                img,
                vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                &[region],
            );
        }
        let layouts = (
            vk::ImageLayout::TRANSFER_DST_OPTIMAL,
            vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL,
        );
        transition(gpu, cmd, img, layouts, xfer, frag);
        let result = gpu.submit_wait(cmd);
        staging.destroy(gpu);
        result
    }

    /// Renders `frames` times (one submission each) and returns each frame's time; the
    /// last frame is in `readback`.
    fn render(&mut self, gpu: &Gpu, frames: u32) -> Result<Vec<Duration>> {
        let mut times = Vec::new();
        for _ in 0..frames {
            let cmd = gpu.begin()?;
            self.record(gpu, cmd);
            let start = Instant::now();
            gpu.submit_wait(cmd)?;
            times.push(start.elapsed());
        }
        Ok(times)
    }

    fn record(&self, gpu: &Gpu, cmd: vk::CommandBuffer) {
        let d = &gpu.device;
        let clear = [
            vk::ClearValue {
                color: vk::ClearColorValue {
                    float32: [0.1, 0.1, 0.1, 1.0],
                },
            },
            vk::ClearValue {
                depth_stencil: vk::ClearDepthStencilValue {
                    depth: 1.0,
                    stencil: 0,
                },
            },
            vk::ClearValue::default(),
        ];
        let begin = vk::RenderPassBeginInfo::default()
            .render_pass(self.render_pass)
            .framebuffer(self.framebuffer)
            .render_area(
                vk::Extent2D {
                    width: SIZE,
                    height: SIZE,
                }
                .into(),
            )
            .clear_values(&clear);
        let mut region = copy_region();
        region.image_extent.width = SIZE;
        region.image_extent.height = SIZE;
        let count = (vertices().len() / STRIDE) as u32;
        // SAFETY: cmd is recording; every object is ours and alive; the resolve image ends
        // the render pass in TRANSFER_SRC_OPTIMAL (its final layout).
        unsafe {
            d.cmd_begin_render_pass(cmd, &begin, vk::SubpassContents::INLINE);
            d.cmd_bind_pipeline(cmd, vk::PipelineBindPoint::GRAPHICS, self.pipeline);
            d.cmd_bind_descriptor_sets(
                cmd,
                vk::PipelineBindPoint::GRAPHICS,
                self.layout,
                0,
                &[self.set],
                &[],
            );
            d.cmd_bind_vertex_buffers(cmd, 0, &[self.vertices.buffer], &[0]);
            d.cmd_draw(cmd, count, 1, 0, 0);
            d.cmd_end_render_pass(cmd);
            d.cmd_copy_image_to_buffer(
                cmd,
                self.resolve.image,
                vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
                self.readback.buffer,
                &[region],
            );
        }
        gpu.barrier(
            cmd,
            (
                vk::PipelineStageFlags::TRANSFER,
                vk::AccessFlags::TRANSFER_WRITE,
            ),
            (vk::PipelineStageFlags::HOST, vk::AccessFlags::HOST_READ),
        );
    }

    fn destroy(self, gpu: &Gpu) {
        let d = &gpu.device;
        // SAFETY: every submission was waited for; nothing is in use.
        unsafe {
            let _ = d.device_wait_idle();
            d.destroy_pipeline(self.pipeline, None);
            d.destroy_pipeline_layout(self.layout, None);
            d.destroy_descriptor_pool(self.pool, None);
            d.destroy_descriptor_set_layout(self.set_layout, None);
            d.destroy_framebuffer(self.framebuffer, None);
            d.destroy_render_pass(self.render_pass, None);
            d.destroy_sampler(self.sampler, None);
        }
        for image in [&self.texture, &self.color, &self.depth, &self.resolve] {
            image.destroy(gpu);
        }
        self.vertices.destroy(gpu);
        self.readback.destroy(gpu);
    }
}

fn sampler_info() -> vk::SamplerCreateInfo<'static> {
    vk::SamplerCreateInfo::default()
        .mag_filter(vk::Filter::LINEAR)
        .min_filter(vk::Filter::LINEAR)
        .mipmap_mode(vk::SamplerMipmapMode::NEAREST)
        .address_mode_u(vk::SamplerAddressMode::REPEAT)
        .address_mode_v(vk::SamplerAddressMode::REPEAT)
        .address_mode_w(vk::SamplerAddressMode::REPEAT)
        .max_lod(0.0)
}

/// Multisampled colour (cleared) + depth (cleared), resolved into the single-sampled image,
/// which ends in TRANSFER_SRC_OPTIMAL for the copy.
fn render_pass(gpu: &Gpu) -> Result<vk::RenderPass> {
    let attachment = |format, samples, load, layout| {
        vk::AttachmentDescription::default()
            .format(format)
            .samples(samples)
            .load_op(load)
            .store_op(vk::AttachmentStoreOp::DONT_CARE)
            .stencil_load_op(vk::AttachmentLoadOp::DONT_CARE)
            .stencil_store_op(vk::AttachmentStoreOp::DONT_CARE)
            .initial_layout(vk::ImageLayout::UNDEFINED)
            .final_layout(layout)
    };
    let attachments = [
        attachment(
            COLOR,
            SAMPLES,
            vk::AttachmentLoadOp::CLEAR,
            vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL,
        ),
        attachment(
            DEPTH,
            SAMPLES,
            vk::AttachmentLoadOp::CLEAR,
            vk::ImageLayout::DEPTH_STENCIL_ATTACHMENT_OPTIMAL,
        ),
        attachment(
            COLOR,
            vk::SampleCountFlags::TYPE_1,
            vk::AttachmentLoadOp::DONT_CARE,
            vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
        )
        .store_op(vk::AttachmentStoreOp::STORE),
    ];
    let color_ref = [vk::AttachmentReference {
        attachment: 0,
        layout: vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL,
    }];
    let depth_ref = vk::AttachmentReference {
        attachment: 1,
        layout: vk::ImageLayout::DEPTH_STENCIL_ATTACHMENT_OPTIMAL,
    };
    let resolve_ref = [vk::AttachmentReference {
        attachment: 2,
        layout: vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL,
    }];
    let subpass = [vk::SubpassDescription::default()
        .pipeline_bind_point(vk::PipelineBindPoint::GRAPHICS)
        .color_attachments(&color_ref)
        .depth_stencil_attachment(&depth_ref)
        .resolve_attachments(&resolve_ref)];
    use vk::{AccessFlags as A, PipelineStageFlags as S};
    let attach_stages =
        S::COLOR_ATTACHMENT_OUTPUT | S::EARLY_FRAGMENT_TESTS | S::LATE_FRAGMENT_TESTS;
    let attach_access = A::COLOR_ATTACHMENT_WRITE | A::DEPTH_STENCIL_ATTACHMENT_WRITE;
    let deps = [
        // The previous frame's copy (transfer read) before this frame's writes.
        vk::SubpassDependency::default()
            .src_subpass(vk::SUBPASS_EXTERNAL)
            .dst_subpass(0)
            .src_stage_mask(S::TRANSFER | attach_stages)
            .src_access_mask(A::TRANSFER_READ | attach_access)
            .dst_stage_mask(attach_stages)
            .dst_access_mask(attach_access),
        // The resolve before the copy.
        vk::SubpassDependency::default()
            .src_subpass(0)
            .dst_subpass(vk::SUBPASS_EXTERNAL)
            .src_stage_mask(S::COLOR_ATTACHMENT_OUTPUT)
            .src_access_mask(A::COLOR_ATTACHMENT_WRITE)
            .dst_stage_mask(S::TRANSFER)
            .dst_access_mask(A::TRANSFER_READ),
    ];
    let info = vk::RenderPassCreateInfo::default()
        .attachments(&attachments)
        .subpasses(&subpass)
        .dependencies(&deps);
    // SAFETY: a valid create info on our device.
    unsafe { gpu.device.create_render_pass(&info, None) }.ctx("vkCreateRenderPass")
}

/// The combined image sampler's set layout, pool and set (written).
fn descriptors(
    gpu: &Gpu,
    view: vk::ImageView,
    sampler: vk::Sampler,
) -> Result<(
    vk::DescriptorSetLayout,
    vk::DescriptorPool,
    vk::DescriptorSet,
)> {
    let d = &gpu.device;
    let ty = vk::DescriptorType::COMBINED_IMAGE_SAMPLER;
    let bindings = [vk::DescriptorSetLayoutBinding::default()
        .binding(0)
        .descriptor_type(ty)
        .descriptor_count(1)
        .stage_flags(vk::ShaderStageFlags::FRAGMENT)];
    let sizes = [vk::DescriptorPoolSize {
        ty,
        descriptor_count: 1,
    }];
    // SAFETY: valid create infos; the view and sampler are alive.
    unsafe {
        let layout = d
            .create_descriptor_set_layout(
                &vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings),
                None,
            )
            .ctx("vkCreateDescriptorSetLayout")?;
        let pool = d
            .create_descriptor_pool(
                &vk::DescriptorPoolCreateInfo::default()
                    .max_sets(1)
                    .pool_sizes(&sizes),
                None,
            )
            .ctx("vkCreateDescriptorPool")?;
        let layouts = [layout];
        let set = d
            .allocate_descriptor_sets(
                &vk::DescriptorSetAllocateInfo::default()
                    .descriptor_pool(pool)
                    .set_layouts(&layouts),
            )
            .ctx("vkAllocateDescriptorSets")?[0];
        let image = [vk::DescriptorImageInfo {
            sampler,
            image_view: view,
            image_layout: vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL,
        }];
        let write = vk::WriteDescriptorSet::default()
            .dst_set(set)
            .descriptor_type(ty)
            .image_info(&image);
        d.update_descriptor_sets(&[write], &[]);
        Ok((layout, pool, set))
    }
}

/// The vertex buffer binding: [`STRIDE`] floats per vertex.
const BINDINGS: [vk::VertexInputBindingDescription; 1] = [vk::VertexInputBindingDescription {
    binding: 0,
    stride: (STRIDE * 4) as u32,
    input_rate: vk::VertexInputRate::VERTEX,
}];

const fn attribute(
    location: u32,
    format: vk::Format,
    floats: u32,
) -> vk::VertexInputAttributeDescription {
    vk::VertexInputAttributeDescription {
        location,
        binding: 0,
        format,
        offset: floats * 4,
    }
}

/// Position, texture coordinate, tint.
const ATTRIBUTES: [vk::VertexInputAttributeDescription; 3] = [
    attribute(0, vk::Format::R32G32B32_SFLOAT, 0),
    attribute(1, vk::Format::R32G32_SFLOAT, 3),
    attribute(2, vk::Format::R32G32B32A32_SFLOAT, 5),
];

/// The graphics pipeline: the vertex layout of [`vertices`], depth test LESS with writes,
/// 4 samples, no culling, a fixed 256×256 viewport.
fn pipeline(
    gpu: &Gpu,
    set_layout: vk::DescriptorSetLayout,
    render_pass: vk::RenderPass,
) -> Result<(vk::PipelineLayout, vk::Pipeline)> {
    let d = &gpu.device;
    let (vert, frag) = (gpu.shader(VERT_SPV)?, gpu.shader(FRAG_SPV)?);
    let stages = [
        vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::VERTEX)
            .module(vert)
            .name(c"main"),
        vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::FRAGMENT)
            .module(frag)
            .name(c"main"),
    ];
    let (binding, attrs) = (BINDINGS, ATTRIBUTES);
    let input = vk::PipelineVertexInputStateCreateInfo::default()
        .vertex_binding_descriptions(&binding)
        .vertex_attribute_descriptions(&attrs);
    let assembly = vk::PipelineInputAssemblyStateCreateInfo::default()
        .topology(vk::PrimitiveTopology::TRIANGLE_LIST);
    let viewport = [vk::Viewport {
        x: 0.0,
        y: 0.0,
        width: SIZE as f32,
        height: SIZE as f32,
        min_depth: 0.0,
        max_depth: 1.0,
    }];
    let scissor = [vk::Rect2D::from(vk::Extent2D {
        width: SIZE,
        height: SIZE,
    })];
    let vp = vk::PipelineViewportStateCreateInfo::default()
        .viewports(&viewport)
        .scissors(&scissor);
    let raster = vk::PipelineRasterizationStateCreateInfo::default()
        .polygon_mode(vk::PolygonMode::FILL)
        .cull_mode(vk::CullModeFlags::NONE)
        .line_width(1.0);
    let ms = vk::PipelineMultisampleStateCreateInfo::default().rasterization_samples(SAMPLES);
    let depth = vk::PipelineDepthStencilStateCreateInfo::default()
        .depth_test_enable(true)
        .depth_write_enable(true)
        .depth_compare_op(vk::CompareOp::LESS);
    let blend = [vk::PipelineColorBlendAttachmentState::default()
        .color_write_mask(vk::ColorComponentFlags::RGBA)];
    let blending = vk::PipelineColorBlendStateCreateInfo::default().attachments(&blend);
    let set_layouts = [set_layout];
    // SAFETY: valid create infos; the shader modules are destroyed after pipeline creation.
    unsafe {
        let layout = d
            .create_pipeline_layout(
                &vk::PipelineLayoutCreateInfo::default().set_layouts(&set_layouts),
                None,
            )
            .ctx("vkCreatePipelineLayout")?;
        let info = [vk::GraphicsPipelineCreateInfo::default()
            .stages(&stages)
            .vertex_input_state(&input)
            .input_assembly_state(&assembly)
            .viewport_state(&vp)
            .rasterization_state(&raster)
            .multisample_state(&ms)
            .depth_stencil_state(&depth)
            .color_blend_state(&blending)
            .layout(layout)
            .render_pass(render_pass)];
        let result = d.create_graphics_pipelines(vk::PipelineCache::null(), &info, None);
        d.destroy_shader_module(vert, None);
        d.destroy_shader_module(frag, None);
        let pipeline = result.map_err(|(_, result)| Error::Vk {
            what: "vkCreateGraphicsPipelines",
            result,
        })?[0];
        Ok((layout, pipeline))
    }
}

/// A minimal PNG (RGBA8, zlib with stored deflate blocks: no compression).
fn encode_png(rgba: &[u8], width: u32, height: u32) -> Vec<u8> {
    let mut raw = Vec::with_capacity(rgba.len() + height as usize);
    for row in rgba.chunks(width as usize * 4) {
        raw.push(0); // filter: none
        raw.extend_from_slice(row);
    }
    let mut z = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = raw.chunks(65535).collect();
    for (i, c) in chunks.iter().enumerate() {
        z.push(u8::from(i + 1 == chunks.len()));
        let len = c.len() as u16;
        z.extend(len.to_le_bytes());
        z.extend((!len).to_le_bytes());
        z.extend_from_slice(c);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    z.extend(((b << 16) | a).to_be_bytes());
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 6, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (ty, data) in [(b"IHDR", ihdr), (b"IDAT", z), (b"IEND", Vec::new())] {
        png.extend((data.len() as u32).to_be_bytes());
        let start = png.len();
        png.extend_from_slice(ty);
        png.extend(&data);
        let crc = crc32(&png[start..]);
        png.extend(crc.to_be_bytes());
    }
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
