//! SPIR-V validation before the driver compiles a module (the generator's `SpirvModule` rule,
//! `LowerCx::set_spirv_check`).
//!
//! Drivers trust `VkShaderModuleCreateInfo.pCode` to be valid SPIR-V (VUID-VkShaderModuleCreateInfo-pCode-08737)
//! and crash on malformed modules: the `dispatch_lavapipe` fuzz target found five that killed
//! the server inside lavapipe's SPIR-V translator during `vkCreateComputePipelines`
//! (`fuzz/regressions/dispatch_lavapipe/malformed-spirv-*`). This module owns the validator:
//! SPIRV-Tools' `spirv-val`, run as a separate process per module (a validator bug cannot take
//! the server down; a module costs a few milliseconds, once, at shader creation). It is found
//! once per process: `VENUS_SPIRV_VAL` (a path, or `off` to disable validation), else
//! `spirv-val` on `PATH`; without it modules are not validated and one WARN line says so.
//!
//! The options are the Vulkan 1.3 environment with the layout rules relaxed as far as the
//! validator allows (drivers accept scalar/relaxed layouts when the features are enabled; what
//! matters here is that the module is well formed, not that every layout rule holds).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Longest a validation may take before the module is refused.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The process-wide validator, or `None` when modules are not validated.
pub fn validator() -> Option<&'static Validator> {
    static V: OnceLock<Option<Validator>> = OnceLock::new();
    V.get_or_init(Validator::find).as_ref()
}

/// `spirv-val` at a known path.
pub struct Validator {
    path: PathBuf,
}

impl Validator {
    fn find() -> Option<Self> {
        let path = match std::env::var_os("VENUS_SPIRV_VAL") {
            Some(v) if v == "off" => {
                tracing::warn!("VENUS_SPIRV_VAL=off: SPIR-V modules reach the driver unvalidated");
                return None;
            }
            Some(v) => PathBuf::from(v),
            None => match std::env::var_os("PATH").and_then(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join("spirv-val"))
                    .find(|c| c.is_file())
            }) {
                Some(p) => p,
                None => {
                    tracing::warn!(
                        "spirv-val not found (install SPIRV-Tools, or set VENUS_SPIRV_VAL): \
                         SPIR-V modules reach the driver unvalidated"
                    );
                    return None;
                }
            },
        };
        tracing::info!(path = %path.display(), "SPIR-V modules are validated");
        Some(Validator { path })
    }

    /// `Ok` when `spirv-val` accepts `code`; else its first message.
    pub fn validate(&self, code: &[u32]) -> Result<(), String> {
        let mut child = Command::new(&self.path)
            .args([
                "--target-env",
                "vulkan1.3",
                "--scalar-block-layout",
                "--skip-block-layout",
                "--allow-localsizeid",
                "-",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.path.display()))?;
        let bytes: Vec<u8> = code.iter().flat_map(|w| w.to_le_bytes()).collect();
        if let Some(mut stdin) = child.stdin.take() {
            // A validator that exits early closes the pipe: its exit status says why.
            let _ = stdin.write_all(&bytes);
        }
        let start = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    if status.success() {
                        return Ok(());
                    }
                    let mut err = String::new();
                    if let Some(mut e) = child.stderr.take() {
                        let _ = std::io::Read::read_to_string(&mut e, &mut err);
                    }
                    let first = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                    return Err(format!("spirv-val: {}", first.trim()));
                }
                Ok(None) if start.elapsed() < TIMEOUT => {
                    std::thread::sleep(Duration::from_micros(200))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("spirv-val took longer than {TIMEOUT:?}"));
                }
                Err(e) => return Err(format!("spirv-val: {e}")),
            }
        }
    }
}

/// The check handed to `LowerCx::set_spirv_check`.
pub fn check(code: &[u32]) -> Result<(), String> {
    match validator() {
        Some(v) => v.validate(code),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_modules_pass_and_malformed_ones_are_refused() {
        let Some(v) = validator() else {
            // Without SPIRV-Tools there is nothing to test; CI installs it (setup-system.sh).
            assert!(
                std::env::var_os("CI").is_none(),
                "spirv-val is missing under CI: run scripts/setup-system.sh"
            );
            return;
        };
        let good = crate::spirv::testdata::testapp_shader!("saxpy.comp.spv");
        v.validate(&good).expect("a test program's compute shader");
        let mut bad = good.clone();
        bad[0] = 0x1234_5678;
        let err = v.validate(&bad).unwrap_err();
        assert!(err.contains("magic"), "{err}");
        let mut bad = good;
        bad[3] = 2; // the id bound: every id but %1 now lies beyond it
        assert!(v.validate(&bad).is_err());
    }
}
