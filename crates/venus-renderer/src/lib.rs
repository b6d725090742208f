//! venus-rs core layer: contexts, shared-memory resources, rings and reply streams.
//!
//! - [`shm`]: the one audited module that touches shared memory: [`shm::SharedMemory`]
//!   (memfd / POSIX shm + our mapping), bounds-checked copies and atomics, [`shm::Region`]s
//!   for rings and reply windows. All `unsafe` for mapped memory lives in `shm/mapping.rs`.
//! - [`limits`]: the per-context [`Limits`] (shared memory, rings, blobs, device memory, host
//!   objects) and the shared-memory account every context charges before allocating.
//! - [`resources`]: the per-context table `res_id` -> shared memory (blobs).
//! - [`reply`]: a channel's reply stream (bounds-checked window + position).
//! - [`dispatch`]: the [`Dispatch`] trait through which every non-transport command reaches
//!   the Vulkan layer, with its [`DispatchCx`]; [`null_dispatch`] is a Vulkan-less
//!   implementation (answers `vkEnumerateInstanceVersion`, fails everything else cleanly).
//! - `exec` (private): decoding and executing command streams, the transport commands,
//!   `vkExecuteCommandStreamsMESA`.
//! - [`ring`]: ring layout validation and the ring threads (head/tail/IDLE/FATAL protocol).
//! - [`monitor`]: the per-context ALIVE ticker.
//! - [`timeline`]: fence timelines (`SUBMIT_CMD2` `ring_idx`): queues bound by the dispatch
//!   layer, one retire thread per bound timeline that signals completions in order.
//! - [`record`]: recording a context's traffic for `venus-replay` (the format's writer and
//!   reader); [`Context::replay_command`] is the replayer's entry point.
//! - [`teardown`]: the bound on context teardown ([`TEARDOWN_BOUND`]).
//! - [`capset`]: the Venus capset and [`capset::MAX_TIMELINE_COUNT`], reported by every
//!   transport.
//! - [`context`]: [`Context`], one per client connection; [`renderer`]: [`Renderer`], the
//!   context factory.
//!
//! Threading model: see [`context`]. Transports drive a [`Context`] from one thread;
//! each ring has its own thread; a ticker thread per context keeps ALIVE set; each bound
//! timeline has a retire thread. Dropping a context takes at most [`TEARDOWN_BOUND`].

// Only `shm::mapping` may use `unsafe`; the compiler enforces it.
#![deny(unsafe_code)]

pub mod capset;
pub mod context;
pub mod dispatch;
mod exec;
pub mod limits;
pub mod monitor;
pub mod null_dispatch;
pub mod record;
pub mod renderer;
pub mod reply;
pub mod resources;
pub mod ring;
pub mod shm;
pub mod teardown;
pub mod timeline;

pub use context::{Context, ContextError};
pub use dispatch::{
    command_name, Channel, ContextInfo, Dispatch, DispatchCx, DispatchError, DispatchFactory,
    PeerCheck,
};
pub use exec::MAX_INDIRECT_STREAM_SIZE;
pub use limits::{Limit, LimitExceeded, Limits};
pub use null_dispatch::{DispatchRecord, NullDispatch, NULL_DISPATCH_API_VERSION};
pub use renderer::Renderer;
pub use reply::{ReplyError, ReplyStream};
pub use resources::{BlobParams, Resource, ResourceError, ResourceKind, ResourceTable};
pub use ring::{
    seqno_ge, LayoutError, RingLayout, MAX_RING_BUFFER_SIZE, STATUS_ALIVE, STATUS_FATAL,
    STATUS_IDLE,
};
pub use teardown::TEARDOWN_BOUND;
pub use timeline::{
    BindError, Completed, CompletionFn, Marker, TimelineError, TimelineQueue, Timelines,
    RETIRE_WAIT_SLICE,
};
