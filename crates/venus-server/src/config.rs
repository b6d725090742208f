//! `venus-server`'s per-context limits: defaults, a TOML config file (`--config FILE`) and one
//! flag per key (`--max-device-memory 4G`); flags win over the file, the file over the
//! defaults ([`venus_renderer::Limits::default`]). `--print-config` prints the effective values
//! in the file's format.
//!
//! File format: top-level keys named like [`Limit::key`], each an integer or a string with a
//! binary suffix (`"512M"`, `"8GiB"`; `K`, `M`, `G`, `T`, optionally followed by `iB`).
//! Unknown keys, zero, negative or malformed values are errors naming the key and the file.
//! One boolean key, `robust_access` (default `true`; flag `--no-robust-access`), says whether
//! host devices are created with robust buffer/image access (docs/robustness.md).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use venus_renderer::ring::MAX_RING_BUFFER_SIZE;
use venus_renderer::{Limit, Limits};

/// A configuration error (the message names the file, key or flag).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown key or a value of the wrong type.
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A value is out of range or malformed.
    #[error("{origin}: {key} = {value:?}: {reason}")]
    Value {
        origin: String,
        key: &'static str,
        value: String,
        reason: String,
    },
}

/// A value in the file: an integer or a size string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum FileValue {
    Int(i64),
    Str(String),
}

/// The file's keys (every one optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    max_device_memory: Option<FileValue>,
    max_shared_memory: Option<FileValue>,
    max_shared_memory_objects: Option<FileValue>,
    max_objects: Option<FileValue>,
    max_ring_size: Option<FileValue>,
    max_rings: Option<FileValue>,
    max_blob_size: Option<FileValue>,
    max_resources: Option<FileValue>,
    robust_access: Option<bool>,
}

impl FileLimits {
    fn get(&self, limit: Limit) -> Option<&FileValue> {
        match limit {
            Limit::DeviceMemory => self.max_device_memory.as_ref(),
            Limit::SharedMemory => self.max_shared_memory.as_ref(),
            Limit::SharedMemoryObjects => self.max_shared_memory_objects.as_ref(),
            Limit::Objects => self.max_objects.as_ref(),
            Limit::RingSize => self.max_ring_size.as_ref(),
            Limit::Rings => self.max_rings.as_ref(),
            Limit::BlobSize => self.max_blob_size.as_ref(),
            Limit::Resources => self.max_resources.as_ref(),
        }
    }
}

/// The limit flags and `--config`/`--print-config` (flattened into the binary's CLI).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct LimitArgs {
    /// Per-context limits from a TOML file (keys as the --max-* flags with `_`, e.g.
    /// `max_device_memory = "4G"`); flags win over the file. See docs/limits.md.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the effective limits (defaults < --config < flags) as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Bytes of device memory per context (sum of live vkAllocateMemory sizes) [default 8G].
    #[arg(long, value_name = "BYTES")]
    pub max_device_memory: Option<String>,
    /// Bytes of shared memory per context (blobs, rings, HOST_VISIBLE memory) [default 8G].
    #[arg(long, value_name = "BYTES")]
    pub max_shared_memory: Option<String>,
    /// Live shared-memory objects per context (each is an fd and a mapping) [default 4096].
    #[arg(long, value_name = "N")]
    pub max_shared_memory_objects: Option<String>,
    /// Live host Vulkan objects per context [default 262144].
    #[arg(long, value_name = "N")]
    pub max_objects: Option<String>,
    /// Bytes of one ring's command buffer (at most 16M) [default 16M].
    #[arg(long, value_name = "BYTES")]
    pub max_ring_size: Option<String>,
    /// Rings per context [default 64].
    #[arg(long, value_name = "N")]
    pub max_rings: Option<String>,
    /// Bytes of one blob (RESOURCE_CREATE_BLOB) [default 8G].
    #[arg(long, value_name = "BYTES")]
    pub max_blob_size: Option<String>,
    /// Live resources (blob ids) per connection [default 8192].
    #[arg(long, value_name = "N")]
    pub max_resources: Option<String>,
    /// Create host devices without forced robust buffer/image access (faster; only for
    /// trusted clients: an out-of-range shader access may then reach server memory on a CPU
    /// driver). Config key `robust_access = false`. See docs/robustness.md.
    #[arg(long)]
    pub no_robust_access: bool,
}

impl LimitArgs {
    fn flag(&self, limit: Limit) -> Option<&String> {
        match limit {
            Limit::DeviceMemory => self.max_device_memory.as_ref(),
            Limit::SharedMemory => self.max_shared_memory.as_ref(),
            Limit::SharedMemoryObjects => self.max_shared_memory_objects.as_ref(),
            Limit::Objects => self.max_objects.as_ref(),
            Limit::RingSize => self.max_ring_size.as_ref(),
            Limit::Rings => self.max_rings.as_ref(),
            Limit::BlobSize => self.max_blob_size.as_ref(),
            Limit::Resources => self.max_resources.as_ref(),
        }
    }

    /// The effective limits: defaults, then the file (if any), then the flags.
    pub fn resolve(&self) -> Result<Limits, ConfigError> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                Some((path.as_path(), text))
            }
            None => None,
        };
        let mut limits = resolve(file.as_ref().map(|(p, t)| (*p, t.as_str())), |l| {
            self.flag(l).cloned()
        })?;
        if self.no_robust_access {
            limits.robust_access = false;
        }
        Ok(limits)
    }
}

/// Defaults, then `file` (path, TOML text), then `flag(limit)`.
pub fn resolve(
    file: Option<(&Path, &str)>,
    flag: impl Fn(Limit) -> Option<String>,
) -> Result<Limits, ConfigError> {
    let mut limits = Limits::default();
    if let Some((path, text)) = file {
        let parsed: FileLimits = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(e),
        })?;
        let origin = format!("config file {}", path.display());
        for limit in Limit::ALL {
            if let Some(v) = parsed.get(limit) {
                let text = match v {
                    FileValue::Int(i) => i.to_string(),
                    FileValue::Str(s) => s.clone(),
                };
                limits.set(limit, parse_value(&origin, limit, &text)?);
            }
        }
        if let Some(robust) = parsed.robust_access {
            limits.robust_access = robust;
        }
    }
    for limit in Limit::ALL {
        if let Some(text) = flag(limit) {
            limits.set(limit, parse_value(&limit.flag(), limit, &text)?);
        }
    }
    Ok(limits)
}

/// One value: an integer with an optional binary suffix, at least 1 (and within the hard cap
/// of the ring size).
pub fn parse_value(origin: &str, limit: Limit, text: &str) -> Result<u64, ConfigError> {
    let err = |reason: String| ConfigError::Value {
        origin: origin.to_owned(),
        key: limit.key(),
        value: text.to_owned(),
        reason,
    };
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    if digits.is_empty() {
        return Err(err("not a number (e.g. 4096, \"512M\", \"8GiB\")".into()));
    }
    let shift = match suffix.trim() {
        "" => 0,
        "K" | "k" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        "T" | "TiB" => 40,
        s => {
            return Err(err(format!(
                "unknown suffix {s:?} (use K, M, G or T, binary)"
            )))
        }
    };
    let n: u64 = digits.parse().map_err(|e| err(format!("{e}")))?;
    let v = n
        .checked_mul(1u64 << shift)
        .ok_or_else(|| err("does not fit in 64 bits".into()))?;
    if v == 0 {
        return Err(err("must be at least 1".into()));
    }
    if limit == Limit::RingSize && v > MAX_RING_BUFFER_SIZE {
        return Err(err(format!(
            "above the protocol's ring size cap {MAX_RING_BUFFER_SIZE}"
        )));
    }
    Ok(v)
}

/// `limits` in the config file's format (`--print-config`).
pub fn to_toml(limits: &Limits) -> String {
    let mut s = String::from("# venus-server per-context limits (effective values)\n");
    for limit in Limit::ALL {
        let _ = writeln!(s, "{} = {}", limit.key(), limits.get(limit));
    }
    let _ = writeln!(s, "robust_access = {}", limits.robust_access);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Option<(&'static Path, &str)> {
        Some((Path::new("/etc/venus.toml"), text))
    }

    #[test]
    fn defaults_then_file_then_flags() {
        assert_eq!(resolve(None, |_| None).unwrap(), Limits::default());
        let text = "max_device_memory = \"512M\"\nmax_objects = 1000\nmax_rings = 4\n";
        let l = resolve(file(text), |limit| {
            (limit == Limit::Objects).then(|| "2k".to_string())
        })
        .unwrap();
        assert_eq!(l.max_device_memory, 512 << 20, "from the file");
        assert_eq!(l.max_objects, 2048, "the flag wins over the file");
        assert_eq!(l.max_rings, 4);
        assert_eq!(
            l.max_shared_memory,
            Limits::default().max_shared_memory,
            "untouched keys keep their default"
        );
    }

    #[test]
    fn printed_config_reads_back() {
        let l = Limits {
            max_blob_size: 12345,
            ..Limits::default()
        };
        let text = to_toml(&l);
        assert!(text.contains("max_blob_size = 12345\n"), "{text}");
        assert_eq!(resolve(file(&text), |_| None).unwrap(), l);
    }

    #[test]
    fn robust_access_from_file_and_flag() {
        assert!(Limits::default().robust_access, "on by default");
        let off = resolve(file("robust_access = false\n"), |_| None).unwrap();
        assert!(!off.robust_access);
        assert_eq!(
            Limits {
                robust_access: true,
                ..off
            },
            Limits::default(),
            "nothing else changes"
        );
        assert!(to_toml(&off).contains("robust_access = false\n"));
        assert_eq!(resolve(file(&to_toml(&off)), |_| None).unwrap(), off);
        let e = resolve(file("robust_access = 0\n"), |_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("robust_access") || e.contains("line 1"), "{e}");
        let args = LimitArgs {
            no_robust_access: true,
            ..LimitArgs::default()
        };
        assert!(
            !args.resolve().unwrap().robust_access,
            "the flag turns it off"
        );
        assert!(LimitArgs::default().resolve().unwrap().robust_access);
    }

    #[test]
    fn sizes_and_suffixes() {
        let p = |t: &str| parse_value("--x", Limit::BlobSize, t);
        assert_eq!(p("4096").unwrap(), 4096);
        assert_eq!(p("4K").unwrap(), 4096);
        assert_eq!(p("3MiB").unwrap(), 3 << 20);
        assert_eq!(p("8G").unwrap(), 8 << 30);
        assert_eq!(p("2TiB").unwrap(), 2 << 40);
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let e = |t: &str, limit| parse_value("--max-x", limit, t).unwrap_err().to_string();
        assert_eq!(
            e("0", Limit::Rings),
            "--max-x: max_rings = \"0\": must be at least 1"
        );
        assert!(e("lots", Limit::Objects).contains("not a number"));
        assert!(e("4Q", Limit::BlobSize).contains("unknown suffix \"Q\""));
        assert!(e("99999999999T", Limit::BlobSize).contains("does not fit in 64 bits"));
        assert!(e("32M", Limit::RingSize).contains("ring size cap 16777216"));
        let e = resolve(file("max_device_memory = -5\n"), |_| None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "config file /etc/venus.toml: max_device_memory = \"-5\": not a number (e.g. 4096, \
             \"512M\", \"8GiB\")"
        );
        let e = resolve(file("max_device_memroy = 5\n"), |_| None)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("config file /etc/venus.toml: ") && e.contains("max_device_memroy"),
            "an unknown key is named: {e}"
        );
        let e = resolve(file("max_rings = [1]\n"), |_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_rings") || e.contains("line 1"), "{e}");
        let e = resolve(None, |l| (l == Limit::Rings).then(|| "x".into()))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--max-rings: max_rings = \"x\""), "{e}");
    }
}
