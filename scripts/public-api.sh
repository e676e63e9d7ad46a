#!/usr/bin/env bash
# The public API of both crates, all features, as a sorted listing (scripts/public_api.py over
# rustdoc's JSON, which stable rustdoc writes with RUSTC_BOOTSTRAP=1), compared with the
# listings checked in under docs/public-api/: a change to the API is always a visible diff.
# `--bless` writes the listings instead.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bless=false
[ "${1:-}" = --bless ] && bless=true
target="${CARGO_TARGET_DIR:-target}"
mkdir -p docs/public-api
status=0
for crate in sentry-meta-core sentry-meta; do
  RUSTC_BOOTSTRAP=1 cargo rustdoc -q -p "$crate" --all-features --lib --locked -- \
    -Z unstable-options --output-format json --document-hidden-items
  listing="docs/public-api/$crate.txt"
  actual=$(python3 scripts/public_api.py "$target/doc/${crate//-/_}.json")
  if $bless; then
    printf '%s\n' "$actual" >"$listing"
    echo "public-api.sh: wrote $listing ($(wc -l <"$listing") items)"
  elif ! diff -u "$listing" <(printf '%s\n' "$actual"); then
    echo "public-api.sh: the public API of $crate differs from $listing (above). If the change" \
      "is meant, run \`bash scripts/public-api.sh --bless\` and commit the listing." >&2
    status=1
  fi
done
exit "$status"
