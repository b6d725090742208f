//! The process-wide renderer: a factory of [`Context`]s, one per client connection.
//!
//! Transports (the vtest server, later a C ABI for VMMs) own one `Renderer` and call
//! [`Renderer::create_context`] per connection; the context is then driven by that
//! connection's thread alone. The renderer holds the [`DispatchFactory`] (the Vulkan layer's
//! process-wide state) and nothing mutable: creating contexts takes no lock of ours.
//!
//! Protocol-level facts every transport reports (the Venus capset, the timeline count) live in
//! [`crate::capset`]; this crate depends on no transport.

use std::fmt;
use std::sync::Arc;

use crate::context::Context;
use crate::dispatch::{ContextInfo, DispatchError, DispatchFactory};
use crate::limits::Limits;
use crate::record::RecordSink;
use crate::shm::{ShmBacking, ShmConfig};

/// See the module doc.
#[derive(Clone)]
pub struct Renderer {
    factory: Arc<dyn DispatchFactory>,
    shm: ShmConfig,
    limits: Limits,
    record: Option<Arc<RecordSink>>,
}

impl fmt::Debug for Renderer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Renderer").finish_non_exhaustive()
    }
}

impl Renderer {
    /// A renderer whose contexts dispatch through `factory`'s per-context [`crate::Dispatch`].
    pub fn new(factory: Arc<dyn DispatchFactory>) -> Self {
        Self {
            factory,
            shm: ShmConfig::default(),
            limits: Limits::default(),
            record: None,
        }
    }

    /// Every new context gets these per-context limits (see [`crate::limits`]).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The per-context limits of new contexts.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Shared memory of every context is rounded to `bytes` (a power of two; the host
    /// page-size profile, `--host-page-size`).
    pub fn with_page_size(mut self, bytes: u64) -> Self {
        self.shm.granule = bytes;
        self
    }

    /// Shared memory of every context is created with `backing` (`--shm-backing`).
    pub fn with_shm_backing(mut self, backing: ShmBacking) -> Self {
        self.shm.backing = backing;
        self
    }

    /// Every new context is recorded into `sink` (`venus-server --record`, see
    /// [`crate::record`]).
    pub fn with_recording(mut self, sink: Arc<RecordSink>) -> Self {
        self.record = Some(sink);
        self
    }

    /// The shared-memory configuration of new contexts.
    pub fn shm_config(&self) -> ShmConfig {
        self.shm
    }

    /// A new context for connection `info.id`.
    pub fn create_context(&self, info: ContextInfo) -> Result<Context, DispatchError> {
        let dispatch = self.factory.create_dispatch(&info)?;
        let recorder = self.record.as_ref().and_then(|sink| {
            sink.open(&info, self.shm.granule)
                .map_err(|e| {
                    tracing::error!(
                        ctx = info.id,
                        dir = %sink.dir().display(),
                        "cannot record this context: {e}"
                    );
                })
                .ok()
        });
        Ok(Context::build(
            info,
            dispatch,
            self.shm,
            self.limits,
            recorder,
        ))
    }
}
