//! `TraceMeta::current()` with a real `sentry` client whose transport captures envelopes: the
//! tags name the span that is really sent, with the decision the SDK really made.

use std::collections::HashSet;
use std::sync::Arc;

use sentry_core::{Hub, TransactionContext};
use sentry_meta_core::{ContinuationPolicy, DscKey, SampleRand, SentryTrace, TraceMeta, TraceRoot};
use sentry_meta_tests::assert_head_is_exactly;
use sentry_meta_tests::sentry::{PUBLIC_KEY, options, trace_context, with_client};

fn render_in_transaction(child: bool) -> TraceMeta {
    let tx = sentry_core::start_transaction(TransactionContext::new("GET /", "http.server"));
    let meta = if child {
        let span = tx.start_child("template.render", "layout");
        Hub::current().configure_scope(|s| s.set_span(Some(span.clone().into())));
        let meta = TraceMeta::current().expect("client bound");
        span.finish();
        meta
    } else {
        Hub::current().configure_scope(|s| s.set_span(Some(tx.clone().into())));
        TraceMeta::current().expect("client bound")
    };
    tx.finish();
    meta
}

#[test]
fn tags_name_the_sent_transaction() {
    let (meta, sent) = with_client(options().traces_sample_rate(1.0), || {
        render_in_transaction(false)
    });
    assert_eq!(sent.len(), 1);
    let (trace_id, span_id) = trace_context(&sent[0]);
    assert_eq!(
        meta.sentry_trace_header(),
        format!("{trace_id}-{span_id}-1")
    );
    let dsc = meta.dsc().expect("a DSC");
    assert_eq!(dsc.get(DscKey::TraceId), Some(trace_id.as_str()));
    assert_eq!(dsc.get(DscKey::PublicKey), Some(PUBLIC_KEY));
    assert_eq!(dsc.get(DscKey::SampleRate), Some("1"));
    assert_eq!(dsc.get(DscKey::Sampled), Some("true"));
    assert_eq!(dsc.get(DscKey::Release), Some("web@1.2.3"));
    assert_eq!(dsc.get(DscKey::Environment), Some("test"));
    assert_eq!(dsc.get(DscKey::OrgId), Some("42"));
    assert_eq!(
        dsc.sample_rand(),
        Some(SampleRand::from_trace_id(
            meta.sentry_trace().trace_id,
            Some((1.0, true))
        ))
    );
    let baggage = meta.baggage_header().expect("baggage");
    assert_head_is_exactly(
        &meta.to_html(),
        &[
            ("sentry-trace", meta.sentry_trace_header()),
            ("baggage", &baggage),
        ],
    );
}

#[test]
fn tags_name_the_active_child_span() {
    let (meta, sent) = with_client(options().traces_sample_rate(1.0), || {
        render_in_transaction(true)
    });
    let (trace_id, root_span) = trace_context(&sent[0]);
    assert_eq!(sent[0].spans.len(), 1);
    let child = sent[0].spans[0].span_id.to_string();
    assert_ne!(child, root_span);
    assert_eq!(meta.sentry_trace_header(), format!("{trace_id}-{child}-1"));
}

#[test]
fn unsampled_transaction_gives_flag_zero() {
    let (meta, sent) = with_client(options().traces_sample_rate(0.0), || {
        render_in_transaction(false)
    });
    assert!(sent.is_empty(), "unsampled transactions are not sent");
    assert!(meta.sentry_trace_header().ends_with("-0"), "{meta:?}");
    let dsc = meta.dsc().expect("a DSC");
    assert_eq!(dsc.get(DscKey::Sampled), Some("false"));
    assert_eq!(dsc.get(DscKey::SampleRate), Some("0"));
    assert_eq!(
        dsc.sample_rand(),
        Some(SampleRand::from_trace_id(
            meta.sentry_trace().trace_id,
            Some((0.0, false))
        ))
    );
}

#[test]
fn sample_rand_agrees_with_the_decision() {
    let mut decisions = HashSet::new();
    for _ in 0..200 {
        let (meta, sent) = with_client(options().traces_sample_rate(0.5), || {
            render_in_transaction(false)
        });
        let dsc = meta.dsc().expect("a DSC");
        let sampled = meta.sentry_trace().sampled.expect("decided");
        decisions.insert(sampled);
        assert_eq!(sampled, !sent.is_empty());
        assert_eq!(dsc.get(DscKey::SampleRate), Some("0.5"));
        assert_eq!(
            dsc.sample_rand().expect("valid").as_f64() < 0.5,
            sampled,
            "{dsc:?}"
        );
    }
    assert_eq!(decisions.len(), 2, "both decisions were seen");
}

#[test]
fn sample_rate_is_written_as_configured() {
    // The option is an f32; 0.1 must not become 0.10000000149011612.
    for (rate, text) in [(0.1, "0.1"), (0.3, "0.3"), (0.25, "0.25"), (0.001, "0.001")] {
        let (meta, _) = with_client(options().traces_sample_rate(rate), || {
            render_in_transaction(false)
        });
        let dsc = meta.dsc().expect("a DSC");
        assert_eq!(dsc.get(DscKey::SampleRate), Some(text));
        let sampled = meta.sentry_trace().sampled.expect("decided");
        let rand = dsc.sample_rand().expect("valid").as_f64();
        assert_eq!(rand < text.parse::<f64>().expect("number"), sampled);
    }
}

#[test]
fn tracing_off_gives_no_flag_and_a_sample_rand() {
    let (meta, _) = with_client(options(), || render_in_transaction(false));
    let trace = meta.sentry_trace();
    assert_eq!(trace.sampled, None);
    let dsc = meta.dsc().expect("a DSC");
    assert!(dsc.sample_rand().is_some());
    for absent in [DscKey::Sampled, DscKey::SampleRate, DscKey::Transaction] {
        assert_eq!(dsc.get(absent), None, "{absent:?} in {dsc:?}");
    }
}

/// Without the layer, a transaction the SDK continued from a caller carries the caller's
/// decision, which the client's rate may not have made (dropped at rate 1, sampled at rate 0) and
/// which a client with tracing off does not make at all. The page's head DSC states the decision
/// only with tracing on, and the rate only when its `sample_rand` can agree with both.
#[test]
fn a_callers_decision_without_the_layer_gives_a_consistent_dsc() {
    let caller = "771a43a4192642f0b136d5159a501700-b7ad6b7169203331";
    for (rate, flag) in [
        (Some(1.0), "0"),
        (Some(0.0), "1"),
        (Some(0.5), "1"),
        (Some(0.5), "0"),
        (None, "1"),
        (None, "0"),
    ] {
        let options = match rate {
            Some(rate) => options().traces_sample_rate(rate),
            None => options(),
        };
        let (meta, _) = with_client(options, || {
            let sentry_trace = format!("{caller}-{flag}");
            let tx = sentry_core::start_transaction(TransactionContext::continue_from_headers(
                "GET /",
                "http.server",
                [("sentry-trace", sentry_trace.as_str())],
            ));
            Hub::current().configure_scope(|s| s.set_span(Some(tx.clone().into())));
            let meta = TraceMeta::current().expect("client bound");
            tx.finish();
            meta
        });
        let case = format!("rate {rate:?}, caller -{flag}: {meta:?}");
        let dsc = meta.dsc().expect("a DSC");
        let rand = dsc.sample_rand().expect("a sample_rand").as_f64();
        match rate {
            Some(_) => {
                let sampled = meta.sentry_trace().sampled.expect("decided");
                assert_eq!(sampled, flag == "1", "{case}");
                let expected = if sampled { "true" } else { "false" };
                assert_eq!(dsc.get(DscKey::Sampled), Some(expected), "{case}");
                if let Some(rate) = dsc.get(DscKey::SampleRate) {
                    let rate: f64 = rate.parse().expect("a number");
                    assert_eq!(rand < rate, sampled, "{case}");
                }
                let stated = dsc.get(DscKey::SampleRate).is_some();
                assert_eq!(
                    stated,
                    rate == Some(0.5),
                    "the rate made the decision: {case}"
                );
            }
            None => {
                for absent in [DscKey::Sampled, DscKey::SampleRate, DscKey::Transaction] {
                    assert_eq!(dsc.get(absent), None, "{absent:?}: {case}");
                }
            }
        }
        let baggage = meta.baggage_header().expect("baggage");
        assert_head_is_exactly(
            &meta.to_html(),
            &[
                ("sentry-trace", meta.sentry_trace_header()),
                ("baggage", &baggage),
            ],
        );
    }
}

#[test]
fn no_span_means_no_flag_and_distinct_traces() {
    let (ids, _) = with_client(options().traces_sample_rate(1.0), || {
        (0..1000)
            .map(|_| {
                let root = Arc::new(TraceRoot::new_trace());
                let meta = root
                    .clone()
                    .sync_scope(|| TraceMeta::current().expect("client"));
                let trace: SentryTrace = meta.sentry_trace();
                assert_eq!(trace.sampled, None);
                assert_eq!(trace.trace_id, root.trace_id());
                let dsc = meta.dsc().expect("a DSC");
                assert!(dsc.sample_rand().is_some());
                assert_eq!(dsc.get(DscKey::Sampled), None);
                trace.trace_id
            })
            .collect::<Vec<_>>()
    });
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 1000);

    // Without the per-request root as well: never the scope's shared fallback trace id.
    let (ids, _) = with_client(options(), || {
        (0..1000)
            .map(|_| {
                TraceMeta::current()
                    .expect("client")
                    .sentry_trace()
                    .trace_id
            })
            .collect::<HashSet<_>>()
    });
    assert_eq!(ids.len(), 1000);
}

#[test]
fn continued_trace_passes_frozen_dsc() {
    let incoming = b"771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1";
    let baggage = b"sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-public_key=upstream,sentry-sample_rate=0.25,sentry-sampled=true,sentry-release=api%402,othervendor=x";
    let ((meta, root_trace), sent) = with_client(options().traces_sample_rate(1.0), || {
        let client = Hub::current().client().expect("client");
        let root = Arc::new(TraceRoot::from_headers(
            Some(incoming),
            [&baggage[..]],
            &ContinuationPolicy::from_client(&client),
        ));
        let ctx = TransactionContext::continue_from_headers(
            "GET /",
            "http.server",
            [(
                "sentry-trace",
                std::str::from_utf8(incoming).expect("ascii"),
            )],
        );
        root.clone().sync_scope(|| {
            let tx = sentry_core::start_transaction(ctx);
            Hub::current().configure_scope(|s| s.set_span(Some(tx.clone().into())));
            let meta = TraceMeta::current().expect("client");
            tx.finish();
            (meta, root.trace_id())
        })
    });
    let (trace_id, span_id) = trace_context(&sent[0]);
    assert_eq!(trace_id, root_trace.to_string());
    assert_eq!(
        meta.sentry_trace_header(),
        format!("{trace_id}-{span_id}-1")
    );
    let dsc = meta.dsc().expect("frozen DSC");
    assert_eq!(dsc.get(DscKey::PublicKey), Some("upstream"));
    assert_eq!(dsc.get(DscKey::Release), Some("api@2"));
    assert_eq!(dsc.get_other("othervendor"), None);
    assert!(dsc.sample_rand().expect("back-filled").as_f64() < 0.25);
    assert!(
        !meta
            .baggage_header()
            .expect("baggage")
            .contains("othervendor")
    );
}

#[test]
fn org_mismatch_is_not_mixed() {
    // The SDK refuses the other organization's trace; the page must describe the SDK's trace.
    let incoming = "771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1";
    let (meta, sent) = with_client(options().traces_sample_rate(1.0), || {
        let client = Hub::current().client().expect("client");
        let root = Arc::new(TraceRoot::from_headers(
            Some(incoming.as_bytes()),
            [&b"sentry-org_id=99,sentry-release=other"[..]],
            &ContinuationPolicy::from_client(&client),
        ));
        assert!(root.incoming().is_none(), "our decision: new trace");
        let ctx = TransactionContext::continue_from_headers(
            "GET /",
            "http.server",
            [("sentry-trace", incoming), ("baggage", "sentry-org_id=99")],
        );
        root.sync_scope(|| {
            let tx = sentry_core::start_transaction(ctx);
            Hub::current().configure_scope(|s| s.set_span(Some(tx.clone().into())));
            let meta = TraceMeta::current().expect("client");
            tx.finish();
            meta
        })
    });
    let (trace_id, _) = trace_context(&sent[0]);
    assert_ne!(trace_id, "771a43a4192642f0b136d5159a501700");
    assert!(meta.sentry_trace_header().starts_with(&trace_id));
    let dsc = meta.dsc().expect("DSC");
    assert_eq!(dsc.get(DscKey::TraceId), Some(trace_id.as_str()));
    assert_eq!(dsc.get(DscKey::Release), Some("web@1.2.3"));
}

#[test]
fn root_can_ask_for_traceparent() {
    let (meta, _) = with_client(options().traces_sample_rate(1.0), || {
        let root = Arc::new(TraceRoot::new_trace().traceparent(true));
        root.sync_scope(|| render_in_transaction(false))
    });
    let traceparent = meta.traceparent_header().expect("a span id");
    assert_head_is_exactly(
        &meta.to_html(),
        &[
            ("sentry-trace", meta.sentry_trace_header()),
            ("baggage", &meta.baggage_header().expect("baggage")),
            ("traceparent", &traceparent),
        ],
    );
}

#[test]
fn no_client_renders_nothing() {
    let hub = Arc::new(Hub::new(None, Arc::new(Default::default())));
    assert!(TraceMeta::from_hub(&hub).is_none());
}

#[test]
fn a_client_without_a_dsn_writes_no_tags() {
    // What `sentry::init` makes without a DSN: a client that sends nothing, so there is no
    // trace for the browser to continue (as `@sentry/core` writes nothing while disabled).
    let client = Arc::new(sentry_core::Client::from(
        sentry_core::ClientOptions::new().traces_sample_rate(1.0),
    ));
    assert!(!client.is_enabled());
    Hub::run(Arc::new(Hub::new(Some(client), Default::default())), || {
        let tx = sentry_core::start_transaction(TransactionContext::new("GET /", "http.server"));
        Hub::current().configure_scope(|s| s.set_span(Some(tx.clone().into())));
        assert!(TraceMeta::current().is_none());
        tx.finish();
    });
}
