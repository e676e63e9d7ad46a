//! The shared vectors against the core parser, serializer and continuation. The same file is
//! checked against the real `@sentry/core` by `scripts/peer-check.sh`. The cache vectors
//! against the classifier of both axum layers.

use http::{HeaderMap, HeaderName, HeaderValue, header::CACHE_CONTROL};
use sentry_meta::tower::{Cacheability, is_publicly_cacheable};
use sentry_meta_core::{
    Continuation, ContinuationPolicy, DscKey, DynamicSamplingContext, MAX_BAGGAGE_BYTES,
    MAX_BAGGAGE_MEMBERS, SentryTrace,
};
use sentry_meta_tests::{
    ExpectedCacheability, ExpectedSampleRand, ExpectedTrace, cache_vectors, vectors,
};

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

/// Continued traces, as the layer continues them for a service sampling at a fixed rate: the
/// decision (`IncomingTrace::decide_at`), and the `sample_rand` and `sample_rate` the frozen DSC
/// goes on with.
#[test]
fn continuation_vectors() {
    let vectors = vectors();
    assert!(
        vectors.continuation.len() >= 15,
        "too few continuation vectors"
    );
    for v in &vectors.continuation {
        let decided = Continuation::decide(
            Some(v.sentry_trace.as_bytes()),
            v.baggage.iter().map(|h| h.as_bytes()),
            &ContinuationPolicy::default(),
        );
        let Continuation::Continue(mut incoming) = decided else {
            panic!("{:?} is not continued: {decided:?}", v.name);
        };
        let deferred = incoming.sentry_trace.sampled.is_none();
        assert_eq!(
            incoming.decide_at(v.sample_rate),
            v.expect.sampled,
            "decision of {:?}",
            v.name
        );
        assert_eq!(
            incoming.sentry_trace.sampled,
            Some(v.expect.sampled),
            "{:?}",
            v.name
        );
        assert_eq!(
            incoming.dsc.sample_rate(),
            v.expect.sample_rate,
            "sample_rate of {:?}",
            v.name
        );
        assert_eq!(
            incoming.dsc.get(DscKey::SampleRate),
            v.expect.sample_rate_text.as_deref(),
            "sample_rate text of {:?}",
            v.name
        );
        let text = incoming.dsc.get(DscKey::SampleRand).expect("a sample_rand");
        let sample_rand = incoming.dsc.sample_rand().expect("a valid sample_rand");
        let caller = DynamicSamplingContext::from_baggage(v.baggage.iter().map(|h| h.as_bytes()));
        match v.expect.sample_rand {
            ExpectedSampleRand::Kept(value) => {
                // The caller's text, passed on as it came (decoded, re-encoded).
                assert_eq!(Some(text), caller.get(DscKey::SampleRand), "{:?}", v.name);
                let stated: f64 = text.trim().parse().expect("a number");
                assert_eq!(stated, value, "sample_rand of {:?}", v.name);
            }
            ExpectedSampleRand::Filled { between: (lo, hi) } => {
                // In place of the caller's, if it sent one.
                assert_ne!(Some(text), caller.get(DscKey::SampleRand), "{:?}", v.name);
                let filled = sample_rand.as_f64();
                assert!(
                    (lo..hi).contains(&filled),
                    "{:?}: sample_rand {text} not in [{lo}, {hi})",
                    v.name
                );
                // Without the caller's flag, the decision is the filled-in value's.
                if deferred {
                    assert_eq!(v.expect.sampled, filled < v.sample_rate, "{:?}", v.name);
                }
            }
        }
    }
}

/// The response headers of `lines`, values as bytes.
fn header_map<'a>(lines: impl IntoIterator<Item = (&'a str, &'a str)>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in lines {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a header name");
        let value = HeaderValue::from_bytes(value.as_bytes()).expect("a header value");
        headers.append(name, value);
    }
    headers
}

#[test]
fn cache_vectors_classify() {
    let vectors = cache_vectors();
    assert!(vectors.len() >= 30, "too few cache vectors");
    for v in &vectors {
        let headers = header_map(v.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let expected = match v.cacheability {
            ExpectedCacheability::Shared => Cacheability::Shared,
            ExpectedCacheability::Heuristic => Cacheability::Heuristic,
            ExpectedCacheability::Private => Cacheability::Private,
        };
        assert_eq!(Cacheability::of(&headers), expected, "{:?}", v.name);
        assert_eq!(
            is_publicly_cacheable(&headers),
            expected == Cacheability::Shared,
            "{:?}",
            v.name
        );
        // The Cache-Control a heuristic page is given makes it private.
        let mut marked = header_map(
            v.headers
                .iter()
                .filter(|(name, _)| !name.eq_ignore_ascii_case("cache-control"))
                .map(|(n, v)| (n.as_str(), v.as_str())),
        );
        for line in v.cache_control_marked() {
            marked.append(
                CACHE_CONTROL,
                HeaderValue::from_bytes(line.as_bytes()).expect("a header value"),
            );
        }
        let after = match expected {
            Cacheability::Heuristic => Cacheability::Private,
            other => other,
        };
        assert_eq!(Cacheability::of(&marked), after, "{:?} marked", v.name);
    }
}

/// The `traceparent` tag of `tests/vectors/traceparent.json`, as a browser finds it in the page
/// (`tests/peer/traceparent.mjs` reads the same contents with `@opentelemetry/core`).
#[test]
fn traceparent_vectors() {
    let path = sentry_meta_tests::vectors_path().with_file_name("traceparent.json");
    let text = std::fs::read_to_string(&path).expect("tests/vectors/traceparent.json");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let vectors = doc["traceparent"].as_array().expect("a list of vectors");
    assert!(vectors.len() >= 5);
    for v in vectors {
        let trace_id: sentry_meta::TraceId = v["trace_id"]
            .as_str()
            .expect("an id")
            .parse()
            .expect("a trace id");
        let span_id: sentry_meta::SpanId = v["span_id"]
            .as_str()
            .expect("an id")
            .parse()
            .expect("a span id");
        let meta = sentry_meta::TraceMeta::new(trace_id, span_id, v["sampled"].as_bool(), None)
            .traceparent(true);
        let html = format!(
            "<!DOCTYPE html><html><head>{}</head><body></body></html>",
            meta.to_html()
        );
        let found: Vec<String> = sentry_meta_tests::meta_elements(&html)
            .into_iter()
            .filter(|(name, _)| name == "traceparent")
            .map(|(_, content)| content)
            .collect();
        let expected: Vec<String> = v["content"]
            .as_str()
            .map(str::to_owned)
            .into_iter()
            .collect();
        assert_eq!(found, expected, "{v}");
    }
}
