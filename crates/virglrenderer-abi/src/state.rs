//! The process-wide renderer behind the C ABI: the [`Renderer`], the contexts by `ctx_id`,
//! the resources by `res_id` (virglrenderer's resource ids are global, not per context), and
//! the [`FenceSink`].
//!
//! Locking: [`STATE`] guards the tables and is held only for lookups and table edits (never
//! while a Venus stream executes, a context is dropped or a callback runs). Each context has
//! its own mutex (the core's `Context` is driven by one thread at a time).
//!
//! Blob resources live in their context's core resource table (`Context::create_blob`, the
//! vtest path's shared memory); the global table keeps an `Arc` of the same
//! [`SharedMemory`] so `resource_map` hands the VMM our mapping.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tracing::{info, warn};
use venus_renderer::shm::SharedMemory;
use venus_renderer::{BlobParams, Context, ContextInfo, Renderer};

use crate::fences::{lock, FenceSink};
use crate::twod::Plain;

/// Errors of the ABI layer; each maps to an errno for the VMM.
#[derive(Debug, thiserror::Error)]
pub enum AbiError {
    #[error("virgl_renderer_init has not been called")]
    NotInitialized,
    #[error("virgl_renderer_init called twice without cleanup")]
    AlreadyInitialized,
    #[error("context {0} does not exist")]
    NoContext(u32),
    #[error("context {0} already exists")]
    ContextExists(u32),
    #[error("resource {0} does not exist")]
    NoResource(u32),
    #[error("resource {0} already exists")]
    ResourceExists(u32),
    #[error("resource {0} is not a mappable blob")]
    NotMappable(u32),
    #[error("capset {0} is not served (only Venus = 4)")]
    Capset(u32),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NoMemory(String),
    #[error("panic in {0}")]
    Panic(&'static str),
}

impl AbiError {
    /// The errno the VMM sees (positive).
    pub fn errno(&self) -> i32 {
        match self {
            Self::NoMemory(_) => libc_errno::ENOMEM,
            Self::NotInitialized | Self::AlreadyInitialized => libc_errno::EBUSY,
            Self::Panic(_) => libc_errno::EIO,
            _ => libc_errno::EINVAL,
        }
    }
}

/// The errno values used here (Linux numbering).
pub mod libc_errno {
    pub const EIO: i32 = 5;
    pub const ENOMEM: i32 = 12;
    pub const EBUSY: i32 = 16;
    pub const EINVAL: i32 = 22;
}

/// A context and the flag its completions read to stop reporting fences once it is destroyed.
#[derive(Debug)]
pub struct CtxSlot {
    pub ctx: Mutex<Context>,
    pub destroyed: Arc<AtomicBool>,
}

/// A resource of the global table.
#[derive(Debug)]
pub enum Res {
    /// A blob of context `ctx_id` (in that context's core table too) of `size` bytes (what the
    /// VMM asked for; at most `shm.mapped_len()`).
    Blob {
        ctx_id: u32,
        shm: Arc<SharedMemory>,
        size: u64,
    },
    /// A plain resource or a GUEST blob (guest pages only).
    Plain(Plain),
}

/// See the module doc.
#[derive(Debug)]
pub struct Global {
    pub flags: i32,
    pub renderer: Renderer,
    pub fences: Arc<FenceSink>,
    pub contexts: HashMap<u32, Arc<CtxSlot>>,
    pub resources: HashMap<u32, Res>,
}

/// The renderer, between `virgl_renderer_init` and `virgl_renderer_cleanup`.
pub static STATE: Mutex<Option<Global>> = Mutex::new(None);

/// Runs `f` on the initialized state.
pub fn with<T>(f: impl FnOnce(&mut Global) -> Result<T, AbiError>) -> Result<T, AbiError> {
    let mut g = lock(&STATE);
    let g = g.as_mut().ok_or(AbiError::NotInitialized)?;
    f(g)
}

/// The context `ctx_id`.
pub fn context(ctx_id: u32) -> Result<Arc<CtxSlot>, AbiError> {
    with(|g| {
        g.contexts
            .get(&ctx_id)
            .cloned()
            .ok_or(AbiError::NoContext(ctx_id))
    })
}

impl Global {
    /// A new Venus context `ctx_id`.
    pub fn create_context(&mut self, ctx_id: u32, name: String) -> Result<(), AbiError> {
        if self.contexts.contains_key(&ctx_id) {
            return Err(AbiError::ContextExists(ctx_id));
        }
        let ctx = self
            .renderer
            .create_context(ContextInfo {
                id: u64::from(ctx_id),
                name,
            })
            .map_err(|e| AbiError::Invalid(format!("creating context {ctx_id}: {e}")))?;
        info!(ctx_id, "context created");
        self.contexts.insert(
            ctx_id,
            Arc::new(CtxSlot {
                ctx: Mutex::new(ctx),
                destroyed: Arc::new(AtomicBool::new(false)),
            }),
        );
        Ok(())
    }

    /// Takes context `ctx_id` out of the table (the caller drops it outside the lock: teardown
    /// joins threads). Its blobs stay in the global table until unreferenced, as resources
    /// outlive contexts in virglrenderer (QEMU unmaps and unrefs them afterwards); their
    /// memory stays valid through the table's `Arc`.
    pub fn take_context(&mut self, ctx_id: u32) -> Option<Arc<CtxSlot>> {
        let slot = self.contexts.remove(&ctx_id)?;
        slot.destroyed.store(true, Ordering::Release);
        Some(slot)
    }

    /// Every context, taken out (reset / cleanup), and every resource forgotten.
    pub fn take_all(&mut self) -> Vec<Arc<CtxSlot>> {
        let ids: Vec<u32> = self.contexts.keys().copied().collect();
        let slots = ids
            .into_iter()
            .filter_map(|id| self.take_context(id))
            .collect();
        self.resources.clear();
        self.fences.clear();
        slots
    }
}

/// Drops contexts taken out of the table (joins their threads), outside [`STATE`].
pub fn drop_contexts(slots: Vec<Arc<CtxSlot>>) {
    for slot in slots {
        match Arc::try_unwrap(slot) {
            Ok(slot) => drop(slot.ctx.into_inner().unwrap_or_else(|e| e.into_inner())),
            // A concurrent call still holds it: it drops the context when it returns.
            Err(_) => warn!("a context is still in use during its destruction"),
        }
    }
}

/// Creates a blob of context `ctx_id` in the core and records it. Device-memory blobs
/// (`blob_id` != 0) may be page-rounded by the guest kernel: the core accepts any size within
/// the backing's mapping.
pub fn create_blob(ctx_id: u32, params: BlobParams) -> Result<(), AbiError> {
    let slot = context(ctx_id)?;
    let (res_id, size) = (params.res_id, params.size);
    with(|g| match g.resources.contains_key(&res_id) {
        true => Err(AbiError::ResourceExists(res_id)),
        false => Ok(()),
    })?;
    let shm = {
        let mut ctx = lock(&slot.ctx);
        // The core returns the client's fd (vtest sends it); a VMM maps our mapping instead.
        drop(ctx.create_blob(&params).map_err(|e| match e {
            venus_renderer::ResourceError::Shm { .. } => AbiError::NoMemory(e.to_string()),
            _ => AbiError::Invalid(e.to_string()),
        })?);
        let shm = ctx
            .resource(res_id)
            .ok_or(AbiError::NoResource(res_id))?
            .shm;
        if size > shm.mapped_len() {
            ctx.unref(res_id);
            return Err(AbiError::Invalid(format!(
                "blob {res_id} of {size} bytes: the memory has {} bytes",
                shm.mapped_len()
            )));
        }
        shm
    };
    with(|g| {
        g.resources.insert(res_id, Res::Blob { ctx_id, shm, size });
        Ok(())
    })
}

/// The state lock itself (init / cleanup).
pub fn lock_state() -> std::sync::MutexGuard<'static, Option<Global>> {
    lock(&STATE)
}
