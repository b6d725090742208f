#!/usr/bin/env bash
# Issue 11's guest test: QEMU (Debian trixie, QEMU 10, TCG) loads our libvirglrenderer.so.1,
# boots a small guest, and in the guest stock Mesa's Venus driver runs vulkaninfo --summary
# (must name "Virtio-GPU Venus (llvmpipe"), venus-compute (SAXPY + prefix sum in mapped memory,
# exact) and venus-sync (timeline semaphores across threads; fence latency).
# Usage: scripts/qemu/guest-test.sh [ROOT] [RENDERER]   (ROOT default /tmp/venus-qemu-root;
#        RENDERER venus-rs (default) or reference: the root's C virglrenderer, for the record)
# Needs root, network the first time (make-root.sh), about 1 minute per guest run.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=${1:-/tmp/venus-qemu-root}; renderer=${2:-venus-rs}
guest=/tmp/venus-qemu-guest
scripts/qemu/make-root.sh "$root"
scripts/qemu/make-guest.sh "$root" "$guest"
cargo build -p virglrenderer-abi --lib
cargo build -p venus-testapps --bin venus-compute --bin venus-sync
install -D target/debug/venus-compute "$root/opt/venus-rs/bin/venus-compute"
install -D target/debug/venus-sync "$root/opt/venus-rs/bin/venus-sync"
fail=0
check() { # GUESTCMD EXPECTED-REGEX...
  local cmd=$1; shift
  local log; log=$(GUEST_TIMEOUT=${GUEST_TIMEOUT:-300} scripts/qemu/run-guest.sh "$root" "$guest" \
    "$renderer" target/debug/libvirglrenderer.so "$cmd" 2>&1 || true)
  for re in "$@" 'GUEST-EXIT=0'; do
    if grep -qE "$re" <<<"$log"; then echo "ok   $cmd: $(grep -E "$re" <<<"$log" | head -1)"
    else echo "FAIL $cmd: no /$re/"; fail=1; fi
  done
  grep -E "GUEST-EXIT|ERROR|rror" <<<"$log" | head -5 | sed 's/^/     /'
}
check vulkaninfo+--summary 'deviceName += Virtio-GPU Venus \(llvmpipe'
check /opt/venus-rs/bin/venus-compute+all+--n+65536+--reps+1 '^saxpy OK' '^scan OK'
check /opt/venus-rs/bin/venus-sync+timeline '^timeline OK'
check /opt/venus-rs/bin/venus-sync+latency+--count+50 '^latency OK'
exit $fail
