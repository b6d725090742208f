//! Vulkan names to Rust names.

/// `VkBufferCreateInfo` -> `BufferCreateInfo`.
pub fn type_name(vk: &str) -> String {
    // `Result` would shadow `std::result::Result` in every glob import.
    if vk == "VkResult" {
        return vk.to_string();
    }
    vk.strip_prefix("Vk").unwrap_or(vk).to_string()
}

/// `vkCreateBuffer` -> `CreateBuffer`.
pub fn command_name(vk: &str) -> String {
    vk.strip_prefix("vk").unwrap_or(vk).to_string()
}

/// `queueFamilyIndexCount` -> `queue_family_index_count`, `deviceUUID` -> `device_uuid`.
pub fn field_name(vk: &str) -> String {
    let chars: Vec<char> = vk.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = if i > 0 { Some(chars[i - 1]) } else { None };
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                None => false,
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    match out.as_str() {
        "type" => "ty".into(),
        "match" | "ref" | "mod" | "use" | "move" | "loop" | "fn" | "impl" | "box" => {
            format!("{out}_")
        }
        _ => out,
    }
}

/// `VK_COMMAND_TYPE_...` style constant name for a command: `vkCreateBuffer` -> `CREATE_BUFFER`.
pub fn command_const(vk: &str) -> String {
    field_name(&command_name(vk)).to_ascii_uppercase()
}

/// The prefix enumerants of `VkSampleCountFlagBits` share: `VK_SAMPLE_COUNT_`.
fn enum_prefix(type_name: &str) -> String {
    let mut base = type_name
        .strip_prefix("Vk")
        .unwrap_or(type_name)
        .to_string();
    for vendor in [
        "KHR", "EXT", "MESA", "NV", "AMD", "INTEL", "QCOM", "ARM", "VALVE", "HUAWEI", "GOOGLE",
        "FB", "NVX", "MSFT",
    ] {
        if let Some(b) = base.strip_suffix(vendor) {
            base = b.to_string();
            break;
        }
    }
    for suffix in ["FlagBits2", "FlagBits", "Flags2", "Flags"] {
        if let Some(b) = base.strip_suffix(suffix) {
            base = b.to_string();
            break;
        }
    }
    let snake = field_name(&base).to_ascii_uppercase();
    format!("VK_{snake}_")
}

/// `VK_FORMAT_R8G8B8A8_UNORM` in `VkFormat` -> `R8G8B8A8_UNORM`; `VK_IMAGE_TYPE_2D` -> `TYPE_2D`.
pub fn enumerant_name(type_name: &str, value: &str) -> String {
    let prefix = enum_prefix(type_name);
    let stripped = match value.strip_prefix(&prefix) {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => value.strip_prefix("VK_").unwrap_or(value).to_string(),
    };
    if stripped.starts_with(|c: char| c.is_ascii_digit()) {
        let last = prefix
            .trim_end_matches('_')
            .rsplit('_')
            .next()
            .unwrap_or("N");
        format!("{last}_{stripped}")
    } else {
        stripped
    }
}
