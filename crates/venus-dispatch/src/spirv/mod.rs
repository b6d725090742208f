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

/// Test data shared by the SPIR-V and pipeline tests.
#[cfg(test)]
pub(crate) mod testdata {
    /// Little-endian SPIR-V bytes as words.
    pub(crate) fn words(bytes: &[u8]) -> Vec<u32> {
        bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    /// A compiled shader of the test programs (`crates/venus-testapps/shaders/`), as words.
    macro_rules! testapp_shader {
        ($name:literal) => {
            $crate::spirv::testdata::words(include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../venus-testapps/shaders/",
                $name
            )))
        };
    }
    pub(crate) use testapp_shader;
}
