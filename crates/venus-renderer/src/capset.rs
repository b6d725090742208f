//! The Venus capset (`struct virgl_renderer_capset_venus`, Mesa `venus_hw.h`; contract §3.2):
//! 160 bytes = 40 dwords that tell the client which protocol the host speaks.
//!
//! [`VenusCapset::for_protocol`] describes exactly what `venus-protocol` implements; a renderer
//! whose decoder lacks an extension's structs clears that bit with
//! [`VenusCapset::clear_extension`] (the client then stops encoding those `pNext` structs).
//!
//! Also the number of fence timelines a context offers ([`MAX_TIMELINE_COUNT`]): both are
//! facts of the core that every transport (vtest, a future C ABI for VMMs) reports as is.

use venus_protocol::types::{
    COMMAND_SERIALIZATION_SPEC_VERSION, EXTENSIONS, NOT_ADVERTISED, VENUS_PROTOCOL_SPEC_VERSION,
    VK_XML_VERSION,
};

/// Capset id of Venus (`VIRGL_RENDERER_CAPSET_VENUS`).
pub const VENUS_CAPSET_ID: u32 = 4;
/// The only Venus capset version.
pub const VENUS_CAPSET_VERSION: u32 = 0;
/// Number of fence timelines of a context (`GET_PARAM(MAX_TIMELINE_COUNT)`, what
/// virglrenderer answers): `ring_idx` 0 is the CPU timeline, queues bind to
/// `1..MAX_TIMELINE_COUNT` (so a client can have at most 63 timeline queues).
pub const MAX_TIMELINE_COUNT: u32 = 64;
/// Size of the capset in dwords.
pub const VENUS_CAPSET_DWORDS: usize = 40;
/// Dwords in the extension mask (`vk_extension_mask1[32]`): extension numbers 0..1024.
pub const EXTENSION_MASK_DWORDS: usize = 32;

/// The fields of the Venus capset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenusCapset {
    /// Must equal the client's (1), or it enumerates zero physical devices.
    pub wire_format_version: u32,
    /// `VK_MAKE_API_VERSION` of the vk.xml the protocol was generated from.
    pub vk_xml_version: u32,
    pub vk_ext_command_serialization_spec_version: u32,
    pub vk_mesa_venus_protocol_spec_version: u32,
    /// Plain shared memory is created with `blob_id` 0 (Mesa asserts it).
    pub supports_blob_id_0: bool,
    /// Bit N (word N/32, bit N%32): the host's decoder understands Vulkan extension number N.
    /// Bit 0: the mask is valid.
    pub vk_extension_mask: [u32; EXTENSION_MASK_DWORDS],
    /// The host accepts blocking `vkWaitForFences`/`vkWaitSemaphores` sent asynchronously.
    pub allow_vk_wait_syncs: bool,
    /// `ring_idx` in `SUBMIT_CMD2` selects a per-queue timeline.
    pub supports_multiple_timelines: bool,
    /// Only virtio-gpu uses it; 0 over vtest.
    pub use_guest_vram: bool,
}

impl VenusCapset {
    /// The capset for the protocol level `venus-protocol` was generated at: wire format 1,
    /// its vk.xml / spec versions, and every extension it serializes except
    /// [`NOT_ADVERTISED`] (extensions whose commands venus-rs cannot serve).
    pub fn for_protocol() -> Self {
        Self {
            wire_format_version: 1,
            vk_xml_version: VK_XML_VERSION,
            vk_ext_command_serialization_spec_version: COMMAND_SERIALIZATION_SPEC_VERSION,
            vk_mesa_venus_protocol_spec_version: VENUS_PROTOCOL_SPEC_VERSION,
            supports_blob_id_0: true,
            vk_extension_mask: extension_mask(
                EXTENSIONS
                    .iter()
                    .filter(|e| !NOT_ADVERTISED.contains(&e.name))
                    .map(|e| e.number),
            ),
            allow_vk_wait_syncs: true,
            supports_multiple_timelines: true,
            use_guest_vram: false,
        }
    }

    /// Clears extension `number`'s bit (no-op for numbers the mask cannot hold, and for 0,
    /// the "mask valid" bit).
    pub fn clear_extension(&mut self, number: u32) {
        if number != 0 {
            if let Some((word, bit)) = mask_position(number) {
                self.vk_extension_mask[word] &= !bit;
            }
        }
    }

    /// Whether extension `number`'s bit is set.
    pub fn has_extension(&self, number: u32) -> bool {
        mask_position(number).is_some_and(|(word, bit)| self.vk_extension_mask[word] & bit != 0)
    }

    /// The 40 dwords sent after `valid = 1` in the `GET_CAPSET` answer.
    pub fn to_dwords(&self) -> [u32; VENUS_CAPSET_DWORDS] {
        let mut out = [0u32; VENUS_CAPSET_DWORDS];
        out[0] = self.wire_format_version;
        out[1] = self.vk_xml_version;
        out[2] = self.vk_ext_command_serialization_spec_version;
        out[3] = self.vk_mesa_venus_protocol_spec_version;
        out[4] = u32::from(self.supports_blob_id_0);
        out[5..5 + EXTENSION_MASK_DWORDS].copy_from_slice(&self.vk_extension_mask);
        out[37] = u32::from(self.allow_vk_wait_syncs);
        out[38] = u32::from(self.supports_multiple_timelines);
        out[39] = u32::from(self.use_guest_vram);
        out
    }
}

fn mask_position(number: u32) -> Option<(usize, u32)> {
    let word = (number / 32) as usize;
    (word < EXTENSION_MASK_DWORDS).then(|| (word, 1u32 << (number % 32)))
}

/// The extension mask with bit 0 ("valid") and the bit of every number in `numbers` (numbers
/// of 1024 and more do not fit in the capset and are skipped).
pub fn extension_mask(numbers: impl IntoIterator<Item = u32>) -> [u32; EXTENSION_MASK_DWORDS] {
    let mut mask = [0u32; EXTENSION_MASK_DWORDS];
    mask[0] = 1;
    for n in numbers {
        if let Some((word, bit)) = mask_position(n) {
            mask[word] |= bit;
        }
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mask virglrenderer 1.1.0 sends, as printed in the contract §3.2.
    const CONTRACT_MASK: [u32; 16] = [
        0x20008001, 0x30402000, 0x005f6bcb, 0xc25660c0, 0xe01a2819, 0x8265060c, 0x41310162,
        0xd0c4600c, 0x86201454, 0x08000549, 0x00350842, 0xc4000233, 0x50020703, 0x00000080,
        0x00810140, 0x00108000,
    ];

    /// Every bit of the git-ca1e9220 mask (what Mesa 25.0.7 clients look at) is still set:
    /// the git-70991d4c level is a superset, minus nothing the old level had.
    #[test]
    fn mask_contains_the_contract_mask() {
        let c = VenusCapset::for_protocol();
        for (i, (&got, &old)) in c.vk_extension_mask.iter().zip(&CONTRACT_MASK).enumerate() {
            assert_eq!(
                got & old,
                old,
                "word {i}: {got:#010x} lacks bits of {old:#010x}"
            );
        }
        // The highest number is 643 (VK_EXT_shader_uniform_buffer_unsized_array): word 20.
        assert_ne!(c.vk_extension_mask[20], 0);
        assert!(c.vk_extension_mask[21..].iter().all(|&w| w == 0));
        let bits: u32 = c.vk_extension_mask.iter().map(|w| w.count_ones()).sum();
        assert_eq!(EXTENSIONS.len(), 187);
        assert_eq!(NOT_ADVERTISED.len(), 9);
        assert_eq!(
            bits,
            1 + 187 - 9,
            "bit 0 plus the 187 extensions of the protocol level minus the 9 not advertised"
        );
        for name in NOT_ADVERTISED {
            let e = EXTENSIONS.iter().find(|e| e.name == *name).unwrap();
            assert!(!c.has_extension(e.number), "{name}");
        }
        assert!(EXTENSIONS.iter().all(|e| e.number < 1024));
    }

    #[test]
    fn layout() {
        let d = VenusCapset::for_protocol().to_dwords();
        assert_eq!(d.len() * 4, 160);
        assert_eq!(d[0], 1);
        assert_eq!(d[1], 0x00404157, "vk.xml 1.4.343");
        assert_eq!(d[2], 1);
        assert_eq!(d[3], 4, "VK_MESA_venus_protocol spec 4");
        assert_eq!(d[4], 1);
        assert_eq!(d[5], 0x2001c001);
        assert_eq!(d[37..], [1, 1, 0]);
    }

    #[test]
    fn clear_and_query_extensions() {
        let mut c = VenusCapset::for_protocol();
        let n = EXTENSIONS[0].number;
        assert!(c.has_extension(n));
        c.clear_extension(n);
        assert!(!c.has_extension(n));
        c.clear_extension(0);
        assert!(c.has_extension(0), "the valid bit stays");
        c.clear_extension(5000);
        assert!(!c.has_extension(5000));
    }
}
