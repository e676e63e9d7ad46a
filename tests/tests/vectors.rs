//! The shared vectors against the core parser and serializer. The same file is checked against
//! the real `@sentry/core` by `scripts/peer-check.sh`.

use sentry_meta_core::{
    DynamicSamplingContext, MAX_BAGGAGE_BYTES, MAX_BAGGAGE_MEMBERS, SentryTrace,
};
use sentry_meta_tests::{ExpectedTrace, vectors};

#[test]
fn sentry_trace_vectors() {
    let vectors = vectors();
    assert!(
        vectors.sentry_trace.len() >= 20,
        "too few sentry-trace vectors"
    );
    for v in &vectors.sentry_trace {
        let input = v.input();
        let parsed = input.parse::<SentryTrace>().ok();
        let actual = parsed.map(|t| ExpectedTrace {
            trace_id: t.trace_id.to_string(),
            span_id: t.span_id.map(|s| s.to_string()),
            sampled: t.sampled,
        });
        assert_eq!(actual, v.expect, "sentry-trace vector {:?}", v.name);
        assert_eq!(
            parsed.map(|t| t.to_string()),
            v.canonical,
            "canonical form of {:?}",
            v.name
        );
        if let Some(canonical) = &v.canonical {
            assert_eq!(
                canonical.parse::<SentryTrace>().ok(),
                parsed,
                "{:?}",
                v.name
            );
        }
    }
}

#[test]
fn baggage_vectors() {
    let vectors = vectors();
    assert!(vectors.baggage.len() >= 20, "too few baggage vectors");
    let mut failures = Vec::new();
    for v in &vectors.baggage {
        let headers = v.headers();
        let dsc = DynamicSamplingContext::from_baggage(headers.iter().map(|h| h.as_bytes()));
        let mut actual: Vec<(String, String)> = dsc
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        actual.sort();
        if actual != v.expected_entries() {
            failures.push(format!(
                "DSC of {:?}\n  ours:     {actual:?}\n  expected: {:?}",
                v.name,
                v.expected_entries()
            ));
            continue;
        }
        let serialized = (!dsc.is_empty()).then(|| dsc.to_baggage());
        if serialized != v.serialized {
            failures.push(format!(
                "serialized {:?}\n  ours:     {serialized:?}\n  expected: {:?}",
                v.name, v.serialized
            ));
            continue;
        }
        if let Some(serialized) = &serialized {
            assert!(serialized.len() <= MAX_BAGGAGE_BYTES, "{:?}", v.name);
            assert!(
                serialized.split(',').count() <= MAX_BAGGAGE_MEMBERS,
                "{:?}",
                v.name
            );
            let again = DynamicSamplingContext::from_baggage([serialized.as_bytes()]);
            assert_eq!(
                again.to_baggage(),
                *serialized,
                "round trip of {:?}",
                v.name
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} baggage vectors fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
