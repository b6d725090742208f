//! Per-context resource table: `res_id` -> shared memory.
//!
//! A resource is what the client creates with `RESOURCE_CREATE_BLOB` (contract §3.3): either
//! plain shared memory (`blob_id` 0: rings, reply streams, command streams, upload buffers) or
//! the pages of a `VkDeviceMemory` (`blob_id` = its id; exported by the dispatch layer through
//! [`crate::Dispatch::export_blob`]). The table maps the transport's `res_id` to an
//! `Arc<SharedMemory>`.
//!
//! Lifetime: [`ResourceTable::remove`] (`RESOURCE_UNREF`) only drops the table's reference.
//! Whoever still uses the memory — a ring, a reply stream, the dispatch layer for a
//! `VkDeviceMemory` — holds its own `Arc` (or a [`crate::shm::Region`], which holds one), so the
//! mapping stays valid until the last user is gone. The client may unref a ring's memory right
//! after `vkDestroyRingMESA`, or a device-memory blob before `vkFreeMemory` (§3.4), and nothing
//! here has to order those.
//!
//! Locking: one `RwLock` per context. Lookups (`vkSetReplyCommandStreamMESA`,
//! `vkExecuteCommandStreamsMESA`, `vkCreateRingMESA`) take the read lock for a hash lookup and
//! an `Arc` clone; creation and unref take the write lock. No global lock.

use std::collections::HashMap;
use std::fmt;
use std::os::fd::OwnedFd;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::limits::{LimitExceeded, Limits, ShmBudget};
use crate::shm::{SharedMemory, ShmBacking, ShmConfig, ShmError};

/// `RESOURCE_CREATE_BLOB` blob types (vtest / virtio-gpu values).
pub mod blob_type {
    /// Guest memory (not used by Venus over vtest).
    pub const GUEST: u32 = 1;
    /// Host memory: the only type Venus uses over vtest.
    pub const HOST3D: u32 = 2;
    /// Host memory backed by guest pages (not used by Venus over vtest).
    pub const HOST3D_GUEST: u32 = 3;
}

/// `RESOURCE_CREATE_BLOB` blob flags.
pub mod blob_flags {
    /// The client will `mmap` the fd.
    pub const MAPPABLE: u32 = 1 << 0;
    /// The fd may be shared with other processes / devices.
    pub const SHAREABLE: u32 = 1 << 1;
    /// The fd must be importable by another device (a dma-buf).
    pub const CROSS_DEVICE: u32 = 1 << 2;
    /// Every flag this protocol level defines.
    pub const ALL: u32 = MAPPABLE | SHAREABLE | CROSS_DEVICE;
}

/// A blob request as the transport validated it (`res_id` chosen by the transport, unique
/// among the connection's live resources; `size` non-zero and below the transport's cap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobParams {
    /// Resource id chosen by the transport.
    pub res_id: u32,
    /// [`blob_type`].
    pub blob_type: u32,
    /// [`blob_flags`].
    pub flags: u32,
    /// Size in bytes (not necessarily page aligned).
    pub size: u64,
    /// 0: new plain shared memory; else the id of a `VkDeviceMemory` to export.
    pub blob_id: u64,
}

/// What a resource is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// `blob_id` 0: plain shared memory (rings, reply and command streams).
    Shmem,
    /// The pages of the `VkDeviceMemory` with this id.
    DeviceMemory {
        /// The `VkDeviceMemory` id the client asked for.
        blob_id: u64,
    },
}

/// One live resource.
#[derive(Clone)]
pub struct Resource {
    /// The memory (our mapping; the client got a duplicate of its fd).
    pub shm: Arc<SharedMemory>,
    /// What it backs.
    pub kind: ResourceKind,
}

impl fmt::Debug for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resource")
            .field("kind", &self.kind)
            .field("len", &self.shm.len())
            .finish()
    }
}

/// Why a resource could not be created or used. Each message names the resource.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// A blob type other than HOST3D.
    #[error("blob type {0} is not supported (only HOST3D = {h})", h = blob_type::HOST3D)]
    UnsupportedType(u32),
    /// Flags this protocol level does not define.
    #[error("blob flags {0:#x} contain unknown bits")]
    UnknownFlags(u32),
    /// A `blob_id` 0 blob without MAPPABLE, or with CROSS_DEVICE (a memfd is not a dma-buf).
    #[error(
        "blob flags {0:#x} are invalid for plain shared memory (blob_id 0): MAPPABLE is \
         required and CROSS_DEVICE cannot be honoured"
    )]
    ShmemFlags(u32),
    /// Device-memory blobs need the dispatch layer, which refused or does not support them.
    #[error("exporting VkDeviceMemory {blob_id:#x} as resource {res_id}: {reason}")]
    Export {
        /// The resource being created.
        res_id: u32,
        /// The `VkDeviceMemory` id.
        blob_id: u64,
        /// Why not.
        reason: String,
    },
    /// The exported memory is smaller than the client asked for.
    #[error(
        "exported VkDeviceMemory {blob_id:#x} has {got} bytes, less than the {size} requested"
    )]
    ExportTooSmall {
        /// The `VkDeviceMemory` id.
        blob_id: u64,
        /// Bytes of the exported memory.
        got: u64,
        /// Bytes requested.
        size: u64,
    },
    /// `res_id` is already in the table (a transport bug).
    #[error("resource {0} already exists")]
    Duplicate(u32),
    /// `res_id` 0 is never valid.
    #[error("resource id 0 is invalid")]
    ZeroId,
    /// No such resource.
    #[error("resource {0} does not exist")]
    Unknown(u32),
    /// The resource is not plain shared memory (a ring, reply stream or command stream must be).
    #[error("resource {res_id} is not plain shared memory (blob_id 0) but {kind:?}")]
    NotShmem {
        /// The resource.
        res_id: u32,
        /// What it is.
        kind: ResourceKind,
    },
    /// A per-context limit ([`crate::limits`]) forbids it.
    #[error("resource {res_id}: {source}")]
    Limit {
        /// The resource (0: device memory being allocated, not a resource yet).
        res_id: u32,
        /// Which limit, and by how much.
        #[source]
        source: LimitExceeded,
    },
    /// Shared memory could not be created or duplicated.
    #[error("resource {res_id}: {source}")]
    Shm {
        /// The resource.
        res_id: u32,
        /// The failure.
        #[source]
        source: ShmError,
    },
}

/// The resource table of one context (see the module doc).
pub struct ResourceTable {
    map: RwLock<HashMap<u32, Resource>>,
    /// Shared-memory granule (the host page size, or the profile's: `--host-page-size`) and
    /// backing (`--shm-backing`).
    shm: ShmConfig,
    /// The context's shared-memory account (every object made here is charged to it).
    budget: Arc<ShmBudget>,
}

impl Default for ResourceTable {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ResourceTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceTable")
            .field("len", &self.read().len())
            .finish()
    }
}

impl ResourceTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::with_granule(1)
    }

    /// A table whose shared memory is rounded to `granule` bytes (a power of two; at least the
    /// real page size is used anyway).
    pub fn with_granule(granule: u64) -> Self {
        Self::with_shm_config(ShmConfig {
            granule,
            ..ShmConfig::default()
        })
    }

    /// A table whose shared memory is created as `shm` says (granule and backing).
    pub fn with_shm_config(shm: ShmConfig) -> Self {
        Self::with_limits(shm, Limits::default())
    }

    /// A table whose shared memory is created as `shm` says and charged against `limits`
    /// ([`Limits::max_shared_memory`], [`Limits::max_shared_memory_objects`]).
    pub fn with_limits(shm: ShmConfig, limits: Limits) -> Self {
        Self {
            map: RwLock::default(),
            shm,
            budget: ShmBudget::new(limits),
        }
    }

    /// The context's shared-memory account.
    pub fn budget(&self) -> &Arc<ShmBudget> {
        &self.budget
    }

    /// New zero-filled shared memory of `size` bytes aligned to `align` (and the table's
    /// granule), created with `backing`, charged to the context's budget **before** it is
    /// created (`res_id` names it in errors; 0 for device memory). The charge goes when the
    /// memory does.
    pub fn create_memory(
        &self,
        res_id: u32,
        size: u64,
        align: u64,
        backing: ShmBacking,
    ) -> Result<SharedMemory, ResourceError> {
        let align = align.max(self.shm.granule);
        let charged = SharedMemory::mapped_len_for(size, align).ok_or(ResourceError::Shm {
            res_id,
            source: ShmError::TooLarge { size },
        })?;
        let charge = self
            .budget
            .charge(charged)
            .map_err(|source| ResourceError::Limit { res_id, source })?;
        let shm = SharedMemory::with_backing(size, align, backing)
            .map_err(|source| ResourceError::Shm { res_id, source })?;
        Ok(shm.with_charge(charge))
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<u32, Resource>> {
        self.map.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<u32, Resource>> {
        self.map.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks a blob request's type and flags (see [`ResourceError`]); `blob_id` 0 must be
    /// HOST3D + MAPPABLE (+ optionally SHAREABLE).
    pub fn validate(params: &BlobParams) -> Result<(), ResourceError> {
        if params.blob_type != blob_type::HOST3D {
            return Err(ResourceError::UnsupportedType(params.blob_type));
        }
        if params.flags & !blob_flags::ALL != 0 {
            return Err(ResourceError::UnknownFlags(params.flags));
        }
        if params.res_id == 0 {
            return Err(ResourceError::ZeroId);
        }
        if params.blob_id == 0
            && (params.flags & blob_flags::MAPPABLE == 0
                || params.flags & blob_flags::CROSS_DEVICE != 0)
        {
            return Err(ResourceError::ShmemFlags(params.flags));
        }
        Ok(())
    }

    /// Creates a `blob_id` 0 resource: new zero-filled shared memory of `params.size` bytes.
    /// Returns the fd to hand to the client.
    pub fn create_shmem(&self, params: &BlobParams) -> Result<OwnedFd, ResourceError> {
        Self::validate(params)?;
        if params.blob_id != 0 {
            return Err(ResourceError::Export {
                res_id: params.res_id,
                blob_id: params.blob_id,
                reason: "not a blob_id 0 request".into(),
            });
        }
        let res_id = params.res_id;
        let shm = self.create_memory(res_id, params.size, 1, self.shm.backing)?;
        self.insert_with_fd(
            res_id,
            Resource {
                shm: Arc::new(shm),
                kind: ResourceKind::Shmem,
            },
        )
    }

    /// Adds `resource` as `res_id` and returns a new fd of its memory for the client.
    pub fn insert_with_fd(
        &self,
        res_id: u32,
        resource: Resource,
    ) -> Result<OwnedFd, ResourceError> {
        if res_id == 0 {
            return Err(ResourceError::ZeroId);
        }
        let fd = resource
            .shm
            .try_clone_fd()
            .map_err(|e| ResourceError::Shm {
                res_id,
                source: ShmError::Io(e),
            })?;
        let mut map = self.write();
        if map.contains_key(&res_id) {
            return Err(ResourceError::Duplicate(res_id));
        }
        map.insert(res_id, resource);
        Ok(fd)
    }

    /// Removes `res_id` (`RESOURCE_UNREF`). Users holding the memory keep it alive.
    pub fn remove(&self, res_id: u32) -> Option<Resource> {
        self.write().remove(&res_id)
    }

    /// The resource `res_id`.
    pub fn get(&self, res_id: u32) -> Result<Resource, ResourceError> {
        self.read()
            .get(&res_id)
            .cloned()
            .ok_or(ResourceError::Unknown(res_id))
    }

    /// The memory of `res_id`, which must be plain shared memory (`blob_id` 0): what rings,
    /// reply streams and indirect command streams live in.
    pub fn shmem(&self, res_id: u32) -> Result<Arc<SharedMemory>, ResourceError> {
        let map = self.read();
        let r = map.get(&res_id).ok_or(ResourceError::Unknown(res_id))?;
        match r.kind {
            ResourceKind::Shmem => Ok(Arc::clone(&r.shm)),
            kind => Err(ResourceError::NotShmem { res_id, kind }),
        }
    }

    /// Every live device-memory blob (`res_id`, memory): what recording snapshots.
    pub fn device_memory(&self) -> Vec<(u32, Arc<SharedMemory>)> {
        let mut v: Vec<_> = self
            .read()
            .iter()
            .filter(|(_, r)| matches!(r.kind, ResourceKind::DeviceMemory { .. }))
            .map(|(&id, r)| (id, Arc::clone(&r.shm)))
            .collect();
        v.sort_by_key(|(id, _)| *id);
        v
    }

    /// Number of live resources.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Removes every resource (context teardown).
    pub fn clear(&self) {
        let old = std::mem::take(&mut *self.write());
        drop(old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shmem_params(res_id: u32, size: u64) -> BlobParams {
        BlobParams {
            res_id,
            blob_type: blob_type::HOST3D,
            flags: blob_flags::MAPPABLE,
            size,
            blob_id: 0,
        }
    }

    #[test]
    fn create_lookup_unref() {
        let t = ResourceTable::new();
        let fd = t.create_shmem(&shmem_params(1, 131268)).unwrap();
        assert_eq!(
            rustix::fs::fstat(&fd).unwrap().st_size as u64 % 4096,
            0,
            "page-rounded memfd"
        );
        let shm = t.shmem(1).unwrap();
        assert_eq!(shm.len(), 131268);
        assert_eq!(t.len(), 1);
        // Unref drops the table entry; our Arc keeps the memory usable.
        assert!(t.remove(1).is_some());
        assert!(matches!(t.shmem(1), Err(ResourceError::Unknown(1))));
        shm.write_from(0, b"alive").unwrap();
        let mut b = [0u8; 5];
        shm.read_into(0, &mut b).unwrap();
        assert_eq!(&b, b"alive");
        assert!(t.remove(1).is_none());
    }

    #[test]
    fn validation() {
        let t = ResourceTable::new();
        let mut p = shmem_params(1, 4096);
        p.blob_type = blob_type::GUEST;
        assert!(matches!(
            t.create_shmem(&p),
            Err(ResourceError::UnsupportedType(1))
        ));
        let mut p = shmem_params(1, 4096);
        p.flags = 0;
        assert!(matches!(
            t.create_shmem(&p),
            Err(ResourceError::ShmemFlags(0))
        ));
        p.flags = blob_flags::MAPPABLE | blob_flags::CROSS_DEVICE;
        assert!(matches!(
            t.create_shmem(&p),
            Err(ResourceError::ShmemFlags(5))
        ));
        p.flags = 0x10 | blob_flags::MAPPABLE;
        assert!(matches!(
            t.create_shmem(&p),
            Err(ResourceError::UnknownFlags(0x11))
        ));
        p.flags = blob_flags::MAPPABLE | blob_flags::SHAREABLE;
        assert!(t.create_shmem(&p).is_ok());
        assert!(matches!(
            t.create_shmem(&p),
            Err(ResourceError::Duplicate(1))
        ));
        assert!(matches!(
            t.create_shmem(&shmem_params(0, 16)),
            Err(ResourceError::ZeroId)
        ));
        assert!(!t.is_empty());
        t.clear();
        assert!(t.is_empty());
    }

    #[test]
    fn device_memory_is_not_shmem() {
        let t = ResourceTable::new();
        let shm = Arc::new(SharedMemory::new(4096).unwrap());
        t.insert_with_fd(
            7,
            Resource {
                shm,
                kind: ResourceKind::DeviceMemory { blob_id: 0x99 },
            },
        )
        .unwrap();
        assert!(t.get(7).is_ok());
        let e = t.shmem(7).unwrap_err();
        assert!(e.to_string().contains("not plain shared memory"), "{e}");
    }
}
