#!/usr/bin/env bash
# vkcube through venus-server vs native lavapipe (issue 8): frames per second at the same
# window size (500x500 Xvfb, MESA_VK_WSI_DEBUG=sw for both), interleaved, repeated; then the
# server's CPU time while a connected vkcube is stopped (SIGSTOP: idle between frames).
# With PER_THREAD=1 it then runs each mode once more under `perf sched record` and prints the
# CPU time per frame of every thread of the client, Xvfb and the server that used more than 50 ms, their total and the wall time
# per frame (needs perf with scheduler tracepoints, i.e. root). SERVER_ARGS are passed to the
# server (e.g. --no-robust-access).
# Usage: [PER_THREAD=1] [SERVER_ARGS=...] scripts/bench-vkcube.sh [venus-server binary] [frames] [rounds]
set -euo pipefail
server=${1:-target/release/venus-server}
frames=${2:-1000}
rounds=${3:-3}
lvp=/usr/share/vulkan/icd.d/lvp_icd.json
virtio=/usr/share/vulkan/icd.d/virtio_icd.json
dir=$(mktemp -d /tmp/bench-vkcube.XXXXXX)
VK_DRIVER_FILES=$lvp "$server" ${SERVER_ARGS:-} --socket-path "$dir/s.sock" 2>"$dir/server.log" &
spid=$!
trap 'kill $spid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do [ -S "$dir/s.sock" ] && break; sleep 0.05; done
[ -S "$dir/s.sock" ] || { echo "venus-server did not start:" >&2; cat "$dir/server.log" >&2; exit 1; }
cube() { # $1 = native|venus, then an optional command prefix (e.g. perf sched record ...)
  local mode=$1; shift
  local -a env=(MESA_VK_WSI_DEBUG=sw)
  if [ "$mode" = venus ]; then
    env+=(VK_DRIVER_FILES=$virtio VN_DEBUG=vtest VTEST_SOCKET_NAME=$dir/s.sock)
  else
    env+=(VK_DRIVER_FILES=$lvp)
  fi
  local t0 t1
  t0=$(date +%s.%N)
  "$@" env "${env[@]}" xvfb-run -a -s '-screen 0 500x500x24' vkcube --c "$frames" >/dev/null 2>&1
  t1=$(date +%s.%N)
  echo "$t0 $t1"
}
# Xvfb start-up is in both; measure it alone and subtract.
base() { local t0 t1; t0=$(date +%s.%N); xvfb-run -a -s '-screen 0 500x500x24' true; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
for r in $(seq "$rounds"); do
  b=$(base)
  read -r a0 a1 < <(cube native)
  read -r v0 v1 < <(cube venus)
  fn=$(echo "$frames / ($a1 - $a0 - $b)" | bc -l)
  fv=$(echo "$frames / ($v1 - $v0 - $b)" | bc -l)
  printf 'round %d: native %.0f fps, venus %.0f fps, ratio %.2f\n' "$r" "$fn" "$fv" "$(echo "$fv / $fn" | bc -l)"
done
if [ "${PER_THREAD:-0}" = 1 ]; then
  command -v perf >/dev/null || { echo "perf is missing (apt-get install linux-perf)" >&2; exit 1; }
  for mode in native venus; do
    cube $mode perf sched record -q -o "$dir/$mode.data" -- >/dev/null
    echo "== $mode: CPU per frame by thread ($frames frames)"
    # timehist columns: time [cpu] task-name[tid/pid] wait-time sch-delay run-time (ms)
    perf sched timehist -i "$dir/$mode.data" 2>/dev/null | awk -v F="$frames" 'NR > 3 {
      line = $0; sub(/^ *[0-9.]+ +\[[0-9]+\] +/, "", line)
      m = match(line, /\]/); name = substr(line, 1, m); split(substr(line, m + 1), a, " ")
      if (name !~ /^(<idle>|kworker|perf|ksoftirqd|rcu_)/) run[name] += a[3]
      if (first == "") first = $1; last = $1
    } END {
      for (k in run) if (run[k] > 50) { printf "  %-44s %7.1f us\n", k, run[k] * 1000 / F; tot += run[k] }
      printf "  %-44s %7.1f us\n  %-44s %7.1f us\n", "total (threads above)", tot * 1000 / F, "wall", (last - first) * 1e6 / F
    }' | sort
  done
fi
cpu() { awk '{print $14 + $15}' "/proc/$spid/stat"; }
env MESA_VK_WSI_DEBUG=sw VK_DRIVER_FILES=$virtio VN_DEBUG=vtest VTEST_SOCKET_NAME=$dir/s.sock \
  xvfb-run -a -s '-screen 0 500x500x24' vkcube >/dev/null 2>&1 &
wpid=$!
sleep 3
vpid=$(pgrep -P "$wpid" -x vkcube)  # our vkcube: the child of our xvfb-run
kill -STOP "$vpid"
sleep 0.5
c0=$(cpu); sleep 5; c1=$(cpu)
hz=$(getconf CLK_TCK)
printf 'server CPU while the client is stopped between frames: %s ms over 5 s\n' "$(( (c1 - c0) * 1000 / hz ))"
kill -CONT "$vpid"; kill "$vpid" || true
wait $wpid 2>/dev/null || true
