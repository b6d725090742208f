#!/usr/bin/env bash
# Fuzzes the venus-protocol decoder with cargo-fuzz (libFuzzer) for SECONDS (default 60):
#   decode_stream  the input as a command stream (decode_command until empty or an error)
#   decode_reply   the input as a sequence of replies (decode_reply)
# Each decoded value must re-encode, decode again and re-encode to the same bytes
# (fuzz/src/lib.rs has the invariants). Exits non-zero if either target crashes (panic, abort,
# timeout, out-of-memory); libFuzzer's reproducer is then in fuzz/artifacts/<target>/.
#
# Steps: installs cargo-fuzz if `cargo fuzz --version` fails (`cargo install cargo-fuzz --locked`);
# builds the targets and the seed writer in one `cargo fuzz build`; writes the seed corpus
# (every command id with a wire encoding, a few random encodings each) into
# fuzz/corpus/<target>/ (git-ignored; what libFuzzer adds there is kept for the next run);
# then fuzzes.
#
# Time: with 2 or more cores the targets run at the same time, each for SECONDS on its own core
# (wall time about SECONDS plus the build); on one core they run one after another and share
# SECONDS equally.
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
#   FUZZ_TARGETS="decode_stream decode_reply"   which targets to run
#   FUZZ_ARGS="..."               extra libFuzzer flags for every target (e.g. -max_len=16384)
# Logs: fuzz/artifacts/<target>.log in full (the console shows them less the per-input lines).
set -euo pipefail

seconds="${1:-60}"
case "$seconds" in
  ''|*[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, got '$seconds'" >&2; exit 2 ;;
esac
[ "$seconds" -ge 1 ] || { echo "fuzz.sh: SECONDS must be at least 1" >&2; exit 2; }
sanitizer="${FUZZ_SANITIZER:-none}"
targets=(${FUZZ_TARGETS:-decode_stream decode_reply})
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

# libFuzzer flags: -rss_limit_mb caps memory (the decoder's arena is capped at 256 MiB per
# value); -timeout flags any single input running longer than 30 s as a hang.
lf_flags=(-rss_limit_mb=2048 -timeout=30 -print_final_stats=1)
mkdir -p "$root/fuzz/artifacts"

run_target() { # target seconds
  local t="$1" s="$2" log="$root/fuzz/artifacts/$1.log"
  echo "== fuzzing $t for $s s (log: fuzz/artifacts/$t.log)"
  local rc=0
  cargo fuzz run "${build[@]}" "$t" -- -max_total_time="$s" "${lf_flags[@]}" "${extra[@]}" >"$log" 2>&1 || rc=$?
  # Console: all but the per-input progress lines, the dictionary and the warnings that every
  # build without a sanitizer prints (no __sanitizer_* stack-trace hooks).
  grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE)|^[[:space:]]+NEW_FUNC|^"|# Uses: |^WARNING: Failed to find function "__sanitizer_' \
    "$log" | sed "s/^/[$t] /" || true
  if [ "$rc" -ne 0 ]; then
    echo "== $t FAILED (exit $rc): reproducer in fuzz/artifacts/$t/; replay with:"
    echo "   cargo fuzz run ${build[*]} $t fuzz/artifacts/$t/<file>"
  else
    echo "== $t: no crash"
  fi
  return "$rc"
}

failed=()
if [ "$(nproc)" -ge 2 ] && [ "${#targets[@]}" -gt 1 ]; then
  # cargo fuzz run only checks the build (done above), then execs libFuzzer: the runs share no
  # lock and each uses one core.
  pids=()
  for t in "${targets[@]}"; do
    run_target "$t" "$seconds" > "$root/fuzz/artifacts/$t.summary" 2>&1 &
    pids+=($!)
  done
  for i in "${!targets[@]}"; do
    wait "${pids[$i]}" || failed+=("${targets[$i]}")
    cat "$root/fuzz/artifacts/${targets[$i]}.summary"
  done
else
  s=$(( seconds / ${#targets[@]} ))
  [ "$s" -ge 1 ] || s=1
  for t in "${targets[@]}"; do
    run_target "$t" "$s" || failed+=("$t")
  done
fi

if [ "${#failed[@]}" -ne 0 ]; then
  echo "== fuzz.sh: crash in: ${failed[*]}" >&2
  exit 1
fi
echo "== fuzz.sh: ${targets[*]}: no crash in ${seconds} s"
