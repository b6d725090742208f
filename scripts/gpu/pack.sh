#!/usr/bin/env bash
# Packs what a bare x86-64 Linux host needs to run scripts/gpu-check.sh run: our binaries
# (release, stripped; --debug: the debug build, for CI), vulkaninfo, the Vulkan loader, Mesa's
# Venus client driver (libvulkan_virtio.so) with an ICD manifest pointing at the packed copy
# (relative path), the whole library closure (ldd) including glibc and ld-linux-x86-64.so.2,
# and the scripts. Usage: pack.sh [--debug] [DIR] (default DIR: <repo>/.gpu).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
profile=release
if [ "${1:-}" = "--debug" ]; then profile=debug; shift; fi
dir="${1:-$repo/.gpu}"
max_mib="${GPU_PACK_MAX_MIB:-60}"
programs=(venus-server venus-compute venus-render venus-sync venus-coherence venus-gpubench)
libdir=/usr/lib/x86_64-linux-gnu

cd "$repo"
if [ "$profile" = release ]; then
    cargo build --release -p venus-server -p venus-testapps
else
    cargo build -p venus-server -p venus-testapps
fi
rm -rf "$dir"
mkdir -p "$dir/bin" "$dir/lib" "$dir/scripts/gpu"
for p in "${programs[@]}"; do
    cp "target/$profile/$p" "$dir/bin/"
done
cp "$(command -v vulkaninfo)" "$dir/bin/"
strip "$dir/bin/"* 2>/dev/null || true

# The loader and the Venus client driver; dlopen'ed, so ldd of the programs misses them.
cp -L "$libdir/libvulkan.so.1" "$dir/lib/libvulkan.so.1"
cp -L "$libdir/libvulkan_virtio.so" "$dir/lib/libvulkan_virtio.so"
api=$(sed -n 's/.*"api_version": *"\([^"]*\)".*/\1/p' /usr/share/vulkan/icd.d/virtio_icd.json)
cat >"$dir/virtio_icd.json" <<JSON
{
    "ICD": {
        "api_version": "${api:-1.3.0}",
        "library_path": "./lib/libvulkan_virtio.so"
    },
    "file_format_version": "1.0.0"
}
JSON

# glvnd (libGLdispatch and friends): NVIDIA's Vulkan driver lives in libGLX_nvidia.so.0 and
# needs them; a bare host has no glvnd.
for l in libGLdispatch.so.0 libGLX.so.0 libEGL.so.1 libOpenGL.so.0 libGL.so.1 libGLESv2.so.2; do
    if [ -e "$libdir/$l" ]; then cp -L "$libdir/$l" "$dir/lib/$l"; fi
done

# The closure: every library ldd resolves for what we carry, plus all of glibc (a host
# library loaded later, such as the NVIDIA driver, may need libdl/libpthread/librt, which
# must then come from the same glibc as the carried ld-linux).
{
    for f in "$dir/bin/"* "$dir/lib/"*; do
        ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'
    done
    dpkg -L libc6 2>/dev/null | grep -E '^/(usr/)?lib/x86_64-linux-gnu/[^/]+\.so[.0-9]*$' || true
} | sort -u | while read -r lib; do
    [ -e "$dir/lib/$(basename "$lib")" ] || cp -L "$lib" "$dir/lib/"
done
cp -L /lib64/ld-linux-x86-64.so.2 "$dir/lib/ld-linux-x86-64.so.2"
# glibc's own libraries: left out when the host's dynamic loader runs the programs.
{
    echo ld-linux-x86-64.so.2
    dpkg -L libc6 2>/dev/null | grep -E '/x86_64-linux-gnu/[^/]+\.so[.0-9]*$' | xargs -r -n1 basename
} | sort -u >"$dir/glibc.list"
strip --strip-unneeded "$dir/lib/libvulkan_virtio.so" 2>/dev/null || true

cp scripts/gpu-check.sh "$dir/scripts/"
cp scripts/gpu/*.sh scripts/gpu/*.awk "$dir/scripts/gpu/" 2>/dev/null || true
{
    echo "packed $(date -u +%Y-%m-%dT%H:%M:%SZ) profile=$profile"
    echo "commit $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
    echo "mesa $(dpkg-query -W -f '${Version}' mesa-vulkan-drivers 2>/dev/null || echo unknown)"
    echo "loader $(dpkg-query -W -f '${Version}' libvulkan1 2>/dev/null || echo unknown)"
} >"$dir/MANIFEST"

mib=$(du -sm "$dir" | cut -f1)
echo "packed $dir: ${mib} MiB ($(ls "$dir/lib" | wc -l) libraries)"
if [ "$mib" -ge "$max_mib" ]; then
    echo "pack: $dir is ${mib} MiB, over the ${max_mib} MiB limit" >&2
    exit 1
fi
