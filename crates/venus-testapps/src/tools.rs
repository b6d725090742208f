//! Which external tools a test needs, and the rule for when one is missing: panic under CI
//! (`CI` set and non-empty), otherwise print `<test>: SKIPPED: <tool> not installed
//! (scripts/setup-system.sh installs it)` (for the Debian sid client root: `... (run
//! scripts/setup-sid-client.sh)`) and let the test return.
//!
//! One small function ([`require`]) so that the project-wide helper can replace it later.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The Khronos validation layer's manifest (Debian's `vulkan-validationlayers`).
pub const VALIDATION_LAYER_MANIFEST: &str =
    "/usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json";

/// An external tool a test may need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// `vulkaninfo` (vulkan-tools).
    Vulkaninfo,
    /// Mesa's Venus client ICD manifest (`virtio_icd*.json`).
    VenusIcd,
    /// Mesa's lavapipe ICD manifest (`lvp_icd*.json`).
    LavapipeIcd,
    /// `VK_LAYER_KHRONOS_validation`.
    ValidationLayer,
    /// The Debian sid root with the newer Mesa Venus client (`scripts/setup-sid-client.sh`),
    /// and root privileges to enter it (chroot, bind mounts).
    SidRoot,
    /// Mesa's zink Gallium driver (`zink_dri.so`, libgl1-mesa-dri).
    Zink,
    /// `glxinfo` (mesa-utils).
    Glxinfo,
    /// `xvfb-run` and `Xvfb` (xvfb, xauth).
    Xvfb,
    /// `cc` with the EGL and GLES 3 headers and libraries (gcc, libegl-dev, libgles-dev).
    GlesDev,
    /// The Python venv with the `wgpu` package ([`wgpu_python`]).
    WgpuVenv,
}

impl Tool {
    /// How the skip message names it.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Vulkaninfo => "vulkaninfo",
            Tool::VenusIcd => "the Venus ICD (virtio_icd*.json)",
            Tool::LavapipeIcd => "the lavapipe ICD (lvp_icd*.json)",
            Tool::ValidationLayer => "the validation layer (VkLayer_khronos_validation.json)",
            Tool::SidRoot => "the Debian sid client root (entered as root)",
            Tool::Zink => "zink (zink_dri.so)",
            Tool::Glxinfo => "glxinfo",
            Tool::Xvfb => "xvfb-run",
            Tool::GlesDev => "cc with EGL/GLES 3 headers",
            Tool::WgpuVenv => "the wgpu Python venv",
        }
    }

    /// What installs it.
    pub fn installer(self) -> &'static str {
        match self {
            Tool::SidRoot => "run scripts/setup-sid-client.sh",
            _ => "scripts/setup-system.sh installs it",
        }
    }
}

/// Where the tools are (the ICD manifests; `None` for one that was not required).
#[derive(Clone, Debug, Default)]
pub struct Tools {
    pub venus_icd: Option<PathBuf>,
    pub lavapipe_icd: Option<PathBuf>,
    pub validation_layer: bool,
    pub sid_root: Option<PathBuf>,
}

impl Tools {
    /// The Venus ICD manifest (panics if the test did not require it).
    pub fn venus_icd(&self) -> &Path {
        self.venus_icd
            .as_deref()
            .expect("require(.., &[Tool::VenusIcd])")
    }

    /// The lavapipe ICD manifest (panics if the test did not require it).
    pub fn lavapipe_icd(&self) -> &Path {
        self.lavapipe_icd
            .as_deref()
            .expect("require(.., &[Tool::LavapipeIcd])")
    }

    /// The Debian sid client root (panics if the test did not require it).
    pub fn sid_root(&self) -> &Path {
        self.sid_root
            .as_deref()
            .expect("require(.., &[Tool::SidRoot])")
    }
}

/// Debian names the manifests `<name>_icd.json`; other builds `<name>_icd.<arch>.json`.
pub fn find_icd(name: &str) -> Option<PathBuf> {
    let dir = Path::new("/usr/share/vulkan/icd.d");
    [
        format!("{name}_icd.json"),
        format!("{name}_icd.{}.json", std::env::consts::ARCH),
    ]
    .into_iter()
    .map(|f| dir.join(f))
    .find(|p| p.exists())
}

fn vulkaninfo_runs() -> bool {
    Command::new("vulkaninfo")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Where `scripts/setup-sid-client.sh` puts the sid root by default.
pub const DEFAULT_SID_ROOT: &str = "/var/cache/venus-rs/sid-root";

/// The sid client root (`VENUS_SID_ROOT`, else [`DEFAULT_SID_ROOT`]) if it is complete (the
/// files `scripts/setup-sid-client.sh` checks) and we are root (needed to enter it).
pub fn find_sid_root() -> Option<PathBuf> {
    let root = std::env::var_os("VENUS_SID_ROOT")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_SID_ROOT), PathBuf::from);
    let complete = [
        "usr/bin/vulkaninfo",
        "usr/bin/virgl_test_server",
        "usr/share/vulkan/icd.d/virtio_icd.json",
        "usr/share/vulkan/icd.d/lvp_icd.json",
    ]
    .iter()
    .all(|f| root.join(f).exists());
    (complete && rustix::process::geteuid().is_root()).then_some(root)
}

/// Where `scripts/setup-system.sh` puts the Python venv with `wgpu`.
pub const DEFAULT_WGPU_VENV: &str = "/var/cache/venus-rs/wgpu-venv";

/// The wgpu venv's Python (`$VENUS_WGPU_VENV/bin/python`, else under [`DEFAULT_WGPU_VENV`]).
pub fn wgpu_python() -> PathBuf {
    std::env::var_os("VENUS_WGPU_VENV")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_WGPU_VENV), PathBuf::from)
        .join("bin/python")
}

fn runs(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The tools of third-party clients (zink, wgpu); see `tests/third_party.rs`.
fn third_party_found(tool: Tool) -> bool {
    let exist = |paths: &[&str]| paths.iter().all(|p| Path::new(p).exists());
    match tool {
        Tool::Zink => {
            let multiarch = format!("/usr/lib/{}-linux-gnu", std::env::consts::ARCH);
            [multiarch.as_str(), "/usr/lib64", "/usr/lib"]
                .iter()
                .any(|d| Path::new(d).join("dri/zink_dri.so").exists())
        }
        Tool::Glxinfo => exist(&["/usr/bin/glxinfo"]),
        Tool::Xvfb => exist(&["/usr/bin/xvfb-run", "/usr/bin/Xvfb", "/usr/bin/xauth"]),
        Tool::GlesDev => {
            runs("cc", &["--version"])
                && exist(&["/usr/include/EGL/egl.h", "/usr/include/GLES3/gl3.h"])
        }
        Tool::WgpuVenv => runs(wgpu_python(), &["-c", "import wgpu"]),
        _ => false,
    }
}

/// The tools `test` needs, or `None` after printing why it is skipped. Panics instead when
/// `CI` is set (CI installs everything, so a missing tool there is a broken setup).
pub fn require(test: &str, needed: &[Tool]) -> Option<Tools> {
    let mut tools = Tools::default();
    let mut missing = Vec::new();
    for &tool in needed {
        let found = match tool {
            Tool::Vulkaninfo => vulkaninfo_runs(),
            Tool::VenusIcd => {
                tools.venus_icd = find_icd("virtio");
                tools.venus_icd.is_some()
            }
            Tool::LavapipeIcd => {
                tools.lavapipe_icd = find_icd("lvp");
                tools.lavapipe_icd.is_some()
            }
            Tool::ValidationLayer => {
                tools.validation_layer = Path::new(VALIDATION_LAYER_MANIFEST).exists();
                tools.validation_layer
            }
            Tool::SidRoot => {
                tools.sid_root = find_sid_root();
                tools.sid_root.is_some()
            }
            _ => third_party_found(tool),
        };
        if !found {
            missing.push(tool);
        }
    }
    if missing.is_empty() {
        return Some(tools);
    }
    let names: Vec<&str> = missing.iter().map(|t| t.name()).collect();
    let mut installers: Vec<&str> = Vec::new();
    for installer in missing.iter().map(|t| t.installer()) {
        if !installers.contains(&installer) {
            installers.push(installer);
        }
    }
    let message = format!(
        "{test}: SKIPPED: {} not installed ({})",
        names.join(", "),
        installers.join("; ")
    );
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{message} [CI is set: missing tools are an error]");
    }
    eprintln!("{message}");
    None
}
