# Functions of scripts/gpu/run.sh (sourced; uses its variables dir, work, short, server_pid).
# Rows of the table go to $work/table, one per line, fields separated by '|':
# what | unit | native | venus | ratio venus/native (median) | ratio min..max | status.

failed=0
row() { printf '%s|%s|%s|%s|%s|%s|%s\n' "$@" >>"$work/table"; }
fail_row() { row "$@"; failed=$((failed + 1)); }

# The host driver's ICD manifest: VK_DRIVER_FILES, else NVIDIA's, else lavapipe's.
pick_host_icd() {
    host_icd="${VK_DRIVER_FILES:-}"
    if [ -z "$host_icd" ]; then
        for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json \
            /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
            /usr/share/vulkan/icd.d/lvp_icd.json /usr/share/vulkan/icd.d/lvp_icd.x86_64.json; do
            if [ -f "$f" ]; then host_icd="$f"; break; fi
        done
    fi
    sed "s#\"\./lib/#\"$dir/lib/#" "$dir/virtio_icd.json" >"$work/virtio_icd.json"
    sock="$work/venus.sock"
    # NVIDIA's driver also looks for its glvnd EGL vendor file (the device notes set it).
    local egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
    if [ -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" ] && [ -f "$egl" ]; then
        export __EGL_VENDOR_LIBRARY_FILENAMES="$egl"
    fi
}

# CMD=(how to start program $1): through the carried ld-linux (mode carried) or the host's
# dynamic loader with the carried libraries minus glibc (mode host).
cmd_for() {
    if [ "$mode" = carried ]; then
        CMD=("$dir/lib/ld-linux-x86-64.so.2" --library-path "$libpath" "$dir/bin/$1")
    else
        CMD=(env LD_LIBRARY_PATH="$libpath" "$dir/bin/$1")
    fi
}

# run_side native|venus|server TIMEOUT PROGRAM ARGS...: stdout to the caller, stderr to
# $work/err (and programs.log).
run_side() {
    local side="$1" t="$2" p="$3"
    shift 3
    cmd_for "$p"
    local envs=(env -u VK_ICD_FILENAMES -u VK_ADD_DRIVER_FILES -u VK_INSTANCE_LAYERS
        -u VK_LOADER_LAYERS_ENABLE -u DISPLAY -u WAYLAND_DISPLAY)
    case "$side" in
        native | server) envs+=(-u VN_DEBUG -u VTEST_SOCKET_NAME VK_DRIVER_FILES="$host_icd") ;;
        venus) envs+=(VK_DRIVER_FILES="$work/virtio_icd.json" VN_DEBUG=vtest VTEST_SOCKET_NAME="$sock") ;;
    esac
    echo "=== $side: $p $*" >>"$work/programs.log"
    timeout --kill-after=10 "$t" "${envs[@]}" "${CMD[@]}" "$@" </dev/null 2>"$work/err"
    local rc=$?
    cat "$work/err" >>"$work/programs.log"
    echo "=== rc=$rc" >>"$work/programs.log"
    return $rc
}

last_err() { grep -v '^device: ' "$work/err" | tail -n 1 | cut -c1-160; }

# key=value from the line of stdin starting with prefix $1.
field() { awk -v p="$1" -v k="$2=" 'index($0, p) == 1 { for (i = 1; i <= NF; i++) if (index($i, k) == 1) { print substr($i, length(k) + 1); exit } }'; }

summary_field() { sed -n "s/^[[:space:]]*$1[[:space:]]*= *//p" | head -n 1; }

# Probes `vulkaninfo --summary` on the host driver, first through the carried ld-linux, then
# through the host's loader; sets mode, libpath, native_name, native_type, is_gpu.
setup_loader() {
    local base="" d
    for d in ${LD_LIBRARY_PATH:+${LD_LIBRARY_PATH//:/ }} /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
        [ -d "$d" ] && base="$base:$d"
    done
    mkdir -p "$work/hostlib"
    for f in "$dir/lib/"*; do
        grep -qxF "$(basename "$f")" "$dir/glibc.list" 2>/dev/null || ln -s "$f" "$work/hostlib/"
    done
    for mode in carried host; do
        if [ "$mode" = carried ]; then libpath="$dir/lib$base"; else libpath="$work/hostlib$base"; fi
        if run_side native 120 vulkaninfo --summary >"$work/probe.txt"; then
            native_name="$(summary_field deviceName <"$work/probe.txt")"
            native_type="$(summary_field deviceType <"$work/probe.txt")"
            [ -n "$native_name" ] && break
        fi
        echo "gpu-check: the $mode loader mode failed: $(last_err)" >&2
        native_name=""
    done
    if [ -z "$native_name" ]; then
        local probe_err
        probe_err="$(last_err)"
        mode=carried libpath="$dir/lib$base"
        VK_LOADER_DEBUG=all run_side native 60 vulkaninfo --summary >/dev/null 2>&1
        cp "$work/err" "$work/loader-debug.txt"
        fail_row "host driver ($host_icd)" "" "failed" "" "" "" "FAIL: $probe_err"
        finish_table
        return 1
    fi
    is_gpu=1
    case "$native_type" in *CPU*) is_gpu=0 ;; esac
    row "host driver" "${native_type#PHYSICAL_DEVICE_TYPE_}" "$native_name" "" "" "" "INFO (loader: $mode)"
}

start_server() {
    cmd_for venus-server
    env -u VK_ICD_FILENAMES -u VK_ADD_DRIVER_FILES -u VK_INSTANCE_LAYERS -u VN_DEBUG \
        VK_DRIVER_FILES="$host_icd" VENUS_LOG=info NO_COLOR=1 \
        "${CMD[@]}" --socket-path "$sock" </dev/null >"$work/server-stdout.log" 2>"$work/server.log" &
    server_pid=$!
    local i
    for i in $(seq 200); do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            fail_row "venus-server start" "" "" "exited" "" "" "FAIL: $(tail -n 1 "$work/server.log" | cut -c1-160)"
            server_pid=""
            return 1
        fi
        if [ -S "$sock" ] && grep -q listening "$work/server.log"; then return 0; fi
        sleep 0.1
    done
    fail_row "venus-server start" "" "" "no socket" "" "" "FAIL: not listening after 20 s"
    return 1
}

# Sizes: --short (CI), full on a CPU driver, full on a GPU. GPU_CHECK_ROUNDS overrides rounds.
params() {
    if [ "$short" = 1 ]; then
        rounds=2 check_n=$((1 << 20)) frames=3
        stream_args=(--mib 16 --batch 2 --reps 3) job_args=(--mib 16 --batch 2 --reps 4 --inflight 2)
        flops_args=(--n 65536 --iters 64 --reps 3)
        upload_args=(--mib 16 --reps 3) saxpy_n=$((1 << 20)) submits=200
    elif [ "$is_gpu" = 1 ]; then
        rounds=5 check_n=$((16 << 20)) frames=50
        stream_args=(--mib 512 --batch 20 --reps 5) job_args=(--mib 512 --batch 20 --reps 20 --inflight 2)
        flops_args=(--n 1048576 --iters 262144 --reps 5)
        upload_args=(--mib 256 --reps 5) saxpy_n=$((64 << 20)) submits=2000
    else
        rounds=3 check_n=$((4 << 20)) frames=10
        stream_args=(--mib 512 --batch 1 --reps 2) job_args=(--mib 512 --batch 1 --reps 3 --inflight 2)
        flops_args=(--n 65536 --iters 4096 --reps 3)
        upload_args=(--mib 256 --reps 3) saxpy_n=$((16 << 20)) submits=1000
    fi
    rounds="${GPU_CHECK_ROUNDS:-$rounds}"
    bench_timeout="${GPU_CHECK_TIMEOUT_S:-180}"
}

run_checks() {
    run_side native 120 vulkaninfo >"$work/vulkaninfo-native.txt" 2>&1
    run_side venus 120 vulkaninfo >"$work/vulkaninfo-venus.txt" 2>&1
    local venus_name status
    venus_name="$(run_side venus 120 vulkaninfo --summary | summary_field deviceName)"
    case "$venus_name" in
        "Virtio-GPU Venus ($native_name"*) status=PASS ;;
        "Virtio-GPU Venus"*) status="FAIL: not the host device" ;;
        *) status="FAIL: $(last_err)" ;;
    esac
    [ "$status" = PASS ] || failed=$((failed + 1))
    row "vulkaninfo device name" "" "$native_name" "${venus_name:-failed}" "" "" "$status"
    check_compute
    check_render
}

check_compute() {
    local side out res=() status=PASS
    for side in native venus; do
        out="$(run_side "$side" "$bench_timeout" venus-compute all --n "$check_n" --reps 2)"
        if grep -q '^saxpy OK' <<<"$out" && grep -q '^scan OK' <<<"$out"; then
            res+=(exact)
        else
            res+=(failed)
            status="FAIL: $side: $(last_err)"
        fi
    done
    [ "$status" = PASS ] || failed=$((failed + 1))
    row "compute saxpy+scan n=$check_n" "vs CPU" "${res[0]}" "${res[1]}" "" "" "$status"
}

check_render() {
    local side out sums=() status=PASS
    for side in native venus; do
        out="$(run_side "$side" "$bench_timeout" venus-render "$work/render-$side.rgba")"
        sums+=("$(field 'render OK' checksum <<<"$out")")
        [ -n "${sums[-1]}" ] || status="FAIL: $side: $(last_err)"
    done
    if [ "$status" = PASS ] && ! cmp -s "$work/render-native.rgba" "$work/render-venus.rgba"; then
        status="FAIL: pictures differ"
    fi
    [ "$status" = PASS ] || failed=$((failed + 1))
    row "render 256x256 checksum" "fnv1a" "${sums[0]:-failed}" "${sums[1]:-failed}" "" "" "$status"
}

# One benchmark run spec per line: id|program and arguments|line prefix|key=metric,...
bench_specs() {
    echo "stream|venus-gpubench stream ${stream_args[*]}|stream OK|gbps=stream"
    echo "job|venus-gpubench stream ${job_args[*]}|stream OK|gbps=job"
    echo "flops|venus-gpubench flops ${flops_args[*]}|flops OK|gops=flops"
    echo "upload|venus-gpubench upload ${upload_args[*]}|upload OK|upload_gbps=upload,write_gbps=write"
    echo "saxpy|venus-compute saxpy --n $saxpy_n --reps 3|saxpy OK|gbps=saxpy"
    echo "latency|venus-sync latency --count $submits|latency OK|median_us=latency"
    echo "render|venus-render /dev/null --frames $frames|render OK|fps=fps"
}

bench_once() { # side spec
    local side="$1" id cmd prefix keys out kv v
    IFS='|' read -r id cmd prefix keys <<<"$2"
    if [ -e "$work/res/skip.$id" ] || [ "$SECONDS" -ge "$hard_deadline" ]; then
        out=""
        echo "$side: skipped (an earlier timeout, or past the deadline + 120 s)" >"$work/err"
    else
        # shellcheck disable=SC2086
        out="$(run_side "$side" "$bench_timeout" $cmd)"
        case $? in 124 | 137) touch "$work/res/skip.$id" ;; esac
    fi
    for kv in ${keys//,/ }; do
        v="$(field "$prefix" "${kv%%=*}" <<<"$out")"
        if [ -z "$v" ]; then
            v=nan
            echo "$side: $(last_err)" >"$work/res/${kv#*=}.err"
        fi
        echo "$v" >>"$work/res/${kv#*=}.$side"
    done
}

run_benchmarks() {
    local r spec sides
    local deadline=$((SECONDS + ${GPU_CHECK_DEADLINE_S:-360}))
    hard_deadline=$((deadline + 120))
    for r in $(seq "$rounds"); do
        if [ "$r" -gt 1 ] && [ "$SECONDS" -ge "$deadline" ]; then
            echo "gpu-check: deadline reached: $((r - 1)) of $rounds rounds run" >&2
            rounds="$((r - 1)) of $rounds (GPU_CHECK_DEADLINE_S)"
            break
        fi
        echo "gpu-check: benchmark round $r/$rounds (${SECONDS}s)" >&2
        if [ $((r % 2)) = 1 ]; then sides="native venus"; else sides="venus native"; fi
        while read -r spec; do
            for side in $sides; do bench_once "$side" "$spec"; done
        done < <(bench_specs)
    done
    local mib=$((${stream_args[1]} * 2)) goal
    metric_row stream "stream saxpy 2x${stream_args[1]} MiB dev-local (${mib} MiB), wait each submit" GB/s hi
    metric_row job "  same job, ${job_args[5]} submits, 2 in flight" GB/s hi
    if [ "$short" = 1 ] || [ "$mib" -lt 1024 ]; then
        row "stream >= 1 GiB" "" "" "" "" "" "SKIPPED (--short)"
    fi
    metric_row flops "compute-bound u32 LCG" Gops hi
    metric_row upload "mapped upload -> shader ${upload_args[1]} MiB" GB/s hi
    metric_row write "  of which CPU write to mapped" GB/s hi
    metric_row saxpy "saxpy on mapped memory n=$saxpy_n" GB/s hi
    metric_row latency "dispatch+fence wait ($submits)" "us median" lo
    metric_row fps "render frames ($frames)" frames/s hi
}

# Medians and ratio spread of one metric; the status says whether the goal was met.
metric_row() {
    local id="$1" label="$2" unit="$3" dir="$4" stats status
    stats="$(paste "$work/res/$id.native" "$work/res/$id.venus" | awk -v dir="$dir" -f "$here/stats.awk")"
    local nat ven ratio spread over bad
    IFS='|' read -r nat ven ratio spread over bad <<<"$stats"
    if [ "$bad" != 0 ]; then
        status="FAIL ($bad runs): $(cat "$work/res/$id.err" 2>/dev/null)"
        failed=$((failed + 1))
    elif [ "$dir" = lo ]; then
        status="overhead ${over} us/submit"
    elif [ "$short" = 1 ] || [ "$is_gpu" = 0 ]; then
        status="ok; goal >=0.97 SKIPPED (no GPU)"
    elif awk -v r="$ratio" 'BEGIN { exit !(r >= 0.97) }'; then
        status="ok; goal >=0.97 met"
    else
        status="ok; goal >=0.97 MISSED"
    fi
    [ "$short" = 1 ] && [ "$dir" = lo ] && status="$status (no GPU: informative)"
    row "$label" "$unit" "$nat" "$ven" "$ratio" "$spread" "$status"
}

finish_table() {
    if [ -n "$server_pid" ]; then
        if kill -0 "$server_pid" 2>/dev/null; then
            row "venus-server alive at the end" "" "" "yes" "" "" PASS
            row "venus-server open fds / threads at the end" "" "" \
                "$(ls "/proc/$server_pid/fd" 2>/dev/null | wc -l) / $(ls "/proc/$server_pid/task" 2>/dev/null | wc -l)" "" "" \
                "INFO (after $(grep -c 'context created conn' "$work/server.log") contexts)"
        else
            fail_row "venus-server alive at the end" "" "" "died" "" "" "FAIL: $(tail -n 1 "$work/server.log")"
        fi
    fi
    local errors
    errors=$(grep -c -E ' ERROR |panicked' "$work/server.log" 2>/dev/null)
    [ -f "$work/server.log" ] && row "server log ERROR lines" "" "" "${errors:-0}" "" "" INFO
    echo
    echo "gpu-check $( [ "$short" = 1 ] && echo --short || echo full): host ICD $host_icd; pack: $(head -n 2 "$dir/MANIFEST" 2>/dev/null | tr "\n" ";")"
    echo "rounds ${rounds:-0} (interleaved, first side alternating); ratio = venus/native per round"
    awk -F'|' -f "$here/table.awk" "$work/table"
    if [ "$failed" = 0 ]; then echo "gpu-check: PASS"; else echo "gpu-check: FAIL ($failed failed)"; fi
}
