//! Rendering a computed `TraceMeta` into a buffer with room allocates nothing; neither does
//! reading a response's caching headers.

use sentry_meta_core::{DynamicSamplingContext, SerializedDsc, SpanId, TraceId, TraceMeta};

#[test]
fn render_into_existing_buffer_allocates_nothing() {
    let dsc = DynamicSamplingContext::from_baggage([&b"sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-public_key=49d0f7386ad645858ae85020e393bef3,sentry-sample_rate=1,sentry-sample_rand=0.5,sentry-sampled=true,sentry-environment=production,sentry-release=web%401.2.3,sentry-transaction=GET%20%2Fusers%2F%7Bid%7D"[..]]);
    let meta = TraceMeta::new(
        TraceId::random(),
        SpanId::random(),
        Some(true),
        Some(SerializedDsc::new(dsc)),
    )
    .traceparent(true);
    let mut page = String::with_capacity(4096);
    let info = allocation_counter::measure(|| {
        for _ in 0..100 {
            page.clear();
            meta.render_into(&mut page);
        }
    });
    assert_eq!(info.count_total, 0, "{info:?}");
    assert_eq!(page, meta.to_html());

    // A fmt::Write sink counts too: Display into a preallocated string.
    let info = allocation_counter::measure(|| {
        use std::fmt::Write;
        page.clear();
        write!(page, "{meta}").expect("writing to a String");
    });
    assert_eq!(info.count_total, 0, "{info:?}");
}

#[test]
fn classifying_a_response_for_the_cache_guard_allocates_nothing() {
    use http::{HeaderMap, HeaderValue};
    use sentry_meta::tower::Cacheability;

    let mut typical = HeaderMap::new();
    typical.insert(
        "content-type",
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let mut busy = typical.clone();
    for (name, value) in [
        (
            "cache-control",
            r#"no-cache="set-cookie, x", must-revalidate"#,
        ),
        ("cache-control", "max-age=99999999999999999999999"),
        ("date", "Sat, 01 Jan 2000 00:00:00 GMT"),
        ("expires", "Sun, 02 Jan 2000 00:00:00 GMT"),
        ("cdn-cache-control", "max-age=600"),
        ("surrogate-control", "max-age=600+60"),
    ] {
        busy.append(name, HeaderValue::from_static(value));
    }
    // Expires against Date: both HTTP-dates parsed.
    let mut dated = typical.clone();
    dated.insert(
        "date",
        HeaderValue::from_static("Sat, 01 Jan 2000 00:00:00 GMT"),
    );
    dated.insert(
        "expires",
        HeaderValue::from_static("Sun, 02 Jan 2000 00:00:00 GMT"),
    );
    let info = allocation_counter::measure(|| {
        for _ in 0..100 {
            assert_eq!(Cacheability::of(&typical), Cacheability::Heuristic);
            assert_eq!(Cacheability::of(&busy), Cacheability::Shared);
            assert_eq!(Cacheability::of(&dated), Cacheability::Shared);
        }
    });
    assert_eq!(info.count_total, 0, "{info:?}");
}
