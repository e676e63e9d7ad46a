#!/usr/bin/env bash
# Instructions per call of the benched operations, counted by valgrind's callgrind: a figure that
# does not move with the machine's load (time does), for comparing two versions of the code.
# Each operation of core/examples/instructions.rs (the criterion benches' operations, under
# their ids) runs at two loop lengths, counted only inside the loop; the difference of the two
# counts divided by the difference of the calls leaves out one-time work.
#
#   bash scripts/instructions.sh                       # every operation (hostile: 8 KiB, 1 MiB)
#   bash scripts/instructions.sh per_request/later_render hostile/many_members/8KiB
#   bash scripts/instructions.sh --json FILE [OPERATION…]    # also writes {"id": count, …}
#   ANNOTATE=1 bash scripts/instructions.sh per_request/first_render   # + the top functions
#
# `--list` of the example names every operation. Needs valgrind: installed with apt-get when
# missing and running as root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() { echo "instructions.sh: $*" >&2; exit 1; }
json=""
if [ "${1:-}" = --json ]; then
  [ "$#" -ge 2 ] || die "--json needs a file"
  json=$2
  shift 2
fi
if ! command -v valgrind >/dev/null 2>&1 || ! command -v callgrind_annotate >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
    || die "valgrind not found: install it (Debian/Ubuntu: apt-get install valgrind)"
  echo "==> installing valgrind (apt-get)" >&2
  apt-get install -y -qq valgrind >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; } \
    || die "apt-get install valgrind failed"
fi

# The example's binary, at the path cargo reports for it.
bin=$(cargo build --profile bench -q --locked -p sentry-meta-core --all-features \
  --example instructions --message-format=json |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
[ -x "$bin" ] || die "the example was not built"
work="${CARGO_TARGET_DIR:-target}/instructions"
mkdir -p "$work"

ops=("$@")
if [ "${#ops[@]}" = 0 ]; then
  # The hostile shapes at 8 KiB and 1 MiB only: their ratio is the linearity check of
  # bench/report.py.
  mapfile -t ops < <("$bin" --list | grep -v '^hostile/.*/100B$')
fi

# The instructions counted in one run of OPERATION with CALLS calls.
count() {
  local file
  file="$work/callgrind.${1//\//_}.$2"
  valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*instructions::measured*' \
    --callgrind-out-file="$file" "$bin" "$1" "$2" >/dev/null 2>"$file.log" \
    || die "$1: $(tail -n 3 "$file.log")"
  sed -n 's/^summary: //p; s/^totals: //p' "$file" | head -n 1
}

printf '%-45s %18s\n' operation 'instructions/call'
results=()
for op in "${ops[@]}"; do
  case "$op" in hostile/*) short=10 long=30 ;; *) short=1000 long=3000 ;; esac
  a=$(count "$op" "$short")
  b=$(count "$op" "$long")
  per_call=$(( (b - a) / (long - short) ))
  printf '%-45s %18s\n' "$op" "$per_call"
  results+=("\"$op\": $per_call")
  if [ -n "${ANNOTATE:-}" ]; then
    callgrind_annotate --auto=no --inclusive=yes "$work/callgrind.${op//\//_}.$long" 2>/dev/null \
      | sed -n '/^Ir/,$p' | sed -n '3,30p'
  fi
done
if [ -n "$json" ]; then
  mkdir -p "$(dirname "$json")"
  (IFS=,; printf '{%s}\n' "${results[*]}") >"$json"
fi
