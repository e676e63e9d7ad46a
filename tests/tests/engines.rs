//! Every template engine renders a child page that extends a base layout holding the helper in
//! its `<head>`, for the same inputs: all engines must write byte-identical heads, read back by
//! a real HTML parser as exactly the layout's own tag and the trace tags, whose `content` is the
//! header values. The explicit-value heads are snapshots (`tests/tests/snapshots/`).
//!
//! Ambient cases render every engine inside one Hub, one root and one active span, so that they
//! all see the same ids.

use std::sync::Arc;

use sentry_core::{Hub, TransactionContext};
use sentry_meta::{
    ContinuationPolicy, DscKey, DynamicSamplingContext, SentryMeta, SerializedDsc, SpanId, TraceId,
    TraceMeta, TraceRoot, TransactionSource,
};
use sentry_meta_tests::sentry::{options, trace_context, with_client};
use sentry_meta_tests::{assert_head_is_exactly, expected_elements, meta_elements};

const INCOMING: &str = "771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1";

#[path = "common/engines.rs"]
mod common;

use common::{Engines, HEADING, VIEWPORT, head};

/// What every engine's head must be, byte for byte.
fn expected_head(meta: &SentryMeta) -> String {
    format!("\n<meta name=\"viewport\" content=\"width=device-width\">\n{meta}\n")
}

/// The meta elements a parser must find: the layout's, then the trace tags with their header
/// values as `content`.
fn page_elements(meta: &SentryMeta) -> Vec<(String, String)> {
    let mut elements = vec![(VIEWPORT.0.to_owned(), VIEWPORT.1.to_owned())];
    if let Some(meta) = meta.trace_meta() {
        elements.extend(expected_elements(meta));
    }
    elements
}

/// Checks every engine's page against `meta`: identical heads that are exactly `meta`'s tags
/// after the layout's own, as the HTML parser reads them, and an escaped body.
fn check_pages(pages: &[(&'static str, String)], meta: &SentryMeta) {
    let expected = expected_head(meta);
    let elements = page_elements(meta);
    let elements: Vec<(&str, &str)> = elements
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_str()))
        .collect();
    for (engine, page) in pages {
        assert_eq!(head(page), expected, "{engine}: head of\n{page}");
        assert_head_is_exactly(head(page), &elements);
        // The whole page too: no tag anywhere else, and the body's text escaped by the engine.
        let all: Vec<(String, String)> = meta_elements(page);
        assert_eq!(all.len(), elements.len(), "{engine}: {page}");
        let document = scraper::Html::parse_document(page);
        let h1 = scraper::Selector::parse("body > h1").expect("selector");
        let text: Vec<String> = document
            .select(&h1)
            .map(|h| h.text().collect::<String>())
            .collect();
        assert_eq!(text, [HEADING], "{engine}: {page}");
        assert!(!page.contains("<b>"), "{engine} did not escape the body");
    }
}

/// Renders every engine with `root` as the request's root and a server transaction (continued
/// from `incoming` when given) as the active span; returns the pages and the tags that
/// `SentryMeta::current()` gives in the same scope.
fn render_in_transaction(
    engines: &Engines,
    root: Option<TraceRoot>,
    incoming: Option<&str>,
) -> (Vec<(&'static str, String)>, SentryMeta) {
    let render = || {
        let context = match incoming {
            Some(incoming) => TransactionContext::continue_from_headers(
                "GET /page",
                "http.server",
                [("sentry-trace", incoming)],
            ),
            None => TransactionContext::new("GET /page", "http.server"),
        };
        let tx = sentry_core::start_transaction(context);
        Hub::current().configure_scope(|s| s.set_span(Some(tx.clone().into())));
        let pages = engines.render(None);
        let meta = SentryMeta::current();
        tx.finish();
        (pages, meta)
    };
    match root {
        Some(root) => Arc::new(root).sync_scope(render),
        None => render(),
    }
}

#[test]
fn head_of_trace_with_a_real_client() {
    let engines = Engines::new();
    let ((pages, meta), sent) = with_client(options().traces_sample_rate(1.0), || {
        render_in_transaction(&engines, None, None)
    });
    let trace = meta.trace_meta().expect("a client is bound");
    let (trace_id, span_id) = trace_context(&sent[0]);
    assert_eq!(
        trace.sentry_trace_header(),
        format!("{trace_id}-{span_id}-1")
    );
    let baggage = trace.baggage_header().expect("a head DSC");
    assert!(baggage.contains("sentry-public_key=4f1c2d3e4b5a69788796a5b4c3d2e1f0"));
    check_pages(&pages, &meta);
}

#[test]
fn head_of_trace_behind_a_root() {
    let engines = Engines::new();
    let root = TraceRoot::new_trace().with_transaction("GET /page", TransactionSource::Route);
    let ((pages, meta), sent) = with_client(options().traces_sample_rate(1.0), || {
        render_in_transaction(&engines, Some(root), None)
    });
    let (trace_id, _) = trace_context(&sent[0]);
    let baggage = meta.trace_meta().and_then(TraceMeta::baggage_header);
    assert!(
        baggage
            .as_ref()
            .is_some_and(|b| b.contains(&format!("sentry-trace_id={trace_id}"))
                && b.contains("sentry-transaction=GET%20%2Fpage")),
        "{baggage:?}"
    );
    check_pages(&pages, &meta);
}

#[test]
fn continued_trace() {
    let engines = Engines::new();
    let baggage = "sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-public_key=upstream,\
                   sentry-sample_rate=0.25,sentry-sampled=true,sentry-release=api%402,othervendor=x";
    let ((pages, meta), sent) = with_client(options().traces_sample_rate(1.0), || {
        let client = Hub::current().client().expect("client");
        let root = TraceRoot::from_headers(
            Some(INCOMING.as_bytes()),
            [baggage.as_bytes()],
            &ContinuationPolicy::from_client(&client),
        );
        render_in_transaction(&engines, Some(root), Some(INCOMING))
    });
    let trace = meta.trace_meta().expect("a client is bound");
    let (trace_id, span_id) = trace_context(&sent[0]);
    assert_eq!(trace_id, "771a43a4192642f0b136d5159a501700");
    assert_eq!(
        trace.sentry_trace_header(),
        format!("{trace_id}-{span_id}-1")
    );
    let frozen = trace.baggage_header().expect("the frozen DSC");
    assert!(frozen.contains("sentry-public_key=upstream"), "{frozen}");
    assert!(!frozen.contains("othervendor"), "{frozen}");
    check_pages(&pages, &meta);
}

#[test]
fn hostile_incoming_baggage() {
    let engines = Engines::new();
    let hostile: [&[u8]; 7] = [
        b"sentry-release=\"><script>alert(1)</script>,sentry-environment=<b>&amp;</b>",
        b"sentry-release=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E,sentry-environment=a%26b%3Cc%3E%27",
        b"sentry-transaction=%0D%0A%00%1F%7F,sentry-x=<!--,sentry-y=-->",
        b"sentry-environment=prod\x7f\x00\r\n,sentry-release=a\tb\x0b",
        b"sentry-public_key=abc,sentry-release=</head><body onload=alert(1)>",
        b"sentry-release=\xff\xfe%ZZ%,sentry-environment=ok,sentry-x=%E2%80%A8%F0%9F%98%80",
        b"sentry-release='single' \"double\" & <angle>,sentry-public_key=k%20%2B+",
    ];
    for baggage in hostile {
        let ((pages, meta), _) = with_client(options().traces_sample_rate(1.0), || {
            let client = Hub::current().client().expect("client");
            let root = TraceRoot::from_headers(
                Some(INCOMING.as_bytes()),
                [baggage],
                &ContinuationPolicy::from_client(&client),
            );
            render_in_transaction(&engines, Some(root), Some(INCOMING))
        });
        check_pages(&pages, &meta);
        for (engine, page) in &pages {
            let head = head(page);
            for forbidden in ["<script", "</head><body", "<!--", "-->", "\r", "\0"] {
                assert!(
                    !head.contains(forbidden),
                    "{engine}: {forbidden:?} in {head}"
                );
            }
        }
    }
}

#[test]
fn no_span_root_only() {
    let engines = Engines::new();
    let root = Arc::new(TraceRoot::new_trace());
    let ((pages, meta), sent) = with_client(options().traces_sample_rate(1.0), || {
        root.clone()
            .sync_scope(|| (engines.render(None), SentryMeta::current()))
    });
    assert!(sent.is_empty());
    let trace = meta.trace_meta().expect("a client is bound");
    assert_eq!(trace.sentry_trace().trace_id, root.trace_id());
    assert_eq!(trace.sentry_trace().sampled, None);
    // Without a span every render of the request names the root's own span id.
    assert_eq!(trace.sentry_trace().span_id, Some(root.span_id()));
    let expected = expected_head(&meta);
    for (engine, page) in &pages {
        assert_eq!(head(page), expected, "{engine}: {page}");
        // Each page is still exactly its own tags.
        let own = meta_elements(page);
        let sentry_trace = &own[1].1;
        assert!(sentry_trace.starts_with(&root.trace_id().to_string()));
        let baggage = trace.baggage_header().expect("a head DSC");
        assert_head_is_exactly(
            head(page),
            &[
                VIEWPORT,
                ("sentry-trace", sentry_trace),
                ("baggage", &baggage),
            ],
        );
    }
}

/// Explicit values with fixed ids and DSCs: the heads are snapshots.
fn explicit_cases() -> Vec<(&'static str, SentryMeta)> {
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
        sentry-public_key=4f1c2d3e4b5a69788796a5b4c3d2e1f0,sentry-sample_rate=0.25,\
        sentry-sample_rand=0.123456,sentry-sampled=true,sentry-environment=production,\
        sentry-release=web%401.2.3,sentry-transaction=GET%20%2Fusers%2F%7Bid%7D,sentry-org_id=42");
    vec![
        (
            "explicit_sampled",
            TraceMeta::new(trace_id, span_id, Some(true), full.clone()).into(),
        ),
        (
            "explicit_not_sampled",
            TraceMeta::new(
                trace_id,
                span_id,
                Some(false),
                dsc(
                    b"sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-public_key=abc,\
                      sentry-sample_rate=0.25,sentry-sample_rand=0.75,sentry-sampled=false",
                ),
            )
            .into(),
        ),
        (
            "explicit_deferred_no_baggage",
            TraceMeta::new(trace_id, span_id, None, None).into(),
        ),
        (
            "explicit_traceparent",
            TraceMeta::new(trace_id, span_id, Some(true), full)
                .traceparent(true)
                .into(),
        ),
        (
            "explicit_hostile_dsc",
            TraceMeta::new(
                trace_id,
                span_id,
                Some(true),
                dsc(
                    b"sentry-release=\"><script>alert(1)</script>,sentry-environment=a&b<c>'\
                      ,sentry-x=%0D%0A%00,sentry-public_key=</head>",
                ),
            )
            .into(),
        ),
        (
            "explicit_empty_values",
            TraceMeta::new(trace_id, span_id, Some(true), {
                // Empty values are no members: none is written, by any engine.
                let mut dsc = DynamicSamplingContext::new();
                dsc.set_trace_id(trace_id);
                dsc.set(DscKey::Release, "");
                dsc.set(DscKey::Environment, "production");
                Some(SerializedDsc::new(dsc))
            })
            .into(),
        ),
        ("explicit_none", SentryMeta::none()),
    ]
}

#[test]
fn explicit_values_without_sentry() {
    let engines = Engines::new();
    // No client: nothing comes from the SDK, only the values passed.
    let hub = Arc::new(Hub::new(None, Arc::new(Default::default())));
    Hub::run(hub, || {
        assert_eq!(SentryMeta::current(), SentryMeta::none());
        for (name, meta) in explicit_cases() {
            let pages = engines.render(Some(&meta));
            check_pages(&pages, &meta);
            // Every engine's head is the same bytes (checked above): one snapshot for all.
            let tags = head(&pages[0].1).trim();
            insta::assert_snapshot!(name, tags);
        }
    });
}

#[test]
fn explicit_values_win_over_the_current_request() {
    let engines = Engines::new();
    let ((), _) = with_client(options().traces_sample_rate(1.0), || {
        let tx = sentry_core::start_transaction(TransactionContext::new("GET /", "http.server"));
        Hub::current().configure_scope(|s| s.set_span(Some(tx.clone().into())));
        for (_, meta) in explicit_cases() {
            check_pages(&engines.render(Some(&meta)), &meta);
        }
        tx.finish();
    });
}
