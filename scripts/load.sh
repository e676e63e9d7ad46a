#!/usr/bin/env bash
# Load, concurrency and fault runs against the running demo (the hardening issue's figures):
# bench/load (crate sentry-meta-load) starts the demo's release binary as a process of its own
# and loads its /minijinja page from 64 concurrent clients:
#   - 20,000 requests without and 20,000 with incoming trace headers: 0 errors, no trace id
#     shared, callers' traces continued, every page's trace id that of its own server
#     transaction (read back from the envelopes the embedded sink captured), memory before/after;
#   - the same page with the DSN's ingest healthy, refusing connections, black-holed, answering
#     500 and 429, one demo per case (and a second healthy one as a control), the paced load
#     interleaved between them in slices: page latency p50/p99 against the healthy case, the
#     demo's CPU per page, panics, memory;
#   - the embedded trace sink under abuse (issue 13), its /askama page measured meanwhile:
#     envelope bombs (4 KB gzipped, 4 MB inflated) from 4 clients, 4 concurrent /traces at
#     300,000 stored spans (100,000 with --quick), abandoned /traces; page p50 within 2x of
#     idle, peak memory under 150 MiB.
#
#   bash scripts/load.sh            full run (5 cycles of fault slices), writes docs/load.md
#                                   (~7 minutes)
#   bash scripts/load.sh --quick    one cycle, writes target/load/load-quick.md (CI, ~1.5 minutes)
#   bash scripts/load.sh [--quick] --out FILE
#   bash scripts/load.sh --only abuse[,load,faults]   only those runs
#   bash scripts/load.sh --baseline BINARY            the abuse runs against an earlier build too
#
# Fails when a functional check fails (errors, shared or wrong trace ids, transactions missing,
# a panic, memory growth, the abuse's page p50 or peak memory); other latency is reported, not
# enforced. With 2 or more CPUs the demos run on CPU 0 and the load on CPU 1. The demo's
# browser bundle needs npm on its first start.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() { sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

quick=() out="" extra=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --quick) quick=(--quick) ;;
    --out) [ "$#" -ge 2 ] || { usage >&2; exit 2; }; out=$2; shift ;;
    --only | --baseline) [ "$#" -ge 2 ] || { usage >&2; exit 2; }; extra+=("$1" "$2"); shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$out" ]; then
  if [ "${#quick[@]}" = 0 ]; then out=docs/load.md; else out=target/load/load-quick.md; fi
fi
mkdir -p target/load "$(dirname "$out")"

# Built together, so both share one set of dependency features (and one build).
build=(cargo build --release --locked -p sentry-meta-demo -p sentry-meta-load)
printf '\n==> %s\n' "${build[*]}" >&2
"${build[@]}" >&2

pin=() demo_cpu=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
  pin=(taskset -c 1) demo_cpu=(--demo-cpu 0)
fi
release="${CARGO_TARGET_DIR:-target}/release"
cmd=("${pin[@]}" "$release/sentry-meta-load" --demo "$release/sentry-meta-demo"
  "${demo_cpu[@]}" "${quick[@]}" "${extra[@]}" --work target/load --out "$out"
  --stamp "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')")
printf '\n==> %s\n' "${cmd[*]}" >&2
"${cmd[@]}"
