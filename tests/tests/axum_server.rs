//! A real axum server on loopback behind `sentry-tower`'s `NewSentryLayer` and `SentryMetaLayer`,
//! a real Sentry client whose transport (wrapped in `DscTransport`) captures what it sends, and a
//! real HTTP client: pages name the transaction (or span) that rendered them, continue incoming
//! traces by Sentry's rules, agree with the trace the server's transaction really has, the
//! transaction's envelope carries exactly the page's DSC, and two traces are never mixed; pages
//! that shared caches may keep carry no trace (`tests/vectors/cache.json`).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum_extra::TypedHeader;
use sentry_core::protocol::{Context, EnvelopeItem};
use sentry_core::test::TestTransport;
use sentry_core::{Client, ClientOptions, Hub};
use sentry_meta::tower::{InjectTraceMetaLayer, SentryMetaLayer};
use sentry_meta::{
    Continuation, ContinuationPolicy, DscKey, DscTransport, DynamicSamplingContext, SentryMeta,
    SentryTrace, SerializedDsc,
};
use sentry_meta_tests::logs::{Warning, Warnings};
use sentry_meta_tests::sentry::{PUBLIC_KEY, on_the_wire};
use sentry_meta_tests::{CacheVector, ExpectedCacheability, cache_vectors, meta_elements};
use sentry_tower::{NewSentryLayer, SentryHttpLayer};
use tower::{ServiceBuilder, ServiceExt};

const TRACE: &str = "771a43a4192642f0b136d5159a501700";
const SPAN: &str = "b7ad6b7169203331";

fn options() -> ClientOptions {
    sentry_meta_tests::sentry::options().traces_sample_rate(1.0)
}

// ---------------------------------------------------------------------------------------------
// The app.

fn html_page(meta: &SentryMeta, body: &str) -> String {
    format!("<!DOCTYPE html><html><head>{meta}<title>t</title></head><body>{body}</body></html>")
}

/// Renders after an `.await`, so the request's root has to follow the task across polls.
async fn page() -> Html<String> {
    tokio::task::yield_now().await;
    Html(html_page(&SentryMeta::current(), "<p>ok</p>"))
}

/// Renders inside a `template.render` child span of the server transaction (`render_span`).
async fn child_span_page() -> Html<String> {
    tokio::task::yield_now().await;
    Html(sentry_meta::render_span("page.html", || {
        html_page(&SentryMeta::current(), "<p>child</p>")
    }))
}

/// A page whose handler reports an error to Sentry.
async fn failing_page() -> Html<String> {
    sentry_core::capture_message("the page failed", sentry_core::Level::Error);
    Html(html_page(&SentryMeta::current(), "<p>failed</p>"))
}

/// A page whose handler reports an error from a task it spawns, run with the request's Hub
/// (`bind_hub`) and trace root (`TraceRoot::scope`), as `DscTransport`'s docs say.
async fn spawned_failing_page() -> Html<String> {
    use sentry_core::SentryFutureExt;
    let root = sentry_meta::TraceRoot::current().expect("inside SentryMetaLayer");
    let task = async { sentry_core::capture_message("the task failed", sentry_core::Level::Error) };
    let task = root.scope(task.bind_hub(Hub::new_from_top(Hub::current())));
    tokio::spawn(task).await.expect("the task ran");
    Html(html_page(&SentryMeta::current(), "<p>failed</p>"))
}

/// A page whose handler spawns a task in a Hub made from the request's, which reports an error
/// after the response has been sent (the test waits for it).
async fn late_failing_page() -> Html<String> {
    use sentry_core::SentryFutureExt;
    let task = async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        sentry_core::capture_message("the task failed late", sentry_core::Level::Error);
    };
    tokio::spawn(task.bind_hub(Hub::new_from_top(Hub::current())));
    Html(html_page(&SentryMeta::current(), "<p>failing later</p>"))
}

/// A page rendered in a task the handler spawns, in a Hub made from the request's: with the
/// request's trace root too (`/spawned-page/root`), or without it, in the request's server
/// transaction (`hub`), in a child span of it (`child`), or in a transaction of the task's own
/// (`own`).
async fn spawned_page(Path(with): Path<String>) -> Html<String> {
    use sentry_core::{SentryFutureExt, TransactionContext};
    let render = |span: Option<sentry_core::TransactionOrSpan>| {
        if let Some(span) = &span {
            Hub::current().configure_scope(|scope| scope.set_span(Some(span.clone())));
        }
        let meta = SentryMeta::current();
        if let Some(span) = span {
            span.finish();
        }
        meta
    };
    let in_root = with == "root";
    let task = async move {
        let server = Hub::current().configure_scope(|scope| scope.get_span());
        match with.as_str() {
            "child" => {
                render(server.map(|span| span.start_child("template.render", "page").into()))
            }
            "own" => render(Some(
                sentry_core::start_transaction(TransactionContext::new("job", "task")).into(),
            )),
            _ => render(None),
        }
    };
    let task = task.bind_hub(Hub::new_from_top(Hub::current()));
    let meta = match sentry_meta::TraceRoot::current() {
        Some(root) if in_root => tokio::spawn(root.scope(task)).await,
        _ => tokio::spawn(task).await,
    };
    Html(html_page(&meta.expect("the task ran"), "<p>spawned</p>"))
}

/// The extractors: `SentryMeta` and the typed incoming `sentry-trace`.
async fn extracted_page(
    meta: SentryMeta,
    incoming: Option<TypedHeader<SentryTrace>>,
) -> Html<String> {
    let current = SentryMeta::current();
    let current = current
        .trace_meta()
        .map_or("none", |meta| meta.sentry_trace_header())
        .to_owned();
    let incoming = incoming.map_or("none".to_owned(), |TypedHeader(trace)| trace.to_string());
    Html(html_page(
        &meta,
        &format!("<p id=current>{current}</p><p id=incoming>{incoming}</p>"),
    ))
}

async fn cached_page() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=60")],
        Html(html_page(&SentryMeta::current(), "<p>cached</p>")),
    )
}

/// A publicly cacheable page whose template writes its tags in its body: rendered, written by
/// hand (`by-hand`), or rendered and streamed in pieces split inside the tags (`streamed`).
async fn cached_tags_at(Path(place): Path<String>) -> Response {
    let meta = SentryMeta::current();
    let tags = meta.to_string();
    let page = match place.as_str() {
        "body" => format!("<html><head><title>t</title></head><body><p>{tags}</p></body></html>"),
        "by-hand" => format!(
            "<html><head></head><body><meta content='{}' name=sentry-trace></body></html>",
            meta.trace_meta()
                .map_or("", |meta| meta.sentry_trace_header())
        ),
        _ => {
            let page = format!("<html><head></head><body>{tags}{tags}</body></html>");
            let pieces: Vec<_> = page
                .as_bytes()
                .chunks(7)
                .map(|piece| {
                    Ok::<_, std::convert::Infallible>(bytes::Bytes::copy_from_slice(piece))
                })
                .collect();
            let body = Body::from_stream(futures_util::stream::iter(pieces));
            let headers = [
                (header::CONTENT_TYPE, "text/html"),
                (header::CACHE_CONTROL, "public, max-age=60"),
            ];
            return (headers, body).into_response();
        }
    };
    ([(header::CACHE_CONTROL, "public, max-age=60")], Html(page)).into_response()
}

/// The cache vectors, served by `/cache/{case}` (a page that writes its tags) and
/// `/plain/{case}` (one that leaves them to the injector).
static CACHE_VECTORS: LazyLock<Vec<CacheVector>> = LazyLock::new(cache_vectors);

/// `html` with the header lines of cache vector `case`.
fn with_cache_headers(case: usize, html: String) -> Response {
    let mut response = Html(html).into_response();
    for (name, value) in &CACHE_VECTORS[case].headers {
        response.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            HeaderValue::from_bytes(value.as_bytes()).expect("a header value"),
        );
    }
    response
}

async fn cache_case_page(Path(case): Path<usize>) -> Response {
    with_cache_headers(case, html_page(&SentryMeta::current(), "<p>cache</p>"))
}

async fn plain_cache_case_page(Path(case): Path<usize>) -> Response {
    with_cache_headers(case, html_page(&SentryMeta::none(), "<p>cache</p>"))
}

/// A publicly cacheable page (`Cache-Control` and `CDN-Cache-Control` lifetimes), compressed
/// (`encoded`: the layer cannot rewrite its body), part of a page (`partial`: a `206` with a
/// `Content-Range`, nor that), declared UTF-16 (`utf16-escaped`, `utf16-second-line`: nor
/// that) or with a second `Content-Type` line (`two-types`) or a second value in its one line
/// (`comma-types`). With its tags, or `{variant}-{kind}`: without them (`plain`, which sends an
/// event: the envelope's DSC is not a page's tags), rendered with the tags of the moment as the
/// server polls its body, after the headers have left (`streamed`), or both: rendered with its
/// tags, then asking for them again as its body streams (`twice`).
async fn unrewritable_page(Path(kind): Path<String>) -> Response {
    let (variant, kind) = match kind.split_once('-') {
        Some((variant @ ("plain" | "streamed" | "twice"), kind)) => (variant, kind.to_owned()),
        _ => ("tagged", kind),
    };
    let mut response = match variant {
        "streamed" | "twice" => {
            let before =
                (variant == "twice").then(|| html_page(&SentryMeta::current(), "<p>cache</p>"));
            let page = futures_util::stream::once(async move {
                let now = SentryMeta::current();
                let page = match before {
                    Some(page) => format!("{page}{}", now.to_html()),
                    None => html_page(&now, "<p>cache</p>"),
                };
                Ok::<_, std::convert::Infallible>(page)
            });
            let html = [(header::CONTENT_TYPE, "text/html; charset=utf-8")];
            (html, Body::from_stream(page)).into_response()
        }
        "plain" => {
            sentry_core::capture_message("a page without tags", sentry_core::Level::Info);
            Html(html_page(&SentryMeta::none(), "<p>cache</p>")).into_response()
        }
        _ => Html(html_page(&SentryMeta::current(), "<p>cache</p>")).into_response(),
    };
    if kind == "partial" {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    headers.insert("cdn-cache-control", HeaderValue::from_static("max-age=600"));
    // Not compressed: the client shows the bytes as they came. The UTF-16 pages are ASCII, so
    // that the test can read them, under a charset that browsers read as UTF-16.
    let (name, value) = match kind.as_str() {
        "encoded" => (header::CONTENT_ENCODING, "br"),
        "partial" => (header::CONTENT_RANGE, "bytes 0-99/1000"),
        "two-types" => (header::CONTENT_TYPE, "text/plain"),
        "comma-types" => {
            headers.remove(header::CONTENT_TYPE);
            (header::CONTENT_TYPE, "text/plain; charset=utf-8, text/html")
        }
        "utf16-escaped" => {
            headers.remove(header::CONTENT_TYPE);
            (header::CONTENT_TYPE, r#"text/html; charset="utf\-16""#)
        }
        "utf16-second-line" => (header::CONTENT_TYPE, "text/html; charset=utf-16"),
        other => panic!("no unrewritable page {other}"),
    };
    headers.append(name, HeaderValue::from_static(value));
    response
}

/// Renders when the server first polls its body, after the handler has returned; at
/// `/streamed/failing`, it also reports an error then.
async fn streamed_page(uri: Uri) -> Response {
    let failing = uri.path().ends_with("/failing");
    let page = futures_util::stream::once(async move {
        if failing {
            sentry_core::capture_message("the streamed page failed", sentry_core::Level::Error);
        }
        Ok::<_, std::convert::Infallible>(html_page(&SentryMeta::current(), "<p>streamed</p>"))
    });
    let html = [(header::CONTENT_TYPE, "text/html; charset=utf-8")];
    (html, Body::from_stream(page)).into_response()
}

/// An event stream, which is not a page: its body says whether it is polled inside the
/// request's root.
async fn event_stream() -> Response {
    let events = futures_util::stream::once(async {
        let root = sentry_meta::TraceRoot::current().map_or("none", |_| "root");
        Ok::<_, std::convert::Infallible>(format!("data: {root}\n\n"))
    });
    let stream = [(header::CONTENT_TYPE, "text/event-stream")];
    (stream, Body::from_stream(events)).into_response()
}

/// A page whose `Content-Type` does not name its type, which a browser sniffs from its body:
/// `{tags}-{type}-{caching}`, with its tags (`tagged`) or without (`plain`), no `Content-Type`
/// (`none`), one that is not a MIME type (`garbage`) or `text/plain` (`text`, never rendered as
/// HTML), and publicly cacheable (`shared`) or with no caching headers (`heuristic`).
async fn untyped_page(Path(kind): Path<String>) -> Response {
    let parts: Vec<&str> = kind.split('-').collect();
    let tagged = parts[0] == "tagged";
    let render = move || {
        let meta = match tagged {
            true => SentryMeta::current(),
            false => SentryMeta::none(),
        };
        html_page(&meta, "<p>untyped</p>")
    };
    // `…-streamed`: rendered as the server polls the body, after the headers have left.
    let mut response = match parts.get(3) {
        Some(&"streamed") => {
            let page =
                futures_util::stream::once(
                    async move { Ok::<_, std::convert::Infallible>(render()) },
                );
            Body::from_stream(page).into_response()
        }
        _ => render().into_response(),
    };
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_TYPE);
    match parts[1] {
        "garbage" => headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("garbage")),
        "text" => headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain")),
        _ => None,
    };
    if parts[2] == "shared" {
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=60"),
        );
        headers.insert("cdn-cache-control", HeaderValue::from_static("max-age=600"));
    }
    response
}

/// A page with validators, with its tags (`/validated/tagged`) or without (`/validated/plain`).
async fn validated_page(Path(kind): Path<String>) -> Response {
    let meta = match kind.as_str() {
        "tagged" => SentryMeta::current(),
        _ => SentryMeta::none(),
    };
    let mut response = Html(html_page(&meta, "<p>validated</p>")).into_response();
    let headers = response.headers_mut();
    headers.insert(header::ETAG, HeaderValue::from_static("\"v1\""));
    let modified = HeaderValue::from_static("Tue, 24 Nov 2026 10:00:00 GMT");
    headers.insert(header::LAST_MODIFIED, modified);
    response
}

/// How `SentryMetaLayer` is combined with `sentry-tower`'s layers (outermost first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// NewSentryLayer, SentryMetaLayer: the documented setup.
    Documented,
    /// NewSentryLayer, SentryHttpLayer (request data only), SentryMetaLayer: also supported.
    WithRequestData,
    /// NewSentryLayer, SentryHttpLayer with its own transaction, SentryMetaLayer.
    TransactionOutside,
    /// SentryMetaLayer, NewSentryLayer: the layer sees no Hub of the request's own.
    MetaOutermost,
    /// SentryMetaLayer alone: no Hub per request.
    NoHubLayer,
    /// The documented setup, and between its layers one that captures a message from each
    /// response, as `sentry-actix` captures server errors.
    CaptureOutside,
}

fn app(order: Order, meta: SentryMetaLayer) -> Router {
    let routes = Router::new()
        .route("/page", get(page))
        .route("/users/{id}", get(page))
        .route("/child", get(child_span_page))
        .route("/error", get(failing_page))
        .route("/spawned-error", get(spawned_failing_page))
        .route("/spawned-page/{with}", get(spawned_page))
        .route("/late-error", get(late_failing_page))
        .route("/extract", get(extracted_page))
        .route("/cached", get(cached_page))
        .route("/cached-too", get(cached_page))
        .route("/cached-tags-at/{place}", get(cached_tags_at))
        .route("/cache/{case}", get(cache_case_page))
        .route("/unrewritable/{kind}", get(unrewritable_page))
        .route("/validated/{kind}", get(validated_page))
        .route("/untyped/{kind}", get(untyped_page))
        .route("/streamed", get(streamed_page))
        .route("/streamed/failing", get(streamed_page))
        .route("/events", get(event_stream))
        .fallback(page);
    let hub = NewSentryLayer::<Request<Body>>::new_from_top();
    match order {
        Order::Documented => routes.layer(ServiceBuilder::new().layer(hub).layer(meta)),
        Order::WithRequestData => routes.layer(
            ServiceBuilder::new()
                .layer(hub)
                .layer(SentryHttpLayer::new())
                .layer(meta),
        ),
        Order::TransactionOutside => routes.layer(
            ServiceBuilder::new()
                .layer(hub)
                .layer(SentryHttpLayer::new().enable_transaction())
                .layer(meta),
        ),
        Order::MetaOutermost => routes.layer(ServiceBuilder::new().layer(meta).layer(hub)),
        Order::NoHubLayer => routes.layer(meta),
        Order::CaptureOutside => routes.layer(
            ServiceBuilder::new()
                .layer(hub)
                .map_future(|response| async move {
                    let response = response.await;
                    sentry_core::capture_message("after the response", sentry_core::Level::Error);
                    response
                })
                .layer(meta),
        ),
    }
}

/// Pages without tags behind the documented layers and the injector (innermost).
fn injected_app(meta: SentryMetaLayer, inject: InjectTraceMetaLayer) -> Router {
    Router::new()
        .route("/plain/{case}", get(plain_cache_case_page))
        .layer(
            ServiceBuilder::new()
                .layer(NewSentryLayer::<Request<Body>>::new_from_top())
                .layer(meta)
                .layer(inject),
        )
}

// ---------------------------------------------------------------------------------------------
// The harness: a runtime whose worker threads have the test's Sentry client bound (as
// `sentry::init` binds it before a server starts) and its own log capture.

struct Server {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    app: Router,
    http: reqwest::Client,
    transport: Arc<TestTransport>,
    warnings: Warnings,
}

/// A page as the browser gets it.
#[derive(Debug)]
struct Page {
    status: u16,
    server_timing: Vec<String>,
    /// The `Cache-Control` lines, as bytes.
    cache_control: Vec<Vec<u8>>,
    cdn_cache_control: Vec<String>,
    /// `ETag` and `Last-Modified`.
    validators: Vec<String>,
    body: String,
    sentry_trace: Option<String>,
    baggage: Option<String>,
}

impl Page {
    fn parse(status: u16, headers: &axum::http::HeaderMap, body: String) -> Self {
        let metas = meta_elements(&body);
        let find = |name: &str| {
            let found: Vec<_> = metas.iter().filter(|(n, _)| n == name).collect();
            assert!(found.len() <= 1, "duplicate {name} in {body}");
            found.first().map(|(_, content)| content.clone())
        };
        let (sentry_trace, baggage) = (find("sentry-trace"), find("baggage"));
        assert_eq!(
            metas.len(),
            usize::from(sentry_trace.is_some()) + usize::from(baggage.is_some()),
            "unexpected meta elements in {body}"
        );
        Self {
            status,
            server_timing: header_values(headers, "server-timing"),
            cache_control: headers
                .get_all(header::CACHE_CONTROL)
                .iter()
                .map(|value| value.as_bytes().to_vec())
                .collect(),
            cdn_cache_control: header_values(headers, "cdn-cache-control"),
            validators: [
                header_values(headers, "etag"),
                header_values(headers, "last-modified"),
            ]
            .concat(),
            body,
            sentry_trace,
            baggage,
        }
    }

    fn trace(&self) -> SentryTrace {
        let raw = self.sentry_trace.as_deref().expect("a sentry-trace tag");
        raw.parse().expect("a valid sentry-trace")
    }

    fn trace_id(&self) -> String {
        self.trace().trace_id.to_string()
    }

    fn span_id(&self) -> String {
        self.trace().span_id.expect("a span id").to_string()
    }

    fn dsc(&self) -> DynamicSamplingContext {
        let baggage = self.baggage.as_deref().expect("a baggage tag");
        DynamicSamplingContext::from_baggage([baggage.as_bytes()])
    }

    /// The page's DSC as envelopes are compared with it: `(key, value)` sorted by key.
    fn dsc_pairs(&self) -> Dsc {
        let mut pairs: Dsc = self
            .dsc()
            .iter()
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect();
        pairs.sort();
        pairs
    }

    /// The page names one trace: its baggage, when it names a trace (a caller's frozen DSC
    /// may not), names the trace of its `sentry-trace`.
    fn assert_one_trace(&self) {
        let dsc = self.dsc();
        let baggage_trace = dsc.get(DscKey::TraceId);
        assert!(
            baggage_trace.is_none_or(|id| id == self.trace_id()),
            "{self:?}"
        );
        assert!(dsc.sample_rand().is_some(), "{self:?}");
    }
}

/// A DSC as `(key, value)` pairs sorted by key.
type Dsc = Vec<(String, String)>;

/// What the Sentry client sent for one server transaction.
#[derive(Debug, Clone)]
struct SentTransaction {
    /// The DSC in its envelope's header.
    dsc: Dsc,
    name: Option<String>,
    trace_id: String,
    span_id: String,
    parent_span_id: Option<String>,
    child_spans: Vec<String>,
}

impl Server {
    fn start(options: ClientOptions, order: Order, meta: SentryMetaLayer) -> Self {
        Self::start_app(options, app(order, meta))
    }

    fn start_app(options: ClientOptions, app: Router) -> Self {
        // The process Hub belongs to the test thread, never to a worker (whose thread Hub would
        // then be the process Hub, shared with every other test).
        let _ = Hub::main();
        let transport = TestTransport::new();
        let client = Arc::new(Client::from(
            options.transport(DscTransport::wrap(transport.clone())),
        ));
        let warnings = Warnings::default();
        let dispatch = warnings.dispatch();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(move || {
                Hub::current().bind_client(Some(client.clone()));
                // Kept for the thread's life: this runtime's logs go to this test only.
                std::mem::forget(tracing::dispatcher::set_default(&dispatch));
            })
            .build()
            .expect("a runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a loopback port");
        let addr = listener.local_addr().expect("an address");
        let served = app.clone();
        runtime.spawn(async move { axum::serve(listener, served).await });
        Self {
            runtime,
            addr,
            app,
            http: reqwest::Client::new(),
            transport,
            warnings,
        }
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Page {
        self.runtime.block_on(fetch(
            self.http.clone(),
            self.addr,
            path.to_owned(),
            own(headers),
        ))
    }

    /// Sends the request through the whole app without HTTP's header size limits, on a worker
    /// thread (where the client is bound).
    fn oneshot(&self, request: Request<Body>) -> Page {
        let app = self.app.clone();
        self.runtime.block_on(async move {
            tokio::spawn(async move {
                let response = app.oneshot(request).await.expect("infallible");
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .expect("a body");
                Page::parse(
                    status,
                    &headers,
                    String::from_utf8(body.to_vec()).expect("UTF-8"),
                )
            })
            .await
            .expect("no panic")
        })
    }

    /// The server transactions sent since the last call.
    fn transactions(&self) -> Vec<SentTransaction> {
        self.transport
            .fetch_and_clear_envelopes()
            .iter()
            .flat_map(|envelope| {
                let (dsc, envelope) = on_the_wire(envelope);
                envelope
                    .items()
                    .filter_map(|item| match item {
                        EnvelopeItem::Transaction(tx) => Some(tx),
                        _ => None,
                    })
                    .map(|tx| {
                        let Some(Context::Trace(trace)) = tx.contexts.get("trace") else {
                            panic!("a transaction without a trace context: {tx:?}");
                        };
                        SentTransaction {
                            dsc: dsc.clone(),
                            name: tx.name.clone(),
                            trace_id: trace.trace_id.to_string(),
                            span_id: trace.span_id.to_string(),
                            parent_span_id: trace.parent_span_id.map(|id| id.to_string()),
                            child_spans: tx.spans.iter().map(|s| s.span_id.to_string()).collect(),
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The error events sent since the last call: their envelope's DSC, their request URL, and
    /// their trace context's `"{trace_id}-{span_id}"`.
    fn events(&self) -> Vec<(Dsc, Option<String>, String)> {
        self.transport
            .fetch_and_clear_envelopes()
            .iter()
            .filter_map(|envelope| {
                let (dsc, envelope) = on_the_wire(envelope);
                let event = envelope.event()?;
                let Some(Context::Trace(trace)) = event.contexts.get("trace") else {
                    panic!("an event without a trace context: {event:?}");
                };
                let trace = format!("{}-{}", trace.trace_id, trace.span_id);
                let url = event
                    .request
                    .as_ref()?
                    .url
                    .as_ref()
                    .map(|url| url.to_string());
                Some((dsc, url, trace))
            })
            .collect()
    }

    /// The one event sent since the last call (waiting for it a while), which must be under
    /// the span `page` names, with `page`'s DSC: its request's URL.
    fn event_in_trace_of(&self, page: &Page) -> Option<String> {
        let mut sent = Vec::new();
        for _ in 0..100 {
            sent.extend(self.events());
            if !sent.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(sent.len(), 1, "{sent:?}");
        let (dsc, url, trace) = sent.remove(0);
        assert_eq!(trace, format!("{}-{}", page.trace_id(), page.span_id()));
        assert_eq!(dsc, page.dsc_pairs());
        url
    }

    /// The one transaction sent since the last call.
    fn transaction(&self) -> SentTransaction {
        let mut sent = self.transactions();
        assert_eq!(sent.len(), 1, "{sent:?}");
        sent.remove(0)
    }

    fn warnings(&self) -> Vec<Warning> {
        self.warnings.all()
    }

    fn setup_warnings(&self) -> usize {
        self.warnings()
            .iter()
            .filter(|w| w.message.contains("SentryMetaLayer") && w.route.is_none())
            .count()
    }
}

fn own(headers: &[(&str, &str)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

fn header_values(headers: &axum::http::HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().expect("ASCII").to_owned())
        .collect()
}

async fn fetch(
    http: reqwest::Client,
    addr: SocketAddr,
    path: String,
    headers: Vec<(String, String)>,
) -> Page {
    let mut request = http.get(format!("http://{addr}{path}"));
    for (name, value) in headers {
        // Appends: several `baggage` headers stay several.
        request = request.header(name, value);
    }
    let response = request.send().await.expect("a response");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.expect("a body");
    Page::parse(status, &headers, body)
}

/// Asserts that the page names transaction `tx`'s root span, in its trace, sampled, and that
/// the transaction's envelope carries the page's DSC.
fn assert_names(page: &Page, tx: &SentTransaction) {
    assert_eq!(
        page.sentry_trace.as_deref(),
        Some(format!("{}-{}-1", tx.trace_id, tx.span_id).as_str()),
        "{page:?} vs {tx:?}"
    );
    page.assert_one_trace();
    assert_same_dsc(page, tx);
}

/// Asserts that the transaction's envelope header carries the page's DSC, key by key.
fn assert_same_dsc(page: &Page, tx: &SentTransaction) {
    assert_eq!(tx.dsc, page.dsc_pairs(), "{page:?}");
}

/// Asserts that the page names transaction `tx`, which started a trace here, with this
/// service's own head DSC for that trace.
fn assert_names_head(page: &Page, tx: &SentTransaction) {
    assert_names(page, tx);
    assert_eq!(tx.parent_span_id, None);
    let dsc = page.dsc();
    assert_eq!(dsc.get(DscKey::TraceId), Some(tx.trace_id.as_str()));
    assert_eq!(dsc.get(DscKey::PublicKey), Some(PUBLIC_KEY));
    assert_eq!(dsc.get(DscKey::Release), Some("web@1.2.3"));
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn page_names_the_server_transaction() {
    let server = Server::start(options(), Order::Documented, SentryMetaLayer::new());
    let page = server.get("/users/7", &[]);
    assert_eq!(page.status, 200);
    let tx = server.transaction();
    assert_eq!(tx.name.as_deref(), Some("GET /users/{id}"));
    assert_eq!(tx.parent_span_id, None);
    assert_names_head(&page, &tx);
    let dsc = page.dsc();
    assert_eq!(dsc.get(DscKey::PublicKey), Some(PUBLIC_KEY));
    assert_eq!(dsc.get(DscKey::Release), Some("web@1.2.3"));
    assert_eq!(dsc.get(DscKey::Environment), Some("test"));
    assert_eq!(dsc.get(DscKey::OrgId), Some("42"));
    assert_eq!(dsc.get(DscKey::SampleRate), Some("1"));
    assert_eq!(dsc.get(DscKey::Sampled), Some("true"));
    assert_eq!(dsc.get(DscKey::Transaction), Some("GET /users/{id}"));
    assert!(dsc.sample_rand().is_some());
    assert!(page.server_timing.is_empty(), "Server-Timing is opt-in");
    // No caching headers: shared caches are told not to keep the page and its trace.
    assert_eq!(page.cache_control, [b"private"], "{page:?}");

    // Unmatched: the raw path names the transaction, and a URL is kept out of the DSC.
    let page = server.get("/no/such/page", &[]);
    let tx = server.transaction();
    assert_eq!(tx.name.as_deref(), Some("GET /no/such/page"));
    assert_names(&page, &tx);
    assert_eq!(page.dsc().get(DscKey::Transaction), None);
    assert_eq!(server.setup_warnings(), 0, "{:?}", server.warnings());
}

#[test]
fn page_names_the_child_span_it_was_rendered_in() {
    let server = Server::start(options(), Order::Documented, SentryMetaLayer::new());
    let page = server.get("/child", &[]);
    let tx = server.transaction();
    assert_eq!(page.trace_id(), tx.trace_id);
    assert_eq!(tx.child_spans, [page.span_id()]);
    assert_ne!(page.span_id(), tx.span_id);
    page.assert_one_trace();
    assert_same_dsc(&page, &tx);
}

#[test]
fn extractors_see_the_request_and_its_root() {
    let server = Server::start(options(), Order::Documented, SentryMetaLayer::new());
    let incoming = format!("{TRACE}-{SPAN}-1");
    let page = server.get("/extract", &[("sentry-trace", &incoming)]);
    let tx = server.transaction();
    assert_eq!(tx.trace_id, TRACE);
    assert_names(&page, &tx);
    // The extracted value is the one `SentryMeta::current()` gives in the handler.
    assert!(
        page.body.contains(&format!(
            "<p id=current>{}</p>",
            page.sentry_trace.as_deref().unwrap_or("?")
        )),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("<p id=incoming>{incoming}</p>"))
    );

    let page = server.get("/extract", &[]);
    assert!(page.body.contains("<p id=incoming>none</p>"));
    assert_names(&page, &server.transaction());
}

#[test]
fn incoming_trace_is_continued_with_its_frozen_dsc() {
    let server = Server::start(options(), Order::Documented, SentryMetaLayer::new());
    let incoming = format!("{TRACE}-{SPAN}-1");
    let first = format!(
        "sentry-trace_id={TRACE},sentry-public_key=upstream,sentry-sample_rate=0.25,\
         sentry-sampled=true,sentry-release=api%402,sentry-org_id=42,othervendor=x"
    );
    let second = "othervendor2=y;prop=1,sentry-environment=prod";
    let page = server.get(
        "/page",
        &[
            ("sentry-trace", &incoming),
            ("baggage", &first),
            ("baggage", second),
        ],
    );
    let tx = server.transaction();
    assert_eq!(tx.trace_id, TRACE);
    assert_eq!(tx.parent_span_id.as_deref(), Some(SPAN));
    assert_names(&page, &tx);

    // The caller's DSC, frozen: decoded from both headers, re-encoded, sample_rand filled in.
    let Continuation::Continue(expected) = Continuation::decide(
        Some(incoming.as_bytes()),
        [first.as_bytes(), second.as_bytes()],
        &ContinuationPolicy::new().org_id("42"),
    ) else {
        panic!("the core continues this trace");
    };
    let expected = SerializedDsc::new(expected.dsc);
    assert_eq!(page.baggage.as_deref(), Some(expected.header()));
    let dsc = page.dsc();
    assert_eq!(dsc.get(DscKey::PublicKey), Some("upstream"));
    assert_eq!(dsc.get(DscKey::Release), Some("api@2"));
    assert_eq!(dsc.get(DscKey::Environment), Some("prod"));
    assert_eq!(dsc.get(DscKey::Transaction), None, "not re-derived");
    let sample_rand = dsc.sample_rand().expect("back-filled").as_f64();
    assert!(sample_rand < 0.25, "{sample_rand} agrees with sampled=true");
    let baggage = page.baggage.as_deref().unwrap_or_default();
    assert!(!baggage.contains("othervendor") && !baggage.contains("prop"));
}

#[test]
fn a_caller_that_left_the_decision_open_is_decided_by_its_sample_rand() {
    let options = sentry_meta_tests::sentry::options().traces_sample_rate(0.5);
    let server = Server::start(options, Order::Documented, SentryMetaLayer::new());
    let open = format!("{TRACE}-{SPAN}");
    let mut sampled_pages = Vec::new();
    // The caller's sample rand, below the rate or not; each asked several times, as a random
    // draw would not answer the same. The rate that decided is this service's: the page's DSC
    // states it, also in place of the caller's (which made no decision).
    for (baggage, sampled) in [
        ("sentry-sample_rand=0.1,sentry-sample_rate=0.25", true),
        ("sentry-sample_rand=0.499999", true),
        ("sentry-sample_rand=0.5", false),
        ("sentry-sample_rand=0.9,sentry-sampled=true", false),
        ("sentry-sample_rand=0.3,sentry-sample_rate=0.1", true),
    ] {
        for _ in 0..8 {
            let page = server.get("/page", &[("sentry-trace", &open), ("baggage", baggage)]);
            assert_eq!(page.trace().sampled, Some(sampled), "{baggage}");
            assert_eq!(page.trace_id(), TRACE);
            assert_eq!(page.dsc().get(DscKey::SampleRate), Some("0.5"), "{baggage}");
            if sampled {
                sampled_pages.push(page.dsc_pairs());
            }
        }
    }
    // Without one, the sample rand filled in from the trace id decides.
    for n in 0..16u32 {
        let trace = format!("{n:08x}{}", &TRACE[8..]);
        let page = server.get("/page", &[("sentry-trace", &format!("{trace}-{SPAN}"))]);
        let sample_rand = page.dsc().sample_rand().expect("filled in").as_f64();
        assert_eq!(page.trace().sampled, Some(sample_rand < 0.5), "{trace}");
        assert_eq!(page.dsc().get(DscKey::SampleRate), Some("0.5"), "{trace}");
        if sample_rand < 0.5 {
            sampled_pages.push(page.dsc_pairs());
        }
    }
    // The SDK sent a transaction for each page that says sampled, and no other, each with its
    // page's DSC.
    let mut sent: Vec<Dsc> = server.transactions().into_iter().map(|tx| tx.dsc).collect();
    sent.sort();
    sampled_pages.sort();
    assert_eq!(sent, sampled_pages);
}

#[test]
fn other_organization_and_strict_mode_start_new_traces() {
    let incoming = format!("{TRACE}-{SPAN}-1");
    let cases = [
        // The client's DSN says org 42, the caller org 99.
        (options(), "sentry-org_id=99,sentry-release=theirs"),
        // Strict: the caller names no organization.
        (
            options().strict_trace_continuation(true),
            "sentry-release=theirs",
        ),
    ];
    for (options, baggage) in cases {
        let server = Server::start(options, Order::Documented, SentryMetaLayer::new());
        let page = server.get(
            "/page",
            &[("sentry-trace", &incoming), ("baggage", baggage)],
        );
        let tx = server.transaction();
        assert_ne!(tx.trace_id, TRACE, "the SDK started a new trace");
        assert_eq!(tx.parent_span_id, None);
        assert_names_head(&page, &tx);
        let dsc = page.dsc();
        assert_eq!(dsc.get(DscKey::PublicKey), Some(PUBLIC_KEY));
        assert_eq!(dsc.get(DscKey::Release), Some("web@1.2.3"));
        assert_eq!(dsc.get(DscKey::OrgId), Some("42"));
        assert_eq!(server.setup_warnings(), 0, "{:?}", server.warnings());
    }
}

#[test]
fn malformed_sentry_trace_starts_a_new_trace() {
    let server = Server::start(options(), Order::Documented, SentryMetaLayer::new());
    let baggage = "sentry-release=theirs,sentry-public_key=upstream";
    let malformed = [
        format!("{TRACE}1-{SPAN}-1"),         // a 33-digit trace id
        format!("{}-{SPAN}-1", &TRACE[..31]), // a 31-digit trace id
        "junk".to_owned(),
        "<script>\"&'".to_owned(),
        "-".repeat(64 * 1024), // 64 KiB, under the HTTP server's header limit
    ];
    for value in &malformed {
        let page = server.get("/page", &[("sentry-trace", value), ("baggage", baggage)]);
        assert_eq!(page.status, 200);
        let tx = server.transaction();
        assert_ne!(tx.trace_id, TRACE, "{value:.80}");
        assert_names_head(&page, &tx);
    }

    // Values the `sentry` crate's own parser would continue, but the grammar rejects: the
    // transaction and the page both start a new trace (one rule), with this service's DSC.
    let sdk_would_continue = [
        format!("{}-{}-1", TRACE.to_uppercase(), SPAN.to_uppercase()),
        format!("{TRACE}-{SPAN}-2"),
        format!("{TRACE}-{SPAN}-1-x"),
        format!("{TRACE}-{SPAN}-1\"><script>"),
        format!("{TRACE}-{SPAN}-1,{TRACE}-{SPAN}-1"),
    ];
    for value in &sdk_would_continue {
        let page = server.get("/page", &[("sentry-trace", value), ("baggage", baggage)]);
        let tx = server.transaction();
        assert_ne!(tx.trace_id, TRACE, "{value}");
        assert_names_head(&page, &tx);
        assert_eq!(
            page.dsc().get(DscKey::Release),
            Some("web@1.2.3"),
            "not frozen"
        );
    }

    // 1 MiB of hex: larger than the HTTP server accepts, so through the app itself.
    let huge = format!("{TRACE}{}", "0".repeat(1 << 20));
    let request = Request::get("/page")
        .header("sentry-trace", huge)
        .header("baggage", baggage)
        .body(Body::empty())
        .expect("a request");
    let page = server.oneshot(request);
    assert_eq!(page.status, 200);
    let tx = server.transaction();
    assert_ne!(tx.trace_id, TRACE);
    assert_names_head(&page, &tx);
    assert_eq!(server.setup_warnings(), 0, "{:?}", server.warnings());
}

#[test]
fn thousand_concurrent_requests_get_their_own_traces() {
    const REQUESTS: usize = 1000;
    const IN_FLIGHT: usize = 64;
    let server = Server::start(options(), Order::Documented, SentryMetaLayer::new());
    let pages = server.runtime.block_on(async {
        let limit = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        let mut requests = tokio::task::JoinSet::new();
        for i in 0..REQUESTS {
            let permit = limit.clone().acquire_owned().await.expect("open");
            let (http, addr) = (server.http.clone(), server.addr);
            requests.spawn(async move {
                let page = fetch(http, addr, format!("/users/{i}"), Vec::new()).await;
                drop(permit);
                page
            });
        }
        requests.join_all().await
    });
    let sent: HashMap<String, SentTransaction> = server
        .transactions()
        .into_iter()
        .map(|tx| (tx.trace_id.clone(), tx))
        .collect();
    assert_eq!(
        sent.len(),
        REQUESTS,
        "one transaction and trace per request"
    );
    let traces: HashSet<String> = pages.iter().map(Page::trace_id).collect();
    assert_eq!(traces.len(), REQUESTS, "every page has its own trace");
    for page in &pages {
        let tx = &sent[&page.trace_id()];
        assert_names(page, tx);
    }
    assert_eq!(server.setup_warnings(), 0, "{:?}", server.warnings());
}

#[test]
fn server_timing_has_the_page_values_and_skips_cacheable_pages() {
    let server = Server::start(
        options(),
        Order::Documented,
        SentryMetaLayer::new().server_timing(true),
    );
    let incoming = format!("{TRACE}-{SPAN}-1");
    for headers in [vec![], vec![("sentry-trace", incoming.as_str())]] {
        let page = server.get("/page", &headers);
        let expected = format!(
            "sentry-trace;desc=\"{}\", baggage;desc=\"{}\"",
            page.sentry_trace.as_deref().unwrap_or_default(),
            page.baggage.as_deref().unwrap_or_default()
        );
        assert_eq!(page.server_timing, [expected]);
        assert_names(&page, &server.transaction());
    }

    for _ in 0..3 {
        let page = server.get("/cached", &[]);
        assert_eq!(page.status, 200);
        assert!(page.server_timing.is_empty(), "{page:?}");
        // The tags the handler wrote are taken out again; the rest of the page is intact.
        assert_eq!(page.sentry_trace, None, "{page:?}");
        assert_eq!(page.baggage, None, "{page:?}");
        assert!(
            page.body
                .ends_with("<title>t</title></head><body><p>cached</p></body></html>"),
            "{page:?}"
        );
    }
    let page = server.get("/cached-too", &[]);
    assert!(page.server_timing.is_empty(), "{page:?}");
    let warned = |route: &str| {
        server
            .warnings()
            .iter()
            .filter(|w| w.route.as_deref() == Some(route))
            .count()
    };
    assert_eq!(warned("/cached"), 1, "{:?}", server.warnings());
    assert_eq!(warned("/cached-too"), 1, "{:?}", server.warnings());
    assert_eq!(warned("/page"), 0);

    let allowed = Server::start(
        options(),
        Order::Documented,
        SentryMetaLayer::new()
            .server_timing(true)
            .allow_cacheable(true),
    );
    let page = allowed.get("/cached", &[]);
    assert_eq!(page.server_timing.len(), 1, "{page:?}");
    assert_names(&page, &allowed.transaction());
    assert!(allowed.warnings().is_empty(), "{:?}", allowed.warnings());
}

/// The `Cache-Control` lines `lines`, as bytes.
fn as_bytes(lines: Vec<String>) -> Vec<Vec<u8>> {
    lines.into_iter().map(String::into_bytes).collect()
}

/// Asserts what a page served with the headers of cache vector `v` got: no trace and no
/// `Server-Timing` when shared caches may keep it, else its tags (naming `tx`) and
/// `Server-Timing`; and the `Cache-Control` lines, `private` added when `marked`.
fn assert_cache_guarded(v: &CacheVector, page: &Page, tx: &SentTransaction, marked: bool) {
    let context = format!("{:?} (marked: {marked}): {page:?}", v.name);
    assert_eq!(page.status, 200, "{context}");
    match v.cacheability {
        ExpectedCacheability::Shared => {
            assert_eq!(page.sentry_trace, None, "{context}");
            assert_eq!(page.baggage, None, "{context}");
            assert!(page.server_timing.is_empty(), "{context}");
            assert!(
                page.body
                    .ends_with("<title>t</title></head><body><p>cache</p></body></html>"),
                "{context}"
            );
        }
        ExpectedCacheability::Heuristic | ExpectedCacheability::Private => {
            assert_names(page, tx);
            assert_eq!(page.server_timing.len(), 1, "{context}");
        }
    }
    let expected = if marked {
        v.cache_control_marked()
    } else {
        v.cache_control()
    };
    assert_eq!(page.cache_control, as_bytes(expected), "{context}");
}

#[test]
fn cacheable_pages_lose_the_tags_a_template_wrote_in_their_body() {
    let server = Server::start(options(), Order::Documented, SentryMetaLayer::new());
    for place in ["body", "by-hand", "streamed"] {
        let page = server.get(&format!("/cached-tags-at/{place}"), &[]);
        let trace_id = server.transaction().trace_id;
        assert_eq!(page.status, 200, "{place}");
        // No trace tag for the browser SDK to find, nor the trace's id in any other form.
        assert_eq!(
            (&page.sentry_trace, &page.baggage),
            (&None, &None),
            "{place}: {page:?}"
        );
        assert!(!page.body.contains(&trace_id), "{place}: {page:?}");
        assert_eq!(page.cache_control, [b"public, max-age=60"], "{place}");
    }
}

#[test]
fn pages_shared_caches_may_keep_carry_no_trace() {
    // Every case of tests/vectors/cache.json, with the private mark on (the default) and off.
    for mark_private in [true, false] {
        let server = Server::start(
            options(),
            Order::Documented,
            SentryMetaLayer::new()
                .server_timing(true)
                .mark_private(mark_private),
        );
        for (case, v) in CACHE_VECTORS.iter().enumerate() {
            let page = server.get(&format!("/cache/{case}"), &[]);
            assert_cache_guarded(v, &page, &server.transaction(), mark_private);
        }
        // One warning for the route in the process, however many of its pages were cacheable
        // and however many layers served them: the second server's is not repeated.
        let warnings = server.warnings();
        let warned: Vec<_> = warnings.iter().filter_map(|w| w.route.as_deref()).collect();
        let expected: &[&str] = if mark_private {
            &["/cache/{case}"]
        } else {
            &[]
        };
        assert_eq!(warned, expected, "{warnings:?}");
        assert!(
            warnings
                .iter()
                .all(|w| w.message.contains("CDN-Cache-Control")),
            "{warnings:?}"
        );
        assert_eq!(server.setup_warnings(), 0, "{warnings:?}");
    }
}

#[test]
fn cacheable_pages_whose_tags_the_layer_cannot_strip_are_kept_from_shared_caches() {
    let server = Server::start(
        options(),
        Order::Documented,
        SentryMetaLayer::new().server_timing(true),
    );
    let unrewritable = ["encoded", "partial", "utf16-escaped", "utf16-second-line"];
    // The tags stay, as the layer cannot take them out of this body; shared caches may not
    // keep the page. One that asks for them again as its body streams gets none the second
    // time.
    let twice = unrewritable.map(|kind| format!("twice-{kind}"));
    for kind in unrewritable.map(String::from).into_iter().chain(twice) {
        let page = server.get(&format!("/unrewritable/{kind}"), &[]);
        assert_names(&page, &server.transaction());
        let tags = page.body.matches(r#"<meta name="sentry-trace""#).count();
        assert_eq!(tags, 1, "{kind}: {page:?}");
        assert_eq!(
            page.cache_control,
            [b"private, public, max-age=60"],
            "{kind}: {page:?}"
        );
        assert!(page.cdn_cache_control.is_empty(), "{kind}: {page:?}");
        assert!(page.server_timing.is_empty(), "{kind}: {page:?}");
    }
    // Several `Content-Type` values, in lines or in one line split at its commas, as browsers
    // split it: the page is HTML if any says so, and is stripped.
    for kind in ["two-types", "comma-types"] {
        let page = server.get(&format!("/unrewritable/{kind}"), &[]);
        assert_eq!(page.sentry_trace, None, "{kind}: {page:?}");
        assert_eq!(
            page.cache_control,
            [b"public, max-age=60"],
            "{kind}: {page:?}"
        );
        server.transactions();
    }
    for kind in unrewritable.into_iter().chain(["two-types", "comma-types"]) {
        // Without tags such a page keeps its caching headers; so does one whose body would
        // take them as it streams, after its headers were judged: the request's root withholds
        // them. The server's transaction still carries the request's DSC.
        for variant in ["plain", "streamed"] {
            let page = server.get(&format!("/unrewritable/{variant}-{kind}"), &[]);
            assert!(
                page.body.contains("<p>cache</p>"),
                "{variant}-{kind}: {page:?}"
            );
            assert_eq!(page.sentry_trace, None, "{variant}-{kind}: {page:?}");
            assert_eq!(page.baggage, None, "{variant}-{kind}: {page:?}");
            assert_eq!(
                page.cache_control,
                [b"public, max-age=60"],
                "{variant}-{kind}: {page:?}"
            );
            assert_eq!(
                page.cdn_cache_control,
                ["max-age=600"],
                "{variant}-{kind}: {page:?}"
            );
            let tx = server.transaction();
            let dsc = |key: &str| tx.dsc.iter().find(|(k, _)| k == key).map(|(_, v)| v);
            assert_eq!(dsc("trace_id"), Some(&tx.trace_id), "{variant}-{kind}");
            assert_eq!(dsc("public_key").map(String::as_str), Some(PUBLIC_KEY));
        }
    }
}

/// A browser renders a response that names no type as HTML when its body looks like HTML: with
/// the request's tags, the guard treats it as a page (made private, as the stripper reads only
/// what is typed HTML); without them, or typed as another type, it is left alone.
#[test]
fn tagged_responses_that_browsers_sniff_are_guarded() {
    let server = Server::start(options(), Order::Documented, SentryMetaLayer::new());
    for kind in ["none", "garbage"] {
        let page = server.get(&format!("/untyped/tagged-{kind}-shared"), &[]);
        assert_names(&page, &server.transaction());
        let private: &[&[u8]] = &[b"private, public, max-age=60"];
        assert_eq!(page.cache_control, private, "{kind}: {page:?}");
        assert!(page.cdn_cache_control.is_empty(), "{kind}: {page:?}");
        let page = server.get(&format!("/untyped/tagged-{kind}-heuristic"), &[]);
        assert_names(&page, &server.transaction());
        assert_eq!(page.cache_control, [b"private"], "{kind}: {page:?}");
        // Without tags the response keeps its headers.
        for caching in ["shared", "heuristic"] {
            let page = server.get(&format!("/untyped/plain-{kind}-{caching}"), &[]);
            assert_eq!(page.sentry_trace, None, "{kind}: {page:?}");
            let expected: &[&[u8]] = match caching {
                "shared" => &[b"public, max-age=60"],
                _ => &[],
            };
            assert_eq!(page.cache_control, expected, "{kind}-{caching}: {page:?}");
            server.transactions();
        }
    }
    let page = server.get("/untyped/tagged-text-heuristic", &[]);
    assert!(
        page.cache_control.is_empty(),
        "text/plain is not a page: {page:?}"
    );
    server.transactions();
    // Streamed, it may take the tags after its headers have left (from a task without the
    // request's root, say, which the layer cannot see): guarded whether it takes them or not.
    // One that shared caches may keep gets none from the root either.
    for tags in ["tagged", "plain"] {
        let page = server.get(&format!("/untyped/{tags}-none-shared-streamed"), &[]);
        assert!(page.body.contains("<p>untyped</p>"), "{tags}: {page:?}");
        assert_eq!(page.sentry_trace, None, "{tags}: {page:?}");
        let private: &[&[u8]] = &[b"private, public, max-age=60"];
        assert_eq!(page.cache_control, private, "{tags}: {page:?}");
        assert!(page.cdn_cache_control.is_empty(), "{tags}: {page:?}");
        server.transactions();
        let page = server.get(&format!("/untyped/{tags}-none-heuristic-streamed"), &[]);
        assert_eq!(page.cache_control, [b"private"], "{tags}: {page:?}");
        if tags == "tagged" {
            assert_names(&page, &server.transaction());
        } else {
            server.transactions();
        }
    }
}

#[test]
fn a_body_that_renders_as_it_is_polled_names_the_server_transaction() {
    let server = Server::start(options(), Order::Documented, SentryMetaLayer::new());
    let page = server.get("/streamed", &[]);
    assert!(page.body.contains("<p>streamed</p>"), "{page:?}");
    assert_names_head(&page, &server.transaction());
    assert_eq!(page.cache_control, [b"private"], "{page:?}");

    let incoming = format!("{TRACE}-{SPAN}-1");
    let baggage = format!("sentry-trace_id={TRACE},sentry-public_key=upstream,sentry-sampled=true");
    let page = server.get(
        "/streamed",
        &[("sentry-trace", &incoming), ("baggage", &baggage)],
    );
    let tx = server.transaction();
    assert_eq!(tx.parent_span_id.as_deref(), Some(SPAN));
    assert_names(&page, &tx);
    assert_eq!(page.dsc().get(DscKey::PublicKey), Some("upstream"));

    // Another stream is not a page: it is not polled in the request's root (nor, bound with
    // it, the request's Hub), which it would keep for as long as its connection lasts.
    assert_eq!(server.get("/events", &[]).body, "data: none\n\n");

    // An error the body reports as it renders is in the request's Hub: in its page's trace,
    // with its page's DSC.
    for headers in [
        vec![],
        vec![("sentry-trace", &*incoming), ("baggage", &*baggage)],
    ] {
        let page = server.get("/streamed/failing", &headers);
        server.event_in_trace_of(&page);
    }
    assert_eq!(server.setup_warnings(), 0, "{:?}", server.warnings());
}

#[test]
fn pages_with_tags_lose_their_validators() {
    // A browser revalidating with them would get a 304 and reuse the old page, with its old
    // trace.
    let server = Server::start(options(), Order::Documented, SentryMetaLayer::new());
    let page = server.get("/validated/tagged", &[]);
    assert_names(&page, &server.transaction());
    assert!(page.validators.is_empty(), "{page:?}");
    let page = server.get("/validated/plain", &[]);
    assert_eq!(page.sentry_trace, None, "{page:?}");
    assert_eq!(page.validators.len(), 2, "{page:?}");
}

#[test]
fn the_injector_guards_and_marks_the_pages_it_tags() {
    // (the layer, the injector inside it, whether heuristic pages end up marked private)
    let setups = [
        // The injector marks the pages it tags by itself.
        (
            SentryMetaLayer::new().mark_private(false),
            InjectTraceMetaLayer::new(),
            true,
        ),
        // Both mark: once.
        (SentryMetaLayer::new(), InjectTraceMetaLayer::new(), true),
        (
            SentryMetaLayer::new().mark_private(false),
            InjectTraceMetaLayer::new().mark_private(false),
            false,
        ),
    ];
    for (meta, inject, marked) in setups {
        let server = Server::start_app(options(), injected_app(meta.server_timing(true), inject));
        for (case, v) in CACHE_VECTORS.iter().enumerate() {
            let page = server.get(&format!("/plain/{case}"), &[]);
            assert_cache_guarded(v, &page, &server.transaction(), marked);
        }
    }
}

#[test]
fn sentry_http_layer_for_request_data_composes() {
    let server = Server::start(options(), Order::WithRequestData, SentryMetaLayer::new());
    let incoming = format!("{TRACE}-{SPAN}-1");
    for headers in [vec![], vec![("sentry-trace", incoming.as_str())]] {
        let page = server.get("/page", &headers);
        assert_names(&page, &server.transaction());
    }
    assert_eq!(server.setup_warnings(), 0, "{:?}", server.warnings());
}

/// Runs one request through a wrongly assembled app; whether it panicked.
fn panics(order: Order) -> bool {
    let server = Server::start(options(), order, SentryMetaLayer::new());
    let app = server.app.clone();
    // Two requests on one worker: the second one finds a Hub shared with the first.
    let outcome = server.runtime.block_on(async move {
        tokio::spawn(async move {
            for _ in 0..2 {
                let request = Request::get("/page")
                    .body(Body::empty())
                    .expect("a request");
                let _ = app.clone().oneshot(request).await;
            }
        })
        .await
    });
    outcome.is_err_and(|error| error.is_panic())
}

#[test]
// Release builds log one `warn` instead, with the same message.
#[cfg_attr(not(debug_assertions), ignore = "a debug build's check")]
fn wrong_setups_fail_loudly_in_debug_builds() {
    for order in [
        Order::TransactionOutside,
        Order::MetaOutermost,
        Order::NoHubLayer,
    ] {
        assert!(panics(order), "{order:?}");
    }
    assert!(!panics(Order::Documented));
}

#[test]
fn several_sentry_trace_headers_start_a_new_trace() {
    // One malformed value (docs/design.md, "Several `sentry-trace` values"), as Node.js and
    // Python servers hand them to their SDKs (comma-joined, never valid). The transaction and
    // the page agree, with this service's own DSC.
    let server = Server::start(options(), Order::Documented, SentryMetaLayer::new());
    let valid = format!("{TRACE}-{SPAN}-1");
    let baggage = format!("sentry-trace_id={TRACE},sentry-public_key=upstream,sentry-org_id=42");
    for headers in [
        vec![("sentry-trace", valid.as_str()), ("sentry-trace", "junk")],
        vec![("sentry-trace", "junk"), ("sentry-trace", valid.as_str())],
        vec![
            ("sentry-trace", valid.as_str()),
            ("sentry-trace", valid.as_str()),
        ],
    ] {
        let mut headers = headers;
        headers.push(("baggage", &baggage));
        let page = server.get("/page", &headers);
        let tx = server.transaction();
        assert_ne!(tx.trace_id, TRACE);
        assert_names_head(&page, &tx);
    }
}

#[test]
fn organization_ids_are_compared_as_sent() {
    // The client's org is 42. `sentry-org_id` is compared as the decoded text: `%34%32` is
    // "42" (continue), `042` is not (a new trace), and of two members the last counts (as in
    // `@sentry/core`, whose parser assigns them in turn).
    let server = Server::start(options(), Order::Documented, SentryMetaLayer::new());
    let incoming = format!("{TRACE}-{SPAN}-1");
    for (baggage, continues) in [
        ("sentry-org_id=%34%32,sentry-release=theirs", true),
        ("sentry-org_id=042,sentry-release=theirs", false),
        (
            "sentry-org_id=42,sentry-org_id=7,sentry-release=theirs",
            false,
        ),
        (
            "sentry-org_id=7,sentry-org_id=42,sentry-release=theirs",
            true,
        ),
    ] {
        let page = server.get(
            "/page",
            &[("sentry-trace", &incoming), ("baggage", baggage)],
        );
        let tx = server.transaction();
        assert_eq!(tx.trace_id == TRACE, continues, "{baggage}");
        if continues {
            assert_names(&page, &tx);
            assert_eq!(page.dsc().get(DscKey::Release), Some("theirs"));
        } else {
            assert_names_head(&page, &tx);
        }
    }
}

#[test]
fn sentry_trace_without_a_span_id_continues_without_a_parent() {
    // The grammar lets the span id out: the trace and its decision are still the caller's.
    let server = Server::start(options(), Order::Documented, SentryMetaLayer::new());
    let page = server.get(
        "/page",
        &[
            ("sentry-trace", &format!("{TRACE}-1")),
            (
                "baggage",
                "sentry-release=theirs,sentry-public_key=upstream",
            ),
        ],
    );
    let tx = server.transaction();
    assert_eq!(tx.trace_id, TRACE);
    assert_eq!(tx.parent_span_id, None);
    assert_names(&page, &tx);
    assert_eq!(page.dsc().get(DscKey::Release), Some("theirs"));
}

#[test]
fn errors_captured_in_a_request_carry_its_dsc_and_request_data() {
    let server = Server::start(options(), Order::Documented, SentryMetaLayer::new());
    let incoming = format!("{TRACE}-{SPAN}-1");
    // Each request's URL, query included, parsed whole or set on the last one parsed on its
    // thread (see `absolute_url` in `sentry_meta::tower::transaction`).
    let requests = [
        ("/error", vec![]),
        (
            "/error?q=a%20b&x",
            vec![("sentry-trace", incoming.as_str())],
        ),
        // Also from a task the request spawns, with its Hub and root.
        ("/spawned-error", vec![]),
        ("/spawned-error", vec![("sentry-trace", incoming.as_str())]),
    ];
    for (path, headers) in requests {
        let page = server.get(path, &headers);
        let sent = server.events();
        assert_eq!(sent.len(), 1, "{sent:?}");
        let (dsc, url, trace) = &sent[0];
        assert_eq!(dsc, &page.dsc_pairs());
        assert!(trace.starts_with(&page.trace_id()), "{trace} {page:?}");
        assert_eq!(
            url.as_deref(),
            Some(format!("http://{}{path}", server.addr).as_str())
        );
    }
}

/// A page rendered outside its request's root, in a task that has only the request's Hub,
/// names the server span and writes no DSC: the request's (frozen, or a head DSC with the
/// transaction's name) is the root's, and another would contradict the server's envelopes.
/// With the root, it writes the request's DSC.
#[test]
fn a_page_rendered_outside_its_request_s_root_writes_no_other_dsc() {
    let server = Server::start(options(), Order::Documented, SentryMetaLayer::new());
    let incoming = format!("{TRACE}-{SPAN}-1");
    let baggage = "sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-public_key=caller";
    for headers in [
        vec![],
        vec![("sentry-trace", incoming.as_str()), ("baggage", baggage)],
    ] {
        let page = server.get("/spawned-page/hub", &headers);
        let tx = server.transaction();
        assert_eq!((page.trace_id(), page.span_id()), (tx.trace_id, tx.span_id));
        assert_eq!(page.baggage, None, "{}", page.body);
        // In a child span of the server transaction: that span, no DSC either.
        let page = server.get("/spawned-page/child", &headers);
        let tx = server.transaction();
        assert_eq!(page.trace_id(), tx.trace_id);
        assert_eq!(tx.child_spans, [page.span_id()]);
        assert_eq!(page.baggage, None, "{}", page.body);
        let page = server.get("/spawned-page/root", &headers);
        let tx = server.transaction();
        assert_eq!((page.trace_id(), page.span_id()), (tx.trace_id, tx.span_id));
        assert_eq!(page.dsc_pairs(), tx.dsc);
    }
    // A transaction of the task's own is not the request's: the head DSC of its trace, as
    // without the layer (its envelope is the SDK's: sent outside any request's root).
    let page = server.get("/spawned-page/own", &[]);
    let mut sent = server.transactions();
    sent.retain(|tx| tx.name.as_deref() == Some("job"));
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (page.trace_id(), page.span_id()),
        (sent[0].trace_id.clone(), sent[0].span_id.clone())
    );
    assert_eq!(
        page.dsc().get(DscKey::TraceId),
        Some(page.trace_id().as_str())
    );
}

#[test]
fn an_error_a_layer_outside_captures_from_the_response_joins_the_request_s_trace() {
    let server = Server::start(options(), Order::CaptureOutside, SentryMetaLayer::new());
    let incoming = format!("{TRACE}-{SPAN}-1");
    let mut traces = HashSet::new();
    for headers in [vec![], vec![], vec![("sentry-trace", incoming.as_str())]] {
        let page = server.get("/page", &headers);
        // Under the server span the page names, with the page's DSC and the request's data.
        let url = server.event_in_trace_of(&page);
        assert_eq!(
            url.as_deref(),
            Some(format!("http://{}/page", server.addr).as_str())
        );
        traces.insert(page.trace_id());
    }
    assert_eq!(traces.len(), 3, "every request its own trace: {traces:?}");
    assert!(traces.contains(TRACE));
    assert_eq!(server.setup_warnings(), 0, "{:?}", server.warnings());
}

#[test]
fn an_error_of_a_task_in_the_request_s_hub_after_the_response_joins_the_request_s_trace() {
    let server = Server::start(options(), Order::Documented, SentryMetaLayer::new());
    let incoming = format!("{TRACE}-{SPAN}-1");
    let mut traces = HashSet::new();
    for headers in [vec![], vec![("sentry-trace", incoming.as_str())]] {
        let page = server.get("/late-error", &headers);
        server.event_in_trace_of(&page);
        traces.insert(page.trace_id());
    }
    assert_eq!(traces.len(), 2, "{traces:?}");
    assert!(traces.contains(TRACE));
    assert_eq!(server.setup_warnings(), 0, "{:?}", server.warnings());
}
