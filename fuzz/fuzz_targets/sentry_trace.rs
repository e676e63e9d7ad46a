//! `sentry-trace` parsing on arbitrary bytes.
//!
//! Oracles: the parser agrees with the grammar's regular expression (as every Sentry SDK writes
//! it, here run by the `regex` crate), and a parsed value is written back (`Display`) as at most
//! 51 bytes of `[0-9a-f-]` that parse to the same value.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use regex::bytes::Regex;
use sentry_meta_core::{SentryTrace, SpanId, TraceId};

/// The grammar of the trace propagation spec, with the trace id required (checked below).
static GRAMMAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[ \t]*([0-9a-f]{32})?-?([0-9a-f]{16})?-?([01])?[ \t]*$").expect("valid regex")
});

fuzz_target!(|data: &[u8]| {
    let parsed = SentryTrace::parse_bytes(data);

    let expected = GRAMMAR.captures(data).and_then(|caps| {
        let trace_id = TraceId::parse_hex(caps.get(1)?.as_bytes()).ok()?;
        let span_id = caps
            .get(2)
            .map(|m| SpanId::parse_hex(m.as_bytes()).expect("16 hex digits"));
        let sampled = caps.get(3).map(|m| m.as_bytes() == b"1");
        Some(SentryTrace {
            trace_id,
            span_id,
            sampled,
        })
    });
    assert_eq!(
        parsed.ok(),
        expected,
        "input {:?}",
        String::from_utf8_lossy(data)
    );

    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(text.parse::<SentryTrace>().ok(), parsed.ok());
    }

    let Ok(trace) = parsed else {
        return;
    };
    let written = trace.to_string();
    assert!(written.len() <= 51, "{written:?}");
    assert!(
        written
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f' | b'-')),
        "{written:?}"
    );
    assert_eq!(SentryTrace::parse_bytes(written.as_bytes()), Ok(trace));
    if let Some(traceparent) = trace.to_traceparent() {
        assert_eq!(traceparent.len(), 55, "{traceparent:?}");
        assert!(traceparent.starts_with(&format!("00-{}-", trace.trace_id)));
    }
});
