//! `libvirglrenderer.so.1` for VMMs (QEMU's `virtio-gpu-gl` with `venus=on`, libkrun,
//! crosvm): virglrenderer's C ABI (public header of virglrenderer 1.1.0, callbacks version 4),
//! Venus only, over the venus-rs core ([`venus_renderer`]) and Vulkan dispatch
//! ([`venus_dispatch`]).
//!
//! - [`ffi`]: the C structs (`#[repr(C)]`, layout asserted) and constants;
//! - [`state`]: the process-wide renderer: contexts and resources by id;
//! - [`fences`]: ctx0 and per-context fences to the VMM's callbacks (poll or async);
//! - [`twod`]: plain resources for the guest console;
//! - [`api`], [`api_res`]: the exported functions; [`guard`]: every body under
//!   `catch_unwind`, errors and panics become an error return.
//!
//! The header is `include/virglrenderer.h`; `docs/vmm-library.md` says how a VMM uses it.

pub mod api;
pub mod api_res;
pub mod fences;
pub mod ffi;
pub mod guard;
pub mod state;
mod sys;
pub mod twod;
