#!/usr/bin/env bash
# Page benchmark (docs/design.md "Performance targets": a real axum page behind the layer with tags
# keeps >= 98% of the throughput of the same page without tags).
#
# Runs one of the demo's pages (`--page`, default `/minijinja`; `/catalog` is the one of a real
# page's size, 220 rows read from SQLite) three times from the same release binary, behind
# NewSentryLayer -> SentryMetaLayer (on; it starts the request's transaction), or
# NewSentryLayer -> SentryHttpLayer::enable_transaction() (off, constant):
#   on:       `--tags on`        the layout's sentry_meta() writes the tags (the default demo);
#   off:      `--tags off`       no SentryMetaLayer, the layout's helper writes nothing;
#   constant: `--tags constant`  as off, but the helper writes one tag pair made at start, as
#             long as on's: the same bytes without the work, which prices the bytes alone.
# All servers run without `DscTransport` (`--envelope-dsc false`): it writes the envelope on the
# request's thread, work that the transport thread would otherwise do, but that the black-hole
# ingest below spares the other modes; its cost is reported apart. All servers run for the
# whole run, sampling every transaction (rate 1.0), with their DSN on
# an ingest that accepts connections and never answers: the SDK's transport holds its first
# envelope and drops the rest at its bounded queue, so that storing envelopes (the embedded
# sink's SQLite writes, on the server's CPU) does not add its noise to a comparison where it
# would weigh the same in both modes. wrk loads one server at a time with a fixed number of
# connections, in many short rounds whose order goes through all six orders of the three modes
# (a Williams design: each mode in each position, and right after each other mode, equally
# often), so that drift on a shared machine hits all alike; the ratio is the median of the
# rounds' paired ratios. With 2 or more CPUs, the servers are pinned to CPU 0 and
# wrk to CPU 1 (taskset). Where it can (root), the run holds /dev/cpu_dma_latency at 0 µs, so idle CPUs poll
# instead of halting: on a virtual machine, waking a halted CPU costs a hypervisor exit that
# would be charged to whichever request comes next (what tuned's latency-performance profile
# and cyclictest do for the same reason).
#
#   bash bench/page/run.sh [--quick] [--page SLUG] [--count "SLUG…"] [--rounds N]
#                          [--duration S] [--connections C] [--processes N] [--out DIR]
#
# Defaults: 18 rounds x 3 modes x 3 s, 16 connections (quick: 6 rounds x 2 s). Then, with
# valgrind, each mode again under callgrind (3 processes, quick: 1; 1,000 requests of each page
# per process) for the instructions per request of each page of
# `--count` (default: the page; "" counts none; `constant` is counted for the page alone, as only
# the minijinja layout can be given constant tags). Writes
# DIR/results.jsonl (one JSON line per wrk run), DIR/run.json (the setup) and
# DIR/instructions.jsonl (callgrind, one line per page, mode and process: the instructions per
# request, those of glibc's allocator among them, and the allocations, see
# `callgrind_allocator` in bench/benchlib.py; and valgrind's simulated cache misses and
# mispredicted branches, see `simulated`); DIR defaults to
# target/bench/page. Needs the release demo (`cargo build --release -p sentry-meta-demo`, done
# here; its browser bundle needs npm on the first start) and wrk (installed with apt-get when
# missing and running as root). Fails on errors only (a server that does not start, wrk errors,
# non-2xx answers, a page with or without tags when it should not be).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"; }

rounds=18 duration=3 connections=16 warmup=3 out=target/bench/page
callgrind_requests=1000 callgrind_processes=3
page=minijinja count=-
while [ "$#" -gt 0 ]; do
  case "$1" in
    --quick) rounds=6 duration=2 warmup=1 callgrind_processes=1 ;;
    --page) page=$2; shift ;;
    --count) count=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --duration) duration=$2; shift ;;
    --connections) connections=$2; shift ;;
    --processes) callgrind_processes=$2; shift ;;
    --out) out=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done

step() { printf '\n==> %s\n' "$*" >&2; }
die() { echo "bench/page/run.sh: $*" >&2; exit 1; }

if ! command -v wrk >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
    || die "wrk not found: install it (Debian/Ubuntu: apt-get install wrk)"
  step "installing wrk (apt-get)"
  apt-get install -y -qq wrk >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } \
    || die "apt-get install wrk failed"
fi
command -v curl >/dev/null 2>&1 || die "curl not found"

build=(cargo build --release --locked -p sentry-meta-demo -p sentry-meta-load)
step "${build[*]}"
"${build[@]}" >&2
demo="${CARGO_TARGET_DIR:-target}/release/sentry-meta-demo"

# Pinning: servers on CPU 0, wrk on CPU 1, when there are two CPUs and taskset.
server_pin=() client_pin=() pinning="none (fewer than 2 CPUs or no taskset)"
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
  server_pin=(taskset -c 0) client_pin=(taskset -c 1)
  pinning="servers: taskset -c 0; wrk: taskset -c 1"
fi

rm -rf "$out"
mkdir -p "$out"

# A free loopback port, from the kernel.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# An ingest that accepts connections and never answers (see above).
# Both helpers below end with this script even when it is killed (they watch their parent).
hole_port=$(free_port)
python3 -c '
import os, socket, sys, threading, time
parent = os.getppid()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
held = []
def accept():
    while True:
        held.append(s.accept()[0])
threading.Thread(target=accept, daemon=True).start()
while os.getppid() == parent:
    time.sleep(0.5)
' "$hole_port" &
pids+=("$!")
hole_dsn="http://5e47c0de5e47c0de5e47c0de5e47c0de@127.0.0.1:$hole_port/1"
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$hole_port") 2>/dev/null && break
  sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$hole_port") 2>/dev/null || die "the black-hole ingest did not start"

# Idle CPUs poll rather than halt while the file stays open (see above); without root, the
# run goes on with the machine's idle states and says so.
idle="idle states as the machine has them (/dev/cpu_dma_latency could not be held)"
idle_ready="$out/idle-held"
python3 -c '
import os, struct, sys, time
parent = os.getppid()
try:
    fd = os.open("/dev/cpu_dma_latency", os.O_WRONLY)
    os.write(fd, struct.pack("i", 0))
except OSError:
    sys.exit(0)
open(sys.argv[1], "w").close()
while os.getppid() == parent:
    time.sleep(0.5)
' "$idle_ready" &
pids+=("$!")
for _ in $(seq 50); do [ -e "$idle_ready" ] && break; sleep 0.1; done
if [ -e "$idle_ready" ]; then
  idle="idle CPUs poll rather than halt (/dev/cpu_dma_latency held at 0 µs)"
fi

declare -A url
modes=(on off constant)
for mode in "${modes[@]}"; do
  port=$(free_port) api_port=$(free_port)
  [ "$port" != "$api_port" ] || api_port=$(free_port)
  "${server_pin[@]}" "$demo" --addr "127.0.0.1:$port" --api-addr "127.0.0.1:$api_port" --actix-addr 127.0.0.1:0 \
    --data-dir "$out/data-$mode" --tags "$mode" --envelope-dsc false --dsn "$hole_dsn" >"$out/demo-$mode.log" 2>&1 &
  pids+=("$!")
  url[$mode]="http://127.0.0.1:$port/$page"
done
for mode in "${modes[@]}"; do
  for _ in $(seq 600); do
    curl -fsS -o /dev/null "${url[$mode]}" 2>/dev/null && break
    sleep 0.1
  done
  curl -fsS -o "$out/page-$mode.html" "${url[$mode]}" \
    || { cat "$out/demo-$mode.log" >&2; die "the demo ($mode) did not start"; }
done
grep -q 'name="sentry-trace"' "$out/page-on.html" || die "tags on: the page has no tags"
grep -q 'name="baggage"' "$out/page-on.html" || die "tags on: the page has no baggage tag"
! grep -q 'name="sentry-trace"\|name="baggage"' "$out/page-off.html" \
  || die "tags off: the page has tags"
# The constant pair names the minijinja page's route, so another page's differs by the length of
# its name alone.
[ "$(($(wc -c <"$out/page-constant.html") - $(wc -c <"$out/page-on.html")))" = "$((9 - ${#page}))" ] \
  || die "tags constant: the page is not as long as with tags (but for the route's name)"

wrk_cmd() { # mode duration
  echo "${client_pin[*]}${client_pin:+ }wrk -t1 -c$connections -d${2}s -s bench/page/wrk-json.lua ${url[$1]}"
}
run_wrk() { # mode duration round
  local mode=$1 secs=$2 round=$3 line
  line=$("${client_pin[@]}" wrk -t1 "-c$connections" "-d${secs}s" -s bench/page/wrk-json.lua \
    "${url[$mode]}" | tail -n 1)
  case "$line" in "{"*) ;; *) die "wrk printed no result for $mode: $line" ;; esac
  python3 - "$mode" "$round" "$line" <<'EOF' || exit 1
import json, sys
mode, round_, line = sys.argv[1], int(sys.argv[2]), sys.argv[3]
r = json.loads(line)
if r["errors"] or r["non_2xx"] or not r["requests"]:
    sys.exit(f"bench/page/run.sh: wrk against tags {mode}: {r}")
r = {"mode": mode, "round": round_, **r, "rps": r["requests"] / (r["duration_us"] / 1e6)}
print(json.dumps(r))
if round_:
    print(f"round {round_} tags {mode:>8}: {r['rps']:>9,.0f} req/s  "
          f"p50 {r['p50_us'] / 1e3:.2f} ms  p99 {r['p99_us'] / 1e3:.2f} ms", file=sys.stderr)
EOF
}

step "warm-up: ${warmup} s per mode"
for mode in "${modes[@]}"; do run_wrk "$mode" "$warmup" 0 >/dev/null; done

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
step "$rounds rounds x ${#modes[@]} modes x ${duration} s, $connections connections ($pinning)"
for round in $(seq "$rounds"); do
  # The rows of a Williams design for the three modes, in turn: the three rotations, then the
  # same reversed, i.e. all six orders, so that each mode runs in each position, and right
  # after each other mode, equally often in every six rounds.
  row=$(((round - 1) % (2 * ${#modes[@]})))
  first=$((row % ${#modes[@]}))
  order=("${modes[@]:first}" "${modes[@]:0:first}")
  if [ "$row" -ge "${#modes[@]}" ]; then
    order=("${order[2]}" "${order[1]}" "${order[0]}")
  fi
  for mode in "${order[@]}"; do
    sleep 0.5 # a pause between runs
    line=$(run_wrk "$mode" "$duration" "$round")
    echo "$line" >>"$out/results.jsonl"
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$out/run.json" <<EOF
import json, sys
json.dump({
    "page": "/$page",
    "rounds": $rounds, "duration_s": $duration, "warmup_s": $warmup,
    "connections": $connections, "wrk_threads": 1,
    "pinning": "$pinning",
    "idle": "$idle",
    "ingest": "accepts connections, never answers",
    "page_bytes": {"on": $(wc -c <"$out/page-on.html"), "off": $(wc -c <"$out/page-off.html"), "constant": $(wc -c <"$out/page-constant.html")},
    "load_before": "$load_before", "load_after": "$load_after",
    "build": "${build[*]}",
    "servers": {
        "on": "${server_pin[*]}${server_pin:+ }$demo --addr … --api-addr … --actix-addr 127.0.0.1:0 --data-dir $out/data-on --tags on --envelope-dsc false --dsn http://…@127.0.0.1:<black hole>/1",
        "off": "${server_pin[*]}${server_pin:+ }$demo --addr … --api-addr … --actix-addr 127.0.0.1:0 --data-dir $out/data-off --tags off --envelope-dsc false --dsn http://…@127.0.0.1:<black hole>/1",
        "constant": "${server_pin[*]}${server_pin:+ }$demo --addr … --api-addr … --actix-addr 127.0.0.1:0 --data-dir $out/data-constant --tags constant --envelope-dsc false --dsn http://…@127.0.0.1:<black hole>/1",
    },
    "wrk": {"on": "$(wrk_cmd on "$duration")", "off": "$(wrk_cmd off "$duration")", "constant": "$(wrk_cmd constant "$duration")"},
}, open(sys.argv[1], "w"), indent=2)
EOF

# Runs each mode in one more server process under callgrind (see below), the process numbered
# $1, and appends its instructions per request to $out/instructions.jsonl; returns non-zero on
# any failure (errexit is off in a function run as a condition, so every step says so itself).
count_process() {
  local process=$1 mode port api_port cg_out cg_pid slug pages url line dump=0
  for mode in "${modes[@]}"; do
    if [ "$count" = - ] || [ "$mode" = constant ]; then pages=("$page"); else read -ra pages <<<"$count"; fi
    port=$(free_port) api_port=$(free_port)
    [ "$port" != "$api_port" ] || api_port=$(free_port)
    cg_out="$out/callgrind-$mode-$process"
    valgrind --tool=callgrind --instr-atstart=no --cache-sim=yes --branch-sim=yes \
      --callgrind-out-file="$cg_out.%p" \
      "$demo" --addr "127.0.0.1:$port" --api-addr "127.0.0.1:$api_port" --actix-addr 127.0.0.1:0 \
      --data-dir "$out/data-cg-$mode" --tags "$mode" --envelope-dsc false --dsn "$hole_dsn" \
      >"$out/demo-cg-$mode-$process.log" 2>&1 &
    cg_pid=$!
    pids+=("$cg_pid")
    dump=0
    for slug in "${pages[@]}"; do
      url="http://127.0.0.1:$port/$slug"
      for _ in $(seq 600); do curl -fsS -o /dev/null "$url" 2>/dev/null && break; sleep 0.2; done
      # Without tags, no page of the run may carry them (each layout skips its helper).
      if [ "$mode" = off ] && curl -fsS "$url" | grep -q 'name="sentry-trace"'; then
        echo "bench/page/run.sh: /$slug has tags with --tags off" >&2
        return 1
      fi
      wrk -t1 -c4 -d2s "$url" >/dev/null || return 1
      callgrind_control -i on "$cg_pid" >/dev/null || return 1
      # A fixed number of requests, one at a time, in every mode: the demo's background threads
      # (the runtime's timers, the SDK's transport and session flusher) then weigh the same per
      # request in each mode, which a fixed duration did not give (408 to 3,428 requests per
      # 3 s window were seen, so their share moved by thousands of instructions per request).
      line=$(WRK_STOP_AFTER=$callgrind_requests wrk -t1 -c1 -d600s -s bench/page/wrk-json.lua "$url" | tail -n 1)
      # A dump also zeroes the counters; it is numbered from 1 in the process's life.
      callgrind_control -d "$cg_pid" >/dev/null || return 1
      callgrind_control -i off "$cg_pid" >/dev/null || true
      dump=$((dump + 1))
      python3 - "$mode" "/$slug" "$line" "$cg_out.$cg_pid.$dump" "$out/instructions.jsonl" "$callgrind_requests" "$process" <<'PY' || return 1
import json, sys
sys.path.insert(0, "bench")
from benchlib import callgrind_allocator, callgrind_totals, simulated
mode, page, line, dump, out, expected, process = sys.argv[1:]
requests = json.loads(line)["requests"]
if requests != int(expected):
    sys.exit(f"bench/page/run.sh: {page} tags {mode}: {requests} requests under callgrind, not {expected}")
totals = callgrind_totals(dump)
total = totals["Ir"]
counted, allocator, allocations = callgrind_allocator(dump)
if counted != total:
    sys.exit(f"bench/page/run.sh: {dump}: read {counted} instructions, callgrind says {total}")
row = {"mode": mode, "page": page, "process": int(process), "requests": requests,
       "instructions": total, "per_request": total / requests,
       "allocator_per_request": allocator / requests, "allocations_per_request": allocations / requests}
row.update({f"{key}_per_request": count / requests for key, count in simulated(totals).items()})
open(out, "a").write(json.dumps(row) + "\n")
print(f"{page} tags {mode:>8}: {row['per_request']:,.0f} instructions per request "
      f"({requests:,} requests)", file=sys.stderr)
PY
    done
    kill "$cg_pid" 2>/dev/null || true
    wait "$cg_pid" 2>/dev/null || true
  done
}

count_instructions() {
  local process
  for process in $(seq "$callgrind_processes"); do
    count_process "$process" || return 1
  done
}

# Instructions per request (callgrind): a load-independent count of what the tags add, for every
# thread of the demo. Each mode runs once more under valgrind (three times in the full run: two
# processes of the same binary differ by up to two thousand instructions per request, nearly all
# of them inside glibc's allocator, whose cost depends on its heap's state; the report takes the
# median process and gives the part outside the allocator apart), instrumented only around a
# fixed number of requests per page, and reports to an ingest that accepts and never answers:
# the SDK's transport then waits on its first envelope and drops the rest, so that the count
# holds the page's work and not a varying share of envelope sending and storing. valgrind also
# simulates the first-level caches and the branch predictor there: what a request's code costs
# beyond its instructions (fetched and predicted afresh on each request), which this machine's
# CPU has no counters to show. An extra: a machine where it cannot run (no valgrind, no ptrace)
# still gets the throughput figures.
if [ -z "$count" ]; then
  echo "bench/page/run.sh: --count \"\": no instruction counts" >&2
elif command -v valgrind >/dev/null 2>&1 && command -v callgrind_control >/dev/null 2>&1; then
  step "instructions per request (callgrind, $callgrind_requests requests of wrk -c1 per page, $callgrind_processes process(es) per mode)"
  if ! count_instructions; then
    echo "bench/page/run.sh: counting instructions failed; the report goes without them" >&2
    rm -f "$out/instructions.jsonl"
  fi
else
  echo "bench/page/run.sh: valgrind not found: no instruction counts" >&2
fi

echo "$out/results.jsonl"
