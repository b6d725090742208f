//! Per-context resource limits: what one client may take from the host.
//!
//! Clients are untrusted (VM guests, sandboxed apps): a client may only ever hurt itself. Every
//! resource a client can make the host allocate has a per-context ceiling in [`Limits`], chosen
//! by the transport (`venus-server --config FILE` / `--max-*` flags; the VMM library uses
//! [`Limits::default`]) and handed to each context at creation
//! ([`crate::Renderer::with_limits`]). Who enforces what:
//!
//! - the core (this crate): shared memory ([`ShmBudget`]: bytes and objects of every
//!   [`crate::shm::SharedMemory`] of the context: blobs, rings, reply/command streams and the
//!   HOST_VISIBLE device memory the dispatch layer creates through
//!   [`crate::ResourceTable::create_memory`]), the ring count and the ring buffer size
//!   (`vkCreateRingMESA`);
//! - the transport: blob size and the number of live resources (`RESOURCE_CREATE_BLOB`);
//! - the dispatch layer (through [`crate::DispatchCx::limits`]): device memory (sum of the live
//!   `vkAllocateMemory` sizes) and live host objects; it also reads
//!   [`Limits::robust_access`] (robust access on every host device) from there.
//!
//! Every check runs **before** the host allocates. What a client gets when it hits one:
//! a Vulkan error where the command has a reply (`VK_ERROR_OUT_OF_DEVICE_MEMORY`,
//! `VK_ERROR_OUT_OF_HOST_MEMORY`, `VK_ERROR_TOO_MANY_OBJECTS`), the failed-blob answer for
//! `RESOURCE_CREATE_BLOB`, otherwise the context is lost. The message ([`LimitExceeded`]) names
//! the limit, its value, the config key and the flag that set it.
//!
//! Defaults ([`Limits::default`], documented in `docs/limits.md`): generous enough for every
//! real application we run (vkcube, zink, wgpu, the test programs) and small enough that one
//! context cannot take the host's memory, fds or mappings.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// 1 GiB.
const GIB: u64 = 1 << 30;

/// The per-context limits (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of device memory: the sum of the live `vkAllocateMemory` sizes, all heaps.
    pub max_device_memory: u64,
    /// Bytes of shared memory: blobs, rings, reply/command streams, HOST_VISIBLE memory.
    pub max_shared_memory: u64,
    /// Live shared-memory objects (each is one fd and one mapping of the server process).
    pub max_shared_memory_objects: u64,
    /// Live host objects (instance, devices, every device child).
    pub max_objects: u64,
    /// Bytes of one ring's command buffer (`VkRingCreateInfoMESA::bufferSize`).
    pub max_ring_size: u64,
    /// Live rings.
    pub max_rings: u64,
    /// Bytes of one blob (`RESOURCE_CREATE_BLOB` size).
    pub max_blob_size: u64,
    /// Live resources (blob ids) of the connection.
    pub max_resources: u64,
    /// Whether every host device is created with robust buffer/image access (config key
    /// `robust_access`, `--no-robust-access` turns it off; default on). Not a limit but a
    /// per-context protection: out-of-range shader accesses must not reach server memory
    /// (`venus-dispatch/src/robust.rs`, `docs/robustness.md`).
    pub robust_access: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_device_memory: 8 * GIB,
            max_shared_memory: 8 * GIB,
            max_shared_memory_objects: 4096,
            max_objects: 1 << 18,
            max_ring_size: crate::ring::MAX_RING_BUFFER_SIZE,
            max_rings: 64,
            max_blob_size: 8 * GIB,
            max_resources: 8192,
            robust_access: true,
        }
    }
}

impl Limits {
    /// The value of `limit`.
    pub fn get(&self, limit: Limit) -> u64 {
        match limit {
            Limit::DeviceMemory => self.max_device_memory,
            Limit::SharedMemory => self.max_shared_memory,
            Limit::SharedMemoryObjects => self.max_shared_memory_objects,
            Limit::Objects => self.max_objects,
            Limit::RingSize => self.max_ring_size,
            Limit::Rings => self.max_rings,
            Limit::BlobSize => self.max_blob_size,
            Limit::Resources => self.max_resources,
        }
    }

    /// Sets `limit` to `value`.
    pub fn set(&mut self, limit: Limit, value: u64) {
        let slot = match limit {
            Limit::DeviceMemory => &mut self.max_device_memory,
            Limit::SharedMemory => &mut self.max_shared_memory,
            Limit::SharedMemoryObjects => &mut self.max_shared_memory_objects,
            Limit::Objects => &mut self.max_objects,
            Limit::RingSize => &mut self.max_ring_size,
            Limit::Rings => &mut self.max_rings,
            Limit::BlobSize => &mut self.max_blob_size,
            Limit::Resources => &mut self.max_resources,
        };
        *slot = value;
    }

    /// `Err` when `in_use + requested` would exceed `limit` (overflow counts as exceeding).
    pub fn check(&self, limit: Limit, in_use: u64, requested: u64) -> Result<(), LimitExceeded> {
        let max = self.get(limit);
        match in_use.checked_add(requested) {
            Some(total) if total <= max => Ok(()),
            _ => Err(LimitExceeded {
                limit,
                max,
                in_use,
                requested,
            }),
        }
    }
}

/// One of the [`Limits`]: its config key, flag and unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// [`Limits::max_device_memory`].
    DeviceMemory,
    /// [`Limits::max_shared_memory`].
    SharedMemory,
    /// [`Limits::max_shared_memory_objects`].
    SharedMemoryObjects,
    /// [`Limits::max_objects`].
    Objects,
    /// [`Limits::max_ring_size`].
    RingSize,
    /// [`Limits::max_rings`].
    Rings,
    /// [`Limits::max_blob_size`].
    BlobSize,
    /// [`Limits::max_resources`].
    Resources,
}

impl Limit {
    /// Every limit, in documentation order.
    pub const ALL: [Limit; 8] = [
        Limit::DeviceMemory,
        Limit::SharedMemory,
        Limit::SharedMemoryObjects,
        Limit::Objects,
        Limit::RingSize,
        Limit::Rings,
        Limit::BlobSize,
        Limit::Resources,
    ];

    /// The config-file key (`max_device_memory`).
    pub fn key(self) -> &'static str {
        match self {
            Limit::DeviceMemory => "max_device_memory",
            Limit::SharedMemory => "max_shared_memory",
            Limit::SharedMemoryObjects => "max_shared_memory_objects",
            Limit::Objects => "max_objects",
            Limit::RingSize => "max_ring_size",
            Limit::Rings => "max_rings",
            Limit::BlobSize => "max_blob_size",
            Limit::Resources => "max_resources",
        }
    }

    /// The command-line flag (`--max-device-memory`).
    pub fn flag(self) -> String {
        format!("--{}", self.key().replace('_', "-"))
    }

    /// Whether the value is a byte count (else a count of things).
    pub fn is_bytes(self) -> bool {
        matches!(
            self,
            Limit::DeviceMemory | Limit::SharedMemory | Limit::RingSize | Limit::BlobSize
        )
    }

    /// What is limited, for messages.
    pub fn what(self) -> &'static str {
        match self {
            Limit::DeviceMemory => "device memory of the context (bytes)",
            Limit::SharedMemory => "shared memory of the context (bytes)",
            Limit::SharedMemoryObjects => "shared-memory objects of the context",
            Limit::Objects => "live host objects of the context",
            Limit::RingSize => "ring buffer size (bytes)",
            Limit::Rings => "rings of the context",
            Limit::BlobSize => "blob size (bytes)",
            Limit::Resources => "resources of the connection",
        }
    }
}

/// A request that would exceed a limit. Its message names the limit, its value, the config
/// key and the flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LimitExceeded {
    /// Which limit.
    pub limit: Limit,
    /// Its value.
    pub max: u64,
    /// What the context had.
    pub in_use: u64,
    /// What it asked for.
    pub requested: u64,
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "limit exceeded: {}: {} in use + {} requested > {} (config key `{}`, flag `{}`)",
            self.limit.what(),
            self.in_use,
            self.requested,
            self.max,
            self.limit.key(),
            self.limit.flag()
        )
    }
}

/// A context's shared-memory account: bytes and objects of its live shared memory, charged
/// before the memory is created ([`ShmBudget::charge`]) and released when the memory goes
/// (the [`Charge`] lives in the [`crate::shm::SharedMemory`]).
#[derive(Debug)]
pub struct ShmBudget {
    limits: Limits,
    bytes: AtomicU64,
    objects: AtomicU64,
    warned: AtomicBool,
}

impl ShmBudget {
    /// An empty account under `limits`.
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(ShmBudget {
            limits,
            bytes: AtomicU64::new(0),
            objects: AtomicU64::new(0),
            warned: AtomicBool::new(false),
        })
    }

    /// The limits it enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Bytes charged now.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Acquire)
    }

    /// Objects charged now.
    pub fn objects(&self) -> u64 {
        self.objects.load(Ordering::Acquire)
    }

    /// Charges one object of `bytes` bytes, or fails without charging anything.
    pub fn charge(self: &Arc<Self>, bytes: u64) -> Result<Charge, LimitExceeded> {
        let objects = self.objects.fetch_add(1, Ordering::AcqRel);
        if let Err(e) = self.limits.check(Limit::SharedMemoryObjects, objects, 1) {
            self.objects.fetch_sub(1, Ordering::AcqRel);
            return Err(e);
        }
        let before = self.bytes.fetch_add(bytes, Ordering::AcqRel);
        if let Err(e) = self.limits.check(Limit::SharedMemory, before, bytes) {
            self.bytes.fetch_sub(bytes, Ordering::AcqRel);
            self.objects.fetch_sub(1, Ordering::AcqRel);
            return Err(e);
        }
        Ok(Charge {
            budget: Arc::clone(self),
            bytes,
        })
    }

    /// True the first time it is called: callers log the first refusal at WARN and later ones
    /// at DEBUG (a client looping on a failing allocation must not flood the log).
    pub fn first_refusal(&self) -> bool {
        !self.warned.swap(true, Ordering::AcqRel)
    }
}

/// Bytes and one object charged to a [`ShmBudget`]; released on drop.
#[derive(Debug)]
pub struct Charge {
    budget: Arc<ShmBudget>,
    bytes: u64,
}

impl Charge {
    /// The bytes charged.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.bytes.fetch_sub(self.bytes, Ordering::AcqRel);
        self.budget.objects.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_are_checked_before_and_released_on_drop() {
        let limits = Limits {
            max_shared_memory: 10_000,
            max_shared_memory_objects: 2,
            ..Limits::default()
        };
        let b = ShmBudget::new(limits);
        let c1 = b.charge(6000).unwrap();
        let e = b.charge(6000).unwrap_err();
        assert_eq!(e.limit, Limit::SharedMemory);
        assert_eq!((e.in_use, e.requested, e.max), (6000, 6000, 10_000));
        assert_eq!(
            (b.bytes(), b.objects()),
            (6000, 1),
            "a refusal charges nothing"
        );
        let c2 = b.charge(4000).unwrap();
        let e = b.charge(0).unwrap_err();
        assert_eq!(e.limit, Limit::SharedMemoryObjects);
        assert_eq!(
            e.to_string(),
            "limit exceeded: shared-memory objects of the context: 2 in use + 1 requested > 2 \
             (config key `max_shared_memory_objects`, flag `--max-shared-memory-objects`)"
        );
        drop((c1, c2));
        assert_eq!((b.bytes(), b.objects()), (0, 0));
        assert!(b.charge(u64::MAX).is_err(), "overflow is a refusal");
        assert!(b.first_refusal());
        assert!(!b.first_refusal());
    }

    #[test]
    fn keys_and_flags() {
        let mut l = Limits::default();
        for (i, limit) in Limit::ALL.into_iter().enumerate() {
            l.set(limit, i as u64 + 1);
            assert_eq!(l.get(limit), i as u64 + 1);
            assert_eq!(limit.flag(), format!("--{}", limit.key().replace('_', "-")));
        }
        assert_eq!(Limit::DeviceMemory.flag(), "--max-device-memory");
        assert!(l.check(Limit::Rings, 5, 1).is_ok());
        assert!(l.check(Limit::Rings, 6, 1).is_err());
    }
}
