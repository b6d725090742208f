#!/usr/bin/env bash
# Builds (once) a Debian sid root holding the newest Mesa Venus client (Mesa 26.2.6 in 2026-11:
# lavapipe + the Venus client ICD virtio_icd.json), vulkan-tools, mesa-utils, Xvfb and the C
# reference renderer (virglrenderer 1.3.0's virgl_test_server), to run newer clients against
# venus-server. Self-contained (needs nothing outside the repository): debootstrap, minbase
# variant, Debian packages only.
# Usage:  scripts/setup-sid-client.sh [DIR]
#         DIR defaults to $VENUS_SID_ROOT or /var/cache/venus-rs/sid-root
#         (needs root and network to deb.debian.org the first time, about 1-3 minutes; when the
#         root is ready it only checks a few files and exits)
# Prints the root's path on its last line. A failed build never leaves a half-made root: it is
# built in DIR.partial and renamed when complete.
# Run a client inside it against a venus-server on the host (socket in /tmp, which is shared):
#   scripts/setup-sid-client.sh --run DIR env VN_DEBUG=vtest VTEST_SOCKET_NAME=/tmp/x.sock \
#       VK_DRIVER_FILES=/usr/share/vulkan/icd.d/virtio_icd.json vulkaninfo --summary
# --run bind-mounts the host's /proc, /dev and /tmp into DIR (once; they stay mounted) and
# chroots. Unmount DIR/{proc,dev,tmp} before ever deleting DIR.
set -euo pipefail

default_dir=${VENUS_SID_ROOT:-/var/cache/venus-rs/sid-root}

# The packages of the root (the debootstrap --include list).
pkgs=virgl-server,mesa-vulkan-drivers,vulkan-tools,libvulkan1,libegl1,libegl-mesa0,libgl1,libopengl0,libgles2,libgl1-mesa-dri,mesa-utils,xvfb,xauth

ready() {
  [ -x "$1/usr/bin/virgl_test_server" ] && [ -x "$1/usr/bin/vulkaninfo" ] &&
    [ -e "$1/usr/share/vulkan/icd.d/lvp_icd.json" ] &&
    [ -e "$1/usr/share/vulkan/icd.d/virtio_icd.json" ] && [ -x "$1/usr/bin/glxinfo" ]
}

has_mounts() { awk -v d="$1" '$2 == d || index($2, d "/") == 1 { found = 1 } END { exit !found }' /proc/mounts; }

run_in_root() {  # run_in_root DIR CMD...
  local dir=${1%/} m
  shift
  ready "$dir" || { echo "setup-sid-client.sh: $dir is not a ready sid root; run scripts/setup-sid-client.sh $dir" >&2; exit 1; }
  for m in proc dev tmp; do
    mountpoint -q "$dir/$m" || mount --bind "/$m" "$dir/$m"
  done
  exec chroot "$dir" "$@"
}

if [ "${1:-}" = --run ]; then
  shift
  [ $# -ge 2 ] || { echo "usage: $0 --run DIR CMD..." >&2; exit 2; }
  run_in_root "$@"
fi
case "${1:-}" in
  -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
esac

dir=${1:-$default_dir}
dir=${dir%/}

if ready "$dir"; then
  echo "$dir"; exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "setup-sid-client.sh: must run as root (debootstrap, chroot)" >&2; exit 1; }

if [ -e "$dir" ]; then
  # Something is there but not a complete root (an interrupted earlier build).
  if has_mounts "$dir"; then
    echo "setup-sid-client.sh: $dir is incomplete and has mounts under it; unmount them and remove it by hand" >&2
    exit 1
  fi
  echo "setup-sid-client.sh: removing incomplete $dir" >&2
  rm -rf --one-file-system "$dir"
fi

# debootstrap: from bookworm-backports when that source is configured (newer), else the
# distribution's own. Any debootstrap knows "sid" (a symlink to its generic Debian script).
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
  has_mounts "$tmp" && { echo "setup-sid-client.sh: $tmp has mounts under it" >&2; exit 1; }
  rm -rf --one-file-system "$tmp"
fi
mkdir -p "$(dirname "$dir")"
start=$SECONDS
debootstrap --variant=minbase --include="$pkgs" sid "$tmp" http://deb.debian.org/debian >&2
ready "$tmp" || { echo "setup-sid-client.sh: $tmp built but lacks virgl_test_server, vulkaninfo, glxinfo or the ICD files" >&2; exit 1; }
mv "$tmp" "$dir"
echo "setup-sid-client.sh: built in $((SECONDS - start)) s" >&2
echo "$dir"
