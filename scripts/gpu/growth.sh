#!/usr/bin/env bash
# Diagnostic: does venus-server accumulate host resources per connection? Starts the server from
# a pack on this host's driver, runs N short clients one after another, and prints the server's
# open fds, threads and RSS after each (plus what the extra fds point at at the end).
# Usage: growth.sh [DIR] [N]   (DIR: a pack from pack.sh; N: clients, default 40)
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${1:-$here/../..}"; n="${2:-40}"
dir="$(cd "$dir" && pwd)"
work="$(mktemp -d /tmp/gpu-growth.XXXXXX)"
server_pid=""
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"' EXIT
row() { :; }; fail_row() { echo "FAIL: $*"; }; finish_table() { :; }
# shellcheck source=scripts/gpu/lib.sh
. "$here/lib.sh"
sock="$work/venus.sock"
pick_host_icd
setup_loader || exit 1
start_server || { tail -5 "$work/server.log"; exit 1; }
snap() {
    local fds threads rss
    fds=$(ls "/proc/$server_pid/fd" | wc -l)
    threads=$(ls "/proc/$server_pid/task" | wc -l)
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status")
    echo "client $1: fds=$fds threads=$threads rss_kib=$rss"
}
snap 0
for i in $(seq "$n"); do
    run_side venus 60 venus-compute saxpy --n 4096 --reps 1 >/dev/null || echo "client $i: FAILED: $(last_err)"
    sleep 0.2
    snap "$i"
done
echo "--- fd targets at the end:"
ls -l "/proc/$server_pid/fd" | awk '{print $NF}' | sed 's/[0-9]\+/N/g' | sort | uniq -c | sort -rn | head -20
echo "--- server warnings:"
grep -E "WARN|ERROR" "$work/server.log" | head -10
