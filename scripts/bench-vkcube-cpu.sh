#!/usr/bin/env bash
# Where vkcube's CPU goes, native lavapipe vs through venus-server (docs/benchmarks.md, vkcube):
# each mode runs `vkcube --c FRAMES` under `perf sched record` (500x500 Xvfb,
# MESA_VK_WSI_DEBUG=sw) and prints the CPU time per frame of every thread that used more than
# 50 ms, the total, and the wall time per frame. Needs perf with scheduler tracepoints (root).
# Usage: [SERVER_ARGS=...] scripts/bench-vkcube-cpu.sh [venus-server binary] [frames]
set -euo pipefail
server=${1:-target/release/venus-server}
frames=${2:-2000}
command -v perf >/dev/null || { echo "perf is missing (apt-get install linux-perf)" >&2; exit 1; }
lvp=/usr/share/vulkan/icd.d/lvp_icd.json
virtio=/usr/share/vulkan/icd.d/virtio_icd.json
dir=$(mktemp -d /tmp/bench-vkcube-cpu.XXXXXX)
VK_DRIVER_FILES=$lvp "$server" ${SERVER_ARGS:-} --socket-path "$dir/s.sock" 2>"$dir/server.log" &
spid=$!
trap 'kill $spid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do [ -S "$dir/s.sock" ] && break; sleep 0.05; done
[ -S "$dir/s.sock" ] || { echo "venus-server did not start:" >&2; cat "$dir/server.log" >&2; exit 1; }
for mode in native venus; do
    if [ $mode = venus ]; then
        e=(VK_DRIVER_FILES=$virtio VN_DEBUG=vtest VTEST_SOCKET_NAME=$dir/s.sock)
    else
        e=(VK_DRIVER_FILES=$lvp)
    fi
    perf sched record -q -o "$dir/$mode.data" -- env MESA_VK_WSI_DEBUG=sw "${e[@]}" \
        xvfb-run -a -s '-screen 0 500x500x24' vkcube --c "$frames" >/dev/null 2>&1
    echo "== $mode ($frames frames)"
    # timehist columns: time [cpu] task-name[tid/pid] wait-time sch-delay run-time (ms)
    perf sched timehist -i "$dir/$mode.data" 2>/dev/null | awk -v F="$frames" 'NR > 3 {
        line = $0; sub(/^ *[0-9.]+ +\[[0-9]+\] +/, "", line)
        m = match(line, /\]/); name = substr(line, 1, m); split(substr(line, m + 1), a, " ")
        if (name !~ /^<idle>/) run[name] += a[3]
        if (first == "") first = $1; last = $1
    } END {
        for (k in run) if (run[k] > 50) { printf "  %-44s %7.1f us/frame\n", k, run[k] * 1000 / F; tot += run[k] }
        printf "  %-44s %7.1f us/frame\n  %-44s %7.1f us/frame\n", "total (threads above)", tot * 1000 / F, "wall", (last - first) * 1e6 / F
    }' | sort
done
