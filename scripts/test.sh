#!/usr/bin/env bash
# Runs every test of the workspace from a fresh machine that has Rust and Node.js/npm:
# formatting, lints, unit/integration/doc tests, and the differential tests against the real
# @sentry/core. Installs what the tests need (the peer's npm packages) itself.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, all features, -D warnings)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "cargo doc (all features, -D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --locked

step "headless Chromium for the end-to-end tests"
bash scripts/install-browser.sh

step "cargo test (all features, doc tests included; the end-to-end tests build the demo's browser bundle with npm)"
cargo test --workspace --all-features --locked

step "differential tests against @sentry/core"
bash scripts/peer-check.sh
