//! Golden tests of the generator: a tiny registry of our own (tests/golden/input) must produce
//! exactly the committed files in tests/golden/expected. Set `UPDATE_GOLDEN=1` to rewrite them
//! after an intended change, and review the diff.

use std::path::Path;

#[test]
fn tiny_registry_generates_the_golden_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let inputs = xtask::Inputs::read(&dir.join("input"), "commands.tsv", "extensions.tsv").unwrap();
    let files = xtask::generate(&inputs).unwrap();
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
    let model =
        xtask::build_model(&xtask::Inputs::read(&dir, "commands.tsv", "extensions.tsv").unwrap())
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
