//! venus-rs transport layer: a drop-in replacement for virglrenderer's
//! `virgl_test_server --venus`, the vtest UNIX-socket server that stock Mesa's Venus driver
//! (`libvulkan_virtio.so` with `VN_DEBUG=vtest`) connects to.
//!
//! - [`vtest`]: the protocol ([`vtest::protocol`]), the per-connection state machine and its
//!   error policy ([`vtest::conn`]), the sync table ([`vtest::sync`]) and the
//!   [`vtest::Backend`] / [`vtest::ContextBackend`] traits that decouple the transport from
//!   the renderer;
//! - [`server`]: the socket listener, one thread per connection, clean shutdown;
//! - [`capset`]: the Venus capset and timeline count, re-exported from the core
//!   (`venus_renderer::capset`);
//! - [`renderer`]: the real backend, [`renderer::RendererBackend`]: `venus-renderer`
//!   contexts (rings, reply streams, dispatch) behind the transport traits;
//! - [`config`]: the per-context limits from defaults, `--config FILE` (TOML) and `--max-*`
//!   flags;
//! - [`profile`]: host profiles (`--profile linux|apple`): page size, shared-memory backing,
//!   forced WSI emulation;
//! - [`stub`]: a backend that records instead of rendering (transport tests, `--stub`);
//! - `sys`: platform code (eventfd/memfd on Linux, pipe/shm_open elsewhere).
//!
//! No `unsafe` here: sockets, `SCM_RIGHTS`, eventfd and memfd all go through `rustix`.

#![forbid(unsafe_code)]

pub mod capset;
pub mod config;
pub mod profile;
pub mod renderer;
pub mod server;
pub mod stub;
pub mod sys;
pub mod vtest;

pub use server::{ClientPolicy, Server, ServerConfig, ServerError, ShutdownHandle};
