//! The context's owning object registry (DESIGN decision 8).
//!
//! Owns every host object a context created: guest id -> [`Object`] (type, host handle, owner,
//! per-kind [`State`]). Objects are reference counted: the registry holds one reference, and a
//! thread executing a command holds one for every object the command names (see [`Held`]), so
//! the **host object is destroyed when the last user is gone** (in [`Object`]'s `Drop`), never
//! while a ring thread still uses it.
//!
//! Ownership mirrors Vulkan's: a device-level object owns a reference to its
//! [`DeviceShared`] (so a device is destroyed only after its last child), command buffers and
//! descriptor sets own their pool, a device owns its [`InstanceShared`]. Removing a parent
//! (`vkDestroyDevice`, `vkDestroyCommandPool`, `vkDestroyInstance`, context end) removes its
//! children too and drops them in **reverse creation order** (an object can only depend on
//! objects created before it, so this order is always valid for the driver).
//!
//! Lock order (never the other way round):
//! `VulkanDispatch::instance` slot -> [`crate::queue::QueueShared`]'s submit lock -> the
//! registry's table -> a device's `deferred` list. The table lock is never held while calling
//! the driver: removals return the objects, which callers drop after unlocking.
//!
//! Counters: every host object created through the registry (instance, devices, device
//! children) counts as created once and as destroyed once when it is destroyed on the host (or,
//! for descriptor sets, freed with their pool); [`Registry::stats`] reports both.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use venus_host::lower::HandleMap;
use venus_host::{vk, DeviceProcs, InstanceProcs};
use venus_protocol::handles;
use venus_protocol::Handle;

use crate::queue::QueueShared;

/// Host objects created and destroyed by one context.
#[derive(Debug, Default)]
pub struct Stats {
    created: AtomicU64,
    destroyed: AtomicU64,
}

impl Stats {
    pub(crate) fn created(&self) {
        self.created.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn destroyed(&self) {
        self.destroyed.fetch_add(1, Ordering::Relaxed);
    }
}

/// A snapshot of [`Stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub created: u64,
    pub destroyed: u64,
}

impl StatsSnapshot {
    /// Host objects created and not destroyed yet.
    pub fn live(&self) -> u64 {
        self.created.saturating_sub(self.destroyed)
    }
}

/// The context's `VkInstance`; destroyed on the host when the last reference goes.
pub struct InstanceShared {
    pub guest: u64,
    pub host: vk::Instance,
    pub procs: InstanceProcs,
    pub(crate) stats: Arc<Stats>,
}

impl Drop for InstanceShared {
    fn drop(&mut self) {
        if let Some(destroy) = self.procs.destroy_instance {
            // SAFETY: the last reference is gone: every device (which holds one) was destroyed
            // before, and no command can reach the instance any more.
            unsafe { destroy(self.host, std::ptr::null()) };
        }
        self.stats.destroyed();
    }
}

/// A `VkDevice`; destroyed on the host (after waiting for its work) when the last child and the
/// last command using it are gone.
pub struct DeviceShared {
    pub guest: u64,
    pub host: vk::Device,
    pub procs: DeviceProcs,
    /// The physical device it was created on.
    pub physical: vk::PhysicalDevice,
    /// The physical device's limits (for the generated limit checks).
    pub limits: vk::PhysicalDeviceLimits,
    /// The physical device's `maxTimelineSemaphoreValueDifference` (see [`crate::unblock`]).
    pub max_timeline_difference: u64,
    /// Memory types and host-memory import.
    pub memory: crate::memory::MemoryProfile,
    /// The WSI extensions the driver has and those emulated for the client.
    pub profile: Arc<crate::profile::Profile>,
    /// The device's queues (weak: a queue holds its device).
    pub(crate) queues: Mutex<Vec<std::sync::Weak<QueueShared>>>,
    /// Fences whose destruction must wait until the device is idle (a marker dropped early).
    pub(crate) deferred: Mutex<Vec<vk::Fence>>,
    /// Held so that the instance outlives the device.
    pub instance: Arc<InstanceShared>,
    pub(crate) stats: Arc<Stats>,
}

impl DeviceShared {
    /// The live queues of this device.
    pub(crate) fn live_queues(&self) -> Vec<Arc<QueueShared>> {
        let mut q = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        q.retain(|w| w.strong_count() > 0);
        q.iter().filter_map(|w| w.upgrade()).collect()
    }
}

impl DeviceShared {
    /// `vkDeviceWaitIdle`: nothing the driver runs for this device (its submit threads
    /// included) still uses any of its objects afterwards.
    pub(crate) fn wait_idle(&self) {
        if let Some(wait) = self.procs.device_wait_idle {
            // SAFETY: the device is live (we hold it); the driver serialises the wait against
            // submissions on its own queues.
            unsafe { wait(self.host) };
        }
    }
}

impl Drop for DeviceShared {
    fn drop(&mut self) {
        // Waiting makes the destruction below valid even when a client destroyed a device with
        // work in flight (its children were waited for by `release_subtree`).
        self.wait_idle();
        let deferred = std::mem::take(self.deferred.get_mut().unwrap_or_else(|e| e.into_inner()));
        if let Some(destroy_fence) = self.procs.destroy_fence {
            for f in deferred {
                // SAFETY: the device is idle, so no submission still signals this fence.
                unsafe { destroy_fence(self.host, f, std::ptr::null()) };
            }
        }
        if let Some(destroy) = self.procs.destroy_device {
            // SAFETY: every child was destroyed before (each holds a reference to us) and the
            // device is idle.
            unsafe { destroy(self.host, std::ptr::null()) };
        }
        self.stats.destroyed();
        tracing::debug!(device = self.guest, "host device destroyed");
    }
}

/// Who owns an object (and what its host destruction needs).
pub enum Owner {
    /// Instance-level (the instance itself, physical devices) or a device/queue object, whose
    /// host lifetime is carried by its [`State`].
    Context,
    /// A device-level object, destroyed with `vkDestroyX(device, ...)`.
    Device(Arc<DeviceShared>),
    /// A command buffer or descriptor set, freed through its pool.
    Pool {
        device: Arc<DeviceShared>,
        pool: Arc<Object>,
    },
}

/// Per-kind state.
pub enum State {
    /// Nothing beyond the handle.
    Plain,
    Instance(Arc<InstanceShared>),
    Device(Arc<DeviceShared>),
    Queue(Arc<QueueShared>),
    /// A `VkDescriptorSet`'s layout (updates are checked against it, [`crate::descriptors`]).
    DescriptorSet(Arc<crate::pipelines::SetLayout>),
    /// A `VkDescriptorSetLayout`'s bindings ([`crate::pipelines`]).
    DescriptorSetLayout(Arc<crate::pipelines::SetLayout>),
    /// A `VkPipelineLayout`'s set layouts, `None` for `VK_NULL_HANDLE` entries
    /// ([`crate::pipelines`]).
    PipelineLayout(Arc<crate::pipelines::PipelineLayout>),
    /// A `VkShaderModule`'s reflected interface; `None` when it could not be reflected (not
    /// checked then; [`crate::pipelines`]).
    ShaderModule(Option<Arc<crate::spirv::interface::Interface>>),
    /// A `VkDeviceMemory`'s backing (dropped after the memory is freed on the host: `Drop`
    /// of [`Object`] runs before its fields are dropped).
    Memory(Arc<crate::memory::MemoryShared>),
    /// A `VkRenderPass`'s attachment formats (`VkFormat`), in attachment order.
    RenderPass(Box<[i32]>),
    /// A `VkImageView`'s format (`VkFormat`).
    ImageView(i32),
    /// A timeline `VkSemaphore` (signalled at teardown, [`crate::unblock`]).
    TimelineSemaphore,
    /// A binary `VkSemaphore`: whether a signal is pending ([`crate::binary`]).
    BinarySemaphore(crate::binary::BinarySemaphore),
    /// A `VkEvent` the host may set (created without `DEVICE_ONLY`; set at teardown).
    HostEvent,
    /// A buffer's, image's or query pool's size for the range rules (`venus_host::ranges`).
    Sized(venus_host::ranges::Extent),
}

/// What dropping the object does on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Teardown {
    /// Destroy the host object (`vkDestroyX`, `vkFreeMemory`, `vkFreeCommandBuffers`).
    Destroy,
    /// Nothing: the object goes with its parent (descriptor sets with their pool) or has no
    /// destructor (physical devices, queues, the instance/device entries whose shared state
    /// destroys itself).
    Forget,
}

/// One live guest object.
pub struct Object {
    pub guest: u64,
    /// `VkObjectType`.
    pub ty: i32,
    pub host: u64,
    /// Creation order within the context.
    pub seq: u64,
    pub owner: Owner,
    pub state: State,
    pub teardown: Teardown,
}

impl Object {
    /// The device this object belongs to (the device itself for a device).
    pub fn device(&self) -> Option<&Arc<DeviceShared>> {
        match (&self.owner, &self.state) {
            (Owner::Device(d), _) | (Owner::Pool { device: d, .. }, _) => Some(d),
            (_, State::Device(d)) => Some(d),
            (_, State::Queue(q)) => Some(&q.device),
            _ => None,
        }
    }

    fn belongs_to_device(&self, d: &Arc<DeviceShared>) -> bool {
        self.device().is_some_and(|x| Arc::ptr_eq(x, d))
    }

    pub(crate) fn is_child_of_pool(&self, pool: &Arc<Object>) -> bool {
        matches!(&self.owner, Owner::Pool { pool: p, .. } if Arc::ptr_eq(p, pool))
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        let (device, pool) = match &self.owner {
            Owner::Context => return,
            Owner::Device(d) => (d, 0),
            Owner::Pool { device, pool } => (device, pool.host),
        };
        if self.teardown == Teardown::Destroy {
            // SAFETY: this is the last reference to the object: it is out of the registry and no
            // command uses it; its device (and pool) are alive (we hold references to both).
            let r = unsafe {
                venus_host::generated::calls::destroy_object(
                    &device.procs,
                    device.host,
                    self.ty,
                    self.host,
                    pool,
                )
            };
            if let Err(e) = r {
                tracing::warn!(object = self.guest, ty = self.ty, "cannot destroy: {e}");
            }
        }
        device.stats.destroyed();
    }
}

/// Why the registry refused an id.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error("object id 0 cannot name a new object")]
    NullId,
    #[error("object id {0} is already in use")]
    InUse(u64),
    #[error("unknown object id {id} (expected VkObjectType {ty})")]
    Unknown { id: u64, ty: i32 },
}

#[derive(Default)]
struct Table {
    by_guest: HashMap<u64, Arc<Object>>,
    by_host: HashMap<(i32, u64), u64>,
}

/// The registry (see the module doc).
#[derive(Default)]
pub struct Registry {
    table: RwLock<Table>,
    seq: AtomicU64,
    stats: Arc<Stats>,
}

/// A new object for [`Registry::insert`].
pub struct NewObject {
    pub guest: u64,
    pub ty: i32,
    pub host: u64,
    pub owner: Owner,
    pub state: State,
    pub teardown: Teardown,
}

impl Registry {
    /// The context's counters (shared with devices and the instance, which count themselves).
    pub fn stats_handle(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    pub fn stats(&self) -> StatsSnapshot {
        StatsSnapshot {
            created: self.stats.created.load(Ordering::Relaxed),
            destroyed: self.stats.destroyed.load(Ordering::Relaxed),
        }
    }

    /// Binds a new guest id. Re-binding an id to the very same host object is accepted (the
    /// client may repeat `vkEnumeratePhysicalDevices`); the new entry is dropped then.
    pub fn insert(&self, new: NewObject) -> Result<Arc<Object>, RegistryError> {
        if new.guest == 0 {
            return Err(RegistryError::NullId);
        }
        let counted = !matches!(new.owner, Owner::Context);
        let mut t = self.write();
        if let Some(old) = t.by_guest.get(&new.guest) {
            if old.ty == new.ty && old.host == new.host {
                return Ok(Arc::clone(old));
            }
            return Err(RegistryError::InUse(new.guest));
        }
        let obj = Arc::new(Object {
            guest: new.guest,
            ty: new.ty,
            host: new.host,
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            owner: new.owner,
            state: new.state,
            teardown: new.teardown,
        });
        t.by_guest.insert(new.guest, Arc::clone(&obj));
        t.by_host.insert((new.ty, new.host), new.guest);
        drop(t);
        if counted {
            self.stats.created();
        }
        Ok(obj)
    }

    pub fn get(&self, guest: u64) -> Option<Arc<Object>> {
        self.read().by_guest.get(&guest).cloned()
    }

    /// The object `guest` if it has type `ty`.
    pub fn get_typed(&self, ty: i32, guest: u64) -> Result<Arc<Object>, RegistryError> {
        self.get(guest)
            .filter(|o| o.ty == ty)
            .ok_or(RegistryError::Unknown { id: guest, ty })
    }

    /// The device `guest` (a `VkDevice` id).
    pub fn device(&self, guest: u64) -> Result<Arc<DeviceShared>, RegistryError> {
        match &self.get_typed(handles::Device::OBJECT_TYPE, guest)?.state {
            State::Device(d) => Ok(Arc::clone(d)),
            _ => Err(RegistryError::Unknown {
                id: guest,
                ty: handles::Device::OBJECT_TYPE,
            }),
        }
    }

    /// The queue `guest` (a `VkQueue` id).
    pub fn queue(&self, guest: u64) -> Result<Arc<QueueShared>, RegistryError> {
        match &self.get_typed(handles::Queue::OBJECT_TYPE, guest)?.state {
            State::Queue(q) => Ok(Arc::clone(q)),
            _ => Err(RegistryError::Unknown {
                id: guest,
                ty: handles::Queue::OBJECT_TYPE,
            }),
        }
    }

    /// The guest id bound to a host handle of `ty`.
    pub fn guest_of(&self, ty: i32, host: u64) -> Option<u64> {
        self.read().by_host.get(&(ty, host)).copied()
    }

    /// Unbinds `guest` (of type `ty`) and its pool children (a pool's command buffers or
    /// descriptor sets). The caller drops what is returned (outside any lock): that destroys
    /// the host objects whose last reference it was, children first.
    pub fn remove(&self, ty: i32, guest: u64) -> Result<Vec<Arc<Object>>, RegistryError> {
        let mut t = self.write();
        let obj = t
            .by_guest
            .get(&guest)
            .filter(|o| o.ty == ty)
            .cloned()
            .ok_or(RegistryError::Unknown { id: guest, ty })?;
        let mut gone = Self::take(&mut t, |o| o.is_child_of_pool(&obj));
        gone.extend(Self::take(&mut t, |o| o.guest == guest));
        Ok(gone)
    }

    /// Unbinds the children of pool `pool` only (`vkResetDescriptorPool`).
    pub fn remove_pool_children(&self, pool: &Arc<Object>) -> Vec<Arc<Object>> {
        Self::take(&mut self.write(), |o| o.is_child_of_pool(pool))
    }

    /// Unbinds device `d`, its queues and every object it owns, newest first.
    pub fn remove_device(&self, d: &Arc<DeviceShared>) -> Vec<Arc<Object>> {
        Self::take(&mut self.write(), |o| o.belongs_to_device(d))
    }

    /// Unbinds everything, newest first (`vkDestroyInstance`, context end).
    pub fn drain(&self) -> Vec<Arc<Object>> {
        Self::take(&mut self.write(), |_| true)
    }

    /// Number of bound ids.
    pub fn len(&self) -> usize {
        self.read().by_guest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn take(t: &mut Table, pred: impl Fn(&Object) -> bool) -> Vec<Arc<Object>> {
        let ids: Vec<u64> = t
            .by_guest
            .iter()
            .filter(|(_, o)| pred(o))
            .map(|(id, _)| *id)
            .collect();
        let mut gone: Vec<Arc<Object>> = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(o) = t.by_guest.remove(&id) {
                if t.by_host.get(&(o.ty, o.host)) == Some(&id) {
                    t.by_host.remove(&(o.ty, o.host));
                }
                gone.push(o);
            }
        }
        gone.sort_by_key(|o| std::cmp::Reverse(o.seq));
        gone
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Drops `objects` in order (newest first when they come from the registry).
pub fn release(objects: Vec<Arc<Object>>) {
    for o in objects {
        drop(o);
    }
}

/// [`release`] for a subtree that goes at once without the client having destroyed it
/// (context end, `vkDestroyDevice`/`vkDestroyInstance` with live children): first makes every
/// device among `objects` idle, within a bound ([`crate::unblock`]). A client killed
/// mid-submission leaves work queued in the driver (lavapipe runs it on its own submit thread)
/// that still uses the fences, semaphores, command buffers and memory about to be destroyed;
/// destroying them first and waiting at `vkDestroyDevice` lets that thread touch freed objects
/// (the SIGSEGV the soak found, `docs/soak.md`). A device that cannot be made idle keeps the
/// whole subtree in the graveyard ([`crate::unblock::bury`]) instead of blocking.
pub fn release_subtree(objects: Vec<Arc<Object>>) {
    crate::unblock::sweep();
    let mut pending = Vec::new();
    let mut stuck = false;
    for d in crate::unblock::devices_of(&objects) {
        if let Err(markers) = crate::unblock::settle(d, &objects) {
            pending.extend(markers);
            stuck = true;
        }
    }
    if !stuck {
        release(objects);
    } else {
        crate::unblock::bury(pending, objects);
    }
}

/// The registry as the generated lowering sees it during one command: every object a lookup
/// returns stays referenced until the command is done, so a concurrent destroy (another ring)
/// cannot destroy it under the driver's feet.
pub struct Held<'r> {
    registry: &'r Registry,
    held: RefCell<Vec<Arc<Object>>>,
}

impl<'r> Held<'r> {
    pub fn new(registry: &'r Registry) -> Self {
        Held {
            registry,
            held: RefCell::new(Vec::new()),
        }
    }
}

impl HandleMap for Held<'_> {
    fn host(&self, object_type: i32, id: u64) -> Option<u64> {
        let obj = self.registry.get(id).filter(|o| o.ty == object_type)?;
        let host = obj.host;
        self.held.borrow_mut().push(obj);
        Some(host)
    }
    fn guest(&self, object_type: i32, host: u64) -> Option<u64> {
        self.registry.guest_of(object_type, host)
    }
    fn extent(&self, object_type: i32, id: u64) -> Option<venus_host::ranges::Extent> {
        let obj = self.registry.get(id).filter(|o| o.ty == object_type)?;
        match &obj.state {
            State::Sized(e) => Some(*e),
            State::Memory(m) => Some(venus_host::ranges::Extent::Memory { size: m.size }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(guest: u64, ty: i32, host: u64) -> NewObject {
        NewObject {
            guest,
            ty,
            host,
            owner: Owner::Context,
            state: State::Plain,
            teardown: Teardown::Forget,
        }
    }

    #[test]
    fn ids_are_typed_and_unique() {
        let r = Registry::default();
        r.insert(plain(16, 9, 0x1000)).unwrap();
        assert_eq!(
            r.insert(plain(16, 10, 0x2000)).err(),
            Some(RegistryError::InUse(16))
        );
        assert_eq!(r.insert(plain(0, 9, 1)).err(), Some(RegistryError::NullId));
        r.insert(plain(16, 9, 0x1000)).unwrap(); // same binding again is fine
        let held = Held::new(&r);
        assert_eq!(held.host(9, 16), Some(0x1000));
        assert_eq!(held.host(10, 16), None, "wrong object type");
        assert_eq!(held.guest(9, 0x1000), Some(16));
        assert_eq!(held.held.borrow().len(), 1, "one successful lookup is held");
        assert!(r.get_typed(10, 16).is_err());
    }

    #[test]
    fn removal_returns_newest_first_and_held_objects_outlive_the_table() {
        let r = Registry::default();
        for id in 1..=5 {
            r.insert(plain(id, 9, 0x100 + id)).unwrap();
        }
        let held = Held::new(&r);
        assert_eq!(held.host(9, 3), Some(0x103));
        let all = r.drain();
        let order: Vec<u64> = all.iter().map(|o| o.guest).collect();
        assert_eq!(order, vec![5, 4, 3, 2, 1]);
        assert!(r.is_empty());
        // The command still holds object 3 after the table forgot it.
        assert_eq!(Arc::strong_count(&all[2]), 2);
        drop(held);
        assert_eq!(Arc::strong_count(&all[2]), 1);
    }
}
