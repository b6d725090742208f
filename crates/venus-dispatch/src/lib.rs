//! venus-rs dispatch layer: executes decoded Vulkan commands on the host driver.
//!
//! It implements `venus_renderer::dispatch::{Dispatch, DispatchFactory}`: the core hands it
//! every non-transport command of a context, from the socket thread and every ring thread.
//!
//! Every command is routed by the generator's per-command policy (`venus_host::policy`):
//! - **Generic**: the generated executor (lower the request to C with ids translated through
//!   the context's [`registry`], call the driver, raise the outputs, register created objects);
//!   the size/stride/limit checks of the policy table run inside it;
//! - **Destroy**: the registry forgets the object (and a pool's children); the host object is
//!   destroyed when its last user is done ([`registry::Object`]'s `Drop`);
//! - **Handwritten**: a handler here, grouped by Vulkan concept: [`instance`] (the host's
//!   version, private extensions, instance creation/destruction), [`physical`] (which host
//!   devices the client sees), [`device`] (creation with extensions filtered, destruction of
//!   the device and its children), [`queue`] (queue binding to the client's timeline,
//!   serialised submissions, idle waits; binary-semaphore waits checked by [`binary`]),
//!   [`sync`] (bounded host waits), [`pools`] (command
//!   buffers and descriptor sets, owned by their pools), [`attachments`] (render passes, image
//!   views and framebuffers: rules that need per-object state), [`pipelines`] (descriptor set
//!   layouts, pipeline layouts, shader modules and pipelines: the shader resource interface
//!   checked against the pipeline layout); [`robust`] (robust buffer and image access forced
//!   on every host device);
//! - **Refused**: context-fatal with the table's reason.

mod attachments;
pub mod binary;
pub mod descriptors;
mod device;
mod doctor;
mod drm;
mod external;
mod instance;
mod limits;
mod memory;
mod physical;
mod pipelines;
mod pools;
pub mod portability;
pub mod profile;
pub mod queue;
pub mod registry;
pub mod robust;
pub mod spirv;
mod sync;
mod unblock;

pub use physical::DeviceSelector;

use std::cell::RefCell;
use std::fmt::Display;
use std::sync::{Arc, RwLock};

use bumpalo::Bump;
use venus_host::generated::calls;
use venus_host::loader::Loader;
use venus_host::lower::{CallError, LowerCx, Outcome};
use venus_host::policy::{self, Destroy, Handwritten, Routed};
use venus_host::{DeviceProcs, InstanceProcs};
use venus_protocol::{handles, Command, CommandHeader, CommandType, Handle};

use registry::{
    release, release_subtree, DeviceShared, Held, InstanceShared, NewObject, Owner, Registry,
    State, Teardown,
};
use unblock::created_state;
use venus_renderer::dispatch::{ContextInfo, Dispatch, DispatchCx, DispatchError, DispatchFactory};

thread_local! {
    /// Per-thread arena for the C side of one driver call (reset before every command).
    static ARENA: RefCell<Bump> = RefCell::new(Bump::new());
}

/// Process-wide state: the Vulkan loader (the host driver is whatever it selects).
pub struct VulkanFactory {
    loader: Arc<Loader>,
    selector: DeviceSelector,
    host_page_size: u64,
    shm_backing: venus_renderer::shm::ShmBacking,
    force_emulated_wsi: bool,
    _pin: PinnedInstance,
}

/// Why the Vulkan layer cannot start.
#[derive(Debug, thiserror::Error)]
pub enum FactoryError {
    #[error(transparent)]
    Loader(#[from] venus_host::loader::LoaderError),
    #[error("the host Vulkan driver cannot create an instance: {0:?}")]
    Driver(venus_protocol::types::VkResult),
}

/// A host `VkInstance` kept for the life of the process. The Vulkan loader unloads the driver
/// library when the last instance is destroyed and loads it again for the next one; NVIDIA's
/// driver fails to load again after about 30 such cycles in one process (every later
/// `vkCreateInstance` returns `VK_ERROR_INCOMPATIBLE_DRIVER`, measured on an H200), and every
/// driver pays its start-up cost per client. Holding one instance keeps the driver loaded. It
/// also proves at start-up that the driver works.
struct PinnedInstance {
    host: venus_host::vk::Instance,
    destroy: Option<venus_host::generated::procs::PFN_vkDestroyInstance>,
    /// The loader library stays mapped until `destroy` has been called.
    _loader: Arc<Loader>,
}

impl PinnedInstance {
    fn new(loader: &Arc<Loader>) -> Result<Self, FactoryError> {
        use venus_protocol::types::VkResult;
        let global = loader.global_procs();
        let create = global
            .create_instance
            .ok_or(FactoryError::Driver(VkResult::ERROR_INITIALIZATION_FAILED))?;
        let app = venus_host::vk::ApplicationInfo {
            api_version: 1 << 22 | 1 << 12, // 1.1
            ..Default::default()
        };
        let mut info = venus_host::vk::InstanceCreateInfo {
            p_application_info: &app,
            ..Default::default()
        };
        let portability = portability::InstancePortability::new(&global);
        portability.apply(&mut info);
        let mut host = venus_host::vk::Instance::NULL;
        // SAFETY: `info`, `app` and `portability` (the extension names) are valid for the call;
        // `host` is a valid output.
        let r = unsafe { create(&info, std::ptr::null(), &mut host) };
        if r != VkResult::SUCCESS {
            return Err(FactoryError::Driver(r));
        }
        let destroy = loader.instance_procs(host).destroy_instance;
        Ok(PinnedInstance {
            host,
            destroy,
            _loader: Arc::clone(loader),
        })
    }
}

impl Drop for PinnedInstance {
    fn drop(&mut self) {
        if let Some(destroy) = self.destroy {
            // SAFETY: the instance was created in `new` and nothing else uses it.
            unsafe { destroy(self.host, std::ptr::null()) };
        }
    }
}

impl VulkanFactory {
    /// Opens the Vulkan loader; clients see the devices `selector` picks.
    pub fn new(selector: DeviceSelector) -> Result<Self, FactoryError> {
        let loader = Arc::new(Loader::open()?);
        let pin = PinnedInstance::new(&loader)?;
        // Found (and reported) once, at start-up rather than at the first shader.
        let _ = spirv::validator();
        Ok(VulkanFactory {
            loader,
            selector,
            host_page_size: rustix::param::page_size() as u64,
            shm_backing: venus_renderer::shm::ShmBacking::default(),
            force_emulated_wsi: false,
            _pin: pin,
        })
    }

    /// Rounds shared-memory sizes and import alignments as a host with `bytes` pages must
    /// (`--host-page-size`; 16384 is Apple silicon). A power of two.
    pub fn with_host_page_size(mut self, bytes: u64) -> Self {
        self.host_page_size = bytes;
        self
    }

    /// Creates HOST_VISIBLE device memory's shared memory with `backing` (`--shm-backing`;
    /// POSIX is what macOS has).
    pub fn with_shm_backing(mut self, backing: venus_renderer::shm::ShmBacking) -> Self {
        self.shm_backing = backing;
        self
    }

    /// With `force`, dma-buf, external-memory fd, DRM modifiers, the foreign queue family and
    /// sync_fd are emulated even where the driver has them (the Apple host profile, see
    /// [`profile::Profile::with_forced_emulation`]).
    pub fn with_forced_wsi_emulation(mut self, force: bool) -> Self {
        self.force_emulated_wsi = force;
        self
    }
}

impl DispatchFactory for VulkanFactory {
    fn create_dispatch(&self, info: &ContextInfo) -> Result<Arc<dyn Dispatch>, DispatchError> {
        let mut d = VulkanDispatch::new(self.loader.clone(), self.selector.clone(), info);
        d.host_page_size = self.host_page_size;
        d.shm_backing = self.shm_backing;
        d.force_emulated_wsi = self.force_emulated_wsi;
        Ok(Arc::new(d))
    }
}

/// One command being dispatched: the core's context, the call's arena, the command's name.
pub struct Call<'a, 'c> {
    pub(crate) cx: &'c mut DispatchCx<'a>,
    pub(crate) arena: &'c Bump,
    /// The objects the command uses, kept alive until it is done.
    pub(crate) held: &'c Held<'c>,
    pub(crate) name: &'static str,
    pub(crate) command_type: CommandType,
}

impl Call<'_, '_> {
    /// A context-fatal error about this command.
    pub(crate) fn invalid(&self, reason: impl Display) -> DispatchError {
        invalid(self.name, reason.to_string())
    }
}

pub(crate) fn invalid(command: &'static str, reason: String) -> DispatchError {
    // Generated rule errors name the command themselves; do not say it twice.
    let reason = match reason
        .strip_prefix(command)
        .and_then(|r| r.strip_prefix(": "))
    {
        Some(rest) => rest.to_owned(),
        None => reason,
    };
    DispatchError::Invalid { command, reason }
}

/// One context's Vulkan state.
pub struct VulkanDispatch {
    loader: Arc<Loader>,
    global: InstanceProcs,
    registry: Registry,
    /// The context's instance (also in the registry; this is the quick path).
    instance: RwLock<Option<Arc<InstanceShared>>>,
    selector: DeviceSelector,
    context: String,
    context_id: u64,
    /// The page size shared memory is rounded to (see [`VulkanFactory::with_host_page_size`]).
    host_page_size: u64,
    /// How device memory's shared memory is created (see [`VulkanFactory::with_shm_backing`]).
    shm_backing: venus_renderer::shm::ShmBacking,
    /// Whether every WSI extension is emulated (see [`VulkanFactory::with_forced_wsi_emulation`]).
    force_emulated_wsi: bool,
    /// Capability profiles by host physical device (see [`profile`]).
    profiles: std::sync::Mutex<Vec<(u64, Arc<profile::Profile>)>>,
    /// Device memory and refusals under the context's limits (see [`limits`]).
    usage: limits::Usage,
}

impl VulkanDispatch {
    pub fn new(loader: Arc<Loader>, selector: DeviceSelector, info: &ContextInfo) -> Self {
        let global = loader.global_procs();
        VulkanDispatch {
            loader,
            global,
            registry: Registry::default(),
            instance: RwLock::new(None),
            selector,
            context: format!("{} {:?}", info.id, info.name),
            context_id: info.id,
            host_page_size: rustix::param::page_size() as u64,
            shm_backing: venus_renderer::shm::ShmBacking::default(),
            force_emulated_wsi: false,
            profiles: std::sync::Mutex::new(Vec::new()),
            usage: limits::Usage::default(),
        }
    }

    /// The context's registry (counters, for tests and logs).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub(crate) fn instance(
        &self,
        command: &'static str,
    ) -> Result<Arc<InstanceShared>, DispatchError> {
        self.instance
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| invalid(command, "no VkInstance yet".into()))
    }

    /// Runs a generated executor with the registry as handle map (every object it looks up
    /// stays alive until it returns) and `device`'s limits for the generated limit checks.
    pub(crate) fn execute_in<'b, R>(
        &'b self,
        call: &Call<'_, '_>,
        arena: &'b Bump,
        held: &'b Held<'b>,
        device: Option<&'b DeviceShared>,
        run: impl FnOnce(&DeviceProcs, &mut LowerCx<'b, Held<'b>>) -> Result<(R, Outcome), CallError>,
    ) -> Result<(R, Outcome), DispatchError> {
        let device = device.ok_or_else(|| call.invalid("no device"))?;
        let mut lcx = LowerCx::with_limits(arena, held, Some(&device.limits));
        lcx.set_spirv_check(&spirv::check);
        lcx.set_stripped(device.profile.stripped());
        lcx.set_foreign_queue_family_ignored(device.profile.foreign_queue_family_ignored());
        run(&device.procs, &mut lcx).map_err(|e| call.invalid(e))
    }

    /// [`Self::execute_in`] with the command's arena and held objects.
    pub(crate) fn execute<'b, R>(
        &'b self,
        call: &Call<'_, 'b>,
        device: Option<&'b DeviceShared>,
        run: impl FnOnce(&DeviceProcs, &mut LowerCx<'b, Held<'b>>) -> Result<(R, Outcome), CallError>,
    ) -> Result<(R, Outcome), DispatchError> {
        self.execute_in(call, call.arena, call.held, device, run)
    }

    /// The device of `cmd`'s first handle (None for instance-level commands).
    fn device_of(
        &self,
        call: &Call<'_, '_>,
        cmd: &Command<'_>,
    ) -> Result<Option<Arc<DeviceShared>>, DispatchError> {
        let Some((ty, id)) = calls::first_handle(cmd) else {
            return Ok(None);
        };
        self.device_of_object(call, ty, id)
    }

    /// The device object `id` of type `ty` belongs to (None for instance-level objects).
    pub(crate) fn device_of_object(
        &self,
        call: &Call<'_, '_>,
        ty: i32,
        id: u64,
    ) -> Result<Option<Arc<DeviceShared>>, DispatchError> {
        let obj = self
            .registry
            .get_typed(ty, id)
            .map_err(|e| call.invalid(e))?;
        Ok(obj.device().cloned())
    }

    /// The profile of the physical device `cmd` starts with, if it does.
    fn physical_profile(
        &self,
        call: &Call<'_, '_>,
        cmd: &Command<'_>,
        inst: &InstanceShared,
    ) -> Result<Option<Arc<profile::Profile>>, DispatchError> {
        match calls::first_handle(cmd) {
            Some((ty, id)) if ty == handles::PhysicalDevice::OBJECT_TYPE => {
                let obj = self
                    .registry
                    .get_typed(ty, id)
                    .map_err(|e| call.invalid(e))?;
                Ok(Some(
                    self.profile(inst, venus_host::vk::PhysicalDevice(obj.host)),
                ))
            }
            _ => Ok(None),
        }
    }

    /// Runs `cmd` through the generated executor and registers the objects it created.
    fn generic(&self, call: &mut Call<'_, '_>, cmd: &Command<'_>) -> Result<(), DispatchError> {
        let inst = self.instance(call.name)?;
        let device = self.device_of(call, cmd)?;
        let limits = device.as_deref().map(|d| &d.limits);
        let profile = match &device {
            Some(d) => Some(Arc::clone(&d.profile)),
            None => self.physical_profile(call, cmd, &inst)?,
        };
        let mut lcx = LowerCx::with_limits(call.arena, call.held, limits);
        lcx.set_spirv_check(&spirv::check);
        if let Some(p) = &profile {
            lcx.set_stripped(p.stripped());
            lcx.set_foreign_queue_family_ignored(p.foreign_queue_family_ignored());
        }
        // SAFETY: the handle map is this context's registry, which only yields live host
        // objects (and keeps each one it yields alive for the call); `device` is the device the
        // command's first handle belongs to, and `inst` the context's instance.
        let result = unsafe {
            calls::execute(
                &inst.procs,
                device.as_deref().map(|d| &d.procs),
                &mut lcx,
                cmd,
            )
        };
        let (reply, outcome) = match result {
            None => return Err(DispatchError::Unsupported(call.name)),
            Some(r) => r.map_err(|e| call.invalid(e))?,
        };
        let state = created_state(cmd);
        self.register_created(call, &outcome, device.as_ref(), |_| None, |_| state())?;
        let reply = match profile.as_ref().and_then(|p| p.portability.as_ref()) {
            Some(subset) => portability::mask_reply(subset, reply, call.arena),
            None => reply,
        };
        call.cx.reply(&reply)
    }

    /// Registers what an executor created as children of `device` (or of the pool `pool_of`
    /// returns for a type), with the per-kind state `state_of` returns for a type.
    pub(crate) fn register_created(
        &self,
        call: &Call<'_, '_>,
        outcome: &Outcome,
        device: Option<&Arc<DeviceShared>>,
        pool_of: impl Fn(i32) -> Option<Arc<registry::Object>>,
        mut state_of: impl FnMut(i32) -> State,
    ) -> Result<(), DispatchError> {
        for &(ty, guest, host) in &outcome.created {
            let Some(d) = device else {
                return Err(call.invalid("created an object without a device"));
            };
            let (owner, teardown) = match pool_of(ty) {
                Some(pool) => (
                    Owner::Pool {
                        device: Arc::clone(d),
                        pool,
                    },
                    if ty == handles::DescriptorSet::OBJECT_TYPE {
                        Teardown::Forget
                    } else {
                        Teardown::Destroy
                    },
                ),
                None => (Owner::Device(Arc::clone(d)), Teardown::Destroy),
            };
            self.registry
                .insert(NewObject {
                    guest,
                    ty,
                    host,
                    owner,
                    state: state_of(ty),
                    teardown,
                })
                .map_err(|e| call.invalid(e))?;
        }
        Ok(())
    }

    /// A Destroy-class command: the registry forgets the objects (and a pool's children);
    /// each host object is destroyed when its last user is done.
    fn destroy(&self, call: &mut Call<'_, '_>, d: Destroy) -> Result<(), DispatchError> {
        if d.object_type == handles::DescriptorSet::OBJECT_TYPE {
            return self.free_descriptor_sets(call, &d);
        }
        let mut gone = Vec::new();
        for id in &d.objects {
            gone.extend(
                self.registry
                    .remove(d.object_type, *id)
                    .map_err(|e| call.invalid(e))?,
            );
        }
        release(gone);
        // A destroy command's reply is its command type alone (it returns nothing).
        let ty = call.command_type;
        call.cx.reply_with(|e| e.u32(ty.0 as u32))
    }
}

impl<'a, 'c> Handwritten<Call<'a, 'c>> for VulkanDispatch {
    type Out = Result<(), DispatchError>;
    fn enumerate_instance_version(
        &self,
        c: &mut Call<'a, 'c>,
        _a: &venus_protocol::commands::EnumerateInstanceVersionArgs,
    ) -> Self::Out {
        self.enumerate_instance_version(c.cx)
    }
    fn enumerate_instance_extension_properties(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::EnumerateInstanceExtensionPropertiesArgs<'_>,
    ) -> Self::Out {
        self.enumerate_instance_extensions(c.cx, a)
    }
    fn create_instance(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::CreateInstanceArgs<'_>,
    ) -> Self::Out {
        self.create_instance(c, a)
    }
    fn destroy_instance(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::DestroyInstanceArgs,
    ) -> Self::Out {
        self.destroy_instance(c, a)
    }
    fn enumerate_physical_devices(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::EnumeratePhysicalDevicesArgs<'_>,
    ) -> Self::Out {
        self.enumerate_physical_devices(c.cx, a, c.arena)
    }
    fn enumerate_physical_device_groups(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::EnumeratePhysicalDeviceGroupsArgs<'_>,
    ) -> Self::Out {
        self.enumerate_physical_device_groups(c.cx, a, c.arena)
    }
    fn enumerate_device_extension_properties(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::EnumerateDeviceExtensionPropertiesArgs<'_>,
    ) -> Self::Out {
        self.enumerate_device_extensions(c.cx, a, c.arena)
    }
    fn create_device(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::CreateDeviceArgs<'_>,
    ) -> Self::Out {
        self.create_device(c, a)
    }
    fn destroy_device(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::DestroyDeviceArgs,
    ) -> Self::Out {
        self.destroy_device(c, a)
    }
    fn get_device_queue2(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::GetDeviceQueue2Args<'_>,
    ) -> Self::Out {
        self.get_device_queue2(c, a)
    }
    fn allocate_command_buffers(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::AllocateCommandBuffersArgs<'_>,
    ) -> Self::Out {
        self.allocate_command_buffers(c, a)
    }
    fn allocate_descriptor_sets(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::AllocateDescriptorSetsArgs<'_>,
    ) -> Self::Out {
        self.allocate_descriptor_sets(c, a)
    }
    fn reset_descriptor_pool(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::ResetDescriptorPoolArgs,
    ) -> Self::Out {
        self.reset_descriptor_pool(c, a)
    }
    fn queue_submit(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::QueueSubmitArgs<'_>,
    ) -> Self::Out {
        self.queue_op(c, a.queue.raw(), &Command::QueueSubmit(*a))
    }
    fn queue_submit2(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::QueueSubmit2Args<'_>,
    ) -> Self::Out {
        self.queue_op(c, a.queue.raw(), &Command::QueueSubmit2(*a))
    }
    fn queue_bind_sparse(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::QueueBindSparseArgs<'_>,
    ) -> Self::Out {
        self.queue_op(c, a.queue.raw(), &Command::QueueBindSparse(*a))
    }
    fn queue_wait_idle(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::QueueWaitIdleArgs,
    ) -> Self::Out {
        self.queue_wait_idle(c, a)
    }
    fn device_wait_idle(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::DeviceWaitIdleArgs,
    ) -> Self::Out {
        self.device_wait_idle(c, a)
    }
    fn wait_for_fences(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::WaitForFencesArgs<'_>,
    ) -> Self::Out {
        self.wait_for_fences(c, a)
    }
    fn wait_semaphores(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::WaitSemaphoresArgs<'_>,
    ) -> Self::Out {
        self.wait_semaphores(c, a)
    }
    fn get_physical_device_external_semaphore_properties(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::GetPhysicalDeviceExternalSemaphorePropertiesArgs<'_>,
    ) -> Self::Out {
        self.external_semaphore_properties(c, a)
    }
    fn get_physical_device_format_properties2(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::GetPhysicalDeviceFormatProperties2Args<'_>,
    ) -> Self::Out {
        self.format_properties2(c, a)
    }
    fn get_physical_device_image_format_properties2(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::GetPhysicalDeviceImageFormatProperties2Args<'_>,
    ) -> Self::Out {
        self.image_format_properties2(c, a)
    }
    fn get_physical_device_external_buffer_properties(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::GetPhysicalDeviceExternalBufferPropertiesArgs<'_>,
    ) -> Self::Out {
        self.external_buffer_properties(c, a)
    }
    fn get_image_drm_format_modifier_properties_ext(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::GetImageDrmFormatModifierPropertiesEXTArgs<'_>,
    ) -> Self::Out {
        self.image_drm_format_modifier(c, a)
    }
    fn create_buffer(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::CreateBufferArgs<'_>,
    ) -> Self::Out {
        self.create_buffer(c, a)
    }
    fn create_image(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::CreateImageArgs<'_>,
    ) -> Self::Out {
        self.create_image(c, a)
    }
    fn allocate_memory(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::AllocateMemoryArgs<'_>,
    ) -> Self::Out {
        self.allocate_memory(c, a)
    }
    fn create_render_pass(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::CreateRenderPassArgs<'_>,
    ) -> Self::Out {
        self.create_render_pass(c, a)
    }
    fn create_render_pass2(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::CreateRenderPass2Args<'_>,
    ) -> Self::Out {
        self.create_render_pass2(c, a)
    }
    fn create_image_view(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::CreateImageViewArgs<'_>,
    ) -> Self::Out {
        self.create_image_view(c, a)
    }
    fn create_framebuffer(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::CreateFramebufferArgs<'_>,
    ) -> Self::Out {
        self.create_framebuffer(c, a)
    }
    fn create_descriptor_set_layout(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::CreateDescriptorSetLayoutArgs<'_>,
    ) -> Self::Out {
        self.create_descriptor_set_layout(c, a)
    }
    fn create_pipeline_layout(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::CreatePipelineLayoutArgs<'_>,
    ) -> Self::Out {
        self.create_pipeline_layout(c, a)
    }
    fn create_shader_module(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::CreateShaderModuleArgs<'_>,
    ) -> Self::Out {
        self.create_shader_module(c, a)
    }
    fn create_compute_pipelines(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::CreateComputePipelinesArgs<'_>,
    ) -> Self::Out {
        self.create_compute_pipelines(c, a)
    }
    fn create_graphics_pipelines(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::CreateGraphicsPipelinesArgs<'_>,
    ) -> Self::Out {
        self.create_graphics_pipelines(c, a)
    }
    fn update_descriptor_sets(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::UpdateDescriptorSetsArgs<'_>,
    ) -> Self::Out {
        self.update_descriptor_sets(c, a)
    }
    fn cmd_push_descriptor_set(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::CmdPushDescriptorSetArgs<'_>,
    ) -> Self::Out {
        self.cmd_push_descriptor_set(c, a)
    }
    fn cmd_push_descriptor_set2(
        &self,
        c: &mut Call<'a, 'c>,
        a: &venus_protocol::commands::CmdPushDescriptorSet2Args<'_>,
    ) -> Self::Out {
        self.cmd_push_descriptor_set2(c, a)
    }
}

impl Dispatch for VulkanDispatch {
    fn dispatch(
        &self,
        cx: &mut DispatchCx<'_>,
        header: &CommandHeader,
        cmd: &Command<'_>,
    ) -> Result<(), DispatchError> {
        let name = venus_renderer::dispatch::command_name(header);
        ARENA.with(|cell| {
            let mut bump = cell.borrow_mut();
            bump.reset();
            let held = Held::new(&self.registry);
            let mut call = Call {
                cx,
                arena: &bump,
                held: &held,
                name,
                command_type: header.command_type,
            };
            // Venus's own sync command (not a Vulkan command, so not in the policy table).
            if let Command::ImportSemaphoreResourceMESA(a) = cmd {
                return self.import_semaphore_resource(&mut call, a);
            }
            if let Some(refused) = self.check_objects(&mut call, cmd) {
                return refused;
            }
            match policy::route(self, &mut call, cmd) {
                Routed::Handled(r) => r,
                Routed::Generic => self.generic(&mut call, cmd),
                Routed::Destroy(d) => self.destroy(&mut call, d),
                Routed::Refused { command, why } => {
                    Err(invalid(command, format!("refused: {why}")))
                }
            }
        })
    }

    fn export_blob(
        &self,
        req: &venus_renderer::BlobParams,
    ) -> Result<Arc<venus_renderer::shm::SharedMemory>, DispatchError> {
        self.export_memory(req)
    }
}

impl Drop for VulkanDispatch {
    fn drop(&mut self) {
        // A client that vanished leaves its objects behind: everything goes, newest first (the
        // device and instance last, when their last child is gone).
        self.instance
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        release_subtree(self.registry.drain());
        let s = self.registry.stats();
        // The driver freed the device's memory on this context's threads, i.e. in arenas
        // that keep it (docs/soak.md): give it back to the system now.
        let trimmed = venus_host::heap::trim();
        tracing::info!(
            ctx = self.context_id,
            created = s.created,
            destroyed = s.destroyed,
            live = s.live(),
            heap_trimmed = trimmed,
            "host objects released"
        );
        tracing::debug!(context = %self.context, "Vulkan state released");
    }
}
