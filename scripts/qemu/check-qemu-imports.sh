#!/usr/bin/env bash
# Compares the virgl_* symbols Debian's QEMU imports (its virtio-gpu-gl module, package
# qemu-system-modules-opengl) with what our libvirglrenderer.so.1 exports.
# Usage: scripts/qemu/check-qemu-imports.sh [SUITE] [LIB]
#   SUITE: trixie (QEMU 10, default) or sid (QEMU 11); LIB: default target/debug/libvirglrenderer.so
# Downloads the one .deb with apt-get (its own list directory under a temp dir; needs network),
# prints the import list (to refresh crates/virglrenderer-abi/tests/qemu-imports/), and exits 1
# if a symbol is missing.
set -euo pipefail
suite=${1:-trixie}
lib=${2:-target/debug/libvirglrenderer.so}
[ -e "$lib" ] || cargo build -p virglrenderer-abi --lib
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lists/partial" "$tmp/deb"
echo "deb http://deb.debian.org/debian $suite main" > "$tmp/sources.list"
apt_opts=(-q -o "Dir::Etc::sourcelist=$tmp/sources.list" -o Dir::Etc::sourceparts=-
          -o "Dir::State::Lists=$tmp/lists")
apt-get "${apt_opts[@]}" update >/dev/null
(cd "$tmp/deb" && apt-get "${apt_opts[@]}" download qemu-system-modules-opengl >/dev/null 2>&1)
dpkg -x "$tmp"/deb/*.deb "$tmp/root"
mod=$(find "$tmp/root" -name 'hw-display-virtio-gpu-gl.so' | head -1)
echo "# $(basename "$tmp"/deb/*.deb)"
nm -D --undefined-only "$mod" | awk '/virgl_/{print $2}' | sort -u | tee "$tmp/imports"
nm -D --defined-only "$lib" | awk '$2 == "T" && /virgl_/{print $3}' | sort -u > "$tmp/ours"
missing=$(comm -23 "$tmp/imports" "$tmp/ours")
if [ -n "$missing" ]; then echo "MISSING in $lib:"; echo "$missing"; exit 1; fi
echo "all $(wc -l < "$tmp/imports") imports are exported by $lib"
