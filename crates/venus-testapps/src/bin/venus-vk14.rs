//! Vulkan 1.4 core features without their extensions: fails unless the device reports
//! apiVersion 1.4 (through Venus: unless the client got the renderer's 1.4 protocol level).
//!
//! - `vkCmdPushDescriptorSet` (core 1.4; `VK_KHR_push_descriptor` is not enabled): SAXPY
//!   (`shaders/saxpy.comp`) over N f32 values whose two storage buffers are pushed, not bound
//!   from a set; the result is checked exactly on the CPU.
//! - `vkGetDeviceImageSubresourceLayout` (core 1.4, from maintenance5): the layout of a
//!   linear RGBA8 image asked from its create info, compared with `vkGetImageSubresourceLayout`
//!   of a real image made from the same info.
//!
//! Usage: `venus-vk14 [--n N]` (default 65536). Prints `api <major>.<minor>.<patch>`, then
//! `push_descriptor OK n=<n>` and `image_layout OK offset=<o> size=<s> row_pitch=<p>`; exit
//! status 1 on any mismatch, Vulkan error or an apiVersion below 1.4.

use std::ffi::CStr;

use ash::vk;
use venus_testapps::gpu::{arg, compute_pipeline, exit_on_error, Error, Gpu, Result, VkContext};

const SAXPY_SPV: &[u8] = include_bytes!("../../shaders/saxpy.comp.spv");
const A: f32 = 3.0;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    exit_on_error("venus-vk14", run(&args));
}

fn run(args: &[String]) -> Result<()> {
    let n: u32 = arg(args, "--n", 65536)?;
    if n == 0 || n > 1 << 26 {
        return Err(Error::Other("--n must be in 1..=2^26".into()));
    }
    let gpu = Gpu::with_api(c"venus-vk14", vk::make_api_version(0, 1, 4, 0))?;
    let v = gpu.props.api_version;
    let (major, minor) = (vk::api_version_major(v), vk::api_version_minor(v));
    println!("api {major}.{minor}.{}", vk::api_version_patch(v));
    eprintln!("device: {}", gpu.device_name());
    if (major, minor) < (1, 4) {
        return Err(Error::Unsupported(format!(
            "apiVersion {major}.{minor} is below 1.4"
        )));
    }
    push_descriptor(&gpu, n)?;
    image_layout(&gpu)
}

/// The device-level entry point `name` (a core 1.4 name: ash 0.38 knows only the KHR ones).
fn device_fn(gpu: &Gpu, name: &'static CStr) -> Result<unsafe extern "system" fn()> {
    // SAFETY: a live device of this instance and a NUL-terminated name.
    let f = unsafe {
        (gpu.instance.fp_v1_0().get_device_proc_addr)(gpu.device.handle(), name.as_ptr())
    };
    f.ok_or_else(|| Error::Unsupported(format!("{name:?} is not provided")))
}

/// SAXPY with both buffers pushed by `vkCmdPushDescriptorSet`.
fn push_descriptor(gpu: &Gpu, n: u32) -> Result<()> {
    let f = device_fn(gpu, c"vkCmdPushDescriptorSet")?;
    // SAFETY: vkCmdPushDescriptorSet has exactly the signature of its KHR alias.
    let push: vk::PFN_vkCmdPushDescriptorSetKHR = unsafe { std::mem::transmute(f) };
    let bytes = u64::from(n) * 4;
    let mut x = gpu.host_buffer(bytes)?;
    let mut y = gpu.host_buffer(bytes)?;
    for (i, (xv, yv)) in x.floats_mut().iter_mut().zip(y.floats_mut()).enumerate() {
        *xv = (i % 1000) as f32;
        *yv = (i % 7) as f32;
    }
    let pipe = PushPipeline::new(gpu)?;
    let cmd = gpu.begin()?;
    let infos = [x.buffer, y.buffer].map(|b| {
        [vk::DescriptorBufferInfo::default()
            .buffer(b)
            .range(vk::WHOLE_SIZE)]
    });
    let writes: Vec<vk::WriteDescriptorSet> = infos
        .iter()
        .enumerate()
        .map(|(i, info)| {
            vk::WriteDescriptorSet::default()
                .dst_binding(i as u32)
                .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                .buffer_info(info)
        })
        .collect();
    let mut constants = A.to_le_bytes().to_vec();
    constants.extend_from_slice(&n.to_le_bytes());
    let d = &gpu.device;
    // SAFETY: cmd is recording; the writes name live buffers and the push-descriptor set 0
    // of pipe.layout; the push constants fit its 8-byte range.
    unsafe {
        d.cmd_bind_pipeline(cmd, vk::PipelineBindPoint::COMPUTE, pipe.pipeline);
        push(
            cmd,
            vk::PipelineBindPoint::COMPUTE,
            pipe.layout,
            0,
            writes.len() as u32,
            writes.as_ptr(),
        );
        d.cmd_push_constants(
            cmd,
            pipe.layout,
            vk::ShaderStageFlags::COMPUTE,
            0,
            &constants,
        );
        d.cmd_dispatch(cmd, n.div_ceil(256).min(1024), 1, 1);
    }
    gpu.submit_wait(cmd)?;
    let bad = y
        .floats()
        .iter()
        .enumerate()
        .find(|(i, v)| **v != A * (i % 1000) as f32 + (i % 7) as f32)
        .map(|(i, v)| (i, *v));
    pipe.destroy(gpu);
    x.destroy(gpu);
    y.destroy(gpu);
    if let Some((i, v)) = bad {
        return Err(Error::Mismatch(format!("push_descriptor: y[{i}] = {v}")));
    }
    println!("push_descriptor OK n={n}");
    Ok(())
}

/// A compute pipeline whose set 0 is a push-descriptor set of two storage buffers.
struct PushPipeline {
    pipeline: vk::Pipeline,
    layout: vk::PipelineLayout,
    set_layout: vk::DescriptorSetLayout,
}

impl PushPipeline {
    fn new(gpu: &Gpu) -> Result<Self> {
        // PUSH_DESCRIPTOR is core 1.4 (the same bit as the KHR flag).
        let (set_layout, layout, pipeline) = compute_pipeline(
            gpu,
            SAXPY_SPV,
            2,
            8,
            vk::DescriptorSetLayoutCreateFlags::PUSH_DESCRIPTOR_KHR,
        )?;
        Ok(Self {
            pipeline,
            layout,
            set_layout,
        })
    }

    fn destroy(self, gpu: &Gpu) {
        // SAFETY: the work using the pipeline has finished (submit_wait).
        unsafe {
            gpu.device.destroy_pipeline(self.pipeline, None);
            gpu.device.destroy_pipeline_layout(self.layout, None);
            gpu.device
                .destroy_descriptor_set_layout(self.set_layout, None);
        }
    }
}

/// `vkGetDeviceImageSubresourceLayout` against the layout of a real image.
fn image_layout(gpu: &Gpu) -> Result<()> {
    let f = device_fn(gpu, c"vkGetDeviceImageSubresourceLayout")?;
    // SAFETY: vkGetDeviceImageSubresourceLayout has exactly the signature of its KHR alias.
    let get: vk::PFN_vkGetDeviceImageSubresourceLayoutKHR = unsafe { std::mem::transmute(f) };
    let info = vk::ImageCreateInfo::default()
        .image_type(vk::ImageType::TYPE_2D)
        .format(vk::Format::R8G8B8A8_UNORM)
        .extent(vk::Extent3D {
            width: 67,
            height: 33,
            depth: 1,
        })
        .mip_levels(1)
        .array_layers(1)
        .samples(vk::SampleCountFlags::TYPE_1)
        .tiling(vk::ImageTiling::LINEAR)
        .usage(vk::ImageUsageFlags::TRANSFER_SRC);
    let sub = vk::ImageSubresource {
        aspect_mask: vk::ImageAspectFlags::COLOR,
        mip_level: 0,
        array_layer: 0,
    };
    let sub2 = vk::ImageSubresource2KHR::default().image_subresource(sub);
    let query = vk::DeviceImageSubresourceInfoKHR::default()
        .create_info(&info)
        .subresource(&sub2);
    let mut asked = vk::SubresourceLayout2KHR::default();
    let d = &gpu.device;
    // SAFETY: valid infos on our device; the image is destroyed before returning.
    let real = unsafe {
        get(d.handle(), &query, &mut asked);
        let image = d.create_image(&info, None).ctx("vkCreateImage")?;
        let layout = d.get_image_subresource_layout(image, sub);
        d.destroy_image(image, None);
        layout
    };
    let a = asked.subresource_layout;
    let fields =
        |l: vk::SubresourceLayout| [l.offset, l.size, l.row_pitch, l.array_pitch, l.depth_pitch];
    if fields(a) != fields(real) || a.row_pitch < 67 * 4 {
        return Err(Error::Mismatch(format!(
            "image_layout: vkGetDeviceImageSubresourceLayout {a:?}, the image's {real:?}"
        )));
    }
    println!(
        "image_layout OK offset={} size={} row_pitch={}",
        a.offset, a.size, a.row_pitch
    );
    Ok(())
}
