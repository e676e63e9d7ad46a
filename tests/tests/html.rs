//! Rendered tags read back by a real HTML parser: exactly the intended meta elements, their
//! `content` equal to the header values, for every vector's (possibly hostile) baggage.

use sentry_meta_core::{
    Continuation, ContinuationPolicy, DynamicSamplingContext, SerializedDsc, SpanId, TraceId,
    TraceMeta,
};
use sentry_meta_tests::{assert_head_is_exactly, expected_elements, vectors};

fn check(meta: &TraceMeta) {
    let tags = expected_elements(meta);
    let tags: Vec<(&str, &str)> = tags.iter().map(|(n, c)| (n.as_str(), c.as_str())).collect();
    assert_head_is_exactly(&meta.to_html(), &tags);
}

#[test]
fn every_vector_renders_exactly_its_tags() {
    for v in vectors().baggage {
        let headers = v.headers();
        let dsc = DynamicSamplingContext::from_baggage(headers.iter().map(|h| h.as_bytes()));
        for sampled in [Some(true), Some(false), None] {
            let meta = TraceMeta::new(
                TraceId::random(),
                SpanId::random(),
                sampled,
                Some(SerializedDsc::new(dsc.clone())),
            );
            check(&meta);
        }
    }
}

#[test]
fn continued_hostile_trace_renders_safely() {
    let hostile = [
        "sentry-release=\"><script>alert(1)</script>",
        "sentry-release=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E,sentry-environment=a&amp;b",
        "sentry-transaction=%0D%0A%00%1F,sentry-x=<!--",
        "sentry-environment=prod\u{7f}\u{0},sentry-release=%F0%9F%98%80",
    ];
    for baggage in hostile {
        let decision = Continuation::decide(
            Some(b"771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1"),
            [baggage.as_bytes()],
            &ContinuationPolicy::default(),
        );
        let Continuation::Continue(incoming) = decision else {
            panic!("continues");
        };
        let meta = TraceMeta::new(
            incoming.sentry_trace.trace_id,
            SpanId::random(),
            Some(true),
            Some(SerializedDsc::new(incoming.dsc)),
        );
        check(&meta);
        let html = meta.to_html();
        assert!(!html.contains("<script"), "{html}");
    }
}

#[test]
fn traceparent_tag_parses() {
    let meta =
        TraceMeta::new(TraceId::random(), SpanId::random(), Some(true), None).traceparent(true);
    let traceparent = meta.traceparent_header().expect("has a span id");
    assert_head_is_exactly(
        &meta.to_html(),
        &[
            ("sentry-trace", meta.sentry_trace_header()),
            ("traceparent", &traceparent),
        ],
    );
}
