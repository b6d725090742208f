//! Running programs inside the Debian sid client root (`scripts/setup-sid-client.sh`: Mesa's
//! newest Venus client, vulkan-tools) against a [`Server`] on the host: the root is entered
//! with that script's `--run` mode (bind mounts of `/proc`, `/dev`, `/tmp`, then `chroot`), so
//! the server's socket in `/tmp` is reachable at the same path inside. Programs built here
//! (Debian 12, glibc 2.36) run inside too: sid's glibc is newer and backward compatible.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::server::{wait_output, Server, VN_PERF};

/// The script that builds the root and runs commands in it.
pub fn setup_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/setup-sid-client.sh")
}

/// The Venus client ICD manifest inside the root.
pub const SID_VENUS_ICD: &str = "/usr/share/vulkan/icd.d/virtio_icd.json";

/// Where a host program is visible inside the root: programs under `/tmp` as they are, others
/// linked (or copied) into the server's scratch directory, which is under `/tmp`.
fn visible_in_root(server: &Server, program: &Path) -> PathBuf {
    if program.starts_with("/tmp") {
        return program.to_owned();
    }
    let name = program.file_name().expect("a program path names a file");
    let dest = server.dir().join(name);
    if !dest.exists() && std::fs::hard_link(program, &dest).is_err() {
        std::fs::copy(program, &dest).unwrap_or_else(|e| {
            panic!("copying {} into {}: {e}", program.display(), dest.display())
        });
    }
    dest
}

/// A command that runs `program` inside the sid root at `root` as a Mesa Venus client of
/// `server` (`VN_DEBUG=vtest`, the server's socket, the root's Venus ICD, [`VN_PERF`]), in the
/// server's scratch directory. `program` is a name looked up in the root's `PATH` (e.g.
/// `vulkaninfo`), or a path on this machine (e.g. `env!("CARGO_BIN_EXE_venus-lifetimes")`),
/// which is made visible inside first. Add arguments, environment and stdio as usual.
/// Panics if the server's socket is not under `/tmp` (`TMPDIR` set elsewhere).
pub fn sid_client(server: &Server, root: &Path, program: impl AsRef<OsStr>) -> Command {
    let program = program.as_ref();
    let program = if Path::new(program).components().count() > 1 {
        visible_in_root(server, Path::new(program)).into_os_string()
    } else {
        program.to_owned()
    };
    sid_client_of(server.socket(), server.dir(), root, program)
}

/// [`sid_client`] for any Venus server listening on `socket` (e.g. one running inside the
/// root): `program` (a name in the root's `PATH` or a path visible inside it) runs in `dir`.
/// Panics unless `socket` and `dir` are under `/tmp` (the only directory the root shares).
pub fn sid_client_of(
    socket: &Path,
    dir: &Path,
    root: &Path,
    program: impl AsRef<OsStr>,
) -> Command {
    assert!(
        socket.starts_with("/tmp") && dir.starts_with("/tmp"),
        "the sid root shares only /tmp; the server's socket is {} (unset TMPDIR)",
        socket.display()
    );
    let mut c = Command::new("bash");
    c.arg(setup_script())
        .arg("--run")
        .arg(root)
        .arg("/usr/bin/env")
        .arg("-C")
        .arg(dir)
        .arg(program)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("VK_ICD_FILENAMES")
        .env_remove("VK_ADD_DRIVER_FILES")
        .env_remove("VK_INSTANCE_LAYERS")
        .env_remove("VK_LOADER_LAYERS_ENABLE")
        .env_remove("LD_LIBRARY_PATH")
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("VK_DRIVER_FILES", SID_VENUS_ICD)
        .env("VN_DEBUG", "vtest")
        .env("VN_PERF", VN_PERF)
        .env("VTEST_SOCKET_NAME", socket)
        .stdin(Stdio::null());
    c
}

/// Runs `vulkaninfo <args>` from the sid root through `server` (killed after `timeout`).
pub fn sid_vulkaninfo(server: &Server, root: &Path, args: &[&str], timeout: Duration) -> Output {
    let child = sid_client(server, root, "vulkaninfo")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning vulkaninfo in the sid root");
    wait_output(child, timeout, "sid vulkaninfo")
}
