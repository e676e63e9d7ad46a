#!/usr/bin/env bash
# Builds every fuzz target of fuzz/ and runs each, one after the other, for the given number of
# seconds (default 30); prints executions, coverage and findings per target, and exits non-zero
# if any target found a crash, a timeout or an out-of-memory input.
#
#   bash scripts/fuzz.sh            # 30 s per target
#   bash scripts/fuzz.sh 600        # 10 min per target
#   bash scripts/fuzz.sh 60 inject  # some targets only
#
# The seeds are fuzz/corpus/<target>/ (kept in the repo, made by fuzz/seeds.py); what the fuzzer
# learns goes to fuzz/work/<target>/ and what it finds to fuzz/artifacts/<target>/ (both
# ignored by git); the builds to target/fuzz/. Reproduce a finding with
# `cargo fuzz run --target-dir ../target/fuzz <target> <file>` in fuzz/, with the environment below.
#
# Toolchain: cargo-fuzz builds with `-Z` flags (`-Zsanitizer=address`, sanitizer-coverage
# options), which only a nightly compiler accepts. This project's machines have the stable
# toolchain alone, so RUSTC_BOOTSTRAP=1 lets the stable compiler take them; AddressSanitizer's
# runtime ships with the standard library for x86_64-unknown-linux-gnu, so the default
# sanitizer works as on nightly (no -Zbuild-std).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-30}"
shift || true
export RUSTC_BOOTSTRAP=1
# Inside the workspace's target directory, apart (the sanitizer flags rebuild everything anyway).
target_dir="$(pwd)/../target/fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked --version "^0.13"
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi

# The longest input of each target: long enough to cross the 8192-byte baggage limit (or to
# fill a page's head), short enough to keep many executions per second.
max_len() {
  case "$1" in
    sentry_trace) echo 4096 ;;
    inject) echo 16384 ;;
    *) echo 32768 ;;
  esac
}

echo "==> building ${targets[*]}"
for target in "${targets[@]}"; do
  cargo fuzz build --target-dir "$target_dir" "$target"
done

failed=0
summary=()
for target in "${targets[@]}"; do
  mkdir -p "work/$target" "artifacts/$target"
  log="work/$target.log"
  stamp="work/$target.start"
  touch "$stamp"
  echo "==> fuzzing $target for ${seconds}s (log: fuzz/$log)"
  status=0
  cargo fuzz run --target-dir "$target_dir" "$target" "work/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || status=$?
  # What libFuzzer wrote for this run: crash-*, timeout-*, oom-*, leak-* (not slow-unit-*).
  mapfile -t found < <(find "artifacts/$target" -type f -newer "$stamp" \
    \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | sort)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9a-zA-Z]+' "$log" | tail -n 1 || true)
  findings=${#found[@]}
  line=$(printf '%-13s %12s executions  %-40s findings: %d' \
    "$target" "${execs:-?}" "${cov:-cov: ?}" "$findings")
  summary+=("$line")
  echo "$line"
  if [ "$status" -ne 0 ] || [ "$findings" -ne 0 ]; then
    failed=1
    echo "--- $target failed (exit $status); from its log (fuzz/$log):"
    { grep -m 1 -A 8 -E 'panicked at|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)' "$log" ||
      tail -n 20 "$log"; } | head -n 12
    for file in "${found[@]}"; do
      echo "    finding: fuzz/$file"
    done
  fi
done

echo
echo "==> summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
exit "$failed"
