//! The real backend: `venus-renderer` contexts behind the vtest transport.
//!
//! Dependency direction: `venus-server` -> `venus-renderer` (never the reverse). The
//! renderer knows nothing of vtest; this module implements the transport's [`Backend`] /
//! [`ContextBackend`] traits over [`venus_renderer::Renderer`] / [`venus_renderer::Context`],
//! reporting the core's Venus capset and timeline count ([`venus_renderer::capset`]).
//!
//! Submissions: a `SUBMIT_CMD2` batch is executed synchronously by the context, which then
//! completes it on its fence timeline ([`venus_renderer::timeline`]): ring_idx 0 at once,
//! ring_idx k bound to a queue from the timeline's retire thread once the host finished the
//! queue's work, an unbound k at once. The vtest [`Completion`] is dropped (its syncs
//! signalled) by that callback, whether the batch completed or was lost (vtest signals
//! either way, like a kernel signals the fences of a lost context).
//!
//! The connection's hang-up check ([`ContextBackend::set_peer_check`]) goes to
//! [`Context::set_peer_check`], so that a dispatch blocked on the connection thread gives up
//! when the client disconnects.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use tracing::info;
use venus_renderer::{
    BlobParams, Completed, Context, ContextInfo as RendererContextInfo, DispatchFactory,
    NullDispatch, Renderer, ResourceError,
};

use crate::capset::{VenusCapset, VENUS_CAPSET_ID, VENUS_CAPSET_VERSION};
use crate::vtest::{
    Backend, BackendError, BlobRequest, Completion, ContextBackend, ContextInfo, PeerCheck,
};

/// `GET_PARAM(MAX_TIMELINE_COUNT)` answer: the core's timeline count.
pub use venus_renderer::capset::MAX_TIMELINE_COUNT;

/// [`Backend`] over a [`Renderer`].
#[derive(Debug, Clone)]
pub struct RendererBackend {
    renderer: Renderer,
    capset: Vec<u32>,
}

impl RendererBackend {
    /// Contexts dispatch through `factory` (the Vulkan layer).
    pub fn new(factory: Arc<dyn DispatchFactory>) -> Self {
        Self {
            renderer: Renderer::new(factory),
            capset: VenusCapset::for_protocol().to_dwords().to_vec(),
        }
    }

    /// Shared memory is rounded to `bytes` (the host page-size profile).
    pub fn with_page_size(mut self, bytes: u64) -> Self {
        self.renderer = self.renderer.with_page_size(bytes);
        self
    }

    /// Every context gets these per-context limits (`--config`, `--max-*`).
    pub fn with_limits(mut self, limits: venus_renderer::Limits) -> Self {
        self.renderer = self.renderer.with_limits(limits);
        self
    }

    /// Shared memory is created with `backing` (`--shm-backing`, the host profile).
    pub fn with_shm_backing(mut self, backing: venus_renderer::shm::ShmBacking) -> Self {
        self.renderer = self.renderer.with_shm_backing(backing);
        self
    }

    /// Every context is recorded into `sink` (`--record`, see [`venus_renderer::record`]).
    pub fn with_recording(mut self, sink: Arc<venus_renderer::record::RecordSink>) -> Self {
        self.renderer = self.renderer.with_recording(sink);
        self
    }

    /// Contexts dispatch through a [`NullDispatch`] (no Vulkan: answers
    /// `vkEnumerateInstanceVersion`, makes the context fatal on anything else). Returns the
    /// dispatch too, whose log shows what the clients sent.
    pub fn with_null_dispatch() -> (Self, NullDispatch) {
        let null = NullDispatch::new();
        (Self::new(Arc::new(null.clone())), null)
    }
}

impl Backend for RendererBackend {
    type Context = RendererContext;

    fn capset(&self, id: u32, version: u32) -> Option<Vec<u32>> {
        (id == VENUS_CAPSET_ID && version == VENUS_CAPSET_VERSION).then(|| self.capset.clone())
    }

    fn max_timeline_count(&self) -> u32 {
        MAX_TIMELINE_COUNT
    }

    fn create_context(&self, info: ContextInfo<'_>) -> Result<RendererContext, BackendError> {
        let ctx = self
            .renderer
            .create_context(RendererContextInfo {
                id: info.conn_id,
                name: info.name.to_owned(),
            })
            .map_err(|e| BackendError::Unsupported(format!("creating the dispatch: {e}")))?;
        info!(conn = info.conn_id, "renderer context created");
        Ok(RendererContext { ctx })
    }
}

/// [`ContextBackend`] over a [`Context`].
#[derive(Debug)]
pub struct RendererContext {
    ctx: Context,
}

impl RendererContext {
    /// The renderer context.
    pub fn context(&self) -> &Context {
        &self.ctx
    }
}

fn blob_error(e: ResourceError) -> BackendError {
    match e {
        ResourceError::UnsupportedType(_)
        | ResourceError::ShmemFlags(_)
        | ResourceError::Export { .. } => BackendError::Unsupported(e.to_string()),
        ResourceError::Shm { .. } | ResourceError::Limit { .. } => {
            BackendError::ResourceLimit(e.to_string())
        }
        _ => BackendError::Invalid(e.to_string()),
    }
}

impl ContextBackend for RendererContext {
    fn init(&mut self, capset_id: u32) -> Result<(), BackendError> {
        if capset_id != VENUS_CAPSET_ID {
            return Err(BackendError::Unsupported(format!(
                "capset {capset_id} (only Venus = {VENUS_CAPSET_ID})"
            )));
        }
        Ok(())
    }

    fn create_blob(&mut self, req: &BlobRequest) -> Result<OwnedFd, BackendError> {
        self.ctx
            .create_blob(&BlobParams {
                res_id: req.res_id,
                blob_type: req.blob_type,
                flags: req.flags,
                size: req.size,
                blob_id: req.blob_id,
            })
            .map_err(blob_error)
    }

    fn unref(&mut self, res_id: u32) {
        self.ctx.unref(res_id);
    }

    fn submit(
        &mut self,
        ring_idx: u32,
        commands: &[u8],
        completion: Completion,
    ) -> Result<(), BackendError> {
        // Signalled (or lost): vtest signals the batch's syncs either way.
        let done = Box::new(move |_: Completed| drop(completion));
        self.ctx
            .submit(ring_idx, commands, done)
            .map_err(|e| BackendError::Fatal(e.to_string()))
    }

    fn is_fatal(&self) -> bool {
        self.ctx.is_fatal()
    }

    fn mark_fatal(&mut self, reason: &str) {
        self.ctx.mark_fatal(reason);
    }

    fn set_peer_check(&mut self, check: PeerCheck) {
        self.ctx.set_peer_check(check);
    }
}
