//! Host-side emission: model -> `venus-host/src/generated/`.
//!
//! - `vk.rs`: `#[repr(C)]` Vulkan structs and unions with the C layout the host driver expects
//!   (enums, bitmasks and ids reuse the `#[repr(transparent)]` protocol newtypes; handles are
//!   64-bit newtypes, ABI-identical to both dispatchable pointers and non-dispatchable handles on
//!   the 64-bit hosts we support);
//! - `procs.rs`: one `extern "system"` function-pointer type per encodable command and the
//!   instance/device proc tables that load them by name;
//! - `lower.rs`: protocol values -> C structs (inputs, handle ids translated through
//!   [`HandleMap`]) and output skeletons -> C structs ready for the driver to fill, plus the way
//!   back (`raise`) from filled C structs to protocol values for the reply.

use std::fmt::Write;

use crate::emit::variant;
use crate::model::{Dir, Elem, HostType, Member, Model, Scalar, Shape, Struct};
use crate::names::{command_name, field_name, type_name};
use crate::special::{Bound, Check};

macro_rules! w {
    ($dst:expr, $($arg:tt)*) => {{ let _ = writeln!($dst, $($arg)*); }};
}

pub const HEADER: &str = crate::emit::HEADER;

pub fn emit(model: &Model) -> Result<Vec<(String, String)>, String> {
    let cx = Cx { m: model };
    Ok(vec![
        ("mod.rs".into(), cx.module()),
        ("vk.rs".into(), cx.vk()?),
        ("procs.rs".into(), cx.procs()?),
        ("lower.rs".into(), cx.lower()?),
        ("calls.rs".into(), cx.calls()?),
        ("policy.rs".into(), crate::emit_policy::emit(model)?),
    ])
}

struct Cx<'m> {
    m: &'m Model,
}

fn c_scalar(s: Scalar) -> &'static str {
    match s {
        Scalar::U8 => "u8",
        Scalar::I8 => "i8",
        Scalar::U16 => "u16",
        Scalar::I16 => "i16",
        Scalar::U32 => "u32",
        Scalar::I32 => "i32",
        Scalar::U64 => "u64",
        Scalar::SizeT => "usize",
        Scalar::I64 => "i64",
        Scalar::F32 => "f32",
        Scalar::F64 => "f64",
    }
}

impl<'m> Cx<'m> {
    fn module(&self) -> String {
        let mut s = String::from(HEADER);
        s.push_str("//! Generated host-side Vulkan types, proc tables and conversions.\n\npub mod calls;\npub mod lower;\npub mod policy;\npub mod procs;\npub mod vk;\n");
        s
    }

    /// The C type of an element.
    fn c_elem(&self, e: &Elem) -> String {
        match e {
            Elem::Scalar(s) => c_scalar(*s).into(),
            Elem::Enum(n) | Elem::Flags { name: n, .. } => format!("t::{}", type_name(n)),
            Elem::Handle(h) => type_name(h),
            Elem::Struct(x) | Elem::Union(x) => type_name(x),
        }
    }

    /// The C type of a struct member or command parameter.
    fn c_member(&self, m: &Member, out: bool) -> String {
        let q = if out { "*mut" } else { "*const" };
        match &m.shape {
            Shape::Value(e) => self.c_elem(e),
            Shape::FixedArray(e, n) => format!("[{}; {n}]", self.c_elem(e)),
            Shape::CharArray(n) => format!("[c_char; {n}]"),
            Shape::Ptr { elem, .. } | Shape::Array { elem, .. } => {
                format!("{q} {}", self.c_elem(elem))
            }
            Shape::Str => "*const c_char".into(),
            Shape::StrArray { .. } => "*const *const c_char".into(),
            Shape::Blob { .. } => format!("{q} c_void"),
            Shape::NullOnly => "*const c_void".into(),
        }
    }

    /// The C type of a host-only member or parameter.
    fn host_type(&self, t: &HostType) -> String {
        match t {
            // Enums and bitmasks the protocol does not use have no newtype: their C integer.
            HostType::Elem(Elem::Flags { name, wide }) if !self.m.bitmasks.contains_key(name) => {
                (if *wide { "u64" } else { "u32" }).into()
            }
            HostType::Elem(Elem::Enum(name)) if !self.m.enums.contains_key(name) => "i32".into(),
            HostType::Elem(e) => self.c_elem(e),
            HostType::CInt => "core::ffi::c_int".into(),
            HostType::VoidPtr { is_const: true } => "*const c_void".into(),
            HostType::VoidPtr { is_const: false } => "*mut c_void".into(),
            HostType::Ptr { to, is_const } => {
                format!(
                    "*{} {}",
                    if *is_const { "const" } else { "mut" },
                    self.host_type(to)
                )
            }
        }
    }

    /// Host-only structs (no protocol codec): C layout, sType constant, Default.
    fn host_structs(&self, s: &mut String) {
        for st in &self.m.host_structs {
            let n = type_name(&st.name);
            w!(
                s,
                "/// `{}` (host-only: the protocol does not serialize it).",
                st.name
            );
            w!(s, "#[derive(Clone, Copy)]\n#[repr(C)]\npub struct {n} {{");
            w!(
                s,
                "    pub s_type: t::StructureType,\n    pub p_next: *mut c_void,"
            );
            for (f, ty) in &st.members {
                w!(s, "    pub {}: {},", field_name(f), self.host_type(ty));
            }
            w!(s, "}}");
            w!(s, "impl {n} {{\n    /// `{}`.\n    pub const STRUCTURE_TYPE: t::StructureType = t::StructureType({});\n}}", st.s_type.0, st.s_type.1);
            w!(s, "impl Default for {n} {{\n    fn default() -> Self {{\n        Self {{\n            s_type: Self::STRUCTURE_TYPE,\n            p_next: core::ptr::null_mut(),");
            for (f, ty) in &st.members {
                let v = match ty {
                    HostType::VoidPtr { is_const: true } | HostType::Ptr { is_const: true, .. } => {
                        "core::ptr::null()"
                    }
                    HostType::VoidPtr { .. } | HostType::Ptr { .. } => "core::ptr::null_mut()",
                    HostType::CInt => "-1",
                    HostType::Elem(_) => "Default::default()",
                };
                w!(s, "            {}: {v},", field_name(f));
            }
            w!(s, "        }}\n    }}\n}}\n");
        }
    }

    // ------------------------------------------------------------------ vk.rs

    fn vk(&self) -> Result<String, String> {
        let m = self.m;
        let mut s = String::from(HEADER);
        s.push_str(
            "//! `#[repr(C)]` Vulkan structs, unions and handles as the host driver sees them.\n\n",
        );
        s.push_str("#![allow(non_camel_case_types)]\n\nuse core::ffi::{c_char, c_void};\nuse venus_protocol::types as t;\n\n");
        for h in m.handles.values() {
            let n = type_name(&h.name);
            w!(s, "/// `{}` (host handle).", h.name);
            w!(s, "#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]\n#[repr(transparent)]\npub struct {n}(pub u64);");
            w!(s, "impl {n} {{\n    pub const NULL: Self = Self(0);\n}}\n");
        }
        for u in m.unions.values() {
            let n = type_name(&u.name);
            w!(s, "/// `{}`.", u.name);
            w!(s, "#[derive(Clone, Copy)]\n#[repr(C)]\npub union {n} {{");
            for mm in &u.members {
                w!(
                    s,
                    "    pub {}: {},",
                    field_name(&mm.name),
                    self.c_member(mm, false)
                );
            }
            w!(s, "}}");
            let first = &u.members[0];
            w!(s, "impl Default for {n} {{\n    fn default() -> Self {{\n        Self {{ {}: {} }}\n    }}\n}}\n", field_name(&first.name), self.c_default(&first.shape));
        }
        for st in m.structs.values() {
            let n = type_name(&st.name);
            w!(s, "/// `{}`.", st.name);
            w!(s, "#[derive(Clone, Copy)]\n#[repr(C)]\npub struct {n} {{");
            if st.s_type.is_some() {
                w!(
                    s,
                    "    pub s_type: t::StructureType,\n    pub p_next: *mut c_void,"
                );
            }
            for mm in &st.members {
                w!(
                    s,
                    "    pub {}: {},",
                    field_name(&mm.name),
                    self.c_member(mm, false)
                );
            }
            w!(s, "}}");
            w!(
                s,
                "impl Default for {n} {{\n    fn default() -> Self {{\n        Self {{"
            );
            if let Some((_, v)) = &st.s_type {
                w!(s, "            s_type: t::StructureType({v}),\n            p_next: core::ptr::null_mut(),");
            }
            for mm in &st.members {
                w!(
                    s,
                    "            {}: {},",
                    field_name(&mm.name),
                    self.c_default(&mm.shape)
                );
            }
            w!(s, "        }}\n    }}\n}}\n");
        }
        self.host_structs(&mut s);
        Ok(s)
    }

    fn c_default(&self, sh: &Shape) -> String {
        match sh {
            Shape::Value(_) => "Default::default()".into(),
            Shape::FixedArray(e, n) => match e {
                Elem::Struct(x) | Elem::Union(x) => format!("[{}::default(); {n}]", type_name(x)),
                _ => format!("[Default::default(); {n}]"),
            },
            Shape::CharArray(n) => format!("[0; {n}]"),
            _ => "core::ptr::null_mut()".into(),
        }
    }

    // ------------------------------------------------------------------ procs.rs

    fn procs(&self) -> Result<String, String> {
        let m = self.m;
        let mut s = String::from(HEADER);
        s.push_str("//! Function-pointer types of every encodable command and the proc tables that load them.\n\n");
        s.push_str("#![allow(non_camel_case_types, clippy::type_complexity)]\n\nuse core::ffi::{c_char, c_void};\nuse super::vk::*;\nuse venus_protocol::types as t;\n\n");
        // (name, aliases, C parameters, C return, instance-level, host-only)
        type Entry = (String, Vec<String>, Vec<String>, String, bool, bool);
        let mut entries: Vec<Entry> = Vec::new();
        for c in m
            .commands
            .iter()
            .filter(|c| c.encoding.is_ok() && !c.name.ends_with("MESA"))
        {
            let params: Vec<String> = c
                .params
                .iter()
                .map(|p| {
                    let ty = match &p.member.shape {
                        Shape::FixedArray(e, _) => format!("*const {}", self.c_elem(e)),
                        _ => self.c_member(&p.member, p.dir != Dir::In),
                    };
                    format!("{}: {ty}", field_name(&p.member.name))
                })
                .collect();
            let ret = match &c.ret {
                Some(e) => format!(" -> {}", self.c_elem(e)),
                None => String::new(),
            };
            let first = c.params.first().map(|p| &p.member.shape);
            let inst = match first {
                Some(Shape::Value(Elem::Handle(h))) => h == "VkInstance" || h == "VkPhysicalDevice",
                _ => true,
            };
            entries.push((c.name.clone(), c.aliases.clone(), params, ret, inst, false));
        }
        for c in &m.host_commands {
            if entries.iter().any(|e| e.0 == c.name) {
                return Err(format!(
                    "host-only command {} is serialized by the protocol",
                    c.name
                ));
            }
            let params = c
                .params
                .iter()
                .map(|(n, t)| format!("{}: {}", field_name(n), self.host_type(t)))
                .collect();
            let ret = match &c.ret {
                Some(e) => format!(" -> {}", self.c_elem(e)),
                None => String::new(),
            };
            let inst = match c.params.first().map(|p| &p.1) {
                Some(HostType::Elem(Elem::Handle(h))) => {
                    h == "VkInstance" || h == "VkPhysicalDevice"
                }
                _ => true,
            };
            entries.push((c.name.clone(), Vec::new(), params, ret, inst, true));
        }
        for (name, _, params, ret, _, host) in &entries {
            let tag = if *host {
                " (host-only: the protocol does not serialize it)"
            } else {
                ""
            };
            w!(s, "/// `{name}`{tag}.");
            w!(
                s,
                "pub type PFN_{name} = unsafe extern \"system\" fn({}){ret};",
                params.join(", ")
            );
        }
        s.push('\n');
        for (tbl, inst) in [("InstanceProcs", true), ("DeviceProcs", false)] {
            let list: Vec<_> = entries.iter().filter(|e| e.4 == inst).collect();
            w!(
                s,
                "/// {} entry points, each `None` if the driver does not provide it.",
                if inst {
                    "Instance-level"
                } else {
                    "Device-level"
                }
            );
            w!(s, "#[derive(Clone, Copy, Default)]\npub struct {tbl} {{");
            for e in &list {
                w!(
                    s,
                    "    pub {}: Option<PFN_{}>,",
                    field_name(&command_name(&e.0)),
                    e.0
                );
            }
            w!(s, "}}\n");
            w!(s, "impl {tbl} {{");
            w!(s, "    /// Loads every entry point through `get` (a `vkGet*ProcAddr` wrapper returning a raw address or NULL).");
            w!(s, "    pub fn load(mut get: impl FnMut(&core::ffi::CStr) -> *const c_void) -> Self {{");
            w!(s, "        let mut t = Self::default();");
            for (name, aliases, ..) in &list {
                let mut names = vec![name.clone()];
                names.extend(aliases.iter().cloned());
                let f = field_name(&command_name(name));
                w!(
                    s,
                    "        for name in [{}] {{",
                    names
                        .iter()
                        .map(|n| format!("c\"{n}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                w!(
                    s,
                    "            let p = get(name);\n            if !p.is_null() {{"
                );
                w!(s, "                // SAFETY: the loader returned the address of `{name}` (or an alias with the same signature),");
                w!(
                    s,
                    "                // whose C signature is exactly PFN_{name}."
                );
                w!(s, "                t.{f} = Some(unsafe {{ core::mem::transmute::<*const c_void, PFN_{name}>(p) }});\n                break;\n            }}\n        }}");
            }
            w!(s, "        t\n    }}\n}}\n");
        }
        w!(
            s,
            "/// Whether a command is instance-level (true) or device-level (false), by name."
        );
        w!(
            s,
            "pub fn is_instance_level(name: &str) -> Option<bool> {{\n    Some(match name {{"
        );
        for e in &entries {
            w!(s, "        {:?} => {},", e.0, e.4);
        }
        w!(s, "        _ => return None,\n    }})\n}}");
        Ok(s)
    }

    // ------------------------------------------------------------------ calls.rs

    /// Whether `c` can be executed generically (every encodable Vulkan command).
    fn generic_call(c: &crate::model::Command) -> bool {
        c.encoding.is_ok() && !c.name.ends_with("MESA")
    }

    fn calls(&self) -> Result<String, String> {
        let m = self.m;
        let mut s = String::from(HEADER);
        s.push_str("//! Generic execution of every command without output handles: lower the request, call the\n//! driver through the proc table, raise the outputs into the reply.\n\n");
        s.push_str("#![allow(unused_variables, unused_mut, unused_imports, clippy::needless_lifetimes, clippy::unnecessary_cast, clippy::let_and_return, clippy::let_unit_value)]\n\n");
        s.push_str("use core::ffi::{c_char, c_void};\nuse super::procs::{DeviceProcs, InstanceProcs};\nuse super::vk;\nuse crate::lower::{CallError, HandleMap, Lower, LowerCx, LowerError, Outcome, Raise};\nuse venus_protocol::commands as c;\nuse venus_protocol::structs as p;\nuse venus_protocol::types as t;\n\n");
        let is_instance = |c: &crate::model::Command| {
            matches!(
                c.params.first().map(|p| &p.member.shape),
                Some(Shape::Value(Elem::Handle(h))) if h == "VkInstance" || h == "VkPhysicalDevice"
            ) || c
                .params
                .first()
                .map(|p| !matches!(p.member.shape, Shape::Value(Elem::Handle(_))))
                .unwrap_or(true)
        };
        let mut names = Vec::new();
        for cmd in m.commands.iter().filter(|c| Self::generic_call(c)) {
            let n = command_name(&cmd.name);
            let fname = field_name(&n);
            names.push((cmd.name.clone(), fname.clone(), is_instance(cmd)));
            let table = if is_instance(cmd) {
                "InstanceProcs"
            } else {
                "DeviceProcs"
            };
            let rlt = if cmd.params.iter().any(|p| p.dir != Dir::In) {
                "<'b>"
            } else {
                ""
            };
            let alt = if cmd.needs_lifetime { "<'b>" } else { "" };
            w!(s, "/// Executes `{}` on the host driver.", cmd.name);
            w!(s, "///\n/// # Safety\n/// `cx`'s handle map must only yield live host handles of the right type (the context's\n/// object table), and the procs must belong to the instance/device those handles come from.");
            w!(s, "pub unsafe fn {fname}<'b, M: HandleMap>(procs: &{table}, cx: &mut LowerCx<'b, M>, a: &c::{n}Args{alt}) -> Result<(c::{n}Reply{rlt}, Outcome), CallError> {{");
            w!(
                s,
                "    let f = procs.{fname}.ok_or(CallError::Missing({:?}))?;",
                cmd.name
            );
            let mut args = Vec::new();
            let mut after = Vec::new();
            let mut created: Vec<String> = Vec::new();
            let (overrides, caps) = self.command_checks(&mut s, cmd)?;
            for p in &cmd.params {
                let f = field_name(&p.member.name);
                let fa = format!("a.{f}");
                match p.dir {
                    Dir::In => {
                        let v = match &p.member.shape {
                            _ if overrides.iter().any(|o| o.0 == p.member.name) => overrides
                                .iter()
                                .find(|o| o.0 == p.member.name)
                                .map(|o| o.1.clone())
                                .unwrap_or_default(),
                            Shape::Ptr {
                                optional: false, ..
                            } => self.lower_value(&p.member, &format!("Some({fa})"), &cmd.name),
                            Shape::FixedArray(Elem::Enum(_) | Elem::Flags { .. }, _) => {
                                format!(
                                    "{{ cx.defined_slice(&{fa}, {:?}, {:?})?; {fa}.as_ptr() }}",
                                    cmd.name, p.member.name
                                )
                            }
                            Shape::FixedArray(e, _)
                                if e.is_plain() && !matches!(e, Elem::Handle(_)) =>
                            {
                                format!("{fa}.as_ptr()")
                            }
                            Shape::Array { elem: e, .. }
                                if e.is_plain()
                                    && !matches!(
                                        e,
                                        Elem::Handle(_) | Elem::Scalar(Scalar::SizeT)
                                    ) =>
                            {
                                format!(
                                    "{} as *const _",
                                    self.lower_value(&p.member, &fa, &cmd.name)
                                )
                            }
                            _ => self.lower_value(&p.member, &fa, &cmd.name),
                        };
                        w!(s, "    let {f} = {v};");
                        args.push(f);
                    }
                    Dir::InOut => {
                        // An in/out count: pointer to a scalar.
                        let Shape::Ptr {
                            elem: Elem::Scalar(sc),
                            optional,
                        } = &p.member.shape
                        else {
                            return Err(format!(
                                "{}: unsupported in/out {}",
                                cmd.name, p.member.name
                            ));
                        };
                        let ct = c_scalar(*sc);
                        let val = if *optional {
                            format!("{fa}.map_or(0, |v| *v)")
                        } else {
                            format!("*{fa}")
                        };
                        w!(s, "    let mut {f}_v: {ct} = {val} as {ct};");
                        w!(s, "    let {f} = &mut {f}_v as *mut {ct};");
                        args.push(f.clone());
                        let back = if *optional {
                            format!("{fa}.map(|_| &*cx.alloc_out({f}_v as _))")
                        } else {
                            format!("cx.alloc_out({f}_v as _)")
                        };
                        after.push((f.clone(), back));
                    }
                    Dir::Out => match &p.member.shape {
                        Shape::Ptr {
                            elem: Elem::Struct(x),
                            optional,
                        } => {
                            let sk = if *optional {
                                fa.clone()
                            } else {
                                format!("Some({fa})")
                            };
                            w!(s, "    let {f}_c: *mut vk::{} = match {sk} {{ Some(v) => {{ let o = v.lower_out(cx)?; cx.alloc(o) as *mut _ }} None => core::ptr::null_mut() }};", type_name(x));
                            args.push(format!("{f}_c"));
                            let raise = format!("{{\n        let sk = {sk};\n        match sk {{\n            Some(v) => {{\n                // SAFETY: {f}_c was allocated above from this skeleton and the driver call has returned.\n                let filled = unsafe {{ &*{f}_c }};\n                let r = p::{}::raise(v, filled, cx)?;\n                Some(&*cx.alloc_out(r))\n            }}\n            None => None,\n        }}\n    }}", type_name(x));
                            let back = if *optional {
                                raise
                            } else {
                                format!("{raise}.ok_or(CallError::Lower(LowerError::NotAnOutput({:?})))?", p.member.name)
                            };
                            after.push((f.clone(), back));
                        }
                        Shape::Ptr {
                            elem: Elem::Handle(h),
                            optional,
                        } => {
                            let hn = type_name(h);
                            w!(s, "    let mut {f}_v = vk::{hn}::NULL;");
                            args.push(format!("&mut {f}_v as *mut _"));
                            let id = if *optional {
                                format!("{fa}.map_or(0, |v| v.raw())")
                            } else {
                                format!("{fa}.raw()")
                            };
                            created.push(format!("if {f}_v.0 != 0 {{ out.created.push((<venus_protocol::handles::{hn} as venus_protocol::Handle>::OBJECT_TYPE, {id}, {f}_v.0)); }}"));
                            after.push((f.clone(), fa.clone()));
                        }
                        Shape::Array {
                            elem: Elem::Handle(h),
                            len,
                            ..
                        } => {
                            let hn = type_name(h);
                            w!(
                                s,
                                "    let {f}_c: *mut vk::{hn} = cx.zeroed_mut({fa}.len());"
                            );
                            args.push(format!("{f}_c"));
                            let count = self.count_after(cmd, len, &fa);
                            created.push(format!("{{\n        // SAFETY: {f}_c was allocated above with {fa}.len() zeroed elements.\n        let hosts = unsafe {{ cx.copy_out({f}_c as *const vk::{hn}, {fa}.len(), {count}) }};\n        for (g, h) in {fa}.iter().zip(hosts) {{\n            if h.0 != 0 {{ out.created.push((<venus_protocol::handles::{hn} as venus_protocol::Handle>::OBJECT_TYPE, g.raw(), h.0)); }}\n        }}\n    }}"));
                            after.push((f.clone(), format!("&{fa}[..({count}).min({fa}.len())]")));
                        }
                        Shape::Ptr { elem, optional } => {
                            let ct = self.c_elem(elem);
                            w!(s, "    let mut {f}_v: {ct} = Default::default();");
                            args.push(format!("&mut {f}_v as *mut _"));
                            let conv = match elem {
                                Elem::Scalar(Scalar::SizeT) => format!("{f}_v as u64"),
                                Elem::Handle(_) => format!("cx.guest({f}_v.0)?"),
                                _ => format!("{f}_v"),
                            };
                            let back = if *optional {
                                format!("{fa}.map(|_| &*cx.alloc_out({conv}))")
                            } else {
                                format!("cx.alloc_out({conv})")
                            };
                            after.push((f.clone(), back));
                        }
                        Shape::Array {
                            elem: Elem::Struct(x),
                            len,
                            ..
                        } => {
                            w!(s, "    let {f}_c: *mut vk::{} = cx.lower_slice_mut({fa}, |v, cx| v.lower_out(cx))?;", type_name(x));
                            args.push(format!("{f}_c"));
                            let count = self.count_after(cmd, len, &fa);
                            after.push((f.clone(), format!("{{\n        // SAFETY: {f}_c was allocated above with {fa}.len() elements.\n        unsafe {{ cx.raise_slice({fa}, {f}_c, {count}, p::{}::raise)? }}\n    }}", type_name(x))));
                        }
                        Shape::Array { elem, len, .. } => {
                            let ct = self.c_elem(elem);
                            w!(s, "    let {f}_c: *mut {ct} = cx.zeroed_mut({fa}.len());");
                            args.push(format!("{f}_c"));
                            let count = self.count_after(cmd, len, &fa);
                            after.push((f.clone(), format!("{{\n        // SAFETY: {f}_c was allocated above with {fa}.len() zeroed elements.\n        unsafe {{ cx.copy_out({f}_c as *const _, {fa}.len(), {count}) }}\n    }}")));
                        }
                        Shape::Blob { len, .. } => {
                            let cap = caps
                                .iter()
                                .find(|c| c.0 == p.member.name)
                                .map_or(format!("{fa}.len()"), |c| c.1.clone());
                            w!(s, "    let {f}_c: *mut u8 = cx.zeroed_mut({cap});");
                            args.push(format!("{f}_c as *mut c_void"));
                            let count = self.count_after(cmd, len, &fa);
                            after.push((f.clone(), format!("{{\n        // SAFETY: {f}_c was allocated above with {fa}.len() zeroed bytes.\n        unsafe {{ cx.copy_out({f}_c as *const u8, {fa}.len(), {count}) }}\n    }}")));
                        }
                        other => {
                            return Err(format!("{}: unsupported output shape {other:?}", cmd.name))
                        }
                    },
                }
            }
            w!(s, "    // SAFETY: every pointer points into `a` (decoded, alive for 'b) or the arena of `cx`;");
            w!(
                s,
                "    // handles come from the object table (this function's contract)."
            );
            w!(s, "    let ret = unsafe {{ f({}) }};", args.join(", "));
            let mut fields = Vec::new();
            if cmd.ret.is_some() {
                fields.push("ret".to_string());
            }
            w!(s, "    let mut out = Outcome::default();");
            for c in &created {
                w!(s, "    {c}");
            }
            for d in self.destroyed(cmd) {
                w!(s, "    {d}");
            }
            for (f, back) in &after {
                w!(s, "    let {f} = {back};");
                fields.push(f.clone());
            }
            w!(
                s,
                "    Ok((c::{n}Reply {{ {} }}, out))\n}}\n",
                fields.join(", ")
            );
        }
        w!(s, "/// Executes any command generically: `Some(result)` unless it is a transport (MESA) command;");
        w!(
            s,
            "/// Refused commands (`policy::Policy::Refused`) are an error."
        );
        w!(s, "///\n/// # Safety\n/// As for every executor: the handle map only yields live handles of the right type, and");
        w!(s, "/// `device` is the table of the device the command's handles belong to (when device-level).");
        w!(s, "pub unsafe fn execute<'b, M: HandleMap>(instance: &InstanceProcs, device: Option<&DeviceProcs>, cx: &mut LowerCx<'b, M>, cmd: &venus_protocol::Command<'b>) -> Option<Result<(venus_protocol::Reply<'b>, Outcome), CallError>> {{");
        w!(s, "    use venus_protocol::{{Command as C, Reply as R}};");
        w!(s, "    Some(match cmd {{");
        for cmd in m.commands.iter().filter(|c| Self::generic_call(c)) {
            if let crate::model::Class::Refused(why) = &cmd.class {
                w!(s, "        C::{}(_) => return Some(Err(CallError::Refused {{ command: {:?}, why: {why:?} }})),", command_name(&cmd.name), cmd.name);
            }
        }
        for (cn, f, inst) in &names {
            if m.commands
                .iter()
                .any(|c| c.name == *cn && matches!(c.class, crate::model::Class::Refused(_)))
            {
                continue;
            }
            let n = command_name(cn);
            let table = if *inst {
                "instance".to_string()
            } else {
                "match device { Some(d) => d, None => return Some(Err(CallError::NoDevice)) }"
                    .to_string()
            };
            w!(
                s,
                "        // SAFETY: forwarded from this function's contract."
            );
            w!(s, "        C::{n}(a) => unsafe {{ {f}({table}, cx, a) }}.map(|(r, o)| (R::{n}(r), o)),");
        }
        w!(s, "        _ => return None,");
        w!(s, "    }})\n}}\n");
        w!(
            s,
            "/// The first parameter of a command when it is a handle: (VkObjectType, guest id)."
        );
        w!(
            s,
            "pub fn first_handle(cmd: &venus_protocol::Command<'_>) -> Option<(i32, u64)> {{"
        );
        w!(
            s,
            "    use venus_protocol::Command as C;\n    Some(match cmd {{"
        );
        for cmd in m.commands.iter().filter(|c| Self::generic_call(c)) {
            if let Some(Shape::Value(Elem::Handle(h))) = cmd.params.first().map(|p| &p.member.shape)
            {
                let f = field_name(&cmd.params[0].member.name);
                w!(s, "        C::{}(a) => (<venus_protocol::handles::{} as venus_protocol::Handle>::OBJECT_TYPE, a.{f}.raw()),", command_name(&cmd.name), type_name(h));
            }
        }
        w!(s, "        _ => return None,\n    }})\n}}\n");
        self.destroy_object(&mut s)?;
        self.creations(&mut s);
        w!(
            s,
            "/// Commands executed generically, with whether they use the instance table."
        );
        w!(s, "pub const GENERIC: &[(&str, bool)] = &[");
        for (n, _, i) in &names {
            w!(s, "    ({n:?}, {i}),");
        }
        w!(s, "];");
        Ok(s)
    }

    /// Emits the command-level checks of `cmd` at the top of its executor. Returns the input
    /// parameters whose lowered value is replaced (name, expression) and the output buffers
    /// whose allocation is enlarged (name, byte count).
    #[allow(clippy::type_complexity)]
    fn command_checks(
        &self,
        s: &mut String,
        cmd: &crate::model::Command,
    ) -> Result<(Vec<(String, String)>, Vec<(String, String)>), String> {
        let mut overrides = Vec::new();
        let mut caps = Vec::new();
        let at = &cmd.name;
        for check in self
            .m
            .checks
            .iter()
            .filter(|k| k.is_command() && k.owner() == *at)
        {
            match *check {
                Check::PackedStride { param, array, .. } => {
                    let Some(Elem::Struct(x)) = cmd
                        .params
                        .iter()
                        .find(|p| p.member.name == array)
                        .and_then(|p| match &p.member.shape {
                            Shape::Array { elem, .. } => Some(elem),
                            _ => None,
                        })
                    else {
                        return Err(format!("{at}: {array} is not an array of structs"));
                    };
                    w!(s, "    // Rule: {array} travels packed; the driver steps through it with the C element size.");
                    overrides.push((
                        param.to_string(),
                        format!("core::mem::size_of::<vk::{}>() as _", type_name(x)),
                    ));
                }
                Check::OutputExtent {
                    buffer,
                    size,
                    count,
                    stride,
                    max_element,
                    limit,
                    why,
                    ..
                } => {
                    let cap = format!("{}_cap", field_name(buffer));
                    w!(s, "    // Rule: {why}.");
                    w!(s, "    let {cap} = cx.output_extent({at:?}, {buffer:?}, a.{} as u64, a.{} as u64, {max_element}, {limit}, a.{}.len())?;", field_name(count), field_name(stride), field_name(buffer));
                    overrides.push((size.to_string(), format!("{cap} as _")));
                    caps.push((buffer.to_string(), cap));
                }
                Check::DeviceLimit {
                    first,
                    count,
                    limit,
                    ..
                } => {
                    let (value, text) = match first {
                        Some(f) => (
                            format!("(a.{} as u64).saturating_add(a.{} as u64)", field_name(f), field_name(count)),
                            format!("format!(\"{f} {{}} + {count} {{}} exceeds {limit} {{}}\", a.{}, a.{}, lim)", field_name(f), field_name(count)),
                        ),
                        None => (
                            format!("a.{} as u64", field_name(count)),
                            format!("format!(\"{count} {{}} exceeds {limit} {{}}\", a.{}, lim)", field_name(count)),
                        ),
                    };
                    w!(
                        s,
                        "    {{\n        let lim = cx.limits({at:?}, {limit:?})?.{} as u64;",
                        field_name(limit)
                    );
                    w!(s, "        if {value} > lim {{\n            return Err(LowerError::rule({at:?}, {text}).into());\n        }}\n    }}");
                }
                Check::Range { rule, vuid, .. } => self.range_check(s, at, rule, vuid, "a")?,
                _ => {}
            }
        }
        Ok((overrides, caps))
    }

    /// `destroy_object()`: the destroy/free command of every device-child handle type.
    /// The output handles of `cmd` that name new host objects (physical devices and queues are
    /// enumerated, not created): (field, is an array).
    fn created_handles(cmd: &crate::model::Command) -> Vec<(String, bool)> {
        let counted = |h: &str| h != "VkPhysicalDevice" && h != "VkQueue";
        cmd.params
            .iter()
            .filter(|p| p.dir == Dir::Out)
            .filter_map(|p| match &p.member.shape {
                Shape::Ptr {
                    elem: Elem::Handle(h),
                    ..
                } if counted(h) => Some((field_name(&p.member.name), false)),
                Shape::Array {
                    elem: Elem::Handle(h),
                    ..
                } if counted(h) => Some((field_name(&p.member.name), true)),
                _ => None,
            })
            .collect()
    }

    /// `created_count` (objects a command may create, for the per-context object limit) and
    /// `refusal_reply` (the reply of a creating command refused before it ran).
    fn creations(&self, s: &mut String) {
        let creating: Vec<_> = self
            .m
            .commands
            .iter()
            .filter(|c| Self::generic_call(c))
            .map(|c| (c, Self::created_handles(c)))
            .filter(|(_, h)| !h.is_empty())
            .collect();
        w!(s, "/// How many host objects `cmd` may create (its output handles; physical devices and queues");
        w!(s, "/// are enumerated, not created): checked against the context's object limit before it runs.");
        w!(
            s,
            "pub fn created_count(cmd: &venus_protocol::Command<'_>) -> u64 {{"
        );
        w!(s, "    use venus_protocol::Command as C;\n    match cmd {{");
        for (cmd, handles) in &creating {
            let terms: Vec<String> = handles
                .iter()
                .map(|(f, array)| {
                    if *array {
                        format!("a.{f}.len() as u64")
                    } else {
                        "1".to_string()
                    }
                })
                .collect();
            w!(
                s,
                "        C::{}(a) => {},",
                command_name(&cmd.name),
                terms.join(" + ")
            );
        }
        w!(s, "        _ => 0,\n    }}\n}}\n");
        w!(s, "/// The reply of a creating command that fails with `ret` before it ran (its output handles");
        w!(s, "/// echoed as sent), for commands returning a `VkResult` whose outputs are all handles; `None`");
        w!(s, "/// for the others (they cannot report a failure).");
        w!(s, "pub fn refusal_reply<'b>(cmd: &venus_protocol::Command<'b>, ret: t::VkResult) -> Option<venus_protocol::Reply<'b>> {{");
        w!(
            s,
            "    use venus_protocol::{{Command as C, Reply as R}};\n    Some(match cmd {{"
        );
        for (cmd, handles) in &creating {
            let all_handles = cmd
                .params
                .iter()
                .filter(|p| p.dir != Dir::In)
                .all(|p| handles.iter().any(|h| h.0 == field_name(&p.member.name)));
            if cmd.ret.is_none() || !all_handles {
                continue;
            }
            let n = command_name(&cmd.name);
            let fields: Vec<String> = handles.iter().map(|(f, _)| format!("{f}: a.{f}")).collect();
            w!(
                s,
                "        C::{n}(a) => R::{n}(c::{n}Reply {{ ret, {} }}),",
                fields.join(", ")
            );
        }
        w!(s, "        _ => return None,\n    }})\n}}\n");
    }

    fn destroy_object(&self, s: &mut String) -> Result<(), String> {
        w!(s, "/// Destroys one device child with its vkDestroyX/vkFree* command (command buffers and");
        w!(
            s,
            "/// descriptor sets are freed from `pool`); `Err` for types without one."
        );
        w!(s, "///\n/// # Safety\n/// `handle` (and `pool`) must be live host handles of `device`, of `object_type`, no longer used.");
        w!(s, "pub unsafe fn destroy_object(procs: &DeviceProcs, device: vk::Device, object_type: i32, handle: u64, pool: u64) -> Result<(), CallError> {{");
        for cmd in self.m.commands.iter().filter(|c| Self::generic_call(c)) {
            let Some(d) = &cmd.destroy else { continue };
            let first_is_device = matches!(cmd.params.first().map(|p| &p.member.shape), Some(Shape::Value(Elem::Handle(h))) if h == "VkDevice");
            if !first_is_device || d.target == "VkDevice" {
                continue;
            }
            let ty = type_name(&d.target);
            let mut args = Vec::new();
            for p in &cmd.params {
                let n = &p.member.name;
                let v = if *n == d.parent {
                    "device".to_string()
                } else if *n == d.object && d.array {
                    format!("&vk::{ty}(handle) as *const _")
                } else if *n == d.object {
                    format!("vk::{ty}(handle)")
                } else if d.pool.as_ref().is_some_and(|(pn, _)| pn == n) {
                    format!(
                        "vk::{}(pool)",
                        type_name(&d.pool.as_ref().map(|x| x.1.clone()).unwrap_or_default())
                    )
                } else if matches!(p.member.shape, Shape::NullOnly) {
                    "core::ptr::null()".into()
                } else if p.member.is_len && matches!(p.member.shape, Shape::Value(Elem::Scalar(_)))
                {
                    "1".into()
                } else {
                    return Err(format!("{}: destroy_object cannot fill {n}", cmd.name));
                };
                args.push(v);
            }
            w!(s, "    if object_type == <venus_protocol::handles::{ty} as venus_protocol::Handle>::OBJECT_TYPE {{");
            w!(
                s,
                "        let f = procs.{}.ok_or(CallError::Missing({:?}))?;",
                field_name(&command_name(&cmd.name)),
                cmd.name
            );
            w!(s, "        // SAFETY: the handles are live and unused (this function's contract); the pointer is to a local.");
            if cmd.ret.is_some() {
                w!(s, "        let r = unsafe {{ f({}) }};", args.join(", "));
                w!(s, "        return if r.0 == 0 {{ Ok(()) }} else {{ Err(CallError::Failed {{ command: {:?}, result: r.0 }}) }};\n    }}", cmd.name);
            } else {
                w!(
                    s,
                    "        unsafe {{ f({}) }};\n        return Ok(());\n    }}",
                    args.join(", ")
                );
            }
        }
        w!(s, "    Err(CallError::CannotDestroy(object_type))\n}}\n");
        Ok(())
    }

    /// The struct-level checks of `st`, emitted at the top of its `lower()`.
    fn struct_checks(&self, s: &mut String, st: &Struct) -> Result<(), String> {
        let at = &st.name;
        let vals = &self.m.check_values;
        for check in self
            .m
            .checks
            .iter()
            .filter(|k| !k.is_command() && k.owner() == *at)
        {
            match *check {
                Check::MemberLimit {
                    member,
                    bound,
                    limit,
                    ..
                } => {
                    let f = field_name(member);
                    let (op, word) = match bound {
                        Bound::Below => (">=", "is not below"),
                        Bound::AtMost => (">", "exceeds"),
                    };
                    w!(s, "        {{\n            let lim = cx.limits({at:?}, {limit:?})?.{} as u64;", field_name(limit));
                    w!(s, "            if self.{f} as u64 {op} lim {{\n                return Err(LowerError::rule({at:?}, format!(\"{member} {{}} {word} {limit} {{}}\", self.{f}, lim)));\n            }}\n        }}");
                }
                Check::SpirvModule { code, .. } => {
                    w!(
                        s,
                        "        cx.check_spirv({at:?}, self.{})?;",
                        field_name(code)
                    );
                }
                Check::MultipleOf { member, factor, .. } => {
                    let f = field_name(member);
                    w!(s, "        if self.{f} as u64 % {factor} != 0 {{\n            return Err(LowerError::rule({at:?}, format!(\"{member} {{}} is not a multiple of {factor}\", self.{f})));\n        }}");
                }
                Check::EntriesWithin {
                    array,
                    offset,
                    size,
                    total,
                    ..
                } => {
                    let (a, o, z, t) = (
                        field_name(array),
                        field_name(offset),
                        field_name(size),
                        field_name(total),
                    );
                    w!(s, "        for (i, e) in self.{a}.iter().enumerate() {{\n            if (e.{o} as u64).saturating_add(e.{z} as u64) > self.{t} as u64 {{");
                    w!(s, "                return Err(LowerError::rule({at:?}, format!(\"{array}[{{i}}]: {offset} {{}} + {size} {{}} exceeds {total} {{}}\", e.{o}, e.{z}, self.{t})));\n            }}\n        }}");
                }
                Check::SelectedArray {
                    count,
                    selector,
                    arms,
                    ..
                } => {
                    let (c, sel) = (field_name(count), field_name(selector));
                    w!(s, "        match self.{sel}.0 {{");
                    for (names, array) in arms {
                        let pat: Vec<String> = names.iter().map(|n| vals[*n].to_string()).collect();
                        let a = field_name(array);
                        w!(
                            s,
                            "            {} => if (self.{a}.len() as u64) < self.{c} as u64 {{",
                            pat.join(" | ")
                        );
                        w!(s, "                return Err(LowerError::rule({at:?}, format!(\"{selector} {{}} reads {count} {{}} elements of {array}, {{}} travelled\", self.{sel}.0, self.{c}, self.{a}.len())));\n            }}");
                    }
                    w!(s, "            _ => {{}}\n        }}");
                }
                Check::ChainedBytes {
                    selector,
                    value,
                    count,
                    link,
                    array,
                    ..
                } => {
                    let (c, sel) = (field_name(count), field_name(selector));
                    w!(s, "        if self.{sel}.0 == {} {{", vals[value]);
                    w!(
                        s,
                        "            let mut link = self.p_next;\n            let mut have = None;"
                    );
                    w!(s, "            while let Some(e) = link {{\n                if let Ext::{}(v) = e {{\n                    have = Some(v.{}.len());\n                    break;\n                }}\n                link = venus_protocol::ChainNode::next(e);\n            }}", type_name(link), field_name(array));
                    w!(
                        s,
                        "            if have.map_or(true, |n| (n as u64) < self.{c} as u64) {{"
                    );
                    w!(s, "                return Err(LowerError::rule({at:?}, format!(\"{selector} {value} reads {count} {{}} bytes of {link}.{array}, {{:?}} travelled\", self.{c}, have)));\n            }}\n        }}");
                }
                Check::Range { rule, vuid, .. } => self.range_check(s, at, rule, vuid, "self")?,
                Check::Below {
                    member, max, why, ..
                } => {
                    let f = field_name(member);
                    w!(s, "        if self.{f} as u64 >= {max} {{\n            return Err(LowerError::rule({at:?}, format!(\"{member} {{}} is not below {max}, the host's bound ({why})\", self.{f})));\n        }}");
                }
                _ => self.value_check(s, at, check)?,
            }
        }
        Ok(())
    }

    /// A `Range` row of `at` (command parameters under `a`, struct members under `self`).
    fn range_check(
        &self,
        s: &mut String,
        at: &str,
        rule: crate::special::RangeRule,
        vuid: &str,
        base: &str,
    ) -> Result<(), String> {
        use crate::special::{RangeRule, Size};
        let desc = rule.describe();
        let mut arrays: Vec<String> = Vec::new();
        let mut val = |path: &str| -> Result<String, String> {
            let p = crate::policy::range_path(self.m, at, path)?;
            let mut e = base.to_string();
            let mut last_each = false;
            for seg in &p.segs {
                e = format!("{e}.{}", field_name(&seg.name));
                last_each = false;
                match seg.index {
                    crate::policy::Index::None => {}
                    crate::policy::Index::Fixed(k) => e = format!("{e}[{k}]"),
                    crate::policy::Index::Each => {
                        if !arrays.contains(&e) {
                            arrays.push(e.clone());
                        }
                        e = format!("{e}.get(i).ok_or_else(|| LowerError::rule({at:?}, \"{path}: shorter than the array the rule walks\".to_string()))?");
                        last_each = true;
                    }
                }
            }
            Ok(match p.elem {
                Elem::Struct(_) if last_each => e,
                Elem::Struct(_) => format!("&{e}"),
                Elem::Handle(_) if last_each => format!("*{e}"),
                Elem::Handle(_) => e,
                _ if last_each => format!("(*{e} as u64)"),
                _ => format!("({e} as u64)"),
            })
        };
        let call = match rule {
            RangeRule::Bytes {
                object,
                offset,
                size,
            } => {
                let bytes = match size {
                    Size::Exact(x) => format!("crate::ranges::Bytes::Exact({})", val(x)?),
                    Size::WholeOr(x) => format!("crate::ranges::Bytes::WholeOr({})", val(x)?),
                    Size::Fixed(n) => format!("crate::ranges::Bytes::Exact({n})"),
                    Size::Strided {
                        count,
                        stride,
                        element,
                    } => format!(
                        "crate::ranges::Bytes::Strided {{ count: {}, stride: {}, element: {element} }}",
                        val(count)?,
                        val(stride)?
                    ),
                };
                format!(
                    "cx.byte_range({at:?}, what, {}, {}, {bytes}, {vuid:?})?",
                    val(object)?,
                    val(offset)?
                )
            }
            RangeRule::ImageRange { image, range } => format!(
                "cx.image_range({at:?}, what, {}, {}, {vuid:?})?",
                val(image)?,
                val(range)?
            ),
            RangeRule::ImageRegion {
                image,
                layers,
                offset,
                extent,
                extent_in,
            } => {
                let x = match extent {
                    Some(x) => format!("Some({})", val(x)?),
                    None => "None".into(),
                };
                let from = match extent_in {
                    Some(i) => format!("Some({})", val(i)?),
                    None => "None".into(),
                };
                let region = match offset {
                    Some(o) => format!(
                        "Some(crate::ranges::Region {{ offset: {}, extent: {x}, extent_in: {from} }})",
                        val(o)?
                    ),
                    None => "None".into(),
                };
                format!(
                    "cx.image_region({at:?}, what, {}, {}, {region}, {vuid:?})?",
                    val(image)?,
                    val(layers)?
                )
            }
            RangeRule::BufferImage {
                buffer,
                image,
                region,
            } => {
                let r = val(region)?;
                format!(
                    "{{ let r = {r}; cx.buffer_image({at:?}, what, {}, {}, crate::ranges::Footprint {{ offset: r.buffer_offset, row_length: r.buffer_row_length, image_height: r.buffer_image_height, layers: &r.image_subresource, extent: &r.image_extent }}, {vuid:?})? }}",
                    val(buffer)?,
                    val(image)?
                )
            }
            RangeRule::Queries { pool, first, count } => {
                let c = match count {
                    Some(c) => format!("{} as u32", val(c)?),
                    None => "1".into(),
                };
                format!(
                    "cx.query_range({at:?}, what, {}, {} as u32, {c}, {vuid:?})?",
                    val(pool)?,
                    val(first)?
                )
            }
            RangeRule::Bind {
                resource,
                memory,
                offset,
            } => format!(
                "cx.bind_range({at:?}, what, {}, {}, {}, {vuid:?})?",
                val(resource)?,
                val(memory)?,
                val(offset)?
            ),
        };
        let ind = if base == "a" { "    " } else { "        " };
        w!(s, "{ind}// Rule: {desc} ({vuid}).");
        match arrays.first() {
            None => {
                w!(
                    s,
                    "{ind}{{\n{ind}    let what = {desc:?};\n{ind}    {call};\n{ind}}}"
                );
            }
            Some(first) => {
                w!(s, "{ind}for i in 0..{first}.len() {{\n{ind}    let what = &format!(\"{{}} (element {{i}})\", {desc:?});\n{ind}    {call};\n{ind}}}");
            }
        }
        Ok(())
    }

    /// A `NonZero`, `SingleBit` or `ImageExtent` row of struct `at` (other kinds emit nothing here).
    fn value_check(&self, s: &mut String, at: &str, check: &Check) -> Result<(), String> {
        match *check {
            Check::NonZero { member, vuid, .. } => {
                for leaf in crate::policy::nonzero_leaves(self.m, at, member)? {
                    let f: Vec<String> = leaf.split('.').map(field_name).collect();
                    w!(s, "        if self.{} == 0 {{\n            return Err(LowerError::rule({at:?}, \"{leaf} is 0, must not be 0 ({vuid})\".to_string()));\n        }}", f.join("."));
                }
            }
            Check::SingleBit { member, vuid, .. } => {
                let m = self
                    .m
                    .structs
                    .get(at)
                    .and_then(|st| st.members.iter().find(|x| x.name == member))
                    .ok_or(format!("{at} has no member {member}"))?;
                let bits = crate::policy::single_bits(self.m, m)?;
                let pat: Vec<String> = bits.iter().map(|b| b.to_string()).collect();
                let f = field_name(member);
                w!(s, "        if !matches!(self.{f}.0, {}) {{\n            return Err(LowerError::rule({at:?}, format!(\"{member} {{:#x}} is not a single valid bit ({vuid})\", self.{f}.0)));\n        }}", pat.join(" | "));
            }
            Check::ImageExtent { vuid, .. } => {
                w!(s, "        cx.image_extent({at:?}, self.image_type.0, self.flags.0, [self.extent.width, self.extent.height, self.extent.depth], self.mip_levels, {vuid:?})?;");
            }
            _ => {}
        }
        Ok(())
    }

    /// Statements recording the objects a vkDestroy*/vkFree* command destroys.
    fn destroyed(&self, cmd: &crate::model::Command) -> Vec<String> {
        // The model's destroy detection (`policy::destroy_shape`) names the target type.
        let Some(target) = cmd.destroy.as_ref().map(|d| d.target.clone()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for p in cmd.params.iter().filter(|p| p.dir == Dir::In) {
            let f = field_name(&p.member.name);
            match &p.member.shape {
                Shape::Value(Elem::Handle(h)) if *h == target => out.push(format!(
                    "if !a.{f}.is_null() {{ out.destroyed.push((<venus_protocol::handles::{} as venus_protocol::Handle>::OBJECT_TYPE, a.{f}.raw())); }}",
                    type_name(h)
                )),
                Shape::Array { elem: Elem::Handle(h), .. } if *h == target => out.push(format!(
                    "for g in a.{f} {{ if !g.is_null() {{ out.destroyed.push((<venus_protocol::handles::{} as venus_protocol::Handle>::OBJECT_TYPE, g.raw())); }} }}",
                    type_name(h)
                )),
                _ => {}
            }
        }
        out
    }

    /// The number of elements the driver wrote into an output array (its in/out count after the call).
    fn count_after(
        &self,
        cmd: &crate::model::Command,
        len: &crate::model::LenExpr,
        fa: &str,
    ) -> String {
        if let Some(r) = len.as_simple() {
            if let Some(p) = cmd.params.iter().find(|p| p.member.name == r) {
                if p.dir == Dir::InOut {
                    return format!("({}_v as usize)", field_name(r));
                }
            }
        }
        format!("{fa}.len()")
    }

    // ------------------------------------------------------------------ lower.rs

    fn lower(&self) -> Result<String, String> {
        let m = self.m;
        let mut s = String::from(HEADER);
        s.push_str("//! Protocol values <-> C structs. `lower`: inputs; `lower_out`: output skeletons ready for the\n//! driver to fill; `raise`: filled C outputs back to protocol values (read against the skeleton).\n\n");
        s.push_str("#![allow(unused_variables, unused_mut, unused_imports, clippy::needless_lifetimes, clippy::unnecessary_cast, clippy::let_and_return)]\n\n");
        s.push_str("use core::ffi::{c_char, c_void};\nuse super::vk;\nuse crate::lower::{HandleMap, Lower, LowerCx, LowerError, LowerLink, Raise, RaiseLink};\nuse venus_protocol::structs as p;\nuse venus_protocol::structs::Ext;\n\n");
        self.chain_fns(&mut s);

        for u in m.unions.values() {
            let n = type_name(&u.name);
            let lt = if u.needs_lifetime { "<'_>" } else { "" };
            w!(s, "impl Lower for p::{n}{lt} {{");
            w!(s, "    type C = vk::{n};");
            w!(s, "    fn lower<'b, M: HandleMap>(&self, cx: &mut LowerCx<'b, M>) -> Result<vk::{n}, LowerError> {{");
            w!(s, "        Ok(match *self {{");
            for mm in &u.members {
                let v = self.lower_value(mm, "v", &u.name);
                w!(
                    s,
                    "            Self::{}(v) => vk::{n} {{ {}: {v} }},",
                    variant(&mm.name),
                    field_name(&mm.name)
                );
            }
            w!(s, "        }})\n    }}\n}}\n");
        }
        for st in m.structs.values() {
            self.lower_struct(&mut s, st)?;
        }
        Ok(s)
    }

    /// `lower_chain`, `lower_out_chain`, `raise_chain` and their per-link functions.
    fn chain_fns(&self, s: &mut String) {
        let m = self.m;
        // Chains: the walkers in `venus-host/src/lower.rs` loop over the links; these functions
        // convert one link's self part (one small function per link type, see `LowerCx::link`).
        let exts: Vec<&Struct> = m.structs.values().filter(|s| s.is_extender).collect();
        w!(
            s,
            "/// Lowers an input pNext chain; returns the head pointer (NULL for an empty chain)."
        );
        w!(s, "pub fn lower_chain<'b, M: HandleMap>(chain: venus_protocol::Chain<'_>, cx: &mut LowerCx<'b, M>) -> Result<*mut c_void, LowerError> {{");
        w!(
            s,
            "    crate::lower::walk_chain(chain, cx, lower_link)\n}}\n"
        );
        w!(s, "/// One input link's self part in the arena; NULL for links that never reach the driver.");
        w!(s, "fn lower_link<'b, M: HandleMap>(link: &Ext<'_>, cx: &mut LowerCx<'b, M>) -> Result<*mut c_void, LowerError> {{");
        w!(s, "    match link {{");
        for e in &exts {
            let n = type_name(&e.name);
            if e.name.ends_with("MESA") {
                // Protocol-only links never reach the driver.
                w!(s, "        Ext::{n}(_) => Ok(core::ptr::null_mut()),");
            } else {
                w!(s, "        Ext::{n}(v) => cx.link(v),");
            }
        }
        w!(s, "    }}\n}}\n");
        w!(
            s,
            "/// Lowers an output chain skeleton into zeroed C links with their sTypes."
        );
        w!(s, "pub fn lower_out_chain<'b, M: HandleMap>(chain: venus_protocol::Chain<'_>, cx: &mut LowerCx<'b, M>) -> Result<*mut c_void, LowerError> {{");
        w!(
            s,
            "    crate::lower::walk_out_chain(chain, cx, lower_out_link)\n}}\n"
        );
        w!(s, "/// One output link's zeroed self part in the arena.");
        w!(s, "fn lower_out_link<'b, M: HandleMap>(link: &Ext<'_>, cx: &mut LowerCx<'b, M>) -> Result<*mut c_void, LowerError> {{");
        w!(s, "    match link {{");
        for e in &exts {
            let n = type_name(&e.name);
            if e.partial {
                w!(s, "        Ext::{n}(v) => cx.out_link(v),");
            } else {
                w!(
                    s,
                    "        Ext::{n}(_) => Err(LowerError::NotAnOutput(\"{}\")),",
                    e.name
                );
            }
        }
        w!(s, "    }}\n}}\n");
        w!(s, "/// Raises a filled output chain: `skeleton` is the request's chain, `c` the C chain built from it.");
        w!(s, "pub fn raise_chain<'a, M: HandleMap>(skeleton: venus_protocol::Chain<'a>, c: *mut c_void, cx: &mut LowerCx<'a, M>) -> Result<venus_protocol::Chain<'a>, LowerError> {{");
        w!(s, "    // SAFETY: `c` was built by `lower_out_chain` from this same skeleton (drivers never change an");
        w!(s, "    // output's chain), and `raise_link` reads each C link as the type of its skeleton link.");
        w!(
            s,
            "    unsafe {{ crate::lower::raise_chain_with(skeleton, c, cx, raise_link) }}\n}}\n"
        );
        w!(s, "/// One filled output link, whose raised pNext is `next`.\n///\n/// # Safety\n/// `c` must be the C link that `lower_out_link` allocated for `link`.");
        w!(s, "unsafe fn raise_link<'a, M: HandleMap>(link: &'a Ext<'a>, c: *mut c_void, next: venus_protocol::Chain<'a>, cx: &mut LowerCx<'a, M>) -> Result<Ext<'a>, LowerError> {{");
        w!(s, "    match link {{");
        for e in exts.iter().filter(|e| e.partial) {
            let n = type_name(&e.name);
            w!(s, "        Ext::{n}(k) => {{\n            // SAFETY: per this function's contract `c` is the vk::{n} built for `k`.\n            unsafe {{ cx.raise_link(k, c, next, Ext::{n}) }}\n        }}");
        }
        w!(
            s,
            "        _ => Err(LowerError::NotAnOutput(\"chain link\")),"
        );
        w!(s, "    }}\n}}\n");
    }

    /// Expression lowering one input member whose protocol value is `f` (`by_value`: `f` is a
    /// value, not a field access).
    /// `at`: the struct or command that owns `mm` (named by a failed NULL check).
    fn lower_value(&self, mm: &Member, f: &str, at: &str) -> String {
        match &mm.shape {
            Shape::Value(e) => match e {
                Elem::Scalar(Scalar::SizeT) => format!("cx.size({f})?"),
                Elem::Enum(_) | Elem::Flags { .. } => {
                    format!("cx.defined({f}, {at:?}, {:?})?", mm.name)
                }
                Elem::Scalar(_) => f.to_string(),
                Elem::Handle(h) if mm.non_null => format!(
                    "vk::{}(cx.host_non_null({f}, {at:?}, {:?})?)",
                    type_name(h),
                    mm.name
                ),
                Elem::Handle(h) => format!("vk::{}(cx.host({f})?)", type_name(h)),
                Elem::Struct(_) | Elem::Union(_) => format!("{f}.lower(cx)?"),
            },
            Shape::FixedArray(e, _) => match e {
                Elem::Scalar(Scalar::SizeT) => format!("cx.sizes(&{f})?"),
                Elem::Enum(_) | Elem::Flags { .. } => {
                    format!("{{ cx.defined_slice(&{f}, {at:?}, {:?})?; {f} }}", mm.name)
                }
                Elem::Scalar(_) => f.to_string(),
                Elem::Handle(h) => format!("cx.hosts_fixed(&{f}, vk::{})?", type_name(h)),
                Elem::Struct(_) | Elem::Union(_) => format!("cx.lower_fixed(&{f}, |v, cx| v.lower(cx))?"),
            },
            Shape::CharArray(_) => format!("cx.chars(&{f})"),
            Shape::Ptr { elem, .. } => match elem {
                Elem::Scalar(Scalar::SizeT) => format!("cx.opt_alloc({f}.map(|v| *v as usize))"),
                Elem::Enum(_) | Elem::Flags { .. } => {
                    format!("cx.defined_ref({f}, {at:?}, {:?})?", mm.name)
                }
                Elem::Scalar(_) => format!("cx.opt_ref({f})"),
                Elem::Handle(h) => format!("match {f} {{ Some(v) => cx.alloc(vk::{}(cx.host(*v)?)) as *const _, None => core::ptr::null() }}", type_name(h)),
                Elem::Struct(_) | Elem::Union(_) => format!("match {f} {{ Some(v) => {{ let c = v.lower(cx)?; cx.alloc(c) as *const _ }} None => core::ptr::null() }}"),
            },
            Shape::Array { elem, .. } => match elem {
                Elem::Scalar(Scalar::SizeT) => format!("cx.sizes_slice({f})?"),
                Elem::Enum(_) | Elem::Flags { .. } => {
                    format!("cx.defined_slice({f}, {at:?}, {:?})?", mm.name)
                }
                Elem::Scalar(_) => format!("cx.slice({f})"),
                Elem::Handle(h) if mm.non_null => format!(
                    "cx.hosts_non_null({f}, vk::{}, {at:?}, {:?})?",
                    type_name(h),
                    mm.name
                ),
                Elem::Handle(h) => format!("cx.hosts({f}, vk::{})?", type_name(h)),
                Elem::Struct(_) | Elem::Union(_) => format!("cx.lower_slice({f}, |v, cx| v.lower(cx))?"),
            },
            Shape::Str => format!("cx.str({f})"),
            Shape::StrArray { .. } => format!("cx.strs({f})"),
            Shape::Blob { .. } => format!("cx.blob({f})"),
            Shape::NullOnly => "core::ptr::null()".into(),
        }
    }

    fn lower_struct(&self, s: &mut String, st: &Struct) -> Result<(), String> {
        let n = type_name(&st.name);
        let lt = if st.needs_lifetime { "<'a>" } else { "" };
        // A struct with a chain converts its self part in `*_link` (pNext NULL / `next`); the
        // full conversion adds the chain through the iterative chain functions.
        let chained = st.s_type.is_some();
        if chained {
            w!(s, "impl<'a> Lower for p::{n}{lt} {{");
            w!(s, "    type C = vk::{n};");
            w!(
                s,
                "    /// The C struct for this input (chain and arrays lowered into the arena)."
            );
            w!(s, "    fn lower<'b, M: HandleMap>(&self, cx: &mut LowerCx<'b, M>) -> Result<vk::{n}, LowerError> {{");
            w!(s, "        let mut c = self.lower_link(cx)?;\n        c.p_next = lower_chain(self.p_next, cx)?;\n        Ok(c)\n    }}\n}}\n");
            w!(s, "impl<'a> LowerLink for p::{n}{lt} {{");
            w!(s, "    type C = vk::{n};");
            w!(
                s,
                "    /// The C struct for this input without its chain (arrays lowered into the arena)."
            );
            w!(s, "    fn lower_link<'b, M: HandleMap>(&self, cx: &mut LowerCx<'b, M>) -> Result<vk::{n}, LowerError> {{");
        } else {
            w!(s, "impl<'a> Lower for p::{n}{lt} {{");
            w!(s, "    type C = vk::{n};");
            w!(
                s,
                "    /// The C struct for this input (arrays lowered into the arena)."
            );
            w!(s, "    fn lower<'b, M: HandleMap>(&self, cx: &mut LowerCx<'b, M>) -> Result<vk::{n}, LowerError> {{");
        }
        self.struct_checks(s, st)?;
        w!(s, "        Ok(vk::{n} {{");
        if chained {
            w!(s, "            s_type: p::{n}::STRUCTURE_TYPE,\n            p_next: core::ptr::null_mut(),");
        }
        for mm in &st.members {
            let f = format!("self.{}", field_name(&mm.name));
            let queue_family = self.m.checks.iter().any(|k| {
                matches!(*k, Check::QueueFamily { structure, member }
                    if structure == st.name && member == mm.name)
            });
            let v = match &mm.shape {
                _ if self.m.is_hidden_feature(&st.name, &mm.name) => {
                    "0 /* hidden feature: never enabled on the host */".to_string()
                }
                _ if queue_family => format!("cx.queue_family({f})"),
                Shape::Array { elem: e, .. }
                    if e.is_plain()
                        && !matches!(e, Elem::Handle(_) | Elem::Scalar(Scalar::SizeT)) =>
                {
                    format!("{} as *const _", self.lower_value(mm, &f, &st.name))
                }
                _ => self.lower_value(mm, &f, &st.name),
            };
            w!(s, "            {}: {v},", field_name(&mm.name));
        }
        w!(s, "        }})\n    }}\n}}\n");
        if st.partial {
            self.output_struct(s, st, chained);
        }
        Ok(())
    }

    /// `Raise` (and, for a struct with a chain, `RaiseLink`) of an output struct.
    fn output_struct(&self, s: &mut String, st: &Struct, chained: bool) {
        let n = type_name(&st.name);
        let lt = if st.needs_lifetime { "<'a>" } else { "" };
        if chained {
            w!(s, "impl<'a> Raise<'a> for p::{n}{lt} {{");
            w!(s, "    type C = vk::{n};");
            w!(
                s,
                "    /// A C struct for the driver to fill, shaped by this output skeleton."
            );
            w!(s, "    fn lower_out<'b, M: HandleMap>(&self, cx: &mut LowerCx<'b, M>) -> Result<vk::{n}, LowerError> {{");
            w!(s, "        let mut c = self.lower_out_link(cx)?;\n        c.p_next = lower_out_chain(self.p_next, cx)?;\n        Ok(c)\n    }}");
            w!(
                s,
                "    /// The filled output, read from `c` (built by `lower_out` from `skeleton`)."
            );
            w!(s, "    fn raise<M: HandleMap>(skeleton: &Self, c: &vk::{n}, cx: &mut LowerCx<'a, M>) -> Result<Self, LowerError> {{");
            w!(s, "        let next = raise_chain(skeleton.p_next, c.p_next, cx)?;\n        Self::raise_link(skeleton, c, next, cx)\n    }}\n}}\n");
            w!(s, "impl<'a> RaiseLink<'a> for p::{n}{lt} {{");
            w!(s, "    type C = vk::{n};");
            w!(
                s,
                "    /// A C struct for the driver to fill, shaped by this output skeleton (pNext NULL)."
            );
            w!(s, "    fn lower_out_link<'b, M: HandleMap>(&self, cx: &mut LowerCx<'b, M>) -> Result<vk::{n}, LowerError> {{");
        } else {
            w!(s, "impl<'a> Raise<'a> for p::{n}{lt} {{");
            w!(s, "    type C = vk::{n};");
            w!(
                s,
                "    /// A C struct for the driver to fill, shaped by this output skeleton."
            );
            w!(s, "    fn lower_out<'b, M: HandleMap>(&self, cx: &mut LowerCx<'b, M>) -> Result<vk::{n}, LowerError> {{");
        }
        self.lower_out_body(s, st);
        self.raise_body(s, st, chained);
        w!(s, "}}\n");
    }

    /// The body of `lower_out`/`lower_out_link`: a zeroed C struct with counts and output
    /// arrays (the chain, if any, is linked by the caller).
    fn lower_out_body(&self, s: &mut String, st: &Struct) {
        let n = type_name(&st.name);
        w!(s, "        let mut c = vk::{n}::default();");
        for mm in &st.members {
            let f = field_name(&mm.name);
            match &mm.shape {
                Shape::Value(Elem::Struct(_)) => {
                    w!(s, "        c.{f} = self.{f}.lower_out(cx)?;")
                }
                Shape::FixedArray(Elem::Struct(_), _) => w!(
                    s,
                    "        c.{f} = cx.lower_fixed(&self.{f}, |v, cx| v.lower_out(cx))?;"
                ),
                Shape::Value(Elem::Scalar(Scalar::SizeT)) if mm.is_len => {
                    w!(s, "        c.{f} = cx.size(self.{f})?;")
                }
                Shape::Value(Elem::Scalar(_)) if mm.is_len => {
                    w!(s, "        c.{f} = self.{f};")
                }
                Shape::Value(Elem::Handle(h)) if mm.non_null => w!(
                    s,
                    "        c.{f} = vk::{}(cx.host_non_null(self.{f}, {:?}, {:?})?);",
                    type_name(h),
                    st.name,
                    mm.name
                ),
                Shape::Value(Elem::Handle(h)) => w!(
                    s,
                    "        c.{f} = vk::{}(cx.host(self.{f})?);",
                    type_name(h)
                ),
                Shape::FixedArray(Elem::Handle(h), _) => w!(
                    s,
                    "        c.{f} = cx.hosts_fixed(&self.{f}, vk::{})?;",
                    type_name(h)
                ),
                Shape::Array {
                    elem: Elem::Struct(_),
                    ..
                } => w!(
                    s,
                    "        c.{f} = cx.lower_slice_mut(self.{f}, |v, cx| v.lower_out(cx))?;"
                ),
                Shape::Array { elem, .. }
                    if elem.is_plain() && !matches!(elem, Elem::Handle(_)) =>
                {
                    w!(
                        s,
                        "        c.{f} = cx.zeroed_mut(self.{f}.len()) as *const _;"
                    )
                }
                Shape::Blob { .. } => w!(
                    s,
                    "        c.{f} = cx.zeroed_mut::<u8>(self.{f}.len()) as *const c_void;"
                ),
                _ => {}
            }
        }
        w!(s, "        Ok(c)\n    }}");
    }

    /// `raise` (no chain) or `raise_link` (its raised chain given as `next`).
    fn raise_body(&self, s: &mut String, st: &Struct, chained: bool) {
        let n = type_name(&st.name);
        w!(
            s,
            "    /// The filled output, read from `c` (built by `lower_out` from `skeleton`)."
        );
        let mut fields = Vec::new();
        if chained {
            w!(s, "    fn raise_link<M: HandleMap>(skeleton: &Self, c: &vk::{n}, next: venus_protocol::Chain<'a>, cx: &mut LowerCx<'a, M>) -> Result<Self, LowerError> {{");
            fields.push("p_next: next".to_string());
        } else {
            w!(s, "    fn raise<M: HandleMap>(skeleton: &Self, c: &vk::{n}, cx: &mut LowerCx<'a, M>) -> Result<Self, LowerError> {{");
        }
        for mm in &st.members {
            let f = field_name(&mm.name);
            let v = match &mm.shape {
                _ if self.m.is_hidden_feature(&st.name, &mm.name) => {
                    "0 /* hidden feature: never reported */".to_string()
                }
                Shape::Value(Elem::Scalar(Scalar::SizeT)) => format!("c.{f} as u64"),
                Shape::Value(Elem::Scalar(_) | Elem::Enum(_) | Elem::Flags { .. }) => format!("c.{f}"),
                Shape::Value(Elem::Handle(_)) => format!("cx.guest(c.{f}.0)?"),
                Shape::Value(Elem::Struct(x)) => format!("p::{}::raise(&skeleton.{f}, &c.{f}, cx)?", type_name(x)),
                Shape::Value(Elem::Union(_)) => "Default::default()".into(),
                Shape::FixedArray(Elem::Scalar(Scalar::SizeT), _) => format!("c.{f}.map(|v| v as u64)"),
                Shape::FixedArray(Elem::Scalar(_) | Elem::Enum(_) | Elem::Flags { .. }, _) => format!("c.{f}"),
                Shape::FixedArray(Elem::Handle(_), _) => format!("cx.guests_fixed(&c.{f}.map(|h| h.0))?"),
                Shape::FixedArray(Elem::Struct(x), _) => format!("cx.raise_fixed(&skeleton.{f}, &c.{f}, p::{}::raise)?", type_name(x)),
                Shape::FixedArray(Elem::Union(_), _) => "Default::default()".into(),
                Shape::CharArray(_) => format!("cx.raise_chars(&c.{f})"),
                Shape::Array { elem, len, .. } => {
                    let count = match len.as_simple() {
                        Some(r) => format!("(c.{} as usize)", field_name(r)),
                        None => format!("skeleton.{f}.len()"),
                    };
                    match elem {
                        Elem::Struct(x) => format!(
                            "{{\n            // SAFETY: lower_out allocated {f} with skeleton.{f}.len() elements; raise_slice reads at most that many.\n            unsafe {{ cx.raise_slice(skeleton.{f}, c.{f}, {count}, p::{}::raise)? }}\n        }}",
                            type_name(x)
                        ),
                        Elem::Handle(_) => "&[]".into(),
                        _ => format!(
                            "{{\n            // SAFETY: lower_out allocated {f} with skeleton.{f}.len() zeroed elements; copy_out reads at most that many.\n            unsafe {{ cx.copy_out(c.{f}, skeleton.{f}.len(), {count}) }}\n        }}"
                        ),
                    }
                }
                Shape::Blob { .. } => format!(
                    "{{\n            // SAFETY: lower_out allocated {f} with skeleton.{f}.len() zeroed bytes.\n            unsafe {{ cx.copy_out(c.{f} as *const u8, skeleton.{f}.len(), skeleton.{f}.len()) }}\n        }}"
                ),
                Shape::Ptr { .. } => "None".into(),
                _ => "Default::default()".into(),
            };
            w!(s, "        let {f} = {v};");
            fields.push(f);
        }
        w!(s, "        Ok(Self {{ {} }})\n    }}", fields.join(", "));
    }
}
