#!/usr/bin/env bash
# Boots the guest of make-guest.sh under QEMU (TCG) inside ROOT, with virtio-gpu-gl venus=on,
# and prints its serial console. RENDERER: "venus-rs" (LIB, default
# target/debug/libvirglrenderer.so, copied into ROOT/opt/venus-rs/lib as libvirglrenderer.so.1
# and put first with LD_LIBRARY_PATH) or "reference" (the root's virglrenderer).
# Usage: scripts/qemu/run-guest.sh ROOT GUESTDIR [RENDERER] [LIB] [GUESTCMD]
#   GUESTCMD: the command run in the guest's chroot, spaces written as '+'
#   (default vulkaninfo+--summary). Timeout: $GUEST_TIMEOUT seconds (default 600).
# Needs root (bind mounts /proc, /dev, /tmp into ROOT; they stay mounted). GUESTDIR must be
# under /tmp (shared with ROOT). Display: Xvfb :$XDISPLAY (default 97) + -display sdl,gl=on.
set -euo pipefail
root=${1:?usage}; guest=${2:?usage}; renderer=${3:-venus-rs}
lib=${4:-target/debug/libvirglrenderer.so}; cmd=${5:-vulkaninfo+--summary}
disp=${XDISPLAY:-97}; timeout=${GUEST_TIMEOUT:-600}
for m in proc dev tmp; do mountpoint -q "$root/$m" || mount --bind "/$m" "$root/$m"; done
ldpath=
if [ "$renderer" = venus-rs ]; then
  install -D "$lib" "$root/opt/venus-rs/lib/libvirglrenderer.so.1"
  ldpath=/opt/venus-rs/lib
fi
chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/tmp VENUS_LOG="${VENUS_LOG:-info}" bash -c "
  Xvfb :$disp -screen 0 1280x800x24 -nolisten tcp >/tmp/xvfb-$disp.log 2>&1 &
  xpid=\$!; sleep 2
  export DISPLAY=:$disp LD_LIBRARY_PATH=$ldpath \
         VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.json SDL_AUDIODRIVER=dummy
  timeout -k 10 $timeout qemu-system-x86_64 -machine q35 -accel tcg -cpu max -m 2048 -smp 2 \
    -kernel $guest/vmlinuz -initrd $guest/initramfs.cpio.gz \
    -append 'console=ttyS0 panic=-1 loglevel=4 guestcmd=$cmd' \
    -serial stdio -monitor none -no-reboot -vga none -audio none \
    -device virtio-gpu-gl-pci,venus=on,blob=on,hostmem=1G -display sdl,gl=on \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on
  rc=\$?; kill \$xpid 2>/dev/null; wait \$xpid 2>/dev/null; exit \$rc"
