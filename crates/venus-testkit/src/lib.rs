//! Test support for venus-rs (a dev-dependency only): finding the external tools that
//! end-to-end tests need, and deciding what a test does when one is missing.
//!
//! Owns one rule for every crate's tests: **a test that needs a tool never passes silently
//! without it in CI.**
//!
//! - `CI` set (any non-empty value, as CI systems do): a missing tool **fails** the test with a
//!   message naming the tool and `scripts/setup-system.sh` (which installs all of them).
//! - Otherwise (a developer's machine): the test prints
//!   `<test>: SKIPPED: <tool> not installed ...` to stderr and returns (it counts as passed).
//!
//! `VENUS_TEST_HIDE_TOOLS=vulkaninfo,venus-icd` makes the listed tools count as missing (names
//! are [`Tool::name`]s, comma or space separated), to check both behaviours on a machine that
//! has everything.
//!
//! ```no_run
//! use venus_testkit::{require, Tool};
//!
//! #[test]
//! fn vulkaninfo_through_venus() {
//!     let Some(found) = require("vulkaninfo_through_venus", &[Tool::Vulkaninfo, Tool::VenusIcd])
//!     else {
//!         return;
//!     };
//!     let _icd = found.venus_icd();
//! }
//! ```

#![forbid(unsafe_code)]

use std::fmt;
use std::path::{Path, PathBuf};

/// The environment variable whose presence (non-empty) turns a missing tool into a failure.
pub const CI_VAR: &str = "CI";
/// Tools listed here (by [`Tool::name`]) are treated as not installed.
pub const HIDE_VAR: &str = "VENUS_TEST_HIDE_TOOLS";
/// The script that installs every tool (relative to the repository root).
pub const SETUP_SCRIPT: &str = "scripts/setup-system.sh";

/// Where Vulkan ICD manifests are installed (Debian, and Mesa's default prefix).
const ICD_DIR: &str = "/usr/share/vulkan/icd.d";
/// The Khronos validation layer's manifest (Debian's vulkan-validationlayers).
const VALIDATION_LAYER_MANIFEST: &str =
    "/usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json";

/// An external tool a test may need.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tool {
    /// `vulkaninfo` on `PATH` (vulkan-tools).
    Vulkaninfo,
    /// Mesa's Venus client ICD manifest, `virtio_icd*.json` (mesa-vulkan-drivers >= 25.0).
    VenusIcd,
    /// Mesa's lavapipe ICD manifest, `lvp_icd*.json` (mesa-vulkan-drivers).
    LavapipeIcd,
    /// The Khronos validation layer's manifest (vulkan-validationlayers).
    ValidationLayer,
    /// `vkcube` on `PATH` (vulkan-tools).
    Vkcube,
    /// `Xvfb` on `PATH` (xvfb).
    Xvfb,
    /// `glxinfo` on `PATH` (mesa-utils).
    GlxInfo,
}

impl Tool {
    /// Every tool, in declaration order.
    pub const ALL: [Tool; 7] = [
        Tool::Vulkaninfo,
        Tool::VenusIcd,
        Tool::LavapipeIcd,
        Tool::ValidationLayer,
        Tool::Vkcube,
        Tool::Xvfb,
        Tool::GlxInfo,
    ];

    /// The short name used in messages and in `VENUS_TEST_HIDE_TOOLS`.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Vulkaninfo => "vulkaninfo",
            Tool::VenusIcd => "venus-icd",
            Tool::LavapipeIcd => "lavapipe-icd",
            Tool::ValidationLayer => "validation-layer",
            Tool::Vkcube => "vkcube",
            Tool::Xvfb => "xvfb",
            Tool::GlxInfo => "glxinfo",
        }
    }

    /// What is looked for, and which package provides it.
    pub fn description(self) -> &'static str {
        match self {
            Tool::Vulkaninfo => "vulkaninfo on PATH (vulkan-tools)",
            Tool::VenusIcd => {
                "the Venus ICD /usr/share/vulkan/icd.d/virtio_icd*.json (mesa-vulkan-drivers >= 25.0)"
            }
            Tool::LavapipeIcd => {
                "the lavapipe ICD /usr/share/vulkan/icd.d/lvp_icd*.json (mesa-vulkan-drivers)"
            }
            Tool::ValidationLayer => {
                "the validation layer VkLayer_khronos_validation.json (vulkan-validationlayers)"
            }
            Tool::Vkcube => "vkcube on PATH (vulkan-tools)",
            Tool::Xvfb => "Xvfb on PATH (xvfb)",
            Tool::GlxInfo => "glxinfo on PATH (mesa-utils)",
        }
    }

    /// Parses a [`Tool::name`] (case-insensitive).
    pub fn from_name(name: &str) -> Option<Tool> {
        Tool::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// Where the tool is installed on this machine (ignores `VENUS_TEST_HIDE_TOOLS`).
    pub fn locate(self) -> Option<PathBuf> {
        match self {
            Tool::Vulkaninfo => find_executable("vulkaninfo"),
            Tool::VenusIcd => find_icd("virtio"),
            Tool::LavapipeIcd => find_icd("lvp"),
            Tool::ValidationLayer => existing(PathBuf::from(VALIDATION_LAYER_MANIFEST)),
            Tool::Vkcube => find_executable("vkcube"),
            Tool::Xvfb => find_executable("Xvfb"),
            Tool::GlxInfo => find_executable("glxinfo"),
        }
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Debian names ICD manifests `<name>_icd.json`; other builds `<name>_icd.<arch>.json`
/// (the same lookup as `scripts/setup-system.sh`).
fn find_icd(name: &str) -> Option<PathBuf> {
    let dir = Path::new(ICD_DIR);
    [
        format!("{name}_icd.json"),
        format!("{name}_icd.{}.json", std::env::consts::ARCH),
    ]
    .into_iter()
    .map(|f| dir.join(f))
    .find(|p| p.exists())
}

fn existing(path: PathBuf) -> Option<PathBuf> {
    path.exists().then_some(path)
}

/// The first executable file called `name` in `PATH` (what `Command::new(name)` would run).
fn find_executable(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The tools a test asked for, all present.
#[derive(Clone, Debug)]
pub struct Found {
    paths: Vec<(Tool, PathBuf)>,
}

impl Found {
    /// Where `tool` is (an executable, or a manifest file).
    ///
    /// # Panics
    /// When `tool` was not in the list given to [`require`] (a mistake in the test).
    pub fn path(&self, tool: Tool) -> &Path {
        self.paths
            .iter()
            .find(|(t, _)| *t == tool)
            .map(|(_, p)| p.as_path())
            .unwrap_or_else(|| panic!("venus-testkit: {tool} was not passed to require()"))
    }

    /// [`Tool::Vulkaninfo`]'s path.
    pub fn vulkaninfo(&self) -> &Path {
        self.path(Tool::Vulkaninfo)
    }

    /// [`Tool::VenusIcd`]'s manifest.
    pub fn venus_icd(&self) -> &Path {
        self.path(Tool::VenusIcd)
    }

    /// [`Tool::LavapipeIcd`]'s manifest.
    pub fn lavapipe_icd(&self) -> &Path {
        self.path(Tool::LavapipeIcd)
    }

    /// [`Tool::ValidationLayer`]'s manifest.
    pub fn validation_layer(&self) -> &Path {
        self.path(Tool::ValidationLayer)
    }
}

/// Why a tool counts as missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// Not found on this machine.
    NotInstalled(Tool),
    /// Installed, but listed in `VENUS_TEST_HIDE_TOOLS`.
    Hidden(Tool),
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::NotInstalled(t) => write!(f, "{t} not installed ({})", t.description()),
            Missing::Hidden(t) => write!(f, "{t} hidden by {HIDE_VAR}"),
        }
    }
}

/// What a test does about its tools.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Everything is there: run.
    Run,
    /// Print this line to stderr and return (the test passes).
    Skip(String),
    /// Panic with this message (CI).
    Fail(String),
}

/// The pure rule: nothing missing runs; otherwise skip, or fail when `ci`.
pub fn decide(test: &str, missing: &[Missing], ci: bool) -> Decision {
    if missing.is_empty() {
        return Decision::Run;
    }
    let list = missing
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if ci {
        Decision::Fail(format!(
            "{test}: {list}; {CI_VAR} is set, so a missing tool fails the test instead of \
             skipping it: run {SETUP_SCRIPT} (it installs every tool the tests need)"
        ))
    } else {
        Decision::Skip(format!(
            "{test}: SKIPPED: {list}; {SETUP_SCRIPT} installs the tools (with {CI_VAR} set, \
             this test fails instead)"
        ))
    }
}

/// Whether `value` (of the `CI` variable) means "running in CI": set and non-empty.
pub fn is_ci_value(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty())
}

/// Parses `VENUS_TEST_HIDE_TOOLS` (names separated by commas or whitespace).
pub fn parse_hidden(value: &str) -> Result<Vec<Tool>, String> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| {
            Tool::from_name(s).ok_or_else(|| {
                let names: Vec<_> = Tool::ALL.iter().map(|t| t.name()).collect();
                format!(
                    "{HIDE_VAR}: unknown tool {s:?} (known: {})",
                    names.join(", ")
                )
            })
        })
        .collect()
}

/// Finds `tools` for `test` (its name, for messages).
///
/// Returns the paths when all are present. When one is missing: with `CI` set, panics with a
/// message naming the tool and `scripts/setup-system.sh`; otherwise prints
/// `<test>: SKIPPED: <tool> not installed ...` to stderr and returns `None` (the caller returns).
///
/// # Panics
/// In CI when a tool is missing, and when `VENUS_TEST_HIDE_TOOLS` names an unknown tool.
#[track_caller]
pub fn require(test: &str, tools: &[Tool]) -> Option<Found> {
    let hidden = match std::env::var(HIDE_VAR) {
        Ok(v) => parse_hidden(&v).unwrap_or_else(|e| panic!("{test}: {e}")),
        Err(_) => Vec::new(),
    };
    let mut missing = Vec::new();
    let mut paths = Vec::new();
    for &tool in tools {
        if hidden.contains(&tool) {
            missing.push(Missing::Hidden(tool));
        } else if let Some(path) = tool.locate() {
            paths.push((tool, path));
        } else {
            missing.push(Missing::NotInstalled(tool));
        }
    }
    let ci = is_ci_value(std::env::var_os(CI_VAR).as_deref());
    match decide(test, &missing, ci) {
        Decision::Run => Some(Found { paths }),
        Decision::Skip(line) => {
            eprintln!("{line}");
            None
        }
        Decision::Fail(message) => panic!("{message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn nothing_missing_runs_in_and_out_of_ci() {
        assert_eq!(decide("t", &[], true), Decision::Run);
        assert_eq!(decide("t", &[], false), Decision::Run);
    }

    #[test]
    fn missing_tool_skips_outside_ci() {
        let d = decide("my_test", &[Missing::NotInstalled(Tool::Vulkaninfo)], false);
        let Decision::Skip(line) = d else {
            panic!("expected a skip, got {d:?}")
        };
        assert!(
            line.starts_with(
                "my_test: SKIPPED: vulkaninfo not installed (vulkaninfo on PATH (vulkan-tools))"
            ),
            "{line}"
        );
        assert!(line.contains("scripts/setup-system.sh"), "{line}");
    }

    #[test]
    fn missing_tool_fails_in_ci_naming_tool_and_script() {
        let missing = [
            Missing::NotInstalled(Tool::VenusIcd),
            Missing::Hidden(Tool::LavapipeIcd),
        ];
        let d = decide("my_test", &missing, true);
        let Decision::Fail(message) = d else {
            panic!("expected a failure, got {d:?}")
        };
        assert!(
            message.starts_with("my_test: venus-icd not installed (the Venus ICD"),
            "{message}"
        );
        assert!(
            message.contains(", lavapipe-icd hidden by VENUS_TEST_HIDE_TOOLS;"),
            "{message}"
        );
        assert!(message.contains("CI is set"), "{message}");
        assert!(message.contains("run scripts/setup-system.sh"), "{message}");
        assert!(!message.contains("SKIPPED"), "{message}");
    }

    #[test]
    fn ci_means_set_and_non_empty() {
        assert!(!is_ci_value(None));
        assert!(!is_ci_value(Some(OsStr::new(""))));
        assert!(is_ci_value(Some(OsStr::new("1"))));
        assert!(is_ci_value(Some(OsStr::new("true"))));
        assert!(
            is_ci_value(Some(OsStr::new("false"))),
            "any non-empty value"
        );
    }

    #[test]
    fn hidden_tools_parse_by_name() {
        assert_eq!(
            parse_hidden("vulkaninfo, venus-icd  XVFB").unwrap(),
            [Tool::Vulkaninfo, Tool::VenusIcd, Tool::Xvfb]
        );
        assert_eq!(parse_hidden("").unwrap(), []);
        let e = parse_hidden("vulkaninfo,nope").unwrap_err();
        assert!(e.contains("unknown tool \"nope\""), "{e}");
        assert!(e.contains("glxinfo"), "{e}");
    }

    #[test]
    fn names_round_trip() {
        for t in Tool::ALL {
            assert_eq!(Tool::from_name(t.name()), Some(t));
        }
    }

    #[test]
    fn executables_are_found_on_path_only_when_executable() {
        // `sh` exists on every Unix; a name that cannot exist is not found.
        let sh = find_executable("sh").expect("sh on PATH");
        assert!(sh.ends_with("sh"), "{}", sh.display());
        assert_eq!(find_executable("venus-testkit-no-such-tool"), None);
    }
}
