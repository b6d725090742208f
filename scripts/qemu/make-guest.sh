#!/usr/bin/env bash
# Builds a small Venus test guest for QEMU from a Debian root (trixie: kernel 6.12, Mesa 25.0.7):
# an initramfs with busybox, the kernel modules for virtio-gpu and 9p (decompressed, in load
# order), and an /init that mounts the host root over 9p (tag hostroot), chroots into it and
# runs the guest command (default: vulkaninfo --summary through Mesa's Venus driver), printing
# GUEST-EXIT=<status> on the serial console before powering off.
# Usage: scripts/qemu/make-guest.sh ROOT OUTDIR   (ROOT: made by make-root.sh)
# Writes OUTDIR/vmlinuz and OUTDIR/initramfs.cpio.gz.
set -euo pipefail
root=${1:?usage: $0 ROOT OUTDIR}; out=${2:?usage: $0 ROOT OUTDIR}
kver=$(ls "$root/lib/modules" | head -1)
mods="$root/lib/modules/$kver"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,proc,sys,dev,mnt,tmp,lib/modules} "$out"
cp "$root/usr/bin/busybox" "$work/bin/busybox"
cp "$root/boot/vmlinuz-$kver" "$out/vmlinuz"

# Dependency closure from modules.dep, dependencies first.
declare -A seen; order=()
add() {
  local path=$1 dep
  [ -n "${seen[$path]:-}" ] && return; seen[$path]=1
  for dep in $(grep -E "^$path:" "$mods/modules.dep" | cut -d: -f2); do add "$dep"; done
  order+=("$path")
}
for m in virtio-gpu 9p 9pnet_virtio; do
  add "$(grep -oE "^[^:]*/$m\.ko(\.xz)?" "$mods/modules.dep" | head -1)"
done
: > "$work/modules.order"
for p in "${order[@]}"; do
  name=$(basename "${p%.xz}")
  xz -dc "$mods/$p" > "$work/lib/modules/$name" 2>/dev/null || cp "$mods/$p" "$work/lib/modules/$name"
  echo "$name" >> "$work/modules.order"
done

cat > "$work/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do insmod /lib/modules/$m || echo "insmod $m failed"; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=524288 hostroot /mnt || echo "9p mount failed"
mount -t proc proc /mnt/proc; mount -t sysfs sys /mnt/sys; mount -t devtmpfs dev /mnt/dev
mount -t tmpfs tmp /mnt/tmp
ls -l /dev/dri
cmd=$(sed -n 's/.*guestcmd=\([^ ]*\).*/\1/p' /proc/cmdline | tr '+' ' ')
[ -n "$cmd" ] || cmd="vulkaninfo --summary"
echo "GUEST-RUN: $cmd"
chroot /mnt /usr/bin/env HOME=/tmp XDG_RUNTIME_DIR=/tmp \
  VK_DRIVER_FILES=/usr/share/vulkan/icd.d/virtio_icd.json $cmd
echo "GUEST-EXIT=$?"
poweroff -f
INIT
chmod +x "$work/init"
(cd "$work" && find . | "$root/usr/bin/busybox" cpio -o -H newc | gzip -1) > "$out/initramfs.cpio.gz"
echo "guest: $out/vmlinuz $out/initramfs.cpio.gz (kernel $kver, modules: $(tr '\n' ' ' < "$work/modules.order"))"
