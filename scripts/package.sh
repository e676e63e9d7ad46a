#!/usr/bin/env bash
# Packages both crates as `cargo publish` would (and builds them from their packages), then
# checks what each .crate holds: its README and both licences, its sources, and nothing of the
# repository's benches, measuring tools, fuzz corpus, demo or tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

target="${CARGO_TARGET_DIR:-target}"

# cargo builds sentry-meta against the sentry-meta-core it has just packed, through a local
# registry in $target/package/tmp-registry. It takes registry crates to be immutable: an unpacked
# copy of the same name and version (under $CARGO_HOME/registry/src/, in a directory named
# "-<hash of the registry's path>") and a compiled one (in $target) are reused without looking
# at their contents. So a machine that packaged an older commit from the same path would verify
# sentry-meta against the older core. Remove both first; the copies unpacked from crates.io stay.
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/sentry-meta-core-*
cargo clean --quiet -p sentry-meta-core
cargo package --workspace --exclude sentry-meta-demo --exclude sentry-meta-tests \
  --exclude sentry-meta-load --locked

status=0
for crate in sentry-meta-core sentry-meta; do
  file="$target/package/$crate-$(cargo metadata --no-deps --format-version 1 --locked |
    python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == sys.argv[1]))' "$crate").crate"
  files=$(tar tzf "$file" | sed 's|^[^/]*/||')
  for needed in README.md LICENSE-MIT LICENSE-APACHE Cargo.toml src/lib.rs; do
    grep -qx "$needed" <<<"$files" || { echo "package.sh: $crate lacks $needed" >&2; status=1; }
  done
  if grep -E '^(benches|examples|fuzz|tests|demo-site|bench|docs)/' <<<"$files"; then
    echo "package.sh: $crate ships files of the repository's tooling (above)" >&2
    status=1
  fi
  echo "$crate: $(wc -l <<<"$files") files, $(du -k "$file" | cut -f1) KiB packed"
done
exit "$status"
