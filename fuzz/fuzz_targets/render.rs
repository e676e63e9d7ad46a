//! Rendering the tags for arbitrary incoming headers, read back by a real HTML parser.
//!
//! Input fields (see `fields`): a control field (byte 0: bits 0-1 the page span's decision,
//! none / sampled / not sampled; bit 2 the `traceparent` tag; bytes 1.. the page span id), the
//! incoming `sentry-trace`, then the `baggage` values. A `sentry-trace` that continues gives the
//! page its trace and frozen DSC; otherwise the page gets a fixed trace and the DSC read from
//! the same baggage (so every input renders some baggage).
//!
//! Oracles: html5ever (through `scraper`) reads the rendered head as exactly the intended meta
//! elements, in order, whose `content` is the header value (`sentry-trace`, `baggage`,
//! `traceparent` unless an id is all zeros), and the rest of the page stays intact; the tags hold no other markup; the
//! baggage is the DSC's canonical serialization and within the limits; `html_len` is exact.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentry_meta_core::{
    Continuation, ContinuationPolicy, DynamicSamplingContext, SerializedDsc, SpanId, TraceId,
    TraceMeta,
};
use sentry_meta_fuzz::{assert_canonical_baggage, fields};
use sentry_meta_tests::assert_head_is_exactly;

const TRACE: TraceId =
    TraceId::from_bytes(*b"\x77\x1a\x43\xa4\x19\x26\x42\xf0\xb1\x36\xd5\x15\x9a\x50\x17\x00");

fuzz_target!(|data: &[u8]| {
    let fields = fields(data);
    let control = fields.first().copied().unwrap_or_default();
    let flags = control.first().copied().unwrap_or(0);
    let sampled = match flags & 3 {
        1 => Some(true),
        2 => Some(false),
        _ => None,
    };
    let traceparent = flags & 4 != 0;
    let mut span = [0x5a; 8];
    for (byte, from) in span.iter_mut().zip(control.iter().skip(1)) {
        *byte = *from;
    }
    let span_id = SpanId::from_bytes(span);
    let sentry_trace = fields.get(1).copied();
    let baggage = fields.get(2..).unwrap_or_default();

    let (trace_id, dsc) = match Continuation::decide(
        sentry_trace,
        baggage.iter().copied(),
        &ContinuationPolicy::default(),
    ) {
        Continuation::Continue(incoming) => (incoming.sentry_trace.trace_id, incoming.dsc),
        Continuation::NewTrace(_) => (
            TRACE,
            DynamicSamplingContext::from_baggage(baggage.iter().copied()),
        ),
    };
    let canonical = dsc.to_baggage();
    let meta = TraceMeta::new(trace_id, span_id, sampled, Some(SerializedDsc::new(dsc)))
        .traceparent(traceparent);
    let html = meta.to_html();
    assert_eq!(html.len(), meta.html_len());

    // The header values, on their own.
    let flag = match sampled {
        Some(true) => "-1",
        Some(false) => "-0",
        None => "",
    };
    let sentry_trace = format!("{trace_id}-{span_id}{flag}");
    assert_eq!(meta.sentry_trace_header(), sentry_trace);
    assert_canonical_baggage(&canonical);
    assert_eq!(
        meta.baggage_header().as_deref(),
        Some(canonical.as_str()).filter(|b| !b.is_empty())
    );
    let traceparent_value = format!(
        "00-{trace_id}-{span_id}-{}",
        if sampled == Some(true) { "01" } else { "00" }
    );

    let mut expected = vec![("sentry-trace", sentry_trace.as_str())];
    if !canonical.is_empty() {
        expected.push(("baggage", canonical.as_str()));
    }
    // W3C Trace Context forbids all-zero ids: no `traceparent` for them.
    let w3c_valid = trace_id != TraceId::from_bytes([0; 16]) && span != [0; 8];
    if traceparent && w3c_valid {
        expected.push(("traceparent", traceparent_value.as_str()));
    }
    // No markup but the tags' own: one `<` and one `>` per tag, no stray quote.
    assert_eq!(html.matches('<').count(), expected.len(), "{html}");
    assert_eq!(html.matches('>').count(), expected.len(), "{html}");
    assert_eq!(html.matches('"').count(), 4 * expected.len(), "{html}");
    assert_head_is_exactly(&html, &expected);
});
