//! Shader resource interfaces against pipeline layouts: the boundary rule at pipeline creation.
//!
//! Owns the per-object facts the registry keeps for it ([`State::DescriptorSetLayout`]: the
//! bindings, [`State::PipelineLayout`]: the set layouts, [`State::ShaderModule`]: the module's
//! reflected interface, [`crate::spirv::interface`], computed once at `vkCreateShaderModule`)
//! and the check at `vkCreateComputePipelines` / `vkCreateGraphicsPipelines`: for every stage,
//! the entry point `pName` must exist in the module for the stage's execution model
//! (VUID-VkPipelineShaderStageCreateInfo-pName-00707), and every descriptor resource it
//! statically uses must be declared in the pipeline layout: the set within `setLayoutCount` and
//! not `VK_NULL_HANDLE`, the binding present with the stage in its `stageFlags`
//! (VUID-Vk{Compute,Graphics}PipelineCreateInfo-layout-07988), a compatible descriptor type
//! (-07990; `MUTABLE_EXT` accepts any) and `descriptorCount` at least the shader's array size
//! (-07991; not for inline uniform blocks, whose count is bytes). Drivers trust all of this:
//! lavapipe dies with SIGSEGV in `vkCreateComputePipelines` on a shader whose buffer is in set
//! 47 of a one-set layout (`fuzz/regressions/dispatch_lavapipe/shader-descriptor-set-beyond-layout.input`),
//! so a violation ends the context instead.
//!
//! A stage's module is a registered `VkShaderModule` or a `VkShaderModuleCreateInfo` chained in
//! the stage (reflected on the spot). Conservative where unsure: a module that cannot be
//! reflected, a stage without an execution model here, pipeline libraries
//! (`LIBRARY_BIT_KHR`, also in `VkPipelineCreateFlags2CreateInfo`) and pipelines that link or
//! describe libraries (`VkPipelineLibraryCreateInfoKHR`, `VkGraphicsPipelineLibraryCreateInfoEXT`)
//! are not checked; what the reflection could not classify is checked for presence and stage
//! only. Ray-tracing pipelines are not advertised.

use std::sync::Arc;

use venus_host::generated::calls;
use venus_protocol::commands::*;
use venus_protocol::structs::{Ext, PipelineShaderStageCreateInfo};
use venus_protocol::types::PipelineCreateFlags;
use venus_protocol::{handles, Chain, ChainNode, Handle, Id, Reply};
use venus_renderer::dispatch::DispatchError;

use crate::registry::State;
use crate::spirv::interface::{self, Interface, DT_INLINE_UNIFORM_BLOCK, DT_MUTABLE_EXT};
use crate::{Call, VulkanDispatch};

/// One binding of a descriptor set layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayoutBinding {
    pub binding: u32,
    /// `VkDescriptorType`.
    pub ty: i32,
    pub count: u32,
    /// `VkShaderStageFlags`.
    pub stages: u32,
}

/// A `VkDescriptorSetLayout`'s bindings (kept by pipeline layouts beyond the set layout's life).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetLayout {
    bindings: Vec<LayoutBinding>,
}

impl SetLayout {
    pub fn new(mut bindings: Vec<LayoutBinding>) -> Self {
        bindings.sort_by_key(|b| b.binding);
        SetLayout { bindings }
    }

    pub fn binding(&self, binding: u32) -> Option<&LayoutBinding> {
        self.bindings
            .binary_search_by_key(&binding, |b| b.binding)
            .ok()
            .and_then(|i| self.bindings.get(i))
    }
}

/// A pipeline layout's set layouts; `None` for a `VK_NULL_HANDLE` entry.
pub type PipelineLayout = [Option<Arc<SetLayout>>];

/// The links of a pNext chain.
fn links<'a>(chain: Chain<'a>) -> impl Iterator<Item = &'a Ext<'a>> {
    std::iter::successors(chain, |l| l.next())
}

/// Whether a pipeline with `flags` and `chain` is outside the check (see the module doc).
fn is_library_related(flags: PipelineCreateFlags, chain: Chain<'_>) -> bool {
    let library = PipelineCreateFlags::LIBRARY_BIT_KHR.0;
    flags.0 & library != 0
        || links(chain).any(|l| match l {
            Ext::PipelineCreateFlags2CreateInfo(f) => f.flags.0 & u64::from(library) != 0,
            Ext::PipelineLibraryCreateInfoKHR(_) | Ext::GraphicsPipelineLibraryCreateInfoEXT(_) => {
                true
            }
            _ => false,
        })
}

/// Checks one stage's entry point and resources against `layout`; `at` names the stage,
/// `info` the create-info struct (for the VUIDs).
pub fn check_stage(
    iface: &Interface,
    stage: &PipelineShaderStageCreateInfo<'_>,
    layout: &PipelineLayout,
    at: &str,
    info: &str,
) -> Result<(), String> {
    let bit = stage.stage.0 as u32;
    let (Some(model), Some(name)) = (interface::model_of_stage(bit), stage.p_name) else {
        return Ok(());
    };
    let name_text = String::from_utf8_lossy(name.to_bytes());
    let Some(entry) = iface.entry_point(model, name.to_bytes()) else {
        return Err(format!(
            "{at}.pName: the module has no {} entry point \"{name_text}\" \
             (VUID-VkPipelineShaderStageCreateInfo-pName-00707)",
            interface::model_name(model)
        ));
    };
    for r in &entry.resources {
        let kind = r.kind.map_or("resource", |k| k.name());
        let what = format!(
            "{at}: entry point \"{name_text}\" uses set {} binding {} ({kind})",
            r.set, r.binding
        );
        let set = match layout.get(r.set as usize) {
            Some(Some(set)) => set,
            Some(None) => {
                return Err(format!(
                    "{what}, but set {} of the pipeline layout is VK_NULL_HANDLE \
                     (VUID-{info}-layout-07988)",
                    r.set
                ))
            }
            None => {
                return Err(format!(
                    "{what}, but the pipeline layout has {} set layouts (VUID-{info}-layout-07988)",
                    layout.len()
                ))
            }
        };
        let Some(b) = set.binding(r.binding) else {
            return Err(format!(
                "{what}, but set layout {} has no binding {} (VUID-{info}-layout-07988)",
                r.set, r.binding
            ));
        };
        if b.stages & bit == 0 {
            return Err(format!(
                "{what}, but the binding's stageFlags {:#x} lack stage {bit:#x} \
                 (VUID-{info}-layout-07988)",
                b.stages
            ));
        }
        if let Some(k) = r.kind {
            if b.ty != DT_MUTABLE_EXT && !k.accepts(b.ty) {
                return Err(format!(
                    "{what}, but the binding has VkDescriptorType {} (VUID-{info}-layout-07990)",
                    b.ty
                ));
            }
        }
        if let Some(n) = r.count {
            if b.ty != DT_INLINE_UNIFORM_BLOCK && b.count < n {
                return Err(format!(
                    "{what} with {n} descriptors, but the binding's descriptorCount is {} \
                     (VUID-{info}-layout-07991)",
                    b.count
                ));
            }
        }
    }
    Ok(())
}

impl VulkanDispatch {
    /// The interface of a stage's module: the registered module's, or the chained
    /// `VkShaderModuleCreateInfo` reflected now; `None` when there is nothing to check against.
    fn stage_interface(&self, stage: &PipelineShaderStageCreateInfo<'_>) -> Option<Arc<Interface>> {
        if stage.module.raw() != 0 {
            let module = self
                .registry
                .get_typed(handles::ShaderModule::OBJECT_TYPE, stage.module.raw())
                .ok()?;
            return match &module.state {
                State::ShaderModule(iface) => iface.clone(),
                _ => None,
            };
        }
        links(stage.p_next).find_map(|l| match l {
            Ext::ShaderModuleCreateInfo(m) => interface::reflect(m.p_code).ok().map(Arc::new),
            _ => None,
        })
    }

    /// The bindings of descriptor set layout `id`, if recorded.
    pub(crate) fn set_layout(
        &self,
        id: Id<handles::DescriptorSetLayout>,
    ) -> Option<Arc<SetLayout>> {
        let obj = self
            .registry
            .get_typed(handles::DescriptorSetLayout::OBJECT_TYPE, id.raw())
            .ok()?;
        match &obj.state {
            State::DescriptorSetLayout(set) => Some(Arc::clone(set)),
            _ => None,
        }
    }

    /// The set layouts of pipeline layout `layout`, if recorded.
    pub(crate) fn pipeline_layout(
        &self,
        layout: Id<handles::PipelineLayout>,
    ) -> Option<Arc<PipelineLayout>> {
        let obj = self
            .registry
            .get_typed(handles::PipelineLayout::OBJECT_TYPE, layout.raw())
            .ok()?;
        match &obj.state {
            State::PipelineLayout(sets) => Some(Arc::clone(sets)),
            _ => None,
        }
    }

    /// The check of one pipeline's stages (see the module doc).
    fn check_pipeline(
        &self,
        stages: &[PipelineShaderStageCreateInfo<'_>],
        flags: PipelineCreateFlags,
        chain: Chain<'_>,
        layout: Id<handles::PipelineLayout>,
        at: &str,
        info: &str,
    ) -> Result<(), String> {
        if is_library_related(flags, chain) {
            return Ok(());
        }
        let Some(sets) = self.pipeline_layout(layout) else {
            return Ok(());
        };
        for (i, stage) in stages.iter().enumerate() {
            if let Some(iface) = self.stage_interface(stage) {
                let at = if info == "VkComputePipelineCreateInfo" {
                    format!("{at}.stage")
                } else {
                    format!("{at}.pStages[{i}]")
                };
                check_stage(&iface, stage, &sets, &at, info)?;
            }
        }
        Ok(())
    }

    pub(crate) fn create_descriptor_set_layout(
        &self,
        call: &mut Call<'_, '_>,
        a: &CreateDescriptorSetLayoutArgs<'_>,
    ) -> Result<(), DispatchError> {
        let bindings = a.p_create_info.p_bindings.iter().map(|b| LayoutBinding {
            binding: b.binding,
            ty: b.descriptor_type.0,
            count: b.descriptor_count,
            stages: b.stage_flags.0,
        });
        let state = State::DescriptorSetLayout(Arc::new(SetLayout::new(bindings.collect())));
        let device = self.device(call, a.device.raw())?;
        let reply = self.create_with_state(call, &device, state, |p, lcx| {
            // SAFETY: forwarded: the handle map is the registry, the procs the device's.
            unsafe { calls::create_descriptor_set_layout(p, lcx, a) }
        })?;
        call.cx.reply(&Reply::CreateDescriptorSetLayout(reply))
    }

    /// The state of a new pipeline layout: its set layouts' bindings, or `Plain` when a
    /// non-NULL entry has none recorded (not checked then).
    fn pipeline_layout_state(&self, set_layouts: &[Id<handles::DescriptorSetLayout>]) -> State {
        let mut sets = Vec::with_capacity(set_layouts.len());
        for id in set_layouts {
            if id.raw() == 0 {
                sets.push(None);
                continue;
            }
            match self.set_layout(*id) {
                Some(set) => sets.push(Some(set)),
                None => return State::Plain,
            }
        }
        State::PipelineLayout(sets.into())
    }

    pub(crate) fn create_pipeline_layout(
        &self,
        call: &mut Call<'_, '_>,
        a: &CreatePipelineLayoutArgs<'_>,
    ) -> Result<(), DispatchError> {
        let state = self.pipeline_layout_state(a.p_create_info.p_set_layouts);
        let device = self.device(call, a.device.raw())?;
        let reply = self.create_with_state(call, &device, state, |p, lcx| {
            // SAFETY: forwarded: the handle map is the registry, the procs the device's.
            unsafe { calls::create_pipeline_layout(p, lcx, a) }
        })?;
        call.cx.reply(&Reply::CreatePipelineLayout(reply))
    }

    pub(crate) fn create_shader_module(
        &self,
        call: &mut Call<'_, '_>,
        a: &CreateShaderModuleArgs<'_>,
    ) -> Result<(), DispatchError> {
        let iface = match interface::reflect(a.p_create_info.p_code) {
            Ok(i) => Some(Arc::new(i)),
            Err(e) => {
                tracing::debug!("vkCreateShaderModule: not reflected ({e}): not checked");
                None
            }
        };
        let device = self.device(call, a.device.raw())?;
        let state = State::ShaderModule(iface);
        let reply = self.create_with_state(call, &device, state, |p, lcx| {
            // SAFETY: forwarded: the handle map is the registry, the procs the device's.
            unsafe { calls::create_shader_module(p, lcx, a) }
        })?;
        call.cx.reply(&Reply::CreateShaderModule(reply))
    }

    /// `vkCreateComputePipelines`: each stage against its layout (see the module doc).
    pub(crate) fn create_compute_pipelines(
        &self,
        call: &mut Call<'_, '_>,
        a: &CreateComputePipelinesArgs<'_>,
    ) -> Result<(), DispatchError> {
        for (i, info) in a.p_create_infos.iter().enumerate() {
            let at = format!("pCreateInfos[{i}]");
            let stages = std::slice::from_ref(&info.stage);
            self.check_pipeline(
                stages,
                info.flags,
                info.p_next,
                info.layout,
                &at,
                "VkComputePipelineCreateInfo",
            )
            .map_err(|e| call.invalid(e))?;
        }
        let device = self.device(call, a.device.raw())?;
        let reply = self.create_with_state(call, &device, State::Plain, |p, lcx| {
            // SAFETY: forwarded: the handle map is the registry, the procs the device's.
            unsafe { calls::create_compute_pipelines(p, lcx, a) }
        })?;
        call.cx.reply(&Reply::CreateComputePipelines(reply))
    }

    /// `vkCreateGraphicsPipelines`: each stage against its layout (see the module doc).
    pub(crate) fn create_graphics_pipelines(
        &self,
        call: &mut Call<'_, '_>,
        a: &CreateGraphicsPipelinesArgs<'_>,
    ) -> Result<(), DispatchError> {
        for (i, info) in a.p_create_infos.iter().enumerate() {
            let at = format!("pCreateInfos[{i}]");
            self.check_pipeline(
                info.p_stages,
                info.flags,
                info.p_next,
                info.layout,
                &at,
                "VkGraphicsPipelineCreateInfo",
            )
            .map_err(|e| call.invalid(e))?;
        }
        let device = self.device(call, a.device.raw())?;
        let reply = self.create_with_state(call, &device, State::Plain, |p, lcx| {
            // SAFETY: forwarded: the handle map is the registry, the procs the device's.
            unsafe { calls::create_graphics_pipelines(p, lcx, a) }
        })?;
        call.cx.reply(&Reply::CreateGraphicsPipelines(reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spirv::testdata::{testapp_shader, words};
    use venus_protocol::types::ShaderStageFlagBits;
    use venus_protocol::Str;

    const COMPUTE: u32 = 0x20;
    const FRAGMENT: u32 = 0x10;
    const STORAGE_BUFFER: i32 = 7;
    const COMBINED_IMAGE_SAMPLER: i32 = 1;

    fn saxpy() -> Interface {
        let code = testapp_shader!("saxpy.comp.spv");
        interface::reflect(&code).unwrap()
    }

    fn stage(bit: u32, name: &'static [u8]) -> PipelineShaderStageCreateInfo<'static> {
        PipelineShaderStageCreateInfo {
            stage: ShaderStageFlagBits(bit as i32),
            p_name: Str::from_bytes_with_nul(name),
            ..Default::default()
        }
    }

    fn binding(binding: u32, ty: i32, count: u32, stages: u32) -> LayoutBinding {
        LayoutBinding {
            binding,
            ty,
            count,
            stages,
        }
    }

    fn layout(sets: Vec<Option<Vec<LayoutBinding>>>) -> Vec<Option<Arc<SetLayout>>> {
        sets.into_iter()
            .map(|s| s.map(|b| Arc::new(SetLayout::new(b))))
            .collect()
    }

    fn check(
        iface: &Interface,
        st: &PipelineShaderStageCreateInfo<'_>,
        l: &PipelineLayout,
    ) -> Result<(), String> {
        check_stage(
            iface,
            st,
            l,
            "pCreateInfos[0].stage",
            "VkComputePipelineCreateInfo",
        )
    }

    #[test]
    fn saxpy_is_accepted_by_its_layout_and_compatible_ones() {
        let iface = saxpy();
        let main = stage(COMPUTE, b"main\0");
        let exact = layout(vec![Some(vec![
            binding(1, STORAGE_BUFFER, 1, COMPUTE),
            binding(0, STORAGE_BUFFER, 1, COMPUTE),
        ])]);
        check(&iface, &main, &exact).unwrap();
        // Dynamic storage buffers, mutable descriptors, larger counts, more stages, more sets
        // and bindings: all compatible.
        let wider = layout(vec![
            Some(vec![
                binding(0, 9, 4, 0x7fff_ffff),
                binding(1, DT_MUTABLE_EXT, 1, COMPUTE | FRAGMENT),
                binding(5, 6, 1, FRAGMENT),
            ]),
            None,
        ]);
        check(&iface, &main, &wider).unwrap();
    }

    #[test]
    fn each_violation_names_its_vuid_set_and_binding() {
        let iface = saxpy();
        let main = stage(COMPUTE, b"main\0");
        let ok = |b0: LayoutBinding| {
            layout(vec![Some(vec![b0, binding(1, STORAGE_BUFFER, 1, COMPUTE)])])
        };
        let cases: Vec<(Vec<Option<Arc<SetLayout>>>, &str)> = vec![
            (
                layout(vec![]),
                "pCreateInfos[0].stage: entry point \"main\" uses set 0 binding 0 (storage buffer), \
                 but the pipeline layout has 0 set layouts (VUID-VkComputePipelineCreateInfo-layout-07988)",
            ),
            (layout(vec![None]), "set 0 of the pipeline layout is VK_NULL_HANDLE"),
            (
                layout(vec![Some(vec![binding(1, STORAGE_BUFFER, 1, COMPUTE)])]),
                "binding 0 (storage buffer), but set layout 0 has no binding 0 (VUID-VkComputePipelineCreateInfo-layout-07988)",
            ),
            (
                ok(binding(0, STORAGE_BUFFER, 1, FRAGMENT)),
                "stageFlags 0x10 lack stage 0x20 (VUID-VkComputePipelineCreateInfo-layout-07988)",
            ),
            (
                ok(binding(0, 6, 1, COMPUTE)),
                "binding 0 (storage buffer), but the binding has VkDescriptorType 6 (VUID-VkComputePipelineCreateInfo-layout-07990)",
            ),
            (
                ok(binding(0, STORAGE_BUFFER, 0, COMPUTE)),
                "with 1 descriptors, but the binding's descriptorCount is 0 (VUID-VkComputePipelineCreateInfo-layout-07991)",
            ),
        ];
        for (l, want) in cases {
            let err = check(&iface, &main, &l).unwrap_err();
            assert!(err.contains(want), "{err}\nwants: {want}");
        }
    }

    #[test]
    fn entry_points_are_matched_by_name_and_stage() {
        let iface = saxpy();
        let l = layout(vec![Some(vec![
            binding(0, STORAGE_BUFFER, 1, COMPUTE),
            binding(1, STORAGE_BUFFER, 1, COMPUTE),
        ])]);
        let err = check(&iface, &stage(COMPUTE, b"mian\0"), &l).unwrap_err();
        assert_eq!(
            err,
            "pCreateInfos[0].stage.pName: the module has no GLCompute entry point \"mian\" \
             (VUID-VkPipelineShaderStageCreateInfo-pName-00707)"
        );
        let err = check(&iface, &stage(FRAGMENT, b"main\0"), &l).unwrap_err();
        assert!(err.contains("no Fragment entry point \"main\""), "{err}");
        // A stage without an execution model here (ray generation) is not checked.
        check(&iface, &stage(0x100, b"nothing\0"), &l).unwrap();
    }

    #[test]
    fn counts_types_of_images_and_inline_uniform_blocks() {
        let code = words(include_bytes!("spirv/testdata/interface.spv"));
        let iface = interface::reflect(&code).unwrap();
        let main = stage(COMPUTE, b"main\0");
        let c = COMPUTE;
        let full = |samplers: u32| {
            layout(vec![
                Some(vec![
                    binding(0, DT_INLINE_UNIFORM_BLOCK, 16, c), // count = bytes: not compared
                    binding(1, STORAGE_BUFFER, 1, c),
                ]),
                Some(vec![binding(0, 3, 1, c)]),
                Some(vec![
                    binding(0, COMBINED_IMAGE_SAMPLER, samplers, c), // samplers: combined is fine
                    binding(1, 2, 1, c),                             // runtime array: any count
                    binding(2, COMBINED_IMAGE_SAMPLER, 1, c),        // spec-constant length
                ]),
                Some(vec![binding(0, 4, 1, c), binding(1, 5, 1, c)]),
            ])
        };
        check(&iface, &main, &full(4)).unwrap();
        let err = check(&iface, &main, &full(3)).unwrap_err();
        assert!(
            err.contains("set 2 binding 0 (sampler) with 4 descriptors, but the binding's descriptorCount is 3"),
            "{err}"
        );
        let other = stage(COMPUTE, b"other\0");
        check(&iface, &other, &full(0)).unwrap();
    }

    #[test]
    fn libraries_are_not_checked() {
        assert!(is_library_related(
            PipelineCreateFlags::LIBRARY_BIT_KHR,
            None
        ));
        assert!(!is_library_related(PipelineCreateFlags(0), None));
        let flags2 = Ext::PipelineCreateFlags2CreateInfo(
            venus_protocol::structs::PipelineCreateFlags2CreateInfo {
                p_next: None,
                flags: venus_protocol::types::PipelineCreateFlags2(0x800),
            },
        );
        assert!(is_library_related(PipelineCreateFlags(0), Some(&flags2)));
    }
}
