//! The actix-web middleware in a real `actix_web::HttpServer` on loopback, inside
//! `sentry-actix`'s `Sentry` middleware, with a real Sentry client whose transport keeps what it
//! is sent; pages fetched over HTTP with reqwest and parsed with `scraper`, their ids compared
//! with the transactions the client sent.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::{App, HttpResponse, HttpServer, web};
use sentry_core::protocol::{Context, EnvelopeItem};
use sentry_core::test::TestTransport;
use sentry_core::{Client, Hub};
use sentry_meta::actix::SentryMetaMiddleware;
use sentry_meta::{DscTransport, DynamicSamplingContext, SentryMeta, SentryTrace};
use sentry_meta_tests::logs::Warnings;
use sentry_meta_tests::meta_elements;
use sentry_meta_tests::sentry::{PUBLIC_KEY, on_the_wire};

const TRACE: &str = "771a43a4192642f0b136d5159a501700";
const SPAN: &str = "b7ad6b7169203331";

fn html(meta: &SentryMeta, body: &str) -> String {
    format!("<!DOCTYPE html><html><head>{meta}<title>t</title></head><body>{body}</body></html>")
}

/// Renders after an `.await`, with the helper's view of the current request.
async fn page() -> HttpResponse {
    actix_web::rt::task::yield_now().await;
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html(&SentryMeta::current(), "<p>page</p>"))
}

/// The extractor's value.
async fn extracted(meta: SentryMeta) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html(&meta, "<p>extracted</p>"))
}

/// A page that shared caches may keep, streamed in pieces that split its tags.
async fn cached() -> HttpResponse {
    let page = html(&SentryMeta::current(), "<p>cached</p>");
    let (first, rest) = page.split_at(page.find("content=").expect("a tag") + 20);
    let pieces = [first.to_owned(), rest.to_owned()]
        .map(|piece| Ok::<_, actix_web::Error>(web::Bytes::from(piece)));
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=300"))
        .insert_header(("accept-ranges", "bytes"))
        .streaming(futures_util::stream::iter(pieces))
}

/// A page that shared caches may keep, whose body the middleware cannot rewrite: compressed
/// (`Content-Encoding`, though its bytes are not), with its tags or without (`/encoded-plain`),
/// or with the tags of the moment when actix first polls its body (`/encoded-streamed`).
async fn encoded(request: actix_web::HttpRequest) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=300"))
        .insert_header(("surrogate-control", "max-age=600"))
        .insert_header(("cloudflare-cdn-cache-control", "max-age=600"))
        .insert_header(("x-accel-expires", "600"))
        .insert_header(("content-encoding", "br"));
    if request.path().ends_with("-streamed") {
        let page = futures_util::stream::once(async {
            let page = html(&SentryMeta::current(), "<p>encoded</p>");
            Ok::<_, actix_web::Error>(web::Bytes::from(page))
        });
        return response.streaming(page);
    }
    let meta = match request.path().ends_with("-plain") {
        true => SentryMeta::none(),
        false => SentryMeta::current(),
    };
    response.body(html(&meta, "<p>encoded</p>"))
}

/// A page that only a CDN's own targeted field lets shared caches keep.
async fn cached_by_one_cdn() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("cloudflare-cdn-cache-control", "max-age=600"))
        .body(html(&SentryMeta::current(), "<p>cached</p>"))
}

/// A publicly cacheable page that writes its tags and names no type, which a browser sniffs.
async fn untyped() -> HttpResponse {
    let mut response = HttpResponse::Ok()
        .insert_header(("cache-control", "public, max-age=300"))
        .body(html(&SentryMeta::current(), "<p>untyped</p>"));
    response.headers_mut().remove("content-type");
    response
}

/// A page that writes its tags, with validators, and two cookies.
async fn validated() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .append_header(("set-cookie", "a=1"))
        .append_header(("set-cookie", "b=2"))
        .insert_header(("etag", "\"v1\""))
        .insert_header(("last-modified", "Tue, 24 Nov 2026 10:00:00 GMT"))
        .body(html(&SentryMeta::current(), "<p>validated</p>"))
}

/// A page that writes no tags, whole, with a validator.
async fn plain() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("etag", "\"v1\""))
        .insert_header(("accept-ranges", "bytes"))
        .body("<!DOCTYPE html><html><head><title>t</title></head><body><p>plain</p></body></html>")
}

/// A page that writes no tags, streamed with `</head>` split across chunks.
async fn streamed() -> HttpResponse {
    let pieces = [
        "<!DOCTYPE html><html><head><title>t</title></he",
        "ad><body><p>streamed</p>",
        "</body></html>",
    ]
    .map(|piece| Ok::<_, actix_web::Error>(web::Bytes::from(piece)));
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .streaming(futures_util::stream::iter(pieces))
}

/// A page that renders its tags when actix first polls its body, after the handler.
async fn rendered_as_polled(request: actix_web::HttpRequest) -> HttpResponse {
    let failing = request.query_string() == "failing";
    let page = futures_util::stream::once(async move {
        if failing {
            sentry_core::capture_message("the streamed page failed", sentry_core::Level::Error);
        }
        let page = html(&SentryMeta::current(), "<p>polled</p>");
        Ok::<_, actix_web::Error>(web::Bytes::from(page))
    });
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .streaming(page)
}

/// A server error, which `sentry_actix::Sentry` captures from the response.
async fn broken() -> Result<HttpResponse, actix_web::Error> {
    Err(actix_web::error::ErrorInternalServerError("broken"))
}

/// Not a page.
async fn json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"head":"</head>"}"#)
}

/// A server transaction as the client sent it, with its envelope's DSC.
#[derive(Debug)]
struct Sent {
    name: String,
    /// The request's URL, as the transaction's request data gives it.
    url: Option<String>,
    trace_id: String,
    span_id: String,
    parent: Option<String>,
    dsc: Vec<(String, String)>,
}

struct Server {
    addr: std::net::SocketAddr,
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    transport: Arc<TestTransport>,
    handle: actix_web::dev::ServerHandle,
    warnings: Warnings,
}

impl Server {
    fn start() -> Self {
        Self::with(SentryMetaMiddleware::new().server_timing(true))
    }

    fn with(middleware: SentryMetaMiddleware) -> Self {
        let transport = TestTransport::new();
        let options = sentry_meta_tests::sentry::options().traces_sample_rate(1.0);
        let client = Arc::new(Client::from(
            options.transport(DscTransport::wrap(transport.clone())),
        ));
        let hub = Arc::new(Hub::new(Some(client), Default::default()));
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let addr = listener.local_addr().expect("an address");
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let warnings = Warnings::default();
        let dispatch = warnings.dispatch();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                // Called on each worker's thread.
                let server = HttpServer::new(move || {
                    // Kept for the thread's life: this server's logs go to this test only.
                    std::mem::forget(tracing::dispatcher::set_default(&dispatch));
                    App::new()
                        .wrap(middleware.clone())
                        .wrap(
                            sentry_actix::Sentry::builder()
                                .with_hub(hub.clone())
                                .finish(),
                        )
                        .route("/page", web::get().to(page))
                        .route("/users/{id}", web::get().to(page))
                        .route("/extracted", web::get().to(extracted))
                        .route("/cached", web::get().to(cached))
                        .route("/cached-too", web::get().to(cached))
                        .route("/cached-once", web::get().to(cached))
                        .route("/encoded", web::get().to(encoded))
                        .route("/untyped", web::get().to(untyped))
                        .route("/validated", web::get().to(validated))
                        .route("/cached-by-one-cdn", web::get().to(cached_by_one_cdn))
                        .route("/encoded-plain", web::get().to(encoded))
                        .route("/encoded-streamed", web::get().to(encoded))
                        .route("/plain", web::get().to(plain))
                        .route("/streamed", web::get().to(streamed))
                        .route("/rendered-as-polled", web::get().to(rendered_as_polled))
                        .route("/json", web::get().to(json))
                        .route("/broken", web::get().to(broken))
                })
                .workers(2)
                .listen(listener)
                .expect("listening")
                .run();
                handle_tx.send(server.handle()).expect("the test waits");
                server.await
            })
        });
        let handle = handle_rx.recv().expect("the server started");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        Self {
            addr,
            runtime,
            http: reqwest::Client::new(),
            transport,
            handle,
            warnings,
        }
    }

    /// The page at `path`: its headers and body.
    fn get(&self, path: &str, headers: &[(&str, &str)]) -> (reqwest::header::HeaderMap, String) {
        let mut request = self.http.get(format!("http://{}{path}", self.addr));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.runtime.block_on(async move {
            let response = request.send().await.expect("a response");
            assert_eq!(response.status(), 200);
            let headers = response.headers().clone();
            (headers, response.text().await.expect("a body"))
        })
    }

    /// The transactions sent so far.
    fn transactions(&self) -> Vec<Sent> {
        let mut sent = Vec::new();
        for _ in 0..100 {
            for envelope in self.transport.fetch_and_clear_envelopes() {
                let (dsc, envelope) = on_the_wire(&envelope);
                for item in envelope.items() {
                    if let EnvelopeItem::Transaction(tx) = item
                        && let Some(Context::Trace(trace)) = tx.contexts.get("trace")
                    {
                        sent.push(Sent {
                            name: tx.name.clone().unwrap_or_default(),
                            url: tx
                                .request
                                .as_ref()
                                .and_then(|r| r.url.as_ref())
                                .map(|u| u.to_string()),
                            trace_id: trace.trace_id.to_string(),
                            span_id: trace.span_id.to_string(),
                            parent: trace.parent_span_id.map(|id| id.to_string()),
                            dsc: dsc.clone(),
                        });
                    }
                }
            }
            if !sent.is_empty() {
                return sent;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        sent
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let stop = self.handle.stop(false);
        self.runtime.block_on(stop);
    }
}

/// The page's `sentry-trace` and DSC as `(key, value)` sorted by key.
fn tags(page: &str) -> (SentryTrace, Vec<(String, String)>) {
    let tags = meta_elements(page);
    let value = |name: &str| {
        let found: Vec<_> = tags
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect();
        assert_eq!(found.len(), 1, "one {name} tag: {page}");
        found.into_iter().next().unwrap_or_default()
    };
    let trace = value("sentry-trace").parse().expect("a valid sentry-trace");
    let baggage = value("baggage");
    let mut dsc: Vec<_> = DynamicSamplingContext::from_baggage([baggage.as_bytes()])
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    dsc.sort();
    (trace, dsc)
}

#[test]
fn a_fresh_page_names_the_server_transaction_and_agrees_with_its_envelope() {
    let server = Server::start();
    // Each request's URL, parsed whole or set on the last one parsed on its worker thread
    // (see `absolute_url` in `sentry_meta::tower::transaction`).
    // `/rendered-as-polled` renders after the handler has returned, as actix polls its body.
    for path in [
        "/page",
        "/users/7?tab=a%20b&x",
        "/extracted",
        "/page",
        "/rendered-as-polled",
    ] {
        let (headers, page) = server.get(path, &[]);
        let (trace, dsc) = tags(&page);
        let sent = server.transactions();
        assert_eq!(sent.len(), 1, "{path}: {sent:?}");
        let Sent {
            name,
            url,
            trace_id,
            span_id,
            parent,
            dsc: sent_dsc,
        } = &sent[0];
        assert_eq!(&trace.trace_id.to_string(), trace_id, "{path}");
        assert_eq!(
            trace.span_id.map(|id| id.to_string()).as_ref(),
            Some(span_id),
            "{path}"
        );
        assert_eq!(parent, &None, "{path}");
        assert_eq!(
            &dsc, sent_dsc,
            "{path}: the envelope carries the page's DSC"
        );
        assert!(
            dsc.contains(&("public_key".to_owned(), PUBLIC_KEY.to_owned())),
            "{dsc:?}"
        );
        assert_eq!(url, &Some(format!("http://{}{path}", server.addr)));
        let route = if path.starts_with("/users/") {
            "/users/{id}"
        } else {
            path
        };
        assert_eq!(name, &format!("GET {route}"));
        assert!(
            dsc.contains(&("transaction".to_owned(), format!("GET {route}"))),
            "{dsc:?}"
        );
        let timing = headers
            .get("server-timing")
            .expect("Server-Timing")
            .to_str()
            .expect("ASCII");
        assert!(
            timing.starts_with(&format!("sentry-trace;desc=\"{trace}\"")),
            "{timing}"
        );
        assert_eq!(
            headers
                .get("cache-control")
                .map(|v| v.to_str().unwrap_or_default()),
            Some("private")
        );
    }
}

#[test]
fn an_incoming_trace_is_continued_with_its_frozen_dsc() {
    let server = Server::start();
    let baggage =
        format!("sentry-trace_id={TRACE},sentry-public_key=caller,sentry-sample_rand=0.25,other=x");
    let (_, page) = server.get(
        "/page",
        &[
            ("sentry-trace", &format!("{TRACE}-{SPAN}-1")),
            ("baggage", &baggage),
        ],
    );
    let (trace, dsc) = tags(&page);
    let sent = server.transactions();
    let Sent {
        trace_id,
        span_id,
        parent,
        dsc: sent_dsc,
        ..
    } = &sent[0];
    assert_eq!(trace_id, TRACE);
    assert_eq!(parent.as_deref(), Some(SPAN));
    assert_eq!(
        trace.span_id.map(|id| id.to_string()).as_ref(),
        Some(span_id)
    );
    let frozen = [
        ("public_key", "caller"),
        ("sample_rand", "0.25"),
        ("trace_id", TRACE),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    assert_eq!(dsc, frozen);
    assert_eq!(sent_dsc, &frozen);
}

#[test]
fn malformed_or_foreign_traces_start_new_ones() {
    let server = Server::start();
    let cases: [&[(&str, &str)]; 3] = [
        &[(
            "sentry-trace",
            "771A43A4192642F0B136D5159A501700-B7AD6B7169203331-1",
        )],
        &[
            ("sentry-trace", &format!("{TRACE}-{SPAN}-1")),
            ("baggage", "sentry-org_id=7"),
        ],
        &[
            ("sentry-trace", &format!("{TRACE}-{SPAN}-1")),
            ("sentry-trace", &format!("{TRACE}-{SPAN}-1")),
        ],
    ];
    for headers in cases {
        let (_, page) = server.get("/page", headers);
        let (trace, _) = tags(&page);
        assert_ne!(trace.trace_id.to_string(), TRACE, "{headers:?}");
        let sent = server.transactions();
        assert_eq!(sent[0].trace_id, trace.trace_id.to_string(), "{headers:?}");
        assert_eq!(sent[0].parent, None, "{headers:?}");
    }
}

/// The trace id, span id and envelope DSC of each transaction and each error event sent for
/// one request to `/broken` with `headers`.
type Traced = Vec<(String, String, Vec<(String, String)>)>;

fn broken_request(server: &Server, headers: &[(&str, &str)]) -> (Traced, Traced) {
    failing_request(server, "/broken", 500, headers)
}

/// The transaction and the error of a request to `path`, which answers `status`.
fn failing_request(
    server: &Server,
    path: &str,
    status: u16,
    headers: &[(&str, &str)],
) -> (Traced, Traced) {
    let mut request = server.http.get(format!("http://{}{path}", server.addr));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let answered = server.runtime.block_on(async {
        let response = request.send().await.expect("a response");
        let status = response.status();
        response.text().await.expect("a body");
        status
    });
    assert_eq!(answered, status);
    // The transaction and the error, in either order.
    let (mut transactions, mut errors) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        for envelope in server.transport.fetch_and_clear_envelopes() {
            let (dsc, envelope) = on_the_wire(&envelope);
            for item in envelope.items() {
                let (contexts, found) = match item {
                    EnvelopeItem::Transaction(tx) => (&tx.contexts, &mut transactions),
                    EnvelopeItem::Event(event) => (&event.contexts, &mut errors),
                    _ => continue,
                };
                if let Some(Context::Trace(trace)) = contexts.get("trace") {
                    let (trace_id, span_id) = (trace.trace_id, trace.span_id);
                    found.push((trace_id.to_string(), span_id.to_string(), dsc.clone()));
                }
            }
        }
        if !transactions.is_empty() && !errors.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (transactions, errors)
}

#[test]
fn an_error_a_streamed_body_reports_as_it_renders_joins_the_requests_trace() {
    let server = Server::start();
    let caller = format!("{TRACE}-{SPAN}-1");
    for headers in [vec![], vec![("sentry-trace", &*caller)]] {
        let (transactions, errors) =
            failing_request(&server, "/rendered-as-polled?failing", 200, &headers);
        assert_eq!(transactions.len(), 1, "{transactions:?}");
        // In the request's Hub, under its server transaction, with the request's DSC.
        assert_eq!(errors, transactions, "{errors:?}");
    }
    let warnings = server.warnings.all();
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn server_errors_that_sentry_actix_captures_join_the_requests_trace() {
    let server = Server::start();
    let caller = format!("{TRACE}-{SPAN}-1");
    let baggage = format!(
        "sentry-trace_id={TRACE},sentry-public_key=caller,sentry-release=api,sentry-sample_rand=0.25"
    );
    let (transactions, errors) =
        broken_request(&server, &[("sentry-trace", &caller), ("baggage", &baggage)]);
    assert_eq!(transactions.len(), 1, "{transactions:?}");
    assert_eq!(transactions[0].0, TRACE);
    let frozen = [
        ("public_key", "caller"),
        ("release", "api"),
        ("sample_rand", "0.25"),
        ("trace_id", TRACE),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    assert_eq!(transactions[0].2, frozen);
    // Under the server transaction, as inside sentry-actix's own, with the request's DSC:
    // `Sentry` captures the error after this middleware has answered.
    assert_eq!(errors, transactions, "{errors:?}");

    // A new trace: the error carries the head DSC that the transaction (and a page) carries.
    let (transactions, errors) = broken_request(&server, &[]);
    assert_eq!(transactions.len(), 1, "{transactions:?}");
    let (trace_id, _, dsc) = &transactions[0];
    assert_ne!(trace_id, TRACE);
    for (key, value) in [
        ("trace_id", trace_id.as_str()),
        ("public_key", PUBLIC_KEY),
        ("transaction", "GET /broken"),
        ("sampled", "true"),
    ] {
        assert!(dsc.contains(&(key.to_owned(), value.to_owned())), "{dsc:?}");
    }
    assert_eq!(errors, transactions, "{errors:?}");
}

#[test]
fn a_page_shared_caches_may_keep_is_stripped_of_its_tags() {
    let server = Server::start();
    let (headers, page) = server.get("/cached", &[]);
    assert!(
        meta_elements(&page)
            .iter()
            .all(|(name, _)| name != "sentry-trace" && name != "baggage"),
        "{page}"
    );
    assert!(
        page.contains("<title>t</title></head><body><p>cached</p>"),
        "the rest intact: {page}"
    );
    assert!(headers.get("server-timing").is_none());
    // A range would be one of the page with its tags.
    assert!(headers.get("accept-ranges").is_none(), "{headers:?}");
    let (headers, page) = server.get("/cached-by-one-cdn", &[]);
    assert!(!page.contains("sentry-trace"), "{page}");
    assert!(headers.get("server-timing").is_none());
    let _ = server.transactions();
}

#[test]
fn a_page_with_tags_that_cannot_be_stripped_is_kept_from_shared_caches() {
    let server = Server::start();
    let (headers, page) = server.get("/encoded", &[]);
    let (sentry_trace, _) = tags(&page);
    assert_eq!(
        sentry_trace.trace_id.to_string(),
        server.transactions()[0].trace_id
    );
    let lines = |headers: &reqwest::header::HeaderMap, name: &str| -> Vec<String> {
        let values = headers.get_all(name).iter();
        values
            .map(|v| v.to_str().expect("ASCII").to_owned())
            .collect()
    };
    assert_eq!(
        lines(&headers, "cache-control"),
        ["private, public, max-age=300"]
    );
    assert!(lines(&headers, "surrogate-control").is_empty());
    assert!(lines(&headers, "cloudflare-cdn-cache-control").is_empty());
    assert!(lines(&headers, "x-accel-expires").is_empty());
    // Without tags, the page keeps its caching headers; so does one whose body would take them
    // as it streams, after its headers were judged: the request's root withholds them.
    for path in ["/encoded-plain", "/encoded-streamed"] {
        let (headers, page) = server.get(path, &[]);
        assert!(page.contains("<p>encoded</p>"), "{path}: {page}");
        assert!(!page.contains("sentry-trace"), "{path}: {page}");
        assert!(!page.contains("baggage"), "{path}: {page}");
        assert_eq!(lines(&headers, "cache-control"), ["public, max-age=300"]);
        assert_eq!(lines(&headers, "surrogate-control"), ["max-age=600"]);
        assert_eq!(lines(&headers, "x-accel-expires"), ["600"]);
        assert_eq!(
            lines(&headers, "cloudflare-cdn-cache-control"),
            ["max-age=600"]
        );
        let _ = server.transactions();
    }
    // Nor can it strip a page that names no type, which a browser sniffs as HTML.
    let (headers, page) = server.get("/untyped", &[]);
    assert!(headers.get("content-type").is_none(), "{headers:?}");
    let (sentry_trace, _) = tags(&page);
    assert_eq!(
        sentry_trace.trace_id.to_string(),
        server.transactions()[0].trace_id
    );
    assert_eq!(
        lines(&headers, "cache-control"),
        ["private, public, max-age=300"]
    );
}

#[test]
fn a_page_with_tags_loses_its_validators() {
    let server = Server::start();
    let (headers, page) = server.get("/validated", &[]);
    tags(&page);
    assert!(headers.get("etag").is_none(), "{headers:?}");
    assert!(headers.get("last-modified").is_none(), "{headers:?}");
    // Its other headers stay, every line of them.
    let cookies: Vec<_> = headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"], "{headers:?}");
    let _ = server.transactions();
}

#[test]
fn cacheable_pages_are_warned_about_once_per_route_in_the_process() {
    // Two servers, whose middlewares were built apart, as a server that builds one per worker
    // (`HttpServer::new(|| App::new().wrap(SentryMetaMiddleware::new()))`) has them.
    let (one, two) = (Server::start(), Server::start());
    for (server, path) in [
        (&one, "/cached-too"),
        (&one, "/cached-too"),
        (&two, "/cached-too"),
        (&two, "/cached-once"),
        (&one, "/cached-once"),
    ] {
        let (_, page) = server.get(path, &[]);
        assert!(!page.contains("sentry-trace"), "{page}");
    }
    let warnings: Vec<_> = [&one, &two]
        .iter()
        .flat_map(|server| server.warnings.all())
        .collect();
    let mut routes: Vec<_> = warnings.iter().filter_map(|w| w.route.as_deref()).collect();
    routes.sort_unstable();
    assert_eq!(routes, ["/cached-once", "/cached-too"], "{warnings:?}");
    assert!(
        warnings[0].message.contains("CDN-Cache-Control"),
        "{warnings:?}"
    );
    let _ = one.transactions();
    let _ = two.transactions();
}

#[test]
fn concurrent_requests_get_their_own_traces() {
    let server = Server::start();
    let traces: Vec<String> = (1..=32).map(|i| format!("{:032x}", i * 0x1111)).collect();
    let pages = server.runtime.block_on(async {
        let fetches: Vec<_> = traces
            .iter()
            .map(|trace| {
                let request = server
                    .http
                    .get(format!("http://{}/page", server.addr))
                    .header("sentry-trace", format!("{trace}-{SPAN}-1"))
                    .header("baggage", format!("sentry-trace_id={trace}"));
                tokio::spawn(async move {
                    request
                        .send()
                        .await
                        .expect("a response")
                        .text()
                        .await
                        .expect("a body")
                })
            })
            .collect();
        let mut pages = Vec::new();
        for fetch in fetches {
            pages.push(fetch.await.expect("no panic"));
        }
        pages
    });
    for (trace, page) in traces.iter().zip(pages) {
        let (tags, dsc) = tags(&page);
        assert_eq!(&tags.trace_id.to_string(), trace);
        assert!(
            dsc.contains(&("trace_id".to_owned(), trace.clone())),
            "{dsc:?}"
        );
    }
}

#[test]
fn injection_puts_the_server_transactions_tags_into_pages_without_them() {
    let server = Server::with(SentryMetaMiddleware::new().inject(true));
    for (path, body) in [("/plain", "<p>plain</p>"), ("/streamed", "<p>streamed</p>")] {
        let (headers, page) = server.get(path, &[]);
        let (trace, dsc) = tags(&page);
        let sent = server.transactions();
        assert_eq!(sent.len(), 1, "{path}: {sent:?}");
        assert_eq!(trace.trace_id.to_string(), sent[0].trace_id, "{path}");
        assert_eq!(
            trace.span_id.map(|id| id.to_string()),
            Some(sent[0].span_id.clone()),
            "{path}: the tags name the server transaction"
        );
        assert_eq!(
            dsc, sent[0].dsc,
            "{path}: the envelope carries the page's DSC"
        );
        assert!(
            page.starts_with(
                "<!DOCTYPE html><html><head><title>t</title><meta name=\"sentry-trace\""
            ),
            "{path}: the tags right before </head>: {page}"
        );
        assert!(
            page.ends_with(&format!("</head><body>{body}</body></html>")),
            "{page}"
        );
        assert!(headers.get("etag").is_none(), "{path}: {headers:?}");
        assert!(
            headers.get("accept-ranges").is_none(),
            "{path}: {headers:?}"
        );
        assert!(
            headers.get("content-length").is_none(),
            "{path}: {headers:?}"
        );
        assert_eq!(
            headers
                .get("cache-control")
                .map(|v| v.to_str().unwrap_or_default()),
            Some("private")
        );
    }

    // A page whose template wrote the tags keeps its own, once.
    let (_, page) = server.get("/page", &[("sentry-trace", &format!("{TRACE}-{SPAN}-1"))]);
    let (trace, _) = tags(&page);
    assert_eq!(trace.trace_id.to_string(), TRACE);
    let _ = server.transactions();

    // Not a page: untouched.
    let (_, json) = server.get("/json", &[]);
    assert_eq!(json, r#"{"head":"</head>"}"#);
}

#[test]
fn without_injection_a_page_without_tags_is_left_alone() {
    let server = Server::start();
    let (headers, page) = server.get("/plain", &[]);
    assert_eq!(
        page,
        "<!DOCTYPE html><html><head><title>t</title></head><body><p>plain</p></body></html>"
    );
    assert_eq!(
        headers.get("etag").map(|v| v.to_str().unwrap_or_default()),
        Some("\"v1\"")
    );
    let _ = server.transactions();
}
