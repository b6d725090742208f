//! venus-rs dispatch layer: executes decoded Vulkan commands on the host driver.
//!
//! It implements `venus_renderer::dispatch::{Dispatch, DispatchFactory}`: the core hands it
//! every non-transport command of a context, from the socket thread and every ring thread.
//!
//! Almost every command runs through the generated generic executors of `venus-host`
//! (lower the request to C with ids translated through the context's [`Objects`] table, call the
//! driver, raise the outputs, bind created / forget destroyed objects). What needs judgement is
//! handled here, grouped by Vulkan concept:
//! - [`instance`]: the instance-level facts the host states (its version, the two private
//!   extensions), instance creation, device extension filtering;
//! - [`device`]: device creation (enabled extensions filtered to what the host has) and
//!   destruction (the device's objects are forgotten).

mod device;
mod instance;
pub mod objects;
mod physical;

pub use physical::DeviceSelector;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bumpalo::Bump;
use venus_host::generated::calls;
use venus_host::loader::Loader;
use venus_host::lower::{CallError, LowerCx};
use venus_host::{vk, DeviceProcs, InstanceProcs};
use venus_protocol::{handles, Command, CommandHeader, Handle};

use objects::{Object, Objects};
use venus_renderer::dispatch::{ContextInfo, Dispatch, DispatchCx, DispatchError, DispatchFactory};

thread_local! {
    /// Per-thread arena for the C side of one driver call (reset before every command).
    static ARENA: RefCell<Bump> = RefCell::new(Bump::new());
}

/// Process-wide state: the Vulkan loader (the host driver is whatever it selects).
pub struct VulkanFactory {
    loader: Arc<Loader>,
    selector: DeviceSelector,
}

impl VulkanFactory {
    /// Opens the Vulkan loader; clients see the devices `selector` picks.
    pub fn new(selector: DeviceSelector) -> Result<Self, venus_host::loader::LoaderError> {
        Ok(VulkanFactory {
            loader: Arc::new(Loader::open()?),
            selector,
        })
    }
}

impl DispatchFactory for VulkanFactory {
    fn create_dispatch(&self, info: &ContextInfo) -> Result<Arc<dyn Dispatch>, DispatchError> {
        Ok(Arc::new(VulkanDispatch::new(
            self.loader.clone(),
            self.selector.clone(),
            info,
        )))
    }
}

pub(crate) struct InstanceState {
    pub guest: u64,
    pub host: vk::Instance,
    pub procs: InstanceProcs,
}

pub(crate) struct DeviceState {
    pub host: vk::Device,
    pub procs: DeviceProcs,
}

/// One context's Vulkan state.
pub struct VulkanDispatch {
    loader: Arc<Loader>,
    global: InstanceProcs,
    objects: Objects,
    instance: RwLock<Option<Arc<InstanceState>>>,
    devices: RwLock<HashMap<u64, Arc<DeviceState>>>,
    selector: DeviceSelector,
    context: String,
}

impl VulkanDispatch {
    pub fn new(loader: Arc<Loader>, selector: DeviceSelector, info: &ContextInfo) -> Self {
        let global = loader.global_procs();
        VulkanDispatch {
            loader,
            global,
            objects: Objects::default(),
            instance: RwLock::new(None),
            devices: RwLock::new(HashMap::new()),
            selector,
            context: format!("{} {:?}", info.id, info.name),
        }
    }

    pub(crate) fn instance(
        &self,
        command: &'static str,
    ) -> Result<Arc<InstanceState>, DispatchError> {
        self.instance
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| invalid(command, "no VkInstance yet".into()))
    }

    fn device_of(
        &self,
        command: &'static str,
        cmd: &Command<'_>,
    ) -> Result<Option<Arc<DeviceState>>, DispatchError> {
        let Some((ty, id)) = calls::first_handle(cmd) else {
            return Ok(None);
        };
        let obj = self
            .objects
            .get(id)
            .filter(|o| o.ty == ty)
            .ok_or_else(|| invalid(command, format!("unknown object id {id} (type {ty})")))?;
        let device = if ty == handles::Device::OBJECT_TYPE {
            Some(id)
        } else {
            obj.device
        };
        Ok(match device {
            Some(d) => Some(
                self.devices
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&d)
                    .cloned()
                    .ok_or_else(|| invalid(command, format!("device {d} is gone")))?,
            ),
            None => None,
        })
    }

    /// Runs `cmd` through the generated executor and applies its object bindings.
    fn generic(
        &self,
        cx: &mut DispatchCx<'_>,
        name: &'static str,
        cmd: &Command<'_>,
        arena: &Bump,
    ) -> Result<(), DispatchError> {
        let inst = self.instance(name)?;
        let device = self.device_of(name, cmd)?;
        let device_guest = match calls::first_handle(cmd) {
            Some((ty, id)) if ty == handles::Device::OBJECT_TYPE => Some(id),
            Some((_, id)) => self.objects.get(id).and_then(|o| o.device),
            None => None,
        };
        let mut lcx = LowerCx::new(arena, &self.objects);
        // SAFETY: the handle map is this context's object table, which only holds live host
        // objects (bound when created, removed when destroyed); `device` is the table of the
        // device the command's first handle belongs to, and `inst` the context's instance.
        let result = unsafe {
            calls::execute(
                &inst.procs,
                device.as_deref().map(|d| &d.procs),
                &mut lcx,
                cmd,
            )
        };
        let (reply, outcome) = match result {
            None => return Err(DispatchError::Unsupported(name)),
            Some(Err(CallError::Lower(e))) => return Err(invalid(name, e.to_string())),
            Some(Err(e)) => return Err(invalid(name, e.to_string())),
            Some(Ok(r)) => r,
        };
        for (ty, guest, host) in outcome.created {
            self.objects
                .insert(
                    guest,
                    Object {
                        ty,
                        host,
                        device: device_guest,
                    },
                )
                .map_err(|e| invalid(name, e.to_string()))?;
        }
        for (_, guest) in outcome.destroyed {
            self.objects.remove(guest);
        }
        cx.reply(&reply)
    }
}

pub(crate) fn invalid(command: &'static str, reason: String) -> DispatchError {
    DispatchError::Invalid { command, reason }
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
            let arena: &Bump = &bump;
            match cmd {
                Command::EnumerateInstanceVersion(_) => self.enumerate_instance_version(cx),
                Command::EnumerateInstanceExtensionProperties(a) => {
                    self.enumerate_instance_extensions(cx, a)
                }
                Command::CreateInstance(a) => self.create_instance(cx, a, arena),
                Command::DestroyInstance(a) => self.destroy_instance(cx, a),
                Command::EnumeratePhysicalDevices(a) => {
                    self.enumerate_physical_devices(cx, a, arena)
                }
                Command::EnumeratePhysicalDeviceGroups(a) => {
                    self.enumerate_physical_device_groups(cx, a, arena)
                }
                Command::EnumerateDeviceExtensionProperties(a) => {
                    self.enumerate_device_extensions(cx, a, arena)
                }
                Command::CreateDevice(a) => self.create_device(cx, a, arena),
                Command::DestroyDevice(a) => self.destroy_device(cx, a),
                Command::GetDeviceQueue(_) => Err(invalid(
                    name,
                    "queues are only obtained with vkGetDeviceQueue2".into(),
                )),
                _ => self.generic(cx, name, cmd, arena),
            }
        })
    }
}

impl Drop for VulkanDispatch {
    fn drop(&mut self) {
        // A client that vanished leaves its objects behind: destroy devices, then the instance.
        let devices: Vec<Arc<DeviceState>> = self
            .devices
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, d)| d)
            .collect();
        for d in devices {
            if let Some(wait) = d.procs.device_wait_idle {
                // SAFETY: the device is live (still in our table) and no channel of this context
                // runs any more (the dispatch is dropped after every ring thread was joined).
                unsafe { wait(d.host) };
            }
            if let Some(destroy) = d.procs.destroy_device {
                // SAFETY: as above; nothing uses the device after this.
                unsafe { destroy(d.host, std::ptr::null()) };
            }
        }
        if let Some(inst) = self
            .instance
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            if let Some(destroy) = inst.procs.destroy_instance {
                // SAFETY: every device of the instance is destroyed; nothing else uses it.
                unsafe { destroy(inst.host, std::ptr::null()) };
            }
        }
        tracing::debug!(context = %self.context, "Vulkan state released");
    }
}
