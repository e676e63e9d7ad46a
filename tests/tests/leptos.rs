//! The leptos `<SentryMeta/>` component in a real `leptos_axum` server on loopback, behind
//! `sentry-tower`'s `NewSentryLayer` and `SentryMetaLayer`, in each SSR mode of `leptos_axum`;
//! pages fetched over HTTP and parsed with `scraper`, their ids compared with the transactions
//! the real Sentry client sent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use leptos::prelude::*;
use leptos_meta::{MetaTags, provide_meta_context};
use sentry_core::Client;
use sentry_core::protocol::{Context, EnvelopeItem};
use sentry_core::test::TestTransport;
use sentry_meta::leptos::SentryMeta;
use sentry_meta::tower::SentryMetaLayer;
use sentry_meta::{DscTransport, SentryTrace};
use sentry_meta_tests::meta_elements;
use sentry_meta_tests::sentry::on_the_wire;
use sentry_tower::NewSentryLayer;
use tower::ServiceBuilder;

const TRACE: &str = "771a43a4192642f0b136d5159a501700";
const SPAN: &str = "b7ad6b7169203331";
const BAGGAGE: &str = "sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-public_key=abc,\
                       sentry-release=a%26b%3Cc%3E%22d%22,sentry-environment=a<b>&'c,sentry-sample_rand=0.5";

/// The SSR modes of `leptos_axum`, each served at its own path.
const MODES: [&str; 5] = [
    "/out-of-order",
    "/in-order",
    "/partially-blocked",
    "/async",
    "/async-suspended",
];

/// The document: `leptos_meta` writes the head tags at `<MetaTags/>`.
fn shell() -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html>
            <head><MetaTags/><title>"leptos"</title></head>
            <body><App/></body>
        </html>
    }
}

/// A page whose body waits on an async part, so that streaming modes send the head first and
/// the rest after the handler returned.
#[component]
fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <SentryMeta/>
        <h1>"leptos"</h1>
        <Suspense fallback=|| "loading">
            {Suspend::new(async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                view! { <p>"loaded"</p> }
            })}
        </Suspense>
    }
}

/// The document of a page whose tags are written after an `.await`, in the async part of the
/// page: rendered on leptos' executor, outside the request's handler and Hub.
fn suspended_shell() -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html>
            <head><MetaTags/><title>"leptos"</title></head>
            <body><SuspendedApp/></body>
        </html>
    }
}

#[component]
fn SuspendedApp() -> impl IntoView {
    provide_meta_context();
    view! {
        <Suspense fallback=|| "loading">
            {Suspend::new(async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                view! { <SentryMeta/> <p>"loaded"</p> }
            })}
        </Suspense>
    }
}

fn app(meta: SentryMetaLayer) -> Router {
    Router::new()
        .route(
            "/out-of-order",
            get(leptos_axum::render_app_to_stream(shell)),
        )
        .route(
            "/in-order",
            get(leptos_axum::render_app_to_stream_in_order(shell)),
        )
        .route(
            "/partially-blocked",
            get(
                leptos_axum::render_app_to_stream_with_context_and_replace_blocks(
                    || {},
                    shell,
                    true,
                ),
            ),
        )
        .route("/async", get(leptos_axum::render_app_async(shell)))
        .route(
            "/async-suspended",
            get(leptos_axum::render_app_async(suspended_shell)),
        )
        .layer(
            ServiceBuilder::new()
                .layer(NewSentryLayer::<Request<Body>>::new_from_top())
                .layer(meta),
        )
}

struct Server {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    http: reqwest::Client,
    transport: Arc<TestTransport>,
}

/// The trace tags of a page, as the browser reads them.
#[derive(Debug)]
struct Page {
    sentry_trace: SentryTrace,
    baggage: String,
    traceparent: Option<String>,
    body: String,
}

/// A server transaction the client sent: trace id, span id, parent span id.
type Sent = (String, String, Option<String>);

impl Server {
    fn start(meta: SentryMetaLayer) -> Self {
        // leptos spawns the async parts of a page on the global executor (set once a process).
        let _ = any_spawner::Executor::init_tokio();
        let transport = TestTransport::new();
        let options = sentry_meta_tests::sentry::options().traces_sample_rate(1.0);
        let client = Arc::new(Client::from(
            options.transport(DscTransport::wrap(transport.clone())),
        ));
        let (runtime, listener) = sentry_meta_tests::sentry::server_runtime(client);
        let addr = listener.local_addr().expect("an address");
        let served = app(meta);
        runtime.spawn(async move { axum::serve(listener, served).await });
        Self {
            runtime,
            addr,
            http: reqwest::Client::new(),
            transport,
        }
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Page {
        let mut request = self.http.get(format!("http://{}{path}", self.addr));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.runtime.block_on(fetch(request))
    }

    /// The server transactions sent since the last call, waiting until `count` have been.
    fn transactions(&self, count: usize) -> Vec<Sent> {
        let mut sent = Vec::new();
        for _ in 0..200 {
            sent.extend(
                self.transport
                    .fetch_and_clear_envelopes()
                    .iter()
                    .flat_map(|envelope| {
                        // As the client wrote it (the DSC transport sends the serialized envelope).
                        let (_, envelope) = on_the_wire(envelope);
                        envelope
                            .items()
                            .filter_map(|item| match item {
                                EnvelopeItem::Transaction(tx) => match tx.contexts.get("trace") {
                                    Some(Context::Trace(trace)) => Some((
                                        trace.trace_id.to_string(),
                                        trace.span_id.to_string(),
                                        trace.parent_span_id.map(|id| id.to_string()),
                                    )),
                                    _ => panic!("a transaction without a trace context: {tx:?}"),
                                },
                                _ => None,
                            })
                            .collect::<Vec<_>>()
                    }),
            );
            if sent.len() >= count {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(sent.len(), count, "{sent:?}");
        sent
    }
}

async fn fetch(request: reqwest::RequestBuilder) -> Page {
    let response = request.send().await.expect("a response");
    assert_eq!(response.status(), 200);
    Page::parse(response.text().await.expect("a body"))
}

impl Page {
    fn parse(body: String) -> Self {
        let metas = meta_elements(&body);
        let find = |name: &str| {
            let found: Vec<_> = metas.iter().filter(|(n, _)| n == name).collect();
            assert!(found.len() <= 1, "duplicate {name} in {body}");
            found.first().map(|(_, content)| content.clone())
        };
        let sentry_trace = find("sentry-trace").expect("a sentry-trace tag");
        let baggage = find("baggage").expect("a baggage tag");
        let traceparent = find("traceparent");
        assert_eq!(
            metas.len(),
            2 + usize::from(traceparent.is_some()),
            "{body}"
        );
        Self {
            sentry_trace: sentry_trace.parse().expect("a valid sentry-trace"),
            baggage,
            traceparent,
            body,
        }
    }

    fn ids(&self) -> (String, String) {
        let span = self.sentry_trace.span_id.expect("a span id");
        (self.sentry_trace.trace_id.to_string(), span.to_string())
    }
}

/// The members of a baggage value, in a set: the page's DSC writes them in its own order.
fn members(baggage: &str) -> std::collections::BTreeSet<&str> {
    baggage.split(',').collect()
}

#[test]
fn continued_trace_names_the_callers_trace_and_the_server_span_in_every_mode() {
    let server = Server::start(SentryMetaLayer::new());
    let incoming = format!("{TRACE}-{SPAN}-1");
    for mode in MODES {
        let page = server.get(mode, &[("sentry-trace", &incoming), ("baggage", BAGGAGE)]);
        let (trace, span, parent) = server.transactions(1).remove(0);
        assert_eq!(
            (trace.as_str(), parent.as_deref()),
            (TRACE, Some(SPAN)),
            "{mode}"
        );
        assert_eq!(page.ids(), (trace, span), "{mode}: {}", page.body);
        assert_eq!(page.sentry_trace.sampled, Some(true), "{mode}");
        // The caller's frozen DSC as the core serializes it, escaped once by `<Meta>`: the
        // parser gives back the core's value (with its raw `'`), not an entity or nothing.
        let frozen =
            sentry_meta::SerializedDsc::new(sentry_meta::DynamicSamplingContext::from_baggage([
                BAGGAGE.as_bytes(),
            ]));
        assert_eq!(page.baggage, frozen.header(), "{mode}: {}", page.body);
        assert!(page.baggage.contains("'c"), "{}", page.baggage);
        assert!(page.body.contains("loaded"), "{mode}: {}", page.body);
    }
}

#[test]
fn fresh_requests_get_their_own_trace_and_the_core_tags() {
    let server = Server::start(SentryMetaLayer::new().traceparent(true));
    let mut traces = Vec::new();
    for mode in MODES {
        let page = server.get(mode, &[]);
        let (trace, span, parent) = server.transactions(1).remove(0);
        assert_eq!(parent, None, "{mode}");
        assert_eq!(page.ids(), (trace.clone(), span.clone()), "{mode}");
        assert!(
            page.baggage.contains(&format!("sentry-trace_id={trace}")),
            "{mode}"
        );
        assert_eq!(
            page.traceparent,
            Some(format!("00-{trace}-{span}-01")),
            "{mode}: {}",
            page.body
        );
        // Exactly the core's tags, once parsed.
        let core = sentry_meta::TraceMeta::new(
            trace.parse().expect("a trace id"),
            span.parse().expect("a span id"),
            Some(true),
            Some(sentry_meta::SerializedDsc::new(
                sentry_meta::DynamicSamplingContext::from_baggage([page.baggage.as_bytes()]),
            )),
        )
        .traceparent(true);
        let mut expected = meta_elements(&core.to_html());
        let mut got = meta_elements(&page.body);
        expected.sort();
        got.sort();
        assert_eq!(got, expected, "{mode}");
        traces.push(trace);
    }
    traces.sort();
    traces.dedup();
    assert_eq!(traces.len(), MODES.len());
}

#[test]
fn concurrent_out_of_order_streams_keep_their_own_trace() {
    const N: usize = 48;
    let server = Server::start(SentryMetaLayer::new());
    let requests: Vec<_> = (0..N)
        .map(|i| {
            let trace = format!("{:032x}", 0x1000 + i);
            let header = format!("{trace}-{SPAN}-1");
            let baggage =
                format!("sentry-trace_id={trace},sentry-public_key=abc,sentry-sample_rand=0.5");
            let request = server
                .http
                .get(format!("http://{}/out-of-order", server.addr))
                .header("sentry-trace", header)
                .header("baggage", baggage.clone());
            (trace, baggage, request)
        })
        .collect();
    let pages = server.runtime.block_on(async {
        let fetches = requests
            .into_iter()
            .map(|(trace, baggage, request)| async move { (trace, baggage, fetch(request).await) });
        futures_util::future::join_all(fetches).await
    });
    let sent = server.transactions(N);
    for (trace, baggage, page) in pages {
        let (page_trace, page_span) = page.ids();
        assert_eq!(page_trace, trace, "{}", page.body);
        assert_eq!(members(&page.baggage), members(&baggage), "{}", page.body);
        let tx = sent
            .iter()
            .find(|(t, _, _)| *t == trace)
            .expect("its transaction");
        assert_eq!(page_span, tx.1, "{}", page.body);
    }
}
