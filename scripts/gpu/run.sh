#!/usr/bin/env bash
# Runs the GPU check and benchmark from a pack (scripts/gpu/pack.sh) on this host: the host
# driver is the ICD manifest in VK_DRIVER_FILES, else NVIDIA's if present, else lavapipe.
# Starts venus-server on it, runs every program natively and through the server (rounds
# interleaved, the side that goes first alternating), prints one table (scripts/gpu/table.awk)
# and exits 1 when a check fails. Usage: run.sh [DIR] [--short].
# GPU_CHECK_ROUNDS overrides the number of rounds, GPU_CHECK_TIMEOUT_S the limit of one
# benchmark run (default 180 s; a metric that timed out is not run again),
# GPU_CHECK_DEADLINE_S the time after which no new round starts (default 360 s);
# GPU_CHECK_LOGS=<dir> receives the logs as gpu-check-logs.tar.gz (server.log, programs.log,
# vulkaninfo-native.txt, vulkaninfo-venus.txt, the loader's debug output when it found no driver).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
short=0
dir=""
for a in "$@"; do
    case "$a" in
        --short) short=1 ;;
        -*) echo "run.sh: unknown option $a" >&2; exit 2 ;;
        *) dir="$a" ;;
    esac
done
if [ -z "$dir" ]; then
    # Inside a pack (DIR/scripts/gpu/run.sh) the pack is DIR; in the repository, <repo>/.gpu.
    if [ -x "$here/../../bin/venus-server" ]; then dir="$here/../.."; else dir="$here/../../.gpu"; fi
fi
dir="$(cd "$dir" 2>/dev/null && pwd)" || { echo "run.sh: no pack at $dir (run pack first)" >&2; exit 2; }
[ -x "$dir/bin/venus-server" ] || { echo "run.sh: $dir is not a pack (no bin/venus-server)" >&2; exit 2; }

work="$(mktemp -d /tmp/gpu-check.XXXXXX)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
    if [ -n "${GPU_CHECK_LOGS:-}" ]; then
        mkdir -p "$GPU_CHECK_LOGS"
        tar -czf "$GPU_CHECK_LOGS/gpu-check-logs.tar.gz" -C "$work" \
            $(cd "$work" && ls ./*.log ./*.txt 2>/dev/null)
    fi
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/res"
: >"$work/programs.log"

# shellcheck source=scripts/gpu/lib.sh
. "$here/lib.sh"

pick_host_icd
setup_loader || exit 1
start_server || { finish_table; exit 1; }
params
run_checks
run_benchmarks
finish_table
