#!/usr/bin/env bash
# Runs every test of the workspace from a fresh machine that has Rust and Node.js/npm:
# formatting, lints, unit/integration/doc tests, the differential tests against the real
# @sentry/core, the load/concurrency/fault checks against the running demo, a short fuzzing
# pass and the quick benchmarks. Installs what they need (Chromium, npm and PyPI packages, wrk,
# cargo-fuzz) itself.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step also prints the disk left, so a CI run that fills the disk shows where.
step() { printf '\n==> %s   [%s free]\n' "$*" "$(df -h --output=avail . | tail -n 1 | tr -d ' ')"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, all features, -D warnings)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "each feature alone (clippy, -D warnings): sentry-meta-core and sentry-meta"
for package in sentry-meta-core sentry-meta; do
  cargo clippy -p "$package" --no-default-features --locked -- -D warnings
  for feature in $(cargo metadata --no-deps --format-version 1 --locked | python3 -c '
import json, sys
package = next(p for p in json.load(sys.stdin)["packages"] if p["name"] == sys.argv[1])
print(" ".join(f for f in package["features"] if f != "default"))' "$package"); do
    cargo clippy -p "$package" --no-default-features --features "$feature" --locked -- -D warnings
  done
done

step "cargo doc (all features, -D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --locked
# Each crate's front page opens with why and a Rust example (read with an HTML parser).
python3 scripts/doc_front_page.py "${CARGO_TARGET_DIR:-target}/doc" sentry_meta sentry_meta_core

step "public API: the listings in docs/public-api/ match the code (bless: bash scripts/public-api.sh --bless)"
bash scripts/public-api.sh

step "cargo package: both crates packaged and built from their packages, with README and licences only"
bash scripts/package.sh

step "headless Chromium for the end-to-end tests"
bash scripts/install-browser.sh

step "cargo test (all features, doc tests included; the end-to-end tests build the demo's browser bundle with npm)"
cargo test --workspace --all-features --locked

step "differential tests against @sentry/core"
bash scripts/peer-check.sh

step "load, concurrency and faults against the running demo (quick: functional checks fail the run)"
bash scripts/load.sh --quick

step "fuzzing: a short pass of every cargo-fuzz target (30 s each)"
bash scripts/fuzz.sh 30

step "benchmarks, quick mode (reports the targets; fails on errors only)"
bash scripts/bench.sh --quick

step "done: the target dir holds $(du -sh "${CARGO_TARGET_DIR:-target}" | cut -f1)"
