//! Reading the Khronos validation layer's report: what a server started with
//! `ServerOptions { validation: true, .. }` wrote on its stdout. One message per block (a
//! line at column 0, then its indented details); the serious ones are errors and warnings.
//!
//! One error is tolerated, by name: [`TOLERATED_VUID`] for the structure type
//! [`TOLERATED_S_TYPE`] (`VkPhysicalDeviceMaintenance5PropertiesKHR`), which the installed
//! layer (1.3.239) does not know although lavapipe lists `VK_KHR_maintenance5`
//! (`docs/vulkaninfo-differences.md`, "Host-side validation").

/// The VUID the layer raises for a structure newer than its headers.
pub const TOLERATED_VUID: &str = "VUID-VkPhysicalDeviceProperties2-pNext-pNext";
/// The one structure type it may name there: `VkPhysicalDeviceMaintenance5PropertiesKHR`.
pub const TOLERATED_S_TYPE: u64 = 1_000_470_001;

/// What the layer reported.
#[derive(Clone, Debug, Default)]
pub struct Findings {
    /// Whether the layer ran (it reports each instance it validates).
    pub ran: bool,
    /// Messages of every kind.
    pub messages: usize,
    /// Serious messages tolerated by name (see the module doc).
    pub tolerated: usize,
    /// Serious messages not tolerated, whole.
    pub problems: Vec<String>,
}

/// The report's messages, one per block.
pub fn messages(report: &str) -> Vec<String> {
    let mut messages: Vec<String> = Vec::new();
    for line in report.lines() {
        if !line.starts_with([' ', '\t']) && !line.is_empty() {
            messages.push(String::new());
        }
        if let Some(m) = messages.last_mut() {
            m.push_str(line);
            m.push('\n');
        }
    }
    messages
}

/// Whether `message` is the tolerated "unknown VkStructureType (1000470001)" error.
pub fn layer_too_old(message: &str) -> bool {
    message.contains(TOLERATED_VUID)
        && message
            .split("unknown VkStructureType (")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .and_then(|n| n.parse::<u64>().ok())
            == Some(TOLERATED_S_TYPE)
}

/// Sorts the report's messages.
pub fn check(report: &str) -> Findings {
    let messages = messages(report);
    let mut findings = Findings {
        ran: messages
            .iter()
            .any(|m| m.contains("createinstance-status-message")),
        messages: messages.len(),
        ..Findings::default()
    };
    for m in messages {
        if !(m.contains("Validation Error:") || m.contains("Validation Warning:")) {
            continue;
        }
        if layer_too_old(&m) {
            findings.tolerated += 1;
        } else {
            findings.problems.push(m);
        }
    }
    findings
}

/// Asserts that the layer ran and reported no problem in `report` (what `test` ran); returns the
/// findings.
pub fn assert_clean(test: &str, report: &str) -> Findings {
    let findings = check(report);
    assert!(findings.ran, "{test}: the layer did not run:\n{report}");
    assert!(
        findings.problems.is_empty(),
        "{test}: {} validation problem(s):\n{}",
        findings.problems.len(),
        summary(&findings.problems)
    );
    findings
}

/// The VUID (or other message id) a message names: the first `[ ... ]` of its text.
pub fn message_id(message: &str) -> &str {
    message
        .split_once("[ ")
        .and_then(|(_, rest)| rest.split_once(" ]"))
        .map_or("(no id)", |(id, _)| id)
}

/// `problems` grouped by message id, in order of first appearance: one line per id with
/// its count, then the first such message whole.
pub fn summary(problems: &[String]) -> String {
    let mut groups: Vec<(&str, usize, &str)> = Vec::new();
    for m in problems {
        let id = message_id(m);
        match groups.iter_mut().find(|(g, _, _)| *g == id) {
            Some((_, n, _)) => *n += 1,
            None => groups.push((id, 1, m)),
        }
    }
    let mut out = String::new();
    for (id, n, first) in groups {
        out.push_str(&format!("{n} x {id}; the first:\n{first}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOO_OLD: &str = "Validation Error: [ VUID-VkPhysicalDeviceProperties2-pNext-pNext ] \
                           | MessageID = 0x1 | vkGetPhysicalDeviceProperties2: chain includes \
                           a structure with unknown VkStructureType (1000470001); ...\n";

    #[test]
    fn only_the_named_structure_is_tolerated() {
        let other = TOO_OLD.replace("1000470001", "1000470000");
        let report = format!(
            "Validation Information: [ UNASSIGNED-khronos-validation-createinstance-status-\
             message ] settings\n{TOO_OLD}{other}  details of it\nValidation Error: [ \
             VUID-vkCmdDraw-None-1 ] bad draw\nValidation Performance Warning: ignored\n"
        );
        let f = check(&report);
        assert!(f.ran);
        assert_eq!(
            (f.messages, f.tolerated, f.problems.len()),
            (5, 1, 2),
            "{f:?}"
        );
        assert!(f.problems[0].contains("(1000470000)") && f.problems[0].contains("details"));
        assert!(f.problems[1].contains("vkCmdDraw"));
        let mut twice = f.problems.clone();
        twice.push(f.problems[1].clone());
        let summary = summary(&twice);
        assert!(summary.starts_with(&format!("1 x {TOLERATED_VUID}; the first:\n")));
        assert!(summary.contains("\n2 x VUID-vkCmdDraw-None-1; the first:\n"));
    }

    #[test]
    fn an_empty_report_means_the_layer_did_not_run() {
        let f = check("");
        assert!(!f.ran && f.problems.is_empty());
    }
}
