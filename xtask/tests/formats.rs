//! The format table of the generator (`xtask::formats`) on the golden tests' tiny registry:
//! which formats are kept, how planes resolve, and the errors for a broken `<formats>`.

use std::path::Path;

use xtask::special::Tables;

/// No policy, check or host-only rows: the format table depends on none of them.
const EMPTY: Tables = Tables {
    limits_struct: "VkThingLimits",
    policies: &[],
    checks: &[],
    host_only: &[],
    not_advertised: &[],
    hidden_features: &[],
};

fn tiny_inputs() -> xtask::Inputs {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/input");
    xtask::Inputs::read(&dir, "commands.tsv", "extensions.tsv").unwrap()
}

/// The tiny registry with `from` replaced by `to` in its vk.xml (which must contain `from`).
fn edited(from: &str, to: &str) -> xtask::Inputs {
    let mut inputs = tiny_inputs();
    assert!(inputs.vk_xml.contains(from), "tiny vk.xml lacks {from:?}");
    inputs.vk_xml = inputs.vk_xml.replacen(from, to, 1);
    inputs
}

/// name, value, block size, block extent, depth bits, stencil bits.
type Row<'a> = (&'a str, i64, u32, [u32; 3], u32, u32);

#[test]
fn formats_of_the_level_are_kept_sorted_with_resolved_planes() {
    let model = xtask::build_model_with(&tiny_inputs(), &EMPTY).unwrap();
    let rows: Vec<Row> = model
        .formats
        .iter()
        .map(|f| {
            let n = f.name.as_str();
            (
                n,
                f.value,
                f.block_size,
                f.block_extent,
                f.depth_bits,
                f.stencil_bits,
            )
        })
        .collect();
    // VK_FORMAT_R8_WARPED_TEST belongs to an extension outside the protocol: left out.
    assert_eq!(
        rows,
        vec![
            ("VK_FORMAT_R8_UNORM", 9, 1, [1, 1, 1], 0, 0),
            ("VK_FORMAT_R8G8_UNORM", 16, 2, [1, 1, 1], 0, 0),
            ("VK_FORMAT_D24_UNORM_S8_UINT", 129, 4, [1, 1, 1], 24, 8),
            ("VK_FORMAT_BC1_RGB_UNORM_BLOCK", 131, 8, [4, 4, 1], 0, 0),
            (
                "VK_FORMAT_G8_B8R8_2PLANE_420_UNORM_TEST",
                1_000_006_000,
                3,
                [1, 1, 1],
                0,
                0
            ),
        ]
    );
    let planes: Vec<(i64, u32, u32, u32)> = model.formats[4]
        .planes
        .iter()
        .map(|p| {
            (
                p.compatible_value,
                p.block_size,
                p.width_divisor,
                p.height_divisor,
            )
        })
        .collect();
    assert_eq!(planes, vec![(9, 1, 1, 1), (16, 2, 2, 2)]);
    assert!(model.formats[3].compressed && !model.formats[0].compressed);
}

#[test]
fn broken_formats_are_errors() {
    let cases = [
        (
            edited(
                r#"compatible="VK_FORMAT_R8G8_UNORM""#,
                r#"compatible="VK_FORMAT_R8_WARPED_TEST""#,
            ),
            "plane 1 is compatible with VK_FORMAT_R8_WARPED_TEST, which is not a format of this level",
        ),
        (
            edited(
                r#"compatible="VK_FORMAT_R8_UNORM""#,
                r#"compatible="VK_FORMAT_BC1_RGB_UNORM_BLOCK""#,
            ),
            "not a single-plane 1x1x1 format",
        ),
        (
            edited(r#"<plane index="0""#, r#"<plane index="1""#),
            "plane 1 is listed at position 0",
        ),
        (
            edited(r#"widthDivisor="2""#, r#"widthDivisor="0""#),
            "plane 1 has a zero divisor",
        ),
        (
            edited(r#"name="D" bits="24""#, r#"name="D" bits="many""#),
            "component D has bits=\"many\", not a number",
        ),
        (
            edited(r#"blockSize="8""#, r#"blockSize="eight""#),
            r#"blockSize="eight" is not a number"#,
        ),
        (
            edited(r#"blockExtent="4,4,1""#, r#"blockExtent="4,4""#),
            "is not three numbers",
        ),
        (
            edited(
                r#"<format name="VK_FORMAT_D24_UNORM_S8_UINT""#,
                r#"<format name="VK_FORMAT_D24_UNORM_S8_UINT_UNLISTED""#,
            ),
            "VK_FORMAT_D24_UNORM_S8_UINT has no <format> entry",
        ),
        (
            edited(r#"value="131""#, r#"value="129""#),
            "have the same value 129",
        ),
    ];
    for (inputs, want) in cases {
        let err = match xtask::build_model_with(&inputs, &EMPTY) {
            Ok(_) => panic!("expected an error containing {want:?}"),
            Err(e) => e,
        };
        assert!(err.contains(want), "{err:?} does not contain {want:?}");
    }
}
