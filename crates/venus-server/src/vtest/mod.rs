//! The vtest transport: the UNIX-socket protocol that Mesa's `libvulkan_virtio.so` speaks with
//! `VN_DEBUG=vtest` (see `docs/spec/venus-client-contract.md` §1–§3).
//!
//! - [`protocol`]: constants, typed request parsing, response encoding (pure);
//! - [`conn`]: the per-connection state machine and the error policy;
//! - [`sync`]: the vtest sync table (`SYNC_*`) and submit [`sync::Completion`]s;
//! - [`backend`]: the traits the renderer implements.

pub mod backend;
pub mod conn;
pub mod protocol;
pub mod sync;

pub use backend::{Backend, BackendError, BlobRequest, ContextBackend, ContextInfo, PeerCheck};
pub use conn::{ConnEnd, ConnError, Limits};
pub use sync::{Completion, SyncTable};
