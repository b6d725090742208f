#!/usr/bin/env bash
# Installs the system packages that venus-rs's tests and demos need, on Debian 12 (bookworm)
# (on trixie or later it takes Mesa from the main archive, which is new enough; untested there):
#   mesa-vulkan-drivers >= 25.0  Mesa's Venus client (libvulkan_virtio.so) + lavapipe
#                                (libvulkan_lvp.so); on bookworm from bookworm-backports
#                                (bookworm's own Mesa 22.3 is too old)
#   libvulkan1                   the Vulkan loader (>= 1.3.207 for VK_DRIVER_FILES)
#   vulkan-tools                 vulkaninfo, vkcube
#   mesa-utils                   glxinfo (GL checks under Xvfb)
#   vulkan-validationlayers      VK_LAYER_KHRONOS_validation
#   xvfb, xauth, xfonts-base     headless X server for WSI tests (xvfb-run needs xauth;
#                                Xvfb wants the "fixed" font)
#   x11-apps, netpbm             screenshots of Xvfb: xwd -root -display :N | xwdtopnm | pnmtopng
#   libgl1-mesa-dri, libegl-mesa0 >= 25.0  zink (GL on Vulkan) and Mesa's EGL, in step with
#                                the Venus client (docs/third-party-clients.md)
#   gcc, libc6-dev, libegl-dev, libgles-dev  build crates/venus-testapps/third_party/zink_render.c
#   python3-venv                 the venv with Python `wgpu` (pip, pinned below) in
#                                $VENUS_WGPU_VENV (default /var/cache/venus-rs/wgpu-venv)
#
# Idempotent: when everything is already installed it only runs one dpkg-query (and one
# python import for the wgpu venv) and exits
# (no apt-get, no network). `apt-get update` runs only when something must be installed.
# Usage: scripts/setup-system.sh [--check]
#   --check  also run `vulkaninfo --summary` on lavapipe and print the ICD/layer paths.
set -euo pipefail

check=0
for a in "$@"; do
  case "$a" in
    --check) check=1 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "setup-system.sh: unknown argument: $a" >&2; exit 2 ;;
  esac
done

# package -> minimum version ("" = any). mesa-vulkan-drivers must be >= 25.0 (the client
# contract was written against Mesa 25.0.7; bookworm-backports ships 25.0.7-2~bpo12+1).
declare -A min_version=(
  [mesa-vulkan-drivers]=25.0
  [libvulkan1]=1.3.207
  [vulkan-tools]=
  [mesa-utils]=
  [vulkan-validationlayers]=
  [xvfb]=
  [xauth]=
  [xfonts-base]=
  [x11-apps]=
  [netpbm]=
  [libgl1-mesa-dri]=25.0
  [libegl-mesa0]=25.0
  [gcc]=
  [libc6-dev]=
  [libegl-dev]=
  [libgles-dev]=
  [python3-venv]=
  [spirv-tools]=
)
pkgs=(mesa-vulkan-drivers libvulkan1 vulkan-tools mesa-utils vulkan-validationlayers
      xvfb xauth xfonts-base x11-apps netpbm
      libgl1-mesa-dri libegl-mesa0 gcc libc6-dev libegl-dev libgles-dev python3-venv
      spirv-tools)

codename=$( . /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}" ) || codename=
arch=$(uname -m)

# Which packages are missing or too old? One dpkg-query for all of them (it exits 1 when some
# package is unknown, hence the `|| true`).
declare -A have=()
while read -r name status version; do
  [ "$status" = "ii" ] && have[$name]=$version
done < <(dpkg-query -W -f='${Package} ${db:Status-Abbrev} ${Version}\n' "${pkgs[@]}" 2>/dev/null || true)

todo=()
reinstall=()
for p in "${pkgs[@]}"; do
  v=${have[$p]:-}
  if [ -z "$v" ]; then
    todo+=("$p")
  elif [ -n "${min_version[$p]}" ] && dpkg --compare-versions "$v" lt "${min_version[$p]}"; then
    todo+=("$p")
  fi
done

# ICD manifests: Debian's Mesa 25 (bookworm-backports, trixie) names them virtio_icd.json and
# lvp_icd.json (library_path is a bare soname); other builds use virtio_icd.<arch>.json.
icd_dir=/usr/share/vulkan/icd.d
find_icd() {  # find_icd virtio|lvp -> path, or nothing
  local f
  for f in "$icd_dir/$1_icd.json" "$icd_dir/$1_icd.$arch.json"; do
    [ -e "$f" ] && { echo "$f"; return 0; }
  done
  return 0
}
files_ok() {
  local f
  [ -n "$(find_icd virtio)" ] && [ -n "$(find_icd lvp)" ] || return 1
  # (tests find these through venus-testkit, crates/venus-testkit/src/lib.rs; keep both in step)
  for f in /usr/bin/vulkaninfo /usr/bin/vkcube /usr/bin/glxinfo /usr/bin/Xvfb /usr/bin/xwd \
           /usr/bin/xwdtopnm \
           /usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json; do
    [ -e "$f" ] || return 1
  done
  # (third-party clients: crates/venus-testapps/src/tools.rs, Tool::{Zink,Xvfb,GlesDev})
  compgen -G '/usr/lib/*/dri/zink_dri.so' >/dev/null || return 1
  for f in /usr/bin/xvfb-run /usr/bin/xauth /usr/bin/cc /usr/include/EGL/egl.h \
           /usr/include/GLES3/gl3.h; do
    [ -e "$f" ] || return 1
  done
}
# Packages can be installed while their files were removed by hand; check the files we rely on.
if [ ${#todo[@]} -eq 0 ] && ! files_ok; then
  echo "setup-system.sh: some files are missing, reinstalling" >&2
  todo=("${pkgs[@]}")
  reinstall=(--reinstall)
fi

if [ ${#todo[@]} -gt 0 ]; then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup-system.sh: must run as root (or with sudo) to install: ${todo[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  apt_target=()
  if [ "$codename" = bookworm ]; then
    # bookworm's Mesa (22.3) has no usable Venus vtest client: take Mesa from backports.
    if ! grep -rqsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      echo "setup-system.sh: adding bookworm-backports apt source"
      "${sudo[@]}" tee /etc/apt/sources.list.d/debian-backports.sources >/dev/null <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
    # -t makes backports the preferred source for this transaction, so the whole Mesa stack
    # (libgl1-mesa-dri, libegl-mesa0, libgbm1, libdrm*) moves to 25.0.7 together.
    apt_target=(-t bookworm-backports)
  fi
  echo "setup-system.sh: installing: ${todo[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  # Install the whole list (not only $todo) so that -t also upgrades an old mesa-vulkan-drivers.
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${reinstall[@]}" "${apt_target[@]}" "${pkgs[@]}"
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)
  if dpkg --compare-versions "$v" lt "${min_version[mesa-vulkan-drivers]}"; then
    echo "setup-system.sh: mesa-vulkan-drivers $v installed, need >= ${min_version[mesa-vulkan-drivers]}" >&2
    exit 1
  fi
  files_ok || { echo "setup-system.sh: expected files still missing after install" >&2; exit 1; }
fi

# Python `wgpu` (wgpu-native) in a venv (Debian 12's pip refuses system-wide installs).
# Checked by importing it at the pinned version; pip (network) only runs when that fails.
wgpu_py_version=0.32.0
wgpu_venv=${VENUS_WGPU_VENV:-/var/cache/venus-rs/wgpu-venv}
if ! "$wgpu_venv/bin/python" -c "import sys, wgpu; sys.exit(wgpu.__version__ != '$wgpu_py_version')" \
     2>/dev/null; then
  as_root=()
  if ! mkdir -p "$wgpu_venv" 2>/dev/null || [ ! -w "$wgpu_venv" ]; then
    as_root=(sudo)
  fi
  echo "setup-system.sh: creating $wgpu_venv with wgpu==$wgpu_py_version (pip)"
  # /usr/bin/python3: the system Python that python3-venv belongs to (not a pyenv shim).
  "${as_root[@]}" /usr/bin/python3 -m venv "$wgpu_venv"
  "${as_root[@]}" "$wgpu_venv/bin/pip" install -q --disable-pip-version-check \
    "wgpu==$wgpu_py_version"
  "$wgpu_venv/bin/python" -c "import wgpu" \
    || { echo "setup-system.sh: wgpu still not importable from $wgpu_venv" >&2; exit 1; }
fi
echo "setup-system.sh: wgpu venv: $wgpu_venv (wgpu $wgpu_py_version)"

echo "setup-system.sh: ok: $(dpkg-query -W -f='${Package}=${Version} ' "${pkgs[@]}")"

if [ "$check" -eq 1 ]; then
  echo "venus (virtio) ICD: $(find_icd virtio)"
  echo "lavapipe ICD:       $(find_icd lvp)"
  echo "validation layer:   /usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json"
  VK_DRIVER_FILES="$(find_icd lvp)" vulkaninfo --summary
fi
