#!/usr/bin/env bash
# Wall time of `vulkaninfo --summary` (stdout/stderr to /dev/null), natively and through Venus
# servers, measured in one session with the runs interleaved (round robin, rotating start):
#   native              VK_DRIVER_FILES=<lvp ICD> vulkaninfo --summary      (host lavapipe)
#   venus               through venus-server (release build, started once) on host lavapipe
#   venus-cold          through a fresh `venus-server --no-loop-or-fork` per run (its start-up
#                       is not timed, but its first vkCreateInstance loads lavapipe + LLVM)
#   ref                 through the C reference, virglrenderer 1.1.0's virgl_test_server
#                       --venus --no-virgl --no-fork --multi-clients (one process, like
#                       venus-server; it still spawns virgl_render_server per client, see below)
#   ref-fork            the reference's default mode (fork per client), as README shows it
#   venus-refroot       venus-server (started once) inside the reference's trixie root, so on
#                       the very same lavapipe/LLVM build as the reference
#   venus-refroot-cold  a fresh venus-server --no-loop-or-fork per run inside that root
# The reference tears its renderer down when its last client leaves and starts a new
# virgl_render_server (fork+exec, plus a worker per context) for the next, which loads lavapipe
# again; venus-server keeps lavapipe loaded (it is NODELETE). The -cold columns show that cost.
# The client is always the host's vulkaninfo + Mesa Venus client (libvulkan_virtio.so,
# VN_DEBUG=vtest VTEST_SOCKET_NAME=<socket>); only the server differs. The reference columns
# need root and ../shared/reference: the trixie root is made by scripts/setup-reference.sh
# (once, ~5 minutes); when that is not possible the script says why and skips them.
# Every configuration is checked once first (exit status 0 and the expected deviceName).
# Usage: scripts/bench-vulkaninfo.sh [RUNS]      RUNS per configuration, default 20 (+3 warm-up)
#   BENCH_OUT=DIR   also write DIR/bench-vulkaninfo.{md,json} (table + every sample)
#   BENCH_NO_REF=1  skip the reference columns
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD

case "${1:-}" in -h|--help) sed -n '2,25p' "$0"; exit 0 ;; esac
runs=${1:-20}
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "bench-vulkaninfo.sh: RUNS must be a positive integer, got '$runs'" >&2; exit 2; }
warmup=3

say() { printf '==> %s\n' "$*" >&2; }

say "system packages"
scripts/setup-system.sh >&2
# The timing harness needs python3 (monotonic clock, statistics); Rust links with cc.
need=()
[ -x /usr/bin/python3 ] || need+=(python3)
command -v cc >/dev/null || need+=(gcc libc6-dev)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
fi
if ! command -v cargo >/dev/null && [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]; then
  PATH=${CARGO_HOME:-$HOME/.cargo}/bin:$PATH
fi
command -v cargo >/dev/null || { echo "bench-vulkaninfo.sh: cargo not found (install Rust with rustup)" >&2; exit 1; }

say "building venus-server (release)"
cargo build --release --quiet -p venus-server
server_bin=$repo/target/release/venus-server

find_icd() {
  local f
  for f in "/usr/share/vulkan/icd.d/$1_icd.json" "/usr/share/vulkan/icd.d/$1_icd.$(uname -m).json"; do
    [ -e "$f" ] && { echo "$f"; return 0; }
  done
  echo "bench-vulkaninfo.sh: no $1 ICD manifest (run scripts/setup-system.sh)" >&2; return 1
}
lvp_icd=$(find_icd lvp)
virtio_icd=$(find_icd virtio)

# Under /tmp, not $TMPDIR: run-in-reference.sh shares the host's /tmp with the trixie root.
tmp=$(mktemp -d /tmp/venus-bench.XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && { echo "bench-vulkaninfo.sh: PID $p ignored SIGTERM; killing it" >&2; kill -KILL "$p" 2>/dev/null || true; }
    wait "$p" 2>/dev/null || true
  done
  rm -rf -- "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_socket() {  # wait_socket PID SOCKET LOG
  for _ in $(seq 100); do
    [ -S "$2" ] && { sleep 0.2; return 0; }   # bind() precedes listen(): give it a moment
    kill -0 "$1" 2>/dev/null || { echo "bench-vulkaninfo.sh: server for $2 exited at start-up:" >&2; cat "$3" >&2; return 1; }
    sleep 0.1
  done
  echo "bench-vulkaninfo.sh: no socket $2 after 10 s" >&2; return 1
}

# Servers log at their defaults (venus-server: warn) into files; VENUS_LOG is honoured.
say "starting venus-server (host lavapipe)"
VK_DRIVER_FILES=$lvp_icd "$server_bin" --socket-path "$tmp/venus.sock" 2>"$tmp/venus.log" &
pids+=($!); wait_socket "$!" "$tmp/venus.sock" "$tmp/venus.log"

ref_note=
ref_dir=
runner=$repo/../shared/reference/run-in-reference.sh
if [ -n "${BENCH_NO_REF:-}" ]; then
  ref_note="skipped: BENCH_NO_REF is set"
elif [ "$(id -u)" -ne 0 ]; then
  ref_note="skipped: the reference runs in a chroot (run-in-reference.sh), which needs root"
elif [ ! -f "$runner" ]; then
  ref_note="skipped: $runner not found (../shared/reference is missing)"
elif ! ref_dir=$(scripts/setup-reference.sh 2>"$tmp/setup-reference.log" | tail -n1) || [ ! -d "$ref_dir" ]; then
  ref_note="skipped: scripts/setup-reference.sh failed: $(tail -n3 "$tmp/setup-reference.log" | tr '\n' ' ')"
fi
if [ -n "$ref_note" ]; then
  ref_dir=
  echo "bench-vulkaninfo.sh: reference columns $ref_note" >&2
else
  say "starting the reference virgl_test_server (--no-fork --multi-clients, and fork mode) in $ref_dir"
  ref_env=(env VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.json)
  # run-in-reference.sh execs chroot, which execs env, which execs the server: $! is the server.
  bash "$runner" "$ref_dir" "${ref_env[@]}" virgl_test_server --venus --no-virgl --no-fork \
    --multi-clients --socket-path "$tmp/ref.sock" >"$tmp/ref.log" 2>&1 &
  pids+=($!); wait_socket "$!" "$tmp/ref.sock" "$tmp/ref.log"
  bash "$runner" "$ref_dir" "${ref_env[@]}" virgl_test_server --venus --no-virgl \
    --multi-clients --socket-path "$tmp/ref-fork.sock" >"$tmp/ref-fork.log" 2>&1 &
  pids+=($!); wait_socket "$!" "$tmp/ref-fork.sock" "$tmp/ref-fork.log"
  say "starting venus-server inside the reference root (its lavapipe)"
  cp "$server_bin" "$tmp/venus-server"   # /tmp is visible inside the root
  bash "$runner" "$ref_dir" "${ref_env[@]}" "$tmp/venus-server" \
    --socket-path "$tmp/venus-refroot.sock" 2>"$tmp/venus-refroot.log" &
  pids+=($!); wait_socket "$!" "$tmp/venus-refroot.sock" "$tmp/venus-refroot.log"
fi

# Versions for the record.
info=$tmp/info.txt
# shellcheck disable=SC1091,SC2016  # os-release is sourced at run time; ${Version} is dpkg's
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/^MemTotal:/ {print int($2 / 1048576)}' /proc/meminfo) GiB, kernel $(uname -r)"
  echo "host: $(. /etc/os-release && echo "$PRETTY_NAME"), mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers), vulkan-tools $(dpkg-query -W -f='${Version}' vulkan-tools)"
  rev='?'
  if r=$(git rev-parse --short HEAD 2>/dev/null); then
    rev=$r
    git diff --quiet HEAD -- crates Cargo.lock 2>/dev/null || rev="$rev + uncommitted changes in crates/"
  fi
  echo "venus-server: $("$server_bin" --version 2>/dev/null || echo '?'), git $rev"
  if [ -z "$ref_note" ]; then
    echo "reference root: $ref_dir: virgl-server $(chroot "$ref_dir" dpkg-query -W -f='${Version}' virgl-server), mesa-vulkan-drivers $(chroot "$ref_dir" dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"
  else
    echo "reference: $ref_note"
  fi
} >"$info"

say "timing: $warmup warm-up + $runs runs per configuration, interleaved"
unset DISPLAY WAYLAND_DISPLAY   # the same work for every column: no surface queries
export BENCH_RUNS=$runs BENCH_WARMUP=$warmup BENCH_INFO=$info BENCH_TMP=$tmp BENCH_SERVER=$server_bin \
  BENCH_LVP_ICD=$lvp_icd BENCH_VIRTIO_ICD=$virtio_icd BENCH_REF_DIR=$ref_dir BENCH_RUNNER=$runner
/usr/bin/python3 - <<'PY'
import json, os, re, statistics, subprocess, sys, time

E = os.environ
runs, warmup, tmp = int(E["BENCH_RUNS"]), int(E["BENCH_WARMUP"]), E["BENCH_TMP"]
ref_dir, out_dir = E["BENCH_REF_DIR"], E.get("BENCH_OUT", "")
lvp, virtio = E["BENCH_LVP_ICD"], E["BENCH_VIRTIO_ICD"]
argv = ["vulkaninfo", "--summary"]
ROOT_LVP = "VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.json"

def client(sock):
    return {"VN_DEBUG": "vtest", "VTEST_SOCKET_NAME": sock, "VK_DRIVER_FILES": virtio}

# name, client environment, expected in deviceName, description, per-run server (cold) or None
configs = [
    ("native", {"VK_DRIVER_FILES": lvp}, "llvmpipe",
     "host lavapipe, no server", None),
    ("venus", client(f"{tmp}/venus.sock"), "Venus",
     "venus-server (host lavapipe), started once", None),
    ("venus-cold", client(f"{tmp}/cold.sock"), "Venus",
     "a fresh venus-server --no-loop-or-fork per run (host lavapipe; server start not timed)",
     ([E["BENCH_SERVER"], "--no-loop-or-fork", "--socket-path", f"{tmp}/cold.sock"],
      {"VK_DRIVER_FILES": lvp}, f"{tmp}/cold.sock")),
]
if ref_dir:
    in_root = ["bash", E["BENCH_RUNNER"], ref_dir, "env", ROOT_LVP]
    configs += [
        ("ref", client(f"{tmp}/ref.sock"), "Venus",
         "virgl_test_server --no-fork --multi-clients (reference root's lavapipe)", None),
        ("ref-fork", client(f"{tmp}/ref-fork.sock"), "Venus",
         "virgl_test_server --multi-clients: forks per client (reference root's lavapipe)", None),
        ("venus-refroot", client(f"{tmp}/venus-refroot.sock"), "Venus",
         "venus-server inside the reference root (its lavapipe), started once", None),
        ("venus-refroot-cold", client(f"{tmp}/cold-root.sock"), "Venus",
         "a fresh venus-server --no-loop-or-fork per run inside the reference root",
         (in_root + [f"{tmp}/venus-server", "--no-loop-or-fork", "--socket-path",
                     f"{tmp}/cold-root.sock"], {}, f"{tmp}/cold-root.sock")),
    ]
configs = [{"name": n, "env": dict(E, **env), "env_s": " ".join(f"{k}={v}" for k, v in env.items()),
            "expect": x, "what": w, "cold": c, "samples": []} for n, env, x, w, c in configs]

def start_cold(c):
    """Starts a one-client server and waits (untimed) until its socket exists."""
    cmd, env, sock = c["cold"]
    log = open(f"{tmp}/{c['name']}.log", "ab")
    srv = subprocess.Popen(cmd, env=dict(E, **env), stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    deadline = time.monotonic() + 10
    while not os.path.exists(sock):
        if srv.poll() is not None or time.monotonic() > deadline:
            srv.kill()
            sys.exit(f"bench: {c['name']}: the server did not start (see {tmp}/{c['name']}.log)")
        time.sleep(0.005)
    time.sleep(0.05)   # bind() precedes listen(); a probe connection would use up its one client
    return srv

def stop_cold(srv, c):
    try:
        srv.wait(timeout=10)
    except subprocess.TimeoutExpired:
        srv.kill(); srv.wait()
        sys.exit(f"bench: {c['name']}: the one-client server did not exit after its client")

def one(c, capture=False):
    srv = start_cold(c) if c["cold"] else None
    p = None
    try:
        t0 = time.perf_counter_ns()
        p = subprocess.run(argv, env=c["env"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                           stderr=subprocess.PIPE if capture else subprocess.DEVNULL, text=capture)
        dt = (time.perf_counter_ns() - t0) / 1e6
    finally:
        if srv:
            if p is None: srv.kill()
            stop_cold(srv, c)
    return dt, p

# Check each configuration once: it must succeed and show the expected device.
for c in configs:
    _, p = one(c, capture=True)
    dev = re.search(r"deviceName\s*=\s*(.*)", p.stdout)
    if p.returncode != 0 or not dev or c["expect"] not in dev.group(1):
        sys.exit(f"bench: {c['name']}: vulkaninfo failed (rc {p.returncode}) or no '{c['expect']}' "
                 f"device:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    c["device"] = dev.group(1).strip()

n = len(configs)
for r in range(warmup + runs):
    for i in range(n):
        c = configs[(r + i) % n]   # rotate who goes first in each round
        dt, p = one(c)
        if p.returncode != 0:
            sys.exit(f"bench: {c['name']}: vulkaninfo exited with {p.returncode} during the timing")
        if r >= warmup:
            c["samples"].append(dt)

for c in configs:
    s = c["samples"]
    c["mean"], c["stddev"] = statistics.fmean(s), (statistics.stdev(s) if len(s) > 1 else 0.0)
    c["min"], c["median"], c["max"] = min(s), statistics.median(s), max(s)

by = {c["name"]: c for c in configs}
info = open(E["BENCH_INFO"]).read().rstrip("\n")
lines = [info, f"runs: {runs} per configuration (+{warmup} warm-up), interleaved round robin; "
         "wall time of `vulkaninfo --summary`, stdout/stderr to /dev/null", "",
         "| configuration | mean (ms) | stddev | min | median | max | device |",
         "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
for c in configs:
    lines.append(f"| {c['name']} | {c['mean']:.1f} | {c['stddev']:.1f} | {c['min']:.1f} | "
                 f"{c['median']:.1f} | {c['max']:.1f} | {c['device']} |")
lines += ["", "| ratio | of means | of medians |", "| --- | ---: | ---: |"]
ratios = []
for a, b in [("venus", "native"), ("venus", "ref"), ("venus", "ref-fork"),
             ("venus-refroot", "ref"), ("venus-cold", "native"),
             ("venus-refroot-cold", "ref"), ("ref", "native")]:
    if a in by and b in by:
        ra, rm = by[a]["mean"] / by[b]["mean"], by[a]["median"] / by[b]["median"]
        ratios.append({"ratio": f"{a}/{b}", "means": ra, "medians": rm})
        lines.append(f"| {a} / {b} | {ra:.2f} | {rm:.2f} |")
lines += ["", "configurations:"] + [f"- {c['name']}: {c['what']}" for c in configs]
text = "\n".join(lines)
print(text)
if out_dir:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "bench-vulkaninfo.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(out_dir, "bench-vulkaninfo.json"), "w") as f:
        json.dump({"info": info, "runs": runs, "warmup": warmup, "ratios": ratios,
                   "configurations": [{k: c[k] for k in ("name", "what", "env_s", "device", "mean",
                                       "stddev", "min", "median", "max", "samples")}
                                      for c in configs]}, f, indent=1)
    print(f"\n(written to {out_dir}/bench-vulkaninfo.md and .json)", file=sys.stderr)
PY
