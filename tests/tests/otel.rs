//! The OpenTelemetry adapter in a real axum server on loopback: the request's span comes from a
//! real OpenTelemetry SDK tracer provider (spans kept by its in-memory exporter), its parent
//! from the caller's headers through `OtelMeta::propagator` composed with OpenTelemetry's W3C
//! propagator, once through the `opentelemetry` API and once through `tracing` +
//! `tracing-opentelemetry`; pages fetched over HTTP, parsed with `scraper`, and compared with
//! the spans the SDK exported.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Html;
use axum::routing::get;
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracer, SdkTracerProvider, SpanData};
use sentry_meta::opentelemetry::{OtelMeta, RequestHeaders};
use sentry_meta::{DynamicSamplingContext, SentryTrace};
use sentry_meta_tests::meta_elements;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

const TRACE: &str = "771a43a4192642f0b136d5159a501700";
const SPAN: &str = "b7ad6b7169203331";
const DSN: &str = "https://4f1c2d3e4b5a69788796a5b4c3d2e1f0@o42.ingest.sentry.io/7";

struct App {
    meta: OtelMeta,
    propagator: TextMapCompositePropagator,
    tracer: SdkTracer,
}

fn page(meta: &sentry_meta::SentryMeta) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html><html><head>{meta}<title>t</title></head><body>otel</body></html>"
    ))
}

/// The server span through the `opentelemetry` API.
async fn api_page(State(app): State<Arc<App>>, headers: HeaderMap) -> Html<String> {
    let parent = app.propagator.extract(&RequestHeaders::new(&headers));
    let span = app.tracer.start_with_context("GET /api", &parent);
    let cx = parent.with_span(span);
    tokio::task::yield_now().await;
    let html = page(&app.meta.meta(&cx));
    cx.span().end();
    html
}

/// The server span of a `tracing` span, exported by `tracing-opentelemetry`.
async fn tracing_page(State(app): State<Arc<App>>, headers: HeaderMap) -> Html<String> {
    let parent = app.propagator.extract(&RequestHeaders::new(&headers));
    let span = tracing::info_span!("GET /tracing");
    span.set_parent(parent)
        .expect("a span of the OpenTelemetry layer");
    let html = page(&app.meta.of_tracing_span(&span));
    drop(span);
    html
}

struct Server {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    http: reqwest::Client,
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
}

impl Server {
    fn start(meta: OtelMeta) -> Self {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let app = Arc::new(App {
            propagator: TextMapCompositePropagator::new(vec![
                Box::new(TraceContextPropagator::new()),
                Box::new(meta.propagator()),
            ]),
            meta,
            tracer: provider.tracer("web"),
        });
        let dispatch = tracing::Dispatch::new(
            tracing_subscriber::registry()
                .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("tracing"))),
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(move || {
                std::mem::forget(tracing::dispatcher::set_default(&dispatch));
            })
            .build()
            .expect("a runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a loopback port");
        let addr = listener.local_addr().expect("an address");
        let router = Router::new()
            .route("/api", get(api_page))
            .route("/tracing", get(tracing_page))
            .with_state(app);
        runtime.spawn(async move { axum::serve(listener, router).await });
        Self {
            runtime,
            addr,
            http: reqwest::Client::new(),
            exporter,
            provider,
        }
    }

    /// The page at `path`: its `sentry-trace`, its DSC, and its `traceparent` if any; and the
    /// one span the SDK exported for it.
    fn get(&self, path: &str, headers: &[(&str, &str)]) -> (Tags, SpanData) {
        let (tags, mut spans) = self.get_with_spans(path, headers);
        assert_eq!(spans.len(), 1, "one server span: {spans:?}");
        (tags, spans.remove(0))
    }

    /// The page at `path`, and the spans the SDK exported while it was served.
    fn get_with_spans(&self, path: &str, headers: &[(&str, &str)]) -> (Tags, Vec<SpanData>) {
        let mut request = self.http.get(format!("http://{}{path}", self.addr));
        for (name, value) in headers {
            // As bytes: a value need not be text (`é` goes out as its two UTF-8 bytes).
            let value = reqwest::header::HeaderValue::from_bytes(value.as_bytes());
            request = request.header(*name, value.expect("a header value"));
        }
        let html = self.runtime.block_on(async move {
            let response = request.send().await.expect("a response");
            assert_eq!(response.status(), 200);
            response.text().await.expect("a body")
        });
        self.provider.force_flush().expect("flushed");
        let spans = self.exporter.get_finished_spans().expect("the spans");
        self.exporter.reset();
        (Tags::of(&html), spans)
    }
}

#[derive(Debug)]
struct Tags {
    sentry_trace: SentryTrace,
    dsc: DynamicSamplingContext,
    traceparent: Option<String>,
}

impl Tags {
    fn of(html: &str) -> Self {
        let tags = meta_elements(html);
        let value = |name: &str| {
            let found: Vec<_> = tags
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .collect();
            assert!(found.len() <= 1, "at most one {name} tag: {html}");
            found.into_iter().next()
        };
        let sentry_trace = value("sentry-trace").expect("a sentry-trace tag");
        let baggage = value("baggage").expect("a baggage tag");
        Self {
            sentry_trace: sentry_trace.parse().expect("a valid sentry-trace"),
            dsc: DynamicSamplingContext::from_baggage([baggage.as_bytes()]),
            traceparent: value("traceparent"),
        }
    }

    fn names(&self, span: &SpanData) {
        let context = &span.span_context;
        assert_eq!(
            self.sentry_trace.trace_id.to_string(),
            context.trace_id().to_string()
        );
        assert_eq!(
            self.sentry_trace.span_id.map(|id| id.to_string()),
            Some(context.span_id().to_string())
        );
        assert_eq!(self.sentry_trace.sampled, Some(context.is_sampled()));
    }
}

fn meta() -> OtelMeta {
    OtelMeta::from_dsn(DSN)
        .expect("a DSN")
        .release("web@1.2.3")
        .environment("test")
        .traces_sample_rate(1.0)
}

#[test]
fn a_fresh_page_names_the_exported_span_with_a_head_dsc() {
    let server = Server::start(meta());
    for path in ["/api", "/tracing"] {
        let (tags, span) = server.get(path, &[]);
        tags.names(&span);
        assert_eq!(
            span.parent_span_id,
            opentelemetry::trace::SpanId::INVALID,
            "{path}: a root span"
        );
        let trace_id = span.span_context.trace_id().to_string();
        let dsc: Vec<_> = tags
            .dsc
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        for (key, value) in [
            ("trace_id", trace_id.as_str()),
            ("public_key", "4f1c2d3e4b5a69788796a5b4c3d2e1f0"),
            ("org_id", "42"),
            ("release", "web@1.2.3"),
            ("environment", "test"),
            ("sample_rate", "1"),
            ("sampled", "true"),
        ] {
            assert!(
                dsc.contains(&(key.to_owned(), value.to_owned())),
                "{path}: {key} in {dsc:?}"
            );
        }
        let rand = tags.dsc.sample_rand().expect("a sample_rand").as_f64();
        assert!(
            (0.0..1.0).contains(&rand),
            "{path}: sampled at rate 1: {rand}"
        );
        assert_eq!(tags.traceparent, None, "{path}: not asked for");
    }
}

#[test]
fn a_caller_sentry_trace_is_continued_with_its_frozen_dsc() {
    let server = Server::start(meta());
    let baggage = format!(
        "sentry-trace_id={TRACE},sentry-public_key=caller,sentry-org_id=42,sentry-sample_rand=0.25,vendor=x"
    );
    for path in ["/api", "/tracing"] {
        let (tags, span) = server.get(
            path,
            &[
                ("sentry-trace", &format!("{TRACE}-{SPAN}-1")),
                ("baggage", &baggage),
            ],
        );
        tags.names(&span);
        assert_eq!(span.span_context.trace_id().to_string(), TRACE, "{path}");
        assert_eq!(span.parent_span_id.to_string(), SPAN, "{path}");
        assert!(span.parent_span_is_remote, "{path}");
        let mut dsc: Vec<_> = tags
            .dsc
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        dsc.sort();
        let mut frozen = [
            ("trace_id", TRACE),
            ("public_key", "caller"),
            ("org_id", "42"),
            ("sample_rand", "0.25"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        frozen.sort();
        assert_eq!(
            dsc, frozen,
            "{path}: the caller's DSC, frozen, without vendor members"
        );
    }
}

#[test]
fn a_w3c_caller_is_continued_with_this_app_s_head_dsc() {
    let server = Server::start(meta().traceparent(true));
    let (tags, span) = server.get("/api", &[("traceparent", &format!("00-{TRACE}-{SPAN}-01"))]);
    tags.names(&span);
    assert_eq!(span.parent_span_id.to_string(), SPAN);
    assert_eq!(
        tags.dsc.get(sentry_meta::DscKey::PublicKey),
        Some("4f1c2d3e4b5a69788796a5b4c3d2e1f0")
    );
    assert_eq!(tags.dsc.get(sentry_meta::DscKey::TraceId), Some(TRACE));
    let span_id = span.span_context.span_id();
    assert_eq!(tags.traceparent, Some(format!("00-{TRACE}-{span_id}-01")));
    // Also with a bad `sentry-trace`, and baggage of this app's organization.
    let (tags, span) = server.get(
        "/api",
        &[
            ("traceparent", &format!("00-{TRACE}-{SPAN}-01")),
            ("sentry-trace", "junk"),
            ("baggage", "sentry-org_id=42"),
        ],
    );
    tags.names(&span);
    assert_eq!(span.parent_span_id.to_string(), SPAN);
}

/// A W3C caller's span is the parent of the Sentry transaction too, as of the OpenTelemetry
/// span, also beside a `sentry-trace` that is not continued.
#[test]
fn a_w3c_caller_is_the_sentry_transaction_s_parent() {
    let traceparent = format!("00-{TRACE}-{SPAN}-01");
    let cases: [&[(&str, &str)]; 3] = [
        &[("traceparent", &traceparent)],
        &[("traceparent", &traceparent), ("sentry-trace", "junk")],
        &[("traceparent", &traceparent), ("sentry-trace", TRACE)],
    ];
    for headers in cases {
        assert_both_continue(&meta(), client_options(true), headers);
    }
}

/// The caller's W3C `tracestate` travels on with its trace when its `sentry-trace` names the
/// same trace, and is not given to another trace.
#[test]
fn a_caller_s_tracestate_stays_with_its_trace() {
    use std::collections::HashMap;
    let propagator = TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(meta().propagator()),
    ]);
    let other = "0af7651916cd43dd8448eb211c80319c";
    for (trace, kept) in [(TRACE, "vendor=abc"), (other, "")] {
        let headers = HashMap::from([
            ("traceparent".to_owned(), format!("00-{trace}-{SPAN}-01")),
            ("tracestate".to_owned(), "vendor=abc".to_owned()),
            ("sentry-trace".to_owned(), format!("{TRACE}-{SPAN}-1")),
        ]);
        let cx = propagator.extract(&headers);
        let parent = cx.span().span_context().clone();
        assert_eq!(parent.trace_id().to_string(), TRACE);
        assert_eq!(parent.trace_state().header(), kept, "{trace}");
    }
}

/// A W3C caller that dropped its trace: OpenTelemetry's parent-based sampler drops the span too,
/// a decision this app's rate of 1 did not make. The head DSC states the decision without the
/// rate, and its `sample_rand` is valid.
#[test]
fn a_w3c_callers_dropped_trace_gets_a_dsc_without_this_app_s_rate() {
    let server = Server::start(meta());
    let traceparent = format!("00-{TRACE}-{SPAN}-00");
    let (tags, spans) = server.get_with_spans("/api", &[("traceparent", &traceparent)]);
    assert!(spans.is_empty(), "not sampled, not exported: {spans:?}");
    assert_eq!(tags.sentry_trace.trace_id.to_string(), TRACE);
    assert_eq!(tags.sentry_trace.sampled, Some(false));
    assert_eq!(tags.dsc.get(sentry_meta::DscKey::Sampled), Some("false"));
    assert_eq!(
        tags.dsc.get(sentry_meta::DscKey::SampleRate),
        None,
        "{:?}",
        tags.dsc
    );
    let rand = tags.dsc.sample_rand().expect("a sample_rand").as_f64();
    assert!((0.0..1.0).contains(&rand));
}

#[test]
fn callers_of_another_organization_or_with_junk_or_several_headers_start_new_traces() {
    let server = Server::start(meta());
    let junk = "x".repeat(100_000);
    let valid = format!("{TRACE}-{SPAN}-1");
    let traceparent = format!("00-{TRACE}-{SPAN}-01");
    let malformed = format!("{valid}-junk");
    let cases: [&[(&str, &str)]; 10] = [
        &[("sentry-trace", &valid), ("baggage", "sentry-org_id=7")],
        // The same caller's `traceparent` (which `TraceContextPropagator` reads) does not
        // continue it either, whatever its `sentry-trace`: none, a bad one, several.
        &[
            ("sentry-trace", &valid),
            ("traceparent", &traceparent),
            ("baggage", "sentry-org_id=7"),
        ],
        &[
            ("traceparent", &traceparent),
            ("baggage", "sentry-org_id=7"),
        ],
        &[
            ("sentry-trace", &malformed),
            ("traceparent", &traceparent),
            ("baggage", "sentry-release=1,sentry-org_id=7"),
        ],
        &[
            ("sentry-trace", &valid),
            ("sentry-trace", &valid),
            ("traceparent", &traceparent),
            ("baggage", "sentry-org_id=7"),
        ],
        // Several values are one malformed value, as for the tower layers; also when the
        // other is not text.
        &[("sentry-trace", &valid), ("sentry-trace", &valid)],
        &[("sentry-trace", &valid), ("sentry-trace", "\u{e9}")],
        &[(
            "sentry-trace",
            "771A43A4192642F0B136D5159A501700-B7AD6B7169203331-1",
        )],
        &[("sentry-trace", &format!("{TRACE}-{SPAN}-1-junk"))],
        &[("sentry-trace", &junk), ("baggage", &junk)],
    ];
    for headers in cases {
        let (tags, span) = server.get("/api", headers);
        tags.names(&span);
        assert_ne!(
            span.span_context.trace_id().to_string(),
            TRACE,
            "{headers:?}"
        );
        assert_eq!(
            span.parent_span_id,
            opentelemetry::trace::SpanId::INVALID,
            "{headers:?}"
        );
        assert_eq!(
            tags.dsc.get(sentry_meta::DscKey::PublicKey),
            Some("4f1c2d3e4b5a69788796a5b4c3d2e1f0")
        );
    }
}

#[test]
fn a_bad_dsn_is_an_error() {
    for dsn in ["", "not a dsn", "https://o42.ingest.sentry.io/7"] {
        assert!(OtelMeta::from_dsn(dsn).is_err(), "{dsn}");
    }
}

#[test]
fn an_unsampled_caller_keeps_its_decision() {
    let server = Server::start(meta());
    let (tags, spans) = server.get_with_spans(
        "/api",
        &[
            ("sentry-trace", &format!("{TRACE}-{SPAN}-0")),
            (
                "baggage",
                &format!("sentry-trace_id={TRACE},sentry-sampled=false"),
            ),
        ],
    );
    // The SDK's default sampler follows its parent: the span is dropped, not exported.
    assert!(spans.is_empty(), "{spans:?}");
    assert_eq!(tags.sentry_trace.trace_id.to_string(), TRACE);
    assert_ne!(
        tags.sentry_trace
            .span_id
            .map(|id| id.to_string())
            .as_deref(),
        Some(SPAN)
    );
    assert_eq!(tags.sentry_trace.sampled, Some(false));
    assert_eq!(tags.dsc.get(sentry_meta::DscKey::Sampled), Some("false"));
}

#[test]
fn a_caller_that_left_the_decision_open_is_decided_at_this_app_s_rate() {
    let deferred = format!("{TRACE}-{SPAN}");
    for (rate, sampled) in [(1.0, true), (0.0, false)] {
        let server = Server::start(meta().traces_sample_rate(rate));
        let (tags, spans) = server.get_with_spans("/api", &[("sentry-trace", &deferred)]);
        assert_eq!(tags.sentry_trace.trace_id.to_string(), TRACE);
        assert_eq!(tags.sentry_trace.sampled, Some(sampled), "rate {rate}");
        // The rate that decided is this app's, and the frozen DSC states it.
        assert_eq!(tags.dsc.sample_rate(), Some(rate), "rate {rate}");
        // The SDK's default sampler follows the decision: exported exactly when sampled.
        assert_eq!(spans.len(), usize::from(sampled), "rate {rate}: {spans:?}");
        if let [span] = &spans[..] {
            tags.names(span);
            assert_eq!(span.parent_span_id.to_string(), SPAN);
        }
    }
}

/// The options of a client of `DSN` that keeps every trace, strict about organizations or not.
fn client_options(strict: bool) -> sentry_core::ClientOptions {
    sentry_core::ClientOptions::new()
        .dsn(DSN)
        .traces_sample_rate(1.0)
        .strict_trace_continuation(strict)
}

/// A Hub of its own, bound to a client of `options` that sends to `transport` through a
/// `DscTransport` given `meta`.
fn hub_sending_to(
    transport: &Arc<sentry_core::test::TestTransport>,
    meta: &OtelMeta,
    options: sentry_core::ClientOptions,
) -> Arc<sentry_core::Hub> {
    let transport = sentry_meta::DscTransport::wrap(transport.clone()).opentelemetry(meta.clone());
    let client = Arc::new(sentry_core::Client::from(options.transport(transport)));
    Arc::new(sentry_core::Hub::new(Some(client), Arc::default()))
}

/// The transaction `sentry-opentelemetry` sends for a request's span, with the page's tags:
/// a client with `strict_trace_continuation` whose org is the caller's, as `meta`'s is.
fn sent_with_sentry_processor(
    meta: &OtelMeta,
    client: sentry_core::ClientOptions,
    headers: &[(&str, &str)],
) -> (Tags, sentry_core::protocol::Transaction<'static>) {
    use std::collections::HashMap;
    let transport = sentry_core::test::TestTransport::new();
    let options = client.transport(sentry_meta::DscTransport::wrap(transport.clone()));
    let client = Arc::new(sentry_core::Client::from(options));
    let hub = Arc::new(sentry_core::Hub::new(Some(client), Arc::default()));
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    let html = sentry_core::Hub::run(hub, || {
        let provider = SdkTracerProvider::builder()
            .with_span_processor(sentry_opentelemetry::SentrySpanProcessor::new())
            .build();
        let propagator = TextMapCompositePropagator::new(vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(meta.propagator()),
        ]);
        let parent = propagator.extract(&headers);
        let span = provider
            .tracer("web")
            .start_with_context("GET /api", &parent);
        let cx = parent.with_span(span);
        let html = page(&meta.meta(&cx)).0;
        cx.span().end();
        html
    });
    let mut sent = transport.fetch_and_clear_envelopes();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let transaction = sent
        .remove(0)
        .items()
        .find_map(|item| match item {
            sentry_core::protocol::EnvelopeItem::Transaction(t) => Some((**t).clone()),
            _ => None,
        })
        .expect("a transaction");
    (Tags::of(&html), transaction)
}

#[test]
fn the_sentry_transaction_continues_the_caller_the_page_continues() {
    let strict = meta().strict_trace_continuation(true);
    let sentry_trace = format!("{TRACE}-{SPAN}-1");
    let cases: [&[(&str, &str)]; 2] = [
        // Same organization, strict on both sides.
        &[
            ("sentry-trace", &sentry_trace),
            ("baggage", "sentry-org_id=42"),
        ],
        // A caller that left the decision open.
        &[
            ("sentry-trace", &format!("{TRACE}-{SPAN}")),
            ("baggage", "sentry-org_id=42"),
        ],
    ];
    for headers in cases {
        assert_both_continue(&strict, client_options(true), headers);
    }
}

/// The page and the transaction `sentry-opentelemetry` sends both continue the caller of
/// `headers`: the same trace, the transaction a child of the caller's span, the page of it.
fn assert_both_continue(
    meta: &OtelMeta,
    client: sentry_core::ClientOptions,
    headers: &[(&str, &str)],
) {
    let (tags, transaction) = sent_with_sentry_processor(meta, client, headers);
    let context = transaction.contexts.get("trace").expect("a trace context");
    let sentry_core::protocol::Context::Trace(trace) = context else {
        panic!("{context:?}");
    };
    assert_eq!(trace.trace_id.to_string(), TRACE, "{headers:?}");
    assert_eq!(tags.sentry_trace.trace_id.to_string(), TRACE, "{headers:?}");
    assert_eq!(
        tags.sentry_trace.span_id.map(|id| id.to_string()),
        Some(trace.span_id.to_string()),
        "{headers:?}"
    );
    assert_eq!(
        trace.parent_span_id.map(|id| id.to_string()).as_deref(),
        Some(SPAN),
        "{headers:?}"
    );
}

/// `OtelMeta`'s organization rule decides, and the Sentry client's, which `sentry-core` applies
/// again when the transaction starts, does not make a second decision: with rules that differ,
/// a caller the page continues is continued by the transaction too.
#[test]
fn the_sentry_transaction_follows_the_page_whatever_the_client_s_organization_rule() {
    let sentry_trace = format!("{TRACE}-{SPAN}-1");
    let client = |dsn: &str, strict: bool| {
        sentry_core::ClientOptions::new()
            .dsn(dsn)
            .traces_sample_rate(1.0)
            .strict_trace_continuation(strict)
    };
    let other_org = DSN.replace("@o42.", "@o43.");
    let no_org = OtelMeta::new().traces_sample_rate(1.0);
    let org_removed = meta().org_id("");
    let cases: [(&OtelMeta, &str, bool, &str); 7] = [
        // The client's org is 42, `OtelMeta` names none.
        (&no_org, DSN, false, "sentry-org_id=43"),
        (&org_removed, DSN, false, "sentry-org_id=43"),
        // The client is strict, `OtelMeta` is not.
        (&no_org, DSN, true, ""),
        (&no_org, DSN, true, "sentry-org_id=abc"),
        (&no_org, &other_org, true, "sentry-org_id=42"),
        // The client's org is 43, `OtelMeta`'s 42.
        (&meta(), &other_org, false, "sentry-org_id=42"),
        (&meta(), &other_org, true, ""),
    ];
    for (meta, dsn, strict, baggage) in cases {
        let headers = [
            ("sentry-trace", sentry_trace.as_str()),
            ("baggage", baggage),
        ];
        assert_both_continue(meta, client(dsn, strict), &headers);
    }
}

#[test]
fn a_caller_opentelemetry_cannot_name_as_a_parent_starts_a_new_trace_in_both() {
    let zeros = "0".repeat(32);
    let cases = [
        // All-zero ids: valid `sentry-trace`, invalid OpenTelemetry (W3C) ids.
        format!("{zeros}-{SPAN}-1"),
        format!("{TRACE}-0000000000000000-1"),
        // No span id: no parent to name (as `@sentry/opentelemetry` does).
        format!("{TRACE}-1"),
        TRACE.to_owned(),
    ];
    for sentry_trace in cases {
        let headers = [("sentry-trace", sentry_trace.as_str())];
        let (tags, transaction) =
            sent_with_sentry_processor(&meta(), client_options(false), &headers);
        let context = transaction.contexts.get("trace").expect("a trace context");
        let sentry_core::protocol::Context::Trace(trace) = context else {
            panic!("{context:?}");
        };
        // One new trace, the page's and the transaction's.
        let trace_id = trace.trace_id.to_string();
        assert!(trace_id != TRACE && trace_id != zeros, "{sentry_trace}");
        assert_eq!(
            tags.sentry_trace.trace_id.to_string(),
            trace_id,
            "{sentry_trace}"
        );
        assert_eq!(trace.parent_span_id, None, "{sentry_trace}");
    }
}

#[test]
fn injected_baggage_holds_the_dsc_and_the_opentelemetry_baggage() {
    use opentelemetry::KeyValue;
    use opentelemetry::baggage::{BaggageExt, KeyValueMetadata};
    use opentelemetry_sdk::propagation::BaggagePropagator;
    use std::collections::HashMap;

    let meta = meta();
    let propagator = TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
        Box::new(meta.propagator()),
    ]);
    // A caller's headers: its DSC, and baggage of its own.
    let incoming = HashMap::from([
        ("sentry-trace".to_owned(), format!("{TRACE}-{SPAN}-1")),
        (
            "baggage".to_owned(),
            format!("sentry-trace_id={TRACE},sentry-release=caller,user=alice"),
        ),
    ]);
    let parent = propagator.extract(&incoming);
    let provider = SdkTracerProvider::builder().build();
    // The caller's members (`BaggagePropagator` extracted them, `sentry-*` ones too) and
    // `extra` of this app's, of `len` bytes each; the baggage header injected for them.
    let inject = |extra: usize, len: usize| {
        let entries: Vec<_> = parent
            .baggage()
            .iter()
            .map(|(name, (value, _))| KeyValue::new(name.clone(), value.clone()))
            .chain((0..extra).map(|i| KeyValue::new(format!("k{i}"), "a b,c".repeat(len / 5))))
            .collect();
        let cx = parent.with_span(provider.tracer("web").start_with_context("GET /", &parent));
        let mut outgoing = HashMap::new();
        propagator.inject_context(&cx.with_baggage(entries), &mut outgoing);
        outgoing.remove("baggage").expect("a baggage header")
    };
    let baggage = inject(20, 5);
    let members: Vec<&str> = baggage.split(',').collect();
    // The caller's DSC first, as frozen, each `sentry-*` member once; then OpenTelemetry's
    // members, encoded as `BaggagePropagator` encodes them.
    let dsc_len = members
        .iter()
        .take_while(|m| m.starts_with("sentry-"))
        .count();
    assert!(members[0].starts_with("sentry-trace_id="), "{baggage}");
    assert!(
        members[dsc_len..].iter().all(|m| !m.starts_with("sentry-")),
        "{baggage}"
    );
    assert_eq!(members.len(), dsc_len + 1 + 20, "{baggage}");
    assert!(members.contains(&"user=alice"), "{baggage}");
    assert!(members.contains(&"k7=a%20b%2Cc"), "{baggage}");
    // Metadata is written as `BaggagePropagator` writes it, but for what would make members of
    // it (a `,`), no valid header value (a control character), or another value once the next
    // service decodes it (a `%`): each reads back as it was.
    let cx = parent.with_span(provider.tracer("web").start_with_context("GET /", &parent));
    let metadata = [
        ("m", "p=1,sentry-sampled=false"),
        ("n", "q=2"),
        ("o", "r=\u{1}%41;s"),
    ];
    let cx = cx
        .with_baggage(metadata.map(|(name, metadata)| KeyValueMetadata::new(name, "v", metadata)));
    let mut outgoing = HashMap::new();
    propagator.inject_context(&cx, &mut outgoing);
    let with_metadata = &outgoing["baggage"];
    assert!(
        http::HeaderValue::from_str(with_metadata).is_ok(),
        "{with_metadata}"
    );
    let members: Vec<&str> = with_metadata.split(',').collect();
    for member in [
        "m=v;p=1%2Csentry-sampled=false",
        "n=v;q=2",
        "o=v;r=%01%2541;s",
    ] {
        assert!(members.contains(&member), "{member} in {with_metadata}");
    }
    let again = propagator.extract(&outgoing);
    for (name, metadata) in metadata {
        let (_, read) = again.baggage().get_with_metadata(name).expect(name);
        assert_eq!(read.as_str(), metadata);
    }
    let dsc_of = |baggage: &str| DynamicSamplingContext::from_baggage([baggage.as_bytes()]);
    assert_eq!(dsc_of(with_metadata), dsc_of(&baggage), "{with_metadata}");
    let dsc = DynamicSamplingContext::from_baggage([baggage.as_bytes()]);
    assert_eq!(dsc.get(sentry_meta::DscKey::Release), Some("caller"));
    let dsc_members = members[..dsc_len].to_vec();
    // Within the W3C limits, the DSC whole.
    for (extra, len) in [(60, 5), (40, 500)] {
        let baggage = inject(extra, len);
        let members: Vec<&str> = baggage.split(',').collect();
        assert!(
            members.len() <= 64 && baggage.len() <= 8192,
            "{extra} of {len} bytes"
        );
        assert_eq!(members[..dsc_len], dsc_members, "{extra} of {len} bytes");
        assert_eq!(
            DynamicSamplingContext::from_baggage([baggage.as_bytes()]),
            dsc
        );
    }
}

/// OpenTelemetry baggage whose names read as `sentry-*` once decoded does not reach the DSC
/// of the next service: a `%` is written `%25`, so every name and value reads back as it was.
#[test]
fn opentelemetry_baggage_cannot_write_dsc_members() {
    use opentelemetry::KeyValue;
    use opentelemetry::baggage::BaggageExt;
    use opentelemetry_sdk::propagation::BaggagePropagator;
    use std::collections::HashMap;

    let propagator = TextMapCompositePropagator::new(vec![
        Box::new(BaggagePropagator::new()),
        Box::new(meta().propagator()),
    ]);
    // `BaggagePropagator` decodes the caller's names: `%2573entry-…` becomes `%73entry-…`.
    let incoming = HashMap::from([
        ("sentry-trace".to_owned(), format!("{TRACE}-{SPAN}-1")),
        (
            "baggage".to_owned(),
            format!(
                "sentry-trace_id={TRACE},sentry-public_key=caller,\
                 %2573entry-sampled=false,%2573entry-public_key=attacker"
            ),
        ),
    ]);
    let parent = propagator.extract(&incoming);
    // And this app's own member, with a name and a value that hold a `%`.
    let cx = parent.with_baggage(
        parent
            .baggage()
            .iter()
            .map(|(name, (value, _))| KeyValue::new(name.clone(), value.clone()))
            .chain([
                KeyValue::new("%73entry-release", "%41"),
                // What a reader that strips control characters after decoding reads as a DSC
                // member.
                KeyValue::new("\u{1}sentry-environment", "theirs"),
            ]),
    );
    let mut outgoing = HashMap::new();
    propagator.inject_context(&cx, &mut outgoing);
    let baggage = &outgoing["baggage"];
    // The caller's DSC as frozen: its members, and a `sample_rand` filled in.
    let dsc = DynamicSamplingContext::from_baggage([baggage.as_bytes()]);
    let keys: Vec<&str> = dsc.iter().map(|(key, _)| key).collect();
    assert_eq!(keys, ["trace_id", "public_key", "sample_rand"], "{baggage}");
    assert_eq!(dsc.get(sentry_meta::DscKey::PublicKey), Some("caller"));
    let members: Vec<&str> = baggage.split(',').collect();
    for member in ["%2573entry-sampled=false", "%2573entry-release=%2541"] {
        assert!(members.contains(&member), "{member} in {baggage}");
    }
    assert!(!baggage.contains("environment"), "{baggage}");
    // Read again by `BaggagePropagator`, each name and value is the one it extracted.
    let again = propagator.extract(&outgoing);
    assert_eq!(
        again
            .baggage()
            .get("%73entry-public_key")
            .map(|v| v.as_str()),
        Some("attacker")
    );
    assert_eq!(
        again.baggage().get("%73entry-release").map(|v| v.as_str()),
        Some("%41")
    );
}

#[test]
fn hostile_baggage_is_frozen_as_the_core_freezes_it() {
    let server = Server::start(meta());
    let sentry_trace = format!("{TRACE}-{SPAN}-1");
    let cases = [
        format!("sentry-trace_id={TRACE},sentry-release=%3Cscript%3E\"'&,sentry-environment=a%ZZb"),
        format!("sentry-trace_id={TRACE},{}", "vendor=x,".repeat(200)),
        format!(
            "sentry-trace_id={TRACE},sentry-public_key={}",
            "k".repeat(10_000)
        ),
    ];
    for baggage in cases {
        let (tags, span) = server.get(
            "/api",
            &[("sentry-trace", &sentry_trace), ("baggage", &baggage)],
        );
        tags.names(&span);
        let sentry_meta::Continuation::Continue(incoming) = sentry_meta::Continuation::decide(
            Some(sentry_trace.as_bytes()),
            [baggage.as_bytes()],
            &sentry_meta::ContinuationPolicy::new().org_id("42"),
        ) else {
            panic!("the core continues {baggage:.80}");
        };
        assert_eq!(
            tags.dsc.to_baggage(),
            incoming.dsc.to_baggage(),
            "the page's DSC is the core's frozen DSC for {baggage:.80}"
        );
    }
}

#[test]
fn concurrent_callers_get_their_own_traces() {
    let server = Server::start(meta());
    let traces: Vec<String> = (0..32)
        .map(|i| format!("{i:032x}").replace('0', "a"))
        .collect();
    let pages = server.runtime.block_on(async {
        let fetches: Vec<_> = traces
            .iter()
            .map(|trace| {
                let request = server
                    .http
                    .get(format!("http://{}/api", server.addr))
                    .header("sentry-trace", format!("{trace}-{SPAN}-1"))
                    .header(
                        "baggage",
                        format!("sentry-trace_id={trace},sentry-public_key=caller"),
                    );
                tokio::spawn(async move {
                    let response = request.send().await.expect("a response");
                    response.text().await.expect("a body")
                })
            })
            .collect();
        let mut pages = Vec::new();
        for fetch in fetches {
            pages.push(fetch.await.expect("no panic"));
        }
        pages
    });
    for (trace, html) in traces.iter().zip(pages) {
        let tags = Tags::of(&html);
        assert_eq!(&tags.sentry_trace.trace_id.to_string(), trace);
        assert_eq!(
            tags.dsc.get(sentry_meta::DscKey::TraceId),
            Some(trace.as_str())
        );
    }
}

/// The envelopes `sentry-opentelemetry` sends for a request traced with `tracing` (its span
/// closed by `tracing-opentelemetry` after it has been exited, in no context of its own),
/// through `DscSpanProcessor` and `DscTransport::opentelemetry`, and the request's page.
fn sent_for_a_tracing_span(
    meta: &OtelMeta,
    headers: &[(&str, &str)],
) -> (
    Tags,
    Vec<(String, String)>,
    sentry_core::protocol::Transaction<'static>,
) {
    use sentry_meta::opentelemetry::DscSpanProcessor;
    use std::collections::HashMap;
    let transport = sentry_core::test::TestTransport::new();
    let options = sentry_core::ClientOptions::new()
        .dsn(DSN)
        .traces_sample_rate(1.0)
        .transport(sentry_meta::DscTransport::wrap(transport.clone()).opentelemetry(meta.clone()));
    let client = Arc::new(sentry_core::Client::from(options));
    let hub = Arc::new(sentry_core::Hub::new(Some(client), Arc::default()));
    let provider = SdkTracerProvider::builder()
        .with_span_processor(DscSpanProcessor::new(
            sentry_opentelemetry::SentrySpanProcessor::new(),
        ))
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("tracing")));
    let propagator = TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(meta.propagator()),
    ]);
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    let html = sentry_core::Hub::run(hub, || {
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("GET /tracing");
            span.set_parent(propagator.extract(&headers))
                .expect("a span of the OpenTelemetry layer");
            let html = span.in_scope(|| {
                let _render = tracing::info_span!("template.render").entered();
                page(&meta.current()).0
            });
            // Closed here, after it has been exited: the transaction is sent now.
            drop(span);
            html
        })
    });
    let mut sent = transport.fetch_and_clear_envelopes();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (dsc, envelope) = sentry_meta_tests::sentry::on_the_wire(&sent.remove(0));
    let transaction = envelope
        .items()
        .find_map(|item| match item {
            sentry_core::protocol::EnvelopeItem::Transaction(t) => Some((**t).clone()),
            _ => None,
        })
        .expect("a transaction");
    (Tags::of(&html), dsc, transaction)
}

#[test]
fn a_tracing_span_s_transaction_carries_its_page_s_dsc() {
    let sentry_trace = format!("{TRACE}-{SPAN}-1");
    let baggage = format!("sentry-trace_id={TRACE},sentry-public_key=upstream,sentry-org_id=42");
    let cases: [&[(&str, &str)]; 2] = [
        &[],
        &[("sentry-trace", &sentry_trace), ("baggage", &baggage)],
    ];
    for headers in cases {
        let (tags, dsc, transaction) = sent_for_a_tracing_span(&meta(), headers);
        let (trace_id, _) = sentry_meta_tests::sentry::trace_context(&transaction);
        assert_eq!(
            trace_id,
            tags.sentry_trace.trace_id.to_string(),
            "{headers:?}"
        );
        let mut page: Vec<(String, String)> = tags
            .dsc
            .iter()
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect();
        page.sort();
        assert_eq!(dsc, page, "{headers:?}");
        let public_key = if headers.is_empty() {
            "4f1c2d3e4b5a69788796a5b4c3d2e1f0"
        } else {
            "upstream"
        };
        assert!(
            dsc.contains(&("public_key".to_owned(), public_key.to_owned())),
            "{dsc:?}"
        );
    }
}

/// An event captured in an OpenTelemetry span that `SentrySpanProcessor` made no transaction of
/// (OpenTelemetry did not sample it) or no longer holds (it has ended) joins the span's trace,
/// with the DSC of the span's page, as one captured in a sampled span does: not the Hub's
/// fallback trace, which every such event of the process would share.
#[test]
fn events_join_the_trace_of_their_opentelemetry_span_sampled_or_not() {
    use opentelemetry_sdk::trace::Sampler;
    use sentry_meta::opentelemetry::DscSpanProcessor;
    let meta = meta();
    for (sampler, sampled) in [(Sampler::AlwaysOff, "0"), (Sampler::AlwaysOn, "1")] {
        let transport = sentry_core::test::TestTransport::new();
        let hub = hub_sending_to(&transport, &meta, client_options(false));
        let html = sentry_core::Hub::run(hub, || {
            let provider = SdkTracerProvider::builder()
                .with_sampler(sampler)
                .with_span_processor(DscSpanProcessor::new(
                    sentry_opentelemetry::SentrySpanProcessor::new(),
                ))
                .build();
            let span = provider.tracer("web").start("GET /");
            let cx = opentelemetry::Context::current_with_span(span);
            let html = page(&meta.meta(&cx)).0;
            let _attached = cx.clone().attach();
            sentry_core::capture_message("in the span", sentry_core::Level::Error);
            cx.span().end();
            sentry_core::capture_message("after its end", sentry_core::Level::Error);
            html
        });
        let tags = Tags::of(&html);
        assert!(tags.sentry_trace.to_string().ends_with(sampled), "{html}");
        let mut page: Vec<(String, String)> = tags
            .dsc
            .iter()
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect();
        page.sort();
        let mut events = 0;
        for envelope in transport.fetch_and_clear_envelopes() {
            let (dsc, envelope) = sentry_meta_tests::sentry::on_the_wire(&envelope);
            for item in envelope.items() {
                let sentry_core::protocol::EnvelopeItem::Event(event) = item else {
                    continue;
                };
                let Some(sentry_core::protocol::Context::Trace(trace)) =
                    event.contexts.get("trace")
                else {
                    panic!("no trace context: {event:?}");
                };
                let trace_id = tags.sentry_trace.trace_id.to_string();
                assert_eq!(trace.trace_id.to_string(), trace_id, "{event:?}");
                assert_eq!(dsc, page, "{:?}", event.message);
                events += 1;
            }
        }
        assert_eq!(events, 2, "sampler {sampled}");
    }
}

/// The caller is handed to `SentrySpanProcessor` again when the request's span starts, with the
/// client bound then: headers extracted before a Hub with the client is bound (say in a layer
/// outside the one that binds it) still give a transaction of the page's trace, whose
/// organization rule (strict, here) the client checks again.
#[test]
fn the_caller_reaches_the_transaction_when_the_client_is_bound_after_extraction() {
    use sentry_meta::opentelemetry::DscSpanProcessor;
    use std::collections::HashMap;
    let transport = sentry_core::test::TestTransport::new();
    let hub = hub_sending_to(&transport, &meta(), client_options(true));
    let headers = HashMap::from([
        ("sentry-trace".to_owned(), format!("{TRACE}-{SPAN}-1")),
        ("baggage".to_owned(), "sentry-org_id=42".to_owned()),
    ]);
    // No client bound here.
    let parent = meta().propagator().extract(&headers);
    let html = sentry_core::Hub::run(hub, || {
        let provider = SdkTracerProvider::builder()
            .with_span_processor(DscSpanProcessor::new(
                sentry_opentelemetry::SentrySpanProcessor::new(),
            ))
            .build();
        let span = provider.tracer("web").start_with_context("GET /", &parent);
        let cx = parent.with_span(span);
        let html = page(&meta().meta(&cx)).0;
        cx.span().end();
        html
    });
    let tags = Tags::of(&html);
    assert_eq!(tags.sentry_trace.trace_id.to_string(), TRACE);
    let on_the_wire = transport
        .fetch_and_clear_envelopes()
        .iter()
        .map(|envelope| sentry_meta_tests::sentry::on_the_wire(envelope).1)
        .collect();
    let transactions = sentry_meta_tests::sentry::transactions(on_the_wire);
    assert_eq!(transactions.len(), 1);
    let (trace_id, span_id) = sentry_meta_tests::sentry::trace_context(&transactions[0]);
    assert_eq!(trace_id, TRACE);
    assert_eq!(
        Some(span_id),
        tags.sentry_trace.span_id.map(|id| id.to_string())
    );
}

/// An event that is in a trace of its own (a Sentry transaction's, here, the span of the Hub)
/// keeps it while an OpenTelemetry span of another trace is current: only events that would
/// keep the Hub's fallback trace join the OpenTelemetry span's.
#[test]
fn events_in_a_sentry_span_keep_its_trace() {
    use opentelemetry_sdk::trace::Sampler;
    use sentry_meta::opentelemetry::DscSpanProcessor;
    let transport = sentry_core::test::TestTransport::new();
    let hub = hub_sending_to(&transport, &meta(), client_options(false));
    let sentry_trace = sentry_core::Hub::run(hub, || {
        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::AlwaysOff)
            .with_span_processor(DscSpanProcessor::new(
                sentry_opentelemetry::SentrySpanProcessor::new(),
            ))
            .build();
        let cx = opentelemetry::Context::current_with_span(provider.tracer("web").start("GET /"));
        let _attached = cx.attach();
        let context = sentry_core::TransactionContext::new("GET /sentry", "http.server");
        let transaction = sentry_core::start_transaction(context);
        let trace_id = transaction.get_trace_context().trace_id;
        sentry_core::configure_scope(|scope| scope.set_span(Some(transaction.clone().into())));
        sentry_core::capture_message("in the Sentry transaction", sentry_core::Level::Error);
        trace_id
    });
    let events: Vec<_> = transport
        .fetch_and_clear_envelopes()
        .iter()
        .filter_map(|envelope| {
            let (_, envelope) = sentry_meta_tests::sentry::on_the_wire(envelope);
            envelope.event().cloned()
        })
        .collect();
    assert_eq!(events.len(), 1);
    let Some(sentry_core::protocol::Context::Trace(trace)) = events[0].contexts.get("trace") else {
        panic!("no trace context: {:?}", events[0]);
    };
    assert_eq!(trace.trace_id, sentry_trace);
}

/// The processors made before a client is bound to the Hub (telemetry set up before
/// `sentry::init`, where `SentrySpanProcessor::new` adds no event processor): each event captured
/// in an OpenTelemetry span still joins that span's trace, not the Hub's fallback trace, which
/// every such event would share.
#[test]
fn events_join_their_span_s_trace_when_the_processor_came_before_the_client() {
    use sentry_meta::opentelemetry::DscSpanProcessor;
    let transport = sentry_core::test::TestTransport::new();
    let client = hub_sending_to(&transport, &meta(), client_options(false)).client();
    let hub = Arc::new(sentry_core::Hub::new(None, Arc::default()));
    let pages = sentry_core::Hub::run(hub.clone(), || {
        let provider = SdkTracerProvider::builder()
            .with_span_processor(DscSpanProcessor::new(
                sentry_opentelemetry::SentrySpanProcessor::new(),
            ))
            .build();
        // `sentry::init`, after the tracer provider.
        hub.bind_client(client);
        let pages: Vec<_> = (0..3)
            .map(|_| {
                let cx = opentelemetry::Context::current_with_span(
                    provider.tracer("web").start("GET /"),
                );
                let html = page(&meta().meta(&cx)).0;
                let _attached = cx.clone().attach();
                sentry_core::capture_message("in the span", sentry_core::Level::Error);
                cx.span().end();
                Tags::of(&html).sentry_trace.trace_id.to_string()
            })
            .collect();
        pages
    });
    let events: Vec<String> = transport
        .fetch_and_clear_envelopes()
        .iter()
        .filter_map(|envelope| {
            let (_, envelope) = sentry_meta_tests::sentry::on_the_wire(envelope);
            match envelope.event()?.contexts.get("trace") {
                Some(sentry_core::protocol::Context::Trace(trace)) => {
                    Some(trace.trace_id.to_string())
                }
                _ => panic!("no trace context: {envelope:?}"),
            }
        })
        .collect();
    assert_eq!(events, pages);
}

/// A sampler that records spans without sampling them, as span-metrics setups use.
#[derive(Debug, Clone)]
struct RecordOnly;

impl opentelemetry_sdk::trace::ShouldSample for RecordOnly {
    fn should_sample(
        &self,
        _: Option<&opentelemetry::Context>,
        _: opentelemetry::trace::TraceId,
        _: &str,
        _: &opentelemetry::trace::SpanKind,
        _: &[opentelemetry::KeyValue],
        _: &[opentelemetry::trace::Link],
    ) -> opentelemetry_sdk::trace::SamplingResult {
        opentelemetry_sdk::trace::SamplingResult {
            decision: opentelemetry_sdk::trace::SamplingDecision::RecordOnly,
            attributes: Vec::new(),
            trace_state: opentelemetry::trace::TraceState::default(),
        }
    }
}

/// A span OpenTelemetry records but does not sample is not sampled: its page says so, and no
/// transaction is sent for it (`SentrySpanProcessor` would make one of any span it is given).
#[test]
fn a_span_recorded_but_not_sampled_sends_no_transaction() {
    use sentry_meta::opentelemetry::DscSpanProcessor;
    let meta = meta();
    let transport = sentry_core::test::TestTransport::new();
    let hub = hub_sending_to(&transport, &meta, client_options(false));
    let html = sentry_core::Hub::run(hub, || {
        let provider = SdkTracerProvider::builder()
            .with_sampler(RecordOnly)
            .with_span_processor(DscSpanProcessor::new(
                sentry_opentelemetry::SentrySpanProcessor::new(),
            ))
            .build();
        let cx = opentelemetry::Context::current_with_span(provider.tracer("web").start("GET /"));
        let html = page(&meta.meta(&cx)).0;
        cx.span().end();
        html
    });
    assert_eq!(Tags::of(&html).sentry_trace.sampled, Some(false), "{html}");
    let sent = transport.fetch_and_clear_envelopes();
    assert!(sent.is_empty(), "{sent:?}");
}

/// Without a rate of its own the app samples a caller that left the decision open, as at rate 1,
/// and its frozen DSC says so in place of the caller's rate, which decided nothing: the flag,
/// `sample_rand` and `sample_rate` agree (here as sentry-python sends from outside a
/// transaction).
#[test]
fn a_caller_that_left_the_decision_open_is_sampled_without_a_rate() {
    let deferred = format!("{TRACE}-{SPAN}");
    let baggage =
        format!("sentry-trace_id={TRACE},sentry-sample_rate=0.2,sentry-sample_rand=0.734");
    let server = Server::start(OtelMeta::from_dsn(DSN).expect("a DSN"));
    let (tags, span) = server.get(
        "/api",
        &[("sentry-trace", &deferred), ("baggage", &baggage)],
    );
    tags.names(&span);
    assert_eq!(tags.sentry_trace.sampled, Some(true));
    assert_eq!(tags.dsc.sample_rate(), Some(1.0));
    assert_eq!(tags.dsc.get(sentry_meta::DscKey::SampleRand), Some("0.734"));
}
