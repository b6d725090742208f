//! The one typed table of protocol facts that the XML does not carry.
//!
//! Upstream venus-protocol keeps these in its Python generator; we keep them here, each with
//! the reason it exists (see `docs/spec/venus-wire-format.md` §7, §10, §11, §13). The model
//! builder reads this table and nothing else for per-command or per-struct quirks.

/// A struct missing from the vendored VK_MESA_venus_protocol.xml (spec 1 content) that protocol
/// level git-ca1e9220 (spec 2) has.
pub struct ExtraStruct {
    pub name: &'static str,
    pub extends: &'static str,
    /// Structure type enumerant and its extension offset (value = 1000000000 + (ext-1)*1000 + off).
    pub s_type: &'static str,
    pub s_type_offset: i64,
    pub members: &'static [(&'static str, &'static str)],
    pub why: &'static str,
}

pub const EXTRA_STRUCTS: &[ExtraStruct] = &[ExtraStruct {
    name: "VkRingPriorityInfoMESA",
    extends: "VkRingCreateInfoMESA",
    s_type: "VK_STRUCTURE_TYPE_RING_PRIORITY_INFO_MESA",
    s_type_offset: 7,
    members: &[("int32_t", "priority")],
    why: "VK_MESA_venus_protocol spec 2 (git-ca1e9220) added it; the vendored XML is the spec-1 \
          revision 36572e74 (see protocol/xml/README.md). Mesa 25.0.7 chains it into per-thread \
          ring creation when the capset reports spec >= 2.",
}];

/// The tag a union is encoded with when no `selector` chooses one (the guest always uses it).
pub struct DefaultUnionTag {
    pub union: &'static str,
    pub tag: u32,
    pub why: &'static str,
}

pub const DEFAULT_UNION_TAGS: &[DefaultUnionTag] = &[
    DefaultUnionTag {
        union: "VkClearColorValue",
        tag: 2,
        why: "the uint32 view carries float and integer colors bit-exact",
    },
    DefaultUnionTag {
        union: "VkClearValue",
        tag: 0,
        why: "color; its VkClearColorValue then uses its own default tag",
    },
    DefaultUnionTag {
        union: "VkDeviceOrHostAddressKHR",
        tag: 0,
        why: "the device address; a host address cannot travel (NULL_ONLY_MEMBERS)",
    },
    DefaultUnionTag {
        union: "VkDeviceOrHostAddressConstKHR",
        tag: 0,
        why: "the device address; a host address cannot travel (NULL_ONLY_MEMBERS)",
    },
    DefaultUnionTag {
        union: "VkResourceDescriptorDataEXT",
        tag: 0,
        why: "pImage; the guest sends the member its `type` selects",
    },
    DefaultUnionTag {
        union: "VkDescriptorMappingSourceDataEXT",
        tag: 0,
        why: "the first source; the guest sends the member its `source` selects",
    },
    DefaultUnionTag {
        union: "VkAccelerationStructureGeometryDataKHR",
        tag: 0,
        why: "triangles; the guest sends the member its `geometryType` selects",
    },
];

/// The condition under which the guest sends an array as empty whatever the pointer holds.
pub enum IgnoreWhen {
    /// Sent only when `member == value` (an enum compared by its numeric value).
    MemberNotEqual {
        member: &'static str,
        value: &'static str,
    },
    /// Sent only when `flag` is clear in `member`.
    FlagSet {
        member: &'static str,
        flag: &'static str,
    },
}

pub struct IgnorableArray {
    pub structure: &'static str,
    pub member: &'static str,
    pub when: IgnoreWhen,
}

pub const IGNORABLE_ARRAYS: &[IgnorableArray] = &[
    IgnorableArray {
        structure: "VkBufferCreateInfo",
        member: "pQueueFamilyIndices",
        when: IgnoreWhen::MemberNotEqual {
            member: "sharingMode",
            value: "VK_SHARING_MODE_CONCURRENT",
        },
    },
    IgnorableArray {
        structure: "VkImageCreateInfo",
        member: "pQueueFamilyIndices",
        when: IgnoreWhen::MemberNotEqual {
            member: "sharingMode",
            value: "VK_SHARING_MODE_CONCURRENT",
        },
    },
    IgnorableArray {
        structure: "VkPhysicalDeviceImageDrmFormatModifierInfoEXT",
        member: "pQueueFamilyIndices",
        when: IgnoreWhen::MemberNotEqual {
            member: "sharingMode",
            value: "VK_SHARING_MODE_CONCURRENT",
        },
    },
    IgnorableArray {
        structure: "VkFramebufferCreateInfo",
        member: "pAttachments",
        when: IgnoreWhen::FlagSet {
            member: "flags",
            flag: "VK_FRAMEBUFFER_CREATE_IMAGELESS_BIT",
        },
    },
];

/// A handle member or parameter that may be `VK_NULL_HANDLE` although vk.xml does not mark it
/// `optional` (its NULL rules are prose: valid usage lets it be NULL in some cases). Every other
/// non-optional handle is lowered with a NULL check that fails the command (a NULL handle where
/// the driver expects an object crashes it: `bind-buffer-memory2-null-memory`). The model
/// refuses a row that names a handle vk.xml already marks optional, and a non-optional
/// `noautovalidity` handle without a row.
pub struct NullableHandle {
    /// Struct or command.
    pub owner: &'static str,
    pub member: &'static str,
    pub why: &'static str,
}

pub const NULLABLE_HANDLES: &[NullableHandle] = &[
    NullableHandle {
        owner: "VkDescriptorImageInfo",
        member: "sampler",
        why: "ignored unless the descriptor type uses a sampler that is not immutable \
              (noautovalidity; Mesa sends NULL for image-only descriptors)",
    },
    NullableHandle {
        owner: "VkDescriptorImageInfo",
        member: "imageView",
        why: "ignored for sampler-only descriptors; NULL with the nullDescriptor feature \
              (noautovalidity)",
    },
    NullableHandle {
        owner: "VkWriteDescriptorSet",
        member: "dstSet",
        why: "ignored by vkCmdPushDescriptorSet (noautovalidity)",
    },
    NullableHandle {
        owner: "VkBindImageMemoryInfo",
        member: "memory",
        why: "NULL when a VkBindImageMemorySwapchainInfoKHR is chained (noautovalidity)",
    },
    NullableHandle {
        owner: "VkDescriptorUpdateTemplateCreateInfo",
        member: "descriptorSetLayout",
        why: "ignored unless templateType is DESCRIPTOR_SET (noautovalidity)",
    },
    NullableHandle {
        owner: "VkDescriptorUpdateTemplateCreateInfo",
        member: "pipelineLayout",
        why: "ignored unless templateType is PUSH_DESCRIPTORS (noautovalidity)",
    },
];

/// Commands that have an id at this protocol level but no wire encoding: a parameter cannot be
/// serialized. The model builder detects these from the XML and checks the result against this
/// list, so a registry change cannot silently add or drop one.
pub struct NoEncoding {
    pub command: &'static str,
    pub why: &'static str,
}

pub const NO_ENCODING: &[NoEncoding] = &[
    NoEncoding {
        command: "vkGetInstanceProcAddr",
        why: "returns a function pointer",
    },
    NoEncoding {
        command: "vkGetDeviceProcAddr",
        why: "returns a function pointer",
    },
    NoEncoding {
        command: "vkMapMemory",
        why: "ppData is a host pointer (the guest maps blobs itself)",
    },
    NoEncoding {
        command: "vkUpdateDescriptorSetWithTemplate",
        why: "pData has no length",
    },
    NoEncoding {
        command: "vkCmdPushDescriptorSetWithTemplate",
        why: "pData has no length",
    },
    NoEncoding {
        command: "vkCmdPushDescriptorSetWithTemplate2",
        why: "VkPushDescriptorSetWithTemplateInfo.pData has no length",
    },
    NoEncoding {
        command: "vkMapMemory2",
        why: "ppData is a host pointer (the guest maps blobs itself)",
    },
    NoEncoding {
        command: "vkCopyMemoryToImage",
        why: "VkMemoryToImageCopy.pHostPointer is a guest pointer (spec 3 vkCopyMemoryToImageMESA carries the bytes)",
    },
    NoEncoding {
        command: "vkCopyImageToMemory",
        why: "VkImageToMemoryCopy.pHostPointer is a guest pointer (spec 3 vkCopyImageToMemoryMESA carries the bytes)",
    },
    NoEncoding {
        command: "vkBuildAccelerationStructuresKHR",
        why: "ppBuildRangeInfos is a pointer to pointers (host builds; upstream has no decoder either)",
    },
    NoEncoding {
        command: "vkCmdBuildAccelerationStructuresKHR",
        why: "VkAccelerationStructureBuildGeometryInfoKHR.ppGeometries is a pointer to pointers \
              (upstream special-cases it; VK_KHR_acceleration_structure is not advertised)",
    },
    NoEncoding {
        command: "vkCmdBuildAccelerationStructuresIndirectKHR",
        why: "ppMaxPrimitiveCounts and ppGeometries are pointers to pointers \
              (VK_KHR_acceleration_structure is not advertised)",
    },
    NoEncoding {
        command: "vkGetAccelerationStructureBuildSizesKHR",
        why: "VkAccelerationStructureBuildGeometryInfoKHR.ppGeometries is a pointer to pointers \
              (VK_KHR_acceleration_structure is not advertised)",
    },
    NoEncoding {
        command: "vkWriteSamplerDescriptorsEXT",
        why: "writes to guest host addresses (upstream COMMAND_BLOCK_LIST; spec 4 \
              vkWriteSamplerDescriptorMESA replaces it)",
    },
    NoEncoding {
        command: "vkWriteResourceDescriptorsEXT",
        why: "writes to guest host addresses (upstream COMMAND_BLOCK_LIST; spec 4 \
              vkWriteResourceDescriptorMESA replaces it)",
    },
    NoEncoding {
        command: "vkCmdPushDataEXT",
        why: "VkHostAddressRangeConstEXT names its length after the data \
              (VK_EXT_descriptor_heap is not advertised)",
    },
    NoEncoding {
        command: "vkGetImageOpaqueCaptureDataEXT",
        why: "pDatas are guest host address ranges (VK_EXT_descriptor_heap is not advertised)",
    },
    NoEncoding {
        command: "vkCreateRayTracingPipelinesKHR",
        why: "VkRayTracingShaderGroupCreateInfoKHR.pShaderGroupCaptureReplayHandle has no length \
              (VK_KHR_ray_tracing_pipeline is not advertised)",
    },
    NoEncoding {
        command: "vkGetMemoryFdKHR",
        why: "returns an OS file descriptor",
    },
    NoEncoding {
        command: "vkGetMemoryFdPropertiesKHR",
        why: "takes an OS file descriptor",
    },
    NoEncoding {
        command: "vkImportFenceFdKHR",
        why: "takes an OS file descriptor",
    },
    NoEncoding {
        command: "vkGetFenceFdKHR",
        why: "returns an OS file descriptor",
    },
    NoEncoding {
        command: "vkImportSemaphoreFdKHR",
        why: "takes an OS file descriptor",
    },
    NoEncoding {
        command: "vkGetSemaphoreFdKHR",
        why: "returns an OS file descriptor",
    },
];

/// Union members that are host pointers: they travel as a NULL pointer only (an 8-byte zero;
/// anything else is a decode error), like `pAllocator`. The acceleration-structure address
/// unions carry a device address or a host address; a host address means nothing to the renderer
/// (upstream venus-protocol encodes it the same way). The model checks each row names a `void*`.
pub const NULL_ONLY_MEMBERS: &[(&str, &str)] = &[
    ("VkDeviceOrHostAddressKHR", "hostAddress"),
    ("VkDeviceOrHostAddressConstKHR", "hostAddress"),
];

/// Extensions of the protocol table that the host never advertises (not in the capset's
/// extension mask, not in `vkEnumerateDeviceExtensionProperties`), whatever the host driver
/// has: their commands have no encoding here, are rejected by the reference, or need the MESA
/// special commands (297/298, 335/336) that venus-rs does not implement. Their commands stay
/// refused (fatal) if a client sends them anyway: the policy derives a Refused class for every
/// command only these extensions provide (`policy::refuse_not_advertised`).
pub const NOT_ADVERTISED: &[(&str, &str)] = &[
    (
        "VK_EXT_descriptor_heap",
        "needs vkWrite*DescriptorMESA (335/336), not implemented; vkCmdPushDataEXT has no encoding",
    ),
    (
        "VK_EXT_host_image_copy",
        "needs vkCopy*MESA (297/298), not implemented; vkCopy{Memory,Image}To* have no encoding",
    ),
    (
        "VK_EXT_pipeline_library_group_handles",
        "ray tracing pipelines are not served",
    ),
    (
        "VK_KHR_acceleration_structure",
        "the build commands have no encoding (pointer-to-pointer geometries)",
    ),
    (
        "VK_KHR_deferred_host_operations",
        "its commands are rejected by the reference (299-303); only useful with acceleration structures",
    ),
    ("VK_KHR_ray_query", "requires VK_KHR_acceleration_structure"),
    (
        "VK_KHR_ray_tracing_maintenance1",
        "requires VK_KHR_acceleration_structure",
    ),
    (
        "VK_KHR_ray_tracing_pipeline",
        "vkCreateRayTracingPipelinesKHR has no encoding (capture-replay handle without length)",
    ),
    (
        "VK_KHR_ray_tracing_position_fetch",
        "requires VK_KHR_acceleration_structure",
    ),
];

/// Types that are never serialized even though the XML defines them.
pub const NEVER_SERIALIZED: &[&str] = &["VkBaseInStructure", "VkBaseOutStructure"];

/// Wire format version (upstream VN_WIRE_FORMAT_VERSION); bumped only for breaking changes.
pub const WIRE_FORMAT_VERSION: u32 = 1;

/// The highest command id known at protocol level git-70991d4c; anything above is unknown
/// (virglrenderer rejects `cmd_type >= 346` as fatal).
pub const MAX_COMMAND_ID: u32 = 345;

/// `VkCommandTypeEXT` names the vendored command-serialization XML defines above
/// [`MAX_COMMAND_ID`]: the file is the fork revision e2544a38, git-70991d4c plus one group
/// (see `protocol/xml/README.md`). The model drops exactly these and fails on any other name
/// beyond the level, so a different input cannot silently widen or narrow the table.
pub const BEYOND_LEVEL: &[&str] = &["vkCmdEndRendering2KHR", "vkCmdEndRendering2EXT"];

/// Major and minor of the vk.xml the protocol tables come from (`VK_HEADER_VERSION_COMPLETE`
/// is `VK_MAKE_API_VERSION(0, 1, 4, VK_HEADER_VERSION)` in vk.xml 1.4.343); the model fails
/// when the XML has a newer core feature.
pub const VK_XML_API: (u32, u32) = (1, 4);

/// Core versions the protocol serializes at this level. vk.xml 1.4 splits each core version
/// into internal `VK_{BASE,COMPUTE,GRAPHICS}_VERSION_1_x` features that the public
/// `VK_VERSION_1_x` depends on; all of them are in scope.
pub const CORE_VERSIONS: &[&str] = &[
    "VK_BASE_VERSION_1_0",
    "VK_COMPUTE_VERSION_1_0",
    "VK_GRAPHICS_VERSION_1_0",
    "VK_VERSION_1_0",
    "VK_BASE_VERSION_1_1",
    "VK_COMPUTE_VERSION_1_1",
    "VK_GRAPHICS_VERSION_1_1",
    "VK_VERSION_1_1",
    "VK_BASE_VERSION_1_2",
    "VK_COMPUTE_VERSION_1_2",
    "VK_GRAPHICS_VERSION_1_2",
    "VK_VERSION_1_2",
    "VK_BASE_VERSION_1_3",
    "VK_COMPUTE_VERSION_1_3",
    "VK_GRAPHICS_VERSION_1_3",
    "VK_VERSION_1_3",
    "VK_BASE_VERSION_1_4",
    "VK_COMPUTE_VERSION_1_4",
    "VK_GRAPHICS_VERSION_1_4",
    "VK_VERSION_1_4",
];

// ---------------------------------------------------------------- per-command policy

/// How the host runs a command. Commands without a row are `Generic`, except those the model
/// detects as destroying handles (vkDestroyX, vkFreeMemory, vkFreeCommandBuffers,
/// vkFreeDescriptorSets), which are `Destroy` unless a row overrides them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    /// The dispatch layer implements it (a trait method without default body forces a handler).
    Handwritten { why: &'static str },
    /// Never executed: the dispatch layer answers with an error.
    Refused { why: &'static str },
}

#[derive(Clone, Copy, Debug)]
pub struct PolicyRow {
    pub command: &'static str,
    pub policy: PolicyKind,
}

/// Which side of a device limit a value must stay on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// `value <= limit` (a first + count range inside a table of `limit` slots).
    AtMost,
    /// `value < limit` (an index into a table of `limit` slots).
    Below,
}

/// A size/stride/limit rule the host enforces before the driver sees a value. Each becomes
/// generated code: command rows in the executor (`calls.rs`), struct rows in the lowering
/// (`lower.rs`), so every caller of either gets them.
#[derive(Clone, Copy, Debug)]
pub enum Check {
    /// `array` travels packed: the driver gets `size_of(element)` as `param`, whatever the
    /// client sent (it would otherwise step through our packed copy with the client's stride).
    PackedStride {
        command: &'static str,
        param: &'static str,
        array: &'static str,
    },
    /// The driver writes up to `(count - 1) * stride + max_element` bytes into output `buffer`
    /// (whose byte size is parameter `size`): we give it a buffer of at least that many bytes
    /// (and pass that size), at most `limit` bytes, and copy back only what the client asked for.
    OutputExtent {
        command: &'static str,
        buffer: &'static str,
        size: &'static str,
        count: &'static str,
        stride: &'static str,
        max_element: u64,
        limit: u64,
        why: &'static str,
    },
    /// `first + count` (or `count` alone) must be <= `VkPhysicalDeviceLimits::limit`.
    DeviceLimit {
        command: &'static str,
        first: Option<&'static str>,
        count: &'static str,
        limit: &'static str,
    },
    /// Struct member `member` compared with `VkPhysicalDeviceLimits::limit` when lowered.
    MemberLimit {
        structure: &'static str,
        member: &'static str,
        bound: Bound,
        limit: &'static str,
    },
    /// Struct member `member` is a queue family index that may be `VK_QUEUE_FAMILY_FOREIGN_EXT`:
    /// its lowering goes through `LowerCx::queue_family`, which rewrites FOREIGN to
    /// `VK_QUEUE_FAMILY_IGNORED` where the host emulates `VK_EXT_queue_family_foreign`.
    QueueFamily {
        structure: &'static str,
        member: &'static str,
    },
    /// Array member `code` (SPIR-V words) must pass the host's SPIR-V validator
    /// (`LowerCx::set_spirv_check`) before the driver compiles it.
    SpirvModule {
        structure: &'static str,
        code: &'static str,
    },
    /// Struct member `member` (a byte size) must be a multiple of `factor`: the decoder
    /// decoded `member / factor` elements, the driver reads `member` bytes.
    MultipleOf {
        structure: &'static str,
        member: &'static str,
        factor: u64,
    },
    /// Every element of `array` must satisfy `element.offset + element.size <= total`.
    EntriesWithin {
        structure: &'static str,
        array: &'static str,
        offset: &'static str,
        size: &'static str,
        total: &'static str,
    },
    /// The driver reads `count` elements from the array that `selector` (an enum member)
    /// chooses; the others may travel empty. Each arm: the enumerants, then the array.
    SelectedArray {
        structure: &'static str,
        count: &'static str,
        selector: &'static str,
        arms: &'static [(&'static [&'static str], &'static str)],
    },
    /// When `selector == value`, the driver reads `count` bytes from `array` of the chained
    /// struct `link`, which must be present with at least that many.
    ChainedBytes {
        structure: &'static str,
        selector: &'static str,
        value: &'static str,
        count: &'static str,
        link: &'static str,
        array: &'static str,
    },
    /// Struct member `member` must not be 0: a dotted path through nested structs
    /// (`rect.extent`); when it ends at a struct, every member of that struct (an extent's
    /// width, height, depth). Zero sizes and counts are invalid usage the drivers do not
    /// survive (empty buffers, degenerate clear rects); `vuid` is the rule it enforces.
    NonZero {
        structure: &'static str,
        member: &'static str,
        vuid: &'static str,
    },
    /// Struct member `member` (a `Vk*FlagBits` enum) must be exactly one of its enum's
    /// single-bit values (a sample count: 0 or a mask of several bits reach the driver as
    /// nonsense); `vuid` is the rule it enforces.
    SingleBit {
        structure: &'static str,
        member: &'static str,
        vuid: &'static str,
    },
    /// An image create info's `extent` and `mipLevels` against its `imageType` and `flags`
    /// (cube compatible) and the device's `maxImageDimension1D/2D/3D/Cube`: height and depth 1
    /// for 1D, depth 1 for 2D, a cube's width == height, and `mipLevels <=
    /// floor(log2(max(w, h, d))) + 1` (`LowerCx::image_extent`, handwritten: the rule crosses
    /// members). An image lavapipe is asked to create outside them corrupts its heap.
    ImageExtent {
        structure: &'static str,
        vuid: &'static str,
    },
    /// Struct member `member` must be below `max`, a bound of the host's own (not a Vulkan
    /// limit): `why` says what a larger value costs the host.
    Below {
        structure: &'static str,
        member: &'static str,
        max: u64,
        why: &'static str,
    },
    /// A range rule against an object the host created (its size, levels, layers or query
    /// count, recorded at creation): `owner` is a command (`vk*`: the operands are its
    /// parameters) or a struct (`Vk*`: its members). Operands are paths: `a.b` through nested
    /// struct values, `x[]` each element of array `x` (every `[]` of one row walks the same
    /// index), `x[N]` element N of a fixed array. A CPU driver given a range outside its object
    /// reads or writes the server's memory.
    Range {
        owner: &'static str,
        rule: RangeRule,
        vuid: &'static str,
    },
}

/// How many bytes a [`RangeRule::Bytes`] covers (operands are paths, as in [`Check::Range`]).
#[derive(Clone, Copy, Debug)]
pub enum Size {
    /// This many bytes.
    Exact(&'static str),
    /// This many, or `VK_WHOLE_SIZE`.
    WholeOr(&'static str),
    /// A fixed number of bytes (an indirect command's struct, a count).
    Fixed(u64),
    /// `count` elements of `element` bytes, `stride` apart.
    Strided {
        count: &'static str,
        stride: &'static str,
        element: u64,
    },
}

/// What a [`Check::Range`] compares with the object it names (`venus_host::ranges`).
#[derive(Clone, Copy, Debug)]
pub enum RangeRule {
    /// `offset .. offset + size` inside `object` (a `VkBuffer`'s size or a `VkDeviceMemory`'s
    /// allocation size).
    Bytes {
        object: &'static str,
        offset: &'static str,
        size: Size,
    },
    /// A `VkImageSubresourceRange` inside `image`'s levels and layers.
    ImageRange {
        image: &'static str,
        range: &'static str,
    },
    /// A `VkImageSubresourceLayers` inside `image`, and `offset` (+ `extent`) inside that mip
    /// level (no extent: a corner, as a blit's offsets).
    ImageRegion {
        image: &'static str,
        layers: &'static str,
        offset: Option<&'static str>,
        extent: Option<&'static str>,
        /// The extent is in texels of this other image (a copy's source): scaled by the two
        /// formats' texel blocks.
        extent_in: Option<&'static str>,
    },
    /// The bytes of `buffer` a `VkBufferImageCopy(2)` `region` touches (rows, slices, layers of
    /// `image`'s texel blocks for the region's aspect) inside the buffer.
    BufferImage {
        buffer: &'static str,
        image: &'static str,
        region: &'static str,
    },
    /// Queries `first .. first + count` (no count: one query) inside `pool`.
    Queries {
        pool: &'static str,
        first: &'static str,
        count: Option<&'static str>,
    },
    /// Buffer or image `resource` bound at `offset` of `memory`: its host memory requirement
    /// fits inside the allocation.
    Bind {
        resource: &'static str,
        memory: &'static str,
        offset: &'static str,
    },
}

impl Check {
    /// The command or struct the rule belongs to.
    pub fn owner(&self) -> &'static str {
        match *self {
            Check::PackedStride { command, .. }
            | Check::OutputExtent { command, .. }
            | Check::DeviceLimit { command, .. } => command,
            Check::MemberLimit { structure, .. }
            | Check::MultipleOf { structure, .. }
            | Check::SpirvModule { structure, .. }
            | Check::QueueFamily { structure, .. }
            | Check::EntriesWithin { structure, .. }
            | Check::SelectedArray { structure, .. }
            | Check::ChainedBytes { structure, .. }
            | Check::NonZero { structure, .. }
            | Check::SingleBit { structure, .. }
            | Check::ImageExtent { structure, .. } => structure,
            Check::Range { owner, .. } => owner,
            Check::Below { structure, .. } => structure,
        }
    }
    /// Whether the rule runs in a command's executor (else in a struct's lowering).
    pub fn is_command(&self) -> bool {
        match self {
            Check::PackedStride { .. } | Check::OutputExtent { .. } | Check::DeviceLimit { .. } => {
                true
            }
            Check::Range { owner, .. } => owner.starts_with("vk"),
            _ => false,
        }
    }
    /// One line describing the rule (emitted into the policy table).
    pub fn describe(&self) -> String {
        match *self {
            Check::PackedStride { param, array, .. } => {
                format!("{param} := sizeof element of {array} (travels packed)")
            }
            Check::OutputExtent {
                buffer,
                count,
                stride,
                max_element,
                limit,
                ..
            } => format!(
                "{buffer} sized for ({count} - 1) * {stride} + {max_element} bytes, at most {limit}"
            ),
            Check::DeviceLimit {
                first,
                count,
                limit,
                ..
            } => match first {
                Some(f) => format!("{f} + {count} <= {limit}"),
                None => format!("{count} <= {limit}"),
            },
            Check::MemberLimit {
                structure,
                member,
                bound,
                limit,
            } => format!(
                "{structure}.{member} {} {limit}",
                if bound == Bound::Below { "<" } else { "<=" }
            ),
            Check::MultipleOf {
                structure,
                member,
                factor,
            } => format!("{structure}.{member} % {factor} == 0"),
            Check::SpirvModule { structure, code } => {
                format!("{structure}.{code}: a valid SPIR-V module")
            }
            Check::QueueFamily { structure, member } => {
                format!("{structure}.{member}: FOREIGN is IGNORED where emulated")
            }
            Check::EntriesWithin {
                structure,
                array,
                offset,
                size,
                total,
            } => format!("{structure}.{array}[i].{offset} + {size} <= {total}"),
            Check::SelectedArray {
                structure,
                count,
                selector,
                ..
            } => format!("{structure}: the array {selector} selects has {count} elements"),
            Check::ChainedBytes {
                structure,
                link,
                array,
                count,
                ..
            } => format!("{structure}: {link}.{array} has >= {count} bytes"),
            Check::NonZero {
                structure,
                member,
                vuid,
            } => format!("{structure}.{member} != 0 ({vuid})"),
            Check::SingleBit {
                structure,
                member,
                vuid,
            } => format!("{structure}.{member} is a single valid bit ({vuid})"),
            Check::ImageExtent { structure, vuid } => format!(
                "{structure}: extent within maxImageDimension<type>, mipLevels <= \
                 log2(max extent) + 1 ({vuid})"
            ),
            Check::Range { owner, rule, vuid } => format!("{owner}: {} ({vuid})", rule.describe()),
            Check::Below {
                structure,
                member,
                max,
                ..
            } => format!("{structure}.{member} < {max}"),
        }
    }
}

impl RangeRule {
    /// One line describing the rule.
    pub fn describe(&self) -> String {
        match *self {
            RangeRule::Bytes {
                object,
                offset,
                size,
            } => {
                let n = match size {
                    Size::Exact(x) => x.to_string(),
                    Size::WholeOr(x) => format!("{x} (or VK_WHOLE_SIZE)"),
                    Size::Fixed(n) => n.to_string(),
                    Size::Strided {
                        count,
                        stride,
                        element,
                    } => format!("({count} - 1) * {stride} + {element}"),
                };
                format!("{offset} + {n} inside {object}")
            }
            RangeRule::ImageRange { image, range } => format!("{range} inside {image}"),
            RangeRule::ImageRegion {
                image,
                layers,
                offset,
                extent,
                ..
            } => {
                let mut t = layers.to_string();
                if let Some(o) = offset {
                    t.push_str(&format!(", {o}"));
                }
                if let Some(e) = extent {
                    t.push_str(&format!(" + {e}"));
                }
                format!("{t} inside {image}")
            }
            RangeRule::Queries { pool, first, count } => {
                format!("{first} + {} inside {pool}", count.unwrap_or("1"))
            }
            RangeRule::BufferImage {
                buffer,
                image,
                region,
            } => format!("{region}: the bytes it copies of {image}'s texels inside {buffer}"),
            RangeRule::Bind {
                resource,
                memory,
                offset,
            } => format!("{resource}'s memory requirement at {offset} inside {memory}"),
        }
    }
}

/// Structs and commands the host emitter generates C bindings for although the protocol does
/// not serialize them (no codec; `vk.rs` structs with their sType, `DeviceProcs` entries).
pub struct HostOnly {
    pub extension: &'static str,
    pub structs: &'static [&'static str],
    pub commands: &'static [&'static str],
    pub why: &'static str,
}

/// Everything the host side takes from this module, so that tests can pass their own.
pub struct Tables {
    /// The struct whose members `DeviceLimit`/`MemberLimit` rows name (the host passes a
    /// `vk::PhysicalDeviceLimits` at run time).
    pub limits_struct: &'static str,
    pub policies: &'static [PolicyRow],
    pub checks: &'static [Check],
    pub host_only: &'static [HostOnly],
    /// Extensions of the protocol table the host never advertises, with the reason. Every
    /// executable command that only these extensions provide (no in-scope core version and no
    /// other protocol extension requires it or an alias) is refused with a derived reason.
    pub not_advertised: &'static [(&'static str, &'static str)],
    /// Feature bits the host never offers although a core struct carries them (features of a
    /// `not_advertised` extension promoted to core): always `VK_FALSE` in replies and at device
    /// creation (`HiddenFeature`).
    pub hidden_features: &'static [HiddenFeature],
}

/// A `VkBool32` feature member that is reported and enabled as `VK_FALSE` whatever the host
/// has, because what it unlocks is not served: `extension` (a `not_advertised` row) is the
/// extension the feature belongs to.
#[derive(Clone, Copy, Debug)]
pub struct HiddenFeature {
    pub structure: &'static str,
    pub member: &'static str,
    pub extension: &'static str,
}

/// Vulkan 1.4 made host image copy core (an optional feature): a client that saw
/// `hostImageCopy` would send `vkCopy*MESA` (297/298), which are refused.
pub const HIDDEN_FEATURES: &[HiddenFeature] = &[
    HiddenFeature {
        structure: "VkPhysicalDeviceVulkan14Features",
        member: "hostImageCopy",
        extension: "VK_EXT_host_image_copy",
    },
    HiddenFeature {
        structure: "VkPhysicalDeviceHostImageCopyFeatures",
        member: "hostImageCopy",
        extension: "VK_EXT_host_image_copy",
    },
];

/// The tables of the real protocol level.
pub const TABLES: Tables = Tables {
    limits_struct: "VkPhysicalDeviceLimits",
    policies: POLICIES,
    checks: CHECKS,
    host_only: HOST_ONLY,
    not_advertised: NOT_ADVERTISED,
    hidden_features: HIDDEN_FEATURES,
};

const fn hw(command: &'static str, why: &'static str) -> PolicyRow {
    PolicyRow {
        command,
        policy: PolicyKind::Handwritten { why },
    }
}

pub const POLICIES: &[PolicyRow] = &[
    hw(
        "vkEnumerateInstanceVersion",
        "the host's version capped at the protocol's",
    ),
    hw(
        "vkEnumerateInstanceExtensionProperties",
        "the private Venus instance extensions, host list filtered",
    ),
    hw(
        "vkCreateInstance",
        "the client's extension and layer lists are replaced by the host's choice",
    ),
    hw(
        "vkDestroyInstance",
        "forgets every object of the instance in the context's table",
    ),
    hw(
        "vkEnumeratePhysicalDevices",
        "the devices the server selected, stable guest ids",
    ),
    hw(
        "vkEnumeratePhysicalDeviceGroups",
        "groups restricted to the selected devices",
    ),
    hw(
        "vkEnumerateDeviceExtensionProperties",
        "host extensions intersected with the protocol table, spec versions capped",
    ),
    hw(
        "vkCreateDevice",
        "extensions the driver lacks dropped; loads the device proc table and limits",
    ),
    hw(
        "vkDestroyDevice",
        "forgets every object of the device in the context's table",
    ),
    hw(
        "vkGetDeviceQueue2",
        "queues get guest ids from the client and are registered in the table",
    ),
    hw(
        "vkAllocateMemory",
        "HOST_VISIBLE memory is shared memory imported as a host pointer (exportable as a blob)",
    ),
    hw(
        "vkAllocateCommandBuffers",
        "dispatchable children: the loader's dispatch pointer is set up per buffer",
    ),
    hw(
        "vkAllocateDescriptorSets",
        "sets are recorded with their pool so that pool resets forget them",
    ),
    hw(
        "vkResetDescriptorPool",
        "forgets every set allocated from the pool",
    ),
    hw(
        "vkQueueSubmit",
        "submission runs on the queue's worker, not the decoding thread",
    ),
    hw(
        "vkQueueSubmit2",
        "submission runs on the queue's worker, not the decoding thread",
    ),
    hw(
        "vkQueueBindSparse",
        "submission runs on the queue's worker, not the decoding thread",
    ),
    hw(
        "vkQueueWaitIdle",
        "blocking: bounded so that the ring stays responsive",
    ),
    hw(
        "vkDeviceWaitIdle",
        "blocking: bounded so that the ring stays responsive",
    ),
    hw(
        "vkWaitForFences",
        "blocking: the client's timeout is shortened and the wait retried",
    ),
    hw(
        "vkWaitSemaphores",
        "blocking: the client's timeout is shortened and the wait retried",
    ),
    hw(
        "vkCreateBuffer",
        "buffers declare HOST_ALLOCATION: HOST_VISIBLE memory is imported host memory",
    ),
    hw(
        "vkCreateImage",
        "images declare HOST_ALLOCATION where the driver supports it for their format",
    ),
    hw(
        "vkGetPhysicalDeviceExternalSemaphoreProperties",
        "an emulated VK_KHR_external_semaphore_fd answers SYNC_FD as importable",
    ),
    hw(
        "vkGetPhysicalDeviceFormatProperties2",
        "an emulated VK_EXT_image_drm_format_modifier lists DRM_FORMAT_MOD_LINEAR",
    ),
    hw(
        "vkGetPhysicalDeviceImageFormatProperties2",
        "emulated DRM-modifier tiling is asked as LINEAR; emulated external memory is answered",
    ),
    hw(
        "vkGetPhysicalDeviceExternalBufferProperties",
        "emulated dma-buf/opaque-fd memory is our shared memory, exportable and importable",
    ),
    hw(
        "vkGetImageDrmFormatModifierPropertiesEXT",
        "every image of an emulated VK_EXT_image_drm_format_modifier is LINEAR (modifier 0)",
    ),
    hw(
        "vkCreateRenderPass",
        "the attachment formats are kept for framebuffer compatibility",
    ),
    hw(
        "vkCreateRenderPass2",
        "the attachment formats are kept for framebuffer compatibility",
    ),
    hw(
        "vkCreateImageView",
        "the view's format is kept for framebuffer compatibility",
    ),
    hw(
        "vkCreateFramebuffer",
        "attachment count and formats checked against the render pass (per-object state)",
    ),
    hw(
        "vkCreateDescriptorSetLayout",
        "the bindings are kept for the shader interface check at pipeline creation",
    ),
    hw(
        "vkCreatePipelineLayout",
        "the set layouts' bindings are kept for the shader interface check",
    ),
    hw(
        "vkCreateShaderModule",
        "the module's resource interface is reflected once for the pipeline check",
    ),
    hw(
        "vkCreateComputePipelines",
        "the shader's entry point and resources checked against the layout (per-object state)",
    ),
    hw(
        "vkCreateGraphicsPipelines",
        "the shaders' entry points and resources checked against the layout (per-object state)",
    ),
    hw(
        "vkUpdateDescriptorSets",
        "writes and copies checked against their sets' layouts (per-object state)",
    ),
    hw(
        "vkCmdPushDescriptorSet",
        "writes checked against the pipeline layout's set (per-object state)",
    ),
    hw(
        "vkCmdPushDescriptorSet2",
        "writes checked against the pipeline layout's set (per-object state)",
    ),
    PolicyRow {
        command: "vkGetDeviceQueue",
        policy: PolicyKind::Refused {
            why: "queues are obtained with vkGetDeviceQueue2 only, contract §5.3",
        },
    },
];

/// Bytes one query may write: 13 pipeline-statistics counters (the most any query type
/// reports) plus availability/status, 8 bytes each.
pub const MAX_QUERY_RESULT_BYTES: u64 = 14 * 8;

const fn limit(
    command: &'static str,
    first: Option<&'static str>,
    count: &'static str,
    limit: &'static str,
) -> Check {
    Check::DeviceLimit {
        command,
        first,
        count,
        limit,
    }
}

const fn member_count(structure: &'static str, member: &'static str, limit: &'static str) -> Check {
    Check::MemberLimit {
        structure,
        member,
        bound: Bound::AtMost,
        limit,
    }
}

const fn member_limit(structure: &'static str, member: &'static str, limit: &'static str) -> Check {
    Check::MemberLimit {
        structure,
        member,
        bound: Bound::Below,
        limit,
    }
}

pub const CHECKS: &[Check] = &[
    Check::PackedStride {
        command: "vkCmdDrawMultiEXT",
        param: "stride",
        array: "pVertexInfo",
    },
    Check::PackedStride {
        command: "vkCmdDrawMultiIndexedEXT",
        param: "stride",
        array: "pIndexInfo",
    },
    Check::OutputExtent {
        command: "vkGetQueryPoolResults",
        buffer: "pData",
        size: "dataSize",
        count: "queryCount",
        stride: "stride",
        max_element: MAX_QUERY_RESULT_BYTES,
        limit: 64 << 20,
        why: "the driver writes each query at i * stride whatever dataSize says",
    },
    limit(
        "vkCmdPushConstants",
        Some("offset"),
        "size",
        "maxPushConstantsSize",
    ),
    limit(
        "vkCmdSetViewport",
        Some("firstViewport"),
        "viewportCount",
        "maxViewports",
    ),
    limit(
        "vkCmdSetScissor",
        Some("firstScissor"),
        "scissorCount",
        "maxViewports",
    ),
    limit(
        "vkCmdSetViewportWithCount",
        None,
        "viewportCount",
        "maxViewports",
    ),
    limit(
        "vkCmdSetScissorWithCount",
        None,
        "scissorCount",
        "maxViewports",
    ),
    limit(
        "vkCmdBindVertexBuffers",
        Some("firstBinding"),
        "bindingCount",
        "maxVertexInputBindings",
    ),
    limit(
        "vkCmdBindVertexBuffers2",
        Some("firstBinding"),
        "bindingCount",
        "maxVertexInputBindings",
    ),
    limit(
        "vkCmdBindDescriptorSets",
        Some("firstSet"),
        "descriptorSetCount",
        "maxBoundDescriptorSets",
    ),
    limit(
        "vkCmdSetColorWriteEnableEXT",
        None,
        "attachmentCount",
        "maxColorAttachments",
    ),
    limit(
        "vkCmdSetColorBlendEnableEXT",
        Some("firstAttachment"),
        "attachmentCount",
        "maxColorAttachments",
    ),
    limit(
        "vkCmdSetColorBlendEquationEXT",
        Some("firstAttachment"),
        "attachmentCount",
        "maxColorAttachments",
    ),
    limit(
        "vkCmdSetColorWriteMaskEXT",
        Some("firstAttachment"),
        "attachmentCount",
        "maxColorAttachments",
    ),
    member_limit(
        "VkVertexInputBindingDescription",
        "binding",
        "maxVertexInputBindings",
    ),
    member_limit(
        "VkVertexInputAttributeDescription",
        "location",
        "maxVertexInputAttributes",
    ),
    member_limit(
        "VkVertexInputAttributeDescription",
        "binding",
        "maxVertexInputBindings",
    ),
    member_limit(
        "VkVertexInputBindingDescription2EXT",
        "binding",
        "maxVertexInputBindings",
    ),
    member_limit(
        "VkVertexInputAttributeDescription2EXT",
        "location",
        "maxVertexInputAttributes",
    ),
    member_limit(
        "VkVertexInputAttributeDescription2EXT",
        "binding",
        "maxVertexInputBindings",
    ),
    member_count(
        "VkPipelineViewportStateCreateInfo",
        "viewportCount",
        "maxViewports",
    ),
    member_count(
        "VkPipelineViewportStateCreateInfo",
        "scissorCount",
        "maxViewports",
    ),
    member_count(
        "VkPipelineColorBlendStateCreateInfo",
        "attachmentCount",
        "maxColorAttachments",
    ),
    member_count(
        "VkSubpassDescription",
        "colorAttachmentCount",
        "maxColorAttachments",
    ),
    member_count(
        "VkSubpassDescription2",
        "colorAttachmentCount",
        "maxColorAttachments",
    ),
    member_count(
        "VkRenderingInfo",
        "colorAttachmentCount",
        "maxColorAttachments",
    ),
    member_count(
        "VkPipelineRenderingCreateInfo",
        "colorAttachmentCount",
        "maxColorAttachments",
    ),
    member_count(
        "VkCommandBufferInheritanceRenderingInfo",
        "colorAttachmentCount",
        "maxColorAttachments",
    ),
    Check::QueueFamily {
        structure: "VkBufferMemoryBarrier",
        member: "srcQueueFamilyIndex",
    },
    Check::QueueFamily {
        structure: "VkBufferMemoryBarrier",
        member: "dstQueueFamilyIndex",
    },
    Check::QueueFamily {
        structure: "VkImageMemoryBarrier",
        member: "srcQueueFamilyIndex",
    },
    Check::QueueFamily {
        structure: "VkImageMemoryBarrier",
        member: "dstQueueFamilyIndex",
    },
    Check::QueueFamily {
        structure: "VkBufferMemoryBarrier2",
        member: "srcQueueFamilyIndex",
    },
    Check::QueueFamily {
        structure: "VkBufferMemoryBarrier2",
        member: "dstQueueFamilyIndex",
    },
    Check::QueueFamily {
        structure: "VkImageMemoryBarrier2",
        member: "srcQueueFamilyIndex",
    },
    Check::QueueFamily {
        structure: "VkImageMemoryBarrier2",
        member: "dstQueueFamilyIndex",
    },
    Check::MultipleOf {
        structure: "VkShaderModuleCreateInfo",
        member: "codeSize",
        factor: 4,
    },
    // Drivers compile what they are given: malformed modules crashed lavapipe's SPIR-V
    // translator (fuzz/regressions/dispatch_lavapipe/malformed-spirv-*). VUID-VkShaderModuleCreateInfo-pCode-08737.
    Check::SpirvModule {
        structure: "VkShaderModuleCreateInfo",
        code: "pCode",
    },
    Check::EntriesWithin {
        structure: "VkSpecializationInfo",
        array: "pMapEntries",
        offset: "offset",
        size: "size",
        total: "dataSize",
    },
    Check::SelectedArray {
        structure: "VkWriteDescriptorSet",
        count: "descriptorCount",
        selector: "descriptorType",
        arms: &[
            (
                &[
                    "VK_DESCRIPTOR_TYPE_SAMPLER",
                    "VK_DESCRIPTOR_TYPE_COMBINED_IMAGE_SAMPLER",
                    "VK_DESCRIPTOR_TYPE_SAMPLED_IMAGE",
                    "VK_DESCRIPTOR_TYPE_STORAGE_IMAGE",
                    "VK_DESCRIPTOR_TYPE_INPUT_ATTACHMENT",
                ],
                "pImageInfo",
            ),
            (
                &[
                    "VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER",
                    "VK_DESCRIPTOR_TYPE_STORAGE_BUFFER",
                    "VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER_DYNAMIC",
                    "VK_DESCRIPTOR_TYPE_STORAGE_BUFFER_DYNAMIC",
                ],
                "pBufferInfo",
            ),
            (
                &[
                    "VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER",
                    "VK_DESCRIPTOR_TYPE_STORAGE_TEXEL_BUFFER",
                ],
                "pTexelBufferView",
            ),
        ],
    },
    Check::ChainedBytes {
        structure: "VkWriteDescriptorSet",
        selector: "descriptorType",
        value: "VK_DESCRIPTOR_TYPE_INLINE_UNIFORM_BLOCK",
        count: "descriptorCount",
        link: "VkWriteDescriptorSetInlineUniformBlock",
        array: "pData",
    },
    // Degenerate values host drivers are known not to survive (virglrs's list for MoltenVK:
    // degenerate `vkCmdClearAttachments` rects, `vkCreateBuffer` with size 0, an attachment-less
    // pass whose sample count comes from a pipeline's invalid `rasterizationSamples`), and the
    // zero extents/counts of the same family: invalid usage, so a valid client never sends them.
    // Vulkan 1.3.269 VUIDs.
    nonzero(
        "VkBufferCreateInfo",
        "size",
        "VUID-VkBufferCreateInfo-size-00912",
    ),
    nonzero(
        "VkClearRect",
        "rect.extent",
        "VUID-vkCmdClearAttachments-rect-02682, -02683",
    ),
    nonzero(
        "VkClearRect",
        "layerCount",
        "VUID-vkCmdClearAttachments-layerCount-01934",
    ),
    single_bit(
        "VkPipelineMultisampleStateCreateInfo",
        "rasterizationSamples",
        "VUID-VkPipelineMultisampleStateCreateInfo-rasterizationSamples-parameter",
    ),
    single_bit(
        "VkAttachmentDescription",
        "samples",
        "VUID-VkAttachmentDescription-samples-parameter",
    ),
    single_bit(
        "VkAttachmentDescription2",
        "samples",
        "VUID-VkAttachmentDescription2-samples-parameter",
    ),
    single_bit(
        "VkImageCreateInfo",
        "samples",
        "VUID-VkImageCreateInfo-samples-parameter",
    ),
    nonzero(
        "VkImageCreateInfo",
        "extent",
        "VUID-VkImageCreateInfo-extent-00944, -00945, -00946",
    ),
    Check::ImageExtent {
        structure: "VkImageCreateInfo",
        vuid: "VUID-VkImageCreateInfo-imageType-00956, -00957, -00954, -02251, extent-02252, \
               -02253, -02254, mipLevels-00958",
    },
    Check::MemberLimit {
        structure: "VkImageCreateInfo",
        member: "arrayLayers",
        bound: Bound::AtMost,
        limit: "maxImageArrayLayers",
    },
    nonzero(
        "VkImageCreateInfo",
        "mipLevels",
        "VUID-VkImageCreateInfo-mipLevels-00947",
    ),
    nonzero(
        "VkImageCreateInfo",
        "arrayLayers",
        "VUID-VkImageCreateInfo-arrayLayers-00948",
    ),
    nonzero(
        "VkFramebufferCreateInfo",
        "width",
        "VUID-VkFramebufferCreateInfo-width-00885",
    ),
    nonzero(
        "VkFramebufferCreateInfo",
        "height",
        "VUID-VkFramebufferCreateInfo-height-00887",
    ),
    nonzero(
        "VkFramebufferCreateInfo",
        "layers",
        "VUID-VkFramebufferCreateInfo-layers-00889",
    ),
    nonzero("VkBufferCopy", "size", "VUID-VkBufferCopy-size-01988"),
    nonzero("VkBufferCopy2", "size", "VUID-VkBufferCopy2-size-01988"),
    nonzero(
        "VkBufferImageCopy",
        "imageExtent",
        "VUID-VkBufferImageCopy-imageExtent-06659, -06660, -06661",
    ),
    nonzero(
        "VkBufferImageCopy2",
        "imageExtent",
        "VUID-VkBufferImageCopy2-imageExtent-06659, -06660, -06661",
    ),
    nonzero(
        "VkImageCopy",
        "extent",
        "VUID-VkImageCopy-extent-06668, -06669, -06670",
    ),
    nonzero(
        "VkImageCopy2",
        "extent",
        "VUID-VkImageCopy2-extent-06668, -06669, -06670",
    ),
    nonzero(
        "VkImageSubresourceLayers",
        "layerCount",
        "VUID-VkImageSubresourceLayers-layerCount-01700",
    ),
    nonzero(
        "VkImageSubresourceRange",
        "levelCount",
        "VUID-VkImageSubresourceRange-levelCount-01720",
    ),
    nonzero(
        "VkImageSubresourceRange",
        "layerCount",
        "VUID-VkImageSubresourceRange-layerCount-01721",
    ),

    // Drivers size a set layout's binding table by its highest binding number (lavapipe: a
    // binding of 4211081217 asked for gigabytes, fuzz regression
    // descriptor-binding-number-huge); Vulkan sets no limit, the host does.
    Check::Below {
        structure: "VkDescriptorSetLayoutBinding",
        member: "binding",
        max: 1 << 16,
        why: "drivers allocate a table indexed by binding number",
    },
    // Range rules against the objects the host created (`venus_host::ranges`): a CPU driver
    // given an offset, size, level, layer or query outside its object reads or writes the
    // server's memory. Buffers and memory:
    bytes("vkCmdCopyBuffer", "srcBuffer", "pRegions[].srcOffset", Size::Exact("pRegions[].size"), "VUID-vkCmdCopyBuffer-srcOffset-00113, -size-00115"),
    bytes("vkCmdCopyBuffer", "dstBuffer", "pRegions[].dstOffset", Size::Exact("pRegions[].size"), "VUID-vkCmdCopyBuffer-dstOffset-00114, -size-00116"),
    bytes("VkCopyBufferInfo2", "srcBuffer", "pRegions[].srcOffset", Size::Exact("pRegions[].size"), "VUID-VkCopyBufferInfo2-srcOffset-00113, -size-00115"),
    bytes("VkCopyBufferInfo2", "dstBuffer", "pRegions[].dstOffset", Size::Exact("pRegions[].size"), "VUID-VkCopyBufferInfo2-dstOffset-00114, -size-00116"),
    bytes("vkCmdFillBuffer", "dstBuffer", "dstOffset", Size::WholeOr("size"), "VUID-vkCmdFillBuffer-dstOffset-00024, -size-00027"),
    bytes("vkCmdUpdateBuffer", "dstBuffer", "dstOffset", Size::Exact("dataSize"), "VUID-vkCmdUpdateBuffer-dstOffset-00032, -dataSize-00033"),
    bytes("vkCmdDrawIndirect", "buffer", "offset", Size::Strided { count: "drawCount", stride: "stride", element: 16 }, "VUID-vkCmdDrawIndirect-drawCount-00487, -00488"),
    bytes("vkCmdDrawIndexedIndirect", "buffer", "offset", Size::Strided { count: "drawCount", stride: "stride", element: 20 }, "VUID-vkCmdDrawIndexedIndirect-drawCount-00539, -00540"),
    bytes("vkCmdDrawIndirectCount", "buffer", "offset", Size::Strided { count: "maxDrawCount", stride: "stride", element: 16 }, "VUID-vkCmdDrawIndirectCount-maxDrawCount-03111"),
    bytes("vkCmdDrawIndirectCount", "countBuffer", "countBufferOffset", Size::Fixed(4), "VUID-vkCmdDrawIndirectCount-countBufferOffset-04129"),
    bytes("vkCmdDrawIndexedIndirectCount", "buffer", "offset", Size::Strided { count: "maxDrawCount", stride: "stride", element: 20 }, "VUID-vkCmdDrawIndexedIndirectCount-maxDrawCount-03143"),
    bytes("vkCmdDrawIndexedIndirectCount", "countBuffer", "countBufferOffset", Size::Fixed(4), "VUID-vkCmdDrawIndexedIndirectCount-countBufferOffset-04129"),
    bytes("vkCmdDispatchIndirect", "buffer", "offset", Size::Fixed(12), "VUID-vkCmdDispatchIndirect-offset-00407"),
    bytes("vkCmdBindIndexBuffer", "buffer", "offset", Size::Fixed(1), "VUID-vkCmdBindIndexBuffer-offset-08782"),
    bytes("vkCmdBindIndexBuffer2", "buffer", "offset", Size::WholeOr("size"), "VUID-vkCmdBindIndexBuffer2-offset-08782, -size-08767"),
    bytes("vkCmdBindVertexBuffers", "pBuffers[]", "pOffsets[]", Size::Fixed(1), "VUID-vkCmdBindVertexBuffers-pOffsets-00626"),
    bytes("vkCmdBindVertexBuffers2", "pBuffers[]", "pOffsets[]", Size::Fixed(1), "VUID-vkCmdBindVertexBuffers2-pOffsets-03357"),
    bytes("vkCmdCopyQueryPoolResults", "dstBuffer", "dstOffset", Size::Strided { count: "queryCount", stride: "stride", element: 4 }, "VUID-vkCmdCopyQueryPoolResults-dstOffset-00819, -dstBuffer-00824"),
    bytes("VkBufferMemoryBarrier", "buffer", "offset", Size::WholeOr("size"), "VUID-VkBufferMemoryBarrier-offset-01187, -size-01189"),
    bytes("VkBufferMemoryBarrier2", "buffer", "offset", Size::WholeOr("size"), "VUID-VkBufferMemoryBarrier2-offset-01187, -size-01189"),
    bytes("VkDescriptorBufferInfo", "buffer", "offset", Size::WholeOr("range"), "VUID-VkDescriptorBufferInfo-offset-00340, -range-00342"),
    bytes("VkBufferViewCreateInfo", "buffer", "offset", Size::WholeOr("range"), "VUID-VkBufferViewCreateInfo-offset-00925, -range-00928"),
    bytes("VkMappedMemoryRange", "memory", "offset", Size::WholeOr("size"), "VUID-VkMappedMemoryRange-size-00685"),
    bind("vkBindBufferMemory", "buffer", "memory", "memoryOffset", "VUID-vkBindBufferMemory-size-01037"),
    bind("VkBindBufferMemoryInfo", "buffer", "memory", "memoryOffset", "VUID-VkBindBufferMemoryInfo-size-01037"),
    bind("vkBindImageMemory", "image", "memory", "memoryOffset", "VUID-vkBindImageMemory-size-01049"),
    bind("VkBindImageMemoryInfo", "image", "memory", "memoryOffset", "VUID-VkBindImageMemoryInfo-pNext-01617"),
    // Images: subresource ranges and copy regions.
    image_range("VkImageViewCreateInfo", "image", "subresourceRange", "VUID-VkImageViewCreateInfo-subresourceRange-01478, -01718, -01480, -01719"),
    image_range("VkImageMemoryBarrier", "image", "subresourceRange", "VUID-VkImageMemoryBarrier-subresourceRange-01486, -01724, -01488, -01725"),
    image_range("VkImageMemoryBarrier2", "image", "subresourceRange", "VUID-VkImageMemoryBarrier2-subresourceRange-01486, -01724, -01488, -01725"),
    image_range("vkCmdClearColorImage", "image", "pRanges[]", "VUID-vkCmdClearColorImage-baseMipLevel-01470, -pRanges-01692, -baseArrayLayer-01472, -pRanges-01693"),
    image_range("vkCmdClearDepthStencilImage", "image", "pRanges[]", "VUID-vkCmdClearDepthStencilImage-baseMipLevel-01474, -pRanges-01694, -baseArrayLayer-01476, -pRanges-01695"),
    region("vkCmdCopyImage", "srcImage", "pRegions[].srcSubresource", Some("pRegions[].srcOffset"), Some("pRegions[].extent"), "VUID-vkCmdCopyImage-srcSubresource-07967, -07968, -srcOffset-00144, -00145, -00147"),
    dst_region("vkCmdCopyImage", "dstImage", "pRegions[].dstSubresource", "pRegions[].dstOffset", "pRegions[].extent", "srcImage", "VUID-vkCmdCopyImage-dstSubresource-07967, -07968, -dstOffset-00150, -00151, -00153"),
    region("VkCopyImageInfo2", "srcImage", "pRegions[].srcSubresource", Some("pRegions[].srcOffset"), Some("pRegions[].extent"), "VUID-VkCopyImageInfo2-srcSubresource-07967, -07968, -srcOffset-00144, -00145, -00147"),
    dst_region("VkCopyImageInfo2", "dstImage", "pRegions[].dstSubresource", "pRegions[].dstOffset", "pRegions[].extent", "srcImage", "VUID-VkCopyImageInfo2-dstSubresource-07967, -07968, -dstOffset-00150, -00151, -00153"),
    region("vkCmdResolveImage", "srcImage", "pRegions[].srcSubresource", Some("pRegions[].srcOffset"), Some("pRegions[].extent"), "VUID-vkCmdResolveImage-srcSubresource-01709, -01711, -srcOffset-00269, -00270, -00272"),
    region("vkCmdResolveImage", "dstImage", "pRegions[].dstSubresource", Some("pRegions[].dstOffset"), Some("pRegions[].extent"), "VUID-vkCmdResolveImage-dstSubresource-01710, -01712, -dstOffset-00274, -00275, -00277"),
    region("VkResolveImageInfo2", "srcImage", "pRegions[].srcSubresource", Some("pRegions[].srcOffset"), Some("pRegions[].extent"), "VUID-VkResolveImageInfo2-srcSubresource-01709, -01711, -srcOffset-00269, -00270, -00272"),
    region("VkResolveImageInfo2", "dstImage", "pRegions[].dstSubresource", Some("pRegions[].dstOffset"), Some("pRegions[].extent"), "VUID-VkResolveImageInfo2-dstSubresource-01710, -01712, -dstOffset-00274, -00275, -00277"),
    region("vkCmdBlitImage", "srcImage", "pRegions[].srcSubresource", Some("pRegions[].srcOffsets[0]"), None, "VUID-vkCmdBlitImage-srcSubresource-01705, -01707, -srcOffset-00243, -00244, -00246"),
    region("vkCmdBlitImage", "srcImage", "pRegions[].srcSubresource", Some("pRegions[].srcOffsets[1]"), None, "VUID-vkCmdBlitImage-srcSubresource-01705, -01707, -srcOffset-00243, -00244, -00246"),
    region("vkCmdBlitImage", "dstImage", "pRegions[].dstSubresource", Some("pRegions[].dstOffsets[0]"), None, "VUID-vkCmdBlitImage-dstSubresource-01706, -01708, -dstOffset-00248, -00249, -00251"),
    region("vkCmdBlitImage", "dstImage", "pRegions[].dstSubresource", Some("pRegions[].dstOffsets[1]"), None, "VUID-vkCmdBlitImage-dstSubresource-01706, -01708, -dstOffset-00248, -00249, -00251"),
    region("VkBlitImageInfo2", "srcImage", "pRegions[].srcSubresource", Some("pRegions[].srcOffsets[0]"), None, "VUID-VkBlitImageInfo2-srcSubresource-01705, -01707, -srcOffset-00243, -00244, -00246"),
    region("VkBlitImageInfo2", "srcImage", "pRegions[].srcSubresource", Some("pRegions[].srcOffsets[1]"), None, "VUID-VkBlitImageInfo2-srcSubresource-01705, -01707, -srcOffset-00243, -00244, -00246"),
    region("VkBlitImageInfo2", "dstImage", "pRegions[].dstSubresource", Some("pRegions[].dstOffsets[0]"), None, "VUID-VkBlitImageInfo2-dstSubresource-01706, -01708, -dstOffset-00248, -00249, -00251"),
    region("VkBlitImageInfo2", "dstImage", "pRegions[].dstSubresource", Some("pRegions[].dstOffsets[1]"), None, "VUID-VkBlitImageInfo2-dstSubresource-01706, -01708, -dstOffset-00248, -00249, -00251"),
    region("vkCmdCopyBufferToImage", "dstImage", "pRegions[].imageSubresource", Some("pRegions[].imageOffset"), Some("pRegions[].imageExtent"), "VUID-vkCmdCopyBufferToImage-imageSubresource-07967, -07968, -pRegions-06223"),
    region("VkCopyBufferToImageInfo2", "dstImage", "pRegions[].imageSubresource", Some("pRegions[].imageOffset"), Some("pRegions[].imageExtent"), "VUID-VkCopyBufferToImageInfo2-imageSubresource-07967, -07968, -pRegions-06223"),
    region("vkCmdCopyImageToBuffer", "srcImage", "pRegions[].imageSubresource", Some("pRegions[].imageOffset"), Some("pRegions[].imageExtent"), "VUID-vkCmdCopyImageToBuffer-imageSubresource-07967, -07968, -pRegions-06221"),
    region("VkCopyImageToBufferInfo2", "srcImage", "pRegions[].imageSubresource", Some("pRegions[].imageOffset"), Some("pRegions[].imageExtent"), "VUID-VkCopyImageToBufferInfo2-imageSubresource-07967, -07968, -pRegions-06221"),
    buffer_image("vkCmdCopyBufferToImage", "srcBuffer", "dstImage", "VUID-vkCmdCopyBufferToImage-pRegions-00171"),
    buffer_image("VkCopyBufferToImageInfo2", "srcBuffer", "dstImage", "VUID-VkCopyBufferToImageInfo2-pRegions-00171"),
    buffer_image("vkCmdCopyImageToBuffer", "dstBuffer", "srcImage", "VUID-vkCmdCopyImageToBuffer-pRegions-00183"),
    buffer_image("VkCopyImageToBufferInfo2", "dstBuffer", "srcImage", "VUID-VkCopyImageToBufferInfo2-pRegions-00183"),
    // Query pools.
    queries("vkCmdBeginQuery", "query", None, "VUID-vkCmdBeginQuery-query-00802"),
    queries("vkCmdEndQuery", "query", None, "VUID-vkCmdEndQuery-query-00810"),
    queries("vkCmdWriteTimestamp", "query", None, "VUID-vkCmdWriteTimestamp-query-04904"),
    queries("vkCmdWriteTimestamp2", "query", None, "VUID-vkCmdWriteTimestamp2-query-04903"),
    queries("vkCmdResetQueryPool", "firstQuery", Some("queryCount"), "VUID-vkCmdResetQueryPool-firstQuery-09436, -09437"),
    queries("vkResetQueryPool", "firstQuery", Some("queryCount"), "VUID-vkResetQueryPool-firstQuery-09436, -09437"),
    queries("vkGetQueryPoolResults", "firstQuery", Some("queryCount"), "VUID-vkGetQueryPoolResults-firstQuery-09436, -09437"),
    queries("vkCmdCopyQueryPoolResults", "firstQuery", Some("queryCount"), "VUID-vkCmdCopyQueryPoolResults-firstQuery-09436, -09437"),
];

/// A `Range` row over bytes of a buffer or memory.
const fn bytes(
    owner: &'static str,
    object: &'static str,
    offset: &'static str,
    size: Size,
    vuid: &'static str,
) -> Check {
    Check::Range {
        owner,
        rule: RangeRule::Bytes {
            object,
            offset,
            size,
        },
        vuid,
    }
}

/// A `Range` row binding a buffer or image into memory.
const fn bind(
    owner: &'static str,
    resource: &'static str,
    memory: &'static str,
    offset: &'static str,
    vuid: &'static str,
) -> Check {
    Check::Range {
        owner,
        rule: RangeRule::Bind {
            resource,
            memory,
            offset,
        },
        vuid,
    }
}

/// A `Range` row over an image subresource range.
const fn image_range(
    owner: &'static str,
    image: &'static str,
    range: &'static str,
    vuid: &'static str,
) -> Check {
    Check::Range {
        owner,
        rule: RangeRule::ImageRange { image, range },
        vuid,
    }
}

/// A `Range` row over an image region.
const fn region(
    owner: &'static str,
    image: &'static str,
    layers: &'static str,
    offset: Option<&'static str>,
    extent: Option<&'static str>,
    vuid: &'static str,
) -> Check {
    Check::Range {
        owner,
        rule: RangeRule::ImageRegion {
            image,
            layers,
            offset,
            extent,
            extent_in: None,
        },
        vuid,
    }
}

/// A `Range` row over a copy's destination region whose extent is in texels of the source.
const fn dst_region(
    owner: &'static str,
    image: &'static str,
    layers: &'static str,
    offset: &'static str,
    extent: &'static str,
    extent_in: &'static str,
    vuid: &'static str,
) -> Check {
    Check::Range {
        owner,
        rule: RangeRule::ImageRegion {
            image,
            layers,
            offset: Some(offset),
            extent: Some(extent),
            extent_in: Some(extent_in),
        },
        vuid,
    }
}

/// A `Range` row over the buffer side of buffer <-> image copy regions.
const fn buffer_image(
    owner: &'static str,
    buffer: &'static str,
    image: &'static str,
    vuid: &'static str,
) -> Check {
    Check::Range {
        owner,
        rule: RangeRule::BufferImage {
            buffer,
            image,
            region: "pRegions[]",
        },
        vuid,
    }
}

/// A `Range` row over queries of parameter `queryPool`.
const fn queries(
    owner: &'static str,
    first: &'static str,
    count: Option<&'static str>,
    vuid: &'static str,
) -> Check {
    Check::Range {
        owner,
        rule: RangeRule::Queries {
            pool: "queryPool",
            first,
            count,
        },
        vuid,
    }
}

/// A `NonZero` row.
const fn nonzero(structure: &'static str, member: &'static str, vuid: &'static str) -> Check {
    Check::NonZero {
        structure,
        member,
        vuid,
    }
}

/// A `SingleBit` row.
const fn single_bit(structure: &'static str, member: &'static str, vuid: &'static str) -> Check {
    Check::SingleBit {
        structure,
        member,
        vuid,
    }
}

pub const HOST_ONLY: &[HostOnly] = &[
    HostOnly {
        extension: "VK_EXT_external_memory_host",
        structs: &[
            "VkImportMemoryHostPointerInfoEXT",
            "VkMemoryHostPointerPropertiesEXT",
            "VkPhysicalDeviceExternalMemoryHostPropertiesEXT",
        ],
        commands: &["vkGetMemoryHostPointerPropertiesEXT"],
        why: "guest blobs are imported into host memory without a copy",
    },
    HostOnly {
        extension: "VK_KHR_external_memory_fd",
        structs: &[
            "VkImportMemoryFdInfoKHR",
            "VkMemoryFdPropertiesKHR",
            "VkMemoryGetFdInfoKHR",
        ],
        commands: &["vkGetMemoryFdKHR", "vkGetMemoryFdPropertiesKHR"],
        why: "WSI emulation exports and imports memory as file descriptors",
    },
    HostOnly {
        extension: "VK_KHR_external_semaphore_fd",
        structs: &["VkSemaphoreGetFdInfoKHR", "VkImportSemaphoreFdInfoKHR"],
        commands: &["vkGetSemaphoreFdKHR", "vkImportSemaphoreFdKHR"],
        why: "WSI emulation signals presentation through sync file descriptors",
    },
    HostOnly {
        extension: "VK_KHR_external_fence_fd",
        structs: &["VkFenceGetFdInfoKHR", "VkImportFenceFdInfoKHR"],
        commands: &["vkGetFenceFdKHR", "vkImportFenceFdKHR"],
        why: "WSI emulation signals presentation through sync file descriptors",
    },
    HostOnly {
        extension: "VK_KHR_portability_subset",
        structs: &["VkPhysicalDevicePortabilitySubsetFeaturesKHR"],
        commands: &[],
        why: "a portability-subset device's restrictions decide which core features the client \
              is shown",
    },
];
