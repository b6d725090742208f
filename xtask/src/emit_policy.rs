//! Emits `venus-host/src/generated/policy.rs`: the per-command policy table, the
//! [`Handwritten`] trait (one method per Handwritten row, no default bodies) and `route()`.

use std::fmt::Write;

use crate::model::{Class, Model};
use crate::names::{command_name, field_name, type_name};
use crate::policy::executable;

macro_rules! w {
    ($dst:expr, $($arg:tt)*) => {{ let _ = writeln!($dst, $($arg)*); }};
}

const PRELUDE: &str = r#"//! The per-command policy: how the host runs each command (generic executor, a handwritten
//! handler, the destroy path, or refused), the checks its executor enforces, and `route()`,
//! which sorts a decoded command into those classes.

use venus_protocol::commands as c;
use venus_protocol::Handle;

/// How the host runs a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// The generated executor (`calls.rs`) runs it as is.
    Generic,
    /// A method of [`Handwritten`] runs it.
    Handwritten,
    /// It destroys objects: the dispatch layer updates its table, then runs the executor.
    Destroy,
    /// Never executed.
    Refused { why: &'static str },
}

/// One command's policy and the rules its executor and lowering enforce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandPolicy {
    pub command: &'static str,
    pub policy: Policy,
    pub checks: &'static [&'static str],
}

/// What a Destroy-class command names (guest ids, as sent; NULL ids left out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destroy {
    pub command: &'static str,
    /// `VkObjectType` of the destroyed objects.
    pub object_type: i32,
    /// The command's first parameter (the device for every device child).
    pub device: u64,
    /// The pool of vkFreeCommandBuffers / vkFreeDescriptorSets.
    pub pool: Option<u64>,
    pub objects: Vec<u64>,
}

/// Where `route()` sent a command.
#[derive(Debug)]
pub enum Routed<T> {
    /// A [`Handwritten`] method ran; its result.
    Handled(T),
    /// Run the generated executor.
    Generic,
    Destroy(Destroy),
    Refused { command: &'static str, why: &'static str },
}

fn ids<T: Handle>(v: &[venus_protocol::Id<T>]) -> Vec<u64> {
    v.iter().filter(|g| !g.is_null()).map(|g| g.raw()).collect()
}
"#;

pub fn emit(model: &Model) -> Result<String, String> {
    let mut s = String::from(crate::emit::HEADER);
    s.push_str(PRELUDE);
    let cmds: Vec<_> = model.commands.iter().filter(|c| executable(c)).collect();
    // The table, indexed by command id.
    let max = cmds.iter().map(|c| c.id).max().unwrap_or(0);
    w!(
        s,
        "\nstatic TABLE: [Option<CommandPolicy>; {}] = [",
        max + 1
    );
    for id in 0..=max {
        let Some(c) = cmds.iter().find(|c| c.id == id) else {
            w!(s, "    None,");
            continue;
        };
        let policy = match &c.class {
            Class::Generic => "Policy::Generic".to_string(),
            Class::Handwritten(_) => "Policy::Handwritten".to_string(),
            Class::Destroy => "Policy::Destroy".to_string(),
            Class::Refused(why) => format!("Policy::Refused {{ why: {why:?} }}"),
        };
        let checks: Vec<String> = model
            .checks
            .iter()
            .filter(|k| k.is_command() && k.owner() == c.name)
            .map(|k| format!("{:?}", k.describe()))
            .collect();
        w!(
            s,
            "    Some(CommandPolicy {{ command: {:?}, policy: {policy}, checks: &[{}] }}),",
            c.name,
            checks.join(", ")
        );
    }
    w!(s, "];\n");
    w!(s, "/// The policy of a command id (`None` for transport (MESA) commands, commands without a wire");
    w!(s, "/// encoding and unknown ids).");
    w!(s, "pub fn policy_of(command_type: venus_protocol::CommandType) -> Option<&'static CommandPolicy> {{");
    w!(
        s,
        "    TABLE.get(usize::try_from(command_type.0).ok()?)?.as_ref()\n}}\n"
    );
    w!(
        s,
        "/// Struct-level rules the lowering enforces (`struct: rule`)."
    );
    w!(s, "pub const STRUCT_CHECKS: &[&str] = &[");
    for k in model.checks.iter().filter(|k| !k.is_command()) {
        w!(s, "    {:?},", k.describe());
    }
    w!(s, "];\n");
    // The trait.
    w!(s, "/// One method per Handwritten command, NO default bodies: a Handwritten row without a handler");
    w!(s, "/// in the dispatch layer does not compile.");
    w!(s, "///\n/// ```compile_fail\n/// use venus_host::policy::Handwritten;\n/// struct X;\n/// impl<C> Handwritten<C> for X {{\n///     type Out = ();\n/// }}\n/// ```");
    w!(s, "pub trait Handwritten<C: ?Sized> {{\n    type Out;");
    for c in cmds
        .iter()
        .filter(|c| matches!(c.class, Class::Handwritten(_)))
    {
        let Class::Handwritten(why) = c.class else {
            unreachable!()
        };
        let lt = if c.needs_lifetime { "<'_>" } else { "" };
        w!(s, "    /// `{}`: {why}.", c.name);
        w!(
            s,
            "    fn {}(&self, cx: &mut C, a: &c::{}Args{lt}) -> Self::Out;",
            field_name(&command_name(&c.name)),
            command_name(&c.name)
        );
    }
    w!(s, "}}\n");
    // route()
    w!(s, "/// Sorts `cmd` by its policy: runs the handler of a Handwritten command, describes what a");
    w!(
        s,
        "/// Destroy command destroys, names a Refused one; everything else is `Generic`."
    );
    w!(s, "pub fn route<C: ?Sized, H: Handwritten<C> + ?Sized>(h: &H, cx: &mut C, cmd: &venus_protocol::Command<'_>) -> Routed<H::Out> {{");
    w!(s, "    use venus_protocol::Command as K;\n    match cmd {{");
    for c in &cmds {
        let n = command_name(&c.name);
        match &c.class {
            Class::Generic => {}
            Class::Handwritten(_) => {
                w!(
                    s,
                    "        K::{n}(a) => Routed::Handled(h.{}(cx, a)),",
                    field_name(&n)
                )
            }
            Class::Refused(why) => w!(
                s,
                "        K::{n}(_) => Routed::Refused {{ command: {:?}, why: {why:?} }},",
                c.name
            ),
            Class::Destroy => {
                let d = c
                    .destroy
                    .as_ref()
                    .ok_or(format!("{}: Destroy without shape", c.name))?;
                let ty = type_name(&d.target);
                let objects = if d.array {
                    format!("ids(a.{})", field_name(&d.object))
                } else {
                    format!("ids(&[a.{}])", field_name(&d.object))
                };
                let pool = match &d.pool {
                    Some((p, _)) => format!("Some(a.{}.raw())", field_name(p)),
                    None => "None".into(),
                };
                w!(s, "        K::{n}(a) => Routed::Destroy(Destroy {{ command: {:?}, object_type: <venus_protocol::handles::{ty} as Handle>::OBJECT_TYPE, device: a.{}.raw(), pool: {pool}, objects: {objects} }}),", c.name, field_name(&d.parent));
            }
        }
    }
    // Transport (MESA) commands of our supplement that serve a not-advertised extension.
    for c in model
        .commands
        .iter()
        .filter(|c| c.encoding.is_ok() && !executable(c))
    {
        if let Class::Refused(why) = &c.class {
            w!(
                s,
                "        K::{}(_) => Routed::Refused {{ command: {:?}, why: {why:?} }},",
                command_name(&c.name),
                c.name
            );
        }
    }
    w!(s, "        _ => Routed::Generic,\n    }}\n}}");
    Ok(s)
}
