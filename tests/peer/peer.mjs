#!/usr/bin/env node
// Differential test harness: runs the real `@sentry/core` (the JS peer) against
// tests/vectors/vectors.json, the vector file the Rust tests read too.
//
//   node peer.mjs check      compare the peer with the expected values; exit 1 on any failure
//   node peer.mjs generate   print the vector file with every expected value recomputed from
//                            the peer (stdout, JSON); divergent cases keep the file's `dsc` and
//                            the peer's own answer is printed to stderr for review
//
// Vector semantics (shared with the Rust side):
// - sentry_trace[i].input, baggage[i].headers: the raw header value(s).
// - optional "repeat": {"unit": U, "times": N}: the input (sentry_trace) or the single header
//   value (baggage) is U repeated N times; "input"/"headers" are then omitted. <= 1 MiB.
// - sentry_trace expect: {trace_id, span_id|null, sampled|null} or null (new trace).
// - baggage dsc: baggageHeaderToDynamicSamplingContext(headers) (array form), keys without
//   the `sentry-` prefix, or null. `peer` is "same" or the reason sentry-meta differs.
// - baggage serialized: OUR canonical baggage for `dsc` (see canonicalBaggage below).
// - continuation[i]: a valid `sentry_trace` and its `baggage` values, continued by a service
//   whose tracesSampleRate is `sample_rate`: expect {sampled, sample_rand}, where sampled is the
//   service's decision, sample_rand the caller's value kept (a number) or one filled in,
//   {"between": [lo, hi]}, sample_rate the rate the continued DSC states (the service's when
//   it made the decision, else the caller's; null for none), and sample_rate_text its text in
//   the DSC (the service's rate as JavaScript writes the number, `1e-7`; the caller's text as
//   it came, decoded; null for none). The peer: propagationContextFromHeaders, then sampleSpan
//   (its rate written into the DSC as getDynamicSamplingContextFromSpan writes it). A decision
//   that rests on a value the peer drew at random (no flag, nothing kept) is not compared.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as Sentry from '@sentry/core';

const VECTORS_PATH = fileURLToPath(new URL('../vectors/vectors.json', import.meta.url));
const MAX_REPEAT_BYTES = 1024 * 1024;
const MAX_BAGGAGE_BYTES = 8192;
const MAX_BAGGAGE_MEMBERS = 64;
const PREFIX = 'sentry-';
// sentry-meta's documented key order; other sentry keys follow in first-seen order.
const CANONICAL_ORDER = [
  'trace_id', 'public_key', 'sample_rate', 'sample_rand', 'sampled',
  'environment', 'release', 'transaction', 'org_id',
];

// ---------------------------------------------------------------- materialising inputs

function repeated(v) {
  if (v.repeat === undefined) return '';
  const { unit, times } = v.repeat;
  if (typeof unit !== 'string' || !Number.isInteger(times) || times < 0) {
    throw new Error('bad "repeat" (need {unit: string, times: integer >= 0})');
  }
  return unit.repeat(times);
}

function traceInput(v) {
  let s;
  if (v.repeat !== undefined) {
    if (v.input !== undefined) throw new Error('"input" must be omitted when "repeat" is set');
    s = repeated(v);
  } else {
    if (typeof v.input !== 'string') throw new Error('"input" must be a string');
    s = v.input;
  }
  if (Buffer.byteLength(s, 'utf8') > MAX_REPEAT_BYTES) throw new Error('input larger than 1 MiB');
  return s;
}

function baggageHeaders(v) {
  let headers;
  if (v.repeat !== undefined) {
    if (v.headers !== undefined) throw new Error('"headers" must be omitted when "repeat" is set');
    headers = [repeated(v)];
  } else {
    if (!Array.isArray(v.headers) || v.headers.some((h) => typeof h !== 'string')) {
      throw new Error('"headers" must be an array of strings');
    }
    headers = v.headers;
  }
  for (const h of headers) {
    if (Buffer.byteLength(h, 'utf8') > MAX_REPEAT_BYTES) throw new Error('header larger than 1 MiB');
  }
  return headers;
}

// ---------------------------------------------------------------- peer calls

function peerTrace(input) {
  const d = Sentry.extractTraceparentData(input);
  if (!d || !d.traceId) return null;
  return {
    trace_id: d.traceId,
    span_id: d.parentSpanId ?? null,
    sampled: d.parentSampled ?? null,
  };
}

// The same input through propagationContextFromHeaders (what continueTrace uses) must agree.
function peerTraceViaContext(input) {
  const ctx = Sentry.propagationContextFromHeaders(input, undefined);
  if (!ctx.dsc) return null; // new trace: random trace id, no parent, no dsc
  return { trace_id: ctx.traceId, span_id: ctx.parentSpanId ?? null, sampled: ctx.sampled ?? null };
}

// What the peer continues a trace with: the decision of a service sampling at `rate` (null
// when it rests on Math.random()), and the caller's sample_rand kept, or the interval that the
// peer fills one in from.
function peerContinuation(sentryTrace, headers, rate) {
  const ctx = Sentry.propagationContextFromHeaders(sentryTrace, headers);
  if (!ctx.dsc) throw new Error('the peer does not continue this trace');
  const incoming = Sentry.baggageHeaderToDynamicSamplingContext(headers);
  const kept = Sentry.parseSampleRate(incoming?.sample_rand);
  const [sampled, sampleRate, localSampleRateWasApplied] = Sentry.sampleSpan(
    { tracesSampleRate: rate },
    { name: 'GET /', parentSampled: ctx.sampled, attributes: {} },
    ctx.sampleRand,
  );
  // applyLocalSampleRateToDsc: the rate that made the decision here replaces the caller's.
  const dscRate = localSampleRateWasApplied ? sampleRate : incoming?.sample_rate;
  const sample_rate = Sentry.parseSampleRate(dscRate) ?? null;
  // applyLocalSampleRateToDsc writes the number into a template string.
  const sample_rate_text = dscRate === undefined ? null : `${dscRate}`;
  if (kept !== undefined) {
    if (ctx.sampleRand !== kept) throw new Error(`sampleRand ${ctx.sampleRand} is not the kept ${kept}`);
    return { sampled, sample_rand: kept, sample_rate, sample_rate_text };
  }
  // getSampleRandFromTraceparentAndDsc: by the caller's flag within its (truthy) sample_rate.
  const callerRate = Sentry.parseSampleRate(incoming?.sample_rate);
  let between = [0, 1];
  if (callerRate && ctx.sampled !== undefined) between = ctx.sampled ? [0, callerRate] : [callerRate, 1];
  const drawn = ctx.sampleRand;
  if (!(drawn >= between[0] && (drawn < between[1] || between[0] === between[1]))) {
    throw new Error(`sampleRand ${drawn} outside [${between}]`);
  }
  const decided = ctx.sampled === undefined ? null : sampled;
  return { sampled: decided, sample_rand: { between }, sample_rate, sample_rate_text };
}

function sameContinuation(peer, want) {
  const rand = (r) => (typeof r === 'number' ? r : JSON.stringify(r.between));
  return rand(peer.sample_rand) === rand(want.sample_rand)
    && peer.sample_rate === want.sample_rate
    && peer.sample_rate_text === want.sample_rate_text
    && (peer.sampled === null ? typeof want.sample_rand !== 'number' : peer.sampled === want.sampled);
}

function peerDsc(headers) {
  const dsc = Sentry.baggageHeaderToDynamicSamplingContext(headers);
  return dsc === undefined ? null : { ...dsc };
}

// Order in which sentry keys were first (validly) seen, from the peer's own parse: full keys
// start with "sentry-", so they are never integer-like and keep insertion order.
function firstSeenOrder(headers) {
  const all = Sentry.parseBaggageHeader(headers) || {};
  return Object.keys(all).filter((k) => k.startsWith(PREFIX)).map((k) => k.slice(PREFIX.length));
}

// ---------------------------------------------------------------- our rules

function canonicalTrace(t) {
  if (t === null) return null;
  let s = t.trace_id;
  if (t.span_id !== null) s += `-${t.span_id}`;
  if (t.sampled !== null) s += t.sampled ? '-1' : '-0';
  return s;
}

function encodedMember(key, value) {
  return `${encodeURIComponent(PREFIX + key)}=${encodeURIComponent(value)}`;
}

// sentry-meta's serializer rules, as the vectors encode them: keys in CANONICAL_ORDER, then
// the other keys in first-seen order; encodeURIComponent on key and value; greedy: a member
// that would push the header past 8192 bytes is skipped (later ones are still tried, as the
// peer does); once 64 members are in, nothing more is added.
function canonicalBaggage(dsc, order) {
  if (dsc === null) return null;
  const keys = Object.keys(dsc);
  const known = CANONICAL_ORDER.filter((k) => keys.includes(k));
  const rest = [
    ...order.filter((k) => keys.includes(k) && !CANONICAL_ORDER.includes(k)),
    ...keys.filter((k) => !order.includes(k) && !CANONICAL_ORDER.includes(k)),
  ];
  const members = [];
  let len = 0;
  for (const k of [...new Set([...known, ...rest])]) {
    if (members.length >= MAX_BAGGAGE_MEMBERS) break;
    const m = encodedMember(k, dsc[k]);
    const newLen = len + (members.length ? 1 : 0) + m.length;
    if (newLen > MAX_BAGGAGE_BYTES) continue;
    members.push(m);
    len = newLen;
  }
  return members.length ? members.join(',') : null;
}

// Our parse-time bound: a member whose canonical encoding alone exceeds 8192 bytes can never
// be emitted, so sentry-meta drops it when reading (bounded memory).
function neverFits(key, value) {
  return encodedMember(key, value).length > MAX_BAGGAGE_BYTES;
}

// ---------------------------------------------------------------- comparison helpers

function sameDsc(a, b) {
  if (a === null || b === null) return a === b;
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

function isSubDsc(sub, sup) {
  if (sub === null) return true;
  if (sup === null) return false;
  return Object.keys(sub).every((k) => Object.prototype.hasOwnProperty.call(sup, k) && sup[k] === sub[k]);
}

function short(x) {
  const s = JSON.stringify(x);
  return s.length > 300 ? `${s.slice(0, 300)}… (${s.length} chars)` : s;
}

// `__proto__` cannot be a DSC key in the peer (assignment to obj.__proto__ is ignored).
function withoutProto(d) {
  if (d === null) return null;
  const o = Object.fromEntries(Object.entries(d).filter(([k]) => k !== '__proto__'));
  return Object.keys(o).length ? o : null;
}

// ---------------------------------------------------------------- check

function check(doc) {
  let passed = 0;
  let failed = 0;
  const known = [];
  const names = new Set();
  const fail = (section, name, msg) => {
    failed++;
    console.log(`FAIL ${section} "${name}": ${msg}`);
  };

  for (const section of ['sentry_trace', 'baggage', 'continuation']) {
    if (!Array.isArray(doc[section])) {
      fail(section, '-', 'section missing or not an array');
    }
  }

  for (const v of doc.sentry_trace || []) {
    const name = v.name;
    const errors = [];
    try {
      if (typeof name !== 'string' || !name) errors.push('missing name');
      else if (names.has(`t:${name}`)) errors.push('duplicate name');
      names.add(`t:${name}`);
      const input = traceInput(v);
      const got = peerTrace(input);
      const viaCtx = peerTraceViaContext(input);
      if (JSON.stringify(got) !== JSON.stringify(v.expect)) {
        errors.push(`peer parsed ${short(got)}, expected ${short(v.expect)}`);
      }
      if (JSON.stringify(viaCtx) !== JSON.stringify(got)) {
        errors.push(`propagationContextFromHeaders gave ${short(viaCtx)}, extractTraceparentData ${short(got)}`);
      }
      if (v.canonical !== canonicalTrace(v.expect)) {
        errors.push(`canonical ${short(v.canonical)} is not the re-serialization ${short(canonicalTrace(v.expect))}`);
      }
      if (v.canonical !== null && v.canonical !== undefined) {
        const back = peerTrace(v.canonical);
        if (JSON.stringify(back) !== JSON.stringify(v.expect)) {
          errors.push(`peer reads canonical back as ${short(back)}`);
        }
      }
    } catch (e) {
      errors.push(`error: ${e.message}`);
    }
    if (errors.length) fail('sentry_trace', name, errors.join('; '));
    else passed++;
  }

  for (const v of doc.baggage || []) {
    const name = v.name;
    const errors = [];
    try {
      if (typeof name !== 'string' || !name) errors.push('missing name');
      else if (names.has(`b:${name}`)) errors.push('duplicate name');
      names.add(`b:${name}`);
      if (typeof v.peer !== 'string' || !v.peer) errors.push('"peer" must be "same" or a reason');
      const headers = baggageHeaders(v);
      const got = peerDsc(headers);
      const want = v.dsc === undefined ? undefined : v.dsc;
      if (want === undefined) errors.push('"dsc" missing');
      if (want !== null && want !== undefined) {
        for (const [k, val] of Object.entries(want)) {
          if (typeof val !== 'string') errors.push(`dsc.${k} is not a string`);
        }
        if (Object.keys(want).length === 0) errors.push('empty dsc must be written as null');
        for (const [k, val] of Object.entries(want)) {
          if (typeof val === 'string' && neverFits(k, val)) errors.push(`dsc.${k} can never fit in 8192 bytes; sentry-meta drops it at parse time`);
        }
      }
      if (v.peer === 'same') {
        if (!sameDsc(got, want)) errors.push(`peer dsc ${short(got)}, expected ${short(want)}`);
      } else if (sameDsc(got, want)) {
        errors.push(`marked as divergent ("${v.peer}") but the peer agrees with dsc`);
      } else {
        known.push(`KNOWN DIVERGENCE baggage "${name}": ${v.peer}\n    peer dsc: ${short(got)}\n    ours:     ${short(want)}`);
      }

      // `serialized` must be exactly our canonical form of `dsc` ...
      const order = firstSeenOrder(headers);
      const ours = canonicalBaggage(want ?? null, order);
      if (v.serialized !== ours) {
        errors.push(`serialized ${short(v.serialized)}, canonical form of dsc is ${short(ours)}`);
      }
      if (v.serialized !== null && v.serialized !== undefined) {
        // ... within the limits ...
        if (v.serialized.length > MAX_BAGGAGE_BYTES) errors.push('serialized exceeds 8192 bytes');
        if (v.serialized.split(',').length > MAX_BAGGAGE_MEMBERS) errors.push('serialized exceeds 64 members');
        if (!/^[\x21-\x7e]*$/.test(v.serialized)) errors.push('serialized is not printable ASCII');
        // ... and the peer must read it back as the DSC we meant (all of it when within limits).
        const back = peerDsc([v.serialized]);
        const meant = withoutProto(want);
        const peerSer = Sentry.dynamicSamplingContextToSentryBaggageHeader(want);
        const peerFits = peerSer !== undefined &&
          peerSer.split(',').length === Object.keys(want).length &&
          Object.keys(want).length <= MAX_BAGGAGE_MEMBERS;
        if (peerFits) {
          if (!sameDsc(back, meant)) errors.push(`peer reads serialized back as ${short(back)}, meant ${short(meant)}`);
          const a = peerSer.split(',').sort().join(',');
          const b = v.serialized.split(',').sort().join(',');
          if (a !== b) errors.push(`peer serializer emits other members: ${short(peerSer)}`);
        } else if (!isSubDsc(back, meant)) {
          errors.push(`over limits: peer reads serialized back as ${short(back)}, not a subset of dsc`);
        }
      } else if (want !== null && want !== undefined) {
        errors.push('serialized is null but dsc is not');
      }
    } catch (e) {
      errors.push(`error: ${e.message}`);
    }
    if (errors.length) fail('baggage', name, errors.join('; '));
    else passed++;
  }

  for (const v of doc.continuation || []) {
    const name = v.name;
    const errors = [];
    try {
      if (typeof name !== 'string' || !name) errors.push('missing name');
      else if (names.has(`c:${name}`)) errors.push('duplicate name');
      names.add(`c:${name}`);
      if (typeof v.peer !== 'string' || !v.peer) errors.push('"peer" must be "same" or a reason');
      if (typeof v.expect?.sampled !== 'boolean') errors.push('expect.sampled must be a boolean');
      const got = peerContinuation(v.sentry_trace, v.baggage, v.sample_rate);
      if (v.peer === 'same') {
        if (!sameContinuation(got, v.expect)) errors.push(`peer continues with ${short(got)}, expected ${short(v.expect)}`);
      } else if (sameContinuation(got, v.expect)) {
        errors.push(`marked as divergent ("${v.peer}") but the peer agrees`);
      } else {
        known.push(`KNOWN DIVERGENCE continuation "${name}": ${v.peer}\n    peer: ${short(got)}\n    ours: ${short(v.expect)}`);
      }
    } catch (e) {
      errors.push(`error: ${e.message}`);
    }
    if (errors.length) fail('continuation', name, errors.join('; '));
    else passed++;
  }

  for (const k of known) console.log(k);
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0;
}

// ---------------------------------------------------------------- generate

function generate(doc) {
  const traces = [];
  for (const v of doc.sentry_trace || []) {
    const input = traceInput(v);
    const expect = peerTrace(input);
    const f = [['name', j(v.name)]];
    f.push(v.repeat !== undefined ? ['repeat', j(v.repeat)] : ['input', j(v.input)]);
    f.push(['expect', expect === null ? 'null' : j(expect)], ['canonical', j(canonicalTrace(expect))]);
    traces.push(obj(f));
  }
  const bags = [];
  for (const v of doc.baggage || []) {
    const headers = baggageHeaders(v);
    const peer = v.peer ?? 'same';
    const got = peerDsc(headers);
    let dsc = got;
    if (peer !== 'same') {
      dsc = v.dsc ?? null;
      process.stderr.write(`divergent "${v.name}": peer dsc ${short(got)}; file keeps ${short(dsc)}\n`);
    }
    const order = firstSeenOrder(headers);
    const f = [['name', j(v.name)]];
    f.push(v.repeat !== undefined ? ['repeat', j(v.repeat)] : ['headers', j(v.headers)]);
    f.push(
      ['dsc', dsc === null ? 'null' : obj(orderedKeys(dsc, order).map((k) => [k, j(dsc[k])]))],
      ['serialized', j(canonicalBaggage(dsc, order))],
      ['peer', j(peer)],
    );
    bags.push(obj(f));
  }
  const continued = [];
  for (const v of doc.continuation || []) {
    const peer = v.peer ?? 'same';
    const got = peerContinuation(v.sentry_trace, v.baggage, v.sample_rate);
    let expect = got;
    if (got.sampled === null) expect = { ...got, sampled: v.expect?.sampled ?? null };
    if (peer !== 'same') {
      expect = v.expect;
      process.stderr.write(`divergent "${v.name}": peer ${short(got)}; file keeps ${short(expect)}\n`);
    }
    continued.push(obj([
      ['name', j(v.name)], ['sentry_trace', j(v.sentry_trace)], ['baggage', j(v.baggage)],
      ['sample_rate', j(v.sample_rate)], ['expect', j(expect)], ['peer', j(peer)],
    ]));
  }
  const sec = (name, lines) => `  ${j(name)}: [\n${lines.map((l) => `    ${l}`).join(',\n')}\n  ]`;
  process.stdout.write(`{\n${sec('sentry_trace', traces)},\n${sec('baggage', bags)},\n${sec('continuation', continued)}\n}\n`);
}

// JSON text with everything outside printable ASCII escaped as \uXXXX (the file stays
// reviewable: NBSP, BOM, U+2028, DEL, emoji are all visible).
function j(x) {
  return JSON.stringify(x).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

// Object text from [key, jsonText] pairs, in that order (JS objects would put integer-like
// keys such as "10" first).
function obj(fields) {
  return `{${fields.map(([k, t]) => `${j(k)}: ${t}`).join(', ')}}`;
}

function orderedKeys(dsc, order) {
  const keys = Object.keys(dsc);
  return [...new Set([
    ...CANONICAL_ORDER.filter((k) => keys.includes(k)),
    ...order.filter((k) => keys.includes(k)),
    ...keys,
  ])];
}

// ---------------------------------------------------------------- main

export { canonicalBaggage, canonicalTrace, neverFits, peerDsc, peerTrace, firstSeenOrder };

const isMain = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const mode = process.argv[2];
  const file = process.argv[3] || VECTORS_PATH;
  const doc = JSON.parse(readFileSync(file, 'utf8'));
  if (mode === 'check') {
    process.exit(check(doc) ? 0 : 1);
  } else if (mode === 'generate') {
    generate(doc);
  } else {
    console.error('usage: node peer.mjs check|generate [vectors.json]');
    process.exit(2);
  }
}
