//! Objects that live in pools: command buffers (owned by their `VkCommandPool`, freed with
//! `vkFreeCommandBuffers` when dropped) and descriptor sets (owned by their `VkDescriptorPool`,
//! freed with it: destroying or resetting the pool forgets them).

use std::sync::Arc;

use venus_host::generated::calls;
use venus_host::policy::Destroy;
use venus_protocol::commands::*;
use venus_protocol::types::VkResult;
use venus_protocol::{handles, Handle, Reply};

use crate::registry::{release, DeviceShared, Held, Object};
use crate::{Call, VulkanDispatch};
use venus_host::lower::{CallError, LowerCx, Outcome};
use venus_host::DeviceProcs;
use venus_protocol::handles::{CommandPool, DescriptorPool};
use venus_renderer::dispatch::DispatchError;

impl VulkanDispatch {
    fn pool(&self, call: &Call<'_, '_>, ty: i32, id: u64) -> Result<Arc<Object>, DispatchError> {
        self.registry.get_typed(ty, id).map_err(|e| call.invalid(e))
    }

    /// Allocates objects from pool `pool_id` (of type `pool_ty`) of `device` with the generated
    /// executor `run` and registers them as children of the pool; returns the reply.
    fn allocate_in_pool<'b, R>(
        &'b self,
        call: &Call<'_, 'b>,
        device: &'b Arc<DeviceShared>,
        pool_ty: i32,
        pool_id: u64,
        mut states: impl FnMut() -> crate::registry::State,
        run: impl FnOnce(&DeviceProcs, &mut LowerCx<'b, Held<'b>>) -> Result<(R, Outcome), CallError>,
    ) -> Result<R, DispatchError> {
        let pool = self.pool(call, pool_ty, pool_id)?;
        let (reply, outcome) = self.execute(call, Some(device), run)?;
        self.register_created(
            call,
            &outcome,
            Some(device),
            |_| Some(Arc::clone(&pool)),
            |_| states(),
        )?;
        Ok(reply)
    }

    pub(crate) fn allocate_command_buffers(
        &self,
        call: &mut Call<'_, '_>,
        a: &AllocateCommandBuffersArgs<'_>,
    ) -> Result<(), DispatchError> {
        let device = self
            .registry
            .device(a.device.raw())
            .map_err(|e| call.invalid(e))?;
        let pool = a.p_allocate_info.command_pool.raw();
        let reply = self.allocate_in_pool(
            call,
            &device,
            CommandPool::OBJECT_TYPE,
            pool,
            || crate::registry::State::Plain,
            |p, lcx| {
                // SAFETY: forwarded: the handle map is the registry, the procs the device's.
                unsafe { calls::allocate_command_buffers(p, lcx, a) }
            },
        )?;
        call.cx.reply(&Reply::AllocateCommandBuffers(reply))
    }

    pub(crate) fn allocate_descriptor_sets(
        &self,
        call: &mut Call<'_, '_>,
        a: &AllocateDescriptorSetsArgs<'_>,
    ) -> Result<(), DispatchError> {
        let device = self
            .registry
            .device(a.device.raw())
            .map_err(|e| call.invalid(e))?;
        let pool = a.p_allocate_info.descriptor_pool.raw();
        // Each set keeps its layout's bindings: updates are checked against them.
        let mut layouts = Vec::with_capacity(a.p_allocate_info.p_set_layouts.len());
        for id in a.p_allocate_info.p_set_layouts {
            let layout = self.set_layout(*id).ok_or_else(|| {
                call.invalid(format!(
                    "pSetLayouts: VkDescriptorSetLayout id {} is unknown or has no recorded bindings",
                    id.raw()
                ))
            })?;
            layouts.push(layout);
        }
        let mut layouts = layouts.into_iter();
        let reply = self.allocate_in_pool(
            call,
            &device,
            DescriptorPool::OBJECT_TYPE,
            pool,
            || match layouts.next() {
                Some(l) => crate::registry::State::DescriptorSet(l),
                None => crate::registry::State::Plain,
            },
            |p, lcx| {
                // SAFETY: forwarded: the handle map is the registry, the procs the device's.
                unsafe { calls::allocate_descriptor_sets(p, lcx, a) }
            },
        )?;
        call.cx.reply(&Reply::AllocateDescriptorSets(reply))
    }

    pub(crate) fn reset_descriptor_pool(
        &self,
        call: &mut Call<'_, '_>,
        a: &ResetDescriptorPoolArgs,
    ) -> Result<(), DispatchError> {
        let device = self
            .registry
            .device(a.device.raw())
            .map_err(|e| call.invalid(e))?;
        let pool = self.pool(
            call,
            handles::DescriptorPool::OBJECT_TYPE,
            a.descriptor_pool.raw(),
        )?;
        let (reply, _) = self.execute(call, Some(&device), |procs, lcx| {
            // SAFETY: forwarded: the handle map is the registry, the procs the device's.
            unsafe { calls::reset_descriptor_pool(procs, lcx, a) }
        })?;
        // The reset freed every set of the pool on the host.
        release(self.registry.remove_pool_children(&pool));
        call.cx.reply(&Reply::ResetDescriptorPool(reply))
    }

    /// `vkFreeDescriptorSets`: freed on the host now (sets have no destructor of their own),
    /// then forgotten.
    pub(crate) fn free_descriptor_sets(
        &self,
        call: &mut Call<'_, '_>,
        d: &Destroy,
    ) -> Result<(), DispatchError> {
        let device = self
            .registry
            .device(d.device)
            .map_err(|e| call.invalid(e))?;
        let pool = self.pool(
            call,
            handles::DescriptorPool::OBJECT_TYPE,
            d.pool.unwrap_or(0),
        )?;
        let mut gone = Vec::with_capacity(d.objects.len());
        for id in &d.objects {
            let set = self.pool(call, handles::DescriptorSet::OBJECT_TYPE, *id)?;
            if !set.is_child_of_pool(&pool) {
                return Err(call.invalid(format!(
                    "descriptor set {id} is not from pool {}",
                    pool.guest
                )));
            }
            gone.push(set);
        }
        for set in &gone {
            // SAFETY: the set and its pool are live objects of this device (held here).
            unsafe {
                calls::destroy_object(&device.procs, device.host, set.ty, set.host, pool.host)
            }
            .map_err(|e| call.invalid(e))?;
        }
        for set in gone {
            release(
                self.registry
                    .remove(set.ty, set.guest)
                    .map_err(|e| call.invalid(e))?,
            );
        }
        call.cx
            .reply(&Reply::FreeDescriptorSets(FreeDescriptorSetsReply {
                ret: VkResult::SUCCESS,
            }))
    }
}
