#!/usr/bin/env bash
# The GPU check and benchmark of venus-server on any x86-64 Linux host with a Vulkan driver
# (docs/gpu-host.md):
#   scripts/gpu-check.sh pack [--debug] [DIR]   build and collect everything a bare host needs
#                                               (default DIR: .gpu in the repository root)
#   scripts/gpu-check.sh run [DIR] [--short]    on the target host: checks + benchmarks, native
#                                               vs through venus-server, one table; exit 1 when
#                                               a check fails
# The host driver is the ICD manifest in VK_DRIVER_FILES, else the NVIDIA one if present,
# else lavapipe. --short is the quick CI variant (GPU-only parts print SKIPPED).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
case "${1:-}" in
    pack) shift; exec "$here/gpu/pack.sh" "$@" ;;
    run) shift; exec "$here/gpu/run.sh" "$@" ;;
    *)
        sed -n '2,11p' "$0" >&2
        exit 2
        ;;
esac
