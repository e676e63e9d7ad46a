//! The `</head>` injector and the tag stripper (`TraceMetaBody::inject` and `::strip`, the body
//! transforms of the axum layers) on arbitrary pages cut into arbitrary chunks.
//!
//! Input: a control field, then the page (see `control_and_rest`). Control byte 0 picks the tags
//! (with or without baggage and traceparent, an escaped hostile baggage, a baggage that escapes
//! to 48 KB); byte 1, when its two high bits are set, puts `(byte & 63)` KiB of spaces before the
//! page (to reach the injector's 64 KiB limit with a small input); bytes 2.. are chunk lengths
//! (see `Chunks::new`).
//!
//! Oracles: the chunked output equals the unchunked output, for injecting and stripping;
//! both agree with html5ever's reading of the page and of the result
//! (`sentry_meta_tests::inject_oracle`): a page that begins with a UTF-16 or UTF-32 byte-order
//! mark is left alone; injected tags go once right before the first `</head` that html5ever reads
//! as the head's end tag (outside template contents and text), with no trace tag before it,
//! and become the elements the browser SDK reads; a page left alone that has such an end tag has
//! a trace tag before it; stripping leaves every element but trace tags, and no trace tag in
//! the head. Injecting into the output changes nothing (no second copy); stripping the injected
//! page gives the stripped page; every body's size hint holds what it then yields.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use sentry_meta::tower::TraceMetaBody;
use sentry_meta_core::{DynamicSamplingContext, SerializedDsc, SpanId, TraceId, TraceMeta};
use sentry_meta_fuzz::{Chunks, assert_same_bytes, control_and_rest, read_body};
use sentry_meta_tests::inject_oracle::{check_injection, check_strip, insertion_point};

static TAGS: LazyLock<Vec<TraceMeta>> = LazyLock::new(|| {
    let trace_id: TraceId = "771a43a4192642f0b136d5159a501700"
        .parse()
        .expect("trace id");
    let span_id: SpanId = "b7ad6b7169203331".parse().expect("span id");
    let dsc = |baggage: &[u8]| {
        Some(SerializedDsc::new(DynamicSamplingContext::from_baggage([
            baggage,
        ])))
    };
    let full = dsc(b"sentry-trace_id=771a43a4192642f0b136d5159a501700,\
        sentry-public_key=49d0f7386ad645858ae85020e393bef3,sentry-sample_rate=0.25,\
        sentry-sample_rand=0.123456,sentry-sampled=true,sentry-environment=production,\
        sentry-release=web%401.2.3,sentry-transaction=GET%20%2Fusers%2F%7Bid%7D,sentry-org_id=42");
    let quotes = format!("sentry-release={}", "'".repeat(8000));
    vec![
        TraceMeta::new(trace_id, span_id, Some(true), None),
        TraceMeta::new(trace_id, span_id, Some(true), full).traceparent(true),
        TraceMeta::new(
            trace_id,
            span_id,
            Some(false),
            dsc(b"sentry-release='single' & </head>,sentry-x=%22%3C%3E"),
        ),
        TraceMeta::new(trace_id, span_id, None, dsc(quotes.as_bytes())),
        TraceMeta::new(trace_id, span_id, None, None).traceparent(true),
    ]
});

/// How a page is cut: the padding whole (its boundaries change nothing and would make long
/// inputs slow), the rest by the input's lengths.
#[derive(Clone, Copy)]
struct Cut<'a> {
    padding: usize,
    lengths: &'a [u8],
}

const WHOLE: Cut<'static> = Cut {
    padding: 0,
    lengths: &[],
};

fn inject(page: &[u8], meta: &TraceMeta, cut: Cut<'_>) -> Vec<u8> {
    let body = Chunks::after(cut.padding, page, cut.lengths);
    read_body(TraceMetaBody::inject(body, meta))
}

fn strip(page: &[u8], cut: Cut<'_>) -> Vec<u8> {
    read_body(TraceMetaBody::strip(Chunks::after(
        cut.padding,
        page,
        cut.lengths,
    )))
}

fuzz_target!(|data: &[u8]| {
    let (control, rest) = control_and_rest(data);
    let meta = &TAGS[usize::from(control.first().copied().unwrap_or(0)) % TAGS.len()];
    let padding = match control.get(1) {
        Some(&b) if b >= 0xC0 => usize::from(b & 63) * 1024,
        _ => 0,
    };
    let cut = Cut {
        padding,
        lengths: control.get(2..).unwrap_or_default(),
    };
    let mut page = vec![b' '; padding];
    page.extend_from_slice(rest);
    let tags = meta.to_html().into_bytes();

    let whole = inject(&page, meta, WHOLE);
    assert_same_bytes(&inject(&page, meta, cut), &whole, "chunked injection");
    let stripped = strip(&page, WHOLE);
    assert_same_bytes(&strip(&page, cut), &stripped, "chunked strip");
    check_injection(&page, &whole, meta);
    check_strip(&page, &stripped);

    let Some(at) = insertion_point(&page, &whole, &tags) else {
        return;
    };
    assert_same_bytes(&inject(&whole, meta, cut), &whole, "injected twice");
    // Tags right after a `<` that is text are in the body (text ends the head): the stripper
    // leaves them, as removing one would join that `<` to what follows.
    if !page[..at].ends_with(b"<") {
        assert_same_bytes(
            &strip(&whole, cut),
            &stripped,
            &format!("stripping the page injected at {at}"),
        );
    }
});
