#!/usr/bin/env bash
# Diagnostic: submit -> fence latency natively and through venus-server, with the client's
# default fence polling and with its relax sleep shortened (VN_RELAX_BASE_SLEEP_US), to tell
# the server's share of the per-submission overhead from the client's back-off.
# Usage: latency.sh [DIR] [COUNT]   (DIR: a pack from pack.sh)
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${1:-$here/../..}"; count="${2:-2000}"
dir="$(cd "$dir" && pwd)"
work="$(mktemp -d /tmp/gpu-latency.XXXXXX)"
server_pid=""
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"' EXIT
row() { :; }; fail_row() { echo "FAIL: $*"; }; finish_table() { :; }
# shellcheck source=scripts/gpu/lib.sh
. "$here/lib.sh"
sock="$work/venus.sock"
pick_host_icd
setup_loader || exit 1
start_server || { tail -5 "$work/server.log"; exit 1; }
for round in 1 2; do
    echo "native:            $(run_side native 120 venus-sync latency --count "$count" | grep latency)"
    echo "venus:             $(run_side venus 120 venus-sync latency --count "$count" | grep latency)"
    echo "venus relax 10us:  $(VN_RELAX_BASE_SLEEP_US=10 run_side venus 120 venus-sync latency --count "$count" | grep latency)"
    echo "venus no feedback: $(VN_PERF=no_fence_feedback run_side venus 120 venus-sync latency --count "$count" | grep latency)"
done
