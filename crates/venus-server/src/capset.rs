//! The Venus capset and the timeline count, re-exported from the core
//! ([`venus_renderer::capset`], where they live so that every transport reports the same).

pub use venus_renderer::capset::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capset_id_is_the_vtest_one() {
        assert_eq!(VENUS_CAPSET_ID, crate::vtest::protocol::capset::VENUS);
    }
}
