#!/usr/bin/env bash
# Differential check against the real JavaScript peer (@sentry/core, pinned in
# tests/peer/package-lock.json): runs every case of tests/vectors/vectors.json through it.
# Needs Node >= 20.19 and npm; only the npm registry is contacted, and only when
# tests/peer/node_modules is missing or older than the lockfile.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../tests/peer"

stamp=node_modules/.package-lock.json   # written by npm ci/install
if [ ! -d node_modules/@sentry/core ] || [ ! -f "$stamp" ] \
   || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

node peer.mjs check
# The `traceparent` tags, as OpenTelemetry's W3C propagator reads them.
node traceparent.mjs
