#!/usr/bin/env bash
# Builds (once) the C reference Venus renderer: a Debian trixie root holding virglrenderer
# 1.1.0's virgl_test_server, Mesa 25.0.7 (lavapipe + venus client), vulkan-tools and xvfb.
# Wraps ../shared/reference/setup-trixie-reference.sh (relative to the repo root) idempotently:
# when the root is ready it exits at once; a failed build never leaves a half-made root behind.
# Usage:  scripts/setup-reference.sh [DIR]      DIR defaults to $VENUS_REF_DIR or /opt/venus-ref
#         (needs root, network to deb.debian.org, ~2-5 minutes the first time)
# Prints the root's path on its last line. Then, e.g. (server on lavapipe, client on the host):
#   ../shared/reference/run-in-reference.sh /opt/venus-ref env \
#       VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.json \
#       virgl_test_server --venus --no-virgl --multi-clients --socket-path /tmp/ref.sock &
#   VN_DEBUG=vtest VTEST_SOCKET_NAME=/tmp/ref.sock \
#       VK_DRIVER_FILES=/usr/share/vulkan/icd.d/virtio_icd.json vulkaninfo --summary
# Beware: run-in-reference.sh bind-mounts the host's /proc, /dev and /tmp into DIR and leaves
# them mounted; unmount DIR/{proc,dev,tmp} before ever deleting DIR.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shared=$(cd "$repo/../shared" 2>/dev/null && pwd) || { echo "setup-reference.sh: $repo/../shared not found" >&2; exit 1; }
builder=$shared/reference/setup-trixie-reference.sh
dir=${1:-${VENUS_REF_DIR:-/opt/venus-ref}}
dir=${dir%/}

ready() {
  [ -x "$1/usr/bin/virgl_test_server" ] && [ -e "$1/usr/bin/vulkaninfo" ] &&
    [ -e "$1/usr/share/vulkan/icd.d/lvp_icd.json" ] && [ -e "$1/usr/share/vulkan/icd.d/virtio_icd.json" ]
}

if ready "$dir"; then
  echo "$dir"; exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "setup-reference.sh: must run as root (debootstrap, chroot)" >&2; exit 1; }
[ -x "$builder" ] || [ -f "$builder" ] || { echo "setup-reference.sh: $builder missing" >&2; exit 1; }

has_mounts() { awk -v d="$1" '$2 == d || index($2, d "/") == 1 { found = 1 } END { exit !found }' /proc/mounts; }

if [ -e "$dir" ]; then
  # Something is there but not a complete root (an interrupted earlier build).
  if has_mounts "$dir"; then
    echo "setup-reference.sh: $dir is incomplete and has mounts under it; unmount them and remove it by hand" >&2
    exit 1
  fi
  echo "setup-reference.sh: removing incomplete $dir" >&2
  rm -rf --one-file-system "$dir"
fi

# debootstrap from bookworm-backports when available (newer, knows trixie well); the shared
# script would otherwise install bookworm's own.
if ! command -v debootstrap >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  if [[ $(apt-cache policy debootstrap) == *bookworm-backports* ]]; then
    apt-get install -y -q --no-install-recommends -t bookworm-backports debootstrap
  else
    apt-get install -y -q --no-install-recommends debootstrap
  fi
fi

tmp=$dir.partial
if [ -e "$tmp" ]; then
  has_mounts "$tmp" && { echo "setup-reference.sh: $tmp has mounts under it" >&2; exit 1; }
  rm -rf --one-file-system "$tmp"
fi
mkdir -p "$(dirname "$dir")"
start=$SECONDS
bash "$builder" "$tmp"
ready "$tmp" || { echo "setup-reference.sh: $tmp built but lacks virgl_test_server or the ICD files" >&2; exit 1; }
mv "$tmp" "$dir"
echo "setup-reference.sh: built in $((SECONDS - start)) s" >&2
echo "$dir"
