//! The venus-rs code generator: pinned registry XML -> checked model -> Rust.
//!
//! Layers: [`registry`] reads the XML as written; [`model`] filters it to one protocol level
//! and reduces every member to its wire shape, using the quirks in [`special`] (the only
//! per-command/per-struct table); [`emit`] renders the model as Rust source for
//! `crates/venus-protocol/src/generated/` ([`formats`]: the `VkFormat` texel-block table).

pub mod emit;
pub mod emit_host;
pub mod emit_policy;
pub mod formats;
pub mod model;
pub mod names;
pub mod pin;
pub mod policy;
pub mod registry;
pub mod special;

use std::path::Path;

/// Our XML supplement to `VK_MESA_venus_protocol.xml`, relative to the protocol root.
pub const SUPPLEMENT: &str = "xml/VK_MESA_venus_protocol-spec4.xml";

/// The input files of one protocol level.
pub struct Inputs {
    pub vk_xml: String,
    pub serialization_xml: String,
    pub venus_xml: String,
    /// `xml/VK_MESA_venus_protocol-spec4.xml`, our supplement with what MESA spec 3 and 4 add
    /// (absent in the golden tests' tiny registry).
    pub venus_supplement_xml: Option<String>,
    pub commands_tsv: String,
    pub extensions_tsv: String,
}

impl Inputs {
    /// Reads `xml/{vk.xml,VK_EXT_command_serialization.xml,VK_MESA_venus_protocol.xml}`, the
    /// optional `xml/VK_MESA_venus_protocol-spec4.xml` and `derived/{commands,extensions}.tsv`
    /// under `root` (file names of the TSVs as given).
    pub fn read(root: &Path, commands_tsv: &str, extensions_tsv: &str) -> Result<Self, String> {
        let rd = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
        Ok(Inputs {
            vk_xml: rd(&root.join("xml/vk.xml"))?,
            serialization_xml: rd(&root.join("xml/VK_EXT_command_serialization.xml"))?,
            venus_xml: rd(&root.join("xml/VK_MESA_venus_protocol.xml"))?,
            venus_supplement_xml: {
                let p = root.join(SUPPLEMENT);
                if p.exists() {
                    Some(rd(&p)?)
                } else {
                    None
                }
            },
            commands_tsv: rd(&root.join("derived").join(commands_tsv))?,
            extensions_tsv: rd(&root.join("derived").join(extensions_tsv))?,
        })
    }
}

fn tsv_rows(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').collect())
}

/// Builds the checked model from the inputs, with the real protocol's tables.
pub fn build_model(inputs: &Inputs) -> Result<model::Model, String> {
    build_model_with(inputs, &special::TABLES)
}

/// Builds the checked model from the inputs and the given policy/check/host-only tables.
pub fn build_model_with(inputs: &Inputs, tables: &special::Tables) -> Result<model::Model, String> {
    let mut reg = registry::Registry::default();
    reg.load("vk.xml", &inputs.vk_xml)
        .map_err(|e| e.to_string())?;
    reg.load(
        "VK_EXT_command_serialization.xml",
        &inputs.serialization_xml,
    )
    .map_err(|e| e.to_string())?;
    reg.load("VK_MESA_venus_protocol.xml", &inputs.venus_xml)
        .map_err(|e| e.to_string())?;
    if let Some(text) = &inputs.venus_supplement_xml {
        reg.load(SUPPLEMENT, text).map_err(|e| e.to_string())?;
    }
    let mut cmds = Vec::new();
    for r in tsv_rows(&inputs.commands_tsv) {
        let id = r
            .first()
            .and_then(|x| x.parse().ok())
            .ok_or("bad command row")?;
        let name = r.get(1).ok_or("bad command row")?.to_string();
        let aliases = r
            .get(2)
            .map(|a| {
                a.split(',')
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        cmds.push(model::CommandRow { id, name, aliases });
    }
    let mut exts = Vec::new();
    for r in tsv_rows(&inputs.extensions_tsv) {
        exts.push(model::ExtensionRow {
            name: r.first().ok_or("bad extension row")?.to_string(),
            number: r
                .get(1)
                .and_then(|x| x.parse().ok())
                .ok_or("bad extension row")?,
            spec_version: r
                .get(2)
                .and_then(|x| x.parse().ok())
                .ok_or("bad extension row")?,
        });
    }
    model::build(&reg, &exts, &cmds, tables)
}

/// Where generated files go, relative to the repository root.
pub const OUTPUT_DIRS: [(&str, &str); 2] = [
    ("protocol", "crates/venus-protocol/src/generated"),
    ("host", "crates/venus-host/src/generated"),
];

/// Generates every output file as (output key from [`OUTPUT_DIRS`], file name, contents).
pub fn generate(inputs: &Inputs) -> Result<Vec<(&'static str, String, String)>, String> {
    generate_with(inputs, &special::TABLES)
}

/// [`generate`] with the given tables (golden tests pass tables for their tiny registry).
pub fn generate_with(
    inputs: &Inputs,
    tables: &special::Tables,
) -> Result<Vec<(&'static str, String, String)>, String> {
    let model = build_model_with(inputs, tables)?;
    let mut out = Vec::new();
    for (name, text) in emit::emit(&model)? {
        out.push(("protocol", name, text));
    }
    out.push((
        "protocol",
        "formats.rs".into(),
        formats::emit(&model.formats),
    ));
    for (name, text) in emit_host::emit(&model)? {
        out.push(("host", name, text));
    }
    Ok(out)
}
