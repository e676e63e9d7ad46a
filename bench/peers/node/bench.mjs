#!/usr/bin/env node
// The Node peer of scripts/bench-peers.sh: times `getTraceMetaTags()` of @sentry/core (pinned in
// package-lock.json) with an active span in a sampled transaction, on the inputs of
// core/benches/per_request.rs. No network: the transport only counts the envelopes it is given.
//
//   node bench.mjs [--sdk core|node] [--warmup N] [--batches B] [--iterations N]
//
// Prints the rendered tags once on stderr and one JSON line on stdout:
//   {"peer":"node","ns_per_op":<median of the batches>,"min":..,"max":..,"batches":B,...}
//
// `--sdk core` (the default): plain @sentry/core with its stack async-context strategy, the
// like-for-like peer of our `first_render`. `--sdk node`: @sentry/node as a Node server runs it,
// whose `init` sets up OpenTelemetry with an AsyncLocalStorage context manager, so that
// getActiveSpan reads the span from the async context ("peer":"node-als").
//
// What one call does (@sentry/core 11.12.0, build/esm/utils/{meta,traceData}.js and
// tracing/dynamicSamplingContext.js): getClient + isEnabled, getActiveSpan (default stack
// async-context strategy), spanToTraceHeader, then getDynamicSamplingContextFromSpan: for a
// head-of-trace root span nothing is frozen on the span (`_frozenDsc` is only set when the
// trace was continued or the root was forced under a parent), so the DSC is REBUILT ON EVERY
// CALL from the client (getDsn, extractOrgIdFromClient, options) and the root span
// (getStaticSpanJSON, name, sampled, sample_rand, sample_rate attribute) and the "createDsc"
// hook is emitted; then the DSC is percent-encoded into baggage (encodeURIComponent per
// key/value), the sentry-trace value is tested with TRACEPARENT_REGEXP, and both tags are
// joined. Nothing is cached between calls, so one call is the peer's whole per-request cost:
// the fair comparison is our `new_trace_first_render` (new root, DSC built from client + span,
// rendered), not `later_render` (DSC looked up).
//
// A real @sentry/node adds an OpenTelemetry context lookup (AsyncLocalStorage) to
// getActiveSpan; plain @sentry/core's stack strategy is cheaper, so `--sdk core` is a lower
// bound of what a Node server pays per call, and `--sdk node` what it pays.

import { createTransport, initAndBind, createStackParser } from '@sentry/core';
import { ServerRuntimeClient } from '@sentry/core/server';
import { createRequire } from 'node:module';

const DSN = 'https://49d0f7386ad645858ae85020e393bef3@o42.ingest.sentry.io/7';
const TRANSACTION = 'GET /users/{id}';

function args() {
  const opts = { sdk: 'core', warmup: 200_000, batches: 30, iterations: 100_000 };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (key === 'sdk' && ['core', 'node'].includes(argv[i + 1])) {
      opts.sdk = argv[i + 1];
      continue;
    }
    const value = Number(argv[i + 1]);
    if (!(key in opts) || !Number.isInteger(value) || value <= 0) {
      throw new Error(`usage: node bench.mjs [--sdk core|node] [--warmup N] [--batches B] [--iterations N] (got ${argv[i]} ${argv[i + 1]})`);
    }
    opts[key] = value;
  }
  return opts;
}

// A transport that never touches the network: every envelope is dropped.
function makeDropTransport(options) {
  return createTransport(options, () => Promise.resolve({ statusCode: 200 }));
}

function check(tags, span) {
  const { traceId, spanId } = span.spanContext();
  const expected = [
    `<meta name="sentry-trace" content="${traceId}-${spanId}-1"/>`,
    '<meta name="baggage" content="',
    'sentry-environment=production',
    'sentry-release=web%401.2.3',
    'sentry-public_key=49d0f7386ad645858ae85020e393bef3',
    `sentry-trace_id=${traceId}`,
    'sentry-org_id=42',
    'sentry-transaction=GET%20%2Fusers%2F%7Bid%7D',
    'sentry-sampled=true',
    'sentry-sample_rand=',
    'sentry-sample_rate=1',
  ];
  const missing = expected.filter((s) => !tags.includes(s));
  if (missing.length > 0) {
    throw new Error(`getTraceMetaTags() output lacks ${JSON.stringify(missing)}:\n${tags}`);
  }
}

function batch(getTraceMetaTags, n) {
  let sink = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    sink += getTraceMetaTags().length;
  }
  const elapsed = process.hrtime.bigint() - start;
  if (sink === 0) throw new Error('empty output');
  return Number(elapsed) / n;
}

function median(sorted) {
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const opts = args();
const options = {
  dsn: DSN,
  release: 'web@1.2.3',
  environment: 'production',
  tracesSampleRate: 1.0,
  transport: makeDropTransport,
};
const sdk = opts.sdk === 'node' ? await import('@sentry/node') : await import('@sentry/core');
if (opts.sdk === 'node') {
  // As a server starts it, without the default integrations (they patch modules and would
  // start no span here) but with its OpenTelemetry setup.
  sdk.init({ ...options, defaultIntegrations: false });
} else {
  initAndBind(ServerRuntimeClient, { ...options, integrations: [], stackParser: createStackParser() });
}
const { getTraceMetaTags, startSpan } = sdk;

const perBatch = startSpan(
  { name: TRANSACTION, op: 'http.server', forceTransaction: true },
  (transaction) => {
    if (!transaction.isRecording()) throw new Error('the transaction is not sampled');
    // The span that renders the page, as in core/benches/per_request.rs.
    return startSpan({ name: 'layout', op: 'template.render' }, (span) => {
      const tags = getTraceMetaTags();
      check(tags, span);
      process.stderr.write(`${opts.sdk === 'node' ? 'node-als' : 'node'}: ${tags}\n`);
      batch(getTraceMetaTags, opts.warmup);
      const result = [];
      for (let b = 0; b < opts.batches; b++) result.push(batch(getTraceMetaTags, opts.iterations));
      return result;
    });
  },
);

const sorted = [...perBatch].sort((a, b) => a - b);
const require = createRequire(import.meta.url);
process.stdout.write(`${JSON.stringify({
  peer: opts.sdk === 'node' ? 'node-als' : 'node',
  package: `@sentry/${opts.sdk}`,
  version: require(`@sentry/${opts.sdk}/package.json`).version,
  runtime: process.version,
  ns_per_op: median(sorted),
  min: sorted[0],
  max: sorted[sorted.length - 1],
  batches: opts.batches,
  iterations: opts.iterations,
  warmup: opts.warmup,
})}\n`);
