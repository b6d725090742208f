//! Device memory (DESIGN decision 3, contract §7): every HOST_VISIBLE allocation is backed by
//! host shared memory ([`SharedMemory`], zero-filled) imported into the driver with
//! `VK_EXT_external_memory_host`, so that `RESOURCE_CREATE_BLOB` can hand the client that very
//! memory, mappable at offset 0 and coherent both ways. Other memory is allocated natively.
//!
//! The backing is reference counted: the `VkDeviceMemory` object ([`MemoryShared`], freed on the
//! host before its backing is released) and the blob resource each hold it, so whichever goes
//! last releases the pages (the client's `RESOURCE_UNREF` may arrive before the ring's
//! `vkFreeMemory`, contract §7.4).
//!
//! Limits (checked before the driver is called, see [`crate::limits`]): every allocation is
//! charged to the context's device-memory limit (released with the memory object), and the
//! shared backing of a HOST_VISIBLE one to its shared-memory budget (released with the
//! backing). Zeroing: the backing is a new shared-memory object, zero-filled (see
//! `venus_renderer::shm`), so the client never sees an earlier allocation's bytes; memory
//! allocated natively is not HOST_VISIBLE and can never be mapped by the client.

use std::ffi::c_void;
use std::sync::Arc;

use venus_host::lower::{Lower, LowerCx};
use venus_host::ranges::{Extent, ImageShape};
use venus_host::vk;
use venus_protocol::commands::*;
use venus_protocol::structs::{
    ExportMemoryAllocateInfo, ExternalMemoryBufferCreateInfo, ExternalMemoryImageCreateInfo,
    MemoryDedicatedAllocateInfo,
};
use venus_protocol::types::{
    ExternalMemoryFeatureFlags, ExternalMemoryHandleTypeFlagBits, ExternalMemoryHandleTypeFlags,
    ImageLayout, MemoryPropertyFlags, VkResult,
};
use venus_protocol::{handles, Handle, Reply};
use venus_renderer::dispatch::DispatchError;
use venus_renderer::shm::SharedMemory;
use venus_renderer::{BlobParams, ResourceError};

use crate::registry::{DeviceShared, NewObject, Owner, State, Teardown};
use crate::{Call, VulkanDispatch};

/// `VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT`.
const HOST_ALLOCATION: ExternalMemoryHandleTypeFlagBits = ExternalMemoryHandleTypeFlagBits(0x80);

/// What a device can do with memory, fixed at device creation.
pub struct MemoryProfile {
    pub types: vk::PhysicalDeviceMemoryProperties,
    /// `minImportedHostPointerAlignment` when the device imports host memory.
    pub import_alignment: Option<u64>,
    /// The granule of shared-memory sizes and addresses: the host page size (or the profile's,
    /// `--host-page-size`) and the import alignment, whichever is larger.
    pub granule: u64,
    /// How the shared memory is created (`--shm-backing`).
    pub backing: venus_renderer::shm::ShmBacking,
}

impl MemoryProfile {
    fn is_host_visible(&self, type_index: u32) -> Option<bool> {
        (type_index < self.types.memory_type_count).then(|| {
            self.types.memory_types[type_index as usize]
                .property_flags
                .contains(MemoryPropertyFlags::HOST_VISIBLE_BIT)
        })
    }
}

/// A `VkDeviceMemory`'s shared backing (None: allocated natively, not mappable by the client).
pub struct MemoryShared {
    pub backing: Option<Arc<SharedMemory>>,
    pub size: u64,
    /// `size` bytes of the context's device-memory limit, released with the object.
    _charge: crate::limits::DeviceMemoryCharge,
}

/// The header every Vulkan struct starts with.
#[repr(C)]
struct Header {
    s_type: i32,
    p_next: *mut c_void,
}

/// Unlinks the structs of types `drop` from a lowered C chain.
///
/// # Safety
/// `*head` must be NULL or the start of a chain of Vulkan structs, each starting with
/// `sType`/`pNext`, all writable (the lowering's arena).
unsafe fn unlink(head: &mut *mut c_void, drop: &[i32]) {
    let mut link: *mut *mut c_void = head;
    // SAFETY: every `*link` is NULL or a struct of the chain (the caller's contract), whose
    // first two fields are `sType` and `pNext` (`Header`).
    unsafe {
        while !(*link).is_null() {
            let node = *link as *mut Header;
            if drop.contains(&(*node).s_type) {
                *link = (*node).p_next;
            } else {
                link = &mut (*node).p_next;
            }
        }
    }
}

impl VulkanDispatch {
    pub(crate) fn allocate_memory(
        &self,
        call: &mut Call<'_, '_>,
        a: &AllocateMemoryArgs<'_>,
    ) -> Result<(), DispatchError> {
        let device = self
            .registry
            .device(a.device.raw())
            .map_err(|e| call.invalid(e))?;
        let info = a.p_allocate_info;
        let visible = device
            .memory
            .is_host_visible(info.memory_type_index)
            .ok_or_else(|| {
                call.invalid(format!(
                    "memoryTypeIndex {} does not exist",
                    info.memory_type_index
                ))
            })?;
        let charge = match self.charge_device_memory(call, info.allocation_size) {
            Ok(c) => c,
            Err(e) => {
                self.refuse(call, e)?;
                return call.cx.reply(&Reply::AllocateMemory(AllocateMemoryReply {
                    ret: VkResult::ERROR_OUT_OF_DEVICE_MEMORY,
                    p_memory: a.p_memory,
                }));
            }
        };
        let (ret, host, backing) = if visible {
            self.allocate_shared(call, &device, a)?
        } else {
            let (r, h) = self.allocate_native(call, &device, a, None)?;
            (r, h, None)
        };
        if ret == VkResult::SUCCESS {
            let memory = Arc::new(MemoryShared {
                backing,
                size: info.allocation_size,
                _charge: charge,
            });
            self.registry
                .insert(NewObject {
                    guest: a.p_memory.raw(),
                    ty: handles::DeviceMemory::OBJECT_TYPE,
                    host,
                    owner: Owner::Device(Arc::clone(&device)),
                    state: State::Memory(memory),
                    teardown: Teardown::Destroy,
                })
                .map_err(|e| call.invalid(e))?;
        }
        call.cx.reply(&Reply::AllocateMemory(AllocateMemoryReply {
            ret,
            p_memory: a.p_memory,
        }))
    }

    /// A HOST_VISIBLE allocation: shared memory imported as a host pointer.
    fn allocate_shared(
        &self,
        call: &Call<'_, '_>,
        device: &DeviceShared,
        a: &AllocateMemoryArgs<'_>,
    ) -> Result<(VkResult, u64, Option<Arc<SharedMemory>>), DispatchError> {
        let size = a.p_allocate_info.allocation_size;
        if device.memory.import_alignment.is_none() {
            tracing::warn!(
                ctx = self.context_id,
                "the host driver lacks VK_EXT_external_memory_host: HOST_VISIBLE memory cannot be \
                 shared with the client (vkMapMemory will fail)"
            );
            let (r, h) = self.allocate_native(call, device, a, None)?;
            return Ok((r, h, None));
        }
        let created = call.cx.resources().create_memory(
            0,
            size,
            device.memory.granule,
            device.memory.backing,
        );
        let shm = match created {
            Ok(s) => Arc::new(s),
            Err(ResourceError::Limit { source, .. }) => {
                self.refuse(call, source)?;
                return Ok((VkResult::ERROR_OUT_OF_HOST_MEMORY, 0, None));
            }
            Err(e) => {
                tracing::warn!(
                    ctx = self.context_id,
                    size,
                    "cannot create shared memory: {e}"
                );
                return Ok((VkResult::ERROR_OUT_OF_HOST_MEMORY, 0, None));
            }
        };
        let ptr = shm.host_ptr().as_ptr() as *mut c_void;
        let usable = self.importable_types(device, ptr);
        if usable & (1 << a.p_allocate_info.memory_type_index) == 0 {
            tracing::warn!(
                ctx = self.context_id,
                memory_type = a.p_allocate_info.memory_type_index,
                usable,
                "the host cannot import host memory as this memory type"
            );
            return Ok((VkResult::ERROR_OUT_OF_DEVICE_MEMORY, 0, None));
        }
        let import = vk::ImportMemoryHostPointerInfoEXT {
            s_type: vk::ImportMemoryHostPointerInfoEXT::STRUCTURE_TYPE,
            p_next: std::ptr::null_mut(),
            handle_type: HOST_ALLOCATION,
            p_host_pointer: ptr,
        };
        let (r, h) = self.allocate_native(call, device, a, Some((import, shm.mapped_len())))?;
        Ok((r, h, (r == VkResult::SUCCESS).then_some(shm)))
    }

    /// The memory types that can import `ptr` (0 when the query fails).
    fn importable_types(&self, device: &DeviceShared, ptr: *mut c_void) -> u32 {
        let Some(get) = device.procs.get_memory_host_pointer_properties_ext else {
            return 0;
        };
        let mut props = vk::MemoryHostPointerPropertiesEXT::default();
        // SAFETY: `ptr` is the start of a live mapping aligned to the import alignment; `props`
        // is a valid output struct.
        let r = unsafe { get(device.host, HOST_ALLOCATION, ptr, &mut props) };
        if r == VkResult::SUCCESS {
            props.memory_type_bits
        } else {
            0
        }
    }

    /// `vkAllocateMemory` on the host, importing `import` (with the rounded size) if given.
    fn allocate_native(
        &self,
        call: &Call<'_, '_>,
        device: &DeviceShared,
        a: &AllocateMemoryArgs<'_>,
        import: Option<(vk::ImportMemoryHostPointerInfoEXT, u64)>,
    ) -> Result<(VkResult, u64), DispatchError> {
        let alloc = device
            .procs
            .allocate_memory
            .ok_or(DispatchError::Unsupported(call.name))?;
        let mut lcx = LowerCx::with_limits(call.arena, call.held, Some(&device.limits));
        lcx.set_stripped(device.profile.stripped());
        let mut info = a
            .p_allocate_info
            .lower(&mut lcx)
            .map_err(|e| call.invalid(e))?;
        if let Some((mut import, rounded)) = import {
            // An import is neither dedicated nor exportable: the client's view of the memory is
            // our shared memory itself (contract §7.6).
            // SAFETY: the chain was just lowered into the arena.
            unsafe {
                unlink(
                    &mut info.p_next,
                    &[
                        MemoryDedicatedAllocateInfo::STRUCTURE_TYPE.0,
                        ExportMemoryAllocateInfo::STRUCTURE_TYPE.0,
                    ],
                )
            };
            import.p_next = info.p_next;
            info.p_next = call.arena.alloc(import) as *mut _ as *mut c_void;
            info.allocation_size = rounded;
        }
        let mut host = vk::DeviceMemory::NULL;
        // SAFETY: the device is live (held by `device`); `info` and its chain live in the arena;
        // an imported pointer stays mapped for as long as the memory object (which owns it).
        let r = unsafe { alloc(device.host, &info, std::ptr::null(), &mut host) };
        Ok((r, host.0))
    }

    /// `RESOURCE_CREATE_BLOB` of device memory `req.blob_id`: its shared backing.
    pub(crate) fn export_memory(
        &self,
        req: &BlobParams,
    ) -> Result<Arc<SharedMemory>, DispatchError> {
        const WHAT: &str = "RESOURCE_CREATE_BLOB";
        let invalid = |reason: String| crate::invalid(WHAT, reason);
        let obj = self
            .registry
            .get_typed(handles::DeviceMemory::OBJECT_TYPE, req.blob_id)
            .map_err(|e| invalid(e.to_string()))?;
        let State::Memory(m) = &obj.state else {
            return Err(invalid(format!("{} is not device memory", req.blob_id)));
        };
        let Some(backing) = &m.backing else {
            return Err(invalid(format!(
                "device memory {} is not host visible on this host (no shared backing)",
                req.blob_id
            )));
        };
        // A vtest client asks for the allocation size, a VMM's guest kernel for whole pages:
        // both fit the backing's mapping (whole pages of the host-page-size profile).
        if req.size > backing.mapped_len() {
            return Err(invalid(format!(
                "blob of {} bytes for device memory {} of {} bytes ({} mapped)",
                req.size,
                req.blob_id,
                m.size,
                backing.mapped_len()
            )));
        }
        Ok(Arc::clone(backing))
    }
}

/// Makes a lowered buffer/image create info declare that its memory may be imported host
/// memory: the `VkExternalMemory{Buffer,Image}CreateInfo` link of type `s_type` gets
/// `HOST_ALLOCATION` as its only handle type (the client's own handle types are for memory it
/// believes it exports; what it really gets is our shared memory), or one is prepended.
///
/// # Safety
/// `*head` must be NULL or a lowered chain in `arena` (see [`unlink`]).
unsafe fn declare_host_allocation(arena: &bumpalo::Bump, head: &mut *mut c_void, s_type: i32) {
    let mut link = *head;
    // SAFETY: every link is a Vulkan struct of the chain; both external-memory create infos
    // have the layout of `vk::ExternalMemoryBufferCreateInfo`.
    unsafe {
        while !link.is_null() {
            let node = link as *mut Header;
            if (*node).s_type == s_type {
                let info = link as *mut vk::ExternalMemoryBufferCreateInfo;
                (*info).handle_types = ExternalMemoryHandleTypeFlags(HOST_ALLOCATION.0 as u32);
                return;
            }
            link = (*node).p_next;
        }
    }
    let info = arena.alloc(vk::ExternalMemoryBufferCreateInfo {
        s_type: venus_protocol::types::StructureType(s_type),
        p_next: *head,
        handle_types: ExternalMemoryHandleTypeFlags(HOST_ALLOCATION.0 as u32),
    });
    *head = info as *mut _ as *mut c_void;
}

impl VulkanDispatch {
    /// `vkCreateBuffer`: declared importable as host memory when the device imports it (any
    /// buffer may be bound to HOST_VISIBLE memory, which is imported host memory here).
    pub(crate) fn create_buffer(
        &self,
        call: &mut Call<'_, '_>,
        a: &CreateBufferArgs<'_>,
    ) -> Result<(), DispatchError> {
        let device = self
            .registry
            .device(a.device.raw())
            .map_err(|e| call.invalid(e))?;
        let create = device
            .procs
            .create_buffer
            .ok_or(DispatchError::Unsupported(call.name))?;
        let mut lcx = LowerCx::with_limits(call.arena, call.held, Some(&device.limits));
        lcx.set_stripped(device.profile.stripped());
        let mut info = a
            .p_create_info
            .lower(&mut lcx)
            .map_err(|e| call.invalid(e))?;
        if device.memory.import_alignment.is_some() {
            // SAFETY: the chain was just lowered into the arena.
            unsafe {
                declare_host_allocation(
                    call.arena,
                    &mut info.p_next,
                    ExternalMemoryBufferCreateInfo::STRUCTURE_TYPE.0,
                )
            };
        }
        let mut host = vk::Buffer::NULL;
        // SAFETY: the device is live; `info` and its chain live in the arena and `a`.
        let ret = unsafe { create(device.host, &info, std::ptr::null(), &mut host) };
        if ret == VkResult::SUCCESS {
            let required = buffer_requirement(&device, host);
            let state = State::Sized(Extent::Buffer {
                size: a.p_create_info.size,
                required,
            });
            self.register_child(
                call,
                &device,
                handles::Buffer::OBJECT_TYPE,
                a.p_buffer.raw(),
                host.0,
                state,
            )?;
        }
        call.cx.reply(&Reply::CreateBuffer(CreateBufferReply {
            ret,
            p_buffer: a.p_buffer,
        }))
    }

    /// `vkCreateImage`: declared importable as host memory when the driver supports that for
    /// the image's format and usage.
    pub(crate) fn create_image(
        &self,
        call: &mut Call<'_, '_>,
        a: &CreateImageArgs<'_>,
    ) -> Result<(), DispatchError> {
        let device = self
            .registry
            .device(a.device.raw())
            .map_err(|e| call.invalid(e))?;
        let create = device
            .procs
            .create_image
            .ok_or(DispatchError::Unsupported(call.name))?;
        // An emulated DRM-modifier tiling is LINEAR (its modifier links are stripped).
        let drm = match crate::drm::DrmImage::of(&device.profile, a.p_create_info) {
            Ok(d) => d,
            Err(ret) => return self.reply_create_image(call, a, ret),
        };
        let mut lcx = LowerCx::with_limits(call.arena, call.held, Some(&device.limits));
        lcx.set_stripped(device.profile.stripped());
        let mut info = a
            .p_create_info
            .lower(&mut lcx)
            .map_err(|e| call.invalid(e))?;
        if drm.is_some() {
            info.tiling = venus_protocol::types::ImageTiling::LINEAR;
        }
        // An image with external memory must start UNDEFINED (VUID-VkImageCreateInfo-pNext-01443):
        // a PREINITIALIZED image (a linear texture written through a mapping) cannot declare it.
        let declarable = info.initial_layout != ImageLayout::PREINITIALIZED;
        if device.memory.import_alignment.is_some()
            && declarable
            && image_imports_host_memory(&device, &info)
        {
            // SAFETY: the chain was just lowered into the arena.
            unsafe {
                declare_host_allocation(
                    call.arena,
                    &mut info.p_next,
                    ExternalMemoryImageCreateInfo::STRUCTURE_TYPE.0,
                )
            };
        }
        let mut host = vk::Image::NULL;
        // SAFETY: the device is live; `info` and its chain live in the arena and `a`.
        let mut ret = unsafe { create(device.host, &info, std::ptr::null(), &mut host) };
        if ret == VkResult::SUCCESS && !drm.is_none_or(|d| d.layout_matches(&device, host, &info)) {
            if let Some(destroy) = device.procs.destroy_image {
                // SAFETY: the image was just created on this device and nothing else has it.
                unsafe { destroy(device.host, host, std::ptr::null()) };
            }
            ret = VkResult::ERROR_INVALID_DRM_FORMAT_MODIFIER_PLANE_LAYOUT_EXT;
        }
        if ret == VkResult::SUCCESS {
            let state = State::Sized(Extent::Image(image_shape(&device, host, &info)));
            self.register_child(
                call,
                &device,
                handles::Image::OBJECT_TYPE,
                a.p_image.raw(),
                host.0,
                state,
            )?;
        }
        self.reply_create_image(call, a, ret)
    }

    fn reply_create_image(
        &self,
        call: &mut Call<'_, '_>,
        a: &CreateImageArgs<'_>,
        ret: VkResult,
    ) -> Result<(), DispatchError> {
        call.cx.reply(&Reply::CreateImage(CreateImageReply {
            ret,
            p_image: a.p_image,
        }))
    }

    fn register_child(
        &self,
        call: &Call<'_, '_>,
        device: &Arc<DeviceShared>,
        ty: i32,
        guest: u64,
        host: u64,
        state: State,
    ) -> Result<(), DispatchError> {
        self.registry
            .insert(NewObject {
                guest,
                ty,
                host,
                owner: Owner::Device(Arc::clone(device)),
                state,
                teardown: Teardown::Destroy,
            })
            .map(drop)
            .map_err(|e| call.invalid(e))
    }
}

/// The host driver's memory requirement for buffer `host` (0 when it cannot be asked).
fn buffer_requirement(device: &DeviceShared, host: vk::Buffer) -> u64 {
    let Some(get) = device.procs.get_buffer_memory_requirements else {
        return 0;
    };
    let mut req = vk::MemoryRequirements::default();
    // SAFETY: the buffer was just created on this live device; `req` is a valid output.
    unsafe { get(device.host, host, &mut req) };
    req.size
}

/// What the range rules need of image `host`, created from `info`; its memory requirement
/// unless it is disjoint (per plane: 0, its binding is not range-checked).
fn image_shape(device: &DeviceShared, host: vk::Image, info: &vk::ImageCreateInfo) -> ImageShape {
    const DISJOINT: u32 = 0x200;
    let required = match device.procs.get_image_memory_requirements {
        Some(get) if info.flags.0 & DISJOINT == 0 => {
            let mut req = vk::MemoryRequirements::default();
            // SAFETY: the image was just created on this live device and is not disjoint.
            unsafe { get(device.host, host, &mut req) };
            req.size
        }
        _ => 0,
    };
    ImageShape {
        image_type: info.image_type.0,
        format: info.format.0,
        flags: info.flags.0,
        extent: [info.extent.width, info.extent.height, info.extent.depth],
        mip_levels: info.mip_levels,
        array_layers: info.array_layers,
        required,
    }
}

/// Whether the driver can bind an image like `info` to imported host memory.
fn image_imports_host_memory(device: &DeviceShared, info: &vk::ImageCreateInfo) -> bool {
    let Some(get) = device
        .instance
        .procs
        .get_physical_device_image_format_properties2
    else {
        return false;
    };
    let mut external_info = vk::PhysicalDeviceExternalImageFormatInfo {
        handle_type: HOST_ALLOCATION,
        ..Default::default()
    };
    let query = vk::PhysicalDeviceImageFormatInfo2 {
        p_next: &mut external_info as *mut _ as *mut c_void,
        format: info.format,
        ty: info.image_type,
        tiling: info.tiling,
        usage: info.usage,
        flags: info.flags,
        ..Default::default()
    };
    let mut external = vk::ExternalImageFormatProperties::default();
    let mut props = vk::ImageFormatProperties2 {
        p_next: &mut external as *mut _ as *mut c_void,
        ..Default::default()
    };
    // SAFETY: the physical device is live (its instance is held by `device`); the query and
    // output chains are valid for the call.
    let r = unsafe { get(device.physical, &query, &mut props) };
    r == VkResult::SUCCESS
        && external
            .external_memory_properties
            .external_memory_features
            .contains(ExternalMemoryFeatureFlags::IMPORTABLE_BIT)
}
