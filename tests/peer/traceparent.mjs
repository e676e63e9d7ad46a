// Reads the `traceparent` <meta> contents that sentry-meta writes (tests/vectors/traceparent.json,
// which tests/tests/vectors.rs checks against the renderer) with the real @opentelemetry/core
// W3CTraceContextPropagator, as OpenTelemetry's browser instrumentation does: each content must
// give the vector's ids and sampled flag, and the tags sentry-meta leaves out (all-zero ids)
// must be ones the propagator would reject.
//
//   node traceparent.mjs [traceparent.json]

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ROOT_CONTEXT, defaultTextMapGetter, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

const file = process.argv[2] || fileURLToPath(new URL('../vectors/traceparent.json', import.meta.url));
const vectors = JSON.parse(readFileSync(file, 'utf8')).traceparent;
const propagator = new W3CTraceContextPropagator();

function read(content) {
  const context = propagator.extract(ROOT_CONTEXT, { traceparent: content }, defaultTextMapGetter);
  return trace.getSpanContext(context);
}

let failures = 0;
for (const v of vectors) {
  const flag = v.sampled === true ? '01' : '00';
  const content = v.content ?? `00-${v.trace_id}-${v.span_id}-${flag}`;
  const read_ = read(content);
  if (v.content === null) {
    if (read_ !== undefined) {
      console.error(`FAIL: sentry-meta leaves out ${content}, which the propagator accepts`);
      failures++;
    }
    continue;
  }
  const want = { traceId: v.trace_id, spanId: v.span_id, traceFlags: v.sampled === true ? 1 : 0, isRemote: true };
  const got = read_ && { traceId: read_.traceId, spanId: read_.spanId, traceFlags: read_.traceFlags, isRemote: read_.isRemote };
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    console.error(`FAIL: ${content}: read ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    failures++;
  }
}
console.log(`traceparent: ${vectors.length - failures}/${vectors.length} as @opentelemetry/core reads them`);
process.exit(failures ? 1 : 0);
