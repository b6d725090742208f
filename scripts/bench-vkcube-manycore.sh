#!/usr/bin/env bash
# vkcube through venus-server vs native lavapipe on a bare many-core x86-64 Linux host without
# X, Mesa or a Vulkan loader (e.g. the GPU machine's CPUs; docs/benchmarks.md "vkcube on 16
# cores"). The 2-core CI host is CPU-bound; this one shows the per-frame latency instead.
#   scripts/bench-vkcube-manycore.sh pack [DIR]   collect venus-server (release, stripped),
#       vkcube, Xvfb, xkbcomp + keymaps, the Vulkan loader, lavapipe and the Venus client with
#       their library closure (glibc excluded: the target's own is used) into DIR/cube.tar.xz
#       (default DIR: .cubepack, git-excluded; it fits the device machine's 64 MiB carry)
#   scripts/bench-vkcube-manycore.sh run [DIR]    on the target: N frames (default 4000) of
#       `vkcube --c N` in one 500x500 Xvfb, native and through venus-server interleaved, R
#       rounds (default 5); one line per round, then the median ratio and its spread.
#       CLIENT_ENV="VAR=value ..." is added to the Venus client's environment (experiments).
#   BASE_SERVER=PATH scripts/bench-vkcube-manycore.sh pack   also packs a second server build
#       (e.g. the previous commit's); `run` then interleaves it too ("base" column) and prints
#       the median and spread of venus/base as well (A/B of a server change); BASE_BIN=PATH
#       at `run` takes the base server from PATH instead (e.g. one of several variants).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
cmd=${1:-}
dir=${2:-$root/.cubepack}

pack() {
    mkdir -p "$dir"
    (cd "$root" && cargo build --release -p venus-server)
    local s; s=$(mktemp -d)
    mkdir -p "$s/cube/lib" "$s/cube/bin"
    local lib=/usr/lib/x86_64-linux-gnu
    cp /usr/bin/Xvfb /usr/bin/xkbcomp /usr/bin/vkcube "$s/cube/bin/"
    cp "$root/target/release/venus-server" "$s/cube/bin/"
    strip "$s/cube/bin/venus-server"
    if [ -n "${BASE_SERVER:-}" ]; then
        cp "$BASE_SERVER" "$s/cube/bin/venus-server-base"
        strip "$s/cube/bin/venus-server-base"
    fi
    cp "$lib/libvulkan_lvp.so" "$lib/libvulkan_virtio.so" "$s/cube/lib/"
    cp -r /usr/share/X11/xkb "$s/cube/xkb"
    local f n p
    for f in "$s"/cube/bin/* "$s"/cube/lib/*.so; do
        ldd "$f" | awk '$3 ~ /^\// {print $1, $3}'
    done | sort -u | while read -r n p; do
        case "$n" in libc.so*|libm.so*|libpthread*|libdl.so*|librt.so*|ld-linux*) continue ;; esac
        [ -e "$s/cube/lib/$n" ] || cp -L "$p" "$s/cube/lib/$n"
    done
    tar -C "$s" -cJf "$dir/cube.tar.xz" cube
    rm -rf "$s"
    grep -qx '/.cubepack/' "$root/.git/info/exclude" 2>/dev/null || echo '/.cubepack/' >>"$root/.git/info/exclude"
    ls -la "$dir/cube.tar.xz"
}

run() {
    local N=${N:-4000} R=${R:-5} D=${D:-:57}
    local w=/tmp/venus-cube
    rm -rf "$w"; mkdir -p "$w"
    tar -C "$w" -xJf "$dir/cube.tar.xz"
    export LD_LIBRARY_PATH=$w/cube/lib
    printf '{ "ICD": { "api_version": "1.4.305", "library_path": "%s" }, "file_format_version": "1.0.0" }\n' \
        "$w/cube/lib/libvulkan_lvp.so" >"$w/lvp.json"
    printf '{ "ICD": { "api_version": "1.3.305", "library_path": "%s" }, "file_format_version": "1.0.0" }\n' \
        "$w/cube/lib/libvulkan_virtio.so" >"$w/virtio.json"
    # Xvfb runs xkbcomp from its build-time path.
    [ -x /usr/bin/xkbcomp ] || cp "$w/cube/bin/xkbcomp" /usr/bin/xkbcomp
    echo "cpus: $(nproc)"
    "$w/cube/bin/Xvfb" "$D" -screen 0 500x500x24 -xkbdir "$w/cube/xkb" -nolisten tcp >"$w/xvfb.log" 2>&1 &
    xp=$!
    bp="" base=""
    VK_DRIVER_FILES=$w/lvp.json "$w/cube/bin/venus-server" --socket-path "$w/s.sock" 2>"$w/server.log" &
    sp=$!
    local base_bin=${BASE_BIN:-$w/cube/bin/venus-server-base}
    if [ -x "$base_bin" ]; then
        base=1
        VK_DRIVER_FILES=$w/lvp.json "$base_bin" --socket-path "$w/b.sock" 2>"$w/base.log" &
        bp=$!
    fi
    trap 'kill $sp $bp $xp 2>/dev/null' EXIT
    local k
    for k in $(seq 200); do [ -S "$w/s.sock" ] && { [ -z "$base" ] || [ -S "$w/b.sock" ]; } && break; sleep 0.05; done
    [ -S "$w/s.sock" ] || { echo "venus-server did not start:"; cat "$w/server.log"; exit 1; }
    [ -z "$base" ] || [ -S "$w/b.sock" ] || { echo "venus-server-base did not start:"; cat "$w/base.log"; exit 1; }
    one() { # native|venus -> frames per second (start-up included, ~65 ms both ways)
        local -a e
        if [ "$1" = venus ]; then
            e=(VK_DRIVER_FILES="$w/virtio.json" VN_DEBUG=vtest VTEST_SOCKET_NAME="$w/s.sock" ${CLIENT_ENV:-})
        elif [ "$1" = base ]; then
            e=(VK_DRIVER_FILES="$w/virtio.json" VN_DEBUG=vtest VTEST_SOCKET_NAME="$w/b.sock" ${CLIENT_ENV:-})
        else
            e=(VK_DRIVER_FILES="$w/lvp.json")
        fi
        local t0 t1
        t0=$(date +%s.%N)
        timeout "${CUBE_TIMEOUT:-120}" env DISPLAY="$D" MESA_VK_WSI_DEBUG=sw "${e[@]}" \
            "$w/cube/bin/vkcube" --c "$N" >"$w/cube.log" 2>&1 ||
            { echo "vkcube ($1) failed or timed out:" >&2; tail -5 "$w/cube.log" "$w"/*.log >&2; exit 1; }
        t1=$(date +%s.%N)
        awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }'
    }
    median() { sort -n | awk '{ x[NR] = $1 } END {
        m = NR % 2 ? x[(NR + 1) / 2] : (x[NR / 2] + x[NR / 2 + 1]) / 2
        printf "median %.2f, spread %.2f..%.2f (%d rounds)", m, x[1], x[NR], NR }'; }
    local r a v b ratios=() bratios=() abs=()
    for r in $(seq "$R"); do
        # With a base server, venus and base swap places every round.
        a=$(one native)
        if [ -n "$base" ] && [ $((r % 2)) = 0 ]; then b=$(one base); fi
        v=$(one venus)
        ratios+=("$(awk -v a="$a" -v v="$v" 'BEGIN { printf "%.3f", v / a }')")
        if [ -n "$base" ]; then
            [ $((r % 2)) = 0 ] || b=$(one base)
            bratios+=("$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b / a }')")
            abs+=("$(awk -v b="$b" -v v="$v" 'BEGIN { printf "%.3f", v / b }')")
            echo "round $r: native $a fps, venus $v fps, base $b fps, ratio ${ratios[-1]}, base ratio ${bratios[-1]}, venus/base ${abs[-1]}"
        else
            echo "round $r: native $a fps, venus $v fps, ratio ${ratios[-1]}"
        fi
    done
    echo "ratio venus/native: $(printf '%s\n' "${ratios[@]}" | median)"
    if [ -n "$base" ]; then
        echo "ratio base/native: $(printf '%s\n' "${bratios[@]}" | median)"
        echo "ratio venus/base: $(printf '%s\n' "${abs[@]}" | median)"
    fi
}

case "$cmd" in
    pack) pack ;;
    run) run ;;
    *) sed -n '2,16p' "$0" >&2; exit 2 ;;
esac
