//! venus-server against the C reference, virglrenderer 1.3.0 (`virgl_test_server --venus`,
//! protocol level git-9fa07f3c), with the same client and the same host driver: both servers
//! run inside the Debian sid root on its lavapipe (Mesa 26.2.6), and the root's full
//! `vulkaninfo` (Mesa 26.2.6 Venus client) runs through each. Both must exit 0 and report
//! Vulkan 1.4, and the device extension lists must differ by exactly [`only_reference`]
//! (`NOT_ADVERTISED` minus [`REFERENCE_LACKS`]) and [`ONLY_OURS`]: this file is the one place
//! that lists and explains the difference (see `docs/newer-clients.md`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use venus_protocol::types::NOT_ADVERTISED;
use venus_testapps::server::{server_binary, wait_output, TempDir};
use venus_testapps::sid::{setup_script, sid_client_of};
use venus_testapps::tools::{require, Tool};

const TIMEOUT: Duration = Duration::from_secs(120);
const LAVAPIPE: &str = "VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.json";

/// Extensions of our `NOT_ADVERTISED` that the reference does not list either, with why.
const REFERENCE_LACKS: &[(&str, &str)] = &[(
    "VK_EXT_descriptor_heap",
    "new at git-70991d4c; the reference's level git-9fa07f3c does not have it",
)];

/// Extensions only venus-server lists, with why.
const ONLY_OURS: &[(&str, &str)] = &[(
    "VK_EXT_image_drm_format_modifier",
    "the server's WSI profile emulates LINEAR DRM modifiers (docs/vulkaninfo-differences.md D5)",
)];

/// Extensions only the reference lists: our `NOT_ADVERTISED` (commands or MESA commands we
/// do not serve; reasons in `xtask/src/special.rs`) minus [`REFERENCE_LACKS`].
fn only_reference() -> Vec<&'static str> {
    let mut v: Vec<&str> = NOT_ADVERTISED
        .iter()
        .copied()
        .filter(|n| !REFERENCE_LACKS.iter().any(|(l, _)| l == n))
        .collect();
    v.sort_unstable();
    v
}

/// A server process inside the sid root (killed by PID on drop).
struct RootServer {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl RootServer {
    /// Runs `env VK_DRIVER_FILES=<lavapipe> ARGS... --socket-path DIR/NAME.sock` in `root`.
    fn start(root: &Path, dir: &Path, name: &str, args: &[&str]) -> Self {
        let socket = dir.join(format!("{name}.sock"));
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new("bash")
            .arg(setup_script())
            .args(["--run".as_ref(), root.as_os_str()])
            .args(["/usr/bin/env", LAVAPIPE, "VENUS_LOG=info", "NO_COLOR=1"])
            .args(args)
            .arg("--socket-path")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        let mut me = Self { child, socket, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !me.socket.exists() {
            if let Ok(Some(status)) = me.child.try_wait() {
                panic!("{name} exited at start ({status}):\n{}", me.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not listen:\n{}",
                me.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        me
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for RootServer {
    fn drop(&mut self) {
        // `--run` execs chroot, which execs env, which execs the server: this is its PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The full `vulkaninfo` of the root's client through `server`: (apiVersion, extensions).
fn vulkaninfo(root: &Path, dir: &Path, server: &RootServer, what: &str) -> (String, Vec<String>) {
    let child = sid_client_of(&server.socket, dir, root, "vulkaninfo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning vulkaninfo in the sid root");
    let out = wait_output(child, TIMEOUT, what);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "vulkaninfo through {what} failed ({}):\n{}\nserver log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    parse(&stdout).unwrap_or_else(|| panic!("no apiVersion/extension list from {what}:\n{stdout}"))
}

/// The first `apiVersion` (`1.4.343`) and the sorted `Device Extensions` of a full output.
fn parse(text: &str) -> Option<(String, Vec<String>)> {
    let api = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("apiVersion"))?
        .trim_start_matches([' ', '='])
        .split_whitespace()
        .next()?
        .to_string();
    let mut lines = text
        .lines()
        .skip_while(|l| !l.starts_with("Device Extensions:"));
    let count: usize = lines.next()?.rsplit(' ').next()?.parse().ok()?;
    let mut exts: Vec<String> = lines
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("VK_"))
        .map(str::to_string)
        .collect();
    exts.sort();
    (exts.len() == count).then_some((api, exts))
}

#[test]
fn c_reference_and_venus_server_differ_only_as_documented() {
    let test = "c_reference_and_venus_server_differ_only_as_documented";
    let Some(tools) = require(test, &[Tool::SidRoot]) else {
        return;
    };
    let root = tools.sid_root();
    let dir = TempDir::new("sid-reference");
    let ours_bin = dir.0.join("venus-server");
    std::fs::copy(server_binary(), &ours_bin).expect("copying venus-server under /tmp");
    let reference = RootServer::start(
        root,
        &dir.0,
        "reference",
        &[
            "virgl_test_server",
            "--venus",
            "--no-virgl",
            "--multi-clients",
        ],
    );
    let ours = RootServer::start(root, &dir.0, "ours", &[ours_bin.to_str().unwrap()]);
    let (ref_api, ref_exts) = vulkaninfo(root, &dir.0, &reference, "virgl_test_server");
    let (our_api, our_exts) = vulkaninfo(root, &dir.0, &ours, "venus-server");
    eprintln!(
        "{test}: reference apiVersion {ref_api}, {} extensions; venus-server apiVersion \
         {our_api}, {} extensions",
        ref_exts.len(),
        our_exts.len()
    );
    for (who, api) in [("reference", &ref_api), ("venus-server", &our_api)] {
        assert!(api.starts_with("1.4."), "{test}: {who} apiVersion {api}");
    }
    let only_ref: Vec<&str> = ref_exts
        .iter()
        .filter(|e| !our_exts.contains(e))
        .map(String::as_str)
        .collect();
    let only_ours: Vec<&str> = our_exts
        .iter()
        .filter(|e| !ref_exts.contains(e))
        .map(String::as_str)
        .collect();
    assert_eq!(
        only_ref,
        only_reference(),
        "{test}: extensions only the reference lists"
    );
    let want: Vec<&str> = ONLY_OURS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        only_ours, want,
        "{test}: extensions only venus-server lists"
    );
}

#[test]
fn vulkaninfo_extension_list_is_parsed() {
    let text = "\tapiVersion        = 1.4.343 (4211031)\nLayers:\n\
                Device Extensions: count = 2\n\tVK_KHR_a : extension revision 1\n\
                \tVK_EXT_b : extension revision 3\n\nNext:\n";
    let (api, exts) = parse(text).expect("parsed");
    assert_eq!(api, "1.4.343");
    assert_eq!(exts, ["VK_EXT_b", "VK_KHR_a"]);
    // A count that does not match the lines is not a list.
    assert!(parse(&text.replace("count = 2", "count = 3")).is_none());
}
