//! The per-command policy and the size/stride/limit rules, validated against the model.
//!
//! Input: the model built from the XML and [`special::Tables`]. Output: every command's
//! [`Class`] (Generic, Handwritten, Destroy, Refused) and, for destroying commands, their
//! [`DestroyShape`]; the checked rule list in [`Model::checks`]. A row naming a command,
//! parameter, member, limit or enumerant that does not exist is an error here.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Class, Command, DestroyShape, Dir, Elem, Member, Model, Scalar, Shape};
use crate::special::{self, Check, PolicyKind};

type Error = String;

/// Fills `class`/`destroy` of every command and `model.checks`.
pub fn apply(
    model: &mut Model,
    tables: &special::Tables,
    values: &BTreeMap<String, i64>,
) -> Result<(), Error> {
    for c in model.commands.iter_mut().filter(|c| executable(c)) {
        c.destroy = destroy_shape(c)?;
        if c.destroy.is_some() {
            c.class = Class::Destroy;
        }
    }
    let mut seen = Vec::new();
    for row in tables.policies {
        if seen.contains(&row.command) {
            return Err(format!("policy: {} has two rows", row.command));
        }
        seen.push(row.command);
        let c = model
            .commands
            .iter_mut()
            .find(|c| c.name == row.command)
            .ok_or(format!("policy: no command {}", row.command))?;
        if !executable(c) {
            return Err(format!("policy: {} has no wire encoding", row.command));
        }
        c.class = match row.policy {
            PolicyKind::Handwritten { why } => Class::Handwritten(why),
            PolicyKind::Refused { why } => Class::Refused(why.to_string()),
        };
    }
    refuse_not_advertised(model)?;
    for check in tables.checks {
        validate(model, tables, values, check)
            .map_err(|e| format!("check on {}: {e}", check.owner()))?;
    }
    model.checks = tables.checks.to_vec();
    for check in tables.checks {
        let names: Vec<&str> = match *check {
            Check::SelectedArray { arms, .. } => {
                arms.iter().flat_map(|a| a.0.iter().copied()).collect()
            }
            Check::ChainedBytes { value, .. } => vec![value],
            _ => continue,
        };
        for n in names {
            model.check_values.insert(n.to_string(), values[n]);
        }
    }
    Ok(())
}

/// Refuses every command that only not-advertised extensions provide: no `<require>` block
/// naming it (or an alias) belongs to an in-scope core version or advertised protocol
/// extension with its `depends` satisfied by what is advertised. This covers the executable
/// commands and the MESA commands of our supplement whose block depends on such an extension
/// (297/298, 335/336). The reason names each extension and why it is not advertised. A policy
/// row for such a command is an error: the extension's `not_advertised` row is the one source.
pub fn refuse_not_advertised(model: &mut Model) -> Result<(), Error> {
    let hidden: BTreeMap<&str, &str> = model
        .not_advertised
        .iter()
        .map(|(n, w)| (n.as_str(), *w))
        .collect();
    let advertised: BTreeSet<String> = special::CORE_VERSIONS
        .iter()
        .map(|v| v.to_string())
        .chain(model.extensions.iter().map(|e| e.name.clone()))
        .filter(|n| !hidden.contains_key(n.as_str()))
        .collect();
    let mut refused = Vec::new();
    for (i, c) in model.commands.iter().enumerate() {
        let available = c.provided_by.iter().any(|(owner, depends)| {
            advertised.contains(owner)
                && depends
                    .as_deref()
                    .is_none_or(|d| crate::model::depends_ok(d, &advertised))
        });
        if c.encoding.is_err() || c.provided_by.is_empty() || available {
            continue;
        }
        let mut whys: Vec<String> = Vec::new();
        for (owner, depends) in &c.provided_by {
            let named = std::iter::once(owner.as_str()).chain(
                depends
                    .as_deref()
                    .unwrap_or("")
                    .split([',', '+', '(', ')'])
                    .map(str::trim),
            );
            for n in named {
                if let Some(w) = hidden.get(n) {
                    let line = format!("{n} is not advertised ({w})");
                    if !whys.contains(&line) {
                        whys.push(line);
                    }
                }
            }
        }
        if whys.is_empty() || matches!(c.class, Class::Handwritten(_) | Class::Refused(_)) {
            return Err(format!(
                "policy: {} is provided only by blocks that are not advertised ({:?}), \
                 but {}",
                c.name,
                c.provided_by,
                if whys.is_empty() {
                    "no not_advertised row explains why"
                } else {
                    "it also has a policy row"
                }
            ));
        }
        refused.push((i, whys.join("; ")));
    }
    for (i, why) in refused {
        model.commands[i].class = Class::Refused(why);
        model.commands[i].destroy = None;
    }
    Ok(())
}

/// Encodable Vulkan commands (what the host executes); MESA commands are the transport's.
pub fn executable(c: &Command) -> bool {
    c.encoding.is_ok() && !c.name.ends_with("MESA")
}

/// The destroyed handle type, object parameter and pool of a vkDestroyX/vkFree* command.
fn destroy_shape(cmd: &Command) -> Result<Option<DestroyShape>, Error> {
    let target = if let Some(x) = cmd.name.strip_prefix("vkDestroy") {
        format!("Vk{x}")
    } else if let Some(x) = cmd.name.strip_prefix("vkFree") {
        match x {
            "Memory" => "VkDeviceMemory".to_string(),
            _ => format!("Vk{}", x.strip_suffix('s').unwrap_or(x)),
        }
    } else {
        return Ok(None);
    };
    let parent = cmd
        .params
        .first()
        .map(|p| p.member.name.clone())
        .ok_or(format!("{}: destroys without parameters", cmd.name))?;
    let mut object = None;
    let mut pool = None;
    for (i, p) in cmd
        .params
        .iter()
        .enumerate()
        .filter(|(_, p)| p.dir == Dir::In)
    {
        match &p.member.shape {
            Shape::Value(Elem::Handle(h)) if *h == target => {
                object = Some((p.member.name.clone(), false))
            }
            Shape::Array {
                elem: Elem::Handle(h),
                ..
            } if *h == target => object = Some((p.member.name.clone(), true)),
            Shape::Value(Elem::Handle(h)) if i > 0 => {
                pool = Some((p.member.name.clone(), h.clone()))
            }
            _ => {}
        }
    }
    let (object, array) = object.ok_or(format!(
        "{}: looks like a destroying command but no parameter is a {target}",
        cmd.name
    ))?;
    Ok(Some(DestroyShape {
        target,
        parent,
        object,
        pool,
        array,
    }))
}

fn command<'m>(model: &'m Model, name: &str) -> Result<&'m Command, Error> {
    model
        .commands
        .iter()
        .find(|c| c.name == name && executable(c))
        .ok_or(format!("no executable command {name}"))
}

fn param<'m>(c: &'m Command, name: &str) -> Result<&'m Member, Error> {
    c.params
        .iter()
        .find(|p| p.member.name == name && p.dir == Dir::In)
        .map(|p| &p.member)
        .ok_or(format!("{} has no input parameter {name}", c.name))
}

fn member<'m>(model: &'m Model, structure: &str, name: &str) -> Result<&'m Member, Error> {
    model
        .structs
        .get(structure)
        .ok_or(format!("no struct {structure}"))?
        .members
        .iter()
        .find(|m| m.name == name)
        .ok_or(format!("{structure} has no member {name}"))
}

fn integer(m: &Member) -> Result<(), Error> {
    match m.shape {
        Shape::Value(Elem::Scalar(
            Scalar::U32 | Scalar::U64 | Scalar::SizeT | Scalar::I32 | Scalar::U16 | Scalar::U8,
        )) => Ok(()),
        _ => Err(format!("{} is not an integer value", m.name)),
    }
}

fn array(m: &Member) -> Result<&Elem, Error> {
    match &m.shape {
        Shape::Array { elem, .. } => Ok(elem),
        Shape::Blob { .. } => Ok(&Elem::Scalar(Scalar::U8)),
        _ => Err(format!("{} is not an array", m.name)),
    }
}

fn limit(model: &Model, tables: &special::Tables, name: &str) -> Result<(), Error> {
    integer(member(model, tables.limits_struct, name)?)
}

/// The value of `enumerant`, which must belong to the enum of member `m`.
pub fn enumerant(
    model: &Model,
    m: &Member,
    enumerant: &str,
    values: &BTreeMap<String, i64>,
) -> Result<i64, Error> {
    let Shape::Value(Elem::Enum(e)) = &m.shape else {
        return Err(format!("{} is not an enum", m.name));
    };
    let known = model
        .enums
        .get(e)
        .is_some_and(|t| t.values.iter().any(|(n, _)| n == enumerant));
    match values.get(enumerant) {
        Some(v) if known => Ok(*v),
        _ => Err(format!("{enumerant} is not a value of {e}")),
    }
}

fn validate(
    model: &Model,
    tables: &special::Tables,
    values: &BTreeMap<String, i64>,
    check: &Check,
) -> Result<(), Error> {
    match *check {
        Check::PackedStride {
            command: c,
            param: p,
            array: a,
        } => {
            let c = command(model, c)?;
            integer(param(c, p)?)?;
            match array(param(c, a)?)? {
                Elem::Struct(_) => Ok(()),
                _ => Err(format!("{a} is not an array of structs")),
            }
        }
        Check::OutputExtent {
            command: c,
            buffer,
            size,
            count,
            stride,
            ..
        } => {
            let c = command(model, c)?;
            let b = c
                .params
                .iter()
                .find(|p| p.member.name == buffer && p.dir == Dir::Out)
                .ok_or(format!("{} has no output {buffer}", c.name))?;
            if !matches!(b.member.shape, Shape::Blob { .. }) {
                return Err(format!("{buffer} is not a byte buffer"));
            }
            for p in [size, count, stride] {
                integer(param(c, p)?)?;
            }
            Ok(())
        }
        Check::DeviceLimit {
            command: c,
            first,
            count,
            limit: l,
        } => {
            let c = command(model, c)?;
            integer(param(c, count)?)?;
            if let Some(f) = first {
                integer(param(c, f)?)?;
            }
            limit(model, tables, l)
        }
        Check::MemberLimit {
            structure,
            member: m,
            limit: l,
            ..
        } => {
            integer(member(model, structure, m)?)?;
            limit(model, tables, l)
        }
        Check::SpirvModule { structure, code } => {
            let mm = member(model, structure, code)?;
            if !matches!(
                mm.shape,
                Shape::Array {
                    elem: Elem::Scalar(Scalar::U32),
                    ..
                }
            ) {
                return Err(format!(
                    "{structure}.{code} is not an array of 32-bit words"
                ));
            }
            Ok(())
        }
        Check::MultipleOf {
            structure,
            member: m,
            factor,
        } => {
            if factor == 0 {
                return Err("factor 0".into());
            }
            integer(member(model, structure, m)?)
        }
        Check::QueueFamily {
            structure,
            member: m,
        } => match member(model, structure, m)?.shape {
            Shape::Value(Elem::Scalar(Scalar::U32)) => Ok(()),
            _ => Err(format!("{m} is not a uint32_t")),
        },
        Check::EntriesWithin {
            structure,
            array: a,
            offset,
            size,
            total,
        } => {
            integer(member(model, structure, total)?)?;
            let Elem::Struct(e) = array(member(model, structure, a)?)? else {
                return Err(format!("{a} is not an array of structs"));
            };
            integer(member(model, e, offset)?)?;
            integer(member(model, e, size)?)
        }
        Check::SelectedArray {
            structure,
            count,
            selector,
            arms,
        } => {
            integer(member(model, structure, count)?)?;
            let sel = member(model, structure, selector)?;
            for (names, a) in arms {
                array(member(model, structure, a)?)?;
                for n in *names {
                    enumerant(model, sel, n, values)?;
                }
            }
            Ok(())
        }
        Check::ChainedBytes {
            structure,
            selector,
            value,
            count,
            link,
            array: a,
        } => {
            integer(member(model, structure, count)?)?;
            enumerant(model, member(model, structure, selector)?, value, values)?;
            let s = model
                .structs
                .get(structure)
                .ok_or(format!("no struct {structure}"))?;
            if !s.extenders.iter().any(|e| e == link) {
                return Err(format!("{link} does not extend {structure}"));
            }
            array(member(model, link, a)?).map(|_| ())
        }
        Check::NonZero {
            structure,
            member: path,
            ..
        } => nonzero_leaves(model, structure, path).map(drop),
        Check::SingleBit {
            structure,
            member: m,
            ..
        } => single_bits(model, member(model, structure, m)?).map(drop),
        Check::ImageExtent { structure, .. } => {
            for m in ["imageType", "flags", "mipLevels"] {
                member(model, structure, m)?;
            }
            nonzero_leaves(model, structure, "extent").map(drop)
        }
        Check::Range { owner, rule, .. } => validate_range(model, owner, rule),
        Check::Below {
            structure,
            member: m,
            ..
        } => integer(member(model, structure, m)?),
    }
}

/// One step of a [`Check::Range`] operand path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seg {
    pub name: String,
    pub index: Index,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Index {
    /// A plain member or parameter.
    None,
    /// `x[]`: each element of counted array `x`.
    Each,
    /// `x[N]`: element N of a fixed array.
    Fixed(usize),
}

/// A resolved operand path: its steps and the element type it ends at.
#[derive(Clone, Debug)]
pub struct RangePath {
    pub segs: Vec<Seg>,
    pub elem: Elem,
}

/// Resolves operand `path` of a range rule owned by `owner` (a command's input parameters or a
/// struct's members).
pub fn range_path(model: &Model, owner: &str, path: &str) -> Result<RangePath, Error> {
    let mut segs = Vec::new();
    let mut elem: Option<Elem> = None;
    for (i, raw) in path.split('.').enumerate() {
        let (name, index) = match raw.split_once('[') {
            None => (raw, Index::None),
            Some((n, "]")) => (n, Index::Each),
            Some((n, rest)) => {
                let k = rest
                    .strip_suffix(']')
                    .and_then(|k| k.parse().ok())
                    .ok_or(format!("{path}: bad index in {raw}"))?;
                (n, Index::Fixed(k))
            }
        };
        let m = if i == 0 && owner.starts_with("vk") {
            param(command(model, owner)?, name)?
        } else {
            let st = match (i, &elem) {
                (0, _) => owner.to_string(),
                (_, Some(Elem::Struct(st))) => st.clone(),
                _ => return Err(format!("{path}: {name} is not inside a struct")),
            };
            member(model, &st, name)?
        };
        elem = Some(match (&index, &m.shape) {
            (Index::None, Shape::Value(e)) => e.clone(),
            (
                Index::None,
                Shape::Ptr {
                    elem: e @ Elem::Struct(_),
                    optional: false,
                },
            ) if i == 0 => e.clone(),
            (Index::Each, Shape::Array { elem, .. }) => elem.clone(),
            (Index::Fixed(k), Shape::FixedArray(e, n)) if k < n => e.clone(),
            _ => return Err(format!("{path}: {raw} does not match {}'s shape", m.name)),
        });
        segs.push(Seg {
            name: name.to_string(),
            index,
        });
    }
    Ok(RangePath {
        segs,
        elem: elem.ok_or(format!("{owner}: empty path"))?,
    })
}

fn expect(
    model: &Model,
    owner: &str,
    path: &str,
    what: &str,
    ok: fn(&Elem) -> bool,
) -> Result<(), Error> {
    let p = range_path(model, owner, path)?;
    if ok(&p.elem) {
        Ok(())
    } else {
        Err(format!("{path} is {:?}, not {what}", p.elem))
    }
}

fn is_int(e: &Elem) -> bool {
    matches!(
        e,
        Elem::Scalar(Scalar::U32 | Scalar::U64 | Scalar::SizeT | Scalar::I32)
    )
}

fn validate_range(model: &Model, owner: &str, rule: special::RangeRule) -> Result<(), Error> {
    use special::{RangeRule, Size};
    let handle = |path: &str, types: &'static [&'static str]| -> Result<(), Error> {
        match range_path(model, owner, path)?.elem {
            Elem::Handle(h) if types.contains(&h.as_str()) => Ok(()),
            e => Err(format!("{path} is {e:?}, not one of {types:?}")),
        }
    };
    let structure = |path: &str, name: &'static str| -> Result<(), Error> {
        match range_path(model, owner, path)?.elem {
            Elem::Struct(s) if s == name => Ok(()),
            e => Err(format!("{path} is {e:?}, not {name}")),
        }
    };
    match rule {
        RangeRule::Bytes {
            object,
            offset,
            size,
        } => {
            handle(object, &["VkBuffer", "VkDeviceMemory"])?;
            expect(model, owner, offset, "an integer", is_int)?;
            match size {
                Size::Exact(x) | Size::WholeOr(x) => expect(model, owner, x, "an integer", is_int),
                Size::Fixed(_) => Ok(()),
                Size::Strided { count, stride, .. } => {
                    expect(model, owner, count, "an integer", is_int)?;
                    expect(model, owner, stride, "an integer", is_int)
                }
            }
        }
        RangeRule::ImageRange { image, range } => {
            handle(image, &["VkImage"])?;
            structure(range, "VkImageSubresourceRange")
        }
        RangeRule::ImageRegion {
            image,
            layers,
            offset,
            extent,
            extent_in,
        } => {
            handle(image, &["VkImage"])?;
            if let Some(src) = extent_in {
                handle(src, &["VkImage"])?;
                if extent.is_none() {
                    return Err(format!("{src}: extent_in without an extent"));
                }
            }
            structure(layers, "VkImageSubresourceLayers")?;
            if let Some(o) = offset {
                structure(o, "VkOffset3D")?;
            }
            if let Some(e) = extent {
                structure(e, "VkExtent3D")?;
            }
            Ok(())
        }
        RangeRule::BufferImage {
            buffer,
            image,
            region,
        } => {
            handle(buffer, &["VkBuffer"])?;
            handle(image, &["VkImage"])?;
            match range_path(model, owner, region)?.elem {
                Elem::Struct(s) if s == "VkBufferImageCopy" || s == "VkBufferImageCopy2" => Ok(()),
                e => Err(format!("{region} is {e:?}, not a VkBufferImageCopy(2)")),
            }
        }
        RangeRule::Queries { pool, first, count } => {
            handle(pool, &["VkQueryPool"])?;
            expect(model, owner, first, "an integer", is_int)?;
            count.map_or(Ok(()), |c| expect(model, owner, c, "an integer", is_int))
        }
        RangeRule::Bind {
            resource,
            memory,
            offset,
        } => {
            handle(resource, &["VkBuffer", "VkImage"])?;
            handle(memory, &["VkDeviceMemory"])?;
            expect(model, owner, offset, "an integer", is_int)
        }
    }
}

/// The integer members a `NonZero` row checks: `path` (dotted, through nested struct
/// values) inside `structure`; a struct at its end stands for each of its members, which must
/// all be integers. Each leaf is returned as its full dotted path.
pub fn nonzero_leaves(model: &Model, structure: &str, path: &str) -> Result<Vec<String>, Error> {
    let mut owner = structure.to_string();
    let mut m = None;
    for (i, seg) in path.split('.').enumerate() {
        if i > 0 {
            owner = match m.map(|x: &Member| &x.shape) {
                Some(Shape::Value(Elem::Struct(s))) => s.clone(),
                _ => return Err(format!("{path}: {seg} is not inside a struct value")),
            };
        }
        m = Some(member(model, &owner, seg)?);
    }
    let m = m.ok_or(format!("{structure}: empty member path"))?;
    match &m.shape {
        Shape::Value(Elem::Struct(s)) => {
            let st = model.structs.get(s).ok_or(format!("no struct {s}"))?;
            st.members
                .iter()
                .map(|x| integer(x).map(|()| format!("{path}.{}", x.name)))
                .collect()
        }
        _ => integer(m).map(|()| vec![path.to_string()]),
    }
}

/// The single-bit values of the enum member `m` (a `Vk*FlagBits`), at least one.
pub fn single_bits(model: &Model, m: &Member) -> Result<Vec<i64>, Error> {
    let Shape::Value(Elem::Enum(e)) = &m.shape else {
        return Err(format!("{} is not an enum", m.name));
    };
    if !e.contains("FlagBits") {
        return Err(format!("{e} is not a Vk*FlagBits enum"));
    }
    let bits: Vec<i64> = model
        .enums
        .get(e)
        .ok_or(format!("no enum {e}"))?
        .values
        .iter()
        .map(|(_, v)| *v)
        .filter(|v| *v > 0 && v & (v - 1) == 0)
        .collect();
    if bits.is_empty() {
        return Err(format!("{e} has no single-bit value"));
    }
    Ok(bits)
}
