//! Golden tests of the generator: a tiny registry of our own (tests/golden/input) must produce
//! exactly the committed files in tests/golden/expected. Set `UPDATE_GOLDEN=1` to rewrite them
//! after an intended change, and review the diff.

use std::path::Path;

use xtask::special::{Bound, Check, HiddenFeature, HostOnly, PolicyKind, PolicyRow, Tables};

/// The tiny registry's tables: one row of every policy class and check kind.
const TINY: Tables = Tables {
    limits_struct: "VkThingLimits",
    policies: &[
        PolicyRow {
            command: "vkCreateThing",
            policy: PolicyKind::Handwritten {
                why: "things get guest ids",
            },
        },
        PolicyRow {
            command: "vkCmdTouchThings",
            policy: PolicyKind::Refused {
                why: "touching is not allowed",
            },
        },
    ],
    checks: &[
        Check::PackedStride {
            command: "vkCmdDrawThings",
            param: "stride",
            array: "pDraws",
        },
        Check::OutputExtent {
            command: "vkGetThingResults",
            buffer: "pData",
            size: "dataSize",
            count: "queryCount",
            stride: "stride",
            max_element: 16,
            limit: 4096,
            why: "results land at i * stride",
        },
        Check::DeviceLimit {
            command: "vkCmdPushThing",
            first: Some("offset"),
            count: "size",
            limit: "maxThings",
        },
        Check::MemberLimit {
            structure: "VkThingCreateInfo",
            member: "indexCount",
            bound: Bound::AtMost,
            limit: "maxThings",
        },
        Check::MultipleOf {
            structure: "VkThingCreateInfo",
            member: "codeSize",
            factor: 4,
        },
        Check::EntriesWithin {
            structure: "VkThingCreateInfo",
            array: "pMapEntries",
            offset: "offset",
            size: "size",
            total: "size",
        },
        Check::SelectedArray {
            structure: "VkThingCreateInfo",
            count: "indexCount",
            selector: "mode",
            arms: &[(&["VK_THING_MODE_FAST"], "pIndices")],
        },
        Check::ChainedBytes {
            structure: "VkThingCreateInfo",
            selector: "mode",
            value: "VK_THING_MODE_2D",
            count: "indexCount",
            link: "VkThingExtraInfo",
            array: "pData",
        },
        Check::QueueFamily {
            structure: "VkThingDraw",
            member: "first",
        },
        Check::NonZero {
            structure: "VkThingCreateInfo",
            member: "size",
            vuid: "VUID-size",
        },
        Check::NonZero {
            structure: "VkThingCreateInfo",
            member: "draw",
            vuid: "VUID-draw",
        },
        Check::NonZero {
            structure: "VkThingCreateInfo",
            member: "draw.count",
            vuid: "VUID-draw-count",
        },
        Check::SingleBit {
            structure: "VkThingCreateInfo",
            member: "samples",
            vuid: "VUID-samples",
        },
    ],
    host_only: &[HostOnly {
        extension: "VK_TEST_thing_extra",
        structs: &["VkThingFdInfo"],
        commands: &["vkGetThingFdTEST"],
        why: "fds stay on the host",
    }],
    not_advertised: &[("VK_TEST_thing_warp", "warping is not implemented")],
    hidden_features: &[],
};

fn tiny_inputs() -> xtask::Inputs {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/input");
    xtask::Inputs::read(&dir, "commands.tsv", "extensions.tsv").unwrap()
}

#[test]
fn tiny_registry_generates_the_golden_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let inputs = xtask::Inputs::read(&dir.join("input"), "commands.tsv", "extensions.tsv").unwrap();
    let files = xtask::generate_with(&inputs, &TINY).unwrap();
    let expected = dir.join("expected");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        for (key, name, text) in &files {
            std::fs::create_dir_all(expected.join(key)).unwrap();
            std::fs::write(expected.join(key).join(name), text).unwrap();
        }
    }
    let mut mismatched = Vec::new();
    for (key, name, text) in &files {
        let want = std::fs::read_to_string(expected.join(key).join(name)).unwrap_or_default();
        if &want != text {
            mismatched.push(format!("{key}/{name}"));
        }
    }
    assert!(
        mismatched.is_empty(),
        "generated files differ from tests/golden/expected: {mismatched:?}"
    );
}

#[test]
fn tiny_model_has_the_expected_shapes() {
    use xtask::model::{Dir, Shape};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/input");
    let model = xtask::build_model_with(
        &xtask::Inputs::read(&dir, "commands.tsv", "extensions.tsv").unwrap(),
        &TINY,
    )
    .unwrap();
    let info = &model.structs["VkThingCreateInfo"];
    assert_eq!(info.s_type.as_ref().unwrap().1, 1);
    // The extender with an OS file descriptor cannot be serialized and is not a legal link.
    assert_eq!(info.extenders, vec!["VkThingExtraInfo".to_string()]);
    assert_eq!(
        model.structs["VkThingExtraInfo"].s_type.as_ref().unwrap().1,
        1_000_006_000
    );
    // The struct added by the special-cases table, attached to the MESA extension (number 385).
    let prio = &model.structs["VkRingPriorityInfoMESA"];
    assert_eq!(prio.s_type.as_ref().unwrap().1, 1_000_384_007);
    assert_eq!(
        model.structs["VkRingCreateInfoMESA"].extenders,
        vec!["VkRingPriorityInfoMESA".to_string()]
    );
    // Output closure: properties and the limits inside them need partial codecs; inputs don't.
    assert!(model.structs["VkThingProperties"].partial && model.structs["VkThingLimits"].partial);
    assert!(!info.partial);
    let get = model
        .commands
        .iter()
        .find(|c| c.name == "vkGetThingProperties")
        .unwrap();
    assert_eq!(get.params[1].dir, Dir::InOut);
    assert_eq!(get.params[2].dir, Dir::Out);
    let code = info.members.iter().find(|m| m.name == "pCode").unwrap();
    assert!(matches!(code.shape, Shape::Array { .. }));
    assert!(
        info.members
            .iter()
            .find(|m| m.name == "codeSize")
            .unwrap()
            .small
    );
    let map = model
        .commands
        .iter()
        .find(|c| c.name == "vkMapMemory")
        .unwrap();
    assert!(map.encoding.is_err());
    assert_eq!(model.unions["VkClearColorValue"].default_tag, 2);
    // Enumerants of extensions outside the protocol are not constants.
    let modes: Vec<&str> = model.enums["VkThingMode"]
        .values
        .iter()
        .map(|v| v.0.as_str())
        .collect();
    assert_eq!(modes, vec!["VK_THING_MODE_FAST", "VK_THING_MODE_2D"]);
}

#[test]
fn policy_classes_are_derived_and_overridden() {
    use xtask::model::Class;
    let model = xtask::build_model_with(&tiny_inputs(), &TINY).unwrap();
    let class = |n: &str| {
        model
            .commands
            .iter()
            .find(|c| c.name == n)
            .unwrap()
            .class
            .clone()
    };
    assert_eq!(
        class("vkCreateThing"),
        Class::Handwritten("things get guest ids")
    );
    assert_eq!(
        class("vkCmdTouchThings"),
        Class::Refused("touching is not allowed".into())
    );
    assert_eq!(class("vkDestroyThing"), Class::Destroy);
    assert_eq!(class("vkGetThingProperties"), Class::Generic);
    let d = model
        .commands
        .iter()
        .find(|c| c.name == "vkDestroyThing")
        .unwrap();
    let d = d.destroy.as_ref().unwrap();
    assert_eq!(
        (d.target.as_str(), d.object.as_str(), d.array),
        ("VkThing", "thing", false)
    );
    // Host-only: the fd struct and command get C bindings, no codec.
    assert_eq!(model.host_structs[0].name, "VkThingFdInfo");
    assert_eq!(model.host_commands[0].name, "vkGetThingFdTEST");
}

/// The rows of `tables` with one row replaced, for the error tests.
fn with_check(check: Check) -> Tables {
    let checks: &'static [Check] = Box::leak(vec![check].into_boxed_slice());
    Tables { checks, ..TINY }
}

#[test]
fn rows_naming_what_does_not_exist_are_errors() {
    let cases: Vec<(Tables, &str)> = vec![
        (
            Tables {
                policies: &[PolicyRow {
                    command: "vkNoSuchThing",
                    policy: PolicyKind::Refused { why: "x" },
                }],
                ..TINY
            },
            "no command vkNoSuchThing",
        ),
        (
            with_check(Check::PackedStride {
                command: "vkCmdDrawThings",
                param: "strid",
                array: "pDraws",
            }),
            "no input parameter strid",
        ),
        (
            with_check(Check::DeviceLimit {
                command: "vkCmdPushThing",
                first: None,
                count: "size",
                limit: "maxWidgets",
            }),
            "VkThingLimits has no member maxWidgets",
        ),
        (
            with_check(Check::MultipleOf {
                structure: "VkThingCreateInfo",
                member: "codeSiz",
                factor: 4,
            }),
            "VkThingCreateInfo has no member codeSiz",
        ),
        (
            with_check(Check::QueueFamily {
                structure: "VkThingCreateInfo",
                member: "size",
            }),
            "size is not a uint32_t",
        ),
        (
            with_check(Check::SelectedArray {
                structure: "VkThingCreateInfo",
                count: "indexCount",
                selector: "mode",
                arms: &[(&["VK_THING_MODE_SLOW_TEST"], "pIndices")],
            }),
            "VK_THING_MODE_SLOW_TEST is not a value of VkThingMode",
        ),
        (
            with_check(Check::OutputExtent {
                command: "vkGetThingResults",
                buffer: "pDat",
                size: "dataSize",
                count: "queryCount",
                stride: "stride",
                max_element: 1,
                limit: 1,
                why: "",
            }),
            "has no output pDat",
        ),
        (
            with_check(Check::NonZero {
                structure: "VkThingCreateInfo",
                member: "size.width",
                vuid: "",
            }),
            "width is not inside a struct value",
        ),
        (
            with_check(Check::NonZero {
                structure: "VkThingCreateInfo",
                member: "pIndices",
                vuid: "",
            }),
            "pIndices is not an integer value",
        ),
        (
            with_check(Check::SingleBit {
                structure: "VkThingCreateInfo",
                member: "mode",
                vuid: "",
            }),
            "VkThingMode is not a Vk*FlagBits enum",
        ),
        (
            with_check(Check::SingleBit {
                structure: "VkThingCreateInfo",
                member: "size",
                vuid: "",
            }),
            "size is not an enum",
        ),
        (
            Tables {
                host_only: &[HostOnly {
                    extension: "VK_TEST_thing_extra",
                    structs: &["VkNoSuchStruct"],
                    commands: &[],
                    why: "",
                }],
                ..TINY
            },
            "host-only struct VkNoSuchStruct",
        ),
    ];
    for (tables, want) in cases {
        let err = match xtask::build_model_with(&tiny_inputs(), &tables) {
            Ok(_) => panic!("expected an error containing {want:?}"),
            Err(e) => e,
        };
        assert!(err.contains(want), "{err:?} does not contain {want:?}");
    }
}

/// The methods of the generated `Handwritten` trait.
fn trait_methods(policy_rs: &str) -> Vec<String> {
    let start = policy_rs.find("pub trait Handwritten").unwrap();
    let body = &policy_rs[start..];
    let body = &body[..body.find("\n}").unwrap()];
    body.lines()
        .filter_map(|l| l.trim().strip_prefix("fn "))
        .map(|l| l[..l.find('(').unwrap()].to_string())
        .collect()
}

#[test]
fn handwritten_trait_has_one_method_per_row() {
    // Tiny registry.
    let files = xtask::generate_with(&tiny_inputs(), &TINY).unwrap();
    let policy = &files.iter().find(|f| f.1 == "policy.rs").unwrap().2;
    assert_eq!(trait_methods(policy), vec!["create_thing".to_string()]);
    // The real protocol level: exactly the Handwritten rows of special::POLICIES.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol");
    let inputs = xtask::Inputs::read(
        &root,
        "70991d4c-command-types.tsv",
        "70991d4c-extensions.tsv",
    )
    .unwrap();
    let files = xtask::generate(&inputs).unwrap();
    let policy = &files.iter().find(|f| f.1 == "policy.rs").unwrap().2;
    let mut got = trait_methods(policy);
    let mut want: Vec<String> = xtask::special::POLICIES
        .iter()
        .filter(|r| matches!(r.policy, PolicyKind::Handwritten { .. }))
        .map(|r| xtask::names::field_name(&xtask::names::command_name(r.command)))
        .collect();
    got.sort();
    want.sort();
    assert!(
        want.len() >= 20,
        "the Handwritten rows went missing: {want:?}"
    );
    assert_eq!(got, want);
}

/// The vendored command-serialization XML (fork revision e2544a38) has exactly the
/// `special::BEYOND_LEVEL` names above `MAX_COMMAND_ID` (the VK_KHR_maintenance10 group, id 346),
/// and the generated table stops at 345.
#[test]
fn the_group_beyond_the_level_is_dropped() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol");
    let xml = std::fs::read_to_string(root.join("xml/VK_EXT_command_serialization.xml")).unwrap();
    let mut beyond: Vec<String> = Vec::new();
    let mut by_name = std::collections::BTreeMap::new();
    for l in xml.lines().filter(|l| l.contains("VK_COMMAND_TYPE_")) {
        let attr = |k: &str| {
            l.split(&format!("{k}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .map(str::to_string)
        };
        let name = attr("name").unwrap();
        let value = attr("value").and_then(|v| v.parse::<u32>().ok());
        let value = value.or_else(|| attr("alias").and_then(|a| by_name.get(&a).copied()));
        if let Some(v) = value {
            by_name.insert(name.clone(), v);
            if v > xtask::special::MAX_COMMAND_ID {
                beyond.push(
                    name.trim_start_matches("VK_COMMAND_TYPE_")
                        .trim_end_matches("_EXT")
                        .to_string(),
                );
            }
        }
    }
    beyond.sort();
    let mut want: Vec<String> = xtask::special::BEYOND_LEVEL
        .iter()
        .map(|s| s.to_string())
        .collect();
    want.sort();
    assert_eq!(beyond, want);
    assert_eq!(xtask::special::MAX_COMMAND_ID, 345);
}

/// The class the tiny model gives `name`.
fn class_of(model: &xtask::model::Model, name: &str) -> xtask::model::Class {
    model
        .commands
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no command {name}"))
        .class
        .clone()
}

#[test]
fn commands_only_a_not_advertised_extension_provides_are_refused() {
    use xtask::model::Class;
    let model = xtask::build_model_with(&tiny_inputs(), &TINY).unwrap();
    let why = "VK_TEST_thing_warp is not advertised (warping is not implemented)";
    // Only VK_TEST_thing_warp requires it.
    assert_eq!(
        class_of(&model, "vkCmdWarpThingsTEST"),
        Class::Refused(why.into())
    );
    // An advertised extension requires it, in a block that depends on VK_TEST_thing_warp.
    assert_eq!(
        class_of(&model, "vkCmdBendThingsTEST"),
        Class::Refused(why.into())
    );
    // VK_VERSION_1_0 requires it too.
    assert_eq!(class_of(&model, "vkCmdPushThing"), Class::Generic);
    // The generated policy table and route() carry the derived reason.
    let files = xtask::generate_with(&tiny_inputs(), &TINY).unwrap();
    let policy = &files.iter().find(|f| f.1 == "policy.rs").unwrap().2;
    let route = format!(
        "K::CmdWarpThingsTEST(_) => Routed::Refused {{ command: \"vkCmdWarpThingsTEST\", why: {why:?} }}"
    );
    assert!(policy.contains(&route), "{policy}");
    let types = &files.iter().find(|f| f.1 == "types.rs").unwrap().2;
    assert!(types.contains("    // warping is not implemented\n    \"VK_TEST_thing_warp\",\n"));
}

#[test]
fn a_row_for_a_not_advertised_command_or_an_unknown_extension_is_an_error() {
    let mut policies = TINY.policies.to_vec();
    policies.push(PolicyRow {
        command: "vkCmdWarpThingsTEST",
        policy: PolicyKind::Refused { why: "twice" },
    });
    let policies: &'static [PolicyRow] = Box::leak(policies.into_boxed_slice());
    let tables = Tables { policies, ..TINY };
    let err = xtask::build_model_with(&tiny_inputs(), &tables).unwrap_err();
    assert!(
        err.contains("vkCmdWarpThingsTEST") && err.contains("policy row"),
        "{err}"
    );
    let tables = Tables {
        not_advertised: &[("VK_TEST_no_such", "?")],
        ..TINY
    };
    let err = xtask::build_model_with(&tiny_inputs(), &tables).unwrap_err();
    assert!(
        err.contains("VK_TEST_no_such is not in the protocol's extension table"),
        "{err}"
    );
}

#[test]
fn hidden_features_are_false_both_ways_and_checked() {
    let row = |structure, member, extension| HiddenFeature {
        structure,
        member,
        extension,
    };
    let rows: &'static [HiddenFeature] =
        Box::leak(vec![row("VkThingExtraInfo", "extra", "VK_TEST_thing_warp")].into_boxed_slice());
    let tables = Tables {
        hidden_features: rows,
        ..TINY
    };
    let files = xtask::generate_with(&tiny_inputs(), &tables).unwrap();
    let lower = &files.iter().find(|f| f.1 == "lower.rs").unwrap().2;
    assert!(
        lower.contains("extra: 0 /* hidden feature: never enabled on the host */"),
        "{lower}"
    );
    let errors = [
        (
            row("VkNoSuch", "extra", "VK_TEST_thing_warp"),
            "no struct VkNoSuch",
        ),
        (
            row("VkThingExtraInfo", "nope", "VK_TEST_thing_warp"),
            "has no member nope",
        ),
        (
            row("VkThingExtraInfo", "pData", "VK_TEST_thing_warp"),
            "is not a VkBool32",
        ),
        (
            row("VkThingExtraInfo", "extra", "VK_TEST_thing_extra"),
            "is not a not_advertised",
        ),
    ];
    for (r, want) in errors {
        let rows: &'static [HiddenFeature] = Box::leak(vec![r].into_boxed_slice());
        let tables = Tables {
            hidden_features: rows,
            ..TINY
        };
        let err = xtask::build_model_with(&tiny_inputs(), &tables).unwrap_err();
        assert!(err.contains(want), "{err}");
    }
}
