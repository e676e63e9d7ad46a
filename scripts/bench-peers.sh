#!/usr/bin/env bash
# Peers benchmark (docs/design.md "Performance targets"): the per-request cost of the trace meta
# tags, side by side on this machine and on the same inputs, for
#   - Node:   getTraceMetaTags() of @sentry/core (bench/peers/node, pinned by package-lock.json)
#   - Python: sentry_sdk.get_current_scope().trace_propagation_meta()
#             (bench/peers/python, pinned by requirements.txt)
#   - ours:   the criterion bench `per_request` of sentry-meta-core (real `sentry` client).
# Prints a table with the speed-ups (goals: >= 20x Node, >= 50x Python) and writes it, with the
# machine and the command, to bench/peers/last-run.md.
#
#   bash scripts/bench-peers.sh           full run, for the docs (~2 minutes once built)
#   bash scripts/bench-peers.sh --quick   fewer iterations and criterion 1 s warm-up + 2 s
#                                         measurement: < 1 minute once the Rust bench is built
#
# Needs cargo, Node >= 20.19 with npm, and python3 with venv. Installs what it needs itself:
# `npm ci` in bench/peers/node when node_modules is missing or older than the lockfile, a venv
# in bench/peers/python/.venv when it is missing or was made from another requirements.txt.
# Only the npm registry and PyPI are contacted, and only then. No Sentry traffic: every client
# uses a transport that drops envelopes. Take figures for the docs on a quiet machine: the
# peers and criterion all measure wall time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

mode=full
case "${1:-}" in
  "" | --full) ;;
  --quick) mode=quick ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac
[ "$#" -le 1 ] || { usage >&2; exit 2; }

if [ "$mode" = quick ]; then
  node_args=(--warmup 50000 --batches 10 --iterations 50000)
  py_args=(--warmup 5000 --batches 10 --iterations 10000)
  criterion_args=(--warm-up-time 1 --measurement-time 2)
else
  node_args=(--warmup 200000 --batches 30 --iterations 100000)
  py_args=(--warmup 20000 --batches 30 --iterations 20000)
  criterion_args=(--warm-up-time 3 --measurement-time 5)
fi

step() { printf '\n==> %s\n' "$*" >&2; }
need() { command -v "$1" >/dev/null 2>&1 || { echo "bench-peers.sh: $1 not found ($2)" >&2; exit 1; }; }
need cargo "install Rust"
need node "install Node.js >= 20.19"
need npm "install npm"
PYTHON=${PYTHON:-python3}
need "$PYTHON" "install Python 3 (or set PYTHON)"

load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
out=target/bench-peers
mkdir -p "$out"

# ---------------------------------------------------------------- peers' packages
step "Node peer: bench/peers/node (@sentry/core from package-lock.json)"
(
  cd bench/peers/node
  stamp=node_modules/.package-lock.json   # written by npm ci
  if [ ! -d node_modules/@sentry/core ] || [ ! -f "$stamp" ] \
     || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
)

step "Python peer: bench/peers/python/.venv (requirements.txt)"
(
  cd bench/peers/python
  stamp=.venv/installed-requirements.txt
  if [ ! -x .venv/bin/python ] || ! cmp -s requirements.txt "$stamp"; then
    rm -rf .venv
    "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
    cp requirements.txt "$stamp"
  fi
)

# ---------------------------------------------------------------- ours
# A private CRITERION_HOME, emptied first: the estimates read below are this run's, never a
# file left by another run (or another engineer's run of the same bench on a shared machine).
criterion_home="$PWD/$out/criterion"
rm -rf "$criterion_home"
rust_cmd=(cargo bench -p sentry-meta-core --all-features --locked --bench per_request -- --noplot
  "${criterion_args[@]}")
step "ours: ${rust_cmd[*]}"
CRITERION_HOME="$criterion_home" "${rust_cmd[@]}" >&2

# ---------------------------------------------------------------- peers
node_cmd=(node bench/peers/node/bench.mjs "${node_args[@]}")
step "Node: ${node_cmd[*]}"
"${node_cmd[@]}" >"$out/node.txt" 2>"$out/node.err" || { cat "$out/node.err" >&2; exit 1; }
cat "$out/node.err" >>"$out/node.txt"
# The same call as a Node server makes it: @sentry/node, the span in AsyncLocalStorage.
node_als_cmd=(node bench/peers/node/bench.mjs --sdk node "${node_args[@]}")
step "Node server: ${node_als_cmd[*]}"
"${node_als_cmd[@]}" >"$out/node-als.txt" 2>"$out/node-als.err" \
  || { cat "$out/node-als.err" >&2; exit 1; }
cat "$out/node-als.err" >>"$out/node-als.txt"

py_cmd=(bench/peers/python/.venv/bin/python bench/peers/python/bench.py "${py_args[@]}")
step "Python: ${py_cmd[*]}"
"${py_cmd[@]}" >"$out/python.txt" 2>"$out/python.err" || { cat "$out/python.err" >&2; exit 1; }
cat "$out/python.err" >>"$out/python.txt"

# ---------------------------------------------------------------- table
step "table"
BENCH_PEERS_STEPS="CRITERION_HOME=$out/criterion ${rust_cmd[*]}
${node_cmd[*]}
${node_als_cmd[*]}
${py_cmd[*]}" \
  "$PYTHON" bench/peers/report.py \
  --mode "$mode" \
  --command "bash scripts/bench-peers.sh${1:+ $1}" \
  --load-before "$load_before" \
  --node "$out/node.txt" \
  --node-als "$out/node-als.txt" \
  --python "$out/python.txt" \
  --criterion "$criterion_home" \
  --out bench/peers/last-run.md
