#!/usr/bin/env bash
# Every benchmark of docs/design.md "Performance targets", in one run, and the report:
#   1. micro (criterion): render vs its copy floor, DSC building, hostile incoming headers
#      (benches render, dsc, hostile of sentry-meta-core), and allocations and instructions
#      (scripts/instructions.sh, callgrind) per call of each benched operation;
#   2. per request and peers: scripts/bench-peers.sh (criterion bench per_request, Node's
#      getTraceMetaTags(), Python's trace_propagation_meta());
#   3. page: bench/page/run.sh (wrk against the demo's /minijinja, and /catalog, a page of a
#      real one's size, with and without tags; callgrind's instructions per request of every
#      engine's page, of /minijinja and /catalog in quick mode).
# Prints the targets with met / NOT met and writes the report with the tables, the machine
# (CPUs, load average before and after), the commands, the date and the tool versions.
#
#   bash scripts/bench.sh                  full run, for docs/benchmarks.md (~21 minutes once built)
#   bash scripts/bench.sh --quick          short run for CI (~6 minutes once built), report in
#                                          target/bench/benchmarks-quick.md
#   bash scripts/bench.sh [--quick] --out FILE    write the report to FILE instead
#
# Never fails on a missed target, only on errors. Builds first (not timed): the benches, the
# example, the release demo. Needs what bench-peers.sh and bench/page/run.sh need (Node + npm,
# python3 + venv, wrk: installed with apt-get when missing and running as root). Take full-mode
# figures when `uptime` shows a quiet machine; the report notes the load and the busiest
# processes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"; }

mode=full out=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    --quick) mode=quick ;;
    --full) mode=full ;;
    --out) [ "$#" -ge 2 ] || { usage >&2; exit 2; }; out=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$out" ]; then
  if [ "$mode" = full ]; then out=docs/benchmarks.md; else out=target/bench/benchmarks-quick.md; fi
fi

step() { printf '\n==> %s\n' "$*" >&2; }
need() { command -v "$1" >/dev/null 2>&1 || { echo "bench.sh: $1 not found ($2)" >&2; exit 1; }; }
need cargo "install Rust"
need python3 "install Python 3"

if [ "$mode" = quick ]; then
  criterion_args=(--warm-up-time 1 --measurement-time 2)
  peers_args=(--quick)
  page_args=(--quick)
  counted="minijinja catalog"
else
  criterion_args=(--warm-up-time 3 --measurement-time 5)
  peers_args=()
  page_args=()
  counted="minijinja askama maud tera handlebars catalog"
fi

work=target/bench
mkdir -p "$work"
commands="$work/commands.txt"
: >"$commands"
durations="$work/durations.txt"
: >"$durations"
now() { date +%s; }
run() { # label cmd...: runs, logs the command and its duration
  local label=$1 start
  shift
  step "$*"
  local cmd="$*"
  printf '%s\n' "${cmd//$PWD\//}" >>"$commands"
  start=$(now)
  "$@"
  echo "$label $(($(now) - start))" >>"$durations"
}

started=$(date -u +%Y-%m-%dT%H:%M:%S+00:00)
load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
ps -eo pcpu=,comm= --sort=-pcpu 2>/dev/null | awk '$1 >= 5 { print $2 " " $1 "%" }' | head -n 5 \
  >"$work/busy.txt" || true
step "load average before: $load_before"

# ---------------------------------------------------------------- builds (not timed)
build_start=$(now)
step "builds"
cargo bench -p sentry-meta-core --all-features --locked --no-run >&2
cargo build --profile bench -p sentry-meta-core --all-features --locked --example alloc_counts \
  --example instructions >&2
cargo build --release --locked -p sentry-meta-demo -p sentry-meta-load >&2
echo "builds $(($(now) - build_start))" >"$durations"
bench_start=$(now)

# ---------------------------------------------------------------- 1. micro
# A private CRITERION_HOME, emptied first: the estimates are this run's only.
micro_home="$PWD/$work/criterion"
rm -rf "$micro_home"
run micro env CRITERION_HOME="$micro_home" cargo bench -p sentry-meta-core --all-features --locked \
  --bench render --bench dsc --bench hostile -- --noplot "${criterion_args[@]}" >&2
run allocs cargo run --profile bench -q -p sentry-meta-core --all-features --locked \
  --example alloc_counts -- --json "$work/alloc-counts.json" >&2

# Instructions per call of the same operations (callgrind): counts that do not move with the load.
if command -v valgrind >/dev/null 2>&1 || [ "$(id -u)" = 0 ]; then
  run instructions bash scripts/instructions.sh --json "$work/instructions.json" >&2
else
  step "valgrind not found and not root: no instruction counts"
  rm -f "$work/instructions.json"
fi
# ---------------------------------------------------------------- 2. per request + peers
run peers bash scripts/bench-peers.sh "${peers_args[@]}" >&2

# ---------------------------------------------------------------- 3. page
run page bash bench/page/run.sh "${page_args[@]}" --count "$counted" --out "$work/page" >&2
run page-catalog bash bench/page/run.sh "${page_args[@]}" --page catalog --count "" \
  --out "$work/page-catalog" >&2

load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
echo "total-after-builds $(($(now) - bench_start))" >>"$durations"
python3 - "$durations" <<'EOF'
import json, sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
json.dump({k: int(v) for k, v in rows}, open(sys.argv[1] + ".json", "w"))
EOF

step "report (load average after: $load_after)"
python3 bench/report.py \
  --mode "$mode" \
  --out "$out" \
  --micro "$micro_home" \
  --peers target/bench-peers \
  --allocs "$work/alloc-counts.json" \
  --instructions "$work/instructions.json" \
  --page "$work/page" "$work/page-catalog" \
  --load-before "$load_before" \
  --load-after "$load_after" \
  --started "$started" \
  --durations "$durations.json" \
  --commands "$commands" \
  --busy "$work/busy.txt"
