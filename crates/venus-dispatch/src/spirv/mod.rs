//! SPIR-V: what the server checks in shader modules before a driver compiles them.
//!
//! - [`validate`]: well-formedness, by SPIRV-Tools' `spirv-val` in a child process (the
//!   generator's `SpirvModule` rule on `VkShaderModuleCreateInfo.pCode`);
//! - [`interface`]: our own small reflection of each entry point's resource interface (the
//!   descriptor set/binding/kind/count of every resource variable it statically uses), which
//!   the dispatch layer (`pipelines.rs`) checks against the pipeline layout at pipeline
//!   creation.

pub mod interface;
mod validate;

pub use validate::{check, validator, Validator};
