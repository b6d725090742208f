//! Raw registry: what the XML files say, before any protocol decision.
//!
//! This module only reads `vk.xml`-shaped files (vk.xml and the two Venus XMLs) into plain
//! Rust data. It keeps the information the generator needs (types, members, enums, commands,
//! features, extensions with their `require` blocks) and drops everything else. Elements whose
//! `api` attribute excludes plain `vulkan` (Vulkan SC variants) are skipped.

use std::collections::BTreeMap;

/// One `<member>` of a struct/union or one `<param>` of a command.
#[derive(Clone, Debug)]
pub struct RawMember {
    pub name: String,
    /// The base type name (`uint32_t`, `VkBufferCreateInfo`, ...).
    pub ty: String,
    /// `const` appears before the type.
    pub is_const: bool,
    /// Number of `*` after the type.
    pub pointers: usize,
    /// Fixed array dimensions (`[4]`, `[VK_UUID_SIZE]`), unresolved.
    pub array_dims: Vec<String>,
    pub len: Option<String>,
    pub altlen: Option<String>,
    pub optional: Option<String>,
    pub noautovalidity: bool,
    /// `values="VK_STRUCTURE_TYPE_..."` on `sType` members.
    pub values: Option<String>,
    pub selector: Option<String>,
    pub selection: Option<String>,
}

#[derive(Clone, Debug)]
pub enum RawTypeKind {
    Struct {
        members: Vec<RawMember>,
        extends: Vec<String>,
        returned_only: bool,
    },
    Union {
        members: Vec<RawMember>,
    },
    Handle {
        dispatchable: bool,
        objtype: Option<String>,
    },
    /// `category="enum"` (the values live in `<enums>`).
    Enum,
    Bitmask {
        /// `VkFlags` or `VkFlags64`.
        base: String,
        /// The FlagBits enum (`requires` or `bitvalues`).
        bits: Option<String>,
    },
    /// `category="basetype"` typedefs (`VkBool32`, `VkDeviceSize`, ...).
    Basetype {
        base: Option<String>,
    },
    FuncPointer,
    /// Platform / external types (`uint32_t`, `Display`, `int`, ...).
    External,
    Define,
    Include,
}

#[derive(Clone, Debug)]
pub struct RawType {
    pub name: String,
    pub kind: RawTypeKind,
    pub alias: Option<String>,
}

/// One enumerant value as written in the XML.
#[derive(Clone, Debug)]
pub enum RawEnumValue {
    Value(String),
    BitPos(u32),
    Alias(String),
    /// `offset` + `extnumber` + `dir`, resolved later with the owning extension's number.
    Offset {
        offset: i64,
        extnumber: Option<i64>,
        negative: bool,
    },
}

#[derive(Clone, Debug)]
pub struct RawEnumerant {
    pub name: String,
    pub value: RawEnumValue,
}

#[derive(Clone, Debug, Default)]
pub struct RawEnums {
    pub name: String,
    pub is_bitmask: bool,
    pub values: Vec<RawEnumerant>,
}

#[derive(Clone, Debug)]
pub struct RawCommand {
    pub name: String,
    pub ret: String,
    pub params: Vec<RawMember>,
}

/// A `<require>` block of a feature or an extension.
#[derive(Clone, Debug, Default)]
pub struct RawRequire {
    /// `depends` (or the older `feature`/`extension` attributes), unparsed.
    pub depends: Option<String>,
    pub types: Vec<String>,
    pub commands: Vec<String>,
    /// Enumerants that extend an enum: (extended enum, enumerant).
    pub enum_extensions: Vec<(String, RawEnumerant)>,
    /// Plain constants defined here (`VK_FOO_SPEC_VERSION`, ...).
    pub constants: Vec<RawEnumerant>,
}

#[derive(Clone, Debug)]
pub struct RawFeature {
    pub name: String,
    pub number: String,
    pub requires: Vec<RawRequire>,
}

#[derive(Clone, Debug)]
pub struct RawExtension {
    pub name: String,
    pub number: i64,
    pub supported: String,
    pub requires: Vec<RawRequire>,
}

/// Everything read from one or more registry files, merged.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    pub types: BTreeMap<String, RawType>,
    pub enums: BTreeMap<String, RawEnums>,
    /// `API Constants` and other `<enums>` without a type.
    pub constants: BTreeMap<String, RawEnumValue>,
    pub commands: BTreeMap<String, RawCommand>,
    /// Command aliases: alias name -> target name.
    pub command_aliases: BTreeMap<String, String>,
    pub features: Vec<RawFeature>,
    pub extensions: Vec<RawExtension>,
    /// `<formats>`: the texel layout of every `VkFormat`, in XML order.
    pub formats: Vec<RawFormat>,
}

/// A registry parse failure, with the file it came from.
#[derive(Debug)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn api_ok(node: roxmltree::Node) -> bool {
    match node.attribute("api") {
        None => true,
        Some(a) => a.split(',').any(|x| x == "vulkan"),
    }
}

fn parse_member(node: roxmltree::Node) -> RawMember {
    let mut name = String::new();
    let mut ty = String::new();
    let mut is_const = false;
    let mut pointers = 0;
    let mut array_dims = Vec::new();
    let mut seen_name = false;
    for child in node.children() {
        if child.is_text() {
            let t = child.text().unwrap_or("");
            if !seen_name {
                if ty.is_empty() && t.contains("const") {
                    is_const = true;
                }
                if !ty.is_empty() {
                    pointers += t.matches('*').count();
                }
            } else {
                // `[4]`, `[`, `]`, `:8` (bitfields) ...
                let t = t.trim();
                if let Some(rest) = t.strip_prefix('[') {
                    let inner = rest.trim_end_matches(']');
                    if !inner.is_empty() {
                        array_dims.push(inner.to_string());
                    }
                }
            }
        } else if child.has_tag_name("type") {
            ty = child.text().unwrap_or("").to_string();
        } else if child.has_tag_name("name") {
            name = child.text().unwrap_or("").to_string();
            seen_name = true;
        } else if child.has_tag_name("enum") && seen_name {
            array_dims.push(child.text().unwrap_or("").to_string());
        }
    }
    RawMember {
        name,
        ty,
        is_const,
        pointers,
        array_dims,
        len: node.attribute("len").map(str::to_string),
        altlen: node.attribute("altlen").map(str::to_string),
        optional: node.attribute("optional").map(str::to_string),
        noautovalidity: node.attribute("noautovalidity") == Some("true"),
        values: node.attribute("values").map(str::to_string),
        selector: node.attribute("selector").map(str::to_string),
        selection: node.attribute("selection").map(str::to_string),
    }
}

fn parse_enumerant(node: roxmltree::Node) -> Option<RawEnumerant> {
    let name = node.attribute("name")?.to_string();
    let value = if let Some(v) = node.attribute("value") {
        RawEnumValue::Value(v.to_string())
    } else if let Some(b) = node.attribute("bitpos") {
        RawEnumValue::BitPos(b.parse().ok()?)
    } else if let Some(a) = node.attribute("alias") {
        RawEnumValue::Alias(a.to_string())
    } else if let Some(o) = node.attribute("offset") {
        RawEnumValue::Offset {
            offset: o.parse().ok()?,
            extnumber: node.attribute("extnumber").and_then(|e| e.parse().ok()),
            negative: node.attribute("dir") == Some("-"),
        }
    } else {
        return None;
    };
    Some(RawEnumerant { name, value })
}

fn parse_require(node: roxmltree::Node) -> RawRequire {
    let depends = node
        .attribute("depends")
        .or_else(|| node.attribute("feature"))
        .or_else(|| node.attribute("extension"))
        .map(str::to_string);
    let mut req = RawRequire {
        depends,
        ..RawRequire::default()
    };
    for child in node.children().filter(|c| c.is_element() && api_ok(*c)) {
        let Some(name) = child.attribute("name") else {
            continue;
        };
        match child.tag_name().name() {
            "type" => req.types.push(name.to_string()),
            "command" => req.commands.push(name.to_string()),
            "enum" => {
                if let Some(ext) = child.attribute("extends") {
                    if let Some(e) = parse_enumerant(child) {
                        req.enum_extensions.push((ext.to_string(), e));
                    }
                } else if let Some(e) = parse_enumerant(child) {
                    req.constants.push(e);
                }
            }
            _ => {}
        }
    }
    req
}

fn parse_type(node: roxmltree::Node) -> Option<RawType> {
    let category = node.attribute("category").unwrap_or("");
    let name = node.attribute("name").map(str::to_string).or_else(|| {
        node.children()
            .find(|c| c.has_tag_name("name"))
            .and_then(|c| c.text())
            .map(str::to_string)
    })?;
    let alias = node.attribute("alias").map(str::to_string);
    let members = || {
        node.children()
            .filter(|c| c.has_tag_name("member") && api_ok(*c))
            .map(parse_member)
            .collect::<Vec<_>>()
    };
    let kind = match category {
        "struct" => RawTypeKind::Struct {
            members: members(),
            extends: node
                .attribute("structextends")
                .map(|s| s.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
            returned_only: node.attribute("returnedonly") == Some("true"),
        },
        "union" => RawTypeKind::Union { members: members() },
        "handle" => {
            let macro_ty = node
                .children()
                .find(|c| c.has_tag_name("type"))
                .and_then(|c| c.text())
                .unwrap_or("");
            RawTypeKind::Handle {
                dispatchable: macro_ty == "VK_DEFINE_HANDLE",
                objtype: node.attribute("objtypeenum").map(str::to_string),
            }
        }
        "enum" => RawTypeKind::Enum,
        "bitmask" => RawTypeKind::Bitmask {
            base: node
                .children()
                .find(|c| c.has_tag_name("type"))
                .and_then(|c| c.text())
                .unwrap_or("VkFlags")
                .to_string(),
            bits: node
                .attribute("requires")
                .or_else(|| node.attribute("bitvalues"))
                .map(str::to_string),
        },
        "basetype" => RawTypeKind::Basetype {
            base: node
                .children()
                .find(|c| c.has_tag_name("type"))
                .and_then(|c| c.text())
                .map(str::to_string),
        },
        "funcpointer" => RawTypeKind::FuncPointer,
        "define" => RawTypeKind::Define,
        "include" => RawTypeKind::Include,
        _ => RawTypeKind::External,
    };
    Some(RawType { name, kind, alias })
}

impl Registry {
    /// Parses one registry file and merges it into `self`.
    pub fn load(&mut self, file_name: &str, text: &str) -> Result<(), ParseError> {
        let doc = roxmltree::Document::parse(text)
            .map_err(|e| ParseError(format!("{file_name}: {e}")))?;
        let root = doc.root_element();
        for section in root.children().filter(|c| c.is_element()) {
            match section.tag_name().name() {
                "types" => {
                    for t in section
                        .children()
                        .filter(|c| c.has_tag_name("type") && api_ok(*c))
                    {
                        if t.attribute("category") == Some("define") {
                            // `#define VK_HEADER_VERSION 269`: keep numeric defines as constants.
                            let name = t
                                .children()
                                .find(|c| c.has_tag_name("name"))
                                .and_then(|c| c.text());
                            let tail = t
                                .children()
                                .next_back()
                                .and_then(|c| c.text())
                                .map(str::trim);
                            if let (Some(n), Some(v)) = (name, tail) {
                                if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) {
                                    self.constants
                                        .entry(n.to_string())
                                        .or_insert(RawEnumValue::Value(v.to_string()));
                                }
                            }
                        }
                        if let Some(rt) = parse_type(t) {
                            // Keep the first definition of a name (vk.xml is loaded first).
                            self.types.entry(rt.name.clone()).or_insert(rt);
                        }
                    }
                }
                "enums" => self.load_enums(section),
                "commands" => self.load_commands(section),
                "formats" => self.load_formats(file_name, section)?,
                "feature" => {
                    if !api_ok(section) {
                        continue;
                    }
                    self.features.push(RawFeature {
                        name: section.attribute("name").unwrap_or("").to_string(),
                        number: section.attribute("number").unwrap_or("").to_string(),
                        requires: section
                            .children()
                            .filter(|c| c.has_tag_name("require") && api_ok(*c))
                            .map(parse_require)
                            .collect(),
                    });
                }
                "extensions" => {
                    for ext in section.children().filter(|c| c.has_tag_name("extension")) {
                        let number = ext
                            .attribute("number")
                            .and_then(|n| n.parse().ok())
                            .ok_or_else(|| {
                                ParseError(format!("{file_name}: extension without a number"))
                            })?;
                        self.extensions.push(RawExtension {
                            name: ext.attribute("name").unwrap_or("").to_string(),
                            number,
                            supported: ext.attribute("supported").unwrap_or("").to_string(),
                            requires: ext
                                .children()
                                .filter(|c| c.has_tag_name("require") && api_ok(*c))
                                .map(parse_require)
                                .collect(),
                        });
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn load_enums(&mut self, section: roxmltree::Node) {
        let name = section.attribute("name").unwrap_or("").to_string();
        let ty = section.attribute("type");
        let values: Vec<RawEnumerant> = section
            .children()
            .filter(|c| c.has_tag_name("enum") && api_ok(*c))
            .filter_map(parse_enumerant)
            .collect();
        match ty {
            Some("enum") | Some("bitmask") => {
                let entry = self.enums.entry(name.clone()).or_insert_with(|| RawEnums {
                    name,
                    is_bitmask: ty == Some("bitmask"),
                    values: Vec::new(),
                });
                entry.values.extend(values);
            }
            _ => {
                for v in values {
                    self.constants.insert(v.name, v.value);
                }
            }
        }
    }

    fn load_commands(&mut self, section: roxmltree::Node) {
        for c in section
            .children()
            .filter(|c| c.has_tag_name("command") && api_ok(*c))
        {
            if let (Some(name), Some(alias)) = (c.attribute("name"), c.attribute("alias")) {
                self.command_aliases
                    .insert(name.to_string(), alias.to_string());
                continue;
            }
            let Some(proto) = c.children().find(|x| x.has_tag_name("proto")) else {
                continue;
            };
            let proto = parse_member(proto);
            let params = c
                .children()
                .filter(|x| x.has_tag_name("param") && api_ok(*x))
                .map(parse_member)
                .collect();
            self.commands
                .entry(proto.name.clone())
                .or_insert(RawCommand {
                    name: proto.name,
                    ret: proto.ty,
                    params,
                });
        }
    }
}

/// One `<component>` of a `<format>`.
#[derive(Clone, Debug)]
pub struct RawComponent {
    /// `R`, `G`, `B`, `A`, `D`, `S`.
    pub name: String,
    /// A number of bits, or `compressed`.
    pub bits: String,
    pub numeric_format: String,
    pub plane_index: Option<u32>,
}

/// One `<plane>` of a multi-planar `<format>`.
#[derive(Clone, Debug)]
pub struct RawPlane {
    pub index: u32,
    pub width_divisor: u32,
    pub height_divisor: u32,
    /// The single-plane format the plane is compatible with (`VK_FORMAT_R8_UNORM`, ...).
    pub compatible: String,
}

/// One `<format>` of `<formats>`, as written.
#[derive(Clone, Debug)]
pub struct RawFormat {
    pub name: String,
    pub class: String,
    /// Bytes per texel block.
    pub block_size: u32,
    pub texels_per_block: u32,
    /// `blockExtent="4,4,1"`; absent for 1x1x1 blocks.
    pub block_extent: Option<[u32; 3]>,
    pub packed: Option<u32>,
    pub compressed: Option<String>,
    pub chroma: Option<String>,
    pub components: Vec<RawComponent>,
    pub planes: Vec<RawPlane>,
}

/// A required numeric attribute of a `<formats>` element.
fn num_attr(file_name: &str, node: roxmltree::Node, attr: &str) -> Result<u32, ParseError> {
    let v = node.attribute(attr).unwrap_or("");
    v.parse().map_err(|_| {
        ParseError(format!(
            "{file_name}: <{}> {:?}: {attr}={v:?} is not a number",
            node.tag_name().name(),
            node.attribute("name").unwrap_or("")
        ))
    })
}

fn parse_format(file_name: &str, f: roxmltree::Node) -> Result<RawFormat, ParseError> {
    let name = f.attribute("name").unwrap_or("").to_string();
    let block_extent = match f.attribute("blockExtent") {
        None => None,
        Some(e) => {
            let dims: Vec<u32> = e.split(',').filter_map(|x| x.trim().parse().ok()).collect();
            match dims.as_slice() {
                [w, h, d] => Some([*w, *h, *d]),
                _ => {
                    return Err(ParseError(format!(
                        "{file_name}: format {name}: blockExtent={e:?} is not three numbers"
                    )))
                }
            }
        }
    };
    let mut components = Vec::new();
    let mut planes = Vec::new();
    for c in f.children().filter(|c| c.is_element()) {
        match c.tag_name().name() {
            "component" => components.push(RawComponent {
                name: c.attribute("name").unwrap_or("").to_string(),
                bits: c.attribute("bits").unwrap_or("").to_string(),
                numeric_format: c.attribute("numericFormat").unwrap_or("").to_string(),
                plane_index: match c.attribute("planeIndex") {
                    Some(_) => Some(num_attr(file_name, c, "planeIndex")?),
                    None => None,
                },
            }),
            "plane" => planes.push(RawPlane {
                index: num_attr(file_name, c, "index")?,
                width_divisor: num_attr(file_name, c, "widthDivisor")?,
                height_divisor: num_attr(file_name, c, "heightDivisor")?,
                compatible: c.attribute("compatible").unwrap_or("").to_string(),
            }),
            _ => {}
        }
    }
    Ok(RawFormat {
        class: f.attribute("class").unwrap_or("").to_string(),
        block_size: num_attr(file_name, f, "blockSize")?,
        texels_per_block: num_attr(file_name, f, "texelsPerBlock")?,
        block_extent,
        packed: match f.attribute("packed") {
            Some(_) => Some(num_attr(file_name, f, "packed")?),
            None => None,
        },
        compressed: f.attribute("compressed").map(str::to_string),
        chroma: f.attribute("chroma").map(str::to_string),
        components,
        planes,
        name,
    })
}

impl Registry {
    fn load_formats(
        &mut self,
        file_name: &str,
        section: roxmltree::Node,
    ) -> Result<(), ParseError> {
        for f in section
            .children()
            .filter(|c| c.has_tag_name("format") && api_ok(*c))
        {
            self.formats.push(parse_format(file_name, f)?);
        }
        Ok(())
    }
}
