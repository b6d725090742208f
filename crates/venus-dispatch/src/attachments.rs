//! Render passes, image views and framebuffers: the boundary rules that need per-object state.
//!
//! Owns the attachment facts the registry keeps per object ([`State::RenderPass`]: the
//! attachment formats; [`State::ImageView`]: the view's format) and the check at
//! `vkCreateFramebuffer` that uses them: a framebuffer whose attachments do not match its render
//! pass in count (VUID-VkFramebufferCreateInfo-attachmentCount-00876) or format
//! (VUID-VkFramebufferCreateInfo-pAttachments-00880) is invalid usage that drivers do not
//! survive (virglrs lists a render-pass format mismatch among the guest inputs that killed its
//! VM through MoltenVK), so it ends the context instead of reaching the driver. Imageless
//! framebuffers (`VK_FRAMEBUFFER_CREATE_IMAGELESS_BIT`) carry no views and are not checked here.
//! Everything else runs through the generated executors (with their generated checks).

use std::sync::Arc;

use venus_host::generated::calls;
use venus_host::lower::{CallError, LowerCx, Outcome};
use venus_host::DeviceProcs;
use venus_protocol::commands::*;
use venus_protocol::structs::FramebufferCreateInfo;
use venus_protocol::types::FramebufferCreateFlags;
use venus_protocol::{handles, Handle, Reply};
use venus_renderer::dispatch::DispatchError;

use crate::registry::{DeviceShared, Held, State};
use crate::{Call, VulkanDispatch};

impl VulkanDispatch {
    pub(crate) fn device(
        &self,
        call: &Call<'_, '_>,
        id: u64,
    ) -> Result<Arc<DeviceShared>, DispatchError> {
        self.registry.device(id).map_err(|e| call.invalid(e))
    }

    /// Runs a creating executor on `device` and registers what it created with `state`;
    /// returns the executor's reply.
    pub(crate) fn create_with_state<'b, R>(
        &'b self,
        call: &Call<'_, 'b>,
        device: &'b Arc<DeviceShared>,
        state: State,
        run: impl FnOnce(&DeviceProcs, &mut LowerCx<'b, Held<'b>>) -> Result<(R, Outcome), CallError>,
    ) -> Result<R, DispatchError> {
        let (reply, outcome) = self.execute(call, Some(device), run)?;
        let mut state = Some(state);
        self.register_created(
            call,
            &outcome,
            Some(device),
            |_| None,
            |_| state.take().unwrap_or(State::Plain),
        )?;
        Ok(reply)
    }

    pub(crate) fn create_render_pass(
        &self,
        call: &mut Call<'_, '_>,
        a: &CreateRenderPassArgs<'_>,
    ) -> Result<(), DispatchError> {
        let formats = a.p_create_info.p_attachments.iter().map(|d| d.format.0);
        let state = State::RenderPass(formats.collect());
        let device = self.device(call, a.device.raw())?;
        let reply = self.create_with_state(call, &device, state, |p, lcx| {
            // SAFETY: forwarded: the handle map is the registry, the procs the device's.
            unsafe { calls::create_render_pass(p, lcx, a) }
        })?;
        call.cx.reply(&Reply::CreateRenderPass(reply))
    }

    pub(crate) fn create_render_pass2(
        &self,
        call: &mut Call<'_, '_>,
        a: &CreateRenderPass2Args<'_>,
    ) -> Result<(), DispatchError> {
        let formats = a.p_create_info.p_attachments.iter().map(|d| d.format.0);
        let state = State::RenderPass(formats.collect());
        let device = self.device(call, a.device.raw())?;
        let reply = self.create_with_state(call, &device, state, |p, lcx| {
            // SAFETY: forwarded: the handle map is the registry, the procs the device's.
            unsafe { calls::create_render_pass2(p, lcx, a) }
        })?;
        call.cx.reply(&Reply::CreateRenderPass2(reply))
    }

    pub(crate) fn create_image_view(
        &self,
        call: &mut Call<'_, '_>,
        a: &CreateImageViewArgs<'_>,
    ) -> Result<(), DispatchError> {
        let state = State::ImageView(a.p_create_info.format.0);
        let device = self.device(call, a.device.raw())?;
        let reply = self.create_with_state(call, &device, state, |p, lcx| {
            // SAFETY: forwarded: the handle map is the registry, the procs the device's.
            unsafe { calls::create_image_view(p, lcx, a) }
        })?;
        call.cx.reply(&Reply::CreateImageView(reply))
    }

    /// `vkCreateFramebuffer`: the attachments must match the render pass (see the module doc).
    pub(crate) fn create_framebuffer(
        &self,
        call: &mut Call<'_, '_>,
        a: &CreateFramebufferArgs<'_>,
    ) -> Result<(), DispatchError> {
        self.check_framebuffer(a.p_create_info)
            .map_err(|e| call.invalid(e))?;
        let device = self.device(call, a.device.raw())?;
        let reply = self.create_with_state(call, &device, State::Plain, |p, lcx| {
            // SAFETY: forwarded: the handle map is the registry, the procs the device's.
            unsafe { calls::create_framebuffer(p, lcx, a) }
        })?;
        call.cx.reply(&Reply::CreateFramebuffer(reply))
    }

    /// VUID-VkFramebufferCreateInfo-attachmentCount-00876 and -pAttachments-00880 against the
    /// registry's render pass and image views.
    fn check_framebuffer(&self, info: &FramebufferCreateInfo<'_>) -> Result<(), String> {
        if info.flags.0 & FramebufferCreateFlags::IMAGELESS_BIT.0 != 0 {
            return Ok(());
        }
        let pass = self
            .registry
            .get_typed(handles::RenderPass::OBJECT_TYPE, info.render_pass.raw())
            .map_err(|e| format!("pCreateInfo->renderPass: {e}"))?;
        let State::RenderPass(formats) = &pass.state else {
            return Ok(());
        };
        if info.p_attachments.len() != formats.len() {
            return Err(format!(
                "pCreateInfo->attachmentCount {} does not match the render pass's {} attachments \
                 (VUID-VkFramebufferCreateInfo-attachmentCount-00876)",
                info.p_attachments.len(),
                formats.len()
            ));
        }
        for (i, (view, want)) in info.p_attachments.iter().zip(formats.iter()).enumerate() {
            let view = self
                .registry
                .get_typed(handles::ImageView::OBJECT_TYPE, view.raw())
                .map_err(|e| format!("pCreateInfo->pAttachments[{i}]: {e}"))?;
            if let State::ImageView(got) = view.state {
                if got != *want {
                    return Err(format!(
                        "pCreateInfo->pAttachments[{i}]: image view format {got} does not match \
                         the render pass's attachment format {want} \
                         (VUID-VkFramebufferCreateInfo-pAttachments-00880)"
                    ));
                }
            }
        }
        Ok(())
    }
}
