#!/usr/bin/env bash
# The leak soak (docs/soak.md): builds venus-server and venus-soak and runs the soak against
# lavapipe. Every argument goes to venus-soak (default: 1000 cycles, 4 workers):
#   scripts/soak.sh
#   scripts/soak.sh --cycles 200 --workers 8 --log /tmp/soak.log
# PROFILE=release builds and runs the release binaries. Exit status: venus-soak's (0 passed,
# 1 failed, 2 tools missing).
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${PROFILE:-debug}"
flags=()
[ "$profile" = release ] && flags=(--release)
cargo build "${flags[@]}" -p venus-server -p venus-testapps --bin venus-server --bin venus-soak \
    --bin venus-compute
exec "target/$profile/venus-soak" "$@"
