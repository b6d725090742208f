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
        command: "vkCmdPushDescriptorSetWithTemplateKHR",
        why: "pData has no length",
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

/// Notes for the dispatch layer about commands whose wire values must not be trusted as-is.
/// They change nothing in the encoding; they are emitted into the command table.
pub struct DispatchNote {
    pub command: &'static str,
    pub note: &'static str,
}

pub const DISPATCH_NOTES: &[DispatchNote] = &[
    DispatchNote {
        command: "vkCmdDrawMultiEXT",
        note: "elements travel packed: pass sizeof(VkMultiDrawInfoEXT) as stride, not the wire value",
    },
    DispatchNote {
        command: "vkCmdDrawMultiIndexedEXT",
        note: "elements travel packed: pass sizeof(VkMultiDrawIndexedInfoEXT) as stride, not the wire value",
    },
];

/// Types that are never serialized even though the XML defines them.
pub const NEVER_SERIALIZED: &[&str] = &["VkBaseInStructure", "VkBaseOutStructure"];

/// Wire format version (upstream VN_WIRE_FORMAT_VERSION); bumped only for breaking changes.
pub const WIRE_FORMAT_VERSION: u32 = 1;

/// The highest command id known at protocol level git-ca1e9220; anything above is unknown.
pub const MAX_COMMAND_ID: u32 = 282;

/// Core versions the protocol serializes at this level.
pub const CORE_VERSIONS: &[&str] = &[
    "VK_VERSION_1_0",
    "VK_VERSION_1_1",
    "VK_VERSION_1_2",
    "VK_VERSION_1_3",
];
