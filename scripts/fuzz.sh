#!/usr/bin/env bash
# Fuzzes with cargo-fuzz (libFuzzer), each target for SECONDS (default 60):
#   decode_stream      the input as a command stream (decode_command until empty or an error)
#   decode_reply       the input as a sequence of replies (decode_reply)
#     (each decoded value must re-encode, decode again and re-encode to the same bytes)
#   vtest_framing      the input as a client's vtest byte stream, served by the real connection
#                      state machine over the stub backend (fuzz/src/vtest.rs)
#   dispatch_lavapipe  the input as a command stream executed by the real dispatch on lavapipe,
#                      after a recorded prefix created the instance and device (fuzz/src/dispatch.rs)
# (fuzz/src/lib.rs has the invariants). Exits non-zero if a target crashes (panic, abort,
# timeout, out-of-memory); libFuzzer's reproducer is then in fuzz/artifacts/<target>/.
#
# Steps: installs cargo-fuzz if `cargo fuzz --version` fails (`cargo install cargo-fuzz --locked`);
# builds the targets and the seed writers in one `cargo fuzz build`; writes the seed corpus
# (every command id with a wire encoding, a few random encodings each; a small vtest session)
# into fuzz/corpus/<target>/ (git-ignored; what libFuzzer adds there is kept for the next run);
# for dispatch_lavapipe, records `venus-compute` and `venus-render` through
# `venus-server --record` into fuzz/recordings/ (git-ignored; needs lavapipe and Mesa's Venus
# ICD, and builds venus-server and the test programs in the main workspace) and turns them into
# its corpus and its prefix (fuzz/src/bin/seed_dispatch.rs); then fuzzes.
# Without lavapipe or the Venus ICD, dispatch_lavapipe is skipped, or fails when CI is set.
#
# Time: the targets run FUZZ_JOBS at a time (default: the number of cores, at most 2), each for
# SECONDS on its own core: with 4 targets and 2 cores the wall time is about 2 x SECONDS plus
# the build.
#
# Stable Rust: cargo-fuzz's default sanitizer (ASan) passes -Zsanitizer=address, which stable
# rustc refuses. The default here is `--sanitizer none` (libFuzzer coverage only needs stable
# -C flags); the crate under test forbids unsafe code, so ASan would add little but a 5x
# slowdown. FUZZ_SANITIZER=address opts into ASan by setting RUSTC_BOOTSTRAP=1 (stable ships the
# ASan runtime; unsupported escape hatch) and builds into fuzz/target/asan.
# Debug assertions and overflow checks are on (`-a`): an overflow in length arithmetic panics.
#
# Usage: scripts/fuzz.sh [SECONDS]
# Environment:
#   FUZZ_SANITIZER=none|address   default none (see above)
#   FUZZ_TARGETS="decode_stream decode_reply vtest_framing dispatch_lavapipe"   which to run
#   FUZZ_JOBS=N                   targets run at the same time (default min(nproc, 2))
#   FUZZ_ARGS="..."               extra libFuzzer flags for every target (e.g. -max_len=16384)
#   FUZZ_SEED=N                   libFuzzer's -seed for every target (the CI suite sets 1, so its
#                                 run is reproducible; unset: a random seed, for real fuzzing)
# Logs: fuzz/artifacts/<target>.log in full (the console shows them less the per-input lines).
set -euo pipefail

seconds="${1:-60}"
case "$seconds" in
  ''|*[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, got '$seconds'" >&2; exit 2 ;;
esac
[ "$seconds" -ge 1 ] || { echo "fuzz.sh: SECONDS must be at least 1" >&2; exit 2; }
sanitizer="${FUZZ_SANITIZER:-none}"
targets=(${FUZZ_TARGETS:-decode_stream decode_reply vtest_framing dispatch_lavapipe})
jobs="${FUZZ_JOBS:-$(( $(nproc) < 2 ? $(nproc) : 2 ))}"
extra=(${FUZZ_ARGS:-})

cd "$(dirname "$0")/.."
root="$PWD"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
echo "== $(cargo fuzz --version), $(rustc --version)"

build=(--sanitizer "$sanitizer" --debug-assertions)
triple="$(rustc -vV | sed -n 's/^host: //p')"
target_dir="$root/fuzz/target"
case "$sanitizer" in
  none) ;;
  address)
    export RUSTC_BOOTSTRAP=1
    target_dir="$root/fuzz/target/asan"
    build+=(--target-dir "$target_dir")
    ;;
  *) echo "fuzz.sh: FUZZ_SANITIZER must be none or address, got '$sanitizer'" >&2; exit 2 ;;
esac

echo "== building fuzz targets (release, sancov, sanitizer=$sanitizer)"
t0=$(date +%s)
cargo fuzz build "${build[@]}"
echo "== build took $(( $(date +%s) - t0 )) s"

echo "== writing seed corpus"
"$target_dir/$triple/release/seed" "$root/fuzz/corpus"

first_file() { ls $1 2>/dev/null | head -n1; }
lavapipe_icd="$(first_file '/usr/share/vulkan/icd.d/lvp_icd*.json')"
venus_icd="$(first_file '/usr/share/vulkan/icd.d/virtio_icd*.json')"

# Records PROGRAM ARGS... through `venus-server --record fuzz/recordings/NAME`.
record_program() { # name program args...
  local name="$1"; shift
  local dir="$root/fuzz/recordings/$name" sock="$root/fuzz/recordings/$name.sock"
  rm -rf "$dir" "$sock"
  VK_DRIVER_FILES="$lavapipe_icd" VENUS_LOG=warn "$root/target/debug/venus-server" \
    --socket-path "$sock" --record "$dir" --no-loop-or-fork &
  local server=$!
  for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
  VK_DRIVER_FILES="$venus_icd" VN_DEBUG=vtest VTEST_SOCKET_NAME="$sock" "$@" >/dev/null
  wait "$server"
  [ -f "$dir/ctx-1.vrec" ] || { echo "fuzz.sh: no recording of $name" >&2; return 1; }
}

if [[ " ${targets[*]} " == *" dispatch_lavapipe "* ]]; then
  if [ -z "$lavapipe_icd" ] || [ -z "$venus_icd" ]; then
    if [ -n "${CI:-}" ]; then
      echo "fuzz.sh: dispatch_lavapipe needs lavapipe and Mesa's Venus ICD (scripts/setup-system.sh)" >&2
      exit 1
    fi
    echo "== dispatch_lavapipe: SKIPPED: lavapipe or the Venus ICD is not installed (scripts/setup-system.sh installs them)"
    targets=(${targets[@]/dispatch_lavapipe})
  else
    echo "== recording venus-compute and venus-render for dispatch_lavapipe"
    cargo build -q -p venus-server -p venus-testapps --bin venus-compute --bin venus-render
    mkdir -p "$root/fuzz/recordings"
    record_program compute "$root/target/debug/venus-compute" all --n 4096 --reps 1
    record_program render "$root/target/debug/venus-render" "$root/fuzz/recordings/render.rgba"
    "$target_dir/$triple/release/seed_dispatch" "$root/fuzz/corpus/dispatch_lavapipe" \
      "$root/fuzz/recordings/prefix.vrec" \
      "$root/fuzz/recordings/compute/ctx-1.vrec" "$root/fuzz/recordings/render/ctx-1.vrec"
    # Past findings stay in the corpus as seeds (fuzz/regressions/; their object ids are their
    # own prefix's, so some commands fail here, the rest still steers the fuzzer there).
    cp "$root"/fuzz/regressions/dispatch_lavapipe/*.input "$root/fuzz/corpus/dispatch_lavapipe/"
    export VENUS_FUZZ_PREFIX="$root/fuzz/recordings/prefix.vrec"
    export VK_DRIVER_FILES="$lavapipe_icd"
  fi
fi

# libFuzzer flags: -rss_limit_mb caps memory (the decoder's arena is capped at 256 MiB per
# value); -timeout flags any single input running longer than 30 s as a hang.
lf_flags=(-rss_limit_mb=2048 -timeout=30 -print_final_stats=1)
if [ -n "${FUZZ_SEED:-}" ]; then lf_flags+=(-seed="$FUZZ_SEED"); fi
mkdir -p "$root/fuzz/artifacts"

run_target() { # target seconds
  local t="$1" s="$2" log="$root/fuzz/artifacts/$1.log"
  echo "== fuzzing $t for $s s (log: fuzz/artifacts/$t.log)"
  local rc=0
  # The outer timeout: a crash handler that deadlocks (heap corruption) must not hang the run.
  VENUS_FUZZ_LAST="$root/fuzz/artifacts/$t.last-input" timeout -k 10 $(( s + 120 )) \
    cargo fuzz run "${build[@]}" "$t" -- -max_total_time="$s" "${lf_flags[@]}" "${extra[@]}" >"$log" 2>&1 || rc=$?
  # Console: all but the per-input progress lines, the dictionary and the warnings that every
  # build without a sanitizer prints (no __sanitizer_* stack-trace hooks).
  grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE)|^[[:space:]]+NEW_FUNC|^"|# Uses: |^WARNING: Failed to find function "__sanitizer_' \
    "$log" | sed "s/^/[$t] /" || true
  if [ "$rc" -ne 0 ]; then
    echo "== $t FAILED (exit $rc): reproducer in fuzz/artifacts/$t/ (dispatch_lavapipe: also"
    echo "   fuzz/artifacts/$t.last-input, the input that was running); replay with:"
    echo "   cargo fuzz run ${build[*]} $t fuzz/artifacts/$t/<file>"
  else
    echo "== $t: no crash"
  fi
  return "$rc"
}

failed=()
# cargo fuzz run only checks the build (done above), then execs libFuzzer: the runs share no
# lock and each uses one core. Batches of $jobs targets.
[ "$jobs" -ge 1 ] || jobs=1
for (( b = 0; b < ${#targets[@]}; b += jobs )); do
  batch=("${targets[@]:b:jobs}")
  pids=()
  for t in "${batch[@]}"; do
    run_target "$t" "$seconds" > "$root/fuzz/artifacts/$t.summary" 2>&1 &
    pids+=($!)
  done
  for i in "${!batch[@]}"; do
    wait "${pids[$i]}" || failed+=("${batch[$i]}")
    cat "$root/fuzz/artifacts/${batch[$i]}.summary"
  done
done

if [ "${#failed[@]}" -ne 0 ]; then
  echo "== fuzz.sh: crash in: ${failed[*]}" >&2
  exit 1
fi
echo "== fuzz.sh: ${targets[*]}: no crash in ${seconds} s"
