#!/usr/bin/env bash
# Builds (once) a Debian root holding QEMU with virtio-gpu-gl + SDL (qemu-system-x86,
# qemu-system-modules-opengl, qemu-system-gui), a kernel (linux-image-amd64), busybox-static,
# the guest Mesa (mesa-vulkan-drivers: the Venus client ICD and lavapipe), vulkan-tools, Xvfb
# and EGL/GL: the host side and the guest's userspace of scripts/qemu/run-guest.sh.
# Usage: scripts/qemu/make-root.sh DIR [SUITE]   (SUITE: trixie = QEMU 10 (default), sid = QEMU 11)
# Needs root and network (deb.debian.org); a few minutes. Leaves DIR/{proc,dev,tmp} bind-mounted.
set -euo pipefail
dir=${1:?usage: $0 DIR [SUITE]}; suite=${2:-trixie}
if [ -x "$dir/usr/bin/qemu-system-x86_64" ] && [ -e "$dir/usr/lib/x86_64-linux-gnu/libEGL.so.1" ]; then
  echo "root ready: $dir"; exit 0
fi
pkgs=qemu-system-x86,qemu-system-modules-opengl,qemu-system-gui,linux-image-amd64,busybox-static
pkgs+=,mesa-vulkan-drivers,vulkan-tools,libvulkan1,xvfb,xauth,kmod,xz-utils,libgl1-mesa-dri
pkgs+=,libegl-mesa0
# dconf-service (pulled by GTK) fails to configure in a chroot; it is not needed.
debootstrap --variant=minbase --include="$pkgs" "$suite" "$dir" http://deb.debian.org/debian || true
for m in proc dev tmp; do mountpoint -q "$dir/$m" || mount --bind "/$m" "$dir/$m"; done
chroot "$dir" dpkg --configure -a || true
chroot "$dir" apt-get -f install -y -q
chroot "$dir" apt-get install -y -q libegl1 libgles2
[ -x "$dir/usr/bin/qemu-system-x86_64" ] && [ -e "$dir/usr/share/vulkan/icd.d/virtio_icd.json" ]
echo "root ready: $dir"
