//! The checked intermediate model: the registry filtered to one protocol level, with every
//! member reduced to its wire shape.
//!
//! Input: the merged [`Registry`], the protocol's extension list and command-id table. Output:
//! [`Model`], in which every struct, union, enum, bitmask, handle and command the protocol
//! serializes has a resolved shape. Anything the wire rules cannot express is an error here,
//! not in the emitted code.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::registry::{RawEnumValue, RawMember, RawRequire, RawTypeKind, Registry};
use crate::special;

/// A scalar as the wire sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
    /// `size_t`: u64 on the wire.
    SizeT,
}

/// Something that can be a value or an array element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Elem {
    Scalar(Scalar),
    Enum(String),
    Flags { name: String, wide: bool },
    Handle(String),
    Struct(String),
    Union(String),
}

impl Elem {
    /// Packed in arrays (scalars, enums, flags, handles) rather than encoded one by one.
    pub fn is_plain(&self) -> bool {
        !matches!(self, Elem::Struct(_) | Elem::Union(_))
    }
}

/// A parsed `len` / `altlen` expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LenExpr {
    /// A member or parameter; a path of two means `param->member`.
    Ref(Vec<String>),
    Num(u64),
    Bin(char, Box<LenExpr>, Box<LenExpr>),
}

impl LenExpr {
    /// The first identifier of every reference in the expression.
    pub fn roots(&self, out: &mut Vec<Vec<String>>) {
        match self {
            LenExpr::Ref(p) => out.push(p.clone()),
            LenExpr::Num(_) => {}
            LenExpr::Bin(_, a, b) => {
                a.roots(out);
                b.roots(out);
            }
        }
    }
    pub fn as_simple(&self) -> Option<&str> {
        match self {
            LenExpr::Ref(p) if p.len() == 1 => Some(&p[0]),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Ignore {
    /// Sent only when `member` (an enum) equals `value`.
    UnlessEq { member: String, value: i64 },
    /// Sent only when `flag` is clear in `member`.
    UnlessFlagClear { member: String, flag: i64 },
}

#[derive(Clone, Debug)]
pub enum Shape {
    Value(Elem),
    FixedArray(Elem, usize),
    /// `char name[N]`.
    CharArray(usize),
    /// A pointer to one value.
    Ptr {
        elem: Elem,
        optional: bool,
    },
    /// A counted array.
    Array {
        elem: Elem,
        len: LenExpr,
        /// A NULL array is accepted with any count (optional, noautovalidity or ignorable).
        null_unchecked: bool,
        ignore: Option<Ignore>,
    },
    /// `const char*`, NUL-terminated.
    Str,
    /// `const char* const*` with a count.
    StrArray {
        len: LenExpr,
        null_unchecked: bool,
    },
    /// `void*` with a byte count.
    Blob {
        len: LenExpr,
        null_unchecked: bool,
    },
    /// `const VkAllocationCallbacks*`: always NULL on the wire.
    NullOnly,
}

#[derive(Clone, Debug)]
pub struct Member {
    pub name: String,
    pub shape: Shape,
    /// Another member's (or parameter's) length refers to this one.
    pub is_len: bool,
    /// Referenced by a non-trivial length expression: random values must stay small.
    pub small: bool,
    /// A handle the guest must not send as NULL: vk.xml does not mark it `optional` and
    /// `special::NULLABLE_HANDLES` has no row for it. Lowered with a NULL check.
    pub non_null: bool,
}

#[derive(Clone, Debug)]
pub struct Struct {
    pub name: String,
    /// `Some` for extensible structs (sType + pNext).
    pub s_type: Option<(String, i64)>,
    pub members: Vec<Member>,
    /// In-scope structs allowed in this struct's pNext chain.
    pub extenders: Vec<String>,
    /// This struct may appear in some pNext chain.
    pub is_extender: bool,
    /// Appears in an output position (needs partial encode/decode).
    pub partial: bool,
    pub needs_lifetime: bool,
    pub doc: Option<&'static str>,
}

#[derive(Clone, Debug)]
pub struct Union {
    pub name: String,
    pub members: Vec<Member>,
    pub default_tag: u32,
    pub needs_lifetime: bool,
}

#[derive(Clone, Debug)]
pub struct EnumType {
    pub name: String,
    pub values: Vec<(String, i64)>,
}

#[derive(Clone, Debug)]
pub struct Bitmask {
    pub name: String,
    pub wide: bool,
    pub bits: Vec<(String, i64)>,
}

#[derive(Clone, Debug)]
pub struct Handle {
    pub name: String,
    pub dispatchable: bool,
    pub object_type: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    In,
    Out,
    InOut,
}

#[derive(Clone, Debug)]
pub struct Param {
    pub member: Member,
    pub dir: Dir,
}

#[derive(Clone, Debug)]
pub struct Command {
    pub id: u32,
    pub name: String,
    pub aliases: Vec<String>,
    pub params: Vec<Param>,
    pub ret: Option<Elem>,
    /// `Err(reason)` for commands with an id but no wire encoding.
    pub encoding: Result<(), String>,
    /// How the host runs it (from `special::Tables::policies`, `Destroy` derived).
    pub class: Class,
    /// What it destroys, for commands the model detects as destroying handles.
    pub destroy: Option<DestroyShape>,
    pub needs_lifetime: bool,
    /// The in-scope `<require>` blocks naming this command or one of its aliases: (core version
    /// or protocol extension, the block's `depends`), sorted.
    pub provided_by: Vec<(String, Option<String>)>,
}

/// A command's host policy class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Class {
    Generic,
    Handwritten(&'static str),
    Destroy,
    /// Refused, with the reason (a policy row's, or derived from `Tables::not_advertised`).
    Refused(String),
}

/// The parameters of a destroying command (vkDestroyX, vkFreeMemory, vkFree*s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestroyShape {
    /// The destroyed handle type.
    pub target: String,
    /// The first parameter (the parent: device, or the object itself for vkDestroyDevice).
    pub parent: String,
    /// The parameter naming the object(s).
    pub object: String,
    /// The pool parameter, if any (vkFreeCommandBuffers, vkFreeDescriptorSets).
    pub pool: Option<(String, String)>,
    /// `object` is an array.
    pub array: bool,
}

/// A C type of a host-only binding (no wire shape).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostType {
    Elem(Elem),
    /// `int` (file descriptors).
    CInt,
    /// `void*` / `const void*`.
    VoidPtr {
        is_const: bool,
    },
    Ptr {
        to: Box<HostType>,
        is_const: bool,
    },
}

/// A struct the host binds although the protocol does not serialize it.
#[derive(Clone, Debug)]
pub struct HostStruct {
    pub name: String,
    pub s_type: SType,
    pub members: Vec<(String, HostType)>,
}

/// A command the host binds although the protocol does not serialize it.
#[derive(Clone, Debug)]
pub struct HostCommand {
    pub name: String,
    pub params: Vec<(String, HostType)>,
    pub ret: Option<Elem>,
}

#[derive(Clone, Debug)]
pub struct Extension {
    pub name: String,
    pub number: i64,
    pub spec_version: u32,
}

/// Protocol-level facts that end up as constants.
#[derive(Clone, Debug)]
pub struct Versions {
    pub vk_xml_version: (u32, u32, u32),
    pub command_serialization_spec: u32,
    pub venus_protocol_spec: u32,
}

#[derive(Clone, Debug)]
pub struct Model {
    pub structs: BTreeMap<String, Struct>,
    pub unions: BTreeMap<String, Union>,
    pub enums: BTreeMap<String, EnumType>,
    pub bitmasks: BTreeMap<String, Bitmask>,
    pub handles: BTreeMap<String, Handle>,
    pub commands: Vec<Command>,
    pub extensions: Vec<Extension>,
    pub versions: Versions,
    /// API constants used as array sizes.
    pub constants: BTreeMap<String, i64>,
    /// Size/stride/limit rules, validated against the model.
    pub checks: Vec<special::Check>,
    /// Values of the enumerants the checks name.
    pub check_values: BTreeMap<String, i64>,
    /// Host-only C bindings (`special::Tables::host_only`).
    pub host_structs: Vec<HostStruct>,
    pub host_commands: Vec<HostCommand>,
    /// Protocol extensions the host never advertises, with the reason
    /// (`special::Tables::not_advertised`, each checked to be in the protocol table).
    pub not_advertised: Vec<(String, &'static str)>,
    /// `(struct, member)` feature bits always `VK_FALSE` (`special::Tables::hidden_features`,
    /// each checked: a `VkBool32` member of an existing struct, of a `not_advertised`
    /// extension).
    pub hidden_features: Vec<(String, String)>,
    /// The texel blocks of the level's `VkFormat`s, sorted by value ([`crate::formats`]).
    pub formats: Vec<crate::formats::Format>,
}

impl Model {
    /// Whether `structure.member` is a hidden feature bit.
    pub fn is_hidden_feature(&self, structure: &str, member: &str) -> bool {
        self.hidden_features
            .iter()
            .any(|(s, m)| s == structure && m == member)
    }
}

/// Rows of the protocol's command table (id, primary name, aliases).
pub struct CommandRow {
    pub id: u32,
    pub name: String,
    pub aliases: Vec<String>,
}

/// Rows of the protocol's extension table (name, number, spec version).
pub struct ExtensionRow {
    pub name: String,
    pub number: i64,
    pub spec_version: u32,
}

pub type Error = String;

/// A structure type: enumerant name and value.
pub type SType = (String, i64);

fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim().trim_start_matches('(').trim_end_matches(')');
    let s = s.trim_end_matches("ULL").trim_end_matches('U');
    // Hex digits may end in F (`0x7FFFFFFF`): only a decimal literal has a float suffix.
    if let Some(h) = s.strip_prefix("0x") {
        return i64::from_str_radix(h, 16).ok();
    }
    let s = s.trim_end_matches('F');
    if let Some(rest) = s.strip_prefix('-') {
        return parse_int(rest).map(|v| -v);
    }
    s.parse().ok()
}

/// Evaluates a `depends` expression (`,` = or, `+` = and, parentheses).
pub fn depends_ok(expr: &str, scope: &BTreeSet<String>) -> bool {
    fn or_expr(t: &[char], i: &mut usize, s: &BTreeSet<String>) -> bool {
        let mut v = and_expr(t, i, s);
        while *i < t.len() && t[*i] == ',' {
            *i += 1;
            let r = and_expr(t, i, s);
            v = v || r;
        }
        v
    }
    fn and_expr(t: &[char], i: &mut usize, s: &BTreeSet<String>) -> bool {
        let mut v = atom(t, i, s);
        while *i < t.len() && t[*i] == '+' {
            *i += 1;
            let r = atom(t, i, s);
            v = v && r;
        }
        v
    }
    fn atom(t: &[char], i: &mut usize, s: &BTreeSet<String>) -> bool {
        if *i < t.len() && t[*i] == '(' {
            *i += 1;
            let v = or_expr(t, i, s);
            *i += 1; // ')'
            return v;
        }
        let start = *i;
        while *i < t.len() && !matches!(t[*i], ',' | '+' | '(' | ')') {
            *i += 1;
        }
        let name: String = t[start..*i].iter().collect();
        s.contains(name.trim())
    }
    let chars: Vec<char> = expr.chars().filter(|c| !c.is_whitespace()).collect();
    let mut i = 0;
    or_expr(&chars, &mut i, scope)
}

/// Parses a length expression (`count`, `pInfo->count`, `codeSize / 4`, `(x + 31) / 32`).
pub fn parse_len(text: &str) -> Result<LenExpr, Error> {
    #[derive(Debug, Clone, PartialEq)]
    enum Tok {
        Id(Vec<String>),
        Num(u64),
        Op(char),
    }
    let mut toks = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let st = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let s: String = chars[st..i].iter().collect();
            toks.push(Tok::Num(
                s.parse().map_err(|_| format!("bad number in {text}"))?,
            ));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let st = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric()
                    || chars[i] == '_'
                    || chars[i] == '-'
                    || chars[i] == '>'
                    || chars[i] == '.')
            {
                i += 1;
            }
            let s: String = chars[st..i].iter().collect();
            let path = s
                .split("->")
                .flat_map(|p| p.split('.'))
                .map(str::to_string)
                .collect();
            toks.push(Tok::Id(path));
        } else if "+-*/()".contains(c) {
            toks.push(Tok::Op(c));
            i += 1;
        } else {
            return Err(format!("unsupported character {c:?} in length {text:?}"));
        }
    }
    fn expr(t: &[Tok], i: &mut usize) -> Result<LenExpr, Error> {
        let mut lhs = term(t, i)?;
        while let Some(Tok::Op(op @ ('+' | '-'))) = t.get(*i) {
            *i += 1;
            let rhs = term(t, i)?;
            lhs = LenExpr::Bin(*op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }
    fn term(t: &[Tok], i: &mut usize) -> Result<LenExpr, Error> {
        let mut lhs = atom(t, i)?;
        while let Some(Tok::Op(op @ ('*' | '/'))) = t.get(*i) {
            *i += 1;
            let rhs = atom(t, i)?;
            lhs = LenExpr::Bin(*op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }
    fn atom(t: &[Tok], i: &mut usize) -> Result<LenExpr, Error> {
        let tok = t.get(*i).cloned().ok_or("truncated length expression")?;
        *i += 1;
        match tok {
            Tok::Num(n) => Ok(LenExpr::Num(n)),
            Tok::Id(p) => Ok(LenExpr::Ref(p)),
            Tok::Op('(') => {
                let e = expr(t, i)?;
                if t.get(*i) != Some(&Tok::Op(')')) {
                    return Err("missing ')'".into());
                }
                *i += 1;
                Ok(e)
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }
    let mut i = 0;
    let e = expr(&toks, &mut i)?;
    if i != toks.len() {
        return Err(format!("trailing tokens in length {text:?}"));
    }
    Ok(e)
}

struct Builder<'r> {
    reg: &'r Registry,
    values: BTreeMap<String, i64>,
    scope: BTreeSet<String>,
    /// Types named by in-scope require blocks.
    required_types: BTreeSet<String>,
    /// Enumerants added to each enum by in-scope require blocks (plus base values).
    enum_members: BTreeMap<String, Vec<String>>,
    /// Reverse alias map for types: canonical name.
    type_alias: BTreeMap<String, String>,
    extra_docs: BTreeMap<String, &'static str>,
}

impl<'r> Builder<'r> {
    fn canonical(&self, name: &str) -> String {
        let mut n = name.to_string();
        for _ in 0..8 {
            match self.type_alias.get(&n) {
                Some(t) => n = t.clone(),
                None => break,
            }
        }
        n
    }

    fn resolve_values(&mut self) -> Result<(), Error> {
        let mut pending: Vec<(String, String)> = Vec::new();
        let put = |name: &str,
                   v: &RawEnumValue,
                   ext: Option<i64>,
                   pending: &mut Vec<(String, String)>,
                   values: &mut BTreeMap<String, i64>| {
            match v {
                RawEnumValue::Value(s) => {
                    if let Some(x) = parse_int(s) {
                        values.insert(name.to_string(), x);
                    }
                }
                RawEnumValue::BitPos(b) => {
                    values.insert(name.to_string(), 1i64 << b);
                }
                RawEnumValue::Alias(a) => pending.push((name.to_string(), a.clone())),
                RawEnumValue::Offset {
                    offset,
                    extnumber,
                    negative,
                } => {
                    if let Some(n) = extnumber.or(ext) {
                        let v = 1_000_000_000 + (n - 1) * 1000 + offset;
                        values.insert(name.to_string(), if *negative { -v } else { v });
                    }
                }
            }
        };
        for e in self.reg.enums.values() {
            for v in &e.values {
                put(&v.name, &v.value, None, &mut pending, &mut self.values);
            }
        }
        for (n, v) in &self.reg.constants {
            put(n, v, None, &mut pending, &mut self.values);
        }
        for f in &self.reg.features {
            for r in &f.requires {
                for (_, v) in &r.enum_extensions {
                    put(&v.name, &v.value, None, &mut pending, &mut self.values);
                }
            }
        }
        for x in &self.reg.extensions {
            for r in &x.requires {
                for (_, v) in &r.enum_extensions {
                    put(
                        &v.name,
                        &v.value,
                        Some(x.number),
                        &mut pending,
                        &mut self.values,
                    );
                }
                for v in &r.constants {
                    put(
                        &v.name,
                        &v.value,
                        Some(x.number),
                        &mut pending,
                        &mut self.values,
                    );
                }
            }
        }
        for _ in 0..4 {
            for (n, a) in &pending {
                if let Some(v) = self.values.get(a).copied() {
                    self.values.entry(n.clone()).or_insert(v);
                }
            }
        }
        Ok(())
    }

    /// The in-scope features and extensions that require `cmd` (by its name or an alias).
    fn providers(&self, cmd: &Command) -> Vec<(String, Option<String>)> {
        let names: Vec<&str> = std::iter::once(cmd.name.as_str())
            .chain(cmd.aliases.iter().map(String::as_str))
            .collect();
        let names_it = |r: &RawRequire| r.commands.iter().any(|c| names.contains(&c.as_str()));
        let features = self.reg.features.iter().map(|f| (&f.name, &f.requires));
        let extensions = self.reg.extensions.iter().map(|x| (&x.name, &x.requires));
        let mut out: Vec<(String, Option<String>)> = features
            .chain(extensions)
            .filter(|(n, _)| self.scope.contains(*n))
            .flat_map(|(n, blocks)| {
                blocks
                    .iter()
                    .filter(|r| names_it(r))
                    .map(move |r| (n.clone(), r.depends.clone()))
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    fn collect_scope(&mut self, ext_rows: &[ExtensionRow]) -> Result<(), Error> {
        for v in special::CORE_VERSIONS {
            self.scope.insert(v.to_string());
        }
        for e in ext_rows {
            if !self.reg.extensions.iter().any(|x| x.name == e.name) {
                return Err(format!(
                    "extension {} of the protocol table is not in the XML",
                    e.name
                ));
            }
            self.scope.insert(e.name.clone());
        }
        let mut blocks = Vec::new();
        for f in &self.reg.features {
            if self.scope.contains(&f.name) {
                blocks.extend(f.requires.iter());
            }
        }
        for x in &self.reg.extensions {
            if self.scope.contains(&x.name) {
                blocks.extend(x.requires.iter());
            }
        }
        for r in blocks {
            if let Some(d) = &r.depends {
                if !depends_ok(d, &self.scope) {
                    continue;
                }
            }
            for t in &r.types {
                self.required_types.insert(t.clone());
            }
            for (en, v) in &r.enum_extensions {
                self.enum_members
                    .entry(en.clone())
                    .or_default()
                    .push(v.name.clone());
            }
        }
        Ok(())
    }

    fn elem_of(&self, ty: &str) -> Result<Elem, Error> {
        let ty = self.canonical(ty);
        let scalar = match ty.as_str() {
            "uint8_t" => Some(Scalar::U8),
            "int8_t" => Some(Scalar::I8),
            "uint16_t" => Some(Scalar::U16),
            "int16_t" => Some(Scalar::I16),
            "uint32_t" | "VkBool32" | "VkSampleMask" | "VkFlags" => Some(Scalar::U32),
            "int32_t" => Some(Scalar::I32),
            "uint64_t" | "VkDeviceSize" | "VkDeviceAddress" | "VkFlags64" => Some(Scalar::U64),
            "int64_t" => Some(Scalar::I64),
            "float" => Some(Scalar::F32),
            "double" => Some(Scalar::F64),
            "size_t" => Some(Scalar::SizeT),
            _ => None,
        };
        if let Some(s) = scalar {
            return Ok(Elem::Scalar(s));
        }
        let Some(t) = self.reg.types.get(&ty) else {
            return Err(format!("unknown type {ty}"));
        };
        match &t.kind {
            RawTypeKind::Struct { .. } => {
                if special::NEVER_SERIALIZED.contains(&ty.as_str()) {
                    Err(format!("{ty} is never serialized"))
                } else {
                    Ok(Elem::Struct(ty))
                }
            }
            RawTypeKind::Union { .. } => Ok(Elem::Union(ty)),
            RawTypeKind::Handle { .. } => Ok(Elem::Handle(ty)),
            RawTypeKind::Enum => Ok(Elem::Enum(ty)),
            RawTypeKind::Bitmask { base, .. } => Ok(Elem::Flags {
                name: ty.clone(),
                wide: base == "VkFlags64",
            }),
            RawTypeKind::FuncPointer => Err(format!("{ty} is a function pointer")),
            _ => Err(format!("{ty} is a platform or OS type")),
        }
    }

    /// Replaces API constants in a length (`2*VK_UUID_SIZE`) by their values.
    fn resolve_consts(&self, e: LenExpr) -> LenExpr {
        match e {
            LenExpr::Ref(p) if p.len() == 1 && p[0].starts_with("VK_") => {
                match self.values.get(&p[0]) {
                    Some(v) => LenExpr::Num(*v as u64),
                    None => LenExpr::Ref(p),
                }
            }
            LenExpr::Bin(op, a, b) => LenExpr::Bin(
                op,
                Box::new(self.resolve_consts(*a)),
                Box::new(self.resolve_consts(*b)),
            ),
            other => other,
        }
    }

    fn const_value(&self, s: &str) -> Result<usize, Error> {
        parse_int(s)
            .or_else(|| self.values.get(s).copied())
            .map(|v| v as usize)
            .ok_or_else(|| format!("unknown array size {s}"))
    }

    fn shape_of(&self, m: &RawMember) -> Result<Shape, Error> {
        let optional = m
            .optional
            .as_deref()
            .map(|o| o.split(',').next() == Some("true"))
            .unwrap_or(false);
        let null_unchecked = optional || m.noautovalidity;
        let len_text = match (&m.len, &m.altlen) {
            (_, Some(alt)) => Some(alt.clone()),
            (Some(l), None) => Some(l.clone()),
            _ => None,
        };
        if m.ty == "VkAllocationCallbacks" && m.pointers == 1 {
            return Ok(Shape::NullOnly);
        }
        match m.pointers {
            0 => {
                if m.array_dims.len() > 1 {
                    return Err(format!("{}: multi-dimensional array", m.name));
                }
                if let Some(d) = m.array_dims.first() {
                    let n = self.const_value(d)?;
                    if m.ty == "char" {
                        return Ok(Shape::CharArray(n));
                    }
                    // Fixed arrays always travel whole, whatever `len` says (§7).
                    return Ok(Shape::FixedArray(self.elem_of(&m.ty)?, n));
                }
                if m.ty == "void" || m.ty == "char" {
                    return Err(format!("{}: bare {}", m.name, m.ty));
                }
                Ok(Shape::Value(self.elem_of(&m.ty)?))
            }
            1 => {
                if m.ty == "void" {
                    let Some(l) = len_text else {
                        return Err(format!("{}: void pointer without a length", m.name));
                    };
                    return Ok(Shape::Blob {
                        len: self.resolve_consts(parse_len(&l)?),
                        null_unchecked,
                    });
                }
                if m.ty == "char" {
                    if len_text.as_deref() == Some("null-terminated") {
                        return Ok(Shape::Str);
                    }
                    return Err(format!("{}: char pointer that is not a string", m.name));
                }
                match len_text {
                    Some(l) => Ok(Shape::Array {
                        elem: self.elem_of(&m.ty)?,
                        len: self.resolve_consts(parse_len(&l)?),
                        null_unchecked,
                        ignore: None,
                    }),
                    // `noautovalidity` pointers may be NULL too (the reference accepts NULL `pColor`).
                    None => Ok(Shape::Ptr {
                        elem: self.elem_of(&m.ty)?,
                        optional: null_unchecked,
                    }),
                }
            }
            2 => {
                if m.ty == "char" {
                    if let Some(l) = len_text {
                        if let Some(count) = l.strip_suffix(",null-terminated") {
                            return Ok(Shape::StrArray {
                                len: parse_len(count)?,
                                null_unchecked,
                            });
                        }
                    }
                }
                if m.ty == "void" {
                    return Err(format!("{}: host pointer output", m.name));
                }
                Err(format!("{}: pointer to pointer", m.name))
            }
            _ => Err(format!("{}: too many indirections", m.name)),
        }
    }

    fn members_of(
        &self,
        owner: &str,
        raw: &[RawMember],
    ) -> Result<(Option<SType>, Vec<Member>), Error> {
        let mut s_type = None;
        let mut out = Vec::new();
        for m in raw {
            if m.name == "sType" && m.ty == "VkStructureType" {
                let name = m
                    .values
                    .clone()
                    .ok_or_else(|| format!("{owner}: sType without values"))?;
                let v = *self
                    .values
                    .get(&name)
                    .ok_or_else(|| format!("{owner}: unknown {name}"))?;
                s_type = Some((name, v));
                continue;
            }
            if m.name == "pNext" {
                continue;
            }
            let null_only = special::NULL_ONLY_MEMBERS.contains(&(owner, m.name.as_str()));
            if null_only && (m.ty != "void" || m.pointers != 1) {
                return Err(format!(
                    "{owner}.{}: special::NULL_ONLY_MEMBERS names a member that is not void*",
                    m.name
                ));
            }
            let mut shape = if null_only {
                Shape::NullOnly
            } else {
                self.shape_of(m).map_err(|e| format!("{owner}.{e}"))?
            };
            if let Shape::Array { ignore, .. } = &mut shape {
                if let Some(ia) = special::IGNORABLE_ARRAYS
                    .iter()
                    .find(|i| i.structure == owner && i.member == m.name)
                {
                    *ignore = Some(match ia.when {
                        special::IgnoreWhen::MemberNotEqual { member, value } => Ignore::UnlessEq {
                            member: member.to_string(),
                            value: self.values[value],
                        },
                        special::IgnoreWhen::FlagSet { member, flag } => Ignore::UnlessFlagClear {
                            member: member.to_string(),
                            flag: self.values[flag],
                        },
                    });
                }
            }
            if let Shape::Array {
                null_unchecked,
                ignore: Some(_),
                ..
            } = &mut shape
            {
                *null_unchecked = true;
            }
            let non_null = non_null_handle(owner, m, &shape)?;
            out.push(Member {
                name: m.name.clone(),
                shape,
                is_len: false,
                small: false,
                non_null,
            });
        }
        mark_lens(&mut out);
        forward_lens(owner, &out)?;
        Ok((s_type, out))
    }
}

/// Whether member/parameter `m` of `owner` (shaped `shape`) is a handle that must not be NULL.
/// A non-optional `noautovalidity` handle (its NULL rules are prose in the spec) must have a
/// `special::NULLABLE_HANDLES` row, so a registry change cannot add one silently.
fn non_null_handle(owner: &str, m: &RawMember, shape: &Shape) -> Result<bool, Error> {
    if let Shape::Array {
        elem: Elem::Handle(_),
        ..
    } = shape
    {
        // An array's elements: vk.xml says they may be NULL with a second `optional` value
        // (`false,true`); arrays with any `optional` or `noautovalidity` are left nullable
        // (their element rules are prose: vkFreeDescriptorSets, imageless framebuffers).
        return Ok(m.optional.is_none() && !m.noautovalidity);
    }
    if !matches!(shape, Shape::Value(Elem::Handle(_))) {
        return Ok(false);
    }
    let optional = m
        .optional
        .as_deref()
        .is_some_and(|o| o.split(',').next() == Some("true"));
    let excepted = special::NULLABLE_HANDLES
        .iter()
        .any(|n| n.owner == owner && n.member == m.name);
    if optional && excepted {
        return Err(format!(
            "{owner}.{}: special::NULLABLE_HANDLES names a handle vk.xml marks optional",
            m.name
        ));
    }
    if !optional && !excepted && m.noautovalidity {
        return Err(format!(
            "{owner}.{}: a non-optional noautovalidity handle needs a special::NULLABLE_HANDLES row \
             (may it be NULL?)",
            m.name
        ));
    }
    Ok(!optional && !excepted)
}

/// A length that names a later member (`VkHostAddressRangeConstEXT`: `address` before `size`)
/// makes the struct unserializable here (the decoder needs the count first).
fn forward_lens(owner: &str, members: &[Member]) -> Result<(), Error> {
    for (i, m) in members.iter().enumerate() {
        if let Some(len) = shape_len(&m.shape) {
            let mut roots = Vec::new();
            len.roots(&mut roots);
            if let Some(r) = roots
                .iter()
                .find(|r| members[i..].iter().any(|x| x.name == r[0]))
            {
                return Err(format!(
                    "{owner}.{}: length {} comes after it",
                    m.name, r[0]
                ));
            }
        }
    }
    Ok(())
}

/// Marks members that other members' lengths refer to.
fn mark_lens(members: &mut [Member]) {
    let mut simple = BTreeSet::new();
    let mut complex = BTreeSet::new();
    for m in members.iter() {
        if let Some(len) = shape_len(&m.shape) {
            let mut roots = Vec::new();
            len.roots(&mut roots);
            for r in roots {
                if len.as_simple().is_some() {
                    simple.insert(r[0].clone());
                } else {
                    complex.insert(r[0].clone());
                }
            }
        }
    }
    for m in members.iter_mut() {
        m.is_len = simple.contains(&m.name) || complex.contains(&m.name);
        m.small = complex.contains(&m.name);
    }
}

pub fn shape_len(s: &Shape) -> Option<&LenExpr> {
    match s {
        Shape::Array { len, .. } | Shape::StrArray { len, .. } | Shape::Blob { len, .. } => {
            Some(len)
        }
        _ => None,
    }
}

fn shape_elem(s: &Shape) -> Option<&Elem> {
    match s {
        Shape::Value(e)
        | Shape::FixedArray(e, _)
        | Shape::Ptr { elem: e, .. }
        | Shape::Array { elem: e, .. } => Some(e),
        _ => None,
    }
}

pub fn build(
    reg: &Registry,
    ext_rows: &[ExtensionRow],
    cmd_rows: &[CommandRow],
    tables: &special::Tables,
) -> Result<Model, Error> {
    let mut reg = reg.clone();
    add_extra_structs(&mut reg)?;
    let mut b = Builder {
        reg: &reg,
        values: BTreeMap::new(),
        scope: BTreeSet::new(),
        required_types: BTreeSet::new(),
        enum_members: BTreeMap::new(),
        type_alias: BTreeMap::new(),
        extra_docs: special::EXTRA_STRUCTS
            .iter()
            .map(|e| (e.name.to_string(), e.why))
            .collect(),
    };
    for t in reg.types.values() {
        if let Some(a) = &t.alias {
            b.type_alias.insert(t.name.clone(), a.clone());
        }
    }
    b.resolve_values()?;
    b.collect_scope(ext_rows)?;

    // ---- commands ----
    let mut cmd_ids = command_type_values(&reg, &b.values);
    drop_beyond_level(&mut cmd_ids)?;
    let mut commands = Vec::new();
    for row in cmd_rows {
        if row.id > special::MAX_COMMAND_ID {
            return Err(format!("command id {} above the protocol level", row.id));
        }
        let xml_id = cmd_ids.get(&row.name).copied();
        if xml_id != Some(row.id as i64) {
            return Err(format!(
                "{}: table id {} but XML id {:?}",
                row.name, row.id, xml_id
            ));
        }
        let def = std::iter::once(&row.name)
            .chain(row.aliases.iter())
            .find_map(|n| {
                reg.commands
                    .get(n)
                    .or_else(|| reg.command_aliases.get(n).and_then(|t| reg.commands.get(t)))
            })
            .ok_or_else(|| format!("{}: no definition in the XML", row.name))?;
        let mut cmd = build_command(&b, row, def)?;
        cmd.provided_by = b.providers(&cmd);
        commands.push(cmd);
    }
    // ---- type closure ----
    let mut structs: BTreeMap<String, Struct> = BTreeMap::new();
    let mut unions: BTreeMap<String, Union> = BTreeMap::new();
    let mut used_enums = BTreeSet::new();
    let mut used_flags = BTreeSet::new();
    let mut used_handles = BTreeSet::new();
    let mut queue: VecDeque<String> = VecDeque::new();
    let mut unserializable: BTreeMap<String, String> = BTreeMap::new();

    // Candidate extenders: in-scope required structs.
    let mut extenders_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in &b.required_types {
        let t = b.canonical(t);
        if let Some(rt) = reg.types.get(&t) {
            if let RawTypeKind::Struct { extends, .. } = &rt.kind {
                for base in extends {
                    let base = b.canonical(base);
                    let v = extenders_of.entry(base).or_default();
                    if !v.contains(&t) {
                        v.push(t.clone());
                    }
                }
            }
        }
    }
    for v in extenders_of.values_mut() {
        v.sort();
    }

    let note_elem = |e: &Elem,
                     q: &mut VecDeque<String>,
                     en: &mut BTreeSet<String>,
                     fl: &mut BTreeSet<String>,
                     ha: &mut BTreeSet<String>| match e {
        Elem::Struct(s) | Elem::Union(s) => q.push_back(s.clone()),
        Elem::Enum(n) => {
            en.insert(n.clone());
        }
        Elem::Flags { name, .. } => {
            fl.insert(name.clone());
        }
        Elem::Handle(h) => {
            ha.insert(h.clone());
        }
        Elem::Scalar(_) => {}
    };
    for c in commands.iter().filter(|c| c.encoding.is_ok()) {
        for p in &c.params {
            if let Some(e) = shape_elem(&p.member.shape) {
                note_elem(
                    e,
                    &mut queue,
                    &mut used_enums,
                    &mut used_flags,
                    &mut used_handles,
                );
            }
        }
        if let Some(e) = &c.ret {
            note_elem(
                e,
                &mut queue,
                &mut used_enums,
                &mut used_flags,
                &mut used_handles,
            );
        }
    }
    let mut seen = BTreeSet::new();
    while let Some(name) = queue.pop_front() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let rt = &reg.types[&name];
        match &rt.kind {
            RawTypeKind::Struct { members, .. } => {
                let (s_type, ms) = match b.members_of(&name, members) {
                    Ok(x) => x,
                    Err(e) => {
                        unserializable.insert(name.clone(), e);
                        continue;
                    }
                };
                for m in &ms {
                    if let Some(e) = shape_elem(&m.shape) {
                        note_elem(
                            e,
                            &mut queue,
                            &mut used_enums,
                            &mut used_flags,
                            &mut used_handles,
                        );
                    }
                }
                let ext = if s_type.is_some() {
                    extenders_of.get(&name).cloned().unwrap_or_default()
                } else {
                    Vec::new()
                };
                for e in &ext {
                    queue.push_back(e.clone());
                }
                used_enums.insert("VkStructureType".to_string());
                structs.insert(
                    name.clone(),
                    Struct {
                        name: name.clone(),
                        s_type,
                        members: ms,
                        extenders: ext,
                        is_extender: false,
                        partial: false,
                        needs_lifetime: false,
                        doc: b.extra_docs.get(&name).copied(),
                    },
                );
            }
            RawTypeKind::Union { members } => {
                let (_, ms) = b.members_of(&name, members)?;
                for m in &ms {
                    if let Some(e) = shape_elem(&m.shape) {
                        note_elem(
                            e,
                            &mut queue,
                            &mut used_enums,
                            &mut used_flags,
                            &mut used_handles,
                        );
                    }
                }
                let default_tag = special::DEFAULT_UNION_TAGS
                    .iter()
                    .find(|d| d.union == name)
                    .map(|d| d.tag)
                    .ok_or_else(|| {
                        format!("union {name} has no default tag in special::DEFAULT_UNION_TAGS")
                    })?;
                unions.insert(
                    name.clone(),
                    Union {
                        name,
                        members: ms,
                        default_tag,
                        needs_lifetime: false,
                    },
                );
            }
            _ => return Err(format!("{name} queued but is not a struct or union")),
        }
    }
    cascade_unserializable(&mut structs, &mut unions, &mut unserializable);
    // Drop unserializable extenders; an unserializable struct used directly is an error.
    for s in structs.values_mut() {
        s.extenders.retain(|e| !unserializable.contains_key(e));
    }
    for (name, why) in &unserializable {
        let used_directly = structs.values().any(|s| {
            s.members
                .iter()
                .any(|m| shape_elem(&m.shape) == Some(&Elem::Struct(name.clone())))
        }) || commands.iter().filter(|c| c.encoding.is_ok()).any(|c| {
            c.params
                .iter()
                .any(|p| shape_elem(&p.member.shape) == Some(&Elem::Struct(name.clone())))
        });
        let in_struct = structs.values().any(|s| {
            s.members
                .iter()
                .any(|m| shape_elem(&m.shape) == Some(&Elem::Struct(name.clone())))
        });
        if in_struct {
            return Err(format!(
                "{name} cannot be serialized ({why}) but a struct member uses it"
            ));
        }
        if used_directly {
            // A command taking it has no encoding.
            for c in commands.iter_mut().filter(|c| c.encoding.is_ok()) {
                if c.params
                    .iter()
                    .any(|p| shape_elem(&p.member.shape) == Some(&Elem::Struct(name.clone())))
                {
                    c.encoding = Err(format!("{name}: {why}"));
                }
            }
        }
    }
    // The detected no-encoding set must equal the special-cases table.
    let detected: BTreeSet<&str> = commands
        .iter()
        .filter(|c| c.encoding.is_err())
        .map(|c| c.name.as_str())
        .collect();
    let present: BTreeSet<&str> = commands.iter().map(|c| c.name.as_str()).collect();
    let expected: BTreeSet<&str> = special::NO_ENCODING
        .iter()
        .map(|n| n.command)
        .filter(|n| present.contains(n))
        .collect();
    if detected != expected {
        return Err(format!(
            "commands without a wire encoding differ from special::NO_ENCODING: detected {detected:?}, table {expected:?}"
        ));
    }
    for c in &mut commands {
        if let Some(n) = special::NO_ENCODING.iter().find(|n| n.command == c.name) {
            c.encoding = Err(n.why.to_string());
        }
    }

    let all_extenders: BTreeSet<String> =
        structs.values().flat_map(|s| s.extenders.clone()).collect();
    for s in structs.values_mut() {
        s.is_extender = all_extenders.contains(&s.name);
    }

    // ---- partial (output) closure ----
    let mut pq: VecDeque<String> = VecDeque::new();
    for c in commands.iter().filter(|c| c.encoding.is_ok()) {
        for p in c.params.iter().filter(|p| p.dir != Dir::In) {
            if let Some(Elem::Struct(s)) = shape_elem(&p.member.shape) {
                pq.push_back(s.clone());
            }
            if let Some(Elem::Union(u)) = shape_elem(&p.member.shape) {
                return Err(format!("{}: union {u} in an output", c.name));
            }
        }
    }
    while let Some(n) = pq.pop_front() {
        let s = structs
            .get_mut(&n)
            .ok_or_else(|| format!("output struct {n} not in closure"))?;
        if s.partial {
            continue;
        }
        s.partial = true;
        for m in &s.members {
            match shape_elem(&m.shape) {
                Some(Elem::Struct(x)) => pq.push_back(x.clone()),
                Some(Elem::Union(u))
                    if !matches!(m.shape, Shape::Value(_) | Shape::FixedArray(..)) =>
                {
                    return Err(format!(
                        "{n}.{}: union {u} behind a pointer in an output",
                        m.name
                    ));
                }
                _ => {}
            }
            if matches!(m.shape, Shape::Str | Shape::StrArray { .. }) {
                return Err(format!("{n}.{}: string in an output struct", m.name));
            }
        }
        for e in s.extenders.clone() {
            pq.push_back(e);
        }
    }

    // ---- lifetimes (fixpoint) ----
    loop {
        let mut changed = false;
        let needs: BTreeSet<String> = structs
            .values()
            .filter(|s| s.needs_lifetime)
            .map(|s| s.name.clone())
            .chain(
                unions
                    .values()
                    .filter(|u| u.needs_lifetime)
                    .map(|u| u.name.clone()),
            )
            .collect();
        let shape_needs = |sh: &Shape| match sh {
            Shape::Ptr { .. }
            | Shape::Array { .. }
            | Shape::Str
            | Shape::StrArray { .. }
            | Shape::Blob { .. } => true,
            Shape::Value(Elem::Struct(x) | Elem::Union(x))
            | Shape::FixedArray(Elem::Struct(x) | Elem::Union(x), _) => needs.contains(x),
            _ => false,
        };
        for s in structs.values_mut() {
            let n = s.s_type.is_some() || s.members.iter().any(|m| shape_needs(&m.shape));
            if n && !s.needs_lifetime {
                s.needs_lifetime = true;
                changed = true;
            }
        }
        for u in unions.values_mut() {
            let n = u.members.iter().any(|m| shape_needs(&m.shape));
            if n && !u.needs_lifetime {
                u.needs_lifetime = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let needs: BTreeSet<String> = structs
        .values()
        .filter(|s| s.needs_lifetime)
        .map(|s| s.name.clone())
        .chain(
            unions
                .values()
                .filter(|u| u.needs_lifetime)
                .map(|u| u.name.clone()),
        )
        .collect();
    for c in &mut commands {
        c.needs_lifetime = c.params.iter().any(|p| match &p.member.shape {
            Shape::Ptr { .. }
            | Shape::Array { .. }
            | Shape::Str
            | Shape::StrArray { .. }
            | Shape::Blob { .. } => true,
            Shape::Value(Elem::Struct(x) | Elem::Union(x)) => needs.contains(x),
            _ => false,
        });
    }

    // ---- enums, bitmasks, handles ----
    let mut enums = BTreeMap::new();
    for name in &used_enums {
        enums.insert(
            name.clone(),
            EnumType {
                name: name.clone(),
                values: enum_values(&b, name),
            },
        );
    }
    // Result is always needed for return values.
    if !enums.contains_key("VkResult") {
        enums.insert(
            "VkResult".into(),
            EnumType {
                name: "VkResult".into(),
                values: enum_values(&b, "VkResult"),
            },
        );
    }
    let mut bitmasks = BTreeMap::new();
    for name in &used_flags {
        let rt = &reg.types[name];
        let (wide, bits) = match &rt.kind {
            RawTypeKind::Bitmask { base, bits } => (
                base == "VkFlags64",
                bits.as_ref()
                    .map(|bn| enum_values(&b, bn))
                    .unwrap_or_default(),
            ),
            _ => return Err(format!("{name} is not a bitmask")),
        };
        bitmasks.insert(
            name.clone(),
            Bitmask {
                name: name.clone(),
                wide,
                bits,
            },
        );
    }
    let mut handles = BTreeMap::new();
    for (name, t) in &reg.types {
        if let RawTypeKind::Handle {
            dispatchable,
            objtype,
        } = &t.kind
        {
            if t.alias.is_some() {
                continue;
            }
            if used_handles.contains(name) || b.required_types.contains(name) {
                handles.insert(
                    name.clone(),
                    Handle {
                        name: name.clone(),
                        dispatchable: *dispatchable,
                        object_type: objtype.as_ref().and_then(|o| b.values.get(o).copied()),
                    },
                );
            }
        }
    }

    let mut constants = BTreeMap::new();
    for n in reg.constants.keys() {
        if let Some(v) = b.values.get(n) {
            constants.insert(n.clone(), *v);
        }
    }

    let extensions = ext_rows
        .iter()
        .map(|e| Extension {
            name: e.name.clone(),
            number: e.number,
            spec_version: e.spec_version,
        })
        .collect();
    let spec = |n: &str| {
        ext_rows
            .iter()
            .find(|e| e.name == n)
            .map(|e| e.spec_version)
            .ok_or(format!("{n} missing"))
    };
    let header = b
        .values
        .get("VK_HEADER_VERSION")
        .copied()
        .ok_or("no VK_HEADER_VERSION")?;
    let (major, minor) = special::VK_XML_API;
    let newest = format!("VK_VERSION_{major}_{minor}");
    let next = format!("VK_VERSION_{major}_{}", minor + 1);
    if reg.features.iter().any(|f| f.name == next) {
        return Err(format!(
            "special::VK_XML_API says {newest} is the newest core version, but vk.xml has {next}"
        ));
    }
    let versions = Versions {
        vk_xml_version: (major, minor, header as u32),
        command_serialization_spec: spec("VK_EXT_command_serialization")?,
        venus_protocol_spec: spec("VK_MESA_venus_protocol")?,
    };

    let (host_structs, host_commands) = host_only(&b, tables)?;
    let mut model = Model {
        structs,
        unions,
        enums,
        bitmasks,
        handles,
        commands,
        extensions,
        versions,
        constants,
        checks: Vec::new(),
        check_values: BTreeMap::new(),
        host_structs,
        host_commands,
        not_advertised: not_advertised(ext_rows, tables)?,
        hidden_features: Vec::new(),
        formats: crate::formats::build(&reg.formats, &enum_values(&b, "VkFormat"))?,
    };
    model.hidden_features = hidden_features(&model, tables)?;
    check_len_refs(&model)?;
    crate::policy::apply(&mut model, tables, &b.values)?;
    Ok(model)
}

/// The rows of `tables.not_advertised`; each must name an extension of the protocol table.
fn not_advertised(
    ext_rows: &[ExtensionRow],
    tables: &special::Tables,
) -> Result<Vec<(String, &'static str)>, Error> {
    tables
        .not_advertised
        .iter()
        .map(|(name, why)| {
            if ext_rows.iter().any(|e| e.name == *name) {
                Ok((name.to_string(), *why))
            } else {
                Err(format!(
                    "not_advertised: {name} is not in the protocol's extension table"
                ))
            }
        })
        .collect()
}

/// The rows of `tables.hidden_features`, each a 32-bit scalar member of an existing struct
/// whose extension is a `not_advertised` row.
fn hidden_features(
    model: &Model,
    tables: &special::Tables,
) -> Result<Vec<(String, String)>, Error> {
    tables
        .hidden_features
        .iter()
        .map(|h| {
            let st = model
                .structs
                .get(h.structure)
                .ok_or_else(|| format!("hidden feature: no struct {}", h.structure))?;
            let m = st
                .members
                .iter()
                .find(|m| m.name == h.member)
                .ok_or_else(|| {
                    format!("hidden feature: {} has no member {}", h.structure, h.member)
                })?;
            if !matches!(m.shape, Shape::Value(Elem::Scalar(Scalar::U32))) {
                return Err(format!(
                    "hidden feature: {}.{} is not a VkBool32",
                    h.structure, h.member
                ));
            }
            if !model.not_advertised.iter().any(|(e, _)| e == h.extension) {
                return Err(format!(
                    "hidden feature: {}.{}: {} is not a not_advertised extension",
                    h.structure, h.member, h.extension
                ));
            }
            Ok((h.structure.to_string(), h.member.to_string()))
        })
        .collect()
}

/// The host-only structs and commands of `tables`, typed from the XML as written.
fn host_only(
    b: &Builder,
    tables: &special::Tables,
) -> Result<(Vec<HostStruct>, Vec<HostCommand>), Error> {
    let ty = |owner: &str, m: &RawMember| -> Result<HostType, Error> {
        let base = match m.ty.as_str() {
            "int" => HostType::CInt,
            "void" if m.pointers == 1 => {
                return Ok(HostType::VoidPtr {
                    is_const: m.is_const,
                })
            }
            t => HostType::Elem(
                b.elem_of(t)
                    .map_err(|e| format!("host-only {owner}.{}: {e}", m.name))?,
            ),
        };
        if !m.array_dims.is_empty() || m.pointers > 1 {
            return Err(format!("host-only {owner}.{}: unsupported C type", m.name));
        }
        Ok(if m.pointers == 1 {
            HostType::Ptr {
                to: Box::new(base),
                is_const: m.is_const,
            }
        } else {
            base
        })
    };
    let mut structs = Vec::new();
    let mut commands = Vec::new();
    for h in tables.host_only {
        if !b.reg.extensions.iter().any(|x| x.name == h.extension) {
            return Err(format!(
                "host-only extension {} is not in the XML",
                h.extension
            ));
        }
        for name in h.structs {
            let Some(RawTypeKind::Struct { members, .. }) = b.reg.types.get(*name).map(|t| &t.kind)
            else {
                return Err(format!(
                    "host-only struct {name} is not a struct of the XML"
                ));
            };
            let mut s_type = None;
            let mut out = Vec::new();
            for m in members {
                if m.name == "sType" {
                    let v = m
                        .values
                        .clone()
                        .ok_or(format!("{name}: sType without values"))?;
                    let n = *b.values.get(&v).ok_or(format!("{name}: unknown {v}"))?;
                    s_type = Some((v, n));
                } else if m.name != "pNext" {
                    out.push((m.name.clone(), ty(name, m)?));
                }
            }
            structs.push(HostStruct {
                name: name.to_string(),
                s_type: s_type.ok_or(format!("host-only struct {name} has no sType"))?,
                members: out,
            });
        }
        for name in h.commands {
            let def = b
                .reg
                .commands
                .get(*name)
                .ok_or(format!("host-only command {name} is not in the XML"))?;
            let ret = match def.ret.as_str() {
                "void" => None,
                r => Some(b.elem_of(r)?),
            };
            let params = def
                .params
                .iter()
                .map(|p| Ok((p.name.clone(), ty(name, p)?)))
                .collect::<Result<_, Error>>()?;
            commands.push(HostCommand {
                name: name.to_string(),
                params,
                ret,
            });
        }
    }
    Ok((structs, commands))
}

fn enum_values(b: &Builder, name: &str) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    if let Some(e) = b.reg.enums.get(name) {
        for v in &e.values {
            if let Some(x) = b.values.get(&v.name) {
                if seen.insert(v.name.clone()) {
                    out.push((v.name.clone(), *x));
                }
            }
        }
    }
    if let Some(extra) = b.enum_members.get(name) {
        for n in extra {
            if let Some(x) = b.values.get(n) {
                if seen.insert(n.clone()) {
                    out.push((n.clone(), *x));
                }
            }
        }
    }
    out
}

fn command_type_values(reg: &Registry, values: &BTreeMap<String, i64>) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    if let Some(e) = reg.enums.get("VkCommandTypeEXT") {
        for v in &e.values {
            if let Some(cmd) = v
                .name
                .strip_prefix("VK_COMMAND_TYPE_")
                .and_then(|s| s.strip_suffix("_EXT"))
            {
                if let Some(x) = values.get(&v.name) {
                    out.insert(cmd.to_string(), *x);
                }
            }
        }
    }
    out
}

/// A struct or union with a member of an unserializable struct (e.g. the host-pointer regions
/// of `VkCopyImageToMemoryInfo`) cannot be serialized either: moves it, to a fixpoint.
fn cascade_unserializable(
    structs: &mut BTreeMap<String, Struct>,
    unions: &mut BTreeMap<String, Union>,
    unserializable: &mut BTreeMap<String, String>,
) {
    loop {
        let bad = |ms: &[Member], bad: &BTreeMap<String, String>| {
            ms.iter().find_map(|m| match shape_elem(&m.shape) {
                Some(Elem::Struct(x) | Elem::Union(x)) if bad.contains_key(x) => {
                    Some(format!("{}: {x} cannot be serialized", m.name))
                }
                _ => None,
            })
        };
        let mut moved = Vec::new();
        for s in structs.values() {
            if let Some(why) = bad(&s.members, unserializable) {
                moved.push((s.name.clone(), why));
            }
        }
        for u in unions.values() {
            if let Some(why) = bad(&u.members, unserializable) {
                moved.push((u.name.clone(), why));
            }
        }
        if moved.is_empty() {
            return;
        }
        for (name, why) in moved {
            structs.remove(&name);
            unions.remove(&name);
            unserializable.insert(name, why);
        }
    }
}

/// Removes the command-type names above [`special::MAX_COMMAND_ID`], which must all be in
/// [`special::BEYOND_LEVEL`] (a golden test checks the vendored file has exactly those).
fn drop_beyond_level(ids: &mut BTreeMap<String, i64>) -> Result<(), Error> {
    let beyond: BTreeSet<String> = ids
        .iter()
        .filter(|(_, v)| **v > i64::from(special::MAX_COMMAND_ID))
        .map(|(n, _)| n.clone())
        .collect();
    let expected: BTreeSet<String> = special::BEYOND_LEVEL
        .iter()
        .map(|s| s.to_string())
        .collect();
    if !beyond.is_subset(&expected) {
        return Err(format!(
            "command types above id {} differ from special::BEYOND_LEVEL: XML {beyond:?}, table {expected:?}",
            special::MAX_COMMAND_ID
        ));
    }
    ids.retain(|n, _| !beyond.contains(n));
    Ok(())
}

fn build_command(
    b: &Builder,
    row: &CommandRow,
    def: &crate::registry::RawCommand,
) -> Result<Command, Error> {
    let mut encoding = Ok(());
    let ret = match def.ret.as_str() {
        "void" => None,
        r => match b.elem_of(r) {
            Ok(e) => Some(e),
            Err(e) => {
                encoding = Err(format!("return type: {e}"));
                None
            }
        },
    };
    // Parameters referred to by another parameter's length are in/out counts.
    let mut len_roots = BTreeSet::new();
    for p in &def.params {
        for t in [&p.len, &p.altlen].into_iter().flatten() {
            if let Ok(e) = parse_len(t.split(',').next().unwrap_or("")) {
                let mut r = Vec::new();
                e.roots(&mut r);
                for x in r {
                    len_roots.insert(x[0].clone());
                }
            }
        }
    }
    let mut params = Vec::new();
    for p in &def.params {
        match b.shape_of(p) {
            Ok(shape) => {
                let dir = if p.pointers > 0 && !p.is_const && !matches!(shape, Shape::NullOnly) {
                    if len_roots.contains(&p.name) {
                        Dir::InOut
                    } else {
                        Dir::Out
                    }
                } else {
                    Dir::In
                };
                let non_null = non_null_handle(&row.name, p, &shape)?;
                params.push(Param {
                    member: Member {
                        name: p.name.clone(),
                        shape,
                        is_len: false,
                        small: false,
                        non_null,
                    },
                    dir,
                });
            }
            Err(e) => {
                if encoding.is_ok() {
                    encoding = Err(e);
                }
            }
        }
    }
    let mut members: Vec<Member> = params.iter().map(|p| p.member.clone()).collect();
    mark_lens(&mut members);
    for (p, m) in params.iter_mut().zip(members) {
        p.member = m;
    }
    Ok(Command {
        id: row.id,
        name: row.name.clone(),
        aliases: row.aliases.clone(),
        params,
        ret,
        encoding,
        class: Class::Generic,
        destroy: None,
        needs_lifetime: false,
        provided_by: Vec::new(),
    })
}

/// Every length must refer to something decoded earlier in the same struct or command.
fn check_len_refs(model: &Model) -> Result<(), Error> {
    let check = |owner: &str, members: &[&Member]| -> Result<(), Error> {
        for (i, m) in members.iter().enumerate() {
            if let Some(len) = shape_len(&m.shape) {
                let mut roots = Vec::new();
                len.roots(&mut roots);
                for r in roots {
                    if !members[..i].iter().any(|x| x.name == r[0]) {
                        return Err(format!(
                            "{owner}.{}: length refers to {} which is not decoded before it",
                            m.name, r[0]
                        ));
                    }
                }
            }
        }
        Ok(())
    };
    for s in model.structs.values() {
        check(&s.name, &s.members.iter().collect::<Vec<_>>())?;
    }
    for c in model.commands.iter().filter(|c| c.encoding.is_ok()) {
        check(
            &c.name,
            &c.params.iter().map(|p| &p.member).collect::<Vec<_>>(),
        )?;
    }
    Ok(())
}

fn add_extra_structs(reg: &mut Registry) -> Result<(), Error> {
    use crate::registry::{RawEnumerant, RawType};
    for e in special::EXTRA_STRUCTS {
        if reg.types.contains_key(e.name) {
            return Err(format!(
                "{} is already in the XML; remove it from special::EXTRA_STRUCTS",
                e.name
            ));
        }
        let mut members = vec![
            RawMember {
                name: "sType".into(),
                ty: "VkStructureType".into(),
                is_const: false,
                pointers: 0,
                array_dims: vec![],
                len: None,
                altlen: None,
                optional: None,
                noautovalidity: false,
                values: Some(e.s_type.into()),
                selector: None,
                selection: None,
            },
            RawMember {
                name: "pNext".into(),
                ty: "void".into(),
                is_const: true,
                pointers: 1,
                array_dims: vec![],
                len: None,
                altlen: None,
                optional: Some("true".into()),
                noautovalidity: false,
                values: None,
                selector: None,
                selection: None,
            },
        ];
        for (ty, name) in e.members {
            members.push(RawMember {
                name: name.to_string(),
                ty: ty.to_string(),
                is_const: false,
                pointers: 0,
                array_dims: vec![],
                len: None,
                altlen: None,
                optional: None,
                noautovalidity: false,
                values: None,
                selector: None,
                selection: None,
            });
        }
        reg.types.insert(
            e.name.into(),
            RawType {
                name: e.name.into(),
                kind: RawTypeKind::Struct {
                    members,
                    extends: vec![e.extends.into()],
                    returned_only: false,
                },
                alias: None,
            },
        );
        // Attach the struct and its sType to the extension that owns the extended struct.
        let owner = reg
            .extensions
            .iter_mut()
            .find(|x| {
                x.requires
                    .iter()
                    .any(|r| r.types.iter().any(|t| t == e.extends))
            })
            .ok_or_else(|| format!("no extension requires {}", e.extends))?;
        let req = owner
            .requires
            .first_mut()
            .ok_or("extension without require")?;
        req.types.push(e.name.into());
        req.enum_extensions.push((
            "VkStructureType".into(),
            RawEnumerant {
                name: e.s_type.into(),
                value: RawEnumValue::Offset {
                    offset: e.s_type_offset,
                    extnumber: None,
                    negative: false,
                },
            },
        ));
    }
    Ok(())
}
