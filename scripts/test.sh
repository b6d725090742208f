#!/usr/bin/env bash
# The project's whole test suite, exactly what CI runs (.ci/run calls this script).
# Installs what is missing (idempotently), then: formatting, lints, the generated-code check,
# the spec-citation check, the macOS (aarch64-apple-darwin) check and lints, every
# unit/property/golden/end-to-end test (Mesa 25.0.7 and, from a Debian sid root, Mesa 26.2.6
# clients), the short GPU check on lavapipe, and a 60-second run of each fuzz target (decoder,
# reply decoder, vtest framing, decode + dispatch on lavapipe), two at a time (seed 1).
# Usage: scripts/test.sh            (FUZZ_SECONDS=N to change the fuzzing time)
set -euo pipefail
cd "$(dirname "$0")/.."

# The tools every test needs were just installed (setup-system.sh below), so a test that finds
# one missing must fail, not skip: CI set (any non-empty value) does that (venus-testkit).
export CI="${CI:-1}"

step() { printf '\n==> %s\n' "$*"; }

step "system packages"
scripts/setup-system.sh

step "the Debian sid client root (Mesa 26.2.6; built once, ~2 min)"
scripts/setup-sid-client.sh

step "rustfmt / clippy components"
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

step "cargo fmt --check"
cargo fmt --all -- --check

step "generated code is reproducible (cargo xtask codegen --check)"
cargo xtask codegen --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --features venus-protocol/random -- -D warnings

step "spec citations resolve (docs/spec)"
scripts/check-spec-citations.sh

# macOS stays compiling: check and lint for Apple silicon (no linker or SDK needed for these).
# fuzz/ is its own workspace (cargo-fuzz, Linux sanitizers) and is not part of this check.
step "macOS target: cargo check + clippy --target aarch64-apple-darwin"
rustup target list --installed 2>/dev/null | grep -qx aarch64-apple-darwin ||
  rustup target add aarch64-apple-darwin
# venus-testapps is the Linux end-to-end harness (Mesa's vtest client, /proc, Xvfb, lavapipe):
# it never runs on a Mac host, so it is not checked for one.
cargo check --workspace --exclude venus-testapps --all-targets --target aarch64-apple-darwin
cargo clippy --workspace --exclude venus-testapps --all-targets --target aarch64-apple-darwin -- -D warnings

# The end-to-end tests start the workspace's programs (venus-server, venus-replay, the test
# programs) from target/debug; `cargo test` alone builds only the binaries of packages that have
# integration tests, so build them all first (a stale binary would test old code).
step "cargo build --workspace --bins"
cargo build --workspace --bins

step "cargo test (CI=$CI: a missing tool fails the test)"
cargo test --workspace

step "GPU check, short variant on lavapipe (scripts/gpu-check.sh; GPU-only rows say SKIPPED)"
scripts/gpu-check.sh pack --debug target/gpu-ci
scripts/gpu-check.sh run target/gpu-ci --short

# A fixed seed makes the suite's fuzzing reproducible (a CI failure can be replayed exactly);
# long runs with random seeds are separate (docs/benchmarks.md, "Fuzzing").
suite_targets="${FUZZ_TARGETS:-decode_stream decode_reply vtest_framing dispatch_lavapipe}"
step "fuzzing $suite_targets for ${FUZZ_SECONDS:-60} s each (two at a time, seed ${FUZZ_SEED-1})"
FUZZ_TARGETS="$suite_targets" FUZZ_SEED="${FUZZ_SEED-1}" scripts/fuzz.sh "${FUZZ_SECONDS:-60}"

step "all tests passed"
