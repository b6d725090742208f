//! `VkFormat` texel blocks: vk.xml's `<formats>` -> checked [`Format`] rows -> `formats.rs`.
//!
//! This module owns the format table from end to end: [`build`] keeps the formats of the
//! protocol level (those whose `VkFormat` enumerant is in scope), resolves each multi-planar
//! format's plane formats and checks what the consumers rely on; [`emit`] renders the rows as
//! the pure-data table `crates/venus-protocol/src/generated/formats.rs`, whose types
//! (`FormatInfo`, `Plane`) and lookups are handwritten in `venus-protocol/src/format.rs`.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::model::Error;
use crate::registry::RawFormat;

/// One plane of a multi-planar format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plane {
    /// The single-plane format the plane is compatible with, and its value.
    pub compatible: String,
    pub compatible_value: i64,
    /// Bytes per texel of the compatible format.
    pub block_size: u32,
    pub width_divisor: u32,
    pub height_divisor: u32,
}

/// One format of the protocol level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Format {
    pub name: String,
    pub value: i64,
    pub class: String,
    /// Bytes per texel block.
    pub block_size: u32,
    /// Texels per block in x, y, z (`[1, 1, 1]` for uncompressed formats).
    pub block_extent: [u32; 3],
    pub compressed: bool,
    /// Bits of the `D` / `S` components (0: no such component).
    pub depth_bits: u32,
    pub stencil_bits: u32,
    /// Planes by index (empty for single-plane formats).
    pub planes: Vec<Plane>,
}

/// The bits of the component named `name` (0 when absent).
fn component_bits(f: &RawFormat, name: &str) -> Result<u32, Error> {
    match f.components.iter().find(|c| c.name == name) {
        None => Ok(0),
        Some(c) => c.bits.parse().map_err(|_| {
            format!(
                "format {}: component {name} has bits={:?}, not a number",
                f.name, c.bits
            )
        }),
    }
}

/// The planes of `f`, each resolved to its compatible format (which must be a single-plane,
/// 1x1x1 format of the level).
fn planes(
    f: &RawFormat,
    raw: &BTreeMap<&str, &RawFormat>,
    values: &BTreeMap<&str, i64>,
) -> Result<Vec<Plane>, Error> {
    let mut planes = Vec::new();
    for (i, p) in f.planes.iter().enumerate() {
        if p.index as usize != i {
            return Err(format!(
                "format {}: plane {} is listed at position {i}",
                f.name, p.index
            ));
        }
        if p.width_divisor == 0 || p.height_divisor == 0 {
            return Err(format!("format {}: plane {i} has a zero divisor", f.name));
        }
        let (Some(c), Some(value)) = (
            raw.get(p.compatible.as_str()),
            values.get(p.compatible.as_str()),
        ) else {
            return Err(format!(
                "format {}: plane {i} is compatible with {}, which is not a format of this level",
                f.name, p.compatible
            ));
        };
        if !c.planes.is_empty() || c.block_extent.is_some_and(|e| e != [1, 1, 1]) {
            return Err(format!(
                "format {}: plane {i}'s compatible format {} is not a single-plane 1x1x1 format",
                f.name, p.compatible
            ));
        }
        planes.push(Plane {
            compatible: p.compatible.clone(),
            compatible_value: *value,
            block_size: c.block_size,
            width_divisor: p.width_divisor,
            height_divisor: p.height_divisor,
        });
    }
    Ok(planes)
}

/// The formats of `raw` whose enumerant is one of `values` (the `VkFormat` values of the
/// protocol level), sorted by value. Formats of extensions outside the level are left out;
/// a value of the level without a `<format>` (other than `VK_FORMAT_UNDEFINED`) is an error.
pub fn build(raw: &[RawFormat], values: &[(String, i64)]) -> Result<Vec<Format>, Error> {
    let values: BTreeMap<&str, i64> = values.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let by_name: BTreeMap<&str, &RawFormat> = raw.iter().map(|f| (f.name.as_str(), f)).collect();
    let mut out: Vec<Format> = Vec::new();
    for f in raw {
        let Some(&value) = values.get(f.name.as_str()) else {
            continue;
        };
        if i32::try_from(value).is_err() {
            return Err(format!("format {}: value {value} is not an i32", f.name));
        }
        let block_extent = f.block_extent.unwrap_or([1, 1, 1]);
        if f.block_size == 0 || block_extent.contains(&0) {
            return Err(format!("format {}: empty texel block", f.name));
        }
        out.push(Format {
            name: f.name.clone(),
            value,
            class: f.class.clone(),
            block_size: f.block_size,
            block_extent,
            compressed: f.compressed.is_some(),
            depth_bits: component_bits(f, "D")?,
            stencil_bits: component_bits(f, "S")?,
            planes: planes(f, &by_name, &values)?,
        });
    }
    out.sort_by_key(|f| f.value);
    // Every value of the level but VK_FORMAT_UNDEFINED (0) has a row: consumers read a
    // missing row as "not a format".
    let rows: std::collections::BTreeSet<i64> = out.iter().map(|f| f.value).collect();
    if let Some((name, _)) = values.iter().find(|(_, v)| **v != 0 && !rows.contains(*v)) {
        return Err(format!("{name} has no <format> entry in <formats>"));
    }
    if let Some(w) = out.windows(2).find(|w| w[0].value == w[1].value) {
        return Err(format!(
            "formats {} and {} have the same value {}",
            w[0].name, w[1].name, w[0].value
        ));
    }
    Ok(out)
}

/// Renders `formats.rs`: the sorted `FORMATS` table, one row per format.
pub fn emit(formats: &[Format]) -> String {
    let mut s = String::from(crate::emit::HEADER);
    s.push_str(
        "//! The texel block of every `VkFormat` of this protocol level, from vk.xml's `<formats>`,\n\
         //! sorted by value (looked up by [`crate::format::format_info`]).\n\n\
         use crate::format::{FormatInfo, Plane};\n\n",
    );
    let _ = writeln!(s, "pub static FORMATS: [FormatInfo; {}] = [", formats.len());
    for f in formats {
        let planes: Vec<String> = f
            .planes
            .iter()
            .map(|p| {
                format!(
                    "Plane {{ format: {}, block_size: {}, width_divisor: {}, height_divisor: {} }}",
                    p.compatible_value, p.block_size, p.width_divisor, p.height_divisor
                )
            })
            .collect();
        let [w, h, d] = f.block_extent;
        let _ = writeln!(
            s,
            "    FormatInfo {{ format: {}, name: {:?}, class: {:?}, block_size: {}, block_extent: [{w}, {h}, {d}], \
             compressed: {}, depth_bits: {}, stencil_bits: {}, planes: &[{}] }},",
            f.value,
            f.name,
            f.class,
            f.block_size,
            f.compressed,
            f.depth_bits,
            f.stencil_bits,
            planes.join(", ")
        );
    }
    s.push_str("];\n");
    s
}
