//! A small ash toolkit shared by the application programs (`venus-compute`, `venus-render`,
//! `venus-sync`, `venus-coherence`): one instance, device and queue family ([`Gpu`]),
//! buffers in memory of a chosen type, mapped when host-visible ([`Buffer`]), compute
//! pipelines over storage buffers ([`ComputePipeline`]), one-shot command buffers and the
//! errors of all of it ([`Error`]). The same code runs natively (lavapipe) and through
//! venus-server: only the environment (`VK_DRIVER_FILES`, ...) differs.

use std::ffi::CStr;
use std::time::Duration;

use ash::vk;

/// What went wrong in a program.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Vulkan call failed.
    #[error("{what}: {result}")]
    Vk {
        what: &'static str,
        result: vk::Result,
    },
    /// The Vulkan loader could not be loaded.
    #[error("loading Vulkan: {0}")]
    Load(String),
    /// The device lacks something the program needs.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A result did not match what the CPU computed.
    #[error("mismatch: {0}")]
    Mismatch(String),
    /// Bad command-line arguments or I/O.
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Adds the call's name to a Vulkan error.
pub trait VkContext<T> {
    fn ctx(self, what: &'static str) -> Result<T>;
}

impl<T> VkContext<T> for std::result::Result<T, vk::Result> {
    fn ctx(self, what: &'static str) -> Result<T> {
        self.map_err(|result| Error::Vk { what, result })
    }
}

/// Milliseconds, for `time_ms=` lines.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// SPIR-V words from the bytes of a `.spv` file.
pub fn spirv(bytes: &[u8]) -> Result<Vec<u32>> {
    ash::util::read_spv(&mut std::io::Cursor::new(bytes))
        .map_err(|e| Error::Other(format!("bad SPIR-V: {e}")))
}

/// The instance, the device with every queue of one graphics+compute family, and a command
/// pool for one-shot work. Everything is destroyed on drop (after `vkDeviceWaitIdle`).
pub struct Gpu {
    _entry: ash::Entry,
    pub instance: ash::Instance,
    pub physical: vk::PhysicalDevice,
    pub device: ash::Device,
    pub queue_family: u32,
    /// Every queue of the family (at least one).
    pub queues: Vec<vk::Queue>,
    pub memory: vk::PhysicalDeviceMemoryProperties,
    pub props: vk::PhysicalDeviceProperties,
    /// Whether `pipelineStatisticsQuery` was available (and so enabled).
    pub pipeline_statistics: bool,
    pool: vk::CommandPool,
}

impl Gpu {
    /// Creates an instance (Vulkan 1.2) and a device with timeline semaphores (and pipeline
    /// statistics queries when available) on the first physical device.
    pub fn new(app_name: &CStr) -> Result<Self> {
        Self::with_api(app_name, vk::API_VERSION_1_2)
    }

    /// [`Gpu::new`] with the instance's `apiVersion` given (`vk::make_api_version`).
    pub fn with_api(app_name: &CStr, api_version: u32) -> Result<Self> {
        // SAFETY: loading the system Vulkan loader; its initialisation has no preconditions.
        let entry = unsafe { ash::Entry::load() }.map_err(|e| Error::Load(e.to_string()))?;
        let app_info = vk::ApplicationInfo::default()
            .application_name(app_name)
            .api_version(api_version);
        let info = vk::InstanceCreateInfo::default().application_info(&app_info);
        // SAFETY: a valid create info; the instance is destroyed on drop (or below on error).
        let instance = unsafe { entry.create_instance(&info, None) }.ctx("vkCreateInstance")?;
        match Self::with_instance(entry, instance.clone()) {
            Ok(gpu) => Ok(gpu),
            Err(e) => {
                // SAFETY: nothing else was created from the instance (with_instance cleans up).
                unsafe { instance.destroy_instance(None) };
                Err(e)
            }
        }
    }

    fn with_instance(entry: ash::Entry, instance: ash::Instance) -> Result<Self> {
        // SAFETY: queries on a live instance and its physical device.
        let (physical, families, features, memory, props) = unsafe {
            let physical = *instance
                .enumerate_physical_devices()
                .ctx("vkEnumeratePhysicalDevices")?
                .first()
                .ok_or_else(|| Error::Unsupported("no physical device".into()))?;
            (
                physical,
                instance.get_physical_device_queue_family_properties(physical),
                instance.get_physical_device_features(physical),
                instance.get_physical_device_memory_properties(physical),
                instance.get_physical_device_properties(physical),
            )
        };
        let want = vk::QueueFlags::GRAPHICS | vk::QueueFlags::COMPUTE;
        let (family, fprops) = families
            .iter()
            .enumerate()
            .find(|(_, q)| q.queue_flags.contains(want))
            .ok_or_else(|| Error::Unsupported("no graphics+compute queue family".into()))?;
        let priorities = vec![1.0; fprops.queue_count as usize];
        let queue_infos = [vk::DeviceQueueCreateInfo::default()
            .queue_family_index(family as u32)
            .queue_priorities(&priorities)];
        let enabled = vk::PhysicalDeviceFeatures::default()
            .pipeline_statistics_query(features.pipeline_statistics_query == vk::TRUE);
        let mut timeline =
            vk::PhysicalDeviceTimelineSemaphoreFeatures::default().timeline_semaphore(true);
        let dinfo = vk::DeviceCreateInfo::default()
            .queue_create_infos(&queue_infos)
            .enabled_features(&enabled)
            .push_next(&mut timeline);
        // SAFETY: a valid create info for a family and queue count the device reported.
        let device =
            unsafe { instance.create_device(physical, &dinfo, None) }.ctx("vkCreateDevice")?;
        let pinfo = vk::CommandPoolCreateInfo::default()
            .queue_family_index(family as u32)
            .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER);
        // SAFETY: the device is live; the queues exist (created above).
        let (queues, pool) = unsafe {
            let queues = (0..fprops.queue_count)
                .map(|i| device.get_device_queue(family as u32, i))
                .collect();
            match device.create_command_pool(&pinfo, None) {
                Ok(pool) => (queues, pool),
                Err(result) => {
                    device.destroy_device(None);
                    return Err(Error::Vk {
                        what: "vkCreateCommandPool",
                        result,
                    });
                }
            }
        };
        Ok(Self {
            _entry: entry,
            instance,
            physical,
            device,
            queue_family: family as u32,
            queues,
            memory,
            props,
            pipeline_statistics: features.pipeline_statistics_query == vk::TRUE,
            pool,
        })
    }

    /// The device's name (lavapipe's `llvmpipe (...)`, Venus's `Virtio-GPU Venus (...)`).
    pub fn device_name(&self) -> String {
        // SAFETY: the driver fills device_name with a NUL-terminated string.
        unsafe { CStr::from_ptr(self.props.device_name.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    /// The first memory type allowed by `bits` that has every flag of `want`.
    pub fn memory_type(&self, bits: u32, want: vk::MemoryPropertyFlags) -> Option<u32> {
        (0..self.memory.memory_type_count).find(|&i| {
            bits & (1 << i) != 0
                && self.memory.memory_types[i as usize]
                    .property_flags
                    .contains(want)
        })
    }

    /// The property flags of memory type `index`.
    pub fn memory_flags(&self, index: u32) -> vk::MemoryPropertyFlags {
        self.memory.memory_types[index as usize].property_flags
    }

    /// The queue every single-queue program uses.
    pub fn queue(&self) -> vk::Queue {
        self.queues[0]
    }

    /// A buffer of `size` bytes in the first memory type with `want`, mapped if host-visible.
    pub fn buffer(
        &self,
        size: u64,
        usage: vk::BufferUsageFlags,
        want: vk::MemoryPropertyFlags,
    ) -> Result<Buffer> {
        Buffer::new(self, size, usage, MemoryChoice::Flags(want))
    }

    /// A buffer of `size` bytes in memory type `index` (mapped if host-visible).
    pub fn buffer_in(&self, size: u64, usage: vk::BufferUsageFlags, index: u32) -> Result<Buffer> {
        Buffer::new(self, size, usage, MemoryChoice::Index(index))
    }

    /// A host-visible, host-coherent storage + transfer buffer.
    pub fn host_buffer(&self, size: u64) -> Result<Buffer> {
        self.buffer(
            size,
            vk::BufferUsageFlags::STORAGE_BUFFER
                | vk::BufferUsageFlags::TRANSFER_SRC
                | vk::BufferUsageFlags::TRANSFER_DST,
            vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT,
        )
    }

    /// A shader module from `.spv` bytes.
    pub fn shader(&self, spv: &[u8]) -> Result<vk::ShaderModule> {
        let code = spirv(spv)?;
        let info = vk::ShaderModuleCreateInfo::default().code(&code);
        // SAFETY: valid SPIR-V words (checked by spirv-val when built) on our device.
        unsafe { self.device.create_shader_module(&info, None) }.ctx("vkCreateShaderModule")
    }

    /// A primary command buffer from the shared pool, begun for one submission.
    pub fn begin(&self) -> Result<vk::CommandBuffer> {
        let info = vk::CommandBufferAllocateInfo::default()
            .command_pool(self.pool)
            .level(vk::CommandBufferLevel::PRIMARY)
            .command_buffer_count(1);
        let begin = vk::CommandBufferBeginInfo::default()
            .flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
        // SAFETY: the pool is ours and used from one thread (the programs' main threads).
        unsafe {
            let cmd = self
                .device
                .allocate_command_buffers(&info)
                .ctx("vkAllocateCommandBuffers")?[0];
            self.device
                .begin_command_buffer(cmd, &begin)
                .ctx("vkBeginCommandBuffer")?;
            Ok(cmd)
        }
    }

    /// Ends `cmd`, submits it on the first queue, waits for its fence and frees it.
    pub fn submit_wait(&self, cmd: vk::CommandBuffer) -> Result<()> {
        let cmds = [cmd];
        let submit = [vk::SubmitInfo::default().command_buffers(&cmds)];
        // SAFETY: cmd was begun by `begin`; the fence is waited for before it is destroyed
        // and before cmd is freed.
        unsafe {
            self.device
                .end_command_buffer(cmd)
                .ctx("vkEndCommandBuffer")?;
            let fence = self.fence(false)?;
            let result = self
                .device
                .queue_submit(self.queue(), &submit, fence)
                .ctx("vkQueueSubmit")
                .and_then(|()| {
                    self.device
                        .wait_for_fences(&[fence], true, u64::MAX)
                        .ctx("vkWaitForFences")
                });
            self.device.destroy_fence(fence, None);
            self.device.free_command_buffers(self.pool, &cmds);
            result
        }
    }

    /// Ends `cmd` and submits it on the first queue with `fence`, without waiting: pair it
    /// with [`Gpu::finish`] (several submissions may be in flight).
    pub fn submit(&self, cmd: vk::CommandBuffer, fence: vk::Fence) -> Result<()> {
        let cmds = [cmd];
        let submit = [vk::SubmitInfo::default().command_buffers(&cmds)];
        // SAFETY: cmd was begun by `begin`; the caller keeps cmd and fence alive until
        // `finish` has waited for the fence.
        unsafe {
            self.device
                .end_command_buffer(cmd)
                .ctx("vkEndCommandBuffer")?;
            self.device
                .queue_submit(self.queue(), &submit, fence)
                .ctx("vkQueueSubmit")
        }
    }

    /// Waits for a submission made by [`Gpu::submit`], resets its fence and frees its
    /// command buffer.
    pub fn finish(&self, cmd: vk::CommandBuffer, fence: vk::Fence) -> Result<()> {
        // SAFETY: the fence belongs to a submission of cmd; cmd is freed only after the
        // fence signalled (or, on a wait error, after the device is idle).
        unsafe {
            let waited = self
                .device
                .wait_for_fences(&[fence], true, u64::MAX)
                .ctx("vkWaitForFences");
            if waited.is_err() {
                let _ = self.device.device_wait_idle();
            }
            self.device.free_command_buffers(self.pool, &[cmd]);
            waited?;
            self.device.reset_fences(&[fence]).ctx("vkResetFences")
        }
    }

    /// A fence, signalled or not.
    pub fn fence(&self, signaled: bool) -> Result<vk::Fence> {
        let flags = if signaled {
            vk::FenceCreateFlags::SIGNALED
        } else {
            vk::FenceCreateFlags::empty()
        };
        // SAFETY: a valid create info on our device.
        unsafe {
            self.device
                .create_fence(&vk::FenceCreateInfo::default().flags(flags), None)
        }
        .ctx("vkCreateFence")
    }

    /// A timeline semaphore starting at `initial`.
    pub fn timeline(&self, initial: u64) -> Result<vk::Semaphore> {
        let mut ty = vk::SemaphoreTypeCreateInfo::default()
            .semaphore_type(vk::SemaphoreType::TIMELINE)
            .initial_value(initial);
        let info = vk::SemaphoreCreateInfo::default().push_next(&mut ty);
        // SAFETY: a valid create info on a device with timeline semaphores enabled.
        unsafe { self.device.create_semaphore(&info, None) }.ctx("vkCreateSemaphore")
    }

    /// A global memory barrier in `cmd`.
    pub fn barrier(
        &self,
        cmd: vk::CommandBuffer,
        src: (vk::PipelineStageFlags, vk::AccessFlags),
        dst: (vk::PipelineStageFlags, vk::AccessFlags),
    ) {
        let barrier = [vk::MemoryBarrier::default()
            .src_access_mask(src.1)
            .dst_access_mask(dst.1)];
        // SAFETY: cmd is in the recording state (the callers record into it).
        unsafe {
            self.device.cmd_pipeline_barrier(
                cmd,
                src.0,
                dst.0,
                vk::DependencyFlags::empty(),
                &barrier,
                &[],
                &[],
            )
        }
    }
}

impl Drop for Gpu {
    fn drop(&mut self) {
        // SAFETY: every object the programs made from this device is destroyed before the
        // Gpu is dropped; waiting for idle first makes the pool free of pending work.
        unsafe {
            let _ = self.device.device_wait_idle();
            self.device.destroy_command_pool(self.pool, None);
            self.device.destroy_device(None);
            self.instance.destroy_instance(None);
        }
    }
}

/// How [`Buffer::new`] picks the memory type.
enum MemoryChoice {
    Flags(vk::MemoryPropertyFlags),
    Index(u32),
}

/// A buffer with its own memory, persistently mapped when the memory is host-visible.
pub struct Buffer {
    pub buffer: vk::Buffer,
    pub memory: vk::DeviceMemory,
    pub size: u64,
    /// The memory's allocation size (`>= size`).
    pub allocation: u64,
    pub memory_type: u32,
    ptr: *mut u8,
}

impl Buffer {
    fn new(
        gpu: &Gpu,
        size: u64,
        usage: vk::BufferUsageFlags,
        choice: MemoryChoice,
    ) -> Result<Self> {
        let d = &gpu.device;
        let info = vk::BufferCreateInfo::default().size(size).usage(usage);
        // SAFETY: valid create/allocate infos on our device; on error, what was created is
        // destroyed before returning.
        unsafe {
            let buffer = d.create_buffer(&info, None).ctx("vkCreateBuffer")?;
            let req = d.get_buffer_memory_requirements(buffer);
            let index = match choice {
                MemoryChoice::Flags(want) => gpu.memory_type(req.memory_type_bits, want),
                MemoryChoice::Index(i) => Some(i).filter(|i| req.memory_type_bits & (1 << i) != 0),
            };
            let Some(index) = index else {
                d.destroy_buffer(buffer, None);
                return Err(Error::Unsupported(format!(
                    "no suitable memory type in {:#x}",
                    req.memory_type_bits
                )));
            };
            let ainfo = vk::MemoryAllocateInfo::default()
                .allocation_size(req.size)
                .memory_type_index(index);
            let memory = match d.allocate_memory(&ainfo, None) {
                Ok(m) => m,
                Err(result) => {
                    d.destroy_buffer(buffer, None);
                    return Err(Error::Vk {
                        what: "vkAllocateMemory",
                        result,
                    });
                }
            };
            let mut me = Self {
                buffer,
                memory,
                size,
                allocation: req.size,
                memory_type: index,
                ptr: std::ptr::null_mut(),
            };
            if let Err(e) = me.bind_and_map(gpu) {
                me.destroy(gpu);
                return Err(e);
            }
            Ok(me)
        }
    }

    fn bind_and_map(&mut self, gpu: &Gpu) -> Result<()> {
        let d = &gpu.device;
        // SAFETY: buffer and memory are fresh and ours; memory is mapped once, whole.
        unsafe {
            d.bind_buffer_memory(self.buffer, self.memory, 0)
                .ctx("vkBindBufferMemory")?;
            if gpu
                .memory_flags(self.memory_type)
                .contains(vk::MemoryPropertyFlags::HOST_VISIBLE)
            {
                self.ptr = d
                    .map_memory(self.memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty())
                    .ctx("vkMapMemory")?
                    .cast();
            }
        }
        Ok(())
    }

    /// Whether the buffer is mapped.
    pub fn is_mapped(&self) -> bool {
        !self.ptr.is_null()
    }

    /// The mapped bytes (`size` of them). Panics if the memory is not host-visible. The
    /// caller must not read while the GPU writes the buffer (the programs wait for fences).
    pub fn bytes(&self) -> &[u8] {
        assert!(self.is_mapped(), "buffer is not host-visible");
        // SAFETY: the mapping covers the whole allocation (>= size) and lives until
        // destroy(); the GPU does not write it while this borrow is used (see above).
        unsafe { std::slice::from_raw_parts(self.ptr, self.size as usize) }
    }

    /// The mapped bytes, writable (see [`Buffer::bytes`]).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        assert!(self.is_mapped(), "buffer is not host-visible");
        // SAFETY: as in bytes(); &mut self makes this the only borrow on the host side.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.size as usize) }
    }

    /// The mapped contents as u32 words (the mapping is aligned to at least 64 bytes).
    pub fn words(&self) -> &[u32] {
        assert!(self.is_mapped(), "buffer is not host-visible");
        // SAFETY: as in bytes(); minMemoryMapAlignment (>= 64) aligns the pointer for u32.
        unsafe { std::slice::from_raw_parts(self.ptr.cast(), self.size as usize / 4) }
    }

    /// The mapped contents as u32 words, writable.
    pub fn words_mut(&mut self) -> &mut [u32] {
        assert!(self.is_mapped(), "buffer is not host-visible");
        // SAFETY: as in words(); &mut self makes this the only borrow on the host side.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.cast(), self.size as usize / 4) }
    }

    /// The mapped contents as f32 values.
    pub fn floats(&self) -> &[f32] {
        assert!(self.is_mapped(), "buffer is not host-visible");
        // SAFETY: as in words() (f32 has u32's size and alignment).
        unsafe { std::slice::from_raw_parts(self.ptr.cast(), self.size as usize / 4) }
    }

    /// The mapped contents as f32 values, writable.
    pub fn floats_mut(&mut self) -> &mut [f32] {
        assert!(self.is_mapped(), "buffer is not host-visible");
        // SAFETY: as in words_mut().
        unsafe { std::slice::from_raw_parts_mut(self.ptr.cast(), self.size as usize / 4) }
    }

    /// The raw mapped pointer (null when not host-visible), for bandwidth measurements.
    pub fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Destroys the buffer and frees (and so unmaps) its memory.
    pub fn destroy(self, gpu: &Gpu) {
        // SAFETY: the callers destroy buffers after the work using them has finished.
        unsafe {
            gpu.device.destroy_buffer(self.buffer, None);
            gpu.device.free_memory(self.memory, None);
        }
    }
}

/// A compute pipeline over `bindings` storage buffers (set 0, bindings 0..n) with a push
/// constant block, and a descriptor pool for its sets.
pub struct ComputePipeline {
    pub pipeline: vk::Pipeline,
    pub layout: vk::PipelineLayout,
    pub set_layout: vk::DescriptorSetLayout,
    pub pool: vk::DescriptorPool,
}

impl ComputePipeline {
    /// Builds the pipeline from `.spv` bytes; the pool holds `max_sets` sets.
    pub fn new(gpu: &Gpu, spv: &[u8], bindings: u32, push: u32, max_sets: u32) -> Result<Self> {
        let (set_layout, layout, pipeline) = compute_pipeline(
            gpu,
            spv,
            bindings,
            push,
            vk::DescriptorSetLayoutCreateFlags::empty(),
        )?;
        let sizes = [vk::DescriptorPoolSize {
            ty: vk::DescriptorType::STORAGE_BUFFER,
            descriptor_count: bindings * max_sets,
        }];
        // SAFETY: a valid create info on our device.
        let pool = unsafe {
            gpu.device.create_descriptor_pool(
                &vk::DescriptorPoolCreateInfo::default()
                    .max_sets(max_sets)
                    .pool_sizes(&sizes),
                None,
            )
        }
        .ctx("vkCreateDescriptorPool")?;
        Ok(Self {
            pipeline,
            layout,
            set_layout,
            pool,
        })
    }

    /// A descriptor set with `buffers[i]` (whole) at binding i.
    pub fn set(&self, gpu: &Gpu, buffers: &[vk::Buffer]) -> Result<vk::DescriptorSet> {
        let layouts = [self.set_layout];
        let info = vk::DescriptorSetAllocateInfo::default()
            .descriptor_pool(self.pool)
            .set_layouts(&layouts);
        let infos: Vec<[vk::DescriptorBufferInfo; 1]> = buffers
            .iter()
            .map(|&b| {
                [vk::DescriptorBufferInfo::default()
                    .buffer(b)
                    .range(vk::WHOLE_SIZE)]
            })
            .collect();
        // SAFETY: the pool has room (sized by the caller); the buffers are bound to memory.
        unsafe {
            let set = gpu
                .device
                .allocate_descriptor_sets(&info)
                .ctx("vkAllocateDescriptorSets")?[0];
            let writes: Vec<_> = infos
                .iter()
                .enumerate()
                .map(|(i, info)| {
                    vk::WriteDescriptorSet::default()
                        .dst_set(set)
                        .dst_binding(i as u32)
                        .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                        .buffer_info(info)
                })
                .collect();
            gpu.device.update_descriptor_sets(&writes, &[]);
            Ok(set)
        }
    }

    /// Records bind + push constants + dispatch of `groups` workgroups (x) into `cmd`.
    pub fn dispatch(
        &self,
        gpu: &Gpu,
        cmd: vk::CommandBuffer,
        set: vk::DescriptorSet,
        push: &[u8],
        groups: u32,
    ) {
        let d = &gpu.device;
        // SAFETY: cmd is recording; set was allocated for this layout; push fits the range.
        unsafe {
            d.cmd_bind_pipeline(cmd, vk::PipelineBindPoint::COMPUTE, self.pipeline);
            d.cmd_bind_descriptor_sets(
                cmd,
                vk::PipelineBindPoint::COMPUTE,
                self.layout,
                0,
                &[set],
                &[],
            );
            d.cmd_push_constants(cmd, self.layout, vk::ShaderStageFlags::COMPUTE, 0, push);
            d.cmd_dispatch(cmd, groups, 1, 1);
        }
    }

    /// Destroys the pipeline, its layouts and its pool (with its sets).
    pub fn destroy(self, gpu: &Gpu) {
        // SAFETY: the callers destroy pipelines after the work using them has finished.
        unsafe {
            gpu.device.destroy_pipeline(self.pipeline, None);
            gpu.device.destroy_pipeline_layout(self.layout, None);
            gpu.device
                .destroy_descriptor_set_layout(self.set_layout, None);
            gpu.device.destroy_descriptor_pool(self.pool, None);
        }
    }
}

/// A compute pipeline from `.spv` bytes (entry point `main`) with set 0 = `bindings` storage
/// buffers at bindings 0.. (set-layout `flags`, e.g. PUSH_DESCRIPTOR) and `push` bytes of push
/// constants: (set layout, pipeline layout, pipeline).
pub fn compute_pipeline(
    gpu: &Gpu,
    spv: &[u8],
    bindings: u32,
    push: u32,
    flags: vk::DescriptorSetLayoutCreateFlags,
) -> Result<(vk::DescriptorSetLayout, vk::PipelineLayout, vk::Pipeline)> {
    let d = &gpu.device;
    let binds: Vec<_> = (0..bindings)
        .map(|b| {
            vk::DescriptorSetLayoutBinding::default()
                .binding(b)
                .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                .descriptor_count(1)
                .stage_flags(vk::ShaderStageFlags::COMPUTE)
        })
        .collect();
    let ranges = [vk::PushConstantRange::default()
        .stage_flags(vk::ShaderStageFlags::COMPUTE)
        .size(push)];
    let module = gpu.shader(spv)?;
    // SAFETY: valid create infos on our device; the module is destroyed once the pipeline
    // exists (allowed: pipelines do not reference their modules).
    unsafe {
        let set_layout = d
            .create_descriptor_set_layout(
                &vk::DescriptorSetLayoutCreateInfo::default()
                    .flags(flags)
                    .bindings(&binds),
                None,
            )
            .ctx("vkCreateDescriptorSetLayout")?;
        let set_layouts = [set_layout];
        let layout = d
            .create_pipeline_layout(
                &vk::PipelineLayoutCreateInfo::default()
                    .set_layouts(&set_layouts)
                    .push_constant_ranges(&ranges),
                None,
            )
            .ctx("vkCreatePipelineLayout")?;
        let stage = vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::COMPUTE)
            .module(module)
            .name(c"main");
        let info = [vk::ComputePipelineCreateInfo::default()
            .stage(stage)
            .layout(layout)];
        let pipeline = d
            .create_compute_pipelines(vk::PipelineCache::null(), &info, None)
            .map_err(|(_, result)| Error::Vk {
                what: "vkCreateComputePipelines",
                result,
            })?[0];
        d.destroy_shader_module(module, None);
        Ok((set_layout, layout, pipeline))
    }
}

/// Little-endian bytes of u32 push constants.
pub fn push_u32(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// FNV-1a (64 bit) of `bytes`, the checksum the programs print.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Exits with status 1 after printing `<program>: <error>`, or returns normally.
pub fn exit_on_error(program: &str, result: Result<()>) {
    if let Err(e) = result {
        eprintln!("{program}: {e}");
        std::process::exit(1);
    }
}

/// `--name value` from the arguments, parsed, or `default`.
pub fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error::Other(format!("{name} needs a valid value"))),
    }
}
