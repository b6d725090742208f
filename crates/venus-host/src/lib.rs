//! venus-rs host layer: everything that talks to the host's Vulkan driver.
//!
//! - [`loader`]: opens the Vulkan loader (`libvulkan.so.1`, `libvulkan.1.dylib`) and resolves
//!   `vkGetInstanceProcAddr`; the instance/device proc tables are generated (`generated::procs`).
//! - [`generated::vk`]: `#[repr(C)]` structs the driver reads and writes.
//! - [`heap`]: gives the C heap's free memory back to the system once a context is gone.
//! - [`lower`]: the runtime of the generated conversions: protocol values -> C structs in an
//!   arena (handle ids translated through [`lower::HandleMap`]) and filled outputs back.
//! - [`ranges`]: the range rules against recorded object sizes (buffers, images, memory,
//!   query pools) that the generated checks call.
//!
//! Calling the driver is `unsafe` by nature; callers document why each call is sound.

#[cfg(not(target_pointer_width = "64"))]
compile_error!("venus-host assumes 64-bit hosts: dispatchable and non-dispatchable handles share one ABI there");

#[rustfmt::skip]
#[allow(clippy::all, clippy::pedantic, unused_parens)]
pub mod generated;
pub mod heap;
pub mod loader;
pub mod lower;
pub mod ranges;

pub use generated::policy;
pub use generated::procs::{DeviceProcs, InstanceProcs};
pub use generated::vk;
