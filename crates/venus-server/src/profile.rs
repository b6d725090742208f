//! Host profiles: one switch (`--profile`) that sets everything a kind of host does
//! differently, so that a Linux host can behave like a Mac as far as the server can tell.
//!
//! - [`HostProfile::Linux`] (the default): the real page size, the platform's shared-memory
//!   backing (a sealed memfd on Linux), and the driver's own WSI extensions where it has them.
//! - [`HostProfile::Apple`]: what a macOS host (MoltenVK, KosmicKrisp) gives us: 16 KiB pages,
//!   POSIX shared memory (`shm_open`), and no dma-buf, external-memory fd, DRM modifiers,
//!   foreign queue family or sync_fd (all emulated, even where the driver has them). The
//!   portability subset needs no switch: it is honoured wherever a device lists it.
//!
//! Explicit options (`--host-page-size`, `--shm-backing`) override the profile's values.

use std::fmt;

use venus_renderer::shm::ShmBacking;

/// Apple silicon's page size.
pub const APPLE_PAGE_SIZE: u64 = 16384;

/// See the module doc.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HostProfile {
    /// This host as it is.
    #[default]
    Linux,
    /// Behave like a macOS host.
    Apple,
}

impl std::str::FromStr for HostProfile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "linux" => Ok(HostProfile::Linux),
            "apple" => Ok(HostProfile::Apple),
            _ => Err(format!("unknown host profile {s:?} (linux or apple)")),
        }
    }
}

impl fmt::Display for HostProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HostProfile::Linux => "linux",
            HostProfile::Apple => "apple",
        })
    }
}

/// What a profile (plus explicit overrides) makes the server do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostSettings {
    /// The profile these settings came from.
    pub profile: HostProfile,
    /// Shared memory is rounded to this (a power of two, at least the real page size).
    pub page_size: u64,
    /// How shared memory is created.
    pub shm_backing: ShmBacking,
    /// Emulate every WSI extension, whatever the driver has.
    pub force_emulated_wsi: bool,
}

impl HostProfile {
    /// The profile's settings, `page_size` and `shm_backing` overriding its own when given.
    pub fn settings(self, page_size: Option<u64>, shm_backing: Option<ShmBacking>) -> HostSettings {
        let real = rustix::param::page_size() as u64;
        let (page, backing, force) = match self {
            HostProfile::Linux => (real, ShmBacking::default(), false),
            HostProfile::Apple => (APPLE_PAGE_SIZE.max(real), ShmBacking::Posix, true),
        };
        HostSettings {
            profile: self,
            page_size: page_size.unwrap_or(page),
            shm_backing: shm_backing.unwrap_or(backing),
            force_emulated_wsi: force,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apple_is_16k_posix_and_forced_emulation() {
        let s = HostProfile::Apple.settings(None, None);
        assert_eq!(s.page_size, 16384);
        assert_eq!(s.shm_backing, ShmBacking::Posix);
        assert!(s.force_emulated_wsi);
        let o = HostProfile::Apple.settings(Some(65536), Some(ShmBacking::Memfd));
        assert_eq!((o.page_size, o.shm_backing), (65536, ShmBacking::Memfd));
        assert!(o.force_emulated_wsi);
    }

    #[test]
    fn linux_is_today() {
        let s = HostProfile::default().settings(None, None);
        assert_eq!(s.profile, HostProfile::Linux);
        assert_eq!(s.page_size, rustix::param::page_size() as u64);
        assert_eq!(s.shm_backing, ShmBacking::default());
        assert!(!s.force_emulated_wsi);
        assert_eq!("apple".parse::<HostProfile>(), Ok(HostProfile::Apple));
        assert!("windows".parse::<HostProfile>().is_err());
        assert_eq!(HostProfile::Apple.to_string(), "apple");
    }
}
