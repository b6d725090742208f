#!/usr/bin/env bash
# The main job, end to end: stock Mesa's Venus client (libvulkan_virtio.so) runs real Vulkan
# work through venus-server, which renders on the host's lavapipe: `vulkaninfo --summary`,
# a compute program (SAXPY + prefix sum on 16 Mi elements, checked exactly), an offscreen
# render compared byte for byte with the same program on native lavapipe (saved as PNG), and
# stock `vkcube` under Xvfb (a screenshot saved while it runs).
#   1. installs the system packages (scripts/setup-system.sh; needs root or sudo the first time)
#   2. builds venus-server and the test programs (release)
#   3. starts it on a private socket (a fresh mktemp directory) with VK_DRIVER_FILES=lavapipe
#   4. runs `VN_DEBUG=vtest VTEST_SOCKET_NAME=<socket> VK_DRIVER_FILES=<virtio ICD> vulkaninfo
#      --summary`, venus-compute, venus-render (and natively), vkcube (MESA_VK_WSI_DEBUG=sw,
#      Xvfb); the image and the screenshot go to target/demo/ and their paths are printed
#   5. stops the server (by PID, also on error or Ctrl-C) and removes the socket directory
# Exits non-zero when any step fails, a result is wrong, or no "Venus" device is listed.
# Usage: scripts/demo.sh
#   Quiet by default (the server logs warnings only); VENUS_LOG=info (or debug, trace...) is
#   passed to the server, whose logs go to stderr, and then vulkaninfo's stderr is shown too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

case "${1:-}" in
  -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
  "") ;;
  *) echo "demo.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
esac

say() { printf '==> %s\n' "$*"; }
fail() { printf 'venus-rs demo: FAILED: %s\n' "$*" >&2; exit 1; }

say "system packages (scripts/setup-system.sh)"
scripts/setup-system.sh

# Cargo: rustup installs it under ~/.cargo/bin, which a sudo or login-less shell may lack.
if ! command -v cargo >/dev/null && [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]; then
  PATH=${CARGO_HOME:-$HOME/.cargo}/bin:$PATH
fi
command -v cargo >/dev/null ||
  fail "cargo not found: install Rust with rustup (https://rustup.rs) and run this again"
# Rust links with the system C compiler; a minimal Debian has none.
if ! command -v cc >/dev/null; then
  say "installing a C toolchain for linking (gcc, libc6-dev)"
  sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gcc libc6-dev
fi

say "building venus-server and the test programs (cargo build --release -p venus-server -p venus-testapps)"
cargo build --release --quiet -p venus-server -p venus-testapps
server_bin=$PWD/target/release/venus-server
[ -x "$server_bin" ] || fail "$server_bin was not built"

# ICD manifests: Debian names them virtio_icd.json / lvp_icd.json, other builds add the arch.
find_icd() {
  local f
  for f in "/usr/share/vulkan/icd.d/$1_icd.json" "/usr/share/vulkan/icd.d/$1_icd.$(uname -m).json"; do
    [ -e "$f" ] && { echo "$f"; return 0; }
  done
  fail "no $1 ICD manifest under /usr/share/vulkan/icd.d (run scripts/setup-system.sh)"
}
lvp_icd=$(find_icd lvp)
virtio_icd=$(find_icd virtio)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/venus-demo.XXXXXX")
sock=$tmp/venus.sock
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$server_pid" 2>/dev/null; then
      echo "demo.sh: venus-server (PID $server_pid) ignored SIGTERM for 5 s; killing it" >&2
      kill -KILL "$server_pid" 2>/dev/null || true
    fi
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf -- "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "starting venus-server on $sock (host driver: lavapipe, $lvp_icd)"
VK_DRIVER_FILES=$lvp_icd "$server_bin" --socket-path "$sock" &
server_pid=$!
for _ in $(seq 100); do
  [ -S "$sock" ] && break
  kill -0 "$server_pid" 2>/dev/null || { wait "$server_pid" || true; fail "venus-server exited at start-up"; }
  sleep 0.1
done
[ -S "$sock" ] || fail "venus-server did not create $sock within 10 s"

say "vulkaninfo --summary through venus-server (Mesa Venus client: $virtio_icd)"
echo
rc=0
VN_DEBUG=vtest VTEST_SOCKET_NAME=$sock VK_DRIVER_FILES=$virtio_icd \
  vulkaninfo --summary >"$tmp/stdout" 2>"$tmp/stderr" || rc=$?
cat "$tmp/stdout"
if [ "$rc" -ne 0 ] || [ -n "${VENUS_LOG:-}" ]; then
  echo "--- vulkaninfo stderr ---"
  cat "$tmp/stderr"
fi
echo
kill -0 "$server_pid" 2>/dev/null || fail "venus-server died during the run"
[ "$rc" -eq 0 ] || fail "vulkaninfo exited with status $rc (its stderr is above)"

device=$(grep -m1 -E '^[[:space:]]*deviceName[[:space:]]*=.*Venus' "$tmp/stdout" | sed -E 's/^[[:space:]]*//; s/[[:space:]]*=[[:space:]]*/ = /') ||
  fail "vulkaninfo succeeded but listed no Venus device"

bin=$PWD/target/release
out=$PWD/target/demo
mkdir -p "$out"
venus() { VN_DEBUG=vtest VTEST_SOCKET_NAME=$sock VK_DRIVER_FILES=$virtio_icd "$@"; }
native() { VK_DRIVER_FILES=$lvp_icd "$@"; }

say "compute through venus-server: SAXPY and a prefix sum on 16 Mi elements, checked exactly"
venus "$bin/venus-compute" all --n 16777216 | tee "$tmp/compute" || fail "venus-compute failed"
grep -q '^saxpy OK' "$tmp/compute" && grep -q '^scan OK' "$tmp/compute" ||
  fail "venus-compute did not report both results correct"

say "offscreen render (textured, depth-tested, 4x MSAA) through venus-server and natively"
venus "$bin/venus-render" "$out/render-venus.rgba" --png "$out/render-venus.png" >"$tmp/rv" ||
  fail "venus-render through venus-server failed"
native "$bin/venus-render" "$out/render-native.rgba" >"$tmp/rn" || fail "venus-render natively failed"
cmp -s "$out/render-venus.rgba" "$out/render-native.rgba" ||
  fail "the image through venus-server differs from native lavapipe's"
echo "identical to native lavapipe ($(grep -o 'checksum=[0-9a-f]*' "$tmp/rv"))"

say "stock vkcube under Xvfb through venus-server (MESA_VK_WSI_DEBUG=sw)"
rm -f "$out/vkcube.xwd"
venus env MESA_VK_WSI_DEBUG=sw xvfb-run -a -s '-screen 0 500x500x24' sh -c \
  'vkcube --c 600 & pid=$!; sleep 3; xwd -root -silent > "$0"; wait $pid' "$out/vkcube.xwd" \
  >"$tmp/cube" 2>&1 || { cat "$tmp/cube"; fail "vkcube through venus-server failed"; }
[ -s "$out/vkcube.xwd" ] || fail "no screenshot of vkcube was taken"

echo
echo "venus-rs demo: OK: $device"
echo "venus-rs demo: compute results exact; render identical to native: $out/render-venus.png"
echo "venus-rs demo: vkcube ran through venus-server; screenshot (XWD, view with xwud): $out/vkcube.xwd"
