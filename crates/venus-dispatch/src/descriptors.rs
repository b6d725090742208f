//! Descriptor writes and copies against the set layouts they land in.
//!
//! Owns the per-set fact the registry keeps ([`State::DescriptorSet`]: the
//! [`SetLayout`] the set was allocated with, from [`crate::pipelines`]) and the rule every
//! descriptor update obeys: `descriptorCount` descriptors starting at element `dstArrayElement`
//! of `dstBinding`, rolling over into the following bindings (`dstBinding + 1`, ...; bindings of
//! zero descriptors are skipped), must all exist with the write's descriptor type
//! (VUID-VkWriteDescriptorSet-dstBinding-00315, -dstArrayElement-00321, -descriptorType-00319;
//! VUID-VkCopyDescriptorSet-srcArrayElement-00346, -dstArrayElement-00348). Drivers index the
//! set's memory with these numbers unchecked: lavapipe, a CPU driver, writes the server's heap.
//! Checked at `vkUpdateDescriptorSets` (writes and copies) and `vkCmdPushDescriptorSet(2)`
//! (writes against the pipeline layout's set). Inline uniform blocks count bytes, with the same
//! walk. A write into a `VK_DESCRIPTOR_TYPE_MUTABLE_EXT` binding accepts any type.

use std::sync::Arc;

use venus_host::generated::calls;
use venus_protocol::commands::*;
use venus_protocol::structs::WriteDescriptorSet;
use venus_protocol::{handles, Handle, Id, Reply};
use venus_renderer::dispatch::DispatchError;

use crate::pipelines::SetLayout;
use crate::registry::State;
use crate::spirv::interface::DT_MUTABLE_EXT;
use crate::{Call, VulkanDispatch};

/// `count` descriptors from element `element` of `binding` of `layout`, rolling over into the
/// following bindings; each binding must have type `ty` (None: any, a copy's source is
/// compared with its destination separately).
pub fn check_range(
    layout: &SetLayout,
    binding: u32,
    element: u32,
    count: u32,
    ty: Option<i32>,
) -> Result<(), String> {
    let (mut b, mut start, mut left) = (binding, u64::from(element), u64::from(count));
    let mut first = true;
    while left > 0 {
        let Some(lb) = layout.binding(b) else {
            return Err(if first {
                format!("binding {b} is not in the set layout")
            } else {
                format!(
                    "{left} descriptors roll over past binding {}, which the layout lacks",
                    b - 1
                )
            });
        };
        if let Some(t) = ty {
            if lb.count > 0 && lb.ty != t && lb.ty != DT_MUTABLE_EXT {
                return Err(format!(
                    "binding {b} has descriptor type {}, the update writes type {t}",
                    lb.ty
                ));
            }
        }
        let have = u64::from(lb.count);
        if start > have || (first && start == have && have > 0) {
            return Err(format!(
                "element {start} is past binding {b}'s {have} descriptors"
            ));
        }
        let take = left.min(have - start);
        left -= take;
        start = 0;
        first = false;
        b = match b.checked_add(1) {
            Some(n) => n,
            None if left == 0 => break,
            None => return Err("the update rolls over past binding 4294967295".into()),
        };
    }
    Ok(())
}

impl VulkanDispatch {
    /// The layout descriptor set `id` was allocated with.
    fn layout_of_set(&self, id: Id<handles::DescriptorSet>) -> Result<Arc<SetLayout>, String> {
        let obj = self
            .registry
            .get_typed(handles::DescriptorSet::OBJECT_TYPE, id.raw())
            .map_err(|e| e.to_string())?;
        match &obj.state {
            State::DescriptorSet(l) => Ok(Arc::clone(l)),
            _ => Err(format!(
                "VkDescriptorSet id {} has no recorded layout",
                id.raw()
            )),
        }
    }

    /// The device command buffer `cb` belongs to.
    fn command_buffer_device(
        &self,
        call: &Call<'_, '_>,
        cb: Id<handles::CommandBuffer>,
    ) -> Result<Arc<crate::registry::DeviceShared>, DispatchError> {
        self.device_of_object(call, handles::CommandBuffer::OBJECT_TYPE, cb.raw())?
            .ok_or_else(|| call.invalid("the command buffer has no device"))
    }

    /// Set `set` of pipeline layout `id` (push descriptors).
    fn pushed_layout(
        &self,
        id: Id<handles::PipelineLayout>,
        set: u32,
    ) -> Result<Arc<SetLayout>, String> {
        let sets = self.pipeline_layout(id).ok_or_else(|| {
            format!(
                "VkPipelineLayout id {} is unknown or has no recorded sets",
                id.raw()
            )
        })?;
        match sets.get(set as usize) {
            Some(Some(l)) => Ok(Arc::clone(l)),
            Some(None) => Err(format!(
                "set {set} of the pipeline layout is VK_NULL_HANDLE"
            )),
            None => Err(format!(
                "set {set} is past the pipeline layout's {} sets",
                sets.len()
            )),
        }
    }

    fn check_writes(
        &self,
        writes: &[WriteDescriptorSet<'_>],
        layout_of: impl Fn(&WriteDescriptorSet<'_>) -> Result<Arc<SetLayout>, String>,
    ) -> Result<(), String> {
        for (i, w) in writes.iter().enumerate() {
            let layout = layout_of(w).map_err(|e| format!("pDescriptorWrites[{i}]: {e}"))?;
            check_range(
                &layout,
                w.dst_binding,
                w.dst_array_element,
                w.descriptor_count,
                Some(w.descriptor_type.0),
            )
            .map_err(|e| {
                format!(
                    "pDescriptorWrites[{i}]: {e} (VUID-VkWriteDescriptorSet-dstBinding-00315, \
                     -dstArrayElement-00321, -descriptorType-00319)"
                )
            })?;
        }
        Ok(())
    }

    /// `vkUpdateDescriptorSets`: writes and copies checked against their sets' layouts.
    pub(crate) fn update_descriptor_sets(
        &self,
        call: &mut Call<'_, '_>,
        a: &UpdateDescriptorSetsArgs<'_>,
    ) -> Result<(), DispatchError> {
        self.check_writes(a.p_descriptor_writes, |w| self.layout_of_set(w.dst_set))
            .map_err(|e| call.invalid(e))?;
        for (i, c) in a.p_descriptor_copies.iter().enumerate() {
            let src = self.layout_of_set(c.src_set);
            let dst = self.layout_of_set(c.dst_set);
            let checked = src.and_then(|src| {
                let ty = src.binding(c.src_binding).map(|b| b.ty);
                check_range(
                    &src,
                    c.src_binding,
                    c.src_array_element,
                    c.descriptor_count,
                    ty,
                )?;
                let dst = dst?;
                check_range(
                    &dst,
                    c.dst_binding,
                    c.dst_array_element,
                    c.descriptor_count,
                    ty,
                )
            });
            checked.map_err(|e| {
                call.invalid(format!(
                    "pDescriptorCopies[{i}]: {e} (VUID-VkCopyDescriptorSet-srcArrayElement-00346, \
                     -dstArrayElement-00348)"
                ))
            })?;
        }
        let device = self.device(call, a.device.raw())?;
        let (reply, _) = self.execute(call, Some(&device), |p, lcx| {
            // SAFETY: forwarded: the handle map is the registry, the procs the device's.
            unsafe { calls::update_descriptor_sets(p, lcx, a) }
        })?;
        call.cx.reply(&Reply::UpdateDescriptorSets(reply))
    }

    /// `vkCmdPushDescriptorSet`: writes checked against set `set` of the pipeline layout.
    pub(crate) fn cmd_push_descriptor_set(
        &self,
        call: &mut Call<'_, '_>,
        a: &CmdPushDescriptorSetArgs<'_>,
    ) -> Result<(), DispatchError> {
        self.check_writes(a.p_descriptor_writes, |_| {
            self.pushed_layout(a.layout, a.set)
        })
        .map_err(|e| call.invalid(e))?;
        let device = self.command_buffer_device(call, a.command_buffer)?;
        let (reply, _) = self.execute(call, Some(&device), |p, lcx| {
            // SAFETY: forwarded: the handle map is the registry, the procs the device's.
            unsafe { calls::cmd_push_descriptor_set(p, lcx, a) }
        })?;
        call.cx.reply(&Reply::CmdPushDescriptorSet(reply))
    }

    /// `vkCmdPushDescriptorSet2`: as [`Self::cmd_push_descriptor_set`].
    pub(crate) fn cmd_push_descriptor_set2(
        &self,
        call: &mut Call<'_, '_>,
        a: &CmdPushDescriptorSet2Args<'_>,
    ) -> Result<(), DispatchError> {
        let info = a.p_push_descriptor_set_info;
        self.check_writes(info.p_descriptor_writes, |_| {
            self.pushed_layout(info.layout, info.set)
        })
        .map_err(|e| call.invalid(e))?;
        let device = self.command_buffer_device(call, a.command_buffer)?;
        let (reply, _) = self.execute(call, Some(&device), |p, lcx| {
            // SAFETY: forwarded: the handle map is the registry, the procs the device's.
            unsafe { calls::cmd_push_descriptor_set2(p, lcx, a) }
        })?;
        call.cx.reply(&Reply::CmdPushDescriptorSet2(reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipelines::LayoutBinding;

    const UNIFORM: i32 = 6;
    const STORAGE: i32 = 7;

    fn layout() -> SetLayout {
        let b = |binding, ty, count| LayoutBinding {
            binding,
            ty,
            count,
            stages: 0x20,
        };
        // 0: 4 uniforms, 1: none, 2: 2 uniforms, 3: 1 storage, 5: mutable x 2.
        SetLayout::new(vec![
            b(0, UNIFORM, 4),
            b(1, UNIFORM, 0),
            b(2, UNIFORM, 2),
            b(3, STORAGE, 1),
            b(5, DT_MUTABLE_EXT, 2),
        ])
    }

    #[test]
    fn writes_roll_over_consecutive_bindings() {
        let l = layout();
        let ok = |b, e, n, t| check_range(&l, b, e, n, Some(t)).is_ok();
        assert!(ok(0, 0, 4, UNIFORM));
        assert!(
            ok(0, 3, 3, UNIFORM),
            "1 in binding 0, binding 1 skipped, 2 in binding 2"
        );
        assert!(
            !ok(0, 3, 4, UNIFORM),
            "the 4th would land in binding 3 (storage)"
        );
        assert!(!ok(0, 4, 1, UNIFORM), "element 4 is past binding 0");
        assert!(!ok(0, 1000, 1, UNIFORM));
        assert!(!ok(3, 0, 2, STORAGE), "binding 4 does not exist");
        assert!(!ok(4, 0, 1, STORAGE));
        assert!(!ok(0, 0, 1, STORAGE), "type mismatch");
        assert!(ok(5, 0, 2, STORAGE), "mutable accepts any type");
        assert!(ok(0, 0, 0, UNIFORM), "nothing written");
        assert!(!ok(2, 0, u32::MAX, UNIFORM));
    }
}
