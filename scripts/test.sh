#!/usr/bin/env bash
# The project's whole test suite, exactly what CI runs (.ci/run calls this script).
# Installs what is missing (idempotently), then: formatting, lints, the generated-code check,
# every unit/property/golden/end-to-end test, and a 60-second fuzzing run of the decoder.
# Usage: scripts/test.sh            (FUZZ_SECONDS=N to change the fuzzing time)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "system packages"
scripts/setup-system.sh

step "rustfmt / clippy components"
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

step "cargo fmt --check"
cargo fmt --all -- --check

step "generated code is reproducible (cargo xtask codegen --check)"
cargo xtask codegen --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --features venus-protocol/random -- -D warnings

step "cargo test"
cargo test --workspace

step "fuzzing the decoder for ${FUZZ_SECONDS:-60} s"
scripts/fuzz.sh "${FUZZ_SECONDS:-60}"

step "all tests passed"
